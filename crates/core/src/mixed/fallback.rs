//! The on-demand fallback AWS lacks: when a mixed-instances group cannot get spot, its own
//! launches are made on-demand (`OnDemandPercentageAboveBaseCapacity` raised to 100, the
//! owner's value recorded in `spotswap:distribution-raised-from`); after the cooldown, the
//! owner's value comes back exactly.
//!
//! "Cannot get spot" ([`cannot_get_spot`]), the first that holds:
//! 1. the group is sheltered (`spotswap:sheltered-until`: an interruption burst, or an
//!    earlier raise's cooldown);
//! 2. a scaling activity of the group failed for spot capacity
//!    ([`spot_capacity_failure`]) in the last [`SPOT_FAILURE_MINUTES`] (read only while the
//!    group is below its desired capacity);
//! 3. the group is below its desired capacity and every spot pool it may launch in (its
//!    policy's types that spotswap's globs allow, in its AZs) is marked: no capacity, or
//!    cooling down after an interruption.
//!
//! A raise for 2 or 3 also shelters the group for its `spotswap:cooldown-minutes`: the
//! cooldown before the restore, during which no swap to spot starts. With a cooldown of 0
//! the restore comes on the first cycle where none holds.

use serde::Serialize;

use crate::action::{Action, ActionKind, Reason};
use crate::error::ConfigError;
use crate::model::{GroupSnapshot, Instance, Pool};
use crate::policy::Policy;
use crate::records::GroupRecords;
use crate::tags;
use crate::time::Timestamp;

use super::RAISED_PERCENT;

/// How long a scaling activity that failed for spot capacity says the group cannot get spot.
pub const SPOT_FAILURE_MINUTES: i64 = 10;

/// Why a mixed-instances group cannot get spot now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NoSpot {
    /// Sheltered until then.
    Sheltered(Timestamp),
    /// A scaling activity failed for spot capacity then.
    SpotLaunchFailed(Timestamp),
    /// Below desired, and every one of these spot pools of the group is marked.
    PoolsWithoutCapacity(Vec<Pool>),
}

/// True for a scaling activity that failed for want of spot capacity: `StatusCode` `Failed`
/// and a message (its `StatusMessage` or description) about spot capacity, as AWS writes
/// them: "Could not launch Spot Instances. InsufficientInstanceCapacity - There is no Spot
/// capacity available that matches your request."
pub fn spot_capacity_failure(status: &str, message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    status.eq_ignore_ascii_case("Failed")
        && m.contains("spot")
        && (m.contains("insufficientinstancecapacity") || m.contains("capacity"))
}

/// Why `group` cannot get spot at `now` (see the module's rule), or `None` when it can.
/// `policy` is the group's effective policy ([`super::effective_policy`]): its globs narrow
/// the pools of rule 3.
pub fn cannot_get_spot(
    group: &GroupSnapshot,
    instances: &std::collections::BTreeMap<String, Instance>,
    policy: &Policy,
    now: Timestamp,
) -> Option<NoSpot> {
    let mixed = group.mixed.as_ref()?;
    let records = GroupRecords::from_tags(&group.tags);
    if let Some(until) = records.sheltered_until.filter(|_| records.sheltered(now)) {
        return Some(NoSpot::Sheltered(until));
    }
    if let Some(at) = group.spot_failed_at {
        let age = now.secs_since(at);
        // A clock a little ahead of ours still counts; an old failure does not.
        if (-300..SPOT_FAILURE_MINUTES * 60).contains(&age) {
            return Some(NoSpot::SpotLaunchFailed(at));
        }
    }
    if group.in_service_units(instances) >= group.desired {
        return None;
    }
    let pools: Vec<Pool> = mixed
        .types()
        .into_iter()
        .filter(|t| policy.type_allowed(t))
        .flat_map(|t| {
            group
                .availability_zones
                .iter()
                .map(move |az| Pool::new(t.clone(), az))
        })
        .collect();
    let all_marked = !pools.is_empty() && pools.iter().all(|p| records.pool_block(p, now).is_some());
    all_marked.then_some(NoSpot::PoolsWithoutCapacity(pools))
}

