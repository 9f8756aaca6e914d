//! `pe_engine`: the C face of [`Engine`], for a service. It serves the current version
//! of a catalog as a `pe_selector`, publishes new versions while other threads select
//! and record through it, and saves, loads, exports and merges the learned statistics
//! of every version. Selecting through it never allocates and never blocks.

use std::ffi::c_char;
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwap;

use super::boundary::{arg_str, Failure, Out, OutStr};
use super::context::{self, pe_context};
use super::feedback::feedback_kind;
use super::handles::{
    arc_into_ptr, box_free, box_into_ptr, box_mut, box_ref, pe_engine, pe_profile, pe_selection, pe_selector,
    pe_stats_blob, SelectorHandle,
};
use super::selector::config;
use super::status::pe_status;
use crate::catalog::Catalog;
use crate::engine::Engine;
use crate::error::Error;
use crate::learn::StatsSnapshot;
use crate::select::{Selector, SelectorConfig};

/// An engine and its current version, ready to hand to C as a `pe_selector`.
#[derive(Debug)]
pub(crate) struct EngineHandle {
    engine: Arc<Engine>,
    /// The engine's current version as a selector handle: built once per publish, so
    /// handing it out is a reference count, not an allocation.
    current: ArcSwap<SelectorHandle>,
    /// Serializes publishing, so `current` always ends on the newest version; holds
    /// what the last publish reported (for `pe_engine_last_publish`).
    publishing: Mutex<pe_swap_report>,
}

/// What a publish did with the statistics (see `pe_engine_last_publish`): the fields of
/// the Rust `SwapReport`. The `dropped` counts are 0 in any sane deployment; anything
/// else is learning the engine could not keep.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct pe_swap_report {
    /// The new version's generation (1 before any publish).
    pub generation: u64,
    /// Creatives of the new version whose statistics came from the previous version.
    pub carried: u64,
    /// Creatives whose statistics came back from the dormant ones.
    pub restored: u64,
    /// Creatives whose statistics are now dormant (kept, saved, exported; back when a
    /// later catalog has them again).
    pub dormant: u64,
    /// Segment cells of personas the new menu lacks, now dormant.
    pub dormant_segments: u64,
    /// Click-model weights the new catalog cannot hold, now dormant.
    pub dormant_model_entries: u64,
    /// Dormant segment cells the new version holds again (their persona is back).
    pub restored_segments: u64,
    /// Dormant model weights the new version holds again.
    pub restored_model_entries: u64,
    /// Events recorded on the previous version while the swap ran, added afterwards.
    pub caught_up: u64,
    /// Creatives whose statistics could not be kept (the engine already holds the most
    /// dormant creatives it can).
    pub dropped: u64,
    /// Segment cells that could not be kept.
    pub dropped_segments: u64,
    /// Model weights that could not be kept.
    pub dropped_model_entries: u64,
}

impl From<&crate::engine::SwapReport> for pe_swap_report {
    fn from(r: &crate::engine::SwapReport) -> Self {
        let n = |x: usize| x as u64;
        pe_swap_report {
            generation: r.generation,
            carried: n(r.carried),
            restored: n(r.restored),
            dormant: n(r.dormant),
            dormant_segments: n(r.dormant_segments),
            dormant_model_entries: n(r.dormant_model_entries),
            restored_segments: n(r.restored_segments),
            restored_model_entries: n(r.restored_model_entries),
            caught_up: r.caught_up,
            dropped: n(r.dropped),
            dropped_segments: n(r.dropped_segments),
            dropped_model_entries: n(r.dropped_model_entries),
        }
    }
}

impl EngineHandle {
    fn new(selector: Selector) -> Self {
        let engine = Arc::new(Engine::new(selector, None));
        let current = ArcSwap::from_pointee(view(&engine));
        let first = pe_swap_report { generation: engine.generation(), ..pe_swap_report::default() };
        EngineHandle { engine, current, publishing: Mutex::new(first) }
    }

