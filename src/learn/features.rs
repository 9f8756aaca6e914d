//! The click model's features for one (creative, person, moment): which weights are
//! active and with what value, walked in one place so that prediction (in `select`) and
//! learning (in `record`) can never disagree. Never allocates on prediction.

use smallvec::SmallVec;

use super::model::{
    self, Natural, Param, ATTRIBUTE_PARAMS, CREATIVE_PARAMS, GRADED, PERSON_RANKS, RANKED, SCORES, SLOPES,
    TAG_RANKS,
};
use super::{LearnedStats, DAYPARTS, DEVICES, NO_SEGMENT};
use crate::catalog::Catalog;
use crate::error::Result;

/// The model's prior (see [`super::LearningConfig`]).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Prior {
    /// Log-odds of a creative matching nothing.
    pub base: f64,
    /// Log-odds a full match on a high persona adds.
    pub beta: f64,
    /// The lowest score the persona prior counts
    /// ([`super::LearningConfig::prior_from_score`]).
    pub threshold: u8,
    /// Prior precision of each creative's own weight (configured, or learned: see
    /// `spread`).
    pub q0_creative: f64,
    /// Prior precision of the creative's crosses with device and daypart (configured,
    /// or learned: see `spread`).
    pub q0: f64,
    /// Prior precision of the creative's cross with the person's segment (configured,
    /// or learned: see `spread`).
    pub q0_segment: f64,
    /// Prior precision of the attribute effects (main effect, crosses, weekend).
    pub q0_attribute: f64,
    /// Prior precision of the weights shared across creatives (persona score and rank
    /// curves, persona slopes, attribute effects): they pool many creatives' evidence,
    /// so one creative's run of luck must move them only a little.
    pub q0_shared: f64,
}

/// What the model reads of a person: per persona, the counted score (0..=9; 0 without
/// consent to its sources; 9 for a declared like) and its rank among the person's
/// scores (0 = top, capped at 3; ties by persona order), and the segment (the top
/// persona, or [`NO_SEGMENT`] when every score is 0).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Person<'a> {
    pub scores: &'a [u8],
    pub ranks: &'a [u8],
    pub segment: u16,
}

/// What the model reads of the moment.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct When {
    pub device: usize,
    pub daypart: usize,
    pub channel: usize,
    pub weather: usize,
    /// Saturday or Sunday, local.
    pub weekend: bool,
}

impl When {
    /// The moment of a request or an event, as the model reads it.
    pub(crate) fn new(
        device: crate::Device,
        daypart: crate::Daypart,
        channel: crate::Channel,
        weather: crate::Weather,
        weekday: crate::Weekday,
    ) -> When {
        When {
            device: device as usize,
            daypart: daypart as usize,
            channel: channel as usize,
            weather: weather as usize,
            weekend: weekday.is_weekend(),
        }
    }

    /// The weights of an attribute value active at this moment, as offsets into its
    /// block of [`ATTRIBUTE_PARAMS`]: its main effect, its cross with each of
    /// [`model::ATTRIBUTE_CROSSES`], and at the weekend its weekend weight. The second
    /// value is how many of the slots are active.
    #[inline]
    pub(crate) fn attribute_slots(&self) -> ([usize; ATTRIBUTE_SLOTS], usize) {
        let mut slots = [0usize; ATTRIBUTE_SLOTS];
        let values = [self.device, self.daypart, self.channel, self.weather];
        let mut start = 1;
        for ((slot, n), v) in slots[1..].iter_mut().zip(model::ATTRIBUTE_CROSSES).zip(values) {
            *slot = start + v.min(n - 1);
            start += n;
        }
        slots[ATTRIBUTE_SLOTS - 1] = model::ATTRIBUTE_WEEKEND;
        (slots, if self.weekend { ATTRIBUTE_SLOTS } else { ATTRIBUTE_SLOTS - 1 })
    }
}

/// The most weights of one attribute value active at once (see
/// [`When::attribute_slots`]).
pub(crate) const ATTRIBUTE_SLOTS: usize = 2 + model::ATTRIBUTE_CROSSES.len();

/// The most `f` summed over the weights of one attribute value's block (`w`) that any
/// one moment makes active (see [`When::attribute_slots`]): the main effect, the
/// largest of each cross, and the weekend weight when it adds.
pub(crate) fn attribute_most(w: &[Param], f: impl Fn(&Param) -> f64) -> f64 {
    let (Some(main), Some(weekend)) = (w.first(), w.get(model::ATTRIBUTE_WEEKEND)) else { return 0.0 };
    let mut most = f(main) + f(weekend).max(0.0);
    let mut at = 1;
    for n in model::ATTRIBUTE_CROSSES {
        // Every cross lies before the weekend weight, which is there.
        most += w[at..at + n].iter().map(&f).fold(f64::NEG_INFINITY, f64::max);
        at += n;
    }
    most
}

