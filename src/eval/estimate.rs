//! Off-policy estimates of a target policy's value on a decision log, over every slot
//! of every decision: inverse propensity scoring (IPS, per position: the independence
//! estimator), self-normalized IPS and doubly robust, each with a normal interval and a
//! seeded bootstrap interval, plus the logged policy's own value, per-position values,
//! the effective sample size and warnings. Streaming: feed decisions, then `finish`.

use std::collections::BTreeSet;

use ahash::{AHashMap, AHashSet};

use crate::catalog::CreativeId;
use crate::error::{Error, Result};
use crate::eval::log::{BadField, DecisionRecord};
use crate::eval::logistic::{cross_hash, feature_hash, LogisticRegression};
use crate::eval::policy_name;
use crate::eval::replay::{CandidatePolicy, Eligibility};
use crate::learn::{inverse_normal_cdf, Rng};
use crate::select::Selector;

/// Which outcome is the reward.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RewardKind {
    /// The click, 0 or 1 (the default): values are click rates.
    #[default]
    Click,
    /// The conversion value: values are value per impression.
    ConversionValue,
}

/// The policy whose value is estimated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Target {
    /// The selector given to the evaluator, under its configured policy (the default).
    #[default]
    Selector,
    /// Uniformly random among the eligible creatives: the logged eligible creatives
    /// when recorded, otherwise those the selector's catalog finds eligible (for a log
    /// without targeting data, every creative of the placement). Each creative has
    /// probability `1/#eligible` at every position.
    Uniform,
    /// The logging policy itself (on-policy value: the mean observed reward; every
    /// weight is 1).
    Logged,
}

/// The reward model `r̂(context, creative)` of the doubly robust estimator.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RewardModel {
    /// Logistic for click rewards, means for conversion values (the default).
    #[default]
    Auto,
    /// The mean reward per (creative, top persona), shrunk toward the creative's mean
    /// and the overall mean (`smoothing` pseudo-observations). Uses no other context.
    Means,
    /// L2 logistic regression over the creative, its attributes, the position, the
    /// context (device, daypart, channel, free attributes such as OBD user features),
    /// persona scores, and crosses of each context feature with the creative and its
    /// attributes. Clicks only.
    Logistic,
}

impl RewardModel {
    /// `auto`, `means` or `logistic`.
    pub fn name(self) -> &'static str {
        match self {
            RewardModel::Auto => "auto",
            RewardModel::Means => "means",
            RewardModel::Logistic => "logistic",
        }
    }
}

/// How to evaluate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EvalOptions {
    /// The reward (default: the click).
    pub reward: RewardKind,
    /// Confidence level of the intervals, in (0, 1) (default 0.95).
    pub confidence: f64,
    /// Selections per decision to estimate the probabilities of Thompson sampling, and
    /// of the exploring policies beyond the first position (default 64).
    pub thompson_draws: u32,
    /// Pseudo-observations of the means reward model (default 10).
    pub smoothing: f64,
    /// Let the target choose only among the creatives the log says were eligible
    /// (default true; see [`CandidatePolicy`]). Decisions that recorded no eligible
    /// creatives are never restricted.
    pub restrict_to_logged: bool,
    /// Bootstrap resamples of decisions for the percentile intervals (0: none; default
    /// 200).
    pub bootstrap: u32,
    /// Seed of the bootstrap and of the reward model's fit (default 1).
    pub seed: u64,
    /// The doubly robust reward model (default [`RewardModel::Auto`]).
    pub reward_model: RewardModel,
    /// Cross-fitting folds of the reward model, at least 2 (default 5): decision `d` is
    /// predicted by the model fitted on the decisions of the other folds (`d mod folds`).
    pub folds: u32,
    /// L2 penalty of the logistic reward model (default 1e-3).
    pub l2: f64,
    /// Warn when the effective sample size is below this share of the evaluated
    /// impressions (default 0.1).
    pub min_ess_share: f64,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            reward: RewardKind::Click,
            confidence: 0.95,
            thompson_draws: 64,
            smoothing: 10.0,
            restrict_to_logged: true,
            bootstrap: 200,
            seed: 1,
            reward_model: RewardModel::Auto,
            folds: 5,
            l2: 1e-3,
            min_ess_share: 0.1,
        }
    }
}

