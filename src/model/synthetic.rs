//! A synthetic training set with a known ground truth: people with browsing, purchase,
//! third-party, location and demographic signals spread over recent days, consent that
//! some withhold, and per persona a true logistic propensity from those signals (itself
//! a [`PersonaModelSpec`]) from which who showed the behaviour is drawn. Lets the whole
//! training flow run, and be checked, without real data. Deterministic for a seed.

use super::train::{Positive, TrainingPerson};
use super::{PersonaModel, PersonaModelSpec, PersonaWeights};
use crate::error::Result;
use crate::persona::PersonaMenu;
use crate::profile::{DataClass, DataClasses, Profile, Signal};

const DAY: i64 = 86_400;

const TOPICS: [&str; 14] = [
    "beach",
    "city",
    "ski",
    "spa",
    "family",
    "luxury",
    "budget",
    "food",
    "fashion",
    "gadgets",
    "security",
    "eco",
    "business",
    "adventure",
];

const STATIC: [(&str, DataClass, f64); 4] = [
    ("income_high", DataClass::Demographic, 0.25),
    ("has_kids", DataClass::Demographic, 0.30),
    ("lives_coastal", DataClass::Location, 0.20),
    ("lives_urban", DataClass::Location, 0.40),
];

/// What to generate.
#[derive(Clone, Debug, PartialEq)]
pub struct SyntheticConfig {
    /// The personas (each gets a true model).
    pub personas: Vec<String>,
    /// How many people.
    pub people: usize,
    /// Seeds everything.
    pub seed: u64,
    /// The end of the observed period (Unix seconds).
    pub now: i64,
    /// Signals and behaviour are spread over this many days before `now`.
    pub days: u32,
    /// The half-life the true propensities decay signals with.
    pub half_life_days: f64,
}

impl SyntheticConfig {
    /// `people` people for `personas`, seeded with `seed`, over the 90 days before the
    /// sample data's moment, with a 30-day half-life.
    pub fn new(personas: &[&str], people: usize, seed: u64) -> Self {
        SyntheticConfig {
            personas: personas.iter().map(|p| (*p).to_owned()).collect(),
            people,
            seed,
            now: crate::sample::NOW,
            days: 90,
            half_life_days: 30.0,
        }
    }
}

/// A generated training set and its ground truth.
#[derive(Clone, Debug)]
pub struct SyntheticSet {
    /// The people, ids `p000001`, ... in order.
    pub people: Vec<TrainingPerson>,
    /// Who showed which persona's behaviour, and when (Unix seconds).
    pub positives: Vec<(Positive, i64)>,
    /// The true propensity model: applied to *all* of a person's signals (behaviour does
    /// not ask for consent), its logits are the log-odds each person showed the
    /// behaviour by `now`.
    pub truth: PersonaModelSpec,
    /// The end of the observed period.
    pub now: i64,
}

/// SplitMix64: small, seedable, good enough for test data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.unit() * n as f64) as usize % n.max(1)
    }
}

