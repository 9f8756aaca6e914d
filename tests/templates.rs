//! Assembled creatives: a template's slots are filled with variants that speak to one
//! theme, rules between variants hold, the template competes with plain creatives on
//! one scale, learning credits every variant used, propensities are the observed
//! frequencies, and every validation error names the template, slot and variant.

#[path = "common/capi.rs"]
mod capi_helpers;
mod common;

use std::collections::HashMap;

use common::*;
use persona_engine::{
    Catalog, CatalogSpec, CreativeSpec, Feedback, FeedbackKind, Policy, Selector, SelectorConfig, SlotSpec,
    TemplateSpec, VariantSpec,
};

fn variant(id: &str, persona: Option<&str>) -> VariantSpec {
    let v = VariantSpec::new(id).payload_json(&format!("{{\"text\": \"{id}\"}}")).unwrap();
    match persona {
        Some(p) => v.persona(p, 1.0),
        None => v,
    }
}

/// A hero template: headline, image and call to action, with Luxury, Family and
/// generic variants.
fn hero_template() -> TemplateSpec {
    TemplateSpec::new("hero-tpl")
        .placement("hero")
        .slot(
            SlotSpec::new("headline")
                .generic_required()
                .variant(variant("h-lux", Some("Luxury")))
                .variant(variant("h-fam", Some("Family")))
                .variant(variant("h-gen", None)),
        )
        .slot(
            SlotSpec::new("image")
                .variant(variant("i-lux", Some("Luxury")))
                .variant(variant("i-fam", Some("Family")))
                .variant(variant("i-gen", None)),
        )
        .slot(SlotSpec::new("cta").variant(variant("c-gen", None)).variant(variant("c-fam", Some("Family"))))
}

fn spec_with(creatives: Vec<CreativeSpec>, templates: Vec<TemplateSpec>) -> CatalogSpec {
    let mut s = spec(creatives);
    s.templates = templates;
    s
}

fn selector_of(
    creatives: Vec<CreativeSpec>,
    templates: Vec<TemplateSpec>,
    config: SelectorConfig,
) -> Selector {
    Selector::new(Catalog::compile(&spec_with(creatives, templates)).unwrap(), config).unwrap()
}

