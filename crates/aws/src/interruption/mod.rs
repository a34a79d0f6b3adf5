//! The interruption handler's workflow: one EventBridge event → a small snapshot → the core's
//! decision → idempotent execution → one log line per decision, EMF, our own events.
//!
//! - [`spot_warning`]: a spot interruption warning (two minutes to get capacity);
//! - [`rebalance`]: a rebalance recommendation, or an AWS Health scheduled change (a swap
//!   through the rebalancer's executor).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{json, Value};
use spotswap_core::events::{self, EventSnapshot, ParsedEvent};
use spotswap_core::{Action, ActionKind, Outcome, Reason, Skip, Timestamp};
use tracing::info;

use crate::execute::{Executor, MutationBudget};
use crate::report::{ActionReport, Correlation, Recorder};
use crate::workflow::now as wall_clock;
use crate::{AdapterError, Aws, Config};

mod rebalance;
mod spot_warning;

pub use spot_warning::RECORD_SETTLE;

/// The calls that request replacement capacity, as the call log names them.
const REPLACEMENT_CALLS: [&str; 3] = [
    "autoscaling:DetachInstances",
    "autoscaling:TerminateInstanceInAutoScalingGroup",
    "ec2:CreateFleet",
];

/// Per-invocation options.
#[derive(Debug, Clone, Default)]
pub struct EventOptions {
    /// Decide and log, change nothing.
    pub dry_run: bool,
    /// At most this many mutating calls.
    pub budget: Option<MutationBudget>,
    /// The time to act at; now when `None`.
    pub now: Option<Timestamp>,
    /// The Lambda invocation's request id, on every decision line with the event's id.
    pub request_id: Option<String>,
}

/// What one event did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventReport {
    /// The event's `detail-type`.
    pub detail_type: String,
    /// The event's `id`.
    pub event_id: Option<String>,
    /// The ids on its decision lines: the event's id (or a fresh one) and the request id.
    #[serde(flatten)]
    pub correlation: Correlation,
    /// The instance the event is about.
    pub instance: Option<String>,
    /// Dry run: nothing was changed.
    pub dry_run: bool,
    /// Every decision, in order, as logged.
    pub decisions: Vec<ActionReport>,
    /// The group passed over, with the bad tag named (`InvalidConfig`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<Skip>,
    /// AWS calls sent before the replacement request (DetachInstances,
    /// TerminateInstanceInAutoScalingGroup or CreateFleet); `None` when none was sent.
    pub calls_before_replacement: Option<usize>,
    /// API calls per `service:Operation`.
    pub api_calls: BTreeMap<String, u64>,
    /// Metrics of the group, when the event changed something.
    #[serde(skip)]
    pub metrics: Vec<spotswap_core::metrics::GroupMetrics>,
}

impl EventReport {
    fn new(parsed: &ParsedEvent, dry_run: bool) -> Self {
        Self {
            detail_type: parsed.detail_type().to_string(),
            event_id: parsed.id().map(str::to_string),
            correlation: Correlation::for_event(parsed.id(), None),
            instance: parsed.instance_id().map(str::to_string),
            dry_run,
            decisions: Vec::new(),
            skipped: Vec::new(),
            calls_before_replacement: None,
            api_calls: BTreeMap::new(),
            metrics: Vec::new(),
        }
    }

    /// True when the event was acted on (replacement requested or swap launched), not ignored.
    pub fn acted(&self) -> bool {
        self.decisions.iter().any(|d| {
            matches!(
                d.kind,
                ActionKind::Detach { .. } | ActionKind::TerminateInGroup { .. } | ActionKind::Launch(_)
            ) && matches!(
                d.outcome,
                Outcome::Done(_) | Outcome::DryRun | Outcome::Fallback(_)
            )
        })
    }

    /// Mutating calls made, from `api_calls`.
    pub fn mutating_calls(&self) -> u64 {
        crate::report::mutating_calls(&self.api_calls)
    }

    /// Print the metrics as EMF lines on stdout, where Lambda's log capture finds them.
    pub fn print_emf(&self, timestamp_ms: i64) {
        crate::report::print_emf(&self.metrics, timestamp_ms);
    }

    /// A short JSON summary: what the Lambda function answers.
    pub fn summary(&self) -> Value {
        json!({
            "detail_type": self.detail_type,
            "event_id": self.event_id,
            "cycle_id": self.correlation.cycle_id,
            "request_id": self.correlation.request_id,
            "instance": self.instance,
            "dry_run": self.dry_run,
            "decisions": self.decisions.iter().map(|d| {
                let full = serde_json::to_value(d).unwrap_or_default();
                json!({
                    "action": full["action"],
                    "reason": full["reason"],
                    "group": full["group"],
                    "pool": full["pool"],
                    "outcome": full["outcome"],
                    "detail": full.get("detail"),
                })
            }).collect::<Vec<_>>(),
            "calls_before_replacement": self.calls_before_replacement,
            "mutating_calls": self.mutating_calls(),
        })
    }
}

/// Handle one event given as JSON text (the CLI's `handle-event`). Invalid input is
/// [`AdapterError::Event`], before any AWS call.
pub async fn handle_event(
    aws: &Aws,
    config: &Config,
    raw: &str,
    opts: EventOptions,
) -> Result<EventReport, AdapterError> {
    let parsed = events::parse_event(raw)?;
    handle_parsed(aws, config, parsed, opts).await
}

