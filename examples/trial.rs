//! An independent trial of the engine's learning: synthetic worlds whose hidden click
//! models were designed from how persona marketing behaves, not from how the engine
//! models clicks, played through the public API exactly as an integrator would.
//!
//! ```sh
//! cargo run --release --example trial                        # every family, 5 seeds
//! cargo run --release --example trial -- --family cross --seeds 2 --impressions 5000
//! ```
//!
//! Options: `--family rank|format|cross|mixed|all` (default all), `--seeds K` (5),
//! `--seed S` (first seed, 1000), `--impressions N` (20,000), `--threads T` (all cores),
//! `--spread learned|fixed` (the engine's prior spreads learned, the default, or kept
//! as configured), `--export DIR` (write every world, request by request with its hidden
//! rates, for a peer learner: `benches/peers/vw_trial.py`), `--curve on` (print each
//! world's learning curves, share of the oracle per 2,000 requests).
//!
//! **What it measures.** Each world has 40 personas of skewed popularity, 200 creatives
//! tagged with 1–3 personas (plus a fallback), 3,000 people scored 0–9 and N impressions
//! spread over six weeks on mobile, desktop and tablet. A hidden logistic model gives the
//! probability that a person clicks a creative at that moment (base rate 1.5 %; over all
//! (request, creative) pairs the 1st–99th percentiles span about 0.3–11 %, and each
//! family's table header prints its own). Every strategy sees the same impressions and the same click coins
//! (each coin derives from the seed and the impression's index, never from the
//! strategy): uniform random, a static persona rule (the best-tagged creative of the
//! person's top persona), the engine under `rules`, `greedy`, `epsilon_greedy` (0.1) and
//! `thompson` with the library's defaults, and an oracle that knows the hidden rates.
//! Engine strategies record the impression, then the click when the coin says so, after
//! each pick; every request starts from a fresh copy of the person's profile, so no
//! fatigue builds up. The score of a strategy is its mean *expected* click rate (the
//! hidden probability of what it showed, not its realized clicks), as a share of the
//! oracle's and as a ratio to the static rule's, overall and for people with no persona
//! score of 7 or more.
//!
//! **The families** (their formulas are on [`Family`] and [`World::logit`]):
//! - `rank`: a person responds to a creative's persona by that persona's *rank* among
//!   their scores (×1, ×0.5, ×0.2, then 0) times a mild function of the score;
//!   secondary tags add 40 % of what a primary tag adds;
//! - `format`: format × device × hour-of-day effects (video on mobile evenings, text on
//!   desktop mornings, carousels at midday) and tone × weekend, plus a weaker `rank`
//!   persona effect;
//! - `cross`: a hidden persona graph: people also respond at half strength to related
//!   personas and dislike one opposite persona; per-creative quality (sd 0.5 in logit);
//! - `mixed`: all of the above, plus 15 % of people whose best score is 4–6 and people
//!   arriving with Zipf-like frequency.
//!
//! The trial uses only the public API and owns its randomness (a splitmix64 generator);
//! it does not use `persona_engine::simulate`.

use std::collections::HashSet;
use std::fmt;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use persona_engine::{
    Catalog, CatalogSpec, Channel, Context, CreativeSpec, DataClass, DataClasses, Device, Feedback,
    FeedbackKind, Policy, Profile, Selector, SelectorConfig,
};

/// Personas on the menu.
const PERSONAS: usize = 40;
/// Tagged creatives in the catalog (the fallback comes on top, at index `CREATIVES`).
const CREATIVES: usize = 200;
/// People in a world.
const PEOPLE: usize = 3_000;
/// Days the impressions are spread over.
const DAYS: i64 = 42;
/// The first day of the trial: 2026-01-01T00:00:00Z, a Thursday.
const START: i64 = 1_767_225_600;
/// The placement every creative fills.
const PLACEMENT: &str = "home_hero";
/// The hidden click rate of a creative that speaks to nothing the person cares about.
const BASE_RATE: f64 = 0.015;
/// How much a persona counts by its rank among the person's scores (first, second,
/// third; later ranks count nothing).
const RANK_FACTOR: [f64; 3] = [1.0, 0.5, 0.2];
/// How much a creative's tags count by their position (tags ordered by weight): the
/// primary in full, every secondary tag 40 %.
const TAG_FACTOR: [f64; 3] = [1.0, 0.4, 0.4];
/// The most a creative's persona terms add up to, in units of the persona strength:
/// relevance saturates (a creative speaking to three of your interests is not three
/// times as interesting).
const PERSONA_CAP: f64 = 1.25;
/// Share of a related persona's response a person gives to its graph neighbours
/// (`cross`, `mixed`).
const RELATED_FACTOR: f64 = 0.5;
/// How strongly a person dislikes the opposite of each of their interests, in units of
/// the persona strength (`cross`, `mixed`).
const OPPOSITE_FACTOR: f64 = 0.8;

/// The persona menu, most popular first (popularity falls as `(i + 1)^-0.9`).
const PERSONA_NAMES: [&str; PERSONAS] = [
    "Bargain Hunter",
    "Busy Parent",
    "Foodie",
    "Fitness Fan",
    "Tech Enthusiast",
    "Traveler",
    "Home Decorator",
    "Fashionista",
    "Pet Owner",
    "Gamer",
    "Outdoor Adventurer",
    "Beauty Buff",
    "Eco Shopper",
    "Student",
    "Music Lover",
    "Sports Fan",
    "Luxury Buyer",
    "DIY Maker",
    "Bookworm",
    "Gardener",
    "Coffee Lover",
    "Cinephile",
    "Wellness Seeker",
    "New Homeowner",
    "Photographer",
    "Small Business Owner",
    "Runner",
    "Cyclist",
    "Wine Connoisseur",
    "Commuter",
    "Retiree",
    "Newlywed",
    "Collector",
    "Skier",
    "Camper",
    "Baker",
    "Yoga Practitioner",
    "Car Enthusiast",
    "Crafter",
    "Audiophile",
];

/// Relative traffic by local hour (a typical web day: quiet nights, a lunch bump, an
/// evening peak).
const HOURLY_TRAFFIC: [f64; 24] = [
    0.6, 0.4, 0.3, 0.25, 0.25, 0.35, 0.7, 1.2, 1.6, 1.7, 1.6, 1.7, 2.0, 1.9, 1.6, 1.5, 1.6, 1.8, 2.1, 2.4,
    2.5, 2.3, 1.8, 1.1,
];

/// Creative tones (attribute `tone`).
const TONES: [&str; 3] = ["playful", "premium", "practical"];

// ---------------------------------------------------------------------------------------
// Randomness

