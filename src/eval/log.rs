//! The decision log: one JSON object per line (JSON Lines) for each decision, with what
//! was known (persona scores, consent, the moment), what was eligible, what was chosen
//! with which propensity, and the reward once known. Written and read off the hot path;
//! never holds raw personal data (no signals, no ids beyond an optional opaque key).
//! The format is documented in `docs/decision-log.md`.

use std::io::{BufRead, Write};

use serde_json::{json, Map, Value};

use crate::catalog::PlacementId;
use crate::context::{Channel, Context, Daypart, Device, Weather, Weekday, MAX_UTC_OFFSET_MINUTES};
use crate::error::{quote, Error, Result};
use crate::feedback::{FeedbackKind, MAX_CONVERSION_VALUE};
use crate::holdout::Arm;
use crate::learn::Policy;
use crate::limits::bounded::ValueError;
use crate::limits::{read_line_limited, Line, MAX_LOG_LINE_BYTES};
use crate::persona::{PersonaId, MAX_SCORE};
use crate::profile::{DataClass, DataClasses, Profile, RelationshipStage, ScoreSpec, StageRules};
use crate::select::{Selection, Selector};

/// The version of the log format this crate writes (the `v` field of every line).
pub const LOG_VERSION: u64 = 1;

/// What happened after a decision: the reward, once known.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Reward {
    /// Whether the person clicked (written as 0 or 1).
    pub click: bool,
    /// The total value of conversions that followed (currency units, ≥ 0).
    pub conversion_value: f64,
}

/// One chosen creative of a decision (its position is its index in
/// [`DecisionRecord::chosen`]).
#[derive(Clone, Debug, PartialEq)]
pub struct ChosenRecord {
    /// The creative's id, as in the catalog spec.
    pub creative: String,
    /// The probability with which the logging policy gave this slot to this creative,
    /// in `(0, 1]`.
    pub propensity: f64,
    /// The reward, or `None` while it is not known yet.
    pub reward: Option<Reward>,
}

/// The moment of a decision as the service knew it, with strings where the engine's
/// [`Context`] only keeps hashed keys (region, attributes).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ContextRecord {
    /// The person's UTC offset in minutes; with the timestamp it gives the daypart and
    /// weekday (both also written to the log for readers).
    pub utc_offset_minutes: i32,
    /// The device.
    pub device: Device,
    /// The channel.
    pub channel: Channel,
    /// The weather.
    pub weather: Weather,
    /// The region code (`"FR"`), if known.
    pub region: Option<String>,
    /// Free attributes (`"loyalty_tier" = "gold"`), in key order.
    pub attributes: Vec<(String, String)>,
    /// The seed of the call's randomness, so the decision can be replayed.
    pub seed: Option<u64>,
}

impl ContextRecord {
    /// Everything a [`Context`] holds in plain values (offset, device, channel, weather,
    /// seed). Region and attributes are hashed inside a context: set them from the
    /// request's own strings with [`DecisionRecord::with_region`] and
    /// [`DecisionRecord::with_attribute`].
    pub fn of(context: &Context) -> Self {
        ContextRecord {
            utc_offset_minutes: context.utc_offset_minutes,
            device: context.device,
            channel: context.channel,
            weather: context.weather,
            region: None,
            attributes: Vec::new(),
            seed: context.seed,
        }
    }

    /// The value of free attribute `key`, if the record has it.
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// The engine context at `timestamp` (region and attributes hashed again).
    pub fn to_context(&self, timestamp: i64) -> Context {
        let mut ctx = Context::at(timestamp)
            .with_utc_offset(self.utc_offset_minutes)
            .with_device(self.device)
            .with_channel(self.channel)
            .with_weather(self.weather);
        ctx.seed = self.seed;
        if let Some(region) = &self.region {
            ctx = ctx.with_region(region);
        }
        for (k, v) in &self.attributes {
            ctx.set_attribute(k, v);
        }
        ctx
    }
}

/// One decision, as one line of the decision log.
///
/// Build it after `select` with [`DecisionRecord::from_selection`], add what only the
/// service knows (region, attributes, an opaque person key, the eligible creatives),
/// then the reward with [`DecisionRecord::observe`] once it is known, and write it with
/// a [`DecisionLogWriter`]. Holds persona scores, consent and the relationship stage,
/// never signals or other raw personal data.
#[derive(Clone, Debug, PartialEq)]
pub struct DecisionRecord {
    /// When the decision was made, Unix seconds (UTC).
    pub timestamp: i64,
    /// The placement's name.
    pub placement: String,
    /// An optional opaque key of the person (a hash, a pseudonym), never a raw id.
    pub person: Option<String>,
    /// The moment.
    pub context: ContextRecord,
    /// The person's relationship stage (it caps intimacy).
    pub stage: RelationshipStage,
    /// Persona name → score (0..=9) with the data classes it was derived from, in name
    /// order (as JSON objects are read back); zero scores are left out.
    pub persona_scores: Vec<(String, ScoreSpec)>,
    /// Personas the person declared they like.
    pub likes: Vec<String>,
    /// Personas the person declared they are not interested in.
    pub dislikes: Vec<String>,
    /// The data classes the person consented to.
    pub consent: DataClasses,
    /// The creatives that were eligible (empty: not recorded).
    pub eligible: Vec<String>,
    /// The chosen creatives, best first, with their propensities and rewards.
    pub chosen: Vec<ChosenRecord>,
    /// The logging policy's name (`greedy`, `epsilon:0.1`, `uniform`, ...).
    pub policy: String,
    /// The data classes the decision relied on: the chosen creatives' data needs and the
    /// sources of the persona scores that counted (a consent audit).
    pub relied_on: DataClasses,
    /// The holdout arm the person was in (`None`: no holdout, or a log written before
    /// arms were recorded). See [`crate::holdout`].
    pub arm: Option<Arm>,
}

