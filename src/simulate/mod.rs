//! "Does it generalize?": synthetic worlds in which people click with hidden
//! probabilities, and an online loop in which each strategy picks a creative, sees
//! whether it was clicked and reports it, so strategies can be compared on worlds that
//! differ in the ways real traffic does. It drives the engine only through the public
//! API; nothing on the hot path depends on it.
//!
//! - [`World`] builds a world of one [`Variant`] from a seed: a persona menu whose
//!   personas are not equally common, one placement ([`PLACEMENT`]) whose creatives are
//!   all always eligible (generic intimacy, no targeting, schedules or caps), one
//!   fallback house ad, loyal people who consent to everything, and the hidden click
//!   probability of every (person, creative, device, daypart) ([`World::click_rate`]).
//! - [`run`] plays [`SimConfig::impressions`] impressions for every [`Strategy`]: the
//!   engine under each [`Policy`] with the default [`SelectorConfig`] for that policy, a
//!   uniform random pick, the static persona rule a marketer writes by hand
//!   ([`persona_rule_pick`]) and the oracle. Engine strategies build the request the way
//!   an integrator does (the person's profile, a [`Context`] with the moment and the
//!   device) and call [`Selector::select`], then [`Selector::record`] the impression and,
//!   when the hidden coin says so, the click.
//! - The measure is the mean *expected* click rate (the hidden probability of what was
//!   shown, free of click-draw noise), as a share of the oracle's and as a ratio to the
//!   persona rule's, overall and for people with no high persona ([`SimReport`];
//!   [`Summary`] over seeds).
//!
//! Every strategy meets the same people at the same moments with the same click draws
//! (common random numbers), and a run is reproducible. Every impression starts from a
//! fresh copy of the person's profile: impressions and clicks update the learned
//! statistics, but no exposure memory carries over, so fatigue and caps never change a
//! pick and the comparison is about learning alone.

mod report;
mod world;

pub use report::{overview_markdown, GroupFigures, SimReport, Stat, StrategyResult, Summary, SummaryRow};
pub use world::{
    hidden_match, persona_rule_pick, Impression, Variant, World, ATTRIBUTES, FALLBACK_CLICK_RATE, HIGH,
    NO_HIGH_SHARE, PLACEMENT, SECONDARY_SHARE, START,
};

use crate::context::{Channel, Context};
use crate::error::{Error, Result};
use crate::feedback::{Feedback, FeedbackKind};
use crate::profile::Profile;
use crate::{Policy, Selection, Selector, SelectorConfig};
use world::SimRng;

/// Who picks the creative for each impression.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Strategy {
    /// Uniformly among the creatives (never the fallback); learns nothing.
    UniformRandom,
    /// The static rule a marketer writes by hand: the best-tagged creative of the
    /// person's top persona ([`persona_rule_pick`]); learns nothing.
    PersonaRule,
    /// The engine under this policy, with `SelectorConfig::with_policy(policy)`.
    /// [`Policy::Rules`] is persona-match greedy without learning; the others learn from
    /// every impression and click.
    Engine(Policy),
    /// Knows the hidden click probabilities and always picks the highest: the ceiling
    /// no strategy can beat, impression by impression.
    Oracle,
    /// A reference learner that knows every hidden factor of the world (persona match,
    /// device and daypart effects) except each creative's quality, and learns that with
    /// the exact conjugate model (a Gamma prior of the world's own quality spread,
    /// Poisson clicks). With `thompson` it draws each quality from its posterior,
    /// otherwise it uses the posterior mean. Not something an engine can be: it shows
    /// what the quality alone costs to learn in this many impressions, so the distance
    /// between the oracle and a learner reads as "unknowable here" plus "left on the table".
    ///
    /// Without `knows_context` it knows only the persona match: the device and daypart
    /// effects (each creative's own, and in `attributes` those of its format and tone)
    /// are folded into what it learns per creative, as a learner without those features
    /// would. It separates what the persona structure is worth from what the creatives'
    /// own factors cost to learn.
    Reference {
        /// Draw from the posterior (Thompson sampling) rather than use its mean.
        thompson: bool,
        /// Knows each creative's device and daypart factors.
        knows_context: bool,
    },
}

