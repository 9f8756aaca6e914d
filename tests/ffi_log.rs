//! The decision log writer through the C ABI: open, log decisions with their
//! propensities and arms, log outcomes, close; what is written reads back with the Rust
//! reader; bad arguments give a status and a message naming the problem.

use std::ptr::{null, null_mut};

use persona_engine::eval::DecisionLogReader;
use persona_engine::ffi::*;
use persona_engine::holdout::Arm;
use persona_engine::sample;

#[path = "common/capi.rs"]
mod capi;
use capi::{c, last_error, ok};

#[track_caller]
fn fails(status: pe_status, expected: pe_status, needle: &str) {
    let message = last_error();
    assert_eq!(status, expected, "message: {message}");
    assert!(message.contains(needle), "message {message:?} does not contain {needle:?}");
}

struct World {
    selector: *mut pe_selector,
    profile: *mut pe_profile,
    selection: *mut pe_selection,
    hero: u16,
}

impl World {
    fn new() -> Self {
        let (p, l) = c(sample::CATALOG_JSON);
        let mut selector = null_mut();
        ok(unsafe { pe_selector_new_from_json(p, l, null(), 0, &mut selector) });
        let mut profile = null_mut();
        ok(unsafe { pe_profile_new(selector, sample::NOW - 90 * 86_400, &mut profile) });
        let (n, nl) = c("Luxury Travel");
        ok(unsafe { pe_profile_set_score(profile, n, nl, 9, PE_DATA_CLASSES_NONE) });
        let mut selection = null_mut();
        ok(unsafe { pe_selection_new(selector, 2, &mut selection) });
        let (h, hl) = c("home_hero");
        let mut hero = 0;
        ok(unsafe { pe_selector_placement(selector, h, hl, &mut hero) });
        World { selector, profile, selection, hero }
    }

    fn context(&self, region: &'static str, attrs: &[pe_attribute]) -> pe_context {
        pe_context {
            at: sample::NOW,
            utc_offset_minutes: 60,
            device: pe_device::Mobile as u32,
            channel: pe_channel::Web as u32,
            weather: pe_weather::Unknown as u32,
            seed: 42,
            region: region.as_ptr().cast(),
            region_len: region.len(),
            attributes: attrs.as_ptr(),
            attribute_count: attrs.len(),
        }
    }

    fn pick(&self, index: usize) -> u32 {
        let mut creative = u32::MAX;
        ok(unsafe { pe_selection_creative(self.selection, index, &mut creative) });
        creative
    }
}

impl Drop for World {
    fn drop(&mut self) {
        unsafe {
            pe_selection_free(self.selection);
            pe_profile_free(self.profile);
            pe_selector_free(self.selector);
        }
    }
}

