//! `pe_profile`: a person's profile for one selector's persona menu, built with setters
//! that take names and checked integers, or loaded from and saved to JSON. Data classes
//! come in as `u32` numbers or bitmasks and are converted fallibly.

use std::ffi::c_char;
use std::sync::Arc;

use super::boundary::{arg_str, Failure, Out, OutStr};
use super::handles::SelectorHandle;
use super::handles::{arc_clone, box_free, box_into_ptr, box_mut, box_ref, pe_profile, pe_selector};
use super::status::pe_status;
use crate::error::Error;
use crate::persona::MAX_SCORE;
use crate::profile::{DataClass, DataClasses, Profile, Signal};
use crate::select::Selector;

/// A class of personal data, for consent (values for `pe_profile_set_consent` and
/// `pe_profile_add_signal`). In a bitmask of classes (`sources` of
/// `pe_profile_set_score`, `pe_profile_set_consent_mask`) class `c` is bit `1u << c`.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum pe_data_class {
    /// What the person did on our properties: pages viewed, searches, clicks.
    Behavioral = 0,
    /// What the person bought.
    Purchase = 1,
    /// Where the person is or was.
    Location = 2,
    /// Age band, household, income band.
    Demographic = 3,
    /// What the person told us themselves (interests, preferences).
    Declared = 4,
    /// Data bought or shared from elsewhere.
    ThirdParty = 5,
}

/// The bitmask of every data class.
pub const PE_DATA_CLASSES_ALL: u32 = 0x3f;

/// The empty bitmask: no data class (no consent; for a score's sources, unknown
/// provenance, which counts only with consent to every class but `declared`).
pub const PE_DATA_CLASSES_NONE: u32 = 0;

const _: () = assert!(PE_DATA_CLASSES_ALL == DataClasses::ALL.0 as u32);

const fn data_class_to_c(c: DataClass) -> pe_data_class {
    match c {
        DataClass::Behavioral => pe_data_class::Behavioral,
        DataClass::Purchase => pe_data_class::Purchase,
        DataClass::Location => pe_data_class::Location,
        DataClass::Demographic => pe_data_class::Demographic,
        DataClass::Declared => pe_data_class::Declared,
        DataClass::ThirdParty => pe_data_class::ThirdParty,
    }
}

// `DataClass::ALL[i]` is class `i` in Rust and in C.
const _: () = {
    let mut i = 0;
    while i < DataClass::ALL.len() {
        assert!(DataClass::ALL[i] as usize == i && data_class_to_c(DataClass::ALL[i]) as usize == i);
        i += 1;
    }
};

/// A profile and the selector whose persona menu its ids refer to (kept alive here, so
/// names resolve even after C freed its selector reference).
#[derive(Debug)]
pub(crate) struct ProfileHandle {
    pub(crate) selector: Arc<SelectorHandle>,
    pub(crate) profile: Profile,
}

impl ProfileHandle {
    /// Checks that the profile's persona ids mean the same personas for `selector`:
    /// same selector (one pointer comparison) or an identical persona menu.
    pub(crate) fn check_menu(&self, selector: &Selector) -> Result<(), Failure> {
        if std::ptr::eq::<Selector>(&**self.selector, selector)
            || self.selector.catalog().menu().names() == selector.catalog().menu().names()
        {
            Ok(())
        } else {
            Err(Failure::invalid(
                "profile: it was made for a selector with a different persona menu; \
                 save it with pe_profile_to_json and load it for this selector",
            ))
        }
    }
}

fn to_data_class(value: u32, parameter: &str) -> Result<DataClass, Failure> {
    usize::try_from(value).ok().and_then(|i| DataClass::ALL.get(i)).copied().ok_or_else(|| {
        Failure::invalid(format!(
            "{parameter}: {value} is not a pe_data_class value (0..={})",
            DataClass::ALL.len() - 1
        ))
    })
}

fn to_data_classes(mask: u32, parameter: &str) -> Result<DataClasses, Failure> {
    if mask & !PE_DATA_CLASSES_ALL != 0 {
        return Err(Failure::invalid(format!(
            "{parameter}: bitmask {mask:#x} has bits that are not data classes \
             (PE_DATA_CLASSES_ALL is {PE_DATA_CLASSES_ALL:#x})"
        )));
    }
    // The check above leaves only the low 6 bits.
    Ok(DataClasses((mask & PE_DATA_CLASSES_ALL) as u8))
}