impl Strategy {
    /// A short name for tables and charts, e.g. `thompson` or `epsilon-greedy (0.1)`.
    pub fn name(&self) -> String {
        match self {
            Strategy::UniformRandom => "uniform random".to_owned(),
            Strategy::PersonaRule => "static persona rule".to_owned(),
            Strategy::Oracle => "oracle".to_owned(),
            Strategy::Reference { thompson, knows_context } => format!(
                "reference, knows {} ({})",
                if *knows_context { "all but quality" } else { "the persona match only" },
                if *thompson { "thompson" } else { "greedy" }
            ),
            Strategy::Engine(Policy::Rules) => "rules".to_owned(),
            Strategy::Engine(Policy::Greedy) => "greedy".to_owned(),
            Strategy::Engine(Policy::EpsilonGreedy { epsilon }) => format!("epsilon-greedy ({epsilon})"),
            Strategy::Engine(Policy::Softmax { temperature }) => format!("softmax (T={temperature})"),
            Strategy::Engine(Policy::Thompson) => "thompson".to_owned(),
        }
    }

    /// Every strategy the simulation compares by default: uniform random, the static
    /// persona rule, the engine under rules, greedy, epsilon-greedy (ε = 0.1), softmax
    /// (T = 0.03) and Thompson sampling, the four reference learners and the oracle.
    pub fn all() -> Vec<Strategy> {
        vec![
            Strategy::UniformRandom,
            Strategy::PersonaRule,
            Strategy::Engine(Policy::Rules),
            Strategy::Engine(Policy::Greedy),
            Strategy::Engine(Policy::EpsilonGreedy { epsilon: 0.1 }),
            Strategy::Engine(Policy::Softmax { temperature: 0.03 }),
            Strategy::Engine(Policy::Thompson),
            Strategy::Reference { thompson: false, knows_context: true },
            Strategy::Reference { thompson: true, knows_context: true },
            Strategy::Reference { thompson: false, knows_context: false },
            Strategy::Reference { thompson: true, knows_context: false },
            Strategy::Oracle,
        ]
    }
}

/// The shape of a simulation: which world, its size, how long it runs and who competes.
#[derive(Clone, Debug, PartialEq)]
pub struct SimConfig {
    /// The kind of world.
    pub variant: Variant,
    /// Impressions (one person, one moment, one pick) per strategy (≥ 1).
    pub impressions: usize,
    /// Seed of the world and of every impression: the same configuration gives the same
    /// report.
    pub seed: u64,
    /// Personas on the menu (1..=1,000).
    pub personas: usize,
    /// Creatives, not counting the fallback (≥ 1).
    pub creatives: usize,
    /// People to draw from (≥ 1).
    pub people: usize,
    /// Windows the impressions are cut into for the expected click rate over time
    /// (1..=impressions).
    pub windows: usize,
    /// The strategies to compare, engine strategies each with a fresh [`Selector`].
    pub strategies: Vec<Strategy>,
    /// Engine strategies keep the configured prior spreads
    /// ([`LearningConfig::learn_spread`](crate::LearningConfig::learn_spread) off) rather
    /// than learn them: to measure what learning them changes.
    pub fixed_spread: bool,
    /// Epsilon-greedy's [`LearningConfig::explore_reach`](crate::LearningConfig::explore_reach)
    /// for the engine strategies (default `None`, as the selector's).
    pub explore_reach: Option<f64>,
}

impl Default for SimConfig {
    /// The `mixed` variant, 20,000 impressions in a world of 40 personas, 200 creatives
    /// and 3,000 people, seed 42, cut into 20 windows, comparing [`Strategy::all`].
    fn default() -> Self {
        SimConfig {
            variant: Variant::Mixed,
            impressions: 20_000,
            seed: 42,
            personas: 40,
            creatives: 200,
            people: 3_000,
            windows: 20,
            strategies: Strategy::all(),
            fixed_spread: false,
            explore_reach: None,
        }
    }
}

