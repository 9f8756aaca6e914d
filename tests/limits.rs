//! Every content limit the README's "Guarantees and limits" states, hit one past the
//! limit, with the exact error a user sees. (Document sizes are proven in
//! tests/bad_input.rs and tests/durable.rs.)

mod common;

use common::*;
use persona_engine::limits::*;
use persona_engine::{Catalog, CatalogSpec, CreativeSpec, PersonaMenu, Profile, Selection, SelectorConfig};

fn compile_error(spec: &CatalogSpec) -> String {
    Catalog::compile(spec).unwrap_err().to_string()
}

#[test]
fn the_persona_menu_limits() {
    let names: Vec<String> = (0..=MAX_PERSONAS).map(|i| format!("p{i}")).collect();
    assert_eq!(
        PersonaMenu::new(names).unwrap_err().to_string(),
        "persona menu: field 'personas[1024]': too many personas (at most 1024)"
    );
    assert_eq!(
        PersonaMenu::new(["x".repeat(MAX_PERSONA_NAME + 1)]).unwrap_err().to_string(),
        "persona menu: field 'personas[0]': persona name is 129 bytes long (at most 128)"
    );
}

#[test]
fn the_catalog_limits() {
    let mut s = spec(vec![tagged("a", "Luxury")]);
    s.placements = (0..=MAX_PLACEMENTS).map(|i| format!("p{i}")).collect();
    assert_eq!(compile_error(&s), "catalog: field 'placements': 4097 placements (at most 4096)");

    let long = "x".repeat(MAX_ID_LEN + 1);
    let mut s = spec(vec![tagged("a", "Luxury")]);
    s.placements[1] = long.clone();
    assert_eq!(compile_error(&s), "catalog: field 'placements[1]': placement name longer than 256 bytes");
    let s = spec(vec![tagged(&long, "Luxury")]);
    assert_eq!(
        compile_error(&s),
        format!("creative '{long}': field 'id': id is 257 bytes long (at most 256)")
    );

    let mut s = spec(vec![]);
    s.personas = (0..=MAX_TAGS).map(|i| format!("p{i}")).collect();
    let mut c = CreativeSpec::new("many-tags").placement("hero");
    for p in &s.personas {
        c = c.persona(p, 1.0);
    }
    s.creatives.push(c);
    assert_eq!(compile_error(&s), "creative 'many-tags': field 'personas': 65 persona tags (at most 64)");

    let mut c = tagged("many-boosts", "Luxury");
    for _ in 0..=MAX_BOOSTS {
        c = c.boost(when(), 1.1);
    }
    assert_eq!(
        compile_error(&spec(vec![c])),
        "creative 'many-boosts': field 'boosts': 17 boosts (at most 16)"
    );

    let payload = format!("\"{}\"", "x".repeat(MAX_PAYLOAD - 1));
    let c = tagged("big", "Luxury").payload_json(&payload).unwrap();
    assert_eq!(
        compile_error(&spec(vec![c])),
        "creative 'big': field 'payload': payload is 65537 bytes (at most 65536)"
    );
    // MAX_CREATIVES (1,000,000) is checked by `Catalog::compile` before any creative is
    // looked at; building a spec one past it takes ~600 MB, too much for the test suite.
    assert_eq!(MAX_CREATIVES, 1_000_000);
}

#[test]
fn the_profile_limits() {
    let sel = selector(vec![tagged("a", "Luxury")]);
    let menu = sel.catalog().menu();
    let signal = r#"{"name": "s", "value": 1, "class": "behavioral", "at": 0}"#;
    let exposure = r#"{"creative": "0000000000000001", "at": 0}"#;
    let list = |item: &str, n: usize| vec![item; n].join(",");
    for (json, expected) in [
        (
            format!(r#"{{"signals": [{}]}}"#, list(signal, MAX_SIGNALS + 1)),
            "profile: field 'signals': 1025 signals (at most 1024)",
        ),
        (
            format!(r#"{{"exposures": [{}]}}"#, list(exposure, MAX_EXPOSURES + 1)),
            "profile: field 'exposures': 257 exposures (at most 256)",
        ),
        (
            format!(r#"{{"engagements": [{}]}}"#, list(exposure, MAX_ENGAGEMENTS + 1)),
            "profile: field 'engagements': 257 engagements (at most 256)",
        ),
        (
            format!(r#"{{"suppressed": [{}]}}"#, list("\"0000000000000001\"", MAX_SUPPRESSED + 1)),
            "profile: field 'suppressed': 257 suppressed creatives (at most 256)",
        ),
        (
            format!(r#"{{"likes": [{}]}}"#, list("\"Luxury\"", MAX_PERSONAS + 1)),
            "profile: field 'likes': 1025 names (at most 1024)",
        ),
    ] {
        assert_eq!(Profile::from_json(menu, &json).unwrap_err().to_string(), expected);
    }
}

#[test]
fn the_selection_and_config_limits() {
    assert_eq!(Selection::new(MAX_K + 1).k(), MAX_K, "the Rust API clamps k (the C ABI refuses it)");
    assert_eq!(
        SelectorConfig::from_json(r#"{"learning": {"segment_cells": 16777217}}"#).unwrap_err().to_string(),
        "selector config: field 'learning.segment_cells': 16777217 is above 2^24"
    );
}
