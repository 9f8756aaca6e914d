//! `pe_engine` through the C ABI: threads select and record through the current version
//! while another publishes, and every record is counted once; a record through an older
//! version lands in the current one; an engine's version refuses the selector's own
//! statistics calls; every status the header lists for the engine functions comes back
//! with its message. Also the one buffer rule, checked for every function that hands
//! back a string.

use std::ffi::{c_char, CStr};
use std::ptr::{null, null_mut};
use std::sync::atomic::{AtomicU64, Ordering};

use persona_engine::ffi::*;
use persona_engine::{sample, StatsSnapshot};

const NOW: i64 = sample::NOW;

#[path = "common/capi.rs"]
mod capi;
use capi::{c, last_error, ok};

#[track_caller]
fn fails(status: pe_status, expected: pe_status, message: &str) {
    let got = last_error();
    assert_eq!(status, expected, "message: {got}");
    assert!(got.starts_with(message), "{got:?} does not start with {message:?}");
}

/// The raw pointers are only used under the C ABI's thread-safety rules (`const`
/// engine and selectors shared; each profile and selection on one thread).
struct Shared<T>(*mut T);
impl<T> Clone for Shared<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Shared<T> {}
unsafe impl<T> Send for Shared<T> {}
unsafe impl<T> Sync for Shared<T> {}

fn engine() -> *mut pe_engine {
    let (p, l) = c(sample::CATALOG_JSON);
    let mut engine = null_mut();
    ok(unsafe { pe_engine_new_from_json(p, l, null(), 0, &mut engine) });
    engine
}

fn current(engine: *const pe_engine) -> *mut pe_selector {
    let mut selector = null_mut();
    ok(unsafe { pe_engine_current(engine, &mut selector) });
    selector
}

fn generation(engine: *const pe_engine) -> u64 {
    let mut g = 0;
    ok(unsafe { pe_engine_generation(engine, &mut g) });
    g
}

fn context() -> pe_context {
    pe_context {
        at: NOW,
        utc_offset_minutes: 0,
        device: pe_device::Mobile as u32,
        channel: 0,
        weather: 0,
        seed: 0,
        region: null(),
        region_len: 0,
        attributes: null(),
        attribute_count: 0,
    }
}

fn profile(selector: *const pe_selector) -> *mut pe_profile {
    let mut profile = null_mut();
    ok(unsafe { pe_profile_new(selector, NOW - 400 * 86_400, &mut profile) });
    ok(unsafe { pe_profile_set_consent_mask(profile, PE_DATA_CLASSES_ALL) });
    let (p, l) = c("Luxury Travel");
    ok(unsafe { pe_profile_set_score(profile, p, l, 9, 1) });
    profile
}

fn impressions(engine: *const pe_engine) -> u64 {
    let json = read_string(|buf, cap, len| unsafe { pe_engine_stats_save(engine, buf, cap, len) });
    let snapshot = StatsSnapshot::from_json(&json).unwrap();
    snapshot.creatives.iter().map(|(_, s)| s.overall.impressions).sum()
}

/// A string by the buffer rule: a length query, then a buffer of `len + 1` bytes.
fn read_string(mut call: impl FnMut(*mut c_char, usize, *mut usize) -> pe_status) -> String {
    let mut len = 0usize;
    assert_eq!(call(null_mut(), 0, &mut len), pe_status::BufferTooSmall);
    let mut buf = vec![0 as c_char; len + 1];
    let mut again = 0usize;
    ok(call(buf.as_mut_ptr(), buf.len(), &mut again));
    assert_eq!(again, len);
    unsafe { CStr::from_ptr(buf.as_ptr()) }.to_str().unwrap().to_owned()
}

