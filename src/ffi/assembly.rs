//! Assembled picks through the C ABI: reading a pick's slots (names, chosen variants,
//! their payloads through `pe_selector_creative_payload`) and recording a reaction to a
//! whole assembly. Accessors only read and never allocate.

use std::ffi::c_char;

use super::boundary::{Failure, Out, OutStr};
use super::context::{self, pe_context};
use super::feedback::feedback_kind;
use super::handles::{arc_ref, box_mut, box_ref, pe_profile, pe_selection, pe_selector, SelectorHandle};
use super::selection::{pick, PE_PERSONA_NONE};
use super::selector::creative_index;
use super::status::pe_status;
use crate::assemble::Assembly;
use crate::error::Error;
use crate::feedback::Feedback;
use crate::select::assemble::{counts_for_variants, nudge_theme};
use crate::select::Selection;

/// The assembly of pick `index`, or `None` for a plain creative.
fn assembly_of(selection: &Selection, index: usize) -> Result<Option<&Assembly>, Failure> {
    let p = pick(selection, index)?;
    Ok(selection.assembly(p))
}

/// Writes the number of slots of pick `index` to `*out_count`: the template's slot
/// count when the pick is an assembled creative (a template), 0 for a plain creative.
/// Slots are indexed `0..count` in the template's order.
///
/// Errors: `PE_STATUS_NULL_PARAMETER`, `PE_STATUS_OUT_OF_RANGE` (`index >=
/// pe_selection_count`).
#[no_mangle]
pub unsafe extern "C" fn pe_selection_slot_count(
    selection: *const pe_selection,
    index: usize,
    out_count: *mut usize,
) -> pe_status {
    ffi_boundary!({
        // SAFETY: a live selection (or NULL) not written during the call, a writable
        // `size_t` (or NULL).
        let (selection, out) =
            unsafe { (box_ref(selection, "selection")?, Out::new(out_count, "out_count")?) };
        out.write(assembly_of(selection, index)?.map_or(0, |a| a.slots().len()));
        Ok(())
    })
}

/// Writes the creative index of the variant chosen for slot `slot` of pick `index` to
/// `*out_variant`. Read its payload (byte for byte as in the spec) with
/// `pe_selector_creative_payload`, its spec id with `pe_selector_variant_id`, and the
/// slot's name with `pe_selector_slot_name`.
///
/// Errors: `PE_STATUS_NULL_PARAMETER`, `PE_STATUS_OUT_OF_RANGE` (`index >=
/// pe_selection_count`, or `slot >= pe_selection_slot_count`, which is 0 for a plain
/// creative).
#[no_mangle]
pub unsafe extern "C" fn pe_selection_slot_variant(
    selection: *const pe_selection,
    index: usize,
    slot: usize,
    out_variant: *mut u32,
) -> pe_status {
    ffi_boundary!({
        // SAFETY: a live selection (or NULL) not written during the call, a writable
        // `uint32_t` (or NULL).
        let (selection, out) =
            unsafe { (box_ref(selection, "selection")?, Out::new(out_variant, "out_variant")?) };
        let slots = assembly_of(selection, index)?.map_or(&[][..], |a| a.slots());
        let choice = slots.get(slot).ok_or_else(|| {
            Failure::out_of_range(format!(
                "slot {slot} is past the end of pick {index}'s {} slots",
                slots.len()
            ))
        })?;
        out.write(choice.variant.0);
        Ok(())
    })
}

/// Writes the theme of pick `index` to `*out_persona`: the persona every chosen variant
/// speaks to (name it with `pe_selector_persona_name`), or `PE_PERSONA_NONE` for a
/// generic assembly and for a plain creative.
///
/// Errors: `PE_STATUS_NULL_PARAMETER`, `PE_STATUS_OUT_OF_RANGE` (`index >=
/// pe_selection_count`).
#[no_mangle]
pub unsafe extern "C" fn pe_selection_theme(
    selection: *const pe_selection,
    index: usize,
    out_persona: *mut u16,
) -> pe_status {
    ffi_boundary!({
        // SAFETY: a live selection (or NULL) not written during the call, a writable
        // `uint16_t` (or NULL).
        let (selection, out) =
            unsafe { (box_ref(selection, "selection")?, Out::new(out_persona, "out_persona")?) };
        out.write(assembly_of(selection, index)?.and_then(Assembly::theme).map_or(PE_PERSONA_NONE, |p| p.0));
        Ok(())
    })
}

