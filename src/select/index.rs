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
use crate::learn::features::{attribute_most, Prior, ATTRIBUTE_SLOTS};
use crate::learn::model::{
    probit_scale, sigmoid, ATTRIBUTE_CROSSES, ATTRIBUTE_PARAMS, ATTRIBUTE_WEEKEND, CREATIVE_PARAMS, GRADED,
    PERSON_RANKS, RANKED, SCORES, SLOPES, TAG_RANKS,
};
use crate::learn::request::MAX_CACHED_ATTRIBUTES;
use crate::learn::{Padded, Policy, PriorSpread, Rng, DAYPARTS, DEVICES};
use crate::profile::Profile;

/// How far an attribute's learned effect may rise above the value the index was built
/// with before the index is rebuilt (log-odds). Shared weights move slowly; the margin
/// spares a rebuild per click.
const ATTRIBUTE_MARGIN: f32 = 0.1;

/// How far an attribute value's base (see [`PruneIndex::attribute`]) may move from the
/// one the index folded into its static bounds before the index is rebuilt (log-odds).
/// The bounds stay exact either way; what each request allows for beyond the base at
/// the steepest slope of `ln key` grows, and with it the candidates offered in vain.
const ATTRIBUTE_REBASE: f32 = 0.25;

/// The index is rebuilt once this many creatives were raised since it was built (1/16 of
/// the catalog within these bounds): every `select` walks the raised list, and on a
/// large catalog a rebuild after 1/16 of it let that walk grow to thousands (at 100,000
/// creatives learning from spread-out events, select's mean over the run went from 166
/// to 80 µs with the cap, for about the same time spent recording).
const MIN_RAISED: usize = 64;
/// See [`MIN_RAISED`].
const MAX_RAISED: usize = 1_024;

/// Standard deviations of a Thompson draw the bounds allow for: a creative is skipped
/// only when its draw would have to land further out than this (probability < 4e-6).
const DRAW_SPREAD: f64 = super::propensity::SPREAD;

/// The pruning index of one generation.
#[derive(Debug, Default)]
pub(crate) struct PruneIndex {
    pub generation: u32,
    /// The model's prior this generation scores with: the configured one with the
    /// creatives' spreads as learned when it was built (see `learn::spread`).
    pub prior: Prior,
    /// The spreads of `prior` (see [`Selector::prior_spread`]).
    pub spread: PriorSpread,
    /// True when the bounds are the learned model's (log space).
    pub(super) learned: bool,
    placements: Vec<PlacementIndex>,
    /// Learned: per creative, the static bound its unmatched entry was built with.
    bound: Box<[f32]>,
    /// Learned: per creative, the widest variance its log-odds could have when built
    /// (variances only shrink, so it holds until the next rebuild); for Thompson, the
    /// widest variance of its draw (the creative's own part, see
    /// [`Selector::widest_own_variance`]).
    variance: Box<[f64]>,
    /// Learned: per creative, what [`Selector::prescreen`] reads first, and its raised
    /// bound (see [`Screen`]).
    screen: Box<[Screen]>,
    /// Learned: the tags and attribute values of the creatives with more than
    /// [`SCREEN_INLINE`] of them (see [`Screen::items`]).
    screen_items: Box<[ScreenItem]>,
    /// Learned: per attribute value, the log-odds every static bound carrying it
    /// includes. For catalogs with too many attribute values to read each per request,
    /// the most its effect could add when built, plus [`ATTRIBUTE_MARGIN`]. For the
    /// others (`attribute_name` non-empty), its base when built (the least its effect is
    /// at any moment, see [`Selector::attribute_base`]), folded into the bound exactly,
    /// so that each request allows only for how far its moment lifts the effect above
    /// that (see [`attribute_allowance`]). Empty otherwise.
    attribute: Box<[f32]>,
    /// Learned, for catalogs whose attribute values are all read once per request: per
    /// attribute value, the dense index of its name. The static bounds then carry each
    /// value's base as built (`attribute`), and each request allows exactly for what its
    /// effect is now beyond that (see [`attribute_allowance`]). Empty otherwise.
    attribute_name: Box<[u16]>,
    /// Learned, with `attribute_name`: the distinct sets of attribute values the
    /// creatives carry (set `k`'s values are `combo_values[combo_start[k] as usize..
    /// combo_start[k + 1] as usize]`), at most [`MAX_COMBOS`]. Each placement's
    /// unmatched order is split by set, and each request bounds a set's candidates by
    /// its own values' effects instead of the allowance. Empty otherwise (one order).
    combo_start: Box<[u32]>,
    combo_values: Box<[u32]>,
    /// Events recorded since the index was built: bumped by every `record`, so alone on
    /// its cache line, away from the fields every `select` reads.
    events: Padded<AtomicU64>,
    /// Creatives whose bound rose since (scored when their new bound can reach the
    /// k-th best), and which are listed.
    raised: Box<[AtomicU32]>,
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

/// The most distinct sets of attribute values the unmatched order is split by; a
/// catalog with more keeps one unmatched order.
pub(super) const MAX_COMBOS: usize = 64;

/// How many tags and attribute values a [`Screen`] holds itself; a creative with more
/// reads them from [`PruneIndex::screen_items`].
const SCREEN_INLINE: usize = 5;

/// What the second bound of a candidate reads before it knows whether to read more
/// (see [`Selector::prescreen`]), in one cache line: on a catalog too large for the
/// cache, the five arrays these came from were each a miss per candidate offered.
#[repr(align(64))]
#[derive(Debug)]
struct Screen {
    /// The static bound its unmatched entry was built with (as `PruneIndex::bound`).
    bound: f32,
    /// The log-odds `bound` is the key of (see [`key_of_logit`]).
    logit: f32,
    /// From its widest variance, the least `ln key` moves per unit of log-odds before
    /// the rate's own factor: `1 / s_max` (1 for Thompson). The most is
    /// [`Screen::slope`].
    least: f32,
    /// Its raised static bound (`f32` bits), once listed as raised.
    raised: AtomicU32,
    /// Where its items start in [`PruneIndex::screen_items`], and how many are tags
    /// (at most `MAX_TAGS`) and attribute values (at most `MAX_ATTRIBUTES`).
    start: u32,
    tags: u8,
    attributes: u8,
    /// Its first items, when they all fit: its tags, then its attribute values.
    inline: [ScreenItem; SCREEN_INLINE],
}

// One cache line each.
const _: () = assert!(std::mem::size_of::<Screen>() == 64);

impl Screen {
    /// The most `ln key` moves per unit of log-odds, as `Selector::logit_slope` gives
    /// it for the same variance: `max(1 / s_max, 1/2)` (1 for Thompson).
    #[inline]
    fn slope(&self) -> f32 {
        self.least.max(0.5)
    }

    /// Its tags and its attribute values.
    #[inline]
    fn items<'a>(&'a self, all: &'a [ScreenItem]) -> (&'a [ScreenItem], &'a [ScreenItem]) {
        let n = usize::from(self.tags) + usize::from(self.attributes);
        let items = match self.inline.get(..n) {
            Some(inline) => inline,
            None => all.get(self.start as usize..self.start as usize + n).unwrap_or(&[]),
        };
        items.split_at(usize::from(self.tags).min(items.len()))
    }
}

/// One item of a [`Screen`]: a tag, as its (persona, tag rank) list and its weight (at
/// least 0), or an attribute value (`key`; `weight` unused).
#[derive(Clone, Copy, Debug, Default)]
struct ScreenItem {
    key: u32,
    weight: f32,
}

/// One placement's orders. Every list is sorted by its bound, highest first.
#[derive(Debug, Default)]
pub(super) struct PlacementIndex {
    /// Every candidate, by the most it can score without any persona match: by set of
    /// attribute values (`PruneIndex::combo_start`), then by that bound.
    unmatched: Vec<(f32, CreativeId)>,
    /// Where each set's candidates start in `unmatched`, and its end (one set when the
    /// index does not split).
    unmatched_start: Vec<u32>,
    /// Per list (CSR): candidates tagged with a persona, by what one unit of the
    /// person's factor on that list can add. Rules: one list per persona, by
    /// `priority · max_boost · share`. Learned: one list per (persona, tag rank), by the
    /// tag weight times how fast the creative's key can rise with its log-odds.
    ///
    /// Within a list the entries are cut into bands of similar value (each band's
    /// smallest value at least [`BAND_RATIO`] of its largest), and sorted within a band
    /// by the creative's static bound (`a`, its value in `unmatched`), so a list bounds
    /// what its own unseen entries score in full, static part included: for a person
    /// with one persona, a creative of low priority but a high tag weight no longer
    /// lends its weight to the high-priority creatives of the list.
    persona_offsets: Vec<u32>,
    persona_entries: Vec<Entry>,
    /// Per list (CSR): its bands, in order.
    band_offsets: Vec<u32>,
    bands: Vec<Band>,
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

    /// Where list `l`'s entries start in `persona_entries`, and where its bands start in
    /// `bands` and how many it has (a cursor keeps them, see [`Cursor::entries`]).
    fn spans(&self, l: usize) -> (u32, u32, u32) {
        let entries = self.persona_offsets.get(l).copied().unwrap_or(0);
        match (self.band_offsets.get(l), self.band_offsets.get(l + 1)) {
            (Some(&a), Some(&b)) if a <= b => (entries, a, b - a),
            _ => (entries, 0, 0),
        }
    }
}

