//! `pe_selection`: the caller-owned output of `pe_select`, sized once for a selector's
//! catalog and reused per request, with per-pick accessors and per-request exclusions.
//! Accessors only read; none allocates.

use super::boundary::{Failure, Out};
use super::handles::{arc_ref, box_free, box_into_ptr, box_mut, box_ref, pe_selection, pe_selector};
use super::status::pe_status;
use crate::catalog::CreativeId;
use crate::select::{Pick, ReasonKind, Selection, MAX_K};

/// Why a creative was picked (values written by `pe_selection_reason_kind`). New kinds
/// may be added; treat unknown values as "other".
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum pe_reason_kind {
    /// It matches one of the person's high personas (see `pe_selection_reason_persona`).
    PersonaMatch = 0,
    /// No high persona matched; it ranked on priority and context.
    Priority = 1,
    /// Nothing else was eligible; this is the placement's fallback.
    Fallback = 2,
    /// It ranked first on what was learned from reactions to it.
    Learned = 3,
    /// The exploration policy chose it over the current best, to learn.
    Exploring = 4,
}

/// The persona id `pe_selection_reason_persona` writes when no persona contributed.
pub const PE_PERSONA_NONE: u16 = 0xffff;

/// The largest k a selection may ask for.
pub const PE_SELECTION_MAX_K: usize = 256;

const _: () = assert!(PE_SELECTION_MAX_K == MAX_K);

/// The C twin of a reason kind. Exhaustive: a new Rust kind does not compile until the
/// C enum has it.
const fn reason_kind_to_c(kind: ReasonKind) -> pe_reason_kind {
    match kind {
        ReasonKind::PersonaMatch => pe_reason_kind::PersonaMatch,
        ReasonKind::Priority => pe_reason_kind::Priority,
        ReasonKind::Fallback => pe_reason_kind::Fallback,
        ReasonKind::Learned => pe_reason_kind::Learned,
        ReasonKind::Exploring => pe_reason_kind::Exploring,
    }
}

/// Which list of a selection an accessor reads.
#[derive(Clone, Copy)]
enum List {
    /// The served picks.
    Picks,
    /// What the learning policy would have picked, for a placement in shadow mode.
    Shadow,
}

impl List {
    fn of(self, selection: &Selection) -> &[Pick] {
        match self {
            List::Picks => selection.picks(),
            List::Shadow => selection.shadow_picks(),
        }
    }
}

/// Entry `index` of one list of a selection, or `PE_STATUS_OUT_OF_RANGE`.
fn entry(selection: &Selection, list: List, index: usize) -> Result<&Pick, Failure> {
    let picks = list.of(selection);
    picks.get(index).ok_or_else(|| {
        let what = match list {
            List::Picks => "pick",
            List::Shadow => "shadow pick",
        };
        Failure::out_of_range(format!(
            "{what} index {index} is past the end of the selection ({} {what}s)",
            picks.len()
        ))
    })
}

/// Pick `index` of a selection, or `PE_STATUS_OUT_OF_RANGE`.
pub(crate) fn pick(selection: &Selection, index: usize) -> Result<&Pick, Failure> {
    entry(selection, List::Picks, index)
}

/// Creates a selection of up to `k` picks (1..=`PE_SELECTION_MAX_K`) with scratch space
/// sized for `selector`'s catalog, so `pe_select` into it never allocates. It may be used
/// with other selectors too (it grows on first use if their catalog is larger).
///
/// On success writes the selection to `*out_selection`; the caller owns it and frees it
/// with `pe_selection_free`. Thread-safe for the selector; use each selection from one
/// thread at a time.
///
/// Errors: `PE_STATUS_NULL_PARAMETER`, `PE_STATUS_INVALID_ARGUMENT` (`k` is 0 or above
/// `PE_SELECTION_MAX_K`).
#[no_mangle]
pub unsafe extern "C" fn pe_selection_new(
    selector: *const pe_selector,
    k: usize,
    out_selection: *mut *mut pe_selection,
) -> pe_status {
    ffi_boundary!({
        // SAFETY: a live selector (or NULL) and a writable pointer slot (or NULL).
        let (selector, out) =
            unsafe { (arc_ref(selector, "selector")?, Out::new(out_selection, "out_selection")?) };
        if k == 0 || k > MAX_K {
            return Err(Failure::invalid(format!("k: {k} picks asked for (1..={MAX_K})")));
        }
        out.write(box_into_ptr(selector.new_selection(k)));
        Ok(())
    })
}

