//! Error messages a user can act on: an unknown name lists the closest known ones, a
//! persona tag the menu spells differently is reported with the menu's spelling, a JSON
//! error in a catalog names the creative and the field, a file error names the file
//! (and says when it is empty), and `Report` makes `main` print the message.

use persona_engine::{sample, Catalog, Error, Report, Selector, SelectorConfig};
use serde_json::Value;

fn spec() -> Value {
    serde_json::from_str(sample::CATALOG_JSON).unwrap()
}

fn compile(spec: &Value) -> Error {
    Catalog::from_json(&spec.to_string()).unwrap_err()
}

fn dir(name: &str) -> std::path::PathBuf {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("error_messages").join(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn an_unknown_name_lists_the_closest_known_names() {
    let catalog = sample::catalog().unwrap();
    let err = catalog.menu().id("Luxury Travle").unwrap_err();
    assert_eq!(err.to_string(), "unknown persona 'Luxury Travle' (did you mean 'Luxury Travel'?)");
    assert!(matches!(&err, Error::UnknownPersona { did_you_mean, .. } if did_you_mean == &["Luxury Travel"]));

    let selector = Selector::new(catalog, SelectorConfig::default()).unwrap();
    let err = selector.placement("home_heroo").unwrap_err();
    assert_eq!(err.to_string(), "unknown placement 'home_heroo' (did you mean 'home_hero'?)");

    let err = selector.creative("lux-santorini-cliff-suit").unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown creative 'lux-santorini-cliff-suit' (did you mean 'lux-santorini-cliff-suite'?)"
    );

    // Nothing close: the plain message, no empty "did you mean".
    let err = selector.placement("checkout").unwrap_err();
    assert_eq!(err.to_string(), "unknown placement 'checkout'");
}

#[test]
fn suggestions_are_at_most_three_best_first() {
    let err = sample::catalog().unwrap().creative("lux-").unwrap_err();
    let Error::UnknownCreative { did_you_mean, .. } = &err else { panic!("{err:?}") };
    assert_eq!(did_you_mean.len(), 3, "{err}");
    assert!(did_you_mean.iter().all(|id| id.starts_with("lux-")), "{err}");
    assert!(err.to_string().contains(" or '"), "{err}");
}

/// A typo in the persona *menu*: the creative's tag is spelled right, the menu wrong.
/// The message names the tag and the menu's spelling, so the user sees which to fix.
#[test]
fn a_typo_in_the_persona_menu_is_reported_with_the_menu_spelling() {
    let mut spec = spec();
    spec["personas"][0] = Value::from("Luxury Travle");
    let err = compile(&spec);
    let message = err.to_string();
    assert!(message.starts_with("creative 'lux-"), "{message}");
    assert!(
        message
            .ends_with("field 'personas': unknown persona 'Luxury Travel' (did you mean 'Luxury Travle'?)"),
        "{message}"
    );
}

#[test]
fn a_json_error_in_a_catalog_names_the_creative_and_the_field() {
    let mut spec = spec();
    spec["creatives"][2]["colour"] = Value::from("red");
    let message = compile(&spec).to_string();
    assert!(
        message.starts_with(
            "catalog spec: creatives[2] ('lux-santorini-cliff-suite'), field 'colour': invalid JSON: unknown field `colour`"
        ),
        "{message}"
    );
    assert!(message.contains(" at line 1 column "), "the document position is kept: {message}");

    let mut spec = self::spec();
    spec["creatives"][5]["intimacy"] = Value::from(3);
    let id = spec["creatives"][5]["id"].as_str().unwrap().to_owned();
    let message = compile(&spec).to_string();
    assert!(
        message.starts_with(&format!(
            "catalog spec: creatives[5] ('{id}'), field 'intimacy': invalid JSON: invalid type"
        )),
        "{message}"
    );

    // A creative without a usable id is named by its index alone.
    let mut spec = self::spec();
    spec["creatives"][7]["id"] = Value::from(7);
    let message = compile(&spec).to_string();
    assert!(
        message.starts_with("catalog spec: creatives[7], field 'id': invalid JSON: invalid type"),
        "{message}"
    );

    // Outside the creatives, and syntax errors, keep the document's message.
    let message = Catalog::from_json("{\"personas\": 3}").unwrap_err().to_string();
    assert!(message.starts_with("catalog spec: invalid JSON: invalid type"), "{message}");
    let message = Catalog::from_json("{\"version\": ").unwrap_err().to_string();
    assert!(message.starts_with("catalog spec: invalid JSON: EOF while parsing"), "{message}");
}

#[test]
fn a_file_error_names_the_file_and_says_when_it_is_empty() {
    let dir = dir("files");
    let path = dir.join("catalog.json");
    std::fs::write(&path, "  \n").unwrap();
    let message = Catalog::from_file(&path).unwrap_err().to_string();
    assert_eq!(message, format!("{}: the file is empty (expected a catalog spec in JSON)", path.display()));

    std::fs::write(&path, "{\"version\": ").unwrap();
    let message = Catalog::from_file(&path).unwrap_err().to_string();
    assert!(
        message.starts_with(&format!("{}: catalog spec: invalid JSON: EOF while parsing", path.display())),
        "{message}"
    );

    let missing = dir.join("missing.json");
    let message = Catalog::from_file(&missing).unwrap_err().to_string();
    assert!(message.starts_with(&format!("{}: ", missing.display())), "{message}");

    // Every document read from a file does the same.
    let message = persona_engine::PersonaModelSpec::from_file(&path).unwrap_err().to_string();
    assert!(message.starts_with(&format!("{}: persona model: invalid JSON", path.display())), "{message}");
}

#[test]
fn report_prints_the_message_not_the_structure() {
    let err = Catalog::from_json("{\"version\": ").unwrap_err();
    let expected = err.to_string();
    assert!(format!("{err:?}").starts_with("Json {"), "a plain Error debug-prints its structure");
    let report = Report::from(err);
    assert_eq!(format!("{report:?}"), expected);
    assert_eq!(report.to_string(), expected);
    assert!(report.error().source().is_some());

    fn main_like() -> Result<(), Report> {
        sample::catalog()?.menu().id("Fodie")?;
        Ok(())
    }
    let message = format!("{:?}", main_like().unwrap_err());
    assert_eq!(message, "unknown persona 'Fodie' (did you mean 'Foodie'?)");
}

#[test]
fn an_unknown_placement_on_a_creative_lists_the_closest_placements() {
    let mut spec = spec();
    spec["creatives"][0]["placements"][0] = Value::from("home-hero");
    let message = compile(&spec).to_string();
    assert!(
        message.ends_with("field 'placements': unknown placement 'home-hero' (did you mean 'home_hero'?)"),
        "{message}"
    );
}
