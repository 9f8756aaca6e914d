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

/// The sample's assembled creatives, as JSON: two more placements (`email_hero`,
/// `home_banner`) and a template for each, whose variants speak to several personas.
pub const TEMPLATES_JSON: &str = include_str!("../data/sample_templates.json");

/// The sample catalog spec with its assembled creatives ([`TEMPLATES_JSON`]) added.
pub fn catalog_spec_with_templates() -> Result<CatalogSpec> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Extra {
        placements: Vec<String>,
        templates: Vec<crate::assemble::TemplateSpec>,
    }
    let mut spec = catalog_spec()?;
    let extra: Extra = serde_json::from_str(TEMPLATES_JSON)
        .map_err(|source| crate::error::Error::Json { what: "sample templates", source })?;
    spec.placements.extend(extra.placements);
    spec.templates = extra.templates;
    Ok(spec)
}

/// The sample catalog with its assembled creatives, compiled.
pub fn catalog_with_templates() -> Result<Catalog> {
    Catalog::compile(&catalog_spec_with_templates()?)
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
    let mut p = Profile::for_menu(menu, NOW - 400 * DAY);
    p.visits = 48;
    p.consent = DataClasses::ALL;
    p.set_score(menu, "Luxury Travel", 9, behavioral_purchase)?;
    p.set_score(menu, "Wellness & Spa", 8, behavioral_purchase)?;
    p.set_score(menu, "Beach Lover", 7, DataClasses::only(DataClass::Behavioral))?;
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
    let mut p = Profile::for_menu(menu, NOW - 60 * DAY);
    p.visits = 9;
    p.consent = DataClasses::only(DataClass::Behavioral).with(DataClass::Purchase).with(DataClass::Location);
    p.set_score(menu, "Family Activities", 9, behavioral_purchase)?;
    p.set_score(menu, "Budget Traveller", 7, DataClasses::only(DataClass::Purchase))?;
    p.set_score(menu, "Beach Lover", 6, DataClasses::only(DataClass::Behavioral))?;
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
    let mut p = Profile::for_menu(menu, NOW);
    p.set_score(menu, "Adventure Seeker", 9, DataClasses::only(DataClass::ThirdParty))?;
    p.set_score(menu, "Early Adopter", 8, DataClasses::only(DataClass::ThirdParty))?;
    people.push(Person {
        name: "first visit, no consent",
        profile: p,
        context: Context::at(NOW).with_device(Device::Mobile).with_channel(Channel::Web).with_region("DE"),
    });

    // A returning city-breaker who told us they are not interested in luxury travel,
    // although our model thinks they are.
    let mut p = Profile::for_menu(menu, NOW - 20 * DAY);
    p.visits = 4;
    p.consent = DataClasses::ALL;
    p.set_score(menu, "Luxury Travel", 9, DataClasses::only(DataClass::Behavioral))?;
    p.set_score(menu, "City Breaks", 8, DataClasses::only(DataClass::Behavioral))?;
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
    let mut p = Profile::for_menu(menu, NOW - 30 * DAY);
    p.visits = 6;
    p.consent = DataClasses::only(DataClass::Behavioral).with(DataClass::Declared);
    p.set_score(menu, "Security Conscious", 9, DataClasses::only(DataClass::Declared))?;
    p.set_score(menu, "Early Adopter", 8, DataClasses::only(DataClass::Behavioral))?;
    p.set_score(menu, "Business Traveller", 7, DataClasses::only(DataClass::Purchase))?;
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

/// A deterministic generator (SplitMix64) for synthetic catalogs and people.
#[derive(Clone, Debug)]
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: usize) -> usize {
        (((self.next() >> 32) * n as u64) >> 32) as usize
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The `format` attribute values of synthetic creatives.
const FORMATS: [&str; 4] = ["banner", "video", "carousel", "text"];
/// The `tone` attribute values of synthetic creatives.
const TONES: [&str; 3] = ["playful", "premium", "practical"];

/// Shape of a synthetic catalog: how many personas, placements and creatives.
#[derive(Clone, Copy, Debug)]
pub struct Synthetic {
    /// Personas on the menu (`persona-0` …).
    pub personas: usize,
    /// Placements (`placement-0` …); every creative fits one of them.
    pub placements: usize,
    /// Creatives, not counting one fallback per placement.
    pub creatives: usize,
    /// Seed: the same shape and seed give the same catalog.
    pub seed: u64,
}

impl Synthetic {
    /// A catalog spec that looks like a real one: creatives tagged with 1–3 personas,
    /// context rules on about a fifth of them, boosts, schedules (a few not running at
    /// [`NOW`]), intimacy levels, data needs, frequency caps, exclusion groups, a
    /// `format` and a `tone` attribute each, and one fallback per placement.
    pub fn spec(&self) -> CatalogSpec {
        use crate::catalog::{ConditionSpec, CreativeSpec};
        let mut rng = SplitMix(self.seed);
        let personas: Vec<String> = (0..self.personas.max(1)).map(|i| format!("persona-{i}")).collect();
        let placements: Vec<String> = (0..self.placements.max(1)).map(|i| format!("placement-{i}")).collect();
        let mut creatives = Vec::with_capacity(self.creatives + placements.len());
        let dayparts = ["morning", "midday", "afternoon", "evening", "night"];
        let devices = ["desktop", "mobile", "tablet"];
        for i in 0..self.creatives {
            let mut c =
                CreativeSpec::new(format!("creative-{i}")).placement(&placements[i % placements.len()]);
            let tags = 1 + rng.below(3);
            for _ in 0..tags {
                let p = &personas[rng.below(personas.len())];
                if !c.personas.iter().any(|(n, _)| n == p) {
                    c = c.persona(p, 0.3 + 0.7 * rng.unit());
                }
            }
            c = c.priority(0.5 + rng.unit());
            let roll = rng.below(100);
            if roll < 10 {
                c = c.targeting(ConditionSpec {
                    device: vec![devices[rng.below(3)].into()],
                    ..Default::default()
                });
            } else if roll < 20 {
                let a = dayparts[rng.below(5)];
                let b = dayparts[rng.below(5)];
                c = c.targeting(ConditionSpec { daypart: vec![a.into(), b.into()], ..Default::default() });
            }
            if rng.below(10) == 0 {
                c = c.boost(
                    ConditionSpec { device: vec![devices[rng.below(3)].into()], ..Default::default() },
                    1.25,
                );
            }
            match rng.below(20) {
                0 => c = c.schedule(Some(NOW - 30 * DAY), Some(NOW + 30 * DAY)),
                1 => c = c.schedule(Some(NOW + 10 * DAY), None),
                _ => {}
            }
            c = match rng.below(10) {
                0..=3 => c.intimacy("segment").needs("behavioral"),
                4 => c.intimacy("personal").needs("purchase"),
                _ => c,
            };
            if rng.below(10) == 0 {
                c = c.frequency_cap(3, DAY as u64);
            }
            if rng.below(25) == 0 {
                c = c.exclusion_group(&format!("group-{}", rng.below(8)));
            }
            // Attributes from their own generator, so the draws above stay as they were.
            let mut own = SplitMix(self.seed ^ (i as u64).wrapping_mul(0xa076_1d64_78bd_642f));
            c = c
                .attribute("format", FORMATS[own.below(FORMATS.len())])
                .attribute("tone", TONES[own.below(TONES.len())]);
            creatives.push(c);
        }
        for p in &placements {
            creatives.push(CreativeSpec::new(format!("fallback-{p}")).placement(p).fallback().priority(0.5));
        }
        CatalogSpec {
            version: format!("synthetic-{}", self.seed),
            personas,
            placements,
            creatives,
            templates: Vec::new(),
            attribute_rules: Vec::new(),
        }
    }

    /// [`Synthetic::spec`] plus `count` templates (`template-0` …, spread over the
    /// placements), each with `slots` slots of `variants` variants: a quarter generic,
    /// the rest tagged with one persona (each slot's first variant generic, so every
    /// theme can be completed), some needing behavioural data, and a `requires` and an
    /// `excludes` rule in every template with two slots or more.
    pub fn spec_with_templates(&self, count: usize, slots: usize, variants: usize) -> CatalogSpec {
        use crate::assemble::{SlotSpec, TemplateSpec, VariantSpec};
        let mut spec = self.spec();
        let mut rng = SplitMix(self.seed ^ 0x7e3a_11c5_9b2d_4f61);
        let (slots, variants) = (slots.max(1), variants.max(1));
        for t in 0..count {
            let placement = &spec.placements[t % spec.placements.len()];
            let mut template = TemplateSpec::new(format!("template-{t}")).placement(placement);
            template.priority = 0.5 + rng.unit();
            for s in 0..slots {
                let mut slot = SlotSpec::new(format!("slot-{s}"));
                for v in 0..variants {
                    let mut variant = VariantSpec::new(format!("s{s}v{v}"));
                    if v > 0 && rng.below(4) != 0 {
                        let p = &spec.personas[rng.below(spec.personas.len())];
                        variant = variant.persona(p, 0.5 + 0.5 * rng.unit());
                    }
                    if rng.below(10) < 3 {
                        variant = variant.intimacy("segment").needs("behavioral");
                    }
                    variant.priority = 0.5 + rng.unit();
                    slot = slot.variant(variant);
                }
                template = template.slot(slot);
            }
            if slots >= 2 && variants >= 3 {
                template.slots[0].variants[1].requires.push("s1v0".to_owned());
                template.slots[0].variants[2].excludes.push("s1v2".to_owned());
            }
            spec.templates.push(template);
        }
        spec
    }

    /// `n` people for benchmarks: each has exactly one high persona (score 9), so the
    /// creatives that can match them are the ~`2/personas` tagged with it; everyone
    /// consented to everything and is a loyal customer (no trust rule hides anything);
    /// moments vary over the week, devices and weather, each with its own seed.
    pub fn focused_people(&self, n: usize) -> Vec<(Profile, Context)> {
        let mut rng = SplitMix(self.seed ^ 0xfee1_900d);
        let personas = self.personas.max(1);
        let devices = [Device::Desktop, Device::Mobile, Device::Tablet];
        (0..n)
            .map(|i| {
                let mut p = Profile::new(personas, NOW - 400 * DAY);
                p.visits = 50;
                p.consent = DataClasses::ALL;
                let _ = p.scores.set(
                    crate::PersonaId(rng.below(personas) as u16),
                    9,
                    DataClasses::only(DataClass::Behavioral),
                );
                let ctx = Context::at(NOW + rng.below(7 * 24) as i64 * 3_600)
                    .with_device(devices[i % devices.len()])
                    .with_weather([Weather::Clear, Weather::Rain][rng.below(2)])
                    .with_seed(rng.next());
                (p, ctx)
            })
            .collect()
    }

    /// `n` varied people with their moments, for a catalog of this shape: each has 1–4
    /// high personas (7–9) and some low ones, a consent set, a relationship stage, and
    /// a context with varied device, daypart, weather and region.
    pub fn people(&self, n: usize) -> Vec<(Profile, Context)> {
        let mut rng = SplitMix(self.seed ^ 0x5eed_0f9e_091e);
        let personas = self.personas.max(1);
        let devices = [Device::Desktop, Device::Mobile, Device::Tablet, Device::Unknown];
        let weather = [Weather::Clear, Weather::Rain, Weather::Snow, Weather::Unknown];
        (0..n)
            .map(|i| {
                let mut p = Profile::new(personas, NOW - rng.below(400) as i64 * DAY);
                p.visits = 1 + rng.below(60) as u32;
                p.consent = match rng.below(4) {
                    0 => DataClasses::NONE,
                    1 => DataClasses::only(DataClass::Behavioral),
                    _ => DataClasses::ALL,
                };
                let sources = DataClasses::only(DataClass::Behavioral);
                for _ in 0..1 + rng.below(4) {
                    let _ = p.scores.set(
                        crate::PersonaId(rng.below(personas) as u16),
                        7 + rng.below(3) as u8,
                        sources,
                    );
                }
                for _ in 0..rng.below(6) {
                    let _ = p.scores.set(
                        crate::PersonaId(rng.below(personas) as u16),
                        rng.below(7) as u8,
                        sources,
                    );
                }
                let ctx = Context::at(NOW + rng.below(7 * 24) as i64 * 3_600)
                    .with_device(devices[i % devices.len()])
                    .with_weather(weather[rng.below(weather.len())])
                    .with_region(["FR", "US", "GB", "DE"][rng.below(4)])
                    .with_seed(rng.next());
                (p, ctx)
            })
            .collect()
    }
}
