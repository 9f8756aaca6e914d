//! Every eligibility rule is a hard filter, checked before scoring.

mod common;

use common::*;
use persona_engine::catalog::AttributeRuleSpec;
use persona_engine::select::IntimacyTable;
use persona_engine::{Channel, DataClass, DataClasses, Intimacy, Selection, SelectorConfig, Symbol, Weather};

#[test]
fn a_creative_is_only_shown_in_its_placements() {
    let sel = selector(vec![
        CreativeSpec::new("side-only").placement("sidebar").persona("Luxury", 1.0),
        tagged("hero-generic", "Budget"),
    ]);
    let p = person(&sel, &[("Luxury", 9)]);
    assert_eq!(picks(&sel, &p, &ctx(), 5), ["hero-generic"]);
}

use persona_engine::CreativeSpec;

#[test]
fn schedules_include_start_and_exclude_end() {
    let sel = selector(vec![
        tagged("winter", "Luxury").schedule(Some(NOW), Some(NOW + DAY)),
        tagged("always", "Budget"),
    ]);
    let p = person(&sel, &[("Luxury", 9)]);
    assert_eq!(picks(&sel, &p, &persona_engine::Context::at(NOW - 1), 1), ["always"]);
    assert_eq!(picks(&sel, &p, &persona_engine::Context::at(NOW), 1), ["winter"]);
    assert_eq!(picks(&sel, &p, &persona_engine::Context::at(NOW + DAY - 1), 1), ["winter"]);
    assert_eq!(picks(&sel, &p, &persona_engine::Context::at(NOW + DAY), 1), ["always"]);
}

#[test]
fn schedules_accept_rfc3339_text() {
    let json = r#"{"personas":["A"],"placements":["hero"],"creatives":[
        {"id":"bf","placements":["hero"],"personas":{"A":1},
         "schedule":{"start":"2026-11-20T00:00:00Z","end":"2026-12-01T00:00:00+01:00"}},
        {"id":"other","placements":["hero"]}]}"#;
    let sel = persona_engine::Selector::new(
        persona_engine::Catalog::from_json(json).unwrap(),
        SelectorConfig::default(),
    )
    .unwrap();
    let mut p = sel.new_profile(NOW - 400 * DAY);
    p.visits = 30;
    p.set_score(sel.catalog().menu(), "A", 9, DataClasses::NONE).unwrap();
    assert_eq!(picks(&sel, &p, &ctx(), 1), ["bf"]);
    // 2026-11-30T23:00:00Z is the end instant.
    assert_eq!(picks(&sel, &p, &persona_engine::Context::at(1_796_079_600), 1), ["other"]);
    assert_eq!(picks(&sel, &p, &persona_engine::Context::at(1_796_079_599), 1), ["bf"]);
}

fn targeted(rules: ConditionSpec) -> Selector {
    selector(vec![tagged("targeted", "Luxury").targeting(rules).priority(10.0), tagged("plain", "Budget")])
}

use persona_engine::catalog::ConditionSpec;

fn shown(sel: &Selector, context: &persona_engine::Context) -> bool {
    let p = person(sel, &[("Luxury", 9)]);
    picks(sel, &p, context, 1) == ["targeted"]
}

use persona_engine::Selector;

#[test]
fn device_rules_allow_and_deny() {
    let sel = targeted(ConditionSpec { device: strings(&["mobile", "tablet"]), ..when() });
    assert!(shown(&sel, &ctx().with_device(persona_engine::Device::Mobile)));
    assert!(!shown(&sel, &ctx().with_device(persona_engine::Device::Desktop)));
    assert!(!shown(&sel, &ctx().with_device(persona_engine::Device::Unknown)), "unknown fails an allow-list");
    let sel = targeted(ConditionSpec { not_device: strings(&["mobile"]), ..when() });
    assert!(!shown(&sel, &ctx().with_device(persona_engine::Device::Mobile)));
    assert!(shown(&sel, &ctx().with_device(persona_engine::Device::Unknown)), "unknown passes a deny-list");
}