impl SimConfig {
    /// Checks every field, and the selector configuration of every engine strategy;
    /// errors name the field.
    pub fn validate(&self) -> Result<()> {
        let bad = |field: &str, problem: String| Err(Error::invalid("simulation config", field, problem));
        if self.impressions == 0 {
            return bad("impressions", "must be at least 1".to_owned());
        }
        if !(1..=1_000).contains(&self.personas) {
            return bad("personas", format!("{} must be between 1 and 1000", self.personas));
        }
        if self.creatives == 0 {
            return bad("creatives", "must be at least 1".to_owned());
        }
        if self.people == 0 {
            return bad("people", "must be at least 1".to_owned());
        }
        if !(1..=self.impressions).contains(&self.windows) {
            return bad(
                "windows",
                format!("{} must be between 1 and impressions ({})", self.windows, self.impressions),
            );
        }
        if self.strategies.is_empty() {
            return bad("strategies", "name at least one strategy".to_owned());
        }
        for strategy in &self.strategies {
            if let Strategy::Engine(policy) = strategy {
                let mut config = SelectorConfig::with_policy(*policy);
                config.learning.explore_reach = self.explore_reach;
                config.validate()?;
            }
        }
        Ok(())
    }
}

/// Runs the simulation: builds the world of `config.variant` from `config.seed`, then
/// for each strategy (engine strategies with their own fresh [`Selector`]) plays
/// `config.impressions` impressions of select, click draw and record. Deterministic:
/// the same configuration gives the same report.
///
/// Errors when the configuration is invalid (the field is named).
pub fn run(config: &SimConfig) -> Result<SimReport> {
    let world = World::build(config)?;
    let n = config.impressions;
    let windows = config.windows;
    let window_of = |i: usize| (i * windows / n).min(windows - 1);
    let mut window_impressions = vec![0usize; windows];
    for i in 0..n {
        window_impressions[window_of(i)] += 1;
    }
    let plan = world.impressions(config.seed, n);
    let no_high_impressions = plan.iter().filter(|imp| !world.has_high_persona(imp.person)).count();
    let mut seen = vec![false; world.people()];
    for imp in &plan {
        if let Some(s) = seen.get_mut(imp.person) {
            *s = true;
        }
    }

    // Sums per strategy: expected overall, expected for no-high people.
    let mut sums = Vec::with_capacity(config.strategies.len());
    let mut rows = Vec::with_capacity(config.strategies.len());
    for &strategy in &config.strategies {
        let mut play = Play::new(&world, strategy, config)?;
        let (mut clicks, mut expected, mut expected_no_high, mut off_persona) = (0u64, 0.0, 0.0, 0u64);
        let mut window_expected = vec![0.0f64; windows];
        for (i, imp) in plan.iter().enumerate() {
            let outcome = play.impression(imp)?;
            expected += outcome.rate;
            if !world.has_high_persona(imp.person) {
                expected_no_high += outcome.rate;
            }
            window_expected[window_of(i)] += outcome.rate;
            off_persona += u64::from(outcome.off_persona);
            clicks += u64::from(outcome.clicked);
        }
        sums.push((expected, expected_no_high));
        rows.push(StrategyResult {
            strategy,
            name: strategy.name(),
            clicks,
            click_rate: clicks as f64 / n as f64,
            overall: GroupFigures {
                impressions: n,
                expected_click_rate: expected / n as f64,
                share_of_oracle: None,
                vs_persona_rule: None,
            },
            no_high: (no_high_impressions > 0).then(|| GroupFigures {
                impressions: no_high_impressions,
                expected_click_rate: expected_no_high / no_high_impressions as f64,
                share_of_oracle: None,
                vs_persona_rule: None,
            }),
            off_persona_share: off_persona as f64 / n as f64,
            window_expected_click_rate: window_expected
                .iter()
                .zip(&window_impressions)
                .map(|(e, k)| if *k == 0 { 0.0 } else { e / *k as f64 })
                .collect(),
        });
    }
    // Ratios to the oracle and to the persona rule, on the same impressions.
    let reference = |s: Strategy| config.strategies.iter().position(|x| *x == s).map(|i| sums[i]);
    let (oracle, rule) = (reference(Strategy::Oracle), reference(Strategy::PersonaRule));
    let over = |x: f64, by: Option<f64>| by.filter(|b| *b > 0.0).map(|b| x / b);
    for (row, (all, no_high)) in rows.iter_mut().zip(&sums) {
        row.overall.share_of_oracle = over(*all, oracle.map(|o| o.0));
        row.overall.vs_persona_rule = over(*all, rule.map(|r| r.0));
        if let Some(group) = &mut row.no_high {
            group.share_of_oracle = over(*no_high, oracle.map(|o| o.1));
            group.vs_persona_rule = over(*no_high, rule.map(|r| r.1));
        }
    }
    Ok(SimReport {
        variant: config.variant,
        seed: config.seed,
        impressions: n,
        no_high_people_share: world.no_high_share(),
        no_high_impressions,
        people_seen: seen.iter().filter(|s| **s).count(),
        window_impressions,
        rows,
    })
}

