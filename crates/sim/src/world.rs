//! The simulated AWS side of one region: instances, Auto Scaling groups, and a spot market
//! per pool. State lives where AWS keeps it: tags on groups and instances.
//!
//! Every policy gets its own `World` over the same scenario; the market's weather (capacity
//! losses, prices, background interruption draws) is a function of the scenario and the seed
//! only, so every policy sees the same.

use std::collections::BTreeMap;

use spotswap_core::tags::{self, InstanceTags};
use spotswap_core::{Lifecycle, Pool, Timestamp};

use crate::scenario::{GroupSpec, PoolSpec, Scenario, START};

/// How a group's own launches are made (its launch template, or mixed instances policy).
#[derive(Debug, Clone, PartialEq)]
pub enum Template {
    /// On-demand of the group's type.
    OnDemand,
    /// Spot of the group's type only: no other type, no fallback.
    SpotOwnType,
    /// A mixed instances policy over the compatible pools: on-demand base and percentage,
    /// spot price-capacity-optimized, Capacity Rebalancing on, no fallback to on-demand.
    Mixed {
        /// OnDemandBaseCapacity.
        base: u32,
        /// OnDemandPercentageAboveBaseCapacity.
        percent: u32,
    },
}

/// CreateFleet's `InsufficientInstanceCapacity` in every pool offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoCapacity;

/// One simulated instance.
#[derive(Debug, Clone)]
pub struct SimInstance {
    /// `i-` and 17 hex digits.
    pub id: String,
    /// Index of its pool (type × AZ) in `World::pools`.
    pub pool: usize,
    /// Spot or on-demand.
    pub lifecycle: Lifecycle,
    /// When EC2 launched it.
    pub launched: i64,
    /// When it is running with status checks passed.
    pub ready_at: i64,
    /// Alive: pending or running. False once terminated.
    pub alive: bool,
    /// When the 2-minute interruption warning ends it.
    pub interrupt_at: Option<i64>,
    /// A rebalance recommendation was issued for it.
    pub at_risk: bool,
    /// Tags.
    pub tags: InstanceTags,
}

impl SimInstance {
    /// Running, status checks passed.
    pub fn running(&self, now: i64) -> bool {
        self.alive && now >= self.ready_at
    }
}

/// One member of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimMember {
    /// Instance id.
    pub id: String,
    /// Launched by the group itself (not attached).
    pub own_launch: bool,
    /// A copy of the instance's `ready_at`, `alive` and lifecycle, so the per-step counts need
    /// no look-up ([`World::kill`] keeps `alive` in step).
    pub ready_at: i64,
    /// The instance is alive.
    pub alive: bool,
    /// Its lifecycle.
    pub lifecycle: Lifecycle,
}

impl SimMember {
    /// A member for `inst`.
    pub fn of(inst: &SimInstance, own_launch: bool) -> Self {
        Self {
            id: inst.id.clone(),
            own_launch,
            ready_at: inst.ready_at,
            alive: inst.alive,
            lifecycle: inst.lifecycle,
        }
    }

    /// InService: alive and running.
    pub fn in_service(&self, now: i64) -> bool {
        self.alive && now >= self.ready_at
    }
}

/// One simulated Auto Scaling group.
#[derive(Debug, Clone)]
pub struct SimGroup {
    /// Name.
    pub name: String,
    /// Type of its template.
    pub instance_type: String,
    /// Its AZs.
    pub azs: Vec<String>,
    /// MinSize.
    pub min_size: u32,
    /// MaxSize.
    pub max_size: u32,
    /// DesiredCapacity (the group's own, raised by attaches).
    pub desired: u32,
    /// The capacity the scenario asks for: what shortfall is measured against.
    pub user_desired: u32,
    /// HealthCheckGracePeriod, seconds.
    pub grace_secs: u32,
    /// Group tags.
    pub tags: BTreeMap<String, String>,
    /// Members.
    pub members: Vec<SimMember>,
    /// How it launches.
    pub template: Template,
    /// Spot members lost (interrupted, detached) whose on-demand replacement is a fallback.
    pub lost_spot: u32,
    /// Launches the group could not make in the last reconcile.
    pub failed_launches: u32,
}

/// One spot pool's market state.
#[derive(Debug, Clone)]
pub struct PoolState {
    /// Scenario data.
    pub spec: PoolSpec,
    /// Current spot price.
    pub spot_price: f64,
    /// No spot capacity until then.
    pub lost_until: i64,
}

/// Counters every policy reports.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Counters {
    /// Spot interruption warnings.
    pub interruptions: u64,
    /// Completed replacements of a running instance by a spot one.
    pub swaps: u64,
    /// On-demand launches because spot could not be had.
    pub fallbacks: u64,
    /// AWS calls the policy makes (see sim/README.md for the costs).
    pub api_calls: u64,
}

