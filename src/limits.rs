//! Every limit the engine enforces on what it is given, in one place. Each is checked
//! before or while doing the work it bounds and refused with an error that names the
//! limit (or the field), so a malformed or hostile document costs at most memory
//! proportional to the limit and never a panic. The README's "Guarantees and limits"
//! lists them with the tests that prove them.
//!
//! Documents, checked before parsing ([`Error::TooLarge`]):
//! [`MAX_SPEC_BYTES`], [`MAX_PROFILE_BYTES`], [`MAX_MODEL_BYTES`],
//! [`MAX_SNAPSHOT_BYTES`]; a decision log line, checked while reading it:
//! [`MAX_LOG_LINE_BYTES`].
//!
//! Counts, checked *while parsing* JSON, so refusing an over-limit list never builds
//! the list: [`MAX_CREATIVES`] (a catalog spec's creatives are counted before any is
//! built), [`MAX_TAGS`], [`MAX_BOOSTS`], [`MAX_ATTRIBUTES`], [`MAX_ATTRIBUTE_RULES`],
//! [`MAX_PLACEMENTS`] and
//! [`MAX_PERSONAS`] in a catalog spec; [`MAX_SIGNALS`], [`MAX_EXPOSURES`],
//! [`MAX_ENGAGEMENTS`], [`MAX_SUPPRESSED`] and [`MAX_PERSONAS`] (scores, likes,
//! dislikes) in a profile; [`MAX_SNAPSHOT_CREATIVES`] and [`MAX_SNAPSHOT_CELLS`] in a
//! statistics snapshot; [`MAX_PERSONAS`] in a persona model. The error names the field
//! and the limit, with the line and column:
//! `catalog spec: field 'creatives': more than 1000000 creatives (MAX_CREATIVES) at line 1 column …`.
//! The same counts are checked again when a spec built in code is compiled
//! ([`Error::Invalid`] / [`Error::InvalidCreative`], naming the field), with the
//! remaining limits (lengths, payload size, persona tag weights: [`MAX_TAG_WEIGHT`],
//! [`MIN_TAG_WEIGHT`]; priorities: [`MIN_PRIORITY`], [`MAX_PRIORITY`]; boosts:
//! [`MIN_BOOST_FACTOR`], [`MAX_BOOST_FACTOR`], [`MIN_BOOST_PRODUCT`],
//! [`MAX_BOOST_PRODUCT`]; persona model weights and biases: [`MAX_MODEL_WEIGHT`]).
//!
//! Learned counts, checked by `record`, `merge` and `load`: [`MAX_EVENT_COUNT`],
//! [`MAX_MICROS`].
//!
//! Messages: an error quotes at most [`QUOTE_BYTES`] bytes of any input value
//! ([`quote`](crate::error::quote)).

use std::fs::File;
use std::io::Read;
use std::path::Path;

pub(crate) mod bounded;

pub use crate::assemble::{MAX_SLOTS, MAX_TEMPLATE_THEMES, MAX_VARIANTS, MAX_VARIANT_RULES};
pub use crate::catalog::{
    MAX_ATTRIBUTES, MAX_ATTRIBUTE_LEN, MAX_ATTRIBUTE_RULES, MAX_BOOSTS, MAX_BOOST_FACTOR, MAX_BOOST_PRODUCT,
    MAX_CREATIVES, MAX_ID_LEN, MAX_PAYLOAD, MAX_PLACEMENTS, MAX_PRIORITY, MAX_SPEC_BYTES, MAX_TAGS,
    MAX_TAG_WEIGHT, MIN_BOOST_FACTOR, MIN_BOOST_PRODUCT, MIN_PRIORITY, MIN_TAG_WEIGHT,
};
pub use crate::error::QUOTE_BYTES;
pub use crate::model::MAX_MODEL_BYTES;
pub use crate::persona::{MAX_PERSONAS, MAX_PERSONA_NAME};
pub use crate::profile::{
    MAX_ENGAGEMENTS, MAX_EXPOSURES, MAX_PROFILE_BYTES, MAX_SIGNALS, MAX_SIGNAL_NAME, MAX_SUPPRESSED,
};
pub use crate::select::MAX_K;

