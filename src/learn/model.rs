//! The learned click model: a Bayesian logistic regression over sparse features with a
//! diagonal Gaussian posterior per weight, updated online in `record` and read
//! lock-free in `select` (the "assumed density filtering" form of Chapelle & Li's
//! Thompson-sampling logistic model, as AdPredictor uses it for ad click rates).
//!
//! Every weight is stored as two natural parameters, the data's share of the precision
//! `q` and of the precision-weighted mean `η`, in fixed point (2⁻²⁴ units) behind
//! atomics. The posterior is `mean = (q0·μ0 + η)/(q0 + q)`, `var = 1/(q0 + q)` with the
//! prior `(μ0, q0)` held in configuration, not in the state. Every update *adds* to `η`
//! and `q`, so the state is a sum like the event counts: deltas export and merge in any
//! order with identical results, and nothing here ever allocates or locks.
//!
//! The features of (creative c, person u, moment x), each with a value `x_f`:
//! - c's own weight, and c × device, c × daypart;
//! - c × the person's segment (their top persona, or none);
//! - per persona tag t of c, with share `ŵ_t` (`w / max(1, Σw)`) and the person's score
//!   `s` on it: tag rank × score (`ŵ_t` on weight `graded[rank][s]`, every score 0–9),
//!   tag rank × the persona's rank in the person's scores (`ŵ_t·s/9`), and the persona's
//!   own slope (`ŵ_t·s/9`);
//! - per attribute value of c: its main effect and its cross with device, daypart,
//!   channel and weather, and its weekend weight (Saturday and Sunday, local).
//!
//! The prior: every weight has mean 0; the persona prior sits in the offset, as the
//! creative's best single match `β·min(w, 1)·s/9` over its tags whose persona the person
//! scores at or above the threshold, `β = logit(ctr_perfect_match) −
//! logit(ctr_no_match)` (see `features::prior_lift`): a new creative starts where its
//! persona match puts it, and data moves every weight freely in either direction.

use std::sync::atomic::{AtomicI64, Ordering::Relaxed};

use crate::error::{Error, Result};

/// Fixed-point scale of the natural parameters.
pub(crate) const SCALE: f64 = (1u64 << 24) as f64;

/// Tag ranks told apart: primary, secondary, any other.
pub(crate) const TAG_RANKS: usize = 3;
/// Person ranks told apart: a persona is the person's top, second, third, or lower.
pub(crate) const PERSON_RANKS: usize = 4;
/// Score values 0..=9.
pub(crate) const SCORES: usize = 10;

/// Per creative: its own weight, × device, × daypart.
pub(crate) const CREATIVE_PARAMS: usize = 1 + super::DEVICES + super::DAYPARTS;
/// Channels and weathers told apart (see [`crate::Channel`], [`crate::Weather`]).
pub(crate) const CHANNELS: usize = 6;
pub(crate) const WEATHERS: usize = 7;
/// The context dimensions an attribute value is crossed with value by value, in the
/// order of its weights: device, daypart, channel, weather.
pub(crate) const ATTRIBUTE_CROSSES: [usize; 4] = [super::DEVICES, super::DAYPARTS, CHANNELS, WEATHERS];
/// Where an attribute value's weekend weight sits in its block (after the crosses): one
/// weight, active on Saturdays and Sundays (local), so weekdays are the baseline the
/// main effect and the crosses describe.
pub(crate) const ATTRIBUTE_WEEKEND: usize = 1 + super::DEVICES + super::DAYPARTS + CHANNELS + WEATHERS;
/// Per attribute value: main effect, one weight per value of each cross, the weekend.
pub(crate) const ATTRIBUTE_PARAMS: usize = ATTRIBUTE_WEEKEND + 1;

/// Offsets into the shared weights.
pub(crate) const GRADED: usize = 0;
pub(crate) const RANKED: usize = GRADED + TAG_RANKS * SCORES;
pub(crate) const SLOPES: usize = RANKED + TAG_RANKS * PERSON_RANKS;

/// One weight's natural parameters (data part), fixed point.
#[derive(Debug, Default)]
pub(crate) struct Param {
    eta: AtomicI64,
    q: AtomicI64,
}

/// The raw natural parameters of one weight: what snapshots carry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Natural {
    /// Precision-weighted mean contributed by data, in 2⁻²⁴ units.
    pub eta: i64,
    /// Precision contributed by data, in 2⁻²⁴ units (never negative).
    pub precision: i64,
}

impl Natural {
    /// True when no data contributed.
    pub fn is_zero(&self) -> bool {
        self.eta == 0 && self.precision == 0
    }

    /// `self − other`.
    pub(crate) fn minus(&self, other: &Natural) -> Natural {
        Natural {
            eta: self.eta.wrapping_sub(other.eta),
            precision: self.precision.wrapping_sub(other.precision),
        }
    }
}

impl Param {
    /// A weight no data has touched: it reads as its prior.
    pub const fn at_prior() -> Param {
        Param { eta: AtomicI64::new(0), q: AtomicI64::new(0) }
    }

    /// The posterior mean and variance under the prior (μ0, q0).
    #[inline]
    pub fn posterior(&self, mu0: f64, q0: f64) -> (f64, f64) {
        let eta = self.eta.load(Relaxed) as f64 / SCALE;
        let q = self.q.load(Relaxed) as f64 / SCALE;
        let total = q0 + q;
        ((q0 * mu0 + eta) / total, 1.0 / total)
    }

    /// The raw natural parameters.
    pub fn load(&self) -> Natural {
        Natural { eta: self.eta.load(Relaxed), precision: self.q.load(Relaxed) }
    }

