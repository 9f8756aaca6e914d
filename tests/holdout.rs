//! Holdout groups: a stable, salted split of people into the generic and the
//! personalized experience, at the configured share.

use persona_engine::holdout::{assignment_hash, Arm, Holdout, HoldoutConfig};
use persona_engine::{sample, Context, DataClasses, Device, Selector, SelectorConfig};

fn holdout(share: f64, salt: &str) -> Holdout {
    Holdout::new(&HoldoutConfig { share, salt: salt.into(), ..Default::default() }).unwrap()
}

#[test]
fn the_assignment_hash_is_the_documented_one() {
    // Computed independently (FNV-1a 64 over salt, 0xff, key; then SplitMix64's
    // finalizer): a change here would move people between arms.
    assert_eq!(assignment_hash("", ""), 0x01df_27c8_adb0_f2d1);
    assert_eq!(assignment_hash("hero-2026", "person-1"), 0x6dc1_1fdc_b062_f2a4);
    assert_eq!(assignment_hash("hero-2026", "person-2"), 0xc052_c4bd_d8d1_dfb9);
    // The separator keeps salt and key apart.
    assert_ne!(assignment_hash("ab", "c"), assignment_hash("a", "bc"));
}

#[test]
fn the_same_person_always_gets_the_same_arm() {
    let a = holdout(0.3, "hero-2026");
    let b = holdout(0.3, "hero-2026"); // another "process": a fresh holdout, same config
    for i in 0..2_000 {
        let key = format!("person-{i}");
        let arm = a.arm(&key);
        assert_eq!(arm, a.arm(&key));
        assert_eq!(arm, b.arm(&key));
    }
    // A new salt reshuffles: about share·(1-share)·2 of people change arms.
    let c = holdout(0.3, "hero-2027");
    let moved =
        (0..10_000).filter(|i| a.arm(&format!("person-{i}")) != c.arm(&format!("person-{i}"))).count();
    assert!((3_800..=4_600).contains(&moved), "{moved} of 10000 moved (expected about 4200)");
}

#[test]
fn the_held_out_share_is_the_configured_one() {
    for share in [0.0, 0.05, 0.1, 0.5, 1.0] {
        let h = holdout(share, "placement-hero");
        let held = (0..100_000).filter(|i| h.arm(&format!("{i:x}")) == Arm::Holdout).count();
        let got = held as f64 / 100_000.0;
        assert!((got - share).abs() < 0.01, "share {share}: held out {got}");
    }
    // Growing the share only adds people to the holdout (nobody leaves it).
    let small = holdout(0.05, "s");
    let large = holdout(0.1, "s");
    for i in 0..20_000 {
        let key = i.to_string();
        if small.arm(&key) == Arm::Holdout {
            assert_eq!(large.arm(&key), Arm::Holdout);
        }
    }
}

