//! The engine's books: learned statistics held outside any version, by stable names
//! (creative id, persona name, attribute value) rather than dense ids. They hold what
//! the current catalog cannot (dormant statistics) and the events of replaced versions
//! not yet exported. Plain maps, changed only under the engine's lock; never touched by
//! select or record.

use std::collections::BTreeMap;

use crate::catalog::{Catalog, MAX_CREATIVES};
use crate::error::{quote, Error, Result};
use crate::learn::{
    holds_model_entry, holds_segment, Counts, CreativeStats, ModelEntry, Natural, SnapshotKind,
    StatsSnapshot, SNAPSHOT_FORMAT, SNAPSHOT_VERSION,
};
use crate::limits::{MAX_DORMANT_CELLS, MAX_SNAPSHOT_MODEL_ENTRIES};

/// A model weight's name: (scope, name, feature) as in [`ModelEntry`].
pub(super) type ModelKey = (String, String, String);

/// Statistics by name: event counts by creative id and model weights by (scope, name,
/// feature). Sums, like the snapshots they are made from.
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct Ledger {
    pub creatives: BTreeMap<String, CreativeStats>,
    pub model: BTreeMap<ModelKey, Natural>,
}

/// How many items of each kind a ledger holds, or a cap removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Tally {
    /// Creatives the catalog lacks (with all their statistics).
    pub creatives: usize,
    /// Segment cells of creatives the catalog has, for personas its menu lacks.
    pub segments: usize,
    /// Model weights.
    pub model: usize,
}

impl Ledger {
    /// A snapshot as a ledger (a repeated id or weight is added up).
    pub fn of(snapshot: &StatsSnapshot) -> Self {
        let mut ledger = Ledger::default();
        for (id, stats) in &snapshot.creatives {
            add_stats(ledger.creatives.entry(id.clone()).or_default(), stats);
        }
        for e in &snapshot.model {
            let n = Natural { eta: e.eta, precision: e.precision };
            add_natural(
                ledger.model.entry((e.scope.clone(), e.name.clone(), e.feature.clone())).or_default(),
                &n,
            );
        }
        ledger
    }

