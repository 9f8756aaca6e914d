//! The persona model: turns a profile's signals into persona scores with one logistic
//! model per persona (bias + weights over named signals), signals decaying with a
//! half-life and counted only when the person consented to their data class. It can say
//! which signals moved a score. Runs off the hot path (when a profile changes).
//!
//! [`train`] fits these models from samples of real behaviour and [`report`] says how
//! good they are; [`synthetic`] makes a training set with a known ground truth.

pub mod report;
pub mod synthetic;
pub mod train;

use ahash::AHashMap;
use serde::{Deserialize, Serialize};

use crate::error::{quote, shown, Error, Result};
use crate::limits::MAX_MODEL_WEIGHT;
use crate::persona::{PersonaId, PersonaMenu, PersonaScores, MAX_SCORE};
use crate::profile::ordered_map;
use crate::profile::{DataClass, DataClasses, Profile, Signal};

/// The largest persona model in JSON, in bytes (16 MiB): [`PersonaModel::from_json`]
/// refuses a larger one before parsing it.
pub const MAX_MODEL_BYTES: usize = 16 * 1024 * 1024;

/// The serializable form of a [`PersonaModel`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersonaModelSpec {
    /// A signal's weight halves every this many days (finite, > 0). Default 30.
    #[serde(default = "thirty")]
    pub half_life_days: f64,
    /// Persona name → its logistic model.
    #[serde(
        serialize_with = "ordered_map::serialize",
        deserialize_with = "crate::limits::bounded::map::<_, _, crate::limits::counted::ModelPersonas>"
    )]
    pub personas: Vec<(String, PersonaWeights)>,
}

impl PersonaModelSpec {
    /// Parses a JSON model spec without compiling it (as a retrain's previous model, for
    /// instance). A document larger than [`MAX_MODEL_BYTES`] is refused before parsing,
    /// a list past its limit while parsing.
    pub fn from_json(json: &str) -> Result<Self> {
        Error::check_size("persona model", json.len(), MAX_MODEL_BYTES, "MAX_MODEL_BYTES")?;
        crate::limits::bounded::from_json("persona model", json)
    }

    /// Reads and parses a JSON model spec file; a file larger than [`MAX_MODEL_BYTES`]
    /// is refused before it is read.
    pub fn from_file(path: impl AsRef<std::path::Path>) -> Result<Self> {
        crate::limits::parse_file(
            path.as_ref(),
            "persona model",
            MAX_MODEL_BYTES,
            "MAX_MODEL_BYTES",
            PersonaModelSpec::from_json,
        )
    }
}

fn thirty() -> f64 {
    30.0
}

/// One persona's logistic model: `p = sigmoid(bias + Σ weight[signal] · decayed value)`.
/// The bias and every weight are finite and at most [`MAX_MODEL_WEIGHT`] in magnitude.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersonaWeights {
    /// The intercept.
    #[serde(default)]
    pub bias: f64,
    /// Signal name → weight.
    #[serde(with = "ordered_map")]
    pub weights: Vec<(String, f64)>,
    /// Optional decile edges: [`DECILE_EDGES`] logits, non-decreasing, that cut the
    /// training population into ten equal groups. With them a person's score is the
    /// number of edges at or below their logit, so score 9 means "top 10 % of the
    /// population the model was trained on" and a score ≥ 7 "top 30 %". Without them
    /// (models written by hand, or before edges existed) the score is
    /// `floor(sigmoid(logit) · 10)` ([`to_score`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deciles: Option<Vec<f64>>,
}

/// How many edges cut a population into ten deciles.
pub const DECILE_EDGES: usize = 9;

/// How much one signal moved one persona's logit.
#[derive(Clone, Debug, PartialEq)]
pub struct Contribution {
    /// The signal's name.
    pub signal: String,
    /// Its data class.
    pub class: DataClass,
    /// Weight × decayed value, summed over that signal's observations.
    pub contribution: f64,
}

