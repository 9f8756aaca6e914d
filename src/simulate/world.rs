//! The synthetic world of the simulation, in one of several [`Variant`]s: a persona menu,
//! a catalog, people with persona scores, the impressions they arrive in, and the
//! **hidden** click probability of every (person, creative, device, daypart) that only
//! the oracle sees. Everything is drawn from a seed; the engine learns about the world
//! only through the catalog spec, the profiles and the feedback it is given.

use std::sync::Arc;

use serde::Serialize;

use crate::catalog::{Catalog, CatalogSpec, CreativeSpec, PlacementId};
use crate::context::{Context, Daypart, Device};
use crate::error::Result;
use crate::persona::{PersonaId, PersonaMenu, PersonaScores};
use crate::profile::{DataClass, DataClasses, Profile};

use super::SimConfig;

/// The placement every simulated creative fits.
pub const PLACEMENT: &str = "feed";

/// The moment the simulated weeks start: Monday 2026-11-23, 00:00 UTC.
pub const START: i64 = 1_795_392_000;

/// The hidden click probability of the fallback house ad.
pub const FALLBACK_CLICK_RATE: f64 = 0.005;

/// The engine's default threshold for a "high" persona score: people with no score at
/// or above it are the "no high persona" group of the report.
pub const HIGH: u8 = 7;

/// In the `graded` variant, the share of people drawn with no score ≥ [`HIGH`] (their
/// tastes are scored 4–6 only).
pub const NO_HIGH_SHARE: f64 = 0.16;

/// In the `multitag` variant, the share of the hidden effect each secondary persona
/// carries (the primary keeps the rest, so listing more personas adds nothing).
pub const SECONDARY_SHARE: f64 = 0.2;

const DAY: i64 = 86_400;
/// Days the simulated impressions are spread over.
const DAYS: i64 = 28;
/// Hidden click rate of a creative matching none of the person's personas (before its
/// quality and context factors).
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
/// Spread of the hidden quality in the `quality` variant (normalized to mean 1).
const STRONG_QUALITY_SIGMA: f64 = 1.0;
/// Hidden per-creative device and daypart factors are uniform in `1 ± CONTEXT_SPREAD`
/// (all variants without attributes).
const CONTEXT_SPREAD: f64 = 0.3;
/// Popularity of persona i is proportional to `1 / (i + 1)^POPULARITY_SKEW`.
const POPULARITY_SKEW: f64 = 0.8;
/// In the `longtail` variant person i arrives with weight `1 / (i + OFFSET)^EXPONENT`.
const LONGTAIL_OFFSET: f64 = 10.0;
const LONGTAIL_EXPONENT: f64 = 1.3;

/// The creative attributes of the `attributes` variant, name and values.
pub const ATTRIBUTES: [(&str, &[&str]); 3] = [
    ("format", &["video", "image", "text"]),
    ("tone", &["playful", "calm", "urgent"]),
    ("offer", &["discount", "none"]),
];

/// A kind of world. Each adds one thing real traffic has to the `classic` world; `mixed`
/// has all of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Variant {
    /// The original world: everyone has 1–3 high personas (7–9), only high scores move
    /// the hidden click rate, tags add up, moderate creative quality, per-creative
    /// device and daypart factors that nothing in the spec reveals.
    Classic,
    /// Graded affinity: scores 4–6 move the hidden click rate too (less than 7–9), and
    /// [`NO_HIGH_SHARE`] of the people have no score ≥ 7 at all.
    Graded,
    /// Creative quality varies strongly (log-normal σ = 1) among creatives of the same
    /// persona: the right persona with the wrong creative loses.
    Quality,
    /// Creatives carry `format`, `tone` and `offer` attributes in the spec, and the
    /// hidden click rate depends on them crossed with device and daypart (video on
    /// mobile in the evening, text on desktop in the morning, ...).
    Attributes,
    /// Creatives list 1–3 personas, the first (highest weight) primary; the hidden effect
    /// comes mostly from the primary and listing more personas does not raise it.
    Multitag,
    /// People arrive with Zipf-like frequency: a head of regulars and a long tail of
    /// people seen about once.
    Longtail,
    /// Everything above at once.
    Mixed,
}

