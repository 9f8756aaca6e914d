//! The pruning index: per placement, the candidates sorted by bounds on what they can
//! score, so that `select` scores in full only the few that can still win (Fagin's
//! threshold algorithm). Under the rules the bounds come from the catalog alone. Under
//! the learned model (greedy, Thompson) they live in log space: each creative's own
//! weights give a static bound (raised as `record` moves them, rebuilt off the `select`
//! path), and the shared persona weights a per-request factor per persona list. Never
//! allocates on `select`.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use super::{Env, Scored, Selection, Selector};
use crate::catalog::{CreativeId, Placement, PlacementId};
use crate::learn::model::{
    sigmoid, ATTRIBUTE_PARAMS, CHANNELS, CREATIVE_PARAMS, GRADED, PERSON_RANKS, RANKED, SCORES, SLOPES,
    TAG_RANKS, WEATHERS,
};
use crate::learn::{Padded, Policy, Rng, DAYPARTS, DEVICES};
use crate::profile::Profile;

/// How far an attribute's learned effect may rise above the value the index was built
/// with before the index is rebuilt (log-odds). Shared weights move slowly; the margin
/// spares a rebuild per click.
const ATTRIBUTE_MARGIN: f32 = 0.1;

/// Standard deviations of a Thompson draw the bounds allow for: a creative is skipped
/// only when its draw would have to land further out than this (probability < 4e-6).
const DRAW_SPREAD: f64 = 4.5;

/// The pruning index of one generation.
#[derive(Debug, Default)]
pub(crate) struct PruneIndex {
    pub generation: u32,
    /// True when the bounds are the learned model's (log space).
    pub(super) learned: bool,
    placements: Vec<PlacementIndex>,
    /// Learned: per creative, the static bound its unmatched entry was built with.
    bound: Box<[f32]>,
    /// Learned: per creative, the widest variance its log-odds could have when built
    /// (variances only shrink, so it holds until the next rebuild).
    variance: Box<[f64]>,
    /// Learned: per attribute value, the most its effect could add when built, plus
    /// [`ATTRIBUTE_MARGIN`].
    attribute: Box<[f32]>,
    /// Events recorded since the index was built: bumped by every `record`, so alone on
    /// its cache line, away from the fields every `select` reads.
    events: Padded<AtomicU64>,
    /// Creatives whose bound rose since (scored when their new bound can reach the
    /// k-th best), and which are listed.
    raised: Box<[AtomicU32]>,
    /// Learned: per creative, its raised static bound (`f32` bits), once listed.
    raised_bound: Box<[AtomicU32]>,
    raised_len: AtomicUsize,
    listed: Box<[AtomicBool]>,
    /// An attribute's effect outgrew its margin: scan in full until rebuilt.
    stale: AtomicBool,
    /// Learned: per template slot (template `t`'s slots from `template_start[t]`), the
    /// largest static bound of its variants (`f32` bits, raised with them) and the
    /// largest logit slope among them.
    pub(super) template_start: Box<[u32]>,
    pub(super) template_static: Box<[AtomicU32]>,
    pub(super) template_slope: Box<[f32]>,
    /// Learned: per template, the largest static bound of any of its variants (`f32`
    /// bits, raised with them): with `ln(priority)`, what it can score matching nobody.
    pub(super) template_top: Box<[AtomicU32]>,
}

/// One placement's orders. Every list is sorted by its bound, highest first.
#[derive(Debug, Default)]
pub(super) struct PlacementIndex {
    /// Every candidate, by the most it can score without any persona match.
    unmatched: Vec<(f32, CreativeId)>,
    /// Per list (CSR): candidates tagged with a persona, by what one unit of the
    /// person's factor on that list can add. Rules: one list per persona, by
    /// `priority · max_boost · share`. Learned: one list per (persona, tag rank), by the
    /// tag weight times how fast the creative's key can rise with its log-odds.
    persona_offsets: Vec<u32>,
    persona_entries: Vec<(f32, CreativeId)>,
    /// Learned, per persona (CSR): the placement's templates with a variant tagged with
    /// it (position in `Placement::templates`), each with the largest `slope · weight`
    /// of such a variant: what one unit of the person's factor on the persona can add.
    template_offsets: Vec<u32>,
    template_entries: Vec<(u32, f32)>,
}

