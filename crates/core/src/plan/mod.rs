//! The rebalancer's decisions for one cycle: pure, same input, same plan.
//!
//! For every group: first advance each swap in flight one stage (Launch → Attach → Retire),
//! from what the snapshot shows, then start new swaps for on-demand instances above the
//! risk floor. Swap state is read from tags on our launches (`spotswap:replaces`,
//! `spotswap:attached-at`), never from memory, so any cycle can pick up any swap.

pub mod blockers;

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::action::{Action, ActionKind, Candidate, LaunchSpec, Reason, Skip};
use crate::candidates::{candidates, PoolCounts, RankedPools, SearchContext};
use crate::model::{
    GroupSnapshot, Instance, InstanceState, Lifecycle, Market, Member, MemberState, RegionSnapshot,
};
use crate::policy::{is_managed, Mode, Policy};
use crate::records::GroupRecords;
use crate::tags;
use crate::time::Timestamp;

/// Cycle-wide settings, read once at start-up.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Settings {
    /// Opt-in or opt-out.
    pub mode: Mode,
    /// Defaults from the environment, under each group's tags.
    pub defaults: Policy,
}

/// Counts of one group, for metrics and the summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Census {
    /// DesiredCapacity.
    pub desired: u32,
    /// The risk floor.
    pub floor: u32,
    /// InService on-demand members.
    pub on_demand: u32,
    /// InService spot members.
    pub spot: u32,
    /// Σ (on-demand price − spot price) over spot members with both prices known, USD/hour.
    pub hourly_savings: f64,
}

/// The plan for one group.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupPlan {
    /// Group name.
    pub group: String,
    /// Actions in execution order.
    pub actions: Vec<Action>,
    /// Set when the group is passed over (in-flight swaps may still advance, as when sheltered).
    pub skip: Option<Skip>,
    /// Counts before the plan runs.
    pub census: Census,
}

impl GroupPlan {
    fn skipped(group: &str, reason: Reason, detail: Option<String>) -> Self {
        Self {
            group: group.to_string(),
            actions: Vec::new(),
            skip: Some(Skip {
                group: group.to_string(),
                reason,
                detail,
            }),
            census: Census::default(),
        }
    }
}

/// Plan every group of a snapshot.
///
/// Our launches are indexed by group once, so a cycle costs O(N log N) over the region's
/// instances, not O(groups × instances).
pub fn plan_cycle(snapshot: &RegionSnapshot, settings: &Settings) -> Vec<GroupPlan> {
    let index = LaunchIndex::new(snapshot.instances.values());
    snapshot
        .groups
        .iter()
        .map(|group| match policy_for(group, settings) {
            Ok(Some(policy)) => plan_group_in(
                group,
                &snapshot.instances,
                index.of(&group.name),
                &snapshot.market,
                &policy,
                snapshot.now,
            ),
            Ok(None) => GroupPlan::skipped(&group.name, Reason::NotManaged, None),
            Err(err) => GroupPlan::skipped(&group.name, Reason::InvalidConfig, Some(err.to_string())),
        })
        .collect()
}

/// The group's policy, `None` when it is not managed, or the configuration error.
pub fn policy_for(group: &GroupSnapshot, settings: &Settings) -> Result<Option<Policy>, crate::ConfigError> {
    if !is_managed(&group.tags, settings.mode)? {
        return Ok(None);
    }
    Policy::from_tags(&group.tags, &settings.defaults).map(Some)
}

/// Where one swap stands after this plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SwapState {
    /// Still needs a later step.
    InFlight,
    /// Complete or abandoned: nothing more to do.
    Settled,
}

/// Decide what to do for one group in this cycle. Pure: same input, same plan.
pub fn plan_group(
    group: &GroupSnapshot,
    instances: &BTreeMap<String, Instance>,
    market: &Market,
    policy: &Policy,
    now: Timestamp,
) -> GroupPlan {
    let index = LaunchIndex::new(instances.values());
    plan_group_in(group, instances, index.of(&group.name), market, policy, now)
}

