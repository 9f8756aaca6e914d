//! Does it generalize? Runs the synthetic worlds of `persona_engine::simulate` for every
//! strategy (uniform random, the static persona rule, the engine under rules, greedy,
//! epsilon-greedy, softmax and Thompson sampling, and the oracle), prints per variant a
//! Markdown table of the mean expected click rate (the hidden probability of what was
//! shown) as a share of the oracle's and as a ratio to the persona rule's, overall and
//! for people with no high persona, with mean and minimum over seeds; then the same
//! across variants. Draws the share of the oracle per policy and variant as grouped bars
//! (SVG) and can write every figure as JSON.
//!
//! ```sh
//! cargo run --release --example simulate -- [--variant NAME|all] [--impressions N]
//!     [--seed S] [--seeds K] [--svg PATH] [--json PATH]
//! ```
//!
//! Defaults: variant `mixed`, 20,000 impressions, seed 42, one world (`--seeds K` runs
//! seeds S … S+K−1), chart in `target/simulate.svg`, no JSON. Variants: classic, graded,
//! quality, attributes, multitag, longtail, mixed (`docs/simulation.md`).

use std::error::Error;
use std::path::{Path, PathBuf};
use std::time::Instant;

use persona_engine::simulate::{
    overview_markdown, run_seeds, SimConfig, SimReport, Stat, Strategy, Summary, Variant,
};
use plotters::prelude::*;

const USAGE: &str = "usage: simulate [--variant NAME|all] [--impressions N] [--seed S] [--seeds K] \
                     [--svg PATH] [--json PATH]\nvariants: classic graded quality attributes multitag \
                     longtail mixed";

struct Args {
    config: SimConfig,
    variants: Vec<Variant>,
    seeds: u64,
    svg: PathBuf,
    json: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut config = SimConfig::default();
    let mut variants = vec![config.variant];
    let mut seeds = 1;
    let mut svg = PathBuf::from("target/simulate.svg");
    let mut json = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--help" || flag == "-h" {
            return Err(USAGE.to_owned());
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {value}: {e}\n{USAGE}");
        match flag.as_str() {
            "--variant" if value == "all" => variants = Variant::ALL.to_vec(),
            "--variant" => {
                variants = vec![Variant::parse(&value).ok_or_else(|| bad(&"unknown variant"))?];
            }
            "--impressions" => config.impressions = value.parse().map_err(|e| bad(&e))?,
            "--seed" => config.seed = value.parse().map_err(|e| bad(&e))?,
            "--seeds" => seeds = value.parse().map_err(|e| bad(&e))?,
            "--svg" => svg = PathBuf::from(&value),
            "--json" => json = Some(PathBuf::from(&value)),
            _ => return Err(format!("unknown argument {flag}\n{USAGE}")),
        }
    }
    if seeds == 0 {
        return Err(format!("--seeds must be at least 1\n{USAGE}"));
    }
    config.windows = config.windows.min(config.impressions.max(1));
    Ok(Args { config, variants, seeds, svg, json })
}

