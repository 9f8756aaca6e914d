//! The README and the guides under `docs/` keep their promises to a reader: the quoted
//! demo output is what the demo prints, every page's Rust blocks are doctests, links
//! lead somewhere, and the README stays a short front door with a table of contents.
//! (The snippets themselves run as doctests; the C snippet in `tests/c_clients.rs`.)

use std::path::{Path, PathBuf};

#[allow(dead_code)]
#[path = "../examples/quickstart.rs"]
mod quickstart;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The Markdown pages a reader sees: the README and every page under `docs/`.
fn pages() -> Vec<(String, String)> {
    let mut pages = vec![("README.md".to_owned(), read("README.md"))];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .expect("docs/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    for path in docs {
        let name = format!("docs/{}", path.file_name().and_then(|n| n.to_str()).expect("utf-8 name"));
        let text = std::fs::read_to_string(&path).expect("page");
        pages.push((name, text));
    }
    pages
}

/// The fenced block of language `lang` that directly follows the first fenced block
/// containing `command` in `page`.
fn block_after(page: &str, command: &str, lang: &str) -> String {
    let at = page.find(command).unwrap_or_else(|| panic!("the page quotes `{command}`"));
    let rest = &page[at..];
    let rest = &rest[rest.find("```\n").expect("the command's block ends") + 4..];
    let rest = rest.trim_start();
    let fence = format!("```{lang}\n");
    assert!(rest.starts_with(&fence), "a ```{lang} block follows `{command}`, found: {:.80}", rest);
    let body = &rest[fence.len()..];
    body[..body.find("```").expect("the block ends")].to_owned()
}

/// Every line of `quote` except `...` appears in `output`, in the same order.
fn assert_quoted_in_order(quote: &str, output: &str) {
    let lines: Vec<&str> = output.lines().collect();
    let mut from = 0;
    let mut checked = 0;
    for wanted in quote.lines().filter(|l| l.trim() != "...") {
        let Some(found) = lines[from..].iter().position(|l| l.trim_end() == wanted.trim_end()) else {
            panic!("quoted line not printed (in this order):\n{wanted}\n--- the demo printed:\n{output}");
        };
        from += found + 1;
        checked += 1;
    }
    assert!(checked >= 3, "the quote has lines to check");
}

#[test]
fn the_readme_quotes_what_the_quickstart_prints() {
    let mut out = Vec::new();
    quickstart::run(&mut out).expect("the quickstart runs");
    let output = String::from_utf8(out).expect("utf-8 output");
    let quote = block_after(&read("README.md"), "cargo run --example quickstart", "text");
    assert_quoted_in_order(&quote, &output);
}

#[test]
fn a_quote_that_differs_from_the_output_is_caught() {
    let output = "== a\n   one\n   two\n   three\n   four\n   five\n";
    assert_quoted_in_order("== a\n   one\n...\n   four\n   five\n", output);
    let wrong =
        std::panic::catch_unwind(|| assert_quoted_in_order("== a\n   one\n   five\n   two\n   x\n", output));
    assert!(wrong.is_err(), "out of order lines must fail");
}

#[test]
fn the_readme_is_a_short_front_door_with_a_table_of_contents() {
    let readme = read("README.md");
    let lines = readme.lines().count();
    assert!(lines < 300, "README.md has {lines} lines; move detail to docs/");
    let contents = readme.split("## Contents").nth(1).expect("a Contents section");
    let contents = &contents[..contents.find("\n## ").expect("a section after Contents")];
    let anchors: Vec<String> = readme
        .lines()
        .filter_map(|l| l.strip_prefix("## ").or_else(|| l.strip_prefix("### ")))
        .map(|h| {
            h.to_lowercase()
                .chars()
                .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-')
                .map(|c| if c == ' ' { '-' } else { c })
                .collect()
        })
        .collect();
    let mut links = 0;
    for part in contents.split("](#").skip(1) {
        let anchor = &part[..part.find(')').expect("link ends")];
        assert!(anchors.iter().any(|a| a == anchor), "Contents links to #{anchor}, which no heading has");
        links += 1;
    }
    assert!(links >= 10, "the table of contents lists the sections ({links} links)");
    // In the order a user needs it: Rust, then learning and scoring, service, C, the rest.
    let order = [
        "## Try it",
        "## Use it from Rust",
        "## Feedback and learning",
        "## Scoring",
        "## Run it in a service",
        "## Use it from C",
        "## Offline evaluation",
        "## Performance",
        "## Guarantees",
    ];
    let positions: Vec<usize> =
        order.iter().map(|h| readme.find(h).unwrap_or_else(|| panic!("{h}"))).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "README sections out of order: {order:?}");
}

#[test]
fn every_relative_link_in_the_readme_and_docs_leads_to_a_file() {
    for (name, text) in pages() {
        let dir = Path::new(&name).parent().unwrap_or(Path::new(""));
        for part in text.split("](").skip(1) {
            let target = &part[..part.find(')').unwrap_or(part.len())];
            if target.starts_with("http") || target.starts_with('#') || target.is_empty() {
                continue;
            }
            let path = target.split('#').next().unwrap_or(target);
            assert!(root().join(dir).join(path).exists(), "{name}: link to {target}, which does not exist");
        }
    }
}

#[test]
fn every_page_with_rust_blocks_is_compiled_as_doctests() {
    let lib = read("src/lib.rs");
    for (name, text) in pages() {
        let rust = text.contains("```rust");
        let included = lib.contains(&format!("include_str!(\"../{name}\")"));
        assert!(!rust || included, "{name} has Rust blocks but src/lib.rs does not include it as doctests");
        // Untagged fences would be compiled as Rust; say what they are.
        let mut open = false;
        for line in text.lines() {
            if let Some(tag) = line.trim_start().strip_prefix("```") {
                if !open {
                    assert!(!tag.trim().is_empty(), "{name}: a ``` block without a language: `{line}`");
                }
                open = !open;
            }
        }
    }
}

#[test]
fn the_docs_speak_to_users_not_to_the_team() {
    for (name, text) in pages() {
        for word in ["../shared", "this machine", "this 2-core machine", "DESIGN.md"] {
            assert!(!text.contains(word), "{name} mentions '{word}'");
        }
    }
}

#[test]
fn the_shipped_persona_model_loads_against_the_sample_menu() {
    let catalog = persona_engine::sample::catalog().expect("sample catalog");
    let json = read("data/sample_persona_model.json");
    let model = persona_engine::PersonaModel::from_json(catalog.menu(), &json).expect("the model loads");
    assert_eq!(model.personas().count(), catalog.menu().len(), "one model per persona of the menu");
}
