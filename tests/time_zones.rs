//! Time as users have it: a person's local daypart and weekday from an IANA time-zone
//! name, daylight saving included, resolved when the context is built; RFC 3339 times
//! in specs parsed by a date-time library.

use persona_engine::{sample, Context, Daypart, Selector, SelectorConfig, Weekday};

/// 2026-03-29 01:00 UTC: Paris moves from UTC+1 to UTC+2.
const PARIS_SPRING_FORWARD: i64 = 1_774_746_000;

#[test]
fn a_time_zone_gives_the_offset_of_that_moment_daylight_saving_included() {
    let before = Context::at(PARIS_SPRING_FORWARD - 1).with_time_zone("Europe/Paris").expect("known zone");
    let after = Context::at(PARIS_SPRING_FORWARD).with_time_zone("Europe/Paris").expect("known zone");
    assert_eq!(before.utc_offset_minutes, 60);
    assert_eq!(after.utc_offset_minutes, 120);
    assert_eq!((before.hour(), after.hour()), (1, 3), "01:59:59 CET, then 03:00 CEST");
    let summer = Context::at(1_784_000_000).with_time_zone("America/New_York").expect("known zone");
    assert_eq!(summer.utc_offset_minutes, -240);
    let winter = Context::at(sample::NOW).with_time_zone("America/New_York").expect("known zone");
    assert_eq!(winter.utc_offset_minutes, -300);
    assert_eq!(
        Context::at(sample::NOW).with_time_zone("Asia/Kolkata").expect("zone").utc_offset_minutes,
        330
    );
    assert_eq!(Context::at(sample::NOW).with_time_zone("UTC").expect("zone").utc_offset_minutes, 0);
}

#[test]
fn dayparts_and_weekdays_follow_the_persons_zone() {
    // The sample moment: Monday 2026-11-23 20:00 UTC.
    let paris = Context::at(sample::NOW).with_time_zone("Europe/Paris").expect("zone");
    assert_eq!((paris.weekday(), paris.daypart()), (Weekday::Monday, Daypart::Evening), "21:00 in Paris");
    let auckland = Context::at(sample::NOW).with_time_zone("Pacific/Auckland").expect("zone");
    assert_eq!(
        (auckland.weekday(), auckland.daypart()),
        (Weekday::Tuesday, Daypart::Morning),
        "09:00 Tuesday"
    );
    let honolulu = Context::at(sample::NOW).with_time_zone("Pacific/Honolulu").expect("zone");
    assert_eq!((honolulu.weekday(), honolulu.daypart()), (Weekday::Monday, Daypart::Morning), "10:00");
}

#[test]
fn an_unknown_zone_is_an_error_that_suggests_the_closest_names() {
    let err = Context::at(sample::NOW).with_time_zone("Europe/Pari").unwrap_err();
    assert_eq!(
        err.to_string(),
        "context: field 'time_zone': unknown time zone 'Europe/Pari' (did you mean 'Europe/Paris' or 'Europe/Madrid'?)"
    );
    let err = Context::at(sample::NOW).with_time_zone("").unwrap_err();
    assert!(err.to_string().starts_with("context: field 'time_zone': unknown time zone ''"), "{err}");
}

#[test]
fn extreme_moments_still_get_an_offset() {
    for at in [i64::MIN, i64::MAX, -62_135_596_800 - 1] {
        let ctx = Context::at(at).with_time_zone("Europe/Paris").expect("zone");
        assert!(ctx.utc_offset_minutes.abs() <= 18 * 60);
        assert!(ctx.hour() < 24);
    }
}

