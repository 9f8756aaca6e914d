//! Holdout groups that prove personalization's lift: a configured share of people get
//! the generic experience (rules without persona scores, or a named fallback policy), the
//! rest the personalized one. Assignment is a pure function of the person key and a salt
//! (a fixed, documented hash), so it is stable across requests, threads, processes and
//! crate versions. Never reads or stores anything personal beyond the opaque key.
//!
//! ```
//! use persona_engine::holdout::{Arm, Holdout, HoldoutConfig};
//!
//! let holdout = Holdout::new(&HoldoutConfig { share: 0.1, salt: "hero-2026".into(), ..Default::default() })?;
//! let arm = holdout.arm("person-7f3a");
//! assert_eq!(arm, holdout.arm("person-7f3a")); // the same person, always the same arm
//! assert!(matches!(arm, Arm::Holdout | Arm::Personalized));
//! # Ok::<(), persona_engine::Error>(())
//! ```
//!
//! Serving a placement with a holdout (the caller applies it; `Selector::select` is
//! unchanged):
//!
//! ```
//! use persona_engine::holdout::{Holdout, HoldoutConfig};
//! # use persona_engine::{sample, Context, Selector, SelectorConfig};
//! # let personalized = Selector::new(sample::catalog()?, SelectorConfig::default())?;
//! # let profile = personalized.new_profile(sample::NOW);
//! # let context = Context::at(sample::NOW);
//! # let hero = personalized.placement("home_hero")?;
//! let holdout = Holdout::new(&HoldoutConfig { share: 0.05, salt: "hero-2026".into(), ..Default::default() })?;
//! let generic = holdout.generic_selector(&personalized)?;   // once, next to the selector
//! let mut scratch = personalized.new_profile(0);             // reused across requests
//! let mut selection = personalized.new_selection(3);
//! let arm = holdout.select("person-7f3a", &personalized, &generic, &profile, &mut scratch,
//!                          &context, hero, &mut selection)?;
//! // log it: DecisionRecord::from_selection(...).with_arm(arm)
//! # assert!(!selection.is_empty());
//! # Ok::<(), persona_engine::Error>(())
//! ```

use serde::{Deserialize, Serialize};

use crate::catalog::PlacementId;
use crate::context::Context;
use crate::error::{Error, Result};
use crate::learn::Policy;
use crate::profile::Profile;
use crate::select::{Selection, Selector, SelectorConfig};

/// Which experience a person gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arm {
    /// Held out: the generic experience, the baseline the lift is measured against.
    Holdout,
    /// The personalized experience.
    Personalized,
}

impl Arm {
    /// The name the decision log writes: `"holdout"` or `"personalized"`.
    pub fn name(self) -> &'static str {
        match self {
            Arm::Holdout => "holdout",
            Arm::Personalized => "personalized",
        }
    }

    /// Parses [`Arm::name`].
    pub fn parse(text: &str) -> Option<Arm> {
        match text {
            "holdout" => Some(Arm::Holdout),
            "personalized" => Some(Arm::Personalized),
            _ => None,
        }
    }
}

/// How a placement holds people out (serde: `{"share": 0.05, "salt": "hero-2026",
/// "fallback_policy": "rules"}`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HoldoutConfig {
    /// The share of people held out, in `[0, 1]` (0 disables the holdout). 5 % to 10 %
    /// is common; see `docs/evaluation.md` for how long a share takes to show a lift.
    pub share: f64,
    /// Mixed into the hash: a new salt reshuffles everyone (start a new experiment);
    /// the same salt keeps every person in their arm.
    #[serde(default)]
    pub salt: String,
    /// The policy of the generic experience, as [`crate::eval::policy_name`] writes it
    /// (default `rules`). Held-out people are always scored without persona scores or
    /// declared likes, so this only changes how context and priority rank creatives.
    #[serde(default = "rules")]
    pub fallback_policy: String,
}

fn rules() -> String {
    "rules".into()
}

impl Default for HoldoutConfig {
    fn default() -> Self {
        HoldoutConfig { share: 0.0, salt: String::new(), fallback_policy: rules() }
    }
}

