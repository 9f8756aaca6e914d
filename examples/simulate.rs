//! Does it learn? Runs the synthetic world of `persona_engine::simulate` for every
//! strategy (uniform random, persona-match rules, greedy, epsilon-greedy, softmax,
//! Thompson sampling and the oracle), prints a Markdown table and draws the click rate
//! over time as an SVG line chart. The table counts the clicks drawn; the chart plots,
//! per window, the mean true (hidden) click probability of what each strategy showed:
//! the same click rate without the noise of the click draws, so the learning curves
//! are easy to tell apart.
//!
//! ```sh
//! cargo run --release --example simulate -- [--rounds N] [--seed S] [--svg PATH]
//!     [--prior-strength X] [--backoff-strength X] [--seeds K]
//! ```
//!
//! Defaults: 20,000 rounds, seed 42, chart in `target/simulate.svg`, the simulation's
//! learning configuration (`SimConfig::tuned_learning`; the two strength flags override
//! it). With `--seeds K` it also runs seeds S+1 … S+K (new worlds) and prints how often
//! and by how much each strategy beat the persona-match rules, since one world can be
//! lucky or unlucky.

use std::error::Error;
use std::path::PathBuf;
use std::time::Instant;

use persona_engine::simulate::{run, SimConfig, SimReport, Strategy};
use persona_engine::Policy;
use plotters::prelude::*;

const USAGE: &str = "usage: simulate [--rounds N] [--seed S] [--svg PATH] \
                     [--prior-strength X] [--backoff-strength X] [--seeds K]";

struct Args {
    config: SimConfig,
    svg: PathBuf,
    seeds: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut config = SimConfig::default();
    let mut svg = PathBuf::from("target/simulate.svg");
    let mut seeds = 0;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--help" || flag == "-h" {
            return Err(USAGE.to_owned());
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {value}: {e}\n{USAGE}");
        match flag.as_str() {
            "--rounds" => config.rounds = value.parse().map_err(|e| bad(&e))?,
            "--seed" => config.seed = value.parse().map_err(|e| bad(&e))?,
            "--svg" => svg = PathBuf::from(&value),
            "--seeds" => seeds = value.parse().map_err(|e| bad(&e))?,
            "--prior-strength" => config.learning.prior_strength = value.parse().map_err(|e| bad(&e))?,
            "--backoff-strength" => config.learning.backoff_strength = value.parse().map_err(|e| bad(&e))?,
            _ => return Err(format!("unknown argument {flag}\n{USAGE}")),
        }
    }
    config.windows = config.windows.min(config.rounds.max(1));
    Ok(Args { config, svg, seeds })
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
        "Simulating {} rounds per strategy: {} personas, {} creatives, {} people, seed {}; \
         learning: prior strength {}, backoff strength {}.\n",
        config.rounds,
        config.personas,
        config.creatives,
        config.people,
        config.seed,
        config.learning.prior_strength,
        config.learning.backoff_strength
    );
    let started = Instant::now();
    let report = run(config)?;
    let elapsed = started.elapsed();
    println!("{}", report.to_markdown());
    println!(
        "Windows hold {} rounds each. \"Off-persona picks\": the share of rounds in which the \
         creative shown matched none of the person's high personas.",
        report.window_rounds.first().copied().unwrap_or(0)
    );
    println!("Simulated in {:.1} s.", elapsed.as_secs_f64());
    if let Some(dir) = args.svg.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    draw(&report, &args.svg)?;
    println!("Chart of the click rate over time: {}", args.svg.display());
    if args.seeds > 0 {
        across_seeds(config, args.seeds)?;
    }
    Ok(())
}

/// Runs seeds `seed+1 ..= seed+k` and prints, per strategy, the mean click rate, the
/// mean ratio to the persona-match rules and on how many seeds it beat them.
fn across_seeds(config: &SimConfig, k: u64) -> Result<(), Box<dyn Error>> {
    let rules = Strategy::Engine(Policy::Rules);
    let n = config.strategies.len();
    let (mut rate, mut ratio, mut wins) = (vec![0.0; n], vec![0.0; n], vec![0u32; n]);
    for seed in config.seed + 1..=config.seed + k {
        let report = run(&SimConfig { seed, ..config.clone() })?;
        let base = report.row(rules).map(|r| r.click_rate);
        for (i, row) in report.rows.iter().enumerate() {
            rate[i] += row.click_rate / k as f64;
            if let Some(base) = base.filter(|b| *b > 0.0) {
                ratio[i] += row.click_rate / base / k as f64;
                wins[i] += u32::from(row.click_rate > base);
            }
        }
    }
    println!("\nAcross seeds {}–{} ({} rounds each):\n", config.seed + 1, config.seed + k, config.rounds);
    println!("| policy | mean click rate | vs rules (mean) | seeds beating rules |");
    println!("|---|---:|---:|---:|");
    for (i, strategy) in config.strategies.iter().enumerate() {
        let (vs, beat) = if *strategy == rules {
            ("–".to_owned(), "–".to_owned())
        } else {
            (format!("{:+.0}%", 100.0 * (ratio[i] - 1.0)), format!("{}/{k}", wins[i]))
        };
        println!("| {} | {:.2}% | {vs} | {beat} |", strategy.name(), 100.0 * rate[i]);
    }
    Ok(())
}

/// Draws the expected click rate per window of every strategy as one line each.
fn draw(report: &SimReport, path: &std::path::Path) -> Result<(), Box<dyn Error>> {
    let root = SVGBackend::new(path, (960, 600)).into_drawing_area();
    root.fill(&WHITE)?;
    let top =
        report.rows.iter().flat_map(|r| r.window_expected_click_rate.iter().copied()).fold(0.0f64, f64::max);
    // Headroom above the highest line for the legend.
    let y_max = (100.0 * top * 1.45).ceil().max(1.0);
    let x_max = report.rounds as f64;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "Does it learn? Click rate over time ({} rounds per policy, seed {})",
                report.rounds, report.seed
            ),
            ("sans-serif", 22),
        )
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)?;
    chart
        .configure_mesh()
        .x_desc("rounds (people shown a creative)")
        .y_desc("click rate of what was shown (mean true click probability, %)")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.0}%"))
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    for (i, row) in report.rows.iter().enumerate() {
        let color = match row.strategy {
            Strategy::Oracle => BLACK.to_rgba(),
            Strategy::UniformRandom => RGBColor(150, 150, 150).to_rgba(),
            _ => Palette99::pick(i).to_rgba(),
        };
        let style = ShapeStyle { color, filled: false, stroke_width: 2 };
        let mut end = 0usize;
        let points: Vec<(f64, f64)> = row
            .window_expected_click_rate
            .iter()
            .zip(&report.window_rounds)
            .map(|(rate, n)| {
                let start = end;
                end += n;
                ((start + end) as f64 / 2.0, 100.0 * rate)
            })
            .collect();
        chart
            .draw_series(LineSeries::new(points, style))?
            .label(format!("{} ({:.2}% clicked)", row.name, 100.0 * row.click_rate))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
