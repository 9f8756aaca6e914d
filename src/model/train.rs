//! Training: fits a [`PersonaModelSpec`] from samples of real behaviour — people with
//! their signals and consent, and per persona the people who showed the behaviour. One
//! L2-regularized, class-weighted logistic regression per persona, its strength chosen by
//! k-fold cross-validation, solved by Newton's method; decile edges calibrated on the
//! training population. Offline only: it allocates freely and never runs on `select`.
//!
//! Signals the person did not consent to are dropped by the same filter scoring uses
//! ([`consented`]), so a model never learns from data it may not use.
//!
//! From behaviour to a pick, on built-in synthetic data (see docs/persona-modeling.md):
//!
//! ```
//! use persona_engine::model::synthetic::{generate, SyntheticConfig};
//! use persona_engine::model::train::{train, TrainConfig};
//! use persona_engine::{sample, Context, DataClass, DataClasses, PersonaModel, Selector, SelectorConfig, Signal};
//!
//! let selector = Selector::new(sample::catalog()?, SelectorConfig::default())?;
//! let menu = selector.catalog().menu();
//! let set = generate(&SyntheticConfig::new(&["Beach Lover", "Foodie"], 1500, 1))?;
//! let config = TrainConfig { lambdas: vec![0.01, 0.1], ..TrainConfig::at(set.now) };
//! let people: Vec<_> = set.people.clone();
//! let positives: Vec<_> = set.positives.iter().map(|(p, _)| p.clone()).collect();
//! let trained = train(menu, &people, &positives, &config, &mut |_| {})?;
//! println!("{}", trained.report.to_text());
//!
//! // Saved as JSON, it loads unchanged for the quickstart's catalog.
//! let json = serde_json::to_string_pretty(&trained.spec).map_err(|e| e.to_string())?;
//! let model = PersonaModel::from_json(menu, &json)?;
//! let now = sample::NOW;
//! let mut person = selector.new_profile(now - 30 * 86_400);
//! person.consent = DataClasses::ALL;
//! person.add_signal(Signal { name: "bought_beach".into(), value: 2.0, class: DataClass::Purchase, at: now })?;
//! model.apply(&mut person, now)?;
//! assert!(person.scores.get(menu.id("Beach Lover")?) >= 7, "a fresh beach purchase is top 30 %");
//! let mut picks = selector.new_selection(3);
//! selector.select(&person, &Context::at(now), selector.placement("home_hero")?, &mut picks)?;
//! assert!(!picks.is_empty());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::io::BufRead;
use std::path::Path;

use ahash::{AHashMap, AHashSet};
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use super::report::{ModelReport, PersonaReport, SignalWeight};
use super::{consented, decay, PersonaModel, PersonaModelSpec, PersonaWeights, DECILE_EDGES};
use crate::catalog::MAX_SPEC_BYTES;
use crate::error::{json_message, quote, Error, Result};
use crate::limits::bounded::{self, json_error};
use crate::limits::counted::MenuPersonas;
use crate::limits::{read_limited, Lines, MAX_LOG_LINE_BYTES, MAX_MODEL_WEIGHT};
use crate::persona::PersonaMenu;
use crate::profile::{Consent, Profile, Signal};

/// One person in a training set: an id, the data classes they consented to, and their
/// signals (the same [`Signal`]s a [`Profile`] holds). One line of `people.jsonl`:
/// `{"person": "u1", "consent": ["behavioral"], "signals": [{"name": "viewed_spa",
/// "value": 1.0, "class": "behavioral", "at": 1795000000}]}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingPerson {
    /// The person's id (any non-empty string, unique in the file).
    pub person: String,
    /// Consented data classes. Signals of other classes are never used.
    #[serde(default)]
    pub consent: Consent,
    /// Observations, at most [`MAX_SIGNALS`](crate::limits::MAX_SIGNALS) (counted while parsing).
    #[serde(
        default,
        deserialize_with = "crate::limits::bounded::vec::<_, _, crate::limits::counted::Signals>"
    )]
    pub signals: Vec<Signal>,
}

impl TrainingPerson {
    /// The person as a [`Profile`] for `menu` (no scores; consent and signals only), as
    /// the persona model sees them.
    pub fn to_profile(&self, menu: &PersonaMenu, now: i64) -> Profile {
        let mut profile = Profile::for_menu(menu, now);
        profile.consent = self.consent;
        profile.signals = self.signals.clone();
        profile
    }
}

/// One person who showed one persona's behaviour (a positive). One line of
/// `labels.jsonl`: `{"person": "u1", "persona": "Wellness & Spa"}`. Everyone in the
/// people file without such a line for a persona is a negative for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Positive {
    /// The person's id, as in the people file.
    pub person: String,
    /// The persona's name, as on the menu.
    pub persona: String,
}

fn line_error(log: &str, line: usize, field: Option<&str>, problem: impl Into<String>) -> Error {
    Error::LogLine { log: log.to_owned(), line, field: field.map(str::to_owned), problem: problem.into() }
}

