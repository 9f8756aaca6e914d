//! Saving, loading, exporting deltas of and merging learned statistics. Snapshots are
//! keyed by creative id and persona name, not by dense ids, so they survive a restart
//! and a catalog change. A snapshot is fully checked before anything is applied: a bad
//! one leaves the statistics exactly as they were.

use ahash::AHashMap;
use serde::{Deserialize, Serialize};

use super::model::{
    Natural, Param, ATTRIBUTE_PARAMS, ATTRIBUTE_WEEKEND, CHANNELS, CREATIVE_PARAMS, GRADED, PERSON_RANKS,
    RANKED, SCALE, SCORES, SLOPES, TAG_RANKS, WEATHERS,
};
use super::{Counts, LearnedStats, DAYPARTS, DEVICES, NO_SEGMENT};
use crate::catalog::Catalog;
use crate::context::{Channel, Daypart, Device, Weather};
use crate::error::{quote, Error, Result};
use crate::profile::ordered_map;

/// The `format` field of every statistics snapshot.
pub const SNAPSHOT_FORMAT: &str = "persona-engine/learned-stats";
/// The snapshot format version this build writes and reads (2: event counts and the
/// click model's weights; version 1 files held the counts of an older model and are
/// refused with a message saying so).
pub const SNAPSHOT_VERSION: u32 = 2;
/// The segment name of "no high persona".
pub const NO_SEGMENT_NAME: &str = "(none)";

/// Whether a snapshot holds totals or the events since the previous export.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotKind {
    /// Totals: what [`LearnedStats::snapshot`] writes and `load` reads.
    Full,
    /// Events since the previous export: what `export_delta` writes and `merge` adds.
    Delta,
}

/// Serializable learned statistics (versioned).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatsSnapshot {
    /// Always [`SNAPSHOT_FORMAT`].
    pub format: String,
    /// Always [`SNAPSHOT_VERSION`] for this build.
    pub version: u32,
    /// Totals or a delta.
    pub kind: SnapshotKind,
    /// The version label of the catalog it was taken from (informational).
    #[serde(default)]
    pub catalog_version: String,
    /// Creative id → its statistics; creatives with no events are omitted.
    #[serde(
        serialize_with = "ordered_map::serialize",
        deserialize_with = "crate::limits::bounded::map::<_, _, crate::limits::counted::SnapshotCreatives>"
    )]
    pub creatives: Vec<(String, CreativeStats)>,
    /// The click model's weights that data moved, as raw natural parameters (sums, so
    /// deltas add exactly).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "crate::limits::bounded::vec::<_, _, crate::limits::counted::ModelEntries>"
    )]
    pub model: Vec<ModelEntry>,
}

/// One weight of the click model in a snapshot: who it belongs to, which feature, and
/// its natural parameters (see [`Natural`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelEntry {
    /// `creative` (name: creative id), `persona` (name: persona name), `attribute`
    /// (name: `name=value`) or `shared` (name empty).
    pub scope: String,
    /// See `scope`.
    #[serde(default)]
    pub name: String,
    /// The feature: for a creative `bias`, `device:<d>`, `daypart:<d>` or
    /// `segment:<persona>`; for a persona `slope`; for an attribute `main`,
    /// `device:<d>`, `daypart:<d>`, `channel:<c>` or `weather:<w>`; shared
    /// `graded:<tag rank>:<score>` or `ranked:<tag rank>:<person rank>`.
    pub feature: String,
    /// Precision-weighted mean from data, in 2⁻²⁴ units.
    pub eta: i64,
    /// Precision from data, in 2⁻²⁴ units (≥ 0).
    pub precision: i64,
}

/// The statistics of one creative in a snapshot.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CreativeStats {
    /// All events.
    pub overall: Counts,
    /// Device name → events on it.
    #[serde(
        serialize_with = "ordered_map::serialize",
        deserialize_with = "crate::limits::bounded::map::<_, _, crate::limits::counted::DeviceCells>"
    )]
    pub devices: Vec<(String, Counts)>,
    /// Daypart name → events in it.
    #[serde(
        serialize_with = "ordered_map::serialize",
        deserialize_with = "crate::limits::bounded::map::<_, _, crate::limits::counted::DaypartCells>"
    )]
    pub dayparts: Vec<(String, Counts)>,
    /// Persona name (the person's top persona) or `"(none)"` → events.
    #[serde(
        serialize_with = "ordered_map::serialize",
        deserialize_with = "crate::limits::bounded::map::<_, _, crate::limits::counted::SegmentCells>"
    )]
    pub segments: Vec<(String, Counts)>,
}

