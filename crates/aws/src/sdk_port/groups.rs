//! UpdateAutoScalingGroup calls: each sends only the field it changes, since AWS keeps every
//! parameter an update leaves out (the mixed instances policy included).

use aws_sdk_autoscaling::types::{InstancesDistribution, MixedInstancesPolicy};

use super::err;
use crate::port::op;
use crate::AdapterError;

/// MaxSize only.
pub(super) async fn update_max_size(
    asg: &aws_sdk_autoscaling::Client,
    group: &str,
    max: u32,
) -> Result<(), AdapterError> {
    asg.update_auto_scaling_group()
        .auto_scaling_group_name(group)
        .max_size(max.min(i32::MAX as u32) as i32)
        .send()
        .await
        .map_err(err(op::UPDATE_GROUP))?;
    Ok(())
}

/// `MixedInstancesPolicy.InstancesDistribution.OnDemandPercentageAboveBaseCapacity` only:
/// the policy's launch template, overrides and the rest of its distribution stay as the owner
/// set them (a launch template is required only when a policy is created).
pub(super) async fn update_on_demand_percent(
    asg: &aws_sdk_autoscaling::Client,
    group: &str,
    percent: u32,
) -> Result<(), AdapterError> {
    let policy = MixedInstancesPolicy::builder()
        .instances_distribution(
            InstancesDistribution::builder()
                .on_demand_percentage_above_base_capacity(percent.min(100) as i32)
                .build(),
        )
        .build();
    asg.update_auto_scaling_group()
        .auto_scaling_group_name(group)
        .mixed_instances_policy(policy)
        .send()
        .await
        .map_err(err(op::UPDATE_GROUP))?;
    Ok(())
}
