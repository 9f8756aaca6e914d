//! Rendering the content-gap report: the readable table, CSV and the SVG heatmap.
//! Plain text built by hand; nothing here reads the catalog or the selector.

use std::fmt::Write as _;

use super::{ratio, CoverageReport};
use crate::context::Device;
use crate::error::quote;

/// A rate as a percentage, or "–" when nobody stands behind it.
fn percent(rate: f64, people: usize) -> String {
    if people == 0 {
        "–".to_owned()
    } else {
        format!("{:.2}%", 100.0 * rate)
    }
}

fn device_name(device: Option<Device>) -> &'static str {
    device.map_or("all", Device::name)
}

/// How many example ids a warning quotes.
const EXAMPLES: usize = 3;

impl CoverageReport {
    /// What the statistics snapshot held that this catalog lacks, one line each (empty
    /// without statistics or when everything applied): such statistics inform neither
    /// the rates nor the tag audit. [`CoverageReport::table`] prints these lines first.
    pub fn warnings(&self) -> Vec<String> {
        let Some(load) = &self.stats_load else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let n = load.unknown_creatives.len();
        if n > 0 {
            let examples: Vec<String> =
                load.unknown_creatives.iter().take(EXAMPLES).map(|id| format!("'{}'", quote(id))).collect();
            let (noun, verb) = if n == 1 { ("creative", "is") } else { ("creatives", "are") };
            out.push(format!(
                "{n} snapshot {noun} {verb} not in this catalog (e.g. {}): their statistics are left out",
                examples.join(", ")
            ));
        }
        if load.unknown_segments > 0 {
            out.push(format!(
                "{} snapshot segment cells name a persona not on the menu: left out",
                load.unknown_segments
            ));
        }
        if load.unknown_model_entries > 0 {
            out.push(format!(
                "{} snapshot model weights belong to a creative, persona or attribute value this catalog \
                 lacks: left out",
                load.unknown_model_entries
            ));
        }
        out
    }

    /// The readable report: the cells with high people, the ranked list (at most `top`
    /// rows), dead content and the tag audit.
    pub fn table(&self, top: usize) -> String {
        let mut out = String::new();
        let rates = if self.learned { "learned estimates" } else { "the persona prior" };
        let _ = writeln!(
            out,
            "Content coverage: {} people, high = score ≥ {}, click rates from {rates}",
            self.sample, self.threshold
        );
        for warning in self.warnings() {
            let _ = writeln!(out, "warning: {warning}");
        }
        let _ = writeln!(
            out,
            "{:<20} {:<12} {:<7} {:>5} {:>6} {:>5} {:>7} {:>4} {:>7} {:>8} {:>7} {:>7}",
            "persona",
            "placement",
            "device",
            "high",
            "share",
            "speak",
            "persona",
            "off",
            "generic",
            "fallback",
            "rate",
            "served"
        );
        for c in self.cells.iter().filter(|c| c.high > 0) {
            let _ = writeln!(
                out,
                "{:<20} {:<12} {:<7} {:>5} {:>5.1}% {:>5} {:>7} {:>4} {:>7} {:>8} {:>7} {:>7}",
                clip(&c.persona, 20),
                clip(&c.placement, 12),
                device_name(c.device),
                c.high,
                100.0 * c.share(),
                c.speaking,
                c.persona_picks,
                c.off_persona,
                c.generic,
                c.fallback,
                percent(c.unserved_rate, c.unserved()),
                percent(c.served_rate, c.persona_picks),
            );
        }
        let _ = writeln!(
            out,
            "\nAdd creatives here first (gain = unserved × (well-served rate − their rate), clicks per impression of each sampled person):"
        );
        for (rank, &i) in self.ranked.iter().take(top).enumerate() {
            let c = &self.cells[i];
            let _ = writeln!(
                out,
                "{:>3}. {:<20} {:<12} {:<7} {:>4} unserved  {:>5.2}% → {:>5.2}%{}  gain {:.2}",
                rank + 1,
                clip(&c.persona, 20),
                clip(&c.placement, 12),
                device_name(c.device),
                c.unserved(),
                100.0 * c.unserved_rate,
                100.0 * c.target_rate,
                if c.target_from_prior { " (prior)" } else { "" },
                c.gain
            );
        }
        if self.ranked.is_empty() {
            let _ = writeln!(out, "  (no cell gains from another creative)");
        }
        let _ = writeln!(out, "\nDead content ({}):", self.dead.len());
        for d in &self.dead {
            let _ = writeln!(out, "  {:<36} {:<15} eligible {}", d.creative, d.reason.name(), d.eligible);
        }
        if self.learned || !self.audit.is_empty() {
            let _ = writeln!(out, "\nTag audit ({} contradicted):", self.audit.len());
            for f in &self.audit {
                let _ = writeln!(
                    out,
                    "  {:<36} tagged {:<18} learns best with {}{} ({:+.2} vs {:+.2} log-odds, {} impressions)",
                    f.creative,
                    f.tagged,
                    f.best,
                    if f.best_is_tag { " (a secondary tag)" } else { "" },
                    f.best_weight,
                    f.tagged_weight,
                    f.best_impressions
                );
            }
        }
        out
    }

