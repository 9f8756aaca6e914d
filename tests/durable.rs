//! Durable snapshots: statistics and profiles are written atomically, so a crash in the
//! middle of a write (a real one: a child process aborts with the temporary file half
//! or fully written) or a failing writer leaves the previous file intact; loading a
//! truncated, corrupted, non-UTF-8 or oversized file fails cleanly and leaves the
//! running engine exactly as it was.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use persona_engine::durable::{write_atomically, write_atomically_with};
use persona_engine::limits::{MAX_PROFILE_BYTES, MAX_SNAPSHOT_BYTES, MAX_SPEC_BYTES};
use persona_engine::{
    Catalog, Context, CreativeSpec, Device, Engine, Error, Feedback, FeedbackKind, Profile, Selector,
};

/// A fresh, empty directory for one test.
fn dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("durable").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The names in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn catalog() -> Vec<CreativeSpec> {
    vec![tagged("lux", "Luxury"), tagged("fam", "Family"), tagged("adv", "Adventure")]
}

fn busy(impressions: u32) -> Selector {
    let sel = selector(catalog());
    let mut p = person(&sel, &[("Luxury", 9)]);
    for (id, n) in [("lux", impressions), ("fam", impressions / 2)] {
        let c = sel.creative(id).unwrap();
        for i in 0..n {
            let moment = Context::at(NOW + i64::from(i)).with_device(Device::Tablet);
            sel.record(&mut p, &Feedback::new(c, FeedbackKind::Impression, &moment)).unwrap();
        }
    }
    sel
}

/// Run as a child process by `a_crash_in_the_middle_of_a_write_leaves_the_previous_file`:
/// starts an atomic write of `PE_CRASH_PATH` and aborts the process in the middle (a
/// crash: no unwinding, no cleanup). Run normally, it does nothing.
#[test]
fn crash_child() {
    let (Ok(path), Ok(stage)) = (std::env::var("PE_CRASH_PATH"), std::env::var("PE_CRASH_STAGE")) else {
        return;
    };
    let contents = busy(50).save_stats().to_json().unwrap();
    let _ = write_atomically_with(&path, |out| {
        let half = if stage == "mid-write" { contents.len() / 2 } else { contents.len() };
        out.write_all(&contents.as_bytes()[..half])?;
        out.flush()?;
        std::process::abort()
    });
    unreachable!("the write aborts the process");
}

#[test]
fn a_crash_in_the_middle_of_a_write_leaves_the_previous_file() {
    for stage in ["mid-write", "before-rename"] {
        let dir = dir(&format!("crash-{stage}"));
        let path = dir.join("stats.json");
        let old = busy(3);
        old.save_stats_to(&path).unwrap();
        let old_bytes = std::fs::read(&path).unwrap();

        let status = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "crash_child", "--nocapture", "--test-threads", "1"])
            .env("PE_CRASH_PATH", &path)
            .env("PE_CRASH_STAGE", stage)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(!status.success(), "the child was meant to crash");

        // The previous file is untouched and loads; the crash left only its temporary file.
        assert_eq!(std::fs::read(&path).unwrap(), old_bytes, "{stage}");
        let names = listing(&dir);
        assert_eq!(names.len(), 2, "{names:?}");
        assert!(names[0].starts_with(".stats.json.") && names[0].ends_with(".tmp"), "{names:?}");
        let partial = std::fs::read(dir.join(&names[0])).unwrap();
        assert!(!partial.is_empty(), "the child had written its temporary file");
        let fresh = selector(catalog());
        let _ = fresh.load_stats_from(&path).unwrap();
        assert_eq!(fresh.save_stats(), old.save_stats());

        // The next write goes through and replaces the file.
        let new = busy(8);
        new.save_stats_to(&path).unwrap();
        let _ = fresh.load_stats_from(&path).unwrap();
        assert_eq!(fresh.save_stats(), new.save_stats());
    }
}

