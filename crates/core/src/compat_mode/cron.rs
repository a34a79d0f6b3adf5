//! AutoSpotting's schedule tags (`autospotting_cron_schedule`, `autospotting_cron_timezone`,
//! `autospotting_cron_schedule_state`) translated into a `spotswap:schedule` window.
//!
//! What AutoSpotting does, read from its code rather than its names:
//! - the schedule is a crontab restricted to two fields, `HOUR DAY-OF-WEEK` (robfig/cron with
//!   only the Hour and Dow fields): `*` or `?`, numbers, `a-b` ranges, `/step`s (`a/n` runs to
//!   the field's end) and `,` lists; days are 0-6 from Sunday or `sun`..`sat`; an optional
//!   `TZ=Zone ` or `CRON_TZ=Zone ` prefix sets the zone. Its default is `* *`.
//! - an instant is *inside* when the schedule fires at the start of its hour and again at the
//!   start of the next hour (AutoSpotting compares the next firing from an hour ago with the
//!   next from now), so `9-18 1-5` is inside from 09:00 to 18:00 on weekdays, not to 19:00, and
//!   a lone hour `9 *` is never inside;
//! - state `on` (default) acts inside the schedule, `off` outside it;
//! - the zone (default `UTC`) is an IANA name; `Local` is the Lambda's, which is UTC.
//!
//! The translation is exact to the hour: the inside hours of each weekday, written as a
//! `spotswap:schedule` in the same zone. Where AutoSpotting skipped a group on a bad value,
//! spotswap says so: a [`ConfigError`] naming the tag and the value.

use crate::error::ConfigError;

/// AutoSpotting's schedule: `HOUR DAY-OF-WEEK`.
pub const CRON_SCHEDULE: &str = "autospotting_cron_schedule";
/// The zone the schedule is read in.
pub const CRON_TIMEZONE: &str = "autospotting_cron_timezone";
/// `on`: act inside the schedule; `off`: act outside it.
pub const CRON_STATE: &str = "autospotting_cron_schedule_state";

const DOW_NAMES: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// What AutoSpotting's schedule tags allow, in spotswap's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CronWindow {
    /// Every hour of the week: no window.
    Always,
    /// A `spotswap:schedule` value.
    Schedule(String),
}

/// Bits `min..=max` of one field, from one comma-separated item list.
fn field(key: &str, value: &str, spec: &str, min: u32, max: u32, names: &[&str]) -> Result<u64, ConfigError> {
    let bad = |why: String| ConfigError::invalid(key, value, why);
    let number = |s: &str| -> Result<u32, ConfigError> {
        if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
            return Ok(i as u32);
        }
        s.parse::<u32>().map_err(|_| {
            bad(format!(
                "{s:?} is not a number{}",
                if names.is_empty() { "" } else { " or a day name" }
            ))
        })
    };
    let mut bits = 0u64;
    for item in spec.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => {
                let step: u32 = s
                    .parse()
                    .map_err(|_| bad(format!("step {s:?} is not a number")))?;
                if step == 0 {
                    return Err(bad(format!("{item:?}: a step must be positive")));
                }
                (r, Some(step))
            }
            None => (item, None),
        };
        let (start, end) = if range == "*" || range == "?" {
            (min, max)
        } else {
            match range.split_once('-') {
                Some((a, b)) => (number(a)?, number(b)?),
                // `a/n` runs from a to the field's end.
                None if step.is_some() => (number(range)?, max),
                None => {
                    let n = number(range)?;
                    (n, n)
                }
            }
        };
        if start < min || end > max || start > end {
            return Err(bad(format!("{item:?} is outside {min}-{max} or runs backwards")));
        }
        let step = step.unwrap_or(1);
        let mut v = start;
        while v <= end {
            bits |= 1 << v;
            v += step;
        }
    }
    Ok(bits)
}