fn temp_path(name: &str) -> String {
    let path = std::env::temp_dir().join(format!("pe-ffi-log-{name}-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path.display().to_string()
}

#[test]
fn decisions_and_outcomes_logged_from_c_read_back() {
    let w = World::new();
    let path = temp_path("roundtrip");
    let (p, l) = c(&path);
    let mut log = null_mut();
    ok(unsafe { pe_decision_log_open(p, l, 0, &mut log) });
    let (k, v) = ("loyalty_tier", "gold");
    let attrs = [pe_attribute {
        key: k.as_ptr().cast(),
        key_len: k.len(),
        value: v.as_ptr().cast(),
        value_len: v.len(),
    }];
    let ctx = w.context("FR", &attrs);
    let mut decisions = Vec::new();
    for (person, arm) in [("p-1", pe_arm::Personalized), ("p-2", pe_arm::Holdout), ("", pe_arm::None)] {
        ok(unsafe { pe_select(w.selector, w.profile, &ctx, w.hero, w.selection) });
        let (pp, pl) = c(person);
        let mut number = 0u64;
        ok(unsafe {
            pe_decision_log_decision(
                log,
                w.selector,
                w.profile,
                &ctx,
                w.hero,
                w.selection,
                pp,
                pl,
                arm as u32,
                &mut number,
            )
        });
        decisions.push(number);
    }
    assert_eq!(decisions, [1, 2, 3]);
    let (first, second) = (w.pick(0), w.pick(1));
    ok(unsafe {
        pe_decision_log_outcome(log, w.selector, 1, first, pe_feedback_kind::Impression as u32, 0.0)
    });
    ok(unsafe { pe_decision_log_outcome(log, w.selector, 1, first, pe_feedback_kind::Click as u32, 0.0) });
    ok(unsafe {
        pe_decision_log_outcome(log, w.selector, 1, first, pe_feedback_kind::Conversion as u32, 30.0)
    });
    ok(unsafe {
        pe_decision_log_outcome(log, w.selector, 2, second, pe_feedback_kind::Impression as u32, 0.0)
    });
    ok(unsafe { pe_decision_log_close(log) });
    let records: Vec<_> = DecisionLogReader::open(&path).unwrap().map(|r| r.unwrap().1).collect();
    assert_eq!(records.len(), 3);
    let r = &records[0];
    assert_eq!((r.person.as_deref(), r.arm), (Some("p-1"), Some(Arm::Personalized)));
    assert_eq!(r.context.region.as_deref(), Some("FR"));
    assert_eq!(r.context.attributes, [("loyalty_tier".to_owned(), "gold".to_owned())]);
    assert_eq!(r.context.seed, Some(42));
    assert_eq!(r.chosen.len(), 2);
    assert!(r.chosen.iter().all(|c| c.propensity > 0.0 && c.propensity <= 1.0));
    let reward = r.chosen[0].reward.unwrap();
    assert!(reward.click && reward.conversion_value == 30.0);
    assert_eq!(r.chosen[1].reward, None);
    assert!(r.persona_scores.iter().any(|(n, s)| n == "Luxury Travel" && s.score == 9));
    assert_eq!(
        (records[1].arm, records[1].chosen[1].reward.map(|r| r.click)),
        (Some(Arm::Holdout), Some(false))
    );
    assert_eq!((records[2].arm, records[2].person.as_deref()), (None, None));
    let _ = std::fs::remove_file(&path);
}

#[test]
fn past_capacity_the_oldest_decision_is_written_and_refuses_outcomes() {
    let w = World::new();
    let path = temp_path("capacity");
    let (p, l) = c(&path);
    let mut log = null_mut();
    ok(unsafe { pe_decision_log_open(p, l, 2, &mut log) });
    let ctx = w.context("", &[]);
    for _ in 0..3 {
        ok(unsafe { pe_select(w.selector, w.profile, &ctx, w.hero, w.selection) });
        let mut n = 0;
        ok(unsafe {
            pe_decision_log_decision(
                log,
                w.selector,
                w.profile,
                &ctx,
                w.hero,
                w.selection,
                null(),
                0,
                0,
                &mut n,
            )
        });
    }
    let status = unsafe { pe_decision_log_outcome(log, w.selector, 1, w.pick(0), 0, 0.0) };
    fails(status, pe_status::OutOfRange, "decision 1 is not waiting for outcomes");
    ok(unsafe { pe_decision_log_outcome(log, w.selector, 2, w.pick(0), 0, 0.0) });
    ok(unsafe { pe_decision_log_flush(log) });
    assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 3);
    let status = unsafe { pe_decision_log_outcome(log, w.selector, 3, w.pick(0), 0, 0.0) };
    fails(status, pe_status::OutOfRange, "decision 3 is not waiting");
    ok(unsafe { pe_decision_log_close(log) });
    ok(unsafe { pe_decision_log_close(null_mut()) });
    unsafe { pe_decision_log_free(null_mut()) };
    let _ = std::fs::remove_file(&path);
}

#[test]
fn bad_arguments_name_the_problem() {
    let w = World::new();
    let mut log = null_mut();
    let (p, l) = c("/nonexistent-dir/x/decisions.jsonl");
    fails(
        unsafe { pe_decision_log_open(p, l, 0, &mut log) },
        pe_status::Io,
        "/nonexistent-dir/x/decisions.jsonl",
    );
    assert!(log.is_null());
    fails(unsafe { pe_decision_log_open(null(), 3, 0, &mut log) }, pe_status::NullParameter, "'path'");
    let bad = [0xffu8, 0xfe];
    fails(
        unsafe { pe_decision_log_open(bad.as_ptr().cast(), 2, 0, &mut log) },
        pe_status::InvalidUtf8,
        "'path'",
    );
    let path = temp_path("bad");
    let (p, l) = c(&path);
    ok(unsafe { pe_decision_log_open(p, l, 0, &mut log) });
    let ctx = w.context("", &[]);
    let mut n = 0;
    let status = unsafe {
        pe_decision_log_decision(log, w.selector, w.profile, &ctx, w.hero, w.selection, null(), 0, 0, &mut n)
    };
    fails(status, pe_status::InvalidArgument, "selection: it holds no pick");
    ok(unsafe { pe_select(w.selector, w.profile, &ctx, w.hero, w.selection) });
    let status = unsafe {
        pe_decision_log_decision(log, w.selector, w.profile, &ctx, w.hero, w.selection, null(), 0, 7, &mut n)
    };
    fails(status, pe_status::InvalidArgument, "arm: 7 is not a pe_arm value");
    let status = unsafe {
        pe_decision_log_decision(log, w.selector, w.profile, &ctx, 999, w.selection, null(), 0, 0, &mut n)
    };
    fails(status, pe_status::OutOfRange, "placement id 999");
    let status = unsafe {
        pe_decision_log_decision(
            null_mut(),
            w.selector,
            w.profile,
            &ctx,
            w.hero,
            w.selection,
            null(),
            0,
            0,
            &mut n,
        )
    };
    fails(status, pe_status::NullParameter, "'log'");
    // A person key so long that the line could never be read back (even before the
    // outcomes add their rewards): refused, naming the field, and nothing is queued.
    let key = "k".repeat(1 << 20);
    let status = unsafe {
        pe_decision_log_decision(
            log,
            w.selector,
            w.profile,
            &ctx,
            w.hero,
            w.selection,
            key.as_ptr().cast(),
            key.len(),
            0,
            &mut n,
        )
    };
    fails(status, pe_status::InvalidArgument, "field 'person': 1048578 bytes make the line");
    assert!(last_error().contains("kept for outcomes, more than MAX_LOG_LINE_BYTES"), "{}", last_error());
    ok(unsafe {
        pe_decision_log_decision(log, w.selector, w.profile, &ctx, w.hero, w.selection, null(), 0, 1, &mut n)
    });
    let status = unsafe { pe_decision_log_outcome(log, w.selector, n, w.pick(0), 9, 0.0) };
    fails(status, pe_status::InvalidArgument, "kind: 9 is not a pe_feedback_kind");
    let status = unsafe { pe_decision_log_outcome(log, w.selector, n, 100_000, 0, 0.0) };
    fails(status, pe_status::OutOfRange, "100000");
    let status = unsafe { pe_decision_log_outcome(log, w.selector, n, w.pick(0), 2, f64::NAN) };
    fails(status, pe_status::InvalidArgument, "value");
    // A creative of the catalog that was not picked.
    let other = (0..20).find(|c| *c != w.pick(0) && *c != w.pick(1)).unwrap();
    let status = unsafe { pe_decision_log_outcome(log, w.selector, n, other, 0, 0.0) };
    fails(status, pe_status::InvalidArgument, "was not picked in decision");
    ok(unsafe { pe_decision_log_close(log) });
    let _ = std::fs::remove_file(&path);
}

/// Logs the decision `w.selection` holds and returns its number.
fn log_decision(w: &World, log: *mut pe_decision_log, ctx: &pe_context) -> Result<u64, pe_status> {
    ok(unsafe { pe_select(w.selector, w.profile, ctx, w.hero, w.selection) });
    let mut n = 0;
    let status = unsafe {
        pe_decision_log_decision(log, w.selector, w.profile, ctx, w.hero, w.selection, null(), 0, 0, &mut n)
    };
    if status == pe_status::Ok {
        Ok(n)
    } else {
        Err(status)
    }
}

#[test]
fn conversions_past_the_limit_are_refused_by_the_outcome_call_and_lose_nothing() {
    let w = World::new();
    let path = temp_path("conversion-limit");
    let (p, l) = c(&path);
    let mut log = null_mut();
    ok(unsafe { pe_decision_log_open(p, l, 1, &mut log) });
    let ctx = w.context("", &[]);
    let first = log_decision(&w, log, &ctx).expect("logged");
    let pick = w.pick(0);
    let conversion = pe_feedback_kind::Conversion as u32;
    ok(unsafe { pe_decision_log_outcome(log, w.selector, first, pick, conversion, 6e8) });
    // Each value is within 1e9, their sum is not: the second call says so, naming the
    // field and both numbers, and changes nothing.
    let status = unsafe { pe_decision_log_outcome(log, w.selector, first, pick, conversion, 6e8) };
    fails(
        status,
        pe_status::InvalidArgument,
        "decision 1: decision record: field 'chosen[0].reward.conversion_value': 600000000 + 600000000 is \
         above the limit 1000000000",
    );
    ok(unsafe { pe_decision_log_outcome(log, w.selector, first, pick, pe_feedback_kind::Click as u32, 0.0) });
    // The next decision writes the first (capacity 1) and gets its number.
    assert_eq!(log_decision(&w, log, &ctx), Ok(2));
    assert_eq!(log_decision(&w, log, &ctx), Ok(3));
    ok(unsafe { pe_decision_log_close(log) });
    let records: Vec<_> = DecisionLogReader::open(&path).unwrap().map(|r| r.unwrap().1).collect();
    assert_eq!(records.len(), 3, "every decision is written");
    let reward = records[0].chosen[0].reward.expect("observed");
    assert!(reward.click && reward.conversion_value == 6e8, "{reward:?}");
    let _ = std::fs::remove_file(&path);
}

/// `/dev/full` accepts the open and fails every write that reaches it (ENOSPC).
#[cfg(target_os = "linux")]
#[test]
fn a_failed_write_keeps_the_decision_waiting() {
    let w = World::new();
    let (p, l) = c("/dev/full");
    let mut log = null_mut();
    ok(unsafe { pe_decision_log_open(p, l, 1, &mut log) });
    let ctx = w.context("", &[]);
    let mut numbers = Vec::new();
    // The file's buffer takes the first lines; once it is full, the write of the oldest
    // decision fails.
    let failed = loop {
        match log_decision(&w, log, &ctx) {
            Ok(n) => numbers.push(n),
            Err(status) => break status,
        }
        assert!(numbers.len() < 1000, "writes to /dev/full never failed");
    };
    assert_eq!(failed, pe_status::Io, "{}", last_error());
    assert!(last_error().contains("/dev/full"), "{}", last_error());
    // The decision whose write failed still waits and takes outcomes; the new decision
    // was not logged (it got no number, and the next one gets that number).
    let oldest = *numbers.last().expect("some decisions were logged");
    ok(unsafe { pe_decision_log_outcome(log, w.selector, oldest, w.pick(0), 0, 0.0) });
    assert_eq!(log_decision(&w, log, &ctx), Err(pe_status::Io));
    fails(unsafe { pe_decision_log_flush(log) }, pe_status::Io, "/dev/full");
    ok(unsafe { pe_decision_log_outcome(log, w.selector, oldest, w.pick(0), 1, 0.0) });
    // Closing frees the handle either way, and says what goes with it: the oldest
    // decision, the one whose write failed, still waits.
    fails(unsafe { pe_decision_log_close(log) }, pe_status::Io, "/dev/full");
    assert!(last_error().contains("the log is closed: 1 waiting decision is lost"), "{}", last_error());
}
