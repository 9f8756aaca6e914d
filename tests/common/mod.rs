//! Shared helpers for the behaviour tests: a small catalog with four personas and two
//! placements, people, and a moment.
#![allow(dead_code)]

use persona_engine::catalog::ConditionSpec;
use persona_engine::{
    CatalogSpec, Context, CreativeSpec, DataClass, DataClasses, Device, Profile, Selector, SelectorConfig,
};

/// Monday 2026-11-23 20:00 UTC: evening.
pub const NOW: i64 = 1_795_464_000;
pub const DAY: i64 = 86_400;

pub fn spec(creatives: Vec<CreativeSpec>) -> CatalogSpec {
    CatalogSpec {
        version: "test".into(),
        personas: ["Luxury", "Family", "Budget", "Adventure"].map(String::from).to_vec(),
        placements: ["hero", "sidebar"].map(String::from).to_vec(),
        creatives,
        templates: Vec::new(),
        attribute_rules: Vec::new(),
    }
}

pub fn selector(creatives: Vec<CreativeSpec>) -> Selector {
    selector_with(creatives, SelectorConfig::default())
}

pub fn selector_with(creatives: Vec<CreativeSpec>, config: SelectorConfig) -> Selector {
    let catalog = persona_engine::Catalog::compile(&spec(creatives)).expect("test catalog compiles");
    Selector::new(catalog, config).expect("config is valid")
}

/// A creative in `hero` tagged with one persona at weight 1.
pub fn tagged(id: &str, persona: &str) -> CreativeSpec {
    CreativeSpec::new(id).placement("hero").persona(persona, 1.0)
}

/// A loyal customer who consented to everything, with behavioural scores.
pub fn person(sel: &Selector, scores: &[(&str, u8)]) -> Profile {
    let mut p = sel.new_profile(NOW - 365 * DAY);
    p.visits = 50;
    p.consent = DataClasses::ALL;
    for (name, s) in scores {
        p.set_score(sel.catalog().menu(), name, *s, DataClasses::only(DataClass::Behavioral)).expect("score");
    }
    p
}

pub fn ctx() -> Context {
    ctx_at(NOW)
}

/// The moment of [`ctx`] at another time.
pub fn ctx_at(at: i64) -> Context {
    Context::at(at).with_device(Device::Desktop)
}

pub fn picks(sel: &Selector, profile: &Profile, context: &Context, k: usize) -> Vec<String> {
    let hero = sel.placement("hero").expect("hero");
    let mut selection = sel.new_selection(k);
    sel.select(profile, context, hero, &mut selection).expect("select");
    selection.picks().iter().map(|p| sel.catalog().creative_id(p.creative).to_owned()).collect()
}

pub fn when() -> ConditionSpec {
    ConditionSpec::default()
}

pub fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}
