//! The opaque handles C holds, and the one place each is mapped to the Rust value behind
//! it and to how that value is owned (after rustls-ffi's `ffi.rs`):
//!
//! | C type | Rust value | owned by |
//! |---|---|---|
//! | `pe_selector` | `SelectorHandle`: a [`Selector`], or one version of an engine | `Arc`: profiles keep their selector alive |
//! | `pe_engine` | `EngineHandle` (an [`Engine`] and its current version as a `pe_selector`) | `Box` |
//! | `pe_profile` | `ProfileHandle` (profile + its selector) | `Box` |
//! | `pe_selection` | [`Selection`] | `Box` |
//! | `pe_stats_blob` | `String` (the JSON of an exported delta) | `Box` |
//! | `pe_persona_model` | `ModelHandle` (persona model + its selector) | `Box` |
//!
//! Every conversion between a C pointer and a Rust reference goes through the functions
//! below; no other file casts a handle pointer.

use std::ops::Deref;
use std::sync::Arc;

use super::boundary::Failure;
use super::engine::EngineHandle;
use super::model::ModelHandle;
use super::profile::ProfileHandle;
use crate::engine::{Engine, Version};
use crate::select::{Selection, Selector};

/// What a `pe_selector` is: a selector of its own (`pe_selector_new_*`), or one version
/// of a `pe_engine` (`pe_engine_current`, `pe_engine_select`), which selects and
/// resolves like any selector but records through its engine.
// Allocated once per handle inside an `Arc`: the size difference costs nothing, and
// boxing the selector would add an indirection to every `pe_select`.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum SelectorHandle {
    /// A selector created on its own; it owns its learned statistics.
    Own(Selector),
    /// A version of an engine: feedback goes through the engine, which counts it in the
    /// current version; its statistics are the engine's.
    Version {
        /// The engine the version belongs to.
        engine: Arc<Engine>,
        /// The version.
        version: Arc<Version>,
    },
}

impl Deref for SelectorHandle {
    type Target = Selector;

    fn deref(&self) -> &Selector {
        match self {
            SelectorHandle::Own(selector) => selector,
            SelectorHandle::Version { version, .. } => version.selector(),
        }
    }
}

impl SelectorHandle {
    /// The selector, for a call that reads or changes its learned statistics directly:
    /// refused for an engine's version, whose statistics belong to the engine.
    pub(crate) fn own(&self, function: &str, instead: &str) -> Result<&Selector, Failure> {
        match self {
            SelectorHandle::Own(selector) => Ok(selector),
            SelectorHandle::Version { .. } => Err(Failure::invalid(format!(
                "{function}: this selector is a version of a pe_engine, whose statistics belong \
                 to the engine: use {instead}"
            ))),
        }
    }
}

/// A selector: a compiled catalog and its configuration (both immutable) plus the
/// statistics it learns from feedback and its per-placement shadow flags (changed only
/// through internally synchronized calls). Thread-safe: every function taking a
/// `const pe_selector *` may be called from many threads at once, including
/// `pe_record`, the `pe_selector_stats_*` functions and `pe_selector_set_shadow`.
/// Create with `pe_selector_new_from_json` or `pe_selector_new_from_file`, free with
/// `pe_selector_free`. `pe_engine_current` and `pe_engine_select` hand out a version of
/// an engine as a `pe_selector` too: it works the same, except that `pe_record` counts
/// through the engine and the `pe_selector_stats_*` functions refuse it.
pub struct pe_selector {
    _private: [u8; 0],
}

/// What is known about one person, tied to the persona menu of the selector it was
/// created for (it keeps that selector alive). Not thread-safe for writing: one thread
/// changes it at a time; `const` uses (`pe_select`) may run on many threads at once.
/// Create with `pe_profile_new` or `pe_profile_new_from_json`, free with
/// `pe_profile_free`.
pub struct pe_profile {
    _private: [u8; 0],
}

/// The caller-owned, reusable output of `pe_select`: up to k picks, the caller's
/// exclusions and scratch space. Use one per thread (or lock it). Create with
/// `pe_selection_new`, free with `pe_selection_free`.
pub struct pe_selection {
    _private: [u8; 0],
}

/// The learned statistics exported once by `pe_selector_stats_export_delta`, held until
/// the caller has copied them out with `pe_stats_blob_json` (as often as needed) and
/// freed them with `pe_stats_blob_free`. Immutable: `pe_stats_blob_json` may be called
/// from many threads at once.
pub struct pe_stats_blob {
    _private: [u8; 0],
}

/// An engine: serves the current version of a catalog (a selector) and publishes new
/// versions atomically while other threads select and record. Thread-safe: every
/// function taking a `const pe_engine *` may be called from many threads at once,
/// including `pe_engine_publish_json`. Create with `pe_engine_new_from_json` or
/// `pe_engine_new_from_file`, free with `pe_engine_free`.
pub struct pe_engine {
    _private: [u8; 0],
}

/// A decision log file being written (`pe_decision_log_open`); owned by the caller,
/// closed with `pe_decision_log_close`.
pub struct pe_decision_log {
    _private: [u8; 0],
}

/// A persona model (per-persona logistic weights over signals, with optional decile
/// edges) compiled for one selector's persona menu; it keeps that selector alive.
/// Immutable: `pe_persona_model_apply` may use one model from many threads at once.
/// Create with `pe_persona_model_new_from_json`, free with `pe_persona_model_free`.
pub struct pe_persona_model {
    _private: [u8; 0],
}

