//! Shared helpers for the C ABI tests: string arguments, the thread's last error
//! message (read into a buffer sized from the length the library reports), and a
//! status check that shows that message.
#![allow(dead_code)]

use std::ffi::{c_char, CStr};
use std::ptr::null_mut;

use persona_engine::ffi::{pe_last_error_message, pe_status};

/// A Rust string as the `(ptr, len)` pair the C ABI takes.
pub fn c(s: &str) -> (*const c_char, usize) {
    (s.as_ptr().cast(), s.len())
}

/// The calling thread's last error message.
pub fn last_error() -> String {
    let mut needed = 0usize;
    let status = unsafe { pe_last_error_message(null_mut(), 0, &mut needed) };
    assert!(matches!(status, pe_status::Ok | pe_status::BufferTooSmall), "{status:?}");
    let mut buf = vec![0 as c_char; needed + 1];
    let mut len = 0usize;
    assert_eq!(unsafe { pe_last_error_message(buf.as_mut_ptr(), buf.len(), &mut len) }, pe_status::Ok);
    unsafe { CStr::from_ptr(buf.as_ptr()) }.to_str().unwrap().to_owned()
}

/// Asserts `status` is OK, showing the last error message otherwise.
#[track_caller]
pub fn ok(status: pe_status) {
    assert_eq!(status, pe_status::Ok, "{}", last_error());
}