impl PlacementIndex {
    /// Learned: the placement's templates speaking to persona `p`, see
    /// `template_entries`.
    pub(super) fn templates_of(&self, p: usize) -> &[(u32, f32)] {
        match (self.template_offsets.get(p), self.template_offsets.get(p + 1)) {
            (Some(&a), Some(&b)) => &self.template_entries[a as usize..b as usize],
            _ => &[],
        }
    }

    fn list(&self, p: usize) -> &[(f32, CreativeId)] {
        match (self.persona_offsets.get(p), self.persona_offsets.get(p + 1)) {
            (Some(&a), Some(&b)) => &self.persona_entries[a as usize..b as usize],
            _ => &[],
        }
    }
}

/// A cursor of the pruned scan over one persona list.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Cursor {
    /// The person's factor on this list: what a unit of list value adds. Learned: the
    /// shared weights' part alone (they add up over a creative's tags).
    weight: f32,
    /// Learned: the persona prior's part of the factor (the prior takes a creative's best
    /// tag, so over lists the scan bounds it by the largest, not the sum).
    prior: f32,
    /// The persona of the list: a creative has one tag per persona, so it is on at most
    /// one of a persona's (persona, tag rank) lists and the scan bounds a persona's
    /// lists by their largest, not their sum.
    persona: u32,
    list: u32,
    pos: u32,
}

/// The TA bound's persona part over the cursors (grouped by persona, as the scan pushes
/// them): per persona the largest of its lists' shared-weight parts, summed over
/// personas, plus the largest prior part over every list; and the cursor whose head
/// adds most, with what it adds.
#[inline]
fn persona_bound(cursors: &[Cursor], pi: &PlacementIndex) -> (f32, (f32, usize)) {
    let (mut shared, mut group, mut persona) = (0.0f32, 0.0f32, u32::MAX);
    let mut prior = 0.0f32;
    let mut best = (f32::NEG_INFINITY, usize::MAX);
    for (i, cur) in cursors.iter().enumerate() {
        let Some(&(f, _)) = pi.list(cur.list as usize).get(cur.pos as usize) else { continue };
        if cur.persona != persona {
            shared += group;
            group = 0.0;
            persona = cur.persona;
        }
        let (learned, lent) = (cur.weight * f, cur.prior * f);
        group = group.max(learned);
        prior = prior.max(lent);
        if learned + lent > best.0 {
            best = (learned + lent, i);
        }
    }
    (shared + group + prior, best)
}

/// Keeps the k largest keys seen, largest first.
#[inline]
fn push_top(top: &mut Vec<f32>, k: usize, key: f32) {
    if top.len() >= k && top.last().is_some_and(|&last| key <= last) {
        return;
    }
    let at = top.iter().position(|&x| key > x).unwrap_or(top.len());
    if top.len() >= k {
        top.pop();
    }
    top.insert(at, key);
}

/// The k-th largest key seen, or −∞ when fewer than k were.
#[inline]
pub(super) fn kth(top: &[f32], k: usize) -> f32 {
    if top.len() >= k {
        top.last().copied().unwrap_or(f32::NEG_INFINITY)
    } else {
        f32::NEG_INFINITY
    }
}

impl Selector {
    /// True when this selector's policy ranks by the learned model.
    fn prunes_learned(&self) -> bool {
        matches!(
            self.config.learning.policy,
            Policy::Greedy | Policy::Thompson | Policy::EpsilonGreedy { .. }
        )
    }

    /// The learned model's mean of a creative weight (prior mean 0).
    #[inline]
    fn creative_mean(&self, c: usize, k: usize, q0: f64) -> f64 {
        self.stats.model.creative.get(c * CREATIVE_PARAMS + k).map_or(0.0, |w| w.posterior(0.0, q0).0)
    }

    /// The most attribute value `a`'s learned effect adds in any context.
    fn attribute_effect(&self, a: usize) -> f32 {
        let Some(w) = self.stats.model.attributes.get(a * ATTRIBUTE_PARAMS..(a + 1) * ATTRIBUTE_PARAMS)
        else {
            return 0.0;
        };
        let q0 = self.prior.q0;
        let mean = |i: usize| w[i].posterior(0.0, q0).0;
        let best = |range: std::ops::Range<usize>| range.map(mean).fold(f64::NEG_INFINITY, f64::max);
        let mut e = mean(0);
        let mut at = 1;
        for n in [DEVICES, DAYPARTS, CHANNELS, WEATHERS] {
            e += best(at..at + n);
            at += n;
        }
        e as f32
    }

