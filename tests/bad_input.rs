//! The bad-input campaign. Property tests feed arbitrary bytes, JSON-shaped noise and
//! mutated valid documents to every parser (catalog spec, profile, statistics snapshot,
//! persona model, selector configuration, and the offline-evaluation decision log and
//! OBD CSV) and random call sequences to the C ABI (NULL
//! pointers, zero lengths, invalid UTF-8, huge numbers, NaN and infinities, duplicate
//! and missing fields, deep nesting). Every case returns either a value or an error
//! with a message; none panics (proptest fails on a panic; the C ABI must never answer
//! `PE_STATUS_PANIC`), none hangs (the suite is timed and a 100,000-key document parses
//! in linear time), and none allocates out of proportion to its input (a counting
//! allocator measures the peak of every parse).
//!
//! This file owns the binary's global allocator, so it holds these tests alone.

use std::time::Instant;

use persona_engine::eval::{read_obd_csv, write_obd_csv, DecisionLogReader, DecisionRecord, ObdImport};
use persona_engine::learn::{SnapshotKind, StatsSnapshot};
use persona_engine::limits::{MAX_MODEL_BYTES, MAX_PROFILE_BYTES, MAX_SNAPSHOT_BYTES, MAX_SPEC_BYTES};
use persona_engine::{
    sample, Catalog, CatalogSpec, Context, DataClass, DataClasses, Device, Error, Feedback, FeedbackKind,
    PersonaModel, Profile, Selector, SelectorConfig, Signal,
};
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::Value;

// ---------------------------------------------------------------------------------------
// A per-thread counting allocator: the peak of live bytes while a closure runs.

#[path = "common/peak_alloc.rs"]
mod peak_alloc;
use peak_alloc::{peak, Counting};

#[global_allocator]
static GLOBAL: Counting = Counting;

/// What a parse of `input` bytes may allocate at its peak: proportional to the input,
/// plus a constant that covers compiling a catalog (its per-placement, per-persona
/// index is bounded by MAX_PLACEMENTS · MAX_PERSONAS, not by the input).
fn allowance(input: usize) -> usize {
    64 * input + (32 << 20)
}

#[test]
fn the_counter_sees_a_known_allocation() {
    let (bytes, v) = peak(|| vec![0u8; 10_000]);
    assert_eq!(v.len(), 10_000);
    assert_eq!(bytes, 10_000);
}

// ---------------------------------------------------------------------------------------
// Valid documents of every kind, to mutate.

const CATALOG: &str = r#"{
  "version": "bad-input",
  "personas": ["Luxury Travel", "Family Activities", "Budget"],
  "placements": ["home_hero", "sidebar"],
  "creatives": [
    {
      "id": "lux-maldives",
      "placements": ["home_hero"],
      "personas": {"Luxury Travel": 1.0, "Budget": 0.2},
      "targeting": {"daypart": ["evening", "night"], "not_device": ["tv"], "region": ["FR", "DE"],
                    "attributes": [{"key": "tier", "in": ["gold"]}]},
      "boosts": [{"when": {"weather": ["rain", "cold"]}, "factor": 1.3}],
      "schedule": {"start": "2026-11-01T00:00:00Z", "end": 1800000000},
      "priority": 1.2,
      "frequency_cap": {"impressions": 3, "window_seconds": 86400},
      "intimacy": "segment",
      "data_classes": ["behavioral"],
      "component": "banner",
      "exclusion_group": "maldives-offer",
      "payload": {"headline": "Overwater villas", "price": 1.50, "tags": [1, [2, {"x": null}]]}
    },
    {"id": "fam-park", "placements": ["home_hero", "sidebar"], "personas": {"Family Activities": 0.8}},
    {"id": "house-ad", "placements": ["home_hero", "sidebar"], "fallback": true, "priority": 0.5,
     "payload": {"headline": "Where to next?"}}
  ]
}"#;

const MODEL: &str = r#"{"half_life_days": 14, "personas": {
  "Luxury Travel": {"bias": -2.5, "weights": {"viewed_villas": 1.2, "spend": 0.01}},
  "Budget": {"weights": {"coupon_used": 2}}}}"#;

fn catalog() -> Catalog {
    Catalog::from_json(CATALOG).unwrap()
}

fn profile_json() -> String {
    let cat = catalog();
    let menu = cat.menu();
    let mut p = Profile::new(menu.len(), sample::NOW - 90 * 86_400);
    p.visits = 7;
    p.consent = DataClasses::only(DataClass::Behavioral).with(DataClass::Purchase);
    p.set_score(menu, "Luxury Travel", 9, DataClasses::only(DataClass::Purchase)).unwrap();
    p.set_score(menu, "Budget", 3, DataClasses::NONE).unwrap();
    p.declare_like(menu, "Family Activities").unwrap();
    p.add_signal(Signal {
        name: "viewed_villas".into(),
        value: 3.0,
        class: DataClass::Behavioral,
        at: sample::NOW,
    })
    .unwrap();
    let selector = Selector::new(cat, SelectorConfig::default()).unwrap();
    let lux = selector.creative("lux-maldives").unwrap();
    let moment = Context::at(sample::NOW).with_device(Device::Mobile);
    selector.record(&mut p, &Feedback::new(lux, FeedbackKind::Impression, &moment)).unwrap();
    let fam = selector.creative("fam-park").unwrap();
    selector.record(&mut p, &Feedback::new(fam, FeedbackKind::Dismiss, &moment)).unwrap();
    p.to_json(selector.catalog().menu()).unwrap()
}

fn busy_selector() -> Selector {
    let selector = Selector::new(catalog(), SelectorConfig::default()).unwrap();
    let mut p = Profile::from_json(selector.catalog().menu(), &profile_json()).unwrap();
    for (i, id) in ["lux-maldives", "fam-park", "lux-maldives"].iter().enumerate() {
        let c = selector.creative(id).unwrap();
        let moment = Context::at(sample::NOW + i as i64 * 7_000).with_device(Device::ALL[i % 5]);
        for kind in [FeedbackKind::Impression, FeedbackKind::Click, FeedbackKind::Conversion { value: 19.99 }]
        {
            selector.record(&mut p, &Feedback::new(c, kind, &moment)).unwrap();
        }
    }
    selector
}

fn stats_json() -> String {
    busy_selector().save_stats().to_json().unwrap()
}

fn config_json() -> String {
    let mut config = SelectorConfig::with_policy(persona_engine::Policy::EpsilonGreedy { epsilon: 0.1 });
    config.max_per_persona = 1;
    serde_json::to_string(&config).unwrap()
}

/// Two decisions of the offline-evaluation log, with a click on the first.
fn decision_records() -> Vec<DecisionRecord> {
    let selector = busy_selector();
    let profile = Profile::from_json(selector.catalog().menu(), &profile_json()).unwrap();
    let hero = selector.placement("home_hero").unwrap();
    let mut selection = selector.new_selection(2);
    (0..2)
        .map(|i| {
            let moment =
                Context::at(sample::NOW + i * 3_600).with_device(Device::Desktop).with_seed(i as u64);
            selector.select(&profile, &moment, hero, &mut selection).unwrap();
            let mut record = DecisionRecord::from_selection(&selector, &profile, &moment, hero, &selection)
                .unwrap()
                .with_region("FR")
                .with_attribute("tier", "gold");
            let first = selector.catalog().creative_id(selection.picks()[0].creative).to_owned();
            record
                .observe(&first, if i == 0 { FeedbackKind::Click } else { FeedbackKind::Impression })
                .unwrap();
            record
        })
        .collect()
}

fn decision_log() -> String {
    decision_records().iter().map(|r| r.to_json_line() + "\n").collect()
}

fn obd_csv() -> String {
    let mut out = Vec::new();
    write_obd_csv(&decision_records(), &catalog(), &mut out, "decisions.csv").unwrap();
    String::from_utf8(out).unwrap()
}

/// Which document a test mutates.
#[derive(Clone, Copy, Debug)]
enum Doc {
    Catalog,
    Profile,
    Stats,
    Model,
    Config,
    /// The offline-evaluation decision log (JSON Lines).
    DecisionLog,
    /// The Open Bandit Dataset CSV layout.
    ObdCsv,
}

