//! The discrete-time loop: the market's weather, then the policy, then each group's own work,
//! then the metrics. One `World` per policy; the weather depends only on the scenario and seed.

use spotswap_core::Lifecycle;

use crate::policies::{make, PolicyName, SimPolicy};
use crate::scenario::{EventKind, Scenario};
use crate::world::World;

/// One point of a policy's time series (for `--plot`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Hours since the start.
    pub hour: f64,
    /// Desired capacity the scenario asks for, all groups.
    pub desired: u32,
    /// InService members, all groups.
    pub in_service: u32,
    /// InService spot members.
    pub spot: u32,
    /// InService on-demand members.
    pub on_demand: u32,
    /// Cost so far, USD.
    pub cost: f64,
}

/// What one policy did over the scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyResult {
    /// The policy's FIXED name.
    pub policy: PolicyName,
    /// USD spent on instances, and on commitments (their fees, used or not).
    pub cost: f64,
    /// USD of commitment fees that covered nothing (RI units and plan commitment unused).
    pub commitment_unused: f64,
    /// The scenario has commitments.
    pub commitments: bool,
    /// USD the desired capacity costs on-demand over the same time.
    pub on_demand_cost: f64,
    /// Σ max(desired − InService, 0) × minutes.
    pub shortfall_instance_minutes: f64,
    /// Largest total gap at any step.
    pub max_shortfall: u32,
    /// Spot interruption warnings.
    pub interruptions: u64,
    /// Completed swaps to spot.
    pub swaps: u64,
    /// On-demand launches because spot could not be had.
    pub fallbacks: u64,
    /// AWS calls.
    pub api_calls: u64,
    /// Time series, one sample per simulated 10 minutes.
    pub series: Vec<Sample>,
    /// Invariant violations seen (checked for the spotswap policy only).
    pub violations: Vec<String>,
}

impl PolicyResult {
    /// `(1 − cost / on_demand_cost) × 100`.
    pub fn savings_percent(&self) -> f64 {
        if self.on_demand_cost > 0.0 {
            (1.0 - self.cost / self.on_demand_cost) * 100.0
        } else {
            0.0
        }
    }
}