/// [`plan_group`] with the group's launches already indexed.
fn plan_group_in(
    group: &GroupSnapshot,
    instances: &BTreeMap<String, Instance>,
    launches: &Launches<'_>,
    market: &Market,
    policy: &Policy,
    now: Timestamp,
) -> GroupPlan {
    let name = group.name.as_str();
    let template = match blockers::swappable_template(group) {
        Ok(t) => t,
        Err((reason, detail)) => return GroupPlan::skipped(name, reason, detail),
    };

    let records = GroupRecords::from_tags(&group.tags);
    let census = census(group, instances, market, policy);
    let mut plan = GroupPlan {
        group: name.to_string(),
        actions: Vec::new(),
        skip: None,
        census,
    };
    let in_service = group.in_service().count() as u32;
    let at_capacity = in_service >= group.desired;

    // --- advance swaps in flight
    let mut in_flight: BTreeSet<&str> = BTreeSet::new();
    let mut attaches: Vec<Action> = Vec::new();
    let mut counts = PoolCounts::default();
    for (replaces, ls) in launches {
        let (actions, state, kept) = advance_swap(group, replaces, ls, in_service, now);
        for a in actions {
            if matches!(a.kind, ActionKind::Attach { .. }) {
                attaches.push(a);
            } else {
                plan.actions.push(a);
            }
        }
        if state == SwapState::InFlight {
            in_flight.insert(replaces);
            // an unattached launch will land in its pool: count it for the cap
            if let Some(k) = kept.filter(|k| group.member(&k.id).is_none()) {
                counts.add(k.pool());
            }
        }
    }

    // --- MaxSize: raise for the attaches, restore when nothing is in flight
    let raised_from = max_raised_from(group);
    if !attaches.is_empty() {
        let needed = group.desired + attaches.len() as u32;
        if needed > group.max_size {
            let from = raised_from.unwrap_or(group.max_size);
            plan.actions.push(Action::new(
                ActionKind::RaiseMax { from, to: needed },
                Reason::MaxSizeAtDesired,
                name,
            ));
        }
        plan.actions.append(&mut attaches);
    } else if in_flight.is_empty() {
        plan.actions.extend(max_restore(group));
    }

    // --- start new swaps
    if records.sheltered(now) {
        plan.skip = Some(Skip {
            group: name.to_string(),
            reason: Reason::Sheltered,
            detail: records.sheltered_until.map(|t| format!("until {t}")),
        });
        return plan;
    }
    if group.desired == 0 || policy.replace_per_cycle == 0 {
        return plan;
    }
    if !at_capacity {
        plan.actions
            .push(Action::new(ActionKind::Wait, Reason::GroupBelowCapacity, name));
        return plan;
    }
    let floor = census.floor;
    let members: Vec<(&Member, &Instance)> = group
        .members
        .iter()
        .filter(|m| m.state == MemberState::InService || m.state == MemberState::Pending)
        .filter_map(|m| instances.get(&m.id).map(|i| (m, i)))
        .collect();
    for (_, inst) in members.iter().filter(|(_, i)| i.lifecycle == Lifecycle::Spot) {
        counts.add(inst.pool());
    }
    let on_demand: Vec<&(&Member, &Instance)> = members
        .iter()
        .filter(|(m, i)| m.state == MemberState::InService && i.lifecycle == Lifecycle::OnDemand)
        .collect();
    let od_in_flight = on_demand
        .iter()
        .filter(|(m, _)| in_flight.contains(m.id.as_str()))
        .count() as u32;
    let od_staying = on_demand.len() as u32 - od_in_flight;
    let available = od_staying.saturating_sub(floor);
    if available == 0 {
        if od_in_flight == 0 && !on_demand.is_empty() {
            plan.actions
                .push(Action::new(ActionKind::Wait, Reason::AtRiskFloor, name));
        }
        return plan;
    }
    let to_start = available.min(policy.replace_per_cycle);

    // Prefer AZs holding the most on-demand, then the oldest instances.
    let mut per_az: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, i) in &on_demand {
        *per_az.entry(i.az.as_str()).or_default() += 1;
    }
    let mut eligible: Vec<&Instance> = on_demand
        .iter()
        .filter(|(m, i)| {
            m.healthy
                && !m.protected_from_scale_in
                && i.termination_protected != Some(true)
                && i.state == InstanceState::Running
                && !in_flight.contains(m.id.as_str())
                && !launches.contains_key(m.id.as_str())
        })
        .map(|(_, i)| *i)
        .collect();
    if eligible.is_empty() {
        // Above the floor but every candidate protected: say so, or the group looks stuck
        // with nothing in the log.
        let protected = on_demand.iter().any(|(m, i)| {
            !in_flight.contains(m.id.as_str())
                && (m.protected_from_scale_in || i.termination_protected == Some(true))
        });
        if protected {
            plan.actions
                .push(Action::new(ActionKind::Wait, Reason::InstanceProtected, name));
        }
        return plan;
    }
    eligible.sort_by(|a, b| {
        per_az[b.az.as_str()]
            .cmp(&per_az[a.az.as_str()])
            .then(a.launch_time.cmp(&b.launch_time))
            .then(a.id.cmp(&b.id))
    });

    let target_spot = (counts.total() + 1).max(group.desired - floor);
    let ranked = RankedPools::default();
    let mut started = 0;
    for original in eligible {
        if started == to_start {
            break;
        }
        let ctx = SearchContext {
            market,
            policy,
            records: &records,
            counts: &counts,
            target_spot,
            now,
            ranked: Some(&ranked),
        };
        match launch_for(group, template, original, ctx, None, Reason::OnDemandAboveFloor) {
            Ok(action) => {
                if let Some(pool) = &action.pool {
                    counts.add(pool.clone());
                }
                plan.actions.push(action);
                started += 1;
            }
            Err(wait) => plan.actions.push(wait),
        }
    }
    plan
}