/// The region.
#[derive(Debug, Clone)]
pub struct World {
    /// Now, Unix seconds.
    pub now: i64,
    /// Boot time, seconds.
    pub boot_secs: i64,
    /// Instances, alive and those that died this step.
    pub instances: BTreeMap<String, SimInstance>,
    /// Groups, in scenario order.
    pub groups: Vec<SimGroup>,
    /// Pools, in scenario order.
    pub pools: Vec<PoolState>,
    /// Pool index by pool.
    pub pool_index: BTreeMap<Pool, usize>,
    /// AZs out until.
    pub az_down_until: BTreeMap<String, i64>,
    /// Instances warned this step.
    pub warned: Vec<String>,
    /// Instances recommended for rebalance this step.
    pub recommended: Vec<String>,
    /// Counters.
    pub counters: Counters,
    next_id: u64,
}

impl World {
    /// A world for `scenario`, groups launching as `templates` says (one per group).
    pub fn new(scenario: &Scenario, templates: impl Fn(&GroupSpec) -> Template) -> Self {
        let pools: Vec<PoolState> = scenario
            .pools
            .iter()
            .map(|p| PoolState {
                spec: p.clone(),
                spot_price: p.spot_price,
                lost_until: i64::MIN,
            })
            .collect();
        let pool_index = pools
            .iter()
            .enumerate()
            .map(|(i, p)| (p.spec.pool.clone(), i))
            .collect();
        let groups = scenario
            .groups
            .iter()
            .map(|g| SimGroup {
                name: g.name.clone(),
                instance_type: g.instance_type.clone(),
                azs: g.azs.clone(),
                min_size: g.min_size,
                max_size: g.max_size,
                desired: g.desired,
                user_desired: g.desired,
                grace_secs: g.health_check_grace_secs,
                tags: g.tags.clone(),
                members: Vec::new(),
                template: templates(g),
                lost_spot: 0,
                failed_launches: 0,
            })
            .collect();
        Self {
            now: START.unix(),
            boot_secs: i64::from(scenario.boot_seconds),
            instances: BTreeMap::new(),
            groups,
            pools,
            pool_index,
            az_down_until: BTreeMap::new(),
            warned: Vec::new(),
            recommended: Vec::new(),
            counters: Counters::default(),
            next_id: 0,
        }
    }

    /// Fill every group to desired with instances that have been running for a day.
    pub fn fill_initial(&mut self) {
        let boot = self.boot_secs;
        self.boot_secs = 0;
        let now = self.now;
        self.now = now - 86_400;
        for g in 0..self.groups.len() {
            self.reconcile(g);
        }
        self.now = now;
        self.boot_secs = boot;
    }

    /// The clock as a core timestamp.
    pub fn timestamp(&self) -> Timestamp {
        Timestamp::from_unix(self.now)
    }

    /// The pool of an instance.
    pub fn pool_of(&self, inst: &SimInstance) -> &Pool {
        &self.pools[inst.pool].spec.pool
    }

    /// The on-demand price of a type (from any of its pools).
    pub fn on_demand_price(&self, instance_type: &str) -> f64 {
        self.pools
            .iter()
            .find(|p| p.spec.pool.instance_type == instance_type)
            .map_or(0.0, |p| p.spec.on_demand_price)
    }

    /// The AZ is up.
    pub fn az_up(&self, az: &str) -> bool {
        self.az_down_until.get(az).is_none_or(|&u| self.now >= u)
    }

    /// A spot launch into pool `p` would succeed now: capacity not lost, the AZ up, the price
    /// at most the type's on-demand price (the default max price) and room under its capacity.
    pub fn spot_available(&self, p: usize) -> bool {
        let pool = &self.pools[p];
        if self.now < pool.lost_until
            || !self.az_up(&pool.spec.pool.az)
            || pool.spot_price > pool.spec.on_demand_price
        {
            return false;
        }
        match pool.spec.capacity {
            None => true,
            Some(cap) => {
                let used = self
                    .instances
                    .values()
                    .filter(|i| i.alive && i.pool == p && i.lifecycle == Lifecycle::Spot)
                    .count();
                used < cap as usize
            }
        }
    }

    /// EC2 launches an instance; it is running `boot_secs` later.
    pub fn launch(&mut self, pool: usize, lifecycle: Lifecycle, tags: InstanceTags) -> String {
        self.next_id += 1;
        let id = format!("i-{:017x}", self.next_id);
        self.instances.insert(
            id.clone(),
            SimInstance {
                id: id.clone(),
                pool,
                lifecycle,
                launched: self.now,
                ready_at: self.now + self.boot_secs,
                alive: true,
                interrupt_at: None,
                at_risk: false,
                tags,
            },
        );
        id
    }

