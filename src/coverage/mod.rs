//! The content-gap report: for which personas and placements the catalog lacks
//! material, and what that is estimated to cost. Runs the real selector for every
//! person of a sample, off the hot path; it never records anything, so nothing is
//! learned while it runs.
//!
//! Figures (see docs/coverage.md):
//! - a cell is (persona, placement), split by device when a candidate of the
//!   placement is targeted by device; a person is *high* on a persona when the
//!   selector counts it (score ≥ threshold with consent to its sources, or a declared
//!   like; a declared dislike never counts);
//! - each high person's top pick is a *persona* pick (it is tagged with the cell's
//!   persona, weight > 0), *off-persona* (tagged with another of their high personas),
//!   *generic* (matches none of them) or *fallback* (the placement's fallback, or
//!   nothing);
//! - the click rate of a pick is the selector's estimate (`reason.estimate`) when
//!   statistics are loaded and the policy learns, else the persona prior the learner
//!   starts from: `σ(logit(ctr_no_match) + w·β·s/9)` for the primary tag's weight `w`
//!   and the person's score `s` on it when `s ≥ threshold`;
//! - gain of one more good creative = unserved people × (well-served rate − their
//!   mean rate), in expected clicks per impression of every sampled person.

use std::sync::Arc;

mod render;

use crate::catalog::{Catalog, CreativeId, PlacementId, NONE};
use crate::context::{Context, Device};
use crate::error::{quote, Error, Result};
use crate::learn::model::{sigmoid, SCALE};
use crate::learn::{LoadReport, Policy, StatsSnapshot};
use crate::persona::{PersonaId, PersonaMenu};
use crate::profile::Profile;
use crate::select::{ReasonKind, Selector, SelectorConfig};

/// How far (in log-odds) a creative's best learned segment must beat its primary tag's
/// before the tag audit lists it: 0.25 is about 28 % better odds, well above what a
/// few hundred impressions of noise move a segment weight.
pub const TAG_AUDIT_MARGIN: f64 = 0.25;

/// Device bits of every device a rule can name.
const ALL_DEVICES: u8 = 0b1_1111;

/// One persona × placement (× device) cell of the report.
#[derive(Clone, Debug, PartialEq)]
pub struct CoverageCell {
    /// The persona's name.
    pub persona: String,
    /// The placement's name.
    pub placement: String,
    /// The device slice, when the placement's targeting splits by device; `None` for
    /// every device.
    pub device: Option<Device>,
    /// Sampled people in this slice (all of the sample, or those on this device).
    pub people: usize,
    /// Of those, people high on the persona.
    pub high: usize,
    /// Creatives tagged with the persona (weight > 0) that at least one of the high
    /// people was eligible for.
    pub speaking: usize,
    /// High people whose top pick is tagged with the persona.
    pub persona_picks: usize,
    /// High people whose top pick speaks to another of their high personas instead.
    pub off_persona: usize,
    /// High people whose top pick matches none of their high personas.
    pub generic: usize,
    /// High people who got the placement's fallback (or nothing).
    pub fallback: usize,
    /// Mean estimated click rate of the people with a persona pick (0 when none).
    pub served_rate: f64,
    /// Mean estimated click rate of the others (0 when none).
    pub unserved_rate: f64,
    /// The well-served rate the gain aims at: `served_rate` when someone here is well
    /// served, else the persona prior of a new creative tagged with the persona alone
    /// (weight 1), averaged over the unserved people.
    pub target_rate: f64,
    /// True when `target_rate` comes from the prior (nobody here is well served).
    pub target_from_prior: bool,
    /// Estimated gain of one more good creative: `(high − persona_picks) ·
    /// max(0, target_rate − unserved_rate)`, in expected clicks when every sampled
    /// person sees the placement once.
    pub gain: f64,
}

impl CoverageCell {
    /// High people without a persona pick.
    pub fn unserved(&self) -> usize {
        self.high - self.persona_picks
    }

    /// Share of the slice that is high on the persona (0 for an empty slice).
    pub fn share(&self) -> f64 {
        ratio(self.high, self.people)
    }
}

/// Why a creative is listed as dead content.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeadReason {
    /// Nobody in the sample was eligible for it in any of its placements.
    NeverEligible,
    /// Some were eligible, but it was nobody's top pick.
    NeverPicked,
}

impl DeadReason {
    /// A short name for tables.
    pub fn name(self) -> &'static str {
        match self {
            DeadReason::NeverEligible => "never eligible",
            DeadReason::NeverPicked => "never picked",
        }
    }
}

