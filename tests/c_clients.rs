//! The C ABI tested for real, from C and C++: the header compiles alone as C11 and as
//! C++17 with warnings as errors, every C example compiles as C++17 too,
//! `examples/c/quickstart.c`, `examples/c/service.c` (an engine shared by pthreads while
//! another publishes) and `examples/cpp/quickstart.cpp` compile, link against the static
//! library that this very `cargo test` built with the link line the header documents,
//! run, and tell the same story as the Rust API (feedback and learned statistics
//! included); the clients run clean under valgrind (no invalid access, no definite or
//! indirect leak). `.ci/run` also runs the Rust FFI tests and a
//! C ABI fuzz run under valgrind.
//!
//! Without a C compiler (or valgrind) the tests say so and pass, except in CI (`CI` set),
//! where a missing tool fails them: CI must never pass by skipping.
#![cfg(target_os = "linux")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use persona_engine::{sample, DataClasses, Feedback, FeedbackKind, Selector, SelectorConfig};

/// The system libraries a static link needs, as printed by
/// `cargo rustc --lib --crate-type staticlib -- --print native-static-libs`.
const NATIVE_LIBS: [&str; 7] = ["-lgcc_s", "-lutil", "-lrt", "-lpthread", "-lm", "-ldl", "-lc"];
const PLACEMENTS: [&str; 4] = ["home_hero", "sidebar", "app_banner", "email_block"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// The tool to use, or `None` (after saying why) when it is missing outside CI.
fn tool(env: &str, default: &str) -> Option<String> {
    let name = std::env::var(env).unwrap_or_else(|_| default.to_owned());
    let found = Command::new(&name).arg("--version").output().is_ok_and(|o| o.status.success());
    if found {
        return Some(name);
    }
    assert!(!in_ci(), "`{name}` is not installed: the C ABI tests need it, and CI must not skip them");
    eprintln!("SKIPPED: `{name}` is not installed, so this C ABI test did not run");
    None
}

/// The static library built by this `cargo test` run (the crate's `staticlib` output).
/// Cargo writes it to `target/<profile>/deps/` and copies it up to `target/<profile>/`
/// only for some invocations, so the newer of the two is the one this run built.
fn static_library() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let deps = exe.parent().expect("target/<profile>/deps");
    let dir = deps.parent().expect("target/<profile>");
    let modified = |p: &Path| p.metadata().and_then(|m| m.modified()).ok();
    let lib = [deps.join("libpersona_engine.a"), dir.join("libpersona_engine.a")]
        .into_iter()
        .filter(|p| p.exists())
        .max_by_key(|p| modified(p))
        .unwrap_or_else(|| {
            panic!(
                "no libpersona_engine.a under {}: the crate must build as a staticlib (Cargo.toml crate-type)",
                dir.display()
            )
        });
    // The .a and the rlib come out of the same rustc invocation; an older .a is stale.
    let rlib = [deps.join("libpersona_engine.rlib"), dir.join("libpersona_engine.rlib")]
        .into_iter()
        .filter_map(|p| modified(&p))
        .max();
    if let (Some(a), Some(r)) = (modified(&lib), rlib) {
        assert!(
            r.duration_since(a).map_or(true, |d| d.as_secs() < 120),
            "{} is older than the rlib: run `cargo build` and try again",
            lib.display()
        );
    }
    lib
}

/// The link line the header and the README document: the archive named with `-l:` (so
/// the linker cannot pick the shared library next to it) and the system libraries.
fn link_line() -> Vec<String> {
    let lib = static_library();
    let dir = lib.parent().expect("the library's folder");
    let mut line = vec![format!("-L{}", dir.display()), "-l:libpersona_engine.a".to_owned()];
    line.extend(NATIVE_LIBS.iter().map(|l| (*l).to_owned()));
    line
}

fn out_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("c_clients");
    std::fs::create_dir_all(&dir).expect("create the build folder");
    dir
}

