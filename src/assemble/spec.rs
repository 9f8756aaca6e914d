//! The template spec: the serde, string-keyed form of an assembled creative (a template
//! with slots, each slot holding variants) as people write it in a catalog. Only data;
//! [`compile`](super::compile) checks it.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::catalog::{BoostSpec, ConditionSpec, CreativeSpec, FrequencyCapSpec, ScheduleSpec};
use crate::profile::ordered_map;

/// An assembled creative: a template whose slots (headline, image, call to action, …)
/// are filled per request with one variant each, all speaking to one theme.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateSpec {
    /// Unique id among creatives and templates, handed back on every assembled pick.
    pub id: String,
    /// Placements the template fits (at least one); it competes there with the plain
    /// creatives on the same scale.
    #[serde(
        deserialize_with = "crate::limits::bounded::vec::<_, _, crate::limits::counted::CreativePlacements>"
    )]
    pub placements: Vec<String>,
    /// The slots, in assembly order (at least one).
    #[serde(deserialize_with = "crate::limits::bounded::vec::<_, _, crate::limits::counted::Slots>")]
    pub slots: Vec<SlotSpec>,
    /// Business priority of the whole template, a multiplier from 1e-6 to 1e6
    /// ([`MIN_PRIORITY`](crate::limits::MIN_PRIORITY),
    /// [`MAX_PRIORITY`](crate::limits::MAX_PRIORITY)). Default 1.
    #[serde(default = "one")]
    pub priority: f64,
    /// Hard context rules for the whole template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub targeting: Option<ConditionSpec>,
    /// When the template may run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<ScheduleSpec>,
    /// At most this many impressions of the template per person per window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency_cap: Option<FrequencyCapSpec>,
    /// Templates and creatives of one exclusion group never appear together. Named as
    /// a creative's group is (not empty, at most
    /// [`MAX_ID_LEN`](crate::limits::MAX_ID_LEN) bytes, no control characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclusion_group: Option<String>,
}

/// One slot of a template: a name (`headline`, `image`, …) and its variants.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlotSpec {
    /// The slot's name, unique in the template; the pick hands each chosen variant back
    /// under it.
    pub name: String,
    /// When true the slot must hold a generic variant (one with no persona tag), so
    /// every theme can be completed.
    #[serde(default)]
    pub generic_required: bool,
    /// The variants (at least one).
    #[serde(deserialize_with = "crate::limits::bounded::vec::<_, _, crate::limits::counted::Variants>")]
    pub variants: Vec<VariantSpec>,
}

/// One variant of a slot: tagged, targeted and scored like any creative, plus rules
/// naming other variants of the same template.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariantSpec {
    /// Unique id among the template's variants (all slots).
    pub id: String,
    /// Persona name → weight: the personas it speaks to; none makes it generic (it fits
    /// every theme). Weights are bounded like a creative's
    /// ([`MAX_TAG_WEIGHT`](crate::limits::MAX_TAG_WEIGHT)).
    #[serde(
        default,
        serialize_with = "ordered_map::serialize",
        deserialize_with = "crate::limits::bounded::map::<_, _, crate::limits::counted::Tags>"
    )]
    pub personas: Vec<(String, f64)>,
    /// Hard context rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub targeting: Option<ConditionSpec>,
    /// Soft context rules.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "crate::limits::bounded::vec::<_, _, crate::limits::counted::Boosts>"
    )]
    pub boosts: Vec<BoostSpec>,
    /// When the variant may run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<ScheduleSpec>,
    /// Priority multiplier from 1e-6 to 1e6 ([`MIN_PRIORITY`](crate::limits::MIN_PRIORITY),
    /// [`MAX_PRIORITY`](crate::limits::MAX_PRIORITY)). Default 1.
    #[serde(default = "one")]
    pub priority: f64,
    /// At most this many impressions of this variant per person per window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency_cap: Option<FrequencyCapSpec>,
    /// How personal it feels: `generic` (default), `segment`, `personal`, `intimate`.
    #[serde(default = "generic")]
    pub intimacy: String,
    /// Data classes it relies on: shown only with consent to all of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data_classes: Vec<String>,
    /// Optional component kind (`headline`, `image`, `call_to_action`, `offer`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
    /// Opaque payload, handed back byte for byte under the slot's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<Box<RawValue>>,
    /// Free descriptive attributes, learned like a creative's.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        serialize_with = "ordered_map::serialize",
        deserialize_with = "crate::limits::bounded::map::<_, _, crate::limits::counted::Attributes>"
    )]
    pub attributes: Vec<(String, String)>,
    /// Variants of other slots that must be chosen with this one (at most one per slot).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "crate::limits::bounded::vec::<_, _, crate::limits::counted::VariantRequires>"
    )]
    pub requires: Vec<String>,
    /// Variants that must never be chosen with this one (the rule holds both ways).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "crate::limits::bounded::vec::<_, _, crate::limits::counted::VariantExcludes>"
    )]
    pub excludes: Vec<String>,
}

fn one() -> f64 {
    1.0
}

