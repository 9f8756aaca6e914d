//! Does it learn? A smaller run of the simulation (`examples/simulate.rs` runs the full
//! one): with a fixed seed, Thompson sampling must beat uniform random by at least 50 %
//! and beat the persona-match rules, which never learn; and the same seed must give the
//! same report.

use persona_engine::simulate::{run, SimConfig, SimReport, Strategy};
use persona_engine::Policy;

const THOMPSON: Strategy = Strategy::Engine(Policy::Thompson);
const RULES: Strategy = Strategy::Engine(Policy::Rules);

/// 8,000 rounds in the full-size world (30 personas, 200 creatives), three strategies.
fn small(seed: u64) -> SimConfig {
    SimConfig {
        rounds: 8_000,
        seed,
        windows: 8,
        strategies: vec![Strategy::UniformRandom, RULES, THOMPSON],
        ..SimConfig::default()
    }
}

fn rate(report: &SimReport, strategy: Strategy) -> f64 {
    report.row(strategy).expect("strategy ran").click_rate
}

#[test]
fn thompson_sampling_beats_uniform_random_and_the_persona_rules() {
    let report = run(&small(42)).expect("simulation runs");
    let table = report.to_markdown();
    let (uniform, rules, thompson) =
        (rate(&report, Strategy::UniformRandom), rate(&report, RULES), rate(&report, THOMPSON));
    assert!(thompson >= 1.5 * uniform, "Thompson {thompson} < 1.5 × uniform {uniform}\n{table}");
    assert!(thompson > rules, "Thompson {thompson} ≤ rules {rules}\n{table}");
    // The same holds for what was shown, without the noise of the click draws.
    let expected = |s| report.row(s).expect("strategy ran").expected_click_rate;
    assert!(expected(THOMPSON) > expected(RULES), "{table}");
    // Learning is visible over time: the last window beats the first.
    let curve = &report.row(THOMPSON).expect("Thompson ran").window_expected_click_rate;
    assert!(curve.last() > curve.first(), "{curve:?}");
}

#[test]
fn the_same_seed_gives_the_same_report() {
    let config = SimConfig { rounds: 2_000, ..small(7) };
    let a = run(&config).expect("simulation runs");
    let b = run(&config).expect("simulation runs");
    assert_eq!(a, b);
    let other = run(&SimConfig { seed: 8, ..config }).expect("simulation runs");
    assert_ne!(a.rows, other.rows, "a different seed should give a different world");
}
