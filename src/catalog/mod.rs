//! The content catalog: a [`CatalogSpec`] (serde, strings) validated and compiled into a
//! [`Catalog`] (ids, bitmasks, flat arrays) that `select` scans. Compilation is the only
//! place a spec is checked; every error names the creative and the field.
//!
//! Layout: the fields every eligibility check reads sit together in one small record
//! per creative (`Rules`, one or two cache lines fetched per candidate), persona tags
//! and context rules live in flat shared arrays, and each placement holds its candidate
//! list. Strings (ids, payloads) sit in separate arrays the hot path never touches.

mod rules;
mod spec;
mod targeting;

use ahash::AHashMap;
use serde_json::value::RawValue;

pub use rules::{CreativeRuleSpec, MAX_ATTRIBUTE_RULES};
pub use spec::{
    parse_rfc3339, AttributeRuleSpec, BoostSpec, CatalogSpec, ConditionSpec, CreativeSpec, FrequencyCapSpec,
    ScheduleSpec, Timestamp,
};
pub(crate) use targeting::{Condition, ConditionPool, Moment, Span};

use crate::error::{quote, shown, Error, Result};
use crate::persona::{PersonaId, PersonaMenu};
use crate::profile::{DataClass, DataClasses};
use crate::symbol::Symbol;

/// Dense id of a creative in one compiled catalog: its position in the spec.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CreativeId(pub u32);

impl CreativeId {
    /// The id as an index into per-creative arrays.
    #[inline]
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Dense id of a placement in one compiled catalog.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PlacementId(pub u16);

/// How personal a creative feels. Capped by the person's relationship stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum Intimacy {
    /// Speaks to everyone ("Winter sale").
    Generic = 0,
    /// Speaks to a segment ("For the luxury traveller").
    Segment = 1,
    /// Uses what we know of this person ("Your next trip to Lisbon?").
    Personal = 2,
    /// Feels like an old friend ("Happy anniversary, Ana").
    Intimate = 3,
}

impl Intimacy {
    /// Every level, in order.
    pub const ALL: [Intimacy; 4] =
        [Intimacy::Generic, Intimacy::Segment, Intimacy::Personal, Intimacy::Intimate];

    /// The name used in specs.
    pub fn name(self) -> &'static str {
        match self {
            Intimacy::Generic => "generic",
            Intimacy::Segment => "segment",
            Intimacy::Personal => "personal",
            Intimacy::Intimate => "intimate",
        }
    }

    /// Parses a spec name.
    pub fn parse(text: &str) -> Option<Intimacy> {
        Intimacy::ALL.into_iter().find(|i| i.name() == text)
    }
}

/// What part of a composed message a creative is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Component {
    /// A headline.
    Headline = 1,
    /// An image.
    Image = 2,
    /// A call to action.
    CallToAction = 3,
    /// An offer.
    Offer = 4,
    /// A whole banner.
    Banner = 5,
    /// A block of an email.
    EmailBlock = 6,
}

impl Component {
    /// Every kind.
    pub const ALL: [Component; 6] = [
        Component::Headline,
        Component::Image,
        Component::CallToAction,
        Component::Offer,
        Component::Banner,
        Component::EmailBlock,
    ];

    /// The name used in specs.
    pub fn name(self) -> &'static str {
        match self {
            Component::Headline => "headline",
            Component::Image => "image",
            Component::CallToAction => "call_to_action",
            Component::Offer => "offer",
            Component::Banner => "banner",
            Component::EmailBlock => "email_block",
        }
    }

    /// Parses a spec name.
    pub fn parse(text: &str) -> Option<Component> {
        Component::ALL.into_iter().find(|c| c.name() == text)
    }
}

/// A compiled frequency cap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrequencyCap {
    /// Most impressions per window.
    pub impressions: u32,
    /// Window length in seconds.
    pub window_seconds: u32,
}

/// Sentinel for "none" in `u32` index fields.
pub(crate) const NONE: u32 = u32::MAX;

/// The hot, fixed-size part of one creative: everything eligibility and scoring read.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Rules {
    pub start: i64,
    pub end: i64,
    pub priority: f32,
    /// Index into `conditions`, or [`NONE`].
    pub targeting: u32,
    /// Index into `groups`, or [`NONE`].
    pub group: u32,
    pub tags: Span,
    pub boosts: Span,
    /// 0 = no cap.
    pub cap_impressions: u32,
    pub cap_window: u32,
    /// The persona with the largest tag weight (the creative's theme), or `u16::MAX`.
    pub theme: u16,
    /// The largest context boost the creative can get (product of its factors above 1).
    pub max_boost: f32,
    pub intimacy: Intimacy,
    pub needs: DataClasses,
    pub fallback: bool,
}

/// One placement: its name and the creatives that fit it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Placement {
    pub name: String,
    /// Non-fallback creatives, in catalog order.
    pub candidates: Vec<CreativeId>,
    /// Fallback creatives, best priority first (ties: catalog order).
    pub fallbacks: Vec<CreativeId>,
    /// Per-persona index (CSR): the candidates tagged with persona `p` (weight > 0) are
    /// `persona_members[persona_offsets[p]..persona_offsets[p + 1]]`, in catalog order.
    pub persona_offsets: Vec<u32>,
    pub persona_members: Vec<CreativeId>,
    /// The templates among the candidates (their anchors), in catalog order.
    pub templates: Vec<CreativeId>,
    /// The other candidates grouped by their request-level filters (schedule, intimacy,
    /// data classes, targeting), with how many share each: epsilon-greedy counts the
    /// eligible candidates from these groups and the person's few exclusions instead of
    /// checking every candidate. Empty when grouping would not pay (more than one group
    /// per eight candidates) or cannot be exact (a tag weight of 0, which the per-persona
    /// lists leave out but a declared dislike still filters).
    pub gates: Vec<Gate>,
    /// With `gates` (CSR): per group `g`, how many of its candidates are tagged with
    /// each persona, the personas sorted in
    /// `gate_personas[gate_persona_start[g]..gate_persona_start[g + 1]]` and the counts
    /// at the same places of `gate_counts`. A person's one declared dislike is then
    /// counted per group, not candidate by candidate.
    pub gate_persona_start: Vec<u32>,
    pub gate_personas: Vec<u16>,
    pub gate_counts: Vec<u32>,
}