/// What a load or merge did with a snapshot: statistics it did not apply are counted
/// here, so look at it.
#[must_use = "a load report counts statistics that were not applied"]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Creatives whose statistics were applied.
    pub creatives: usize,
    /// Creative ids the catalog does not have (their statistics were not applied).
    pub unknown_creatives: Vec<String>,
    /// Segment entries naming a persona the menu does not have (not applied).
    pub unknown_segments: usize,
    /// Model weights whose creative, persona or attribute value this catalog lacks (not
    /// applied).
    pub unknown_model_entries: usize,
}

/// The counts last exported, the base of the next delta.
#[derive(Debug, Default)]
pub(crate) struct Baseline {
    overall: Vec<Counts>,
    device: Vec<Counts>,
    daypart: Vec<Counts>,
    segments: AHashMap<(usize, u16), Counts>,
    /// Model weights by [`ModelTarget`] key.
    model: AHashMap<ModelTarget, Natural>,
}

/// Which weight a model entry addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum ModelTarget {
    Creative(usize),
    Shared(usize),
    Attribute(usize),
    Segment(usize, u16),
}

impl Baseline {
    fn sized(&mut self, creatives: usize) {
        self.overall.resize(creatives, Counts::default());
        self.device.resize(creatives * DEVICES, Counts::default());
        self.daypart.resize(creatives * DAYPARTS, Counts::default());
    }
}

/// Which cell of a creative a staged count goes to.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Target {
    Overall,
    Device(usize),
    Daypart(usize),
    Segment(u16),
}

/// A checked snapshot, in dense ids, ready to apply.
struct Staged {
    cells: Vec<(usize, Target, Counts)>,
    model: Vec<(ModelTarget, Natural)>,
    report: LoadReport,
}

impl StatsSnapshot {
    /// Parses a snapshot from JSON, checking its format and version. A document larger
    /// than [`MAX_SNAPSHOT_BYTES`](crate::limits::MAX_SNAPSHOT_BYTES) is refused before
    /// parsing.
    pub fn from_json(json: &str) -> Result<Self> {
        use crate::limits::MAX_SNAPSHOT_BYTES;
        Error::check_size("stats snapshot", json.len(), MAX_SNAPSHOT_BYTES, "MAX_SNAPSHOT_BYTES")?;
        crate::limits::bounded::precount::<crate::limits::counted::SnapshotCreatives>(
            "stats snapshot",
            json,
        )?;
        let snap: StatsSnapshot = crate::limits::bounded::from_json("stats snapshot", json)?;
        snap.check_header()?;
        Ok(snap)
    }

    /// Writes the snapshot as JSON. A snapshot larger than
    /// [`MAX_SNAPSHOT_BYTES`](crate::limits::MAX_SNAPSHOT_BYTES) as JSON, which
    /// [`StatsSnapshot::from_json`] would refuse, is an error: what is written here
    /// always reads back.
    pub fn to_json(&self) -> Result<String> {
        use crate::limits::MAX_SNAPSHOT_BYTES;
        let json = self.delta_json()?;
        if json.len() > MAX_SNAPSHOT_BYTES {
            return Err(self.too_large(json.len(), MAX_SNAPSHOT_BYTES, ""));
        }
        Ok(json)
    }

    /// The snapshot as JSON whatever its size: for a delta that has already left the
    /// engine's counters, which is handed over rather than dropped (a reader refuses one
    /// above [`MAX_SNAPSHOT_BYTES`](crate::limits::MAX_SNAPSHOT_BYTES), and says so).
    pub(crate) fn delta_json(&self) -> Result<String> {
        serde_json::to_string(self).map_err(|source| Error::Json { what: "stats snapshot", source })
    }

    /// The error for this snapshot written as `size` bytes of JSON, more than `limit`
    /// ([`MAX_SNAPSHOT_BYTES`](crate::limits::MAX_SNAPSHOT_BYTES)); `then` says what
    /// became of it.
    pub(crate) fn too_large(&self, size: usize, limit: usize, then: &str) -> Error {
        Error::invalid(
            "stats snapshot",
            "creatives",
            format!(
                "the snapshot of {} creatives and {} model weights is {size} bytes as JSON, more than \
                 MAX_SNAPSHOT_BYTES ({limit} bytes) that a snapshot may be read back from{then}",
                self.creatives.len(),
                self.model.len(),
            ),
        )
    }

    fn check_header(&self) -> Result<()> {
        if self.format != SNAPSHOT_FORMAT {
            return Err(Error::invalid(
                "stats snapshot",
                "format",
                format!("'{}' is not '{SNAPSHOT_FORMAT}'", self.format),
            ));
        }
        if self.version == 1 {
            return Err(Error::invalid(
                "stats snapshot",
                "version",
                "version 1 holds the statistics of the previous learning model, which this build \
                 no longer uses; start from empty statistics (or replay the decision log)",
            ));
        }
        if self.version != SNAPSHOT_VERSION {
            return Err(Error::invalid(
                "stats snapshot",
                "version",
                format!("version {} is not supported (this build reads {SNAPSHOT_VERSION})", self.version),
            ));
        }
        Ok(())
    }

