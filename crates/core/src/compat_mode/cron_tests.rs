use super::*;
use crate::time::Timestamp;
use crate::window::Schedule;

fn at(rfc3339: &str) -> Timestamp {
    Timestamp::parse_rfc3339(rfc3339).unwrap()
}

fn schedule(spec: &str, zone: Option<&str>, state: Option<&str>) -> Schedule {
    match translate(Some(spec), zone, state).unwrap() {
        CronWindow::Schedule(s) => {
            Schedule::parse("spotswap:schedule", &s).expect("a valid spotswap:schedule")
        }
        CronWindow::Always => panic!("{spec}: always open"),
    }
}

/// AutoSpotting's own test cases (its schedule_test.go), through the translation.
#[test]
fn autospottings_business_hours_cases_hold_after_translation() {
    let s = schedule("9-18 1-5", None, None);
    assert_eq!(s.as_str(), "Mon-Fri 09:00-18:00 UTC");
    // 2019-05-09 is a Thursday, 2019-05-11 a Saturday.
    for (t, open) in [
        ("2019-05-09T10:00:00Z", true),
        ("2019-05-09T04:00:00Z", false),
        ("2019-05-09T21:00:00Z", false),
        ("2019-05-09T08:59:00Z", false),
        ("2019-05-09T09:01:00Z", true),
        ("2019-05-09T17:59:00Z", true),
        ("2019-05-09T18:01:00Z", false),
        ("2019-05-11T18:00:00Z", false),
    ] {
        assert_eq!(s.is_open(at(t)), open, "{t}");
    }
    // Europe/London in May is UTC+1: 08:01 UTC is 09:01 there.
    let london = schedule("9-18 1-5", Some("Europe/London"), Some("on"));
    assert!(london.is_open(at("2019-05-09T08:01:00Z")));
    let off = schedule("9-18 1-5", Some("UTC"), Some("off"));
    assert!(!off.is_open(at("2019-05-09T10:00:00Z")));
    assert!(off.is_open(at("2019-05-09T20:00:00Z")));
    assert!(off.is_open(at("2019-05-11T12:00:00Z")));
    let off_london = schedule("9-18 1-5", Some("Europe/London"), Some("off"));
    assert!(!off_london.is_open(at("2019-05-09T08:01:00Z")));
}

#[test]
fn the_default_and_an_all_week_schedule_are_no_window() {
    assert_eq!(translate(None, None, None).unwrap(), CronWindow::Always);
    assert_eq!(
        translate(Some("* *"), Some("Europe/Dublin"), Some("on")).unwrap(),
        CronWindow::Always
    );
    assert_eq!(
        translate(Some("0-23 0-6"), Some(""), Some("")).unwrap(),
        CronWindow::Always
    );
}

#[test]
fn a_schedule_autospotting_never_acts_under_is_invalid_config_naming_the_tag() {
    for (spec, state) in [("9 *", "on"), ("* *", "off"), ("0,2,4 *", "on")] {
        let err = translate(Some(spec), None, Some(state)).unwrap_err();
        assert_eq!(err.key(), CRON_SCHEDULE, "{spec} {state}");
        assert!(err.to_string().contains("never acts"), "{err}");
    }
}

#[test]
fn bad_values_name_their_tag_and_value() {
    for spec in [
        "9- 1-5",
        "-18 1-5",
        "25 *",
        "* 7",
        "9-18",
        "9-18 1-5 *",
        "*/0 *",
        "18-9 *",
        "@hourly",
        "x *",
    ] {
        let err = translate(Some(spec), None, None).unwrap_err();
        assert_eq!(err.key(), CRON_SCHEDULE, "{spec}");
        assert!(err.to_string().contains(spec), "{spec}: {err}");
    }
    let err = translate(Some("9-18 1-5"), Some("Mars/Olympus"), None).unwrap_err();
    assert_eq!(err.key(), CRON_TIMEZONE);
    let err = translate(Some("TZ=Mars/Olympus 9-18 1-5"), None, None).unwrap_err();
    assert_eq!(err.key(), CRON_SCHEDULE);
    let err = translate(Some("9-18 1-5"), None, Some("On ")).unwrap_err();
    assert_eq!(err.key(), CRON_STATE);
}