/// Candidates of one placement that share every request-level filter (see
/// [`Placement::gates`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Gate {
    pub start: i64,
    pub end: i64,
    pub targeting: u32,
    pub intimacy: Intimacy,
    pub needs: DataClasses,
    /// How many candidates share these filters.
    pub count: u32,
}

impl Gate {
    /// The request-level filters of creative rules `r`, counting one.
    pub fn of(r: &Rules) -> Gate {
        Gate {
            start: r.start,
            end: r.end,
            targeting: r.targeting,
            intimacy: r.intimacy,
            needs: r.needs,
            count: 1,
        }
    }
}

impl Placement {
    /// How many of group `g`'s candidates (see [`Placement::gates`]) are tagged with
    /// `persona`.
    #[inline]
    pub fn gate_tagged(&self, g: usize, persona: usize) -> u32 {
        let (Some(&a), Some(&b)) = (self.gate_persona_start.get(g), self.gate_persona_start.get(g + 1))
        else {
            return 0;
        };
        let Some(list) = self.gate_personas.get(a as usize..b as usize) else { return 0 };
        let Ok(at) = list.binary_search_by_key(&persona, |&p| usize::from(p)) else { return 0 };
        self.gate_counts.get(a as usize + at).copied().unwrap_or(0)
    }

    /// The candidates tagged with `persona`.
    #[inline]
    pub fn tagged(&self, persona: usize) -> &[CreativeId] {
        match (self.persona_offsets.get(persona), self.persona_offsets.get(persona + 1)) {
            (Some(&a), Some(&b)) => &self.persona_members[a as usize..b as usize],
            _ => &[],
        }
    }
}

/// Groups placement `p`'s non-template candidates by their request-level filters (see
/// [`Placement::gates`]), and counts each group's candidates per persona they are
/// tagged with (see [`Placement::gate_personas`]); empty when that would not pay or
/// could not be exact.
fn gates_of(
    p: &Placement,
    rules: &[Rules],
    conditions: &[Condition],
    (tag_weight, tag_persona): (&[f32], &[PersonaId]),
    template: impl Fn(CreativeId) -> bool,
) -> GateIndex {
    let none = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let sorted = p.candidates.windows(2).all(|w| w[0] < w[1]);
    let zero_weight =
        p.candidates.iter().any(|c| rules[c.index()].tags.range().any(|t| tag_weight[t] <= 0.0));
    if !sorted || zero_weight {
        return none;
    }
    let limit = p.candidates.len() / 8;
    // Creatives with equal targeting conditions (each has its own index) share a group.
    let mut index: AHashMap<(i64, i64, Intimacy, DataClasses, Option<Condition>), usize> = AHashMap::new();
    let mut gates: Vec<Gate> = Vec::new();
    let mut tagged: AHashMap<(usize, u16), u32> = AHashMap::new();
    for &c in &p.candidates {
        if template(c) {
            continue;
        }
        let r = &rules[c.index()];
        let key = (r.start, r.end, r.intimacy, r.needs, conditions.get(r.targeting as usize).copied());
        let g = match index.get(&key) {
            Some(&i) => {
                gates[i].count += 1;
                i
            }
            None => {
                if gates.len() >= limit {
                    return none;
                }
                index.insert(key, gates.len());
                gates.push(Gate::of(r));
                gates.len() - 1
            }
        };
        for t in r.tags.range() {
            // A creative lists a persona once (the spec refuses a repeat).
            *tagged.entry((g, tag_persona[t].0)).or_default() += 1;
        }
    }
    gates.shrink_to_fit();
    let mut pairs: Vec<((usize, u16), u32)> = tagged.into_iter().collect();
    pairs.sort_unstable();
    let mut start = Vec::with_capacity(gates.len() + 1);
    let (mut personas, mut counts) = (Vec::with_capacity(pairs.len()), Vec::with_capacity(pairs.len()));
    for ((g, persona), count) in pairs {
        while start.len() <= g {
            start.push(personas.len() as u32);
        }
        personas.push(persona);
        counts.push(count);
    }
    while start.len() <= gates.len() {
        start.push(personas.len() as u32);
    }
    (gates, start, personas, counts)
}

/// [`Placement::gates`], [`Placement::gate_persona_start`],
/// [`Placement::gate_personas`] and [`Placement::gate_counts`].
type GateIndex = (Vec<Gate>, Vec<u32>, Vec<u16>, Vec<u32>);

/// The most creatives a catalog may hold.
pub const MAX_CREATIVES: usize = 1_000_000;
/// The most placements a catalog may declare.
pub const MAX_PLACEMENTS: usize = 4_096;
/// The longest creative id or placement name, in bytes.
pub const MAX_ID_LEN: usize = 256;
/// Why a name the catalog keeps and hands back (a template's slot, an exclusion group;
/// `kind` says which, e.g. `"slot name"`) is refused, if it is: longer than
/// [`MAX_ID_LEN`] bytes, or holding a control character, which C would read as its end
/// (a NUL) and a log as a line break, as for ids. Whether it may be empty is the
/// caller's own check.
pub(crate) fn name_problem(kind: &str, name: &str) -> Option<String> {
    if name.len() > MAX_ID_LEN {
        return Some(format!("{kind} is {} bytes long (at most {MAX_ID_LEN}, MAX_ID_LEN)", name.len()));
    }
    crate::error::control_character(name).map(|problem| format!("{kind} {problem}"))
}