    fn stage(&self, catalog: &Catalog) -> Result<Staged> {
        self.check_header()?;
        let mut staged = Staged { cells: Vec::new(), model: Vec::new(), report: LoadReport::default() };
        // A weight or a cell listed twice would be range-checked entry by entry but added
        // up: refused, so every bound holds on what is actually added.
        let mut weights: ahash::AHashMap<ModelTarget, usize> = ahash::AHashMap::new();
        for (i, e) in self.model.iter().enumerate() {
            let bad = |problem: String| Error::invalid("stats snapshot", format!("model[{i}]"), problem);
            if e.precision < 0 {
                return Err(bad(format!("precision {} is negative", e.precision)));
            }
            // A weight's data part may not claim a mean beyond ±100 log-odds.
            let limit = 100.0 * (e.precision as f64 + SCALE);
            if (e.eta as f64).abs() > limit {
                return Err(bad(format!("eta {} implies a weight beyond ±100 log-odds", e.eta)));
            }
            match resolve(catalog, e).map_err(bad)? {
                Some(target) => {
                    if let Some(first) = weights.insert(target, i) {
                        return Err(bad(format!(
                            "the same weight as model[{first}] ({} '{}' {}): listed twice",
                            quote(&e.scope),
                            quote(&e.name),
                            quote(&e.feature)
                        )));
                    }
                    staged.model.push((target, Natural { eta: e.eta, precision: e.precision }));
                }
                None => staged.report.unknown_model_entries += 1,
            }
        }
        let mut seen = ahash::AHashSet::new();
        for (id, stats) in &self.creatives {
            // Every creative, including those this catalog lacks (an engine keeps them).
            check_ranges(id, stats)?;
            if !seen.insert(id.as_str()) {
                return Err(Error::invalid(
                    "stats snapshot",
                    format!("creatives.{}", quote(id)),
                    "listed twice",
                ));
            }
            // A creative this catalog lacks is checked like the others (an engine keeps
            // its statistics, which must load again), and then not applied.
            let known = catalog.creative(id).ok().map(|c| c.index());
            match known {
                Some(_) => staged.report.creatives += 1,
                None => staged.report.unknown_creatives.push(id.clone()),
            }
            let c = known.unwrap_or(usize::MAX);
            let mut cells = ahash::AHashSet::new();
            let mut push = |staged: &mut Staged, group: &str, name: &str, target: Target, counts: Counts| {
                if cells.insert(target) {
                    if known.is_some() {
                        staged.cells.push((c, target, counts));
                    }
                    Ok(())
                } else {
                    Err(Error::invalid(
                        "stats snapshot",
                        format!("creatives.{}.{group}", quote(id)),
                        format!("'{}' listed twice", quote(name)),
                    ))
                }
            };
            push(&mut staged, "overall", "overall", Target::Overall, stats.overall)?;
            for (name, counts) in &stats.devices {
                let d = Device::parse(name).ok_or_else(|| {
                    Error::invalid(
                        "stats snapshot",
                        format!("creatives.{}.devices", quote(id)),
                        format!("unknown device '{}'", quote(name)),
                    )
                })?;
                push(&mut staged, "devices", name, Target::Device(d as usize), *counts)?;
            }
            for (name, counts) in &stats.dayparts {
                let d = Daypart::parse(name).ok_or_else(|| {
                    Error::invalid(
                        "stats snapshot",
                        format!("creatives.{}.dayparts", quote(id)),
                        format!("unknown daypart '{}'", quote(name)),
                    )
                })?;
                push(&mut staged, "dayparts", name, Target::Daypart(d as usize), *counts)?;
            }
            let mut unknown_segments = ahash::AHashSet::new();
            for (name, counts) in &stats.segments {
                let segment = if name == NO_SEGMENT_NAME {
                    NO_SEGMENT
                } else if let Some(p) = catalog.menu().get(name) {
                    p.0
                } else {
                    if !unknown_segments.insert(name.as_str()) {
                        return Err(Error::invalid(
                            "stats snapshot",
                            format!("creatives.{}.segments", quote(id)),
                            format!("'{}' listed twice", quote(name)),
                        ));
                    }
                    if known.is_some() {
                        staged.report.unknown_segments += 1;
                    }
                    continue;
                };
                push(&mut staged, "segments", name, Target::Segment(segment), *counts)?;
            }
        }
        Ok(staged)
    }
}