/// A value with its intervals: the normal one, `value ± z · std_error` (`z` from the
/// confidence level, 1.96 for 95%), and the bootstrap percentile one. For click rates
/// both are clipped to [0, 1].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Estimate {
    /// The estimate.
    pub value: f64,
    /// Its standard error, by the delta method over decisions (a decision's slots are
    /// not independent); infinite with fewer than two decisions.
    pub std_error: f64,
    /// Lower end of the normal interval.
    pub low: f64,
    /// Upper end of the normal interval.
    pub high: f64,
    /// The bootstrap percentile interval (decisions resampled with replacement), when
    /// asked for.
    pub bootstrap: Option<(f64, f64)>,
}

impl Estimate {
    fn new(value: f64, std_error: f64, z: f64) -> Self {
        Estimate {
            value,
            std_error,
            low: value - z * std_error,
            high: value + z * std_error,
            bootstrap: None,
        }
    }

    /// `Σ a / Σ b` over groups (decisions), with the delta-method standard error
    /// `√(Σ (a − V·b)² · D/(D−1)) / Σ b`. With `b` = the number of slots it is the mean
    /// of the per-slot terms (and, one slot per decision, exactly the sample standard
    /// deviation over √n); with `b` = the weights it is self-normalized IPS.
    fn ratio(groups: &[(f64, f64)], z: f64) -> Option<Self> {
        let a: f64 = groups.iter().map(|g| g.0).sum();
        let b: f64 = groups.iter().map(|g| g.1).sum();
        if b <= 0.0 {
            return None;
        }
        let value = a / b;
        let d = groups.len();
        if d < 2 {
            return Some(Estimate::new(value, f64::INFINITY, z));
        }
        let ss: f64 = groups.iter().map(|g| (g.0 - value * g.1).powi(2)).sum();
        Some(Estimate::new(value, (ss * d as f64 / (d - 1) as f64).sqrt() / b, z))
    }

    fn clip(&mut self, low: f64, high: f64) {
        self.low = self.low.clamp(low, high);
        self.high = self.high.clamp(low, high);
        if let Some((l, h)) = &mut self.bootstrap {
            *l = l.clamp(low, high);
            *h = h.clamp(low, high);
        }
    }

    /// True when `value` lies in the normal interval.
    pub fn covers(&self, value: f64) -> bool {
        self.low <= value && value <= self.high
    }
}

/// The estimates of one position (1 = first).
#[derive(Clone, Debug, PartialEq)]
pub struct PositionReport {
    /// The position, from 1: the index in the decision's chosen list, or the logged
    /// `position` context attribute of a one-slot decision (the OBD layout).
    pub position: u32,
    /// Impressions evaluated at this position.
    pub slots: usize,
    /// The logged policy's value at this position.
    pub logged: Estimate,
    /// IPS at this position.
    pub ips: Estimate,
    /// Self-normalized IPS at this position.
    pub snips: Option<Estimate>,
}

