//! The moment of a request: time (giving daypart and weekday), device, channel,
//! region, weather, free key/value attributes, and the per-call random seed.
//! Building a context never allocates (up to [`INLINE_ATTRIBUTES`] attributes), so a
//! service can build one per request.

use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use crate::symbol::Symbol;

macro_rules! context_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $value:literal => $text:literal,)+ }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        #[repr(u8)]
        pub enum $name {
            $($(#[$vdoc])* $variant = $value,)+
        }

        impl $name {
            /// Every value, in order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The name used in JSON specs.
            pub fn name(self) -> &'static str {
                match self { $($name::$variant => $text,)+ }
            }

            /// Parses a JSON name; `None` for anything else.
            pub fn parse(text: &str) -> Option<$name> {
                match text { $($text => Some($name::$variant),)+ _ => None }
            }

            /// This value's bit in a set of values.
            #[inline]
            pub const fn bit(self) -> u32 {
                1 << (self as u8)
            }
        }
    };
}

context_enum! {
    /// The kind of device the request comes from.
    Device {
        /// Not known.
        #[default]
        Unknown = 0 => "unknown",
        /// A desktop or laptop browser.
        Desktop = 1 => "desktop",
        /// A phone.
        Mobile = 2 => "mobile",
        /// A tablet.
        Tablet = 3 => "tablet",
        /// A connected TV.
        Tv = 4 => "tv",
    }
}

context_enum! {
    /// Where the creative will be seen.
    Channel {
        /// Not known.
        #[default]
        Unknown = 0 => "unknown",
        /// A website.
        Web = 1 => "web",
        /// A native app.
        App = 2 => "app",
        /// An email.
        Email = 3 => "email",
        /// A push notification.
        Push = 4 => "push",
        /// A screen in a store or kiosk.
        InStore = 5 => "in_store",
    }
}

context_enum! {
    /// The weather where the person is.
    Weather {
        /// Not known.
        #[default]
        Unknown = 0 => "unknown",
        /// Clear sky.
        Clear = 1 => "clear",
        /// Clouds.
        Cloudy = 2 => "cloudy",
        /// Rain.
        Rain = 3 => "rain",
        /// Snow.
        Snow = 4 => "snow",
        /// Unusually hot.
        Hot = 5 => "hot",
        /// Unusually cold.
        Cold = 6 => "cold",
    }
}

context_enum! {
    /// Part of the local day.
    Daypart {
        /// 22:00–04:59.
        #[default]
        Night = 0 => "night",
        /// 05:00–10:59.
        Morning = 1 => "morning",
        /// 11:00–13:59 (lunch).
        Midday = 2 => "midday",
        /// 14:00–16:59.
        Afternoon = 3 => "afternoon",
        /// 17:00–21:59.
        Evening = 4 => "evening",
    }
}

context_enum! {
    /// Local day of the week.
    Weekday {
        /// Monday.
        #[default]
        Monday = 0 => "monday",
        /// Tuesday.
        Tuesday = 1 => "tuesday",
        /// Wednesday.
        Wednesday = 2 => "wednesday",
        /// Thursday.
        Thursday = 3 => "thursday",
        /// Friday.
        Friday = 4 => "friday",
        /// Saturday.
        Saturday = 5 => "saturday",
        /// Sunday.
        Sunday = 6 => "sunday",
    }
}

impl Daypart {
    /// The daypart of a local hour `0..24`.
    pub fn of_hour(hour: u32) -> Daypart {
        match hour {
            5..=10 => Daypart::Morning,
            11..=13 => Daypart::Midday,
            14..=16 => Daypart::Afternoon,
            17..=21 => Daypart::Evening,
            _ => Daypart::Night,
        }
    }
}

impl Weekday {
    /// Saturday and Sunday: the learned model tells the weekend from weekdays (see
    /// docs/learning.md).
    pub fn is_weekend(self) -> bool {
        matches!(self, Weekday::Saturday | Weekday::Sunday)
    }
}

/// Attributes held inline in a [`Context`] before it spills to the heap.
pub const INLINE_ATTRIBUTES: usize = 8;

/// The most a UTC offset may be, in minutes (±18 hours, as in RFC 3339 practice).
pub const MAX_UTC_OFFSET_MINUTES: i32 = 18 * 60;

/// The moment of one request. Cheap to build: plain values and hashed strings.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Context {
    /// When the request happens, Unix seconds (UTC).
    pub at: i64,
    /// The person's UTC offset in minutes (e.g. 60 for CET), clamped to ±18 h.
    pub utc_offset_minutes: i32,
    /// The device.
    pub device: Device,
    /// The channel.
    pub channel: Channel,
    /// The region code (e.g. `"FR"`, `"US-CA"`), as a key: [`Symbol::region`] of the
    /// code, as [`Context::with_region`] sets it.
    pub region: Option<Symbol>,
    /// The weather.
    pub weather: Weather,
    /// Free key/value attributes (`"loyalty_tier" = "gold"`), as keys.
    pub attributes: SmallVec<[(Symbol, Symbol); INLINE_ATTRIBUTES]>,
    /// Seed for this call's randomness: the same inputs and seed give the same picks.
    /// `None` (the default) draws fresh randomness for every call, so exploration really
    /// explores and logged propensities are the true probabilities of the picks.
    pub seed: Option<u64>,
}