/// A handle whose Rust value is shared behind an `Arc`.
pub(crate) trait ArcHandle {
    /// The Rust value behind the handle.
    type Rust: Send + Sync;
}

/// A handle whose Rust value is owned by one `Box`.
pub(crate) trait BoxHandle {
    /// The Rust value behind the handle.
    type Rust;
}

// The mapping. Changing the ownership of a handle means changing exactly one line here.
impl ArcHandle for pe_selector {
    type Rust = SelectorHandle;
}
impl BoxHandle for pe_engine {
    type Rust = EngineHandle;
}
impl BoxHandle for pe_profile {
    type Rust = ProfileHandle;
}
impl BoxHandle for pe_selection {
    type Rust = Selection;
}
impl BoxHandle for pe_stats_blob {
    type Rust = String;
}
impl BoxHandle for pe_decision_log {
    type Rust = super::log::DecisionLogHandle;
}
impl BoxHandle for pe_persona_model {
    type Rust = ModelHandle;
}

/// Hands one strong reference to C.
pub(crate) fn arc_into_ptr<H: ArcHandle>(value: Arc<H::Rust>) -> *const H {
    Arc::into_raw(value).cast::<H>()
}

/// Borrows the value behind a handle for the duration of a call.
///
/// # Safety
/// `ptr` is NULL or came from [`arc_into_ptr`] for the same `H` and was not freed.
pub(crate) unsafe fn arc_ref<'a, H: ArcHandle>(
    ptr: *const H,
    parameter: &str,
) -> Result<&'a H::Rust, Failure> {
    // SAFETY: not NULL (checked by `as_ref`), and by the contract it points to a live
    // `H::Rust` inside an `Arc` whose strong count C holds for the whole call.
    unsafe { ptr.cast::<H::Rust>().as_ref() }.ok_or_else(|| Failure::null(parameter))
}

/// A new strong reference to the value behind a handle (C keeps its own).
///
/// # Safety
/// As [`arc_ref`].
pub(crate) unsafe fn arc_clone<H: ArcHandle>(
    ptr: *const H,
    parameter: &str,
) -> Result<Arc<H::Rust>, Failure> {
    if ptr.is_null() {
        return Err(Failure::null(parameter));
    }
    let ptr = ptr.cast::<H::Rust>();
    // SAFETY: `ptr` came from `Arc::into_raw` and C still holds that reference, so the
    // count is at least 1; we add one and take ownership of exactly that one.
    unsafe {
        Arc::increment_strong_count(ptr);
        Ok(Arc::from_raw(ptr))
    }
}

/// Gives back C's strong reference. NULL does nothing.
///
/// # Safety
/// `ptr` is NULL or came from [`arc_into_ptr`] for the same `H` and is not used again.
pub(crate) unsafe fn arc_free<H: ArcHandle>(ptr: *const H) {
    if !ptr.is_null() {
        // SAFETY: by the contract it is C's reference from `Arc::into_raw`, given up now.
        drop(unsafe { Arc::from_raw(ptr.cast::<H::Rust>()) });
    }
}

/// Moves a value to the heap and hands ownership to C.
pub(crate) fn box_into_ptr<H: BoxHandle>(value: H::Rust) -> *mut H {
    Box::into_raw(Box::new(value)).cast::<H>()
}

/// Borrows the value behind a handle, read-only, for the duration of a call.
///
/// # Safety
/// `ptr` is NULL or came from [`box_into_ptr`] for the same `H`, was not freed, and is
/// not being changed by another thread during the call.
pub(crate) unsafe fn box_ref<'a, H: BoxHandle>(
    ptr: *const H,
    parameter: &str,
) -> Result<&'a H::Rust, Failure> {
    // SAFETY: not NULL (checked by `as_ref`); by the contract a live, boxed `H::Rust`
    // that nobody writes during the call.
    unsafe { ptr.cast::<H::Rust>().as_ref() }.ok_or_else(|| Failure::null(parameter))
}

/// Borrows the value behind a handle mutably for the duration of a call.
///
/// # Safety
/// `ptr` is NULL or came from [`box_into_ptr`] for the same `H`, was not freed, and no
/// other thread or argument of the same call uses it during the call.
pub(crate) unsafe fn box_mut<'a, H: BoxHandle>(
    ptr: *mut H,
    parameter: &str,
) -> Result<&'a mut H::Rust, Failure> {
    // SAFETY: not NULL (checked by `as_mut`); by the contract a live, boxed `H::Rust`
    // used by nobody else during the call, so the exclusive borrow is unique.
    unsafe { ptr.cast::<H::Rust>().as_mut() }.ok_or_else(|| Failure::null(parameter))
}

/// Takes ownership back from C and drops the value. NULL does nothing.
///
/// # Safety
/// `ptr` is NULL or came from [`box_into_ptr`] for the same `H` and is not used again.
pub(crate) unsafe fn box_free<H: BoxHandle>(ptr: *mut H) {
    if !ptr.is_null() {
        // SAFETY: by the contract C owned this box and gives it up now.
        drop(unsafe { Box::from_raw(ptr.cast::<H::Rust>()) });
    }
}
