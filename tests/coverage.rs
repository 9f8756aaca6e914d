//! The content-gap report on a small catalog whose every figure is worked out by hand.

use std::sync::Arc;

use persona_engine::coverage::{self, CoverageCell, CoverageReport, DeadReason};
use persona_engine::learn::{CreativeStats, ModelEntry, SnapshotKind, SNAPSHOT_FORMAT, SNAPSHOT_VERSION};
use persona_engine::{
    Catalog, Context, Counts, DataClass, DataClasses, Device, Profile, SelectorConfig, StatsSnapshot,
};

const NOW: i64 = 1_795_464_000;
const DAY: i64 = 86_400;

/// hero: a Luxury creative, a generic one (priority 1.2, so it wins only where no high
/// persona matches), a Beach one whose schedule has ended, a fallback.
/// side: a Family creative for mobile only, a generic one, and a Luxury/Beach one at
/// priority 0.01 that never wins.
const CATALOG: &str = r#"{
  "version": "gaps",
  "personas": ["Luxury", "Family", "Beach"],
  "placements": ["hero", "side"],
  "creatives": [
    {"id": "lux-hero", "placements": ["hero"], "personas": {"Luxury": 1.0}},
    {"id": "gen-hero", "placements": ["hero"], "priority": 1.2},
    {"id": "beach-hero-summer", "placements": ["hero"], "personas": {"Beach": 1.0},
     "schedule": {"start": "2026-06-01T00:00:00Z", "end": "2026-09-01T00:00:00Z"}},
    {"id": "hero-fallback", "placements": ["hero"], "fallback": true, "priority": 0.5},
    {"id": "fam-side-mobile", "placements": ["side"], "personas": {"Family": 1.0, "Beach": 0.2},
     "targeting": {"device": ["mobile"]}},
    {"id": "gen-side", "placements": ["side"], "priority": 1.2},
    {"id": "lux-side-weak", "placements": ["side"], "personas": {"Luxury": 1.0, "Beach": 0.5}, "priority": 0.01}
  ]
}"#;

fn catalog() -> Arc<Catalog> {
    Arc::new(Catalog::from_json(CATALOG).expect("test catalog compiles"))
}

fn person(cat: &Catalog, scores: &[(&str, u8)], device: Device, seed: u64) -> (Profile, Context) {
    let mut p = Profile::new(cat.menu().len(), NOW - 400 * DAY);
    p.visits = 50;
    p.consent = DataClasses::ALL;
    for &(name, s) in scores {
        p.set_score(cat.menu(), name, s, DataClasses::only(DataClass::Behavioral)).expect("known persona");
    }
    (p, Context::at(NOW).with_device(device).with_seed(seed))
}

/// 1 Luxury 9 (desktop), 2 Luxury 9 (mobile), 3 Luxury 8 + Family 9 (mobile),
/// 4 Family 9 (desktop), 5 Beach 9 (desktop), 6 Luxury 5, high on nothing (desktop),
/// 7 Luxury 9 who rejected the Luxury hero creative (desktop).
fn people(cat: &Catalog) -> Vec<(Profile, Context)> {
    let mut rejecter = person(cat, &[("Luxury", 9)], Device::Desktop, 7);
    let lux_hero = cat.creative("lux-hero").expect("in the catalog");
    rejecter.0.suppress(cat.creative_key(lux_hero).expect("has a key"));
    vec![
        person(cat, &[("Luxury", 9)], Device::Desktop, 1),
        person(cat, &[("Luxury", 9)], Device::Mobile, 2),
        person(cat, &[("Luxury", 8), ("Family", 9)], Device::Mobile, 3),
        person(cat, &[("Family", 9)], Device::Desktop, 4),
        person(cat, &[("Beach", 9)], Device::Desktop, 5),
        person(cat, &[("Luxury", 5)], Device::Desktop, 6),
        rejecter,
    ]
}

fn report() -> CoverageReport {
    let cat = catalog();
    let sample = people(&cat);
    coverage::report(cat, SelectorConfig::default(), &sample, None).expect("report builds")
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

fn logit(p: f64) -> f64 {
    (p / (1.0 - p)).ln()
}

/// The persona prior of a primary tag of weight 1 for score `s` (defaults: 1 %, 5 %).
fn prior(s: f64) -> f64 {
    let base = logit(0.01);
    sigmoid(base + (logit(0.05) - base) * s / 9.0)
}

fn cell<'a>(
    r: &'a CoverageReport,
    persona: &str,
    placement: &str,
    device: Option<Device>,
) -> &'a CoverageCell {
    r.cells
        .iter()
        .find(|c| c.persona == persona && c.placement == placement && c.device == device)
        .unwrap_or_else(|| panic!("no cell {persona} × {placement} × {device:?}"))
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

