//! Choosing among scored candidates under a policy: the greedy order, epsilon-greedy's
//! exploring draw, softmax, Thompson's propensity, the diversity rules
//! (exclusion groups, picks per persona) and the fallbacks. Never allocates.

use super::*;

impl Selector {
    /// Fills up to k slots under `policy`, ranking by `key`, respecting the diversity
    /// rules; into the shadow picks when `shadow`.
    pub(super) fn choose(
        &self,
        selection: &mut Selection,
        policy: Policy,
        key: impl Fn(&Scored) -> f32,
        rng: &mut Rng,
        shadow: bool,
    ) {
        let rules = &self.catalog.rules;
        let max_theme = usize::from(self.config.max_per_persona);
        let reach = self.config.learning.reach_under(policy).is_some();
        selection.least_greedy = f32::INFINITY;
        loop {
            let picks = if shadow { &selection.shadow } else { &selection.picks };
            if picks.len() >= selection.k {
                break;
            }
            // The best allowed candidate by key (ties: priority, then catalog order), the
            // best by posterior mean, and how many are allowed.
            let (mut best, mut best_mean, mut allowed) = (None::<usize>, None::<usize>, 0usize);
            for (i, s) in selection.scored.iter().enumerate() {
                if s.taken || !diverse(rules, picks, s.creative, max_theme) {
                    continue;
                }
                allowed += 1;
                if best.is_none_or(|b| {
                    let o = &selection.scored[b];
                    beats((key(s), s.priority, s.creative), (key(o), o.priority, o.creative))
                }) {
                    best = Some(i);
                }
                if best_mean.is_none_or(|b| {
                    let o = &selection.scored[b];
                    beats((s.mean, s.priority, s.creative), (o.mean, o.priority, o.creative))
                }) {
                    best_mean = Some(i);
                }
            }
            let Some(greedy) = best else { break };
            selection.least_greedy = selection.least_greedy.min(key(&selection.scored[greedy]));
            let (chosen, propensity) = match policy {
                Policy::Rules | Policy::Greedy => (greedy, 1.0),
                Policy::EpsilonGreedy { epsilon } if reach => {
                    self.explore_plausible(selection, shadow, greedy, &key, epsilon, rng)
                }
                Policy::EpsilonGreedy { epsilon } => {
                    if rng.unit() < epsilon {
                        let target = rng.below(allowed);
                        let c = self
                            .nth_allowed(selection, picks_of(selection, shadow), target, max_theme)
                            .unwrap_or(greedy);
                        let p = epsilon / allowed as f64 + if c == greedy { 1.0 - epsilon } else { 0.0 };
                        (c, p)
                    } else {
                        (greedy, 1.0 - epsilon + epsilon / allowed as f64)
                    }
                }
                Policy::Softmax { temperature } => {
                    self.softmax(selection, shadow, greedy, &key, temperature, rng)
                }
                Policy::Thompson if selection.defer_propensity => (greedy, f64::NAN),
                Policy::Thompson => (greedy, self.thompson_slot_propensity(selection, shadow, greedy)),
            };
            let s = &mut selection.scored[chosen];
            s.taken = true;
            let s = *s;
            // Exploring: a draw chose it over the best. Greedy's choice (also
            // epsilon-greedy's when it does not draw) is not, even when the optimism
            // ranked it above a creative with a better posterior mean.
            let exploring = match policy {
                Policy::Rules | Policy::Greedy => false,
                Policy::EpsilonGreedy { .. } => chosen != greedy,
                Policy::Softmax { .. } | Policy::Thompson => chosen != best_mean.unwrap_or(chosen),
            };
            let kind = if exploring {
                ReasonKind::Exploring
            } else if policy != Policy::Rules && s.evidence >= 1.0 {
                ReasonKind::Learned
            } else if s.persona_match > 0.0 {
                ReasonKind::PersonaMatch
            } else {
                ReasonKind::Priority
            };
            let pick = Pick {
                creative: s.creative,
                score: if policy == Policy::Rules { s.base } else { key(&s) },
                propensity: propensity as f32,
                reason: Reason {
                    kind,
                    persona: (s.persona != u16::MAX).then_some(PersonaId(s.persona)),
                    persona_score: s.persona_score,
                    persona_match: s.persona_match,
                    context_boost: s.context_boost,
                    boosts_matched: s.boosts_matched,
                    targeted: rules[s.creative.index()].targeting != NONE,
                    fatigue: s.fatigue,
                    base: s.base,
                    estimate: if policy == Policy::Rules || s.priority <= 0.0 {
                        0.0
                    } else {
                        s.mean / s.priority
                    },
                    evidence: s.evidence,
                },
            };
            if shadow {
                selection.shadow.push(pick);
            } else {
                selection.picks.push(pick);
            }
        }
    }

