//! Fleet learning: many [`Engine`]s in many processes learn as one by exchanging their
//! statistics deltas and catalog versions through a shared, ordered log ([`FleetLog`];
//! Redis Streams in [`RedisLog`]). [`FleetSync`] runs beside the engine, on a background
//! thread or from the service's own loop, and never on the select or record path: a log
//! that is slow or down delays learning from other instances, never serving.
//!
//! Exactly-once in effect: every log entry carries its instance id and a sequence
//! number; an entry is applied only when its sequence is past the instance's last
//! applied one, so an entry appended twice (a retried timeout) or read twice (a restart)
//! counts once. A delta that fails to append stays pending and is retried first. Every
//! instance keeps the sum of the entries it has read (its *ledger*), so any instance can
//! write the compacted snapshot: exactly the log up to one position, stored with it.
//!
//! Only with the cargo feature `redis`; see docs/fleet.md.

mod redis_log;
mod split;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use redis_log::{RedisKeys, RedisLog};

use crate::catalog::{Catalog, CatalogSpec};
use crate::engine::Engine;
use crate::learn::{
    Counts, CreativeStats, ModelEntry, SnapshotKind, StatsSnapshot, SNAPSHOT_FORMAT, SNAPSHOT_VERSION,
};
use crate::limits::{
    MAX_DELTA_ENTRY_BYTES, MAX_INSTANCE_ID_LEN, MAX_SNAPSHOT_BYTES, MAX_SPEC_BYTES, MIN_DELTA_ENTRY_BYTES,
};
use crate::model::PersonaModel;
use crate::select::Selector;

/// The `fleet` field of every log entry this crate writes; entries without it are
/// foreign and skipped.
pub const ENTRY_FORMAT: &str = "persona-engine/fleet/1";
/// The `format` field of the compacted snapshot.
pub const SNAPSHOT_BODY_FORMAT: &str = "persona-engine/fleet-snapshot";

/// A failure of the log (connection refused, timeout, bad reply), with its text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LogError(pub String);

/// What can go wrong when joining the fleet or publishing a catalog.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// The engine refused something (a catalog that does not compile, a snapshot that
    /// does not load).
    #[error(transparent)]
    Engine(#[from] crate::Error),
    /// The log failed.
    #[error("fleet log: {0}")]
    Log(#[from] LogError),
}

pub use crate::limits::MAX_ENTRY_FIELDS_BYTES;

/// The default bound on one delta entry's body ([`FleetConfig::max_delta_bytes`]),
/// in bytes (1 MiB − 4 KiB): with its short fields (at most [`MAX_ENTRY_FIELDS_BYTES`])
/// an entry is at most 1 MiB, within the smallest limit on one value Redis can be set to
/// (`proto-max-bulk-len` 1mb) and the default message limits of Kafka
/// (`message.max.bytes`) and NATS (`max_payload`), about 1 MB each; and sent within
/// [`RedisLog`]'s 500 ms call timeout on a link of 20 Mbit/s or more. A sync's delta is
/// usually a few KiB; one larger than this is split into several entries.
pub const DEFAULT_MAX_DELTA_BYTES: usize = 1024 * 1024 - MAX_ENTRY_FIELDS_BYTES;

/// One entry read from the log: its position and its fields as the log holds them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogEntry {
    /// The entry's position (for Redis, the stream id `ms-seq`).
    pub position: String,
    /// Field name → bytes, in the order written. For a withheld entry, only its short
    /// fields other than `body` (so that it can be named), never its body.
    pub fields: Vec<(String, Vec<u8>)>,
    /// The entry's size in bytes (the names and values of all its fields, withheld or
    /// not) as the log measured it for [`ReadLimits::batch_bytes`]; 0 from a log that
    /// does not bound its reads by bytes.
    pub size: u64,
    /// `Some` when the entry is larger than [`ReadLimits`] allows and was not read.
    pub withheld: Option<Withheld>,
}

/// The sizes of an entry a log did not read because they pass [`ReadLimits`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Withheld {
    /// The length of its (first) `body` field in bytes (0 when it has none).
    pub body_bytes: u64,
    /// The names and values of its other fields, in bytes.
    pub other_bytes: u64,
}

/// How much one [`FleetLog::read_after`] may read. An entry is measured before it is
/// read: one whose (first) `body` field is longer than the limit for its `kind` field
/// ([`ReadLimits::delta_body_bytes`], [`ReadLimits::catalog_body_bytes`]; the smaller of
/// the two for any other kind) or whose other fields take more than
/// [`ReadLimits::other_fields_bytes`] is returned withheld ([`LogEntry::withheld`]),
/// never with its body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadLimits {
    /// The most entries one read returns.
    pub entries: usize,
    /// The read stops once the entries it returned (withheld ones by their size) reach
    /// this many bytes, so it returns at most this plus one entry within its limits.
    /// A read that returns fewer than [`ReadLimits::entries`] entries whose sizes sum to
    /// less than this reached the end of the log.
    pub batch_bytes: usize,
    /// The longest body of a `delta` entry.
    pub delta_body_bytes: usize,
    /// The longest body of a `catalog` entry.
    pub catalog_body_bytes: usize,
    /// The most bytes of an entry's fields other than its body, names and values.
    pub other_fields_bytes: usize,
}