impl Context {
    /// A context at `at` (Unix seconds, UTC) with everything else unknown.
    pub fn at(at: i64) -> Self {
        Context { at, ..Context::default() }
    }

    /// Sets the UTC offset in minutes (clamped to ±18 h).
    pub fn with_utc_offset(mut self, minutes: i32) -> Self {
        self.utc_offset_minutes = minutes.clamp(-MAX_UTC_OFFSET_MINUTES, MAX_UTC_OFFSET_MINUTES);
        self
    }

    /// Sets the UTC offset to the one the IANA time zone `zone` (`"Europe/Paris"`,
    /// `"America/New_York"`) has at this context's moment, daylight saving included, so
    /// dayparts and weekdays are the person's. Set `at` first (`Context::at(t)`): the
    /// zone is resolved here, once, and `select` only reads the offset.
    ///
    /// # Errors
    /// An unknown zone, naming it and the closest known names.
    pub fn with_time_zone(mut self, zone: &str) -> crate::error::Result<Self> {
        self.utc_offset_minutes = crate::time::utc_offset_minutes(zone, self.at)?;
        Ok(self)
    }

    /// Sets the device.
    pub fn with_device(mut self, device: Device) -> Self {
        self.device = device;
        self
    }

    /// Sets the channel.
    pub fn with_channel(mut self, channel: Channel) -> Self {
        self.channel = channel;
        self
    }

    /// Sets the region code. Matched against the catalog's `region` rules whatever its
    /// ASCII case (`"fr"` is `"FR"`; see [`Symbol::region`]).
    pub fn with_region(mut self, region: &str) -> Self {
        self.region = Some(Symbol::region(region));
        self
    }

    /// Sets the weather.
    pub fn with_weather(mut self, weather: Weather) -> Self {
        self.weather = weather;
        self
    }

    /// Adds (or replaces) a free attribute.
    pub fn with_attribute(mut self, key: &str, value: &str) -> Self {
        self.set_attribute(key, value);
        self
    }

    /// Adds (or replaces) a free attribute in place.
    pub fn set_attribute(&mut self, key: &str, value: &str) {
        let (k, v) = (Symbol::of(key), Symbol::of(value));
        match self.attributes.iter_mut().find(|(have, _)| *have == k) {
            Some(slot) => slot.1 = v,
            None => self.attributes.push((k, v)),
        }
    }

    /// Sets the seed for this call's randomness, making its picks replayable (any value,
    /// 0 included). Without a seed every call draws fresh randomness.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// The value of attribute `key`, if set.
    #[inline]
    pub fn attribute(&self, key: Symbol) -> Option<Symbol> {
        self.attributes.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }

    /// Local time in seconds since the epoch (UTC time shifted by the offset).
    fn local(&self) -> i64 {
        let offset =
            i64::from(self.utc_offset_minutes.clamp(-MAX_UTC_OFFSET_MINUTES, MAX_UTC_OFFSET_MINUTES));
        self.at.saturating_add(offset * 60)
    }

    /// The local hour, `0..24`.
    pub fn hour(&self) -> u32 {
        (self.local().rem_euclid(86_400) / 3_600) as u32
    }

    /// The local daypart.
    pub fn daypart(&self) -> Daypart {
        Daypart::of_hour(self.hour())
    }

    /// The local weekday.
    pub fn weekday(&self) -> Weekday {
        // 1970-01-01 was a Thursday (index 3 with Monday = 0).
        let days = self.local().div_euclid(86_400);
        let index = (days + 3).rem_euclid(7) as usize;
        Weekday::ALL.get(index).copied().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daypart_and_weekday_follow_the_local_clock() {
        // 2026-11-23 12:30 UTC is a Monday.
        let noon_utc = 1_795_437_000;
        let ctx = Context::at(noon_utc);
        assert_eq!(ctx.weekday(), Weekday::Monday);
        assert_eq!(ctx.hour(), 12);
        assert_eq!(ctx.daypart(), Daypart::Midday);
        // Same instant in New York (UTC-5): 07:30 Monday morning.
        let ny = ctx.clone().with_utc_offset(-300);
        assert_eq!((ny.hour(), ny.daypart(), ny.weekday()), (7, Daypart::Morning, Weekday::Monday));
        // In Auckland (UTC+13): 01:30 on Tuesday, night.
        let akl = ctx.with_utc_offset(13 * 60);
        assert_eq!((akl.hour(), akl.daypart(), akl.weekday()), (1, Daypart::Night, Weekday::Tuesday));
    }

    #[test]
    fn times_before_1970_still_give_a_weekday() {
        // 1969-12-31 was a Wednesday.
        assert_eq!(Context::at(-1).weekday(), Weekday::Wednesday);
        assert!(Context::at(i64::MIN).with_utc_offset(-600).hour() < 24);
    }

    #[test]
    fn attributes_replace_by_key() {
        let ctx = Context::at(0).with_attribute("tier", "gold").with_attribute("tier", "silver");
        assert_eq!(ctx.attributes.len(), 1);
        assert_eq!(ctx.attribute(Symbol::of("tier")), Some(Symbol::of("silver")));
    }
}
