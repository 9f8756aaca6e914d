//! A tight `select` loop for profilers (callgrind, perf): one synthetic catalog, one
//! policy, optionally warmed by the learner's own picks, then `select` in a loop.
//!
//! `cargo run --release --example select_loop -- CREATIVES POLICY ITERATIONS WARM PEOPLE [K] [full|pruned] [templates]`
//! with POLICY one of `greedy`, `thompson`, `epsilon`, WARM the number of events taught
//! first (0 for cold statistics), PEOPLE `focused` (one high persona), `varied`, or
//! `traffic` (varied, with some declared likes and dislikes, keeping the exposure
//! history the warm-up leaves: `perf_report`'s warm world), and K
//! the picks per select (default 1); `full` turns pruning off (every candidate scored);
//! `templates` makes a tenth of the candidates templates of 4 slots × 8 variants.

use std::time::Instant;

use persona_engine::sample::Synthetic;
use persona_engine::{Catalog, Feedback, FeedbackKind, PersonaId, Policy, Selector, SelectorConfig};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize, default: &str| args.get(i).cloned().unwrap_or_else(|| default.to_owned());
    let creatives: usize = arg(1, "1000").parse().unwrap_or(1000);
    let policy = match arg(2, "greedy").as_str() {
        "thompson" => Policy::Thompson,
        "epsilon" => Policy::EpsilonGreedy { epsilon: 0.1 },
        _ => Policy::Greedy,
    };
    let iterations: usize = arg(3, "100000").parse().unwrap_or(100_000);
    let warm: usize = arg(4, "0").parse().unwrap_or(0);
    let people_kind = arg(5, "varied");
    let varied = people_kind != "focused";
    let traffic = people_kind == "traffic";
    let k: usize = arg(6, "1").parse().unwrap_or(1);
    let mut config = SelectorConfig::with_policy(policy);
    config.prune = arg(7, "pruned") != "full";

    let shape = Synthetic { personas: 40, placements: 1, creatives, seed: 2026 };
    let spec = if arg(8, "") == "templates" {
        shape.spec_with_templates(creatives / 10, 4, 8)
    } else {
        shape.spec()
    };
    let selector = Selector::new(Catalog::compile(&spec).expect("spec"), config).expect("config");
    let mut people = if varied { shape.people(512) } else { shape.focused_people(512) };
    if traffic {
        for (i, (p, _)) in people.iter_mut().enumerate() {
            if i % 5 == 0 {
                p.likes.push(PersonaId((i % 40) as u16));
            }
            if i % 7 == 0 {
                p.dislikes.push(PersonaId(((i * 3 + 1) % 40) as u16));
            }
        }
    }
    let placement = selector.placement("placement-0").expect("placement");
    let mut selection = selector.new_selection(1);
    for e in 0..warm {
        let (p, c) = &mut people[e % 512];
        let c = c.clone().with_seed(e as u64);
        let _ = selector.select(p, &c, placement, &mut selection);
        if let Some(pick) = selection.picks().first() {
            let creative = pick.creative;
            let _ = selector.record(p, &Feedback::new(creative, FeedbackKind::Impression, &c));
            if e % 25 == 0 {
                let _ = selector.record(p, &Feedback::new(creative, FeedbackKind::Click, &c));
            }
        }
        if !traffic {
            p.exposures.clear();
            p.engagements.clear();
        }
    }
    let mut selection = selector.new_selection(k);
    let start = Instant::now();
    let mut scored = 0usize;
    for i in 0..iterations {
        let (p, c) = &people[i % people.len()];
        let _ = selector.select(p, c, placement, &mut selection);
        scored += selection.candidates_scored();
    }
    let ns = start.elapsed().as_nanos() as f64 / iterations as f64;
    println!("{ns:.0} ns per select, {:.1} scored in full", scored as f64 / iterations as f64);
}
