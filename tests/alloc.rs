//! The hot path never allocates: a counting global allocator watches `select`, and
//! `pe_select` through the C ABI, over tens of thousands of varied requests on a
//! realistic catalog. One global allocator
//! per test binary, so this file holds the allocation tests alone; counting is per
//! thread, so the harness's own threads do not disturb it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use persona_engine::sample::{self, Synthetic};
use persona_engine::{Catalog, Selector, SelectorConfig};

struct Counting;

thread_local! {
    static ON: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<u64> = const { Cell::new(0) };
}

fn note() {
    // `try_with`: thread-locals may be gone while a thread shuts down.
    let _ = ON.try_with(|on| {
        if on.get() {
            let _ = COUNT.try_with(|c| c.set(c.get() + 1));
        }
    });
}

// SAFETY: defers to the system allocator; counting touches only const thread-locals.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made on this thread while `f` runs.
fn allocations<R>(f: impl FnOnce() -> R) -> (u64, R) {
    COUNT.with(|c| c.set(0));
    ON.with(|on| on.set(true));
    let r = f();
    ON.with(|on| on.set(false));
    (COUNT.with(Cell::get), r)
}

#[test]
fn the_counter_sees_a_known_allocation() {
    let (n, v) = allocations(|| vec![1u8; 100]);
    assert_eq!(v.len(), 100);
    assert_eq!(n, 1);
    let (n, _) = allocations(|| std::hint::black_box(3 + 4));
    assert_eq!(n, 0);
}

#[test]
fn select_never_allocates() {
    let shape = Synthetic { personas: 40, placements: 3, creatives: 600, seed: 7 };
    let selector =
        Selector::new(Catalog::compile(&shape.spec()).unwrap(), SelectorConfig::default()).unwrap();
    let people = shape.people(500);
    let placements: Vec<_> = (0..3).map(|i| selector.placement(&format!("placement-{i}")).unwrap()).collect();
    let mut selections = [selector.new_selection(1), selector.new_selection(5)];
    let exclude = selector.creative("creative-3").unwrap();
    selections[1].exclude(exclude);

    let (n, picked) = allocations(|| {
        let mut picked = 0usize;
        for round in 0..24 {
            for (i, (profile, context)) in people.iter().enumerate() {
                let s = &mut selections[(i + round) % 2];
                picked += selector.select(profile, context, placements[(i + round) % 3], s).unwrap_or(0);
            }
        }
        picked
    });
    assert_eq!(n, 0, "select allocated {n} times over 12,000 selections");
    // The run did real work: most requests got picks, k = 5 ones several.
    assert!(picked > 12_000 * 2, "only {picked} picks");
}

#[test]
fn select_with_templates_in_the_catalog_never_allocates() {
    use persona_engine::{Feedback, FeedbackKind, Policy};
    // 10 % of the catalog are templates of 4 slots × 8 variants.
    let shape = Synthetic { personas: 40, placements: 3, creatives: 540, seed: 13 };
    let catalog = std::sync::Arc::new(Catalog::compile(&shape.spec_with_templates(60, 4, 8)).unwrap());
    assert_eq!(catalog.template_count(), 60);
    let mut people = shape.people(90);
    // Epsilon-greedy among every eligible creative and among those that could be best.
    for (policy, reach) in [
        (Policy::Rules, None),
        (Policy::Greedy, None),
        (Policy::EpsilonGreedy { epsilon: 0.1 }, None),
        (Policy::EpsilonGreedy { epsilon: 0.1 }, Some(1.0)),
        (Policy::Softmax { temperature: 0.2 }, None),
        (Policy::Thompson, None),
    ] {
        let mut config = SelectorConfig::with_policy(policy);
        config.learning.explore_reach = reach;
        let selector = Selector::new(catalog.clone(), config).unwrap();
        let placements: Vec<_> =
            (0..3).map(|i| selector.placement(&format!("placement-{i}")).unwrap()).collect();
        let mut selection = selector.new_selection(3);
        let (mut total, mut assembled) = (0u64, 0usize);
        for round in 0..4 {
            for (i, (profile, context)) in people.iter_mut().enumerate() {
                let placement = placements[(i + round) % 3];
                let (n, _) =
                    allocations(|| selector.select(profile, context, placement, &mut selection).unwrap_or(0));
                total += n;
                // Feedback between selections may allocate (it grows the profile).
                let first = selection.picks().first().copied();
                if let Some(pick) = first {
                    let feedback = Feedback::new(pick.creative, FeedbackKind::Impression, context);
                    match selection.assembly(&pick).copied() {
                        Some(a) => {
                            assembled += 1;
                            selector.record_assembly(profile, &feedback, &a).unwrap();
                        }
                        None => selector.record(profile, &feedback).unwrap(),
                    }
                }
                context.seed = Some(context.seed.unwrap_or(0).wrapping_add(1));
            }
        }
        assert_eq!(total, 0, "{policy:?}: select allocated {total} times over 360 selections");
        assert!(assembled > 30, "{policy:?}: only {assembled} assembled first picks");
    }
}