/// The small surface a shared, ordered log offers the fleet: append, read in order past
/// a position, a compare-and-set snapshot slot, cursors and trimming. [`RedisLog`]
/// implements it on Redis Streams; a Kafka topic (offsets as positions, a compacted
/// topic or a key-value store for the snapshot) or a NATS JetStream stream fits the
/// same shape. Calls may block up to their own timeout; they never run on the select
/// or record path.
pub trait FleetLog: Send {
    /// Appends an entry; returns its position.
    fn append(&mut self, fields: &[(&str, &[u8])]) -> Result<String, LogError>;
    /// Entries after position `after` (from the start when `None`), in log order, as
    /// many as `limits` allow: each measured before it is read, one past its limits
    /// returned withheld (its position, sizes and short fields, never its body), and
    /// the read stopped once the entries' sizes reach [`ReadLimits::batch_bytes`].
    fn read_after(&mut self, after: Option<&str>, limits: &ReadLimits) -> Result<Vec<LogEntry>, LogError>;
    /// The stored snapshot: the position it covers and its body, unless the body is
    /// longer than `max_bytes`: then its length alone ([`SnapshotBody::TooLarge`]),
    /// found without reading the body. The length check and the read must see the same
    /// snapshot (one atomic step of the log, as [`RedisLog`]'s script is), so a larger
    /// snapshot stored meanwhile cannot slip past the check.
    fn load_snapshot(&mut self, max_bytes: usize) -> Result<Option<(String, SnapshotBody)>, LogError>;
    /// Stores a snapshot covering the log up to `position`, atomically, unless the
    /// stored one already covers as much; returns whether it was stored.
    fn store_snapshot(&mut self, position: &str, body: &[u8]) -> Result<bool, LogError>;
    /// Records how far `instance` has read (holds back trimming).
    fn report_cursor(&mut self, instance: &str, position: &str) -> Result<(), LogError>;
    /// Drops entries up to `position` that no live reader still needs; returns the
    /// position before which entries are now gone.
    fn trim_before(&mut self, position: &str) -> Result<Option<String>, LogError>;
    /// True when entries right after `cursor` were trimmed before this reader read them.
    fn has_gap(&mut self, cursor: Option<&str>) -> Result<bool, LogError>;
}

/// A stored snapshot's body as [`FleetLog::load_snapshot`] found it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SnapshotBody {
    /// The body, at most the length asked for.
    Bytes(Vec<u8>),
    /// A body longer than the length asked for, not read: its length in bytes.
    TooLarge(u64),
}

/// [`crate::Error::TooLarge`] for a fleet snapshot body of `size` bytes: above
/// [`MAX_SNAPSHOT_BYTES`], the limit of a local statistics snapshot, which the body
/// holds with the fleet's catalog and sequences.
fn too_large(size: u64) -> crate::Error {
    crate::Error::TooLarge {
        what: "fleet snapshot",
        size,
        limit: MAX_SNAPSHOT_BYTES as u64,
        limit_name: "MAX_SNAPSHOT_BYTES",
    }
}

/// Why `instance` cannot be a fleet instance id, if it cannot: empty, longer than
/// [`MAX_INSTANCE_ID_LEN`] bytes (its entries' short fields would pass what readers
/// take), or holding a control character (which breaks a log line).
fn check_instance_id(instance: &str) -> crate::Result<()> {
    let problem = if instance.is_empty() {
        Some("instance id is empty".to_owned())
    } else if instance.len() > MAX_INSTANCE_ID_LEN {
        Some(format!(
            "instance id is {} bytes long (at most {MAX_INSTANCE_ID_LEN}, MAX_INSTANCE_ID_LEN)",
            instance.len()
        ))
    } else {
        crate::error::control_character(instance).map(|problem| format!("instance id {problem}"))
    };
    match problem {
        Some(problem) => Err(crate::Error::invalid("fleet config", "instance", problem)),
        None => Ok(()),
    }
}

/// Refuses a [`FleetConfig::max_delta_bytes`] outside [`MIN_DELTA_ENTRY_BYTES`] ..=
/// [`MAX_DELTA_ENTRY_BYTES`]: below, a delta might not split into parts that small;
/// above, Redis (by default) refuses the entry however often it is retried.
fn check_max_delta_bytes(max_delta_bytes: usize) -> crate::Result<()> {
    let problem = if max_delta_bytes < MIN_DELTA_ENTRY_BYTES {
        format!(
            "{max_delta_bytes} bytes is below {MIN_DELTA_ENTRY_BYTES} (MIN_DELTA_ENTRY_BYTES): a delta might not \
             split into entries that small"
        )
    } else if max_delta_bytes > MAX_DELTA_ENTRY_BYTES {
        format!(
            "{max_delta_bytes} bytes is above {MAX_DELTA_ENTRY_BYTES} (MAX_DELTA_ENTRY_BYTES): Redis refuses a \
             value over 512 MiB by default (proto-max-bulk-len)"
        )
    } else {
        return Ok(());
    };
    Err(crate::Error::invalid("fleet config", "max_delta_bytes", problem))
}

/// Builds the selector (and persona model) for a catalog version read from the log.
pub type CatalogBuilder =
    Arc<dyn Fn(&CatalogSpec) -> crate::Result<(Selector, Option<PersonaModel>)> + Send + Sync>;

/// Where errors are written (skipped entries, lost and regained connections).
pub type ErrorLog = Arc<dyn Fn(&str) + Send + Sync>;