use crate::error::{Error, Result};

/// The largest statistics snapshot in JSON, in bytes (1 GiB: a creative that has met
/// every device, daypart and segment of a 40-persona menu takes about 10 KiB with its
/// model weights, so about 100,000 such creatives):
/// [`StatsSnapshot::from_json`](crate::StatsSnapshot::from_json) and the file loaders
/// refuse a larger one before parsing it, and the file writers refuse to write one.
pub const MAX_SNAPSHOT_BYTES: usize = 1024 * 1024 * 1024;

/// The most creatives a statistics snapshot may hold (2,000,000): those of a catalog
/// of [`MAX_CREATIVES`] plus as many dormant ones an `Engine` keeps.
pub const MAX_SNAPSHOT_CREATIVES: usize = 2 * MAX_CREATIVES;

/// The most cells (device, daypart or segment entries) one creative of a statistics
/// snapshot may hold (9,217): every device and daypart, and a segment for each persona
/// of several menus the creative lived through. An `Engine` keeps at most
/// [`MAX_DORMANT_CELLS`] of one creative's cells for personas its menu lacks, and its
/// menu adds at most [`MAX_PERSONAS`] + 1 (a segment per persona and the one for people
/// with no score), so whatever it saves loads again.
pub const MAX_SNAPSHOT_CELLS: usize = MAX_DORMANT_CELLS + MAX_PERSONAS + 1;

/// The most cells of one kind an `Engine` keeps per creative for what its catalog lacks
/// (8,192: a segment for each persona of eight full menus the creative lived through).
pub const MAX_DORMANT_CELLS: usize = 8 * MAX_PERSONAS;

/// The most learned-model entries a statistics snapshot may hold (4,194,304: one per
/// 64 bytes of the largest snapshot, the least a written entry takes).
pub const MAX_SNAPSHOT_MODEL_ENTRIES: usize = MAX_SNAPSHOT_BYTES / 64;

/// The longest fleet instance id, in bytes (256, as [`MAX_ID_LEN`]). Every fleet log
/// entry carries its instance's id among its short fields, which readers bound by
/// [`MAX_ENTRY_FIELDS_BYTES`] (4 KiB): at this length the fields this crate writes
/// (`fleet`, `instance`, `seq`, `kind`) take at most 325 bytes, far within it. It also
/// keeps the id whole where it is quoted: in an error message ([`QUOTE_BYTES`]) and in
/// the short fields the Redis log returns for an entry it withholds (values of up to
/// 256 bytes), which name the entry. `FleetSync::join` refuses a longer id, an empty
/// one, and one with a control character (which a log line would break on), since every
/// other instance would have to skip all of its entries.
pub const MAX_INSTANCE_ID_LEN: usize = 256;

/// The most bytes the fields of a fleet log entry other than its `body` may take
/// together, names and values (4 KiB): those this crate writes (`fleet`, `instance`,
/// `seq`, `kind`) take at most 325 with an instance id of [`MAX_INSTANCE_ID_LEN`] (256)
/// bytes. A larger entry is withheld by the log and skipped, as one with a body past its
/// limit is.
pub const MAX_ENTRY_FIELDS_BYTES: usize = 4096;

/// The smallest bound on one fleet delta entry's body (`FleetConfig::max_delta_bytes`),
/// in bytes (16 KiB). A delta larger than its bound is split into several entries, down
/// to single cells and model weights; the largest of those the engine can export, with
/// its creative's id and a part's header, is under 2 KiB (ids at most [`MAX_ID_LEN`],
/// persona names at most [`MAX_PERSONA_NAME`], attribute names and values at most
/// [`MAX_ATTRIBUTE_LEN`] bytes, each at most twice as long escaped in JSON), so at this
/// bound or above every delta splits.
pub const MIN_DELTA_ENTRY_BYTES: usize = 16 * 1024;

