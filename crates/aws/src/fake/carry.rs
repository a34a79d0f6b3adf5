//! Elastic IPs and volumes of the fake region, with AWS's rules: an address moves with
//! AllowReassociation; a volume attaches only when `available` and to an instance in its AZ.

use spotswap_core::carry::{AttachState, VolumeAttachment, VolumeState};
use spotswap_core::tags;

use super::{aws_error, FakePort};
use crate::port::{op, CarryCalls, Page, PortFuture, VolumeQuery};

impl CarryCalls for FakePort {
    fn describe_addresses<'a>(
        &'a self,
        ids: &'a [String],
    ) -> PortFuture<'a, Vec<spotswap_core::carry::Address>> {
        self.call(op::DESCRIBE_ADDRESSES, move |s| {
            Ok(s.addresses
                .iter()
                .filter(|a| ids.is_empty() || ids.contains(&a.allocation_id))
                .cloned()
                .collect())
        })
    }

    fn describe_volumes<'a>(
        &'a self,
        q: &'a VolumeQuery,
        _token: Option<String>,
    ) -> PortFuture<'a, Page<spotswap_core::carry::Volume>> {
        self.call(op::DESCRIBE_VOLUMES, move |s| {
            let items = s
                .volumes
                .iter()
                .filter(|(v, t)| match q {
                    VolumeQuery::Tagged { key, values } => {
                        t.iter().any(|(k, val)| k == key && values.contains(val))
                    }
                    VolumeQuery::Ids(ids) => ids.contains(&v.id),
                })
                .map(|(v, _)| v.clone())
                .collect();
            Ok(Page { items, next: None })
        })
    }

    fn associate_address<'a>(&'a self, allocation_id: &'a str, instance: &'a str) -> PortFuture<'a, ()> {
        self.call(op::ASSOCIATE_ADDRESS, move |s| {
            if !s.instances.contains_key(instance) {
                return Err(aws_error(
                    op::ASSOCIATE_ADDRESS,
                    "InvalidInstanceID.NotFound",
                    instance,
                ));
            }
            let a = s
                .addresses
                .iter_mut()
                .find(|a| a.allocation_id == allocation_id)
                .ok_or_else(|| {
                    aws_error(
                        op::ASSOCIATE_ADDRESS,
                        "InvalidAllocationID.NotFound",
                        allocation_id,
                    )
                })?;
            a.instance = Some(instance.to_string());
            Ok(())
        })
    }

    fn attach_volume<'a>(
        &'a self,
        volume: &'a str,
        instance: &'a str,
        device: &'a str,
    ) -> PortFuture<'a, ()> {
        self.call(op::ATTACH_VOLUME, move |s| {
            let az = s.instances.get(instance).map(|i| i.az.clone());
            let (v, _) = s
                .volumes
                .iter_mut()
                .find(|(v, _)| v.id == volume)
                .ok_or_else(|| aws_error(op::ATTACH_VOLUME, "InvalidVolume.NotFound", volume))?;
            if v.state != VolumeState::Available {
                return Err(aws_error(op::ATTACH_VOLUME, "VolumeInUse", volume));
            }
            if az.as_deref() != Some(v.az.as_str()) {
                return Err(aws_error(op::ATTACH_VOLUME, "InvalidVolume.ZoneMismatch", volume));
            }
            v.state = VolumeState::InUse;
            v.attachment = Some(VolumeAttachment {
                instance: instance.to_string(),
                device: device.to_string(),
                state: AttachState::Attached,
            });
            Ok(())
        })
    }

    fn detach_volume<'a>(&'a self, volume: &'a str, instance: &'a str) -> PortFuture<'a, ()> {
        self.call(op::DETACH_VOLUME, move |s| {
            let (v, _) = s
                .volumes
                .iter_mut()
                .find(|(v, _)| v.id == volume)
                .ok_or_else(|| aws_error(op::DETACH_VOLUME, "InvalidVolume.NotFound", volume))?;
            if v.attachment.as_ref().is_none_or(|a| a.instance != instance) {
                return Err(aws_error(op::DETACH_VOLUME, "IncorrectState", volume));
            }
            v.attachment = None;
            v.state = VolumeState::Available;
            Ok(())
        })
    }

    fn tag_resource<'a>(&'a self, id: &'a str, key: &'a str, value: &'a str) -> PortFuture<'a, ()> {
        self.call(op::CREATE_TAGS, move |s| {
            if let Some(a) = s.addresses.iter_mut().find(|a| a.allocation_id == id) {
                if key == tags::CARRY_EIP_GROUP {
                    a.group_record = Some(value.to_string());
                }
                return Ok(());
            }
            if let Some((v, t)) = s.volumes.iter_mut().find(|(v, _)| v.id == id) {
                if key == tags::CARRY_DEVICE {
                    v.device_record = Some(value.to_string());
                }
                t.push((key.to_string(), value.to_string()));
                return Ok(());
            }
            Err(aws_error(op::CREATE_TAGS, "InvalidID", id))
        })
    }
}
