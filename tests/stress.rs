//! Concurrency stress: worker threads select and record through one `Engine` for a
//! bounded time while another thread publishes catalog versions back to back (creatives
//! leave and come back) and exports deltas. Afterwards the learned statistics equal
//! exactly the events whose `record` returned `Ok` (nothing lost, nothing counted
//! twice, in the engine and in the stream of deltas), no pick ever named a creative
//! absent from the version that made it, rejections held across versions, and no
//! frequency cap was ever exceeded.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use common::{spec, NOW};
use persona_engine::learn::{CreativeStats, StatsSnapshot};
use persona_engine::{
    Catalog, CatalogSpec, Context, Counts, CreativeSpec, DataClass, DataClasses, Device, Engine, Error,
    Feedback, FeedbackKind, Policy, Profile, Selector, SelectorConfig, SwapReport,
};

/// How long the workers run at least; on a loaded machine the run goes on (up to
/// [`MAX_RUN`]) until [`SWAPS`] versions have been published.
const RUN: Duration = Duration::from_millis(1_200);
const MAX_RUN: Duration = Duration::from_secs(30);
const SWAPS: usize = 20;
const WORKERS: usize = 3;
const PEOPLE: usize = 8;
/// Capped creatives: at most CAP impressions per person in any WINDOW seconds.
const CAP: u32 = 2;
const WINDOW: i64 = 600;
/// Rotating creatives: version k has rot-(k % ROT), rot-(k+1 % ROT), rot-(k+2 % ROT).
const ROT: usize = 6;
const PERSONAS: [&str; 4] = ["Luxury", "Family", "Budget", "Adventure"];
const DEVICES: [Device; 3] = [Device::Desktop, Device::Mobile, Device::Tablet];

fn config() -> SelectorConfig {
    SelectorConfig::with_policy(Policy::EpsilonGreedy { epsilon: 0.3 })
}

fn creative(id: &str, persona: usize, capped: bool) -> CreativeSpec {
    let c = CreativeSpec::new(id).placement("hero").persona(PERSONAS[persona % 4], 1.0);
    if capped {
        c.frequency_cap(CAP, WINDOW as u64)
    } else {
        c
    }
}

/// Version k of the catalog, labelled `v<k>`.
fn version_spec(k: usize) -> CatalogSpec {
    let mut creatives: Vec<CreativeSpec> =
        (0..10).map(|i| creative(&format!("base-{i}"), i, i % 3 == 0)).collect();
    for j in 0..3 {
        let r = (k + j) % ROT;
        creatives.push(creative(&format!("rot-{r}"), r, r % 2 == 0));
    }
    // Another order in every version, so creative indexes change at each swap.
    let len = creatives.len();
    creatives.rotate_left(k % len);
    creatives.push(CreativeSpec::new("house").placement("hero").fallback());
    let mut s = spec(creatives);
    s.version = format!("v{k}");
    s
}

fn every_id() -> Vec<String> {
    let mut ids: Vec<String> = (0..10).map(|i| format!("base-{i}")).collect();
    ids.extend((0..ROT).map(|r| format!("rot-{r}")));
    ids.push("house".into());
    ids
}

/// What one worker saw and recorded.
#[derive(Default)]
struct Tally {
    /// Expected statistics by creative id (without `expected_micros`, which the engine
    /// derives itself).
    stats: BTreeMap<String, CreativeStats>,
    /// (person, creative) → times of the impressions recorded.
    shown: HashMap<(usize, String), Vec<i64>>,
    picks: u64,
    records: u64,
    /// Records refused because a newer version had removed the creative.
    refused: u64,
}

fn bump(cells: &mut Vec<(String, Counts)>, name: &str, add: &Counts) {
    match cells.iter_mut().find(|(n, _)| n == name) {
        Some((_, c)) => c.add(add),
        None => cells.push((name.to_owned(), *add)),
    }
}

impl Tally {
    fn count(&mut self, id: &str, segment: &str, moment: &Context, add: Counts) {
        let s = self.stats.entry(id.to_owned()).or_default();
        s.overall.add(&add);
        bump(&mut s.devices, moment.device.name(), &add);
        bump(&mut s.dayparts, moment.daypart().name(), &add);
        bump(&mut s.segments, segment, &add);
    }
}

fn person(engine: &Engine, i: usize) -> Profile {
    let selector = engine.current();
    let menu = selector.catalog().menu();
    let mut p = selector.selector().new_profile(NOW - 400 * 86_400);
    p.visits = 40;
    p.consent = DataClasses::ALL;
    p.set_score(menu, PERSONAS[i % 4], 7 + (i % 3) as u8, DataClasses::only(DataClass::Behavioral)).unwrap();
    if i % 2 == 0 {
        p.set_score(menu, PERSONAS[(i + 1) % 4], 8, DataClasses::NONE).unwrap();
    }
    p
}

