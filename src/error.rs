//! The one error type of the crate. Every variant carries what a user needs to fix the
//! input: the creative, the field, the value. Nothing in this crate panics on user data;
//! it returns one of these instead.

use thiserror::Error;

/// Everything that can go wrong when building or using the engine.
///
/// Messages are written for the person who has to fix the input, e.g.
/// `creative 'summer-hero': field 'personas': unknown persona 'Luxury Travle'`.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// A persona name is not on the persona menu.
    #[error("unknown persona '{name}'")]
    UnknownPersona {
        /// The name that was not found.
        name: String,
    },
    /// A persona score outside `0..=9`.
    #[error("persona '{persona}': score {score} is out of range (scores are 0..=9)")]
    ScoreOutOfRange {
        /// The persona the score was for.
        persona: String,
        /// The offending score.
        score: i64,
    },
    /// A placement name that the catalog does not declare.
    #[error("unknown placement '{name}'")]
    UnknownPlacement {
        /// The name that was not found.
        name: String,
    },
    /// A creative id that the catalog does not contain.
    #[error("unknown creative '{id}'")]
    UnknownCreative {
        /// The id that was not found.
        id: String,
    },
    /// A creative in a catalog spec is invalid.
    #[error("creative '{creative}': field '{field}': {problem}")]
    InvalidCreative {
        /// The creative's id (or `#<index>` when it has no usable id).
        creative: String,
        /// The field that is wrong.
        field: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// A spec-level problem that does not belong to one creative (persona menu,
    /// placements, model, configuration).
    #[error("{what}: field '{field}': {problem}")]
    Invalid {
        /// Which document or object: `catalog`, `persona model`, `selector config`, ...
        what: &'static str,
        /// The field that is wrong.
        field: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A JSON document could not be parsed into the expected shape.
    #[error("{what}: invalid JSON: {source}")]
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
    #[error("{log} line {line}: {}", line_problem(.field.as_deref(), .problem))]
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
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file path.
        path: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
}

fn line_problem(field: Option<&str>, problem: &str) -> String {
    match field {
        Some(field) => format!("field '{field}': {problem}"),
        None => problem.to_owned(),
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