/// The most persona tags on one creative.
pub const MAX_TAGS: usize = 64;
/// The largest persona tag weight (100). Weights count as shares once a creative's add
/// up to more than 1 and the persona prior reads at most 1 of one, so a larger weight
/// says nothing a smaller one cannot; the learned model takes the weight itself as a
/// feature value, so this bound keeps every sum and product of weights finite in `f32`
/// and each learned precision's growth per event (which goes with the weight squared)
/// far from the limit of its fixed-point store.
pub const MAX_TAG_WEIGHT: f64 = 100.0;
/// The smallest persona tag weight above 0 (1e-6): a smaller one would round to 0 (or
/// to a subnormal number) as `f32` and the tag would silently stop counting. Write 0
/// for a tag that is to count only for declared dislikes.
pub const MIN_TAG_WEIGHT: f64 = 1e-6;
/// The most boosts on one creative (each is reported as one bit of a `u16`).
pub const MAX_BOOSTS: usize = 16;
/// The smallest creative (or template, or variant) priority (1e-6): a smaller one
/// would round to 0 (or to a subnormal number) as `f32`, the creative would always
/// score 0 and the learned path would add `ln 0 = -inf` to its ranking key.
pub const MIN_PRIORITY: f64 = 1e-6;
/// The largest priority (1e6). With the boost bounds, `priority · boosts` stays within
/// 1e-18 and 1e18, far inside `f32`'s normal range whatever it is multiplied by.
pub const MAX_PRIORITY: f64 = 1e6;
/// The smallest boost factor (1e-6): a smaller one would round to 0 as `f32` and the
/// boost would silently make the creative score 0 (`ln 0 = -inf` when learning).
pub const MIN_BOOST_FACTOR: f64 = 1e-6;
/// The largest boost factor (100).
pub const MAX_BOOST_FACTOR: f64 = 100.0;
/// The smallest product of a creative's boost factors below 1 (1e-12), the most its
/// boosts (attribute rules' included) can lower it when they all apply at once.
/// [`MAX_BOOSTS`] factors of [`MIN_BOOST_FACTOR`] would multiply to 1e-96, which is 0 as
/// `f32`.
pub const MIN_BOOST_PRODUCT: f64 = 1e-12;
/// The largest product of a creative's boost factors above 1 (1e12), the most its
/// boosts can raise it when they all apply at once: [`MAX_BOOSTS`] factors of
/// [`MAX_BOOST_FACTOR`] would multiply to 1e32, and times [`MAX_PRIORITY`] to within a
/// factor of 3 of `f32::MAX`.
pub const MAX_BOOST_PRODUCT: f64 = 1e12;
/// The most descriptive attributes on one creative.
pub const MAX_ATTRIBUTES: usize = 16;
/// The longest attribute name or value, in bytes.
pub const MAX_ATTRIBUTE_LEN: usize = 64;
/// The largest payload of one creative, in bytes of JSON text.
pub const MAX_PAYLOAD: usize = 64 * 1024;
/// The largest catalog spec in JSON, in bytes (64 MiB): [`CatalogSpec::from_json`],
/// [`Catalog::from_json`] and [`Catalog::from_file`] refuse a larger one before parsing
/// it ([`Error::TooLarge`]). That is about 90,000 creatives like the sample's (720 bytes
/// each, payload included); a larger catalog is built in code with [`Catalog::compile`],
/// which is bounded by [`MAX_CREATIVES`] alone.
pub const MAX_SPEC_BYTES: usize = 64 * 1024 * 1024;

/// Why a persona tag weight is refused, if it is: not finite, negative, above
/// [`MAX_TAG_WEIGHT`], or above 0 but below [`MIN_TAG_WEIGHT`].
fn check_tag_weight(weight: f64) -> std::result::Result<(), String> {
    // NaN and the infinities are outside the range too.
    if !(0.0..=MAX_TAG_WEIGHT).contains(&weight) {
        return Err(format!("must be finite, ≥ 0 and ≤ {MAX_TAG_WEIGHT}, MAX_TAG_WEIGHT"));
    }
    if weight > 0.0 && weight < MIN_TAG_WEIGHT {
        return Err(format!("a weight above 0 must be at least {MIN_TAG_WEIGHT:e}, MIN_TAG_WEIGHT"));
    }
    Ok(())
}

/// Why a priority is refused, if it is: not finite, not above 0, above
/// [`MAX_PRIORITY`], or below [`MIN_PRIORITY`].
pub(crate) fn check_priority(priority: f64) -> std::result::Result<(), String> {
    if !priority.is_finite() || priority <= 0.0 || priority > MAX_PRIORITY {
        return Err(format!("{} must be finite, > 0 and ≤ 1e6 (MAX_PRIORITY)", shown(priority)));
    }
    if priority < MIN_PRIORITY {
        return Err(format!(
            "priority {} is below {MIN_PRIORITY:e} (MIN_PRIORITY){}",
            shown(priority),
            as_f32(priority)
        ));
    }
    Ok(())
}

/// Why a boost factor is refused, if it is: not finite, not above 0, above
/// [`MAX_BOOST_FACTOR`], or below [`MIN_BOOST_FACTOR`].
pub(crate) fn check_boost_factor(factor: f64) -> std::result::Result<(), String> {
    if !factor.is_finite() || factor <= 0.0 || factor > MAX_BOOST_FACTOR {
        return Err(format!("factor {} must be finite, > 0 and ≤ 100 (MAX_BOOST_FACTOR)", shown(factor)));
    }
    if factor < MIN_BOOST_FACTOR {
        return Err(format!(
            "factor {} is below {MIN_BOOST_FACTOR:e} (MIN_BOOST_FACTOR){}",
            shown(factor),
            as_f32(factor)
        ));
    }
    Ok(())
}

/// Why a creative's boosts, each already checked, are refused together, if they are:
/// the factors below 1 multiply to less than [`MIN_BOOST_PRODUCT`], or those above 1 to
/// more than [`MAX_BOOST_PRODUCT`].
fn check_boost_product(boosts: &[BoostSpec]) -> std::result::Result<(), String> {
    let lower: f64 = boosts.iter().map(|b| b.factor.min(1.0)).product();
    let raise: f64 = boosts.iter().map(|b| b.factor.max(1.0)).product();
    if lower < MIN_BOOST_PRODUCT {
        return Err(format!(
            "the factors below 1 multiply to {} when every boost applies, below {MIN_BOOST_PRODUCT:e} \
             (MIN_BOOST_PRODUCT)",
            shown(lower)
        ));
    }
    if raise > MAX_BOOST_PRODUCT {
        return Err(format!(
            "the factors above 1 multiply to {} when every boost applies, above {MAX_BOOST_PRODUCT:e} \
             (MAX_BOOST_PRODUCT)",
            shown(raise)
        ));
    }
    Ok(())
}

