//! Stateful groups in AWS: read their Elastic IPs and data volumes into
//! [`spotswap_core::carry::Carried`], and make the moves the core decides.
//!
//! Each move re-reads its resource first and is made only while the resource is still where
//! the plan saw it: a concurrent or repeated run that already moved it finds the move done
//! (`AlreadyDone`), so nothing moves twice, and a crash between any two calls leaves a state
//! the next run's plan reads and finishes.

use std::collections::{BTreeMap, BTreeSet};

use spotswap_core::carry::{AttachState, Carried, CarryPolicy, Volume, VolumeState};
use spotswap_core::{ActionKind, GroupSnapshot, Instance, MemberState, Outcome, Settings};
use tracing::warn;

use crate::execute::Executor;
use crate::port::{op, VolumeQuery};
use crate::snapshot::describe_instances;
use crate::{AdapterError, Aws};

/// The group's carry settings, when its policy reads and carries anything.
pub(crate) fn carry_policy(group: &GroupSnapshot, settings: &Settings) -> Option<CarryPolicy> {
    spotswap_core::plan::policy_for(group, settings)
        .ok()
        .flatten()
        .map(|p| CarryPolicy::of(&p))
        .filter(CarryPolicy::any)
}

/// Read the carried resources of every stateful group into `group.carried`, and put every
/// instance holding one into `instances` (a terminated holder too: it still names its group).
/// A group whose read fails keeps `carried = None`: its retires wait, nothing moves.
pub(crate) async fn read_carried(
    aws: &Aws,
    settings: &Settings,
    groups: &mut [GroupSnapshot],
    instances: &mut BTreeMap<String, Instance>,
) {
    let wanted: Vec<(usize, CarryPolicy)> = groups
        .iter()
        .enumerate()
        .filter_map(|(i, g)| carry_policy(g, settings).map(|p| (i, p)))
        .collect();
    if wanted.is_empty() {
        return;
    }
    let addresses = if wanted.iter().any(|(_, p)| p.eip) {
        match aws
            .paced(op::DESCRIBE_ADDRESSES, aws.port().describe_addresses(&[]))
            .await
        {
            Ok(a) => Some(a),
            Err(e) => {
                warn!(reason = "CarryUnknown", error = %e, "Elastic IPs unreadable; retires of carry-eip groups wait");
                None
            }
        }
    } else {
        Some(Vec::new())
    };
    for (i, policy) in wanted {
        let group = &groups[i];
        let volumes = match &policy.volumes {
            Some(key) => match tagged_volumes(aws, key, &group.name).await {
                Ok(v) => v,
                Err(e) => {
                    warn!(group = %group.name, reason = "CarryUnknown", error = %e, "carried volumes unreadable");
                    continue;
                }
            },
            None => Vec::new(),
        };
        let Some(all) = &addresses else { continue };
        let members: BTreeSet<&str> = group.members.iter().map(|m| m.id.as_str()).collect();
        let ours = |id: &str| {
            members.contains(id)
                || instances
                    .get(id)
                    .is_some_and(|i| i.launched_for() == Some(&group.name))
        };
        let mut carried = Carried {
            addresses: all
                .iter()
                .filter(|_| policy.eip)
                .filter(|a| {
                    a.group_record.as_deref() == Some(group.name.as_str())
                        || a.instance.as_deref().is_some_and(&ours)
                })
                .cloned()
                .collect(),
            volumes,
            proceeding: BTreeSet::new(),
        };
        // Members leaving: which are past their terminating hook (`Terminating:Proceed`)?
        for m in group.members.iter().filter(|m| m.state == MemberState::Leaving) {
            if let Ok(Some(ms)) = aws
                .paced(op::DESCRIBE_ASG_INSTANCES, aws.port().membership(&m.id))
                .await
            {
                if ms.lifecycle_state == "Terminating:Proceed" {
                    carried.proceeding.insert(m.id.clone());
                }
            }
        }
        groups[i].carried = Some(carried);
    }
    // Holders the snapshot lacks: a live read, then any state for the rest.
    let holders: Vec<String> = groups
        .iter()
        .filter_map(|g| g.carried.as_ref())
        .flat_map(|c| {
            c.addresses.iter().filter_map(|a| a.instance.clone()).chain(
                c.volumes
                    .iter()
                    .filter_map(|v| v.attachment.as_ref().map(|a| a.instance.clone())),
            )
        })
        .filter(|id| !instances.contains_key(id))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if holders.is_empty() {
        return;
    }
    if let Ok(found) = describe_instances(aws, &holders).await {
        instances.extend(found);
    }
    let missing: Vec<&String> = holders.iter().filter(|id| !instances.contains_key(*id)).collect();
    for id in missing {
        if let Ok(Some(i)) = aws
            .paced(op::DESCRIBE_INSTANCES, aws.port().instance_any_state(id))
            .await
        {
            instances.insert(id.clone(), i);
        }
    }
}