/// What a variant switches on.
#[derive(Clone, Copy, Debug, Default)]
struct Traits {
    graded: bool,
    strong_quality: bool,
    attributes: bool,
    multitag: bool,
    longtail: bool,
}

impl Variant {
    /// Every variant, `classic` first and `mixed` last.
    pub const ALL: &'static [Variant] = &[
        Variant::Classic,
        Variant::Graded,
        Variant::Quality,
        Variant::Attributes,
        Variant::Multitag,
        Variant::Longtail,
        Variant::Mixed,
    ];

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Variant::Classic => "classic",
            Variant::Graded => "graded",
            Variant::Quality => "quality",
            Variant::Attributes => "attributes",
            Variant::Multitag => "multitag",
            Variant::Longtail => "longtail",
            Variant::Mixed => "mixed",
        }
    }

    /// The variant with this name, if any.
    pub fn parse(name: &str) -> Option<Variant> {
        Variant::ALL.iter().copied().find(|v| v.name() == name)
    }

    /// One sentence on what the variant models.
    pub fn description(self) -> &'static str {
        match self {
            Variant::Classic => "only scores 7-9 count, tags add up, moderate creative quality",
            Variant::Graded => "scores 4-6 count too; about 16% of people have no score >= 7",
            Variant::Quality => "creative quality varies strongly within a persona",
            Variant::Attributes => "format/tone/offer attributes whose effect depends on device and daypart",
            Variant::Multitag => "1-3 personas per creative, the primary carries the effect",
            Variant::Longtail => "Zipf-like person frequency: regulars and a long tail seen about once",
            Variant::Mixed => "all of the above",
        }
    }

    fn traits(self) -> Traits {
        let none = Traits::default();
        match self {
            Variant::Classic => none,
            Variant::Graded => Traits { graded: true, ..none },
            Variant::Quality => Traits { strong_quality: true, ..none },
            Variant::Attributes => Traits { attributes: true, ..none },
            Variant::Multitag => Traits { multitag: true, ..none },
            Variant::Longtail => Traits { longtail: true, ..none },
            Variant::Mixed => Traits {
                graded: true,
                strong_quality: true,
                attributes: true,
                multitag: true,
                longtail: true,
            },
        }
    }
}

/// How much a persona score moves the hidden click rate: `s/9` for a high score; in
/// graded worlds also 0.40, 0.25 and 0.12 for scores 6, 5 and 4; otherwise 0.
fn affinity(score: u8, graded: bool) -> f64 {
    match score {
        s if s >= HIGH => f64::from(s) / 9.0,
        6 if graded => 0.40,
        5 if graded => 0.25,
        4 if graded => 0.12,
        _ => 0.0,
    }
}

/// The hidden persona match of a creative tagged `tags` (persona index, weight; in the
/// order listed, the first being the primary) for a person with persona scores `scores`
/// (0..=9 by persona index) in a world of this variant. The hidden click rate is
/// `(0.01 + 0.05 · min(match, 1.6)) · quality · context factor`, clamped to 0.1 %..25 %.
///
/// - Classic and most variants: `Σ w · a(s)` over the tags, where `a(s)` is `s/9` for a
///   score ≥ 7 and 0 below (the same quantity the engine's rules score uses).
/// - `graded` and `mixed`: `a(s)` is also 0.40, 0.25, 0.12 for scores 6, 5, 4.
/// - `multitag` and `mixed`: `w_primary · (share_p · a(s_p) + Σ SECONDARY_SHARE · a(s_i))`,
///   where the primary keeps `share_p = 1 − SECONDARY_SHARE · secondaries`: the weights
///   of secondaries do not count and the shares sum to 1, so a person who fits every
///   listed persona equally gets the same match as from the primary alone, and the match
///   never exceeds `w_primary` times the person's best fit among the listed personas.
pub fn hidden_match(variant: Variant, tags: &[(usize, f64)], scores: &[u8]) -> f64 {
    let graded = variant.traits().graded;
    match_of(variant.traits(), tags, |p| scores.get(p).map_or(0.0, |s| affinity(*s, graded)))
}