/// Frees a selection. NULL does nothing. The pointer must not be used after this call,
/// nor concurrently with it.
#[no_mangle]
pub unsafe extern "C" fn pe_selection_free(selection: *mut pe_selection) {
    ffi_boundary!(default = (), {
        // SAFETY: the caller gives up a pointer from `pe_selection_new` (or NULL) and
        // does not use it again.
        unsafe { box_free(selection) }
    })
}

/// Writes the number of picks of the last `pe_select` (0 before any) to `*out_count`.
/// Picks are indexed `0..count`, best first.
///
/// Errors: `PE_STATUS_NULL_PARAMETER`.
#[no_mangle]
pub unsafe extern "C" fn pe_selection_count(
    selection: *const pe_selection,
    out_count: *mut usize,
) -> pe_status {
    ffi_boundary!({
        // SAFETY: a live selection (or NULL) not written during the call, a writable
        // `size_t` (or NULL).
        let (selection, out) =
            unsafe { (box_ref(selection, "selection")?, Out::new(out_count, "out_count")?) };
        out.write(selection.len());
        Ok(())
    })
}

/// Reads one field of entry `index` of a list into an out-parameter.
///
/// # Safety
/// As for the accessors below.
unsafe fn read_entry<T>(
    selection: *const pe_selection,
    list: List,
    index: usize,
    out: *mut T,
    field: impl FnOnce(&Pick) -> T,
) -> Result<(), Failure> {
    // SAFETY: forwarded from the accessor's caller: a live selection (or NULL) not
    // written during the call, a writable `T` (or NULL).
    let (selection, out) = unsafe { (box_ref(selection, "selection")?, Out::new(out, "out")?) };
    out.write(field(entry(selection, list, index)?));
    Ok(())
}

/// Reads one field of pick `index` into an out-parameter.
///
/// # Safety
/// As for the accessors below.
unsafe fn read_pick<T>(
    selection: *const pe_selection,
    index: usize,
    out: *mut T,
    field: impl FnOnce(&Pick) -> T,
) -> Result<(), Failure> {
    // SAFETY: forwarded from the accessor's caller.
    unsafe { read_entry(selection, List::Picks, index, out, field) }
}

/// Writes the creative index of pick `index` to `*out_creative`; turn it into the
/// creative's id or payload with `pe_selector_creative_id` / `pe_selector_creative_payload`.
///
/// Errors: `PE_STATUS_NULL_PARAMETER`, `PE_STATUS_OUT_OF_RANGE` (`index >= count`).
#[no_mangle]
pub unsafe extern "C" fn pe_selection_creative(
    selection: *const pe_selection,
    index: usize,
    out_creative: *mut u32,
) -> pe_status {
    ffi_boundary!({
        // SAFETY: the caller passes a live selection (or NULL) and a writable
        // out-parameter (or NULL), as `read_pick` requires.
        unsafe { read_pick(selection, index, out_creative, |p| p.creative.0) }
    })
}

/// Writes the final score of pick `index` to `*out_score`.
///
/// Errors: `PE_STATUS_NULL_PARAMETER`, `PE_STATUS_OUT_OF_RANGE` (`index >= count`).
#[no_mangle]
pub unsafe extern "C" fn pe_selection_score(
    selection: *const pe_selection,
    index: usize,
    out_score: *mut f32,
) -> pe_status {
    ffi_boundary!({
        // SAFETY: the caller passes a live selection (or NULL) and a writable
        // out-parameter (or NULL), as `read_pick` requires.
        unsafe { read_pick(selection, index, out_score, |p| p.score) }
    })
}

/// Writes the probability with which pick `index` was chosen for its slot to
/// `*out_propensity` (1.0 for deterministic choices), for logging and off-policy
/// evaluation.
///
/// Errors: `PE_STATUS_NULL_PARAMETER`, `PE_STATUS_OUT_OF_RANGE` (`index >= count`).
#[no_mangle]
pub unsafe extern "C" fn pe_selection_propensity(
    selection: *const pe_selection,
    index: usize,
    out_propensity: *mut f32,
) -> pe_status {
    ffi_boundary!({
        // SAFETY: the caller passes a live selection (or NULL) and a writable
        // out-parameter (or NULL), as `read_pick` requires.
        unsafe { read_pick(selection, index, out_propensity, |p| p.propensity) }
    })
}

