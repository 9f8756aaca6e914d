//! The selector: given a profile, a context and a placement, the best k creatives with a
//! score, a propensity and a reason. This is the hot path: `select` takes `&self`, reads
//! only compiled data and the caller's reusable [`Selection`], and never allocates once
//! the selection has been sized for the catalog ([`Selector::new_selection`]).

pub(crate) mod assemble;
mod explain;
mod explore;
mod index;
mod policy;
mod propensity;

use policy::{beats, diverse};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use index::{Cursor, Group, PruneIndex};

use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use crate::catalog::{Catalog, CreativeId, Gate, Intimacy, Moment, Placement, PlacementId, NONE};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::learn::features::{rank_scores, Person, Prior, When};
use crate::learn::model::{mean_rate, sigmoid};
use crate::learn::request::Terms;
use crate::learn::{LearnedStats, LearningConfig, Policy, Rng, NO_SEGMENT};
use crate::persona::{PersonaId, MAX_SCORE};
use crate::profile::{DataClasses, Profile, RelationshipStage, StageRules};

/// The most picks one selection may ask for.
pub const MAX_K: usize = 256;

/// The highest intimacy allowed at each relationship stage ("you can't make old
/// friends").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IntimacyTable {
    /// Allowed for someone new.
    pub new: Intimacy,
    /// Allowed for someone returning.
    pub returning: Intimacy,
    /// Allowed for a regular.
    pub regular: Intimacy,
    /// Allowed for a loyal customer.
    pub loyal: Intimacy,
}

impl Default for IntimacyTable {
    fn default() -> Self {
        IntimacyTable {
            new: Intimacy::Segment,
            returning: Intimacy::Personal,
            regular: Intimacy::Personal,
            loyal: Intimacy::Intimate,
        }
    }
}

impl IntimacyTable {
    /// The highest intimacy allowed at `stage`.
    pub fn max_for(&self, stage: RelationshipStage) -> Intimacy {
        match stage {
            RelationshipStage::New => self.new,
            RelationshipStage::Returning => self.returning,
            RelationshipStage::Regular => self.regular,
            RelationshipStage::Loyal => self.loyal,
        }
    }
}

/// Fatigue: repeated impressions of a creative without engagement lower its score for
/// that person, and the effect fades with time. After `n` recent unengaged impressions
/// the multiplier is `max(floor, 1 − per_impression · Σ 2^(−age/half_life))`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FatigueConfig {
    /// Score lost per fresh unengaged impression (0..1, default 0.15; 0 turns fatigue off).
    pub per_impression: f32,
    /// Hours for an impression's weight to halve (> 0, default 24).
    pub half_life_hours: f32,
    /// The lowest the multiplier goes (0..=1, default 0.3).
    pub floor: f32,
}

impl Default for FatigueConfig {
    fn default() -> Self {
        FatigueConfig { per_impression: 0.15, half_life_hours: 24.0, floor: 0.3 }
    }
}

/// Configuration of the scoring contract, the trust rules and learning. Every constant
/// of the contract lives here; the defaults are what the README documents.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SelectorConfig {
    /// A persona counts for a person when their score is at least this (0..=9, default 7).
    pub threshold: u8,
    /// Added to the persona match so creatives matching no high persona still rank by
    /// priority and context (finite, ≥ 0, default 0.05).
    pub prior: f32,
    /// With k > 1, at most this many picks share a persona theme (the creative's
    /// highest-weighted persona); 0 means no limit. Default 2.
    pub max_per_persona: u8,
    /// Visits and days needed for each relationship stage.
    pub stages: StageRules,
    /// The highest intimacy allowed at each stage.
    pub intimacy: IntimacyTable,
    /// Fatigue from repeated unengaged impressions.
    pub fatigue: FatigueConfig,
    /// Learning and exploration.
    pub learning: LearningConfig,
    /// Use the per-persona index and upper-bound pruning (default true). Turning it off
    /// scores every candidate: the same picks, slower; for tests and benchmarks.
    pub prune: bool,
}

impl Default for SelectorConfig {
    fn default() -> Self {
        SelectorConfig {
            threshold: 7,
            prior: 0.05,
            max_per_persona: 2,
            stages: StageRules::default(),
            intimacy: IntimacyTable::default(),
            fatigue: FatigueConfig::default(),
            learning: LearningConfig::default(),
            prune: true,
        }
    }
}

impl SelectorConfig {
    /// The default configuration with another exploration policy.
    pub fn with_policy(policy: Policy) -> Self {
        let mut c = SelectorConfig::default();
        c.learning.policy = policy;
        c
    }

    /// Parses a configuration from JSON (missing fields take their defaults).
    pub fn from_json(json: &str) -> Result<Self> {
        let config: SelectorConfig =
            serde_json::from_str(json).map_err(|source| Error::Json { what: "selector config", source })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks every field; errors name the field.
    pub fn validate(&self) -> Result<()> {
        if self.threshold > MAX_SCORE {
            return Err(Error::invalid(
                "selector config",
                "threshold",
                format!("{} is above the top score {MAX_SCORE}", self.threshold),
            ));
        }
        if !self.prior.is_finite() || self.prior < 0.0 {
            return Err(Error::invalid(
                "selector config",
                "prior",
                format!("{} must be finite and ≥ 0", self.prior),
            ));
        }
        let f = &self.fatigue;
        if !(0.0..1.0).contains(&f.per_impression) {
            return Err(Error::invalid(
                "selector config",
                "fatigue.per_impression",
                format!("{} must be in [0, 1)", f.per_impression),
            ));
        }
        if !(f.half_life_hours.is_finite() && f.half_life_hours > 0.0) {
            return Err(Error::invalid(
                "selector config",
                "fatigue.half_life_hours",
                format!("{} must be finite and > 0", f.half_life_hours),
            ));
        }
        if !(0.0..=1.0).contains(&f.floor) {
            return Err(Error::invalid(
                "selector config",
                "fatigue.floor",
                format!("{} must be in [0, 1]", f.floor),
            ));
        }
        self.learning.validate()
    }
}

/// Why a creative was picked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ReasonKind {
    /// It matches one of the person's high personas (and learning has little data yet).
    PersonaMatch = 0,
    /// No high persona matched; it ranked on priority and context.
    Priority = 1,
    /// Nothing else was eligible; this is the placement's fallback.
    Fallback = 2,
    /// It ranked first on what was learned from reactions to it.
    Learned = 3,
    /// The exploration policy chose it over the current best, to learn.
    Exploring = 4,
}

