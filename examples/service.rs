//! A service in one process: two engine instances (as two service processes would
//! hold), each an `Arc<Engine>` shared by worker threads with a `Selection` per thread.
//! Every request loads the person's profile from a store (JSON in an in-memory map
//! standing in for a profile database), scores new signals with a `PersonaModel` loaded
//! from JSON, selects, records what was shown and clicked, and stores the profile back.
//! Meanwhile one thread exchanges learned deltas between the instances, one saves
//! snapshots, and one watches the catalog file, which a marketer rewrites while traffic
//! runs: the new version is published to both instances without pausing anyone.
//!
//! ```sh
//! cargo run --release --example service -- [--threads N] [--requests N] [--people N]
//! ```
//!
//! `docs/service.md` walks through it; `tests/service.rs` runs it briefly.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use persona_engine::learn::Rng;
use persona_engine::{
    sample, Catalog, Context, DataClass, DataClasses, Device, Engine, Feedback, FeedbackKind, PersonaModel,
    Profile, Report, Selector, SelectorConfig, Signal, StatsSnapshot,
};

/// What to run.
pub struct Options {
    /// Worker threads per engine instance.
    pub threads: usize,
    /// Requests to serve in all (at least until the catalog swap has served traffic).
    pub requests: u64,
    /// Distinct people in the profile store.
    pub people: usize,
    /// Where the catalog file, snapshots and the model copy live.
    pub dir: PathBuf,
}

impl Options {
    fn parse() -> Result<Options, String> {
        let mut options = Options {
            threads: 2,
            requests: 200_000,
            people: 5_000,
            dir: std::env::temp_dir().join(format!("persona-engine-service-{}", std::process::id())),
        };
        let mut args = std::env::args().skip(1);
        while let Some(flag) = args.next() {
            let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
            let bad = |e: &dyn std::fmt::Display| format!("{flag} {value}: {e}");
            match flag.as_str() {
                "--threads" => options.threads = value.parse().map_err(|e| bad(&e))?,
                "--requests" => options.requests = value.parse().map_err(|e| bad(&e))?,
                "--people" => options.people = value.parse().map_err(|e| bad(&e))?,
                _ => return Err(format!("unknown option {flag} (--threads N, --requests N, --people N)")),
            }
        }
        if options.threads == 0 || options.people == 0 {
            return Err("--threads and --people must be at least 1".to_owned());
        }
        Ok(options)
    }
}

/// What a run did, for the summary and for tests.
#[derive(Debug, Default)]
pub struct Summary {
    /// Requests served, per instance.
    pub served: [u64; 2],
    /// Requests served by a catalog version published while traffic ran.
    pub served_by_new_catalog: u64,
    /// Delta exchanges between the instances.
    pub exchanges: u64,
    /// Snapshots written.
    pub snapshots: u64,
    /// Impressions each instance knows of at the end (its own and the merged ones).
    pub impressions_known: [u64; 2],
    /// Impressions recorded, over both instances.
    pub impressions_recorded: u64,
    /// People whose scores the persona model computed from their signals.
    pub scored: u64,
    /// Impressions of a creative that a catalog swap removed between the pick and the
    /// record (refused by the engine with `UnknownCreative`).
    pub removed_before_recorded: u64,
    /// Clicks refused the same way.
    pub clicks_removed_before_recorded: u64,
}

fn main() -> Result<(), Report> {
    let options = Options::parse().map_err(|e| Report::from(std::io::Error::other(e)))?;
    run(&options, &mut std::io::stdout().lock())?;
    Ok(())
}

/// The catalog as the marketer first publishes it: the sample catalog.
fn catalog_v1() -> String {
    sample::CATALOG_JSON.to_owned()
}

/// The marketer's next version: Black Friday is over (its home hero goes), a winter-sun
/// hero arrives.
fn catalog_v2() -> Result<String, Report> {
    let mut spec: serde_json::Value = serde_json::from_str(sample::CATALOG_JSON)?;
    spec["version"] = "wanderly-2026-12".into();
    let creatives = spec["creatives"].as_array_mut().ok_or_else(|| std::io::Error::other("no creatives"))?;
    creatives.retain(|c| c["id"] != "gen-black-friday-hero");
    creatives.push(serde_json::json!({
        "id": "beach-winter-sun-hero",
        "placements": ["home_hero"],
        "personas": {"Beach Lover": 1.0},
        "priority": 1.5,
        "payload": {"headline": "Winter sun, seven hours away"}
    }));
    Ok(serde_json::to_string_pretty(&spec)?)
}

