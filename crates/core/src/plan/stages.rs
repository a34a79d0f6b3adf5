//! The swap stage machine: Launch → Attach → Retire, one stage per cycle, read from the tags on
//! our launches, never from memory; and the MaxSize raise and restore around the attaches.

use std::collections::BTreeSet;

use super::blockers::SwapStep;
use super::index::Launches;
use crate::action::{Action, ActionKind, Reason};
use crate::candidates::PoolCounts;
use crate::model::{GroupSnapshot, Instance, InstanceState, MemberState};
use crate::tags;
use crate::time::Timestamp;

/// Where one swap stands after this plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SwapState {
    /// Still needs a later step.
    InFlight,
    /// Complete or abandoned: nothing more to do.
    Settled,
}

/// The swaps of `group` still in flight: the ids of the instances being replaced.
///
/// The one notion of "in flight", shared by the rebalancer and the reaper: a swap is in flight
/// until the stage machine finds it complete or abandoned. `launches` must come from an index
/// of at least our launches (the reaper's snapshot holds only those; the originals are read
/// from the group's members).
pub fn swaps_in_flight(group: &GroupSnapshot, launches: &Launches<'_>, now: Timestamp) -> BTreeSet<String> {
    // Whether a swap is in flight does not depend on the group's capacity (that only decides
    // between a retire and a wait), so the count needs no instances here.
    let in_service = group.in_service().count() as u32;
    launches
        .iter()
        .filter(|(replaces, ls)| advance_swap(group, replaces, ls, in_service, now).1 == SwapState::InFlight)
        .map(|(replaces, _)| replaces.to_string())
        .collect()
}

/// Minutes a launch may take to pass its status checks (EC2's take a few): past them it is
/// ended and its pool marked. Below the reaper's orphan age (20 minutes at the least, 15), so
/// the cycle decides before the reaper would end it unmarked.
pub const STATUS_CHECK_MINUTES: i64 = 10;

/// How long a pool whose launch never passed its status checks is avoided.
pub const BAD_POOL_MINUTES: i64 = 60;

/// `spotswap:max-raised-to`, when it holds a number.
pub fn max_raised_to(group: &GroupSnapshot) -> Option<u32> {
    group.tag(tags::MAX_RAISED_TO).and_then(|v| v.trim().parse().ok())
}

/// True when MaxSize is outside what spotswap could have left it at, `spotswap:max-raised-from`
/// to `spotswap:max-raised-to`: its owner changed it meanwhile. Inside that range it is ours:
/// a stop between writing the record of a further raise and the raise itself leaves MaxSize
/// below the recorded `to` (chaos seed 59), and must not pass for the owner's change. A record
/// written before `max-raised-to` existed cannot tell, and is restored as before.
pub fn max_changed_by_owner(group: &GroupSnapshot) -> bool {
    match (max_raised_from(group), max_raised_to(group)) {
        (Some(from), Some(to)) => group.max_size > to || group.max_size < from,
        _ => false,
    }
}

/// `spotswap:max-raised-from`, when it holds a number.
pub fn max_raised_from(group: &GroupSnapshot) -> Option<u32> {
    group
        .tag(tags::MAX_RAISED_FROM)
        .and_then(|v| v.trim().parse().ok())
}

/// With no swap in flight: restore MaxSize from `spotswap:max-raised-from`, or wait while
/// desired is above the original MaxSize. `None` when nothing was raised.
pub fn max_restore(group: &GroupSnapshot) -> Option<Action> {
    let from = max_raised_from(group)?;
    if max_changed_by_owner(group) {
        // MaxSize belongs to its owner: someone set it since our raise. Keep their value and
        // forget ours.
        return Some(Action::new(
            ActionKind::ClearRecords {
                keys: vec![tags::MAX_RAISED_FROM.to_string(), tags::MAX_RAISED_TO.to_string()],
            },
            Reason::MaxSizeChangedByOwner,
            &group.name,
        ));
    }
    Some(if group.desired <= from {
        Action::new(
            ActionKind::RestoreMax { to: from },
            Reason::NoSwapInFlight,
            &group.name,
        )
    } else {
        Action::new(ActionKind::Wait, Reason::DesiredAboveOriginalMax, &group.name)
    })
}