/// The explanation attached to every pick. It names personas and rules, never raw
/// personal data.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Reason {
    /// What kind of reason.
    pub kind: ReasonKind,
    /// The persona that contributed most to the match, if any.
    pub persona: Option<PersonaId>,
    /// That persona's score for this person (0..=9; 9 for a declared like).
    pub persona_score: u8,
    /// The whole persona match `Σ w·s/9` over counted personas.
    pub persona_match: f32,
    /// The product of the boosts that held (1.0 when none).
    pub context_boost: f32,
    /// Bit i set when the creative's boost i held.
    pub boosts_matched: u16,
    /// True when the creative has hard targeting rules (all of which held).
    pub targeted: bool,
    /// The fatigue multiplier for this person (1.0 when fresh).
    pub fatigue: f32,
    /// The rules score `priority · (prior + match) · boost · fatigue`.
    pub base: f32,
    /// The estimated click rate (posterior mean), or 0 under [`Policy::Rules`].
    pub estimate: f32,
    /// Impressions behind the estimate (the segment's own plus borrowed backing data).
    pub evidence: f32,
}

/// One picked creative.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pick {
    /// The creative (resolve with [`Catalog::creative_id`] / [`Catalog::payload`]).
    pub creative: CreativeId,
    /// Its final score: the rules score under [`Policy::Rules`], otherwise
    /// `priority · estimated click rate` (for Thompson, the drawn rate; for greedy,
    /// epsilon-greedy and Thompson with the optimism's lift,
    /// [`LearningConfig::optimism`](crate::LearningConfig::optimism); the plain estimate
    /// is in the reason).
    pub score: f32,
    /// The probability that the policy gives this slot to this creative, given the
    /// request and the picks before it: 1.0 for deterministic choices, exact for
    /// epsilon-greedy and softmax, for Thompson integrated numerically over the pick's
    /// draw (within about 2·10⁻⁴; docs/learning.md).
    pub propensity: f32,
    /// Why.
    pub reason: Reason,
}

/// An eligible, scored candidate (scratch).
#[derive(Clone, Copy, Debug)]
struct Scored {
    creative: CreativeId,
    /// What the active policy ranks by.
    key: f32,
    /// Epsilon-greedy with a reach: the key with the log-odds raised that many more own
    /// standard deviations (it explores among the candidates whose reach attains the
    /// greedy choice's key); otherwise the key.
    reach: f32,
    base: f32,
    /// `priority ·` the posterior mean click rate.
    mean: f32,
    /// The model's log-odds (mean) and its standard deviation.
    logit: f32,
    sd: f32,
    evidence: f32,
    priority: f32,
    persona_match: f32,
    context_boost: f32,
    fatigue: f32,
    persona: u16,
    boosts_matched: u16,
    persona_score: u8,
    taken: bool,
}

/// What the person's memory says about one creative (scratch, one entry per creative
/// in the order first met, found through `Selection::memo_slots`).
#[derive(Clone, Copy, Debug, Default)]
struct Memo {
    creative: u32,
    /// Its slot in `Selection::memo_slots`.
    slot: u32,
    /// 1 when blocked (rejected, or capped once condensed).
    kind: u8,
    /// While condensing: the latest engagement (it resets the fatigue of the exposures
    /// up to it), the exposures in the cap's window, and the decayed exposures since.
    engaged: i64,
    capped: u32,
    weight: f64,
    fatigue: f32,
}

/// Slots of the table from a creative to its [`Memo`]: a power of two, at least twice
/// the most creatives a profile's memory can name, so a probe ends soon. (A profile
/// built in code past those limits gets a larger table, once.)
const MEMO_SLOTS: usize = 2048;
const _: () = assert!(
    MEMO_SLOTS.is_power_of_two()
        && MEMO_SLOTS
            >= 2 * (crate::profile::MAX_EXPOSURES
                + crate::profile::MAX_SUPPRESSED
                + crate::profile::MAX_ENGAGEMENTS)
);

/// Where a creative's probe starts in a memo table of `slots` slots (a power of two;
/// Fibonacci hashing).
#[inline]
fn memo_home(creative: u32, slots: usize) -> usize {
    let hash = u64::from(creative.wrapping_mul(0x9E37_79B1)) << 32;
    (hash >> (64 - slots.trailing_zeros())) as usize
}

/// Where `creative` is in the memo table: `Ok(its index in memo)`, or `Err(the empty
/// slot it would take)` (`usize::MAX` for a table with no slots). The table has at
/// least twice as many slots as entries, so a probe ends soon.
fn memo_probe(memo: &[Memo], slots: &[u32], creative: u32) -> std::result::Result<usize, usize> {
    let mut slot = memo_home(creative, slots.len());
    loop {
        match slots.get(slot) {
            None => return Err(usize::MAX),
            Some(0) => return Err(slot),
            Some(&i) if memo.get(i as usize - 1).is_some_and(|m| m.creative == creative) => {
                return Ok(i as usize - 1)
            }
            Some(_) => slot = (slot + 1) & (slots.len() - 1),
        }
    }
}