/// How a [`FleetSync`] behaves.
#[derive(Clone)]
pub struct FleetConfig {
    /// This instance's id, unique in the fleet and stable across restarts (a host name
    /// plus a slot, a pod name): a restarted instance continues its sequence. Not empty,
    /// at most [`MAX_INSTANCE_ID_LEN`] bytes, no control character ([`FleetSync::join`]
    /// refuses any other: the other instances could not read its entries).
    pub instance: String,
    /// Time between two syncs of the background thread ([`FleetSync::spawn`]).
    pub interval: Duration,
    /// Entries read per log call.
    pub read_batch: usize,
    /// Bytes read per log call: a call stops once the entries it read reach this much,
    /// so it reads at most this plus one entry (whose body is at most
    /// [`MAX_SNAPSHOT_BYTES`] for a delta, [`MAX_SPEC_BYTES`] for a catalog).
    pub read_batch_bytes: usize,
    /// Entries read between two compactions by this instance (0: never compact).
    pub compact_every: u64,
    /// The most bytes of one delta entry's body this instance appends (default
    /// [`DEFAULT_MAX_DELTA_BYTES`], 1 MiB − 4 KiB). A larger delta is split into several
    /// entries, each a valid delta within this bound (down to single cells and model
    /// weights), which the others merge into exactly the whole: no delta is ever too
    /// large for the log to take or for the others to read. From
    /// [`MIN_DELTA_ENTRY_BYTES`] (16 KiB) to [`MAX_DELTA_ENTRY_BYTES`] (512 MiB − 4 KiB,
    /// for Redis's default `proto-max-bulk-len`); [`FleetSync::join`] refuses any other.
    pub max_delta_bytes: usize,
    /// Builds the next version when a catalog arrives; `None`: compile it and keep the
    /// current selector configuration, no persona model.
    pub catalog_builder: Option<CatalogBuilder>,
    /// Receives every error message; default: standard error.
    pub error_log: ErrorLog,
}

impl std::fmt::Debug for FleetConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FleetConfig")
            .field("instance", &self.instance)
            .field("interval", &self.interval)
            .field("read_batch", &self.read_batch)
            .field("read_batch_bytes", &self.read_batch_bytes)
            .field("compact_every", &self.compact_every)
            .field("max_delta_bytes", &self.max_delta_bytes)
            .finish()
    }
}

impl FleetConfig {
    /// Defaults for `instance`: sync every 100 ms, read 500 entries and 16 MiB per call,
    /// compact every 1,000 entries, delta entries of at most 1 MiB − 4 KiB, errors to
    /// standard error.
    pub fn new(instance: impl Into<String>) -> Self {
        FleetConfig {
            instance: instance.into(),
            interval: Duration::from_millis(100),
            read_batch: 500,
            read_batch_bytes: 16 * 1024 * 1024,
            compact_every: 1_000,
            max_delta_bytes: DEFAULT_MAX_DELTA_BYTES,
            catalog_builder: None,
            error_log: Arc::new(|message: &str| eprintln!("persona-engine fleet: {message}")),
        }
    }
}

/// What a [`FleetSync`] has done so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FleetStatus {
    /// Whether the last call to the log succeeded.
    pub connected: bool,
    /// Entries this instance appended (deltas and catalogs).
    pub appended: u64,
    /// Entries of other instances (or of this instance's previous run) applied.
    pub merged: u64,
    /// Entries read again (a retried append, a re-read) and not applied again.
    pub duplicates: u64,
    /// Corrupt, foreign or oversized entries skipped (each logged; an entry whose body
    /// is longer than its kind's limit is skipped without being read).
    pub skipped: u64,
    /// Valid entries this instance could not apply for a reason of its own, each
    /// logged: deltas it could not merge (its `learning.segment_cells` table full, its
    /// dormant statistics at their limits), and catalogs that compile but that it could
    /// not install (its `catalog_builder`, persona model or configuration refused
    /// them). They stay in the ledger, so the snapshots this instance stores hold them
    /// for the others (a later instance starts from the newer catalog); this instance's
    /// own statistics or catalog lack them.
    pub held_back: u64,
    /// Catalog versions installed from the log.
    pub catalogs: u64,
    /// Times the fleet's catalog carried the version label of the one this instance
    /// served but other content (each logged): the fleet's was installed, since the
    /// fleet's snapshot is what every instance starts from.
    pub catalog_conflicts: u64,
    /// Snapshots this instance stored.
    pub compactions: u64,
    /// Times this instance restarted from the snapshot (at start and after a gap).
    pub rejoins: u64,
    /// Entries waiting to be appended (usually 0 or 1).
    pub pending: usize,
    /// The position read up to.
    pub cursor: Option<String>,
    /// Bytes of entry bodies appended.
    pub bytes_appended: u64,
    /// Bytes of entry bodies read.
    pub bytes_read: u64,
}

/// An entry's instance, sequence, kind and body (if it has one).
type Header<'a> = (String, u64, Kind, Option<&'a [u8]>);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Delta,
    Catalog,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Delta => "delta",
            Kind::Catalog => "catalog",
        }
    }
}

/// An entry of this instance not yet confirmed by the log.
struct Pending {
    seq: u64,
    kind: Kind,
    body: Vec<u8>,
}

/// The sum of the entries read so far: what the compacted snapshot holds.
#[derive(Default)]
struct Ledger {
    creatives: BTreeMap<String, CreativeStats>,
    model: BTreeMap<(String, String, String), (i64, i64)>,
    catalog: Option<String>,
}

/// Whether a merge refused a valid delta for a reason of this instance's own: its
/// (creative, segment) table is full, or its dormant statistics are at their limits.
/// The other instances merge such a delta, so the ledger (the fleet's sum, which becomes
/// the shared snapshot) keeps it; a delta that is wrong in itself is skipped everywhere.
fn held_back_here(e: &crate::Error) -> bool {
    matches!(
        e,
        crate::Error::Invalid { field, .. } if field == "learning.segment_cells"
    ) || matches!(e, crate::Error::Invalid { what: "dormant statistics", .. })
}

