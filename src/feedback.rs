//! Feedback: what people did with what they were shown (impressions, clicks,
//! conversions, thumbs up/down, dismissals) and its two effects: on the person's own
//! memory (rejections obeyed on the very next pick, caps, fatigue, small affinity nudges)
//! and on the shared learned statistics every later selection uses.

use crate::catalog::CreativeId;
use crate::context::{Channel, Context, Daypart, Device, Weather, Weekday};
use crate::error::{Error, Result};
use crate::learn::features::{Person, When};
use crate::learn::Counts;
use crate::profile::Profile;
use crate::select::Selector;

/// The largest conversion value accepted, in currency units.
pub const MAX_CONVERSION_VALUE: f64 = 1e9;

/// What the person did.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FeedbackKind {
    /// The creative was shown.
    Impression,
    /// The person clicked it.
    Click,
    /// The person converted after it, for `value` (finite, 0 ..= 1e9 currency units).
    Conversion {
        /// The conversion's value.
        value: f64,
    },
    /// The person said they liked it.
    ThumbsUp,
    /// The person said they did not: never shown to them again.
    ThumbsDown,
    /// The person closed it: never shown to them again.
    Dismiss,
}

/// One reaction to one creative, with the moment it happened.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Feedback {
    /// The creative reacted to.
    pub creative: CreativeId,
    /// What happened.
    pub kind: FeedbackKind,
    /// When, Unix seconds.
    pub at: i64,
    /// The device it happened on.
    pub device: Device,
    /// The local daypart it happened in.
    pub daypart: Daypart,
    /// The channel it happened on.
    pub channel: Channel,
    /// The weather when it happened.
    pub weather: Weather,
    /// The local day of the week it happened on.
    pub weekday: Weekday,
}

impl Feedback {
    /// A reaction to `creative` in the moment `context` describes.
    pub fn new(creative: CreativeId, kind: FeedbackKind, context: &Context) -> Self {
        Feedback {
            creative,
            kind,
            at: context.at,
            device: context.device,
            daypart: context.daypart(),
            channel: context.channel,
            weather: context.weather,
            weekday: context.weekday(),
        }
    }
}

impl Selector {
    /// Records a reaction: updates the person's memory and the shared statistics.
    ///
    /// - impression: remembered for frequency caps and fatigue; counted.
    /// - click, conversion: counted (with the conversion's value); reset fatigue.
    /// - thumbs up: resets fatigue and raises the person's score of each persona the
    ///   creative is tagged with by one point (up to 9).
    /// - thumbs down: the creative is never picked for this person again, and each of
    ///   its personas loses one point (down to 0).
    /// - dismiss: never picked for this person again.
    ///
    /// Declared likes and dislikes are untouched by the nudges and still win over them.
    /// The statistics are counted under the person's current segment (their top
    /// persona). Lock-free: call it from any thread while others select.
    ///
    /// Counts are not checked against each other: a click or conversion is counted
    /// without an impression before it (events arrive out of order, on another device,
    /// under another top persona, or on another instance), so a cell may hold more clicks
    /// than impressions, and snapshots are checked for the range of each count, not for
    /// such relations.
    ///
    /// Errors for a profile made for another persona menu (as [`Selector::select`]), a
    /// creative not in this catalog, a conversion value that is negative,
    /// not finite, or above [`MAX_CONVERSION_VALUE`], a full (creative, segment) table,
    /// or a count that would pass [`MAX_EVENT_COUNT`](crate::limits::MAX_EVENT_COUNT)
    /// ([`MAX_MICROS`](crate::limits::MAX_MICROS) for values); nothing is changed then.
    pub fn record(&self, profile: &mut Profile, feedback: &Feedback) -> Result<()> {
        let cat = self.catalog();
        self.check_profile(profile)?;
        let key = cat.creative_key(feedback.creative).ok_or_else(|| Error::UnknownCreative {
            id: format!("#{}", feedback.creative.0),
            did_you_mean: Vec::new(),
        })?;
        // The shared statistics first: when they refuse the event (a full segment
        // table, a count past its range), the person's memory is left as it was too, so
        // a retry does not count an exposure twice.
        let mut counts = Counts::default();
        match feedback.kind {
            FeedbackKind::Impression => counts.impressions = 1,
            FeedbackKind::Click => counts.clicks = 1,
            FeedbackKind::Conversion { value } => {
                if !(value.is_finite() && (0.0..=MAX_CONVERSION_VALUE).contains(&value)) {
                    return Err(Error::invalid(
                        "feedback",
                        "value",
                        format!("conversion value {value} must be finite and between 0 and {MAX_CONVERSION_VALUE}"),
                    ));
                }
                counts.conversions = 1;
                counts.value_micros = (value * 1e6).round() as u64;
            }
            FeedbackKind::ThumbsUp | FeedbackKind::ThumbsDown | FeedbackKind::Dismiss => {}
        }
        if !counts.is_zero() {
            #[cfg(debug_assertions)]
            let _write = self.writes.begin();
            self.learn_from(profile, feedback, counts)?;
        }
        match feedback.kind {
            FeedbackKind::Impression => profile.remember_exposure(key, feedback.at),
            FeedbackKind::Click | FeedbackKind::Conversion { .. } => {
                profile.remember_engagement(key, feedback.at)
            }
            FeedbackKind::ThumbsUp => {
                profile.remember_engagement(key, feedback.at);
                self.nudge(profile, feedback.creative, 1);
            }
            FeedbackKind::ThumbsDown => {
                profile.suppress(key);
                self.nudge(profile, feedback.creative, -1);
            }
            FeedbackKind::Dismiss => profile.suppress(key),
        }
        Ok(())
    }