/// A creative (not a fallback) that the sample never sees. A template variant counts as
/// eligible where it is part of its template's assembly for the request, and as picked
/// where it is part of the top pick's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadCreative {
    /// Its id.
    pub creative: String,
    /// Why it is dead.
    pub reason: DeadReason,
    /// (person, placement) requests for which it was eligible.
    pub eligible: usize,
}

/// A tag that learning contradicts: the creative's learned creative × segment weights
/// are highest for a persona other than its primary tag, by at least
/// [`TAG_AUDIT_MARGIN`].
#[derive(Clone, Debug, PartialEq)]
pub struct TagFinding {
    /// The creative's id.
    pub creative: String,
    /// Its primary tag (highest weight).
    pub tagged: String,
    /// The segment whose learned weight is highest.
    pub best: String,
    /// True when `best` is one of its (secondary) tags.
    pub best_is_tag: bool,
    /// Posterior mean of the creative × segment weight for `tagged` (log-odds; 0 when no
    /// data moved it).
    pub tagged_weight: f64,
    /// Posterior mean for `best` (log-odds).
    pub best_weight: f64,
    /// Impressions the snapshot counts for the creative in segment `best`.
    pub best_impressions: u64,
}

/// The whole report. Render it with [`CoverageReport::table`], [`CoverageReport::csv`]
/// and [`CoverageReport::svg`].
#[derive(Clone, Debug, PartialEq)]
pub struct CoverageReport {
    /// People in the sample.
    pub sample: usize,
    /// The high-score threshold used.
    pub threshold: u8,
    /// True when click rates are learned estimates, false when they are the prior.
    pub learned: bool,
    /// What loading the statistics snapshot applied and left out (`None` without
    /// statistics). Creatives, segments and model weights this catalog lacks inform
    /// neither the rates nor the tag audit; [`CoverageReport::warnings`] says so.
    pub stats_load: Option<LoadReport>,
    /// Every cell, by persona (menu order), placement (catalog order), device.
    pub cells: Vec<CoverageCell>,
    /// Indexes into `cells` with a positive gain, largest gain first (ties: cell order).
    pub ranked: Vec<usize>,
    /// Dead content, in catalog order.
    pub dead: Vec<DeadCreative>,
    /// Tags learning contradicts (only with statistics), largest contradiction first
    /// (ties: catalog order).
    pub audit: Vec<TagFinding>,
    personas: Vec<String>,
    placements: Vec<String>,
}

/// Per-cell tallies while the sample runs.
#[derive(Clone, Debug, Default)]
struct Tally {
    people: usize,
    high: usize,
    persona: usize,
    off: usize,
    generic: usize,
    fallback: usize,
    served_sum: f64,
    unserved_sum: f64,
    prior_target_sum: f64,
    /// Tagged creatives some high person here was eligible for (sorted ids).
    speaking: Vec<u32>,
}

/// Devices a split placement is reported by (slice index = `Device as usize`).
const DEVICES: [Device; 5] = [Device::Unknown, Device::Desktop, Device::Mobile, Device::Tablet, Device::Tv];