/// Copies the name of slot `slot` of template `creative` (the creative index of an
/// assembled pick) into `buf`, NUL-terminated, and writes its length to `*out_len`.
/// Thread-safe.
///
/// Errors: as `pe_selector_creative_id`; `PE_STATUS_OUT_OF_RANGE` also when `creative`
/// is not a template or `slot` is past its last slot.
#[no_mangle]
pub unsafe extern "C" fn pe_selector_slot_name(
    selector: *const pe_selector,
    creative: u32,
    slot: usize,
    buf: *mut c_char,
    cap: usize,
    out_len: *mut usize,
) -> pe_status {
    ffi_boundary!({
        // SAFETY: a live selector (or NULL), a writable buffer of `cap` bytes (or NULL)
        // and a writable `size_t` (or NULL).
        let (selector, out) = unsafe { (arc_ref(selector, "selector")?, OutStr::new(buf, cap, out_len)?) };
        let id = creative_index(selector, creative)?;
        let name = selector.catalog().slot_name(id, slot).ok_or_else(|| {
            Failure::out_of_range(format!(
                "creative {creative} ('{}') has no slot {slot}",
                selector.catalog().creative_id(id)
            ))
        })?;
        out.write(name, "the slot name")
    })
}

/// Copies the spec id of variant `creative` (an index from `pe_selection_slot_variant`)
/// into `buf`, NUL-terminated, and writes its length to `*out_len`: the id as written in
/// the template, e.g. `lux-headline` (its catalog id, from `pe_selector_creative_id`, is
/// `template/variant`). Thread-safe.
///
/// Errors: as `pe_selector_creative_id`; `PE_STATUS_OUT_OF_RANGE` also when `creative`
/// is not a variant.
#[no_mangle]
pub unsafe extern "C" fn pe_selector_variant_id(
    selector: *const pe_selector,
    creative: u32,
    buf: *mut c_char,
    cap: usize,
    out_len: *mut usize,
) -> pe_status {
    ffi_boundary!({
        // SAFETY: a live selector (or NULL), a writable buffer of `cap` bytes (or NULL)
        // and a writable `size_t` (or NULL).
        let (selector, out) = unsafe { (arc_ref(selector, "selector")?, OutStr::new(buf, cap, out_len)?) };
        let id = creative_index(selector, creative)?;
        let variant = selector.catalog().variant_id(id).ok_or_else(|| {
            Failure::out_of_range(format!(
                "creative {creative} ('{}') is not a variant of a template",
                selector.catalog().creative_id(id)
            ))
        })?;
        out.write(variant, "the variant id")
    })
}

/// Records what the person behind `profile` did with assembled pick `index` of
/// `selection` (filled by `pe_select` with this selector), as `pe_record` does for a
/// creative, with the same `context`, `kind` and `value` rules. An impression, click or
/// conversion is recorded for the template and for every chosen variant, so each
/// variant learns on its own; a thumbs-up or -down is recorded for the template (a
/// thumbs-down or dismissal means the template is never assembled for this person
/// again) and moves the assembly's theme persona by one point, once. For a plain pick
/// it is exactly `pe_record` of that creative.
///
/// Thread-safety and allocation as `pe_record`.
///
/// Errors: as `pe_record`; `PE_STATUS_NULL_PARAMETER` for `selection`;
/// `PE_STATUS_OUT_OF_RANGE` when `index >= pe_selection_count`. With an engine's
/// version, a variant that fails part-way leaves the earlier ones recorded.
#[no_mangle]
pub unsafe extern "C" fn pe_record_assembly(
    selector: *const pe_selector,
    profile: *mut pe_profile,
    context: *const pe_context,
    selection: *const pe_selection,
    index: usize,
    kind: u32,
    value: f64,
) -> pe_status {
    ffi_boundary!({
        // SAFETY: a live selector, profile and selection (or NULL) from the matching
        // `_new` functions, the profile used by this thread alone and the selection not
        // written during the call; a readable `pe_context` whose strings are readable
        // for their lengths.
        let (selector, handle, selection, context) = unsafe {
            (
                arc_ref(selector, "selector")?,
                box_mut(profile, "profile")?,
                box_ref(selection, "selection")?,
                context::read(context)?,
            )
        };
        let p = *pick(selection, index)?;
        creative_index(selector, p.creative.0)?;
        let kind = feedback_kind(kind, value)?;
        handle.check_menu(selector)?;
        let feedback = Feedback::new(p.creative, kind, &context);
        let assembly = selection.assembly(&p).copied();
        let recorded = match (selector, assembly) {
            (SelectorHandle::Own(selector), Some(a)) => {
                selector.record_assembly(&mut handle.profile, &feedback, &a)
            }
            (SelectorHandle::Own(selector), None) => selector.record(&mut handle.profile, &feedback),
            (SelectorHandle::Version { engine, version }, a) => (|| {
                if let Some(a) = &a {
                    version.selector().check_assembly(&feedback, a)?;
                }
                engine.record(version, &mut handle.profile, &feedback)?;
                if let Some(a) = &a {
                    if counts_for_variants(kind) {
                        for c in a.slots() {
                            engine.record(
                                version,
                                &mut handle.profile,
                                &Feedback { creative: c.variant, ..feedback },
                            )?;
                        }
                    }
                    nudge_theme(&mut handle.profile, kind, a);
                }
                Ok(())
            })(),
        };
        recorded.map_err(|error| match error {
            Error::Invalid { .. } => Failure::invalid(error.to_string()),
            error => error.into(),
        })
    })
}
