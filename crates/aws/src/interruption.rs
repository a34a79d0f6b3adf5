//! The interruption handler's workflow: one EventBridge event → a small snapshot → the core's
//! decision → idempotent execution → one log line per decision, EMF, our own events.
//!
//! A spot warning gives two minutes, so replacement capacity is requested after four reads in
//! two round trips:
//!
//! 1. DescribeInstances(instance): its type, AZ, our tags and `aws:autoscaling:groupName`;
//! 2. at once: DescribeAutoScalingGroups(group) (membership, tags: managed? policy),
//!    DescribeLifecycleHooks(group) (should a terminating hook drain it?) and DescribeInstances
//!    of our launches tagged `spotswap:replaces` = instance (is a swap of it already attached?);
//! 3. DetachInstances, or TerminateInstanceInAutoScalingGroup when there is a hook.
//!
//! Everything else comes after: the `spotswap:detached-at` tag, the group's spot count (a
//! DescribeInstances of its members) and the records (one CreateOrUpdateTags). Interruptions
//! come in bursts, one Lambda invocation each, all rewriting the same `spotswap:interruptions`
//! tag; the records are therefore written from a fresh read and checked again after
//! [`RECORD_SETTLE`], and merged and rewritten when a concurrent writer overwrote them.
//!
//! A rebalance recommendation is not urgent: it reads the group's members, our launches and
//! the market (spot prices of the group's AZs, cached specs and on-demand prices) and runs the
//! Launch through the rebalancer's [`Executor`]. The rebalancer's stage machine attaches the
//! launch and retires the at-risk instance in later cycles.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use aws_sdk_ec2::types::Filter;
use serde::Serialize;
use serde_json::{json, Value};
use spotswap_core::events::{
    self, decide_rebalance, decide_records, decide_spot_warning, rebalance::triage, EventSnapshot,
    Membership, ParsedEvent, RebalanceDetail, SpotInterruptionDetail,
};
use spotswap_core::{
    tags, Action, ActionKind, Instance, Lifecycle, Market, MemberState, Outcome, Pool, Reason, Skip,
    Timestamp,
};
use tracing::{info, warn};

use crate::execute::{Executor, MutationBudget};
use crate::report::{ActionReport, Recorder};
use crate::snapshot::{
    describe_instances, describe_named_groups, describe_tagged_instances, instance_from_sdk,
    instance_refresh_in_progress, instance_types, spot_prices, termination_protected,
};
use crate::throttle::Paced;
use crate::workflow::now as wall_clock;
use crate::{prices, AdapterError, Aws, Config};

/// The lifecycle transition of a terminating hook.
const TERMINATING: &str = "autoscaling:EC2_INSTANCE_TERMINATING";

/// The calls that request replacement capacity, as the call log names them.
const REPLACEMENT_CALLS: [&str; 3] = [
    "autoscaling:DetachInstances",
    "autoscaling:TerminateInstanceInAutoScalingGroup",
    "ec2:CreateFleet",
];

/// How long after writing the records they are read back. A concurrent writer reads, decides
/// and writes within a few hundred milliseconds; one that read before our write has written
/// by then, and its overwrite is seen and merged.
pub const RECORD_SETTLE: Duration = Duration::from_secs(1);

/// Most attempts at writing the records.
const RECORD_ATTEMPTS: usize = 3;

/// Per-invocation options.
#[derive(Debug, Clone, Default)]
pub struct EventOptions {
    /// Decide and log, change nothing.
    pub dry_run: bool,
    /// At most this many mutating calls.
    pub budget: Option<MutationBudget>,
    /// The time to act at; now when `None`.
    pub now: Option<Timestamp>,
}

