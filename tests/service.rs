//! The service example (`examples/service.rs`) runs briefly on every `cargo test`, so the
//! guide in docs/service.md cannot rot: threads share the engines, profiles round-trip
//! through the store, the catalog file is swapped while traffic runs, and the two
//! instances end up knowing every impression either of them recorded.

#[allow(dead_code)]
#[path = "../examples/service.rs"]
mod service;

#[test]
fn the_service_example_swaps_merges_and_snapshots_while_serving() {
    let dir = std::env::temp_dir().join(format!("persona-engine-service-test-{}", std::process::id()));
    let options = service::Options { threads: 2, requests: 2_000, people: 200, dir: dir.clone() };
    let mut out = Vec::new();
    let summary = service::run(&options, &mut out).expect("the service runs");
    let text = String::from_utf8(out).expect("utf-8");
    println!("{text}");

    assert!(summary.served[0] + summary.served[1] >= 2_000, "{summary:?}");
    assert!(summary.served[0] > 0 && summary.served[1] > 0, "both instances serve: {summary:?}");
    assert!(summary.served_by_new_catalog > 0, "the new catalog served traffic: {summary:?}");
    assert!(text.contains("instance 0: published 'wanderly-2026-12' (generation 2)"), "{text}");
    assert!(text.contains("instance 1: published 'wanderly-2026-12' (generation 2)"), "{text}");
    assert!(summary.scored >= 150, "the model scored the people it met: {summary:?}");
    assert!(summary.exchanges >= 1 && summary.snapshots >= 1, "{summary:?}");
    assert_eq!(
        summary.impressions_known, [summary.impressions_recorded; 2],
        "after the last exchange each instance knows every impression, once"
    );
    assert!(text.contains(&format!(
        "the last snapshot of instance 0 holds {} impressions",
        summary.impressions_recorded
    )));
    assert!(text.contains("requests/s"), "{text}");
    std::fs::remove_dir_all(&dir).expect("clean up");
}
