//! The C ABI, called from Rust exactly as C calls it: it gives the same picks as the Rust
//! API, and every error path (NULL, invalid UTF-8, a small buffer, unknown names, bad
//! JSON, out-of-range values, a panic) comes back as a status with a message, never a
//! crash.

use std::ffi::{c_char, CStr};
use std::ptr::{null, null_mut};

use persona_engine::ffi::*;
use persona_engine::sample;
use persona_engine::{Profile, Selector, SelectorConfig};

const PLACEMENTS: [&str; 4] = ["home_hero", "sidebar", "app_banner", "email_block"];

fn c(s: &str) -> (*const c_char, usize) {
    (s.as_ptr().cast(), s.len())
}

fn last_error() -> String {
    let mut buf = [0 as c_char; 4096];
    let mut len = 0usize;
    let status = unsafe { pe_last_error_message(buf.as_mut_ptr(), buf.len(), &mut len) };
    assert_eq!(status, pe_status::Ok);
    let text = unsafe { CStr::from_ptr(buf.as_ptr()) }.to_str().unwrap();
    assert_eq!(text.len(), len);
    text.to_owned()
}

/// Asserts that a call failed with `expected` and a message containing `needle`.
#[track_caller]
fn fails(status: pe_status, expected: pe_status, needle: &str) {
    let message = last_error();
    assert_eq!(status, expected, "message: {message}");
    assert!(message.contains(needle), "message {message:?} does not contain {needle:?}");
}

#[track_caller]
fn ok(status: pe_status) {
    assert_eq!(status, pe_status::Ok, "{}", last_error());
}

struct Sel(*mut pe_selector);
impl Drop for Sel {
    fn drop(&mut self) {
        unsafe { pe_selector_free(self.0) }
    }
}

struct Prof(*mut pe_profile);
impl Drop for Prof {
    fn drop(&mut self) {
        unsafe { pe_profile_free(self.0) }
    }
}

struct Picks(*mut pe_selection);
impl Drop for Picks {
    fn drop(&mut self) {
        unsafe { pe_selection_free(self.0) }
    }
}

fn selector_from_json(json: &str, config: Option<&str>) -> Result<Sel, pe_status> {
    let (p, l) = c(json);
    let (cp, cl) = config.map_or((null(), 0), c);
    let mut out = null_mut();
    match unsafe { pe_selector_new_from_json(p, l, cp, cl, &mut out) } {
        pe_status::Ok => Ok(Sel(out)),
        e => {
            assert!(out.is_null(), "out-parameter written on error");
            Err(e)
        }
    }
}

fn selector() -> Sel {
    selector_from_json(sample::CATALOG_JSON, None).unwrap()
}

fn placement(sel: &Sel, name: &str) -> u16 {
    let (p, l) = c(name);
    let mut id = u16::MAX;
    ok(unsafe { pe_selector_placement(sel.0, p, l, &mut id) });
    id
}

fn profile_from_json(sel: &Sel, json: &str) -> Result<Prof, pe_status> {
    let (p, l) = c(json);
    let mut out = null_mut();
    match unsafe { pe_profile_new_from_json(sel.0, p, l, &mut out) } {
        pe_status::Ok => Ok(Prof(out)),
        e => Err(e),
    }
}

fn new_profile(sel: &Sel, now: i64) -> Prof {
    let mut out = null_mut();
    ok(unsafe { pe_profile_new(sel.0, now, &mut out) });
    Prof(out)
}

fn selection(sel: &Sel, k: usize) -> Picks {
    let mut out = null_mut();
    ok(unsafe { pe_selection_new(sel.0, k, &mut out) });
    Picks(out)
}

fn context(at: i64) -> pe_context {
    pe_context {
        at,
        utc_offset_minutes: 0,
        device: pe_device::Unknown as u32,
        channel: pe_channel::Unknown as u32,
        weather: pe_weather::Unknown as u32,
        seed: 0,
        region: null(),
        region_len: 0,
        attributes: null(),
        attribute_count: 0,
    }
}

fn creative_id(sel: &Sel, creative: u32) -> String {
    let mut buf = [0 as c_char; 300];
    let mut len = 0;
    ok(unsafe { pe_selector_creative_id(sel.0, creative, buf.as_mut_ptr(), buf.len(), &mut len) });
    unsafe { CStr::from_ptr(buf.as_ptr()) }.to_str().unwrap().to_owned()
}

fn count(picks: &Picks) -> usize {
    let mut n = usize::MAX;
    ok(unsafe { pe_selection_count(picks.0, &mut n) });
    n
}

/// `(creative id, score, reason kind)` of every pick.
fn read_picks(sel: &Sel, picks: &Picks) -> Vec<(String, f32, u32)> {
    (0..count(picks))
        .map(|i| {
            let (mut creative, mut score, mut kind) = (0u32, 0f32, 0u32);
            unsafe {
                ok(pe_selection_creative(picks.0, i, &mut creative));
                ok(pe_selection_score(picks.0, i, &mut score));
                ok(pe_selection_reason_kind(picks.0, i, &mut kind));
            }
            (creative_id(sel, creative), score, kind)
        })
        .collect()
}

/// The sample people's moments, as C fills them (regions and attributes as strings).
fn sample_contexts(people: &[sample::Person]) -> Vec<pe_context> {
    const REGIONS: [&str; 5] = ["FR", "GB", "DE", "NL", "US"];
    // A static of static bytes: the pointers stay valid for the whole test, and nothing
    // is leaked (the FFI tests run clean under valgrind, see .ci/run).
    struct Tier([pe_attribute; 1]);
    // SAFETY: the pointers point to immutable static bytes.
    unsafe impl Sync for Tier {}
    static TIER: Tier = Tier([pe_attribute {
        key: b"loyalty_tier".as_ptr().cast(),
        key_len: 12,
        value: b"platinum".as_ptr().cast(),
        value_len: 8,
    }]);
    let tier = &TIER.0;
    people
        .iter()
        .zip(REGIONS)
        .enumerate()
        .map(|(i, (person, region))| {
            let x = &person.context;
            pe_context {
                at: x.at,
                utc_offset_minutes: x.utc_offset_minutes,
                device: x.device as u32,
                channel: x.channel as u32,
                weather: x.weather as u32,
                seed: x.seed.unwrap_or(0),
                region: region.as_ptr().cast(),
                region_len: region.len(),
                attributes: if i == 0 { tier.as_ptr() } else { null() },
                attribute_count: usize::from(i == 0),
            }
        })
        .collect()
}

fn to_json(profile: &Profile, sel: &Selector) -> String {
    profile.to_json(sel.catalog().menu()).unwrap()
}

// ---- the happy path, against the Rust API ------------------------------------------------

#[test]
fn the_c_abi_picks_exactly_what_the_rust_api_picks() {
    let rust = Selector::new(sample::catalog().unwrap(), SelectorConfig::default()).unwrap();
    let people = sample::people(rust.catalog().menu()).unwrap();
    let contexts = sample_contexts(&people);
    let sel = selector();
    let picks = selection(&sel, 3);
    let mut rust_picks = rust.new_selection(3);
    for (person, ctx) in people.iter().zip(&contexts) {
        let profile = profile_from_json(&sel, &to_json(&person.profile, &rust)).unwrap();
        for name in PLACEMENTS {
            ok(unsafe { pe_select(sel.0, profile.0, ctx, placement(&sel, name), picks.0) });
            rust.select(&person.profile, &person.context, rust.placement(name).unwrap(), &mut rust_picks)
                .unwrap();
            let expected: Vec<(String, f32, u32)> = rust_picks
                .picks()
                .iter()
                .map(|p| (rust.catalog().creative_id(p.creative).to_owned(), p.score, p.reason.kind as u32))
                .collect();
            assert!(!expected.is_empty());
            assert_eq!(read_picks(&sel, &picks), expected, "{} at {name}", person.name);
            // Explanations match too.
            for (i, p) in rust_picks.picks().iter().enumerate() {
                let mut buf = vec![0 as c_char; 512];
                let mut len = 0;
                ok(unsafe { pe_selector_explain(sel.0, picks.0, i, buf.as_mut_ptr(), buf.len(), &mut len) });
                let text = unsafe { CStr::from_ptr(buf.as_ptr()) }.to_str().unwrap();
                assert_eq!(text, rust.explain(p));
            }
        }
    }
}

#[test]
fn a_selector_loads_from_a_file_and_a_profile_is_built_with_setters() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/data/sample_catalog.json");
    let (p, l) = c(path);
    let mut raw = null_mut();
    ok(unsafe { pe_selector_new_from_file(p, l, null(), 0, &mut raw) });
    let sel = Sel(raw);
    let now = sample::NOW;
    let person = new_profile(&sel, now - 400 * 86_400);
    let behavioral = 1u32 << pe_data_class::Behavioral as u32;
    unsafe {
        ok(pe_profile_set_relationship(person.0, now - 400 * 86_400, 48));
        ok(pe_profile_set_consent_mask(person.0, PE_DATA_CLASSES_ALL));
        let (n, nl) = c("Luxury Travel");
        ok(pe_profile_set_score(person.0, n, nl, 9, behavioral));
        let (s, sl) = c("viewed_villa");
        ok(pe_profile_add_signal(person.0, s, sl, 1.0, pe_data_class::Behavioral as u32, now - 3600));
        ok(pe_profile_set_consent(person.0, pe_data_class::ThirdParty as u32, false));
    }
    let mut ctx = context(now);
    ctx.device = pe_device::Desktop as u32;
    ctx.channel = pe_channel::Web as u32;
    let picks = selection(&sel, 3);
    ok(unsafe { pe_select(sel.0, person.0, &ctx, placement(&sel, "home_hero"), picks.0) });
    let got = read_picks(&sel, &picks);
    assert!(got[0].0.starts_with("lux-"), "{got:?}");
    assert_eq!(got[0].2, pe_reason_kind::PersonaMatch as u32);
    let (mut persona, mut score) = (0u16, 0u8);
    ok(unsafe { pe_selection_reason_persona(picks.0, 0, &mut persona, &mut score) });
    assert_eq!(score, 9);
    let mut buf = [0 as c_char; 64];
    let mut len = 0;
    ok(unsafe { pe_selector_persona_name(sel.0, persona, buf.as_mut_ptr(), buf.len(), &mut len) });
    assert_eq!(unsafe { CStr::from_ptr(buf.as_ptr()) }.to_str().unwrap(), "Luxury Travel");
    let mut propensity = 0.0;
    ok(unsafe { pe_selection_propensity(picks.0, 0, &mut propensity) });
    assert_eq!(propensity, 1.0);

    // The saved profile says what the setters did, and loads back to the same picks.
    let mut json = vec![0 as c_char; 4096];
    ok(unsafe { pe_profile_to_json(person.0, json.as_mut_ptr(), json.len(), &mut len) });
    let text = unsafe { CStr::from_ptr(json.as_ptr()) }.to_str().unwrap().to_owned();
    assert_eq!(text.len(), len);
    let spec: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(spec["visits"], 48);
    assert_eq!(spec["persona_scores"]["Luxury Travel"]["score"], 9);
    assert_eq!(spec["signals"][0]["name"], "viewed_villa");
    assert_eq!(spec["consent"].as_array().unwrap().len(), 5);
    let again = profile_from_json(&sel, &text).unwrap();
    let picks2 = selection(&sel, 3);
    ok(unsafe { pe_select(sel.0, again.0, &ctx, placement(&sel, "home_hero"), picks2.0) });
    assert_eq!(read_picks(&sel, &picks2), got);
}

