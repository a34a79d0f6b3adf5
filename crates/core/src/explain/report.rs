//! `spotswap report`: per managed group and in total, counts and savings now (the planner's
//! [`Census`]), savings accumulated over the window, and what the decision lines of the window
//! say: interruptions, fallbacks, shelters, the interruption rate against the 10%/hour alarm,
//! the top reasons. Pure.
//!
//! Savings over the window come from the `EstimatedHourlySavings` metric where CloudWatch has
//! it for the group (GetMetricData: each period's average in USD/hour times the part of the
//! period inside the window, so instances that ended inside the window count too). Where the
//! metric is absent, they are computed from our spot launches running now, each at its group's
//! savings rate per spot instance, from `max(launch, window start)`: a lower bound, since
//! instances that ended inside the window are not counted. `savings_source` says which.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

use super::LogLine;
use crate::{Census, Instance, Lifecycle, Timestamp};

/// The interruption-rate alarm's threshold, percent of spot instances per hour (template.yaml).
pub const ALARM_PERCENT_PER_HOUR: f64 = 10.0;

/// How many reasons the report lists.
pub const TOP_REASONS: usize = 5;

/// One group's line of the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupReport {
    /// The group.
    pub group: String,
    /// On-demand members now.
    pub on_demand: u32,
    /// Spot members now.
    pub spot: u32,
    /// The risk floor (on-demand kept).
    pub floor: u32,
    /// Estimated savings now, USD/hour.
    pub savings_per_hour: f64,
    /// Estimated savings over the window, USD (a lower bound).
    pub savings_in_window: f64,
    /// Spot interruptions recorded in the window.
    pub interruptions: u32,
    /// Launches that fell back to on-demand.
    pub fallbacks: u32,
    /// Times the group was sheltered (an interruption burst).
    pub shelters: u32,
    /// Interruptions per hour, percent of the spot instances now.
    pub interruption_rate_per_hour: f64,
    /// Above [`ALARM_PERCENT_PER_HOUR`].
    pub above_alarm: bool,
    /// The most frequent reason codes, most first: `(code, count)`.
    pub top_reasons: Vec<(String, u32)>,
    /// Where `savings_in_window` comes from.
    pub savings_source: SavingsSource,
}

/// Where a report's savings over the window come from (`savings_source`, FIXED values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SavingsSource {
    /// The `EstimatedHourlySavings` metric: every spot hour the rebalancer reported, instances
    /// that ended inside the window included.
    Metric,
    /// Our spot launches running now, from their launch times and prices: a lower bound.
    LaunchTimes,
    /// The total, when some groups have the metric and some do not.
    Mixed,
}

impl SavingsSource {
    fn short(self) -> &'static str {
        match self {
            SavingsSource::Metric => "metric",
            SavingsSource::LaunchTimes => "launch-times",
            SavingsSource::Mixed => "mixed",
        }
    }
}

/// A group's `EstimatedHourlySavings` as GetMetricData averaged it: `(period start, USD/hour)`
/// for each period that has data.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SavingsSeries {
    /// The period, seconds.
    pub period_secs: u32,
    /// One average per period with data.
    pub points: Vec<(Timestamp, f64)>,
}

impl SavingsSeries {
    /// USD saved inside `[since, until]`: each period's average times the part of the period
    /// inside the window. A period without data saved nothing (the rebalancer did not report).
    pub fn saved(&self, since: Timestamp, until: Timestamp) -> f64 {
        let period = i64::from(self.period_secs);
        self.points
            .iter()
            .map(|(start, per_hour)| {
                let from = start.unix().max(since.unix());
                let to = (start.unix() + period).min(until.unix());
                per_hour * ((to - from).max(0) as f64) / 3600.0
            })
            .sum()
    }
}

/// The GetMetricData period for a window: 5 minutes (one rebalancer cycle) up to two days,
/// one hour beyond, so a long window stays a few pages.
pub fn metric_period(since: Timestamp, until: Timestamp) -> u32 {
    if until.secs_since(since) <= 2 * 24 * 3600 {
        300
    } else {
        3600
    }
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// The window's start.
    pub since: Timestamp,
    /// Its end.
    pub until: Timestamp,
    /// One line per managed group, by name.
    pub groups: Vec<GroupReport>,
    /// Every group added up (the rate is the total's own).
    pub total: GroupReport,
}