/// Runs `seeds` worlds, with seeds `config.seed`, `config.seed + 1`, …: one report each.
pub fn run_seeds(config: &SimConfig, seeds: u64) -> Result<Vec<SimReport>> {
    (0..seeds).map(|k| run(&SimConfig { seed: config.seed.wrapping_add(k), ..config.clone() })).collect()
}

/// One strategy playing in the world.
struct Play<'w> {
    world: &'w World,
    strategy: Strategy,
    /// The engine, for [`Strategy::Engine`].
    selector: Option<Selector>,
    selection: Selection,
    /// The impression's copy of the person's profile (reused to save allocations).
    profile: Profile,
    /// [`Strategy::Reference`]: per creative the Gamma posterior (shape, rate) of its
    /// quality.
    quality: Vec<(f64, f64)>,
}

impl<'w> Play<'w> {
    fn new(world: &'w World, strategy: Strategy, sim: &SimConfig) -> Result<Self> {
        let selector = match strategy {
            Strategy::Engine(policy) => Some(Selector::new(std::sync::Arc::clone(world.catalog()), {
                let mut c = SelectorConfig::with_policy(policy);
                c.learning.learn_spread = !sim.fixed_spread;
                c.learning.explore_reach = sim.explore_reach;
                c
            })?),
            Strategy::UniformRandom
            | Strategy::PersonaRule
            | Strategy::Oracle
            | Strategy::Reference { .. } => None,
        };
        let selection = selector.as_ref().map_or_else(|| Selection::new(1), |s| s.new_selection(1));
        let quality = match strategy {
            Strategy::Reference { .. } => vec![world.quality_prior(); world.creatives()],
            _ => Vec::new(),
        };
        Ok(Play { world, strategy, selector, selection, profile: Profile::default(), quality })
    }