    /// A bound (log space) on `ln(priority · key)` of creative `c` for a person who
    /// matches none of its personas, in any context: its own weights at their most,
    /// the attribute effects as the index holds them, the largest boost, and the widest
    /// spread its posterior can have (`var`, from [`Self::widest_variance`]), and the
    /// optimism's lift.
    fn learned_bound(&self, c: usize, attribute: &[f32], var: f64) -> f32 {
        let cat = &*self.catalog;
        let Some(r) = cat.rules.get(c) else { return f32::NEG_INFINITY };
        let (q0c, q0) = (self.prior.q0_creative, self.prior.q0);
        let best = |range: std::ops::Range<usize>| {
            range.map(|k| self.creative_mean(c, k, q0)).fold(f64::NEG_INFINITY, f64::max)
        };
        let mut logit = self.prior.base
            + f64::from(r.max_boost).ln()
            + self.creative_mean(c, 0, q0c)
            + best(1..1 + DEVICES)
            + best(1 + DEVICES..1 + DEVICES + DAYPARTS)
            + f64::from(self.stats.segment_max(c));
        let span = cat.attribute_span.get(c).copied().unwrap_or_default();
        for &a in &cat.attribute_value[span.range()] {
            logit += f64::from(attribute.get(a as usize).copied().unwrap_or(0.0));
        }
        // The optimism's lift: its own standard deviation only shrinks from now on (the
        // slope of the bound in the logit does not depend on it, so a bound computed
        // later holds as well).
        let learning = &self.config.learning;
        let optimism = learning.optimism_under(learning.policy);
        let logit =
            if optimism > 0.0 { logit + optimism * self.widest_own_variance(c).sqrt() } else { logit };
        let key = match learning.policy {
            Policy::Thompson => sigmoid(logit + DRAW_SPREAD * (var * learning.thompson_scale).sqrt()),
            // The posterior mean rate is σ(m / s) with s = √(1 + πv/8) ≤ s_max: for a
            // negative m it is at most σ(m / s_max), for m ≥ 0 at most σ(m).
            _ => {
                let s_max = (1.0 + std::f64::consts::PI * var / 8.0).sqrt();
                sigmoid(if logit < 0.0 { logit / s_max } else { logit })
            }
        };
        (f64::from(r.priority).ln() + key.ln()) as f32
    }

    /// Per tag rank, the widest variance the shared weights of one unit of tag weight can
    /// have now (score curve and persona-rank curve, at their widest), and per attribute
    /// value its widest variance in any context.
    fn shared_variances(&self) -> ([f64; TAG_RANKS], Box<[f64]>) {
        let shared = &self.stats.model.shared;
        let qs = self.prior.q0_shared;
        let var = |i: usize, mu0: f64| shared.get(i).map_or(1.0 / qs, |w| w.posterior(mu0, qs).1);
        let widest = |range: std::ops::Range<usize>| range.map(|i| var(i, 0.0)).fold(0.0, f64::max);
        let mut per_rank = [0.0; TAG_RANKS];
        for (rank, slot) in per_rank.iter_mut().enumerate() {
            *slot = widest(GRADED + rank * SCORES..GRADED + (rank + 1) * SCORES)
                + widest(RANKED + rank * PERSON_RANKS..RANKED + (rank + 1) * PERSON_RANKS);
        }
        let q0 = self.prior.q0;
        let attributes = (0..self.catalog.attribute_value_count())
            .map(|a| {
                let Some(w) =
                    self.stats.model.attributes.get(a * ATTRIBUTE_PARAMS..(a + 1) * ATTRIBUTE_PARAMS)
                else {
                    return 5.0 / q0;
                };
                let v = |i: usize| w[i].posterior(0.0, q0).1;
                let mut total = v(0);
                let mut at = 1;
                for n in [DEVICES, DAYPARTS, CHANNELS, WEATHERS] {
                    total += (at..at + n).map(v).fold(0.0, f64::max);
                    at += n;
                }
                total
            })
            .collect();
        (per_rank, attributes)
    }