/// (high, speaking, persona, off, generic, fallback) of a cell.
fn counts(c: &CoverageCell) -> (usize, usize, usize, usize, usize, usize) {
    (c.high, c.speaking, c.persona_picks, c.off_persona, c.generic, c.fallback)
}

#[test]
fn shares_and_pick_classes_are_counted_per_persona_placement_and_device() {
    let r = report();
    assert_eq!(r.sample, 7);
    assert!(!r.learned);
    // hero has no device targeting: one cell per persona over all seven people. The
    // one who rejected the Luxury creative gets the generic one; the well-served rate
    // is the other three's.
    let lux = cell(&r, "Luxury", "hero", None);
    assert_eq!((lux.people, lux.high), (7, 4));
    assert_eq!(counts(lux), (4, 1, 3, 0, 1, 0));
    assert!(close(lux.served_rate, (0.05 + 0.05 + prior(8.0)) / 3.0));
    assert!(!lux.target_from_prior);
    assert!(close(lux.target_rate, lux.served_rate));
    assert!(close(lux.unserved_rate, 0.01));
    assert!(close(lux.gain, (0.05 + 0.05 + prior(8.0)) / 3.0 - 0.01));
    // Family in hero: nothing speaks to it; the Luxury-8 parent gets the Luxury
    // creative (off-persona), the other parent the generic one.
    let fam = cell(&r, "Family", "hero", None);
    assert_eq!(counts(fam), (2, 0, 0, 1, 1, 0));
    assert!(close(fam.unserved_rate, (prior(8.0) + 0.01) / 2.0));
    assert!(fam.target_from_prior);
    assert!(close(fam.target_rate, 0.05));
    assert!(close(fam.gain, 2.0 * (0.05 - (prior(8.0) + 0.01) / 2.0)));
    // Beach in hero: its creative's schedule has ended, so it speaks to nobody.
    assert_eq!(counts(cell(&r, "Beach", "hero", None)), (1, 0, 0, 0, 1, 0));

    // side is split by device: the Family creative targets mobile only.
    assert!(r.cells.iter().all(|c| c.placement != "side" || c.device.is_some()));
    let fam_desktop = cell(&r, "Family", "side", Some(Device::Desktop));
    assert_eq!((fam_desktop.people, fam_desktop.share()), (5, 0.2));
    assert_eq!(counts(fam_desktop), (1, 0, 0, 0, 1, 0));
    let fam_mobile = cell(&r, "Family", "side", Some(Device::Mobile));
    assert_eq!((fam_mobile.people, fam_mobile.share()), (2, 0.5));
    assert_eq!(counts(fam_mobile), (1, 1, 1, 0, 0, 0));
    // The weak Luxury creative is eligible but loses to the generic one.
    assert_eq!(counts(cell(&r, "Luxury", "side", Some(Device::Desktop))), (2, 1, 0, 0, 2, 0));
    let lux_mobile = cell(&r, "Luxury", "side", Some(Device::Mobile));
    assert_eq!(counts(lux_mobile), (2, 1, 0, 1, 1, 0));
    assert!(close(lux_mobile.unserved_rate, (0.01 + 0.05) / 2.0));
    assert!(close(lux_mobile.target_rate, (0.05 + prior(8.0)) / 2.0));
    // Beach on desktop: the weak creative speaks to it as a secondary tag.
    assert_eq!(counts(cell(&r, "Beach", "side", Some(Device::Desktop))), (1, 1, 0, 0, 1, 0));
    assert_eq!(cell(&r, "Beach", "side", Some(Device::Mobile)).high, 0);
    // No slice for devices nobody in the sample used.
    assert!(r.cells.iter().all(|c| !matches!(c.device, Some(Device::Tablet | Device::Tv | Device::Unknown))));
    assert_eq!(r.cells.len(), 3 * 3);
}

