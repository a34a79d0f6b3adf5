//! SDK answers into `spotswap-core` data.

use aws_sdk_autoscaling::types::AutoScalingGroup;
use aws_sdk_ec2::types::{InstanceLifecycleType, InstanceStateName};
use spotswap_core::compat_mode::autospotting;
use spotswap_core::mixed::{AttributeBased, MixedOverride, MixedPolicy};
use spotswap_core::{
    tags, GroupSnapshot, Instance, InstanceState, LaunchSource, LaunchTemplateRef, Lifecycle, Member,
    MemberState, Timestamp,
};

/// A group as DescribeAutoScalingGroups lists it. Refresh and hooks are other calls: unknown.
pub(super) fn group_from_sdk(g: &AutoScalingGroup) -> GroupSnapshot {
    let launch_source = if g.mixed_instances_policy().is_some() {
        LaunchSource::MixedInstances
    } else if let Some(lt) = g.launch_template() {
        LaunchSource::Template(LaunchTemplateRef {
            id: lt.launch_template_id().map(str::to_string),
            name: lt.launch_template_name().map(str::to_string),
            version: lt.version().unwrap_or("$Default").to_string(),
        })
    } else if let Some(lc) = g.launch_configuration_name() {
        LaunchSource::LaunchConfiguration(lc.to_string())
    } else {
        LaunchSource::Unknown
    };
    let mut tags = std::collections::BTreeMap::new();
    let mut propagated = std::collections::BTreeMap::new();
    for t in g.tags() {
        if let (Some(k), Some(v)) = (t.key(), t.value()) {
            tags.insert(k.to_string(), v.to_string());
            if t.propagate_at_launch() == Some(true) {
                propagated.insert(k.to_string(), v.to_string());
            }
        }
    }
    // Sized at once: grown by doubling, a member list holds up to twice its room (issue 22).
    let mut members = Vec::with_capacity(g.instances().len());
    members.extend(g.instances().iter().filter_map(|i| {
        Some(Member {
            id: i.instance_id()?.to_string(),
            state: MemberState::from_api(i.lifecycle_state().map(|s| s.as_str()).unwrap_or("")),
            healthy: i.health_status() == Some("Healthy"),
            protected_from_scale_in: i.protected_from_scale_in().unwrap_or(false),
            weight: i.weighted_capacity().and_then(|w| w.trim().parse().ok()),
        })
    }));
    GroupSnapshot {
        name: g.auto_scaling_group_name().unwrap_or_default().to_string(),
        min_size: g.min_size().unwrap_or(0).max(0) as u32,
        max_size: g.max_size().unwrap_or(0).max(0) as u32,
        desired: g.desired_capacity().unwrap_or(0).max(0) as u32,
        health_check_grace_secs: g.health_check_grace_period().unwrap_or(0).max(0) as u32,
        launch_source,
        availability_zones: g.availability_zones().to_vec(),
        subnets: g
            .vpc_zone_identifier()
            .map(|s| {
                s.split(',')
                    .map(|x| x.trim().to_string())
                    .filter(|x| !x.is_empty())
                    .collect()
            })
            .unwrap_or_default(),
        tags,
        propagated_tags: propagated,
        members,
        status: g.status().map(str::to_string),
        instance_refresh_in_progress: None,
        has_terminating_hook: None,
        has_launching_hook: None,
        has_warm_pool: g.warm_pool_configuration().is_some(),
        mixed: g
            .mixed_instances_policy()
            .and_then(|p| mixed_from_sdk(p, g.desired_capacity_type().map(str::to_string))),
        suspended_processes: g
            .suspended_processes()
            .iter()
            .filter_map(|p| p.process_name().map(str::to_string))
            .collect(),
        max_instance_lifetime_secs: g
            .max_instance_lifetime()
            .and_then(|s| u32::try_from(s).ok())
            .filter(|s| *s > 0),
        template_version_now: None,
        stack_status: None,
        from_launch_config: None,
        carried: None,
        spot_failed_at: None,
    }
}

fn template_from_sdk(
    lt: &aws_sdk_autoscaling::types::LaunchTemplateSpecification,
) -> Option<LaunchTemplateRef> {
    if lt.launch_template_id().is_none() && lt.launch_template_name().is_none() {
        return None;
    }
    Some(LaunchTemplateRef {
        // An id, when AWS gives both: the name may be reused by another template later.
        id: lt.launch_template_id().map(str::to_string),
        name: lt
            .launch_template_name()
            .filter(|_| lt.launch_template_id().is_none())
            .map(str::to_string),
        version: lt.version().unwrap_or("$Default").to_string(),
    })
}