#[test]
fn day_names_steps_lists_and_the_zone_prefix_are_read_as_robfig_reads_them() {
    assert_eq!(
        schedule("8-12,14-18 MON-fri", None, None).as_str(),
        "Mon-Fri 08:00-12:00,14:00-18:00 UTC"
    );
    // `5/4` is 5, 9, 13, 17, 21: no two consecutive hours fire, so it is never inside.
    assert!(translate(Some("5/4 *"), None, None).is_err());
    assert_eq!(
        schedule("TZ=America/New_York 0-23 6,0", Some("UTC"), None).as_str(),
        // Sunday 23:00 is outside: the next hour, Monday 00:00, does not fire.
        "Sat 00:00-24:00 America/New_York; Sun 00:00-23:00 America/New_York"
    );
}

/// AutoSpotting's rule, written as its code computes it: the next firing after `t` is exactly
/// an hour after the next firing after `t - 1h`. Firings are whole hours of the zone's wall
/// clock whose hour and weekday match.
fn autospotting_inside(t: Timestamp, hours: &[u8], dows: &[u8], zone: &str) -> bool {
    let tz = jiff::tz::TimeZoneDatabase::bundled().get(zone).unwrap();
    let next = |after: i64| -> i64 {
        // Every zone's offset is a whole number of quarter hours.
        let mut s = after - after.rem_euclid(900) + 900;
        loop {
            let z = jiff::Timestamp::from_second(s).unwrap().to_zoned(tz.clone());
            let dow = z.weekday().to_sunday_zero_offset() as u8;
            if z.minute() == 0 && hours.contains(&(z.hour() as u8)) && dows.contains(&dow) {
                return s;
            }
            s += 900;
        }
    };
    next(t.unix()) == next(t.unix() - 3600) + 3600
}

#[test]
fn the_translation_agrees_with_autospottings_rule_at_every_minute_of_a_week() {
    let cases: [(&str, &[u8], &[u8], &str); 5] = [
        (
            "9-18 1-5",
            &[9, 10, 11, 12, 13, 14, 15, 16, 17, 18],
            &[1, 2, 3, 4, 5],
            "UTC",
        ),
        ("22-23,0-2 0,6", &[22, 23, 0, 1, 2], &[0, 6], "UTC"),
        (
            "*/2 *",
            &[0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22],
            &[0, 1, 2, 3, 4, 5, 6],
            "UTC",
        ),
        (
            "* 5",
            &[
                0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23,
            ],
            &[5],
            "Asia/Kolkata",
        ),
        (
            "7-19 mon-sat",
            &[7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19],
            &[1, 2, 3, 4, 5, 6],
            "Europe/Dublin",
        ),
    ];
    // A week without a daylight-saving change in any of the zones.
    let start = at("2026-06-01T00:00:00Z").unix();
    for (spec, hours, dows, zone) in cases {
        for state in ["on", "off"] {
            let open: Box<dyn Fn(Timestamp) -> bool> = match translate(Some(spec), Some(zone), Some(state)) {
                Ok(CronWindow::Schedule(text)) => {
                    let s = Schedule::parse("spotswap:schedule", &text).unwrap();
                    Box::new(move |t| s.is_open(t))
                }
                Ok(CronWindow::Always) => Box::new(|_| true),
                // Refused: AutoSpotting never acts, so every minute must be outside.
                Err(_) => Box::new(|_| false),
            };
            for minute in (0..7 * 24 * 60).step_by(7) {
                let t = Timestamp::from_unix(start + minute * 60);
                let want = autospotting_inside(t, hours, dows, zone) == (state == "on");
                assert_eq!(open(t), want, "{spec} {zone} {state} at {t}");
            }
        }
    }
}