#[test]
fn add_creatives_here_first_ranks_by_gain() {
    let r = report();
    let ranked: Vec<(&str, &str, Option<Device>)> = r
        .ranked
        .iter()
        .map(|&i| (r.cells[i].persona.as_str(), r.cells[i].placement.as_str(), r.cells[i].device))
        .collect();
    // In clicks per 100 impressions: Luxury × side × desktop 2 × (5 − 1) = 8;
    // Family × hero 2 × (5 − (4.2 + 1)/2) = 4.8; three cells of one person at 5 − 1 = 4
    // tie in cell order; Luxury × hero (5 + 5 + 4.2)/3 − 1 = 3.73; Luxury × side ×
    // mobile 2 × ((5 + 4.2)/2 − (1 + 5)/2) = 3.2.
    assert_eq!(
        ranked,
        vec![
            ("Luxury", "side", Some(Device::Desktop)),
            ("Family", "hero", None),
            ("Family", "side", Some(Device::Desktop)),
            ("Beach", "hero", None),
            ("Beach", "side", Some(Device::Desktop)),
            ("Luxury", "hero", None),
            ("Luxury", "side", Some(Device::Mobile)),
        ]
    );
    let gains: Vec<f64> = r.ranked.iter().map(|&i| (r.cells[i].gain * 1e4).round() / 1e4).collect();
    assert_eq!(gains, vec![0.08, 0.048, 0.04, 0.04, 0.04, 0.0373, 0.032]);
    assert!(close(r.cells[r.ranked[6]].gain, prior(8.0) - 0.01));
}

#[test]
fn dead_content_lists_never_eligible_and_never_picked_but_not_fallbacks() {
    let r = report();
    let dead: Vec<(&str, DeadReason, usize)> =
        r.dead.iter().map(|d| (d.creative.as_str(), d.reason, d.eligible)).collect();
    assert_eq!(
        dead,
        vec![
            ("beach-hero-summer", DeadReason::NeverEligible, 0),
            ("lux-side-weak", DeadReason::NeverPicked, 7)
        ]
    );
}

fn snapshot_entry(creative: &str, persona: &str, eta: f64, precision: f64) -> ModelEntry {
    let scale = f64::from(1u32 << 24);
    ModelEntry {
        scope: "creative".into(),
        name: creative.into(),
        feature: format!("segment:{persona}"),
        eta: (eta * scale) as i64,
        precision: (precision * scale) as i64,
    }
}

#[test]
fn tag_audit_flags_creatives_that_learn_best_with_another_persona() {
    let cat = catalog();
    let sample = people(&cat);
    let beach = Counts { impressions: 120, clicks: 9, ..Counts::default() };
    // With a cross prior sd of 0.4 (set below), the prior precision of a segment weight
    // is 1 / 0.4² = 6.25, so the posterior mean is eta / (6.25 + precision):
    // 2 / 10 = 0.2, −1 / 10 = −0.1, and so on.
    let snapshot = StatsSnapshot {
        format: SNAPSHOT_FORMAT.into(),
        version: SNAPSHOT_VERSION,
        kind: SnapshotKind::Full,
        catalog_version: "gaps".into(),
        creatives: vec![(
            "lux-hero".into(),
            CreativeStats { segments: vec![("Beach".into(), beach)], ..CreativeStats::default() },
        )],
        model: vec![
            snapshot_entry("lux-hero", "Beach", 2.0, 3.75),
            snapshot_entry("lux-hero", "Luxury", -1.0, 3.75),
            snapshot_entry("lux-side-weak", "Beach", 5.0, 3.75),
            snapshot_entry("lux-side-weak", "Luxury", 1.0, 3.75),
            // Best with its primary tag: not flagged.
            snapshot_entry("beach-hero-summer", "Beach", 2.0, 3.75),
            snapshot_entry("beach-hero-summer", "Luxury", 1.0, 3.75),
            // Beach beats Family by 0.2 log-odds, less than the margin: not flagged.
            snapshot_entry("fam-side-mobile", "Family", 1.0, 3.75),
            snapshot_entry("fam-side-mobile", "Beach", 3.0, 3.75),
            // Untagged: nothing to contradict.
            snapshot_entry("gen-hero", "Family", 4.0, 3.75),
            // The "no persona" segment is not a persona.
            snapshot_entry("fam-side-mobile", "(none)", 9.0, 3.75),
        ],
    };
    let mut config = SelectorConfig::default();
    config.learning.prior_sd_cross = 0.4;
    config.learning.learn_spread = false;
    let r = coverage::report(cat, config, &sample, Some(&snapshot)).expect("report builds");
    assert!(r.learned);
    let audit: Vec<(&str, &str, &str, bool, u64)> = r
        .audit
        .iter()
        .map(|f| (f.creative.as_str(), f.tagged.as_str(), f.best.as_str(), f.best_is_tag, f.best_impressions))
        .collect();
    assert_eq!(
        audit,
        vec![("lux-side-weak", "Luxury", "Beach", true, 0), ("lux-hero", "Luxury", "Beach", false, 120)],
        "largest contradiction first"
    );
    assert!(close(r.audit[0].best_weight, 0.5) && close(r.audit[0].tagged_weight, 0.1));
    assert!(close(r.audit[1].best_weight, 0.2) && close(r.audit[1].tagged_weight, -0.1));
    assert_eq!(coverage::TAG_AUDIT_MARGIN, 0.25);
    assert!(r.table(10).contains("lux-hero"));
    // Rates are now the selector's estimates: Luxury × hero's served rate is the mean
    // estimate of the three Luxury picks there.
    let selector = persona_engine::Selector::new(catalog(), config).expect("selector");
    let _report = selector.load_stats(&snapshot).expect("loads");
    let hero = selector.placement("hero").expect("hero");
    let mut picks = selector.new_selection(1);
    let mut estimates = 0.0;
    for (profile, context) in &sample[..3] {
        selector.select(profile, context, hero, &mut picks).expect("selects");
        assert_eq!(selector.catalog().creative_id(picks.picks()[0].creative), "lux-hero");
        estimates += f64::from(picks.picks()[0].reason.estimate);
    }
    let lux = cell(&r, "Luxury", "hero", None);
    assert!(close(lux.served_rate, estimates / 3.0), "{} vs {}", lux.served_rate, estimates / 3.0);
    assert!(!close(lux.served_rate, report().cells[0].served_rate), "learned rates differ from the prior");
    // Without statistics there is no audit.
    assert!(report().audit.is_empty());
}