/// The result of an evaluation.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// The target policy's name (`greedy`, `epsilon:0.1`, `uniform`, `logged`, ...).
    pub policy: String,
    /// The confidence level of the intervals.
    pub confidence: f64,
    /// Bootstrap resamples behind the bootstrap intervals (0: none).
    pub bootstrap: u32,
    /// Decisions read.
    pub decisions: usize,
    /// Decisions with at least one evaluated impression.
    pub evaluated: usize,
    /// Chosen creatives (impressions) read, over all decisions and positions.
    pub slots: usize,
    /// Impressions evaluated: every one with a known reward.
    pub slots_evaluated: usize,
    /// Impressions skipped because their reward is not known yet.
    pub without_reward: usize,
    /// Decisions skipped because nothing was chosen.
    pub without_choice: usize,
    /// The logging policy's own value: the mean observed reward per impression.
    pub logged: Estimate,
    /// Inverse propensity scoring per impression: mean of `w·r`, with `w = π_k(a) / p`,
    /// `π_k` the target's probability of creative `a` at that position.
    pub ips: Estimate,
    /// Self-normalized IPS: `Σ w·r / Σ w`; `None` when the target would never choose a
    /// logged creative at its position (`Σ w = 0`).
    pub snips: Option<Estimate>,
    /// Doubly robust: `Σ_c π_k(c)·r̂(c) + w·(r − r̂(a))`, averaged, with `r̂` cross-fitted.
    pub dr: Estimate,
    /// The reward model DR used (`means` or `logistic`).
    pub dr_model: &'static str,
    /// Effective sample size `(Σ w)² / Σ w²`: how many impressions the estimate is worth.
    pub effective_sample_size: f64,
    /// Impressions in which the target could have chosen the logged creative (`w > 0`).
    pub matched: usize,
    /// The largest weight `w`.
    pub max_weight: f64,
    /// Persona names in the log that are not on the selector's menu (ignored).
    pub unknown_personas: Vec<String>,
    /// Evaluated impressions whose logged creative is not in the selector's catalog: the
    /// target can never choose it, so each weighs 0 (a warning says so).
    pub unknown_creatives: usize,
    /// Up to [`UNKNOWN_CREATIVE_EXAMPLES`] ids of those creatives, in the order first
    /// met.
    pub unknown_creative_examples: Vec<String>,
    /// Logged eligible creatives (counted once per decision) left out of the target's
    /// choice because the catalog does not have them, when the target is restricted to
    /// the logged eligible set (a warning says so).
    pub unknown_eligible: usize,
    /// Per position, in position order.
    pub positions: Vec<PositionReport>,
    /// What a reader must know before trusting the numbers (logged creatives missing
    /// from the catalog, low effective sample size, no overlap).
    pub warnings: Vec<String>,
}

/// How many ids of logged creatives missing from the catalog a [`Report`] names.
pub const UNKNOWN_CREATIVE_EXAMPLES: usize = 3;

/// One evaluated impression, kept until `finish` (the reward model needs the whole log).
#[derive(Clone, Debug)]
struct Row {
    decision: u32,
    position: u32,
    segment: u16,
    /// The logged creative in the selector's catalog (`u32::MAX` when unknown to it).
    logged: u32,
    reward: f64,
    weight: f64,
    /// This row's slice of `Evaluator::support`.
    support: (u32, u32),
    /// This row's slice of `Evaluator::features` (context feature hashes).
    features: (u32, u32),
}

/// Sums for the means reward model.
#[derive(Clone, Debug, Default)]
struct Means {
    cells: AHashMap<(u32, u16), (f64, f64)>,
    creatives: AHashMap<u32, (f64, f64)>,
    n: f64,
    sum: f64,
}

impl Means {
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

/// Evaluates a target policy on a decision log.
///
/// For each decision: rebuild the profile ([`DecisionRecord::to_profile`]) and the
/// context ([`DecisionRecord::to_context`]); ask the target for its probability `π_k`
/// of each creative at each logged position `k` ([`CandidatePolicy::slate`], or `1/#eligible`
/// for [`Target::Uniform`]); for each chosen creative `a` with a known reward `r` and
/// propensity `p` (the logger's probability of `a` at that position), `w = π_k(a) / p`.
/// Then, over all evaluated impressions:
///
/// - IPS `= mean(w·r)`: the independence (per-position) estimator: the expected reward
///   per impression if each position were filled by the target, unbiased when a
///   position's reward depends only on the creative there (no interaction between
///   positions) and `p` is the logger's true marginal at that position;
/// - SNIPS `= Σ w·r / Σ w`;
/// - DR `= mean(Σ_c π_k(c)·r̂(c) + w·(r − r̂(a)))`, with `r̂` fitted on the other folds.
///
/// The target is frozen: its statistics are read and never updated by the log.
#[derive(Debug)]
pub struct Evaluator<'a> {
    selector: &'a Selector,
    target: Target,
    candidate: CandidatePolicy<'a>,
    eligibility: Option<Eligibility>,
    options: EvalOptions,
    log: String,
    rows: Vec<Row>,
    support: Vec<(u32, f64)>,
    features: Vec<u64>,
    unknown: BTreeSet<String>,
    unknown_creatives: usize,
    unknown_creative_examples: Vec<String>,
    unknown_eligible: usize,
    decisions: usize,
    evaluated: usize,
    slots: usize,
    without_reward: usize,
    without_choice: usize,
    allowed: AHashSet<CreativeId>,
    eligible: Vec<CreativeId>,
    dists: Vec<Vec<(CreativeId, f64)>>,
    names: Vec<String>,
}