fn work(
    engine: &Engine,
    worker: usize,
    ids_of: &HashMap<String, BTreeSet<String>>,
    stop: &AtomicBool,
) -> Tally {
    let mut tally = Tally::default();
    let mut people: Vec<Profile> = (0..PEOPLE).map(|i| person(engine, worker * PEOPLE + i)).collect();
    let mut clocks = [NOW; PEOPLE];
    let mut rejected: Vec<BTreeSet<String>> = vec![BTreeSet::new(); PEOPLE];
    // One selection for the whole run, across every version.
    let mut selection = engine.current().selector().new_selection(2);
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let who = (n as usize) % PEOPLE;
        clocks[who] += 97;
        let moment = Context::at(clocks[who])
            .with_device(DEVICES[(n % 3) as usize])
            .with_seed(n ^ ((worker as u64) << 32));
        let profile = &mut people[who];
        let version = engine.select(profile, &moment, "hero", &mut selection).unwrap();
        let catalog = version.catalog();
        let ids = &ids_of[catalog.version()];
        for (slot, pick) in selection.picks().iter().enumerate() {
            let id = catalog.creative_id(pick.creative).to_owned();
            tally.picks += 1;
            assert!(ids.contains(&id), "{} picked '{id}', which it does not have", catalog.version());
            assert!(!rejected[who].contains(&id), "person {who} rejected '{id}' and was shown it again");
            let segment = version
                .selector()
                .segment(profile)
                .map_or("(none)".to_owned(), |p| catalog.menu().name(p).to_owned());
            let mut kinds = vec![(FeedbackKind::Impression, Counts { impressions: 1, ..Counts::default() })];
            if slot == 0 && n % 5 == 0 {
                kinds.push((FeedbackKind::Click, Counts { clicks: 1, ..Counts::default() }));
            }
            if slot == 0 && n % 23 == 0 {
                let value = 12.5;
                kinds.push((
                    FeedbackKind::Conversion { value },
                    Counts { conversions: 1, value_micros: 12_500_000, ..Counts::default() },
                ));
            }
            if slot == 1 && n % 41 == 0 {
                kinds.push((FeedbackKind::ThumbsDown, Counts::default()));
            }
            for (kind, counts) in kinds {
                match engine.record(&version, profile, &Feedback::new(pick.creative, kind, &moment)) {
                    Ok(()) => {
                        tally.records += 1;
                        if !counts.is_zero() {
                            tally.count(&id, &segment, &moment, counts);
                        }
                        match kind {
                            FeedbackKind::Impression => {
                                tally.shown.entry((who, id.clone())).or_default().push(moment.at)
                            }
                            FeedbackKind::ThumbsDown => {
                                rejected[who].insert(id.clone());
                            }
                            _ => {}
                        }
                    }
                    Err(Error::UnknownCreative { .. }) => tally.refused += 1,
                    Err(e) => panic!("record failed: {e}"),
                }
            }
        }
    }
    tally
}

/// A snapshot as a map by id, cells sorted, `expected_micros` zeroed (the tally cannot
/// know it).
fn comparable(snapshot: &StatsSnapshot) -> BTreeMap<String, CreativeStats> {
    snapshot.creatives.iter().map(|(id, s)| (id.clone(), normalize(s))).collect()
}

fn normalize(s: &CreativeStats) -> CreativeStats {
    let fix = |cells: &[(String, Counts)]| {
        let mut cells: Vec<(String, Counts)> = cells
            .iter()
            .map(|(n, c)| (n.clone(), Counts { expected_micros: 0, ..*c }))
            .filter(|(_, c)| !c.is_zero())
            .collect();
        cells.sort_by(|a, b| a.0.cmp(&b.0));
        cells
    };
    CreativeStats {
        overall: Counts { expected_micros: 0, ..s.overall },
        devices: fix(&s.devices),
        dayparts: fix(&s.dayparts),
        segments: fix(&s.segments),
    }
}