    /// Epsilon-greedy with a reach ([`LearningConfig::explore_reach`]): with probability
    /// `epsilon` the slot goes to one of the allowed candidates whose reach attains the
    /// greedy choice's key, uniformly (the `n`-th by catalog order, so the pruned scan,
    /// which scores in another order, draws the same one); otherwise to the greedy
    /// choice. Returns it and its exact probability. Every such candidate is scored:
    /// the pruned scan bounds the reach, not the key.
    ///
    /// [`LearningConfig::explore_reach`]: crate::LearningConfig::explore_reach
    fn explore_plausible(
        &self,
        selection: &mut Selection,
        shadow: bool,
        greedy: usize,
        key: &impl Fn(&Scored) -> f32,
        epsilon: f64,
        rng: &mut Rng,
    ) -> (usize, f64) {
        let rules = &self.catalog.rules;
        let max_theme = usize::from(self.config.max_per_persona);
        let picks = if shadow { &selection.shadow } else { &selection.picks };
        let top = key(&selection.scored[greedy]);
        // Reserved for every candidate of the largest placement: never grows.
        let plausible = &mut selection.eligible;
        plausible.clear();
        for (i, s) in selection.scored.iter().enumerate() {
            if (i == greedy || s.reach >= top) && !s.taken && diverse(rules, picks, s.creative, max_theme) {
                plausible.push(s.creative);
            }
        }
        let n = plausible.len().max(1);
        if rng.unit() >= epsilon {
            return (greedy, 1.0 - epsilon + epsilon / n as f64);
        }
        let target = rng.below(n);
        plausible.sort_unstable();
        let chosen = plausible
            .get(target)
            .and_then(|&c| selection.scored.iter().position(|s| s.creative == c))
            .unwrap_or(greedy);
        let p = epsilon / n as f64 + if chosen == greedy { 1.0 - epsilon } else { 0.0 };
        (chosen, p)
    }

