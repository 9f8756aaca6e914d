//! Hot swaps through the `Engine`: a new catalog version is published while serving;
//! learned statistics carry over by creative id (and come back for a creative that
//! returns), per-person memory carries over by stable key, removed creatives stop being
//! picked at once, a pick from an old version is recorded against the same creative in
//! the new one, and deltas exported across a swap hold every event exactly once.

mod common;

use std::collections::BTreeMap;

use common::*;
use persona_engine::learn::{CreativeStats, ModelEntry, SnapshotKind, StatsSnapshot};
use persona_engine::{
    Context, CreativeSpec, Device, Engine, Error, Feedback, FeedbackKind, PersonaModel, Profile, Selector,
    SelectorConfig,
};

fn engine(creatives: Vec<CreativeSpec>) -> Engine {
    Engine::new(selector(creatives), None)
}

fn version(label: &str, creatives: Vec<CreativeSpec>) -> Selector {
    let mut spec = spec(creatives);
    spec.version = label.into();
    Selector::new(persona_engine::Catalog::compile(&spec).unwrap(), SelectorConfig::default()).unwrap()
}

/// A snapshot as a map by id with every cell list sorted, for comparisons.
fn normalized(snapshot: &StatsSnapshot) -> BTreeMap<String, CreativeStats> {
    snapshot
        .creatives
        .iter()
        .map(|(id, s)| {
            let mut s = s.clone();
            s.devices.sort_by(|a, b| a.0.cmp(&b.0));
            s.dayparts.sort_by(|a, b| a.0.cmp(&b.0));
            s.segments.sort_by(|a, b| a.0.cmp(&b.0));
            (id.clone(), s)
        })
        .collect()
}

/// Records `n` impressions (and `clicks` clicks) of creative `id` through the engine.
fn traffic(engine: &Engine, person: &mut Profile, id: &str, n: u32, clicks: u32) {
    for i in 0..n {
        let moment = Context::at(NOW + i64::from(i)).with_device(Device::Mobile);
        engine.record_id(person, id, FeedbackKind::Impression, &moment).unwrap();
        if i < clicks {
            engine.record_id(person, id, FeedbackKind::Click, &moment).unwrap();
        }
    }
}

/// A version whose persona menu lacks `missing`.
fn version_without(label: &str, missing: &str, creatives: Vec<CreativeSpec>) -> Selector {
    let mut spec = spec(creatives);
    spec.version = label.into();
    spec.personas.retain(|p| p != missing);
    Selector::new(persona_engine::Catalog::compile(&spec).unwrap(), SelectorConfig::default()).unwrap()
}

/// The model's weights of a snapshot, sorted by name.
fn weights(snapshot: &StatsSnapshot) -> Vec<ModelEntry> {
    let mut model = snapshot.model.clone();
    model.sort_by(|a, b| (&a.scope, &a.name, &a.feature).cmp(&(&b.scope, &b.name, &b.feature)));
    model
}

fn impressions(snapshot: &StatsSnapshot, id: &str) -> u64 {
    snapshot.creatives.iter().find(|(i, _)| i == id).map_or(0, |(_, s)| s.overall.impressions)
}

#[test]
fn statistics_carry_over_by_creative_id_and_a_returning_creative_gets_its_own_back() {
    let engine = engine(vec![tagged("lux", "Luxury"), tagged("fam", "Family"), tagged("adv", "Adventure")]);
    let mut p = person(engine.current().selector(), &[("Luxury", 9)]);
    traffic(&engine, &mut p, "lux", 30, 5);
    traffic(&engine, &mut p, "adv", 12, 2);
    let before = normalized(&engine.save_stats());

    // v2 reorders, drops "adv" and adds "new".
    let report = engine
        .publish(
            version("v2", vec![tagged("new", "Budget"), tagged("fam", "Family"), tagged("lux", "Luxury")]),
            None,
        )
        .unwrap();
    assert_eq!((report.generation, report.carried, report.dormant, report.restored), (2, 1, 1, 0));
    let v2 = engine.current();
    assert_eq!(v2.catalog().version(), "v2");
    let lux = v2.selector().creative("lux").unwrap();
    assert_eq!(lux.0, 2, "a different index than in v1: the carry-over is by id");
    assert_eq!(
        (v2.selector().stats().overall(lux).impressions, v2.selector().stats().overall(lux).clicks),
        (30, 5)
    );
    // "adv" is dormant: still part of what the engine knows, not of the catalog.
    assert_eq!(normalized(&engine.save_stats()), before);
    assert!(v2.selector().creative("adv").is_err());

    // v3 brings "adv" back: its statistics come back with it.
    let report = engine
        .publish(version("v3", vec![tagged("adv", "Adventure"), tagged("lux", "Luxury")]), None)
        .unwrap();
    assert_eq!((report.carried, report.restored, report.dormant), (1, 1, 0));
    let v3 = engine.current();
    let adv = v3.selector().creative("adv").unwrap();
    assert_eq!(
        (v3.selector().stats().overall(adv).impressions, v3.selector().stats().overall(adv).clicks),
        (12, 2)
    );
    assert_eq!(normalized(&engine.save_stats()), before);
}