#[test]
fn select_with_learning_and_exploration_never_allocates_between_records() {
    use persona_engine::{Feedback, FeedbackKind, Policy};
    let shape = Synthetic { personas: 40, placements: 3, creatives: 600, seed: 11 };
    let catalog = std::sync::Arc::new(Catalog::compile(&shape.spec()).unwrap());
    let policies = [
        (Policy::Greedy, None),
        (Policy::EpsilonGreedy { epsilon: 0.1 }, None),
        (Policy::EpsilonGreedy { epsilon: 0.1 }, Some(1.0)),
        (Policy::Softmax { temperature: 0.2 }, None),
        (Policy::Thompson, None),
    ];
    let mut people = shape.people(300);
    for (policy, reach) in policies {
        let mut config = SelectorConfig::with_policy(policy);
        config.learning.explore_reach = reach;
        let selector = Selector::new(catalog.clone(), config).unwrap();
        let placements: Vec<_> =
            (0..3).map(|i| selector.placement(&format!("placement-{i}")).unwrap()).collect();
        selector.set_shadow(placements[2], true).unwrap();
        let mut selection = selector.new_selection(3);
        let mut total = 0u64;
        for round in 0..10 {
            for (i, (profile, context)) in people.iter_mut().enumerate() {
                let placement = placements[(i + round) % 3];
                let (n, picked) =
                    allocations(|| selector.select(profile, context, placement, &mut selection).unwrap_or(0));
                total += n;
                assert!(picked > 0 || selection.is_empty());
                // Feedback between selections (allowed to allocate: it grows the profile).
                if let Some(pick) = selection.picks().first() {
                    let c = pick.creative;
                    selector.record(profile, &Feedback::new(c, FeedbackKind::Impression, context)).unwrap();
                    if (i + round) % 7 == 0 {
                        selector.record(profile, &Feedback::new(c, FeedbackKind::Click, context)).unwrap();
                    }
                    if (i + round) % 29 == 0 {
                        selector
                            .record(profile, &Feedback::new(c, FeedbackKind::ThumbsDown, context))
                            .unwrap();
                    }
                }
                context.seed = Some(context.seed.unwrap_or(0).wrapping_add(1));
            }
        }
        assert_eq!(total, 0, "{policy:?}: select allocated {total} times over 3,000 selections");
    }
}

