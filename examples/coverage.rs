//! The content-gap report: for which personas and placements the catalog lacks
//! material, and what that is estimated to cost (see docs/coverage.md).
//!
//! ```sh
//! # The sample catalog and 1,000 synthetic people:
//! cargo run --example coverage
//! # Your catalog, your profiles (JSON Lines of ProfileSpec), learned statistics, files:
//! cargo run --example coverage -- --catalog catalog.json --profiles people.jsonl \
//!     --stats stats.json --csv gaps.csv --svg gaps.svg
//! ```
//!
//! Options: `--catalog FILE` (default: the sample catalog), `--profiles FILE.jsonl`
//! (default: synthetic people), `--people N` and `--seed N` (synthetic people; 1,000 and
//! 7), `--at UNIX` (the moment of JSON Lines profiles; default the sample's),
//! `--config FILE` (a `SelectorConfig` JSON), `--stats FILE` (a statistics snapshot),
//! `--top N` (rows of the ranked list; 10), `--csv FILE`, `--svg FILE`.

use std::process::ExitCode;
use std::sync::Arc;

use persona_engine::{coverage, sample, Catalog, SelectorConfig, StatsSnapshot};

struct Args {
    catalog: Option<String>,
    profiles: Option<String>,
    people: usize,
    seed: u64,
    at: i64,
    config: Option<String>,
    stats: Option<String>,
    top: usize,
    csv: Option<String>,
    svg: Option<String>,
}

fn usage() -> &'static str {
    "usage: coverage [--catalog catalog.json] [--profiles people.jsonl | --people N --seed N] [--at UNIX]\n\
     \x20               [--config selector.json] [--stats stats.json] [--top N] [--csv FILE] [--svg FILE]"
}

fn number<T: std::str::FromStr>(flag: &str, text: String) -> Result<T, String> {
    text.parse().map_err(|_| format!("{flag}: '{text}' is not a number"))
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        catalog: None,
        profiles: None,
        people: 1_000,
        seed: 7,
        at: sample::NOW,
        config: None,
        stats: None,
        top: 10,
        csv: None,
        svg: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value\n{}", usage()));
        match flag.as_str() {
            "--catalog" => args.catalog = Some(value()?),
            "--profiles" => args.profiles = Some(value()?),
            "--people" => args.people = number(&flag, value()?)?,
            "--seed" => args.seed = number(&flag, value()?)?,
            "--at" => args.at = number(&flag, value()?)?,
            "--config" => args.config = Some(value()?),
            "--stats" => args.stats = Some(value()?),
            "--top" => args.top = number(&flag, value()?)?,
            "--csv" => args.csv = Some(value()?),
            "--svg" => args.svg = Some(value()?),
            "-h" | "--help" => return Err(usage().into()),
            other => return Err(format!("unknown option '{other}'\n{}", usage())),
        }
    }
    Ok(args)
}

fn read(path: &str) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))
}

fn run() -> Result<(), String> {
    let args = parse_args()?;
    let catalog = match &args.catalog {
        Some(path) => Catalog::from_file(path),
        None => sample::catalog(),
    }
    .map_err(|e| e.to_string())?;
    let config = match &args.config {
        Some(path) => SelectorConfig::from_json(&read(path)?).map_err(|e| format!("{path}: {e}"))?,
        None => SelectorConfig::default(),
    };
    let stats = match &args.stats {
        Some(path) => Some(StatsSnapshot::from_json(&read(path)?).map_err(|e| format!("{path}: {e}"))?),
        None => None,
    };
    let people = match &args.profiles {
        Some(path) => coverage::read_profiles(catalog.menu(), &read(path)?, args.at)
            .map_err(|e| format!("{path}: {e}"))?,
        None => coverage::synthetic_people(&catalog, args.people, args.seed),
    };
    let report =
        coverage::report(Arc::new(catalog), config, &people, stats.as_ref()).map_err(|e| e.to_string())?;
    print!("{}", report.table(args.top));
    if let Some(path) = &args.csv {
        std::fs::write(path, report.csv()).map_err(|e| format!("{path}: {e}"))?;
        println!("\nwrote {path}");
    }
    if let Some(path) = &args.svg {
        std::fs::write(path, report.svg()).map_err(|e| format!("{path}: {e}"))?;
        println!("wrote {path}");
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("coverage: {e}");
            ExitCode::FAILURE
        }
    }
}
