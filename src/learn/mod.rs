//! Learning: reward statistics per creative (overall, by device, by daypart) and per
//! (creative, segment), updated lock-free with atomics so `select` and `record` run from
//! many threads at once; the exploration policies; and the estimate that turns a
//! creative's persona match (the prior) plus what was observed into a click rate.
//! Reading statistics on the hot path never allocates or locks.

mod rng;
mod snapshot;

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

pub use rng::{fresh_seed, inverse_normal_cdf, Rng};
pub use snapshot::{
    CreativeStats, LoadReport, SnapshotKind, StatsSnapshot, SNAPSHOT_FORMAT, SNAPSHOT_VERSION,
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
    /// With probability `epsilon` a slot goes to a uniformly chosen eligible creative,
    /// otherwise to the greedy best.
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
    /// Thompson sampling: each creative's click rate is drawn from its posterior (a
    /// moment-matched normal approximation of the Beta posterior) and the best draw wins.
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
    /// Weight of the persona-match prior, in pseudo-impressions (default 100).
    pub prior_strength: f64,
    /// Pseudo-clicks added to both sides of a creative's lift (clicks over expected
    /// clicks) so that a handful of events cannot swing it (default 2).
    pub lift_smoothing: f64,
    /// Most pseudo-impressions the backing estimates (the creative overall, by device and
    /// by daypart) lend a segment cell that has little data of its own (default 500).
    pub backoff_strength: f64,
    /// Thompson only: draws used to estimate the propensity of each pick (default 32,
    /// at most 1,024).
    pub propensity_draws: u32,
    /// Slots of the (creative, segment) table; 0 picks a size from the catalog. Rounded
    /// up to a power of two, at most 2^24.
    pub segment_cells: usize,
}

impl Default for LearningConfig {
    fn default() -> Self {
        LearningConfig {
            policy: Policy::Greedy,
            ctr_no_match: 0.01,
            ctr_perfect_match: 0.05,
            prior_strength: 100.0,
            lift_smoothing: 2.0,
            backoff_strength: 500.0,
            propensity_draws: 32,
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
            ("prior_strength", self.prior_strength),
            ("backoff_strength", self.backoff_strength),
            ("lift_smoothing", self.lift_smoothing),
        ] {
            if !(v.is_finite() && v > 0.0 && v <= 1e9) {
                return bad(field, format!("{v} must be finite, > 0 and ≤ 1e9"));
            }
        }
        if self.propensity_draws > 1024 {
            return bad("propensity_draws", format!("{} is above 1024", self.propensity_draws));
        }
        if self.segment_cells > 1 << 24 {
            return bad("segment_cells", format!("{} is above 2^24", self.segment_cells));
        }
        Ok(())
    }

    /// The prior click rate of a creative whose contract score without priority is `x`
    /// (`(prior + match) · boost · fatigue`): an increasing affine map that sends a
    /// no-match creative to `ctr_no_match` and a perfect match to `ctr_perfect_match`.
    #[inline]
    pub fn prior_mean(&self, x: f64, prior: f64) -> f64 {
        let slope = self.ctr_perfect_match - self.ctr_no_match;
        (self.ctr_no_match + slope * (x - prior)).clamp(1e-4, 0.99)
    }
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
    /// Sum over impressions of the click rate the persona match predicted for that
    /// person, in millionths. Shared cells compare clicks with it: a creative's *lift*
    /// over what its personas promised is what carries across segments.
    pub expected_micros: u64,
}

impl Counts {
    /// True when every count is zero.
    pub fn is_zero(&self) -> bool {
        *self == Counts::default()
    }

