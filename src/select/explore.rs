//! Epsilon-greedy through the pruning index: the exploiting picks come from the pruned
//! greedy scan, the exploring ones are drawn uniformly among the eligible candidates
//! with the eligibility checks alone (no scoring), and each propensity is exact from an
//! eligibility count. Same picks, propensities and randomness as the full scan, for one
//! slot or several. Never allocates on `select`.

use super::{beats, diverse, Env, ReasonKind, Selection, Selector};
use crate::catalog::{CreativeId, Gate, Placement, PlacementId};
use crate::learn::{Policy, Rng};
use crate::profile::Profile;

/// Requests with k > 1 that take the full scan after a pruned one looked at more than
/// 60 % of the placement.
const FULL_SCANS_AFTER_A_DEEP_ONE: u8 = 15;

impl Selector {
    /// Whether creative `cid` passes every hard filter for this request: the checks of
    /// `evaluate` before it scores (schedule, intimacy, consent, targeting, the caller's
    /// exclusions, the person's rejections and caps, declared dislikes).
    #[inline(always)]
    pub(super) fn eligible(&self, cid: CreativeId, env: &Env, selection: &Selection) -> bool {
        let cat = &*self.catalog;
        let Some(r) = cat.rules.get(cid.index()) else { return false };
        if !env.admits(cat, &Gate::of(r)) {
            return false;
        }
        if !selection.excluded.is_empty() && selection.excluded.contains(&cid) {
            return false;
        }
        if selection.fatigue_of(cid).is_none() {
            return false;
        }
        if cid.0 >= cat.templates.first {
            if let Some(t) = cat.templates.anchored(cid) {
                return self.template_eligible(t, env, selection);
            }
        }
        !env.dislikes
            || r.tags
                .range()
                .all(|t| selection.persona_weight.get(cat.tag_persona[t].index()).is_none_or(|&w| w >= 0.0))
    }

    /// How many of `place`'s candidates are [`Self::eligible`], exactly. With the
    /// placement's gate groups: the groups whose request-level filters pass, less the
    /// person's and the caller's exclusions among them, plus the eligible templates, so
    /// the cost follows the number of groups and exclusions, not the catalog. Without
    /// them, every candidate is checked.
    pub(super) fn eligible_count(&self, place: &Placement, env: &Env, selection: &Selection) -> usize {
        if place.gates.is_empty() {
            return place.candidates.iter().filter(|&&c| self.eligible(c, env, selection)).count();
        }
        let cat = &*self.catalog;
        let mut count: usize = 0;
        for g in &place.gates {
            if env.admits(cat, g) {
                count += g.count as usize;
            }
        }
        // A grouped candidate that passed its group's filters: it is counted above.
        let counted = |c: CreativeId| {
            place.candidates.binary_search(&c).is_ok()
                && !(c.0 >= cat.templates.first && cat.templates.anchored(c).is_some())
                && cat.rules.get(c.index()).is_some_and(|r| env.admits(cat, &Gate::of(r)))
        };
        let blocked = |c: CreativeId| selection.fatigue_of(c).is_none();
        let disliked = |p: usize| selection.persona_weight.get(p).is_some_and(|&w| w < 0.0);
        // One disliked persona (the common case) is counted per group below; the
        // excluded and blocked candidates it tags are then removed twice, and counted
        // here to be given back.
        let mut dislikes = (0..selection.persona_weight.len()).filter(|&p| env.dislikes && disliked(p));
        let single = match (dislikes.next(), dislikes.next()) {
            (Some(p), None) => Some(p),
            _ => None,
        };
        let tagged_with_single = |c: CreativeId| {
            single.is_some_and(|p| {
                cat.rules
                    .get(c.index())
                    .is_some_and(|r| r.tags.range().any(|t| cat.tag_persona[t].index() == p))
            })
        };
        let (mut removed, mut twice): (usize, usize) = (0, 0);
        let mut remove = |c: CreativeId| {
            removed += 1;
            twice += usize::from(tagged_with_single(c));
        };
        for (i, &c) in selection.excluded.iter().enumerate() {
            if !selection.excluded[..i].contains(&c) && counted(c) {
                remove(c);
            }
        }
        for m in &selection.memo {
            let c = CreativeId(m.creative);
            if m.kind != 0 && !selection.excluded.contains(&c) && counted(c) {
                remove(c);
            }
        }
        if let Some(p) = single {
            // Its tagged candidates per group that passed.
            let mut tagged: usize = 0;
            for (g, gate) in place.gates.iter().enumerate() {
                if env.admits(cat, gate) {
                    tagged += place.gate_tagged(g, p) as usize;
                }
            }
            removed += tagged.saturating_sub(twice);
        } else if env.dislikes {
            for p in (0..selection.persona_weight.len()).filter(|&p| disliked(p)) {
                for &c in place.tagged(p) {
                    let Some(r) = cat.rules.get(c.index()) else { continue };
                    // Counted once: under the first disliked persona it is tagged with.
                    let earlier = r.tags.range().any(|t| {
                        let q = cat.tag_persona[t].index();
                        q < p && disliked(q)
                    });
                    if !earlier && !selection.excluded.contains(&c) && !blocked(c) && counted(c) {
                        removed += 1;
                    }
                }
            }
        }
        let templates = place.templates.iter().filter(|&&t| self.eligible(t, env, selection)).count();
        debug_assert!(removed <= count, "{removed} removed of {count} counted");
        let allowed = count.saturating_sub(removed) + templates;
        // Every debug build (the test suite) checks the grouped count against the
        // candidate-by-candidate one.
        debug_assert_eq!(
            allowed,
            place.candidates.iter().filter(|&&c| self.eligible(c, env, selection)).count(),
            "grouped eligible count"
        );
        allowed
    }

