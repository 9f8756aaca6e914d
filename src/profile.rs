//! What is known about one person: persona scores, signals, consent per data class,
//! the relationship stage, declared likes and dislikes, and a bounded memory of
//! exposures and negative feedback. Plain data: building or changing a profile may
//! allocate; reading it on the hot path never does.
//!
//! Two forms, as everywhere in this crate: [`ProfileSpec`] (serde, persona *names*,
//! friendly to store and diff) and [`Profile`] (persona *ids* for one menu, what
//! `select` reads). Convert with [`Profile::from_spec`] / [`Profile::to_spec`].

use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use crate::error::{quote, Error, Result};
use crate::persona::{MenuKey, PersonaId, PersonaMenu, PersonaScores, MAX_SCORE};
use crate::symbol::Symbol;

/// A class of personal data, for consent. A profile consents to a set of classes; a
/// signal, a persona score and a creative each declare the classes they rely on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum DataClass {
    /// What the person did on our properties: pages viewed, searches, clicks.
    Behavioral = 0,
    /// What the person bought.
    Purchase = 1,
    /// Where the person is or was.
    Location = 2,
    /// Age band, household, income band.
    Demographic = 3,
    /// What the person told us themselves (interests, preferences).
    Declared = 4,
    /// Data bought or shared from elsewhere.
    ThirdParty = 5,
}

impl DataClass {
    /// Every class, in bit order.
    pub const ALL: [DataClass; 6] = [
        DataClass::Behavioral,
        DataClass::Purchase,
        DataClass::Location,
        DataClass::Demographic,
        DataClass::Declared,
        DataClass::ThirdParty,
    ];

    /// The name used in JSON specs.
    pub fn name(self) -> &'static str {
        match self {
            DataClass::Behavioral => "behavioral",
            DataClass::Purchase => "purchase",
            DataClass::Location => "location",
            DataClass::Demographic => "demographic",
            DataClass::Declared => "declared",
            DataClass::ThirdParty => "third_party",
        }
    }

    /// Parses a JSON name (`"behavioral"`, `"third_party"`, ...).
    pub fn parse(name: &str) -> Option<DataClass> {
        DataClass::ALL.into_iter().find(|c| c.name() == name)
    }
}

/// A set of [`DataClass`]es as a bitmask: consent, or the data a thing relies on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct DataClasses(pub u8);

impl DataClasses {
    /// The empty set.
    pub const NONE: DataClasses = DataClasses(0);
    /// Every class.
    pub const ALL: DataClasses = DataClasses(0b11_1111);
    /// Every class a score can be inferred from: all but [`DataClass::Declared`].
    pub const INFERRED: DataClasses = DataClasses(0b10_1111);

    /// The set holding only `class`.
    pub const fn only(class: DataClass) -> DataClasses {
        DataClasses(1 << class as u8)
    }

    /// This set plus `class`.
    pub const fn with(self, class: DataClass) -> DataClasses {
        DataClasses(self.0 | 1 << class as u8)
    }

    /// This set without `class`.
    pub const fn without(self, class: DataClass) -> DataClasses {
        DataClasses(self.0 & !(1 << class as u8))
    }

    /// The union of two sets.
    pub const fn union(self, other: DataClasses) -> DataClasses {
        DataClasses(self.0 | other.0)
    }

    /// True when `class` is in the set.
    #[inline]
    pub const fn has(self, class: DataClass) -> bool {
        self.0 & (1 << class as u8) != 0
    }

    /// True when every class of `other` is in this set.
    #[inline]
    pub const fn contains(self, other: DataClasses) -> bool {
        other.0 & !self.0 == 0
    }

    /// The classes in the set, in bit order.
    pub fn iter(self) -> impl Iterator<Item = DataClass> {
        DataClass::ALL.into_iter().filter(move |c| self.has(*c))
    }
}

impl FromIterator<DataClass> for DataClasses {
    fn from_iter<T: IntoIterator<Item = DataClass>>(iter: T) -> Self {
        iter.into_iter().fold(DataClasses::NONE, DataClasses::with)
    }
}

impl Serialize for DataClasses {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for DataClasses {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Ok(Vec::<DataClass>::deserialize(d)?.into_iter().collect())
    }
}

/// The set of data classes a person agreed may be used to personalize for them.
pub type Consent = DataClasses;

