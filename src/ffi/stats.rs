//! The selector's learned statistics as JSON: a full snapshot to save and load (across
//! restarts), and deltas to exchange between instances. Exporting a delta advances the
//! selector's baseline, so it is taken exactly once into an owned `pe_stats_blob` that
//! the caller copies out (length query included) and frees: a too-small buffer never
//! loses a delta.

use std::ffi::c_char;

use super::boundary::{arg_str, Failure, Out, OutStr};
use super::handles::{arc_ref, box_free, box_into_ptr, box_ref, pe_selector, pe_stats_blob};
use super::status::pe_status;
use crate::learn::{LoadReport, StatsSnapshot};

/// What `pe_selector_stats_load` or `pe_selector_stats_merge` applied, and what it
/// skipped because this selector's catalog cannot hold it (a plain selector keeps no
/// dormant statistics: skipped counts are lost to it, so look at them; a `pe_engine`
/// keeps them instead). All zeros but `creatives` when the snapshot fits the catalog.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct pe_stats_report {
    /// Creatives whose statistics were applied.
    pub creatives: u64,
    /// Creatives the catalog does not have (their statistics were skipped).
    pub unknown_creatives: u64,
    /// Segment entries naming a persona the menu does not have (skipped).
    pub unknown_segments: u64,
    /// Click-model weights whose creative, persona or attribute value the catalog lacks
    /// (skipped).
    pub unknown_model_entries: u64,
}

impl From<&LoadReport> for pe_stats_report {
    fn from(r: &LoadReport) -> Self {
        pe_stats_report {
            creatives: r.creatives as u64,
            unknown_creatives: r.unknown_creatives.len() as u64,
            unknown_segments: r.unknown_segments as u64,
            unknown_model_entries: r.unknown_model_entries as u64,
        }
    }
}

/// Copies a full snapshot of the selector's learned statistics (JSON, keyed by creative
/// id and persona name, so it survives a restart and a catalog change) into `buf`,
/// NUL-terminated, and writes its length to `*out_len`. Load it back with
/// `pe_selector_stats_load`. Saving changes nothing, so a length query is harmless.
///
/// Thread-safe; allocates internally, so keep it off the request path. The statistics
/// keep growing while other threads record: a buffer sized by a length query
/// (`buf` NULL, `cap` 0) may be too small a moment later, so size it with some room to
/// spare or call again until the status is not `PE_STATUS_BUFFER_TOO_SMALL`.
///
/// Errors: `PE_STATUS_NULL_PARAMETER` (`selector`, `out_len`, or `buf` with `cap > 0`),
/// `PE_STATUS_BUFFER_TOO_SMALL` (see the buffer rule at the top of this header),
/// `PE_STATUS_INVALID_ARGUMENT` (`selector` is a version of a `pe_engine`: use
/// `pe_engine_stats_save`), `PE_STATUS_INVALID_SPEC` (the snapshot is larger than
/// `MAX_SNAPSHOT_BYTES` as JSON, which `pe_selector_stats_load` would refuse).
#[no_mangle]
pub unsafe extern "C" fn pe_selector_stats_save(
    selector: *const pe_selector,
    buf: *mut c_char,
    cap: usize,
    out_len: *mut usize,
) -> pe_status {
    ffi_boundary!({
        // SAFETY: a live selector (or NULL), a writable buffer of `cap` bytes (or NULL)
        // and a writable `size_t` (or NULL).
        let (selector, out) = unsafe { (arc_ref(selector, "selector")?, OutStr::new(buf, cap, out_len)?) };
        let json = selector.own("pe_selector_stats_save", "pe_engine_stats_save")?.save_stats().to_json()?;
        out.write(&json, "the statistics snapshot")
    })
}