/// The splitmix64 finalizer: a good 64-bit mix of `z`.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A uniform number in `[0, 1)` from 64 random bits.
fn unit(bits: u64) -> f64 {
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

/// A small splitmix64 generator: the trial's own randomness.
struct Rng(u64);

impl Rng {
    /// A generator seeded from `seed` and a `stream` label.
    fn new(seed: u64, stream: u64) -> Self {
        Rng(mix(seed ^ mix(stream.wrapping_add(0x5EED))))
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }

    /// Uniform in `[0, 1)`.
    fn uniform(&mut self) -> f64 {
        unit(self.next_u64())
    }

    /// Uniform in `[lo, hi)`.
    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }

    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        ((self.uniform() * n as f64) as usize).min(n - 1)
    }

    /// Uniform integer in `lo..=hi`.
    fn between(&mut self, lo: u8, hi: u8) -> u8 {
        lo + self.below(usize::from(hi - lo) + 1) as u8
    }

    /// A standard normal draw (Box–Muller).
    fn normal(&mut self) -> f64 {
        let u = 1.0 - self.uniform();
        let v = self.uniform();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }

    /// An index drawn with probability proportional to its weight, from cumulative
    /// weights (see [`cumulative`]).
    fn weighted(&mut self, cumulative: &[f64]) -> usize {
        let total = cumulative.last().copied().unwrap_or(0.0);
        let x = self.uniform() * total;
        cumulative.partition_point(|&c| c <= x).min(cumulative.len() - 1)
    }
}

/// Running sums of `weights`, for [`Rng::weighted`].
fn cumulative(weights: impl IntoIterator<Item = f64>) -> Vec<f64> {
    weights
        .into_iter()
        .scan(0.0, |sum, w| {
            *sum += w;
            Some(*sum)
        })
        .collect()
}

fn logistic(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

fn logit(p: f64) -> f64 {
    (p / (1.0 - p)).ln()
}

// ---------------------------------------------------------------------------------------
// Families and their hidden click models

/// A family of worlds: which hidden effects decide clicks.
///
/// Every family's hidden log-odds of person u clicking creative c at moment x are
///
/// ```text
/// logit P(click) = logit(1.5 %)
///                + A · min(1.25, Σ_j t_j · r_u(p_j))                  persona effect
///                + F(format_c, device_x, hour_x) + T(tone_c, weekend_x)   format, mixed
///                + q_c,  q_c ~ N(0, 0.5²)                            cross, mixed
/// ```
///
/// - `p_j` are c's persona tags ordered by weight and `t = (1, 0.4, 0.4)`: each secondary
///   tag adds 40 % of what the primary adds; the sum saturates at 1.25.
/// - `r_u(p)`, u's response to persona p, in `rank` and `format`:
///   `R[rank_u(p)] · g(s_u(p))` with `R = (1, 0.5, 0.2, 0, …)` over u's non-zero scores
///   in descending order (ties in a hidden order of the person's own) and
///   `g(s) = 0.3 + 0.7·s/9`.
/// - In `cross` and `mixed` a hidden graph gives each persona 1–2 related personas and
///   one opposite; then `r_u(p) = clamp(R·g + 0.5 · Σ R[rank_u(a)]·g(s_u(a)) over u's
///   interests a related to p − 0.8 · Σ g(s_u(a)) over u's interests a whose opposite is
///   p, −1, 1)`, where u's interests are the personas generated as theirs (scored 5–9,
///   or 4–6 for mid-score people).
/// - `F` is [`format_effect`], `T` is [`tone_effect`]; `A` is
///   [`Family::persona_strength`]: 2.0 (`rank`), 1.2 (`format`), 1.5 (`cross`), 1.3
///   (`mixed`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// Rank-based persona response only.
    Rank,
    /// Format × device × daypart and tone × weekend effects over a weaker rank response.
    Format,
    /// A persona graph (related and opposite personas) and creative quality.
    Cross,
    /// Everything, plus mid-score people and Zipf-like arrivals.
    Mixed,
}

impl Family {
    const ALL: [Family; 4] = [Family::Rank, Family::Format, Family::Cross, Family::Mixed];

    fn name(self) -> &'static str {
        match self {
            Family::Rank => "rank",
            Family::Format => "format",
            Family::Cross => "cross",
            Family::Mixed => "mixed",
        }
    }

    fn parse(text: &str) -> Option<Family> {
        Family::ALL.into_iter().find(|f| f.name() == text)
    }

    /// `A`: the log-odds a primary tag adds for a person's top persona scored 9.
    fn persona_strength(self) -> f64 {
        match self {
            Family::Rank => 2.0,
            Family::Format => 1.2,
            Family::Cross => 1.5,
            Family::Mixed => 1.3,
        }
    }

    /// Whether format, device, hour and tone matter.
    fn context_effects(self) -> bool {
        matches!(self, Family::Format | Family::Mixed)
    }

    /// Whether the persona graph (related and opposite personas) matters.
    fn graph_effects(self) -> bool {
        matches!(self, Family::Cross | Family::Mixed)
    }

    /// Standard deviation of each creative's own quality, in log-odds.
    fn quality_sd(self) -> f64 {
        if self.graph_effects() {
            0.5
        } else {
            0.0
        }
    }

    /// Share of people whose best score is 4–6.
    fn mid_share(self) -> f64 {
        if self == Family::Mixed {
            0.15
        } else {
            0.0
        }
    }

    /// Whether people arrive with Zipf-like frequency (exponent 0.8) instead of uniformly.
    fn zipf(self) -> bool {
        self == Family::Mixed
    }
}

/// A creative's format (attribute `format`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Video,
    Image,
    Carousel,
    Text,
}

impl Format {
    const ALL: [Format; 4] = [Format::Video, Format::Image, Format::Carousel, Format::Text];
    /// How often each format appears in the catalog.
    const SHARE: [f64; 4] = [0.25, 0.35, 0.2, 0.2];

    fn name(self) -> &'static str {
        match self {
            Format::Video => "video",
            Format::Image => "image",
            Format::Carousel => "carousel",
            Format::Text => "text",
        }
    }
}

/// A bump of height 1 at `peak` (hours, on the 24-hour circle) with width `width`.
fn bump(hour: f64, peak: f64, width: f64) -> f64 {
    let d = (hour - peak).abs();
    let d = d.min(24.0 - d);
    (-0.5 * (d / width).powi(2)).exp()
}

/// `F(format, device, hour)`: the hidden format effect in log-odds. Video is strong on
/// phones in the evening (weaker on tablets, poor on desktops), text reads well on
/// desktops in the morning and poorly on phones, carousels do well around lunch, images
/// are the neutral reference.
fn format_effect(format: Format, device: Device, hour: f64) -> f64 {
    match (format, device) {
        (Format::Video, Device::Mobile) => -0.3 + 1.1 * bump(hour, 20.5, 2.0),
        (Format::Video, Device::Tablet) => -0.2 + 0.7 * bump(hour, 20.5, 2.5),
        (Format::Video, _) => -0.5,
        (Format::Text, Device::Desktop) => -0.2 + 0.9 * bump(hour, 8.5, 1.8),
        (Format::Text, Device::Mobile) => -0.6,
        (Format::Text, _) => -0.4,
        (Format::Carousel, _) => -0.1 + 0.7 * bump(hour, 12.5, 1.5),
        (Format::Image, _) => 0.0,
    }
}

