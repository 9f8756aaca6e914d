//! The persona menu (names interned once into dense ids) and a person's persona scores
//! (0..=9 per persona, with the data classes each score was derived from). Names are
//! resolved here, at the edge; the hot path only ever sees [`PersonaId`]s.

use ahash::AHashMap;

use crate::error::{quote, Error, Result};
use crate::profile::DataClasses;

/// Dense id of a persona on a [`PersonaMenu`]: `0..menu.len()`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PersonaId(pub u16);

impl PersonaId {
    /// The id as an index into dense per-persona arrays.
    #[inline]
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// The highest persona score. Scores are deciles of an affinity model: `0..=9`.
pub const MAX_SCORE: u8 = 9;

/// The most personas a menu may hold. Real menus have 5 to ~100.
pub const MAX_PERSONAS: usize = 1024;

/// The longest persona name, in bytes.
pub const MAX_PERSONA_NAME: usize = 128;

/// The marketers' persona menu: an ordered list of unique names, each interned to a
/// dense [`PersonaId`] (its position on the menu).
#[derive(Clone, Debug, Default)]
pub struct PersonaMenu {
    names: Vec<String>,
    index: AHashMap<String, PersonaId>,
    /// A fingerprint of the names in order (see [`MenuKey`]).
    key: u64,
}

/// A fingerprint of a persona menu: its names in order (FNV-1a, 64 bits). Two menus
/// with the same names in the same order have the same key, wherever they were built;
/// a menu that gains, loses, renames or reorders a persona gets another. A [`Profile`]
/// (whose persona ids mean something for one menu only) carries the key of the menu it
/// was made for, and a selector of another menu refuses it.
///
/// [`Profile`]: crate::Profile
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MenuKey(u64);

impl PersonaMenu {
    /// Builds a menu from names, in order. Errors on an empty or over-long name, a
    /// duplicate, or more than [`MAX_PERSONAS`] names.
    pub fn new<I, S>(names: I) -> Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut menu = PersonaMenu::default();
        for name in names {
            menu.push(name.into())?;
        }
        Ok(menu)
    }

    fn push(&mut self, name: String) -> Result<PersonaId> {
        let field = format!("personas[{}]", self.names.len());
        if name.trim().is_empty() {
            return Err(Error::invalid("persona menu", field, "persona name is empty"));
        }
        if name.len() > MAX_PERSONA_NAME {
            return Err(Error::invalid(
                "persona menu",
                field,
                format!("persona name is {} bytes long (at most {MAX_PERSONA_NAME})", name.len()),
            ));
        }
        if let Some(problem) = crate::error::control_character(&name) {
            return Err(Error::invalid("persona menu", field, format!("persona name {problem}")));
        }
        if self.index.contains_key(&name) {
            return Err(Error::invalid(
                "persona menu",
                field,
                format!("duplicate persona '{}'", quote(&name)),
            ));
        }
        if self.names.len() >= MAX_PERSONAS {
            return Err(Error::invalid(
                "persona menu",
                field,
                format!("too many personas (at most {MAX_PERSONAS})"),
            ));
        }
        let id = PersonaId(self.names.len() as u16);
        // FNV-1a over the name's bytes, then a byte no UTF-8 text holds as a separator.
        use crate::holdout::{fnv1a, FNV_OFFSET};
        let start = if self.names.is_empty() { FNV_OFFSET } else { self.key };
        self.key = fnv1a(fnv1a(start, name.as_bytes()), &[0xff]);
        self.index.insert(name.clone(), id);
        self.names.push(name);
        Ok(id)
    }

    /// The menu's fingerprint (see [`MenuKey`]).
    pub fn key(&self) -> MenuKey {
        MenuKey(self.key)
    }

    /// The id of `name`, if it is on the menu.
    pub fn get(&self, name: &str) -> Option<PersonaId> {
        self.index.get(name).copied()
    }

    /// The id of `name`, or [`Error::UnknownPersona`].
    pub fn id(&self, name: &str) -> Result<PersonaId> {
        self.get(name).ok_or_else(|| Error::UnknownPersona {
            name: name.to_owned(),
            did_you_mean: crate::suggest::closest(name, self.names.iter().map(String::as_str)),
        })
    }

    /// The name of `id`, or `"?"` for an id from another menu.
    pub fn name(&self, id: PersonaId) -> &str {
        self.names.get(id.index()).map_or("?", String::as_str)
    }

    /// Number of personas on the menu.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// True when the menu has no personas.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// All `(id, name)` pairs, in menu order.
    pub fn iter(&self) -> impl Iterator<Item = (PersonaId, &str)> {
        self.names.iter().enumerate().map(|(i, n)| (PersonaId(i as u16), n.as_str()))
    }

    /// The names, in menu order.
    pub fn names(&self) -> &[String] {
        &self.names
    }
}