/// The largest bound on one fleet delta entry's body (`FleetConfig::max_delta_bytes`),
/// in bytes (512 MiB − 4 KiB): with its short fields (at most [`MAX_ENTRY_FIELDS_BYTES`],
/// 4 KiB) an entry stays within Redis's default limit on one value
/// (`proto-max-bulk-len`, 512 MiB), which refuses a larger one however often it is
/// retried, and within the [`MAX_SNAPSHOT_BYTES`] every reader takes.
pub const MAX_DELTA_ENTRY_BYTES: usize = 512 * 1024 * 1024 - MAX_ENTRY_FIELDS_BYTES;

/// The longest line of a decision log (JSON Lines or OBD CSV), in bytes (1 MiB): a
/// longer line is an error naming the line, found without holding more than this much
/// of it. A decision with 1,000 eligible creatives is about 30 KiB.
pub const MAX_LOG_LINE_BYTES: usize = 1024 * 1024;

/// The largest impression, click or conversion count of one statistics cell (2^53,
/// about 9·10^15, the largest count an `f64` holds exactly). `record` and `merge` refuse
/// an event that would pass it and every snapshot with a count above it is refused, so a
/// snapshot the engine wrote always loads, and a forged one cannot pin a counter at the
/// top of its range.
pub const MAX_EVENT_COUNT: u64 = 1 << 53;

/// The largest `value_micros` or `expected_micros` of one statistics cell (2^63 − 1
/// millionths: room for 9·10^6 conversions at the largest value), enforced like
/// [`MAX_EVENT_COUNT`].
pub const MAX_MICROS: u64 = i64::MAX as u64;

/// The largest magnitude of a persona model's weight or bias (1e12). A persona's logit
/// is its bias plus weight × value × decay summed over the profile's signals, each value
/// a finite `f32` (at most about 3.4·10^38) and each decay at most 1, so with
/// [`MAX_SIGNALS`] signals every partial sum stays within 1e12 + 1024 · 1e12 · 3.4·10^38
/// ≈ 3.5·10^53, whatever the order: far from `f64::MAX` (1.8·10^308), so no sum reaches
/// ±∞ (and +∞ − ∞, a NaN score), its square stays finite too, and even a profile built in
/// code past [`MAX_SIGNALS`] would need 10^257 signals to overflow. A logistic model
/// saturates at a logit of about ±37, so a weight this large only matters for signal
/// values below 1e-11: no model needs more. [`PersonaModel::compile`](crate::PersonaModel::compile)
/// (and so every JSON load) refuses a larger one; training divides each fitted weight by
/// its signal's root mean square and refuses to produce one past the bound, naming the
/// signal.
pub const MAX_MODEL_WEIGHT: f64 = 1e12;

/// The limits counted while parsing, one marker type per counted field.
pub(crate) mod counted {
    use super::bounded::limit;
    use super::*;

