//! `pe_selector`: building a selector from a catalog spec, resolving names to ids
//! outside the hot path, reading creatives back, and `pe_select` itself, which checks
//! its arguments and calls `Selector::select` without allocating.

use std::ffi::c_char;
use std::sync::Arc;

use super::boundary::{arg_str, opt_str, Failure, Out, OutStr};
use super::context::{self, pe_context};
use super::handles::{
    arc_free, arc_into_ptr, arc_ref, box_mut, box_ref, pe_profile, pe_selection, pe_selector, SelectorHandle,
};
use super::status::pe_status;
use crate::catalog::{Catalog, CreativeId, PlacementId};
use crate::persona::PersonaId;
use crate::select::{Selector, SelectorConfig};

/// Parses the optional configuration JSON: absent means the defaults.
pub(crate) unsafe fn config(ptr: *const c_char, len: usize) -> Result<SelectorConfig, Failure> {
    // SAFETY: forwarded from the entry point's caller.
    match unsafe { opt_str(ptr, len, "config_json") }? {
        None => Ok(SelectorConfig::default()),
        Some(json) => serde_json::from_str(json).map_err(|e| {
            Failure::new(
                pe_status::InvalidJson,
                format!("selector config: invalid JSON: {}", crate::error::json_message(&e)),
            )
        }),
    }
}

fn finish(catalog: Catalog, config: SelectorConfig, out: Out<*mut pe_selector>) -> Result<(), Failure> {
    let selector = Selector::new(catalog, config)?;
    out.write(arc_into_ptr::<pe_selector>(Arc::new(SelectorHandle::Own(selector))).cast_mut());
    Ok(())
}

/// Creates a selector from a catalog spec in JSON (`json_len` bytes of UTF-8 at `json`,
/// no NUL needed) and an optional selector configuration in JSON (the fields of
/// `SelectorConfig`: `threshold`, `prior`, `max_per_persona`, `stages`, `intimacy`,
/// `fatigue`, `learning`, e.g. `{"learning": {"policy": {"kind": "thompson"}}}`;
/// omitted fields keep their defaults). Pass `config_len` 0 (and any `config_json`,
/// e.g. NULL) for the default configuration.
///
/// On success writes a new selector to `*out_selector`; the caller owns it and frees it
/// with `pe_selector_free`. The JSON is only read during the call. Thread-safe.
///
/// Errors: `PE_STATUS_NULL_PARAMETER` (`json`, `out_selector`, or `config_json` with
/// `config_len > 0`), `PE_STATUS_INVALID_UTF8`, `PE_STATUS_INVALID_JSON` (syntax or
/// shape; the message has line and column, and names the creative and the field when
/// one is at fault), `PE_STATUS_INVALID_SPEC` (validation: the message names the
/// creative and the field, e.g. an unknown persona on a creative),
/// `PE_STATUS_INVALID_ARGUMENT` (a document larger than its limit).
#[no_mangle]
pub unsafe extern "C" fn pe_selector_new_from_json(
    json: *const c_char,
    json_len: usize,
    config_json: *const c_char,
    config_len: usize,
    out_selector: *mut *mut pe_selector,
) -> pe_status {
    ffi_boundary!({
        // SAFETY: the caller passes readable strings and a writable pointer slot (or
        // NULL), as documented above.
        let (out, json, config) = unsafe {
            (
                Out::new(out_selector, "out_selector")?,
                arg_str(json, json_len, "json")?,
                config(config_json, config_len)?,
            )
        };
        finish(Catalog::from_json(json)?, config, out)
    })
}

