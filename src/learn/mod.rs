//! Learning: reward statistics per creative (overall, by device, by daypart) and per
//! (creative, segment), updated lock-free with atomics so `select` and `record` run from
//! many threads at once; the exploration policies; and the estimate that turns a
//! creative's persona match (the prior) plus what was observed into a click rate.
//! Reading statistics on the hot path never allocates or locks.

pub(crate) mod features;
pub(crate) mod model;
mod padded;
pub(crate) mod request;
mod rng;
mod snapshot;
mod spread;

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

pub use model::Natural;
pub(crate) use padded::Padded;
pub use rng::{fresh_seed, inverse_normal_cdf, normal_cdf, Rng};
pub(crate) use snapshot::{check_ranges, holds_model_entry, holds_segment};
pub use snapshot::{
    CreativeStats, LoadReport, ModelEntry, SnapshotKind, StatsSnapshot, SNAPSHOT_FORMAT, SNAPSHOT_VERSION,
};

use crate::error::{Error, Result};

/// How a placement chooses among eligible creatives.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Policy {
    /// The rules only: persona match, priority and context. Learned statistics are still
    /// updated by `record` but do not change picks. Deterministic.
    Rules,
    /// Highest estimated click rate (the posterior mean), no exploration. Deterministic.
    Greedy,
    /// With probability `epsilon` a slot goes to a uniformly chosen eligible creative
    /// (or, with [`LearningConfig::explore_reach`], one among those that could
    /// plausibly be the best), otherwise to the greedy best.
    EpsilonGreedy {
        /// Exploration probability, `0..=1`.
        epsilon: f64,
    },
    /// Each slot is drawn with probability ∝ `exp((score/best − 1) / temperature)`:
    /// scores are relative to the best, so the temperature needs no units.
    Softmax {
        /// Temperature, > 0: small is nearly greedy, large is nearly uniform.
        temperature: f64,
    },
    /// Thompson sampling: each creative's log-odds are drawn around the same lifted mean
    /// greedy ranks by, with the creative's own uncertainty (see
    /// [`LearningConfig::thompson_scale`]), and the best draw wins.
    Thompson,
}

