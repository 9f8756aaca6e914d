//! Feedback has immediate, personal effects: rejections are obeyed on the very next
//! pick, caps hold, fatigue builds and fades, affinities move a little, memory is bounded.

mod common;

use common::*;
use persona_engine::profile::{MAX_ENGAGEMENTS, MAX_EXPOSURES};
use persona_engine::{
    Context, CreativeSpec, DataClasses, Feedback, FeedbackKind, Policy, Profile, SelectorConfig,
};
use proptest::prelude::*;

fn thompson() -> SelectorConfig {
    SelectorConfig::with_policy(Policy::Thompson)
}

fn five_luxury() -> Vec<CreativeSpec> {
    (0..5).map(|i| tagged(&format!("lux{i}"), "Luxury")).chain([tagged("fam", "Family")]).collect()
}

fn record(
    sel: &persona_engine::Selector,
    p: &mut persona_engine::Profile,
    id: &str,
    kind: FeedbackKind,
    at: i64,
) {
    let creative = sel.creative(id).unwrap();
    sel.record(p, &Feedback::new(creative, kind, &Context::at(at))).unwrap();
}

#[test]
fn thumbs_down_is_obeyed_on_next_pick() {
    let sel = selector_with(five_luxury(), thompson());
    let mut p = person(&sel, &[("Luxury", 9)]);
    let hero = sel.placement("hero").unwrap();
    let mut s = sel.new_selection(3);
    record(&sel, &mut p, "lux2", FeedbackKind::ThumbsDown, NOW);
    record(&sel, &mut p, "lux4", FeedbackKind::Dismiss, NOW);
    let mut seen = std::collections::HashSet::new();
    for seed in 0..5_000u64 {
        sel.select(&p, &ctx().with_seed(seed), hero, &mut s).unwrap();
        for pick in s.picks() {
            let id = sel.catalog().creative_id(pick.creative);
            assert!(id != "lux2" && id != "lux4", "rejected creative {id} came back (seed {seed})");
            seen.insert(id.to_owned());
        }
    }
    // Exploration was really on: every other creative showed up.
    assert_eq!(seen.len(), 4, "{seen:?}");
}

#[test]
fn thumbs_nudge_affinity_but_declared_preferences_win() {
    let sel = selector(vec![
        CreativeSpec::new("lux-fam").placement("hero").persona("Luxury", 1.0).persona("Family", 0.5),
        tagged("adv", "Adventure"),
    ]);
    let menu = sel.catalog().menu();
    let (lux, fam, adv) =
        (menu.id("Luxury").unwrap(), menu.id("Family").unwrap(), menu.id("Adventure").unwrap());
    let mut p = person(&sel, &[("Luxury", 7), ("Family", 3)]);
    record(&sel, &mut p, "lux-fam", FeedbackKind::ThumbsUp, NOW);
    assert_eq!((p.scores.get(lux), p.scores.get(fam)), (8, 4));
    record(&sel, &mut p, "adv", FeedbackKind::ThumbsDown, NOW);
    assert_eq!(p.scores.get(adv), 0, "never below 0");
    for _ in 0..5 {
        record(&sel, &mut p, "lux-fam", FeedbackKind::ThumbsUp, NOW);
    }
    assert_eq!(p.scores.get(lux), 9, "never above 9");
    // A declared dislike is not undone by thumbs up, and still excludes the creative.
    p.declare_dislike(menu, "Family").unwrap();
    let before = p.scores.get(fam);
    let mut q = p.clone();
    q.suppressed.clear();
    record(&sel, &mut q, "lux-fam", FeedbackKind::ThumbsUp, NOW);
    assert_eq!(q.scores.get(fam), before);
    assert!(!picks(&sel, &q, &ctx(), 2).contains(&"lux-fam".to_owned()));
}

#[test]
fn memory_is_bounded() {
    let sel = selector(five_luxury());
    let mut p = person(&sel, &[("Luxury", 9)]);
    for i in 0..3_000 {
        record(&sel, &mut p, &format!("lux{}", i % 5), FeedbackKind::Impression, NOW + i);
        record(&sel, &mut p, &format!("lux{}", i % 5), FeedbackKind::Click, NOW + i);
    }
    assert_eq!(p.exposures.len(), MAX_EXPOSURES);
    assert_eq!(p.engagements.len(), MAX_ENGAGEMENTS);
    assert_eq!(p.exposures.last().unwrap().at, NOW + 2_999, "the newest are kept");
}

