//! The built-in sample data behaves as the quickstart promises.

use persona_engine::sample::{self, Synthetic};
use persona_engine::{Catalog, DataClasses, Intimacy, Selector, SelectorConfig};

fn selector() -> Selector {
    Selector::new(sample::catalog().unwrap(), SelectorConfig::default()).unwrap()
}

const PLACEMENTS: [&str; 4] = ["home_hero", "sidebar", "app_banner", "email_block"];

fn top_picks(sel: &Selector, who: &sample::Person) -> Vec<Vec<String>> {
    let mut s = sel.new_selection(3);
    PLACEMENTS
        .iter()
        .map(|name| {
            sel.select(&who.profile, &who.context, sel.placement(name).unwrap(), &mut s).unwrap();
            s.picks().iter().map(|p| sel.catalog().creative_id(p.creative).to_owned()).collect()
        })
        .collect()
}

#[test]
fn the_sample_catalog_is_realistic() {
    let spec = sample::catalog_spec().unwrap();
    assert!(spec.personas.len() >= 12);
    assert!(spec.creatives.len() >= 60);
    assert!(spec.placements.len() >= 3);
    assert!(spec.creatives.iter().filter(|c| c.schedule.is_some()).count() >= 5);
    assert!(spec.creatives.iter().filter(|c| c.targeting.is_some()).count() >= 10);
    for level in ["generic", "segment", "personal", "intimate"] {
        assert!(spec.creatives.iter().any(|c| c.intimacy == level), "no {level} creative");
    }
    let cat = Catalog::compile(&spec).unwrap();
    for name in PLACEMENTS {
        assert!(cat.candidate_count(cat.placement(name).unwrap()) >= 12, "{name}");
    }
}

#[test]
fn different_people_see_different_things() {
    let sel = selector();
    let people = sample::people(sel.catalog().menu()).unwrap();
    let all: Vec<_> = people.iter().map(|p| top_picks(&sel, p)).collect();
    for i in 0..all.len() {
        for j in i + 1..all.len() {
            assert_ne!(
                all[i][0][0], all[j][0][0],
                "{} and {} get the same hero",
                people[i].name, people[j].name
            );
        }
    }
    // The luxury traveller's hero is a luxury creative, the parent's a family one.
    assert!(all[0][0][0].starts_with("lux-"), "{:?}", all[0][0]);
    assert!(all[1][0][0].starts_with("fam-"), "{:?}", all[1][0]);
}

#[test]
fn the_person_without_consent_only_sees_what_needs_no_data() {
    let sel = selector();
    let people = sample::people(sel.catalog().menu()).unwrap();
    let visitor = people.iter().find(|p| p.profile.consent == DataClasses::NONE).unwrap();
    let mut s = sel.new_selection(5);
    for name in PLACEMENTS {
        sel.select(&visitor.profile, &visitor.context, sel.placement(name).unwrap(), &mut s).unwrap();
        assert!(!s.is_empty(), "{name}");
        for pick in s.picks() {
            assert_eq!(sel.catalog().data_needs(pick.creative), Some(DataClasses::NONE));
            assert!(sel.catalog().intimacy(pick.creative) <= Some(Intimacy::Segment));
            assert_eq!(pick.reason.persona, None, "third-party scores must not be used");
        }
    }
}

#[test]
fn the_person_who_declared_a_dislike_never_sees_it() {
    let sel = selector();
    let menu = sel.catalog().menu();
    let luxury = menu.id("Luxury Travel").unwrap();
    let people = sample::people(menu).unwrap();
    let who = people.iter().find(|p| p.profile.dislikes.contains(&luxury)).unwrap();
    let mut s = sel.new_selection(10);
    for name in PLACEMENTS {
        sel.select(&who.profile, &who.context, sel.placement(name).unwrap(), &mut s).unwrap();
        for pick in s.picks() {
            assert!(
                sel.catalog().tags(pick.creative).all(|(p, _)| p != luxury),
                "{}",
                sel.catalog().creative_id(pick.creative)
            );
        }
    }
}

#[test]
fn synthetic_catalogs_are_deterministic_and_valid() {
    let shape = Synthetic { personas: 40, placements: 3, creatives: 1_000, seed: 42 };
    let a = shape.spec().to_json().unwrap();
    assert_eq!(a, shape.spec().to_json().unwrap());
    let cat = Catalog::compile(&shape.spec()).unwrap();
    assert_eq!(cat.len(), 1_003);
    assert_ne!(a, Synthetic { seed: 43, ..shape }.spec().to_json().unwrap());
}
