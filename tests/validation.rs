//! Every validation error names what is wrong: the creative, the field, the value.

mod common;

use common::*;
use persona_engine::catalog::ConditionSpec;
use persona_engine::{Catalog, CatalogSpec, CreativeSpec, Error};

fn compile_err(creatives: Vec<CreativeSpec>) -> String {
    Catalog::compile(&spec(creatives)).unwrap_err().to_string()
}

/// Names with a control character would reach C cut short (a NUL) or split a log line:
/// refused, naming the character and where it is.
#[test]
fn names_with_control_characters_are_refused() {
    let err = compile_err(vec![tagged("lux\0-v2", "Luxury")]);
    assert_eq!(err, "creative 'lux\0-v2': field 'id': id contains the control character U+0000 at byte 3");
    let mut s = spec(vec![tagged("a", "Luxury")]);
    s.placements.push("side\nbar".into());
    assert_eq!(
        Catalog::compile(&s).unwrap_err().to_string(),
        "catalog: field 'placements[2]': placement name contains the control character U+000A at byte 4"
    );
    let err = persona_engine::PersonaMenu::new(["Luxury".to_owned(), "Fam\tily".to_owned()]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "persona menu: field 'personas[1]': persona name contains the control character U+0009 at byte 3"
    );
}

/// Catalogs compare by what they say: the same spec, from code or from its JSON text,
/// compiles to equal catalogs; a changed payload, weight or label does not.
#[test]
fn catalogs_are_equal_when_they_say_the_same_thing() {
    let base = spec(vec![tagged("a", "Luxury"), tagged("b", "Family").priority(2.0)]);
    let a = Catalog::compile(&base).unwrap();
    assert!(a == Catalog::compile(&base).unwrap());
    assert!(a == Catalog::from_json(&base.to_json().unwrap()).unwrap(), "code and text alike");
    let mut other = base.clone();
    other.creatives[1].priority = 2.5;
    assert!(a != Catalog::compile(&other).unwrap(), "a priority");
    let mut other = base.clone();
    other.creatives[0] = other.creatives[0].clone().payload_json(r#"{"img": "b.png"}"#).unwrap();
    assert!(a != Catalog::compile(&other).unwrap(), "a payload");
    let mut other = base.clone();
    other.version = "v2".into();
    assert!(a != Catalog::compile(&other).unwrap(), "the label");
}

#[test]
fn duplicate_creative_ids() {
    let err = compile_err(vec![tagged("a", "Luxury"), tagged("b", "Luxury"), tagged("a", "Family")]);
    assert_eq!(err, "creative 'a': field 'id': duplicate creative id (also creative #0)");
}

#[test]
fn unknown_persona_and_placement() {
    let err = compile_err(vec![tagged("a", "Luxury Travle")]);
    assert_eq!(
        err,
        "creative 'a': field 'personas': unknown persona 'Luxury Travle' (did you mean 'Luxury'?)"
    );
    let err = compile_err(vec![CreativeSpec::new("a").placement("footer")]);
    assert_eq!(err, "creative 'a': field 'placements': unknown placement 'footer'");
}

#[test]
fn weights_must_be_finite_not_negative_and_at_most_the_limit() {
    let cases = [(-0.5, "-0.5"), (f64::NAN, "NaN"), (f64::INFINITY, "inf"), (100.5, "100.5"), (1e39, "1e39")];
    for (w, shown) in cases {
        let err = compile_err(vec![CreativeSpec::new("a").placement("hero").persona("Luxury", w)]);
        assert_eq!(
            err,
            format!(
                "creative 'a': field 'personas': weight of persona 'Luxury' is {shown} \
                 (must be finite, ≥ 0 and ≤ 100, MAX_TAG_WEIGHT)"
            )
        );
    }
}

#[test]
fn a_weight_that_f32_cannot_hold_is_refused_not_turned_into_inf_or_zero() {
    // 1e39 passes "finite" as f64 but is +inf as f32 (its share would be inf/inf = NaN);
    // 1e-46 is 0 as f32 (the tag would silently stop counting).
    let json = |w: &str| {
        format!(
            r#"{{"personas": ["Foodie", "Luxury"], "placements": ["hero"], "creatives": [
                {{"id": "x", "placements": ["hero"], "personas": {{"Luxury": 1, "Foodie": {w}}}}}]}}"#
        )
    };
    let err = Catalog::from_json(&json("1e39")).unwrap_err().to_string();
    assert_eq!(
        err,
        "creative 'x': field 'personas': weight of persona 'Foodie' is 1e39 (must be finite, ≥ 0 and ≤ 100, \
         MAX_TAG_WEIGHT)"
    );
    let err = Catalog::from_json(&json("1e-46")).unwrap_err().to_string();
    assert_eq!(
        err,
        "creative 'x': field 'personas': weight of persona 'Foodie' is 1e-46 (a weight above 0 must be at \
         least 1e-6, MIN_TAG_WEIGHT)"
    );
    let err = compile_err(vec![CreativeSpec::new("a").placement("hero").persona("Luxury", 1e-7)]);
    assert!(err.contains("is 1e-7 (a weight above 0 must be at least 1e-6"), "{err}");
    // 0 stays a weight (the tag counts for declared dislikes only).
    assert!(Catalog::from_json(&json("0")).is_ok());
}