fn generic() -> String {
    "generic".to_owned()
}

impl TemplateSpec {
    /// A template with this id and nothing else; add to it with the builder methods.
    pub fn new(id: impl Into<String>) -> Self {
        TemplateSpec {
            id: id.into(),
            placements: Vec::new(),
            slots: Vec::new(),
            priority: 1.0,
            targeting: None,
            schedule: None,
            frequency_cap: None,
            exclusion_group: None,
        }
    }

    /// Adds a placement.
    pub fn placement(mut self, name: &str) -> Self {
        self.placements.push(name.to_owned());
        self
    }

    /// Adds a slot.
    pub fn slot(mut self, slot: SlotSpec) -> Self {
        self.slots.push(slot);
        self
    }

    /// Sets the priority.
    pub fn priority(mut self, priority: f64) -> Self {
        self.priority = priority;
        self
    }

    /// The creative that stands for the whole template in its placements (no tags; the
    /// template-level rules).
    pub(crate) fn anchor(&self) -> CreativeSpec {
        let mut c = CreativeSpec::new(self.id.clone());
        c.placements.clone_from(&self.placements);
        c.priority = self.priority;
        c.targeting.clone_from(&self.targeting);
        c.schedule.clone_from(&self.schedule);
        c.frequency_cap = self.frequency_cap;
        c.exclusion_group.clone_from(&self.exclusion_group);
        c
    }
}

impl SlotSpec {
    /// A slot with this name and no variants yet.
    pub fn new(name: impl Into<String>) -> Self {
        SlotSpec { name: name.into(), generic_required: false, variants: Vec::new() }
    }

    /// Requires a generic variant in this slot.
    pub fn generic_required(mut self) -> Self {
        self.generic_required = true;
        self
    }

    /// Adds a variant.
    pub fn variant(mut self, variant: VariantSpec) -> Self {
        self.variants.push(variant);
        self
    }
}

impl VariantSpec {
    /// A generic variant with this id and nothing else.
    pub fn new(id: impl Into<String>) -> Self {
        VariantSpec {
            id: id.into(),
            personas: Vec::new(),
            targeting: None,
            boosts: Vec::new(),
            schedule: None,
            priority: 1.0,
            frequency_cap: None,
            intimacy: generic(),
            data_classes: Vec::new(),
            component: None,
            payload: None,
            attributes: Vec::new(),
            requires: Vec::new(),
            excludes: Vec::new(),
        }
    }

    /// Adds a persona tag; its weight is checked when the catalog compiles (0, or from
    /// [`MIN_TAG_WEIGHT`](crate::limits::MIN_TAG_WEIGHT) to
    /// [`MAX_TAG_WEIGHT`](crate::limits::MAX_TAG_WEIGHT)).
    pub fn persona(mut self, name: &str, weight: f64) -> Self {
        self.personas.push((name.to_owned(), weight));
        self
    }

    /// Sets the priority.
    pub fn priority(mut self, priority: f64) -> Self {
        self.priority = priority;
        self
    }

    /// Sets the hard targeting rules.
    pub fn targeting(mut self, rules: ConditionSpec) -> Self {
        self.targeting = Some(rules);
        self
    }

    /// Sets the intimacy level by name.
    pub fn intimacy(mut self, level: &str) -> Self {
        self.intimacy = level.to_owned();
        self
    }

    /// Adds a data class the variant relies on.
    pub fn needs(mut self, class: &str) -> Self {
        self.data_classes.push(class.to_owned());
        self
    }

    /// Adds a variant this one requires.
    pub fn requires(mut self, variant: &str) -> Self {
        self.requires.push(variant.to_owned());
        self
    }

    /// Adds a variant this one excludes.
    pub fn excludes(mut self, variant: &str) -> Self {
        self.excludes.push(variant.to_owned());
        self
    }

    /// Sets the payload from JSON text. Errors when `json` is not valid JSON.
    pub fn payload_json(mut self, json: &str) -> crate::error::Result<Self> {
        let raw = RawValue::from_string(json.to_owned())
            .map_err(|source| crate::error::Error::Json { what: "payload", source })?;
        self.payload = Some(raw);
        Ok(self)
    }

    /// The internal creative this variant is compiled to: its own index, so learning,
    /// statistics, caps and rejections work on it as on any creative.
    pub(crate) fn creative(&self, internal_id: String, placements: &[String]) -> CreativeSpec {
        let mut c = CreativeSpec::new(internal_id);
        c.placements = placements.to_vec();
        c.personas.clone_from(&self.personas);
        c.targeting.clone_from(&self.targeting);
        c.boosts.clone_from(&self.boosts);
        c.schedule.clone_from(&self.schedule);
        c.priority = self.priority;
        c.frequency_cap = self.frequency_cap;
        c.intimacy.clone_from(&self.intimacy);
        c.data_classes.clone_from(&self.data_classes);
        c.component.clone_from(&self.component);
        c.payload.clone_from(&self.payload);
        c.attributes.clone_from(&self.attributes);
        c
    }
}
