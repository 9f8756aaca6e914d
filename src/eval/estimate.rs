//! Off-policy estimates of a candidate policy's value on a decision log: inverse
//! propensity scoring (IPS), self-normalized IPS and doubly robust, each with a
//! normal-approximation confidence interval, plus the logged policy's own value and the
//! effective sample size. Streaming: feed decisions one by one, then `finish`.

use std::collections::BTreeSet;

use ahash::{AHashMap, AHashSet};

use crate::catalog::CreativeId;
use crate::error::{Error, Result};
use crate::eval::log::{BadField, DecisionRecord};
use crate::eval::policy_name;
use crate::eval::replay::CandidatePolicy;
use crate::learn::inverse_normal_cdf;
use crate::select::Selector;

/// Which outcome is the reward.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RewardKind {
    /// The click, 0 or 1 (the default): values are click rates.
    #[default]
    Click,
    /// The conversion value: values are value per decision.
    ConversionValue,
}

/// How to evaluate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EvalOptions {
    /// The reward (default: the click).
    pub reward: RewardKind,
    /// Confidence level of the intervals, in (0, 1) (default 0.95).
    pub confidence: f64,
    /// Thompson sampling only: selections per decision to estimate the candidate's
    /// probabilities (default 64).
    pub thompson_draws: u32,
    /// Pseudo-observations with which the doubly robust reward model shrinks a
    /// (creative, top persona) mean toward the creative's mean, and that toward the
    /// overall mean (default 10).
    pub smoothing: f64,
    /// Let the candidate choose only among the creatives the log says were eligible
    /// (default true; see [`CandidatePolicy`]). Decisions that recorded no eligible
    /// creatives are never restricted.
    pub restrict_to_logged: bool,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            reward: RewardKind::Click,
            confidence: 0.95,
            thompson_draws: 64,
            smoothing: 10.0,
            restrict_to_logged: true,
        }
    }
}

/// A value with its confidence interval: `value ± z · std_error`, `z` from the
/// confidence level (1.96 for 95%).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Estimate {
    /// The estimate.
    pub value: f64,
    /// Its standard error: the sample standard deviation of the per-decision terms over
    /// √n (infinite with fewer than two decisions).
    pub std_error: f64,
    /// Lower end of the interval.
    pub low: f64,
    /// Upper end of the interval.
    pub high: f64,
}

impl Estimate {
    fn new(value: f64, std_error: f64, z: f64) -> Self {
        Estimate { value, std_error, low: value - z * std_error, high: value + z * std_error }
    }

    /// The mean of `terms` with the interval of the normal approximation.
    fn mean_of(terms: impl Iterator<Item = f64> + Clone, z: f64) -> Self {
        let (mut n, mut sum) = (0usize, 0.0f64);
        for t in terms.clone() {
            n += 1;
            sum += t;
        }
        let mean = sum / n as f64;
        if n < 2 {
            return Estimate::new(mean, f64::INFINITY, z);
        }
        let ss: f64 = terms.map(|t| (t - mean) * (t - mean)).sum();
        Estimate::new(mean, (ss / (n - 1) as f64 / n as f64).sqrt(), z)
    }

    /// True when `value` lies in the interval.
    pub fn covers(&self, value: f64) -> bool {
        self.low <= value && value <= self.high
    }
}

/// The result of an evaluation.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// The candidate policy's name (`greedy`, `epsilon:0.1`, ...).
    pub policy: String,
    /// The confidence level of the intervals.
    pub confidence: f64,
    /// Decisions read.
    pub decisions: usize,
    /// Decisions evaluated: those whose first slot has a known reward.
    pub evaluated: usize,
    /// Decisions skipped because their first slot's reward is not known yet.
    pub without_reward: usize,
    /// Decisions skipped because nothing was chosen.
    pub without_choice: usize,
    /// The logging policy's own value: the mean observed reward.
    pub logged: Estimate,
    /// Inverse propensity scoring: mean of `w·r`, with `w = π(logged creative) / propensity`.
    pub ips: Estimate,
    /// Self-normalized IPS: `Σ w·r / Σ w` (delta-method interval); `None` when the
    /// candidate would never choose a logged creative (`Σ w = 0`).
    pub snips: Option<Estimate>,
    /// Doubly robust: the reward model's prediction for the candidate's choice, corrected
    /// by `w · (r − prediction)` on the logged creative. The model is fitted on the other
    /// half of the log (cross-fitting on alternate decisions).
    pub dr: Estimate,
    /// Effective sample size `(Σ w)² / Σ w²`: how many decisions the estimate is worth.
    pub effective_sample_size: f64,
    /// Decisions in which the candidate could have chosen the logged creative (`w > 0`).
    pub matched: usize,
    /// The largest weight `w`.
    pub max_weight: f64,
    /// Persona names in the log that are not on the candidate's menu (ignored).
    pub unknown_personas: Vec<String>,
}

