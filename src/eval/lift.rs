//! The lift personalization earns over the holdout group: the click rate per arm of a
//! decision log whose decisions record their arm, the absolute and relative lift with
//! intervals and a two-sided test, and how many impressions a lift of a given size needs
//! to be detected (two-proportion z-test power calculation). Off the hot path.

use crate::error::{Error, Result};
use crate::eval::log::DecisionRecord;
use crate::holdout::Arm;
use crate::learn::inverse_normal_cdf;
pub use crate::learn::normal_cdf;

/// Impressions and clicks of one arm.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ArmStats {
    /// Impressions with a known reward.
    pub impressions: usize,
    /// Of which clicked.
    pub clicks: usize,
}

impl ArmStats {
    /// The click rate (0 with no impression).
    pub fn rate(&self) -> f64 {
        if self.impressions == 0 {
            0.0
        } else {
            self.clicks as f64 / self.impressions as f64
        }
    }
}

/// A value with its interval.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Interval {
    /// The estimate.
    pub value: f64,
    /// Lower end.
    pub low: f64,
    /// Upper end.
    pub high: f64,
}

impl Interval {
    /// True when `value` lies in the interval.
    pub fn covers(&self, value: f64) -> bool {
        self.low <= value && value <= self.high
    }
}

/// What a holdout shows.
#[derive(Clone, Debug, PartialEq)]
pub struct LiftReport {
    /// The confidence level of the intervals.
    pub confidence: f64,
    /// The held-out people's impressions.
    pub holdout: ArmStats,
    /// The personalized people's impressions.
    pub personalized: ArmStats,
    /// Decisions without an arm (logged before arms were recorded, or no holdout):
    /// counted, not used.
    pub without_arm: usize,
    /// Impressions whose reward is not known yet: counted, not used.
    pub without_reward: usize,
    /// `rate(personalized) − rate(holdout)`, with the unpooled normal interval.
    pub absolute: Interval,
    /// `rate(personalized) / rate(holdout) − 1`, with the interval of the log ratio
    /// (Katz); `None` when the holdout has no click.
    pub relative: Option<Interval>,
    /// Two-sided p-value of "no difference" (pooled two-proportion z-test).
    pub p_value: f64,
    /// The relative lift the power calculation is for (e.g. 0.05 for +5 %).
    pub min_lift: f64,
    /// The power the calculation is for (e.g. 0.8).
    pub power: f64,
    /// Total impressions (both arms, in the log's current split) needed to detect
    /// `min_lift` at this power and confidence, from the holdout's current rate;
    /// `None` when the rate or the split leave it undefined.
    pub impressions_needed: Option<f64>,
}

impl LiftReport {
    /// How many more impressions than the log has are needed (0 when enough).
    pub fn more_impressions_needed(&self) -> Option<f64> {
        let have = (self.holdout.impressions + self.personalized.impressions) as f64;
        self.impressions_needed.map(|n| (n - have).max(0.0).ceil())
    }

    /// The report as plain text.
    pub fn table(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let pct = self.confidence * 100.0;
        let _ = writeln!(out, "{:<14} {:>12} {:>8} {:>11}", "arm", "impressions", "clicks", "click rate");
        for (name, a) in [("holdout", &self.holdout), ("personalized", &self.personalized)] {
            let _ = writeln!(out, "{:<14} {:>12} {:>8} {:>11.6}", name, a.impressions, a.clicks, a.rate());
        }
        let a = &self.absolute;
        let _ = writeln!(out, "absolute lift  {:+.6}  {pct:.0}% [{:+.6}, {:+.6}]", a.value, a.low, a.high);
        match &self.relative {
            Some(r) => {
                let _ = writeln!(
                    out,
                    "relative lift  {:+.2}%  {pct:.0}% [{:+.2}%, {:+.2}%]   p = {:.4}",
                    100.0 * r.value,
                    100.0 * r.low,
                    100.0 * r.high,
                    self.p_value
                );
            }
            None => {
                let _ =
                    writeln!(out, "relative lift  n/a (no click in the holdout)   p = {:.4}", self.p_value);
            }
        }
        match (self.impressions_needed, self.more_impressions_needed()) {
            (Some(n), Some(more)) => {
                let _ = writeln!(
                    out,
                    "to detect a {:+.1}% lift with {:.0}% power: {:.0} impressions in this split ({} more)",
                    100.0 * self.min_lift,
                    100.0 * self.power,
                    n.ceil(),
                    more
                );
            }
            _ => {
                let _ = writeln!(out, "power: undefined (an arm is empty or the holdout rate is 0 or 1)");
            }
        }
        let _ = writeln!(
            out,
            "not used: {} decisions without an arm, {} impressions without a reward",
            self.without_arm, self.without_reward
        );
        out
    }

    /// The report as JSON, at full precision.
    pub fn to_json(&self) -> serde_json::Value {
        let iv = |i: &Interval| serde_json::json!({"value": i.value, "low": i.low, "high": i.high});
        serde_json::json!({
            "confidence": self.confidence,
            "holdout": {"impressions": self.holdout.impressions, "clicks": self.holdout.clicks, "rate": self.holdout.rate()},
            "personalized": {"impressions": self.personalized.impressions, "clicks": self.personalized.clicks, "rate": self.personalized.rate()},
            "decisions_without_arm": self.without_arm,
            "impressions_without_reward": self.without_reward,
            "absolute_lift": iv(&self.absolute),
            "relative_lift": self.relative.as_ref().map(iv),
            "p_value": self.p_value,
            "min_lift": self.min_lift,
            "power": self.power,
            "impressions_needed": self.impressions_needed,
            "more_impressions_needed": self.more_impressions_needed(),
        })
    }
}