/// Builds the report for `people` (each with the moment of their request) over
/// `catalog` with `config`. With `stats`, a fresh selector loads them first, rates
/// are its estimates and the tag audit runs; the caller's selectors are never touched.
///
/// Statistics of creatives (segments, model weights) the catalog lacks are left out and
/// counted in [`CoverageReport::stats_load`].
///
/// Errors: an empty sample, a profile sized for another persona menu, statistics that
/// do not load, statistics none of which belongs to this catalog (a snapshot of another
/// catalog or catalog version: every rate would be the prior while claiming to be
/// learned).
pub fn report(
    catalog: Arc<Catalog>,
    config: SelectorConfig,
    people: &[(Profile, Context)],
    stats: Option<&StatsSnapshot>,
) -> Result<CoverageReport> {
    if people.is_empty() {
        return Err(Error::invalid(
            "coverage report",
            "people",
            "the sample is empty: give at least one profile",
        ));
    }
    let selector = Selector::new(catalog, config)?;
    let stats_load = match stats {
        Some(snapshot) => {
            let load = selector.load_stats(snapshot)?;
            check_matches_catalog(&selector, snapshot, &load)?;
            Some(load)
        }
        None => None,
    };
    let learned = stats.is_some() && config.learning.policy != Policy::Rules;
    let cat = selector.catalog();
    let personas = cat.menu.len();
    for (i, (profile, _)) in people.iter().enumerate() {
        if profile.scores.len() != personas {
            return Err(Error::invalid(
                "coverage report",
                format!("people[{i}]"),
                format!("the profile has {} persona scores; the menu has {personas}", profile.scores.len()),
            ));
        }
    }
    let placements = cat.placements.len();
    let split: Vec<bool> = cat.placements.iter().map(|p| splits_by_device(cat, &p.candidates)).collect();
    let slices = DEVICES.len();
    let mut tallies = vec![Tally::default(); personas * placements * slices];
    let mut eligible = vec![0usize; cat.len()];
    let mut picked = vec![0usize; cat.len()];
    let mut pick_sel = selector.new_selection(1);
    let mut scan_sel = selector.new_selection(1);
    let (mut weights, mut scores, mut ranks) = (Vec::new(), Vec::new(), Vec::new());
    let mut is_eligible = vec![false; cat.len()];
    let mut eligible_list: Vec<CreativeId> = Vec::new();

    for (profile, context) in people {
        selector.persona_weights(profile, &mut weights);
        selector.person_scores(profile, &mut scores, &mut ranks);
        for (pl, place) in cat.placements.iter().enumerate() {
            let placement = PlacementId(pl as u16);
            let slice = if split[pl] { context.device as usize } else { 0 };
            // Every creative this person may see here: pick, exclude, repeat.
            eligible_list.clear();
            scan_sel.clear_exclusions();
            for _ in 0..place.candidates.len() {
                selector.select(profile, context, placement, &mut scan_sel)?;
                match scan_sel.picks().first().copied() {
                    Some(p) if p.reason.kind != ReasonKind::Fallback => {
                        eligible_list.push(p.creative);
                        // A template's variants are never candidates on their own: one
                        // counts as eligible where it is part of its template's assembly.
                        if let Some(assembly) = scan_sel.assembly(&p) {
                            eligible_list.extend(assembly.slots().iter().map(|s| s.variant));
                        }
                        scan_sel.exclude(p.creative);
                    }
                    _ => break,
                }
            }
            for &c in &eligible_list {
                eligible[c.index()] += 1;
                is_eligible[c.index()] = true;
            }
            selector.select(profile, context, placement, &mut pick_sel)?;
            let pick = pick_sel.picks().first().copied();
            if let Some(p) = pick {
                if p.reason.kind != ReasonKind::Fallback {
                    picked[p.creative.index()] += 1;
                    // A variant is picked when it is in the top pick's assembly.
                    if let Some(assembly) = pick_sel.assembly(&p) {
                        for slot in assembly.slots() {
                            picked[slot.variant.index()] += 1;
                        }
                    }
                }
            }
            let rate = match pick {
                None => 0.0,
                Some(p) if learned && p.reason.kind != ReasonKind::Fallback => f64::from(p.reason.estimate),
                Some(p) => prior_rate(&selector, p.creative, &scores),
            };
            for (persona, &w) in weights.iter().enumerate() {
                let t = &mut tallies[(persona * placements + pl) * slices + slice];
                t.people += 1;
                if w <= 0.0 {
                    continue;
                }
                t.high += 1;
                for &c in place.tagged(persona) {
                    if is_eligible[c.index()] {
                        if let Err(at) = t.speaking.binary_search(&c.0) {
                            t.speaking.insert(at, c.0);
                        }
                    }
                }
                let class = match pick {
                    None => Class::Fallback,
                    Some(p) if p.reason.kind == ReasonKind::Fallback => Class::Fallback,
                    Some(p) if speaks_to(cat, p.creative, PersonaId(persona as u16)) => Class::Persona,
                    Some(p) if cat.tags(p.creative).any(|(q, tw)| tw > 0.0 && weights[q.index()] > 0.0) => {
                        Class::Off
                    }
                    Some(_) => Class::Generic,
                };
                match class {
                    Class::Persona => {
                        t.persona += 1;
                        t.served_sum += rate;
                    }
                    other => {
                        match other {
                            Class::Off => t.off += 1,
                            Class::Generic => t.generic += 1,
                            _ => t.fallback += 1,
                        }
                        t.unserved_sum += rate;
                        let s = scores.get(persona).copied().unwrap_or(0);
                        t.prior_target_sum += rate_of(&selector, 1.0, s);
                    }
                }
            }
            for &c in &eligible_list {
                is_eligible[c.index()] = false;
            }
        }
    }

    let mut cells = Vec::new();
    for persona in 0..personas {
        for pl in 0..placements {
            let devices: &[Device] = if split[pl] { &DEVICES } else { &DEVICES[..1] };
            for &device in devices {
                let t = &tallies[(persona * placements + pl) * slices + device as usize];
                if split[pl] && t.people == 0 {
                    continue;
                }
                cells.push(cell(cat, persona, pl, split[pl].then_some(device), t));
            }
        }
    }
    let mut ranked: Vec<usize> = (0..cells.len()).filter(|&i| cells[i].gain > 0.0).collect();
    ranked.sort_by(|&a, &b| cells[b].gain.total_cmp(&cells[a].gain).then(a.cmp(&b)));

    let mut dead = Vec::new();
    for c in 0..cat.len() {
        let id = CreativeId(c as u32);
        if cat.is_fallback(id) || picked[c] > 0 {
            continue;
        }
        let reason = if eligible[c] == 0 { DeadReason::NeverEligible } else { DeadReason::NeverPicked };
        dead.push(DeadCreative { creative: cat.creative_id(id).to_owned(), reason, eligible: eligible[c] });
    }
    let audit = match stats {
        Some(snapshot) => tag_audit(&selector, snapshot),
        None => Vec::new(),
    };
    Ok(CoverageReport {
        sample: people.len(),
        threshold: config.threshold,
        learned,
        stats_load,
        cells,
        ranked,
        dead,
        audit,
        personas: cat.menu.names().to_vec(),
        placements: cat.placements.iter().map(|p| p.name.clone()).collect(),
    })
}

