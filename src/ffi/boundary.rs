//! The boundary every entry point runs inside: one macro, `ffi_boundary!`, catches
//! panics so none unwinds into C, and turns a failed body into a `pe_status` plus the
//! thread-local message. The checked readers of C arguments live here too: strings as
//! `(ptr, len)`, out-parameters, and caller-owned string buffers. Nothing here
//! allocates on success.

use std::any::Any;
use std::ffi::c_char;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::NonNull;

use super::status::{pe_status, set_last_error};
use crate::error::Error;

/// Runs the body of an `extern "C"` function so that no panic crosses into C.
///
/// - `ffi_boundary!({ ... })`: the body evaluates to `Result<(), Failure>` (so `?`
///   works); the function returns `PE_STATUS_OK`, or the failure's status after
///   recording its message as this thread's last error.
/// - `ffi_boundary!(default = value, { ... })`: the body evaluates to the return value
///   itself; a panic gives `value`.
///
/// Either way a panic is caught, its message recorded as the last error, and the
/// function returns `PE_STATUS_PANIC` (or `value`).
macro_rules! ffi_boundary {
    (default = $default:expr, $body:block) => {
        $crate::ffi::boundary::catch_panic($default, || $body)
    };
    ($body:block) => {
        $crate::ffi::boundary::catch_panic($crate::ffi::status::pe_status::Panic, || {
            let body = || -> ::std::result::Result<(), $crate::ffi::boundary::Failure> { $body };
            $crate::ffi::boundary::into_status(body())
        })
    };
}

/// Calls `f`; if it panics, records the panic as the last error and returns `default`.
/// The one place `catch_unwind` is called.
pub(crate) fn catch_panic<R>(default: R, f: impl FnOnce() -> R) -> R {
    // `AssertUnwindSafe`: after a panic the caller is told (PE_STATUS_PANIC docs) that
    // the objects passed in are in an unspecified state and must only be freed.
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => {
            set_last_error(&format!("internal panic: {}", panic_message(&*payload)));
            default
        }
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "(no message)"
    }
}

/// A failed entry point: the status to return and the message to record.
#[derive(Debug)]
pub(crate) struct Failure {
    /// The status returned to C.
    pub status: pe_status,
    /// The message `pe_last_error_message` will give.
    pub message: String,
}

impl Failure {
    /// A failure with a status and a message.
    pub(crate) fn new(status: pe_status, message: impl Into<String>) -> Self {
        Failure { status, message: message.into() }
    }

    /// `PE_STATUS_NULL_PARAMETER` naming the parameter.
    pub(crate) fn null(parameter: &str) -> Self {
        Failure::new(pe_status::NullParameter, format!("parameter '{parameter}' is NULL"))
    }

    /// `PE_STATUS_INVALID_ARGUMENT` with a message.
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Failure::new(pe_status::InvalidArgument, message)
    }

    /// `PE_STATUS_OUT_OF_RANGE` with a message.
    pub(crate) fn out_of_range(message: impl Into<String>) -> Self {
        Failure::new(pe_status::OutOfRange, message)
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Failure::new(pe_status::of(&error), error.to_string())
    }
}

/// Records a failure's message and returns its status.
pub(crate) fn into_status(result: Result<(), Failure>) -> pe_status {
    match result {
        Ok(()) => pe_status::Ok,
        Err(failure) => {
            set_last_error(&failure.message);
            failure.status
        }
    }
}

/// Reads a required string argument: `len` bytes of UTF-8 at `ptr` (no NUL needed).
/// A NUL byte among them is refused: it is a length that counted the terminator
/// (`sizeof("tier")`), and the name would otherwise never match what it should.
///
/// # Safety
/// `ptr` is NULL or valid for reads of `len` bytes for `'a`.
pub(crate) unsafe fn arg_str<'a>(
    ptr: *const c_char,
    len: usize,
    parameter: &str,
) -> Result<&'a str, Failure> {
    if ptr.is_null() {
        return Err(Failure::null(parameter));
    }
    if len > isize::MAX as usize {
        return Err(Failure::invalid(format!(
            "parameter '{parameter}': length {len} is larger than any buffer can be"
        )));
    }
    // SAFETY: `ptr` is not NULL, `len` fits in `isize`, and the caller guarantees `len`
    // readable bytes at `ptr` for the duration of the call.
    let bytes = unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len) };
    if let Some(at) = bytes.iter().position(|&b| b == 0) {
        return Err(Failure::invalid(format!(
            "parameter '{parameter}': byte {at} of {len} is NUL (pass the length without the terminator)"
        )));
    }
    std::str::from_utf8(bytes).map_err(|e| {
        Failure::new(pe_status::InvalidUtf8, format!("parameter '{parameter}' is not valid UTF-8: {e}"))
    })
}

