//! Replaying decisions off the hot path: which creatives were eligible for a request,
//! and with what probability a candidate policy would have chosen each. Both re-run
//! [`Selector::select`] (some policies several times per decision) and allocate; never
//! call them while serving a request that has a latency budget.

use ahash::AHashSet;

use crate::catalog::{CreativeId, PlacementId};
use crate::context::Context;
use crate::error::Result;
use crate::learn::{Policy, Rng};
use crate::profile::Profile;
use crate::select::{Pick, ReasonKind, Selection, Selector, MAX_K};

/// Lists the creatives eligible for a request: every creative that passes the hard
/// filters (placement, schedule, targeting, consent, intimacy, frequency cap, the
/// person's rejections and dislikes, the selection's exclusions), or, when none does,
/// the placement's usable fallbacks.
///
/// The selection does not expose its candidates (and with pruning it never looks at
/// all of them), so this runs eligibility again with a private selector over the same
/// catalog and configuration, under [`Policy::Rules`], with no diversity limit, asking
/// for up to [`MAX_K`] picks and repeating with the picks excluded until nothing new
/// comes back (exclusion groups keep two creatives of a group out of one selection).
/// Each pick scans the remaining candidates, so a request costs about
/// `candidates × eligible` comparisons. Build one per thread and reuse it.
#[derive(Debug)]
pub struct Eligibility {
    lister: Selector,
    selection: Selection,
    picks: Vec<Pick>,
}

impl Eligibility {
    /// A lister for requests to `selector` (same catalog and trust rules).
    pub fn new(selector: &Selector) -> Result<Self> {
        let mut config = *selector.config();
        config.learning.policy = Policy::Rules;
        config.max_per_persona = 0;
        let lister = Selector::new(selector.catalog_arc().clone(), config)?;
        let selection = lister.new_selection(MAX_K);
        Ok(Eligibility { lister, selection, picks: Vec::new() })
    }

    /// The eligible creatives for `profile` in `context` at `placement`, in catalog
    /// order, into `out` (cleared first).
    pub fn list(
        &mut self,
        profile: &Profile,
        context: &Context,
        placement: PlacementId,
        out: &mut Vec<CreativeId>,
    ) -> Result<()> {
        out.clear();
        list_all(&self.lister, &mut self.selection, profile, context, placement, &mut self.picks)?;
        out.extend(self.picks.iter().map(|p| p.creative));
        out.sort_unstable();
        Ok(())
    }
}

/// Every eligible creative with the score `selector` gives it, by repeated selections
/// with the picks excluded (or the fallbacks, when nothing else is eligible). Returns
/// true when the picks are fallbacks.
fn list_all(
    selector: &Selector,
    selection: &mut Selection,
    profile: &Profile,
    context: &Context,
    placement: PlacementId,
    out: &mut Vec<Pick>,
) -> Result<bool> {
    out.clear();
    selection.clear_exclusions();
    loop {
        selector.select(profile, context, placement, selection)?;
        let picks = selection.picks();
        if picks.is_empty() {
            return Ok(false);
        }
        if picks.iter().all(|p| p.reason.kind == ReasonKind::Fallback) {
            if out.is_empty() {
                out.extend_from_slice(picks);
                return Ok(true);
            }
            return Ok(false);
        }
        let start = out.len();
        out.extend_from_slice(picks);
        for p in &out[start..] {
            selection.exclude(p.creative);
        }
    }
}

