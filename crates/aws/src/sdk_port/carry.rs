//! The calls of stateful groups on the SDK clients: DescribeAddresses, DescribeVolumes,
//! AssociateAddress, AttachVolume, DetachVolume, and CreateTags on an address or a volume.

use aws_sdk_ec2::types::{Filter, Tag, VolumeAttachmentState, VolumeState as SdkVolumeState};
use spotswap_core::carry::{Address, AttachState, Volume, VolumeAttachment, VolumeState};
use spotswap_core::tags;

use super::{err, SdkPort};
use crate::port::{op, CarryCalls, Page, PortFuture, VolumeQuery};

fn tag_value<'a>(tags_: &'a [Tag], key: &str) -> Option<&'a str> {
    tags_
        .iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
}

impl CarryCalls for SdkPort {
    fn describe_addresses<'a>(&'a self, ids: &'a [String]) -> PortFuture<'a, Vec<Address>> {
        Box::pin(async move {
            let resp = self
                .ec2
                .describe_addresses()
                .set_allocation_ids((!ids.is_empty()).then(|| ids.to_vec()))
                .send()
                .await
                .map_err(err(op::DESCRIBE_ADDRESSES))?;
            Ok(resp
                .addresses()
                .iter()
                // EC2-Classic addresses have no allocation id: nothing to associate by.
                .filter_map(|a| {
                    Some(Address {
                        allocation_id: a.allocation_id()?.to_string(),
                        public_ip: a.public_ip().unwrap_or_default().to_string(),
                        instance: a.instance_id().filter(|i| !i.is_empty()).map(str::to_string),
                        group_record: tag_value(a.tags(), tags::CARRY_EIP_GROUP).map(str::to_string),
                    })
                })
                .collect())
        })
    }

    fn describe_volumes<'a>(
        &'a self,
        q: &'a VolumeQuery,
        token: Option<String>,
    ) -> PortFuture<'a, Page<Volume>> {
        Box::pin(async move {
            let req = self.ec2.describe_volumes().set_next_token(token);
            let req = match q {
                VolumeQuery::Tagged { key, values } => req.max_results(500).filters(
                    Filter::builder()
                        .name(format!("tag:{key}"))
                        .set_values(Some(values.clone()))
                        .build(),
                ),
                VolumeQuery::Ids(ids) => req.filters(
                    Filter::builder()
                        .name("volume-id")
                        .set_values(Some(ids.clone()))
                        .build(),
                ),
            };
            let resp = req.send().await.map_err(err(op::DESCRIBE_VOLUMES))?;
            let items = resp
                .volumes()
                .iter()
                .map(|v| Volume {
                    id: v.volume_id().unwrap_or_default().to_string(),
                    az: v.availability_zone().unwrap_or_default().to_string(),
                    state: match v.state() {
                        Some(SdkVolumeState::Available) => VolumeState::Available,
                        Some(SdkVolumeState::InUse) => VolumeState::InUse,
                        _ => VolumeState::Other,
                    },
                    attachment: v
                        .attachments()
                        .iter()
                        .filter(|a| a.state() != Some(&VolumeAttachmentState::Detached))
                        .find_map(|a| {
                            Some(VolumeAttachment {
                                instance: a.instance_id()?.to_string(),
                                device: a.device().unwrap_or_default().to_string(),
                                state: match a.state() {
                                    Some(
                                        VolumeAttachmentState::Attached | VolumeAttachmentState::Attaching,
                                    ) => AttachState::Attached,
                                    _ => AttachState::Detaching,
                                },
                            })
                        }),
                    device_record: tag_value(v.tags(), tags::CARRY_DEVICE).map(str::to_string),
                })
                .collect();
            Ok(Page {
                items,
                next: resp.next_token().map(str::to_string),
            })
        })
    }

    fn associate_address<'a>(&'a self, allocation_id: &'a str, instance: &'a str) -> PortFuture<'a, ()> {
        Box::pin(async move {
            self.ec2
                .associate_address()
                .allocation_id(allocation_id)
                .instance_id(instance)
                .allow_reassociation(true)
                .send()
                .await
                .map_err(err(op::ASSOCIATE_ADDRESS))?;
            Ok(())
        })
    }

    fn attach_volume<'a>(
        &'a self,
        volume: &'a str,
        instance: &'a str,
        device: &'a str,
    ) -> PortFuture<'a, ()> {
        Box::pin(async move {
            self.ec2
                .attach_volume()
                .volume_id(volume)
                .instance_id(instance)
                .device(device)
                .send()
                .await
                .map_err(err(op::ATTACH_VOLUME))?;
            Ok(())
        })
    }

    fn detach_volume<'a>(&'a self, volume: &'a str, instance: &'a str) -> PortFuture<'a, ()> {
        Box::pin(async move {
            self.ec2
                .detach_volume()
                .volume_id(volume)
                .instance_id(instance)
                .send()
                .await
                .map_err(err(op::DETACH_VOLUME))?;
            Ok(())
        })
    }

    fn tag_resource<'a>(&'a self, id: &'a str, key: &'a str, value: &'a str) -> PortFuture<'a, ()> {
        Box::pin(async move {
            self.ec2
                .create_tags()
                .resources(id)
                .tags(Tag::builder().key(key).value(value).build())
                .send()
                .await
                .map_err(err(op::CREATE_TAGS))?;
            Ok(())
        })
    }
}