/// Creates a selector from a catalog spec file in JSON. `path` is `path_len` bytes of
/// UTF-8 (no NUL needed); the configuration is as for `pe_selector_new_from_json`.
///
/// On success writes a new selector to `*out_selector`; the caller owns it and frees it
/// with `pe_selector_free`. Thread-safe.
///
/// Errors: `PE_STATUS_NULL_PARAMETER` (`path`, `out_selector`, or `config_json` with
/// `config_len > 0`), `PE_STATUS_INVALID_UTF8`, `PE_STATUS_IO` (the file cannot be read;
/// the message has the path), `PE_STATUS_INVALID_JSON` (also for an empty file; the
/// message names the file), `PE_STATUS_INVALID_SPEC`, `PE_STATUS_INVALID_ARGUMENT` (a
/// file larger than its limit).
#[no_mangle]
pub unsafe extern "C" fn pe_selector_new_from_file(
    path: *const c_char,
    path_len: usize,
    config_json: *const c_char,
    config_len: usize,
    out_selector: *mut *mut pe_selector,
) -> pe_status {
    ffi_boundary!({
        // SAFETY: as in `pe_selector_new_from_json`.
        let (out, path, config) = unsafe {
            (
                Out::new(out_selector, "out_selector")?,
                arg_str(path, path_len, "path")?,
                config(config_json, config_len)?,
            )
        };
        finish(Catalog::from_file(path)?, config, out)
    })
}

/// Releases the caller's reference to a selector. Profiles created from it keep their
/// own reference, so they stay usable; the selector's memory goes when the last of them
/// is freed too. NULL does nothing.
///
/// The pointer must not be used after this call. Must not race with other calls using
/// the same pointer.
#[no_mangle]
pub unsafe extern "C" fn pe_selector_free(selector: *mut pe_selector) {
    ffi_boundary!(default = (), {
        // SAFETY: the caller gives up a pointer from a `pe_selector_new_*` function (or
        // NULL) and does not use it again.
        unsafe { arc_free(selector.cast_const()) }
    })
}

/// Resolves a placement name (e.g. `"home_hero"`, `name_len` bytes of UTF-8) to its id,
/// written to `*out_placement`. Resolve names once, outside the request path; ids are
/// valid for this selector (and any selector built from the same catalog spec).
/// Thread-safe.
///
/// Errors: `PE_STATUS_NULL_PARAMETER`, `PE_STATUS_INVALID_UTF8`,
/// `PE_STATUS_UNKNOWN_NAME`.
#[no_mangle]
pub unsafe extern "C" fn pe_selector_placement(
    selector: *const pe_selector,
    name: *const c_char,
    name_len: usize,
    out_placement: *mut u16,
) -> pe_status {
    ffi_boundary!({
        // SAFETY: a live selector (or NULL), a readable string, a writable `uint16_t`.
        let (selector, name, out) = unsafe {
            (
                arc_ref(selector, "selector")?,
                arg_str(name, name_len, "name")?,
                Out::new(out_placement, "out_placement")?,
            )
        };
        out.write(selector.placement(name)?.0);
        Ok(())
    })
}

/// Puts placement `placement` (an id from `pe_selector_placement`) in shadow mode
/// (`shadow` true) or takes it out. In shadow mode the placement serves what the rules
/// pick (priority and persona match, no learning; propensity 1) while `pe_select` also
/// reports what the learning policy would have picked, read with
/// `pe_selection_shadow_count` and the `pe_selection_shadow_*` accessors; feedback is
/// still learned from. A way to try a learning policy on live traffic before serving it.
///
/// Thread-safe: it may run while other threads select (each `pe_select` sees the flag
/// as it was when the call started).
///
/// Errors: `PE_STATUS_NULL_PARAMETER`, `PE_STATUS_OUT_OF_RANGE` (`placement` is not an
/// id of this catalog).
#[no_mangle]
pub unsafe extern "C" fn pe_selector_set_shadow(
    selector: *const pe_selector,
    placement: u16,
    shadow: bool,
) -> pe_status {
    ffi_boundary!({
        // SAFETY: a live selector (or NULL).
        let selector = unsafe { arc_ref(selector, "selector")? };
        check_placement(selector, placement)?;
        selector.set_shadow(PlacementId(placement), shadow)?;
        Ok(())
    })
}

/// `PE_STATUS_OUT_OF_RANGE` for a placement id that is not from this catalog.
pub(crate) fn check_placement(selector: &Selector, placement: u16) -> Result<(), Failure> {
    let places = selector.catalog().placement_count();
    if usize::from(placement) < places {
        Ok(())
    } else {
        Err(Failure::out_of_range(format!(
            "placement id {placement} is not from this catalog (it has {places} placements)"
        )))
    }
}

