//! Catalog-wide rules on creative attributes: targeting and boosts for every creative
//! whose attributes match, joined with its own, checked when the catalog compiles.

mod common;

use common::*;
use persona_engine::{Catalog, CatalogSpec, Channel, Device, Selector, SelectorConfig};

fn catalog(rules: &str, creatives: &str) -> persona_engine::Result<std::sync::Arc<Catalog>> {
    let json = format!(
        r#"{{"personas": ["Luxury", "Family"], "placements": ["hero"],
            "creatives": [{creatives}], "attribute_rules": [{rules}]}}"#
    );
    Catalog::from_json(&json).map(std::sync::Arc::new)
}

const CREATIVES: &str = r#"
    {"id": "lux-video", "placements": ["hero"], "personas": {"Luxury": 1.0}, "priority": 2.0,
     "attributes": {"format": "video"}},
    {"id": "lux-image", "placements": ["hero"], "personas": {"Luxury": 1.0},
     "attributes": {"format": "image"}},
    {"id": "lux-text", "placements": ["hero"], "personas": {"Luxury": 0.9},
     "attributes": {"format": "text", "offer": "discount"}}"#;

fn rules_selector(rules: &str) -> Selector {
    let cat = catalog(rules, CREATIVES).expect("compiles");
    // All three speak to Luxury: no diversity cap here. Ranked by the posterior mean
    // (no optimism), so a boost trades against a priority as the persona prior says: the
    // optimism's lift, equal for three creatives never shown, raises their rates to where
    // a ×3 boost in log-odds is worth less than a priority of 2.
    let mut config = SelectorConfig { max_per_persona: 0, ..SelectorConfig::default() };
    config.learning.optimism = 0.0;
    Selector::new(cat, config).expect("selector")
}

