//! Saving, loading, exporting deltas of and merging learned statistics. Snapshots are
//! keyed by creative id and persona name, not by dense ids, so they survive a restart
//! and a catalog change. A snapshot is fully checked before anything is applied: a bad
//! one leaves the statistics exactly as they were.

use ahash::AHashMap;
use serde::{Deserialize, Serialize};

use super::{Counts, LearnedStats, DAYPARTS, DEVICES, NO_SEGMENT};
use crate::catalog::Catalog;
use crate::context::{Daypart, Device};
use crate::error::{quote, Error, Result};
use crate::profile::ordered_map;

/// The `format` field of every statistics snapshot.
pub const SNAPSHOT_FORMAT: &str = "persona-engine/learned-stats";
/// The snapshot format version this build writes and reads.
pub const SNAPSHOT_VERSION: u32 = 1;
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

/// What a load or merge did with a snapshot.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Creatives whose statistics were applied.
    pub creatives: usize,
    /// Creative ids the catalog does not have (their statistics were not applied).
    pub unknown_creatives: Vec<String>,
    /// Segment entries naming a persona the menu does not have (not applied).
    pub unknown_segments: usize,
}

/// The counts last exported, the base of the next delta.
#[derive(Debug, Default)]
pub(crate) struct Baseline {
    overall: Vec<Counts>,
    device: Vec<Counts>,
    daypart: Vec<Counts>,
    segments: AHashMap<(usize, u16), Counts>,
}

impl Baseline {
    fn sized(&mut self, creatives: usize) {
        self.overall.resize(creatives, Counts::default());
        self.device.resize(creatives * DEVICES, Counts::default());
        self.daypart.resize(creatives * DAYPARTS, Counts::default());
    }
}

/// Which cell of a creative a staged count goes to.
#[derive(Clone, Copy)]
enum Target {
    Overall,
    Device(usize),
    Daypart(usize),
    Segment(u16),
}

/// A checked snapshot, in dense ids, ready to apply.
struct Staged {
    cells: Vec<(usize, Target, Counts)>,
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

    /// Writes the snapshot as JSON.
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string(self).map_err(|source| Error::Json { what: "stats snapshot", source })
    }

    fn check_header(&self) -> Result<()> {
        if self.format != SNAPSHOT_FORMAT {
            return Err(Error::invalid(
                "stats snapshot",
                "format",
                format!("'{}' is not '{SNAPSHOT_FORMAT}'", self.format),
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
        let mut staged = Staged { cells: Vec::new(), report: LoadReport::default() };
        let mut seen = ahash::AHashSet::new();
        for (id, stats) in &self.creatives {
            if !seen.insert(id.as_str()) {
                return Err(Error::invalid(
                    "stats snapshot",
                    format!("creatives.{}", quote(id)),
                    "listed twice",
                ));
            }
            let Ok(creative) = catalog.creative(id) else {
                staged.report.unknown_creatives.push(id.clone());
                continue;
            };
            let c = creative.index();
            staged.report.creatives += 1;
            staged.cells.push((c, Target::Overall, stats.overall));
            for (name, counts) in &stats.devices {
                let d = Device::parse(name).ok_or_else(|| {
                    Error::invalid(
                        "stats snapshot",
                        format!("creatives.{}.devices", quote(id)),
                        format!("unknown device '{}'", quote(name)),
                    )
                })?;
                staged.cells.push((c, Target::Device(d as usize), *counts));
            }
            for (name, counts) in &stats.dayparts {
                let d = Daypart::parse(name).ok_or_else(|| {
                    Error::invalid(
                        "stats snapshot",
                        format!("creatives.{}.dayparts", quote(id)),
                        format!("unknown daypart '{}'", quote(name)),
                    )
                })?;
                staged.cells.push((c, Target::Daypart(d as usize), *counts));
            }
            for (name, counts) in &stats.segments {
                let segment = if name == NO_SEGMENT_NAME {
                    NO_SEGMENT
                } else if let Some(p) = catalog.menu().get(name) {
                    p.0
                } else {
                    staged.report.unknown_segments += 1;
                    continue;
                };
                staged.cells.push((c, Target::Segment(segment), *counts));
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
        let mut segments: Vec<(usize, u16, Counts)> =
            self.segment_cells().filter(|(c, _, _)| *c < n).collect();
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
        StatsSnapshot {
            format: SNAPSHOT_FORMAT.to_owned(),
            version: SNAPSHOT_VERSION,
            kind,
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
        let zero = Counts::default();
        for cell in self.overall.iter().chain(self.by_device.iter()).chain(self.by_daypart.iter()) {
            cell.store(&zero);
        }
        for slot in self.slots.iter() {
            slot.cell.store(&zero);
        }
        *base = Baseline::default();
        base.sized(self.creatives);
        self.apply(&staged, &mut base);
        Ok(staged.report)
    }

    /// Adds a snapshot's counts (normally another instance's delta). Addition is
    /// commutative and associative: merging deltas in any order gives identical
    /// statistics. Checked first: on error nothing changes.
    pub(crate) fn merge(&self, catalog: &Catalog, snapshot: &StatsSnapshot) -> Result<LoadReport> {
        let staged = snapshot.stage(catalog)?;
        let mut base = self.lock();
        base.sized(self.creatives);
        self.apply(&staged, &mut base);
        Ok(staged.report)
    }

    fn apply(&self, staged: &Staged, base: &mut Baseline) {
        for &(c, target, counts) in &staged.cells {
            if c >= self.creatives {
                continue;
            }
            match target {
                Target::Device(d) => {
                    self.by_device[c * DEVICES + d].add(&counts);
                    base.device[c * DEVICES + d].add(&counts);
                }
                Target::Daypart(d) => {
                    self.by_daypart[c * DAYPARTS + d].add(&counts);
                    base.daypart[c * DAYPARTS + d].add(&counts);
                }
                Target::Segment(s) => match self.find_or_insert(c, s) {
                    Some(cell) => {
                        cell.add(&counts);
                        base.segments.entry((c, s)).or_default().add(&counts);
                    }
                    None => {
                        self.overflow.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                },
                Target::Overall => {
                    self.overall[c].add(&counts);
                    base.overall[c].add(&counts);
                }
            }
        }
    }
}

impl crate::Selector {
    /// A full snapshot of the learned statistics (see [`LearnedStats::snapshot`]).
    pub fn save_stats(&self) -> StatsSnapshot {
        self.stats.snapshot(self.catalog())
    }

    /// Replaces the learned statistics with a full snapshot, matched by creative id.
    /// The snapshot is checked first: on error nothing changes. Cells it does not mention
    /// become zero. Meant for start-up, before serving: events recorded while it runs may
    /// be overwritten. Statistics of creatives the catalog lacks are reported, not applied.
    pub fn load_stats(&self, snapshot: &StatsSnapshot) -> Result<LoadReport> {
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
        let report = self.stats.merge(self.catalog(), snapshot)?;
        self.after_bulk_change();
        Ok(report)
    }
}