    /// Counts an impression, click or conversion in the person's segment cells, and
    /// moves the click model (impressions and clicks). All or nothing for the counts: a
    /// full segment table or an overflowing counter is an error and counts nothing.
    fn learn_from(&self, profile: &Profile, feedback: &Feedback, mut counts: Counts) -> Result<()> {
        // Inline for menus of up to 64 personas; a larger menu allocates here, off the
        // select path.
        let n = self.catalog().menu().len();
        let mut scores: smallvec::SmallVec<[u8; 64]> = smallvec::smallvec![0; n];
        let mut ranks: smallvec::SmallVec<[u8; 64]> = smallvec::smallvec![0; n];
        let segment = self.person_scores_into(profile, &mut scores, &mut ranks);
        let person = Person { scores: &scores, ranks: &ranks, segment };
        let when = When::new(
            feedback.device,
            feedback.daypart,
            feedback.channel,
            feedback.weather,
            feedback.weekday,
        );
        let c = feedback.creative.index();
        let cat = self.catalog();
        let prior = self.model_prior();
        if counts.impressions > 0 {
            let (m, _) = self.stats.predict(cat, c, &person, when, &prior, prior.base);
            counts.expected_micros = (crate::learn::model::sigmoid(m) * 1e6).round() as u64;
        }
        self.stats.add(c, segment, when.device, when.daypart, &counts)?;
        if counts.impressions > 0 || counts.clicks > 0 {
            // The context boosts and fatigue of the original request are not known here:
            // the model learns against the plain prior offset.
            self.stats.learn(cat, c, &person, when, &prior, prior.base, counts.clicks > 0).map_err(|e| {
                crate::error::Error::invalid(
                    "feedback",
                    "creative",
                    format!("the event was counted but the model could not learn from it: {e}"),
                )
            })?;
            self.note_learned(feedback.creative);
        }
        Ok(())
    }

    /// Moves the person's score of each persona the creative is tagged with by `delta`
    /// points, keeping it in 0..=9 (see [`crate::PersonaScores::nudge`]).
    fn nudge(&self, profile: &mut Profile, creative: CreativeId, delta: i8) {
        for (persona, weight) in self.catalog().tags(creative) {
            if weight <= 0.0 || profile.likes.contains(&persona) || profile.dislikes.contains(&persona) {
                continue;
            }
            profile.scores.nudge(persona, delta);
        }
    }
}