/// Creates an empty profile for `selector`'s persona menu: no scores, no consent, first
/// seen at `now` (Unix seconds) with one visit. The profile keeps its own reference to
/// the selector, so the selector may be freed first.
///
/// On success writes the profile to `*out_profile`; the caller owns it and frees it with
/// `pe_profile_free`. Thread-safe for the selector.
///
/// Errors: `PE_STATUS_NULL_PARAMETER`. (With `now` 0 the profile serves, but
/// `pe_profile_to_json` refuses it: one visit from 1970 would read back as a loyal
/// customer.)
#[no_mangle]
pub unsafe extern "C" fn pe_profile_new(
    selector: *const pe_selector,
    now: i64,
    out_profile: *mut *mut pe_profile,
) -> pe_status {
    ffi_boundary!({
        // SAFETY: a live selector (or NULL) and a writable pointer slot (or NULL).
        let (out, selector) =
            unsafe { (Out::new(out_profile, "out_profile")?, arc_clone(selector, "selector")?) };
        let profile = selector.new_profile(now);
        out.write(box_into_ptr(ProfileHandle { selector, profile }));
        Ok(())
    })
}

/// Creates a profile for `selector`'s persona menu from JSON (`json_len` bytes of UTF-8;
/// the shape `pe_profile_to_json` writes: `persona_scores`, `signals`, `consent`,
/// `first_seen`, `visits`, `likes`, `dislikes`, `exposures`, `suppressed`; unknown fields
/// are errors). Persona names are resolved against this selector's menu.
///
/// On success writes the profile to `*out_profile`; the caller owns it and frees it with
/// `pe_profile_free`. Thread-safe for the selector.
///
/// Errors: `PE_STATUS_NULL_PARAMETER`, `PE_STATUS_INVALID_UTF8`,
/// `PE_STATUS_INVALID_JSON` (syntax or shape), `PE_STATUS_INVALID_SPEC` (an unknown
/// persona, a score above 9, too many entries, a persona in both `likes` and
/// `dislikes`: the message names the field; whatever fails in a document is a spec
/// error, unlike the same value passed to `pe_profile_set_score`),
/// `PE_STATUS_INVALID_ARGUMENT` (a document larger than its limit).
#[no_mangle]
pub unsafe extern "C" fn pe_profile_new_from_json(
    selector: *const pe_selector,
    json: *const c_char,
    json_len: usize,
    out_profile: *mut *mut pe_profile,
) -> pe_status {
    ffi_boundary!({
        // SAFETY: a live selector (or NULL), a readable string, a writable pointer slot.
        let (out, json, selector) = unsafe {
            (
                Out::new(out_profile, "out_profile")?,
                arg_str(json, json_len, "json")?,
                arc_clone(selector, "selector")?,
            )
        };
        let profile = Profile::from_json(selector.catalog().menu(), json).map_err(|error| match error {
            // A name or score inside a document: the document failed validation.
            Error::UnknownPersona { .. } | Error::ScoreOutOfRange { .. } => {
                Failure::new(pe_status::InvalidSpec, error.to_string())
            }
            error => Failure::from(error),
        })?;
        out.write(box_into_ptr(ProfileHandle { selector, profile }));
        Ok(())
    })
}

/// Frees a profile (and its reference to its selector). NULL does nothing. The pointer
/// must not be used after this call, nor concurrently with it.
#[no_mangle]
pub unsafe extern "C" fn pe_profile_free(profile: *mut pe_profile) {
    ffi_boundary!(default = (), {
        // SAFETY: the caller gives up a pointer from a `pe_profile_new*` function (or
        // NULL) and does not use it again.
        unsafe { box_free(profile) }
    })
}