/// One observation about a person: a named signal with a value, the class of data it
/// is, and when it was observed (Unix seconds). Signals decay with age in the
/// [`PersonaModel`](crate::model::PersonaModel).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signal {
    /// The signal's name, as the persona model's weights refer to it.
    pub name: String,
    /// The observed value (a count, an amount, 1.0 for "happened").
    pub value: f32,
    /// The class of data this is, for consent.
    pub class: DataClass,
    /// When it was observed, Unix seconds.
    pub at: i64,
}

/// How long and how well we know a person: intimacy is capped by this stage
/// ("you can't make old friends").
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum RelationshipStage {
    /// First visit or first day.
    New = 0,
    /// Has come back.
    Returning = 1,
    /// Comes often, known for a while.
    Regular = 2,
    /// A long, frequent relationship.
    Loyal = 3,
}

/// Visits and days known needed to reach each [`RelationshipStage`]. Part of the
/// selector configuration.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StageRules {
    /// Visits needed to be `Returning`.
    pub returning_visits: u32,
    /// Visits needed to be `Regular`.
    pub regular_visits: u32,
    /// Days known needed to be `Regular`.
    pub regular_days: u32,
    /// Visits needed to be `Loyal`.
    pub loyal_visits: u32,
    /// Days known needed to be `Loyal`.
    pub loyal_days: u32,
}

impl Default for StageRules {
    fn default() -> Self {
        StageRules {
            returning_visits: 2,
            regular_visits: 5,
            regular_days: 14,
            loyal_visits: 20,
            loyal_days: 90,
        }
    }
}

impl StageRules {
    /// The stage of someone first seen at `first_seen` with `visits` visits, at `now`
    /// (all Unix seconds). A first-seen time in the future counts as "known 0 days".
    pub fn stage(&self, first_seen: i64, visits: u32, now: i64) -> RelationshipStage {
        let days = (now.saturating_sub(first_seen).max(0) / 86_400) as u64;
        if visits >= self.loyal_visits && days >= u64::from(self.loyal_days) {
            RelationshipStage::Loyal
        } else if visits >= self.regular_visits && days >= u64::from(self.regular_days) {
            RelationshipStage::Regular
        } else if visits >= self.returning_visits {
            RelationshipStage::Returning
        } else {
            RelationshipStage::New
        }
    }
}

/// One time a creative was shown to the person.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exposure {
    /// The creative's key (`Symbol::of(creative id)`), stable across catalog versions.
    pub creative: Symbol,
    /// When it was shown, Unix seconds.
    pub at: i64,
}

/// Inserts `item` into `list` (oldest first by `at`) after every entry of the same
/// time; when `list` holds `max` already, the oldest ages out: the first entry, or
/// `item` itself when it is older than all of them.
fn keep_in_time_order<T>(list: &mut Vec<T>, item: T, max: usize, at: impl Fn(&T) -> i64) {
    let when = at(&item);
    if list.len() >= max {
        if list.first().is_some_and(|oldest| when < at(oldest)) {
            return;
        }
        list.remove(0);
    }
    let i = list.partition_point(|x| at(x) <= when);
    list.insert(i, item);
}

/// The most exposures a profile remembers; older ones age out first.
pub const MAX_EXPOSURES: usize = 256;
/// The most suppressed creatives a profile remembers; the oldest ages out first.
pub const MAX_SUPPRESSED: usize = 256;
/// The most signals a profile keeps; the oldest ages out first.
pub const MAX_SIGNALS: usize = 1024;
/// The most engagements (clicks, conversions, thumbs up) a profile remembers.
pub const MAX_ENGAGEMENTS: usize = 256;
/// The largest profile in JSON, in bytes (1 MiB): [`Profile::from_json`] refuses a
/// larger one before parsing it. A profile at every other limit (1,024 signals, 256
/// exposures, engagements and rejections, a score for each of 1,024 personas) is a few
/// hundred KiB.
pub const MAX_PROFILE_BYTES: usize = 1024 * 1024;

/// The longest signal name, in bytes (256, as a creative id): with [`MAX_SIGNALS`] of
/// them a profile still saves within [`MAX_PROFILE_BYTES`].
pub const MAX_SIGNAL_NAME: usize = 256;

