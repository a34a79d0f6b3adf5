//! The rebalancer's decisions for one cycle: pure, same input, same plan.
//!
//! For every group: first advance each swap in flight one stage (Launch → Attach → Retire),
//! from what the snapshot shows, then start new swaps for on-demand instances above the
//! risk floor. Swap state is read from tags on our launches (`spotswap:replaces`,
//! `spotswap:attached-at`), never from memory, so any cycle can pick up any swap.
//!
//! # Layout
//!
//! - this module: the cycle ([`plan_cycle`], [`plan_group`]), its settings and census, and a
//!   group's plan as a few named steps.
//! - [`blockers`]: the one rule for a group that cannot be swapped now.
//! - [`stages`]: the swap stage machine, "in flight", and MaxSize raise and restore.
//! - [`originals`]: which on-demand instances new swaps replace, in which order; `start`: the
//!   launches of the swaps a group starts (weights, commitments, the pool caps).
//! - [`launch`]: a replacement's launch spec, client token and tags.
//! - [`index`]: our live launches by group and by the instance each replaces.
//! - `toward_on_demand`: on-demand launches replacing spot (the risk floor, and
//!   `spotswap:commitments=fill`), and the group's census.
//! - [`review`]: why each candidate type was turned down for the swaps a plan tried to start
//!   (for `spotswap plan`, off the planner's path).

pub mod blockers;
pub mod due;
mod gate;
use gate::{start_gate, Hold};
pub mod index;
pub mod launch;
pub mod originals;
pub mod outdated;
pub mod review;
pub mod stages;
mod start;
mod toward_on_demand;
use start::{start_swaps, GroupInputs};

use std::collections::BTreeMap;

use serde::Serialize;

use crate::action::{Action, ActionKind, Reason, Skip};
use crate::commitments::Ledger;
use crate::compat_mode::{activity, AutoSpottingCompat};
use crate::model::{GroupSnapshot, Instance, Lifecycle, Market, RegionSnapshot, ScheduledEvent};
use crate::policy::{is_managed, CommitmentMode, Mode, Policy};
use crate::records::GroupRecords;
use crate::tags;
use crate::time::Timestamp;

pub use index::{LaunchIndex, Launches};
pub use launch::{client_token, launch_for, launch_tags};
pub use review::{review_group, CandidateReview};
pub use stages::{max_changed_by_owner, max_raised_from, max_raised_to, max_restore, swaps_in_flight};

/// Cycle-wide settings, read once at start-up.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Settings {
    /// Opt-in or opt-out.
    pub mode: Mode,
    /// Defaults from the environment, under each group's tags.
    pub defaults: Policy,
    /// `SPOTSWAP_MAX_SWAPS_IN_FLIGHT`: most swaps in flight in the region at once, counting
    /// those already under way; `None` is no cap.
    pub max_swaps_in_flight: Option<u32>,
    /// `SPOTSWAP_COMPAT=autospotting`: AutoSpotting's filter and tags read as aliases, and no
    /// new swap where AutoSpotting still acts ([`crate::compat`]).
    pub compat: Option<AutoSpottingCompat>,
}

/// What one invocation of the rebalancer may do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scope {
    /// The scheduled cycle: advance swaps in flight and start new ones (`replace-per-cycle`
    /// is per schedule period).
    #[default]
    Full,
    /// An EC2 state change: only advance swaps in flight. Our own launches change state too,
    /// so a state change that could start swaps would start the next one on every launch.
    AdvanceOnly,
}

impl GroupPlan {
    /// The launches this plan starts.
    pub fn launches(&self) -> usize {
        self.actions
            .iter()
            .filter(|a| matches!(a.kind, ActionKind::Launch(_)))
            .count()
    }
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
    /// Σ (on-demand price of the instance replaced − spot price) over spot members with both
    /// prices known, USD/hour.
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
    plan_cycle_in(snapshot, settings, Scope::Full)
}