#[test]
fn removed_creatives_stop_being_picked_at_once_and_an_old_selection_still_works() {
    let star = || CreativeSpec::new("star").placement("hero").persona("Luxury", 1.0).priority(3.0);
    let engine = engine(vec![star(), tagged("lux", "Luxury"), tagged("fam", "Family")]);
    let p = person(engine.current().selector(), &[("Luxury", 9)]);
    let mut selection = engine.current().selector().new_selection(2);
    let v1 = engine.select(&p, &ctx(), "hero", &mut selection).unwrap();
    assert_eq!(v1.catalog().creative_id(selection.picks()[0].creative), "star");

    // v2 drops "star" and has more creatives than v1: the same selection keeps working.
    let more: Vec<CreativeSpec> = (0..40).map(|i| tagged(&format!("extra-{i}"), "Budget")).collect();
    let _ = engine
        .publish(version("v2", [vec![tagged("lux", "Luxury"), tagged("fam", "Family")], more].concat()), None)
        .unwrap();
    assert!(v1.is_retired());
    for i in 0..20 {
        let moment = ctx().with_seed(i);
        let v = engine.select(&p, &moment, "hero", &mut selection).unwrap();
        assert_eq!(v.generation(), 2);
        let ids: Vec<&str> = selection.picks().iter().map(|x| v.catalog().creative_id(x.creative)).collect();
        assert!(!ids.contains(&"star"), "{ids:?}");
        assert_eq!(ids[0], "lux");
    }
    // The old version still answers for whoever holds it (its catalog is intact).
    assert_eq!(v1.catalog().creative_id(persona_engine::CreativeId(0)), "star");
}

#[test]
fn per_person_memory_carries_over_by_stable_key() {
    let capped = || {
        CreativeSpec::new("capped")
            .placement("hero")
            .persona("Luxury", 1.0)
            .priority(5.0)
            .frequency_cap(2, 3_600)
    };
    let engine =
        engine(vec![capped(), tagged("lux-a", "Luxury"), tagged("lux-b", "Luxury"), tagged("fam", "Family")]);
    let mut p = person(engine.current().selector(), &[("Luxury", 9)]);
    let mut selection = engine.current().selector().new_selection(1);
    // Two impressions of "capped" (its cap) and a thumbs down on "lux-a", under v1.
    for t in 0..2 {
        let moment = Context::at(NOW + t * 60);
        let v = engine.select(&p, &moment, "hero", &mut selection).unwrap();
        let pick = selection.picks()[0];
        assert_eq!(v.catalog().creative_id(pick.creative), "capped");
        engine.record(&v, &mut p, &Feedback::new(pick.creative, FeedbackKind::Impression, &moment)).unwrap();
    }
    let v1 = engine.current();
    let lux_a = v1.selector().creative("lux-a").unwrap();
    engine.record(&v1, &mut p, &Feedback::new(lux_a, FeedbackKind::ThumbsDown, &ctx())).unwrap();

    // v2 lists the creatives in another order, so every index changes.
    let _ = engine
        .publish(
            version(
                "v2",
                vec![tagged("fam", "Family"), tagged("lux-b", "Luxury"), tagged("lux-a", "Luxury"), capped()],
            ),
            None,
        )
        .unwrap();
    let v2 = engine.current();
    assert_ne!(v2.selector().creative("capped").unwrap(), v1.selector().creative("capped").unwrap());
    let moment = Context::at(NOW + 600);
    engine.select(&p, &moment, "hero", &mut selection).unwrap();
    assert_eq!(
        v2.catalog().creative_id(selection.picks()[0].creative),
        "lux-b",
        "capped and rejected are out"
    );
    // An hour later the cap window has passed; the rejection is for ever.
    let later = Context::at(NOW + 2 * 3_600);
    engine.select(&p, &later, "hero", &mut selection).unwrap();
    assert_eq!(v2.catalog().creative_id(selection.picks()[0].creative), "capped");
    let mut two = v2.selector().new_selection(3);
    engine.select(&p, &later, "hero", &mut two).unwrap();
    assert!(two.picks().iter().all(|x| v2.catalog().creative_id(x.creative) != "lux-a"));
}

