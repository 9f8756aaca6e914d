//! The model report: how well each trained persona model ranks people it did not see
//! (held-out AUC, lift, the gains table by decile), which signals drive it, which
//! personas are too thin to model, and how much the personas overlap. Renders as a text
//! table, CSV and an SVG gains chart, all as plain strings (no plotting dependency).

use std::fmt::Write as _;
use std::path::Path;

use super::PersonaModel;
use crate::error::{Error, Result};
use crate::persona::PersonaMenu;
use crate::profile::Profile;

/// The score at or above which a persona counts as "high" (the selector's default
/// threshold): with decile edges, the top 30 % of the training population.
pub const HIGH_SCORE: u8 = 7;

/// Two personas whose high groups overlap at least this much (people high on both over
/// people high on either) are flagged as near-duplicates.
pub const NEAR_DUPLICATE: f64 = 0.7;

/// One signal's weight in a persona model.
#[derive(Clone, Debug, PartialEq)]
pub struct SignalWeight {
    /// The signal's name.
    pub signal: String,
    /// Its weight in the model, per unit of decayed value.
    pub weight: f64,
    /// The weight times the signal's typical size (its root mean square over the
    /// training population): comparable across signals, so the ranking uses it.
    pub effect: f64,
}

/// One row of a gains table: one tenth of the people, ranked by held-out score.
#[derive(Clone, Debug, PartialEq)]
pub struct GainsRow {
    /// 9 for the top tenth, down to 0.
    pub decile: u8,
    /// People in it.
    pub people: usize,
    /// Positives among them.
    pub positives: usize,
    /// `positives / people`.
    pub rate: f64,
    /// `rate` over the rate of the whole population (1 = no better than chance).
    pub lift: f64,
    /// Share of all positives found in this decile and those above it.
    pub cumulative_capture: f64,
}

/// How good one persona's model is, on held-out folds.
#[derive(Clone, Debug, PartialEq)]
pub struct PersonaReport {
    /// The persona.
    pub persona: String,
    /// People in the training population.
    pub people: usize,
    /// Positives among them.
    pub positives: usize,
    /// False when the persona had too few positives (or negatives) to model at all.
    pub modelled: bool,
    /// True when the persona was not modelled but the previous model covered it: its
    /// previous weights and bias are carried forward unchanged (decile edges
    /// recalibrated), so the new model still scores it.
    pub carried_forward: bool,
    /// The L2 strength cross-validation chose.
    pub lambda: Option<f64>,
    /// Area under the ROC curve of the held-out scores (0.5 = chance, 1 = perfect).
    pub auc: Option<f64>,
    /// Positive rate in the top 10 % over the overall rate.
    pub lift_top_decile: Option<f64>,
    /// Positive rate in the top 30 % (scores 7..=9) over the overall rate.
    pub lift_top_three: Option<f64>,
    /// The gains table, top decile first.
    pub gains: Vec<GainsRow>,
    /// The signals by absolute effect, largest first.
    pub top_signals: Vec<SignalWeight>,
    /// Why this persona's model should not be trusted (too few positives), if so.
    pub warning: Option<String>,
}

impl PersonaReport {
    /// The report of a persona with too few positives or negatives to cross-validate.
    pub fn not_modelled(persona: &str, people: usize, positives: usize, folds: usize) -> Self {
        let warning = if positives < folds {
            format!("not modelled: {positives} positives, fewer than the {folds} folds need")
        } else {
            format!("not modelled: {} negatives, fewer than the {folds} folds need", people - positives)
        };
        PersonaReport {
            persona: persona.to_owned(),
            people,
            positives,
            modelled: false,
            carried_forward: false,
            lambda: None,
            auc: None,
            lift_top_decile: None,
            lift_top_three: None,
            gains: Vec::new(),
            top_signals: Vec::new(),
            warning: Some(warning),
        }
    }

    /// The report of held-out scores `scores` (any monotone scale: logits here) against
    /// the labels `positive`, same length.
    pub fn from_predictions(persona: &str, scores: &[f64], positive: &[bool]) -> Self {
        let gains = gains(scores, positive);
        let positives = positive.iter().filter(|b| **b).count();
        let lift_of = |rows: &[GainsRow]| {
            let people: usize = rows.iter().map(|r| r.people).sum();
            let pos: usize = rows.iter().map(|r| r.positives).sum();
            let base = positives as f64 / positive.len().max(1) as f64;
            (people > 0 && base > 0.0).then(|| pos as f64 / people as f64 / base)
        };
        PersonaReport {
            persona: persona.to_owned(),
            people: positive.len(),
            positives,
            modelled: true,
            carried_forward: false,
            lambda: None,
            auc: auc(scores, positive),
            lift_top_decile: lift_of(&gains[..gains.len().min(1)]),
            lift_top_three: lift_of(&gains[..gains.len().min(3)]),
            gains,
            top_signals: Vec::new(),
            warning: None,
        }
    }
}

