//! Assembled picks inside the selector: a template is one candidate of its placements,
//! scored by scoring each of its variants with the very function a plain creative gets
//! (eligibility, persona match, boosts, fatigue, the learned model) and assembling the
//! best coherent combination ([`crate::assemble::pick`]). Its score is the template's
//! priority times the mean of the chosen variants' scores, on the same scale as a plain
//! creative's. Also: reading the assembly of a pick, explaining it, and crediting every
//! variant on `record`. Never allocates on `select`.
//!
//! Exploration: the policy explores between candidates (templates and creatives alike);
//! within a template the slots follow the variants' posterior means (rule scores under
//! the rules policy), so given the request and the learned state the assembly is
//! deterministic and a pick's propensity is exactly the probability of this template
//! with this assembly.

use std::fmt::Write as _;

use std::sync::atomic::Ordering;

use super::index::{PlacementIndex, PruneIndex};
use super::{Env, Pick, Scored, Selection, Selector};
use crate::assemble::compile::Template;
use crate::assemble::pick::{self, GENERIC_THEME};
use crate::assemble::{Assembly, SlotChoice, MAX_SLOTS, MAX_VARIANTS};
use crate::catalog::{CreativeId, Placement};
use crate::error::{Error, Result};
use crate::feedback::{Feedback, FeedbackKind};
use crate::learn::model::TAG_RANKS;
use crate::learn::Policy;
use crate::persona::PersonaId;
use crate::profile::Profile;

impl Selection {
    /// The assembly behind `pick` when it is an assembled creative (a template) from the
    /// last `select`, else `None`. Valid until the next `select` with this selection.
    pub fn assembly(&self, pick: &Pick) -> Option<&Assembly> {
        self.assemblies.iter().rev().find(|a| a.template() == pick.creative)
    }
}

impl Selector {
    /// What a slot ranks its variants by: the rules score under the rules policy, the
    /// posterior mean (times priority) otherwise.
    #[inline]
    fn slot_value(env: &Env, s: &Scored) -> f32 {
        if env.policy == Policy::Rules {
            s.base
        } else {
            s.mean
        }
    }

    /// Scores template `template` (anchored by `anchor`, whose own rules held): every
    /// variant scored, the best assembly found and stored in the selection. `None` when no
    /// theme fills every slot.
    pub(super) fn evaluate_template(
        &self,
        template: &Template,
        anchor: CreativeId,
        profile: &Profile,
        env: &Env,
        selection: &mut Selection,
    ) -> Option<Scored> {
        let cat = &*self.catalog;
        let mut scored = std::mem::take(&mut selection.variant_scored);
        let mut value = std::mem::take(&mut selection.variant_value);
        scored.clear();
        value.clear();
        for v in &template.variants {
            let s = self.evaluate(v.creative, profile, env, selection);
            value.push(s.as_ref().map_or(f32::NEG_INFINITY, |s| Self::slot_value(env, s)));
            scored.push(s);
        }
        let mut chosen = [0u16; MAX_SLOTS];
        let found = pick::best(template, &value, &mut chosen);
        let result = found.map(|(theme, _)| {
            let slots = template.slots.len();
            let theme = (theme != GENERIC_THEME).then_some(PersonaId(theme));
            let mut assembly = Assembly::new(anchor, theme);
            let mut sum = Sum::default();
            for &c in &chosen[..slots] {
                let Some(Some(s)) = scored.get(usize::from(c)) else { continue };
                sum.add(s);
                assembly.push(SlotChoice {
                    variant: s.creative,
                    score: if env.policy == Policy::Rules { s.base } else { s.key },
                    persona: (s.persona != u16::MAX).then_some(PersonaId(s.persona)),
                    persona_score: s.persona_score,
                    persona_match: s.persona_match,
                    estimate: if env.policy == Policy::Rules || s.priority <= 0.0 {
                        0.0
                    } else {
                        s.mean / s.priority
                    },
                    evidence: s.evidence,
                });
            }
            let priority = cat.rules.get(anchor.index()).map_or(1.0, |r| r.priority);
            let persona_score = theme.map_or(0, |p| self.effective_score(profile, p));
            (assembly, sum.scored(anchor, priority, theme, persona_score))
        });
        selection.variant_scored = scored;
        selection.variant_value = value;
        let (assembly, scored) = result?;
        selection.assemblies.push(assembly);
        Some(scored)
    }