#[test]
fn daypart_and_weekday_rules_follow_local_time() {
    // NOW is Monday 20:00 UTC: evening. At UTC-9 it is Monday 11:00 (midday).
    let sel =
        targeted(ConditionSpec { daypart: strings(&["evening"]), weekday: strings(&["monday"]), ..when() });
    assert!(shown(&sel, &ctx()));
    assert!(!shown(&sel, &ctx().with_utc_offset(-9 * 60)));
    assert!(!shown(&sel, &persona_engine::Context::at(NOW + DAY)), "tuesday");
    let sel = targeted(ConditionSpec { not_daypart: strings(&["midday"]), ..when() });
    assert!(shown(&sel, &ctx()));
    assert!(!shown(&sel, &ctx().with_utc_offset(-9 * 60)));
}

#[test]
fn weather_channel_and_region_rules() {
    let sel = targeted(ConditionSpec { weather: strings(&["rain", "snow"]), ..when() });
    assert!(shown(&sel, &ctx().with_weather(Weather::Rain)));
    assert!(!shown(&sel, &ctx().with_weather(Weather::Clear)));
    let sel = targeted(ConditionSpec { channel: strings(&["email"]), ..when() });
    assert!(shown(&sel, &ctx().with_channel(Channel::Email)));
    assert!(!shown(&sel, &ctx().with_channel(Channel::Web)));
    let sel = targeted(ConditionSpec { region: strings(&["FR", "BE"]), ..when() });
    assert!(shown(&sel, &ctx().with_region("BE")));
    assert!(!shown(&sel, &ctx().with_region("DE")));
    assert!(!shown(&sel, &ctx()), "no region fails an allow-list");
    let sel = targeted(ConditionSpec { not_region: strings(&["US"]), ..when() });
    assert!(!shown(&sel, &ctx().with_region("US")));
    assert!(shown(&sel, &ctx().with_region("CA")));
    assert!(shown(&sel, &ctx()), "no region passes a deny-list");
    // Region codes match whatever their case: a source that writes "be" or "us" is not
    // silently outside every rule.
    let sel = targeted(ConditionSpec { region: strings(&["FR", "be"]), ..when() });
    assert!(shown(&sel, &ctx().with_region("fr")) && shown(&sel, &ctx().with_region("BE")));
    let sel = targeted(ConditionSpec { not_region: strings(&["US"]), ..when() });
    assert!(!shown(&sel, &ctx().with_region("us")));
}

#[test]
fn attribute_rules_with_negation() {
    let rule =
        AttributeRuleSpec { key: "tier".into(), any_of: strings(&["gold", "platinum"]), not_in: vec![] };
    let sel = targeted(ConditionSpec { attributes: vec![rule], ..when() });
    assert!(shown(&sel, &ctx().with_attribute("tier", "gold")));
    assert!(!shown(&sel, &ctx().with_attribute("tier", "silver")));
    assert!(!shown(&sel, &ctx()));
    let rule = AttributeRuleSpec { key: "tier".into(), any_of: vec![], not_in: strings(&["banned"]) };
    let sel = targeted(ConditionSpec { attributes: vec![rule], ..when() });
    assert!(!shown(&sel, &ctx().with_attribute("tier", "banned")));
    assert!(shown(&sel, &ctx().with_attribute("tier", "gold")));
    assert!(shown(&sel, &ctx()));
}

#[test]
fn no_creative_needs_data_the_person_did_not_consent_to() {
    let sel = selector(vec![
        tagged("near-you", "Luxury").needs("location").priority(5.0),
        tagged("generic", "Luxury"),
    ]);
    let mut p = person(&sel, &[("Luxury", 9)]);
    p.consent = DataClasses::ALL.without(DataClass::Location);
    assert_eq!(picks(&sel, &p, &ctx(), 5), ["generic"]);
    p.set_consent(DataClass::Location, true);
    assert_eq!(picks(&sel, &p, &ctx(), 5), ["near-you", "generic"]);
}

