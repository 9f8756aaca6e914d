//! Profiles and catalog specs survive a round trip through JSON; bad profile JSON is an
//! error that names the field.

mod common;

use common::*;
use persona_engine::{Catalog, CatalogSpec, DataClass, DataClasses, Profile, Signal, Symbol};

#[test]
fn a_profile_round_trips_through_json() {
    let sel = selector(vec![tagged("a", "Luxury")]);
    let menu = sel.catalog().menu();
    let mut p = person(&sel, &[("Luxury", 9), ("Budget", 3)]);
    p.set_score(menu, "Family", 7, DataClasses::only(DataClass::Purchase).with(DataClass::Declared)).unwrap();
    p.consent = DataClasses::only(DataClass::Behavioral).with(DataClass::Location);
    p.add_signal(Signal { name: "viewed".into(), value: 2.5, class: DataClass::Behavioral, at: NOW - 5 })
        .unwrap();
    p.declare_like(menu, "Adventure").unwrap();
    p.declare_dislike(menu, "Budget").unwrap();
    p.remember_exposure(Symbol::of("a"), NOW - 60);
    p.suppress(Symbol::of("gone"));
    let json = p.to_json(menu).unwrap();
    assert!(json.contains("\"Family\""), "{json}");
    let back = Profile::from_json(menu, &json).unwrap();
    assert_eq!(back, p);
}

#[test]
fn bare_scores_and_defaults_are_accepted() {
    let sel = selector(vec![tagged("a", "Luxury")]);
    let menu = sel.catalog().menu();
    let p = Profile::from_json(menu, r#"{"persona_scores":{"Luxury":8}}"#).unwrap();
    assert_eq!(p.scores.get(menu.id("Luxury").unwrap()), 8);
    assert_eq!(p.scores.sources(menu.id("Luxury").unwrap()), DataClasses::NONE);
    assert_eq!(p.consent, DataClasses::NONE);
}

#[test]
fn bad_profile_json_names_the_problem() {
    let sel = selector(vec![tagged("a", "Luxury")]);
    let menu = sel.catalog().menu();
    let cases = [
        (
            r#"{"persona_scores":{"Lux":8}}"#,
            "profile: field 'persona_scores': unknown persona 'Lux' (did you mean 'Luxury'?)",
        ),
        (
            r#"{"persona_scores":{"Luxury":12}}"#,
            "persona 'Luxury': score 12 is out of range (scores are 0..=9)",
        ),
        (r#"{"dislikes":["Nope"]}"#, "profile: field 'dislikes': unknown persona 'Nope'"),
        (r#"{"likes":["Nope"]}"#, "profile: field 'likes': unknown persona 'Nope'"),
        // Visits without a first visit would read as known since 1970: a loyal customer.
        (
            r#"{"visits":30}"#,
            "profile: field 'first_seen': missing (or 0) while visits is 30: give when the person was first \
             seen, in Unix seconds",
        ),
    ];
    for (json, want) in cases {
        assert_eq!(Profile::from_json(menu, json).unwrap_err().to_string(), want, "{json}");
    }
    // With the first visit, or with no visits at all, the profile reads.
    assert!(Profile::from_json(menu, r#"{"visits":30,"first_seen":1700000000}"#).is_ok());
    assert!(Profile::from_json(menu, r#"{"persona_scores":{"Luxury":8}}"#).is_ok());
    for (json, want) in [
        (r#"{"consent":["browsing"]}"#, "unknown variant `browsing`"),
        (r#"{"persona_scores":{"Luxury":-1}}"#, "a persona score is a number 0..=9"),
        (r#"{"suppressed":["xyz"]}"#, "a key is 16 hex digits, got 'xyz'"),
        (r#"{"visits":1,"visits":2}"#, "duplicate field `visits`"),
        (r#"{"vists":1}"#, "unknown field `vists`"),
        (r#"{"persona_scores":{"Luxury":1,"Luxury":2}}"#, "duplicate key 'Luxury'"),
    ] {
        let err = Profile::from_json(menu, json).unwrap_err().to_string();
        assert!(err.starts_with("profile: invalid JSON") && err.contains(want), "{json}: {err}");
    }
}

#[test]
fn a_catalog_spec_round_trips_through_json() {
    let spec = persona_engine::sample::catalog_spec().unwrap();
    let json = spec.to_json().unwrap();
    let again = CatalogSpec::from_json(&json).unwrap();
    assert_eq!(again.to_json().unwrap(), json);
    let (a, b) = (Catalog::compile(&spec).unwrap(), Catalog::compile(&again).unwrap());
    assert_eq!(a.len(), b.len());
    for i in 0..a.len() {
        let id = persona_engine::CreativeId(i as u32);
        assert_eq!(a.creative_id(id), b.creative_id(id));
        assert_eq!(a.payload(id), b.payload(id));
    }
}

/// A profile whose loader would refuse it is not written either: `Profile::new` with 0
/// for `now` counts one visit from 1970, and `to_json` and `save_to` refuse it, naming
/// the field, so a good saved file is never replaced by one that cannot be read back.
#[test]
fn a_profile_its_loader_would_refuse_is_not_written() {
    let sel = selector(vec![tagged("a", "Luxury")]);
    let menu = sel.catalog().menu();
    let dir = std::env::temp_dir().join(format!("pe-profile-write-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("person.json");
    let good = Profile::new(menu.len(), 1_700_000_000);
    good.save_to(&path, menu).unwrap();
    let before = std::fs::read_to_string(&path).unwrap();
    let bad = Profile::new(menu.len(), 0);
    let want = "profile: field 'first_seen': missing (or 0) while visits is 1: give when the person was first seen, \
                in Unix seconds";
    assert_eq!(bad.to_json(menu).unwrap_err().to_string(), want);
    assert_eq!(bad.save_to(&path, menu).unwrap_err().to_string(), want);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), before, "the good file is kept");
    assert!(Profile::load_from(&path, menu).is_ok());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_profile_that_does_not_fit_the_menu_is_not_written() {
    let sel = selector(vec![tagged("a", "Luxury")]);
    let menu = sel.catalog().menu();
    let n = menu.len();
    // Scores for one persona more than the menu has: the extra score had no column and
    // was left out of the JSON without a word.
    let mut wider = Profile::new(n + 1, NOW);
    wider.scores.set(persona_engine::PersonaId(n as u16), 9, DataClasses::NONE).unwrap();
    assert_eq!(
        wider.to_json(menu).unwrap_err().to_string(),
        format!(
            "profile: field 'scores': holds scores for {} personas, but the persona menu has {n}: the \
             profile was made for another menu (build it with Profile::new(menu.len(), ..) or from JSON \
             against this menu)",
            n + 1
        )
    );
    // A like of a persona id the menu does not have was written as the name "?", which
    // the loader then refused.
    let mut liking = Profile::new(n, NOW);
    liking.likes.push(persona_engine::PersonaId(200));
    assert_eq!(
        liking.to_json(menu).unwrap_err().to_string(),
        format!("profile: field 'likes': persona id 200 is not on the persona menu of {n}")
    );
    let mut disliking = Profile::new(n, NOW);
    disliking.dislikes.push(persona_engine::PersonaId(n as u16));
    assert!(disliking.to_json(menu).unwrap_err().to_string().starts_with("profile: field 'dislikes'"));
    // A profile with no scores yet (Profile::default) still writes.
    let empty = Profile { first_seen: NOW, visits: 1, ..Profile::default() };
    assert!(Profile::from_json(menu, &empty.to_json(menu).unwrap()).is_ok());
}
