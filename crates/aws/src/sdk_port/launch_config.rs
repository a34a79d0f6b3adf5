//! Launch-configuration groups on the SDK clients: DescribeLaunchConfigurations,
//! DescribeLaunchTemplates, CreateLaunchTemplate, DeleteLaunchTemplate.
//!
//! [`template_data`] is the one translation of a launch configuration into launch template
//! data: what the configuration boots, field by field.

use aws_sdk_ec2::types::{
    Filter, LaunchTemplateBlockDeviceMappingRequest, LaunchTemplateEbsBlockDeviceRequest,
    LaunchTemplateHttpTokensState, LaunchTemplateIamInstanceProfileSpecificationRequest,
    LaunchTemplateInstanceMetadataEndpointState, LaunchTemplateInstanceMetadataOptionsRequest,
    LaunchTemplateInstanceNetworkInterfaceSpecificationRequest, LaunchTemplatePlacementRequest,
    LaunchTemplatesMonitoringRequest, RequestLaunchTemplateData, ResourceType, Tag, Tenancy, VolumeType,
};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use spotswap_core::launch_config::{BlockDevice, Ebs, LaunchConfig, LcTemplate, Metadata};
use spotswap_core::tags;

use super::{err, SdkPort};
use crate::port::{op, LaunchConfigCalls, Page, PortFuture, TemplateCreated};

/// EC2's error code for a template name in use.
const ALREADY_EXISTS: &str = "InvalidLaunchTemplateName.AlreadyExistsException";

impl LaunchConfigCalls for SdkPort {
    fn launch_configurations<'a>(
        &'a self,
        names: &'a [String],
        token: Option<String>,
    ) -> PortFuture<'a, Page<LaunchConfig>> {
        Box::pin(async move {
            let resp = self
                .asg
                .describe_launch_configurations()
                .set_launch_configuration_names(Some(names.to_vec()))
                .max_records(50)
                .set_next_token(token)
                .send()
                .await
                .map_err(err(op::DESCRIBE_LAUNCH_CONFIGS))?;
            Ok(Page {
                items: resp.launch_configurations().iter().map(config_from_sdk).collect(),
                next: resp.next_token().map(str::to_string),
            })
        })
    }

    fn lc_templates(&self, token: Option<String>) -> PortFuture<'_, Page<LcTemplate>> {
        Box::pin(async move {
            let resp = self
                .ec2
                .describe_launch_templates()
                .filters(
                    Filter::builder()
                        .name("tag-key")
                        .values(tags::FROM_LAUNCH_CONFIGURATION)
                        .build(),
                )
                .max_results(200)
                .set_next_token(token)
                .send()
                .await
                .map_err(err(op::DESCRIBE_TEMPLATES))?;
            let items = resp
                .launch_templates()
                .iter()
                .filter_map(|t| {
                    let lc = t
                        .tags()
                        .iter()
                        .find(|x| x.key() == Some(tags::FROM_LAUNCH_CONFIGURATION))?
                        .value()?;
                    Some(LcTemplate {
                        id: t.launch_template_id()?.to_string(),
                        name: t.launch_template_name().unwrap_or_default().to_string(),
                        launch_configuration: lc.to_string(),
                    })
                })
                .collect();
            Ok(Page {
                items,
                next: resp.next_token().map(str::to_string),
            })
        })
    }

    fn create_template<'a>(
        &'a self,
        name: &'a str,
        config: &'a LaunchConfig,
    ) -> PortFuture<'a, TemplateCreated> {
        Box::pin(async move {
            let resp = self
                .ec2
                .create_launch_template()
                .launch_template_name(name)
                .version_description(format!("spotswap: launch configuration {}", config.name))
                .launch_template_data(template_data(config))
                .tag_specifications(
                    aws_sdk_ec2::types::TagSpecification::builder()
                        .resource_type(ResourceType::LaunchTemplate)
                        .tags(
                            Tag::builder()
                                .key(tags::FROM_LAUNCH_CONFIGURATION)
                                .value(&config.name)
                                .build(),
                        )
                        .build(),
                )
                .send()
                .await;
            match resp {
                Ok(r) => Ok(TemplateCreated::Created(
                    r.launch_template()
                        .and_then(|t| t.launch_template_id())
                        .unwrap_or_default()
                        .to_string(),
                )),
                Err(e) if e.code() == Some(ALREADY_EXISTS) => Ok(TemplateCreated::AlreadyExists),
                Err(e) => Err(err(op::CREATE_TEMPLATE)(e)),
            }
        })
    }

    fn delete_template<'a>(&'a self, id: &'a str) -> PortFuture<'a, ()> {
        Box::pin(async move {
            self.ec2
                .delete_launch_template()
                .launch_template_id(id)
                .send()
                .await
                .map_err(err(op::DELETE_TEMPLATE))?;
            Ok(())
        })
    }
}