/// The name of a policy as the log and the `evaluate` example write it: `rules`,
/// `greedy`, `thompson`, `epsilon:0.1`, `softmax:0.2`.
pub fn policy_name(policy: Policy) -> String {
    match policy {
        Policy::Rules => "rules".into(),
        Policy::Greedy => "greedy".into(),
        Policy::Thompson => "thompson".into(),
        Policy::EpsilonGreedy { epsilon } => format!("epsilon:{epsilon}"),
        Policy::Softmax { temperature } => format!("softmax:{temperature}"),
    }
}

/// Parses a policy name as [`policy_name`] writes it (`epsilon` alone means ε = 0.1,
/// `softmax` alone T = 0.2). Errors name the text.
pub fn parse_policy(text: &str) -> Result<Policy> {
    let bad = |problem: String| Error::invalid("policy", "policy", problem);
    let (name, arg) = match text.split_once(':') {
        Some((n, a)) => (n, Some(a)),
        None => (text, None),
    };
    let number = |default: f64| -> Result<f64> {
        match arg {
            None => Ok(default),
            Some(a) => a
                .trim()
                .parse::<f64>()
                .map_err(|_| bad(format!("'{}' in '{}' is not a number", quote(a), quote(text)))),
        }
    };
    let policy = match name.trim() {
        "rules" if arg.is_none() => Policy::Rules,
        "greedy" if arg.is_none() => Policy::Greedy,
        "thompson" if arg.is_none() => Policy::Thompson,
        "epsilon" | "epsilon_greedy" => Policy::EpsilonGreedy { epsilon: number(0.1)? },
        "softmax" => Policy::Softmax { temperature: number(0.2)? },
        _ => {
            return Err(bad(format!(
                "unknown policy '{}' (rules, greedy, thompson, epsilon:0.1, softmax:0.2)",
                quote(text)
            )))
        }
    };
    crate::learn::LearningConfig { policy, ..Default::default() }.validate()?;
    Ok(policy)
}

/// Rounds an `f32` propensity to the shortest decimal that reads back as the same
/// `f32`, so logs show `0.25` and `0.33333334`, not `0.3333333432674408`.
fn tidy(p: f32) -> f64 {
    p.to_string().parse::<f64>().unwrap_or(f64::from(p))
}

impl DecisionRecord {
    /// The record of the decision `selection` holds: made by `selector` for `profile` in
    /// `context` at `placement`. Fills the timestamp, placement, the context's plain
    /// values, the stage, the non-zero persona scores, likes, dislikes, consent, the
    /// picks with their propensities (no rewards yet), the policy and the consent audit.
    /// The eligible creatives, region, attributes and person key are left for the
    /// caller (see [`crate::eval::Eligibility`] for the eligible creatives).
    ///
    /// Errors when the selection's picks were made on another catalog than
    /// `selector`'s (for example by the previous version of an [`crate::Engine`]):
    /// their ids would name other creatives, and a log that names the wrong creative
    /// misleads every estimate made from it. Log with the selector that selected.
    pub fn from_selection(
        selector: &Selector,
        profile: &Profile,
        context: &Context,
        placement: PlacementId,
        selection: &Selection,
    ) -> Result<Self> {
        if !selection.picks().is_empty() && !selector.made(selection) {
            return Err(Error::invalid(
                "decision record",
                "selection",
                format!(
                    "its picks were made on another catalog than this selector's (version '{}'): \
                     log with the selector that selected",
                    crate::error::quote(selector.catalog().version())
                ),
            ));
        }
        let mut record = DecisionRecord::for_request(selector, profile, context, placement);
        for pick in selection.picks() {
            record.chose(selector, pick.creative, tidy(pick.propensity))?;
        }
        Ok(record)
    }

    /// The record of a request before anything is chosen, for a service that chooses
    /// with a policy of its own (then [`DecisionRecord::chose`] and set `policy`). The
    /// consent audit starts with the sources of the persona scores that count: at least
    /// the threshold, consented, not declared disliked.
    pub fn for_request(
        selector: &Selector,
        profile: &Profile,
        context: &Context,
        placement: PlacementId,
    ) -> Self {
        let cat = selector.catalog();
        let menu = cat.menu();
        let config = selector.config();
        let mut persona_scores = Vec::new();
        let mut relied_on = DataClasses::NONE;
        for (id, name) in menu.iter() {
            let score = profile.scores.get(id);
            if score == 0 {
                continue;
            }
            let sources = profile.scores.sources(id);
            persona_scores.push((name.to_owned(), ScoreSpec { score, sources }));
            let required = profile.scores.required_consent(id);
            if score >= config.threshold
                && profile.consent.contains(required)
                && !profile.dislikes.contains(&id)
            {
                relied_on = relied_on.union(required);
            }
        }
        // In name order, as JSON objects are read back.
        persona_scores.sort_by(|a, b| a.0.cmp(&b.0));
        let names = |ids: &[PersonaId]| ids.iter().map(|p| menu.name(*p).to_owned()).collect();
        let shadow = selector.is_shadow(placement);
        DecisionRecord {
            timestamp: context.at,
            placement: cat.placement_name(placement).to_owned(),
            person: None,
            context: ContextRecord::of(context),
            stage: profile.stage(&config.stages, context.at),
            persona_scores,
            likes: names(&profile.likes),
            dislikes: names(&profile.dislikes),
            consent: profile.consent,
            eligible: Vec::new(),
            chosen: Vec::new(),
            policy: if shadow { "rules".into() } else { policy_name(config.learning.policy) },
            relied_on,
            arm: None,
        }
    }

