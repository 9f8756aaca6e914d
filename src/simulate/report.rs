//! What a simulation measured, and its summaries: per strategy the mean *expected*
//! click rate (the hidden probability of what was shown), as a share of the oracle's and
//! as a ratio to the static persona rule's, overall and for people with no high persona;
//! Markdown tables; means and minimums over seeds. Plain data, serializable to JSON.

use serde::Serialize;

use super::{Strategy, Variant};

/// The figures of one strategy for one group of impressions.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GroupFigures {
    /// Impressions in the group.
    pub impressions: usize,
    /// The mean hidden click probability of what the strategy showed.
    pub expected_click_rate: f64,
    /// `expected_click_rate` over the oracle's on the same impressions (`None` when the
    /// oracle did not run or its rate is 0).
    pub share_of_oracle: Option<f64>,
    /// `expected_click_rate` over the static persona rule's on the same impressions
    /// (`None` when the rule did not run or its rate is 0).
    pub vs_persona_rule: Option<f64>,
}

/// How one strategy did.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StrategyResult {
    /// The strategy.
    #[serde(skip)]
    pub strategy: Strategy,
    /// Its name ([`Strategy::name`]).
    pub name: String,
    /// Clicks drawn over all impressions.
    pub clicks: u64,
    /// Clicks per impression.
    pub click_rate: f64,
    /// Every impression.
    pub overall: GroupFigures,
    /// The impressions of people with no persona score ≥ 7 (`None` when there were none).
    pub no_high: Option<GroupFigures>,
    /// The share of impressions in which what was shown matched none of the person's
    /// high personas.
    pub off_persona_share: f64,
    /// The mean hidden click probability in each window, in order.
    pub window_expected_click_rate: Vec<f64>,
}

/// What one simulation measured: one row per strategy, in the configured order.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SimReport {
    /// The world's variant.
    pub variant: Variant,
    /// The seed of the world and of the impressions.
    pub seed: u64,
    /// Impressions per strategy.
    pub impressions: usize,
    /// The share of the world's people with no persona score ≥ 7.
    pub no_high_people_share: f64,
    /// The impressions of people with no persona score ≥ 7.
    pub no_high_impressions: usize,
    /// Distinct people among the impressions.
    pub people_seen: usize,
    /// Impressions in each window (the last window may hold more).
    pub window_impressions: Vec<usize>,
    /// One row per strategy.
    pub rows: Vec<StrategyResult>,
}

fn pct(x: f64) -> String {
    format!("{:.2}%", 100.0 * x)
}

fn share(x: Option<f64>) -> String {
    x.map_or("–".to_owned(), |x| format!("{:.0}%", 100.0 * x))
}

fn ratio(x: Option<f64>) -> String {
    x.map_or("–".to_owned(), |x| format!("{x:.2}×"))
}

impl SimReport {
    /// The row of a strategy, if it ran.
    pub fn row(&self, strategy: Strategy) -> Option<&StrategyResult> {
        self.rows.iter().find(|r| r.strategy == strategy)
    }

    /// The report as a Markdown table: expected click rate, share of the oracle and
    /// ratio to the persona rule, overall and for people with no high persona, then the
    /// clicks drawn and the share of off-persona picks. Missing figures show "–".
    pub fn to_markdown(&self) -> String {
        let mut out = String::from(
            "| policy | expected CTR | % of oracle | vs persona rule | no-high: expected CTR | no-high: % of oracle | no-high: vs persona rule | clicks | off-persona picks |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        );
        for r in &self.rows {
            let o = &r.overall;
            let (ne, ns, nr) = match &r.no_high {
                Some(n) => (pct(n.expected_click_rate), share(n.share_of_oracle), ratio(n.vs_persona_rule)),
                None => ("–".to_owned(), "–".to_owned(), "–".to_owned()),
            };
            out.push_str(&format!(
                "| {} | {} | {} | {} | {ne} | {ns} | {nr} | {} | {:.0}% |\n",
                r.name,
                pct(o.expected_click_rate),
                share(o.share_of_oracle),
                ratio(o.vs_persona_rule),
                r.clicks,
                100.0 * r.off_persona_share
            ));
        }
        out
    }
}

/// Mean and minimum of one figure over seeds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Stat {
    /// The mean over seeds.
    pub mean: f64,
    /// The smallest value over seeds.
    pub min: f64,
}

impl Stat {
    /// Mean and minimum of the values present; `None` when none is.
    pub fn of(values: impl IntoIterator<Item = Option<f64>>) -> Option<Stat> {
        let values: Vec<f64> = values.into_iter().flatten().collect();
        if values.is_empty() {
            return None;
        }
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        Some(Stat { mean, min })
    }
}

/// One strategy over several seeds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SummaryRow {
    /// The strategy.
    #[serde(skip)]
    pub strategy: Strategy,
    /// Its name.
    pub name: String,
    /// Expected click rate over all impressions.
    pub expected_click_rate: Stat,
    /// Share of the oracle, all impressions.
    pub share_of_oracle: Option<Stat>,
    /// Ratio to the static persona rule, all impressions.
    pub vs_persona_rule: Option<Stat>,
    /// Share of the oracle, people with no high persona.
    pub no_high_share_of_oracle: Option<Stat>,
    /// Ratio to the static persona rule, people with no high persona.
    pub no_high_vs_persona_rule: Option<Stat>,
}