/// The area under the ROC curve: the chance that a random positive scores above a
/// random negative, ties counting half (the Mann–Whitney statistic). `None` without at
/// least one positive and one negative, or when lengths differ.
pub fn auc(scores: &[f64], positive: &[bool]) -> Option<f64> {
    if scores.len() != positive.len() {
        return None;
    }
    let pos = positive.iter().filter(|b| **b).count();
    let neg = positive.len() - pos;
    if pos == 0 || neg == 0 {
        return None;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|a, b| scores[*a].total_cmp(&scores[*b]));
    // Sum of the (1-based, tie-averaged) ranks of the positives.
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        let average = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += average * order[i..=j].iter().filter(|k| positive[**k]).count() as f64;
        i = j + 1;
    }
    let (pos, neg) = (pos as f64, neg as f64);
    Some((rank_sum - pos * (pos + 1.0) / 2.0) / (pos * neg))
}

/// The gains table: people ranked by score (highest first, ties in input order) and cut
/// into ten groups as equal as possible, top decile first. Empty for no people.
pub fn gains(scores: &[f64], positive: &[bool]) -> Vec<GainsRow> {
    let n = scores.len().min(positive.len());
    if n == 0 {
        return Vec::new();
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|a, b| scores[*b].total_cmp(&scores[*a]).then(a.cmp(b)));
    let total_pos = positive[..n].iter().filter(|b| **b).count();
    let base = total_pos as f64 / n as f64;
    let mut rows = Vec::with_capacity(10);
    let mut found = 0;
    for g in 0..10 {
        let group = &order[g * n / 10..(g + 1) * n / 10];
        let pos = group.iter().filter(|i| positive[**i]).count();
        found += pos;
        let rate = if group.is_empty() { 0.0 } else { pos as f64 / group.len() as f64 };
        rows.push(GainsRow {
            decile: 9 - g as u8,
            people: group.len(),
            positives: pos,
            rate,
            lift: if base > 0.0 { rate / base } else { 0.0 },
            cumulative_capture: if total_pos > 0 { found as f64 / total_pos as f64 } else { 0.0 },
        });
    }
    rows
}

/// How much the personas' high groups (score ≥ [`HIGH_SCORE`]) overlap in a population.
#[derive(Clone, Debug, PartialEq)]
pub struct Overlap {
    /// The modelled personas, in model order.
    pub personas: Vec<String>,
    /// `both[a][b]`: the share of all people high on both `a` and `b` (the diagonal is
    /// the share high on `a`: 0.3 with decile edges).
    pub both: Vec<Vec<f64>>,
    /// `jaccard[a][b]`: people high on both over people high on either (1 = the same
    /// people).
    pub jaccard: Vec<Vec<f64>>,
}

impl Overlap {
    /// The overlap of `model`'s personas over `profiles` scored at `now`. Errors for a
    /// profile whose signals no profile document may hold
    /// ([`Profile::check_signals`]).
    pub fn of(menu: &PersonaMenu, model: &PersonaModel, profiles: &[Profile], now: i64) -> Result<Self> {
        let personas: Vec<_> = model.personas().collect();
        let k = personas.len();
        let mut both = vec![vec![0usize; k]; k];
        for p in profiles {
            let scores = model.score(p, now)?;
            let high: Vec<bool> = personas.iter().map(|id| scores.get(*id) >= HIGH_SCORE).collect();
            for a in 0..k {
                if !high[a] {
                    continue;
                }
                for b in 0..k {
                    if high[b] {
                        both[a][b] += 1;
                    }
                }
            }
        }
        let n = profiles.len().max(1) as f64;
        let jaccard = (0..k)
            .map(|a| {
                (0..k)
                    .map(|b| {
                        let either = both[a][a] + both[b][b] - both[a][b];
                        if either == 0 {
                            0.0
                        } else {
                            both[a][b] as f64 / either as f64
                        }
                    })
                    .collect()
            })
            .collect();
        Ok(Overlap {
            personas: personas.iter().map(|id| menu.name(*id).to_owned()).collect(),
            both: both.iter().map(|row| row.iter().map(|c| *c as f64 / n).collect()).collect(),
            jaccard,
        })
    }