/// Reads an optional string argument: `len == 0` means absent (whatever `ptr` is);
/// NULL with `len > 0` is an error.
///
/// # Safety
/// As [`arg_str`].
pub(crate) unsafe fn opt_str<'a>(
    ptr: *const c_char,
    len: usize,
    parameter: &str,
) -> Result<Option<&'a str>, Failure> {
    if len == 0 {
        return Ok(None);
    }
    // SAFETY: forwarded from the caller.
    unsafe { arg_str(ptr, len, parameter) }.map(Some)
}

/// A checked, non-NULL out-parameter, written at most once, on success.
pub(crate) struct Out<T>(NonNull<T>);

impl<T> Out<T> {
    /// Checks `ptr` is not NULL.
    ///
    /// # Safety
    /// `ptr` is NULL or valid for one write of a `T` until [`Out::write`] is called.
    pub(crate) unsafe fn new(ptr: *mut T, parameter: &str) -> Result<Self, Failure> {
        NonNull::new(ptr).map(Out).ok_or_else(|| Failure::null(parameter))
    }

    /// Writes the value (the old value, possibly uninitialized C memory, is not read
    /// or dropped; every `T` used here is `Copy` or a raw pointer).
    pub(crate) fn write(self, value: T) {
        // SAFETY: `new`'s contract: valid for one write of a `T`. `write` does not
        // read or drop the previous contents, so uninitialized memory is fine.
        unsafe { self.0.as_ptr().write(value) }
    }
}

/// A caller-owned string buffer: `buf` of `cap` bytes and `*out_len` for the length.
///
/// The one rule for every string a function hands back: `*out_len` always gets the
/// string's full length (without the NUL). When `cap > len` the string is copied
/// followed by a NUL. Otherwise the status is `PE_STATUS_BUFFER_TOO_SMALL` and, when
/// `cap > 0`, as much of the string as fits in `cap - 1` bytes (cut at a character
/// boundary) is copied followed by a NUL, so the buffer always holds a C string. `buf`
/// may be NULL when `cap` is 0 (a length query); a buffer of `*out_len + 1` bytes fits.
pub(crate) struct OutStr {
    buf: *mut c_char,
    cap: usize,
    out_len: NonNull<usize>,
}

impl OutStr {
    /// Checks the pointers.
    ///
    /// # Safety
    /// `buf` is NULL or valid for writes of `cap` bytes, `out_len` is NULL or valid for
    /// one write of a `size_t`, both until the `OutStr` is written.
    pub(crate) unsafe fn new(buf: *mut c_char, cap: usize, out_len: *mut usize) -> Result<Self, Failure> {
        let out_len = NonNull::new(out_len).ok_or_else(|| Failure::null("out_len"))?;
        if buf.is_null() && cap > 0 {
            return Err(Failure::null("buf"));
        }
        Ok(OutStr { buf, cap, out_len })
    }

    fn set_len(&self, len: usize) {
        // SAFETY: `new`'s contract: `out_len` is valid for a write.
        unsafe { self.out_len.as_ptr().write(len) }
    }

    /// Copies `bytes` and a NUL to `buf` (which has room: checked by the callers).
    fn copy(&self, bytes: &[u8]) {
        // SAFETY: callers checked `bytes.len() < self.cap`, so `buf` (valid for `cap`
        // bytes, not NULL since `cap > 0`) has room for the bytes and the NUL; a Rust
        // string and a C buffer cannot overlap.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.buf.cast::<u8>(), bytes.len());
            self.buf.add(bytes.len()).write(0);
        }
    }

    /// Copies `s` by the buffer rule; fails with `PE_STATUS_BUFFER_TOO_SMALL` (and a
    /// message naming `what` and the sizes) when it did not fit.
    pub(crate) fn write(self, s: &str, what: &str) -> Result<(), Failure> {
        let cap = self.cap;
        match self.write_truncating(s) {
            pe_status::Ok => Ok(()),
            status => Err(Failure::new(
                status,
                format!(
                    "{what} is {} bytes: the buffer needs {} bytes (with the NUL), got {cap}",
                    s.len(),
                    s.len() + 1,
                ),
            )),
        }
    }

    /// Copies `s` by the buffer rule without touching the last-error message: as much
    /// as fits (cut at a character boundary, NUL-terminated when `cap > 0`). Returns
    /// `PE_STATUS_BUFFER_TOO_SMALL` when `s` was cut.
    pub(crate) fn write_truncating(self, s: &str) -> pe_status {
        self.set_len(s.len());
        if self.cap == 0 {
            return pe_status::BufferTooSmall;
        }
        let mut end = s.len().min(self.cap - 1);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        self.copy(&s.as_bytes()[..end]);
        if end < s.len() {
            pe_status::BufferTooSmall
        } else {
            pe_status::Ok
        }
    }
}