#[test]
fn weights_at_the_limits_count_and_keep_scores_and_learning_finite() {
    use persona_engine::limits::{MAX_TAG_WEIGHT, MIN_TAG_WEIGHT};
    use persona_engine::{Feedback, FeedbackKind, Policy, SelectorConfig};
    let creatives = vec![
        CreativeSpec::new("heavy")
            .placement("hero")
            .persona("Luxury", MAX_TAG_WEIGHT)
            .persona("Family", MAX_TAG_WEIGHT),
        CreativeSpec::new("light").placement("hero").persona("Luxury", MIN_TAG_WEIGHT),
        tagged("plain", "Luxury"),
    ];
    let catalog = Catalog::compile(&spec(creatives.clone())).expect("weights at the limits compile");
    let light = catalog.creative("light").unwrap();
    assert!(catalog.tags(light).all(|(_, w)| w > 0.0), "the smallest weight still counts");
    for policy in [Policy::Rules, Policy::Greedy, Policy::Thompson] {
        let config = SelectorConfig { max_per_persona: 0, ..SelectorConfig::with_policy(policy) };
        let sel = selector_with(creatives.clone(), config);
        let p = person(&sel, &[("Luxury", 9), ("Family", 8)]);
        let hero = sel.placement("hero").unwrap();
        let heavy = sel.creative("heavy").unwrap();
        let mut q = p.clone();
        for round in 0..20 {
            let mut s = sel.new_selection(3);
            sel.select(&p, &ctx(), hero, &mut s).unwrap();
            assert_eq!(s.picks().len(), 3, "{policy:?}");
            for pick in s.picks() {
                let r = &pick.reason;
                assert!(
                    pick.score.is_finite() && r.estimate.is_finite() && r.persona_match.is_finite(),
                    "{policy:?} round {round}: {pick:?}"
                );
            }
            sel.record(&mut q, &Feedback::new(heavy, FeedbackKind::Impression, &ctx())).unwrap();
            sel.record(&mut q, &Feedback::new(heavy, FeedbackKind::Click, &ctx())).unwrap();
            q.exposures.clear();
        }
    }
}

#[test]
fn a_persona_tagged_twice_is_an_error() {
    let c = CreativeSpec::new("a").placement("hero").persona("Luxury", 0.4).persona("Luxury", 0.9);
    assert_eq!(
        compile_err(vec![c]),
        "creative 'a': field 'personas': persona 'Luxury' is listed twice (give it one weight)"
    );
}

#[test]
fn schedules_must_end_after_they_start() {
    let err = compile_err(vec![tagged("a", "Luxury").schedule(Some(NOW), Some(NOW))]);
    assert_eq!(err, "creative 'a': field 'schedule': end is not after start");
    let mut c = tagged("b", "Luxury");
    c.schedule = Some(persona_engine::catalog::ScheduleSpec {
        start: Some(persona_engine::catalog::Timestamp::Text("2026-02-30".into())),
        end: None,
    });
    assert_eq!(compile_err(vec![c]), "creative 'b': field 'schedule.start': '2026-02-30' is not a real date");
}