/// A group's MixedInstancesPolicy; `None` without a usable launch template (the group is then
/// skipped as not read).
fn mixed_from_sdk(
    p: &aws_sdk_autoscaling::types::MixedInstancesPolicy,
    desired_capacity_type: Option<String>,
) -> Option<MixedPolicy> {
    let lt = p.launch_template()?;
    let launch_template = template_from_sdk(lt.launch_template_specification()?)?;
    let overrides = lt
        .overrides()
        .iter()
        .map(|o| MixedOverride {
            instance_type: o.instance_type().map(str::to_string),
            weighted_capacity: o.weighted_capacity().map(str::to_string),
            launch_template: o.launch_template_specification().and_then(template_from_sdk),
            instance_requirements: o.instance_requirements().map(|r| AttributeBased {
                requirements: super::requirements::from_asg(r),
                resolved: None,
            }),
        })
        .collect();
    let dist = p.instances_distribution();
    let count = |v: Option<i32>| v.map(|n| n.max(0) as u32);
    Some(MixedPolicy {
        launch_template,
        overrides,
        on_demand_base: count(dist.and_then(|d| d.on_demand_base_capacity())),
        on_demand_percent: count(dist.and_then(|d| d.on_demand_percentage_above_base_capacity())),
        desired_capacity_type,
    })
}

/// An instance as DescribeInstances shows it, with only the tags a decision reads.
pub(super) fn instance_from_sdk(i: &aws_sdk_ec2::types::Instance) -> Option<Instance> {
    let state = match i.state().and_then(|s| s.name()) {
        Some(InstanceStateName::Pending) => InstanceState::Pending,
        Some(InstanceStateName::Running) => InstanceState::Running,
        Some(InstanceStateName::Stopping) | Some(InstanceStateName::Stopped) => InstanceState::Stopped,
        _ => InstanceState::Gone,
    };
    Some(Instance {
        id: i.instance_id()?.to_string(),
        instance_type: i
            .instance_type()
            .map(|t| t.as_str().to_string())
            .unwrap_or_default(),
        az: i
            .placement()
            .and_then(|p| p.availability_zone())
            .unwrap_or_default()
            .to_string(),
        subnet_id: i.subnet_id().map(str::to_string),
        lifecycle: match i.instance_lifecycle() {
            Some(InstanceLifecycleType::Spot) => Lifecycle::Spot,
            _ => Lifecycle::OnDemand,
        },
        state,
        launch_time: Timestamp::from_unix(i.launch_time().map(|t| t.secs()).unwrap_or(0)),
        status_ok: None,
        termination_protected: None,
        // Only the tags a decision reads, ours, Auto Scaling's group name and AutoSpotting's
        // two launch tags: a fleet's cost allocation tags would otherwise be most of the
        // snapshot's memory at 20,000 instances.
        tags: i
            .tags()
            .iter()
            .filter(|t| {
                t.key().is_some_and(|k| {
                    k.starts_with(tags::PREFIX)
                        || k == tags::AWS_ASG_NAME
                        || k == tags::AWS_LT_ID
                        || k == tags::AWS_LT_VERSION
                        || k == autospotting::LAUNCHED_BY
                        || k == autospotting::LAUNCHED_FOR
                })
            })
            .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or_default().to_string())))
            .collect(),
        architecture: i.architecture().map(|a| a.as_str().to_string()),
        image: super::specs::image_needs(i),
        billing: spotswap_core::Billing {
            platform: i.platform_details().map(str::to_string),
            tenancy: i
                .placement()
                .and_then(|p| p.tenancy())
                .map(|t| t.as_str().to_string()),
        },
    })
}

/// One instance of CreateFleet capacity for `purchase`: spot, price-capacity-optimized over the
/// overrides; or on-demand (the floor's restoration), of the override's type.
pub(super) fn fleet_capacity(
    purchase: spotswap_core::Purchase,
    count: u32,
) -> (
    aws_sdk_ec2::types::TargetCapacitySpecificationRequest,
    Option<aws_sdk_ec2::types::SpotOptionsRequest>,
) {
    use aws_sdk_ec2::types::{
        DefaultTargetCapacityType, SpotAllocationStrategy, SpotOptionsRequest,
        TargetCapacitySpecificationRequest,
    };
    let n = count.max(1) as i32;
    let capacity = TargetCapacitySpecificationRequest::builder().total_target_capacity(n);
    match purchase {
        spotswap_core::Purchase::Spot => (
            capacity
                .spot_target_capacity(n)
                .default_target_capacity_type(DefaultTargetCapacityType::Spot)
                .build(),
            Some(
                SpotOptionsRequest::builder()
                    .allocation_strategy(SpotAllocationStrategy::PriceCapacityOptimized)
                    .build(),
            ),
        ),
        spotswap_core::Purchase::OnDemand => (
            capacity
                .on_demand_target_capacity(n)
                .default_target_capacity_type(DefaultTargetCapacityType::OnDemand)
                .build(),
            None,
        ),
    }
}