impl<'a> Evaluator<'a> {
    /// An evaluator of `candidate` (under its configured policy) on log `log` (the name
    /// used in error messages).
    pub fn new(candidate: &'a Selector, options: EvalOptions, log: &str) -> Result<Self> {
        Evaluator::with_target(candidate, Target::Selector, options, log)
    }

    /// An evaluator of `target`; `selector` gives the catalog (and, for
    /// [`Target::Selector`], the policy).
    pub fn with_target(
        selector: &'a Selector,
        target: Target,
        options: EvalOptions,
        log: &str,
    ) -> Result<Self> {
        let bad = |field: &str, problem: String| Err(Error::invalid("evaluation", field, problem));
        if !(options.confidence > 0.0 && options.confidence < 1.0) {
            return bad("confidence", format!("{} must be strictly between 0 and 1", options.confidence));
        }
        if !(options.smoothing.is_finite() && options.smoothing > 0.0) {
            return bad("smoothing", format!("{} must be finite and > 0", options.smoothing));
        }
        if options.folds < 2 {
            return bad("folds", format!("{} must be at least 2 (cross-fitting)", options.folds));
        }
        if !(options.l2.is_finite() && options.l2 >= 0.0) {
            return bad("l2", format!("{} must be finite and ≥ 0", options.l2));
        }
        if options.reward == RewardKind::ConversionValue && options.reward_model == RewardModel::Logistic {
            return bad("reward_model", "logistic needs click rewards (0 or 1); use means for values".into());
        }
        let catalog = selector.catalog();
        let names =
            (0..catalog.len()).map(|i| catalog.creative_id(CreativeId(i as u32)).to_owned()).collect();
        Ok(Evaluator {
            selector,
            target,
            candidate: CandidatePolicy::new(selector, options.thompson_draws)?,
            eligibility: None,
            options,
            log: log.to_owned(),
            rows: Vec::new(),
            support: Vec::new(),
            features: Vec::new(),
            unknown: BTreeSet::new(),
            unknown_creatives: 0,
            unknown_eligible: 0,
            unknown_creative_examples: Vec::new(),
            decisions: 0,
            evaluated: 0,
            slots: 0,
            without_reward: 0,
            without_choice: 0,
            allowed: AHashSet::new(),
            eligible: Vec::new(),
            dists: Vec::new(),
            names,
        })
    }

    /// Decisions added so far.
    pub fn decisions(&self) -> usize {
        self.decisions
    }

    /// The target's name as reports show it.
    pub fn target_name(&self) -> String {
        match self.target {
            Target::Selector => policy_name(self.selector.config().learning.policy),
            Target::Uniform => "uniform".into(),
            Target::Logged => "logged".into(),
        }
    }