#[test]
fn declared_likes_and_dislikes_change_the_picks() {
    let sel = selector();
    let now = sample::NOW;
    let person = new_profile(&sel, now - 400 * 86_400);
    unsafe {
        ok(pe_profile_set_relationship(person.0, now - 400 * 86_400, 48));
        ok(pe_profile_set_consent_mask(person.0, PE_DATA_CLASSES_ALL));
        let (n, l) = c("Luxury Travel");
        ok(pe_profile_set_score(person.0, n, l, 9, PE_DATA_CLASSES_NONE));
    }
    let hero = placement(&sel, "home_hero");
    let picks = selection(&sel, 5);
    let ctx = context(now);
    ok(unsafe { pe_select(sel.0, person.0, &ctx, hero, picks.0) });
    assert!(read_picks(&sel, &picks)[0].0.starts_with("lux-"));

    let (n, l) = c("Luxury Travel");
    ok(unsafe { pe_profile_declare_dislike(person.0, n, l) });
    let (e, el) = c("Eco Conscious");
    ok(unsafe { pe_profile_declare_like(person.0, e, el) });
    ok(unsafe { pe_select(sel.0, person.0, &ctx, hero, picks.0) });
    let got = read_picks(&sel, &picks);
    assert!(got.iter().all(|(id, ..)| !id.starts_with("lux-")), "{got:?}");
    assert!(got[0].0.starts_with("eco-"), "{got:?}");
}

#[test]
fn exclusions_apply_until_cleared() {
    let sel = selector();
    let rust = Selector::new(sample::catalog().unwrap(), SelectorConfig::default()).unwrap();
    let people = sample::people(rust.catalog().menu()).unwrap();
    let ctx = sample_contexts(&people)[0];
    let person = profile_from_json(&sel, &to_json(&people[0].profile, &rust)).unwrap();
    let hero = placement(&sel, "home_hero");
    let picks = selection(&sel, 1);
    ok(unsafe { pe_select(sel.0, person.0, &ctx, hero, picks.0) });
    let first = read_picks(&sel, &picks)[0].0.clone();
    let (p, l) = c(&first);
    let mut index = 0u32;
    ok(unsafe { pe_selector_creative(sel.0, p, l, &mut index) });
    ok(unsafe { pe_selection_exclude(picks.0, index) });
    ok(unsafe { pe_select(sel.0, person.0, &ctx, hero, picks.0) });
    assert_ne!(read_picks(&sel, &picks)[0].0, first);
    ok(unsafe { pe_selection_clear_exclusions(picks.0) });
    ok(unsafe { pe_select(sel.0, person.0, &ctx, hero, picks.0) });
    assert_eq!(read_picks(&sel, &picks)[0].0, first);
}

#[test]
fn payloads_come_back_byte_for_byte() {
    let sel = selector();
    let spec: serde_json::Value = serde_json::from_str(sample::CATALOG_JSON).unwrap();
    let first = &spec["creatives"][0];
    let (p, l) = c(first["id"].as_str().unwrap());
    let mut index = u32::MAX;
    ok(unsafe { pe_selector_creative(sel.0, p, l, &mut index) });
    assert_eq!(index, 0);
    let mut len = 0;
    // Ask for the length first, then copy.
    fails(
        unsafe { pe_selector_creative_payload(sel.0, 0, null_mut(), 0, &mut len) },
        pe_status::BufferTooSmall,
        "the creative payload",
    );
    let mut buf = vec![0 as c_char; len + 1];
    ok(unsafe { pe_selector_creative_payload(sel.0, 0, buf.as_mut_ptr(), buf.len(), &mut len) });
    let text = unsafe { CStr::from_ptr(buf.as_ptr()) }.to_str().unwrap();
    let cat = sample::catalog().unwrap();
    assert_eq!(text, cat.payload(persona_engine::CreativeId(0)).unwrap());
    assert_eq!(serde_json::from_str::<serde_json::Value>(text).unwrap(), first["payload"]);
}

#[test]
fn a_profile_keeps_its_selector_alive() {
    let sel = selector();
    let person = new_profile(&sel, sample::NOW);
    let picks = selection(&sel, 2);
    let hero = placement(&sel, "home_hero");
    // A second selector over the same catalog: the same menu, so the profile works there.
    let other = selector();
    drop(sel);
    let (n, l) = c("Foodie");
    ok(unsafe { pe_profile_set_score(person.0, n, l, 8, PE_DATA_CLASSES_NONE) });
    let mut len = 0;
    fails(
        unsafe { pe_profile_to_json(person.0, null_mut(), 0, &mut len) },
        pe_status::BufferTooSmall,
        "the profile JSON",
    );
    let mut buf = vec![0 as c_char; len + 1];
    ok(unsafe { pe_profile_to_json(person.0, buf.as_mut_ptr(), buf.len(), &mut len) });
    assert!(unsafe { CStr::from_ptr(buf.as_ptr()) }.to_str().unwrap().contains("Foodie"));
    ok(unsafe { pe_select(other.0, person.0, &context(sample::NOW), hero, picks.0) });
    assert!(count(&picks) > 0);
}

