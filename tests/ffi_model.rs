//! The persona model through the C ABI: load a (trained) model for a selector's menu,
//! score a profile from its signals, and get the same scores as the Rust API; every
//! error path comes back as a status with a message.

use std::ffi::{c_char, CStr};
use std::ptr::{null, null_mut};

use persona_engine::ffi::*;
use persona_engine::sample;
use persona_engine::{
    DataClass, DataClasses, PersonaModel, Profile, ProfileSpec, Selector, SelectorConfig, Signal,
};

const NOW: i64 = sample::NOW;

/// Two personas, one with decile edges (as training writes them), one without (an older,
/// hand-written model: scored by `floor(sigmoid · 10)`).
const MODEL: &str = r#"{
  "half_life_days": 30,
  "personas": {
    "Luxury Travel": {"bias": -1.0, "weights": {"viewed_5star": 1.0, "tp_affluent": 3.0},
                      "deciles": [-0.8, -0.6, -0.4, -0.2, 0.0, 0.2, 0.4, 0.6, 0.8]},
    "Foodie": {"bias": 0.0, "weights": {"viewed_recipes": 2.0}}
  }
}"#;

#[path = "common/capi.rs"]
mod capi;
use capi::{c, last_error, ok};

#[track_caller]
fn fails(status: pe_status, expected: pe_status, message: &str) {
    let got = last_error();
    assert_eq!(status, expected, "message: {got}");
    assert_eq!(got, message);
}

struct Handles {
    selector: *mut pe_selector,
    model: *mut pe_persona_model,
    profile: *mut pe_profile,
}

impl Drop for Handles {
    fn drop(&mut self) {
        unsafe {
            pe_profile_free(self.profile);
            pe_persona_model_free(self.model);
            pe_selector_free(self.selector);
        }
    }
}

fn selector(catalog: &str) -> *mut pe_selector {
    let (p, l) = c(catalog);
    let mut out = null_mut();
    ok(unsafe { pe_selector_new_from_json(p, l, null(), 0, &mut out) });
    out
}

fn model(selector: *const pe_selector, json: &str) -> Result<*mut pe_persona_model, pe_status> {
    let (p, l) = c(json);
    let mut out = null_mut();
    match unsafe { pe_persona_model_new_from_json(selector, p, l, &mut out) } {
        pe_status::Ok => Ok(out),
        e => {
            assert!(out.is_null(), "out-parameter written on error");
            Err(e)
        }
    }
}

fn add_signal(profile: *mut pe_profile, name: &str, value: f32, class: pe_data_class, at: i64) {
    let (p, l) = c(name);
    ok(unsafe { pe_profile_add_signal(profile, p, l, value, class as u32, at) });
}

fn to_spec(profile: *const pe_profile) -> ProfileSpec {
    let mut len = 0usize;
    let status = unsafe { pe_profile_to_json(profile, null_mut(), 0, &mut len) };
    assert_eq!(status, pe_status::BufferTooSmall);
    let mut buf = vec![0 as c_char; len + 1];
    ok(unsafe { pe_profile_to_json(profile, buf.as_mut_ptr(), buf.len(), &mut len) });
    let json = unsafe { CStr::from_ptr(buf.as_ptr()) }.to_str().unwrap();
    serde_json::from_str(json).unwrap()
}

fn score(spec: &ProfileSpec, persona: &str) -> (u8, DataClasses) {
    spec.persona_scores
        .iter()
        .find(|(n, _)| n == persona)
        .map_or((0, DataClasses::NONE), |(_, s)| (s.score, s.sources))
}

fn setup() -> Handles {
    let selector = selector(sample::CATALOG_JSON);
    let model = model(selector, MODEL).unwrap();
    let mut profile = null_mut();
    ok(unsafe { pe_profile_new(selector, NOW - 100 * 86_400, &mut profile) });
    Handles { selector, model, profile }
}