/// A band's smallest value is at least this share of its largest (or of a smaller
/// share, where more than [`MAX_BANDS`] bands would be needed).
const BAND_RATIO: f32 = 0.95;

/// The most bands a list has: what `select` reserves per list for the band bounds.
pub(super) const MAX_BANDS: usize = 32;

/// One entry of a persona list: the creative, what a unit of the person's factor on the
/// list adds (`b`) and its static bound (`a`).
#[derive(Clone, Copy, Debug)]
struct Entry {
    b: f32,
    a: f32,
    id: CreativeId,
}

/// A band of a persona list: where it ends (index in the list), its largest value and
/// its largest static bound.
#[derive(Clone, Copy, Debug)]
struct Band {
    end: u32,
    b: f32,
    a: f32,
}

/// Cuts `entries` (one list, any order) into bands by value, each sorted by static
/// bound and holding at least one entry; appends the bands (ends relative to the list)
/// to `bands`.
fn band_list(entries: &mut [Entry], bands: &mut Vec<Band>) {
    entries.sort_by(|x, y| y.b.total_cmp(&x.b).then(x.id.cmp(&y.id)));
    // Band ends for a ratio, or None when there would be more than MAX_BANDS.
    let cut = |ratio: f32| -> Option<Vec<usize>> {
        let mut ends = Vec::new();
        let mut start = 0;
        while start < entries.len() {
            let top = entries[start].b;
            let floor = if top > 0.0 { top * ratio } else { top };
            start += entries[start..].iter().take_while(|e| e.b >= floor).count().max(1);
            ends.push(start);
            if ends.len() > MAX_BANDS {
                return None;
            }
        }
        Some(ends)
    };
    let mut ratio = BAND_RATIO;
    let ends = loop {
        match cut(ratio) {
            Some(ends) => break ends,
            // Wider bands; at ratio 0 one band holds everything from its top down.
            None if ratio > 1e-6 => ratio *= ratio,
            None => break vec![entries.len()],
        }
    };
    let mut start = 0;
    for end in ends {
        let band = &mut entries[start..end];
        let top = band[0].b;
        band.sort_by(|x, y| y.a.total_cmp(&x.a).then(x.id.cmp(&y.id)));
        bands.push(Band { end: end as u32, b: top, a: band[0].a });
        start = end;
    }
}

/// A cursor of the pruned scan over one persona list.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Cursor {
    /// The person's factor on this list: what a unit of list value adds. Learned: the
    /// shared weights' part alone (they add up over a creative's tags).
    weight: f32,
    /// What a unit of list value adds for a creative bounded through this list (its best
    /// prior tag's): the shared weights' part as scoring adds it, sign included, plus
    /// the persona prior's (the prior takes a creative's best tag, so over lists the
    /// scan counts it once, here), at least 0. Rules: `weight`.
    own: f32,
    /// The persona of the list: a creative has one tag per persona, so it is on at most
    /// one of a persona's (persona, tag rank) lists and the scan bounds a persona's
    /// lists by their largest, not their sum.
    persona: u32,
    list: u32,
    /// Where the list's entries start in `PlacementIndex::persona_entries`, and where its
    /// bands start in `PlacementIndex::bands` and how many it has: read once per
    /// request, not per step.
    entries: u32,
    bands_at: u32,
    bands_len: u32,
    /// The band whose next entry bounds highest (the one the cursor takes next), and
    /// the first band with entries left (the largest value left: bands go by value).
    best: u32,
    band: u32,
    /// Where this request's per-band state of the list starts in `Selection::band_pos`
    /// (for band `k`, where its next entry is in the list) and in
    /// `Selection::band_tree` (see [`BandTree`]), and the tree's leaf count.
    suffix: u32,
    tree: u32,
    leaves: u32,
    /// What the cursor gives the bound (see [`Cursor::refresh`]): the shared-weight part
    /// a unit of the largest value left adds, and the most any entry left scores (`x`,
    /// its best band's next entry).
    shared: f32,
    x: f32,
}

impl Cursor {
    /// Its list's bands.
    #[inline]
    fn bands<'a>(&self, pi: &'a PlacementIndex) -> &'a [Band] {
        let at = self.bands_at as usize;
        pi.bands.get(at..at + self.bands_len as usize).unwrap_or(&[])
    }

    /// Recomputes what the cursor gives the bound, after it moved (or was made). Each
    /// band is sorted by static bound, so a band's next entry bounds all of the band's
    /// entries left, and the best of those bounds the list: the cursor takes entries
    /// from whichever band bounds highest (the root of its [`BandTree`]), instead of
    /// walking a band of lower entries to reach a better one behind it.
    #[inline]
    fn refresh(&mut self, pi: &PlacementIndex, band_tree: &[(f32, u32)], band_pos: &[u32]) {
        let bands = self.bands(pi);
        let at = self.suffix as usize;
        let left = |k: usize| bands.get(k).is_some_and(|b| band_pos.get(at + k).is_some_and(|&p| p < b.end));
        while (self.band as usize) < bands.len() && !left(self.band as usize) {
            self.band += 1;
        }
        let Some(first) = bands.get(self.band as usize) else {
            (self.shared, self.x) = (0.0, f32::NEG_INFINITY);
            return;
        };
        self.shared = self.weight * first.b;
        // The first band with the largest bound; a band with no entries left bounds at
        // −∞ (see `fill_band_bounds` and the scan's step).
        let (x, best) = band_tree.get(self.tree as usize + 1).copied().unwrap_or((f32::NEG_INFINITY, 0));
        (self.best, self.x) = (if x > f32::NEG_INFINITY { best } else { self.band }, x);
    }
}

/// Per cursor, a tournament tree over its list's bands (in `Selection::band_tree`, `2 ·
/// leaves` nodes from `Cursor::tree`, `leaves` the band count, at least 1): node `i`'s
/// children are `2i` and `2i + 1`, band `k`'s leaf is `leaves + k` and holds the bound
/// of the band's next entry (−∞ for a band with none left), and each node holds the
/// largest bound below it and the first band that has it. Taking an entry updates one
/// leaf and its ancestors (at most five for [`MAX_BANDS`] bands), where a scan over the
/// bands read every one of them per step.
struct BandTree;

impl BandTree {
    /// The better of two nodes: the larger bound, the earlier band on a tie (a leaf's
    /// depth depends on the band count, so the left node is not always the earlier).
    #[inline]
    fn better(l: (f32, u32), r: (f32, u32)) -> (f32, u32) {
        if r.0 > l.0 || (r.0 == l.0 && r.1 < l.1) {
            r
        } else {
            l
        }
    }

    /// Fills the inner nodes of `tree` (`2 · leaves` nodes) from its leaves.
    fn build(tree: &mut [(f32, u32)]) {
        for i in (1..tree.len() / 2).rev() {
            if let (Some(&l), Some(&r)) = (tree.get(2 * i), tree.get(2 * i + 1)) {
                tree[i] = Self::better(l, r);
            }
        }
    }

    /// Sets band `k`'s bound and updates its ancestors, each the better of the node
    /// below it and that node's sibling.
    #[inline]
    fn set(tree: &mut [(f32, u32)], leaves: usize, k: usize, bound: f32) {
        let mut i = leaves + k;
        let mut node = (bound, k as u32);
        while i > 1 {
            let Some(&sibling) = tree.get(i ^ 1) else { return };
            if let Some(slot) = tree.get_mut(i) {
                *slot = node;
            }
            node = Self::better(node, sibling);
            i /= 2;
        }
        if let Some(slot) = tree.get_mut(i) {
            *slot = node;
        }
    }
}

/// The cursors of one persona (consecutive in `Selection::cursors`), and what they give
/// the bound together (see [`Group::refresh`]).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Group {
    start: u32,
    end: u32,
    /// The largest shared-weight part of its lists' heads.
    shared: f32,
    /// The most its lists' unseen entries score.
    x: f32,
}

impl Group {
    /// Recomputes the group's parts from its cursors' heads.
    #[inline]
    fn refresh(&mut self, cursors: &[Cursor]) {
        (self.shared, self.x) = (0.0, f32::NEG_INFINITY);
        for cur in cursors.get(self.start as usize..self.end as usize).unwrap_or(&[]) {
            self.shared = self.shared.max(cur.shared);
            self.x = self.x.max(cur.x);
        }
    }
}

/// The scan's bound on anything not yet seen, given the next unmatched candidate's
/// static bound `f_u`, and where to look next (a persona group, or `usize::MAX` for the
/// unmatched order). A creative on none of the person's lists scores at most `f_u`.
/// One on lists of personas `p, q, …` is bounded through the list of its best prior
/// tag, say `p`'s: at most what `p`'s lists bound their unseen entries by (a head's
/// static bound plus the full factor times its band's largest value, or a later band's
/// bound), plus per other persona the largest of its lists' shared-weight parts (band
/// maxima times factors; the prior is already counted, at its best tag). The bound is
/// the largest over the groups, so whichever tag is a creative's best, the group of
/// that tag covers it while it is unseen.
#[inline]
fn scan_bound(groups: &[Group], f_u: f32) -> (f32, usize) {
    let shared: f32 = groups.iter().map(|g| g.shared).sum();
    let mut best = (f_u, usize::MAX);
    for (i, g) in groups.iter().enumerate() {
        let own = g.x + shared - g.shared;
        if own > best.0 {
            best = (own, i);
        }
    }
    best
}

