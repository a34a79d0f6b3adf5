//! The `spotswap` policy: the REAL `spotswap-core`, driven exactly as the Lambdas drive it.
//!
//! Each time a Lambda would run, the simulated world is read into the core's snapshot types
//! ([`RegionSnapshot`], [`EventSnapshot`]), the core decides, and the returned [`Action`]s are
//! applied to the world with the semantics of `crates/aws/src/execute.rs`: a failed action
//! stops the rest of its group's actions, a CreateFleet without capacity marks every offered
//! pool `spotswap:no-capacity:…` for `NO_CAPACITY_MINUTES`, a launch already made for the
//! same original is not made again. No decision is re-implemented here.

use std::collections::BTreeMap;

use spotswap_core::events::{
    decide_rebalance, decide_records, decide_spot_warning, EventSnapshot, InstanceAction, InstanceId,
    Membership, RebalanceDetail, SpotInterruptionDetail,
};
use spotswap_core::records::{
    max_raised_tags, no_capacity_tags, no_capacity_tags_until, record_interruption_tags, swap_tags,
};
use spotswap_core::tags::{self, InstanceTags};
use spotswap_core::{
    plan_cycle, plan_reap, Action, ActionKind, GroupSnapshot, Instance, Lifecycle, MemberState, Policy,
    RegionSnapshot, Settings, Timestamp,
};

use crate::policies::SimPolicy;
use crate::scenario::{GroupSpec, Scenario};
use crate::views::{group_view, instance_view, instances_view, market_view};
use crate::world::{NoCapacity, Template, World};

/// AWS calls per action, as `crates/aws/src/execute.rs` makes them (see sim/README.md).
pub fn action_calls(kind: &ActionKind) -> u64 {
    match kind {
        // DescribeInstances (the duplicate guard) + CreateFleet.
        ActionKind::Launch(_) => 2,
        // CreateOrUpdateTags + UpdateAutoScalingGroup.
        ActionKind::RaiseMax { .. } | ActionKind::RestoreMax { .. } => 2,
        // CreateOrUpdateTags + UpdateAutoScalingGroup, or UpdateAutoScalingGroup + DeleteTags.
        ActionKind::SetDistribution { .. } => 2,
        // AttachInstances + CreateTags.
        ActionKind::Attach { .. } => 2,
        ActionKind::MarkAttached { .. }
        | ActionKind::Retire { .. }
        | ActionKind::TerminateLaunch { .. }
        | ActionKind::Terminate { .. }
        | ActionKind::ClearRecords { .. }
        | ActionKind::MarkPools { .. }
        | ActionKind::Detach { .. }
        | ActionKind::TerminateInGroup { .. }
        | ActionKind::TagDetached { .. }
        | ActionKind::RecordInterruption { .. }
        | ActionKind::CreateTemplate { .. }
        | ActionKind::DeleteTemplate { .. }
        | ActionKind::TagCarried { .. } => 1,
        // the re-read (DescribeAddresses or DescribeVolumes) + the move
        ActionKind::AssociateAddress { .. }
        | ActionKind::AttachVolume { .. }
        | ActionKind::DetachVolume { .. } => 2,
        ActionKind::Wait | ActionKind::Ignore | ActionKind::Stranded { .. } => 0,
    }
}

/// The spotswap policy's state between Lambda runs: none but the schedule and the checks'
/// bookkeeping. Swap state lives in tags, as on AWS.
pub struct Spotswap {
    settings: Settings,
    rebalancer_steps: u64,
    reaper_steps: u64,
    orphan_minutes: u32,
    /// Invariant violations found while applying actions.
    found: Vec<String>,
    /// A reaper pass ran this step.
    reaped: bool,
    /// The account's commitments, as the adapter reads them each cycle.
    commitments: spotswap_core::commitments::Commitments,
}

impl Spotswap {
    /// The policy for `scenario`, with the Lambdas' default settings (opt-in).
    pub fn new(scenario: &Scenario) -> Self {
        let per = |minutes: u32| (u64::from(minutes) * 60 / u64::from(scenario.step_seconds)).max(1);
        Self {
            settings: Settings::default(),
            rebalancer_steps: per(scenario.rebalancer_minutes),
            reaper_steps: per(scenario.reaper_minutes),
            orphan_minutes: scenario.orphan_minutes,
            found: Vec::new(),
            reaped: false,
            commitments: scenario.commitments.commitments.clone(),
        }
    }
}

fn group_index(world: &World, name: &str) -> Option<usize> {
    world.groups.iter().position(|g| g.name == name)
}

