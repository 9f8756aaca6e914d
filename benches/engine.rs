//! Criterion benchmarks: every figure of `examples/perf_report.rs`, measured with
//! criterion over deterministic synthetic catalogs (`Synthetic`, seed 2026, one
//! placement), so each can be read as a multiple of the scan floor. The `warm` group
//! runs on warm statistics with varied people; the others on cold statistics with 512
//! focused people (one high persona each).
//!
//! Run with `cargo bench --bench engine` (about 70 s on 2 cores, once built); list the
//! names with `cargo bench --bench engine -- --list`, or run a subset by regex, e.g.
//! `cargo bench --bench engine -- '^(floor/candidates/1000|select/candidates/1000/.*)$'`.

use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};

use persona_engine::ffi::*;
use persona_engine::sample::Synthetic;
use persona_engine::{
    Catalog, Context, CreativeId, Feedback, FeedbackKind, PersonaId, PlacementId, Policy, Profile, Selector,
    SelectorConfig,
};

/// The catalogs' seed; the same as the performance report's.
const SEED: u64 = 2026;
/// Personas on the menu unless a group varies them.
const PERSONAS: usize = 40;
/// Benchmark people per world; calls cycle through them.
const PEOPLE: usize = 512;
/// Candidate counts in the placement for the scaling groups.
const CANDIDATES: [usize; 4] = [100, 1_000, 10_000, 100_000];

/// One generated catalog behind a selector, its people, and their persona weights
/// for the scan floor.
struct World {
    shape: Synthetic,
    selector: Arc<Selector>,
    placement: PlacementId,
    people: Vec<(Profile, Context)>,
    weights: Vec<Vec<f32>>,
}

impl World {
    fn new(creatives: usize, personas: usize, policy: Policy, prune: bool) -> World {
        let mut config = SelectorConfig::with_policy(policy);
        config.prune = prune;
        World::configured(creatives, personas, config)
    }

    fn configured(creatives: usize, personas: usize, config: SelectorConfig) -> World {
        let shape = Synthetic { personas, placements: 1, creatives, seed: SEED };
        let catalog = Catalog::compile(&shape.spec()).expect("the synthetic spec compiles");
        let selector = Arc::new(Selector::new(catalog, config).expect("a valid configuration"));
        let placement = selector.placement("placement-0").expect("the synthetic placement");
        let people = shape.focused_people(PEOPLE);
        let weights = people
            .iter()
            .map(|(p, _)| (0..personas).map(|i| f32::from(p.scores.get(PersonaId(i as u16))) / 9.0).collect())
            .collect();
        World { shape, selector, placement, people, weights }
    }

    /// A world that looks like traffic: varied people (several high personas, mid and
    /// low scores, some likes and dislikes) and statistics warmed by `events` of the
    /// learner's own picks (impressions, a click in 25), people keeping their exposures.
    fn warm_configured(creatives: usize, config: SelectorConfig, events: usize) -> World {
        let mut world = World::configured(creatives, PERSONAS, config);
        world.people = world.shape.people(PEOPLE);
        for (i, (p, _)) in world.people.iter_mut().enumerate() {
            if i % 5 == 0 {
                p.likes.push(PersonaId((i % PERSONAS) as u16));
            }
            if i % 7 == 0 {
                p.dislikes.push(PersonaId(((i * 3 + 1) % PERSONAS) as u16));
            }
        }
        let mut selection = world.selector.new_selection(1);
        for e in 0..events {
            let (p, c) = &mut world.people[e % PEOPLE];
            let c = c.clone().with_seed(e as u64);
            let _ = world.selector.select(p, &c, world.placement, &mut selection);
            if let Some(pick) = selection.picks().first() {
                let creative = pick.creative;
                let _ = world.selector.record(p, &Feedback::new(creative, FeedbackKind::Impression, &c));
                if e % 25 == 0 {
                    let _ = world.selector.record(p, &Feedback::new(creative, FeedbackKind::Click, &c));
                }
            }
        }
        world.weights = world
            .people
            .iter()
            .map(|(p, _)| (0..PERSONAS).map(|i| f32::from(p.scores.get(PersonaId(i as u16))) / 9.0).collect())
            .collect();
        world
    }
}

/// Short measurement, so the whole suite runs in a few minutes on a 2-core machine.
fn configure(group: &mut BenchmarkGroup<'_, WallTime>) {
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_millis(1_500));
    group.sample_size(20);
}