    /// A bound on template `t`'s key for this person in the pruned scan's space: under
    /// the rules, [`Template::rules_bound`]; under the learned model (log space), the
    /// template's priority times a bound on every one of its variants (the mean of the
    /// chosen variants' keys is at most the largest).
    fn template_bound(&self, index: &PruneIndex, t: &Template, selection: &Selection) -> f32 {
        if index.learned {
            let at = self.catalog.templates.role(t.anchor).map_or(usize::MAX, |(at, _)| at);
            t.ln_priority + self.template_learned_bound(index, at, t, selection)
        } else {
            t.rules_bound(&selection.persona_weight, self.config.prior)
        }
    }

    /// Learned: a bound (log space) on the mean key of an assembly of template `t`
    /// (index `at` in the catalog's templates) for this person: per slot, the largest
    /// static bound of its variants (raised with them) plus the largest slope times the
    /// most a variant's tags can add with the person's factors; the log of the mean over
    /// slots of those bounds.
    fn template_learned_bound(
        &self,
        index: &PruneIndex,
        at: usize,
        t: &Template,
        selection: &Selection,
    ) -> f32 {
        let cat = &*self.catalog;
        let Some(&start) = index.template_start.get(at) else { return f32::INFINITY };
        let mut sum = 0.0f32;
        for (s, slot) in t.slots.iter().enumerate() {
            let i = start as usize + s;
            let (Some(built), Some(&slope)) = (index.template_static.get(i), index.template_slope.get(i))
            else {
                return f32::INFINITY;
            };
            let mut tags = 0.0f32;
            for v in &t.variants[usize::from(slot.start)..usize::from(slot.end)] {
                let Some(r) = cat.rules.get(v.creative.index()) else { continue };
                let (mut own, mut prior) = (0.0f32, 0.0f32);
                for k in r.tags.range() {
                    let p = cat.tag_persona[k].index();
                    if selection.person_score.get(p).is_some_and(|&s| s > 0) {
                        let list = p * TAG_RANKS + usize::from(cat.tag_rank[k]).min(TAG_RANKS - 1);
                        // The shared weights add up over the tags; the prior takes the best.
                        let (learned, lent) = self.list_factors(selection, list);
                        let w = cat.tag_weight[k].max(0.0);
                        own += learned * w;
                        prior = prior.max(lent * w);
                    }
                }
                tags = tags.max(own + prior);
            }
            sum += (f32::from_bits(built.load(Ordering::Acquire)) + slope * tags).exp();
        }
        (sum / t.slots.len().max(1) as f32).ln()
    }

    /// Learned: a bound (log space) on template `t`'s key that reads only the index:
    /// the log of the mean over slots of `exp(static bound + slope × add[slot])`, where
    /// `add[slot]` bounds what the slot's variants' tags can add for this person (see
    /// `template_bounds`).
    fn template_quick_bound(&self, index: &PruneIndex, t: &Template, add: &[f32]) -> f32 {
        let at = self.catalog.templates.role(t.anchor).map_or(usize::MAX, |(at, _)| at);
        let Some(&start) = index.template_start.get(at) else { return f32::INFINITY };
        // The key is the log of the mean over slots of the variants' rates: bounded slot
        // by slot (a lift in one slot of four counts a quarter in rate space).
        let mut sum = 0.0f32;
        for s in 0..t.slots.len() {
            let i = start as usize + s;
            let (Some(built), Some(&slope)) = (index.template_static.get(i), index.template_slope.get(i))
            else {
                return f32::INFINITY;
            };
            let add = add.get(s).copied().unwrap_or(f32::INFINITY);
            sum += (f32::from_bits(built.load(Ordering::Acquire)) + slope * add).exp();
        }
        t.ln_priority + (sum / t.slots.len().max(1) as f32).ln()
    }

