//! Hot swaps: an [`Engine`] serves one [`Version`] (a selector: catalog, configuration
//! and learned statistics; optionally a persona model) and publishes the next version
//! atomically while other threads select and record. Selecting never blocks and never
//! sees a half-built version; every event recorded through the engine is counted in
//! exactly one version. Nothing here takes a lock on the select or record path.
//!
//! # The guarantee, precisely
//!
//! Every [`Engine::record`] (or [`Engine::record_id`]) that returns `Ok` is counted
//! exactly once in the engine's statistics ([`Engine::save_stats`]: the current
//! version's plus the *dormant* statistics of creatives the current catalog does not
//! have) and exactly once in the sequence of [`Engine::export_delta`]s, whatever
//! [`Engine::publish`]es run at the same time. What a new version cannot hold stays
//! *dormant* in the engine (saved, exported, and restored when a later version brings it
//! back): creatives its catalog lacks, segment cells of personas its menu lacks, and
//! the click model's weights of creatives, personas or attribute values it lacks. The
//! [`SwapReport`] counts each kind. Nothing is dropped unless the dormant statistics
//! outgrow what a snapshot may hold ([`SwapReport::dropped`], 0 in any sane deployment).
//!
//! How: `record` enters the current version (an atomic counter) unless it has been
//! retired, in which case it retries on the newer one. `publish` loads the new selector
//! with a snapshot of the old one's statistics *before* publishing it, swaps the pointer,
//! retires the old version, waits for the records already inside it to finish (each
//! takes microseconds; no new one can start), and then adds what the old version
//! counted after the snapshot. No event lands in a version after its statistics were
//! read for the last time, and none is read twice.
//!
//! # What a caller must do
//!
//! - Record through the engine, never through [`Version::selector`] directly: an event
//!   recorded straight into a retired version is lost.
//! - Creative and placement ids ([`CreativeId`], [`PlacementId`]) belong to one version.
//!   Resolve ids, payloads and explanations with the [`Version`] that made the picks
//!   ([`Engine::select`] returns it), and give it back to [`Engine::record`], which
//!   translates the creative to the current version by its stable id.
//! - A [`Selection`] is sized for one catalog. One made for an older version still
//!   works: the first selects with a larger catalog grow its scratch space (a few
//!   allocations, once; tests/alloc.rs counts them), after which none allocate. To keep
//!   even that off the request path, replace it with
//!   `version.selector().new_selection(k)` when [`Version::generation`] changes.
//!   Exclusions ([`Selection::exclude`]) are creative ids of one version: clear them per
//!   request.
//!
//! Per-person memory needs nothing: profiles remember creatives by their stable key
//! ([`Symbol`](crate::Symbol) of the id), so caps, fatigue and rejections carry over to every version
//! that has the creative.

mod books;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use arc_swap::ArcSwap;

use crate::catalog::{Catalog, CreativeId, PlacementId};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::feedback::{Feedback, FeedbackKind};
use crate::learn::{LoadReport, SnapshotKind, StatsSnapshot};
use crate::model::PersonaModel;
use crate::profile::Profile;
use crate::select::{Selection, Selector};
use books::Ledger;

/// One published version: a selector (catalog, configuration, learned statistics) and
/// an optional persona model, numbered by [`Version::generation`]. Immutable apart
/// from the selector's internally synchronized statistics. Get the current one with
/// [`Engine::current`].
#[derive(Debug)]
pub struct Version {
    selector: Selector,
    model: Option<PersonaModel>,
    generation: u64,
    /// Records running on this version right now.
    recording: AtomicUsize,
    /// Set once a newer version is published: no record may enter after that.
    retired: AtomicBool,
}

impl Version {
    fn new(selector: Selector, model: Option<PersonaModel>, generation: u64) -> Self {
        Version {
            selector,
            model,
            generation,
            recording: AtomicUsize::new(0),
            retired: AtomicBool::new(false),
        }
    }