fn tag_instance<K: AsRef<str>>(world: &mut World, id: &str, kv: &[(K, String)]) {
    if let Some(i) = world.instances.get_mut(id) {
        // One rebuild of the packed tags for the whole call.
        i.tags.extend(kv.iter().map(|(k, v)| (k.as_ref(), v.as_str())));
    }
}

fn managed(world: &World, g: usize) -> bool {
    world.groups[g].tags.get(tags::ENABLED).map(String::as_str) == Some("true")
}

/// Our live, not detached launches for `group` replacing `original`.
fn launches_replacing(world: &World, group: &str, original: &str) -> Vec<String> {
    world
        .instances
        .values()
        .filter(|i| {
            i.alive
                && i.tags.get(tags::GROUP) == Some(group)
                && i.tags.get(tags::REPLACES) == Some(original)
                && !i.tags.contains_key(tags::DETACHED_AT)
        })
        .map(|i| i.id.clone())
        .collect()
}

impl Spotswap {
    /// Apply one action as the adapter would. `Err` is an AWS error: the group's later
    /// actions are not attempted.
    fn apply(&mut self, world: &mut World, a: &Action) -> Result<(), String> {
        world.counters.api_calls += action_calls(&a.kind);
        let Some(g) = group_index(world, &a.group).or(match &a.kind {
            ActionKind::Terminate { .. }
            | ActionKind::TerminateLaunch { .. }
            | ActionKind::Wait
            | ActionKind::Ignore => Some(usize::MAX),
            _ => None,
        }) else {
            return Err(format!("no group {}", a.group));
        };
        if a.kind.is_mutating() && g != usize::MAX && !managed(world, g) {
            // Invariant (4): a group without spotswap:enabled=true gets no action.
            let is_reap = matches!(a.kind, ActionKind::Terminate { .. });
            if !is_reap {
                self.found
                    .push(format!("{}: {} on an unmanaged group", a.group, a.kind.name()));
            }
        }
        let now = world.timestamp();
        match &a.kind {
            // The simulated groups have no mixed instances policy: the planner never asks.
            ActionKind::SetDistribution { .. } => Err("SetDistribution on a simulated group".into()),
            ActionKind::Launch(spec) => {
                if !launches_replacing(world, &a.group, &spec.replaces).is_empty() {
                    return Ok(()); // AlreadyDone
                }
                let mut t = InstanceTags::new();
                for (k, v) in &spec.tags {
                    t.insert(k.clone(), v.clone());
                }
                let offered: Vec<_> = spec.candidates.iter().map(|c| c.pool.clone()).collect();
                if spec.purchase == spotswap_core::Purchase::OnDemand {
                    // The floor's restoration: on-demand of the instance's own type, in its AZ
                    // (on-demand capacity is there unless the AZ is down).
                    let pool = offered
                        .first()
                        .filter(|p| world.az_up(&p.az))
                        .and_then(|p| world.pool_index.get(p).copied());
                    return match pool {
                        Some(p) => {
                            world.launch(p, Lifecycle::OnDemand, t);
                            Ok(())
                        }
                        None => Err(format!("InsufficientInstanceCapacity: {} on-demand", a.group)),
                    };
                }
                match world.create_fleet(&offered, t) {
                    Ok(_) => {
                        // Invariant (6): no duplicate launch per original.
                        if launches_replacing(world, &a.group, &spec.replaces).len() > 1 {
                            self.found
                                .push(format!("{}: duplicate launch for {}", a.group, spec.replaces));
                        }
                    }
                    Err(NoCapacity) => {
                        // CreateOrUpdateTags: the no-capacity marks. The fleet tried every offered
                        // pool: the core marks them all.
                        world.counters.api_calls += 1;
                        world.groups[g].tags.extend(no_capacity_tags(&offered, now));
                    }
                }
                Ok(())
            }
            ActionKind::RaiseMax { from, to } => {
                let group = &mut world.groups[g];
                group.tags.extend(max_raised_tags(*from, *to));
                group.max_size = *to;
                Ok(())
            }
            ActionKind::Attach {
                instance,
                replaces,
                batched,
            } => {
                // As the adapter does: one CreateTags on both, then the attach.
                let kv = swap_tags(instance, batched.then_some(replaces.as_str()), now);
                for id in [replaces, instance] {
                    tag_instance(world, id, &kv);
                }
                world.attach(g, instance)?;
                Ok(())
            }
            ActionKind::MarkAttached { instance } => {
                tag_instance(world, instance, &[(tags::ATTACHED_AT, now.to_rfc3339())]);
                Ok(())
            }
            ActionKind::Retire {
                instance,
                replacement,
            } => {
                if world.groups[g].members.iter().all(|m| m.id != *instance) {
                    return Err(format!("ValidationError: {instance} is not in {}", a.group));
                }
                // Invariant (2): the original goes only after its replacement is InService.
                let replaced = world.groups[g].members.iter().any(|m| m.id == *replacement)
                    && world.in_service(replacement);
                if !replaced {
                    self.found.push(format!(
                        "{}: retired {instance} before {replacement} was InService",
                        a.group
                    ));
                }
                world.remove_member(g, instance, true);
                world.kill(instance);
                world.counters.swaps += 1;
                Ok(())
            }
            ActionKind::TerminateLaunch { instance } | ActionKind::Terminate { instance } => {
                world.kill(instance);
                Ok(())
            }
            ActionKind::RestoreMax { to } => {
                let group = &mut world.groups[g];
                if group.desired > *to {
                    return Err("ValidationError: desired capacity above MaxSize".into());
                }
                group.max_size = *to;
                group.tags.remove(tags::MAX_RAISED_FROM);
                group.tags.remove(tags::MAX_RAISED_TO);
                Ok(())
            }
            ActionKind::ClearRecords { keys } => {
                for k in keys {
                    world.groups[g].tags.remove(k);
                }
                Ok(())
            }
            ActionKind::MarkPools { pools, until } => {
                world.groups[g].tags.extend(no_capacity_tags_until(pools, *until));
                Ok(())
            }
            ActionKind::Detach { instance, decrement }
            | ActionKind::TerminateInGroup { instance, decrement } => {
                world.remove_member(g, instance, *decrement);
                if matches!(a.kind, ActionKind::TerminateInGroup { .. }) {
                    world.kill(instance);
                }
                Ok(())
            }
            ActionKind::TagDetached { instance, group } => {
                tag_instance(
                    world,
                    instance,
                    &[
                        (tags::DETACHED_AT, now.to_rfc3339()),
                        (tags::DETACHED_FROM, group.clone()),
                    ],
                );
                Ok(())
            }
            ActionKind::RecordInterruption {
                pool,
                cooldown_until,
                interruptions,
                counts,
                sheltered_until,
            } => {
                world.groups[g].tags.extend(record_interruption_tags(
                    pool,
                    *cooldown_until,
                    interruptions,
                    counts,
                    *sheltered_until,
                ));
                Ok(())
            }
            // The simulated region has no launch configurations.
            ActionKind::CreateTemplate { .. } | ActionKind::DeleteTemplate { .. } => Ok(()),
            ActionKind::Wait | ActionKind::Ignore | ActionKind::Stranded { .. } => Ok(()),
            // The simulated groups carry no Elastic IP and no volume: the planner never asks.
            _ => Err(format!("{} on a simulated group", a.kind.name())),
        }
    }