#[test]
fn selecting_from_many_threads_with_one_selector_and_profile() {
    let sel = selector();
    let person = new_profile(&sel, sample::NOW);
    let hero = placement(&sel, "home_hero");
    let (s, p) = (sel.0 as usize, person.0 as usize);
    let results: Vec<Vec<u32>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(move || {
                    let mut out = null_mut();
                    ok(unsafe { pe_selection_new(s as *const pe_selector, 3, &mut out) });
                    let mut firsts = Vec::new();
                    for _ in 0..200 {
                        ok(unsafe {
                            pe_select(
                                s as *const pe_selector,
                                p as *const pe_profile,
                                &context(sample::NOW),
                                hero,
                                out,
                            )
                        });
                        let mut creative = 0;
                        ok(unsafe { pe_selection_creative(out, 0, &mut creative) });
                        firsts.push(creative);
                    }
                    unsafe { pe_selection_free(out) };
                    firsts
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(results.iter().flatten().all(|c| *c == results[0][0]));
}

// ---- errors ---------------------------------------------------------------------------

#[test]
fn version_and_status_names_are_static_strings() {
    let v = unsafe { CStr::from_ptr(pe_version()) }.to_str().unwrap();
    assert_eq!(v, env!("CARGO_PKG_VERSION"));
    let name = |s: u32| unsafe { CStr::from_ptr(pe_status_name(s)) }.to_str().unwrap().to_owned();
    assert_eq!(name(pe_status::Ok as u32), "PE_STATUS_OK");
    assert_eq!(name(pe_status::UnknownName as u32), "PE_STATUS_UNKNOWN_NAME");
    assert_eq!(name(pe_status::OutOfRange as u32), "PE_STATUS_OUT_OF_RANGE");
    assert_eq!(name(11), "PE_STATUS_UNRECOGNIZED");
    assert_eq!(name(u32::MAX), "PE_STATUS_UNRECOGNIZED");
}

/// Needs the test-only entry point: `cargo test --features ffi-testing --test ffi`.
#[cfg(feature = "ffi-testing")]
#[test]
fn a_forced_panic_comes_back_as_pe_status_panic() {
    assert_eq!(pe_test_force_panic(), pe_status::Panic);
    assert_eq!(last_error(), "internal panic: forced by pe_test_force_panic");
    // The library keeps working after it.
    let sel = selector();
    assert_eq!(placement(&sel, "sidebar"), 1);
}

#[test]
fn bad_catalog_json_gives_invalid_json_with_line_and_column() {
    let e = selector_from_json("{\"version\": ", None).err();
    fails(e.unwrap(), pe_status::InvalidJson, "line 1 column");
    let e = selector_from_json("{\"version\": \"x\", \"colour\": 1}", None).err();
    fails(e.unwrap(), pe_status::InvalidJson, "unknown field `colour`");
}

#[test]
fn an_invalid_catalog_gives_invalid_spec_naming_creative_and_field() {
    let json = r#"{"version": "v", "personas": ["Luxury"], "placements": ["hero"],
        "creatives": [{"id": "summer-hero", "placements": ["hero"],
                       "personas": {"Luxury Travle": 1.0}}]}"#;
    fails(
        selector_from_json(json, None).err().unwrap(),
        pe_status::InvalidSpec,
        "creative 'summer-hero': field 'personas': unknown persona 'Luxury Travle'",
    );
}

#[test]
fn selector_config_is_parsed_and_validated() {
    let sel = selector_from_json(sample::CATALOG_JSON, Some(r#"{"threshold": 5}"#));
    assert!(sel.is_ok());
    fails(
        selector_from_json(sample::CATALOG_JSON, Some("{\"threshold\": ")).err().unwrap(),
        pe_status::InvalidJson,
        "selector config: invalid JSON",
    );
    fails(
        selector_from_json(sample::CATALOG_JSON, Some(r#"{"treshold": 5}"#)).err().unwrap(),
        pe_status::InvalidJson,
        "unknown field `treshold`",
    );
    fails(
        selector_from_json(sample::CATALOG_JSON, Some(r#"{"threshold": 12}"#)).err().unwrap(),
        pe_status::InvalidSpec,
        "selector config: field 'threshold'",
    );
    // NULL with a length is an error; length 0 means "defaults" whatever the pointer.
    let (p, l) = c(sample::CATALOG_JSON);
    let mut out = null_mut();
    fails(
        unsafe { pe_selector_new_from_json(p, l, null(), 3, &mut out) },
        pe_status::NullParameter,
        "'config_json'",
    );
    ok(unsafe { pe_selector_new_from_json(p, l, b"ignored".as_ptr().cast(), 0, &mut out) });
    unsafe { pe_selector_free(out) };
}

#[test]
fn selector_constructors_reject_null_and_invalid_utf8() {
    let mut out = null_mut();
    fails(
        unsafe { pe_selector_new_from_json(null(), 10, null(), 0, &mut out) },
        pe_status::NullParameter,
        "parameter 'json' is NULL",
    );
    let (p, l) = c(sample::CATALOG_JSON);
    fails(
        unsafe { pe_selector_new_from_json(p, l, null(), 0, null_mut()) },
        pe_status::NullParameter,
        "'out_selector'",
    );
    let bad = b"{\"version\": \"\xff\"}";
    fails(
        unsafe { pe_selector_new_from_json(bad.as_ptr().cast(), bad.len(), null(), 0, &mut out) },
        pe_status::InvalidUtf8,
        "parameter 'json' is not valid UTF-8",
    );
    let bad_config = b"{\xc3}";
    fails(
        unsafe { pe_selector_new_from_json(p, l, bad_config.as_ptr().cast(), 3, &mut out) },
        pe_status::InvalidUtf8,
        "'config_json'",
    );
    fails(
        unsafe { pe_selector_new_from_file(null(), 4, null(), 0, &mut out) },
        pe_status::NullParameter,
        "'path'",
    );
    let bad_path = b"/tmp/\xff.json";
    fails(
        unsafe { pe_selector_new_from_file(bad_path.as_ptr().cast(), bad_path.len(), null(), 0, &mut out) },
        pe_status::InvalidUtf8,
        "'path'",
    );
    assert!(out.is_null());
}

#[test]
fn a_missing_file_gives_io_with_the_path() {
    let (p, l) = c("/nonexistent/catalog.json");
    let mut out = null_mut();
    fails(
        unsafe { pe_selector_new_from_file(p, l, null(), 0, &mut out) },
        pe_status::Io,
        "/nonexistent/catalog.json",
    );
    assert!(out.is_null());
}

#[test]
fn freeing_null_does_nothing() {
    unsafe {
        pe_selector_free(null_mut());
        pe_profile_free(null_mut());
        pe_selection_free(null_mut());
    }
}

#[test]
fn unknown_names_give_unknown_name() {
    let sel = selector();
    let mut id = 7u16;
    let (p, l) = c("home_heroo");
    fails(
        unsafe { pe_selector_placement(sel.0, p, l, &mut id) },
        pe_status::UnknownName,
        "unknown placement 'home_heroo'",
    );
    assert_eq!(id, 7, "out-parameter written on error");
    let mut creative = 7u32;
    fails(
        unsafe { pe_selector_creative(sel.0, p, l, &mut creative) },
        pe_status::UnknownName,
        "unknown creative 'home_heroo'",
    );
    assert_eq!(creative, 7);
    let person = new_profile(&sel, 0);
    let (n, nl) = c("Luxury Travle");
    unsafe {
        fails(
            pe_profile_set_score(person.0, n, nl, 9, 0),
            pe_status::UnknownName,
            "unknown persona 'Luxury Travle'",
        );
        fails(
            pe_profile_declare_like(person.0, n, nl),
            pe_status::UnknownName,
            "unknown persona 'Luxury Travle'",
        );
        fails(
            pe_profile_declare_dislike(person.0, n, nl),
            pe_status::UnknownName,
            "unknown persona 'Luxury Travle'",
        );
    }
}

/// The length of this thread's last error message, asked for with a zero-size buffer.
fn last_error_len() -> usize {
    let mut len = 0usize;
    let status = unsafe { pe_last_error_message(null_mut(), 0, &mut len) };
    assert!(matches!(status, pe_status::Ok | pe_status::BufferTooSmall));
    len
}

#[test]
fn a_huge_name_gives_a_short_message() {
    let sel = selector();
    let person = new_profile(&sel, 0);
    let huge = "L".repeat(1 << 20);
    let quoted = format!("'{}… (1048576 bytes)'", &huge[..persona_engine::limits::QUOTE_BYTES]);
    let (n, nl) = c(&huge);
    let mut placement = 0u16;
    let mut creative = 0u32;
    let json = format!(r#"{{"likes": ["{}"]}}"#, &huge[..(1 << 20) - 20]);
    let (j, jl) = c(&json);
    unsafe {
        for call in [
            &mut || pe_profile_set_score(person.0, n, nl, 9, 0),
            &mut || pe_profile_declare_like(person.0, n, nl),
            &mut || pe_profile_declare_dislike(person.0, n, nl),
            &mut || pe_selector_placement(sel.0, n, nl, &mut placement),
            &mut || pe_selector_creative(sel.0, n, nl, &mut creative),
        ] as [&mut dyn FnMut() -> pe_status; 5]
        {
            assert_eq!(call(), pe_status::UnknownName);
            assert!(last_error_len() < 1024, "{} bytes", last_error_len());
            assert!(last_error().contains(&quoted), "{}", last_error());
        }
        assert_eq!(pe_profile_new_from_json(sel.0, j, jl, &mut null_mut()), pe_status::InvalidSpec);
        assert!(last_error_len() < 1024, "{} bytes", last_error_len());
        assert!(last_error().starts_with("profile: field 'likes': unknown persona 'LLL"), "{}", last_error());
    }
}

#[test]
fn likes_and_dislikes_of_one_persona() {
    let sel = selector();
    let (j, jl) = c(r#"{"likes": ["Foodie"], "dislikes": ["Foodie"]}"#);
    fails(
        unsafe { pe_profile_new_from_json(sel.0, j, jl, &mut null_mut()) },
        pe_status::InvalidSpec,
        "profile: field 'likes': 'Foodie' is also in dislikes",
    );
    // Declared one call at a time, the latest declaration wins (documented).
    let person = new_profile(&sel, sample::NOW);
    let (n, nl) = c("Foodie");
    unsafe {
        ok(pe_profile_declare_like(person.0, n, nl));
        ok(pe_profile_declare_dislike(person.0, n, nl));
    }
    let mut len = 0usize;
    let mut buf = vec![0 as c_char; 1 << 16];
    ok(unsafe { pe_profile_to_json(person.0, buf.as_mut_ptr(), buf.len(), &mut len) });
    let json = unsafe { CStr::from_ptr(buf.as_ptr()) }.to_str().unwrap();
    let spec: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(spec["likes"], serde_json::json!([]));
    assert_eq!(spec["dislikes"], serde_json::json!(["Foodie"]));
}

#[test]
fn null_arguments_give_null_parameter() {
    let sel = selector();
    let person = new_profile(&sel, 0);
    let picks = selection(&sel, 1);
    let (n, nl) = c("Foodie");
    let mut u16_out = 0u16;
    let mut u32_out = 0u32;
    let mut usize_out = 0usize;
    let mut f32_out = 0f32;
    let mut u8_out = 0u8;
    let mut buf = [0 as c_char; 64];
    let ctx = context(0);
    unsafe {
        fails(pe_selector_placement(null(), n, nl, &mut u16_out), pe_status::NullParameter, "'selector'");
        fails(pe_selector_placement(sel.0, null(), 3, &mut u16_out), pe_status::NullParameter, "'name'");
        fails(pe_selector_placement(sel.0, n, nl, null_mut()), pe_status::NullParameter, "'out_placement'");
        fails(pe_selector_creative(sel.0, n, nl, null_mut()), pe_status::NullParameter, "'out_creative'");
        fails(
            pe_selector_creative_id(null(), 0, buf.as_mut_ptr(), 64, &mut usize_out),
            pe_status::NullParameter,
            "'selector'",
        );
        fails(
            pe_selector_creative_id(sel.0, 0, buf.as_mut_ptr(), 64, null_mut()),
            pe_status::NullParameter,
            "'out_len'",
        );
        fails(
            pe_selector_creative_id(sel.0, 0, null_mut(), 64, &mut usize_out),
            pe_status::NullParameter,
            "'buf'",
        );
        fails(
            pe_selector_creative_payload(sel.0, 0, null_mut(), 8, &mut usize_out),
            pe_status::NullParameter,
            "'buf'",
        );
        fails(
            pe_selector_persona_name(sel.0, 0, buf.as_mut_ptr(), 64, null_mut()),
            pe_status::NullParameter,
            "'out_len'",
        );
        fails(
            pe_selector_explain(sel.0, null(), 0, buf.as_mut_ptr(), 64, &mut usize_out),
            pe_status::NullParameter,
            "'selection'",
        );
        fails(pe_profile_new(null(), 0, &mut null_mut()), pe_status::NullParameter, "'selector'");
        fails(pe_profile_new(sel.0, 0, null_mut()), pe_status::NullParameter, "'out_profile'");
        fails(
            pe_profile_new_from_json(sel.0, null(), 2, &mut null_mut()),
            pe_status::NullParameter,
            "'json'",
        );
        fails(
            pe_profile_to_json(null(), buf.as_mut_ptr(), 64, &mut usize_out),
            pe_status::NullParameter,
            "'profile'",
        );
        fails(pe_profile_set_score(null_mut(), n, nl, 1, 0), pe_status::NullParameter, "'profile'");
        fails(pe_profile_set_score(person.0, null(), 1, 1, 0), pe_status::NullParameter, "'persona'");
        fails(pe_profile_add_signal(person.0, null(), 1, 1.0, 0, 0), pe_status::NullParameter, "'name'");
        fails(pe_profile_add_signal(null_mut(), n, nl, 1.0, 0, 0), pe_status::NullParameter, "'profile'");
        // A length that counts the terminator (`sizeof("clicks")`): refused, not stored
        // as "clicks\0", a name no persona model would ever match.
        let clicks = c"clicks";
        fails(
            pe_profile_add_signal(person.0, clicks.as_ptr(), clicks.count_bytes() + 1, 1.0, 0, 0),
            pe_status::InvalidArgument,
            "parameter 'name': byte 6 of 7 is NUL (pass the length without the terminator)",
        );
        fails(pe_profile_set_consent(null_mut(), 0, true), pe_status::NullParameter, "'profile'");
        fails(pe_profile_set_consent_mask(null_mut(), 0), pe_status::NullParameter, "'profile'");
        fails(pe_profile_set_relationship(null_mut(), 0, 1), pe_status::NullParameter, "'profile'");
        // Visits from 1970 would read as a loyal customer, and a profile saved so could
        // not be loaded back: refused, and nothing changes.
        fails(pe_profile_set_relationship(person.0, 0, 48), pe_status::InvalidArgument, "'first_seen'");
        let mut from_1970 = null_mut();
        ok(pe_profile_new(sel.0, 0, &mut from_1970));
        fails(
            pe_profile_to_json(from_1970, buf.as_mut_ptr(), 64, &mut usize_out),
            pe_status::InvalidSpec,
            "'first_seen'",
        );
        pe_profile_free(from_1970);
        fails(pe_profile_declare_like(person.0, null(), 1), pe_status::NullParameter, "'persona'");
        fails(pe_profile_declare_dislike(null_mut(), n, nl), pe_status::NullParameter, "'profile'");
        fails(pe_selection_new(null(), 1, &mut null_mut()), pe_status::NullParameter, "'selector'");
        fails(pe_selection_new(sel.0, 1, null_mut()), pe_status::NullParameter, "'out_selection'");
        fails(pe_selection_count(null(), &mut usize_out), pe_status::NullParameter, "'selection'");
        fails(pe_selection_count(picks.0, null_mut()), pe_status::NullParameter, "'out_count'");
        fails(pe_selection_creative(null(), 0, &mut u32_out), pe_status::NullParameter, "'selection'");
        fails(pe_selection_score(picks.0, 0, null_mut()), pe_status::NullParameter, "'out'");
        fails(pe_selection_propensity(null(), 0, &mut f32_out), pe_status::NullParameter, "'selection'");
        fails(pe_selection_reason_kind(picks.0, 0, null_mut()), pe_status::NullParameter, "'out'");
        fails(
            pe_selection_reason_persona(picks.0, 0, null_mut(), &mut u8_out),
            pe_status::NullParameter,
            "'out_persona'",
        );
        fails(
            pe_selection_reason_persona(picks.0, 0, &mut u16_out, null_mut()),
            pe_status::NullParameter,
            "'out_score'",
        );
        fails(pe_selection_exclude(null_mut(), 0), pe_status::NullParameter, "'selection'");
        fails(pe_selection_clear_exclusions(null_mut()), pe_status::NullParameter, "'selection'");
        fails(pe_select(null(), person.0, &ctx, 0, picks.0), pe_status::NullParameter, "'selector'");
        fails(pe_select(sel.0, null(), &ctx, 0, picks.0), pe_status::NullParameter, "'profile'");
        fails(pe_select(sel.0, person.0, null(), 0, picks.0), pe_status::NullParameter, "'context'");
        fails(pe_select(sel.0, person.0, &ctx, 0, null_mut()), pe_status::NullParameter, "'selection'");
    }
}

#[test]
fn invalid_utf8_names_give_invalid_utf8() {
    let sel = selector();
    let person = new_profile(&sel, 0);
    let bad = b"Fo\xffdie";
    let (p, l) = (bad.as_ptr().cast::<c_char>(), bad.len());
    let mut id = 0u16;
    let mut creative = 0u32;
    unsafe {
        fails(pe_selector_placement(sel.0, p, l, &mut id), pe_status::InvalidUtf8, "not valid UTF-8");
        fails(pe_selector_creative(sel.0, p, l, &mut creative), pe_status::InvalidUtf8, "not valid UTF-8");
        fails(pe_profile_set_score(person.0, p, l, 1, 0), pe_status::InvalidUtf8, "not valid UTF-8");
        fails(pe_profile_add_signal(person.0, p, l, 1.0, 0, 0), pe_status::InvalidUtf8, "not valid UTF-8");
        fails(pe_profile_declare_like(person.0, p, l), pe_status::InvalidUtf8, "not valid UTF-8");
        fails(pe_profile_declare_dislike(person.0, p, l), pe_status::InvalidUtf8, "not valid UTF-8");
        fails(
            pe_profile_new_from_json(sel.0, p, l, &mut null_mut()),
            pe_status::InvalidUtf8,
            "not valid UTF-8",
        );
    }
}

#[test]
fn small_buffers_give_buffer_too_small_and_the_length_needed() {
    let sel = selector();
    let id = creative_id(&sel, 0);
    let mut buf = [b'x' as c_char; 64];
    let mut len = 0;
    // Exactly the length is one byte short: the NUL needs room too.
    fails(
        unsafe { pe_selector_creative_id(sel.0, 0, buf.as_mut_ptr(), id.len(), &mut len) },
        pe_status::BufferTooSmall,
        &format!("needs {} bytes", id.len() + 1),
    );
    assert_eq!(len, id.len());
    // The buffer rule: as much as fits, NUL-terminated, the rest untouched.
    let cut = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) }.to_str().unwrap();
    assert_eq!(cut, &id[..id.len() - 1]);
    assert!(buf[id.len()..].iter().all(|b| *b == b'x' as c_char), "nothing written past cap");
    ok(unsafe { pe_selector_creative_id(sel.0, 0, buf.as_mut_ptr(), id.len() + 1, &mut len) });
    assert_eq!(len, id.len());
    assert_eq!(buf[len], 0);
    fails(
        unsafe { pe_selector_persona_name(sel.0, 0, buf.as_mut_ptr(), 3, &mut len) },
        pe_status::BufferTooSmall,
        "the persona name",
    );
    assert_eq!(len, "Luxury Travel".len());
}

#[test]
fn the_last_error_message_is_copied_without_allocation_and_truncates_safely() {
    let sel = selector();
    let (p, l) = c("café-hero");
    let mut id = 0u16;
    assert_eq!(unsafe { pe_selector_placement(sel.0, p, l, &mut id) }, pe_status::UnknownName);
    let full = "unknown placement 'café-hero'";
    assert_eq!(last_error(), full);
    // A length query.
    let mut len = 0;
    assert_eq!(unsafe { pe_last_error_message(null_mut(), 0, &mut len) }, pe_status::BufferTooSmall);
    assert_eq!(len, full.len());
    // Truncation never splits the 'é' (bytes 22..24): 23 bytes of room keep 22.
    let mut buf = [0x55 as c_char; 24];
    assert_eq!(unsafe { pe_last_error_message(buf.as_mut_ptr(), 24, &mut len) }, pe_status::BufferTooSmall);
    assert_eq!(len, full.len());
    let cut = unsafe { CStr::from_ptr(buf.as_ptr()) }.to_str().unwrap();
    assert_eq!(cut, "unknown placement 'caf");
    // Its own errors do not overwrite the message.
    assert_eq!(unsafe { pe_last_error_message(buf.as_mut_ptr(), 24, null_mut()) }, pe_status::NullParameter);
    assert_eq!(unsafe { pe_last_error_message(null_mut(), 24, &mut len) }, pe_status::NullParameter);
    assert_eq!(last_error(), full);
    // Success leaves it unchanged, like errno.
    assert_eq!(placement(&sel, "home_hero"), 0);
    assert_eq!(last_error(), full);
    // Each thread has its own.
    let other = std::thread::spawn(last_error).join().unwrap();
    assert_eq!(other, "");
}

#[test]
fn out_of_range_ids_and_indexes_give_out_of_range() {
    let sel = selector();
    let person = new_profile(&sel, 0);
    let picks = selection(&sel, 2);
    let mut buf = [0 as c_char; 64];
    let mut len = 0;
    let mut f = 0f32;
    let mut u = 0u32;
    let (mut persona, mut score) = (0u16, 0u8);
    unsafe {
        fails(
            pe_selector_creative_id(sel.0, 74, buf.as_mut_ptr(), 64, &mut len),
            pe_status::OutOfRange,
            "creative index 74 is not in this catalog (it has 74 creatives)",
        );
        fails(
            pe_selector_creative_payload(sel.0, u32::MAX, buf.as_mut_ptr(), 64, &mut len),
            pe_status::OutOfRange,
            "creative index",
        );
        fails(
            pe_selector_persona_name(sel.0, PE_PERSONA_NONE, buf.as_mut_ptr(), 64, &mut len),
            pe_status::OutOfRange,
            "persona id 65535 is not on this persona menu (it has 13 personas)",
        );
        fails(
            pe_select(sel.0, person.0, &context(0), 4, picks.0),
            pe_status::OutOfRange,
            "placement id 4 is not from this catalog (it has 4 placements)",
        );
        // Before any select the selection is empty: every pick index is out of range.
        assert_eq!(count(&picks), 0);
        fails(
            pe_selection_score(picks.0, 0, &mut f),
            pe_status::OutOfRange,
            "pick index 0 is past the end of the selection (0 picks)",
        );
        ok(pe_select(sel.0, person.0, &context(sample::NOW), 0, picks.0));
        let n = count(&picks);
        assert_eq!(n, 2);
        fails(
            pe_selection_creative(picks.0, n, &mut u),
            pe_status::OutOfRange,
            "pick index 2 is past the end",
        );
        fails(pe_selection_score(picks.0, n, &mut f), pe_status::OutOfRange, "pick index 2 is past the end");
        fails(
            pe_selection_propensity(picks.0, n, &mut f),
            pe_status::OutOfRange,
            "pick index 2 is past the end",
        );
        fails(
            pe_selection_reason_kind(picks.0, n, &mut u),
            pe_status::OutOfRange,
            "pick index 2 is past the end",
        );
        fails(
            pe_selection_reason_persona(picks.0, n, &mut persona, &mut score),
            pe_status::OutOfRange,
            "pick index 2 is past the end",
        );
        fails(
            pe_selector_explain(sel.0, picks.0, n, buf.as_mut_ptr(), 64, &mut len),
            pe_status::OutOfRange,
            "pick index 2 is past the end",
        );
    }
}

#[test]
fn out_of_domain_values_from_c_give_invalid_argument() {
    let sel = selector();
    let person = new_profile(&sel, sample::NOW);
    let (n, nl) = c("Foodie");
    unsafe {
        fails(
            pe_profile_set_score(person.0, n, nl, 10, 0),
            pe_status::InvalidArgument,
            "persona 'Foodie': score 10 is out of range (scores are 0..=9)",
        );
        fails(
            pe_profile_set_score(person.0, n, nl, 256 + 5, 0),
            pe_status::InvalidArgument,
            "score 261 is out of range",
        );
        fails(
            pe_profile_set_score(person.0, n, nl, 5, 1 << 6),
            pe_status::InvalidArgument,
            "sources: bitmask 0x40 has bits that are not data classes",
        );
        fails(
            pe_profile_set_consent_mask(person.0, 0xffff_ffff),
            pe_status::InvalidArgument,
            "mask: bitmask 0xffffffff",
        );
        fails(
            pe_profile_set_consent(person.0, 6, true),
            pe_status::InvalidArgument,
            "data_class: 6 is not a pe_data_class value (0..=5)",
        );
        fails(
            pe_profile_add_signal(person.0, n, nl, 1.0, u32::MAX, 0),
            pe_status::InvalidArgument,
            "data_class: 4294967295 is not a pe_data_class value",
        );
        fails(
            pe_profile_add_signal(person.0, n, nl, f32::NAN, 0, 0),
            pe_status::InvalidArgument,
            "signal 'Foodie' has value NaN (must be finite)",
        );
        fails(
            pe_profile_add_signal(person.0, b" ".as_ptr().cast(), 1, 1.0, 0, 0),
            pe_status::InvalidArgument,
            "signal name is empty",
        );
        for k in [0, PE_SELECTION_MAX_K + 1] {
            fails(
                pe_selection_new(sel.0, k, &mut null_mut()),
                pe_status::InvalidArgument,
                "picks asked for (1..=256)",
            );
        }
    }
    // Nothing changed on those errors.
    let mut buf = vec![0 as c_char; 4096];
    let mut len = 0;
    ok(unsafe { pe_profile_to_json(person.0, buf.as_mut_ptr(), buf.len(), &mut len) });
    let spec: serde_json::Value =
        serde_json::from_str(unsafe { CStr::from_ptr(buf.as_ptr()) }.to_str().unwrap()).unwrap();
    assert_eq!(spec["persona_scores"], serde_json::json!({}));
    assert_eq!(spec["signals"], serde_json::json!([]));
    assert_eq!(spec["consent"], serde_json::json!([]));
}

#[test]
fn bad_context_values_give_invalid_argument_and_select_writes_nothing() {
    let sel = selector();
    let person = new_profile(&sel, 0);
    let picks = selection(&sel, 1);
    ok(unsafe { pe_select(sel.0, person.0, &context(sample::NOW), 0, picks.0) });
    let before = read_picks(&sel, &picks);
    assert_eq!(before.len(), 1);
    let attribute =
        pe_attribute { key: b"k".as_ptr().cast(), key_len: 1, value: b"v".as_ptr().cast(), value_len: 1 };
    let nine = [attribute; PE_CONTEXT_MAX_ATTRIBUTES + 1];
    let null_key = [pe_attribute { key: null(), ..attribute }];
    let bad_value = [pe_attribute { value: b"\xfe".as_ptr().cast(), ..attribute }];
    let empty_key = [pe_attribute { key_len: 0, ..attribute }];
    let with_nul = [pe_attribute { key: c"k".as_ptr(), key_len: 2, ..attribute }];
    let keys = [b"k0", b"k1", b"k2", b"k3", b"k4", b"k5", b"k6", b"k7"];
    let eight: Vec<pe_attribute> =
        keys.iter().map(|k| pe_attribute { key: k.as_ptr().cast(), key_len: 2, ..attribute }).collect();
    let base = context(sample::NOW);
    let cases: Vec<(pe_context, pe_status, &str)> = vec![
        (
            pe_context { device: 5, ..base },
            pe_status::InvalidArgument,
            "context.device: 5 is not a pe_device value (0..=4)",
        ),
        (
            pe_context { channel: 6, ..base },
            pe_status::InvalidArgument,
            "context.channel: 6 is not a pe_channel value (0..=5)",
        ),
        (
            pe_context { weather: 99, ..base },
            pe_status::InvalidArgument,
            "context.weather: 99 is not a pe_weather value (0..=6)",
        ),
        (
            pe_context { utc_offset_minutes: -1081, ..base },
            pe_status::InvalidArgument,
            "context.utc_offset_minutes: -1081",
        ),
        (
            pe_context { utc_offset_minutes: i32::MIN, ..base },
            pe_status::InvalidArgument,
            "context.utc_offset_minutes",
        ),
        (pe_context { region_len: 2, ..base }, pe_status::NullParameter, "'context.region'"),
        (
            pe_context { region: b"\xc3(".as_ptr().cast(), region_len: 2, ..base },
            pe_status::InvalidUtf8,
            "'context.region' is not valid UTF-8",
        ),
        (
            pe_context { attributes: nine.as_ptr(), attribute_count: nine.len(), ..base },
            pe_status::InvalidArgument,
            "context.attribute_count: 9 attributes (at most 8)",
        ),
        (pe_context { attribute_count: 1, ..base }, pe_status::NullParameter, "'context.attributes'"),
        (
            pe_context { attributes: null_key.as_ptr(), attribute_count: 1, ..base },
            pe_status::NullParameter,
            "'context.attributes[].key'",
        ),
        (
            pe_context { attributes: bad_value.as_ptr(), attribute_count: 1, ..base },
            pe_status::InvalidUtf8,
            "'context.attributes[].value' is not valid UTF-8",
        ),
        (
            pe_context { attributes: nine.as_ptr(), attribute_count: 2, ..base },
            pe_status::InvalidArgument,
            "context.attributes[1].key: 'k' is given twice (also attributes[0])",
        ),
        (
            pe_context { attributes: empty_key.as_ptr(), attribute_count: 1, ..base },
            pe_status::InvalidArgument,
            "context.attributes[0].key: is empty (no catalog rule can match it)",
        ),
        (
            pe_context { attributes: with_nul.as_ptr(), attribute_count: 1, ..base },
            pe_status::InvalidArgument,
            "parameter 'context.attributes[].key': byte 1 of 2 is NUL (pass the length without the terminator)",
        ),
    ];
    for (ctx, status, needle) in cases {
        fails(unsafe { pe_select(sel.0, person.0, &ctx, 0, picks.0) }, status, needle);
        assert_eq!(read_picks(&sel, &picks), before, "selection changed on error");
    }
    // The extremes that are allowed.
    let ok_ctx = pe_context {
        utc_offset_minutes: -1080,
        device: pe_device::Tv as u32,
        channel: pe_channel::InStore as u32,
        weather: pe_weather::Cold as u32,
        attributes: eight.as_ptr(),
        attribute_count: PE_CONTEXT_MAX_ATTRIBUTES,
        ..base
    };
    ok(unsafe { pe_select(sel.0, person.0, &ok_ctx, 0, picks.0) });
}

#[test]
fn bad_profile_json_gives_invalid_json_or_invalid_spec() {
    let sel = selector();
    fails(
        profile_from_json(&sel, "{\"visits\": ").err().unwrap(),
        pe_status::InvalidJson,
        "profile: invalid JSON",
    );
    fails(
        profile_from_json(&sel, r#"{"persona_scores": {"Luxury Travle": 9}}"#).err().unwrap(),
        pe_status::InvalidSpec,
        "profile: field 'persona_scores': unknown persona 'Luxury Travle'",
    );
    assert!(profile_from_json(&sel, "{}").is_ok());
}

#[test]
fn a_profile_for_another_persona_menu_is_refused() {
    let sel = selector();
    let json = r#"{"version": "v", "personas": ["A", "B"], "placements": ["hero"],
        "creatives": [{"id": "x", "placements": ["hero"], "personas": {"A": 1.0}}]}"#;
    let other = selector_from_json(json, None).unwrap();
    let stranger = new_profile(&other, 0);
    let picks = selection(&sel, 1);
    fails(
        unsafe { pe_select(sel.0, stranger.0, &context(0), 0, picks.0) },
        pe_status::InvalidArgument,
        "profile: it was made for a selector with a different persona menu",
    );
}

#[test]
fn the_fallback_reports_no_persona() {
    let sel = selector();
    let person = new_profile(&sel, sample::NOW);
    let picks = selection(&sel, 1);
    let hero = placement(&sel, "home_hero");
    let ctx = context(sample::NOW);
    // Exclude every creative: only the fallback is left.
    for i in 0..74u32 {
        let id = creative_id(&sel, i);
        if !id.starts_with("fallback-") {
            ok(unsafe { pe_selection_exclude(picks.0, i) });
        }
    }
    ok(unsafe { pe_select(sel.0, person.0, &ctx, hero, picks.0) });
    let got = read_picks(&sel, &picks);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, "fallback-home-hero");
    assert_eq!(got[0].2, pe_reason_kind::Fallback as u32);
    let (mut persona, mut score) = (0u16, 9u8);
    ok(unsafe { pe_selection_reason_persona(picks.0, 0, &mut persona, &mut score) });
    assert_eq!((persona, score), (PE_PERSONA_NONE, 0));
}

/// No entry point can let a panic reach C: every `extern "C"` body in `src/ffi` runs
/// inside `ffi_boundary!`.
#[test]
fn every_entry_point_runs_inside_the_panic_boundary() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/ffi");
    let mut checked = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let source = std::fs::read_to_string(&path).unwrap();
        for chunk in source.split("extern \"C\" fn ").skip(1) {
            let name = chunk.split('(').next().unwrap_or_default();
            let body = chunk.split("\n}\n").next().unwrap_or_default();
            assert!(
                body.contains("ffi_boundary!("),
                "{}: `{name}` does not run inside ffi_boundary!",
                path.display()
            );
            checked += 1;
        }
    }
    assert!(checked >= 48, "only {checked} entry points found");
}

// ---- feedback, learned statistics and shadow mode --------------------------------------

fn record(sel: &Sel, person: &Prof, ctx: &pe_context, creative: u32, kind: pe_feedback_kind, value: f64) {
    ok(unsafe { pe_record(sel.0, person.0, ctx, creative, kind as u32, value) });
}

fn creative_index(sel: &Sel, id: &str) -> u32 {
    let (p, l) = c(id);
    let mut index = u32::MAX;
    ok(unsafe { pe_selector_creative(sel.0, p, l, &mut index) });
    index
}

/// A full statistics snapshot through `pe_selector_stats_save` (length query, then copy).
fn save_stats(sel: &Sel) -> String {
    let mut len = 0;
    fails(
        unsafe { pe_selector_stats_save(sel.0, null_mut(), 0, &mut len) },
        pe_status::BufferTooSmall,
        "the statistics snapshot is",
    );
    let mut buf = vec![0 as c_char; len + 1];
    ok(unsafe { pe_selector_stats_save(sel.0, buf.as_mut_ptr(), buf.len(), &mut len) });
    let text = unsafe { CStr::from_ptr(buf.as_ptr()) }.to_str().unwrap().to_owned();
    assert_eq!(text.len(), len);
    text
}

struct Blob(*mut pe_stats_blob);
impl Drop for Blob {
    fn drop(&mut self) {
        unsafe { pe_stats_blob_free(self.0) }
    }
}

fn export_delta(sel: &Sel) -> Blob {
    let mut out = null_mut();
    ok(unsafe { pe_selector_stats_export_delta(sel.0, &mut out) });
    assert!(!out.is_null());
    Blob(out)
}

/// The JSON of a blob (length query, then copy).
fn blob_json(blob: &Blob) -> String {
    let mut len = 0;
    fails(
        unsafe { pe_stats_blob_json(blob.0, null_mut(), 0, &mut len) },
        pe_status::BufferTooSmall,
        "the statistics delta is",
    );
    let mut buf = vec![0 as c_char; len + 1];
    ok(unsafe { pe_stats_blob_json(blob.0, buf.as_mut_ptr(), buf.len(), &mut len) });
    let text = unsafe { CStr::from_ptr(buf.as_ptr()) }.to_str().unwrap().to_owned();
    assert_eq!(text.len(), len);
    text
}

fn load_stats(sel: &Sel, json: &str) -> pe_status {
    load_stats_reported(sel, json).0
}

fn merge_stats(sel: &Sel, json: &str) -> pe_status {
    merge_stats_reported(sel, json).0
}

/// `pe_selector_stats_load` and what it reports.
fn load_stats_reported(sel: &Sel, json: &str) -> (pe_status, pe_stats_report) {
    let (p, l) = c(json);
    let mut report = pe_stats_report::default();
    (unsafe { pe_selector_stats_load(sel.0, p, l, &mut report) }, report)
}

/// `pe_selector_stats_merge` and what it reports.
fn merge_stats_reported(sel: &Sel, json: &str) -> (pe_status, pe_stats_report) {
    let (p, l) = c(json);
    let mut report = pe_stats_report::default();
    (unsafe { pe_selector_stats_merge(sel.0, p, l, &mut report) }, report)
}

fn profile_json(person: &Prof) -> String {
    let mut buf = vec![0 as c_char; 1 << 16];
    let mut len = 0;
    ok(unsafe { pe_profile_to_json(person.0, buf.as_mut_ptr(), buf.len(), &mut len) });
    unsafe { CStr::from_ptr(buf.as_ptr()) }.to_str().unwrap().to_owned()
}

/// `(impressions, clicks)` of one creative overall, from a snapshot's JSON.
fn overall(snapshot: &str, id: &str) -> (u64, u64) {
    let snap: serde_json::Value = serde_json::from_str(snapshot).unwrap();
    let o = &snap["creatives"][id]["overall"];
    (o["impressions"].as_u64().unwrap_or(0), o["clicks"].as_u64().unwrap_or(0))
}

/// The luxury traveller in the C ABI and in Rust, with their moment in both.
fn luxury_traveller(sel: &Sel) -> (Prof, pe_context, Selector, sample::Person) {
    let rust = Selector::new(sample::catalog().unwrap(), SelectorConfig::default()).unwrap();
    let people = sample::people(rust.catalog().menu()).unwrap();
    let ctx = sample_contexts(&people)[0];
    let person = profile_from_json(sel, &to_json(&people[0].profile, &rust)).unwrap();
    let p = people.into_iter().next().unwrap();
    (person, ctx, rust, p)
}

#[test]
fn feedback_through_c_does_what_the_rust_api_does() {
    use persona_engine::{CreativeId, Feedback, FeedbackKind};
    let sel = selector();
    let (person, ctx, rust, mut rust_person) = luxury_traveller(&sel);
    let hero = placement(&sel, "home_hero");
    let events: [(u32, pe_feedback_kind, f64, FeedbackKind); 9] = [
        (0, pe_feedback_kind::Impression, 0.0, FeedbackKind::Impression),
        (0, pe_feedback_kind::Click, 0.0, FeedbackKind::Click),
        (1, pe_feedback_kind::Impression, 0.0, FeedbackKind::Impression),
        (1, pe_feedback_kind::Conversion, 129.99, FeedbackKind::Conversion { value: 129.99 }),
        (2, pe_feedback_kind::Impression, 0.0, FeedbackKind::Impression),
        (2, pe_feedback_kind::ThumbsUp, 0.0, FeedbackKind::ThumbsUp),
        (3, pe_feedback_kind::ThumbsDown, 0.0, FeedbackKind::ThumbsDown),
        (4, pe_feedback_kind::Dismiss, 0.0, FeedbackKind::Dismiss),
        // The value is ignored for anything but a conversion.
        (5, pe_feedback_kind::Click, f64::NAN, FeedbackKind::Click),
    ];
    for (creative, kind, value, rust_kind) in events {
        record(&sel, &person, &ctx, creative, kind, value);
        let feedback = Feedback::new(CreativeId(creative), rust_kind, &rust_person.context);
        rust.record(&mut rust_person.profile, &feedback).unwrap();
    }
    // The same memory, the same statistics, the same picks.
    assert_eq!(profile_json(&person), to_json(&rust_person.profile, &rust));
    assert_eq!(save_stats(&sel), rust.save_stats().to_json().unwrap());
    let picks = selection(&sel, 5);
    let mut rust_picks = rust.new_selection(5);
    ok(unsafe { pe_select(sel.0, person.0, &ctx, hero, picks.0) });
    rust.select(
        &rust_person.profile,
        &rust_person.context,
        rust.placement("home_hero").unwrap(),
        &mut rust_picks,
    )
    .unwrap();
    let expected: Vec<(String, f32, u32)> = rust_picks
        .picks()
        .iter()
        .map(|p| (rust.catalog().creative_id(p.creative).to_owned(), p.score, p.reason.kind as u32))
        .collect();
    assert_eq!(read_picks(&sel, &picks), expected);
    let (imps, clicks) = overall(&save_stats(&sel), &creative_id(&sel, 0));
    assert_eq!((imps, clicks), (1, 1));
}

#[test]
fn a_thumbs_down_or_a_dismissal_is_obeyed_on_the_next_pick() {
    let sel = selector();
    let (person, ctx, ..) = luxury_traveller(&sel);
    let hero = placement(&sel, "home_hero");
    let picks = selection(&sel, 3);
    ok(unsafe { pe_select(sel.0, person.0, &ctx, hero, picks.0) });
    let first = read_picks(&sel, &picks);
    let (top, second) = (creative_index(&sel, &first[0].0), creative_index(&sel, &first[1].0));
    record(&sel, &person, &ctx, top, pe_feedback_kind::ThumbsDown, 0.0);
    record(&sel, &person, &ctx, second, pe_feedback_kind::Dismiss, 0.0);
    for _ in 0..3 {
        ok(unsafe { pe_select(sel.0, person.0, &ctx, hero, picks.0) });
        let now = read_picks(&sel, &picks);
        assert_eq!(now.len(), 3);
        assert!(now.iter().all(|(id, ..)| *id != first[0].0 && *id != first[1].0), "{now:?}");
    }
    // Another person is not affected.
    let stranger = profile_from_json(&sel, &profile_json(&luxury_traveller(&sel).0)).unwrap();
    ok(unsafe { pe_select(sel.0, stranger.0, &ctx, hero, picks.0) });
    assert_eq!(read_picks(&sel, &picks)[0].0, first[0].0);
}

#[test]
fn pe_record_rejects_bad_arguments_and_changes_nothing() {
    let sel = selector();
    let (person, ctx, ..) = luxury_traveller(&sel);
    record(&sel, &person, &ctx, 0, pe_feedback_kind::Impression, 0.0);
    let (stats, memory) = (save_stats(&sel), profile_json(&person));
    let conversion = pe_feedback_kind::Conversion as u32;
    let click = pe_feedback_kind::Click as u32;
    let other = selector_from_json(
        r#"{"version": "v", "personas": ["A", "B"], "placements": ["hero"],
            "creatives": [{"id": "x", "placements": ["hero"], "personas": {"A": 1.0}}]}"#,
        None,
    )
    .unwrap();
    let stranger = new_profile(&other, 0);
    unsafe {
        fails(pe_record(null(), person.0, &ctx, 0, click, 0.0), pe_status::NullParameter, "'selector'");
        fails(pe_record(sel.0, null_mut(), &ctx, 0, click, 0.0), pe_status::NullParameter, "'profile'");
        fails(pe_record(sel.0, person.0, null(), 0, click, 0.0), pe_status::NullParameter, "'context'");
        fails(
            pe_record(sel.0, person.0, &ctx, 74, click, 0.0),
            pe_status::OutOfRange,
            "creative index 74 is not in this catalog (it has 74 creatives)",
        );
        fails(
            pe_record(sel.0, person.0, &ctx, u32::MAX, click, 0.0),
            pe_status::OutOfRange,
            "creative index",
        );
        fails(
            pe_record(sel.0, person.0, &ctx, 0, 6, 0.0),
            pe_status::InvalidArgument,
            "kind: 6 is not a pe_feedback_kind value (0..=5)",
        );
        fails(
            pe_record(sel.0, person.0, &ctx, 0, u32::MAX, 0.0),
            pe_status::InvalidArgument,
            "kind: 4294967295 is not a pe_feedback_kind value",
        );
        for value in [-0.01, f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1e9 + 1.0] {
            fails(
                pe_record(sel.0, person.0, &ctx, 0, conversion, value),
                pe_status::InvalidArgument,
                "feedback: field 'value': conversion value",
            );
        }
        fails(
            pe_record(sel.0, person.0, &pe_context { device: 9, ..ctx }, 0, click, 0.0),
            pe_status::InvalidArgument,
            "context.device: 9 is not a pe_device value",
        );
        fails(
            pe_record(
                sel.0,
                person.0,
                &pe_context { region: b"\xff".as_ptr().cast(), region_len: 1, ..ctx },
                0,
                click,
                0.0,
            ),
            pe_status::InvalidUtf8,
            "'context.region' is not valid UTF-8",
        );
        fails(
            pe_record(sel.0, stranger.0, &ctx, 0, click, 0.0),
            pe_status::InvalidArgument,
            "profile: it was made for a selector with a different persona menu",
        );
    }
    assert_eq!(save_stats(&sel), stats, "statistics changed on error");
    assert_eq!(profile_json(&person), memory, "profile changed on error");
    // The edges that are allowed.
    record(&sel, &person, &ctx, 73, pe_feedback_kind::Conversion, 0.0);
    record(&sel, &person, &ctx, 73, pe_feedback_kind::Conversion, 1e9);
}

#[test]
fn recording_from_many_threads_while_others_select() {
    let sel = selector();
    let hero = placement(&sel, "home_hero");
    let s = sel.0 as usize;
    std::thread::scope(|scope| {
        for t in 0..4 {
            scope.spawn(move || {
                let sel = s as *const pe_selector;
                let (mut person, mut picks) = (null_mut(), null_mut());
                ok(unsafe { pe_profile_new(sel, sample::NOW, &mut person) });
                ok(unsafe { pe_selection_new(sel, 3, &mut picks) });
                for i in 0..250 {
                    if t % 2 == 0 {
                        ok(unsafe { pe_select(sel, person, &context(sample::NOW), hero, picks) });
                    }
                    let kind =
                        if i % 5 == 0 { pe_feedback_kind::Click } else { pe_feedback_kind::Impression };
                    ok(unsafe { pe_record(sel, person, &context(sample::NOW + i), 0, kind as u32, 0.0) });
                }
                unsafe {
                    pe_selection_free(picks);
                    pe_profile_free(person);
                }
            });
        }
    });
    assert_eq!(overall(&save_stats(&sel), &creative_id(&sel, 0)), (800, 200));
}

#[test]
fn statistics_save_and_load_through_c() {
    let sel = selector();
    let (person, ctx, ..) = luxury_traveller(&sel);
    let hero = placement(&sel, "home_hero");
    // Teach the selector that the third pick is what this person clicks.
    let picks = selection(&sel, 3);
    ok(unsafe { pe_select(sel.0, person.0, &ctx, hero, picks.0) });
    let before = read_picks(&sel, &picks);
    let third = creative_index(&sel, &before[2].0);
    for i in 0..200 {
        // Days ago, so the creative's frequency cap (3 a day) no longer holds it back.
        let moment = pe_context { at: ctx.at - 30 * 86_400 + i * 60, ..ctx };
        record(&sel, &person, &moment, third, pe_feedback_kind::Impression, 0.0);
        record(&sel, &person, &moment, third, pe_feedback_kind::Click, 0.0);
    }
    let fresh = profile_from_json(&sel, &profile_json(&luxury_traveller(&sel).0)).unwrap();
    ok(unsafe { pe_select(sel.0, fresh.0, &ctx, hero, picks.0) });
    let learned = read_picks(&sel, &picks);
    assert_eq!(learned[0].0, before[2].0, "learning moved it up: {learned:?}");
    assert_eq!(learned[0].2, pe_reason_kind::Learned as u32);

    // A restarted instance loads the snapshot and picks as the saved one does (saving
    // brings the learned prior spreads up to date with the statistics it writes).
    let snapshot = save_stats(&sel);
    assert_eq!(overall(&snapshot, &before[2].0), (200, 200));
    ok(unsafe { pe_select(sel.0, fresh.0, &ctx, hero, picks.0) });
    let learned = read_picks(&sel, &picks);
    assert_eq!(learned[0].0, before[2].0, "still first after the save: {learned:?}");
    let restarted = selector();
    ok(load_stats(&restarted, &snapshot));
    assert_eq!(save_stats(&restarted), snapshot);
    let again = profile_from_json(&restarted, &profile_json(&fresh)).unwrap();
    let picks2 = selection(&restarted, 3);
    ok(unsafe { pe_select(restarted.0, again.0, &ctx, hero, picks2.0) });
    assert_eq!(read_picks(&restarted, &picks2), learned);
    // A loaded snapshot is not exported again as a delta.
    assert_eq!(blob_json(&export_delta(&restarted)).matches("\"overall\"").count(), 0);
    // Saving into a buffer one byte short copies nothing.
    let mut buf = vec![b'x' as c_char; snapshot.len()];
    let mut len = 0;
    fails(
        unsafe { pe_selector_stats_save(sel.0, buf.as_mut_ptr(), buf.len(), &mut len) },
        pe_status::BufferTooSmall,
        &format!("needs {} bytes", snapshot.len() + 1),
    );
    assert_eq!(len, snapshot.len());
    // The buffer rule: as much as fits, NUL-terminated.
    let cut = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) }.to_str().unwrap();
    assert_eq!(cut, &snapshot[..snapshot.len() - 1]);
}

#[test]
fn corrupt_statistics_are_rejected_and_change_nothing() {
    let sel = selector();
    let (person, ctx, ..) = luxury_traveller(&sel);
    for creative in 0..5 {
        record(&sel, &person, &ctx, creative, pe_feedback_kind::Impression, 0.0);
        record(&sel, &person, &ctx, creative, pe_feedback_kind::Click, 0.0);
    }
    let good = save_stats(&sel);
    let id = creative_id(&sel, 2);
    let cases: Vec<(String, pe_status, &str)> = vec![
        (good[..good.len() / 2].to_owned(), pe_status::InvalidJson, "stats snapshot: invalid JSON"),
        (String::new(), pe_status::InvalidJson, "stats snapshot: invalid JSON"),
        ("[1, 2]".to_owned(), pe_status::InvalidJson, "stats snapshot: invalid JSON"),
        (
            good.replacen("\"impressions\":1", "\"impressions\":-1", 1),
            pe_status::InvalidJson,
            "stats snapshot: invalid JSON",
        ),
        (
            good.replacen("persona-engine/learned-stats", "something-else", 1),
            pe_status::InvalidSpec,
            "stats snapshot: field 'format': 'something-else' is not 'persona-engine/learned-stats'",
        ),
        (
            good.replacen("\"version\":2", "\"version\":3", 1),
            pe_status::InvalidSpec,
            "version 3 is not supported",
        ),
        (
            good.replacen("\"version\":2", "\"version\":1", 1),
            pe_status::InvalidSpec,
            "version 1 holds the statistics of the previous learning model",
        ),
        (good.replacen("\"desktop\"", "\"toaster\"", 1), pe_status::InvalidSpec, "unknown device 'toaster'"),
    ];
    // Every case really is broken somewhere past the start (the replacements matched).
    for (json, ..) in &cases[3..] {
        assert_ne!(json, &good);
    }
    for (json, status, needle) in &cases {
        fails(load_stats(&sel, json), *status, needle);
        assert_eq!(save_stats(&sel), good, "load changed the statistics on error");
        fails(merge_stats(&sel, json), *status, needle);
        assert_eq!(save_stats(&sel), good, "merge changed the statistics on error");
    }
    // A delta is merged, never loaded.
    let delta = blob_json(&export_delta(&sel));
    fails(
        load_stats(&sel, &delta),
        pe_status::InvalidSpec,
        "load takes a full snapshot; merge a delta instead",
    );
    assert_eq!(save_stats(&sel), good);
    // A snapshot none of whose creatives this catalog has would apply nothing (and the
    // next save would write over what was learned): refused, naming them; nothing
    // changes.
    let mut renamed: serde_json::Value = serde_json::from_str(&good).unwrap();
    let creatives = renamed["creatives"].as_object().unwrap().clone();
    assert!(!creatives.is_empty());
    renamed["creatives"] =
        serde_json::Value::Object(creatives.into_iter().map(|(k, v)| (format!("gone-{k}"), v)).collect());
    let renamed = renamed.to_string();
    fails(
        load_stats(&sel, &renamed),
        pe_status::InvalidSpec,
        "is in this catalog (snapshot of catalog version",
    );
    fails(merge_stats(&sel, &renamed), pe_status::InvalidSpec, "'gone-");
    assert_eq!(save_stats(&sel), good);
    // A snapshot naming some creatives and personas the catalog lacks is applied in
    // part, and the report counts what was skipped (a plain selector cannot keep it).
    let mut partial: serde_json::Value = serde_json::from_str(&good).unwrap();
    let creatives = partial["creatives"].as_object().unwrap().clone();
    let (first, _) = creatives.iter().next().unwrap();
    let mut changed = serde_json::Map::new();
    let mut segments_renamed = 0;
    for (k, mut v) in creatives.clone() {
        if &k == first {
            changed.insert(format!("gone-{k}"), v);
            continue;
        }
        if segments_renamed == 0 {
            if let Some(segments) = v["segments"].as_object().cloned() {
                if let Some((persona, counts)) = segments.into_iter().next() {
                    v["segments"].as_object_mut().unwrap().remove(&persona);
                    v["segments"]["Nobody On The Menu"] = counts;
                    segments_renamed = 1;
                }
            }
        }
        changed.insert(k, v);
    }
    assert_eq!(segments_renamed, 1, "the good snapshot has segment counts to rename");
    partial["creatives"] = serde_json::Value::Object(changed);
    partial["model"] = serde_json::Value::Array(Vec::new());
    let partial = partial.to_string();
    let expected = pe_stats_report {
        creatives: creatives.len() as u64 - 1,
        unknown_creatives: 1,
        unknown_segments: 1,
        unknown_model_entries: 0,
    };
    let other = selector();
    assert_eq!(load_stats_reported(&other, &partial), (pe_status::Ok, expected));
    let other = selector();
    assert_eq!(merge_stats_reported(&other, &partial), (pe_status::Ok, expected));
    // And a snapshot that fits reports nothing skipped.
    assert_eq!(
        load_stats_reported(&other, &good),
        (pe_status::Ok, pe_stats_report { creatives: creatives.len() as u64, ..pe_stats_report::default() })
    );
    // NULL and invalid UTF-8.
    let bad = b"{\"format\": \"\xff\"}";
    unsafe {
        fails(
            pe_selector_stats_load(null(), b"{}".as_ptr().cast(), 2, &mut pe_stats_report::default()),
            pe_status::NullParameter,
            "'selector'",
        );
        fails(
            pe_selector_stats_load(sel.0, null(), 2, &mut pe_stats_report::default()),
            pe_status::NullParameter,
            "'json'",
        );
        fails(
            pe_selector_stats_merge(null(), b"{}".as_ptr().cast(), 2, &mut pe_stats_report::default()),
            pe_status::NullParameter,
            "'selector'",
        );
        fails(
            pe_selector_stats_merge(sel.0, null(), 0, &mut pe_stats_report::default()),
            pe_status::NullParameter,
            "'json'",
        );
        let (p, l) = c(&good);
        fails(pe_selector_stats_load(sel.0, p, l, null_mut()), pe_status::NullParameter, "'out_report'");
        fails(pe_selector_stats_merge(sel.0, p, l, null_mut()), pe_status::NullParameter, "'out_report'");
        assert_eq!(save_stats(&sel), good, "a call refused for its report pointer changes nothing");
        fails(
            pe_selector_stats_load(sel.0, bad.as_ptr().cast(), bad.len(), &mut pe_stats_report::default()),
            pe_status::InvalidUtf8,
            "'json'",
        );
        fails(
            pe_selector_stats_merge(sel.0, bad.as_ptr().cast(), bad.len(), &mut pe_stats_report::default()),
            pe_status::InvalidUtf8,
            "'json'",
        );
        let mut len = 0;
        fails(
            pe_selector_stats_save(null(), null_mut(), 0, &mut len),
            pe_status::NullParameter,
            "'selector'",
        );
        fails(
            pe_selector_stats_save(sel.0, null_mut(), 0, null_mut()),
            pe_status::NullParameter,
            "'out_len'",
        );
        fails(pe_selector_stats_save(sel.0, null_mut(), 8, &mut len), pe_status::NullParameter, "'buf'");
    }
    assert_eq!(save_stats(&sel), good);
    assert_eq!(overall(&good, &id), (1, 1));
}

#[test]
fn an_exported_delta_is_kept_until_copied() {
    let sel = selector();
    let (person, ctx, ..) = luxury_traveller(&sel);
    for _ in 0..3 {
        record(&sel, &person, &ctx, 7, pe_feedback_kind::Impression, 0.0);
    }
    record(&sel, &person, &ctx, 7, pe_feedback_kind::Click, 0.0);
    let id = creative_id(&sel, 7);

    // Failed exports export nothing: the events are still there for the next one.
    unsafe {
        fails(
            pe_selector_stats_export_delta(null(), &mut null_mut()),
            pe_status::NullParameter,
            "'selector'",
        );
        fails(pe_selector_stats_export_delta(sel.0, null_mut()), pe_status::NullParameter, "'out_blob'");
    }
    let blob = export_delta(&sel);
    // Length queries, too-small buffers and repeated copies never lose it.
    let mut len = 0;
    for _ in 0..3 {
        fails(
            unsafe { pe_stats_blob_json(blob.0, null_mut(), 0, &mut len) },
            pe_status::BufferTooSmall,
            "the statistics delta is",
        );
    }
    let mut short = vec![b'x' as c_char; len];
    fails(
        unsafe { pe_stats_blob_json(blob.0, short.as_mut_ptr(), short.len(), &mut len) },
        pe_status::BufferTooSmall,
        &format!("needs {} bytes", len + 1),
    );
    // The buffer rule: what fits, NUL-terminated.
    let cut = unsafe { std::ffi::CStr::from_ptr(short.as_ptr()) }.to_str().unwrap().to_owned();
    let json = blob_json(&blob);
    assert_eq!(cut, json[..json.len() - 1], "filled with what fits, NUL-terminated");
    assert_eq!(json.len(), len);
    assert_eq!(blob_json(&blob), json, "a blob can be copied again");
    assert_eq!(overall(&json, &id), (3, 1));
    let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(parsed["kind"], "delta");
    // The baseline moved once: the next delta is empty; new events make the one after.
    let empty = blob_json(&export_delta(&sel));
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&empty).unwrap()["creatives"],
        serde_json::json!({})
    );
    record(&sel, &person, &ctx, 7, pe_feedback_kind::Impression, 0.0);
    assert_eq!(overall(&blob_json(&export_delta(&sel)), &id), (1, 0));
    // The delta merges into another instance.
    let other = selector();
    ok(merge_stats(&other, &json));
    assert_eq!(overall(&save_stats(&other), &id), (3, 1));
    // NULLs.
    unsafe {
        fails(pe_stats_blob_json(null(), null_mut(), 0, &mut len), pe_status::NullParameter, "'blob'");
        fails(pe_stats_blob_json(blob.0, null_mut(), 0, null_mut()), pe_status::NullParameter, "'out_len'");
        fails(pe_stats_blob_json(blob.0, null_mut(), 4, &mut len), pe_status::NullParameter, "'buf'");
        pe_stats_blob_free(null_mut());
    }
}