    /// The widest variance the own part of creative `c`'s log-odds (its own weight and
    /// its device, daypart and segment crosses) can have from now on: each at its widest
    /// now (an unseen segment reads the prior).
    fn widest_own_variance(&self, c: usize) -> f64 {
        let (q0c, q0) = (self.prior.q0_creative, self.prior.q0);
        let own = |k: usize, q: f64| {
            self.stats.model.creative.get(c * CREATIVE_PARAMS + k).map_or(1.0 / q, |w| w.posterior(0.0, q).1)
        };
        let widest = |range: std::ops::Range<usize>| range.map(|k| own(k, q0)).fold(0.0, f64::max);
        own(0, q0c) + widest(1..1 + DEVICES) + widest(1 + DEVICES..1 + DEVICES + DAYPARTS) + 1.0 / q0
    }

    /// The widest variance creative `c`'s log-odds can have from now until the weights
    /// are read again: the sum, over every feature it can use, of the widest posterior
    /// variance that feature's weight has now (precision only grows, so variances only
    /// shrink); an unseen segment reads the prior.
    fn widest_variance(&self, c: usize, per_rank: &[f64; TAG_RANKS], attributes: &[f64]) -> f64 {
        let cat = &*self.catalog;
        let Some(r) = cat.rules.get(c) else { return 0.0 };
        let (q0, qs) = (self.prior.q0, self.prior.q0_shared);
        let mut var = self.widest_own_variance(c);
        for t in r.tags.range() {
            let w = f64::from(cat.tag_weight[t]).max(0.0);
            let rank = usize::from(cat.tag_rank[t]).min(TAG_RANKS - 1);
            let p = cat.tag_persona[t].index();
            let slope = self.stats.model.shared.get(SLOPES + p).map_or(1.0 / qs, |x| x.posterior(0.0, qs).1);
            var += w * w * (per_rank[rank] + slope);
        }
        let span = cat.attribute_span.get(c).copied().unwrap_or_default();
        for &a in &cat.attribute_value[span.range()] {
            var += attributes.get(a as usize).copied().unwrap_or(5.0 / q0);
        }
        var
    }

    /// How much `ln(key)` can rise per unit of log-odds for creative `c`: 1 for a
    /// Thompson draw; for the greedy posterior mean `σ(m/s)`, at most `1/s_max` while
    /// `m < 0` and 1/2 beyond.
    /// The most one unit of raw tag weight on (persona, tag rank) `list` can add to the
    /// log-odds for this request: the shared weights' mean (when positive) plus the
    /// persona prior per unit of weight (the prior takes the best tag, at most the sum).
    #[inline]
    pub(crate) fn list_factor(&self, selection: &Selection, list: usize) -> f32 {
        let (learned, prior) = self.list_factors(selection, list);
        learned + prior
    }

    /// [`Self::list_factor`] in its two parts: the shared weights' (which add up over a
    /// creative's tags) and the persona prior's (of which a creative takes its best tag).
    #[inline]
    pub(crate) fn list_factors(&self, selection: &Selection, list: usize) -> (f32, f32) {
        let learned = selection.persona_terms.get(list).map_or(0.0, |t| t.0.max(0.0));
        let s = selection.person_score.get(list / TAG_RANKS).copied().unwrap_or(0);
        // Per unit of weight: the prior of a tag of weight 1 (a weight above 1 lends no more).
        (learned as f32, self.prior.tag_lift(1.0, s).max(0.0) as f32)
    }

    fn logit_slope(&self, var: f64) -> f32 {
        match self.config.learning.policy {
            Policy::Thompson => 1.0,
            _ => {
                let s_max = (1.0 + std::f64::consts::PI * var / 8.0).sqrt();
                (1.0 / s_max).max(0.5) as f32
            }
        }
    }