/// Generates a training set: see the module documentation.
pub fn generate(config: &SyntheticConfig) -> Result<SyntheticSet> {
    let menu = PersonaMenu::new(config.personas.iter().cloned())?;
    let mut rng = Rng(config.seed ^ 0x005e_ed0f_7ea1);
    let span = i64::from(config.days.max(1)) * DAY;
    let mut people = Vec::with_capacity(config.people);
    for n in 0..config.people {
        let interests = [rng.below(TOPICS.len()), rng.below(TOPICS.len())];
        let mut signals = Vec::new();
        let events = 3 + rng.below(12);
        for _ in 0..events {
            let topic = if rng.unit() < 0.75 {
                TOPICS[interests[rng.below(2)]]
            } else {
                TOPICS[rng.below(TOPICS.len())]
            };
            let kind = rng.unit();
            let (name, class, value) = if kind < 0.7 {
                (format!("viewed_{topic}"), DataClass::Behavioral, 1.0)
            } else if kind < 0.9 {
                (format!("bought_{topic}"), DataClass::Purchase, 1.0 + rng.below(3) as f32)
            } else {
                (format!("tp_{topic}"), DataClass::ThirdParty, 1.0)
            };
            let at = config.now - (rng.unit() * span as f64) as i64;
            signals.push(Signal { name, value, class, at });
        }
        for (name, class, share) in STATIC {
            if rng.unit() < share {
                let at = config.now - (rng.unit() * span as f64) as i64;
                signals.push(Signal { name: name.to_owned(), value: 1.0, class, at });
            }
        }
        signals.sort_by_key(|s| s.at);
        let c = rng.unit();
        let consent = if c < 0.85 {
            DataClasses::ALL
        } else if c < 0.95 {
            DataClasses::ALL.without(DataClass::ThirdParty)
        } else {
            DataClasses::only(DataClass::Behavioral).with(DataClass::Purchase).with(DataClass::Declared)
        };
        people.push(TrainingPerson { person: format!("p{:06}", n + 1), consent, signals });
    }

    // The truth: each persona leans on a main and a side topic, one static trait, and
    // one topic that puts it off; its bias sets a base rate between 4 % and 20 %.
    let mut truth = PersonaModelSpec { half_life_days: config.half_life_days, personas: Vec::new() };
    for (i, name) in config.personas.iter().enumerate() {
        // A persona named after a topic ("Beach Lover", "Foodie") leans on that topic.
        let lower = name.to_lowercase();
        let main = TOPICS.iter().find(|t| lower.contains(**t)).copied().unwrap_or(TOPICS[i % TOPICS.len()]);
        let side = TOPICS[(i * 5 + 3) % TOPICS.len()];
        let off = TOPICS[(i * 3 + 7) % TOPICS.len()];
        let (trait_name, _, _) = STATIC[rng.below(STATIC.len())];
        let mut weights = vec![
            (format!("viewed_{main}"), 1.2 + 0.6 * rng.unit()),
            (format!("bought_{main}"), 1.5 + 0.8 * rng.unit()),
            (format!("tp_{main}"), 0.4),
            (format!("viewed_{side}"), 0.5 + 0.4 * rng.unit()),
            (format!("bought_{side}"), 0.8),
            (trait_name.to_owned(), 0.6 + 0.8 * rng.unit()),
        ];
        if off != main && off != side {
            weights.push((format!("viewed_{off}"), -0.8));
        }
        truth.personas.push((name.clone(), PersonaWeights { bias: 0.0, weights, deciles: None }));
    }
    let profiles: Vec<Profile> = people
        .iter()
        .map(|p| {
            let mut profile = p.to_profile(&menu, config.now);
            profile.consent = DataClasses::ALL;
            profile
        })
        .collect();
    for (_, w) in &mut truth.personas {
        let target = 0.04 + 0.16 * rng.unit();
        let single = PersonaModelSpec {
            half_life_days: config.half_life_days,
            personas: vec![(config.personas[0].clone(), PersonaWeights { bias: 0.0, ..w.clone() })],
        };
        let model = PersonaModel::compile(&menu, &single)?;
        let mut logits = Vec::with_capacity(profiles.len());
        for p in &profiles {
            logits.push(model.logits(p, config.now)?.first().map_or(0.0, |(z, _)| *z));
        }
        // Bisection on the bias for the target mean propensity.
        let (mut lo, mut hi) = (-20.0, 20.0);
        for _ in 0..60 {
            let mid = (lo + hi) / 2.0;
            let mean = logits.iter().map(|z| 1.0 / (1.0 + (-(z + mid)).exp())).sum::<f64>()
                / logits.len().max(1) as f64;
            if mean < target {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        w.bias = (lo + hi) / 2.0;
    }

    let model = PersonaModel::compile(&menu, &truth)?;
    let mut positives = Vec::new();
    for (person, profile) in people.iter().zip(&profiles) {
        for (slot, (z, _)) in model.logits(profile, config.now)?.into_iter().enumerate() {
            if rng.unit() < 1.0 / (1.0 + (-z).exp()) {
                let at = config.now - (rng.unit() * span as f64) as i64;
                positives.push((
                    Positive { person: person.person.clone(), persona: config.personas[slot].clone() },
                    at,
                ));
            }
        }
    }
    Ok(SyntheticSet { people, positives, truth, now: config.now })
}

impl SyntheticSet {
    /// The training set as it looked at `t`: signals observed and behaviour shown at or
    /// before `t`.
    pub fn as_of(&self, t: i64) -> (Vec<TrainingPerson>, Vec<Positive>) {
        let people = self
            .people
            .iter()
            .map(|p| TrainingPerson {
                person: p.person.clone(),
                consent: p.consent,
                signals: p.signals.iter().filter(|s| s.at <= t).cloned().collect(),
            })
            .collect();
        let positives = self.positives.iter().filter(|(_, at)| *at <= t).map(|(p, _)| p.clone()).collect();
        (people, positives)
    }

    /// Every persona's positives at `now`, as one flag per person (people order).
    pub fn labels(&self, persona: &str) -> Vec<bool> {
        let index: ahash::AHashMap<&str, usize> =
            self.people.iter().enumerate().map(|(i, p)| (p.person.as_str(), i)).collect();
        let mut out = vec![false; self.people.len()];
        for (p, _) in self.positives.iter().filter(|(p, _)| p.persona == persona) {
            if let Some(i) = index.get(p.person.as_str()) {
                out[*i] = true;
            }
        }
        out
    }

    /// The true logit of `persona` for every person at `now` (people order), from all
    /// their signals; `None` for a persona the set was not generated for (or a person
    /// with signals no profile may hold).
    pub fn true_logits(&self, persona: &str) -> Option<Vec<f64>> {
        let names: Vec<&str> = self.truth.personas.iter().map(|(n, _)| n.as_str()).collect();
        let menu = PersonaMenu::new(names.iter().copied()).ok()?;
        let model = PersonaModel::compile(&menu, &self.truth).ok()?;
        let slot = names.iter().position(|n| *n == persona)?;
        self.people
            .iter()
            .map(|p| {
                let mut profile = p.to_profile(&menu, self.now);
                profile.consent = DataClasses::ALL;
                Some(model.logits(&profile, self.now).ok()?.get(slot)?.0)
            })
            .collect()
    }
}