/// ": as f32 it would be 0" when `x` rounds to 0 as `f32`, else nothing.
fn as_f32(x: f64) -> &'static str {
    if x as f32 == 0.0 {
        ": as f32 it would be 0"
    } else {
        ""
    }
}

/// A validated, compiled content catalog. Immutable; share it behind an `Arc`.
#[derive(Debug)]
pub struct Catalog {
    pub(crate) version: String,
    pub(crate) menu: PersonaMenu,
    pub(crate) placements: Vec<Placement>,
    placement_index: AHashMap<String, PlacementId>,
    pub(crate) ids: Vec<Box<str>>,
    creative_index: AHashMap<Symbol, CreativeId>,
    pub(crate) keys: Vec<Symbol>,
    payloads: Vec<Option<Box<RawValue>>>,
    components: Vec<Option<Component>>,
    pub(crate) rules: Vec<Rules>,
    pub(crate) tag_persona: Vec<PersonaId>,
    pub(crate) tag_weight: Vec<f32>,
    /// Per tag: its weight as a share, `w / max(1, Σw)` over the creative's tags, so
    /// listing more personas never inflates a creative's match.
    pub(crate) tag_share: Vec<f32>,
    /// Per tag: its rank among the creative's tags by weight (0 = primary), capped at 2.
    pub(crate) tag_rank: Vec<u8>,
    pub(crate) conditions: Vec<Condition>,
    pub(crate) boost_condition: Vec<Condition>,
    pub(crate) boost_factor: Vec<f32>,
    pub(crate) pool: ConditionPool,
    groups: Vec<String>,
    /// Per creative, its descriptive attributes: `attribute_span[c]` into
    /// `attribute_pairs` (name key, value key), sorted by name key.
    pub(crate) attribute_span: Vec<Span>,
    pub(crate) attribute_pairs: Vec<(Symbol, Symbol)>,
    /// Per attribute pair: the dense id of its (name, value), shared by every creative
    /// with the same pair: what learning keys attribute effects by.
    pub(crate) attribute_value: Vec<u32>,
    /// The distinct (name, value) pairs, by dense id.
    attribute_values: Vec<(Box<str>, Box<str>)>,
    attribute_value_index: AHashMap<(Symbol, Symbol), u32>,
    /// The templates (assembled creatives): their anchors and variants are creatives
    /// from `templates.first` on.
    pub(crate) templates: crate::assemble::compile::Templates,
}

/// Two catalogs are equal when they say the same thing: the same version label, menu,
/// placements, creatives (ids, payloads byte for byte, rules, tags, targeting, boosts,
/// attributes) and templates, whichever spec text or code they were compiled from. A
/// fleet compares the catalog it serves with the one its snapshot holds this way.
impl PartialEq for Catalog {
    fn eq(&self, other: &Self) -> bool {
        // Destructured, so that a field added to `Catalog` must be added here.
        let Catalog {
            version,
            menu,
            placements,
            placement_index: _,
            ids,
            creative_index: _,
            keys: _,
            payloads,
            components,
            rules,
            tag_persona,
            tag_weight,
            tag_share,
            tag_rank,
            conditions,
            boost_condition,
            boost_factor,
            pool,
            groups,
            attribute_span,
            attribute_pairs,
            attribute_value,
            attribute_values,
            attribute_value_index: _,
            templates,
        } = self;
        // The indexes (`placement_index`, `creative_index`, `keys`,
        // `attribute_value_index`) follow from the fields compared.
        *version == other.version
            && menu.names() == other.menu.names()
            && *placements == other.placements
            && *ids == other.ids
            && payloads.len() == other.payloads.len()
            && payloads
                .iter()
                .zip(&other.payloads)
                .all(|(a, b)| a.as_ref().map(|p| p.get()) == b.as_ref().map(|p| p.get()))
            && *components == other.components
            && *rules == other.rules
            && *tag_persona == other.tag_persona
            && *tag_weight == other.tag_weight
            && *tag_share == other.tag_share
            && *tag_rank == other.tag_rank
            && *conditions == other.conditions
            && *boost_condition == other.boost_condition
            && *boost_factor == other.boost_factor
            && *pool == other.pool
            && *groups == other.groups
            && *attribute_span == other.attribute_span
            && *attribute_pairs == other.attribute_pairs
            && *attribute_value == other.attribute_value
            && *attribute_values == other.attribute_values
            && *templates == other.templates
    }
}

impl Catalog {
    /// Parses and compiles a JSON catalog spec.
    pub fn from_json(json: &str) -> Result<Self> {
        Catalog::compile(&CatalogSpec::from_json(json)?)
    }

    /// Reads, parses and compiles a JSON catalog spec file. A file larger than
    /// [`MAX_SPEC_BYTES`] is refused before it is read.
    pub fn from_file(path: impl AsRef<std::path::Path>) -> Result<Self> {
        crate::limits::parse_file(
            path.as_ref(),
            "catalog spec",
            MAX_SPEC_BYTES,
            "MAX_SPEC_BYTES",
            Catalog::from_json,
        )
    }

