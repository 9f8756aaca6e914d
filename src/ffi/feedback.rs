//! `pe_record`: what a person did with a creative they were shown, fed back into their
//! profile and the selector's learned statistics. The kind comes in as a `u32` and is
//! converted fallibly; the creative, the context and the value are checked before
//! anything changes.

use super::boundary::Failure;
use super::context::{self, pe_context};
use super::handles::{arc_ref, box_mut, pe_profile, pe_selector, SelectorHandle};
use super::selector::creative_index;
use super::status::pe_status;
use crate::error::Error;
use crate::feedback::{Feedback, FeedbackKind, MAX_CONVERSION_VALUE};

/// What a person did with a creative (values for the `kind` of `pe_record`).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum pe_feedback_kind {
    /// The creative was shown. Remembered for frequency caps and fatigue; counted.
    Impression = 0,
    /// The person clicked it. Counted; resets fatigue.
    Click = 1,
    /// The person converted after it, for the `value` passed to `pe_record`. Counted
    /// with its value; resets fatigue.
    Conversion = 2,
    /// The person said they liked it: resets fatigue and raises their score of each
    /// persona it is tagged with by one point (up to 9).
    ThumbsUp = 3,
    /// The person said they did not like it: it is never picked for them again, and
    /// each persona it is tagged with loses one point (down to 0).
    ThumbsDown = 4,
    /// The person closed it: it is never picked for them again.
    Dismiss = 5,
}

/// Every kind, in value order.
const FEEDBACK_KINDS: [pe_feedback_kind; 6] = [
    pe_feedback_kind::Impression,
    pe_feedback_kind::Click,
    pe_feedback_kind::Conversion,
    pe_feedback_kind::ThumbsUp,
    pe_feedback_kind::ThumbsDown,
    pe_feedback_kind::Dismiss,
];

/// Converts the C value into the Rust kind (with the value for a conversion).
pub(crate) fn feedback_kind(kind: u32, value: f64) -> Result<FeedbackKind, Failure> {
    let c = usize::try_from(kind).ok().and_then(|i| FEEDBACK_KINDS.get(i)).copied().ok_or_else(|| {
        Failure::invalid(format!(
            "kind: {kind} is not a pe_feedback_kind value (0..={})",
            FEEDBACK_KINDS.len() - 1
        ))
    })?;
    // Exhaustive: a new C kind does not compile until it has its Rust twin.
    Ok(match c {
        pe_feedback_kind::Impression => FeedbackKind::Impression,
        pe_feedback_kind::Click => FeedbackKind::Click,
        pe_feedback_kind::Conversion => FeedbackKind::Conversion { value },
        pe_feedback_kind::ThumbsUp => FeedbackKind::ThumbsUp,
        pe_feedback_kind::ThumbsDown => FeedbackKind::ThumbsDown,
        pe_feedback_kind::Dismiss => FeedbackKind::Dismiss,
    })
}

/// Records what the person behind `profile` did with creative `creative` (an index from
/// `pe_selection_creative` or `pe_selector_creative`) in the moment `context`
/// describes (its time, device and daypart; its seed is not used). `kind` is a
/// `pe_feedback_kind` value; `value` is the conversion's value in currency units
/// (finite, 0 to 1e9) for `PE_FEEDBACK_KIND_CONVERSION` and ignored otherwise (pass 0).
///
/// With a version of a `pe_engine` (from `pe_engine_current` or `pe_engine_select`), the
/// event goes through the engine: it is counted in the engine's current version (the
/// creative found by its id), even when a newer version was published since the pick;
/// the creative must still be in the current catalog (else `PE_STATUS_UNKNOWN_NAME`).
///
/// Two effects: the person's profile remembers it (a thumbs-down or a dismissal is
/// obeyed from the very next `pe_select`; impressions feed frequency caps and fatigue;
/// a thumbs-up or -down nudges persona scores), and the selector's learned statistics
/// count impressions, clicks and conversions under the person's current segment, so
/// later selections for everyone learn from it (unless the policy is `"rules"`).
/// Record each impression you serve, not only the reactions: click rates are clicks
/// over impressions.
///
/// Thread-safety: the selector is shared: `pe_record` is lock-free and may run on many
/// threads at once and alongside `pe_select`. `profile` is changed: no other thread may
/// use it during the call. Off the allocation-free path: the profile's memory may grow
/// (it is bounded). `context` and its strings are only read during the call.
///
/// Errors (nothing changes): `PE_STATUS_NULL_PARAMETER` (`selector`, `profile`,
/// `context`, or a context string pointer with a nonzero length),
/// `PE_STATUS_OUT_OF_RANGE` (`creative` is not an index of this catalog),
/// `PE_STATUS_INVALID_ARGUMENT` (`kind` is not a `pe_feedback_kind`; a conversion
/// `value` that is negative, NaN, infinite or above 1e9; a context value that does not
/// exist; a profile made for a selector with a different persona menu),
/// `PE_STATUS_INVALID_UTF8` (a context string), `PE_STATUS_UNKNOWN_NAME` (an engine's
/// version only: the current version no longer has the creative).
#[no_mangle]
pub unsafe extern "C" fn pe_record(
    selector: *const pe_selector,
    profile: *mut pe_profile,
    context: *const pe_context,
    creative: u32,
    kind: u32,
    value: f64,
) -> pe_status {
    ffi_boundary!({
        // SAFETY: a live selector and profile (or NULL) from the matching `_new`
        // functions, the profile used by this thread alone; a readable `pe_context`
        // whose strings are readable for their lengths, as documented above.
        let (selector, handle, context) = unsafe {
            (arc_ref(selector, "selector")?, box_mut(profile, "profile")?, context::read(context)?)
        };
        let creative = creative_index(selector, creative)?;
        let kind = feedback_kind(kind, value)?;
        handle.check_menu(selector)?;
        let feedback = Feedback::new(creative, kind, &context);
        let recorded = match selector {
            SelectorHandle::Own(selector) => selector.record(&mut handle.profile, &feedback),
            SelectorHandle::Version { engine, version } => {
                engine.record(version, &mut handle.profile, &feedback)
            }
        };
        recorded.map_err(|error| match error {
            // The creative was checked above, so what is left is the conversion value:
            // an argument C passed, not a document.
            Error::Invalid { .. } => Failure::invalid(error.to_string()),
            error => error.into(),
        })
    })
}

const _: () = {
    let mut i = 0;
    while i < FEEDBACK_KINDS.len() {
        assert!(FEEDBACK_KINDS[i] as usize == i);
        i += 1;
    }
};

// The documented bound is the Rust one.
const _: () = assert!(MAX_CONVERSION_VALUE == 1e9);
