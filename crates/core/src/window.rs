//! Swap windows (`spotswap:schedule`, FIXED) and pauses (`spotswap:paused-until`, FIXED;
//! `SPOTSWAP_PAUSED`, FIXED): when a group's new swaps may start.
//!
//! # Grammar of `spotswap:schedule`
//!
//! ```text
//! schedule := entry (";" entry)*
//! entry    := days SPACE hours SPACE zone
//! days     := day ("-" day)? ("," day ("-" day)?)*      Mon Tue Wed Thu Fri Sat Sun (any case);
//!                                                        a range may wrap: Fri-Mon
//! hours    := HH:MM "-" HH:MM ("," HH:MM "-" HH:MM)*    00:00 to 24:00; an end before its start
//!                                                        runs past midnight into the next day
//! zone     := an IANA time zone name: UTC, Europe/Dublin, America/New_York
//! ```
//!
//! `Mon-Fri 08:00-18:00 Europe/Dublin` opens at eight and closes at six, Dublin wall-clock time,
//! on weekdays; `Sat,Sun 00:00-24:00 UTC; Mon-Fri 22:00-06:00 UTC` opens all weekend and every
//! weekday night. A window is judged on the zone's wall clock, so it follows daylight saving:
//! on the day clocks go forward, a window that starts inside the skipped hour opens when the
//! clocks jump; on the day they go back, the repeated hour is inside or outside the window both
//! times. The zone data is bundled into the binary (no system tzdata is read).

use std::collections::BTreeMap;

use jiff::civil::{Date, Time, Weekday};
use jiff::tz::{TimeZone, TimeZoneDatabase};

use crate::error::ConfigError;
use crate::tags;
use crate::time::Timestamp;

/// Hours of one entry, in minutes of the day: `start` in 0..1440, `end` in 1..=1440, never
/// equal. `end < start` runs past midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Hours {
    start: u16,
    end: u16,
}

/// One entry: its days (bit 0 = Monday), hours and zone.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    days: u8,
    hours: Vec<Hours>,
    zone: TimeZone,
}

/// A parsed `spotswap:schedule`.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    entries: Vec<Entry>,
    text: String,
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

fn day(key: &str, value: &str, s: &str) -> Result<u8, ConfigError> {
    DAYS.iter()
        .position(|d| d.eq_ignore_ascii_case(s))
        .map(|i| i as u8)
        .ok_or_else(|| {
            ConfigError::invalid(
                key,
                value,
                format!("{s:?} is not a day: use Mon Tue Wed Thu Fri Sat Sun"),
            )
        })
}

fn days(key: &str, value: &str, s: &str) -> Result<u8, ConfigError> {
    let mut mask = 0u8;
    for item in s.split(',') {
        let (from, to) = match item.split_once('-') {
            Some((a, b)) => (day(key, value, a)?, day(key, value, b)?),
            None => {
                let d = day(key, value, item)?;
                (d, d)
            }
        };
        let mut d = from;
        loop {
            mask |= 1 << d;
            if d == to {
                break;
            }
            d = (d + 1) % 7;
        }
    }
    Ok(mask)
}