impl LearnedStats {
    fn lock(&self) -> std::sync::MutexGuard<'_, Baseline> {
        // A panic while holding the lock cannot leave the baseline half-written in a way
        // that matters more than losing it; keep going with what is there.
        self.exported.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn build(&self, catalog: &Catalog, kind: SnapshotKind, base: Option<&mut Baseline>) -> StatsSnapshot {
        let n = self.creatives.min(catalog.len());
        let mut per: Vec<CreativeStats> = vec![CreativeStats::default(); n];
        let mut base = base;
        if let Some(b) = base.as_deref_mut() {
            b.sized(self.creatives);
        }
        let take = |now: Counts, slot: Option<&mut Counts>| -> Counts {
            match slot {
                Some(prev) => {
                    let delta = now.minus(prev);
                    *prev = now;
                    delta
                }
                None => now,
            }
        };
        for (c, stats) in per.iter_mut().enumerate() {
            let b = base.as_deref_mut();
            let (bo, bd, bp) = match b {
                Some(b) => (
                    Some(&mut b.overall[c]),
                    Some(&mut b.device[c * DEVICES..(c + 1) * DEVICES]),
                    Some(&mut b.daypart[c * DAYPARTS..(c + 1) * DAYPARTS]),
                ),
                None => (None, None, None),
            };
            stats.overall = take(self.overall[c].load(), bo);
            let mut bd = bd;
            for (d, device) in Device::ALL.iter().enumerate() {
                let counts =
                    take(self.by_device[c * DEVICES + d].load(), bd.as_deref_mut().map(|s| &mut s[d]));
                if !counts.is_zero() {
                    stats.devices.push((device.name().to_owned(), counts));
                }
            }
            let mut bp = bp;
            for (d, daypart) in Daypart::ALL.iter().enumerate() {
                let counts =
                    take(self.by_daypart[c * DAYPARTS + d].load(), bp.as_deref_mut().map(|s| &mut s[d]));
                if !counts.is_zero() {
                    stats.dayparts.push((daypart.name().to_owned(), counts));
                }
            }
        }
        let mut segments: Vec<(usize, u16, Counts)> = self
            .segment_slots()
            .filter(|(c, _, _)| *c < n)
            .map(|(c, s, slot)| (c, s, slot.cell.load()))
            .collect();
        segments.sort_by_key(|(c, s, _)| (*c, *s));
        for (c, s, now) in segments {
            let counts = match base.as_deref_mut() {
                Some(b) => take(now, Some(b.segments.entry((c, s)).or_default())),
                None => now,
            };
            if counts.is_zero() {
                continue;
            }
            let name =
                if s == NO_SEGMENT { NO_SEGMENT_NAME } else { catalog.menu().name(crate::PersonaId(s)) };
            per[c].segments.push((name.to_owned(), counts));
        }
        let model = self.model_entries(catalog, base);
        StatsSnapshot {
            format: SNAPSHOT_FORMAT.to_owned(),
            version: SNAPSHOT_VERSION,
            kind,
            model,
            catalog_version: catalog.version().to_owned(),
            creatives: per
                .into_iter()
                .enumerate()
                .filter(|(_, s)| {
                    !(s.overall.is_zero()
                        && s.devices.is_empty()
                        && s.dayparts.is_empty()
                        && s.segments.is_empty())
                })
                .map(|(c, s)| (catalog.creative_id(crate::CreativeId(c as u32)).to_owned(), s))
                .collect(),
        }
    }

    /// Totals of every cell, keyed by creative id and persona name.
    pub fn snapshot(&self, catalog: &Catalog) -> StatsSnapshot {
        self.build(catalog, SnapshotKind::Full, None)
    }

    /// The events recorded here since the previous export (or load), for other
    /// instances to [`merge`](LearnedStats::merge). Events merged in from elsewhere are
    /// not exported again, so instances can exchange deltas all-to-all without echoes.
    pub(crate) fn export_delta(&self, catalog: &Catalog) -> StatsSnapshot {
        let mut base = self.lock();
        self.build(catalog, SnapshotKind::Delta, Some(&mut base))
    }