#[test]
fn deltas_merge_in_any_order_through_the_c_abi() {
    // Three instances serve different people and exchange deltas; a fourth saw it all.
    let instances: Vec<Sel> = (0..3).map(|_| selector()).collect();
    let everything = selector();
    let rust = Selector::new(sample::catalog().unwrap(), SelectorConfig::default()).unwrap();
    let people = sample::people(rust.catalog().menu()).unwrap();
    let contexts = sample_contexts(&people);
    for (i, (person, ctx)) in people.iter().zip(&contexts).enumerate() {
        let sel = &instances[i % 3];
        let json = to_json(&person.profile, &rust);
        let (here, there) =
            (profile_from_json(sel, &json).unwrap(), profile_from_json(&everything, &json).unwrap());
        for n in 0..(10 + 7 * i as u32) {
            let creative = (n * 11 + i as u32) % 74;
            let kind = match n % 4 {
                0 | 1 => pe_feedback_kind::Impression,
                2 => pe_feedback_kind::Click,
                _ => pe_feedback_kind::Conversion,
            };
            let moment = pe_context { at: ctx.at + i64::from(n) * 3_600, ..*ctx };
            record(sel, &here, &moment, creative, kind, f64::from(n));
            record(&everything, &there, &moment, creative, kind, f64::from(n));
        }
    }
    let deltas: Vec<String> = instances.iter().map(|s| blob_json(&export_delta(s))).collect();
    let orders = [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]];
    let results: Vec<String> = orders
        .iter()
        .map(|order| {
            let hub = selector();
            for &i in order {
                ok(merge_stats(&hub, &deltas[i]));
            }
            save_stats(&hub)
        })
        .collect();
    assert!(results.windows(2).all(|w| w[0] == w[1]), "merge order changed the statistics");
    // The event counts are exactly what one instance that saw every event counted; the
    // model's weights are sums of each instance's updates, which differ from one
    // instance's sequential updates, so only the counts are compared.
    // (`expected_micros` sums what the model predicted at each impression, so it differs
    // for the same reason.)
    fn strip(v: &mut serde_json::Value) {
        if let Some(map) = v.as_object_mut() {
            map.remove("expected_micros");
            map.values_mut().for_each(strip);
        }
    }
    let counts = |json: &str| {
        let mut v = serde_json::from_str::<serde_json::Value>(json).unwrap()["creatives"].clone();
        strip(&mut v);
        v
    };
    let (merged, seen) = (counts(&results[0]), counts(&save_stats(&everything)));
    assert!(merged == seen, "the merged counts are not what one instance saw");
    // All-to-all: each instance merges the others' deltas and ends up with the same, and
    // exports nothing it merged.
    for (i, sel) in instances.iter().enumerate() {
        for (j, delta) in deltas.iter().enumerate() {
            if i != j {
                ok(merge_stats(sel, delta));
            }
        }
        assert_eq!(save_stats(sel), results[0]);
        let echo = blob_json(&export_delta(sel));
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&echo).unwrap()["creatives"],
            serde_json::json!({})
        );
    }
}

