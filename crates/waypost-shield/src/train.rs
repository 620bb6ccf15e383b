//! Training: multinomial logistic regression (softmax over ham/spam/smishing) fitted by
//! AdaGrad SGD over the hashed features. Single-threaded and driven only by `SplitMix64(seed)`,
//! so the same seed and data give a byte-identical model. Classes are re-weighted by the
//! square root of inverse frequency so the rare smishing class is not drowned out by ham.

use crate::data::Example;
use crate::features::FeatureVec;
use crate::hash::SplitMix64;
use crate::lists::Lists;
use crate::model::{CLASSES, Model, softmax};
use crate::shield::training_features;

/// Hyper-parameters. Defaults are the ones used for the shipped model.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainConfig {
    pub seed: u64,
    pub epochs: u32,
    pub learning_rate: f32,
    /// L2 penalty applied to the weights a sample touches.
    pub l2: f32,
    /// log2 of the number of hash buckets (clamped to 8..=24).
    pub bits: u8,
    pub balance_classes: bool,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            seed: 42,
            epochs: 10,
            learning_rate: 0.2,
            l2: 1e-4,
            bits: 18,
            balance_classes: true,
        }
    }
}

/// Trains a model. `progress(done, total)` is called periodically; `total` counts feature
/// extraction (one unit per example) plus one unit per example per epoch.
pub fn train(examples: &[Example], cfg: &TrainConfig, progress: &dyn Fn(u64, u64)) -> Model {
    // Out-of-range hash sizes are clamped rather than panicking in a CLI-facing function.
    let cfg = &TrainConfig {
        bits: cfg.bits.clamp(8, 24),
        ..cfg.clone()
    };
    let lists = Lists::embedded();
    let n = examples.len() as u64;
    let total = n * (u64::from(cfg.epochs) + 1);
    let mut done = 0u64;
    let feats: Vec<FeatureVec> = examples
        .iter()
        .map(|e| {
            done += 1;
            if done.is_multiple_of(512) {
                progress(done, total);
            }
            training_features(&e.text, &lists, cfg.bits)
        })
        .collect();
    let labels: Vec<usize> = examples.iter().map(|e| e.label.index()).collect();
    let model = train_features(&feats, &labels, cfg, &mut |d| progress(n + d, total));
    progress(total, total);
    model
}

/// Core optimiser over pre-computed features (lets evaluation reuse features across folds).
pub(crate) fn train_features(
    feats: &[FeatureVec],
    labels: &[usize],
    cfg: &TrainConfig,
    progress: &mut dyn FnMut(u64),
) -> Model {
    let mut model = Model::zeros(cfg.bits);
    model.seed = cfg.seed;
    model.epochs = cfg.epochs;
    model.examples = feats.len() as u32;
    let mut g2 = vec![0.0f32; model.weights.len()];

    let mut counts = [0usize; CLASSES];
    for &l in labels {
        counts[l] += 1;
    }
    let present = counts.iter().filter(|&&c| c > 0).count().max(1);
    let class_weight: [f32; CLASSES] = std::array::from_fn(|k| {
        if !cfg.balance_classes || counts[k] == 0 {
            1.0
        } else {
            ((feats.len() as f32) / (present as f32 * counts[k] as f32)).sqrt()
        }
    });

    let mut rng = SplitMix64::new(cfg.seed);
    let mut order: Vec<usize> = (0..feats.len()).collect();
    let mut done = 0u64;
    for _ in 0..cfg.epochs {
        rng.shuffle(&mut order);
        for &i in &order {
            let fv = &feats[i];
            let p = softmax(model.logits(fv));
            let y = labels[i];
            let cw = class_weight[y];
            let grad: [f32; CLASSES] =
                std::array::from_fn(|k| (p[k] - f32::from(u8::from(k == y))) * cw);
            for (&idx, &v) in fv.idx.iter().zip(&fv.val) {
                let base = idx as usize * CLASSES;
                for k in 0..CLASSES {
                    let w = model.weights[base + k];
                    let g = grad[k] * v + cfg.l2 * w;
                    if g == 0.0 {
                        continue;
                    }
                    g2[base + k] += g * g;
                    model.weights[base + k] =
                        w - cfg.learning_rate * g / (g2[base + k].sqrt() + 1e-8);
                }
            }
            done += 1;
            if done.is_multiple_of(512) {
                progress(done);
            }
        }
    }
    model
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reason::Label;
    use crate::shield::Shield;

    fn tiny() -> Vec<Example> {
        let spam = [
            "WINNER! You have won a £1000 prize, call 09061743386 now to claim",
            "Free entry in our weekly draw, txt WIN to 87066 to claim",
            "URGENT your mobile was awarded a £2000 bonus, call 09064019788",
            "Congratulations you won a free holiday, claim at www.claim-prize.xyz",
        ];
        let smish = [
            "Your parcel is held, pay the fee at paypa1-login.com/x",
            "Your bank account is locked, verify at http://amaz0n-security.com/verify",
            "HMRC refund pending, confirm your card at hmrc.tax-refund-claim.com",
        ];
        let ham = [
            "are we still on for lunch tomorrow?",
            "ok see you at the pub at 8",
            "can you pick up milk on the way home",
            "thanks for dinner last night, it was lovely",
            "running late, be there in ten minutes",
            "happy birthday! hope you have a great day",
        ];
        let mut v = Vec::new();
        v.extend(spam.iter().map(|t| Example::new(Label::Spam, *t)));
        v.extend(smish.iter().map(|t| Example::new(Label::Smishing, *t)));
        v.extend(ham.iter().map(|t| Example::new(Label::Ham, *t)));
        v
    }

    fn small_cfg(seed: u64) -> TrainConfig {
        TrainConfig {
            seed,
            epochs: 5,
            bits: 14,
            ..TrainConfig::default()
        }
    }

    #[test]
    fn same_seed_same_bytes_different_seed_different_bytes() {
        let data = tiny();
        let a = train(&data, &small_cfg(7), &|_, _| {}).to_bytes();
        let b = train(&data, &small_cfg(7), &|_, _| {}).to_bytes();
        let c = train(&data, &small_cfg(8), &|_, _| {}).to_bytes();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(Model::from_bytes(&a).unwrap().to_bytes(), a);
    }

    #[test]
    fn learns_the_training_set_and_reports_progress() {
        let data = tiny();
        let calls = std::cell::Cell::new(0u64);
        let model = train(&data, &small_cfg(1), &|d, t| {
            assert!(d <= t);
            calls.set(d);
        });
        assert_eq!(calls.get(), data.len() as u64 * 6);
        let shield = Shield::new(model, Lists::embedded());
        for e in &data {
            assert_eq!(
                shield.classify(&e.text).is_positive(),
                e.label.is_positive(),
                "{:?}",
                e.label
            );
        }
    }
}
