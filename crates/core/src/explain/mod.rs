//! `spotswap explain`: the story of one instance or one group, joined from what the adapter
//! fetched. Pure: plain data in (our decision log lines, the group's scaling activities, the
//! group and instances as read), an [`Explanation`] out.
//!
//! - `mod.rs` (here): the sources, parsing a decision line, and joining them into a timeline.
//! - [`render`]: the table and the ticket-ready markdown.
//! - [`report`]: `spotswap report`: savings, interruptions, fallbacks and reasons per group.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::{tags, GroupSnapshot, Instance, Lifecycle, Settings, Timestamp};

pub mod render;
pub mod report;

/// The `source` of our EventBridge events.
pub const EVENT_SOURCE: &str = "spotswap";
/// [`LogLine::message`] of one of our EventBridge events.
pub const EVENT_MESSAGE: &str = "event";

/// One of our decision log lines (`"message": "decision"` or `"group skipped"`), parsed from a
/// JSON line as the CLI writes it (flat fields) or as Lambda's JSON log format does (fields
/// under `fields`); or one of our EventBridge events where the user routed them
/// (`"message": "event"`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogLine {
    /// When: the line's own `timestamp`, else the log event's (CloudWatch's), in milliseconds.
    pub at_ms: Option<i64>,
    /// `decision`, `group skipped` or `event`.
    pub message: String,
    /// `launch`, `retire`, `detach`, `skip`, …
    pub action: String,
    /// The reason code.
    pub reason: String,
    /// The group.
    pub group: String,
    /// The instance acted on (empty when none).
    pub instance: String,
    /// The pool (empty when none).
    pub pool: String,
    /// `Done`, `DryRun`, `Fallback`, … (empty on a skip).
    pub outcome: String,
    /// The outcome's detail: a new instance id, the pools tried, the error.
    pub detail: String,
    /// The cycle or event id of the invocation.
    pub cycle_id: String,
    /// The Lambda request id (empty outside Lambda).
    pub request_id: String,
    /// Where the line came from: a log group and stream, or a file.
    pub source: String,
    /// The line as it was, for the evidence.
    pub raw: String,
}

impl LogLine {
    /// Parse one JSON log line; `None` when it is not one of our decision lines.
    /// `event_ms` is the log event's own timestamp, used when the line has none (Lambda's
    /// subscriber writes no time: CloudWatch stamps each event).
    pub fn parse(line: &str, event_ms: Option<i64>, source: &str) -> Option<Self> {
        let v: Value = serde_json::from_str(line.trim()).ok()?;
        if v.get("source").and_then(Value::as_str) == Some(EVENT_SOURCE) {
            return Self::event(&v, event_ms, source, line);
        }
        let fields = match v.get("fields") {
            Some(f @ Value::Object(_)) => f,
            _ => &v,
        };
        let s = |k: &str| match fields.get(k) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => String::new(),
            Some(other) => other.to_string(),
        };
        let message = s("message");
        if message != "decision" && message != "group skipped" {
            return None;
        }
        let at_ms = v
            .get("timestamp")
            .and_then(Value::as_str)
            .and_then(parse_ms)
            .or(event_ms);
        Some(Self {
            at_ms,
            message,
            action: s("action"),
            reason: s("reason"),
            group: s("group"),
            instance: s("instance"),
            pool: s("pool"),
            outcome: s("outcome"),
            detail: s("detail"),
            cycle_id: s("cycle_id"),
            request_id: s("request_id"),
            source: source.to_string(),
            raw: line.trim().to_string(),
        })
    }

    /// One of our EventBridge events (`source` `spotswap`), as EventBridge delivers it to the
    /// targets a user routed it to (a CloudWatch Logs group, an archive written to a file):
    /// `message` `event`, the detail-type as the action, the instances as the detail.
    fn event(v: &Value, event_ms: Option<i64>, source: &str, line: &str) -> Option<Self> {
        let action = v.get("detail-type")?.as_str()?.to_string();
        let detail = v.get("detail")?;
        let s = |k: &str| detail.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let list = |k: &str| -> Vec<String> {
            detail
                .get(k)
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
                .unwrap_or_default()
        };
        let instances = list("instances");
        Some(Self {
            at_ms: v
                .get("time")
                .and_then(Value::as_str)
                .and_then(parse_ms)
                .or(event_ms),
            message: EVENT_MESSAGE.to_string(),
            action,
            reason: s("reason"),
            group: s("group"),
            instance: instances.first().cloned().unwrap_or_default(),
            pool: list("pools").join(","),
            outcome: String::new(),
            detail: instances.join(","),
            cycle_id: s("cycle_id"),
            request_id: s("request_id"),
            source: source.to_string(),
            raw: line.trim().to_string(),
        })
    }

    /// True for one of our EventBridge events rather than a decision line.
    pub fn is_event(&self) -> bool {
        self.message == EVENT_MESSAGE
    }

    /// True when the line names `id` as the instance acted on or in its detail (a launch's
    /// new instance).
    pub fn mentions(&self, id: &str) -> bool {
        self.instance == id || self.detail.split([',', ' ', '"']).any(|w| w == id)
    }
}

