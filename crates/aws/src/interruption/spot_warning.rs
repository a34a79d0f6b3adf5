//! A spot interruption warning gives two minutes, so replacement capacity is requested after
//! three reads in two round trips (DESIGN.md §5: at most three calls):
//!
//! 1. DescribeInstances(instance): its type, AZ, our tags (`spotswap:replaced-by`: is a swap's
//!    replacement of it already attached?) and `aws:autoscaling:groupName`;
//! 2. at once: DescribeAutoScalingGroups(group) (membership, tags: managed? policy) and
//!    DescribeLifecycleHooks(group) (should a terminating hook drain it?);
//! 3. DetachInstances, or TerminateInstanceInAutoScalingGroup when there is a hook.
//!
//! Everything else comes after: the `spotswap:detached-at` tag, the group's spot count (a
//! DescribeInstances of its members) and the records (one CreateOrUpdateTags). Interruptions
//! come in bursts, one Lambda invocation each, all rewriting the same `spotswap:interruptions`
//! tag; the records are therefore written from a fresh read and checked again after
//! [`RECORD_SETTLE`], and merged and rewritten when a concurrent writer overwrote them.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use spotswap_core::events::{
    decide_records, decide_spot_warning, EventSnapshot, Membership, SpotInterruptionDetail,
};
use spotswap_core::{tags, Lifecycle, MemberState, Outcome, Pool};
use std::time::Duration;
use tracing::{info, warn};

use super::{report_noop, run_one};
use crate::execute::Executor;
use crate::report::Recorder;
use crate::snapshot::{
    describe_any_state, describe_instances, describe_membership, describe_named_groups, has_terminating_hook,
};
use crate::{AdapterError, Aws, Config};

/// How long after writing the records they are read back. A concurrent writer reads, decides
/// and writes within a few hundred milliseconds; one that read before our write has written
/// by then, and its overwrite is seen and merged.
pub const RECORD_SETTLE: Duration = Duration::from_secs(1);

/// Most attempts at writing the records.
const RECORD_ATTEMPTS: usize = 3;

/// Handle a spot interruption warning.
pub(super) async fn handle(
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

    // --- replacement capacity: the fourth call at most
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

    let policy = spotswap_core::events::warning_policy(group, &config.settings)
        .ok_or_else(|| AdapterError::Invalid(format!("{} is not managed", group.name)))?;
    if let Some(e) = spotswap_core::events::config_error(group, &config.settings) {
        // Handled with the stack's defaults; the bad tag is still named, once, as an error.
        rec.skip(&spotswap_core::Skip {
            group: group.name.clone(),
            reason: spotswap_core::Reason::InvalidConfig,
            detail: Some(e.to_string()),
        });
    }
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
/// members), then at once its group and the group's lifecycle hooks. A swap's replacement
/// attached in its place is named by the instance's own `spotswap:replaced-by`. The group's own member list decides membership: an
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
    let (groups, hook) = tokio::join!(
        describe_named_groups(aws, &names),
        has_terminating_hook(aws, &group_name),
    );
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
        // The instance's own `spotswap:replaced-by` tells whether a swap's replacement
        // already serves in its place.
        replaced_by: Vec::new(),
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