#[test]
fn the_first_select_on_a_new_thread_does_not_allocate_when_the_selection_was_made_there() {
    let shape = Synthetic { personas: 8, placements: 1, creatives: 50, seed: 3 };
    let selector = std::sync::Arc::new(
        Selector::new(Catalog::compile(&shape.spec()).unwrap(), SelectorConfig::default()).unwrap(),
    );
    let people = shape.people(1);
    let placement = selector.placement("placement-0").unwrap();
    let s2 = selector.clone();
    let n = std::thread::spawn(move || {
        let mut selection = s2.new_selection(2);
        let (profile, context) = &people[0];
        allocations(|| s2.select(profile, context, placement, &mut selection)).0
    })
    .join()
    .unwrap();
    assert_eq!(n, 0);
}
/// The same promise through the C ABI: `pe_select` (argument checks, the `pe_context`
/// conversion with region and attribute strings, the panic boundary) never allocates.
#[test]
fn pe_select_through_the_c_abi_never_allocates() {
    use persona_engine::ffi::*;
    use std::ptr::{null, null_mut};

    let shape = Synthetic { personas: 40, placements: 3, creatives: 600, seed: 11 };
    let json = serde_json::to_string(&shape.spec()).unwrap();
    let mut selector = null_mut();
    let mut profiles = Vec::new();
    let mut selections = [null_mut(), null_mut()];
    let mut placements = [0u16; 3];
    let regions = ["FR", "US", "GB", "DE"];
    let tiers = ["gold", "silver"];
    let attributes: Vec<[pe_attribute; 2]> = tiers
        .iter()
        .map(|tier| {
            [
                pe_attribute {
                    key: b"loyalty_tier".as_ptr().cast(),
                    key_len: 12,
                    value: tier.as_ptr().cast(),
                    value_len: tier.len(),
                },
                pe_attribute {
                    key: b"campaign".as_ptr().cast(),
                    key_len: 8,
                    value: b"winter".as_ptr().cast(),
                    value_len: 6,
                },
            ]
        })
        .collect();
    unsafe {
        let status = pe_selector_new_from_json(json.as_ptr().cast(), json.len(), null(), 0, &mut selector);
        assert_eq!(status, pe_status::Ok);
        let menu = Catalog::compile(&shape.spec()).unwrap();
        for (profile, _) in shape.people(200) {
            let text = profile.to_json(menu.menu()).unwrap();
            let mut p = null_mut();
            let status = pe_profile_new_from_json(selector, text.as_ptr().cast(), text.len(), &mut p);
            assert_eq!(status, pe_status::Ok);
            profiles.push(p);
        }
        for (i, placement) in placements.iter_mut().enumerate() {
            let name = format!("placement-{i}");
            let status = pe_selector_placement(selector, name.as_ptr().cast(), name.len(), placement);
            assert_eq!(status, pe_status::Ok);
        }
        assert_eq!(pe_selection_new(selector, 1, &mut selections[0]), pe_status::Ok);
        assert_eq!(pe_selection_new(selector, 5, &mut selections[1]), pe_status::Ok);
        let mut excluded = 0u32;
        let id = "creative-3";
        let status = pe_selector_creative(selector, id.as_ptr().cast(), id.len(), &mut excluded);
        assert_eq!(status, pe_status::Ok);
        assert_eq!(pe_selection_exclude(selections[1], excluded), pe_status::Ok);
    }

    let (n, (calls, picked)) = allocations(|| {
        let (mut calls, mut picked) = (0usize, 0usize);
        for round in 0..60usize {
            for (i, &profile) in profiles.iter().enumerate() {
                let region = regions[(i + round) % regions.len()];
                let attrs = &attributes[(i / 3 + round) % attributes.len()];
                let context = pe_context {
                    at: sample::NOW + ((i * 7 + round * 13) % (7 * 24)) as i64 * 3_600,
                    utc_offset_minutes: [0, 60, -300][i % 3],
                    device: (i % 5) as u32,
                    channel: (round % 6) as u32,
                    weather: ((i + round) % 7) as u32,
                    seed: (i * 1_000 + round) as u64,
                    region: region.as_ptr().cast(),
                    region_len: region.len(),
                    attributes: attrs.as_ptr(),
                    attribute_count: (i + round) % 3,
                };
                let selection = selections[(i + round) % 2];
                let status =
                    unsafe { pe_select(selector, profile, &context, placements[(i + round) % 3], selection) };
                assert_eq!(status, pe_status::Ok);
                let mut count = 0usize;
                unsafe { pe_selection_count(selection, &mut count) };
                calls += 1;
                picked += count;
            }
        }
        (calls, picked)
    });
    assert_eq!(n, 0, "pe_select allocated {n} times over {calls} calls");
    assert!(calls >= 10_000, "only {calls} calls");
    assert!(picked > calls * 2, "only {picked} picks in {calls} calls");

    unsafe {
        for p in profiles {
            pe_profile_free(p);
        }
        for s in selections {
            pe_selection_free(s);
        }
        pe_selector_free(selector);
    }
}