/// Configuration of learning and exploration. Part of
/// [`SelectorConfig`](crate::SelectorConfig).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LearningConfig {
    /// The exploration policy. Default: greedy on learned estimates.
    pub policy: Policy,
    /// Expected click rate of a creative that matches no high persona (default 0.01).
    pub ctr_no_match: f64,
    /// Expected click rate of a perfect persona match (default 0.05).
    pub ctr_perfect_match: f64,
    /// Prior standard deviation of each creative's own learned weight, in log-odds
    /// (default 0.5: a creative may well turn out 1.6 times better or worse than its
    /// persona match says). Smaller trusts the persona prior longer. With
    /// [`learn_spread`](Self::learn_spread) it is where the learned spread starts.
    pub prior_sd: f64,
    /// Prior standard deviation of a creative's learned crosses with device, daypart
    /// and the person's segment, and of attribute effects (× device, daypart, channel,
    /// weather, and at the weekend) (default 0.2: an interaction is expected to be smaller than a main
    /// effect; wider priors let every cross take a share of each click that the
    /// creative's own weight should have had, and Thompson draws then spread across
    /// every context — see the decisions record for the measurements). With
    /// [`learn_spread`](Self::learn_spread), the creatives' crosses start here and
    /// follow the data; the attribute effects keep it.
    pub prior_sd_cross: f64,
    /// Learn how much creatives differ (default true): the prior spreads of a creative's
    /// own weight and of its device, daypart and segment crosses are re-estimated from
    /// the spread of what every creative has learned (empirical Bayes, by the method of
    /// moments), starting from [`prior_sd`](Self::prior_sd) and
    /// [`prior_sd_cross`](Self::prior_sd_cross) worth 20 weights of evidence, whenever the
    /// pruning index is rebuilt (every catalog-size worth of events, at least 1,024, and
    /// after a load or merge). Where the creatives of a persona are alike, a creative
    /// never shown is then lifted less by the optimism, drawn narrower by Thompson, and
    /// the shared persona curves take more of each click's credit; where they differ
    /// widely, the reverse. [`Selector::prior_spread`](crate::Selector::prior_spread)
    /// reports the spreads in use. `false` keeps the configured spreads.
    pub learn_spread: bool,
    /// Prior standard deviation of the persona weights shared by every creative: the
    /// score and rank curves per tag rank, and the persona slopes (default 0.25; they
    /// pool every creative's evidence, so one creative's run of luck moves them only a
    /// little).
    pub prior_sd_shared: f64,
    /// Greedy (also epsilon-greedy's greedy choice) and Thompson: each candidate is
    /// ranked as if its log-odds were this many standard deviations of its *own*
    /// uncertainty above their mean (default 1.5). Its own uncertainty is that of the
    /// creative's own weight and its device, daypart and segment crosses, which only
    /// showing it can shrink; the shared persona and attribute weights do not count. A
    /// creative never shown is lifted by about 0.9 log-odds and the lift fades as it is
    /// shown: an upper-confidence bonus (Li et al. 2010), so greedy tries creatives it
    /// would otherwise never show and stays deterministic (propensity 1). 0 ranks by
    /// the posterior mean (greedy) or draws around it (Thompson). `estimate` in a
    /// pick's reason stays the posterior mean. While many creatives are barely shown,
    /// the pruned scan scores more of them (they can win); see the decisions record
    /// ("Learner v2, third round") for the measurements and that cost.
    pub optimism: f64,
    /// More optimism for a creative little shown (default 0: off): its lift is
    /// `optimism · (1 + first_look / (1 + n))` own standard deviations, `n` its
    /// impressions, so at 1 a creative never shown is lifted twice as far (3 standard
    /// deviations), after one impression 1.5 times, after nine 1.1 times. A fixed lift
    /// never reaches a creative whose rivals already do better than its optimistic
    /// start; this one tries each creative its people might like before settling. At 1
    /// it raised the share of the oracle by about a point at 20,000 impressions (most
    /// in the worlds where greedy got stuck), but it makes many more candidates able to
    /// win, so the pruned scan scores more of them: warm greedy at 1,000 candidates
    /// about 1.7 times slower, at 100,000 about 4 times (the decisions record, "A first
    /// look for every creative"). Worth it for small catalogs that learn slowly.
    pub first_look: f64,
    /// Thompson only: each draw's variance is the creative's *own* posterior variance
    /// (its own weight and its device, daypart and segment crosses, as the optimism
    /// counts it) scaled by this (default 0.05; 1 draws at the full own variance). The
    /// shared persona and attribute weights pool every creative's evidence and are not
    /// drawn: noise on them only reshuffled creatives whose own weights were already
    /// known (see the decisions record, "Thompson draws where the creative itself is
    /// unknown"). With the `optimism` lift doing the directed part of the exploring, a
    /// narrow draw did best in the simulations.
    pub thompson_scale: f64,
    /// Epsilon-greedy only: how far its exploring draw reaches (default `None`: among
    /// every eligible creative, the textbook epsilon-greedy, whose logs give every
    /// eligible creative a chance and so can evaluate any other policy offline). With
    /// `Some(z)` a slot explores uniformly among the allowed creatives that could
    /// plausibly be the best: those whose key, with their log-odds raised `z` more of
    /// their *own* standard deviations (beyond the [`optimism`](Self::optimism) lift),
    /// reaches the greedy choice's key. The greedy choice is always among them, so the
    /// set shrinks to it as the creatives become known and exploring stops costing
    /// clicks. Either way a pick's propensity is exact: `ε / n` for each of the `n`
    /// creatives explored among, plus `1 − ε` for the greedy choice. At `Some(1.0)`
    /// epsilon-greedy (ε = 0.1) gained about 6 points of the oracle at 20,000
    /// impressions in the simulations and came level with greedy, but the pruned scan
    /// must score every creative that could be the best: while most creatives are
    /// barely shown, about 2 times greedy's time at 1,000 candidates and 8–10 times at
    /// 100,000; once they are known, about 1.1 times the textbook form's (the decisions
    /// record, "Epsilon-greedy explores where it could matter"). At most 10.
    pub explore_reach: Option<f64>,
    /// The lowest persona score the learned model's persona prior counts (default 5,
    /// 1..=9): a new creative starts `β · min(w, 1) · s/9` log-odds above `ctr_no_match` for a
    /// person scoring `s` at least this on one of its personas (its best such tag). Below
    /// 7 (the rules' [`threshold`](crate::SelectorConfig::threshold) of a "high"
    /// persona) this is a weaker start that data confirms or takes back through the
    /// learned score curves; at 7 people with only mid scores start every creative at
    /// the no-match rate, and what their scores mean must be learned from nothing. The
    /// rules policy, explanations and targeting keep the threshold; see the decisions
    /// record ("Mid scores in the prior") for the measurements.
    pub prior_from_score: u8,
    /// Slots of the (creative, segment) table; 0 (the default) sizes it for every
    /// creative in every segment (creatives × (personas + 1), with room to spare), at
    /// most 2^20 slots. Rounded up to a power of two, at most 2^24. When it fills,
    /// `record` returns an error rather than drop an event.
    pub segment_cells: usize,
}

