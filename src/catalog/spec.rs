//! The catalog spec: the serde, string-keyed form of a content catalog that people write
//! by hand, diff and ship as JSON. It is only data; [`Catalog::compile`](super::Catalog::compile)
//! validates it and turns it into the compiled form `select` reads.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::error::{Error, Result};
use crate::profile::ordered_map;

/// A whole content catalog: the persona menu, the placements and the creatives.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogSpec {
    /// A label for this version of the catalog (shown in explanations and logs).
    #[serde(default)]
    pub version: String,
    /// The persona menu, in order: creatives and profiles may only name these.
    #[serde(deserialize_with = "crate::limits::bounded::vec::<_, _, crate::limits::counted::MenuPersonas>")]
    pub personas: Vec<String>,
    /// The placements (slots on pages, emails, apps) creatives may fill.
    #[serde(deserialize_with = "crate::limits::bounded::vec::<_, _, crate::limits::counted::Placements>")]
    pub placements: Vec<String>,
    /// The creatives.
    #[serde(deserialize_with = "crate::limits::bounded::vec::<_, _, crate::limits::counted::Creatives>")]
    pub creatives: Vec<CreativeSpec>,
    /// Assembled creatives: templates whose slots are filled per request (see
    /// [`TemplateSpec`](crate::assemble::TemplateSpec)).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "crate::limits::bounded::vec::<_, _, crate::limits::counted::Templates>"
    )]
    pub templates: Vec<crate::assemble::TemplateSpec>,
    /// Catalog-wide rules on creative attributes: targeting and boosts for every
    /// creative (and template variant) whose attributes match (see
    /// [`CreativeRuleSpec`](super::CreativeRuleSpec)).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "crate::limits::bounded::vec::<_, _, crate::limits::counted::AttributeRules>"
    )]
    pub attribute_rules: Vec<super::CreativeRuleSpec>,
}

impl CatalogSpec {
    /// Parses a catalog spec from JSON. Unknown fields are errors (a typo must not be
    /// silently ignored). A document larger than
    /// [`MAX_SPEC_BYTES`](super::MAX_SPEC_BYTES) is refused before parsing; the counted
    /// limits ([`MAX_CREATIVES`](super::MAX_CREATIVES), [`MAX_TAGS`](super::MAX_TAGS), ...)
    /// are enforced while parsing, the creatives counted before any is built (see
    /// [`limits`](crate::limits)).
    pub fn from_json(json: &str) -> Result<Self> {
        Error::check_size("catalog spec", json.len(), super::MAX_SPEC_BYTES, "MAX_SPEC_BYTES")?;
        crate::limits::bounded::precount::<crate::limits::counted::Creatives>("catalog spec", json)?;
        crate::limits::bounded::from_json("catalog spec", json).map_err(|error| match error {
            Error::Json { source, .. } if source.classify() == serde_json::error::Category::Data => {
                in_creative(json, source)
            }
            error => error,
        })
    }

    /// Writes the spec as pretty JSON.
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string_pretty(self).map_err(|source| Error::Json { what: "catalog spec", source })
    }
}

/// Names the creative (and the field) behind a shape error of a catalog spec that is
/// valid JSON: each creative is parsed on its own until one fails. Only on the error
/// path. Gives back the document's own error when no creative is at fault.
fn in_creative(json: &str, source: serde_json::Error) -> Error {
    #[derive(Deserialize)]
    struct Creatives<'a> {
        #[serde(borrow, default)]
        creatives: Vec<&'a RawValue>,
    }
    let Ok(doc) = serde_json::from_str::<Creatives<'_>>(json) else {
        return Error::Json { what: "catalog spec", source };
    };
    for (index, raw) in doc.creatives.iter().enumerate() {
        let Err(own) = serde_json::from_str::<CreativeSpec>(raw.get()) else { continue };
        let object = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(raw.get()).ok();
        let id = object.as_ref().and_then(|o| o.get("id")).and_then(|v| v.as_str()).map(str::to_owned);
        let field = object.and_then(|o| field_at_fault(o, &own));
        return Error::CreativeJson { index, id, field, source };
    }
    Error::Json { what: "catalog spec", source }
}

/// A parse error's message without the position serde_json appends.
fn bare(error: &serde_json::Error) -> String {
    let text = error.to_string();
    let suffix = format!(" at line {} column {}", error.line(), error.column());
    text.strip_suffix(&suffix).map_or(text.clone(), str::to_owned)
}