/// Writes the profile as JSON (persona names, not ids, so it survives a catalog whose
/// menu gains or reorders personas) into `buf`, NUL-terminated, and its length to
/// `*out_len`. Load it back with `pe_profile_new_from_json`. Allocates internally; keep
/// it off the request path. The profile is only read.
///
/// Errors: `PE_STATUS_NULL_PARAMETER` (`profile`, `out_len`, or `buf` with `cap > 0`),
/// `PE_STATUS_BUFFER_TOO_SMALL` (the buffer rule at the top of this header: `*out_len`
/// has the length, so a buffer of `*out_len + 1` bytes fits; pass `buf` NULL and `cap`
/// 0 to ask for it).
#[no_mangle]
pub unsafe extern "C" fn pe_profile_to_json(
    profile: *const pe_profile,
    buf: *mut c_char,
    cap: usize,
    out_len: *mut usize,
) -> pe_status {
    ffi_boundary!({
        // SAFETY: a live profile (or NULL) not written during the call, a writable
        // buffer of `cap` bytes (or NULL) and a writable `size_t` (or NULL).
        let (handle, out) = unsafe { (box_ref(profile, "profile")?, OutStr::new(buf, cap, out_len)?) };
        let json = handle.profile.to_json(handle.selector.catalog().menu())?;
        out.write(&json, "the profile JSON")
    })
}

/// Sets the score (0..=9) of the persona named `persona` (`persona_len` bytes of UTF-8),
/// as imported from a data team or model, with `sources`: the bitmask of data classes
/// it was derived from (`1u << PE_DATA_CLASS_BEHAVIORAL | ...`, or
/// `PE_DATA_CLASSES_NONE` for a score set by hand). A score counts in a match only when
/// the person consented to all of its sources.
///
/// Errors: `PE_STATUS_NULL_PARAMETER`, `PE_STATUS_INVALID_UTF8`,
/// `PE_STATUS_UNKNOWN_NAME` (not on the menu), `PE_STATUS_INVALID_ARGUMENT` (score above
/// 9, or bits in `sources` that are not data classes). Nothing changes on error.
#[no_mangle]
pub unsafe extern "C" fn pe_profile_set_score(
    profile: *mut pe_profile,
    persona: *const c_char,
    persona_len: usize,
    score: u32,
    sources: u32,
) -> pe_status {
    ffi_boundary!({
        // SAFETY: a live profile (or NULL) used by this thread alone, a readable string.
        let (handle, persona) =
            unsafe { (box_mut(profile, "profile")?, arg_str(persona, persona_len, "persona")?) };
        let sources = to_data_classes(sources, "sources")?;
        let score = u8::try_from(score).ok().filter(|s| *s <= MAX_SCORE).ok_or_else(|| {
            Failure::invalid(format!(
                "persona '{}': score {score} is out of range (scores are 0..={MAX_SCORE})",
                crate::error::quote(persona)
            ))
        })?;
        let menu = handle.selector.catalog().menu();
        handle.profile.set_score(menu, persona, score, sources)?;
        Ok(())
    })
}

/// Adds a signal for the persona model: `name` (`name_len` bytes of UTF-8, not empty),
/// a finite `value`, the `pe_data_class` it belongs to, observed at `at` (Unix
/// seconds). Past 1024 signals the oldest is dropped.
///
/// Errors: `PE_STATUS_NULL_PARAMETER`, `PE_STATUS_INVALID_UTF8`,
/// `PE_STATUS_INVALID_ARGUMENT` (an empty name, a NaN or infinite value, a data class
/// that does not exist). Nothing changes on error.
#[no_mangle]
pub unsafe extern "C" fn pe_profile_add_signal(
    profile: *mut pe_profile,
    name: *const c_char,
    name_len: usize,
    value: f32,
    data_class: u32,
    at: i64,
) -> pe_status {
    ffi_boundary!({
        // SAFETY: a live profile (or NULL) used by this thread alone, a readable string.
        let (handle, name) = unsafe { (box_mut(profile, "profile")?, arg_str(name, name_len, "name")?) };
        let class = to_data_class(data_class, "data_class")?;
        handle
            .profile
            .add_signal(Signal { name: name.to_owned(), value, class, at })
            .map_err(|e| Failure::invalid(e.to_string()))
    })
}