#[test]
fn scores_built_on_unconsented_data_do_not_count() {
    let sel = selector(vec![tagged("lux", "Luxury"), tagged("budget", "Budget").priority(1.5)]);
    let mut p = person(&sel, &[]);
    let menu = sel.catalog().menu();
    p.set_score(menu, "Luxury", 9, DataClasses::only(DataClass::ThirdParty)).unwrap();
    p.consent = DataClasses::only(DataClass::Behavioral);
    // Without third-party consent the Luxury score is ignored: priority decides.
    assert_eq!(picks(&sel, &p, &ctx(), 1), ["budget"]);
    p.set_consent(DataClass::ThirdParty, true);
    assert_eq!(picks(&sel, &p, &ctx(), 1), ["lux"]);
}

#[test]
fn intimacy_is_capped_by_relationship_stage() {
    let no_theme_limit = SelectorConfig { max_per_persona: 0, ..SelectorConfig::default() };
    let sel = selector_with(
        vec![
            tagged("anniversary", "Luxury").intimacy("intimate").priority(9.0),
            tagged("your-trip", "Luxury").intimacy("personal").priority(5.0),
            tagged("for-travellers", "Luxury").intimacy("segment"),
        ],
        no_theme_limit,
    );
    let mut p = person(&sel, &[("Luxury", 9)]);
    // A first visit: only segment-level.
    p.first_seen = NOW;
    p.visits = 1;
    assert_eq!(picks(&sel, &p, &ctx(), 3), ["for-travellers"]);
    // Returning: personal allowed.
    p.visits = 3;
    assert_eq!(picks(&sel, &p, &ctx(), 3), ["your-trip", "for-travellers"]);
    // Loyal: everything.
    p.first_seen = NOW - 200 * DAY;
    p.visits = 40;
    assert_eq!(picks(&sel, &p, &ctx(), 3), ["anniversary", "your-trip", "for-travellers"]);
}

#[test]
fn the_intimacy_table_is_configurable() {
    let config = SelectorConfig {
        intimacy: IntimacyTable { new: Intimacy::Generic, ..IntimacyTable::default() },
        ..SelectorConfig::default()
    };
    let sel = selector_with(
        vec![
            tagged("for-travellers", "Luxury").intimacy("segment"),
            CreativeSpec::new("hello").placement("hero"),
        ],
        config,
    );
    let mut p = person(&sel, &[("Luxury", 9)]);
    p.first_seen = NOW;
    p.visits = 1;
    assert_eq!(picks(&sel, &p, &ctx(), 2), ["hello"]);
}

#[test]
fn declared_dislikes_exclude_every_creative_tagged_with_them() {
    let sel = selector(vec![
        tagged("lux", "Luxury").priority(3.0),
        CreativeSpec::new("lux-family").placement("hero").persona("Family", 1.0).persona("Luxury", 0.1),
        tagged("budget", "Budget"),
    ]);
    let mut p = person(&sel, &[("Luxury", 9), ("Family", 9)]);
    p.declare_dislike(sel.catalog().menu(), "Luxury").unwrap();
    assert_eq!(picks(&sel, &p, &ctx(), 5), ["budget"]);
}

#[test]
fn rejected_creatives_are_never_shown_again() {
    let sel = selector(vec![tagged("lux", "Luxury"), tagged("budget", "Budget")]);
    let mut p = person(&sel, &[("Luxury", 9)]);
    assert_eq!(picks(&sel, &p, &ctx(), 1), ["lux"]);
    p.suppress(Symbol::of("lux"));
    assert_eq!(picks(&sel, &p, &ctx(), 5), ["budget"]);
}

