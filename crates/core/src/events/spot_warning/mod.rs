//! `EC2 Spot Instance Interruption Warning`: get replacement capacity going at once, then
//! record the interruption (pool cooldown, the group's interruption list, shelter).
//!
//! The decision comes in two parts because the replacement must wait for nothing it does not
//! need. [`decide_spot_warning`] needs only the instance (its tags, one of which names a
//! replacement attached in its place), its membership and the group's tags, and whether the
//! group has a terminating lifecycle hook: three reads in two round trips. [`decide_records`]
//! needs the
//! group's spot count, which takes a DescribeInstances of the members, so it is read after the
//! replacement has been requested.

use serde::{Deserialize, Serialize};

use super::{screen, BadConfig, EventSnapshot, InstanceId};
use crate::action::{Action, ActionKind, Reason};
use crate::model::{GroupSnapshot, Pool};
use crate::plan::Settings;
use crate::policy::Policy;
use crate::records::{interruption_counts_with, interruptions_with, GroupRecords};
use crate::tags;
use crate::time::Timestamp;
use std::collections::BTreeMap;

/// What EC2 will do to the instance two minutes after the warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InstanceAction {
    /// The instance will be terminated.
    Terminate,
    /// The instance will be stopped (the reaper terminates it once detached).
    Stop,
    /// The instance will hibernate (the reaper terminates it once detached).
    Hibernate,
}

/// `detail` of `EC2 Spot Instance Interruption Warning`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct SpotInterruptionDetail {
    /// The instance to be interrupted.
    pub instance_id: InstanceId,
    /// What EC2 will do to it.
    pub instance_action: InstanceAction,
}

/// Least interruptions in the last hour that shelter a group, whatever its size.
pub const SHELTER_MIN_INTERRUPTIONS: usize = 2;

/// The first part: request replacement capacity and mark the instance, or a no-op.
///
/// - With a terminating lifecycle hook: `TerminateInGroup { decrement: false }`, so the hook
///   drains the instance while the group launches its replacement.
/// - Without: `Detach { decrement: false }`. The group launches a replacement from its own
///   launch template (on-demand: the fallback), and the instance leaves the load balancers now
///   instead of at its death.
///
/// Then `TagDetached`: `spotswap:detached-at` marks the delivery as handled (a duplicate is a
/// no-op) and starts the reaper's clock for `stop` and `hibernate`.
///
/// One exception keeps desired capacity where the user set it: the interrupted instance is a
/// swap's replacement (ours, `spotswap:replaces`) whose original is still a member. Our attach
/// raised desired by one and the original's retire, which gives it back, has not run; replacing
/// the instance would leave the group one instance larger for good. It leaves with
/// `decrement: true` instead (reason `ReplacementInterrupted`): the original keeps serving, the
/// group stays at the desired capacity the swap began with, and the rebalancer starts the swap
/// again later, in another pool.
///
/// Its mirror is the same: the interrupted instance is a swap's original and our replacement
/// for it is already attached (the original's own `spotswap:replaced-by` names a member, or
/// `replaced_by` lists one). It too leaves with `decrement: true` (reason
/// `OriginalAlreadyReplaced`): the replacement serves in its place, and the group stays at the
/// desired capacity the swap began with.
///
/// The instance action does not change the decision: a stopped or hibernated instance is as
/// lost to the group as a terminated one.
pub fn decide_spot_warning(
    detail: &SpotInterruptionDetail,
    snap: &EventSnapshot,
    settings: &Settings,
    _now: Timestamp,
) -> Vec<Action> {
    let id = detail.instance_id.as_str();
    // The replacement is safety, not configuration: a bad tag value does not stop it.
    let target = match screen(id, snap, settings, BadConfig::Defaults) {
        Ok(t) => t,
        Err(noop) => return vec![noop],
    };
    let group = target.group.name.as_str();
    let pool = target.membership.pool.clone();
    let interrupted_replacement = replaces_a_serving_original(target.group, snap.ec2.as_ref());
    let replaced_original = replaced_by_a_serving_launch(target.group, id, &snap.replaced_by)
        || named_replacement_serves(target.group, snap.ec2.as_ref());
    let decrement = interrupted_replacement || replaced_original;
    let replacement = if target.group.has_terminating_hook == Some(true) {
        ActionKind::TerminateInGroup {
            instance: id.to_string(),
            decrement,
        }
    } else {
        ActionKind::Detach {
            instance: id.to_string(),
            decrement,
        }
    };
    let reason = if interrupted_replacement {
        Reason::ReplacementInterrupted
    } else if replaced_original {
        Reason::OriginalAlreadyReplaced
    } else {
        Reason::SpotInterruptionWarning
    };
    vec![
        Action::new(replacement, reason, group)
            .instance(id)
            .pool(pool.clone()),
        Action::new(
            ActionKind::TagDetached {
                instance: id.to_string(),
                group: group.to_string(),
            },
            Reason::SpotInterruptionWarning,
            group,
        )
        .instance(id)
        .pool(pool),
    ]
}