/// One evaluated decision, kept until `finish` (the reward model needs the whole log).
#[derive(Clone, Debug)]
struct Row {
    segment: u16,
    /// The logged creative in the candidate's catalog (`u32::MAX` when unknown to it).
    logged: u32,
    reward: f64,
    weight: f64,
    /// Start of this row's slice of `Evaluator::support`.
    support: u32,
    len: u32,
}

/// Sums for the reward model of one half of the log.
#[derive(Clone, Debug, Default)]
struct Model {
    cells: AHashMap<(u32, u16), (f64, f64)>,
    creatives: AHashMap<u32, (f64, f64)>,
    n: f64,
    sum: f64,
}

impl Model {
    fn add(&mut self, creative: u32, segment: u16, reward: f64) {
        let c = self.cells.entry((creative, segment)).or_default();
        c.0 += 1.0;
        c.1 += reward;
        let c = self.creatives.entry(creative).or_default();
        c.0 += 1.0;
        c.1 += reward;
        self.n += 1.0;
        self.sum += reward;
    }

    /// The smoothed mean reward of `creative` for people of `segment`.
    fn predict(&self, creative: u32, segment: u16, m: f64) -> f64 {
        let overall = if self.n > 0.0 { self.sum / self.n } else { 0.0 };
        let (n, s) = self.creatives.get(&creative).copied().unwrap_or_default();
        let per_creative = (s + m * overall) / (n + m);
        let (n, s) = self.cells.get(&(creative, segment)).copied().unwrap_or_default();
        (s + m * per_creative) / (n + m)
    }
}

/// Evaluates a candidate selector on a decision log.
///
/// For each decision: rebuild the profile from the logged persona scores, consent,
/// likes, dislikes and stage ([`DecisionRecord::to_profile`]) and the context
/// ([`DecisionRecord::to_context`]); ask the candidate for its probability π of each
/// creative for the first slot ([`CandidatePolicy`]); take the logged first-slot
/// creative `a`, its propensity `p` and reward `r`. Then `w = π(a) / p` and
///
/// - IPS `= mean(w·r)`,
/// - SNIPS `= Σ w·r / Σ w`,
/// - DR `= mean(Σ_c π(c)·r̂(c) + w·(r − r̂(a)))`, where `r̂` is the mean reward per
///   (creative, the person's top persona), smoothed toward the creative's mean and the
///   overall mean, fitted on the other half of the log.
///
/// Only the first slot is evaluated (with k > 1, later slots depend on the earlier
/// picks). The candidate is frozen: its statistics are read as they are and not updated
/// by the log.
#[derive(Debug)]
pub struct Evaluator<'a> {
    candidate: CandidatePolicy<'a>,
    options: EvalOptions,
    log: String,
    rows: Vec<Row>,
    support: Vec<(u32, f64)>,
    unknown: BTreeSet<String>,
    decisions: usize,
    without_reward: usize,
    without_choice: usize,
    allowed: AHashSet<CreativeId>,
    dist: Vec<(CreativeId, f64)>,
}