#[test]
fn frequency_caps_count_exposures_in_the_window() {
    let sel = selector(vec![tagged("lux", "Luxury").frequency_cap(2, 3_600), tagged("budget", "Budget")]);
    let mut p = person(&sel, &[("Luxury", 9)]);
    p.remember_exposure(Symbol::of("lux"), NOW - 7_200); // outside the window
    p.remember_exposure(Symbol::of("lux"), NOW - 600);
    assert_eq!(picks(&sel, &p, &ctx(), 1), ["lux"]);
    p.remember_exposure(Symbol::of("lux"), NOW - 60);
    assert_eq!(picks(&sel, &p, &ctx(), 1), ["budget"]);
    // An hour later the window has passed.
    assert_eq!(picks(&sel, &p, &persona_engine::Context::at(NOW + 3_600), 1), ["lux"]);
}

/// Exposures recorded late (a backfill from another device) age out themselves when
/// they are the oldest: they never push out a recent exposure that a cap counts.
#[test]
fn a_late_backfill_of_old_exposures_keeps_the_recent_ones_a_cap_counts() {
    use persona_engine::profile::{Signal, MAX_EXPOSURES, MAX_SIGNALS};
    let sel = selector(vec![tagged("lux", "Luxury").frequency_cap(2, 3_600), tagged("budget", "Budget")]);
    let mut p = person(&sel, &[("Luxury", 9)]);
    p.remember_exposure(Symbol::of("lux"), NOW - 600);
    p.remember_exposure(Symbol::of("lux"), NOW - 60);
    assert_eq!(picks(&sel, &p, &ctx(), 1), ["budget"]);
    for i in 0..MAX_EXPOSURES as i64 {
        p.remember_exposure(Symbol::of("budget"), NOW - 30 * 86_400 + i);
    }
    assert_eq!(p.exposures.len(), MAX_EXPOSURES);
    assert_eq!(picks(&sel, &p, &ctx(), 1), ["budget"], "the cap still holds");
    assert!(p.exposures.windows(2).all(|w| w[0].at <= w[1].at), "kept oldest first");
    // Newer exposures push out the oldest.
    let second_oldest = p.exposures[1].at;
    p.remember_exposure(Symbol::of("budget"), NOW);
    assert_eq!(p.exposures.first().map(|e| e.at), Some(second_oldest));
    assert_eq!(p.exposures.last().map(|e| e.at), Some(NOW));

    // Signals: a year-old backfill after a fresh signal keeps the fresh one.
    let fresh = Signal { name: "viewed_spa".into(), value: 1.0, class: DataClass::Behavioral, at: NOW };
    p.add_signal(fresh.clone()).unwrap();
    for i in 0..MAX_SIGNALS as i64 {
        let old = Signal { name: format!("old{i}"), at: NOW - 365 * 86_400 + i, ..fresh.clone() };
        p.add_signal(old).unwrap();
    }
    assert_eq!(p.signals.len(), MAX_SIGNALS);
    assert!(p.signals.contains(&fresh));
}

#[test]
fn the_caller_can_exclude_creatives_already_on_the_page() {
    let sel = selector(vec![tagged("lux", "Luxury"), tagged("budget", "Budget")]);
    let p = person(&sel, &[("Luxury", 9)]);
    let hero = sel.placement("hero").unwrap();
    let mut s: Selection = sel.new_selection(2);
    s.exclude(sel.creative("lux").unwrap());
    sel.select(&p, &ctx(), hero, &mut s).unwrap();
    let ids: Vec<_> = s.picks().iter().map(|x| sel.catalog().creative_id(x.creative)).collect();
    assert_eq!(ids, ["budget"]);
    s.clear_exclusions();
    sel.select(&p, &ctx(), hero, &mut s).unwrap();
    assert_eq!(s.len(), 2);
}

