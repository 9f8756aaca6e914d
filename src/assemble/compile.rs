//! Validation and the compiled form of templates. Each template becomes one *anchor*
//! creative (listed in its placements, no persona tags) and each variant one internal
//! creative (never listed on its own), so eligibility, scoring, learning, statistics,
//! caps and rejections all work on them unchanged. Every error names the template, and
//! the slot and variant when one is at fault.

use ahash::AHashMap;

use super::spec::{SlotSpec, TemplateSpec};
use super::{MAX_SLOTS, MAX_TEMPLATE_THEMES};
use crate::catalog::{Catalog, CreativeId, CreativeSpec};
use crate::error::{quote, Error, Result};

/// Sentinel: "no variant" / "the anchor" in `u16` variant fields.
pub(crate) const NO_VARIANT: u16 = u16::MAX;

/// One compiled variant.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Variant {
    /// Its internal creative.
    pub creative: CreativeId,
    /// Its id in the spec (unique in the template).
    pub id: Box<str>,
    /// The slot it belongs to.
    pub slot: u8,
    /// Bit i set when it fits theme `themes[i]` (all bits for a generic variant).
    pub mask: u64,
    /// True when it has no persona tag: it fits every theme and the generic one.
    pub generic: bool,
    /// Variants (template-local indexes) that must be chosen with it.
    pub requires: Vec<u16>,
    /// Variants that must never be chosen with it (both directions folded in).
    pub excludes: Vec<u16>,
}

/// One compiled slot: its name and its variants `variants[start..end]`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Slot {
    pub name: Box<str>,
    pub start: u16,
    pub end: u16,
}

/// One compiled template.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Template {
    /// The creative standing for the template in its placements.
    pub anchor: CreativeId,
    pub slots: Vec<Slot>,
    pub variants: Vec<Variant>,
    /// The persona themes its variants speak to (persona ids, ascending), at most
    /// [`MAX_TEMPLATE_THEMES`]; the generic theme is tried in addition.
    pub themes: Vec<u16>,
    /// For the rules bound: the template's priority, the mean over slots of the largest
    /// `priority · max boost` of a variant, and per persona (ascending) the mean over
    /// slots of the largest `priority · max boost · tag share` of a variant for it.
    pub priority: f32,
    /// `ln(priority)` (priority at least the smallest positive float), for the learned
    /// bounds in log space.
    pub ln_priority: f32,
    /// The personas its variants speak to, as a bitset (64 personas per word).
    pub persona_mask: Vec<u64>,
    /// Per slot and theme (`slot · themes.len() + i`), the largest tag weight a variant
    /// of the slot gives persona `themes[i]`: for bounds that read only the personas
    /// the template and the person share.
    pub slot_theme_weight: Vec<f32>,
    pub reach: f32,
    pub persona_reach: Vec<(u16, f32)>,
}

impl Template {
    /// An upper bound of the template's rules score for a person with persona weights
    /// `weights` (`s/9` per counted persona) and the configured `prior`: each slot's
    /// best variant can at most have the largest priority and boost of its slot and
    /// the largest share of each persona, so the assembly's mean is at most the mean of
    /// those maxima. O(themes), no scoring.
    #[inline]
    pub fn rules_bound(&self, weights: &[f32], prior: f32) -> f32 {
        let mut x = prior * self.reach;
        for &(p, reach) in &self.persona_reach {
            x += weights.get(usize::from(p)).copied().unwrap_or(0.0).max(0.0) * reach;
        }
        self.priority * x
    }
}

/// Every template of a catalog, and which creative belongs to which.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Templates {
    pub list: Vec<Template>,
    /// The first creative id that belongs to a template (every later one does too).
    pub first: u32,
    /// Per creative from `first` on: (template, variant or [`NO_VARIANT`] for the anchor).
    pub role: Vec<(u32, u16)>,
    /// The most variants one template holds (scratch sizing).
    pub most_variants: usize,
}

impl Templates {
    /// (template, variant or [`NO_VARIANT`]) for a creative that belongs to a template.
    #[inline]
    pub fn role(&self, creative: CreativeId) -> Option<(usize, u16)> {
        let at = creative.0.checked_sub(self.first)? as usize;
        self.role.get(at).map(|&(t, v)| (t as usize, v))
    }