/// `T(tone, weekend)`: playful creatives do better at weekends, practical ones on
/// weekdays, premium ones the same all week.
fn tone_effect(tone: usize, weekend: bool) -> f64 {
    match (tone, weekend) {
        (0, true) => 0.25,
        (0, false) => -0.1,
        (2, true) => -0.15,
        (2, false) => 0.15,
        _ => 0.0,
    }
}

/// `g(s)`: the mild score factor of a persona's response.
fn score_factor(score: u8) -> f64 {
    0.3 + 0.7 * f64::from(score) / 9.0
}

// ---------------------------------------------------------------------------------------
// Worlds

/// One creative as the hidden world sees it.
struct Creative {
    /// Persona tags, heaviest first.
    tags: Vec<(usize, f64)>,
    format: Format,
    tone: usize,
    /// Hidden quality in log-odds.
    quality: f64,
}

/// One person as the hidden world sees them.
struct Person {
    /// Score per persona, 0..=9.
    scores: Vec<u8>,
    /// Hidden response `r_u(p)` per persona (graph included where the family has one).
    response: Vec<f64>,
    /// True when some score is 7 or more.
    strong: bool,
    /// True when two or more personas share the person's top score.
    tied_top: bool,
    /// The device the person mostly uses.
    device: Device,
    /// When we first saw them and how often they visited (for the profile).
    first_seen: i64,
    visits: u32,
}

/// One request.
struct Impression {
    person: usize,
    at: i64,
    device: Device,
    /// Local hour with minutes, `[0, 24)`.
    hour: f64,
    weekend: bool,
}

/// A generated world: catalog, people, impressions and every hidden click rate.
struct World {
    family: Family,
    /// Seed of this world's click coins.
    coin_seed: u64,
    creatives: Vec<Creative>,
    people: Vec<Person>,
    impressions: Vec<Impression>,
    /// Hidden click rate per impression and creative (fallback last):
    /// `rates[i * (CREATIVES + 1) + c]`.
    rates: Vec<f32>,
    /// The static rule's creative per person.
    static_pick: Vec<usize>,
    spec: CatalogSpec,
}

impl World {
    /// Generates the world of `family` for `seed` with `impressions` requests.
    fn build(family: Family, seed: u64, impressions: usize) -> World {
        let world_seed = mix(seed ^ mix(family as u64 + 1));
        let mut rng = Rng::new(world_seed, 1);
        let popularity: Vec<f64> = (0..PERSONAS).map(|i| (i as f64 + 1.0).powf(-0.9)).collect();
        let demand = cumulative(popularity.iter().copied());
        let supply = cumulative(popularity.iter().map(|p| p.powf(0.8)));

        // The hidden persona graph: 1–2 related personas and one opposite per persona.
        let mut related = vec![Vec::new(); PERSONAS];
        let mut opposite = vec![0; PERSONAS];
        for p in 0..PERSONAS {
            let n = 1 + rng.below(2);
            while related[p].len() < n {
                let q = rng.below(PERSONAS);
                if q != p && !related[p].contains(&q) {
                    related[p].push(q);
                }
            }
            opposite[p] = loop {
                let q = rng.below(PERSONAS);
                if q != p && !related[p].contains(&q) {
                    break q;
                }
            };
        }

        let creatives = Self::creatives(family, &mut rng, &supply, &related, &opposite);
        let people = Self::people(family, &mut rng, &demand, &related, &opposite);
        let impressions = Self::impressions(family, &mut rng, &people, impressions);

        let mut world = World {
            family,
            coin_seed: mix(world_seed ^ 0xC0DE),
            creatives,
            people,
            impressions,
            rates: Vec::new(),
            static_pick: Vec::new(),
            spec: CatalogSpec::default(),
        };
        world.rates = (0..world.impressions.len())
            .flat_map(|i| (0..=CREATIVES).map(move |c| (i, c)))
            .map(|(i, c)| logistic(world.logit(&world.impressions[i], c)) as f32)
            .collect();
        world.static_pick = world.people.iter().map(|u| world.static_rule(u)).collect();
        world.spec = world.catalog_spec(seed);
        world
    }

    /// The 200 tagged creatives and the fallback (untagged, image, playful, quality 0).
    fn creatives(
        family: Family,
        rng: &mut Rng,
        supply: &[f64],
        related: &[Vec<usize>],
        opposite: &[usize],
    ) -> Vec<Creative> {
        let formats = cumulative(Format::SHARE);
        let mut creatives: Vec<Creative> = (0..CREATIVES)
            .map(|_| {
                let primary = rng.weighted(supply);
                let n = match rng.uniform() {
                    x if x < 0.4 => 1,
                    x if x < 0.8 => 2,
                    _ => 3,
                };
                let mut tags = vec![(primary, 1.0)];
                while tags.len() < n {
                    // Marketers tag related audiences half the time.
                    let q = if rng.uniform() < 0.5 {
                        related[primary][rng.below(related[primary].len())]
                    } else {
                        rng.weighted(supply)
                    };
                    if q == opposite[primary] || tags.iter().any(|&(t, _)| t == q) {
                        continue;
                    }
                    let weight = if tags.len() == 1 { rng.range(0.4, 0.7) } else { rng.range(0.2, 0.4) };
                    tags.push((q, weight));
                }
                Creative {
                    tags,
                    format: Format::ALL[rng.weighted(&formats)],
                    tone: rng.below(TONES.len()),
                    quality: family.quality_sd() * rng.normal(),
                }
            })
            .collect();
        creatives.push(Creative { tags: Vec::new(), format: Format::Image, tone: 1, quality: 0.0 });
        creatives
    }