#[test]
fn fallback_is_used_only_when_nothing_else_is_eligible() {
    let sel = selector(vec![
        tagged("lux", "Luxury").needs("purchase"),
        CreativeSpec::new("house-ad").placement("hero").fallback().priority(0.5),
    ]);
    let mut p = person(&sel, &[("Luxury", 9)]);
    assert_eq!(picks(&sel, &p, &ctx(), 3), ["lux"], "fallback does not pad the selection");
    p.consent = DataClasses::NONE;
    assert_eq!(picks(&sel, &p, &ctx(), 3), ["house-ad"]);
    let hero = sel.placement("hero").unwrap();
    let mut s = sel.new_selection(1);
    sel.select(&p, &ctx(), hero, &mut s).unwrap();
    assert_eq!(s.picks()[0].reason.kind, persona_engine::ReasonKind::Fallback);
}

#[test]
fn a_declared_dislike_holds_for_fallbacks_too() {
    let sel = selector(vec![
        tagged("lux", "Luxury").needs("purchase"),
        CreativeSpec::new("house-lux").placement("hero").fallback().persona("Luxury", 1.0).priority(2.0),
        CreativeSpec::new("house").placement("hero").fallback(),
    ]);
    let mut p = person(&sel, &[("Luxury", 9)]);
    p.consent = DataClasses::NONE; // nothing else is eligible
    assert_eq!(picks(&sel, &p, &ctx(), 1), ["house-lux"]);
    p.declare_dislike(sel.catalog().menu(), "Luxury").unwrap();
    assert_eq!(picks(&sel, &p, &ctx(), 2), ["house"], "a fallback of a disliked persona was shown");
}

#[test]
fn empty_only_when_the_placement_has_no_fallback() {
    let sel = selector(vec![
        tagged("lux", "Luxury").needs("purchase"),
        CreativeSpec::new("side-house-ad").placement("sidebar").fallback(),
    ]);
    let mut p = person(&sel, &[("Luxury", 9)]);
    p.consent = DataClasses::NONE;
    assert!(picks(&sel, &p, &ctx(), 3).is_empty());
}

#[test]
fn a_placement_id_from_elsewhere_is_an_error() {
    let sel = selector(vec![tagged("lux", "Luxury")]);
    let p = person(&sel, &[]);
    let mut s = sel.new_selection(1);
    let err = sel.select(&p, &ctx(), persona_engine::PlacementId(99), &mut s).unwrap_err();
    assert_eq!(err.to_string(), "unknown placement '#99'");
}

#[test]
fn a_score_of_unknown_provenance_needs_consent_to_every_inferred_class() {
    use persona_engine::{DataClass, DataClasses};
    // The house ad wins unless the Luxury score counts.
    let sel =
        selector(vec![tagged("lux", "Luxury"), CreativeSpec::new("house").placement("hero").priority(2.0)]);
    let menu = sel.catalog().menu().clone();
    let mut p = sel.new_profile(NOW - 365 * DAY);
    p.visits = 50;
    // Set with no source: unknown provenance.
    p.set_score(&menu, "Luxury", 9, DataClasses::NONE).unwrap();
    p.consent = DataClasses::only(DataClass::Behavioral);
    assert_eq!(sel.segment(&p), None, "an unsourced score counted under narrow consent");
    assert_eq!(picks(&sel, &p, &ctx(), 1), ["house"], "an unsourced score matched under narrow consent");
    let lux = menu.id("Luxury").unwrap();
    assert_eq!(p.scores.top(p.consent), None, "the public top persona follows the same rule");
    assert_eq!(p.scores.top(DataClasses::NONE), None);
    // With consent to every class a score can be inferred from, it counts.
    p.consent = DataClasses::INFERRED;
    assert_eq!(picks(&sel, &p, &ctx(), 1), ["lux"]);
    assert_eq!(p.scores.top(p.consent), Some((lux, 9)));
    // And a recorded source needs only its own class.
    p.set_score(&menu, "Luxury", 9, DataClasses::only(DataClass::Behavioral)).unwrap();
    p.consent = DataClasses::only(DataClass::Behavioral);
    assert_eq!(picks(&sel, &p, &ctx(), 1), ["lux"]);
}