#[test]
fn selecting_with_a_zone_resolved_context_uses_the_local_daypart() {
    let selector =
        Selector::new(sample::catalog().expect("sample"), SelectorConfig::default()).expect("selector");
    let hero = selector.placement("home_hero").expect("placement");
    let person = selector.new_profile(sample::NOW - 86_400);
    let mut picks = selector.new_selection(3);
    let moment = Context::at(sample::NOW).with_time_zone("Asia/Tokyo").expect("zone");
    assert_eq!(moment.daypart(), Daypart::Morning, "05:00 Tuesday in Tokyo");
    selector.select(&person, &moment, hero, &mut picks).expect("select");
    let utc = Context::at(sample::NOW).with_utc_offset(9 * 60);
    let mut same = selector.new_selection(3);
    selector.select(&person, &utc, hero, &mut same).expect("select");
    let ids = |s: &persona_engine::Selection| s.picks().iter().map(|p| p.creative).collect::<Vec<_>>();
    assert_eq!(ids(&picks), ids(&same), "a zone is exactly its offset at that moment");
}

#[test]
fn spec_times_parse_as_rfc3339() {
    use persona_engine::catalog::parse_rfc3339;
    assert_eq!(parse_rfc3339("2026-11-23T13:30:00.250+01:00"), Ok(1_795_437_000));
    assert_eq!(parse_rfc3339("2019-11-24 00:00:17.315193+00:00"), Ok(1_574_553_617));
    assert_eq!(parse_rfc3339("2016-12-31T23:59:60Z"), Ok(1_483_228_799), "a leap second counts as :59");
    assert_eq!(parse_rfc3339("2026-02-30").unwrap_err(), "'2026-02-30' is not a real date");
    assert_eq!(
        parse_rfc3339("2026-11-23T25:00:00Z").unwrap_err(),
        "'2026-11-23T25:00:00Z' is not a real time of day"
    );
    for bad in ["2026-11-23T12:00:00+0100", "2026-11-23T12:00:00+01", "2026-11-23T12:00:00Z[Europe/Paris]"] {
        assert_eq!(
            parse_rfc3339(bad).unwrap_err(),
            format!("'{bad}' is not a date-time like 2026-12-01T00:00:00Z"),
            "only RFC 3339 offsets"
        );
    }
}

#[path = "common/capi.rs"]
mod capi;

/// The same from C: `pe_context_set_time_zone` fills the offset of `at` in the zone,
/// and refuses an unknown zone with a status and a message, changing nothing.
#[test]
fn the_c_abi_sets_a_contexts_offset_from_a_zone() {
    use persona_engine::ffi::{pe_context_set_time_zone, pe_status};
    use std::ptr::null_mut;

    let zone = capi::c("Europe/Paris");
    let mut moment: persona_engine::ffi::pe_context = unsafe { std::mem::zeroed() };
    moment.at = PARIS_SPRING_FORWARD;
    capi::ok(unsafe { pe_context_set_time_zone(&mut moment, zone.0, zone.1) });
    assert_eq!(moment.utc_offset_minutes, 120);
    moment.at = sample::NOW;
    capi::ok(unsafe { pe_context_set_time_zone(&mut moment, zone.0, zone.1) });
    assert_eq!(moment.utc_offset_minutes, 60);

    let typo = capi::c("Europe/Pari");
    let status = unsafe { pe_context_set_time_zone(&mut moment, typo.0, typo.1) };
    assert_eq!(status, pe_status::InvalidArgument);
    assert!(capi::last_error().contains("unknown time zone 'Europe/Pari' (did you mean 'Europe/Paris'"));
    assert_eq!(moment.utc_offset_minutes, 60, "nothing changes on error");

    assert_eq!(unsafe { pe_context_set_time_zone(null_mut(), zone.0, zone.1) }, pe_status::NullParameter);
    assert_eq!(
        unsafe { pe_context_set_time_zone(&mut moment, std::ptr::null(), 3) },
        pe_status::NullParameter
    );
    let invalid = [0xffu8, 0xfe];
    let status = unsafe { pe_context_set_time_zone(&mut moment, invalid.as_ptr().cast(), invalid.len()) };
    assert_eq!(status, pe_status::InvalidUtf8);
}
