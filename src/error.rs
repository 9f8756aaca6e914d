//! The one error type of the crate. Every variant carries what a user needs to fix the
//! input: the creative, the field, the value. Nothing in this crate panics on user data;
//! it returns one of these instead. A message quotes at most a few hundred bytes of any
//! input ([`quote`]), so a hostile document cannot make its own error huge.

use std::borrow::Cow;

use thiserror::Error;

/// The most bytes of one input value (a name, an id, a field) a message quotes: as
/// long as the longest valid creative id ([`MAX_ID_LEN`](crate::limits::MAX_ID_LEN)), so a
/// valid name is always quoted whole.
pub const QUOTE_BYTES: usize = 256;

/// The most bytes of one free-text part (a field path, a problem) a message holds; a
/// part built from [`quote`]d values is always shorter.
const PART_BYTES: usize = 1024;

/// `text` as a message may quote it: unchanged up to [`QUOTE_BYTES`] bytes, otherwise
/// its first [`QUOTE_BYTES`] bytes (cut at a character boundary) followed by
/// `… (N bytes)`, where N is the length of the whole text.
pub fn quote(text: &str) -> Cow<'_, str> {
    clip(text, QUOTE_BYTES)
}

/// `text` cut to about `max` bytes, as [`quote`] does.
fn clip(text: &str, max: usize) -> Cow<'_, str> {
    if text.len() <= max {
        return Cow::Borrowed(text);
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}… ({} bytes)", &text[..end], text.len()))
}

/// A free-text part of a message, bounded (see [`PART_BYTES`]).
fn part(text: &str) -> Cow<'_, str> {
    clip(text, PART_BYTES)
}

/// A serde_json message with every long run of text between quotes or backticks (the
/// input values serde quotes: unknown field names, bad strings) cut by [`quote`], and
/// the whole bounded, keeping the position serde_json appends.
pub(crate) fn json_message(source: &serde_json::Error) -> String {
    let text = source.to_string();
    let (message, position) = match source.line() {
        0 => (text.as_str(), ""),
        line => {
            let suffix = format!(" at line {line} column {}", source.column());
            match text.strip_suffix(&suffix) {
                Some(message) => (message, &text[message.len()..]),
                None => (text.as_str(), ""),
            }
        }
    };
    let mut out = String::new();
    let mut rest = message;
    while let Some(at) = rest.find(['`', '"']) {
        out.push_str(&quote(&rest[..at]));
        out.push_str(&rest[at..=at]);
        rest = &rest[at + 1..];
        if out.len() > PART_BYTES {
            rest = "";
            break;
        }
    }
    out.push_str(&quote(rest));
    let mut out = part(&out).into_owned();
    out.push_str(position);
    out
}

