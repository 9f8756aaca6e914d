//! Every content limit the README's "Guarantees and limits" states, hit one past the
//! limit, with the exact error a user sees. (Document sizes are proven in
//! tests/bad_input.rs and tests/durable.rs.)

mod common;

use common::*;
use persona_engine::limits::*;
use persona_engine::profile::Signal;
use persona_engine::{
    Catalog, CatalogSpec, CreativeSpec, DataClass, PersonaMenu, Profile, Selection, SelectorConfig,
};

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
        format!(
            "creative '{}… (257 bytes)': field 'id': id is 257 bytes long (at most 256)",
            &long[..QUOTE_BYTES]
        )
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
    // Refused while parsing, as soon as the list passes its limit: the column is the
    // one just after the first element too many.
    let suppressed = "\"0000000000000001\"";
    for (field, item, limit, what) in [
        ("signals", signal, MAX_SIGNALS, "signals (MAX_SIGNALS)"),
        ("exposures", exposure, MAX_EXPOSURES, "exposures (MAX_EXPOSURES)"),
        ("engagements", exposure, MAX_ENGAGEMENTS, "engagements (MAX_ENGAGEMENTS)"),
        ("suppressed", suppressed, MAX_SUPPRESSED, "suppressed creatives (MAX_SUPPRESSED)"),
        ("likes", "\"Luxury\"", MAX_PERSONAS, "names (MAX_PERSONAS)"),
        ("dislikes", "\"Luxury\"", MAX_PERSONAS, "names (MAX_PERSONAS)"),
    ] {
        let prefix = format!(r#"{{"{field}": ["#);
        // One past the limit, then an element that is not even valid: never reached.
        let json = format!("{prefix}{},nonsense]}}", vec![item; limit + 1].join(","));
        let column = prefix.len() + (limit + 1) * (item.len() + 1);
        assert_eq!(
            Profile::from_json(menu, &json).unwrap_err().to_string(),
            format!("profile: field '{field}': more than {limit} {what} at line 1 column {column}")
        );
    }
    // A signal name as long as the longest id, and one byte more (MAX_SIGNAL_NAME):
    // with every signal at the limit the profile still saves and loads back.
    let long = "s".repeat(persona_engine::limits::MAX_SIGNAL_NAME);
    let mut p = Profile::for_menu(menu, 1_700_000_000);
    for i in 0..MAX_SIGNALS {
        let name = format!("{i:04}{}", &long[4..]);
        p.add_signal(Signal { name, value: 1.0, class: DataClass::Behavioral, at: i as i64 }).unwrap();
    }
    let saved = p.to_json(menu).expect("the largest profile saves");
    assert_eq!(Profile::from_json(menu, &saved).expect("and loads back").signals.len(), MAX_SIGNALS);
    let err = p
        .add_signal(Signal { name: format!("{long}x"), value: 1.0, class: DataClass::Behavioral, at: 0 })
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("profile: field 'signals[1024].name': '{}… (257 bytes)' is longer than 256 bytes (MAX_SIGNAL_NAME)", &long[..QUOTE_BYTES])
    );
    let scores: Vec<String> = (0..=MAX_PERSONAS).map(|i| format!(r#""p{i}": 1"#)).collect();
    let err =
        Profile::from_json(menu, &format!(r#"{{"persona_scores": {{{}}}}}"#, scores.join(","))).unwrap_err();
    assert!(
        err.to_string().starts_with(
            "profile: field 'persona_scores': more than 1024 persona scores (MAX_PERSONAS) at line 1 column"
        ),
        "{err}"
    );
}

#[test]
fn the_catalog_counts_are_enforced_while_parsing() {
    let creative = |field: &str| {
        format!(
            r#"{{"version": "t", "personas": ["Luxury"], "placements": ["hero"],
                "creatives": [{{"id": "c", "placements": ["hero"], {field}}}]}}"#
        )
    };
    let tags: Vec<String> = (0..=MAX_TAGS).map(|i| format!(r#""p{i}": 1"#)).collect();
    let boosts = vec![r#"{"when": {}, "factor": 2}"#; MAX_BOOSTS + 1];
    let attributes: Vec<String> = (0..=MAX_ATTRIBUTES).map(|i| format!(r#""a{i}": "v""#)).collect();
    for (field, expected) in [
        (
            format!(r#""personas": {{{}}}"#, tags.join(",")),
            "catalog spec: field 'personas': more than 64 persona tags on one creative (MAX_TAGS) at line 2",
        ),
        (
            format!(r#""boosts": [{}]"#, boosts.join(",")),
            "catalog spec: field 'boosts': more than 16 boosts on one creative (MAX_BOOSTS) at line 2",
        ),
        (
            format!(r#""attributes": {{{}}}"#, attributes.join(",")),
            "catalog spec: field 'attributes': more than 16 attributes on one creative (MAX_ATTRIBUTES) at line 2",
        ),
    ] {
        let err = Catalog::from_json(&creative(&field)).unwrap_err().to_string();
        assert!(err.starts_with(expected), "{err}");
    }
    let placements: Vec<String> = (0..=MAX_PLACEMENTS).map(|i| format!(r#""p{i}""#)).collect();
    let json = format!(r#"{{"personas": ["L"], "placements": [{}], "creatives": []}}"#, placements.join(","));
    let err = Catalog::from_json(&json).unwrap_err().to_string();
    assert!(
        err.starts_with(
            "catalog spec: field 'placements': more than 4096 placements (MAX_PLACEMENTS) at line 1"
        ),
        "{err}"
    );
}

#[test]
fn a_persona_both_liked_and_disliked_is_an_error() {
    let sel = selector(vec![tagged("a", "Luxury")]);
    let menu = sel.catalog().menu();
    let json = r#"{"likes": ["Family", "Luxury"], "dislikes": ["Budget", "Luxury"]}"#;
    assert_eq!(
        Profile::from_json(menu, json).unwrap_err().to_string(),
        "profile: field 'likes': 'Luxury' is also in dislikes (a persona is liked or disliked, not both)"
    );
    // The builder API: the latest declaration wins, and the persona is never both.
    let mut p = sel.new_profile(NOW);
    p.declare_like(menu, "Luxury").unwrap();
    p.declare_dislike(menu, "Luxury").unwrap();
    let luxury = menu.id("Luxury").unwrap();
    assert_eq!((p.likes.contains(&luxury), p.dislikes.contains(&luxury)), (false, true));
    p.declare_like(menu, "Luxury").unwrap();
    assert_eq!((p.likes.contains(&luxury), p.dislikes.contains(&luxury)), (true, false));
    // What the builder made always reads back.
    assert_eq!(Profile::from_json(menu, &p.to_json(menu).unwrap()).unwrap(), p);
}

/// The error of the first line of a decision log.
fn log_error(text: &str) -> String {
    let mut reader = persona_engine::eval::DecisionLogReader::new(text.as_bytes(), "decisions.jsonl");
    reader.next().unwrap().unwrap_err().to_string()
}

#[test]
fn a_huge_value_is_quoted_short_in_every_message() {
    let huge = "L".repeat(1 << 20);
    let sel = selector(vec![tagged("a", "Luxury")]);
    let menu = sel.catalog().menu();
    let quoted = format!("{}… (1048576 bytes)", &huge[..QUOTE_BYTES]);
    // The largest name a profile document has room for.
    let big = &huge[..MAX_PROFILE_BYTES - 20];
    let big_quoted = format!("{}… ({} bytes)", &huge[..QUOTE_BYTES], big.len());
    let messages = [
        menu.id(&huge).unwrap_err().to_string(),
        Profile::from_json(menu, &format!(r#"{{"likes": ["{big}"]}}"#)).unwrap_err().to_string(),
        Profile::from_json(menu, &format!(r#"{{"{big}": 1}}"#)).unwrap_err().to_string(),
        Profile::from_json(menu, &format!(r#"{{"consent": ["{big}"]}}"#)).unwrap_err().to_string(),
        Catalog::compile(&spec(vec![tagged("a", &huge)])).unwrap_err().to_string(),
        Catalog::compile(&spec(vec![CreativeSpec::new("a").placement(&huge)])).unwrap_err().to_string(),
        sel.placement(&huge).unwrap_err().to_string(),
        sel.catalog().creative(&huge).unwrap_err().to_string(),
        PersonaMenu::new(["a", &huge[..100], &huge[..100]]).unwrap_err().to_string(),
        SelectorConfig::from_json(&format!(r#"{{"{huge}": 1}}"#)).unwrap_err().to_string(),
        log_error(&format!(r#"{{"{huge}": 1}}"#)),
        log_error(&format!(r#"{{"v": 1, "timestamp": 0, "placement": "{huge}", "policy": "greedy"}}"#)),
        log_error(&format!(r#"{{"timestamp": "{huge}"#)),
    ];
    for message in &messages {
        assert!(message.len() < 1024, "{} bytes: {}", message.len(), &message[..2000.min(message.len())]);
    }
    assert_eq!(messages[0], format!("unknown persona '{quoted}'"));
    assert_eq!(messages[1], format!("profile: field 'likes': unknown persona '{big_quoted}'"));
    assert!(messages[2].contains(&format!("unknown field `{big_quoted}`")), "{}", messages[2]);
    assert!(messages[2].ends_with(&format!("at line 1 column {}", big.len() + 3)), "{}", messages[2]);
}

#[test]
fn the_selection_and_config_limits() {
    assert_eq!(Selection::new(MAX_K + 1).k(), MAX_K, "the Rust API clamps k (the C ABI refuses it)");
    assert_eq!(
        SelectorConfig::from_json(r#"{"learning": {"segment_cells": 16777217}}"#).unwrap_err().to_string(),
        "selector config: field 'learning.segment_cells': 16777217 is above 2^24"
    );
    assert_eq!(
        SelectorConfig::from_json(r#"{"learning": {"optimism": -1}}"#).unwrap_err().to_string(),
        "selector config: field 'learning.optimism': -1 must be finite and between 0 and 20"
    );
    assert_eq!(
        SelectorConfig::from_json(r#"{"learning": {"prior_from_score": 0}}"#).unwrap_err().to_string(),
        "selector config: field 'learning.prior_from_score': 0 must be between 1 and 9"
    );
    assert!(SelectorConfig::from_json(r#"{"learning": {"prior_from_score": 10}}"#).is_err());
    let plain = SelectorConfig::from_json(r#"{"learning": {"optimism": 0}}"#).expect("0 ranks by the mean");
    assert_eq!(plain.learning.optimism, 0.0);
}

#[test]
fn the_obd_import_and_holdout_quote_huge_values_and_cap_item_ids() {
    use persona_engine::eval::{obd_item_catalog, read_obd_csv, ObdImport};
    use persona_engine::holdout::{Holdout, HoldoutConfig};
    let huge = "L".repeat(1 << 20);
    // The longest value that fits on one log line with the rest of its row.
    let big = &huge[..MAX_LOG_LINE_BYTES - 128];
    let quoted = format!("{}… ({} bytes)", &huge[..QUOTE_BYTES], big.len());
    let huge_quoted = format!("{}… (1048576 bytes)", &huge[..QUOTE_BYTES]);
    let sel = selector(vec![tagged("a", "Luxury")]);
    let mut import = ObdImport { placement: Some("hero".into()), ..ObdImport::default() };
    let csv = format!("timestamp,item_id,position,click,propensity_score,arm\n0,0,1,0,0.5,{big}\n");
    let items = format!("item_id,item_feature_0\n{big},a\n");
    let config = HoldoutConfig { share: 0.1, fallback_policy: huge.clone(), ..HoldoutConfig::default() };
    let messages = [
        read_obd_csv(csv.as_bytes(), "obd.csv", sel.catalog(), &mut import).unwrap_err().to_string(),
        obd_item_catalog(items.as_bytes(), "item_context.csv").unwrap_err().to_string(),
        Holdout::new(&config).unwrap_err().to_string(),
        log_error(&format!(
            r#"{{"v": 1, "timestamp": 0, "placement": "hero", "chosen": [], "arm": "{big}"}}"#
        )),
    ];
    for message in &messages {
        assert!(message.len() < 1024, "{} bytes: {}", message.len(), &message[..2000.min(message.len())]);
    }
    for message in [&messages[0], &messages[1], &messages[3]] {
        assert!(message.contains(&format!("'{quoted}'")), "{message}");
    }
    assert!(messages[2].contains(&format!("'{huge_quoted}'")), "{}", messages[2]);
    assert_eq!(
        messages[0],
        format!("obd.csv line 2: field 'arm': unknown arm '{quoted}' (holdout, personalized)")
    );
    assert_eq!(messages[1], format!("item_context.csv line 2: field 'item_id': '{quoted}' is not an index"));
    // An item id past MAX_CREATIVES is refused before room for that many items is made.
    let items = format!("item_id,item_feature_0\n{MAX_CREATIVES},a\n");
    assert_eq!(
        obd_item_catalog(items.as_bytes(), "item_context.csv").unwrap_err().to_string(),
        "item_context.csv line 2: field 'item_id': 1000000 is too large (item ids count from 0; at most \
         MAX_CREATIVES (1000000) items)"
    );
}
