//! The selector: given a profile, a context and a placement, the best k creatives with a
//! score, a propensity and a reason. This is the hot path: `select` takes `&self`, reads
//! only compiled data and the caller's reusable [`Selection`], and never allocates once
//! the selection has been sized for the catalog ([`Selector::new_selection`]).

use std::fmt::Write as _;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use crate::catalog::{Catalog, CreativeId, Intimacy, Moment, PlacementId, NONE};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::persona::{PersonaId, MAX_SCORE};
use crate::profile::{Profile, RelationshipStage, StageRules};

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

/// Configuration of the scoring contract and the trust rules. Every constant of the
/// contract lives here; the defaults are what the README documents.
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
}

impl Default for SelectorConfig {
    fn default() -> Self {
        SelectorConfig {
            threshold: 7,
            prior: 0.05,
            max_per_persona: 2,
            stages: StageRules::default(),
            intimacy: IntimacyTable::default(),
        }
    }
}

impl SelectorConfig {
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
        Ok(())
    }
}

/// Why a creative was picked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ReasonKind {
    /// It matches one of the person's high personas.
    PersonaMatch = 0,
    /// No high persona matched; it ranked on priority and context.
    Priority = 1,
    /// Nothing else was eligible; this is the placement's fallback.
    Fallback = 2,
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
}

/// One picked creative.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pick {
    /// The creative (resolve with [`Catalog::creative_id`] / [`Catalog::payload`]).
    pub creative: CreativeId,
    /// Its final score.
    pub score: f32,
    /// The probability that this policy picks this creative for this slot given the
    /// inputs (1.0 for deterministic choices).
    pub propensity: f32,
    /// Why.
    pub reason: Reason,
}

/// An eligible, scored candidate (scratch).
#[derive(Clone, Copy, Debug)]
struct Scored {
    creative: CreativeId,
    score: f32,
    priority: f32,
    persona: u16,
    persona_score: u8,
    taken: bool,
    boosts_matched: u16,
    persona_match: f32,
    context_boost: f32,
}

/// The caller-owned output of [`Selector::select`], reused across calls (like `regex`'s
/// capture locations). Holds the picks, the caller's per-request exclusions and scratch
/// space, so `select` need not allocate.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    k: usize,
    picks: Vec<Pick>,
    excluded: SmallVec<[CreativeId; 8]>,
    scored: Vec<Scored>,
    persona_weight: Vec<f32>,
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
            ..Selection::default()
        }
    }

    /// How many picks are asked for.
    pub fn k(&self) -> usize {
        self.k
    }

    /// The picks of the last `select`, best first.
    pub fn picks(&self) -> &[Pick] {
        &self.picks
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
}

/// Picks creatives for people. Immutable once built, `Send + Sync`: share one behind an
/// `Arc` and call `select` from many threads.
#[derive(Debug)]
pub struct Selector {
    catalog: Arc<Catalog>,
    config: SelectorConfig,
}

impl Selector {
    /// A selector over `catalog` with `config` (validated).
    pub fn new(catalog: impl Into<Arc<Catalog>>, config: SelectorConfig) -> Result<Self> {
        config.validate()?;
        Ok(Selector {
            catalog: catalog.into(),
            config,
        })
    }

    /// The catalog.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The configuration.
    pub fn config(&self) -> &SelectorConfig {
        &self.config
    }

    /// Resolves a placement name once, before the hot path.
    pub fn placement(&self, name: &str) -> Result<PlacementId> {
        self.catalog.placement(name)
    }

    /// Resolves a creative id once, before the hot path.
    pub fn creative(&self, id: &str) -> Result<CreativeId> {
        self.catalog.creative(id)
    }

    /// An empty profile sized for this catalog's persona menu.
    pub fn new_profile(&self, now: i64) -> Profile {
        Profile::new(self.catalog.menu.len(), now)
    }

    /// A selection of up to `k` picks with scratch space for this catalog's largest
    /// placement, so `select` never allocates.
    pub fn new_selection(&self, k: usize) -> Selection {
        let mut s = Selection::new(k);
        let most = self
            .catalog
            .placements
            .iter()
            .map(|p| p.candidates.len())
            .max()
            .unwrap_or(0);
        s.scored.reserve(most);
        s.persona_weight.reserve(self.catalog.menu.len());
        s
    }