    /// True when it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.creatives.is_empty() && self.model.is_empty()
    }

    /// Adds `other` (bookkeeping: saturating, which 2^53-bounded counts never reach).
    pub fn add(&mut self, other: &Ledger) {
        for (id, stats) in &other.creatives {
            add_stats(self.creatives.entry(id.clone()).or_default(), stats);
        }
        for (key, n) in &other.model {
            add_natural(self.model.entry(key.clone()).or_default(), n);
        }
    }

    /// The ledger as a snapshot, sorted by id and weight name.
    pub fn to_snapshot(&self, kind: SnapshotKind, catalog_version: &str) -> StatsSnapshot {
        StatsSnapshot {
            format: SNAPSHOT_FORMAT.to_owned(),
            version: SNAPSHOT_VERSION,
            kind,
            catalog_version: catalog_version.to_owned(),
            creatives: self.creatives.iter().map(|(id, s)| (id.clone(), s.clone())).collect(),
            model: self
                .model
                .iter()
                .map(|((scope, name, feature), n)| ModelEntry {
                    scope: scope.clone(),
                    name: name.clone(),
                    feature: feature.clone(),
                    eta: n.eta,
                    precision: n.precision,
                })
                .collect(),
        }
    }

    /// The part of the ledger `catalog` cannot hold: whole creatives it lacks, segment
    /// cells of its creatives for personas its menu lacks (as entries with only those
    /// cells), and model weights of creatives, personas or attribute values it lacks.
    pub fn lacking(&self, catalog: &Catalog) -> Ledger {
        let mut out = Ledger::default();
        for (id, stats) in &self.creatives {
            if catalog.creative(id).is_err() {
                out.creatives.insert(id.clone(), stats.clone());
                continue;
            }
            let segments: Vec<(String, Counts)> =
                stats.segments.iter().filter(|(name, _)| !holds_segment(catalog, name)).cloned().collect();
            if !segments.is_empty() {
                out.creatives.insert(id.clone(), CreativeStats { segments, ..CreativeStats::default() });
            }
        }
        for (key, n) in &self.model {
            if !holds_model_entry(catalog, &key.0, &key.1, &key.2) {
                out.model.insert(key.clone(), *n);
            }
        }
        out
    }

    /// What it holds, by kind, counted against `catalog`: creatives the catalog lacks,
    /// segment cells of creatives it has, model weights.
    pub fn tally(&self, catalog: &Catalog) -> Tally {
        let mut t = Tally { model: self.model.len(), ..Tally::default() };
        for (id, stats) in &self.creatives {
            if catalog.creative(id).is_err() {
                t.creatives += 1;
            } else {
                t.segments += stats.segments.len();
            }
        }
        t
    }

    /// Segment cells held aside for personas `old`'s menu lacked, of creatives both
    /// catalogs have, that `new` holds again.
    pub fn restored_segments(&self, old: &Catalog, new: &Catalog) -> usize {
        self.creatives
            .iter()
            .filter(|(id, _)| old.creative(id).is_ok() && new.creative(id).is_ok())
            .flat_map(|(_, stats)| &stats.segments)
            .filter(|(name, _)| !holds_segment(old, name) && holds_segment(new, name))
            .count()
    }

    /// What each cell and weight counted beyond `before` (counts only grow; weights are
    /// sums, so their difference is exact); unchanged ones are left out.
    pub fn since(&self, before: &Ledger) -> Ledger {
        let empty = CreativeStats::default();
        let mut out = Ledger::default();
        for (id, a) in &self.creatives {
            let b = before.creatives.get(id).unwrap_or(&empty);
            let d = CreativeStats {
                overall: a.overall.minus(&b.overall),
                devices: minus_cells(&a.devices, &b.devices),
                dayparts: minus_cells(&a.dayparts, &b.dayparts),
                segments: minus_cells(&a.segments, &b.segments),
            };
            if !(d.overall.is_zero()
                && d.devices.is_empty()
                && d.dayparts.is_empty()
                && d.segments.is_empty())
            {
                out.creatives.insert(id.clone(), d);
            }
        }
        for (key, a) in &self.model {
            let b = before.model.get(key).copied().unwrap_or_default();
            let d =
                Natural { eta: a.eta.wrapping_sub(b.eta), precision: a.precision.wrapping_sub(b.precision) };
            if !d.is_zero() {
                out.model.insert(key.clone(), d);
            }
        }
        out
    }

    /// Impressions, clicks and conversions of every creative.
    pub fn events(&self) -> u64 {
        self.creatives
            .values()
            .map(|s| {
                s.overall.impressions.saturating_add(s.overall.clicks).saturating_add(s.overall.conversions)
            })
            .fold(0u64, u64::saturating_add)
    }

    /// Whether `other` can be added to this ledger without losing anything: every count
    /// stays within its range (as [`Counts::checked_add`]), every model weight's sums
    /// within `i64`, and the result within what a snapshot may hold ([`MAX_CREATIVES`]
    /// creatives, [`MAX_DORMANT_CELLS`] cells of each kind per creative,
    /// [`MAX_SNAPSHOT_MODEL_ENTRIES`] weights), so that what the engine keeps always
    /// saves into a snapshot that loads. An error names the creative, cell or weight.
    pub fn check_add(&self, other: &Ledger) -> Result<()> {
        let field = |path: String| format!("creatives.{path}");
        let new_creatives = other.creatives.keys().filter(|id| !self.creatives.contains_key(*id)).count();
        let creatives = self.creatives.len() + new_creatives;
        if creatives > MAX_CREATIVES {
            return Err(Error::invalid(
                "dormant statistics",
                "creatives",
                format!(
                    "the engine would hold {creatives} creatives its catalog lacks, above {MAX_CREATIVES} \
                     (MAX_CREATIVES); nothing was applied"
                ),
            ));
        }
        let empty = CreativeStats::default();
        for (id, add) in &other.creatives {
            let have = self.creatives.get(id).unwrap_or(&empty);
            have.overall.checked_add(&add.overall).map_err(|e| {
                Error::invalid("dormant statistics", field(format!("{}.overall", quote(id))), e.to_string())
            })?;
            for (group, have, add) in [
                ("devices", &have.devices, &add.devices),
                ("dayparts", &have.dayparts, &add.dayparts),
                ("segments", &have.segments, &add.segments),
            ] {
                let mut cells = have.len();
                for (name, counts) in add {
                    match have.iter().find(|(n, _)| n == name) {
                        Some((_, c)) => {
                            c.checked_add(counts).map_err(|e| {
                                let at = field(format!("{}.{group}.{}", quote(id), quote(name)));
                                Error::invalid("dormant statistics", at, e.to_string())
                            })?;
                        }
                        None => cells += 1,
                    }
                }
                if cells > MAX_DORMANT_CELLS {
                    return Err(Error::invalid(
                        "dormant statistics",
                        field(format!("{}.{group}", quote(id))),
                        format!("{cells} cells, above {MAX_DORMANT_CELLS} (MAX_DORMANT_CELLS); nothing was applied"),
                    ));
                }
            }
        }
        let mut weights = self.model.len();
        for (key, n) in &other.model {
            match self.model.get(key) {
                Some(have) => {
                    if have.eta.checked_add(n.eta).is_none()
                        || have.precision.checked_add(n.precision).is_none()
                    {
                        return Err(Error::invalid(
                            "dormant statistics",
                            format!("model ({} '{}' {})", quote(&key.0), quote(&key.1), quote(&key.2)),
                            "the sum overflows: the weight is saturated; nothing was applied",
                        ));
                    }
                }
                None => weights += 1,
            }
        }
        if weights > MAX_SNAPSHOT_MODEL_ENTRIES {
            return Err(Error::invalid(
                "dormant statistics",
                "model",
                format!(
                    "{weights} weights, above {MAX_SNAPSHOT_MODEL_ENTRIES} (MAX_SNAPSHOT_MODEL_ENTRIES); nothing was \
                     applied"
                ),
            ));
        }
        Ok(())
    }

    /// Keeps what a snapshot may hold: at most [`MAX_CREATIVES`] creatives (the last ids
    /// in order go), [`MAX_DORMANT_CELLS`] segment cells per creative and
    /// [`MAX_SNAPSHOT_MODEL_ENTRIES`] weights; returns how many of each went.
    pub fn cap(&mut self) -> Tally {
        let mut dropped = Tally::default();
        while self.creatives.len() > MAX_CREATIVES {
            self.creatives.pop_last();
            dropped.creatives += 1;
        }
        for stats in self.creatives.values_mut() {
            if stats.segments.len() > MAX_DORMANT_CELLS {
                dropped.segments += stats.segments.len() - MAX_DORMANT_CELLS;
                stats.segments.truncate(MAX_DORMANT_CELLS);
            }
        }
        while self.model.len() > MAX_SNAPSHOT_MODEL_ENTRIES {
            self.model.pop_last();
            dropped.model += 1;
        }
        dropped
    }
}