    fn publish(&self, selector: Selector) -> Result<u64, Failure> {
        let mut last = self.publishing.lock().unwrap_or_else(PoisonError::into_inner);
        let result = self.engine.publish(selector, None);
        // Always: a publish that fails after its swap (the events recorded during it
        // could not be added) has still made the new version live, and this handle must
        // serve what the engine serves.
        self.current.store(Arc::new(view(&self.engine)));
        let report = result?;
        *last = pe_swap_report::from(&report);
        Ok(report.generation)
    }
}

/// The engine's current version as a selector handle.
fn view(engine: &Arc<Engine>) -> SelectorHandle {
    SelectorHandle::Version { engine: Arc::clone(engine), version: engine.current() }
}

fn selector_of(catalog: Catalog, config: SelectorConfig) -> Result<Selector, Failure> {
    Ok(Selector::new(catalog, config)?)
}

/// Creates an engine serving a catalog spec in JSON (`json_len` bytes of UTF-8 at `json`)
/// with an optional selector configuration in JSON (as for `pe_selector_new_from_json`;
/// `config_len` 0 for the defaults) as its first version (generation 1).
///
/// On success writes the engine to `*out_engine`; the caller owns it and frees it with
/// `pe_engine_free`. The JSON is only read during the call. Thread-safe.
///
/// Errors: `PE_STATUS_NULL_PARAMETER` (`json`, `out_engine`, or `config_json` with
/// `config_len > 0`), `PE_STATUS_INVALID_UTF8`, `PE_STATUS_INVALID_JSON`,
/// `PE_STATUS_INVALID_SPEC` (the message names the creative and the field),
/// `PE_STATUS_INVALID_ARGUMENT` (a document larger than its limit).
#[no_mangle]
pub unsafe extern "C" fn pe_engine_new_from_json(
    json: *const c_char,
    json_len: usize,
    config_json: *const c_char,
    config_len: usize,
    out_engine: *mut *mut pe_engine,
) -> pe_status {
    ffi_boundary!({
        // SAFETY: readable strings (or NULL) and a writable pointer slot (or NULL), as
        // documented above.
        let (out, json, config) = unsafe {
            (
                Out::new(out_engine, "out_engine")?,
                arg_str(json, json_len, "json")?,
                config(config_json, config_len)?,
            )
        };
        let selector = selector_of(Catalog::from_json(json)?, config)?;
        out.write(box_into_ptr::<pe_engine>(EngineHandle::new(selector)));
        Ok(())
    })
}

/// Creates an engine from a catalog spec file in JSON (`path_len` bytes of UTF-8 at
/// `path`); otherwise as `pe_engine_new_from_json`.
///
/// Errors: `PE_STATUS_NULL_PARAMETER` (`path`, `out_engine`, or `config_json` with
/// `config_len > 0`), `PE_STATUS_INVALID_UTF8`, `PE_STATUS_IO` (the file cannot be read;
/// the message has the path), `PE_STATUS_INVALID_JSON` (also for an empty file; the
/// message names the file), `PE_STATUS_INVALID_SPEC`, `PE_STATUS_INVALID_ARGUMENT` (a
/// file larger than its limit).
#[no_mangle]
pub unsafe extern "C" fn pe_engine_new_from_file(
    path: *const c_char,
    path_len: usize,
    config_json: *const c_char,
    config_len: usize,
    out_engine: *mut *mut pe_engine,
) -> pe_status {
    ffi_boundary!({
        // SAFETY: as in `pe_engine_new_from_json`.
        let (out, path, config) = unsafe {
            (
                Out::new(out_engine, "out_engine")?,
                arg_str(path, path_len, "path")?,
                config(config_json, config_len)?,
            )
        };
        let selector = selector_of(Catalog::from_file(path)?, config)?;
        out.write(box_into_ptr::<pe_engine>(EngineHandle::new(selector)));
        Ok(())
    })
}

