//! Group writes: UpdateAutoScalingGroup calls, each sending only the field it changes (AWS
//! keeps every parameter an update leaves out, the mixed instances policy included), and the
//! group's tags.

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

fn asg_tag(group: &str, key: &str, value: Option<&str>) -> aws_sdk_autoscaling::types::Tag {
    let t = aws_sdk_autoscaling::types::Tag::builder()
        .resource_id(group)
        .resource_type("auto-scaling-group")
        .key(key);
    match value {
        Some(v) => t.value(v).propagate_at_launch(false).build(),
        None => t.build(),
    }
}

/// CreateOrUpdateTags on the group, not propagated at launch.
pub(super) async fn put_tags(
    asg: &aws_sdk_autoscaling::Client,
    group: &str,
    kv: &[(String, String)],
) -> Result<(), AdapterError> {
    let tags = kv.iter().map(|(k, v)| asg_tag(group, k, Some(v))).collect();
    asg.create_or_update_tags()
        .set_tags(Some(tags))
        .send()
        .await
        .map_err(err(op::CREATE_GROUP_TAGS))?;
    Ok(())
}

/// DeleteTags on the group.
pub(super) async fn delete_tags(
    asg: &aws_sdk_autoscaling::Client,
    group: &str,
    keys: &[String],
) -> Result<(), AdapterError> {
    let tags = keys.iter().map(|k| asg_tag(group, k, None)).collect();
    asg.delete_tags()
        .set_tags(Some(tags))
        .send()
        .await
        .map_err(err(op::DELETE_GROUP_TAGS))?;
    Ok(())
}