    /// The people: 1–4 interests scored 5–9 (1–3 scored 4–6 for mid-score people),
    /// 2–8 weak personas scored 1–3, the rest 0; interests co-occur along the graph and
    /// never include an interest's opposite.
    fn people(
        family: Family,
        rng: &mut Rng,
        demand: &[f64],
        related: &[Vec<usize>],
        opposite: &[usize],
    ) -> Vec<Person> {
        let devices = cumulative([0.55, 0.35, 0.10]);
        let top_scores = cumulative([0.5, 0.7, 1.2, 1.4, 1.2]); // 5..=9
        (0..PEOPLE)
            .map(|_| {
                let mid = rng.uniform() < family.mid_share();
                let (count, lo, top) = if mid {
                    (1 + rng.weighted(&cumulative([0.5, 0.35, 0.15])), 4, rng.between(4, 6))
                } else {
                    (
                        1 + rng.weighted(&cumulative([0.35, 0.35, 0.2, 0.1])),
                        5,
                        5 + rng.weighted(&top_scores) as u8,
                    )
                };
                // Interests, in the person's hidden order (score descending, ties in
                // the order drawn).
                let mut interests: Vec<(usize, u8)> = Vec::new();
                let mut tries = 0;
                while interests.len() < count && tries < 100 {
                    tries += 1;
                    let p = match interests.last() {
                        Some(&(last, _)) if rng.uniform() < 0.4 => {
                            related[last][rng.below(related[last].len())]
                        }
                        _ => rng.weighted(demand),
                    };
                    if interests.iter().any(|&(q, _)| q == p || opposite[q] == p || opposite[p] == q) {
                        continue;
                    }
                    let score = match interests.last() {
                        None => top,
                        Some(&(_, prev)) => rng.between(lo.min(prev), prev),
                    };
                    interests.push((p, score));
                }
                let mut scores = vec![0u8; PERSONAS];
                for &(p, s) in &interests {
                    scores[p] = s;
                }
                let mut weak: Vec<(usize, u8)> = Vec::new();
                for _ in 0..rng.between(2, 8) {
                    let p = rng.weighted(demand);
                    if scores[p] == 0 {
                        scores[p] = rng.between(1, 3);
                        weak.push((p, scores[p]));
                    }
                }
                weak.sort_by_key(|&(_, s)| std::cmp::Reverse(s));
                let order: Vec<(usize, u8)> = interests.iter().chain(&weak).copied().collect();

                let mut direct = vec![0.0; PERSONAS];
                for (rank, &(p, s)) in order.iter().enumerate().take(RANK_FACTOR.len()) {
                    direct[p] = RANK_FACTOR[rank] * score_factor(s);
                }
                let mut response = direct.clone();
                if family.graph_effects() {
                    for &(a, s) in &interests {
                        for &q in &related[a] {
                            response[q] += RELATED_FACTOR * direct[a];
                        }
                        response[opposite[a]] -= OPPOSITE_FACTOR * score_factor(s);
                    }
                    for r in &mut response {
                        *r = r.clamp(-1.0, 1.0);
                    }
                }
                let device = [Device::Mobile, Device::Desktop, Device::Tablet][rng.weighted(&devices)];
                let top = scores.iter().copied().max().unwrap_or(0);
                Person {
                    strong: scores.iter().any(|&s| s >= 7),
                    tied_top: top > 0 && scores.iter().filter(|&&s| s == top).count() > 1,
                    scores,
                    response,
                    device,
                    first_seen: START - rng.between(0, 200) as i64 * 86_400,
                    visits: u32::from(rng.between(1, 40)),
                }
            })
            .collect()
    }

    /// `n` requests over six weeks in time order: people uniformly (or Zipf-like), hours
    /// by a typical web day, each person on their own device 70 % of the time.
    fn impressions(family: Family, rng: &mut Rng, people: &[Person], n: usize) -> Vec<Impression> {
        let mut order: Vec<usize> = (0..people.len()).collect();
        for i in (1..order.len()).rev() {
            order.swap(i, rng.below(i + 1));
        }
        let arrivals = if family.zipf() {
            cumulative((0..people.len()).map(|r| (r as f64 + 1.0).powf(-0.8)))
        } else {
            cumulative((0..people.len()).map(|_| 1.0))
        };
        let hours = cumulative(HOURLY_TRAFFIC);
        let devices = cumulative([0.55, 0.35, 0.10]);
        let mut impressions: Vec<Impression> = (0..n)
            .map(|_| {
                let person = order[rng.weighted(&arrivals)];
                let day = rng.below(DAYS as usize) as i64;
                let hour = rng.weighted(&hours) as i64;
                let second = rng.below(3_600) as i64;
                let device = if rng.uniform() < 0.7 {
                    people[person].device
                } else {
                    [Device::Mobile, Device::Desktop, Device::Tablet][rng.weighted(&devices)]
                };
                Impression {
                    person,
                    at: START + day * 86_400 + hour * 3_600 + second,
                    device,
                    hour: hour as f64 + second as f64 / 3_600.0,
                    // Day 0 is a Thursday: days 2 and 3 of each week are the weekend.
                    weekend: matches!(day % 7, 2 | 3),
                }
            })
            .collect();
        impressions.sort_by_key(|imp| imp.at);
        impressions
    }

    /// The hidden log-odds that the person of `imp` clicks creative `c` (the formula is
    /// on [`Family`]).
    fn logit(&self, imp: &Impression, c: usize) -> f64 {
        let person = &self.people[imp.person];
        let creative = &self.creatives[c];
        let persona: f64 =
            creative.tags.iter().zip(TAG_FACTOR).map(|(&(p, _), t)| t * person.response[p]).sum();
        let persona = persona.min(PERSONA_CAP);
        let mut x = logit(BASE_RATE) + self.family.persona_strength() * persona + creative.quality;
        if self.family.context_effects() && c < CREATIVES {
            x += format_effect(creative.format, imp.device, imp.hour)
                + tone_effect(creative.tone, imp.weekend);
        }
        x
    }

    /// What a reference learner is told of the hidden log-odds of creative `c` at `imp`:
    /// everything but the creative's quality, or (without `context`) the persona part
    /// alone.
    fn known_logit(&self, imp: &Impression, c: usize, context: bool) -> f64 {
        let creative = &self.creatives[c];
        let mut x = self.logit(imp, c) - creative.quality;
        if !context && self.family.context_effects() {
            x -= format_effect(creative.format, imp.device, imp.hour)
                + tone_effect(creative.tone, imp.weekend);
        }
        x
    }

    /// The hidden click rate of creative `c` (world index) at impression `i`.
    fn rate(&self, i: usize, c: usize) -> f64 {
        f64::from(self.rates[i * (CREATIVES + 1) + c])
    }

    /// Whether the person clicks creative `c` at impression `i`: one coin per impression,
    /// shared by every strategy (common random numbers).
    fn clicks(&self, i: usize, c: usize) -> bool {
        self.coin(i) < self.rate(i, c)
    }

    /// The click coin of impression `i`, in `[0, 1)`.
    fn coin(&self, i: usize) -> f64 {
        unit(mix(self.coin_seed ^ mix(i as u64)))
    }

    /// The static persona rule: of the person's personas by score (ties: menu order),
    /// the first that some creative is tagged with gives its best-tagged creative
    /// (highest weight; ties: fewest tags, then catalog order); the fallback when none.
    fn static_rule(&self, person: &Person) -> usize {
        let mut personas: Vec<usize> = (0..PERSONAS).filter(|&p| person.scores[p] > 0).collect();
        personas.sort_by(|&a, &b| person.scores[b].cmp(&person.scores[a]).then(a.cmp(&b)));
        personas
            .iter()
            .find_map(|&p| {
                (0..CREATIVES)
                    .filter_map(|c| {
                        let tags = &self.creatives[c].tags;
                        tags.iter().find(|&&(q, _)| q == p).map(|&(_, w)| (c, w, tags.len()))
                    })
                    .min_by(|a, b| b.1.total_cmp(&a.1).then(a.2.cmp(&b.2)).then(a.0.cmp(&b.0)))
                    .map(|(c, _, _)| c)
            })
            .unwrap_or(CREATIVES)
    }

