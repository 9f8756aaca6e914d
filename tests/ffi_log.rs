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