/// The ranks of `scores` (0 = highest; equal scores rank by position), capped at
/// `PERSON_RANKS − 1`, into `ranks`; returns the segment (the top persona with a
/// score above 0, or [`NO_SEGMENT`]).
pub(crate) fn rank_scores(scores: &[u8], ranks: &mut [u8]) -> u16 {
    let mut top = [(NO_SEGMENT, 0u8); PERSON_RANKS - 1];
    for (p, &s) in scores.iter().enumerate() {
        if s == 0 {
            continue;
        }
        // Insert into the tiny sorted top list.
        let mut item = (p as u16, s);
        for slot in top.iter_mut() {
            if slot.0 == NO_SEGMENT || item.1 > slot.1 {
                std::mem::swap(slot, &mut item);
                if item.0 == NO_SEGMENT {
                    break;
                }
            }
        }
    }
    for r in ranks.iter_mut() {
        *r = (PERSON_RANKS - 1) as u8;
    }
    for (rank, (p, _)) in top.iter().enumerate() {
        if let Some(r) = ranks.get_mut(usize::from(*p)) {
            *r = rank as u8;
        }
    }
    top[0].0
}

/// The persona prior of creative `c` for a person with counted `scores`, in log-odds on
/// top of the base rate: its best single match, `β · min(w, 1) · s/9` over the tags
/// whose persona the person scores at or above the threshold (any tag rank). The best
/// one, not the sum: listing more personas never raises a creative's starting point
/// above what a creative focused on the person's persona gets. The learned weights
/// (from 0, by tag weight) then say what data shows beyond it: lower scores, whether a
/// secondary tag adds, whether tags add up.
#[inline]
pub(crate) fn prior_lift(cat: &Catalog, c: usize, scores: &[u8], prior: &Prior) -> f64 {
    let Some(r) = cat.rules.get(c) else { return 0.0 };
    let mut lift = 0.0f64;
    for t in r.tags.range() {
        let s = scores.get(cat.tag_persona[t].index()).copied().unwrap_or(0);
        lift = lift.max(prior.tag_lift(f64::from(cat.tag_weight[t]), s));
    }
    lift
}

impl Prior {
    /// What one tag of weight `w` on a persona the person scores `s` lends the persona
    /// prior: `β · min(w, 1) · s/9` at or above the threshold, else 0 ([`prior_lift`]
    /// takes the largest over a creative's tags).
    #[inline]
    pub(crate) fn tag_lift(&self, w: f64, s: u8) -> f64 {
        if s >= self.threshold && s > 0 && w > 0.0 {
            w.min(1.0) * self.beta * f64::from(s.min(9)) / 9.0
        } else {
            0.0
        }
    }
}

/// The weight every absent (creative, segment) cell reads: the prior.
static PRIOR_PARAM: Param = Param::at_prior();

