//! The persona model: logistic scores from consented, decaying signals, explainable.

mod common;

use common::*;
use persona_engine::limits::MAX_SIGNALS;
use persona_engine::model::to_score;
use persona_engine::{DataClass, DataClasses, PersonaMenu, PersonaModel, Profile, Signal};

fn menu() -> PersonaMenu {
    PersonaMenu::new(["Luxury", "Family", "Budget"]).unwrap()
}

const MODEL: &str = r#"{
  "half_life_days": 10,
  "personas": {
    "Luxury": {"bias": -2.0, "weights": {"viewed_5star": 1.0, "bought_first_class": 2.0, "income_band_high": 1.5}},
    "Family": {"bias": -1.0, "weights": {"viewed_kids_club": 1.2}}
  }
}"#;

fn signal(name: &str, value: f32, class: DataClass, at: i64) -> Signal {
    Signal { name: name.into(), value, class, at }
}

fn profile(consent: DataClasses) -> Profile {
    let mut p = Profile::new(3, NOW - 100 * DAY);
    p.consent = consent;
    p.add_signal(signal("viewed_5star", 2.0, DataClass::Behavioral, NOW)).unwrap();
    p.add_signal(signal("bought_first_class", 1.0, DataClass::Purchase, NOW)).unwrap();
    p.add_signal(signal("income_band_high", 1.0, DataClass::ThirdParty, NOW)).unwrap();
    p
}

#[test]
fn scores_are_deciles_of_the_logistic_output() {
    assert_eq!(to_score(-10.0), 0);
    assert_eq!(to_score(0.0), 5);
    assert_eq!(to_score(10.0), 9);
    assert_eq!(to_score(f64::INFINITY), 9);
    assert_eq!(to_score(f64::NAN), 0);
}

#[test]
fn consented_signals_score_and_record_their_sources() {
    let menu = menu();
    let model = PersonaModel::from_json(&menu, MODEL).unwrap();
    let lux = menu.id("Luxury").unwrap();
    let all = model.score(&profile(DataClasses::ALL), NOW).unwrap();
    // logit = -2 + 2·1 + 1·2 + 1·1.5 = 3.5 → sigmoid 0.97 → 9
    assert_eq!(all.get(lux), 9);
    assert_eq!(
        all.sources(lux),
        DataClasses::only(DataClass::Behavioral).with(DataClass::Purchase).with(DataClass::ThirdParty)
    );
    // Only behavioural consent: logit = -2 + 2 = 0 → 5, built on behavioural data only.
    let some = model.score(&profile(DataClasses::only(DataClass::Behavioral)), NOW).unwrap();
    assert_eq!(some.get(lux), 5);
    assert_eq!(some.sources(lux), DataClasses::only(DataClass::Behavioral));
    // No consent: only the bias: sigmoid(-2) = 0.12 → 1, relying on no data.
    let none = model.score(&profile(DataClasses::NONE), NOW).unwrap();
    assert_eq!(none.get(lux), 1);
    assert_eq!(none.sources(lux), DataClasses::NONE);
}

#[test]
fn signals_decay_with_the_half_life() {
    let menu = menu();
    let model = PersonaModel::from_json(&menu, MODEL).unwrap();
    assert!((model.decay(NOW, NOW) - 1.0).abs() < 1e-12);
    assert!((model.decay(NOW - 10 * DAY, NOW) - 0.5).abs() < 1e-12);
    assert!((model.decay(NOW - 20 * DAY, NOW) - 0.25).abs() < 1e-12);
    assert_eq!(model.decay(NOW + DAY, NOW), 1.0, "a future signal counts fully");
    let mut p = Profile::new(3, NOW);
    p.consent = DataClasses::ALL;
    p.add_signal(signal("bought_first_class", 2.0, DataClass::Purchase, NOW - 10 * DAY)).unwrap();
    let lux = menu.id("Luxury").unwrap();
    // Fresh: -2 + 4 = 2 → 8. Ten days old: -2 + 2 = 0 → 5. Sixty days: ≈ -1.97 → 1.
    assert_eq!(model.score(&p, NOW - 10 * DAY).unwrap().get(lux), 8);
    assert_eq!(model.score(&p, NOW).unwrap().get(lux), 5);
    assert_eq!(model.score(&p, NOW + 50 * DAY).unwrap().get(lux), 1);
}