/// Grants (`granted` true) or withdraws consent for one `pe_data_class`. Creatives and
/// persona scores that rely on a class without consent are not used for this person.
///
/// Errors: `PE_STATUS_NULL_PARAMETER`, `PE_STATUS_INVALID_ARGUMENT` (not a data class).
#[no_mangle]
pub unsafe extern "C" fn pe_profile_set_consent(
    profile: *mut pe_profile,
    data_class: u32,
    granted: bool,
) -> pe_status {
    ffi_boundary!({
        // SAFETY: a live profile (or NULL) used by this thread alone.
        let handle = unsafe { box_mut(profile, "profile")? };
        let class = to_data_class(data_class, "data_class")?;
        handle.profile.set_consent(class, granted);
        Ok(())
    })
}

/// Replaces the whole consent set with a bitmask of data classes (`PE_DATA_CLASSES_ALL`,
/// `PE_DATA_CLASSES_NONE`, or `1u << PE_DATA_CLASS_... | ...`).
///
/// Errors: `PE_STATUS_NULL_PARAMETER`, `PE_STATUS_INVALID_ARGUMENT` (bits that are not
/// data classes). Nothing changes on error.
#[no_mangle]
pub unsafe extern "C" fn pe_profile_set_consent_mask(profile: *mut pe_profile, mask: u32) -> pe_status {
    ffi_boundary!({
        // SAFETY: a live profile (or NULL) used by this thread alone.
        let handle = unsafe { box_mut(profile, "profile")? };
        handle.profile.consent = to_data_classes(mask, "mask")?;
        Ok(())
    })
}

/// Sets how long and how often we have known the person: first seen at `first_seen`
/// (Unix seconds) with `visits` visits. The relationship stage (new, returning, regular,
/// loyal) follows from these at each request's time, and caps how personal a creative
/// may be.
///
/// Errors (nothing changes): `PE_STATUS_NULL_PARAMETER`, `PE_STATUS_INVALID_ARGUMENT`
/// (`visits` above 0 with `first_seen` 0, which would read as a customer since 1970;
/// a profile saved so could not be loaded back).
#[no_mangle]
pub unsafe extern "C" fn pe_profile_set_relationship(
    profile: *mut pe_profile,
    first_seen: i64,
    visits: u32,
) -> pe_status {
    ffi_boundary!({
        // SAFETY: a live profile (or NULL) used by this thread alone.
        let handle = unsafe { box_mut(profile, "profile")? };
        crate::profile::check_relationship(first_seen, visits)
            .map_err(|e| Failure::invalid(e.to_string()))?;
        handle.profile.first_seen = first_seen;
        handle.profile.visits = visits;
        Ok(())
    })
}

/// Declares that the person likes the persona named `persona` (and no longer dislikes
/// it: the latest declaration wins): it counts as score 9 whatever was inferred, without
/// needing consent.
///
/// Errors: `PE_STATUS_NULL_PARAMETER`, `PE_STATUS_INVALID_UTF8`,
/// `PE_STATUS_UNKNOWN_NAME`.
#[no_mangle]
pub unsafe extern "C" fn pe_profile_declare_like(
    profile: *mut pe_profile,
    persona: *const c_char,
    persona_len: usize,
) -> pe_status {
    ffi_boundary!({
        // SAFETY: a live profile (or NULL) used by this thread alone, a readable string.
        let (handle, persona) =
            unsafe { (box_mut(profile, "profile")?, arg_str(persona, persona_len, "persona")?) };
        let menu = handle.selector.catalog().menu();
        handle.profile.declare_like(menu, persona)?;
        Ok(())
    })
}

/// Declares that the person is not interested in the persona named `persona` (and no
/// longer likes it: the latest declaration wins): no creative tagged with it is shown
/// to them, whatever was inferred.
///
/// Errors: `PE_STATUS_NULL_PARAMETER`, `PE_STATUS_INVALID_UTF8`,
/// `PE_STATUS_UNKNOWN_NAME`.
#[no_mangle]
pub unsafe extern "C" fn pe_profile_declare_dislike(
    profile: *mut pe_profile,
    persona: *const c_char,
    persona_len: usize,
) -> pe_status {
    ffi_boundary!({
        // SAFETY: a live profile (or NULL) used by this thread alone, a readable string.
        let (handle, persona) =
            unsafe { (box_mut(profile, "profile")?, arg_str(persona, persona_len, "persona")?) };
        let menu = handle.selector.catalog().menu();
        handle.profile.declare_dislike(menu, persona)?;
        Ok(())
    })
}
