//! Epsilon-greedy through the pruning index: the exploiting pick comes from the pruned
//! greedy scan, the exploring one is drawn uniformly among the eligible candidates with
//! the eligibility checks alone (no scoring), and the propensity is exact from an
//! eligibility count. Same picks, propensities and randomness as the full scan for one
//! slot. Never allocates on `select`.

use super::{Env, ReasonKind, Selection, Selector};
use crate::catalog::{CreativeId, Placement, PlacementId, NONE};
use crate::learn::{Policy, Rng};
use crate::profile::Profile;

impl Selector {
    /// Whether creative `cid` passes every hard filter for this request: the checks of
    /// `evaluate` before it scores (schedule, intimacy, consent, targeting, the caller's
    /// exclusions, the person's rejections and caps, declared dislikes).
    #[inline]
    pub(super) fn eligible(&self, cid: CreativeId, env: &Env, selection: &Selection) -> bool {
        let cat = &*self.catalog;
        let Some(r) = cat.rules.get(cid.index()) else { return false };
        if env.now < r.start
            || env.now >= r.end
            || r.intimacy > env.max_intimacy
            || !env.consent.contains(r.needs)
        {
            return false;
        }
        if r.targeting != NONE && !cat.pool.matches(&cat.conditions[r.targeting as usize], &env.moment) {
            return false;
        }
        if !selection.excluded.is_empty() && selection.excluded.contains(&cid) {
            return false;
        }
        if selection.memo_of(cid).is_some_and(|m| m.kind != 0) {
            return false;
        }
        if cid.0 >= cat.templates.first {
            if let Some(t) = cat.templates.anchored(cid) {
                return self.template_eligible(t, env, selection);
            }
        }
        r.tags
            .range()
            .all(|t| selection.persona_weight.get(cat.tag_persona[t].index()).is_none_or(|&w| w >= 0.0))
    }

    /// Epsilon-greedy for one slot through the pruned greedy scan. Returns false
    /// (nothing done) when the index cannot serve (being rebuilt, or another policy's).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn epsilon_pruned(
        &self,
        placement: PlacementId,
        place: &Placement,
        profile: &Profile,
        env: &mut Env,
        selection: &mut Selection,
        rng: &mut Rng,
    ) -> bool {
        let policy = env.policy;
        let Policy::EpsilonGreedy { epsilon } = policy else { return false };
        env.policy = Policy::Greedy;
        let served = self.scan_pruned(placement, place, profile, env, selection, rng);
        env.policy = policy;
        if !served {
            return false;
        }
        let Some(greedy) = selection.picks.first().map(|p| p.creative) else {
            return true; // nothing eligible: the fallbacks follow
        };
        let allowed = place.candidates.iter().filter(|&&c| self.eligible(c, env, selection)).count();
        let explore = rng.unit() < epsilon;
        let (chosen, propensity) = if explore {
            let target = rng.below(allowed);
            let chosen = place
                .candidates
                .iter()
                .filter(|&&c| self.eligible(c, env, selection))
                .nth(target)
                .copied()
                .unwrap_or(greedy);
            (chosen, epsilon / allowed as f64 + if chosen == greedy { 1.0 - epsilon } else { 0.0 })
        } else {
            (greedy, 1.0 - epsilon + epsilon / allowed as f64)
        };
        if chosen != greedy {
            // Score the explored creative alone and let it take the slot.
            selection.picks.clear();
            selection.scored.clear();
            if let Some(s) = self.evaluate(chosen, profile, env, selection, rng) {
                selection.scored.push(s);
            }
            self.choose(selection, Policy::Greedy, |s| s.key, rng, false);
            if let Some(pick) = selection.picks.first_mut() {
                pick.reason.kind = ReasonKind::Exploring;
            }
        }
        if let Some(pick) = selection.picks.first_mut() {
            pick.propensity = propensity as f32;
        }
        true
    }
}
