//! Evaluation v2 on the Open Bandit Dataset layout and beyond the first slot: a small
//! OBD-layout fixture generated here (not copied from the dataset) is read whole and its
//! IPS and SNIPS match a hand computation over every row; slates are evaluated per
//! position; the logistic reward model, bootstrap, warnings and reports behave.

use std::path::PathBuf;
use std::sync::Arc;

use persona_engine::eval::logistic::{feature_hash, LogisticRegression};
use persona_engine::eval::{
    read_obd_dir, svg_report, DecisionLogReader, EvalOptions, Evaluator, Report, RewardModel, Target,
};
use persona_engine::learn::Rng;
use persona_engine::{Catalog, Selector, SelectorConfig};

const ITEMS: usize = 7;

/// A fresh directory under the system temp dir.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pe-eval-obd-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// One generated row: (item, position, click, propensity).
type Row = (usize, usize, u8, f64);

/// Writes an OBD-layout directory: `item_context.csv` with OBD's unnamed index column
/// and mixed item features, `all.csv` with OBD's columns (unnamed index, timestamp,
/// item_id, position, click, propensity_score, hashed user features, affinities), and
/// optionally a `decision` column grouping rows into slates. Returns the rows.
fn write_fixture(dir: &std::path::Path, rows: usize, slates: bool, seed: u64) -> Vec<Row> {
    let mut items = String::from(",item_id,item_feature_0,item_feature_1\n");
    for i in 0..ITEMS {
        items.push_str(&format!("{i},{i},{},{}\n", -0.5 + i as f64 / 10.0, ["aed7", "31af"][i % 2]));
    }
    std::fs::write(dir.join("item_context.csv"), items).unwrap();
    let mut rng = Rng::new(seed);
    let mut csv =
        String::from(",timestamp,item_id,position,click,propensity_score,user_feature_0,user_feature_1");
    csv.push_str(",user-item_affinity_0,user-item_affinity_1");
    if slates {
        csv.push_str(",decision");
    }
    csv.push('\n');
    let mut out = Vec::new();
    let mut i = 0;
    let mut decision = 0;
    while i < rows {
        decision += 1;
        let len = if slates { 3 } else { 1 };
        let mut used = Vec::new();
        // The rows of a slate repeat its decision's columns (time, user features).
        let mut shared: Option<(usize, String)> = None;
        for k in 0..len {
            let mut item = rng.below(ITEMS);
            while used.contains(&item) {
                item = (item + 1) % ITEMS;
            }
            used.push(item);
            let position = if slates { k + 1 } else { 1 + rng.below(3) };
            let propensity = [0.1, 0.125, 0.2, 0.25][rng.below(4)];
            let user = format!("{:08x}", rng.below(4) * 7919);
            let (at, user) = shared.get_or_insert((i, user)).clone();
            let click = u8::from(rng.unit() < 0.2 + 0.05 * item as f64);
            csv.push_str(&format!(
                "{i},2019-11-24 00:{:02}:{:02}.315193+00:00,{item},{position},{click},{propensity},{user},81ce,0.0,0.5",
                (at / 60) % 60,
                at % 60
            ));
            if slates {
                csv.push_str(&format!(",{decision}"));
            }
            csv.push('\n');
            out.push((item, position, click, propensity));
            i += 1;
        }
    }
    std::fs::write(dir.join("all.csv"), csv).unwrap();
    out
}

fn evaluate(
    catalog: &Arc<Catalog>,
    records: &[(usize, persona_engine::eval::DecisionRecord)],
    target: Target,
    config: SelectorConfig,
    options: EvalOptions,
) -> Report {
    let selector = Selector::new(catalog.clone(), config).unwrap();
    let mut evaluator = Evaluator::with_target(&selector, target, options, "all.csv").unwrap();
    for (line, record) in records {
        evaluator.add(*line, record).unwrap();
    }
    evaluator.finish().unwrap()
}

