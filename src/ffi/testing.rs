//! Entry points that exist only so tests (Rust and C) can reach paths no valid input
//! reaches: today, a panic inside the boundary. Compiled only with the cargo feature
//! `ffi-testing`, so they are never part of the shipped library or header.

use super::status::pe_status;

/// FOR TESTS ONLY: panics inside the library, to prove the panic boundary works. The
/// panic is caught before it reaches C: the call returns `PE_STATUS_PANIC` and
/// `pe_last_error_message` gives `internal panic: ...`. (The default panic hook also
/// prints the panic to stderr.) Thread-safe. Never call it in production code.
#[doc(hidden)]
#[no_mangle]
pub extern "C" fn pe_test_force_panic() -> pe_status {
    ffi_boundary!({ force_panic() })
}

#[allow(clippy::panic)] // The whole point: a panic the boundary must catch.
fn force_panic() -> Result<(), super::boundary::Failure> {
    panic!("forced by pe_test_force_panic")
}
