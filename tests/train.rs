//! Training persona models from samples of behaviour: trained scores rank as well as the
//! ground truth, deciles are deciles, unconsented signals are never used, the report's
//! figures are right, and a retrain moves few people. Fixed seeds throughout.

use std::sync::OnceLock;

use persona_engine::model::report::{self, auc, gains, movement, PersonaReport};
use persona_engine::model::synthetic::{generate, SyntheticConfig, SyntheticSet};
use persona_engine::model::train::{
    read_menu, read_people, read_positives, train, Positive, TrainConfig, Trained, TrainingPerson,
};
use persona_engine::model::PersonaWeights;
use persona_engine::{DataClass, DataClasses, PersonaMenu, PersonaModel, PersonaModelSpec, Profile, Signal};

const PERSONAS: [&str; 4] = ["Beach Lover", "City Breaks", "Ski Fan", "Wellness & Spa"];
const SEED: u64 = 7;
const TRAIN: usize = 4000;
const HOLDOUT: usize = 3000;
const DAY: i64 = 86_400;
/// People in the retraining test.
const RETRAIN: usize = 2000;

fn menu() -> PersonaMenu {
    PersonaMenu::new(PERSONAS).unwrap()
}

/// 7,000 synthetic people: the first 4,000 train, the rest are held out.
fn world() -> &'static SyntheticSet {
    static WORLD: OnceLock<SyntheticSet> = OnceLock::new();
    WORLD.get_or_init(|| generate(&SyntheticConfig::new(&PERSONAS, TRAIN + HOLDOUT, SEED)).unwrap())
}

fn training_half(set: &SyntheticSet, t: i64) -> (Vec<TrainingPerson>, Vec<Positive>) {
    let (people, positives) = set.as_of(t);
    let people: Vec<TrainingPerson> = people.into_iter().take(TRAIN).collect();
    let ids: std::collections::HashSet<&str> = people.iter().map(|p| p.person.as_str()).collect();
    let positives = positives.into_iter().filter(|p| ids.contains(p.person.as_str())).collect();
    (people, positives)
}

fn trained() -> &'static Trained {
    static TRAINED: OnceLock<Trained> = OnceLock::new();
    TRAINED.get_or_init(|| {
        let set = world();
        let (people, positives) = training_half(set, set.now);
        // A four-value grid keeps the test fast; the default has seven.
        let config = TrainConfig { lambdas: vec![0.01, 0.03, 0.1, 0.3], ..TrainConfig::at(set.now) };
        train(&menu(), &people, &positives, &config, &mut |_| {}).unwrap()
    })
}

/// The defaults with a two-value grid, for tests that are not about choosing it.
fn quick(now: i64) -> TrainConfig {
    TrainConfig { lambdas: vec![0.03, 0.3], ..TrainConfig::at(now) }
}

fn profiles(people: &[TrainingPerson], now: i64) -> Vec<Profile> {
    let menu = menu();
    people.iter().map(|p| p.to_profile(&menu, now)).collect()
}

#[test]
fn trained_scores_rank_within_two_points_of_auc_of_the_ground_truth() {
    let set = world();
    let menu = menu();
    let model = PersonaModel::compile(&menu, &trained().spec).unwrap();
    let holdout: Vec<Profile> = profiles(&set.people[TRAIN..], set.now);
    let mut checked = 0;
    let mut failures = Vec::new();
    for (slot, id) in model.personas().enumerate() {
        let name = menu.name(id);
        let labels = &set.labels(name)[TRAIN..];
        let positives = labels.iter().filter(|b| **b).count();
        let truth = &set.true_logits(name).unwrap()[TRAIN..];
        let trained: Vec<f64> = holdout.iter().map(|p| model.logits(p, set.now).unwrap()[slot].0).collect();
        let (truth_auc, trained_auc) = (auc(truth, labels).unwrap(), auc(&trained, labels).unwrap());
        println!("{name}: {positives} held-out positives, truth AUC {truth_auc:.4}, trained AUC {trained_auc:.4}, gap {:.4}", truth_auc - trained_auc);
        if positives >= 50 {
            if (truth_auc - trained_auc).abs() > 0.02 {
                failures.push(format!("{name}: trained AUC {trained_auc:.4} vs ground truth {truth_auc:.4}"));
            }
            checked += 1;
        }
    }
    assert!(failures.is_empty(), "{failures:?}");
    assert_eq!(checked, PERSONAS.len(), "every persona has enough positives in this world");
}

