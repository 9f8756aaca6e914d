//! Build your persona menu: train one model per persona from samples of real behaviour,
//! and write the model, a report (text, CSV, an SVG gains chart) and the persona overlap.
//!
//! ```sh
//! # A synthetic training set with a known ground truth, for the sample catalog's menu:
//! cargo run --release --example train_personas -- --generate data/train
//! # Train on it (or on your own people.jsonl / labels.jsonl):
//! cargo run --release --example train_personas -- --people data/train/people.jsonl \
//!     --labels data/train/labels.jsonl --menu data/sample_catalog.json \
//!     --out model.json --report report/
//! ```
//!
//! Options: `--now T` (Unix seconds signals are decayed to; default the latest signal),
//! `--half-life-days D` (30), `--folds K` (5), `--seed S` (0), `--previous model.json`
//! (the model this one replaces: blend with it and print how many people changed
//! decile), `--smoothing A` (0.5, with `--previous`); with `--generate`: `--count N`
//! (20000 people), `--seed S`. See docs/persona-modeling.md.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use persona_engine::model::report::movement;
use persona_engine::model::synthetic::{generate, SyntheticConfig};
use persona_engine::model::train::{
    read_menu, read_menu_file, read_people, read_positives, train, Progress, TrainConfig,
};
use persona_engine::{sample, PersonaMenu, PersonaModel, PersonaModelSpec};

#[derive(Default)]
struct Args {
    people: Option<String>,
    labels: Option<String>,
    menu: Option<String>,
    out: Option<String>,
    report: Option<String>,
    now: Option<i64>,
    half_life_days: Option<f64>,
    folds: Option<usize>,
    seed: u64,
    previous: Option<String>,
    smoothing: Option<f64>,
    generate: Option<String>,
    count: usize,
}

fn parse() -> Result<Args, String> {
    let mut args = Args { count: 20_000, ..Args::default() };
    let mut it = std::env::args().skip(1);
    let mut given: Vec<String> = Vec::new();
    while let Some(flag) = it.next() {
        if given.contains(&flag) {
            return Err(format!("{flag} is given twice"));
        }
        given.push(flag.clone());
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        let number = |v: String, what: &str| v.parse().map_err(|_| format!("{what}: '{v}' is not a number"));
        match flag.as_str() {
            "--people" => args.people = Some(value()?),
            "--labels" => args.labels = Some(value()?),
            "--menu" => args.menu = Some(value()?),
            "--out" => args.out = Some(value()?),
            "--report" => args.report = Some(value()?),
            "--now" => args.now = Some(value()?.parse().map_err(|_| "--now: not a Unix time in seconds")?),
            "--half-life-days" => args.half_life_days = Some(number(value()?, "--half-life-days")?),
            "--folds" => args.folds = Some(value()?.parse().map_err(|_| "--folds: not a whole number")?),
            "--seed" => args.seed = value()?.parse().map_err(|_| "--seed: not a whole number")?,
            "--previous" => args.previous = Some(value()?),
            "--smoothing" => args.smoothing = Some(number(value()?, "--smoothing")?),
            "--generate" => args.generate = Some(value()?),
            "--count" => args.count = value()?.parse().map_err(|_| "--count: not a whole number")?,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown option '{other}'")),
        }
    }
    // A flag the chosen mode does not read is refused, never ignored.
    let (mode_flags, why): (&[&str], &str) = if args.generate.is_some() {
        (&["--generate", "--count", "--seed"], "does not apply with --generate (it writes a training set)")
    } else {
        (
            &[
                "--people",
                "--labels",
                "--menu",
                "--out",
                "--report",
                "--now",
                "--half-life-days",
                "--folds",
                "--seed",
                "--previous",
                "--smoothing",
            ],
            "applies only with --generate",
        )
    };
    if let Some(flag) = given.iter().find(|g| !mode_flags.contains(&g.as_str()) && g.starts_with("--")) {
        return Err(format!("{flag} {why}"));
    }
    if args.smoothing.is_some() && args.previous.is_none() {
        return Err("--smoothing applies only with --previous".into());
    }
    Ok(args)
}

const USAGE: &str = "usage: train_personas --people people.jsonl --labels labels.jsonl [--menu menu.json] \
[--out model.json] [--report DIR] [--now T] [--half-life-days D] [--folds K] [--seed S] \
[--previous model.json] [--smoothing A]\n       train_personas --generate DIR [--count N] [--seed S]";

fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("error: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let result = match &args.generate {
        Some(dir) => write_synthetic(Path::new(dir), args.count, args.seed),
        None => run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn write_lines<T: serde::Serialize>(path: &Path, items: impl Iterator<Item = T>) -> Result<(), String> {
    let file = File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut w = BufWriter::new(file);
    for item in items {
        serde_json::to_writer(&mut w, &item).map_err(|e| e.to_string())?;
        w.write_all(b"\n").map_err(|e| format!("{}: {e}", path.display()))?;
    }
    w.flush().map_err(|e| format!("{}: {e}", path.display()))
}

fn write_synthetic(dir: &Path, count: usize, seed: u64) -> Result<(), String> {
    let catalog = sample::catalog_spec().map_err(|e| e.to_string())?;
    let personas: Vec<&str> = catalog.personas.iter().map(String::as_str).collect();
    let set = generate(&SyntheticConfig::new(&personas, count, seed)).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    write_lines(&dir.join("people.jsonl"), set.people.iter())?;
    write_lines(&dir.join("labels.jsonl"), set.positives.iter().map(|(p, _)| p))?;
    let json = |v: &dyn erased::Json| v.pretty();
    std::fs::write(dir.join("menu.json"), json(&catalog.personas)).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("truth.json"), json(&set.truth)).map_err(|e| e.to_string())?;
    println!(
        "wrote {} people, {} positives over {} personas to {}/ (people.jsonl, labels.jsonl, menu.json, \
         truth.json: the true propensity model)",
        set.people.len(),
        set.positives.len(),
        personas.len(),
        dir.display()
    );
    println!(
        "train with: cargo run --release --example train_personas -- --people {0}/people.jsonl \
         --labels {0}/labels.jsonl --menu {0}/menu.json --out model.json --report report/",
        dir.display()
    );
    Ok(())
}