impl Default for LearningConfig {
    fn default() -> Self {
        LearningConfig {
            policy: Policy::Greedy,
            ctr_no_match: 0.01,
            ctr_perfect_match: 0.05,
            prior_sd: 0.5,
            prior_sd_cross: 0.2,
            learn_spread: true,
            prior_sd_shared: 0.25,
            optimism: 1.5,
            first_look: 0.0,
            thompson_scale: 0.05,
            explore_reach: None,
            prior_from_score: 5,
            segment_cells: 0,
        }
    }
}

impl LearningConfig {
    /// Checks every field; errors name the field.
    pub fn validate(&self) -> Result<()> {
        let bad = |field: &str, problem: String| {
            Err(Error::invalid("selector config", format!("learning.{field}"), problem))
        };
        match self.policy {
            Policy::EpsilonGreedy { epsilon } if !(0.0..=1.0).contains(&epsilon) => {
                return bad("policy.epsilon", format!("{epsilon} must be between 0 and 1"));
            }
            Policy::Softmax { temperature } if !(temperature.is_finite() && temperature > 0.0) => {
                return bad("policy.temperature", format!("{temperature} must be finite and > 0"));
            }
            _ => {}
        }
        for (field, v) in [("ctr_no_match", self.ctr_no_match), ("ctr_perfect_match", self.ctr_perfect_match)]
        {
            if !(v > 0.0 && v < 1.0) {
                return bad(field, format!("{v} must be strictly between 0 and 1"));
            }
        }
        if self.ctr_perfect_match < self.ctr_no_match {
            return bad(
                "ctr_perfect_match",
                format!("{} is below ctr_no_match {}", self.ctr_perfect_match, self.ctr_no_match),
            );
        }
        for (field, v) in [
            ("prior_sd", self.prior_sd),
            ("prior_sd_cross", self.prior_sd_cross),
            ("prior_sd_shared", self.prior_sd_shared),
        ] {
            if !(v.is_finite() && (0.01..=100.0).contains(&v)) {
                return bad(field, format!("{v} must be finite and between 0.01 and 100"));
            }
        }
        // Up to 20: the offline evaluation of epsilon-greedy ranks by the optimism plus
        // `explore_reach` (each up to 10).
        if !(self.optimism.is_finite() && (0.0..=20.0).contains(&self.optimism)) {
            return bad("optimism", format!("{} must be finite and between 0 and 20", self.optimism));
        }
        if !(self.first_look.is_finite() && (0.0..=10.0).contains(&self.first_look)) {
            return bad("first_look", format!("{} must be finite and between 0 and 10", self.first_look));
        }
        if !(self.thompson_scale.is_finite() && (0.0..=100.0).contains(&self.thompson_scale)) {
            return bad(
                "thompson_scale",
                format!("{} must be finite and between 0 and 100", self.thompson_scale),
            );
        }
        if let Some(reach) = self.explore_reach {
            if !(reach.is_finite() && (0.0..=10.0).contains(&reach)) {
                return bad("explore_reach", format!("{reach} must be finite and between 0 and 10"));
            }
        }
        if !(1..=9).contains(&self.prior_from_score) {
            return bad("prior_from_score", format!("{} must be between 1 and 9", self.prior_from_score));
        }
        if self.segment_cells > 1 << 24 {
            return bad("segment_cells", format!("{} is above 2^24", self.segment_cells));
        }
        Ok(())
    }