/// Build the report from each managed group's census now, our spot launches running now, the
/// decision lines of the window, and the `EstimatedHourlySavings` series CloudWatch has (by
/// group; a group without one, or with an empty one, is estimated from launch times).
pub fn build(
    census: &[(String, Census)],
    ours: &[Instance],
    lines: &[LogLine],
    metric: &BTreeMap<String, SavingsSeries>,
    since: Timestamp,
    until: Timestamp,
) -> Report {
    let hours = (until.secs_since(since).max(1) as f64) / 3600.0;
    let since_ms = since.unix() * 1000;
    // Decisions only: our EventBridge events repeat decisions already counted.
    let in_window: Vec<&LogLine> = lines
        .iter()
        .filter(|l| !l.is_event() && l.at_ms.is_none_or(|t| t >= since_ms))
        .collect();
    let mut groups: Vec<GroupReport> = census
        .iter()
        .map(|(name, c)| {
            let per_spot = if c.spot > 0 {
                c.hourly_savings / f64::from(c.spot)
            } else {
                0.0
            };
            let series = metric.get(name).filter(|m| !m.points.is_empty());
            let (savings_in_window, savings_source) = match series {
                Some(m) => (m.saved(since, until), SavingsSource::Metric),
                None => (
                    ours.iter()
                        .filter(|i| i.launched_for() == Some(name.as_str()) && i.lifecycle == Lifecycle::Spot)
                        .map(|i| {
                            let from = i.launch_time.max(since);
                            per_spot * (until.secs_since(from).max(0) as f64) / 3600.0
                        })
                        .sum(),
                    SavingsSource::LaunchTimes,
                ),
            };
            let mine: Vec<&LogLine> = in_window.iter().copied().filter(|l| &l.group == name).collect();
            let mut g = counted(name, &mine);
            g.on_demand = c.on_demand;
            g.spot = c.spot;
            g.floor = c.floor;
            g.savings_per_hour = c.hourly_savings;
            g.savings_in_window = savings_in_window;
            g.savings_source = savings_source;
            g.interruption_rate_per_hour = rate(g.interruptions, g.spot, hours);
            g.above_alarm = g.interruption_rate_per_hour > ALARM_PERCENT_PER_HOUR;
            g
        })
        .collect();
    groups.sort_by(|a, b| a.group.cmp(&b.group));
    let names: Vec<&str> = groups.iter().map(|g| g.group.as_str()).collect();
    let all: Vec<&LogLine> = in_window
        .iter()
        .copied()
        .filter(|l| names.contains(&l.group.as_str()))
        .collect();
    let mut total = counted("(total)", &all);
    for g in &groups {
        total.on_demand += g.on_demand;
        total.spot += g.spot;
        total.floor += g.floor;
        total.savings_per_hour += g.savings_per_hour;
        total.savings_in_window += g.savings_in_window;
    }
    let from_metric = groups
        .iter()
        .filter(|g| g.savings_source == SavingsSource::Metric)
        .count();
    total.savings_source = match from_metric {
        0 => SavingsSource::LaunchTimes,
        n if n == groups.len() => SavingsSource::Metric,
        _ => SavingsSource::Mixed,
    };
    total.interruption_rate_per_hour = rate(total.interruptions, total.spot, hours);
    total.above_alarm = total.interruption_rate_per_hour > ALARM_PERCENT_PER_HOUR;
    Report {
        since,
        until,
        groups,
        total,
    }
}

fn rate(interruptions: u32, spot: u32, hours: f64) -> f64 {
    f64::from(interruptions) * 100.0 / f64::from(spot.max(1)) / hours
}

/// The counts the decision lines give.
fn counted(name: &str, lines: &[&LogLine]) -> GroupReport {
    let done = |l: &&&LogLine| l.outcome == "done";
    let interruptions = lines
        .iter()
        .filter(|l| l.action == "record-interruption")
        .filter(done)
        .count() as u32;
    let shelters = lines
        .iter()
        .filter(|l| l.action == "record-interruption" && l.reason == "InterruptionBurst")
        .filter(done)
        .count() as u32;
    let fallbacks = lines.iter().filter(|l| l.outcome == "fallback").count() as u32;
    let mut reasons: BTreeMap<&str, u32> = BTreeMap::new();
    for l in lines.iter().filter(|l| !l.reason.is_empty()) {
        *reasons.entry(l.reason.as_str()).or_default() += 1;
    }
    let mut top: Vec<(String, u32)> = reasons.into_iter().map(|(r, n)| (r.to_string(), n)).collect();
    // Most first; ties by name, so the report is the same for the same lines.
    top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    top.truncate(TOP_REASONS);
    GroupReport {
        group: name.to_string(),
        on_demand: 0,
        spot: 0,
        floor: 0,
        savings_per_hour: 0.0,
        savings_in_window: 0.0,
        interruptions,
        fallbacks,
        shelters,
        interruption_rate_per_hour: 0.0,
        above_alarm: false,
        top_reasons: top,
        savings_source: SavingsSource::LaunchTimes,
    }
}