/// Reads JSON Lines: one `T` per non-blank line, with the decision log's line reader:
/// a line longer than [`MAX_LOG_LINE_BYTES`] is refused without holding more than that
/// much of it. A line that is unreadable, not UTF-8 or does not parse is an error naming
/// the line; a list past its limit (such as more than [`MAX_SIGNALS`](crate::limits::MAX_SIGNALS) signals) is
/// refused while parsing, naming the field.
fn read_lines<T: for<'de> Deserialize<'de>>(reader: impl BufRead, log: &str) -> Result<Vec<(usize, T)>> {
    let mut out = Vec::new();
    for (i, line) in Lines::new(reader, MAX_LOG_LINE_BYTES, "MAX_LOG_LINE_BYTES").enumerate() {
        let line = line.map_err(|problem| line_error(log, i + 1, None, problem))?;
        if line.trim().is_empty() {
            continue;
        }
        let value = serde_json::from_str(&line).map_err(|e| match json_error("training line", e) {
            Error::Invalid { field, problem, .. } => line_error(log, i + 1, Some(&field), problem),
            Error::Json { source, .. } => line_error(log, i + 1, None, json_message(&source)),
            other => line_error(log, i + 1, None, other.to_string()),
        })?;
        out.push((i + 1, value));
    }
    Ok(out)
}

/// Reads a people file (JSON Lines of [`TrainingPerson`]; blank lines are skipped).
/// `log` names the file in errors. Errors name the line and field: an empty or
/// duplicate id, more than [`MAX_SIGNALS`](crate::limits::MAX_SIGNALS) signals, an empty signal name or one longer
/// than [`MAX_SIGNAL_NAME`](crate::profile::MAX_SIGNAL_NAME), a value that
/// is not finite, a line longer than [`MAX_LOG_LINE_BYTES`].
pub fn read_people(reader: impl BufRead, log: &str) -> Result<Vec<TrainingPerson>> {
    let mut seen = AHashSet::new();
    let mut people = Vec::new();
    for (line, person) in read_lines::<TrainingPerson>(reader, log)? {
        if person.person.trim().is_empty() {
            return Err(line_error(log, line, Some("person"), "the id is empty"));
        }
        if !seen.insert(person.person.clone()) {
            return Err(line_error(
                log,
                line,
                Some("person"),
                format!("duplicate id '{}'", quote(&person.person)),
            ));
        }
        for (i, s) in person.signals.iter().enumerate() {
            if s.name.trim().is_empty() {
                return Err(line_error(
                    log,
                    line,
                    Some(&format!("signals[{i}].name")),
                    "signal name is empty",
                ));
            }
            if s.name.len() > crate::profile::MAX_SIGNAL_NAME {
                // A weight learned for it would never apply to a profile.
                return Err(line_error(
                    log,
                    line,
                    Some(&format!("signals[{i}].name")),
                    super::long_signal_name(&s.name),
                ));
            }
            if !s.value.is_finite() {
                return Err(line_error(
                    log,
                    line,
                    Some(&format!("signals[{i}].value")),
                    format!("signal '{}' has value {} (must be finite)", quote(&s.name), s.value),
                ));
            }
        }
        people.push(person);
    }
    Ok(people)
}

/// Reads a labels file (JSON Lines of [`Positive`]; blank lines are skipped), checking
/// each persona against `menu`. A repeated line counts once. `log` names the file in
/// errors.
pub fn read_positives(reader: impl BufRead, log: &str, menu: &PersonaMenu) -> Result<Vec<Positive>> {
    let mut out = Vec::new();
    for (line, positive) in read_lines::<Positive>(reader, log)? {
        if positive.person.trim().is_empty() {
            return Err(line_error(log, line, Some("person"), "the id is empty"));
        }
        if menu.get(&positive.persona).is_none() {
            return Err(line_error(
                log,
                line,
                Some("persona"),
                format!("'{}' is not on the persona menu", quote(&positive.persona)),
            ));
        }
        out.push(positive);
    }
    Ok(out)
}

/// Reads a persona menu from JSON: either an array of names (`["Foodie", ...]`) or any
/// object with a `personas` array of names, such as a catalog spec (its other fields
/// are skipped without being built). A document larger than [`MAX_SPEC_BYTES`] or a
/// menu of more than [`MAX_PERSONAS`](crate::limits::MAX_PERSONAS) names is refused.
pub fn read_menu(json: &str) -> Result<PersonaMenu> {
    Error::check_size("persona menu", json.len(), MAX_SPEC_BYTES, "MAX_SPEC_BYTES")?;
    let mut de = serde_json::Deserializer::from_str(json);
    let names =
        de.deserialize_any(MenuDoc).and_then(|names| de.end().map(|()| names)).map_err(
            |e| match json_error("persona menu", e) {
                limit @ Error::Invalid { .. } => limit,
                _ => Error::invalid(
                    "persona menu",
                    "personas",
                    "expected an array of persona names or an object with a 'personas' array",
                ),
            },
        )?;
    PersonaMenu::new(names)
}

/// Reads a persona menu file as [`read_menu`] does; a file larger than
/// [`MAX_SPEC_BYTES`] is refused before it is read.
pub fn read_menu_file(path: impl AsRef<Path>) -> Result<PersonaMenu> {
    read_menu(&read_limited(path.as_ref(), "persona menu", MAX_SPEC_BYTES, "MAX_SPEC_BYTES")?)
}