fn match_of(traits: Traits, tags: &[(usize, f64)], affinity_of: impl Fn(usize) -> f64) -> f64 {
    if !traits.multitag {
        return tags.iter().map(|&(p, w)| w * affinity_of(p)).sum();
    }
    let Some((&(primary, weight), secondaries)) = tags.split_first() else {
        return 0.0;
    };
    // At most half of the effect goes to secondaries, however many are listed.
    let share = SECONDARY_SHARE.min(0.5 / secondaries.len().max(1) as f64);
    let primary_share = 1.0 - share * secondaries.len() as f64;
    weight
        * (primary_share * affinity_of(primary)
            + secondaries.iter().map(|&(p, _)| share * affinity_of(p)).sum::<f64>())
}

/// The static rule a marketer writes by hand: "show the person's top persona's
/// best-tagged creative". The top persona is the person's highest-scored persona on
/// `menu` (ties go to the one listed first; none when every score is 0); the creative is
/// the non-fallback creative of `spec` fitting `placement` with the highest tag weight
/// for that persona (ties go to the one listed first). Returns its index in
/// `spec.creatives`, or `None` when no creative is tagged with the top persona (the
/// placement's fallback is shown then).
pub fn persona_rule_pick(
    spec: &CatalogSpec,
    menu: &PersonaMenu,
    placement: &str,
    scores: &PersonaScores,
) -> Option<usize> {
    let mut top: Option<(PersonaId, u8)> = None;
    for (id, _) in menu.iter() {
        let s = scores.get(id);
        if s > 0 && top.is_none_or(|(_, best)| s > best) {
            top = Some((id, s));
        }
    }
    let top_name = menu.name(top?.0);
    let mut best: Option<(usize, f64)> = None;
    for (i, creative) in spec.creatives.iter().enumerate() {
        if creative.fallback || !creative.placements.iter().any(|p| p == placement) {
            continue;
        }
        let Some(weight) = creative.personas.iter().find(|(name, _)| name == top_name).map(|(_, w)| *w)
        else {
            continue;
        };
        if weight > 0.0 && best.is_none_or(|(_, b)| weight > b) {
            best = Some((i, weight));
        }
    }
    best.map(|(i, _)| i)
}

/// SplitMix64 for the world's draws (kept here so the world does not change when the
/// engine's own generator does).
#[derive(Clone, Copy, Debug)]
pub(crate) struct SimRng(u64);

impl SimRng {
    pub(crate) fn new(seed: u64) -> Self {
        SimRng(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `0..n`; 0 when `n == 0`.
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (((self.next_u64() >> 32) * n as u64) >> 32) as usize
    }

    /// A Gamma(`shape`, 1) draw (Marsaglia & Tsang 2000; boosted for shapes below 1).
    pub(crate) fn gamma(&mut self, shape: f64) -> f64 {
        if shape < 1.0 {
            let u = 1.0 - self.unit();
            return self.gamma(shape + 1.0) * u.powf(1.0 / shape);
        }
        let d = shape - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        loop {
            let x = self.normal();
            let v = (1.0 + c * x).powi(3);
            if v <= 0.0 {
                continue;
            }
            let u = 1.0 - self.unit();
            if u.ln() < 0.5 * x * x + d - d * v + d * v.ln() {
                return d * v;
            }
        }
    }

    /// A standard normal draw (Box–Muller).
    fn normal(&mut self) -> f64 {
        let u = 1.0 - self.unit();
        let v = self.unit();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }

    /// An index drawn from a cumulative distribution (last value 1).
    fn pick_cumulative(&mut self, cumulative: &[f64]) -> usize {
        let u = self.unit();
        cumulative.partition_point(|c| *c <= u).min(cumulative.len().saturating_sub(1))
    }
}

/// The normalized cumulative sums of `weights`.
fn cumulative(weights: impl Iterator<Item = f64>) -> Vec<f64> {
    let weights: Vec<f64> = weights.collect();
    let total: f64 = weights.iter().sum();
    weights
        .iter()
        .scan(0.0, |acc, w| {
            *acc += w / total;
            Some(*acc)
        })
        .collect()
}

/// A creative's hidden truth.
#[derive(Clone, Debug)]
struct Hidden {
    /// (persona index, weight) as tagged in the catalog, the primary first.
    tags: Vec<(usize, f64)>,
    quality: f64,
    /// Context factor by `[device][daypart]`.
    context: [[f64; Daypart::ALL.len()]; Device::ALL.len()],
}

/// A simulated person.
#[derive(Clone, Debug)]
struct Person {
    profile: Profile,
    /// How much each persona moves the hidden click rate (see [`affinity`]).
    affinity: Vec<f64>,
    /// Has a score ≥ [`HIGH`].
    high: bool,
    /// The static persona rule's pick (world creative index).
    rule_pick: Option<usize>,
}

/// One impression: who arrives, when, on what device, and the random numbers every
/// strategy shares (common random numbers).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Impression {
    /// The person (index into the world's people).
    pub person: usize,
    /// Their device.
    pub device: Device,
    /// When, Unix seconds (UTC; the simulated people live at UTC).
    pub at: i64,
    /// Seed of the engine's randomness for this request.
    pub select_seed: u64,
    /// The creative uniform random shows (world creative index).
    pub uniform_pick: usize,
    /// The click draw: the person clicks when it is below the hidden click probability.
    pub click_draw: f64,
}