#[track_caller]
fn run_ok(command: &mut Command) -> Output {
    let output = command.output().unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Compiles and links one client; `None` when the compiler is missing outside CI.
fn build(compiler_env: &str, compiler: &str, flags: &[&str], source: &str, name: &str) -> Option<PathBuf> {
    let cc = tool(compiler_env, compiler)?;
    let exe = out_dir().join(name);
    let mut command = Command::new(cc);
    command
        .args(flags)
        .arg("-I")
        .arg(root().join("include"))
        .arg(root().join(source))
        .args(link_line())
        .arg("-o")
        .arg(&exe);
    run_ok(&mut command);
    Some(exe)
}

fn c_client() -> Option<&'static PathBuf> {
    static EXE: OnceLock<Option<PathBuf>> = OnceLock::new();
    EXE.get_or_init(|| {
        build(
            "CC",
            "cc",
            &["-std=c11", "-pedantic", "-Wall", "-Wextra", "-Werror", "-g"],
            "examples/c/quickstart.c",
            "quickstart_c",
        )
    })
    .as_ref()
}

fn run_client(exe: &Path, wrapper: &[&str]) -> String {
    let mut command = match wrapper.split_first() {
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg(exe);
            c
        }
        None => Command::new(exe),
    };
    command.arg(root().join("data/sample_catalog.json")).env("RUST_BACKTRACE", "0");
    let output = run_ok(&mut command);
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

fn c_output() -> Option<&'static str> {
    static OUT: OnceLock<Option<String>> = OnceLock::new();
    OUT.get_or_init(|| c_client().map(|exe| run_client(exe, &[]))).as_deref()
}

/// One row of the C client's table.
#[derive(Debug, PartialEq)]
struct Row {
    placement: String,
    creative: String,
    score: String,
    kind: String,
    persona: String,
}