    /// Appends a chosen creative (the next position) with its propensity, and adds its
    /// data needs to the consent audit.
    ///
    /// # Errors
    /// [`Error::UnknownCreative`] when `creative` is not an id of `selector`'s catalog (an
    /// id from another catalog version, say); the record is unchanged.
    pub fn chose(&mut self, selector: &Selector, creative: crate::CreativeId, propensity: f64) -> Result<()> {
        let cat = selector.catalog();
        if cat.creative_key(creative).is_none() {
            return Err(Error::UnknownCreative { id: format!("#{}", creative.0), did_you_mean: Vec::new() });
        }
        self.push_chosen(selector, creative, propensity);
        Ok(())
    }

    fn push_chosen(&mut self, selector: &Selector, creative: crate::CreativeId, propensity: f64) {
        let cat = selector.catalog();
        self.relied_on = self.relied_on.union(cat.data_needs(creative).unwrap_or_default());
        self.chosen.push(ChosenRecord {
            creative: cat.creative_id(creative).to_owned(),
            propensity,
            reward: None,
        });
    }

    /// Sets the region code the request came with.
    pub fn with_region(mut self, region: &str) -> Self {
        self.context.region = Some(region.to_owned());
        self
    }

    /// Adds a free context attribute the request came with.
    pub fn with_attribute(mut self, key: &str, value: &str) -> Self {
        self.context.attributes.retain(|(k, _)| k != key);
        self.context.attributes.push((key.to_owned(), value.to_owned()));
        self.context.attributes.sort();
        self
    }

    /// Sets the holdout arm the person was in.
    pub fn with_arm(mut self, arm: Arm) -> Self {
        self.arm = Some(arm);
        self
    }

    /// Sets the opaque person key (a hash or pseudonym, never a raw id or e-mail).
    pub fn with_person(mut self, key: &str) -> Self {
        self.person = Some(key.to_owned());
        self
    }

    /// Sets the eligible creatives by the selector's ids.
    pub fn with_eligible(mut self, selector: &Selector, eligible: &[crate::CreativeId]) -> Self {
        self.eligible = eligible.iter().map(|c| selector.catalog().creative_id(*c).to_owned()).collect();
        self
    }

    /// Notes what the person did with chosen creative `creative`: an impression makes
    /// the reward known (no click, no value, until more is observed), a click sets
    /// `click`, a conversion adds its value; other kinds only make the reward known.
    ///
    /// # Errors
    /// [`Error::Invalid`], with the record unchanged:
    /// - when `creative` was not chosen in this decision (an id missing from the catalog
    ///   never is): the error names the id and the creatives that were chosen;
    /// - for a conversion value that is not finite or is below 0, or that would bring
    ///   the creative's total above [`MAX_CONVERSION_VALUE`] (a record holding it could
    ///   not be written): the error names the field, e.g.
    ///   `chosen[0].reward.conversion_value: 600000000 + 600000000 is above the limit
    ///   1000000000`.
    ///
    /// An outcome silently dropped would bias every estimate made from the log, so the
    /// caller must handle it.
    #[must_use = "an outcome for a creative that was not chosen is refused, not recorded"]
    pub fn observe(&mut self, creative: &str, kind: FeedbackKind) -> Result<()> {
        let Some(index) = self.chosen.iter().position(|c| c.creative == creative) else {
            let chosen: Vec<String> =
                self.chosen.iter().map(|c| format!("'{}'", quote(&c.creative))).collect();
            return Err(Error::Invalid {
                what: "decision record",
                field: "chosen".to_owned(),
                problem: format!(
                    "creative '{}' was not chosen in this decision (chosen: {})",
                    quote(creative),
                    if chosen.is_empty() { "none".to_owned() } else { chosen.join(", ") }
                ),
            });
        };
        let chosen = &mut self.chosen[index];
        let before = chosen.reward.map_or(0.0, |r| r.conversion_value);
        if let FeedbackKind::Conversion { value } = kind {
            let bad = |problem: String| {
                Err(Error::invalid(
                    "decision record",
                    format!("chosen[{index}].reward.conversion_value"),
                    problem,
                ))
            };
            if !(value.is_finite() && value >= 0.0) {
                return bad(format!("{value} is not a conversion value (finite and ≥ 0)"));
            }
            if before + value > MAX_CONVERSION_VALUE {
                return bad(format!("{before} + {value} is above the limit {MAX_CONVERSION_VALUE}"));
            }
        }
        let reward = chosen.reward.get_or_insert_with(Reward::default);
        match kind {
            FeedbackKind::Click => reward.click = true,
            FeedbackKind::Conversion { value } => reward.conversion_value = before + value,
            _ => {}
        }
        Ok(())
    }

    /// The data classes the decision relied on that the person had not consented to
    /// (empty for a decision the engine made: it never uses such data).
    pub fn unconsented(&self) -> DataClasses {
        DataClasses(self.relied_on.0 & !self.consent.0)
    }

    /// The local daypart of the decision.
    pub fn daypart(&self) -> Daypart {
        self.to_context().daypart()
    }

    /// The engine context of the decision (region and attributes hashed again).
    pub fn to_context(&self) -> Context {
        self.context.to_context(self.timestamp)
    }