    /// Pairs whose high groups overlap at least `min_jaccard`, most similar first.
    pub fn near_duplicates(&self, min_jaccard: f64) -> Vec<(String, String, f64)> {
        let mut out = Vec::new();
        for a in 0..self.personas.len() {
            for b in a + 1..self.personas.len() {
                if self.jaccard[a][b] >= min_jaccard {
                    out.push((self.personas[a].clone(), self.personas[b].clone(), self.jaccard[a][b]));
                }
            }
        }
        out.sort_by(|x, y| y.2.total_cmp(&x.2));
        out
    }
}

/// How many people changed decile between two models of the same menu.
#[derive(Clone, Debug, PartialEq)]
pub struct Movement {
    /// The persona (modelled by both).
    pub persona: String,
    /// Share of people whose score changed.
    pub moved: f64,
    /// Share whose score changed by more than one.
    pub moved_far: f64,
}

/// Scores `profiles` at `now` with `old` and `new` and counts, per persona both model,
/// the share of people whose score changed. Errors for a profile whose signals no
/// profile document may hold ([`Profile::check_signals`]).
pub fn movement(
    menu: &PersonaMenu,
    old: &PersonaModel,
    new: &PersonaModel,
    profiles: &[Profile],
    now: i64,
) -> Result<Vec<Movement>> {
    let shared: Vec<_> = new.personas().filter(|p| old.personas().any(|q| q == *p)).collect();
    let mut moved = vec![(0usize, 0usize); shared.len()];
    for p in profiles {
        let (a, b) = (old.score(p, now)?, new.score(p, now)?);
        for (k, id) in shared.iter().enumerate() {
            let delta = a.get(*id).abs_diff(b.get(*id));
            moved[k].0 += usize::from(delta > 0);
            moved[k].1 += usize::from(delta > 1);
        }
    }
    let n = profiles.len().max(1) as f64;
    Ok(shared
        .iter()
        .zip(moved)
        .map(|(id, (m, f))| Movement {
            persona: menu.name(*id).to_owned(),
            moved: m as f64 / n,
            moved_far: f as f64 / n,
        })
        .collect())
}

/// The whole report of one training run.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelReport {
    /// People in the training population.
    pub people: usize,
    /// Distinct signal names used.
    pub signals: usize,
    /// Distinct signal names left out (past the training's `max_signals`).
    pub signals_dropped: usize,
    /// Signal records left out because the person did not consent to their data class
    /// (training uses only what scoring may use).
    pub signals_without_consent: usize,
    /// Signal records dated after the training's `now`: counted at full weight, as
    /// scoring at that moment would count them (a clock or export-time mismatch shows
    /// here).
    pub signals_after_now: usize,
    /// One entry per persona on the menu, in menu order.
    pub personas: Vec<PersonaReport>,
    /// How much the trained personas' high groups overlap on the training population.
    pub overlap: Overlap,
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{v:.digits$}"))
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

impl ModelReport {
    /// Assembles the report; computes the overlap of `model` on `profiles` at `now`, and
    /// counts their signals left out for want of consent or dated after `now`. Errors
    /// as [`Overlap::of`] does.
    pub fn new(
        menu: &PersonaMenu,
        model: &PersonaModel,
        profiles: &[Profile],
        now: i64,
        personas: Vec<PersonaReport>,
        signals: usize,
        signals_dropped: usize,
    ) -> Result<Self> {
        Ok(ModelReport {
            people: profiles.len(),
            signals,
            signals_dropped,
            signals_without_consent: profiles
                .iter()
                .map(|p| p.signals.iter().filter(|s| !p.consent.has(s.class)).count())
                .sum(),
            signals_after_now: profiles
                .iter()
                .map(|p| super::consented(p).filter(|s| s.at > now).count())
                .sum(),
            personas,
            overlap: Overlap::of(menu, model, profiles, now)?,
        })
    }