    /// Apply a group's actions in order; the first failure stops the rest, as `run_group` does.
    fn apply_all(&mut self, world: &mut World, actions: &[Action]) {
        for a in actions {
            if self.apply(world, a).is_err() {
                break;
            }
        }
    }

    /// The event snapshot the interruption handler reads for `id`.
    fn event_snapshot(world: &World, id: &str) -> EventSnapshot {
        let inst = world.instances.get(id);
        let g = world.group_of(id);
        let membership = match (g, inst) {
            (Some(g), Some(i)) => Some(Membership {
                instance: id.to_string(),
                group: world.groups[g].name.clone(),
                pool: world.pool_of(i).clone(),
                state: if world.in_service(id) {
                    MemberState::InService
                } else {
                    MemberState::Pending
                },
                lifecycle_state: if world.in_service(id) {
                    "InService"
                } else {
                    "Pending"
                }
                .to_string(),
            }),
            _ => None,
        };
        let group = g.map(|g| group_view(world, g));
        let replaced_by = match &group {
            Some(gs) => launches_replacing(world, &gs.name, id)
                .iter()
                .map(|l| instance_view(world, &world.instances[l]))
                .collect(),
            None => Vec::new(),
        };
        EventSnapshot {
            ec2: if membership.is_none() {
                inst.map(|i| instance_view(world, i))
            } else {
                None
            },
            membership,
            group,
            replaced_by,
        }
    }

