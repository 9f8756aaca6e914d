//! "Does it learn?": a synthetic world in which people click with hidden probabilities,
//! and an online loop in which each strategy picks a creative, sees whether it was
//! clicked and reports it with [`Selector::record`], so strategies can be compared over
//! time. It only drives the public API; nothing on the hot path depends on it.
//!
//! The world (all of it drawn from the seed):
//! - a persona menu (`persona-00` …) whose personas are not equally common;
//! - one placement, `feed`, and creatives tagged with 1–3 personas (generic intimacy, no
//!   targeting, schedules or caps, priority 1), so every creative is always eligible,
//!   plus one fallback house ad;
//! - people (loyal, consent to everything) with 1–3 high personas scored 7–9 and a few
//!   low ones;
//! - a **hidden** click probability per (person, creative, device, daypart):
//!   `(0.01 + 0.05 · min(match, 1.6)) · quality · device factor · daypart factor`,
//!   clamped to 0.1 %..25 %, where `match` is the persona match `Σ w·s/9` over the
//!   person's high personas (the same quantity the engine's rules score uses), and
//!   `quality`, the device factors and the daypart factors belong to each creative and
//!   are *not* revealed by its tags. Persona match therefore predicts clicks, but only
//!   learning can find the creatives that do better than their tags suggest.
//!
//! Each round draws a person and a moment (device, hour of day) from a stream seeded by
//! the configuration's seed and the round number, so every strategy meets the same
//! people at the same moments and the same click draws (common random numbers), and a
//! run is reproducible. Every round starts from a fresh copy of the person's profile:
//! impressions and clicks update the learned statistics, but no exposure memory carries
//! over, so fatigue and caps never change a pick and the comparison is about learning
//! alone.

use std::sync::Arc;

use crate::catalog::{Catalog, CatalogSpec, CreativeSpec, PlacementId};
use crate::context::{Context, Daypart, Device};
use crate::error::{Error, Result};
use crate::feedback::{Feedback, FeedbackKind};
use crate::learn::{LearningConfig, Policy, Rng};
use crate::persona::PersonaId;
use crate::profile::{DataClass, DataClasses, Profile};
use crate::select::{Selection, Selector, SelectorConfig};

/// The placement every simulated creative fits.
pub const PLACEMENT: &str = "feed";

/// The moment the simulated weeks start: Monday 2026-11-23, 00:00 UTC.
pub const START: i64 = 1_795_392_000;

/// The hidden click probability of the fallback house ad.
pub const FALLBACK_CLICK_RATE: f64 = 0.005;

const DAY: i64 = 86_400;
/// Days the simulated rounds are spread over.
const DAYS: i64 = 28;
/// Hidden click rate of a creative matching none of the person's high personas (before
/// its quality and context factors).
const BASE_RATE: f64 = 0.01;
/// Hidden click rate added per unit of persona match.
const MATCH_SLOPE: f64 = 0.05;
/// Persona match beyond this adds nothing to the hidden click rate.
const MATCH_CAP: f64 = 1.6;
/// Hidden click probabilities stay within these bounds.
const MIN_RATE: f64 = 0.001;
const MAX_RATE: f64 = 0.25;
/// Spread (log-normal σ) of the hidden per-creative quality.
const QUALITY_SIGMA: f64 = 0.45;
/// Hidden device and daypart factors are uniform in `1 ± CONTEXT_SPREAD`.
const CONTEXT_SPREAD: f64 = 0.3;
/// Popularity of persona i is proportional to `1 / (i + 1)^POPULARITY_SKEW`.
const POPULARITY_SKEW: f64 = 0.8;
/// The engine's default threshold for a "high" persona score.
const HIGH: u8 = 7;

/// Who picks the creative in each round.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Strategy {
    /// Uniformly among the eligible creatives (here: all but the fallback); learns nothing.
    UniformRandom,
    /// The engine under this policy. [`Policy::Rules`] is persona-match greedy without
    /// learning; the others learn from every impression and click.
    Engine(Policy),
    /// Knows the hidden click probabilities and always picks the highest: the ceiling
    /// no strategy can beat on average.
    Oracle,
}

