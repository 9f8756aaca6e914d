//! The quickstart: very different people arrive at Wanderly's home page, app and inbox;
//! the engine shows what each is shown and why.
//!
//! Run with `cargo run --example quickstart`.

use std::io::Write;

use persona_engine::{sample, Selector, SelectorConfig};

fn main() -> Result<(), persona_engine::Report> {
    run(&mut std::io::stdout().lock())
}

/// Writes the whole demo to `out` (the README quotes it; `tests/readme.rs` checks the
/// quote against what this writes).
pub fn run(out: &mut impl Write) -> Result<(), persona_engine::Report> {
    let selector = Selector::new(sample::catalog()?, SelectorConfig::default())?;
    let catalog = selector.catalog();
    let menu = catalog.menu();
    writeln!(
        out,
        "Wanderly sample catalog '{}': {} personas, {} creatives, {} placements\n",
        catalog.version(),
        menu.len(),
        catalog.len(),
        catalog.placement_count()
    )?;
    let placements = ["home_hero", "sidebar", "app_banner", "email_block"];
    let mut selection = selector.new_selection(3);
    for person in sample::people(menu)? {
        let p = &person.profile;
        let stage = p.stage(&selector.config().stages, person.context.at);
        let consent: Vec<&str> = p.consent.iter().map(|c| c.name()).collect();
        // High scores built on data the person did not consent to are marked: the
        // engine ignores them.
        let high: Vec<String> = menu
            .iter()
            .filter(|(id, _)| p.scores.get(*id) >= selector.config().threshold)
            .map(|(id, name)| {
                let usable = p.consent.contains(p.scores.sources(id));
                format!("{name} {}{}", p.scores.get(id), if usable { "" } else { " (no consent: ignored)" })
            })
            .collect();
        writeln!(out, "== {}", person.name)?;
        writeln!(
            out,
            "   stage {:?}, {} {}, {:?} on {:?}, consent [{}], high personas [{}]{}",
            stage,
            person.context.weekday().name(),
            person.context.daypart().name(),
            person.context.device,
            person.context.channel,
            consent.join(", "),
            high.join(", "),
            if p.dislikes.is_empty() {
                String::new()
            } else {
                let d: Vec<&str> = p.dislikes.iter().map(|d| menu.name(*d)).collect();
                format!(", not interested in [{}]", d.join(", "))
            }
        )?;
        writeln!(out, "   {:<12} {:<34} {:>6}  why", "placement", "creative", "score")?;
        for name in placements {
            let placement = selector.placement(name)?;
            selector.select(p, &person.context, placement, &mut selection)?;
            for (i, pick) in selection.picks().iter().enumerate() {
                writeln!(
                    out,
                    "   {:<12} {:<34} {:>6.3}  {}",
                    if i == 0 { name } else { "" },
                    catalog.creative_id(pick.creative),
                    pick.score,
                    selector.explain(pick)
                )?;
            }
            if selection.is_empty() {
                writeln!(out, "   {name:<12} (nothing eligible and no fallback)")?;
            }
        }
        writeln!(out)?;
    }
    assembled()
}

/// Assembled creatives: the sample's templates (an email hero and a home banner) fill
/// each slot with the variant that best fits one theme for each person.
fn assembled() -> Result<(), persona_engine::Report> {
    let selector = Selector::new(sample::catalog_with_templates()?, SelectorConfig::default())?;
    let catalog = selector.catalog();
    println!("== assembled creatives: one theme per assembly, each slot's choice and why");
    let mut selection = selector.new_selection(1);
    for person in sample::people(catalog.menu())? {
        for name in ["email_hero", "home_banner"] {
            selector.select(&person.profile, &person.context, selector.placement(name)?, &mut selection)?;
            let Some(pick) = selection.picks().first() else { continue };
            let Some(assembly) = selection.assembly(pick) else { continue };
            println!("-- {} at {name}", person.name);
            println!("   {}", selector.explain_assembly(pick, assembly).replace('\n', "\n   "));
        }
    }
    // The payloads handed back, by slot name, byte for byte.
    let first = &sample::people(catalog.menu())?[0];
    selector.select(&first.profile, &first.context, selector.placement("home_banner")?, &mut selection)?;
    if let Some(assembly) = selection.picks().first().and_then(|pick| selection.assembly(pick)) {
        println!("-- payloads for {} at home_banner", first.name);
        for (i, slot) in assembly.slots().iter().enumerate() {
            println!(
                "   {:<15} {}",
                catalog.slot_name(assembly.template(), i).unwrap_or("?"),
                catalog.payload(slot.variant).unwrap_or("")
            );
        }
    }
    Ok(())
}