#[test]
fn shadow_mode_and_reason_details_through_c() {
    use persona_engine::{CreativeId, Feedback, FeedbackKind, PlacementId};
    let sel = selector();
    let (person, ctx, rust, mut rust_person) = luxury_traveller(&sel);
    let hero = placement(&sel, "home_hero");
    let picks = selection(&sel, 3);
    // Before shadow mode, and before any select, there are no shadow picks.
    assert_eq!(shadow_count(&picks), 0);
    ok(unsafe { pe_select(sel.0, person.0, &ctx, hero, picks.0) });
    assert_eq!(shadow_count(&picks), 0);
    // Teach both selectors that the rules' third pick is what gets clicked.
    let third = creative_index(&sel, &read_picks(&sel, &picks)[2].0);
    for i in 0..300 {
        // Days ago, so the creative's frequency cap (3 a day) no longer holds it back.
        let moment = pe_context { at: ctx.at - 30 * 86_400 + i * 60, ..ctx };
        let rust_moment = persona_engine::Context { at: moment.at, ..rust_person.context.clone() };
        for (kind, rust_kind) in [
            (pe_feedback_kind::Impression, FeedbackKind::Impression),
            (pe_feedback_kind::Click, FeedbackKind::Click),
        ] {
            record(&sel, &person, &moment, third, kind, 0.0);
            let feedback = Feedback::new(CreativeId(third), rust_kind, &rust_moment);
            rust.record(&mut rust_person.profile, &feedback).unwrap();
        }
    }
    ok(unsafe { pe_selector_set_shadow(sel.0, hero, true) });
    rust.set_shadow(PlacementId(hero), true).unwrap();
    let mut rust_picks = rust.new_selection(3);
    ok(unsafe { pe_select(sel.0, person.0, &ctx, hero, picks.0) });
    rust.select(&rust_person.profile, &rust_person.context, PlacementId(hero), &mut rust_picks).unwrap();
    // Served: the rules' picks, deterministic.
    assert_eq!(read_picks(&sel, &picks).len(), rust_picks.len());
    let n = shadow_count(&picks);
    assert_eq!(n, rust_picks.shadow_picks().len());
    assert!(n > 0);
    for (i, p) in rust_picks.picks().iter().enumerate() {
        let mut propensity = 0.0;
        ok(unsafe { pe_selection_propensity(picks.0, i, &mut propensity) });
        assert_eq!(propensity, 1.0);
        let (mut base, mut fatigue, mut estimate, mut evidence) = (0f32, 0f32, 0f32, 0f32);
        ok(unsafe {
            pe_selection_reason_details(picks.0, i, &mut base, &mut fatigue, &mut estimate, &mut evidence)
        });
        let r = &p.reason;
        assert_eq!((base, fatigue, estimate, evidence), (r.base, r.fatigue, r.estimate, r.evidence));
    }
    // Shadow: what learning would have shown, the taught creative first.
    for (i, p) in rust_picks.shadow_picks().iter().enumerate() {
        let (mut creative, mut score, mut propensity) = (0u32, 0f32, 0f32);
        unsafe {
            ok(pe_selection_shadow_creative(picks.0, i, &mut creative));
            ok(pe_selection_shadow_score(picks.0, i, &mut score));
            ok(pe_selection_shadow_propensity(picks.0, i, &mut propensity));
        }
        assert_eq!((creative, score, propensity), (p.creative.0, p.score, p.propensity));
    }
    let mut first = 0u32;
    ok(unsafe { pe_selection_shadow_creative(picks.0, 0, &mut first) });
    assert_eq!(first, third);
    assert_ne!(read_picks(&sel, &picks)[0].0, creative_id(&sel, third), "the rules still serve");
    // Out of shadow mode: learning serves, no shadow picks.
    ok(unsafe { pe_selector_set_shadow(sel.0, hero, false) });
    ok(unsafe { pe_select(sel.0, person.0, &ctx, hero, picks.0) });
    assert_eq!(shadow_count(&picks), 0);
    assert_eq!(read_picks(&sel, &picks)[0].0, creative_id(&sel, third));
    // The taught creative's details show what was learned.
    let (mut base, mut fatigue, mut estimate, mut evidence) = (0f32, 0f32, 0f32, 0f32);
    ok(unsafe {
        pe_selection_reason_details(picks.0, 0, &mut base, &mut fatigue, &mut estimate, &mut evidence)
    });
    assert!(estimate > 0.5 && evidence >= 300.0, "estimate {estimate}, evidence {evidence}");
    assert!(base > 0.0 && fatigue > 0.0 && fatigue <= 1.0);

    // Errors.
    let (mut u, mut f, mut count) = (0u32, 0f32, 0usize);
    unsafe {
        fails(pe_selector_set_shadow(null(), hero, true), pe_status::NullParameter, "'selector'");
        fails(
            pe_selector_set_shadow(sel.0, 4, true),
            pe_status::OutOfRange,
            "placement id 4 is not from this catalog (it has 4 placements)",
        );
        fails(pe_selection_shadow_count(null(), &mut count), pe_status::NullParameter, "'selection'");
        fails(pe_selection_shadow_count(picks.0, null_mut()), pe_status::NullParameter, "'out_count'");
        fails(pe_selection_shadow_creative(null(), 0, &mut u), pe_status::NullParameter, "'selection'");
        fails(pe_selection_shadow_score(picks.0, 0, null_mut()), pe_status::NullParameter, "'out'");
        fails(
            pe_selection_shadow_creative(picks.0, 0, &mut u),
            pe_status::OutOfRange,
            "shadow pick index 0 is past the end of the selection (0 shadow picks)",
        );
        fails(pe_selection_shadow_score(picks.0, 0, &mut f), pe_status::OutOfRange, "shadow pick index 0");
        fails(
            pe_selection_shadow_propensity(picks.0, 0, &mut f),
            pe_status::OutOfRange,
            "shadow pick index 0",
        );
        let mut g = 0f32;
        let (a, b, cc, d): (*mut f32, *mut f32, *mut f32, *mut f32) = (&mut f, &mut g, &mut f, &mut g);
        fails(pe_selection_reason_details(null(), 0, a, b, cc, d), pe_status::NullParameter, "'selection'");
        fails(
            pe_selection_reason_details(picks.0, 0, null_mut(), b, cc, d),
            pe_status::NullParameter,
            "'out_base'",
        );
        fails(
            pe_selection_reason_details(picks.0, 0, a, null_mut(), cc, d),
            pe_status::NullParameter,
            "'out_fatigue'",
        );
        fails(
            pe_selection_reason_details(picks.0, 0, a, b, null_mut(), d),
            pe_status::NullParameter,
            "'out_estimate'",
        );
        fails(
            pe_selection_reason_details(picks.0, 0, a, b, cc, null_mut()),
            pe_status::NullParameter,
            "'out_evidence'",
        );
        fails(
            pe_selection_reason_details(picks.0, 3, a, b, cc, d),
            pe_status::OutOfRange,
            "pick index 3 is past the end",
        );
    }
}