/// Everything the engine knows about one person, compiled against one persona menu.
///
/// Build it with [`Profile::new`] (sized for a menu) and the setters, or from JSON with
/// [`Profile::from_json`]. `select` reads it without allocating.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Profile {
    /// Persona scores, by persona id, with their sources.
    pub scores: PersonaScores,
    /// Observations the persona model turns into scores.
    pub signals: Vec<Signal>,
    /// Data classes the person consented to. Empty means personalization uses nothing
    /// personal about them.
    pub consent: Consent,
    /// When we first saw the person, Unix seconds.
    pub first_seen: i64,
    /// How many visits we have seen.
    pub visits: u32,
    /// Personas the person told us they like: scored as the maximum, whatever was inferred.
    pub likes: SmallVec<[PersonaId; 4]>,
    /// Personas the person told us they are not interested in: creatives tagged with any
    /// of them are never shown, whatever was inferred.
    pub dislikes: SmallVec<[PersonaId; 4]>,
    /// Recent exposures, oldest first, at most [`MAX_EXPOSURES`].
    pub exposures: Vec<Exposure>,
    /// Creatives this person rejected (thumbs down, dismiss): never shown again.
    /// Oldest first, at most [`MAX_SUPPRESSED`].
    pub suppressed: Vec<Symbol>,
    /// Recent engagements (clicks, conversions, thumbs up), oldest first, at most
    /// [`MAX_ENGAGEMENTS`]: an engagement resets a creative's fatigue.
    pub engagements: Vec<Exposure>,
    /// The persona menu its persona ids belong to, when known: set by every
    /// constructor and setter that is given the menu ([`Profile::for_menu`],
    /// [`Profile::from_json`], [`Profile::set_score`], [`crate::Selector::new_profile`],
    /// a persona model's `apply`). A selector, a persona model or a write with another
    /// menu refuses the profile; `None` (from [`Profile::new`]) checks only the sizes.
    pub menu: Option<MenuKey>,
}

impl Profile {
    /// An empty profile for a menu of `personas` personas: no scores, no consent,
    /// first seen at `now` with one visit.
    pub fn new(personas: usize, now: i64) -> Self {
        Profile { scores: PersonaScores::new(personas), first_seen: now, visits: 1, ..Profile::default() }
    }

    /// An empty profile for `menu` (as [`Profile::new`]), marked as made for it.
    pub fn for_menu(menu: &PersonaMenu, now: i64) -> Self {
        Profile { menu: Some(menu.key()), ..Profile::new(menu.len(), now) }
    }

    /// Errors unless the profile was made for the menu of `key` (or for no menu in
    /// particular): its persona ids would be read as another menu's personas. `what`
    /// names who refuses it.
    pub(crate) fn check_menu(&self, key: MenuKey, what: &'static str) -> Result<()> {
        match self.menu {
            Some(own) if own != key => Err(Error::invalid(
                what,
                "menu",
                "the profile was made for another persona menu (its persona ids would be read as \
                 other personas): compile its stored JSON against this menu with Profile::from_json",
            )),
            _ => Ok(()),
        }
    }

    /// [`Profile::check_menu`], and errors when the profile's sizes do not fit a menu of
    /// `n` personas (`whose` names it in the message): scores held for another number
    /// of personas (an empty score list, as [`Profile::default`] has, means no scores), or
    /// a declared like or dislike of a persona id the menu does not have. Such a profile
    /// would otherwise be read with its scores on the wrong personas or some ignored.
    pub(crate) fn check_fits(&self, key: MenuKey, n: usize, whose: &str) -> Result<()> {
        self.check_menu(key, "profile")?;
        let held = self.scores.len();
        if held != 0 && held != n {
            return Err(Error::invalid(
                "profile",
                "scores",
                format!(
                    "holds scores for {held} personas, but {whose} has {n}: the profile was made for \
                     another menu (build it with Profile::new(menu.len(), ..) or from JSON against this \
                     menu)"
                ),
            ));
        }
        for (field, ids) in [("likes", &self.likes), ("dislikes", &self.dislikes)] {
            if let Some(p) = ids.iter().find(|p| p.index() >= n) {
                return Err(Error::invalid(
                    "profile",
                    field,
                    format!("persona id {} is not on {whose} of {n}", p.0),
                ));
            }
        }
        Ok(())
    }