/// True when `instance` is our launch for `group` whose original is still a member that has
/// not started leaving: the swap's retire (the decrement) is still to come.
fn replaces_a_serving_original(group: &GroupSnapshot, instance: Option<&crate::model::Instance>) -> bool {
    let Some(i) = instance else { return false };
    i.is_launch_for(&group.name)
        && i.replaces().is_some_and(|original| {
            group
                .members
                .iter()
                .any(|m| m.id == original && m.state != crate::model::MemberState::Leaving)
        })
}

/// True when one of our launches for `group` replacing `instance` is already attached and not
/// leaving: the swap's attach raised desired by one and its retire, the decrement, is still to
/// come (found by chaos seed 27).
fn replaced_by_a_serving_launch(
    group: &GroupSnapshot,
    instance: &str,
    launches: &[crate::model::Instance],
) -> bool {
    launches.iter().any(|l| {
        l.is_launch_for(&group.name)
            && l.replaces() == Some(instance)
            && group
                .members
                .iter()
                .any(|m| m.id == l.id && m.state != crate::model::MemberState::Leaving)
    })
}

/// True when `instance` names its replacement (`spotswap:replaced-by`, written just before the
/// attach) and that launch is a member of `group` that is not leaving: the same state as
/// [`replaced_by_a_serving_launch`], read from the instance itself, so the handler needs no
/// look-up of our launches before the replacement request. A launch names itself (the Attach
/// stage writes the same tags on the original and the launch, [`crate::records::swap_tags`]):
/// that names no replacement.
fn named_replacement_serves(group: &GroupSnapshot, instance: Option<&crate::model::Instance>) -> bool {
    let Some((me, launch)) = instance.and_then(|i| Some((i.id.as_str(), i.tag(tags::REPLACED_BY)?))) else {
        return false;
    };
    if launch == me {
        return false;
    }
    group
        .members
        .iter()
        .any(|m| m.id == launch && m.state != crate::model::MemberState::Leaving)
}

/// The second part, once replacement capacity is requested: one record action for the group.
///
/// - The pool goes into cooldown until `now + cooldown-minutes` (an existing later cooldown is
///   kept; `0` minutes writes none).
/// - The instance joins `spotswap:interruptions` (a duplicate keeps its first time).
/// - If interruptions in the last hour reach `shelter-percent` of `spot_count` (the group's
///   spot members, the interrupted one included) and at least
///   [`SHELTER_MIN_INTERRUPTIONS`], the group is sheltered until the cooldown ends.
///
/// Reason `InterruptionBurst` when this interruption starts a shelter (the one users are told
/// about), `PoolInterrupted` otherwise, an extended shelter included.
pub fn decide_records(
    instance: &str,
    group: &GroupSnapshot,
    pool: &Pool,
    spot_count: u32,
    policy: &Policy,
    now: Timestamp,
) -> Action {
    let records = GroupRecords::from_tags(&group.tags);
    let minutes = i64::from(policy.cooldown_minutes);
    let until = now.plus_minutes(minutes);
    let cooldown_until = (minutes > 0).then(|| {
        records
            .cooldowns
            .get(pool)
            .copied()
            .filter(|&u| u > until)
            .unwrap_or(until)
    });
    let duplicate = records.interruptions.contains_key(instance);
    let interruptions = interruptions_with(&records.interruptions, instance, now);
    let counts = interruption_counts_with(&records.interruption_counts, !duplicate, now);
    // The counts hold every interruption of the last hour; the list only the newest few (it
    // told a duplicate delivery, and a lost concurrent write, apart).
    let recent = GroupRecords::from_tags(&BTreeMap::from([
        (tags::INTERRUPTIONS.to_string(), interruptions.clone()),
        (tags::INTERRUPTION_COUNTS.to_string(), counts.clone()),
    ]))
    .interruptions_last_hour(now);
    let burst = shelter_reached(recent, spot_count, policy.shelter_percent);
    let was_sheltered = records.sheltered(now);
    let sheltered_until =
        (burst && minutes > 0).then(|| records.sheltered_until.filter(|&u| u > until).unwrap_or(until));
    let reason = if sheltered_until.is_some() && !was_sheltered {
        Reason::InterruptionBurst
    } else {
        Reason::PoolInterrupted
    };
    Action::new(
        ActionKind::RecordInterruption {
            pool: pool.clone(),
            cooldown_until,
            interruptions,
            counts,
            sheltered_until,
        },
        reason,
        &group.name,
    )
    .instance(instance)
    .pool(pool.clone())
}

/// True when `recent` interruptions reach `percent` of `spot_count`, and at least
/// [`SHELTER_MIN_INTERRUPTIONS`].
pub fn shelter_reached(recent: usize, spot_count: u32, percent: u32) -> bool {
    recent >= SHELTER_MIN_INTERRUPTIONS && recent as u64 * 100 >= u64::from(spot_count) * u64::from(percent)
}

#[cfg(test)]
mod tests;
