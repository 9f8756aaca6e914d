//! Honest randomness: a request without a caller seed draws fresh randomness, so
//! exploration really explores, and the propensity every pick reports is the observed
//! frequency of that pick. A caller seed still replays a pick exactly.

mod common;

use std::collections::HashMap;

use common::*;
use persona_engine::{CreativeSpec, Policy, Selector, SelectorConfig};

fn world(policy: Policy) -> Selector {
    world_reaching(policy, persona_engine::LearningConfig::default().explore_reach)
}

/// [`world`] with epsilon-greedy's `explore_reach` (`None`: among every eligible
/// creative).
fn world_reaching(policy: Policy, reach: Option<f64>) -> Selector {
    let mut config = SelectorConfig::with_policy(policy);
    config.max_per_persona = 0;
    config.learning.explore_reach = reach;
    let creatives: Vec<CreativeSpec> = vec![
        tagged("lux", "Luxury"),
        tagged("fam", "Family"),
        tagged("adv", "Adventure"),
        CreativeSpec::new("house").placement("hero"),
    ];
    selector_with(creatives, config)
}

/// Picks `n` times with the default context (no seed) and returns, per creative, how
/// often it was picked and the mean propensity it reported.
fn observe(sel: &Selector, n: u32) -> HashMap<String, (u32, f64)> {
    let p = person(sel, &[("Family", 8), ("Luxury", 7)]);
    let hero = sel.placement("hero").unwrap();
    let mut s = sel.new_selection(1);
    let mut out: HashMap<String, (u32, f64)> = HashMap::new();
    for _ in 0..n {
        sel.select(&p, &ctx(), hero, &mut s).unwrap();
        let pick = s.picks()[0];
        let e = out.entry(sel.catalog().creative_id(pick.creative).to_owned()).or_default();
        e.0 += 1;
        e.1 += f64::from(pick.propensity);
    }
    for v in out.values_mut() {
        v.1 /= f64::from(v.0);
    }
    out
}

#[test]
fn the_default_context_has_no_seed() {
    assert_eq!(ctx().seed, None);
    assert_eq!(persona_engine::Context::default().seed, None);
}

#[test]
fn epsilon_greedy_explores_at_rate_epsilon_without_a_seed() {
    let n = 20_000;
    // Among every eligible creative: four, so the greedy one is picked with 0.8 + 0.2/4,
    // each other with 0.05.
    let sel = world_reaching(Policy::EpsilonGreedy { epsilon: 0.2 }, None);
    let seen = observe(&sel, n);
    let greedy = seen.iter().max_by_key(|(_, v)| v.0).map(|(k, _)| k.clone()).unwrap();
    let explored = n - seen[&greedy].0;
    let rate = f64::from(explored) / f64::from(n);
    // 0.15 expected; 5 standard deviations of a binomial share is ±0.0126.
    assert!((rate - 0.15).abs() < 0.0126, "explored {rate:.4} of picks: {seen:?}");
    assert_eq!(seen.len(), 4, "every eligible creative is explored: {seen:?}");

    // Among the creatives that could be the best (`explore_reach`): the person scores Family
    // 8 and Luxury 7, so the creative matching nothing ('house') and the one for a
    // persona they do not have ('adv') are left out of the draw. It still happens at
    // rate ε, and goes to each of the n creatives explored among with ε/n: the greedy
    // one keeps 1 − ε + ε/n.
    let sel = world_reaching(Policy::EpsilonGreedy { epsilon: 0.2 }, Some(1.0));
    let seen = observe(&sel, n);
    assert!(!seen.contains_key("house") && !seen.contains_key("adv"), "{seen:?}");
    let greedy = seen.iter().max_by_key(|(_, v)| v.0).map(|(k, _)| k.clone()).unwrap();
    let others: Vec<f64> = seen.iter().filter(|(k, _)| **k != greedy).map(|(_, v)| v.1).collect();
    assert!(!others.is_empty(), "something was explored: {seen:?}");
    let among = (0.2 / others[0]).round();
    assert_eq!(among as usize, others.len() + 1, "{seen:?}");
    assert!((seen[&greedy].1 - (0.8 + 0.2 / among)).abs() < 1e-6, "{seen:?}");
    let rate = f64::from(n - seen[&greedy].0) / f64::from(n);
    let expected = 0.2 * (1.0 - 1.0 / among);
    let sd = (expected * (1.0 - expected) / f64::from(n)).sqrt();
    assert!((rate - expected).abs() < 5.0 * sd, "explored {rate:.4} of picks, expected {expected}: {seen:?}");
}