    /// Epsilon-greedy through the pruned greedy scan. Returns false (nothing done, the
    /// selection and `rng` as they were) when the index cannot serve (being rebuilt, or
    /// another policy's) or, with several slots, when an exploring pick leaves a later
    /// slot whose greedy choice the scan cannot certify; the full scan follows then.
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
        if selection.k > 1 && selection.full_scans_left > 0 {
            selection.full_scans_left -= 1;
            return false;
        }
        env.policy = Policy::Greedy;
        let served = self.scan_pruned(placement, place, profile, env, selection, rng);
        env.policy = policy;
        if !served {
            return false;
        }
        if selection.k > 1 {
            // Several slots under the diversity rules can make the greedy scan look at
            // most candidates, and then it costs more than scoring them all in one pass
            // (callgrind: from about 60 % of a placement visited). The next requests on
            // this selection take the full scan then (the same picks), and the pruned
            // scan is tried again after them.
            if selection.visited as usize * 10 > place.candidates.len() * 6 {
                selection.full_scans_left = FULL_SCANS_AFTER_A_DEEP_ONE;
            }
            return self.epsilon_slots(place, profile, env, selection, rng, epsilon);
        }
        let Some(greedy) = selection.picks.first().map(|p| p.creative) else {
            return true; // nothing eligible: the fallbacks follow
        };
        let allowed = self.eligible_count(place, env, selection);
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
            if let Some(s) = self.evaluate(chosen, profile, env, selection) {
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

    /// Epsilon-greedy for k > 1 slots after the pruned greedy scan for k (in
    /// `selection.scored`, its picks in `selection.picks`), slot by slot as the full scan
    /// fills them. A slot's greedy choice is the best candidate not picked and diverse
    /// with the picks so far: the greedy scan's own pick while every earlier slot went
    /// to it, else the best such scored candidate; with probability ε the slot goes
    /// instead to the n-th such eligible candidate, scored or not (n uniform over their
    /// count, from one eligibility pass). A greedy choice after an exploring pick is
    /// certain when every candidate was scored or when its key reaches the k-th greedy
    /// key, which bounds every unscored candidate; otherwise this returns false with the
    /// selection cleared and `rng` restored, for the full scan.
    fn epsilon_slots(
        &self,
        place: &Placement,
        profile: &Profile,
        env: &Env,
        selection: &mut Selection,
        rng: &mut Rng,
        epsilon: f64,
    ) -> bool {
        let rules = &self.catalog.rules;
        let max_theme = usize::from(self.config.max_per_persona);
        let greedy_picks = selection.picks.len();
        // Unscored candidates rank strictly below the k-th greedy pick, or none is left.
        let everything = greedy_picks < selection.k || selection.visited as usize >= place.candidates.len();
        let floor = selection.picks.last().map_or(f32::NEG_INFINITY, |p| p.score);
        let start = *rng;
        // The scan settled eligibility for what it visited (scored = eligible): only the
        // rest need the checks. Scored creatives get the next stamp; visited ones keep
        // the scan's.
        let visited = selection.stamp;
        let scored = selection.next_stamp(self.catalog.len());
        let trust = visited != 0 && scored == visited.wrapping_add(1);
        for i in 0..selection.scored.len() {
            let c = selection.scored[i].creative.index();
            if let Some(seen) = selection.seen.get_mut(c) {
                *seen = scored;
            }
        }
        selection.eligible.clear();
        for &c in &place.candidates {
            let stamp = selection.seen.get(c.index()).copied().unwrap_or(0);
            let eligible = if stamp == scored {
                true
            } else if trust && stamp == visited {
                false
            } else {
                self.eligible(c, env, selection)
            };
            if eligible {
                selection.eligible.push(c);
            }
        }
        // True once a slot went to another creative than the greedy scan's.
        let mut diverged = false;
        let mut filled = 0;
        for slot in 0..selection.k {
            let picks = &selection.picks[..slot.min(selection.picks.len())];
            let allowed = selection.eligible.iter().filter(|&&c| diverse(rules, picks, c, max_theme)).count();
            if allowed == 0 {
                break;
            }
            let greedy = if diverged {
                self.best_allowed(selection, slot, everything, floor)
            } else {
                selection.picks.get(slot).map(|p| p.creative)
            };
            let Some(greedy) = greedy else {
                // Not certain: hand over to the full scan, as if nothing happened.
                *rng = start;
                selection.picks.clear();
                selection.scored.clear();
                return false;
            };
            let picks = &selection.picks[..slot];
            let (chosen, propensity) = if rng.unit() < epsilon {
                let target = rng.below(allowed);
                let chosen = selection
                    .eligible
                    .iter()
                    .filter(|&&c| diverse(rules, picks, c, max_theme))
                    .nth(target)
                    .copied()
                    .unwrap_or(greedy);
                (chosen, epsilon / allowed as f64 + if chosen == greedy { 1.0 - epsilon } else { 0.0 })
            } else {
                (greedy, 1.0 - epsilon + epsilon / allowed as f64)
            };
            if diverged || chosen != greedy {
                if !diverged {
                    diverged = true;
                    selection.picks.truncate(slot);
                }
                if !self.take(selection, chosen, profile, env) {
                    *rng = start;
                    selection.picks.clear();
                    selection.scored.clear();
                    return false;
                }
            }
            if let Some(pick) = selection.picks.get_mut(slot) {
                pick.propensity = propensity as f32;
                if chosen != greedy {
                    pick.reason.kind = ReasonKind::Exploring;
                }
            }
            filled = slot + 1;
        }
        selection.picks.truncate(filled);
        true
    }

    /// The best scored candidate not among the first `slot` picks and diverse with them
    /// (ties to catalog order, as the full scan, which scores in that order), when it
    /// certainly beats every unscored candidate (see [`Self::epsilon_slots`]).
    fn best_allowed(
        &self,
        selection: &Selection,
        slot: usize,
        everything: bool,
        floor: f32,
    ) -> Option<CreativeId> {
        let rules = &self.catalog.rules;
        let max_theme = usize::from(self.config.max_per_persona);
        let picks = &selection.picks[..slot.min(selection.picks.len())];
        let mut best: Option<&super::Scored> = None;
        for s in &selection.scored {
            if !diverse(rules, picks, s.creative, max_theme) {
                continue;
            }
            if best.is_none_or(|o| beats((s.key, s.priority, s.creative), (o.key, o.priority, o.creative))) {
                best = Some(s);
            }
        }
        best.filter(|b| everything || b.key >= floor).map(|b| b.creative)
    }

    /// Appends `creative` to the picks (scoring it first when the scan did not), with
    /// the reason the greedy choice would give it: every other scored candidate is set
    /// aside for one `choose` call. False when it cannot be scored (never, for an
    /// eligible creative).
    fn take(&self, selection: &mut Selection, creative: CreativeId, profile: &Profile, env: &Env) -> bool {
        let at = match selection.scored.iter().position(|s| s.creative == creative) {
            Some(at) => at,
            None => {
                let Some(s) = self.evaluate(creative, profile, env, selection) else { return false };
                selection.visited += 1;
                selection.scored.push(s);
                selection.scored.len() - 1
            }
        };
        for (i, s) in selection.scored.iter_mut().enumerate() {
            s.taken = i != at;
        }
        let (before, k) = (selection.picks.len(), selection.k);
        selection.k = before + 1;
        self.choose(selection, Policy::Greedy, |s| s.key, &mut Rng::new(0), false);
        selection.k = k;
        selection.picks.len() > before
    }
}