#[test]
fn fatigue_builds_without_engagement_and_fades() {
    let sel = selector_with(
        vec![tagged("lux", "Luxury"), tagged("lux-b", "Luxury").priority(0.9)],
        SelectorConfig::with_policy(Policy::Rules),
    );
    let mut p = person(&sel, &[("Luxury", 9)]);
    let hero = sel.placement("hero").unwrap();
    let mut s = sel.new_selection(1);
    sel.select(&p, &ctx(), hero, &mut s).unwrap();
    assert_eq!(s.picks()[0].reason.fatigue, 1.0);
    for i in 0..3 {
        record(&sel, &mut p, "lux", FeedbackKind::Impression, NOW - 60 + i);
    }
    sel.select(&p, &ctx(), hero, &mut s).unwrap();
    assert_eq!(sel.catalog().creative_id(s.picks()[0].creative), "lux-b", "a tired creative yields");
    // Three fresh impressions: 1 − 0.15·3 ≈ 0.55 for "lux".
    let mut all = sel.new_selection(2);
    sel.select(&p, &ctx(), hero, &mut all).unwrap();
    let tired = all.picks().iter().find(|x| sel.catalog().creative_id(x.creative) == "lux").unwrap();
    assert!((tired.reason.fatigue - 0.55).abs() < 0.01, "{}", tired.reason.fatigue);
    assert!(sel.explain(tired).contains("fatigue x0.55"));
    // Two days later the impressions weigh a quarter: 1 − 0.45/4.
    sel.select(&p, &Context::at(NOW + 2 * DAY - 60), hero, &mut all).unwrap();
    let rested = all.picks().iter().find(|x| sel.catalog().creative_id(x.creative) == "lux").unwrap();
    assert!((rested.reason.fatigue - (1.0 - 0.45 / 4.0)).abs() < 0.01, "{}", rested.reason.fatigue);
    // A click resets fatigue.
    record(&sel, &mut p, "lux", FeedbackKind::Click, NOW - 1);
    sel.select(&p, &ctx(), hero, &mut s).unwrap();
    assert_eq!(sel.catalog().creative_id(s.picks()[0].creative), "lux");
    assert_eq!(s.picks()[0].reason.fatigue, 1.0);
}

/// An engagement resets the fatigue of the exposures up to its second, in whatever
/// order a profile lists them, and exposures after it build fatigue again; a profile
/// built in code with far more memory than `record` keeps still gets every entry read.
#[test]
fn fatigue_counts_only_what_came_after_the_latest_engagement_in_any_order() {
    use persona_engine::profile::Exposure;
    let sel = selector_with(
        vec![tagged("lux", "Luxury"), tagged("lux-b", "Luxury").priority(0.9)],
        SelectorConfig::with_policy(Policy::Rules),
    );
    let hero = sel.placement("hero").unwrap();
    let key = sel.catalog().creative_key(sel.creative("lux").unwrap()).unwrap();
    let shown = |at: i64| Exposure { creative: key, at };
    let mut p = person(&sel, &[("Luxury", 9)]);
    // Newest first on purpose: two before the click (one in its very second), two after.
    p.exposures = vec![shown(NOW - 10), shown(NOW - 20), shown(NOW - 100), shown(NOW - 200)];
    p.engagements = vec![shown(NOW - 300), shown(NOW - 100)];
    let mut all = sel.new_selection(2);
    sel.select(&p, &ctx(), hero, &mut all).unwrap();
    let lux = all.picks().iter().find(|x| sel.catalog().creative_id(x.creative) == "lux").unwrap();
    assert!((lux.reason.fatigue - (1.0 - 0.15 * 2.0)).abs() < 0.01, "{}", lux.reason.fatigue);
    // Thousands of other creatives' exposures (ids the catalog does not know) and
    // thousands of this one's, past every limit `record` keeps to.
    let other = |i: i64| Exposure { creative: persona_engine::Symbol::of(&format!("gone-{i}")), at: NOW - i };
    p.exposures.extend((0..5_000).map(other));
    p.exposures.extend((0..3_000).map(|i| shown(NOW - 50 - i)));
    sel.select(&p, &ctx(), hero, &mut all).unwrap();
    let lux = all.picks().iter().find(|x| sel.catalog().creative_id(x.creative) == "lux").unwrap();
    assert_eq!(lux.reason.fatigue, 0.3, "fatigue stops at its floor");
}