/// Refuses a non-empty snapshot of which nothing applies to the catalog: no creative
/// and no model weight it names is in the catalog.
fn check_matches_catalog(selector: &Selector, snapshot: &StatsSnapshot, load: &LoadReport) -> Result<()> {
    let empty = snapshot.creatives.is_empty() && snapshot.model.is_empty();
    let model_applied = load.unknown_model_entries < snapshot.model.len();
    if empty || load.creatives > 0 || model_applied {
        return Ok(());
    }
    let example =
        load.unknown_creatives.first().map(|id| format!(" (e.g. '{}')", quote(id))).unwrap_or_default();
    Err(Error::invalid(
        "stats snapshot",
        "creatives",
        format!(
            "none of its {} creatives and {} model weights is in this catalog{example}: the snapshot is of \
             catalog version '{}', the catalog is '{}'",
            snapshot.creatives.len(),
            snapshot.model.len(),
            quote(&snapshot.catalog_version),
            quote(selector.catalog().version())
        ),
    ))
}

/// Devices given in turn to the profiles of a JSON Lines sample (line 1 desktop, line 2
/// mobile, line 3 tablet, …), since a `ProfileSpec` carries no moment.
pub const SAMPLE_DEVICES: [Device; 3] = [Device::Desktop, Device::Mobile, Device::Tablet];

/// Reads a sample of profiles, one [`ProfileSpec`](crate::ProfileSpec) JSON object per
/// line (blank lines skipped), each paired with a moment: time `at`, the device of
/// [`SAMPLE_DEVICES`] in turn, and the line number as the seed (so a report is
/// replayable). Errors name the line.
pub fn read_profiles(menu: &PersonaMenu, text: &str, at: i64) -> Result<Vec<(Profile, Context)>> {
    let mut people = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let profile = Profile::from_json(menu, line)
            .map_err(|e| Error::invalid("profile sample", format!("line {}", i + 1), e.to_string()))?;
        let device = SAMPLE_DEVICES[people.len() % SAMPLE_DEVICES.len()];
        people.push((profile, Context::at(at).with_device(device).with_seed(i as u64 + 1)));
    }
    Ok(people)
}

/// `n` synthetic people for `catalog`'s persona menu (see
/// [`Synthetic::people`](crate::sample::Synthetic::people)): 1–4 high personas each,
/// varied consent, relationship stage, device, daypart and weather. The same seed
/// gives the same people.
pub fn synthetic_people(catalog: &Catalog, n: usize, seed: u64) -> Vec<(Profile, Context)> {
    crate::sample::Synthetic { personas: catalog.menu().len(), placements: 1, creatives: 0, seed }.people(n)
}

/// How a high person's top pick serves a cell's persona.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Persona,
    Off,
    Generic,
    Fallback,
}

fn cell(cat: &Catalog, persona: usize, placement: usize, device: Option<Device>, t: &Tally) -> CoverageCell {
    let unserved = t.high - t.persona;
    let served_rate = mean(t.served_sum, t.persona);
    let unserved_rate = mean(t.unserved_sum, unserved);
    let target_from_prior = t.persona == 0;
    let target_rate = if target_from_prior { mean(t.prior_target_sum, unserved) } else { served_rate };
    let gain = unserved as f64 * (target_rate - unserved_rate).max(0.0);
    CoverageCell {
        persona: cat.menu.name(PersonaId(persona as u16)).to_owned(),
        placement: cat.placements[placement].name.clone(),
        device,
        people: t.people,
        high: t.high,
        speaking: t.speaking.len(),
        persona_picks: t.persona,
        off_persona: t.off,
        generic: t.generic,
        fallback: t.fallback,
        served_rate,
        unserved_rate,
        target_rate,
        target_from_prior,
        gain,
    }
}