/// Frees an engine. Selectors it handed out (`pe_engine_current`, `pe_engine_select`)
/// keep their version and the engine's statistics alive until they are freed too, and
/// `pe_record` through them still works. NULL does nothing. The pointer must not be
/// used after this call, nor concurrently with it.
#[no_mangle]
pub unsafe extern "C" fn pe_engine_free(engine: *mut pe_engine) {
    ffi_boundary!(default = (), {
        // SAFETY: the caller gives up a pointer from a `pe_engine_new_*` function (or
        // NULL) and does not use it again.
        unsafe { box_free(engine) }
    })
}

/// Publishes a new version built from a catalog spec in JSON and an optional selector
/// configuration (as `pe_engine_new_from_json`), while other threads keep selecting and
/// recording: they switch to the new version at once and never block. Learned
/// statistics carry over by creative id (creatives the new catalog lacks keep theirs,
/// dormant, for a later version that brings them back); shadow flags carry over by
/// placement name. Writes the new version's generation to `*out_generation`.
///
/// Thread-safe; publishes are serialized. Typically takes milliseconds. Selectors
/// handed out before keep the version they had; `pe_record` through them counts in the
/// new version.
///
/// Errors (nothing is published, except after an error adding the events recorded
/// during the swap: the new version is then live, and this engine serves it): `PE_STATUS_NULL_PARAMETER` (`engine`, `json`,
/// `out_generation`, or `config_json` with `config_len > 0`), `PE_STATUS_INVALID_UTF8`,
/// `PE_STATUS_INVALID_JSON`, `PE_STATUS_INVALID_SPEC`, `PE_STATUS_INVALID_ARGUMENT` (a
/// document larger than its limit).
#[no_mangle]
pub unsafe extern "C" fn pe_engine_publish_json(
    engine: *const pe_engine,
    json: *const c_char,
    json_len: usize,
    config_json: *const c_char,
    config_len: usize,
    out_generation: *mut u64,
) -> pe_status {
    ffi_boundary!({
        // SAFETY: a live engine (or NULL), readable strings (or NULL) and a writable
        // `uint64_t` (or NULL).
        let (engine, out, json, config) = unsafe {
            (
                box_ref(engine, "engine")?,
                Out::new(out_generation, "out_generation")?,
                arg_str(json, json_len, "json")?,
                config(config_json, config_len)?,
            )
        };
        let selector = selector_of(Catalog::from_json(json)?, config)?;
        out.write(engine.publish(selector)?);
        Ok(())
    })
}

/// Publishes a new version built from a catalog spec file (`path_len` bytes of UTF-8 at
/// `path`); otherwise as `pe_engine_publish_json`.
///
/// Errors (nothing is published, except after an error adding the events recorded
/// during the swap: the new version is then live, and this engine serves it): `PE_STATUS_NULL_PARAMETER` (`engine`, `path`,
/// `out_generation`, or `config_json` with `config_len > 0`), `PE_STATUS_INVALID_UTF8`,
/// `PE_STATUS_IO` (the file cannot be read; the message has the path),
/// `PE_STATUS_INVALID_JSON` (also for an empty file; the message names the file),
/// `PE_STATUS_INVALID_SPEC`, `PE_STATUS_INVALID_ARGUMENT` (a file larger than its limit).
#[no_mangle]
pub unsafe extern "C" fn pe_engine_publish_file(
    engine: *const pe_engine,
    path: *const c_char,
    path_len: usize,
    config_json: *const c_char,
    config_len: usize,
    out_generation: *mut u64,
) -> pe_status {
    ffi_boundary!({
        // SAFETY: as in `pe_engine_publish_json`.
        let (engine, out, path, config) = unsafe {
            (
                box_ref(engine, "engine")?,
                Out::new(out_generation, "out_generation")?,
                arg_str(path, path_len, "path")?,
                config(config_json, config_len)?,
            )
        };
        let selector = selector_of(Catalog::from_file(path)?, config)?;
        out.write(engine.publish(selector)?);
        Ok(())
    })
}

