//! `pe_context`: the moment of a request as a plain C struct the caller fills (on the
//! stack, per request), and its checked conversion into a `Context`. Enums come in as
//! `u32` and are converted fallibly; the conversion never allocates (attributes stay
//! within the context's inline capacity).

use std::ffi::c_char;

use super::boundary::{arg_str, opt_str, Failure};
use super::status::pe_status;
use crate::context::{Channel, Context, Device, Weather, INLINE_ATTRIBUTES, MAX_UTC_OFFSET_MINUTES};

/// The most attributes a `pe_context` may carry: enough for real requests, and few
/// enough that `pe_select` never allocates for them. More gives
/// `PE_STATUS_INVALID_ARGUMENT`.
pub const PE_CONTEXT_MAX_ATTRIBUTES: usize = 8;

const _: () = assert!(PE_CONTEXT_MAX_ATTRIBUTES == INLINE_ATTRIBUTES);

/// The kind of device a request comes from (values for `pe_context.device`).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum pe_device {
    /// Not known.
    Unknown = 0,
    /// A desktop or laptop browser.
    Desktop = 1,
    /// A phone.
    Mobile = 2,
    /// A tablet.
    Tablet = 3,
    /// A connected TV.
    Tv = 4,
}

/// Where the creative will be seen (values for `pe_context.channel`).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum pe_channel {
    /// Not known.
    Unknown = 0,
    /// A website.
    Web = 1,
    /// A native app.
    App = 2,
    /// An email.
    Email = 3,
    /// A push notification.
    Push = 4,
    /// A screen in a store or kiosk.
    InStore = 5,
}

/// The weather where the person is (values for `pe_context.weather`).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum pe_weather {
    /// Not known.
    Unknown = 0,
    /// Clear sky.
    Clear = 1,
    /// Clouds.
    Cloudy = 2,
    /// Rain.
    Rain = 3,
    /// Snow.
    Snow = 4,
    /// Unusually hot.
    Hot = 5,
    /// Unusually cold.
    Cold = 6,
}

/// One free key/value attribute of a request (`"loyalty_tier"` = `"gold"`), matched by
/// catalog targeting rules. Both strings are UTF-8, given as pointer and length (no NUL
/// needed), and only read during the call they are passed to.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct pe_attribute {
    /// The key's bytes. Must not be NULL.
    pub key: *const c_char,
    /// The key's length in bytes.
    pub key_len: usize,
    /// The value's bytes. Must not be NULL.
    pub value: *const c_char,
    /// The value's length in bytes.
    pub value_len: usize,
}

/// The moment of one request, filled by the caller for each `pe_select` (a plain struct:
/// put it on the stack; nothing to create or free). Start from `PE_CONTEXT_INIT`
/// (`pe_context ctx = PE_CONTEXT_INIT;`, warning-free in C and C++): everything unknown
/// at the Unix epoch, so set `at` at least.
///
/// The strings it points to are only read during the call; the struct itself is never
/// changed by the library.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct pe_context {
    /// When the request happens, Unix seconds (UTC). Daypart and weekday come from this
    /// and `utc_offset_minutes`.
    pub at: i64,
    /// The person's UTC offset in minutes (60 for CET, -300 for New York in winter),
    /// within -1080..=1080 (18 hours either way).
    pub utc_offset_minutes: i32,
    /// A `pe_device` value.
    pub device: u32,
    /// A `pe_channel` value.
    pub channel: u32,
    /// A `pe_weather` value.
    pub weather: u32,
    /// Seed for this call's randomness: the same inputs and a non-zero seed give the same
    /// picks. 0 (as a zero-initialized struct has it) draws fresh randomness on every
    /// call, so exploration really explores and logged propensities are true.
    pub seed: u64,
    /// The region code (`"FR"`, `"US-CA"`) as UTF-8 bytes, matched whatever its ASCII
    /// case; `region_len` 0 means no region (then `region` may be NULL).
    pub region: *const c_char,
    /// The region code's length in bytes.
    pub region_len: usize,
    /// An array of `attribute_count` attributes, each key at most once; may be NULL when
    /// `attribute_count` is 0.
    pub attributes: *const pe_attribute,
    /// How many attributes, at most `PE_CONTEXT_MAX_ATTRIBUTES`.
    pub attribute_count: usize,
}

