//! `pe_status`, the one mapping from the crate's `Error` to a status, and the
//! thread-local last-error message that C reads without allocating. Setting the
//! message allocates, but only on an error path; success never touches it.

use std::cell::RefCell;
use std::ffi::c_char;

use super::boundary::OutStr;
use crate::error::Error;

/// What an entry point reports. Every fallible function returns one; `PE_STATUS_OK`
/// (0) means success, anything else failure, with a readable message available from
/// `pe_last_error_message` on the same thread. Values are stable: new statuses are
/// only ever added at the end.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum pe_status {
    /// Success.
    Ok = 0,
    /// A required pointer argument was NULL.
    NullParameter = 1,
    /// A string argument was not valid UTF-8.
    InvalidUtf8 = 2,
    /// A caller buffer was too small; the length needed was written to `*out_len`
    /// (the buffer needs `*out_len + 1` bytes, for the terminating NUL), and a buffer
    /// with `cap > 0` holds as much as fitted, NUL-terminated.
    BufferTooSmall = 3,
    /// A JSON document could not be parsed (the message has the line and column).
    InvalidJson = 4,
    /// A catalog spec, profile or selector configuration parsed but failed validation
    /// (the message names the creative and the field).
    InvalidSpec = 5,
    /// A persona, placement or creative name that the catalog does not know.
    UnknownName = 6,
    /// An argument outside its domain: an enum value C passed that does not exist, a
    /// score above 9, a data-class bit that is not a data class, a capacity of 0, a
    /// document larger than its limit (the message names the limit), ...
    InvalidArgument = 7,
    /// A file could not be read.
    Io = 8,
    /// An internal panic was caught at the boundary. The objects passed to the call may
    /// be in an unspecified (but memory-safe) state: free them rather than reuse them.
    Panic = 9,
    /// An index or id beyond the end: a pick index past `pe_selection_count`, a
    /// creative index, persona id or placement id not from this catalog.
    OutOfRange = 10,
}

/// Every status, in value order (a free constant, not an associated one: cbindgen would
/// export an associated constant into the header).
const STATUSES: [pe_status; 11] = [
    pe_status::Ok,
    pe_status::NullParameter,
    pe_status::InvalidUtf8,
    pe_status::BufferTooSmall,
    pe_status::InvalidJson,
    pe_status::InvalidSpec,
    pe_status::UnknownName,
    pe_status::InvalidArgument,
    pe_status::Io,
    pe_status::Panic,
    pe_status::OutOfRange,
];

impl pe_status {
    /// The C name of the status, NUL-terminated.
    fn c_name(self) -> &'static str {
        match self {
            pe_status::Ok => "PE_STATUS_OK\0",
            pe_status::NullParameter => "PE_STATUS_NULL_PARAMETER\0",
            pe_status::InvalidUtf8 => "PE_STATUS_INVALID_UTF8\0",
            pe_status::BufferTooSmall => "PE_STATUS_BUFFER_TOO_SMALL\0",
            pe_status::InvalidJson => "PE_STATUS_INVALID_JSON\0",
            pe_status::InvalidSpec => "PE_STATUS_INVALID_SPEC\0",
            pe_status::UnknownName => "PE_STATUS_UNKNOWN_NAME\0",
            pe_status::InvalidArgument => "PE_STATUS_INVALID_ARGUMENT\0",
            pe_status::Io => "PE_STATUS_IO\0",
            pe_status::Panic => "PE_STATUS_PANIC\0",
            pe_status::OutOfRange => "PE_STATUS_OUT_OF_RANGE\0",
        }
    }

    /// The status a crate error maps to. Exhaustive on purpose: a new `Error` variant
    /// does not compile until it is given a status here.
    pub(crate) fn of(error: &Error) -> pe_status {
        match error {
            Error::UnknownPersona { .. } | Error::UnknownPlacement { .. } | Error::UnknownCreative { .. } => {
                pe_status::UnknownName
            }
            Error::ScoreOutOfRange { .. } | Error::TooLarge { .. } => pe_status::InvalidArgument,
            Error::InvalidCreative { .. } | Error::InvalidTemplate { .. } | Error::Invalid { .. } => {
                pe_status::InvalidSpec
            }
            Error::Json { .. } | Error::CreativeJson { .. } => pe_status::InvalidJson,
            Error::InFile { source: None, .. } => pe_status::InvalidJson,
            Error::InFile { source: Some(inner), .. } => pe_status::of(inner),
            Error::LogLine { .. } => pe_status::InvalidArgument,
            Error::Io { .. } => pe_status::Io,
        }
    }
}

