//! Stateful groups: Elastic IPs (`spotswap:carry-eip=true`) and data volumes
//! (`spotswap:carry-volumes=<tag key>`) follow an instance's replacement. Pure: the group, its
//! instances and what DescribeAddresses and DescribeVolumes showed in; the moves out.
//!
//! One rule serves a swap, an interruption and the reaper, because state lives in AWS alone:
//! - an address of the group is *held* while its instance serves; it is *released* when the
//!   instance leaves (not a member, leaving, stopped or gone, detached on interruption), or
//!   when the instance is a swap's original whose replacement is InService and healthy. A
//!   released or free address goes to the swap's replacement, else to the lowest-id running
//!   member that has no address of the group. The original's retire waits until its address
//!   has moved ([`gate_retires`]): a stage gate, not a side effect.
//! - a volume is detached only from an instance that is stopping, stopped, shutting down or
//!   terminated, or past its terminating lifecycle hook (`Terminating:Proceed`): never from a
//!   live instance that is not retiring. A detached (`available`) volume is attached, at the
//!   device name recorded on it (`spotswap:carry-device`), to the lowest-id running member in
//!   its AZ that has no carried volume at that device and is not the original of a swap in
//!   flight; with none, the decision is `VolumeStranded`. AWS attaches a volume to one instance
//!   only, and only an `available` one is ever attached, so no volume is on two instances.
//!
//! Targets are the lowest id among the eligible, so concurrent or repeated runs on the same
//! facts pick the same one and move nothing twice; the adapter re-reads the resource before
//! each move and skips a move another run already made.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::action::{Action, ActionKind, Reason};
use crate::error::ConfigError;
use crate::model::{GroupSnapshot, Instance, InstanceState, MemberState};
use crate::policy::Policy;
use crate::tags;

/// An Elastic IP as DescribeAddresses shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    /// `AllocationId` (`eipalloc-…`).
    pub allocation_id: String,
    /// `PublicIp`, for the log and `plan`.
    pub public_ip: String,
    /// The instance it is associated with, if any.
    pub instance: Option<String>,
    /// `spotswap:carry-eip-group`, when recorded.
    pub group_record: Option<String>,
}

/// A volume's state, as far as carrying cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VolumeState {
    /// `available`: attached to nothing.
    Available,
    /// `in-use`.
    InUse,
    /// `creating`, `deleting`, `deleted`, `error`: not ours to move.
    Other,
}

impl VolumeState {
    /// The kebab-case name the JSON and the table print.
    pub fn name(self) -> &'static str {
        match self {
            VolumeState::Available => "available",
            VolumeState::InUse => "in-use",
            VolumeState::Other => "other",
        }
    }
}

/// An attachment's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AttachState {
    /// `attaching` or `attached`.
    Attached,
    /// `detaching`, `detached` or `busy`: on its way off.
    Detaching,
}

/// One attachment of a volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeAttachment {
    /// The instance.
    pub instance: String,
    /// Device name, e.g. `/dev/sdf`.
    pub device: String,
    /// Its state.
    pub state: AttachState,
}

/// A data volume carrying the group's carry tag, as DescribeVolumes shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Volume {
    /// `vol-…`.
    pub id: String,
    /// Its availability zone: a volume attaches only to an instance there.
    pub az: String,
    /// Its state.
    pub state: VolumeState,
    /// Its attachment, if any.
    pub attachment: Option<VolumeAttachment>,
    /// `spotswap:carry-device`, when recorded.
    pub device_record: Option<String>,
}

/// What a stateful group's snapshot read of its carried resources: the addresses associated
/// with its instances or recorded for it, its tagged volumes, and its members past their
/// terminating hook.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Carried {
    /// Addresses associated with an instance of the group, or recorded for it.
    pub addresses: Vec<Address>,
    /// Volumes tagged `<carry key>=<group>`.
    pub volumes: Vec<Volume>,
    /// Members in `Terminating:Proceed`: their terminating hook is done, so a volume may go.
    pub proceeding: BTreeSet<String>,
}

/// The group's carry settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CarryPolicy {
    /// `spotswap:carry-eip=true`.
    pub eip: bool,
    /// `spotswap:carry-volumes`: the volumes' tag key.
    pub volumes: Option<String>,
}

impl CarryPolicy {
    /// The carry settings of a policy.
    pub fn of(policy: &Policy) -> Self {
        Self {
            eip: policy.carry_eip,
            volumes: policy.carry_volumes.clone(),
        }
    }

