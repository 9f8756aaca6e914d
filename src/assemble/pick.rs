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
//! theme: O(S·V·(S + R)) for S slots, V variants per slot and R rules per variant, i.e.
//! O(S·V) for bounded S and R, never V^S.

use super::compile::{Template, Variant};
use super::MAX_SLOTS;

/// The theme of an assembly: `u16::MAX` for generic, else a persona id.
pub(crate) const GENERIC_THEME: u16 = u16::MAX;

/// The best assembly of `template` given `value` (template-local variant index → value,
/// −∞ when ineligible): its theme, the chosen variants per slot (template-local indexes
/// in `chosen[..slots]`) and its value (the mean of the chosen values). `None` when no
/// theme can fill every slot.
pub(crate) fn best(template: &Template, value: &[f32], chosen: &mut [u16; MAX_SLOTS]) -> Option<(u16, f32)> {
    let slots = template.slots.len();
    // Themes a non-generic eligible variant speaks to; the rest equal the generic one.
    let live = template
        .variants
        .iter()
        .zip(value)
        .filter(|(v, x)| !v.generic && x.is_finite())
        .fold(0u64, |m, (v, _)| m | v.mask);
    let mut best: Option<(u16, f32)> = None;
    let mut scratch = [0u16; MAX_SLOTS];
    // Generic first, so a tie keeps the plainer theme.
    if let Some(x) = fill(template, value, |v| v.generic, &mut scratch) {
        best = Some((GENERIC_THEME, x));
        chosen[..slots].copy_from_slice(&scratch[..slots]);
    }
    for (i, &persona) in template.themes.iter().enumerate() {
        let bit = 1u64 << i;
        if live & bit == 0 {
            continue;
        }
        if let Some(x) = fill(template, value, |v| v.mask & bit != 0, &mut scratch) {
            if best.is_none_or(|(_, b)| x > b) {
                best = Some((persona, x));
                chosen[..slots].copy_from_slice(&scratch[..slots]);
            }
        }
    }
    best
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