/// The rows printed under the section whose heading starts with `== <title>`.
fn section(output: &str, title: &str) -> Vec<Row> {
    let heading = format!("== {title}");
    let mut lines = output.lines().skip_while(|l| !l.starts_with(&heading));
    assert!(lines.next().is_some(), "no section '{title}' in:\n{output}");
    lines
        .take_while(|l| l.starts_with("   "))
        .filter(|l| !l.trim_start().starts_with("placement ") && !l.trim_start().starts_with('('))
        .map(|l| {
            let mut rest = l.trim_start();
            let mut next = || {
                let (word, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                rest = tail.trim_start();
                word.to_owned()
            };
            let (placement, creative, score, kind) = (next(), next(), next(), next());
            // The persona column is padded to 20 characters and may hold single spaces
            // ("Luxury Travel"); the explanation follows after at least two spaces.
            let persona = rest.split("  ").next().unwrap_or_default().to_owned();
            Row { placement, creative, score, kind, persona }
        })
        .collect()
}

#[test]
fn the_header_compiles_alone_as_c11_and_as_cpp17() {
    let probe = out_dir().join("header_only.c");
    std::fs::write(&probe, "#include \"persona_engine.h\"\nint main(void) { return 0; }\n")
        .expect("write the probe");
    let include = root().join("include");
    if let Some(cc) = tool("CC", "cc") {
        run_ok(
            Command::new(cc)
                .args(["-std=c11", "-pedantic", "-Wall", "-Wextra", "-Werror", "-fsyntax-only"])
                .arg("-I")
                .arg(&include)
                .arg(&probe),
        );
    }
    if let Some(cxx) = tool("CXX", "c++") {
        run_ok(
            Command::new(cxx)
                .args([
                    "-std=c++17",
                    "-pedantic",
                    "-Wall",
                    "-Wextra",
                    "-Werror",
                    "-fsyntax-only",
                    "-x",
                    "c++",
                ])
                .arg("-I")
                .arg(&include)
                .arg(&probe),
        );
    }
}

#[test]
fn the_c_quickstart_shows_what_the_rust_api_picks() {
    let Some(output) = c_output() else { return };
    let selector = Selector::new(sample::catalog().unwrap(), SelectorConfig::default()).unwrap();
    let catalog = selector.catalog();
    let people = sample::people(catalog.menu()).unwrap();
    let mut selection = selector.new_selection(3);
    for person in &people {
        let rows = section(output, person.name);
        let mut expected = Vec::new();
        for name in PLACEMENTS {
            selector
                .select(&person.profile, &person.context, selector.placement(name).unwrap(), &mut selection)
                .unwrap();
            for pick in selection.picks() {
                expected.push((
                    name.to_owned(),
                    catalog.creative_id(pick.creative).to_owned(),
                    format!("{:.3}", pick.score),
                ));
            }
        }
        let got: Vec<_> =
            rows.iter().map(|r| (r.placement.clone(), r.creative.clone(), r.score.clone())).collect();
        assert_eq!(got, expected, "{}", person.name);
    }
}

#[test]
fn the_c_quickstart_tells_the_story() {
    let Some(output) = c_output() else { return };
    let catalog = sample::catalog().unwrap();

    let luxury = section(output, "luxury traveller, desktop, evening");
    let hero = &luxury[0];
    assert_eq!(hero.placement, "home_hero");
    assert!(hero.creative.starts_with("lux-"), "{hero:?}");
    assert_eq!((hero.kind.as_str(), hero.persona.as_str()), ("persona_match", "Luxury Travel"));

    // No consent: no persona is used, and nothing that needs personal data is shown.
    let stranger = section(output, "first visit, no consent");
    assert_eq!(stranger.len(), 12);
    for row in &stranger {
        assert!(row.kind == "priority" || row.kind == "fallback", "{row:?}");
        assert_eq!(row.persona, "-");
        let id = catalog.creative(&row.creative).unwrap();
        assert_eq!(catalog.data_needs(id), Some(DataClasses::NONE), "{row:?}");
    }
    assert!(stranger[0].creative.starts_with("gen-"), "{:?}", stranger[0]);

    // A declared dislike beats the model's luxury score.
    let city = section(output, "city-breaker who dislikes luxury");
    assert!(city.iter().all(|r| !r.creative.starts_with("lux-")), "{city:?}");
    assert!(city.iter().any(|r| r.persona == "Eco Conscious"), "{city:?}");

    // The profile survives a JSON round trip, and an exclusion moves the next one up.
    let reloaded = section(output, "reloaded from");
    let luxury_hero: Vec<_> = luxury.iter().filter(|r| r.placement == "home_hero").collect();
    assert_eq!(reloaded.iter().collect::<Vec<_>>(), luxury_hero);
    let without = section(output, "without the first pick");
    assert!(without.iter().all(|r| r.creative != hero.creative));
    assert_eq!(without[0], reloaded[1]);
}

/// The luxury traveller clicks the hero and gives the second pick a thumbs-down: the
/// C client shows the thumbs-downed creative gone from the next picks, exactly as the
/// Rust API does after the same feedback; the statistics travel to a second instance.
#[test]
fn the_c_quickstart_obeys_and_learns_from_feedback() {
    let Some(output) = c_output() else { return };
    let heading = output
        .lines()
        .find_map(|l| l.strip_prefix("== feedback: click on "))
        .unwrap_or_else(|| panic!("no feedback section in:\n{output}"));
    let (clicked, rejected) = heading.split_once(", thumbs-down on ").expect("both creatives named");
    let rows = section(output, "feedback:");
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert!(rows.iter().all(|r| r.creative != rejected), "the thumbs-down creative came back: {rows:?}");
    assert_eq!((rows[0].creative.as_str(), rows[0].kind.as_str()), (clicked, "learned"));

    // The same feedback through the Rust API gives the same picks.
    let selector = Selector::new(sample::catalog().unwrap(), SelectorConfig::default()).unwrap();
    let mut person = sample::people(selector.catalog().menu()).unwrap().swap_remove(0);
    let hero = selector.placement("home_hero").unwrap();
    let mut selection = selector.new_selection(3);
    selector.select(&person.profile, &person.context, hero, &mut selection).unwrap();
    let shown: Vec<_> = selection.picks().iter().map(|p| p.creative).collect();
    let feedback = |creative, kind| Feedback::new(creative, kind, &person.context);
    let mut events: Vec<_> = shown.iter().map(|c| feedback(*c, FeedbackKind::Impression)).collect();
    events.push(feedback(shown[0], FeedbackKind::Click));
    events.push(feedback(shown[1], FeedbackKind::ThumbsDown));
    for event in &events {
        selector.record(&mut person.profile, event).unwrap();
    }
    assert_eq!(selector.catalog().creative_id(shown[0]), clicked);
    assert_eq!(selector.catalog().creative_id(shown[1]), rejected);
    selector.select(&person.profile, &person.context, hero, &mut selection).unwrap();
    let expected: Vec<_> = selection
        .picks()
        .iter()
        .map(|p| (selector.catalog().creative_id(p.creative).to_owned(), format!("{:.3}", p.score)))
        .collect();
    let got: Vec<_> = rows.iter().map(|r| (r.creative.clone(), r.score.clone())).collect();
    assert_eq!(got, expected);

    // Statistics: saved, exported as a delta and merged into a second instance.
    assert!(output.lines().any(|l| l.starts_with("statistics snapshot: ")), "{output}");
    assert!(output.lines().any(|l| l.starts_with("delta since the last export: ")), "{output}");
    assert!(
        output.contains("skipped: 0 unknown creatives, 0 segment cells, 0 model weights\n"),
        "the merge reports what it skipped: {output}"
    );
    assert!(output.contains("second instance after merging the delta: same statistics\n"), "{output}");
}

#[test]
fn the_c_quickstart_gets_a_status_for_every_error() {
    let Some(output) = c_output() else { return };
    for expected in [
        "unknown placement: PE_STATUS_UNKNOWN_NAME: unknown placement 'home_heroo'",
        "bad catalog JSON: PE_STATUS_INVALID_JSON: catalog spec: invalid JSON: EOF while parsing",
        "bad selector config: PE_STATUS_INVALID_SPEC: selector config: field 'threshold'",
        "missing catalog file: PE_STATUS_IO: /nonexistent/catalog.json",
        "device 42: PE_STATUS_INVALID_ARGUMENT: context.device: 42 is not a pe_device value",
        "small buffer: PE_STATUS_BUFFER_TOO_SMALL: the creative id is",
        "NULL selector: PE_STATUS_NULL_PARAMETER: parameter 'selector' is NULL",
        "invalid UTF-8: PE_STATUS_INVALID_UTF8: parameter 'name' is not valid UTF-8",
        "feedback kind 9: PE_STATUS_INVALID_ARGUMENT: kind: 9 is not a pe_feedback_kind value (0..=5)",
        "corrupt statistics: PE_STATUS_INVALID_JSON: stats snapshot: invalid JSON: EOF while parsing",
    ] {
        assert!(
            output.lines().any(|l| l.starts_with(expected)),
            "no line starting with {expected:?} in:\n{output}"
        );
    }
    assert!(!output.contains("unexpected"), "{output}");
}

#[test]
fn the_c_quickstart_is_clean_under_valgrind() {
    let Some(exe) = c_client() else { return };
    if tool("VALGRIND", "valgrind").is_none() {
        return;
    }
    let output = run_client(
        exe,
        &[
            "valgrind",
            "--quiet",
            "--error-exitcode=1",
            "--leak-check=full",
            "--errors-for-leak-kinds=definite,indirect",
        ],
    );
    // Same story under valgrind (and `run_client` checked the exit status).
    assert_eq!(Some(output.as_str()), c_output());
}

fn cpp_client() -> Option<&'static PathBuf> {
    static EXE: OnceLock<Option<PathBuf>> = OnceLock::new();
    EXE.get_or_init(|| {
        build(
            "CXX",
            "c++",
            &["-std=c++17", "-Wall", "-Wextra", "-Werror", "-pthread", "-g"],
            "examples/cpp/quickstart.cpp",
            "quickstart_cpp",
        )
    })
    .as_ref()
}