#[test]
fn a_failing_writer_leaves_the_previous_file_and_no_temporary_file() {
    let dir = dir("failing-writer");
    let path = dir.join("profile.json");
    write_atomically(&path, b"previous").unwrap();
    let err = write_atomically_with(&path, |out| {
        out.write_all(b"half of the new cont")?;
        Err(std::io::Error::new(std::io::ErrorKind::StorageFull, "disk full (injected)"))
    })
    .unwrap_err();
    assert!(matches!(err, Error::Io { .. }));
    assert!(
        err.to_string().contains("profile.json") && err.to_string().contains("disk full (injected)"),
        "{err}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), b"previous");
    assert_eq!(listing(&dir), ["profile.json"]);
    // Writing where no file can be: an error naming the path, nothing created.
    let err = write_atomically(dir.join("no-such-dir").join("x.json"), b"{}").unwrap_err();
    assert!(err.to_string().contains("no-such-dir"), "{err}");
    assert_eq!(listing(&dir), ["profile.json"]);
}

#[test]
fn truncated_or_corrupted_statistics_files_fail_cleanly_and_change_nothing() {
    let dir = dir("corrupt-stats");
    let path = dir.join("stats.json");
    busy(20).save_stats_to(&path).unwrap();
    let good = std::fs::read(&path).unwrap();
    // A running engine with statistics of its own.
    let engine = Engine::new(busy(5), None);
    let before = engine.save_stats();
    let mut corrupt = good.clone();
    corrupt[good.len() / 2] = b'#';
    let not_utf8 = [&good[..10], &[0xff, 0xfe], &good[12..]].concat();
    for (what, bytes, expected) in [
        ("empty", &b""[..], "stats.json: the file is empty (expected a stats snapshot in JSON)"),
        ("truncated", &good[..good.len() / 2], "stats.json: stats snapshot: invalid JSON: EOF while parsing"),
        ("one byte short", &good[..good.len() - 1], "stats snapshot: invalid JSON: EOF while parsing"),
        ("corrupted", &corrupt[..], "stats snapshot: invalid JSON"),
        ("not UTF-8", &not_utf8[..], "stream did not contain valid UTF-8"),
    ] {
        std::fs::write(&path, bytes).unwrap();
        let err = engine.load_stats_from(&path).unwrap_err();
        assert!(err.to_string().contains(expected), "{what}: {err}");
        let err = engine.current().selector().load_stats_from(&path).unwrap_err();
        assert!(err.to_string().contains(expected), "{what}: {err}");
        assert_eq!(engine.save_stats(), before, "{what}");
    }
    let err = engine.load_stats_from(dir.join("missing.json")).unwrap_err();
    assert!(err.to_string().contains("missing.json"), "{err}");
    // An oversized file is refused by its size, before it is read (a sparse file: no
    // disk is used).
    let huge = dir.join("huge.json");
    std::fs::File::create(&huge).unwrap().set_len(MAX_SNAPSHOT_BYTES as u64 + 1).unwrap();
    let err = engine.load_stats_from(&huge).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "stats snapshot: {} bytes is more than MAX_SNAPSHOT_BYTES ({MAX_SNAPSHOT_BYTES} bytes)",
            MAX_SNAPSHOT_BYTES + 1
        )
    );
    assert_eq!(engine.save_stats(), before);
    // And the good file loads.
    std::fs::write(&path, &good).unwrap();
    let _ = engine.load_stats_from(&path).unwrap();
    assert_eq!(engine.save_stats(), busy(20).save_stats());
}

#[test]
fn profiles_round_trip_through_files_and_bad_files_fail_cleanly() {
    let dir = dir("profiles");
    let path = dir.join("person.json");
    let sel = busy(2);
    let menu = sel.catalog().menu();
    let mut p = person(&sel, &[("Family", 8)]);
    let fam = sel.creative("fam").unwrap();
    sel.record(&mut p, &Feedback::new(fam, FeedbackKind::ThumbsDown, &ctx())).unwrap();
    p.save_to(&path, menu).unwrap();
    assert_eq!(Profile::load_from(&path, menu).unwrap(), p);
    assert_eq!(listing(&dir), ["person.json"], "no temporary file is left behind");

    let good = std::fs::read(&path).unwrap();
    std::fs::write(&path, &good[..good.len() - 3]).unwrap();
    let err = Profile::load_from(&path, menu).unwrap_err().to_string();
    assert!(err.contains("person.json: profile: invalid JSON"), "the message names the file: {err}");
    std::fs::write(&path, "\n").unwrap();
    let err = Profile::load_from(&path, menu).unwrap_err().to_string();
    assert!(err.ends_with("person.json: the file is empty (expected a profile in JSON)"), "{err}");
    std::fs::File::create(&path).unwrap().set_len(MAX_PROFILE_BYTES as u64 + 1).unwrap();
    let err = Profile::load_from(&path, menu).unwrap_err();
    assert!(err.to_string().contains("more than MAX_PROFILE_BYTES"), "{err}");
    // A file that does not know its size is read only up to the limit.
    #[cfg(unix)]
    {
        let err = Profile::load_from("/dev/zero", menu).unwrap_err();
        assert!(err.to_string().contains("more than MAX_PROFILE_BYTES"), "{err}");
    }
}

#[test]
fn an_oversized_catalog_file_is_refused_before_it_is_read() {
    let dir = dir("catalog");
    let path = dir.join("catalog.json");
    std::fs::File::create(&path).unwrap().set_len(MAX_SPEC_BYTES as u64 + 1).unwrap();
    let err = Catalog::from_file(&path).unwrap_err();
    assert!(matches!(err, Error::TooLarge { limit_name: "MAX_SPEC_BYTES", .. }), "{err}");
    assert_eq!(
        err.to_string(),
        format!(
            "catalog spec: {} bytes is more than MAX_SPEC_BYTES ({MAX_SPEC_BYTES} bytes)",
            MAX_SPEC_BYTES + 1
        )
    );
}

/// Saving through a symbolic link replaces the file it points to and keeps the link (a
/// rename over the link replaced the link with a file and left its target stale).
#[cfg(unix)]
#[test]
fn a_save_through_a_symbolic_link_updates_its_target() {
    let dir = dir("symlink");
    std::fs::create_dir_all(dir.join("data")).unwrap();
    let target = dir.join("data").join("stats.json");
    std::fs::write(&target, b"OLD").unwrap();
    let link = dir.join("stats.json");
    std::os::unix::fs::symlink("data/stats.json", &link).unwrap();
    write_atomically(&link, b"NEW").unwrap();
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "the link stays");
    assert_eq!(std::fs::read(&target).unwrap(), b"NEW");
    assert_eq!(listing(&dir.join("data")), ["stats.json"], "no temporary file left");
    // A link to a file not written yet: the file is created where the link points.
    let fresh = dir.join("fresh.json");
    std::os::unix::fs::symlink("data/fresh.json", &fresh).unwrap();
    write_atomically(&fresh, b"{}").unwrap();
    assert_eq!(std::fs::read(dir.join("data").join("fresh.json")).unwrap(), b"{}");
}