/// Advance the swap of `replaces` one stage. Returns the actions, the swap's state, and the
/// launch kept when several replace the same instance.
pub(crate) fn advance_swap<'a>(
    group: &GroupSnapshot,
    replaces: &str,
    launches: &[&'a Instance],
    in_service: u32,
    now: Timestamp,
) -> (Vec<Action>, SwapState, Option<&'a Instance>) {
    let name = group.name.as_str();
    let mut actions = Vec::new();
    let attached_member = |i: &Instance| {
        group
            .member(&i.id)
            .filter(|m| m.state != MemberState::Leaving)
            .cloned()
    };

    // Keep one launch: the lowest-id attached one, else the lowest-id unattached one. Every
    // concurrent cycle seeing the same set picks the same one.
    let mut sorted: Vec<&Instance> = launches.to_vec();
    sorted.sort_by(|a, b| a.id.cmp(&b.id));
    let keep = sorted
        .iter()
        .copied()
        .find(|i| attached_member(i).is_some())
        .or_else(|| sorted.iter().copied().find(|i| group.member(&i.id).is_none()));
    let Some(keep) = keep else {
        // every launch is leaving the group: nothing to steer
        return (actions, SwapState::Settled, None);
    };
    // An attached duplicate is retired only in favour of a kept launch that is InService and
    // healthy: retiring it for one still Pending, or unhealthy, would trade a serving instance
    // for one that is not.
    let keep_ready = attached_member(keep).is_some_and(|m| m.state == MemberState::InService && m.healthy);
    for extra in sorted.iter().filter(|i| i.id != keep.id) {
        let action = match attached_member(extra) {
            Some(_) if keep_ready && in_service >= group.desired => ActionKind::Retire {
                instance: extra.id.clone(),
                replacement: keep.id.clone(),
            },
            Some(_) => ActionKind::Wait,
            None if group.member(&extra.id).is_none() => ActionKind::TerminateLaunch {
                instance: extra.id.clone(),
            },
            None => ActionKind::Wait,
        };
        actions.push(
            Action::new(action, Reason::DuplicateLaunch, name)
                .instance(&extra.id)
                .pool(extra.pool()),
        );
    }

    let original = group.member(replaces).filter(|m| m.state != MemberState::Leaving);
    let on = |kind: ActionKind, reason: Reason| {
        Action::new(kind, reason, name)
            .instance(&keep.id)
            .pool(keep.pool())
    };

    match attached_member(keep) {
        None => {
            if original.is_none() {
                actions.push(on(
                    ActionKind::TerminateLaunch {
                        instance: keep.id.clone(),
                    },
                    Reason::ReplacedInstanceGone,
                ));
                return (actions, SwapState::Settled, Some(keep));
            }
            let step = match keep.state {
                InstanceState::Pending => on(ActionKind::Wait, Reason::WaitingForLaunch),
                InstanceState::Stopped | InstanceState::Gone => {
                    actions.push(on(
                        ActionKind::TerminateLaunch {
                            instance: keep.id.clone(),
                        },
                        Reason::LaunchFailed,
                    ));
                    return (actions, SwapState::Settled, Some(keep));
                }
                InstanceState::Running if keep.status_ok == Some(true) => on(
                    ActionKind::Attach {
                        instance: keep.id.clone(),
                        replaces: replaces.to_string(),
                        batched: keep.tag(tags::BATCH).is_some(),
                    },
                    Reason::ReplacementReady,
                ),
                InstanceState::Running if now.secs_since(keep.launched_at()) > STATUS_CHECK_MINUTES * 60 => {
                    // Never passed its checks: the pool is bad for now. Mark it first (a stop
                    // after the mark leaves a launch the next cycle ends), then end the launch,
                    // or the reaper would end it and the next swap land in the same pool, every
                    // 20 minutes, for ever.
                    actions.push(on(
                        ActionKind::MarkPools {
                            pools: vec![keep.pool()],
                            until: now.plus_minutes(BAD_POOL_MINUTES),
                        },
                        Reason::StatusChecksFailed,
                    ));
                    actions.push(on(
                        ActionKind::TerminateLaunch {
                            instance: keep.id.clone(),
                        },
                        Reason::StatusChecksFailed,
                    ));
                    return (actions, SwapState::Settled, Some(keep));
                }
                InstanceState::Running => on(ActionKind::Wait, Reason::WaitingForStatusChecks),
            };
            actions.push(step);
            (actions, SwapState::InFlight, Some(keep))
        }
        Some(member) => {
            if original.is_none() {
                return (actions, SwapState::Settled, Some(keep));
            }
            if member.state != MemberState::InService || !member.healthy {
                actions.push(on(ActionKind::Wait, Reason::WaitingForInService));
                return (actions, SwapState::InFlight, Some(keep));
            }
            let Some(attached_at) = keep.attached_at() else {
                actions.push(on(
                    ActionKind::MarkAttached {
                        instance: keep.id.clone(),
                    },
                    Reason::AttachedAtMissing,
                ));
                return (actions, SwapState::InFlight, Some(keep));
            };
            let ready_at = attached_at.plus_secs(i64::from(group.health_check_grace_secs));
            let step = if now < ready_at {
                on(ActionKind::Wait, Reason::WaitingForGracePeriod)
            } else if in_service < group.desired {
                on(ActionKind::Wait, Reason::GroupBelowCapacity)
            } else {
                Action::new(
                    ActionKind::Retire {
                        instance: replaces.to_string(),
                        replacement: keep.id.clone(),
                    },
                    Reason::ReplacementInService,
                    name,
                )
                .instance(replaces)
                .pool(keep.pool())
            };
            actions.push(step);
            (actions, SwapState::InFlight, Some(keep))
        }
    }
}