/// Impressions the holdout arm needs to detect a click-rate change from `p_holdout`
/// to `p_personalized` with a two-sided two-proportion z-test at level `alpha` and
/// the given `power`, when the personalized arm gets `ratio` times as many impressions:
///
/// `n_h = (z_{1−α/2} √(p̄ q̄ (1 + 1/κ)) + z_{power} √(p₁q₁ + p₂q₂/κ))² / (p₂ − p₁)²`,
/// `p̄ = (p₁ + κ p₂)/(1 + κ)`, κ = `ratio` (Fleiss, Levin and Paik, ch. 4). The
/// personalized arm needs `κ · n_h`. `None` when a rate is outside (0, 1), the rates
/// are equal, or `ratio` is not positive.
pub fn holdout_impressions_needed(
    p_holdout: f64,
    p_personalized: f64,
    ratio: f64,
    alpha: f64,
    power: f64,
) -> Option<f64> {
    let (p1, p2, k) = (p_holdout, p_personalized, ratio);
    let ok = |p: f64| p > 0.0 && p < 1.0;
    if !(ok(p1) && ok(p2) && p1 != p2 && k > 0.0 && k.is_finite() && ok(alpha) && ok(power)) {
        return None;
    }
    let pbar = (p1 + k * p2) / (1.0 + k);
    let za = inverse_normal_cdf(1.0 - alpha / 2.0);
    let zb = inverse_normal_cdf(power);
    let a = za * (pbar * (1.0 - pbar) * (1.0 + 1.0 / k)).sqrt();
    let b = zb * (p1 * (1.0 - p1) + p2 * (1.0 - p2) / k).sqrt();
    Some((a + b).powi(2) / (p2 - p1).powi(2))
}

/// The lift of the personalized arm over the holdout on `records` (every chosen creative
/// with a known reward is an impression of its decision's arm), with intervals at
/// `confidence` and the impressions needed to detect a relative lift of `min_lift` with
/// `power`. Errors when an arm has no impression.
pub fn lift<'r>(
    records: impl IntoIterator<Item = &'r DecisionRecord>,
    confidence: f64,
    min_lift: f64,
    power: f64,
) -> Result<LiftReport> {
    if !(confidence > 0.0 && confidence < 1.0) {
        return Err(Error::invalid(
            "lift",
            "confidence",
            format!("{confidence} must be strictly between 0 and 1"),
        ));
    }
    if !(power > 0.0 && power < 1.0) {
        return Err(Error::invalid("lift", "power", format!("{power} must be strictly between 0 and 1")));
    }
    if !(min_lift.is_finite() && min_lift > 0.0) {
        return Err(Error::invalid("lift", "min_lift", format!("{min_lift} must be > 0 (0.05 is +5 %)")));
    }
    let (mut h, mut p) = (ArmStats::default(), ArmStats::default());
    let (mut without_arm, mut without_reward) = (0, 0);
    for record in records {
        let Some(arm) = record.arm else {
            without_arm += 1;
            continue;
        };
        let stats = if arm == Arm::Holdout { &mut h } else { &mut p };
        for c in &record.chosen {
            match c.reward {
                Some(r) => {
                    stats.impressions += 1;
                    stats.clicks += usize::from(r.click);
                }
                None => without_reward += 1,
            }
        }
    }
    for (name, a) in [("holdout", &h), ("personalized", &p)] {
        if a.impressions == 0 {
            return Err(Error::invalid(
                "lift",
                "arm",
                format!(
                    "no {name} impression with a known reward ({without_arm} decisions have no arm): \
                     log decisions with their arm (DecisionRecord::with_arm)"
                ),
            ));
        }
    }
    let z = inverse_normal_cdf(0.5 + confidence / 2.0);
    let (nh, np) = (h.impressions as f64, p.impressions as f64);
    let (ph, pp) = (h.rate(), p.rate());
    let diff = pp - ph;
    let se = (pp * (1.0 - pp) / np + ph * (1.0 - ph) / nh).sqrt();
    let absolute = Interval { value: diff, low: diff - z * se, high: diff + z * se };
    let relative = (h.clicks > 0 && p.clicks > 0).then(|| {
        let log_ratio = (pp / ph).ln();
        let se = ((1.0 - pp) / (np * pp) + (1.0 - ph) / (nh * ph)).sqrt();
        Interval {
            value: pp / ph - 1.0,
            low: (log_ratio - z * se).exp() - 1.0,
            high: (log_ratio + z * se).exp() - 1.0,
        }
    });
    let pooled = (h.clicks + p.clicks) as f64 / (nh + np);
    let se0 = (pooled * (1.0 - pooled) * (1.0 / nh + 1.0 / np)).sqrt();
    let p_value = if se0 > 0.0 { 2.0 * (1.0 - normal_cdf((diff / se0).abs())) } else { 1.0 };
    let ratio = np / nh;
    let impressions_needed =
        holdout_impressions_needed(ph, ph * (1.0 + min_lift), ratio, 1.0 - confidence, power)
            .map(|n| n * (1.0 + ratio));
    Ok(LiftReport {
        confidence,
        holdout: h,
        personalized: p,
        without_arm,
        without_reward,
        absolute,
        relative,
        p_value,
        min_lift,
        power,
        impressions_needed,
    })
}
