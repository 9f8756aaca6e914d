//! The independent trial (`examples/trial.rs`), on short runs: worlds whose hidden click
//! model was designed apart from the engine's, where learning must pay for itself
//! against a static persona rule within a few thousand impressions. The full figures (20,000 impressions, every
//! family) are in docs/simulation.md; here the claims are looser, so that a change that
//! stops the learner generalizing fails `cargo test`.

#[allow(dead_code)]
#[path = "../examples/trial.rs"]
mod trial;

use trial::{Family, ORACLE, STATIC, STRATEGIES};

/// The expected click rate of `name` over the static rule's, in `run`.
fn vs_rule(run: &trial::Run, name: &str) -> f64 {
    let at = STRATEGIES.iter().position(|(n, _)| *n == name).expect("a strategy of the trial");
    run.tallies[at].expected / run.tallies[STATIC].expected
}

#[test]
fn learning_beats_the_static_rule_on_worlds_designed_apart_from_the_model() {
    // `mixed` (a persona graph, creative quality, format by device and hour, mid-score
    // people, Zipf-like arrivals), six worlds of 3,000 impressions. Every request carries
    // a seed, so the figures are fixed for a given engine; Thompson's move by a few
    // hundredths per world when a change alters the order of its draws, so the claims
    // are on the mean. Today: greedy 1.69× the static rule on average (1.16× at least),
    // Thompson 1.49×. With the model's updates switched off (the persona prior and the
    // optimism alone) greedy gets 1.36× and Thompson 1.17×: the bounds sit between, so
    // they fail when learning stops paying, not only when it stops.
    let (mut greedy, mut thompson) = (Vec::new(), Vec::new());
    for seed in 1000..1006 {
        let run = trial::run_world(Family::Mixed, seed, 3_000).expect("the trial runs");
        let oracle = run.tallies[ORACLE].expected;
        for (i, (name, _)) in STRATEGIES.iter().enumerate() {
            assert!(run.tallies[i].expected <= oracle * (1.0 + 1e-9), "seed {seed}: {name} beat the oracle");
        }
        assert!(vs_rule(&run, "uniform") < 1.0, "seed {seed}: the static rule beats picking at random");
        greedy.push(vs_rule(&run, "engine greedy"));
        thompson.push(vs_rule(&run, "engine thompson"));
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    assert!(mean(&greedy) >= 1.5, "greedy ÷ the static rule, per world: {greedy:.2?}");
    assert!(mean(&thompson) >= 1.3, "Thompson ÷ the static rule, per world: {thompson:.2?}");
    assert!(greedy.iter().all(|&g| g >= 1.1), "greedy ÷ the static rule, per world: {greedy:.2?}");
}

#[test]
fn the_reference_learners_know_what_they_are_told() {
    let at = |name: &str| STRATEGIES.iter().position(|(n, _)| *n == name).expect("a strategy of the trial");
    // Told every hidden factor of `rank` (which has no creative quality), the reference
    // is the oracle.
    let run = trial::run_world(Family::Rank, 1000, 2_000).expect("the trial runs");
    let told = run.tallies[at("reference, knows all but quality (greedy)")].expected;
    assert!((told - run.tallies[ORACLE].expected).abs() < 1e-9 * told, "{told} vs the oracle");
    // In `cross` it must learn each creative's quality: below the oracle, above the rule.
    let run = trial::run_world(Family::Cross, 1000, 2_000).expect("the trial runs");
    for name in ["reference, knows all but quality (greedy)", "reference, knows all but quality (thompson)"] {
        let r = run.tallies[at(name)].expected;
        assert!(r < run.tallies[ORACLE].expected && r > run.tallies[STATIC].expected, "{name}: {r}");
    }
}