/// A persona menu document: an array of names, or an object whose `personas` field is
/// one (every other field skipped with [`IgnoredAny`]); the names are counted while
/// parsing against `MAX_PERSONAS`.
struct MenuDoc;

impl<'de> Visitor<'de> for MenuDoc {
    type Value = Vec<String>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of persona names or an object with a 'personas' array")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> std::result::Result<Vec<String>, A::Error> {
        bounded::vec::<_, String, MenuPersonas>(serde::de::value::SeqAccessDeserializer::new(seq))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Vec<String>, A::Error> {
        let mut names = None;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if key == "personas" {
                if names.is_some() {
                    return Err(serde::de::Error::duplicate_field("personas"));
                }
                names = Some(map.next_value_seed(MenuNames)?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        names.ok_or_else(|| serde::de::Error::missing_field("personas"))
    }
}

/// The `personas` field of a menu object.
struct MenuNames;

impl<'de> DeserializeSeed<'de> for MenuNames {
    type Value = Vec<String>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Vec<String>, D::Error> {
        bounded::vec::<_, String, MenuPersonas>(d)
    }
}

/// How to train. `TrainConfig::at(now)` gives the defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainConfig {
    /// The moment the signals are decayed to (Unix seconds): usually the time the data
    /// was extracted.
    pub now: i64,
    /// The half-life written to the model (finite, > 0). Default 30 days.
    pub half_life_days: f64,
    /// Cross-validation folds (2..=20). Default 5.
    pub folds: usize,
    /// The L2 strengths tried (each finite, > 0), on standardized signals; the one with
    /// the lowest class-weighted log loss on held-out folds is kept. Default
    /// `[0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1]`.
    pub lambdas: Vec<f64>,
    /// Below this many positives a persona is still modelled but flagged in the report
    /// as too thin to trust. Default [`MIN_POSITIVES`].
    pub min_positives: usize,
    /// The most distinct signal names used (the most widespread are kept). Default 512.
    pub max_signals: usize,
    /// Seeds the assignment of people to folds.
    pub seed: u64,
    /// The model this training replaces, if any. With it, each persona's new weights
    /// are blended with the previous ones (see [`TrainConfig::smoothing`]), so a
    /// retrain on one more day of data moves few people across deciles. A persona it
    /// covers that is too thin to model now keeps its previous weights (the report marks
    /// it [`carried_forward`](PersonaReport::carried_forward)). Every persona it names
    /// must be on the menu.
    pub previous: Option<PersonaModelSpec>,
    /// With a previous model: the share of the previous weights (and bias) kept,
    /// `0..1`. Default 0.5: the weights are an exponential moving average of the
    /// retrains, halving how far one day's new data moves them; a previous model weighs
    /// under 1 % after seven retrains. 0 blends none of the previous weights in (a
    /// persona not modelled now still carries its previous weights forward).
    pub smoothing: f64,
}

/// Fewer positives than this and a persona's model is flagged as unreliable: with 50
/// positives the held-out AUC still moves by about ±0.04 between samples.
pub const MIN_POSITIVES: usize = 50;

impl TrainConfig {
    /// The defaults, decaying signals to `now`.
    pub fn at(now: i64) -> Self {
        TrainConfig {
            now,
            half_life_days: 30.0,
            folds: 5,
            lambdas: vec![0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0],
            min_positives: MIN_POSITIVES,
            max_signals: 512,
            seed: 0,
            previous: None,
            smoothing: 0.5,
        }
    }

    fn check(&self) -> Result<()> {
        let bad = |field: &str, problem: String| Err(Error::invalid("train config", field, problem));
        if !self.half_life_days.is_finite() || self.half_life_days <= 0.0 {
            return bad("half_life_days", format!("{} must be finite and > 0", self.half_life_days));
        }
        if !(2..=20).contains(&self.folds) {
            return bad("folds", format!("{} is not in 2..=20", self.folds));
        }
        if self.lambdas.is_empty() {
            return bad("lambdas", "no regularization strength to try".into());
        }
        if let Some(l) = self.lambdas.iter().find(|l| !l.is_finite() || **l <= 0.0) {
            return bad("lambdas", format!("{l} must be finite and > 0"));
        }
        if !(0.0..1.0).contains(&self.smoothing) {
            return bad("smoothing", format!("{} is not in 0..1", self.smoothing));
        }
        if let Some(previous) = &self.previous {
            if (previous.half_life_days - self.half_life_days).abs() > 1e-9 {
                return bad(
                    "previous",
                    format!(
                        "the previous model decays signals with a {}-day half-life, this training with {}: \
                         weights on different scales cannot be blended",
                        previous.half_life_days, self.half_life_days
                    ),
                );
            }
        }
        if self.max_signals == 0 {
            return bad("max_signals", "must be at least 1".into());
        }
        Ok(())
    }
}

/// Where training is, for a progress line: `done` of `total` model fits, on `persona`.
#[derive(Clone, Copy, Debug)]
pub struct Progress<'a> {
    /// Fits finished.
    pub done: usize,
    /// Fits in all.
    pub total: usize,
    /// The persona being fitted.
    pub persona: &'a str,
}