    /// Validates `spec` and compiles it. Errors name the creative and field at fault:
    /// duplicate ids, unknown personas or placements, bad weights, schedules that end
    /// before they start, creatives with no placement, an empty catalog, and more.
    pub fn compile(spec: &CatalogSpec) -> Result<Self> {
        let menu = PersonaMenu::new(spec.personas.iter().cloned())?;
        if menu.is_empty() {
            return Err(Error::invalid("catalog", "personas", "the persona menu is empty"));
        }
        if spec.placements.is_empty() {
            return Err(Error::invalid("catalog", "placements", "no placements declared"));
        }
        if spec.placements.len() > MAX_PLACEMENTS {
            return Err(Error::invalid(
                "catalog",
                "placements",
                format!("{} placements (at most {MAX_PLACEMENTS})", spec.placements.len()),
            ));
        }
        if spec.creatives.is_empty() && spec.templates.is_empty() {
            return Err(Error::invalid("catalog", "creatives", "the catalog has no creatives"));
        }
        if spec.creatives.len() > MAX_CREATIVES {
            return Err(Error::invalid(
                "catalog",
                "creatives",
                format!("{} creatives (at most {MAX_CREATIVES})", spec.creatives.len()),
            ));
        }
        let mut placement_index = AHashMap::new();
        let mut placements = Vec::with_capacity(spec.placements.len());
        for (i, name) in spec.placements.iter().enumerate() {
            let field = format!("placements[{i}]");
            if name.trim().is_empty() {
                return Err(Error::invalid("catalog", field, "placement name is empty"));
            }
            if name.len() > MAX_ID_LEN {
                return Err(Error::invalid(
                    "catalog",
                    field,
                    format!("placement name longer than {MAX_ID_LEN} bytes"),
                ));
            }
            if let Some(problem) = crate::error::control_character(name) {
                return Err(Error::invalid("catalog", field, format!("placement name {problem}")));
            }
            if placement_index.insert(name.clone(), PlacementId(i as u16)).is_some() {
                return Err(Error::invalid(
                    "catalog",
                    field,
                    format!("duplicate placement '{}'", quote(name)),
                ));
            }
            placements.push(Placement {
                name: name.clone(),
                candidates: Vec::new(),
                fallbacks: Vec::new(),
                persona_offsets: Vec::new(),
                persona_members: Vec::new(),
                templates: Vec::new(),
                gates: Vec::new(),
                gate_persona_start: Vec::new(),
                gate_personas: Vec::new(),
                gate_counts: Vec::new(),
            });
        }

        let n = spec.creatives.len();
        let mut catalog = Catalog {
            version: spec.version.clone(),
            menu,
            placements,
            placement_index,
            ids: Vec::with_capacity(n),
            creative_index: AHashMap::with_capacity(n),
            keys: Vec::with_capacity(n),
            payloads: Vec::with_capacity(n),
            components: Vec::with_capacity(n),
            rules: Vec::with_capacity(n),
            tag_persona: Vec::new(),
            tag_weight: Vec::new(),
            tag_share: Vec::new(),
            tag_rank: Vec::new(),
            conditions: Vec::new(),
            boost_condition: Vec::new(),
            boost_factor: Vec::new(),
            pool: ConditionPool::default(),
            groups: Vec::new(),
            attribute_span: Vec::with_capacity(n),
            attribute_pairs: Vec::new(),
            attribute_value: Vec::new(),
            attribute_values: Vec::new(),
            attribute_value_index: AHashMap::new(),
            templates: Default::default(),
        };
        rules::validate(&spec.attribute_rules)?;
        rules::check_against(&spec.attribute_rules, || {
            let variants = spec.templates.iter().flat_map(|t| &t.slots).flat_map(|slot| &slot.variants);
            spec.creatives.iter().flat_map(|c| &c.attributes).chain(variants.flat_map(|v| &v.attributes))
        })?;
        let mut group_index: AHashMap<String, u32> = AHashMap::new();
        let mut matched = vec![false; spec.attribute_rules.len()];
        for (i, c) in spec.creatives.iter().enumerate() {
            let c = rules::apply(&spec.attribute_rules, c, &mut matched)?;
            catalog.add_creative(i, &c, &mut group_index, true)?;
        }
        catalog.templates =
            crate::assemble::compile::compile(&spec.templates, &mut catalog, |cat, c, listed| {
                let index = cat.ids.len();
                // A template's anchor (`listed`) carries no attributes: the rules reach its
                // variants, which do. Applied to the anchor, a rule with `not_in` alone
                // (which a creative without the attribute passes) would put its targeting
                // on every template, whatever its variants' attributes.
                let c = if listed {
                    std::borrow::Cow::Borrowed(c)
                } else {
                    rules::apply(&spec.attribute_rules, c, &mut matched)?
                };
                cat.add_creative(index, &c, &mut group_index, listed).map(|()| CreativeId(index as u32))
            })?;
        rules::check_matched(&spec.attribute_rules, &matched)?;
        let personas = catalog.menu.len();
        for p in &mut catalog.placements {
            let rules = &catalog.rules;
            p.fallbacks.sort_by(|a, b| {
                rules[b.index()].priority.total_cmp(&rules[a.index()].priority).then(a.cmp(b))
            });
            // Per-persona index: a counting sort into CSR.
            let mut offsets = vec![0u32; personas + 1];
            for c in &p.candidates {
                for t in rules[c.index()].tags.range() {
                    if catalog.tag_weight[t] > 0.0 {
                        offsets[catalog.tag_persona[t].index() + 1] += 1;
                    }
                }
            }
            for i in 1..offsets.len() {
                offsets[i] += offsets[i - 1];
            }
            let mut next = offsets.clone();
            let mut members = vec![CreativeId(0); offsets[personas] as usize];
            for c in &p.candidates {
                for t in rules[c.index()].tags.range() {
                    if catalog.tag_weight[t] > 0.0 {
                        let slot = &mut next[catalog.tag_persona[t].index()];
                        members[*slot as usize] = *c;
                        *slot += 1;
                    }
                }
            }
            p.persona_offsets = offsets;
            p.persona_members = members;
            let templates = &catalog.templates;
            p.templates = p.candidates.iter().copied().filter(|&c| templates.anchored(c).is_some()).collect();
            (p.gates, p.gate_persona_start, p.gate_personas, p.gate_counts) =
                gates_of(p, rules, &catalog.conditions, (&catalog.tag_weight, &catalog.tag_persona), |c| {
                    templates.anchored(c).is_some()
                });
        }
        catalog.tag_persona.shrink_to_fit();
        catalog.tag_weight.shrink_to_fit();
        catalog.tag_share.shrink_to_fit();
        catalog.tag_rank.shrink_to_fit();
        Ok(catalog)
    }