    /// The optimism (in own standard deviations) that ranking adds under `policy`:
    /// [`LearningConfig::optimism`] for greedy, epsilon-greedy and Thompson, 0 for the
    /// others.
    #[inline]
    pub(crate) fn optimism_under(&self, policy: Policy) -> f64 {
        match policy {
            Policy::Greedy | Policy::EpsilonGreedy { .. } | Policy::Thompson => self.optimism,
            Policy::Rules | Policy::Softmax { .. } => 0.0,
        }
    }

    /// The optimism (in own standard deviations) that ranking adds under `policy` to a
    /// creative shown `impressions` times: [`Self::optimism_under`] scaled by
    /// `1 + first_look / (1 + impressions)`. It only falls as the creative is shown, so
    /// a bound the pruning index computed earlier still holds.
    #[inline]
    pub(crate) fn lift_under(&self, policy: Policy, impressions: u64) -> f64 {
        self.optimism_under(policy) * (1.0 + self.first_look / (1.0 + impressions as f64))
    }

    /// How many more own standard deviations epsilon-greedy's exploring draw reaches
    /// under `policy` ([`Self::explore_reach`]): `None` for the other policies and for
    /// epsilon-greedy among every eligible creative.
    #[inline]
    pub(crate) fn reach_under(&self, policy: Policy) -> Option<f64> {
        match policy {
            Policy::EpsilonGreedy { .. } => self.explore_reach,
            _ => None,
        }
    }

    /// The model's prior: the log-odds of a creative that matches nothing, the slope
    /// `β` of a full persona match, the lowest score the persona prior counts
    /// ([`Self::prior_from_score`]) and the prior precision of every weight.
    pub(crate) fn prior(&self) -> features::Prior {
        let base = model::logit(self.ctr_no_match);
        let cross = 1.0 / (self.prior_sd_cross * self.prior_sd_cross);
        features::Prior {
            base,
            beta: model::logit(self.ctr_perfect_match) - base,
            threshold: self.prior_from_score,
            q0_creative: 1.0 / (self.prior_sd * self.prior_sd),
            q0: cross,
            q0_segment: cross,
            q0_attribute: cross,
            q0_shared: 1.0 / (self.prior_sd_shared * self.prior_sd_shared),
        }
    }
}

/// The prior spreads of the learned model (log-odds standard deviations), as
/// [`Selector::prior_spread`](crate::Selector::prior_spread) reports them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriorSpread {
    /// Of each creative's own weight: how much a creative may differ from what its
    /// persona match and attributes predict.
    pub creative: f64,
    /// Of each creative's crosses with device and daypart.
    pub context: f64,
    /// Of each creative's cross with the person's segment (their top persona).
    pub segment: f64,
}

/// Event counts of one statistics cell. Sums, so merging is addition: commutative and
/// associative. Conversion values are kept in millionths so sums stay exact.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Counts {
    /// Impressions.
    pub impressions: u64,
    /// Clicks.
    pub clicks: u64,
    /// Conversions.
    pub conversions: u64,
    /// Sum of conversion values, in millionths of the currency unit.
    pub value_micros: u64,
    /// Sum over impressions of the click rate the model predicted when it was shown, in
    /// millionths: clicks over it is how far reality ran from the model's expectation.
    pub expected_micros: u64,
}