    /// True when anything is carried.
    pub fn any(&self) -> bool {
        self.eip || self.volumes.is_some()
    }
}

/// True when the group carries either carry tag, valid or not.
pub fn tagged(group: &GroupSnapshot) -> bool {
    group.tags.contains_key(tags::CARRY_EIP) || group.tags.contains_key(tags::CARRY_VOLUMES)
}

/// Check a `spotswap:carry-volumes` value: an EC2 tag key (1–128 characters, not `aws:`, no
/// surrounding spaces, EC2's allowed characters).
pub fn volume_tag_key(key: &str, value: &str) -> Result<String, ConfigError> {
    let bad = |why: &str| Err(ConfigError::invalid(key, value, why));
    if value.is_empty() || value.chars().count() > 128 {
        return bad("expected a volume tag key of 1 to 128 characters");
    }
    if value.trim() != value {
        return bad("a tag key has no leading or trailing spaces");
    }
    if value.to_ascii_lowercase().starts_with("aws:") {
        return bad("keys starting with aws: are reserved by AWS");
    }
    if value.starts_with(tags::PREFIX) {
        return bad("keys starting with spotswap: are spotswap's own");
    }
    if !value
        .chars()
        .all(|c| c.is_alphanumeric() || " _.:/=+-@".contains(c))
    {
        return bad("EC2 tag keys allow letters, digits, spaces and _ . : / = + - @");
    }
    Ok(value.to_string())
}

/// The swap replacement of `original` in `group`: our live launch replacing it that is a
/// member of the group, not leaving.
fn replacement_of<'a>(
    group: &GroupSnapshot,
    instances: &'a BTreeMap<String, Instance>,
    original: &str,
) -> Option<&'a Instance> {
    instances
        .values()
        .filter(|i| i.is_live_launch_for(&group.name) && i.replaces() == Some(original))
        .filter(|i| {
            group
                .member(&i.id)
                .is_some_and(|m| m.state != MemberState::Leaving)
        })
        .min_by(|a, b| a.id.cmp(&b.id))
}

/// A member that may receive a resource: listed InService (or Pending, once EC2 runs it; an
/// interruption's replacement counts once running), EC2 running, not detached on interruption,
/// and not the original of one of our swaps in flight (about to be retired).
fn receiver(group: &GroupSnapshot, instances: &BTreeMap<String, Instance>, id: &str) -> bool {
    let Some(m) = group.member(id) else { return false };
    let Some(i) = instances.get(id) else { return false };
    matches!(m.state, MemberState::InService | MemberState::Pending)
        && i.state == InstanceState::Running
        && !i.is_detached()
        && instances
            .values()
            .all(|l| !(l.is_live_launch_for(&group.name) && l.replaces() == Some(id)))
}

/// True when `id` no longer serves the group: not a member (detached, gone), leaving, stopped,
/// gone, or detached on interruption. Unknown to the snapshot is gone.
fn departed(group: &GroupSnapshot, instances: &BTreeMap<String, Instance>, id: &str) -> bool {
    let member = group.member(id).is_some_and(|m| m.state != MemberState::Leaving);
    match instances.get(id) {
        None => true,
        Some(i) => !member || i.state != InstanceState::Running || i.is_detached(),
    }
}

/// True when `id` is or was the group's: a member, or an instance that names the group
/// (`aws:autoscaling:groupName`, which stays on a terminated instance; detached from it on
/// interruption; our launch for it). Anything else holding a resource is someone else's
/// choice, and is left alone.
fn related(group: &GroupSnapshot, instances: &BTreeMap<String, Instance>, id: &str) -> bool {
    let name = Some(group.name.as_str());
    group.member(id).is_some()
        || instances.get(id).is_some_and(|i| {
            i.tag(tags::AWS_ASG_NAME) == name
                || i.tag(tags::DETACHED_FROM) == name
                || i.launched_for() == name
        })
}

/// True when the address belongs to the group: associated with an instance of it (see
/// [`related`]), or free and recorded for it.
fn address_of_group(group: &GroupSnapshot, instances: &BTreeMap<String, Instance>, a: &Address) -> bool {
    match a.instance.as_deref() {
        Some(id) => related(group, instances, id),
        None => a.group_record.as_deref() == Some(group.name.as_str()),
    }
}

