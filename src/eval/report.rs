//! Reports of an evaluation for people and programs: the plain-text table the
//! `evaluate` example prints, a JSON document with every number at full precision, and
//! a self-contained SVG chart of several policies side by side with their intervals.

use std::fmt::Write as _;

use serde_json::{json, Value};

use crate::eval::estimate::{Estimate, Report};

fn estimate_json(e: &Estimate) -> Value {
    let finite = |x: f64| if x.is_finite() { json!(x) } else { Value::Null };
    json!({
        "value": finite(e.value),
        "std_error": finite(e.std_error),
        "normal": [finite(e.low), finite(e.high)],
        "bootstrap": e.bootstrap.map(|(l, h)| json!([finite(l), finite(h)])),
    })
}

impl Report {
    /// The report as a plain-text table (what the `evaluate` example prints): counts,
    /// one row per estimator with its normal and bootstrap intervals, one row per
    /// position, the effective sample size and the warnings.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let pct = self.confidence * 100.0;
        let _ = writeln!(
            out,
            "target policy: {}   decisions: {} read, {} evaluated, {} without a choice   impressions: {} read, {} evaluated, {} without a reward",
            self.policy, self.decisions, self.evaluated, self.without_choice, self.slots, self.slots_evaluated, self.without_reward
        );
        let boot = if self.bootstrap > 0 { format!("bootstrap ({})", self.bootstrap) } else { String::new() };
        let _ = writeln!(
            out,
            "{:<26} {:>9}  {:>20}  {:>20}",
            "estimator",
            "value",
            format!("{pct:.0}% normal"),
            boot
        );
        let row = |out: &mut String, name: &str, e: &Estimate| {
            let b = e.bootstrap.map_or(String::new(), |(l, h)| format!("[{l:.6}, {h:.6}]"));
            let _ = writeln!(out, "{:<26} {:>9.6}  [{:.6}, {:.6}]  {:>20}", name, e.value, e.low, e.high, b);
        };
        row(&mut out, "logged policy (on-policy)", &self.logged);
        row(&mut out, "IPS (per position)", &self.ips);
        match &self.snips {
            Some(e) => row(&mut out, "self-normalized IPS", e),
            None => {
                let _ = writeln!(out, "{:<26} {:>9}", "self-normalized IPS", "n/a (Σw = 0)");
            }
        }
        row(&mut out, &format!("doubly robust ({})", self.dr_model), &self.dr);
        if self.positions.len() > 1 {
            for p in &self.positions {
                row(&mut out, &format!("  IPS at position {} ({})", p.position, p.slots), &p.ips);
            }
        }
        let _ = writeln!(
            out,
            "effective sample size {:.1} of {} impressions (target agrees with the log in {}, max weight {:.2})",
            self.effective_sample_size, self.slots_evaluated, self.matched, self.max_weight
        );
        if !self.unknown_personas.is_empty() {
            let _ = writeln!(
                out,
                "ignored personas not on the candidate's menu: {}",
                self.unknown_personas.join(", ")
            );
        }
        for w in &self.warnings {
            let _ = writeln!(out, "warning: {w}");
        }
        out
    }

    /// The report as JSON, every number at full precision (infinite values as `null`).
    pub fn to_json(&self) -> Value {
        json!({
            "policy": self.policy,
            "confidence": self.confidence,
            "bootstrap_samples": self.bootstrap,
            "counts": {
                "decisions": self.decisions,
                "decisions_evaluated": self.evaluated,
                "decisions_without_choice": self.without_choice,
                "impressions": self.slots,
                "impressions_evaluated": self.slots_evaluated,
                "impressions_without_reward": self.without_reward,
                "matched": self.matched,
            },
            "logged": estimate_json(&self.logged),
            "ips": estimate_json(&self.ips),
            "snips": self.snips.as_ref().map(estimate_json),
            "dr": estimate_json(&self.dr),
            "dr_model": self.dr_model,
            "effective_sample_size": self.effective_sample_size,
            "max_weight": self.max_weight,
            "positions": self.positions.iter().map(|p| json!({
                "position": p.position,
                "impressions": p.slots,
                "logged": estimate_json(&p.logged),
                "ips": estimate_json(&p.ips),
                "snips": p.snips.as_ref().map(estimate_json),
            })).collect::<Vec<_>>(),
            "unknown_personas": self.unknown_personas,
            "unknown_creatives": {
                "impressions": self.unknown_creatives,
                "examples": self.unknown_creative_examples,
            },
            "unknown_eligible": self.unknown_eligible,
            "warnings": self.warnings,
        })
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A self-contained SVG chart: one group per policy, one bar per estimator (logged, IPS,
/// SNIPS, DR) with its normal interval as a whisker and its bootstrap interval as a
/// thicker band, on a shared scale, with the values written out. No scripts, fonts or
/// external references: open it in any browser or embed it in a page.
pub fn svg_report(reports: &[Report], title: &str) -> String {
    let estimators = |r: &Report| -> Vec<(&'static str, Option<Estimate>)> {
        vec![("logged", Some(r.logged)), ("IPS", Some(r.ips)), ("SNIPS", r.snips), ("DR", Some(r.dr))]
    };
    let mut top = 0.0f64;
    for r in reports {
        for (_, e) in estimators(r) {
            if let Some(e) = e {
                for v in [e.value, e.high, e.bootstrap.map_or(0.0, |b| b.1)] {
                    if v.is_finite() {
                        top = top.max(v);
                    }
                }
            }
        }
    }
    let top = if top > 0.0 { top * 1.1 } else { 1.0 };
    let (bar, gap, group_gap, left, plot_h, base) = (34.0, 8.0, 40.0, 70.0, 300.0, 360.0);
    let group_w = 4.0 * (bar + gap);
    let width = left + reports.len().max(1) as f64 * (group_w + group_gap) + 20.0;
    let y = |v: f64| base - (v.max(0.0) / top) * plot_h;
    let colors = ["#8c8c8c", "#4c78a8", "#72b7b2", "#f58518"];
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="440" viewBox="0 0 {width:.0} 440" font-family="sans-serif" font-size="11">"#
    );
    let _ = write!(s, r#"<title>{}</title><rect width="100%" height="100%" fill="white"/>"#, escape(title));
    let _ = write!(s, r#"<text x="{left}" y="24" font-size="15">{}</text>"#, escape(title));
    for i in 0..=4 {
        let v = top * f64::from(i) / 4.0;
        let _ = write!(
            s,
            r##"<line x1="{left}" x2="{x2:.1}" y1="{yv:.1}" y2="{yv:.1}" stroke="#ddd"/><text x="{tx:.1}" y="{ty:.1}" text-anchor="end">{v:.4}</text>"##,
            x2 = width - 20.0,
            yv = y(v),
            tx = left - 6.0,
            ty = y(v) + 4.0
        );
    }
    for (g, r) in reports.iter().enumerate() {
        let x0 = left + 10.0 + g as f64 * (group_w + group_gap);
        for (j, (name, e)) in estimators(r).into_iter().enumerate() {
            let x = x0 + j as f64 * (bar + gap);
            let cx = x + bar / 2.0;
            let _ =
                write!(s, r#"<text x="{cx:.1}" y="{:.1}" text-anchor="middle">{name}</text>"#, base + 14.0);
            let Some(e) = e else {
                let _ =
                    write!(s, r#"<text x="{cx:.1}" y="{:.1}" text-anchor="middle">n/a</text>"#, base - 4.0);
                continue;
            };
            let _ = write!(
                s,
                r#"<rect x="{x:.1}" y="{:.1}" width="{bar}" height="{:.1}" fill="{}" opacity="0.8"><title>{name} {}: {} [{}, {}]</title></rect>"#,
                y(e.value),
                (base - y(e.value)).max(0.0),
                colors[j],
                escape(&r.policy),
                e.value,
                e.low,
                e.high
            );
            if let Some((l, h)) = e.bootstrap {
                let _ = write!(
                    s,
                    r##"<line x1="{cx:.1}" x2="{cx:.1}" y1="{:.1}" y2="{:.1}" stroke="#222" stroke-width="5" opacity="0.35"/>"##,
                    y(l),
                    y(h)
                );
            }
            if e.low.is_finite() && e.high.is_finite() {
                let _ = write!(
                    s,
                    r##"<line x1="{cx:.1}" x2="{cx:.1}" y1="{lo:.1}" y2="{hi:.1}" stroke="#222"/><line x1="{a:.1}" x2="{b:.1}" y1="{lo:.1}" y2="{lo:.1}" stroke="#222"/><line x1="{a:.1}" x2="{b:.1}" y1="{hi:.1}" y2="{hi:.1}" stroke="#222"/>"##,
                    lo = y(e.low),
                    hi = y(e.high),
                    a = cx - 6.0,
                    b = cx + 6.0
                );
            }
            let _ = write!(
                s,
                r#"<text x="{cx:.1}" y="{:.1}" text-anchor="middle" font-size="9">{:.4}</text>"#,
                y(e.high.max(e.value)).min(base) - 4.0,
                e.value
            );
        }
        let _ = write!(
            s,
            r##"<text x="{gx:.1}" y="{y1:.1}" text-anchor="middle" font-size="13">{name}</text><text x="{gx:.1}" y="{y2:.1}" text-anchor="middle" fill="#555">ESS {ess:.0} of {n}</text>"##,
            gx = x0 + group_w / 2.0,
            y1 = base + 34.0,
            name = escape(&r.policy),
            y2 = base + 50.0,
            ess = r.effective_sample_size,
            n = r.slots_evaluated
        );
    }
    let _ = write!(
        s,
        r##"<text x="{left}" y="432" fill="#555">bars: estimate; thin whisker: normal interval; thick band: bootstrap interval</text></svg>"##
    );
    s.push('\n');
    s
}