fn mean(sum: f64, n: usize) -> f64 {
    if n == 0 {
        0.0
    } else {
        sum / n as f64
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// True when some candidate's targeting rule restricts the device.
fn splits_by_device(cat: &Catalog, candidates: &[CreativeId]) -> bool {
    candidates.iter().any(|c| {
        let r = &cat.rules[c.index()];
        r.targeting != NONE
            && cat
                .conditions
                .get(r.targeting as usize)
                .is_some_and(|cond| cond.device & ALL_DEVICES != ALL_DEVICES)
    })
}

/// True when `creative` is tagged with `persona` at a weight above 0.
fn speaks_to(cat: &Catalog, creative: CreativeId, persona: PersonaId) -> bool {
    cat.tags(creative).any(|(p, w)| p == persona && w > 0.0)
}

/// The persona prior click rate of `creative` for a person with counted `scores`:
/// the learner's starting point (its best single persona match; see
/// `learn::features::prior_lift`).
fn prior_rate(selector: &Selector, creative: CreativeId, scores: &[u8]) -> f64 {
    let prior = &selector.prior;
    let lift = crate::learn::features::prior_lift(selector.catalog(), creative.index(), scores, prior);
    sigmoid(prior.base + lift)
}

fn rate_of(selector: &Selector, w: f64, s: u8) -> f64 {
    let prior = &selector.prior;
    sigmoid(prior.base + prior.tag_lift(w, s))
}

/// Creatives whose learned creative × segment weight is highest for a persona other
/// than their primary tag.
fn tag_audit(selector: &Selector, snapshot: &StatsSnapshot) -> Vec<TagFinding> {
    let cat = selector.catalog();
    let q0 = selector.model_prior().q0_segment;
    // Per creative: the posterior mean of each persona segment's weight.
    let mut learned: Vec<Vec<(PersonaId, f64)>> = vec![Vec::new(); cat.len()];
    for e in &snapshot.model {
        let Some(segment) = e.feature.strip_prefix("segment:") else {
            continue;
        };
        // The "no high persona" segment names no persona on the menu and is skipped below.
        if e.scope != "creative" {
            continue;
        }
        let (Ok(c), Some(p)) = (cat.creative(&e.name), cat.menu.get(segment)) else {
            continue;
        };
        let precision = e.precision as f64 / SCALE;
        let weight = (e.eta as f64 / SCALE) / (q0 + precision);
        learned[c.index()].push((p, weight));
    }
    let mut findings = Vec::new();
    for (c, weights) in learned.iter().enumerate() {
        let id = CreativeId(c as u32);
        let Some(primary) = primary_tag(cat, id) else {
            continue;
        };
        let Some(&(best, best_weight)) = weights
            .iter()
            .filter(|(_, w)| *w > 0.0)
            .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0 .0.cmp(&a.0 .0)))
        else {
            continue;
        };
        if best == primary {
            continue;
        }
        let tagged_weight = weights.iter().find(|(p, _)| *p == primary).map_or(0.0, |&(_, w)| w);
        if best_weight - tagged_weight < TAG_AUDIT_MARGIN {
            continue;
        }
        let creative = cat.creative_id(id);
        let best_name = cat.menu.name(best);
        let best_impressions = snapshot
            .creatives
            .iter()
            .find(|(name, _)| name == creative)
            .and_then(|(_, s)| s.segments.iter().find(|(seg, _)| seg == best_name))
            .map_or(0, |(_, counts)| counts.impressions);
        findings.push(TagFinding {
            creative: creative.to_owned(),
            tagged: cat.menu.name(primary).to_owned(),
            best: best_name.to_owned(),
            best_is_tag: speaks_to(cat, id, best),
            tagged_weight,
            best_weight,
            best_impressions,
        });
    }
    findings.sort_by(|a: &TagFinding, b: &TagFinding| {
        (b.best_weight - b.tagged_weight).total_cmp(&(a.best_weight - a.tagged_weight))
    });
    findings
}

/// The creative's primary tag (highest weight; first on ties), if any.
fn primary_tag(cat: &Catalog, creative: CreativeId) -> Option<PersonaId> {
    let r = cat.rules.get(creative.index())?;
    r.tags.range().find(|&t| cat.tag_rank[t] == 0 && cat.tag_weight[t] > 0.0).map(|t| cat.tag_persona[t])
}