/// Through the hot-swap `Engine`: selecting (placement resolved by name, the current
/// version loaded) never allocates; after a swap to a larger catalog the first select
/// grows the selection once, and then none do (what `persona_engine::engine` documents).
#[test]
fn engine_select_never_allocates_and_a_swap_costs_one_growth() {
    use persona_engine::Engine;
    let small = Synthetic { personas: 20, placements: 2, creatives: 200, seed: 5 };
    let large = Synthetic { personas: 20, placements: 2, creatives: 900, seed: 6 };
    let build = |shape: &Synthetic| {
        Selector::new(Catalog::compile(&shape.spec()).unwrap(), SelectorConfig::default()).unwrap()
    };
    let engine = Engine::new(build(&small), None);
    let people = small.people(200);
    let mut selection = engine.current().selector().new_selection(3);
    let round = |selection: &mut persona_engine::Selection| {
        let mut picked = 0;
        for (i, (profile, context)) in people.iter().enumerate() {
            let placement = ["placement-0", "placement-1"][i % 2];
            picked += engine.select(profile, context, placement, selection).unwrap().generation() as usize;
        }
        picked
    };
    let (n, _) = allocations(|| round(&mut selection));
    assert_eq!(n, 0, "Engine::select allocated {n} times");

    let _ = engine.publish(build(&large), None).unwrap();
    // The old selection still works; sizing it up for the larger catalog costs a few
    // allocations, once.
    let (growth, _) = allocations(|| round(&mut selection));
    assert!(growth <= 8, "the first selects after the swap allocated {growth} times");
    let (n, generations) = allocations(|| round(&mut selection));
    assert_eq!(n, 0, "Engine::select allocated {n} times after the swap");
    assert_eq!(generations, 2 * people.len());
    // Or, as the engine's documentation recommends, a selection made for the new version
    // when the generation changes: no allocation at all on the request path.
    let _ = engine.publish(build(&small), None).unwrap();
    let _ = engine.publish(build(&large), None).unwrap();
    let mut fresh = engine.current().selector().new_selection(3);
    let (n, _) = allocations(|| round(&mut fresh));
    assert_eq!(n, 0, "a selection made for the current version allocated {n} times");
}

/// A C service's request path: `pe_engine_select` (current version, placement by name,
/// the pick) and freeing the version it hands back never allocate, also after a
/// publish, once the selection has seen the new version.
#[test]
fn pe_engine_select_through_the_c_abi_never_allocates() {
    use persona_engine::ffi::*;
    use std::ptr::{null, null_mut};

    let json = persona_engine::sample::CATALOG_JSON;
    let mut engine = null_mut();
    let mut first = null_mut();
    let mut profile = null_mut();
    let mut selection = null_mut();
    let context = pe_context {
        at: persona_engine::sample::NOW,
        utc_offset_minutes: 60,
        device: 1,
        channel: 1,
        weather: 0,
        seed: 7,
        region: b"FR".as_ptr().cast(),
        region_len: 2,
        attributes: null(),
        attribute_count: 0,
    };
    let persona = "Luxury Travel";
    unsafe {
        assert_eq!(
            pe_engine_new_from_json(json.as_ptr().cast(), json.len(), null(), 0, &mut engine),
            pe_status::Ok
        );
        assert_eq!(pe_engine_current(engine, &mut first), pe_status::Ok);
        assert_eq!(pe_profile_new(first, context.at - 86_400 * 400, &mut profile), pe_status::Ok);
        assert_eq!(pe_profile_set_consent_mask(profile, PE_DATA_CLASSES_ALL), pe_status::Ok);
        assert_eq!(
            pe_profile_set_score(profile, persona.as_ptr().cast(), persona.len(), 9, 1),
            pe_status::Ok
        );
        assert_eq!(pe_selection_new(first, 3, &mut selection), pe_status::Ok);
    }
    let request = || {
        let mut served = 0;
        for place in ["home_hero", "sidebar", "app_banner"] {
            let mut version = null_mut();
            let status = unsafe {
                pe_engine_select(
                    engine,
                    profile,
                    &context,
                    place.as_ptr().cast(),
                    place.len(),
                    selection,
                    &mut version,
                )
            };
            assert_eq!(status, pe_status::Ok);
            let mut count = 0;
            unsafe { pe_selection_count(selection, &mut count) };
            served += count;
            unsafe { pe_selector_free(version) };
        }
        served
    };
    request(); // warm: thread-locals of the first call on this thread
    let (n, served) = allocations(|| (0..200).map(|_| request()).sum::<usize>());
    assert!(served > 0);
    assert_eq!(n, 0, "pe_engine_select allocated {n} times");

    let mut generation = 0;
    let status = unsafe {
        pe_engine_publish_json(engine, json.as_ptr().cast(), json.len(), null(), 0, &mut generation)
    };
    assert_eq!(status, pe_status::Ok);
    request(); // the selection meets the new version
    let (n, _) = allocations(|| (0..50).map(|_| request()).sum::<usize>());
    assert_eq!(n, 0, "pe_engine_select allocated {n} times after a publish");
    unsafe {
        pe_selection_free(selection);
        pe_profile_free(profile);
        pe_selector_free(first);
        pe_engine_free(engine);
    }
}

