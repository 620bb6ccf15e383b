//! Multi-row statements. A batch of rows is written in chunks of a few fixed
//! sizes, so each table needs at most [`CHUNKS`]`.len()` distinct statements
//! and the drivers' prepared-statement caches keep hitting.

use std::ops::Range;

/// Rows per statement, largest first: a batch of n rows takes at most
/// log2(64) + n / 64 statements. 64 rows of the widest table (18 columns) stay
/// far below SQLite's and PostgreSQL's parameter limits.
pub(crate) const CHUNKS: [usize; 7] = [64, 32, 16, 8, 4, 2, 1];

/// Splits `0..n` into ranges whose lengths are all in [`CHUNKS`].
pub(crate) fn chunks(n: usize) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    for size in CHUNKS {
        while n - start >= size {
            out.push(start..start + size);
            start += size;
        }
    }
    out
}

/// `($1, $2), ($3, $4)` for `rows` rows of `columns` placeholders each.
pub(crate) fn values(columns: usize, rows: usize) -> String {
    let mut s = String::with_capacity(rows * columns * 5);
    for r in 0..rows {
        if r > 0 {
            s.push_str(", ");
        }
        s.push('(');
        for c in 0..columns {
            if c > 0 {
                s.push_str(", ");
            }
            s.push('$');
            s.push_str(&(r * columns + c + 1).to_string());
        }
        s.push(')');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_every_row_once_with_fixed_sizes() {
        for n in 0..300 {
            let c = chunks(n);
            let mut next = 0;
            for r in &c {
                assert_eq!(r.start, next);
                assert!(CHUNKS.contains(&r.len()), "{n}: {r:?}");
                next = r.end;
            }
            assert_eq!(next, n);
        }
        assert_eq!(chunks(85), vec![0..64, 64..80, 80..84, 84..85]);
        assert_eq!(chunks(31).len(), 5);
    }

    #[test]
    fn values_number_placeholders_row_by_row() {
        assert_eq!(values(2, 2), "($1, $2), ($3, $4)");
        assert_eq!(values(3, 1), "($1, $2, $3)");
    }
}