impl Impression {
    /// The daypart of the impression.
    pub fn daypart(&self) -> Daypart {
        Context::at(self.at).daypart()
    }
}

/// The synthetic world: a catalog, its hidden truth and the people.
#[derive(Debug)]
pub struct World {
    variant: Variant,
    spec: CatalogSpec,
    catalog: Arc<Catalog>,
    placement: PlacementId,
    creatives: Vec<Hidden>,
    /// The world index of each catalog creative (by `CreativeId::index`); `None` for
    /// the fallback.
    by_catalog: Vec<Option<usize>>,
    people: Vec<Person>,
    /// Cumulative arrival distribution over people.
    arrivals: Vec<f64>,
}

impl World {
    /// Builds the world of `config.variant` from `config.seed`: `config.personas`
    /// personas, `config.creatives` creatives (world creative `i` is `spec().creatives[i]`;
    /// the fallback house ad comes last) and `config.people` people.
    ///
    /// Errors when the configuration is invalid (the field is named).
    pub fn build(config: &SimConfig) -> Result<World> {
        config.validate()?;
        let traits = config.variant.traits();
        let mut rng = SimRng::new(config.seed ^ 0x5157_0a11_d0e5_1ea7);
        let personas: Vec<String> = (0..config.personas).map(|i| format!("persona-{i:02}")).collect();
        let popularity =
            cumulative((0..config.personas).map(|i| 1.0 / ((i + 1) as f64).powf(POPULARITY_SKEW)));

        let mut specs = Vec::with_capacity(config.creatives + 1);
        let mut creatives = Vec::with_capacity(config.creatives);
        for i in 0..config.creatives {
            let mut spec = CreativeSpec::new(format!("creative-{i:03}")).placement(PLACEMENT);
            let mut tags: Vec<(usize, f64)> = Vec::new();
            for t in 0..1 + rng.below(3) {
                let p = rng.below(config.personas);
                if tags.iter().any(|(q, _)| *q == p) {
                    continue;
                }
                // The first tag is the creative's main theme; the others weigh less (in
                // multitag worlds always less, so the spec shows which is primary).
                let w = match (t, traits.multitag) {
                    (0, false) => 0.6 + 0.4 * rng.unit(),
                    (_, false) => 0.3 + 0.5 * rng.unit(),
                    (0, true) => 0.7 + 0.3 * rng.unit(),
                    (_, true) => 0.3 + 0.3 * rng.unit(),
                };
                let w = (w * 100.0).round() / 100.0;
                spec = spec.persona(&personas[p], w);
                tags.push((p, w));
            }
            let quality = if traits.strong_quality {
                let s = STRONG_QUALITY_SIGMA;
                (s * rng.normal() - s * s / 2.0).exp().clamp(0.05, 8.0)
            } else {
                (QUALITY_SIGMA * rng.normal()).exp().clamp(0.3, 3.0)
            };
            let mut context = [[1.0; Daypart::ALL.len()]; Device::ALL.len()];
            if traits.attributes {
                let mut values = [0usize; ATTRIBUTES.len()];
                for (slot, (name, options)) in values.iter_mut().zip(ATTRIBUTES) {
                    // Formats: 30 % video, 45 % image, 25 % text; the rest uniform.
                    *slot = if name == "format" {
                        let u = rng.unit();
                        usize::from(u >= 0.30) + usize::from(u >= 0.75)
                    } else {
                        rng.below(options.len())
                    };
                    spec = spec.attribute(name, options[*slot]);
                }
                for &device in Device::ALL {
                    for &daypart in Daypart::ALL {
                        context[device as usize][daypart as usize] =
                            attribute_factor(values, device, daypart);
                    }
                }
            } else {
                let mut by_device = [1.0; Device::ALL.len()];
                for d in &mut by_device {
                    *d = 1.0 + CONTEXT_SPREAD * (2.0 * rng.unit() - 1.0);
                }
                let mut by_daypart = [1.0; Daypart::ALL.len()];
                for d in &mut by_daypart {
                    *d = 1.0 + CONTEXT_SPREAD * (2.0 * rng.unit() - 1.0);
                }
                for (row, d) in context.iter_mut().zip(by_device) {
                    for (cell, p) in row.iter_mut().zip(by_daypart) {
                        *cell = d * p;
                    }
                }
            }
            specs.push(spec);
            creatives.push(Hidden { tags, quality, context });
        }
        specs.push(CreativeSpec::new("house-ad").placement(PLACEMENT).fallback());
        let spec = CatalogSpec {
            version: format!("simulation-{}-{}", config.variant.name(), config.seed),
            personas,
            placements: vec![PLACEMENT.to_owned()],
            creatives: specs,
            templates: Vec::new(),
            attribute_rules: Vec::new(),
        };
        let catalog = Arc::new(Catalog::compile(&spec)?);
        let placement = catalog.placement(PLACEMENT)?;
        let mut by_catalog = vec![None; catalog.len()];
        for i in 0..creatives.len() {
            let id = catalog.creative(&spec.creatives[i].id)?;
            if let Some(slot) = by_catalog.get_mut(id.index()) {
                *slot = Some(i);
            }
        }

        let menu = catalog.menu();
        let sources = DataClasses::only(DataClass::Behavioral);
        let mut people = Vec::with_capacity(config.people);
        for _ in 0..config.people {
            let mut profile = Profile::for_menu(menu, START - 400 * DAY);
            profile.visits = 50;
            profile.consent = DataClasses::ALL;
            // A few scores 1–6 at random first, then 1–3 tastes on top: scored 7–9, or
            // in graded worlds, for NO_HIGH_SHARE of the people, 4–6 only.
            for _ in 0..rng.below(4) {
                let p = rng.below(menu.len());
                profile.scores.set(PersonaId(p as u16), 1 + rng.below(6) as u8, sources)?;
            }
            let no_high = traits.graded && rng.unit() < NO_HIGH_SHARE;
            for _ in 0..1 + rng.below(3) {
                let p = rng.pick_cumulative(&popularity);
                let score = if no_high { 4 + rng.below(3) as u8 } else { HIGH + rng.below(3) as u8 };
                profile.scores.set(PersonaId(p as u16), score, sources)?;
            }
            let scores = profile.scores.as_slice();
            let affinity = scores.iter().map(|s| affinity(*s, traits.graded)).collect();
            let high = scores.iter().any(|s| *s >= HIGH);
            let rule_pick = persona_rule_pick(&spec, menu, PLACEMENT, &profile.scores);
            people.push(Person { profile, affinity, high, rule_pick });
        }
        let arrivals = if traits.longtail {
            cumulative((0..config.people).map(|i| 1.0 / (i as f64 + LONGTAIL_OFFSET).powf(LONGTAIL_EXPONENT)))
        } else {
            cumulative((0..config.people).map(|_| 1.0))
        };
        Ok(World {
            variant: config.variant,
            spec,
            catalog,
            placement,
            creatives,
            by_catalog,
            people,
            arrivals,
        })
    }

