//! The independent trial (`examples/trial.rs`), on short runs: worlds whose hidden click
//! model was designed apart from the engine's (a persona graph with creative quality;
//! everything at once), where learning must pay for itself against a static persona
//! rule within a few thousand impressions. The full figures (20,000 impressions, every
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
    // These worlds and picks are deterministic (every request carries a seed). Today:
    // greedy 1.90× / 1.87× the rule in `mixed` (seeds 1000, 1001) and 1.48× in `cross`,
    // Thompson 1.59× / 1.92× and 1.39×. With the model's updates switched off (the
    // persona prior and the optimism alone) greedy gets 1.28× / 1.22× and 1.18×,
    // Thompson 1.17× / 1.15× and 1.00×: the bounds sit between, so they fail when the
    // learning stops paying, not only when it stops.
    for (family, seed, greedy_at_least, thompson_at_least) in
        [(Family::Mixed, 1000, 1.5, 1.35), (Family::Mixed, 1001, 1.5, 1.35), (Family::Cross, 1000, 1.3, 1.2)]
    {
        let run = trial::run_world(family, seed, 3_000).expect("the trial runs");
        let oracle = run.tallies[ORACLE].expected;
        for (i, (name, _)) in STRATEGIES.iter().enumerate() {
            assert!(
                run.tallies[i].expected <= oracle * (1.0 + 1e-9),
                "{family:?} {seed}: {name} beat the oracle"
            );
        }
        let greedy = vs_rule(&run, "engine greedy");
        let thompson = vs_rule(&run, "engine thompson");
        assert!(greedy >= greedy_at_least, "{family:?} {seed}: greedy {greedy:.2}× the static rule");
        assert!(thompson >= thompson_at_least, "{family:?} {seed}: Thompson {thompson:.2}× the static rule");
        assert!(vs_rule(&run, "uniform") < 1.0, "{family:?} {seed}: the static rule beats picking at random");
    }
}