/// SplitMix64 of a few words: the simulation's only randomness, a pure function of the seed
/// and the draw's coordinates, so every policy sees the same draws.
pub fn draw(seed: u64, a: u64, b: u64, c: u64) -> f64 {
    let mut x = seed
        ^ a.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ b.wrapping_mul(0xC2B2_AE3D_27D4_EB4F)
        ^ c.rotate_left(31);
    for _ in 0..2 {
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        x = z ^ (z >> 31);
    }
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// Run one policy over the scenario.
pub fn run_policy(scenario: &Scenario, name: PolicyName) -> PolicyResult {
    let mut policy: Box<dyn SimPolicy> = make(name, scenario);
    let mut world = World::new(scenario, |g| policy.template(g));
    let billing = crate::commitments::Billing::new(scenario);
    world.fill_initial();
    let step = i64::from(scenario.step_seconds);
    let hours_per_step = step as f64 / 3600.0;
    let start = world.now;
    let mut out = PolicyResult {
        policy: name,
        cost: 0.0,
        commitment_unused: 0.0,
        commitments: billing.is_some(),
        on_demand_cost: 0.0,
        shortfall_instance_minutes: 0.0,
        max_shortfall: 0,
        interruptions: 0,
        swaps: 0,
        fallbacks: 0,
        api_calls: 0,
        series: Vec::new(),
        violations: Vec::new(),
    };
    let sample_every = (600 / step).max(1) as u64;
    let mut next_event = 0;
    for k in 0..scenario.steps() {
        world.now = start + k as i64 * step;
        weather(scenario, &mut world, k, &mut next_event);
        policy.on_events(&mut world);
        policy.tick(&mut world, k);
        for g in 0..world.groups.len() {
            world.reconcile(g);
        }
        policy.check(&world, &mut out.violations);
        // Metrics over [now, now + step).
        let mut gap = 0;
        let mut s = Sample {
            hour: (world.now - start) as f64 / 3600.0,
            desired: 0,
            in_service: 0,
            spot: 0,
            on_demand: 0,
            cost: 0.0,
        };
        for (g, group) in world.groups.iter().enumerate() {
            let serving = world.in_service_count(g);
            gap += group.user_desired.saturating_sub(serving);
            s.desired += group.user_desired;
            s.in_service += serving;
            for m in group.members.iter().filter(|m| m.in_service(world.now)) {
                match m.lifecycle {
                    Lifecycle::Spot => s.spot += 1,
                    Lifecycle::OnDemand => s.on_demand += 1,
                }
            }
            out.on_demand_cost +=
                f64::from(group.user_desired) * world.on_demand_price(&group.instance_type) * hours_per_step;
        }
        // With commitments, on-demand is billed through them (fees, then what they leave).
        let bill = billing.as_ref().map(|b| b.bill(&world));
        for i in world.instances.values().filter(|i| i.alive) {
            let pool = &world.pools[i.pool];
            let price = match i.lifecycle {
                Lifecycle::Spot => pool.spot_price,
                Lifecycle::OnDemand if bill.is_some() => 0.0,
                Lifecycle::OnDemand => pool.spec.on_demand_price,
            };
            out.cost += price * hours_per_step;
        }
        if let Some(b) = bill {
            out.cost += b.on_demand * hours_per_step;
            out.commitment_unused += b.unused * hours_per_step;
        }
        out.shortfall_instance_minutes += f64::from(gap) * step as f64 / 60.0;
        out.max_shortfall = out.max_shortfall.max(gap);
        if k % sample_every == 0 {
            s.cost = out.cost;
            out.series.push(s);
        }
        world.collect_garbage();
    }
    out.interruptions = world.counters.interruptions;
    out.swaps = world.counters.swaps;
    out.fallbacks = world.counters.fallbacks;
    out.api_calls = world.counters.api_calls;
    out
}

/// This step's weather: boots, interruptions that are due, scenario events, background
/// interruption draws.
fn weather(scenario: &Scenario, world: &mut World, k: u64, next_event: &mut usize) {
    let now = world.now;
    let due: Vec<String> = world
        .instances
        .values()
        .filter(|i| i.alive && i.interrupt_at.is_some_and(|t| t <= now))
        .map(|i| i.id.clone())
        .collect();
    for id in due {
        world.kill(&id);
    }
    let since_start = now - crate::scenario::START.unix();
    while let Some(e) = scenario
        .events
        .get(*next_event)
        .filter(|e| e.at_secs <= since_start)
    {
        *next_event += 1;
        match &e.kind {
            EventKind::CapacityLost { pools, secs } => {
                for &p in pools {
                    world.pools[p].lost_until = world.pools[p].lost_until.max(now + secs);
                    world.warn_pool(p);
                }
            }
            EventKind::Rebalance { pools } => {
                for &p in pools {
                    world.recommend_pool(p);
                }
            }
            EventKind::Price { pool, spot_price } => {
                world.pools[*pool].spot_price = *spot_price;
                // Above the default max price (the on-demand price), spot is interrupted.
                if *spot_price > world.pools[*pool].spec.on_demand_price {
                    world.warn_pool(*pool);
                }
            }
            EventKind::Desired { group, desired } => {
                // As a scaling policy's ChangeInCapacity: a swap in flight keeps its +1.
                let g = &mut world.groups[*group];
                let delta = i64::from(*desired) - i64::from(g.user_desired);
                g.user_desired = *desired;
                g.desired =
                    (i64::from(g.desired) + delta).clamp(i64::from(g.min_size), i64::from(g.max_size)) as u32;
            }
            EventKind::AzOutage { az, secs } => {
                world.az_down_until.insert(az.clone(), now + secs);
                let ids: Vec<String> = world
                    .instances
                    .values()
                    .filter(|i| i.alive && world.pools[i.pool].spec.pool.az == *az)
                    .map(|i| i.id.clone())
                    .collect();
                for id in ids {
                    world.kill(&id);
                }
            }
        }
    }
    let rate = scenario.interruption_rate_per_hour;
    if rate > 0.0 {
        // Ids are zero-padded and issued in order, so map order is launch order: the n-th
        // running spot instance of a pool draws the pool's n-th number of the step.
        let p = rate * f64::from(scenario.step_seconds) / 3600.0;
        let mut rank = vec![0u64; world.pools.len()];
        let mut hit = Vec::new();
        for i in world.instances.values() {
            if i.running(now) && i.lifecycle == Lifecycle::Spot && i.interrupt_at.is_none() {
                if draw(scenario.seed, k, i.pool as u64, rank[i.pool]) < p {
                    hit.push(i.id.clone());
                }
                rank[i.pool] += 1;
            }
        }
        for id in hit {
            world.warn(&id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_are_uniform_enough_and_repeatable() {
        let n = 10_000;
        let mean: f64 = (0..n).map(|i| draw(7, i, 0, 0)).sum::<f64>() / n as f64;
        assert!((mean - 0.5).abs() < 0.02, "{mean}");
        assert_eq!(draw(1, 2, 3, 4), draw(1, 2, 3, 4));
        assert_ne!(draw(1, 2, 3, 4), draw(2, 2, 3, 4));
    }
}