    /// The index of the `target`-th allowed candidate.
    pub(super) fn nth_allowed(
        &self,
        selection: &Selection,
        picks: &[Pick],
        target: usize,
        max_theme: usize,
    ) -> Option<usize> {
        let rules = &self.catalog.rules;
        selection
            .scored
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.taken && diverse(rules, picks, s.creative, max_theme))
            .nth(target)
            .map(|(i, _)| i)
    }

    /// Draws a slot with probability ∝ exp((key/best − 1)/T); returns it and its exact
    /// probability.
    pub(super) fn softmax(
        &self,
        selection: &Selection,
        shadow: bool,
        greedy: usize,
        key: &impl Fn(&Scored) -> f32,
        temperature: f64,
        rng: &mut Rng,
    ) -> (usize, f64) {
        let rules = &self.catalog.rules;
        let max_theme = usize::from(self.config.max_per_persona);
        let picks = picks_of(selection, shadow);
        let top = f64::from(key(&selection.scored[greedy])).max(f64::MIN_POSITIVE);
        let weight = |s: &Scored| ((f64::from(key(s)) / top - 1.0) / temperature).exp();
        let allowed = |s: &&Scored| !s.taken && diverse(rules, picks, s.creative, max_theme);
        let total: f64 = selection.scored.iter().filter(allowed).map(weight).sum();
        let mut target = rng.unit() * total;
        let mut last = greedy;
        for (i, s) in selection.scored.iter().enumerate() {
            if !allowed(&s) {
                continue;
            }
            let w = weight(s);
            last = i;
            if target < w {
                return (i, w / total);
            }
            target -= w;
        }
        (last, weight(&selection.scored[last]) / total)
    }

    /// Thompson's propensity for `chosen` at the next slot, given the picks before it.
    /// The first slot's is the probability that its draw beats the draw of every
    /// allowed rival ([`propensity::thompson_propensity`]); a later slot's is the
    /// probability of the picks so far over that of the picks before
    /// ([`propensity::thompson_joint`]): the earlier picks drew higher still, which
    /// changes who else could have taken the slot.
    pub(super) fn thompson_slot_propensity(
        &self,
        selection: &mut Selection,
        shadow: bool,
        chosen: usize,
    ) -> f64 {
        let slot = picks_of(selection, shadow).len();
        if slot == 0 {
            let p = self.thompson_propensity(selection, shadow, chosen);
            selection.slate_joint = p;
            return p;
        }
        let before = selection.slate_joint;
        let joint = self.thompson_joint(selection, shadow, chosen);
        match joint {
            Some(joint) if before > 0.0 && before.is_finite() => {
                selection.slate_joint = joint;
                (joint / before).clamp(propensity::MIN_PROPENSITY, 1.0)
            }
            _ => {
                // A draw without spread among the picks: each slot as if it came first.
                selection.slate_joint = f64::NAN;
                self.thompson_propensity(selection, shadow, chosen)
            }
        }
    }

    /// The probability of the picks so far and `chosen` after them (see
    /// [`propensity::thompson_joint`]): each rival stays below the pick of the last slot
    /// whose diversity rules allowed it.
    fn thompson_joint(&self, selection: &mut Selection, shadow: bool, chosen: usize) -> Option<f64> {
        let rules = &self.catalog.rules;
        let max_theme = usize::from(self.config.max_per_persona);
        let picks = if shadow { &selection.shadow } else { &selection.picks };
        let draw = |s: &Scored| propensity::Draw { priority: s.priority, logit: s.logit, sd: s.sd };
        // Reserved for k picks: never grows.
        let draws = &mut selection.slate_draws;
        draws.clear();
        for pick in picks.iter() {
            draws.push(draw(selection.scored.iter().find(|s| s.creative == pick.creative)?));
        }
        draws.push(draw(selection.scored.get(chosen)?));
        let slots = draws.len();
        let rivals =
            selection.scored.iter().enumerate().filter(|&(i, s)| i != chosen && !s.taken).map(|(_, s)| {
                // The last slot that allowed it (the rules only tighten slot by slot).
                let last = (0..slots)
                    .rev()
                    .find(|&i| diverse(rules, &picks[..i], s.creative, max_theme))
                    .unwrap_or(0);
                (draw(s), last)
            });
        selection.placed = None;
        propensity::thompson_joint(
            &selection.slate_draws,
            rivals,
            &mut selection.rivals,
            &mut selection.slate_grids,
            &mut selection.slate_starts,
        )
    }

    /// Thompson's first-slot propensity for `chosen`: the probability that its draw
    /// beats the draw of every allowed rival (see [`propensity::thompson_propensity`]).
    pub(super) fn thompson_propensity(&self, selection: &mut Selection, shadow: bool, chosen: usize) -> f64 {
        let rules = &self.catalog.rules;
        let max_theme = usize::from(self.config.max_per_persona);
        let picks = if shadow { &selection.shadow } else { &selection.picks };
        let draw = |s: &Scored| propensity::Draw { priority: s.priority, logit: s.logit, sd: s.sd };
        let Some(me) = selection.scored.get(chosen) else { return 1.0 };
        // The first slot's rivals as the support of the same pick placed them (every
        // candidate scored then but the pick: at the first slot none is taken and the
        // rules allow all), then those scored since, which come after them.
        if let Some((creative, scored, start)) = selection.placed.take() {
            if !shadow && picks.is_empty() && creative == me.creative && scored <= selection.scored.len() {
                let more = selection
                    .scored
                    .iter()
                    .enumerate()
                    .skip(scored)
                    .filter(|&(i, s)| i != chosen && !s.taken && diverse(rules, picks, s.creative, max_theme))
                    .map(|(_, s)| draw(s));
                return propensity::thompson_propensity_after(draw(me), start, more, &mut selection.rivals);
            }
        }
        let rivals = selection
            .scored
            .iter()
            .enumerate()
            .filter(|&(i, s)| i != chosen && !s.taken && diverse(rules, picks, s.creative, max_theme))
            .map(|(_, s)| draw(s));
        propensity::thompson_propensity(draw(me), rivals, &mut selection.rivals)
    }

    /// The lowest `ln key` of the draw of pick `slot` that its propensity depends on
    /// (see [`propensity::thompson_support`]), against the rivals it had: the scored
    /// candidates the diversity rules allowed next to the picks before it.
    pub(super) fn thompson_support(&self, selection: &mut Selection, slot: usize) -> f64 {
        let rules = &self.catalog.rules;
        let max_theme = usize::from(self.config.max_per_persona);
        let draw = |s: &Scored| propensity::Draw { priority: s.priority, logit: s.logit, sd: s.sd };
        let Some(pick) = selection.picks.get(slot) else { return f64::NEG_INFINITY };
        let before = &selection.picks[..slot];
        let Some(me) = selection.scored.iter().find(|s| s.creative == pick.creative) else {
            return f64::NEG_INFINITY;
        };
        // `diverse` also turns away the picks before this one.
        let rivals = selection
            .scored
            .iter()
            .filter(|s| s.creative != pick.creative && diverse(rules, before, s.creative, max_theme))
            .map(draw);
        let (support, start) = propensity::thompson_support(draw(me), rivals, &mut selection.rivals);
        // The first pick's placement, for its propensity (`thompson_propensity`).
        selection.placed =
            start.filter(|_| slot == 0).map(|start| (pick.creative, selection.scored.len(), start));
        support
    }

    pub(super) fn fallback(&self, fallbacks: &[CreativeId], selection: &mut Selection) {
        let cat = &*self.catalog;
        for &cid in fallbacks {
            if selection.picks.len() >= selection.k {
                break;
            }
            // A declared dislike holds for fallbacks too: one tagged with a persona the
            // person declared they do not want is passed over like any other creative.
            let disliked = cat.rules[cid.index()]
                .tags
                .range()
                .any(|t| selection.persona_weight.get(cat.tag_persona[t].index()).is_some_and(|&w| w < 0.0));
            if disliked
                || selection.excluded.contains(&cid)
                || selection.fatigue_of(cid).is_none()
                || !diverse(&cat.rules, &selection.picks, cid, 0)
            {
                continue;
            }
            let priority = cat.rules[cid.index()].priority;
            selection.picks.push(Pick {
                creative: cid,
                score: priority,
                propensity: 1.0,
                reason: Reason {
                    kind: ReasonKind::Fallback,
                    persona: None,
                    persona_score: 0,
                    persona_match: 0.0,
                    context_boost: 1.0,
                    boosts_matched: 0,
                    targeted: false,
                    fatigue: 1.0,
                    base: priority,
                    estimate: 0.0,
                    evidence: 0.0,
                },
            });
        }
    }
}

pub(super) fn picks_of(selection: &Selection, shadow: bool) -> &[Pick] {
    if shadow {
        &selection.shadow
    } else {
        &selection.picks
    }
}

/// True when `a` = (key, priority, creative) ranks strictly above `b`: the larger key,
/// then the larger priority, then the earlier creative in the catalog. A total order, so
/// the pick never depends on the order candidates were scored in (the pruned scan and
/// the full scan agree on ties too).
#[inline]
pub(super) fn beats(a: (f32, f32, CreativeId), b: (f32, f32, CreativeId)) -> bool {
    a.0 > b.0 || (a.0 == b.0 && (a.1 > b.1 || (a.1 == b.1 && a.2 < b.2)))
}

/// True when adding `creative` keeps the picks diverse: no shared exclusion group, and
/// (when `max_theme > 0`) fewer than `max_theme` picks with its theme.
pub(super) fn diverse(
    rules: &[crate::catalog::Rules],
    picks: &[Pick],
    creative: CreativeId,
    max_theme: usize,
) -> bool {
    let r = &rules[creative.index()];
    let mut same_theme = 0;
    for p in picks {
        if p.creative == creative {
            return false;
        }
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