    /// CreateFleet instant, spot, price-capacity-optimized (approximated: the cheapest offered
    /// pool with capacity). `Err` is `InsufficientInstanceCapacity` in every pool offered.
    pub fn create_fleet(&mut self, offered: &[Pool], tags: InstanceTags) -> Result<String, NoCapacity> {
        let best = offered
            .iter()
            .filter_map(|p| self.pool_index.get(p).copied())
            .filter(|&p| self.spot_available(p))
            .min_by(|&a, &b| {
                self.pools[a]
                    .spot_price
                    .total_cmp(&self.pools[b].spot_price)
                    .then(a.cmp(&b))
            });
        match best {
            Some(p) => Ok(self.launch(p, Lifecycle::Spot, tags)),
            None => Err(NoCapacity),
        }
    }

    /// Terminate an instance (TerminateInstances): it is gone at once.
    pub fn kill(&mut self, id: &str) {
        if let Some(i) = self.instances.get_mut(id) {
            if !i.alive {
                return;
            }
            i.alive = false;
        }
        for g in &mut self.groups {
            if let Some(m) = g.members.iter_mut().find(|m| m.id == id) {
                m.alive = false;
            }
        }
    }

    /// The group listing `id`, if any.
    pub fn group_of(&self, id: &str) -> Option<usize> {
        self.groups
            .iter()
            .position(|g| g.members.iter().any(|m| m.id == id))
    }

    /// Give a spot instance its 2-minute warning (once).
    pub fn warn(&mut self, id: &str) {
        let now = self.now;
        if let Some(i) = self.instances.get_mut(id) {
            if i.alive && i.lifecycle == Lifecycle::Spot && i.interrupt_at.is_none() {
                i.interrupt_at = Some(now + 120);
                self.counters.interruptions += 1;
                self.warned.push(id.to_string());
            }
        }
    }

    /// Warn every spot instance in pool `p`.
    pub fn warn_pool(&mut self, p: usize) {
        let ids: Vec<String> = self
            .instances
            .values()
            .filter(|i| i.alive && i.pool == p && i.lifecycle == Lifecycle::Spot)
            .map(|i| i.id.clone())
            .collect();
        for id in ids {
            self.warn(&id);
        }
    }

    /// A rebalance recommendation for every spot instance in pool `p`.
    pub fn recommend_pool(&mut self, p: usize) {
        for i in self.instances.values_mut() {
            if i.alive
                && i.pool == p
                && i.lifecycle == Lifecycle::Spot
                && !i.at_risk
                && i.interrupt_at.is_none()
            {
                i.at_risk = true;
                self.recommended.push(i.id.clone());
            }
        }
    }

    /// Member `id` of group `g` is InService: a member whose instance is running.
    pub fn in_service(&self, id: &str) -> bool {
        self.instances.get(id).is_some_and(|i| i.running(self.now))
    }

    /// InService members of group `g`.
    pub fn in_service_count(&self, g: usize) -> u32 {
        self.groups[g]
            .members
            .iter()
            .filter(|m| m.in_service(self.now))
            .count() as u32
    }

    /// Remove a member (detach, terminate in group); `decrement` lowers desired.
    pub fn remove_member(&mut self, g: usize, id: &str, decrement: bool) -> bool {
        let group = &mut self.groups[g];
        let Some(at) = group.members.iter().position(|m| m.id == id) else {
            return false;
        };
        group.members.remove(at);
        if decrement {
            group.desired = group.desired.saturating_sub(1).max(group.min_size);
        } else if self
            .instances
            .get(id)
            .is_some_and(|i| i.lifecycle == Lifecycle::Spot)
        {
            group.lost_spot += 1;
        }
        if let Some(i) = self.instances.get_mut(id) {
            i.tags.remove(tags::AWS_ASG_NAME);
        }
        true
    }

    /// AttachInstances: the instance must run and be in no group, and desired + 1 fit MaxSize.
    pub fn attach(&mut self, g: usize, id: &str) -> Result<(), String> {
        let now = self.now;
        match self.instances.get(id) {
            Some(i) if i.running(now) => {}
            _ => return Err(format!("ValidationError: {id} is not running")),
        }
        if self.group_of(id).is_some() {
            return Err(format!("ValidationError: {id} is already in a group"));
        }
        let group = &mut self.groups[g];
        if group.desired + 1 > group.max_size {
            return Err("ValidationError: desired capacity above MaxSize".into());
        }
        group.desired += 1;
        let member = SimMember::of(&self.instances[id], false);
        let group = &mut self.groups[g];
        group.members.push(member);
        let name = group.name.clone();
        if let Some(i) = self.instances.get_mut(id) {
            i.tags.insert(tags::AWS_ASG_NAME.to_string(), name);
        }
        Ok(())
    }

    /// Forget instances that died (after the step's metrics are taken).
    pub fn collect_garbage(&mut self) {
        self.instances.retain(|_, i| i.alive);
        self.warned.clear();
        self.recommended.clear();
    }
}