#[test]
fn bad_configurations_name_the_field() {
    let e = Holdout::new(&HoldoutConfig { share: 1.5, ..Default::default() }).unwrap_err().to_string();
    assert!(e.contains("'share'") && e.contains("1.5 is not a share in [0, 1]"), "{e}");
    let e = Holdout::new(&HoldoutConfig { share: f64::NAN, ..Default::default() }).unwrap_err().to_string();
    assert!(e.contains("'share'"), "{e}");
    // A share so small it would hold out nobody: refused rather than silently 0.
    let e = Holdout::new(&HoldoutConfig { share: 1e-17, ..Default::default() }).unwrap_err().to_string();
    assert!(e.contains("'share'") && e.contains("1e-17 is below 2^-53"), "{e}");
    Holdout::new(&HoldoutConfig { share: 1e-15, ..Default::default() })
        .expect("the smallest shares that count");
    Holdout::new(&HoldoutConfig { share: 0.0, ..Default::default() }).expect("no holdout");
    let e = Holdout::from_json(r#"{"share": 0.1, "fallback_policy": "random"}"#).unwrap_err().to_string();
    assert!(e.contains("'fallback_policy'") && e.contains("unknown policy 'random'"), "{e}");
    let e = Holdout::from_json(r#"{"share": 0.1, "salty": "x"}"#).unwrap_err().to_string();
    assert!(e.contains("unknown field `salty`"), "{e}");
    let h = Holdout::from_json(r#"{"share": 0.1, "salt": "x", "fallback_policy": "greedy"}"#).unwrap();
    assert_eq!(h.config().fallback_policy, "greedy");
}

#[test]
fn held_out_people_get_the_generic_experience() {
    let personalized = Selector::new(sample::catalog().unwrap(), SelectorConfig::default()).unwrap();
    let h = holdout(0.5, "hero");
    let generic = h.generic_selector(&personalized).unwrap();
    let hero = personalized.placement("home_hero").unwrap();
    let menu = personalized.catalog().menu();
    let mut person = personalized.new_profile(sample::NOW - 90 * 86_400);
    person.visits = 12;
    person.consent = DataClasses::ALL;
    person.set_score(menu, "Luxury Travel", 9, DataClasses::NONE).unwrap();
    let ctx = Context::at(sample::NOW).with_device(Device::Desktop).with_seed(7);
    let mut scratch = personalized.new_profile(0);
    let mut selection = personalized.new_selection(1);
    let (mut held, mut served) = (None, None);
    for i in 0..100 {
        let key = format!("p{i}");
        let arm = h
            .select(&key, &personalized, &generic, &person, &mut scratch, &ctx, hero, &mut selection)
            .unwrap();
        let pick = selection.picks()[0].creative;
        match arm {
            Arm::Holdout => assert_eq!(*held.get_or_insert(pick), pick),
            Arm::Personalized => assert_eq!(*served.get_or_insert(pick), pick),
        }
    }
    // The personalized pick speaks to Luxury Travel; the generic one ignores the score.
    let (held, served) = (held.unwrap(), served.unwrap());
    let mut generic_person = personalized.new_profile(0);
    Holdout::generic_profile(&person, &mut generic_person);
    assert_eq!(generic_person.scores.get(menu.id("Luxury Travel").unwrap()), 0);
    assert_eq!(generic_person.consent, person.consent);
    let mut direct = personalized.new_selection(1);
    personalized.select(&person, &ctx, hero, &mut direct).unwrap();
    assert_eq!(served, direct.picks()[0].creative);
    generic.select(&generic_person, &ctx, hero, &mut direct).unwrap();
    assert_eq!(held, direct.picks()[0].creative);
    assert!(personalized.catalog().tags(served).any(|(p, _)| menu.name(p) == "Luxury Travel"));
    assert_ne!(held, served, "the generic experience should differ for a strong persona");
}

// Lift: what the holdout shows.

use persona_engine::eval::{
    holdout_impressions_needed, lift, normal_cdf, ChosenRecord, DecisionRecord, Reward,
};
use persona_engine::learn::Rng;

fn decision(arm: Option<Arm>, click: Option<bool>) -> DecisionRecord {
    let selector = Selector::new(sample::catalog().unwrap(), SelectorConfig::default()).unwrap();
    let hero = selector.placement("home_hero").unwrap();
    let mut r =
        DecisionRecord::for_request(&selector, &selector.new_profile(0), &Context::at(sample::NOW), hero);
    r.chosen.push(ChosenRecord {
        creative: "x".into(),
        propensity: 1.0,
        reward: click.map(|click| Reward { click, conversion_value: 0.0 }),
    });
    r.arm = arm;
    r
}

#[test]
fn the_lift_of_a_simulated_world_is_recovered_within_its_interval() {
    // 10 % held out; clicks at 4 % without personalization, 5 % with it: a +1 point,
    // +25 % lift.
    let h = holdout(0.1, "world");
    let template = decision(None, None);
    let mut rng = Rng::new(42);
    let records: Vec<DecisionRecord> = (0..200_000)
        .map(|i| {
            let arm = h.arm(&format!("person-{i}"));
            let rate = if arm == Arm::Holdout { 0.04 } else { 0.05 };
            let mut r = template.clone();
            r.arm = Some(arm);
            r.chosen[0].reward = Some(Reward { click: rng.unit() < rate, conversion_value: 0.0 });
            r
        })
        .collect();
    let report = lift(&records, 0.95, 0.25, 0.8).unwrap();
    let share = report.holdout.impressions as f64 / 200_000.0;
    assert!((share - 0.1).abs() < 0.01, "{share}");
    assert!(report.absolute.covers(0.01), "{}", report.table());
    let relative = report.relative.unwrap();
    assert!(relative.covers(0.25), "{}", report.table());
    assert!(report.absolute.low > 0.0 && report.p_value < 0.001, "{}", report.table());
    // 200k impressions in a 10/90 split are enough for +25 %, and not for +2 %.
    assert_eq!(report.more_impressions_needed(), Some(0.0), "{}", report.table());
    let small = lift(&records, 0.95, 0.02, 0.8).unwrap();
    assert!(small.more_impressions_needed().unwrap() > 1_000_000.0, "{}", small.table());
    assert!(report.table().contains("absolute lift"));
}

#[test]
fn the_power_calculation_matches_the_textbook() {
    // Equal arms, 10 % vs 12 %, α = 0.05, power 0.8: 3,841 per arm (Fleiss et al.).
    let n = holdout_impressions_needed(0.10, 0.12, 1.0, 0.05, 0.8).unwrap();
    assert_eq!(n.ceil(), 3_841.0, "{n}");
    // A smaller holdout (κ = 9 personalized per held-out impression) needs fewer
    // held-out impressions but more in total.
    let k9 = holdout_impressions_needed(0.10, 0.12, 9.0, 0.05, 0.8).unwrap();
    assert!(k9 < n && k9 * 10.0 > 2.0 * n, "{k9}");
    assert_eq!(holdout_impressions_needed(0.1, 0.1, 1.0, 0.05, 0.8), None);
    assert!((normal_cdf(1.959_963_984_540_054) - 0.975).abs() < 1e-7);
    assert!((normal_cdf(-1.0) - 0.158_655_253_931_457).abs() < 1e-7);
}

#[test]
fn lift_counts_what_it_does_not_use_and_explains_an_empty_arm() {
    let records = vec![
        decision(Some(Arm::Holdout), Some(true)),
        decision(Some(Arm::Holdout), Some(false)),
        decision(Some(Arm::Personalized), Some(true)),
        decision(Some(Arm::Personalized), None),
        decision(None, Some(true)),
    ];
    let report = lift(&records, 0.95, 0.05, 0.8).unwrap();
    assert_eq!((report.holdout.impressions, report.holdout.clicks), (2, 1));
    assert_eq!((report.personalized.impressions, report.personalized.clicks), (1, 1));
    assert_eq!((report.without_arm, report.without_reward), (1, 1));
    let e = lift(&records[2..], 0.95, 0.05, 0.8).unwrap_err().to_string();
    assert!(e.contains("no holdout impression with a known reward (1 decisions have no arm)"), "{e}");
    // The arm round-trips through the log line; old lines without it read as None.
    let line = records[0].to_json_line();
    assert!(line.contains(r#""arm":"holdout""#), "{line}");
    assert_eq!(DecisionRecord::from_json_line(&line).unwrap().arm, Some(Arm::Holdout));
    let old = records[4].to_json_line();
    assert!(!old.contains("arm"));
    let bad = line.replace(r#""arm":"holdout""#, r#""arm":"control""#);
    let e = format!("{:?}", DecisionRecord::from_json_line(&bad).unwrap_err());
    assert!(e.contains("\"arm\"") && e.contains("unknown value 'control' (holdout, personalized)"), "{e}");
}