impl Strategy {
    /// A short name for tables and charts, e.g. `thompson` or `epsilon-greedy (0.1)`.
    pub fn name(&self) -> String {
        match self {
            Strategy::UniformRandom => "uniform random".to_owned(),
            Strategy::Oracle => "oracle".to_owned(),
            Strategy::Engine(Policy::Rules) => "persona match (rules)".to_owned(),
            Strategy::Engine(Policy::Greedy) => "greedy".to_owned(),
            Strategy::Engine(Policy::EpsilonGreedy { epsilon }) => {
                format!("epsilon-greedy ({epsilon})")
            }
            Strategy::Engine(Policy::Softmax { temperature }) => {
                format!("softmax (T={temperature})")
            }
            Strategy::Engine(Policy::Thompson) => "thompson".to_owned(),
        }
    }

    /// Every strategy the simulation compares by default: uniform random, persona-match
    /// rules, greedy, epsilon-greedy (ε = 0.1), softmax (T = 0.03), Thompson sampling and
    /// the oracle. Softmax's temperature is relative to the best score; at T = 0.1 the
    /// ~90 % of creatives that match none of a person's personas (each scoring about a
    /// fifth of the best) still take about 6 % of the picks, so this world uses 0.03,
    /// the best of 0.01–0.2 over seeds 1–10.
    pub fn all() -> Vec<Strategy> {
        vec![
            Strategy::UniformRandom,
            Strategy::Engine(Policy::Rules),
            Strategy::Engine(Policy::Greedy),
            Strategy::Engine(Policy::EpsilonGreedy { epsilon: 0.1 }),
            Strategy::Engine(Policy::Softmax { temperature: 0.03 }),
            Strategy::Engine(Policy::Thompson),
            Strategy::Oracle,
        ]
    }
}

/// The shape of a simulation: the world's size, how long it runs, who competes and how
/// the engine learns.
#[derive(Clone, Debug, PartialEq)]
pub struct SimConfig {
    /// Rounds (one person, one moment, one pick) per strategy (≥ 1).
    pub rounds: usize,
    /// Seed of the world and of every round: the same configuration gives the same report.
    pub seed: u64,
    /// Personas on the menu (1..=1,000).
    pub personas: usize,
    /// Creatives, not counting the fallback (≥ 1).
    pub creatives: usize,
    /// People to draw from (≥ 1).
    pub people: usize,
    /// Windows the rounds are cut into for the click rate over time (1..=rounds).
    pub windows: usize,
    /// The strategies to compare, each with fresh statistics.
    pub strategies: Vec<Strategy>,
    /// The engine's learning configuration; its `policy` is replaced by each
    /// [`Strategy::Engine`] policy in turn. See [`SimConfig::tuned_learning`].
    pub learning: LearningConfig,
}

impl Default for SimConfig {
    /// 20,000 rounds in a world of 30 personas, 200 creatives and 5,000 people, seed 42,
    /// cut into 20 windows, comparing [`Strategy::all`] under
    /// [`SimConfig::tuned_learning`].
    fn default() -> Self {
        SimConfig {
            rounds: 20_000,
            seed: 42,
            personas: 30,
            creatives: 200,
            people: 5_000,
            windows: 20,
            strategies: Strategy::all(),
            learning: SimConfig::tuned_learning(),
        }
    }
}

impl SimConfig {
    /// The learning configuration the simulation uses by default: the engine's own
    /// defaults. (Before the lift model, the shared statistics replaced the persona
    /// prior instead of adjusting it and the simulation needed a prior worth 1,000
    /// impressions to keep learning ahead of the rules; it no longer does.)
    pub fn tuned_learning() -> LearningConfig {
        LearningConfig::default()
    }