    /// The bounds of the placement's templates for this request, computed on first use.
    fn template_bounds(
        &self,
        index: &PruneIndex,
        pi: &PlacementIndex,
        place: &Placement,
        stamp: u32,
        selection: &mut Selection,
    ) {
        if selection.template_bound_stamp == stamp && selection.template_bound.len() == place.templates.len()
        {
            return;
        }
        let cat = &*self.catalog;
        let mut bounds = std::mem::take(&mut selection.template_bound);
        bounds.clear();
        // Learned: a quick bound first (per slot, its static bound plus what the personas
        // the template and the person share can add, nothing when they share none); the
        // per-variant bound only for templates the quick one cannot rule out against the
        // k-th best. The person's personas (bitset) and each one's largest per-unit
        // factor over tag ranks are read once per request.
        let floor = index.learned.then(|| selection.floor());
        let mut mask = std::mem::take(&mut selection.person_mask);
        let mut factor = std::mem::take(&mut selection.persona_factor);
        mask.clear();
        mask.resize(cat.menu.len().div_ceil(64), 0);
        factor.clear();
        factor.resize(cat.menu.len(), 0.0);
        for (p, &s) in selection.person_score.iter().enumerate().filter(|_| floor.is_some()) {
            if s > 0 {
                if let Some(word) = mask.get_mut(p / 64) {
                    *word |= 1 << (p % 64);
                }
                if let Some(f) = factor.get_mut(p) {
                    *f = (0..TAG_RANKS)
                        .map(|rank| self.list_factor(selection, p * TAG_RANKS + rank))
                        .fold(0.0f32, f32::max);
                }
            }
        }
        // Learned, first: per template, its largest static bound plus what the person's
        // personas can add through its variants' tags (from the index's per-persona
        // template lists: only templates speaking to the person's personas are touched).
        let mut prior = std::mem::take(&mut selection.template_prior);
        prior.clear();
        if floor.is_some() {
            bounds.resize(place.templates.len(), 0.0);
            prior.resize(place.templates.len(), 0.0);
            for (p, &s) in selection.person_score.iter().enumerate() {
                if s == 0 {
                    continue;
                }
                let (mut learned, mut lent) = (0.0f32, 0.0f32);
                for rank in 0..TAG_RANKS {
                    let (l, r) = self.list_factors(selection, p * TAG_RANKS + rank);
                    (learned, lent) = (learned.max(l), lent.max(r));
                }
                for &(i, w) in pi.templates_of(p) {
                    if let (Some(b), Some(r)) = (bounds.get_mut(i as usize), prior.get_mut(i as usize)) {
                        // The shared weights add up over the personas; the prior takes the best.
                        *b += learned * w;
                        *r = r.max(lent * w);
                    }
                }
            }
        }
        for (i, &cid) in place.templates.iter().enumerate() {
            let bound = cat.templates.anchored(cid).map_or(f32::INFINITY, |t| {
                if let Some(floor) = floor {
                    let at = cat.templates.role(cid).map_or(usize::MAX, |(at, _)| at);
                    let top = index
                        .template_top
                        .get(at)
                        .map_or(f32::INFINITY, |b| f32::from_bits(b.load(Ordering::Acquire)));
                    let first = t.ln_priority
                        + top
                        + bounds.get(i).copied().unwrap_or(f32::INFINITY)
                        + prior.get(i).copied().unwrap_or(f32::INFINITY);
                    if first < floor {
                        return first;
                    }
                    // Per slot, Σ over the shared personas of the persona's factor ×
                    // the slot's largest tag weight for it. At most MAX_SLOTS slots.
                    let mut add = [0.0f32; crate::assemble::MAX_SLOTS];
                    let themes = t.themes.len();
                    let mut before = 0usize; // themes in earlier words
                    for (w, (&a, &b)) in t.persona_mask.iter().zip(&mask).enumerate() {
                        let mut both = a & b;
                        while both != 0 {
                            let bit = both.trailing_zeros();
                            let p = w * 64 + bit as usize;
                            both &= both - 1;
                            // Themes are sorted, so p's index is the count of theme bits
                            // below it.
                            let i = before + (a & ((1u64 << bit) - 1)).count_ones() as usize;
                            let factor = factor.get(p).copied().unwrap_or(f32::INFINITY);
                            for (s, slot_add) in add.iter_mut().enumerate().take(t.slots.len()) {
                                let weight =
                                    t.slot_theme_weight.get(s * themes + i).copied().unwrap_or(f32::INFINITY);
                                *slot_add += factor * weight;
                            }
                        }
                        before += a.count_ones() as usize;
                    }
                    let q = self.template_quick_bound(index, t, &add);
                    if q < floor {
                        return q;
                    }
                }
                self.template_bound(index, t, selection)
            });
            match bounds.get_mut(i) {
                Some(slot) => *slot = bound,
                None => bounds.push(bound),
            }
        }
        selection.template_prior = prior;
        selection.template_bound_max = bounds.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        selection.person_mask = mask;
        selection.persona_factor = factor;
        selection.template_bound = bounds;
        selection.template_bound_stamp = stamp;
    }

