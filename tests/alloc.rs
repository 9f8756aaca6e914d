//! The hot path never allocates: a counting global allocator watches `select` over
//! tens of thousands of varied requests on a realistic catalog. One global allocator
//! per test binary, so this file holds the allocation tests alone; counting is per
//! thread, so the harness's own threads do not disturb it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use persona_engine::sample::Synthetic;
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
fn select_with_learning_and_exploration_never_allocates_between_records() {
    use persona_engine::{Feedback, FeedbackKind, Policy};
    let shape = Synthetic { personas: 40, placements: 3, creatives: 600, seed: 11 };
    let catalog = std::sync::Arc::new(Catalog::compile(&shape.spec()).unwrap());
    let policies = [
        Policy::Greedy,
        Policy::EpsilonGreedy { epsilon: 0.1 },
        Policy::Softmax { temperature: 0.2 },
        Policy::Thompson,
    ];
    let mut people = shape.people(300);
    for policy in policies {
        let selector = Selector::new(catalog.clone(), SelectorConfig::with_policy(policy)).unwrap();
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
                context.seed = context.seed.wrapping_add(1);
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