fn main() -> Result<(), Box<dyn Error>> {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    let config = &args.config;
    println!(
        "Simulating {} impressions per strategy in {} world(s) per variant (seeds {}–{}): {} personas, \
         {} creatives, {} people; the engine with the default SelectorConfig of each policy.\n",
        config.impressions,
        args.seeds,
        config.seed,
        config.seed + args.seeds - 1,
        config.personas,
        config.creatives,
        config.people,
    );
    let started = Instant::now();
    let mut results: Vec<(Summary, Vec<SimReport>)> = Vec::new();
    for &variant in &args.variants {
        let clock = Instant::now();
        let reports = run_seeds(&SimConfig { variant, ..config.clone() }, args.seeds)?;
        let Some(summary) = Summary::of(&reports) else { continue };
        println!("## {} — {}\n", variant.name(), variant.description());
        let people_seen = reports.iter().map(|r| r.people_seen as f64).sum::<f64>() / reports.len() as f64;
        println!(
            "People with no score ≥ 7: {:.1}% (mean over seeds); distinct people seen: {people_seen:.0} of {}.\n",
            100.0 * summary.no_high_people_share.mean,
            config.people
        );
        if let [report] = reports.as_slice() {
            println!("{}", report.to_markdown());
        } else {
            println!("{}", summary.to_markdown());
        }
        println!("({:.1} s)\n", clock.elapsed().as_secs_f64());
        results.push((summary, reports));
    }
    let elapsed = started.elapsed().as_secs_f64();
    let summaries: Vec<Summary> = results.iter().map(|(s, _)| s.clone()).collect();
    let shares = |s: Stat| format!("{:.0}% ({:.0}%)", 100.0 * s.mean, 100.0 * s.min);
    let ratios = |s: Stat| format!("{:.2}× ({:.2}×)", s.mean, s.min);
    println!("## Across variants: share of the oracle, mean (min) over seeds\n");
    println!("{}", overview_markdown(&summaries, |r| r.share_of_oracle, shares));
    println!("## Across variants: ratio to the static persona rule, mean (min) over seeds\n");
    println!("{}", overview_markdown(&summaries, |r| r.vs_persona_rule, ratios));
    println!("## Across variants, people with no high persona: share of the oracle, mean (min)\n");
    println!("{}", overview_markdown(&summaries, |r| r.no_high_share_of_oracle, shares));
    println!("Simulated in {elapsed:.1} s.");

    if let Some(dir) = args.svg.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    draw(&summaries, &args.svg)?;
    println!("Chart of the share of the oracle per policy and variant: {}", args.svg.display());
    if let Some(path) = &args.json {
        let variants: Vec<serde_json::Value> = results
            .iter()
            .map(|(summary, reports)| {
                serde_json::json!({
                    "variant": summary.variant,
                    "description": summary.variant.description(),
                    "summary": summary,
                    "reports": reports,
                })
            })
            .collect();
        let doc = serde_json::json!({
            "impressions": config.impressions,
            "personas": config.personas,
            "creatives": config.creatives,
            "people": config.people,
            "first_seed": config.seed,
            "seeds": args.seeds,
            "elapsed_seconds": elapsed,
            "variants": variants,
        });
        std::fs::write(path, serde_json::to_string_pretty(&doc)?)?;
        println!("Every figure as JSON: {}", path.display());
    }
    Ok(())
}

/// Grouped bars: per variant, one bar per policy (not the oracle, which is 100 %) with
/// the mean share of the oracle over seeds, and a black tick at the minimum.
fn draw(summaries: &[Summary], path: &Path) -> Result<(), Box<dyn Error>> {
    let root = SVGBackend::new(path, (1200, 620)).into_drawing_area();
    root.fill(&WHITE)?;
    let policies: Vec<Strategy> = summaries
        .first()
        .map(|s| s.rows.iter().map(|r| r.strategy).filter(|s| *s != Strategy::Oracle).collect())
        .unwrap_or_default();
    let groups = summaries.len().max(1);
    let seeds = summaries.first().map_or(0, |s| s.seeds.len());
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("Share of the oracle's expected click rate per policy and world variant (mean of {seeds} seed(s); tick: min)"),
            ("sans-serif", 20),
        )
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(64)
        .build_cartesian_2d(-0.5..groups as f64 - 0.5, 0.0..150.0)?;
    let names: Vec<&str> = summaries.iter().map(|s| s.variant.name()).collect();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(groups)
        .x_label_formatter(&|x| {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 {
                names.get(i as usize).map_or(String::new(), |n| (*n).to_owned())
            } else {
                String::new()
            }
        })
        .y_desc("share of the oracle (%)")
        .y_label_formatter(&|y| if *y <= 100.0 { format!("{y:.0}%") } else { String::new() })
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    let width = 0.8 / policies.len().max(1) as f64;
    for (p, strategy) in policies.iter().enumerate() {
        let color = match strategy {
            Strategy::UniformRandom => RGBColor(170, 170, 170).to_rgba(),
            Strategy::PersonaRule => RGBColor(90, 90, 90).to_rgba(),
            _ => Palette99::pick(p).to_rgba(),
        };
        let mut bars = Vec::new();
        let mut ticks = Vec::new();
        for (g, summary) in summaries.iter().enumerate() {
            let Some(share) = summary.row(*strategy).and_then(|r| r.share_of_oracle) else { continue };
            let x0 = g as f64 - 0.4 + p as f64 * width;
            bars.push(Rectangle::new([(x0, 0.0), (x0 + width * 0.9, 100.0 * share.mean)], color.filled()));
            ticks.push(PathElement::new(
                vec![(x0, 100.0 * share.min), (x0 + width * 0.9, 100.0 * share.min)],
                BLACK,
            ));
        }
        chart
            .draw_series(bars)?
            .label(strategy.name())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], color.filled()));
        chart.draw_series(ticks)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperMiddle)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