    /// The report as a text table for a terminal or a file.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let mut notes = Vec::new();
        if self.signals_dropped > 0 {
            notes.push(format!("{} rarer signals left out", self.signals_dropped));
        }
        if self.signals_without_consent > 0 {
            notes.push(format!("{} signal records without consent left out", self.signals_without_consent));
        }
        if self.signals_after_now > 0 {
            notes
                .push(format!("{} signal records dated after now, counted as fresh", self.signals_after_now));
        }
        let _ = writeln!(
            s,
            "{} people, {} signals{}; held-out scores from cross-validation\n",
            self.people,
            self.signals,
            if notes.is_empty() { String::new() } else { format!(" ({})", notes.join("; ")) }
        );
        let width = self.personas.iter().map(|p| p.persona.len()).max().unwrap_or(7).max(7);
        let _ = writeln!(
            s,
            "{:<width$}  {:>9}  {:>5}  {:>8}  {:>8}  {:>7}  top signals",
            "persona", "positives", "AUC", "lift@10%", "lift@30%", "lambda"
        );
        for p in &self.personas {
            let top: Vec<String> =
                p.top_signals.iter().take(3).map(|t| format!("{} {:+.2}", t.signal, t.effect)).collect();
            let _ = writeln!(
                s,
                "{:<width$}  {:>9}  {:>5}  {:>8}  {:>8}  {:>7}  {}",
                p.persona,
                p.positives,
                opt(p.auc, 3),
                opt(p.lift_top_decile, 2),
                opt(p.lift_top_three, 2),
                p.lambda.map_or_else(|| "-".to_owned(), |l| format!("{l:.0e}")),
                top.join(", ")
            );
        }
        let warnings: Vec<&PersonaReport> = self.personas.iter().filter(|p| p.warning.is_some()).collect();
        if !warnings.is_empty() {
            let _ = writeln!(s, "\nwarnings:");
            for p in warnings {
                let _ = writeln!(s, "  {}: {}", p.persona, p.warning.as_deref().unwrap_or(""));
            }
        }
        let _ = writeln!(s, "\ngains by decile (share of positives found, top decile first):");
        for p in self.personas.iter().filter(|p| p.modelled) {
            let cells: Vec<String> =
                p.gains.iter().map(|g| format!("{:>4.0}%", g.cumulative_capture * 100.0)).collect();
            let _ = writeln!(s, "  {:<width$}  {}", p.persona, cells.join(" "));
        }
        let _ = writeln!(
            s,
            "\npersona overlap (people high, score >= {HIGH_SCORE}, on both / on either), most similar pairs:"
        );
        for (a, b, j) in self.overlap.near_duplicates(0.0).into_iter().take(3) {
            let flag =
                if j >= NEAR_DUPLICATE { "  near-duplicates: consider merging or pruning one" } else { "" };
            let _ = writeln!(s, "  {a} ~ {b}: {:.0}%{flag}", j * 100.0);
        }
        s
    }

    /// One row per persona: `persona,people,positives,modelled,auc,lift_top_decile,
    /// lift_top_three,lambda,top_signals,warning`.
    pub fn summary_csv(&self) -> String {
        let mut s =
            String::from("persona,people,positives,modelled,auc,lift_top_decile,lift_top_three,lambda,top_signals,warning\n");
        for p in &self.personas {
            let top: Vec<String> =
                p.top_signals.iter().take(5).map(|t| format!("{}:{:.4}", t.signal, t.weight)).collect();
            let _ = writeln!(
                s,
                "{},{},{},{},{},{},{},{},{},{}",
                csv_field(&p.persona),
                p.people,
                p.positives,
                p.modelled,
                p.auc.map_or(String::new(), |v| format!("{v:.4}")),
                p.lift_top_decile.map_or(String::new(), |v| format!("{v:.4}")),
                p.lift_top_three.map_or(String::new(), |v| format!("{v:.4}")),
                p.lambda.map_or(String::new(), |v| format!("{v}")),
                csv_field(&top.join(" ")),
                csv_field(p.warning.as_deref().unwrap_or(""))
            );
        }
        s
    }

    /// The gains tables: `persona,decile,people,positives,rate,lift,cumulative_capture`.
    pub fn gains_csv(&self) -> String {
        let mut s = String::from("persona,decile,people,positives,rate,lift,cumulative_capture\n");
        for p in &self.personas {
            for g in &p.gains {
                let _ = writeln!(
                    s,
                    "{},{},{},{},{:.4},{:.4},{:.4}",
                    csv_field(&p.persona),
                    g.decile,
                    g.people,
                    g.positives,
                    g.rate,
                    g.lift,
                    g.cumulative_capture
                );
            }
        }
        s
    }

    /// The overlap matrix: `persona_a,persona_b,both_high,jaccard`, one row per ordered
    /// pair.
    pub fn overlap_csv(&self) -> String {
        let mut s = String::from("persona_a,persona_b,both_high,jaccard\n");
        let o = &self.overlap;
        for (a, name_a) in o.personas.iter().enumerate() {
            for (b, name_b) in o.personas.iter().enumerate() {
                let _ = writeln!(
                    s,
                    "{},{},{:.4},{:.4}",
                    csv_field(name_a),
                    csv_field(name_b),
                    o.both[a][b],
                    o.jaccard[a][b]
                );
            }
        }
        s
    }

    /// The cumulative gains chart as a standalone SVG: per modelled persona, the share
    /// of its positives found (y) in the top x % of people ranked by held-out score,
    /// against the diagonal of a random ranking.
    pub fn gains_svg(&self) -> String {
        const COLORS: [&str; 10] = [
            "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
            "#bcbd22", "#17becf",
        ];
        let (w, h, left, top, plot) = (760.0, 520.0, 60.0, 40.0, 420.0);
        let x = |share: f64| left + share * plot;
        let y = |share: f64| top + (1.0 - share) * plot;
        let mut s = String::new();
        let _ = writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
        );
        let _ = writeln!(s, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
        let _ = writeln!(
            s,
            r#"<text x="{}" y="24" font-size="15">Cumulative gains (held-out): share of positives in the top x% of people</text>"#,
            left
        );
        for k in 0..=10 {
            let v = f64::from(k) / 10.0;
            let _ = writeln!(
                s,
                r##"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#eee"/><line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#eee"/>"##,
                x(v),
                y(0.0),
                x(v),
                y(1.0),
                x(0.0),
                y(v),
                x(1.0),
                y(v)
            );
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}%</text><text x="{:.1}" y="{:.1}" text-anchor="end">{}%</text>"#,
                x(v),
                y(0.0) + 16.0,
                k * 10,
                x(0.0) - 6.0,
                y(v) + 4.0,
                k * 10
            );
        }
        let _ = writeln!(
            s,
            r##"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#999" stroke-dasharray="4 4"/>"##,
            x(0.0),
            y(0.0),
            x(1.0),
            y(1.0)
        );
        let _ = writeln!(
            s,
            r#"<rect x="{left}" y="{top}" width="{plot}" height="{plot}" fill="none" stroke="black"/>"#
        );
        for (i, p) in self.personas.iter().filter(|p| p.modelled && !p.gains.is_empty()).enumerate() {
            let color = COLORS[i % COLORS.len()];
            let mut points = format!("{:.1},{:.1}", x(0.0), y(0.0));
            let mut people = 0;
            for g in &p.gains {
                people += g.people;
                let _ = write!(
                    points,
                    " {:.1},{:.1}",
                    x(people as f64 / p.people.max(1) as f64),
                    y(g.cumulative_capture)
                );
            }
            let _ =
                writeln!(s, r#"<polyline points="{points}" fill="none" stroke="{color}" stroke-width="2"/>"#);
            let ly = top + 14.0 + 18.0 * i as f64;
            let _ = writeln!(
                s,
                r#"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{color}" stroke-width="3"/><text x="{:.1}" y="{:.1}">{} (AUC {})</text>"#,
                left + plot + 20.0,
                ly,
                left + plot + 40.0,
                ly,
                left + plot + 46.0,
                ly + 4.0,
                xml(&p.persona),
                opt(p.auc, 3)
            );
        }
        s.push_str("</svg>\n");
        s
    }

    /// Writes `report.txt`, `summary.csv`, `gains.csv`, `overlap.csv` and `gains.svg`
    /// into `dir` (created if missing).
    pub fn write_dir(&self, dir: &Path) -> Result<()> {
        let io = |path: &Path| {
            let path = path.display().to_string();
            move |source| Error::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        for (name, text) in [
            ("report.txt", self.to_text()),
            ("summary.csv", self.summary_csv()),
            ("gains.csv", self.gains_csv()),
            ("overlap.csv", self.overlap_csv()),
            ("gains.svg", self.gains_svg()),
        ] {
            let path = dir.join(name);
            std::fs::write(&path, text).map_err(io(&path))?;
        }
        Ok(())
    }
}