#[test]
fn bad_feedback_is_an_error_and_changes_nothing() {
    let sel = selector(five_luxury());
    let mut p = person(&sel, &[("Luxury", 9)]);
    let before = p.clone();
    let lux = sel.creative("lux0").unwrap();
    for value in [-1.0, f64::NAN, f64::INFINITY, 2e9] {
        let err =
            sel.record(&mut p, &Feedback::new(lux, FeedbackKind::Conversion { value }, &ctx())).unwrap_err();
        assert!(err.to_string().starts_with("feedback: field 'value': conversion value"), "{err}");
    }
    let err = sel
        .record(&mut p, &Feedback::new(persona_engine::CreativeId(999), FeedbackKind::Click, &ctx()))
        .unwrap_err();
    assert_eq!(err.to_string(), "unknown creative '#999'");
    assert_eq!(p, before);
    assert_eq!(sel.stats().overall(lux), persona_engine::Counts::default());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Whatever the order and timing of requests, a capped creative is never shown more
    /// than its cap within any window, with exploration on.
    #[test]
    fn frequency_caps_are_never_exceeded(
        steps in proptest::collection::vec((0i64..2_000, any::<u64>()), 1..120),
        cap in 1u32..4,
    ) {
        let window = 3_600u64;
        let sel = selector_with(
            vec![
                tagged("capped", "Luxury").priority(5.0).frequency_cap(cap, window),
                tagged("other", "Family"),
            ],
            thompson(),
        );
        let mut p = person(&sel, &[("Luxury", 9), ("Family", 7)]);
        let hero = sel.placement("hero").unwrap();
        let mut s = sel.new_selection(2);
        let mut now = NOW;
        let mut shown: Vec<i64> = Vec::new();
        for (dt, seed) in steps {
            now += dt;
            let moment = Context::at(now).with_seed(seed);
            sel.select(&p, &moment, hero, &mut s).unwrap();
            let chosen: Vec<_> = s.picks().iter().map(|x| x.creative).collect();
            for c in chosen {
                if sel.catalog().creative_id(c) == "capped" {
                    shown.push(now);
                }
                sel.record(&mut p, &Feedback::new(c, FeedbackKind::Impression, &moment)).unwrap();
            }
        }
        for (i, &t) in shown.iter().enumerate() {
            let in_window = shown[..=i].iter().filter(|&&u| u > t - window as i64).count();
            prop_assert!(in_window as u32 <= cap, "{} impressions within {}s at {}", in_window, window, t);
        }
    }
}

#[test]
fn a_thumb_does_not_let_a_score_of_unknown_origin_past_consent() {
    let sel = selector(vec![tagged("lux", "Luxury"), tagged("fam", "Family")]);
    let menu = sel.catalog().menu();
    let (lux, fam) = (menu.id("Luxury").unwrap(), menu.id("Family").unwrap());
    // A bare score 8 (its sources never recorded), and consent to behavioural data only.
    let mut p = Profile::from_json(
        menu,
        r#"{"persona_scores":{"Luxury":8},"consent":["behavioral"],"first_seen":1700000000,"visits":3}"#,
    )
    .unwrap();
    assert_eq!(p.scores.required_consent(lux), DataClasses::INFERRED);
    record(&sel, &mut p, "lux", FeedbackKind::ThumbsUp, NOW);
    assert_eq!(p.scores.get(lux), 9);
    // The score now also rests on behaviour, and still on what it rested on before:
    // behavioural consent alone does not make it count.
    assert_eq!(p.scores.required_consent(lux), DataClasses::INFERRED, "a thumb made an unknown origin known");
    assert!(!p.consent.contains(p.scores.required_consent(lux)));
    // Saved and read back, it keeps needing every inferred class.
    let again = Profile::from_json(menu, &p.to_json(menu).unwrap()).unwrap();
    assert_eq!(again.scores.required_consent(lux), DataClasses::INFERRED);
    // A score that was 0 rests on the behaviour alone, which this person consented to.
    record(&sel, &mut p, "fam", FeedbackKind::ThumbsUp, NOW);
    assert_eq!(p.scores.get(fam), 1);
    assert!(p.consent.contains(p.scores.required_consent(fam)));
}