/// `select` cycling through the world's people, into one reused selection of `k`.
fn bench_select(group: &mut BenchmarkGroup<'_, WallTime>, name: &str, world: &World, k: usize) {
    let mut selection = world.selector.new_selection(k);
    let mut i = 0usize;
    group.bench_function(name, |b| {
        b.iter(|| {
            let (profile, context) = &world.people[i % world.people.len()];
            i = i.wrapping_add(1);
            black_box(world.selector.select(
                black_box(profile),
                black_box(context),
                world.placement,
                &mut selection,
            ))
        })
    });
}

/// `floor/candidates/{n}`: `Catalog::scan_floor` with the person's persona weights.
fn floor(c: &mut Criterion) {
    let mut group = c.benchmark_group("floor");
    configure(&mut group);
    for n in CANDIDATES {
        let world = World::new(n, PERSONAS, Policy::Greedy, true);
        let catalog = world.selector.catalog();
        let mut i = 0usize;
        group.bench_function(format!("candidates/{n}"), |b| {
            b.iter(|| {
                let weights = &world.weights[i % world.weights.len()];
                i = i.wrapping_add(1);
                black_box(catalog.scan_floor(world.placement, black_box(weights)))
            })
        });
    }
    group.finish();
}

/// `select/candidates/{n}/{greedy,thompson}/k{1,5}`, `select/personas/{p}` (greedy,
/// k = 1, 1,000 candidates) and `select/unpruned/1000` (greedy without the index).
fn select(c: &mut Criterion) {
    let mut group = c.benchmark_group("select");
    configure(&mut group);
    for n in CANDIDATES {
        for (policy, name) in [(Policy::Greedy, "greedy"), (Policy::Thompson, "thompson")] {
            let world = World::new(n, PERSONAS, policy, true);
            for k in [1, 5] {
                bench_select(&mut group, &format!("candidates/{n}/{name}/k{k}"), &world, k);
            }
        }
    }
    for personas in [8, 40, 128] {
        let world = World::new(1_000, personas, Policy::Greedy, true);
        bench_select(&mut group, &format!("personas/{personas}"), &world, 1);
    }
    let world = World::new(1_000, PERSONAS, Policy::Greedy, false);
    bench_select(&mut group, "unpruned/1000", &world, 1);
    group.finish();
}

/// `templates/{n}/{plain,templated}`: greedy, k = 1, on `n` candidates, plain creatives
/// only and with 10 % of them templates of 4 slots × 8 variants, in the same run.
fn templates(c: &mut Criterion) {
    let mut group = c.benchmark_group("templates");
    configure(&mut group);
    for n in [1_000, 100_000] {
        let plain = World::new(n, PERSONAS, Policy::Greedy, true);
        bench_select(&mut group, &format!("{n}/plain"), &plain, 1);
        let shape = Synthetic { personas: PERSONAS, placements: 1, creatives: n - n / 10, seed: SEED };
        let catalog = Catalog::compile(&shape.spec_with_templates(n / 10, 4, 8)).expect("compiles");
        let selector =
            Arc::new(Selector::new(catalog, SelectorConfig::with_policy(Policy::Greedy)).expect("valid"));
        let placement = selector.placement("placement-0").expect("the synthetic placement");
        let templated = World { selector, placement, ..plain };
        bench_select(&mut group, &format!("{n}/templated"), &templated, 1);
    }
    group.finish();
}