/// [`plan_cycle`] for an invocation of `scope`, within the region-wide cap on swaps in flight.
pub fn plan_cycle_in(snapshot: &RegionSnapshot, settings: &Settings, scope: Scope) -> Vec<GroupPlan> {
    let index = LaunchIndex::new(snapshot.instances.values());
    let mut ledger = Ledger::new(snapshot);
    let ledger = &mut ledger;
    let autospotting = settings
        .compat
        .as_ref()
        .map(|c| (c, activity::latest_launches(snapshot.instances.values())));
    let mut plans: Vec<GroupPlan> = snapshot
        .groups
        .iter()
        .map(|group| {
            // A group AutoSpotting still acts on is planned like an EC2 state change: swaps of
            // ours in flight finish or unwind, no new one starts, so the two never fight over
            // an instance.
            let mut held = autospotting
                .as_ref()
                .and_then(|(c, latest)| activity::hold(group, latest, c, snapshot.now));
            let policy = policy_for(group, settings);
            let carry = policy
                .as_ref()
                .ok()
                .and_then(|p| p.as_ref())
                .map(crate::carry::CarryPolicy::of);
            // `strict`: while the commitments are unknown, held like an EC2 state change.
            if matches!(&policy, Ok(Some(p)) if p.commitments == CommitmentMode::Strict)
                && ledger.is_unknown()
            {
                held = held.or_else(|| {
                    Some(Skip {
                        group: group.name.clone(),
                        reason: Reason::CommitmentsUnknown,
                        detail: Some("spotswap:commitments=strict".into()),
                    })
                });
            }
            let input = |policy| GroupInput {
                group,
                instances: &snapshot.instances,
                launches: index.of(&group.name),
                market: &snapshot.market,
                policy,
                scheduled: &snapshot.scheduled,
                now: snapshot.now,
            };
            let plan = match policy {
                Ok(Some(policy)) if scope == Scope::AdvanceOnly || held.is_some() => {
                    let advance_only = Policy {
                        replace_per_cycle: 0,
                        ..policy
                    };
                    let mut plan = plan_group_in(&input(&advance_only), ledger);
                    if held.is_some() && plan.skip.as_ref().is_none_or(|s| s.reason == Reason::Sheltered) {
                        plan.skip = held;
                    }
                    plan
                }
                Ok(Some(policy)) => plan_group_in(&input(&policy), ledger),
                Ok(None) => GroupPlan::skipped(&group.name, Reason::NotManaged, None),
                // A bad value stops new swaps, not the safety steps: swaps already in flight still
                // advance (or unwind) and MaxSize still comes back, so desired and MaxSize never
                // stay raised because of a typo. A bad `spotswap:enabled` is the exception: whether
                // the group is ours at all is unknown (and the IAM conditions would refuse us).
                Err(err) if err.key() != tags::ENABLED => {
                    let in_flight_only = Policy {
                        replace_per_cycle: 0,
                        ..settings.defaults.clone()
                    };
                    let mut plan = plan_group_in(&input(&in_flight_only), ledger);
                    if plan.skip.as_ref().is_none_or(|s| s.reason == Reason::Sheltered) {
                        plan.skip = Some(Skip {
                            group: group.name.clone(),
                            reason: Reason::InvalidConfig,
                            detail: Some(err.to_string()),
                        });
                    }
                    plan
                }
                Err(err) => GroupPlan::skipped(&group.name, Reason::InvalidConfig, Some(err.to_string())),
            };
            let mut plan = crate::carry::with_carry(group, &snapshot.instances, carry.as_ref(), plan);
            // Most groups have one or two actions in a vector grown to four: 7 MB at 5,000
            // groups (issue 22).
            plan.actions.shrink_to_fit();
            plan
        })
        .collect();
    if let Some(cap) = settings.max_swaps_in_flight {
        let in_flight: usize = snapshot
            .groups
            .iter()
            .map(|g| swaps_in_flight(g, index.of(&g.name), snapshot.now).len())
            .sum();
        cap_launches(&mut plans, (cap as usize).saturating_sub(in_flight));
    }
    plans
}

/// The original a Launch replaces.
fn launched_for(a: &Action) -> Option<&str> {
    match &a.kind {
        ActionKind::Launch(spec) => Some(spec.replaces.as_str()),
        _ => None,
    }
}

/// Keep the first `allowed` launches of the cycle, in plan order; the rest wait, reason
/// `MaxSwapsInFlight`.
///
/// The adapter's preflight re-plans one group when it learns what the snapshot could not
/// read (a termination-protected original, say): it caps the new plan to the launches the
/// cycle allotted the group, so the region-wide cap holds across the re-plan too.
pub fn cap_launches(plans: &mut [GroupPlan], mut allowed: usize) {
    for plan in plans {
        for action in &mut plan.actions {
            if !matches!(action.kind, ActionKind::Launch(_)) {
                continue;
            }
            if allowed > 0 {
                allowed -= 1;
            } else {
                action.kind = ActionKind::Wait;
                action.reason = Reason::MaxSwapsInFlight;
            }
        }
    }
}

/// The group's policy, `None` when it is not managed, or the configuration error.
pub fn policy_for(group: &GroupSnapshot, settings: &Settings) -> Result<Option<Policy>, crate::ConfigError> {
    if let Some(compat) = &settings.compat {
        return crate::compat_mode::policy_for(&group.tags, settings.mode, &settings.defaults, compat);
    }
    if !is_managed(&group.tags, settings.mode)? {
        return Ok(None);
    }
    Policy::from_tags(&group.tags, &settings.defaults).map(Some)
}