fn minute(key: &str, value: &str, s: &str) -> Result<u16, ConfigError> {
    let bad = || {
        ConfigError::invalid(
            key,
            value,
            format!("{s:?} is not a time: use HH:MM, 00:00 to 24:00"),
        )
    };
    let (h, m) = s.split_once(':').ok_or_else(bad)?;
    if h.len() != 2 || m.len() != 2 {
        return Err(bad());
    }
    let h: u16 = h.parse().map_err(|_| bad())?;
    let m: u16 = m.parse().map_err(|_| bad())?;
    if m > 59 || h > 24 || (h == 24 && m != 0) {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

fn hours(key: &str, value: &str, s: &str) -> Result<Vec<Hours>, ConfigError> {
    s.split(',')
        .map(|item| {
            let (a, b) = item.split_once('-').ok_or_else(|| {
                ConfigError::invalid(
                    key,
                    value,
                    format!("{item:?} is not an hour range: use HH:MM-HH:MM"),
                )
            })?;
            let (start, end) = (minute(key, value, a)?, minute(key, value, b)?);
            if start == 1440 || end == 0 && start == 0 || start == end {
                return Err(ConfigError::invalid(
                    key,
                    value,
                    format!("{item:?} is empty or starts at 24:00; all day is 00:00-24:00"),
                ));
            }
            // 00:00 as an end is midnight: the range runs to the end of its day.
            Ok(Hours {
                start,
                end: if end == 0 { 1440 } else { end },
            })
        })
        .collect()
}

impl Schedule {
    /// Parse a schedule; `key` names the tag in errors.
    pub fn parse(key: &str, value: &str) -> Result<Self, ConfigError> {
        let mut entries = Vec::new();
        for raw in value.split(';') {
            let parts: Vec<&str> = raw.split_whitespace().collect();
            let [d, h, z] = parts.as_slice() else {
                return Err(ConfigError::invalid(
                    key,
                    value,
                    format!(
                        "{:?} is not `DAYS HH:MM-HH:MM ZONE`, e.g. `Mon-Fri 08:00-18:00 Europe/Dublin`",
                        raw.trim()
                    ),
                ));
            };
            let zone = TimeZoneDatabase::bundled()
                .get(z)
                .map_err(|_| ConfigError::invalid(key, value, format!("{z:?} is not an IANA time zone")))?;
            entries.push(Entry {
                days: days(key, value, d)?,
                hours: hours(key, value, h)?,
                zone,
            });
        }
        Ok(Self {
            entries,
            text: value.trim().to_string(),
        })
    }

    /// The schedule as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// True when new swaps may start at `now`.
    pub fn is_open(&self, now: Timestamp) -> bool {
        let Ok(ts) = jiff::Timestamp::from_second(now.unix()) else {
            return false;
        };
        self.entries.iter().any(|e| {
            let local = ts.to_zoned(e.zone.clone());
            let today = weekday_bit(local.weekday());
            let yesterday = weekday_bit(local.weekday().previous());
            let minute = local.hour() as u16 * 60 + local.minute() as u16;
            e.hours.iter().any(|h| {
                if h.start < h.end {
                    e.days & today != 0 && (h.start..h.end).contains(&minute)
                } else {
                    (e.days & today != 0 && minute >= h.start) || (e.days & yesterday != 0 && minute < h.end)
                }
            })
        })
    }

    /// The first minute after `now` at which the window is open (`now` itself if it is open),
    /// within the next eight days; `None` if it never opens (it always does for a valid
    /// schedule).
    pub fn next_opening(&self, now: Timestamp) -> Option<Timestamp> {
        if self.is_open(now) {
            return Some(now);
        }
        let ts = jiff::Timestamp::from_second(now.unix()).ok()?;
        let mut best: Option<Timestamp> = None;
        for e in &self.entries {
            let start_date: Date = ts.to_zoned(e.zone.clone()).date();
            let mut date = start_date;
            for _ in 0..9 {
                if e.days & weekday_bit(date.weekday()) != 0 {
                    for h in &e.hours {
                        let at = Time::new((h.start / 60) as i8, (h.start % 60) as i8, 0, 0).ok()?;
                        let Ok(zoned) = e.zone.to_zoned(date.to_datetime(at)) else {
                            continue;
                        };
                        let t = Timestamp::from_unix(zoned.timestamp().as_second());
                        if t > now && best.is_none_or(|b| t < b) {
                            best = Some(t);
                        }
                    }
                }
                date = date.tomorrow().ok()?;
            }
        }
        // A start inside a daylight-saving gap resolves past the gap, but the window opens as
        // the clocks jump: step back while still open.
        let mut t = best?;
        while t.plus_secs(-60) > now && self.is_open(t.plus_secs(-60)) {
            t = t.plus_secs(-60);
        }
        Some(t)
    }
}

fn weekday_bit(w: Weekday) -> u8 {
    1 << w.to_monday_zero_offset()
}

/// Why new swaps may not start now, from the group's schedule and pause tags and the stack's
/// pause: `(reason code detail)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Closed {
    /// `SPOTSWAP_PAUSED=true`, or `spotswap:paused-until` in the future (the time).
    Paused(Option<Timestamp>),
    /// Outside `spotswap:schedule`: the schedule, and the next opening.
    OutsideSchedule {
        /// The schedule as written.
        schedule: String,
        /// When the window next opens.
        opens: Option<Timestamp>,
    },
}

impl Closed {
    /// A human detail for the skip line.
    pub fn detail(&self) -> String {
        match self {
            Self::Paused(Some(until)) => format!("{} until {until}", tags::PAUSED_UNTIL),
            Self::Paused(None) => "SPOTSWAP_PAUSED=true".to_string(),
            Self::OutsideSchedule { schedule, opens } => match opens {
                Some(t) => format!("{schedule:?}: opens at {t}"),
                None => format!("{schedule:?}"),
            },
        }
    }
}

/// A group's window: its schedule and its pause, parsed from its tags, and the stack's pause.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Window {
    /// `spotswap:schedule`; `None` is always open.
    pub schedule: Option<Schedule>,
    /// `spotswap:paused-until`.
    pub paused_until: Option<Timestamp>,
    /// `SPOTSWAP_PAUSED=true`: no new swaps in any group.
    pub stack_paused: bool,
}

impl serde::Serialize for Window {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Window", 3)?;
        st.serialize_field("schedule", &self.schedule.as_ref().map(Schedule::as_str))?;
        st.serialize_field("paused_until", &self.paused_until)?;
        st.serialize_field("stack_paused", &self.stack_paused)?;
        st.end()
    }
}

impl Window {
    /// Read `spotswap:schedule` and `spotswap:paused-until`; a bad value is an error naming the
    /// tag and the value.
    pub fn from_tags(group_tags: &BTreeMap<String, String>) -> Result<Self, ConfigError> {
        let schedule = group_tags
            .get(tags::SCHEDULE)
            .map(|v| Schedule::parse(tags::SCHEDULE, v))
            .transpose()?;
        let paused_until = group_tags
            .get(tags::PAUSED_UNTIL)
            .map(|v| {
                Timestamp::parse_rfc3339(v).ok_or_else(|| {
                    ConfigError::invalid(
                        tags::PAUSED_UNTIL,
                        v,
                        "expected an RFC 3339 time, e.g. 2026-12-24T18:00:00Z",
                    )
                })
            })
            .transpose()?;
        Ok(Self {
            schedule,
            paused_until,
            stack_paused: false,
        })
    }

    /// Why new swaps may not start at `now`, or `None` when they may. A pause wins over a
    /// schedule, and the stack's pause over the group's.
    pub fn closed(&self, now: Timestamp) -> Option<Closed> {
        if self.stack_paused {
            return Some(Closed::Paused(None));
        }
        if let Some(until) = self.paused_until.filter(|u| *u > now) {
            return Some(Closed::Paused(Some(until)));
        }
        let schedule = self.schedule.as_ref()?;
        (!schedule.is_open(now)).then(|| Closed::OutsideSchedule {
            schedule: schedule.as_str().to_string(),
            opens: schedule.next_opening(now),
        })
    }
}

#[cfg(test)]
#[path = "window_tests.rs"]
mod tests;