    /// [`Profile::check_menu`], then marks the profile as made for `menu`.
    fn bind(&mut self, menu: &PersonaMenu) -> Result<()> {
        self.check_menu(menu.key(), "profile")?;
        self.menu = Some(menu.key());
        Ok(())
    }

    /// Sets the score of a persona by name, as imported from elsewhere, with the data
    /// classes it was derived from. Scores held for fewer personas than the menu has (a
    /// profile started with [`Profile::default`]) grow to the menu's size.
    pub fn set_score(
        &mut self,
        menu: &PersonaMenu,
        persona: &str,
        score: u8,
        sources: DataClasses,
    ) -> Result<()> {
        let id = menu.id(persona)?;
        if score > MAX_SCORE {
            return Err(Error::ScoreOutOfRange { persona: persona.to_owned(), score: score.into() });
        }
        self.bind(menu)?;
        // A profile started empty (`Profile::default()`) takes the menu's size here, so
        // that `select` knows it was made for this menu.
        self.scores.grow_to(menu.len());
        self.scores.set(id, score, sources)
    }

    /// Errors when the signals are ones no profile document may hold: more than
    /// [`MAX_SIGNALS`], an empty name or one longer than [`MAX_SIGNAL_NAME`], a value
    /// that is NaN or infinite. [`Profile::signals`] is a public field, so a profile
    /// built in code can hold them; everything that reads the signals (a persona
    /// model's scoring, training, writing the profile) refuses such a profile with
    /// this error, naming the field, rather than read all or part of it.
    pub fn check_signals(&self) -> Result<()> {
        check_signal_count(self.signals.len())?;
        for (i, signal) in self.signals.iter().enumerate() {
            check_signal(signal, i)?;
        }
        Ok(())
    }

    /// Adds a signal, kept in time order; past [`MAX_SIGNALS`] the oldest by `at` ages
    /// out (the new one itself, when it is older than every signal held: a backfill
    /// never pushes out fresher evidence). Errors on an empty name or a value that is
    /// NaN or infinite.
    pub fn add_signal(&mut self, signal: Signal) -> Result<()> {
        check_signal(&signal, self.signals.len())?;
        keep_in_time_order(&mut self.signals, signal, MAX_SIGNALS, |s| s.at);
        Ok(())
    }

    /// Grants or withdraws consent for one class of data.
    pub fn set_consent(&mut self, class: DataClass, granted: bool) {
        self.consent = if granted { self.consent.with(class) } else { self.consent.without(class) };
    }

    /// Declares that the person likes a persona. The latest declaration wins: a persona
    /// the person disliked is no longer disliked (they changed their mind), so a
    /// persona is never both. (A [`ProfileSpec`] that lists one persona in both `likes`
    /// and `dislikes` is an error instead: one document cannot say which came last.)
    pub fn declare_like(&mut self, menu: &PersonaMenu, persona: &str) -> Result<()> {
        let id = menu.id(persona)?;
        self.bind(menu)?;
        self.dislikes.retain(|p| *p != id);
        if !self.likes.contains(&id) {
            self.likes.push(id);
        }
        Ok(())
    }

    /// Declares that the person is not interested in a persona. The latest declaration
    /// wins: a persona the person liked is no longer liked (see [`Profile::declare_like`]).
    pub fn declare_dislike(&mut self, menu: &PersonaMenu, persona: &str) -> Result<()> {
        let id = menu.id(persona)?;
        self.bind(menu)?;
        self.likes.retain(|p| *p != id);
        if !self.dislikes.contains(&id) {
            self.dislikes.push(id);
        }
        Ok(())
    }

    /// The relationship stage at `now` under `rules`.
    pub fn stage(&self, rules: &StageRules, now: i64) -> RelationshipStage {
        rules.stage(self.first_seen, self.visits, now)
    }

    /// Remembers that a creative was shown at `at`, in time order; past
    /// [`MAX_EXPOSURES`] the oldest by `at` ages out (the new one itself when it is the
    /// oldest: an exposure recorded late never pushes out a recent one that a frequency
    /// cap counts).
    pub fn remember_exposure(&mut self, creative: Symbol, at: i64) {
        keep_in_time_order(&mut self.exposures, Exposure { creative, at }, MAX_EXPOSURES, |e| e.at);
    }