impl Counts {
    /// True when every count is zero.
    pub fn is_zero(&self) -> bool {
        *self == Counts::default()
    }

    /// Adds `other` for bookkeeping copies (ledgers of deltas), saturating at `u64::MAX`;
    /// the live counters use [`Counts::checked_add`] and refuse instead.
    pub fn add(&mut self, other: &Counts) {
        self.impressions = self.impressions.saturating_add(other.impressions);
        self.clicks = self.clicks.saturating_add(other.clicks);
        self.conversions = self.conversions.saturating_add(other.conversions);
        self.value_micros = self.value_micros.saturating_add(other.value_micros);
        self.expected_micros = self.expected_micros.saturating_add(other.expected_micros);
    }

    /// `self + other`, or an error naming the counter that would pass its bound
    /// ([`MAX_EVENT_COUNT`](crate::limits::MAX_EVENT_COUNT) for counts,
    /// [`MAX_MICROS`](crate::limits::MAX_MICROS) for values).
    pub fn checked_add(&self, other: &Counts) -> Result<Counts> {
        let sum = |field: &'static str, a: u64, b: u64| {
            let max = Counts::bound(field);
            a.checked_add(b).filter(|s| *s <= max).ok_or_else(|| {
                Error::invalid(
                    "learned statistics",
                    field,
                    format!("{a} + {b} is above {max} ({})", Counts::bound_name(field)),
                )
            })
        };
        Ok(Counts {
            impressions: sum("impressions", self.impressions, other.impressions)?,
            clicks: sum("clicks", self.clicks, other.clicks)?,
            conversions: sum("conversions", self.conversions, other.conversions)?,
            value_micros: sum("value_micros", self.value_micros, other.value_micros)?,
            expected_micros: sum("expected_micros", self.expected_micros, other.expected_micros)?,
        })
    }

    /// Each field by name, for checks that name the field.
    pub(crate) fn fields(&self) -> [(&'static str, u64); 5] {
        [
            ("impressions", self.impressions),
            ("clicks", self.clicks),
            ("conversions", self.conversions),
            ("value_micros", self.value_micros),
            ("expected_micros", self.expected_micros),
        ]
    }

    /// The largest value a field may hold.
    pub(crate) fn bound(field: &str) -> u64 {
        if field.ends_with("_micros") {
            crate::limits::MAX_MICROS
        } else {
            crate::limits::MAX_EVENT_COUNT
        }
    }

    fn bound_name(field: &str) -> &'static str {
        if field.ends_with("_micros") {
            "MAX_MICROS"
        } else {
            "MAX_EVENT_COUNT"
        }
    }

    /// The first field above its bound, with the problem.
    pub(crate) fn check_range(&self) -> std::result::Result<(), (&'static str, String)> {
        for (field, v) in self.fields() {
            let max = Counts::bound(field);
            if v > max {
                return Err((field, format!("{v} is above {max} ({})", Counts::bound_name(field))));
            }
        }
        Ok(())
    }

    /// `self − other`, each count floored at zero.
    pub fn minus(&self, other: &Counts) -> Counts {
        Counts {
            impressions: self.impressions.saturating_sub(other.impressions),
            clicks: self.clicks.saturating_sub(other.clicks),
            conversions: self.conversions.saturating_sub(other.conversions),
            value_micros: self.value_micros.saturating_sub(other.value_micros),
            expected_micros: self.expected_micros.saturating_sub(other.expected_micros),
        }
    }
}

/// One cell of atomic counters.
#[derive(Debug, Default)]
pub(crate) struct Cell {
    impressions: AtomicU64,
    clicks: AtomicU64,
    conversions: AtomicU64,
    value_micros: AtomicU64,
    expected_micros: AtomicU64,
}

