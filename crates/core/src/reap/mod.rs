//! The orphan reaper's decisions: pure, same input, same plan.
//!
//! It touches only what carries our tags, and never an instance that is a member of a group:
//! - our launches (`spotswap:group`) outside every group, once older than the orphan age;
//! - detached interrupted instances (`spotswap:detached-at`) still running or stopped
//!   [`DETACHED_GRACE_MINUTES`] after the detach (the `stop` and `hibernate` interruption
//!   actions leave them alive);
//! - `spotswap:max-raised-from` on a managed group with no swap in flight: MaxSize goes back;
//! - expired or unreadable cooldown, no-capacity, shelter and interruption records.
//!
//! The orphan age is what keeps the reaper from racing the rebalancer: a launch younger than it
//! may still be attached by the next cycle, so it is never reaped, whatever else is true.
//!
//! The adapter runs the plan's actions one by one through a [`ReapGate`]: a group's MaxSize
//! restore waits for the next pass while one of its orphans could not be terminated.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::action::{Action, ActionKind, Reason, Skip};
use crate::model::{GroupSnapshot, Instance, InstanceState};
use crate::plan::{
    max_raised_from, max_restore, policy_for, swaps_in_flight, LaunchIndex, Launches, Settings,
};
use crate::records::GroupRecords;
use crate::tags;
use crate::time::Timestamp;

/// Minutes a detached interrupted instance is left alone before it is terminated. A spot
/// instance interrupted with `terminate` is gone after 2 minutes; one still here after 10 was
/// stopped or hibernated, and would come back when capacity returns.
pub const DETACHED_GRACE_MINUTES: i64 = 10;

/// What one reaper pass does.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ReapPlan {
    /// Instance decisions (terminations and waits) first, then each group's MaxSize restore and
    /// record clean-up. A group's actions come after the terminations they depend on.
    pub actions: Vec<Action>,
    /// Groups carrying our records that the pass leaves alone, with the reason.
    pub skipped: Vec<Skip>,
}

impl ReapPlan {
    /// The instances this plan terminates.
    pub fn terminations(&self) -> impl Iterator<Item = &str> {
        self.actions.iter().filter_map(|a| match &a.kind {
            ActionKind::Terminate { instance } => Some(instance.as_str()),
            _ => None,
        })
    }
}

/// The one dependency between a reaper pass's actions, kept while they run one by one.
///
/// Each action runs on its own, so one instance's termination protection does not keep the
/// other orphans alive. But a group's MaxSize restore assumed its orphaned launches gone: when
/// one of them was not terminated (failed, or not attempted), the restore waits for the next
/// pass.
///
/// ```text
/// let mut gate = ReapGate::default();
/// for action in &plan.actions {
///     let outcome = match gate.blocks(action) {
///         Some(reason) => Outcome::NotAttempted(reason),
///         None => run(action),
///     };
///     gate.note(action, outcome.succeeded());
/// }
/// ```
#[derive(Debug, Default)]
pub struct ReapGate {
    /// Groups with an orphan of theirs left alive this pass.
    orphan_left: BTreeSet<String>,
}

impl ReapGate {
    /// Why `action` must not run now: `EarlierStepFailed` for the MaxSize restore of a group
    /// with an orphan left; `None` for everything else.
    pub fn blocks(&self, action: &Action) -> Option<Reason> {
        (matches!(action.kind, ActionKind::RestoreMax { .. }) && self.orphan_left.contains(&action.group))
            .then_some(Reason::EarlierStepFailed)
    }

    /// Record how `action` went: `succeeded` when it was done (or, in a dry run, would have
    /// been). An `Orphaned` termination that did not succeed leaves an orphan in its group.
    pub fn note(&mut self, action: &Action, succeeded: bool) {
        if action.reason == Reason::Orphaned && !succeeded {
            self.orphan_left.insert(action.group.clone());
        }
    }
}