/// RFC 3339 with any fraction, to milliseconds.
pub fn parse_ms(s: &str) -> Option<i64> {
    let t = time::OffsetDateTime::parse(s.trim(), &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

/// One scaling activity of a group (DescribeScalingActivities), as plain data.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Activity {
    /// The group.
    pub group: String,
    /// `Launching a new EC2 instance: i-…`, `Terminating EC2 instance: i-…`, …
    pub description: String,
    /// Why, in Auto Scaling's words.
    pub cause: String,
    /// `Successful`, `InProgress`, `Failed`, …
    pub status: String,
    /// `StatusMessage`: why it failed, e.g. "Could not launch Spot Instances.
    /// InsufficientInstanceCapacity - …"; empty when none.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub status_message: String,
    /// When it started.
    pub start: Option<Timestamp>,
}

impl Activity {
    /// The instance the activity is about, from its description.
    pub fn instance(&self) -> Option<&str> {
        self.description
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
            .find(|w| w.starts_with("i-") && w.len() > 2)
    }
}

/// Where an entry of a timeline came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// One of our decision log lines.
    Decision,
    /// A scaling activity of the group.
    ScalingActivity,
    /// One of our tags, read now.
    Tag,
    /// One of our EventBridge events, where the user routed them.
    Event,
}

impl Source {
    /// The name in the table and the markdown.
    pub fn name(self) -> &'static str {
        match self {
            Self::Decision => "decision",
            Self::ScalingActivity => "scaling-activity",
            Self::Tag => "tag",
            Self::Event => "event",
        }
    }
}

/// One entry of a timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    /// When, in milliseconds since the epoch (`None`: unknown, listed first).
    pub at_ms: Option<i64>,
    /// Where it came from.
    pub source: Source,
    /// The instance it is about (empty when none).
    pub instance: String,
    /// What happened, in one line.
    pub what: String,
    /// The reason code (a decision) or the status (an activity).
    pub reason: String,
    /// The cycle or event id (a decision).
    pub cycle_id: String,
    /// The evidence: the log line or the activity's cause, as it was.
    pub evidence: String,
}

impl Entry {
    /// The time as RFC 3339, to the second.
    pub fn when(&self) -> String {
        self.at_ms
            .map(|ms| Timestamp::from_unix(ms.div_euclid(1000)).to_rfc3339())
            .unwrap_or_else(|| "-".into())
    }

    fn decision(l: &LogLine) -> Self {
        let mut what = format!("{} {}", l.action, l.outcome).trim().to_string();
        if !l.instance.is_empty() {
            what.push_str(&format!(" {}", l.instance));
        }
        if !l.pool.is_empty() {
            what.push_str(&format!(" in {}", l.pool));
        }
        if !l.detail.is_empty() {
            what.push_str(&format!(" ({})", l.detail));
        }
        Self {
            at_ms: l.at_ms,
            source: if l.is_event() {
                Source::Event
            } else {
                Source::Decision
            },
            instance: l.instance.clone(),
            what,
            reason: l.reason.clone(),
            cycle_id: l.cycle_id.clone(),
            evidence: l.raw.clone(),
        }
    }

    fn activity(a: &Activity) -> Self {
        Self {
            at_ms: a.start.map(|t| t.unix() * 1000),
            source: Source::ScalingActivity,
            instance: a.instance().unwrap_or("").to_string(),
            what: a.description.clone(),
            reason: a.status.clone(),
            cycle_id: String::new(),
            evidence: a.cause.clone(),
        }
    }
}

/// What the adapter fetched for one explanation.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// The group (the instance's, for an instance), as read now; `None` when it does not exist.
    pub group: Option<GroupSnapshot>,
    /// The instance, in any state; `None` when EC2 does not know it (or for a group).
    pub instance: Option<Instance>,
    /// Our launches for the group (instances tagged `spotswap:group`).
    pub launches: Vec<Instance>,
    /// The group's scaling activities, any order.
    pub activities: Vec<Activity>,
    /// Decision log lines, any order.
    pub lines: Vec<LogLine>,
    /// How the lines were fetched (`--log-file PATH`, `--log-group NAME`), for the commands to
    /// reproduce.
    pub log_args: Vec<String>,
}