#[test]
fn each_decile_holds_a_tenth_of_the_training_population() {
    let set = world();
    let menu = menu();
    let model = PersonaModel::compile(&menu, &trained().spec).unwrap();
    let (people, _) = training_half(set, set.now);
    let mut counts = vec![[0usize; 10]; menu.len()];
    for p in profiles(&people, set.now) {
        let scores = model.score(&p, set.now).unwrap();
        for (id, _) in menu.iter() {
            counts[id.index()][usize::from(scores.get(id))] += 1;
        }
    }
    for (id, name) in menu.iter() {
        let shares: Vec<f64> = counts[id.index()].iter().map(|c| *c as f64 / people.len() as f64).collect();
        println!("{name}: {:?}", shares.iter().map(|s| format!("{:.3}", s)).collect::<Vec<_>>());
        for (score, share) in shares.iter().enumerate() {
            assert!((share - 0.1).abs() <= 0.01, "{name}: score {score} holds {share:.3} of the people");
        }
        let high: f64 = shares[7..].iter().sum();
        assert!((high - 0.3).abs() <= 0.02, "{name}: high (≥ 7) is the top 30 %, got {high:.3}");
    }
}

#[test]
fn the_trained_spec_round_trips_through_from_json() {
    let set = world();
    let menu = menu();
    let spec = &trained().spec;
    let json = serde_json::to_string_pretty(spec).unwrap();
    let back: PersonaModelSpec = serde_json::from_str(&json).unwrap();
    assert_eq!(back.personas.len(), spec.personas.len());
    for ((name_a, a), (name_b, b)) in back.personas.iter().zip(&spec.personas) {
        assert_eq!(name_a, name_b);
        assert!((a.bias - b.bias).abs() < 1e-12);
        for ((sa, wa), (sb, wb)) in a.weights.iter().zip(&b.weights) {
            assert!(sa == sb && (wa - wb).abs() < 1e-12, "{sa} {wa} vs {sb} {wb}");
        }
    }
    let (a, b) =
        (PersonaModel::compile(&menu, spec).unwrap(), PersonaModel::from_json(&menu, &json).unwrap());
    for p in profiles(&set.people[..200], set.now) {
        assert_eq!(a.score(&p, set.now).unwrap(), b.score(&p, set.now).unwrap());
    }
    for (_, w) in &spec.personas {
        let edges = w.deciles.as_ref().expect("trained personas carry decile edges");
        assert_eq!(edges.len(), 9);
        assert!(edges.windows(2).all(|e| e[0] <= e[1]));
    }
}

#[test]
fn an_old_model_without_edges_scores_as_before() {
    let menu = PersonaMenu::new(["Luxury"]).unwrap();
    let json = r#"{"personas": {"Luxury": {"bias": 0.0, "weights": {"x": 1.0}}}}"#;
    let model = PersonaModel::from_json(&menu, json).unwrap();
    let mut p = Profile::new(1, 0);
    p.consent = DataClasses::ALL;
    // sigmoid(0) = 0.5 → 5, as `to_score` always did.
    assert_eq!(model.score(&p, 0).unwrap().get(menu.id("Luxury").unwrap()), 5);
    let with_edges = r#"{"personas": {"Luxury": {"bias": 0.0, "weights": {"x": 1.0},
        "deciles": [-4, -3, -2, -1, 0, 1, 2, 3, 4]}}}"#;
    let model = PersonaModel::from_json(&menu, with_edges).unwrap();
    // Logit 0 is at or above five edges: decile 5.
    assert_eq!(model.score(&p, 0).unwrap().get(menu.id("Luxury").unwrap()), 5);
    p.add_signal(Signal { name: "x".into(), value: 3.5, class: DataClass::Behavioral, at: 0 }).unwrap();
    assert_eq!(model.score(&p, 0).unwrap().get(menu.id("Luxury").unwrap()), 8);
}