    /// The template a creative anchors, if it is an anchor.
    #[inline]
    pub fn anchored(&self, creative: CreativeId) -> Option<&Template> {
        match self.role(creative) {
            Some((t, NO_VARIANT)) => self.list.get(t),
            _ => None,
        }
    }
}

fn template_error(
    template: &str,
    slot: Option<&str>,
    variant: Option<&str>,
    field: &str,
    problem: String,
) -> Error {
    Error::InvalidTemplate {
        template: template.to_owned(),
        slot: slot.map(str::to_owned),
        variant: variant.map(str::to_owned),
        field: field.to_owned(),
        problem,
    }
}

/// Re-labels an error about an internal creative as one about the template (and slot,
/// variant) it came from.
fn relabel(error: Error, template: &str, slot: Option<&str>, variant: Option<&str>) -> Error {
    match error {
        Error::InvalidCreative { field, problem, .. } => {
            template_error(template, slot, variant, field, problem)
        }
        other => other,
    }
}

/// Validates `specs` and adds their anchors and variants to `catalog` through `add`
/// (`listed` false for variants: they never stand alone in a placement).
pub(crate) fn compile(
    specs: &[TemplateSpec],
    catalog: &mut Catalog,
    mut add: impl FnMut(&mut Catalog, &CreativeSpec, bool) -> Result<CreativeId>,
) -> Result<Templates> {
    let mut out = Templates { first: catalog.len() as u32, ..Templates::default() };
    for spec in specs {
        let t = out.list.len() as u32;
        let name = spec.id.as_str();
        let anchor = add(catalog, &spec.anchor(), true).map_err(|e| relabel(e, name, None, None))?;
        out.role.push((t, NO_VARIANT));
        let index = check_shape(spec)?;
        let mut variants = Vec::with_capacity(index.len());
        let mut slots = Vec::with_capacity(spec.slots.len());
        for (s, slot) in spec.slots.iter().enumerate() {
            let start = variants.len() as u16;
            for v in &slot.variants {
                let internal = format!("{name}/{}", v.id);
                let creative = add(catalog, &v.creative(internal, &spec.placements), false)
                    .map_err(|e| relabel(e, name, Some(&slot.name), Some(&v.id)))?;
                out.role.push((t, variants.len() as u16));
                let generic = !catalog.tags(creative).any(|(_, w)| w > 0.0);
                variants.push(Variant {
                    creative,
                    id: v.id.as_str().into(),
                    slot: s as u8,
                    mask: 0,
                    generic,
                    requires: Vec::new(),
                    excludes: Vec::new(),
                });
            }
            slots.push(Slot { name: slot.name.as_str().into(), start, end: variants.len() as u16 });
            if slot.generic_required && !variants[start as usize..].iter().any(|v| v.generic) {
                return Err(template_error(
                    name,
                    Some(&slot.name),
                    None,
                    "generic_required",
                    "the slot must hold a generic variant (one with no persona tag), but every variant is tagged"
                        .to_owned(),
                ));
            }
        }
        check_rules(spec, &index, &mut variants)?;
        // Themes: every persona a variant speaks to.
        let mut themes: Vec<u16> = Vec::new();
        for v in &variants {
            for (p, w) in catalog.tags(v.creative) {
                if w > 0.0 && !themes.contains(&p.0) {
                    themes.push(p.0);
                }
            }
        }
        themes.sort_unstable();
        if themes.len() > MAX_TEMPLATE_THEMES {
            return Err(template_error(
                name,
                None,
                None,
                "slots",
                format!(
                    "its variants speak to {} personas (at most {MAX_TEMPLATE_THEMES}, MAX_TEMPLATE_THEMES)",
                    themes.len()
                ),
            ));
        }
        for v in &mut variants {
            v.mask = if v.generic {
                u64::MAX
            } else {
                catalog
                    .tags(v.creative)
                    .filter(|&(_, w)| w > 0.0)
                    .filter_map(|(p, _)| themes.iter().position(|&t| t == p.0))
                    .fold(0u64, |m, i| m | (1 << i))
            };
        }
        out.most_variants = out.most_variants.max(variants.len());
        let (reach, persona_reach) = reach(catalog, &slots, &variants, &themes);
        let priority = catalog.rules.get(anchor.index()).map_or(1.0, |r| r.priority);
        let ln_priority = priority.max(f32::MIN_POSITIVE).ln();
        let mut slot_theme_weight = vec![0.0f32; slots.len() * themes.len()];
        for v in &variants {
            for (p, w) in catalog.tags(v.creative) {
                if let Some(i) = themes.iter().position(|&t| t == p.0) {
                    if let Some(cell) = slot_theme_weight.get_mut(usize::from(v.slot) * themes.len() + i) {
                        *cell = cell.max(w.max(0.0));
                    }
                }
            }
        }
        let mut persona_mask = vec![0u64; catalog.menu.len().div_ceil(64)];
        for &p in &themes {
            if let Some(word) = persona_mask.get_mut(usize::from(p) / 64) {
                *word |= 1 << (p % 64);
            }
        }
        out.list.push(Template {
            anchor,
            slots,
            variants,
            themes,
            priority,
            ln_priority,
            persona_mask,
            slot_theme_weight,
            reach,
            persona_reach,
        });
    }
    Ok(out)
}