    /// The selector: select with it, resolve ids, payloads and explanations. Record
    /// through [`Engine::record`], not with its `record`: an event recorded straight
    /// into a version that has been replaced is lost.
    pub fn selector(&self) -> &Selector {
        &self.selector
    }

    /// The catalog of this version.
    pub fn catalog(&self) -> &Catalog {
        self.selector.catalog()
    }

    /// The persona model published with this version, if any (compiled against this
    /// version's persona menu).
    pub fn model(&self) -> Option<&PersonaModel> {
        self.model.as_ref()
    }

    /// 1 for the engine's first version, one more for each [`Engine::publish`].
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// True once a newer version has been published.
    pub fn is_retired(&self) -> bool {
        self.retired.load(SeqCst)
    }
}

/// A record running inside a version; entered only while the version is not retired.
struct Recording<'a>(&'a Version);

impl<'a> Recording<'a> {
    fn enter(version: &'a Version) -> Option<Self> {
        // SeqCst on both sides (here and in `publish`): either this increment comes
        // before the retirement in the single total order, and `publish` waits for it,
        // or the load below sees the retirement and the record moves on.
        version.recording.fetch_add(1, SeqCst);
        if version.retired.load(SeqCst) {
            version.recording.fetch_sub(1, SeqCst);
            return None;
        }
        Some(Recording(version))
    }
}

impl Drop for Recording<'_> {
    fn drop(&mut self) {
        self.0.recording.fetch_sub(1, SeqCst);
    }
}

/// What [`Engine::publish`] did: what carried over, what came back, what is now
/// dormant and what (if anything) was dropped, per kind.
#[must_use = "a swap report counts dormant and dropped statistics"]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SwapReport {
    /// The new version's generation.
    pub generation: u64,
    /// Creatives of the new version whose statistics came from the previous version.
    pub carried: usize,
    /// Creatives of the new version whose statistics came back from the dormant ones (a
    /// creative removed by an earlier version and now back).
    pub restored: usize,
    /// Creatives whose statistics are now dormant: counted, kept and exported, but not in
    /// the current catalog.
    pub dormant: usize,
    /// Segment cells (creative, persona) of creatives the new catalog has, for personas
    /// its menu lacks, now dormant: their counts come back with the persona.
    pub dormant_segments: usize,
    /// Weights of the click model whose creative, persona or attribute value the new
    /// catalog lacks, now dormant (they come back with it).
    pub dormant_model_entries: usize,
    /// Dormant segment cells the new version holds again (their persona is back).
    pub restored_segments: usize,
    /// Dormant model weights the new version holds again.
    pub restored_model_entries: usize,
    /// Events (impressions, clicks and conversions) recorded on the previous version
    /// while the swap ran, added to the new version after it was published.
    pub caught_up: u64,
    /// Creatives whose statistics could not be kept because the engine already holds
    /// [`MAX_CREATIVES`](crate::catalog::MAX_CREATIVES) dormant (or unexported) creatives; 0 in any sane deployment.
    pub dropped: usize,
    /// Segment cells dropped because one creative would hold more than
    /// [`MAX_DORMANT_CELLS`](crate::limits::MAX_DORMANT_CELLS); 0 in any sane deployment.
    pub dropped_segments: usize,
    /// Model weights dropped because the dormant (or unexported) ones would exceed
    /// [`MAX_SNAPSHOT_MODEL_ENTRIES`](crate::limits::MAX_SNAPSHOT_MODEL_ENTRIES).
    pub dropped_model_entries: usize,
}

/// What the engine keeps besides the current version; changed under one lock.
#[derive(Debug, Default)]
struct Books {
    /// The last generation handed out.
    generation: u64,
    /// Statistics the current version cannot hold: creatives its catalog lacks, segment
    /// cells of personas its menu lacks, model weights of either or of attribute values.
    dormant: Ledger,
    /// Events of replaced versions not yet exported: part of the next delta.
    unsent: Ledger,
}