    /// Remembers that the person engaged with a creative at `at` (a click, a conversion,
    /// a thumbs up), in time order; past [`MAX_ENGAGEMENTS`] the oldest by `at` ages out.
    pub fn remember_engagement(&mut self, creative: Symbol, at: i64) {
        keep_in_time_order(&mut self.engagements, Exposure { creative, at }, MAX_ENGAGEMENTS, |e| e.at);
    }

    /// Never show this creative to this person again. The oldest suppression ages out
    /// past [`MAX_SUPPRESSED`].
    pub fn suppress(&mut self, creative: Symbol) {
        if self.suppressed.contains(&creative) {
            return;
        }
        if self.suppressed.len() >= MAX_SUPPRESSED {
            self.suppressed.remove(0);
        }
        self.suppressed.push(creative);
    }

    /// True when the person rejected this creative.
    #[inline]
    pub fn is_suppressed(&self, creative: Symbol) -> bool {
        self.suppressed.contains(&creative)
    }

    /// How many times `creative` was shown at or after `since`.
    #[inline]
    pub fn exposures_since(&self, creative: Symbol, since: i64) -> u32 {
        let mut n = 0;
        for e in self.exposures.iter().rev() {
            if e.at < since {
                // Exposures are kept oldest first, but records may arrive out of order;
                // keep scanning rather than stopping early.
                continue;
            }
            if e.creative == creative {
                n += 1;
            }
        }
        n
    }

    /// Converts to the named, serializable form. Errors for a profile made for another
    /// menu (its ids would be written as other personas' names), for one whose scores,
    /// likes or dislikes do not fit `menu` (some would be left out or written as names
    /// no menu has), and for signals [`Profile::from_spec`] would refuse
    /// ([`Profile::check_signals`]).
    pub fn to_spec(&self, menu: &PersonaMenu) -> Result<ProfileSpec> {
        self.check_fits(menu.key(), menu.len(), "the persona menu")?;
        // What `from_spec` would refuse is not written.
        self.check_signals()?;
        let mut persona_scores = Vec::new();
        for (id, name) in menu.iter() {
            let score = self.scores.get(id);
            if score > 0 {
                persona_scores.push((name.to_owned(), ScoreSpec { score, sources: self.scores.sources(id) }));
            }
        }
        Ok(ProfileSpec {
            persona_scores,
            signals: self.signals.clone(),
            consent: self.consent,
            first_seen: self.first_seen,
            visits: self.visits,
            likes: self.likes.iter().map(|p| menu.name(*p).to_owned()).collect(),
            dislikes: self.dislikes.iter().map(|p| menu.name(*p).to_owned()).collect(),
            exposures: self.exposures.clone(),
            suppressed: self.suppressed.clone(),
            engagements: self.engagements.clone(),
        })
    }