#[test]
fn obd_layout_ips_and_snips_match_a_hand_computation_on_every_row() {
    let dir = temp_dir("rows");
    let rows = write_fixture(&dir, 90, false, 7);
    let obd = read_obd_dir(&dir).unwrap();
    // Nothing dropped: every row is a decision, and every impression is evaluated.
    assert_eq!((obd.import.rows, obd.import.decisions, obd.records.len()), (90, 90, 90));
    assert_eq!(obd.import.ignored_columns, ["(unnamed)", "user-item_affinity_0", "user-item_affinity_1"]);
    assert_eq!(obd.catalog.len(), ITEMS);
    assert_eq!(obd.catalog.attribute(persona_engine::CreativeId(3), "item_feature_1"), Some("31af"));
    let report = evaluate(
        &obd.catalog,
        &obd.records,
        Target::Uniform,
        SelectorConfig::default(),
        EvalOptions::default(),
    );
    assert_eq!((report.decisions, report.slots, report.slots_evaluated), (90, 90, 90));
    assert_eq!((report.without_reward, report.without_choice), (0, 0));
    // By hand: π = 1/7 for every item; w = π/p.
    let pi = 1.0 / ITEMS as f64;
    let ips: f64 = rows.iter().map(|r| pi / r.3 * f64::from(r.2)).sum::<f64>() / rows.len() as f64;
    let sum_w: f64 = rows.iter().map(|r| pi / r.3).sum();
    let snips = rows.iter().map(|r| pi / r.3 * f64::from(r.2)).sum::<f64>() / sum_w;
    let logged = rows.iter().map(|r| f64::from(r.2)).sum::<f64>() / rows.len() as f64;
    assert!((report.ips.value - ips).abs() < 1e-12, "{} vs {ips}", report.ips.value);
    assert!((report.snips.unwrap().value - snips).abs() < 1e-12);
    assert!((report.logged.value - logged).abs() < 1e-12);
    let ess = sum_w * sum_w / rows.iter().map(|r| (pi / r.3).powi(2)).sum::<f64>();
    assert!((report.effective_sample_size - ess).abs() < 1e-9);
    // Per position (the logged position is the context of a one-row decision).
    for p in &report.positions {
        let at: Vec<&Row> = rows.iter().filter(|r| r.1 as u32 == p.position).collect();
        let want = at.iter().map(|r| pi / r.3 * f64::from(r.2)).sum::<f64>() / at.len() as f64;
        assert_eq!(p.slots, at.len());
        assert!((p.ips.value - want).abs() < 1e-12);
    }
    assert_eq!(report.positions.iter().map(|p| p.slots).sum::<usize>(), 90);
    // The logged policy's own value needs no weights.
    let on = evaluate(
        &obd.catalog,
        &obd.records,
        Target::Logged,
        SelectorConfig::default(),
        EvalOptions::default(),
    );
    assert_eq!((on.ips.value, on.dr.value, on.dr_model), (on.logged.value, on.logged.value, "none"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn slates_are_evaluated_at_every_position() {
    let dir = temp_dir("slates");
    let rows = write_fixture(&dir, 60, true, 11);
    let obd = read_obd_dir(&dir).unwrap();
    assert_eq!((obd.import.rows, obd.import.decisions), (60, 20));
    assert!(obd.records.iter().all(|(_, r)| r.chosen.len() == 3));
    let report = evaluate(
        &obd.catalog,
        &obd.records,
        Target::Uniform,
        SelectorConfig::default(),
        EvalOptions::default(),
    );
    assert_eq!((report.decisions, report.slots_evaluated, report.positions.len()), (20, 60, 3));
    let pi = 1.0 / ITEMS as f64;
    let ips: f64 = rows.iter().map(|r| pi / r.3 * f64::from(r.2)).sum::<f64>() / 60.0;
    assert!((report.ips.value - ips).abs() < 1e-12);
    // A deterministic target (rules) gets weight only where its slate agrees with the log.
    let rules = evaluate(
        &obd.catalog,
        &obd.records,
        Target::Selector,
        SelectorConfig::default(),
        EvalOptions::default(),
    );
    let selector = Selector::new(obd.catalog.clone(), SelectorConfig::default()).unwrap();
    let mut slate = selector.new_selection(3);
    let placement = selector.placement("obd").unwrap();
    let mut want = 0.0;
    for (_, record) in &obd.records {
        let mut ctx = record.to_context();
        ctx.seed = Some(0);
        let (profile, _) = record.to_profile(selector.catalog().menu(), &selector.config().stages);
        selector.select(&profile, &ctx, placement, &mut slate).unwrap();
        for (k, c) in record.chosen.iter().enumerate() {
            if selector.catalog().creative_id(slate.picks()[k].creative) == c.creative {
                want += f64::from(u8::from(c.reward.unwrap().click)) / c.propensity;
            }
        }
    }
    assert!((rules.ips.value - want / 60.0).abs() < 1e-12, "{} vs {}", rules.ips.value, want / 60.0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_csv_given_to_the_json_reader_gets_a_hint() {
    let csv = ",timestamp,item_id,position,click,propensity_score\n0,1,2,1,0,0.0125\n";
    let err = DecisionLogReader::new(csv.as_bytes(), "all.csv").next().unwrap().unwrap_err().to_string();
    assert!(err.starts_with("all.csv line 1: this looks like CSV, not a JSON Lines decision log"), "{err}");
    assert!(err.contains("use --obd DIR"), "{err}");
}

#[test]
fn an_obd_directory_names_what_is_missing() {
    let dir = temp_dir("bad");
    let e = read_obd_dir(&dir).unwrap_err().to_string();
    assert!(e.contains("item_context.csv"), "{e}");
    std::fs::write(dir.join("item_context.csv"), "item_id,item_feature_0\n0,a\n2,b\n").unwrap();
    let e = read_obd_dir(&dir).unwrap_err().to_string();
    assert!(e.contains("field 'item_id': item 1 is missing (ids must be 0, 1, 2, ...)"), "{e}");
    std::fs::write(dir.join("item_context.csv"), "item_id,item_feature_0\n0,a\n1,b\n").unwrap();
    std::fs::write(dir.join("men.csv"), "").unwrap();
    std::fs::write(dir.join("women.csv"), "").unwrap();
    let e = read_obd_dir(&dir).unwrap_err().to_string();
    assert!(e.contains("no all.csv, and 2 other CSV files"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn logistic_regression_recovers_a_known_model() {
    // P(click) = σ(-2 + 1.5·a − 1·b) over two binary features.
    let (fa, fb) = (feature_hash("a"), feature_hash("b"));
    let truth = |a: bool, b: bool| {
        1.0 / (1.0 + (-(-2.0 + 1.5 * f64::from(u8::from(a)) - f64::from(u8::from(b)))).exp())
    };
    let mut rng = Rng::new(3);
    let mut feats: Vec<Vec<u64>> = Vec::new();
    let mut labels = Vec::new();
    for _ in 0..40_000 {
        let (a, b) = (rng.below(2) == 1, rng.below(2) == 1);
        let mut f = Vec::new();
        if a {
            f.push(fa);
        }
        if b {
            f.push(fb);
        }
        labels.push(f64::from(u8::from(rng.unit() < truth(a, b))));
        feats.push(f);
    }
    let examples: Vec<(&[u64], f64)> = feats.iter().map(Vec::as_slice).zip(labels.iter().copied()).collect();
    let mut model = LogisticRegression::new(12, 1e-4, 0.1);
    let constant = model.clone();
    model.fit(&examples, 3, 9);
    for (a, b) in [(false, false), (true, false), (false, true), (true, true)] {
        let f: Vec<u64> = [(a, fa), (b, fb)].iter().filter(|x| x.0).map(|x| x.1).collect();
        let (got, want) = (model.predict(&f), truth(a, b));
        assert!((got - want).abs() < 0.02, "a={a} b={b}: {got} vs {want}");
    }
    assert!(model.log_loss(&examples) < constant.log_loss(&examples) - 0.02);
}

#[test]
fn bootstrap_is_seeded_and_warnings_flag_low_overlap() {
    let dir = temp_dir("boot");
    write_fixture(&dir, 120, false, 5);
    let obd = read_obd_dir(&dir).unwrap();
    let run = |seed: u64, model: RewardModel| {
        let options = EvalOptions { seed, reward_model: model, bootstrap: 100, ..EvalOptions::default() };
        evaluate(&obd.catalog, &obd.records, Target::Uniform, SelectorConfig::default(), options)
    };
    let (a, b, c) = (run(1, RewardModel::Auto), run(1, RewardModel::Auto), run(2, RewardModel::Auto));
    assert_eq!(a.ips.bootstrap, b.ips.bootstrap);
    assert_ne!(a.ips.bootstrap, c.ips.bootstrap);
    let (low, high) = a.ips.bootstrap.unwrap();
    assert!(low < a.ips.value && a.ips.value < high && low >= 0.0 && high <= 1.0);
    assert_eq!(a.dr_model, "logistic");
    assert_eq!(run(1, RewardModel::Means).dr_model, "means");
    assert!(a.warnings.is_empty(), "{:?}", a.warnings);
    // Rules always shows the same item: weight 1/p on about a seventh of the rows, 0
    // elsewhere: an effective sample size near 120/7.
    let strict = EvalOptions { min_ess_share: 0.25, ..EvalOptions::default() };
    let config = SelectorConfig::with_policy(persona_engine::Policy::Rules);
    let rules = evaluate(&obd.catalog, &obd.records, Target::Selector, config, strict);
    assert!(rules.effective_sample_size < 0.25 * 120.0, "{}", rules.table());
    assert!(
        rules.warnings.iter().any(|w| w.contains("puts its mass where the logging policy rarely did")),
        "{}",
        rules.table()
    );
    assert!(rules.table().contains("warning: effective sample size"));
    // Machine-readable: every number, full precision; the SVG shows both policies.
    let json = a.to_json();
    assert_eq!(json["counts"]["impressions_evaluated"], 120);
    assert_eq!(json["ips"]["value"].as_f64(), Some(a.ips.value));
    assert_eq!(json["ips"]["bootstrap"][0].as_f64(), Some(low));
    assert_eq!(json["positions"].as_array().map(Vec::len), Some(a.positions.len()));
    let svg = svg_report(&[a, rules], "fixture <1>");
    assert!(
        svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\"") && svg.trim_end().ends_with("</svg>")
    );
    assert!(svg.contains(">uniform<") && svg.contains(">rules<") && svg.contains("fixture &lt;1&gt;"));
    assert_eq!(svg.matches("<rect").count(), 1 + 8);
    let _ = std::fs::remove_dir_all(&dir);
}