    /// Checks every field; errors name the field.
    pub fn validate(&self) -> Result<()> {
        let bad = |field: &str, problem: String| Err(Error::invalid("simulation config", field, problem));
        if self.rounds == 0 {
            return bad("rounds", "must be at least 1".to_owned());
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
        if !(1..=self.rounds).contains(&self.windows) {
            return bad(
                "windows",
                format!("{} must be between 1 and rounds ({})", self.windows, self.rounds),
            );
        }
        if self.strategies.is_empty() {
            return bad("strategies", "name at least one strategy".to_owned());
        }
        SelectorConfig { learning: self.learning, ..SelectorConfig::default() }.validate()
    }
}

/// How one strategy did.
#[derive(Clone, Debug, PartialEq)]
pub struct StrategyResult {
    /// The strategy.
    pub strategy: Strategy,
    /// Its name ([`Strategy::name`]).
    pub name: String,
    /// Clicks over all rounds.
    pub clicks: u64,
    /// Clicks per round.
    pub click_rate: f64,
    /// The mean hidden click probability of what it showed: the click rate without the
    /// noise of the click draws.
    pub expected_click_rate: f64,
    /// The share of rounds in which what it showed matched none of the person's high
    /// personas.
    pub off_persona_share: f64,
    /// Clicks per round in each window, in order.
    pub window_click_rate: Vec<f64>,
    /// The mean hidden click probability in each window, in order.
    pub window_expected_click_rate: Vec<f64>,
}

/// What a simulation measured: one row per strategy, in the configured order.
#[derive(Clone, Debug, PartialEq)]
pub struct SimReport {
    /// Rounds per strategy.
    pub rounds: usize,
    /// The seed.
    pub seed: u64,
    /// Rounds in each window (the last window may hold more).
    pub window_rounds: Vec<usize>,
    /// One row per strategy.
    pub rows: Vec<StrategyResult>,
}

impl SimReport {
    /// The row of a strategy, if it ran.
    pub fn row(&self, strategy: Strategy) -> Option<&StrategyResult> {
        self.rows.iter().find(|r| r.strategy == strategy)
    }

    /// The report as a Markdown table: click rate, lift over uniform random, share of
    /// the oracle's click rate, the click rate in the first, middle and last window, and
    /// the share of off-persona picks. Columns whose reference strategy did not run show
    /// "–".
    pub fn to_markdown(&self) -> String {
        let uniform = self.row(Strategy::UniformRandom).map(|r| r.click_rate);
        let oracle = self.row(Strategy::Oracle).map(|r| r.click_rate);
        let windows = self.window_rounds.len();
        let (first, middle, last) = (0, windows / 2, windows.saturating_sub(1));
        let mut out = String::new();
        out.push_str(&format!(
            "| policy | click rate | lift vs uniform | % of oracle | window 1 | window {} | window {} | off-persona picks |\n",
            middle + 1,
            last + 1
        ));
        out.push_str("|---|---:|---:|---:|---:|---:|---:|---:|\n");
        let pct = |x: f64| format!("{:.2}%", 100.0 * x);
        for r in &self.rows {
            let lift = match uniform {
                Some(u) if u > 0.0 => format!("{:+.0}%", 100.0 * (r.click_rate / u - 1.0)),
                _ => "–".to_owned(),
            };
            let share = match oracle {
                Some(o) if o > 0.0 => format!("{:.0}%", 100.0 * r.click_rate / o),
                _ => "–".to_owned(),
            };
            let w = |i: usize| r.window_click_rate.get(i).map_or("–".to_owned(), |x| pct(*x));
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} | {:.0}% |\n",
                r.name,
                pct(r.click_rate),
                lift,
                share,
                w(first),
                w(middle),
                w(last),
                100.0 * r.off_persona_share
            ));
        }
        out
    }
}

/// A creative's hidden truth.
#[derive(Clone, Debug)]
struct Hidden {
    /// (persona index, weight) as tagged in the catalog.
    tags: Vec<(usize, f64)>,
    quality: f64,
    device: [f64; Device::ALL.len()],
    daypart: [f64; Daypart::ALL.len()],
}

/// A simulated person.
#[derive(Clone, Debug)]
struct Person {
    profile: Profile,
    /// `s/9` for each high persona, 0 otherwise: what the hidden click rate sees.
    affinity: Vec<f64>,
}

/// The synthetic world: a catalog, its hidden truth and the people.
#[derive(Debug)]
struct World {
    catalog: Arc<Catalog>,
    placement: PlacementId,
    creatives: Vec<Hidden>,
    /// The world index of each catalog creative (by `CreativeId::index`); `None` for
    /// the fallback.
    by_catalog: Vec<Option<usize>>,
    people: Vec<Person>,
}

/// One round's draws, the same for every strategy.
#[derive(Clone, Copy, Debug)]
struct Round {
    person: usize,
    device: Device,
    at: i64,
    select_seed: u64,
    uniform_pick: usize,
    click_draw: f64,
}