/// The group's carry moves for this run, in order: records first, then the moves.
pub fn plan_carry(
    group: &GroupSnapshot,
    policy: &CarryPolicy,
    instances: &BTreeMap<String, Instance>,
    carried: &Carried,
) -> Vec<Action> {
    let mut out = Vec::new();
    if policy.eip {
        out.extend(plan_addresses(group, instances, carried));
    }
    if policy.volumes.is_some() {
        out.extend(plan_volumes(group, instances, carried));
    }
    out
}

fn plan_addresses(
    group: &GroupSnapshot,
    instances: &BTreeMap<String, Instance>,
    carried: &Carried,
) -> Vec<Action> {
    let name = group.name.as_str();
    let mut out = Vec::new();
    let mut addresses: Vec<&Address> = carried
        .addresses
        .iter()
        .filter(|a| address_of_group(group, instances, a))
        .collect();
    addresses.sort_by(|a, b| a.allocation_id.cmp(&b.allocation_id));
    // Instances holding an address of the group once this plan's moves are made.
    let mut holding: BTreeSet<String> = addresses.iter().filter_map(|a| a.instance.clone()).collect();
    for a in &addresses {
        if a.group_record.as_deref() != Some(name) {
            let mut rec = Action::new(
                ActionKind::TagCarried {
                    resource: a.allocation_id.clone(),
                    key: tags::CARRY_EIP_GROUP.to_string(),
                    value: name.to_string(),
                },
                Reason::CarryRecorded,
                name,
            );
            rec.instance = a.instance.clone();
            out.push(rec);
        }
    }
    for a in addresses {
        let target = match a.instance.as_deref() {
            Some(holder) if departed(group, instances, holder) => {
                // Its holder is leaving: to the holder's replacement when it has one running,
                // else to a member that has none.
                replacement_of(group, instances, holder)
                    .map(|r| r.id.clone())
                    .filter(|r| receiver_of_address(group, instances, r, &holding))
                    .or_else(|| first_without(group, instances, &holding))
            }
            Some(holder) => {
                // It still serves: it moves only for a swap whose replacement is InService
                // and healthy (the original's retire waits for it).
                let Some(r) = replacement_of(group, instances, holder) else {
                    continue;
                };
                let ready = group
                    .member(&r.id)
                    .is_some_and(|m| m.state == MemberState::InService && m.healthy);
                if !ready || holding.contains(&r.id) {
                    continue;
                }
                Some(r.id.clone())
            }
            None => first_without(group, instances, &holding),
        };
        let Some(target) = target else { continue };
        if let Some(h) = &a.instance {
            holding.remove(h);
        }
        holding.insert(target.clone());
        out.push(
            Action::new(
                ActionKind::AssociateAddress {
                    allocation_id: a.allocation_id.clone(),
                    instance: target.clone(),
                    from: a.instance.clone(),
                },
                Reason::AddressCarried,
                name,
            )
            .instance(&target),
        );
    }
    out
}

fn receiver_of_address(
    group: &GroupSnapshot,
    instances: &BTreeMap<String, Instance>,
    id: &str,
    holding: &BTreeSet<String>,
) -> bool {
    receiver(group, instances, id) && !holding.contains(id)
}

/// The lowest-id member that may receive an address and holds none.
fn first_without(
    group: &GroupSnapshot,
    instances: &BTreeMap<String, Instance>,
    holding: &BTreeSet<String>,
) -> Option<String> {
    let mut ids: Vec<&str> = group.members.iter().map(|m| m.id.as_str()).collect();
    ids.sort_unstable();
    ids.into_iter()
        .find(|id| receiver_of_address(group, instances, id, holding))
        .map(str::to_string)
}

