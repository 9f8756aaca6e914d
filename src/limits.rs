//! Every limit the engine enforces on what it is given, in one place. Each is checked
//! before the work it bounds and refused with an error that names the limit (or the
//! field), so a malformed or hostile document costs at most memory proportional to the
//! limit and never a panic. The README's "Guarantees and limits" lists them with the
//! tests that prove them.
//!
//! Documents, checked before parsing ([`Error::TooLarge`](crate::Error::TooLarge)):
//! [`MAX_SPEC_BYTES`], [`MAX_PROFILE_BYTES`], [`MAX_MODEL_BYTES`],
//! [`MAX_SNAPSHOT_BYTES`]. Contents, checked while compiling
//! ([`Error::Invalid`](crate::Error::Invalid) /
//! [`Error::InvalidCreative`](crate::Error::InvalidCreative), naming the field):
//! the rest.

pub use crate::catalog::{
    MAX_ATTRIBUTES, MAX_ATTRIBUTE_LEN, MAX_BOOSTS, MAX_CREATIVES, MAX_ID_LEN, MAX_PAYLOAD, MAX_PLACEMENTS,
    MAX_SPEC_BYTES, MAX_TAGS,
};
pub use crate::model::MAX_MODEL_BYTES;
pub use crate::persona::{MAX_PERSONAS, MAX_PERSONA_NAME};
pub use crate::profile::{MAX_ENGAGEMENTS, MAX_EXPOSURES, MAX_PROFILE_BYTES, MAX_SIGNALS, MAX_SUPPRESSED};
pub use crate::select::MAX_K;

/// The largest statistics snapshot in JSON, in bytes (256 MiB: room for every cell of a
/// catalog of [`MAX_CREATIVES`]): [`StatsSnapshot::from_json`](crate::StatsSnapshot::from_json)
/// and the file loaders refuse a larger one before parsing it.
pub const MAX_SNAPSHOT_BYTES: usize = 256 * 1024 * 1024;
