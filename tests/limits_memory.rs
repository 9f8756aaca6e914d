//! Over-limit documents are refused with bounded memory: counts are enforced while
//! parsing (a catalog's creatives are counted before any is built), and a decision-log
//! or OBD line longer than `MAX_LOG_LINE_BYTES` is refused without being held. A
//! counting allocator measures the peak of live bytes on this thread while each call
//! runs.
//!
//! This file owns the binary's global allocator, so it holds these tests alone.

use std::io::{BufReader, Cursor};
use std::mem::size_of;

use persona_engine::eval::{obd_item_catalog, read_obd_csv, DecisionLogReader, ObdImport};
use persona_engine::limits::{
    MAX_CREATIVES, MAX_LOG_LINE_BYTES, MAX_PROFILE_BYTES, MAX_SIGNALS, MAX_SNAPSHOT_CREATIVES,
};
use persona_engine::{sample, Catalog, CatalogSpec, CreativeSpec, Profile, Signal, StatsSnapshot};

#[path = "common/peak_alloc.rs"]
mod peak_alloc;
use peak_alloc::{peak, Counting};

#[global_allocator]
static GLOBAL: Counting = Counting;

const MIB: usize = 1 << 20;

#[test]
fn the_counter_sees_a_known_allocation() {
    let (bytes, v) = peak(|| vec![0u8; 10_000]);
    assert_eq!(v.len(), 10_000);
    assert_eq!(bytes, 10_000);
}