#[test]
fn creatives_need_a_placement_and_catalogs_need_creatives() {
    assert_eq!(
        compile_err(vec![CreativeSpec::new("a")]),
        "creative 'a': field 'placements': lists no placement"
    );
    assert_eq!(compile_err(vec![]), "catalog: field 'creatives': the catalog has no creatives");
    let err = compile_err(vec![CreativeSpec::new("a").placement("hero").placement("hero")]);
    assert_eq!(err, "creative 'a': field 'placements': placement 'hero' listed twice");
}

#[test]
fn menu_and_placement_declarations() {
    let mut s = spec(vec![tagged("a", "Luxury")]);
    s.personas.push("Luxury".into());
    assert_eq!(
        Catalog::compile(&s).unwrap_err().to_string(),
        "persona menu: field 'personas[4]': duplicate persona 'Luxury'"
    );
    let mut s = spec(vec![tagged("a", "Luxury")]);
    s.placements.push("hero".into());
    assert_eq!(
        Catalog::compile(&s).unwrap_err().to_string(),
        "catalog: field 'placements[2]': duplicate placement 'hero'"
    );
    let s = CatalogSpec { personas: vec![], ..spec(vec![]) };
    assert_eq!(
        Catalog::compile(&s).unwrap_err().to_string(),
        "catalog: field 'personas': the persona menu is empty"
    );
}

#[test]
fn enumerated_values_are_checked_with_their_field() {
    let err = compile_err(vec![tagged("a", "Luxury").intimacy("cosy")]);
    assert_eq!(
        err,
        "creative 'a': field 'intimacy': unknown level 'cosy' (generic, segment, personal, intimate)"
    );
    let err = compile_err(vec![tagged("a", "Luxury").needs("browsing")]);
    assert!(err.starts_with("creative 'a': field 'data_classes': unknown data class 'browsing'"), "{err}");
    let err = compile_err(vec![tagged("a", "Luxury").component("video")]);
    assert!(err.starts_with("creative 'a': field 'component': unknown component 'video'"), "{err}");
    let err = compile_err(vec![
        tagged("a", "Luxury").targeting(ConditionSpec { device: strings(&["phone"]), ..when() })
    ]);
    assert_eq!(err, "creative 'a': field 'targeting': device: unknown device 'phone'");
    let err = compile_err(vec![
        tagged("a", "Luxury").boost(ConditionSpec { not_weather: strings(&["sunny"]), ..when() }, 1.2)
    ]);
    assert_eq!(err, "creative 'a': field 'boosts': not_weather: unknown weather 'sunny'");
    let err = compile_err(vec![tagged("a", "Luxury").targeting(ConditionSpec {
        device: strings(&["mobile"]),
        not_device: strings(&["mobile"]),
        ..when()
    })]);
    assert_eq!(
        err,
        "creative 'a': field 'targeting': device: the rules allow no device at all \
         ('mobile' is both allowed and excluded)"
    );
}

#[test]
fn numbers_are_range_checked() {
    let err = compile_err(vec![tagged("a", "Luxury").priority(0.0)]);
    assert_eq!(err, "creative 'a': field 'priority': 0 must be finite, > 0 and ≤ 1e6 (MAX_PRIORITY)");
    let err = compile_err(vec![tagged("a", "Luxury").boost(when(), f64::NAN)]);
    assert_eq!(
        err,
        "creative 'a': field 'boosts': factor NaN must be finite, > 0 and ≤ 100 (MAX_BOOST_FACTOR)"
    );
    let err = compile_err(vec![tagged("a", "Luxury").frequency_cap(0, 60)]);
    assert_eq!(err, "creative 'a': field 'frequency_cap.impressions': must be at least 1");
    // A cap above what a profile remembers could never be reached.
    let err = compile_err(vec![tagged("a", "Luxury").frequency_cap(257, 60)]);
    assert_eq!(
        err,
        "creative 'a': field 'frequency_cap.impressions': 257 is more than a profile remembers (256 exposures, \
         MAX_EXPOSURES): the cap could never be reached"
    );
    Catalog::compile(&spec(vec![tagged("a", "Luxury").frequency_cap(256, 60)])).expect("a cap of 256");
    let err = compile_err(vec![tagged("a", "Luxury").frequency_cap(1, 0)]);
    assert_eq!(
        err,
        "creative 'a': field 'frequency_cap.window_seconds': 0 must be between 1 and 31622400 (366 days)"
    );
}