    /// Plays one impression: the hidden click probability of what was shown, whether it
    /// was clicked and whether it was off-persona.
    fn impression(&mut self, imp: &Impression) -> Result<Outcome> {
        let world = self.world;
        let daypart = imp.daypart();
        let rate = |c: Option<usize>| world.click_rate(imp.person, c, imp.device, daypart);
        let shown = match self.strategy {
            Strategy::UniformRandom => Some(imp.uniform_pick),
            Strategy::PersonaRule => world.persona_rule(imp.person),
            Strategy::Oracle => {
                let mut best = (None, f64::NEG_INFINITY);
                for c in 0..world.creatives() {
                    let p = rate(Some(c));
                    if p > best.1 {
                        best = (Some(c), p);
                    }
                }
                best.0
            }
            Strategy::Reference { thompson, knows_context } => {
                // Rate = known part × quality; quality ~ Gamma(shape, rate) a posteriori
                // (without the context: quality × the context factor, learned as one).
                let mut rng = SimRng::new(imp.select_seed);
                let known = |c: usize| {
                    let unknown = if knows_context {
                        world.quality(c)
                    } else {
                        world.quality(c) * world.context_factor(c, imp.device, daypart)
                    };
                    rate(Some(c)) / unknown
                };
                let mut best = (None, f64::NEG_INFINITY);
                for (c, &(shape, rate_param)) in self.quality.iter().enumerate() {
                    let known = known(c);
                    let q = if thompson { rng.gamma(shape) / rate_param } else { shape / rate_param };
                    if known * q > best.1 {
                        best = (Some(c), known * q);
                    }
                }
                if let Some(c) = best.0 {
                    let clicked = imp.click_draw < rate(Some(c));
                    if let Some(post) = self.quality.get_mut(c) {
                        *post = (post.0 + f64::from(u8::from(clicked)), post.1 + known(c));
                    }
                }
                best.0
            }
            Strategy::Engine(_) => {
                let (Some(selector), Some(profile)) = (&self.selector, world.profile(imp.person)) else {
                    return Ok(Outcome::default());
                };
                // The request as an integrator builds it: the person, the moment, the
                // device and channel (the seed only makes the run replayable).
                self.profile.clone_from(profile);
                let context = Context::at(imp.at)
                    .with_device(imp.device)
                    .with_channel(Channel::Web)
                    .with_seed(imp.select_seed);
                selector.select(&self.profile, &context, world.placement(), &mut self.selection)?;
                let Some(creative) = self.selection.picks().first().map(|pick| pick.creative) else {
                    return Ok(Outcome::default());
                };
                let shown = world.creative_index(creative);
                selector.record(
                    &mut self.profile,
                    &Feedback::new(creative, FeedbackKind::Impression, &context),
                )?;
                if imp.click_draw < rate(shown) {
                    selector
                        .record(&mut self.profile, &Feedback::new(creative, FeedbackKind::Click, &context))?;
                }
                shown
            }
        };
        let p = rate(shown);
        Ok(Outcome {
            rate: p,
            clicked: imp.click_draw < p,
            off_persona: !world.matches_high(imp.person, shown),
        })
    }
}

/// What happened in one impression.
#[derive(Clone, Copy, Debug, Default)]
struct Outcome {
    /// The hidden click probability of what was shown.
    rate: f64,
    clicked: bool,
    /// What was shown matches none of the person's high personas.
    off_persona: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Daypart, Device};

    #[test]
    fn hidden_click_rates_are_realistic_and_rise_with_persona_match() {
        for &variant in Variant::ALL {
            let config = SimConfig { variant, people: 300, ..SimConfig::default() };
            let world = World::build(&config).unwrap();
            let (mut matched, mut unmatched) = ((0.0, 0usize), (0.0, 0usize));
            for person in 0..world.people() {
                for c in 0..world.creatives() {
                    let p = world.click_rate(person, Some(c), Device::Mobile, Daypart::Evening);
                    assert!((0.001..=0.25).contains(&p));
                    let acc = if world.matches_high(person, Some(c)) { &mut matched } else { &mut unmatched };
                    acc.0 += p;
                    acc.1 += 1;
                }
            }
            let (m, u) = (matched.0 / matched.1 as f64, unmatched.0 / unmatched.1 as f64);
            assert!(u > 0.004 && u < 0.03, "{variant:?}: unmatched mean {u}");
            assert!(m > 2.0 * u && m < 0.15, "{variant:?}: matched mean {m} vs unmatched {u}");
        }
    }

    #[test]
    fn invalid_configs_name_the_field() {
        let err = run(&SimConfig { windows: 0, ..SimConfig::default() }).unwrap_err();
        assert!(err.to_string().contains("windows"), "{err}");
        let err = run(&SimConfig { impressions: 0, ..SimConfig::default() }).unwrap_err();
        assert!(err.to_string().contains("impressions"), "{err}");
        let err = run(&SimConfig { strategies: vec![], ..SimConfig::default() }).unwrap_err();
        assert!(err.to_string().contains("strategies"), "{err}");
    }
}