impl World {
    fn build(config: &SimConfig) -> Result<World> {
        let mut rng = Rng::new(config.seed ^ 0x5157_0a11_d0e5_1ea7);
        let personas: Vec<String> = (0..config.personas).map(|i| format!("persona-{i:02}")).collect();
        let popularity: Vec<f64> =
            (0..config.personas).map(|i| 1.0 / ((i + 1) as f64).powf(POPULARITY_SKEW)).collect();
        let total: f64 = popularity.iter().sum();
        let cumulative: Vec<f64> = popularity
            .iter()
            .scan(0.0, |acc, p| {
                *acc += p / total;
                Some(*acc)
            })
            .collect();

        let mut specs = Vec::with_capacity(config.creatives + 1);
        let mut tags_of = Vec::with_capacity(config.creatives);
        for i in 0..config.creatives {
            let mut spec = CreativeSpec::new(format!("creative-{i:03}")).placement(PLACEMENT);
            let mut tags: Vec<(usize, f64)> = Vec::new();
            for t in 0..1 + rng.below(3) {
                let p = rng.below(config.personas);
                if tags.iter().any(|(q, _)| *q == p) {
                    continue;
                }
                // The first tag is the creative's main theme; the others weigh less.
                let w = if t == 0 { 0.6 + 0.4 * rng.unit() } else { 0.3 + 0.5 * rng.unit() };
                let w = (w * 100.0).round() / 100.0;
                spec = spec.persona(&personas[p], w);
                tags.push((p, w));
            }
            specs.push(spec);
            tags_of.push(tags);
        }
        specs.push(CreativeSpec::new("house-ad").placement(PLACEMENT).fallback());
        let spec = CatalogSpec {
            version: format!("simulation-{}", config.seed),
            personas,
            placements: vec![PLACEMENT.to_owned()],
            creatives: specs,
        };
        let catalog = Arc::new(Catalog::compile(&spec)?);
        let placement = catalog.placement(PLACEMENT)?;

        let mut creatives = Vec::with_capacity(config.creatives);
        let mut by_catalog = vec![None; catalog.len()];
        for (i, tags) in tags_of.into_iter().enumerate() {
            let id = catalog.creative(&spec.creatives[i].id)?;
            if let Some(slot) = by_catalog.get_mut(id.index()) {
                *slot = Some(i);
            }
            let quality = (QUALITY_SIGMA * rng.normal()).exp().clamp(0.3, 3.0);
            let mut device = [1.0; Device::ALL.len()];
            for d in &mut device {
                *d = 1.0 + CONTEXT_SPREAD * (2.0 * rng.unit() - 1.0);
            }
            let mut daypart = [1.0; Daypart::ALL.len()];
            for d in &mut daypart {
                *d = 1.0 + CONTEXT_SPREAD * (2.0 * rng.unit() - 1.0);
            }
            creatives.push(Hidden { tags, quality, device, daypart });
        }

        let menu = catalog.menu();
        let sources = DataClasses::only(DataClass::Behavioral);
        let mut people = Vec::with_capacity(config.people);
        for _ in 0..config.people {
            let mut profile = Profile::new(menu.len(), START - 400 * DAY);
            profile.visits = 50;
            profile.consent = DataClasses::ALL;
            let mut affinity = vec![0.0; menu.len()];
            // A few low scores first (they never count), then 1–3 high ones on top.
            for _ in 0..rng.below(4) {
                let p = rng.below(menu.len());
                profile.scores.set(PersonaId(p as u16), 1 + rng.below(6) as u8, sources)?;
            }
            for _ in 0..1 + rng.below(3) {
                let u = rng.unit();
                let p = cumulative.iter().position(|c| u < *c).unwrap_or(menu.len() - 1);
                let score = HIGH + rng.below(3) as u8;
                profile.scores.set(PersonaId(p as u16), score, sources)?;
                affinity[p] = f64::from(score) / 9.0;
            }
            people.push(Person { profile, affinity });
        }
        Ok(World { catalog, placement, creatives, by_catalog, people })
    }

