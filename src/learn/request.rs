//! Per-request terms of the learned model: what the shared persona weights and the
//! attribute effects add for one person at one moment, read once per request so that
//! scoring a candidate reads only its own weights. The same features as
//! [`LearnedStats::for_each_feature`], summed in another order (a test holds them equal).
//! Never allocates on `select`: the buffers belong to the caller's selection.

use super::features::{Person, Prior, When};
use super::model::{
    ATTRIBUTE_PARAMS, CREATIVE_PARAMS, GRADED, PERSON_RANKS, RANKED, SCORES, SLOPES, TAG_RANKS,
};
use super::{LearnedStats, DAYPARTS, DEVICES};
use crate::catalog::Catalog;

/// Catalogs with at most this many distinct attribute values have every value's effect
/// in the moment read once per request; beyond, each candidate reads its own.
pub(crate) const MAX_CACHED_ATTRIBUTES: usize = 64;

/// A (mean, variance) pair of log-odds terms.
pub(crate) type Term = (f64, f64);

/// The per-request terms: per (persona, tag rank) the shared weights' contribution per
/// unit of tag weight (filled only for personas the person scores above 0), and per
/// attribute value its effect in this moment (empty when the catalog has too many).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Terms<'a> {
    pub persona: &'a [Term],
    pub attribute: &'a [Term],
}

impl LearnedStats {
    /// Fills the per-request terms for `person` at `when` into the caller's buffers.
    pub(crate) fn fill_terms(
        &self,
        cat: &Catalog,
        person: &Person,
        when: When,
        prior: &Prior,
        persona: &mut Vec<Term>,
        attribute: &mut Vec<Term>,
    ) {
        let shared = &self.model.shared;
        let qs = prior.q0_shared;
        if persona.len() != person.scores.len() * TAG_RANKS {
            persona.clear();
            persona.resize(person.scores.len() * TAG_RANKS, (0.0, 0.0));
        }
        for (p, &s) in person.scores.iter().enumerate() {
            let s = s.min((SCORES - 1) as u8);
            if s == 0 {
                continue;
            }
            let person_rank = usize::from(person.ranks.get(p).copied().unwrap_or(3)).min(PERSON_RANKS - 1);
            let scale = f64::from(s) / 9.0;
            let (sm, sv) = shared.get(SLOPES + p).map_or((0.0, 0.0), |w| w.posterior(0.0, qs));
            for rank in 0..TAG_RANKS {
                let (gm, gv) = shared
                    .get(GRADED + rank * SCORES + usize::from(s))
                    .map_or((0.0, 0.0), |w| w.posterior(0.0, qs));
                let (rm, rv) = shared
                    .get(RANKED + rank * PERSON_RANKS + person_rank)
                    .map_or((0.0, 0.0), |w| w.posterior(0.0, qs));
                if let Some(slot) = persona.get_mut(p * TAG_RANKS + rank) {
                    *slot = (gm + (rm + sm) * scale, gv + scale * scale * (rv + sv));
                }
            }
        }
        attribute.clear();
        let values = cat.attribute_value_count();
        if values <= MAX_CACHED_ATTRIBUTES {
            attribute.extend((0..values).map(|a| self.attribute_term(a, when, prior)));
        }
    }

    /// What attribute value `a` adds at `when`: its main effect and its crosses.
    #[inline]
    fn attribute_term(&self, a: usize, when: When, prior: &Prior) -> Term {
        let Some(w) = self.model.attributes.get(a * ATTRIBUTE_PARAMS..(a + 1) * ATTRIBUTE_PARAMS) else {
            return (0.0, 0.0);
        };
        let q0 = prior.q0_attribute;
        let (mut mean, mut var) = (0.0, 0.0);
        let (slots, active) = when.attribute_slots();
        for &i in &slots[..active] {
            let (m, v) = w[i].posterior(0.0, q0);
            mean += m;
            var += v;
        }
        (mean, var)
    }

