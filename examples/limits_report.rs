//! The limits report: for each kind of document the engine reads (catalog spec,
//! profile, statistics snapshot, persona model, decision log), the peak heap memory to
//! accept the largest input it accepts and to refuse the largest it refuses, measured
//! with a counting allocator and printed as one Markdown table. The README's
//! "Guarantees and limits" figures come from here.
//!
//! Run with `cargo run --release --example limits_report` (about half a minute; it
//! builds documents of up to 64 MiB and peaks near 1.5 GB).

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{BufReader, Cursor};
use std::sync::atomic::{AtomicIsize, Ordering};

use persona_engine::eval::DecisionLogReader;
use persona_engine::learn::{SNAPSHOT_FORMAT, SNAPSHOT_VERSION};
use persona_engine::limits::*;
use persona_engine::{sample, Catalog, PersonaMenu, PersonaModel, Profile, Selector, StatsSnapshot};

/// Counts live heap bytes and their peak (the example runs on one thread).
struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

fn track(delta: isize) {
    let now = LIVE.fetch_add(delta, Ordering::Relaxed) + delta;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

// SAFETY: defers to the system allocator and only adds to counters.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        track(layout.size() as isize);
        // SAFETY: the caller's contract.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        track(-(layout.size() as isize));
        // SAFETY: the caller's contract.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        track(layout.size() as isize);
        // SAFETY: the caller's contract.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        track(new_size as isize - layout.size() as isize);
        // SAFETY: the caller's contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const MIB: usize = 1 << 20;

/// The peak of live heap bytes above what was live before, while `f` ran (its result
/// dropped inside the measurement), and whether it succeeded.
fn peak<T, E: std::fmt::Display>(f: impl FnOnce() -> Result<T, E>) -> (usize, Result<(), String>) {
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let result = f().map(drop).map_err(|e| e.to_string());
    ((PEAK.load(Ordering::Relaxed) - before).max(0) as usize, result)
}

fn size(bytes: usize) -> String {
    if bytes >= 10 * MIB {
        format!("{} MiB", bytes / MIB)
    } else if bytes >= MIB {
        format!("{:.1} MiB", bytes as f64 / MIB as f64)
    } else if bytes >= 1024 {
        format!("{} KiB", bytes / 1024)
    } else {
        format!("{bytes} B")
    }
}

fn row(kind: &str, input: &str, bytes: usize, expect_ok: bool, run: (usize, Result<(), String>)) {
    let (peak, result) = run;
    let outcome = match (&result, expect_ok) {
        (Ok(()), true) => "accepted".to_owned(),
        (Err(e), false) => {
            let short: String = e.chars().take(90).collect();
            format!("refused: `{short}`")
        }
        (Ok(()), false) => panic!("{kind} {input}: accepted, expected a refusal"),
        (Err(e), true) => panic!("{kind} {input}: {e}"),
    };
    println!("| {kind} | {input} | {} | {} | {outcome} |", size(bytes), size(peak));
}

/// A catalog spec of `n` creatives `{"id":"cN","placements":["h"]}`, with `tags` persona
/// tags on the last one.
fn tiny_catalog(n: usize, tags: usize) -> String {
    let mut json = String::with_capacity(n * 36 + 64);
    json.push_str(r#"{"personas":["P"],"placements":["h"],"creatives":["#);
    for i in 0..n {
        if i > 0 {
            json.push(',');
        }
        json.push_str(&format!(r#"{{"id":"c{i}","placements":["h"]"#));
        if i + 1 == n && tags > 0 {
            let tags: Vec<String> = (0..tags).map(|t| format!(r#""t{t}":1"#)).collect();
            json.push_str(&format!(r#","personas":{{{}}}"#, tags.join(",")));
        }
        json.push('}');
    }
    json.push_str("]}");
    json
}

/// The sample catalog's creatives, repeated with fresh ids until the spec is about
/// `bytes` long.
fn sample_like_catalog(bytes: usize) -> (String, usize) {
    let spec = sample::catalog_spec().expect("sample");
    let mut creatives: Vec<String> = Vec::new();
    let mut len = 0;
    let mut n = 0;
    'fill: loop {
        for c in &spec.creatives {
            let mut c = c.clone();
            c.id = format!("{}-{n}", c.id);
            let text = serde_json::to_string(&c).expect("serializes");
            if len + text.len() + 1 > bytes - 16 * 1024 {
                break 'fill;
            }
            len += text.len() + 1;
            creatives.push(text);
            n += 1;
        }
    }
    let head =
        serde_json::json!({"version": "big", "personas": spec.personas, "placements": spec.placements});
    let head = head.to_string();
    let json = format!("{},\"creatives\":[{}]}}", &head[..head.len() - 1], creatives.join(","));
    (json, n)
}

fn main() {
    println!("| document | input | size | peak heap | result |");
    println!("|---|---|---|---|---|");

    // Catalog spec: parsed and compiled.
    let json = tiny_catalog(MAX_CREATIVES, 0);
    row(
        "catalog spec",
        "1,000,000 tiny creatives (MAX_CREATIVES)",
        json.len(),
        true,
        peak(|| Catalog::from_json(&json)),
    );
    drop(json);
    let (json, n) = sample_like_catalog(MAX_SPEC_BYTES);
    let label = format!("{n} sample-like creatives (MAX_SPEC_BYTES)");
    row("catalog spec", &label, json.len(), true, peak(|| Catalog::from_json(&json)));
    drop(json);
    let json = tiny_catalog(MAX_CREATIVES + 1, 0);
    row("catalog spec", "1,000,001 tiny creatives", json.len(), false, peak(|| Catalog::from_json(&json)));
    drop(json);
    let json = tiny_catalog(MAX_CREATIVES, MAX_TAGS + 1);
    row(
        "catalog spec",
        "1,000,000 creatives, the last with 65 tags",
        json.len(),
        false,
        peak(|| Catalog::from_json(&json)),
    );
    drop(json);
    let json = " ".repeat(MAX_SPEC_BYTES + 1);
    row("catalog spec", "64 MiB + 1 byte", json.len(), false, peak(|| Catalog::from_json(&json)));
    drop(json);

    // Profile: the sample menu.
    let catalog = sample::catalog().expect("sample");
    let menu: &PersonaMenu = catalog.menu();
    let json = full_profile(menu);
    row(
        "profile",
        "every count at its limit, 1 MiB",
        json.len(),
        true,
        peak(|| Profile::from_json(menu, &json)),
    );
    let signal = r#"{"name":"s","value":1,"class":"behavioral","at":0}"#;
    let n = (MAX_PROFILE_BYTES - 32) / (signal.len() + 1);
    let json = format!(r#"{{"signals":[{}]}}"#, vec![signal; n].join(","));
    let label = format!("{n} signals");
    row("profile", &label, json.len(), false, peak(|| Profile::from_json(menu, &json)));

    // Statistics snapshot: parsed (loading it into a selector is bounded by the catalog).
    let json = snapshot(MAX_SNAPSHOT_CREATIVES);
    row(
        "stats snapshot",
        "2,000,000 creatives (MAX_SNAPSHOT_CREATIVES)",
        json.len(),
        true,
        peak(|| StatsSnapshot::from_json(&json)),
    );
    drop(json);
    let json = snapshot(MAX_SNAPSHOT_CREATIVES + 1);
    row("stats snapshot", "2,000,001 creatives", json.len(), false, peak(|| StatsSnapshot::from_json(&json)));
    drop(json);

    // Persona model: as many weights as 16 MiB holds, spread over the sample menu.
    let json = model(menu, MAX_MODEL_BYTES - 1024);
    row(
        "persona model",
        "16 MiB of weights (MAX_MODEL_BYTES)",
        json.len(),
        true,
        peak(|| PersonaModel::from_json(menu, &json)),
    );
    let json = " ".repeat(MAX_MODEL_BYTES + 1);
    row("persona model", "16 MiB + 1 byte", json.len(), false, peak(|| PersonaModel::from_json(menu, &json)));

    // Decision log: one line at the limit, one 64 times over it.
    let selector = Selector::new(sample::catalog().expect("sample"), Default::default()).expect("selector");
    let line = log_line(&selector, MAX_LOG_LINE_BYTES);
    row("decision log", "a 1 MiB line (MAX_LOG_LINE_BYTES)", line.len(), true, peak(|| read_log(&line)));
    let line = " ".repeat(64 * MAX_LOG_LINE_BYTES);
    row("decision log", "a 64 MiB line", line.len(), false, peak(|| read_log(&line)));
}

fn read_log(text: &str) -> persona_engine::Result<usize> {
    let mut reader = DecisionLogReader::new(BufReader::new(Cursor::new(text.as_bytes())), "decisions.jsonl");
    let mut n = 0;
    for record in &mut reader {
        record?;
        n += 1;
    }
    Ok(n)
}

/// A profile at every count limit, scores for every persona of `menu`, its signal names
/// long enough to fill [`MAX_PROFILE_BYTES`].
fn full_profile(menu: &PersonaMenu) -> String {
    let name = "n".repeat((MAX_PROFILE_BYTES - 120 * 1024) / MAX_SIGNALS);
    let signals: Vec<String> = (0..MAX_SIGNALS)
        .map(|i| format!(r#"{{"name":"{name}-{i}","value":1,"class":"behavioral","at":{i}}}"#))
        .collect();
    let exposure = r#"{"creative":"00000000000000a1","at":1}"#;
    let keys: Vec<String> = (0..MAX_SUPPRESSED).map(|i| format!(r#""{:016x}""#, i + 1)).collect();
    let scores: Vec<String> = menu.names().iter().map(|n| format!(r#""{n}":5"#)).collect();
    format!(
        r#"{{"persona_scores":{{{}}},"signals":[{}],"exposures":[{}],"engagements":[{}],"suppressed":[{}]}}"#,
        scores.join(","),
        signals.join(","),
        vec![exposure; MAX_EXPOSURES].join(","),
        vec![exposure; MAX_ENGAGEMENTS].join(","),
        keys.join(",")
    )
}

/// A snapshot of `n` creatives, each with one overall cell.
fn snapshot(n: usize) -> String {
    let mut json = String::with_capacity(n * 40 + 128);
    json.push_str(&format!(
        r#"{{"format":"{SNAPSHOT_FORMAT}","version":{SNAPSHOT_VERSION},"kind":"full","creatives":{{"#
    ));
    for i in 0..n {
        if i > 0 {
            json.push(',');
        }
        json.push_str(&format!(r#""c{i}":{{"overall":{{"impressions":1}}}}"#));
    }
    json.push_str("}}");
    json
}

/// A persona model of about `bytes`: every persona of `menu` with the same many weights.
fn model(menu: &PersonaMenu, bytes: usize) -> String {
    let per_persona = bytes / menu.len();
    let mut personas = Vec::new();
    for name in menu.names() {
        let mut weights = String::new();
        let mut i = 0;
        while weights.len() + 24 < per_persona - 64 {
            if i > 0 {
                weights.push(',');
            }
            weights.push_str(&format!(r#""signal-{i}":0.5"#));
            i += 1;
        }
        personas.push(format!(r#""{name}":{{"bias":0,"weights":{{{weights}}}}}"#));
    }
    format!(r#"{{"half_life_days":30,"personas":{{{}}}}}"#, personas.join(","))
}

/// A valid decision-log line of about `bytes`: a decision with many eligible creatives.
fn log_line(selector: &Selector, bytes: usize) -> String {
    let hero = selector.placement("home_hero").expect("placement");
    let person = selector.new_profile(sample::NOW);
    let ctx = persona_engine::Context::at(sample::NOW);
    let mut picks = selector.new_selection(1);
    selector.select(&person, &ctx, hero, &mut picks).expect("select");
    let mut record =
        persona_engine::eval::DecisionRecord::from_selection(selector, &person, &ctx, hero, &picks)
            .expect("the selector's own picks");
    let base = record.to_json_line().len();
    let chosen = record.chosen[0].creative.clone();
    record.eligible = vec![chosen];
    let mut len = base + 64;
    let mut i = 0;
    while len + 16 < bytes {
        let id = format!("creative-{i}");
        len += id.len() + 3;
        record.eligible.push(id);
        i += 1;
    }
    record.to_json_line()
}