#[test]
fn one_slot_select_on_warm_statistics_with_attributes_never_allocates() {
    use persona_engine::{Feedback, FeedbackKind, PersonaId, Policy};
    // Synthetic creatives carry a format and a tone; people have several high personas,
    // some likes and dislikes, and keep their exposure history.
    let shape = Synthetic { personas: 20, placements: 1, creatives: 30, seed: 23 };
    let catalog = std::sync::Arc::new(Catalog::compile(&shape.spec()).unwrap());
    assert!(catalog.attribute_value_count() >= 5);
    for policy in [Policy::Greedy, Policy::EpsilonGreedy { epsilon: 0.2 }, Policy::Thompson] {
        let selector = Selector::new(catalog.clone(), SelectorConfig::with_policy(policy)).unwrap();
        let placement = selector.placement("placement-0").unwrap();
        let mut people = shape.people(100);
        for (i, (p, _)) in people.iter_mut().enumerate() {
            if i % 4 == 0 {
                p.likes.push(PersonaId((i % 20) as u16));
            }
            if i % 6 == 0 {
                p.dislikes.push(PersonaId(((i + 7) % 20) as u16));
            }
        }
        let mut selection = selector.new_selection(1);
        // Warm: ~100 events per creative from the learner's own picks.
        for e in 0..3_000usize {
            let (profile, context) = &mut people[e % 100];
            context.seed = Some(e as u64);
            selector.select(profile, context, placement, &mut selection).unwrap();
            if let Some(pick) = selection.picks().first() {
                let c = pick.creative;
                selector.record(profile, &Feedback::new(c, FeedbackKind::Impression, context)).unwrap();
                if e % 20 == 0 {
                    selector.record(profile, &Feedback::new(c, FeedbackKind::Click, context)).unwrap();
                }
            }
        }
        let mut total = 0u64;
        for (i, (profile, context)) in people.iter_mut().enumerate() {
            context.seed = Some(i as u64 + 77);
            let (n, picked) =
                allocations(|| selector.select(profile, context, placement, &mut selection).unwrap_or(0));
            total += n;
            assert!(picked > 0 || selection.is_empty());
        }
        assert_eq!(total, 0, "{policy:?}: select allocated {total} times on warm statistics");
    }
}

/// Thompson's slate propensities (each later slot integrated over every earlier pick's
/// draw) run on buffers the selection reserved for its k picks: a slate of 16, more
/// than any inline buffer holds, still never allocates.
#[test]
fn a_long_thompson_slate_never_allocates() {
    use persona_engine::Policy;
    let shape = Synthetic { personas: 40, placements: 1, creatives: 400, seed: 9 };
    let mut config = SelectorConfig::with_policy(Policy::Thompson);
    config.max_per_persona = 0;
    let selector = Selector::new(Catalog::compile(&shape.spec()).unwrap(), config).unwrap();
    let people = shape.people(40);
    let placement = selector.placement("placement-0").unwrap();
    let mut selection = selector.new_selection(16);
    let (n, picked) = allocations(|| {
        people
            .iter()
            .map(|(p, c)| selector.select(p, c, placement, &mut selection).unwrap_or(0))
            .sum::<usize>()
    });
    assert_eq!(n, 0, "select allocated {n} times");
    assert!(picked >= 40 * 12, "slates were long: {picked} picks");
    let last = selection.picks().last().unwrap();
    assert!(last.propensity > 0.0 && last.propensity <= 1.0, "{last:?}");
}
