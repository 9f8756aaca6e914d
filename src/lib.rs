//! # persona-engine
//!
//! Picks the right creative for the right person at the right moment, in process, in
//! microseconds, without allocating.
//!
//! The 30-second tour:
//! - a [`CatalogSpec`] (JSON) lists the persona menu, the placements and the creatives,
//!   each tagged with the personas it speaks to; [`Catalog::compile`] validates it;
//! - a [`Profile`] holds a person's persona scores (0..=9), consent per data class,
//!   relationship stage and declared likes/dislikes; a [`PersonaModel`] can compute the
//!   scores from signals;
//! - a [`Context`] describes the moment (time, device, channel, region, weather);
//! - [`Selector::select`] returns the best k creatives with a score, a propensity and a
//!   [`Reason`], into a caller-owned [`Selection`];
//! - in a live service, an [`Engine`] serves the current selector and swaps in new
//!   catalog versions while other threads select and record, carrying what was learned
//!   over; [`durable`] writes snapshots atomically, and [`limits`] lists every limit on
//!   input.
//!
//! ```
//! use persona_engine::{sample, Context, Device, Selector, SelectorConfig};
//!
//! let selector = Selector::new(sample::catalog().unwrap(), SelectorConfig::default()).unwrap();
//! let hero = selector.placement("home_hero").unwrap();
//! let now = sample::NOW;
//! let mut person = selector.new_profile(now - 90 * 86_400);
//! person.visits = 12;
//! person.consent = persona_engine::DataClasses::ALL;
//! person.set_score(selector.catalog().menu(), "Luxury Travel", 9, persona_engine::DataClasses::NONE).unwrap();
//! let ctx = Context::at(now).with_device(Device::Desktop);
//! let mut picks = selector.new_selection(3);
//! selector.select(&person, &ctx, hero, &mut picks).unwrap();
//! for pick in picks.picks() {
//!     println!("{} because {}", selector.catalog().creative_id(pick.creative), selector.explain(pick));
//! }
//! ```
#![deny(unsafe_code, missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod assemble;
pub mod catalog;
pub mod context;
pub mod coverage;
pub mod durable;
pub mod engine;
pub mod error;
pub mod eval;
pub mod feedback;
#[allow(unsafe_code)]
pub mod ffi;
#[cfg(feature = "redis")]
pub mod fleet;
pub mod holdout;
pub mod learn;
pub mod limits;
pub mod model;
pub mod persona;
pub mod profile;
pub mod sample;
pub mod select;
pub mod simulate;
pub mod suggest;
pub mod symbol;
pub mod time;

pub use assemble::{Assembly, SlotChoice, SlotSpec, TemplateSpec, VariantSpec};
pub use catalog::{Catalog, CatalogSpec, Component, CreativeId, CreativeSpec, Intimacy, PlacementId};
pub use context::{Channel, Context, Daypart, Device, Weather, Weekday};
pub use engine::{Engine, SwapReport, Version};
pub use error::{Error, Report, Result};
pub use feedback::{Feedback, FeedbackKind};
pub use learn::{Counts, LearnedStats, LearningConfig, Policy, PriorSpread, StatsSnapshot};
pub use model::{PersonaModel, PersonaModelSpec};
pub use persona::{MenuKey, PersonaId, PersonaMenu, PersonaScores};
pub use profile::{Consent, DataClass, DataClasses, Profile, ProfileSpec, RelationshipStage, Signal};
pub use select::{FatigueConfig, Pick, Reason, ReasonKind, Selection, Selector, SelectorConfig};
pub use symbol::Symbol;

/// The code blocks of the README and of the guides under `docs/`, compiled and run as
/// doctests (`cargo test --doc`) against the shipped sample catalog, so every snippet a
/// reader copies works as written. Blocks marked `text`, `sh`, `json` or `c` are not
/// Rust; the C blocks are compiled by `tests/c_clients.rs`.
#[cfg(doctest)]
pub mod guides {
    #[doc = include_str!("../README.md")]
    pub struct Readme;
    #[doc = include_str!("../docs/catalog.md")]
    pub struct Catalog;
    #[doc = include_str!("../docs/c-api.md")]
    pub struct CApi;
    #[doc = include_str!("../docs/coverage.md")]
    pub struct Coverage;
    #[doc = include_str!("../docs/decision-log.md")]
    pub struct DecisionLog;
    #[doc = include_str!("../docs/decisions.md")]
    pub struct Decisions;
    #[doc = include_str!("../docs/evaluation.md")]
    pub struct Evaluation;
    #[doc = include_str!("../docs/guarantees.md")]
    pub struct Guarantees;
    #[doc = include_str!("../docs/layout.md")]
    pub struct Layout;
    #[doc = include_str!("../docs/learning.md")]
    pub struct Learning;
    #[doc = include_str!("../docs/limits.md")]
    pub struct Limits;
    #[doc = include_str!("../docs/performance.md")]
    pub struct Performance;
    #[doc = include_str!("../docs/persona-modeling.md")]
    pub struct PersonaModeling;
    #[doc = include_str!("../docs/scoring.md")]
    pub struct Scoring;
    #[doc = include_str!("../docs/service.md")]
    pub struct Service;
    #[doc = include_str!("../docs/simulation-baseline.md")]
    pub struct SimulationBaseline;
    #[doc = include_str!("../docs/simulation.md")]
    pub struct Simulation;
    /// Needs the `redis` feature (and a Redis server to run), so its snippets are
    /// compiled when that feature is on.
    #[cfg(feature = "redis")]
    #[doc = include_str!("../docs/fleet.md")]
    pub struct Fleet;
}