/// Converts a C enum value; the error names the field and the values that exist.
fn value<T: Copy>(all: &[T], value: u32, field: &str, c_type: &str) -> Result<T, Failure> {
    usize::try_from(value).ok().and_then(|i| all.get(i)).copied().ok_or_else(|| {
        Failure::invalid(format!(
            "context.{field}: {value} is not a {c_type} value (0..={})",
            all.len().saturating_sub(1)
        ))
    })
}

/// Reads and checks a `pe_context` into a `Context`. Never allocates on success.
///
/// # Safety
/// `ptr` is NULL or points to a readable `pe_context` whose `region` and `attributes`
/// (and the attributes' strings) are readable for their lengths during the call.
pub(crate) unsafe fn read(ptr: *const pe_context) -> Result<Context, Failure> {
    // SAFETY: not NULL (checked by `as_ref`); every bit pattern is a valid `pe_context`
    // (integers and raw pointers only), so reading C's memory as one is sound.
    let c = unsafe { ptr.as_ref() }.ok_or_else(|| Failure::null("context"))?;
    if !(-MAX_UTC_OFFSET_MINUTES..=MAX_UTC_OFFSET_MINUTES).contains(&c.utc_offset_minutes) {
        return Err(Failure::invalid(format!(
            "context.utc_offset_minutes: {} is beyond ±{MAX_UTC_OFFSET_MINUTES} minutes (±18 h)",
            c.utc_offset_minutes
        )));
    }
    let mut context = Context::at(c.at)
        .with_utc_offset(c.utc_offset_minutes)
        .with_device(value(Device::ALL, c.device, "device", "pe_device")?)
        .with_channel(value(Channel::ALL, c.channel, "channel", "pe_channel")?)
        .with_weather(value(Weather::ALL, c.weather, "weather", "pe_weather")?);
    if c.seed != 0 {
        context = context.with_seed(c.seed);
    }
    // SAFETY: forwarded from the caller: `region` is readable for `region_len` bytes.
    if let Some(region) = unsafe { opt_str(c.region, c.region_len, "context.region") }? {
        context = context.with_region(region);
    }
    if c.attribute_count > PE_CONTEXT_MAX_ATTRIBUTES {
        return Err(Failure::invalid(format!(
            "context.attribute_count: {} attributes (at most {PE_CONTEXT_MAX_ATTRIBUTES})",
            c.attribute_count
        )));
    }
    if c.attribute_count > 0 {
        if c.attributes.is_null() {
            return Err(Failure::null("context.attributes"));
        }
        // SAFETY: not NULL, and the caller guarantees `attribute_count` (at most 8)
        // readable `pe_attribute`s, any bit pattern of which is valid.
        let attributes = unsafe { std::slice::from_raw_parts(c.attributes, c.attribute_count) };
        // A key given twice in one array is a caller's mistake, not a later value
        // replacing an earlier one: refused, so that neither value is dropped unseen.
        let mut keys: [&str; PE_CONTEXT_MAX_ATTRIBUTES] = [""; PE_CONTEXT_MAX_ATTRIBUTES];
        for (i, a) in attributes.iter().enumerate() {
            // SAFETY: forwarded from the caller: each string is readable for its length.
            let (key, value) = unsafe {
                (
                    arg_str(a.key, a.key_len, "context.attributes[].key")?,
                    arg_str(a.value, a.value_len, "context.attributes[].value")?,
                )
            };
            // No catalog rule can name an empty key (refused there), so an attribute
            // with one could never count: refused here too.
            if key.is_empty() || value.is_empty() {
                let which = if key.is_empty() { "key" } else { "value" };
                return Err(Failure::invalid(format!(
                    "context.attributes[{i}].{which}: is empty (no catalog rule can match it)"
                )));
            }
            if let Some(j) = keys[..i].iter().position(|k| *k == key) {
                return Err(Failure::invalid(format!(
                    "context.attributes[{i}].key: '{}' is given twice (also attributes[{j}])",
                    crate::error::quote(key)
                )));
            }
            keys[i] = key;
            context.set_attribute(key, value);
        }
    }
    Ok(context)
}

