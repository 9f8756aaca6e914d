//! How true are the propensities Thompson sampling reports? On a synthetic catalog (40
//! personas; nothing learned, or after the learner's own picks and clicks), each of 24
//! people makes many requests with the default context (fresh randomness every time),
//! and the report compares, per creative picked at least 2 % of the time, how often it
//! was picked with the propensity it reported; per creative, the inverse-propensity mass
//! `Σ 1/propensity / requests` (1 when propensities are the pick probabilities, which is
//! what off-policy estimates rely on); per person, what the reported propensities of the
//! creatives picked add up to (at most 1), and whether one creative ever reported two
//! different propensities for the same request.
//!
//! `cargo run --release --example propensity_report -- [CREATIVES WARM REQUESTS [full]]`
//! (default: four worlds, 200 and 1,000 creatives, cold and warm, 5,000 requests each).

use std::collections::HashMap;

use persona_engine::sample::Synthetic;
use persona_engine::{Catalog, Feedback, FeedbackKind, Policy, Selector, SelectorConfig};

/// The value at quantile `q` of `values` (sorted in place).
fn quantile(values: &mut [f64], q: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(((values.len().max(1) - 1) as f64 * q) as usize).copied().unwrap_or(f64::NAN)
}

fn report(creatives: usize, warm: usize, requests: u32, prune: bool) {
    let mut config = SelectorConfig::with_policy(Policy::Thompson);
    config.prune = prune;
    let shape = Synthetic { personas: 40, placements: 1, creatives, seed: 2026 };
    let selector = Selector::new(Catalog::compile(&shape.spec()).expect("spec"), config).expect("config");
    let mut people = shape.people(512);
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
    }
    let (mut error, mut mass, mut totals) = (Vec::new(), Vec::new(), Vec::new());
    let mut unsteady = 0usize;
    for (p, c) in people.iter_mut().take(24) {
        p.exposures.clear();
        p.engagements.clear();
        let context = persona_engine::Context { seed: None, ..c.clone() };
        // Creative → (picks, Σ propensity, Σ 1/propensity, lowest and highest reported).
        let mut seen: HashMap<u32, (u32, f64, f64, f32, f32)> = HashMap::new();
        for _ in 0..requests {
            selector.select(p, &context, placement, &mut selection).expect("select");
            let Some(pick) = selection.picks().first() else { continue };
            let e = seen.entry(pick.creative.0).or_insert((0, 0.0, 0.0, f32::INFINITY, 0.0));
            e.0 += 1;
            e.1 += f64::from(pick.propensity);
            e.2 += 1.0 / f64::from(pick.propensity);
            e.3 = e.3.min(pick.propensity);
            e.4 = e.4.max(pick.propensity);
        }
        let mut total = 0.0;
        for &(count, sum, inverse, low, high) in seen.values() {
            let share = f64::from(count) / f64::from(requests);
            let reported = sum / f64::from(count);
            total += reported;
            unsteady += usize::from(low != high);
            if share >= 0.02 {
                error.push((reported - share) / share);
                mass.push(inverse / f64::from(requests));
            }
        }
        totals.push(total);
    }
    let row = |v: &mut Vec<f64>| {
        format!("{:+.3} / {:+.3} / {:+.3}", quantile(v, 0.01), quantile(v, 0.5), quantile(v, 0.99))
    };
    let mut mass_minus_one: Vec<f64> = mass.iter().map(|m| m - 1.0).collect();
    println!(
        "| {creatives} | {} | {} | {} | {} | {} | {:.3} / {:.3} | {unsteady} |",
        if warm == 0 { "cold".to_owned() } else { format!("{warm} events") },
        if prune { "pruned" } else { "full" },
        error.len(),
        row(&mut error),
        row(&mut mass_minus_one),
        quantile(&mut totals, 0.5),
        quantile(&mut totals, 1.0),
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    println!(
        "| creatives | statistics | scan | creatives ≥ 2 % | (reported − share) / share, p1 / p50 / p99 | \
         inverse-propensity mass − 1, p1 / p50 / p99 | Σ reported per person, p50 / max | creatives with two propensities |"
    );
    println!("|---:|---|---|---:|---|---|---|---:|");
    if let [creatives, warm, requests, rest @ ..] = args.as_slice() {
        let prune = rest.first().is_none_or(|a| a != "full");
        let parse = |a: &str| a.parse::<usize>().expect("a number");
        report(parse(creatives), parse(warm), parse(requests) as u32, prune);
        return;
    }
    for (creatives, warm) in [(200, 0), (200, 20_000), (1_000, 0), (1_000, 50_000)] {
        report(creatives, warm, 5_000, true);
    }
}