#[test]
fn a_pick_from_an_old_version_is_recorded_against_the_same_creative_in_the_new_one() {
    let engine = engine(vec![tagged("lux", "Luxury"), tagged("fam", "Family")]);
    let mut p = person(engine.current().selector(), &[("Luxury", 9)]);
    let mut selection = engine.current().selector().new_selection(1);
    let v1 = engine.select(&p, &ctx(), "hero", &mut selection).unwrap();
    let shown = selection.picks()[0].creative;
    assert_eq!(v1.catalog().creative_id(shown), "lux");
    // The page is rendered; meanwhile v2 (another order) is published; then the events arrive.
    let _ =
        engine.publish(version("v2", vec![tagged("fam", "Family"), tagged("lux", "Luxury")]), None).unwrap();
    engine.record(&v1, &mut p, &Feedback::new(shown, FeedbackKind::Impression, &ctx())).unwrap();
    engine.record(&v1, &mut p, &Feedback::new(shown, FeedbackKind::Click, &ctx())).unwrap();
    let v2 = engine.current();
    let stats = v2.selector().stats();
    let (lux, fam) = (v2.selector().creative("lux").unwrap(), v2.selector().creative("fam").unwrap());
    assert_eq!((stats.overall(lux).impressions, stats.overall(lux).clicks), (1, 1));
    assert_eq!(stats.overall(fam).impressions, 0, "index {} of v1 is another creative in v2", shown.0);
    assert!(v1.selector().stats().overall(shown).is_zero(), "nothing lands in the retired version");
}

#[test]
fn recording_a_creative_the_new_version_removed_is_an_error_and_changes_nothing() {
    let engine = engine(vec![tagged("lux", "Luxury"), tagged("old", "Family")]);
    let mut p = person(engine.current().selector(), &[("Family", 9)]);
    let v1 = engine.current();
    let old = v1.selector().creative("old").unwrap();
    let _ = engine.publish(version("v2", vec![tagged("lux", "Luxury")]), None).unwrap();
    let before = (engine.save_stats(), p.clone());
    let err = engine.record(&v1, &mut p, &Feedback::new(old, FeedbackKind::Impression, &ctx())).unwrap_err();
    assert!(matches!(err, Error::UnknownCreative { .. }));
    assert_eq!(err.to_string(), "unknown creative 'old'");
    let err = engine.record_id(&mut p, "old", FeedbackKind::Click, &ctx()).unwrap_err();
    assert_eq!(err.to_string(), "unknown creative 'old'");
    let stray = persona_engine::CreativeId(99);
    let err = engine.record(&v1, &mut p, &Feedback::new(stray, FeedbackKind::Click, &ctx())).unwrap_err();
    assert_eq!(err.to_string(), "unknown creative '#99'");
    assert_eq!((engine.save_stats(), p), before);
}