impl LearnedStats {
    /// Calls `f(weight, value, prior mean, prior precision)` for every active feature of creative `c` for
    /// `person` at `when`. With `insert`, the (creative, segment) weight is created when
    /// missing (an error when the table is full); without, a missing one reads as the
    /// prior.
    #[inline]
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn for_each_feature<'s>(
        &'s self,
        cat: &Catalog,
        c: usize,
        person: &Person,
        when: When,
        prior: &Prior,
        insert: bool,
        f: &mut impl FnMut(&'s Param, f64, f64, f64),
    ) -> Result<()> {
        let m = &self.model;
        let Some(block) = m.creative.get(c * CREATIVE_PARAMS..(c + 1) * CREATIVE_PARAMS) else {
            return Ok(());
        };
        let q0 = prior.q0;
        f(&block[0], 1.0, 0.0, prior.q0_creative);
        f(&block[1 + when.device.min(DEVICES - 1)], 1.0, 0.0, q0);
        f(&block[1 + DEVICES + when.daypart.min(DAYPARTS - 1)], 1.0, 0.0, q0);
        let segment = if insert {
            &self.find_or_insert(c, person.segment)?.param
        } else {
            self.find(c, person.segment).map_or(&PRIOR_PARAM, |s| &s.param)
        };
        f(segment, 1.0, 0.0, prior.q0_segment);
        let r = &cat.rules[c];
        let qs = prior.q0_shared;
        for t in r.tags.range() {
            let p = cat.tag_persona[t].index();
            let weight = f64::from(cat.tag_weight[t]);
            if weight <= 0.0 {
                continue;
            }
            let rank = usize::from(cat.tag_rank[t]).min(TAG_RANKS - 1);
            let s = person.scores.get(p).copied().unwrap_or(0).min((SCORES - 1) as u8);
            // The persona prior sits in the offset ([`prior_lift`]); these weights learn
            // from 0 what data says beyond it: lower scores, how much a secondary tag
            // adds, whether tags add up.
            // A score of 0 is the baseline the offset stands for: no feature, so what one
            // unmatched creative earns is never lent to every other unmatched creative.
            if s > 0 {
                f(&m.shared[GRADED + rank * SCORES + usize::from(s)], weight, 0.0, qs);
                let x = weight * f64::from(s) / 9.0;
                let person_rank =
                    usize::from(person.ranks.get(p).copied().unwrap_or(3)).min(PERSON_RANKS - 1);
                f(&m.shared[RANKED + rank * PERSON_RANKS + person_rank], x, 0.0, qs);
                if let Some(slope) = m.shared.get(SLOPES + p) {
                    f(slope, x, 0.0, qs);
                }
            }
        }
        let span = cat.attribute_span.get(c).copied().unwrap_or_default();
        for &a in &cat.attribute_value[span.range()] {
            let a = a as usize;
            let Some(w) = m.attributes.get(a * ATTRIBUTE_PARAMS..(a + 1) * ATTRIBUTE_PARAMS) else {
                continue;
            };
            let (slots, active) = when.attribute_slots();
            for &i in &slots[..active] {
                f(&w[i], 1.0, 0.0, prior.q0_attribute);
            }
        }
        Ok(())
    }

    /// The model's log-odds for creative `c` (mean and variance), on top of `offset`.
    /// Lock-free, allocation-free.
    #[inline]
    pub(crate) fn predict(
        &self,
        cat: &Catalog,
        c: usize,
        person: &Person,
        when: When,
        prior: &Prior,
        offset: f64,
    ) -> (f64, f64) {
        let (mut mean, mut var) = (offset + prior_lift(cat, c, person.scores, prior), 0.0);
        let _ = self.for_each_feature(cat, c, person, when, prior, false, &mut |w, x, mu0, q0| {
            let (m, v) = w.posterior(mu0, q0);
            mean += x * m;
            var += x * x * v;
        });
        (mean, var)
    }

    /// Learns from one impression (`click == false`) or the click on it: every active
    /// weight moves by the one-step update. Returns the rate the model predicted. All
    /// or nothing: an error (full segment table, an overflowing weight) changes nothing.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn learn(
        &self,
        cat: &Catalog,
        c: usize,
        person: &Person,
        when: When,
        prior: &Prior,
        offset: f64,
        click: bool,
    ) -> Result<f64> {
        let mut active: SmallVec<[(&Param, f64, f64, f64); 48]> = SmallVec::new();
        self.for_each_feature(cat, c, person, when, prior, true, &mut |w, x, mu0, q0| {
            let (m, v) = w.posterior(mu0, q0);
            active.push((w, x, m, v));
        })?;
        let offset = offset + prior_lift(cat, c, person.scores, prior);
        let logit = offset + active.iter().map(|(_, x, m, _)| x * m).sum::<f64>();
        let var: f64 = active.iter().map(|(_, x, _, v)| x * x * v).sum();
        let p = model::sigmoid(logit);
        let update = |x: f64, m: f64| -> Natural {
            if click {
                model::click_update(x, p, var)
            } else {
                model::impression_update(x, m, p, var)
            }
        };
        if active.iter().any(|(w, x, m, _)| w.would_overflow(&update(*x, *m))) {
            return Err(crate::error::Error::invalid(
                "learned model",
                "weights",
                "a weight is saturated; the event was not learned",
            ));
        }
        for (w, x, m, _) in &active {
            w.add(&update(*x, *m))?;
        }
        if let Some(slot) = self.find(c, person.segment) {
            self.raise_segment_max(c, slot.param.posterior(0.0, prior.q0_segment).0);
        }
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_follow_scores_with_ties_by_position() {
        let scores = [3u8, 9, 0, 9, 5, 1];
        let mut ranks = [0u8; 6];
        let segment = rank_scores(&scores, &mut ranks);
        assert_eq!(segment, 1);
        assert_eq!(ranks, [3, 0, 3, 1, 2, 3]);
        let mut ranks = [0u8; 3];
        assert_eq!(rank_scores(&[0, 0, 0], &mut ranks), NO_SEGMENT);
        assert_eq!(ranks, [3, 3, 3]);
    }
}