    /// A profile with this decision's persona scores, consent, likes and dislikes, and
    /// visits and first-seen time chosen so that `stages` gives the logged stage. It has
    /// no memory (exposures, rejections), so fatigue and caps do not apply. Persona names
    /// not on `menu` are skipped and returned, so a catalog that dropped a persona can
    /// still be evaluated.
    pub fn to_profile(&self, menu: &crate::PersonaMenu, stages: &StageRules) -> (Profile, Vec<String>) {
        let day = 86_400i64;
        let (visits, days) = match self.stage {
            RelationshipStage::New => (0, 0),
            RelationshipStage::Returning => (stages.returning_visits, 0),
            RelationshipStage::Regular => {
                (stages.regular_visits.max(stages.returning_visits), stages.regular_days)
            }
            RelationshipStage::Loyal => (stages.loyal_visits, stages.loyal_days),
        };
        let mut profile = Profile::for_menu(menu, self.timestamp.saturating_sub(i64::from(days) * day));
        profile.visits = visits;
        profile.consent = self.consent;
        let mut unknown = Vec::new();
        for (name, s) in &self.persona_scores {
            match menu.get(name) {
                Some(id) => {
                    let _ = profile.scores.set(id, s.score.min(MAX_SCORE), s.sources);
                }
                None => unknown.push(name.clone()),
            }
        }
        for name in &self.likes {
            if profile.declare_like(menu, name).is_err() {
                unknown.push(name.clone());
            }
        }
        for name in &self.dislikes {
            if profile.declare_dislike(menu, name).is_err() {
                unknown.push(name.clone());
            }
        }
        (profile, unknown)
    }

    /// Checks the record: a placement name, propensities in `(0, 1]`, finite conversion
    /// values within limits, scores 0..=9, no persona both liked and disliked, a UTC
    /// offset within ±18 h, and (when the
    /// eligible creatives are recorded) chosen creatives among them. The error names the
    /// field, e.g. `chosen[0].propensity`.
    pub fn check(&self) -> std::result::Result<(), BadField> {
        if self.placement.is_empty() {
            return Err(BadField::new("placement", "is empty"));
        }
        if !(-MAX_UTC_OFFSET_MINUTES..=MAX_UTC_OFFSET_MINUTES).contains(&self.context.utc_offset_minutes) {
            return Err(BadField::new(
                "context.utc_offset_minutes",
                format!("{} is beyond ±{MAX_UTC_OFFSET_MINUTES} minutes", self.context.utc_offset_minutes),
            ));
        }
        for (name, s) in &self.persona_scores {
            if s.score > MAX_SCORE {
                return Err(BadField::new(
                    format!("persona_scores.{}", quote(name)),
                    format!("{} is out of range (scores are 0..=9)", s.score),
                ));
            }
        }
        // A profile is never both: one record cannot say which declaration came last.
        if let Some(i) = self.dislikes.iter().position(|d| self.likes.contains(d)) {
            return Err(BadField::new(
                format!("dislikes[{i}]"),
                format!("'{}' is also in likes", quote(&self.dislikes[i])),
            ));
        }
        for (i, c) in self.chosen.iter().enumerate() {
            if !(c.propensity > 0.0 && c.propensity <= 1.0) {
                return Err(BadField::new(
                    format!("chosen[{i}].propensity"),
                    format!("{} is not in (0, 1]", c.propensity),
                ));
            }
            if let Some(r) = &c.reward {
                if !(r.conversion_value.is_finite()
                    && r.conversion_value >= 0.0
                    && r.conversion_value <= MAX_CONVERSION_VALUE)
                {
                    return Err(BadField::new(
                        format!("chosen[{i}].reward.conversion_value"),
                        format!("{} must be finite, ≥ 0 and ≤ {MAX_CONVERSION_VALUE}", r.conversion_value),
                    ));
                }
            }
            if !self.eligible.is_empty() && !self.eligible.contains(&c.creative) {
                return Err(BadField::new(
                    format!("chosen[{i}].creative"),
                    format!("'{}' is not among the eligible creatives", quote(&c.creative)),
                ));
            }
            if self.chosen[..i].iter().any(|o| o.creative == c.creative) {
                return Err(BadField::new(
                    format!("chosen[{i}].creative"),
                    format!("'{}' is chosen twice", quote(&c.creative)),
                ));
            }
        }
        Ok(())
    }

    /// The record as one JSON object (the line, without its newline), fields in the
    /// documented order.
    pub fn to_json_line(&self) -> String {
        self.json_line().0
    }

    /// The line [`DecisionLogReader`] reads back, or the field that makes it longer than
    /// the reader takes ([`MAX_LOG_LINE_BYTES`]) with `room` bytes to spare (for rewards
    /// an outcome adds later): such a line could be written but never read.
    pub(crate) fn checked_line(&self, room: usize) -> std::result::Result<String, BadField> {
        let (line, largest) = self.json_line();
        if line.len().saturating_add(room) <= MAX_LOG_LINE_BYTES {
            return Ok(line);
        }
        let (field, bytes) = largest.unwrap_or_default();
        let spare = if room > 0 { format!(" with {room} bytes kept for outcomes") } else { String::new() };
        Err(BadField::new(
            field,
            format!(
                "{bytes} bytes make the line {} bytes long{spare}, more than MAX_LOG_LINE_BYTES \
                 ({MAX_LOG_LINE_BYTES} bytes), which a reader refuses",
                line.len()
            ),
        ))
    }

