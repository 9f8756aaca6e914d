//! Fleet learning against a real `redis-server` on 127.0.0.1 (started here on a free
//! port with its own temporary directory): exact totals across processes, a Redis
//! outage, a killed instance, corrupt entries. Run with `cargo test --features redis
//! --test fleet`. Instances in other processes are this test binary run again with
//! `FLEET_ROLE` set (the `child` test).
#![cfg(feature = "redis")]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use persona_engine::fleet::{
    FleetConfig, FleetLog, FleetSync, LogEntry, LogError, ReadLimits, RedisLog, SnapshotBody, Withheld,
};
use persona_engine::limits::{
    MAX_DELTA_ENTRY_BYTES, MAX_INSTANCE_ID_LEN, MAX_SNAPSHOT_BYTES, MAX_SPEC_BYTES, MIN_DELTA_ENTRY_BYTES,
};
use persona_engine::{
    sample, Catalog, CatalogSpec, Context, CreativeSpec, DataClasses, Device, Engine, FeedbackKind, Selector,
    SelectorConfig, StatsSnapshot,
};

// ---------------------------------------------------------------- a Redis of our own

struct Redis {
    child: Child,
    port: u16,
    dir: PathBuf,
    appendonly: &'static str,
}

impl Redis {
    fn start(name: &str) -> Redis {
        Redis::start_with(name, "yes")
    }

    /// A Redis that keeps nothing on disk (`appendonly no`), for data too large to log.
    fn start_volatile(name: &str) -> Redis {
        Redis::start_with(name, "no")
    }

