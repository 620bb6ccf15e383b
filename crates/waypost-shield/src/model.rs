//! The linear classifier and its file format. Weights are a dense `buckets x 3` f32 matrix
//! (one row per hashed feature, one column per label) and predictions are a softmax over the
//! three class scores. On disk only non-zero rows are stored (delta-varint row index + three
//! little-endian f32), behind a magic/version header and followed by a CRC-32 of everything
//! before it, so a truncated or corrupted file is refused rather than silently mis-scoring.
//!
//! Layout: `b"WPSHIELD"`, u16 format version, u8 hash bits, u8 classes, u32 feature version,
//! u64 seed, u32 epochs, u32 training examples, f32 decision threshold, u32 row count,
//! rows..., u32 CRC-32.

use crate::error::{Result, ShieldError};
use crate::features::{FEATURE_VERSION, FeatureVec};
use crate::hash::crc32;

const MAGIC: &[u8; 8] = b"WPSHIELD";
const FORMAT_VERSION: u16 = 2;
/// Threshold of a freshly trained model, until training chooses one from the PR curve.
pub const DEFAULT_THRESHOLD: f32 = 0.5;
pub const CLASSES: usize = 3;

/// A trained (or empty) linear model.
#[derive(Clone, Debug, PartialEq)]
pub struct Model {
    pub(crate) bits: u8,
    pub(crate) weights: Vec<f32>,
    /// Training provenance, stored in the file for reproducibility.
    pub seed: u64,
    pub epochs: u32,
    pub examples: u32,
    /// P(unwanted) at which `Shield` calls a message positive; chosen at training time.
    pub threshold: f32,
}

impl Model {
    /// An all-zero model with `2^bits` buckets (predicts uniform probabilities).
    pub fn zeros(bits: u8) -> Model {
        assert!((8..=24).contains(&bits), "hash bits must be in 8..=24");
        Model {
            bits,
            weights: vec![0.0; (1usize << bits) * CLASSES],
            seed: 0,
            epochs: 0,
            examples: 0,
            threshold: DEFAULT_THRESHOLD,
        }
    }

    pub fn bits(&self) -> u8 {
        self.bits
    }

    /// Rows with at least one non-zero weight.
    pub fn nonzero_rows(&self) -> usize {
        self.weights
            .chunks_exact(CLASSES)
            .filter(|r| r.iter().any(|&w| w != 0.0))
            .count()
    }

    #[inline]
    pub(crate) fn logits(&self, fv: &FeatureVec) -> [f32; CLASSES] {
        let mut z = [0.0f32; CLASSES];
        for (&i, &v) in fv.idx.iter().zip(&fv.val) {
            let row = &self.weights[i as usize * CLASSES..i as usize * CLASSES + CLASSES];
            for k in 0..CLASSES {
                z[k] += row[k] * v;
            }
        }
        z
    }

    /// Class probabilities (ham, spam, smishing).
    pub fn probabilities(&self, fv: &FeatureVec) -> [f32; CLASSES] {
        softmax(self.logits(fv))
    }