/// The chosen variant ids by slot name of the first pick, with the template id.
fn assembled(sel: &Selector, scores: &[(&str, u8)]) -> (String, Vec<(String, String)>) {
    let p = person(sel, scores);
    let hero = sel.placement("hero").unwrap();
    let mut s = sel.new_selection(1);
    sel.select(&p, &ctx(), hero, &mut s).unwrap();
    let pick = s.picks()[0];
    let cat = sel.catalog();
    let slots = s
        .assembly(&pick)
        .map(|a| {
            a.slots()
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    (
                        cat.slot_name(a.template(), i).unwrap().to_owned(),
                        cat.variant_id(c.variant).unwrap().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    (cat.creative_id(pick.creative).to_owned(), slots)
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

#[test]
fn every_slot_speaks_to_the_persons_theme() {
    let sel = selector_of(vec![], vec![hero_template()], SelectorConfig::default());
    let (id, slots) = assembled(&sel, &[("Luxury", 9)]);
    assert_eq!(id, "hero-tpl");
    // No Luxury call to action: the generic one completes the Luxury theme.
    assert_eq!(slots, pairs(&[("headline", "h-lux"), ("image", "i-lux"), ("cta", "c-gen")]));
    let (_, slots) = assembled(&sel, &[("Family", 9)]);
    assert_eq!(slots, pairs(&[("headline", "h-fam"), ("image", "i-fam"), ("cta", "c-fam")]));
}

#[test]
fn a_luxury_headline_never_sits_over_a_family_image() {
    // Someone high on both: the assembly takes one theme, never a mix.
    let sel = selector_of(vec![], vec![hero_template()], SelectorConfig::default());
    for scores in
        [[("Luxury", 9), ("Family", 8)], [("Luxury", 7), ("Family", 9)], [("Luxury", 8), ("Family", 8)]]
    {
        let (_, slots) = assembled(&sel, &scores);
        let themes: Vec<&str> =
            slots.iter().map(|(_, v)| v.split('-').nth(1).unwrap()).filter(|t| *t != "gen").collect();
        assert!(themes.windows(2).all(|w| w[0] == w[1]), "mixed themes {slots:?} for {scores:?}");
        assert!(!themes.is_empty(), "a high persona got a generic assembly: {slots:?}");
    }
}

#[test]
fn nobody_high_gets_the_generic_assembly_and_its_payloads_byte_for_byte() {
    let sel = selector_of(vec![], vec![hero_template()], SelectorConfig::default());
    let p = person(&sel, &[]);
    let hero = sel.placement("hero").unwrap();
    let mut s = sel.new_selection(1);
    sel.select(&p, &ctx(), hero, &mut s).unwrap();
    let a = *s.assembly(&s.picks()[0]).unwrap();
    assert_eq!(a.theme(), None);
    let cat = sel.catalog();
    let payloads: Vec<&str> = a.slots().iter().map(|c| cat.payload(c.variant).unwrap()).collect();
    assert_eq!(payloads, ["{\"text\": \"h-gen\"}", "{\"text\": \"i-gen\"}", "{\"text\": \"c-gen\"}"]);
    // A variant's catalog id is template/variant.
    assert_eq!(cat.creative_id(a.slots()[0].variant), "hero-tpl/h-gen");
}

#[test]
fn requires_and_excludes_hold_in_every_assembly() {
    // The Luxury headline requires the generic image; the Luxury image excludes the
    // generic call to action.
    let t = TemplateSpec::new("t")
        .placement("hero")
        .slot(
            SlotSpec::new("headline")
                .variant(variant("h-lux", Some("Luxury")).requires("i-gen"))
                .variant(variant("h-gen", None)),
        )
        .slot(
            SlotSpec::new("image")
                .variant(variant("i-lux", Some("Luxury")).excludes("c-gen"))
                .variant(variant("i-gen", None)),
        )
        .slot(SlotSpec::new("cta").variant(variant("c-gen", None)).variant(variant("c-lux", Some("Luxury"))));
    let sel = selector_of(vec![], vec![t], SelectorConfig::default());
    let (_, slots) = assembled(&sel, &[("Luxury", 9)]);
    // i-lux would score higher, but h-lux requires i-gen.
    assert_eq!(slots, pairs(&[("headline", "h-lux"), ("image", "i-gen"), ("cta", "c-lux")]));

    // Without the requires, i-lux is taken and c-gen is then excluded even when it is
    // the better call to action.
    let t = TemplateSpec::new("t")
        .placement("hero")
        .slot(SlotSpec::new("image").variant(variant("i-lux", Some("Luxury")).excludes("c-gen")))
        .slot(
            SlotSpec::new("cta")
                .variant(variant("c-gen", None).priority(50.0))
                .variant(variant("c-lux", Some("Luxury"))),
        );
    let sel = selector_of(vec![], vec![t], SelectorConfig::default());
    let (_, slots) = assembled(&sel, &[("Luxury", 9)]);
    assert_eq!(slots, pairs(&[("image", "i-lux"), ("cta", "c-lux")]));
}

#[test]
fn a_template_with_no_complete_assembly_is_not_picked() {
    // The only image needs purchase data; without consent the template cannot be
    // completed and the plain creative wins.
    let t = TemplateSpec::new("t")
        .placement("hero")
        .slot(SlotSpec::new("headline").variant(variant("h", None)))
        .slot(SlotSpec::new("image").variant(variant("i", None).needs("purchase")))
        .priority(2.0);
    let sel =
        selector_of(vec![CreativeSpec::new("plain").placement("hero")], vec![t], SelectorConfig::default());
    let mut p = person(&sel, &[]);
    p.consent = persona_engine::DataClasses::NONE;
    assert_eq!(picks(&sel, &p, &ctx(), 2), ["plain"]);
    let p = person(&sel, &[]);
    assert_eq!(picks(&sel, &p, &ctx(), 2), ["t", "plain"]);
}

#[test]
fn templates_and_plain_creatives_compete_on_one_scale() {
    // A template whose every variant equals a plain creative scores exactly like it.
    let t = TemplateSpec::new("t")
        .placement("hero")
        .slot(SlotSpec::new("a").variant(variant("a-lux", Some("Luxury"))))
        .slot(SlotSpec::new("b").variant(variant("b-lux", Some("Luxury"))));
    for policy in [Policy::Rules, Policy::Greedy] {
        let sel = selector_of(
            vec![tagged("plain", "Luxury")],
            vec![t.clone()],
            SelectorConfig::with_policy(policy),
        );
        let p = person(&sel, &[("Luxury", 8)]);
        let mut s = sel.new_selection(2);
        sel.select(&p, &ctx(), sel.placement("hero").unwrap(), &mut s).unwrap();
        let scores: Vec<f32> = s.picks().iter().map(|p| p.score).collect();
        assert_eq!(scores.len(), 2);
        assert!((scores[0] - scores[1]).abs() < 1e-6, "{policy:?}: {scores:?}");
    }
    // A higher template priority puts it first; a higher creative priority puts that first.
    let sel = selector_of(
        vec![tagged("plain", "Luxury")],
        vec![t.clone().priority(2.0)],
        SelectorConfig::default(),
    );
    assert_eq!(picks(&sel, &person(&sel, &[("Luxury", 8)]), &ctx(), 2), ["t", "plain"]);
    let sel = selector_of(vec![tagged("plain", "Luxury").priority(2.0)], vec![t], SelectorConfig::default());
    assert_eq!(picks(&sel, &person(&sel, &[("Luxury", 8)]), &ctx(), 2), ["plain", "t"]);
}

#[test]
fn record_credits_every_variant_used_and_the_template() {
    let sel = selector_of(vec![], vec![hero_template()], SelectorConfig::with_policy(Policy::Greedy));
    let mut p = person(&sel, &[("Luxury", 9)]);
    let hero = sel.placement("hero").unwrap();
    let mut s = sel.new_selection(1);
    sel.select(&p, &ctx(), hero, &mut s).unwrap();
    let pick = s.picks()[0];
    let a = *s.assembly(&pick).unwrap();
    for kind in [FeedbackKind::Impression, FeedbackKind::Click] {
        sel.record_assembly(&mut p, &Feedback::new(pick.creative, kind, &ctx()), &a).unwrap();
    }
    let cat = sel.catalog();
    let stats = sel.stats();
    assert_eq!(stats.overall(pick.creative).impressions, 1);
    for id in ["h-lux", "i-lux", "c-gen"] {
        let v = cat.variant(pick.creative, id).unwrap();
        let c = stats.overall(v);
        assert_eq!((c.impressions, c.clicks), (1, 1), "{id}");
    }
    for id in ["h-fam", "i-fam", "h-gen", "i-gen", "c-fam"] {
        assert_eq!(stats.overall(cat.variant(pick.creative, id).unwrap()).impressions, 0, "{id}");
    }
    // The learned estimate of a clicked variant rose above an unused one's.
    let before = a.slots()[0].estimate;
    sel.select(&p, &ctx(), hero, &mut s).unwrap();
    let again = *s.assembly(&s.picks()[0]).unwrap();
    assert!(again.slots()[0].estimate > before, "{} vs {before}", again.slots()[0].estimate);
    assert!(again.slots()[0].evidence >= 1.0);
}

#[test]
fn learning_which_headline_works_moves_the_assembly() {
    // Two generic headlines and one image; the second headline gets all the clicks.
    let t = TemplateSpec::new("t")
        .placement("hero")
        .slot(SlotSpec::new("headline").variant(variant("h1", None)).variant(variant("h2", None)))
        .slot(SlotSpec::new("image").variant(variant("i", None)));
    let sel = selector_of(vec![], vec![t], SelectorConfig::with_policy(Policy::Greedy));
    let (_, slots) = assembled(&sel, &[]);
    assert_eq!(slots[0].1, "h1", "ties go to the first variant");
    let cat = sel.catalog();
    let tpl = cat.creative("t").unwrap();
    let h2 = cat.variant(tpl, "h2").unwrap();
    let mut p = person(&sel, &[]);
    for i in 0..200 {
        sel.record(&mut p, &Feedback::new(h2, FeedbackKind::Impression, &ctx())).unwrap();
        if i % 2 == 0 {
            sel.record(&mut p, &Feedback::new(h2, FeedbackKind::Click, &ctx())).unwrap();
        }
    }
    let (_, slots) = assembled(&sel, &[]);
    assert_eq!(slots[0].1, "h2");
}

#[test]
fn thumbs_down_on_an_assembly_removes_the_template_for_that_person() {
    let sel = selector_of(
        vec![CreativeSpec::new("plain").placement("hero")],
        vec![hero_template()],
        SelectorConfig::default(),
    );
    let mut p = person(&sel, &[("Luxury", 9)]);
    let hero = sel.placement("hero").unwrap();
    let mut s = sel.new_selection(1);
    sel.select(&p, &ctx(), hero, &mut s).unwrap();
    let pick = s.picks()[0];
    assert!(sel.catalog().is_template(pick.creative));
    let a = *s.assembly(&pick).unwrap();
    sel.record_assembly(&mut p, &Feedback::new(pick.creative, FeedbackKind::ThumbsDown, &ctx()), &a).unwrap();
    assert_eq!(picks(&sel, &p, &ctx(), 1), ["plain"]);
    // The theme persona lost one point, once.
    assert_eq!(p.scores.get(sel.catalog().menu().get("Luxury").unwrap()), 8);
}

#[test]
fn record_assembly_refuses_a_feedback_for_another_creative() {
    let sel = selector_of(
        vec![CreativeSpec::new("plain").placement("hero")],
        vec![hero_template()],
        SelectorConfig::default(),
    );
    let mut p = person(&sel, &[("Luxury", 9)]);
    let mut s = sel.new_selection(1);
    sel.select(&p, &ctx(), sel.placement("hero").unwrap(), &mut s).unwrap();
    let a = *s.assembly(&s.picks()[0]).unwrap();
    let plain = sel.creative("plain").unwrap();
    let err =
        sel.record_assembly(&mut p, &Feedback::new(plain, FeedbackKind::Click, &ctx()), &a).unwrap_err();
    assert_eq!(
        err.to_string(),
        "feedback: field 'creative': 'plain' is not the template of this assembly ('hero-tpl')"
    );
}

#[test]
fn explanation_gives_one_reason_and_each_slots_choice() {
    let sel = selector_of(vec![], vec![hero_template()], SelectorConfig::default());
    let p = person(&sel, &[("Luxury", 9)]);
    let mut s = sel.new_selection(1);
    sel.select(&p, &ctx(), sel.placement("hero").unwrap(), &mut s).unwrap();
    let pick = s.picks()[0];
    let text = sel.explain_assembly(&pick, s.assembly(&pick).unwrap());
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(
        lines[0].starts_with("assembled 'hero-tpl' on theme 'Luxury': persona 'Luxury' (score 9/9)"),
        "{text}"
    );
    assert!(
        lines[1].starts_with("  headline: 'h-lux' for 'Luxury' (score 9/9, match 1.00), score "),
        "{text}"
    );
    assert!(lines[3].starts_with("  cta: 'c-gen' generic, score "), "{text}");
}

/// Picks `n` times with distinct fixed seeds; per (template or creative, assembly) the
/// count and the mean reported propensity.
fn observe(sel: &Selector, n: u64) -> HashMap<String, (u32, f64)> {
    let p = person(sel, &[("Luxury", 8), ("Family", 7)]);
    let hero = sel.placement("hero").unwrap();
    let mut s = sel.new_selection(1);
    let cat = sel.catalog();
    let mut out: HashMap<String, (u32, f64)> = HashMap::new();
    for seed in 0..n {
        sel.select(&p, &ctx().with_seed(seed), hero, &mut s).unwrap();
        let pick = s.picks()[0];
        let mut key = cat.creative_id(pick.creative).to_owned();
        if let Some(a) = s.assembly(&pick) {
            for c in a.slots() {
                key.push(' ');
                key.push_str(cat.variant_id(c.variant).unwrap());
            }
        }
        let e = out.entry(key).or_default();
        e.0 += 1;
        e.1 += f64::from(pick.propensity);
    }
    for v in out.values_mut() {
        v.1 /= f64::from(v.0);
    }
    out
}

#[test]
fn propensity_of_an_assembled_pick_is_its_observed_frequency() {
    let n = 20_000u64;
    let two = TemplateSpec::new("other")
        .placement("hero")
        .slot(SlotSpec::new("a").variant(variant("x", Some("Family"))).variant(variant("y", None)));
    // Thompson's propensity is a Monte Carlo estimate (for an assembly, from a normal
    // approximation of the mean of its variants' draws): 0.03 of slack, as for creatives.
    for (policy, reach, slack) in [
        (Policy::EpsilonGreedy { epsilon: 0.3 }, None, 0.0),
        (Policy::EpsilonGreedy { epsilon: 0.3 }, Some(1.0), 0.0),
        (Policy::Softmax { temperature: 0.5 }, None, 0.0),
        (Policy::Thompson, None, 0.03),
    ] {
        let mut config = SelectorConfig::with_policy(policy);
        config.max_per_persona = 0;
        config.learning.explore_reach = reach;
        let sel = selector_of(
            vec![
                tagged("lux", "Luxury"),
                tagged("fam", "Family"),
                CreativeSpec::new("house").placement("hero"),
            ],
            vec![hero_template(), two.clone()],
            config,
        );
        let seen = observe(&sel, n);
        assert!(seen.keys().any(|k| k.starts_with("hero-tpl ")), "{seen:?}");
        assert!(seen.keys().any(|k| k.starts_with("other ")), "{seen:?}");
        // One assembly per template: the propensity covers the exact assembly.
        assert_eq!(seen.keys().filter(|k| k.starts_with("hero-tpl ")).count(), 1, "{seen:?}");
        for (key, (count, propensity)) in &seen {
            let share = f64::from(*count) / n as f64;
            // Five binomial standard deviations.
            let tolerance = 5.0 * (propensity * (1.0 - propensity) / n as f64).sqrt() + 1e-3 + slack;
            assert!(
                (share - propensity).abs() < tolerance,
                "{policy:?} {reach:?} {key}: observed {share:.4}, reported {propensity:.4}"
            );
        }
    }
}

#[test]
fn pruned_and_full_scans_agree_with_templates() {
    let mut creatives: Vec<CreativeSpec> = (0..40)
        .map(|i| {
            tagged(&format!("c{i}"), ["Luxury", "Family", "Budget", "Adventure"][i % 4])
                .priority(1.0 + i as f64 / 100.0)
        })
        .collect();
    creatives.push(CreativeSpec::new("house").placement("hero"));
    for policy in [Policy::Rules, Policy::Greedy] {
        let pruned = selector_of(
            creatives.clone(),
            vec![hero_template().priority(1.5)],
            SelectorConfig::with_policy(policy),
        );
        let mut config = SelectorConfig::with_policy(policy);
        config.prune = false;
        let full = selector_of(creatives.clone(), vec![hero_template().priority(1.5)], config);
        for scores in [&[("Luxury", 9)][..], &[("Family", 8)], &[]] {
            let a = picks(&pruned, &person(&pruned, scores), &ctx(), 3);
            let b = picks(&full, &person(&full, scores), &ctx(), 3);
            assert_eq!(a, b, "{policy:?} {scores:?}");
            assert!(a.contains(&"hero-tpl".to_owned()), "{policy:?} {scores:?}: {a:?}");
        }
    }
    // Epsilon-greedy among the candidates that could be the best, templates among them:
    // the same seeded picks and propensities, slot by slot.
    let mut config = SelectorConfig::with_policy(Policy::EpsilonGreedy { epsilon: 0.5 });
    config.learning.explore_reach = Some(1.0);
    let pruned = selector_of(creatives.clone(), vec![hero_template().priority(1.5)], config);
    config.prune = false;
    let full = selector_of(creatives.clone(), vec![hero_template().priority(1.5)], config);
    let hero = pruned.placement("hero").unwrap();
    let (mut a, mut b) = (pruned.new_selection(3), full.new_selection(3));
    let mut templates = 0;
    for scores in [&[("Luxury", 9)][..], &[("Family", 8), ("Budget", 6)], &[]] {
        for seed in 0..40 {
            let context = ctx().with_seed(seed);
            pruned.select(&person(&pruned, scores), &context, hero, &mut a).unwrap();
            full.select(&person(&full, scores), &context, hero, &mut b).unwrap();
            assert_eq!(a.picks(), b.picks(), "{scores:?}, seed {seed}");
            templates += a.picks().iter().filter(|p| a.assembly(p).is_some()).count();
        }
    }
    assert!(templates > 0, "assembled picks were compared");
}

fn compile_error(t: TemplateSpec) -> String {
    Catalog::compile(&spec_with(vec![], vec![t])).unwrap_err().to_string()
}

fn one_slot(v: VariantSpec) -> TemplateSpec {
    TemplateSpec::new("t").placement("hero").slot(SlotSpec::new("s").variant(v))
}

#[test]
fn validation_errors_name_template_slot_and_variant() {
    let two = |a: VariantSpec, b: VariantSpec| {
        TemplateSpec::new("t")
            .placement("hero")
            .slot(SlotSpec::new("head").variant(a))
            .slot(SlotSpec::new("img").variant(b).variant(variant("img2", None)))
    };
    let cases: Vec<(TemplateSpec, &str)> = vec![
        (TemplateSpec::new("t").placement("hero"), "template 't': field 'slots': the template has no slots"),
        (
            TemplateSpec::new("t").placement("hero").slot(SlotSpec::new("s")),
            "template 't', slot 's': field 'variants': the slot has no variants",
        ),
        (
            TemplateSpec::new("t")
                .placement("hero")
                .slot(SlotSpec::new("s").variant(variant("a", None)))
                .slot(SlotSpec::new("s").variant(variant("b", None))),
            "template 't', slot 's': field 'name': duplicate slot name",
        ),
        (
            two(variant("a", None), variant("a", None)),
            "template 't', slot 'img', variant 'a': field 'id': duplicate variant id (also in slot 'head')",
        ),
        (
            TemplateSpec::new("t")
                .placement("hero")
                .slot(SlotSpec::new("s").generic_required().variant(variant("a", Some("Luxury")))),
            "template 't', slot 's': field 'generic_required': the slot must hold a generic variant (one with no persona tag), but every variant is tagged",
        ),
        (
            two(variant("a", None).requires("img3"), variant("b", None)),
            "template 't', slot 'head', variant 'a': field 'requires': unknown variant 'img3' (did you mean 'img2'?)",
        ),
        (
            two(variant("a", None).excludes("zzz"), variant("b", None)),
            "template 't', slot 'head', variant 'a': field 'excludes': unknown variant 'zzz'",
        ),
        (
            TemplateSpec::new("t")
                .placement("hero")
                .slot(SlotSpec::new("s").variant(variant("a", None).requires("b")).variant(variant("b", None))),
            "template 't', slot 's', variant 'a': field 'requires': requires 'b' of its own slot, but a slot holds one variant per assembly",
        ),
        (
            two(variant("a", None).requires("b").requires("img2"), variant("b", None)),
            "template 't', slot 'head', variant 'a': field 'requires': requires two variants of slot 'img', but a slot holds one variant per assembly",
        ),
        (
            two(variant("a", None).requires("b").excludes("b"), variant("b", None)),
            "template 't', slot 'head', variant 'a': field 'excludes': both requires and excludes 'b'",
        ),
        (
            two(variant("a", None).requires("b"), variant("b", None).excludes("a")),
            "template 't', slot 'head', variant 'a': field 'requires': requires 'b', which excludes it",
        ),
        (
            one_slot(variant("a", None).excludes("a")),
            "template 't', slot 's', variant 'a': field 'excludes': excludes itself",
        ),
        (
            one_slot(variant("a", Some("Luxery"))),
            "template 't', slot 's', variant 'a': field 'personas': unknown persona 'Luxery' (did you mean 'Luxury'?)",
        ),
        (
            one_slot(VariantSpec::new("a").persona("Luxury", 1e39)),
            "template 't', slot 's', variant 'a': field 'personas': weight of persona 'Luxury' is 1e39 (must be finite, ≥ 0 and ≤ 100, MAX_TAG_WEIGHT)",
        ),
        (
            // As f32 it is 0: the variant would silently count as generic.
            one_slot(VariantSpec::new("a").persona("Luxury", 1e-46)),
            "template 't', slot 's', variant 'a': field 'personas': weight of persona 'Luxury' is 1e-46 (a weight above 0 must be at least 1e-6, MIN_TAG_WEIGHT)",
        ),
        (
            one_slot(variant("a", None).priority(1e-50)),
            "template 't', slot 's', variant 'a': field 'priority': priority 1e-50 is below 1e-6 (MIN_PRIORITY): as f32 it would be 0",
        ),
        (
            one_slot(variant("a", None)).priority(1e-50),
            "template 't': field 'priority': priority 1e-50 is below 1e-6 (MIN_PRIORITY): as f32 it would be 0",
        ),
        (
            one_slot(variant("a", None).targeting(persona_engine::catalog::ConditionSpec {
                region: vec!["FR".into()],
                not_region: vec!["FR".into()],
                ..Default::default()
            })),
            "template 't', slot 's', variant 'a': field 'targeting': region: the rules allow no region at all ('FR' is both allowed and excluded)",
        ),
        (
            one_slot(variant("a", None).intimacy("cosy")),
            "template 't', slot 's', variant 'a': field 'intimacy': unknown level 'cosy' (generic, segment, personal, intimate)",
        ),
        (
            TemplateSpec::new("t").placement("nowhere").slot(SlotSpec::new("s").variant(variant("a", None))),
            "template 't': field 'placements': unknown placement 'nowhere'",
        ),
        (
            TemplateSpec::new("t").slot(SlotSpec::new("s").variant(variant("a", None))),
            "template 't': field 'placements': lists no placement",
        ),
    ];
    for (t, want) in cases {
        assert_eq!(compile_error(t), want);
    }
    // A template id that a creative already uses.
    let err = Catalog::compile(&spec_with(vec![tagged("t", "Luxury")], vec![one_slot(variant("a", None))]))
        .unwrap_err()
        .to_string();
    assert_eq!(err, "template 't': field 'id': duplicate creative id (also creative #0)");
}

#[test]
fn template_limits_are_enforced_while_parsing_and_compiling() {
    let slots: Vec<serde_json::Value> = (0..=persona_engine::limits::MAX_SLOTS)
        .map(|i| serde_json::json!({"name": format!("s{i}"), "variants": [{"id": format!("v{i}")}]}))
        .collect();
    let json = serde_json::json!({
        "personas": ["Luxury"], "placements": ["hero"], "creatives": [],
        "templates": [{"id": "t", "placements": ["hero"], "slots": slots}]
    })
    .to_string();
    let err = Catalog::from_json(&json).unwrap_err().to_string();
    assert!(err.contains("field 'slots': more than 8 slots on one template (MAX_SLOTS)"), "{err}");
    let mut t = TemplateSpec::new("t").placement("hero");
    for i in 0..=persona_engine::limits::MAX_SLOTS {
        t = t.slot(SlotSpec::new(format!("s{i}")).variant(variant(&format!("v{i}"), None)));
    }
    assert_eq!(compile_error(t), "template 't': field 'slots': 9 slots (at most 8, MAX_SLOTS)");
}

#[test]
fn a_template_round_trips_through_json() {
    let spec = spec_with(vec![], vec![hero_template()]);
    let json = spec.to_json().unwrap();
    let back = CatalogSpec::from_json(&json).unwrap();
    assert_eq!(back.to_json().unwrap(), json);
    let cat = Catalog::compile(&back).unwrap();
    let t = cat.creative("hero-tpl").unwrap();
    assert!(cat.is_template(t));
    assert_eq!(cat.slot_names(t).collect::<Vec<_>>(), ["headline", "image", "cta"]);
    assert_eq!(cat.template_count(), 1);
}

mod capi {
    use std::ffi::{c_char, CStr};
    use std::ptr::{null, null_mut};

    use super::*;
    use persona_engine::ffi::*;

    use super::capi_helpers::{c, last_error, ok};

    fn text(f: impl Fn(*mut c_char, usize, *mut usize) -> pe_status) -> String {
        let mut len = 0usize;
        let status = f(null_mut(), 0, &mut len);
        assert!(matches!(status, pe_status::Ok | pe_status::BufferTooSmall), "{status:?}: {}", last_error());
        let mut buf = vec![0 as c_char; len + 1];
        ok(f(buf.as_mut_ptr(), buf.len(), &mut len));
        unsafe { CStr::from_ptr(buf.as_ptr()) }.to_str().unwrap().to_owned()
    }

    #[test]
    fn c_reads_an_assembled_picks_slots_variants_and_payloads_and_records_it() {
        let json = spec_with(vec![CreativeSpec::new("plain").placement("hero")], vec![hero_template()])
            .to_json()
            .unwrap();
        let rust = selector_of(vec![], vec![hero_template()], SelectorConfig::default());
        let profile_json = person(&rust, &[("Luxury", 9)]).to_json(rust.catalog().menu()).unwrap();
        let config = r#"{"learning": {"policy": {"kind": "greedy"}}}"#;
        unsafe {
            let mut sel = null_mut();
            let (p, l) = c(&json);
            let (cp, cl) = c(config);
            ok(pe_selector_new_from_json(p, l, cp, cl, &mut sel));
            let mut profile = null_mut();
            let (p, l) = c(&profile_json);
            ok(pe_profile_new_from_json(sel, p, l, &mut profile));
            let mut hero = 0u16;
            let (p, l) = c("hero");
            ok(pe_selector_placement(sel, p, l, &mut hero));
            let mut selection = null_mut();
            ok(pe_selection_new(sel, 2, &mut selection));
            let ctx = pe_context {
                at: NOW,
                utc_offset_minutes: 0,
                device: 0,
                channel: 0,
                weather: 0,
                seed: 7,
                region: null(),
                region_len: 0,
                attributes: null(),
                attribute_count: 0,
            };
            ok(pe_select(sel, profile, &ctx, hero, selection));
            let mut template = 0u32;
            ok(pe_selection_creative(selection, 0, &mut template));
            assert_eq!(text(|b, n, o| pe_selector_creative_id(sel, template, b, n, o)), "hero-tpl");
            let mut slots = 0usize;
            ok(pe_selection_slot_count(selection, 0, &mut slots));
            assert_eq!(slots, 3);
            let mut theme = 0u16;
            ok(pe_selection_theme(selection, 0, &mut theme));
            assert_eq!(text(|b, n, o| pe_selector_persona_name(sel, theme, b, n, o)), "Luxury");
            let mut got = Vec::new();
            for slot in 0..slots {
                let mut variant = 0u32;
                ok(pe_selection_slot_variant(selection, 0, slot, &mut variant));
                got.push((
                    text(|b, n, o| pe_selector_slot_name(sel, template, slot, b, n, o)),
                    text(|b, n, o| pe_selector_variant_id(sel, variant, b, n, o)),
                    text(|b, n, o| pe_selector_creative_payload(sel, variant, b, n, o)),
                ));
            }
            let want = [
                ("headline", "h-lux", "{\"text\": \"h-lux\"}"),
                ("image", "i-lux", "{\"text\": \"i-lux\"}"),
                ("cta", "c-gen", "{\"text\": \"c-gen\"}"),
            ];
            let want: Vec<(String, String, String)> =
                want.iter().map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string())).collect();
            assert_eq!(got, want);
            let explained = text(|b, n, o| pe_selector_explain(sel, selection, 0, b, n, o));
            assert!(explained.contains("\n  image: 'i-lux' for 'Luxury'"), "{explained}");

            // The plain pick has no slots; asking for one is out of range.
            ok(pe_selection_slot_count(selection, 1, &mut slots));
            assert_eq!(slots, 0);
            let mut variant = 0u32;
            assert_eq!(pe_selection_slot_variant(selection, 1, 0, &mut variant), pe_status::OutOfRange);
            assert_eq!(last_error(), "slot 0 is past the end of pick 1's 0 slots");
            let mut len = 0usize;
            assert_eq!(pe_selector_variant_id(sel, template, null_mut(), 0, &mut len), pe_status::OutOfRange);
            assert_eq!(
                last_error(),
                format!("creative {template} ('hero-tpl') is not a variant of a template")
            );

            // Recording the assembled pick credits the template and each variant.
            ok(pe_record_assembly(
                sel,
                profile,
                &ctx,
                selection,
                0,
                pe_feedback_kind::Impression as u32,
                0.0,
            ));
            ok(pe_record_assembly(sel, profile, &ctx, selection, 0, pe_feedback_kind::Click as u32, 0.0));
            let stats = text(|b, n, o| pe_selector_stats_save(sel, b, n, o));
            for used in ["\"hero-tpl\"", "\"hero-tpl/h-lux\"", "\"hero-tpl/i-lux\"", "\"hero-tpl/c-gen\""] {
                assert!(stats.contains(used), "{used} not in {stats}");
            }
            assert!(!stats.contains("\"hero-tpl/i-fam\""), "{stats}");
            // A thumbs-down on the assembly: the template is not assembled for them again.
            ok(pe_record_assembly(
                sel,
                profile,
                &ctx,
                selection,
                0,
                pe_feedback_kind::ThumbsDown as u32,
                0.0,
            ));
            ok(pe_select(sel, profile, &ctx, hero, selection));
            ok(pe_selection_creative(selection, 0, &mut template));
            assert_eq!(text(|b, n, o| pe_selector_creative_id(sel, template, b, n, o)), "plain");
            assert_eq!(pe_record_assembly(sel, profile, &ctx, selection, 5, 0, 0.0), pe_status::OutOfRange);

            pe_selection_free(selection);
            pe_profile_free(profile);
            pe_selector_free(sel);
        }
    }
}

#[test]
fn the_sample_templates_cover_several_personas_and_assemble_on_theme() {
    let catalog = persona_engine::sample::catalog_with_templates().unwrap();
    assert_eq!(catalog.template_count(), 2);
    let sel = Selector::new(catalog, SelectorConfig::default()).unwrap();
    let cat = sel.catalog();
    for (id, placement) in [("email-hero-weekly", "email_hero"), ("home-banner-seasonal", "home_banner")] {
        let t = cat.creative(id).unwrap();
        assert_eq!(cat.placement(placement).map(|p| cat.candidate_count(p)).unwrap(), 1);
        let mut personas = std::collections::BTreeSet::new();
        for c in 0..cat.len() as u32 {
            let c = persona_engine::CreativeId(c);
            if cat.variant_template(c) == Some(t) {
                personas.extend(cat.tags(c).map(|(p, _)| p));
            }
        }
        assert!(personas.len() >= 4, "{id}: {personas:?}");
    }
    // The sample people: the luxury traveller gets a Luxury email hero.
    let people = persona_engine::sample::people(cat.menu()).unwrap();
    let lux = &people[0];
    let mut s = sel.new_selection(1);
    sel.select(&lux.profile, &lux.context, sel.placement("email_hero").unwrap(), &mut s).unwrap();
    let a = *s.assembly(&s.picks()[0]).unwrap();
    assert_eq!(a.theme(), cat.menu().get("Luxury Travel"));
    let ids: Vec<&str> = a.slots().iter().map(|c| cat.variant_id(c.variant).unwrap()).collect();
    assert_eq!(ids, ["lux-headline", "lux-image", "cta-concierge"]);
}

#[test]
fn pruning_never_changes_picks_on_a_catalog_with_templates() {
    // Fixed seeds: 10 % templates of 4 slots × 8 variants, learning warmed by the
    // learner's own picks; the pruned scan must pick exactly what the full scan picks.
    let shape = persona_engine::sample::Synthetic { personas: 12, placements: 1, creatives: 180, seed: 5 };
    let mut spec = shape.spec_with_templates(20, 4, 8);
    // Competitive templates, so that many picks are assembled.
    for t in &mut spec.templates {
        t.priority *= 2.5;
    }
    for policy in [Policy::Rules, Policy::Greedy] {
        let catalog = std::sync::Arc::new(Catalog::compile(&spec).unwrap());
        let pruned = Selector::new(catalog.clone(), SelectorConfig::with_policy(policy)).unwrap();
        let mut config = SelectorConfig::with_policy(policy);
        config.prune = false;
        let full = Selector::new(catalog, config).unwrap();
        let placement = pruned.placement("placement-0").unwrap();
        let mut people = shape.people(60);
        let (mut a, mut b) = (pruned.new_selection(3), full.new_selection(3));
        let mut assembled = 0;
        for round in 0..4 {
            for (i, (profile, context)) in people.iter_mut().enumerate() {
                pruned.select(profile, context, placement, &mut a).unwrap();
                full.select(profile, context, placement, &mut b).unwrap();
                let ids =
                    |s: &persona_engine::Selection| s.picks().iter().map(|p| p.creative).collect::<Vec<_>>();
                assert_eq!(ids(&a), ids(&b), "{policy:?} round {round} person {i}");
                let Some(pick) = a.picks().first().copied() else { continue };
                let feedback = Feedback::new(pick.creative, FeedbackKind::Impression, context);
                let click = Feedback::new(pick.creative, FeedbackKind::Click, context);
                for sel in [&pruned, &full] {
                    match a.assembly(&pick).copied() {
                        Some(x) => {
                            assembled += 1;
                            let mut copy = profile.clone();
                            sel.record_assembly(&mut copy, &feedback, &x).unwrap();
                            if i % 3 == 0 {
                                sel.record_assembly(&mut copy, &click, &x).unwrap();
                            }
                        }
                        None => {
                            let mut copy = profile.clone();
                            sel.record(&mut copy, &feedback).unwrap();
                            if i % 3 == 0 {
                                sel.record(&mut copy, &click).unwrap();
                            }
                        }
                    }
                }
            }
        }
        assert!(assembled > 20, "{policy:?}: only {assembled} assembled picks");
    }
}

/// The output quoted in the README's "Assembled creatives" section is what the
/// quickstart prints for the luxury traveller's email hero.
#[test]
fn readme_output_matches_the_sample_templates() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = readme.split("## Assembled creatives").nth(1).expect("README has the section");
    let quoted = section.split("```text\n").nth(1).and_then(|t| t.split("```").next()).unwrap();
    let sel =
        Selector::new(persona_engine::sample::catalog_with_templates().unwrap(), SelectorConfig::default())
            .unwrap();
    let lux = &persona_engine::sample::people(sel.catalog().menu()).unwrap()[0];
    let mut s = sel.new_selection(1);
    sel.select(&lux.profile, &lux.context, sel.placement("email_hero").unwrap(), &mut s).unwrap();
    let pick = s.picks()[0];
    let printed =
        format!("   {}", sel.explain_assembly(&pick, s.assembly(&pick).unwrap()).replace('\n', "\n   "));
    assert_eq!(quoted.trim_end(), printed);
}

#[test]
fn a_low_template_still_fills_a_slot_the_diversity_rules_left_empty() {
    // Five strong creatives share an exclusion group, so only one may be picked; the
    // weak template must then take the second slot, pruned or not.
    let creatives: Vec<CreativeSpec> =
        (0..5).map(|i| tagged(&format!("c{i}"), "Luxury").priority(5.0).exclusion_group("g")).collect();
    let t = TemplateSpec::new("t")
        .placement("hero")
        .priority(0.2)
        .slot(SlotSpec::new("a").variant(variant("a", None)));
    for policy in [Policy::Rules, Policy::Greedy] {
        for prune in [true, false] {
            let mut config = SelectorConfig::with_policy(policy);
            config.prune = prune;
            let sel = selector_of(creatives.clone(), vec![t.clone()], config);
            assert_eq!(
                picks(&sel, &person(&sel, &[("Luxury", 9)]), &ctx(), 3),
                ["c0", "t"],
                "{policy:?} {prune}"
            );
        }
    }
}

/// The template example in docs/catalog.md is a valid template of the sample menu.
#[test]
fn the_documented_template_example_compiles() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/catalog.md")).unwrap();
    let section = doc.split("## Template (assembled creative)").nth(1).expect("docs have the section");
    let json = section.split("```json\n").nth(1).and_then(|t| t.split("```").next()).unwrap();
    let template: TemplateSpec = serde_json::from_str(json).unwrap();
    let mut spec = persona_engine::sample::catalog_spec().unwrap();
    spec.placements.push("email_hero".to_owned());
    spec.templates.push(template);
    let catalog = Catalog::compile(&spec).unwrap();
    let t = catalog.creative("email-hero-weekly").unwrap();
    assert_eq!(catalog.slot_names(t).collect::<Vec<_>>(), ["headline", "call_to_action"]);
}

#[test]
fn a_slot_name_is_bounded_and_free_of_control_characters() {
    // Handed to C NUL-terminated, "head\0line" would read as "head".
    let named = |name: &str| {
        TemplateSpec::new("t")
            .placement("hero")
            .slot(SlotSpec::new("first").variant(variant("a", None)))
            .slot(SlotSpec::new(name).variant(variant("b", None)))
    };
    assert_eq!(
        compile_error(named("head\0line")),
        "template 't': field 'slots[1].name': slot name contains the control character U+0000 at byte 4"
    );
    assert_eq!(
        compile_error(named("x\ny")),
        "template 't': field 'slots[1].name': slot name contains the control character U+000A at byte 1"
    );
    assert_eq!(
        compile_error(named(&"s".repeat(257))),
        "template 't': field 'slots[1].name': slot name is 257 bytes long (at most 256, MAX_ID_LEN)"
    );
    Catalog::compile(&spec_with(vec![], vec![named(&"s".repeat(256))])).expect("256 bytes is fine");
}