/// The field of a creative at fault for the parse error `own`: the one whose removal
/// changes the error (serde reports the first bad value it meets, so removing any other
/// field leaves the error as it was). A message that quotes the field (`unknown field`,
/// `missing field`) names it directly.
fn field_at_fault(
    object: serde_json::Map<String, serde_json::Value>,
    own: &serde_json::Error,
) -> Option<String> {
    let message = bare(own);
    for prefix in ["unknown field `", "missing field `"] {
        if let Some(rest) = message.strip_prefix(prefix) {
            return rest.split('`').next().map(str::to_owned);
        }
    }
    object.keys().find_map(|key| {
        let mut without = object.clone();
        without.remove(key);
        let text = serde_json::Value::Object(without).to_string();
        let changed = match serde_json::from_str::<CreativeSpec>(&text) {
            Ok(_) => true,
            Err(e) => bare(&e) != message,
        };
        changed.then(|| key.clone())
    })
}

/// One creative of the content library, as written in a spec. Enumerated values
/// (devices, intimacy, data classes, ...) are strings here so that a wrong value is
/// reported with the creative and field it is in.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreativeSpec {
    /// Unique id, handed back on every pick.
    pub id: String,
    /// Placements this creative fits (at least one).
    #[serde(
        deserialize_with = "crate::limits::bounded::vec::<_, _, crate::limits::counted::CreativePlacements>"
    )]
    pub placements: Vec<String>,
    /// Persona name → weight: which personas this creative speaks to. A weight is 0 or
    /// from [`MIN_TAG_WEIGHT`](super::MIN_TAG_WEIGHT) to
    /// [`MAX_TAG_WEIGHT`](super::MAX_TAG_WEIGHT).
    #[serde(
        default,
        serialize_with = "ordered_map::serialize",
        deserialize_with = "crate::limits::bounded::map::<_, _, crate::limits::counted::Tags>"
    )]
    pub personas: Vec<(String, f64)>,
    /// Hard context rules: the creative is eligible only when all of them hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub targeting: Option<ConditionSpec>,
    /// Soft context rules: each that holds multiplies the score by its factor.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "crate::limits::bounded::vec::<_, _, crate::limits::counted::Boosts>"
    )]
    pub boosts: Vec<BoostSpec>,
    /// When the creative may run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<ScheduleSpec>,
    /// Business priority, a multiplier from [`MIN_PRIORITY`](crate::limits::MIN_PRIORITY) (1e-6)
    /// to [`MAX_PRIORITY`](crate::limits::MAX_PRIORITY) (1e6). Default 1.
    #[serde(default = "one")]
    pub priority: f64,
    /// At most this many impressions per person per window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency_cap: Option<FrequencyCapSpec>,
    /// How personal the creative feels: `generic` (default), `segment`, `personal`,
    /// `intimate`.
    #[serde(default = "generic")]
    pub intimacy: String,
    /// Data classes the creative relies on (`behavioral`, `purchase`, `location`,
    /// `demographic`, `declared`, `third_party`): shown only with consent to all of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data_classes: Vec<String>,
    /// Optional component kind: `headline`, `image`, `call_to_action`, `offer`, `banner`,
    /// `email_block`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
    /// A fallback is shown only when nothing else in the placement is eligible.
    #[serde(default)]
    pub fallback: bool,
    /// Creatives of one exclusion group never appear together in one selection. The
    /// name is not empty, at most [`MAX_ID_LEN`](crate::limits::MAX_ID_LEN) bytes and
    /// free of control characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclusion_group: Option<String>,
    /// Opaque payload (any JSON: asset URL, text...), handed back byte for byte.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<Box<RawValue>>,
    /// Free descriptive attributes, name → value (`{"format": "video", "tone":
    /// "playful"}`): learned as features crossed with the context, so what one video
    /// creative teaches about mobile evenings carries over to every other video creative
    /// (and gives a new one its start).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        serialize_with = "ordered_map::serialize",
        deserialize_with = "crate::limits::bounded::map::<_, _, crate::limits::counted::Attributes>"
    )]
    pub attributes: Vec<(String, String)>,
}

fn one() -> f64 {
    1.0
}

fn generic() -> String {
    "generic".to_owned()
}