fn config_from_sdk(c: &aws_sdk_autoscaling::types::LaunchConfiguration) -> LaunchConfig {
    let s = |v: Option<&str>| v.map(str::to_string).filter(|v| !v.is_empty());
    LaunchConfig {
        name: c.launch_configuration_name().unwrap_or_default().to_string(),
        instance_type: c.instance_type().unwrap_or_default().to_string(),
        image_id: c.image_id().unwrap_or_default().to_string(),
        key_name: s(c.key_name()),
        security_groups: c.security_groups().to_vec(),
        user_data: s(c.user_data()),
        iam_instance_profile: s(c.iam_instance_profile()),
        block_devices: c
            .block_device_mappings()
            .iter()
            .map(|b| BlockDevice {
                device_name: b.device_name().unwrap_or_default().to_string(),
                virtual_name: s(b.virtual_name()),
                no_device: b.no_device().unwrap_or(false),
                ebs: b.ebs().map(|e| Ebs {
                    snapshot_id: s(e.snapshot_id()),
                    volume_size: e.volume_size(),
                    volume_type: s(e.volume_type()),
                    delete_on_termination: e.delete_on_termination(),
                    iops: e.iops(),
                    encrypted: e.encrypted(),
                    throughput: e.throughput(),
                }),
            })
            .collect(),
        metadata: c.metadata_options().map(|m| Metadata {
            http_tokens: m.http_tokens().map(|t| t.as_str().to_string()),
            hop_limit: m.http_put_response_hop_limit(),
            http_endpoint: m.http_endpoint().map(|t| t.as_str().to_string()),
        }),
        ebs_optimized: c.ebs_optimized(),
        monitoring: c.instance_monitoring().and_then(|m| m.enabled()),
        associate_public_ip: c.associate_public_ip_address(),
        placement_tenancy: s(c.placement_tenancy()),
        kernel_id: s(c.kernel_id()),
        ramdisk_id: s(c.ramdisk_id()),
        spot_price: s(c.spot_price()),
        classic_link_vpc_id: s(c.classic_link_vpc_id()),
        classic_link_security_groups: c.classic_link_vpc_security_groups().to_vec(),
    }
}

/// What `c` boots, as launch template data. The instance type and subnet are left out: the
/// fleet's overrides name them (the candidate types, the original's subnet). Security groups go
/// on the network interface when the configuration asks for a public IP (EC2 refuses them on
/// both), else as ids (`sg-…`) or, outside a VPC, names.
pub(super) fn template_data(c: &LaunchConfig) -> RequestLaunchTemplateData {
    let (ids, names): (Vec<String>, Vec<String>) = c
        .security_groups
        .iter()
        .cloned()
        .partition(|g| g.starts_with("sg-"));
    let mut d = RequestLaunchTemplateData::builder()
        .image_id(&c.image_id)
        .set_key_name(c.key_name.clone())
        .set_user_data(c.user_data.clone())
        .set_kernel_id(c.kernel_id.clone())
        .set_ram_disk_id(c.ramdisk_id.clone())
        .set_ebs_optimized(c.ebs_optimized);
    if let Some(p) = &c.iam_instance_profile {
        let spec = LaunchTemplateIamInstanceProfileSpecificationRequest::builder();
        d = d.iam_instance_profile(if p.starts_with("arn:") {
            spec.arn(p).build()
        } else {
            spec.name(p).build()
        });
    }
    if let Some(on) = c.monitoring {
        d = d.monitoring(LaunchTemplatesMonitoringRequest::builder().enabled(on).build());
    }
    if let Some(t) = &c.placement_tenancy {
        d = d.placement(
            LaunchTemplatePlacementRequest::builder()
                .tenancy(Tenancy::from(t.as_str()))
                .build(),
        );
    }
    if let Some(m) = &c.metadata {
        d = d.metadata_options(
            LaunchTemplateInstanceMetadataOptionsRequest::builder()
                .set_http_tokens(m.http_tokens.as_deref().map(LaunchTemplateHttpTokensState::from))
                .set_http_put_response_hop_limit(m.hop_limit)
                .set_http_endpoint(
                    m.http_endpoint
                        .as_deref()
                        .map(LaunchTemplateInstanceMetadataEndpointState::from),
                )
                .build(),
        );
    }
    for b in &c.block_devices {
        let mut m = LaunchTemplateBlockDeviceMappingRequest::builder()
            .device_name(&b.device_name)
            .set_virtual_name(b.virtual_name.clone());
        if b.no_device {
            m = m.no_device("");
        }
        if let Some(e) = &b.ebs {
            m = m.ebs(
                LaunchTemplateEbsBlockDeviceRequest::builder()
                    .set_snapshot_id(e.snapshot_id.clone())
                    .set_volume_size(e.volume_size)
                    .set_volume_type(e.volume_type.as_deref().map(VolumeType::from))
                    .set_delete_on_termination(e.delete_on_termination)
                    .set_iops(e.iops)
                    .set_encrypted(e.encrypted)
                    .set_throughput(e.throughput)
                    .build(),
            );
        }
        d = d.block_device_mappings(m.build());
    }
    match c.associate_public_ip {
        Some(public) => {
            d = d.network_interfaces(
                LaunchTemplateInstanceNetworkInterfaceSpecificationRequest::builder()
                    .device_index(0)
                    .associate_public_ip_address(public)
                    .set_groups(Some(ids))
                    .build(),
            );
        }
        None if !ids.is_empty() => d = d.set_security_group_ids(Some(ids)),
        None => {}
    }
    if !names.is_empty() {
        d = d.set_security_groups(Some(names));
    }
    d.build()
}
