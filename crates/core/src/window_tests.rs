use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;

fn at(s: &str) -> Timestamp {
    Timestamp::parse_rfc3339(s).unwrap()
}

fn schedule(s: &str) -> Schedule {
    Schedule::parse(tags::SCHEDULE, s).unwrap()
}

#[test]
fn a_dublin_working_day_follows_summer_time() {
    let s = schedule("Mon-Fri 08:00-18:00 Europe/Dublin");
    // GIVEN Wednesday 1 July 2026, Irish summer time (UTC+1): 07:30 UTC is 08:30 in Dublin
    assert!(s.is_open(at("2026-07-01T07:30:00Z")));
    assert!(!s.is_open(at("2026-07-01T06:59:00Z")));
    assert!(!s.is_open(at("2026-07-01T17:00:00Z")), "18:00 Dublin closes");
    // AND Wednesday 7 January 2026, winter (UTC+0): 07:30 UTC is 07:30 in Dublin
    assert!(!s.is_open(at("2026-01-07T07:30:00Z")));
    assert_eq!(
        s.next_opening(at("2026-01-07T07:30:00Z")),
        Some(at("2026-01-07T08:00:00Z"))
    );
    assert_eq!(
        s.next_opening(at("2026-07-01T06:00:00Z")),
        Some(at("2026-07-01T07:00:00Z"))
    );
}

#[test]
fn friday_evening_opens_again_on_monday_morning() {
    let s = schedule("Mon-Fri 08:00-18:00 UTC");
    // GIVEN Friday 4 December 2026 at 18:00
    let now = at("2026-12-04T18:00:00Z");
    assert!(!s.is_open(now));
    // THEN the next opening is Monday 7 December at 08:00
    assert_eq!(s.next_opening(now), Some(at("2026-12-07T08:00:00Z")));
    // AND an open window's next opening is now
    let open = at("2026-12-07T09:00:00Z");
    assert_eq!(s.next_opening(open), Some(open));
}

#[test]
fn a_night_window_belongs_to_the_day_it_starts() {
    let s = schedule("Mon-Fri 22:00-06:00 UTC");
    // 2026-12-05 is a Saturday: 03:00 is still Friday night
    assert!(s.is_open(at("2026-12-05T03:00:00Z")));
    assert!(!s.is_open(at("2026-12-05T06:00:00Z")));
    // Sunday 03:00 and Monday 03:00: Saturday and Sunday nights are not in the window
    assert!(!s.is_open(at("2026-12-06T03:00:00Z")));
    assert!(!s.is_open(at("2026-12-07T03:00:00Z")));
    assert!(s.is_open(at("2026-12-07T22:00:00Z")));
    assert!(s.is_open(at("2026-12-08T05:59:00Z")));
    assert_eq!(
        s.next_opening(at("2026-12-05T12:00:00Z")),
        Some(at("2026-12-07T22:00:00Z"))
    );
}

#[test]
fn several_entries_and_wrapping_day_ranges() {
    let s = schedule("Sat,Sun 00:00-24:00 UTC; Fri-Mon 12:00-13:00 Asia/Tokyo");
    assert!(s.is_open(at("2026-12-05T23:59:00Z")), "all of Saturday");
    assert!(s.is_open(at("2026-12-06T00:00:00Z")), "and Sunday");
    assert!(
        !s.is_open(at("2026-12-07T00:00:00Z")),
        "Monday 00:00 UTC is 09:00 in Tokyo"
    );
    // Monday 12:00 in Tokyo is 03:00 UTC
    assert!(s.is_open(at("2026-12-07T03:30:00Z")));
    assert!(
        !s.is_open(at("2026-12-08T03:30:00Z")),
        "Tuesday is not in Fri-Mon"
    );
    assert_eq!(
        s.next_opening(at("2026-12-07T04:00:00Z")),
        Some(at("2026-12-11T03:00:00Z"))
    );
}

#[test]
fn a_window_starting_in_the_spring_gap_opens_when_the_clocks_jump() {
    // GIVEN New York's clocks go from 02:00 EST to 03:00 EDT on Sunday 8 March 2026 (07:00 UTC)
    let s = schedule("Sun 02:30-04:00 America/New_York");
    let before = at("2026-03-08T06:59:00Z"); // 01:59 EST
    assert!(!s.is_open(before));
    // THEN it opens at the jump, 03:00 EDT, and closes at 04:00 EDT (08:00 UTC)
    assert_eq!(s.next_opening(before), Some(at("2026-03-08T07:00:00Z")));
    assert!(s.is_open(at("2026-03-08T07:00:00Z")));
    assert!(!s.is_open(at("2026-03-08T08:00:00Z")));
    // AND the next Sunday it opens at 02:30 EDT (06:30 UTC)
    assert_eq!(
        s.next_opening(at("2026-03-09T00:00:00Z")),
        Some(at("2026-03-15T06:30:00Z"))
    );
}