impl CreativeSpec {
    /// A generic creative with this id and nothing else; add to it with the builder
    /// methods.
    pub fn new(id: impl Into<String>) -> Self {
        CreativeSpec {
            id: id.into(),
            placements: Vec::new(),
            personas: Vec::new(),
            targeting: None,
            boosts: Vec::new(),
            schedule: None,
            priority: 1.0,
            frequency_cap: None,
            intimacy: generic(),
            data_classes: Vec::new(),
            component: None,
            fallback: false,
            exclusion_group: None,
            payload: None,
            attributes: Vec::new(),
        }
    }

    /// Adds a placement.
    pub fn placement(mut self, name: &str) -> Self {
        self.placements.push(name.to_owned());
        self
    }

    /// Adds a persona tag; its weight is checked when the catalog compiles (0, or from
    /// [`MIN_TAG_WEIGHT`](crate::limits::MIN_TAG_WEIGHT) to
    /// [`MAX_TAG_WEIGHT`](crate::limits::MAX_TAG_WEIGHT)).
    pub fn persona(mut self, name: &str, weight: f64) -> Self {
        self.personas.push((name.to_owned(), weight));
        self
    }

    /// Sets the hard targeting rules.
    pub fn targeting(mut self, rules: ConditionSpec) -> Self {
        self.targeting = Some(rules);
        self
    }

    /// Adds a context boost.
    pub fn boost(mut self, when: ConditionSpec, factor: f64) -> Self {
        self.boosts.push(BoostSpec { when, factor });
        self
    }

    /// Sets the schedule (Unix seconds; `None` for open-ended).
    pub fn schedule(mut self, start: Option<i64>, end: Option<i64>) -> Self {
        self.schedule =
            Some(ScheduleSpec { start: start.map(Timestamp::Unix), end: end.map(Timestamp::Unix) });
        self
    }

    /// Sets the priority.
    pub fn priority(mut self, priority: f64) -> Self {
        self.priority = priority;
        self
    }

    /// Sets a frequency cap.
    pub fn frequency_cap(mut self, impressions: u32, window_seconds: u64) -> Self {
        self.frequency_cap = Some(FrequencyCapSpec { impressions, window_seconds });
        self
    }

    /// Sets the intimacy level by name.
    pub fn intimacy(mut self, level: &str) -> Self {
        self.intimacy = level.to_owned();
        self
    }

    /// Adds a data class the creative relies on.
    pub fn needs(mut self, class: &str) -> Self {
        self.data_classes.push(class.to_owned());
        self
    }

    /// Sets the component kind.
    pub fn component(mut self, kind: &str) -> Self {
        self.component = Some(kind.to_owned());
        self
    }

    /// Marks the creative as the placement's fallback.
    pub fn fallback(mut self) -> Self {
        self.fallback = true;
        self
    }

    /// Puts the creative in an exclusion group.
    pub fn exclusion_group(mut self, group: &str) -> Self {
        self.exclusion_group = Some(group.to_owned());
        self
    }

    /// Adds (or replaces) a descriptive attribute, e.g. `("format", "video")`.
    pub fn attribute(mut self, name: &str, value: &str) -> Self {
        match self.attributes.iter_mut().find(|(have, _)| have == name) {
            Some(slot) => slot.1 = value.to_owned(),
            None => self.attributes.push((name.to_owned(), value.to_owned())),
        }
        self
    }

    /// Sets the payload from JSON text. Errors when `json` is not valid JSON.
    pub fn payload_json(mut self, json: &str) -> Result<Self> {
        let raw = RawValue::from_string(json.to_owned())
            .map_err(|source| Error::Json { what: "payload", source })?;
        self.payload = Some(raw);
        Ok(self)
    }
}

/// Context rules. Every non-empty `x` list must contain the context's value; every
/// `not_x` list must not. All listed rules must hold.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConditionSpec {
    /// Allowed devices (`desktop`, `mobile`, `tablet`, `tv`, `unknown`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub device: Vec<String>,
    /// Excluded devices.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_device: Vec<String>,
    /// Allowed channels (`web`, `app`, `email`, `push`, `in_store`, `unknown`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub channel: Vec<String>,
    /// Excluded channels.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_channel: Vec<String>,
    /// Allowed dayparts (`morning`, `midday`, `afternoon`, `evening`, `night`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub daypart: Vec<String>,
    /// Excluded dayparts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_daypart: Vec<String>,
    /// Allowed weekdays (`monday` … `sunday`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub weekday: Vec<String>,
    /// Excluded weekdays.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_weekday: Vec<String>,
    /// Allowed weather (`clear`, `cloudy`, `rain`, `snow`, `hot`, `cold`, `unknown`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub weather: Vec<String>,
    /// Excluded weather.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_weather: Vec<String>,
    /// Allowed region codes (exact strings, e.g. `FR`, `US-CA`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub region: Vec<String>,
    /// Excluded region codes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_region: Vec<String>,
    /// Rules on free attributes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<AttributeRuleSpec>,
}