async fn tagged_volumes(aws: &Aws, key: &str, group: &str) -> Result<Vec<Volume>, AdapterError> {
    let q = VolumeQuery::Tagged {
        key: key.to_string(),
        values: vec![group.to_string()],
    };
    let mut out = Vec::new();
    aws.each_page(
        op::DESCRIBE_VOLUMES,
        |t| aws.port().describe_volumes(&q, t),
        |v| out.push(v),
    )
    .await?;
    Ok(out)
}

async fn volume(aws: &Aws, id: &str) -> Result<Option<Volume>, AdapterError> {
    let q = VolumeQuery::Ids(vec![id.to_string()]);
    let page = aws
        .paced(op::DESCRIBE_VOLUMES, aws.port().describe_volumes(&q, None))
        .await?;
    Ok(page.items.into_iter().find(|v| v.id == id))
}

/// Make one carry move (or write one record). `None` when `kind` is no carry action.
pub(crate) async fn apply(ex: &Executor, kind: &ActionKind) -> Option<Result<Outcome, AdapterError>> {
    Some(match kind {
        ActionKind::TagCarried { resource, key, value } => tag(ex, resource, key, value).await,
        ActionKind::AssociateAddress {
            allocation_id,
            instance,
            from,
        } => associate(ex, allocation_id, instance, from.as_deref()).await,
        ActionKind::DetachVolume { volume, instance } => detach(ex, volume, instance).await,
        ActionKind::AttachVolume {
            volume,
            instance,
            device,
        } => attach(ex, volume, instance, device).await,
        _ => return None,
    })
}

async fn tag(ex: &Executor, resource: &str, key: &str, value: &str) -> Result<Outcome, AdapterError> {
    ex.spend_one()?;
    let aws = ex.aws();
    aws.paced(op::CREATE_TAGS, aws.port().tag_resource(resource, key, value))
        .await?;
    Ok(Outcome::Done(None))
}

async fn associate(
    ex: &Executor,
    allocation_id: &str,
    instance: &str,
    from: Option<&str>,
) -> Result<Outcome, AdapterError> {
    let aws = ex.aws();
    let ids = [allocation_id.to_string()];
    let now = aws
        .paced(op::DESCRIBE_ADDRESSES, aws.port().describe_addresses(&ids))
        .await?;
    let Some(a) = now.into_iter().find(|a| a.allocation_id == allocation_id) else {
        return Ok(Outcome::AlreadyDone(format!("{allocation_id} is released")));
    };
    match a.instance.as_deref() {
        Some(i) if i == instance => {
            return Ok(Outcome::AlreadyDone(format!("{allocation_id} is on {instance}")))
        }
        // another run moved it (or its owner did): it is not ours to move again
        now if now != from => {
            return Ok(Outcome::AlreadyDone(format!(
                "{allocation_id} moved to {} meanwhile",
                now.unwrap_or("nothing")
            )))
        }
        _ => {}
    }
    ex.spend_one()?;
    aws.paced(
        op::ASSOCIATE_ADDRESS,
        aws.port().associate_address(allocation_id, instance),
    )
    .await?;
    Ok(Outcome::Done(None))
}

async fn detach(ex: &Executor, volume_id: &str, instance: &str) -> Result<Outcome, AdapterError> {
    let aws = ex.aws();
    let on_it = volume(aws, volume_id).await?.is_some_and(|v| {
        v.attachment
            .is_some_and(|a| a.instance == instance && a.state == AttachState::Attached)
    });
    if !on_it {
        return Ok(Outcome::AlreadyDone(format!("{volume_id} is off {instance}")));
    }
    ex.spend_one()?;
    match aws
        .paced(op::DETACH_VOLUME, aws.port().detach_volume(volume_id, instance))
        .await
    {
        // EC2 detached it itself meanwhile (the instance terminated)
        Err(e) if e.code() == Some("IncorrectState") => {
            Ok(Outcome::AlreadyDone(format!("{volume_id} is detaching")))
        }
        r => r.map(|()| Outcome::Done(None)),
    }
}

async fn attach(
    ex: &Executor,
    volume_id: &str,
    instance: &str,
    device: &str,
) -> Result<Outcome, AdapterError> {
    let aws = ex.aws();
    let Some(v) = volume(aws, volume_id).await? else {
        return Ok(Outcome::AlreadyDone(format!("{volume_id} is gone")));
    };
    if let Some(a) = &v.attachment {
        return Ok(Outcome::AlreadyDone(if a.instance == instance {
            format!("{volume_id} is on {instance}")
        } else {
            format!("{volume_id} went to {} meanwhile", a.instance)
        }));
    }
    if v.state != VolumeState::Available {
        return Ok(Outcome::AlreadyDone(format!("{volume_id} is not available")));
    }
    ex.spend_one()?;
    match aws
        .paced(
            op::ATTACH_VOLUME,
            aws.port().attach_volume(volume_id, instance, device),
        )
        .await
    {
        // Another run attached it between our read and our call: AWS attaches a volume to
        // one instance only, and refuses the second.
        Err(e) if e.code() == Some("VolumeInUse") => Ok(Outcome::AlreadyDone(format!(
            "{volume_id} was attached meanwhile"
        ))),
        r => r.map(|()| Outcome::Done(None)),
    }
}