/// The profile store: person key → profile JSON, as a database or cache would hold it.
type Store = Mutex<HashMap<String, String>>;

/// Loads a person's profile (a new one, with signals from their first visit, when the
/// store has none), lets the persona model score new signals, and says whether it did.
fn load_profile(
    store: &Store,
    key: &str,
    version: &persona_engine::Version,
    rng: &mut Rng,
    now: i64,
) -> Result<(Profile, bool), Report> {
    let menu = version.catalog().menu();
    let stored = store.lock().map_err(|_| std::io::Error::other("store poisoned"))?.get(key).cloned();
    let mut profile = match stored {
        Some(json) => Profile::from_json(menu, &json)?,
        None => {
            let mut p = Profile::for_menu(menu, now - 200 * 86_400);
            p.visits = 1 + rng.below(30) as u32;
            p.consent = DataClasses::only(DataClass::Behavioral).with(DataClass::Purchase);
            p
        }
    };
    // A visit sometimes brings a signal (a page viewed, a purchase): score again.
    let themes = ["luxury", "family", "budget", "adventure", "beach", "city", "food", "spa", "eco"];
    let new_signal = profile.signals.is_empty() || rng.below(10) == 0;
    if new_signal {
        let theme = themes[rng.below(themes.len())];
        let (name, class) = if rng.below(3) == 0 {
            ("bought", DataClass::Purchase)
        } else {
            ("viewed", DataClass::Behavioral)
        };
        profile.add_signal(Signal { name: format!("{name}_{theme}"), value: 1.0, class, at: now })?;
        if let Some(model) = version.model() {
            model.apply(&mut profile, now)?;
        }
    }
    Ok((profile, new_signal))
}