const DOCS: [Doc; 7] =
    [Doc::Catalog, Doc::Profile, Doc::Stats, Doc::Model, Doc::Config, Doc::DecisionLog, Doc::ObdCsv];

fn valid(doc: Doc) -> String {
    match doc {
        Doc::Catalog => CATALOG.to_owned(),
        Doc::Profile => profile_json(),
        Doc::Stats => stats_json(),
        Doc::Model => MODEL.to_owned(),
        Doc::Config => config_json(),
        Doc::DecisionLog => decision_log(),
        Doc::ObdCsv => obd_csv(),
    }
}

// ---------------------------------------------------------------------------------------
// Mutations: of the text, and of the parsed JSON tree.

/// Text dropped into a document: huge and tiny numbers, NaN and infinities (not JSON),
/// escapes, lone surrogates, structure characters, deep nesting, a long string.
fn snippets() -> Vec<String> {
    let mut s: Vec<String> = [
        "1e999",
        "-1e999",
        "NaN",
        "Infinity",
        "-Infinity",
        "-0",
        "1e-400",
        "null",
        "true",
        "\"\"",
        "\"\\u0000\"",
        "\"\\ud800\"",
        "\"\\uDFFF\\uD800\"",
        "18446744073709551616",
        "-9223372036854775809",
        "4294967296",
        "65536",
        "-1",
        "0.0000001",
        "[]",
        "{}",
        "{\"\":{}}",
        ",",
        ":",
        "\"",
        "\\",
        "}",
        "]",
        "{",
        "[",
        "\u{feff}",
        "\u{0}",
        "\"personas\": [],",
        "\"version\": \"again\",",
        "\"creatives\": null,",
        "\"id\": \"dup\",",
        "\"unknown_field\": 1,",
        "  \n\t ",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    s.push("[".repeat(5_000));
    s.push("{\"a\":".repeat(2_000));
    s.push(format!("\"{}\"", "x".repeat(100_000)));
    s.push(format!("[{}1]", "1,".repeat(20_000)));
    s
}

#[derive(Clone, Debug)]
enum TextEdit {
    Delete(Index, usize),
    Insert(Index, Index),
    Replace(Index, u8),
    Truncate(Index),
    Repeat(Index, usize),
}

fn text_edit() -> impl Strategy<Value = TextEdit> {
    prop_oneof![
        (any::<Index>(), 1usize..64).prop_map(|(i, n)| TextEdit::Delete(i, n)),
        (any::<Index>(), any::<Index>()).prop_map(|(i, s)| TextEdit::Insert(i, s)),
        (any::<Index>(), any::<u8>()).prop_map(|(i, b)| TextEdit::Replace(i, b)),
        any::<Index>().prop_map(TextEdit::Truncate),
        (any::<Index>(), 1usize..200).prop_map(|(i, n)| TextEdit::Repeat(i, n)),
    ]
}

fn apply_text(doc: &str, edits: &[TextEdit], snippets: &[String]) -> String {
    let mut bytes = doc.as_bytes().to_vec();
    for edit in edits {
        let at = |i: &Index, len: usize| i.index(len + 1);
        match edit {
            TextEdit::Delete(i, n) => {
                let a = at(i, bytes.len());
                let b = (a + n).min(bytes.len());
                bytes.drain(a..b);
            }
            TextEdit::Insert(i, s) => {
                let a = at(i, bytes.len());
                let snippet = snippets[s.index(snippets.len())].as_bytes();
                bytes.splice(a..a, snippet.iter().copied());
            }
            TextEdit::Replace(i, b) => {
                if !bytes.is_empty() {
                    let a = i.index(bytes.len());
                    bytes[a] = *b;
                }
            }
            TextEdit::Truncate(i) => bytes.truncate(at(i, bytes.len())),
            TextEdit::Repeat(i, n) => {
                let a = at(i, bytes.len());
                let b = (a + n).min(bytes.len());
                let span = bytes[a..b].to_vec();
                bytes.splice(b..b, span);
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Values dropped into the tree: every JSON type, numbers at the edges, strings longer
/// than any id, a control character, nesting beyond serde_json's recursion limit (128).
fn nasty_values() -> Vec<Value> {
    let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
    let mut values: Vec<Value> = [
        "null",
        "true",
        "false",
        "0",
        "-1",
        "1e308",
        "-1e308",
        "1e-300",
        "0.5",
        "18446744073709551615",
        "-9223372036854775808",
        "4294967295",
        "65535",
        "\"\"",
        "\" \"",
        "\"\\u0000\"",
        "[]",
        "{}",
        "[1, 2, 3]",
        "{\"score\": 10}",
        "{\"kind\": \"thompson\"}",
        "\"evening\"",
        "\"2026-02-30T00:00:00Z\"",
    ]
    .iter()
    .map(|s| serde_json::from_str(s).unwrap())
    .collect();
    values.push(Value::String("x".repeat(300)));
    values.push(Value::Array((0..2_000).map(|i| Value::String(format!("v{i}"))).collect()));
    // serde_json refuses to build a tree deeper than 128, so this one stays text.
    values.push(Value::String(deep));
    values
}

#[derive(Clone, Debug)]
enum TreeEdit {
    /// Replace the n-th node (pre-order) with a nasty value.
    Set(Index, Index),
    /// Replace the n-th node with a value of the same JSON type (edge numbers, names
    /// from the documents, over-long strings; an array loses or repeats an element), so
    /// the document still parses and validation is what must refuse it.
    Tweak(Index, Index),
    /// Remove a key from the n-th object (a missing field).
    Remove(Index, Index),
    /// Rename a key of the n-th object (an unknown field).
    Rename(Index, Index),
    /// Write a key of the n-th object twice (a duplicate field).
    Duplicate(Index, Index),
    /// Replace the n-th node with `deep` levels of arrays (beyond the recursion limit).
    Nest(Index, usize),
}

fn tree_edit() -> impl Strategy<Value = TreeEdit> {
    prop_oneof![
        2 => (any::<Index>(), any::<Index>()).prop_map(|(n, v)| TreeEdit::Set(n, v)),
        6 => (any::<Index>(), any::<Index>()).prop_map(|(n, v)| TreeEdit::Tweak(n, v)),
        2 => (any::<Index>(), any::<Index>()).prop_map(|(n, k)| TreeEdit::Remove(n, k)),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(n, k)| TreeEdit::Rename(n, k)),
        2 => (any::<Index>(), any::<Index>()).prop_map(|(n, k)| TreeEdit::Duplicate(n, k)),
        1 => (any::<Index>(), 100usize..100_000).prop_map(|(n, d)| TreeEdit::Nest(n, d)),
    ]
}

fn count_nodes(v: &Value) -> usize {
    1 + match v {
        Value::Array(a) => a.iter().map(count_nodes).sum(),
        Value::Object(o) => o.values().map(count_nodes).sum(),
        _ => 0,
    }
}

fn count_objects(v: &Value) -> usize {
    let own = usize::from(v.is_object());
    own + match v {
        Value::Array(a) => a.iter().map(count_objects).sum(),
        Value::Object(o) => o.values().map(count_objects).sum(),
        _ => 0,
    }
}

/// Calls `f` on the n-th node in pre-order (counting objects only when `objects`).
fn visit_nth(v: &mut Value, n: &mut usize, objects: bool, f: &mut dyn FnMut(&mut Value)) -> bool {
    if !objects || v.is_object() {
        if *n == 0 {
            f(v);
            return true;
        }
        *n -= 1;
    }
    match v {
        Value::Array(a) => a.iter_mut().any(|c| visit_nth(c, n, objects, f)),
        Value::Object(o) => o.values_mut().any(|c| visit_nth(c, n, objects, f)),
        _ => false,
    }
}

/// Writes `v` as JSON; a `"__dup__<key>"` key is written as `key` (so the object ends
/// up with `key` twice) and a `"__raw__"` string is written unquoted.
fn write_json(v: &Value, out: &mut String) {
    match v {
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(x, out);
            }
            out.push(']');
        }
        Value::Object(o) => {
            out.push('{');
            for (i, (k, x)) in o.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let k = k.strip_prefix("__dup__").unwrap_or(k);
                out.push_str(&serde_json::to_string(k).unwrap());
                out.push(':');
                write_json(x, out);
            }
            out.push('}');
        }
        Value::String(s) if s.starts_with("__raw__") => out.push_str(&s["__raw__".len()..]),
        other => out.push_str(&other.to_string()),
    }
}

/// Numbers and strings a field of the same type might hold, valid or not.
const NUMBERS: [&str; 18] = [
    "0",
    "-1",
    "1",
    "0.5",
    "1e308",
    "-1e308",
    "1e-300",
    "9",
    "10",
    "255",
    "256",
    "65535",
    "4294967295",
    "4294967296",
    "18446744073709551615",
    "-9223372036854775808",
    "1795464000",
    "31622401",
];
const STRINGS: [&str; 24] = [
    "",
    " ",
    "Luxury Travel",
    "Budget",
    "Family Activities",
    "home_hero",
    "sidebar",
    "lux-maldives",
    "fam-park",
    "house-ad",
    "evening",
    "tv",
    "behavioral",
    "third_party",
    "2026-02-30",
    "2026-11-01T00:00:00+25:00",
    "\u{0}",
    "\u{e9}",
    "(none)",
    "mobile",
    "thompson",
    "full",
    "delta",
    "intimate",
];

fn tweak(node: &mut Value, pick: &Index) {
    match node {
        Value::Number(_) | Value::Null => {
            *node = serde_json::from_str(NUMBERS[pick.index(NUMBERS.len())]).unwrap();
        }
        Value::String(_) => {
            let i = pick.index(STRINGS.len() + 1);
            *node = Value::String(STRINGS.get(i).map_or_else(|| "x".repeat(300), |s| s.to_string()));
        }
        Value::Bool(b) => *b = !*b,
        Value::Array(a) => match pick.index(3) {
            0 => {
                a.pop();
            }
            1 if !a.is_empty() => a.push(a[0].clone()),
            _ => a.clear(),
        },
        Value::Object(_) => {}
    }
}

fn apply_tree(doc: &str, edits: &[TreeEdit], values: &[Value]) -> String {
    let Ok(mut root) = serde_json::from_str::<Value>(doc) else { return doc.to_owned() };
    for edit in edits {
        let nodes = count_nodes(&root);
        let objects = count_objects(&root);
        match edit {
            TreeEdit::Set(n, v) => {
                let mut value = values[v.index(values.len())].clone();
                if let Value::String(s) = &value {
                    if s.starts_with('[') {
                        value = Value::String(format!("__raw__{s}"));
                    }
                }
                visit_nth(&mut root, &mut n.index(nodes), false, &mut |node| *node = value.clone());
            }
            TreeEdit::Tweak(n, v) => {
                visit_nth(&mut root, &mut n.index(nodes), false, &mut |node| tweak(node, v));
            }
            TreeEdit::Nest(n, depth) => {
                let raw = Value::String(format!("__raw__{}{}", "[".repeat(*depth), "]".repeat(*depth)));
                visit_nth(&mut root, &mut n.index(nodes), false, &mut |node| *node = raw.clone());
            }
            TreeEdit::Remove(n, k) | TreeEdit::Rename(n, k) | TreeEdit::Duplicate(n, k) if objects > 0 => {
                visit_nth(&mut root, &mut n.index(objects), true, &mut |node| {
                    let Some(map) = node.as_object_mut() else { return };
                    if map.is_empty() {
                        return;
                    }
                    let key = map.keys().nth(k.index(map.len())).cloned().unwrap_or_default();
                    match edit {
                        TreeEdit::Remove(..) => {
                            map.remove(&key);
                        }
                        TreeEdit::Rename(..) => {
                            if let Some(v) = map.remove(&key) {
                                map.insert(format!("{key}_typo"), v);
                            }
                        }
                        _ => {
                            let v = map[&key].clone();
                            map.insert(format!("__dup__{key}"), v);
                        }
                    }
                });
            }
            _ => {}
        }
    }
    let mut out = String::new();
    write_json(&root, &mut out);
    out
}

// ---------------------------------------------------------------------------------------
// The parsers under test.

/// Runs the parser of `doc` on `text` and checks the outcome: a value, or an error
/// with a message; and a peak allocation within the allowance. Returns whether it parsed.
fn parse(doc: Doc, text: &str, selector: &Selector) -> bool {
    let menu = selector.catalog().menu();
    let (bytes, outcome): (usize, std::result::Result<(), Error>) = peak(|| match doc {
        Doc::Catalog => {
            CatalogSpec::from_json(text)?;
            Catalog::from_json(text).map(drop)
        }
        Doc::Profile => Profile::from_json(menu, text).map(drop),
        Doc::Stats => {
            let snapshot = StatsSnapshot::from_json(text)?;
            let before = selector.save_stats();
            match selector.load_stats(&snapshot) {
                Ok(_) => {
                    let _ = selector.load_stats(&before).unwrap();
                    Ok(())
                }
                Err(e) => {
                    assert_eq!(selector.save_stats(), before, "a refused snapshot changed the statistics");
                    // `load` takes full snapshots only; `merge` takes deltas (and full
                    // snapshots) by design. Whatever else `load` refuses, `merge` refuses
                    // too, and a refusal changes nothing.
                    if snapshot.kind != SnapshotKind::Delta {
                        let merged = selector.merge_stats(&snapshot);
                        assert!(merged.is_err(), "load refused what merge took: {e}");
                    }
                    assert_eq!(selector.save_stats(), before);
                    Err(e)
                }
            }
        }
        Doc::Model => PersonaModel::from_json(menu, text).map(drop),
        Doc::Config => SelectorConfig::from_json(text).map(drop),
        Doc::DecisionLog => DecisionLogReader::new(std::io::Cursor::new(text.as_bytes()), "decisions.jsonl")
            .try_for_each(|r| r.map(drop)),
        Doc::ObdCsv => {
            let mut options = ObdImport { placement: Some("home_hero".into()), ..ObdImport::default() };
            read_obd_csv(
                std::io::Cursor::new(text.as_bytes()),
                "decisions.csv",
                selector.catalog(),
                &mut options,
            )
            .map(drop)
        }
    });
    assert!(
        bytes <= allowance(text.len()),
        "{doc:?}: {bytes} bytes at the peak for {} bytes of input",
        text.len()
    );
    match outcome {
        Ok(()) => true,
        Err(e) => {
            let message = e.to_string();
            assert!(!message.trim().is_empty(), "{doc:?}: an error without a message: {e:?}");
            false
        }
    }
}

// ---------------------------------------------------------------------------------------
// Reproducible campaigns.

/// The seed `cargo test` uses under CI (the `CI` variable set), so CI runs the same
/// campaign every time; elsewhere each run draws a fresh seed and explores further.
const CI_SEED: u64 = 0x5EED_0011;

/// A campaign's proptest configuration: `default_cases` cases unless `PROPTEST_CASES` is
/// set; the seed from `PROPTEST_RNG_SEED`, else [`CI_SEED`] under CI, else fresh. The
/// seed and the command that replays the run are printed first: the test harness
/// shows them when the test fails. The long campaign before a release:
/// `PROPTEST_CASES=250000 cargo test --release --test bad_input` (1,000,000 inputs).
fn campaign(default_cases: u32) -> ProptestConfig {
    let env = |name: &str| std::env::var(name).ok().and_then(|v| v.trim().parse::<u64>().ok());
    let cases = env("PROPTEST_CASES").map_or(default_cases, |n| u32::try_from(n).unwrap_or(u32::MAX));
    let seed = env("PROPTEST_RNG_SEED").unwrap_or_else(|| {
        if std::env::var_os("CI").is_some() {
            CI_SEED
        } else {
            use std::hash::{BuildHasher, Hasher};
            std::collections::hash_map::RandomState::new().build_hasher().finish()
        }
    });
    eprintln!(
        "campaign seed {seed}, {cases} cases; replay with \
         PROPTEST_RNG_SEED={seed} PROPTEST_CASES={cases} cargo test --test bad_input"
    );
    ProptestConfig {
        cases,
        rng_seed: proptest::test_runner::RngSeed::Fixed(seed),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn doc_kind() -> impl Strategy<Value = Doc> {
    proptest::sample::select(DOCS.to_vec())
}

/// Bytes shaped like JSON more often than not, so the parsers get past the first byte.
fn json_noise() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..512).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        "[\\[\\]{}\":,0-9a-z_\\-\\.eE+ \\\\]{0,300}",
        "\\{(\"[a-z_]{1,12}\": ?(\\[|\\{|[0-9]{1,25}|\"[a-z]{0,8}\"|null|true)[,}\\]]{0,3}){0,12}",
    ]
}