/// `{"personas": ["P"], "placements": ["h"], "creatives": [` + `n` creatives.
fn tiny_catalog(n: usize) -> String {
    let mut json = String::with_capacity(n * 36 + 64);
    json.push_str(r#"{"personas":["P"],"placements":["h"],"creatives":["#);
    for i in 0..n {
        if i > 0 {
            json.push(',');
        }
        json.push_str(r#"{"id":"c"#);
        json.push_str(&i.to_string());
        json.push_str(r#"","placements":["h"]}"#);
    }
    json.push_str("]}");
    json
}

#[test]
fn a_catalog_one_creative_past_the_limit_is_refused_before_any_is_built() {
    let json = tiny_catalog(MAX_CREATIVES + 1);
    assert!(json.len() < 40 * MIB, "{} bytes", json.len());
    let (bytes, result) = peak(|| CatalogSpec::from_json(&json));
    let err = result.unwrap_err().to_string();
    assert!(
        err.starts_with(
            "catalog spec: field 'creatives': more than 1000000 creatives (MAX_CREATIVES) at line 1 column "
        ),
        "{err}"
    );
    // The list it would have become holds a million specs of this size, each with heap
    // strings besides; refusing it cost next to nothing.
    let would_be = MAX_CREATIVES * size_of::<CreativeSpec>();
    assert!(would_be > 100 * MIB, "{would_be}");
    assert!(bytes < 64 * 1024, "refusing took {bytes} bytes (the list would be {would_be})");
}

#[test]
fn a_snapshot_one_creative_past_the_limit_is_refused_before_any_is_built() {
    let mut json = String::with_capacity((MAX_SNAPSHOT_CREATIVES + 1) * 14 + 128);
    json.push_str(r#"{"format":"persona-engine/learned-stats","version":1,"kind":"full","creatives":{"#);
    for i in 0..=MAX_SNAPSHOT_CREATIVES {
        if i > 0 {
            json.push(',');
        }
        json.push('"');
        json.push_str(&i.to_string());
        json.push_str(r#"":{}"#);
    }
    json.push_str("}}");
    let (bytes, result) = peak(|| StatsSnapshot::from_json(&json));
    let err = result.unwrap_err().to_string();
    assert!(
        err.starts_with(
            "stats snapshot: field 'creatives': more than 2000000 creatives (MAX_SNAPSHOT_CREATIVES) at line 1"
        ),
        "{err}"
    );
    assert!(bytes < 64 * 1024, "refusing took {bytes} bytes");
}

#[test]
fn a_profile_full_of_signals_is_refused_at_the_limit_not_at_the_end() {
    let signal = r#"{"name":"s","value":1,"class":"behavioral","at":0},"#;
    let n = (MAX_PROFILE_BYTES - 64) / signal.len();
    let json = format!(r#"{{"signals":[{}{}]}}"#, signal.repeat(n - 1), signal.trim_end_matches(','));
    assert!(json.len() <= MAX_PROFILE_BYTES && n > 10 * MAX_SIGNALS, "{} signals", n);
    let menu = sample::catalog().unwrap().menu().clone();
    let (bytes, result) = peak(|| Profile::from_json(&menu, &json));
    let err = result.unwrap_err().to_string();
    assert!(err.starts_with("profile: field 'signals': more than 1024 signals (MAX_SIGNALS)"), "{err}");
    // About the limit's own size (the list grows by doubling), not the document's.
    let limit_size = MAX_SIGNALS * (size_of::<Signal>() + 8);
    assert!(bytes < 3 * limit_size, "refusing took {bytes} bytes, the limit's list is {limit_size}");
}

#[test]
fn a_decision_log_line_past_the_limit_is_refused_without_holding_it() {
    let good = sample_line();
    let mut log = Vec::new();
    log.extend_from_slice(good.as_bytes());
    log.push(b'\n');
    log.resize(log.len() + 8 * MAX_LOG_LINE_BYTES, b' ');
    log.push(b'\n');
    log.extend_from_slice(good.as_bytes());
    log.push(b'\n');
    let (bytes, lines) = peak(|| {
        let reader = DecisionLogReader::new(BufReader::new(Cursor::new(&log)), "decisions.jsonl");
        reader.map(|r| r.map(|(line, _)| line).map_err(|e| e.to_string())).collect::<Vec<_>>()
    });
    assert_eq!(
        lines,
        [
            Ok(1),
            Err(format!(
                "decisions.jsonl line 2: the line is {} bytes long, more than MAX_LOG_LINE_BYTES (1048576 bytes)",
                8 * MAX_LOG_LINE_BYTES
            )),
            Ok(3),
        ]
    );
    assert!(bytes < MAX_LOG_LINE_BYTES + 256 * 1024, "reading took {bytes} bytes");
}

#[test]
fn an_obd_line_past_the_limit_is_refused_without_holding_it() {
    let catalog: Catalog = sample::catalog().unwrap();
    let mut csv = b"timestamp,item_id,position,click,propensity_score\n".to_vec();
    csv.extend_from_slice(b"0,0,1,0,");
    csv.resize(csv.len() + 4 * MAX_LOG_LINE_BYTES, b'5');
    csv.push(b'\n');
    let mut options = ObdImport { placement: Some("home_hero".into()), ..ObdImport::default() };
    let (bytes, result) =
        peak(|| read_obd_csv(BufReader::new(Cursor::new(&csv)), "obd.csv", &catalog, &mut options));
    assert_eq!(
        result.unwrap_err().to_string(),
        format!(
            "obd.csv line 2: the line is {} bytes long, more than MAX_LOG_LINE_BYTES (1048576 bytes)",
            4 * MAX_LOG_LINE_BYTES + 8
        )
    );
    assert!(bytes < MAX_LOG_LINE_BYTES + 256 * 1024, "reading took {bytes} bytes");
}

#[test]
fn an_obd_item_context_line_past_the_limit_is_refused_without_holding_it() {
    let mut csv = b"item_id,item_feature_0\n0,a\n1,".to_vec();
    csv.resize(csv.len() + 4 * MAX_LOG_LINE_BYTES, b'x');
    csv.push(b'\n');
    let (bytes, result) = peak(|| obd_item_catalog(BufReader::new(Cursor::new(&csv)), "item_context.csv"));
    assert_eq!(
        result.unwrap_err().to_string(),
        format!(
            "item_context.csv line 3: the line is {} bytes long, more than MAX_LOG_LINE_BYTES (1048576 bytes)",
            4 * MAX_LOG_LINE_BYTES + 2
        )
    );
    assert!(bytes < MAX_LOG_LINE_BYTES + 256 * 1024, "reading took {bytes} bytes");
}

/// One valid decision-log line, written by the library itself.
fn sample_line() -> String {
    use persona_engine::eval::DecisionLogWriter;
    let selector = persona_engine::Selector::new(sample::catalog().unwrap(), Default::default()).unwrap();
    let hero = selector.placement("home_hero").unwrap();
    let person = selector.new_profile(sample::NOW);
    let ctx = persona_engine::Context::at(sample::NOW);
    let mut picks = selector.new_selection(1);
    selector.select(&person, &ctx, hero, &mut picks).unwrap();
    let record =
        persona_engine::eval::DecisionRecord::from_selection(&selector, &person, &ctx, hero, &picks).unwrap();
    let mut out = DecisionLogWriter::new(Vec::new(), "x");
    out.write(&record).unwrap();
    String::from_utf8(out.into_inner().unwrap()).unwrap().trim_end().to_owned()
}