/// What training produces: the model and how good it is.
#[derive(Clone, Debug)]
pub struct Trained {
    /// The model, ready for [`PersonaModel::compile`] (or to be saved as JSON and loaded
    /// with [`PersonaModel::from_json`]).
    pub spec: PersonaModelSpec,
    /// Held-out quality per persona, and the overlap of the personas.
    pub report: ModelReport,
}

/// The signals of the training population as a sparse, standardized matrix.
struct Features {
    names: Vec<String>,
    /// Per signal: its root mean square over the population (the unit it is scaled by).
    scale: Vec<f64>,
    /// Per person: (signal index, scaled decayed value), one entry per signal name.
    rows: Vec<Vec<(usize, f64)>>,
    dropped: usize,
}

fn features(profiles: &[Profile], half_life_seconds: f64, now: i64, max_signals: usize) -> Features {
    // Raw decayed sums per person, keyed by name, consented signals only.
    let mut vocab: AHashMap<&str, usize> = AHashMap::new();
    let mut raw: Vec<Vec<(usize, f64)>> = Vec::with_capacity(profiles.len());
    for p in profiles {
        let mut row: Vec<(usize, f64)> = Vec::new();
        for s in consented(p) {
            let x = f64::from(s.value) * decay(half_life_seconds, s.at, now);
            if x == 0.0 {
                continue;
            }
            let next = vocab.len();
            let j = *vocab.entry(s.name.as_str()).or_insert(next);
            match row.iter_mut().find(|(k, _)| *k == j) {
                Some((_, v)) => *v += x,
                None => row.push((j, x)),
            }
        }
        raw.push(row);
    }
    let mut names = vec![String::new(); vocab.len()];
    for (name, j) in &vocab {
        names[*j] = (*name).to_owned();
    }
    let mut count = vec![0usize; names.len()];
    let mut square = vec![0.0f64; names.len()];
    for row in &raw {
        for &(j, x) in row {
            count[j] += 1;
            square[j] += x * x;
        }
    }
    // Keep the most widespread signals (ties by name), numbered in name order.
    let mut order: Vec<usize> = (0..names.len()).filter(|j| square[*j] > 0.0).collect();
    order.sort_by(|a, b| count[*b].cmp(&count[*a]).then_with(|| names[*a].cmp(&names[*b])));
    let dropped = names.len() - order.len().min(max_signals);
    order.truncate(max_signals);
    order.sort_by(|a, b| names[*a].cmp(&names[*b]));
    let mut new_index = vec![usize::MAX; names.len()];
    for (k, &j) in order.iter().enumerate() {
        new_index[j] = k;
    }
    let n = profiles.len().max(1) as f64;
    let scale: Vec<f64> = order.iter().map(|&j| (square[j] / n).sqrt()).collect();
    let rows = raw
        .into_iter()
        .map(|row| {
            let mut row: Vec<(usize, f64)> = row
                .into_iter()
                .filter_map(|(j, x)| {
                    let k = new_index[j];
                    (k != usize::MAX).then(|| (k, x / scale[k]))
                })
                .collect();
            row.sort_by_key(|e| e.0);
            row
        })
        .collect();
    Features { names: order.iter().map(|&j| names[j].clone()).collect(), scale, rows, dropped }
}