    /// Every cell as CSV (header first; `rank` is the cell's place in the ranked list,
    /// empty when it has no gain).
    pub fn csv(&self) -> String {
        let mut rank = vec![0usize; self.cells.len()];
        for (r, &i) in self.ranked.iter().enumerate() {
            rank[i] = r + 1;
        }
        let mut out = String::from(
            "persona,placement,device,people,high,share,speaking,persona_picks,off_persona,generic,fallback,\
             served_rate,unserved_rate,target_rate,target_from_prior,gain,rank\n",
        );
        for (i, c) in self.cells.iter().enumerate() {
            let _ = writeln!(
                out,
                "{},{},{},{},{},{:.6},{},{},{},{},{},{:.6},{:.6},{:.6},{},{:.6},{}",
                csv_field(&c.persona),
                csv_field(&c.placement),
                device_name(c.device),
                c.people,
                c.high,
                c.share(),
                c.speaking,
                c.persona_picks,
                c.off_persona,
                c.generic,
                c.fallback,
                c.served_rate,
                c.unserved_rate,
                c.target_rate,
                c.target_from_prior,
                c.gain,
                if rank[i] == 0 { String::new() } else { rank[i].to_string() }
            );
        }
        out
    }

    /// Per persona × placement (devices summed): high people and the share of them
    /// without a persona pick; `None` where nobody is high.
    pub fn gap(&self, persona: &str, placement: &str) -> Option<(usize, f64)> {
        let (mut high, mut unserved) = (0, 0);
        for c in self.cells.iter().filter(|c| c.persona == persona && c.placement == placement) {
            high += c.high;
            unserved += c.unserved();
        }
        (high > 0).then(|| (high, ratio(unserved, high)))
    }

    /// A self-contained SVG heatmap, persona rows × placement columns: each cell is
    /// shaded by the share of high people without a persona pick (white 0 % → red
    /// 100 %), labelled with that share and the number of high people; grey where
    /// nobody in the sample is high.
    pub fn svg(&self) -> String {
        let (label_w, cell_w, cell_h, top) = (180usize, 120usize, 32usize, 70usize);
        let width = label_w + cell_w * self.placements.len() + 20;
        let height = top + cell_h * self.personas.len() + 50;
        let mut out = String::new();
        let _ = writeln!(
            out,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="Helvetica, Arial, sans-serif" font-size="12">"#
        );
        let _ = writeln!(out, r#"<rect width="{width}" height="{height}" fill="white"/>"#);
        let _ = writeln!(
            out,
            r#"<text x="10" y="22" font-size="16" font-weight="bold">Content gaps: share of high-persona people without a persona pick</text>"#
        );
        let rates = if self.learned { "learned estimates" } else { "persona prior" };
        let _ = writeln!(
            out,
            r##"<text x="10" y="42" fill="#555">{} people, high = score ≥ {}, rates from the {rates}; n = people high on the persona</text>"##,
            self.sample, self.threshold
        );
        for (j, placement) in self.placements.iter().enumerate() {
            let x = label_w + j * cell_w + cell_w / 2;
            let _ = writeln!(
                out,
                r#"<text x="{x}" y="{}" text-anchor="middle" font-weight="bold">{}</text>"#,
                top - 8,
                xml(placement)
            );
        }
        for (i, persona) in self.personas.iter().enumerate() {
            let y = top + i * cell_h;
            let _ = writeln!(
                out,
                r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
                label_w - 8,
                y + cell_h / 2 + 4,
                xml(persona)
            );
            for (j, placement) in self.placements.iter().enumerate() {
                let x = label_w + j * cell_w;
                let (fill, label) = match self.gap(persona, placement) {
                    None => ("#e0e0e0".to_owned(), "–".to_owned()),
                    Some((high, gap)) => (heat(gap), format!("{:.0}% · n={high}", 100.0 * gap)),
                };
                let _ = writeln!(
                    out,
                    r#"<rect x="{x}" y="{y}" width="{cell_w}" height="{cell_h}" fill="{fill}" stroke="white"/><text x="{}" y="{}" text-anchor="middle">{}</text>"#,
                    x + cell_w / 2,
                    y + cell_h / 2 + 4,
                    xml(&label)
                );
            }
        }
        let y = top + cell_h * self.personas.len() + 20;
        for (k, share) in [0.0, 0.25, 0.5, 0.75, 1.0].iter().enumerate() {
            let x = label_w + k * 70;
            let _ = writeln!(
                out,
                r##"<rect x="{x}" y="{y}" width="18" height="14" fill="{}" stroke="#999"/><text x="{}" y="{}">{:.0}%</text>"##,
                heat(*share),
                x + 24,
                y + 11,
                100.0 * share
            );
        }
        out.push_str("</svg>\n");
        out
    }
}

/// White (0) to red (1).
fn heat(share: f64) -> String {
    let s = share.clamp(0.0, 1.0);
    let fade = |full: f64| (255.0 - (255.0 - full) * s).round() as u8;
    format!("#{:02x}{:02x}{:02x}", fade(214.0), fade(39.0), fade(40.0))
}

fn xml(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

fn clip(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_owned()
    } else {
        let mut s: String = text.chars().take(width - 1).collect();
        s.push('…');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heat_runs_white_to_red() {
        assert_eq!(heat(0.0), "#ffffff");
        assert_eq!(heat(1.0), "#d62728");
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(xml("Wellness & Spa <b>"), "Wellness &amp; Spa &lt;b&gt;");
        assert_eq!(csv_field("a,\"b\""), "\"a,\"\"b\"\"\"");
        assert_eq!(csv_field("plain"), "plain");
    }
}