/// The memo entry of `creative`, made on first sight.
fn memo_entry(memo: &mut Vec<Memo>, slots: &mut [u32], creative: u32) -> usize {
    match memo_probe(memo, slots, creative) {
        Ok(i) => i,
        Err(slot) => {
            memo.push(Memo {
                creative,
                slot: slot as u32,
                engaged: i64::MIN,
                fatigue: 1.0,
                ..Memo::default()
            });
            if let Some(s) = slots.get_mut(slot) {
                *s = memo.len() as u32;
            }
            memo.len() - 1
        }
    }
}

/// The caller-owned output of [`Selector::select`], reused across calls (like `regex`'s
/// capture locations). Holds the picks, the caller's per-request exclusions and scratch
/// space, so `select` need not allocate.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    k: usize,
    picks: Vec<Pick>,
    shadow: Vec<Pick>,
    excluded: SmallVec<[CreativeId; 8]>,
    scored: Vec<Scored>,
    persona_weight: Vec<f32>,
    /// Per persona: the counted score (0..=9) and its rank, for the learned model.
    person_score: Vec<u8>,
    person_rank: Vec<u8>,
    /// The learned model's per-request terms (see `learn::request`).
    persona_terms: Vec<crate::learn::request::Term>,
    attribute_terms: Vec<crate::learn::request::Term>,
    memo: Vec<Memo>,
    /// Per slot, 1 + the index of its creative's entry in `memo` (0: empty).
    memo_slots: Vec<u32>,
    memo_bloom: [u64; 4],
    topk: Vec<f32>,
    /// Short of k picks: the best bounds of candidates passed over that the diversity
    /// rules would still allow, as many as picks are missing.
    allowed_top: Vec<f32>,
    cursors: Vec<Cursor>,
    /// Per cursor and band of its list, where the band's next entry is, and the
    /// cursor's tree of its bands' bounds (see `index::Cursor::suffix`).
    band_tree: Vec<(f32, u32)>,
    band_pos: Vec<u32>,
    /// Thompson's rivals of a pick, for its propensity (`propensity::Rival`).
    rivals: Vec<propensity::Rival>,
    /// What the support of the first pick left in `rivals`: the pick, how many
    /// candidates were scored then, and where those rivals start to leave the pick a
    /// chance (see `propensity::thompson_propensity_after`). Taken by the next
    /// propensity.
    placed: Option<(CreativeId, usize, f64)>,
    /// Set while the pruned scan may still score rivals: Thompson's picks then wait
    /// for their propensity (NaN) until the scan's last choice.
    defer_propensity: bool,
    /// Thompson's slate: the probability of the picks so far (see
    /// `propensity::thompson_joint`), and the two grids its integral runs on.
    slate_joint: f64,
    slate_grids: [Vec<f64>; 2],
    /// The picks' draws, and where each slot's integral starts.
    slate_draws: Vec<propensity::Draw>,
    slate_starts: Vec<f64>,
    /// Per set of attribute values of the unmatched order (see
    /// `index::PruneIndex::combo_start`): where its next candidate is, what its values
    /// add in this request beyond the attribute allowance, and its next candidate's
    /// bound with that (−∞ once the set is offered).
    unmatched_pos: Vec<u32>,
    combo_offset: Vec<f32>,
    unmatched_head: Vec<f32>,
    /// The cursors grouped by persona, for the scan's bound.
    groups: Vec<Group>,
    /// What this request's attribute effects can add to any candidate's log-odds, when
    /// the index leaves them out of its static bounds (see `index::attribute_allowance`).
    attribute_allowance: f32,
    /// Scratch: per attribute name, its best value's effect in this request.
    name_best: Vec<f32>,
    /// Per creative: the stamp of the last request that scored it.
    seen: Vec<u32>,
    /// Learned pruned scan: candidates taken from the index whose own bound (see
    /// `index::Selector::prescreen`) was already below the k-th best, with that bound;
    /// scored later only if a deeper pass needs them (−∞ once scored).
    skipped: Vec<(f32, CreativeId)>,
    /// Epsilon-greedy through the index: the eligible candidates, in candidate order,
    /// and how many more k > 1 requests take the full scan (see `select::explore`).
    eligible: Vec<CreativeId>,
    full_scans_left: u8,
    /// The lowest key among the greedy choices of the slots the last `choose` filled:
    /// epsilon-greedy with a reach explores among what attains it, so the pruned scan
    /// goes down to it.
    least_greedy: f32,
    stamp: u32,
    visited: u32,
    /// The assemblies of the templates scored by the last `select` (see
    /// [`Selection::assembly`]) and the per-variant scratch behind them.
    assemblies: Vec<crate::assemble::Assembly>,
    variant_scored: Vec<Option<Scored>>,
    variant_value: Vec<f32>,
    /// The pruned scan's bound per template of the placement, computed once per request
    /// (valid while `template_bound_stamp` is the request's stamp).
    template_bound: Vec<f32>,
    template_bound_stamp: u32,
    /// The largest of `template_bound` (same validity).
    template_bound_max: f32,
    /// The personas the person scores above 0, as a bitset, and per persona the most
    /// one unit of tag weight can add for them (for template bounds).
    person_mask: Vec<u64>,
    persona_factor: Vec<f32>,
    /// Per template of the placement, the largest prior part its variants' tags can add
    /// for this person (the first template bound's scratch).
    template_prior: Vec<f32>,
    /// Which compiled catalog the last `select` read (its address), so a pick is never
    /// read against another catalog's ids.
    catalog_key: usize,
}

impl Selection {
    /// A selection of up to `k` picks (clamped to `1..=MAX_K`). Prefer
    /// [`Selector::new_selection`], which also sizes the scratch space so that the first
    /// `select` does not allocate either.
    pub fn new(k: usize) -> Self {
        let k = k.clamp(1, MAX_K);
        Selection {
            k,
            picks: Vec::with_capacity(k),
            shadow: Vec::with_capacity(k),
            topk: Vec::with_capacity(k + 1),
            allowed_top: Vec::with_capacity(k + 1),
            ..Selection::default()
        }
    }