/// Decide what to do for one group in this cycle. Pure: same input, same plan. Without
/// commitments ([`plan_group_with`] takes them).
pub fn plan_group(
    group: &GroupSnapshot,
    instances: &BTreeMap<String, Instance>,
    market: &Market,
    policy: &Policy,
    scheduled: &BTreeMap<String, ScheduledEvent>,
    now: Timestamp,
) -> GroupPlan {
    plan_group_with(
        group,
        instances,
        market,
        policy,
        scheduled,
        now,
        &mut Ledger::none(),
    )
}

/// [`plan_group`] with the region's commitments: the swaps it starts are recorded in `ledger`.
pub fn plan_group_with(
    group: &GroupSnapshot,
    instances: &BTreeMap<String, Instance>,
    market: &Market,
    policy: &Policy,
    scheduled: &BTreeMap<String, ScheduledEvent>,
    now: Timestamp,
    ledger: &mut Ledger,
) -> GroupPlan {
    let index = LaunchIndex::new(instances.values());
    let input = GroupInput {
        group,
        instances,
        launches: index.of(&group.name),
        market,
        policy,
        scheduled,
        now,
    };
    plan_group_in(&input, ledger)
}

/// What one group's plan is made from: the group, the region's instances and the group's own
/// launches among them, the market, the group's policy, EC2's scheduled events, and the time.
#[derive(Clone, Copy)]
struct GroupInput<'a> {
    group: &'a GroupSnapshot,
    instances: &'a BTreeMap<String, Instance>,
    launches: &'a Launches<'a>,
    market: &'a Market,
    policy: &'a Policy,
    scheduled: &'a BTreeMap<String, ScheduledEvent>,
    now: Timestamp,
}

/// [`plan_group`] with the group's launches already indexed: [`plan_group_steps`], and for a
/// launch-configuration group the creation of its template before the first launch needs it.
fn plan_group_in(input: &GroupInput<'_>, ledger: &mut Ledger) -> GroupPlan {
    let mut plan = plan_group_steps(input, ledger);
    crate::launch_config::ensure_template(input.group, &mut plan.actions);
    plan
}