/// A compiled persona model for one menu.
#[derive(Clone, Debug)]
pub struct PersonaModel {
    half_life_seconds: f64,
    /// Per modelled persona: (persona, bias).
    personas: Vec<(PersonaId, f64)>,
    /// Per modelled persona: its decile edges, if the spec has them.
    deciles: Vec<Option<[f64; DECILE_EDGES]>>,
    /// Signal name → list of (index into `personas`, weight).
    weights: AHashMap<String, Vec<(usize, f64)>>,
    /// The size of the menu it was compiled against: scores it writes are held for
    /// every persona of it, so a selector of that menu reads them.
    menu_len: usize,
    /// That menu's fingerprint: `apply` refuses a profile made for another.
    menu_key: crate::persona::MenuKey,
}

impl PersonaModel {
    /// Validates and compiles a model spec against `menu`.
    pub fn compile(menu: &PersonaMenu, spec: &PersonaModelSpec) -> Result<Self> {
        if !spec.half_life_days.is_finite() || spec.half_life_days <= 0.0 {
            return Err(Error::invalid(
                "persona model",
                "half_life_days",
                format!("{} must be finite and > 0", spec.half_life_days),
            ));
        }
        let mut personas = Vec::with_capacity(spec.personas.len());
        let mut deciles = Vec::with_capacity(spec.personas.len());
        let mut weights: AHashMap<String, Vec<(usize, f64)>> = AHashMap::new();
        for (slot, (name, w)) in spec.personas.iter().enumerate() {
            let field = format!("personas.{}", quote(name));
            let id = menu.get(name).ok_or_else(|| {
                let names = menu.names().iter().map(String::as_str);
                Error::invalid(
                    "persona model",
                    field.clone(),
                    crate::suggest::unknown("persona", name, names),
                )
            })?;
            check_magnitude(|| format!("{field}.bias"), w.bias)?;
            if personas.iter().any(|(p, _)| *p == id) {
                return Err(Error::invalid("persona model", field, "persona listed twice"));
            }
            personas.push((id, w.bias));
            deciles.push(check_deciles(&field, w.deciles.as_deref())?);
            for (signal, weight) in &w.weights {
                if signal.trim().is_empty() {
                    return Err(Error::invalid(
                        "persona model",
                        format!("{field}.weights"),
                        "empty signal name",
                    ));
                }
                if signal.len() > crate::profile::MAX_SIGNAL_NAME {
                    // No profile can carry it: the weight would never apply.
                    return Err(Error::invalid(
                        "persona model",
                        format!("{field}.weights"),
                        long_signal_name(signal),
                    ));
                }
                check_magnitude(|| format!("{field}.weights.{}", quote(signal)), *weight)?;
                // A spec built in code can list a signal twice (JSON refuses the repeated
                // key): both weights would count, one on top of the other.
                let entries = weights.entry(signal.clone()).or_default();
                if entries.iter().any(|(s, _)| *s == slot) {
                    return Err(Error::invalid(
                        "persona model",
                        format!("{field}.weights.{}", quote(signal)),
                        "signal listed twice (give it one weight)",
                    ));
                }
                entries.push((slot, *weight));
            }
        }
        Ok(PersonaModel {
            half_life_seconds: spec.half_life_days * 86_400.0,
            personas,
            deciles,
            weights,
            menu_len: menu.len(),
            menu_key: menu.key(),
        })
    }

    /// Parses and compiles a JSON model spec. A document larger than
    /// [`MAX_MODEL_BYTES`] is refused before parsing.
    pub fn from_json(menu: &PersonaMenu, json: &str) -> Result<Self> {
        PersonaModel::compile(menu, &PersonaModelSpec::from_json(json)?)
    }

    /// The weight of a signal observed at `at`, seen from `now`: halves every half-life.
    /// A signal from the future counts fully.
    pub fn decay(&self, at: i64, now: i64) -> f64 {
        decay(self.half_life_seconds, at, now)
    }