/// Trains one logistic model per persona on the menu that has positives.
///
/// `people` are the training population; `positives` says who showed which persona's
/// behaviour (every positive's person must be in `people`). A persona with fewer
/// positives (or negatives) than folds cannot be cross-validated: it is left out of the
/// model (its scores stay whatever they are imported as) and the report says why;
/// when [`TrainConfig::previous`] covers it, its previous weights are carried forward
/// instead, so its scores keep following people's signals. `progress` is called after
/// every fit.
///
/// Errors: a bad config, a previous model naming a persona not on the menu, an empty or
/// inconsistent training set.
pub fn train(
    menu: &PersonaMenu,
    people: &[TrainingPerson],
    positives: &[Positive],
    config: &TrainConfig,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<Trained> {
    config.check()?;
    check_previous_menu(menu, config)?;
    if people.is_empty() {
        return Err(Error::invalid("training set", "people", "no people to train on"));
    }
    let index: AHashMap<&str, usize> =
        people.iter().enumerate().map(|(i, p)| (p.person.as_str(), i)).collect();
    if index.len() != people.len() {
        return Err(Error::invalid("training set", "people", "a person id appears twice"));
    }
    let mut labels = vec![vec![false; people.len()]; menu.len()];
    for p in positives {
        let persona = menu.get(&p.persona).ok_or_else(|| {
            Error::invalid(
                "training labels",
                "persona",
                format!("'{}' is not on the persona menu", quote(&p.persona)),
            )
        })?;
        let person = *index.get(p.person.as_str()).ok_or_else(|| {
            Error::invalid(
                "training labels",
                "person",
                format!(
                    "'{}' (a positive for '{}') is not in the people file",
                    quote(&p.person),
                    quote(&p.persona)
                ),
            )
        })?;
        labels[persona.index()][person] = true;
    }
    let profiles: Vec<Profile> = people.iter().map(|p| p.to_profile(menu, config.now)).collect();
    // `TrainingPerson::signals` is public: people built in code are checked as a
    // people file is, never trained on in part.
    for (person, profile) in people.iter().zip(&profiles) {
        profile.check_signals().map_err(|e| match e {
            Error::Invalid { field, problem, .. } => Error::invalid(
                "training set",
                format!("people['{}'].{field}", quote(&person.person)),
                problem,
            ),
            other => other,
        })?;
    }
    let half_life_seconds = config.half_life_days * 86_400.0;
    let feats = features(&profiles, half_life_seconds, config.now, config.max_signals);
    let folds = assign_folds(people, config);

    let modelled: Vec<bool> = labels
        .iter()
        .map(|y| {
            let pos = y.iter().filter(|b| **b).count();
            pos >= config.folds && y.len() - pos >= config.folds
        })
        .collect();
    let per_persona = config.lambdas.len() * config.folds + 1;
    let total = modelled.iter().filter(|m| **m).count() * per_persona;
    let mut done = 0;
    let mut spec = PersonaModelSpec { half_life_days: config.half_life_days, personas: Vec::new() };
    let mut reports = Vec::with_capacity(menu.len());
    for (id, name) in menu.iter() {
        let y = &labels[id.index()];
        let pos = y.iter().filter(|b| **b).count();
        if !modelled[id.index()] {
            let mut report = PersonaReport::not_modelled(name, people.len(), pos, config.folds);
            // A persona the previous model scored keeps its weights: dropped, the new model
            // would stop scoring it and `apply` would keep everyone's last score forever.
            if let Some((_, old)) = previous_weights(config, name) {
                spec.personas.push((name.to_owned(), PersonaWeights { deciles: None, ..old.clone() }));
                report.carried_forward = true;
                if let Some(w) = &mut report.warning {
                    w.push_str(
                        "; the previous model's weights are carried forward unchanged (decile edges \
                         recalibrated), so its scores keep updating but no longer learn",
                    );
                }
            }
            reports.push(report);
            continue;
        }
        let fitted = fit_persona(&feats, y, &folds, config, &mut |_| {
            done += 1;
            progress(Progress { done, total, persona: name });
        });
        let mut weights: Vec<(String, f64)> = Vec::new();
        let mut top: Vec<SignalWeight> = Vec::new();
        for (j, &w) in fitted.beta[..feats.names.len()].iter().enumerate() {
            if w != 0.0 {
                weights.push((feats.names[j].clone(), w / feats.scale[j]));
                top.push(SignalWeight {
                    signal: feats.names[j].clone(),
                    weight: w / feats.scale[j],
                    effect: w,
                });
            }
        }
        let effect = |name: &str| top.iter().find(|t| t.signal == name).map_or(0.0, |t| t.effect.abs());
        weights.sort_by(|a, b| effect(&b.0).total_cmp(&effect(&a.0)).then_with(|| a.0.cmp(&b.0)));
        top.sort_by(|a, b| b.effect.abs().total_cmp(&a.effect.abs()).then_with(|| a.signal.cmp(&b.signal)));
        let mut bias = fitted.beta[feats.names.len()];
        if let Some((_, old)) = previous_weights(config, name).filter(|_| config.smoothing > 0.0) {
            let a = config.smoothing;
            bias = (1.0 - a) * bias + a * old.bias;
            for (signal, w) in &mut weights {
                let before = old.weights.iter().find(|(n, _)| n == signal).map_or(0.0, |(_, w)| *w);
                *w = (1.0 - a) * *w + a * before;
            }
            for (signal, w) in &old.weights {
                if !weights.iter().any(|(n, _)| n == signal) {
                    weights.push((signal.clone(), a * w));
                }
            }
            for t in &mut top {
                let scale = t.effect / t.weight;
                t.weight = weights.iter().find(|(n, _)| *n == t.signal).map_or(0.0, |(_, w)| *w);
                t.effect = t.weight * scale;
            }
            top.sort_by(|a, b| {
                b.effect.abs().total_cmp(&a.effect.abs()).then_with(|| a.signal.cmp(&b.signal))
            });
        }
        check_fitted(name, bias, &weights, &feats)?;
        spec.personas.push((name.to_owned(), PersonaWeights { bias, weights, deciles: None }));
        let mut report = PersonaReport::from_predictions(name, &fitted.held_out, y);
        report.lambda = Some(fitted.lambda);
        report.top_signals = top;
        if pos < config.min_positives {
            report.warning = Some(format!(
                "only {pos} positives: at least {} are needed for a model to trust; \
                 collect more or merge this persona with a close one",
                config.min_positives
            ));
        }
        reports.push(report);
    }
    calibrate(menu, &mut spec, &profiles, config.now)?;
    let model = PersonaModel::compile(menu, &spec)?;
    let report =
        ModelReport::new(menu, &model, &profiles, config.now, reports, feats.names.len(), feats.dropped)?;
    Ok(Trained { spec, report })
}

/// Refuses a fitted persona whose bias or a weight is beyond [`MAX_MODEL_WEIGHT`], which
/// no model may hold: a weight is the fitted one divided by its signal's root mean
/// square, so a signal whose values are all tiny gets a huge one (so does any signal
/// under a vanishing regularization strength). Blending with a previous model, itself
/// within the bound, cannot leave it: a blend lies between the two weights.
fn check_fitted(persona: &str, bias: f64, weights: &[(String, f64)], feats: &Features) -> Result<()> {
    for (signal, w) in weights {
        if w.abs() <= MAX_MODEL_WEIGHT {
            continue;
        }
        let rms = feats.names.iter().position(|n| n == signal).map_or(1.0, |j| feats.scale[j]);
        let why = if rms < 1.0 {
            format!("its values are too small (root mean square {rms:.3e}); scale them up")
        } else {
            "the regularization is too weak; try larger lambdas".to_owned()
        };
        return Err(Error::invalid(
            "training set",
            format!("signals.{}", quote(signal)),
            format!(
                "persona '{}' would weigh it {w:.3e}, beyond ±{MAX_MODEL_WEIGHT:e} (MAX_MODEL_WEIGHT): {why}",
                quote(persona)
            ),
        ));
    }
    if bias.abs() > MAX_MODEL_WEIGHT {
        return Err(Error::invalid(
            "train config",
            "lambdas",
            format!(
                "persona '{}' would get a bias of {bias:.3e}, beyond ±{MAX_MODEL_WEIGHT:e} (MAX_MODEL_WEIGHT): \
                 the regularization is too weak; try larger lambdas",
                quote(persona)
            ),
        ));
    }
    Ok(())
}

/// The previous model's weights for persona `name`, if it has them.
fn previous_weights<'a>(config: &'a TrainConfig, name: &str) -> Option<&'a (String, PersonaWeights)> {
    config.previous.as_ref().and_then(|p| p.personas.iter().find(|(n, _)| n == name))
}