    /// Picks up to `selection.k()` distinct creatives for `profile` in `context` at
    /// `placement`, best first, into `selection` (its previous picks are replaced).
    /// Returns the number of picks.
    ///
    /// Eligibility (hard filters, before any scoring): the placement, the schedule, the
    /// creative's targeting rules, consent to every data class it relies on, intimacy
    /// allowed by the relationship stage, the frequency cap, the person's own rejections,
    /// declared dislikes, and the caller's exclusions. Score:
    /// `priority · (prior + Σ w·s/9 over personas with s ≥ threshold) · boosts`, where a
    /// score counts only when the person consented to the data it came from and a
    /// declared like counts as 9. With k > 1, at most `max_per_persona` picks share a
    /// theme and no two share an exclusion group. Ties break on priority, then catalog
    /// order. When nothing is eligible, the placement's fallbacks are used; the result
    /// is empty only when the placement has none left (or the caller or the person
    /// excluded them).
    ///
    /// Errors only for a placement id that is not from this catalog.
    pub fn select(
        &self,
        profile: &Profile,
        context: &Context,
        placement: PlacementId,
        selection: &mut Selection,
    ) -> Result<usize> {
        selection.picks.clear();
        selection.scored.clear();
        let cat = &*self.catalog;
        let Some(place) = cat.placements.get(placement.0 as usize) else {
            return Err(Error::UnknownPlacement {
                name: format!("#{}", placement.0),
            });
        };
        self.prepare_persona_weights(profile, &mut selection.persona_weight);
        let max_intimacy = self
            .config
            .intimacy
            .max_for(profile.stage(&self.config.stages, context.at));
        let moment = Moment::of(context);
        let now = context.at;
        let consent = profile.consent;

        for &cid in &place.candidates {
            let i = cid.index();
            let r = &cat.rules[i];
            if now < r.start
                || now >= r.end
                || r.intimacy > max_intimacy
                || !consent.contains(r.needs)
            {
                continue;
            }
            if r.targeting != NONE
                && !cat
                    .pool
                    .matches(&cat.conditions[r.targeting as usize], &moment)
            {
                continue;
            }
            if !selection.excluded.is_empty() && selection.excluded.contains(&cid) {
                continue;
            }
            let key = cat.keys[i];
            if profile.is_suppressed(key) {
                continue;
            }
            if r.cap_impressions > 0
                && profile.exposures_since(key, now.saturating_sub(i64::from(r.cap_window)))
                    >= r.cap_impressions
            {
                continue;
            }
            // Persona match; a declared dislike on any tag makes the creative ineligible.
            let mut persona_match = 0.0f32;
            let mut best = (u16::MAX, 0.0f32);
            let mut disliked = false;
            for t in r.tags.range() {
                let p = cat.tag_persona[t];
                let w = selection
                    .persona_weight
                    .get(p.index())
                    .copied()
                    .unwrap_or(0.0);
                if w < 0.0 {
                    disliked = true;
                    break;
                }
                let c = cat.tag_weight[t] * w;
                persona_match += c;
                if c > best.1 {
                    best = (p.0, c);
                }
            }
            if disliked {
                continue;
            }
            let mut context_boost = 1.0f32;
            let mut boosts_matched = 0u16;
            for (j, b) in r.boosts.range().enumerate() {
                if cat.pool.matches(&cat.boost_condition[b], &moment) {
                    context_boost *= cat.boost_factor[b];
                    boosts_matched |= 1 << j;
                }
            }
            let score = r.priority * (self.config.prior + persona_match) * context_boost;
            let persona_score = if best.0 == u16::MAX {
                0
            } else {
                self.effective_score(profile, PersonaId(best.0))
            };
            selection.scored.push(Scored {
                creative: cid,
                score,
                priority: r.priority,
                persona: best.0,
                persona_score,
                taken: false,
                boosts_matched,
                persona_match,
                context_boost,
            });
        }

        self.choose(selection);
        if selection.picks.is_empty() {
            self.fallback(profile, place.fallbacks.as_slice(), selection);
        }
        Ok(selection.picks.len())
    }