fn row(g: &GroupReport) -> [String; 11] {
    [
        g.group.clone(),
        g.on_demand.to_string(),
        g.spot.to_string(),
        g.floor.to_string(),
        format!("{:.4}", g.savings_per_hour),
        format!("{:.2} ({})", g.savings_in_window, g.savings_source.short()),
        g.interruptions.to_string(),
        g.fallbacks.to_string(),
        g.shelters.to_string(),
        format!(
            "{:.1}%{}",
            g.interruption_rate_per_hour,
            if g.above_alarm { " ALARM" } else { "" }
        ),
        g.top_reasons
            .iter()
            .map(|(r, n)| format!("{r} {n}"))
            .collect::<Vec<_>>()
            .join(", "),
    ]
}

const HEADER: [&str; 11] = [
    "GROUP",
    "ON-DEMAND",
    "SPOT",
    "FLOOR",
    "USD/H NOW",
    "USD IN WINDOW",
    "INTERRUPTIONS",
    "FALLBACKS",
    "SHELTERS",
    "RATE/H",
    "TOP REASONS",
];

/// Columns for a terminal.
pub fn table(r: &Report) -> String {
    let rows: Vec<[String; 11]> = r.groups.iter().chain([&r.total]).map(row).collect();
    let mut widths: Vec<usize> = HEADER.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = format!("{} to {}\n", r.since, r.until);
    let line = |cells: Vec<&str>| {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let _ = writeln!(out, "{}", line(HEADER.to_vec()));
    for row in &rows {
        let _ = writeln!(out, "{}", line(row.iter().map(String::as_str).collect()));
    }
    out
}

/// Markdown, for a ticket or an e-mail.
pub fn markdown(r: &Report) -> String {
    let t = &r.total;
    let mut out = format!(
        "## spotswap report, {} to {}\n\n{} managed group(s): {} spot and {} on-demand instance(s) now, saving an estimated ${:.4}/hour; {} ${:.2} saved in the window. {} interruption(s), {} fallback(s), {} shelter(s); interruption rate {:.1}%/hour against the {ALARM_PERCENT_PER_HOUR}% alarm.\n\n",
        r.since, r.until, r.groups.len(), t.spot, t.on_demand, t.savings_per_hour,
        match t.savings_source {
            SavingsSource::Metric => "by the EstimatedHourlySavings metric,",
            SavingsSource::LaunchTimes => "at least (from launch times; the metric is absent)",
            SavingsSource::Mixed => "at least (the metric for some groups, launch times for the rest)",
        },
        t.savings_in_window,
        t.interruptions, t.fallbacks, t.shelters, t.interruption_rate_per_hour
    );
    let _ = writeln!(out, "| {} |", HEADER.join(" | "));
    let _ = writeln!(out, "|{}", " --- |".repeat(HEADER.len()));
    for row in r.groups.iter().chain([&r.total]).map(row) {
        let _ = writeln!(out, "| {} |", row.join(" | ").replace('\n', " "));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::instance;

    fn line(group: &str, action: &str, reason: &str, outcome: &str, at_ms: i64) -> LogLine {
        let raw = serde_json::json!({
            "message": "decision", "action": action, "reason": reason, "group": group,
            "outcome": outcome,
        })
        .to_string();
        LogLine::parse(&raw, Some(at_ms), "t").unwrap()
    }

    #[test]
    fn totals_match_the_decisions_and_the_census() {
        // GIVEN two groups, one spot instance of ours in "web" running the whole window, and
        // the lines of two interruptions (one a burst), a fallback, and a line before the window
        let since = Timestamp::from_unix(1_000_000);
        let until = since.plus_secs(2 * 3600);
        let census = |spot, savings| Census {
            desired: 4,
            floor: 1,
            on_demand: 4 - spot,
            spot,
            hourly_savings: savings,
        };
        let mut spot = instance("i-s", "m5.large", "us-east-1a", Lifecycle::Spot);
        spot.tags.insert(crate::tags::GROUP.into(), "web".into());
        spot.launch_time = Timestamp::from_unix(0);
        let ms = |h: f64| (since.unix() as f64 * 1000.0 + h * 3_600_000.0) as i64;
        let lines = [
            line("web", "record-interruption", "PoolInterrupted", "done", ms(0.5)),
            line("web", "record-interruption", "InterruptionBurst", "done", ms(1.0)),
            line("api", "launch", "OnDemandAboveFloor", "fallback", ms(1.5)),
            line("web", "launch", "OnDemandAboveFloor", "done", ms(-1.0)),
            line("other", "launch", "OnDemandAboveFloor", "fallback", ms(1.0)),
        ];
        let r = build(
            &[("web".into(), census(1, 0.06)), ("api".into(), census(0, 0.0))],
            &[spot],
            &lines,
            &BTreeMap::new(),
            since,
            until,
        );
        // THEN each group counts its own lines in the window, and the total adds them up
        let web = &r.groups[1];
        assert_eq!(
            (web.group.as_str(), web.interruptions, web.shelters, web.fallbacks),
            ("web", 2, 1, 0)
        );
        assert!(
            (web.savings_in_window - 0.12).abs() < 1e-9,
            "{}",
            web.savings_in_window
        );
        // 2 interruptions of 1 spot instance over 2 hours: 100%/hour, above the alarm
        assert!((web.interruption_rate_per_hour - 100.0).abs() < 1e-9 && web.above_alarm);
        assert_eq!(r.groups[0].fallbacks, 1);
        assert_eq!(
            (r.total.interruptions, r.total.fallbacks, r.total.shelters),
            (2, 1, 1)
        );
        assert_eq!((r.total.spot, r.total.on_demand, r.total.floor), (1, 7, 2));
        assert_eq!(web.top_reasons[0], ("InterruptionBurst".to_string(), 1));
        assert!(
            table(&r).contains("ALARM")
                && markdown(&r).contains("2 interruption(s), 1 fallback(s), 1 shelter(s)")
        );
    }

    #[test]
    fn the_metric_counts_every_period_in_the_window_and_launch_times_stand_in_without_it() {
        // GIVEN a 2-hour window; "web" has 5-minute averages of 0.60 $/h for the whole window
        // and one period straddling its start, while none of its spot instances runs now;
        // "api" has no metric and one spot instance of ours running the whole window
        let since = Timestamp::from_unix(1_000_200);
        let until = since.plus_secs(2 * 3600);
        let census = |spot, savings| Census {
            desired: 2,
            floor: 0,
            on_demand: 2 - spot,
            spot,
            hourly_savings: savings,
        };
        let web = SavingsSeries {
            period_secs: 300,
            points: (0..25)
                .map(|n| (Timestamp::from_unix(1_000_200 - 150 + n * 300), 0.60))
                .collect(),
        };
        let mut spot = instance("i-s", "m5.large", "us-east-1a", Lifecycle::Spot);
        spot.tags.insert(crate::tags::GROUP.into(), "api".into());
        spot.launch_time = Timestamp::from_unix(0);
        let metric = BTreeMap::from([
            ("web".to_string(), web),
            ("api".to_string(), SavingsSeries::default()),
        ]);
        let r = build(
            &[("web".into(), census(0, 0.0)), ("api".into(), census(1, 0.05))],
            &[spot],
            &[],
            &metric,
            since,
            until,
        );
        // THEN web's savings are the metric's: 0.60 $/h over the 2 hours inside the window
        // (the straddling periods count only their part inside), though nothing runs now
        let (api, web) = (&r.groups[0], &r.groups[1]);
        assert_eq!(web.savings_source, SavingsSource::Metric);
        assert!(
            (web.savings_in_window - 1.20).abs() < 1e-9,
            "{}",
            web.savings_in_window
        );
        // AND api, whose series is empty, is estimated from its running launch: 0.05 $/h x 2 h
        assert_eq!(api.savings_source, SavingsSource::LaunchTimes);
        assert!(
            (api.savings_in_window - 0.10).abs() < 1e-9,
            "{}",
            api.savings_in_window
        );
        // AND the total adds both, and says it is mixed
        assert_eq!(r.total.savings_source, SavingsSource::Mixed);
        assert!((r.total.savings_in_window - 1.30).abs() < 1e-9);
        assert!(
            markdown(&r).contains("the metric for some groups"),
            "{}",
            markdown(&r)
        );
        assert!(table(&r).contains("1.20 (metric)"), "{}", table(&r));
    }

    #[test]
    fn the_metric_period_is_a_cycle_up_to_two_days_and_an_hour_beyond() {
        let t = Timestamp::from_unix(1_000_000);
        assert_eq!(metric_period(t, t.plus_secs(24 * 3600)), 300);
        assert_eq!(metric_period(t, t.plus_secs(2 * 24 * 3600)), 300);
        assert_eq!(metric_period(t, t.plus_secs(7 * 24 * 3600)), 3600);
    }
}