fn cpp_output() -> Option<&'static str> {
    static OUT: OnceLock<Option<String>> = OnceLock::new();
    OUT.get_or_init(|| cpp_client().map(|exe| run_client(exe, &[]))).as_deref()
}

#[test]
fn the_cpp_client_builds_and_runs() {
    let Some(output) = cpp_output() else { return };
    let lines: Vec<&str> = output.lines().collect();
    for (line, placement) in lines.iter().zip(PLACEMENTS) {
        assert!(line.starts_with(&format!("{placement}: ")), "{output}");
    }
    assert!(lines[0].starts_with("home_hero: fam-"), "{output}");
    assert!(output.contains("profile JSON: "), "{output}");
    assert!(output.contains("caught PE_STATUS_UNKNOWN_NAME: unknown placement 'nowhere'"), "{output}");
}

#[test]
fn the_cpp_client_is_clean_under_valgrind() {
    let Some(exe) = cpp_client() else { return };
    if tool("VALGRIND", "valgrind").is_none() {
        return;
    }
    let output = run_client(
        exe,
        &[
            "valgrind",
            "--quiet",
            "--error-exitcode=1",
            "--leak-check=full",
            "--errors-for-leak-kinds=definite,indirect",
        ],
    );
    assert_eq!(Some(output.as_str()), cpp_output());
}