/// A full snapshot with the overall counts of `creatives`, for catalog version `version`.
fn snapshot_of(version: &str, creatives: &[&str]) -> StatsSnapshot {
    let overall = Counts { impressions: 400, clicks: 20, ..Counts::default() };
    StatsSnapshot {
        format: SNAPSHOT_FORMAT.into(),
        version: SNAPSHOT_VERSION,
        kind: SnapshotKind::Full,
        catalog_version: version.into(),
        creatives: creatives
            .iter()
            .map(|&id| (id.to_owned(), CreativeStats { overall, ..CreativeStats::default() }))
            .collect(),
        model: Vec::new(),
    }
}

#[test]
fn snapshot_creatives_the_catalog_lacks_are_counted_and_warned_about() {
    let cat = catalog();
    let sample = people(&cat);
    let snapshot =
        snapshot_of("gaps", &["lux-hero", "lux-hero-2025", "gen-hero-old", "side-retired", "spring"]);
    let r =
        coverage::report(cat, SelectorConfig::default(), &sample, Some(&snapshot)).expect("report builds");
    assert!(r.learned);
    let load = r.stats_load.as_ref().expect("statistics were loaded");
    assert_eq!(load.creatives, 1);
    assert_eq!(load.unknown_creatives, vec!["lux-hero-2025", "gen-hero-old", "side-retired", "spring"]);
    let warning = "4 snapshot creatives are not in this catalog (e.g. 'lux-hero-2025', 'gen-hero-old', \
                   'side-retired'): their statistics are left out";
    assert_eq!(r.warnings(), vec![warning.to_owned()]);
    let table = r.table(3);
    assert!(table.lines().nth(1) == Some(&format!("warning: {warning}")[..]), "{table}");

    // A snapshot that matches fully warns about nothing; no snapshot, nothing either.
    let full = snapshot_of("gaps", &["lux-hero", "gen-hero"]);
    let r = coverage::report(catalog(), SelectorConfig::default(), &sample, Some(&full)).expect("builds");
    assert!(r.warnings().is_empty(), "{:?}", r.warnings());
    assert!(!r.table(3).contains("warning"));
    assert!(report().stats_load.is_none() && report().warnings().is_empty());
}