    /// How many candidates the last `select` checked and scored in full (the rest were
    /// pruned by the index without being looked at). A diagnostic for the cost model.
    pub fn candidates_scored(&self) -> usize {
        self.visited as usize
    }

    /// How many picks are asked for.
    pub fn k(&self) -> usize {
        self.k
    }

    /// The picks of the last `select`, best first.
    pub fn picks(&self) -> &[Pick] {
        &self.picks
    }

    /// For a placement in shadow mode: what the learning policy would have picked (the
    /// served picks are the rules' picks). Empty otherwise.
    pub fn shadow_picks(&self) -> &[Pick] {
        &self.shadow
    }

    /// Number of picks.
    pub fn len(&self) -> usize {
        self.picks.len()
    }

    /// True when the last `select` picked nothing.
    pub fn is_empty(&self) -> bool {
        self.picks.is_empty()
    }

    /// Excludes a creative from the following selections (already on the page, just shown
    /// elsewhere) until [`Selection::clear_exclusions`]. Spills to the heap past 8.
    pub fn exclude(&mut self, creative: CreativeId) {
        if !self.excluded.contains(&creative) {
            self.excluded.push(creative);
        }
    }

    /// Forgets the exclusions.
    pub fn clear_exclusions(&mut self) {
        self.excluded.clear();
    }

    /// The current exclusions.
    pub fn exclusions(&self) -> &[CreativeId] {
        &self.excluded
    }

    /// A fresh stamp for one request, with `seen` sized for `creatives`.
    fn next_stamp(&mut self, creatives: usize) -> u32 {
        if self.seen.len() != creatives {
            self.seen.clear();
            self.seen.resize(creatives, 0);
            self.stamp = 0;
            self.template_bound_stamp = 0;
        }
        self.stamp = self.stamp.wrapping_add(1);
        if self.stamp == 0 {
            self.seen.fill(0);
            self.stamp = 1;
            self.template_bound_stamp = 0;
        }
        self.stamp
    }

    /// The person's fatigue multiplier for `creative` (1 when fresh), or `None` when it
    /// is blocked for them (rejected or capped).
    fn fatigue_of(&self, creative: CreativeId) -> Option<f32> {
        match self.memo_of(creative) {
            Some(m) if m.kind != 0 => None,
            Some(m) => Some(m.fatigue),
            None => Some(1.0),
        }
    }

    fn memo_of(&self, creative: CreativeId) -> Option<&Memo> {
        let bit = creative.0 as usize & 255;
        if self.memo_bloom[bit >> 6] & (1 << (bit & 63)) == 0 {
            return None;
        }
        memo_probe(&self.memo, &self.memo_slots, creative.0).ok().and_then(|i| self.memo.get(i))
    }
}

/// Picks creatives for people and learns from their reactions. `Send + Sync`: share
/// one behind an `Arc` and call `select` and `record` from many threads.
#[derive(Debug)]
pub struct Selector {
    catalog: Arc<Catalog>,
    config: SelectorConfig,
    pub(crate) stats: LearnedStats,
    /// The learned model's prior, from the configuration.
    pub(crate) prior: Prior,
    shadow: Box<[AtomicBool]>,
    /// The pruning order of the configured policy, rebuilt (off the `select` path) as
    /// learning moves the bounds.
    pub(crate) prune: ArcSwap<PruneIndex>,
    /// The pruning order being rebuilt, before it is stored: `record` raises its
    /// bounds too, so the stored order covers every event recorded meanwhile.
    pub(crate) prune_next: arc_swap::ArcSwapOption<PruneIndex>,
    /// Serializes rebuilds of the pruning order.
    rebuild: Mutex<()>,
    /// Debug builds: writes to the learned state under way, for the pruned scan's check
    /// of its bounds.
    #[cfg(debug_assertions)]
    pub(crate) writes: Writes,
}

/// Debug builds only: writes to the learned state begun and ended. The pruned scan's
/// debug check of its per-candidate bound (`index::Selector::prescreen`) holds only
/// while no other thread writes: a bound is raised just after the weights it follows,
/// so a request that meets a write under way may see the weights first.
#[cfg(debug_assertions)]
#[derive(Debug, Default)]
pub(crate) struct Writes {
    begun: std::sync::atomic::AtomicU64,
    ended: std::sync::atomic::AtomicU64,
}

#[cfg(debug_assertions)]
impl Writes {
    /// Marks a write as under way until the guard drops.
    pub(crate) fn begin(&self) -> WriteGuard<'_> {
        self.begun.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        WriteGuard(self)
    }

    /// A mark when no write is under way now (else `None`).
    pub(crate) fn quiet(&self) -> Option<u64> {
        let ended = self.ended.load(std::sync::atomic::Ordering::SeqCst);
        let begun = self.begun.load(std::sync::atomic::Ordering::SeqCst);
        (begun == ended).then_some(begun)
    }

    /// True when no write began since `mark` was taken.
    pub(crate) fn still(&self, mark: u64) -> bool {
        self.begun.load(std::sync::atomic::Ordering::SeqCst) == mark
    }
}

/// Ends a write when dropped (see [`Writes::begin`]).
#[cfg(debug_assertions)]
pub(crate) struct WriteGuard<'a>(&'a Writes);

#[cfg(debug_assertions)]
impl Drop for WriteGuard<'_> {
    fn drop(&mut self) {
        self.0.ended.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// What `select` computes once per request and every candidate check reads.
struct Env<'a> {
    now: i64,
    consent: DataClasses,
    max_intimacy: Intimacy,
    moment: Moment<'a>,
    segment: u16,
    when: When,
    policy: Policy,
    learning: bool,
    /// The person declared a dislike (else no creative can be ruled out by one).
    dislikes: bool,
    /// Thompson: the generator every candidate's draw is keyed from (with its id, see
    /// [`Env::draw`]), fixed for the request: a candidate draws the same whenever and
    /// however often it is scored or bounded.
    draws: Rng,
    /// The model's prior of the pruning index loaded when the request began (its
    /// spreads are learned, see `learn::spread`); a pruned scan goes ahead only with an
    /// index of the same prior.
    prior: Prior,
}