    /// The JSON line and its largest top-level field (name, bytes).
    fn json_line(&self) -> (String, Option<(String, usize)>) {
        let ctx = self.to_context();
        let c = &self.context;
        let mut cm = Ordered::default();
        cm.put("utc_offset_minutes", json!(c.utc_offset_minutes));
        cm.put("daypart", json!(ctx.daypart().name()));
        cm.put("weekday", json!(ctx.weekday().name()));
        cm.put("device", json!(c.device.name()));
        cm.put("channel", json!(c.channel.name()));
        cm.put("weather", json!(c.weather.name()));
        if let Some(r) = &c.region {
            cm.put("region", json!(r));
        }
        if !c.attributes.is_empty() {
            let mut attrs = Ordered::default();
            for (k, v) in &c.attributes {
                attrs.put(k, json!(v));
            }
            cm.raw("attributes", &attrs.end());
        }
        if let Some(seed) = c.seed {
            cm.put("seed", json!(format!("{seed:016x}")));
        }
        let mut scores = Ordered::default();
        for (name, s) in &self.persona_scores {
            let v = if s.sources == DataClasses::NONE {
                json!(s.score)
            } else {
                json!({"score": s.score, "sources": classes(s.sources)})
            };
            scores.put(name, v);
        }
        let mut chosen = String::from("[");
        for (i, ch) in self.chosen.iter().enumerate() {
            if i > 0 {
                chosen.push(',');
            }
            let mut o = Ordered::default();
            o.put("creative", json!(ch.creative));
            o.put("propensity", json!(ch.propensity));
            if let Some(r) = &ch.reward {
                let mut ro = Ordered::default();
                ro.put("click", json!(u8::from(r.click)));
                ro.put("conversion_value", json!(r.conversion_value));
                o.raw("reward", &ro.end());
            }
            chosen.push_str(&o.end());
        }
        chosen.push(']');
        let mut m = Ordered::default();
        m.put("v", json!(LOG_VERSION));
        m.put("timestamp", json!(self.timestamp));
        m.put("placement", json!(self.placement));
        if let Some(p) = &self.person {
            m.put("person", json!(p));
        }
        m.raw("context", &cm.end());
        m.put("stage", json!(stage_name(self.stage)));
        m.raw("persona_scores", &scores.end());
        if !self.likes.is_empty() {
            m.put("likes", json!(self.likes));
        }
        if !self.dislikes.is_empty() {
            m.put("dislikes", json!(self.dislikes));
        }
        m.put("consent", json!(classes(self.consent)));
        m.put("eligible", json!(self.eligible));
        m.raw("chosen", &chosen);
        m.put("policy", json!(self.policy));
        m.put("relied_on", json!(classes(self.relied_on)));
        if let Some(arm) = self.arm {
            m.put("arm", json!(arm.name()));
        }
        let largest = m.1.take();
        (m.end(), largest)
    }

    /// Parses one line. The error names the field at fault (`chosen[0].propensity`; for
    /// an object holding a key twice, the object and the key) or, for text that is not
    /// JSON, gives the parser's column.
    pub fn from_json_line(line: &str) -> std::result::Result<Self, BadField> {
        // Duplicate keys are refused at any depth, as in every document of this crate:
        // serde_json alone would keep the last one silently.
        let value = crate::limits::bounded::value(line).map_err(|e| match e {
            ValueError::Duplicate { field, key } => {
                BadField { field, problem: format!("duplicate key '{}'", quote(&key)) }
            }
            ValueError::Json(e) => {
                BadField { field: None, problem: format!("invalid JSON: {}", crate::error::json_message(&e)) }
            }
        })?;
        let record = parse_record(&value)?;
        record.check()?;
        Ok(record)
    }
}

/// The most one pick's reward adds to a logged line:
/// `,"reward":{"click":1,"conversion_value":999999999.9999999}` is 58 bytes.
pub(crate) const REWARD_LINE_BYTES: usize = 64;

/// A JSON object written with its keys in insertion order (`serde_json::Map` sorts them).
/// It remembers its largest value, to name the field when a line is too long.
#[derive(Default)]
struct Ordered(String, Option<(String, usize)>);

impl Ordered {
    fn raw(&mut self, key: &str, value: &str) {
        self.0.push(if self.0.is_empty() { '{' } else { ',' });
        self.0.push_str(&Value::from(key).to_string());
        self.0.push(':');
        self.0.push_str(value);
        if self.1.as_ref().is_none_or(|(_, len)| value.len() > *len) {
            self.1 = Some((key.to_owned(), value.len()));
        }
    }

    fn put(&mut self, key: &str, value: Value) {
        self.raw(key, &value.to_string());
    }

    fn end(mut self) -> String {
        if self.0.is_empty() {
            self.0.push('{');
        }
        self.0.push('}');
        self.0
    }
}

fn stage_name(stage: RelationshipStage) -> &'static str {
    match stage {
        RelationshipStage::New => "new",
        RelationshipStage::Returning => "returning",
        RelationshipStage::Regular => "regular",
        RelationshipStage::Loyal => "loyal",
    }
}

fn classes(set: DataClasses) -> Vec<&'static str> {
    set.iter().map(DataClass::name).collect()
}

/// What is wrong with one record: the field (a JSON path such as `chosen[0].propensity`,
/// or a CSV column) and the problem. Readers turn it into an [`Error::LogLine`] with the
/// line number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadField {
    /// The field at fault, if one is.
    pub field: Option<String>,
    /// What is wrong.
    pub problem: String,
}

impl BadField {
    /// A problem with `field`.
    pub fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        BadField { field: Some(field.into()), problem: problem.into() }
    }

    /// The crate error for this problem on line `line` of log `log`.
    pub fn at(self, log: &str, line: usize) -> Error {
        Error::LogLine { log: log.to_owned(), line, field: self.field, problem: self.problem }
    }
}

type Parsed<T> = std::result::Result<T, BadField>;

/// Reads the fields of one JSON object, rejecting unknown ones, with paths for messages.
struct Obj<'a> {
    map: &'a Map<String, Value>,
    path: String,
}

