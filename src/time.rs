//! Time as users have it: a person's UTC offset from an IANA time-zone name
//! (`"Europe/Paris"`, daylight saving included) and RFC 3339 date-times, both through
//! `jiff` with its bundled zone database (no system files, no network). Used when a
//! `Context` or a spec is built, never on the hot path.

use jiff::tz::TimeZone;

use crate::context::MAX_UTC_OFFSET_MINUTES;
use crate::error::{quote, Error, Result};

/// The UTC offset, in whole minutes, of the IANA time zone `zone` at `at` (Unix
/// seconds): `60` for `"Europe/Paris"` in winter, `120` in summer. Moments beyond the
/// years 0001–9999 use the offset at the nearest end of that range.
///
/// # Errors
/// An unknown zone name, naming it and the closest known names, e.g.
/// `context: field 'time_zone': unknown time zone 'Europe/Pari' (did you mean 'Europe/Paris' or
/// 'Europe/Madrid'?)`.
pub fn utc_offset_minutes(zone: &str, at: i64) -> Result<i32> {
    let tz = time_zone(zone)?;
    let (min, max) = (jiff::Timestamp::MIN.as_second(), jiff::Timestamp::MAX.as_second());
    let moment = jiff::Timestamp::from_second(at.clamp(min, max)).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let seconds = tz.to_offset(moment).seconds();
    Ok((seconds / 60).clamp(-MAX_UTC_OFFSET_MINUTES, MAX_UTC_OFFSET_MINUTES))
}

/// The zone named `zone` from the bundled database.
fn time_zone(zone: &str) -> Result<TimeZone> {
    jiff::tz::db().get(zone).map_err(|_| {
        let known: Vec<String> = jiff::tz::db().available().map(|name| name.as_str().to_owned()).collect();
        Error::Invalid {
            what: "context",
            field: "time_zone".to_owned(),
            problem: crate::suggest::unknown("time zone", zone, known.iter().map(String::as_str)),
        }
    })
}

/// Parses an RFC 3339 date-time (`2026-12-01T00:00:00Z`, `2026-11-23T13:30:00.250+01:00`;
/// `t`, `z` and a space are accepted as the standard allows) or a plain date
/// `2026-12-01` (midnight UTC) into Unix seconds; fractions of a second are dropped and
/// a leap second counts as :59.
///
/// # Errors
/// A message naming the text and the expected form.
pub fn parse_rfc3339(text: &str) -> std::result::Result<i64, String> {
    let bad = || format!("'{}' is not a date-time like 2026-12-01T00:00:00Z", quote(text));
    if text.len() == 10 {
        let date: jiff::civil::Date = text.parse().map_err(|_| not_real(text, "date").unwrap_or_else(bad))?;
        let midnight = date.to_zoned(TimeZone::UTC).map_err(|_| beyond(text).unwrap_or_else(bad))?;
        return Ok(midnight.timestamp().as_second());
    }
    // jiff's parser is wider than RFC 3339 (it takes `+0100`, `+01`, a bracketed zone):
    // check the shape first so only RFC 3339 passes.
    if !is_rfc3339_shape(text) {
        return Err(not_real(text, "time").unwrap_or_else(bad));
    }
    let at: jiff::Timestamp =
        text.parse().map_err(|_| not_real(text, "time").or_else(|| beyond(text)).unwrap_or_else(bad))?;
    Ok(at.as_second())
}

/// `YYYY-MM-DD(T|t| )HH:MM:SS[.digits](Z|z|±HH:MM)`, digits only where digits belong.
fn is_rfc3339_shape(text: &str) -> bool {
    let b = text.as_bytes();
    let digits =
        |from: usize, len: usize| b.get(from..from + len).is_some_and(|p| p.iter().all(u8::is_ascii_digit));
    let at = |i: usize, want: &[u8]| b.get(i).is_some_and(|c| want.contains(c));
    if !(digits(0, 4) && at(4, b"-") && digits(5, 2) && at(7, b"-") && digits(8, 2) && at(10, b"Tt "))
        || !(digits(11, 2) && at(13, b":") && digits(14, 2) && at(16, b":") && digits(17, 2))
    {
        return false;
    }
    let mut i = 19;
    if at(i, b".") {
        let n = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return false;
        }
        i += 1 + n;
    }
    match b.get(i) {
        Some(b'Z' | b'z') => b.len() == i + 1,
        Some(b'+' | b'-') => b.len() == i + 6 && digits(i + 1, 2) && at(i + 3, b":") && digits(i + 4, 2),
        _ => false,
    }
}

/// When the text names a moment in the year 9999 past the last one a timestamp holds
/// (`9999-12-31`, read as "for ever"), says so: it is a real date, not a malformed one.
fn beyond(text: &str) -> Option<String> {
    text.starts_with("9999-").then(|| {
        let last =
            jiff::Timestamp::from_second(jiff::Timestamp::MAX.as_second()).unwrap_or(jiff::Timestamp::MAX);
        format!(
            "'{}' is after the latest moment supported, {last} (a schedule with no end runs for ever)",
            quote(text)
        )
    })
}

/// When the text has the right shape but names a day or time that does not exist
/// (`2026-02-30`, `25:00`), says so.
fn not_real(text: &str, what: &str) -> Option<String> {
    let b = text.as_bytes();
    let num = |from: usize| -> Option<u32> { text.get(from..from + 2)?.parse().ok() };
    let shaped = b.len() >= 10 && b[4] == b'-' && b[7] == b'-' && text.get(0..4)?.parse::<u32>().is_ok();
    if !shaped {
        return None;
    }
    let (year, month, day) = (text.get(0..4)?.parse::<i16>().ok()?, num(5)?, num(8)?);
    let real_date = (1..=12).contains(&month) && jiff::civil::Date::new(year, month as i8, day as i8).is_ok();
    if !real_date {
        return Some(format!("'{}' is not a real date", quote(text)));
    }
    if what == "time" && b.len() >= 19 {
        let (hour, minute, second) = (num(11)?, num(14)?, num(17)?);
        if hour > 23 || minute > 59 || second > 60 {
            return Some(format!("'{}' is not a real time of day", quote(text)));
        }
    }
    None
}