/// Replaces the selector's learned statistics with a full snapshot written by
/// `pe_selector_stats_save` (`json_len` bytes of UTF-8 at `json`), matched by creative
/// id: creatives the catalog no longer has and personas no longer on its menu are
/// skipped, and counted in `*out_report`; counts the snapshot does not mention become
/// zero. Also resets the baseline of `pe_selector_stats_export_delta` (the loaded
/// counts are not exported again).
///
/// Meant for start-up, before serving: it is thread-safe, but events recorded on other
/// threads while it runs may be overwritten. The JSON is only read during the call.
///
/// Errors (the statistics are left exactly as they were, `*out_report` is not written):
/// `PE_STATUS_NULL_PARAMETER` (`selector`, `json`, `out_report`),
/// `PE_STATUS_INVALID_UTF8`, `PE_STATUS_INVALID_JSON` (not JSON, or not the shape of a
/// snapshot; the message has line and column), `PE_STATUS_INVALID_SPEC` (another
/// format or version, a delta instead of a full snapshot, an unknown device or daypart,
/// a creative listed twice: the message names the field; or a snapshot naming
/// creatives none of which this catalog has: nothing would be applied, and the next
/// save would write over what was learned), `PE_STATUS_INVALID_ARGUMENT` (`selector` is
/// a version of a `pe_engine`: use `pe_engine_stats_load`, which keeps what its catalog
/// lacks).
#[no_mangle]
pub unsafe extern "C" fn pe_selector_stats_load(
    selector: *const pe_selector,
    json: *const c_char,
    json_len: usize,
    out_report: *mut pe_stats_report,
) -> pe_status {
    ffi_boundary!({
        // SAFETY: a live selector (or NULL), a readable string (or NULL) and a writable
        // `pe_stats_report` (or NULL).
        let (selector, json, out) = unsafe {
            (
                arc_ref(selector, "selector")?,
                arg_str(json, json_len, "json")?,
                Out::new(out_report, "out_report")?,
            )
        };
        let selector = selector.own("pe_selector_stats_load", "pe_engine_stats_load")?;
        let snapshot = StatsSnapshot::from_json(json)?;
        refuse_if_none_known(selector, &snapshot)?;
        out.write(pe_stats_report::from(&selector.load_stats(&snapshot)?));
        Ok(())
    })
}

/// Adds a snapshot's counts to the selector's learned statistics: normally a delta
/// another instance exported with `pe_selector_stats_export_delta` (`json_len` bytes of
/// UTF-8 at `json`). Merging is addition, so deltas merged in any order give identical
/// statistics; merged counts are not exported again, so instances can exchange deltas
/// all-to-all without echoes. Creatives and personas this catalog does not have are
/// skipped, and counted in `*out_report`.
///
/// Thread-safe: it may run while other threads select and record. The JSON is only read
/// during the call.
///
/// Errors (the statistics are left exactly as they were, `*out_report` is not written):
/// `PE_STATUS_NULL_PARAMETER` (`selector`, `json`, `out_report`),
/// `PE_STATUS_INVALID_UTF8`, `PE_STATUS_INVALID_JSON` (not JSON, or not the shape of a
/// snapshot), `PE_STATUS_INVALID_SPEC` (another format or version, an unknown device or
/// daypart, a creative listed twice; a snapshot naming creatives none of which this
/// catalog has; a full snapshot is accepted, its totals added),
/// `PE_STATUS_INVALID_ARGUMENT` (`selector` is a version of a `pe_engine`: use
/// `pe_engine_stats_merge`).
#[no_mangle]
pub unsafe extern "C" fn pe_selector_stats_merge(
    selector: *const pe_selector,
    json: *const c_char,
    json_len: usize,
    out_report: *mut pe_stats_report,
) -> pe_status {
    ffi_boundary!({
        // SAFETY: a live selector (or NULL), a readable string (or NULL) and a writable
        // `pe_stats_report` (or NULL).
        let (selector, json, out) = unsafe {
            (
                arc_ref(selector, "selector")?,
                arg_str(json, json_len, "json")?,
                Out::new(out_report, "out_report")?,
            )
        };
        let selector = selector.own("pe_selector_stats_merge", "pe_engine_stats_merge")?;
        let snapshot = StatsSnapshot::from_json(json)?;
        refuse_if_none_known(selector, &snapshot)?;
        out.write(pe_stats_report::from(&selector.merge_stats(&snapshot)?));
        Ok(())
    })
}