impl<'a> Obj<'a> {
    fn new(value: &'a Value, path: &str, allowed: &[&str]) -> Parsed<Self> {
        let Value::Object(map) = value else {
            let what = if path.is_empty() { "the line" } else { path };
            return Err(BadField {
                field: (!path.is_empty()).then(|| path.to_owned()),
                problem: format!("{what} must be a JSON object, got {}", short(value)),
            });
        };
        for key in map.keys() {
            if !allowed.contains(&key.as_str()) {
                return Err(BadField::new(
                    join(path, &quote(key)),
                    format!("unknown field (expected one of: {})", allowed.join(", ")),
                ));
            }
        }
        Ok(Obj { map, path: path.to_owned() })
    }

    fn field(&self, key: &str) -> String {
        join(&self.path, key)
    }

    fn opt(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn req(&self, key: &str) -> Parsed<&'a Value> {
        self.opt(key).ok_or_else(|| BadField::new(self.field(key), "missing"))
    }

    fn str(&self, key: &str) -> Parsed<&'a str> {
        let v = self.req(key)?;
        v.as_str()
            .ok_or_else(|| BadField::new(self.field(key), format!("expected a string, got {}", short(v))))
    }

    fn opt_str(&self, key: &str) -> Parsed<Option<&'a str>> {
        match self.opt(key) {
            None => Ok(None),
            Some(v) => v.as_str().map(Some).ok_or_else(|| {
                BadField::new(self.field(key), format!("expected a string, got {}", short(v)))
            }),
        }
    }

    fn i64(&self, key: &str) -> Parsed<i64> {
        let v = self.req(key)?;
        v.as_i64()
            .ok_or_else(|| BadField::new(self.field(key), format!("expected an integer, got {}", short(v))))
    }

    fn f64(&self, key: &str) -> Parsed<f64> {
        let v = self.req(key)?;
        v.as_f64()
            .ok_or_else(|| BadField::new(self.field(key), format!("expected a number, got {}", short(v))))
    }

    fn strings(&self, key: &str) -> Parsed<Vec<String>> {
        let Some(v) = self.opt(key) else { return Ok(Vec::new()) };
        let Value::Array(items) = v else {
            return Err(BadField::new(self.field(key), format!("expected an array, got {}", short(v))));
        };
        items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                item.as_str().map(str::to_owned).ok_or_else(|| {
                    BadField::new(
                        format!("{}[{i}]", self.field(key)),
                        format!("expected a string, got {}", short(item)),
                    )
                })
            })
            .collect()
    }

    fn classes(&self, key: &str) -> Parsed<DataClasses> {
        let names = self.strings(key)?;
        let mut set = DataClasses::NONE;
        for (i, name) in names.iter().enumerate() {
            let class = DataClass::parse(name).ok_or_else(|| {
                BadField::new(
                    format!("{}[{i}]", self.field(key)),
                    format!("unknown data class '{}' (behavioral, purchase, location, demographic, declared, third_party)", quote(name)),
                )
            })?;
            set = set.with(class);
        }
        Ok(set)
    }

    fn named<T>(&self, key: &str, parse: fn(&str) -> Option<T>, all: &[&str]) -> Parsed<Option<T>> {
        match self.opt_str(key)? {
            None => Ok(None),
            Some(text) => parse(text).map(Some).ok_or_else(|| {
                BadField::new(
                    self.field(key),
                    format!("unknown value '{}' ({})", quote(text), all.join(", ")),
                )
            }),
        }
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{}", quote(key))
    }
}

/// A JSON value for a message, cut short.
fn short(v: &Value) -> String {
    let text = v.to_string();
    if text.chars().count() > 40 {
        format!("{}…", text.chars().take(40).collect::<String>())
    } else {
        text
    }
}