proptest! {
    #![proptest_config(campaign(160))]

    #[test]
    fn arbitrary_bytes_never_crash_any_parser(doc in doc_kind(), text in json_noise()) {
        let selector = busy_selector();
        parse(doc, &text, &selector);
    }

    #[test]
    fn mutated_text_of_valid_documents_never_crashes_any_parser(
        doc in doc_kind(),
        edits in proptest::collection::vec(text_edit(), 1..3),
    ) {
        let selector = busy_selector();
        let text = apply_text(&valid(doc), &edits, &snippets());
        parse(doc, &text, &selector);
    }

    #[test]
    fn mutated_trees_of_valid_documents_never_crash_any_parser(
        doc in doc_kind(),
        edits in proptest::collection::vec(tree_edit(), 1..3),
    ) {
        let selector = busy_selector();
        let text = apply_tree(&valid(doc), &edits, &nasty_values());
        parse(doc, &text, &selector);
    }
}

#[test]
fn every_valid_document_parses() {
    let selector = busy_selector();
    for doc in DOCS {
        assert!(parse(doc, &valid(doc), &selector), "{doc:?}");
        // The tree writer round-trips a document it did not change.
        assert!(parse(doc, &apply_tree(&valid(doc), &[], &[]), &selector), "{doc:?}");
    }
}