/// `warm/1000/{greedy,epsilon,epsilon-reach,thompson}`: k = 1 on 1,000 candidates
/// after 100,000 events of the learner's own picks, varied people (the traffic-like
/// figures); `epsilon-reach` explores among the creatives that could be the best
/// (`learning.explore_reach` 1). `warm/100000/{greedy,epsilon}`: 100,000 candidates
/// after 5,000 of greedy's own events; `warm/100000/greedy-spread-events`: after
/// 200,000 events spread evenly over the catalog (as `perf_report`'s rows).
fn warm(c: &mut Criterion) {
    let mut group = c.benchmark_group("warm");
    configure(&mut group);
    let epsilon = Policy::EpsilonGreedy { epsilon: 0.1 };
    let mut reaching = SelectorConfig::with_policy(epsilon);
    reaching.learning.explore_reach = Some(1.0);
    for (config, name) in [
        (SelectorConfig::with_policy(Policy::Greedy), "greedy"),
        (SelectorConfig::with_policy(epsilon), "epsilon"),
        (reaching, "epsilon-reach"),
        (SelectorConfig::with_policy(Policy::Thompson), "thompson"),
    ] {
        let world = World::warm_configured(1_000, config, 100_000);
        bench_select(&mut group, &format!("1000/{name}"), &world, 1);
    }
    // 100,000 candidates after 5,000 of greedy's own events, then ε-greedy on the same
    // statistics and people (what its eligible count costs, dislikes included).
    let world = World::warm_configured(100_000, SelectorConfig::with_policy(Policy::Greedy), 5_000);
    bench_select(&mut group, "100000/greedy", &world, 1);
    let eps = Selector::new(world.selector.catalog_arc().clone(), SelectorConfig::with_policy(epsilon))
        .expect("a valid configuration");
    let loaded = eps.load_stats(&world.selector.save_stats()).expect("the same catalog");
    assert!(loaded.unknown_creatives.is_empty(), "the same catalog");
    let world = World { selector: Arc::new(eps), ..world };
    bench_select(&mut group, "100000/epsilon", &world, 1);
    // 100,000 candidates after 200,000 impressions (a click in 20) spread evenly over
    // the catalog: every creative a little learned, the attribute values a lot.
    let world = World::new(100_000, PERSONAS, Policy::Greedy, true);
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for e in 0..200_000 {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        let creative = CreativeId(((x >> 33) % 100_000) as u32);
        let (p, c) = &world.people[e % PEOPLE];
        let mut p = p.clone();
        let _ = world.selector.record(&mut p, &Feedback::new(creative, FeedbackKind::Impression, c));
        if (x >> 20) % 20 == 0 {
            let _ = world.selector.record(&mut p, &Feedback::new(creative, FeedbackKind::Click, c));
        }
    }
    bench_select(&mut group, "100000/greedy-spread-events", &world, 1);
    group.finish();
}

/// `record/impression`: one impression per call, on creatives spread over the catalog.
fn record(c: &mut Criterion) {
    let mut group = c.benchmark_group("record");
    configure(&mut group);
    let world = World::new(1_000, PERSONAS, Policy::Greedy, true);
    let mut people = world.people.clone();
    let creatives = world.selector.catalog().len();
    let mut i = 0usize;
    group.bench_function("impression", |b| {
        b.iter(|| {
            let len = people.len();
            let (profile, context) = &mut people[i % len];
            let creative = CreativeId((i % creatives) as u32);
            i = i.wrapping_add(1);
            let done = world
                .selector
                .record(profile, black_box(&Feedback::new(creative, FeedbackKind::Impression, context)));
            // Keep the profile's exposure list short, as the report does.
            profile.exposures.clear();
            black_box(done)
        })
    });
    group.finish();
}

/// The C side of the `ffi` group: a selector, a selection and one profile per person,
/// built through the C ABI from the same spec and people as the Rust world.
struct CWorld {
    selector: *mut pe_selector,
    selection: *mut pe_selection,
    profiles: Vec<*mut pe_profile>,
    contexts: Vec<pe_context>,
}

impl CWorld {
    fn new(world: &World) -> CWorld {
        let spec = world.shape.spec().to_json().expect("the spec serializes");
        let config = r#"{"learning":{"policy":{"kind":"greedy"}}}"#;
        let mut selector: *mut pe_selector = std::ptr::null_mut();
        let mut selection: *mut pe_selection = std::ptr::null_mut();
        // SAFETY: `spec` and `config` are readable for their lengths during the calls and
        // the out-pointers are writable; the handles written are freed in `Drop`.
        unsafe {
            let status = pe_selector_new_from_json(
                spec.as_ptr().cast(),
                spec.len(),
                config.as_ptr().cast(),
                config.len(),
                &mut selector,
            );
            assert_eq!(status, pe_status::Ok, "pe_selector_new_from_json");
            let status = pe_selection_new(selector, 1, &mut selection);
            assert_eq!(status, pe_status::Ok, "pe_selection_new");
        }
        let menu = world.selector.catalog().menu();
        let profiles = world
            .people
            .iter()
            .map(|(p, _)| {
                let json = p.to_json(menu).expect("the profile serializes");
                let mut out: *mut pe_profile = std::ptr::null_mut();
                // SAFETY: a live selector, `json` readable for its length, a writable
                // out-pointer; the profile is freed in `Drop`.
                let status =
                    unsafe { pe_profile_new_from_json(selector, json.as_ptr().cast(), json.len(), &mut out) };
                assert_eq!(status, pe_status::Ok, "pe_profile_new_from_json");
                out
            })
            .collect();
        let contexts = world
            .people
            .iter()
            .map(|(_, c)| pe_context {
                at: c.at,
                utc_offset_minutes: c.utc_offset_minutes,
                device: c.device as u32,
                channel: c.channel as u32,
                weather: c.weather as u32,
                seed: c.seed.unwrap_or(0),
                region: std::ptr::null(),
                region_len: 0,
                attributes: std::ptr::null(),
                attribute_count: 0,
            })
            .collect();
        CWorld { selector, selection, profiles, contexts }
    }
}

