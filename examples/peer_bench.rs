//! The engine's half of the side-by-side with Vowpal Wabbit (`benches/peers/vw.sh`):
//! for catalogs of 10, 100 and 1,000 candidates (the `Synthetic` shape, 40 personas,
//! seed 2026), the engine is trained on 3,000 random impressions and then timed per
//! decision (select one of N, each call timed alone) under greedy, ε-greedy 0.1 and
//! Thompson sampling, over 512 varied people.
//!
//! `cargo run --release --example peer_bench` prints a table; with `--json` it prints
//! one JSON document instead: the figures, and for each shape the creatives (personas
//! with weights, attributes), the people (scores, device, daypart, weather) and the
//! 3,000 training impressions (person, creative, clicked), so the peer is trained on
//! exactly the same events and asked about the same people.

use std::time::Instant;

use persona_engine::sample::Synthetic;
use persona_engine::{
    Catalog, Context, CreativeId, Feedback, FeedbackKind, PersonaId, Policy, Profile, Selector,
    SelectorConfig,
};
use serde_json::{json, Value};

const PERSONAS: usize = 40;
const PEOPLE: usize = 512;
const TRAINING: usize = 3_000;
const CALLS: usize = 5_000;

/// A deterministic generator for the training events (SplitMix64).
struct Draws(u64);

impl Draws {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The 3,000 training impressions: a random person shown a random creative, clicked
/// with a rate that rises with the person's score on the creative's personas (2 % to
/// 8 %), the same for both learners.
fn training(spec: &persona_engine::CatalogSpec, people: &[(Profile, Context)]) -> Vec<(usize, usize, bool)> {
    let creatives: Vec<usize> = (0..spec.creatives.len()).filter(|&i| !spec.creatives[i].fallback).collect();
    let mut draws = Draws(0x5eed);
    (0..TRAINING)
        .map(|_| {
            let person = draws.below(people.len());
            let creative = creatives[draws.below(creatives.len())];
            let best = spec.creatives[creative]
                .personas
                .iter()
                .map(|(name, w)| f64::from(people[person].0.scores.get(persona_of(name))) / 9.0 * w)
                .fold(0.0, f64::max);
            (person, creative, draws.unit() < 0.02 + 0.06 * best)
        })
        .collect()
}

fn persona_of(name: &str) -> PersonaId {
    PersonaId(name.trim_start_matches("persona-").parse().unwrap_or(0))
}

/// p50 and p99 microseconds of single `select` calls (k = 1) over the people in turn.
fn time_select(selector: &Selector, people: &[(Profile, Context)]) -> (f64, f64) {
    let placement = selector.placement("placement-0").expect("placement");
    let mut selection = selector.new_selection(1);
    for (p, c) in people.iter().take(CALLS / 10) {
        let _ = selector.select(p, c, placement, &mut selection);
    }
    let mut ns: Vec<f64> = (0..CALLS)
        .map(|i| {
            let (p, c) = &people[i % people.len()];
            let t = Instant::now();
            let _ = selector.select(p, c, placement, &mut selection);
            t.elapsed().as_nanos() as f64
        })
        .collect();
    ns.sort_by(f64::total_cmp);
    let at = |q: f64| ns[((ns.len() as f64 * q) as usize).min(ns.len() - 1)] / 1_000.0;
    (at(0.50), at(0.99))
}

fn main() {
    let as_json = std::env::args().any(|a| a == "--json");
    let policies = [
        ("greedy", Policy::Greedy),
        ("epsilon_greedy", Policy::EpsilonGreedy { epsilon: 0.1 }),
        ("thompson", Policy::Thompson),
    ];
    let mut shapes = Vec::new();
    if !as_json {
        println!("| candidates | greedy p50 / p99 µs | ε-greedy 0.1 p50 / p99 µs | Thompson p50 / p99 µs |");
        println!("|---|---|---|---|");
    }
    for creatives in [10usize, 100, 1_000] {
        let shape = Synthetic { personas: PERSONAS, placements: 1, creatives, seed: 2026 };
        let spec = shape.spec();
        let people = shape.people(PEOPLE);
        let events = training(&spec, &people);
        let mut figures = serde_json::Map::new();
        for (name, policy) in policies {
            let selector =
                Selector::new(Catalog::compile(&spec).expect("spec"), SelectorConfig::with_policy(policy))
                    .expect("config");
            for &(person, creative, clicked) in &events {
                let (p, c) = &people[person];
                let mut p = p.clone();
                let id = CreativeId(creative as u32);
                let _ = selector.record(&mut p, &Feedback::new(id, FeedbackKind::Impression, c));
                if clicked {
                    let _ = selector.record(&mut p, &Feedback::new(id, FeedbackKind::Click, c));
                }
            }
            let (p50, p99) = time_select(&selector, &people);
            figures.insert(name.to_owned(), json!({ "p50_us": p50, "p99_us": p99 }));
        }
        if as_json {
            let creatives_json: Vec<Value> = spec
                .creatives
                .iter()
                .filter(|c| !c.fallback)
                .map(|c| {
                    json!({
                        "id": c.id,
                        "personas": c.personas.iter().map(|(n, w)| json!([persona_of(n).0, w])).collect::<Vec<_>>(),
                        "attributes": c.attributes.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
                    })
                })
                .collect();
            let people_json: Vec<Value> = people
                .iter()
                .map(|(p, c)| {
                    let scores: Vec<Value> = (0..PERSONAS)
                        .filter_map(|i| {
                            let s = p.scores.get(PersonaId(i as u16));
                            (s > 0).then(|| json!([i, s]))
                        })
                        .collect();
                    json!({
                        "scores": scores,
                        "device": format!("{:?}", c.device),
                        "daypart": format!("{:?}", c.daypart()),
                        "weather": format!("{:?}", c.weather),
                    })
                })
                .collect();
            // Fallbacks sit at the end of the spec, so indices into `creatives` hold.
            let events_json: Vec<Value> = events.iter().map(|&(p, c, k)| json!([p, c, k])).collect();
            shapes.push(json!({
                "candidates": creatives,
                "engine": figures,
                "creatives": creatives_json,
                "people": people_json,
                "training": events_json,
            }));
        } else {
            let cell = |name: &str| {
                let f = &figures[name];
                format!(
                    "{:.2} / {:.2}",
                    f["p50_us"].as_f64().unwrap_or(f64::NAN),
                    f["p99_us"].as_f64().unwrap_or(f64::NAN)
                )
            };
            println!(
                "| {creatives} | {} | {} | {} |",
                cell("greedy"),
                cell("epsilon_greedy"),
                cell("thompson")
            );
        }
    }
    if as_json {
        let doc = json!({
            "personas": PERSONAS,
            "training_impressions": TRAINING,
            "timed_calls": CALLS,
            "shapes": shapes,
        });
        println!("{doc}");
    }
}