    /// The hidden click probability of world creative `c` for `person` on `device` in
    /// `daypart`.
    fn click_rate(&self, person: &Person, c: usize, device: Device, daypart: Daypart) -> f64 {
        let Some(h) = self.creatives.get(c) else {
            return FALLBACK_CLICK_RATE;
        };
        let matched: f64 =
            h.tags.iter().map(|&(p, w)| w * person.affinity.get(p).copied().unwrap_or(0.0)).sum();
        let rate = (BASE_RATE + MATCH_SLOPE * matched.min(MATCH_CAP))
            * h.quality
            * h.device[device as usize]
            * h.daypart[daypart as usize];
        rate.clamp(MIN_RATE, MAX_RATE)
    }

    /// True when world creative `c` is tagged with one of the person's high personas.
    fn matches(&self, person: &Person, c: usize) -> bool {
        self.creatives
            .get(c)
            .is_some_and(|h| h.tags.iter().any(|&(p, _)| person.affinity.get(p).is_some_and(|a| *a > 0.0)))
    }

    /// The draws of round `i`: who, when, on what, and the random numbers every strategy
    /// shares.
    fn round(&self, seed: u64, i: usize, rounds: usize) -> Round {
        let mut rng = Rng::new(seed ^ (i as u64).wrapping_mul(0xd1b5_4a32_d192_ed03));
        // Spread a first draw so neighbouring rounds are unrelated.
        rng.next_u64();
        let person = rng.below(self.people.len());
        let device = match rng.below(20) {
            0..=10 => Device::Mobile,
            11..=17 => Device::Desktop,
            _ => Device::Tablet,
        };
        let day = (i as i64 * DAYS) / rounds.max(1) as i64;
        let hour = rng.below(24) as i64;
        Round {
            person,
            device,
            at: START + day * DAY + hour * 3_600 + rng.below(3_600) as i64,
            select_seed: rng.next_u64(),
            uniform_pick: rng.below(self.creatives.len()),
            click_draw: rng.unit(),
        }
    }
}

/// Runs the simulation: builds the world from `config.seed`, then for each strategy
/// (with its own fresh [`Selector`]) plays `config.rounds` rounds of select, click draw
/// and record. Deterministic: the same configuration gives the same report.
///
/// Errors when the configuration is invalid (the field is named).
pub fn run(config: &SimConfig) -> Result<SimReport> {
    config.validate()?;
    let world = World::build(config)?;
    let rounds = config.rounds;
    let windows = config.windows;
    let window_of = |i: usize| (i * windows / rounds).min(windows - 1);
    let mut window_rounds = vec![0usize; windows];
    for i in 0..rounds {
        window_rounds[window_of(i)] += 1;
    }
    let plan: Vec<Round> = (0..rounds).map(|i| world.round(config.seed, i, rounds)).collect();

    let mut rows = Vec::with_capacity(config.strategies.len());
    for &strategy in &config.strategies {
        let mut play = Play::new(&world, strategy, config)?;
        let mut clicks = 0u64;
        let mut expected = 0.0f64;
        let mut window_clicks = vec![0u64; windows];
        let mut window_expected = vec![0.0f64; windows];
        let mut off_persona = 0u64;
        for (i, round) in plan.iter().enumerate() {
            let outcome = play.round(round)?;
            let w = window_of(i);
            expected += outcome.rate;
            window_expected[w] += outcome.rate;
            off_persona += u64::from(outcome.off_persona);
            if outcome.clicked {
                clicks += 1;
                window_clicks[w] += 1;
            }
        }
        let per = |x: f64, n: usize| if n == 0 { 0.0 } else { x / n as f64 };
        rows.push(StrategyResult {
            strategy,
            name: strategy.name(),
            clicks,
            click_rate: per(clicks as f64, rounds),
            expected_click_rate: per(expected, rounds),
            off_persona_share: per(off_persona as f64, rounds),
            window_click_rate: window_clicks
                .iter()
                .zip(&window_rounds)
                .map(|(c, n)| per(*c as f64, *n))
                .collect(),
            window_expected_click_rate: window_expected
                .iter()
                .zip(&window_rounds)
                .map(|(e, n)| per(*e, *n))
                .collect(),
        });
    }
    Ok(SimReport { rounds, seed: config.seed, window_rounds, rows })
}

/// One strategy playing in the world.
struct Play<'w> {
    world: &'w World,
    strategy: Strategy,
    /// The engine, for [`Strategy::Engine`].
    selector: Option<Selector>,
    selection: Selection,
    /// The round's copy of the person's profile (reused to save allocations).
    profile: Profile,
}

