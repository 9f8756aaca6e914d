//! The assembly algorithm: for one template and one request, the best coherent
//! combination of variants, given each variant's value (its score for this request, or
//! −∞ when it is not eligible). Pure and allocation-free: fixed arrays of
//! [`MAX_SLOTS`] entries.
//!
//! For each theme (each persona a variant speaks to, plus generic), the slots are filled
//! greedily in spec order: each takes its highest-valued eligible variant that speaks to
//! the theme (or is generic; the generic theme takes generic variants only) and is
//! compatible with the slots already filled: not excluded by them, the one an earlier
//! choice requires in this slot, and with every variant it requires in an earlier slot
//! already chosen and in a later slot eligible for the theme. A later slot a choice
//! requires is then forced. The finished assembly is checked against every rule and
//! dropped if one fails, so an assembly returned always satisfies them (a contrived set
//! of rules can make the greedy order miss a valid one; never the reverse). Cost per
//! theme filled: O(S·V·(S + R)) for S slots, V variants per slot and R rules per
//! variant, i.e. O(S·V) for bounded S and R, never V^S; themes are filled best upper
//! bound first and the search stops once no bound can beat the best found.

use super::compile::{Template, Variant};
use super::{MAX_SLOTS, MAX_TEMPLATE_THEMES};

/// The theme of an assembly: `u16::MAX` for generic, else a persona id.
pub(crate) const GENERIC_THEME: u16 = u16::MAX;

/// The best assembly of `template` given `value` (template-local variant index → value,
/// −∞ when ineligible): its theme, the chosen variants per slot (template-local indexes
/// in `chosen[..slots]`) and its value (the mean of the chosen values). `None` when no
/// theme can fill every slot. Ties keep the generic theme, then the lower persona id.
///
/// One pass over the variants gives each theme an upper bound, the mean over slots of
/// the best value that fits it, ignoring the rules (O(S·V·tags)); themes are then filled
/// best bound first, and the search stops at the first theme whose bound cannot beat
/// the best assembly found, so usually one or two themes are filled.
pub(crate) fn best(template: &Template, value: &[f32], chosen: &mut [u16; MAX_SLOTS]) -> Option<(u16, f32)> {
    let slots = template.slots.len();
    let themes = template.themes.len().min(MAX_TEMPLATE_THEMES);
    // Per slot: the best generic value, and per theme the best tagged value.
    let mut generic = [f32::NEG_INFINITY; MAX_SLOTS];
    let mut tagged = [[f32::NEG_INFINITY; MAX_TEMPLATE_THEMES]; MAX_SLOTS];
    for (v, &x) in template.variants.iter().zip(value) {
        if !x.is_finite() {
            continue;
        }
        let s = usize::from(v.slot).min(MAX_SLOTS - 1);
        if v.generic {
            generic[s] = generic[s].max(x);
        } else {
            let mut mask = v.mask;
            while mask != 0 {
                let i = mask.trailing_zeros() as usize;
                mask &= mask - 1;
                if let Some(t) = tagged[s].get_mut(i) {
                    *t = t.max(x);
                }
            }
        }
    }
    // Bounds, in theme order: 0 = generic, 1 + i = persona theme i.
    let mut order = [(0.0f32, 0u8); MAX_TEMPLATE_THEMES + 1];
    let mut count = 0;
    for t in 0..=themes {
        let mut sum = 0.0f32;
        for s in 0..slots {
            let x = if t == 0 { generic[s] } else { generic[s].max(tagged[s][t - 1]) };
            sum += x;
        }
        if sum.is_finite() {
            order[count] = (sum / slots.max(1) as f32, t as u8);
            count += 1;
        }
    }
    let order = &mut order[..count];
    // Best bound first; equal bounds in theme order (generic first).
    order.sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut best: Option<(u8, f32)> = None;
    let mut scratch = [0u16; MAX_SLOTS];
    for &(bound, t) in order.iter() {
        if let Some((bt, bx)) = best {
            if bound < bx || (bound == bx && t > bt) {
                break;
            }
        }
        let filled = if t == 0 {
            fill(template, value, |v| v.generic, &mut scratch)
        } else {
            let bit = 1u64 << (t - 1);
            fill(template, value, |v| v.mask & bit != 0, &mut scratch)
        };
        if let Some(x) = filled {
            if best.is_none_or(|(bt, bx)| x > bx || (x == bx && t < bt)) {
                best = Some((t, x));
                chosen[..slots].copy_from_slice(&scratch[..slots]);
            }
        }
    }
    best.map(|(t, x)| {
        let theme = if t == 0 { GENERIC_THEME } else { template.themes[usize::from(t) - 1] };
        (theme, x)
    })
}

/// Fills every slot for one theme (`fits`); the mean value, or `None`.
fn fill(
    template: &Template,
    value: &[f32],
    fits: impl Fn(&Variant) -> bool,
    chosen: &mut [u16; MAX_SLOTS],
) -> Option<f32> {
    let vars = &template.variants;
    let usable = |i: u16| {
        let i = usize::from(i);
        vars.get(i).is_some_and(&fits) && value.get(i).is_some_and(|x| x.is_finite())
    };
    let mut total = 0.0f32;
    for (s, slot) in template.slots.iter().enumerate() {
        let before = &chosen[..s];
        let mut pick: Option<(u16, f32)> = None;
        for i in slot.start..slot.end {
            if !usable(i) {
                continue;
            }
            let x = value[usize::from(i)];
            if pick.is_some_and(|(_, b)| x <= b) {
                continue;
            }
            let v = &vars[usize::from(i)];
            let fine = before.iter().all(|&u| {
                let u_var = &vars[usize::from(u)];
                !v.excludes.contains(&u)
                    && u_var.requires.iter().all(|&r| usize::from(vars[usize::from(r)].slot) != s || r == i)
            }) && v.requires.iter().all(|&r| {
                let rs = usize::from(vars[usize::from(r)].slot);
                if rs < s {
                    chosen[rs] == r
                } else {
                    usable(r) && !before.iter().any(|u| vars[usize::from(r)].excludes.contains(u))
                }
            });
            if fine {
                pick = Some((i, x));
            }
        }
        let (i, x) = pick?;
        chosen[s] = i;
        total += x;
    }
    let slots = template.slots.len();
    valid(template, &chosen[..slots]).then(|| total / slots.max(1) as f32)
}

/// True when `chosen` (one variant per slot) satisfies every requires and excludes rule.
pub(crate) fn valid(template: &Template, chosen: &[u16]) -> bool {
    chosen.iter().all(|&c| {
        let Some(v) = template.variants.get(usize::from(c)) else { return false };
        v.requires.iter().all(|r| chosen.contains(r)) && !v.excludes.iter().any(|x| chosen.contains(x))
    })
}