/// Writes what the last successful publish did with the learned statistics to
/// `*out_report`: how many creatives' statistics it carried over, restored or set aside
/// as dormant, and what it could not keep (`dropped*`, 0 in any sane deployment). Before
/// any publish: the first version's generation and zeros. Thread-safe (it waits for a
/// publish under way).
///
/// Errors: `PE_STATUS_NULL_PARAMETER`.
#[no_mangle]
pub unsafe extern "C" fn pe_engine_last_publish(
    engine: *const pe_engine,
    out_report: *mut pe_swap_report,
) -> pe_status {
    ffi_boundary!({
        // SAFETY: a live engine (or NULL) and a writable `pe_swap_report` (or NULL).
        let (engine, out) = unsafe { (box_ref(engine, "engine")?, Out::new(out_report, "out_report")?) };
        out.write(*engine.publishing.lock().unwrap_or_else(PoisonError::into_inner));
        Ok(())
    })
}

/// Writes the current version's generation (1 for the first version, one more per
/// publish) to `*out_generation`. Thread-safe.
///
/// Errors: `PE_STATUS_NULL_PARAMETER`.
#[no_mangle]
pub unsafe extern "C" fn pe_engine_generation(
    engine: *const pe_engine,
    out_generation: *mut u64,
) -> pe_status {
    ffi_boundary!({
        // SAFETY: a live engine (or NULL) and a writable `uint64_t` (or NULL).
        let (engine, out) =
            unsafe { (box_ref(engine, "engine")?, Out::new(out_generation, "out_generation")?) };
        out.write(engine.engine.generation());
        Ok(())
    })
}

/// Writes the engine's current version to `*out_selector`, as a `pe_selector` the caller
/// frees with `pe_selector_free`. Use it like any selector for one request or more:
/// resolve placements and creatives, create profiles, selections and persona models,
/// `pe_select`, read payloads and explanations; ids belong to this version. `pe_record`
/// with it goes through the engine (counted in whichever version is current). The
/// `pe_selector_stats_*` functions refuse it: use the `pe_engine_stats_*` ones.
///
/// Never allocates (a reference count). Thread-safe.
///
/// Errors: `PE_STATUS_NULL_PARAMETER`.
#[no_mangle]
pub unsafe extern "C" fn pe_engine_current(
    engine: *const pe_engine,
    out_selector: *mut *mut pe_selector,
) -> pe_status {
    ffi_boundary!({
        // SAFETY: a live engine (or NULL) and a writable pointer slot (or NULL).
        let (engine, out) = unsafe { (box_ref(engine, "engine")?, Out::new(out_selector, "out_selector")?) };
        out.write(arc_into_ptr::<pe_selector>(engine.current.load_full()).cast_mut());
        Ok(())
    })
}

/// Selects with the engine's current version at the placement named `placement`
/// (`placement_len` bytes of UTF-8, resolved in that version) into `selection`, as
/// `pe_select` does, and writes the version that made the picks to `*out_selector`
/// (the caller frees it with `pe_selector_free`): read the picks' ids, payloads and
/// explanations with it, and pass it to `pe_record`.
///
/// Never allocates once `selection` has seen a catalog this large (a selection made
/// for an older version grows once). Thread-safe for the engine and the profile; each
/// thread needs its own `selection`.
///
/// Errors (nothing is written): `PE_STATUS_NULL_PARAMETER` (any pointer, or a context
/// string pointer with a nonzero length), `PE_STATUS_INVALID_UTF8` (`placement` or a
/// context string), `PE_STATUS_UNKNOWN_NAME` (the current catalog has no such
/// placement; the message lists the closest names), `PE_STATUS_INVALID_ARGUMENT` (a
/// context value that does not exist; a profile made for a different persona menu).
#[no_mangle]
pub unsafe extern "C" fn pe_engine_select(
    engine: *const pe_engine,
    profile: *const pe_profile,
    context: *const pe_context,
    placement: *const c_char,
    placement_len: usize,
    selection: *mut pe_selection,
    out_selector: *mut *mut pe_selector,
) -> pe_status {
    ffi_boundary!({
        // SAFETY: live handles (or NULL) from the matching `_new` functions, a readable
        // `pe_context` and placement name, `selection` used by this thread alone, and a
        // writable pointer slot (or NULL), as documented above.
        let (engine, profile, context, name, selection, out) = unsafe {
            (
                box_ref(engine, "engine")?,
                box_ref(profile, "profile")?,
                context::read(context)?,
                arg_str(placement, placement_len, "placement")?,
                box_mut(selection, "selection")?,
                Out::new(out_selector, "out_selector")?,
            )
        };
        let version = engine.current.load_full();
        let placement = version.placement(name)?;
        profile.check_menu(&version)?;
        version.select(&profile.profile, &context, placement, selection)?;
        out.write(arc_into_ptr::<pe_selector>(version).cast_mut());
        Ok(())
    })
}