    /// Builds the pruning index of every placement from the current bounds.
    pub(crate) fn build_prune_index(&self, generation: u32) -> PruneIndex {
        let cat = &*self.catalog;
        let n = cat.len();
        let learned = self.prunes_learned();
        if learned {
            self.stats.refresh_segment_max(&self.prior);
        }
        let attribute: Box<[f32]> = if learned {
            (0..cat.attribute_value_count()).map(|a| self.attribute_effect(a) + ATTRIBUTE_MARGIN).collect()
        } else {
            Box::new([])
        };
        let variance: Box<[f64]> = if learned {
            let (per_rank, attributes) = self.shared_variances();
            (0..n).map(|c| self.widest_variance(c, &per_rank, &attributes)).collect()
        } else {
            Box::new([])
        };
        let bound: Box<[f32]> = if learned {
            (0..n).map(|c| self.learned_bound(c, &attribute, variance[c])).collect()
        } else {
            Box::new([])
        };
        let (mut template_start, mut template_static, mut template_slope) =
            (Vec::new(), Vec::new(), Vec::new());
        let mut template_top = Vec::new();
        for t in cat.templates.list.iter().filter(|_| learned) {
            template_start.push(template_static.len() as u32);
            let mut top = f32::NEG_INFINITY;
            for slot in &t.slots {
                let variants = &t.variants[usize::from(slot.start)..usize::from(slot.end)];
                let most =
                    variants.iter().map(|v| bound[v.creative.index()]).fold(f32::NEG_INFINITY, f32::max);
                top = top.max(most);
                template_static.push(AtomicU32::new(most.to_bits()));
                template_slope.push(
                    variants
                        .iter()
                        .map(|v| self.logit_slope(variance[v.creative.index()]))
                        .fold(0.0, f32::max),
                );
            }
            template_top.push(AtomicU32::new(top.to_bits()));
        }
        // Learned: per persona, a placement's templates with a variant tagged with it and
        // the largest `slope · weight` of one (a variant has one tag per persona).
        let template_lists = |p: &Placement| -> (Vec<u32>, Vec<(u32, f32)>) {
            let mut per: Vec<Vec<(u32, f32)>> = vec![Vec::new(); if learned { cat.menu.len() } else { 0 }];
            for (i, &anchor) in p.templates.iter().enumerate().filter(|_| learned) {
                let Some(t) = cat.templates.anchored(anchor) else { continue };
                for v in &t.variants {
                    let slope = self.logit_slope(variance[v.creative.index()]);
                    for k in cat.rules[v.creative.index()].tags.range() {
                        let (persona, w) = (cat.tag_persona[k].index(), cat.tag_weight[k]);
                        let Some(list) = per.get_mut(persona).filter(|_| w > 0.0) else { continue };
                        match list.last_mut() {
                            Some((at, most)) if *at == i as u32 => *most = most.max(slope * w),
                            _ => list.push((i as u32, slope * w)),
                        }
                    }
                }
            }
            let mut offsets = Vec::with_capacity(per.len() + 1);
            let mut entries = Vec::new();
            for list in per {
                offsets.push(entries.len() as u32);
                entries.extend(list);
            }
            offsets.push(entries.len() as u32);
            (offsets, entries)
        };
        let desc = |a: &(f32, CreativeId), b: &(f32, CreativeId)| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1));
        let prior = self.config.prior;
        let placements = cat
            .placements
            .iter()
            .map(|p| {
                let mut unmatched: Vec<(f32, CreativeId)> = p
                    .candidates
                    .iter()
                    .map(|c| {
                        let r = &cat.rules[c.index()];
                        let value = if learned { bound[c.index()] } else { r.priority * prior * r.max_boost };
                        (value, *c)
                    })
                    .collect();
                unmatched.sort_by(desc);
                let ranks = if learned { TAG_RANKS } else { 1 };
                let mut entries = Vec::with_capacity(p.persona_members.len());
                let mut offsets = Vec::with_capacity(cat.menu.len() * ranks + 1);
                for persona in 0..cat.menu.len() {
                    for rank in 0..ranks {
                        offsets.push(entries.len() as u32);
                        let start = entries.len();
                        for &c in p.tagged(persona) {
                            let r = &cat.rules[c.index()];
                            let mut tags = r.tags.range().filter(|&t| {
                                cat.tag_persona[t].index() == persona
                                    && (!learned || usize::from(cat.tag_rank[t]).min(TAG_RANKS - 1) == rank)
                            });
                            let value = if learned {
                                let w: f32 = tags.map(|t| cat.tag_weight[t]).sum();
                                if w <= 0.0 {
                                    continue;
                                }
                                self.logit_slope(variance[c.index()]) * w
                            } else {
                                r.priority
                                    * r.max_boost
                                    * tags.by_ref().map(|t| cat.tag_share[t]).sum::<f32>()
                            };
                            entries.push((value, c));
                        }
                        entries[start..].sort_by(desc);
                    }
                }
                offsets.push(entries.len() as u32);
                let (template_offsets, template_entries) = template_lists(p);
                PlacementIndex {
                    unmatched,
                    persona_offsets: offsets,
                    persona_entries: entries,
                    template_offsets,
                    template_entries,
                }
            })
            .collect();
        PruneIndex {
            generation,
            learned,
            placements,
            bound,
            variance,
            attribute,
            events: Padded(AtomicU64::new(0)),
            raised: (0..if learned { n } else { 0 }).map(|_| AtomicU32::new(u32::MAX)).collect(),
            raised_len: AtomicUsize::new(0),
            listed: (0..if learned { n } else { 0 }).map(|_| AtomicBool::new(false)).collect(),
            raised_bound: (0..if learned { n } else { 0 })
                .map(|_| AtomicU32::new(f32::NEG_INFINITY.to_bits()))
                .collect(),
            stale: AtomicBool::new(false),
            template_start: template_start.into(),
            template_static: template_static.into(),
            template_slope: template_slope.into(),
            template_top: template_top.into(),
        }
    }

    /// After `record` taught the model about creative `c`: if its bound now exceeds the
    /// one the index was built with, it is listed as raised (every `select` scores it
    /// until the next rebuild); if an attribute's effect outgrew its margin, the index
    /// goes stale (full scans) until rebuilt. Whichever `record` gets there first
    /// rebuilds, off the `select` path: after every catalog-size worth of events (so
    /// that bounds learning lowered tighten again), or once 1/16 of the catalog was
    /// raised, or when stale.
    pub(crate) fn note_learned(&self, creative: CreativeId) {
        let index = self.prune.load();
        if !index.learned {
            return;
        }
        let c = creative.index();
        let cat = &*self.catalog;
        let events = index.events.fetch_add(1, Ordering::Relaxed) + 1;
        let mut rebuild = events as usize >= cat.len().max(1_024);
        let span = cat.attribute_span.get(c).copied().unwrap_or_default();
        for &a in &cat.attribute_value[span.range()] {
            let a = a as usize;
            if index.attribute.get(a).is_some_and(|&built| self.attribute_effect(a) > built) {
                index.stale.store(true, Ordering::Release);
                rebuild = true;
            }
        }
        let raised = match (index.bound.get(c), index.variance.get(c)) {
            (Some(&built), Some(&var)) => {
                let now = self.learned_bound(c, &index.attribute, var);
                if now > built {
                    let (mut template, mut top) = (None, None);
                    if let Some((t, v)) = cat.templates.role(creative) {
                        let slot = cat.templates.list.get(t).and_then(|x| x.variants.get(usize::from(v)));
                        let start = index.template_start.get(t).map(|&s| s as usize);
                        template = slot
                            .zip(start)
                            .and_then(|(x, s)| index.template_static.get(s + usize::from(x.slot)));
                        top = index.template_top.get(t);
                    }
                    for slot in index.raised_bound.get(c).into_iter().chain(template).chain(top) {
                        let _ = slot.fetch_update(Ordering::Release, Ordering::Relaxed, |b| {
                            (now > f32::from_bits(b)).then_some(now.to_bits())
                        });
                    }
                }
                now > built
            }
            _ => false,
        };
        if raised && index.listed.get(c).is_some_and(|flag| !flag.swap(true, Ordering::Relaxed)) {
            let at = index.raised_len.fetch_add(1, Ordering::AcqRel);
            if let Some(slot) = index.raised.get(at) {
                slot.store(creative.0, Ordering::Release);
            }
            rebuild |= at + 1 >= (index.raised.len() / 16).max(64);
        }
        if rebuild {
            if let Ok(_guard) = self.rebuild.try_lock() {
                if self.prune.load().generation == index.generation {
                    self.rebuild_prune_index();
                }
            }
        }
    }

    fn rebuild_prune_index(&self) {
        let generation = self.prune.load().generation.wrapping_add(1);
        self.prune.store(Arc::new(self.build_prune_index(generation)));
    }

    /// After a load or merge changed many weights at once.
    pub(crate) fn after_bulk_change(&self) {
        let _guard = self.rebuild.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.rebuild_prune_index();
    }

    /// The pruned scan (rules, greedy, Thompson): candidates are taken from the unmatched
    /// order or the persona list contributing most to the bound on anything unseen, and
    /// scored in full, until that bound falls below the k-th best found; then the picks
    /// are made and the bound re-checked against the last pick, since the diversity
    /// rules can skip some of the raw top k. Exact for the rules and greedy; Thompson
    /// skips a creative only when its draw would have to land [`DRAW_SPREAD`] standard
    /// deviations out. Returns false (nothing done) when the index is being rebuilt.
    pub(super) fn scan_pruned(
        &self,
        placement: PlacementId,
        place: &Placement,
        profile: &Profile,
        env: &Env,
        selection: &mut Selection,
        rng: &mut Rng,
    ) -> bool {
        let cat = &*self.catalog;
        let index = self.prune.load();
        let learned = env.policy != Policy::Rules;
        if learned != index.learned || index.stale.load(Ordering::Acquire) {
            return false;
        }
        let Some(pi) = index.placements.get(placement.0 as usize) else { return false };
        // The key in the index's space: the rules score, or the log of the learned one.
        let key = |s: &Scored| if learned { s.key.max(f32::MIN_POSITIVE).ln() } else { s.base };
        let stamp = selection.next_stamp(cat.len());
        selection.topk.clear();
        selection.cursors.clear();
        for p in 0..selection.persona_weight.len() {
            if learned {
                if selection.person_score.get(p).is_none_or(|&s| s == 0) {
                    continue;
                }
                // The most one unit of tag weight can add for this person: see
                // `list_factor`.
                for rank in 0..TAG_RANKS {
                    let list = p * TAG_RANKS + rank;
                    let (weight, prior) = self.list_factors(selection, list);
                    if weight + prior > 0.0 {
                        let (persona, list) = (p as u32, list as u32);
                        selection.cursors.push(Cursor { weight, prior, persona, list, pos: 0 });
                    }
                }
            } else if selection.persona_weight[p] > 0.0 {
                selection.cursors.push(Cursor {
                    weight: selection.persona_weight[p],
                    prior: 0.0,
                    persona: p as u32,
                    list: p as u32,
                    pos: 0,
                });
            }
        }
        let raised = index.raised_len.load(Ordering::Acquire).min(index.raised.len());
        let mut pos_u = 0usize;
        let mut target = kth(&selection.topk, selection.k);
        let mut adaptive = true;
        loop {
            loop {
                // The bound on anything unseen, and the list contributing most to it.
                let f_u = pi.unmatched.get(pos_u).map_or(f32::NEG_INFINITY, |e| e.0);
                let (matched, best) = persona_bound(&selection.cursors, pi);
                if pos_u >= pi.unmatched.len() {
                    break; // every candidate has been seen
                }
                let tau = f_u + matched;
                if adaptive {
                    target = target.max(kth(&selection.topk, selection.k));
                }
                if tau < target {
                    break;
                }
                let cid = if best.1 != usize::MAX && best.0 >= f_u {
                    let cur = &mut selection.cursors[best.1];
                    cur.pos += 1;
                    pi.list(cur.list as usize)[cur.pos as usize - 1].1
                } else {
                    pos_u += 1;
                    pi.unmatched[pos_u - 1].1
                };
                self.visit(cid, stamp, profile, env, selection, rng, &key);
            }
            // Creatives whose bound rose since the index was built: scored when their
            // raised bound can still reach the k-th best.
            let floor = if adaptive { None } else { Some(target) };
            // Templates are not in the lists (their score is assembled): each is scored
            // when its own bound reaches the k-th best.
            self.scan_templates(&index, pi, place, floor, stamp, profile, env, selection, rng, &key);
            self.scan_raised(&index, raised, place, floor, stamp, profile, env, selection, rng, &key);
            let rank = |s: &Scored| if learned { s.key } else { s.base };
            self.choose(selection, env.policy, rank, rng, false);
            if pos_u >= pi.unmatched.len() {
                break;
            }
            // The diversity rules may have skipped some of the raw top k: the picks are
            // final only when nothing unseen could beat the last of them.
            let last = match selection.picks.last() {
                Some(p) if selection.picks.len() >= selection.k => {
                    if learned {
                        p.score.max(f32::MIN_POSITIVE).ln()
                    } else {
                        p.score
                    }
                }
                _ => f32::NEG_INFINITY,
            };
            let f_u = pi.unmatched.get(pos_u).map_or(f32::NEG_INFINITY, |e| e.0);
            let (matched, _) = persona_bound(&selection.cursors, pi);
            let tau = f_u + matched;
            if tau < last
                && self.raised_pending(&index, raised, place, stamp, selection) < last
                && self.templates_pending(place, stamp, selection) < last
            {
                break;
            }
            selection.picks.clear();
            for s in selection.scored.iter_mut() {
                s.taken = false;
            }
            // Short of k picks (the diversity rules turned candidates away), look deeper a
            // step at a time rather than at everything: halve the bound to reach.
            target = if last > f32::NEG_INFINITY {
                last
            } else if learned {
                tau - std::f32::consts::LN_2
            } else if tau <= f32::MIN_POSITIVE {
                last
            } else {
                tau * 0.5
            };
            adaptive = false;
        }
        true
    }

    /// The bound of raised creative `c` for this person: its raised static bound plus,
    /// per persona list it is on, the person's factor times its entry's value.
    fn raised_bound_of(&self, index: &PruneIndex, c: usize, selection: &Selection) -> f32 {
        let cat = &*self.catalog;
        let (Some(b), Some(&var), Some(r)) =
            (index.raised_bound.get(c), index.variance.get(c), cat.rules.get(c))
        else {
            return f32::INFINITY;
        };
        let slope = self.logit_slope(var);
        let mut bound = f32::from_bits(b.load(Ordering::Acquire));
        let mut prior = 0.0f32;
        for t in r.tags.range() {
            let rank = usize::from(cat.tag_rank[t]).min(TAG_RANKS - 1);
            let list = cat.tag_persona[t].index() * TAG_RANKS + rank;
            if selection.person_score.get(cat.tag_persona[t].index()).is_some_and(|&s| s > 0) {
                // The shared weights add up over the tags; the prior takes the best one.
                let (learned, lent) = self.list_factors(selection, list);
                let w = slope * cat.tag_weight[t].max(0.0);
                bound += learned * w;
                prior = prior.max(lent * w);
            }
        }
        bound + prior
    }

    /// Scores every raised candidate not yet seen whose bound reaches `floor` (or, with
    /// none, the k-th best so far, as it rises).
    #[allow(clippy::too_many_arguments)]
    fn scan_raised(
        &self,
        index: &PruneIndex,
        raised: usize,
        place: &Placement,
        floor: Option<f32>,
        stamp: u32,
        profile: &Profile,
        env: &Env,
        selection: &mut Selection,
        rng: &mut Rng,
        key: &impl Fn(&Scored) -> f32,
    ) {
        for slot in &index.raised[..raised] {
            let cid = CreativeId(slot.load(Ordering::Acquire));
            if selection.seen.get(cid.index()).is_none_or(|&s| s == stamp)
                || place.candidates.binary_search(&cid).is_err()
            {
                continue;
            }
            let target = floor.unwrap_or_else(|| kth(&selection.topk, selection.k));
            if self.raised_bound_of(index, cid.index(), selection) >= target {
                self.visit(cid, stamp, profile, env, selection, rng, key);
            }
        }
    }

    /// The highest bound among raised candidates not yet seen (−∞ when none).
    fn raised_pending(
        &self,
        index: &PruneIndex,
        raised: usize,
        place: &Placement,
        stamp: u32,
        selection: &Selection,
    ) -> f32 {
        let mut most = f32::NEG_INFINITY;
        for slot in &index.raised[..raised] {
            let cid = CreativeId(slot.load(Ordering::Acquire));
            if selection.seen.get(cid.index()).is_none_or(|&s| s == stamp)
                || place.candidates.binary_search(&cid).is_err()
            {
                continue;
            }
            most = most.max(self.raised_bound_of(index, cid.index(), selection));
        }
        most
    }

    /// Scores `cid` once per request (the stamp dedupes the lists it appears in).
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub(super) fn visit(
        &self,
        cid: CreativeId,
        stamp: u32,
        profile: &Profile,
        env: &Env,
        selection: &mut Selection,
        rng: &mut Rng,
        key: &impl Fn(&Scored) -> f32,
    ) {
        let Some(seen) = selection.seen.get_mut(cid.index()) else { return };
        if *seen == stamp {
            return;
        }
        *seen = stamp;
        selection.visited += 1;
        if let Some(s) = self.evaluate(cid, profile, env, selection, rng) {
            push_top(&mut selection.topk, selection.k, key(&s));
            selection.scored.push(s);
        }
    }
}