/// A rule on one free context attribute: its value must be in `in` (when non-empty) and
/// not in `not_in`. An absent attribute fails a non-empty `in` and passes `not_in`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttributeRuleSpec {
    /// The attribute's key.
    pub key: String,
    /// Allowed values.
    #[serde(default, rename = "in", skip_serializing_if = "Vec::is_empty")]
    pub any_of: Vec<String>,
    /// Excluded values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_in: Vec<String>,
}

/// A soft context rule: when `when` holds, the creative's score is multiplied by
/// `factor` (finite, > 0; above 1 promotes, below 1 demotes).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoostSpec {
    /// The rule.
    pub when: ConditionSpec,
    /// The multiplier, from [`MIN_BOOST_FACTOR`](crate::limits::MIN_BOOST_FACTOR) (1e-6) to
    /// [`MAX_BOOST_FACTOR`](crate::limits::MAX_BOOST_FACTOR) (100).
    pub factor: f64,
}

/// When a creative may run: from `start` (inclusive) to `end` (exclusive). Each is
/// Unix seconds or an RFC 3339 string such as `"2026-12-01T00:00:00Z"`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSpec {
    /// First moment it may run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<Timestamp>,
    /// First moment it may no longer run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<Timestamp>,
}

/// A frequency cap: at most `impressions` per person per `window_seconds`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FrequencyCapSpec {
    /// Most impressions in the window (≥ 1).
    pub impressions: u32,
    /// The window's length in seconds (1 ..= 366 days).
    pub window_seconds: u64,
}

/// A moment: Unix seconds, or an RFC 3339 date-time string.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Timestamp {
    /// Seconds since 1970-01-01T00:00:00Z.
    Unix(i64),
    /// `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`, or a plain date `YYYY-MM-DD` (midnight UTC).
    Text(String),
}

impl Timestamp {
    /// Unix seconds, or a message saying what is wrong with the text.
    pub fn to_unix(&self) -> std::result::Result<i64, String> {
        match self {
            Timestamp::Unix(s) => Ok(*s),
            Timestamp::Text(t) => parse_rfc3339(t),
        }
    }
}

/// Parses an RFC 3339 date-time or a plain date into Unix seconds (see
/// [`crate::time::parse_rfc3339`]).
pub use crate::time::parse_rfc3339;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rfc3339_with_offsets_and_fractions() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(parse_rfc3339("2026-11-23T12:30:00Z"), Ok(1_795_437_000));
        assert_eq!(parse_rfc3339("2026-11-23T13:30:00.250+01:00"), Ok(1_795_437_000));
        assert_eq!(parse_rfc3339("2026-11-23T07:30:00-05:00"), Ok(1_795_437_000));
        assert_eq!(parse_rfc3339("2026-11-23"), Ok(1_795_392_000));
        assert_eq!(parse_rfc3339("2024-02-29T00:00:00Z"), Ok(1_709_164_800));
    }

    #[test]
    fn a_real_date_past_the_last_supported_moment_is_said_to_be_so() {
        // A real date, read as "for ever", not a malformed one.
        for text in ["9999-12-31", "9999-12-31T12:00:00Z", "9999-12-30T23:00:00Z"] {
            assert_eq!(
                parse_rfc3339(text).unwrap_err(),
                format!(
                    "'{text}' is after the latest moment supported, 9999-12-30T22:00:00Z (a schedule with no \
                     end runs for ever)"
                )
            );
        }
        assert!(parse_rfc3339("9999-12-30T21:59:59Z").is_ok());
        assert_eq!(parse_rfc3339("9999-02-30").unwrap_err(), "'9999-02-30' is not a real date");
    }

    #[test]
    fn rejects_malformed_dates_with_the_text() {
        for bad in [
            "",
            "2026",
            "2026-13-01",
            "2026-02-30",
            "2026-11-23T25:00:00Z",
            "2026-11-23T12:00:00",
            "2026-11-23T12:00:00+1",
            "tomorrow",
        ] {
            let err = parse_rfc3339(bad).unwrap_err();
            assert!(err.contains(&format!("'{bad}'")), "{err}");
        }
    }
}