/// Records what the person behind `profile` did with the creative whose string id is
/// `creative` (`creative_len` bytes of UTF-8; e.g. an event that arrives later, logged
/// with the id) in the moment `context` describes, into the engine's current version.
/// `kind` and `value` are as for `pe_record`, and so are the effects.
///
/// Thread-safe for the engine (lock-free, alongside selects, records and publishes);
/// `profile` is changed, one thread at a time.
///
/// Errors (nothing changes): `PE_STATUS_NULL_PARAMETER`, `PE_STATUS_INVALID_UTF8`,
/// `PE_STATUS_UNKNOWN_NAME` (the current catalog has no such creative; the message lists
/// the closest ids), `PE_STATUS_INVALID_ARGUMENT` (`kind` is not a `pe_feedback_kind`; a
/// conversion value that is negative, not finite or above 1e9; a context value that does
/// not exist; a profile made for a different persona menu).
#[no_mangle]
pub unsafe extern "C" fn pe_engine_record_id(
    engine: *const pe_engine,
    profile: *mut pe_profile,
    context: *const pe_context,
    creative: *const c_char,
    creative_len: usize,
    kind: u32,
    value: f64,
) -> pe_status {
    ffi_boundary!({
        // SAFETY: a live engine and profile (or NULL), the profile used by this thread
        // alone; a readable `pe_context` and creative id.
        let (engine, handle, context, id) = unsafe {
            (
                box_ref(engine, "engine")?,
                box_mut(profile, "profile")?,
                context::read(context)?,
                arg_str(creative, creative_len, "creative")?,
            )
        };
        let kind = feedback_kind(kind, value)?;
        handle.check_menu(&engine.current.load())?;
        engine.engine.record_id(&mut handle.profile, id, kind, &context).map_err(|error| match error {
            // Names are reported as such; what is left is the conversion value.
            Error::Invalid { .. } => Failure::invalid(error.to_string()),
            error => error.into(),
        })
    })
}

/// Copies a full snapshot of everything the engine learned (the current version's
/// statistics and the dormant ones of creatives it no longer has; JSON, as
/// `pe_selector_stats_save` writes) into `buf` (see the buffer rule at the top of this
/// header). Load it back with `pe_engine_stats_load`. Thread-safe; allocates.
///
/// Errors: `PE_STATUS_NULL_PARAMETER` (`engine`, `out_len`, or `buf` with `cap > 0`),
/// `PE_STATUS_BUFFER_TOO_SMALL`, `PE_STATUS_INVALID_SPEC` (the snapshot is larger than
/// `MAX_SNAPSHOT_BYTES` as JSON, which `pe_engine_stats_load` would refuse).
#[no_mangle]
pub unsafe extern "C" fn pe_engine_stats_save(
    engine: *const pe_engine,
    buf: *mut c_char,
    cap: usize,
    out_len: *mut usize,
) -> pe_status {
    ffi_boundary!({
        // SAFETY: a live engine (or NULL), a writable buffer of `cap` bytes (or NULL) and
        // a writable `size_t` (or NULL).
        let (engine, out) = unsafe { (box_ref(engine, "engine")?, OutStr::new(buf, cap, out_len)?) };
        let json = engine.engine.save_stats().to_json()?;
        out.write(&json, "the statistics snapshot")
    })
}