/// A Launch action replacing `original`, or a Wait saying why there is none.
/// Shared by the rebalancer and the rebalance-recommendation handler.
// Both variants are an `Action`: boxing the error would make it no smaller than the success.
#[allow(clippy::result_large_err)]
pub fn launch_for(
    group: &GroupSnapshot,
    template: &crate::model::LaunchTemplateRef,
    original: &Instance,
    ctx: SearchContext<'_>,
    avoid: Option<&crate::model::Pool>,
    reason: Reason,
) -> Result<Action, Action> {
    let od_price = ctx.market.on_demand_price(&original.instance_type);
    let Some(subnet_id) = original.subnet_id.clone() else {
        return Err(Action::new(ActionKind::Wait, Reason::NoSubnet, &group.name).instance(&original.id));
    };
    let found: Vec<Candidate> = candidates(original, original.architecture.as_deref(), ctx, avoid);
    let Some(cheapest) = found.first().cloned() else {
        return Err(Action::new(ActionKind::Wait, Reason::NoEligiblePool, &group.name)
            .instance(&original.id)
            .pool(original.pool())
            .prices(None, od_price));
    };
    let spec = LaunchSpec {
        replaces: original.id.clone(),
        subnet_id,
        launch_template: template.clone(),
        candidates: found,
        client_token: client_token(&original.id, ctx.now),
        tags: launch_tags(group, &original.id, ctx.now),
    };
    Ok(Action::new(ActionKind::Launch(spec), reason, &group.name)
        .instance(&original.id)
        .pool(cheapest.pool)
        .prices(Some(cheapest.spot_price), od_price))
}

/// CreateFleet's idempotency token: the same instance in the same 10-minute bucket gives the
/// same token, so concurrent or retried cycles dedupe at EC2, and a later retry after a
/// failed launch gets a fresh one.
pub fn client_token(replaces: &str, now: Timestamp) -> String {
    format!("spotswap-{replaces}-{}", now.unix().div_euclid(600))
}