    /// Adds `other`, saturating.
    pub fn add(&mut self, other: &Counts) {
        self.impressions = self.impressions.saturating_add(other.impressions);
        self.clicks = self.clicks.saturating_add(other.clicks);
        self.conversions = self.conversions.saturating_add(other.conversions);
        self.value_micros = self.value_micros.saturating_add(other.value_micros);
        self.expected_micros = self.expected_micros.saturating_add(other.expected_micros);
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

    #[inline]
    fn rate(&self) -> (f64, f64) {
        (self.impressions.load(Relaxed) as f64, self.clicks.load(Relaxed) as f64)
    }

    /// Impressions, clicks and expected clicks.
    #[inline]
    fn lift(&self) -> (f64, f64, f64) {
        (
            self.impressions.load(Relaxed) as f64,
            self.clicks.load(Relaxed) as f64,
            self.expected_micros.load(Relaxed) as f64 * 1e-6,
        )
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
                // Saturating add: a counter never wraps to a small number.
                let _ = cell.fetch_update(Relaxed, Relaxed, |x| Some(x.saturating_add(v)));
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

/// A (creative, segment) slot of the open-addressing table. `key == 0` is empty.
#[derive(Debug, Default)]
struct Slot {
    key: AtomicU64,
    cell: Cell,
}

/// Probes before a segment lookup or insert gives up.
const MAX_PROBES: usize = 32;

/// Device and daypart value counts (see [`crate::Device`], [`crate::Daypart`]).
pub(crate) const DEVICES: usize = 5;
pub(crate) const DAYPARTS: usize = 5;

/// The evidence about one creative for one request: the segment cell and the backing
/// cells.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Evidence {
    /// Impressions and clicks of the (creative, segment) cell.
    pub segment: (f64, f64),
    /// Impressions, clicks and expected clicks of the backing cells.
    pub overall: (f64, f64, f64),
    pub device: (f64, f64, f64),
    pub daypart: (f64, f64, f64),
}

/// A Beta posterior over a creative's click rate for one person and moment.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Posterior {
    /// Pseudo-clicks plus clicks.
    pub alpha: f64,
    /// Pseudo-non-clicks plus non-clicks.
    pub beta: f64,
    /// Real impressions behind it (segment cell plus the share of backing evidence).
    pub evidence: f64,
}

impl Posterior {
    /// Combines the persona-match prior mean `m0` with the evidence. The backing cells
    /// (creative overall, by device, by daypart) say how the creative does *relative to
    /// what its persona match predicted* (its lift: clicks over expected clicks, smoothed
    /// by `lift_smoothing`); the pooled prior is `m0 · lift`, worth `prior_strength` plus
    /// the backing impressions, capped at `backoff_strength`. The segment cell's own
    /// clicks and impressions are added on top. A new creative starts at `m0`; data
    /// moves it, and what is learned for one persona carries to others as a lift, not
    /// as a click rate.
    pub(crate) fn new(m0: f64, cfg: &LearningConfig, ev: &Evidence) -> Posterior {
        let n0 = cfg.prior_strength;
        let third = 1.0 / 3.0;
        let back_imps = third * (ev.overall.0 + ev.device.0 + ev.daypart.0);
        let back_clicks = third * (ev.overall.1 + ev.device.1 + ev.daypart.1);
        let back_expected = third * (ev.overall.2 + ev.device.2 + ev.daypart.2);
        let a = cfg.lift_smoothing;
        let lift = (back_clicks + a) / (back_expected + a);
        let pooled_rate = (m0 * lift).clamp(1e-6, 1.0 - 1e-6);
        let strength = (n0 + back_imps).min(cfg.backoff_strength.max(n0));
        let (imps, clicks) = ev.segment;
        let clicks = clicks.min(imps);
        Posterior {
            alpha: strength * pooled_rate + clicks,
            beta: strength * (1.0 - pooled_rate) + (imps - clicks),
            evidence: imps + (strength - n0).max(0.0),
        }
    }

    /// The posterior mean click rate.
    #[inline]
    pub fn mean(&self) -> f64 {
        self.alpha / (self.alpha + self.beta)
    }

    /// The posterior standard deviation.
    #[inline]
    pub fn sd(&self) -> f64 {
        let n = self.alpha + self.beta;
        (self.alpha * self.beta / (n * n * (n + 1.0))).sqrt()
    }