#[test]
fn the_model_explains_which_signals_moved_a_score() {
    let menu = menu();
    let model = PersonaModel::from_json(&menu, MODEL).unwrap();
    let mut p = profile(DataClasses::ALL.without(DataClass::ThirdParty));
    p.add_signal(signal("viewed_5star", 1.0, DataClass::Behavioral, NOW)).unwrap();
    let why = model.explain(&p, menu.id("Luxury").unwrap(), NOW).unwrap();
    let names: Vec<(&str, f64)> = why.iter().map(|c| (c.signal.as_str(), c.contribution)).collect();
    // viewed_5star: 2 + 1 observations → 3.0; bought_first_class: 2.0; third party absent.
    assert_eq!(names, [("viewed_5star", 3.0), ("bought_first_class", 2.0)]);
}

#[test]
fn apply_keeps_imported_scores_for_unmodelled_personas() {
    let menu = menu();
    let model = PersonaModel::from_json(&menu, MODEL).unwrap();
    let mut p = profile(DataClasses::ALL);
    p.set_score(&menu, "Budget", 8, DataClasses::only(DataClass::Purchase)).unwrap();
    model.apply(&mut p, NOW).unwrap();
    assert_eq!(p.scores.get(menu.id("Luxury").unwrap()), 9);
    assert_eq!(p.scores.get(menu.id("Budget").unwrap()), 8);
}