#[test]
fn a_targeting_rule_keeps_video_out_of_email_and_leaves_other_channels_alone() {
    let sel =
        rules_selector(r#"{"key": "format", "in": ["video"], "targeting": {"not_channel": ["email"]}}"#);
    let p = person(&sel, &[("Luxury", 9)]);
    let web = ctx().with_channel(Channel::Web);
    let email = ctx().with_channel(Channel::Email);
    assert_eq!(picks(&sel, &p, &web, 1), ["lux-video"], "priority 2 wins on the web");
    let by_email = picks(&sel, &p, &email, 3);
    assert!(!by_email.iter().any(|c| c == "lux-video"), "{by_email:?}");
    assert_eq!(by_email.len(), 2);
}

#[test]
fn a_boost_rule_lifts_every_matching_creative_in_its_context() {
    let plain = rules_selector("");
    let boosted = rules_selector(
        r#"{"key": "offer", "in": ["discount"], "boosts": [{"when": {"device": ["mobile"]}, "factor": 3.0}]}"#,
    );
    let p = person(&plain, &[("Luxury", 9)]);
    let mobile = ctx().with_device(Device::Mobile);
    assert_eq!(picks(&plain, &p, &mobile, 1), ["lux-video"]);
    assert_eq!(picks(&boosted, &p, &mobile, 1), ["lux-text"], "the discount is boosted on mobile");
    assert_eq!(picks(&boosted, &p, &ctx(), 1), ["lux-video"], "and only there");
    // The boost shows in the explanation like the creative's own.
    let hero = boosted.placement("hero").expect("hero");
    let mut s = boosted.new_selection(1);
    boosted.select(&p, &mobile, hero, &mut s).expect("select");
    let why = boosted.explain(&s.picks()[0]);
    assert!(why.contains("context boost x3.00"), "{why}");
}

#[test]
fn not_in_and_a_missing_attribute_follow_the_context_rule_semantics() {
    // Applies to every creative whose format is not video, and to one without a format.
    let sel = rules_selector(r#"{"key": "format", "not_in": ["video"], "targeting": {"device": ["tv"]}}"#);
    let p = person(&sel, &[("Luxury", 9)]);
    assert_eq!(picks(&sel, &p, &ctx(), 3), ["lux-video"], "only the video may show off TV");
    let mut on_tv = picks(&sel, &p, &ctx().with_device(Device::Tv), 3);
    on_tv.sort();
    assert_eq!(on_tv, ["lux-image", "lux-text", "lux-video"]);
}

#[test]
fn a_rule_with_neither_in_nor_not_in_applies_to_the_creatives_that_carry_the_key() {
    // Only `lux-text` has an `offer`: a rule on `offer` with no values boosts it alone
    // (it applied to every creative, the key meaning nothing, and `lux-video` stayed
    // first on its priority).
    let boosted = rules_selector(r#"{"key": "offer", "boosts": [{"when": {}, "factor": 3.0}]}"#);
    let p = person(&boosted, &[("Luxury", 9)]);
    assert_eq!(picks(&boosted, &p, &ctx(), 1), ["lux-text"]);
    let hero = boosted.placement("hero").expect("hero");
    let mut s = boosted.new_selection(3);
    boosted.select(&p, &ctx(), hero, &mut s).expect("select");
    for pick in s.picks() {
        let id = boosted.catalog().creative_id(pick.creative);
        let why = boosted.explain(pick);
        assert_eq!(why.contains("context boost x3.00"), id == "lux-text", "{id}: {why}");
    }
}

#[test]
fn rules_join_the_creatives_own_targeting_and_refuse_what_allows_nothing() {
    let own = r#"{"id": "v", "placements": ["hero"], "attributes": {"format": "video"},
                  "targeting": {"device": ["mobile", "tablet"]}}"#;
    // Joined: mobile or tablet (its own) and mobile or desktop (the rule) = mobile.
    let cat =
        catalog(r#"{"key": "format", "in": ["video"], "targeting": {"device": ["mobile", "desktop"]}}"#, own)
            .expect("compiles");
    let sel = Selector::new(cat, SelectorConfig::default()).expect("selector");
    let p = person(&sel, &[]);
    assert_eq!(picks(&sel, &p, &ctx().with_device(Device::Mobile), 1), ["v"]);
    assert!(picks(&sel, &p, &ctx().with_device(Device::Tablet), 1).is_empty());
    assert!(picks(&sel, &p, &ctx().with_device(Device::Desktop), 1).is_empty());
    // Nothing in common: an error naming the creative, the rule and the key.
    let err = catalog(r#"{"key": "format", "in": ["video"], "targeting": {"device": ["desktop"]}}"#, own)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "creative 'v': field 'targeting': with attribute_rules[0]: device: [\"mobile\", \"tablet\"] and \
         [\"desktop\"] have no value in common: nothing would be allowed"
    );
}

#[test]
fn bad_rules_are_refused_naming_the_rule_and_the_field() {
    let cases = [
        (r#"{"key": "", "targeting": {"device": ["tv"]}}"#, "attribute_rules[0].key", "empty"),
        (r#"{"key": "format"}"#, "attribute_rules[0].targeting", "neither targets nor boosts"),
        (
            r#"{"key": "format", "boosts": [{"when": {}, "factor": 0}]}"#,
            "attribute_rules[0].boosts",
            "must be finite, > 0",
        ),
        (r#"{"key": "format", "colour": "red", "boosts": []}"#, "unknown field", "colour"),
    ];
    for (rule, field, problem) in cases {
        let err = catalog(rule, CREATIVES).unwrap_err().to_string();
        assert!(err.contains(field) && err.contains(problem), "{rule}: {err}");
    }
    // A targeting rule cannot reach a fallback, which must show anywhere.
    let fallback =
        r#"{"id": "house", "placements": ["hero"], "fallback": true, "attributes": {"format": "image"}}"#;
    let err =
        catalog(r#"{"key": "format", "targeting": {"device": ["tv"]}}"#, fallback).unwrap_err().to_string();
    assert!(err.contains("creative 'house'") && err.contains("fallback"), "{err}");
    // Too many boosts once the rules' are added.
    let boosts: Vec<String> = (0..10).map(|_| r#"{"when": {}, "factor": 1.1}"#.to_owned()).collect();
    let rule = format!(r#"{{"key": "format", "boosts": [{}]}}"#, boosts.join(","));
    let err = catalog(&format!("{rule}, {rule}"), CREATIVES).unwrap_err().to_string();
    assert!(err.contains("20 boosts") && err.contains("attribute_rules[1]"), "{err}");
}

#[test]
fn a_spec_built_in_code_round_trips_its_rules() {
    let mut spec: CatalogSpec = serde_json::from_str(
        r#"{"personas": ["Luxury"], "placements": ["hero"], "creatives": [{"id": "a", "placements": ["hero"]}],
            "attribute_rules": [{"key": "format", "in": ["video"], "targeting": {"not_channel": ["email"]}}]}"#,
    )
    .expect("parses");
    let json = spec.to_json().expect("writes");
    assert!(json.contains("attribute_rules") && json.contains("not_channel"), "{json}");
    spec.attribute_rules.clear();
    assert!(!spec.to_json().expect("writes").contains("attribute_rules"));
}

#[test]
fn a_misspelt_key_is_refused_with_the_name_it_was_meant_to_be() {
    // With `in` it would match nothing (videos would still go out by email); with
    // `not_in` alone it would match every creative.
    for rule in [
        r#"{"key": "fromat", "in": ["video"], "targeting": {"not_channel": ["email"]}}"#,
        r#"{"key": "fromat", "not_in": ["video"], "targeting": {"device": ["tv"]}}"#,
    ] {
        let err = catalog(rule, CREATIVES).unwrap_err().to_string();
        assert_eq!(
            err,
            "catalog: field 'attribute_rules[0].key': no creative or variant has attribute 'fromat' \
             (did you mean 'format'?)",
            "{rule}"
        );
    }
    let rules = r#"{"key": "format", "in": ["video"], "boosts": [{"when": {}, "factor": 1.1}]},
                   {"key": "colour", "in": ["red"], "boosts": [{"when": {}, "factor": 1.1}]}"#;
    let err = catalog(rules, CREATIVES).unwrap_err().to_string();
    assert_eq!(err, "catalog: field 'attribute_rules[1].key': no creative or variant has attribute 'colour'");
}

#[test]
fn a_value_no_creative_carries_is_refused_naming_the_value_and_the_attribute() {
    let err = catalog(
        r#"{"key": "format", "in": ["image", "vidoe"], "targeting": {"not_channel": ["email"]}}"#,
        CREATIVES,
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        err,
        "catalog: field 'attribute_rules[0].in': no creative or variant has attribute 'format' with value \
         'vidoe' (did you mean 'video'?)"
    );
    let err = catalog(r#"{"key": "format", "not_in": ["gif"], "targeting": {"device": ["tv"]}}"#, CREATIVES)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "catalog: field 'attribute_rules[0].not_in': no creative or variant has attribute 'format' with value 'gif'"
    );
}

#[test]
fn a_rule_on_an_attribute_only_template_variants_carry_applies_to_them() {
    let json = r#"{"personas": ["Luxury"], "placements": ["hero"], "creatives": [],
        "templates": [{"id": "t", "placements": ["hero"], "slots": [
            {"name": "clip", "variants": [{"id": "v", "attributes": {"format": "video"}}]}]}],
        "attribute_rules": [{"key": "format", "in": ["video"], "targeting": {"not_channel": ["email"]}}]}"#;
    let sel = Selector::new(
        std::sync::Arc::new(Catalog::from_json(json).expect("compiles")),
        SelectorConfig::default(),
    )
    .expect("selector");
    let p = person(&sel, &[]);
    assert_eq!(picks(&sel, &p, &ctx().with_channel(Channel::Web), 1), ["t"]);
    assert!(
        picks(&sel, &p, &ctx().with_channel(Channel::Email), 1).is_empty(),
        "the video variant stays out of email"
    );
}

#[test]
fn a_rule_that_excludes_what_the_creative_allows_is_refused_naming_the_rule_and_value() {
    let own = |targeting: &str| {
        format!(
            r#"{{"id": "v", "placements": ["hero"], "attributes": {{"format": "video", "tier": "gold"}},
                "targeting": {targeting}}}"#
        )
    };
    let cases = [
        (
            r#"{"region": ["FR"]}"#,
            r#"{"not_region": ["FR"]}"#,
            "region: the rules allow no region at all ('FR' is both allowed and excluded)",
        ),
        (
            r#"{"channel": ["email"]}"#,
            r#"{"not_channel": ["email"]}"#,
            "channel: the rules allow no channel at all ('email' is both allowed and excluded)",
        ),
        (
            r#"{"attributes": [{"key": "tier", "in": ["gold"]}]}"#,
            r#"{"attributes": [{"key": "tier", "in": ["silver"]}]}"#,
            "attribute 'tier': the rules allow no value at all ([\"gold\"] and [\"silver\"] have no value in common)",
        ),
        (
            r#"{"attributes": [{"key": "tier", "in": ["gold"]}]}"#,
            r#"{"attributes": [{"key": "tier", "not_in": ["gold"]}]}"#,
            "attribute 'tier': the rules allow no value at all ('gold' is both allowed and excluded)",
        ),
    ];
    for (mine, rule, problem) in cases {
        let rule = format!(r#"{{"key": "format", "in": ["video"], "targeting": {rule}}}"#);
        let err = catalog(&rule, &own(mine)).unwrap_err().to_string();
        assert_eq!(
            err,
            format!("creative 'v': field 'targeting': with attribute_rules[0]: {problem}"),
            "{mine} + {rule}"
        );
    }
    // What is left allowed still joins.
    let rule = r#"{"key": "format", "in": ["video"], "targeting": {"not_region": ["FR"]}}"#;
    assert!(catalog(rule, &own(r#"{"region": ["FR", "DE"]}"#)).is_ok());
}

#[test]
fn a_rule_whose_in_values_are_all_in_not_in_is_refused() {
    let err = catalog(
        r#"{"key": "format", "in": ["video"], "not_in": ["video", "image"], "targeting": {"device": ["tv"]}}"#,
        CREATIVES,
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        err,
        "catalog: field 'attribute_rules[0].not_in': 'video' in both 'in' and 'not_in': the rule would apply to \
         no creative"
    );
}

#[test]
fn a_rule_boost_below_the_smallest_factor_is_refused() {
    let err = catalog(r#"{"key": "format", "boosts": [{"when": {}, "factor": 1e-50}]}"#, CREATIVES)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "catalog: field 'attribute_rules[0].boosts': factor 1e-50 is below 1e-6 (MIN_BOOST_FACTOR): as f32 it \
         would be 0"
    );
    // A rule's boosts count towards the creative's product of factors.
    let boosts = [r#"{"when": {}, "factor": 0.01}"#; 7].join(", ");
    let err =
        catalog(&format!(r#"{{"key": "format", "boosts": [{boosts}]}}"#), CREATIVES).unwrap_err().to_string();
    assert!(
        err.contains("field 'boosts': the factors below 1 multiply to") && err.contains("MIN_BOOST_PRODUCT"),
        "{err}"
    );
}

#[test]
fn a_boosting_rule_leaves_fallbacks_alone() {
    // A fallback matching a boosting rule compiles (a fallback is never scored, so the
    // rule's boost has nothing to act on), and is still used when nothing is eligible.
    let creatives = r#"
        {"id": "lux-video", "placements": ["hero"], "personas": {"Luxury": 1.0},
         "attributes": {"format": "video"}, "targeting": {"device": ["tv"]}},
        {"id": "safe-video", "placements": ["hero"], "fallback": true, "attributes": {"format": "video"}}"#;
    let cat = catalog(
        r#"{"key": "format", "in": ["video"], "boosts": [{"when": {"device": ["mobile"]}, "factor": 2.0}]}"#,
        creatives,
    )
    .expect("a fallback under a boosting rule compiles");
    let sel = Selector::new(cat, SelectorConfig::default()).expect("selector");
    let p = person(&sel, &[("Luxury", 9)]);
    let mut s = sel.new_selection(1);
    let hero = sel.placement("hero").unwrap();
    sel.select(&p, &ctx().with_device(Device::Mobile), hero, &mut s).unwrap();
    assert_eq!(sel.catalog().creative_id(s.picks()[0].creative), "safe-video");
    assert_eq!(s.picks()[0].reason.boosts_matched, 0);
}

#[test]
fn a_rule_reaches_template_variants_by_their_attributes_never_the_template_itself() {
    // "Nothing but video goes out by email": the template's only variant is a video, so
    // the template may go by email. The template itself carries no attributes; were the
    // rule applied to it, `not_in` alone would keep every template out of email.
    let json = |template_targeting: &str| {
        format!(
            r#"{{"personas": ["Luxury"], "placements": ["hero"],
            "creatives": [{{"id": "img", "placements": ["hero"], "attributes": {{"format": "image"}}}}],
            "templates": [{{"id": "t", "placements": ["hero"], "targeting": {template_targeting}, "slots": [
                {{"name": "clip", "variants": [{{"id": "v", "attributes": {{"format": "video"}}}}]}}]}}],
            "attribute_rules": [{{"key": "format", "not_in": ["video"], "targeting": {{"device": ["mobile"], "not_channel": ["email"]}}}}]}}"#
        )
    };
    let sel = Selector::new(
        std::sync::Arc::new(Catalog::from_json(&json("{}")).expect("compiles")),
        SelectorConfig::default(),
    )
    .expect("selector");
    let p = person(&sel, &[]);
    let email = ctx().with_channel(Channel::Email);
    assert_eq!(picks(&sel, &p, &email, 3), ["t"], "the video template goes by email; the image does not");
    let mut on_mobile = picks(&sel, &p, &ctx().with_device(Device::Mobile).with_channel(Channel::Web), 3);
    on_mobile.sort();
    assert_eq!(on_mobile, ["img", "t"]);
    // The template's own targeting is not joined with the rule's either.
    Catalog::from_json(&json(r#"{"device": ["desktop"]}"#)).expect("the template's own targeting stands");
}

#[test]
fn joined_regions_compare_without_regard_to_case_as_the_context_does() {
    // The creative runs in France and Germany; the rule keeps videos to 'fr': France.
    let own = r#"{"id": "v", "placements": ["hero"], "attributes": {"format": "video"},
                  "targeting": {"region": ["FR", "DE"]}}"#;
    let cat = catalog(r#"{"key": "format", "in": ["video"], "targeting": {"region": ["fr"]}}"#, own)
        .expect("'fr' is the region 'FR'");
    let sel = Selector::new(cat, SelectorConfig::default()).expect("selector");
    let p = person(&sel, &[]);
    assert_eq!(picks(&sel, &p, &ctx().with_region("fr"), 1), ["v"]);
    assert!(picks(&sel, &p, &ctx().with_region("DE"), 1).is_empty());
    // Regions with nothing in common, whatever their case, are still refused.
    let err = catalog(r#"{"key": "format", "in": ["video"], "targeting": {"region": ["es"]}}"#, own)
        .unwrap_err()
        .to_string();
    assert!(err.contains("region: [\"FR\", \"DE\"] and [\"es\"] have no value in common"), "{err}");
}

#[test]
fn a_rule_is_checked_on_its_own_and_refused_when_it_applies_to_nothing() {
    // Every creative has a format, and every format is video: 'not_in video' reaches none.
    let videos = r#"{"id": "a", "placements": ["hero"], "attributes": {"format": "video"}},
                    {"id": "b", "placements": ["hero"], "attributes": {"format": "video"}}"#;
    let err = catalog(r#"{"key": "format", "not_in": ["video"], "targeting": {"device": ["tv"]}}"#, videos)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "catalog: field 'attribute_rules[0]': the rule applies to no creative or variant: every one has \
         attribute 'format' with a value the rule leaves out"
    );
    // Its conditions are checked even so: a misspelt device or one that allows nothing is
    // named with the rule, whether or not a creative matches.
    let cases = [
        (
            r#"{"key": "format", "not_in": ["video"], "targeting": {"device": ["phablet"]}}"#,
            "catalog: field 'attribute_rules[0].targeting': device: unknown device 'phablet'",
        ),
        (
            r#"{"key": "format", "in": ["video"], "boosts": [{"when": {"weather": ["rain"], "not_weather": ["rain"]}, "factor": 2}]}"#,
            "catalog: field 'attribute_rules[0].boosts': weather: the rules allow no weather at all ('rain' is both \
             allowed and excluded)",
        ),
    ];
    for (rule, message) in cases {
        assert_eq!(catalog(rule, videos).unwrap_err().to_string(), message, "{rule}");
    }
    // A rule that reaches a creative without the attribute applies.
    let mixed = r#"{"id": "a", "placements": ["hero"], "attributes": {"format": "video"}},
                   {"id": "b", "placements": ["hero"]}"#;
    catalog(r#"{"key": "format", "not_in": ["video"], "targeting": {"device": ["tv"]}}"#, mixed)
        .expect("'b' has no format");
}