#[test]
fn deltas_exported_across_swaps_hold_every_event_exactly_once() {
    let engine = engine(vec![tagged("lux", "Luxury"), tagged("fam", "Family"), tagged("adv", "Adventure")]);
    let mut p = person(engine.current().selector(), &[]);
    let mut deltas = Vec::new();
    traffic(&engine, &mut p, "lux", 10, 1);
    deltas.push(engine.export_delta());
    traffic(&engine, &mut p, "lux", 5, 2);
    traffic(&engine, &mut p, "adv", 7, 0);
    // Unexported events of v1 (including those of "adv", which v2 drops) travel with
    // the next export.
    let _ =
        engine.publish(version("v2", vec![tagged("fam", "Family"), tagged("lux", "Luxury")]), None).unwrap();
    traffic(&engine, &mut p, "fam", 3, 1);
    deltas.push(engine.export_delta());
    assert!(engine.export_delta().creatives.is_empty(), "nothing new");
    let _ = engine.publish(version("v3", vec![tagged("lux", "Luxury")]), None).unwrap();
    deltas.push(engine.export_delta());
    assert!(deltas[2].creatives.is_empty(), "a swap alone exports nothing");

    // Another instance that merges every delta learns exactly what this one did.
    let hub = Engine::new(version("hub", vec![tagged("lux", "Luxury"), tagged("fam", "Family")]), None);
    for d in &deltas {
        assert_eq!(d.kind, SnapshotKind::Delta);
        let _ = hub.merge_stats(d).unwrap();
    }
    assert_eq!(normalized(&hub.save_stats()), normalized(&engine.save_stats()));
    assert!(!engine.save_stats().model.is_empty());
    assert_eq!(weights(&hub.save_stats()), weights(&engine.save_stats()), "model updates travel too");
    let all = engine.save_stats();
    assert_eq!((impressions(&all, "lux"), impressions(&all, "adv"), impressions(&all, "fam")), (15, 7, 3));
    // Merged events are not exported again.
    assert!(hub.export_delta().creatives.is_empty());
}

#[test]
fn saved_statistics_including_dormant_ones_survive_a_restart() {
    let engine = engine(vec![tagged("lux", "Luxury"), tagged("adv", "Adventure")]);
    let mut p = person(engine.current().selector(), &[("Luxury", 8)]);
    traffic(&engine, &mut p, "lux", 4, 1);
    traffic(&engine, &mut p, "adv", 6, 3);
    let _ = engine.publish(version("v2", vec![tagged("lux", "Luxury")]), None).unwrap();
    let saved = engine.save_stats();
    let restarted = Engine::new(version("v2", vec![tagged("lux", "Luxury")]), None);
    let report = restarted.load_stats(&saved).unwrap();
    assert_eq!(report.unknown_creatives, ["adv"]);
    assert_eq!(normalized(&restarted.save_stats()), normalized(&saved));
    let _ = restarted
        .publish(version("v3", vec![tagged("adv", "Adventure"), tagged("lux", "Luxury")]), None)
        .unwrap();
    let v3 = restarted.current();
    let adv = v3.selector().creative("adv").unwrap();
    assert_eq!(v3.selector().stats().overall(adv).clicks, 3);
}

#[test]
fn shadow_flags_and_the_persona_model_are_published_with_the_version() {
    let engine = engine(vec![tagged("lux", "Luxury")]);
    let v1 = engine.current();
    v1.selector().set_shadow(v1.selector().placement("hero").unwrap(), true).unwrap();
    let next = version("v2", vec![tagged("lux", "Luxury")]);
    let model = PersonaModel::from_json(
        next.catalog().menu(),
        r#"{"personas": {"Luxury": {"bias": -2, "weights": {"viewed_villas": 1.5}}}}"#,
    )
    .unwrap();
    let _ = engine.publish(next, Some(model)).unwrap();
    let v2 = engine.current();
    assert!(v2.selector().is_shadow(v2.selector().placement("hero").unwrap()));
    assert!(!v2.selector().is_shadow(v2.selector().placement("sidebar").unwrap()));
    assert!(v2.model().is_some() && v1.model().is_none());
    assert_eq!(engine.generation(), 2);
}