#[test]
fn fallbacks_must_be_safe_for_anyone() {
    let err = compile_err(vec![tagged("a", "Luxury").fallback().needs("location")]);
    assert_eq!(
        err,
        "creative 'a': field 'fallback': a fallback must be safe to show anyone at any time, but this one has data_classes"
    );
    let err = compile_err(vec![tagged("a", "Luxury").fallback().intimacy("personal")]);
    assert!(err.ends_with("but this one has an intimacy above generic"), "{err}");
    // Fallbacks are shown in catalog order, never scored: a boost would be ignored.
    let err = compile_err(vec![tagged("a", "Luxury")
        .fallback()
        .boost(ConditionSpec { device: strings(&["mobile"]), ..when() }, 1.5)]);
    assert!(err.starts_with("creative 'a': field 'boosts': a fallback is never boosted"), "{err}");
}

#[test]
fn ids_must_be_present_and_bounded() {
    assert_eq!(
        compile_err(vec![CreativeSpec::new(" ").placement("hero")]),
        "creative '#0': field 'id': creative id is empty"
    );
    let long = "x".repeat(300);
    let err = compile_err(vec![CreativeSpec::new(long.clone()).placement("hero")]);
    // The message quotes the first 256 bytes (QUOTE_BYTES) of the id and its length.
    assert_eq!(
        err,
        format!("creative '{}… (300 bytes)': field 'id': id is 300 bytes long (at most 256)", &long[..256])
    );
}

#[test]
fn json_errors_say_where() {
    let err = Catalog::from_json(
        r#"{"personas":["A"],"placements":["p"],"creatives":[{"id":"a","placements":["p"],"prority":2}]}"#,
    )
    .unwrap_err();
    assert!(matches!(err, Error::CreativeJson { index: 0, .. }));
    let text = err.to_string();
    assert!(
        text.starts_with(
            "catalog spec: creatives[0] ('a'), field 'prority': invalid JSON: unknown field `prority`"
        ),
        "{text}"
    );
    assert!(text.contains("line 1 column"), "{text}");
    let err = Catalog::from_json(r#"{"personas":["A"],"placements":["p"],"creatives":[{"id":"a","placements":["p"],"personas":{"A":1,"A":2}}]}"#)
        .unwrap_err()
        .to_string();
    assert!(err.contains("duplicate key 'A'"), "{err}");
    let err = Catalog::from_json("{").unwrap_err().to_string();
    assert!(err.starts_with("catalog spec: invalid JSON: EOF"), "{err}");
}

#[test]
fn the_payload_is_handed_back_byte_for_byte() {
    let json = r#"{"personas":["A"],"placements":["p"],"creatives":[
        {"id":"a","placements":["p"],"payload":{"b": 1.50, "a":"x\u00e9",  "n":null}},
        {"id":"b","placements":["p"],"payload":"https://cdn.example/b.jpg"},
        {"id":"c","placements":["p"]}]}"#;
    let cat = Catalog::from_json(json).unwrap();
    assert_eq!(cat.payload(cat.creative("a").unwrap()), Some(r#"{"b": 1.50, "a":"x\u00e9",  "n":null}"#));
    assert_eq!(cat.payload(cat.creative("b").unwrap()), Some(r#""https://cdn.example/b.jpg""#));
    assert_eq!(cat.payload(cat.creative("c").unwrap()), None);
    assert_eq!(cat.creative("zzz").unwrap_err().to_string(), "unknown creative 'zzz'");
    assert_eq!(cat.placement("footer").unwrap_err().to_string(), "unknown placement 'footer'");
}

#[test]
fn creative_attributes_are_validated_and_read_back() {
    let err = compile_err(vec![tagged("a", "Luxury").attribute("format", " ")]);
    assert_eq!(err, "creative 'a': field 'attributes': an attribute value is empty");
    let long = "x".repeat(persona_engine::limits::MAX_ATTRIBUTE_LEN + 1);
    let err = compile_err(vec![tagged("a", "Luxury").attribute(&long, "video")]);
    assert_eq!(err, "creative 'a': field 'attributes': attribute name is 65 bytes long (at most 64)");
    let mut many = tagged("a", "Luxury");
    for i in 0..=persona_engine::limits::MAX_ATTRIBUTES {
        many = many.attribute(&format!("k{i}"), "v");
    }
    assert_eq!(compile_err(vec![many]), "creative 'a': field 'attributes': 17 attributes (at most 16)");

    let json = r#"{"personas": ["Luxury"], "placements": ["hero"], "creatives": [
        {"id": "a", "placements": ["hero"], "attributes": {"format": "video", "tone": "calm", "format": "x"}}]}"#;
    let err = Catalog::from_json(json).unwrap_err().to_string();
    assert!(err.contains("duplicate key 'format'"), "{err}");
    // The same through the spec's public field, which the builder cannot guard.
    let mut twice = tagged("a", "Luxury").attribute("format", "video");
    twice.attributes.push(("format".into(), "banner".into()));
    let err = compile_err(vec![twice]);
    assert_eq!(
        err,
        "creative 'a': field 'attributes': attribute 'format' is given twice ('video' and 'banner')"
    );

    let catalog = Catalog::compile(&spec(vec![tagged("a", "Luxury")
        .attribute("tone", "calm")
        .attribute("format", "video")]))
    .unwrap();
    let a = catalog.creative("a").unwrap();
    assert_eq!(catalog.attribute(a, "format"), Some("video"));
    assert_eq!(catalog.attribute(a, "tone"), Some("calm"));
    assert_eq!(catalog.attribute(a, "size"), None);
    assert_eq!(catalog.attributes(a).count(), 2);
}

/// A catalog of one creative `x` in `hero`, with `fields` (JSON members) added.
fn json_err(fields: &str) -> String {
    let json = format!(
        r#"{{"personas": ["Luxury"], "placements": ["hero"], "creatives": [
            {{"id": "x", "placements": ["hero"], "personas": {{"Luxury": 1}}, {fields}}}]}}"#
    );
    Catalog::from_json(&json).unwrap_err().to_string()
}