    /// The catalog an integrator would write for this world: persona tags with their
    /// weights, `format` and `tone` attributes, and a fallback.
    fn catalog_spec(&self, seed: u64) -> CatalogSpec {
        let mut creatives: Vec<CreativeSpec> = self.creatives[..CREATIVES]
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let theme = PERSONA_NAMES[c.tags[0].0].to_lowercase().replace(' ', "-");
                let spec = CreativeSpec::new(format!("c{i:03}-{theme}-{}", c.format.name()))
                    .placement(PLACEMENT)
                    .attribute("format", c.format.name())
                    .attribute("tone", TONES[c.tone]);
                c.tags.iter().fold(spec, |spec, &(p, w)| spec.persona(PERSONA_NAMES[p], w))
            })
            .collect();
        creatives.push(CreativeSpec::new("house-brand").placement(PLACEMENT).fallback());
        CatalogSpec {
            version: format!("trial-{}-{seed}", self.family.name()),
            personas: PERSONA_NAMES.iter().map(|s| (*s).to_owned()).collect(),
            placements: vec![PLACEMENT.to_owned()],
            creatives,
            ..CatalogSpec::default()
        }
    }

    /// The person's profile as an integrator would build it: imported behavioural
    /// scores, consent to behavioural data.
    fn profile(&self, catalog: &Catalog, person: &Person) -> Result<Profile, TrialError> {
        let mut profile = Profile::for_menu(catalog.menu(), person.first_seen);
        profile.visits = person.visits;
        profile.consent = DataClasses::only(DataClass::Behavioral);
        for (p, &score) in person.scores.iter().enumerate() {
            if score > 0 {
                profile.set_score(
                    catalog.menu(),
                    PERSONA_NAMES[p],
                    score,
                    DataClasses::only(DataClass::Behavioral),
                )?;
            }
        }
        Ok(profile)
    }
}

// ---------------------------------------------------------------------------------------
// Strategies

/// Who picks the creatives.
#[derive(Clone, Copy, Debug)]
pub enum Strategy {
    /// A uniformly random tagged creative.
    Uniform,
    /// The best-tagged creative of the person's top persona.
    Static,
    /// A fresh engine with the library defaults under this policy.
    Engine(Policy),
    /// The creative with the highest hidden rate.
    Oracle,
    /// A reference learner, not something an engine can be: it knows the hidden
    /// log-odds except each creative's own part, and learns that part per creative
    /// (a Gaussian prior of the family's quality spread, updated by one Newton step per
    /// impression). With `knows_context` the own part is the quality alone; without, it
    /// knows only the persona response, and the format and tone effects fold into what
    /// it learns per creative (as one factor over every moment). With `thompson` it
    /// draws from the posterior, otherwise it ranks by the posterior mean.
    Reference { thompson: bool, knows_context: bool },
}

/// The strategies, in table order (the reference learners after the oracle).
pub const STRATEGIES: [(&str, Strategy); 11] = [
    ("uniform", Strategy::Uniform),
    ("static rule", Strategy::Static),
    ("engine rules", Strategy::Engine(Policy::Rules)),
    ("engine greedy", Strategy::Engine(Policy::Greedy)),
    ("engine ε-greedy 0.1", Strategy::Engine(Policy::EpsilonGreedy { epsilon: 0.1 })),
    ("engine thompson", Strategy::Engine(Policy::Thompson)),
    ("oracle", Strategy::Oracle),
    (
        "reference, knows all but quality (greedy)",
        Strategy::Reference { thompson: false, knows_context: true },
    ),
    (
        "reference, knows all but quality (thompson)",
        Strategy::Reference { thompson: true, knows_context: true },
    ),
    (
        "reference, knows the persona response only (greedy)",
        Strategy::Reference { thompson: false, knows_context: false },
    ),
    (
        "reference, knows the persona response only (thompson)",
        Strategy::Reference { thompson: true, knows_context: false },
    ),
];
/// Index of the static rule and the oracle in [`STRATEGIES`].
pub const STATIC: usize = 1;
pub const ORACLE: usize = 6;

/// What one strategy earned in one world.
#[derive(Clone, Debug, Default)]
pub struct Tally {
    /// Sum of the hidden rates of what was shown: all requests, and requests of people
    /// with no score ≥ 7.
    pub expected: f64,
    expected_weak: f64,
    /// Sum of the oracle's rate minus the rate of what was shown: all requests, and
    /// requests of people whose top score is shared by two or more personas (the hidden
    /// order between those is not in the profile, so no policy that reads the profile
    /// can learn which of them counts more).
    regret: f64,
    regret_tied: f64,
    /// Distinct creatives shown.
    distinct: usize,
    /// Per window of [`CURVE_WINDOW`] requests: the sum of the hidden rates of what was
    /// shown and of the best rate (`--curve`).
    curve: Vec<(f64, f64)>,
}

/// Requests per point of a learning curve (`--curve`).
const CURVE_WINDOW: usize = 2_000;

/// Plays `strategy` over every impression of `world`.
fn play(
    world: &World,
    catalog: &Arc<Catalog>,
    to_world: &[usize],
    profiles: &[Profile],
    strategy: Strategy,
    salt: u64,
) -> Result<Tally, TrialError> {
    let mut tally = Tally::default();
    let mut shown = HashSet::new();
    let mut rng = Rng::new(world.coin_seed, salt);
    let mut engine = match strategy {
        Strategy::Engine(policy) => {
            let mut config = SelectorConfig::with_policy(policy);
            config.learning.learn_spread = !FIXED_SPREAD.load(Ordering::Relaxed);
            config.learning.explore_reach = EXPLORE_REACH.get().copied().flatten();
            let selector = Selector::new(Arc::clone(catalog), config)?;
            let placement = selector.placement(PLACEMENT)?;
            let selection = selector.new_selection(1);
            Some((selector, placement, selection))
        }
        _ => None,
    };
    // The reference learners' posterior (mean, variance) of each creative's own part,
    // from a prior of the family's quality spread (none in `rank` and `format`: told
    // everything, the reference is the oracle there), or at least 0.25 when the format
    // and tone effects fold into it.
    let prior_sd = match strategy {
        Strategy::Reference { knows_context: false, .. } => world.family.quality_sd().max(0.25),
        _ => world.family.quality_sd().max(1e-4),
    };
    let prior_var = prior_sd * prior_sd;
    let mut own = vec![(0.0f64, prior_var); CREATIVES];
    for (i, imp) in world.impressions.iter().enumerate() {
        let c = match (strategy, engine.as_mut()) {
            (Strategy::Reference { thompson, knows_context }, _) => {
                let known = |c: usize| world.known_logit(imp, c, knows_context);
                let mut best = (0, f64::NEG_INFINITY);
                for (c, &(m, v)) in own.iter().enumerate() {
                    let q = if thompson { m + v.sqrt() * rng.normal() } else { m };
                    let x = known(c) + q;
                    if x > best.1 {
                        best = (c, x);
                    }
                }
                let c = best.0;
                // One Newton step of the logistic likelihood from the prior (m, v).
                let (m, v) = own[c];
                let p = logistic(known(c) + m);
                let y = if world.clicks(i, c) { 1.0 } else { 0.0 };
                let precision = 1.0 / v + p * (1.0 - p);
                own[c] = (m + (y - p) / precision, 1.0 / precision);
                c
            }
            (Strategy::Uniform, _) => rng.below(CREATIVES),
            (Strategy::Static, _) => world.static_pick[imp.person],
            (Strategy::Oracle, _) => {
                (0..CREATIVES).max_by(|&a, &b| world.rate(i, a).total_cmp(&world.rate(i, b))).unwrap_or(0)
            }
            (Strategy::Engine(_), Some((selector, placement, selection))) => {
                let mut person = profiles[imp.person].clone();
                let moment = Context::at(imp.at)
                    .with_device(imp.device)
                    .with_channel(Channel::Web)
                    .with_seed(mix(world.coin_seed ^ salt ^ mix(i as u64)));
                selector.select(&person, &moment, *placement, selection)?;
                let Some(pick) = selection.picks().first() else {
                    return Err(TrialError(format!("impression {i}: the engine picked nothing")));
                };
                let id = pick.creative;
                let c = to_world[id.index()];
                selector.record(&mut person, &Feedback::new(id, FeedbackKind::Impression, &moment))?;
                if world.clicks(i, c) {
                    selector.record(&mut person, &Feedback::new(id, FeedbackKind::Click, &moment))?;
                }
                c
            }
            (Strategy::Engine(_), None) => unreachable!("an engine strategy has a selector"),
        };
        let rate = world.rate(i, c);
        let best = (0..=CREATIVES).map(|x| world.rate(i, x)).fold(0.0, f64::max);
        if i % CURVE_WINDOW == 0 {
            tally.curve.push((0.0, 0.0));
        }
        if let Some(point) = tally.curve.last_mut() {
            point.0 += rate;
            point.1 += best;
        }
        tally.regret += best - rate;
        if world.people[imp.person].tied_top {
            tally.regret_tied += best - rate;
        }
        tally.expected += rate;
        if !world.people[imp.person].strong {
            tally.expected_weak += rate;
        }
        shown.insert(c);
    }
    tally.distinct = shown.len();
    Ok(tally)
}

