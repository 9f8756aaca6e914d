//! `pe_persona_model`: a trained persona model (the JSON `train_personas` writes, or any
//! persona model spec) loaded for one selector's persona menu, and the call that turns a
//! profile's consented signals into its persona scores. Off the request path: score when
//! a profile's signals change, then select as often as needed.

use std::ffi::c_char;
use std::sync::Arc;

use super::boundary::{arg_str, Out};
use super::handles::SelectorHandle;
use super::handles::{
    arc_clone, box_free, box_into_ptr, box_mut, box_ref, pe_persona_model, pe_profile, pe_selector,
};
use super::status::pe_status;
use crate::model::PersonaModel;

/// A persona model and the selector whose persona menu its ids refer to.
#[derive(Debug)]
pub(crate) struct ModelHandle {
    pub(crate) selector: Arc<SelectorHandle>,
    pub(crate) model: PersonaModel,
}

/// Loads a persona model from JSON (`json_len` bytes of UTF-8: `half_life_days` and, per
/// persona, `bias`, `weights` and optionally the decile edges `deciles`) for
/// `selector`'s persona menu. The model keeps its own reference to the selector, so the
/// selector may be freed first.
///
/// On success writes the model to `*out_model`; the caller owns it and frees it with
/// `pe_persona_model_free`. The model is immutable: `pe_persona_model_apply` may use it
/// from many threads at once. Thread-safe for the selector.
///
/// Errors: `PE_STATUS_NULL_PARAMETER`, `PE_STATUS_INVALID_UTF8`,
/// `PE_STATUS_INVALID_JSON` (syntax or shape), `PE_STATUS_INVALID_SPEC` (a persona not
/// on the menu, more than `MAX_PERSONAS` personas, a weight or bias that is not finite
/// or larger than 1e12 in magnitude (`MAX_MODEL_WEIGHT`), decile
/// edges that are not 9 non-decreasing numbers: the message names the field), `PE_STATUS_INVALID_ARGUMENT` (larger than
/// 16 MiB).
#[no_mangle]
pub unsafe extern "C" fn pe_persona_model_new_from_json(
    selector: *const pe_selector,
    json: *const c_char,
    json_len: usize,
    out_model: *mut *mut pe_persona_model,
) -> pe_status {
    ffi_boundary!({
        // SAFETY: a live selector (or NULL), a readable string, a writable pointer slot.
        let (out, json, selector) = unsafe {
            (
                Out::new(out_model, "out_model")?,
                arg_str(json, json_len, "json")?,
                arc_clone(selector, "selector")?,
            )
        };
        let model = PersonaModel::from_json(selector.catalog().menu(), json)?;
        out.write(box_into_ptr(ModelHandle { selector, model }));
        Ok(())
    })
}

/// Frees a persona model (and its reference to its selector). NULL does nothing. The
/// pointer must not be used after this call, nor concurrently with it.
#[no_mangle]
pub unsafe extern "C" fn pe_persona_model_free(model: *mut pe_persona_model) {
    ffi_boundary!(default = (), {
        // SAFETY: the caller gives up a pointer from `pe_persona_model_new_from_json` (or
        // NULL) and does not use it again.
        unsafe { box_free(model) }
    })
}

/// Scores `profile` from its signals at `now` (Unix seconds): every persona the model
/// covers gets a new score 0..=9 (its decile in the population the model was trained
/// on, when the model has decile edges), computed from the signals whose data class the
/// person consented to, decayed with the model's half-life, and recorded as derived from
/// those classes. Scores of personas the model does not cover are kept. Allocates; keep
/// it off the request path (call it when the profile's signals change).
///
/// The model is only read (many threads may score with it at once); the profile is
/// changed, so one thread at a time.
///
/// Errors: `PE_STATUS_NULL_PARAMETER`, `PE_STATUS_INVALID_ARGUMENT` (the profile was made
/// for a selector with a different persona menu). Nothing changes on error.
#[no_mangle]
pub unsafe extern "C" fn pe_persona_model_apply(
    model: *const pe_persona_model,
    profile: *mut pe_profile,
    now: i64,
) -> pe_status {
    ffi_boundary!({
        // SAFETY: a live model (or NULL) that nobody frees during the call, and a live
        // profile (or NULL) used by this thread alone.
        let (handle, profile) = unsafe { (box_ref(model, "model")?, box_mut(profile, "profile")?) };
        profile.check_menu(&handle.selector)?;
        handle.model.apply(&mut profile.profile, now)?;
        Ok(())
    })
}