#[test]
fn targeting_that_excludes_everything_it_allows_is_refused_naming_the_field_and_value() {
    let cases = [
        (
            r#""targeting": {"region": ["FR"], "not_region": ["FR"]}"#,
            "region: the rules allow no region at all ('FR' is both allowed and excluded)",
        ),
        (
            r#""targeting": {"region": ["FR"], "not_region": ["fr"]}"#,
            "region: the rules allow no region at all ('FR' is both allowed and excluded)",
        ),
        (
            r#""targeting": {"region": ["FR", "DE"], "not_region": ["DE", "FR", "IT"]}"#,
            "region: the rules allow no region at all ('FR' and 'DE' are both allowed and excluded)",
        ),
        (
            r#""targeting": {"channel": ["email"], "not_channel": ["email"]}"#,
            "channel: the rules allow no channel at all ('email' is both allowed and excluded)",
        ),
        (
            r#""targeting": {"daypart": ["evening"], "not_daypart": ["evening"]}"#,
            "daypart: the rules allow no daypart at all ('evening' is both allowed and excluded)",
        ),
        (
            r#""targeting": {"weekday": ["monday", "tuesday"], "not_weekday": ["tuesday", "monday"]}"#,
            "weekday: the rules allow no weekday at all ('monday' and 'tuesday' are both allowed and excluded)",
        ),
        (
            r#""targeting": {"weather": ["rain"], "not_weather": ["rain"]}"#,
            "weather: the rules allow no weather at all ('rain' is both allowed and excluded)",
        ),
        (
            r#""targeting": {"not_device": ["unknown", "desktop", "mobile", "tablet", "tv"]}"#,
            "device: the rules allow no device at all (every device is excluded)",
        ),
        (
            r#""targeting": {"attributes": [{"key": "tier", "in": ["gold"], "not_in": ["gold"]}]}"#,
            "attribute 'tier': the rules allow no value at all ('gold' is both allowed and excluded)",
        ),
        (
            r#""targeting": {"attributes": [{"key": "tier", "in": ["gold"]}, {"key": "tier", "in": ["silver"]}]}"#,
            "attribute 'tier': the rules allow no value at all ([\"gold\"] and [\"silver\"] have no value in common)",
        ),
        (
            r#""targeting": {"attributes": [{"key": "tier", "in": ["gold", "silver"]},
                {"key": "tier", "in": ["silver", "gold"]}, {"key": "tier", "not_in": ["gold", "silver"]}]}"#,
            "attribute 'tier': the rules allow no value at all ('gold' and 'silver' are both allowed and excluded)",
        ),
    ];
    for (fields, problem) in cases {
        assert_eq!(json_err(fields), format!("creative 'x': field 'targeting': {problem}"), "{fields}");
    }
    // A boost that could never apply is refused the same way.
    let err = json_err(r#""boosts": [{"when": {"region": ["FR"], "not_region": ["FR"]}, "factor": 2}]"#);
    assert_eq!(
        err,
        "creative 'x': field 'boosts': region: the rules allow no region at all ('FR' is both allowed and excluded)"
    );
    targeting_that_leaves_a_value_allowed_still_compiles_and_shows();
}

