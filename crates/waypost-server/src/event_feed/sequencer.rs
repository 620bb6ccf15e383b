//! Orders what the tail reads into a feed with no gap. On PostgreSQL a
//! transaction takes its `seq` at insert but becomes visible at commit, so a
//! read of `seq > high` can see 101 before 100 commits. A missing number below
//! the highest one read is a *hole*: rows above it wait (at most `grace`) so
//! the feed stays in `seq` order and a stream's `Last-Event-ID` stays exact.
//! A hole older than `grace` is given up (a rolled-back or deleted row) but
//! still watched for `watch_for`; if its row appears after all, it is released
//! as *late* rather than lost. SQLite commits in `seq` order: holes there come
//! only from deleted rows and cost one `grace` at most.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;
use waypost_store::events::TAIL_MAX_ALSO;

/// A gap wider than this is not waited for: no plausible number of concurrent
/// transactions leaves it, while a purge or an empty table after one does.
pub const MAX_GAP: i64 = 256;

/// One row the feed releases.
#[derive(Debug, PartialEq)]
pub enum Release<R> {
    /// Everything below it has been released or given up.
    InOrder(i64, R),
    /// A row whose hole had been given up; streams that started before it
    /// deliver it without moving their `Last-Event-ID`.
    Late(i64, R),
}

#[derive(Debug)]
pub struct Sequencer<R> {
    high: i64,
    watermark: i64,
    pending: BTreeMap<i64, R>,
    holes: BTreeMap<i64, Instant>,
    late: BTreeMap<i64, Instant>,
    grace: Duration,
    watch_for: Duration,
}

impl<R> Sequencer<R> {
    /// Starts after `high`; `missing` are numbers below it that a first read
    /// did not find (transactions in flight when the feed started), watched as late.
    pub fn new(
        high: i64,
        missing: impl IntoIterator<Item = i64>,
        now: Instant,
        grace: Duration,
        watch_for: Duration,
    ) -> Self {
        Self {
            high,
            watermark: high,
            pending: BTreeMap::new(),
            holes: BTreeMap::new(),
            late: missing.into_iter().map(|s| (s, now)).collect(),
            grace,
            watch_for,
        }
    }

    /// The highest `seq` read: the next read starts after it.
    pub fn high(&self) -> i64 {
        self.high
    }

    /// Everything at or below it has been released (or given up).
    pub fn watermark(&self) -> i64 {
        self.watermark
    }

    /// The numbers the next read should also look for, young holes first.
    pub fn missing(&self) -> Vec<i64> {
        self.holes
            .keys()
            .chain(self.late.keys())
            .copied()
            .take(TAIL_MAX_ALSO)
            .collect()
    }

    /// Whether a young hole holds rows back (the tail should look again soon).
    pub fn waiting(&self) -> bool {
        !self.holes.is_empty()
    }

    /// Takes rows of one read (any order) and returns what may be released now, in order.
    pub fn ingest(&mut self, rows: Vec<(i64, R)>, now: Instant) -> Vec<Release<R>> {
        let mut out = Vec::new();
        let mut rows = rows;
        rows.sort_by_key(|(seq, _)| *seq);
        for (seq, row) in rows {
            if seq > self.high {
                let gap = seq - self.high - 1;
                if gap > 0 && gap <= MAX_GAP {
                    // Young holes first: they hold rows back; late ones only may be lost.
                    let room = TAIL_MAX_ALSO.saturating_sub(self.holes.len());
                    for hole in (self.high + 1..seq).take(room) {
                        self.holes.insert(hole, now);
                    }
                }
                self.high = seq;
                self.pending.insert(seq, row);
            } else if self.holes.remove(&seq).is_some() {
                self.pending.insert(seq, row);
            } else if self.late.remove(&seq).is_some() {
                out.push(Release::Late(seq, row));
            }
            // Anything else was read before: a duplicate of a released row.
        }
        while self.holes.len() + self.late.len() > TAIL_MAX_ALSO {
            self.late.pop_first();
        }
        self.expire(now);
        self.release(&mut out);
        out
    }

    fn expire(&mut self, now: Instant) {
        let grace = self.grace;
        let (old, young): (BTreeMap<_, _>, BTreeMap<_, _>) = std::mem::take(&mut self.holes)
            .into_iter()
            .partition(|(_, since)| now.duration_since(*since) >= grace);
        self.holes = young;
        self.late.extend(old.into_keys().map(|seq| (seq, now)));
        let watch_for = self.watch_for;
        self.late
            .retain(|_, since| now.duration_since(*since) < watch_for);
    }