/// Replaces everything the engine learned with a full snapshot (`json_len` bytes of
/// UTF-8), as `pe_selector_stats_load` does; creatives the current catalog lacks become
/// dormant statistics. Meant for start-up. Thread-safe.
///
/// Errors (nothing changes): `PE_STATUS_NULL_PARAMETER`, `PE_STATUS_INVALID_UTF8`,
/// `PE_STATUS_INVALID_JSON`, `PE_STATUS_INVALID_SPEC` (another format or version, a delta
/// instead of a full snapshot: the message names the field), `PE_STATUS_INVALID_ARGUMENT`
/// (larger than its limit).
#[no_mangle]
pub unsafe extern "C" fn pe_engine_stats_load(
    engine: *const pe_engine,
    json: *const c_char,
    json_len: usize,
) -> pe_status {
    ffi_boundary!({
        // SAFETY: a live engine (or NULL) and a readable string (or NULL).
        let (engine, json) = unsafe { (box_ref(engine, "engine")?, arg_str(json, json_len, "json")?) };
        let _skipped = engine.engine.load_stats(&StatsSnapshot::from_json(json)?)?;
        Ok(())
    })
}

/// Adds another instance's delta (from `pe_engine_stats_export_delta` or
/// `pe_selector_stats_export_delta`) to the engine's statistics, as
/// `pe_selector_stats_merge` does; counts of creatives the current catalog lacks are
/// kept as dormant statistics. Thread-safe, alongside selects and records.
///
/// Errors (nothing changes): `PE_STATUS_NULL_PARAMETER`, `PE_STATUS_INVALID_UTF8`,
/// `PE_STATUS_INVALID_JSON`, `PE_STATUS_INVALID_SPEC` (another format or version: the
/// message names the field; a full snapshot is accepted, its totals added),
/// `PE_STATUS_INVALID_ARGUMENT` (larger than its limit).
#[no_mangle]
pub unsafe extern "C" fn pe_engine_stats_merge(
    engine: *const pe_engine,
    json: *const c_char,
    json_len: usize,
) -> pe_status {
    ffi_boundary!({
        // SAFETY: a live engine (or NULL) and a readable string (or NULL).
        let (engine, json) = unsafe { (box_ref(engine, "engine")?, arg_str(json, json_len, "json")?) };
        let _skipped = engine.engine.merge_stats(&StatsSnapshot::from_json(json)?)?;
        Ok(())
    })
}

/// Exports the events recorded through the engine since its previous export (in any
/// version) as a delta for other instances, and advances the baseline, as
/// `pe_selector_stats_export_delta` does: writes a new `pe_stats_blob` to `*out_blob`;
/// copy its JSON with `pe_stats_blob_json` and free it with `pe_stats_blob_free`.
/// Thread-safe.
///
/// Errors (nothing is exported): `PE_STATUS_NULL_PARAMETER` (`engine`, `out_blob`).
#[no_mangle]
pub unsafe extern "C" fn pe_engine_stats_export_delta(
    engine: *const pe_engine,
    out_blob: *mut *mut pe_stats_blob,
) -> pe_status {
    ffi_boundary!({
        // SAFETY: a live engine (or NULL) and a writable pointer slot (or NULL), both
        // checked before the export.
        let (engine, out) = unsafe { (box_ref(engine, "engine")?, Out::new(out_blob, "out_blob")?) };
        let json = engine.engine.export_delta().delta_json()?;
        out.write(box_into_ptr::<pe_stats_blob>(json));
        Ok(())
    })
}