#[test]
fn threads_select_and_record_while_another_publishes_and_every_record_counts_once() {
    let engine = Shared(engine());
    let recorded = AtomicU64::new(0);
    let (json, json_len) = c(sample::CATALOG_JSON);
    std::thread::scope(|scope| {
        for _ in 0..3 {
            let recorded = &recorded;
            scope.spawn(move || {
                let engine = engine;
                let first = current(engine.0);
                let person = profile(first);
                let mut selection = null_mut();
                ok(unsafe { pe_selection_new(first, 3, &mut selection) });
                unsafe { pe_selector_free(first) };
                let moment = context();
                let (place, place_len) = c("sidebar");
                for _ in 0..200 {
                    let mut version = null_mut();
                    ok(unsafe {
                        pe_engine_select(engine.0, person, &moment, place, place_len, selection, &mut version)
                    });
                    let mut creative = 0u32;
                    ok(unsafe { pe_selection_creative(selection, 0, &mut creative) });
                    ok(unsafe {
                        pe_record(
                            version,
                            person,
                            &moment,
                            creative,
                            pe_feedback_kind::Impression as u32,
                            0.0,
                        )
                    });
                    recorded.fetch_add(1, Ordering::Relaxed);
                    unsafe { pe_selector_free(version) };
                }
                unsafe {
                    pe_selection_free(selection);
                    pe_profile_free(person);
                }
            });
        }
        for expected in 2..=6 {
            let mut g = 0;
            ok(unsafe { pe_engine_publish_json(engine.0, json, json_len, null(), 0, &mut g) });
            assert_eq!(g, expected);
        }
    });
    assert_eq!(generation(engine.0), 6);
    assert_eq!(recorded.load(Ordering::Relaxed), 600);
    assert_eq!(impressions(engine.0), 600, "every record through the engine is counted once");
    unsafe { pe_engine_free(engine.0) };
}

#[test]
fn a_record_through_a_replaced_version_counts_in_the_current_one() {
    let engine = engine();
    let old = current(engine);
    let person = profile(old);
    let (id, id_len) = c("lux-maldives-overwater-villa");
    let mut creative = 0;
    ok(unsafe { pe_selector_creative(old, id, id_len, &mut creative) });
    let (json, json_len) = c(sample::CATALOG_JSON);
    let mut g = 0;
    // Before any publish: the first generation and nothing carried.
    let mut report = pe_swap_report::default();
    ok(unsafe { pe_engine_last_publish(engine, &mut report) });
    assert_eq!(report, pe_swap_report { generation: 1, ..pe_swap_report::default() });
    let moment = context();
    ok(unsafe { pe_record(old, person, &moment, creative, pe_feedback_kind::Impression as u32, 0.0) });
    ok(unsafe { pe_engine_publish_json(engine, json, json_len, null(), 0, &mut g) });
    assert_eq!(g, 2);
    // What the publish did with the statistics reaches C: the creative's impression was
    // carried over, nothing dropped.
    ok(unsafe { pe_engine_last_publish(engine, &mut report) });
    assert_eq!((report.generation, report.carried, report.dropped), (2, 1, 0), "{report:?}");
    assert_eq!(unsafe { pe_engine_last_publish(engine, null_mut()) }, pe_status::NullParameter);
    assert_eq!(impressions(engine), 1);
    ok(unsafe { pe_record(old, person, &moment, creative, pe_feedback_kind::Impression as u32, 0.0) });
    assert_eq!(impressions(engine), 2);
    // Late events by id go to the current version too.
    ok(unsafe {
        pe_engine_record_id(engine, person, &moment, id, id_len, pe_feedback_kind::Impression as u32, 0.0)
    });
    assert_eq!(impressions(engine), 3);
    // The version handed out keeps working after the engine is freed.
    unsafe { pe_engine_free(engine) };
    let mut placement = 0;
    let (p, l) = c("home_hero");
    ok(unsafe { pe_selector_placement(old, p, l, &mut placement) });
    unsafe {
        pe_profile_free(person);
        pe_selector_free(old);
    }
}

#[test]
fn an_engine_version_refuses_the_selector_statistics_calls() {
    let engine = engine();
    let version = current(engine);
    let mut len = 0;
    fails(
        unsafe { pe_selector_stats_save(version, null_mut(), 0, &mut len) },
        pe_status::InvalidArgument,
        "pe_selector_stats_save: this selector is a version of a pe_engine, whose statistics belong to the \
         engine: use pe_engine_stats_save",
    );
    let (p, l) = c("{}");
    fails(
        unsafe { pe_selector_stats_load(version, p, l, &mut pe_stats_report::default()) },
        pe_status::InvalidArgument,
        "pe_selector_stats_load:",
    );
    fails(
        unsafe { pe_selector_stats_merge(version, p, l, &mut pe_stats_report::default()) },
        pe_status::InvalidArgument,
        "pe_selector_stats_merge:",
    );
    let mut blob = null_mut();
    fails(
        unsafe { pe_selector_stats_export_delta(version, &mut blob) },
        pe_status::InvalidArgument,
        "pe_selector_stats_export_delta: ",
    );
    assert!(blob.is_null());
    unsafe {
        pe_selector_free(version);
        pe_engine_free(engine);
    }
}

