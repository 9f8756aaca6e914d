//! The C ABI, and the only module allowed `unsafe`: it converts and checks what C hands
//! over, calls the safe API, and converts back. It never holds engine logic, never lets
//! a panic unwind into C, and `pe_select` never allocates.
//!
//! Layout, one file per concern (as in rustls-ffi):
//! - [`status`]: `pe_status`, the Rust error → status mapping and the thread-local
//!   last-error message;
//! - [`boundary`]: the one panic-boundary macro and the checked readers of C arguments
//!   (strings, out-parameters, caller buffers);
//! - [`handles`]: the opaque handle types and the one place each is mapped to the Rust
//!   value behind it and how it is owned (`Arc` or `Box`);
//! - one file per C type: [`selector`], [`profile`], [`model`] (a persona model that
//!   scores profiles from their signals), [`context`], [`selection`];
//! - [`engine`]: `pe_engine`, a service's engine: the current catalog version as a
//!   selector, new versions published under load, the statistics of all versions;
//! - [`feedback`]: `pe_record`, what people did with what they were shown;
//! - [`stats`]: the learned statistics as JSON (save, load, export a delta, merge);
//! - [`log`]: the decision log writer (open, log a decision and its outcomes, close);
//! - `testing` (cargo feature `ffi-testing` only): entry points that exist only so tests
//!   can reach internal paths; never in the shipped library or header.
//!
//! Adding an entry point: write an `unsafe extern "C" fn` in the file of the type it acts
//! on, run its whole body inside `ffi_boundary!`, read every argument with the helpers
//! of [`boundary`] and [`handles`], and regenerate the header with
//! `UPDATE_HEADER=1 cargo test --test ffi_header`.
//!
//! Rules every entry point follows (the header repeats them per function):
//! - a `const` handle argument may be shared: such calls may run on many threads at
//!   once. They only read, except on a selector, whose learned statistics and shadow
//!   flags change through `const` calls (`pe_record`, `pe_selector_stats_*`,
//!   `pe_selector_set_shadow`) that synchronize internally. A non-`const` handle must
//!   not be used by two threads at the same time;
//! - strings come in as `(pointer, length)` pairs of UTF-8 bytes, need no terminating
//!   NUL, and are only read during the call;
//! - outputs go to trailing out-parameters and are written only on success (the one
//!   exception: the buffer rule of `boundary::OutStr`: on `PE_STATUS_BUFFER_TOO_SMALL`
//!   `*out_len` gets the length needed and a buffer with `cap > 0` holds as much of the
//!   string as fits, NUL-terminated);
//! - pointers that are not NULL must point to valid memory of the stated type and size;
//!   handles must come from the matching `_new` function and not be freed yet.
#![allow(non_camel_case_types)]
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]
// The safety contract of every entry point is the module-wide one above, repeated in
// each function's header comment in C terms; a Rust `# Safety` section per function
// would only duplicate it.
#![allow(clippy::missing_safety_doc)]

// Declaration order is the order of the header: errors first, then the types in the
// order a program uses them. (Blank lines keep rustfmt from sorting the modules.)
#[macro_use]
pub mod boundary;

pub mod handles;

pub mod status;

pub mod selector;

pub mod engine;

pub mod profile;

pub mod model;

pub mod context;

pub mod selection;

pub mod feedback;

pub mod assembly;

pub mod stats;

pub mod log;

#[cfg(feature = "ffi-testing")]
pub mod testing;

// Every C type and function is also reachable as `persona_engine::ffi::*`, so Rust tests
// (and Rust programs that want the C semantics) can call them directly.
pub use assembly::*;
pub use context::*;
pub use engine::*;
pub use feedback::*;
pub use handles::{
    pe_decision_log, pe_engine, pe_persona_model, pe_profile, pe_selection, pe_selector, pe_stats_blob,
};
pub use log::*;
pub use model::*;
pub use profile::*;
pub use selection::*;
pub use selector::*;
pub use stats::*;
pub use status::*;
#[cfg(feature = "ffi-testing")]
pub use testing::*;

use std::ffi::c_char;

/// The version of this library (`"0.1.0"`), as a NUL-terminated string.
///
/// The string is static: never free it; it stays valid for the life of the process.
/// Thread-safe. Never fails.
#[no_mangle]
pub extern "C" fn pe_version() -> *const c_char {
    const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");
    ffi_boundary!(default = std::ptr::null(), { VERSION.as_ptr().cast::<c_char>() })
}