    fn release(&mut self, out: &mut Vec<Release<R>>) {
        let first_hole = self.holes.keys().next().copied();
        while let Some(entry) = self.pending.first_entry() {
            if first_hole.is_some_and(|hole| hole < *entry.key()) {
                break;
            }
            let (seq, row) = entry.remove_entry();
            self.watermark = seq;
            out.push(Release::InOrder(seq, row));
        }
        self.watermark = match first_hole {
            Some(hole) => self.watermark.max(hole - 1),
            None => self.high,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRACE: Duration = Duration::from_millis(500);
    const WATCH: Duration = Duration::from_secs(30);

    fn seqs(out: &[Release<()>]) -> Vec<String> {
        out.iter()
            .map(|r| match r {
                Release::InOrder(s, _) => s.to_string(),
                Release::Late(s, _) => format!("late {s}"),
            })
            .collect()
    }

    fn rows(s: &[i64]) -> Vec<(i64, ())> {
        s.iter().map(|s| (*s, ())).collect()
    }

    #[test]
    fn contiguous_rows_pass_straight_through() {
        let t = Instant::now();
        let mut q = Sequencer::new(10, [], t, GRACE, WATCH);
        assert_eq!(seqs(&q.ingest(rows(&[11, 12, 13]), t)), ["11", "12", "13"]);
        assert_eq!((q.high(), q.watermark()), (13, 13));
        assert!(q.missing().is_empty());
    }

    #[test]
    fn a_row_committed_late_is_waited_for_and_order_kept() {
        let t = Instant::now();
        let mut q = Sequencer::new(10, [], t, GRACE, WATCH);
        assert_eq!(seqs(&q.ingest(rows(&[11, 13, 14]), t)), ["11"]);
        assert_eq!((q.watermark(), q.missing()), (11, vec![12]));
        assert!(q.waiting());
        let later = t + Duration::from_millis(30);
        assert_eq!(
            seqs(&q.ingest(rows(&[12, 15]), later)),
            ["12", "13", "14", "15"]
        );
        assert_eq!(q.watermark(), 15);
        assert!(q.missing().is_empty());
    }

    #[test]
    fn a_hole_is_given_up_after_grace_and_its_row_comes_late() {
        let t = Instant::now();
        let mut q = Sequencer::new(10, [], t, GRACE, WATCH);
        assert_eq!(seqs(&q.ingest(rows(&[12]), t)), Vec::<String>::new());
        assert_eq!(q.watermark(), 10);
        let t2 = t + GRACE;
        assert_eq!(seqs(&q.ingest(vec![], t2)), ["12"]);
        assert_eq!((q.watermark(), q.missing()), (12, vec![11]));
        assert!(!q.waiting());
        assert_eq!(
            seqs(&q.ingest(rows(&[11, 13]), t2 + GRACE)),
            ["late 11", "13"]
        );
        // Watched no longer than `watch_for`.
        let mut q = Sequencer::new(10, [], t, GRACE, WATCH);
        q.ingest(rows(&[12]), t);
        q.ingest(vec![], t + GRACE);
        q.ingest(vec![], t + GRACE + WATCH);
        assert!(q.missing().is_empty());
        assert!(q.ingest(rows(&[11]), t + GRACE + WATCH).is_empty());
    }

    #[test]
    fn rows_missing_at_start_are_watched_as_late() {
        let t = Instant::now();
        let mut q = Sequencer::new(20, [18], t, GRACE, WATCH);
        assert_eq!(q.watermark(), 20);
        assert_eq!(seqs(&q.ingest(rows(&[18, 21]), t)), ["late 18", "21"]);
    }

    #[test]
    fn duplicates_and_wide_gaps_are_not_held() {
        let t = Instant::now();
        let mut q = Sequencer::new(10, [], t, GRACE, WATCH);
        q.ingest(rows(&[11]), t);
        assert!(q.ingest(rows(&[11]), t).is_empty());
        let far = 13 + MAX_GAP;
        assert_eq!(seqs(&q.ingest(rows(&[far]), t)), [far.to_string()]);
        assert!(q.missing().is_empty());
    }

    #[test]
    fn the_watch_list_is_bounded() {
        let t = Instant::now();
        let mut q = Sequencer::new(0, [], t, GRACE, WATCH);
        for i in 0..10 {
            q.ingest(rows(&[(i + 1) * 200]), t);
        }
        assert_eq!(q.missing().len(), TAIL_MAX_ALSO);
    }
}