    /// Builds a profile from its named form, checking every field against `menu`.
    pub fn from_spec(menu: &PersonaMenu, spec: ProfileSpec) -> Result<Self> {
        check_relationship(spec.first_seen, spec.visits)?;
        let mut profile = Profile::for_menu(menu, spec.first_seen);
        profile.visits = spec.visits;
        profile.consent = spec.consent;
        for (name, s) in &spec.persona_scores {
            let id = menu.id(name).map_err(|_| {
                Error::invalid(
                    "profile",
                    "persona_scores",
                    crate::suggest::unknown("persona", name, menu.names().iter().map(String::as_str)),
                )
            })?;
            if s.score > MAX_SCORE {
                return Err(Error::ScoreOutOfRange { persona: name.clone(), score: s.score.into() });
            }
            profile.scores.set(id, s.score, s.sources)?;
        }
        check_signal_count(spec.signals.len())?;
        for (i, signal) in spec.signals.iter().enumerate() {
            check_signal(signal, i)?;
        }
        profile.signals = spec.signals;
        profile.signals.sort_by_key(|s| s.at);
        for (field, names) in [("likes", &spec.likes), ("dislikes", &spec.dislikes)] {
            if names.len() > crate::persona::MAX_PERSONAS {
                return Err(Error::invalid(
                    "profile",
                    field,
                    format!("{} names (at most {})", names.len(), crate::persona::MAX_PERSONAS),
                ));
            }
        }
        for name in &spec.likes {
            profile.declare_like(menu, name).map_err(|_| {
                Error::invalid(
                    "profile",
                    "likes",
                    crate::suggest::unknown("persona", name, menu.names().iter().map(String::as_str)),
                )
            })?;
        }
        for name in &spec.dislikes {
            if profile.likes.contains(&menu.id(name).map_err(|_| {
                Error::invalid(
                    "profile",
                    "dislikes",
                    crate::suggest::unknown("persona", name, menu.names().iter().map(String::as_str)),
                )
            })?) {
                // One document cannot say both; which one the person meant is unknown.
                return Err(Error::invalid(
                    "profile",
                    "likes",
                    format!(
                        "'{}' is also in dislikes (a persona is liked or disliked, not both)",
                        quote(name)
                    ),
                ));
            }
            profile.declare_dislike(menu, name)?;
        }
        if spec.exposures.len() > MAX_EXPOSURES {
            return Err(Error::invalid(
                "profile",
                "exposures",
                format!("{} exposures (at most {MAX_EXPOSURES})", spec.exposures.len()),
            ));
        }
        profile.exposures = spec.exposures;
        // Kept oldest first, whatever order the document lists them in (what ages out
        // first is the oldest).
        profile.exposures.sort_by_key(|e| e.at);
        if spec.suppressed.len() > MAX_SUPPRESSED {
            return Err(Error::invalid(
                "profile",
                "suppressed",
                format!("{} suppressed creatives (at most {MAX_SUPPRESSED})", spec.suppressed.len()),
            ));
        }
        for key in spec.suppressed {
            profile.suppress(key);
        }
        if spec.engagements.len() > MAX_ENGAGEMENTS {
            return Err(Error::invalid(
                "profile",
                "engagements",
                format!("{} engagements (at most {MAX_ENGAGEMENTS})", spec.engagements.len()),
            ));
        }
        profile.engagements = spec.engagements;
        profile.engagements.sort_by_key(|e| e.at);
        Ok(profile)
    }

    /// Parses a profile from JSON in the [`ProfileSpec`] shape. A document larger than
    /// [`MAX_PROFILE_BYTES`] is refused before parsing.
    pub fn from_json(menu: &PersonaMenu, json: &str) -> Result<Self> {
        Error::check_size("profile", json.len(), MAX_PROFILE_BYTES, "MAX_PROFILE_BYTES")?;
        let spec: ProfileSpec = crate::limits::bounded::from_json("profile", json)?;
        Profile::from_spec(menu, spec)
    }

    /// Writes the profile as JSON in the [`ProfileSpec`] shape. Errors, writing nothing,
    /// on a profile [`Profile::from_json`] would refuse: visits counted with `first_seen`
    /// 0 (as [`Profile::new`] leaves it when given 0 for `now`), JSON larger than
    /// [`MAX_PROFILE_BYTES`], and on a profile made for another menu.
    pub fn to_json(&self, menu: &PersonaMenu) -> Result<String> {
        check_relationship(self.first_seen, self.visits)?;
        let json = serde_json::to_string_pretty(&self.to_spec(menu)?)
            .map_err(|source| Error::Json { what: "profile", source })?;
        // What `from_json` would refuse is not written: a saved profile always loads.
        if json.len() > MAX_PROFILE_BYTES {
            return Err(Error::invalid(
                "profile",
                "signals",
                format!(
                    "the profile is {} bytes as JSON, more than MAX_PROFILE_BYTES ({MAX_PROFILE_BYTES} bytes) that \
                     a profile may be read back from (its {} signals take most of it)",
                    json.len(),
                    self.signals.len()
                ),
            ));
        }
        Ok(json)
    }
}

/// Visits need a start. Left out, `first_seen` reads 0: someone known since 1970, which
/// with enough visits is a loyal customer, trusted with the most personal creatives. A
/// profile that counts visits must say when they began.
pub(crate) fn check_relationship(first_seen: i64, visits: u32) -> Result<()> {
    if visits > 0 && first_seen == 0 {
        return Err(Error::invalid(
            "profile",
            "first_seen",
            format!("missing (or 0) while visits is {visits}: give when the person was first seen, in Unix seconds"),
        ));
    }
    Ok(())
}

fn check_signal_count(signals: usize) -> Result<()> {
    if signals > MAX_SIGNALS {
        return Err(Error::invalid(
            "profile",
            "signals",
            format!("{signals} signals (at most {MAX_SIGNALS}, MAX_SIGNALS)"),
        ));
    }
    Ok(())
}