/// The probability with which a candidate selector would give the first slot to each
/// creative, for a replayed request.
///
/// - [`Policy::Rules`] and [`Policy::Greedy`] are deterministic: probability 1 for the
///   pick.
/// - Epsilon-greedy and softmax are computed exactly from the candidate's scores: a
///   private greedy selector with the candidate's configuration and a copy of its
///   learned statistics lists every eligible creative with its estimate (the key both
///   policies rank by), and the policy's formula does the rest, as `select` does. For
///   epsilon-greedy with an [`explore_reach`](crate::LearningConfig::explore_reach), a
///   second one lists each creative's reach (the key with the optimism raised by it),
///   which decides the creatives explored among.
/// - Thompson sampling has no closed form: the probabilities are the pick frequencies of
///   `draws` selections with different seeds (derived from the request's seed, so the
///   estimate is reproducible). Their noise averages out in IPS and DR (the estimate of
///   each probability is unbiased) but widens the intervals a little.
///
/// With `allowed`, the candidate may only choose among those creatives (the ones the log
/// says were eligible), like a caller excluding the others: the replayed profile has no
/// memory of exposures or rejections, and this keeps the candidate from choosing what
/// was capped or rejected at the time.
#[derive(Debug)]
pub struct CandidatePolicy<'a> {
    selector: &'a Selector,
    one: Selection,
    ranker: Option<(Selector, Selection)>,
    /// Epsilon-greedy with a reach: a greedy selector whose key is the reach (its
    /// optimism raised by `explore_reach`), and per creative the reach it listed.
    reacher: Option<(Selector, Selection)>,
    reach: Vec<f32>,
    reach_picks: Vec<Pick>,
    draws: u32,
    picks: Vec<Pick>,
    slate: Option<Selection>,
}

impl<'a> CandidatePolicy<'a> {
    /// The candidate `selector`, with `draws` selections per decision for Thompson
    /// sampling (at least 1). The candidate's statistics are read, never changed.
    pub fn new(selector: &'a Selector, draws: u32) -> Result<Self> {
        // Private greedy selectors over a copy of the candidate's statistics (one
        // snapshot for both): `ranker` ranks by greedy's key with the policy's optimism
        // (epsilon-greedy's greedy choice takes it, softmax weighs the posterior means);
        // `reacher`, for epsilon-greedy with a reach, by the key its exploring draw
        // compares, `m + (lift + reach)·sd` (the first look's share of the lift kept as it
        // is: exact when it is 0, the default).
        let learning = &selector.config().learning;
        let policy = learning.policy;
        let (ranked, reaching) = match policy {
            Policy::EpsilonGreedy { .. } | Policy::Softmax { .. } => (true, learning.reach_under(policy)),
            _ => (false, None),
        };
        let snapshot = ranked.then(|| selector.save_stats());
        let greedy = |optimism: f64, first_look: f64| -> Result<Option<(Selector, Selection)>> {
            let Some(snapshot) = &snapshot else { return Ok(None) };
            let mut config = *selector.config();
            config.learning.policy = Policy::Greedy;
            config.learning.optimism = optimism;
            config.learning.first_look = first_look;
            config.max_per_persona = 0;
            config.prune = false;
            let ranker = Selector::new(selector.catalog_arc().clone(), config)?;
            let _same_catalog = ranker.load_stats(snapshot)?;
            let selection = ranker.new_selection(MAX_K);
            Ok(Some((ranker, selection)))
        };
        let optimism = learning.optimism_under(policy);
        let ranker = greedy(optimism, learning.first_look)?;
        let reacher = match reaching {
            Some(reach) => {
                let raised = optimism + reach;
                greedy(raised, if raised > 0.0 { learning.first_look * optimism / raised } else { 0.0 })?
            }
            None => None,
        };
        Ok(CandidatePolicy {
            selector,
            one: selector.new_selection(1),
            ranker,
            reacher,
            reach: Vec::new(),
            reach_picks: Vec::new(),
            draws: draws.max(1),
            picks: Vec::new(),
            slate: None,
        })
    }