/// The consent a score derived from `sources` needs (see
/// [`PersonaScores::required_consent`]).
#[inline]
fn required(sources: DataClasses) -> DataClasses {
    match sources {
        DataClasses::NONE => DataClasses::INFERRED,
        known => known,
    }
}

/// A person's score on each persona of a menu (`0..=9`, 0 when unknown), together with the
/// data classes each score was derived from, so the selector can ignore a score built on
/// data the person did not consent to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PersonaScores {
    scores: Vec<u8>,
    sources: Vec<DataClasses>,
}

impl PersonaScores {
    /// All-zero scores for a menu of `personas` personas.
    pub fn new(personas: usize) -> Self {
        PersonaScores { scores: vec![0; personas], sources: vec![DataClasses::NONE; personas] }
    }

    /// Sets the score of `persona`, derived from data of the classes in `sources`.
    /// Errors when `score > 9`. The scores grow to hold `persona` if needed; a selector
    /// reads only scores held for exactly its menu's personas (or none), so size them
    /// with [`PersonaScores::new`] or set them through [`crate::Profile::set_score`],
    /// which knows the menu.
    pub fn set(&mut self, persona: PersonaId, score: u8, sources: DataClasses) -> Result<()> {
        if score > MAX_SCORE {
            return Err(Error::ScoreOutOfRange { persona: format!("#{}", persona.0), score: score.into() });
        }
        let i = persona.index();
        if i >= self.scores.len() {
            self.scores.resize(i + 1, 0);
            self.sources.resize(i + 1, DataClasses::NONE);
        }
        self.scores[i] = score;
        self.sources[i] = sources;
        Ok(())
    }

    /// Moves the score of `persona` by `delta` points within 0..=9, as a thumbs-up or
    /// thumbs-down does: the score now also rests on behavioural data. A score whose
    /// provenance was never recorded keeps needing every inferred class
    /// ([`Self::required_consent`]): a nudge adds behavioural data to what it rests on,
    /// it does not make an unknown origin known. A score that was 0 rests on the
    /// behaviour alone.
    pub fn nudge(&mut self, persona: PersonaId, delta: i8) {
        let score = self.get(persona);
        let next = (i16::from(score) + i16::from(delta)).clamp(0, i16::from(MAX_SCORE)) as u8;
        let before = if score == 0 { DataClasses::NONE } else { self.required_consent(persona) };
        let sources = before.with(crate::profile::DataClass::Behavioral);
        // `set` only fails for scores above 9, which `clamp` rules out.
        let _ = self.set(persona, next, sources);
    }

    /// Grows to hold at least `personas` personas (new ones at 0, of no source).
    pub(crate) fn grow_to(&mut self, personas: usize) {
        if self.scores.len() < personas {
            self.scores.resize(personas, 0);
            self.sources.resize(personas, DataClasses::NONE);
        }
    }

    /// The score of `persona` (0 when never set).
    #[inline]
    pub fn get(&self, persona: PersonaId) -> u8 {
        self.scores.get(persona.index()).copied().unwrap_or(0)
    }

    /// The data classes the score of `persona` was derived from.
    #[inline]
    pub fn sources(&self, persona: PersonaId) -> DataClasses {
        self.sources.get(persona.index()).copied().unwrap_or(DataClasses::NONE)
    }

    /// The consent a person must have given for the score of `persona` to count: the
    /// classes it was derived from, or — when its provenance was never recorded — every
    /// class a score can be inferred from (all but `declared`). A score of unknown origin
    /// never bypasses consent; record its sources to use it under narrower consent.
    #[inline]
    pub fn required_consent(&self, persona: PersonaId) -> DataClasses {
        required(self.sources(persona))
    }

    /// Every held score that counts under `consent` (its required consent is given),
    /// as `(persona index, score)`, skipping zeros: what a selector reads per request.
    #[inline]
    pub(crate) fn counted(&self, consent: DataClasses) -> impl Iterator<Item = (usize, u8)> + '_ {
        self.scores
            .iter()
            .zip(&self.sources)
            .enumerate()
            .filter(move |(_, (&s, &src))| s > 0 && consent.contains(required(src)))
            .map(|(i, (&s, _))| (i, s))
    }

    /// Number of persona slots held.
    pub fn len(&self) -> usize {
        self.scores.len()
    }

    /// True when no persona slot is held.
    pub fn is_empty(&self) -> bool {
        self.scores.is_empty()
    }

    /// Scores in persona-id order.
    pub fn as_slice(&self) -> &[u8] {
        &self.scores
    }

    /// The persona with the highest score among those that count under `consent` (its
    /// [`PersonaScores::required_consent`] is given: a score of unknown origin needs every
    /// inferred class), ties to the lower id, or `None` when no score counts.
    pub fn top(&self, consent: DataClasses) -> Option<(PersonaId, u8)> {
        let mut best: Option<(PersonaId, u8)> = None;
        for (i, s) in self.counted(consent) {
            if best.is_none_or(|(_, b)| s > b) {
                best = Some((PersonaId(i as u16), s));
            }
        }
        best
    }
}