/// Refuses a previous model that names a persona the menu lacks (renamed or removed):
/// its weights could be neither blended nor carried forward.
fn check_previous_menu(menu: &PersonaMenu, config: &TrainConfig) -> Result<()> {
    let Some(previous) = &config.previous else {
        return Ok(());
    };
    match previous.personas.iter().find(|(name, _)| menu.get(name).is_none()) {
        Some((name, _)) => Err(Error::invalid(
            "train config",
            format!("previous.personas.\"{}\"", quote(name)),
            "not on the persona menu: a renamed persona's weights cannot be blended and a removed \
             one's cannot be carried forward; rename it in the previous model or leave it out",
        )),
        // Checked as a model: a weight that is not finite, or a signal weighted twice
        // (possible in a spec built in code), whose second weight blending would skip.
        None => PersonaModel::compile(menu, previous).map(|_| ()).map_err(|e| match e {
            Error::Invalid { field, problem, .. } => {
                Error::invalid("train config", format!("previous.{field}"), problem)
            }
            other => other,
        }),
    }
}

/// Sets each persona's decile edges to the deciles of the training population's logits
/// under `spec` (computed by the compiled model itself, so scoring the same people with
/// the saved model reproduces the deciles exactly). Edges sit halfway between the last
/// person of a decile and the first of the next.
pub fn calibrate(
    menu: &PersonaMenu,
    spec: &mut PersonaModelSpec,
    profiles: &[Profile],
    now: i64,
) -> Result<()> {
    if profiles.is_empty() {
        return Err(Error::invalid("training set", "people", "no people to calibrate deciles on"));
    }
    for (_, w) in &mut spec.personas {
        w.deciles = None;
    }
    let model = PersonaModel::compile(menu, spec)?;
    let mut logits: Vec<Vec<f64>> = vec![Vec::with_capacity(profiles.len()); spec.personas.len()];
    for p in profiles {
        for (slot, (z, _)) in model.logits(p, now)?.into_iter().enumerate() {
            logits[slot].push(z);
        }
    }
    for ((_, w), mut z) in spec.personas.iter_mut().zip(logits) {
        z.sort_by(f64::total_cmp);
        let n = z.len();
        let edges: Vec<f64> = (1..=DECILE_EDGES)
            .map(|k| {
                // `k * n / 10` is the first person of decile k (0-based, lowest first).
                let i = (k * n / 10).clamp(1, n.max(2) - 1);
                match (z.get(i - 1), z.get(i)) {
                    (Some(a), Some(b)) => (a + b) / 2.0,
                    _ => z.first().copied().unwrap_or(0.0),
                }
            })
            .collect();
        w.deciles = Some(edges);
    }
    Ok(())
}

/// Fold of each person: stratification is done per persona (see `fold_of`); this is
/// the stable order of people within which folds are dealt, by a hash of id and seed,
/// so a person keeps their place when others are added.
fn assign_folds(people: &[TrainingPerson], config: &TrainConfig) -> Vec<u64> {
    people.iter().map(|p| hash_id(&p.person, config.seed)).collect()
}