fn add_natural(into: &mut Natural, from: &Natural) {
    into.eta = into.eta.saturating_add(from.eta);
    into.precision = into.precision.saturating_add(from.precision);
}

fn add_cells(into: &mut Vec<(String, Counts)>, from: &[(String, Counts)]) {
    for (name, counts) in from {
        match into.iter_mut().find(|(n, _)| n == name) {
            Some((_, cell)) => cell.add(counts),
            None => into.push((name.clone(), *counts)),
        }
    }
}

fn add_stats(into: &mut CreativeStats, from: &CreativeStats) {
    into.overall.add(&from.overall);
    add_cells(&mut into.devices, &from.devices);
    add_cells(&mut into.dayparts, &from.dayparts);
    add_cells(&mut into.segments, &from.segments);
}

/// `a − b` for each cell of `a` (counts only grow, so nothing is lost to the floor at 0).
fn minus_cells(a: &[(String, Counts)], b: &[(String, Counts)]) -> Vec<(String, Counts)> {
    a.iter()
        .map(|(name, counts)| {
            let before = b.iter().find(|(n, _)| n == name).map_or(Counts::default(), |(_, c)| *c);
            (name.clone(), counts.minus(&before))
        })
        .filter(|(_, c)| !c.is_zero())
        .collect()
}
