//! What an invocation did: one JSON log line per decision, EMF metrics, our own EventBridge
//! events, and a summary for the CLI.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::json;
use spotswap_core::metrics::GroupMetrics;
use spotswap_core::{Action, ActionKind, Census, PriceSource, Reason, Skip};
use tracing::{error, info, warn};

use crate::execute::Outcome;
use crate::Aws;

/// One action as it is logged and printed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActionReport {
    /// `launch`, `attach`, `retire`, …
    pub action: &'static str,
    /// The PascalCase reason code.
    pub reason: &'static str,
    /// The group.
    pub group: String,
    /// The instance acted on.
    pub instance: Option<String>,
    /// The pool.
    pub pool: Option<String>,
    /// Spot price of the pool, USD/hour.
    pub spot_price: Option<f64>,
    /// On-demand price of the original type, USD/hour.
    pub on_demand_price: Option<f64>,
    /// What happened.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// For a launch: every pool offered, cheapest first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub candidates: Vec<String>,
}

impl ActionReport {
    /// Build from an action and its outcome. A launch that fell back reports `NoSpotCapacity`.
    pub fn new(a: &Action, outcome: Outcome) -> Self {
        let reason = match &outcome {
            Outcome::Fallback(_) => Reason::NoSpotCapacity,
            _ => a.reason,
        };
        Self {
            action: a.kind.name(),
            reason: reason.code(),
            group: a.group.clone(),
            instance: a.instance.clone(),
            pool: a.pool.as_ref().map(ToString::to_string),
            spot_price: a.spot_price,
            on_demand_price: a.on_demand_price,
            candidates: match &a.kind {
                ActionKind::Launch(spec) => spec.candidates.iter().map(|c| c.pool.to_string()).collect(),
                _ => Vec::new(),
            },
            outcome,
        }
    }

    /// The one JSON log line of this decision.
    pub fn log(&self) {
        let (outcome, detail) = match &self.outcome {
            Outcome::Done(id) => ("done", id.clone().unwrap_or_default()),
            Outcome::DryRun => ("dry-run", String::new()),
            Outcome::AlreadyDone(d) => ("already-done", d.clone()),
            Outcome::Fallback(p) => ("fallback", p.join(",")),
            Outcome::NotAttempted(d) => ("not-attempted", d.clone()),
            Outcome::Failed(e) => ("failed", e.clone()),
        };
        let instance = self.instance.as_deref().unwrap_or("");
        let pool = self.pool.as_deref().unwrap_or("");
        macro_rules! line {
            ($lvl:ident) => {
                $lvl!(
                    action = self.action,
                    reason = self.reason,
                    group = %self.group,
                    instance,
                    pool,
                    spot_price = self.spot_price,
                    on_demand_price = self.on_demand_price,
                    outcome,
                    detail = %detail,
                    candidates = %self.candidates.join(","),
                    "decision"
                )
            };
        }
        match &self.outcome {
            Outcome::Failed(_) => line!(error),
            Outcome::Fallback(_) | Outcome::NotAttempted(_) => line!(warn),
            _ => line!(info),
        }
    }
}

/// Log a group passed over: one line with the reason.
pub fn log_skip(s: &Skip) {
    let detail = s.detail.as_deref().unwrap_or("");
    if s.reason == Reason::InvalidConfig {
        error!(action = "skip", reason = s.reason.code(), group = %s.group, detail, "group skipped");
    } else {
        info!(action = "skip", reason = s.reason.code(), group = %s.group, detail, "group skipped");
    }
}

/// A group's counts after planning, for the summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupSummary {
    /// The group.
    pub group: String,
    /// Its counts.
    #[serde(flatten)]
    pub census: Census,
}

/// Everything one invocation did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CycleReport {
    /// Dry run: nothing was changed.
    pub dry_run: bool,
    /// Every decision, in order.
    pub actions: Vec<ActionReport>,
    /// Groups passed over.
    pub skipped: Vec<Skip>,
    /// Managed groups and their counts.
    pub groups: Vec<GroupSummary>,
    /// API calls per `service:Operation`.
    pub api_calls: BTreeMap<String, u64>,
    /// Where on-demand prices came from.
    pub price_source: Option<PriceSource>,
    /// Where the cycle's time went.
    pub timings: Timings,
    /// Metrics per group.
    #[serde(skip)]
    pub metrics: Vec<GroupMetrics>,
}

