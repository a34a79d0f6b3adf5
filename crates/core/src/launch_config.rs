//! Launch-configuration groups: the launch template spotswap makes from a group's launch
//! configuration, so that the one CreateFleet launch path serves them unchanged.
//!
//! A launch configuration cannot be passed to CreateFleet. spotswap therefore creates one
//! launch template per launch configuration, holding exactly what the configuration boots
//! (image, user data, key pair, security groups, instance profile, block devices, metadata
//! options, EBS optimisation, monitoring, public IP, tenancy), tagged
//! `spotswap:from-launch-configuration=<name>` (FIXED). Its name is derived from the
//! configuration's ([`template_name`]), so two cycles that both find none create the same one
//! and the second is told it already exists. A launch configuration cannot be changed, so the
//! template's version 1 stays right for as long as the configuration exists. The reaper deletes
//! the template once no group uses its configuration ([`reap_templates`]).
//!
//! The adapter reads the configuration (DescribeLaunchConfigurations) and the templates carrying
//! the tag (DescribeLaunchTemplates) into [`FromLaunchConfig`]; everything decided about them is
//! here.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::action::{Action, ActionKind, Reason};
use crate::model::{GroupSnapshot, LaunchSource, LaunchTemplateRef};

/// The prefix of every template spotswap makes from a launch configuration.
pub const TEMPLATE_PREFIX: &str = "spotswap-lc-";
/// The version of such a template that is launched: the only one spotswap ever creates.
pub const TEMPLATE_VERSION: &str = "1";

/// One EBS volume of a block device mapping, as the launch configuration gives it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ebs {
    /// `SnapshotId`.
    pub snapshot_id: Option<String>,
    /// `VolumeSize`, GiB.
    pub volume_size: Option<i32>,
    /// `VolumeType`.
    pub volume_type: Option<String>,
    /// `DeleteOnTermination`.
    pub delete_on_termination: Option<bool>,
    /// `Iops`.
    pub iops: Option<i32>,
    /// `Encrypted`.
    pub encrypted: Option<bool>,
    /// `Throughput`, MiB/s.
    pub throughput: Option<i32>,
}

/// One block device mapping.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockDevice {
    /// `DeviceName`.
    pub device_name: String,
    /// `VirtualName` (an instance store volume, `ephemeral0`).
    pub virtual_name: Option<String>,
    /// `NoDevice`: the image's mapping of this device is suppressed.
    pub no_device: bool,
    /// The EBS volume, if any.
    pub ebs: Option<Ebs>,
}

/// `MetadataOptions`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// `HttpTokens`: `required` (IMDSv2) or `optional`.
    pub http_tokens: Option<String>,
    /// `HttpPutResponseHopLimit`.
    pub hop_limit: Option<i32>,
    /// `HttpEndpoint`: `enabled` or `disabled`.
    pub http_endpoint: Option<String>,
}

/// A launch configuration, as DescribeLaunchConfigurations gives it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaunchConfig {
    /// `LaunchConfigurationName`.
    pub name: String,
    /// `InstanceType`: the type its instances run, the original's.
    pub instance_type: String,
    /// `ImageId`.
    pub image_id: String,
    /// `KeyName`.
    pub key_name: Option<String>,
    /// `SecurityGroups`: ids (or, outside a VPC, names).
    pub security_groups: Vec<String>,
    /// `UserData`, base64 as the API gives it (and as a template takes it).
    pub user_data: Option<String>,
    /// `IamInstanceProfile`: a name or an ARN.
    pub iam_instance_profile: Option<String>,
    /// `BlockDeviceMappings`.
    pub block_devices: Vec<BlockDevice>,
    /// `MetadataOptions`.
    pub metadata: Option<Metadata>,
    /// `EbsOptimized`.
    pub ebs_optimized: Option<bool>,
    /// `InstanceMonitoring.Enabled`: detailed monitoring.
    pub monitoring: Option<bool>,
    /// `AssociatePublicIpAddress`.
    pub associate_public_ip: Option<bool>,
    /// `PlacementTenancy`: `default`, `dedicated` (or `host`, which a template from it cannot
    /// express: a host needs a host id or resource group the configuration does not have).
    pub placement_tenancy: Option<String>,
    /// `KernelId`.
    pub kernel_id: Option<String>,
    /// `RamdiskId`.
    pub ramdisk_id: Option<String>,
    /// `SpotPrice`: the configuration launches spot itself.
    pub spot_price: Option<String>,
    /// `ClassicLinkVPCId` (EC2-Classic, retired).
    pub classic_link_vpc_id: Option<String>,
    /// `ClassicLinkVPCSecurityGroups`.
    pub classic_link_security_groups: Vec<String>,
}

impl LaunchConfig {
    /// Why a template cannot boot what this configuration boots (the field named), or `None`
    /// when it can.
    pub fn unsupported(&self) -> Option<String> {
        let name = &self.name;
        if self.classic_link_vpc_id.is_some() || !self.classic_link_security_groups.is_empty() {
            return Some(format!(
                "launch configuration {name}: ClassicLinkVPCId/ClassicLinkVPCSecurityGroups (EC2-Classic) cannot be expressed in a launch template"
            ));
        }
        match self.placement_tenancy.as_deref() {
            None | Some("default") | Some("dedicated") => {}
            Some(other) => {
                return Some(format!(
                    "launch configuration {name}: PlacementTenancy {other} cannot be expressed in a launch template"
                ))
            }
        }
        if let Some(price) = &self.spot_price {
            // Its own launches are spot already, so the on-demand floor and the fallback
            // spotswap promises could not hold.
            return Some(format!(
                "launch configuration {name}: SpotPrice {price} (the group launches spot itself)"
            ));
        }
        if self.image_id.is_empty() {
            return Some(format!("launch configuration {name}: no ImageId"));
        }
        None
    }
}