/// Resolves a creative's string id (e.g. `"lux-maldives"`) to its index in the catalog,
/// written to `*out_creative` (use it with `pe_selection_exclude`). Thread-safe.
///
/// Errors: `PE_STATUS_NULL_PARAMETER`, `PE_STATUS_INVALID_UTF8`,
/// `PE_STATUS_UNKNOWN_NAME`.
#[no_mangle]
pub unsafe extern "C" fn pe_selector_creative(
    selector: *const pe_selector,
    id: *const c_char,
    id_len: usize,
    out_creative: *mut u32,
) -> pe_status {
    ffi_boundary!({
        // SAFETY: a live selector (or NULL), a readable string, a writable `uint32_t`.
        let (selector, id, out) = unsafe {
            (
                arc_ref(selector, "selector")?,
                arg_str(id, id_len, "id")?,
                Out::new(out_creative, "out_creative")?,
            )
        };
        out.write(selector.creative(id)?.0);
        Ok(())
    })
}

pub(crate) fn creative_index(selector: &Selector, index: u32) -> Result<CreativeId, Failure> {
    let count = selector.catalog().len();
    if (index as usize) < count {
        Ok(CreativeId(index))
    } else {
        Err(Failure::out_of_range(format!(
            "creative index {index} is not in this catalog (it has {count} creatives)"
        )))
    }
}

/// Copies the string id of creative `creative` (an index from `pe_selection_creative`)
/// into `buf` as a NUL-terminated string and writes its length (without the NUL) to
/// `*out_len`. Thread-safe.
///
/// Errors: `PE_STATUS_NULL_PARAMETER` (`selector`, `out_len`, or `buf` with `cap > 0`),
/// `PE_STATUS_OUT_OF_RANGE` (not an index of this catalog),
/// `PE_STATUS_BUFFER_TOO_SMALL` (the buffer rule at the top of this header: `*out_len`
/// has the length, so a buffer of `*out_len + 1` bytes fits; pass `buf` NULL and `cap`
/// 0 to ask for it).
#[no_mangle]
pub unsafe extern "C" fn pe_selector_creative_id(
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
        out.write(selector.catalog().creative_id(id), "the creative id")
    })
}

/// Copies the payload of creative `creative` (the exact JSON text of its `payload` in
/// the catalog spec, e.g. `{"headline": "...", "image": "https://..."}`) into `buf`,
/// NUL-terminated, and writes its length to `*out_len`. A creative without a payload
/// gives the empty string (length 0). Thread-safe.
///
/// Errors: `PE_STATUS_NULL_PARAMETER` (`selector`, `out_len`, or `buf` with `cap > 0`),
/// `PE_STATUS_OUT_OF_RANGE` (not an index of this catalog), `PE_STATUS_BUFFER_TOO_SMALL`
/// (the buffer rule at the top of this header).
#[no_mangle]
pub unsafe extern "C" fn pe_selector_creative_payload(
    selector: *const pe_selector,
    creative: u32,
    buf: *mut c_char,
    cap: usize,
    out_len: *mut usize,
) -> pe_status {
    ffi_boundary!({
        // SAFETY: as in `pe_selector_creative_id`.
        let (selector, out) = unsafe { (arc_ref(selector, "selector")?, OutStr::new(buf, cap, out_len)?) };
        let id = creative_index(selector, creative)?;
        out.write(selector.catalog().payload(id).unwrap_or(""), "the creative payload")
    })
}

/// Copies the name of persona `persona` (an id from `pe_selection_reason_persona`) into
/// `buf`, NUL-terminated, and writes its length to `*out_len`. Thread-safe.
///
/// Errors: as `pe_selector_creative_id`; `PE_STATUS_OUT_OF_RANGE` for an id that is not
/// on this catalog's persona menu (including `PE_PERSONA_NONE`).
#[no_mangle]
pub unsafe extern "C" fn pe_selector_persona_name(
    selector: *const pe_selector,
    persona: u16,
    buf: *mut c_char,
    cap: usize,
    out_len: *mut usize,
) -> pe_status {
    ffi_boundary!({
        // SAFETY: as in `pe_selector_creative_id`.
        let (selector, out) = unsafe { (arc_ref(selector, "selector")?, OutStr::new(buf, cap, out_len)?) };
        let menu = selector.catalog().menu();
        if usize::from(persona) >= menu.len() {
            return Err(Failure::out_of_range(format!(
                "persona id {persona} is not on this persona menu (it has {} personas)",
                menu.len()
            )));
        }
        out.write(menu.name(PersonaId(persona)), "the persona name")
    })
}