/// Serves the current [`Version`] and swaps in new ones while other threads select
/// and record (see the module documentation for the exact guarantee). `Send + Sync`:
/// share one behind an `Arc`.
#[derive(Debug)]
pub struct Engine {
    current: ArcSwap<Version>,
    /// Serializes publishing and the statistics calls that read or change more than the
    /// current version (save, load, export, merge). Never taken by select or record.
    books: Mutex<Books>,
}

impl Engine {
    /// An engine serving `selector` (with its statistics as they are) and `model` as
    /// generation 1.
    pub fn new(selector: Selector, model: Option<PersonaModel>) -> Self {
        Engine {
            current: ArcSwap::from_pointee(Version::new(selector, model, 1)),
            books: Mutex::new(Books { generation: 1, ..Books::default() }),
        }
    }

    fn books(&self) -> MutexGuard<'_, Books> {
        // Nothing under the lock panics on data; were it to, the books are left as far as
        // they got, which is better than refusing every later call.
        self.books.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The current version. Wait-free apart from a reference count; hold it for one
    /// request (resolve, select, explain), then let it go.
    pub fn current(&self) -> Arc<Version> {
        self.current.load_full()
    }

    /// The current version's generation.
    pub fn generation(&self) -> u64 {
        self.current.load().generation
    }

    /// Selects with the current version at the placement named `placement` (resolved
    /// per call: a hash lookup, no allocation) and returns the version that made the
    /// picks: resolve their ids and payloads with it and hand it to [`Engine::record`].
    /// Errors for a placement the current catalog does not have, or a profile made for
    /// another persona menu than the current version's (as [`Selector::select`]).
    pub fn select(
        &self,
        profile: &Profile,
        context: &Context,
        placement: &str,
        selection: &mut Selection,
    ) -> Result<Arc<Version>> {
        let version = self.current.load_full();
        let id: PlacementId = version.selector.placement(placement)?;
        version.selector.select(profile, context, id, selection)?;
        Ok(version)
    }

    /// Records a reaction to a creative that `shown_by` picked (its
    /// [`Feedback::creative`] is an id of `shown_by`'s catalog) into the current version,
    /// where the creative is found by its stable id; see [`Selector::record`] for the
    /// effects. Lock-free; safe while other threads select, record and publish.
    ///
    /// Errors, changing nothing: the creative is not in `shown_by`'s catalog, or the
    /// current version no longer has it ([`Error::UnknownCreative`]: a newer catalog
    /// removed it), or [`Selector::record`]'s own errors.
    pub fn record(&self, shown_by: &Version, profile: &mut Profile, feedback: &Feedback) -> Result<()> {
        let key = shown_by.catalog().creative_key(feedback.creative).ok_or_else(|| {
            Error::UnknownCreative { id: format!("#{}", feedback.creative.0), did_you_mean: Vec::new() }
        })?;
        self.record_in_current(
            profile,
            |version| {
                if std::ptr::eq(version, shown_by) {
                    return Ok(feedback.creative);
                }
                version.catalog().creative_by_key(key).ok_or_else(|| Error::UnknownCreative {
                    id: shown_by.catalog().creative_id(feedback.creative).to_owned(),
                    did_you_mean: Vec::new(),
                })
            },
            |creative| Feedback { creative, ..*feedback },
        )
    }

    /// Records a reaction to the creative with string id `creative` (as logged with an
    /// event that arrives later) in the moment `context` describes, into the current
    /// version. As [`Engine::record`].
    pub fn record_id(
        &self,
        profile: &mut Profile,
        creative: &str,
        kind: FeedbackKind,
        context: &Context,
    ) -> Result<()> {
        self.record_in_current(
            profile,
            |version| version.catalog().creative(creative),
            |id| Feedback::new(id, kind, context),
        )
    }

    fn record_in_current(
        &self,
        profile: &mut Profile,
        resolve: impl Fn(&Version) -> Result<CreativeId>,
        feedback: impl Fn(CreativeId) -> Feedback,
    ) -> Result<()> {
        loop {
            let version = self.current.load();
            let Some(_recording) = Recording::enter(&version) else {
                // Retired after we loaded it: the newer version is already current.
                std::hint::spin_loop();
                continue;
            };
            let creative = resolve(&version)?;
            return version.selector.record(profile, &feedback(creative));
        }
    }

