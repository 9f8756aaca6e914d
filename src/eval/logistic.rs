//! A small L2-regularized logistic regression over hashed sparse binary features, the
//! reward model of the doubly robust estimator: what the click probability of a creative
//! is in a context. Fitted by AdaGrad stochastic gradient descent with a seeded shuffle,
//! so a fit is reproducible. Off the hot path; allocates its weight table once.

use crate::holdout::{fnv1a, splitmix64, FNV_OFFSET};
use crate::learn::Rng;

/// The hash of a feature name (`"c=hero_spa"`, `"a:user_feature_0=81ce…"`): FNV-1a 64.
pub fn feature_hash(name: &str) -> u64 {
    fnv1a(FNV_OFFSET, name.as_bytes())
}

/// The hash of the cross of two features (a context feature with a creative feature).
pub fn cross_hash(a: u64, b: u64) -> u64 {
    splitmix64(a ^ b.rotate_left(29))
}

/// Logistic regression `P(y = 1) = σ(Σ w_i)` over the active features `i` (binary, so
/// an example is the list of its feature hashes), with an L2 penalty `l2/2 · Σ w²`
/// applied to the weights an example touches, and a bias that starts at the logit of
/// the mean label.
#[derive(Clone, Debug)]
pub struct LogisticRegression {
    mask: u64,
    bias: f64,
    weights: Vec<f64>,
    squares: Vec<f64>,
    l2: f64,
    rate: f64,
}

impl LogisticRegression {
    /// A model with `2^bits` weight slots (features are hashed into them; 18 bits,
    /// 262,144 slots, is plenty for a few thousand distinct features), penalty `l2` and
    /// AdaGrad learning rate `rate` (0.2 is a good start).
    pub fn new(bits: u32, l2: f64, rate: f64) -> Self {
        let size = 1usize << bits.clamp(4, 24);
        LogisticRegression {
            mask: size as u64 - 1,
            bias: 0.0,
            weights: vec![0.0; size],
            squares: vec![0.0; size],
            l2: l2.max(0.0),
            rate,
        }
    }

    /// Fits on `examples` (feature hashes, label in `[0, 1]`) for `epochs` passes in a
    /// fresh order each pass drawn from `seed`. Starts from the current weights, so a
    /// model may be refitted on more data.
    pub fn fit(&mut self, examples: &[(&[u64], f64)], epochs: u32, seed: u64) {
        if examples.is_empty() {
            return;
        }
        let mean = examples.iter().map(|e| e.1).sum::<f64>() / examples.len() as f64;
        let mean = mean.clamp(1e-4, 1.0 - 1e-4);
        if self.bias == 0.0 {
            self.bias = (mean / (1.0 - mean)).ln();
        }
        let mut bias_square = 0.0f64;
        let mut order: Vec<usize> = (0..examples.len()).collect();
        let mut rng = Rng::new(seed);
        for _ in 0..epochs {
            for i in (1..order.len()).rev() {
                order.swap(i, rng.below(i + 1));
            }
            for &e in &order {
                let (features, y) = examples[e];
                let g = self.predict(features) - y;
                bias_square += g * g;
                self.bias -= self.rate * g / (bias_square.sqrt() + 1e-9);
                for f in features {
                    let i = (f & self.mask) as usize;
                    let grad = g + self.l2 * self.weights[i];
                    self.squares[i] += grad * grad;
                    self.weights[i] -= self.rate * grad / (self.squares[i].sqrt() + 1e-9);
                }
            }
        }
    }

    /// The predicted probability for an example with these features.
    pub fn predict(&self, features: &[u64]) -> f64 {
        let z = self.bias + features.iter().map(|f| self.weights[(f & self.mask) as usize]).sum::<f64>();
        1.0 / (1.0 + (-z.clamp(-30.0, 30.0)).exp())
    }

    /// Mean log loss on `examples` (lower is better; a constant at the mean rate `p`
    /// scores `-(p ln p + (1-p) ln(1-p))`).
    pub fn log_loss(&self, examples: &[(&[u64], f64)]) -> f64 {
        let n = examples.len().max(1) as f64;
        examples
            .iter()
            .map(|(f, y)| {
                let p = self.predict(f).clamp(1e-12, 1.0 - 1e-12);
                -(y * p.ln() + (1.0 - y) * (1.0 - p).ln())
            })
            .sum::<f64>()
            / n
    }
}
