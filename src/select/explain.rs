//! Explaining a pick in one human-readable line: which persona, which rules, what was
//! learned. Off the hot path (it allocates).

use std::fmt::Write as _;

use super::*;

impl Selector {
    /// A one-line, human-readable explanation of a pick: which persona, which rules,
    /// what was learned, fallback or not. Names personas and rules, never raw personal
    /// data. Allocates; call it off the hot path.
    pub fn explain(&self, pick: &Pick) -> String {
        let cat = &*self.catalog;
        let r = &pick.reason;
        let mut out = String::new();
        let persona = |out: &mut String| {
            if let Some(p) = r.persona {
                let _ = write!(
                    out,
                    "persona '{}' (score {}/9), match {:.2}",
                    cat.menu.name(p),
                    r.persona_score,
                    r.persona_match
                );
            } else {
                out.push_str("no high persona matched");
            }
        };
        match r.kind {
            ReasonKind::Fallback => out.push_str("fallback: nothing else was eligible"),
            ReasonKind::Priority => out.push_str("no high persona matched; ranked by priority and context"),
            ReasonKind::PersonaMatch => persona(&mut out),
            ReasonKind::Learned => {
                persona(&mut out);
                let _ = write!(
                    out,
                    "; learned click rate {:.2}% from {:.0} impressions",
                    r.estimate * 100.0,
                    r.evidence
                );
            }
            ReasonKind::Exploring => {
                persona(&mut out);
                let _ = write!(out, "; exploring (probability {:.2})", pick.propensity);
            }
        }
        if r.targeted {
            let _ = write!(out, "; targeting held ({})", self.targeting_dimensions(pick.creative));
        }
        if r.boosts_matched != 0 {
            let _ = write!(out, "; context boost x{:.2}", r.context_boost);
        }
        if r.fatigue < 1.0 {
            let _ = write!(out, "; fatigue x{:.2}", r.fatigue);
        }
        let _ =
            write!(out, "; priority {}", cat.rules.get(pick.creative.index()).map_or(0.0, |x| x.priority));
        let refused = self.stats.overflow();
        if refused > 0 {
            let _ =
                write!(out, "; learning table full: {refused} events refused (raise learning.segment_cells)");
        }
        out
    }

    pub(super) fn targeting_dimensions(&self, creative: CreativeId) -> String {
        let cat = &*self.catalog;
        let Some(c) = cat.rules.get(creative.index()).and_then(|r| cat.conditions.get(r.targeting as usize))
        else {
            return String::new();
        };
        let mut dims: Vec<&str> = Vec::new();
        for (mask, name) in [
            (c.device, "device"),
            (c.channel, "channel"),
            (c.daypart, "daypart"),
            (c.weekday, "weekday"),
            (c.weather, "weather"),
        ] {
            if mask != u8::MAX {
                dims.push(name);
            }
        }
        if c.region_in.len > 0 || c.region_not.len > 0 {
            dims.push("region");
        }
        if c.attributes.len > 0 {
            dims.push("attributes");
        }
        dims.join(", ")
    }
}