#[test]
fn a_profile_made_for_another_persona_menu_is_refused_not_misread() {
    let sel = selector(five_luxury());
    let menu = sel.catalog().menu().len();
    let hero = sel.placement("hero").unwrap();
    let mut s = sel.new_selection(1);
    let lux = sel.creative("lux0").unwrap();

    // Scores for one persona more than the menu has: persona ids would land on the
    // wrong personas (or be ignored), so select and record refuse, naming the field.
    let mut other = Profile::new(menu + 1, NOW - 100 * 86_400);
    other.consent = DataClasses::ALL;
    other.scores.set(persona_engine::PersonaId(menu as u16), 9, DataClasses::NONE).unwrap();
    let err = sel.select(&other, &ctx(), hero, &mut s).unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("profile: field 'scores': holds scores for"), "{text}");
    assert!(text.contains(&format!("persona menu has {menu}")), "{text}");
    assert!(s.picks().is_empty());
    let before = other.clone();
    let err = sel.record(&mut other, &Feedback::new(lux, FeedbackKind::Click, &ctx())).unwrap_err();
    assert!(err.to_string().starts_with("profile: field 'scores'"), "{err}");
    assert_eq!(other, before, "a refused event leaves the profile as it was");
    assert_eq!(sel.stats().overall(lux), persona_engine::Counts::default(), "and the statistics");

    // A declared like or dislike naming a persona the menu does not have.
    for dislike in [false, true] {
        let mut p = person(&sel, &[("Luxury", 9)]);
        let list = if dislike { &mut p.dislikes } else { &mut p.likes };
        list.push(persona_engine::PersonaId(menu as u16 + 3));
        let err = sel.select(&p, &ctx(), hero, &mut s).unwrap_err();
        let field = if dislike { "dislikes" } else { "likes" };
        assert_eq!(
            err.to_string(),
            format!(
                "profile: field '{field}': persona id {} is not on this selector's persona menu of {menu}",
                menu + 3
            )
        );
    }

    // The engine refuses it the same way.
    let engine = persona_engine::Engine::new(selector(five_luxury()), None);
    let err = engine.select(&other, &ctx(), "hero", &mut s).unwrap_err();
    assert!(err.to_string().starts_with("profile: field 'scores'"), "{err}");

    // A profile with no scores at all (an anonymous visitor) is not a mismatch, and one
    // started empty takes the menu's size from the first score set by name.
    let mut anonymous = Profile::default();
    assert_eq!(sel.select(&anonymous, &ctx(), hero, &mut s).unwrap(), 1);
    anonymous.set_score(sel.catalog().menu(), "Family", 8, DataClasses::NONE).unwrap();
    assert_eq!(anonymous.scores.len(), menu);
    assert_eq!(sel.select(&anonymous, &ctx(), hero, &mut s).unwrap(), 1);
    // Nor is one made for this menu.
    let p = person(&sel, &[("Luxury", 9)]);
    assert_eq!(sel.select(&p, &ctx(), hero, &mut s).unwrap(), 1);
}

#[test]
fn a_profile_from_a_reordered_menu_of_the_same_size_is_refused_too() {
    // The same personas in another order: a profile's ids would name other personas.
    let sel = selector(five_luxury());
    let mut reordered = spec(five_luxury());
    reordered.personas.swap(0, 1);
    let other = persona_engine::Selector::new(
        persona_engine::Catalog::compile(&reordered).unwrap(),
        persona_engine::SelectorConfig::default(),
    )
    .unwrap();
    assert_eq!(sel.catalog().menu().len(), other.catalog().menu().len());
    assert_ne!(sel.catalog().menu().key(), other.catalog().menu().key());
    // A menu built apart with the same names in the same order has the same key.
    let apart = persona_engine::PersonaMenu::new(spec(Vec::new()).personas).unwrap();
    assert_eq!(sel.catalog().menu().key(), apart.key());

    let mut p = person(&sel, &[("Luxury", 9)]);
    let expected = "profile: field 'menu': the profile was made for another persona menu";
    let hero = other.placement("hero").unwrap();
    let mut s = other.new_selection(1);
    let err = other.select(&p, &ctx(), hero, &mut s).unwrap_err().to_string();
    assert!(err.starts_with(expected), "{err}");
    let lux = other.creative("lux0").unwrap();
    let before = p.clone();
    let err = other.record(&mut p, &Feedback::new(lux, FeedbackKind::Click, &ctx())).unwrap_err().to_string();
    assert!(err.starts_with(expected), "{err}");
    assert_eq!(p, before);
    // Nor is it written with the other menu's names, or given a score by them.
    assert!(p.to_json(other.catalog().menu()).unwrap_err().to_string().starts_with(expected));
    let err = p.set_score(other.catalog().menu(), "Family", 5, DataClasses::NONE).unwrap_err().to_string();
    assert!(err.starts_with(expected), "{err}");
    assert_eq!(p, before);
    // Compiled again from its stored form against the other menu, it is read rightly.
    let again =
        Profile::from_json(other.catalog().menu(), &p.to_json(sel.catalog().menu()).unwrap()).unwrap();
    assert_eq!(other.select(&again, &ctx(), hero, &mut s).unwrap(), 1);
    assert_eq!(s.picks()[0].reason.persona, other.catalog().menu().get("Luxury"));
}