    /// Publishes a new version: `selector` (built from the new catalog and
    /// configuration; whatever statistics it has are replaced) and the persona model to
    /// go with it (compiled against the new catalog's persona menu). Readers switch at
    /// once and never block; the call itself returns once the statistics of the
    /// previous version have moved over (see the module documentation), typically in
    /// milliseconds. Statistics carry over by creative id; whatever the new version
    /// cannot hold stays *dormant* (saved, exported and restored if a later version
    /// brings it back): creatives its catalog lacks, segment cells of personas its menu
    /// lacks, and model weights of either or of attribute values it lacks. The
    /// [`SwapReport`] counts each kind. Model updates travel like counts. Shadow flags carry over by placement name. Creatives
    /// removed from the catalog are never picked by the new version.
    ///
    /// Publishes are serialized with each other and with the engine's statistics calls.
    /// Errors if the carried statistics cannot be loaded into `selector`, which then is
    /// not published. (The statistics are this crate's own snapshots of the same engine,
    /// so that would be a bug; so would an error from adding the events recorded during
    /// the swap, which comes after the new version is live and consistent, and names
    /// what could not be added.)
    pub fn publish(&self, selector: Selector, model: Option<PersonaModel>) -> Result<SwapReport> {
        let mut books = self.books();
        let old = self.current.load_full();
        let mut report = SwapReport::default();

        // 1. Everything known so far goes into the new version before anyone sees it.
        let before = Ledger::of(&old.selector.save_stats());
        let mut seed = before.clone();
        seed.add(&books.dormant);
        let catalog = selector.catalog();
        report.carried = before.creatives.keys().filter(|id| catalog.creative(id).is_ok()).count();
        report.restored = books
            .dormant
            .creatives
            .keys()
            .filter(|id| old.catalog().creative(id).is_err() && catalog.creative(id).is_ok())
            .count();
        report.restored_segments = books.dormant.restored_segments(old.catalog(), catalog);
        report.restored_model_entries =
            books.dormant.model.len().saturating_sub(books.dormant.lacking(catalog).model.len());
        // What the new version cannot hold is reported here and kept dormant below.
        let _loaded: LoadReport =
            selector.load_stats(&seed.to_snapshot(SnapshotKind::Full, catalog.version()))?;
        let old_catalog = old.catalog();
        for p in 0..old_catalog.placement_count() {
            let place = PlacementId(p as u16);
            if old.selector.is_shadow(place) {
                if let Ok(same) = selector.placement(old_catalog.placement_name(place)) {
                    selector.set_shadow(same, true)?;
                }
            }
        }

        // 2. Publish, retire the old version, wait for the records already inside it.
        let generation = books.generation + 1;
        let next = Arc::new(Version::new(selector, model, generation));
        self.current.store(Arc::clone(&next));
        old.retired.store(true, SeqCst);
        while old.recording.load(SeqCst) != 0 {
            std::thread::yield_now();
        }

        // 3. The books: what the new version cannot hold, and the old version's
        //    unexported events (counts and model updates).
        let after = Ledger::of(&old.selector.save_stats());
        let late = after.since(&before);
        report.caught_up = late.events();
        let mut all = std::mem::take(&mut books.dormant);
        all.add(&after);
        let mut dormant = all.lacking(next.catalog());
        let dropped = dormant.cap();
        let kept = dormant.tally(next.catalog());
        (report.dormant, report.dormant_segments, report.dormant_model_entries) =
            (kept.creatives, kept.segments, kept.model);
        let mut unsent = std::mem::take(&mut books.unsent);
        unsent.add(&Ledger::of(&old.selector.export_delta()));
        let unsent_dropped = unsent.cap();
        report.dropped = dropped.creatives + unsent_dropped.creatives;
        report.dropped_segments = dropped.segments + unsent_dropped.segments;
        report.dropped_model_entries = dropped.model + unsent_dropped.model;
        *books = Books { generation, dormant, unsent };
        report.generation = generation;

        // 4. What the old version learned after the snapshot: into the new version (what
        //    it cannot hold is already dormant).
        if !late.is_empty() {
            let _merged: LoadReport = next
                .selector
                .merge_stats(&late.to_snapshot(SnapshotKind::Delta, next.catalog().version()))?;
        }
        Ok(report)
    }