#[test]
fn engine_statistics_export_merge_load_round_trip() {
    let a = engine();
    let version = current(a);
    let person = profile(version);
    let moment = context();
    let (id, id_len) = c("lux-maldives-overwater-villa");
    for kind in [pe_feedback_kind::Impression, pe_feedback_kind::Click] {
        ok(unsafe { pe_engine_record_id(a, person, &moment, id, id_len, kind as u32, 0.0) });
    }
    let mut blob = null_mut();
    ok(unsafe { pe_engine_stats_export_delta(a, &mut blob) });
    let delta = read_string(|buf, cap, len| unsafe { pe_stats_blob_json(blob, buf, cap, len) });
    let b = engine();
    let (p, l) = c(&delta);
    ok(unsafe { pe_engine_stats_merge(b, p, l) });
    assert_eq!(impressions(b), 1);
    let saved = read_string(|buf, cap, len| unsafe { pe_engine_stats_save(a, buf, cap, len) });
    let c_engine = engine();
    let (p, l) = c(&saved);
    ok(unsafe { pe_engine_stats_load(c_engine, p, l) });
    assert_eq!(impressions(c_engine), 1);
    // A delta is not a full snapshot: load refuses it and changes nothing.
    let (p, l) = c(&delta);
    fails(unsafe { pe_engine_stats_load(b, p, l) }, pe_status::InvalidSpec, "stats snapshot");
    assert_eq!(impressions(b), 1);
    unsafe {
        pe_stats_blob_free(blob);
        pe_profile_free(person);
        pe_selector_free(version);
        pe_engine_free(a);
        pe_engine_free(b);
        pe_engine_free(c_engine);
    }
}

/// Each status the header lists for the engine functions, with its message.
#[test]
fn engine_functions_return_the_statuses_their_header_lists() {
    let mut out = null_mut();
    let (json, json_len) = c(sample::CATALOG_JSON);
    fails(
        unsafe { pe_engine_new_from_json(null(), 0, null(), 0, &mut out) },
        pe_status::NullParameter,
        "parameter 'json' is NULL",
    );
    fails(
        unsafe { pe_engine_new_from_json(json, json_len, null(), 0, null_mut()) },
        pe_status::NullParameter,
        "parameter 'out_engine' is NULL",
    );
    let bad = [0xffu8, 0xfe];
    fails(
        unsafe { pe_engine_new_from_json(bad.as_ptr().cast(), 2, null(), 0, &mut out) },
        pe_status::InvalidUtf8,
        "parameter 'json' is not valid UTF-8",
    );
    let (p, l) = c("{\"version\": ");
    fails(
        unsafe { pe_engine_new_from_json(p, l, null(), 0, &mut out) },
        pe_status::InvalidJson,
        "catalog spec: invalid JSON: EOF while parsing",
    );
    let (cfg, cfg_len) = c("{\"threshold\": 12}");
    fails(
        unsafe { pe_engine_new_from_json(json, json_len, cfg, cfg_len, &mut out) },
        pe_status::InvalidSpec,
        "selector config: field 'threshold'",
    );
    let (path, path_len) = c("/nonexistent/catalog.json");
    fails(
        unsafe { pe_engine_new_from_file(path, path_len, null(), 0, &mut out) },
        pe_status::Io,
        "/nonexistent/catalog.json",
    );
    assert!(out.is_null());

    let engine = engine();
    let mut g = 0;
    fails(
        unsafe { pe_engine_publish_json(engine, p, l, null(), 0, &mut g) },
        pe_status::InvalidJson,
        "catalog spec: invalid JSON",
    );
    fails(
        unsafe { pe_engine_publish_file(engine, path, path_len, null(), 0, &mut g) },
        pe_status::Io,
        "/nonexistent/catalog.json",
    );
    fails(
        unsafe { pe_engine_publish_json(null(), json, json_len, null(), 0, &mut g) },
        pe_status::NullParameter,
        "parameter 'engine' is NULL",
    );
    fails(
        unsafe { pe_engine_publish_json(engine, json, json_len, null(), 0, null_mut()) },
        pe_status::NullParameter,
        "parameter 'out_generation' is NULL",
    );
    assert_eq!(generation(engine), 1, "nothing was published");
    fails(
        unsafe { pe_engine_generation(engine, null_mut()) },
        pe_status::NullParameter,
        "parameter 'out_generation' is NULL",
    );
    fails(
        unsafe { pe_engine_current(null(), &mut null_mut()) },
        pe_status::NullParameter,
        "parameter 'engine' is NULL",
    );

    let version = current(engine);
    let person = profile(version);
    let mut selection = null_mut();
    ok(unsafe { pe_selection_new(version, 3, &mut selection) });
    let mut moment = context();
    let mut made = null_mut();
    let (place, place_len) = c("home_heroo");
    fails(
        unsafe { pe_engine_select(engine, person, &moment, place, place_len, selection, &mut made) },
        pe_status::UnknownName,
        "unknown placement 'home_heroo'",
    );
    fails(
        unsafe { pe_engine_select(engine, person, &moment, bad.as_ptr().cast(), 2, selection, &mut made) },
        pe_status::InvalidUtf8,
        "parameter 'placement' is not valid UTF-8",
    );
    moment.device = 42;
    let (hero, hero_len) = c("home_hero");
    fails(
        unsafe { pe_engine_select(engine, person, &moment, hero, hero_len, selection, &mut made) },
        pe_status::InvalidArgument,
        "context.device: 42 is not a pe_device value",
    );
    moment.device = 0;
    fails(
        unsafe { pe_engine_select(engine, person, &moment, hero, hero_len, selection, null_mut()) },
        pe_status::NullParameter,
        "parameter 'out_selector' is NULL",
    );
    assert!(made.is_null());
    ok(unsafe { pe_engine_select(engine, person, &moment, hero, hero_len, selection, &mut made) });
    assert!(!made.is_null());

    let (id, id_len) = c("lux-nowhere");
    fails(
        unsafe { pe_engine_record_id(engine, person, &moment, id, id_len, 0, 0.0) },
        pe_status::UnknownName,
        "unknown creative 'lux-nowhere'",
    );
    let (id, id_len) = c("lux-maldives-overwater-villa");
    fails(
        unsafe { pe_engine_record_id(engine, person, &moment, id, id_len, 9, 0.0) },
        pe_status::InvalidArgument,
        "kind: 9 is not a pe_feedback_kind value (0..=5)",
    );
    fails(
        unsafe {
            pe_engine_record_id(
                engine,
                person,
                &moment,
                id,
                id_len,
                pe_feedback_kind::Conversion as u32,
                -1.0,
            )
        },
        pe_status::InvalidArgument,
        "",
    );
    assert_eq!(impressions(engine), 0, "no failed record counted");
    let (junk, junk_len) = c("{\"format\": ");
    fails(
        unsafe { pe_engine_stats_merge(engine, junk, junk_len) },
        pe_status::InvalidJson,
        "stats snapshot: invalid JSON",
    );
    fails(
        unsafe { pe_engine_stats_load(engine, null(), 0) },
        pe_status::NullParameter,
        "parameter 'json' is NULL",
    );
    let mut len = 0;
    fails(
        unsafe { pe_engine_stats_save(engine, null_mut(), 1, &mut len) },
        pe_status::NullParameter,
        "parameter 'buf' is NULL",
    );
    fails(
        unsafe { pe_engine_stats_export_delta(engine, null_mut()) },
        pe_status::NullParameter,
        "parameter 'out_blob' is NULL",
    );
    unsafe {
        pe_selector_free(made);
        pe_selection_free(selection);
        pe_profile_free(person);
        pe_selector_free(version);
        pe_engine_free(engine);
        pe_engine_free(null_mut());
    }
}