/// The story of an instance or a group.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explanation {
    /// The instance id or group name asked about.
    pub subject: String,
    /// `instance` or `group`.
    pub kind: &'static str,
    /// The group (the instance's, for an instance).
    pub group: Option<String>,
    /// One sentence.
    pub summary: String,
    /// Where it stands now, key to value.
    pub state: BTreeMap<String, String>,
    /// Instances this one replaced or was replaced by (an instance), our launches in flight
    /// (a group).
    pub related: Vec<String>,
    /// Every entry, oldest first.
    pub timeline: Vec<Entry>,
    /// The invocations the decisions came from (cycle or event ids), first seen first.
    pub cycles: Vec<String>,
    /// Commands that show the same evidence.
    pub commands: Vec<String>,
}

/// At most this many decisions in a group's timeline: the last ones.
pub const GROUP_DECISIONS: usize = 50;

fn sorted(mut entries: Vec<Entry>) -> Vec<Entry> {
    // Stable: lines of one second keep the order they were written in.
    entries.sort_by_key(|e| e.at_ms.unwrap_or(i64::MIN));
    entries
}

fn cycles_of(entries: &[Entry]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for e in entries {
        if !e.cycle_id.is_empty() && !out.contains(&e.cycle_id) {
            out.push(e.cycle_id.clone());
        }
    }
    out
}

fn instance_state(i: &Instance) -> BTreeMap<String, String> {
    let mut s = BTreeMap::new();
    s.insert("state".into(), format!("{:?}", i.state).to_lowercase());
    s.insert(
        "lifecycle".into(),
        match i.lifecycle {
            Lifecycle::Spot => "spot".into(),
            Lifecycle::OnDemand => "on-demand".into(),
        },
    );
    s.insert("pool".into(), i.pool().to_string());
    s.insert("launched".into(), i.launch_time.to_rfc3339());
    for (k, v) in i.tags.iter().filter(|(k, _)| k.starts_with(tags::PREFIX)) {
        s.insert(k.to_string(), v.to_string());
    }
    s
}

/// The story of instance `id`: its group, the instances it replaced or was replaced by, every
/// decision about it, the scaling activities that touched it, and where it stands now.
/// `None` when no source knows the instance at all (an unknown instance is bad input).
pub fn explain_instance(id: &str, src: &Sources) -> Option<Explanation> {
    let inst = src.instance.as_ref().filter(|i| i.id == id);
    let lines: Vec<&LogLine> = src.lines.iter().filter(|l| l.mentions(id)).collect();
    let activities: Vec<&Activity> = src
        .activities
        .iter()
        .filter(|a| a.instance() == Some(id))
        .collect();
    if inst.is_none() && lines.is_empty() && activities.is_empty() {
        return None;
    }
    let group = src
        .instance
        .as_ref()
        .and_then(|i| i.launched_for().or(i.tag(tags::AWS_ASG_NAME)).map(str::to_string))
        .or_else(|| src.group.as_ref().map(|g| g.name.clone()))
        .or_else(|| {
            lines
                .iter()
                .find(|l| !l.group.is_empty())
                .map(|l| l.group.clone())
        });
    let mut related: Vec<String> = Vec::new();
    let mut relate = |r: &str| {
        if r != id && r.starts_with("i-") && !related.iter().any(|x| x == r) {
            related.push(r.to_string());
        }
    };
    if let Some(r) = inst.and_then(Instance::replaces) {
        relate(r);
    }
    for l in &lines {
        // A launch line names the original as its instance and the new one as its detail.
        if l.action == "launch" {
            relate(&l.instance);
            relate(&l.detail);
        }
    }
    for i in src.launches.iter().filter(|i| i.replaces() == Some(id)) {
        relate(&i.id);
    }
    let mut entries: Vec<Entry> = lines.iter().map(|l| Entry::decision(l)).collect();
    entries.extend(activities.iter().map(|a| Entry::activity(a)));
    let timeline = sorted(entries);
    let state = inst.map(instance_state).unwrap_or_default();
    let summary = instance_summary(id, group.as_deref(), &related, &timeline, inst);
    let mut commands = vec![format!("spotswap explain {id} {}", src.log_args.join(" "))
        .trim()
        .to_string()];
    commands.push(format!("aws ec2 describe-instances --instance-ids {id}"));
    if let Some(g) = &group {
        commands.push(format!(
            "aws autoscaling describe-scaling-activities --auto-scaling-group-name {g}"
        ));
    }
    Some(Explanation {
        subject: id.to_string(),
        kind: "instance",
        group,
        summary,
        state,
        related,
        cycles: cycles_of(&timeline),
        timeline,
        commands,
    })
}

