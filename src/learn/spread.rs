//! How much creatives differ, learned from the data: empirical-Bayes estimates of the
//! prior spread of a creative's own weight and of its crosses (device, daypart,
//! segment), re-derived from the model's state whenever the pruning index is rebuilt.
//!
//! The configured `prior_sd` and `prior_sd_cross` are where the estimates start, worth
//! [`PSEUDO_WEIGHTS`] weights of evidence; the data moves them. In a world where the
//! creatives of a persona are alike the spread shrinks, so a creative never shown is
//! lifted (and tried) less and the shared persona curves take more of each click's
//! credit; where they differ widely it grows, and exploring pays more.
//!
//! The estimate is a pure function of the state and the configuration, so two
//! instances holding the same statistics (a fleet after a merge, a snapshot reloaded)
//! score alike.

use super::features::Prior;
use super::model::{Natural, CREATIVE_PARAMS, SCALE};
use super::{LearnedStats, PriorSpread};

/// How many weights' worth of evidence the configured spread counts as.
pub(crate) const PSEUDO_WEIGHTS: f64 = 20.0;

/// The range a learned spread (a standard deviation, in log-odds) is kept in.
pub(crate) const SD_RANGE: (f64, f64) = (0.05, 2.0);

/// Fixed-point scale of [`estimate`]'s sums: integer sums come out the same in any
/// order, so the estimate does not depend on where a weight sits in memory (the
/// segment table's order differs between two instances holding the same statistics).
const SUM_SCALE: f64 = (1u64 << 24) as f64;

/// The prior variance `τ²` of a family of weights whose prior mean is 0, estimated by
/// the method of moments from each weight's data message (`d = η/q`, the likelihood
/// part of its posterior mean, with variance `1/q`): `E[d² − 1/q] = τ²` for every
/// weight, so any weighting of the `d² − 1/q` is unbiased. Each weight counts by how
/// much its message says at the configured spread, `(τ0²/(τ0² + 1/q))²` (one pass, no
/// iteration: a rebuild pays for it), and the configured variance counts as
/// [`PSEUDO_WEIGHTS`] weights. Weights no data touched say nothing. Returns a variance
/// within [`SD_RANGE`]².
pub(crate) fn estimate(weights: impl Iterator<Item = Natural>, configured: f64) -> f64 {
    let (lo, hi) = (SD_RANGE.0 * SD_RANGE.0, SD_RANGE.1 * SD_RANGE.1);
    let fixed = |x: f64| (x * SUM_SCALE) as i64;
    let (mut num, mut den) = (0i64, 0i64);
    for n in weights.filter(|n| n.precision > 0) {
        let q = n.precision as f64 / SCALE;
        let d = n.eta as f64 / SCALE / q;
        let s2 = 1.0 / q;
        let w = (configured / (configured + s2)).powi(2);
        num = num.saturating_add(fixed(w * (d * d - s2)));
        den = den.saturating_add(fixed(w));
    }
    if den == 0 {
        return configured.clamp(lo, hi);
    }
    let (num, den) = (num as f64 / SUM_SCALE, den as f64 / SUM_SCALE);
    ((PSEUDO_WEIGHTS * configured + num) / (PSEUDO_WEIGHTS + den)).clamp(lo, hi)
}

impl LearnedStats {
    /// The spreads of the creatives' own weights, of their device and daypart crosses
    /// and of their segment crosses, each estimated from the data ([`estimate`]) from
    /// `configured`'s.
    pub(crate) fn learned_spread(&self, configured: &Prior) -> PriorSpread {
        let creative = &self.model.creative;
        let own = creative.iter().step_by(CREATIVE_PARAMS).map(|w| w.load());
        let crosses =
            creative.chunks(CREATIVE_PARAMS).flat_map(|block| block.iter().skip(1)).map(|w| w.load());
        let segments = self.segment_slots().map(|(_, _, slot)| slot.param.load());
        PriorSpread {
            creative: estimate(own, 1.0 / configured.q0_creative).sqrt(),
            context: estimate(crosses, 1.0 / configured.q0).sqrt(),
            segment: estimate(segments, 1.0 / configured.q0_segment).sqrt(),
        }
    }
}

impl PriorSpread {
    /// The spreads `prior` holds.
    pub(crate) fn of(prior: &Prior) -> PriorSpread {
        PriorSpread {
            creative: (1.0 / prior.q0_creative).sqrt(),
            context: (1.0 / prior.q0).sqrt(),
            segment: (1.0 / prior.q0_segment).sqrt(),
        }
    }

    /// `prior` with these spreads.
    pub(crate) fn apply(&self, prior: &Prior) -> Prior {
        Prior {
            q0_creative: 1.0 / (self.creative * self.creative),
            q0: 1.0 / (self.context * self.context),
            q0_segment: 1.0 / (self.segment * self.segment),
            ..*prior
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Messages of `n` weights whose true values have sd `tau`, each seen with precision
    /// `q` (its message is the true value plus noise of variance 1/q).
    fn drawn(n: usize, tau: f64, q: f64, seed: u64) -> Vec<Natural> {
        let mut rng = crate::learn::Rng::new(seed);
        (0..n)
            .map(|_| {
                let d = tau * rng.normal() + rng.normal() / q.sqrt();
                Natural { eta: (d * q * SCALE).round() as i64, precision: (q * SCALE).round() as i64 }
            })
            .collect()
    }

    #[test]
    fn the_spread_follows_the_data_from_the_configured_start() {
        for (tau, q) in [(0.1, 400.0), (0.5, 50.0), (1.0, 20.0)] {
            let m = drawn(2_000, tau, q, 3);
            let sd = estimate(m.into_iter(), 0.25).sqrt();
            assert!((sd - tau).abs() < 0.15 * tau + 0.02, "true {tau}: {sd}");
        }
    }

    #[test]
    fn no_data_keeps_the_configured_spread_and_little_data_moves_it_little() {
        assert_eq!(estimate(std::iter::empty(), 0.25), 0.25);
        assert_eq!(estimate(vec![Natural::default(); 100].into_iter(), 0.25), 0.25);
        // Five alike creatives against 20 pseudo-weights at sd 0.5.
        let sd = estimate(drawn(5, 0.0, 1_000.0, 4).into_iter(), 0.25).sqrt();
        assert!(sd > 0.4 && sd < 0.5, "{sd}");
    }

    #[test]
    fn the_spread_stays_in_range() {
        assert_eq!(estimate(drawn(1_000, 5.0, 100.0, 5).into_iter(), 0.25), SD_RANGE.1 * SD_RANGE.1);
        assert_eq!(estimate(drawn(10_000, 0.0, 1e6, 6).into_iter(), 0.25), SD_RANGE.0 * SD_RANGE.0);
    }

    #[test]
    fn the_order_of_the_weights_does_not_change_the_estimate() {
        let mut m = drawn(3_000, 0.4, 30.0, 7);
        let a = estimate(m.iter().copied(), 0.04);
        m.reverse();
        m.swap(0, 1_500);
        assert_eq!(estimate(m.iter().copied(), 0.04).to_bits(), a.to_bits());
    }
}