/// Targeting that leaves a value allowed still compiles and shows there alone.
fn targeting_that_leaves_a_value_allowed_still_compiles_and_shows() {
    use persona_engine::Context;
    let c = tagged("a", "Luxury").targeting(ConditionSpec {
        region: strings(&["FR", "DE"]),
        not_region: strings(&["FR"]),
        attributes: serde_json::from_str(
            r#"[{"key": "tier", "in": ["gold", "silver"]}, {"key": "tier", "in": ["silver"]},
                {"key": "tier", "not_in": ["gold"]}, {"key": "lang", "in": ["fr"], "not_in": ["de"]}]"#,
        )
        .unwrap(),
        ..when()
    });
    let sel = selector(vec![c]);
    let p = person(&sel, &[("Luxury", 9)]);
    let at = |region: &str, tier: &str| -> Context {
        let mut cx = ctx().with_region(region);
        cx.set_attribute("tier", tier);
        cx.set_attribute("lang", "fr");
        cx
    };
    assert_eq!(picks(&sel, &p, &at("DE", "silver"), 1), ["a"]);
    assert!(picks(&sel, &p, &at("FR", "silver"), 1).is_empty());
    assert!(picks(&sel, &p, &at("DE", "gold"), 1).is_empty());
}

#[test]
fn a_priority_or_boost_that_f32_would_turn_into_0_is_refused() {
    assert_eq!(
        json_err(r#""priority": 1e-50"#),
        "creative 'x': field 'priority': priority 1e-50 is below 1e-6 (MIN_PRIORITY): as f32 it would be 0"
    );
    assert_eq!(
        json_err(r#""priority": 1e-7"#),
        "creative 'x': field 'priority': priority 1e-7 is below 1e-6 (MIN_PRIORITY)"
    );
    assert_eq!(
        json_err(r#""priority": 1e39"#),
        "creative 'x': field 'priority': 1e39 must be finite, > 0 and ≤ 1e6 (MAX_PRIORITY)"
    );
    assert_eq!(
        json_err(r#""boosts": [{"when": {}, "factor": 1e-50}]"#),
        "creative 'x': field 'boosts': factor 1e-50 is below 1e-6 (MIN_BOOST_FACTOR): as f32 it would be 0"
    );
    assert_eq!(
        json_err(r#""boosts": [{"when": {}, "factor": 1e39}]"#),
        "creative 'x': field 'boosts': factor 1e39 must be finite, > 0 and ≤ 100 (MAX_BOOST_FACTOR)"
    );
    // Each factor in range, but together they would reach 0 (or overflow) in f32.
    let lower = [r#"{"when": {}, "factor": 1e-3}"#; 16].join(", ");
    assert_eq!(
        json_err(&format!(r#""boosts": [{lower}]"#)),
        "creative 'x': field 'boosts': the factors below 1 multiply to 1e-48 when every boost applies, \
         below 1e-12 (MIN_BOOST_PRODUCT)"
    );
    let raise = [r#"{"when": {}, "factor": 100}"#; 16].join(", ");
    assert_eq!(
        json_err(&format!(r#""boosts": [{raise}]"#)),
        "creative 'x': field 'boosts': the factors above 1 multiply to 1e32 when every boost applies, \
         above 1e12 (MAX_BOOST_PRODUCT)"
    );
    priorities_and_boosts_at_the_limits_keep_scores_positive_and_finite();
}

/// Priorities and boosts at the limits rank in order with positive, finite scores.
fn priorities_and_boosts_at_the_limits_keep_scores_positive_and_finite() {
    use persona_engine::limits::{
        MAX_BOOST_FACTOR, MAX_PRIORITY, MIN_BOOST_FACTOR, MIN_BOOST_PRODUCT, MIN_PRIORITY,
    };
    use persona_engine::{Feedback, FeedbackKind, Policy, SelectorConfig};
    // 1e-12 as two boosts of 1e-6; 1e12 as six of 100.
    let low = tagged("low", "Luxury")
        .priority(MIN_PRIORITY)
        .boost(when(), MIN_BOOST_FACTOR)
        .boost(when(), MIN_BOOST_PRODUCT / MIN_BOOST_FACTOR);
    let high = (0..6)
        .fold(tagged("high", "Luxury").priority(MAX_PRIORITY), |c, _| c.boost(when(), MAX_BOOST_FACTOR));
    let creatives = vec![low, high, tagged("plain", "Luxury")];
    for policy in [Policy::Rules, Policy::Greedy, Policy::Thompson] {
        let config = SelectorConfig { max_per_persona: 0, ..SelectorConfig::with_policy(policy) };
        let sel = selector_with(creatives.clone(), config);
        let mut p = person(&sel, &[("Luxury", 9)]);
        let hero = sel.placement("hero").unwrap();
        for round in 0..10 {
            let mut s = sel.new_selection(3);
            sel.select(&p, &ctx(), hero, &mut s).unwrap();
            let order: Vec<&str> = s.picks().iter().map(|x| sel.catalog().creative_id(x.creative)).collect();
            assert_eq!(order, ["high", "plain", "low"], "{policy:?} round {round}");
            for pick in s.picks() {
                assert!(pick.score.is_finite() && pick.score > 0.0, "{policy:?} round {round}: {pick:?}");
                assert!(pick.reason.estimate.is_finite(), "{policy:?} round {round}: {pick:?}");
                sel.record(&mut p, &Feedback::new(pick.creative, FeedbackKind::Impression, &ctx())).unwrap();
            }
            p.exposures.clear();
        }
    }
}

/// An exclusion group name is a name like any other the catalog keeps and hands back
/// (`Catalog::exclusion_group`): bounded as an id is (`MAX_ID_LEN`) and free of control
/// characters, from code and from JSON, on creatives and templates alike.
#[test]
fn an_exclusion_group_name_is_bounded_and_free_of_control_characters() {
    use persona_engine::assemble::{SlotSpec, TemplateSpec, VariantSpec};
    use persona_engine::limits::MAX_ID_LEN;
    let grouped =
        |group: &str| spec(vec![tagged("a", "Luxury").exclusion_group(group), tagged("b", "Family")]);
    let long = "g".repeat(MAX_ID_LEN + 1);
    assert_eq!(
        Catalog::compile(&grouped(&long)).err().map(|e| e.to_string()).as_deref(),
        Some("creative 'a': field 'exclusion_group': group name is 257 bytes long (at most 256, MAX_ID_LEN)")
    );
    assert_eq!(
        Catalog::compile(&grouped("winter\noffer")).err().map(|e| e.to_string()).as_deref(),
        Some("creative 'a': field 'exclusion_group': group name contains the control character U+000A at byte 6")
    );
    // From JSON: the same checks, the same words.
    let json = grouped("winter\0offer").to_json().unwrap();
    assert_eq!(
        Catalog::from_json(&json).err().map(|e| e.to_string()).as_deref(),
        Some("creative 'a': field 'exclusion_group': group name contains the control character U+0000 at byte 6")
    );
    // A template's group.
    let mut s = spec(vec![tagged("b", "Family")]);
    let mut template = TemplateSpec::new("t")
        .placement("hero")
        .slot(SlotSpec::new("headline").variant(VariantSpec::new("v").persona("Luxury", 1.0)));
    template.exclusion_group = Some(long.clone());
    s.templates.push(template);
    assert_eq!(
        Catalog::compile(&s).err().map(|e| e.to_string()).as_deref(),
        Some("template 't': field 'exclusion_group': group name is 257 bytes long (at most 256, MAX_ID_LEN)")
    );
    let ok = Catalog::compile(&grouped(&long[1..])).expect("256 bytes is fine");
    assert_eq!(ok.exclusion_group(ok.creative("a").unwrap()), Some(&long[1..]));
}