/// Every swap of one group, advanced one stage: what [`advance_all`] found.
#[derive(Debug, Default)]
pub(crate) struct Advanced<'a> {
    /// The stages' actions except the attaches, in the order of the instances replaced.
    pub actions: Vec<Action>,
    /// The attaches, held back until MaxSize is known to fit them.
    pub attaches: Vec<Action>,
    /// The instances whose swap is still in flight.
    pub replacing: BTreeSet<&'a str>,
    /// The pools the kept launches of swaps in flight will land in, while not yet attached:
    /// counted for the diversification cap.
    pub counts: PoolCounts,
    /// On-demand launches of swaps in flight (restoring the floor) not yet InService in the
    /// group: on-demand capacity on its way, in units ([`GroupSnapshot::units`]).
    pub od_arriving: u32,
    /// Swaps in flight whose launch is attached: each raised desired by its launch's units
    /// (one, without weights) until its retire.
    pub attached: u32,
    /// The units of this cycle's attaches: what MaxSize must make room for.
    pub attach_units: u32,
}

/// Advance each swap of `group` one stage ([`advance_swap`]).
pub(crate) fn advance_all<'a>(
    group: &GroupSnapshot,
    launches: &'a Launches<'_>,
    in_service: u32,
    now: Timestamp,
) -> Advanced<'a> {
    let mut out = Advanced::default();
    for (replaces, ls) in launches {
        let (actions, state, kept) = advance_swap(group, replaces, ls, in_service, now);
        let units = kept.map_or(1, |k| group.units_of(k));
        for a in actions.into_iter().map(|a| held_by_suspension(group, a)) {
            if matches!(a.kind, ActionKind::Attach { .. }) {
                out.attach_units += units;
                out.attaches.push(a);
            } else {
                out.actions.push(a);
            }
        }
        if state == SwapState::InFlight {
            out.replacing.insert(replaces);
            if kept.is_some_and(|k| {
                group
                    .member(&k.id)
                    .is_some_and(|m| m.state != MemberState::Leaving)
            }) {
                out.attached += units;
            }
            match kept {
                Some(k) if k.lifecycle == crate::model::Lifecycle::OnDemand => {
                    let in_service = group
                        .member(&k.id)
                        .is_some_and(|m| m.state == MemberState::InService);
                    if !in_service {
                        out.od_arriving += units;
                    }
                }
                // an unattached spot launch will land in its pool: count it for the cap
                Some(k) if group.member(&k.id).is_none() => out.counts.add(k.pool()),
                _ => {}
            }
        }
    }
    out
}

/// An attach or a retire becomes a Wait (`ProcessesSuspended`) while a process it needs is
/// suspended on the group: the owner stopped it on purpose, and the swap resumes with them.
fn held_by_suspension(group: &GroupSnapshot, a: Action) -> Action {
    let step = match a.kind {
        ActionKind::Attach { .. } => SwapStep::Attach,
        ActionKind::Retire { .. } => SwapStep::Retire,
        _ => return a,
    };
    if super::blockers::suspended_for(group, step).is_empty() {
        return a;
    }
    Action {
        kind: ActionKind::Wait,
        reason: Reason::ProcessesSuspended,
        ..a
    }
}

/// MaxSize around this cycle's attaches: raised first when they would not fit (recording the
/// original MaxSize, or keeping the one already recorded), then the attaches; with no attach
/// and no swap in flight, restored ([`max_restore`]).
///
/// `attach_units` is what the attaches add to desired: one each without weights, each
/// launch's units in a weighted group (MaxSize is in the same units as desired).
pub(crate) fn max_size_step(
    group: &GroupSnapshot,
    attaches: Vec<Action>,
    attach_units: u32,
    nothing_in_flight: bool,
) -> Vec<Action> {
    let mut out = Vec::new();
    if !attaches.is_empty() {
        let needed = group.desired + attach_units;
        if needed > group.max_size {
            // Raised again: keep the recorded original, unless the owner has set MaxSize since
            // (then theirs is the one to come back to).
            let from = max_raised_from(group)
                .filter(|_| !max_changed_by_owner(group))
                .unwrap_or(group.max_size);
            out.push(Action::new(
                ActionKind::RaiseMax { from, to: needed },
                Reason::MaxSizeAtDesired,
                &group.name,
            ));
        }
        out.extend(attaches);
    } else if nothing_in_flight {
        out.extend(max_restore(group));
    }
    out
}