thread_local! {
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Replaces this thread's last-error message (reusing its buffer). A NUL in the message
/// (messages quote the input, which may hold one) is written as `\0`, so C reads the
/// whole message as one string.
pub(crate) fn set_last_error(message: &str) {
    // `try_with`: the thread-local is gone while a thread shuts down; then there is no
    // one left to read the message anyway.
    let _ = LAST_ERROR.try_with(|last| {
        if let Ok(mut last) = last.try_borrow_mut() {
            last.clear();
            for (i, part) in message.split('\0').enumerate() {
                if i > 0 {
                    last.push_str("\\0");
                }
                last.push_str(part);
            }
        }
    });
}

/// The static name of a status value (`"PE_STATUS_UNKNOWN_NAME"`), for logs.
///
/// Takes the raw value, so any number is accepted: a value that is not a status gives
/// `"PE_STATUS_UNRECOGNIZED"`. The string is static and NUL-terminated: never free it.
/// Thread-safe. Never returns NULL.
#[no_mangle]
pub extern "C" fn pe_status_name(status: u32) -> *const c_char {
    const UNRECOGNIZED: &str = "PE_STATUS_UNRECOGNIZED\0";
    ffi_boundary!(default = UNRECOGNIZED.as_ptr().cast::<c_char>(), {
        let name =
            usize::try_from(status).ok().and_then(|i| STATUSES.get(i)).map_or(UNRECOGNIZED, |s| s.c_name());
        name.as_ptr().cast::<c_char>()
    })
}

/// Copies the message of the last error on the calling thread into `buf`, followed by
/// a NUL, and writes the message length (without the NUL) to `*out_len`.
///
/// Every function that returns an error status sets this message first, e.g.
/// `creative 'summer-hero': field 'personas': unknown persona 'Luxury Travle'`. The
/// message holds no NUL before its terminator (a NUL quoted from the input is written
/// as the two characters `\0`). Successful calls leave it unchanged (like `errno`), so
/// read it right after the failing call.
/// Before any error it is the empty string. Each thread has its own message.
///
/// Never allocates and never changes the message. When `cap` is too small, copies as
/// much of the message as fits (cut at a character boundary, NUL-terminated when
/// `cap > 0`), writes the full length to `*out_len` and returns
/// `PE_STATUS_BUFFER_TOO_SMALL`; a buffer of `*out_len + 1` bytes is enough.
/// `buf` may be NULL only when `cap` is 0 (to ask for the length).
///
/// Errors: `PE_STATUS_NULL_PARAMETER` when `out_len` is NULL, or `buf` is NULL with
/// `cap > 0`; `PE_STATUS_BUFFER_TOO_SMALL` as above.
#[no_mangle]
pub unsafe extern "C" fn pe_last_error_message(
    buf: *mut c_char,
    cap: usize,
    out_len: *mut usize,
) -> pe_status {
    ffi_boundary!(default = pe_status::Panic, {
        // This function reports its own failures by status only: overwriting the
        // message would lose the very text the caller is after.
        // SAFETY: the caller passes a buffer of `cap` bytes (or NULL) and a writable
        // `size_t` (or NULL), as documented above.
        match unsafe { OutStr::new(buf, cap, out_len) } {
            Err(failure) => failure.status,
            Ok(out) => LAST_ERROR
                .try_with(|last| match last.try_borrow() {
                    Ok(message) => out.write_truncating(&message),
                    Err(_) => out.write_truncating(""),
                })
                .unwrap_or(pe_status::Ok),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_values_are_their_position() {
        for (i, s) in STATUSES.iter().enumerate() {
            assert_eq!(*s as u32, i as u32);
            assert!(s.c_name().ends_with('\0'));
        }
    }
}