#[test]
fn a_persona_removed_then_restored_gets_its_segment_counts_and_model_weights_back_exactly() {
    let adv = || tagged("adv", "Adventure").attribute("tone", "bold");
    let engine = engine(vec![tagged("lux", "Luxury").attribute("tone", "calm"), adv()]);
    // Top persona Adventure: every event lands in the (creative, Adventure) cells.
    let mut p = person(engine.current().selector(), &[("Adventure", 9), ("Luxury", 8)]);
    traffic(&engine, &mut p, "lux", 20, 4);
    traffic(&engine, &mut p, "adv", 9, 3);
    let before = engine.save_stats();
    let lux_adventure = |s: &StatsSnapshot| {
        let lux = s.creatives.iter().find(|(id, _)| id == "lux").map(|(_, s)| s.clone()).unwrap_or_default();
        lux.segments.iter().find(|(n, _)| n == "Adventure").map(|(_, c)| *c)
    };
    let counts = lux_adventure(&before).unwrap();
    assert_eq!((counts.impressions, counts.clicks), (20, 4));
    // What a menu without Adventure (and a catalog without "adv" and tone=bold) lacks.
    let lacking = |e: &&ModelEntry| {
        e.name == "adv"
            || e.feature == "segment:Adventure"
            || (e.scope == "persona" && e.name == "Adventure")
            || e.name == "tone=bold"
    };
    let lacked = before.model.iter().filter(lacking).count();
    assert!(before.model.iter().filter(lacking).any(|e| e.name == "lux"), "lux has an Adventure weight");
    assert!(before.model.iter().filter(lacking).any(|e| e.scope == "persona"), "Adventure's slope");
    assert!(before.model.iter().filter(lacking).any(|e| e.scope == "attribute"), "tone=bold's weights");

    // v2: the menu drops Adventure, the catalog drops "adv" (and with it tone=bold).
    let v2 = || version_without("v2", "Adventure", vec![tagged("lux", "Luxury").attribute("tone", "calm")]);
    let report = engine.publish(v2(), None).unwrap();
    assert_eq!((report.carried, report.dormant, report.dormant_segments), (1, 1, 1));
    assert_eq!(report.dormant_model_entries, lacked);
    assert_eq!((report.dropped, report.dropped_segments, report.dropped_model_entries), (0, 0, 0));
    let now = engine.current();
    let lux = now.selector().creative("lux").unwrap();
    assert_eq!(now.selector().stats().overall(lux).impressions, 20, "lux itself carries over");
    assert_eq!(lux_adventure(&now.selector().save_stats()), None, "v2 cannot hold the Adventure cell");
    // Nothing is lost from what the engine knows: the dormant part is saved too.
    let saved = engine.save_stats();
    assert_eq!(normalized(&saved), normalized(&before));
    assert_eq!(weights(&saved), weights(&before));

    // v3 brings Adventure and "adv" back: cells and weights return exactly.
    let report = engine
        .publish(version("v3", vec![tagged("lux", "Luxury").attribute("tone", "calm"), adv()]), None)
        .unwrap();
    assert_eq!((report.restored, report.restored_segments, report.restored_model_entries), (1, 1, lacked));
    assert_eq!((report.dormant, report.dormant_segments, report.dormant_model_entries), (0, 0, 0));
    let v3 = engine.current().selector().save_stats();
    assert_eq!(lux_adventure(&v3), Some(counts));
    assert_eq!(normalized(&v3), normalized(&before));
    assert_eq!(weights(&v3), weights(&before), "the version itself holds every weight again");

    // The same through a restart: a snapshot saved under v2 restores under v3.
    let restarted = Engine::new(v2(), None);
    let loaded = restarted.load_stats(&saved).unwrap();
    assert_eq!((loaded.unknown_creatives.len(), loaded.unknown_segments), (1, 1));
    let report = restarted.publish(version("v3", vec![tagged("lux", "Luxury"), adv()]), None).unwrap();
    assert_eq!((report.restored, report.restored_segments), (1, 1));
    assert_eq!(normalized(&restarted.current().selector().save_stats()), normalized(&before));
}

