//! The bad-input campaign. Property tests feed arbitrary bytes, JSON-shaped noise and
//! mutated valid documents to every parser (catalog spec, profile, statistics snapshot,
//! persona model, selector configuration) and random call sequences to the C ABI (NULL
//! pointers, zero lengths, invalid UTF-8, huge numbers, NaN and infinities, duplicate
//! and missing fields, deep nesting). Every case returns either a value or an error
//! with a message; none panics (proptest fails on a panic; the C ABI must never answer
//! `PE_STATUS_PANIC`), none hangs (the suite is timed and a 200,000-key document parses
//! in linear time), and none allocates out of proportion to its input (a counting
//! allocator measures the peak of every parse).
//!
//! This file owns the binary's global allocator, so it holds these tests alone.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use std::time::Instant;

use persona_engine::learn::StatsSnapshot;
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

struct Counting;

thread_local! {
    static ON: Cell<bool> = const { Cell::new(false) };
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn track(delta: isize) {
    // `try_with`: thread-locals may be gone while a thread shuts down.
    let _ = ON.try_with(|on| {
        if on.get() {
            let _ = LIVE.try_with(|live| {
                let now = live.get() + delta;
                live.set(now);
                let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
            });
        }
    });
}

// SAFETY: defers to the system allocator; counting touches only const thread-locals.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        track(layout.size() as isize);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        track(-(layout.size() as isize));
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        track(layout.size() as isize);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        track(new_size as isize - layout.size() as isize);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The most bytes live at once on this thread while `f` ran (beyond what was live
/// before), and its result.
fn peak<R>(f: impl FnOnce() -> R) -> (usize, R) {
    LIVE.with(|l| l.set(0));
    PEAK.with(|p| p.set(0));
    ON.with(|on| on.set(true));
    let r = f();
    ON.with(|on| on.set(false));
    (PEAK.with(Cell::get).max(0) as usize, r)
}

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

/// Which document a test mutates.
#[derive(Clone, Copy, Debug)]
enum Doc {
    Catalog,
    Profile,
    Stats,
    Model,
    Config,
}

fn valid(doc: Doc) -> String {
    match doc {
        Doc::Catalog => CATALOG.to_owned(),
        Doc::Profile => profile_json(),
        Doc::Stats => stats_json(),
        Doc::Model => MODEL.to_owned(),
        Doc::Config => config_json(),
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
                    selector.load_stats(&before).unwrap();
                    Ok(())
                }
                Err(e) => {
                    assert_eq!(selector.save_stats(), before, "a refused snapshot changed the statistics");
                    let merged = selector.merge_stats(&snapshot);
                    assert!(merged.is_err(), "load refused what merge took: {e}");
                    assert_eq!(selector.save_stats(), before);
                    Err(e)
                }
            }
        }
        Doc::Model => PersonaModel::from_json(menu, text).map(drop),
        Doc::Config => SelectorConfig::from_json(text).map(drop),
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

fn doc_kind() -> impl Strategy<Value = Doc> {
    prop_oneof![Just(Doc::Catalog), Just(Doc::Profile), Just(Doc::Stats), Just(Doc::Model), Just(Doc::Config)]
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
    #![proptest_config(ProptestConfig { cases: 160, failure_persistence: None, ..ProptestConfig::default() })]

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
    for doc in [Doc::Catalog, Doc::Profile, Doc::Stats, Doc::Model, Doc::Config] {
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
        for doc in [Doc::Catalog, Doc::Profile, Doc::Stats, Doc::Model, Doc::Config] {
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
        };
        assert!(err.to_string().contains(needle), "{doc:?}: {err} (wanted {needle:?})");
    }
}

#[test]
fn a_map_of_200000_keys_parses_in_linear_time() {
    // Duplicate keys are refused in every JSON map; with a scan per key this took
    // minutes (200,000² / 2 comparisons). A hash set keeps it linear.
    let n = 200_000;
    let mut text = String::from(
        r#"{"format": "persona-engine/learned-stats", "version": 1, "kind": "full", "creatives": {"#,
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
    // MAX_SNAPSHOT_BYTES (256 MiB) is proven on a sparse file in tests/durable.rs.
    assert_eq!(MAX_SNAPSHOT_BYTES, 256 << 20);
}