/// The group's blockers, then its swaps in flight advanced one stage, MaxSize around their
/// attaches, and new swaps started.
fn plan_group_steps(input: &GroupInput<'_>, ledger: &mut Ledger) -> GroupPlan {
    let GroupInput {
        group,
        instances,
        launches,
        market,
        policy,
        scheduled,
        now,
    } = *input;
    let name = group.name.as_str();
    let template = match blockers::swappable_template(group) {
        Ok(t) => t,
        Err((reason, detail)) => return GroupPlan::skipped(name, reason, detail),
    };
    // A mixed-instances group: its own types and, unless spotswap's tags say otherwise, its
    // own distribution as the floor.
    let effective;
    let policy = if group.mixed.is_some() {
        effective = crate::mixed::effective_policy(group, policy);
        &effective
    } else {
        policy
    };
    // Its fallback: launches forced on-demand while it cannot get spot, the owner's value
    // back after the cooldown.
    let distribution = match crate::mixed::distribution_step(group, instances, policy, now) {
        Ok(step) => step,
        Err(e) => return GroupPlan::skipped(name, Reason::InvalidConfig, Some(e.to_string())),
    };
    let records = GroupRecords::from_tags(&group.tags);
    let mut plan = GroupPlan {
        group: name.to_string(),
        actions: Vec::new(),
        skip: None,
        census: toward_on_demand::census(group, instances, market, policy, ledger),
    };
    // In capacity units: one per instance, or its weight in a weighted group.
    let in_service = group.in_service_units(instances);

    // --- advance swaps in flight; MaxSize: raise for the attaches, restore when none in flight
    let mut stage = stages::advance_all(group, launches, in_service, now);
    plan.actions.extend(distribution);
    plan.actions.append(&mut stage.actions);
    plan.actions.extend(stages::max_size_step(
        group,
        stage.attaches,
        stage.attach_units,
        stage.replacing.is_empty(),
    ));

    // --- replacements due whatever the windows say: scheduled events, MaxInstanceLifetime.
    // Not in a group whose processes a swap needs are suspended, whose stack is mid-update or
    // whose launching hook an attach would skip (start_gate says so below), and not with
    // replace-per-cycle 0 (a state-change invocation, or a bad tag value).
    if policy.replace_per_cycle > 0
        && blockers::suspended_for(group, blockers::SwapStep::Start).is_empty()
        && blockers::stack_updating(group).is_none()
        && blockers::launch_hook_blocker(group, policy).is_none()
    {
        let inputs = due::DueInputs {
            group,
            template,
            policy,
            records: &records,
            instances,
            launches,
            market,
            scheduled,
            now,
        };
        plan.actions
            .extend(due::due_launches(&inputs, &mut stage.replacing, ledger));
    }

    // --- start new swaps
    match start_gate(group, &records, policy, in_service, now) {
        Ok(()) => {}
        Err(Hold::Skip(skip)) => {
            plan.skip = Some(skip);
            return plan;
        }
        Err(Hold::Wait(reason)) => {
            plan.actions.push(Action::new(ActionKind::Wait, reason, name));
            return plan;
        }
        Err(Hold::Quiet) => return plan,
    }
    let serving = originals::serving(group, instances);
    // Below the floor (a scale-in took on-demand instances, the floor was raised): restore it
    // first, through the same stages, on-demand from the group's own template. The floor of
    // the desired capacity the group settles at: an attached swap raised desired by one until
    // its retire gives it back.
    let settled_floor = policy.required_on_demand(group.desired.saturating_sub(stage.attached));
    let deficit = originals::floor_deficit(
        group,
        &serving,
        &stage.replacing,
        stage.od_arriving,
        settled_floor,
    );
    if deficit > 0 && !stage.replacing.is_empty() {
        // One direction at a time: the swaps in flight settle first.
        plan.actions
            .push(Action::new(ActionKind::Wait, Reason::BelowRiskFloor, name));
        return plan;
    }
    // Toward on-demand: the floor first, then `fill`. Not an instance this plan already
    // retires or ends (a duplicate launch, say).
    let acted: std::collections::BTreeSet<&str> = plan
        .actions
        .iter()
        .filter(|a| a.kind.is_mutating())
        .filter_map(|a| match &a.kind {
            ActionKind::Retire { instance, .. } | ActionKind::TerminateLaunch { instance } => {
                Some(instance.as_str())
            }
            _ => None,
        })
        .collect();
    let staying: Vec<_> = serving
        .iter()
        .copied()
        .filter(|(m, _)| !acted.contains(m.id.as_str()))
        .collect();
    let toward = toward_on_demand::Toward {
        group,
        template,
        market,
        serving: &staying,
        replacing: &stage.replacing,
        launches,
        now,
    };
    if deficit > 0 {
        // In capacity units: a member of weight 4 covers a deficit of 1, so a weighted group
        // may end a few units above its floor, never below it.
        let mut covered = 0;
        let restore = toward_on_demand::replace_spot(
            &toward,
            policy.replace_per_cycle,
            Reason::BelowRiskFloor,
            true,
            |i| {
                (covered < deficit).then(|| {
                    covered += group.units_of(i);
                    None
                })
            },
        );
        // Its on-demand launches use commitments too: the next group sees the units taken.
        for a in &restore {
            if let Some(spot) = launched_for(a).and_then(|id| instances.get(id)) {
                ledger.add_replacing(spot);
            }
        }
        plan.actions.extend(restore);
        return plan;
    }
    // `fill`: spot back to on-demand where a commitment sits unused, one direction at a time.
    if policy.commitments == CommitmentMode::Fill && stage.replacing.is_empty() {
        let filled = toward_on_demand::fill(&toward, policy.replace_per_cycle, ledger);
        if !filled.is_empty() {
            plan.actions.extend(filled);
            return plan;
        }
    }
    let mut counts = stage.counts;
    for (_, inst) in serving.iter().filter(|(_, i)| i.lifecycle == Lifecycle::Spot) {
        counts.add(inst.pool());
    }
    // Rollouts of a new template version come out of replace-per-cycle first.
    let rollout = outdated::Rollout {
        group,
        template,
        policy,
        records: &records,
        market,
        launches,
        counts: &counts,
        floor: plan.census.floor,
        now,
    };
    let rolled = outdated::outdated_launches(
        &rollout,
        &serving,
        &mut stage.replacing,
        policy.replace_per_cycle,
        ledger,
    );
    let left = policy.replace_per_cycle.saturating_sub(rolled.len() as u32);
    for a in rolled.iter().filter_map(|a| {
        a.pool.clone().filter(
            |_| matches!(&a.kind, ActionKind::Launch(s) if s.purchase == crate::action::Purchase::Spot),
        )
    }) {
        counts.add(a);
    }
    plan.actions.extend(rolled);
    if left == 0 {
        return plan;
    }
    match originals::choose_originals(
        group,
        &serving,
        &stage.replacing,
        launches,
        plan.census.floor,
        left,
    ) {
        Ok(chosen) => {
            let inputs = GroupInputs {
                group,
                template,
                market,
                policy,
                records: &records,
                floor: plan.census.floor,
                now,
            };
            plan.actions.extend(start_swaps(&inputs, chosen, counts, ledger));
        }
        Err(wait) => plan
            .actions
            .extend(wait.map(|reason| Action::new(ActionKind::Wait, reason, name))),
    }
    plan
}