    /// One Thompson draw: a normal with the posterior's mean and deviation, clipped to
    /// `[0, 1]`.
    #[inline]
    pub fn sample(&self, rng: &mut Rng) -> f64 {
        (self.mean() + self.sd() * rng.normal()).clamp(0.0, 1.0)
    }
}

/// How far a (creative, segment) cell with `(impressions, clicks)` can lift a posterior
/// mean above its pooled prior ρ: the mean `(S·ρ + c)/(S + n)` with `S ≥ prior_strength`
/// is at most `ρ + c/(prior_strength + n)`. Zero without clicks.
#[inline]
pub(crate) fn segment_excess((imps, clicks): (f64, f64), cfg: &LearningConfig) -> f64 {
    clicks.min(imps) / (cfg.prior_strength + imps)
}

/// The segment of "no high persona".
pub(crate) const NO_SEGMENT: u16 = u16::MAX;

/// Learned reward statistics for one catalog: per creative overall, by device, by
/// daypart, and per (creative, segment). Lock-free to update and read.
#[derive(Debug)]
pub struct LearnedStats {
    creatives: usize,
    overall: Box<[Cell]>,
    by_device: Box<[Cell]>,
    by_daypart: Box<[Cell]>,
    slots: Box<[Slot]>,
    overflow: AtomicU64,
    /// Per creative, as `f32` bits: its highest lift (clicks over expected clicks,
    /// smoothed) over every device and daypart, as of its last event; 1 before any event.
    /// The pruning index bounds what learning can do to a creative with it.
    lift_cap: Box<[AtomicU32]>,
    /// What was last exported (or loaded, or merged in): the base of the next delta.
    exported: Mutex<snapshot::Baseline>,
}

impl LearnedStats {
    /// Empty statistics for `creatives` creatives, with `cells` (creative, segment)
    /// slots (0: eight per creative, at least 1,024, at most 2^20).
    pub fn new(creatives: usize, cells: usize) -> Self {
        let cells = if cells == 0 { (creatives * 8).clamp(1_024, 1 << 20) } else { cells.clamp(64, 1 << 24) };
        let cells = cells.next_power_of_two();
        let make = |n: usize| -> Box<[Cell]> { (0..n).map(|_| Cell::default()).collect() };
        LearnedStats {
            creatives,
            overall: make(creatives),
            by_device: make(creatives * DEVICES),
            by_daypart: make(creatives * DAYPARTS),
            slots: (0..cells).map(|_| Slot::default()).collect(),
            overflow: AtomicU64::new(0),
            lift_cap: (0..creatives).map(|_| AtomicU32::new(1.0f32.to_bits())).collect(),
            exported: Mutex::new(snapshot::Baseline::default()),
        }
    }

    /// Number of creatives covered.
    pub fn creatives(&self) -> usize {
        self.creatives
    }

    /// Segment events that found no free slot in the (creative, segment) table and were
    /// counted only in the creative's overall, device and daypart cells. Non-zero means
    /// `segment_cells` should be larger.
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

    #[inline]
    fn find(&self, creative: usize, segment: u16) -> Option<&Cell> {
        let key = Self::key(creative, segment);
        let mask = self.slots.len() - 1;
        let mut i = self.home(key);
        for _ in 0..MAX_PROBES.min(self.slots.len()) {
            let slot = &self.slots[i];
            match slot.key.load(Relaxed) {
                0 => return None,
                k if k == key => return Some(&slot.cell),
                _ => i = (i + 1) & mask,
            }
        }
        None
    }

    fn find_or_insert(&self, creative: usize, segment: u16) -> Option<&Cell> {
        let key = Self::key(creative, segment);
        let mask = self.slots.len() - 1;
        let mut i = self.home(key);
        for _ in 0..MAX_PROBES.min(self.slots.len()) {
            let slot = &self.slots[i];
            match slot.key.compare_exchange(0, key, Relaxed, Relaxed) {
                Ok(_) => return Some(&slot.cell),
                Err(k) if k == key => return Some(&slot.cell),
                Err(_) => i = (i + 1) & mask,
            }
        }
        None
    }

    /// The evidence for one creative, segment, device and daypart index.
    #[inline]
    pub(crate) fn evidence(&self, creative: usize, segment: u16, device: usize, daypart: usize) -> Evidence {
        if creative >= self.creatives {
            return Evidence::default();
        }
        Evidence {
            segment: self.find(creative, segment).map_or((0.0, 0.0), Cell::rate),
            overall: self.overall[creative].lift(),
            device: self.by_device[creative * DEVICES + device.min(DEVICES - 1)].lift(),
            daypart: self.by_daypart[creative * DAYPARTS + daypart.min(DAYPARTS - 1)].lift(),
        }
    }