    fn spot_warning(&mut self, world: &mut World, id: &str) {
        let Ok(instance_id) = InstanceId::try_from(id.to_string()) else {
            return;
        };
        // DescribeAutoScalingInstances, DescribeAutoScalingGroups, DescribeLifecycleHooks,
        // DescribeInstances (our launches replacing it).
        world.counters.api_calls += 4;
        let snap = Self::event_snapshot(world, id);
        let detail = SpotInterruptionDetail {
            instance_id,
            instance_action: InstanceAction::Terminate,
        };
        let now = world.timestamp();
        let actions = decide_spot_warning(&detail, &snap, &self.settings, now);
        let replaced = actions.first().is_some_and(|a| {
            matches!(
                a.kind,
                ActionKind::Detach { .. } | ActionKind::TerminateInGroup { .. }
            )
        });
        self.apply_all(world, &actions);
        if !replaced {
            return;
        }
        let (Some(group), Some(m)) = (snap.group, snap.membership) else {
            return;
        };
        let Some(g) = group_index(world, &group.name) else {
            return;
        };
        world.counters.api_calls += 1; // DescribeInstances of the members: the spot count
        let spot_count = 1 + world.groups[g]
            .members
            .iter()
            .filter(|m| {
                world
                    .instances
                    .get(&m.id)
                    .is_some_and(|i| i.lifecycle == Lifecycle::Spot)
            })
            .count() as u32;
        let fresh = group_view(world, g);
        let Ok(policy) = Policy::from_tags(&fresh.tags, &self.settings.defaults) else {
            return;
        };
        let record = decide_records(id, &fresh, &m.pool, spot_count, &policy, now);
        self.apply_all(world, &[record]);
    }

    fn rebalance(&mut self, world: &mut World, id: &str) {
        let Ok(instance_id) = InstanceId::try_from(id.to_string()) else {
            return;
        };
        world.counters.api_calls += 5; // the same reads, plus DescribeSpotPriceHistory
        let snap = Self::event_snapshot(world, id);
        let Some(group) = snap.group.as_ref() else {
            return;
        };
        let name = group.name.clone();
        let mut instances: BTreeMap<String, Instance> = BTreeMap::new();
        for i in world.instances.values().filter(|i| i.alive) {
            let member = group.member(&i.id).is_some();
            if member || i.tags.get(tags::GROUP) == Some(name.as_str()) {
                instances.insert(i.id.clone(), instance_view(world, i));
            }
        }
        let actions = decide_rebalance(
            &RebalanceDetail { instance_id },
            &snap,
            &instances,
            &market_view(world),
            &self.settings,
            world.timestamp(),
        );
        self.apply_all(world, &actions);
    }

    fn cycle(&mut self, world: &mut World) {
        let groups: Vec<GroupSnapshot> = (0..world.groups.len()).map(|g| group_view(world, g)).collect();
        let instances = instances_view(world);
        // DescribeAutoScalingGroups (100 a page), DescribeInstances (1,000 a page),
        // DescribeSpotPriceHistory, DescribeInstanceTypes.
        world.counters.api_calls +=
            2 + groups.len().div_ceil(100) as u64 + instances.len().div_ceil(1000).max(1) as u64;
        let snapshot = RegionSnapshot {
            now: world.timestamp(),
            groups,
            instances: instances.clone(),
            market: market_view(world),
            scheduled: Default::default(),
            commitments: Some(self.commitments.clone()),
            usage: spotswap_core::commitments::usage_of(instances.values()).collect(),
        };
        for plan in plan_cycle(&snapshot, &self.settings) {
            self.apply_all(world, &plan.actions);
        }
    }

    fn reap(&mut self, world: &mut World) {
        let groups: Vec<GroupSnapshot> = (0..world.groups.len()).map(|g| group_view(world, g)).collect();
        let ours: BTreeMap<String, Instance> = world
            .instances
            .values()
            .filter(|i| {
                i.alive && (i.tags.contains_key(tags::GROUP) || i.tags.contains_key(tags::DETACHED_AT))
            })
            .map(|i| (i.id.clone(), instance_view(world, i)))
            .collect();
        world.counters.api_calls += groups.len().div_ceil(100) as u64 + 1;
        let plan = plan_reap(
            &groups,
            &ours,
            &self.settings,
            world.timestamp(),
            self.orphan_minutes,
        );
        let mut by_group: BTreeMap<String, Vec<Action>> = BTreeMap::new();
        for a in plan.actions {
            if matches!(a.kind, ActionKind::Terminate { .. }) {
                self.apply_all(world, &[a]);
            } else {
                by_group.entry(a.group.clone()).or_default().push(a);
            }
        }
        for actions in by_group.values() {
            self.apply_all(world, actions);
        }
        self.reaped = true;
    }
}

impl SimPolicy for Spotswap {
    fn template(&self, _group: &GroupSpec) -> Template {
        Template::OnDemand
    }