/// What one event did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventReport {
    /// The event's `detail-type`.
    pub detail_type: String,
    /// The event's `id`.
    pub event_id: Option<String>,
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
    let mut rec = Recorder::default();
    let result = match parsed {
        ParsedEvent::SpotWarning(event) => spot_warning(aws, config, &executor, &event, &mut rec).await,
        ParsedEvent::Rebalance(event) => rebalance(aws, config, &executor, &event, &mut rec).await,
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

// ---------------------------------------------------------------------------------------------
// spot interruption warning
// ---------------------------------------------------------------------------------------------

async fn spot_warning(
    aws: &Aws,
    config: &Config,
    executor: &Executor,
    event: &EventBridgeEvent<SpotInterruptionDetail>,
    rec: &mut Recorder,
) -> Result<(), AdapterError> {
    let id = event.detail.instance_id.as_str();
    let now = executor.now();
    let snap = warning_snapshot(aws, id).await?;
    let actions = decide_spot_warning(&event.detail, &snap, &config.settings, now);
    let [replacement, tag] = actions.as_slice() else {
        for a in &actions {
            report_noop(rec, a, &snap, config);
        }
        return Ok(());
    };
    let (Some(membership), Some(group)) = (snap.membership.as_ref(), snap.group.as_ref()) else {
        return Err(AdapterError::Invalid("a replacement without a group".into()));
    };

    // --- replacement capacity: the fourth call
    let outcome = run_one(executor, replacement).await;
    match &outcome {
        Outcome::Done(_) | Outcome::DryRun => {
            rec.record(replacement, outcome.clone());
        }
        Outcome::Failed(err) => {
            // AWS refuses a second DetachInstances of an instance already detaching: a
            // concurrent delivery won. Only a fresh read tells that from a real failure.
            let again = describe_membership(aws, id).await?;
            if again.as_ref().is_some_and(|m| m.state == MemberState::InService) {
                rec.record(replacement, outcome.clone());
                return Err(AdapterError::Invalid(format!(
                    "replacement of {id} in {} failed: {err}",
                    group.name
                )));
            }
            rec.record(
                replacement,
                Outcome::AlreadyDone(format!("{id} left {} meanwhile", group.name)),
            );
            return Ok(());
        }
        Outcome::AlreadyDone(_) | Outcome::NotAttempted(_) | Outcome::Fallback(_) => {
            rec.record(replacement, outcome.clone());
            return Ok(());
        }
    }

    // --- after: the tag, the spot count, the records
    let tagged = run_one(executor, tag).await;
    rec.record(tag, tagged);

    let policy = spotswap_core::plan::policy_for(group, &config.settings)?
        .ok_or_else(|| AdapterError::Invalid(format!("{} is not managed", group.name)))?;
    let members: Vec<String> = group
        .members
        .iter()
        .filter(|m| matches!(m.state, MemberState::InService | MemberState::Pending))
        .map(|m| m.id.clone())
        .collect();
    record_interruption(
        aws,
        executor,
        id,
        &group.name,
        &membership.pool,
        &members,
        &policy,
        rec,
    )
    .await?;

    Ok(())
}

/// The reads before the replacement, in two round trips: the instance as EC2 sees it (its
/// type, AZ, our tags, and `aws:autoscaling:groupName`, which Auto Scaling puts on its
/// members), then at once its group, the group's lifecycle hooks, and our launches that
/// replace it (`spotswap:replaces`). The group's own member list decides membership: an
/// instance it does not list is a duplicate delivery or one we never knew (no mutation follows
/// either way). Our tags tell a swap's replacement whose original still serves (see
/// `decide_spot_warning`).
async fn warning_snapshot(aws: &Aws, id: &str) -> Result<EventSnapshot, AdapterError> {
    let ec2 = describe_any_state(aws, id).await?;
    let Some(group_name) = ec2
        .as_ref()
        .filter(|i| i.state != spotswap_core::InstanceState::Gone)
        .and_then(|i| i.tag(tags::AWS_ASG_NAME))
        .map(str::to_string)
    else {
        return Ok(EventSnapshot {
            membership: None,
            ec2,
            group: None,
            replaced_by: Vec::new(),
        });
    };
    let names = [group_name.clone()];
    let replaces = [id];
    let (groups, hook, replaced_by) = tokio::join!(
        describe_named_groups(aws, &names),
        has_terminating_hook(aws, &group_name),
        describe_tagged_instances(aws, tags::REPLACES, &replaces)
    );
    let replaced_by: Vec<Instance> = replaced_by?.into_values().collect();
    let mut group = groups?.into_iter().next();
    if let Some(g) = group.as_mut() {
        g.has_terminating_hook = match hook {
            Ok(h) => Some(h),
            Err(e) => {
                // Not knowing must not hold up the replacement: detach (the instance still
                // leaves its load balancers, with their deregistration delay).
                warn!(reason = "LifecycleHooksUnknown", group = %g.name, error = %e, "terminating hook unknown; detaching");
                None
            }
        };
    }
    let membership = match (&ec2, &group) {
        (Some(i), Some(g)) => g.members.iter().find(|m| m.id == id).map(|m| Membership {
            instance: id.to_string(),
            group: g.name.clone(),
            pool: i.pool(),
            state: m.state,
            lifecycle_state: format!("{:?}", m.state),
        }),
        _ => None,
    };
    let group = group.filter(|_| membership.is_some());
    Ok(EventSnapshot {
        membership,
        ec2,
        group,
        replaced_by,
    })
}

/// Write the records from a fresh read of the group; read them back after [`RECORD_SETTLE`];
/// merge and rewrite when a concurrent writer dropped this interruption. The last record
/// action is recorded (a burst that shelters the group tells users through its event).
#[allow(clippy::too_many_arguments)]
async fn record_interruption(
    aws: &Aws,
    executor: &Executor,
    id: &str,
    group: &str,
    pool: &Pool,
    members: &[String],
    policy: &spotswap_core::Policy,
    rec: &mut Recorder,
) -> Result<(), AdapterError> {
    let names = [group.to_string()];
    // The interrupted instance is still a member here: it is counted.
    let (instances, groups) = tokio::try_join!(
        describe_instances(aws, members),
        describe_named_groups(aws, &names)
    )?;
    let spot_count = instances
        .values()
        .filter(|i| i.lifecycle == Lifecycle::Spot)
        .count() as u32;
    let mut fresh = groups.into_iter().next();
    let mut last = None;
    for attempt in 1..=RECORD_ATTEMPTS {
        let Some(g) = fresh.as_ref() else {
            warn!(
                reason = "GroupGone",
                group,
                instance = id,
                "group gone before its records were written"
            );
            break;
        };
        let action = decide_records(id, g, pool, spot_count, policy, executor.now());
        let outcome = run_one(executor, &action).await;
        let written = matches!(outcome, Outcome::Done(_));
        last = Some((action, outcome));
        if !written || attempt == RECORD_ATTEMPTS {
            break;
        }
        tokio::time::sleep(RECORD_SETTLE).await;
        fresh = describe_named_groups(aws, &names).await?.into_iter().next();
        let listed = fresh
            .as_ref()
            .is_some_and(|g| spotswap_core::records::interruption_listed(&g.tags, id));
        if listed {
            break;
        }
        info!(
            reason = "RecordsOverwritten",
            group,
            instance = id,
            attempt,
            spot_count,
            "a concurrent writer dropped this interruption; merging"
        );
    }
    if let Some((action, outcome)) = last {
        rec.record(&action, outcome);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// rebalance recommendation
// ---------------------------------------------------------------------------------------------

async fn rebalance(
    aws: &Aws,
    config: &Config,
    executor: &Executor,
    event: &EventBridgeEvent<RebalanceDetail>,
    rec: &mut Recorder,
) -> Result<(), AdapterError> {
    let id = event.detail.instance_id.as_str();
    let now = executor.now();
    let mut snap = match describe_membership(aws, id).await? {
        None => EventSnapshot {
            membership: None,
            ec2: describe_any_state(aws, id).await?,
            group: None,
            replaced_by: Vec::new(),
        },
        Some(m) => {
            let group = describe_named_groups(aws, std::slice::from_ref(&m.group))
                .await?
                .into_iter()
                .next();
            EventSnapshot {
                membership: Some(m),
                ec2: None,
                group,
                // the swap decision reads every launch of the group itself
                replaced_by: Vec::new(),
            }
        }
    };
    if let Err(noop) = triage(&event.detail, &snap, &config.settings, now) {
        report_noop(rec, &noop, &snap, config);
        return Ok(());
    }
    let Some(group) = snap.group.as_mut() else {
        return Err(AdapterError::Invalid("triage passed without a group".into()));
    };
    let name = group.name.clone();
    let members: Vec<String> = group.members.iter().map(|m| m.id.clone()).collect();
    let azs: BTreeSet<String> = group.availability_zones.iter().cloned().collect();
    let group_tag = [name.as_str()];
    let (mut instances, ours, specs, od, spot, refresh, protected) = tokio::try_join!(
        describe_instances(aws, &members),
        describe_tagged_instances(aws, tags::GROUP, &group_tag),
        instance_types(aws),
        async { Ok(prices::on_demand_prices(aws, config.price_file.as_deref()).await) },
        spot_prices(aws, now, &azs),
        async { Ok(instance_refresh_in_progress(aws, &name).await) },
        async { Ok(termination_protected(aws, id).await) },
    )?;
    // As the rebalancer's preflight: an unknown refresh state must not stop every swap; an
    // unknown termination protection leaves the instance alone.
    group.instance_refresh_in_progress = Some(refresh.unwrap_or_else(|e| {
        warn!(reason = "InstanceRefreshUnknown", group = %name, error = %e, "instance refresh state unknown; proceeding");
        false
    }));
    instances.extend(ours);
    if let Some(i) = instances.get_mut(id) {
        i.termination_protected = Some(protected.unwrap_or_else(|e| {
            warn!(reason = "TerminationProtectionUnknown", group = %name, instance = id, error = %e, "skipping instance");
            true
        }));
    }
    let market = Market {
        types: specs,
        spot_prices: spot,
        on_demand_prices: od.by_type,
        price_source: od.source,
    };
    let actions = decide_rebalance(&event.detail, &snap, &instances, &market, &config.settings, now);
    for action in &actions {
        if !action.kind.is_mutating() {
            report_noop(rec, action, &snap, config);
            continue;
        }
        let outcome = run_one(executor, action).await;
        rec.record(action, outcome);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// reads and the executor
// ---------------------------------------------------------------------------------------------

async fn run_one(executor: &Executor, action: &Action) -> Outcome {
    executor.run_one(action, &mut None).await
}

/// The instance as its group lists it; `None` when no group does.
async fn describe_membership(aws: &Aws, id: &str) -> Result<Option<Membership>, AdapterError> {
    let resp = aws
        .asg
        .describe_auto_scaling_instances()
        .instance_ids(id)
        .send()
        .paced(aws, "autoscaling:DescribeAutoScalingInstances")
        .await?;
    Ok(resp
        .auto_scaling_instances()
        .iter()
        .find(|i| i.instance_id() == Some(id))
        .map(|i| {
            let lifecycle_state = i.lifecycle_state().unwrap_or_default().to_string();
            Membership {
                instance: id.to_string(),
                group: i.auto_scaling_group_name().unwrap_or_default().to_string(),
                pool: Pool::new(
                    i.instance_type().unwrap_or_default(),
                    i.availability_zone().unwrap_or_default(),
                ),
                state: MemberState::from_api(&lifecycle_state),
                lifecycle_state,
            }
        }))
}

/// Whether the group has a lifecycle hook on `autoscaling:EC2_INSTANCE_TERMINATING`.
async fn has_terminating_hook(aws: &Aws, group: &str) -> Result<bool, AdapterError> {
    let resp = aws
        .asg
        .describe_lifecycle_hooks()
        .auto_scaling_group_name(group)
        .send()
        .paced(aws, "autoscaling:DescribeLifecycleHooks")
        .await?;
    Ok(resp
        .lifecycle_hooks()
        .iter()
        .any(|h| h.lifecycle_transition() == Some(TERMINATING)))
}

/// One instance in any state, terminated included; `None` when EC2 does not know it. A filter
/// rather than `InstanceIds`, so an unknown id is an empty answer, not an error.
async fn describe_any_state(aws: &Aws, id: &str) -> Result<Option<Instance>, AdapterError> {
    let resp = aws
        .ec2
        .describe_instances()
        .filters(Filter::builder().name("instance-id").values(id).build())
        .send()
        .paced(aws, "ec2:DescribeInstances")
        .await?;
    Ok(resp
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .filter_map(instance_from_sdk)
        .find(|i| i.id == id))
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
            include_str!("../../../events/interruption-malformed.json"),
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
        let raw = include_str!("../../../events/interruption-other-detail-type.json");
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