/// Handle one event already read as JSON (the Lambda payload).
pub async fn handle_value(
    aws: &Aws,
    config: &Config,
    value: Value,
    opts: EventOptions,
) -> Result<EventReport, AdapterError> {
    let parsed = events::parse_value(value)?;
    handle_parsed(aws, config, parsed, opts).await
}

/// Handle one parsed event.
pub async fn handle_parsed(
    aws: &Aws,
    config: &Config,
    parsed: ParsedEvent,
    opts: EventOptions,
) -> Result<EventReport, AdapterError> {
    let now = opts.now.unwrap_or_else(wall_clock);
    let dry_run = opts.dry_run || config.dry_run;
    let mut report = EventReport::new(&parsed, dry_run);
    info!(
        detail_type = %report.detail_type,
        id = report.event_id.as_deref().unwrap_or(""),
        instance = report.instance.as_deref().unwrap_or(""),
        "event received"
    );
    let log_start = aws.api_call_log().len();
    let executor = Executor::new(aws, now, dry_run, opts.budget.clone());
    let mut rec = Recorder::new(Correlation::for_event(
        report.event_id.as_deref(),
        opts.request_id.as_deref(),
    ));
    report.correlation = rec.correlation.clone();
    let result = match parsed {
        ParsedEvent::SpotWarning(event) => {
            spot_warning::handle(aws, config, &executor, &event, &mut rec).await
        }
        ParsedEvent::Rebalance(event) => rebalance::handle(aws, config, &executor, &event, &mut rec).await,
        ParsedEvent::Health(event) => {
            rebalance::handle_health(aws, config, &executor, &event, &mut rec).await
        }
        ParsedEvent::Other(detail_type) => {
            rec.record(
                &Action::new(ActionKind::Ignore, Reason::IgnoredDetailType, ""),
                Outcome::Done(Some(detail_type)),
            );
            Ok(())
        }
    };
    rec.publish(aws, &config.event_bus, dry_run).await;
    report.metrics = rec.metrics();
    report.decisions = rec.actions;
    report.skipped = rec.skipped;
    let log = aws.api_call_log();
    report.calls_before_replacement = log
        .iter()
        .skip(log_start)
        .position(|op| REPLACEMENT_CALLS.contains(&op.as_str()));
    report.api_calls = aws.api_calls();
    info!(
        detail_type = %report.detail_type,
        decisions = report.decisions.len(),
        calls_before_replacement = report.calls_before_replacement,
        mutating_calls = report.mutating_calls(),
        dry_run,
        "event finished"
    );
    result.map(|()| report)
}

/// Report a no-op: one line. A bad tag is logged as the rebalancer logs it: one ERROR line
/// naming the group, the tag and the value.
fn report_noop(rec: &mut Recorder, action: &Action, snap: &EventSnapshot, config: &Config) {
    if action.reason == Reason::InvalidConfig {
        let detail = snap
            .group
            .as_ref()
            .and_then(|g| events::config_error(g, &config.settings))
            .map(|e| e.to_string());
        rec.skip(&Skip {
            group: action.group.clone(),
            reason: Reason::InvalidConfig,
            detail,
        });
        rec.record(action, Outcome::NotAttempted(Reason::InvalidConfig));
    } else {
        rec.record(action, Outcome::Done(None));
    }
}

/// Run one action on its own: an event's steps are judged one by one, not stopped as a group.
async fn run_one(executor: &Executor, action: &Action) -> Outcome {
    executor.run_one(action, &mut None).await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An adapter whose every call would fail fast: nothing listens on port 9. Bad input must
    /// never get as far as a call.
    async fn offline() -> Aws {
        let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url("http://127.0.0.1:9")
            .credentials_provider(aws_sdk_ec2::config::Credentials::new(
                "x", "y", None, None, "test",
            ))
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .load()
            .await;
        Aws::from_conf(&conf)
    }

    #[tokio::test]
    async fn bad_input_is_an_event_error_before_any_call() {
        let aws = offline().await;
        for raw in [
            "",
            "{",
            "[]",
            r#"{"detail-type":"EC2 Spot Instance Interruption Warning","source":"aws.ec2","detail":{}}"#,
            include_str!("../../../../events/interruption-malformed.json"),
        ] {
            let err = handle_event(&aws, &Config::default(), raw, EventOptions::default())
                .await
                .unwrap_err();
            assert!(matches!(err, AdapterError::Event(_)), "{raw:?}: {err}");
        }
        assert!(aws.api_calls().is_empty(), "{:?}", aws.api_calls());
    }

    #[tokio::test]
    async fn another_detail_type_is_ignored_without_a_call() {
        let aws = offline().await;
        let raw = include_str!("../../../../events/interruption-other-detail-type.json");
        let report = handle_event(&aws, &Config::default(), raw, EventOptions::default())
            .await
            .expect("ignored, not an error");
        assert_eq!(report.decisions.len(), 1);
        assert_eq!(report.decisions[0].reason, Reason::IgnoredDetailType);
        assert!(!report.acted());
        assert_eq!(report.calls_before_replacement, None);
        assert!(aws.api_calls().is_empty());
    }
}