/// The per-slot maxima behind [`Template::rules_bound`].
fn reach(catalog: &Catalog, slots: &[Slot], variants: &[Variant], themes: &[u16]) -> (f32, Vec<(u16, f32)>) {
    let n = slots.len().max(1) as f32;
    let mut reach = 0.0f32;
    let mut persona_reach: Vec<(u16, f32)> = themes.iter().map(|&p| (p, 0.0)).collect();
    for slot in slots {
        let mut best = 0.0f32;
        let mut best_persona = vec![0.0f32; themes.len()];
        for v in &variants[usize::from(slot.start)..usize::from(slot.end)] {
            let Some(r) = catalog.rules.get(v.creative.index()) else { continue };
            let pb = r.priority * r.max_boost;
            best = best.max(pb);
            for t in r.tags.range() {
                let p = catalog.tag_persona[t].0;
                if let Some(i) = themes.iter().position(|&q| q == p) {
                    best_persona[i] = best_persona[i].max(pb * catalog.tag_share[t].max(0.0));
                }
            }
        }
        reach += best / n;
        for (slot_best, entry) in best_persona.iter().zip(&mut persona_reach) {
            entry.1 += slot_best / n;
        }
    }
    (reach, persona_reach)
}

/// Checks names, counts and duplicates; returns variant id → (slot, template-local index).
fn check_shape(spec: &TemplateSpec) -> Result<AHashMap<&str, (usize, u16)>> {
    let name = spec.id.as_str();
    if spec.slots.is_empty() {
        return Err(template_error(name, None, None, "slots", "the template has no slots".to_owned()));
    }
    if spec.slots.len() > MAX_SLOTS {
        return Err(template_error(
            name,
            None,
            None,
            "slots",
            format!("{} slots (at most {MAX_SLOTS}, MAX_SLOTS)", spec.slots.len()),
        ));
    }
    let mut index: AHashMap<&str, (usize, u16)> = AHashMap::new();
    let mut next = 0u16;
    for (s, slot) in spec.slots.iter().enumerate() {
        check_slot(name, slot, &spec.slots[..s])?;
        for v in &slot.variants {
            if v.id.trim().is_empty() {
                return Err(template_error(
                    name,
                    Some(&slot.name),
                    None,
                    "id",
                    "a variant id is empty".to_owned(),
                ));
            }
            if let Some(&(other, _)) = index.get(v.id.as_str()) {
                let where_ = if other == s {
                    "this slot".to_owned()
                } else {
                    format!("slot '{}'", quote(&spec.slots[other].name))
                };
                return Err(template_error(
                    name,
                    Some(&slot.name),
                    Some(&v.id),
                    "id",
                    format!("duplicate variant id (also in {where_})"),
                ));
            }
            index.insert(v.id.as_str(), (s, next));
            next += 1;
        }
    }
    Ok(index)
}