/// Exports the events this selector recorded since its previous export (or load) as a
/// delta for other instances to `pe_selector_stats_merge`, and advances the baseline:
/// the next export holds only what is new after this one. Events merged in from other
/// instances are not included.
///
/// Because the export happens once, the delta is handed over as an owned blob, not
/// copied into a buffer: on success writes a new `pe_stats_blob` to `*out_blob`; copy
/// its JSON out with `pe_stats_blob_json` (a length query first is fine: the blob does
/// not change) and free it with `pe_stats_blob_free`. Freeing a blob whose JSON was not
/// delivered loses those events for the other instances (this instance keeps them).
/// A delta with nothing new is a valid, small document.
///
/// Thread-safe: concurrent exports each get a disjoint part of the events.
///
/// Errors (nothing is exported, the baseline does not move):
/// `PE_STATUS_NULL_PARAMETER` (`selector`, `out_blob`), `PE_STATUS_INVALID_ARGUMENT`
/// (`selector` is a version of a `pe_engine`: use `pe_engine_stats_export_delta`).
#[no_mangle]
pub unsafe extern "C" fn pe_selector_stats_export_delta(
    selector: *const pe_selector,
    out_blob: *mut *mut pe_stats_blob,
) -> pe_status {
    ffi_boundary!({
        // SAFETY: a live selector (or NULL) and a writable pointer slot (or NULL). Both
        // are checked before the export, which must not happen unless it can be handed
        // over.
        let (selector, out) = unsafe { (arc_ref(selector, "selector")?, Out::new(out_blob, "out_blob")?) };
        // Serializing a snapshot cannot fail (string keys and integers only); if it
        // ever did, the error would be reported and this delta lost to other instances.
        let selector = selector.own("pe_selector_stats_export_delta", "pe_engine_stats_export_delta")?;
        let json = selector.export_delta().delta_json()?;
        out.write(box_into_ptr::<pe_stats_blob>(json));
        Ok(())
    })
}

/// Copies the JSON of a blob from `pe_selector_stats_export_delta` into `buf`,
/// NUL-terminated, and writes its length to `*out_len`. The blob is only read, so call
/// it as often as needed (`buf` NULL and `cap` 0 to ask for the length, then again with
/// a buffer of `*out_len + 1` bytes). Thread-safe.
///
/// Errors: `PE_STATUS_NULL_PARAMETER` (`blob`, `out_len`, or `buf` with `cap > 0`),
/// `PE_STATUS_BUFFER_TOO_SMALL` (see the buffer rule at the top of this header).
#[no_mangle]
pub unsafe extern "C" fn pe_stats_blob_json(
    blob: *const pe_stats_blob,
    buf: *mut c_char,
    cap: usize,
    out_len: *mut usize,
) -> pe_status {
    ffi_boundary!({
        // SAFETY: a live blob (or NULL), never written after creation, a writable buffer
        // of `cap` bytes (or NULL) and a writable `size_t` (or NULL).
        let (json, out) = unsafe { (box_ref(blob, "blob")?, OutStr::new(buf, cap, out_len)?) };
        out.write(json, "the statistics delta")
    })
}

/// Frees a blob from `pe_selector_stats_export_delta`. NULL does nothing. The pointer
/// must not be used after this call, nor concurrently with it.
#[no_mangle]
pub unsafe extern "C" fn pe_stats_blob_free(blob: *mut pe_stats_blob) {
    ffi_boundary!(default = (), {
        // SAFETY: the caller gives up a pointer from `pe_selector_stats_export_delta`
        // (or NULL) and does not use it again.
        unsafe { box_free(blob) }
    })
}

/// A snapshot that names creatives, none of them in this catalog, is refused before
/// anything changes: a plain selector has nowhere to keep them, so the call would apply
/// nothing and say so to no one (and the next save would write over what was learned).
/// The message names a few of the creatives and both catalog versions.
fn refuse_if_none_known(selector: &crate::Selector, snapshot: &StatsSnapshot) -> Result<(), Failure> {
    let catalog = selector.catalog();
    if snapshot.creatives.is_empty() || snapshot.creatives.iter().any(|(id, _)| catalog.creative(id).is_ok())
    {
        return Ok(());
    }
    let some: Vec<String> = snapshot.creatives.iter().take(3).map(|(id, _)| format!("'{id}'")).collect();
    Err(Failure::new(
        pe_status::InvalidSpec,
        format!(
            "creatives: none of the snapshot's {} creatives ({}{}) is in this catalog (snapshot of catalog version \
             '{}', catalog version '{}'): nothing would be applied",
            snapshot.creatives.len(),
            some.join(", "),
            if snapshot.creatives.len() > 3 { ", …" } else { "" },
            snapshot.catalog_version,
            catalog.version(),
        ),
    ))
}