/// A template spotswap made from a launch configuration, as DescribeLaunchTemplates lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LcTemplate {
    /// `LaunchTemplateId`.
    pub id: String,
    /// `LaunchTemplateName`.
    pub name: String,
    /// Its `spotswap:from-launch-configuration` value: the configuration it was made from.
    pub launch_configuration: String,
}

/// What a launch-configuration group launches from, as read for one snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FromLaunchConfig {
    /// The configuration; `None` when DescribeLaunchConfigurations did not list it.
    pub config: Option<LaunchConfig>,
    /// The template made from it, when one exists.
    pub template: Option<LcTemplate>,
    /// What the group's launches use: the found template by id, else the name
    /// [`ensure_template`] creates; version 1, the only one there is.
    pub launch: LaunchTemplateRef,
}

impl FromLaunchConfig {
    /// What launch configuration `lc` launches from, given what was read.
    pub fn new(lc: &str, config: Option<LaunchConfig>, template: Option<LcTemplate>) -> Self {
        let launch = match &template {
            Some(t) => LaunchTemplateRef {
                id: Some(t.id.clone()),
                name: None,
                version: TEMPLATE_VERSION.to_string(),
            },
            None => LaunchTemplateRef {
                id: None,
                name: Some(template_name(lc)),
                version: TEMPLATE_VERSION.to_string(),
            },
        };
        Self {
            config,
            template,
            launch,
        }
    }
}

/// The name of the template made from launch configuration `lc`: a function of the name
/// alone, so concurrent creators collide on it. Template names allow only
/// `[a-zA-Z0-9().\-/_]` and at most 128 characters, launch configuration names almost
/// anything up to 255: other characters become `_`, the name is cut at 96, and a hash of the
/// whole original name keeps two configurations that differ only there apart.
pub fn template_name(lc: &str) -> String {
    let clean: String = lc
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "().-/_".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(96)
        .collect();
    let mut h = crate::plan::launch::Fnv::default();
    h.field(lc);
    format!("{TEMPLATE_PREFIX}{clean}-{:08x}", h.0 as u32)
}

/// What [`crate::plan::blockers::swappable_template`] launches an LC group from: the template
/// made from its configuration (found, or the one [`ensure_template`] creates first), or why
/// there is none.
pub fn template_for<'g>(
    group: &'g GroupSnapshot,
    lc: &str,
) -> Result<&'g LaunchTemplateRef, (Reason, Option<String>)> {
    let not = |detail: String| (Reason::LaunchConfigurationNotSupported, Some(detail));
    let Some(from) = &group.from_launch_config else {
        return Err(not(format!("launch configuration {lc}: not read")));
    };
    let Some(config) = &from.config else {
        return Err(not(format!(
            "launch configuration {lc}: DescribeLaunchConfigurations does not list it"
        )));
    };
    if let Some(why) = config.unsupported() {
        return Err(not(why));
    }
    Ok(&from.launch)
}

/// Put the template's creation in front of the first launch of an LC group whose template does
/// not exist yet (`TemplateFromLaunchConfiguration`). Nothing for any other group, or a plan
/// without a launch: a template is made only when a launch needs it.
pub fn ensure_template(group: &GroupSnapshot, actions: &mut Vec<Action>) {
    let LaunchSource::LaunchConfiguration(lc) = &group.launch_source else {
        return;
    };
    let Some(FromLaunchConfig {
        config: Some(config),
        template: None,
        ..
    }) = &group.from_launch_config
    else {
        return;
    };
    let Some(first) = actions
        .iter()
        .position(|a| matches!(a.kind, ActionKind::Launch(_)))
    else {
        return;
    };
    let create = Action::new(
        ActionKind::CreateTemplate {
            template_name: template_name(lc),
            config: Box::new(config.clone()),
        },
        Reason::TemplateFromLaunchConfiguration,
        &group.name,
    );
    actions.insert(first, create);
}

/// The reaper's decisions on the templates made from launch configurations: each whose
/// configuration no group of `groups` (every group of the region, managed or not) uses any
/// more is deleted (`LaunchConfigurationUnused`). A template still in use is left alone.
pub fn reap_templates(groups: &[GroupSnapshot], templates: &[LcTemplate]) -> Vec<Action> {
    let used: BTreeSet<&str> = groups
        .iter()
        .filter_map(|g| match &g.launch_source {
            LaunchSource::LaunchConfiguration(lc) => Some(lc.as_str()),
            _ => None,
        })
        .collect();
    templates
        .iter()
        .filter(|t| !used.contains(t.launch_configuration.as_str()))
        .map(|t| {
            Action::new(
                ActionKind::DeleteTemplate {
                    template_id: t.id.clone(),
                    launch_configuration: t.launch_configuration.clone(),
                },
                Reason::LaunchConfigurationUnused,
                "",
            )
        })
        .collect()
}

#[cfg(test)]
#[path = "launch_config_tests.rs"]
mod tests;