    fn usable<'a>(
        &'a self,
        profile: &'a Profile,
    ) -> impl Iterator<Item = (&'a Signal, &'a Vec<(usize, f64)>)> + 'a {
        consented(profile).filter_map(|s| self.weights.get(&s.name).map(|w| (s, w)))
    }

    /// The modelled personas, in the spec's order.
    pub fn personas(&self) -> impl Iterator<Item = PersonaId> + '_ {
        self.personas.iter().map(|(p, _)| *p)
    }

    /// The logit of every modelled persona (in [`PersonaModel::personas`] order) from
    /// the profile's consented signals at `now`, with the classes of the signals that
    /// moved each.
    ///
    /// Errors for signals no profile document may hold ([`Profile::check_signals`]:
    /// more than [`MAX_SIGNALS`](crate::limits::MAX_SIGNALS), a name that is empty or too
    /// long, a value that is not finite).
    pub fn logits(&self, profile: &Profile, now: i64) -> crate::Result<Vec<(f64, DataClasses)>> {
        profile.check_signals()?;
        Ok(self.logits_checked(profile, now))
    }

    /// [`PersonaModel::logits`] of a profile whose signals were checked.
    pub(crate) fn logits_checked(&self, profile: &Profile, now: i64) -> Vec<(f64, DataClasses)> {
        let mut out: Vec<(f64, DataClasses)> =
            self.personas.iter().map(|(_, bias)| (*bias, DataClasses::NONE)).collect();
        for (signal, weights) in self.usable(profile) {
            let x = f64::from(signal.value) * self.decay(signal.at, now);
            for &(slot, w) in weights {
                if w != 0.0 && x != 0.0 {
                    if let Some((logit, sources)) = out.get_mut(slot) {
                        *logit += w * x;
                        *sources = sources.with(signal.class);
                    }
                }
            }
        }
        out
    }

    /// The 0..=9 score of a logit for the persona in slot `slot` of
    /// [`PersonaModel::personas`]: its decile when the spec has decile edges, else
    /// [`to_score`].
    fn score_of(&self, slot: usize, logit: f64) -> u8 {
        match self.deciles.get(slot).copied().flatten() {
            Some(edges) => decile(&edges, logit),
            None => to_score(logit),
        }
    }

    /// Scores every modelled persona from the profile's consented signals at `now`,
    /// held for every persona of the model's menu (or more, if the profile holds more).
    /// Personas the model does not cover are left at 0. Each score's sources are the
    /// classes of the signals that moved it. Errors as [`PersonaModel::logits`] does.
    pub fn score(&self, profile: &Profile, now: i64) -> crate::Result<PersonaScores> {
        profile.check_signals()?;
        Ok(self.score_checked(profile, now))
    }

    /// [`PersonaModel::score`] of a profile whose signals were checked.
    pub(crate) fn score_checked(&self, profile: &Profile, now: i64) -> PersonaScores {
        let logits = self.logits_checked(profile, now);
        let mut scores = PersonaScores::new(profile.scores.len().max(self.menu_len));
        for (slot, (&(persona, _), &(logit, sources))) in self.personas.iter().zip(&logits).enumerate() {
            // `set` cannot fail: a score is at most MAX_SCORE.
            let _ = scores.set(persona, self.score_of(slot, logit), sources);
        }
        scores
    }

    /// Recomputes the modelled personas' scores of `profile` in place; scores of
    /// personas the model does not cover (imported ones) are kept. The profile is then
    /// marked as made for the model's menu.
    ///
    /// Errors, changing nothing, for a profile made for another menu than the model's
    /// (the model's persona ids would land on other personas) and for signals no
    /// profile document may hold ([`Profile::check_signals`]).
    pub fn apply(&self, profile: &mut Profile, now: i64) -> crate::Result<()> {
        profile.check_menu(self.menu_key, "persona model")?;
        let scores = self.score(profile, now)?;
        profile.menu = Some(self.menu_key);
        // A profile started empty takes the menu's size, as `Profile::set_score` gives it.
        profile.scores.grow_to(self.menu_len);
        for &(persona, _) in &self.personas {
            let _ = profile.scores.set(persona, scores.get(persona), scores.sources(persona));
        }
        Ok(())
    }

    /// The signals that moved `persona`'s logit for this profile at `now`, largest
    /// absolute contribution first, one entry per signal name and class. Signals without
    /// consent do not appear: they did not count. Errors as [`PersonaModel::logits`]
    /// does.
    pub fn explain(
        &self,
        profile: &Profile,
        persona: PersonaId,
        now: i64,
    ) -> crate::Result<Vec<Contribution>> {
        profile.check_signals()?;
        let Some(slot) = self.personas.iter().position(|(p, _)| *p == persona) else {
            return Ok(Vec::new());
        };
        let mut out: Vec<Contribution> = Vec::new();
        for (signal, weights) in self.usable(profile) {
            for &(s, w) in weights {
                if s != slot {
                    continue;
                }
                let c = w * f64::from(signal.value) * self.decay(signal.at, now);
                match out.iter_mut().find(|e| e.signal == signal.name && e.class == signal.class) {
                    Some(e) => e.contribution += c,
                    None => out.push(Contribution {
                        signal: signal.name.clone(),
                        class: signal.class,
                        contribution: c,
                    }),
                }
            }
        }
        out.sort_by(|a, b| {
            b.contribution.abs().total_cmp(&a.contribution.abs()).then_with(|| a.signal.cmp(&b.signal))
        });
        Ok(out)
    }
}