#[test]
fn swapping_catalogs_under_load_loses_and_duplicates_nothing() {
    let specs: Vec<CatalogSpec> = (0..ROT).map(version_spec).collect();
    let ids_of: HashMap<String, BTreeSet<String>> = (0..10_000)
        .map(|k| {
            let s = &specs[k % ROT];
            // Version k's ids are those of spec k % ROT; only the label differs.
            (format!("v{k}"), s.creatives.iter().map(|c| c.id.clone()).collect())
        })
        .collect();
    let build = |k: usize| {
        let mut s = specs[k % ROT].clone();
        s.version = format!("v{k}");
        Selector::new(Catalog::compile(&s).unwrap(), config()).unwrap()
    };
    let engine = Arc::new(Engine::new(build(0), None));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Arc::new(Barrier::new(WORKERS + 1));
    let ids_of = Arc::new(ids_of);

    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            let (engine, stop, start, ids_of) = (engine.clone(), stop.clone(), start.clone(), ids_of.clone());
            thread::spawn(move || {
                start.wait();
                work(&engine, w, &ids_of, &stop)
            })
        })
        .collect();

    // This thread publishes versions back to back and exports deltas as it goes.
    start.wait();
    let began = Instant::now();
    let mut reports: Vec<SwapReport> = Vec::new();
    let mut deltas: Vec<StatsSnapshot> = Vec::new();
    let mut k = 0;
    while began.elapsed() < RUN || (reports.len() < SWAPS && began.elapsed() < MAX_RUN) {
        k += 1;
        reports.push(engine.publish(build(k), None).unwrap());
        if k % 3 == 0 {
            deltas.push(engine.export_delta());
        }
        thread::sleep(Duration::from_millis(2));
    }
    stop.store(true, Ordering::Relaxed);
    let tallies: Vec<Tally> = workers.into_iter().map(|w| w.join().unwrap()).collect();
    deltas.push(engine.export_delta());

    // Every event whose record returned Ok, added up.
    let mut expected: BTreeMap<String, CreativeStats> = BTreeMap::new();
    for t in &tallies {
        for (id, s) in &t.stats {
            let e = expected.entry(id.clone()).or_default();
            e.overall.add(&s.overall);
            for (cells, from) in
                [(&mut e.devices, &s.devices), (&mut e.dayparts, &s.dayparts), (&mut e.segments, &s.segments)]
            {
                for (name, c) in from {
                    bump(cells, name, c);
                }
            }
        }
    }
    let expected: BTreeMap<String, CreativeStats> =
        expected.iter().map(|(id, s)| (id.clone(), normalize(s))).collect();
    let (picks, records, refused) =
        tallies.iter().fold((0, 0, 0), |a, t| (a.0 + t.picks, a.1 + t.records, a.2 + t.refused));
    let caught_up: u64 = reports.iter().map(|r| r.caught_up).sum();
    eprintln!(
        "{} swaps, {picks} picks, {records} records ({refused} refused: creative removed), {caught_up} events caught up after publishing",
        reports.len()
    );
    assert!(reports.len() >= SWAPS, "only {} swaps in {:?}", reports.len(), began.elapsed());
    assert!(picks >= 500, "only {picks} picks");
    assert!(reports.iter().all(|r| r.dropped == 0));
    assert!(caught_up > 0, "no event was recorded on a version while it was being replaced");

    // 1. The engine's statistics are exactly the events recorded.
    assert_eq!(comparable(&engine.save_stats()), expected);

    // 2. So is the sum of every delta exported along the way.
    let all: Vec<CreativeSpec> = every_id().iter().map(|id| creative(id, 0, false)).collect();
    let hub_spec = spec(all);
    let hub = Selector::new(Catalog::compile(&hub_spec).unwrap(), config()).unwrap();
    for d in &deltas {
        let report = hub.merge_stats(d).unwrap();
        assert!(report.unknown_creatives.is_empty());
    }
    assert_eq!(comparable(&hub.save_stats()), expected);
    // The model's updates too: recorded during swaps or not yet exported when one ran,
    // each is in the engine's weights and in the deltas exactly once.
    let weights = |s: &StatsSnapshot| {
        let mut m = s.model.clone();
        m.sort_by(|a, b| (&a.scope, &a.name, &a.feature).cmp(&(&b.scope, &b.name, &b.feature)));
        m
    };
    assert!(!engine.save_stats().model.is_empty());
    assert_eq!(weights(&hub.save_stats()), weights(&engine.save_stats()));

    // 3. No frequency cap was exceeded: no CAP + 1 impressions within WINDOW seconds.
    for t in &tallies {
        for ((who, id), times) in &t.shown {
            let capped =
                specs.iter().any(|s| s.creatives.iter().any(|c| &c.id == id && c.frequency_cap.is_some()));
            if !capped {
                continue;
            }
            for w in times.windows(CAP as usize + 1) {
                assert!(
                    w[CAP as usize] - w[0] > WINDOW,
                    "person {who} saw '{id}' at {w:?}: cap {CAP} per {WINDOW}s"
                );
            }
        }
    }
}