    /// Checks and stores one creative's descriptive attributes.
    fn add_attributes(&mut self, id: &str, attributes: &[(String, String)]) -> Result<()> {
        if attributes.len() > MAX_ATTRIBUTES {
            return Err(Error::creative(
                id,
                "attributes",
                format!("{} attributes (at most {MAX_ATTRIBUTES})", attributes.len()),
            ));
        }
        let mut checked: Vec<(Symbol, &str, &str)> = Vec::with_capacity(attributes.len());
        for (name, value) in attributes {
            for (what, text) in [("name", name), ("value", value)] {
                if text.trim().is_empty() {
                    return Err(Error::creative(id, "attributes", format!("an attribute {what} is empty")));
                }
                if text.len() > MAX_ATTRIBUTE_LEN {
                    return Err(Error::creative(
                        id,
                        "attributes",
                        format!(
                            "attribute {what} is {} bytes long (at most {MAX_ATTRIBUTE_LEN})",
                            text.len()
                        ),
                    ));
                }
            }
            checked.push((Symbol::of(name), name, value));
        }
        // Sorted by name key, so lookups and feature order do not depend on spec order.
        checked.sort_by_key(|(key, _, _)| *key);
        // One value per name: scoring and the pruned scan's bounds take a creative's
        // effect as one value's per name.
        if let Some(pair) = checked.windows(2).find(|pair| pair[0].0 == pair[1].0) {
            return Err(Error::creative(
                id,
                "attributes",
                format!("attribute '{}' is given twice ('{}' and '{}')", pair[0].1, pair[0].2, pair[1].2),
            ));
        }
        let start = self.attribute_pairs.len();
        for (key, name, value) in checked {
            let pair = (key, Symbol::of(value));
            let next = self.attribute_values.len() as u32;
            let id = *self.attribute_value_index.entry(pair).or_insert(next);
            if id == next {
                self.attribute_values.push((name.into(), value.into()));
            }
            self.attribute_pairs.push(pair);
            self.attribute_value.push(id);
        }
        self.attribute_span.push(Span { start: start as u32, len: attributes.len() as u32 });
        Ok(())
    }