fn shadow_count(picks: &Picks) -> usize {
    let mut n = usize::MAX;
    ok(unsafe { pe_selection_shadow_count(picks.0, &mut n) });
    n
}

#[test]
fn the_learning_policy_comes_from_the_config_json() {
    let sel =
        selector_from_json(sample::CATALOG_JSON, Some(r#"{"learning": {"policy": {"kind": "thompson"}}}"#))
            .unwrap();
    let (person, ctx, ..) = luxury_traveller(&sel);
    let picks = selection(&sel, 3);
    // Thompson draws: propensities below 1 for some pick over a few seeds.
    let mut explored = false;
    for seed in 0..20 {
        ok(unsafe { pe_select(sel.0, person.0, &pe_context { seed, ..ctx }, 0, picks.0) });
        let mut p = 0.0;
        ok(unsafe { pe_selection_propensity(picks.0, 0, &mut p) });
        explored |= p < 1.0;
    }
    assert!(explored);
    fails(
        selector_from_json(sample::CATALOG_JSON, Some(r#"{"learning": {"policy": {"kind": "nope"}}}"#))
            .err()
            .unwrap(),
        pe_status::InvalidJson,
        "selector config: invalid JSON: unknown variant `nope`",
    );
    fails(
        selector_from_json(
            sample::CATALOG_JSON,
            Some(r#"{"learning": {"policy": {"kind": "epsilon_greedy", "epsilon": 2}}}"#),
        )
        .err()
        .unwrap(),
        pe_status::InvalidSpec,
        "learning.policy.epsilon",
    );
}