    /// Replaces every count with a full snapshot's (cells it does not mention become
    /// zero). Checked first: on error nothing changes. Meant for start-up, before
    /// serving: events recorded while it runs may be overwritten.
    pub(crate) fn load(&self, catalog: &Catalog, snapshot: &StatsSnapshot) -> Result<LoadReport> {
        if snapshot.kind != SnapshotKind::Full {
            return Err(Error::invalid(
                "stats snapshot",
                "kind",
                "load takes a full snapshot; merge a delta instead",
            ));
        }
        let staged = snapshot.stage(catalog)?;
        let mut base = self.lock();
        // The one bound a load can meet: room in the segment table (slots stay claimed
        // across loads). Checked before anything is wiped; against zeroed state no count
        // or weight can overflow (each is listed once and range-checked).
        self.check_room(&staged)?;
        let zero = Counts::default();
        for cell in self.overall.iter().chain(self.by_device.iter()).chain(self.by_daypart.iter()) {
            cell.store(&zero);
        }
        for slot in self.slots.iter() {
            slot.cell.store(&zero);
            slot.param.store(&Natural::default());
        }
        let m = &self.model;
        for p in m.creative.iter().chain(m.shared.iter()).chain(m.attributes.iter()) {
            p.store(&Natural::default());
        }
        *base = Baseline::default();
        base.sized(self.creatives);
        self.apply(catalog, &staged, &mut base)?;
        Ok(staged.report)
    }

    /// Adds a snapshot's counts (normally another instance's delta). Addition is
    /// commutative and associative: merging deltas in any order gives identical
    /// statistics. Checked first: on error nothing changes.
    pub(crate) fn merge(&self, catalog: &Catalog, snapshot: &StatsSnapshot) -> Result<LoadReport> {
        let staged = snapshot.stage(catalog)?;
        let mut base = self.lock();
        self.check_room(&staged)?;
        base.sized(self.creatives);
        self.apply(catalog, &staged, &mut base)?;
        Ok(staged.report)
    }

    /// Errors (naming `learning.segment_cells`, changing nothing) when the segment
    /// cells and weights the snapshot needs do not all fit in the table.
    fn check_room(&self, staged: &Staged) -> Result<()> {
        let mut missing = ahash::AHashSet::new();
        let cells = staged.cells.iter().filter_map(|&(c, t, _)| match t {
            Target::Segment(s) => Some((c, s)),
            _ => None,
        });
        let weights = staged.model.iter().filter_map(|&(t, _)| match t {
            ModelTarget::Segment(c, s) => Some((c, s)),
            _ => None,
        });
        for (c, s) in cells.chain(weights) {
            if c < self.creatives && self.find(c, s).is_none() {
                missing.insert((c, s));
            }
        }
        let used = self.used.load(std::sync::atomic::Ordering::Relaxed);
        if used + missing.len() as u64 > self.usable {
            return Err(Error::invalid(
                "stats snapshot",
                "learning.segment_cells",
                format!(
                    "the snapshot needs {} new (creative, segment) cells and the table has room for {} \
                     ({used} of {} usable in use); nothing was loaded: raise learning.segment_cells",
                    missing.len(),
                    self.usable.saturating_sub(used),
                    self.usable
                ),
            ));
        }
        Ok(())
    }

    /// Applies checked cells; the caller has checked the table's room (`check_room`),
    /// and counts and weights are checked here before anything changes.
    fn apply(&self, catalog: &Catalog, staged: &Staged, base: &mut Baseline) -> Result<()> {
        // No count may pass its bound: checked for every cell before any changes.
        for &(c, target, counts) in &staged.cells {
            let now = match target {
                _ if c >= self.creatives => continue,
                Target::Overall => self.overall[c].load(),
                Target::Device(d) => self.by_device[c * DEVICES + d].load(),
                Target::Daypart(d) => self.by_daypart[c * DAYPARTS + d].load(),
                Target::Segment(s) => self.find(c, s).map_or(Counts::default(), |slot| slot.cell.load()),
            };
            now.checked_add(&counts).map_err(|e| {
                let id = catalog.creative_id(crate::CreativeId(c as u32));
                Error::invalid("stats snapshot", format!("creatives.{}", quote(id)), e.to_string())
            })?;
        }
        // No weight may overflow: also checked before any changes (a weight whose slot
        // does not exist yet starts at zero). The caller checked the table's room.
        for &(target, n) in &staged.model {
            if self.param(target).is_some_and(|param| param.would_overflow(&n)) {
                let (scope, name, feature) = describe(catalog, target);
                return Err(Error::invalid(
                    "stats snapshot",
                    "model",
                    format!(
                        "adding to {scope} '{}' {feature} would overflow: the weight is saturated;                          nothing was merged",
                        quote(&name)
                    ),
                ));
            }
        }
        // Claim every segment slot first, so a full table changes nothing.
        for &(c, target, _) in &staged.cells {
            if let Target::Segment(s) = target {
                if c < self.creatives {
                    self.find_or_insert(c, s)?;
                }
            }
        }
        for &(target, _) in &staged.model {
            if let ModelTarget::Segment(c, s) = target {
                if c < self.creatives {
                    self.find_or_insert(c, s)?;
                }
            }
        }
        let add = |into: &mut Counts, counts: &Counts| into.add(counts);
        for &(c, target, counts) in &staged.cells {
            if c >= self.creatives {
                continue;
            }
            match target {
                Target::Device(d) => {
                    self.by_device[c * DEVICES + d].add(&counts);
                    add(&mut base.device[c * DEVICES + d], &counts);
                }
                Target::Daypart(d) => {
                    self.by_daypart[c * DAYPARTS + d].add(&counts);
                    add(&mut base.daypart[c * DAYPARTS + d], &counts);
                }
                Target::Segment(s) => {
                    let slot = self.find_or_insert(c, s)?;
                    slot.cell.add(&counts);
                    add(base.segments.entry((c, s)).or_default(), &counts);
                }
                Target::Overall => {
                    self.overall[c].add(&counts);
                    add(&mut base.overall[c], &counts);
                }
            }
        }
        for &(target, n) in &staged.model {
            if let Some(param) = self.param(target) {
                param.add(&n)?;
                let b = base.model.entry(target).or_default();
                b.eta = b.eta.wrapping_add(n.eta);
                b.precision = b.precision.wrapping_add(n.precision);
            }
        }
        Ok(())
    }