impl<'a> Evaluator<'a> {
    /// An evaluator of `candidate` on log `log` (the name used in error messages).
    pub fn new(candidate: &'a Selector, options: EvalOptions, log: &str) -> Result<Self> {
        if !(options.confidence > 0.0 && options.confidence < 1.0) {
            return Err(Error::invalid(
                "evaluation",
                "confidence",
                format!("{} must be strictly between 0 and 1", options.confidence),
            ));
        }
        if !(options.smoothing.is_finite() && options.smoothing > 0.0) {
            return Err(Error::invalid(
                "evaluation",
                "smoothing",
                format!("{} must be finite and > 0", options.smoothing),
            ));
        }
        Ok(Evaluator {
            candidate: CandidatePolicy::new(candidate, options.thompson_draws)?,
            options,
            log: log.to_owned(),
            rows: Vec::new(),
            support: Vec::new(),
            unknown: BTreeSet::new(),
            decisions: 0,
            without_reward: 0,
            without_choice: 0,
            allowed: AHashSet::new(),
            dist: Vec::new(),
        })
    }

    /// Decisions added so far.
    pub fn decisions(&self) -> usize {
        self.decisions
    }

    /// Adds the decision read from line `line`. Errors (naming the log, line and field)
    /// for a record that fails [`DecisionRecord::check`] (for instance a zero
    /// propensity) or a placement the candidate's catalog does not have.
    pub fn add(&mut self, line: usize, record: &DecisionRecord) -> Result<()> {
        self.decisions += 1;
        record.check().map_err(|bad| bad.at(&self.log, line))?;
        let Some(first) = record.chosen.first() else {
            self.without_choice += 1;
            return Ok(());
        };
        let Some(reward) = first.reward else {
            self.without_reward += 1;
            return Ok(());
        };
        let reward = match self.options.reward {
            RewardKind::Click => f64::from(u8::from(reward.click)),
            RewardKind::ConversionValue => reward.conversion_value,
        };
        let selector = self.candidate.selector();
        let catalog = selector.catalog();
        let placement = catalog.placement(&record.placement).map_err(|_| {
            BadField::new(
                "placement",
                format!(
                    "'{}' is not a placement of the candidate's catalog",
                    crate::error::quote(&record.placement)
                ),
            )
            .at(&self.log, line)
        })?;
        let (profile, unknown) = record.to_profile(catalog.menu(), &selector.config().stages);
        for name in unknown {
            self.unknown.insert(name);
        }
        let mut context = record.to_context();
        if record.context.seed.is_none() {
            // No logged seed: give each decision its own, so Thompson's replayed draws
            // are independent across decisions.
            context.seed = Some((line as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        }
        let restrict = self.options.restrict_to_logged && !record.eligible.is_empty();
        if restrict {
            self.allowed.clear();
            self.allowed.extend(record.eligible.iter().filter_map(|id| catalog.creative(id).ok()));
        }
        let allowed = restrict.then_some(&self.allowed);
        self.candidate.distribution(&profile, &context, placement, allowed, &mut self.dist)?;
        let logged = catalog.creative(&first.creative).ok();
        let pi = logged.map_or(0.0, |a| self.dist.iter().find(|(c, _)| *c == a).map_or(0.0, |(_, p)| *p));
        let segment = selector.segment(&profile).map_or(u16::MAX, |p| p.0);
        let start = self.support.len() as u32;
        self.support.extend(self.dist.iter().map(|(c, p)| (c.0, *p)));
        self.rows.push(Row {
            segment,
            logged: logged.map_or(u32::MAX, |c| c.0),
            reward,
            weight: pi / first.propensity,
            support: start,
            len: self.dist.len() as u32,
        });
        Ok(())
    }

    /// Adds every decision of a log reader's output (`(line, record)` pairs), calling
    /// `progress` with the count after each decision.
    pub fn add_all(
        &mut self,
        records: impl IntoIterator<Item = Result<(usize, DecisionRecord)>>,
        mut progress: impl FnMut(usize),
    ) -> Result<()> {
        for item in records {
            let (line, record) = item?;
            self.add(line, &record)?;
            progress(self.decisions);
        }
        Ok(())
    }

    /// The estimates. Errors when no decision had a known reward.
    pub fn finish(self) -> Result<Report> {
        let n = self.rows.len();
        if n == 0 {
            return Err(Error::invalid(
                "decision log",
                "chosen[0].reward",
                format!("{}: no decision has a chosen creative with a known reward", self.log),
            ));
        }
        let z = inverse_normal_cdf(0.5 + self.options.confidence / 2.0);
        let rows = &self.rows;
        let logged = Estimate::mean_of(rows.iter().map(|r| r.reward), z);
        let ips = Estimate::mean_of(rows.iter().map(|r| r.weight * r.reward), z);
        let sum_w: f64 = rows.iter().map(|r| r.weight).sum();
        let sum_w2: f64 = rows.iter().map(|r| r.weight * r.weight).sum();
        let snips = (sum_w > 0.0).then(|| {
            let value = rows.iter().map(|r| r.weight * r.reward).sum::<f64>() / sum_w;
            let mean_w = sum_w / n as f64;
            let se = if n < 2 {
                f64::INFINITY
            } else {
                let ss: f64 = rows.iter().map(|r| (r.weight * (r.reward - value) / mean_w).powi(2)).sum();
                (ss / (n - 1) as f64 / n as f64).sqrt()
            };
            Estimate::new(value, se, z)
        });
        // Cross-fitted reward models: rows alternate between two halves; each half is
        // predicted by the model of the other.
        let mut models = [Model::default(), Model::default()];
        for (i, r) in rows.iter().enumerate() {
            if r.logged != u32::MAX {
                models[i % 2].add(r.logged, r.segment, r.reward);
            }
        }
        let m = self.options.smoothing;
        let dr_terms: Vec<f64> = rows
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let other = &models[if models[1 - i % 2].n > 0.0 { 1 - i % 2 } else { i % 2 }];
                let support = &self.support[r.support as usize..(r.support + r.len) as usize];
                let direct: f64 = support.iter().map(|&(c, p)| p * other.predict(c, r.segment, m)).sum();
                let correction = if r.weight > 0.0 {
                    r.weight * (r.reward - other.predict(r.logged, r.segment, m))
                } else {
                    0.0
                };
                direct + correction
            })
            .collect();
        let dr = Estimate::mean_of(dr_terms.iter().copied(), z);
        Ok(Report {
            policy: policy_name(self.candidate.selector().config().learning.policy),
            confidence: self.options.confidence,
            decisions: self.decisions,
            evaluated: n,
            without_reward: self.without_reward,
            without_choice: self.without_choice,
            logged,
            ips,
            snips,
            dr,
            effective_sample_size: if sum_w2 > 0.0 { sum_w * sum_w / sum_w2 } else { 0.0 },
            matched: rows.iter().filter(|r| r.weight > 0.0).count(),
            max_weight: rows.iter().map(|r| r.weight).fold(0.0, f64::max),
            unknown_personas: self.unknown.into_iter().collect(),
        })
    }
}