fn add_cells(into: &mut Vec<(String, Counts)>, from: &[(String, Counts)]) {
    for (name, counts) in from {
        match into.iter_mut().find(|(n, _)| n == name) {
            Some((_, cell)) => cell.add(counts),
            None => into.push((name.clone(), *counts)),
        }
    }
}

impl Ledger {
    fn add(&mut self, snap: &StatsSnapshot) {
        for (id, stats) in &snap.creatives {
            let into = self.creatives.entry(id.clone()).or_default();
            into.overall.add(&stats.overall);
            add_cells(&mut into.devices, &stats.devices);
            add_cells(&mut into.dayparts, &stats.dayparts);
            add_cells(&mut into.segments, &stats.segments);
        }
        for e in &snap.model {
            let sum = self.model.entry((e.scope.clone(), e.name.clone(), e.feature.clone())).or_default();
            sum.0 = sum.0.wrapping_add(e.eta);
            sum.1 = sum.1.wrapping_add(e.precision);
        }
    }

    fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            format: SNAPSHOT_FORMAT.to_owned(),
            version: SNAPSHOT_VERSION,
            kind: SnapshotKind::Full,
            catalog_version: "fleet".to_owned(),
            creatives: self.creatives.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            model: self
                .model
                .iter()
                .filter(|(_, (eta, precision))| *eta != 0 || *precision != 0)
                .map(|((scope, name, feature), (eta, precision))| ModelEntry {
                    scope: scope.clone(),
                    name: name.clone(),
                    feature: feature.clone(),
                    eta: *eta,
                    precision: *precision,
                })
                .collect(),
        }
    }
}

/// The largest sequence number an entry or a snapshot may carry (2^53): far beyond what
/// an instance appends (a million entries a second for 285 years), and far enough below
/// `u64::MAX` that the next number after any accepted one exists. A larger one, which
/// only a corrupt or foreign entry carries, is refused like any malformed field (a
/// `u64::MAX` overflowed the next number: a panic in a debug build, and in a release
/// build a next number of 0, which dropped every later delta as read back already).
pub const MAX_SEQ: u64 = 1 << 53;

/// The compacted snapshot's body.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FleetSnapshot {
    format: String,
    version: u32,
    /// The log position it covers.
    position: String,
    /// Instance id → last sequence number included.
    applied: BTreeMap<String, u64>,
    /// The latest catalog spec (JSON) in the log up to `position`.
    catalog: Option<String>,
    /// Everything learned up to `position`.
    stats: StatsSnapshot,
}

fn is_empty(snap: &StatsSnapshot) -> bool {
    snap.creatives.is_empty() && snap.model.is_empty()
}

struct State {
    log: Box<dyn FleetLog>,
    cursor: Option<String>,
    reported: Option<String>,
    /// Instance id → the last sequence number applied (to the ledger, and to the engine
    /// unless it was this instance's own).
    applied: BTreeMap<String, u64>,
    /// This run's own entries whose events the engine already holds and which have not
    /// been read back yet.
    own_in_engine: BTreeSet<u64>,
    /// Own entries not yet confirmed by the log, oldest first (usually none or one).
    pending: VecDeque<Pending>,
    next_seq: u64,
    ledger: Ledger,
    /// The fleet catalog (its text in the log) this sync last installed, with the
    /// engine generation it became: while the engine still serves that generation, the
    /// catalog is that one, whatever a `catalog_builder` compiled it into.
    installed: Option<(String, u64)>,
    read_since_compact: u64,
    status: FleetStatus,
}

/// Keeps one engine in step with the fleet (see the module documentation). `Send +
/// Sync`; its calls are serialized internally.
pub struct FleetSync {
    engine: Arc<Engine>,
    config: FleetConfig,
    state: Mutex<State>,
}

impl std::fmt::Debug for FleetSync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FleetSync").field("config", &self.config).field("status", &self.status()).finish()
    }
}