/// Everything that can go wrong when building or using the engine.
///
/// Messages are written for the person who has to fix the input, e.g.
/// `creative 'summer-hero': field 'personas': unknown persona 'Luxury Travle'`.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// A persona name is not on the persona menu.
    #[error("unknown persona '{}'{}", quote(name), crate::suggest::did_you_mean(did_you_mean))]
    UnknownPersona {
        /// The name that was not found.
        name: String,
        /// The closest names on the menu (at most 3, best first; may be empty).
        did_you_mean: Vec<String>,
    },
    /// A persona score outside `0..=9`.
    #[error("persona '{}': score {score} is out of range (scores are 0..=9)", quote(persona))]
    ScoreOutOfRange {
        /// The persona the score was for.
        persona: String,
        /// The offending score.
        score: i64,
    },
    /// A placement name that the catalog does not declare.
    #[error("unknown placement '{}'{}", quote(name), crate::suggest::did_you_mean(did_you_mean))]
    UnknownPlacement {
        /// The name that was not found.
        name: String,
        /// The closest placement names of the catalog (at most 3, best first; may be
        /// empty).
        did_you_mean: Vec<String>,
    },
    /// A creative id that the catalog does not contain.
    #[error("unknown creative '{}'{}", quote(id), crate::suggest::did_you_mean(did_you_mean))]
    UnknownCreative {
        /// The id that was not found.
        id: String,
        /// The closest creative ids of the catalog (at most 3, best first; may be
        /// empty).
        did_you_mean: Vec<String>,
    },
    /// A creative in a catalog spec is invalid.
    #[error("creative '{}': field '{field}': {}", quote(creative), part(problem))]
    InvalidCreative {
        /// The creative's id (or `#<index>` when it has no usable id).
        creative: String,
        /// The field that is wrong.
        field: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// A template (assembled creative) in a catalog spec is invalid; names the
    /// template, and the slot and variant when one is at fault, e.g.
    /// `template 'email_hero', slot 'headline', variant 'lux': field 'requires': unknown variant 'lux-img'`.
    #[error("template '{}'{}: field '{}': {}", quote(template), template_part(.slot.as_deref(), .variant.as_deref()), part(field), part(problem))]
    InvalidTemplate {
        /// The template's id.
        template: String,
        /// The slot at fault, if one is.
        slot: Option<String>,
        /// The variant at fault, if one is.
        variant: Option<String>,
        /// The field that is wrong.
        field: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A spec-level problem that does not belong to one creative (persona menu,
    /// placements, model, configuration).
    #[error("{what}: field '{}': {}", part(field), part(problem))]
    Invalid {
        /// Which document or object: `catalog`, `persona model`, `selector config`, ...
        what: &'static str,
        /// The field that is wrong.
        field: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A JSON document could not be parsed into the expected shape.
    #[error("{what}: invalid JSON: {}", json_message(source))]
    Json {
        /// Which document: `catalog spec`, `profile`, ...
        what: &'static str,
        /// The parser's message, with line and column.
        #[source]
        source: serde_json::Error,
    },
    /// A document (or file) is larger than the limit for its kind, so it was refused
    /// before parsing: the limit bounds how much memory a hostile input can make the
    /// engine allocate.
    #[error("{what}: {size} bytes is more than {limit_name} ({limit} bytes)")]
    TooLarge {
        /// Which document: `catalog spec`, `profile`, `stats snapshot`, ...
        what: &'static str,
        /// Its size in bytes (for a file: at least this much).
        size: u64,
        /// The limit in bytes.
        limit: u64,
        /// The name of the constant that sets the limit, e.g. `MAX_SPEC_BYTES`.
        limit_name: &'static str,
    },
    /// One line of a decision log (JSON Lines or CSV) is invalid; names the log, the
    /// line (1-based) and, when one field is at fault, the field, e.g.
    /// `decisions.jsonl line 17: field 'chosen[0].propensity': 0 is not in (0, 1]`.
    #[error("{} line {line}: {}", quote(log), line_problem(.field.as_deref(), .problem))]
    LogLine {
        /// The log's name (usually its file name).
        log: String,
        /// The line number, from 1.
        line: usize,
        /// The field (JSON path or CSV column) at fault, if one is.
        field: Option<String>,
        /// What is wrong.
        problem: String,
    },
    /// A creative of a JSON catalog spec does not have the expected shape: names the
    /// creative by its index in `creatives` (and its id when it has one) and the field
    /// when one is at fault, e.g. `catalog spec: creatives[3] ('lux-maldives'), field
    /// 'weight': invalid JSON: invalid type: string "high", expected f32 at line 40
    /// column 22`.
    #[error("catalog spec: creatives[{index}]{}: invalid JSON: {}", creative_part(.id.as_deref(), .field.as_deref()), json_message(source))]
    CreativeJson {
        /// The creative's index in the spec's `creatives` array (from 0).
        index: usize,
        /// Its `id`, when it has a string one.
        id: Option<String>,
        /// The field at fault, when one could be singled out.
        field: Option<String>,
        /// The parser's message, with line and column in the whole document.
        #[source]
        source: serde_json::Error,
    },
    /// A document read from a file is empty or invalid: names the file, then the
    /// problem, e.g. `catalog.json: the file is empty (expected a catalog spec in
    /// JSON)`.
    #[error("{}: {}", part(path), file_problem(what, .source.as_deref()))]
    InFile {
        /// The file path.
        path: String,
        /// Which document the file should hold: `catalog spec`, `profile`, ...
        what: &'static str,
        /// What is wrong with the document; `None` for an empty file.
        #[source]
        source: Option<Box<Error>>,
    },
    /// A file could not be read or written.
    #[error("{}: {source}", part(path))]
    Io {
        /// The file path.
        path: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
}

fn template_part(slot: Option<&str>, variant: Option<&str>) -> String {
    let mut out = String::new();
    if let Some(slot) = slot {
        out.push_str(&format!(", slot '{}'", quote(slot)));
    }
    if let Some(variant) = variant {
        out.push_str(&format!(", variant '{}'", quote(variant)));
    }
    out
}

fn creative_part(id: Option<&str>, field: Option<&str>) -> String {
    let mut out = String::new();
    if let Some(id) = id {
        out.push_str(&format!(" ('{}')", quote(id)));
    }
    if let Some(field) = field {
        out.push_str(&format!(", field '{}'", quote(field)));
    }
    out
}

fn file_problem(what: &str, source: Option<&Error>) -> String {
    match source {
        Some(error) => error.to_string(),
        None => format!("the file is empty (expected a {what} in JSON)"),
    }
}

fn line_problem(field: Option<&str>, problem: &str) -> String {
    match field {
        Some(field) => format!("field '{}': {}", part(field), part(problem)),
        None => part(problem).into_owned(),
    }
}

/// An error to return from `main`: Rust prints what `main` returns with `Debug`, so a
/// plain [`enum@Error`] would show as `Json { what: "catalog spec", source: ... }`. A
/// `Report` prints the message instead (its `Debug` is the error's `Display`), and `?`
/// converts any error into one:
///
/// ```
/// use persona_engine::{Catalog, Report};
///
/// fn main() -> Result<(), Report> {
///     let catalog = Catalog::from_json(persona_engine::sample::CATALOG_JSON)?;
///     println!("{} creatives", catalog.len());
///     Ok(())
/// }
/// ```
///
/// A failing `main` then prints `Error: catalog.json: the file is empty (expected a
/// catalog spec in JSON)` and exits with status 1.
pub struct Report(Box<dyn std::error::Error + Send + Sync>);

impl Report {
    /// The error inside.
    pub fn error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.0
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for Report {
    fn from(error: E) -> Self {
        Report(Box::new(error))
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.0, f)
    }
}

impl std::fmt::Debug for Report {
    /// The message, not the structure: this is what `main` prints.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.0, f)
    }
}

/// Shorthand for results in this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Builds an [`Error::Invalid`].
    pub(crate) fn invalid(what: &'static str, field: impl Into<String>, problem: impl Into<String>) -> Self {
        Error::Invalid { what, field: field.into(), problem: problem.into() }
    }

    /// [`Error::TooLarge`] when `size` bytes exceed `limit`.
    pub(crate) fn check_size(
        what: &'static str,
        size: usize,
        limit: usize,
        limit_name: &'static str,
    ) -> Result<()> {
        if size > limit {
            return Err(Error::TooLarge { what, size: size as u64, limit: limit as u64, limit_name });
        }
        Ok(())
    }

    /// Builds an [`Error::InvalidCreative`].
    pub(crate) fn creative(creative: &str, field: &'static str, problem: impl Into<String>) -> Self {
        Error::InvalidCreative { creative: creative.to_owned(), field, problem: problem.into() }
    }
}

/// A number as a person would write it: plain for everyday magnitudes, with an
/// exponent (`1e39`, `1e-46`) for very large or very small ones.
pub(crate) fn shown(x: f64) -> String {
    let magnitude = x.abs();
    if x.is_finite() && x != 0.0 && !(1e-4..1e6).contains(&magnitude) {
        // 15 significant digits at most, so a JSON parser's last-bit rounding
        // (1e-50 read as 9.999999999999999e-51) does not show.
        let text = format!("{x:.14e}");
        match text.split_once('e') {
            Some((mantissa, exponent)) if mantissa.contains('.') => {
                format!("{}e{exponent}", mantissa.trim_end_matches('0').trim_end_matches('.'))
            }
            _ => text,
        }
    } else {
        format!("{x}")
    }
}

/// The first control character of `name` (NUL, a line break, ...), as a problem to
/// report: names (creative ids, placements, personas) are handed to C as C strings and
/// written into logs line by line, where such a character cuts them short or splits
/// them.
pub(crate) fn control_character(name: &str) -> Option<String> {
    name.char_indices()
        .find(|(_, c)| c.is_control())
        .map(|(at, c)| format!("contains the control character U+{:04X} at byte {at}", u32::from(c)))
}
