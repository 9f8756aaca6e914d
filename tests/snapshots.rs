//! Learned statistics survive a restart and a catalog change, travel between instances
//! as deltas that merge in any order, and a bad snapshot changes nothing.

mod common;

use common::*;
use persona_engine::learn::{SnapshotKind, StatsSnapshot};
use persona_engine::{Context, CreativeSpec, Device, Feedback, FeedbackKind, Selector};

fn catalog() -> Vec<CreativeSpec> {
    vec![tagged("lux", "Luxury"), tagged("fam", "Family"), tagged("adv", "Adventure")]
}

fn events(sel: &Selector, who: &[(&str, u8)], id: &str, impressions: u32, clicks: u32, device: Device) {
    let mut p = person(sel, who);
    let c = sel.creative(id).unwrap();
    for i in 0..impressions {
        let moment = Context::at(NOW + i64::from(i)).with_device(device);
        sel.record(&mut p, &Feedback::new(c, FeedbackKind::Impression, &moment)).unwrap();
        if i < clicks {
            sel.record(&mut p, &Feedback::new(c, FeedbackKind::Click, &moment)).unwrap();
        }
    }
}

fn busy() -> Selector {
    let sel = selector(catalog());
    events(&sel, &[("Luxury", 9)], "lux", 40, 7, Device::Desktop);
    events(&sel, &[], "fam", 12, 1, Device::Mobile);
    let mut p = person(&sel, &[("Family", 8)]);
    let fam = sel.creative("fam").unwrap();
    sel.record(&mut p, &Feedback::new(fam, FeedbackKind::Conversion { value: 129.99 }, &ctx())).unwrap();
    sel
}

#[test]
fn statistics_survive_a_restart() {
    let sel = busy();
    let json = sel.save_stats().to_json().unwrap();
    let restarted = selector(catalog());
    let report = restarted.load_stats(&StatsSnapshot::from_json(&json).unwrap()).unwrap();
    assert_eq!(report.creatives, 2);
    assert_eq!(restarted.save_stats(), sel.save_stats());
    let fam = restarted.creative("fam").unwrap();
    assert_eq!(restarted.stats().overall(fam).value_micros, 129_990_000);
    assert_eq!(restarted.stats().segment(fam, None).impressions, 12);
}

#[test]
fn statistics_survive_a_catalog_change_by_creative_id() {
    let sel = busy();
    let snapshot = sel.save_stats();
    // The new version drops "lux", reorders, and adds "new".
    let next = selector(vec![tagged("new", "Luxury"), tagged("fam", "Family"), tagged("adv", "Adventure")]);
    let report = next.load_stats(&snapshot).unwrap();
    assert_eq!(report.creatives, 1);
    assert_eq!(report.unknown_creatives, ["lux"]);
    let fam = next.creative("fam").unwrap();
    assert_eq!(next.stats().overall(fam), sel.stats().overall(sel.creative("fam").unwrap()));
    assert_eq!(next.stats().overall(next.creative("new").unwrap()).impressions, 0);
}

#[test]
fn corrupt_or_truncated_snapshots_are_rejected_and_change_nothing() {
    let sel = busy();
    let json = sel.save_stats().to_json().unwrap();
    let before = sel.save_stats();
    for cut in [0, 1, json.len() / 3, json.len() / 2, json.len() - 1] {
        let err = StatsSnapshot::from_json(&json[..cut]).unwrap_err();
        assert!(err.to_string().starts_with("stats snapshot: invalid JSON"), "{err}");
    }
    let wrong_format = json.replacen("persona-engine/learned-stats", "something-else", 1);
    assert_eq!(
        StatsSnapshot::from_json(&wrong_format).unwrap_err().to_string(),
        "stats snapshot: field 'format': 'something-else' is not 'persona-engine/learned-stats'"
    );
    let future = json.replacen("\"version\":2", "\"version\":3", 1);
    assert!(StatsSnapshot::from_json(&future)
        .unwrap_err()
        .to_string()
        .contains("version 3 is not supported"));
    // Files of the previous model's format say what they are and what to do.
    let old = json.replacen("\"version\":2", "\"version\":1", 1);
    let err = StatsSnapshot::from_json(&old).unwrap_err().to_string();
    assert!(err.contains("version 1 holds the statistics of the previous learning model"), "{err}");
    // Valid JSON with a bad value deep inside: nothing is applied, not even the good part.
    let mut snap = sel.save_stats();
    snap.creatives[1].1.devices.push(("toaster".into(), Default::default()));
    let err = sel.load_stats(&snap).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "stats snapshot: field 'creatives.{}.devices': unknown device 'toaster'",
            snap.creatives[1].0
        )
    );
    assert_eq!(sel.merge_stats(&snap).unwrap_err().to_string(), err.to_string());
    assert_eq!(sel.save_stats(), before);
    let mut delta = sel.export_delta();
    delta.kind = SnapshotKind::Delta;
    assert!(sel.load_stats(&delta).unwrap_err().to_string().contains("load takes a full snapshot"));
}