fn plan_volumes(
    group: &GroupSnapshot,
    instances: &BTreeMap<String, Instance>,
    carried: &Carried,
) -> Vec<Action> {
    let name = group.name.as_str();
    let mut out = Vec::new();
    let mut volumes: Vec<&Volume> = carried.volumes.iter().collect();
    volumes.sort_by(|a, b| a.id.cmp(&b.id));
    // (instance, device) pairs taken by a carried volume, attached or on its way.
    let mut taken: BTreeSet<(String, String)> = volumes
        .iter()
        .filter_map(|v| v.attachment.as_ref())
        .map(|a| (a.instance.clone(), a.device.clone()))
        .collect();
    for v in &volumes {
        if let Some(att) = v.attachment.as_ref().filter(|a| a.state == AttachState::Attached) {
            if v.device_record.as_deref() != Some(att.device.as_str()) {
                out.push(
                    Action::new(
                        ActionKind::TagCarried {
                            resource: v.id.clone(),
                            key: tags::CARRY_DEVICE.to_string(),
                            value: att.device.clone(),
                        },
                        Reason::CarryRecorded,
                        name,
                    )
                    .instance(&att.instance),
                );
            }
        }
    }
    for v in volumes {
        match (&v.attachment, v.state) {
            (Some(att), _) if att.state == AttachState::Attached => {
                let holder = att.instance.as_str();
                // Only from an instance of the group that has stopped or is going, or is past
                // its terminating hook; never from one that serves, nor from a stranger's.
                let released = match instances.get(holder) {
                    None => true,
                    Some(i) => {
                        related(group, instances, holder)
                            && (matches!(i.state, InstanceState::Stopped | InstanceState::Gone)
                                || carried.proceeding.contains(holder))
                    }
                };
                if released {
                    out.push(
                        Action::new(
                            ActionKind::DetachVolume {
                                volume: v.id.clone(),
                                instance: holder.to_string(),
                            },
                            Reason::VolumeReleased,
                            name,
                        )
                        .instance(holder),
                    );
                }
            }
            (None, VolumeState::Available) => {
                let stranded = |why: String| {
                    Action::new(
                        ActionKind::Stranded {
                            volume: v.id.clone(),
                            why,
                        },
                        Reason::VolumeStranded,
                        name,
                    )
                };
                let Some(device) = v.device_record.clone() else {
                    out.push(stranded("no device name recorded (spotswap:carry-device)".into()));
                    continue;
                };
                let mut ids: Vec<&str> = group.members.iter().map(|m| m.id.as_str()).collect();
                ids.sort_unstable();
                let target = ids.into_iter().find(|id| {
                    receiver(group, instances, id)
                        && instances.get(*id).is_some_and(|i| i.az == v.az)
                        && !taken.contains(&(id.to_string(), device.clone()))
                        && !carried.proceeding.contains(*id)
                });
                match target {
                    Some(id) => {
                        taken.insert((id.to_string(), device.clone()));
                        out.push(
                            Action::new(
                                ActionKind::AttachVolume {
                                    volume: v.id.clone(),
                                    instance: id.to_string(),
                                    device,
                                },
                                Reason::VolumeCarried,
                                name,
                            )
                            .instance(id),
                        );
                    }
                    None => out.push(stranded(format!(
                        "no running instance of the group in {} lacks a volume at {device}",
                        v.az
                    ))),
                }
            }
            // attaching, detaching, creating, deleting: the next run sees where it settled
            _ => {}
        }
    }
    out
}

/// The retire stage gate: a Retire of an instance that still holds an Elastic IP of a
/// `carry-eip` group becomes a Wait (`WaitingForCarry`) until the address has moved. With the
/// carry tags unreadable (`carry` `None` on a group that carries a carry tag) or the carried
/// resources unread, every retire waits: the address may be there.
pub fn gate_retires(group: &GroupSnapshot, carry: Option<&CarryPolicy>, actions: &mut [Action]) {
    let holds = |id: &str| match (carry, &group.carried) {
        (Some(p), _) if !p.eip => false,
        (Some(_), Some(c)) => c.addresses.iter().any(|a| a.instance.as_deref() == Some(id)),
        _ => true,
    };
    if carry.is_none() && !tagged(group) {
        return;
    }
    for a in actions.iter_mut() {
        if let ActionKind::Retire { instance, .. } = &a.kind {
            if holds(instance) {
                a.kind = ActionKind::Wait;
                a.reason = Reason::WaitingForCarry;
            }
        }
    }
}

/// A managed group's plan with its carry moves first ([`plan_carry`]) and its
/// retires gated on them ([`gate_retires`]). `carry` is `None` when the group's
/// policy is unknown (a bad tag value): no move, and every retire of a group with a carry tag
/// waits.
pub(crate) fn with_carry(
    group: &GroupSnapshot,
    instances: &BTreeMap<String, Instance>,
    carry: Option<&CarryPolicy>,
    mut plan: crate::plan::GroupPlan,
) -> crate::plan::GroupPlan {
    if plan.skip.as_ref().is_some_and(|s| s.reason == Reason::NotManaged) {
        return plan;
    }
    gate_retires(group, carry, &mut plan.actions);
    if let (Some(policy), Some(carried)) = (carry.filter(|c| c.any()), &group.carried) {
        let mut moves = plan_carry(group, policy, instances, carried);
        moves.append(&mut plan.actions);
        plan.actions = moves;
    }
    plan
}

mod view;
pub use view::{view, CarriedAddress, CarriedView, CarriedVolume};

#[cfg(test)]
mod tests;