impl<'w> Play<'w> {
    fn new(world: &'w World, strategy: Strategy, config: &SimConfig) -> Result<Self> {
        let selector = match strategy {
            Strategy::Engine(policy) => {
                let mut learning = config.learning;
                learning.policy = policy;
                let selector_config = SelectorConfig { learning, ..SelectorConfig::default() };
                Some(Selector::new(Arc::clone(&world.catalog), selector_config)?)
            }
            Strategy::UniformRandom | Strategy::Oracle => None,
        };
        let selection = selector.as_ref().map_or_else(|| Selection::new(1), |s| s.new_selection(1));
        Ok(Play { world, strategy, selector, selection, profile: Profile::default() })
    }

    /// Plays one round: what was shown (world index, `None` for the fallback or
    /// nothing), its hidden click probability, and whether it was clicked.
    fn round(&mut self, round: &Round) -> Result<Outcome> {
        let world = self.world;
        let Some(person) = world.people.get(round.person) else {
            return Ok(Outcome::default());
        };
        let context = Context::at(round.at).with_device(round.device).with_seed(round.select_seed);
        let daypart = context.daypart();
        let rate = |c: Option<usize>| match c {
            Some(c) => world.click_rate(person, c, round.device, daypart),
            None => FALLBACK_CLICK_RATE,
        };
        let shown = match self.strategy {
            Strategy::UniformRandom => Some(round.uniform_pick),
            Strategy::Oracle => {
                let mut best = (None, f64::NEG_INFINITY);
                for c in 0..world.creatives.len() {
                    let p = rate(Some(c));
                    if p > best.1 {
                        best = (Some(c), p);
                    }
                }
                best.0
            }
            Strategy::Engine(_) => {
                let Some(selector) = &self.selector else {
                    return Ok(Outcome::default());
                };
                self.profile.clone_from(&person.profile);
                selector.select(&self.profile, &context, world.placement, &mut self.selection)?;
                let Some(creative) = self.selection.picks().first().map(|pick| pick.creative) else {
                    return Ok(Outcome::default());
                };
                let shown = world.by_catalog.get(creative.index()).copied().flatten();
                let clicked = round.click_draw < rate(shown);
                selector.record(
                    &mut self.profile,
                    &Feedback::new(creative, FeedbackKind::Impression, &context),
                )?;
                if clicked {
                    selector
                        .record(&mut self.profile, &Feedback::new(creative, FeedbackKind::Click, &context))?;
                }
                shown
            }
        };
        let p = rate(shown);
        Ok(Outcome {
            rate: p,
            clicked: round.click_draw < p,
            off_persona: !shown.is_some_and(|c| world.matches(person, c)),
        })
    }
}

/// What happened in one round.
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

    #[test]
    fn hidden_click_rates_are_realistic_and_rise_with_persona_match() {
        let config = SimConfig { people: 500, ..SimConfig::default() };
        let world = World::build(&config).unwrap();
        let (mut matched, mut unmatched) = ((0.0, 0usize), (0.0, 0usize));
        for person in &world.people {
            for (c, h) in world.creatives.iter().enumerate() {
                let p = world.click_rate(person, c, Device::Mobile, Daypart::Evening);
                assert!((MIN_RATE..=MAX_RATE).contains(&p));
                let acc = if h.tags.iter().any(|(q, _)| person.affinity[*q] > 0.0) {
                    &mut matched
                } else {
                    &mut unmatched
                };
                acc.0 += p;
                acc.1 += 1;
            }
        }
        let (m, u) = (matched.0 / matched.1 as f64, unmatched.0 / unmatched.1 as f64);
        assert!(u > 0.005 && u < 0.02, "unmatched mean {u}");
        assert!(m > 2.5 * u && m < 0.15, "matched mean {m} vs unmatched {u}");
    }

    #[test]
    fn invalid_configs_name_the_field() {
        let err = run(&SimConfig { windows: 0, ..SimConfig::default() }).unwrap_err();
        assert!(err.to_string().contains("windows"), "{err}");
        let err = run(&SimConfig { rounds: 0, ..SimConfig::default() }).unwrap_err();
        assert!(err.to_string().contains("rounds"), "{err}");
    }
}