    /// The weight a target addresses, if it exists (a segment weight only once its slot
    /// does).
    fn param(&self, target: ModelTarget) -> Option<&Param> {
        let m = &self.model;
        match target {
            ModelTarget::Creative(i) => m.creative.get(i),
            ModelTarget::Shared(i) => m.shared.get(i),
            ModelTarget::Attribute(i) => m.attributes.get(i),
            ModelTarget::Segment(c, s) => self.find(c, s).map(|slot| &slot.param),
        }
    }

    /// Every weight data moved (since `base`, when given, which is then advanced).
    fn model_entries(&self, catalog: &Catalog, mut base: Option<&mut Baseline>) -> Vec<ModelEntry> {
        let m = &self.model;
        let mut targets: Vec<ModelTarget> = Vec::new();
        let n = self.creatives.min(catalog.len());
        targets.extend((0..n * CREATIVE_PARAMS).map(ModelTarget::Creative));
        targets.extend((0..m.shared.len()).map(ModelTarget::Shared));
        let attrs = (m.attributes.len() / ATTRIBUTE_PARAMS).min(catalog.attribute_value_count());
        targets.extend((0..attrs * ATTRIBUTE_PARAMS).map(ModelTarget::Attribute));
        let mut segments: Vec<(usize, u16)> =
            self.segment_slots().filter(|(c, _, _)| *c < n).map(|(c, s, _)| (c, s)).collect();
        segments.sort_unstable();
        targets.extend(segments.into_iter().map(|(c, s)| ModelTarget::Segment(c, s)));
        let mut out = Vec::new();
        for target in targets {
            let Some(param) = self.param(target) else { continue };
            let now = param.load();
            let value = match base.as_deref_mut() {
                Some(b) => {
                    let prev = b.model.entry(target).or_default();
                    let delta = now.minus(prev);
                    *prev = now;
                    delta
                }
                None => now,
            };
            if value.is_zero() {
                continue;
            }
            let (scope, name, feature) = describe(catalog, target);
            out.push(ModelEntry { scope, name, feature, eta: value.eta, precision: value.precision });
        }
        out
    }
}

/// The (scope, name, feature) of a weight.
fn describe(catalog: &Catalog, target: ModelTarget) -> (String, String, String) {
    let persona = |s: u16| {
        if s == NO_SEGMENT {
            NO_SEGMENT_NAME.to_owned()
        } else {
            catalog.menu().name(crate::PersonaId(s)).to_owned()
        }
    };
    let creative = |c: usize| catalog.creative_id(crate::CreativeId(c as u32)).to_owned();
    match target {
        ModelTarget::Creative(i) => {
            let (c, k) = (i / CREATIVE_PARAMS, i % CREATIVE_PARAMS);
            let feature = if k == 0 {
                "bias".to_owned()
            } else if k <= DEVICES {
                format!("device:{}", Device::ALL[k - 1].name())
            } else {
                format!("daypart:{}", Daypart::ALL[k - 1 - DEVICES].name())
            };
            ("creative".into(), creative(c), feature)
        }
        ModelTarget::Segment(c, s) => ("creative".into(), creative(c), format!("segment:{}", persona(s))),
        ModelTarget::Shared(i) if i < RANKED => (
            "shared".into(),
            String::new(),
            format!("graded:{}:{}", (i - GRADED) / SCORES, (i - GRADED) % SCORES),
        ),
        ModelTarget::Shared(i) if i < SLOPES => (
            "shared".into(),
            String::new(),
            format!("ranked:{}:{}", (i - RANKED) / PERSON_RANKS, (i - RANKED) % PERSON_RANKS),
        ),
        ModelTarget::Shared(i) => ("persona".into(), persona((i - SLOPES) as u16), "slope".into()),
        ModelTarget::Attribute(i) => {
            let (a, k) = (i / ATTRIBUTE_PARAMS, i % ATTRIBUTE_PARAMS);
            let (name, value) = catalog.attribute_value_text(a).unwrap_or(("", ""));
            let feature = match k {
                0 => "main".to_owned(),
                k if k <= DEVICES => format!("device:{}", Device::ALL[k - 1].name()),
                k if k <= DEVICES + DAYPARTS => format!("daypart:{}", Daypart::ALL[k - 1 - DEVICES].name()),
                k if k <= DEVICES + DAYPARTS + CHANNELS => {
                    format!("channel:{}", Channel::ALL[k - 1 - DEVICES - DAYPARTS].name())
                }
                ATTRIBUTE_WEEKEND => "weekend".to_owned(),
                k => format!("weather:{}", Weather::ALL[k - 1 - DEVICES - DAYPARTS - CHANNELS].name()),
            };
            ("attribute".into(), format!("{name}={value}"), feature)
        }
    }
}