fn names_of<T: Copy>(all: &[T], name: fn(T) -> &'static str) -> Vec<&'static str> {
    all.iter().map(|v| name(*v)).collect()
}

fn parse_stage(text: &str) -> Option<RelationshipStage> {
    [
        RelationshipStage::New,
        RelationshipStage::Returning,
        RelationshipStage::Regular,
        RelationshipStage::Loyal,
    ]
    .into_iter()
    .find(|s| stage_name(*s) == text)
}

fn parse_record(value: &Value) -> Parsed<DecisionRecord> {
    const FIELDS: &[&str] = &[
        "v",
        "timestamp",
        "placement",
        "person",
        "context",
        "stage",
        "persona_scores",
        "likes",
        "dislikes",
        "consent",
        "eligible",
        "chosen",
        "policy",
        "relied_on",
        "arm",
    ];
    let o = Obj::new(value, "", FIELDS)?;
    if let Some(v) = o.opt("v") {
        match v.as_u64() {
            Some(n) if (1..=LOG_VERSION).contains(&n) => {}
            Some(n) if n > LOG_VERSION => {
                return Err(BadField::new(
                    "v",
                    format!("version {n} is newer than this reader ({LOG_VERSION})"),
                ))
            }
            _ => return Err(BadField::new("v", format!("expected a version number, got {}", short(v)))),
        }
    }
    let timestamp = o.i64("timestamp")?;
    let placement = o.str("placement")?.to_owned();
    let person = o.opt_str("person")?.map(str::to_owned);
    let context = match o.opt("context") {
        None => ContextRecord::default(),
        Some(v) => parse_context(v, timestamp)?,
    };
    let stage_names = ["new", "returning", "regular", "loyal"];
    let stage = o.named("stage", parse_stage, &stage_names)?.unwrap_or(RelationshipStage::New);
    let mut persona_scores = Vec::new();
    if let Some(v) = o.opt("persona_scores") {
        let Value::Object(map) = v else {
            return Err(BadField::new("persona_scores", format!("expected an object, got {}", short(v))));
        };
        for (name, s) in map {
            let field = format!("persona_scores.{}", quote(name));
            let spec = match s {
                Value::Number(_) => ScoreSpec { score: score(s, &field)?, sources: DataClasses::NONE },
                Value::Object(_) => {
                    let so = Obj::new(s, &field, &["score", "sources"])?;
                    ScoreSpec {
                        score: score(so.req("score")?, &so.field("score"))?,
                        sources: so.classes("sources")?,
                    }
                }
                _ => {
                    return Err(BadField::new(
                        field,
                        format!(
                            "expected a score 0..=9 or {{\"score\": …, \"sources\": […]}}, got {}",
                            short(s)
                        ),
                    ))
                }
            };
            persona_scores.push((name.clone(), spec));
        }
    }
    let mut chosen = Vec::new();
    match o.opt("chosen") {
        None => return Err(BadField::new("chosen", "missing")),
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let path = format!("chosen[{i}]");
                let c = Obj::new(item, &path, &["creative", "propensity", "reward"])?;
                let creative = c.str("creative")?.to_owned();
                let propensity = c.f64("propensity")?;
                let reward = match c.opt("reward") {
                    None => None,
                    Some(r) => {
                        let r = Obj::new(r, &c.field("reward"), &["click", "conversion_value"])?;
                        let click = match r.req("click")? {
                            Value::Bool(b) => *b,
                            v => match v.as_u64() {
                                Some(0) => false,
                                Some(1) => true,
                                _ => {
                                    return Err(BadField::new(
                                        r.field("click"),
                                        format!("{} is not 0 or 1", short(v)),
                                    ))
                                }
                            },
                        };
                        let conversion_value = if r.opt("conversion_value").is_some() {
                            r.f64("conversion_value")?
                        } else {
                            0.0
                        };
                        Some(Reward { click, conversion_value })
                    }
                };
                chosen.push(ChosenRecord { creative, propensity, reward });
            }
        }
        Some(v) => return Err(BadField::new("chosen", format!("expected an array, got {}", short(v)))),
    }
    Ok(DecisionRecord {
        timestamp,
        placement,
        person,
        context,
        stage,
        persona_scores,
        likes: o.strings("likes")?,
        dislikes: o.strings("dislikes")?,
        consent: o.classes("consent")?,
        eligible: o.strings("eligible")?,
        chosen,
        policy: o.opt_str("policy")?.unwrap_or("").to_owned(),
        relied_on: o.classes("relied_on")?,
        arm: o.named("arm", Arm::parse, &["holdout", "personalized"])?,
    })
}

fn score(v: &Value, field: &str) -> Parsed<u8> {
    match v.as_u64() {
        Some(s) if s <= u64::from(MAX_SCORE) => Ok(s as u8),
        _ => Err(BadField::new(field, format!("{} is out of range (scores are 0..=9)", short(v)))),
    }
}

fn parse_context(value: &Value, timestamp: i64) -> Parsed<ContextRecord> {
    let o = Obj::new(
        value,
        "context",
        &[
            "utc_offset_minutes",
            "daypart",
            "weekday",
            "device",
            "channel",
            "weather",
            "region",
            "attributes",
            "seed",
        ],
    )?;
    let utc_offset_minutes = match o.opt("utc_offset_minutes") {
        None => 0,
        Some(_) => {
            let m = o.i64("utc_offset_minutes")?;
            i32::try_from(m)
                .ok()
                .filter(|m| (-MAX_UTC_OFFSET_MINUTES..=MAX_UTC_OFFSET_MINUTES).contains(m))
                .ok_or_else(|| {
                BadField::new(
                    o.field("utc_offset_minutes"),
                    format!("{m} is beyond ±{MAX_UTC_OFFSET_MINUTES} minutes"),
                )
            })?
        }
    };
    let mut record = ContextRecord {
        utc_offset_minutes,
        device: o.named("device", Device::parse, &names_of(Device::ALL, Device::name))?.unwrap_or_default(),
        channel: o
            .named("channel", Channel::parse, &names_of(Channel::ALL, Channel::name))?
            .unwrap_or_default(),
        weather: o
            .named("weather", Weather::parse, &names_of(Weather::ALL, Weather::name))?
            .unwrap_or_default(),
        region: o.opt_str("region")?.map(str::to_owned),
        attributes: Vec::new(),
        seed: None,
    };
    if let Some(v) = o.opt("attributes") {
        let Value::Object(map) = v else {
            return Err(BadField::new(
                o.field("attributes"),
                format!("expected an object, got {}", short(v)),
            ));
        };
        for (k, val) in map {
            let text = val.as_str().ok_or_else(|| {
                BadField::new(
                    format!("context.attributes.{k}"),
                    format!("expected a string, got {}", short(val)),
                )
            })?;
            record.attributes.push((k.clone(), text.to_owned()));
        }
    }
    if let Some(text) = o.opt_str("seed")? {
        let seed = (text.len() == 16).then(|| u64::from_str_radix(text, 16).ok()).flatten();
        record.seed = Some(seed.ok_or_else(|| {
            BadField::new(o.field("seed"), format!("'{}' is not 16 hex digits", quote(text)))
        })?);
    }
    // Daypart and weekday are derived from the timestamp and offset; when present they
    // must agree (a wrong offset shows up here).
    let ctx = record.to_context(timestamp);
    if let Some(d) = o.named("daypart", Daypart::parse, &names_of(Daypart::ALL, Daypart::name))? {
        if d != ctx.daypart() {
            return Err(BadField::new(
                "context.daypart",
                format!(
                    "'{}' disagrees with the timestamp and utc_offset_minutes ({})",
                    d.name(),
                    ctx.daypart().name()
                ),
            ));
        }
    }
    if let Some(w) = o.named("weekday", Weekday::parse, &names_of(Weekday::ALL, Weekday::name))? {
        if w != ctx.weekday() {
            return Err(BadField::new(
                "context.weekday",
                format!(
                    "'{}' disagrees with the timestamp and utc_offset_minutes ({})",
                    w.name(),
                    ctx.weekday().name()
                ),
            ));
        }
    }
    Ok(record)
}