#[test]
fn the_repeated_autumn_hour_is_judged_on_the_wall_clock_both_times() {
    // GIVEN New York's 01:00-02:00 happens twice on Sunday 1 November 2026: EDT (05:00-06:00
    // UTC), then EST (06:00-07:00 UTC)
    let s = schedule("Sun 01:00-01:30 America/New_York");
    // THEN the first half hour of each pass is open, the second half is not
    assert!(s.is_open(at("2026-11-01T05:10:00Z")));
    assert!(!s.is_open(at("2026-11-01T05:40:00Z")));
    assert!(s.is_open(at("2026-11-01T06:10:00Z")));
    assert!(!s.is_open(at("2026-11-01T06:40:00Z")));
    // AND from the night before, the opening is the first pass
    assert_eq!(
        s.next_opening(at("2026-11-01T00:00:00Z")),
        Some(at("2026-11-01T05:00:00Z"))
    );
}

#[test]
fn bad_schedules_name_the_tag_and_the_value() {
    for bad in [
        "",
        "Mon-Fri 08:00-18:00",
        "Mon-Fri 8-18 UTC",
        "Foo 08:00-18:00 UTC",
        "Mon-Fri 08:00-18:00 Mars/Olympus",
        "Mon 25:00-26:00 UTC",
        "Mon 08:60-09:00 UTC",
        "Mon 08:00-08:00 UTC",
        "Mon 24:00-01:00 UTC",
        "Mon 08:00-18:00 UTC;",
        "Mon 08:00-18:00 UTC extra",
    ] {
        let err = Schedule::parse(tags::SCHEDULE, bad).expect_err(bad);
        assert_eq!(err.key(), tags::SCHEDULE, "{bad:?}");
        assert_eq!(err.value(), bad);
    }
}

fn group_tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn a_pause_wins_over_a_schedule_and_ends_on_time() {
    let now = at("2026-12-05T12:00:00Z"); // Saturday
    let w = Window::from_tags(&group_tags(&[
        (tags::SCHEDULE, "Mon-Fri 08:00-18:00 UTC"),
        (tags::PAUSED_UNTIL, "2026-12-05T14:00:00Z"),
    ]))
    .unwrap();
    assert_eq!(
        w.closed(now),
        Some(Closed::Paused(Some(at("2026-12-05T14:00:00Z"))))
    );
    // After the pause the schedule still holds, with its next opening
    assert_eq!(
        w.closed(at("2026-12-05T15:00:00Z")),
        Some(Closed::OutsideSchedule {
            schedule: "Mon-Fri 08:00-18:00 UTC".into(),
            opens: Some(at("2026-12-07T08:00:00Z")),
        })
    );
    // The stack's pause wins over everything
    let open = Window::default();
    assert_eq!(open.closed(now), None);
    let stack = Window {
        stack_paused: true,
        ..w.clone()
    };
    assert_eq!(stack.closed(now), Some(Closed::Paused(None)));
    // A bad pause value names the tag
    let err = Window::from_tags(&group_tags(&[(tags::PAUSED_UNTIL, "tomorrow")])).unwrap_err();
    assert_eq!(err.key(), tags::PAUSED_UNTIL);
}

const SCHEDULES: [&str; 6] = [
    "Mon-Fri 08:00-18:00 Europe/Dublin",
    "Sat,Sun 00:00-24:00 UTC",
    "Mon-Fri 22:00-06:00 America/New_York",
    "Sun 02:30-04:00 America/New_York",
    "Wed 01:00-01:30 Europe/London; Thu-Tue 12:00-12:01 Australia/Lord_Howe",
    "Fri-Mon 23:30-00:15 Asia/Kolkata",
];

proptest! {
    /// The next opening is open, and the minute before it is closed or not after now: it is
    /// the first open minute, across 2026 and its DST changes.
    #[test]
    fn the_next_opening_is_the_first_open_minute(which in 0usize..SCHEDULES.len(), secs in 1_767_225_600i64..1_798_761_600) {
        let s = schedule(SCHEDULES[which]);
        let now = Timestamp::from_unix(secs);
        let t = s.next_opening(now).expect("every schedule opens within a week");
        prop_assert!(s.is_open(t));
        prop_assert!(t >= now && t.secs_since(now) <= 8 * 86_400);
        if t > now {
            prop_assert!(t.plus_secs(-60) <= now || !s.is_open(t.plus_secs(-60)));
            // and no minute boundary between now and t is open
            let mut m = Timestamp::from_unix((now.unix() / 60 + 1) * 60);
            while m < t.plus_secs(-60) {
                prop_assert!(!s.is_open(m), "open at {m} before {t}");
                m = m.plus_secs(3_600);
            }
        }
    }
}