/// One variant over several seeds (worlds).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    /// The variant.
    pub variant: Variant,
    /// The seeds, in order.
    pub seeds: Vec<u64>,
    /// Impressions per strategy and seed.
    pub impressions: usize,
    /// Share of people with no persona score ≥ 7.
    pub no_high_people_share: Stat,
    /// One row per strategy, in the order of the first report.
    pub rows: Vec<SummaryRow>,
}

impl Summary {
    /// Summarizes reports of one variant and one length (one per seed).
    ///
    /// Errors when there are no reports, when they mix variants or numbers of
    /// impressions (the summary would be labelled with the first), or when a strategy of
    /// the first report is missing from another (its mean would be over fewer seeds
    /// than the others').
    pub fn of(reports: &[SimReport]) -> crate::Result<Summary> {
        let problem =
            |field: &str, problem: String| crate::Error::invalid("simulation summary", field, problem);
        let first = reports.first().ok_or_else(|| problem("reports", "no reports to summarize".into()))?;
        for r in reports {
            if r.variant != first.variant {
                return Err(problem(
                    "variant",
                    format!(
                        "seed {} ran variant '{}', seed {} '{}': summarize one variant at a time",
                        first.seed,
                        first.variant.name(),
                        r.seed,
                        r.variant.name()
                    ),
                ));
            }
            if r.impressions != first.impressions {
                return Err(problem(
                    "impressions",
                    format!(
                        "seed {} ran {} impressions, seed {} {}: summarize runs of one length",
                        first.seed, first.impressions, r.seed, r.impressions
                    ),
                ));
            }
            if let Some(missing) = first.rows.iter().find(|row| r.row(row.strategy).is_none()) {
                return Err(problem(
                    "rows",
                    format!(
                        "strategy '{}' ran on seed {} but not on seed {}",
                        missing.name, first.seed, r.seed
                    ),
                ));
            }
        }
        let rows = first
            .rows
            .iter()
            .map(|r| {
                let rows: Vec<&StrategyResult> =
                    reports.iter().filter_map(|rep| rep.row(r.strategy)).collect();
                let over = |f: &dyn Fn(&StrategyResult) -> Option<f64>| Stat::of(rows.iter().map(|r| f(r)));
                SummaryRow {
                    strategy: r.strategy,
                    name: r.name.clone(),
                    expected_click_rate: over(&|r| Some(r.overall.expected_click_rate))
                        .unwrap_or(Stat { mean: 0.0, min: 0.0 }),
                    share_of_oracle: over(&|r| r.overall.share_of_oracle),
                    vs_persona_rule: over(&|r| r.overall.vs_persona_rule),
                    no_high_share_of_oracle: over(&|r| r.no_high.as_ref().and_then(|n| n.share_of_oracle)),
                    no_high_vs_persona_rule: over(&|r| r.no_high.as_ref().and_then(|n| n.vs_persona_rule)),
                }
            })
            .collect();
        Ok(Summary {
            variant: first.variant,
            seeds: reports.iter().map(|r| r.seed).collect(),
            impressions: first.impressions,
            no_high_people_share: Stat::of(reports.iter().map(|r| Some(r.no_high_people_share)))
                .unwrap_or(Stat { mean: 0.0, min: 0.0 }),
            rows,
        })
    }

    /// The row of a strategy, if it ran.
    pub fn row(&self, strategy: Strategy) -> Option<&SummaryRow> {
        self.rows.iter().find(|r| r.strategy == strategy)
    }

    /// The summary as a Markdown table: per strategy the mean expected click rate, then
    /// mean and minimum over seeds of the share of the oracle and the ratio to the
    /// persona rule, overall and for people with no high persona.
    pub fn to_markdown(&self) -> String {
        let mut out = String::from(
            "| policy | expected CTR | % of oracle (mean / min) | vs persona rule (mean / min) | no-high: % of oracle (mean / min) | no-high: vs persona rule (mean / min) |\n\
             |---|---:|---:|---:|---:|---:|\n",
        );
        let shares = |s: Option<Stat>| {
            s.map_or("–".to_owned(), |s| format!("{:.0}% / {:.0}%", 100.0 * s.mean, 100.0 * s.min))
        };
        let ratios =
            |s: Option<Stat>| s.map_or("–".to_owned(), |s| format!("{:.2}× / {:.2}×", s.mean, s.min));
        for r in &self.rows {
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} |\n",
                r.name,
                pct(r.expected_click_rate.mean),
                shares(r.share_of_oracle),
                ratios(r.vs_persona_rule),
                shares(r.no_high_share_of_oracle),
                ratios(r.no_high_vs_persona_rule),
            ));
        }
        out
    }
}

/// One table across variants: a row per strategy (in the order of the first summary), a
/// column per variant, each cell the mean (and minimum) over seeds of `figure`.
pub fn overview_markdown(
    summaries: &[Summary],
    figure: impl Fn(&SummaryRow) -> Option<Stat>,
    format: impl Fn(Stat) -> String,
) -> String {
    let mut out = String::from("| policy |");
    for s in summaries {
        out.push_str(&format!(" {} |", s.variant.name()));
    }
    out.push_str("\n|---|");
    out.push_str(&"---:|".repeat(summaries.len()));
    out.push('\n');
    let Some(first) = summaries.first() else {
        return out;
    };
    for r in &first.rows {
        out.push_str(&format!("| {} |", r.name));
        for s in summaries {
            let cell = s.row(r.strategy).and_then(&figure).map_or("–".to_owned(), &format);
            out.push_str(&format!(" {cell} |"));
        }
        out.push('\n');
    }
    out
}