fn instance_summary(
    id: &str,
    group: Option<&str>,
    related: &[String],
    timeline: &[Entry],
    now: Option<&Instance>,
) -> String {
    let mut s = id.to_string();
    if let Some(g) = group {
        s.push_str(&format!(" belongs to group {g}"));
    }
    let decisions = timeline.iter().filter(|e| e.source == Source::Decision).count();
    s.push_str(&format!("; spotswap made {decisions} decision(s) about it"));
    if let Some(last) = timeline.iter().rev().find(|e| e.source == Source::Decision) {
        s.push_str(&format!(
            ", the last {} at {} ({})",
            last.reason,
            last.when(),
            last.what
        ));
    }
    if !related.is_empty() {
        s.push_str(&format!("; related instances: {}", related.join(", ")));
    }
    match now {
        Some(i) => s.push_str(&format!(
            "; it is {} now.",
            format!("{:?}", i.state).to_lowercase()
        )),
        None => s.push_str("; EC2 no longer knows it."),
    }
    s
}

/// The story of group `name`: its floor, its configuration as parsed, whether it is managed
/// and if not why, our launches in flight, its records, and the last [`GROUP_DECISIONS`]
/// decisions. `None` when the group does not exist.
pub fn explain_group(name: &str, src: &Sources, settings: &Settings, now: Timestamp) -> Option<Explanation> {
    let g = src.group.as_ref().filter(|g| g.name == name)?;
    let mut state = BTreeMap::new();
    state.insert("desired".into(), g.desired.to_string());
    state.insert("min/max".into(), format!("{}/{}", g.min_size, g.max_size));
    let managed = match crate::plan::policy_for(g, settings) {
        Ok(Some(p)) => {
            state.insert(
                "floor (on-demand)".into(),
                p.required_on_demand(g.desired).to_string(),
            );
            state.insert("policy".into(), serde_json::to_string(&p).unwrap_or_default());
            if let Some(closed) = p.window.closed(now) {
                state.insert("new swaps".into(), format!("held: {}", closed.detail()));
            }
            "managed".to_string()
        }
        Ok(None) => format!(
            "not managed ({} is not true, mode {:?})",
            tags::ENABLED,
            settings.mode
        ),
        Err(e) => format!("not managed: {e}"),
    };
    state.insert("managed".into(), managed.clone());
    for (k, v) in g.tags.iter().filter(|(k, _)| is_record(k)) {
        state.insert(k.clone(), v.clone());
    }
    let related: Vec<String> = src
        .launches
        .iter()
        .filter(|i| i.launched_for() == Some(name))
        .map(|i| {
            let stage = if i.tag(tags::ATTACHED_AT).is_some() {
                "attached"
            } else {
                "launched"
            };
            format!("{} ({stage}, replaces {})", i.id, i.replaces().unwrap_or("-"))
        })
        .collect();
    let mut decisions: Vec<Entry> = sorted(
        src.lines
            .iter()
            .filter(|l| l.group == name)
            .map(Entry::decision)
            .collect(),
    );
    if decisions.len() > GROUP_DECISIONS {
        decisions.drain(..decisions.len() - GROUP_DECISIONS);
    }
    let mut entries = decisions;
    entries.extend(
        src.activities
            .iter()
            .filter(|a| a.group == name)
            .map(Entry::activity),
    );
    let timeline = sorted(entries);
    let od = g.members.len();
    let summary = format!(
        "Group {name} is {managed}, with {od} member(s) and {} of our launch(es) in flight; {} decision(s) in the logs read.",
        related.len(),
        timeline.iter().filter(|e| e.source == Source::Decision).count()
    );
    Some(Explanation {
        subject: name.to_string(),
        kind: "group",
        group: Some(name.to_string()),
        summary,
        state,
        related,
        cycles: cycles_of(&timeline),
        timeline,
        commands: vec![
            format!("spotswap explain {name} {}", src.log_args.join(" "))
                .trim()
                .to_string(),
            format!("aws autoscaling describe-auto-scaling-groups --auto-scaling-group-names {name}"),
            format!("aws autoscaling describe-scaling-activities --auto-scaling-group-name {name}"),
        ],
    })
}

/// Our records kept in group tags: cooldowns, capacity marks, shelter, raised MaxSize,
/// interruptions, pause.
fn is_record(key: &str) -> bool {
    key.starts_with(tags::COOLDOWN_PREFIX)
        || key.starts_with(tags::NO_CAPACITY_PREFIX)
        || [
            tags::SHELTERED_UNTIL,
            tags::MAX_RAISED_FROM,
            tags::MAX_RAISED_TO,
            tags::INTERRUPTIONS,
            tags::INTERRUPTION_COUNTS,
            tags::PAUSED_UNTIL,
        ]
        .contains(&key)
}

#[cfg(test)]
mod tests;
