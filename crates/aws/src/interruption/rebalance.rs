//! A rebalance recommendation, or an AWS Health scheduled change, is not urgent: it reads the group's members, our launches and
//! the market (spot prices of the group's AZs, cached specs and on-demand prices) and runs the
//! Launch through the rebalancer's [`Executor`]. The rebalancer's stage machine attaches the
//! launch and retires the at-risk instance in later cycles.

use std::collections::BTreeSet;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use spotswap_core::events::{
    decide_rebalance, decide_scheduled, health, rebalance::triage, EventSnapshot, HealthDetail,
    RebalanceDetail,
};
use spotswap_core::{tags, Market};
use tracing::warn;

use super::report_noop;
use crate::execute::Executor;
use crate::report::Recorder;
use crate::snapshot::{
    describe_any_state, describe_instances, describe_membership, describe_named_groups,
    describe_tagged_instances, has_launching_hook, instance_refresh_in_progress, instance_types, spot_prices,
};
use crate::{prices, AdapterError, Aws, Config};

/// What asks for a proactive swap.
#[derive(Debug, Clone, Copy)]
pub(super) enum Proactive<'a> {
    /// A rebalance recommendation.
    Rebalance(&'a RebalanceDetail),
    /// An AWS Health scheduled change of the instance.
    Scheduled,
}

/// Handle a rebalance recommendation.
pub(super) async fn handle(
    aws: &Aws,
    config: &Config,
    executor: &Executor,
    event: &EventBridgeEvent<RebalanceDetail>,
    rec: &mut Recorder,
) -> Result<(), AdapterError> {
    let id = event.detail.instance_id.as_str();
    proactive(
        aws,
        config,
        executor,
        id,
        Proactive::Rebalance(&event.detail),
        rec,
    )
    .await
}

/// Handle an AWS Health event: an EC2 scheduled change gets a proactive swap of each affected
/// instance; any other Health event is a no-op (`NotScheduledChange`). Every instance is tried;
/// the first error is returned after the others.
pub(super) async fn handle_health(
    aws: &Aws,
    config: &Config,
    executor: &Executor,
    event: &EventBridgeEvent<HealthDetail>,
    rec: &mut Recorder,
) -> Result<(), AdapterError> {
    if !event.detail.is_ec2_scheduled_change() {
        let noop = spotswap_core::Action::new(
            spotswap_core::ActionKind::Ignore,
            spotswap_core::Reason::NotScheduledChange,
            "",
        );
        rec.record(
            &noop,
            spotswap_core::Outcome::Done(Some(format!(
                "{} {}",
                event.detail.service, event.detail.event_type_category
            ))),
        );
        return Ok(());
    }
    let resources = event.resources.clone().unwrap_or_default();
    let mut first_error = None;
    for id in event.detail.instances(&resources) {
        if let Err(e) = proactive(aws, config, executor, id.as_str(), Proactive::Scheduled, rec).await {
            warn!(instance = %id, error = %e, "scheduled change not handled");
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// A proactive swap of `id`: the small snapshot, the core's triage, the group's reads, the
/// core's decision, the Launch.
async fn proactive(
    aws: &Aws,
    config: &Config,
    executor: &Executor,
    id: &str,
    kind: Proactive<'_>,
    rec: &mut Recorder,
) -> Result<(), AdapterError> {
    let now = executor.now();
    let mut snap = match describe_membership(aws, id).await? {
        None => EventSnapshot {
            membership: None,
            ec2: describe_any_state(aws, id).await?,
            group: None,
            replaced_by: Vec::new(),
        },
        Some(m) => {
            let mut group = describe_named_groups(aws, std::slice::from_ref(&m.group))
                .await?
                .into_iter()
                .next();
            if let Some(g) = group.as_mut() {
                crate::launch_config::resolve(aws, std::slice::from_mut(g)).await;
            }
            EventSnapshot {
                membership: Some(m),
                ec2: None,
                group,
                // the swap decision reads every launch of the group itself
                replaced_by: Vec::new(),
            }
        }
    };
    let triaged = match kind {
        Proactive::Rebalance(detail) => triage(detail, &snap, &config.settings, now).map(|_| ()),
        Proactive::Scheduled => health::triage(id, &snap, &config.settings).map(|_| ()),
    };
    if let Err(noop) = triaged {
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
    let stack = group.tag(tags::AWS_CFN_STACK_NAME).map(str::to_string);
    let (mut instances, ours, specs, od, spot, refresh, stack_status, launch_hook) = tokio::try_join!(
        describe_instances(aws, &members),
        describe_tagged_instances(aws, tags::GROUP, &group_tag),
        instance_types(aws),
        async { Ok(prices::on_demand_prices(aws, config.price_file.as_deref()).await) },
        spot_prices(aws, now, &azs),
        async { Ok(instance_refresh_in_progress(aws, &name).await) },
        async {
            Ok(match &stack {
                Some(s) => Some((s.as_str(), crate::snapshot::stack_status(aws, s).await)),
                None => None,
            })
        },
        async { Ok(has_launching_hook(aws, &name).await) },
    )?;
    group.has_launching_hook = Some(launch_hook);
    // As the rebalancer's preflight: a stack that does not exist or cannot be read is taken as
    // not updating.
    group.stack_status = match stack_status {
        Some((_, Ok(status))) => status,
        Some((stack, Err(e))) => {
            warn!(reason = "StackStatusUnknown", group = %name, stack, error = %e, "stack status unknown; taken as not updating");
            None
        }
        None => None,
    };
    // As the rebalancer's preflight: an unknown refresh state must not stop every swap. EC2
    // termination protection is not read: it does not stop Auto Scaling (docs/design.md).
    group.instance_refresh_in_progress = Some(refresh.unwrap_or_else(|e| {
        warn!(reason = "InstanceRefreshUnknown", group = %name, error = %e, "instance refresh state unknown; proceeding");
        false
    }));
    instances.extend(ours);
    let market = Market {
        types: specs,
        spot_prices: spot,
        on_demand_prices: od.by_type,
        price_source: od.source,
    };
    let actions = match kind {
        Proactive::Rebalance(detail) => {
            decide_rebalance(detail, &snap, &instances, &market, &config.settings, now)
        }
        Proactive::Scheduled => decide_scheduled(id, &snap, &instances, &market, &config.settings, now),
    };
    // One stop for the whole list: a launch never follows its template's failed creation.
    let mut stop = None;
    for action in &actions {
        if !action.kind.is_mutating() {
            report_noop(rec, action, &snap, config);
            continue;
        }
        let outcome = executor.run_one(action, &mut stop).await;
        rec.record(&executor.as_launched(action, &outcome), outcome);
    }
    Ok(())
}