/// Per request: for each cursor, where each band's first entry is into `band_pos`, and
/// its [`BandTree`] into `band_tree`, with the bound of each band's first entry (`a +
/// factor · b`, the band's largest static bound and value).
fn fill_band_bounds(
    cursors: &mut [Cursor],
    groups: &mut Vec<Group>,
    band_tree: &mut Vec<(f32, u32)>,
    band_pos: &mut Vec<u32>,
    pi: &PlacementIndex,
) {
    band_tree.clear();
    band_pos.clear();
    groups.clear();
    for cur in cursors.iter_mut() {
        (cur.entries, cur.bands_at, cur.bands_len) = pi.spans(cur.list as usize);
        let bands = cur.bands(pi);
        cur.suffix = band_pos.len() as u32;
        let leaves = bands.len().max(1);
        let at = band_tree.len();
        (cur.tree, cur.leaves) = (at as u32, leaves as u32);
        let own = cur.own;
        // Every band has an entry (see `band_list`): each starts where the one before
        // ends.
        if !bands.is_empty() {
            band_pos.push(0);
        }
        band_pos.extend(bands.iter().take(bands.len().saturating_sub(1)).map(|b| b.end));
        band_tree.resize(at + leaves, (f32::NEG_INFINITY, 0));
        band_tree.extend(bands.iter().zip(0u32..).map(|(b, k)| (b.a + own * b.b, k)));
        band_tree.extend((bands.len()..leaves).map(|k| (f32::NEG_INFINITY, k as u32)));
        if let Some(tree) = band_tree.get_mut(at..) {
            BandTree::build(tree);
        }
        cur.refresh(pi, band_tree, band_pos);
    }
    let mut start = 0;
    while let Some(first) = cursors.get(start) {
        let persona = first.persona;
        let end = start + cursors[start..].iter().take_while(|c| c.persona == persona).count();
        let mut g = Group { start: start as u32, end: end as u32, ..Group::default() };
        g.refresh(cursors);
        groups.push(g);
        start = end;
    }
}

/// The summed effect (mean log-odds) of attribute `values` in this request beyond what
/// the static bounds carry for them (`base`, see [`PruneIndex::attribute`]), in their
/// order, in f64: the second bound and the unmatched sets' bounds sum alike. `None` when
/// a value is not among the request's terms or has no base.
#[inline]
fn attribute_effect(
    values: impl Iterator<Item = u32>,
    terms: &[crate::learn::request::Term],
    base: &[f32],
) -> Option<f64> {
    let mut effect = 0.0f64;
    for a in values {
        let a = a as usize;
        effect += terms.get(a)?.0 - f64::from(*base.get(a)?);
    }
    Some(effect)
}

/// The bound on the unmatched candidates not yet offered, and the set whose next
/// candidate it is (`usize::MAX` once all are offered), from each set's head bound and
/// position.
#[inline]
fn next_unmatched(pi: &PlacementIndex, heads: &[f32], pos: &[u32]) -> (f32, usize) {
    let mut best = (f32::NEG_INFINITY, usize::MAX);
    for (k, (&bound, &at)) in heads.iter().zip(pos).enumerate() {
        let left = pi.unmatched_start.get(k + 1).is_some_and(|&end| at < end);
        if left && (best.1 == usize::MAX || bound > best.0) {
            best = (bound, k);
        }
    }
    best
}