    /// Adds the decision read from line `line`. Errors (naming the log, line and field)
    /// for a record that fails [`DecisionRecord::check`] (for instance a zero
    /// propensity) or a placement the selector's catalog does not have.
    pub fn add(&mut self, line: usize, record: &DecisionRecord) -> Result<()> {
        let decision = self.decisions as u32;
        self.decisions += 1;
        record.check().map_err(|bad| bad.at(&self.log, line))?;
        self.slots += record.chosen.len();
        if record.chosen.is_empty() {
            self.without_choice += 1;
            return Ok(());
        }
        let known = record.chosen.iter().filter(|c| c.reward.is_some()).count();
        self.without_reward += record.chosen.len() - known;
        if known == 0 {
            return Ok(());
        }
        self.evaluated += 1;
        let selector = self.selector;
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
            // No logged seed: give each decision its own, so replayed draws are
            // independent across decisions.
            context.seed = Some((line as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        }
        let restrict = self.options.restrict_to_logged && !record.eligible.is_empty();
        if restrict {
            self.allowed.clear();
            // One lookup per id: the known ones are allowed, the others counted.
            for id in &record.eligible {
                match catalog.creative(id) {
                    Ok(c) => {
                        self.allowed.insert(c);
                    }
                    Err(_) => self.unknown_eligible += 1,
                }
            }
        }
        let allowed = restrict.then_some(&self.allowed);
        let slots = record.chosen.len();
        match self.target {
            Target::Selector => {
                self.candidate.slate(&profile, &context, placement, allowed, slots, &mut self.dists)?;
            }
            Target::Uniform => {
                self.eligible.clear();
                match allowed {
                    Some(a) => self.eligible.extend(a.iter().copied()),
                    None => {
                        let lister = match &mut self.eligibility {
                            Some(l) => l,
                            None => self.eligibility.insert(Eligibility::new(selector)?),
                        };
                        lister.list(&profile, &context, placement, &mut self.eligible)?;
                    }
                }
                let p = 1.0 / self.eligible.len().max(1) as f64;
                self.dists.truncate(slots);
                self.dists.resize_with(slots, Vec::new);
                for d in &mut self.dists {
                    d.clear();
                    d.extend(self.eligible.iter().map(|c| (*c, p)));
                }
            }
            Target::Logged => {
                self.dists.truncate(slots);
                self.dists.resize_with(slots, Vec::new);
                for (d, chosen) in self.dists.iter_mut().zip(&record.chosen) {
                    d.clear();
                    if let Ok(c) = catalog.creative(&chosen.creative) {
                        d.push((c, 1.0));
                    }
                }
            }
        }
        let segment = selector.segment(&profile).map_or(u16::MAX, |p| p.0);
        let logged_position = record
            .context
            .attribute("position")
            .and_then(|v| v.trim().parse::<u32>().ok())
            .filter(|_| slots == 1);
        for (k, chosen) in record.chosen.iter().enumerate() {
            let Some(reward) = chosen.reward else { continue };
            let reward = match self.options.reward {
                RewardKind::Click => f64::from(u8::from(reward.click)),
                RewardKind::ConversionValue => reward.conversion_value,
            };
            let dist = &self.dists[k];
            let logged = catalog.creative(&chosen.creative).ok();
            if logged.is_none() {
                self.unknown_creatives += 1;
                let examples = &mut self.unknown_creative_examples;
                if examples.len() < UNKNOWN_CREATIVE_EXAMPLES && !examples.contains(&chosen.creative) {
                    examples.push(chosen.creative.clone());
                }
            }
            let pi = logged.map_or(0.0, |a| dist.iter().find(|(c, _)| *c == a).map_or(0.0, |(_, p)| *p));
            let weight = if self.target == Target::Logged { 1.0 } else { pi / chosen.propensity };
            let position = logged_position.unwrap_or(k as u32 + 1);
            let start = self.support.len() as u32;
            self.support.extend(dist.iter().map(|(c, p)| (c.0, *p)));
            let fstart = self.features.len() as u32;
            push_context_features(&mut self.features, record, position, logged_position.is_some(), segment);
            self.rows.push(Row {
                decision,
                position,
                segment,
                logged: logged.map_or(u32::MAX, |c| c.0),
                reward,
                weight,
                support: (start, self.support.len() as u32),
                features: (fstart, self.features.len() as u32),
            });
        }
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

    /// The reward model actually used.
    fn model(&self) -> RewardModel {
        match (self.options.reward_model, self.options.reward) {
            (RewardModel::Auto, RewardKind::Click) => RewardModel::Logistic,
            (RewardModel::Auto, RewardKind::ConversionValue) => RewardModel::Means,
            (m, _) => m,
        }
    }

    /// The cross-fitted DR term of every row.
    fn dr_terms(&self) -> Vec<f64> {
        let rows = &self.rows;
        let folds = self.options.folds;
        let mut terms = vec![0.0; rows.len()];
        if self.target == Target::Logged {
            for (t, r) in terms.iter_mut().zip(rows) {
                *t = r.reward;
            }
            return terms;
        }
        let fold_of = |r: &Row| r.decision % folds;
        let support = |r: &Row| &self.support[r.support.0 as usize..r.support.1 as usize];
        let term = |r: &Row, predict: &dyn Fn(u32) -> f64| {
            let direct: f64 = support(r).iter().map(|&(c, p)| p * predict(c)).sum();
            let correction = if r.weight > 0.0 { r.weight * (r.reward - predict(r.logged)) } else { 0.0 };
            direct + correction
        };
        match self.model() {
            RewardModel::Means | RewardModel::Auto => {
                let m = self.options.smoothing;
                for k in 0..folds {
                    let mut model = Means::default();
                    for r in rows.iter().filter(|r| fold_of(r) != k && r.logged != u32::MAX) {
                        model.add(r.logged, r.segment, r.reward);
                    }
                    for (i, r) in rows.iter().enumerate().filter(|(_, r)| fold_of(r) == k) {
                        terms[i] = term(r, &|c| model.predict(c, r.segment, m));
                    }
                }
            }
            RewardModel::Logistic => {
                let catalog = self.selector.catalog();
                let items: Vec<Vec<u64>> = (0..catalog.len())
                    .map(|i| {
                        let c = CreativeId(i as u32);
                        let mut f = vec![feature_hash(&format!("c={}", self.names[i]))];
                        f.extend(catalog.attributes(c).map(|(k, v)| feature_hash(&format!("i:{k}={v}"))));
                        f
                    })
                    .collect();
                let unknown_item = vec![feature_hash("c=?")];
                let item = |c: u32| items.get(c as usize).unwrap_or(&unknown_item);
                let mut arena: Vec<u64> = Vec::new();
                let mut spans: Vec<(usize, usize)> = Vec::with_capacity(rows.len());
                for r in rows {
                    let start = arena.len();
                    example_features(self.context_features(r), item(r.logged), &mut arena);
                    spans.push((start, arena.len()));
                }
                // `term` takes a `Fn`; the scratch buffer lives in a RefCell.
                let scratch = std::cell::RefCell::new(Vec::<u64>::new());
                for k in 0..folds {
                    let train: Vec<(&[u64], f64)> = rows
                        .iter()
                        .zip(&spans)
                        .filter(|(r, _)| fold_of(r) != k && r.logged != u32::MAX)
                        .map(|(r, s)| (&arena[s.0..s.1], r.reward))
                        .collect();
                    let mut model = LogisticRegression::new(18, self.options.l2, 0.2);
                    model.fit(&train, 4, self.options.seed ^ u64::from(k));
                    for (i, r) in rows.iter().enumerate().filter(|(_, r)| fold_of(r) == k) {
                        let ctx = self.context_features(r);
                        let predict = |c: u32| {
                            let mut f = scratch.borrow_mut();
                            f.clear();
                            example_features(ctx, item(c), &mut f);
                            model.predict(&f)
                        };
                        terms[i] = term(r, &predict);
                    }
                }
            }
        }
        terms
    }

    fn context_features(&self, r: &Row) -> &[u64] {
        &self.features[r.features.0 as usize..r.features.1 as usize]
    }

    /// The estimates. Errors when no impression had a known reward.
    pub fn finish(self) -> Result<Report> {
        let n = self.rows.len();
        if n == 0 {
            return Err(Error::invalid(
                "decision log",
                "chosen[].reward",
                format!("{}: no decision has a chosen creative with a known reward", self.log),
            ));
        }
        let z = inverse_normal_cdf(0.5 + self.options.confidence / 2.0);
        let rows = &self.rows;
        let dr_terms = self.dr_terms();
        // Per-decision sums (rows of a decision are contiguous).
        let mut groups: Vec<[f64; 6]> = Vec::new(); // Σr, n, Σwr, Σw, Σdr, Σw²
        let mut last = u32::MAX;
        for (r, dr) in rows.iter().zip(&dr_terms) {
            if r.decision != last || groups.is_empty() {
                groups.push([0.0; 6]);
                last = r.decision;
            }
            if let Some(g) = groups.last_mut() {
                g[0] += r.reward;
                g[1] += 1.0;
                g[2] += r.weight * r.reward;
                g[3] += r.weight;
                g[4] += dr;
                g[5] += r.weight * r.weight;
            }
        }
        let pairs = |a: usize, b: usize| groups.iter().map(|g| (g[a], g[b])).collect::<Vec<_>>();
        let infinite = Estimate::new(0.0, f64::INFINITY, z);
        let mut logged = Estimate::ratio(&pairs(0, 1), z).unwrap_or(infinite);
        let mut ips = Estimate::ratio(&pairs(2, 1), z).unwrap_or(infinite);
        let mut snips = Estimate::ratio(&pairs(2, 3), z);
        let mut dr = Estimate::ratio(&pairs(4, 1), z).unwrap_or(infinite);
        let b = self.options.bootstrap;
        if b > 0 {
            let alpha = (1.0 - self.options.confidence) / 2.0;
            let mut rng = Rng::new(self.options.seed ^ 0x626f_6f74);
            let mut draws: [Vec<f64>; 4] = Default::default();
            let d = groups.len();
            for _ in 0..b {
                let mut s = [0.0f64; 5];
                for _ in 0..d {
                    let g = &groups[rng.below(d)];
                    for (acc, v) in s.iter_mut().zip(g) {
                        *acc += v;
                    }
                }
                draws[0].push(s[0] / s[1]);
                draws[1].push(s[2] / s[1]);
                if s[3] > 0.0 {
                    draws[2].push(s[2] / s[3]);
                }
                draws[3].push(s[4] / s[1]);
            }
            let interval = |v: &mut Vec<f64>| -> Option<(f64, f64)> {
                if v.is_empty() {
                    return None;
                }
                v.sort_by(f64::total_cmp);
                let at = |q: f64| v[((q * v.len() as f64).floor() as usize).min(v.len() - 1)];
                Some((at(alpha), at(1.0 - alpha)))
            };
            logged.bootstrap = interval(&mut draws[0]);
            ips.bootstrap = interval(&mut draws[1]);
            if let Some(s) = &mut snips {
                s.bootstrap = interval(&mut draws[2]);
            }
            dr.bootstrap = interval(&mut draws[3]);
        }
        // Per position.
        let mut positions: Vec<u32> =
            rows.iter().map(|r| r.position).collect::<BTreeSet<_>>().into_iter().collect();
        positions.sort_unstable();
        let mut per_position = Vec::new();
        for &pos in &positions {
            let mut g: Vec<[f64; 4]> = Vec::new();
            let mut last = u32::MAX;
            for r in rows.iter().filter(|r| r.position == pos) {
                if r.decision != last || g.is_empty() {
                    g.push([0.0; 4]);
                    last = r.decision;
                }
                if let Some(x) = g.last_mut() {
                    x[0] += r.reward;
                    x[1] += 1.0;
                    x[2] += r.weight * r.reward;
                    x[3] += r.weight;
                }
            }
            let p = |a: usize, b: usize| g.iter().map(|x| (x[a], x[b])).collect::<Vec<_>>();
            per_position.push(PositionReport {
                position: pos,
                slots: g.iter().map(|x| x[1] as usize).sum(),
                logged: Estimate::ratio(&p(0, 1), z).unwrap_or(infinite),
                ips: Estimate::ratio(&p(2, 1), z).unwrap_or(infinite),
                snips: Estimate::ratio(&p(2, 3), z),
            });
        }
        if self.options.reward == RewardKind::Click {
            for e in [&mut logged, &mut ips, &mut dr] {
                e.clip(0.0, 1.0);
            }
            if let Some(s) = &mut snips {
                s.clip(0.0, 1.0);
            }
            for p in &mut per_position {
                p.logged.clip(0.0, 1.0);
                p.ips.clip(0.0, 1.0);
                if let Some(s) = &mut p.snips {
                    s.clip(0.0, 1.0);
                }
            }
        }
        let sum_w: f64 = groups.iter().map(|g| g[3]).sum();
        let sum_w2: f64 = groups.iter().map(|g| g[5]).sum();
        let ess = if sum_w2 > 0.0 { sum_w * sum_w / sum_w2 } else { 0.0 };
        let matched = rows.iter().filter(|r| r.weight > 0.0).count();
        let max_weight = rows.iter().map(|r| r.weight).fold(0.0, f64::max);
        let mut warnings = Vec::new();
        let unknown = self.unknown_creatives;
        if unknown > 0 && self.target != Target::Logged {
            let examples: Vec<String> = self
                .unknown_creative_examples
                .iter()
                .map(|id| format!("'{}'", crate::error::quote(id)))
                .collect();
            warnings.push(format!(
                "{unknown} of {n} logged creatives are not in the catalog (e.g. {}): the target \
                 can never choose them, so those impressions weigh 0; evaluate with the catalog \
                 the log was written with to compare like with like",
                examples.join(", ")
            ));
        }
        if self.unknown_eligible > 0 && self.target != Target::Logged {
            warnings.push(format!(
                "{} logged eligible creatives (counted per decision) are not in the catalog: the target \
                 chooses among the rest of each decision's eligible set, so a uniform target's \
                 probabilities are 1/(known eligible), not 1/(logged eligible)",
                self.unknown_eligible
            ));
        }
        if matched == 0 && unknown == n && self.target != Target::Logged {
            warnings.push(
                "no logged creative is in the catalog: IPS is 0 and SNIPS undefined, whatever the \
                 target does; only DR's reward model speaks, and nothing checks it"
                    .to_owned(),
            );
        } else if matched == 0 {
            warnings.push(
                "the target never chose what the logging policy chose (no overlap): IPS is 0 and \
                 SNIPS undefined; only DR's reward model speaks, and nothing checks it"
                    .to_owned(),
            );
        } else if ess < self.options.min_ess_share * n as f64 {
            warnings.push(format!(
                "effective sample size {ess:.1} is {:.1}% of {n} impressions: the target puts its \
                 mass where the logging policy rarely did (max weight {max_weight:.1}); trust the \
                 bootstrap interval over the normal one, and log with more exploration",
                100.0 * ess / n as f64
            ));
        }
        Ok(Report {
            policy: self.target_name(),
            confidence: self.options.confidence,
            bootstrap: b,
            decisions: self.decisions,
            evaluated: self.evaluated,
            slots: self.slots,
            slots_evaluated: n,
            without_reward: self.without_reward,
            without_choice: self.without_choice,
            logged,
            ips,
            snips,
            dr,
            dr_model: if self.target == Target::Logged { "none" } else { self.model().name() },
            effective_sample_size: ess,
            matched,
            max_weight,
            unknown_personas: self.unknown.into_iter().collect(),
            unknown_creatives: self.unknown_creatives,
            unknown_creative_examples: self.unknown_creative_examples,
            unknown_eligible: self.unknown_eligible,
            positions: per_position,
            warnings,
        })
    }
}

/// The context features of one impression (hashed): its position, the device, daypart
/// and channel, the free attributes (OBD user features land here; a `position`
/// attribute only when it was not read as the position), each persona score and the top
/// persona.
fn push_context_features(
    out: &mut Vec<u64>,
    record: &DecisionRecord,
    position: u32,
    position_attribute_read: bool,
    segment: u16,
) {
    let ctx = record.to_context();
    out.push(feature_hash(&format!("pos={position}")));
    out.push(feature_hash(&format!("dev={}", record.context.device.name())));
    out.push(feature_hash(&format!("day={}", ctx.daypart().name())));
    out.push(feature_hash(&format!("ch={}", record.context.channel.name())));
    for (k, v) in &record.context.attributes {
        if !(position_attribute_read && k == "position") {
            out.push(feature_hash(&format!("a:{k}={v}")));
        }
    }
    for (name, s) in &record.persona_scores {
        if s.score > 0 {
            out.push(feature_hash(&format!("p:{name}={}", s.score)));
        }
    }
    out.push(feature_hash(&format!("seg={segment}")));
}

/// An example's features: the creative's own (id, attributes), the context's, and every
/// context feature crossed with every creative feature.
fn example_features(context: &[u64], item: &[u64], out: &mut Vec<u64>) {
    out.extend_from_slice(item);
    out.extend_from_slice(context);
    for &c in context {
        for &i in item {
            out.push(cross_hash(c, i));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(position: &str) -> DecisionRecord {
        let line = format!(
            r#"{{"timestamp":1700000000,"placement":"hero","context":{{"device":"desktop","attributes":{{"position":"{position}"}}}},"stage":"loyal","persona_scores":{{}},"consent":[],"chosen":[{{"creative":"lux","propensity":0.5}}],"policy":"uniform"}}"#
        );
        DecisionRecord::from_json_line(&line).expect("a valid decision")
    }

    #[test]
    fn a_position_attribute_not_read_as_the_position_stays_a_feature() {
        // A `position` the evaluator reads as the slot is that feature, not an attribute
        // too; one it cannot read ("top") is an attribute like any other, not dropped.
        let mut read = Vec::new();
        push_context_features(&mut read, &record("2"), 2, true, 0);
        assert!(!read.contains(&feature_hash("a:position=2")));
        assert!(read.contains(&feature_hash("pos=2")));
        let mut kept = Vec::new();
        push_context_features(&mut kept, &record("top"), 1, false, 0);
        assert!(kept.contains(&feature_hash("a:position=top")), "the attribute was dropped");
    }
}