    /// Overwrites the natural parameters (loading a snapshot).
    pub fn store(&self, n: &Natural) {
        self.eta.store(n.eta, Relaxed);
        self.q.store(n.precision, Relaxed);
    }

    /// Adds to the natural parameters; an error (and no change to that half) when a sum
    /// would overflow, so nothing ever wraps or saturates silently.
    pub fn add(&self, d: &Natural) -> Result<()> {
        for (cell, v, what) in [(&self.eta, d.eta, "eta"), (&self.q, d.precision, "precision")] {
            if v != 0 {
                cell.fetch_update(Relaxed, Relaxed, |x| x.checked_add(v)).map_err(|x| {
                    Error::invalid(
                        "learned model",
                        what,
                        format!("adding {v} to {x} overflows: the weight is saturated"),
                    )
                })?;
            }
        }
        Ok(())
    }

    /// Whether adding `d` would overflow.
    pub fn would_overflow(&self, d: &Natural) -> bool {
        self.eta.load(Relaxed).checked_add(d.eta).is_none()
            || self.q.load(Relaxed).checked_add(d.precision).is_none()
    }
}

/// The model's dense weights: per creative, shared, and per attribute value. The
/// (creative, segment) weights live in the segment table next to the event counts.
#[derive(Debug)]
pub(crate) struct Model {
    pub creative: Box<[Param]>,
    pub shared: Box<[Param]>,
    pub attributes: Box<[Param]>,
}

impl Model {
    /// Weights at the prior for `creatives` creatives, a menu of `personas` and
    /// `attribute_values` distinct attribute values.
    pub fn new(creatives: usize, personas: usize, attribute_values: usize) -> Model {
        let make = |n: usize| -> Box<[Param]> { (0..n).map(|_| Param::default()).collect() };
        Model {
            creative: make(creatives * CREATIVE_PARAMS),
            shared: make(SLOPES + personas),
            attributes: make(attribute_values * ATTRIBUTE_PARAMS),
        }
    }
}

/// The logistic function.
#[inline]
pub(crate) fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// The log-odds of a rate in (0, 1).
#[inline]
pub(crate) fn logit(p: f64) -> f64 {
    (p / (1.0 - p)).ln()
}

/// The posterior mean click rate of a logit with mean `m` and variance `v` (the probit
/// approximation of the logistic-normal integral, MacKay 1992).
#[inline]
pub(crate) fn mean_rate(m: f64, v: f64) -> f64 {
    sigmoid(m / probit_scale(v))
}

/// What [`mean_rate`] divides the mean log-odds by at variance `v`: `√(1 + πv/8)`.
#[inline]
pub(crate) fn probit_scale(v: f64) -> f64 {
    (1.0 + std::f64::consts::PI * v / 8.0).sqrt()
}

/// The updates of one impression (with no click yet) to a feature with value `x` and
/// current mean `m`, given the predicted rate `p` and the logit's variance `v`: the
/// one-step Laplace/ADF update of a diagonal Gaussian logistic model.
#[inline]
pub(crate) fn impression_update(x: f64, m: f64, p: f64, v: f64) -> Natural {
    let pq = p * (1.0 - p);
    let denom = 1.0 + v * pq;
    let dq = x * x * pq / denom;
    let deta = dq * m - x * p / denom;
    Natural { eta: (deta * SCALE).round() as i64, precision: (dq * SCALE).round() as i64 }
}

/// The extra update a click adds to its impression's: the difference between the
/// updates for a click and for no click.
#[inline]
pub(crate) fn click_update(x: f64, p: f64, v: f64) -> Natural {
    let denom = 1.0 + v * p * (1.0 - p);
    Natural { eta: (x / denom * SCALE).round() as i64, precision: 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_weight_is_its_prior() {
        let p = Param::default();
        assert_eq!(p.posterior(0.5, 4.0), (0.5, 0.25));
    }

    #[test]
    fn clicks_raise_and_impressions_lower_the_mean_and_both_add_precision() {
        let w = Param::default();
        let (m, v) = w.posterior(0.0, 1.0);
        let p = sigmoid(-3.0 + m);
        w.add(&impression_update(1.0, m, p, v)).unwrap();
        let (m1, v1) = w.posterior(0.0, 1.0);
        assert!(m1 < 0.0 && v1 < 1.0, "{m1} {v1}");
        w.add(&click_update(1.0, p, v)).unwrap();
        let (m2, _) = w.posterior(0.0, 1.0);
        assert!(m2 > 0.5, "a click from a 5 % prediction moves the weight up: {m2}");
    }

    #[test]
    fn overflow_is_an_error_not_a_wrap() {
        let w = Param::default();
        w.store(&Natural { eta: i64::MAX - 1, precision: 0 });
        let err = w.add(&Natural { eta: 5, precision: 0 }).unwrap_err().to_string();
        assert!(err.contains("overflows"), "{err}");
        assert_eq!(w.load().eta, i64::MAX - 1);
    }

    #[test]
    fn many_events_converge_to_the_true_rate() {
        // One feature, rate 10 %: the posterior mean rate approaches it.
        let w = Param::default();
        let offset = logit(0.02);
        let mut rng = crate::learn::Rng::new(7);
        for _ in 0..20_000 {
            let (m, v) = w.posterior(0.0, 1.0);
            let p = sigmoid(offset + m);
            w.add(&impression_update(1.0, m, p, v)).unwrap();
            if rng.unit() < 0.10 {
                w.add(&click_update(1.0, p, v)).unwrap();
            }
        }
        let (m, v) = w.posterior(0.0, 1.0);
        let rate = mean_rate(offset + m, v);
        assert!((rate - 0.10).abs() < 0.01, "{rate}");
    }
}
