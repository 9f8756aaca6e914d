//! Offline evaluation of a candidate policy on a decision log.
//!
//! ```sh
//! # A demo log: a simulated world on the sample catalog, uniform-random logging policy.
//! cargo run --release --example evaluate -- --generate 50000 --log decisions.jsonl --spec data/sample_catalog.json
//! # What would greedy (or thompson, rules, epsilon:0.1, softmax:0.2) have earned?
//! cargo run --release --example evaluate -- --log decisions.jsonl --spec data/sample_catalog.json --policy greedy
//! ```
//!
//! Options: `--config selector.json` (a `SelectorConfig`; `--policy` overrides its
//! policy), `--stats stats.json` (learned statistics for the candidate), `--reward
//! click|value`, `--draws N` (Thompson), `--csv out.csv` (also export the log in the
//! Open Bandit Dataset layout); with `--generate`: `--seed N`, and `--truth greedy,rules`
//! to print those policies' true values in the simulated world (the mean hidden click
//! probability of what each would have picked for the same people in the same moments),
//! which the estimates should cover.

use std::io::{BufWriter, Write};
use std::process::ExitCode;
use std::time::Instant;

use persona_engine::eval::{
    parse_policy, write_obd_csv, DecisionLogReader, DecisionLogWriter, DecisionRecord, Eligibility,
    EvalOptions, Evaluator, RewardKind,
};
use persona_engine::learn::Rng;
use persona_engine::{
    sample, Catalog, Channel, Context, CreativeId, DataClass, DataClasses, Device, FeedbackKind, PersonaId,
    PlacementId, Profile, Selector, SelectorConfig, StatsSnapshot, Symbol, Weather,
};

struct Args {
    log: String,
    spec: String,
    policy: String,
    config: Option<String>,
    stats: Option<String>,
    reward: RewardKind,
    draws: u32,
    csv: Option<String>,
    generate: Option<usize>,
    seed: u64,
    truth: Vec<String>,
}

fn usage() -> String {
    "usage: evaluate --log decisions.jsonl --spec catalog.json [--policy thompson|greedy|rules|epsilon:0.1|softmax:0.2]\n\
     \x20               [--config selector.json] [--stats stats.json] [--reward click|value] [--draws N] [--csv out.csv]\n\
     \x20      evaluate --generate N --log decisions.jsonl --spec catalog.json [--seed N] [--truth greedy,rules,...]"
        .into()
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        log: String::new(),
        spec: String::new(),
        policy: "greedy".into(),
        config: None,
        stats: None,
        reward: RewardKind::Click,
        draws: 64,
        csv: None,
        generate: None,
        seed: 1,
        truth: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value\n{}", usage()));
        match flag.as_str() {
            "--log" => args.log = value()?,
            "--spec" => args.spec = value()?,
            "--policy" => args.policy = value()?,
            "--config" => args.config = Some(value()?),
            "--stats" => args.stats = Some(value()?),
            "--csv" => args.csv = Some(value()?),
            "--reward" => {
                args.reward = match value()?.as_str() {
                    "click" => RewardKind::Click,
                    "value" => RewardKind::ConversionValue,
                    other => return Err(format!("--reward: '{other}' is not click or value")),
                }
            }
            "--draws" => args.draws = value()?.parse().map_err(|_| "--draws needs a number".to_owned())?,
            "--generate" => {
                args.generate = Some(value()?.parse().map_err(|_| "--generate needs a number".to_owned())?)
            }
            "--truth" => args.truth = value()?.split(',').map(|s| s.trim().to_owned()).collect(),
            "--seed" => args.seed = value()?.parse().map_err(|_| "--seed needs a number".to_owned())?,
            "-h" | "--help" => return Err(usage()),
            other => return Err(format!("unknown option '{other}'\n{}", usage())),
        }
    }
    if args.log.is_empty() || args.spec.is_empty() {
        return Err(usage());
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

fn evaluate(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let catalog = Catalog::from_file(&args.spec)?;
    let mut config = match &args.config {
        Some(path) => SelectorConfig::from_json(&read(path)?)?,
        None => SelectorConfig::default(),
    };
    config.learning.policy = parse_policy(&args.policy)?;
    let candidate = Selector::new(catalog, config)?;
    if let Some(path) = &args.stats {
        candidate.load_stats(&StatsSnapshot::from_json(&read(path)?)?)?;
    }
    let options = EvalOptions { reward: args.reward, thompson_draws: args.draws, ..EvalOptions::default() };
    let reader = DecisionLogReader::open(&args.log)?;
    let mut evaluator = Evaluator::new(&candidate, options, reader.name())?;
    let started = Instant::now();
    let mut records = Vec::new();
    let keep = args.csv.is_some();
    let records_in = reader.inspect(|item| {
        if let (true, Ok((_, record))) = (keep, item) {
            records.push(record.clone());
        }
    });
    evaluator.add_all(records_in, |n| {
        if n % 10_000 == 0 {
            eprintln!("  {n} decisions ({:.1} s)", started.elapsed().as_secs_f64());
        }
    })?;
    let report = evaluator.finish()?;
    print!("{}", report.table());
    eprintln!("evaluated in {:.1} s", started.elapsed().as_secs_f64());
    if let Some(path) = &args.csv {
        let out = BufWriter::new(create(path)?);
        let export = write_obd_csv(&records, candidate.catalog(), out, path)?;
        eprintln!(
            "wrote {} rows to {path} (Open Bandit Dataset layout; {} without a reward left out)",
            export.rows, export.without_reward
        );
    }
    Ok(())
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
    let mut rng = Rng::new(args.seed);
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
        let pick = eligible[rng.below(eligible.len())];
        let mut record = DecisionRecord::for_request(&logger, &person, &context, placement)
            .with_eligible(&logger, &eligible)
            .with_region(region)
            .with_person(&format!("{:016x}", Symbol::of(&format!("person-{i}")).0));
        record.chose(&logger, pick, 1.0 / eligible.len() as f64);
        record.policy = "uniform".into();
        let id = catalog.creative_id(pick).to_owned();
        record.observe(&id, FeedbackKind::Impression);
        if rng.unit() < click_prob(catalog, &person, pick) {
            record.observe(&id, FeedbackKind::Click);
            if rng.below(5) == 0 {
                record.observe(&id, FeedbackKind::Conversion { value: (20 + rng.below(200)) as f64 });
            }
        }
        writer.write(&record)?;
        if (i + 1) % 10_000 == 0 {
            eprintln!("  {} decisions ({:.1} s)", i + 1, started.elapsed().as_secs_f64());
        }
    }
    let lines = writer.lines();
    writer.into_inner()?.flush()?;
    eprintln!("wrote {lines} decisions to {} (uniform-random logging over the eligible creatives)", args.log);
    for (name, _, _, sum) in &truths {
        println!("true value of {name} in the simulated world: {:.5}", sum / lines as f64);
    }
    Ok(())
}