    /// In the pruned scan: scores every template of the placement not yet seen whose
    /// bound reaches `floor`, or with none the k-th best so far (as it rises).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn scan_templates(
        &self,
        index: &PruneIndex,
        pi: &PlacementIndex,
        place: &Placement,
        floor: Option<f32>,
        stamp: u32,
        profile: &Profile,
        env: &Env,
        selection: &mut Selection,
        key: &impl Fn(&Scored) -> f32,
    ) {
        if place.templates.is_empty() {
            return;
        }
        self.template_bounds(index, pi, place, stamp, selection);
        // The floor only rises while templates are scored: none can pass when the
        // largest bound is below it now.
        if selection.template_bound_max < floor.unwrap_or_else(|| selection.floor()) {
            return;
        }
        for (i, &cid) in place.templates.iter().enumerate() {
            if selection.seen.get(cid.index()).is_none_or(|&s| s == stamp) {
                continue;
            }
            let floor = floor.unwrap_or_else(|| selection.floor());
            if selection.template_bound.get(i).is_some_and(|&b| b >= floor) {
                self.visit(cid, stamp, profile, env, selection, key);
            }
        }
    }

    /// The highest bound among the placement's templates not yet seen (−∞ when none).
    pub(super) fn templates_pending(&self, place: &Placement, stamp: u32, selection: &Selection) -> f32 {
        if selection.template_bound_stamp != stamp {
            // Not computed this request: no template to wait for, or none scanned yet.
            return if place.templates.is_empty() { f32::NEG_INFINITY } else { f32::INFINITY };
        }
        place
            .templates
            .iter()
            .zip(&selection.template_bound)
            .filter(|(c, _)| selection.seen.get(c.index()).is_some_and(|&s| s != stamp))
            .map(|(_, &b)| b)
            .fold(f32::NEG_INFINITY, f32::max)
    }

    /// Whether template `template` can be assembled for this request with the
    /// eligibility checks alone (no scoring): what the exploring draw counts.
    pub(super) fn template_eligible(&self, template: &Template, env: &Env, selection: &Selection) -> bool {
        let mut value = [f32::NEG_INFINITY; MAX_SLOTS * MAX_VARIANTS];
        for (slot, v) in value.iter_mut().zip(&template.variants) {
            if self.eligible(v.creative, env, selection) {
                *slot = 0.0;
            }
        }
        let mut chosen = [0u16; MAX_SLOTS];
        pick::best(template, &value[..template.variants.len()], &mut chosen).is_some()
    }

    /// A readable explanation of an assembled pick: the reason for the whole assembly
    /// ([`Selector::explain`]), its theme, then each slot's choice. Allocates; call it off
    /// the hot path.
    pub fn explain_assembly(&self, pick: &Pick, assembly: &Assembly) -> String {
        let cat = &*self.catalog;
        let mut out = format!(
            "assembled '{}' on theme '{}': {}",
            cat.creative_id(assembly.template()),
            assembly.theme().map_or("generic", |p| cat.menu.name(p)),
            self.explain(pick)
        );
        for (i, c) in assembly.slots().iter().enumerate() {
            let _ = write!(
                out,
                "\n  {}: '{}' ",
                cat.slot_name(assembly.template(), i).unwrap_or("?"),
                cat.variant_id(c.variant).unwrap_or("?")
            );
            match c.persona {
                Some(p) => {
                    let _ = write!(
                        out,
                        "for '{}' (score {}/9, match {:.2})",
                        cat.menu.name(p),
                        c.persona_score,
                        c.persona_match
                    );
                }
                None => out.push_str("generic"),
            }
            let _ = write!(out, ", score {:.3}", c.score);
            if c.evidence >= 1.0 {
                let _ = write!(
                    out,
                    ", learned click rate {:.2}% from {:.0} impressions",
                    c.estimate * 100.0,
                    c.evidence
                );
            }
        }
        out
    }

    /// Records a reaction to an assembled pick (`feedback.creative` is the template).
    ///
    /// - impression, click, conversion: recorded for the template and for every chosen
    ///   variant (each variant's statistics, learned weights, caps and fatigue move as a
    ///   creative's would), so the engine learns which headline works for whom even when
    ///   the images around it change;
    /// - thumbs up / thumbs down: recorded for the template (a thumbs down means this
    ///   template is never assembled for this person again) and the assembly's theme
    ///   persona moves by one point, once (not once per slot);
    /// - dismiss: the template is never assembled for this person again.
    ///
    /// Errors when `feedback.creative` is not the assembly's template, or as
    /// [`Selector::record`] does; a failing variant stops the remaining ones.
    pub fn record_assembly(
        &self,
        profile: &mut Profile,
        feedback: &Feedback,
        assembly: &Assembly,
    ) -> Result<()> {
        self.check_assembly(feedback, assembly)?;
        self.record(profile, feedback)?;
        if counts_for_variants(feedback.kind) {
            for c in assembly.slots() {
                self.record(profile, &Feedback { creative: c.variant, ..*feedback })?;
            }
        }
        nudge_theme(profile, feedback.kind, assembly);
        Ok(())
    }

    /// Errors unless `feedback` is about the assembly's template and every slot holds a
    /// variant of it.
    pub(crate) fn check_assembly(&self, feedback: &Feedback, assembly: &Assembly) -> Result<()> {
        if feedback.creative != assembly.template() || !self.catalog.is_template(feedback.creative) {
            return Err(Error::invalid(
                "feedback",
                "creative",
                format!(
                    "'{}' is not the template of this assembly ('{}')",
                    self.catalog.creative_id(feedback.creative),
                    self.catalog.creative_id(assembly.template())
                ),
            ));
        }
        for c in assembly.slots() {
            if self.catalog.variant_template(c.variant) != Some(assembly.template()) {
                return Err(Error::invalid(
                    "feedback",
                    "assembly",
                    format!(
                        "variant #{} is not a variant of '{}'",
                        c.variant.0,
                        self.catalog.creative_id(assembly.template())
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// True for the kinds recorded for every variant of an assembly, not only the template.
pub(crate) fn counts_for_variants(kind: FeedbackKind) -> bool {
    matches!(kind, FeedbackKind::Impression | FeedbackKind::Click | FeedbackKind::Conversion { .. })
}

/// A thumbs up or down on an assembly moves its theme persona by one point, once.
pub(crate) fn nudge_theme(profile: &mut Profile, kind: FeedbackKind, assembly: &Assembly) {
    let delta: i8 = match kind {
        FeedbackKind::ThumbsUp => 1,
        FeedbackKind::ThumbsDown => -1,
        _ => return,
    };
    let Some(theme) = assembly.theme() else { return };
    if profile.likes.contains(&theme) || profile.dislikes.contains(&theme) {
        return;
    }
    profile.scores.nudge(theme, delta);
}

/// Running sums over the chosen variants' scores.
#[derive(Default)]
struct Sum {
    n: f32,
    key: f32,
    reach: f32,
    base: f32,
    mean: f32,
    logit: f32,
    var: f32,
    evidence: f32,
    priority: f32,
    persona_match: f32,
    context_boost: f32,
    fatigue: f32,
}

impl Sum {
    fn add(&mut self, s: &Scored) {
        self.evidence = if self.n == 0.0 { s.evidence } else { self.evidence.min(s.evidence) };
        self.n += 1.0;
        self.key += s.key;
        self.reach += s.reach;
        self.base += s.base;
        self.mean += s.mean;
        self.logit += s.logit;
        self.var += s.sd * s.sd;
        self.priority += s.priority;
        self.persona_match += s.persona_match;
        self.context_boost += s.context_boost;
        self.fatigue += s.fatigue;
    }

    /// The assembly as one scored candidate: the template's priority times the mean of
    /// the variants' scores; for Thompson's propensity, the mean of the variants'
    /// log-odds with the spread of a mean of independent draws.
    fn scored(
        &self,
        anchor: CreativeId,
        priority: f32,
        theme: Option<PersonaId>,
        persona_score: u8,
    ) -> Scored {
        let n = self.n.max(1.0);
        Scored {
            creative: anchor,
            key: priority * self.key / n,
            reach: priority * self.reach / n,
            base: priority * self.base / n,
            mean: priority * self.mean / n,
            logit: self.logit / n,
            sd: (self.var / n / n).sqrt(),
            evidence: self.evidence,
            priority: priority * self.priority / n,
            persona_match: self.persona_match / n,
            context_boost: self.context_boost / n,
            fatigue: self.fatigue / n,
            persona: theme.map_or(u16::MAX, |p| p.0),
            boosts_matched: 0,
            persona_score,
            taken: false,
        }
    }
}
