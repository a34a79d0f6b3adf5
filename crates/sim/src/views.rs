//! The core's snapshot types built from the simulated world, as the adapter
//! (`crates/aws/src/snapshot.rs`) reads them from AWS: instances with their tags, lifecycle,
//! state, status checks, architecture and a `subnet-<az>`; groups with members, desired, MaxSize,
//! a launch template, the grace period and their tags; the market from the built-in specs.

use std::collections::BTreeMap;

use spotswap_core::tags;
use spotswap_core::{
    GroupSnapshot, Instance, InstanceState, LaunchSource, LaunchTemplateRef, Market, Member, MemberState,
    PriceSource, Timestamp,
};

use crate::world::{SimInstance, World};

/// The simulated subnet of `az`.
pub(crate) fn subnet(az: &str) -> String {
    format!("subnet-{az}")
}

/// EC2's view of a simulated instance.
pub fn instance_view(world: &World, i: &SimInstance) -> Instance {
    let pool = &world.pools[i.pool];
    let running = i.running(world.now);
    Instance {
        id: i.id.clone(),
        instance_type: pool.spec.pool.instance_type.clone(),
        az: pool.spec.pool.az.clone(),
        subnet_id: Some(subnet(&pool.spec.pool.az)),
        lifecycle: i.lifecycle,
        state: match (i.alive, running) {
            (false, _) => InstanceState::Gone,
            (true, true) => InstanceState::Running,
            (true, false) => InstanceState::Pending,
        },
        launch_time: Timestamp::from_unix(i.launched),
        status_ok: Some(running),
        termination_protected: Some(false),
        tags: i.tags.clone(),
        architecture: pool.spec.spec.architectures.first().cloned(),
        image: Default::default(),
        billing: Default::default(),
    }
}

/// Auto Scaling's view of a simulated group.
pub fn group_view(world: &World, g: usize) -> GroupSnapshot {
    let group = &world.groups[g];
    GroupSnapshot {
        name: group.name.clone(),
        min_size: group.min_size,
        max_size: group.max_size,
        desired: group.desired,
        health_check_grace_secs: group.grace_secs,
        launch_source: LaunchSource::Template(LaunchTemplateRef {
            id: Some(format!("lt-{:017x}", g + 1)),
            name: None,
            version: "$Latest".into(),
        }),
        subnets: group.azs.iter().map(|az| subnet(az)).collect(),
        availability_zones: group.azs.clone(),
        tags: group.tags.clone(),
        propagated_tags: BTreeMap::new(),
        members: group
            .members
            .iter()
            .map(|m| Member {
                id: m.id.clone(),
                state: if m.in_service(world.now) {
                    MemberState::InService
                } else {
                    MemberState::Pending
                },
                healthy: true,
                protected_from_scale_in: false,
                weight: None,
            })
            .collect(),
        status: None,
        instance_refresh_in_progress: Some(false),
        has_terminating_hook: Some(false),
        has_launching_hook: Some(false),
        has_warm_pool: false,
        mixed: None,
        suspended_processes: Vec::new(),
        max_instance_lifetime_secs: None,
        template_version_now: None,
        stack_status: None,
        from_launch_config: None,
        carried: None,
        spot_failed_at: None,
    }
}

/// The market the adapter reads: built-in specs, the latest spot price of every pool (spot
/// price history knows nothing of capacity) and on-demand prices.
pub fn market_view(world: &World) -> Market {
    let mut m = Market {
        types: BTreeMap::new(),
        spot_prices: BTreeMap::new(),
        on_demand_prices: BTreeMap::new(),
        price_source: PriceSource::PriceFile,
    };
    for p in &world.pools {
        m.types
            .insert(p.spec.pool.instance_type.clone(), p.spec.spec.clone());
        m.spot_prices.insert(p.spec.pool.clone(), p.spot_price);
        m.on_demand_prices
            .insert(p.spec.pool.instance_type.clone(), p.spec.on_demand_price);
    }
    m
}

/// Members of any group and every instance carrying our tags: what the adapter reads.
pub fn instances_view(world: &World) -> BTreeMap<String, Instance> {
    world
        .instances
        .values()
        .filter(|i| i.alive)
        .filter(|i| {
            i.tags.contains_key(tags::AWS_ASG_NAME)
                || i.tags.contains_key(tags::GROUP)
                || i.tags.contains_key(tags::DETACHED_AT)
        })
        .map(|i| (i.id.clone(), instance_view(world, i)))
        .collect()
}