/// The fallback step of a mixed-instances group this cycle, if any: raise its distribution
/// to on-demand while it cannot get spot (`DistributionRaised`; [`cannot_get_spot`] says
/// why), restore the owner's value once it can (`DistributionRestored`), or drop a record
/// whose value the owner has since changed (`DistributionChangedByOwner`).
///
/// Idempotent across a stop between its calls: a record without the raise is raised again
/// (keeping the first record; its shelter holds it raised); a restore without the record's
/// removal restores the same value again and removes it. A value the owner sets while the
/// distribution is raised is theirs: the record goes (`DistributionChangedByOwner`), and a
/// raise still needed records the new value, so the restore brings back the owner's latest.
pub fn distribution_step(
    group: &GroupSnapshot,
    instances: &std::collections::BTreeMap<String, Instance>,
    policy: &Policy,
    now: Timestamp,
) -> Result<Option<Action>, ConfigError> {
    let Some(mixed) = &group.mixed else {
        return Ok(None);
    };
    let recorded = raised_from(group)?;
    let current = mixed.on_demand_percent.unwrap_or(100);
    let name = group.name.as_str();
    let changed_by_owner = || {
        let kind = ActionKind::ClearRecords {
            keys: vec![tags::DISTRIBUTION_RAISED_FROM.to_string()],
        };
        Ok(Some(Action::new(kind, Reason::DistributionChangedByOwner, name)))
    };
    if let Some(why) = cannot_get_spot(group, instances, policy, now) {
        if current >= RAISED_PERCENT {
            return Ok(None);
        }
        // Raised, then set by its owner to a value of their own while it still cannot get
        // spot: the owner's value is the one to come back, so the old record goes, and the
        // next cycle raises again recording the new value. (The record's own value is a stop
        // between the record and the raise: raised again, keeping the record.)
        if recorded.is_some_and(|r| r != current) {
            return changed_by_owner();
        }
        // The cooldown before the restore: a shelter, unless the group is sheltered already.
        let minutes = i64::from(policy.cooldown_minutes);
        let sheltered_until =
            (!matches!(why, NoSpot::Sheltered(_)) && minutes > 0).then(|| now.plus_minutes(minutes));
        let kind = ActionKind::SetDistribution {
            on_demand_percent: RAISED_PERCENT,
            record: Some(recorded.unwrap_or(current)),
            sheltered_until,
            because: Some(why),
        };
        return Ok(Some(Action::new(kind, Reason::DistributionRaised, name)));
    }
    let Some(owners) = recorded else {
        return Ok(None);
    };
    if current == RAISED_PERCENT || current == owners {
        let kind = ActionKind::SetDistribution {
            on_demand_percent: owners,
            record: None,
            sheltered_until: None,
            because: None,
        };
        return Ok(Some(Action::new(kind, Reason::DistributionRestored, name)));
    }
    changed_by_owner()
}

/// The value of `spotswap:distribution-raised-from` (`on-demand-percent=<0..=100>`), `None`
/// when absent, or the configuration error naming the tag and the value.
pub fn raised_from(group: &GroupSnapshot) -> Result<Option<u32>, ConfigError> {
    let Some(v) = group.tag(tags::DISTRIBUTION_RAISED_FROM) else {
        return Ok(None);
    };
    v.strip_prefix("on-demand-percent=")
        .and_then(|n| n.parse::<u32>().ok())
        .filter(|n| *n <= 100 && !v.contains('+'))
        .map(Some)
        .ok_or_else(|| {
            ConfigError::invalid(
                tags::DISTRIBUTION_RAISED_FROM,
                v,
                "expected on-demand-percent=<0 to 100>",
            )
        })
}

/// The tag value recording `percent`.
pub fn raised_from_value(percent: u32) -> String {
    format!("on-demand-percent={percent}")
}

#[cfg(test)]
mod tests;
