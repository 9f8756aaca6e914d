//! Offline evaluation of candidate policies on a decision log (JSON Lines) or on an
//! Open Bandit Dataset directory (`all.csv` + `item_context.csv`).
//!
//! ```sh
//! # The Open Bandit Dataset layout: every row is evaluated (position and user features in context).
//! cargo run --release --example evaluate -- --obd DIR --policy uniform,logged,greedy --json out.json --report out.svg
//! # A demo log: a simulated world on the sample catalog, uniform-random logging policy.
//! cargo run --release --example evaluate -- --generate 50000 --log decisions.jsonl --spec data/sample_catalog.json
//! cargo run --release --example evaluate -- --log decisions.jsonl --spec data/sample_catalog.json --policy greedy,thompson
//! # A holdout demo: 10 % generic, 90 % personalized; then the lift.
//! cargo run --release --example evaluate -- --generate 50000 --holdout 0.1 --log arms.jsonl --spec data/sample_catalog.json
//! cargo run --release --example evaluate -- --log arms.jsonl --spec data/sample_catalog.json --lift
//! ```
//!
//! Policies (`--policy a,b,...`): `uniform`, `logged` (on-policy value), `rules`, `greedy`,
//! `epsilon:E`, `softmax:T`, `thompson`; `--policy-config FILE` adds one from a
//! `SelectorConfig` JSON. Options: `--bootstrap N` (default 200, 0 for none), `--seed N`,
//! `--dr-model auto|means|logistic`, `--folds K`, `--reward click|value`, `--draws N`,
//! `--stats stats.json`, `--json FILE`, `--report FILE.svg`, `--csv out.csv` (export the
//! log in the OBD layout), `--lift [--min-lift 0.05] [--power 0.8]`; with `--generate`:
//! `--seed N`, `--holdout SHARE`, `--truth greedy,rules`.

use std::io::{BufWriter, Write};
use std::process::ExitCode;
use std::time::Instant;

use persona_engine::eval::{
    lift, parse_policy, read_obd_dir, svg_report, write_obd_csv, DecisionLogReader, DecisionLogWriter,
    DecisionRecord, Eligibility, EvalOptions, Evaluator, RewardKind, RewardModel, Target,
};
use persona_engine::holdout::{Arm, Holdout, HoldoutConfig};
use persona_engine::learn::Rng;
use persona_engine::{
    sample, Catalog, Channel, Context, CreativeId, DataClass, DataClasses, Device, FeedbackKind, PersonaId,
    PlacementId, Profile, Selector, SelectorConfig, StatsSnapshot, Symbol, Weather,
};

struct Args {
    log: String,
    obd: Option<String>,
    spec: String,
    policies: Vec<String>,
    config: Option<String>,
    stats: Option<String>,
    options: EvalOptions,
    csv: Option<String>,
    json: Option<String>,
    report: Option<String>,
    lift: bool,
    min_lift: f64,
    power: f64,
    generate: Option<usize>,
    holdout: f64,
    truth: Vec<String>,
}

fn usage() -> String {
    "usage: evaluate (--log decisions.jsonl --spec catalog.json | --obd DIR) [--policy uniform,logged,rules,greedy,epsilon:0.1,softmax:0.2,thompson]\n\
     \x20               [--policy-config selector.json] [--stats stats.json] [--bootstrap N] [--seed N] [--dr-model auto|means|logistic]\n\
     \x20               [--folds K] [--reward click|value] [--draws N] [--json out.json] [--report out.svg] [--csv out.csv]\n\
     \x20               [--lift [--min-lift 0.05] [--power 0.8]]\n\
     \x20      evaluate --generate N --log decisions.jsonl --spec catalog.json [--seed N] [--holdout SHARE] [--truth greedy,rules,...]"
        .into()
}