/// The C example in the README's "Use it from C" section compiles with the flags the
/// README shows, links, and prints the luxury traveller's picks.
#[test]
fn the_readme_c_example_compiles_and_runs() {
    let Some(cc) = tool("CC", "cc") else { return };
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README.md");
    let section = readme.split("## Use it from C").nth(1).expect("README has a 'Use it from C' section");
    let code = section
        .split("```c\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the section has a ```c block");
    let source = out_dir().join("readme_example.c");
    std::fs::write(&source, code).expect("write the example");
    let exe = out_dir().join("readme_example");
    run_ok(
        Command::new(cc)
            .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-I"])
            .arg(root().join("include"))
            .arg(&source)
            .args(link_line())
            .arg("-o")
            .arg(&exe),
    );
    let output = run_ok(Command::new(&exe).current_dir(root()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let first = stdout.lines().next().unwrap_or_default();
    assert!(first.starts_with("lux-"), "{stdout}");
    assert!(first.contains("persona 'Luxury Travel'"), "{stdout}");
}

/// The header and the README give the link line these tests link with.
#[test]
fn the_header_and_readme_give_the_link_line_the_tests_use() {
    let libs = NATIVE_LIBS.join(" ");
    let header = std::fs::read_to_string(root().join("include/persona_engine.h")).expect("header");
    let line = format!("-Ltarget/release -l:libpersona_engine.a {libs}");
    assert!(header.contains(&format!(" *   cc app.c -Iinclude {line}\n")), "header link line");
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README.md");
    assert!(readme.contains(&line), "README link line");
    assert!(!readme.contains("-lpersona_engine ") && !header.contains("-lpersona_engine "));
}

/// C code that must compile as C++ too (C++ programs include the same header and copy
/// the examples): every C example and the README's C snippet, as C++17 with
/// `-Wall -Wextra -Werror` (`PE_CONTEXT_INIT` included).
#[test]
fn every_c_example_compiles_as_cpp17() {
    let Some(cxx) = tool("CXX", "c++") else { return };
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README.md");
    let snippet = readme
        .split("## Use it from C")
        .nth(1)
        .and_then(|s| s.split("```c\n").nth(1))
        .and_then(|s| s.split("```").next())
        .expect("the README's C snippet");
    let readme_copy = out_dir().join("readme_example_as_cpp.c");
    std::fs::write(&readme_copy, snippet).expect("write the snippet");
    let mut sources = vec![readme_copy];
    for entry in std::fs::read_dir(root().join("examples/c")).expect("examples/c") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "c") {
            sources.push(path);
        }
    }
    assert!(sources.len() >= 3, "{sources:?}");
    for source in sources {
        run_ok(
            Command::new(&cxx)
                .args([
                    "-std=c++17",
                    "-x",
                    "c++",
                    "-Wall",
                    "-Wextra",
                    "-Werror",
                    "-pthread",
                    "-fsyntax-only",
                    "-I",
                ])
                .arg(root().join("include"))
                .arg(&source),
        );
    }
}