    /// The candidate selector.
    pub fn selector(&self) -> &'a Selector {
        self.selector
    }

    /// The candidate's probability of giving the first slot to each creative (those
    /// with probability > 0), into `out` (cleared first). Empty when the candidate would
    /// show nothing.
    pub fn distribution(
        &mut self,
        profile: &Profile,
        context: &Context,
        placement: PlacementId,
        allowed: Option<&AHashSet<CreativeId>>,
        out: &mut Vec<(CreativeId, f64)>,
    ) -> Result<()> {
        out.clear();
        let policy = if self.selector.is_shadow(placement) {
            Policy::Rules
        } else {
            self.selector.config().learning.policy
        };
        match policy {
            Policy::Rules | Policy::Greedy => {
                if let Some(c) = self.restricted_pick(profile, context, placement, allowed)? {
                    out.push((c, 1.0));
                }
            }
            Policy::Thompson => {
                let mut seeds = Rng::new(context.seed.unwrap_or(0) ^ 0x7468_6f6d_7073_6f6e);
                let mut ctx = context.clone();
                let share = 1.0 / f64::from(self.draws);
                for _ in 0..self.draws {
                    ctx.seed = Some(seeds.next_u64());
                    if let Some(c) = self.restricted_pick(profile, &ctx, placement, allowed)? {
                        match out.iter_mut().find(|(have, _)| *have == c) {
                            Some(slot) => slot.1 += share,
                            None => out.push((c, share)),
                        }
                    }
                }
            }
            Policy::EpsilonGreedy { epsilon } => {
                if self.ranked(profile, context, placement, allowed)? {
                    self.reaches(profile, context, placement)?;
                    let top = self.picks[0].score;
                    let reach = &self.reach;
                    // Among every eligible creative, or those whose reach attains the
                    // greedy choice's key (the greedy choice first).
                    let explored = |(i, p): &(usize, &Pick)| {
                        *i == 0
                            || reach.is_empty()
                            || reach.get(p.creative.index()).is_some_and(|&r| r >= top)
                    };
                    let n = self.picks.iter().enumerate().filter(explored).count() as f64;
                    out.extend(
                        self.picks
                            .iter()
                            .enumerate()
                            .filter(explored)
                            .map(|(_, p)| (p.creative, epsilon / n)),
                    );
                    out[0].1 += 1.0 - epsilon;
                } else if let Some(c) = self.restricted_pick(profile, context, placement, allowed)? {
                    out.push((c, 1.0));
                }
            }
            Policy::Softmax { temperature } => {
                if self.ranked(profile, context, placement, allowed)? {
                    let top = f64::from(self.picks[0].score).max(f64::MIN_POSITIVE);
                    let weight = |p: &Pick| ((f64::from(p.score) / top - 1.0) / temperature).exp();
                    let total: f64 = self.picks.iter().map(weight).sum();
                    out.extend(self.picks.iter().map(|p| (p.creative, weight(p) / total)));
                } else if let Some(c) = self.restricted_pick(profile, context, placement, allowed)? {
                    out.push((c, 1.0));
                }
            }
        }
        Ok(())
    }

    /// The candidate's probability of putting each creative at each of the first
    /// `slots` positions (the marginal of each position), into `out[0..slots]`. Position
    /// 1 is [`CandidatePolicy::distribution`]. Later positions: for rules and greedy,
    /// one selection of `slots` picks (exact); for the exploring policies, the pick
    /// frequencies of `draws` selections with seeds derived from the request's (an
    /// unbiased estimate of each probability, as for Thompson sampling). With `allowed`,
    /// creatives outside it are excluded from the slate.
    pub fn slate(
        &mut self,
        profile: &Profile,
        context: &Context,
        placement: PlacementId,
        allowed: Option<&AHashSet<CreativeId>>,
        slots: usize,
        out: &mut Vec<Vec<(CreativeId, f64)>>,
    ) -> Result<()> {
        out.truncate(slots);
        out.resize_with(slots, Vec::new);
        for v in out.iter_mut() {
            v.clear();
        }
        let Some(first) = out.first_mut() else { return Ok(()) };
        self.distribution(profile, context, placement, allowed, first)?;
        if slots < 2 {
            return Ok(());
        }
        let slots = slots.min(MAX_K);
        let selection = match &mut self.slate {
            Some(s) if s.k() == slots => s,
            other => other.insert(self.selector.new_selection(slots)),
        };
        selection.clear_exclusions();
        if let Some(allowed) = allowed {
            for i in 0..self.selector.catalog().len() {
                let c = CreativeId(i as u32);
                if !allowed.contains(&c) {
                    selection.exclude(c);
                }
            }
        }
        let deterministic = self.selector.is_shadow(placement)
            || matches!(self.selector.config().learning.policy, Policy::Rules | Policy::Greedy);
        let draws = if deterministic { 1 } else { self.draws };
        let share = 1.0 / f64::from(draws);
        let mut seeds = Rng::new(context.seed.unwrap_or(0) ^ 0x736c_6174_6573_6565);
        let mut ctx = context.clone();
        for _ in 0..draws {
            if !deterministic {
                ctx.seed = Some(seeds.next_u64());
            }
            self.selector.select(profile, &ctx, placement, selection)?;
            for (k, pick) in selection.picks().iter().enumerate().skip(1) {
                let Some(dist) = out.get_mut(k) else { break };
                match dist.iter_mut().find(|(have, _)| *have == pick.creative) {
                    Some(slot) => slot.1 += share,
                    None => dist.push((pick.creative, share)),
                }
            }
        }
        Ok(())
    }

    /// The candidate's first pick, excluding creatives outside `allowed` one by one until
    /// its pick is allowed (or a fallback, or nothing).
    fn restricted_pick(
        &mut self,
        profile: &Profile,
        context: &Context,
        placement: PlacementId,
        allowed: Option<&AHashSet<CreativeId>>,
    ) -> Result<Option<CreativeId>> {
        self.one.clear_exclusions();
        loop {
            self.selector.select(profile, context, placement, &mut self.one)?;
            let Some(pick) = self.one.picks().first() else { return Ok(None) };
            let c = pick.creative;
            if pick.reason.kind == ReasonKind::Fallback || allowed.is_none_or(|a| a.contains(&c)) {
                return Ok(Some(c));
            }
            self.one.exclude(c);
        }
    }

    /// Epsilon-greedy with a reach: fills `self.reach` with every eligible creative's
    /// reach (−∞ for the others); leaves it empty without one.
    fn reaches(&mut self, profile: &Profile, context: &Context, placement: PlacementId) -> Result<()> {
        self.reach.clear();
        let Some((reacher, selection)) = self.reacher.as_mut() else { return Ok(()) };
        let listed = &mut self.reach_picks;
        list_all(reacher, selection, profile, context, placement, listed)?;
        self.reach.resize(reacher.catalog().len(), f32::NEG_INFINITY);
        for p in listed.iter() {
            if let Some(r) = self.reach.get_mut(p.creative.index()) {
                *r = p.score;
            }
        }
        Ok(())
    }

    /// Fills `self.picks` with the allowed eligible creatives and their estimates, best
    /// first (ties: priority, then catalog order, as `select` breaks them). False when
    /// none is eligible (the candidate would use a fallback).
    fn ranked(
        &mut self,
        profile: &Profile,
        context: &Context,
        placement: PlacementId,
        allowed: Option<&AHashSet<CreativeId>>,
    ) -> Result<bool> {
        let Some((ranker, selection)) = self.ranker.as_mut() else { return Ok(false) };
        let fallback = list_all(ranker, selection, profile, context, placement, &mut self.picks)?;
        if fallback {
            self.picks.clear();
            return Ok(false);
        }
        if let Some(allowed) = allowed {
            self.picks.retain(|p| allowed.contains(&p.creative));
        }
        let rules = &ranker.catalog().rules;
        self.picks.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then(rules[b.creative.index()].priority.total_cmp(&rules[a.creative.index()].priority))
                .then(a.creative.cmp(&b.creative))
        });
        Ok(!self.picks.is_empty())
    }
}
