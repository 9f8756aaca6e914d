//! The scoring contract: priority · (prior + Σ w·s/9 over counted personas) · boosts,
//! deterministic ties, diverse picks, and a reason for every pick.

mod common;

use common::*;
use persona_engine::{CreativeSpec, Policy, ReasonKind, SelectorConfig};

/// These tests pin the rules score itself, so they run under the rules policy (the
/// learning policies' use of it is covered in tests/learning.rs).
fn rules() -> SelectorConfig {
    SelectorConfig::with_policy(Policy::Rules)
}

fn selector(creatives: Vec<CreativeSpec>) -> persona_engine::Selector {
    selector_with(creatives, rules())
}

fn scored(sel: &persona_engine::Selector, p: &persona_engine::Profile, k: usize) -> Vec<(String, f32)> {
    let hero = sel.placement("hero").unwrap();
    let mut s = sel.new_selection(k);
    sel.select(p, &ctx(), hero, &mut s).unwrap();
    s.picks().iter().map(|x| (sel.catalog().creative_id(x.creative).to_owned(), x.score)).collect()
}

fn close(a: f32, b: f32) -> bool {
    (a - b).abs() < 1e-5
}

#[test]
fn score_follows_the_contract() {
    let sel = selector(vec![CreativeSpec::new("c")
        .placement("hero")
        .persona("Luxury", 0.8)
        .persona("Family", 0.5)
        .persona("Budget", 1.0)
        .priority(2.0)
        .boost(when(), 1.5)]);
    // Luxury 9 and Family 7 count; Budget 6 is below the default threshold of 7. The
    // weights add up to 2.3, so each counts as its share of them.
    let p = person(&sel, &[("Luxury", 9), ("Family", 7), ("Budget", 6)]);
    let want = 2.0 * (0.05 + (0.8 * 9.0 / 9.0 + 0.5 * 7.0 / 9.0) / 2.3) * 1.5;
    let got = scored(&sel, &p, 1);
    assert!(close(got[0].1, want), "{got:?} vs {want}");
}

#[test]
fn the_threshold_is_configurable() {
    let config = SelectorConfig { threshold: 5, ..rules() };
    let sel = selector_with(vec![tagged("c", "Budget")], config);
    let p = person(&sel, &[("Budget", 6)]);
    assert!(close(scored(&sel, &p, 1)[0].1, 0.05 + 6.0 / 9.0));
}

#[test]
fn the_best_persona_match_wins() {
    let sel = selector(vec![tagged("lux", "Luxury"), tagged("family", "Family"), tagged("adv", "Adventure")]);
    let p = person(&sel, &[("Family", 9), ("Luxury", 7)]);
    let ids: Vec<String> = scored(&sel, &p, 3).into_iter().map(|x| x.0).collect();
    assert_eq!(ids, ["family", "lux", "adv"]);
}

#[test]
fn without_a_high_persona_priority_and_context_rank() {
    let sel = selector(vec![
        tagged("low", "Luxury").priority(1.0),
        tagged("high", "Family").priority(2.0),
        tagged("boosted", "Budget").boost(common::when(), 3.0),
    ]);
    let p = person(&sel, &[]);
    let hero = sel.placement("hero").unwrap();
    let mut s = sel.new_selection(3);
    sel.select(&p, &ctx(), hero, &mut s).unwrap();
    let ids: Vec<_> = s.picks().iter().map(|x| sel.catalog().creative_id(x.creative)).collect();
    assert_eq!(ids, ["boosted", "high", "low"]);
    assert!(s.picks().iter().all(|x| x.reason.kind == ReasonKind::Priority));
}

#[test]
fn declared_likes_beat_inferred_scores() {
    let sel = selector(vec![tagged("lux", "Luxury"), tagged("eco", "Adventure")]);
    let mut p = person(&sel, &[("Luxury", 8), ("Adventure", 2)]);
    p.declare_like(sel.catalog().menu(), "Adventure").unwrap();
    let got = scored(&sel, &p, 2);
    assert_eq!(got[0].0, "eco");
    assert!(close(got[0].1, 0.05 + 1.0));
}

#[test]
fn ties_break_on_priority_then_catalog_order() {
    let config = SelectorConfig { max_per_persona: 0, prior: 0.0, ..rules() };
    let sel = selector_with(
        vec![
            tagged("a", "Luxury").priority(1.0),
            tagged("b", "Luxury").priority(1.0),
            // Same score as a and b (2 · 0.5 = 1 · 1), higher priority.
            CreativeSpec::new("c").placement("hero").persona("Luxury", 0.5).priority(2.0),
        ],
        config,
    );
    let p = person(&sel, &[("Luxury", 9)]);
    let first = scored(&sel, &p, 3);
    let ids: Vec<&str> = first.iter().map(|x| x.0.as_str()).collect();
    assert_eq!(ids, ["c", "a", "b"]);
    // The same request gives the same answer every time.
    for _ in 0..100 {
        assert_eq!(scored(&sel, &p, 3), first);
    }
}