impl Cell {
    #[inline]
    pub fn load(&self) -> Counts {
        Counts {
            impressions: self.impressions.load(Relaxed),
            clicks: self.clicks.load(Relaxed),
            conversions: self.conversions.load(Relaxed),
            value_micros: self.value_micros.load(Relaxed),
            expected_micros: self.expected_micros.load(Relaxed),
        }
    }

    pub fn add(&self, c: &Counts) {
        for (cell, v) in [
            (&self.impressions, c.impressions),
            (&self.clicks, c.clicks),
            (&self.conversions, c.conversions),
            (&self.value_micros, c.value_micros),
            (&self.expected_micros, c.expected_micros),
        ] {
            if v != 0 {
                // Checked by the caller first (`Counts::checked_add`); wrapping here could
                // only follow a race at 2^64 events.
                cell.fetch_add(v, Relaxed);
            }
        }
    }

    fn store(&self, c: &Counts) {
        self.impressions.store(c.impressions, Relaxed);
        self.clicks.store(c.clicks, Relaxed);
        self.conversions.store(c.conversions, Relaxed);
        self.value_micros.store(c.value_micros, Relaxed);
        self.expected_micros.store(c.expected_micros, Relaxed);
    }
}

/// A (creative, segment) slot of the open-addressing table: the cell's event counts and
/// the model's creative × segment weight. `key == 0` is empty.
#[derive(Debug, Default)]
pub(crate) struct Slot {
    key: AtomicU64,
    pub(crate) cell: Cell,
    pub(crate) param: model::Param,
}

/// Device and daypart value counts (see [`crate::Device`], [`crate::Daypart`]).
pub(crate) const DEVICES: usize = 5;
pub(crate) const DAYPARTS: usize = 5;

/// The segment of "no persona score at all".
pub(crate) const NO_SEGMENT: u16 = u16::MAX;

/// The most slots the default sizing gives the (creative, segment) table.
const DEFAULT_MAX_SLOTS: usize = 1 << 20;

/// Learned state for one catalog: exact event counts per creative (overall, by device,
/// by daypart) and per (creative, segment), and the click model's weights. Lock-free to
/// update and read.
#[derive(Debug)]
pub struct LearnedStats {
    creatives: usize,
    overall: Box<[Cell]>,
    by_device: Box<[Cell]>,
    by_daypart: Box<[Cell]>,
    slots: Box<[Slot]>,
    /// Slots in use, and the most that may be (7/8 of them, so lookups stay short).
    used: AtomicU64,
    usable: u64,
    /// Events `record` refused because the segment table was full.
    overflow: AtomicU64,
    pub(crate) model: model::Model,
    /// Per creative, as non-negative `f32` bits: at least the largest mean of its
    /// (creative, segment) weights (raised by every update, recomputed on rebuilds): a
    /// bound the pruning index reads.
    segment_max: Box<[AtomicU32]>,
    /// What was last exported (or loaded, or merged in): the base of the next delta.
    exported: Mutex<snapshot::Baseline>,
}

impl LearnedStats {
    /// Empty statistics for `creatives` creatives, a menu of `personas` and
    /// `attribute_values` distinct creative attribute values, with `cells`
    /// (creative, segment) slots (0: room for every creative in every segment, at most
    /// 2^20).
    pub fn new(creatives: usize, personas: usize, attribute_values: usize, cells: usize) -> Self {
        let cells = if cells == 0 {
            (creatives.saturating_mul(personas + 1).saturating_mul(8) / 7 + 1).clamp(1_024, DEFAULT_MAX_SLOTS)
        } else {
            cells.clamp(64, 1 << 24)
        };
        let cells = cells.next_power_of_two();
        let make = |n: usize| -> Box<[Cell]> { (0..n).map(|_| Cell::default()).collect() };
        LearnedStats {
            creatives,
            overall: make(creatives),
            by_device: make(creatives * DEVICES),
            by_daypart: make(creatives * DAYPARTS),
            slots: (0..cells).map(|_| Slot::default()).collect(),
            used: AtomicU64::new(0),
            usable: (cells - cells / 8) as u64,
            overflow: AtomicU64::new(0),
            model: model::Model::new(creatives, personas, attribute_values),
            segment_max: (0..creatives).map(|_| AtomicU32::new(0)).collect(),
            exported: Mutex::new(snapshot::Baseline::default()),
        }
    }