#[test]
fn deltas_merge_in_any_order_to_identical_statistics() {
    // Three instances each see their own traffic and export a delta.
    let instances: Vec<Selector> = (0..3).map(|_| selector(catalog())).collect();
    events(&instances[0], &[("Luxury", 9)], "lux", 30, 4, Device::Desktop);
    events(&instances[1], &[("Luxury", 9)], "lux", 10, 3, Device::Mobile);
    events(&instances[1], &[("Family", 9)], "fam", 25, 2, Device::Tablet);
    events(&instances[2], &[], "adv", 17, 5, Device::Desktop);
    let deltas: Vec<StatsSnapshot> = instances.iter().map(Selector::export_delta).collect();
    assert!(deltas.iter().all(|d| d.kind == SnapshotKind::Delta));
    let orders = [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]];
    let results: Vec<StatsSnapshot> = orders
        .iter()
        .map(|order| {
            let hub = selector(catalog());
            for &i in order {
                let _ = hub.merge_stats(&deltas[i]).unwrap();
            }
            hub.save_stats()
        })
        .collect();
    assert!(results.windows(2).all(|w| w[0] == w[1]));
    // Associative too: merging (0 + 1) as one delta, then 2, gives the same.
    let pair = selector(catalog());
    let _ = pair.merge_stats(&deltas[0]).unwrap();
    let _ = pair.merge_stats(&deltas[1]).unwrap();
    let hub = selector(catalog());
    let mut combined = pair.save_stats();
    combined.kind = SnapshotKind::Delta;
    let _ = hub.merge_stats(&combined).unwrap();
    let _ = hub.merge_stats(&deltas[2]).unwrap();
    assert_eq!(hub.save_stats(), results[0]);
    let lux = hub.creative("lux").unwrap();
    assert_eq!((hub.stats().overall(lux).impressions, hub.stats().overall(lux).clicks), (40, 7));
}

#[test]
fn a_delta_holds_only_what_is_new_and_merged_events_are_not_echoed() {
    let a = selector(catalog());
    let b = selector(catalog());
    events(&a, &[("Luxury", 9)], "lux", 5, 1, Device::Desktop);
    let first = a.export_delta();
    assert_eq!(first.creatives.len(), 1);
    assert!(a.export_delta().creatives.is_empty(), "nothing new since the last export");
    let _ = b.merge_stats(&first).unwrap();
    events(&b, &[], "fam", 3, 0, Device::Mobile);
    let from_b = b.export_delta();
    let ids: Vec<&str> = from_b.creatives.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, ["fam"], "b does not send a's events back");
    let _ = a.merge_stats(&from_b).unwrap();
    assert_eq!(a.save_stats(), b.save_stats());
}

/// A full snapshot of one creative's overall counts, as JSON.
fn forged(id: &str, overall: &str) -> StatsSnapshot {
    StatsSnapshot::from_json(&format!(
        r#"{{"format": "persona-engine/learned-stats", "version": 2, "kind": "full",
            "creatives": {{"{id}": {{"overall": {overall}}}}}}}"#
    ))
    .unwrap()
}