    /// Fills the per-persona weight `s/9` this person brings to a match: 0 below the
    /// threshold or without consent to the score's sources, 1 for a declared like,
    /// negative for a declared dislike.
    fn prepare_persona_weights(&self, profile: &Profile, weights: &mut Vec<f32>) {
        let n = self.catalog.menu.len();
        weights.clear();
        weights.resize(n, 0.0);
        for (p, slot) in weights.iter_mut().enumerate() {
            let id = PersonaId(p as u16);
            let s = profile.scores.get(id);
            if s >= self.config.threshold
                && s > 0
                && profile.consent.contains(profile.scores.sources(id))
            {
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

    fn effective_score(&self, profile: &Profile, persona: PersonaId) -> u8 {
        if profile.likes.contains(&persona) {
            MAX_SCORE
        } else {
            profile.scores.get(persona)
        }
    }

    /// Takes the best k scored candidates under the diversity rules.
    fn choose(&self, selection: &mut Selection) {
        let rules = &self.catalog.rules;
        let max_theme = usize::from(self.config.max_per_persona);
        while selection.picks.len() < selection.k {
            let mut best: Option<usize> = None;
            for (i, s) in selection.scored.iter().enumerate() {
                if s.taken {
                    continue;
                }
                if let Some(b) = best {
                    let b = &selection.scored[b];
                    if !(s.score > b.score || (s.score == b.score && s.priority > b.priority)) {
                        continue;
                    }
                }
                if !diverse(rules, &selection.picks, s.creative, max_theme) {
                    continue;
                }
                best = Some(i);
            }
            let Some(b) = best else { break };
            let s = &mut selection.scored[b];
            s.taken = true;
            let kind = if s.persona_match > 0.0 {
                ReasonKind::PersonaMatch
            } else {
                ReasonKind::Priority
            };
            selection.picks.push(Pick {
                creative: s.creative,
                score: s.score,
                propensity: 1.0,
                reason: Reason {
                    kind,
                    persona: (s.persona != u16::MAX).then_some(PersonaId(s.persona)),
                    persona_score: s.persona_score,
                    persona_match: s.persona_match,
                    context_boost: s.context_boost,
                    boosts_matched: s.boosts_matched,
                    targeted: rules[s.creative.index()].targeting != NONE,
                },
            });
        }
    }

    fn fallback(&self, profile: &Profile, fallbacks: &[CreativeId], selection: &mut Selection) {
        let cat = &*self.catalog;
        for &cid in fallbacks {
            if selection.picks.len() >= selection.k {
                break;
            }
            if selection.excluded.contains(&cid)
                || profile.is_suppressed(cat.keys[cid.index()])
                || !diverse(&cat.rules, &selection.picks, cid, 0)
            {
                continue;
            }
            selection.picks.push(Pick {
                creative: cid,
                score: cat.rules[cid.index()].priority,
                propensity: 1.0,
                reason: Reason {
                    kind: ReasonKind::Fallback,
                    persona: None,
                    persona_score: 0,
                    persona_match: 0.0,
                    context_boost: 1.0,
                    boosts_matched: 0,
                    targeted: false,
                },
            });
        }
    }

    /// A one-line, human-readable explanation of a pick: which persona, which rules,
    /// fallback or not. Names personas and rules, never raw personal data. Allocates;
    /// call it off the hot path.
    pub fn explain(&self, pick: &Pick) -> String {
        let cat = &*self.catalog;
        let r = &pick.reason;
        let mut out = String::new();
        match r.kind {
            ReasonKind::Fallback => out.push_str("fallback: nothing else was eligible"),
            ReasonKind::Priority => {
                out.push_str("no high persona matched; ranked by priority and context")
            }
            ReasonKind::PersonaMatch => {
                let name = r.persona.map_or("?", |p| cat.menu.name(p));
                let _ = write!(
                    out,
                    "persona '{name}' (score {}/9), match {:.2}",
                    r.persona_score, r.persona_match
                );
            }
        }
        if r.targeted {
            let _ = write!(
                out,
                "; targeting held ({})",
                self.targeting_dimensions(pick.creative)
            );
        }
        if r.boosts_matched != 0 {
            let _ = write!(out, "; context boost x{:.2}", r.context_boost);
        }
        let _ = write!(
            out,
            "; priority {}",
            cat.rules
                .get(pick.creative.index())
                .map_or(0.0, |x| x.priority)
        );
        out
    }

    fn targeting_dimensions(&self, creative: CreativeId) -> String {
        let cat = &*self.catalog;
        let Some(c) = cat
            .rules
            .get(creative.index())
            .and_then(|r| cat.conditions.get(r.targeting as usize))
        else {
            return String::new();
        };
        let mut dims: Vec<&str> = Vec::new();
        for (mask, name) in [
            (c.device, "device"),
            (c.channel, "channel"),
            (c.daypart, "daypart"),
            (c.weekday, "weekday"),
            (c.weather, "weather"),
        ] {
            if mask != u8::MAX {
                dims.push(name);
            }
        }
        if c.region_in.len > 0 || c.region_not.len > 0 {
            dims.push("region");
        }
        if c.attributes.len > 0 {
            dims.push("attributes");
        }
        dims.join(", ")
    }
}

/// True when adding `creative` keeps the picks diverse: no shared exclusion group, and
/// (when `max_theme > 0`) fewer than `max_theme` picks with its theme.
fn diverse(
    rules: &[crate::catalog::Rules],
    picks: &[Pick],
    creative: CreativeId,
    max_theme: usize,
) -> bool {
    let r = &rules[creative.index()];
    let mut same_theme = 0;
    for p in picks {
        let q = &rules[p.creative.index()];
        if r.group != NONE && q.group == r.group {
            return false;
        }
        if r.theme != u16::MAX && q.theme == r.theme {
            same_theme += 1;
        }
    }
    max_theme == 0 || r.theme == u16::MAX || same_theme < max_theme
}