fn service_client() -> Option<&'static PathBuf> {
    static EXE: OnceLock<Option<PathBuf>> = OnceLock::new();
    EXE.get_or_init(|| {
        build(
            "CC",
            "cc",
            &["-std=c11", "-Wall", "-Wextra", "-Wpedantic", "-Werror", "-pthread", "-g"],
            "examples/c/service.c",
            "service_c",
        )
    })
    .as_ref()
}

/// Runs the service client (under `wrapper`, if any) with `requests` per worker; returns
/// its output and the decision log it wrote.
fn run_service(exe: &Path, wrapper: &[&str], requests: u32, log_name: &str) -> (String, String) {
    let log = out_dir().join(log_name);
    let _ = std::fs::remove_file(&log);
    let mut command = match wrapper.split_first() {
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg(exe);
            c
        }
        None => Command::new(exe),
    };
    command.arg(root().join("data/sample_catalog.json")).arg(&log).arg(requests.to_string());
    let output = run_ok(&mut command);
    let log = std::fs::read_to_string(&log).expect("the service client writes its decision log");
    (String::from_utf8(output.stdout).expect("UTF-8 output"), log)
}

/// Four threads select and record through one `pe_engine` while a fifth publishes three
/// new versions: every pick is served, the engine ends on generation 4, a broken catalog
/// is refused, the persona model scores a person from a signal into luxury, the decision
/// log holds the logged decision and its click, and a second engine that merges the
/// delta has the same counts.
#[test]
fn the_c_service_client_selects_records_and_publishes_from_threads() {
    let Some(exe) = service_client() else { return };
    let (output, log) = run_service(exe, &[], 150, "service.jsonl");
    for expected in [
        "workers: 4 threads served 600 picks and recorded ",
        "published: generation 4 after 3 publishes under load",
        "broken catalog: PE_STATUS_INVALID_JSON: catalog spec: invalid JSON: EOF while parsing",
        "selector stats on an engine version: PE_STATUS_INVALID_ARGUMENT",
        "model-scored person: lux-",
        "decision log: decision 1 with its click written to the log",
        "second engine after merging the delta: same counts per creative",
    ] {
        assert!(
            output.lines().any(|l| l.starts_with(expected)),
            "no line starting with {expected:?} in:\n{output}"
        );
    }
    // 150 requests per worker, a click on every 7th (0, 7, ..., 147): 22 each.
    assert!(output.contains("recorded 88 clicks"), "{output}");
    assert!(output.contains("(persona Luxury Travel, score "), "{output}");
    let lines: Vec<serde_json::Value> =
        log.lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect();
    assert_eq!(lines.len(), 1, "{log}");
    assert_eq!(lines[0]["placement"], "home_hero", "{log}");
    assert!(log.contains("\"reward\":{\"click\":1"), "the click is logged as the reward: {log}");
}

#[test]
fn the_c_service_client_is_clean_under_valgrind() {
    let Some(exe) = service_client() else { return };
    if tool("VALGRIND", "valgrind").is_none() {
        return;
    }
    let (output, _) = run_service(
        exe,
        &[
            "valgrind",
            "--quiet",
            "--error-exitcode=1",
            "--leak-check=full",
            "--errors-for-leak-kinds=definite,indirect",
        ],
        20,
        "service_valgrind.jsonl",
    );
    assert!(output.contains("workers: 4 threads served 80 picks"), "{output}");
    assert!(output.contains("same counts per creative"), "{output}");
}

/// The test-only entry points (cargo feature `ffi-testing`) are in neither the shipped
/// header nor the library a default build makes.
#[cfg(not(feature = "ffi-testing"))]
#[test]
fn test_only_entry_points_are_not_shipped() {
    let header = std::fs::read_to_string(root().join("include/persona_engine.h")).expect("header");
    assert!(!header.contains("pe_test_"), "the header declares a test-only entry point");
    let library = std::fs::read(static_library()).expect("the static library");
    let has = |name: &[u8]| library.windows(name.len()).any(|w| w == name);
    assert!(has(b"pe_engine_select"), "the search finds exported names");
    assert!(!has(b"pe_test_force_panic"), "the library exports a test-only entry point");
}