/// Copies a one-line, human-readable explanation of pick `index` of `selection` (which
/// persona, which rules, fallback or not; never raw personal data; for an assembled
/// pick, one more line per slot with its choice) into `buf`,
/// NUL-terminated, and writes its length to `*out_len`. For logs and debugging: this
/// allocates, so keep it off the request path. `selection` must have been filled by
/// `pe_select` with this selector. Thread-safe for the selector; `selection` is only
/// read.
///
/// Errors: as `pe_selector_creative_id`; `PE_STATUS_NULL_PARAMETER` for `selection`;
/// `PE_STATUS_OUT_OF_RANGE` when `index >= pe_selection_count`.
#[no_mangle]
pub unsafe extern "C" fn pe_selector_explain(
    selector: *const pe_selector,
    selection: *const pe_selection,
    index: usize,
    buf: *mut c_char,
    cap: usize,
    out_len: *mut usize,
) -> pe_status {
    ffi_boundary!({
        // SAFETY: a live selector and selection (or NULL), a writable buffer of `cap`
        // bytes (or NULL) and a writable `size_t` (or NULL).
        let (selector, selection, out) = unsafe {
            (
                arc_ref(selector, "selector")?,
                box_ref(selection, "selection")?,
                OutStr::new(buf, cap, out_len)?,
            )
        };
        let pick = super::selection::pick(selection, index)?;
        let text = match selection.assembly(pick) {
            Some(assembly) => selector.explain_assembly(pick, assembly),
            None => selector.explain(pick),
        };
        out.write(&text, "the explanation")
    })
}

/// Picks up to k creatives (k as given to `pe_selection_new`) for `profile` in
/// `context` at `placement` (an id from `pe_selector_placement`), best first, into
/// `selection`, replacing its previous picks. Read them with `pe_selection_count` and
/// the `pe_selection_*` accessors.
///
/// Never allocates when `selection` was created for this selector's catalog (with
/// `pe_selection_new`): the context is converted on the stack. The selector and profile
/// are only read, so many threads may select at once with one selector and one profile
/// (and while others `pe_record`); each thread needs its own `selection`.
/// `context` and the strings it points to are only read during the call.
///
/// The selection is empty (count 0, status OK) only when nothing is eligible and the
/// placement has no fallback left.
///
/// Errors (nothing is written to `selection`): `PE_STATUS_NULL_PARAMETER` (any
/// argument, or a context string pointer with a nonzero length),
/// `PE_STATUS_OUT_OF_RANGE` (`placement` is not an id of this catalog),
/// `PE_STATUS_INVALID_ARGUMENT` (a context value that does not exist: a device, channel
/// or weather number, a UTC offset beyond 18 hours, too many attributes; or a profile made
/// for a selector with a different persona menu), `PE_STATUS_INVALID_UTF8` (a context
/// string).
#[no_mangle]
pub unsafe extern "C" fn pe_select(
    selector: *const pe_selector,
    profile: *const pe_profile,
    context: *const pe_context,
    placement: u16,
    selection: *mut pe_selection,
) -> pe_status {
    ffi_boundary!({
        // SAFETY: live handles (or NULL) from the matching `_new` functions, a readable
        // `pe_context` whose strings are readable for their lengths; `selection` is used
        // by this thread alone, as documented above.
        let (selector, profile, context, selection) = unsafe {
            (
                arc_ref(selector, "selector")?,
                box_ref(profile, "profile")?,
                context::read(context)?,
                box_mut(selection, "selection")?,
            )
        };
        check_placement(selector, placement)?;
        profile.check_menu(selector)?;
        selector.select(&profile.profile, &context, PlacementId(placement), selection)?;
        Ok(())
    })
}