/// The one buffer rule, for every function that hands back a string: `*out_len` always
/// gets the full length; a buffer too small by any amount gives
/// `PE_STATUS_BUFFER_TOO_SMALL` and, when `cap > 0`, holds the longest prefix that fits
/// (at a character boundary) with a NUL; `len + 1` bytes fit.
#[test]
fn every_string_function_follows_the_buffer_rule() {
    let engine = engine();
    let selector = current(engine);
    let person = profile(selector);
    let mut selection = null_mut();
    ok(unsafe { pe_selection_new(selector, 3, &mut selection) });
    let moment = context();
    let mut hero = 0;
    let (p, l) = c("home_hero");
    ok(unsafe { pe_selector_placement(selector, p, l, &mut hero) });
    ok(unsafe { pe_select(selector, person, &moment, hero, selection) });
    let mut creative = 0;
    ok(unsafe { pe_selection_creative(selection, 0, &mut creative) });
    let (id, id_len) = c("lux-maldives-overwater-villa");
    ok(unsafe { pe_engine_record_id(engine, person, &moment, id, id_len, 0, 0.0) });
    let mut blob = null_mut();
    ok(unsafe { pe_engine_stats_export_delta(engine, &mut blob) });
    let (own_json, own_len) = c(sample::CATALOG_JSON);
    let mut own = null_mut();
    ok(unsafe { pe_selector_new_from_json(own_json, own_len, null(), 0, &mut own) });

    type Call<'a> = Box<dyn FnMut(*mut c_char, usize, *mut usize) -> pe_status + 'a>;
    let calls: Vec<(&str, Call)> = vec![
        (
            "pe_selector_creative_id",
            Box::new(|b, n, o| unsafe { pe_selector_creative_id(selector, creative, b, n, o) }),
        ),
        (
            "pe_selector_creative_payload",
            Box::new(|b, n, o| unsafe { pe_selector_creative_payload(selector, creative, b, n, o) }),
        ),
        (
            "pe_selector_persona_name",
            Box::new(|b, n, o| unsafe { pe_selector_persona_name(selector, 0, b, n, o) }),
        ),
        (
            "pe_selector_explain",
            Box::new(|b, n, o| unsafe { pe_selector_explain(selector, selection, 0, b, n, o) }),
        ),
        ("pe_selector_stats_save", Box::new(|b, n, o| unsafe { pe_selector_stats_save(own, b, n, o) })),
        ("pe_profile_to_json", Box::new(|b, n, o| unsafe { pe_profile_to_json(person, b, n, o) })),
        ("pe_stats_blob_json", Box::new(|b, n, o| unsafe { pe_stats_blob_json(blob, b, n, o) })),
        ("pe_engine_stats_save", Box::new(|b, n, o| unsafe { pe_engine_stats_save(engine, b, n, o) })),
    ];
    for (name, mut call) in calls {
        let full = read_string(&mut call);
        assert!(full.len() >= 3, "{name}: {full:?}");
        for cap in [1, 2, full.len() / 2, full.len()] {
            let mut buf = vec![0x55 as c_char; cap];
            let mut len = 0usize;
            assert_eq!(call(buf.as_mut_ptr(), cap, &mut len), pe_status::BufferTooSmall, "{name} cap {cap}");
            assert_eq!(len, full.len(), "{name}: *out_len is the full length");
            let got = unsafe { CStr::from_ptr(buf.as_ptr()) }.to_str().unwrap();
            assert!(
                full.starts_with(got) && got.len() < cap && got.len() + 4 > cap - 1,
                "{name} cap {cap}: {got:?}"
            );
        }
        if name == "pe_selector_creative_id" {
            // The message of a too-small buffer names what did not fit.
            let mut b = [0 as c_char; 4];
            let mut len = 0;
            fails(call(b.as_mut_ptr(), 4, &mut len), pe_status::BufferTooSmall, "the creative id is ");
        }
    }
    // The last-error message follows the same rule.
    let (p, l) = c("nowhere-at-all");
    assert_eq!(unsafe { pe_selector_placement(selector, p, l, &mut hero) }, pe_status::UnknownName);
    let mut len = 0usize;
    let mut buf = [0x55 as c_char; 8];
    assert_eq!(unsafe { pe_last_error_message(buf.as_mut_ptr(), 8, &mut len) }, pe_status::BufferTooSmall);
    assert!(len > 8);
    assert_eq!(unsafe { CStr::from_ptr(buf.as_ptr()) }.to_str().unwrap(), "unknown");
    unsafe {
        pe_selector_free(own);
        pe_stats_blob_free(blob);
        pe_selection_free(selection);
        pe_profile_free(person);
        pe_selector_free(selector);
        pe_engine_free(engine);
    }
}