#[test]
fn a_snapshot_matching_no_creative_of_the_catalog_is_refused() {
    let cat = catalog();
    let sample = people(&cat);
    // Another catalog version renamed every creative.
    let renamed = snapshot_of("gaps-2025", &["lux-hero-2025", "gen-hero-2025"]);
    let err = coverage::report(cat.clone(), SelectorConfig::default(), &sample, Some(&renamed))
        .expect_err("nothing in the snapshot belongs to this catalog");
    let text = err.to_string();
    assert!(text.starts_with("stats snapshot: field 'creatives': "), "{text}");
    assert!(text.contains("none of its 2 creatives and 0 model weights is in this catalog"), "{text}");
    assert!(text.contains("(e.g. 'lux-hero-2025')"), "{text}");
    assert!(text.contains("catalog version 'gaps-2025', the catalog is 'gaps'"), "{text}");

    // Model weights alone that belong to the catalog are enough; an empty snapshot (a
    // fresh start) is not refused.
    let mut weights_only = snapshot_of("gaps", &[]);
    weights_only.model.push(snapshot_entry("lux-hero", "Beach", 2.0, 3.75));
    assert!(coverage::report(cat.clone(), SelectorConfig::default(), &sample, Some(&weights_only)).is_ok());
    let empty = snapshot_of("gaps", &[]);
    assert!(coverage::report(cat, SelectorConfig::default(), &sample, Some(&empty)).is_ok());
}

