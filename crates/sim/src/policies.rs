//! The policies compared, by their FIXED names. `spotswap` (the real core) lives in
//! [`crate::spotswap`]; the others are small models of documented behaviour.

use std::fmt;
use std::str::FromStr;

use spotswap_core::tags::InstanceTags;
use spotswap_core::{policy::required_on_demand, Lifecycle, Policy};

use crate::scenario::{GroupSpec, Scenario, ScenarioError};
use crate::world::{Template, World};

/// A policy's FIXED name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PolicyName {
    /// The real spotswap core.
    Spotswap,
    /// A MixedInstancesPolicy group with Capacity Rebalancing.
    AwsNative,
    /// AutoSpotting CE.
    Autospotting,
    /// Spot of the group's own type only.
    SingleType,
    /// All on-demand: the baseline.
    OnDemand,
}

impl PolicyName {
    /// Every policy, in report order.
    pub const ALL: [PolicyName; 5] = [
        Self::Spotswap,
        Self::AwsNative,
        Self::Autospotting,
        Self::SingleType,
        Self::OnDemand,
    ];

    /// The FIXED name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Spotswap => "spotswap",
            Self::AwsNative => "aws-native",
            Self::Autospotting => "autospotting",
            Self::SingleType => "single-type",
            Self::OnDemand => "on-demand",
        }
    }

    /// A comma-separated list (`spotswap,aws-native`), or every policy for `None`.
    pub fn parse_list(list: Option<&str>) -> Result<Vec<PolicyName>, ScenarioError> {
        let Some(list) = list else {
            return Ok(Self::ALL.to_vec());
        };
        let mut out = Vec::new();
        for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let p: PolicyName = name.parse()?;
            if !out.contains(&p) {
                out.push(p);
            }
        }
        if out.is_empty() {
            return Err(ScenarioError::new("policies", "no policy named"));
        }
        Ok(out)
    }
}

impl FromStr for PolicyName {
    type Err = ScenarioError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|p| p.as_str() == s).ok_or_else(|| {
            ScenarioError::new(
                "policies",
                format!("unknown policy {s:?} (expected spotswap, aws-native, autospotting, single-type or on-demand)"),
            )
        })
    }
}

impl fmt::Display for PolicyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a policy does in the simulated region.
pub trait SimPolicy {
    /// How the group's own launches are made.
    fn template(&self, group: &GroupSpec) -> Template;
    /// React to this step's interruption warnings and rebalance recommendations.
    fn on_events(&mut self, _world: &mut World) {}
    /// Scheduled work at step `k`.
    fn tick(&mut self, _world: &mut World, _k: u64) {}
    /// Check invariants after the step (the spotswap policy only).
    fn check(&mut self, _world: &World, _violations: &mut Vec<String>) {}
}

/// The policy `name` for `scenario`.
pub fn make(name: PolicyName, scenario: &Scenario) -> Box<dyn SimPolicy> {
    match name {
        PolicyName::Spotswap => Box::new(crate::spotswap::Spotswap::new(scenario)),
        PolicyName::AwsNative => Box::new(AwsNative),
        PolicyName::Autospotting => Box::new(AutoSpotting::new(scenario)),
        PolicyName::SingleType => Box::new(Fixed(Template::SpotOwnType)),
        PolicyName::OnDemand => Box::new(Fixed(Template::OnDemand)),
    }
}

/// The group's risk floor from its spotswap tags (base, percent), for the policies that map it.
fn floor_of(group_tags: &std::collections::BTreeMap<String, String>) -> (u32, u32) {
    let p = Policy::from_tags(group_tags, &Policy::default()).unwrap_or_default();
    (p.on_demand_base, p.on_demand_percent)
}

/// `single-type` and `on-demand`: the group's template does everything.
struct Fixed(Template);

impl SimPolicy for Fixed {
    fn template(&self, _group: &GroupSpec) -> Template {
        self.0.clone()
    }
}

/// `aws-native`: a MixedInstancesPolicy over the same compatible pools, the floor mapped to
/// OnDemandBaseCapacity / OnDemandPercentageAboveBaseCapacity, Capacity Rebalancing on. The
/// group's reconcile ([`World::reconcile`]) carries all of it; AWS makes no calls on our bill.
struct AwsNative;