/// Runs the service and writes what happened to `out`.
pub fn run(options: &Options, out: &mut impl Write) -> Result<Summary, Report> {
    std::fs::create_dir_all(&options.dir)?;
    let catalog_path = options.dir.join("catalog.json");
    std::fs::write(&catalog_path, catalog_v1())?;
    let model_json =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/data/sample_persona_model.json"))?;

    // Two instances, as two processes of the service would each hold one.
    let build = |path: &Path| -> Result<(Selector, PersonaModel), Report> {
        let selector = Selector::new(Catalog::from_file(path)?, SelectorConfig::default())?;
        let model = PersonaModel::from_json(selector.catalog().menu(), &model_json)?;
        Ok((selector, model))
    };
    let mut engines = Vec::new();
    for _ in 0..2 {
        let (selector, model) = build(&catalog_path)?;
        engines.push(Arc::new(Engine::new(selector, Some(model))));
    }
    let stores: [Arc<Store>; 2] = [Arc::default(), Arc::default()];
    writeln!(
        out,
        "2 instances x {} worker threads, {} people, catalog '{}' from {}",
        options.threads,
        options.people,
        engines[0].current().catalog().version(),
        catalog_path.display()
    )?;

    let served = Arc::new(AtomicU64::new(0));
    let served_new = Arc::new(AtomicU64::new(0));
    let swapped = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut summary = Summary::default();

    std::thread::scope(|scope| -> Result<(), Report> {
        // Workers: each has its own Selection and random generator, shares its engine.
        let mut workers = Vec::new();
        for (instance, engine) in engines.iter().enumerate() {
            for t in 0..options.threads {
                let (engine, store) = (Arc::clone(engine), Arc::clone(&stores[instance]));
                let (served, served_new, swapped) =
                    (Arc::clone(&served), Arc::clone(&served_new), Arc::clone(&swapped));
                let people = options.people;
                let requests = options.requests;
                workers.push(scope.spawn(move || -> Result<(u64, u64, u64, u64, u64), Report> {
                    let mut rng = Rng::new(42 + (instance * 1000 + t) as u64);
                    let mut selection = engine.current().selector().new_selection(1);
                    let (mut mine, mut impressions, mut scored, mut late, mut late_clicks) =
                        (0u64, 0u64, 0u64, 0u64, 0u64);
                    while served.load(Ordering::Relaxed) < requests || !swapped.load(Ordering::Relaxed) {
                        let n = served.fetch_add(1, Ordering::Relaxed);
                        let key = format!("person-{}", rng.below(people));
                        let now = sample::NOW + (n / 50) as i64;
                        let moment = Context::at(now).with_device(if n % 3 == 0 {
                            Device::Mobile
                        } else {
                            Device::Desktop
                        });
                        let current = engine.current();
                        let (mut profile, was_scored) = load_profile(&store, &key, &current, &mut rng, now)?;
                        scored += u64::from(was_scored);
                        let version = engine.select(&profile, &moment, "home_hero", &mut selection)?;
                        if version.generation() > 1 {
                            served_new.fetch_add(1, Ordering::Relaxed);
                        }
                        if let Some(pick) = selection.picks().first() {
                            let shown = Feedback::new(pick.creative, FeedbackKind::Impression, &moment);
                            let clicked = rng.unit() < 0.05;
                            match engine.record(&version, &mut profile, &shown) {
                                Ok(()) => impressions += 1,
                                // Picked just before a swap removed the creative: the
                                // engine says so rather than count it for nothing.
                                Err(persona_engine::Error::UnknownCreative { .. }) => late += 1,
                                Err(e) => return Err(e.into()),
                            }
                            if clicked {
                                let click = Feedback::new(pick.creative, FeedbackKind::Click, &moment);
                                match engine.record(&version, &mut profile, &click) {
                                    Ok(()) => {}
                                    // As for the impression: counted, not ignored.
                                    Err(persona_engine::Error::UnknownCreative { .. }) => late_clicks += 1,
                                    Err(e) => return Err(e.into()),
                                }
                            }
                        }
                        let json = profile.to_json(version.catalog().menu())?;
                        store.lock().map_err(|_| std::io::Error::other("store poisoned"))?.insert(key, json);
                        mine += 1;
                    }
                    Ok((mine, impressions, scored, late, late_clicks))
                }));
            }
        }

        // The marketer: once a quarter of the traffic is served, rewrites the catalog file.
        let marketer = {
            let (served, done, path) = (Arc::clone(&served), Arc::clone(&done), catalog_path.clone());
            let quarter = options.requests / 4;
            scope.spawn(move || -> Result<(), Report> {
                while served.load(Ordering::Relaxed) < quarter && !done.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(2));
                }
                persona_engine::durable::write_atomically(&path, catalog_v2()?.as_bytes())?;
                Ok(())
            })
        };

        // The watcher: notices the file changed and publishes the new version to both
        // instances; statistics carry over by creative id.
        let watcher = {
            let (engines, swapped, done, path) =
                (engines.clone(), Arc::clone(&swapped), Arc::clone(&done), catalog_path.clone());
            let model_json = model_json.clone();
            scope.spawn(move || -> Result<Vec<String>, Report> {
                let mut last = std::fs::read(&path)?;
                let mut log = Vec::new();
                while !done.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(10));
                    let now = std::fs::read(&path)?;
                    if now == last {
                        continue;
                    }
                    last = now;
                    for (i, engine) in engines.iter().enumerate() {
                        let selector = Selector::new(Catalog::from_file(&path)?, SelectorConfig::default())?;
                        let model = PersonaModel::from_json(selector.catalog().menu(), &model_json)?;
                        let version = selector.catalog().version().to_owned();
                        let report = engine.publish(selector, Some(model))?;
                        log.push(format!(
                            "instance {i}: published '{version}' (generation {}): {} creatives' statistics carried, \
                             {} dormant, {} dropped ({} segment cells, {} model weights)",
                            report.generation,
                            report.carried,
                            report.dormant,
                            report.dropped,
                            report.dropped_segments,
                            report.dropped_model_entries
                        ));
                    }
                    swapped.store(true, Ordering::Relaxed);
                }
                Ok(log)
            })
        };

        // Deltas between the instances, and snapshots, every few milliseconds.
        let syncer = {
            let (engines, done) = (engines.clone(), Arc::clone(&done));
            let dir = options.dir.clone();
            scope.spawn(move || -> Result<(u64, u64), Report> {
                let (mut exchanges, mut snapshots) = (0u64, 0u64);
                let mut last_snapshot = Instant::now();
                loop {
                    let finished = done.load(Ordering::Relaxed);
                    exchange(&engines[0], &engines[1])?;
                    exchanges += 1;
                    if finished || last_snapshot.elapsed() >= Duration::from_millis(200) {
                        for (i, engine) in engines.iter().enumerate() {
                            engine.save_stats_to(dir.join(format!("stats-{i}.json")))?;
                        }
                        snapshots += 1;
                        last_snapshot = Instant::now();
                    }
                    if finished {
                        return Ok((exchanges, snapshots));
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            })
        };

        // Every worker is joined and `done` is set before any error is returned: the
        // watcher and the syncer run until `done`, and the scope waits for them, so an
        // early return here would hang instead of failing.
        let mut first_error = None;
        for (i, worker) in workers.into_iter().enumerate() {
            let result =
                worker.join().unwrap_or_else(|_| Err(std::io::Error::other("a worker panicked").into()));
            match result {
                Ok((mine, impressions, scored, late, late_clicks)) => {
                    summary.served[i / options.threads] += mine;
                    summary.impressions_recorded += impressions;
                    summary.scored += scored;
                    summary.removed_before_recorded += late;
                    summary.clicks_removed_before_recorded += late_clicks;
                }
                Err(e) => first_error = first_error.or(Some(e)),
            }
        }
        done.store(true, Ordering::Relaxed);
        joined(marketer.join())??;
        let swaps = joined(watcher.join())??;
        (summary.exchanges, summary.snapshots) = joined(syncer.join())??;
        if let Some(e) = first_error {
            return Err(e);
        }
        for line in swaps {
            writeln!(out, "{line}")?;
        }
        Ok(())
    })?;

    let elapsed = started.elapsed().as_secs_f64();
    summary.served_by_new_catalog = served_new.load(Ordering::Relaxed);
    for (i, engine) in engines.iter().enumerate() {
        summary.impressions_known[i] = impressions(&engine.save_stats());
    }
    let total = summary.served[0] + summary.served[1];
    writeln!(
        out,
        "served {total} requests in {elapsed:.2} s: {:.0} requests/s ({} on instance 0, {} on instance 1; {} after the swap)",
        total as f64 / elapsed.max(1e-9),
        summary.served[0],
        summary.served[1],
        summary.served_by_new_catalog
    )?;
    writeln!(
        out,
        "each request: load the profile JSON, score new signals ({} times), select, record, store the profile",
        summary.scored
    )?;
    writeln!(
        out,
        "{} delta exchanges: instance 0 knows {} impressions, instance 1 knows {} (recorded: {}; refused: {} \
         impressions and {} clicks, their creative removed by the swap between pick and record)",
        summary.exchanges,
        summary.impressions_known[0],
        summary.impressions_known[1],
        summary.impressions_recorded,
        summary.removed_before_recorded,
        summary.clicks_removed_before_recorded
    )?;
    writeln!(out, "{} snapshots of each instance in {}", summary.snapshots, options.dir.display())?;
    let reloaded = persona_engine::durable::read_stats(options.dir.join("stats-0.json"))?;
    writeln!(out, "the last snapshot of instance 0 holds {} impressions", impressions(&reloaded))?;
    Ok(summary)
}

/// Sends each instance the other's events since the last exchange. Each delta is
/// exported just before it is merged: an export moves the instance's baseline, so a
/// delta exported and then not merged (the other merge failed first) would be lost.
fn exchange(a: &Engine, b: &Engine) -> Result<(), Report> {
    let _ = b.merge_stats(&a.export_delta())?;
    let _ = a.merge_stats(&b.export_delta())?;
    Ok(())
}

/// The impressions a snapshot counts over all creatives.
fn impressions(snapshot: &StatsSnapshot) -> u64 {
    snapshot.creatives.iter().map(|(_, c)| c.overall.impressions).sum()
}

/// A thread's result, with a panic turned into an error.
fn joined<T>(result: std::thread::Result<T>) -> Result<T, std::io::Error> {
    result.map_err(|_| std::io::Error::other("a thread panicked"))
}