/// Wall time of each phase of a cycle, milliseconds. Planning is pure computation on one
/// thread, so its wall time is its CPU time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Timings {
    /// Reading the region (groups, instances, prices).
    pub read_ms: f64,
    /// Planning every group.
    pub plan_ms: f64,
    /// Acting on the groups: each acting group's preflight reads (instance refresh,
    /// termination protection) and its actions, groups overlapped, token-bucket waits included.
    pub execute_ms: f64,
    /// The whole cycle.
    pub total_ms: f64,
}

impl Timings {
    /// Milliseconds since `start`.
    pub fn since(start: std::time::Instant) -> f64 {
        start.elapsed().as_secs_f64() * 1e3
    }
}

impl CycleReport {
    /// Print the metrics as EMF lines on stdout, where Lambda's log capture finds them.
    pub fn print_emf(&self, timestamp_ms: i64) {
        for m in &self.metrics {
            println!("{}", m.emf_line(timestamp_ms));
        }
    }

    /// Mutating calls made, from `api_calls`.
    pub fn mutating_calls(&self) -> u64 {
        self.api_calls
            .iter()
            .filter(|(op, _)| spotswap_core::ops::is_mutating(op))
            .map(|(_, n)| n)
            .sum()
    }
}

/// One of our own events for EventBridge.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notification {
    /// `Spotswap Swap Completed`, …
    pub detail_type: &'static str,
    /// The detail object.
    pub detail: serde_json::Value,
}

/// Detail-type of a completed swap.
pub const SWAP_COMPLETED: &str = "Spotswap Swap Completed";
/// Detail-type of a fallback to on-demand.
pub const FALLBACK: &str = "Spotswap Fallback To On-Demand";
/// Detail-type of a sheltered group.
pub const GROUP_SHELTERED: &str = "Spotswap Group Sheltered";
/// Detail-type of a reaped orphan.
pub const ORPHAN_REAPED: &str = "Spotswap Orphan Reaped";

impl Notification {
    /// The event for a reported action, if it is one users hear about.
    pub fn for_action(a: &ActionReport, instances: Vec<String>, pools: Vec<String>) -> Option<Self> {
        let detail_type = match (&a.outcome, a.action, a.reason) {
            (Outcome::Fallback(_), _, _) => FALLBACK,
            (Outcome::Done(_), "retire", "ReplacementInService") => SWAP_COMPLETED,
            (Outcome::Done(_), "terminate", _) => ORPHAN_REAPED,
            _ => return None,
        };
        Some(Self {
            detail_type,
            detail: json!({
                "group": a.group,
                "instances": instances,
                "pools": pools,
                "reason": a.reason,
                "spot_price": a.spot_price,
                "on_demand_price": a.on_demand_price,
            }),
        })
    }
}

/// Publish our events to EventBridge, 10 to a call. Best-effort: a failure is a WARN line,
/// never an error of the invocation.
pub async fn publish(aws: &Aws, bus: &str, events: &[Notification]) {
    if bus.is_empty() || events.is_empty() {
        return;
    }
    for chunk in events.chunks(10) {
        let entries = chunk
            .iter()
            .map(|n| {
                aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                    .source("spotswap")
                    .detail_type(n.detail_type)
                    .detail(n.detail.to_string())
                    .event_bus_name(bus)
                    .build()
            })
            .collect();
        match aws.events.put_events().set_entries(Some(entries)).send().await {
            Ok(r) if r.failed_entry_count() > 0 => {
                warn!(
                    reason = "PublishPartiallyFailed",
                    failed = r.failed_entry_count(),
                    "some events were not published"
                )
            }
            Ok(_) => {}
            Err(e) => warn!(
                reason = "PublishFailed",
                error = %aws_smithy_types::error::display::DisplayErrorContext(&e),
                "events not published"
            ),
        }
    }
}