#[test]
fn bad_decile_edges_are_refused_naming_the_field() {
    let menu = PersonaMenu::new(["Luxury"]).unwrap();
    let err =
        PersonaModel::from_json(&menu, r#"{"personas": {"Luxury": {"weights": {}, "deciles": [1, 2]}}}"#)
            .unwrap_err()
            .to_string();
    assert_eq!(err, "persona model: field 'personas.Luxury.deciles': 2 edges (a decile table has exactly 9)");
    let err = PersonaModel::from_json(
        &menu,
        r#"{"personas": {"Luxury": {"weights": {}, "deciles": [0, 1, 2, 3, 2, 5, 6, 7, 8]}}}"#,
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        err,
        "persona model: field 'personas.Luxury.deciles[4]': 2 is below the edge before it (3): edges must not decrease"
    );
}

/// A world where nobody consented to third-party data: the model has no weight on any
/// third-party signal, and a person's third-party signals do not change their scores.
#[test]
fn signals_without_consent_are_never_used() {
    let set = world();
    let menu = menu();
    let (mut people, positives) = training_half(set, set.now);
    people.truncate(1500);
    let ids: std::collections::HashSet<String> = people.iter().map(|p| p.person.clone()).collect();
    let positives: Vec<Positive> = positives.into_iter().filter(|p| ids.contains(&p.person)).collect();
    for p in &mut people {
        p.consent = p.consent.without(DataClass::ThirdParty);
    }
    assert!(people.iter().any(|p| p.signals.iter().any(|s| s.class == DataClass::ThirdParty)));
    let left_out: usize =
        people.iter().map(|p| p.signals.iter().filter(|s| !p.consent.has(s.class)).count()).sum();
    // One consented signal dated after the training's `now`.
    let future = people.iter().position(|p| p.consent.has(DataClass::Behavioral)).unwrap();
    people[future].signals.push(Signal {
        name: "viewed_later".into(),
        value: 1.0,
        class: DataClass::Behavioral,
        at: set.now + 3600,
    });
    let trained = train(&menu, &people, &positives, &quick(set.now), &mut |_| {}).unwrap();
    // What was left out, and what was counted as fresh, is in the report.
    let report = &trained.report;
    assert_eq!((report.signals_without_consent, report.signals_after_now), (left_out, 1));
    assert!(report.to_text().contains(&format!("{left_out} signal records without consent left out")));
    for (persona, w) in &trained.spec.personas {
        assert!(!w.weights.is_empty(), "{persona} learned something");
        for (signal, _) in &w.weights {
            assert!(!signal.starts_with("tp_"), "{persona} has a weight on unconsented signal {signal}");
        }
    }
    // Scoring ignores them too, even with a weight on one.
    let mut spec = trained.spec.clone();
    spec.personas[0].1.weights.push(("tp_beach".into(), 50.0));
    let model = PersonaModel::compile(&menu, &spec).unwrap();
    let mut p = people[0].to_profile(&menu, set.now);
    let before = model.score(&p, set.now).unwrap();
    p.add_signal(Signal { name: "tp_beach".into(), value: 1.0, class: DataClass::ThirdParty, at: set.now })
        .unwrap();
    assert_eq!(model.score(&p, set.now).unwrap(), before);
    p.set_consent(DataClass::ThirdParty, true);
    let id = menu.id(&spec.personas[0].0).unwrap();
    assert_eq!(model.score(&p, set.now).unwrap().get(id), 9, "with consent the same signal counts");
}

#[test]
fn auc_and_gains_match_a_hand_computation() {
    // Scores 0.9 0.8 0.7 0.6 0.5 0.4 0.3 0.2 0.1 0.0 with positives at 0.9, 0.7, 0.4:
    // of 3 × 7 = 21 (positive, negative) pairs the positive wins 7 + 6 + 4 = 17.
    let scores: Vec<f64> = (0..10).map(|i| f64::from(9 - i) / 10.0).collect();
    let labels = [true, false, true, false, false, true, false, false, false, false];
    assert!((auc(&scores, &labels).unwrap() - 17.0 / 21.0).abs() < 1e-12);
    // A tie between a positive and a negative counts half.
    assert!((auc(&[1.0, 1.0, 0.0], &[true, false, false]).unwrap() - 0.75).abs() < 1e-12);
    assert_eq!(auc(&[1.0, 2.0], &[true, true]), None);

    let report = PersonaReport::from_predictions("Tiny", &scores, &labels);
    assert!((report.auc.unwrap() - 17.0 / 21.0).abs() < 1e-12);
    // Ten people, one per decile; base rate 0.3. Top decile: 1 of 1 → lift 1/0.3.
    assert!((report.lift_top_decile.unwrap() - 1.0 / 0.3).abs() < 1e-12);
    // Top three: 2 of 3 → lift (2/3)/0.3.
    assert!((report.lift_top_three.unwrap() - (2.0 / 3.0) / 0.3).abs() < 1e-12);
    let rows = gains(&scores, &labels);
    assert_eq!(rows.iter().map(|r| r.decile).collect::<Vec<_>>(), [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
    assert_eq!(rows.iter().map(|r| r.positives).collect::<Vec<_>>(), [1, 0, 1, 0, 0, 1, 0, 0, 0, 0]);
    assert!((rows[2].cumulative_capture - 2.0 / 3.0).abs() < 1e-12);
    assert!((rows[9].cumulative_capture - 1.0).abs() < 1e-12);
}

#[test]
fn the_report_covers_every_persona_and_warns_when_positives_are_few() {
    let set = world();
    let menu = PersonaMenu::new(PERSONAS.iter().copied().chain(["Rare", "Never"])).unwrap();
    let (mut people, mut positives) = training_half(set, set.now);
    people.truncate(1200);
    let ids: std::collections::HashSet<String> = people.iter().map(|p| p.person.clone()).collect();
    positives.retain(|p| ids.contains(&p.person));
    // "Rare": 12 people who viewed spa recently; "Never": nobody.
    let rare: Vec<Positive> = people
        .iter()
        .filter(|p| p.signals.iter().any(|s| s.name == "viewed_spa"))
        .take(12)
        .map(|p| Positive { person: p.person.clone(), persona: "Rare".into() })
        .collect();
    positives.extend(rare);
    let trained = train(&menu, &people, &positives, &quick(set.now), &mut |_| {}).unwrap();
    let r = &trained.report;
    assert_eq!(r.personas.len(), 6);
    let rare = r.personas.iter().find(|p| p.persona == "Rare").unwrap();
    assert!(rare.modelled);
    assert_eq!(
        rare.warning.as_deref(),
        Some(
            "only 12 positives: at least 50 are needed for a model to trust; \
             collect more or merge this persona with a close one"
        )
    );
    let never = r.personas.iter().find(|p| p.persona == "Never").unwrap();
    assert!(!never.modelled);
    assert_eq!(never.warning.as_deref(), Some("not modelled: 0 positives, fewer than the 5 folds need"));
    assert!(trained.spec.personas.iter().all(|(n, _)| n != "Never"), "an unmodelled persona is left out");
    for p in r.personas.iter().filter(|p| PERSONAS.contains(&p.persona.as_str())) {
        assert!(p.auc.unwrap() > 0.6, "{}: {:?}", p.persona, p.auc);
        assert_eq!(p.gains.len(), 10);
        assert!(p.lift_top_decile.unwrap() > 1.5);
        assert!(!p.top_signals.is_empty());
    }
    let text = r.to_text();
    assert!(text.contains("Rare: only 12 positives"), "{text}");
    assert!(text.contains("Never: not modelled"), "{text}");
    let gains_csv = r.gains_csv();
    assert_eq!(gains_csv.lines().count(), 1 + 5 * 10, "{gains_csv}");
    assert!(r.summary_csv().lines().nth(1).unwrap().starts_with("Beach Lover,1200,"));
    let svg = r.gains_svg();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert_eq!(svg.matches("<polyline").count(), 5);
    assert!(svg.contains("Wellness &amp; Spa"));
    // Overlap: the diagonal is the high share (top 30 %); a persona overlaps itself fully.
    let o = &r.overlap;
    assert_eq!(o.personas.len(), 5);
    for a in 0..5 {
        assert!((o.both[a][a] - 0.3).abs() < 0.02, "{}: {}", o.personas[a], o.both[a][a]);
        assert!((o.jaccard[a][a] - 1.0).abs() < 1e-12);
    }
}

#[test]
fn a_near_duplicate_persona_is_flagged() {
    let set = world();
    let menu = PersonaMenu::new(["Beach Lover", "Sun Seeker"]).unwrap();
    let (mut people, positives) = training_half(set, set.now);
    people.truncate(1200);
    let ids: std::collections::HashSet<String> = people.iter().map(|p| p.person.clone()).collect();
    let beach: Vec<Positive> =
        positives.into_iter().filter(|p| p.persona == "Beach Lover" && ids.contains(&p.person)).collect();
    let mut all = beach.clone();
    all.extend(beach.iter().map(|p| Positive { person: p.person.clone(), persona: "Sun Seeker".into() }));
    let trained = train(&menu, &people, &all, &quick(set.now), &mut |_| {}).unwrap();
    let dups = trained.report.overlap.near_duplicates(report::NEAR_DUPLICATE);
    assert_eq!(dups.len(), 1, "{dups:?}");
    assert!(dups[0].2 > 0.95);
    assert!(
        trained.report.to_text().contains("Beach Lover ~ Sun Seeker: 100%  near-duplicates"),
        "{}",
        trained.report.to_text()
    );
}

/// Retraining on the same people with one more day of signals and behaviour: edges are
/// recalibrated on every retrain, so deciles stay tenths; blending with the previous
/// model (the default) keeps most people's score where it was, and far fewer move than
/// with a fresh fit.
#[test]
fn a_retrain_with_one_more_day_moves_few_people() {
    let set = world();
    let menu = menu();
    let yesterday = set.now - DAY;
    let first = |t: i64| {
        let (mut people, positives) = training_half(set, t);
        people.truncate(RETRAIN);
        let ids: std::collections::HashSet<String> = people.iter().map(|p| p.person.clone()).collect();
        let positives: Vec<Positive> = positives.into_iter().filter(|p| ids.contains(&p.person)).collect();
        (people, positives)
    };
    let config = |t: i64| TrainConfig { lambdas: vec![0.03, 0.3], ..TrainConfig::at(t) };
    let (old_people, old_positives) = first(yesterday);
    let old = train(&menu, &old_people, &old_positives, &config(yesterday), &mut |_| {}).unwrap();
    let (people, positives) = first(set.now);
    let fresh = train(&menu, &people, &positives, &config(set.now), &mut |_| {}).unwrap();
    let smoothed_config = TrainConfig { previous: Some(old.spec.clone()), ..config(set.now) };
    let smoothed = train(&menu, &people, &positives, &smoothed_config, &mut |_| {}).unwrap();
    let today = profiles(&people, set.now);
    let compile = |spec| PersonaModel::compile(&menu, spec).unwrap();
    let old = compile(&old.spec);
    let fresh_moves = movement(&menu, &old, &compile(&fresh.spec), &today, set.now).unwrap();
    let smoothed_moves = movement(&menu, &old, &compile(&smoothed.spec), &today, set.now).unwrap();
    let mut failures = Vec::new();
    for (f, s) in fresh_moves.iter().zip(&smoothed_moves) {
        println!(
            "{}: changed decile {:.1}% (fresh fit {:.1}%), by more than one {:.2}% (fresh {:.2}%)",
            s.persona,
            s.moved * 100.0,
            f.moved * 100.0,
            s.moved_far * 100.0,
            f.moved_far * 100.0
        );
        if s.moved >= 0.2 || s.moved_far >= 0.01 || s.moved >= f.moved {
            failures.push(s.persona.clone());
        }
    }
    assert!(failures.is_empty(), "too many people moved for {failures:?}");
}

/// A previous model of `personas`, each with bias −2 and one weight on `viewed_ski`.
fn previous_model(personas: &[&str]) -> PersonaModelSpec {
    PersonaModelSpec {
        half_life_days: 30.0,
        personas: personas
            .iter()
            .map(|&name| {
                let weights =
                    PersonaWeights { bias: -2.0, weights: vec![("viewed_ski".into(), 1.5)], deciles: None };
                (name.to_owned(), weights)
            })
            .collect(),
    }
}

#[test]
fn a_previous_model_naming_a_persona_not_on_the_menu_is_refused() {
    let set = world();
    let (mut people, positives) = training_half(set, set.now);
    people.truncate(50);
    // "Beach Lover" was renamed on the menu: its previous weights would be blended into
    // nothing and its scores left behind.
    let menu = PersonaMenu::new(["Sun & Sea", "City Breaks", "Ski Fan", "Wellness & Spa"]).unwrap();
    let config =
        TrainConfig { previous: Some(previous_model(&["Ski Fan", "Beach Lover"])), ..quick(set.now) };
    let err = train(&menu, &people, &positives, &config, &mut |_| {}).expect_err("a persona the menu lacks");
    let text = err.to_string();
    assert!(
        text.starts_with("train config: field 'previous.personas.\"Beach Lover\"': not on the persona menu"),
        "{text}"
    );
}

#[test]
fn a_persona_too_thin_to_retrain_keeps_its_previous_weights() {
    let set = world();
    let menu = menu();
    let (mut people, positives) = training_half(set, set.now);
    people.truncate(600);
    let ids: std::collections::HashSet<String> = people.iter().map(|p| p.person.clone()).collect();
    // Today only 2 people showed "Ski Fan" behaviour: fewer than the 5 folds need.
    let mut ski = 0;
    let positives: Vec<Positive> = positives
        .into_iter()
        .filter(|p| ids.contains(&p.person))
        .filter(|p| {
            p.persona != "Ski Fan" || {
                ski += 1;
                ski <= 2
            }
        })
        .collect();
    let previous = previous_model(&["Ski Fan", "Beach Lover"]);
    let config = TrainConfig { previous: Some(previous.clone()), ..quick(set.now) };
    let trained = train(&menu, &people, &positives, &config, &mut |_| {}).unwrap();

    let (_, kept) = trained.spec.personas.iter().find(|(n, _)| n == "Ski Fan").expect("still in the model");
    assert_eq!((kept.bias, &kept.weights), (previous.personas[0].1.bias, &previous.personas[0].1.weights));
    assert!(kept.deciles.is_some(), "edges recalibrated on today's population");
    let report = trained.report.personas.iter().find(|p| p.persona == "Ski Fan").unwrap();
    assert!(!report.modelled && report.carried_forward);
    assert_eq!(
        report.warning.as_deref(),
        Some(
            "not modelled: 2 positives, fewer than the 5 folds need; the previous model's weights are \
             carried forward unchanged (decile edges recalibrated), so its scores keep updating but no \
             longer learn"
        )
    );
    assert!(trained.report.to_text().contains("Ski Fan: not modelled: 2 positives"));
    // A persona the previous model did not cover is still left out.
    let wellness = trained.report.personas.iter().find(|p| p.persona == "Wellness & Spa").unwrap();
    assert!(wellness.modelled && !wellness.carried_forward);

    // The new model still scores Ski Fan: a fresh ski view moves the score.
    let model = PersonaModel::compile(&menu, &trained.spec).unwrap();
    let ski_fan = menu.id("Ski Fan").unwrap();
    assert!(model.personas().any(|p| p == ski_fan));
    let mut person = Profile::new(menu.len(), set.now - 30 * DAY);
    person.consent = DataClasses::ALL;
    model.apply(&mut person, set.now).unwrap();
    let before = person.scores.get(ski_fan);
    person
        .add_signal(Signal {
            name: "viewed_ski".into(),
            value: 3.0,
            class: DataClass::Behavioral,
            at: set.now,
        })
        .unwrap();
    model.apply(&mut person, set.now).unwrap();
    assert!(person.scores.get(ski_fan) > before, "{before} -> {}", person.scores.get(ski_fan));
}

#[test]
fn bad_training_files_are_refused_naming_the_line_and_field() {
    let menu = menu();
    let err =
        read_people("{\"person\":\"a\"}\n\n{\"person\":\"a\"}\n".as_bytes(), "people.jsonl").unwrap_err();
    assert_eq!(err.to_string(), "people.jsonl line 3: field 'person': duplicate id 'a'");
    let err = read_people(
        r#"{"person":"a","signals":[{"name":"","value":1,"class":"behavioral","at":0}]}"#.as_bytes(),
        "people.jsonl",
    )
    .unwrap_err();
    assert_eq!(err.to_string(), "people.jsonl line 1: field 'signals[0].name': signal name is empty");
    // A signal name no profile can carry: a weight learned for it would never apply.
    let long = "v".repeat(persona_engine::limits::MAX_SIGNAL_NAME + 1);
    let line =
        format!(r#"{{"person":"a","signals":[{{"name":"{long}","value":1,"class":"behavioral","at":0}}]}}"#);
    let err = read_people(line.as_bytes(), "people.jsonl").unwrap_err().to_string();
    assert!(
        err.starts_with("people.jsonl line 1: field 'signals[0].name': signal name 'vvvv")
            && err
                .ends_with("is 257 bytes, longer than MAX_SIGNAL_NAME (256 bytes): no profile can carry it"),
        "{err}"
    );
    let at_limit = line.replace(&long, &long[1..]);
    let _ = read_people(at_limit.as_bytes(), "people.jsonl").expect("a name at the limit is read");
    let err = read_people(r#"{"person":"a","consent":["psychic"]}"#.as_bytes(), "people.jsonl").unwrap_err();
    assert!(err.to_string().starts_with("people.jsonl line 1: unknown variant `psychic`"), "{err}");
    let err = read_positives(r#"{"person":"a","persona":"Beach Lovr"}"#.as_bytes(), "labels.jsonl", &menu)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "labels.jsonl line 1: field 'persona': 'Beach Lovr' is not on the persona menu"
    );
    let people = read_people(r#"{"person":"a"}"#.as_bytes(), "people.jsonl").unwrap();
    let positives = [Positive { person: "b".into(), persona: "Ski Fan".into() }];
    let err = train(&menu, &people, &positives, &TrainConfig::at(0), &mut |_| {}).unwrap_err();
    assert_eq!(
        err.to_string(),
        "training labels: field 'person': 'b' (a positive for 'Ski Fan') is not in the people file"
    );
    let mut config = TrainConfig::at(0);
    config.folds = 1;
    let err = train(&menu, &people, &[], &config, &mut |_| {}).unwrap_err();
    assert_eq!(err.to_string(), "train config: field 'folds': 1 is not in 2..=20");
    assert_eq!(read_menu(r#"["A", "B"]"#).unwrap().len(), 2);
    assert_eq!(read_menu(persona_engine::sample::CATALOG_JSON).unwrap().len(), 13);
    let err = read_menu(r#"{"names": []}"#).unwrap_err();
    assert_eq!(
        err.to_string(),
        "persona menu: field 'personas': expected an array of persona names or an object with a 'personas' array"
    );
}

#[test]
fn training_files_are_read_within_the_limits() {
    use persona_engine::limits::{MAX_LOG_LINE_BYTES, MAX_PERSONAS, MAX_SIGNALS, QUOTE_BYTES};
    let menu = menu();
    // A line longer than MAX_LOG_LINE_BYTES is refused by its length, naming the line.
    let long = format!("{{\"person\":\"a\"}}\n{{\"person\":\"{}\"}}\n", "x".repeat(MAX_LOG_LINE_BYTES));
    let err = read_people(long.as_bytes(), "people.jsonl").unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "people.jsonl line 2: the line is {} bytes long, more than MAX_LOG_LINE_BYTES ({MAX_LOG_LINE_BYTES} bytes)",
            MAX_LOG_LINE_BYTES + 13
        )
    );
    // One signal too many is refused while parsing, naming the field and the limit.
    let signal = r#"{"name":"s","value":1,"class":"behavioral","at":0}"#;
    let at_limit = format!(r#"{{"person":"a","signals":[{}]}}"#, vec![signal; MAX_SIGNALS].join(","));
    assert_eq!(read_people(at_limit.as_bytes(), "people.jsonl").unwrap()[0].signals.len(), MAX_SIGNALS);
    let over = format!(r#"{{"person":"a","signals":[{}]}}"#, vec![signal; MAX_SIGNALS + 1].join(","));
    let err = read_people(over.as_bytes(), "people.jsonl").unwrap_err().to_string();
    assert!(
        err.starts_with(&format!(
            "people.jsonl line 1: field 'signals': more than {MAX_SIGNALS} signals (MAX_SIGNALS) at line 1 column"
        )),
        "{err}"
    );
    // Ids and persona names are quoted short.
    let huge = "y".repeat(10_000);
    let quoted = format!("{}… (10000 bytes)", &huge[..QUOTE_BYTES]);
    let line = format!("{{\"person\":\"a\",\"persona\":\"{huge}\"}}");
    let err = read_positives(line.as_bytes(), "labels.jsonl", &menu).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("labels.jsonl line 1: field 'persona': '{quoted}' is not on the persona menu")
    );
    let twice = format!("{{\"person\":\"{huge}\"}}\n{{\"person\":\"{huge}\"}}");
    let err = read_people(twice.as_bytes(), "people.jsonl").unwrap_err();
    assert_eq!(err.to_string(), format!("people.jsonl line 2: field 'person': duplicate id '{quoted}'"));
    let people = read_people(r#"{"person":"a"}"#.as_bytes(), "people.jsonl").unwrap();
    let positives = [Positive { person: huge.clone(), persona: "Ski Fan".into() }];
    let err = train(&menu, &people, &positives, &TrainConfig::at(0), &mut |_| {}).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("training labels: field 'person': '{quoted}' (a positive for 'Ski Fan') is not in the people file")
    );
    // A menu of more than MAX_PERSONAS names is refused while parsing, in either form.
    let names: Vec<String> = (0..=MAX_PERSONAS).map(|i| format!("P{i}")).collect();
    let array = serde_json::to_string(&names).unwrap();
    let object = format!(r#"{{"placements": ["home"], "personas": {array}, "creatives": []}}"#);
    for doc in [&array, &object] {
        let err = read_menu(doc).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!(
                "persona menu: field 'personas': more than {MAX_PERSONAS} personas (MAX_PERSONAS) at line 1 column"
            )),
            "{err}"
        );
    }
    let err = read_menu(r#"{"personas": ["A"], "personas": ["B"]}"#).unwrap_err();
    assert_eq!(
        err.to_string(),
        "persona menu: field 'personas': expected an array of persona names or an object with a 'personas' array"
    );
}

#[test]
fn training_is_deterministic() {
    let set = world();
    let (mut people, positives) = training_half(set, set.now);
    people.truncate(600);
    let ids: std::collections::HashSet<String> = people.iter().map(|p| p.person.clone()).collect();
    let positives: Vec<Positive> = positives.into_iter().filter(|p| ids.contains(&p.person)).collect();
    let config = quick(set.now);
    let mut ticks = Vec::new();
    let a = train(&menu(), &people, &positives, &config, &mut |p| ticks.push((p.done, p.total))).unwrap();
    let b = train(&menu(), &people, &positives, &config, &mut |_| {}).unwrap();
    assert_eq!(a.spec, b.spec);
    assert_eq!(ticks.len(), 4 * (2 * 5 + 1));
    assert_eq!(ticks.last(), Some(&(44, 44)));
    let _unused: Option<PersonaWeights> = None;
}

#[test]
fn a_previous_model_weighting_a_signal_twice_is_refused() {
    let set = world();
    let (mut people, positives) = training_half(set, set.now);
    people.truncate(50);
    let menu = PersonaMenu::new(["Beach Lover", "City Breaks", "Ski Fan", "Wellness & Spa"]).unwrap();
    let mut previous = previous_model(&["Ski Fan"]);
    // Built in code: blending would have read the first weight and skipped the second.
    previous.personas[0].1.weights.push(("viewed_ski".into(), -4.0));
    let config = TrainConfig { previous: Some(previous), ..quick(set.now) };
    let err = train(&menu, &people, &positives, &config, &mut |_| {}).expect_err("a signal weighted twice");
    assert_eq!(
        err.to_string(),
        "train config: field 'previous.personas.Ski Fan.weights.viewed_ski': signal listed twice (give it one \
         weight)"
    );
}

/// Training writes weight / (the signal's root mean square): a signal whose values are
/// all tiny would get a weight beyond `MAX_MODEL_WEIGHT`, and a model that cannot be
/// loaded. Training refuses it, naming the signal and the persona; a previous model
/// with such a weight is refused as a model is.
#[test]
fn a_signal_too_small_to_weigh_within_the_bound_is_refused_by_training() {
    use persona_engine::limits::MAX_MODEL_WEIGHT;
    let now = 1_800_000_000;
    let menu = PersonaMenu::new(["Ski Fan", "Foodie"]).unwrap();
    let mut people = Vec::new();
    let mut positives = Vec::new();
    for i in 0..200 {
        let positive = i % 2 == 0;
        // Most positives and a few negatives show the signal, at a value of 1e-20.
        let shows = if positive { i % 10 != 0 } else { i % 10 == 1 };
        let signals = if shows {
            vec![Signal { name: "tiny".into(), value: 1e-20, class: DataClass::Behavioral, at: now }]
        } else {
            Vec::new()
        };
        let person = format!("p{i}");
        if positive {
            positives.push(Positive { person: person.clone(), persona: "Ski Fan".into() });
        }
        people.push(TrainingPerson { person, consent: DataClasses::ALL, signals });
    }
    let err = match train(&menu, &people, &positives, &quick(now), &mut |_| {}) {
        Ok(trained) => panic!("trained: {:?}", trained.spec.personas),
        Err(e) => e.to_string(),
    };
    assert_eq!(
        err,
        "training set: field 'signals.tiny': persona 'Ski Fan' would weigh it 2.070e20, beyond ±1e12 \
         (MAX_MODEL_WEIGHT): its values are too small (root mean square 7.071e-21); scale them up"
    );
    // Scaled up to ordinary values, the same data trains.
    for p in &mut people {
        for s in &mut p.signals {
            s.value = 1.0;
        }
    }
    let trained = train(&menu, &people, &positives, &quick(now), &mut |_| {}).unwrap();
    for (_, w) in &trained.spec.personas {
        assert!(
            w.bias.abs() <= MAX_MODEL_WEIGHT && w.weights.iter().all(|(_, x)| x.abs() <= MAX_MODEL_WEIGHT)
        );
    }

    let mut previous = previous_model(&["Ski Fan"]);
    previous.personas[0].1.weights[0].1 = 1e300;
    let config = TrainConfig { previous: Some(previous), ..quick(now) };
    let err = train(&menu, &people, &positives, &config, &mut |_| {}).unwrap_err().to_string();
    assert_eq!(
        err,
        "train config: field 'previous.personas.Ski Fan.weights.viewed_ski': 1e300 is beyond ±1e12 \
         (MAX_MODEL_WEIGHT): a score's sum of weighted signals could overflow"
    );
}

/// `TrainingPerson::signals` is a public field: a person built in code with more than
/// `MAX_SIGNALS` signals is refused, naming the person and the field, as a people file
/// with them is, never trained on in part.
#[test]
fn a_training_person_built_in_code_past_max_signals_is_refused() {
    let menu = menu();
    let mut people = read_people(r#"{"person":"a"}"#.as_bytes(), "people.jsonl").unwrap();
    let signal = Signal { name: "viewed_spa".into(), value: 1.0, class: DataClass::Behavioral, at: 0 };
    people[0].signals = vec![signal; persona_engine::limits::MAX_SIGNALS + 1];
    let err = train(&menu, &people, &[], &TrainConfig::at(0), &mut |_| {}).unwrap_err();
    assert_eq!(
        err.to_string(),
        "training set: field 'people['a'].signals': 1025 signals (at most 1024, MAX_SIGNALS)"
    );
}