    /// Adds `counts` to every cell an event on `creative` for `segment` on `device` in
    /// `daypart` belongs to. Returns the creative's lift cap after the event and whether
    /// the excess of its (creative, segment) cell rose (a click): what the pruning index
    /// must hear about.
    pub(crate) fn add(
        &self,
        creative: usize,
        segment: u16,
        device: usize,
        daypart: usize,
        counts: &Counts,
        cfg: &LearningConfig,
    ) -> (f32, bool) {
        if creative >= self.creatives {
            return (1.0, false);
        }
        self.overall[creative].add(counts);
        self.by_device[creative * DEVICES + device.min(DEVICES - 1)].add(counts);
        self.by_daypart[creative * DAYPARTS + daypart.min(DAYPARTS - 1)].add(counts);
        let lift = self.refresh_lift(creative, cfg);
        let rose = match self.find_or_insert(creative, segment) {
            Some(cell) => {
                let before = segment_excess(cell.rate(), cfg);
                cell.add(counts);
                segment_excess(cell.rate(), cfg) > before
            }
            None => {
                self.overflow.fetch_add(1, Relaxed);
                false
            }
        };
        (lift, rose)
    }

    /// Sets the creative's lift cap to its highest lift over every device and daypart,
    /// and returns it.
    fn refresh_lift(&self, creative: usize, cfg: &LearningConfig) -> f32 {
        let (_, oc, oe) = self.overall[creative].lift();
        let mut lift = 0.0f64;
        for d in 0..DEVICES {
            let (_, dc, de) = self.by_device[creative * DEVICES + d].lift();
            for p in 0..DAYPARTS {
                let (_, pc, pe) = self.by_daypart[creative * DAYPARTS + p].lift();
                let third = 1.0 / 3.0;
                let l = (third * (oc + dc + pc) + cfg.lift_smoothing)
                    / (third * (oe + de + pe) + cfg.lift_smoothing);
                lift = lift.max(l);
            }
        }
        self.lift_cap[creative].store((lift as f32).to_bits(), Relaxed);
        lift as f32
    }

    /// Recomputes every creative's lift cap from the counts (after a load or merge).
    pub(crate) fn refresh_caps(&self, cfg: &LearningConfig) {
        for c in 0..self.creatives {
            self.lift_cap[c].store(1.0f32.to_bits(), Relaxed);
            if !self.overall[c].load().is_zero() {
                self.refresh_lift(c, cfg);
            }
        }
    }

    /// The creative's lift cap: no posterior uses a larger lift. At least 0; 1 before
    /// any event.
    #[inline]
    pub(crate) fn lift_cap(&self, creative: usize) -> f32 {
        self.lift_cap.get(creative).map_or(1.0, |l| f32::from_bits(l.load(Relaxed)))
    }

    /// True when anything was ever recorded for the creative.
    #[inline]
    pub(crate) fn has_data(&self, creative: usize) -> bool {
        self.overall
            .get(creative)
            .is_some_and(|c| c.impressions.load(Relaxed) != 0 || c.clicks.load(Relaxed) != 0)
    }

    /// Totals of one creative across segments, devices and dayparts.
    pub fn overall(&self, creative: crate::CreativeId) -> Counts {
        self.overall.get(creative.index()).map_or(Counts::default(), Cell::load)
    }

    /// Counts of one (creative, segment) cell; `segment` is a persona id or `None` for
    /// "no high persona".
    pub fn segment(&self, creative: crate::CreativeId, segment: Option<crate::PersonaId>) -> Counts {
        self.find(creative.index(), segment.map_or(NO_SEGMENT, |p| p.0)).map_or(Counts::default(), Cell::load)
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

    /// Every non-empty (creative index, segment, counts) cell.
    pub(crate) fn segment_cells(&self) -> impl Iterator<Item = (usize, u16, Counts)> + '_ {
        self.slots.iter().filter_map(|s| {
            let key = s.key.load(Relaxed);
            (key != 0).then(|| (((key >> 16) - 1) as usize, (key & 0xffff) as u16, s.cell.load()))
        })
    }
}