impl Report {
    /// The report as a plain-text table (what the `evaluate` example prints).
    pub fn table(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let pct = self.confidence * 100.0;
        let _ = writeln!(
            out,
            "candidate policy: {}   decisions: {} read, {} evaluated ({} without reward, {} without a choice)",
            self.policy, self.decisions, self.evaluated, self.without_reward, self.without_choice
        );
        let _ = writeln!(out, "{:<28} {:>10}   {:>25}", "estimator", "value", format!("{pct:.0}% interval"));
        let row = |out: &mut String, name: &str, e: &Estimate| {
            let _ = writeln!(out, "{:<28} {:>10.5}   [{:>10.5}, {:>10.5}]", name, e.value, e.low, e.high);
        };
        row(&mut out, "logged policy (on-policy)", &self.logged);
        row(&mut out, "IPS", &self.ips);
        match &self.snips {
            Some(e) => row(&mut out, "self-normalized IPS", e),
            None => {
                let _ = writeln!(out, "{:<28} {:>10}", "self-normalized IPS", "n/a (Σw = 0)");
            }
        }
        row(&mut out, "doubly robust", &self.dr);
        let _ = writeln!(
            out,
            "effective sample size {:.1} of {} (candidate agrees with the log in {} decisions, max weight {:.1})",
            self.effective_sample_size, self.evaluated, self.matched, self.max_weight
        );
        if !self.unknown_personas.is_empty() {
            let _ = writeln!(
                out,
                "ignored personas not on the candidate's menu: {}",
                self.unknown_personas.join(", ")
            );
        }
        out
    }
}