#[test]
fn dormant_statistics_are_checked_like_the_rest_so_what_the_engine_keeps_always_loads_again() {
    let engine = engine(vec![tagged("lux", "Luxury")]);
    let delta = |json: &str| {
        StatsSnapshot::from_json(&format!(
            r#"{{"format":"persona-engine/learned-stats","version":2,"kind":"delta","creatives":{json}}}"#
        ))
        .unwrap()
    };
    let before = engine.save_stats();
    // A creative the catalog lacks is kept as dormant statistics: its cells are checked
    // as a known creative's are.
    let err = engine.merge_stats(&delta(r#"{"gone":{"devices":{"fridge":{"impressions":1}}}}"#)).unwrap_err();
    assert!(err.to_string().contains("unknown device 'fridge'"), "{err}");
    let report = engine.merge_stats(&delta(r#"{"gone":{"segments":{"Pets":{"clicks":1}}}}"#)).unwrap();
    assert_eq!(report.unknown_creatives, ["gone"]);
    // Sums of dormant counts stay in range: two halves of the top of the range fit, a
    // third would pass it, and is refused with nothing changed.
    let half = 1u64 << 52;
    let big = format!(r#"{{"gone":{{"overall":{{"impressions":{half}}}}}}}"#);
    let _ = engine.merge_stats(&delta(&big)).unwrap();
    let _ = engine.merge_stats(&delta(&big)).unwrap();
    let kept = engine.save_stats();
    let err = engine.merge_stats(&delta(&big)).unwrap_err();
    assert!(err.to_string().contains("creatives.gone.overall") && err.to_string().contains("above"), "{err}");
    assert_eq!(normalized(&engine.save_stats()), normalized(&kept), "a refused merge changed something");
    // And what the engine saved loads again, into a fresh engine.
    let restarted = engine_with_lux();
    let report = restarted.load_stats(&kept).unwrap();
    assert_eq!(report.unknown_creatives, ["gone"]);
    assert_eq!(impressions(&restarted.save_stats(), "gone"), 2 * half);
    assert_ne!(normalized(&kept), normalized(&before));
    // A model weight of a creative the catalog lacks is checked for its feature too.
    let bad_model = StatsSnapshot::from_json(
        r#"{"format":"persona-engine/learned-stats","version":2,"kind":"delta","creatives":{},
            "model":[{"scope":"creative","name":"gone","feature":"fridge","eta":1,"precision":1}]}"#,
    )
    .unwrap();
    let err = engine.merge_stats(&bad_model).unwrap_err();
    assert!(err.to_string().contains("unknown feature 'fridge'"), "{err}");
}

#[test]
fn dormant_segment_cells_past_the_snapshot_limit_are_refused_not_cut() {
    let engine = engine(vec![tagged("lux", "Luxury")]);
    let limit = persona_engine::limits::MAX_DORMANT_CELLS;
    let cells = |from: usize, to: usize| {
        (from..to).map(|i| format!(r#""p{i}":{{"impressions":1}}"#)).collect::<Vec<_>>().join(",")
    };
    let delta = |cells: String| {
        StatsSnapshot::from_json(&format!(
            r#"{{"format":"persona-engine/learned-stats","version":2,"kind":"delta",
                "creatives":{{"gone":{{"segments":{{{cells}}}}}}}}}"#
        ))
        .unwrap()
    };
    let _ = engine.merge_stats(&delta(cells(0, limit))).unwrap();
    let kept = engine.save_stats();
    let err = engine.merge_stats(&delta(cells(limit, limit + 1))).unwrap_err();
    assert!(
        err.to_string().contains("creatives.gone.segments") && err.to_string().contains("MAX_DORMANT_CELLS"),
        "{err}"
    );
    assert_eq!(normalized(&engine.save_stats()), normalized(&kept));
    // A cell already held is added to, within the limit.
    let _ = engine.merge_stats(&delta(cells(0, 1))).unwrap();
}

#[test]
fn a_creative_with_every_dormant_cell_and_live_ones_saves_a_snapshot_that_loads() {
    // The most dormant segment cells for personas the menu lacks, on a creative the
    // catalog has, plus the live cells its own menu adds: the engine's save holds more
    // than the dormant limit, and must load again (through JSON, as from a file).
    let engine = engine_with_lux();
    let dormant = persona_engine::limits::MAX_DORMANT_CELLS;
    let cells =
        (0..dormant).map(|i| format!(r#""gone-{i}":{{"impressions":1}}"#)).collect::<Vec<_>>().join(",");
    let delta = StatsSnapshot::from_json(&format!(
        r#"{{"format":"persona-engine/learned-stats","version":2,"kind":"delta",
            "creatives":{{"lux":{{"segments":{{{cells}}}}}}}}}"#
    ))
    .unwrap();
    let _ = engine.merge_stats(&delta).unwrap();
    let mut p = person(engine.current().selector(), &[("Luxury", 9)]);
    traffic(&engine, &mut p, "lux", 3, 1);
    let saved = engine.save_stats();
    let lux = &saved.creatives.iter().find(|(id, _)| id == "lux").unwrap().1;
    assert!(lux.segments.len() > dormant, "{} segment cells", lux.segments.len());
    let read = StatsSnapshot::from_json(&saved.to_json().unwrap()).unwrap();
    let restarted = engine_with_lux();
    let _ = restarted.load_stats(&read).unwrap();
    assert_eq!(normalized(&restarted.save_stats()), normalized(&saved));
}

fn engine_with_lux() -> Engine {
    engine(vec![tagged("lux", "Luxury")])
}