    fn on_events(&mut self, world: &mut World) {
        self.reaped = false;
        for id in world.warned.clone() {
            self.spot_warning(world, &id);
        }
        for id in world.recommended.clone() {
            self.rebalance(world, &id);
        }
    }

    fn tick(&mut self, world: &mut World, k: u64) {
        if k.is_multiple_of(self.rebalancer_steps) {
            self.cycle(world);
        }
        if k.is_multiple_of(self.reaper_steps) {
            self.reap(world);
        }
    }

    fn check(&mut self, world: &World, violations: &mut Vec<String>) {
        violations.append(&mut self.found);
        let t = world.now;
        for (g, group) in world.groups.iter().enumerate() {
            // Invariant (1): every gap is one the group is already filling (a launch of its
            // own in flight, or one it could not make): a swap never made it.
            let serving = world.in_service_count(g);
            let filling = group
                .members
                .iter()
                .filter(|m| m.own_launch && !m.in_service(t))
                .count() as u32;
            if serving + filling + group.failed_launches < group.desired.min(group.user_desired) {
                violations.push(format!(
                    "t={t} {}: {serving} InService + {filling} launching < desired {}",
                    group.name, group.desired
                ));
            }
        }
        if self.reaped {
            // Invariant (5): after a pass, nothing of ours past the orphan age runs outside a group.
            let age = i64::from(self.orphan_minutes) * 60;
            let members: std::collections::BTreeSet<&str> = world
                .groups
                .iter()
                .flat_map(|g| g.members.iter().map(|m| m.id.as_str()))
                .collect();
            for i in world
                .instances
                .values()
                .filter(|i| i.alive && !members.contains(i.id.as_str()))
            {
                let launched_at = i
                    .tags
                    .get(tags::LAUNCHED_AT)
                    .and_then(Timestamp::parse_rfc3339)
                    .map_or(i.launched, Timestamp::unix);
                let detached = i.tags.get(tags::DETACHED_AT).and_then(Timestamp::parse_rfc3339);
                let stale = match detached {
                    Some(d) => t - d.unix() > spotswap_core::reap::DETACHED_GRACE_MINUTES * 60,
                    None => i.tags.contains_key(tags::GROUP) && t - launched_at >= age,
                };
                if stale {
                    violations.push(format!("t={t} {} of ours runs outside every group", i.id));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use spotswap_core::Reason;

    const TWO: &str = r#"{"name": "t", "hours": 1,
      "pools": [{"type": "m5.large", "az": "us-east-1a", "spot_price": 0.03, "on_demand_price": 0.096}],
      "groups": [{"name": "on", "instance_type": "m5.large", "azs": ["us-east-1a"], "desired": 2,
                  "tags": {"spotswap:enabled": "true"}},
                 {"name": "off", "instance_type": "m5.large", "azs": ["us-east-1a"], "desired": 1}]}"#;

    fn world() -> (Spotswap, World) {
        let s = Scenario::parse(TWO, std::path::Path::new(".")).unwrap();
        let mut w = World::new(&s, |_| Template::OnDemand);
        w.fill_initial();
        (Spotswap::new(&s), w)
    }

    #[test]
    fn every_mutating_action_costs_at_least_one_call() {
        assert_eq!(action_calls(&ActionKind::Wait), 0);
        assert_eq!(
            action_calls(&ActionKind::Terminate {
                instance: "i-1".into()
            }),
            1
        );
    }

    #[test]
    fn the_checks_catch_an_early_retire_and_an_action_on_an_unmanaged_group() {
        // GIVEN a managed and an unmanaged group, and a replacement still booting
        let (mut policy, mut w) = world();
        let original = w.groups[0].members[0].id.clone();
        let booting = w.launch(0, Lifecycle::Spot, InstanceTags::new());
        // WHEN the original is retired before the replacement serves, and the unmanaged group
        // is touched
        let retire = ActionKind::Retire {
            instance: original,
            replacement: booting,
        };
        policy
            .apply(&mut w, &Action::new(retire, Reason::ReplacementInService, "on"))
            .unwrap();
        let raise = ActionKind::RaiseMax { from: 1, to: 2 };
        policy
            .apply(&mut w, &Action::new(raise, Reason::MaxSizeAtDesired, "off"))
            .unwrap();
        // THEN both are reported, and the capacity check sees the gap the retire left
        let mut found = Vec::new();
        policy.check(&w, &mut found);
        assert!(found.iter().any(|v| v.contains("before")), "{found:?}");
        assert!(found.iter().any(|v| v.contains("unmanaged")), "{found:?}");
        assert!(found.iter().any(|v| v.contains("InService")), "{found:?}");
    }
}