/// Writes why pick `index` was chosen, a `pe_reason_kind` value, to `*out_kind`.
///
/// Errors: `PE_STATUS_NULL_PARAMETER`, `PE_STATUS_OUT_OF_RANGE` (`index >= count`).
#[no_mangle]
pub unsafe extern "C" fn pe_selection_reason_kind(
    selection: *const pe_selection,
    index: usize,
    out_kind: *mut u32,
) -> pe_status {
    ffi_boundary!({
        // SAFETY: the caller passes a live selection (or NULL) and a writable
        // out-parameter (or NULL), as `read_pick` requires.
        unsafe { read_pick(selection, index, out_kind, |p| reason_kind_to_c(p.reason.kind) as u32) }
    })
}

/// Writes the persona that contributed most to pick `index` to `*out_persona`
/// (`PE_PERSONA_NONE` when none did; name it with `pe_selector_persona_name`) and the
/// person's score for it (0..=9; 9 for a declared like; 0 with `PE_PERSONA_NONE`) to
/// `*out_score`.
///
/// Errors: `PE_STATUS_NULL_PARAMETER` (either out-parameter too),
/// `PE_STATUS_OUT_OF_RANGE` (`index >= count`). Nothing is written on error.
#[no_mangle]
pub unsafe extern "C" fn pe_selection_reason_persona(
    selection: *const pe_selection,
    index: usize,
    out_persona: *mut u16,
    out_score: *mut u8,
) -> pe_status {
    ffi_boundary!({
        // SAFETY: a live selection (or NULL) not written during the call, a writable
        // `uint16_t` and `uint8_t` (or NULL).
        let (selection, out_persona, out_score) = unsafe {
            (
                box_ref(selection, "selection")?,
                Out::new(out_persona, "out_persona")?,
                Out::new(out_score, "out_score")?,
            )
        };
        let reason = &pick(selection, index)?.reason;
        match reason.persona {
            Some(p) => {
                out_persona.write(p.0);
                out_score.write(reason.persona_score);
            }
            None => {
                out_persona.write(PE_PERSONA_NONE);
                out_score.write(0);
            }
        }
        Ok(())
    })
}

/// Writes the numbers behind pick `index`'s score: `*out_base`, the rules score
/// `priority * (prior + persona match) * boosts * fatigue`; `*out_fatigue`, the fatigue
/// multiplier for this person (1 when fresh, lower after repeated impressions without
/// engagement); `*out_estimate`, the learned click-rate estimate (0 under the `"rules"`
/// policy and for the served picks of a placement in shadow mode); and `*out_evidence`, the impressions behind that estimate (the person's
/// segment's own plus data borrowed from the creative overall, its device and daypart).
/// For logs and dashboards.
///
/// Errors: `PE_STATUS_NULL_PARAMETER` (any out-parameter too),
/// `PE_STATUS_OUT_OF_RANGE` (`index >= count`). Nothing is written on error.
#[no_mangle]
pub unsafe extern "C" fn pe_selection_reason_details(
    selection: *const pe_selection,
    index: usize,
    out_base: *mut f32,
    out_fatigue: *mut f32,
    out_estimate: *mut f32,
    out_evidence: *mut f32,
) -> pe_status {
    ffi_boundary!({
        // SAFETY: a live selection (or NULL) not written during the call, four writable
        // `float`s (or NULL).
        let (selection, base, fatigue, estimate, evidence) = unsafe {
            (
                box_ref(selection, "selection")?,
                Out::new(out_base, "out_base")?,
                Out::new(out_fatigue, "out_fatigue")?,
                Out::new(out_estimate, "out_estimate")?,
                Out::new(out_evidence, "out_evidence")?,
            )
        };
        let reason = &pick(selection, index)?.reason;
        base.write(reason.base);
        fatigue.write(reason.fatigue);
        estimate.write(reason.estimate);
        evidence.write(reason.evidence);
        Ok(())
    })
}