impl FleetSync {
    /// Joins the fleet: loads the compacted snapshot (its catalog version first, if
    /// newer), reads the log's tail and merges it, so the engine holds everything the
    /// fleet learned so far. Call before serving: loading replaces the engine's
    /// statistics (events recorded before the call are kept and shared). Errors when the
    /// log cannot be reached or the snapshot cannot be loaded (a body larger than
    /// [`MAX_SNAPSHOT_BYTES`] is refused without being read); the engine can serve
    /// alone meanwhile and the call be retried. Refuses, before touching the log, an
    /// instance id the other instances could not read the entries of (see
    /// [`FleetConfig::instance`]): `fleet config: field 'instance': instance id is empty`.
    pub fn join(
        engine: Arc<Engine>,
        log: impl FleetLog + 'static,
        config: FleetConfig,
    ) -> Result<Self, FleetError> {
        check_instance_id(&config.instance)?;
        check_max_delta_bytes(config.max_delta_bytes)?;
        let state = State {
            log: Box::new(log),
            cursor: None,
            reported: None,
            applied: BTreeMap::new(),
            own_in_engine: BTreeSet::new(),
            pending: VecDeque::new(),
            next_seq: 1,
            ledger: Ledger::default(),
            installed: None,
            read_since_compact: 0,
            status: FleetStatus::default(),
        };
        let sync = FleetSync { engine, config, state: Mutex::new(state) };
        {
            let mut st = sync.lock();
            sync.rejoin(&mut st)?;
            st.status.connected = true;
        }
        Ok(sync)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The engine this keeps in step.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// What has happened so far.
    pub fn status(&self) -> FleetStatus {
        self.lock().status.clone()
    }

    /// One sync: appends the pending entry and this instance's new delta, reads and
    /// merges the other instances' entries past the cursor, and compacts when due.
    /// Never fails: a log failure is logged once (and its recovery), the work is retried
    /// by the next call. Returns the status after it.
    pub fn tick(&self) -> FleetStatus {
        let mut st = self.lock();
        let result = self.sync(&mut st);
        match result {
            Ok(()) if !st.status.connected => {
                st.status.connected = true;
                (self.config.error_log)("log reachable again; pending entries flushed");
            }
            Ok(()) => {}
            Err(e) => {
                if st.status.connected {
                    (self.config.error_log)(&format!("{e}; retrying every {:?}", self.config.interval));
                }
                st.status.connected = false;
            }
        }
        st.status.pending = st.pending.len();
        let cursor = st.cursor.clone();
        st.status.cursor = cursor;
        st.status.clone()
    }

    /// Publishes a catalog version to the fleet: appends it to the log, then installs it
    /// here ([`Engine::publish`]); every other instance installs it when it reads the
    /// entry, in log order with the deltas. Errors, changing nothing: the spec does not
    /// compile, or the log cannot take it now.
    pub fn publish_catalog(&self, spec: &CatalogSpec) -> Result<crate::SwapReport, FleetError> {
        let json = spec.to_json()?;
        let (selector, model) = self.build(spec)?;
        let mut st = self.lock();
        // Events recorded under the previous catalog go first.
        self.export(&mut st)?;
        let seq = st.next_seq;
        let pending = Pending { seq, kind: Kind::Catalog, body: json.clone().into_bytes() };
        self.append(&mut st, &pending)?;
        st.next_seq += 1;
        st.own_in_engine.insert(seq);
        let report = self.engine.publish(selector, model)?;
        st.installed = Some((json, report.generation));
        Ok(report)
    }

    /// Runs [`FleetSync::tick`] every [`FleetConfig::interval`] on a thread of its own
    /// until the returned handle is stopped or dropped.
    pub fn spawn(self: &Arc<Self>) -> Result<FleetThread, FleetError> {
        let stop = Arc::new(AtomicBool::new(false));
        let (me, flag) = (Arc::clone(self), Arc::clone(&stop));
        let handle = std::thread::Builder::new()
            .name("persona-fleet".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    me.tick();
                    std::thread::sleep(me.config.interval);
                }
            })
            .map_err(|e| LogError(format!("cannot start the sync thread: {e}")))?;
        Ok(FleetThread { stop, handle: Some(handle) })
    }

    fn build(&self, spec: &CatalogSpec) -> crate::Result<(Selector, Option<PersonaModel>)> {
        match &self.config.catalog_builder {
            Some(build) => build(spec),
            None => {
                let config = *self.engine.current().selector().config();
                Ok((Selector::new(Catalog::compile(spec)?, config)?, None))
            }
        }
    }

    fn append(&self, st: &mut State, entry: &Pending) -> Result<(), LogError> {
        let seq = entry.seq.to_string();
        let fields: [(&str, &[u8]); 5] = [
            ("fleet", ENTRY_FORMAT.as_bytes()),
            ("instance", self.config.instance.as_bytes()),
            ("seq", seq.as_bytes()),
            ("kind", entry.kind.name().as_bytes()),
            ("body", &entry.body),
        ];
        st.log.append(&fields)?;
        st.status.appended += 1;
        st.status.bytes_appended += entry.body.len() as u64;
        Ok(())
    }

    fn flush_pending(&self, st: &mut State) -> Result<(), LogError> {
        while let Some(p) = st.pending.pop_front() {
            // Read back already (an append that timed out but went through): done.
            if p.seq <= st.applied.get(&self.config.instance).copied().unwrap_or(0) {
                continue;
            }
            if let Err(e) = self.append(st, &p) {
                st.pending.push_front(p);
                return Err(e);
            }
        }
        Ok(())
    }

    /// Appends what is pending, then this instance's new delta. Exports only with
    /// nothing pending: while the log is down, events wait in the engine's counters (no
    /// memory grows), and an entry once tried never changes.
    fn export(&self, st: &mut State) -> Result<(), LogError> {
        self.flush_pending(st)?;
        let delta = self.engine.export_delta();
        if !is_empty(&delta) {
            self.queue_delta(st, &delta)?;
            self.flush_pending(st)?;
        }
        Ok(())
    }

    /// Makes `delta`, which has left the engine's counters, pending: as one entry, or as
    /// several within [`FleetConfig::max_delta_bytes`] when it is larger, each with its
    /// own sequence number.
    fn queue_delta(&self, st: &mut State, delta: &StatsSnapshot) -> Result<(), LogError> {
        let bodies = match split::delta_parts(delta, self.config.max_delta_bytes) {
            Ok(bodies) => bodies,
            Err(e) => {
                // Not reachable with a bound `join` accepts and the engine's own names;
                // kept whole and pending (the log may refuse it) rather than dropped.
                (self.config.error_log)(&format!("a delta could not be split, appending it whole: {e}"));
                vec![delta.delta_json().map_err(|e| LogError(e.to_string()))?]
            }
        };
        for body in bodies {
            let seq = st.next_seq;
            st.next_seq += 1;
            st.own_in_engine.insert(seq);
            st.pending.push_back(Pending { seq, kind: Kind::Delta, body: body.into_bytes() });
        }
        Ok(())
    }

    fn sync(&self, st: &mut State) -> Result<(), LogError> {
        if st.log.has_gap(st.cursor.as_deref())? {
            (self.config.error_log)(
                "entries this instance had not read were trimmed; rejoining from the snapshot",
            );
            self.rejoin(st).map_err(|e| LogError(e.to_string()))?;
        }
        self.export(st)?;
        self.read_all(st)?;
        if st.cursor != st.reported {
            if let Some(cursor) = st.cursor.clone() {
                st.log.report_cursor(&self.config.instance, &cursor)?;
                st.reported = Some(cursor);
            }
        }
        if self.config.compact_every > 0 && st.read_since_compact >= self.config.compact_every {
            self.compact(st)?;
        }
        Ok(())
    }

    fn read_all(&self, st: &mut State) -> Result<(), LogError> {
        let limits = ReadLimits {
            entries: self.config.read_batch.max(1),
            batch_bytes: self.config.read_batch_bytes.max(1),
            delta_body_bytes: MAX_SNAPSHOT_BYTES,
            catalog_body_bytes: MAX_SPEC_BYTES,
            other_fields_bytes: MAX_ENTRY_FIELDS_BYTES,
        };
        loop {
            let entries = st.log.read_after(st.cursor.as_deref(), &limits)?;
            let n = entries.len();
            let bytes = entries.iter().fold(0u64, |sum, e| sum.saturating_add(e.size));
            for entry in entries {
                self.apply(st, &entry);
                st.read_since_compact += 1;
                st.cursor = Some(entry.position);
            }
            if n == 0 || (n < limits.entries && bytes < limits.batch_bytes as u64) {
                return Ok(());
            }
        }
    }

    /// Why an entry was withheld (or, from a log that read it anyway, should have been):
    /// the limit its body or other fields pass, as the parser of its kind would say it.
    fn oversized(entry: &LogEntry, kind: Option<Kind>) -> Option<String> {
        let (body, other) = match entry.withheld {
            Some(w) => (w.body_bytes, w.other_bytes),
            None => {
                let at = entry.fields.iter().position(|(n, _)| n == "body");
                let body = at.and_then(|at| entry.fields.get(at)).map_or(0, |(_, v)| v.len());
                let other: usize = (entry.fields.iter().enumerate())
                    .filter(|(i, _)| Some(*i) != at)
                    .map(|(_, (n, v))| n.len() + v.len())
                    .sum();
                (body as u64, other as u64)
            }
        };
        if other > MAX_ENTRY_FIELDS_BYTES as u64 {
            return Some(
                crate::Error::TooLarge {
                    what: "fleet entry: fields other than 'body'",
                    size: other,
                    limit: MAX_ENTRY_FIELDS_BYTES as u64,
                    limit_name: "MAX_ENTRY_FIELDS_BYTES",
                }
                .to_string(),
            );
        }
        let (what, limit, limit_name) = match kind {
            Some(Kind::Delta) => ("stats snapshot", MAX_SNAPSHOT_BYTES, "MAX_SNAPSHOT_BYTES"),
            Some(Kind::Catalog) => ("catalog spec", MAX_SPEC_BYTES, "MAX_SPEC_BYTES"),
            None => ("fleet entry: field 'body'", MAX_SPEC_BYTES.min(MAX_SNAPSHOT_BYTES), "MAX_SPEC_BYTES"),
        };
        (body > limit as u64 || entry.withheld.is_some())
            .then(|| crate::Error::TooLarge { what, size: body, limit: limit as u64, limit_name }.to_string())
    }

    /// Applies one entry read from the log, or skips it with a logged error.
    fn apply(&self, st: &mut State, entry: &LogEntry) {
        let field = |name: &str| entry.fields.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_slice());
        st.status.bytes_read += field("body").map_or(0, |b| b.len() as u64);
        let parsed = (|| -> Result<Header<'_>, String> {
            match field("fleet") {
                Some(f) if f == ENTRY_FORMAT.as_bytes() => {}
                Some(f) => {
                    return Err(format!(
                        "foreign entry: field 'fleet' is '{}', not '{ENTRY_FORMAT}'",
                        lossy(f)
                    ))
                }
                None => return Err("foreign entry: no 'fleet' field".into()),
            }
            let text = |name: &str| -> Result<String, String> {
                let bytes = field(name).ok_or_else(|| format!("field '{name}' is missing"))?;
                String::from_utf8(bytes.to_vec()).map_err(|_| format!("field '{name}' is not UTF-8"))
            };
            let instance = text("instance")?;
            if instance.is_empty() {
                return Err("field 'instance' is empty".into());
            }
            let seq_text = text("seq")?;
            let seq =
                seq_text.parse::<u64>().ok().filter(|s| (1..=MAX_SEQ).contains(s)).ok_or_else(|| {
                    format!(
                        "field 'seq' is '{}', not an integer from 1 to 2^53 (MAX_SEQ)",
                        lossy(seq_text.as_bytes())
                    )
                })?;
            let kind = match text("kind")?.as_str() {
                "delta" => Kind::Delta,
                "catalog" => Kind::Catalog,
                other => {
                    return Err(format!(
                        "field 'kind' is '{}', not delta or catalog",
                        lossy(other.as_bytes())
                    ))
                }
            };
            Ok((instance, seq, kind, field("body")))
        })();
        let (instance, seq, kind, body) = match parsed {
            Ok(p) => p,
            Err(problem) => {
                // A withheld entry is skipped for its size too, named by its position
                // when its short fields do not name it.
                let problem = match Self::oversized(entry, None) {
                    Some(size) if entry.withheld.is_some() => format!("{problem}; {size}"),
                    _ => problem,
                };
                return self.skip(st, entry, &problem);
            }
        };
        // Larger than any instance may read (withheld unread, or from a log that read
        // it anyway): skipped, as a body that does not parse is.
        if let Some(problem) = Self::oversized(entry, Some(kind)) {
            return self.skip(st, entry, &format!("{instance} #{seq}: {problem}"));
        }
        let Some(body) = body else {
            return self.skip(st, entry, "field 'body' is missing");
        };
        if seq <= st.applied.get(&instance).copied().unwrap_or(0) {
            st.status.duplicates += 1;
            return;
        }
        let own = instance == self.config.instance && st.own_in_engine.contains(&seq);
        // A valid delta this instance alone cannot hold (see `held_back_here`).
        let mut held_back = None;
        let applied = (|| -> crate::Result<Option<String>> {
            let text = std::str::from_utf8(body)
                .map_err(|_| crate::Error::invalid("fleet entry", "body", "is not UTF-8"))?;
            match kind {
                Kind::Delta => {
                    let snap = StatsSnapshot::from_json(text)?;
                    if snap.kind != SnapshotKind::Delta {
                        return Err(crate::Error::invalid("fleet entry", "body.kind", "is not delta"));
                    }
                    if !own {
                        match self.engine.merge_stats(&snap) {
                            Ok(_kept_dormant) => {}
                            // The fleet's sum still holds it: this instance's snapshots
                            // must not lose what the others merged.
                            Err(e) if held_back_here(&e) => held_back = Some(e),
                            Err(e) => return Err(e),
                        }
                    }
                    st.ledger.add(&snap);
                    Ok(None)
                }
                Kind::Catalog => {
                    let spec = CatalogSpec::from_json(text)?;
                    if !own {
                        match self
                            .build(&spec)
                            .and_then(|(selector, model)| self.engine.publish(selector, model))
                        {
                            Ok(report) => {
                                st.status.catalogs += 1;
                                st.installed = Some((text.to_owned(), report.generation));
                            }
                            Err(e) => {
                                // A catalog that does not compile is broken for every
                                // instance: skipped. One that compiles but this instance
                                // cannot install (its own builder, persona model or
                                // configuration refuses it) is the fleet's all the same:
                                // the ledger, and the snapshots later instances start
                                // from, take it.
                                Catalog::compile(&spec)?;
                                held_back = Some(e);
                            }
                        }
                    }
                    Ok(Some(text.to_owned()))
                }
            }
        })();
        match applied {
            Ok(catalog) => {
                if catalog.is_some() {
                    st.ledger.catalog = catalog;
                }
                if own {
                    st.own_in_engine.remove(&seq);
                } else if let Some(e) = held_back {
                    st.status.held_back += 1;
                    (self.config.error_log)(&format!(
                        "log entry {} ({instance} #{seq}, {}) is in the fleet's ledger and snapshots but was not \
                         merged into this instance: {e}",
                        entry.position,
                        kind.name()
                    ));
                } else {
                    st.status.merged += 1;
                }
                st.applied.insert(instance, seq);
            }
            Err(e) => self.skip(st, entry, &format!("{instance} #{seq}: {e}")),
        }
    }

    fn skip(&self, st: &mut State, entry: &LogEntry, problem: &str) {
        st.status.skipped += 1;
        (self.config.error_log)(&format!("skipped log entry {}: {problem}", entry.position));
    }

    /// Stores the ledger as the snapshot of the log up to the cursor and trims behind it.
    fn compact(&self, st: &mut State) -> Result<(), LogError> {
        let Some(position) = st.cursor.clone() else { return Ok(()) };
        let body = FleetSnapshot {
            format: SNAPSHOT_BODY_FORMAT.to_owned(),
            version: 1,
            position: position.clone(),
            applied: st.applied.clone(),
            catalog: st.ledger.catalog.clone(),
            stats: st.ledger.snapshot(),
        };
        let json = serde_json::to_vec(&body).map_err(|e| LogError(format!("snapshot: {e}")))?;
        if json.len() > MAX_SNAPSHOT_BYTES {
            // Every instance would refuse to join from it, and the trim after it would
            // leave them nothing else: the previous snapshot and the log stay as they are.
            (self.config.error_log)(&format!("{}: not stored", too_large(json.len() as u64)));
            st.read_since_compact = 0;
            return Ok(());
        }
        if st.log.store_snapshot(&position, &json)? {
            st.status.compactions += 1;
            st.log.trim_before(&position)?;
        }
        st.read_since_compact = 0;
        Ok(())
    }

    /// Starts from the snapshot and the log's tail, keeping this instance's own events
    /// that the log does not have yet (see the module documentation).
    fn rejoin(&self, st: &mut State) -> Result<(), FleetError> {
        // Bounded as a local snapshot load is: a larger body is refused unread.
        let stored = st.log.load_snapshot(MAX_SNAPSHOT_BYTES)?;
        let snapshot = match stored {
            Some((position, body)) => {
                let body = match body {
                    SnapshotBody::Bytes(body) if body.len() <= MAX_SNAPSHOT_BYTES => body,
                    // A log that read more than it was asked for: refused all the same.
                    SnapshotBody::Bytes(body) => return Err(too_large(body.len() as u64).into()),
                    SnapshotBody::TooLarge(size) => return Err(too_large(size).into()),
                };
                let snap: FleetSnapshot = serde_json::from_slice(&body)
                    .map_err(|e| crate::Error::invalid("fleet snapshot", "body", e.to_string()))?;
                if snap.format != SNAPSHOT_BODY_FORMAT || snap.version != 1 {
                    return Err(crate::Error::invalid(
                        "fleet snapshot",
                        "format",
                        format!(
                            "'{}' version {} is not '{SNAPSHOT_BODY_FORMAT}' version 1",
                            snap.format, snap.version
                        ),
                    )
                    .into());
                }
                if let Some((instance, seq)) = snap.applied.iter().find(|(_, s)| **s > MAX_SEQ) {
                    return Err(crate::Error::invalid(
                        "fleet snapshot",
                        format!("applied.{instance}"),
                        format!("sequence number {seq} is above 2^53 (MAX_SEQ)"),
                    )
                    .into());
                }
                if snap.position != position {
                    return Err(crate::Error::invalid(
                        "fleet snapshot",
                        "position",
                        format!("the body covers '{}', the key says '{position}'", snap.position),
                    )
                    .into());
                }
                Some(snap)
            }
            None => None,
        };
        // Events recorded here that the log does not have: kept across the load.
        let local = self.engine.export_delta();
        if let Some(snap) = snapshot {
            if let Some(catalog) = &snap.catalog {
                let spec = CatalogSpec::from_json(catalog)?;
                let current = self.engine.current();
                // The catalog this sync installed last, still served: nothing to do.
                let known = matches!(&st.installed,
                    Some((text, generation)) if *generation == current.generation() && text == catalog);
                if !known {
                    // Compared by content, not by label: the instance may have started with
                    // a catalog of its own that carries the fleet's label.
                    let (selector, model) = self.build(&spec)?;
                    if selector.catalog() == current.catalog() {
                        st.installed = Some((catalog.clone(), current.generation()));
                    } else {
                        if current.catalog().version() == spec.version {
                            st.status.catalog_conflicts += 1;
                            (self.config.error_log)(&format!(
                                "the fleet's catalog '{}' has other content than the one this instance serves \
                                 under the same version label; installing the fleet's",
                                spec.version
                            ));
                        }
                        let report = self.engine.publish(selector, model)?;
                        st.status.catalogs += 1;
                        st.installed = Some((catalog.clone(), report.generation));
                    }
                }
            }
            let _kept_dormant = self.engine.load_stats(&snap.stats)?;
            st.ledger = Ledger { catalog: snap.catalog.clone(), ..Ledger::default() };
            st.ledger.add(&StatsSnapshot { kind: SnapshotKind::Delta, ..snap.stats });
            st.applied = snap.applied;
            st.cursor = Some(snap.position);
            st.reported = None;
        }
        let mine = st.applied.get(&self.config.instance).copied().unwrap_or(0);
        st.own_in_engine.clear();
        for p in std::mem::take(&mut st.pending) {
            if p.seq > mine {
                // Not in the snapshot: its events go back into the engine, and it stays pending.
                if p.kind == Kind::Delta {
                    let text = String::from_utf8_lossy(&p.body).into_owned();
                    let _kept_dormant = self.engine.merge_stats(&StatsSnapshot::from_json(&text)?)?;
                } else {
                    let text = String::from_utf8_lossy(&p.body).into_owned();
                    let (selector, model) = self.build(&CatalogSpec::from_json(&text)?)?;
                    let report = self.engine.publish(selector, model)?;
                    st.installed = Some((text, report.generation));
                }
                st.own_in_engine.insert(p.seq);
                st.pending.push_back(p);
            }
        }
        if !is_empty(&local) {
            let _kept_dormant = self.engine.merge_stats(&local)?;
        }
        self.read_all(st)?;
        let mine = st.applied.get(&self.config.instance).copied().unwrap_or(0);
        st.next_seq = st.next_seq.max(mine + 1);
        if let Some(p) = st.pending.back() {
            st.next_seq = st.next_seq.max(p.seq + 1);
        }
        if !is_empty(&local) {
            self.queue_delta(st, &local)?;
        }
        st.status.rejoins += 1;
        Ok(())
    }
}

