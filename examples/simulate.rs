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
//!     [--seed S] [--seeds K] [--svg PATH] [--json PATH] [--spread learned|fixed]
//!     [--explore-reach Z|none]
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

const USAGE: &str =
    "usage: simulate [--variant NAME|all] [--impressions N] [--seed S] [--seeds K] [--spread learned|fixed] \
                     [--explore-reach Z|none] [--svg PATH] [--json PATH]\nvariants: classic graded quality attributes multitag \
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
            "--spread" if value == "learned" || value == "fixed" => config.fixed_spread = value == "fixed",
            "--explore-reach" if value == "none" => config.explore_reach = None,
            "--explore-reach" => config.explore_reach = Some(value.parse().map_err(|e| bad(&e))?),
            _ => return Err(format!("unknown argument {flag}\n{USAGE}")),
        }
    }
    if seeds == 0 {
        return Err(format!("--seeds must be at least 1\n{USAGE}"));
    }
    if config.impressions == 0 {
        return Err(format!("--impressions must be at least 1\n{USAGE}"));
    }
    config.windows = config.windows.min(config.impressions);
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
    if let Some(reach) = config.explore_reach {
        println!(
            "Epsilon-greedy explores among the creatives that could be the best (explore_reach {reach}).\n"
        );
    }
    let started = Instant::now();
    let mut results: Vec<(Summary, Vec<SimReport>)> = Vec::new();
    for &variant in &args.variants {
        let clock = Instant::now();
        let reports = run_seeds(&SimConfig { variant, ..config.clone() }, args.seeds)?;
        let summary = Summary::of(&reports)?;
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
/// the mean share of the oracle over seeds, and a black tick at the minimum. Plain SVG
/// written by hand: no fonts, no scripts, no external references.
fn draw(summaries: &[Summary], path: &Path) -> Result<(), Box<dyn Error>> {
    std::fs::write(path, svg_chart(summaries))?;
    Ok(())
}

/// Fill colours of the policies' bars, in order (the first two for the baselines).
const COLOURS: [&str; 8] =
    ["#aaaaaa", "#5a5a5a", "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"];

fn svg_chart(summaries: &[Summary]) -> String {
    use std::fmt::Write as _;
    let (width, height) = (1200.0, 620.0);
    let (left, right, top, bottom) = (80.0, 20.0, 90.0, 50.0);
    let (plot_w, plot_h) = (width - left - right, height - top - bottom);
    let y_max = 130.0; // percent; room above 100 % for the legend
    let y = |share: f64| top + plot_h * (1.0 - (100.0 * share).clamp(0.0, y_max) / y_max);
    let policies: Vec<Strategy> = summaries
        .first()
        .map(|s| s.rows.iter().map(|r| r.strategy).filter(|s| *s != Strategy::Oracle).collect())
        .unwrap_or_default();
    let groups = summaries.len().max(1);
    let seeds = summaries.first().map_or(0, |s| s.seeds.len());
    let group_w = plot_w / groups as f64;
    let bar_w = 0.8 * group_w / policies.len().max(1) as f64;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="Helvetica, Arial, sans-serif" font-size="13">"#
    );
    let _ = writeln!(out, r#"<rect width="{width}" height="{height}" fill="white"/>"#);
    let _ = writeln!(
        out,
        r#"<text x="{}" y="28" font-size="18" text-anchor="middle">Share of the oracle's expected click rate per policy and world variant (mean of {seeds} seed(s); tick: min)</text>"#,
        width / 2.0
    );
    for percent in (0..=100).step_by(20) {
        let py = y(f64::from(percent) / 100.0);
        let _ = writeln!(
            out,
            r##"<line x1="{left}" y1="{py:.1}" x2="{:.1}" y2="{py:.1}" stroke="#dddddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{percent}%</text>"##,
            width - right,
            left - 6.0,
            py + 4.0
        );
    }
    let _ = writeln!(
        out,
        r#"<text transform="translate(22 {:.1}) rotate(-90)" text-anchor="middle">share of the oracle (%)</text>"#,
        top + plot_h / 2.0
    );
    for (g, summary) in summaries.iter().enumerate() {
        let x0 = left + g as f64 * group_w;
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            x0 + group_w / 2.0,
            height - bottom + 20.0,
            summary.variant.name()
        );
        for (p, strategy) in policies.iter().enumerate() {
            let Some(share) = summary.row(*strategy).and_then(|r| r.share_of_oracle) else { continue };
            let bx = x0 + 0.1 * group_w + p as f64 * bar_w;
            let (top_y, min_y) = (y(share.mean), y(share.min));
            let _ = writeln!(
                out,
                r##"<rect x="{bx:.1}" y="{top_y:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>{} {:.0}% (min {:.0}%)</title></rect><line x1="{bx:.1}" y1="{min_y:.1}" x2="{:.1}" y2="{min_y:.1}" stroke="black"/>"##,
                bar_w * 0.9,
                (top + plot_h - top_y).max(0.0),
                COLOURS[p % COLOURS.len()],
                xml(&strategy.name()),
                100.0 * share.mean,
                100.0 * share.min,
                bx + bar_w * 0.9
            );
        }
    }
    let _ = writeln!(
        out,
        r#"<line x1="{left}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="black"/>"#,
        top + plot_h,
        width - right,
        top + plot_h
    );
    // The legend, one row across the top of the plot.
    let item_w = plot_w / policies.len().max(1) as f64;
    for (p, strategy) in policies.iter().enumerate() {
        let lx = left + p as f64 * item_w;
        let _ = writeln!(
            out,
            r#"<rect x="{lx:.1}" y="50" width="14" height="10" fill="{}"/><text x="{:.1}" y="60">{}</text>"#,
            COLOURS[p % COLOURS.len()],
            lx + 18.0,
            xml(&strategy.name())
        );
    }
    out.push_str("</svg>\n");
    out
}

/// `text` with the characters XML gives a meaning escaped.
fn xml(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}