/// The weight an entry names in this catalog: `Ok(None)` when its creative, persona or
/// attribute value is not here; an error for a malformed scope or feature.
fn resolve(catalog: &Catalog, e: &ModelEntry) -> std::result::Result<Option<ModelTarget>, String> {
    let (kind, value) = e.feature.split_once(':').unwrap_or((e.feature.as_str(), ""));
    let unknown = || format!("unknown feature '{}' for scope '{}'", quote(&e.feature), quote(&e.scope));
    let index_of = |all: &[&str], v: &str| all.iter().position(|n| *n == v);
    let devices: Vec<&str> = Device::ALL.iter().map(|d| d.name()).collect();
    let dayparts: Vec<&str> = Daypart::ALL.iter().map(|d| d.name()).collect();
    match e.scope.as_str() {
        "creative" => {
            // The feature is checked even when the creative is not here: an engine keeps
            // the weight, and it must load again.
            let k = match kind {
                "bias" if value.is_empty() => 0,
                "device" => 1 + index_of(&devices, value).ok_or_else(unknown)?,
                "daypart" => 1 + DEVICES + index_of(&dayparts, value).ok_or_else(unknown)?,
                "segment" => usize::MAX,
                _ => return Err(unknown()),
            };
            let Ok(c) = catalog.creative(&e.name) else { return Ok(None) };
            let c = c.index();
            let k = match k {
                usize::MAX => {
                    let s = if value == NO_SEGMENT_NAME {
                        NO_SEGMENT
                    } else {
                        match catalog.menu().get(value) {
                            Some(p) => p.0,
                            None => return Ok(None),
                        }
                    };
                    return Ok(Some(ModelTarget::Segment(c, s)));
                }
                k => k,
            };
            Ok(Some(ModelTarget::Creative(c * CREATIVE_PARAMS + k)))
        }
        "persona" => {
            if e.feature != "slope" {
                return Err(unknown());
            }
            Ok(catalog.menu().get(&e.name).map(|p| ModelTarget::Shared(SLOPES + p.index())))
        }
        "shared" => {
            let mut parts = value.split(':').map(str::parse::<usize>);
            let (Some(Ok(a)), Some(Ok(b)), None) = (parts.next(), parts.next(), parts.next()) else {
                return Err(unknown());
            };
            match kind {
                "graded" if a < TAG_RANKS && b < SCORES => {
                    Ok(Some(ModelTarget::Shared(GRADED + a * SCORES + b)))
                }
                "ranked" if a < TAG_RANKS && b < PERSON_RANKS => {
                    Ok(Some(ModelTarget::Shared(RANKED + a * PERSON_RANKS + b)))
                }
                _ => Err(unknown()),
            }
        }
        "attribute" => {
            let Some((name, val)) = e.name.split_once('=') else {
                return Err(format!("attribute '{}' is not name=value", quote(&e.name)));
            };
            let channels: Vec<&str> = Channel::ALL.iter().map(|d| d.name()).collect();
            let weathers: Vec<&str> = Weather::ALL.iter().map(|d| d.name()).collect();
            let k = match kind {
                "main" if value.is_empty() => 0,
                "device" => 1 + index_of(&devices, value).ok_or_else(unknown)?,
                "daypart" => 1 + DEVICES + index_of(&dayparts, value).ok_or_else(unknown)?,
                "channel" => 1 + DEVICES + DAYPARTS + index_of(&channels, value).ok_or_else(unknown)?,
                "weather" => {
                    let w = index_of(&weathers, value).ok_or_else(unknown)?;
                    if w >= WEATHERS {
                        return Err(unknown());
                    }
                    1 + DEVICES + DAYPARTS + CHANNELS + w
                }
                "weekend" if value.is_empty() => ATTRIBUTE_WEEKEND,
                _ => return Err(unknown()),
            };
            // Checked before the value is looked up, as for creatives.
            let Some(a) = catalog.attribute_value_id(name, val) else { return Ok(None) };
            Ok(Some(ModelTarget::Attribute(a * ATTRIBUTE_PARAMS + k)))
        }
        other => Err(format!("unknown scope '{}' (creative, persona, attribute, shared)", quote(other))),
    }
}