fn lossy(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out: String = text.chars().take(40).collect();
    if text.chars().count() > 40 {
        out.push('…');
    }
    out
}

/// The background thread of [`FleetSync::spawn`]; stops (after its current sync) when
/// stopped or dropped.
#[derive(Debug)]
pub struct FleetThread {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl FleetThread {
    /// Stops the thread and waits for it.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

impl Drop for FleetThread {
    fn drop(&mut self) {
        self.halt();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instance_id_is_checked_for_emptiness_length_in_bytes_and_control_characters() {
        let message = |id: &str| check_instance_id(id).map_err(|e| e.to_string());
        assert_eq!(message("web-7"), Ok(()));
        assert_eq!(message(&"é".repeat(MAX_INSTANCE_ID_LEN / 2)), Ok(()), "at the limit, in bytes");
        assert_eq!(
            message(&format!("{}x", "é".repeat(MAX_INSTANCE_ID_LEN / 2))),
            Err(format!(
                "fleet config: field 'instance': instance id is {} bytes long (at most 256, MAX_INSTANCE_ID_LEN)",
                MAX_INSTANCE_ID_LEN + 1
            ))
        );
        assert_eq!(
            message("pod\t3"),
            Err(
                "fleet config: field 'instance': instance id contains the control character U+0009 at byte 3"
                    .into()
            )
        );
        assert_eq!(message(""), Err("fleet config: field 'instance': instance id is empty".into()));
    }
}