    limit!(
        /// A catalog spec's creatives.
        Creatives, MAX_CREATIVES, "creatives", "creatives", "MAX_CREATIVES"
    );
    limit!(
        /// A catalog spec's templates.
        Templates, MAX_CREATIVES, "templates", "templates", "MAX_CREATIVES"
    );
    limit!(
        /// A catalog spec's attribute rules.
        AttributeRules, MAX_ATTRIBUTE_RULES, "attribute_rules", "attribute rules", "MAX_ATTRIBUTE_RULES"
    );
    limit!(
        /// One template's slots.
        Slots, MAX_SLOTS, "slots", "slots on one template", "MAX_SLOTS"
    );
    limit!(
        /// One slot's variants.
        Variants, MAX_VARIANTS, "variants", "variants in one slot", "MAX_VARIANTS"
    );
    limit!(
        /// One variant's requires.
        VariantRequires, MAX_VARIANT_RULES, "requires", "required variants on one variant", "MAX_VARIANT_RULES"
    );
    limit!(
        /// One variant's excludes.
        VariantExcludes, MAX_VARIANT_RULES, "excludes", "excluded variants on one variant", "MAX_VARIANT_RULES"
    );
    limit!(
        /// A catalog spec's persona menu.
        MenuPersonas, MAX_PERSONAS, "personas", "personas", "MAX_PERSONAS"
    );
    limit!(
        /// A catalog spec's placements.
        Placements, MAX_PLACEMENTS, "placements", "placements", "MAX_PLACEMENTS"
    );
    limit!(
        /// The placements one creative fits.
        CreativePlacements, MAX_PLACEMENTS, "placements", "placements on one creative", "MAX_PLACEMENTS"
    );
    limit!(
        /// One creative's persona tags.
        Tags, MAX_TAGS, "personas", "persona tags on one creative", "MAX_TAGS"
    );
    limit!(
        /// One creative's boosts.
        Boosts, MAX_BOOSTS, "boosts", "boosts on one creative", "MAX_BOOSTS"
    );
    limit!(
        /// One creative's attributes.
        Attributes, MAX_ATTRIBUTES, "attributes", "attributes on one creative", "MAX_ATTRIBUTES"
    );
    limit!(
        /// A profile's persona scores.
        Scores, MAX_PERSONAS, "persona_scores", "persona scores", "MAX_PERSONAS"
    );
    limit!(
        /// A profile's signals.
        Signals, MAX_SIGNALS, "signals", "signals", "MAX_SIGNALS"
    );
    limit!(
        /// A profile's likes.
        Likes, MAX_PERSONAS, "likes", "names", "MAX_PERSONAS"
    );
    limit!(
        /// A profile's dislikes.
        Dislikes, MAX_PERSONAS, "dislikes", "names", "MAX_PERSONAS"
    );
    limit!(
        /// A profile's exposures.
        Exposures, MAX_EXPOSURES, "exposures", "exposures", "MAX_EXPOSURES"
    );
    limit!(
        /// A profile's suppressed creatives.
        Suppressed, MAX_SUPPRESSED, "suppressed", "suppressed creatives", "MAX_SUPPRESSED"
    );
    limit!(
        /// A profile's engagements.
        Engagements, MAX_ENGAGEMENTS, "engagements", "engagements", "MAX_ENGAGEMENTS"
    );
    limit!(
        /// A statistics snapshot's creatives.
        SnapshotCreatives, MAX_SNAPSHOT_CREATIVES, "creatives", "creatives", "MAX_SNAPSHOT_CREATIVES"
    );
    limit!(
        /// A snapshot creative's device cells.
        DeviceCells, MAX_SNAPSHOT_CELLS, "devices", "cells on one creative", "MAX_SNAPSHOT_CELLS"
    );
    limit!(
        /// A snapshot creative's daypart cells.
        DaypartCells, MAX_SNAPSHOT_CELLS, "dayparts", "cells on one creative", "MAX_SNAPSHOT_CELLS"
    );
    limit!(
        /// A snapshot creative's segment cells.
        SegmentCells, MAX_SNAPSHOT_CELLS, "segments", "cells on one creative", "MAX_SNAPSHOT_CELLS"
    );
    limit!(
        /// A snapshot's learned-model entries.
        ModelEntries, MAX_SNAPSHOT_MODEL_ENTRIES, "model", "model entries", "MAX_SNAPSHOT_MODEL_ENTRIES"
    );
    limit!(
        /// A persona model's personas.
        ModelPersonas, MAX_PERSONAS, "personas", "personas", "MAX_PERSONAS"
    );
}

/// Reads a UTF-8 file of at most `limit` bytes: a larger one is refused (by its size
/// before reading, and by reading at most `limit + 1` bytes for files that do not know
/// their size, such as pipes). `what` and `limit_name` go into the error.
pub(crate) fn read_limited(
    path: &Path,
    what: &'static str,
    limit: usize,
    limit_name: &'static str,
) -> Result<String> {
    let io_error = |source| Error::Io { path: path.display().to_string(), source };
    let file = File::open(path).map_err(io_error)?;
    let size = file.metadata().map_err(io_error)?.len();
    if size > limit as u64 {
        return Err(Error::TooLarge { what, size, limit: limit as u64, limit_name });
    }
    let mut text = String::with_capacity(size as usize);
    file.take(limit as u64 + 1).read_to_string(&mut text).map_err(io_error)?;
    Error::check_size(what, text.len(), limit, limit_name)?;
    Ok(text)
}