/// For every policy, each creative's reported propensity matches how often it was
/// picked: |observed − reported| within 5 binomial standard deviations.
#[test]
fn reported_propensities_match_observed_frequencies_for_every_policy() {
    let n = 8_000;
    for (policy, reach, slack) in [
        (Policy::Greedy, None, 0.0),
        (Policy::Rules, None, 0.0),
        (Policy::EpsilonGreedy { epsilon: 0.1 }, None, 0.0),
        (Policy::EpsilonGreedy { epsilon: 0.1 }, Some(1.0), 0.0),
        (Policy::Softmax { temperature: 0.05 }, None, 0.0),
        (Policy::Thompson, None, 0.0),
    ] {
        let sel = world_reaching(policy, reach);
        let seen = observe(&sel, n);
        for (id, (count, reported)) in &seen {
            let observed = f64::from(*count) / f64::from(n);
            let sd = (observed * (1.0 - observed) / f64::from(n)).sqrt();
            assert!(
                (observed - reported).abs() <= 5.0 * sd + slack + 1e-6,
                "{policy:?}: '{id}' picked {observed:.4} of the time, reported {reported:.4}: {seen:?}"
            );
        }
    }
}

#[test]
fn a_caller_seed_replays_the_same_pick() {
    let sel = world(Policy::EpsilonGreedy { epsilon: 0.5 });
    let p = person(&sel, &[("Family", 8)]);
    let hero = sel.placement("hero").unwrap();
    let mut s = sel.new_selection(1);
    for seed in [0u64, 1, 99, u64::MAX] {
        sel.select(&p, &ctx().with_seed(seed), hero, &mut s).unwrap();
        let first = s.picks()[0];
        for _ in 0..20 {
            sel.select(&p, &ctx().with_seed(seed), hero, &mut s).unwrap();
            assert_eq!(s.picks()[0], first, "seed {seed}");
        }
    }
}

/// With several slots, each pick's propensity is the probability of that pick given
/// the picks before it: per first pick, how often each second pick follows matches the
/// second pick's reported propensity, and those propensities sum to 1.
#[test]
fn epsilon_greedy_propensities_with_several_slots_are_conditional_on_earlier_picks() {
    // Among every eligible creative, so that every pair of picks happens; and among
    // those that could be the best.
    for reach in [None, Some(1.0)] {
        several_slots(reach);
    }
}

fn several_slots(reach: Option<f64>) {
    let n = 20_000u32;
    let textbook = reach.is_none();
    let sel = world_reaching(Policy::EpsilonGreedy { epsilon: 0.3 }, reach);
    // With a reach, a third persona gives the second slot a choice too.
    let scores: &[(&str, u8)] = if textbook {
        &[("Family", 8), ("Luxury", 7)]
    } else {
        &[("Family", 8), ("Luxury", 7), ("Adventure", 7)]
    };
    let p = person(&sel, scores);
    let hero = sel.placement("hero").unwrap();
    let mut s = sel.new_selection(2);
    // (first, second) → (times, reported propensity of the second); first → times.
    let mut pairs: HashMap<(String, String), (u32, f64)> = HashMap::new();
    let mut firsts: HashMap<String, (u32, f64)> = HashMap::new();
    for _ in 0..n {
        sel.select(&p, &ctx(), hero, &mut s).unwrap();
        assert_eq!(s.len(), 2, "two slots filled: {:?}", s.picks());
        let id = |i: usize| sel.catalog().creative_id(s.picks()[i].creative).to_owned();
        let first = firsts.entry(id(0)).or_default();
        first.0 += 1;
        first.1 = f64::from(s.picks()[0].propensity);
        let e = pairs.entry((id(0), id(1))).or_default();
        e.0 += 1;
        let reported = f64::from(s.picks()[1].propensity);
        assert!(e.0 == 1 || (e.1 - reported).abs() < 1e-6, "one propensity per (first, second) pair");
        e.1 = reported;
    }
    if textbook {
        assert_eq!(firsts.len(), 4, "every creative is picked first sometimes: {firsts:?}");
    } else {
        assert!(firsts.len() >= 2, "the first slot explores: {firsts:?}");
        assert!(pairs.values().any(|&(_, r)| r < 0.99), "the second slot explores: {pairs:?}");
    }
    for (first, (count, reported)) in &firsts {
        let observed = f64::from(*count) / f64::from(n);
        let sd = (observed * (1.0 - observed) / f64::from(n)).sqrt();
        assert!((observed - reported).abs() <= 5.0 * sd, "first '{first}': {observed:.4} vs {reported:.4}");
    }
    for (first, (given, _)) in &firsts {
        let seconds: Vec<_> = pairs.iter().filter(|((f, _), _)| f == first).collect();
        if textbook {
            assert_eq!(seconds.len(), 3, "after '{first}' each other creative can follow: {seconds:?}");
        }
        let total: f64 = seconds.iter().map(|(_, (_, r))| r).sum();
        assert!((total - 1.0).abs() < 1e-5, "{reach:?}: after '{first}' the propensities sum to {total}");
        for ((_, second), (count, reported)) in seconds {
            let observed = f64::from(*count) / f64::from(*given);
            let sd = (observed * (1.0 - observed) / f64::from(*given)).sqrt();
            assert!(
                (observed - reported).abs() <= 5.0 * sd + 1e-6,
                "'{second}' after '{first}': {observed:.4} of {given} vs reported {reported:.4}"
            );
        }
    }
}

