//! Fleet learning, measured: N instances (each its own engine, sync thread and Redis
//! connection) against one local Redis. Prints how long a click on one instance takes to
//! reach the others (median, p99), the Redis traffic per 1,000 events, and select
//! latency on an instance while it syncs versus idle.
//!
//! Run with `cargo run --release --features redis --example fleet [instances] [interval ms]`
//! (default 3 instances, 50 ms). Starts its own `redis-server` on a free port unless
//! `FLEET_REDIS_URL` names one.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use persona_engine::fleet::{FleetConfig, FleetSync, FleetThread, RedisLog};
use persona_engine::{sample, Context, DataClasses, Engine, FeedbackKind, Selector, SelectorConfig};

type Error = Box<dyn std::error::Error>;

struct Server(Option<Child>, std::path::PathBuf);

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.1);
    }
}

fn redis() -> Result<(String, Server), Error> {
    if let Ok(url) = std::env::var("FLEET_REDIS_URL") {
        return Ok((url, Server(None, std::path::PathBuf::new())));
    }
    let dir = std::env::temp_dir().join(format!("pe-fleet-example-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--loglevel", "warning"])
        .arg("--dir")
        .arg(&dir)
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| format!("redis-server: {e} (install it, or set FLEET_REDIS_URL)"))?;
    let server = Server(Some(child), dir);
    let url = format!("redis://127.0.0.1:{port}/");
    let deadline = Instant::now() + Duration::from_secs(10);
    while redis::Client::open(url.as_str())?
        .get_connection_with_timeout(Duration::from_millis(100))
        .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c))
        .is_err()
    {
        if Instant::now() > deadline {
            return Err("redis-server did not start".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok((url, server))
}

fn net_bytes(url: &str) -> Result<u64, Error> {
    let mut conn = redis::Client::open(url)?.get_connection()?;
    let info: String = redis::cmd("INFO").arg("stats").query(&mut conn)?;
    let field = |name: &str| -> u64 {
        info.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(':')?.trim().parse().ok()).unwrap_or(0)
    };
    Ok(field("total_net_input_bytes") + field("total_net_output_bytes"))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map_or(Ok(3), |a| a.parse())?;
    let interval = Duration::from_millis(args.next().map_or(Ok(50), |a| a.parse())?);
    let (url, _server) = redis()?;
    let prefix = format!("fleet-example-{}", std::process::id());
    let mut fleet: Vec<Arc<FleetSync>> = Vec::new();
    for i in 0..n {
        let engine =
            Arc::new(Engine::new(Selector::new(sample::catalog()?, SelectorConfig::default())?, None));
        let mut config = FleetConfig::new(format!("instance-{i}"));
        config.interval = interval;
        fleet.push(Arc::new(FleetSync::join(engine, RedisLog::open(&url, &prefix)?, config)?));
    }
    let mut threads: Vec<FleetThread> = fleet.iter().map(|s| s.spawn()).collect::<Result<_, _>>()?;
    let ctx = Context::at(sample::NOW);
    let menu = fleet[0].engine().current().catalog().menu().clone();
    let creatives: Vec<String> = sample::catalog_spec()?.creatives.into_iter().map(|c| c.id).collect();
    let person = |persona: usize| -> Result<persona_engine::Profile, Error> {
        let version = fleet[0].engine().current();
        let mut p = version.selector().new_profile(sample::NOW - 365 * 86_400);
        p.consent = DataClasses::ALL;
        p.set_score(&menu, menu.name(persona_engine::PersonaId(persona as u16)), 9, DataClasses::NONE)?;
        Ok(p)
    };

    // 1. Propagation: a click on instance 0 until every other instance counts it.
    let probe = &creatives[0];
    let mut delays = Vec::new();
    for _ in 0..40 {
        let mut who = person(0)?;
        let before: Vec<u64> = fleet[1..].iter().map(|s| clicks(s, probe)).collect();
        let start = Instant::now();
        fleet[0].engine().record_id(&mut who, probe, FeedbackKind::Click, &ctx)?;
        for (s, b) in fleet[1..].iter().zip(&before) {
            while clicks(s, probe) <= *b {
                if start.elapsed() > Duration::from_secs(10) {
                    return Err("a click did not propagate within 10 s".into());
                }
                std::thread::sleep(Duration::from_micros(200));
            }
            delays.push(start.elapsed());
        }
        std::thread::sleep(interval / 3);
    }
    delays.sort();

    // 2. Traffic: 10,000 events spread over the instances, synced in the background.
    let bytes_before = net_bytes(&url)?;
    let events = 10_000;
    let start = Instant::now();
    for k in 0..events {
        let mut who = person(k % menu.len())?;
        let kind = if k % 20 == 0 { FeedbackKind::Click } else { FeedbackKind::Impression };
        fleet[k % n].engine().record_id(&mut who, &creatives[k * 7 % creatives.len()], kind, &ctx)?;
        if k % 100 == 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    std::thread::sleep(interval * 4);
    let recording = start.elapsed();
    let traffic = net_bytes(&url)?.saturating_sub(bytes_before);

    // 3. Select latency on instance 0: idle (its sync stopped, nobody recording) versus
    //    syncing (its thread running while the others record and sync).
    let busy = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = fleet[1..]
        .iter()
        .map(|s| {
            let (s, busy, stop, creatives) =
                (Arc::clone(s), Arc::clone(&busy), Arc::clone(&stop), creatives.clone());
            std::thread::spawn(move || {
                let version = s.engine().current();
                let mut who = version.selector().new_profile(sample::NOW - 365 * 86_400);
                let ctx = Context::at(sample::NOW);
                let mut k = 0;
                while !stop.load(Ordering::Relaxed) {
                    if busy.load(Ordering::Relaxed) {
                        let _ = s.engine().record_id(
                            &mut who,
                            &creatives[k % creatives.len()],
                            FeedbackKind::Impression,
                            &ctx,
                        );
                        k += 1;
                    }
                    std::thread::sleep(Duration::from_micros(200));
                }
            })
        })
        .collect();
    let viewer = person(1)?;
    let mut selection = fleet[0].engine().current().selector().new_selection(3);
    let mut measure = |rounds: usize| -> Result<Vec<Duration>, Error> {
        let mut out = Vec::with_capacity(rounds);
        for _ in 0..rounds {
            let t = Instant::now();
            fleet[0].engine().select(&viewer, &ctx, "home_hero", &mut selection)?;
            out.push(t.elapsed());
        }
        Ok(out)
    };
    let (mut idle, mut syncing) = (Vec::new(), Vec::new());
    let first = threads.remove(0);
    first.stop();
    for _ in 0..5 {
        // Alternate the phases so machine noise falls on both alike.
        busy.store(false, Ordering::Relaxed);
        std::thread::sleep(interval * 2);
        idle.extend(measure(20_000)?);
        busy.store(true, Ordering::Relaxed);
        let thread = fleet[0].spawn()?;
        std::thread::sleep(interval * 2);
        syncing.extend(measure(20_000)?);
        thread.stop();
    }
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        let _ = w.join();
    }
    drop(threads);
    idle.sort();
    syncing.sort();

    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!("instances: {n}, sync interval: {} ms", interval.as_millis());
    println!(
        "click propagation ({} samples): median {:.1} ms, p99 {:.1} ms",
        delays.len(),
        ms(percentile(&delays, 0.5)),
        ms(percentile(&delays, 0.99))
    );
    println!(
        "redis traffic: {:.1} KiB per 1,000 events ({events} events in {:.1} s, all connections, both directions)",
        traffic as f64 / 1024.0 / (events as f64 / 1000.0),
        recording.as_secs_f64()
    );
    let (mi, ms_) = (percentile(&idle, 0.5), percentile(&syncing, 0.5));
    println!(
        "select on instance 0: idle median {:.2} µs p99 {:.2} µs; syncing median {:.2} µs p99 {:.2} µs ({:+.1} % median)",
        us(mi),
        us(percentile(&idle, 0.99)),
        us(ms_),
        us(percentile(&syncing, 0.99)),
        (ms_.as_secs_f64() / mi.as_secs_f64() - 1.0) * 100.0
    );
    let status = fleet[0].status();
    println!(
        "instance 0: appended {}, merged {}, duplicates {}, skipped {}, compactions {}",
        status.appended, status.merged, status.duplicates, status.skipped, status.compactions
    );
    Ok(())
}

fn clicks(sync: &FleetSync, creative: &str) -> u64 {
    let version = sync.engine().current();
    match version.catalog().creative(creative) {
        Ok(id) => version.selector().stats().overall(id).clicks,
        Err(_) => 0,
    }
}