/// One world played by every strategy.
pub struct Run {
    family: Family,
    seed: u64,
    /// Requests of people with no score ≥ 7.
    weak_requests: usize,
    /// Hidden click rates of every (request, tagged creative) pair: 1st percentile,
    /// median, 99th percentile and maximum.
    rate_quantiles: [f64; 4],
    /// One tally per entry of [`STRATEGIES`].
    pub tallies: Vec<Tally>,
    elapsed: Duration,
}

/// Builds the world of `family` and `seed` and plays every strategy on it.
pub fn run_world(family: Family, seed: u64, impressions: usize) -> Result<Run, TrialError> {
    let started = Instant::now();
    let world = World::build(family, seed, impressions);
    let catalog = Arc::new(Catalog::compile(&world.spec)?);
    // The compiled catalog's creative ids, mapped back to the world's creatives by name.
    let mut to_world = vec![CREATIVES; catalog.len()];
    for (i, spec) in world.spec.creatives.iter().enumerate() {
        to_world[catalog.creative(&spec.id)?.index()] = i;
    }
    let profiles =
        world.people.iter().map(|u| world.profile(&catalog, u)).collect::<Result<Vec<_>, TrialError>>()?;
    let tallies = STRATEGIES
        .iter()
        .enumerate()
        .map(|(salt, &(_, strategy))| play(&world, &catalog, &to_world, &profiles, strategy, salt as u64))
        .collect::<Result<Vec<_>, TrialError>>()?;
    let weak_requests = world.impressions.iter().filter(|imp| !world.people[imp.person].strong).count();
    let mut rates: Vec<f32> =
        world.rates.chunks(CREATIVES + 1).flat_map(|row| row[..CREATIVES].iter().copied()).collect();
    let rate_quantiles = [0.01, 0.5, 0.99, 1.0].map(|q| {
        let at = ((rates.len() - 1) as f64 * q) as usize;
        f64::from(*rates.select_nth_unstable_by(at, f32::total_cmp).1)
    });
    if let Some(dir) = EXPORT.get() {
        export_world(dir, &world, &tallies)?;
    }
    Ok(Run { family, seed, weak_requests, rate_quantiles, tallies, elapsed: started.elapsed() })
}

/// `--export DIR`: where each world is written for a learner outside this program.
static EXPORT: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();

/// Writes `world` to `DIR/trial-<family>-<seed>.jsonl` for a peer learner
/// (`benches/peers/vw_trial.py`): a first line with the catalog and what every strategy
/// here earned (the sums of hidden rates of what it showed, all requests and requests of
/// people with no score ≥ 7), then one line per request in order with what the engine
/// can see (the person's index and non-zero scores, device, daypart and weekend as the
/// engine reads them from the timestamp), the request's click coin (a pick clicks when
/// the coin is below its rate) and the hidden rate of every creative (fallback last).
fn export_world(dir: &std::path::Path, world: &World, tallies: &[Tally]) -> Result<(), TrialError> {
    use std::io::Write as _;
    let io = |e: std::io::Error| TrialError(format!("--export: {e}"));
    let path = dir.join(format!("{}.jsonl", world.spec.version));
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).map_err(io)?);
    let creatives: Vec<serde_json::Value> = world
        .creatives
        .iter()
        .enumerate()
        .map(|(c, creative)| {
            let tags: Vec<serde_json::Value> =
                creative.tags.iter().map(|&(p, w)| serde_json::json!([PERSONA_NAMES[p], w])).collect();
            serde_json::json!({
                "id": world.spec.creatives[c].id,
                "tags": if c < CREATIVES { tags } else { Vec::new() },
                "format": creative.format.name(),
                "tone": TONES[creative.tone],
                "fallback": c == CREATIVES,
            })
        })
        .collect();
    let strategies: serde_json::Map<String, serde_json::Value> = STRATEGIES
        .iter()
        .zip(tallies)
        .map(|(&(name, _), t)| (name.to_owned(), serde_json::json!([t.expected, t.expected_weak])))
        .collect();
    let header = serde_json::json!({
        "family": world.family.name(),
        "world": world.spec.version,
        "personas": PERSONA_NAMES.to_vec(),
        "creatives": creatives,
        "strategies": strategies,
    });
    writeln!(out, "{header}").map_err(io)?;
    for (i, imp) in world.impressions.iter().enumerate() {
        let person = &world.people[imp.person];
        let moment = Context::at(imp.at).with_device(imp.device);
        let scores: Vec<String> = person
            .scores
            .iter()
            .enumerate()
            .filter(|&(_, &s)| s > 0)
            .map(|(p, s)| format!("[{p},{s}]"))
            .collect();
        let rates: Vec<String> =
            (0..=CREATIVES).map(|c| world.rates[i * (CREATIVES + 1) + c].to_string()).collect();
        writeln!(
            out,
            r#"{{"person":{},"strong":{},"scores":[{}],"device":"{}","daypart":"{}","weekend":{},"coin":{},"rates":[{}]}}"#,
            imp.person,
            person.strong,
            scores.join(","),
            imp.device.name(),
            moment.daypart().name(),
            moment.weekday().is_weekend(),
            world.coin(i),
            rates.join(",")
        )
        .map_err(io)?;
    }
    out.flush().map_err(io)
}