fn check_signal(signal: &Signal, index: usize) -> Result<()> {
    if signal.name.trim().is_empty() {
        return Err(Error::invalid("profile", format!("signals[{index}].name"), "signal name is empty"));
    }
    if signal.name.len() > MAX_SIGNAL_NAME {
        return Err(Error::invalid(
            "profile",
            format!("signals[{index}].name"),
            format!("'{}' is longer than {MAX_SIGNAL_NAME} bytes (MAX_SIGNAL_NAME)", quote(&signal.name)),
        ));
    }
    if !signal.value.is_finite() {
        return Err(Error::invalid(
            "profile",
            format!("signals[{index}].value"),
            format!("signal '{}' has value {} (must be finite)", quote(&signal.name), signal.value),
        ));
    }
    Ok(())
}

/// A persona score with the data classes it was derived from. In JSON either a bare
/// number (a score whose provenance is not recorded: it counts only with consent to
/// every class a score can be inferred from, see
/// [`PersonaScores::required_consent`](crate::PersonaScores::required_consent)) or
/// `{"score": 8, "sources": ["behavioral"]}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ScoreSpec {
    /// The score, `0..=9`.
    pub score: u8,
    /// The data classes it was derived from.
    pub sources: DataClasses,
}

impl<'de> Deserialize<'de> for ScoreSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Full {
            score: u8,
            #[serde(default)]
            sources: DataClasses,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Bare(u8),
            Full(Full),
        }
        match Either::deserialize(d).map_err(|_| {
            serde::de::Error::custom(
                "a persona score is a number 0..=9 or {\"score\": 0..=9, \"sources\": [...]}",
            )
        })? {
            Either::Bare(score) => Ok(ScoreSpec { score, sources: DataClasses::NONE }),
            Either::Full(f) => Ok(ScoreSpec { score: f.score, sources: f.sources }),
        }
    }
}

/// The serializable, named form of a [`Profile`]: what services store and exchange.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProfileSpec {
    /// Persona name → score (with sources). Zero scores may be omitted.
    #[serde(
        serialize_with = "ordered_map::serialize",
        deserialize_with = "crate::limits::bounded::map::<_, _, crate::limits::counted::Scores>"
    )]
    pub persona_scores: Vec<(String, ScoreSpec)>,
    /// Observations for the persona model.
    #[serde(deserialize_with = "crate::limits::bounded::vec::<_, _, crate::limits::counted::Signals>")]
    pub signals: Vec<Signal>,
    /// Consented data classes.
    pub consent: Consent,
    /// When first seen, Unix seconds; required (not 0) when `visits` is above 0.
    pub first_seen: i64,
    /// Number of visits.
    pub visits: u32,
    /// Declared liked persona names (none of them also in `dislikes`).
    #[serde(deserialize_with = "crate::limits::bounded::vec::<_, _, crate::limits::counted::Likes>")]
    pub likes: Vec<String>,
    /// Declared not-interested persona names.
    #[serde(deserialize_with = "crate::limits::bounded::vec::<_, _, crate::limits::counted::Dislikes>")]
    pub dislikes: Vec<String>,
    /// Recent exposures.
    #[serde(deserialize_with = "crate::limits::bounded::vec::<_, _, crate::limits::counted::Exposures>")]
    pub exposures: Vec<Exposure>,
    /// Keys of rejected creatives.
    #[serde(deserialize_with = "crate::limits::bounded::vec::<_, _, crate::limits::counted::Suppressed>")]
    pub suppressed: Vec<Symbol>,
    /// Recent engagements.
    #[serde(deserialize_with = "crate::limits::bounded::vec::<_, _, crate::limits::counted::Engagements>")]
    pub engagements: Vec<Exposure>,
}

/// Serde helpers for JSON objects kept as ordered `Vec<(String, V)>`, rejecting
/// duplicate keys instead of silently keeping the last one.
pub(crate) mod ordered_map {
    use serde::ser::SerializeMap;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer, V: Serialize>(v: &[(String, V)], s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(v.len()))?;
        for (k, val) in v {
            map.serialize_entry(k, val)?;
        }
        map.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>, V: Deserialize<'de>>(
        d: D,
    ) -> Result<Vec<(String, V)>, D::Error> {
        crate::limits::bounded::map::<D, V, crate::limits::bounded::Unbounded>(d)
    }
}