fn hash_id(id: &str, seed: u64) -> u64 {
    // FNV-1a, then a SplitMix64 finalizer: stable across platforms and releases.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed;
    for b in id.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// Folds for one persona: a person's fold is their hash modulo the number of folds, so
/// it stays the same when people are added (a retrain sees nearly the same folds). When
/// that leaves a fold without positives (or negatives), positives and negatives are
/// instead dealt round-robin in hash order, so every fold holds some of both.
fn fold_of(hashes: &[u64], y: &[bool], folds: usize) -> Vec<usize> {
    let k = folds as u64;
    let by_hash: Vec<usize> = hashes.iter().map(|h| (h % k) as usize).collect();
    let mut seen = vec![(false, false); folds];
    for (i, f) in by_hash.iter().enumerate() {
        if y[i] {
            seen[*f].0 = true;
        } else {
            seen[*f].1 = true;
        }
    }
    if seen.iter().all(|(p, n)| *p && *n) {
        return by_hash;
    }
    let mut out = vec![0; y.len()];
    for class in [true, false] {
        let mut members: Vec<usize> = (0..y.len()).filter(|i| y[*i] == class).collect();
        members.sort_by_key(|i| hashes[*i]);
        for (k, i) in members.into_iter().enumerate() {
            out[i] = k % folds;
        }
    }
    out
}

struct Fitted {
    /// Weights on the scaled signals, then the bias.
    beta: Vec<f64>,
    lambda: f64,
    /// Each person's logit from the model that did not see them.
    held_out: Vec<f64>,
}

fn fit_persona(
    feats: &Features,
    y: &[bool],
    hashes: &[u64],
    config: &TrainConfig,
    tick: &mut dyn FnMut(()),
) -> Fitted {
    let folds = fold_of(hashes, y, config.folds);
    let d = feats.names.len();
    let weights = class_weights(y);
    // Strongest regularization first: each fit warm-starts the next one of its fold.
    let mut lambdas = config.lambdas.clone();
    lambdas.sort_by(|a, b| b.total_cmp(a));
    let mut warm: Vec<Vec<f64>> = vec![vec![0.0; d + 1]; config.folds];
    let mut best: Option<(f64, f64, Vec<f64>)> = None; // (held-out loss, lambda, held-out logits)
    for &lambda in &lambdas {
        let mut held_out = vec![0.0; y.len()];
        let (mut loss, mut total) = (0.0, 0.0);
        for (f, start) in warm.iter_mut().enumerate() {
            let train: Vec<usize> = (0..y.len()).filter(|i| folds[*i] != f).collect();
            let beta = newton(&feats.rows, y, &weights, &train, d, lambda, start);
            let test: Vec<usize> = (0..y.len()).filter(|i| folds[*i] == f).collect();
            let scores: Vec<f64> = test.iter().map(|&i| logit(&feats.rows[i], &beta)).collect();
            for (&i, z) in test.iter().zip(scores) {
                held_out[i] = z;
                loss += weights[i] * log_loss(z, y[i]);
                total += weights[i];
            }
            *start = beta;
            tick(());
        }
        let loss = loss / f64::max(total, f64::MIN_POSITIVE);
        // Ties (within 1e-9) go to the stronger regularization, seen first.
        if best.as_ref().is_none_or(|(l, _, _)| loss < l - 1e-9) {
            best = Some((loss, lambda, held_out));
        }
    }
    let (_, lambda, held_out) = best.unwrap_or((0.0, lambdas[0], vec![0.0; y.len()]));
    let all: Vec<usize> = (0..y.len()).collect();
    let start = vec![0.0; d + 1];
    let beta = newton(&feats.rows, y, &weights, &all, d, lambda, &start);
    tick(());
    Fitted { beta, lambda, held_out }
}

/// Balanced class weights: positives and negatives each carry half the total weight.
fn class_weights(y: &[bool]) -> Vec<f64> {
    let n = y.len() as f64;
    let pos = y.iter().filter(|b| **b).count().max(1) as f64;
    let neg = (y.len() as f64 - pos).max(1.0);
    y.iter().map(|&b| if b { n / (2.0 * pos) } else { n / (2.0 * neg) }).collect()
}

fn logit(row: &[(usize, f64)], beta: &[f64]) -> f64 {
    let bias = beta.last().copied().unwrap_or(0.0);
    row.iter().fold(bias, |z, &(j, x)| z + beta[j] * x)
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// `log(1 + e^z) - y·z`, computed without overflow.
fn log_loss(z: f64, y: bool) -> f64 {
    let softplus = if z > 0.0 { z + (-z).exp().ln_1p() } else { z.exp().ln_1p() };
    softplus - if y { z } else { 0.0 }
}

/// Minimizes `(1/W) Σ c_i · log_loss(z_i, y_i) + λ/2 · |w|²` (bias not penalized) over
/// the people in `subset`, by Newton's method with step halving, from `start`.
/// Returns the weights then the bias.
pub(crate) fn newton(
    rows: &[Vec<(usize, f64)>],
    y: &[bool],
    c: &[f64],
    subset: &[usize],
    d: usize,
    lambda: f64,
    start: &[f64],
) -> Vec<f64> {
    let m = d + 1;
    let mut beta = start.to_vec();
    beta.resize(m, 0.0);
    let total: f64 = subset.iter().map(|&i| c[i]).sum::<f64>().max(f64::MIN_POSITIVE);
    let objective = |beta: &[f64]| -> f64 {
        let data: f64 = subset.iter().map(|&i| c[i] * log_loss(logit(&rows[i], beta), y[i])).sum();
        data / total + 0.5 * lambda * beta[..d].iter().map(|w| w * w).sum::<f64>()
    };
    let mut current = objective(&beta);
    let mut grad = vec![0.0; m];
    let mut hess = vec![0.0; m * m];
    for _ in 0..100 {
        grad.iter_mut().for_each(|g| *g = 0.0);
        hess.iter_mut().for_each(|h| *h = 0.0);
        for &i in subset {
            let row = &rows[i];
            let p = sigmoid(logit(row, &beta));
            let r = c[i] * (p - if y[i] { 1.0 } else { 0.0 }) / total;
            let h = c[i] * p * (1.0 - p) / total;
            // Rows are sorted by signal index: fill the lower triangle only.
            for (k, &(a, xa)) in row.iter().enumerate() {
                grad[a] += r * xa;
                let hx = h * xa;
                let base = a * m;
                for &(b, xb) in &row[..=k] {
                    hess[base + b] += hx * xb;
                }
                hess[d * m + a] += hx;
            }
            grad[d] += r;
            hess[d * m + d] += h;
        }

        for j in 0..d {
            grad[j] += lambda * beta[j];
            hess[j * m + j] += lambda;
        }
        hess[d * m + d] += 1e-12;
        let Some(step) = solve_spd(&mut hess, &grad, m) else { break };
        let mut t = 1.0;
        let mut improved = false;
        let mut trial = beta.clone();
        for _ in 0..30 {
            for j in 0..m {
                trial[j] = beta[j] - t * step[j];
            }
            let value = objective(&trial);
            if value <= current {
                improved = true;
                current = value;
                break;
            }
            t *= 0.5;
        }
        if !improved {
            break;
        }
        let moved = step.iter().fold(0.0f64, |a, s| a.max((t * s).abs()));
        std::mem::swap(&mut beta, &mut trial);
        if moved < 1e-9 {
            break;
        }
    }
    beta
}

/// Solves `A x = b` for a symmetric positive-definite `A` (row-major `m × m`, of which
/// only the lower triangle is read; destroyed) by Cholesky. `None` when `A` is not positive definite.
fn solve_spd(a: &mut [f64], b: &[f64], m: usize) -> Option<Vec<f64>> {
    for j in 0..m {
        let mut diag = a[j * m + j];
        for k in 0..j {
            diag -= a[j * m + k] * a[j * m + k];
        }
        if diag.is_nan() || diag <= 0.0 {
            return None;
        }
        let diag = diag.sqrt();
        a[j * m + j] = diag;
        for i in j + 1..m {
            let mut v = a[i * m + j];
            for k in 0..j {
                v -= a[i * m + k] * a[j * m + k];
            }
            a[i * m + j] = v / diag;
        }
    }
    let mut x = b.to_vec();
    for i in 0..m {
        for k in 0..i {
            x[i] -= a[i * m + k] * x[k];
        }
        x[i] /= a[i * m + i];
    }
    for i in (0..m).rev() {
        for k in i + 1..m {
            x[i] -= a[k * m + i] * x[k];
        }
        x[i] /= a[i * m + i];
    }
    Some(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cholesky_solves_a_small_system() {
        // [[4, 2], [2, 3]] x = [2, 1]  →  x = [0.5, 0]
        let mut a = vec![4.0, 2.0, 2.0, 3.0];
        let x = solve_spd(&mut a, &[2.0, 1.0], 2).unwrap();
        assert!((x[0] - 0.5).abs() < 1e-12 && x[1].abs() < 1e-12, "{x:?}");
        let mut not_pd = vec![1.0, 2.0, 2.0, 1.0];
        assert!(solve_spd(&mut not_pd, &[1.0, 1.0], 2).is_none());
    }

    #[test]
    fn newton_reaches_the_stationary_point() {
        // One signal, overlapping classes: at the optimum the gradient vanishes.
        let rows: Vec<Vec<(usize, f64)>> = [0.0, 1.0, 2.0, 3.0, 1.0, 2.0, 3.0, 4.0]
            .iter()
            .map(|x| if *x == 0.0 { vec![] } else { vec![(0, *x)] })
            .collect();
        let y = [false, false, true, false, true, false, true, true];
        let c = vec![1.0; 8];
        let subset: Vec<usize> = (0..8).collect();
        let lambda = 0.01;
        let beta = newton(&rows, &y, &c, &subset, 1, lambda, &[0.0, 0.0]);
        let (mut gw, mut gb) = (lambda * beta[0], 0.0);
        for i in 0..8 {
            let r = (sigmoid(logit(&rows[i], &beta)) - if y[i] { 1.0 } else { 0.0 }) / 8.0;
            gw += r * rows[i].first().map_or(0.0, |e| e.1);
            gb += r;
        }
        assert!(gw.abs() < 1e-9 && gb.abs() < 1e-9, "gradient ({gw}, {gb}) at {beta:?}");
        assert!(beta[0] > 0.0, "a signal more common among positives gets a positive weight");
    }

    #[test]
    fn log_loss_does_not_overflow() {
        assert!((log_loss(800.0, true)).abs() < 1e-12);
        assert!((log_loss(-800.0, false)).abs() < 1e-12);
        assert!((log_loss(800.0, false) - 800.0).abs() < 1e-9);
        assert!((log_loss(0.0, true) - std::f64::consts::LN_2).abs() < 1e-12);
    }
}