/// Writes the number of shadow picks of the last `pe_select` to `*out_count`: what the
/// learning policy would have picked at a placement in shadow mode (see
/// `pe_selector_set_shadow`), best first, indexed `0..count`. 0 when the placement was
/// not in shadow mode, when the policy is `"rules"`, and before any `pe_select`.
///
/// Errors: `PE_STATUS_NULL_PARAMETER`.
#[no_mangle]
pub unsafe extern "C" fn pe_selection_shadow_count(
    selection: *const pe_selection,
    out_count: *mut usize,
) -> pe_status {
    ffi_boundary!({
        // SAFETY: a live selection (or NULL) not written during the call, a writable
        // `size_t` (or NULL).
        let (selection, out) =
            unsafe { (box_ref(selection, "selection")?, Out::new(out_count, "out_count")?) };
        out.write(selection.shadow_picks().len());
        Ok(())
    })
}

/// Writes the creative index of shadow pick `index` to `*out_creative` (as
/// `pe_selection_creative` does for served picks).
///
/// Errors: `PE_STATUS_NULL_PARAMETER`, `PE_STATUS_OUT_OF_RANGE` (`index >=` the shadow
/// count).
#[no_mangle]
pub unsafe extern "C" fn pe_selection_shadow_creative(
    selection: *const pe_selection,
    index: usize,
    out_creative: *mut u32,
) -> pe_status {
    ffi_boundary!({
        // SAFETY: the caller passes a live selection (or NULL) and a writable
        // out-parameter (or NULL), as `read_entry` requires.
        unsafe { read_entry(selection, List::Shadow, index, out_creative, |p| p.creative.0) }
    })
}

/// Writes the score the learning policy gave shadow pick `index` to `*out_score`.
///
/// Errors: `PE_STATUS_NULL_PARAMETER`, `PE_STATUS_OUT_OF_RANGE` (`index >=` the shadow
/// count).
#[no_mangle]
pub unsafe extern "C" fn pe_selection_shadow_score(
    selection: *const pe_selection,
    index: usize,
    out_score: *mut f32,
) -> pe_status {
    ffi_boundary!({
        // SAFETY: the caller passes a live selection (or NULL) and a writable
        // out-parameter (or NULL), as `read_entry` requires.
        unsafe { read_entry(selection, List::Shadow, index, out_score, |p| p.score) }
    })
}

/// Writes the probability with which the learning policy would have chosen shadow pick
/// `index` for its slot to `*out_propensity`, for off-policy evaluation of the policy
/// before it serves.
///
/// Errors: `PE_STATUS_NULL_PARAMETER`, `PE_STATUS_OUT_OF_RANGE` (`index >=` the shadow
/// count).
#[no_mangle]
pub unsafe extern "C" fn pe_selection_shadow_propensity(
    selection: *const pe_selection,
    index: usize,
    out_propensity: *mut f32,
) -> pe_status {
    ffi_boundary!({
        // SAFETY: the caller passes a live selection (or NULL) and a writable
        // out-parameter (or NULL), as `read_entry` requires.
        unsafe { read_entry(selection, List::Shadow, index, out_propensity, |p| p.propensity) }
    })
}

/// Excludes creative `creative` (an index from `pe_selector_creative` or
/// `pe_selection_creative`) from the following `pe_select` calls into this selection,
/// e.g. because it is already on the page, until `pe_selection_clear_exclusions`.
/// Allocates only past 8 exclusions. An index no catalog has simply never matches.
///
/// Errors: `PE_STATUS_NULL_PARAMETER`.
#[no_mangle]
pub unsafe extern "C" fn pe_selection_exclude(selection: *mut pe_selection, creative: u32) -> pe_status {
    ffi_boundary!({
        // SAFETY: a live selection (or NULL) used by this thread alone.
        let selection = unsafe { box_mut(selection, "selection")? };
        selection.exclude(CreativeId(creative));
        Ok(())
    })
}

/// Forgets every exclusion of this selection.
///
/// Errors: `PE_STATUS_NULL_PARAMETER`.
#[no_mangle]
pub unsafe extern "C" fn pe_selection_clear_exclusions(selection: *mut pe_selection) -> pe_status {
    ffi_boundary!({
        // SAFETY: a live selection (or NULL) used by this thread alone.
        let selection = unsafe { box_mut(selection, "selection")? };
        selection.clear_exclusions();
        Ok(())
    })
}