    /// Number of creatives covered.
    pub fn creatives(&self) -> usize {
        self.creatives
    }

    /// Slots of the (creative, segment) table.
    pub fn segment_capacity(&self) -> usize {
        self.slots.len()
    }

    /// (creative, segment) cells in use.
    pub fn segment_cells_used(&self) -> u64 {
        self.used.load(Relaxed)
    }

    /// Events refused (with an error to the caller) because the (creative, segment)
    /// table was full. Non-zero means `segment_cells` should be larger.
    pub fn overflow(&self) -> u64 {
        self.overflow.load(Relaxed)
    }

    #[inline]
    fn key(creative: usize, segment: u16) -> u64 {
        ((creative as u64 + 1) << 16) | u64::from(segment)
    }

    #[inline]
    fn home(&self, key: u64) -> usize {
        (key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) as usize & (self.slots.len() - 1)
    }

    /// The slot of (creative, segment), if it exists.
    #[inline]
    pub(crate) fn find(&self, creative: usize, segment: u16) -> Option<&Slot> {
        let key = Self::key(creative, segment);
        let mask = self.slots.len() - 1;
        let mut i = self.home(key);
        for _ in 0..self.slots.len() {
            let slot = &self.slots[i];
            match slot.key.load(Relaxed) {
                0 => return None,
                k if k == key => return Some(slot),
                _ => i = (i + 1) & mask,
            }
        }
        None
    }

    /// The slot of (creative, segment), created if need be; an error naming the limit
    /// when the table is full (and then nothing changed).
    pub(crate) fn find_or_insert(&self, creative: usize, segment: u16) -> Result<&Slot> {
        if let Some(slot) = self.find(creative, segment) {
            return Ok(slot);
        }
        let full = || {
            self.overflow.fetch_add(1, Relaxed);
            Error::invalid(
                "learned statistics",
                "learning.segment_cells",
                format!(
                    "the (creative, segment) table is full ({} of {} slots in use); the event was not \
                     recorded: raise learning.segment_cells",
                    self.used.load(Relaxed),
                    self.slots.len()
                ),
            )
        };
        if self.used.fetch_add(1, Relaxed) >= self.usable {
            self.used.fetch_sub(1, Relaxed);
            return Err(full());
        }
        let key = Self::key(creative, segment);
        let mask = self.slots.len() - 1;
        let mut i = self.home(key);
        for _ in 0..self.slots.len() {
            let slot = &self.slots[i];
            match slot.key.compare_exchange(0, key, Relaxed, Relaxed) {
                Ok(_) => return Ok(slot),
                Err(k) if k == key => {
                    // Another thread inserted it first.
                    self.used.fetch_sub(1, Relaxed);
                    return Ok(slot);
                }
                Err(_) => i = (i + 1) & mask,
            }
        }
        self.used.fetch_sub(1, Relaxed);
        Err(full())
    }

    /// Checks that adding `counts` to every cell of `creative` cannot overflow; an error
    /// naming the counter otherwise (then nothing is changed).
    fn check_counts(
        &self,
        creative: usize,
        slot: &Slot,
        device: usize,
        daypart: usize,
        counts: &Counts,
    ) -> Result<()> {
        for cell in [
            &self.overall[creative],
            &self.by_device[creative * DEVICES + device.min(DEVICES - 1)],
            &self.by_daypart[creative * DAYPARTS + daypart.min(DAYPARTS - 1)],
            &slot.cell,
        ] {
            cell.load().checked_add(counts)?;
        }
        Ok(())
    }