fn check_slot(name: &str, slot: &SlotSpec, before: &[SlotSpec]) -> Result<()> {
    if slot.name.trim().is_empty() {
        return Err(template_error(name, None, None, "slots", "a slot name is empty".to_owned()));
    }
    // A slot name is handed to C as a C string (`pe_selector_slot_name`) and shown in
    // explanations line by line: bounded and free of control characters like any name.
    if let Some(problem) = crate::catalog::name_problem("slot name", &slot.name) {
        let field = format!("slots[{}].name", before.len());
        return Err(template_error(name, None, None, &field, problem));
    }
    if before.iter().any(|b| b.name == slot.name) {
        return Err(template_error(name, Some(&slot.name), None, "name", "duplicate slot name".to_owned()));
    }
    if slot.variants.is_empty() {
        return Err(template_error(
            name,
            Some(&slot.name),
            None,
            "variants",
            "the slot has no variants".to_owned(),
        ));
    }
    if slot.variants.len() > super::MAX_VARIANTS {
        return Err(template_error(
            name,
            Some(&slot.name),
            None,
            "variants",
            format!("{} variants (at most {}, MAX_VARIANTS)", slot.variants.len(), super::MAX_VARIANTS),
        ));
    }
    Ok(())
}

/// Resolves `requires` / `excludes` and refuses rules no assembly can satisfy.
fn check_rules(
    spec: &TemplateSpec,
    index: &AHashMap<&str, (usize, u16)>,
    variants: &mut [crate::assemble::compile::Variant],
) -> Result<()> {
    let name = spec.id.as_str();
    let known = || index.keys().copied();
    for (s, slot) in spec.slots.iter().enumerate() {
        for v in &slot.variants {
            let err = |field: &str, problem: String| {
                template_error(name, Some(&slot.name), Some(&v.id), field, problem)
            };
            let Some(&(_, me)) = index.get(v.id.as_str()) else { continue };
            for (field, list) in [("requires", &v.requires), ("excludes", &v.excludes)] {
                if list.len() > super::MAX_VARIANT_RULES {
                    return Err(err(
                        field,
                        format!(
                            "{} entries (at most {}, MAX_VARIANT_RULES)",
                            list.len(),
                            super::MAX_VARIANT_RULES
                        ),
                    ));
                }
            }
            let mut required_slots: Vec<usize> = Vec::new();
            for r in &v.requires {
                let &(rs, ri) = index
                    .get(r.as_str())
                    .ok_or_else(|| err("requires", crate::suggest::unknown("variant", r, known())))?;
                if rs == s {
                    return Err(err(
                        "requires",
                        format!(
                            "requires '{}' of its own slot, but a slot holds one variant per assembly",
                            quote(r)
                        ),
                    ));
                }
                if required_slots.contains(&rs) {
                    return Err(err(
                        "requires",
                        format!(
                            "requires two variants of slot '{}', but a slot holds one variant per assembly",
                            quote(&spec.slots[rs].name)
                        ),
                    ));
                }
                required_slots.push(rs);
                if v.excludes.iter().any(|x| x == r) {
                    return Err(err("excludes", format!("both requires and excludes '{}'", quote(r))));
                }
                let other = &spec.slots[rs].variants[usize::from(ri) - usize::from(variants_start(spec, rs))];
                if other.excludes.contains(&v.id) {
                    return Err(err("requires", format!("requires '{}', which excludes it", quote(r))));
                }
                variants[usize::from(me)].requires.push(ri);
            }
            for x in &v.excludes {
                let &(_, xi) = index
                    .get(x.as_str())
                    .ok_or_else(|| err("excludes", crate::suggest::unknown("variant", x, known())))?;
                if xi == me {
                    return Err(err("excludes", "excludes itself".to_owned()));
                }
                for (a, b) in [(me, xi), (xi, me)] {
                    let list = &mut variants[usize::from(a)].excludes;
                    if !list.contains(&b) {
                        list.push(b);
                    }
                }
            }
        }
    }
    Ok(())
}

/// The template-local index of the first variant of slot `s`.
fn variants_start(spec: &TemplateSpec, s: usize) -> u16 {
    spec.slots[..s].iter().map(|slot| slot.variants.len() as u16).sum()
}