/// Thompson's propensity is the probability of the pick, not an estimate from a few
/// rivals: on a catalog where dozens of candidates could win (300 creatives, nothing
/// learned yet, so many share a person's best estimate), with the default context and
/// the pruned scan,
/// - every pick of one creative for one request reports the same propensity (it is
///   computed, not sampled, and the pruned scan scores every rival it counts);
/// - each creative's reported propensity matches how often it is picked, within 5
///   binomial standard deviations of the reported probability (+0.001);
/// - the propensities of the creatives picked add up to at most 1 (they are the
///   probabilities of disjoint events) and to nearly 1 (what is never picked in 3,000
///   requests is rare).
#[test]
fn thompson_propensities_are_the_pick_probabilities_on_a_large_catalog() {
    let shape = persona_engine::sample::Synthetic { personas: 20, placements: 1, creatives: 300, seed: 7 };
    let catalog = persona_engine::Catalog::compile(&shape.spec()).unwrap();
    let sel = Selector::new(catalog, SelectorConfig::with_policy(Policy::Thompson)).unwrap();
    let placement = sel.placement("placement-0").unwrap();
    let mut s = sel.new_selection(1);
    let n = 3_000u32;
    let mut contested = 0;
    for (profile, context) in shape.people(4) {
        let context = persona_engine::Context { seed: None, ..context };
        // Creative → (picks, the propensity it reported).
        let mut seen: HashMap<u32, (u32, f32)> = HashMap::new();
        for _ in 0..n {
            sel.select(&profile, &context, placement, &mut s).unwrap();
            let pick = s.picks()[0];
            let e = seen.entry(pick.creative.0).or_insert((0, pick.propensity));
            assert_eq!(e.1, pick.propensity, "creative {} reported two propensities", pick.creative.0);
            e.0 += 1;
        }
        let mut total = 0.0;
        for (creative, &(count, reported)) in &seen {
            let (observed, reported) = (f64::from(count) / f64::from(n), f64::from(reported));
            // The spread the reported probability implies (a rare creative's observed
            // share can fall to one pick, which would make its own spread too tight).
            let sd = (reported * (1.0 - reported) / f64::from(n)).sqrt();
            assert!(
                (observed - reported).abs() <= 5.0 * sd + 1e-3,
                "creative {creative}: picked {observed:.4} of the time, reported {reported:.4}"
            );
            total += reported;
        }
        assert!(
            (0.97..=1.0 + 1e-3).contains(&total),
            "the propensities of the creatives picked add up to {total:.4}"
        );
        contested += usize::from(seen.len() >= 10);
    }
    assert!(contested >= 2, "some requests had many creatives that could win");
}

/// Thompson with two slots: the second pick's propensity is the probability of that
/// pick given the first, which also says that the first pick drew higher than
/// everything (so the other rivals' draws are known to be lower): per first pick, how
/// often each second pick follows matches its reported propensity. With the default
/// diversity rules (at most two picks per persona) and without.
#[test]
fn thompson_second_picks_report_their_probability_given_the_first() {
    let shape = persona_engine::sample::Synthetic { personas: 8, placements: 1, creatives: 60, seed: 7 };
    for max_per_persona in [0u8, 1] {
        let catalog = persona_engine::Catalog::compile(&shape.spec()).unwrap();
        let mut config = SelectorConfig::with_policy(Policy::Thompson);
        config.max_per_persona = max_per_persona;
        let sel = Selector::new(catalog, config).unwrap();
        let placement = sel.placement("placement-0").unwrap();
        let mut s = sel.new_selection(2);
        let n = 12_000u32;
        let mut checked = 0;
        for (profile, context) in shape.people(2) {
            let context = persona_engine::Context { seed: None, ..context };
            let mut firsts: HashMap<u32, u32> = HashMap::new();
            // (first, second) → (times, the second's reported propensity).
            let mut pairs: HashMap<(u32, u32), (u32, f32)> = HashMap::new();
            for _ in 0..n {
                sel.select(&profile, &context, placement, &mut s).unwrap();
                let (a, b) = (s.picks()[0], s.picks()[1]);
                *firsts.entry(a.creative.0).or_default() += 1;
                let e = pairs.entry((a.creative.0, b.creative.0)).or_insert((0, b.propensity));
                assert_eq!(e.1, b.propensity, "one propensity per (first, second)");
                e.0 += 1;
            }
            for (&first, &given) in &firsts {
                let seconds: Vec<_> = pairs.iter().filter(|((f, _), _)| *f == first).collect();
                let total: f64 = seconds.iter().map(|(_, (_, r))| f64::from(*r)).sum();
                assert!(total <= 1.0 + 1e-3, "after {first} the propensities add up to {total}");
                if given < 1_000 {
                    continue;
                }
                for ((_, second), (count, reported)) in seconds {
                    let observed = f64::from(*count) / f64::from(given);
                    let p = f64::from(*reported);
                    let sd = (p * (1.0 - p) / f64::from(given)).sqrt();
                    assert!(
                        (observed - f64::from(*reported)).abs() <= 5.0 * sd + 2e-3,
                        "max_per_persona {max_per_persona}: {second} after {first}: observed {observed:.4} of \
                         {given}, reported {reported:.4}"
                    );
                    checked += usize::from(observed > 0.05);
                }
            }
        }
        assert!(checked >= 4, "second picks compared: {checked}");
    }
}