#[test]
fn outputs_render_every_cell() {
    let r = report();
    let csv = r.csv();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some(
            "persona,placement,device,people,high,share,speaking,persona_picks,off_persona,generic,fallback,\
             served_rate,unserved_rate,target_rate,target_from_prior,gain,rank"
        )
    );
    assert_eq!(csv.lines().count(), 1 + r.cells.len());
    assert!(csv.contains("\nFamily,hero,all,7,2,0.285714,0,0,1,1,0,0.000000,"), "{csv}");
    assert!(
        csv.lines().any(|l| l.starts_with("Family,hero,all,") && l.ends_with(",true,0.048027,2")),
        "{csv}"
    );

    let table = r.table(3);
    assert!(table.contains("7 people, high = score ≥ 7, click rates from the persona prior"), "{table}");
    assert!(table.contains("  1. Luxury"), "{table}");
    assert!(!table.contains("  4. "), "only the top 3 are listed:\n{table}");
    assert!(table.contains("beach-hero-summer                    never eligible"), "{table}");

    // Devices are summed on the heatmap.
    assert_eq!(r.gap("Luxury", "side"), Some((4, 1.0)));
    assert_eq!(r.gap("Family", "side"), Some((2, 0.5)));
    assert_eq!(r.gap("Beach", "side"), Some((1, 1.0)));
    assert_eq!(r.gap("Luxury", "hero"), Some((4, 0.25)));
    let svg = r.svg();
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    assert!(svg.trim_end().ends_with("</svg>"));
    // Background + 3 × 2 cells + 5 legend swatches.
    assert_eq!(svg.matches("<rect").count(), 1 + 6 + 5);
    assert!(svg.contains(">50% · n=2<"), "{svg}");
    assert!(svg.contains(r##"fill="#d62728""##), "a fully unserved cell is red");
}

#[test]
fn names_with_markup_are_escaped_in_svg_and_csv() {
    let json = CATALOG.replace("\"Beach\"", "\"Wellness & Spa, <Beach>\"");
    let cat = Arc::new(Catalog::from_json(&json).expect("compiles"));
    let sample = vec![person(&cat, &[("Wellness & Spa, <Beach>", 9)], Device::Desktop, 1)];
    let r = coverage::report(cat, SelectorConfig::default(), &sample, None).expect("report builds");
    assert!(r.svg().contains(">Wellness &amp; Spa, &lt;Beach&gt;<"));
    assert!(r.csv().contains("\n\"Wellness & Spa, <Beach>\",hero,all,"));
}

#[test]
fn bad_samples_are_refused_with_the_line_or_field() {
    let cat = catalog();
    let err = coverage::report(cat.clone(), SelectorConfig::default(), &[], None).expect_err("empty sample");
    assert!(err.to_string().contains("people"), "{err}");
    assert!(err.to_string().contains("the sample is empty"), "{err}");

    let other = Profile::new(5, NOW);
    let err = coverage::report(cat.clone(), SelectorConfig::default(), &[(other, Context::at(NOW))], None)
        .expect_err("wrong menu size");
    assert!(err.to_string().contains("people[0]"), "{err}");
    assert!(err.to_string().contains("5 persona scores; the menu has 3"), "{err}");

    let jsonl = "{\"persona_scores\": {\"Luxury\": {\"score\": 9}}, \"consent\": [\"behavioral\"]}\n\n\
                 {\"persona_scores\": {\"Nobody\": {\"score\": 9}}}\n";
    let err = coverage::read_profiles(cat.menu(), jsonl, NOW).expect_err("unknown persona");
    assert!(err.to_string().contains("line 3"), "{err}");
    assert!(err.to_string().contains("Nobody"), "{err}");
}

#[test]
fn json_lines_profiles_take_turns_on_devices() {
    let cat = catalog();
    let line = r#"{"persona_scores": {"Family": {"score": 9, "sources": ["behavioral"]}}, "consent": ["behavioral"], "first_seen": 1760000000, "visits": 50}"#;
    let jsonl = [line; 4].join("\n");
    let people = coverage::read_profiles(cat.menu(), &jsonl, NOW).expect("reads");
    let devices: Vec<Device> = people.iter().map(|(_, c)| c.device).collect();
    assert_eq!(devices, vec![Device::Desktop, Device::Mobile, Device::Tablet, Device::Desktop]);
    let r = coverage::report(cat, SelectorConfig::default(), &people, None).expect("report builds");
    // Only the mobile person reaches the Family creative on the side placement.
    assert_eq!(counts(cell(&r, "Family", "side", Some(Device::Mobile))), (1, 1, 1, 0, 0, 0));
    assert_eq!(counts(cell(&r, "Family", "side", Some(Device::Desktop))), (2, 0, 0, 0, 2, 0));
    assert_eq!(counts(cell(&r, "Family", "side", Some(Device::Tablet))), (1, 0, 0, 0, 1, 0));
}

/// The output quoted in docs/coverage.md is what the example prints
/// on the sample catalog with its default sample (1,000 synthetic people, seed 7).
#[test]
fn the_quoted_output_matches_the_sample_catalog() {
    let page = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/coverage.md"))
        .expect("docs/coverage.md");
    let section = page.split("--top 3` prints").nth(1).expect("docs/coverage.md quotes `--top 3`");
    let quoted = section.split("```text\n").nth(1).and_then(|t| t.split("```").next()).expect("a text block");
    let cat = persona_engine::sample::catalog().expect("sample catalog");
    let sample = coverage::synthetic_people(&cat, 1_000, 7);
    let r = coverage::report(Arc::new(cat), SelectorConfig::default(), &sample, None).expect("report builds");
    let table = r.table(3);
    for line in quoted.lines() {
        assert!(table.lines().any(|l| l == line), "quoted line not in the output: {line:?}\n{table}");
    }
    assert_eq!(quoted.lines().count(), 3);
}

#[test]
fn template_variants_are_dead_only_when_no_assembly_uses_them() {
    // hero holds template t alone: a Luxury headline, a generic one and one for TV only
    // (nobody in the sample is on a TV). side holds template u and a creative that always
    // wins there.
    let cat = Arc::new(
        Catalog::from_json(
            r#"{"personas": ["Luxury", "Family"], "placements": ["hero", "side"],
                "creatives": [{"id": "side-star", "placements": ["side"], "priority": 5}],
                "templates": [
                  {"id": "t", "placements": ["hero"], "slots": [{"name": "headline", "variants": [
                    {"id": "lux-h", "personas": {"Luxury": 1.0}},
                    {"id": "gen-h"},
                    {"id": "tv-h", "targeting": {"device": ["tv"]}}]}]},
                  {"id": "u", "placements": ["side"], "slots": [{"name": "s", "variants": [{"id": "u-gen"}]}]}]}"#,
        )
        .expect("compiles"),
    );
    let sample =
        vec![person(&cat, &[("Luxury", 9)], Device::Desktop, 1), person(&cat, &[], Device::Desktop, 2)];
    let r = coverage::report(cat, SelectorConfig::default(), &sample, None).expect("report builds");
    let dead: Vec<(&str, DeadReason, usize)> =
        r.dead.iter().map(|d| (d.creative.as_str(), d.reason, d.eligible)).collect();
    // The Luxury person's assembly uses lux-h, the other's gen-h: neither is dead.
    assert_eq!(
        dead,
        vec![
            ("t/tv-h", DeadReason::NeverEligible, 0),
            ("u", DeadReason::NeverPicked, 2),
            ("u/u-gen", DeadReason::NeverPicked, 2)
        ]
    );
}