    /// The variant.
    pub fn variant(&self) -> Variant {
        self.variant
    }

    /// The catalog spec the engine is given (world creative `i` is `creatives[i]`).
    pub fn spec(&self) -> &CatalogSpec {
        &self.spec
    }

    /// The compiled catalog.
    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// The placement every creative fits ([`PLACEMENT`]).
    pub fn placement(&self) -> PlacementId {
        self.placement
    }

    /// Creatives, not counting the fallback.
    pub fn creatives(&self) -> usize {
        self.creatives.len()
    }

    /// People.
    pub fn people(&self) -> usize {
        self.people.len()
    }

    /// A person's profile (everyone is a loyal customer who consents to everything).
    pub fn profile(&self, person: usize) -> Option<&Profile> {
        self.people.get(person).map(|p| &p.profile)
    }

    /// Whether a person has a persona score ≥ [`HIGH`].
    pub fn has_high_persona(&self, person: usize) -> bool {
        self.people.get(person).is_some_and(|p| p.high)
    }

    /// The share of people with no persona score ≥ [`HIGH`].
    pub fn no_high_share(&self) -> f64 {
        let none = self.people.iter().filter(|p| !p.high).count();
        none as f64 / self.people.len().max(1) as f64
    }

    /// The world index of a catalog creative; `None` for the fallback.
    pub fn creative_index(&self, id: crate::catalog::CreativeId) -> Option<usize> {
        self.by_catalog.get(id.index()).copied().flatten()
    }