impl Env<'_> {
    /// Thompson: candidate `cid`'s standard normal draw in this request.
    #[inline]
    fn draw(&self, cid: CreativeId) -> f64 {
        self.draws.normal_at(u64::from(cid.0))
    }

    /// Whether this request passes a creative's request-level filters (`gate`, see
    /// [`Gate::of`]): its schedule, intimacy, data needs and targeting.
    #[inline(always)]
    fn admits(&self, cat: &Catalog, gate: &Gate) -> bool {
        self.now >= gate.start
            && self.now < gate.end
            && gate.intimacy <= self.max_intimacy
            && self.consent.contains(gate.needs)
            && (gate.targeting == NONE
                || cat.pool.matches(&cat.conditions[gate.targeting as usize], &self.moment))
    }
}

impl Selector {
    /// A selector over `catalog` with `config` (validated), with empty statistics.
    pub fn new(catalog: impl Into<Arc<Catalog>>, config: SelectorConfig) -> Result<Self> {
        config.validate()?;
        // Thompson's propensities read a table built once; build it here, off the hot path.
        let _ = propensity::cdf_table();
        let catalog: Arc<Catalog> = catalog.into();
        let stats = LearnedStats::new(
            catalog.len(),
            catalog.menu.len(),
            catalog.attribute_value_count(),
            config.learning.segment_cells,
        );
        let shadow = (0..catalog.placements.len()).map(|_| AtomicBool::new(false)).collect();
        let prior = config.learning.prior();
        let selector = Selector {
            catalog,
            config,
            stats,
            prior,
            shadow,
            prune: ArcSwap::from_pointee(PruneIndex::default()),
            prune_next: arc_swap::ArcSwapOption::empty(),
            rebuild: Mutex::new(()),
            #[cfg(debug_assertions)]
            writes: Writes::default(),
        };
        selector.prune.store(Arc::new(selector.build_prune_index(0, None)));
        Ok(selector)
    }

    /// The catalog.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Identifies this selector's compiled catalog (its address) for as long as the
    /// selector lives.
    pub(crate) fn catalog_key(&self) -> usize {
        std::sync::Arc::as_ptr(&self.catalog) as *const () as usize
    }

    /// Whether `selection`'s picks were made by a selector on this very catalog.
    pub(crate) fn made(&self, selection: &Selection) -> bool {
        selection.catalog_key == self.catalog_key()
    }