// ---------------------------------------------------------------------------------------
// Reporting

/// Mean and minimum of a list of values.
fn mean_min(values: &[f64]) -> (f64, f64) {
    let mean = values.iter().sum::<f64>() / values.len().max(1) as f64;
    (mean, values.iter().copied().fold(f64::INFINITY, f64::min))
}

/// `mean % (min %)` of shares.
fn share_cell(values: &[f64]) -> String {
    let (mean, min) = mean_min(values);
    format!("{:.1} % ({:.1} %)", 100.0 * mean, 100.0 * min)
}

/// `mean× (min×)` of ratios.
fn ratio_cell(values: &[f64]) -> String {
    let (mean, min) = mean_min(values);
    format!("{mean:.2}× ({min:.2}×)")
}

/// Per strategy, the per-seed shares of the oracle and ratios to the static rule
/// (overall and for people with no score ≥ 7).
struct Summary {
    share: Vec<Vec<f64>>,
    ratio: Vec<Vec<f64>>,
    share_weak: Vec<Vec<f64>>,
    ratio_weak: Vec<Vec<f64>>,
}

impl Summary {
    fn of(runs: &[&Run]) -> Summary {
        let per = |f: &dyn Fn(&Run, usize) -> f64| -> Vec<Vec<f64>> {
            (0..STRATEGIES.len()).map(|s| runs.iter().map(|r| f(r, s)).collect()).collect()
        };
        Summary {
            share: per(&|r, s| r.tallies[s].expected / r.tallies[ORACLE].expected),
            ratio: per(&|r, s| r.tallies[s].expected / r.tallies[STATIC].expected),
            share_weak: per(&|r, s| r.tallies[s].expected_weak / r.tallies[ORACLE].expected_weak),
            ratio_weak: per(&|r, s| r.tallies[s].expected_weak / r.tallies[STATIC].expected_weak),
        }
    }
}

/// Prints one family's table and its one-line summary.
fn report_family(family: Family, runs: &[&Run], impressions: usize) -> Summary {
    let summary = Summary::of(runs);
    let seeds: Vec<String> = runs.iter().map(|r| r.seed.to_string()).collect();
    let weak =
        runs.iter().map(|r| r.weak_requests as f64 / impressions as f64).sum::<f64>() / runs.len() as f64;
    let cpu: Duration = runs.iter().map(|r| r.elapsed).sum();
    let quantile =
        |k: usize| 100.0 * runs.iter().map(|r| r.rate_quantiles[k]).sum::<f64>() / runs.len() as f64;
    println!("## {}\n", family.name());
    println!(
        "Seeds {}; {impressions} impressions each; requests by people with no score ≥ 7: {:.1} %; \
         hidden rates of all (request, creative) pairs: 1st percentile {:.2} %, median {:.2} %, \
         99th percentile {:.2} %, max {:.1} %; {:.1} s of one core per seed.\n",
        seeds.join(", "),
        100.0 * weak,
        quantile(0),
        quantile(1),
        quantile(2),
        quantile(3),
        cpu.as_secs_f64() / runs.len() as f64
    );
    println!(
        "| strategy | expected CTR | share of oracle, mean (min) | × static rule, mean (min) | \
         no score ≥ 7: share of oracle | no score ≥ 7: × static rule | distinct creatives shown |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (s, (name, _)) in STRATEGIES.iter().enumerate() {
        let ctr =
            runs.iter().map(|r| r.tallies[s].expected / impressions as f64).sum::<f64>() / runs.len() as f64;
        let distinct = runs.iter().map(|r| r.tallies[s].distinct as f64).sum::<f64>() / runs.len() as f64;
        println!(
            "| {name} | {:.2} % | {} | {} | {} | {} | {distinct:.0} |",
            100.0 * ctr,
            share_cell(&summary.share[s]),
            ratio_cell(&summary.ratio[s]),
            share_cell(&summary.share_weak[s]),
            ratio_cell(&summary.ratio_weak[s]),
        );
    }
    if runs.len() >= 3 {
        // The spread over worlds: a mean hides the runs that got stuck.
        let quantile = |values: &[f64], q: f64| {
            let mut v = values.to_vec();
            v.sort_by(f64::total_cmp);
            v[((v.len() - 1) as f64 * q).round() as usize]
        };
        let cells: Vec<String> = (3..=5)
            .map(|s| {
                let v = &summary.share[s];
                format!(
                    "{} {:.1} / {:.1} / {:.1} %",
                    STRATEGIES[s].0,
                    100.0 * quantile(v, 0.1),
                    100.0 * quantile(v, 0.5),
                    100.0 * quantile(v, 0.9)
                )
            })
            .collect();
        println!(
            "\nShare of the oracle over the {} worlds, p10 / p50 / p90: {}.",
            runs.len(),
            cells.join("; ")
        );
    }
    if CURVE.load(Ordering::Relaxed) {
        println!("\nLearning curves: share of the oracle per {CURVE_WINDOW} requests.\n");
        for run in runs {
            for (s, (name, _)) in
                STRATEGIES.iter().enumerate().filter(|&(s, _)| (3..=5).contains(&s) || s == 7)
            {
                let points: Vec<String> = run.tallies[s]
                    .curve
                    .iter()
                    .map(|(got, best)| format!("{:.0}", 100.0 * got / best))
                    .collect();
                println!("- seed {} {name}: {}", run.seed, points.join(" "));
            }
        }
    }
    let engines = 2..ORACLE;
    let best = engines
        .clone()
        .max_by(|&a, &b| mean_min(&summary.share[a]).0.total_cmp(&mean_min(&summary.share[b]).0));
    if let Some(best) = best {
        let (share, share_min) = mean_min(&summary.share[best]);
        let (ratio, ratio_min) = mean_min(&summary.ratio[best]);
        let (weak_share, _) = mean_min(&summary.share_weak[best]);
        let (weak_ratio, _) = mean_min(&summary.ratio_weak[best]);
        let (static_share, _) = mean_min(&summary.share[STATIC]);
        let (uniform_share, _) = mean_min(&summary.share[0]);
        let (greedy, _) = mean_min(&summary.share[3]);
        let (thompson, _) = mean_min(&summary.share[5]);
        let tied = |s: usize| {
            let (t, all) = runs
                .iter()
                .fold((0.0, 0.0), |(t, a), r| (t + r.tallies[s].regret_tied, a + r.tallies[s].regret));
            100.0 * t / all.max(f64::MIN_POSITIVE)
        };
        println!(
            "\n**{}**: best engine policy {} at {:.1} % of the oracle (min {:.1} %), {:.2}× the static rule \
             (min {:.2}×); people with no score ≥ 7 {:.1} %, {:.2}×; greedy {:.1} %, thompson {:.1} %, \
             static rule {:.1} %, uniform {:.1} %. Of the regret against the oracle, {:.0} % (greedy) \
             and {:.0} % (static rule) is on people whose top score is tied, whose hidden order no \
             policy reading the profile can learn.\n",
            family.name(),
            STRATEGIES[best].0.trim_start_matches("engine "),
            100.0 * share,
            100.0 * share_min,
            ratio,
            ratio_min,
            100.0 * weak_share,
            weak_ratio,
            100.0 * greedy,
            100.0 * thompson,
            100.0 * static_share,
            100.0 * uniform_share,
            tied(3),
            tied(STATIC),
        );
    }
    summary
}