    /// The model's log-odds for creative `c` (mean and variance) on top of `offset`,
    /// reading the shared weights from the per-request `terms`, and the variance of the
    /// creative's own part alone (its own weight and its device, daypart and segment
    /// crosses: what only showing it teaches). Lock-free, allocation-free.
    #[inline]
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn predict_with(
        &self,
        cat: &Catalog,
        c: usize,
        person: &Person,
        when: When,
        prior: &Prior,
        terms: Terms,
        offset: f64,
    ) -> (f64, f64, f64) {
        let Some(block) = self.model.creative.get(c * CREATIVE_PARAMS..(c + 1) * CREATIVE_PARAMS) else {
            return (offset, 0.0, 0.0);
        };
        let q0 = prior.q0;
        let (m0, v0) = block[0].posterior(0.0, prior.q0_creative);
        let (m1, v1) = block[1 + when.device.min(DEVICES - 1)].posterior(0.0, q0);
        let (m2, v2) = block[1 + DEVICES + when.daypart.min(DAYPARTS - 1)].posterior(0.0, q0);
        let q0s = prior.q0_segment;
        let (m3, v3) = self.find(c, person.segment).map_or((0.0, 1.0 / q0s), |s| s.param.posterior(0.0, q0s));
        let mut mean = offset + m0 + m1 + m2 + m3;
        let own = v0 + v1 + v2 + v3;
        let mut var = own;
        // The persona prior (`features::prior_lift`), taken in the same pass over the tags.
        let mut lift = 0.0f64;
        let r = &cat.rules[c];
        for t in r.tags.range() {
            let p = cat.tag_persona[t].index();
            let weight = f64::from(cat.tag_weight[t]);
            let s = person.scores.get(p).copied().unwrap_or(0);
            if weight <= 0.0 || s == 0 {
                continue;
            }
            lift = lift.max(prior.tag_lift(weight, s));
            let rank = usize::from(cat.tag_rank[t]).min(TAG_RANKS - 1);
            if let Some(&(m, v)) = terms.persona.get(p * TAG_RANKS + rank) {
                mean += weight * m;
                var += weight * weight * v;
            }
        }
        mean += lift;
        let span = cat.attribute_span.get(c).copied().unwrap_or_default();
        for &a in &cat.attribute_value[span.range()] {
            let a = a as usize;
            let (m, v) = match terms.attribute.get(a) {
                Some(&t) => t,
                None => self.attribute_term(a, when, prior),
            };
            mean += m;
            var += v;
        }
        (mean, var, own)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::learn::features::rank_scores;
    use crate::learn::Rng;
    use crate::sample::Synthetic;

    /// The per-request form and the feature walk agree after random learning.
    #[test]
    fn terms_predict_what_the_feature_walk_predicts() {
        let shape = Synthetic { personas: 12, placements: 1, creatives: 60, seed: 11 };
        let Ok(cat) = Catalog::compile(&shape.spec()) else { panic!("spec") };
        let stats = LearnedStats::new(cat.len(), cat.menu.len(), cat.attribute_value_count(), 4096);
        let prior = Prior {
            base: -4.0,
            beta: 1.6,
            threshold: 7,
            q0_creative: 4.0,
            q0: 6.25,
            q0_segment: 6.25,
            q0_attribute: 6.25,
            q0_shared: 16.0,
        };
        let mut rng = Rng::new(5);
        let mut scores = vec![0u8; 12];
        let mut ranks = vec![0u8; 12];
        for round in 0..400 {
            for s in scores.iter_mut() {
                *s = if rng.unit() < 0.4 { rng.below(10) as u8 } else { 0 };
            }
            let segment = rank_scores(&scores, &mut ranks);
            let person = Person { scores: &scores, ranks: &ranks, segment };
            let when = When {
                device: rng.below(5),
                daypart: rng.below(5),
                channel: rng.below(6),
                weather: rng.below(7),
                weekend: rng.below(7) >= 5,
            };
            let c = rng.below(cat.len());
            stats.learn(&cat, c, &person, when, &prior, -4.0, round % 7 == 0).unwrap();
            let (mut pt, mut at) = (Vec::new(), Vec::new());
            stats.fill_terms(&cat, &person, when, &prior, &mut pt, &mut at);
            let terms = Terms { persona: &pt, attribute: &at };
            for c in 0..cat.len() {
                let a = stats.predict(&cat, c, &person, when, &prior, -4.0);
                let b = stats.predict_with(&cat, c, &person, when, &prior, terms, -4.0);
                assert!((a.0 - b.0).abs() < 1e-9 && (a.1 - b.1).abs() < 1e-9, "creative {c}: {a:?} vs {b:?}");
            }
            // Without the attribute cache, the same.
            let terms = Terms { persona: &pt, attribute: &[] };
            let b = stats.predict_with(&cat, c, &person, when, &prior, terms, -4.0);
            let a = stats.predict(&cat, c, &person, when, &prior, -4.0);
            assert!((a.0 - b.0).abs() < 1e-9 && (a.1 - b.1).abs() < 1e-9);
        }
    }
}