#[test]
fn model_errors_name_the_field() {
    let menu = menu();
    let err = PersonaModel::from_json(&menu, r#"{"personas":{"Lux":{"weights":{}}}}"#).unwrap_err();
    assert_eq!(
        err.to_string(),
        "persona model: field 'personas.Lux': unknown persona 'Lux' (did you mean 'Luxury'?)"
    );
    let err = PersonaModel::from_json(&menu, r#"{"half_life_days":0,"personas":{}}"#).unwrap_err();
    assert_eq!(err.to_string(), "persona model: field 'half_life_days': 0 must be finite and > 0");
    let err =
        PersonaModel::from_json(&menu, r#"{"personas":{"Luxury":{"weights":{"x":1e400}}}}"#).unwrap_err();
    assert!(err.to_string().starts_with("persona model: invalid JSON"), "{err}");
    let spec = persona_engine::PersonaModelSpec {
        half_life_days: 1.0,
        personas: vec![(
            "Luxury".into(),
            persona_engine::model::PersonaWeights {
                bias: 0.0,
                weights: vec![("x".into(), f64::NAN)],
                deciles: None,
            },
        )],
    };
    let err = PersonaModel::compile(&menu, &spec).unwrap_err();
    assert_eq!(err.to_string(), "persona model: field 'personas.Luxury.weights.x': NaN is not finite");
}

#[test]
fn bad_signals_are_rejected() {
    let mut p = Profile::new(3, NOW);
    let err = p.add_signal(signal("x", f32::NAN, DataClass::Behavioral, NOW)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "profile: field 'signals[0].value': signal 'x' has value NaN (must be finite)"
    );
    let err = p.add_signal(signal("", 1.0, DataClass::Behavioral, NOW)).unwrap_err();
    assert_eq!(err.to_string(), "profile: field 'signals[0].name': signal name is empty");
}

#[test]
fn a_profile_started_empty_and_scored_by_the_model_is_read_by_a_selector() {
    // The common test menu has more personas than the model covers: the scores the
    // model writes are held for the whole menu, so select reads them (a profile sized
    // for fewer personas would be refused as made for another menu).
    let sel = selector(vec![tagged("lux", "Luxury"), tagged("fam", "Family")]);
    let menu = sel.catalog().menu();
    let model = PersonaModel::from_json(menu, MODEL).unwrap();
    let mut p =
        Profile { first_seen: NOW - 100 * DAY, visits: 5, consent: DataClasses::ALL, ..Profile::default() };
    p.add_signal(signal("bought_first_class", 3.0, DataClass::Purchase, NOW)).unwrap();
    model.apply(&mut p, NOW).unwrap();
    assert_eq!(p.scores.len(), menu.len());
    assert!(p.scores.get(menu.id("Luxury").unwrap()) > 0);
    let hero = sel.placement("hero").unwrap();
    let mut s = sel.new_selection(1);
    assert_eq!(sel.select(&p, &ctx(), hero, &mut s).unwrap(), 1);
    assert_eq!(model.score(&Profile::default(), NOW).unwrap().len(), menu.len());
}

#[test]
fn a_model_refuses_a_profile_made_for_another_menu() {
    // The model's menu is `menu()`; the profile was made for the same names reordered.
    let model = PersonaModel::from_json(&menu(), MODEL).unwrap();
    let reordered = PersonaMenu::new(["Family", "Luxury", "Budget"]).unwrap();
    let mut p = Profile::for_menu(&reordered, NOW - 100 * DAY);
    p.consent = DataClasses::ALL;
    p.add_signal(signal("bought_first_class", 3.0, DataClass::Purchase, NOW)).unwrap();
    let before = p.clone();
    let err = model.apply(&mut p, NOW).unwrap_err().to_string();
    assert!(
        err.starts_with("persona model: field 'menu': the profile was made for another persona menu"),
        "{err}"
    );
    assert_eq!(p, before, "nothing changes");
    // A profile of no menu in particular takes the model's.
    let mut q = Profile::new(3, NOW - 100 * DAY);
    model.apply(&mut q, NOW).unwrap();
    assert_eq!(q.menu, Some(menu().key()));
}

#[test]
fn a_model_built_in_code_refuses_a_signal_weighted_twice_for_one_persona() {
    // JSON refuses the repeated key; built in code, both weights would have counted.
    let weights = |list: Vec<(&str, f64)>| persona_engine::model::PersonaWeights {
        bias: 0.0,
        weights: list.into_iter().map(|(n, w)| (n.to_owned(), w)).collect(),
        deciles: None,
    };
    let spec = persona_engine::PersonaModelSpec {
        half_life_days: 10.0,
        personas: vec![("Luxury".into(), weights(vec![("viewed_5star", 1.0), ("viewed_5star", 2.0)]))],
    };
    let err = PersonaModel::compile(&menu(), &spec).unwrap_err();
    assert_eq!(
        err.to_string(),
        "persona model: field 'personas.Luxury.weights.viewed_5star': signal listed twice (give it one weight)"
    );
    // One signal weighted for two personas is fine.
    let spec = persona_engine::PersonaModelSpec {
        half_life_days: 10.0,
        personas: vec![
            ("Luxury".into(), weights(vec![("viewed_5star", 1.0)])),
            ("Family".into(), weights(vec![("viewed_5star", -1.0)])),
        ],
    };
    PersonaModel::compile(&menu(), &spec).expect("compiles");
}

#[test]
fn a_model_weight_on_a_signal_name_no_profile_can_carry_is_refused() {
    let limit = persona_engine::limits::MAX_SIGNAL_NAME;
    let spec = |name: &str| {
        format!(r#"{{"half_life_days":10,"personas":{{"Luxury":{{"bias":0,"weights":{{"{name}":1.0}}}}}}}}"#)
    };
    let long = "s".repeat(limit + 1);
    let err = PersonaModel::from_json(&menu(), &spec(&long)).unwrap_err().to_string();
    assert!(
        err.starts_with("persona model: field 'personas.Luxury.weights': signal name 'ssss")
            && err.ends_with(&format!(
                "is {} bytes, longer than MAX_SIGNAL_NAME ({limit} bytes): no profile can carry it",
                limit + 1
            )),
        "{err}"
    );
    PersonaModel::from_json(&menu(), &spec(&long[1..])).expect("a name at the limit compiles");
}

/// A weight or bias so large that a sum of them overflows would give a score of +inf or
/// NaN (inf − inf), silently scoring 0 or 9: refused, from JSON and from code, naming
/// the persona and the field. At the bound, a profile of every signal at its largest
/// value still sums to a finite logit.
#[test]
fn a_model_weight_too_large_to_sum_is_refused() {
    use persona_engine::limits::MAX_MODEL_WEIGHT;
    let json = |bias: &str, a: &str, b: &str| {
        format!(
            r#"{{"half_life_days":10,"personas":{{"Luxury":{{"bias":{bias},"weights":{{"a":{a},"b":{b}}}}}}}}}"#
        )
    };
    // Each weight is finite, their sum is not: 1e300 × 1e30 overflows, one way for
    // each signal, and +inf − inf is NaN.
    let mut huge = Profile::new(3, NOW - 100 * DAY);
    huge.consent = DataClasses::ALL;
    huge.add_signal(signal("a", 1e30, DataClass::Behavioral, NOW)).unwrap();
    huge.add_signal(signal("b", 1e30, DataClass::Behavioral, NOW)).unwrap();
    let err = match PersonaModel::from_json(&menu(), &json("0", "1e300", "-1e300")) {
        Ok(model) => panic!("accepted; its logits for two signals: {:?}", model.logits(&huge, NOW).unwrap()),
        Err(e) => e.to_string(),
    };
    assert_eq!(
        err,
        "persona model: field 'personas.Luxury.weights.a': 1e300 is beyond ±1e12 (MAX_MODEL_WEIGHT): \
         a score's sum of weighted signals could overflow"
    );
    let err = PersonaModel::from_json(&menu(), &json("-1.7e308", "1", "1")).unwrap_err().to_string();
    assert_eq!(
        err,
        "persona model: field 'personas.Luxury.bias': -1.7e308 is beyond ±1e12 (MAX_MODEL_WEIGHT): \
         a score's sum of weighted signals could overflow"
    );
    let spec = persona_engine::PersonaModelSpec {
        half_life_days: 10.0,
        personas: vec![(
            "Family".into(),
            persona_engine::model::PersonaWeights {
                bias: 0.0,
                weights: vec![("a".into(), 1.0), ("b".into(), -2e12)],
                deciles: None,
            },
        )],
    };
    let err = PersonaModel::compile(&menu(), &spec).unwrap_err().to_string();
    assert_eq!(
        err,
        "persona model: field 'personas.Family.weights.b': -2e12 is beyond ±1e12 (MAX_MODEL_WEIGHT): \
         a score's sum of weighted signals could overflow"
    );

    // At the bound: every signal a profile may hold, at the largest value, sums finite.
    let bound = format!("{MAX_MODEL_WEIGHT:e}");
    let model = PersonaModel::from_json(&menu(), &json(&bound, &bound, &format!("-{bound}"))).unwrap();
    let mut p = Profile::new(3, NOW - 100 * DAY);
    p.consent = DataClasses::ALL;
    for i in 0..MAX_SIGNALS {
        let name = if i % 2 == 0 { "a" } else { "b" };
        let value = if i < MAX_SIGNALS / 2 { f32::MAX } else { -f32::MAX };
        p.add_signal(signal(name, value, DataClass::Behavioral, NOW)).unwrap();
    }
    let logits = model.logits(&p, NOW).unwrap();
    assert!(logits.iter().all(|(z, _)| z.is_finite()), "{logits:?}");
    let all_a: f64 = f64::from(f32::MAX) * MAX_MODEL_WEIGHT * MAX_SIGNALS as f64;
    assert!(all_a.is_finite() && (all_a + MAX_MODEL_WEIGHT).is_finite());
}

/// `Profile::signals` is a public field, so a profile built in code can hold more than
/// `MAX_SIGNALS` signals or a signal no document could carry: the persona model refuses
/// it, naming the field, rather than score it (or part of it).
#[test]
fn a_profile_built_in_code_past_max_signals_is_refused_by_the_model() {
    let menu = menu();
    let model = PersonaModel::from_json(&menu, MODEL).unwrap();
    let mut p = profile(DataClasses::ALL);
    p.signals = vec![signal("viewed_5star", 1.0, DataClass::Behavioral, NOW); MAX_SIGNALS + 1];
    let before = p.clone();
    let err = model.apply(&mut p, NOW).unwrap_err().to_string();
    assert_eq!(err, "profile: field 'signals': 1025 signals (at most 1024, MAX_SIGNALS)");
    assert_eq!(p, before, "nothing changes");
    let want = "profile: field 'signals': 1025 signals (at most 1024, MAX_SIGNALS)";
    assert_eq!(model.logits(&p, NOW).unwrap_err().to_string(), want);
    assert_eq!(model.score(&p, NOW).unwrap_err().to_string(), want);
    assert_eq!(model.explain(&p, menu.id("Luxury").unwrap(), NOW).unwrap_err().to_string(), want);
    assert_eq!(p.to_json(&menu).unwrap_err().to_string(), want, "a saved profile always loads");

    p.signals.truncate(1);
    p.signals[0].name = "x".repeat(257);
    let err = model.apply(&mut p, NOW).unwrap_err().to_string();
    assert!(
        err.starts_with("profile: field 'signals[0].name': '")
            && err.ends_with("(257 bytes)' is longer than 256 bytes (MAX_SIGNAL_NAME)"),
        "{err}"
    );
}