    /// What the static persona rule ([`persona_rule_pick`]) shows a person (world
    /// creative index; `None`: the fallback).
    pub fn persona_rule(&self, person: usize) -> Option<usize> {
        self.people.get(person).and_then(|p| p.rule_pick)
    }

    /// The hidden click probability of world creative `creative` (`None` or out of
    /// range: the fallback, [`FALLBACK_CLICK_RATE`]) for `person` on `device` in
    /// `daypart`: `(0.01 + 0.05 · min(match, 1.6)) · quality · context factor`, clamped
    /// to 0.1 %..25 %, where `match` is [`hidden_match`].
    pub fn click_rate(
        &self,
        person: usize,
        creative: Option<usize>,
        device: Device,
        daypart: Daypart,
    ) -> f64 {
        let (Some(person), Some(h)) = (self.people.get(person), creative.and_then(|c| self.creatives.get(c)))
        else {
            return FALLBACK_CLICK_RATE;
        };
        let matched =
            match_of(self.variant.traits(), &h.tags, |p| person.affinity.get(p).copied().unwrap_or(0.0));
        let rate = (BASE_RATE + MATCH_SLOPE * matched.min(MATCH_CAP))
            * h.quality
            * h.context[device as usize][daypart as usize];
        rate.clamp(MIN_RATE, MAX_RATE)
    }

    /// The hidden context factor of world creative `c` on `device` in `daypart` (1 when
    /// out of range).
    pub(crate) fn context_factor(&self, c: usize, device: Device, daypart: Daypart) -> f64 {
        self.creatives.get(c).map_or(1.0, |h| h.context[device as usize][daypart as usize])
    }

    /// The hidden quality factor of world creative `c` (1 when out of range).
    pub(crate) fn quality(&self, c: usize) -> f64 {
        self.creatives.get(c).map_or(1.0, |h| h.quality)
    }

    /// The Gamma prior (shape, rate) matching the spread of the hidden quality in this
    /// world: the same mean and variance as the log-normal it is drawn from.
    pub(crate) fn quality_prior(&self) -> (f64, f64) {
        let (sigma, mean) = if self.variant.traits().strong_quality {
            (STRONG_QUALITY_SIGMA, 1.0)
        } else {
            (QUALITY_SIGMA, (QUALITY_SIGMA * QUALITY_SIGMA / 2.0).exp())
        };
        let shape = 1.0 / ((sigma * sigma).exp() - 1.0);
        (shape, shape / mean)
    }