/// Reads a document file with [`read_limited`] and parses it with `parse`; an empty
/// (or blank) file and a parse error both become [`Error::InFile`], naming the file.
pub(crate) fn parse_file<T>(
    path: &Path,
    what: &'static str,
    limit: usize,
    limit_name: &'static str,
    parse: impl FnOnce(&str) -> Result<T>,
) -> Result<T> {
    let text = read_limited(path, what, limit, limit_name)?;
    let in_file = |source| Error::InFile { path: path.display().to_string(), what, source };
    if text.trim().is_empty() {
        return Err(in_file(None));
    }
    parse(&text).map_err(|error| in_file(Some(Box::new(error))))
}

/// What [`read_line_limited`] found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Line {
    /// The end of the input.
    End,
    /// A line (without its `\n`) is in the buffer.
    Read,
    /// A line longer than the limit, of this many bytes (without its `\n`), was
    /// skipped: the buffer holds at most the limit's worth of its start.
    TooLong(u64),
}

/// Reads one line of `input` into `buf` (cleared first), holding at most `max` bytes of
/// it: a longer line is skipped to its end in chunks, without being kept, and reported
/// as [`Line::TooLong`], so the next call reads the line after it.
pub(crate) fn read_line_limited(
    input: &mut impl std::io::BufRead,
    buf: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Line> {
    buf.clear();
    let mut total: u64 = 0;
    let mut any = false;
    loop {
        let chunk = match input.fill_buf() {
            Ok(chunk) => chunk,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            break;
        }
        any = true;
        let (part, used, done) = match chunk.iter().position(|b| *b == b'\n') {
            Some(at) => (&chunk[..at], at + 1, true),
            None => (chunk, chunk.len(), false),
        };
        total += part.len() as u64;
        let take = part.len().min(max.saturating_sub(buf.len()));
        if take > 0 {
            let need = buf.len() + take;
            if need > buf.capacity() {
                // Grow by doubling, but never past `max`.
                let target = (buf.capacity() * 2).max(need).min(max);
                buf.reserve_exact(target - buf.len());
            }
            buf.extend_from_slice(&part[..take]);
        }
        input.consume(used);
        if done {
            break;
        }
    }
    if !any {
        return Ok(Line::End);
    }
    if total > max as u64 {
        buf.clear();
        return Ok(Line::TooLong(total));
    }
    Ok(Line::Read)
}

/// The lines of `input` as [`read_line_limited`] reads them (`\n` removed): a line
/// longer than `max` bytes, unreadable or not UTF-8 is an `Err` with the problem.
pub(crate) struct Lines<R> {
    input: R,
    buf: Vec<u8>,
    max: usize,
    limit_name: &'static str,
}

impl<R: std::io::BufRead> Lines<R> {
    /// Lines of at most `max` bytes; `limit_name` names the limit in errors.
    pub(crate) fn new(input: R, max: usize, limit_name: &'static str) -> Self {
        Lines { input, buf: Vec::new(), max, limit_name }
    }
}

impl<R: std::io::BufRead> Iterator for Lines<R> {
    type Item = std::result::Result<String, String>;

    fn next(&mut self) -> Option<Self::Item> {
        match read_line_limited(&mut self.input, &mut self.buf, self.max) {
            Ok(Line::End) => None,
            Ok(Line::Read) => Some(
                String::from_utf8(std::mem::take(&mut self.buf))
                    .map_err(|e| format!("cannot read: the line is not valid UTF-8 ({})", e.utf8_error())),
            ),
            Ok(Line::TooLong(bytes)) => Some(Err(format!(
                "the line is {bytes} bytes long, more than {} ({} bytes)",
                self.limit_name, self.max
            ))),
            Err(e) => Some(Err(format!("cannot read: {e}"))),
        }
    }
}