/// Writes decision records as JSON Lines to any [`Write`] (a file, a buffer, a pipe to
/// the service's log shipper). Off the hot path: call it after `select` and `record`,
/// from a background thread if writes may block. Wrap files in a `BufWriter`.
#[derive(Debug)]
pub struct DecisionLogWriter<W: Write> {
    out: W,
    name: String,
    lines: usize,
}

impl<W: Write> DecisionLogWriter<W> {
    /// A writer to `out`; `name` (usually the file name) appears in error messages.
    pub fn new(out: W, name: &str) -> Self {
        DecisionLogWriter { out, name: name.to_owned(), lines: 0 }
    }

    /// Checks the record (see [`DecisionRecord::check`]) and writes it as one line. A
    /// record that fails the check, or whose line would be longer than a reader takes
    /// ([`MAX_LOG_LINE_BYTES`]: a large `eligible` list, say), is not written; the error
    /// names the line it would have been and the field.
    pub fn write(&mut self, record: &DecisionRecord) -> Result<()> {
        record.check().map_err(|bad| bad.at(&self.name, self.lines + 1))?;
        let mut line = record.checked_line(0).map_err(|bad| bad.at(&self.name, self.lines + 1))?;
        line.push('\n');
        self.out
            .write_all(line.as_bytes())
            .map_err(|source| Error::Io { path: self.name.clone(), source })?;
        self.lines += 1;
        Ok(())
    }

    /// Lines written so far.
    pub fn lines(&self) -> usize {
        self.lines
    }

    /// Flushes the underlying writer.
    pub fn flush(&mut self) -> Result<()> {
        self.out.flush().map_err(|source| Error::Io { path: self.name.clone(), source })
    }

    /// Flushes and returns the underlying writer.
    pub fn into_inner(mut self) -> Result<W> {
        self.flush()?;
        Ok(self.out)
    }
}

/// Reads a decision log line by line: an iterator of `(line number, record)`. Blank
/// lines are skipped; any other bad line is an [`Error::LogLine`] naming the log, the
/// line and the field (`decisions.jsonl line 17: field 'chosen[0].propensity': 0 is not
/// in (0, 1]`). The iterator goes on after an error, so a caller may skip bad lines.
///
/// A line longer than [`MAX_LOG_LINE_BYTES`] is an error naming the line and the limit;
/// the reader never holds more than that much of it, and goes on with the next line.
#[derive(Debug)]
pub struct DecisionLogReader<R: BufRead> {
    input: R,
    name: String,
    line: usize,
    buf: Vec<u8>,
}

impl<R: BufRead> DecisionLogReader<R> {
    /// A reader of `input`; `name` (usually the file name) appears in error messages.
    pub fn new(input: R, name: &str) -> Self {
        DecisionLogReader { input, name: name.to_owned(), line: 0, buf: Vec::new() }
    }

    /// The log's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The number of the last line read.
    pub fn line(&self) -> usize {
        self.line
    }
}

impl DecisionLogReader<std::io::BufReader<std::fs::File>> {
    /// Opens a log file; its file name is used in messages.
    pub fn open(path: impl AsRef<std::path::Path>) -> Result<Self> {
        let path = path.as_ref();
        let file = std::fs::File::open(path)
            .map_err(|source| Error::Io { path: path.display().to_string(), source })?;
        let name =
            path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
        Ok(DecisionLogReader::new(std::io::BufReader::new(file), &name))
    }
}

impl<R: BufRead> Iterator for DecisionLogReader<R> {
    type Item = Result<(usize, DecisionRecord)>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match read_line_limited(&mut self.input, &mut self.buf, MAX_LOG_LINE_BYTES) {
                Ok(Line::End) => return None,
                Ok(Line::Read) => {}
                Ok(Line::TooLong(bytes)) => {
                    self.line += 1;
                    return Some(Err(Error::LogLine {
                        log: self.name.clone(),
                        line: self.line,
                        field: None,
                        problem: format!(
                            "the line is {bytes} bytes long, more than MAX_LOG_LINE_BYTES ({MAX_LOG_LINE_BYTES} bytes)"
                        ),
                    }));
                }
                Err(source) => {
                    self.line += 1;
                    let problem = format!("cannot read: {source}");
                    return Some(Err(Error::LogLine {
                        log: self.name.clone(),
                        line: self.line,
                        field: None,
                        problem,
                    }));
                }
            }
            self.line += 1;
            let text = match std::str::from_utf8(&self.buf) {
                Ok(text) => text.trim(),
                Err(e) => {
                    return Some(Err(Error::LogLine {
                        log: self.name.clone(),
                        line: self.line,
                        field: None,
                        problem: format!("cannot read: the line is not valid UTF-8 ({e})"),
                    }))
                }
            };
            if text.is_empty() {
                continue;
            }
            let looks_like_csv = || !text.starts_with('{') && text.contains(',');
            return Some(DecisionRecord::from_json_line(text).map(|r| (self.line, r)).map_err(|mut bad| {
                if self.line == 1 && bad.field.is_none() && looks_like_csv() {
                    bad.problem = format!(
                        "this looks like CSV, not a JSON Lines decision log; for the Open Bandit \
                             Dataset layout use --obd DIR (eval::read_obd_dir / read_obd_csv) ({})",
                        bad.problem
                    );
                }
                bad.at(&self.name, self.line)
            }));
        }
    }
}
