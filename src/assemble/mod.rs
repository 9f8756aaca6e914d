//! Assembled creatives: templates whose slots (headline, image, call to action, …) are
//! filled per request with the variants that best fit one theme. Owns the template spec,
//! its validation and compiled form, the assembly algorithm and the assembled result;
//! the selector calls in to score a template like any candidate. Never allocates while
//! assembling.
//!
//! A template compiles to one *anchor* creative that competes in its placements, and
//! each variant to an internal creative of its own (id `template/variant`) that is never
//! a candidate on its own, so learning, statistics, caps and rejections apply per
//! variant unchanged.

pub(crate) mod compile;
pub(crate) mod pick;
mod spec;

pub use spec::{SlotSpec, TemplateSpec, VariantSpec};

use crate::catalog::{Catalog, CreativeId};
use crate::persona::PersonaId;
use compile::NO_VARIANT;

/// The most slots one template may have.
pub const MAX_SLOTS: usize = 8;
/// The most variants one slot may hold.
pub const MAX_VARIANTS: usize = 64;
/// The most `requires` or `excludes` entries on one variant.
pub const MAX_VARIANT_RULES: usize = 16;
/// The most personas the variants of one template may speak to (the themes tried).
pub const MAX_TEMPLATE_THEMES: usize = 64;

/// What one slot of an assembled pick holds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SlotChoice {
    /// The chosen variant (an internal creative: resolve its spec id with
    /// [`Catalog::variant_id`] and its payload with [`Catalog::payload`]).
    pub variant: CreativeId,
    /// The variant's score on the same scale as a pick's score (what the slot ranked by).
    pub score: f32,
    /// The persona that contributed most to the variant's match, if any.
    pub persona: Option<PersonaId>,
    /// That persona's score for this person (0..=9).
    pub persona_score: u8,
    /// The variant's persona match `Σ w·s/9`.
    pub persona_match: f32,
    /// The variant's estimated click rate (0 under the rules policy).
    pub estimate: f32,
    /// Impressions behind that estimate.
    pub evidence: f32,
}

const EMPTY_CHOICE: SlotChoice = SlotChoice {
    variant: CreativeId(u32::MAX),
    score: 0.0,
    persona: None,
    persona_score: 0,
    persona_match: 0.0,
    estimate: 0.0,
    evidence: 0.0,
};

/// An assembled pick: the template, the theme its variants share and one variant per
/// slot, in slot order. Fixed size, no heap.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Assembly {
    template: CreativeId,
    theme: Option<PersonaId>,
    len: u8,
    slots: [SlotChoice; MAX_SLOTS],
}

impl Assembly {
    pub(crate) fn new(template: CreativeId, theme: Option<PersonaId>) -> Self {
        Assembly { template, theme, len: 0, slots: [EMPTY_CHOICE; MAX_SLOTS] }
    }

    pub(crate) fn push(&mut self, choice: SlotChoice) {
        if let Some(slot) = self.slots.get_mut(usize::from(self.len)) {
            *slot = choice;
            self.len += 1;
        }
    }

    /// The template (the creative id of the pick).
    pub fn template(&self) -> CreativeId {
        self.template
    }

    /// The persona every chosen variant speaks to (or is generic for), or `None` when
    /// the assembly is generic.
    pub fn theme(&self) -> Option<PersonaId> {
        self.theme
    }

    /// One choice per slot, in the template's slot order.
    pub fn slots(&self) -> &[SlotChoice] {
        &self.slots[..usize::from(self.len)]
    }
}

impl Catalog {
    /// True when `creative` is a template (its picks are assembled).
    pub fn is_template(&self, creative: CreativeId) -> bool {
        self.templates.anchored(creative).is_some()
    }

    /// The number of templates.
    pub fn template_count(&self) -> usize {
        self.templates.list.len()
    }

    /// The slot names of a template, in order (empty for anything else).
    pub fn slot_names(&self, template: CreativeId) -> impl Iterator<Item = &str> + '_ {
        self.templates.anchored(template).into_iter().flat_map(|t| t.slots.iter().map(|s| &*s.name))
    }

    /// The name of slot `slot` of `template`, if both exist.
    pub fn slot_name(&self, template: CreativeId, slot: usize) -> Option<&str> {
        self.templates.anchored(template)?.slots.get(slot).map(|s| &*s.name)
    }

    /// The spec id of a variant (unique within its template), or `None` when `creative`
    /// is not a variant. Its catalog id ([`Catalog::creative_id`]) is `template/variant`.
    pub fn variant_id(&self, creative: CreativeId) -> Option<&str> {
        match self.templates.role(creative)? {
            (_, NO_VARIANT) => None,
            (t, v) => self.templates.list.get(t)?.variants.get(usize::from(v)).map(|v| &*v.id),
        }
    }

    /// The template a variant belongs to, or `None` when `creative` is not a variant.
    pub fn variant_template(&self, creative: CreativeId) -> Option<CreativeId> {
        match self.templates.role(creative)? {
            (_, NO_VARIANT) => None,
            (t, _) => self.templates.list.get(t).map(|t| t.anchor),
        }
    }

    /// The variant with spec id `variant` in `template`, if any.
    pub fn variant(&self, template: CreativeId, variant: &str) -> Option<CreativeId> {
        let t = self.templates.anchored(template)?;
        t.variants.iter().find(|v| &*v.id == variant).map(|v| v.creative)
    }
}