    /// True when world creative `creative` is tagged with one of the person's high
    /// personas.
    pub(crate) fn matches_high(&self, person: usize, creative: Option<usize>) -> bool {
        let (Some(person), Some(h)) = (self.people.get(person), creative.and_then(|c| self.creatives.get(c)))
        else {
            return false;
        };
        h.tags.iter().any(|&(p, _)| person.profile.scores.as_slice().get(p).is_some_and(|s| *s >= HIGH))
    }

    /// The first `n` impressions of the run seeded with `seed`, spread over four weeks:
    /// the same for every strategy, and the same on every call.
    pub fn impressions(&self, seed: u64, n: usize) -> Vec<Impression> {
        (0..n).map(|i| self.impression(seed, i, n)).collect()
    }

    fn impression(&self, seed: u64, i: usize, n: usize) -> Impression {
        let mut rng = SimRng::new(seed ^ (i as u64).wrapping_mul(0xd1b5_4a32_d192_ed03));
        // Spread a first draw so neighbouring impressions are unrelated.
        rng.next_u64();
        let person = rng.pick_cumulative(&self.arrivals);
        let device = match rng.below(20) {
            0..=10 => Device::Mobile,
            11..=17 => Device::Desktop,
            _ => Device::Tablet,
        };
        let day = (i as i64 * DAYS) / n.max(1) as i64;
        let hour = rng.below(24) as i64;
        Impression {
            person,
            device,
            at: START + day * DAY + hour * 3_600 + rng.below(3_600) as i64,
            select_seed: rng.next_u64(),
            uniform_pick: rng.below(self.creatives.len()),
            click_draw: rng.unit(),
        }
    }
}

/// The hidden context factor of a creative with attribute values `values` (indexes into
/// [`ATTRIBUTES`]: format, tone, offer) on `device` in `daypart`.
fn attribute_factor(values: [usize; 3], device: Device, daypart: Daypart) -> f64 {
    use Daypart::*;
    let evening = matches!(daypart, Evening | Night);
    let format = match (values[0], device) {
        // video: made for phones in the evening, weak on desktop.
        (0, Device::Mobile) if evening => 2.0,
        (0, Device::Mobile) => 1.3,
        (0, Device::Tablet) => 1.2,
        (0, _) => 0.7,
        // text: made for desktop mornings, weak on phones.
        (2, Device::Desktop) if daypart == Morning => 1.9,
        (2, Device::Desktop) => 1.2,
        (2, Device::Mobile) => 0.6,
        (2, _) => 0.8,
        // image: the same everywhere.
        _ => 1.0,
    };
    let tone = match (values[1], daypart) {
        (0, Evening | Night) => 1.3,
        (0, Morning) => 0.8,
        (1, Morning) => 1.3,
        (1, Midday | Afternoon) => 0.9,
        (2, Midday | Afternoon) => 1.3,
        (2, Night) => 0.7,
        _ => 1.0,
    };
    let offer = match (values[2], device) {
        (0, Device::Mobile) => 1.25,
        (0, Device::Desktop) => 0.95,
        _ => 1.0,
    };
    format * tone * offer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gamma_draws_have_the_shape_as_mean_and_variance() {
        for shape in [0.6, 1.0, 4.46, 30.0] {
            let mut rng = SimRng::new(3);
            let n = 40_000;
            let draws: Vec<f64> = (0..n).map(|_| rng.gamma(shape)).collect();
            let mean = draws.iter().sum::<f64>() / n as f64;
            let var = draws.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
            assert!((mean - shape).abs() < 0.03 * shape + 0.02, "shape {shape}: mean {mean}");
            assert!((var - shape).abs() < 0.08 * shape + 0.03, "shape {shape}: variance {var}");
            assert!(draws.iter().all(|x| *x > 0.0));
        }
    }
}