/// Our tags plus the group's propagate-at-launch tags (not `aws:` or `spotswap:` ones), at
/// most 50 as EC2 allows.
pub fn launch_tags(group: &GroupSnapshot, replaces: &str, now: Timestamp) -> Vec<(String, String)> {
    let mut out = vec![
        (tags::GROUP.to_string(), group.name.clone()),
        (tags::REPLACES.to_string(), replaces.to_string()),
        (tags::LAUNCHED_AT.to_string(), now.to_rfc3339()),
    ];
    out.extend(
        group
            .propagated_tags
            .iter()
            .filter(|(k, _)| !k.starts_with("aws:") && !k.starts_with("spotswap:"))
            .map(|(k, v)| (k.clone(), v.clone())),
    );
    out.truncate(50);
    out
}

/// Our live launches of one group, by the instance each replaces.
pub type Launches<'a> = BTreeMap<&'a str, Vec<&'a Instance>>;

/// Our live launches of every group, indexed once per pass: by group, then by the instance
/// each replaces.
///
/// A launch the interruption handler detached is dying: it must never be attached again, nor
/// steer a swap, so it is left out. The reaper ends it.
#[derive(Debug, Default)]
pub struct LaunchIndex<'a> {
    by_group: BTreeMap<&'a str, Launches<'a>>,
    none: Launches<'a>,
}

impl<'a> LaunchIndex<'a> {
    /// Index `instances` (any superset of our launches; others are skipped).
    pub fn new(instances: impl IntoIterator<Item = &'a Instance>) -> Self {
        let mut by_group: BTreeMap<&str, Launches<'a>> = BTreeMap::new();
        for inst in instances {
            let (Some(group), Some(replaces)) = (inst.launched_for(), inst.replaces()) else {
                continue;
            };
            if inst.is_live_launch_for(group) {
                by_group
                    .entry(group)
                    .or_default()
                    .entry(replaces)
                    .or_default()
                    .push(inst);
            }
        }
        Self {
            by_group,
            none: Launches::new(),
        }
    }

    /// The launches of `group` (empty when it has none).
    pub fn of(&self, group: &str) -> &Launches<'a> {
        self.by_group.get(group).unwrap_or(&self.none)
    }
}

/// The swaps of `group` still in flight: the ids of the instances being replaced.
///
/// The one notion of "in flight", shared by the rebalancer and the reaper: a swap is in flight
/// until the stage machine finds it complete or abandoned. `launches` must come from an index
/// of at least our launches (the reaper's snapshot holds only those; the originals are read
/// from the group's members).
pub fn swaps_in_flight(group: &GroupSnapshot, launches: &Launches<'_>, now: Timestamp) -> BTreeSet<String> {
    let in_service = group.in_service().count() as u32;
    launches
        .iter()
        .filter(|(replaces, ls)| advance_swap(group, replaces, ls, in_service, now).1 == SwapState::InFlight)
        .map(|(replaces, _)| replaces.to_string())
        .collect()
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
fn advance_swap<'a>(
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
                    },
                    Reason::ReplacementReady,
                ),
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

fn census(
    group: &GroupSnapshot,
    instances: &BTreeMap<String, Instance>,
    market: &Market,
    policy: &Policy,
) -> Census {
    let mut c = Census {
        desired: group.desired,
        floor: policy.required_on_demand(group.desired),
        ..Census::default()
    };
    // Summed in id order: f64 addition is not associative, and AWS lists members in no fixed
    // order, so the same group must not give a savings figure that differs in the last digit.
    let mut members: Vec<&Member> = group.in_service().collect();
    members.sort_by(|a, b| a.id.cmp(&b.id));
    for m in members {
        let Some(i) = instances.get(&m.id) else { continue };
        match i.lifecycle {
            Lifecycle::OnDemand => c.on_demand += 1,
            Lifecycle::Spot => {
                c.spot += 1;
                if let (Some(od), Some(spot)) = (
                    market.on_demand_price(&i.instance_type),
                    market.spot_price(&i.pool()),
                ) {
                    c.hourly_savings += (od - spot).max(0.0);
                }
            }
        }
    }
    c
}