/// Sets `moment->utc_offset_minutes` to the offset the IANA time zone `zone`
/// (`zone_len` bytes of UTF-8, e.g. `"Europe/Paris"`) has at `moment->at`, daylight
/// saving included, so dayparts and weekdays are the person's local ones. Set `at`
/// first; the zone is resolved here, once, from the zone database built into the
/// library (no system files), so `pe_select` only reads the offset. Call it again if
/// `at` changes. Thread-safe; touches only `*moment`, and only on success.
///
/// Errors: `PE_STATUS_NULL_PARAMETER`, `PE_STATUS_INVALID_UTF8`,
/// `PE_STATUS_INVALID_ARGUMENT` (an unknown zone: the message names the closest known
/// ones, e.g. `context: field 'time_zone': unknown time zone 'Europe/Pari' (did you mean
/// 'Europe/Paris' or 'Europe/Madrid'?)`).
#[no_mangle]
pub unsafe extern "C" fn pe_context_set_time_zone(
    moment: *mut pe_context,
    zone: *const c_char,
    zone_len: usize,
) -> pe_status {
    ffi_boundary!({
        // SAFETY: `moment` is NULL or a readable and writable `pe_context` not used
        // elsewhere during the call (any bit pattern is a valid one); `zone` is NULL or
        // readable for `zone_len` bytes.
        let (moment, zone) = unsafe {
            (moment.as_mut().ok_or_else(|| Failure::null("moment"))?, arg_str(zone, zone_len, "zone")?)
        };
        let offset =
            crate::time::utc_offset_minutes(zone, moment.at).map_err(|e| Failure::invalid(e.to_string()))?;
        moment.utc_offset_minutes = offset;
        Ok(())
    })
}

/// Each C enum mirrors its Rust enum value for value; an exhaustive match makes a new
/// Rust variant fail to compile until the C enum has it too.
const fn device_to_c(d: Device) -> pe_device {
    match d {
        Device::Unknown => pe_device::Unknown,
        Device::Desktop => pe_device::Desktop,
        Device::Mobile => pe_device::Mobile,
        Device::Tablet => pe_device::Tablet,
        Device::Tv => pe_device::Tv,
    }
}

const fn channel_to_c(c: Channel) -> pe_channel {
    match c {
        Channel::Unknown => pe_channel::Unknown,
        Channel::Web => pe_channel::Web,
        Channel::App => pe_channel::App,
        Channel::Email => pe_channel::Email,
        Channel::Push => pe_channel::Push,
        Channel::InStore => pe_channel::InStore,
    }
}

const fn weather_to_c(w: Weather) -> pe_weather {
    match w {
        Weather::Unknown => pe_weather::Unknown,
        Weather::Clear => pe_weather::Clear,
        Weather::Cloudy => pe_weather::Cloudy,
        Weather::Rain => pe_weather::Rain,
        Weather::Snow => pe_weather::Snow,
        Weather::Hot => pe_weather::Hot,
        Weather::Cold => pe_weather::Cold,
    }
}

// `ALL[i]` is the Rust value `i` (the converters above rely on it) and its C twin.
const _: () = {
    let mut i = 0;
    while i < Device::ALL.len() {
        assert!(Device::ALL[i] as usize == i && device_to_c(Device::ALL[i]) as usize == i);
        i += 1;
    }
    let mut i = 0;
    while i < Channel::ALL.len() {
        assert!(Channel::ALL[i] as usize == i && channel_to_c(Channel::ALL[i]) as usize == i);
        i += 1;
    }
    let mut i = 0;
    while i < Weather::ALL.len() {
        assert!(Weather::ALL[i] as usize == i && weather_to_c(Weather::ALL[i]) as usize == i);
        i += 1;
    }
};