    /// Adds `counts` to every cell an event on `creative` for `segment` on `device` in
    /// `daypart` belongs to. All or nothing: a full segment table or a counter that
    /// would overflow is an error and changes nothing.
    pub(crate) fn add(
        &self,
        creative: usize,
        segment: u16,
        device: usize,
        daypart: usize,
        counts: &Counts,
    ) -> Result<()> {
        if creative >= self.creatives {
            return Err(Error::UnknownCreative { id: format!("#{creative}"), did_you_mean: Vec::new() });
        }
        let slot = self.find_or_insert(creative, segment)?;
        self.check_counts(creative, slot, device, daypart, counts)?;
        self.overall[creative].add(counts);
        self.by_device[creative * DEVICES + device.min(DEVICES - 1)].add(counts);
        self.by_daypart[creative * DAYPARTS + daypart.min(DAYPARTS - 1)].add(counts);
        slot.cell.add(counts);
        Ok(())
    }

    /// At least the largest learned (creative, segment) weight of `creative` (≥ 0).
    #[inline]
    pub(crate) fn segment_max(&self, creative: usize) -> f32 {
        self.segment_max.get(creative).map_or(0.0, |m| f32::from_bits(m.load(Relaxed)))
    }

    /// Raises the creative's segment bound to `mean` if larger. Non-negative `f32` bits
    /// order like the numbers, so an integer max is a float max.
    #[inline]
    pub(crate) fn raise_segment_max(&self, creative: usize, mean: f64) {
        if let Some(m) = self.segment_max.get(creative) {
            m.fetch_max((mean.max(0.0) as f32).to_bits(), Relaxed);
        }
    }

    /// Recomputes every creative's segment bound from the table (after bulk changes,
    /// and when the pruning index is rebuilt, so bounds that learning lowered tighten).
    pub(crate) fn refresh_segment_max(&self, prior: &features::Prior) {
        let mut fresh = vec![0.0f32; self.creatives];
        for (c, _, slot) in self.segment_slots() {
            if let Some(m) = fresh.get_mut(c) {
                *m = m.max(slot.param.posterior(0.0, prior.q0_segment).0.max(0.0) as f32);
            }
        }
        for (m, v) in self.segment_max.iter().zip(fresh) {
            m.store(v.to_bits(), Relaxed);
        }
    }

    /// Impressions recorded for the creative.
    #[inline]
    pub(crate) fn impressions(&self, creative: usize) -> u64 {
        self.overall.get(creative).map_or(0, |c| c.impressions.load(Relaxed))
    }

    /// Totals of one creative across segments, devices and dayparts.
    pub fn overall(&self, creative: crate::CreativeId) -> Counts {
        self.overall.get(creative.index()).map_or(Counts::default(), Cell::load)
    }

    /// Counts of one (creative, segment) cell; `segment` is a persona id (the person's
    /// top persona) or `None` for a person with no persona score at all.
    pub fn segment(&self, creative: crate::CreativeId, segment: Option<crate::PersonaId>) -> Counts {
        self.find(creative.index(), segment.map_or(NO_SEGMENT, |p| p.0))
            .map_or(Counts::default(), |s| s.cell.load())
    }

    /// Counts of one creative on one device.
    pub fn device(&self, creative: crate::CreativeId, device: crate::Device) -> Counts {
        self.by_device.get(creative.index() * DEVICES + device as usize).map_or(Counts::default(), Cell::load)
    }

    /// Counts of one creative in one daypart.
    pub fn daypart(&self, creative: crate::CreativeId, daypart: crate::Daypart) -> Counts {
        self.by_daypart
            .get(creative.index() * DAYPARTS + daypart as usize)
            .map_or(Counts::default(), Cell::load)
    }

    /// Every used (creative index, segment, slot).
    pub(crate) fn segment_slots(&self) -> impl Iterator<Item = (usize, u16, &Slot)> + '_ {
        self.slots.iter().filter_map(|s| {
            let key = s.key.load(Relaxed);
            (key != 0).then(|| (((key >> 16) - 1) as usize, (key & 0xffff) as u16, s))
        })
    }
}