    /// Weight of row `idx` for class `k`.
    pub(crate) fn weight(&self, idx: u32, k: usize) -> f32 {
        self.weights[idx as usize * CLASSES + k]
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.nonzero_rows() * 14);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.push(self.bits);
        out.push(CLASSES as u8);
        out.extend_from_slice(&FEATURE_VERSION.to_le_bytes());
        out.extend_from_slice(&self.seed.to_le_bytes());
        out.extend_from_slice(&self.epochs.to_le_bytes());
        out.extend_from_slice(&self.examples.to_le_bytes());
        out.extend_from_slice(&self.threshold.to_le_bytes());
        out.extend_from_slice(&(self.nonzero_rows() as u32).to_le_bytes());
        let mut last = 0u64;
        for (i, row) in self.weights.chunks_exact(CLASSES).enumerate() {
            if row.iter().all(|&w| w == 0.0) {
                continue;
            }
            write_varint(&mut out, i as u64 - last);
            last = i as u64;
            for w in row {
                out.extend_from_slice(&w.to_le_bytes());
            }
        }
        let crc = crc32(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Model> {
        let bad = |m: &str| ShieldError::Model(m.to_string());
        if bytes.len() < MAGIC.len() + 4 || &bytes[..MAGIC.len()] != MAGIC {
            return Err(bad("not a waypost-shield model (bad magic)"));
        }
        let (body, tail) = bytes.split_at(bytes.len() - 4);
        let stored = u32::from_le_bytes(tail.try_into().map_err(|_| bad("truncated"))?);
        if crc32(body) != stored {
            return Err(bad("checksum mismatch (file corrupted or truncated)"));
        }
        let mut r = Reader {
            buf: body,
            pos: MAGIC.len(),
        };
        let version = u16::from_le_bytes(r.array()?);
        if version != FORMAT_VERSION {
            return Err(bad(&format!(
                "unsupported format version {version} (expected {FORMAT_VERSION})"
            )));
        }
        let [bits] = r.array()?;
        let [classes] = r.array()?;
        if !(8..=24).contains(&bits) || classes as usize != CLASSES {
            return Err(bad("unsupported hash size or class count"));
        }
        let fv = u32::from_le_bytes(r.array()?);
        if fv != FEATURE_VERSION {
            return Err(bad(&format!(
                "model was trained with feature version {fv}, this build extracts {FEATURE_VERSION}; retrain it"
            )));
        }
        let mut model = Model::zeros(bits);
        model.seed = u64::from_le_bytes(r.array()?);
        model.epochs = u32::from_le_bytes(r.array()?);
        model.examples = u32::from_le_bytes(r.array()?);
        model.threshold = f32::from_le_bytes(r.array()?);
        if !(0.0..=1.0).contains(&model.threshold) {
            return Err(bad("decision threshold outside 0..=1"));
        }
        let rows = u32::from_le_bytes(r.array()?);
        let buckets = 1u64 << bits;
        let mut idx = 0u64;
        for n in 0..rows {
            let delta = r.varint()?;
            if n > 0 && delta == 0 {
                return Err(bad("row indices not increasing"));
            }
            idx = idx
                .checked_add(delta)
                .ok_or_else(|| bad("row index overflow"))?;
            if idx >= buckets {
                return Err(bad("row index out of range"));
            }
            for k in 0..CLASSES {
                let w = f32::from_le_bytes(r.array()?);
                if !w.is_finite() {
                    return Err(bad("non-finite weight"));
                }
                model.weights[idx as usize * CLASSES + k] = w;
            }
        }
        if r.pos != body.len() {
            return Err(bad("trailing bytes after weights"));
        }
        Ok(model)
    }
}

pub(crate) fn softmax(z: [f32; CLASSES]) -> [f32; CLASSES] {
    let m = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut e = z.map(|x| (x - m).exp());
    let s: f32 = e.iter().sum();
    for x in &mut e {
        *x /= s;
    }
    e
}

fn write_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let end = self.pos + N;
        let s = self
            .buf
            .get(self.pos..end)
            .ok_or_else(|| ShieldError::Model("truncated".into()))?;
        self.pos = end;
        Ok(s.try_into().unwrap_or([0; N]))
    }

    fn varint(&mut self) -> Result<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let [b] = self.array()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(ShieldError::Model("varint too long".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Model {
        let mut m = Model::zeros(10);
        m.weights[0] = 0.5;
        m.weights[3 * 7 + 2] = -1.25;
        m.weights[3 * 1023 + 1] = 3.0e-7;
        m.seed = 42;
        m.epochs = 3;
        m.examples = 9;
        m
    }

    #[test]
    fn round_trip_is_exact() {
        let m = sample();
        let bytes = m.to_bytes();
        let back = Model::from_bytes(&bytes).unwrap();
        assert_eq!(back, m);
        assert_eq!(back.to_bytes(), bytes);
        assert_eq!(back.nonzero_rows(), 3);
    }

    #[test]
    fn corruption_is_detected() {
        let bytes = sample().to_bytes();
        let mut flipped = bytes.clone();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 1;
        assert!(
            Model::from_bytes(&flipped)
                .unwrap_err()
                .to_string()
                .contains("checksum")
        );
        assert!(Model::from_bytes(&bytes[..bytes.len() - 1]).is_err());
        assert!(
            Model::from_bytes(b"NOTAMODELATALL")
                .unwrap_err()
                .to_string()
                .contains("magic")
        );
        assert!(Model::from_bytes(&[]).is_err());
    }

    #[test]
    fn softmax_sums_to_one_and_prefers_largest() {
        let p = softmax([1.0, 2.0, 3.0]);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(p[2] > p[1] && p[1] > p[0]);
        let p = softmax([1000.0, 0.0, -1000.0]);
        assert!(p[0] > 0.999 && p.iter().all(|x| x.is_finite()));
    }

    #[test]
    fn logits_are_weighted_sums() {
        let m = sample();
        let fv = FeatureVec {
            idx: vec![0, 7, 7],
            val: vec![2.0, 1.0, 1.0],
        };
        assert_eq!(m.logits(&fv), [1.0, 0.0, -2.5]);
    }
}