impl crate::Selector {
    /// A full snapshot of the learned statistics (see [`LearnedStats::snapshot`]).
    /// Saving also brings the learned prior spreads
    /// ([`prior_spread`](crate::Selector::prior_spread)) up to date with the statistics
    /// it writes, as a load or merge does: the spreads are a function of the
    /// statistics, so a selector loaded from this snapshot picks exactly as this one
    /// does after the save.
    pub fn save_stats(&self) -> StatsSnapshot {
        if self.config().learning.learn_spread {
            // New spreads change the model's prior, and so every estimate: a write to the
            // learned state like a load or merge (requests under way meet it as one).
            #[cfg(debug_assertions)]
            let _write = self.writes.begin();
            self.after_bulk_change();
        }
        self.stats.snapshot(self.catalog())
    }

    /// Replaces the learned statistics with a full snapshot, matched by creative id.
    /// The snapshot is checked first: on error nothing changes. Cells it does not mention
    /// become zero. Meant for start-up, before serving: events recorded while it runs may
    /// be overwritten. Statistics of creatives the catalog lacks are reported, not applied.
    pub fn load_stats(&self, snapshot: &StatsSnapshot) -> Result<LoadReport> {
        #[cfg(debug_assertions)]
        let _write = self.writes.begin();
        let report = self.stats.load(self.catalog(), snapshot)?;
        self.after_bulk_change();
        Ok(report)
    }

    /// The events recorded here since the previous export (or load), for other instances
    /// to [`merge_stats`](crate::Selector::merge_stats). Events merged in from elsewhere
    /// are not exported again, so instances can exchange deltas all-to-all without
    /// echoes.
    pub fn export_delta(&self) -> StatsSnapshot {
        self.stats.export_delta(self.catalog())
    }

    /// Adds another instance's delta (or any snapshot's counts). Addition is commutative
    /// and associative: merging deltas in any order gives identical statistics. Checked
    /// first: on error nothing changes.
    pub fn merge_stats(&self, snapshot: &StatsSnapshot) -> Result<LoadReport> {
        #[cfg(debug_assertions)]
        let _write = self.writes.begin();
        let report = self.stats.merge(self.catalog(), snapshot)?;
        self.after_bulk_change();
        Ok(report)
    }
}

/// [`check_range`] on every count of creative `id`'s statistics: its overall counts and
/// each device, daypart and segment cell.
pub(crate) fn check_ranges(id: &str, stats: &CreativeStats) -> Result<()> {
    check_range(id, "overall", &stats.overall)?;
    for (group, cells) in
        [("devices", &stats.devices), ("dayparts", &stats.dayparts), ("segments", &stats.segments)]
    {
        for (name, counts) in cells {
            check_range(id, &format!("{group}.{}", quote(name)), counts)?;
        }
    }
    Ok(())
}

/// Refuses counts above their bounds ([`MAX_EVENT_COUNT`](crate::limits::MAX_EVENT_COUNT),
/// [`MAX_MICROS`](crate::limits::MAX_MICROS)), naming the creative, the cell and the field.
/// Counts are not checked against each other (clicks may exceed impressions): see
/// [`Selector::record`](crate::Selector::record).
fn check_range(id: &str, cell: &str, counts: &Counts) -> Result<()> {
    counts.check_range().map_err(|(field, problem)| {
        Error::invalid("stats snapshot", format!("creatives.{}.{cell}.{field}", quote(id)), problem)
    })
}

/// Whether `catalog` has the creative, persona or attribute value a model weight named
/// (scope, name, feature) belongs to. A malformed name counts as held: loading it is what
/// refuses it.
pub(crate) fn holds_model_entry(catalog: &Catalog, scope: &str, name: &str, feature: &str) -> bool {
    let e = ModelEntry {
        scope: scope.to_owned(),
        name: name.to_owned(),
        feature: feature.to_owned(),
        eta: 0,
        precision: 0,
    };
    !matches!(resolve(catalog, &e), Ok(None))
}

/// Whether `catalog` can hold a segment cell named `name` (a persona of its menu, or
/// [`NO_SEGMENT_NAME`]).
pub(crate) fn holds_segment(catalog: &Catalog, name: &str) -> bool {
    name == NO_SEGMENT_NAME || catalog.menu().get(name).is_some()
}