impl SimPolicy for AwsNative {
    fn template(&self, group: &GroupSpec) -> Template {
        let (base, percent) = floor_of(&group.tags);
        Template::Mixed { base, percent }
    }
}

/// AutoSpotting CE, as documented: every run (5 minutes) at most one replacement per group per
/// 30 minutes: the cheapest compatible spot type in the on-demand instance's AZ, launched
/// outside the group, attached once running past the grace period, then the on-demand instance
/// is terminated. On a termination notice it detaches the spot instance and the group's
/// template launches on-demand.
struct AutoSpotting {
    per_run_steps: u64,
    last: Vec<Option<i64>>,
    /// (group, spot launch, the on-demand instance it replaces).
    pending: Vec<(usize, String, String)>,
}

/// AutoSpotting's replacement interval, seconds.
const AUTOSPOTTING_INTERVAL: i64 = 30 * 60;

impl AutoSpotting {
    fn new(scenario: &Scenario) -> Self {
        Self {
            per_run_steps: (300 / u64::from(scenario.step_seconds)).max(1),
            last: vec![None; scenario.groups.len()],
            pending: Vec::new(),
        }
    }
}

impl SimPolicy for AutoSpotting {
    fn template(&self, _group: &GroupSpec) -> Template {
        Template::OnDemand
    }

    fn on_events(&mut self, world: &mut World) {
        for id in world.warned.clone() {
            if let Some(g) = world.group_of(&id) {
                world.counters.api_calls += 1; // DetachInstances
                world.remove_member(g, &id, false);
            }
        }
    }

    fn tick(&mut self, world: &mut World, k: u64) {
        if !k.is_multiple_of(self.per_run_steps) {
            return;
        }
        world.counters.api_calls += 3; // DescribeAutoScalingGroups, DescribeInstances, DescribeSpotPriceHistory
        let now = world.now;
        // Finish replacements whose spot instance runs past the grace period.
        let mut still = Vec::new();
        for (g, spot, original) in std::mem::take(&mut self.pending) {
            let Some(inst) = world.instances.get(&spot).filter(|i| i.alive) else {
                continue;
            };
            let grace = i64::from(world.groups[g].grace_secs);
            if !inst.running(now) || now - inst.ready_at < grace {
                still.push((g, spot, original));
                continue;
            }
            if inst.interrupt_at.is_some() || world.group_of(&original) != Some(g) {
                world.kill(&spot);
                world.counters.api_calls += 1;
                continue;
            }
            // Raise MaxSize if needed, attach, terminate the original with decrement, restore.
            let group = &mut world.groups[g];
            let raised = group.desired + 1 > group.max_size;
            if raised {
                group.max_size += 1;
                world.counters.api_calls += 2;
            }
            if world.attach(g, &spot).is_ok() {
                world.remove_member(g, &original, true);
                world.kill(&original);
                world.counters.swaps += 1;
                world.counters.api_calls += 2;
            }
            if raised {
                world.groups[g].max_size -= 1;
            }
        }
        self.pending = still;
        for g in 0..world.groups.len() {
            if self.pending.iter().any(|p| p.0 == g)
                || self.last[g].is_some_and(|t| now - t < AUTOSPOTTING_INTERVAL)
            {
                continue;
            }
            let group = &world.groups[g];
            if world.in_service_count(g) < group.desired {
                continue;
            }
            let (base, percent) = floor_of(&group.tags);
            let floor = required_on_demand(group.desired, base, percent);
            let mut od: Vec<(i64, String)> = group
                .members
                .iter()
                .filter_map(|m| world.instances.get(&m.id))
                .filter(|i| i.lifecycle == Lifecycle::OnDemand && i.running(now))
                .map(|i| (i.launched, i.id.clone()))
                .collect();
            if od.len() as u32 <= floor {
                continue;
            }
            od.sort();
            let original = od[0].1.clone();
            let inst = &world.instances[&original];
            let az = world.pools[inst.pool].spec.pool.az.clone();
            let ty = group.instance_type.clone();
            let name = group.name.clone();
            self.last[g] = Some(now);
            if let Some(pool) = world.cheapest_compatible(&ty, &az) {
                let mut t = InstanceTags::new();
                t.insert("autospotting:group".to_string(), name);
                let spot = world.launch(pool, Lifecycle::Spot, t);
                world.counters.api_calls += 1; // RunInstances
                self.pending.push((g, spot, original));
            }
        }
    }
}