/// The weight of a signal observed at `at`, seen from `now`, for a half-life of
/// `half_life_seconds`: halves every half-life; a signal from the future counts fully.
pub(crate) fn decay(half_life_seconds: f64, at: i64, now: i64) -> f64 {
    let age = now.saturating_sub(at).max(0) as f64;
    (-age / half_life_seconds * std::f64::consts::LN_2).exp()
}

/// Every signal of the profile whose data class the person consented to: the only ones
/// a persona model may use, in training as in scoring.
pub fn consented(profile: &Profile) -> impl Iterator<Item = &Signal> + '_ {
    profile.signals.iter().filter(|s| profile.consent.has(s.class))
}

/// The score of `logit` against decile edges: how many edges are at or below it (0..=9).
/// A NaN logit scores 0.
pub fn decile(edges: &[f64; DECILE_EDGES], logit: f64) -> u8 {
    if logit.is_nan() {
        return 0;
    }
    edges.iter().filter(|e| **e <= logit).count().min(usize::from(MAX_SCORE)) as u8
}

fn check_deciles(field: &str, edges: Option<&[f64]>) -> Result<Option<[f64; DECILE_EDGES]>> {
    let Some(edges) = edges else { return Ok(None) };
    let field = format!("{field}.deciles");
    let fixed: [f64; DECILE_EDGES] = edges.try_into().map_err(|_| {
        Error::invalid(
            "persona model",
            field.clone(),
            format!("{} edges (a decile table has exactly {DECILE_EDGES})", edges.len()),
        )
    })?;
    for (i, e) in fixed.iter().enumerate() {
        if !e.is_finite() {
            return Err(Error::invalid(
                "persona model",
                format!("{field}[{i}]"),
                format!("{e} is not finite"),
            ));
        }
        if i > 0 && *e < fixed[i - 1] {
            return Err(Error::invalid(
                "persona model",
                format!("{field}[{i}]"),
                format!("{e} is below the edge before it ({}): edges must not decrease", fixed[i - 1]),
            ));
        }
    }
    Ok(Some(fixed))
}

/// Maps a logit to a decile score: `floor(sigmoid(z) · 10)`, capped at 9.
pub fn to_score(logit: f64) -> u8 {
    let p = 1.0 / (1.0 + (-logit).exp());
    if p.is_nan() {
        return 0;
    }
    ((p * 10.0).floor() as u8).min(MAX_SCORE)
}

/// Refuses a weight or bias that is not finite or beyond [`MAX_MODEL_WEIGHT`]: a sum of
/// such weights could overflow to an infinite or NaN score.
fn check_magnitude(field: impl FnOnce() -> String, x: f64) -> Result<()> {
    if !x.is_finite() {
        return Err(Error::invalid("persona model", field(), format!("{x} is not finite")));
    }
    if x.abs() > MAX_MODEL_WEIGHT {
        return Err(Error::invalid(
            "persona model",
            field(),
            format!(
                "{} is beyond ±{MAX_MODEL_WEIGHT:e} (MAX_MODEL_WEIGHT): a score's sum of weighted signals \
                 could overflow",
                shown(x)
            ),
        ));
    }
    Ok(())
}

/// The problem with a signal name longer than a profile may hold.
pub(crate) fn long_signal_name(name: &str) -> String {
    let head: String = name.chars().take(40).collect();
    format!(
        "signal name '{}…' is {} bytes, longer than MAX_SIGNAL_NAME ({} bytes): no profile can carry it",
        quote(&head),
        name.len(),
        crate::profile::MAX_SIGNAL_NAME
    )
}
