//! What `spotswap plan` shows of a stateful group: each carried Elastic IP and data volume,
//! where it is now, and where the group's plan moves it. Pure, like the rest of [`super`]: the
//! snapshot's resources and the plan's carry actions in, one view out.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{address_of_group, AttachState, VolumeState};
use crate::action::{Action, ActionKind};
use crate::model::{GroupSnapshot, Instance};

/// A stateful group's carried resources (the `carried` key of a group in `plan --output json`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CarriedView {
    /// The group's Elastic IPs (`spotswap:carry-eip=true`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<CarriedAddress>,
    /// The group's tagged data volumes (`spotswap:carry-volumes`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<CarriedVolume>,
}

/// One Elastic IP of the group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CarriedAddress {
    /// `eipalloc-…`.
    pub allocation_id: String,
    /// Its public address.
    pub public_ip: String,
    /// The instance it is associated with now; `None`: unassociated.
    pub instance: Option<String>,
    /// The instance it is associated with once the plan's moves are made (the same as
    /// `instance` when the plan leaves it).
    pub after: Option<String>,
}

/// One data volume of the group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CarriedVolume {
    /// `vol-…`.
    pub volume: String,
    /// Its availability zone (a volume attaches only there).
    pub az: String,
    /// `available`, `in-use` or `other`.
    pub state: VolumeState,
    /// The device it is attached at, or recorded for (`spotswap:carry-device`).
    pub device: Option<String>,
    /// The instance it is attached to now (attached or on its way off).
    pub instance: Option<String>,
    /// The instance it is attached to once the plan's moves are made: a detach leaves it on
    /// none, an attach puts it on its target.
    pub after: Option<String>,
    /// Why no instance can take it (`VolumeStranded`), when the plan says so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stranded: Option<String>,
}

impl CarriedView {
    /// True when the group shows no carried resource.
    pub fn is_empty(&self) -> bool {
        self.addresses.is_empty() && self.volumes.is_empty()
    }
}

/// The group's carried resources and the moves its plan makes of them; `None` for a group whose
/// carried resources were not read (no carry tag, or a bad one).
pub fn view(
    group: &GroupSnapshot,
    instances: &BTreeMap<String, Instance>,
    actions: &[Action],
) -> Option<CarriedView> {
    let carried = group.carried.as_ref()?;
    let mut addresses: Vec<CarriedAddress> = carried
        .addresses
        .iter()
        .filter(|a| address_of_group(group, instances, a))
        .map(|a| {
            let moved = actions.iter().find_map(|x| match &x.kind {
                ActionKind::AssociateAddress {
                    allocation_id,
                    instance,
                    ..
                } if *allocation_id == a.allocation_id => Some(instance.clone()),
                _ => None,
            });
            CarriedAddress {
                allocation_id: a.allocation_id.clone(),
                public_ip: a.public_ip.clone(),
                instance: a.instance.clone(),
                after: moved.or_else(|| a.instance.clone()),
            }
        })
        .collect();
    addresses.sort_by(|a, b| a.allocation_id.cmp(&b.allocation_id));
    let mut volumes: Vec<CarriedVolume> = carried
        .volumes
        .iter()
        .map(|v| {
            let now = v.attachment.as_ref().map(|a| a.instance.clone());
            let mut after = now.clone();
            let mut stranded = None;
            for x in actions {
                match &x.kind {
                    ActionKind::DetachVolume { volume, .. } if *volume == v.id => after = None,
                    ActionKind::AttachVolume { volume, instance, .. } if *volume == v.id => {
                        after = Some(instance.clone())
                    }
                    ActionKind::Stranded { volume, why } if *volume == v.id => {
                        stranded = Some(why.clone());
                    }
                    _ => {}
                }
            }
            let attached_at = v
                .attachment
                .as_ref()
                .filter(|a| a.state == AttachState::Attached)
                .map(|a| a.device.clone());
            CarriedVolume {
                volume: v.id.clone(),
                az: v.az.clone(),
                state: v.state,
                device: attached_at.or_else(|| v.device_record.clone()),
                instance: now,
                after,
                stranded,
            }
        })
        .collect();
    volumes.sort_by(|a, b| a.volume.cmp(&b.volume));
    Some(CarriedView { addresses, volumes })
}