impl Drop for CWorld {
    fn drop(&mut self) {
        // SAFETY: each handle came from its constructor in `CWorld::new` and is freed
        // exactly once, here, after the last use.
        unsafe {
            for &p in &self.profiles {
                pe_profile_free(p);
            }
            pe_selection_free(self.selection);
            pe_selector_free(self.selector);
        }
    }
}

/// `ffi/pe_select` next to `ffi/select`: the same catalog, people and contexts, fresh
/// statistics, greedy, k = 1, through the C ABI and through the Rust call.
fn ffi(c: &mut Criterion) {
    let mut group = c.benchmark_group("ffi");
    configure(&mut group);
    let world = World::new(1_000, PERSONAS, Policy::Greedy, true);
    let cworld = CWorld::new(&world);
    let placement = world.placement.0;
    let mut i = 0usize;
    group.bench_function("pe_select", |b| {
        b.iter(|| {
            let j = i % cworld.profiles.len();
            i = i.wrapping_add(1);
            // SAFETY: live handles from `CWorld::new`, a context with no strings, and a
            // selection used by this thread alone.
            black_box(unsafe {
                pe_select(
                    black_box(cworld.selector),
                    black_box(cworld.profiles[j]),
                    black_box(&cworld.contexts[j]),
                    placement,
                    cworld.selection,
                )
            })
        })
    });
    bench_select(&mut group, "select", &world, 1);
    group.finish();
    drop(cworld);
}

/// `threads/{1,2}`: throughput of select and record mixed 20:1 with 1 and 2 threads
/// sharing one selector. Each measured batch of `iters` operations is split between the
/// threads, which start together on a fresh selector over the same compiled catalog:
/// recording changes the statistics and with them what `select` costs, so every batch
/// starts from fresh statistics instead of inheriting all earlier batches' records.
fn threads(c: &mut Criterion) {
    let mut group = c.benchmark_group("threads");
    configure(&mut group);
    group.throughput(Throughput::Elements(1));
    let world = World::new(1_000, PERSONAS, Policy::Greedy, true);
    let config = *world.selector.config();
    for threads in [1usize, 2] {
        let mut round = 0usize;
        group.bench_function(format!("{threads}"), |b| {
            b.iter_custom(|iters| {
                round = round.wrapping_add(1);
                let selector = Selector::new(world.selector.catalog_arc().clone(), config)
                    .expect("a valid configuration");
                let start = Barrier::new(threads + 1);
                std::thread::scope(|s| {
                    for t in 0..threads {
                        let share = iters / threads as u64 + u64::from((t as u64) < iters % threads as u64);
                        let (world, selector, start) = (&world, &selector, &start);
                        s.spawn(move || {
                            let mut people = world.people.clone();
                            let mut selection = selector.new_selection(1);
                            let mut i = round.wrapping_mul(31).wrapping_add(t * 7);
                            start.wait();
                            for n in 0..share {
                                let len = people.len();
                                let (profile, context) = &mut people[i % len];
                                let _ = black_box(selector.select(
                                    profile,
                                    context,
                                    world.placement,
                                    &mut selection,
                                ));
                                if n % 20 == 19 {
                                    if let Some(pick) = selection.picks().first() {
                                        let feedback =
                                            Feedback::new(pick.creative, FeedbackKind::Impression, context);
                                        let _ = black_box(selector.record(profile, &feedback));
                                        profile.exposures.clear();
                                    }
                                }
                                i = i.wrapping_add(1);
                            }
                        });
                    }
                    start.wait();
                    // The clock starts when every thread is ready; leaving the scope
                    // joins them all.
                    Instant::now()
                })
                .elapsed()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, warm, floor, select, record, ffi, threads, templates);
criterion_main!(benches);