/// 64-bit FNV-1a over `bytes`, continuing from `hash` (start from [`FNV_OFFSET`]).
pub fn fnv1a(mut hash: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// The FNV-1a 64-bit offset basis.
pub const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// The SplitMix64 finalizer (Steele, Lea and Flood 2014): spreads FNV's low-entropy
/// high bits over the whole word.
pub fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The assignment hash of a person key under a salt:
/// `splitmix64(fnv1a(fnv1a(FNV_OFFSET, salt) ^ 0xff, key))`, where `^ 0xff` is one more
/// FNV-1a step over a 0xff byte (never valid UTF-8, so `"ab" + "c"` and `"a" + "bc"`
/// differ). Fixed forever: changing it would move people between arms.
pub fn assignment_hash(salt: &str, key: &str) -> u64 {
    let h = fnv1a(FNV_OFFSET, salt.as_bytes());
    let h = fnv1a(h, &[0xff]);
    splitmix64(fnv1a(h, key.as_bytes()))
}

/// A placement's holdout, ready to assign people (see [`HoldoutConfig`]).
#[derive(Clone, Debug)]
pub struct Holdout {
    config: HoldoutConfig,
    /// Hashes below this (the top 53 bits compared) are held out.
    threshold: u64,
    policy: Policy,
}

impl Holdout {
    /// Checks the configuration: `share` in `[0, 1]`, a known `fallback_policy`. Errors
    /// name the field.
    pub fn new(config: &HoldoutConfig) -> Result<Self> {
        if !(0.0..=1.0).contains(&config.share) {
            return Err(Error::invalid(
                "holdout",
                "share",
                format!("{} is not a share in [0, 1] (0.05 holds out 5 % of people)", config.share),
            ));
        }
        let policy = crate::eval::parse_policy(&config.fallback_policy).map_err(|e| {
            Error::invalid(
                "holdout",
                "fallback_policy",
                format!("'{}': {e}", crate::error::quote(&config.fallback_policy)),
            )
        })?;
        // share · 2^53, exact for every share a person would type.
        let threshold = (config.share * (1u64 << 53) as f64) as u64;
        if config.share > 0.0 && threshold == 0 {
            return Err(Error::invalid(
                "holdout",
                "share",
                format!(
                    "{:e} is below 2^-53 (about 1.1e-16), the smallest share the assignment can hold out: \
                     it would hold out nobody; use 0 for no holdout",
                    config.share
                ),
            ));
        }
        Ok(Holdout { config: config.clone(), threshold, policy })
    }

    /// Parses and checks a JSON configuration.
    pub fn from_json(json: &str) -> Result<Self> {
        let config: HoldoutConfig =
            serde_json::from_str(json).map_err(|source| Error::Json { what: "holdout", source })?;
        Holdout::new(&config)
    }

    /// The configuration.
    pub fn config(&self) -> &HoldoutConfig {
        &self.config
    }

    /// The arm of the person with opaque key `key`: held out when the top 53 bits of
    /// [`assignment_hash`] fall below `share · 2^53`. The same key and salt give the
    /// same arm on every call, thread, process and platform.
    pub fn arm(&self, key: &str) -> Arm {
        if assignment_hash(&self.config.salt, key) >> 11 < self.threshold {
            Arm::Holdout
        } else {
            Arm::Personalized
        }
    }

    /// The selector of the generic experience: the same catalog and configuration as
    /// `personalized`, under the fallback policy. Build it once, next to the
    /// personalized selector, and rebuild it when the catalog changes.
    pub fn generic_selector(&self, personalized: &Selector) -> Result<Selector> {
        let config = SelectorConfig {
            learning: crate::learn::LearningConfig { policy: self.policy, ..personalized.config().learning },
            ..*personalized.config()
        };
        Selector::new(personalized.catalog_arc().clone(), config)
    }

    /// Copies `profile` into `generic` without what personalizes: persona scores (all
    /// zero), declared likes and signals. What protects the person stays: consent,
    /// declared dislikes, exposures (frequency caps), rejections (a thumbs-down is
    /// obeyed in both arms). Reuses `generic`'s memory: once it has grown to the
    /// person's size it does not allocate.
    pub fn generic_profile(profile: &Profile, generic: &mut Profile) {
        let personas = profile.scores.len();
        if generic.scores.len() != personas {
            generic.scores = crate::persona::PersonaScores::new(personas);
        } else {
            for i in 0..personas {
                // Cannot fail: 0 is a valid score and `i` is in range.
                let _ = generic.scores.set(
                    crate::persona::PersonaId(i as u16),
                    0,
                    crate::profile::DataClasses::NONE,
                );
            }
        }
        generic.menu = profile.menu;
        generic.signals.clear();
        generic.consent = profile.consent;
        generic.first_seen = profile.first_seen;
        generic.visits = profile.visits;
        generic.likes.clear();
        generic.dislikes.clone_from(&profile.dislikes);
        generic.exposures.clone_from(&profile.exposures);
        generic.suppressed.clone_from(&profile.suppressed);
        generic.engagements.clone_from(&profile.engagements);
    }

    /// Selects for the person with key `key`: personalized people through
    /// `personalized`, held-out people through `generic` (from
    /// [`Holdout::generic_selector`]) with their profile stripped by
    /// [`Holdout::generic_profile`] into `scratch`. Returns the arm, to log with the
    /// decision (`DecisionRecord::arm`). Feedback from either arm goes to the
    /// personalized selector's `record` as usual; the generic one learns nothing it uses.
    #[allow(clippy::too_many_arguments)]
    pub fn select(
        &self,
        key: &str,
        personalized: &Selector,
        generic: &Selector,
        profile: &Profile,
        scratch: &mut Profile,
        context: &Context,
        placement: PlacementId,
        selection: &mut Selection,
    ) -> Result<Arm> {
        let arm = self.arm(key);
        match arm {
            Arm::Personalized => {
                personalized.select(profile, context, placement, selection)?;
            }
            Arm::Holdout => {
                Holdout::generic_profile(profile, scratch);
                generic.select(scratch, context, placement, selection)?;
            }
        }
        Ok(arm)
    }
}