/// A score above 9 inside a profile document is a document that failed validation
/// (`PE_STATUS_INVALID_SPEC`, as the header says); the same score passed as an argument
/// to `pe_profile_set_score` is `PE_STATUS_INVALID_ARGUMENT`.
#[test]
fn a_score_above_9_is_a_spec_error_in_a_document_and_an_argument_error_in_a_call() {
    let engine = engine();
    let selector = current(engine);
    let mut out = null_mut();
    let (p, l) = c(r#"{"persona_scores": {"Luxury Travel": 12}}"#);
    fails(
        unsafe { pe_profile_new_from_json(selector, p, l, &mut out) },
        pe_status::InvalidSpec,
        "persona 'Luxury Travel': score 12 is out of range (scores are 0..=9)",
    );
    let (p, l) = c(r#"{"persona_scores": {"Luxury Travle": 5}}"#);
    fails(
        unsafe { pe_profile_new_from_json(selector, p, l, &mut out) },
        pe_status::InvalidSpec,
        "profile: field 'persona_scores': unknown persona 'Luxury Travle'",
    );
    assert!(out.is_null());
    let person = profile(selector);
    let (p, l) = c("Luxury Travel");
    fails(
        unsafe { pe_profile_set_score(person, p, l, 12, 1) },
        pe_status::InvalidArgument,
        "persona 'Luxury Travel': score 12 is out of range",
    );
    unsafe {
        pe_profile_free(person);
        pe_selector_free(selector);
        pe_engine_free(engine);
    }
}