fn number<T: std::str::FromStr>(flag: &str, text: String) -> Result<T, String> {
    text.parse().map_err(|_| format!("{flag}: '{text}' is not a number"))
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        log: String::new(),
        obd: None,
        spec: String::new(),
        policies: Vec::new(),
        config: None,
        stats: None,
        options: EvalOptions::default(),
        csv: None,
        json: None,
        report: None,
        lift: false,
        min_lift: 0.05,
        power: 0.8,
        generate: None,
        holdout: 0.0,
        truth: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    let mut given: Vec<String> = Vec::new();
    while let Some(flag) = it.next() {
        // A flag given twice would silently lose its first value (`--policy` adds up).
        if flag != "--policy" && given.contains(&flag) {
            return Err(format!("{flag} is given twice\n{}", usage()));
        }
        given.push(flag.clone());
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value\n{}", usage()));
        match flag.as_str() {
            "--log" => args.log = value()?,
            "--obd" => args.obd = Some(value()?),
            "--spec" => args.spec = value()?,
            "--policy" => args.policies.extend(value()?.split(',').map(|s| s.trim().to_owned())),
            "--config" | "--policy-config" => args.config = Some(value()?),
            "--stats" => args.stats = Some(value()?),
            "--csv" => args.csv = Some(value()?),
            "--json" => args.json = Some(value()?),
            "--report" => args.report = Some(value()?),
            "--lift" => args.lift = true,
            "--min-lift" => args.min_lift = number(&flag, value()?)?,
            "--power" => args.power = number(&flag, value()?)?,
            "--bootstrap" => args.options.bootstrap = number(&flag, value()?)?,
            "--folds" => args.options.folds = number(&flag, value()?)?,
            "--dr-model" => {
                args.options.reward_model = match value()?.as_str() {
                    "auto" => RewardModel::Auto,
                    "means" => RewardModel::Means,
                    "logistic" => RewardModel::Logistic,
                    other => return Err(format!("--dr-model: '{other}' is not auto, means or logistic")),
                }
            }
            "--reward" => {
                args.options.reward = match value()?.as_str() {
                    "click" => RewardKind::Click,
                    "value" => RewardKind::ConversionValue,
                    other => return Err(format!("--reward: '{other}' is not click or value")),
                }
            }
            "--draws" => args.options.thompson_draws = number(&flag, value()?)?,
            "--generate" => args.generate = Some(number(&flag, value()?)?),
            "--holdout" => args.holdout = number(&flag, value()?)?,
            "--truth" => args.truth = value()?.split(',').map(|s| s.trim().to_owned()).collect(),
            "--seed" => args.options.seed = number(&flag, value()?)?,
            "-h" | "--help" => return Err(usage()),
            other => return Err(format!("unknown option '{other}'\n{}", usage())),
        }
    }
    if args.obd.is_none() && (args.log.is_empty() || args.spec.is_empty()) {
        return Err(format!("give --obd DIR, or --log and --spec\n{}", usage()));
    }
    // A flag the chosen mode does not read is refused, never ignored.
    let refuse = |flags: &[&str], why: &str| match flags.iter().find(|f| given.iter().any(|g| g == *f)) {
        Some(f) => Err(format!("{f} {why}\n{}", usage())),
        None => Ok(()),
    };
    if args.generate.is_some() {
        refuse(
            &[
                "--obd",
                "--policy",
                "--config",
                "--policy-config",
                "--stats",
                "--csv",
                "--json",
                "--report",
                "--lift",
                "--min-lift",
                "--power",
                "--bootstrap",
                "--folds",
                "--dr-model",
                "--reward",
                "--draws",
            ],
            "does not apply with --generate (it writes a log; evaluate it in a second run)",
        )?;
    } else {
        refuse(&["--holdout", "--truth"], "applies only with --generate")?;
    }
    if args.obd.is_some() {
        refuse(
            &["--log", "--spec"],
            "does not apply with --obd (the directory holds the log and the catalog)",
        )?;
    }
    if !args.lift {
        refuse(&["--min-lift", "--power"], "applies only with --lift")?;
    }
    if args.policies.is_empty() && args.config.is_none() && !args.lift {
        args.policies.push("greedy".into());
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let result = if let Some(n) = args.generate { generate(&args, n) } else { evaluate(&args) };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The catalog, the decisions with their line numbers, the log's name.
type Loaded = (std::sync::Arc<Catalog>, Vec<(usize, DecisionRecord)>, String);

/// Reads the log (JSON Lines with `--spec`, or an OBD directory) and says what was read.
fn load(args: &Args) -> Result<Loaded, Box<dyn std::error::Error>> {
    if let Some(dir) = &args.obd {
        let obd = read_obd_dir(dir)?;
        let i = &obd.import;
        let ignored = if i.ignored_columns.len() > 6 {
            format!("{}, ... ({} columns)", i.ignored_columns[..6].join(", "), i.ignored_columns.len())
        } else {
            i.ignored_columns.join(", ")
        };
        println!(
            "read {}: {} rows, all used, as {} decisions; {} items from item_context.csv; ignored columns: {}",
            obd.log.display(),
            i.rows,
            i.decisions,
            obd.catalog.len(),
            if ignored.is_empty() { "none".to_owned() } else { ignored }
        );
        let name = obd.log.display().to_string();
        return Ok((obd.catalog, obd.records, name));
    }
    let catalog = std::sync::Arc::new(Catalog::from_file(&args.spec)?);
    let reader = DecisionLogReader::open(&args.log)?;
    let name = reader.name().to_owned();
    let records: Vec<(usize, DecisionRecord)> = reader.collect::<Result<_, _>>()?;
    let last = records.last().map_or(0, |(line, _)| *line);
    println!(
        "read {}: {} lines, {} decisions ({} blank lines), every line used",
        args.log,
        last,
        records.len(),
        last - records.len()
    );
    Ok((catalog, records, name))
}

fn evaluate(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let (catalog, records, name) = load(args)?;
    let mut json = serde_json::Map::new();
    json.insert("log".into(), serde_json::json!(name));
    if args.lift {
        let report =
            lift(records.iter().map(|(_, r)| r), args.options.confidence, args.min_lift, args.power)?;
        print!("{}", report.table());
        json.insert("lift".into(), report.to_json());
    }
    let base = match &args.config {
        Some(path) => SelectorConfig::from_json(&read(path)?)?,
        None => SelectorConfig::default(),
    };
    let mut targets: Vec<(Target, SelectorConfig)> = Vec::new();
    for name in &args.policies {
        match name.as_str() {
            "uniform" => targets.push((Target::Uniform, base)),
            "logged" => targets.push((Target::Logged, base)),
            other => {
                let mut config = base;
                config.learning.policy = parse_policy(other)?;
                targets.push((Target::Selector, config));
            }
        }
    }
    if args.config.is_some() && !args.policies.iter().any(|p| !matches!(p.as_str(), "uniform" | "logged")) {
        targets.push((Target::Selector, base));
    }
    let mut reports = Vec::new();
    for (target, config) in targets {
        let selector = Selector::new(catalog.clone(), config)?;
        if let Some(path) = &args.stats {
            eprintln!("{}", load_stats(&selector, path)?);
        }
        let started = Instant::now();
        let mut evaluator = Evaluator::with_target(&selector, target, args.options, &name)?;
        for (line, record) in &records {
            evaluator.add(*line, record)?;
        }
        let report = evaluator.finish()?;
        println!();
        print!("{}", report.table());
        eprintln!("{}: evaluated in {:.1} s", report.policy, started.elapsed().as_secs_f64());
        reports.push(report);
    }
    if let Some(path) = &args.json {
        json.insert("reports".into(), reports.iter().map(|r| r.to_json()).collect());
        let text = serde_json::to_string_pretty(&serde_json::Value::Object(json))?;
        std::fs::write(path, text + "\n")
            .map_err(|source| persona_engine::Error::Io { path: path.clone(), source })?;
        eprintln!("wrote {path}");
    }
    if let Some(path) = &args.report {
        let svg = svg_report(&reports, &format!("Off-policy estimates on {name}"));
        std::fs::write(path, svg)
            .map_err(|source| persona_engine::Error::Io { path: path.clone(), source })?;
        eprintln!("wrote {path}");
    }
    if let Some(path) = &args.csv {
        let out = BufWriter::new(create(path)?);
        let export = write_obd_csv(records.iter().map(|(_, r)| r), &catalog, out, path)?;
        eprintln!(
            "wrote {} rows to {path} (Open Bandit Dataset layout; {} without a reward left out; {} persona \
             scores left out as the menu has no column for them)",
            export.rows, export.without_reward, export.unknown_persona_scores
        );
    }
    Ok(())
}

/// Loads the statistics snapshot at `path` into `selector` and says what was applied
/// and what was left out; errors when nothing applied (another catalog's statistics
/// would be evaluated as if nothing had been learned).
pub fn load_stats(selector: &Selector, path: &str) -> Result<String, Box<dyn std::error::Error>> {
    let snapshot = StatsSnapshot::from_json(&read(path)?)?;
    let loaded = selector.load_stats(&snapshot)?;
    if loaded.creatives == 0 && !snapshot.creatives.is_empty() {
        return Err(format!(
            "{path}: none of the snapshot's {} creatives is in the catalog (snapshot of catalog version \
             '{}', catalog version '{}'): nothing would be applied",
            snapshot.creatives.len(),
            snapshot.catalog_version,
            selector.catalog().version()
        )
        .into());
    }
    Ok(format!(
        "{path}: creatives applied: {}; left out as this catalog lacks them: creatives {}, segment entries {}, \
         model weights {}",
        loaded.creatives,
        loaded.unknown_creatives.len(),
        loaded.unknown_segments,
        loaded.unknown_model_entries
    ))
}

fn read(path: &str) -> Result<String, persona_engine::Error> {
    std::fs::read_to_string(path)
        .map_err(|source| persona_engine::Error::Io { path: path.to_owned(), source })
}

fn create(path: &str) -> Result<std::fs::File, persona_engine::Error> {
    std::fs::File::create(path).map_err(|source| persona_engine::Error::Io { path: path.to_owned(), source })
}

/// The simulated world's hidden click probability: the fit between the creative's
/// personas and the person's true affinities, squared, plus a per-creative quality that
/// no persona tag reveals. The evaluator never sees it.
fn click_prob(catalog: &Catalog, profile: &Profile, creative: CreativeId) -> f64 {
    let (mut fit, mut total) = (0.0f64, 0.0f64);
    for (p, w) in catalog.tags(creative) {
        fit += f64::from(w) * f64::from(profile.scores.get(p)) / 9.0;
        total += f64::from(w);
    }
    let fit = if total > 0.0 { fit / total } else { 0.0 };
    let quality = (Symbol::of(catalog.creative_id(creative)).0 % 1000) as f64 / 1000.0;
    0.02 + 0.25 * fit * fit + 0.06 * quality
}

/// Writes `n` decisions from a simulated world: varied people on the catalog's persona
/// menu, in varied moments over a week, each shown a creative chosen uniformly at random
/// among the eligible ones (propensity 1/#eligible), with clicks (and, for one click in
/// five, a conversion) from the hidden model.
fn generate(args: &Args, n: usize) -> Result<(), Box<dyn std::error::Error>> {
    let catalog = Catalog::from_file(&args.spec)?;
    let logger = Selector::new(catalog, SelectorConfig::default())?;
    let catalog = logger.catalog();
    let mut eligibility = Eligibility::new(&logger)?;
    let mut rng = Rng::new(args.options.seed);
    let holdout =
        Holdout::new(&HoldoutConfig { share: args.holdout, salt: "demo".into(), ..Default::default() })?;
    let personalized = Selector::new(
        logger.catalog_arc().clone(),
        SelectorConfig::with_policy(persona_engine::Policy::Rules),
    )?;
    let generic = holdout.generic_selector(&personalized)?;
    let mut scratch = personalized.new_profile(0);
    let mut one = personalized.new_selection(1);
    let mut writer = DecisionLogWriter::new(BufWriter::new(create(&args.log)?), &args.log);
    let personas = catalog.menu().len();
    let regions = [("FR", 60), ("GB", 0), ("DE", 60), ("US", -300), ("JP", 540)];
    let devices = [Device::Desktop, Device::Mobile, Device::Tablet];
    let weather = [Weather::Clear, Weather::Cloudy, Weather::Rain, Weather::Snow, Weather::Unknown];
    let mut eligible = Vec::new();
    let mut truths = Vec::new();
    for name in &args.truth {
        let policy = parse_policy(name)?;
        let selector = Selector::new(logger.catalog_arc().clone(), SelectorConfig::with_policy(policy))?;
        let selection = selector.new_selection(1);
        truths.push((name.clone(), selector, selection, 0.0f64));
    }
    let started = Instant::now();
    for i in 0..n {
        let mut person = Profile::new(personas, sample::NOW - rng.below(400) as i64 * 86_400);
        person.visits = 1 + rng.below(60) as u32;
        person.consent = match rng.below(5) {
            0 => DataClasses::NONE,
            1 => DataClasses::only(DataClass::Behavioral),
            _ => DataClasses::ALL,
        };
        let sources = DataClasses::only(DataClass::Behavioral);
        for _ in 0..1 + rng.below(3) {
            person.scores.set(PersonaId(rng.below(personas) as u16), 7 + rng.below(3) as u8, sources)?;
        }
        for _ in 0..rng.below(5) {
            person.scores.set(PersonaId(rng.below(personas) as u16), rng.below(7) as u8, sources)?;
        }
        let (region, offset) = regions[rng.below(regions.len())];
        let context = Context::at(sample::NOW - 3 * 86_400 + rng.below(7 * 24) as i64 * 3_600)
            .with_utc_offset(offset)
            .with_device(devices[rng.below(devices.len())])
            .with_channel(if rng.below(3) == 0 { Channel::App } else { Channel::Web })
            .with_weather(weather[rng.below(weather.len())])
            .with_region(region)
            .with_seed(rng.next_u64());
        let placement = PlacementId(rng.below(catalog.placement_count()) as u16);
        eligibility.list(&person, &context, placement, &mut eligible)?;
        if eligible.is_empty() {
            continue;
        }
        for (_, selector, selection, sum) in truths.iter_mut() {
            selector.select(&person, &context, placement, selection)?;
            if let Some(p) = selection.picks().first() {
                *sum += click_prob(catalog, &person, p.creative);
            }
        }
        let key = format!("{:016x}", Symbol::of(&format!("person-{i}")).0);
        let mut record = DecisionRecord::for_request(&logger, &person, &context, placement)
            .with_eligible(&logger, &eligible)
            .with_region(region)
            .with_person(&key);
        let pick = if args.holdout > 0.0 {
            // Holdout demo: rules with persona scores for the personalized arm, without
            // them for the held-out one (both deterministic: propensity 1).
            let arm = holdout.select(
                &key,
                &personalized,
                &generic,
                &person,
                &mut scratch,
                &context,
                placement,
                &mut one,
            )?;
            record.arm = Some(arm);
            record.policy = if arm == Arm::Holdout { "rules (generic)".into() } else { "rules".into() };
            let Some(p) = one.picks().first() else { continue };
            record.chose(&logger, p.creative, 1.0)?;
            p.creative
        } else {
            let pick = eligible[rng.below(eligible.len())];
            record.chose(&logger, pick, 1.0 / eligible.len() as f64)?;
            record.policy = "uniform".into();
            pick
        };
        let id = catalog.creative_id(pick).to_owned();
        record.observe(&id, FeedbackKind::Impression)?;
        if rng.unit() < click_prob(catalog, &person, pick) {
            record.observe(&id, FeedbackKind::Click)?;
            if rng.below(5) == 0 {
                record.observe(&id, FeedbackKind::Conversion { value: (20 + rng.below(200)) as f64 })?;
            }
        }
        writer.write(&record)?;
        if (i + 1) % 10_000 == 0 {
            eprintln!("  {} decisions ({:.1} s)", i + 1, started.elapsed().as_secs_f64());
        }
    }
    let lines = writer.lines();
    writer.into_inner()?.flush()?;
    let how = if args.holdout > 0.0 {
        "rules with persona scores, or without them for the held-out share; arms logged"
    } else {
        "uniform-random logging over the eligible creatives"
    };
    eprintln!("wrote {lines} decisions to {} ({how})", args.log);
    for (name, _, _, sum) in &truths {
        println!("true value of {name} in the simulated world: {:.5}", sum / lines as f64);
    }
    Ok(())
}