#[test]
fn picks_are_distinct_and_best_first() {
    let config = SelectorConfig { max_per_persona: 0, ..rules() };
    let sel = selector_with(
        (0..20).map(|i| tagged(&format!("c{i}"), "Luxury").priority(1.0 + i as f64)).collect(),
        config,
    );
    let p = person(&sel, &[("Luxury", 9)]);
    let got = scored(&sel, &p, 5);
    let ids: Vec<&str> = got.iter().map(|x| x.0.as_str()).collect();
    assert_eq!(ids, ["c19", "c18", "c17", "c16", "c15"]);
    assert!(got.windows(2).all(|w| w[0].1 >= w[1].1));
}

#[test]
fn at_most_m_picks_share_a_persona_theme() {
    let creatives = vec![
        tagged("lux1", "Luxury").priority(5.0),
        tagged("lux2", "Luxury").priority(4.0),
        tagged("lux3", "Luxury").priority(3.0),
        tagged("family", "Family"),
        tagged("budget", "Budget"),
    ];
    let sel = selector(creatives.clone());
    let p = person(&sel, &[("Luxury", 9), ("Family", 8)]);
    let ids: Vec<String> = scored(&sel, &p, 4).into_iter().map(|x| x.0).collect();
    assert_eq!(ids, ["lux1", "lux2", "family", "budget"], "default: at most 2 per theme");
    let one = selector_with(creatives, SelectorConfig { max_per_persona: 1, ..rules() });
    let ids: Vec<String> = scored(&one, &p, 4).into_iter().map(|x| x.0).collect();
    assert_eq!(ids, ["lux1", "family", "budget"]);
}

#[test]
fn an_exclusion_group_never_appears_twice() {
    let sel = selector(vec![
        tagged("offer-large", "Luxury").exclusion_group("winter-offer").priority(3.0),
        tagged("offer-small", "Family").exclusion_group("winter-offer").priority(2.0),
        tagged("other", "Budget"),
    ]);
    let p = person(&sel, &[("Luxury", 9), ("Family", 9)]);
    let ids: Vec<String> = scored(&sel, &p, 3).into_iter().map(|x| x.0).collect();
    assert_eq!(ids, ["offer-large", "other"]);
}

#[test]
fn every_pick_says_why() {
    let sel = selector(vec![CreativeSpec::new("lux")
        .placement("hero")
        .persona("Luxury", 1.0)
        .persona("Family", 0.2)
        .targeting(persona_engine::catalog::ConditionSpec { device: strings(&["desktop"]), ..when() })
        .boost(persona_engine::catalog::ConditionSpec { daypart: strings(&["evening"]), ..when() }, 1.2)
        .boost(persona_engine::catalog::ConditionSpec { daypart: strings(&["morning"]), ..when() }, 2.0)]);
    let p = person(&sel, &[("Luxury", 8), ("Family", 9)]);
    let hero = sel.placement("hero").unwrap();
    let mut s = sel.new_selection(1);
    sel.select(&p, &ctx(), hero, &mut s).unwrap();
    let pick = s.picks()[0];
    let r = pick.reason;
    assert_eq!(r.kind, ReasonKind::PersonaMatch);
    assert_eq!(r.persona, sel.catalog().menu().get("Luxury"));
    assert_eq!(r.persona_score, 8);
    assert!(r.targeted);
    assert_eq!(r.boosts_matched, 0b01);
    assert!(close(r.context_boost, 1.2));
    assert_eq!(pick.propensity, 1.0);
    let text = sel.explain(&pick);
    assert!(text.contains("persona 'Luxury' (score 8/9)"), "{text}");
    assert!(text.contains("targeting held (device)"), "{text}");
    assert!(text.contains("context boost x1.20"), "{text}");
}

#[test]
fn config_errors_name_the_field() {
    let bad = SelectorConfig { threshold: 10, ..rules() };
    let cat = persona_engine::Catalog::compile(&spec(vec![tagged("a", "Luxury")])).unwrap();
    let err = persona_engine::Selector::new(cat, bad).unwrap_err();
    assert_eq!(err.to_string(), "selector config: field 'threshold': 10 is above the top score 9");
    let bad = SelectorConfig { prior: f32::NAN, ..SelectorConfig::default() };
    let cat = persona_engine::Catalog::compile(&spec(vec![tagged("a", "Luxury")])).unwrap();
    let err = persona_engine::Selector::new(cat, bad).unwrap_err();
    assert_eq!(err.to_string(), "selector config: field 'prior': NaN must be finite and ≥ 0");
}

#[test]
fn listing_more_personas_never_inflates_a_creatives_match() {
    let focused = CreativeSpec::new("focused").placement("hero").persona("Luxury", 1.0);
    let broad = CreativeSpec::new("broad")
        .placement("hero")
        .persona("Luxury", 1.0)
        .persona("Family", 1.0)
        .persona("Budget", 1.0);
    let sel = selector(vec![focused, broad]);
    // Someone who fits all three: the broad creative scores no more than the focused one.
    let everything = person(&sel, &[("Luxury", 9), ("Family", 9), ("Budget", 9)]);
    let got = scored(&sel, &everything, 2);
    assert!(close(got[0].1, got[1].1), "{got:?}");
    // Someone who fits one: the focused creative wins, by its whole match.
    let lux = person(&sel, &[("Luxury", 9)]);
    let got = scored(&sel, &lux, 2);
    assert_eq!(got[0].0, "focused");
    assert!(close(got[0].1, 0.05 + 1.0) && close(got[1].1, 0.05 + 1.0 / 3.0), "{got:?}");
}