/// Translate the three tags' values (`None` when a tag is absent or empty). A bad value is an
/// error naming its tag.
pub fn translate(
    schedule: Option<&str>,
    timezone: Option<&str>,
    state: Option<&str>,
) -> Result<CronWindow, ConfigError> {
    let state_on = match state.map(str::trim).filter(|s| !s.is_empty()) {
        None | Some("on") => true,
        Some("off") => false,
        Some(other) => return Err(ConfigError::invalid(CRON_STATE, other, "expected on or off")),
    };
    let raw = schedule.map(str::trim).filter(|s| !s.is_empty()).unwrap_or("* *");
    let mut zone = timezone
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .unwrap_or("UTC")
        .to_string();
    let mut spec = raw;
    for prefix in ["TZ=", "CRON_TZ="] {
        if let Some(rest) = raw.strip_prefix(prefix) {
            let (z, rest) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            zone = z.to_string();
            spec = rest.trim();
        }
    }
    if zone == "Local" {
        zone = "UTC".into();
    }
    if jiff::tz::TimeZoneDatabase::bundled().get(&zone).is_err() {
        let (key, value) = if spec.len() == raw.len() {
            (CRON_TIMEZONE, zone.as_str())
        } else {
            (CRON_SCHEDULE, raw)
        };
        return Err(ConfigError::invalid(
            key,
            value,
            format!("{zone:?} is not an IANA time zone"),
        ));
    }
    let fields: Vec<&str> = spec.split_whitespace().collect();
    let [hour, dow] = fields.as_slice() else {
        return Err(ConfigError::invalid(
            CRON_SCHEDULE,
            raw,
            "expected two fields, HOUR DAY-OF-WEEK, e.g. `9-18 1-5`",
        ));
    };
    let hours = field(CRON_SCHEDULE, raw, hour, 0, 23, &[])?;
    let dows = field(CRON_SCHEDULE, raw, dow, 0, 6, &DOW_NAMES)?;
    // fires(d, h): d is Monday = 0; cron's days start on Sunday = 0.
    let fires = |d: usize, h: usize| hours & (1 << h) != 0 && dows & (1 << ((d + 1) % 7)) != 0;
    let mut inside = [0u32; 7];
    for (d, day) in inside.iter_mut().enumerate() {
        for h in 0..24 {
            let (nd, nh) = if h == 23 { ((d + 1) % 7, 0) } else { (d, h + 1) };
            if (fires(d, h) && fires(nd, nh)) == state_on {
                *day |= 1 << h;
            }
        }
    }
    const ALL: u32 = (1 << 24) - 1;
    if inside.iter().all(|d| *d == ALL) {
        return Ok(CronWindow::Always);
    }
    if inside.iter().all(|d| *d == 0) {
        return Err(ConfigError::invalid(
            CRON_SCHEDULE,
            raw,
            format!(
                "AutoSpotting never acts under this schedule with state {}: an hour is inside only when the next hour matches too; to stop swaps set spotswap:enabled=false",
                if state_on { "on" } else { "off" }
            ),
        ));
    }
    Ok(CronWindow::Schedule(render(&inside, &zone)))
}

/// The inside hours of each weekday as a `spotswap:schedule`: days with the same hours share
/// one entry.
fn render(inside: &[u32; 7], zone: &str) -> String {
    let mut entries: Vec<(u32, Vec<usize>)> = Vec::new();
    for (d, bits) in inside.iter().enumerate().filter(|(_, b)| **b != 0) {
        match entries.iter_mut().find(|(b, _)| b == bits) {
            Some((_, days)) => days.push(d),
            None => entries.push((*bits, vec![d])),
        }
    }
    entries
        .iter()
        .map(|(bits, days)| format!("{} {} {zone}", day_list(days), hour_list(*bits)))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Runs of consecutive items, as `(first, last)`.
fn runs(items: impl IntoIterator<Item = usize>) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = Vec::new();
    for i in items {
        match out.last_mut() {
            Some((_, last)) if *last + 1 == i => *last = i,
            _ => out.push((i, i)),
        }
    }
    out
}

fn day_list(days: &[usize]) -> String {
    runs(days.iter().copied())
        .iter()
        .map(|&(a, b)| match b - a {
            0 => DAYS[a].to_string(),
            1 => format!("{},{}", DAYS[a], DAYS[b]),
            _ => format!("{}-{}", DAYS[a], DAYS[b]),
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn hour_list(bits: u32) -> String {
    runs((0..24).filter(|h| bits & (1 << h) != 0))
        .iter()
        .map(|&(a, b)| format!("{a:02}:00-{:02}:00", b + 1))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
#[path = "cron_tests.rs"]
mod tests;
