//! `AWS Health Event` of EC2's `scheduledChange` category (instance retirement, scheduled stop,
//! reboot or maintenance): start a proactive swap of each affected instance of a managed group,
//! spot or on-demand, so its replacement serves before the event's `startTime`.
//!
//! As for a rebalance recommendation, this module only decides the Launch: the launch is tagged
//! `spotswap:replaces=<affected instance>` and the rebalancer's stage machine attaches it and
//! retires the affected instance. A spot instance gets a spot replacement in any pool (the host
//! is retiring, not the pool); an on-demand instance the risk floor needs, or any instance of a
//! sheltered group, or one with no eligible spot pool, gets an on-demand replacement of its own
//! type in its own AZ: the instance is going away whatever we do, so capacity comes first.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::format_description::well_known::{Rfc2822, Rfc3339};
use time::OffsetDateTime;

use super::{ignore, screen, BadConfig, EventSnapshot, InstanceId};
use crate::action::{Action, Reason};
use crate::model::{Instance, Market};
use crate::plan::blockers::{group_blocker, launch_hook_blocker, stack_updating, swappable_template};
use crate::plan::due::forced_replacement;
use crate::plan::Settings;
use crate::records::GroupRecords;
use crate::time::Timestamp;

/// `detail-type` of an AWS Health event.
pub const AWS_HEALTH_EVENT: &str = "AWS Health Event";

/// One affected entity of a Health event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AffectedEntity {
    /// The entity: an instance id for EC2's instance events.
    pub entity_value: String,
}

/// `detail` of an `AWS Health Event` (the fields spotswap reads; others are ignored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthDetail {
    /// The event's ARN: the same for every delivery of one event.
    pub event_arn: String,
    /// The affected service: `EC2` for the events acted on.
    pub service: String,
    /// `AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED`, `AWS_EC2_INSTANCE_STOP_SCHEDULED`, ….
    pub event_type_code: String,
    /// `scheduledChange` for the events acted on (also `issue`, `accountNotification`, …).
    pub event_type_category: String,
    /// When the change starts: RFC 2822 (`Fri, 27 Jan 2023 06:02:51 GMT`, as Health sends it) or
    /// RFC 3339.
    #[serde(default)]
    pub start_time: Option<String>,
    /// The affected instances.
    #[serde(default)]
    pub affected_entities: Vec<AffectedEntity>,
}

impl HealthDetail {
    /// True for an EC2 scheduled change: the only Health events acted on.
    pub fn is_ec2_scheduled_change(&self) -> bool {
        self.service == "EC2" && self.event_type_category == "scheduledChange"
    }

    /// `startTime` as a timestamp; `None` when absent or in neither format.
    pub fn start(&self) -> Option<Timestamp> {
        let s = self.start_time.as_deref()?.trim();
        OffsetDateTime::parse(s, &Rfc2822)
            .or_else(|_| OffsetDateTime::parse(s, &Rfc3339))
            .ok()
            .map(|t| Timestamp::from_unix(t.unix_timestamp()))
    }

    /// The affected instance ids, from `affectedEntities` and the envelope's `resources`,
    /// each once, in order. Entities that are not instance ids are left out.
    pub fn instances(&self, resources: &[String]) -> Vec<InstanceId> {
        let mut out: Vec<InstanceId> = Vec::new();
        let all = self
            .affected_entities
            .iter()
            .map(|e| e.entity_value.as_str())
            .chain(resources.iter().map(String::as_str));
        for raw in all {
            if let Ok(id) = InstanceId::try_from(raw.to_string()) {
                if !out.contains(&id) {
                    out.push(id);
                }
            }
        }
        out
    }
}

/// The checks that need only the instance's membership and its group: everything [`screen`]
/// rejects (a bad tag is `InvalidConfig`: this starts a new swap), a group the rebalancer would
/// skip ([`group_blocker`], [`stack_updating`], [`launch_hook_blocker`]), and an instance
/// protected from scale-in (`InstanceProtected`).
/// Neither a pause nor a window holds it: the change happens whatever we do.
#[allow(clippy::result_large_err)]
pub fn triage<'a>(
    id: &str,
    snap: &'a EventSnapshot,
    settings: &Settings,
) -> Result<super::Target<'a>, Action> {
    let target = screen(id, snap, settings, BadConfig::Ignore)?;
    let group = target.group;
    let noop = |reason| Err(ignore(reason, &group.name, id, Some(&target.membership.pool)));
    let blocked = group_blocker(group)
        .or_else(|| stack_updating(group))
        .or_else(|| launch_hook_blocker(group, &target.policy));
    if let Some((reason, _)) = blocked {
        return noop(reason);
    }
    if group.member(id).is_some_and(|m| m.protected_from_scale_in) {
        return noop(Reason::InstanceProtected);
    }
    Ok(target)
}

/// Decide on one affected instance: a Launch with reason `ScheduledChange`, or a no-op with its
/// reason. `instances` holds the group's members and our launches for the group; `market` the
/// group's AZs. Beyond [`triage`]: the instance must still run and not be
/// termination-protected; a live launch already replacing it makes this a duplicate
/// (`AlreadyHandled`, so a second delivery, or the rebalancer's own pickup, adds nothing).
// Both variants of the launch results are Actions; boxing buys nothing here.
#[allow(clippy::result_large_err)]
pub fn decide_scheduled(
    id: &str,
    snap: &EventSnapshot,
    instances: &BTreeMap<String, Instance>,
    market: &Market,
    settings: &Settings,
    now: Timestamp,
) -> Vec<Action> {
    let target = match triage(id, snap, settings) {
        Ok(t) => t,
        Err(noop) => return vec![noop],
    };
    let group = target.group;
    let pool = &target.membership.pool;
    let Ok(template) = swappable_template(group) else {
        return vec![ignore(Reason::NoLaunchTemplate, &group.name, id, Some(pool))];
    };
    // Spot or on-demand alike: the change takes either.
    let original = match super::proactive_original(group, id, pool, instances, |_| None) {
        Ok(i) => i,
        Err(noop) => return vec![noop],
    };

    let records = GroupRecords::from_tags(&group.tags);
    let forced = forced_replacement(
        group,
        template,
        &target.policy,
        &records,
        instances,
        original,
        market,
        now,
        Reason::ScheduledChange,
        // The handler reads no commitments (their reads are the rebalancer's, cached per warm
        // container): a Health event's replacement is judged by the floor. The rebalancer,
        // which picks up the same scheduled event itself, consults the ledger.
        None,
    );
    match forced {
        Ok(launch) => {
            let mut actions = vec![launch];
            crate::launch_config::ensure_template(group, &mut actions);
            actions
        }
        Err(wait) => vec![wait],
    }
}

#[cfg(test)]
#[path = "health_tests.rs"]
mod tests;