/// Pretty JSON for the few things this example writes.
mod erased {
    pub trait Json {
        fn pretty(&self) -> String;
    }
    impl<T: serde::Serialize> Json for T {
        fn pretty(&self) -> String {
            serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
        }
    }
}

fn open(path: &str) -> Result<BufReader<File>, String> {
    File::open(path).map(BufReader::new).map_err(|e| format!("{path}: {e}"))
}

/// An error about the file at `path`, naming it once (an I/O error already does).
fn in_file(path: &str, e: persona_engine::Error) -> String {
    match e {
        persona_engine::Error::Io { .. } => e.to_string(),
        _ => format!("{path}: {e}"),
    }
}

fn run(args: &Args) -> Result<(), String> {
    let (Some(people_path), Some(labels_path)) = (&args.people, &args.labels) else {
        return Err(format!("--people and --labels are needed (or --generate DIR)\n{USAGE}"));
    };
    let menu: PersonaMenu = match &args.menu {
        Some(path) => read_menu_file(path).map_err(|e| in_file(path, e))?,
        None => read_menu(sample::CATALOG_JSON).map_err(|e| e.to_string())?,
    };
    let started = Instant::now();
    let people = read_people(open(people_path)?, people_path).map_err(|e| e.to_string())?;
    let positives = read_positives(open(labels_path)?, labels_path, &menu).map_err(|e| e.to_string())?;
    let now = args
        .now
        .or_else(|| people.iter().flat_map(|p| p.signals.iter().map(|s| s.at)).max())
        .ok_or("no signal in the people file: pass --now")?;
    let mut config = TrainConfig::at(now);
    config.seed = args.seed;
    if let Some(h) = args.half_life_days {
        config.half_life_days = h;
    }
    if let Some(k) = args.folds {
        config.folds = k;
    }
    if let Some(a) = args.smoothing {
        config.smoothing = a;
    }
    let previous = match &args.previous {
        Some(path) => {
            let spec = PersonaModelSpec::from_file(path).map_err(|e| in_file(path, e))?;
            Some((PersonaModel::compile(&menu, &spec).map_err(|e| format!("{path}: {e}"))?, spec))
        }
        None => None,
    };
    config.previous = previous.as_ref().map(|(_, spec)| spec.clone());
    eprintln!(
        "read {} people and {} positives in {:.1} s; training {} personas at now = {now}",
        people.len(),
        positives.len(),
        started.elapsed().as_secs_f64(),
        menu.len()
    );

    let mut last = Instant::now();
    let mut shown = false;
    let mut progress = |p: Progress<'_>| {
        if last.elapsed() >= Duration::from_millis(200) || p.done == p.total {
            eprint!(
                "\rtraining: {:>3}% ({}/{} fits) {:<40}",
                p.done * 100 / p.total.max(1),
                p.done,
                p.total,
                p.persona
            );
            last = Instant::now();
            shown = true;
        }
    };
    let trained = train(&menu, &people, &positives, &config, &mut progress).map_err(|e| e.to_string())?;
    if shown {
        eprintln!();
    }
    eprintln!("trained in {:.1} s", started.elapsed().as_secs_f64());

    print!("{}", trained.report.to_text());
    let out = args.out.clone().unwrap_or_else(|| "model.json".to_owned());
    let json = serde_json::to_string_pretty(&trained.spec).map_err(|e| e.to_string())? + "\n";
    std::fs::write(&out, json).map_err(|e| format!("{out}: {e}"))?;
    println!("\nmodel: {out}");
    if let Some(dir) = &args.report {
        let dir = PathBuf::from(dir);
        trained.report.write_dir(&dir).map_err(|e| e.to_string())?;
        println!("report: {} (report.txt, summary.csv, gains.csv, overlap.csv, gains.svg)", dir.display());
    }
    if let Some((old, _)) = &previous {
        let new = PersonaModel::compile(&menu, &trained.spec).map_err(|e| e.to_string())?;
        let profiles: Vec<_> = people.iter().map(|p| p.to_profile(&menu, now)).collect();
        println!("\npeople whose score changed against the previous model (smoothing {}):", config.smoothing);
        for m in movement(&menu, old, &new, &profiles, now).map_err(|e| e.to_string())? {
            println!(
                "  {:<24} {:>5.1}% changed, {:>5.2}% by more than one",
                m.persona,
                m.moved * 100.0,
                m.moved_far * 100.0
            );
        }
    }
    Ok(())
}