/// The head bound of unmatched set `k` at `pos`: its next candidate's static bound plus
/// what the set's values can add beyond the request's allowance (`offset`); −∞ once
/// the set is offered.
#[inline]
fn unmatched_head(pi: &PlacementIndex, k: usize, pos: u32, offset: f32) -> f32 {
    let end = pi.unmatched_start.get(k + 1).copied().unwrap_or(0);
    match pi.unmatched.get(pos as usize) {
        Some(e) if pos < end => e.0 + offset,
        _ => f32::NEG_INFINITY,
    }
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

/// The k-th largest key seen, lowered by [`tie_floor`], or −∞ when fewer than k were:
/// the floor a bound must reach for what it bounds to be scored.
#[inline]
pub(super) fn kth(top: &[f32], k: usize) -> f32 {
    if top.len() >= k {
        top.last().copied().map_or(f32::NEG_INFINITY, tie_floor)
    } else {
        f32::NEG_INFINITY
    }
}

impl Selection {
    /// The floor a bound (static parts, without the attribute effects the request allows
    /// for) must reach for what it bounds to be scored: the k-th best key lowered by
    /// [`tie_floor`] and by this request's attribute allowance.
    #[inline]
    pub(super) fn floor(&self) -> f32 {
        kth(&self.topk, self.k) - self.attribute_allowance
    }
}

/// The most the attribute effects can add to any candidate's log-odds in this request
/// beyond what the static bounds carry for them (`base`, each value's least effect when
/// the index was built; `names` non-empty): per attribute name, the largest of its
/// values' effects at this moment (`terms`, read once per request, as scoring reads
/// them) less their base, or 0 when every value falls short of it; summed over names,
/// since a creative has at most one value per name. Adding it to a bound in log space
/// is enough: `ln σ` rises by less than its argument does. With the base in the bounds,
/// what is allowed for is only how far the moment moves the effects (and how far they
/// moved since), not the effects themselves: an effect every creative shares (all
/// values of a name well above 0, as when the catalog's click rate is above the
/// prior's) would otherwise be allowed for at the steepest slope of `ln σ`, and every
/// candidate within that slack of the best offered. 0 when the static bounds carry the
/// attribute effects at their most; infinite (nothing pruned) if the terms are missing.
fn attribute_allowance(
    names: &[u16],
    terms: &[crate::learn::request::Term],
    base: &[f32],
    best: &mut Vec<f32>,
) -> f32 {
    if names.is_empty() {
        return 0.0;
    }
    if terms.len() != names.len() || base.len() != names.len() {
        return f32::INFINITY;
    }
    best.clear();
    for ((&n, &(m, _)), &b) in names.iter().zip(terms).zip(base) {
        let n = usize::from(n);
        if best.len() <= n {
            best.resize(n + 1, 0.0);
        }
        best[n] = best[n].max((m - f64::from(b)) as f32);
    }
    best.iter().sum()
}

/// `ln σ(L / s)` with `1 / s = least` for `L < 0` and `s = 1` beyond: the most `ln key`
/// (before the priority) that log-odds `L` can give a creative whose widest variance
/// gives `least` (see [`Selector::learned_bound`], which builds the static bounds this
/// way).
fn key_of_logit(logit: f64, least: f32) -> f64 {
    let x = if logit < 0.0 { logit * f64::from(least) } else { logit };
    // ln σ(x) = −ln(1 + e^−x), written to stay finite for large |x|.
    if x >= 0.0 {
        -(-x).exp().ln_1p()
    } else {
        x - x.exp().ln_1p()
    }
}

/// The inverse of [`key_of_logit`]: the log-odds `L` whose bound is `ln_key`.
fn logit_of_key(ln_key: f64, least: f32) -> f64 {
    if ln_key.is_nan() || ln_key >= 0.0 {
        return f64::INFINITY;
    }
    // x = ln(k / (1 − k)) = ln_key − ln(1 − e^ln_key).
    let x = ln_key - (-ln_key.exp()).ln_1p();
    if x < 0.0 {
        x / f64::from(least)
    } else {
        x
    }
}

/// A key lowered by a few parts in a million: a bound is compared with this, not with the
/// key itself, so that a candidate tied with the k-th best is still scored when its bound,
/// rounded in another order, lands a hair below its score. Ties then go to the earlier
/// creative, as in the full scan.
#[inline]
pub(super) fn tie_floor(key: f32) -> f32 {
    key - 4e-6 * key.abs().max(1.0)
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

    /// The base of attribute value `a` (see [`PruneIndex::attribute`]): the least its
    /// learned effect is at any moment, reading each cross (device, daypart, channel,
    /// weather) only at the values some event taught, as the per-request terms read them
    /// under `prior`. A value no event taught is left out: a moment no data has seen
    /// yet would otherwise hold every other moment's base at the prior.
    fn attribute_base(&self, a: usize, prior: &Prior) -> f32 {
        let Some(w) = self.stats.model.attributes.get(a * ATTRIBUTE_PARAMS..(a + 1) * ATTRIBUTE_PARAMS)
        else {
            return 0.0;
        };
        let mean = |p: &crate::learn::model::Param| p.posterior(0.0, prior.q0_attribute).0;
        let weekend = w.get(ATTRIBUTE_WEEKEND).map_or(0.0, mean);
        let mut base = w.first().map_or(0.0, mean) + weekend.min(0.0);
        let mut at = 1;
        for n in ATTRIBUTE_CROSSES {
            let seen = w.get(at..at + n).unwrap_or(&[]).iter().filter(|p| p.load().precision > 0);
            let least = seen.map(mean).fold(f64::INFINITY, f64::min);
            if least.is_finite() {
                base += least;
            }
            at += n;
        }
        base as f32
    }

    /// The most attribute value `a`'s learned effect adds in any context.
    fn attribute_effect(&self, a: usize) -> f32 {
        let Some(w) = self.stats.model.attributes.get(a * ATTRIBUTE_PARAMS..(a + 1) * ATTRIBUTE_PARAMS)
        else {
            return 0.0;
        };
        let q0 = self.prior.q0_attribute;
        attribute_most(w, |p| p.posterior(0.0, q0).0) as f32
    }

    /// A bound (log space) on `ln(priority · key)` of creative `c` for a person who
    /// matches none of its personas, in any context: its own weights at their most,
    /// the attribute effects as the index holds them (none when each request allows for
    /// them, see [`attribute_allowance`]), the largest boost, the widest spread its
    /// posterior can have (`var`, from [`Self::widest_variance`]; for Thompson the widest
    /// spread of its draw, [`Self::widest_own_variance`]), and the optimism's lift.
    fn learned_bound(&self, prior: &Prior, c: usize, attribute: &[f32], var: f64) -> f32 {
        self.learned_bounds(prior, c, attribute, var).0
    }

    /// [`Self::learned_bound`], and the log-odds `L` it is the key of: the bound is
    /// `ln priority + key_of_logit(L, least)` with the record's `least` (see
    /// [`key_of_logit`]).
    fn learned_bounds(&self, prior: &Prior, c: usize, attribute: &[f32], var: f64) -> (f32, f32) {
        let cat = &*self.catalog;
        let Some(r) = cat.rules.get(c) else { return (f32::NEG_INFINITY, f32::NEG_INFINITY) };
        let (q0c, q0) = (prior.q0_creative, prior.q0);
        let best = |range: std::ops::Range<usize>| {
            range.map(|k| self.creative_mean(c, k, q0)).fold(f64::NEG_INFINITY, f64::max)
        };
        let mut logit = prior.base
            + f64::from(r.max_boost).ln()
            + self.creative_mean(c, 0, q0c)
            + best(1..1 + DEVICES)
            + best(1 + DEVICES..1 + DEVICES + DAYPARTS)
            + f64::from(self.stats.segment_max(c));
        let span = cat.attribute_span.get(c).copied().unwrap_or_default();
        for &a in &cat.attribute_value[span.range()] {
            logit += f64::from(attribute.get(a as usize).copied().unwrap_or(0.0));
        }
        // The optimism's lift: its own standard deviation only shrinks from now on, and
        // so does the first look's extra as its impressions grow (the slope of the bound
        // in the logit does not depend on them, so a bound computed later holds as well;
        // a load or merge, which may lower them, rebuilds the index).
        // Epsilon-greedy with a reach bounds the key its exploring draw compares (the
        // reach's own standard deviations further up), which is at least its key.
        let learning = &self.config.learning;
        let optimism = learning.lift_under(learning.policy, self.stats.impressions(c))
            + learning.reach_under(learning.policy).unwrap_or(0.0);
        let logit =
            if optimism > 0.0 { logit + optimism * self.widest_own_variance(prior, c).sqrt() } else { logit };
        let (key, logit) = match learning.policy {
            Policy::Thompson => {
                let logit = logit + DRAW_SPREAD * (var * learning.thompson_scale).sqrt();
                (sigmoid(logit), logit)
            }
            // The posterior mean rate is σ(m / s) with s = √(1 + πv/8) ≤ s_max: for a
            // negative m it is at most σ(m / s_max), for m ≥ 0 at most σ(m).
            _ => {
                let s_max = probit_scale(var);
                (sigmoid(if logit < 0.0 { logit / s_max } else { logit }), logit)
            }
        };
        ((f64::from(r.priority).ln() + key.ln()) as f32, logit as f32)
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
        let q0 = self.prior.q0_attribute;
        let attributes = (0..self.catalog.attribute_value_count())
            .map(|a| {
                let Some(w) =
                    self.stats.model.attributes.get(a * ATTRIBUTE_PARAMS..(a + 1) * ATTRIBUTE_PARAMS)
                else {
                    return ATTRIBUTE_SLOTS as f64 / q0;
                };
                attribute_most(w, |p| p.posterior(0.0, q0).1)
            })
            .collect();
        (per_rank, attributes)
    }

    /// The widest variance the own part of creative `c`'s log-odds (its own weight and
    /// its device, daypart and segment crosses) can have from now on: each at its widest
    /// now (an unseen segment reads the prior).
    fn widest_own_variance(&self, prior: &Prior, c: usize) -> f64 {
        let widest =
            |range: std::ops::Range<usize>| range.map(|k| self.own_variance(prior, c, k)).fold(0.0, f64::max);
        self.own_variance(prior, c, 0)
            + widest(1..1 + DEVICES)
            + widest(1 + DEVICES..1 + DEVICES + DAYPARTS)
            + 1.0 / prior.q0_segment
    }

    /// The posterior variance now of creative `c`'s own weight `k` (0: the creative's,
    /// then its device and daypart crosses).
    fn own_variance(&self, prior: &Prior, c: usize, k: usize) -> f64 {
        let q = if k == 0 { prior.q0_creative } else { prior.q0 };
        self.stats.model.creative.get(c * CREATIVE_PARAMS + k).map_or(1.0 / q, |w| w.posterior(0.0, q).1)
    }

    /// The widest variance creative `c`'s log-odds can have from now until the weights
    /// are read again: the sum, over every feature it can use, of the widest posterior
    /// variance that feature's weight has now (precision only grows, so variances only
    /// shrink); an unseen segment reads the prior.
    fn widest_variance(
        &self,
        prior: &Prior,
        c: usize,
        per_rank: &[f64; TAG_RANKS],
        attributes: &[f64],
    ) -> f64 {
        let cat = &*self.catalog;
        let Some(r) = cat.rules.get(c) else { return 0.0 };
        let (q0, qs) = (prior.q0_attribute, prior.q0_shared);
        let mut var = self.widest_own_variance(prior, c);
        for t in r.tags.range() {
            let w = f64::from(cat.tag_weight[t]).max(0.0);
            let rank = usize::from(cat.tag_rank[t]).min(TAG_RANKS - 1);
            let p = cat.tag_persona[t].index();
            let slope = self.stats.model.shared.get(SLOPES + p).map_or(1.0 / qs, |x| x.posterior(0.0, qs).1);
            var += w * w * (per_rank[rank] + slope);
        }
        let span = cat.attribute_span.get(c).copied().unwrap_or_default();
        for &a in &cat.attribute_value[span.range()] {
            var += attributes.get(a as usize).copied().unwrap_or(ATTRIBUTE_SLOTS as f64 / q0);
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
                let s_max = probit_scale(var);
                (1.0 / s_max).max(0.5) as f32
            }
        }
    }

    /// The model's prior in use: the configured one with the creatives' spreads as last
    /// learned (see `learn::spread`).
    pub(crate) fn model_prior(&self) -> Prior {
        self.prune.load().prior
    }

    /// The prior spreads the learned model uses now, in log-odds standard deviations:
    /// of a creative's own weight, of its crosses with device and daypart, and of its
    /// cross with the person's segment.
    /// With [`LearningConfig::learn_spread`](crate::LearningConfig::learn_spread) (the
    /// default) they are estimated from how much the creatives have turned out to
    /// differ, starting from the configured `prior_sd` and `prior_sd_cross`; otherwise
    /// they are those.
    ///
    /// ```
    /// use persona_engine::{Catalog, Selector, SelectorConfig};
    ///
    /// let selector = Selector::new(Catalog::from_file("data/sample_catalog.json")?, SelectorConfig::default())?;
    /// let spread = selector.prior_spread();
    /// // Nothing learned yet: the configured spreads.
    /// let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
    /// assert!(close(spread.creative, 0.5) && close(spread.context, 0.2) && close(spread.segment, 0.2));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn prior_spread(&self) -> PriorSpread {
        self.prune.load().spread
    }

    /// Builds the pruning index of every placement from the current bounds, and the
    /// prior spreads it scores with from the current statistics, or `keep` (the
    /// current index's, when only the bounds are due).
    pub(crate) fn build_prune_index(&self, generation: u32, keep: Option<PriorSpread>) -> PruneIndex {
        let cat = &*self.catalog;
        let n = cat.len();
        let learned = self.prunes_learned();
        // The spreads this generation scores with (`learn::spread`); `select` and
        // `record` read them from the index, so bounds and scores always agree.
        let (spread, prior) = match keep {
            Some(spread) if self.config.learning.learn_spread => (spread, spread.apply(&self.prior)),
            None if self.config.learning.learn_spread => {
                let spread = self.stats.learned_spread(&self.prior);
                (spread, spread.apply(&self.prior))
            }
            _ => (PriorSpread::of(&self.prior), self.prior),
        };
        if learned {
            self.stats.refresh_segment_max(&prior);
        }
        let per_request = learned && cat.attribute_value_count() <= MAX_CACHED_ATTRIBUTES;
        let attribute: Box<[f32]> = if per_request {
            (0..cat.attribute_value_count()).map(|a| self.attribute_base(a, &prior)).collect()
        } else if learned {
            (0..cat.attribute_value_count()).map(|a| self.attribute_effect(a) + ATTRIBUTE_MARGIN).collect()
        } else {
            Box::new([])
        };
        let attribute_name: Box<[u16]> = if per_request {
            let mut names: Vec<&str> = Vec::new();
            (0..cat.attribute_value_count())
                .map(|a| {
                    let name = cat.attribute_value_text(a).map_or("", |(n, _)| n);
                    let at = names.iter().position(|&x| x == name).unwrap_or_else(|| {
                        names.push(name);
                        names.len() - 1
                    });
                    at as u16
                })
                .collect()
        } else {
            Box::new([])
        };
        // The sets of attribute values, when each request reads the attribute effects.
        let mut combo_of = vec![0u32; n];
        let (mut combo_start, mut combo_values) = (vec![0u32], Vec::new());
        if per_request {
            let mut ids: ahash::AHashMap<&[u32], u32> = ahash::AHashMap::new();
            for (c, slot) in combo_of.iter_mut().enumerate() {
                let span = cat.attribute_span.get(c).copied().unwrap_or_default();
                let values = cat.attribute_value.get(span.range()).unwrap_or(&[]);
                *slot = *ids.entry(values).or_insert_with(|| {
                    combo_values.extend_from_slice(values);
                    combo_start.push(combo_values.len() as u32);
                    combo_start.len() as u32 - 2
                });
            }
            if ids.len() > MAX_COMBOS {
                combo_of.iter_mut().for_each(|k| *k = 0);
                (combo_start, combo_values) = (vec![0], Vec::new());
            }
        }
        let combos = combo_start.len().saturating_sub(1).max(1);
        let variance: Box<[f64]> = if learned && self.config.learning.policy == Policy::Thompson {
            // Thompson's key depends on the variance only through its draw, taken at the
            // creative's own uncertainty.
            (0..n).map(|c| self.widest_own_variance(&prior, c)).collect()
        } else if learned {
            let (per_rank, attributes) = self.shared_variances();
            (0..n).map(|c| self.widest_variance(&prior, c, &per_rank, &attributes)).collect()
        } else {
            Box::new([])
        };
        let (bound, static_logit): (Vec<f32>, Vec<f32>) = if learned {
            (0..n).map(|c| self.learned_bounds(&prior, c, &attribute, variance[c])).unzip()
        } else {
            (Vec::new(), Vec::new())
        };
        let mut screen_items = Vec::new();
        let screen: Box<[Screen]> = variance
            .iter()
            .zip(cat.rules.iter().zip(bound.iter().zip(&static_logit)))
            .zip(&cat.attribute_span)
            .map(|((&var, (r, (&bound, &logit))), attributes)| {
                let least = match self.config.learning.policy {
                    Policy::Thompson => 1.0,
                    _ => 1.0 / probit_scale(var),
                };
                let start = screen_items.len();
                for t in r.tags.range() {
                    let rank = usize::from(cat.tag_rank[t]).min(TAG_RANKS - 1);
                    let key = (cat.tag_persona[t].index() * TAG_RANKS + rank) as u32;
                    screen_items.push(ScreenItem { key, weight: cat.tag_weight[t].max(0.0) });
                }
                for &a in cat.attribute_value.get(attributes.range()).unwrap_or(&[]) {
                    screen_items.push(ScreenItem { key: a, weight: 0.0 });
                }
                // Items that fit in the record are kept only there.
                let mut inline = [ScreenItem::default(); SCREEN_INLINE];
                if let Some(items) = screen_items.get(start..).filter(|i| i.len() <= SCREEN_INLINE) {
                    inline[..items.len()].copy_from_slice(items);
                    screen_items.truncate(start);
                }
                Screen {
                    bound,
                    logit,
                    least: least as f32,
                    raised: AtomicU32::new(f32::NEG_INFINITY.to_bits()),
                    start: start as u32,
                    tags: r.tags.len as u8,
                    attributes: attributes.len as u8,
                    inline,
                }
            })
            .collect();
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
        let rules_prior = self.config.prior;
        let placements = cat
            .placements
            .iter()
            .map(|p| {
                // What a creative scores with no persona match: its unmatched value, and
                // its static bound in the persona lists.
                let static_of = |c: CreativeId| {
                    let r = &cat.rules[c.index()];
                    if learned {
                        bound[c.index()]
                    } else {
                        r.priority * rules_prior * r.max_boost
                    }
                };
                let mut unmatched: Vec<(f32, CreativeId)> =
                    p.candidates.iter().map(|&c| (static_of(c), c)).collect();
                let set = |c: CreativeId| combo_of.get(c.index()).copied().unwrap_or(0);
                unmatched.sort_by(|a, b| set(a.1).cmp(&set(b.1)).then(desc(a, b)));
                let mut unmatched_start = Vec::with_capacity(combos + 1);
                for k in 0..combos as u32 {
                    unmatched_start.push(unmatched.partition_point(|e| set(e.1) < k) as u32);
                }
                unmatched_start.push(unmatched.len() as u32);
                let ranks = if learned { TAG_RANKS } else { 1 };
                let mut entries: Vec<Entry> = Vec::with_capacity(p.persona_members.len());
                let mut offsets = Vec::with_capacity(cat.menu.len() * ranks + 1);
                let (mut bands, mut band_offsets) =
                    (Vec::new(), Vec::with_capacity(cat.menu.len() * ranks + 1));
                for persona in 0..cat.menu.len() {
                    for rank in 0..ranks {
                        offsets.push(entries.len() as u32);
                        band_offsets.push(bands.len() as u32);
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
                            entries.push(Entry { b: value, a: static_of(c), id: c });
                        }
                        band_list(&mut entries[start..], &mut bands);
                    }
                }
                offsets.push(entries.len() as u32);
                band_offsets.push(bands.len() as u32);
                let (template_offsets, template_entries) = template_lists(p);
                PlacementIndex {
                    unmatched,
                    unmatched_start,
                    persona_offsets: offsets,
                    persona_entries: entries,
                    band_offsets,
                    bands,
                    template_offsets,
                    template_entries,
                }
            })
            .collect();
        PruneIndex {
            generation,
            prior,
            spread,
            learned,
            placements,
            bound: bound.into(),
            variance,
            screen,
            screen_items: screen_items.into(),
            attribute,
            attribute_name,
            combo_start: combo_start.into(),
            combo_values: combo_values.into(),
            events: Padded(AtomicU64::new(0)),
            raised: (0..if learned { n } else { 0 }).map(|_| AtomicU32::new(u32::MAX)).collect(),
            raised_len: AtomicUsize::new(0),
            listed: (0..if learned { n } else { 0 }).map(|_| AtomicBool::new(false)).collect(),
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
    /// that bounds learning lowered tighten again, and the spreads are learned afresh),
    /// or once 1/16 of the catalog (at most [`MAX_RAISED`]) was raised, or when stale,
    /// or when an attribute
    /// value's base moved by more than [`ATTRIBUTE_REBASE`] (these three keep the
    /// spreads). An index that does not prune on the learned model is still rebuilt on
    /// the same count when the spreads are learned, to carry the new ones (see
    /// `learn::spread`).
    pub(crate) fn note_learned(&self, creative: CreativeId) {
        // The model's weights moved before this call. The order under rebuild is read
        // first and the stored one after (see `rebuild_prune_index` for why this order,
        // and the fence, leave no event uncovered).
        std::sync::atomic::fence(Ordering::SeqCst);
        let next = self.prune_next.load();
        let index = self.prune.load();
        if let Some(next) = next.as_ref().filter(|n| n.learned && !Arc::ptr_eq(n, &index)) {
            let _ = self.raise_in(next, creative);
        }
        if !index.learned && !self.config.learning.learn_spread {
            return;
        }
        let events = index.events.fetch_add(1, Ordering::Relaxed) + 1;
        let spreads_due = events as usize >= self.catalog.len().max(1_024);
        let mut rebuild = spreads_due;
        if index.learned {
            rebuild |= self.raise_in(&index, creative) || self.attribute_base_moved(&index, creative);
        }
        if rebuild {
            if let Ok(_guard) = self.rebuild.try_lock() {
                if self.prune.load().generation == index.generation {
                    self.rebuild_prune_index(spreads_due);
                }
            }
        }
    }

    /// Whether the base of one of `creative`'s attribute values (see
    /// [`PruneIndex::attribute`]) moved by more than [`ATTRIBUTE_REBASE`] from the one
    /// `index` folded into its bounds. The bounds are still exact (each request allows
    /// for the effect beyond the base), but the walk's bounds loosen as the base falls
    /// behind: a rebuild folds it in afresh.
    fn attribute_base_moved(&self, index: &PruneIndex, creative: CreativeId) -> bool {
        if index.attribute_name.is_empty() {
            return false;
        }
        let cat = &*self.catalog;
        let span = cat.attribute_span.get(creative.index()).copied().unwrap_or_default();
        cat.attribute_value[span.range()].iter().any(|&a| {
            let a = a as usize;
            index
                .attribute
                .get(a)
                .is_some_and(|&built| (self.attribute_base(a, &index.prior) - built).abs() > ATTRIBUTE_REBASE)
        })
    }

    /// Raises creative `creative`'s bounds in `index` where its weights now exceed
    /// them (listing it as raised), and marks `index` stale if one of its attributes'
    /// effects outgrew its margin. Returns whether a rebuild is due.
    fn raise_in(&self, index: &PruneIndex, creative: CreativeId) -> bool {
        let c = creative.index();
        let cat = &*self.catalog;
        let mut rebuild = false;
        let span = cat.attribute_span.get(c).copied().unwrap_or_default();
        for &a in &cat.attribute_value[span.range()] {
            let a = a as usize;
            // (Read per request instead when the index names the attributes.)
            if index.attribute_name.is_empty()
                && index.attribute.get(a).is_some_and(|&built| self.attribute_effect(a) > built)
            {
                index.stale.store(true, Ordering::Release);
                rebuild = true;
            }
        }
        let raised = match (index.bound.get(c), index.variance.get(c)) {
            (Some(&built), Some(&var)) => {
                let now = self.learned_bound(&index.prior, c, &index.attribute, var);
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
                    let own = index.screen.get(c).map(|s| &s.raised);
                    for slot in own.into_iter().chain(template).chain(top) {
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
            rebuild |= at + 1 >= (index.raised.len() / 16).clamp(MIN_RAISED, MAX_RAISED);
        }
        rebuild
    }

    /// Builds the next index and stores it once it covers every event. Another
    /// thread's `record` may move weights after the build read them; the new index is
    /// therefore published as `prune_next` first, then every creative is checked
    /// against it once more, and only then is it stored (requests keep the old index,
    /// which `record` keeps raising, until then). A `record` (weights moved, a SeqCst
    /// fence, `prune_next` read, then `prune` read) either sees the index under
    /// rebuild and raises it itself, or read `prune_next` before it was published, so
    /// the re-check (after a fence of its own) reads its weights, or read it after it
    /// was cleared, so it reads the stored new index in `prune` and raises that.
    ///
    /// The spreads are learned afresh (`spreads`) only on their own count of events (and
    /// after a load, merge or save); a rebuild that only the bounds called for (raised
    /// creatives, an attribute's effect or base moved) keeps them and carries the count
    /// on. So what the model scores with never depends on when the pruning index needed
    /// rebuilding for its bounds' sake.
    fn rebuild_prune_index(&self, spreads: bool) {
        let current = self.prune.load();
        let generation = current.generation.wrapping_add(1);
        let keep = (!spreads).then_some(current.spread);
        let next = Arc::new(self.build_prune_index(generation, keep));
        if next.learned {
            self.prune_next.store(Some(Arc::clone(&next)));
            std::sync::atomic::fence(Ordering::SeqCst);
            for c in 0..self.catalog.len() {
                let _ = self.raise_in(&next, CreativeId(c as u32));
            }
        }
        if !spreads {
            // (Read last: the events counted on the current index while this one was
            // built count towards the next refresh too.)
            next.events.store(current.events.load(Ordering::Relaxed), Ordering::Relaxed);
        }
        self.prune.store(next);
        self.prune_next.store(None);
    }

    /// After a load or merge changed many weights at once.
    pub(crate) fn after_bulk_change(&self) {
        let _guard = self.rebuild.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.rebuild_prune_index(true);
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
        // Debug builds: whether a write to the learned state is under way, taken before
        // the index is loaded (a write that ends before then has raised its bounds in
        // the index loaded here, or replaced it).
        #[cfg(debug_assertions)]
        let quiet = self.writes.quiet();
        let cat = &*self.catalog;
        let index = self.prune.load();
        let learned = env.policy != Policy::Rules;
        // A rebuild since the request began may have changed the prior its candidates
        // were scored with: the full scan then serves it.
        if learned != index.learned || index.stale.load(Ordering::Acquire) || index.prior != env.prior {
            return false;
        }
        let Some(pi) = index.placements.get(placement.0 as usize) else { return false };
        // The key in the index's space: the rules score, or the log of the learned one.
        let key = |s: &Scored| if learned { s.key.max(f32::MIN_POSITIVE).ln() } else { s.base };
        let stamp = selection.next_stamp(cat.len());
        selection.attribute_allowance = if learned {
            attribute_allowance(
                &index.attribute_name,
                &selection.attribute_terms,
                &index.attribute,
                &mut selection.name_best,
            )
        } else {
            0.0
        };
        selection.topk.clear();
        selection.cursors.clear();
        selection.skipped.clear();
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
                    // A negative shared part lowers what the list's own creatives score,
                    // not what they can add to another list's (`shared`, clipped at 0).
                    let signed = selection.persona_terms.get(list).map_or(0.0, |t| t.0 as f32);
                    let own = (signed + prior).max(0.0);
                    if own > 0.0 {
                        let (persona, list) = (p as u32, list as u32);
                        selection.cursors.push(Cursor { weight, own, persona, list, ..Cursor::default() });
                    }
                }
            } else if selection.persona_weight[p] > 0.0 {
                selection.cursors.push(Cursor {
                    weight: selection.persona_weight[p],
                    own: selection.persona_weight[p],
                    persona: p as u32,
                    list: p as u32,
                    ..Cursor::default()
                });
            }
        }
        fill_band_bounds(
            &mut selection.cursors,
            &mut selection.groups,
            &mut selection.band_tree,
            &mut selection.band_pos,
            pi,
        );
        // The unmatched order, per set of attribute values: where each set's next
        // candidate is, and what its values add at this moment beyond the allowance
        // (the allowance assumes every candidate has the best value per name).
        selection.unmatched_pos.clear();
        selection.combo_offset.clear();
        selection.unmatched_head.clear();
        let sets = pi.unmatched_start.len().saturating_sub(1);
        for k in 0..sets {
            selection.unmatched_pos.push(pi.unmatched_start[k]);
            let values = match (index.combo_start.get(k), index.combo_start.get(k + 1)) {
                (Some(&a), Some(&b)) if learned && selection.attribute_allowance.is_finite() => {
                    index.combo_values.get(a as usize..b as usize)
                }
                _ => None,
            };
            // Summed as `prescreen` sums a creative's effects.
            let effect = values.and_then(|values| {
                attribute_effect(values.iter().copied(), &selection.attribute_terms, &index.attribute)
            });
            let offset = effect.map_or(0.0, |e| e.max(0.0) as f32 - selection.attribute_allowance);
            selection.combo_offset.push(offset);
            selection.unmatched_head.push(unmatched_head(pi, k, pi.unmatched_start[k], offset));
        }
        let mut unmatched = next_unmatched(pi, &selection.unmatched_head, &selection.unmatched_pos);
        let raised = index.raised_len.load(Ordering::Acquire).min(index.raised.len());
        // Epsilon-greedy with a reach draws in `choose`: each pass draws from the same
        // start, so the last pass draws what the full scan would.
        let reach = self.config.learning.reach_under(env.policy).is_some();
        let rng_start = *rng;
        let mut target = selection.floor();
        let mut adaptive = true;
        // Whether `target` is the lowest draw Thompson's propensities depend on.
        let mut supported = false;
        loop {
            loop {
                // The bound on anything unseen, and the list contributing most to it.
                if unmatched.1 == usize::MAX {
                    break; // every candidate has been seen
                }
                let (tau, next) = scan_bound(&selection.groups, unmatched.0);
                if adaptive {
                    target = target.max(selection.floor());
                }
                if tau < target {
                    break;
                }
                let cid = match selection.groups.get_mut(next) {
                    Some(group) => {
                        // The group's list whose unseen entries bound highest.
                        let cursors = &mut selection.cursors[group.start as usize..group.end as usize];
                        let Some(cur) = cursors.iter_mut().max_by(|a, b| a.x.total_cmp(&b.x)) else {
                            break;
                        };
                        // The next entry of its best band, then that band's next.
                        let slot = (cur.suffix + cur.best) as usize;
                        let Some(pos) = selection.band_pos.get_mut(slot) else { break };
                        let Some(band) = cur.bands(pi).get(cur.best as usize) else { break };
                        let entries = cur.entries as usize;
                        if *pos >= band.end {
                            break; // (its best band bounds at −∞ only once it has no entry)
                        }
                        let Some(entry) = pi.persona_entries.get(entries + *pos as usize) else { break };
                        *pos += 1;
                        // The band's next entry bounds it, or −∞ once it has none left.
                        let next = match pi.persona_entries.get(entries + *pos as usize) {
                            Some(e) if *pos < band.end => e.a + cur.own * band.b,
                            _ => f32::NEG_INFINITY,
                        };
                        let (at, leaves) = (cur.tree as usize, cur.leaves as usize);
                        if let Some(tree) = selection.band_tree.get_mut(at..at + 2 * leaves) {
                            BandTree::set(tree, leaves, cur.best as usize, next);
                        }
                        cur.refresh(pi, &selection.band_tree, &selection.band_pos);
                        group.refresh(&selection.cursors);
                        entry.id
                    }
                    None => {
                        let k = unmatched.1;
                        let Some(pos) = selection.unmatched_pos.get_mut(k) else { break };
                        let Some(&(_, cid)) = pi.unmatched.get(*pos as usize) else { break };
                        *pos += 1;
                        let offset = selection.combo_offset.get(k).copied().unwrap_or(0.0);
                        if let Some(head) = selection.unmatched_head.get_mut(k) {
                            *head = unmatched_head(pi, k, *pos, offset);
                        }
                        unmatched = next_unmatched(pi, &selection.unmatched_head, &selection.unmatched_pos);
                        cid
                    }
                };
                if learned && cid.0 < cat.templates.first {
                    // A cheaper, tighter bound first: most of what the index had to take
                    // at its widest is known for this creative now.
                    let Some(seen) = selection.seen.get(cid.index()) else { continue };
                    if *seen == stamp {
                        continue;
                    }
                    let floor = if adaptive { selection.floor() } else { target };
                    let bound = self.prescreen(&index, cid.index(), env, selection, floor);
                    #[cfg(debug_assertions)]
                    if quiet.is_some() {
                        // Every debug build checks the bound against the full score (while
                        // no other thread writes the learned state, see `Writes`); for
                        // Thompson against the draw the bound allows for, DRAW_SPREAD
                        // standard deviations out, not against one random draw.
                        let scored = self.evaluate(cid, profile, env, selection);
                        let most = |s: &Scored| match env.policy {
                            Policy::Thompson => {
                                let draw = f64::from(s.logit) + DRAW_SPREAD * f64::from(s.sd);
                                (f64::from(s.priority) * sigmoid(draw)).max(f64::MIN_POSITIVE).ln() as f32
                            }
                            Policy::EpsilonGreedy { .. } => s.reach.max(f32::MIN_POSITIVE).ln(),
                            _ => key(s),
                        };
                        let over = scored.map(|s| most(&s) - selection.attribute_allowance - bound);
                        debug_assert!(
                            !quiet.is_some_and(|mark| self.writes.still(mark))
                                || over.is_none_or(|o| o <= 1e-4 * bound.abs().max(1.0)),
                            "prescreen bound {bound} below the score of {cid:?} by {over:?} ({:?})",
                            env.policy
                        );
                    }
                    if bound < floor {
                        selection.seen[cid.index()] = stamp;
                        if bound > f32::NEG_INFINITY {
                            selection.skipped.push((bound, cid));
                        }
                        continue;
                    }
                }
                self.visit(cid, stamp, profile, env, selection, &key);
            }
            // Candidates passed over by their own bound, should a deeper pass need them.
            if !adaptive {
                self.scan_skipped(target, profile, env, selection, &key);
            }
            // Creatives whose bound rose since the index was built: scored when their
            // raised bound can still reach the k-th best.
            let floor = if adaptive { None } else { Some(target) };
            // Templates are not in the lists (their score is assembled): each is scored
            // when its own bound reaches the k-th best.
            self.scan_templates(&index, pi, place, floor, stamp, profile, env, selection, &key);
            self.scan_raised(&index, raised, place, floor, stamp, profile, env, selection, &key);
            let rank = |s: &Scored| if learned { s.key } else { s.base };
            // Thompson's propensities wait for the last pass (a deeper pass may score
            // more of the rivals they count; it does not change the picks).
            selection.defer_propensity = env.policy == Policy::Thompson;
            *rng = rng_start;
            self.choose(selection, env.policy, rank, rng, false);
            // The diversity rules may have skipped some of the raw top k: the picks are
            // final only when nothing unscored could beat the last of them. Once every
            // candidate has been offered, what is left unscored is what the second
            // bound passed over, and raised creatives and templates below the floor.
            // Thompson: a pick's propensity counts every rival whose draw could beat the
            // pick's where the rivals leave it a chance, so the picks are final only once
            // every candidate whose bound reaches the lowest such draw of a pick is
            // scored. (They cannot change the picks: their draws stay below their
            // bounds, below the picks' draws. Each one scored can only raise that
            // lowest draw, so the passes end.)
            let last = match selection.picks.last() {
                // After a pass down to that draw, it stands where it was or higher: the
                // pass is enough.
                Some(_) if selection.picks.len() >= selection.k && supported => target,
                Some(_)
                    if selection.picks.len() >= selection.k && env.policy == Policy::Thompson && learned =>
                {
                    // The first slot last: its rivals' placement is kept for its
                    // propensity (see `Selector::thompson_support`).
                    let mut lowest = f64::INFINITY;
                    for slot in (0..selection.picks.len()).rev() {
                        lowest = lowest.min(self.thompson_support(selection, slot));
                    }
                    tie_floor(lowest as f32) - selection.attribute_allowance
                }
                // Epsilon-greedy with a reach: every candidate whose reach attains a
                // slot's greedy choice may be drawn, and each pass bounds the reach.
                Some(_) if selection.picks.len() >= selection.k && reach => {
                    tie_floor(selection.least_greedy.max(f32::MIN_POSITIVE).ln())
                        - selection.attribute_allowance
                }
                Some(p) if selection.picks.len() >= selection.k => {
                    tie_floor(if learned { p.score.max(f32::MIN_POSITIVE).ln() } else { p.score })
                        - selection.attribute_allowance
                }
                _ => f32::NEG_INFINITY,
            };
            let offered_all = unmatched.1 == usize::MAX;
            let tau =
                if offered_all { f32::NEG_INFINITY } else { scan_bound(&selection.groups, unmatched.0).0 };
            // What is left unscored is looked at only when the lists no longer reach
            // the last pick (the raised and template checks walk their lists).
            if tau < last || offered_all {
                let pending = selection.skipped.iter().map(|s| s.0).fold(f32::NEG_INFINITY, f32::max);
                let pending = pending
                    .max(self.raised_pending(&index, raised, place, stamp, selection))
                    .max(self.templates_pending(place, stamp, selection));
                if (tau < last && pending < last) || (offered_all && pending == f32::NEG_INFINITY) {
                    break;
                }
            }
            // Short of k picks (the diversity rules turned candidates away): the best
            // bound among the candidates passed over that the rules would still allow.
            let allowed = if learned && selection.picks.len() < selection.k {
                let max_theme = usize::from(self.config.max_per_persona);
                let missing = selection.k - selection.picks.len();
                selection.allowed_top.clear();
                for &(bound, cid) in &selection.skipped {
                    if bound > f32::NEG_INFINITY
                        && super::policy::diverse(&cat.rules, &selection.picks, cid, max_theme)
                    {
                        push_top(&mut selection.allowed_top, missing, bound);
                    }
                }
                selection.allowed_top.last().copied().unwrap_or(f32::NEG_INFINITY)
            } else {
                f32::NEG_INFINITY
            };
            selection.picks.clear();
            for s in selection.scored.iter_mut() {
                s.taken = false;
            }
            // Short of k picks, look deeper a step at a time rather than at everything:
            // halve the bound to reach, or less when a candidate passed over that the
            // diversity rules allow bounds higher (it is then scored, and the walk goes
            // on down to it).
            supported = env.policy == Policy::Thompson && learned && last > f32::NEG_INFINITY;
            target = if last > f32::NEG_INFINITY {
                last
            } else if offered_all {
                f32::NEG_INFINITY
            } else if learned {
                (tau - std::f32::consts::LN_2).max(allowed)
            } else if tau <= f32::MIN_POSITIVE {
                last
            } else {
                tau * 0.5
            };
            adaptive = false;
        }
        if selection.defer_propensity {
            selection.defer_propensity = false;
            selection.picks.clear();
            for s in selection.scored.iter_mut() {
                s.taken = false;
            }
            let rank = |s: &Scored| if learned { s.key } else { s.base };
            self.choose(selection, env.policy, rank, rng, false);
        }
        // A skipped candidate was not scored, and may be eligible: it must not look
        // settled to what reads the stamps next (epsilon-greedy's eligible count).
        for &(_, cid) in &selection.skipped {
            if let Some(seen) = selection.seen.get_mut(cid.index()) {
                *seen = stamp.wrapping_sub(1);
            }
        }
        true
    }

    /// A bound on what creative `c` scores in this request (index space: attribute
    /// effects the request allows for are left out, as in [`Selection::floor`]), tighter
    /// than the one that took it from the index: its own static bound (raised, if it
    /// rose) and persona parts, its attribute values' effects at this moment instead of
    /// the request's allowance, and the boosts that match and its fatigue instead of the
    /// largest boost and none. −∞ when it cannot be shown at all (request filters,
    /// dismissed, capped). First a linear bound in `ln key` (each part that raises the
    /// log-odds taken at the steepest slope of `ln key`); the parts that can only lower
    /// it (request filters, fatigue, boosts, Thompson's narrower draw) are read only
    /// when that reaches `floor`: below it the candidate is passed over either way.
    /// Then, for greedy and ε-greedy, every part is summed in log-odds and turned into
    /// a key once (exact up to the static bound); Thompson lowers the linear bound by
    /// each lowering part times the least slope of `ln key` there, `(1 − rate) / s_max`.
    fn prescreen(&self, index: &PruneIndex, c: usize, env: &Env, selection: &Selection, floor: f32) -> f32 {
        let cat = &*self.catalog;
        let Some(screen) = index.screen.get(c) else { return f32::INFINITY };
        let (slope, least) = (screen.slope(), screen.least);
        let raised = f32::from_bits(screen.raised.load(Ordering::Acquire));
        let mut bound = screen.bound.max(raised);
        let (tags, attributes) = screen.items(&index.screen_items);
        // What lowers the log-odds below the static bound, and what raises them.
        let mut lower = 0.0f32;
        let mut raise = 0.0f32;
        let mut prior = 0.0f32;
        // The same parts in log-odds, for the exact bound below: the shared weights'
        // (signed), the best tag's prior, the attribute effects (signed).
        let (mut shared, mut prior_logit, mut effect_logit) = (0.0f64, 0.0f32, 0.0f64);
        for tag in tags {
            let list = tag.key as usize;
            if selection.person_score.get(list / TAG_RANKS).is_some_and(|&s| s > 0) {
                let w = tag.weight;
                let learned_mean = selection.persona_terms.get(list).map_or(0.0, |t| t.0);
                // The shared weights' part as scoring adds it (signed), and the prior's
                // for this tag (the creative takes its best tag's).
                shared += learned_mean * f64::from(w);
                let learned = learned_mean as f32 * w;
                if learned >= 0.0 {
                    bound += learned * slope;
                } else {
                    lower -= learned;
                }
                let tag_prior = self.list_factors(selection, list).1 * w;
                prior_logit = prior_logit.max(tag_prior);
                prior = prior.max(tag_prior * slope);
            }
        }
        bound += prior;
        if !index.attribute_name.is_empty() {
            let values = attributes.iter().map(|a| a.key);
            let Some(effect) = attribute_effect(values, &selection.attribute_terms, &index.attribute) else {
                return f32::INFINITY;
            };
            effect_logit = effect;
            if effect > 0.0 {
                raise = effect as f32;
            } else {
                lower -= effect as f32;
            }
        }
        // What follows only lowers the bound: a candidate already below the floor is
        // passed over without it (the request filters, fatigue, boosts).
        let most = bound + raise - selection.attribute_allowance;
        if most < floor {
            return most;
        }
        let Some(r) = cat.rules.get(c) else { return f32::INFINITY };
        if !env.admits(cat, &crate::catalog::Gate::of(r)) {
            return f32::NEG_INFINITY;
        }
        let Some(fatigue) = selection.fatigue_of(CreativeId(c as u32)) else { return f32::NEG_INFINITY };
        if fatigue != 1.0 {
            lower -= fatigue.ln();
        }
        // Thompson: how much narrower this request's draw is than the widest the static
        // bound allows for, in log-odds.
        let mut narrowed = 0.0f64;
        if env.policy == Policy::Thompson {
            // The draw's spread at this request's own variance rather than the widest
            // the creative could have: its own weights and its device and daypart
            // crosses as they are now, its segment cross at the prior (which only
            // shrinks). Not the candidate's own draw: Thompson's propensity counts every
            // rival that some draw within DRAW_SPREAD could make the winner, so each must
            // be scored, not only the ones this draw lets win.
            let (device, daypart) = (env.when.device.min(DEVICES - 1), env.when.daypart.min(DAYPARTS - 1));
            let prior = &index.prior;
            let var = self.own_variance(prior, c, 0)
                + self.own_variance(prior, c, 1 + device)
                + self.own_variance(prior, c, 1 + DEVICES + daypart)
                + 1.0 / prior.q0_segment;
            let scale = self.config.learning.thompson_scale;
            let widest = index.variance.get(c).copied().unwrap_or(f64::INFINITY);
            let narrower = DRAW_SPREAD * ((widest * scale).sqrt() - (var * scale).sqrt());
            if narrower > 0.0 {
                lower += narrower as f32;
                narrowed = narrower;
            }
        }
        let shortfall = if r.max_boost > 1.0 {
            let (boost, _) = self.context_boost(r, env);
            (r.max_boost / boost.max(f32::MIN_POSITIVE)).ln().max(0.0)
        } else {
            0.0
        };
        lower += shortfall;
        let bound = bound + raise;
        // The least slope of `ln key` in the log-odds below the bound: the rate is at
        // most `e^bound / priority`. (A hair more than the rate, for the rounding of
        // `f32`.)
        let linear = if lower > 0.0 {
            let rate = (bound.exp() / r.priority.max(f32::MIN_POSITIVE) * 1.0001).min(1.0);
            bound - lower * (1.0 - rate) * least - selection.attribute_allowance
        } else {
            bound - selection.attribute_allowance
        };
        // A request for more than one pick keeps the linear bound: the diversity rules
        // may need candidates below the k-th best, and with the tighter bound the first
        // pass scored fewer of them, its k-th pick came out lower, and the walk went
        // down to it (100,000 candidates, k = 5: 235 → 900 scored in full). Thompson
        // takes the tighter bound too: the scan then goes on down to every rival its
        // propensities count (see `scan_pruned`).
        if linear < floor || selection.k > 1 {
            return linear;
        }
        // Greedy's key in log-odds, for a candidate the linear bound would have scored:
        // the static bound is `ln priority + ln σ(L / s)` of a static log-odds bound `L`
        // (see `key_of_logit`), so it is turned back into `L`, the request's parts are
        // added exactly, and the sum is turned into a key once. The linear bound, with
        // each part taken at its steepest or shallowest slope, let through about ten
        // times as many candidates that then scored below the floor (cold, one high
        // persona, 100,000 candidates).
        let ln_priority = f64::from(r.priority.max(f32::MIN_POSITIVE).ln());
        let mut logit = f64::from(screen.logit);
        if raised > screen.bound {
            logit = logit.max(logit_of_key(f64::from(raised) - ln_priority, least));
        }
        logit += shared + f64::from(prior_logit) + effect_logit - f64::from(shortfall) - narrowed;
        if fatigue != 1.0 {
            logit += f64::from(fatigue.ln());
        }
        // (A hair above, for rounding.)
        let exact = ln_priority + key_of_logit(logit, least);
        let exact = (exact + 1e-5 * exact.abs().max(1.0)) as f32 - selection.attribute_allowance;
        exact.min(linear)
    }

    /// Scores the skipped candidates whose bound reaches `floor` (see
    /// [`Selector::prescreen`]).
    fn scan_skipped(
        &self,
        floor: f32,
        profile: &Profile,
        env: &Env,
        selection: &mut Selection,
        key: &impl Fn(&Scored) -> f32,
    ) {
        for i in 0..selection.skipped.len() {
            let (bound, cid) = selection.skipped[i];
            if bound >= floor {
                selection.skipped[i].0 = f32::NEG_INFINITY;
                self.score(cid, profile, env, selection, key);
            }
        }
    }

    /// The bound of raised creative `c` for this person: its raised static bound plus,
    /// per persona list it is on, the person's factor times its entry's value.
    fn raised_bound_of(&self, index: &PruneIndex, c: usize, selection: &Selection) -> f32 {
        let Some(screen) = index.screen.get(c) else { return f32::INFINITY };
        let slope = screen.slope();
        let mut bound = f32::from_bits(screen.raised.load(Ordering::Acquire));
        let mut prior = 0.0f32;
        let (tags, _) = screen.items(&index.screen_items);
        for tag in tags {
            let list = tag.key as usize;
            if selection.person_score.get(list / TAG_RANKS).is_some_and(|&s| s > 0) {
                // The shared weights add up over the tags; the prior takes the best one.
                let (learned, lent) = self.list_factors(selection, list);
                let w = slope * tag.weight;
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
        key: &impl Fn(&Scored) -> f32,
    ) {
        for slot in &index.raised[..raised] {
            let cid = CreativeId(slot.load(Ordering::Acquire));
            if selection.seen.get(cid.index()).is_none_or(|&s| s == stamp) {
                continue;
            }
            // The bound first: one record to read, where the placement's list is a
            // search through many.
            let target = floor.unwrap_or_else(|| selection.floor());
            if self.raised_bound_of(index, cid.index(), selection) < target
                || place.candidates.binary_search(&cid).is_err()
            {
                continue;
            }
            // The second bound first, as for a candidate the lists offer: a creative
            // raised by one lucky click is seldom the best for this request.
            if cid.0 < self.catalog.templates.first {
                let bound = self.prescreen(index, cid.index(), env, selection, target);
                if bound < target {
                    if let Some(seen) = selection.seen.get_mut(cid.index()) {
                        *seen = stamp;
                    }
                    if bound > f32::NEG_INFINITY {
                        selection.skipped.push((bound, cid));
                    }
                    continue;
                }
            }
            self.visit(cid, stamp, profile, env, selection, key);
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
            if selection.seen.get(cid.index()).is_none_or(|&s| s == stamp) {
                continue;
            }
            let bound = self.raised_bound_of(index, cid.index(), selection);
            if bound > most && place.candidates.binary_search(&cid).is_ok() {
                most = bound;
            }
        }
        most
    }

    /// Scores `cid` once per request (the stamp dedupes the lists it appears in).
    #[inline]
    pub(super) fn visit(
        &self,
        cid: CreativeId,
        stamp: u32,
        profile: &Profile,
        env: &Env,
        selection: &mut Selection,
        key: &impl Fn(&Scored) -> f32,
    ) {
        let Some(seen) = selection.seen.get_mut(cid.index()) else { return };
        if *seen == stamp {
            return;
        }
        *seen = stamp;
        self.score(cid, profile, env, selection, key);
    }

    /// Scores `cid` in full (once per request: the caller keeps track).
    #[inline]
    fn score(
        &self,
        cid: CreativeId,
        profile: &Profile,
        env: &Env,
        selection: &mut Selection,
        key: &impl Fn(&Scored) -> f32,
    ) {
        selection.visited += 1;
        if let Some(s) = self.evaluate(cid, profile, env, selection) {
            push_top(&mut selection.topk, selection.k, key(&s));
            selection.scored.push(s);
        }
    }
}
