//! Built-in sample data: "Wanderly", a travel and retail brand with 13 personas, four
//! placements and a catalog of realistic creatives, plus a handful of very different
//! people. Used by the quickstart, the docs and the tests; nothing else depends on it.

use crate::catalog::{Catalog, CatalogSpec};
use crate::context::{Channel, Context, Device, Weather};
use crate::error::Result;
use crate::persona::PersonaMenu;
use crate::profile::{DataClass, DataClasses, Profile};

/// The sample catalog spec, as JSON.
pub const CATALOG_JSON: &str = include_str!("../data/sample_catalog.json");

/// The moment the samples are set in: Monday 2026-11-23, 20:00 UTC.
pub const NOW: i64 = 1_795_464_000;

const DAY: i64 = 86_400;

/// The sample catalog spec.
pub fn catalog_spec() -> Result<CatalogSpec> {
    CatalogSpec::from_json(CATALOG_JSON)
}

/// The sample catalog, compiled.
pub fn catalog() -> Result<Catalog> {
    Catalog::from_json(CATALOG_JSON)
}

/// One sample person: who they are, their profile and the moment they arrive in.
#[derive(Clone, Debug)]
pub struct Person {
    /// A short description for tables.
    pub name: &'static str,
    /// Their profile.
    pub profile: Profile,
    /// The moment of their request.
    pub context: Context,
}

/// Very different people, for the quickstart and the tests.
pub fn people(menu: &PersonaMenu) -> Result<Vec<Person>> {
    let behavioral_purchase = DataClasses::only(DataClass::Behavioral).with(DataClass::Purchase);
    let mut people = Vec::new();

    // A loyal luxury traveller, browsing on desktop in the evening in Paris.
    let mut p = Profile::new(menu.len(), NOW - 400 * DAY);
    p.visits = 48;
    p.consent = DataClasses::ALL;
    p.set_score(menu, "Luxury Travel", 9, behavioral_purchase)?;
    p.set_score(menu, "Wellness & Spa", 8, behavioral_purchase)?;
    p.set_score(
        menu,
        "Beach Lover",
        7,
        DataClasses::only(DataClass::Behavioral),
    )?;
    p.set_score(menu, "Budget Traveller", 1, behavioral_purchase)?;
    people.push(Person {
        name: "luxury traveller, desktop, evening",
        profile: p,
        context: Context::at(NOW)
            .with_utc_offset(60)
            .with_device(Device::Desktop)
            .with_channel(Channel::Web)
            .with_region("FR")
            .with_weather(Weather::Rain)
            .with_attribute("loyalty_tier", "platinum"),
    });

    // A parent on mobile at lunch in London (a regular).
    let mut p = Profile::new(menu.len(), NOW - 60 * DAY);
    p.visits = 9;
    p.consent = DataClasses::only(DataClass::Behavioral)
        .with(DataClass::Purchase)
        .with(DataClass::Location);
    p.set_score(menu, "Family Activities", 9, behavioral_purchase)?;
    p.set_score(
        menu,
        "Budget Traveller",
        7,
        DataClasses::only(DataClass::Purchase),
    )?;
    p.set_score(
        menu,
        "Beach Lover",
        6,
        DataClasses::only(DataClass::Behavioral),
    )?;
    people.push(Person {
        name: "parent, mobile, lunchtime",
        profile: p,
        context: Context::at(NOW - 8 * 3_600)
            .with_device(Device::Mobile)
            .with_channel(Channel::App)
            .with_region("GB")
            .with_weather(Weather::Cloudy),
    });

    // A first-time visitor who gave no consent. Their scores came from third-party
    // data, so none of them may be used.
    let mut p = Profile::new(menu.len(), NOW);
    p.set_score(
        menu,
        "Adventure Seeker",
        9,
        DataClasses::only(DataClass::ThirdParty),
    )?;
    p.set_score(
        menu,
        "Early Adopter",
        8,
        DataClasses::only(DataClass::ThirdParty),
    )?;
    people.push(Person {
        name: "first visit, no consent",
        profile: p,
        context: Context::at(NOW)
            .with_device(Device::Mobile)
            .with_channel(Channel::Web)
            .with_region("DE"),
    });

    // A returning city-breaker who told us they are not interested in luxury travel,
    // although our model thinks they are.
    let mut p = Profile::new(menu.len(), NOW - 20 * DAY);
    p.visits = 4;
    p.consent = DataClasses::ALL;
    p.set_score(
        menu,
        "Luxury Travel",
        9,
        DataClasses::only(DataClass::Behavioral),
    )?;
    p.set_score(
        menu,
        "City Breaks",
        8,
        DataClasses::only(DataClass::Behavioral),
    )?;
    p.set_score(menu, "Foodie", 7, DataClasses::only(DataClass::Behavioral))?;
    p.declare_dislike(menu, "Luxury Travel")?;
    p.declare_like(menu, "Eco Conscious")?;
    people.push(Person {
        name: "city-breaker who dislikes luxury",
        profile: p,
        context: Context::at(NOW - 3 * 3_600)
            .with_device(Device::Tablet)
            .with_channel(Channel::Web)
            .with_region("NL"),
    });

    // A security-minded early adopter on the app in the morning, in the US.
    let mut p = Profile::new(menu.len(), NOW - 30 * DAY);
    p.visits = 6;
    p.consent = DataClasses::only(DataClass::Behavioral).with(DataClass::Declared);
    p.set_score(
        menu,
        "Security Conscious",
        9,
        DataClasses::only(DataClass::Declared),
    )?;
    p.set_score(
        menu,
        "Early Adopter",
        8,
        DataClasses::only(DataClass::Behavioral),
    )?;
    p.set_score(
        menu,
        "Business Traveller",
        7,
        DataClasses::only(DataClass::Purchase),
    )?;
    people.push(Person {
        name: "security-minded early adopter",
        profile: p,
        context: Context::at(NOW + 12 * 3_600)
            .with_utc_offset(-300)
            .with_device(Device::Mobile)
            .with_channel(Channel::App)
            .with_region("US")
            .with_weather(Weather::Snow),
    });
    Ok(people)
}