#[test]
fn a_snapshot_with_a_count_beyond_its_range_is_refused_naming_the_creative_and_field() {
    let sel = busy();
    let before = sel.save_stats();
    // The reported case: clicks at u64::MAX with no impression.
    let bad = forged("lux", &format!(r#"{{"clicks": {}}}"#, u64::MAX));
    let err = sel.load_stats(&bad).unwrap_err().to_string();
    assert_eq!(
        err,
        "stats snapshot: field 'creatives.lux.overall.clicks': 18446744073709551615 is above \
         9007199254740992 (MAX_EVENT_COUNT)"
    );
    assert_eq!(sel.merge_stats(&bad).unwrap_err().to_string(), err, "merge checks the same");
    // A cell of a creative this catalog lacks (an engine would keep it dormant) too.
    let mut bad = forged("gone", r#"{"impressions": 3}"#);
    bad.creatives[0]
        .1
        .segments
        .push(("Luxury".into(), persona_engine::Counts { value_micros: u64::MAX, ..Default::default() }));
    let err = sel.load_stats(&bad).unwrap_err().to_string();
    assert_eq!(
        err,
        "stats snapshot: field 'creatives.gone.segments.Luxury.value_micros': 18446744073709551615 is \
         above 9223372036854775807 (MAX_MICROS)"
    );
    assert_eq!(sel.save_stats(), before, "a refused snapshot changes nothing");
}

#[test]
fn record_counts_a_click_without_an_impression_and_its_snapshot_loads() {
    // Clicks may arrive before (or without) their impression, on another device or
    // under another top persona: counts are not checked against each other.
    let sel = selector(catalog());
    let mut p = person(&sel, &[("Luxury", 9)]);
    let lux = sel.creative("lux").unwrap();
    sel.record(&mut p, &Feedback::new(lux, FeedbackKind::Click, &ctx())).unwrap();
    let saved = sel.save_stats();
    let restarted = selector(catalog());
    let report = restarted.load_stats(&saved).unwrap();
    assert_eq!(report.creatives, 1);
    let overall = restarted.stats().overall(lux);
    assert_eq!((overall.impressions, overall.clicks), (0, 1));
}

#[test]
fn counts_stop_at_their_bound_with_an_error_never_silently() {
    let max = persona_engine::limits::MAX_EVENT_COUNT;
    let sel = selector(catalog());
    let _ = sel.load_stats(&forged("lux", &format!(r#"{{"clicks": {}}}"#, max - 1))).unwrap();
    let mut p = person(&sel, &[("Luxury", 9)]);
    let lux = sel.creative("lux").unwrap();
    sel.record(&mut p, &Feedback::new(lux, FeedbackKind::Click, &ctx())).unwrap();
    let err = sel.record(&mut p, &Feedback::new(lux, FeedbackKind::Click, &ctx())).unwrap_err();
    assert_eq!(
        err.to_string(),
        "learned statistics: field 'clicks': 9007199254740992 + 1 is above 9007199254740992 (MAX_EVENT_COUNT)"
    );
    let before = sel.save_stats();
    let mut delta = forged("lux", r#"{"clicks": 1}"#);
    delta.kind = SnapshotKind::Delta;
    let err = sel.merge_stats(&delta).unwrap_err();
    assert_eq!(
        err.to_string(),
        "stats snapshot: field 'creatives.lux': learned statistics: field 'clicks': 9007199254740992 + 1 \
         is above 9007199254740992 (MAX_EVENT_COUNT)"
    );
    assert_eq!(sel.save_stats(), before, "a refused merge changes nothing");
    assert_eq!(sel.stats().overall(lux).clicks, max);
}

#[test]
fn a_cell_or_weight_listed_twice_is_refused_and_changes_nothing() {
    let sel = busy();
    let before = sel.save_stats();
    // The same device twice: each entry is in range, their sum need not be.
    let mut twice = before.clone();
    let lux = twice.creatives.iter_mut().find(|(id, _)| id == "lux").expect("lux");
    let cell = lux.1.devices[0].clone();
    lux.1.devices.push(cell);
    let err = sel.merge_stats(&twice).unwrap_err().to_string();
    assert_eq!(err, "stats snapshot: field 'creatives.lux.devices': 'desktop' listed twice");
    // The same segment twice.
    let mut twice = before.clone();
    let lux = twice.creatives.iter_mut().find(|(id, _)| id == "lux").expect("lux");
    let cell = lux.1.segments[0].clone();
    lux.1.segments.push(cell);
    let err = sel.load_stats(&twice).unwrap_err().to_string();
    assert_eq!(err, "stats snapshot: field 'creatives.lux.segments': 'Luxury' listed twice");
    // The same weight twice.
    let mut twice = before.clone();
    let entry = twice.model[0].clone();
    twice.model.push(entry);
    let err = sel.merge_stats(&twice).unwrap_err().to_string();
    let last = twice.model.len() - 1;
    assert!(
        err.starts_with(&format!("stats snapshot: field 'model[{last}]': the same weight as model[0]")),
        "{err}"
    );
    assert!(err.ends_with("listed twice"), "{err}");
    assert_eq!(sel.save_stats(), before, "a refused snapshot changes nothing");
}

#[test]
fn a_merge_that_would_saturate_a_weight_changes_nothing() {
    let sel = busy();
    // Bring one weight to the edge of its range, then merge a delta that also carries
    // counts: the weight would overflow, so neither the counts nor any weight move.
    let mut edge = sel.save_stats();
    edge.model[0].precision = i64::MAX - 10;
    let _report = sel.load_stats(&edge).expect("a weight at the edge of its range loads");
    let before = sel.save_stats();
    let other = busy();
    let delta = other.export_delta();
    assert!(delta.model.iter().any(|e| e.scope == edge.model[0].scope
        && e.name == edge.model[0].name
        && e.feature == edge.model[0].feature
        && e.precision > 10));
    let err = sel.merge_stats(&delta).unwrap_err().to_string();
    assert!(err.contains("would overflow") && err.contains("nothing was merged"), "{err}");
    assert_eq!(sel.save_stats(), before, "counts and weights unchanged");
}

#[test]
fn a_load_that_does_not_fit_the_segment_table_leaves_the_statistics_as_they_were() {
    // A big instance's statistics, loaded into one with the smallest table.
    let big = selector(catalog());
    for (i, persona) in ["Luxury", "Family", "Budget", "Adventure"].iter().enumerate() {
        for id in ["lux", "fam", "adv"] {
            events(&big, &[(persona, 9 - i as u8)], id, 3, 1, Device::Mobile);
        }
    }
    let snapshot = big.save_stats();
    let mut config = persona_engine::SelectorConfig::default();
    config.learning.segment_cells = 64;
    let small = selector_with(catalog(), config);
    events(&small, &[("Luxury", 9)], "lux", 5, 1, Device::Desktop);
    let before = small.save_stats();
    // Fits: 12 cells.
    let _report = small.load_stats(&snapshot).expect("fits");
    let _report = small.load_stats(&before).expect("back");
    // Does not fit: statistics of 60 (creative, segment) cells, more than the 56 usable.
    let many: Vec<String> = (0..80).map(|i| format!("persona-{i}")).collect();
    let wide = persona_engine::CatalogSpec {
        version: "wide".into(),
        personas: many.clone(),
        placements: vec!["hero".into()],
        creatives: (0..3)
            .map(|c| CreativeSpec::new(format!("c{c}")).placement("hero").persona(&many[c], 1.0))
            .collect(),
        templates: Vec::new(),
        attribute_rules: Vec::new(),
    };
    let wide_cat = std::sync::Arc::new(persona_engine::Catalog::compile(&wide).expect("compiles"));
    let source = Selector::new(std::sync::Arc::clone(&wide_cat), persona_engine::SelectorConfig::default())
        .expect("selector");
    for persona in many.iter().take(30) {
        let mut p = persona_engine::Profile::new(many.len(), NOW);
        p.consent = persona_engine::DataClasses::ALL;
        let id = wide_cat.menu().get(persona).expect("persona");
        p.scores
            .set(id, 9, persona_engine::DataClasses::only(persona_engine::DataClass::Declared))
            .expect("score");
        for c in ["c0", "c1"] {
            let cid = source.creative(c).expect("creative");
            source.record(&mut p, &Feedback::new(cid, FeedbackKind::Impression, &ctx())).expect("record");
        }
    }
    let needs_60 = source.save_stats();
    let mut config = persona_engine::SelectorConfig::default();
    config.learning.segment_cells = 64;
    let target = Selector::new(wide_cat, config).expect("selector");
    let cid = target.creative("c2").expect("c2");
    let mut p = persona_engine::Profile::new(many.len(), NOW);
    target.record(&mut p, &Feedback::new(cid, FeedbackKind::Impression, &ctx())).expect("record");
    let before = target.save_stats();
    let err = target.load_stats(&needs_60).unwrap_err().to_string();
    assert!(err.contains("learning.segment_cells") && err.contains("nothing was loaded"), "{err}");
    assert_eq!(target.save_stats(), before, "the refused load wiped nothing");
    let err = target.merge_stats(&needs_60).unwrap_err().to_string();
    assert!(err.contains("learning.segment_cells"), "{err}");
    assert_eq!(target.save_stats(), before, "the refused merge added nothing");
}