#[test]
fn deeply_nested_json_is_an_error_not_a_stack_overflow() {
    let selector = busy_selector();
    let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    let objects = |n: usize| format!("{}1{}", "{\"a\":".repeat(n), "}".repeat(n));
    for n in [129, 1_000, 100_000] {
        for doc in DOCS {
            assert!(!parse(doc, &deep(n), &selector));
            assert!(!parse(doc, &objects(n), &selector));
        }
        // Nested where the parser must buffer an arbitrary value (an untagged score, an
        // internally tagged policy): serde_json's recursion limit stops it.
        let score = format!(r#"{{"persona_scores": {{"Budget": {}}}}}"#, deep(n));
        let policy = format!(r#"{{"learning": {{"policy": {{"kind": "greedy", "x": {}}}}}}}"#, deep(n));
        for (doc, text) in [(Doc::Profile, score), (Doc::Config, policy)] {
            let err = match doc {
                Doc::Profile => Profile::from_json(selector.catalog().menu(), &text).unwrap_err(),
                _ => SelectorConfig::from_json(&text).unwrap_err(),
            };
            assert!(!err.to_string().is_empty());
        }
        let policy = format!(r#"{{"learning": {{"policy": {{"kind": "greedy", "x": {}}}}}}}"#, deep(n));
        let err = SelectorConfig::from_json(&policy).unwrap_err().to_string();
        assert!(err.contains("recursion limit exceeded"), "{err}");
    }
    // A payload is kept as raw text: deep nesting inside one is parsed without recursion
    // and bounded by MAX_PAYLOAD.
    let payload = |n: usize| {
        CATALOG.replacen(
            r#""payload": {"headline": "Where to next?"}"#,
            &format!(r#""payload": {}"#, deep(n)),
            1,
        )
    };
    assert!(parse(Doc::Catalog, &payload(1_000), &selector));
    let err = Catalog::from_json(&payload(40_000)).unwrap_err().to_string();
    assert!(err.contains("payload is 80000 bytes (at most 65536)"), "{err}");
}

#[test]
fn huge_numbers_nan_infinities_and_duplicates_are_errors_with_messages() {
    let selector = busy_selector();
    let menu = selector.catalog().menu();
    let cases: Vec<(Doc, String, &str)> = vec![
        (
            Doc::Catalog,
            CATALOG.replacen("\"priority\": 1.2", "\"priority\": 1e999", 1),
            "number out of range",
        ),
        (Doc::Catalog, CATALOG.replacen("\"priority\": 1.2", "\"priority\": NaN", 1), "expected value"),
        (
            Doc::Catalog,
            CATALOG.replacen("\"impressions\": 3", "\"impressions\": 4294967296", 1),
            "invalid value",
        ),
        (
            Doc::Catalog,
            CATALOG.replacen("\"version\"", "\"personas\": [\"A\"], \"version\"", 1),
            "duplicate field `personas`",
        ),
        (
            Doc::Catalog,
            CATALOG.replacen("\"Luxury Travel\": 1.0,", "\"Luxury Travel\": 1.0, \"Luxury Travel\": 2.0,", 1),
            "duplicate key 'Luxury Travel'",
        ),
        (
            Doc::Catalog,
            CATALOG.replacen("\"placements\": [\"home_hero\", \"sidebar\"],", "", 1),
            "missing field `placements`",
        ),
        (Doc::Profile, r#"{"first_seen": 9223372036854775808}"#.into(), "invalid value"),
        (
            Doc::Profile,
            r#"{"signals": [{"name": "x", "value": 1e39, "class": "behavioral", "at": 0}]}"#.into(),
            "must be finite",
        ),
        (Doc::Profile, r#"{"visits": 1, "visits": 2}"#.into(), "duplicate field `visits`"),
        (
            Doc::Stats,
            stats_json().replacen("\"impressions\":", "\"impressions\":18446744073709551616,\"x\":", 1),
            "invalid",
        ),
        (
            Doc::Stats,
            stats_json().replacen("\"format\"", "\"format\":\"x\",\"format\"", 1),
            "duplicate field `format`",
        ),
        (Doc::Model, MODEL.replacen("-2.5", "-1e400", 1), "number out of range"),
        (Doc::Model, MODEL.replacen("\"half_life_days\": 14", "\"half_life_days\": 0", 1), "half_life_days"),
        (Doc::Config, r#"{"prior": 1e39}"#.into(), "prior"),
        (Doc::Config, r#"{"learning": {"segment_cells": 18446744073709551615}}"#.into(), "segment_cells"),
        (Doc::Config, r#"{"threshold": 7, "threshold": 8}"#.into(), "duplicate field `threshold`"),
    ];
    for (doc, text, needle) in cases {
        let err = match doc {
            Doc::Catalog => Catalog::from_json(&text).unwrap_err(),
            Doc::Profile => Profile::from_json(menu, &text).unwrap_err(),
            Doc::Stats => StatsSnapshot::from_json(&text).unwrap_err(),
            Doc::Model => PersonaModel::from_json(menu, &text).unwrap_err(),
            Doc::Config => SelectorConfig::from_json(&text).unwrap_err(),
            Doc::DecisionLog | Doc::ObdCsv => unreachable!("not in this table"),
        };
        assert!(err.to_string().contains(needle), "{doc:?}: {err} (wanted {needle:?})");
    }
}

#[test]
fn a_map_of_100000_keys_parses_in_linear_time() {
    // Duplicate keys are refused in every JSON map; with a scan per key this took
    // minutes (100,000² / 2 comparisons). A hash set keeps it linear.
    let n = 100_000;
    let mut text = String::from(
        r#"{"format": "persona-engine/learned-stats", "version": 2, "kind": "full", "creatives": {"#,
    );
    for i in 0..n {
        text.push_str(&format!("\"c{i}\": {{}},"));
    }
    text.push_str("\"c7\": {}}}");
    let started = Instant::now();
    let err = StatsSnapshot::from_json(&text).unwrap_err();
    assert!(err.to_string().contains("duplicate key 'c7'"), "{err}");
    let ok = text.replace(",\"c7\": {}}}", "}}");
    assert_eq!(StatsSnapshot::from_json(&ok).unwrap().creatives.len(), n);
    assert!(started.elapsed().as_secs() < 20, "took {:?}", started.elapsed());
}

#[test]
fn documents_over_their_limit_are_refused_before_parsing() {
    let menu = catalog().menu().clone();
    for (limit, name, refuse) in [
        (
            MAX_PROFILE_BYTES,
            "MAX_PROFILE_BYTES",
            &(|t: &str| Profile::from_json(&menu, t).map(drop))
                as &dyn Fn(&str) -> persona_engine::Result<()>,
        ),
        (MAX_MODEL_BYTES, "MAX_MODEL_BYTES", &|t: &str| PersonaModel::from_json(&menu, t).map(drop)),
        (MAX_SPEC_BYTES, "MAX_SPEC_BYTES", &|t: &str| Catalog::from_json(t).map(drop)),
    ] {
        // Whitespace: valid JSON up to the limit, so only the size check can refuse it.
        let text = " ".repeat(limit + 1);
        let (bytes, result) = peak(|| refuse(&text));
        let err = result.unwrap_err();
        assert!(matches!(err, Error::TooLarge { .. }), "{err}");
        assert!(
            err.to_string().ends_with(&format!("{} bytes is more than {name} ({limit} bytes)", limit + 1)),
            "{err}"
        );
        assert!(bytes < 4096, "refused without parsing: {bytes} bytes allocated");
    }
    // MAX_SNAPSHOT_BYTES (1 GiB) is proven on a sparse file in tests/durable.rs.
    assert_eq!(MAX_SNAPSHOT_BYTES, 1 << 30);
}

// ---------------------------------------------------------------------------------------
// The C ABI: random call sequences over live handles, with NULLs, zero lengths, invalid
// UTF-8, out-of-range numbers, NaN and infinities, mutated documents and small buffers.
// Handles are always valid or NULL (a dangling pointer is beyond what any C API can
// check); everything else is fair game.

use std::ffi::{c_char, CStr};
use std::ptr::{null, null_mut};

use persona_engine::ffi::*;

/// A string argument: NULL with some length, or bytes.
#[derive(Clone, Debug)]
enum Arg {
    Null(usize),
    Bytes(Vec<u8>),
}

impl Arg {
    fn parts(&self) -> (*const c_char, usize) {
        match self {
            Arg::Null(len) => (null(), *len),
            Arg::Bytes(b) => (b.as_ptr().cast(), b.len()),
        }
    }
}

fn null_arg() -> impl Strategy<Value = Arg> {
    prop_oneof![Just(0usize), Just(1), Just(5), Just(usize::MAX)].prop_map(Arg::Null)
}

/// Names C might pass: real ones, near misses, empty, invalid UTF-8, random, long.
fn name_arg() -> impl Strategy<Value = Arg> {
    let mut names: Vec<Vec<u8>> = [
        "home_hero",
        "sidebar",
        "app_banner",
        "email_block",
        "Luxury Travel",
        "Beach Lover",
        "lux-maldives-overwater",
        "nowhere",
        "",
        " ",
        "home_hero\0",
        "(none)",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    let selector = Selector::new(sample::catalog().unwrap(), SelectorConfig::default()).unwrap();
    names.extend(
        (0..5).map(|i| selector.catalog().creative_id(persona_engine::CreativeId(i)).as_bytes().to_vec()),
    );
    names.extend([vec![0xff, 0xfe], b"abc\xc3".to_vec(), b"\xed\xa0\x80".to_vec(), vec![b'a'; 10_000]]);
    prop_oneof![
        6 => proptest::sample::select(names).prop_map(Arg::Bytes),
        2 => proptest::collection::vec(any::<u8>(), 0..24).prop_map(Arg::Bytes),
        1 => null_arg(),
    ]
}

/// The JSON documents the C ABI takes, valid or broken.
fn json_arg(docs: Vec<String>) -> impl Strategy<Value = Arg> {
    let snippets = snippets();
    let mutated = (proptest::sample::select(docs.clone()), proptest::collection::vec(text_edit(), 1..3))
        .prop_map(move |(doc, edits)| Arg::Bytes(apply_text(&doc, &edits, &snippets).into_bytes()));
    prop_oneof![
        3 => proptest::sample::select(docs).prop_map(|d| Arg::Bytes(d.into_bytes())),
        4 => mutated,
        1 => json_noise().prop_map(|t| Arg::Bytes(t.into_bytes())),
        1 => proptest::collection::vec(any::<u8>(), 0..64).prop_map(Arg::Bytes),
        1 => null_arg(),
    ]
}

struct Docs {
    catalogs: Vec<String>,
    configs: Vec<String>,
    profiles: Vec<String>,
    stats: Vec<String>,
    paths: Vec<Vec<u8>>,
}

fn docs() -> Docs {
    let selector = Selector::new(sample::catalog().unwrap(), SelectorConfig::default()).unwrap();
    let menu = selector.catalog().menu();
    let people = sample::people(menu).unwrap();
    let mut busy = people[0].profile.clone();
    let c = selector.creative(selector.catalog().creative_id(persona_engine::CreativeId(3))).unwrap();
    for kind in [FeedbackKind::Impression, FeedbackKind::Click, FeedbackKind::Conversion { value: 80.0 }] {
        selector.record(&mut busy, &Feedback::new(c, kind, &people[0].context)).unwrap();
    }
    let mut delta = selector.export_delta();
    delta.kind = persona_engine::learn::SnapshotKind::Delta;
    let root = env!("CARGO_MANIFEST_DIR");
    Docs {
        catalogs: vec![sample::CATALOG_JSON.to_owned(), CATALOG.to_owned()],
        configs: vec![config_json(), "{}".into(), r#"{"learning": {"policy": {"kind": "thompson"}}}"#.into()],
        profiles: people
            .iter()
            .map(|p| p.profile.to_json(menu).unwrap())
            .chain([busy.to_json(menu).unwrap()])
            .collect(),
        stats: vec![selector.save_stats().to_json().unwrap(), delta.to_json().unwrap(), stats_json()],
        paths: vec![
            format!("{root}/data/sample_catalog.json").into_bytes(),
            b"/nonexistent/catalog.json".to_vec(),
            b"/".to_vec(),
            b"/dev/null".to_vec(),
            root.as_bytes().to_vec(),
            vec![b'/', 0xff, b'x'],
            Vec::new(),
        ],
    }
}

/// An output string buffer: a length query, a small or a large buffer, or a NULL length.
#[derive(Clone, Copy, Debug)]
enum Buf {
    Query,
    Small,
    Large,
    NullBufWithCap,
    NullLen,
}

fn buf() -> impl Strategy<Value = Buf> {
    prop_oneof![
        Just(Buf::Query),
        Just(Buf::Small),
        Just(Buf::Large),
        Just(Buf::NullBufWithCap),
        Just(Buf::NullLen)
    ]
}

#[derive(Clone, Debug)]
struct Ctx {
    at: i64,
    offset: i32,
    device: u32,
    channel: u32,
    weather: u32,
    seed: u64,
    region: Arg,
    attributes: Option<Vec<(Arg, Arg)>>,
    claimed: usize,
}

fn ctx_arg() -> impl Strategy<Value = Option<Ctx>> {
    let at = prop_oneof![
        Just(i64::MIN),
        Just(i64::MAX),
        Just(0i64),
        (sample::NOW - 400 * 86_400)..(sample::NOW + 400 * 86_400),
        any::<i64>()
    ];
    let offset = prop_oneof![1 => Just(0i32), 6 => -1080..=1080i32, 1 => any::<i32>()];
    // Mostly valid values (so the call gets through to the engine), sometimes any.
    let small = |n: u32| prop_oneof![9 => 0..n, 1 => any::<u32>()];
    let plain = || {
        proptest::sample::select(vec!["FR", "GB", "US-CA", "tier", "gold", "x"])
            .prop_map(|s| Arg::Bytes(s.into()))
    };
    let region = prop_oneof![3 => Just(Arg::Null(0)), 2 => plain(), 1 => name_arg()];
    let attributes = prop_oneof![
        1 => Just(None),
        3 => proptest::collection::vec((plain(), plain()), 0..4).prop_map(Some),
        1 => proptest::collection::vec((name_arg(), name_arg()), 0..11).prop_map(Some),
    ];
    prop_oneof![
        1 => Just(None),
        12 => (at, offset, small(5), small(6), small(7), any::<u64>(), region, attributes, 0usize..12)
            .prop_map(|(at, offset, device, channel, weather, seed, region, attributes, claimed)| Some(Ctx {
                at, offset, device, channel, weather, seed, region, attributes, claimed,
            })),
    ]
}

/// A handle argument: NULL, or one of the live handles of its type.
type Slot = Option<Index>;

fn slot() -> impl Strategy<Value = Slot> {
    prop_oneof![1 => Just(None), 8 => any::<Index>().prop_map(Some)]
}

#[derive(Clone, Debug)]
enum Op {
    NewSelector(Arg, Arg, bool),
    NewSelectorFromFile(Arg, Arg),
    FreeSelector(Index),
    Placement(Slot, Arg, bool),
    SetShadow(Slot, u16, bool),
    Creative(Slot, Arg),
    CreativeText(Slot, u32, Buf, u8),
    PersonaName(Slot, u16, Buf),
    Explain(Slot, Slot, usize, Buf),
    NewProfile(Slot, i64, bool),
    ProfileFromJson(Slot, Arg),
    FreeProfile(Index),
    ProfileToJson(Slot, Buf),
    SetScore(Slot, Arg, u32, u32),
    AddSignal(Slot, Arg, f32, u32, i64),
    SetConsent(Slot, u32, bool),
    SetConsentMask(Slot, u32),
    SetRelationship(Slot, i64, u32),
    Declare(Slot, Arg, bool),
    NewSelection(Slot, usize),
    FreeSelection(Index),
    Select(Slot, Slot, Option<Ctx>, u16, Slot),
    Read(Slot, usize, u8, bool),
    Exclude(Slot, u32),
    ClearExclusions(Slot),
    Record(Slot, Slot, Option<Ctx>, u32, u32, f64),
    StatsSave(Slot, Buf),
    StatsLoad(Slot, Arg, bool),
    ExportDelta(Slot, bool),
    BlobJson(Slot, Buf),
    FreeBlob(Index),
    LastError(Buf),
    StatusName(u32),
}

fn op(docs: &Docs) -> impl Strategy<Value = Op> {
    let catalogs = json_arg(docs.catalogs.clone());
    let configs = prop_oneof![3 => Just(Arg::Null(0)), 2 => json_arg(docs.configs.clone())];
    let paths = prop_oneof![
        4 => proptest::sample::select(docs.paths.clone()).prop_map(Arg::Bytes),
        1 => null_arg(),
    ];
    let profiles = json_arg(docs.profiles.clone());
    let stats = json_arg(docs.stats.clone());
    let index = prop_oneof![0..12usize, Just(usize::MAX), any::<usize>()];
    let creative = prop_oneof![0..80u32, Just(u32::MAX), any::<u32>()];
    let id16 = prop_oneof![0..16u16, Just(u16::MAX), any::<u16>()];
    let at = prop_oneof![
        Just(i64::MIN),
        Just(i64::MAX),
        (sample::NOW - 1_000 * 86_400)..sample::NOW,
        any::<i64>()
    ];
    let real = prop_oneof![
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(-1.0),
        Just(0.0),
        Just(49.5),
        Just(1e9),
        Just(1e9 + 1.0),
        Just(f64::MAX),
        Just(f64::MIN_POSITIVE),
        any::<f64>()
    ];
    let real32 = prop_oneof![Just(f32::NAN), Just(f32::INFINITY), Just(-0.0f32), Just(3.0f32), any::<f32>()];
    let small = |n: u32| prop_oneof![9 => 0..n, 1 => any::<u32>()];
    let placement = prop_oneof![8 => 0..4u16, 1 => any::<u16>()];
    prop_oneof![
        2 => (catalogs, configs.clone(), any::<bool>()).prop_map(|(j, c, o)| Op::NewSelector(j, c, o)),
        1 => (paths, configs).prop_map(|(p, c)| Op::NewSelectorFromFile(p, c)),
        1 => any::<Index>().prop_map(Op::FreeSelector),
        2 => (slot(), name_arg(), any::<bool>()).prop_map(|(s, n, o)| Op::Placement(s, n, o)),
        1 => (slot(), id16.clone(), any::<bool>()).prop_map(|(s, p, b)| Op::SetShadow(s, p, b)),
        2 => (slot(), name_arg()).prop_map(|(s, n)| Op::Creative(s, n)),
        2 => (slot(), creative.clone(), buf(), any::<u8>()).prop_map(|(s, c, b, w)| Op::CreativeText(s, c, b, w)),
        1 => (slot(), id16.clone(), buf()).prop_map(|(s, p, b)| Op::PersonaName(s, p, b)),
        2 => (slot(), slot(), index.clone(), buf()).prop_map(|(s, x, i, b)| Op::Explain(s, x, i, b)),
        2 => (slot(), at.clone(), any::<bool>()).prop_map(|(s, t, o)| Op::NewProfile(s, t, o)),
        2 => (slot(), profiles).prop_map(|(s, j)| Op::ProfileFromJson(s, j)),
        1 => any::<Index>().prop_map(Op::FreeProfile),
        1 => (slot(), buf()).prop_map(|(s, b)| Op::ProfileToJson(s, b)),
        2 => (slot(), name_arg(), small(11), small(64)).prop_map(|(s, n, v, m)| Op::SetScore(s, n, v, m)),
        1 => (slot(), name_arg(), real32, small(6), at.clone()).prop_map(|(s, n, v, c, t)| Op::AddSignal(s, n, v, c, t)),
        1 => (slot(), small(6), any::<bool>()).prop_map(|(s, c, g)| Op::SetConsent(s, c, g)),
        1 => (slot(), small(64)).prop_map(|(s, m)| Op::SetConsentMask(s, m)),
        1 => (slot(), at, any::<u32>()).prop_map(|(s, t, v)| Op::SetRelationship(s, t, v)),
        1 => (slot(), name_arg(), any::<bool>()).prop_map(|(s, n, l)| Op::Declare(s, n, l)),
        2 => (slot(), prop_oneof![0..5usize, Just(256), Just(257), Just(usize::MAX)]).prop_map(|(s, k)| Op::NewSelection(s, k)),
        1 => any::<Index>().prop_map(Op::FreeSelection),
        6 => (slot(), slot(), ctx_arg(), placement, slot()).prop_map(|(s, p, c, x, n)| Op::Select(s, p, c, x, n)),
        4 => (slot(), index, any::<u8>(), any::<bool>()).prop_map(|(s, i, w, o)| Op::Read(s, i, w, o)),
        1 => (slot(), creative.clone()).prop_map(|(s, c)| Op::Exclude(s, c)),
        1 => slot().prop_map(Op::ClearExclusions),
        4 => (slot(), slot(), ctx_arg(), creative, small(6), real).prop_map(|(s, p, c, x, k, v)| Op::Record(s, p, c, x, k, v)),
        1 => (slot(), buf()).prop_map(|(s, b)| Op::StatsSave(s, b)),
        2 => (slot(), stats, any::<bool>()).prop_map(|(s, j, m)| Op::StatsLoad(s, j, m)),
        1 => (slot(), any::<bool>()).prop_map(|(s, o)| Op::ExportDelta(s, o)),
        1 => (slot(), buf()).prop_map(|(s, b)| Op::BlobJson(s, b)),
        1 => any::<Index>().prop_map(Op::FreeBlob),
        1 => buf().prop_map(Op::LastError),
        1 => any::<u32>().prop_map(Op::StatusName),
    ]
}

/// The live handles of one sequence.
#[derive(Default)]
struct World {
    selectors: Vec<*mut pe_selector>,
    profiles: Vec<*mut pe_profile>,
    selections: Vec<*mut pe_selection>,
    blobs: Vec<*mut pe_stats_blob>,
}

fn get<T>(handles: &[*mut T], slot: &Slot) -> *mut T {
    match slot {
        Some(i) if !handles.is_empty() => handles[i.index(handles.len())],
        _ => null_mut(),
    }
}

fn take<T>(handles: &mut Vec<*mut T>, i: &Index) -> *mut T {
    if handles.is_empty() {
        null_mut()
    } else {
        handles.swap_remove(i.index(handles.len()))
    }
}

/// The calling thread's last error message, read into a buffer sized from the length
/// the library reports (messages quote input, so no fixed size is safe to guess).
fn last_error() -> String {
    let mut needed = usize::MAX;
    let status = unsafe { pe_last_error_message(null_mut(), 0, &mut needed) };
    assert!(
        matches!(status, pe_status::Ok | pe_status::BufferTooSmall),
        "asking for the message length answered {status:?}"
    );
    let mut buf = vec![0 as c_char; needed + 1];
    let mut len = 0usize;
    let status = unsafe { pe_last_error_message(buf.as_mut_ptr(), buf.len(), &mut len) };
    assert_eq!(status, pe_status::Ok);
    let text = unsafe { CStr::from_ptr(buf.as_ptr()) }.to_str().unwrap().to_owned();
    assert_eq!(text.len(), len);
    text
}

const SENTINEL: &str = "unknown placement '__sentinel__'";

/// Makes the last error a known message, so a failing call that forgot to set its own
/// is caught.
fn set_sentinel(base: *const pe_selector) {
    let name = "__sentinel__";
    let mut id = 0u16;
    let status = unsafe { pe_selector_placement(base, name.as_ptr().cast(), name.len(), &mut id) };
    assert_eq!(status, pe_status::UnknownName);
}

/// Calls a string-returning entry point with the buffer `b`; on
/// `PE_STATUS_BUFFER_TOO_SMALL` checks that a buffer of the reported length + 1 works.
fn with_buf(b: Buf, call: &mut dyn FnMut(*mut c_char, usize, *mut usize) -> pe_status) -> pe_status {
    let mut storage = vec![0 as c_char; 1 << 16];
    let mut len = usize::MAX;
    let status = match b {
        Buf::Query => call(null_mut(), 0, &mut len),
        Buf::Small => call(storage.as_mut_ptr(), 4, &mut len),
        Buf::Large => call(storage.as_mut_ptr(), storage.len(), &mut len),
        Buf::NullBufWithCap => call(null_mut(), 16, &mut len),
        Buf::NullLen => call(storage.as_mut_ptr(), storage.len(), null_mut()),
    };
    if status == pe_status::BufferTooSmall {
        assert_ne!(len, usize::MAX, "BUFFER_TOO_SMALL must report the length needed");
        let mut exact = vec![0 as c_char; len + 1];
        let mut again = 0usize;
        let retry = call(exact.as_mut_ptr(), exact.len(), &mut again);
        assert_eq!(retry, pe_status::Ok, "a buffer of the reported length + 1 must do");
        assert_eq!(again, len);
        assert_eq!(unsafe { CStr::from_ptr(exact.as_ptr()) }.to_bytes().len(), len);
    }
    status
}

/// The C context for `ctx`, with the attribute array it points to.
fn c_context(ctx: &Ctx) -> (pe_context, Vec<pe_attribute>) {
    let attributes: Vec<pe_attribute> = ctx
        .attributes
        .iter()
        .flatten()
        .map(|(k, v)| {
            let ((key, key_len), (value, value_len)) = (k.parts(), v.parts());
            pe_attribute { key, key_len, value, value_len }
        })
        .collect();
    let (region, region_len) = ctx.region.parts();
    let (pointer, count) = match &ctx.attributes {
        // A NULL array with a count: NULL_PARAMETER (nothing is read).
        None => (null(), ctx.claimed),
        Some(_) => (attributes.as_ptr(), attributes.len()),
    };
    let c = pe_context {
        at: ctx.at,
        utc_offset_minutes: ctx.offset,
        device: ctx.device,
        channel: ctx.channel,
        weather: ctx.weather,
        seed: ctx.seed,
        region,
        region_len,
        attributes: pointer,
        attribute_count: count,
    };
    (c, attributes)
}

/// Runs one call; returns its status (or `Ok` for calls without one).
fn run(op: &Op, w: &mut World) -> pe_status {
    let sel = |s: &Slot, w: &World| get(&w.selectors, s).cast_const();
    unsafe {
        match op {
            Op::NewSelector(json, config, null_out) => {
                let ((j, jl), (c, cl)) = (json.parts(), config.parts());
                let mut out = null_mut();
                let status =
                    pe_selector_new_from_json(j, jl, c, cl, if *null_out { null_mut() } else { &mut out });
                if status == pe_status::Ok && !*null_out {
                    assert!(!out.is_null());
                    w.selectors.push(out);
                } else {
                    assert!(out.is_null(), "out-parameter written on failure");
                }
                status
            }
            Op::NewSelectorFromFile(path, config) => {
                let ((p, pl), (c, cl)) = (path.parts(), config.parts());
                let mut out = null_mut();
                let status = pe_selector_new_from_file(p, pl, c, cl, &mut out);
                if status == pe_status::Ok {
                    w.selectors.push(out);
                }
                status
            }
            Op::FreeSelector(i) => {
                pe_selector_free(take(&mut w.selectors, i));
                pe_status::Ok
            }
            Op::Placement(s, name, null_out) => {
                let (n, nl) = name.parts();
                let mut id = 0u16;
                pe_selector_placement(sel(s, w), n, nl, if *null_out { null_mut() } else { &mut id })
            }
            Op::SetShadow(s, placement, on) => pe_selector_set_shadow(sel(s, w), *placement, *on),
            Op::Creative(s, id) => {
                let (n, nl) = id.parts();
                let mut c = 0u32;
                pe_selector_creative(sel(s, w), n, nl, &mut c)
            }
            Op::CreativeText(s, creative, b, which) => {
                let s = sel(s, w);
                with_buf(*b, &mut |buf, cap, len| {
                    if which % 2 == 0 {
                        pe_selector_creative_id(s, *creative, buf, cap, len)
                    } else {
                        pe_selector_creative_payload(s, *creative, buf, cap, len)
                    }
                })
            }
            Op::PersonaName(s, persona, b) => {
                let s = sel(s, w);
                with_buf(*b, &mut |buf, cap, len| pe_selector_persona_name(s, *persona, buf, cap, len))
            }
            Op::Explain(s, x, index, b) => {
                let (s, x) = (sel(s, w), get(&w.selections, x).cast_const());
                with_buf(*b, &mut |buf, cap, len| pe_selector_explain(s, x, *index, buf, cap, len))
            }
            Op::NewProfile(s, now, null_out) => {
                let mut out = null_mut();
                let status = pe_profile_new(sel(s, w), *now, if *null_out { null_mut() } else { &mut out });
                if status == pe_status::Ok && !*null_out {
                    w.profiles.push(out);
                }
                status
            }
            Op::ProfileFromJson(s, json) => {
                let (j, jl) = json.parts();
                let mut out = null_mut();
                let status = pe_profile_new_from_json(sel(s, w), j, jl, &mut out);
                if status == pe_status::Ok {
                    w.profiles.push(out);
                }
                status
            }
            Op::FreeProfile(i) => {
                pe_profile_free(take(&mut w.profiles, i));
                pe_status::Ok
            }
            Op::ProfileToJson(p, b) => {
                let p = get(&w.profiles, p).cast_const();
                with_buf(*b, &mut |buf, cap, len| pe_profile_to_json(p, buf, cap, len))
            }
            Op::SetScore(p, persona, score, sources) => {
                let (n, nl) = persona.parts();
                pe_profile_set_score(get(&w.profiles, p), n, nl, *score, *sources)
            }
            Op::AddSignal(p, name, value, class, at) => {
                let (n, nl) = name.parts();
                pe_profile_add_signal(get(&w.profiles, p), n, nl, *value, *class, *at)
            }
            Op::SetConsent(p, class, granted) => {
                pe_profile_set_consent(get(&w.profiles, p), *class, *granted)
            }
            Op::SetConsentMask(p, mask) => pe_profile_set_consent_mask(get(&w.profiles, p), *mask),
            Op::SetRelationship(p, first_seen, visits) => {
                pe_profile_set_relationship(get(&w.profiles, p), *first_seen, *visits)
            }
            Op::Declare(p, persona, like) => {
                let (n, nl) = persona.parts();
                if *like {
                    pe_profile_declare_like(get(&w.profiles, p), n, nl)
                } else {
                    pe_profile_declare_dislike(get(&w.profiles, p), n, nl)
                }
            }
            Op::NewSelection(s, k) => {
                let mut out = null_mut();
                let status = pe_selection_new(sel(s, w), *k, &mut out);
                if status == pe_status::Ok {
                    w.selections.push(out);
                }
                status
            }
            Op::FreeSelection(i) => {
                pe_selection_free(take(&mut w.selections, i));
                pe_status::Ok
            }
            Op::Select(s, p, ctx, placement, x) => {
                let (s, p, x) = (sel(s, w), get(&w.profiles, p).cast_const(), get(&w.selections, x));
                let context = ctx.as_ref().map(c_context);
                let c = context.as_ref().map_or(null(), |(c, _)| c as *const pe_context);
                let status = pe_select(s, p, c, *placement, x);
                if status == pe_status::Ok {
                    // Every pick names a creative of this selector's catalog.
                    let mut count = usize::MAX;
                    assert_eq!(pe_selection_count(x, &mut count), pe_status::Ok);
                    assert!(count <= 256);
                    for i in 0..count {
                        let mut creative = u32::MAX;
                        assert_eq!(pe_selection_creative(x, i, &mut creative), pe_status::Ok);
                        let mut len = 0;
                        let status = pe_selector_creative_id(s, creative, null_mut(), 0, &mut len);
                        assert_eq!(status, pe_status::BufferTooSmall, "pick {i}: creative {creative}");
                    }
                }
                status
            }
            Op::Read(x, index, what, null_out) => {
                let x = get(&w.selections, x).cast_const();
                let (mut n, mut c, mut f, mut g, mut h, mut k, mut kind, mut persona, mut score) =
                    (0usize, 0u32, 0f32, 0f32, 0f32, 0f32, 0u32, 0u16, 0u8);
                macro_rules! out {
                    ($v:expr) => {
                        if *null_out {
                            null_mut()
                        } else {
                            $v
                        }
                    };
                }
                match what % 11 {
                    0 => pe_selection_count(x, out!(&mut n)),
                    1 => pe_selection_creative(x, *index, out!(&mut c)),
                    2 => pe_selection_score(x, *index, out!(&mut f)),
                    3 => pe_selection_propensity(x, *index, out!(&mut f)),
                    4 => pe_selection_reason_kind(x, *index, out!(&mut kind)),
                    5 => pe_selection_reason_persona(x, *index, out!(&mut persona), &mut score),
                    6 => pe_selection_reason_details(x, *index, &mut f, &mut g, out!(&mut h), &mut k),
                    7 => pe_selection_shadow_count(x, out!(&mut n)),
                    8 => pe_selection_shadow_creative(x, *index, out!(&mut c)),
                    9 => pe_selection_shadow_score(x, *index, out!(&mut f)),
                    _ => pe_selection_shadow_propensity(x, *index, out!(&mut f)),
                }
            }
            Op::Exclude(x, creative) => pe_selection_exclude(get(&w.selections, x), *creative),
            Op::ClearExclusions(x) => pe_selection_clear_exclusions(get(&w.selections, x)),
            Op::Record(s, p, ctx, creative, kind, value) => {
                let context = ctx.as_ref().map(c_context);
                let c = context.as_ref().map_or(null(), |(c, _)| c as *const pe_context);
                pe_record(sel(s, w), get(&w.profiles, p), c, *creative, *kind, *value)
            }
            Op::StatsSave(s, b) => {
                let s = sel(s, w);
                with_buf(*b, &mut |buf, cap, len| pe_selector_stats_save(s, buf, cap, len))
            }
            Op::StatsLoad(s, json, merge) => {
                let (j, jl) = json.parts();
                let s = sel(s, w);
                // A refused snapshot changes nothing.
                let before = (!s.is_null()).then(|| save(s));
                let status = if *merge {
                    pe_selector_stats_merge(s, j, jl, &mut pe_stats_report::default())
                } else {
                    pe_selector_stats_load(s, j, jl, &mut pe_stats_report::default())
                };
                if status != pe_status::Ok {
                    assert_eq!(
                        before,
                        (!s.is_null()).then(|| save(s)),
                        "a refused snapshot changed the statistics"
                    );
                }
                status
            }
            Op::ExportDelta(s, null_out) => {
                let mut out = null_mut();
                let status =
                    pe_selector_stats_export_delta(sel(s, w), if *null_out { null_mut() } else { &mut out });
                if status == pe_status::Ok && !*null_out {
                    w.blobs.push(out);
                }
                status
            }
            Op::BlobJson(blob, b) => {
                let blob = get(&w.blobs, blob).cast_const();
                with_buf(*b, &mut |buf, cap, len| pe_stats_blob_json(blob, buf, cap, len))
            }
            Op::FreeBlob(i) => {
                pe_stats_blob_free(take(&mut w.blobs, i));
                pe_status::Ok
            }
            Op::LastError(b) => {
                with_buf(*b, &mut |buf, cap, len| pe_last_error_message(buf, cap, len));
                pe_status::Ok
            }
            Op::StatusName(value) => {
                let name = CStr::from_ptr(pe_status_name(*value)).to_str().unwrap();
                assert!(name.starts_with("PE_STATUS_"));
                pe_status::Ok
            }
        }
    }
}

fn save(selector: *const pe_selector) -> String {
    let mut len = 0;
    assert_eq!(
        unsafe { pe_selector_stats_save(selector, null_mut(), 0, &mut len) },
        pe_status::BufferTooSmall
    );
    let mut buf = vec![0 as c_char; len + 1];
    assert_eq!(
        unsafe { pe_selector_stats_save(selector, buf.as_mut_ptr(), buf.len(), &mut len) },
        pe_status::Ok
    );
    unsafe { CStr::from_ptr(buf.as_ptr()) }.to_str().unwrap().to_owned()
}

proptest! {
    // PROPTEST_CASES overrides the count (.ci/run runs a few under valgrind).
    #![proptest_config(campaign(64))]

    #[test]
    fn random_c_call_sequences_always_get_a_status_and_a_message(ops in proptest::collection::vec(op(&docs()), 1..40)) {
        // A world to start from: the sample selector, a profile, a selection.
        let (json, len) = (sample::CATALOG_JSON.as_ptr().cast(), sample::CATALOG_JSON.len());
        let mut base = null_mut();
        assert_eq!(unsafe { pe_selector_new_from_json(json, len, null(), 0, &mut base) }, pe_status::Ok);
        let mut world = World::default();
        world.selectors.push(base);
        let (mut profile, mut selection) = (null_mut(), null_mut());
        assert_eq!(unsafe { pe_profile_new(base, sample::NOW - 30 * 86_400, &mut profile) }, pe_status::Ok);
        assert_eq!(unsafe { pe_selection_new(base, 3, &mut selection) }, pe_status::Ok);
        world.profiles.push(profile);
        world.selections.push(selection);
        let mut sentinel = null_mut();
        assert_eq!(unsafe { pe_selector_new_from_json(json, len, null(), 0, &mut sentinel) }, pe_status::Ok);

        for op in &ops {
            set_sentinel(sentinel);
            let status = run(op, &mut world);
            prop_assert!((status as u32) <= 10);
            prop_assert_ne!(status, pe_status::Panic, "{:?}: {}", op, last_error());
            if status != pe_status::Ok {
                let message = last_error();
                prop_assert!(!message.trim().is_empty(), "{:?} gave {:?} without a message", op, status);
                prop_assert_ne!(message.as_str(), SENTINEL, "{:?} gave {:?} but left the last error unset", op, status);
            }
        }
        unsafe {
            for s in world.selectors.drain(..).chain([sentinel]) {
                pe_selector_free(s);
            }
            world.profiles.drain(..).for_each(|p| pe_profile_free(p));
            world.selections.drain(..).for_each(|x| pe_selection_free(x));
            world.blobs.drain(..).for_each(|b| pe_stats_blob_free(b));
        }
    }
}