/// Plan one reaper pass.
///
/// `groups` must be every group of the region, managed or not: membership in any of them
/// protects an instance. `instances` are the instances carrying our tags (others are ignored).
pub fn plan_reap(
    groups: &[GroupSnapshot],
    instances: &BTreeMap<String, Instance>,
    settings: &Settings,
    now: Timestamp,
    orphan_minutes: u32,
) -> ReapPlan {
    let mut plan = ReapPlan::default();
    let members: BTreeSet<&str> = groups
        .iter()
        .flat_map(|g| g.members.iter().map(|m| m.id.as_str()))
        .collect();
    for inst in instances.values() {
        if inst.is_alive() && !members.contains(inst.id.as_str()) {
            plan.actions.extend(instance_decision(inst, now, orphan_minutes));
        }
    }

    // A swap whose launch this pass reaps is abandoned: it does not hold MaxSize up.
    let reaped: BTreeSet<String> = plan.terminations().map(str::to_string).collect();
    let index = LaunchIndex::new(instances.values().filter(|i| !reaped.contains(&i.id)));
    for group in groups {
        group_decisions(group, index.of(&group.name), settings, now, &mut plan);
    }
    plan
}

/// The decision for one instance outside every group, if it carries our tags.
fn instance_decision(inst: &Instance, now: Timestamp, orphan_minutes: u32) -> Option<Action> {
    // A detached instance is governed by its detach time, even when we launched it: a spot
    // instance of ours interrupted an hour after launch still gets its 10 minutes.
    if let Some(value) = inst.tag(tags::DETACHED_AT) {
        let group = inst
            .tag(tags::DETACHED_FROM)
            .or_else(|| inst.launched_for())
            .unwrap_or_default();
        let on = |kind, reason| {
            Action::new(kind, reason, group)
                .instance(&inst.id)
                .pool(inst.pool())
        };
        let Some(at) = Timestamp::parse_rfc3339(value) else {
            return Some(on(ActionKind::Wait, Reason::InvalidConfig));
        };
        if now.secs_since(at) <= DETACHED_GRACE_MINUTES * 60 {
            return Some(on(ActionKind::Wait, Reason::WaitingForDetachedGrace));
        }
        return matches!(inst.state, InstanceState::Running | InstanceState::Stopped).then(|| {
            on(
                ActionKind::Terminate {
                    instance: inst.id.clone(),
                },
                Reason::DetachedStillAlive,
            )
        });
    }
    let group = inst.launched_for()?;
    let on = |kind, reason| {
        Action::new(kind, reason, group)
            .instance(&inst.id)
            .pool(inst.pool())
    };
    let age = now.secs_since(inst.launched_at());
    Some(if age >= i64::from(orphan_minutes) * 60 {
        on(
            ActionKind::Terminate {
                instance: inst.id.clone(),
            },
            Reason::Orphaned,
        )
    } else {
        on(ActionKind::Wait, Reason::WaitingForOrphanAge)
    })
}

/// MaxSize restore and record clean-up for one group.
fn group_decisions(
    group: &GroupSnapshot,
    launches: &Launches<'_>,
    settings: &Settings,
    now: Timestamp,
    plan: &mut ReapPlan,
) {
    let name = group.name.as_str();
    let raised = group.tag(tags::MAX_RAISED_FROM).is_some();
    let expired = GroupRecords::from_tags(&group.tags).expired_keys(now);
    if !raised && expired.is_empty() {
        return;
    }
    let skip = |reason, detail| Skip {
        group: name.to_string(),
        reason,
        detail,
    };
    match policy_for(group, settings) {
        Ok(Some(_)) => {}
        Ok(None) => return plan.skipped.push(skip(Reason::NotManaged, None)),
        Err(e) => {
            return plan
                .skipped
                .push(skip(Reason::InvalidConfig, Some(e.to_string())))
        }
    }
    if let Some(status) = &group.status {
        return plan
            .skipped
            .push(skip(Reason::GroupUpdating, Some(status.clone())));
    }
    if raised {
        if max_raised_from(group).is_none() {
            plan.actions
                .push(Action::new(ActionKind::Wait, Reason::InvalidConfig, name));
        } else if let Some(original) = swaps_in_flight(group, launches, now).first() {
            plan.actions
                .push(Action::new(ActionKind::Wait, Reason::SwapInFlight, name).instance(original));
        } else {
            plan.actions.extend(max_restore(group));
        }
    }
    if !expired.is_empty() {
        plan.actions.push(Action::new(
            ActionKind::ClearRecords { keys: expired },
            Reason::RecordExpired,
            name,
        ));
    }
}

#[cfg(test)]
mod tests;