    /// The catalog, shared.
    pub fn catalog_arc(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// The configuration.
    pub fn config(&self) -> &SelectorConfig {
        &self.config
    }

    /// The learned statistics.
    pub fn stats(&self) -> &LearnedStats {
        &self.stats
    }

    /// Resolves a placement name once, before the hot path.
    pub fn placement(&self, name: &str) -> Result<PlacementId> {
        self.catalog.placement(name)
    }

    /// Resolves a creative id once, before the hot path.
    pub fn creative(&self, id: &str) -> Result<CreativeId> {
        self.catalog.creative(id)
    }

    /// Puts a placement in (or out of) shadow mode: it serves what the rules pick
    /// (priority and persona match, no learning) while the learning policy's picks are
    /// reported in [`Selection::shadow_picks`] and it keeps learning from the outcomes.
    pub fn set_shadow(&self, placement: PlacementId, shadow: bool) -> Result<()> {
        let flag = self.shadow.get(placement.0 as usize).ok_or_else(|| Error::UnknownPlacement {
            name: format!("#{}", placement.0),
            did_you_mean: Vec::new(),
        })?;
        flag.store(shadow, Ordering::Relaxed);
        Ok(())
    }

    /// True when the placement is in shadow mode.
    pub fn is_shadow(&self, placement: PlacementId) -> bool {
        self.shadow.get(placement.0 as usize).is_some_and(|f| f.load(Ordering::Relaxed))
    }

    /// An empty profile sized for this catalog's persona menu.
    pub fn new_profile(&self, now: i64) -> Profile {
        Profile::for_menu(&self.catalog.menu, now)
    }

    /// A selection of up to `k` picks with scratch space for this catalog's largest
    /// placement, so `select` never allocates. Create it on the thread that will use
    /// it: that also registers the thread with the lock-free pointer the pruning order
    /// lives behind (`arc-swap` allocates once per thread, on first use).
    pub fn new_selection(&self, k: usize) -> Selection {
        drop(self.prune.load());
        let mut s = Selection::new(k);
        let most = self.catalog.placements.iter().map(|p| p.candidates.len()).max().unwrap_or(0);
        let personas = self.catalog.menu.len();
        s.scored.reserve(most);
        s.eligible.reserve(most);
        s.skipped.reserve(most);
        s.persona_weight.reserve(personas);
        s.person_score.reserve(personas);
        s.person_rank.reserve(personas);
        s.persona_terms.reserve(personas * crate::learn::model::TAG_RANKS);
        s.attribute_terms
            .reserve(self.catalog.attribute_value_count().min(crate::learn::request::MAX_CACHED_ATTRIBUTES));
        s.cursors.reserve(personas * crate::learn::model::TAG_RANKS);
        s.groups.reserve(personas);
        s.name_best
            .reserve(self.catalog.attribute_value_count().min(crate::learn::request::MAX_CACHED_ATTRIBUTES));
        s.band_tree.reserve(personas * crate::learn::model::TAG_RANKS * 2 * index::MAX_BANDS);
        s.band_pos.reserve(personas * crate::learn::model::TAG_RANKS * index::MAX_BANDS);
        s.unmatched_pos.reserve(index::MAX_COMBOS);
        s.combo_offset.reserve(index::MAX_COMBOS);
        s.unmatched_head.reserve(index::MAX_COMBOS);
        s.next_stamp(self.catalog.len());
        let templates = &self.catalog.templates;
        // Every template once, plus the one an exploring draw scores again.
        s.assemblies.reserve(templates.list.len() + 1);
        s.variant_scored.reserve(templates.most_variants);
        s.variant_value.reserve(templates.most_variants);
        let most_templates = self.catalog.placements.iter().map(|p| p.templates.len()).max().unwrap_or(0);
        s.template_bound.reserve(most_templates);
        s.template_prior.reserve(most_templates);
        s.person_mask.reserve(personas.div_ceil(64));
        s.persona_factor.reserve(personas);
        s.memo.reserve(
            crate::profile::MAX_EXPOSURES + crate::profile::MAX_SUPPRESSED + crate::profile::MAX_ENGAGEMENTS,
        );
        s.memo_slots.resize(MEMO_SLOTS, 0);
        // Thompson's rivals come from the scored candidates.
        s.rivals.reserve(s.scored.capacity());
        for grid in s.slate_grids.iter_mut() {
            grid.reserve(propensity::SLATE_GRID);
        }
        s.slate_draws.reserve(k);
        s.slate_starts.reserve(k);
        s
    }

    /// The person's segment for learning: their top persona by counted score (any
    /// score above 0; a declared like counts as 9; dislikes and unconsented scores do
    /// not count), or `None` when no score counts.
    pub fn segment(&self, profile: &Profile) -> Option<PersonaId> {
        let (mut scores, mut ranks) = (Vec::new(), Vec::new());
        match self.person_scores(profile, &mut scores, &mut ranks) {
            NO_SEGMENT => None,
            s => Some(PersonaId(s)),
        }
    }

    /// Picks up to `selection.k()` distinct creatives for `profile` in `context` at
    /// `placement`, best first, into `selection` (its previous picks are replaced).
    /// Returns the number of picks.
    ///
    /// Eligibility (hard filters, before any scoring): the placement, the schedule, the
    /// creative's targeting rules, consent to every data class it relies on, intimacy
    /// allowed by the relationship stage, the frequency cap, the person's own rejections,
    /// declared dislikes, and the caller's exclusions. Rules score:
    /// `priority · (prior + Σ w·s/9 over personas with s ≥ threshold) · boosts · fatigue`,
    /// where a score counts only when the person consented to the data it came from and a
    /// declared like counts as 9. Unless the policy is [`Policy::Rules`], that score sets
    /// the prior of a learned click-rate estimate and picks rank by
    /// `priority · estimate` under the exploration policy, with randomness seeded from
    /// `context.seed` when the caller set one (replayable) and fresh otherwise. With k > 1, at most `max_per_persona` picks share a theme and no
    /// two share an exclusion group. Ties break on priority, then catalog order. When
    /// nothing is eligible, the placement's fallbacks are used; the result is empty only
    /// when the placement has none left (or the caller or the person excluded them).
    ///
    /// Errors for a placement id that is not from this catalog, and for a profile made
    /// for another persona menu (marked so, its scores sized for another number of
    /// personas, or a like or dislike naming a persona the menu does not have).
    pub fn select(
        &self,
        profile: &Profile,
        context: &Context,
        placement: PlacementId,
        selection: &mut Selection,
    ) -> Result<usize> {
        selection.picks.clear();
        selection.shadow.clear();
        selection.catalog_key = self.catalog_key();
        selection.scored.clear();
        selection.placed = None;
        selection.assemblies.clear();
        selection.visited = 0;
        let cat = &*self.catalog;
        let Some(place) = cat.placements.get(placement.0 as usize) else {
            return Err(Error::UnknownPlacement {
                name: format!("#{}", placement.0),
                did_you_mean: Vec::new(),
            });
        };
        self.check_profile(profile)?;
        self.persona_weights(profile, &mut selection.persona_weight);
        let segment = self.person_scores(profile, &mut selection.person_score, &mut selection.person_rank);
        self.prepare_memo(profile, context.at, selection);
        let policy = self.config.learning.policy;
        let shadow = self.is_shadow(placement);
        let mut env = Env {
            now: context.at,
            consent: profile.consent,
            max_intimacy: self.config.intimacy.max_for(profile.stage(&self.config.stages, context.at)),
            moment: Moment::of(context),
            segment,
            when: When::new(
                context.device,
                context.daypart(),
                context.channel,
                context.weather,
                context.weekday(),
            ),
            policy,
            learning: policy != Policy::Rules || shadow,
            dislikes: !profile.dislikes.is_empty(),
            draws: Rng::new(0),
            prior: self.prune.load().prior,
        };
        if env.learning {
            let person = Person {
                scores: &selection.person_score,
                ranks: &selection.person_rank,
                segment: env.segment,
            };
            self.stats.fill_terms(
                cat,
                &person,
                env.when,
                &env.prior,
                &mut selection.persona_terms,
                &mut selection.attribute_terms,
            );
        }
        let seed = context.seed.unwrap_or_else(crate::learn::fresh_seed);
        let mut rng = Rng::new(seed ^ (u64::from(placement.0) << 48) ^ 0x243f_6a88_85a3_08d3);
        env.draws = Rng::new(seed ^ (u64::from(placement.0) << 48) ^ 0x1319_8a2e_0370_7344);
        let key = |s: &Scored| s.key;
        let rules_key = |s: &Scored| s.base;

        if shadow && policy != Policy::Rules {
            // Serve the rules; record what the learner would have done. Full scan: the
            // two policies rank differently, so neither's bound prunes for both.
            self.scan_all(place, profile, &env, selection);
            self.choose(selection, Policy::Rules, rules_key, &mut rng, false);
            for s in selection.scored.iter_mut() {
                s.taken = false;
            }
            self.choose(selection, policy, key, &mut rng, true);
        } else if self.config.prune
            && (matches!(policy, Policy::Rules | Policy::Greedy | Policy::Thompson)
                || self.config.learning.reach_under(policy).is_some())
            && self.scan_pruned(placement, place, profile, &env, selection, &mut rng)
        {
            // Done by the pruned scan.
        } else if self.config.prune
            && matches!(policy, Policy::EpsilonGreedy { .. })
            && self.epsilon_pruned(placement, place, profile, &mut env, selection, &mut rng)
        {
            // Done by the pruned greedy scan and an exploring draw among every eligible
            // candidate.
        } else {
            // Every eligible creative has a chance (epsilon-greedy, softmax), pruning is
            // off, or the pruning order is being rebuilt: score every candidate.
            self.scan_all(place, profile, &env, selection);
            self.choose(selection, policy, key, &mut rng, false);
        }
        if selection.picks.is_empty() {
            self.fallback(place.fallbacks.as_slice(), selection);
        }
        Ok(selection.picks.len())
    }

    /// Scores every candidate of the placement.
    fn scan_all(&self, place: &Placement, profile: &Profile, env: &Env, selection: &mut Selection) {
        selection.visited = place.candidates.len() as u32;
        for &cid in &place.candidates {
            if let Some(s) = self.evaluate(cid, profile, env, selection) {
                selection.scored.push(s);
            }
        }
    }

    /// The product of creative rules `r`'s boosts whose condition this request meets,
    /// and which of them (bit `j` for its `j`-th boost).
    #[inline]
    fn context_boost(&self, r: &crate::catalog::Rules, env: &Env) -> (f32, u16) {
        let cat = &*self.catalog;
        let (mut boost, mut matched) = (1.0f32, 0u16);
        for (j, b) in r.boosts.range().enumerate() {
            if cat.pool.matches(&cat.boost_condition[b], &env.moment) {
                boost *= cat.boost_factor[b];
                matched |= 1 << j;
            }
        }
        (boost, matched)
    }

    /// Checks every eligibility rule for one candidate and scores it; `None` when it is
    /// not eligible.
    #[inline]
    fn evaluate(
        &self,
        cid: CreativeId,
        profile: &Profile,
        env: &Env,
        selection: &mut Selection,
    ) -> Option<Scored> {
        let cat = &*self.catalog;
        let i = cid.index();
        let r = &cat.rules[i];
        if !env.admits(cat, &Gate::of(r)) {
            return None;
        }
        if !selection.excluded.is_empty() && selection.excluded.contains(&cid) {
            return None;
        }
        let fatigue = selection.fatigue_of(cid)?;
        if cid.0 >= cat.templates.first {
            if let Some(t) = cat.templates.anchored(cid) {
                return self.evaluate_template(t, cid, profile, env, selection);
            }
        }
        // Persona match; a declared dislike on any tag makes the creative ineligible.
        let mut persona_match = 0.0f32;
        let mut best = (u16::MAX, 0.0f32);
        for t in r.tags.range() {
            let p = cat.tag_persona[t];
            let w = selection.persona_weight.get(p.index()).copied().unwrap_or(0.0);
            if w < 0.0 {
                return None;
            }
            let c = cat.tag_share[t] * w;
            persona_match += c;
            if c > best.1 {
                best = (p.0, c);
            }
        }
        let (context_boost, boosts_matched) = self.context_boost(r, env);
        let x = (self.config.prior + persona_match) * context_boost * fatigue;
        let base = r.priority * x;
        let (mut mean, mut logit, mut sd, mut evidence, mut key) = (0.0, 0.0, 0.0, 0.0, base);
        let mut reach = None;
        if env.learning {
            let person = Person {
                scores: &selection.person_score,
                ranks: &selection.person_rank,
                segment: env.segment,
            };
            let mut offset = env.prior.base;
            if context_boost != 1.0 {
                offset += f64::from(context_boost).ln();
            }
            if fatigue != 1.0 {
                offset += f64::from(fatigue).ln();
            }
            let terms = Terms { persona: &selection.persona_terms, attribute: &selection.attribute_terms };
            let (m, v, own) = self.stats.predict_with(cat, i, &person, env.when, &env.prior, terms, offset);
            let learning = &self.config.learning;
            mean = r.priority * mean_rate(m, v) as f32;
            let shown = self.stats.impressions(i);
            // Ranked as if `optimism` own standard deviations better than the mean (more
            // for a creative little shown): a bonus that fades as the creative is shown
            // (`LearningConfig::optimism`, `first_look`).
            let lift = learning.lift_under(env.policy, shown);
            let lifted = m + lift * own.sqrt();
            logit = lifted as f32;
            // Thompson draws around the lifted mean at the creative's own uncertainty,
            // as the optimism counts it: the shared persona and attribute weights pool
            // every creative's evidence, and noise on them only reshuffles creatives
            // whose own weights are already known (the decisions record, "Thompson
            // draws where the creative itself is unknown").
            let draw_sd = (own * learning.thompson_scale).sqrt();
            sd = draw_sd as f32;
            evidence = shown as f32;
            key = match env.policy {
                Policy::Rules => base,
                Policy::Thompson => r.priority * sigmoid(lifted + draw_sd * env.draw(cid)) as f32,
                Policy::Greedy | Policy::EpsilonGreedy { .. } => r.priority * mean_rate(lifted, v) as f32,
                Policy::Softmax { .. } => mean,
            };
            // Epsilon-greedy explores among the creatives whose key this many more own
            // standard deviations up reaches the greedy choice's (`explore_reach`).
            reach = learning
                .reach_under(env.policy)
                .map(|z| r.priority * mean_rate(m + (lift + z) * own.sqrt(), v) as f32);
        }
        let persona_score =
            if best.0 == u16::MAX { 0 } else { self.effective_score(profile, PersonaId(best.0)) };
        Some(Scored {
            creative: cid,
            key,
            reach: reach.unwrap_or(key),
            base,
            mean,
            logit,
            sd,
            evidence,
            priority: r.priority,
            persona_match,
            context_boost,
            fatigue,
            persona: best.0,
            boosts_matched,
            persona_score,
            taken: false,
        })
    }

    /// Fills the per-persona weight `s/9` this person brings to a match: 0 below the
    /// threshold or without consent to the score's sources, 1 for a declared like,
    /// negative for a declared dislike.
    pub(crate) fn persona_weights(&self, profile: &Profile, weights: &mut Vec<f32>) {
        let n = self.catalog.menu.len();
        weights.clear();
        weights.resize(n, 0.0);
        for (p, s) in profile.scores.counted(profile.consent) {
            if let (true, Some(slot)) = (s >= self.config.threshold, weights.get_mut(p)) {
                *slot = f32::from(s) / f32::from(MAX_SCORE);
            }
        }
        for p in &profile.likes {
            if let Some(slot) = weights.get_mut(p.index()) {
                *slot = 1.0;
            }
        }
        for p in &profile.dislikes {
            if let Some(slot) = weights.get_mut(p.index()) {
                *slot = -1.0;
            }
        }
    }

    /// Errors when `profile` cannot have been made for this selector's persona menu: it
    /// is marked as made for another ([`Profile::menu`]), its scores name another
    /// number of personas (an empty score list, as
    /// [`Profile::default`] has, means no scores and is accepted), or a declared like or
    /// dislike names a persona id the menu does not have. Such a profile would otherwise
    /// be read with its scores on the wrong personas or some of them ignored.
    pub(crate) fn check_profile(&self, profile: &Profile) -> Result<()> {
        profile.check_fits(self.catalog.menu.key(), self.catalog.menu.len(), "this selector's persona menu")
    }

    /// Fills, per persona, the score the learned model counts (every score 0..=9 with
    /// consent to its sources; 9 for a declared like; 0 for a dislike) and its rank
    /// among them; returns the person's segment (top persona, or [`NO_SEGMENT`]).
    pub(crate) fn person_scores(&self, profile: &Profile, scores: &mut Vec<u8>, ranks: &mut Vec<u8>) -> u16 {
        let n = self.catalog.menu.len();
        scores.clear();
        scores.resize(n, 0);
        ranks.clear();
        ranks.resize(n, 0);
        self.person_scores_into(profile, scores, ranks)
    }

    /// [`Selector::person_scores`] into slices sized to the menu.
    pub(crate) fn person_scores_into(&self, profile: &Profile, scores: &mut [u8], ranks: &mut [u8]) -> u16 {
        scores.fill(0);
        for (p, s) in profile.scores.counted(profile.consent) {
            if let Some(slot) = scores.get_mut(p) {
                *slot = s.min(MAX_SCORE);
            }
        }
        for p in &profile.likes {
            if let Some(slot) = scores.get_mut(p.index()) {
                *slot = MAX_SCORE;
            }
        }
        for p in &profile.dislikes {
            if let Some(slot) = scores.get_mut(p.index()) {
                *slot = 0;
            }
        }
        rank_scores(scores, ranks)
    }

    /// Condenses the person's memory (rejections, exposures, engagements) into one entry
    /// per creative: blocked (rejected or capped) or its fatigue multiplier. Found
    /// through a small hash table with a Bloom filter in front, so each candidate costs
    /// one bit test, and nothing is sorted.
    fn prepare_memo(&self, profile: &Profile, now: i64, selection: &mut Selection) {
        let cat = &*self.catalog;
        let (memo, slots) = (&mut selection.memo, &mut selection.memo_slots);
        let named = profile.suppressed.len() + profile.engagements.len() + profile.exposures.len();
        let wanted = (2 * named).next_power_of_two().max(MEMO_SLOTS);
        if slots.len() < wanted {
            slots.clear();
            slots.resize(wanted, 0);
        } else {
            // Empty only the slots the previous request filled.
            for m in memo.iter() {
                if let Some(s) = slots.get_mut(m.slot as usize) {
                    *s = 0;
                }
            }
        }
        memo.clear();
        selection.memo_bloom = [0; 4];
        for &key in &profile.suppressed {
            if let Some(c) = cat.creative_by_key(key) {
                let i = memo_entry(memo, slots, c.0);
                memo[i].kind = 1;
            }
        }
        // Engagements first: an engagement resets the fatigue of the exposures up to its
        // second (not the count towards a cap).
        for e in &profile.engagements {
            if let Some(c) = cat.creative_by_key(e.creative) {
                let i = memo_entry(memo, slots, c.0);
                memo[i].engaged = memo[i].engaged.max(e.at);
            }
        }
        let fatigue = &self.config.fatigue;
        let half_life = f64::from(fatigue.half_life_hours) * 3_600.0;
        for e in &profile.exposures {
            let Some(c) = cat.creative_by_key(e.creative) else { continue };
            let Some(r) = cat.rules.get(c.index()) else { continue };
            let i = memo_entry(memo, slots, c.0);
            let m = &mut memo[i];
            if r.cap_impressions > 0 && e.at >= now.saturating_sub(i64::from(r.cap_window)) {
                m.capped += 1;
            }
            if e.at > m.engaged {
                let age = now.saturating_sub(e.at).max(0) as f64;
                m.weight += (-age / half_life).exp2();
            }
        }
        for m in memo.iter_mut() {
            let Some(r) = cat.rules.get(m.creative as usize) else { continue };
            let blocked = m.kind != 0 || (r.cap_impressions > 0 && m.capped >= r.cap_impressions);
            m.kind = u8::from(blocked);
            m.fatigue =
                (1.0 - f64::from(fatigue.per_impression) * m.weight).max(f64::from(fatigue.floor)) as f32;
            let bit = m.creative as usize & 255;
            selection.memo_bloom[bit >> 6] |= 1 << (bit & 63);
        }
    }

    fn effective_score(&self, profile: &Profile, persona: PersonaId) -> u8 {
        if profile.likes.contains(&persona) {
            MAX_SCORE
        } else {
            profile.scores.get(persona)
        }
    }
}