    /// A full snapshot of everything learned: the current version's statistics and the
    /// dormant ones (what the current catalog cannot hold: creatives, segment cells of
    /// personas the menu lacks, model weights), merged by creative id and weight name.
    pub fn save_stats(&self) -> StatsSnapshot {
        let books = self.books();
        let version = self.current.load();
        let snap = version.selector.save_stats();
        if books.dormant.is_empty() {
            return snap;
        }
        let mut all = Ledger::of(&snap);
        all.add(&books.dormant);
        all.to_snapshot(SnapshotKind::Full, version.catalog().version())
    }

    /// Replaces everything learned with a full snapshot (as [`Selector::load_stats`]:
    /// meant for start-up; checked first, so a bad snapshot changes nothing). What the
    /// current catalog cannot hold (creatives, segment cells of personas the menu lacks,
    /// model weights) becomes the dormant statistics; a snapshot holding more of it than
    /// a snapshot may (see [`MAX_CREATIVES`](crate::catalog::MAX_CREATIVES) and the
    /// snapshot limits in [`crate::limits`]) is refused, not cut.
    pub fn load_stats(&self, snapshot: &StatsSnapshot) -> Result<LoadReport> {
        let mut books = self.books();
        let version = self.current.load();
        let dormant = Ledger::of(snapshot).lacking(version.catalog());
        Ledger::default().check_add(&dormant)?;
        let report = version.selector.load_stats(snapshot)?;
        books.dormant = dormant;
        books.unsent = Ledger::default();
        Ok(report)
    }

    /// The events recorded through this engine since the previous export, for other
    /// instances to merge: the current version's delta plus what replaced versions had
    /// not exported yet (counts and model updates). As [`Selector::export_delta`],
    /// merged-in events are not exported again. It may name creatives, personas and
    /// attribute values the current catalog no longer has.
    pub fn export_delta(&self) -> StatsSnapshot {
        let mut books = self.books();
        let version = self.current.load();
        let delta = version.selector.export_delta();
        if books.unsent.is_empty() {
            return delta;
        }
        let mut all = Ledger::of(&delta);
        all.add(&std::mem::take(&mut books.unsent));
        all.to_snapshot(SnapshotKind::Delta, version.catalog().version())
    }

    /// Adds another instance's delta (as [`Selector::merge_stats`]: checked first, a bad
    /// one changes nothing). What the current catalog cannot hold (creatives, segment
    /// cells of personas the menu lacks, model weights) is added to the dormant
    /// statistics rather than dropped; a delta that would take them past a count's range
    /// or past what a snapshot may hold is refused (an error naming the creative, cell or
    /// weight; nothing changes), so what the engine keeps always saves and loads again.
    pub fn merge_stats(&self, snapshot: &StatsSnapshot) -> Result<LoadReport> {
        let mut books = self.books();
        let version = self.current.load();
        let lacking = Ledger::of(snapshot).lacking(version.catalog());
        // A count past its range on its own is the delta's fault, not a limit of what
        // this engine keeps: refused as the selector's own check would refuse it (a
        // `stats snapshot` error), before the dormant books' limits, so a fleet skips the
        // delta everywhere instead of holding it back here and storing it in the shared
        // snapshot.
        for (id, stats) in &lacking.creatives {
            crate::learn::check_ranges(id, stats)?;
        }
        books.dormant.check_add(&lacking)?;
        let report = version.selector.merge_stats(snapshot)?;
        books.dormant.add(&lacking);
        Ok(report)
    }
}