#[test]
fn a_model_scores_a_profile_from_its_consented_signals_as_the_rust_api_does() {
    let h = setup();
    add_signal(h.profile, "viewed_5star", 1.0, pe_data_class::Behavioral, NOW);
    add_signal(h.profile, "tp_affluent", 1.0, pe_data_class::ThirdParty, NOW);
    add_signal(h.profile, "viewed_recipes", 1.0, pe_data_class::Behavioral, NOW - 30 * 86_400);
    ok(unsafe { pe_profile_set_consent_mask(h.profile, 1 << pe_data_class::Behavioral as u32) });
    ok(unsafe { pe_persona_model_apply(h.model, h.profile, NOW) });
    let spec = to_spec(h.profile);
    // Luxury: -1 + 1 = 0 (third-party not consented) → at five edges → 5, behavioural only.
    assert_eq!(score(&spec, "Luxury Travel"), (5, DataClasses::only(DataClass::Behavioral)));
    // Foodie: 2 · 0.5 (one half-life old) = 1 → sigmoid 0.73 → 7, no edges.
    assert_eq!(score(&spec, "Foodie"), (7, DataClasses::only(DataClass::Behavioral)));

    // The same through the Rust API.
    let rust_selector = Selector::new(sample::catalog().unwrap(), SelectorConfig::default()).unwrap();
    let menu = rust_selector.catalog().menu();
    let rust_model = PersonaModel::from_json(menu, MODEL).unwrap();
    let mut p = Profile::new(menu.len(), NOW);
    p.consent = DataClasses::only(DataClass::Behavioral);
    for (name, class, at) in [
        ("viewed_5star", DataClass::Behavioral, NOW),
        ("tp_affluent", DataClass::ThirdParty, NOW),
        ("viewed_recipes", DataClass::Behavioral, NOW - 30 * 86_400),
    ] {
        p.add_signal(Signal { name: name.into(), value: 1.0, class, at }).unwrap();
    }
    let scores = rust_model.score(&p, NOW).unwrap();
    for persona in ["Luxury Travel", "Foodie"] {
        let id = menu.id(persona).unwrap();
        assert_eq!(score(&spec, persona), (scores.get(id), scores.sources(id)), "{persona}");
    }

    // With third-party consent the same signal counts: 0 + 3 = 3 → above every edge.
    ok(unsafe { pe_profile_set_consent(h.profile, pe_data_class::ThirdParty as u32, true) });
    ok(unsafe { pe_persona_model_apply(h.model, h.profile, NOW) });
    assert_eq!(score(&to_spec(h.profile), "Luxury Travel").0, 9);
}

#[test]
fn scores_the_model_does_not_cover_are_kept() {
    let h = setup();
    let (p, l) = c("Beach Lover");
    ok(unsafe { pe_profile_set_score(h.profile, p, l, 8, 0) });
    ok(unsafe { pe_persona_model_apply(h.model, h.profile, NOW) });
    assert_eq!(score(&to_spec(h.profile), "Beach Lover").0, 8);
}

#[test]
fn the_selector_may_be_freed_before_the_model() {
    let selector = selector(sample::CATALOG_JSON);
    let model = model(selector, MODEL).unwrap();
    let mut profile = null_mut();
    ok(unsafe { pe_profile_new(selector, NOW, &mut profile) });
    unsafe { pe_selector_free(selector) };
    ok(unsafe { pe_persona_model_apply(model, profile, NOW) });
    unsafe {
        pe_persona_model_free(model);
        pe_profile_free(profile);
        pe_persona_model_free(null_mut());
    }
}

#[test]
fn bad_models_and_arguments_are_refused_with_a_message() {
    let h = setup();
    let (p, l) = c(MODEL);
    let mut out = null_mut();
    fails(
        unsafe { pe_persona_model_new_from_json(null(), p, l, &mut out) },
        pe_status::NullParameter,
        "parameter 'selector' is NULL",
    );
    fails(
        unsafe { pe_persona_model_new_from_json(h.selector, p, l, null_mut()) },
        pe_status::NullParameter,
        "parameter 'out_model' is NULL",
    );
    let bad = [0xffu8, 0xfe];
    let status = unsafe { pe_persona_model_new_from_json(h.selector, bad.as_ptr().cast(), 2, &mut out) };
    assert_eq!(status, pe_status::InvalidUtf8, "{}", last_error());
    assert_eq!(model(h.selector, "{").unwrap_err(), pe_status::InvalidJson);
    assert!(last_error().starts_with("persona model: invalid JSON"), "{}", last_error());
    assert_eq!(
        model(h.selector, r#"{"personas": {"Luxury Travle": {"weights": {}}}}"#).unwrap_err(),
        pe_status::InvalidSpec
    );
    assert_eq!(
        last_error(),
        "persona model: field 'personas.Luxury Travle': unknown persona 'Luxury Travle' (did you mean 'Luxury Travel'?)"
    );
    assert_eq!(
        model(
            h.selector,
            r#"{"personas": {"Foodie": {"weights": {}, "deciles": [3, 2, 1, 0, 0, 0, 0, 0, 0]}}}"#
        )
        .unwrap_err(),
        pe_status::InvalidSpec
    );
    assert_eq!(
        last_error(),
        "persona model: field 'personas.Foodie.deciles[1]': 2 is below the edge before it (3): edges must not decrease"
    );
    fails(
        unsafe { pe_persona_model_apply(null(), h.profile, NOW) },
        pe_status::NullParameter,
        "parameter 'model' is NULL",
    );
    fails(
        unsafe { pe_persona_model_apply(h.model, null_mut(), NOW) },
        pe_status::NullParameter,
        "parameter 'profile' is NULL",
    );

    // A profile made for another menu is refused, and left unchanged.
    let other = selector(
        r#"{"version": "x", "personas": ["Luxury Travel"], "placements": ["p"],
        "creatives": [{"id": "c", "placements": ["p"], "personas": {"Luxury Travel": 1}}]}"#,
    );
    let mut foreign = null_mut();
    ok(unsafe { pe_profile_new(other, NOW, &mut foreign) });
    let status = unsafe { pe_persona_model_apply(h.model, foreign, NOW) };
    assert_eq!(status, pe_status::InvalidArgument);
    assert!(last_error().starts_with("profile: it was made for a selector with a different persona menu"));
    unsafe {
        pe_profile_free(foreign);
        pe_selector_free(other);
    }
}
