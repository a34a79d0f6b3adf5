//! An Auto Scaling group's own work: replace lost members, launch up to desired from its
//! template (AZ balanced), Capacity Rebalancing for a mixed instances policy, and scale-in.

use std::collections::BTreeMap;

use spotswap_core::candidates::{compatible, Original};
use spotswap_core::policy::{required_on_demand, TypeGlobs};
use spotswap_core::tags::{self, InstanceTags};
use spotswap_core::{Lifecycle, Pool};

use crate::world::{SimMember, Template, World};

impl World {
    /// The group's own work each step: drop members that died, launch up to desired (AZ
    /// balanced, from its template), and scale in above it.
    pub fn reconcile(&mut self, g: usize) {
        let now = self.now;
        let mut lost = Vec::new();
        self.groups[g].members.retain(|m| {
            if !m.alive {
                lost.push(m.id.clone());
            }
            m.alive
        });
        for id in lost {
            if self
                .instances
                .get(&id)
                .is_some_and(|i| i.lifecycle == Lifecycle::Spot)
            {
                self.groups[g].lost_spot += 1;
            }
        }
        let rebalancing = matches!(self.groups[g].template, Template::Mixed { .. });
        // With Capacity Rebalancing, a warned or at-risk member is already being replaced.
        let counts = |w: &World, m: &SimMember| {
            !rebalancing
                || w.instances
                    .get(&m.id)
                    .is_none_or(|i| i.interrupt_at.is_none() && !i.at_risk)
        };
        let active = self.groups[g].members.iter().filter(|m| counts(self, m)).count() as u32;
        let desired = self.groups[g].desired;
        self.groups[g].failed_launches = 0;
        for _ in active..desired {
            if !self.group_launch(g) {
                self.groups[g].failed_launches += 1;
            }
        }
        if rebalancing {
            // The at-risk and warned instances leave once their replacements are InService.
            let serving = self.groups[g]
                .members
                .iter()
                .filter(|m| counts(self, m) && m.in_service(self.now))
                .count() as u32;
            if serving >= desired {
                let leaving: Vec<String> = self.groups[g]
                    .members
                    .iter()
                    .filter(|m| !counts(self, m))
                    .map(|m| m.id.clone())
                    .collect();
                for id in leaving {
                    if self.instances[&id].interrupt_at.is_none() {
                        self.counters.swaps += 1;
                    }
                    self.remove_member(g, &id, false);
                    self.groups[g].lost_spot = self.groups[g].lost_spot.saturating_sub(1);
                    self.kill(&id);
                }
            }
        }
        let count = self.groups[g].members.iter().filter(|m| counts(self, m)).count() as u32;
        if count > desired {
            self.scale_in(g, count - desired);
        }
        let _ = now;
    }

    /// Scale in by `n`: pending members first, then the AZ with the most members, newest first.
    fn scale_in(&mut self, g: usize, n: u32) {
        for _ in 0..n {
            let group = &self.groups[g];
            let mut per_az: BTreeMap<&str, usize> = BTreeMap::new();
            for m in &group.members {
                *per_az
                    .entry(self.pools[self.instances[&m.id].pool].spec.pool.az.as_str())
                    .or_default() += 1;
            }
            let victim = group
                .members
                .iter()
                .max_by_key(|m| {
                    let i = &self.instances[&m.id];
                    (
                        !i.running(self.now),
                        per_az[self.pools[i.pool].spec.pool.az.as_str()],
                        i.launched,
                        m.id.clone(),
                    )
                })
                .map(|m| m.id.clone());
            let Some(id) = victim else { return };
            let group = &mut self.groups[g];
            group.members.retain(|m| m.id != id);
            self.kill(&id);
        }
    }

    /// One launch from the group's template. False when nothing could be launched.
    fn group_launch(&mut self, g: usize) -> bool {
        let group = &self.groups[g];
        // AZ balance: the up AZ with the fewest members.
        let mut azs: Vec<(usize, &str)> = group
            .azs
            .iter()
            .filter(|az| self.az_up(az))
            .map(|az| {
                let n = group
                    .members
                    .iter()
                    .filter(|m| self.pools[self.instances[&m.id].pool].spec.pool.az == **az)
                    .count();
                (n, az.as_str())
            })
            .collect();
        azs.sort();
        let own = |az: &str| self.pool_index.get(&Pool::new(&group.instance_type, az)).copied();
        let choice: Option<(usize, Lifecycle)> = match &group.template {
            Template::OnDemand => azs
                .first()
                .and_then(|(_, az)| own(az))
                .map(|p| (p, Lifecycle::OnDemand)),
            Template::SpotOwnType => azs
                .iter()
                .filter_map(|(_, az)| own(az))
                .find(|&p| self.spot_available(p))
                .map(|p| (p, Lifecycle::Spot)),
            Template::Mixed { base, percent } => {
                let od = group
                    .members
                    .iter()
                    .filter(|m| self.instances[&m.id].lifecycle == Lifecycle::OnDemand)
                    .count() as u32;
                if od < required_on_demand(group.desired, *base, *percent) {
                    azs.first()
                        .and_then(|(_, az)| own(az))
                        .map(|p| (p, Lifecycle::OnDemand))
                } else {
                    azs.iter()
                        .find_map(|(_, az)| self.cheapest_compatible(&group.instance_type, az))
                        .map(|p| (p, Lifecycle::Spot))
                }
            }
        };
        let Some((pool, lifecycle)) = choice else {
            return false;
        };
        let name = group.name.clone();
        let mut t = InstanceTags::new();
        t.insert(tags::AWS_ASG_NAME.to_string(), name);
        let id = self.launch(pool, lifecycle, t);
        let group = &mut self.groups[g];
        if lifecycle == Lifecycle::OnDemand && group.lost_spot > 0 {
            group.lost_spot -= 1;
            self.counters.fallbacks += 1;
        } else if lifecycle == Lifecycle::Spot {
            group.lost_spot = group.lost_spot.saturating_sub(1);
        }
        let member = SimMember::of(&self.instances[&id], true);
        self.groups[g].members.push(member);
        true
    }

    /// The cheapest pool in `az` of a type compatible with `instance_type`, priced at most its
    /// on-demand price, with spot capacity now.
    pub fn cheapest_compatible(&self, instance_type: &str, az: &str) -> Option<usize> {
        let original = self
            .pools
            .iter()
            .find(|p| p.spec.pool.instance_type == instance_type)?;
        let arch = original.spec.spec.architectures.first()?.clone();
        let od = original.spec.on_demand_price;
        (0..self.pools.len())
            .filter(|&p| {
                let pool = &self.pools[p];
                pool.spec.pool.az == az
                    && compatible(
                        &Original::new(&original.spec.spec, &arch),
                        &pool.spec.spec,
                        &TypeGlobs::default(),
                    )
                    .is_ok()
                    && pool.spot_price <= od
                    && self.spot_available(p)
            })
            .min_by(|&a, &b| {
                self.pools[a]
                    .spot_price
                    .total_cmp(&self.pools[b].spot_price)
                    .then(a.cmp(&b))
            })
    }
}