    fn start_with(name: &str, appendonly: &'static str) -> Redis {
        let dir = std::env::temp_dir().join(format!("pe-fleet-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Redis::spawn(&dir, port, appendonly);
        Redis { child, port, dir, appendonly }
    }

    // The child is returned to `Redis`, which kills and waits for it when dropped.
    #[allow(clippy::zombie_processes)]
    fn spawn(dir: &Path, port: u16, appendonly: &str) -> Child {
        let mut child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                appendonly,
            ])
            .args(["--appendfsync", "always", "--daemonize", "no", "--loglevel", "warning"])
            .arg("--dir")
            .arg(dir)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (apt-get install redis-server)");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let ok = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
                .and_then(|c| c.get_connection_with_timeout(Duration::from_millis(200)))
                .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c))
                .is_ok();
            if ok {
                return child;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("redis-server did not start on port {port}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn restart(&mut self) {
        self.child = Redis::spawn(&self.dir, self.port, self.appendonly);
    }

    fn conn(&self) -> redis::Connection {
        redis::Client::open(self.url()).unwrap().get_connection().unwrap()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

// ---------------------------------------------------------------- known events

const V2: &str = "fleet-v2";
const NEW_CREATIVE: &str = "fleet-new-offer";

/// (creative, persona of the person, kind 0 impression / 1 click / 2 conversion)
type Event = (String, String, u8);

fn spec_v2() -> CatalogSpec {
    let mut spec = sample::catalog_spec().unwrap();
    spec.version = V2.into();
    spec.creatives.push(CreativeSpec::new(NEW_CREATIVE).placement("home_hero").persona("Luxury Travel", 1.0));
    spec
}

/// The events instance `who` records in `batch`: deterministic, so every process
/// knows every other's. `with_new` adds events on the creative only v2 has.
fn events(who: usize, batch: usize, n: usize, with_new: bool) -> Vec<Event> {
    let spec = sample::catalog_spec().unwrap();
    let personas = &spec.personas;
    (0..n)
        .map(|k| {
            let x = k * 31 + who * 7 + batch * 13;
            let creative = if with_new && k % 4 == 0 {
                NEW_CREATIVE.to_owned()
            } else {
                spec.creatives[x % spec.creatives.len()].id.clone()
            };
            let persona = personas[(x / 3) % personas.len()].clone();
            let kind = if k % 11 == 0 {
                2
            } else if k % 5 == 0 {
                1
            } else {
                0
            };
            (creative, persona, kind)
        })
        .collect()
}

/// (creative, segment) → [impressions, clicks, conversions], plus (creative, "*") overall.
type Tally = BTreeMap<(String, String), [u64; 3]>;

fn tally(events: &[Event]) -> Tally {
    let mut t = Tally::new();
    for (c, p, kind) in events {
        t.entry((c.clone(), p.clone())).or_default()[*kind as usize] += 1;
        t.entry((c.clone(), "*".into())).or_default()[*kind as usize] += 1;
    }
    t
}

fn tally_of(snap: &StatsSnapshot) -> Tally {
    let mut t = Tally::new();
    for (id, stats) in &snap.creatives {
        let o = &stats.overall;
        if o.impressions + o.clicks + o.conversions > 0 {
            t.insert((id.clone(), "*".into()), [o.impressions, o.clicks, o.conversions]);
        }
        for (seg, c) in &stats.segments {
            if c.impressions + c.clicks + c.conversions > 0 {
                t.insert((id.clone(), seg.clone()), [c.impressions, c.clicks, c.conversions]);
            }
        }
    }
    t
}

fn engine() -> Arc<Engine> {
    let selector = Selector::new(sample::catalog().unwrap(), SelectorConfig::default()).unwrap();
    Arc::new(Engine::new(selector, None))
}

fn record(engine: &Engine, (creative, persona, kind): &Event) {
    let version = engine.current();
    let menu = version.catalog().menu();
    let mut person = version.selector().new_profile(sample::NOW - 365 * 86_400);
    person.visits = 20;
    person.consent = DataClasses::ALL;
    person.set_score(menu, persona, 9, DataClasses::NONE).unwrap();
    let kind = match kind {
        0 => FeedbackKind::Impression,
        1 => FeedbackKind::Click,
        _ => FeedbackKind::Conversion { value: 2.5 },
    };
    let ctx = Context::at(sample::NOW).with_device(Device::Mobile);
    engine.record_id(&mut person, creative, kind, &ctx).unwrap();
}

/// Records and, like a service under load, selects in between.
fn serve(engine: &Engine, events: &[Event]) {
    let version = engine.current();
    let mut selection = version.selector().new_selection(3);
    let person = version.selector().new_profile(sample::NOW - 30 * 86_400);
    let ctx = Context::at(sample::NOW);
    for (k, e) in events.iter().enumerate() {
        record(engine, e);
        engine.select(&person, &ctx, "home_hero", &mut selection).unwrap();
        if k % 25 == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// Records in chunks of ten with a sync after each: one log entry per chunk.
fn serve_syncing(sync: &FleetSync, events: &[Event]) {
    for chunk in events.chunks(10) {
        serve(sync.engine(), chunk);
        sync.tick();
    }
}

type Logged = Arc<Mutex<Vec<String>>>;

fn config(instance: &str) -> (FleetConfig, Logged) {
    let logged: Logged = Arc::default();
    let sink = Arc::clone(&logged);
    let mut config = FleetConfig::new(instance);
    config.interval = Duration::from_millis(20);
    config.compact_every = 10;
    config.error_log = Arc::new(move |m: &str| {
        eprintln!("[fleet] {m}");
        sink.lock().unwrap().push(m.to_owned());
    });
    (config, logged)
}

fn join(url: &str, prefix: &str, instance: &str) -> (Arc<FleetSync>, Logged) {
    let log = RedisLog::open(url, prefix).unwrap().with_timeout(Duration::from_millis(200));
    let (config, logged) = config(instance);
    (Arc::new(FleetSync::join(engine(), log, config).unwrap()), logged)
}

/// Ticks until the engine's counts are `want` (and nothing is pending), or panics.
fn converge(sync: &FleetSync, want: &Tally, within: Duration) {
    converge_all(&[sync], want, within);
}

/// Ticks every instance in turn (each may hold events the others wait for) until all
/// of them count `want` with nothing pending, or panics.
fn converge_all(syncs: &[&FleetSync], want: &Tally, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let statuses: Vec<_> = syncs.iter().map(|s| s.tick()).collect();
        let done = syncs.iter().zip(&statuses).all(|(s, status)| {
            status.connected && status.pending == 0 && &tally_of(&s.engine().save_stats()) == want
        });
        if done {
            return;
        }
        if Instant::now() > deadline {
            let have = tally_of(&syncs[0].engine().save_stats());
            let diff: Vec<_> = want.iter().filter(|(k, v)| have.get(*k) != Some(v)).take(5).collect();
            panic!("no convergence: statuses {statuses:?}; first differences at the first (want) {diff:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn merged(parts: &[Vec<Event>]) -> Tally {
    tally(&parts.concat())
}

// ---------------------------------------------------------------- child processes

fn spawn_child(role: &str, index: usize, redis: &Redis, prefix: &str, out: &Path) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["child", "--exact", "--nocapture", "--test-threads=1"])
        .env("FLEET_ROLE", role)
        .env("FLEET_INDEX", index.to_string())
        .env("FLEET_URL", redis.url())
        .env("FLEET_PREFIX", prefix)
        .env("FLEET_OUT", out)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
}

fn wait_for(child: &mut Child, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return status.success();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    false
}

const PROOF_EVENTS: usize = 400;

fn proof_events(who: usize) -> Vec<Event> {
    // Instance 0 publishes v2 half-way and then records on the new creative too.
    let first = events(who, 0, PROOF_EVENTS / 2, false);
    let second = events(who, 1, PROOF_EVENTS / 2, who == 0);
    [first, second].concat()
}

/// Not a test on its own: the body of an instance in another process.
#[test]
fn child() {
    let Ok(role) = std::env::var("FLEET_ROLE") else { return };
    let index: usize = std::env::var("FLEET_INDEX").unwrap().parse().unwrap();
    let url = std::env::var("FLEET_URL").unwrap();
    let prefix = std::env::var("FLEET_PREFIX").unwrap();
    let out = PathBuf::from(std::env::var("FLEET_OUT").unwrap());
    match role.as_str() {
        "proof" => {
            let (sync, _) = join(&url, &prefix, &format!("proof-{index}"));
            let thread = sync.spawn().unwrap();
            let mine = proof_events(index);
            let (first, second) = mine.split_at(PROOF_EVENTS / 2);
            serve(sync.engine(), first);
            if index == 0 {
                let _swap = sync.publish_catalog(&spec_v2()).unwrap();
            } else {
                // Wait for the new catalog (it arrives through the log) before the second half.
                let deadline = Instant::now() + Duration::from_secs(20);
                while sync.engine().current().catalog().version() != V2 {
                    assert!(Instant::now() < deadline, "catalog v2 never arrived");
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
            serve(sync.engine(), second);
            thread.stop();
            converge(
                &sync,
                &merged(&[proof_events(0), proof_events(1), proof_events(2)]),
                Duration::from_secs(30),
            );
            std::fs::write(&out, sync.engine().save_stats().to_json().unwrap()).unwrap();
        }
        "victim" => {
            let (sync, _) = join(&url, &prefix, "victim");
            let batch = events(9, index, 150, false);
            serve_syncing(&sync, &batch);
            loop {
                let status = sync.tick();
                if status.pending == 0 && status.connected {
                    break;
                }
            }
            println!("FLUSHED {}", sync.status().appended);
            if index == 0 {
                // Wait to be killed.
                loop {
                    sync.tick();
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
            let want: Vec<u8> = std::fs::read(out.with_extension("want")).unwrap();
            let want: Vec<Event> = serde_json::from_slice(&want).unwrap();
            converge(&sync, &tally(&want), Duration::from_secs(20));
            let status = sync.status();
            assert_eq!(status.rejoins, 1);
            std::fs::write(&out, sync.engine().save_stats().to_json().unwrap()).unwrap();
        }
        other => panic!("unknown role {other}"),
    }
}

// ---------------------------------------------------------------- the tests

#[test]
fn three_processes_learn_exactly_the_sum_of_all_events_with_a_catalog_published_mid_run() {
    let redis = Redis::start("proof");
    let started = Instant::now();
    let outs: Vec<PathBuf> = (0..3).map(|i| redis.dir.join(format!("out-{i}.json"))).collect();
    let mut children: Vec<Child> =
        (0..3).map(|i| spawn_child("proof", i, &redis, "proof", &outs[i])).collect();
    for (i, child) in children.iter_mut().enumerate() {
        assert!(wait_for(child, Duration::from_secs(50)), "instance {i} failed");
    }
    let want = merged(&[proof_events(0), proof_events(1), proof_events(2)]);
    assert_eq!(want.values().map(|v| v.iter().sum::<u64>()).sum::<u64>(), 2 * 3 * PROOF_EVENTS as u64);
    let snaps: Vec<StatsSnapshot> = outs
        .iter()
        .map(|p| StatsSnapshot::from_json(&std::fs::read_to_string(p).unwrap()).unwrap())
        .collect();
    for (i, snap) in snaps.iter().enumerate() {
        assert_eq!(snap.catalog_version, V2, "instance {i} did not swap to the published catalog");
        assert_eq!(tally_of(snap), want, "instance {i}: counts per creative and segment");
        assert!(snap.creatives.iter().any(|(id, _)| id == NEW_CREATIVE));
    }
    // Every count (devices, dayparts, expected clicks, values) agrees; model weights may
    // differ (each instance's own events trained its weights first).
    for snap in &snaps[1..] {
        assert_eq!(snap.creatives, snaps[0].creatives);
    }
    eprintln!("proof took {:?}", started.elapsed());
}

#[test]
fn a_redis_outage_never_blocks_serving_and_loses_nothing() {
    let mut redis = Redis::start("outage");
    let url = redis.url();
    let (a, a_log) = join(&url, "outage", "a");
    let (b, _) = join(&url, "outage", "b");
    let (ta, tb) = (a.spawn().unwrap(), b.spawn().unwrap());
    let before = [events(1, 0, 100, false), events(2, 0, 100, false)];
    serve(a.engine(), &before[0]);
    serve(b.engine(), &before[1]);

    redis.stop();
    let during = [events(1, 1, 150, false), events(2, 1, 150, false)];
    let mut slowest = Duration::ZERO;
    let ctx = Context::at(sample::NOW);
    let person = a.engine().current().selector().new_profile(sample::NOW);
    let mut selection = a.engine().current().selector().new_selection(3);
    let until = Instant::now() + Duration::from_secs(2);
    let mut k = 0;
    while Instant::now() < until || k < 150 {
        let t = Instant::now();
        if k < 150 {
            record(a.engine(), &during[0][k]);
            record(b.engine(), &during[1][k]);
        }
        a.engine().select(&person, &ctx, "home_hero", &mut selection).unwrap();
        slowest = slowest.max(t.elapsed());
        k += 1;
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(!a.status().connected, "the outage was noticed");
    // A call that waited on Redis would take at least its 200 ms timeout.
    assert!(slowest < Duration::from_millis(150), "select/record took {slowest:?} while Redis was down");
    redis.restart();
    ta.stop();
    tb.stop();
    let want = merged(&[before.concat(), during.concat()]);
    converge_all(&[&a, &b], &want, Duration::from_secs(15));
    assert!(a_log.lock().unwrap().iter().any(|m| m.contains("reachable again")));
}

#[test]
fn a_killed_instance_restarts_from_the_snapshot_and_the_tail_with_exact_totals() {
    let redis = Redis::start("kill");
    let url = redis.url();
    let (observer, _) = join(&url, "kill", "observer");
    let first_life = events(9, 0, 150, false);
    let out = redis.dir.join("victim.json");
    let mut victim = spawn_child("victim", 0, &redis, "kill", &out);
    let mut said = BufReader::new(victim.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains("FLUSHED") {
        line.clear();
        assert!(said.read_line(&mut line).unwrap() > 0, "the victim ended before flushing");
    }
    // Killed mid-run: its sync thread and selects are still going.
    victim.kill().unwrap();
    victim.wait().unwrap();

    let mine = events(3, 0, 120, false);
    serve_syncing(&observer, &mine);
    converge(&observer, &merged(&[first_life.clone(), mine.clone()]), Duration::from_secs(10));
    assert!(observer.status().compactions > 0, "a snapshot was written and the stream trimmed");
    let trimmed: usize = redis::cmd("XLEN").arg("kill:log").query(&mut redis.conn()).unwrap();
    assert!(trimmed < observer.status().appended as usize + 2, "stream trimmed to {trimmed}");

    let second_life = events(9, 1, 150, false);
    let all = [first_life, mine, second_life].concat();
    std::fs::write(out.with_extension("want"), serde_json::to_vec(&all).unwrap()).unwrap();
    let mut restarted = spawn_child("victim", 1, &redis, "kill", &out);
    assert!(wait_for(&mut restarted, Duration::from_secs(25)), "the restarted instance failed");
    let snap = StatsSnapshot::from_json(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(tally_of(&snap), tally(&all));
    converge(&observer, &tally(&all), Duration::from_secs(10));
}

#[test]
fn corrupt_foreign_and_repeated_entries_are_skipped_never_merged() {
    let redis = Redis::start("corrupt");
    let url = redis.url();
    let (a, _) = join(&url, "corrupt", "a");
    let (b, b_log) = join(&url, "corrupt", "b");
    let mut conn = redis.conn();
    let mut xadd = |fields: &[(&str, &str)]| {
        let mut cmd = redis::cmd("XADD");
        cmd.arg("corrupt:log").arg("*");
        for (k, v) in fields {
            cmd.arg(*k).arg(*v);
        }
        let _: String = cmd.query(&mut conn).unwrap();
    };
    let header = [("fleet", "persona-engine/fleet/1"), ("instance", "x"), ("kind", "delta")];
    let bad_device = r#"{"format":"persona-engine/learned-stats","version":2,"kind":"delta","creatives":{"lux-first-class-lounge":{"overall":{"impressions":5},"devices":{"toaster":{"impressions":5}}}}}"#;
    xadd(&[("hello", "world")]);
    xadd(&[("fleet", "someone-else/9"), ("instance", "x"), ("seq", "1"), ("kind", "delta"), ("body", "{}")]);
    xadd(&[header[0], header[1], ("seq", "one"), header[2], ("body", "{}")]);
    xadd(&[header[0], header[1], ("seq", "1"), header[2], ("body", "not json")]);
    xadd(&[header[0], header[1], ("seq", "1"), header[2], ("body", bad_device)]);
    xadd(&[header[0], header[1], ("seq", "1"), ("kind", "sql"), ("body", "{}")]);
    // A sequence number with no next one, under the id of an instance that joins later:
    // read as its own last entry, it overflowed that instance's next number on joining.
    let empty = r#"{"format":"persona-engine/learned-stats","version":2,"kind":"delta","creatives":{}}"#;
    xadd(&[header[0], ("instance", "late"), ("seq", "18446744073709551615"), header[2], ("body", empty)]);
    // A count past its range on a creative no catalog has: wrong in itself, skipped (it
    // was held back as if this instance's dormant statistics were full, and so kept in
    // the shared snapshot that every later join then refused).
    let ghost = r#"{"format":"persona-engine/learned-stats","version":2,"kind":"delta","creatives":{"ghost":{"overall":{"impressions":9007199254740993}}}}"#;
    xadd(&[header[0], header[1], ("seq", "2"), header[2], ("body", ghost)]);

    let mine = events(4, 0, 120, false);
    serve(a.engine(), &mine);
    a.tick();
    // The same entry appended twice (a retried append) counts once.
    let entries: redis::streams::StreamRangeReply =
        redis::cmd("XRANGE").arg("corrupt:log").arg("-").arg("+").query(&mut redis.conn()).unwrap();
    let last = entries.ids.iter().rev().find(|e| e.map.contains_key("seq")).unwrap();
    let fields: Vec<(String, String)> =
        last.map.iter().map(|(k, v)| (k.clone(), redis::from_redis_value(v).unwrap())).collect();
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    xadd(&fields);

    converge(&b, &tally(&mine), Duration::from_secs(10));
    let status = b.status();
    assert_eq!(status.skipped, 8, "{:?}", b_log.lock().unwrap());
    assert_eq!(status.held_back, 0, "{:?}", b_log.lock().unwrap());
    assert!(status.duplicates >= 1);
    let logged = b_log.lock().unwrap().join("\n");
    for expected in [
        "foreign entry: no 'fleet' field",
        "field 'fleet' is 'someone-else/9'",
        "field 'seq' is 'one', not an integer from 1 to 2^53 (MAX_SEQ)",
        "field 'seq' is '18446744073709551615', not an integer from 1 to 2^53",
        "x #2: stats snapshot: field 'creatives.ghost.overall.impressions': 9007199254740993 is above 9007199254740992 (MAX_EVENT_COUNT)",
        "x #1: ",
        "unknown device 'toaster'",
        "field 'kind' is 'sql', not delta or catalog",
    ] {
        assert!(logged.contains(expected), "no '{expected}' in:\n{logged}");
    }
    // Compacting after all that still holds exactly the good events.
    let (late, _) = join(&url, "corrupt", "late");
    assert_eq!(tally_of(&late.engine().save_stats()), tally(&mine));
}

/// An instance id the other instances could not read the entries of (empty, with a
/// control character, or so long that an entry's short fields pass what readers take) is
/// refused by joining, naming the field, before anything is written; an id of exactly
/// `MAX_INSTANCE_ID_LEN` bytes joins, and its events reach the others.
#[test]
fn an_instance_id_the_others_could_not_read_is_refused_on_joining() {
    let redis = Redis::start_volatile("ids");
    let url = redis.url();
    let long = "i".repeat(MAX_INSTANCE_ID_LEN + 1);
    for (id, want) in [
        ("", "fleet config: field 'instance': instance id is empty".to_owned()),
        (
            "web\n7",
            "fleet config: field 'instance': instance id contains the control character U+000A at byte 3".to_owned(),
        ),
        (
            long.as_str(),
            format!(
                "fleet config: field 'instance': instance id is {} bytes long (at most {MAX_INSTANCE_ID_LEN}, \
                 MAX_INSTANCE_ID_LEN)",
                MAX_INSTANCE_ID_LEN + 1
            ),
        ),
    ] {
        let log = RedisLog::open(&url, "ids").unwrap();
        let err = FleetSync::join(engine(), log, config(id).0).unwrap_err().to_string();
        assert_eq!(err, want);
    }
    let written: usize = redis::cmd("XLEN").arg("ids:log").query(&mut redis.conn()).unwrap();
    assert_eq!(written, 0, "a refused instance wrote to the log");

    let longest = "i".repeat(MAX_INSTANCE_ID_LEN);
    let (a, _) = join(&url, "ids", &longest);
    let (b, b_log) = join(&url, "ids", "b");
    let mine = events(7, 0, 60, false);
    serve_syncing(&a, &mine);
    converge(&b, &tally(&mine), Duration::from_secs(10));
    assert_eq!(b.status().skipped, 0, "{:?}", b_log.lock().unwrap());
}

/// A valid delta one instance cannot hold (its segment table is too small) is merged by
/// the others, and stays in the held-back instance's ledger: a snapshot it stores, and
/// an instance that joins from that snapshot, still hold every event.
#[test]
fn a_delta_one_instance_cannot_hold_stays_in_the_snapshots_it_stores() {
    let redis = Redis::start("heldback");
    let url = redis.url();
    let mut small_table = SelectorConfig::default();
    small_table.learning.segment_cells = 64; // 56 usable: fewer than the events need
    let small_engine =
        Arc::new(Engine::new(Selector::new(sample::catalog().unwrap(), small_table).unwrap(), None));
    let log = RedisLog::open(&url, "heldback").unwrap().with_timeout(Duration::from_millis(200));
    let (small_config, small_log) = config("small");
    let small = FleetSync::join(small_engine, log, small_config).unwrap();
    // The instance that can hold everything never compacts: the snapshot is the small one's.
    let (mut a_config, _) = config("a");
    a_config.compact_every = u64::MAX;
    let a_log = RedisLog::open(&url, "heldback").unwrap().with_timeout(Duration::from_millis(200));
    let a = FleetSync::join(engine(), a_log, a_config).unwrap();

    let mine = events(5, 0, 200, false);
    for chunk in mine.chunks(10) {
        serve(a.engine(), chunk);
        a.tick();
        small.tick();
    }
    // The small instance reads everything, cannot merge some of it, and compacts: its
    // snapshot now covers the whole stream.
    for _ in 0..10 {
        small.tick();
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = small.status();
    assert!(status.compactions >= 1 && status.pending == 0, "{status:?}");
    // A new instance joining from the stored snapshot (and what is left of the tail) has
    // every event.
    let (late, _) = join(&url, "heldback", "late");
    converge(&late, &tally(&mine), Duration::from_secs(10));
    // The small instance said what it could not hold, and holds less.
    assert!(small.status().held_back > 0, "{:?}", small.status());
    let logged = small_log.lock().unwrap().join("\n");
    assert!(
        logged.contains("not merged into this instance") && logged.contains("learning.segment_cells"),
        "{logged}"
    );
    assert_ne!(tally_of(&small.engine().save_stats()), tally(&mine), "the small table held everything");
}

/// A catalog that compiles but that one instance cannot install (its own builder refuses
/// it) is held back there, not lost: it stays in that instance's ledger, so a snapshot
/// it stores carries the new catalog, and an instance that joins from it serves it.
#[test]
fn a_catalog_one_instance_cannot_install_stays_in_the_snapshots_it_stores() {
    let redis = Redis::start("heldcatalog");
    let url = redis.url();
    let (mut picky_config, picky_log) = config("picky");
    picky_config.catalog_builder = Some(Arc::new(|spec: &CatalogSpec| {
        if spec.version == V2 {
            return Err(persona_engine::Error::Invalid {
                what: "picky builder",
                field: "version".into(),
                problem: "not this one".into(),
            });
        }
        Ok((Selector::new(Catalog::compile(spec)?, SelectorConfig::default())?, None))
    }));
    let log = RedisLog::open(&url, "heldcatalog").unwrap().with_timeout(Duration::from_millis(200));
    let picky = FleetSync::join(engine(), log, picky_config).unwrap();
    // The publisher never compacts: the snapshot is the picky one's.
    let (mut a_config, _) = config("a");
    a_config.compact_every = u64::MAX;
    let a_log = RedisLog::open(&url, "heldcatalog").unwrap().with_timeout(Duration::from_millis(200));
    let a = FleetSync::join(engine(), a_log, a_config).unwrap();
    let _swap = a.publish_catalog(&spec_v2()).unwrap();
    // Enough entries after it for the picky instance to compact past the catalog.
    let mine = events(6, 0, 200, false);
    for chunk in mine.chunks(10) {
        serve(a.engine(), chunk);
        a.tick();
        picky.tick();
    }
    for _ in 0..10 {
        picky.tick();
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = picky.status();
    assert!(status.compactions >= 1 && status.held_back >= 1, "{status:?}");
    assert_ne!(picky.engine().current().catalog().version(), V2, "the picky instance installed it");
    let logged = picky_log.lock().unwrap().join("\n");
    assert!(
        logged.contains("catalog) is in the fleet's ledger") && logged.contains("not this one"),
        "{logged}"
    );
    // A new instance joining from the stored snapshot serves the new catalog.
    let (late, _) = join(&url, "heldcatalog", "late");
    assert_eq!(late.engine().current().catalog().version(), V2);
    converge(&late, &tally(&mine), Duration::from_secs(10));
}

fn engine_of(spec: &CatalogSpec) -> Arc<Engine> {
    let selector = Selector::new(Catalog::compile(spec).unwrap(), SelectorConfig::default()).unwrap();
    Arc::new(Engine::new(selector, None))
}

/// An instance that starts with a catalog carrying the fleet's version label but other
/// content installs the fleet's (and says so); one whose catalog is the fleet's keeps it.
#[test]
fn a_local_catalog_reusing_the_fleets_version_label_is_replaced_by_the_fleets() {
    let redis = Redis::start("samelabel");
    let url = redis.url();
    let (a, _) = join(&url, "samelabel", "a");
    let _swap = a.publish_catalog(&spec_v2()).unwrap();
    let mine = events(7, 0, 200, false);
    serve_syncing(&a, &mine);
    assert!(a.status().compactions >= 1, "{:?}", a.status());

    // Same label, one creative fewer.
    let mut stale = sample::catalog_spec().unwrap();
    stale.version = V2.into();
    let log = RedisLog::open(&url, "samelabel").unwrap().with_timeout(Duration::from_millis(200));
    let (stale_config, logged) = config("stale");
    let b = FleetSync::join(engine_of(&stale), log, stale_config).unwrap();
    let version = b.engine().current();
    let catalog = version.catalog();
    assert!(catalog.creative(NEW_CREATIVE).is_ok(), "the instance kept its own catalog labelled '{V2}'");
    assert!(*catalog == Catalog::compile(&spec_v2()).unwrap(), "the fleet's catalog, content and all");
    assert_eq!((b.status().catalog_conflicts, b.status().catalogs), (1, 1), "{:?}", b.status());
    let logged = logged.lock().unwrap().join("\n");
    assert!(logged.contains("other content than the one this instance serves"), "{logged}");
    converge(&b, &tally(&mine), Duration::from_secs(10));

    // The fleet's own catalog: nothing to install.
    let log = RedisLog::open(&url, "samelabel").unwrap().with_timeout(Duration::from_millis(200));
    let (same_config, _) = config("same");
    let c = FleetSync::join(engine_of(&spec_v2()), log, same_config).unwrap();
    assert_eq!((c.status().catalog_conflicts, c.status().catalogs), (0, 0), "{:?}", c.status());
    assert_eq!(c.engine().generation(), 1);
}

// ---------------------------------------------------------------- snapshot size

/// A log whose stored snapshot has a body of `body_len` bytes (zeros, never touched, so
/// even 1 GiB costs no memory until read) and nothing else. It reports the body's length
/// when asked for less, as a log should, unless it is `lax`: then it returns the body
/// whatever was asked.
struct OversizedSnapshot {
    body_len: usize,
    lax: bool,
    asked: Arc<Mutex<Vec<usize>>>,
}

impl FleetLog for OversizedSnapshot {
    fn append(&mut self, _fields: &[(&str, &[u8])]) -> Result<String, LogError> {
        Ok("1-0".into())
    }
    fn read_after(&mut self, _after: Option<&str>, _limits: &ReadLimits) -> Result<Vec<LogEntry>, LogError> {
        Ok(Vec::new())
    }
    fn load_snapshot(&mut self, max_bytes: usize) -> Result<Option<(String, SnapshotBody)>, LogError> {
        self.asked.lock().unwrap().push(max_bytes);
        if self.body_len > max_bytes && !self.lax {
            return Ok(Some(("5-0".into(), SnapshotBody::TooLarge(self.body_len as u64))));
        }
        Ok(Some(("5-0".into(), SnapshotBody::Bytes(vec![0; self.body_len]))))
    }
    fn store_snapshot(&mut self, _position: &str, _body: &[u8]) -> Result<bool, LogError> {
        Ok(false)
    }
    fn report_cursor(&mut self, _instance: &str, _position: &str) -> Result<(), LogError> {
        Ok(())
    }
    fn trim_before(&mut self, _position: &str) -> Result<Option<String>, LogError> {
        Ok(None)
    }
    fn has_gap(&mut self, _cursor: Option<&str>) -> Result<bool, LogError> {
        Ok(false)
    }
}

/// A snapshot body larger than `MAX_SNAPSHOT_BYTES`, the limit of a local snapshot
/// load, is refused by joining, whatever log holds it, before it is parsed: the log is
/// asked for at most that much, and a log that returns more anyway is refused too.
#[test]
fn a_fleet_snapshot_larger_than_max_snapshot_bytes_is_refused() {
    let want = format!(
        "fleet snapshot: {} bytes is more than MAX_SNAPSHOT_BYTES ({MAX_SNAPSHOT_BYTES} bytes)",
        MAX_SNAPSHOT_BYTES + 1
    );
    for lax in [false, true] {
        let asked = Arc::default();
        let log = OversizedSnapshot { body_len: MAX_SNAPSHOT_BYTES + 1, lax, asked: Arc::clone(&asked) };
        let err = FleetSync::join(engine(), log, config("big").0).unwrap_err().to_string();
        assert_eq!(err, want, "lax: {lax}");
        assert_eq!(*asked.lock().unwrap(), [MAX_SNAPSHOT_BYTES]);
    }
}

/// Redis checks the body's length and reads it in one script: a body longer than asked
/// for is reported by its length and never sent (a separate length check and read
/// could see two snapshots, if one were stored between them).
#[test]
fn redis_reports_a_snapshot_body_longer_than_asked_for_without_sending_it() {
    let redis = Redis::start("snaplen");
    let mut log = RedisLog::open(&redis.url(), "snaplen").unwrap();
    assert_eq!(log.load_snapshot(1024).unwrap(), None, "nothing stored yet");
    let body = vec![b'x'; 256 * 1024];
    assert!(log.store_snapshot("5-0", &body).unwrap());
    let mut conn = redis.conn();
    let sent = |conn: &mut redis::Connection| -> u64 {
        let info: String = redis::cmd("INFO").arg("stats").query(conn).unwrap();
        info.lines().find_map(|l| l.strip_prefix("total_net_output_bytes:")).unwrap().trim().parse().unwrap()
    };
    let before = sent(&mut conn);
    let got = log.load_snapshot(body.len() - 1).unwrap();
    let during = sent(&mut conn) - before;
    assert_eq!(got, Some(("5-0".to_owned(), SnapshotBody::TooLarge(body.len() as u64))));
    assert!(during < 16 * 1024, "Redis sent {during} bytes for a body it was not to send");
    let got = log.load_snapshot(body.len()).unwrap();
    assert_eq!(got, Some(("5-0".to_owned(), SnapshotBody::Bytes(body))), "at the limit it is read");
}

/// The same on Redis, at the real limit: a body of 1 GiB + 1 byte stored in the hash
/// (built inside Redis, about 3 GiB of its memory and several seconds: run with
/// `cargo test --release --features redis --test fleet -- --ignored`).
#[test]
#[ignore]
fn a_redis_snapshot_larger_than_max_snapshot_bytes_is_refused_without_reading_it() {
    let redis = Redis::start_volatile("huge");
    let mut conn = redis.conn();
    let () = redis::cmd("CONFIG").arg("SET").arg("proto-max-bulk-len").arg("2gb").query(&mut conn).unwrap();
    let script = "redis.call('SETRANGE', 'tmp', tonumber(ARGV[1]) - 1, 'x') \
                  local body = redis.call('GET', 'tmp') redis.call('DEL', 'tmp') \
                  redis.call('HSET', KEYS[1], 'position', '5-0', 'body', body) \
                  return redis.call('HSTRLEN', KEYS[1], 'body')";
    let stored: usize = redis::cmd("EVAL")
        .arg(script)
        .arg(1)
        .arg("huge:snapshot")
        .arg(MAX_SNAPSHOT_BYTES + 1)
        .query(&mut conn)
        .unwrap();
    assert_eq!(stored, MAX_SNAPSHOT_BYTES + 1);
    let sent = |conn: &mut redis::Connection| -> u64 {
        let info: String = redis::cmd("INFO").arg("stats").query(conn).unwrap();
        info.lines().find_map(|l| l.strip_prefix("total_net_output_bytes:")).unwrap().trim().parse().unwrap()
    };
    let before = sent(&mut conn);
    let log = RedisLog::open(&redis.url(), "huge").unwrap().with_timeout(Duration::from_secs(60));
    let err = FleetSync::join(engine(), log, config("big").0).unwrap_err().to_string();
    let during = sent(&mut conn) - before;
    assert_eq!(
        err,
        format!(
            "fleet snapshot: {} bytes is more than MAX_SNAPSHOT_BYTES ({MAX_SNAPSHOT_BYTES} bytes)",
            MAX_SNAPSHOT_BYTES + 1
        )
    );
    assert!(during < 64 * 1024, "Redis sent {during} bytes while the join was refused");
}

// ---------------------------------------------------------------- entry size

/// Bytes Redis has sent to all its clients so far.
fn redis_sent(conn: &mut redis::Connection) -> u64 {
    let info: String = redis::cmd("INFO").arg("stats").query(conn).unwrap();
    info.lines().find_map(|l| l.strip_prefix("total_net_output_bytes:")).unwrap().trim().parse().unwrap()
}

/// Appends (inside Redis, so the test sends none of it) an entry of instance `instance`
/// whose body is `len` bytes (zeros, then a space), and returns its id.
fn xadd_sized(
    conn: &mut redis::Connection,
    stream: &str,
    instance: &str,
    seq: u64,
    kind: &str,
    len: usize,
) -> String {
    let script = "redis.call('SETRANGE', 'tmp', tonumber(ARGV[1]) - 1, ' ') \
                  local body = redis.call('GET', 'tmp') redis.call('DEL', 'tmp') \
                  return redis.call('XADD', KEYS[1], '*', 'fleet', 'persona-engine/fleet/1', \
                  'instance', ARGV[2], 'seq', ARGV[3], 'kind', ARGV[4], 'body', body)";
    redis::cmd("EVAL")
        .arg(script)
        .arg(1)
        .arg(stream)
        .arg(len)
        .arg(instance)
        .arg(seq)
        .arg(kind)
        .query(conn)
        .unwrap()
}

/// A catalog entry one byte longer than `MAX_SPEC_BYTES` cannot be installed by any
/// instance: it is skipped, counted and logged, naming the entry and the limit, and
/// Redis never sends its body; the valid delta after it is merged.
#[test]
fn a_log_entry_larger_than_its_limit_is_skipped_with_an_error_and_never_sent() {
    let redis = Redis::start_volatile("bigentry");
    let mut conn = redis.conn();
    let log = RedisLog::open(&redis.url(), "bigentry").unwrap().with_timeout(Duration::from_secs(10));
    let (config, logged) = config("b");
    let b = FleetSync::join(engine(), log, config).unwrap();

    let big = xadd_sized(&mut conn, "bigentry:log", "x", 1, "catalog", MAX_SPEC_BYTES + 1);
    let source = engine();
    let mine = events(5, 0, 60, false);
    serve(&source, &mine);
    let delta = source.export_delta().to_json().unwrap();
    let _: String = redis::cmd("XADD")
        .arg("bigentry:log")
        .arg("*")
        .arg("fleet")
        .arg("persona-engine/fleet/1")
        .arg("instance")
        .arg("a")
        .arg("seq")
        .arg("1")
        .arg("kind")
        .arg("delta")
        .arg("body")
        .arg(delta)
        .query(&mut conn)
        .unwrap();

    let before = redis_sent(&mut conn);
    let status = b.tick();
    let during = redis_sent(&mut conn) - before;
    assert!(status.connected, "{:?}", logged.lock().unwrap());
    assert_eq!((status.skipped, status.merged), (1, 1), "{:?}", logged.lock().unwrap());
    assert_eq!(tally_of(&b.engine().save_stats()), tally(&mine));
    let logged = logged.lock().unwrap().join("\n");
    assert!(logged.contains(&format!("skipped log entry {big}: x #1: catalog spec: ")), "{logged}");
    assert!(logged.contains("is more than MAX_SPEC_BYTES (67108864 bytes)"), "{logged}");
    assert!(during < 1 << 20, "Redis sent {during} bytes for an entry it was not to send");
}

/// One read of the Redis log stops once the entries it read reach the byte budget, and
/// an entry past its kind's body limit, or with other fields past theirs, comes back
/// withheld: its sizes and short fields, never its body. Reading on from the last
/// position returns every entry exactly once.
#[test]
fn redis_reads_up_to_a_byte_budget_and_withholds_oversized_entries() {
    let redis = Redis::start_volatile("budget");
    let mut conn = redis.conn();
    let mut ids = Vec::new();
    for seq in 1..=5 {
        ids.push(xadd_sized(&mut conn, "budget:log", "x", seq, "delta", 100_000));
    }
    let big = xadd_sized(&mut conn, "budget:log", "x", 6, "catalog", 300_001);
    let long_instance = "i".repeat(5000);
    let wide = xadd_sized(&mut conn, "budget:log", &long_instance, 7, "delta", 10);
    let mut log = RedisLog::open(&redis.url(), "budget").unwrap();
    let limits = ReadLimits {
        entries: 100,
        batch_bytes: 250_000,
        delta_body_bytes: 200_000,
        catalog_body_bytes: 300_000,
        other_fields_bytes: 4096,
    };
    let header = "fleetpersona-engine/fleet/1instancexseq1kinddelta".len() as u64 + "body".len() as u64;

    let first = log.read_after(None, &limits).unwrap();
    assert_eq!(first.iter().map(|e| e.position.clone()).collect::<Vec<_>>(), ids[..3]);
    let sizes: Vec<_> = first.iter().map(|e| (e.size, e.withheld)).collect();
    assert_eq!(sizes, [(100_000 + header, None); 3]);

    let before = redis_sent(&mut conn);
    let rest = log.read_after(Some(&first[2].position), &limits).unwrap();
    let sent = redis_sent(&mut conn) - before;
    let positions: Vec<_> = rest.iter().map(|e| e.position.clone()).collect();
    // The withheld entry counts by its size: the read ends with it.
    assert_eq!(positions, [ids[3].clone(), ids[4].clone(), big.clone()]);
    let withheld = &rest[2];
    assert_eq!(withheld.size, 300_001 + header + 2);
    assert_eq!(
        withheld.withheld,
        Some(Withheld { body_bytes: 300_001, other_bytes: header - "body".len() as u64 + 2 })
    );
    assert!(withheld.fields.iter().all(|(name, _)| name != "body"), "{:?}", withheld.fields);
    assert!(withheld.fields.iter().any(|(name, value)| name == "instance" && value == b"x"));
    assert!(sent < 250_000, "Redis sent {sent} bytes: the withheld body was sent");
    let last = log.read_after(Some(&big), &limits).unwrap();
    assert_eq!(last.iter().map(|e| e.position.clone()).collect::<Vec<_>>(), [wide]);
    let wide = &last[0];
    assert_eq!(wide.withheld.map(|w| w.body_bytes), Some(10));
    assert!(wide.fields.iter().all(|(name, _)| name != "instance" && name != "body"));
    assert!(log.read_after(Some(&wide.position), &limits).unwrap().is_empty());
}

/// An instance reading entries whose total passes its byte budget reads them over
/// several calls and merges every one of them; an entry whose fields other than its
/// body pass `MAX_ENTRY_FIELDS_BYTES` is skipped unread, named by its position.
#[test]
fn an_instance_reads_a_large_tail_in_budgeted_batches_and_merges_all_of_it() {
    let redis = Redis::start_volatile("batches");
    let url = redis.url();
    let log = RedisLog::open(&url, "batches").unwrap();
    let (mut config_a, _) = config("a");
    config_a.compact_every = 0;
    let a = FleetSync::join(engine(), log, config_a).unwrap();
    let log = RedisLog::open(&url, "batches").unwrap().with_timeout(Duration::from_secs(2));
    let (mut config, logged) = config("b");
    config.read_batch_bytes = 1;
    config.compact_every = 0;
    let b = FleetSync::join(engine(), log, config).unwrap();
    let mine = events(6, 0, 200, false);
    serve_syncing(&a, &mine);
    let wide = xadd_sized(&mut redis.conn(), "batches:log", &"i".repeat(5000), 1, "delta", 10);
    let status = b.tick();
    assert_eq!((status.merged, status.skipped), (20, 1), "{:?}", logged.lock().unwrap());
    assert_eq!(tally_of(&b.engine().save_stats()), tally(&mine));
    let logged = logged.lock().unwrap().join("\n");
    assert!(
        logged.contains(&format!(
            "skipped log entry {wide}: field 'instance' is missing; fleet entry: fields other than 'body': 5048 \
             bytes is more than MAX_ENTRY_FIELDS_BYTES (4096 bytes)"
        )),
        "{logged}"
    );
}

// ---------------------------------------------------------------- delta size

/// The sample catalog plus `n` creatives, and one event on each new creative.
fn wide_catalog(n: usize) -> (CatalogSpec, Vec<Event>) {
    let mut spec = sample::catalog_spec().unwrap();
    spec.version = "wide".into();
    let personas = spec.personas.clone();
    let mut events = Vec::new();
    for k in 0..n {
        let id = format!("wide-{k:05}");
        spec.creatives.push(CreativeSpec::new(&id).placement("home_hero").persona("Luxury Travel", 1.0));
        events.push((id, personas[k % personas.len()].clone(), (k % 3) as u8));
    }
    (spec, events)
}

/// The bodies of the delta entries `instance` appended, in log order.
fn delta_bodies(conn: &mut redis::Connection, stream: &str, instance: &str) -> Vec<Vec<u8>> {
    let entries: redis::streams::StreamRangeReply =
        redis::cmd("XRANGE").arg(stream).arg("-").arg("+").query(conn).unwrap();
    let field = |e: &redis::streams::StreamId, name: &str| -> Vec<u8> {
        e.map.get(name).map(|v| redis::from_redis_value(v).unwrap()).unwrap_or_default()
    };
    entries
        .ids
        .iter()
        .filter(|e| field(e, "instance") == instance.as_bytes() && field(e, "kind") == b"delta")
        .map(|e| field(e, "body"))
        .collect()
}

/// A delta larger than Redis takes in one value (`proto-max-bulk-len` at its smallest
/// setting, 1 MiB) is appended as several entries, each a valid delta within the default
/// bound, instead of being refused and retried forever: another instance merges exactly
/// the whole, and so does one that joins later.
#[test]
fn a_delta_larger_than_the_log_takes_is_split_into_entries_that_sum_to_it() {
    let redis = Redis::start_volatile("split");
    let url = redis.url();
    let mut conn = redis.conn();
    let () = redis::cmd("CONFIG").arg("SET").arg("proto-max-bulk-len").arg("1mb").query(&mut conn).unwrap();
    let (spec, mine) = wide_catalog(3000);
    let open = || RedisLog::open(&url, "split").unwrap().with_timeout(Duration::from_secs(2));
    let (config_a, _) = config("a");
    let a = FleetSync::join(engine_of(&spec), open(), config_a).unwrap();
    let (config_b, b_log) = config("b");
    let b = FleetSync::join(engine_of(&spec), open(), config_b).unwrap();
    for event in &mine {
        record(a.engine(), event);
    }
    converge_all(&[&a, &b], &tally(&mine), Duration::from_secs(20));
    assert_eq!(b.status().skipped, 0, "{:?}", b_log.lock().unwrap());
    // A few entries: below `compact_every`, so none is trimmed yet.
    let bodies = delta_bodies(&mut conn, "split:log", "a");
    let total: usize = bodies.iter().map(Vec::len).sum();
    assert!(bodies.len() > 1 && total > 1 << 20, "{} entries, {total} bytes", bodies.len());
    for body in &bodies {
        assert!(body.len() <= 1024 * 1024 - 4096, "an entry of {} bytes", body.len());
        StatsSnapshot::from_json(std::str::from_utf8(body).unwrap()).unwrap();
    }
    let (config_late, _) = config("late");
    let late = FleetSync::join(engine_of(&spec), open(), config_late).unwrap();
    assert_eq!(tally_of(&late.engine().save_stats()), tally(&mine));
}

/// With the smallest bound an instance may set, a busy sync's delta goes out as many
/// small entries, each a valid delta within it, and every instance (one joining later
/// too) counts exactly the events recorded; a bound outside the range is refused on
/// joining, naming the field.
#[test]
fn a_configured_delta_bound_splits_every_delta_exactly_and_is_refused_out_of_range() {
    let redis = Redis::start_volatile("smallsplit");
    let url = redis.url();
    let open = || RedisLog::open(&url, "smallsplit").unwrap().with_timeout(Duration::from_secs(2));
    for (bound, want) in [
        (
            MIN_DELTA_ENTRY_BYTES - 1,
            format!(
                "fleet config: field 'max_delta_bytes': {} bytes is below {MIN_DELTA_ENTRY_BYTES} \
                 (MIN_DELTA_ENTRY_BYTES): a delta might not split into entries that small",
                MIN_DELTA_ENTRY_BYTES - 1
            ),
        ),
        (
            MAX_DELTA_ENTRY_BYTES + 1,
            format!(
                "fleet config: field 'max_delta_bytes': {} bytes is above {MAX_DELTA_ENTRY_BYTES} \
                 (MAX_DELTA_ENTRY_BYTES): Redis refuses a value over 512 MiB by default (proto-max-bulk-len)",
                MAX_DELTA_ENTRY_BYTES + 1
            ),
        ),
    ] {
        let (mut config, _) = config("a");
        config.max_delta_bytes = bound;
        assert_eq!(FleetSync::join(engine(), open(), config).unwrap_err().to_string(), want);
    }

    let (mut config_a, _) = config("a");
    config_a.max_delta_bytes = MIN_DELTA_ENTRY_BYTES;
    config_a.compact_every = 0; // the entries stay in the stream until `b` compacts
    let a = FleetSync::join(engine(), open(), config_a).unwrap();
    let (b, b_log) = join(&url, "smallsplit", "b");
    let mine = events(8, 0, 3000, false);
    serve(a.engine(), &mine);
    let status = a.tick();
    assert_eq!(status.pending, 0, "{status:?}");
    // Read before the others compact and trim them.
    let bodies = delta_bodies(&mut redis.conn(), "smallsplit:log", "a");
    assert!(bodies.len() > 2, "{} entries", bodies.len());
    for body in &bodies {
        assert!(body.len() <= MIN_DELTA_ENTRY_BYTES, "an entry of {} bytes", body.len());
        StatsSnapshot::from_json(std::str::from_utf8(body).unwrap()).unwrap();
    }
    converge_all(&[&a, &b], &tally(&mine), Duration::from_secs(20));
    assert_eq!(b.status().skipped, 0, "{:?}", b_log.lock().unwrap());
    assert!(b.status().compactions > 0, "{:?}", b.status());
    let (late, _) = join(&url, "smallsplit", "late");
    assert_eq!(tally_of(&late.engine().save_stats()), tally(&mine));
}