    /// The descriptive attributes of a creative (name, value), as written in the spec.
    pub fn attributes(&self, creative: CreativeId) -> impl Iterator<Item = (&str, &str)> + '_ {
        let span = self.attribute_span.get(creative.index()).copied().unwrap_or(Span { start: 0, len: 0 });
        // Text is kept once per distinct pair, not per creative.
        self.attribute_value[span.range()]
            .iter()
            .filter_map(|&id| self.attribute_values.get(id as usize).map(|(k, v)| (&**k, &**v)))
    }

    /// How many distinct (name, value) attribute pairs the catalog's creatives carry.
    pub fn attribute_value_count(&self) -> usize {
        self.attribute_values.len()
    }

    /// The (name, value) of a distinct attribute pair by its dense id.
    pub(crate) fn attribute_value_text(&self, id: usize) -> Option<(&str, &str)> {
        self.attribute_values.get(id).map(|(k, v)| (&**k, &**v))
    }

    /// The dense id of an attribute pair, if any creative carries it.
    pub(crate) fn attribute_value_id(&self, name: &str, value: &str) -> Option<usize> {
        self.attribute_value_index.get(&(Symbol::of(name), Symbol::of(value))).map(|&i| i as usize)
    }

    /// The value of a creative's attribute `name`, if it has one.
    pub fn attribute(&self, creative: CreativeId, name: &str) -> Option<&str> {
        self.attributes(creative).find(|(k, _)| *k == name).map(|(_, v)| v)
    }

    fn add_creative(
        &mut self,
        index: usize,
        c: &CreativeSpec,
        groups: &mut AHashMap<String, u32>,
        listed: bool,
    ) -> Result<()> {
        let id = c.id.as_str();
        if id.trim().is_empty() {
            return Err(Error::creative(&format!("#{index}"), "id", "creative id is empty"));
        }
        if id.len() > MAX_ID_LEN {
            return Err(Error::creative(
                id,
                "id",
                format!("id is {} bytes long (at most {MAX_ID_LEN})", id.len()),
            ));
        }
        if let Some(problem) = crate::error::control_character(id) {
            return Err(Error::creative(id, "id", format!("id {problem}")));
        }
        let key = Symbol::of(id);
        let cid = CreativeId(index as u32);
        if let Some(prev) = self.creative_index.insert(key, cid) {
            let problem = if &*self.ids[prev.index()] == id {
                format!("duplicate creative id (also creative #{})", prev.0)
            } else {
                format!("id collides with the key of '{}' (rename one)", quote(&self.ids[prev.index()]))
            };
            return Err(Error::creative(id, "id", problem));
        }

        // Placements.
        if c.placements.is_empty() {
            return Err(Error::creative(id, "placements", "lists no placement"));
        }
        let mut seen_placements: Vec<PlacementId> = Vec::with_capacity(c.placements.len());
        for name in &c.placements {
            let pid = *self.placement_index.get(name).ok_or_else(|| {
                let known = self.placement_index.keys().map(String::as_str);
                Error::creative(id, "placements", crate::suggest::unknown("placement", name, known))
            })?;
            if seen_placements.contains(&pid) {
                return Err(Error::creative(
                    id,
                    "placements",
                    format!("placement '{}' listed twice", quote(name)),
                ));
            }
            seen_placements.push(pid);
        }

        // Persona tags.
        if c.personas.len() > MAX_TAGS {
            return Err(Error::creative(
                id,
                "personas",
                format!("{} persona tags (at most {MAX_TAGS})", c.personas.len()),
            ));
        }
        let tags = Span { start: self.tag_persona.len() as u32, len: c.personas.len() as u32 };
        let mut theme = (u16::MAX, 0.0f64);
        for (name, weight) in &c.personas {
            let pid = self.menu.get(name).ok_or_else(|| {
                // A tag the menu spells differently (or a typo in either): name the tag
                // and the closest menu names, so the user sees which one to fix.
                let names = self.menu.names().iter().map(String::as_str);
                Error::creative(id, "personas", crate::suggest::unknown("persona", name, names))
            })?;
            check_tag_weight(*weight).map_err(|problem| {
                Error::creative(
                    id,
                    "personas",
                    format!("weight of persona '{}' is {} ({problem})", quote(name), shown(*weight)),
                )
            })?;
            if self.tag_persona[tags.start as usize..].contains(&pid) {
                return Err(Error::creative(
                    id,
                    "personas",
                    format!("persona '{}' is listed twice (give it one weight)", quote(name)),
                ));
            }
            if *weight > theme.1 {
                theme = (pid.0, *weight);
            }
            self.tag_persona.push(pid);
            self.tag_weight.push(*weight as f32);
        }
        let weights = &self.tag_weight[tags.range()];
        let total: f32 = weights.iter().sum::<f32>().max(1.0);
        for (i, &w) in weights.iter().enumerate() {
            let heavier = weights.iter().enumerate().filter(|&(j, &v)| v > w || (v == w && j < i)).count();
            self.tag_share.push(w / total);
            self.tag_rank.push(heavier.min(2) as u8);
        }

        // Targeting and boosts.
        let targeting = match &c.targeting {
            Some(t) => {
                let cond = self.pool.compile(id, "targeting", t)?;
                self.conditions.push(cond);
                (self.conditions.len() - 1) as u32
            }
            None => NONE,
        };
        if c.boosts.len() > MAX_BOOSTS {
            return Err(Error::creative(
                id,
                "boosts",
                format!("{} boosts (at most {MAX_BOOSTS})", c.boosts.len()),
            ));
        }
        let boosts = Span { start: self.boost_factor.len() as u32, len: c.boosts.len() as u32 };
        for b in &c.boosts {
            check_boost_factor(b.factor).map_err(|problem| Error::creative(id, "boosts", problem))?;
            let cond = self.pool.compile(id, "boosts", &b.when)?;
            self.boost_condition.push(cond);
            self.boost_factor.push(b.factor as f32);
        }

        check_boost_product(&c.boosts).map_err(|problem| Error::creative(id, "boosts", problem))?;

        // Schedule.
        let (mut start, mut end) = (i64::MIN, i64::MAX);
        if let Some(s) = &c.schedule {
            if let Some(t) = &s.start {
                start = t.to_unix().map_err(|e| Error::creative(id, "schedule.start", e))?;
            }
            if let Some(t) = &s.end {
                end = t.to_unix().map_err(|e| Error::creative(id, "schedule.end", e))?;
            }
            if end <= start {
                return Err(Error::creative(id, "schedule", "end is not after start"));
            }
        }

        // Priority, cap, intimacy, data needs, component, group, payload.
        check_priority(c.priority).map_err(|problem| Error::creative(id, "priority", problem))?;
        let (cap_impressions, cap_window) = match c.frequency_cap {
            Some(cap) => {
                if cap.impressions == 0 {
                    return Err(Error::creative(id, "frequency_cap.impressions", "must be at least 1"));
                }
                if cap.impressions as usize > crate::profile::MAX_EXPOSURES {
                    return Err(Error::creative(
                        id,
                        "frequency_cap.impressions",
                        format!(
                            "{} is more than a profile remembers ({} exposures, MAX_EXPOSURES): the cap could \
                             never be reached",
                            cap.impressions,
                            crate::profile::MAX_EXPOSURES
                        ),
                    ));
                }
                if cap.window_seconds == 0 || cap.window_seconds > 366 * 86_400 {
                    return Err(Error::creative(
                        id,
                        "frequency_cap.window_seconds",
                        format!("{} must be between 1 and {} (366 days)", cap.window_seconds, 366 * 86_400),
                    ));
                }
                (cap.impressions, cap.window_seconds as u32)
            }
            None => (0, 0),
        };
        let intimacy = Intimacy::parse(&c.intimacy).ok_or_else(|| {
            Error::creative(
                id,
                "intimacy",
                format!("unknown level '{}' (generic, segment, personal, intimate)", quote(&c.intimacy)),
            )
        })?;
        let mut needs = DataClasses::NONE;
        for name in &c.data_classes {
            let class = DataClass::parse(name).ok_or_else(|| {
                Error::creative(
                    id,
                    "data_classes",
                    format!(
                        "unknown data class '{}' (behavioral, purchase, location, demographic, declared, third_party)",
                        quote(name)
                    ),
                )
            })?;
            needs = needs.with(class);
        }
        let component = match &c.component {
            Some(name) => Some(Component::parse(name).ok_or_else(|| {
                Error::creative(
                    id,
                    "component",
                    format!("unknown component '{}' (headline, image, call_to_action, offer, banner, email_block)", quote(name)),
                )
            })?),
            None => None,
        };
        let group = match &c.exclusion_group {
            Some(g) if g.trim().is_empty() => {
                return Err(Error::creative(id, "exclusion_group", "group name is empty"));
            }
            Some(g) => {
                if let Some(problem) = name_problem("group name", g) {
                    return Err(Error::creative(id, "exclusion_group", problem));
                }
                let next = self.groups.len() as u32;
                let gid = *groups.entry(g.clone()).or_insert(next);
                if gid == next {
                    self.groups.push(g.clone());
                }
                gid
            }
            None => NONE,
        };
        self.add_attributes(id, &c.attributes)?;
        if let Some(p) = &c.payload {
            if p.get().len() > MAX_PAYLOAD {
                return Err(Error::creative(
                    id,
                    "payload",
                    format!("payload is {} bytes (at most {MAX_PAYLOAD})", p.get().len()),
                ));
            }
        }
        if c.fallback {
            let problem = if c.targeting.is_some() {
                Some("targeting")
            } else if c.schedule.is_some() {
                Some("a schedule")
            } else if !c.data_classes.is_empty() {
                Some("data_classes")
            } else if intimacy != Intimacy::Generic {
                Some("an intimacy above generic")
            } else if c.frequency_cap.is_some() {
                Some("a frequency_cap")
            } else {
                None
            };
            if let Some(what) = problem {
                return Err(Error::creative(
                    id,
                    "fallback",
                    format!("a fallback must be safe to show anyone at any time, but this one has {what}"),
                ));
            }
            // Fallbacks are shown in catalog order when nothing else is eligible, never
            // scored: boosts on one would be ignored, so they are refused.
            if !c.boosts.is_empty() {
                return Err(Error::creative(
                    id,
                    "boosts",
                    "a fallback is never boosted (fallbacks are shown in catalog order when nothing else \
                     is eligible): remove its boosts",
                ));
            }
        }

        for pid in seen_placements.into_iter().filter(|_| listed) {
            let placement = &mut self.placements[pid.0 as usize];
            if c.fallback {
                placement.fallbacks.push(cid);
            } else {
                placement.candidates.push(cid);
            }
        }
        self.rules.push(Rules {
            start,
            end,
            priority: c.priority as f32,
            targeting,
            group,
            tags,
            boosts,
            cap_impressions,
            cap_window,
            theme: theme.0,
            max_boost: c.boosts.iter().map(|b| b.factor.max(1.0) as f32).product(),
            intimacy,
            needs,
            fallback: c.fallback,
        });
        self.ids.push(id.into());
        self.keys.push(key);
        self.payloads.push(c.payload.clone());
        self.components.push(component);
        Ok(())
    }

    /// The benchmarks' *scan floor*: the cheapest possible pass over the same candidate
    /// data `select` reads, one persona-weight product per tag of every candidate in the
    /// placement and a running maximum, with no rules, no learning, no exploration.
    /// `persona_weights[p]` is the person's weight on persona p. Every select figure in
    /// the performance report is read as a multiple of this, measured in the same run.
    pub fn scan_floor(&self, placement: PlacementId, persona_weights: &[f32]) -> Option<(CreativeId, f32)> {
        let place = self.placements.get(placement.0 as usize)?;
        let mut best: Option<(CreativeId, f32)> = None;
        for &c in &place.candidates {
            let r = &self.rules[c.index()];
            let mut score = 0.0f32;
            for t in r.tags.range() {
                score += self.tag_weight[t]
                    * persona_weights.get(self.tag_persona[t].index()).copied().unwrap_or(0.0);
            }
            if best.is_none_or(|(_, b)| score > b) {
                best = Some((c, score));
            }
        }
        best
    }

    /// The persona menu.
    pub fn menu(&self) -> &PersonaMenu {
        &self.menu
    }

    /// The catalog's version label.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Number of creatives.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True when the catalog has no creatives (never, for a compiled catalog).
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The id of placement `name`, or [`Error::UnknownPlacement`].
    pub fn placement(&self, name: &str) -> Result<PlacementId> {
        self.placement_index.get(name).copied().ok_or_else(|| Error::UnknownPlacement {
            name: name.to_owned(),
            did_you_mean: crate::suggest::closest(name, self.placements.iter().map(|p| p.name.as_str())),
        })
    }

    /// The name of a placement (`"?"` for an id from another catalog).
    pub fn placement_name(&self, id: PlacementId) -> &str {
        self.placements.get(id.0 as usize).map_or("?", |p| p.name.as_str())
    }

    /// Number of placements.
    pub fn placement_count(&self) -> usize {
        self.placements.len()
    }

    /// Number of non-fallback candidates in a placement (0 for an unknown id).
    pub fn candidate_count(&self, id: PlacementId) -> usize {
        self.placements.get(id.0 as usize).map_or(0, |p| p.candidates.len())
    }

    /// The id of creative `id`, or [`Error::UnknownCreative`].
    pub fn creative(&self, id: &str) -> Result<CreativeId> {
        self.creative_index.get(&Symbol::of(id)).copied().filter(|c| &*self.ids[c.index()] == id).ok_or_else(
            || Error::UnknownCreative {
                id: id.to_owned(),
                did_you_mean: crate::suggest::closest(id, self.ids.iter().map(|c| &**c)),
            },
        )
    }

    /// The creative whose key (`Symbol::of(id)`) is `key`, as stored in profiles.
    #[inline]
    pub fn creative_by_key(&self, key: Symbol) -> Option<CreativeId> {
        self.creative_index.get(&key).copied()
    }

    /// The string id of a creative (`"?"` for an id from another catalog).
    pub fn creative_id(&self, id: CreativeId) -> &str {
        self.ids.get(id.index()).map_or("?", |s| s)
    }

    /// The stable key of a creative, as stored in profiles (`Symbol::of(id string)`).
    pub fn creative_key(&self, id: CreativeId) -> Option<Symbol> {
        self.keys.get(id.index()).copied()
    }

    /// The creative's payload as the exact JSON text of the spec, if it has one.
    pub fn payload(&self, id: CreativeId) -> Option<&str> {
        self.payloads.get(id.index()).and_then(|p| p.as_deref()).map(RawValue::get)
    }

    /// The creative's component kind, if it has one.
    pub fn component(&self, id: CreativeId) -> Option<Component> {
        self.components.get(id.index()).copied().flatten()
    }

    /// The creative's intimacy level.
    pub fn intimacy(&self, id: CreativeId) -> Option<Intimacy> {
        self.rules.get(id.index()).map(|r| r.intimacy)
    }

    /// The data classes the creative relies on.
    pub fn data_needs(&self, id: CreativeId) -> Option<DataClasses> {
        self.rules.get(id.index()).map(|r| r.needs)
    }

    /// The creative's persona tags with their weights.
    pub fn tags(&self, id: CreativeId) -> impl Iterator<Item = (PersonaId, f32)> + '_ {
        let span = self.rules.get(id.index()).map_or(Span::default(), |r| r.tags);
        span.range().map(move |i| (self.tag_persona[i], self.tag_weight[i]))
    }

    /// The creative's exclusion group name, if any.
    pub fn exclusion_group(&self, id: CreativeId) -> Option<&str> {
        let g = self.rules.get(id.index())?.group;
        self.groups.get(g as usize).map(String::as_str)
    }

    /// The creative's frequency cap, if any.
    pub fn frequency_cap(&self, id: CreativeId) -> Option<FrequencyCap> {
        let r = self.rules.get(id.index())?;
        (r.cap_impressions > 0)
            .then_some(FrequencyCap { impressions: r.cap_impressions, window_seconds: r.cap_window })
    }

    /// True when the creative is a fallback.
    pub fn is_fallback(&self, id: CreativeId) -> bool {
        self.rules.get(id.index()).is_some_and(|r| r.fallback)
    }
}