// ---------------------------------------------------------------------------------------
// Command line

/// An error of the trial: the engine's, or the trial's own.
#[derive(Debug)]
pub struct TrialError(String);

impl fmt::Display for TrialError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<persona_engine::Error> for TrialError {
    fn from(error: persona_engine::Error) -> Self {
        TrialError(error.to_string())
    }
}

/// `--curve`: print each world's learning curves (engine greedy, ε-greedy, Thompson and
/// the first reference learner).
static CURVE: AtomicBool = AtomicBool::new(false);

/// `--spread fixed`: engine strategies keep the configured prior spreads
/// (`learning.learn_spread` off), to measure what learning them changes.
static FIXED_SPREAD: AtomicBool = AtomicBool::new(false);

/// `--explore-reach Z`: epsilon-greedy explores among the creatives that could be the
/// best (`learning.explore_reach`), rather than among every eligible one.
static EXPLORE_REACH: std::sync::OnceLock<Option<f64>> = std::sync::OnceLock::new();

/// The command line.
struct Args {
    families: Vec<Family>,
    seeds: u64,
    seed: u64,
    impressions: usize,
    threads: usize,
}

const USAGE: &str =
    "usage: trial [--family rank|format|cross|mixed|all] [--seeds K] [--seed S] [--impressions N] [--threads T] \
     [--spread learned|fixed] [--explore-reach Z|none] [--export DIR] [--curve on|off]";

fn parse_args() -> Result<Args, String> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut args =
        Args { families: Family::ALL.to_vec(), seeds: 5, seed: 1000, impressions: 20_000, threads };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--help" || flag == "-h" {
            return Err(USAGE.to_owned());
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let number =
            |v: &str| v.parse::<u64>().map_err(|_| format!("{flag}: '{v}' is not a number\n{USAGE}"));
        // A count of 0 would run nothing: refused, not taken as 1.
        let count = |v: &str| match number(v)? {
            0 => Err(format!("{flag}: must be at least 1\n{USAGE}")),
            n => Ok(n),
        };
        match flag.as_str() {
            "--family" if value == "all" => args.families = Family::ALL.to_vec(),
            "--family" => {
                args.families = vec![Family::parse(&value)
                    .ok_or_else(|| format!("unknown family '{value}' (rank, format, cross, mixed, all)"))?]
            }
            "--seeds" => args.seeds = count(&value)?,
            "--seed" => args.seed = number(&value)?,
            "--impressions" => args.impressions = count(&value)? as usize,
            "--threads" => args.threads = count(&value)? as usize,
            "--curve" if value == "on" || value == "off" => CURVE.store(value == "on", Ordering::Relaxed),
            "--export" => {
                std::fs::create_dir_all(&value).map_err(|e| format!("--export {value}: {e}"))?;
                EXPORT.set(value.into()).map_err(|_| format!("--export is given twice\n{USAGE}"))?;
            }
            "--explore-reach" => {
                let reach = if value == "none" {
                    None
                } else {
                    Some(
                        value
                            .parse::<f64>()
                            .map_err(|_| format!("{flag}: '{value}' is not a number\n{USAGE}"))?,
                    )
                };
                EXPLORE_REACH.set(reach).map_err(|_| format!("--explore-reach is given twice\n{USAGE}"))?;
            }
            "--spread" if value == "learned" || value == "fixed" => {
                FIXED_SPREAD.store(value == "fixed", Ordering::Relaxed)
            }
            _ => return Err(format!("unknown option {flag}\n{USAGE}")),
        }
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::FAILURE;
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Plays every (family, seed) world on `args.threads` threads and prints the report.
fn run(args: &Args) -> Result<(), TrialError> {
    let started = Instant::now();
    let jobs: Vec<(Family, u64)> = args
        .families
        .iter()
        .flat_map(|&f| (args.seed..args.seed + args.seeds).map(move |s| (f, s)))
        .collect();
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let results: Mutex<Vec<Result<Run, TrialError>>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..args.threads.min(jobs.len()) {
            scope.spawn(|| {
                while !failed.load(Ordering::Relaxed) {
                    let Some(&(family, seed)) = jobs.get(next.fetch_add(1, Ordering::Relaxed)) else { break };
                    let result = run_world(family, seed, args.impressions);
                    if result.is_err() {
                        failed.store(true, Ordering::Relaxed);
                    }
                    results.lock().unwrap_or_else(|e| e.into_inner()).push(result);
                }
            });
        }
    });
    let mut runs =
        results.into_inner().unwrap_or_else(|e| e.into_inner()).into_iter().collect::<Result<Vec<_>, _>>()?;
    runs.sort_by_key(|r| (r.family as u8, r.seed));

    println!(
        "# persona-engine trial: {} personas, {CREATIVES} creatives (+ a fallback), {PEOPLE} people, \
         {} impressions over {DAYS} days, seeds {}..={}\n",
        PERSONAS,
        args.impressions,
        args.seed,
        args.seed + args.seeds - 1
    );
    println!(
        "Expected CTR is the mean hidden click probability of what was shown; shares and ratios are \
         per seed, then averaged (min: the worst seed).\n"
    );
    let mut summaries = Vec::new();
    for &family in &args.families {
        let of_family: Vec<&Run> = runs.iter().filter(|r| r.family == family).collect();
        summaries.push((family, report_family(family, &of_family, args.impressions)));
    }
    if summaries.len() > 1 {
        println!("## all families: share of the oracle, mean over seeds\n");
        let names: Vec<&str> = summaries.iter().map(|(f, _)| f.name()).collect();
        println!("| strategy | {} |", names.join(" | "));
        println!("|---|{}", "---:|".repeat(names.len()));
        for (s, (name, _)) in STRATEGIES.iter().enumerate() {
            let cells: Vec<String> =
                summaries.iter().map(|(_, m)| format!("{:.1} %", 100.0 * mean_min(&m.share[s]).0)).collect();
            println!("| {name} | {} |", cells.join(" | "));
        }
        println!();
    }
    if let Some(reach) = EXPLORE_REACH.get().copied().flatten() {
        println!(
            "Engine ε-greedy explored among the creatives that could be the best (explore_reach {reach}).\n"
        );
    }
    println!(
        "Run time: {:.1} s on {} thread(s) for {} world(s).",
        started.elapsed().as_secs_f64(),
        args.threads.min(jobs.len()),
        jobs.len()
    );
    Ok(())
}
