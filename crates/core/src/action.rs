//! What a plan asks for: actions with reasons, and groups passed over with reasons.

use serde::Serialize;

use crate::model::{LaunchTemplateRef, Pool};
use crate::time::Timestamp;

pub use crate::reason::{reason_from_code, Reason};

/// One instance type offered to CreateFleet for a replacement.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candidate {
    /// The pool (type × the original's AZ).
    pub pool: Pool,
    /// Its current spot price, USD/hour.
    pub spot_price: f64,
}

/// How a launch is bought.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Purchase {
    /// Spot, from the candidates (a swap to spot).
    #[default]
    Spot,
    /// On-demand, of the instance's own type (restoring the risk floor).
    OnDemand,
}

/// Everything the executor needs for one CreateFleet call.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LaunchSpec {
    /// The instance being replaced.
    pub replaces: String,
    /// The subnet of the instance being replaced.
    pub subnet_id: String,
    /// The group's own launch template and version, untouched.
    pub launch_template: LaunchTemplateRef,
    /// Overrides, cheapest first.
    pub candidates: Vec<Candidate>,
    /// Idempotency token: same instance and same time bucket give the same token.
    pub client_token: String,
    /// Tags for the new instance: ours plus the group's propagate-at-launch tags.
    pub tags: Vec<(String, String)>,
    /// Spot, or on-demand (restoring the risk floor).
    pub purchase: Purchase,
}

/// What to do.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ActionKind {
    /// CreateFleet instant with spot overrides.
    Launch(LaunchSpec),
    /// Raise MaxSize to `to`, recording `from` in `spotswap:max-raised-from`.
    RaiseMax {
        /// The original MaxSize.
        from: u32,
        /// The new MaxSize.
        to: u32,
    },
    /// One CreateTags on both instances (`spotswap:replaced-by`, `spotswap:attached-at`), then
    /// AttachInstances; a group's consecutive attaches share the AttachInstances, 20 at most.
    Attach {
        /// Our launched instance.
        instance: String,
        /// The instance it replaces.
        replaces: String,
        /// A batch launch ([`crate::batch`]): the CreateTags also writes the pair's
        /// `spotswap:replaces`, derived until then.
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        batched: bool,
    },
    /// Tag `spotswap:attached-at` on an instance already attached.
    MarkAttached {
        /// Our attached instance.
        instance: String,
    },
    /// TerminateInstanceInAutoScalingGroup with ShouldDecrementDesiredCapacity=true.
    Retire {
        /// The instance to retire.
        instance: String,
        /// Its InService replacement.
        replacement: String,
    },
    /// TerminateInstances on an instance of ours that is in no group.
    TerminateLaunch {
        /// Our instance, outside any group.
        instance: String,
    },
    /// A mixed-instances group's `OnDemandPercentageAboveBaseCapacity`: with `record`, first
    /// record the owner's value in `spotswap:distribution-raised-from`, then set
    /// `on_demand_percent` (the raise); without, set it, then remove the record (the restore).
    SetDistribution {
        /// The `OnDemandPercentageAboveBaseCapacity` to set.
        on_demand_percent: u32,
        /// The owner's value to record first; `None` restores and removes the record.
        record: Option<u32>,
        /// `spotswap:sheltered-until`, written with the record: the cooldown before the
        /// restore of a raise the group's shelter did not cause.
        sheltered_until: Option<Timestamp>,
        /// Why the group cannot get spot (a raise only).
        because: Option<crate::mixed::NoSpot>,
    },
    /// CreateLaunchTemplate from a group's launch configuration, tagged
    /// `spotswap:from-launch-configuration`; one that already exists under the name is taken
    /// as made (a concurrent cycle's), once its tag says so.
    CreateTemplate {
        /// The template's name ([`crate::launch_config::template_name`]).
        template_name: String,
        /// What it holds. Not printed: user data may carry secrets.
        #[serde(skip_serializing)]
        config: Box<crate::launch_config::LaunchConfig>,
    },
    /// DeleteLaunchTemplate of a template made from a launch configuration no group uses.
    DeleteTemplate {
        /// `lt-…`.
        template_id: String,
        /// The configuration it was made from.
        launch_configuration: String,
    },
    /// Restore MaxSize and remove `spotswap:max-raised-from`.
    RestoreMax {
        /// The original MaxSize.
        to: u32,
    },
    /// TerminateInstances on an instance the reaper found outside every group: an orphan of
    /// ours, or a detached interrupted instance still alive.
    Terminate {
        /// The instance.
        instance: String,
    },
    /// Mark pools as without capacity until `until` (the no-capacity records).
    MarkPools {
        /// The pools.
        pools: Vec<Pool>,
        /// End of the marks.
        until: Timestamp,
    },
    /// Remove expired (or unreadable) record tags from the group.
    ClearRecords {
        /// The tag keys.
        keys: Vec<String>,
    },
    /// DetachInstances, on a spot interruption warning: the group launches a replacement at
    /// once and the instance leaves its load balancers now.
    Detach {
        /// The interrupted instance.
        instance: String,
        /// ShouldDecrementDesiredCapacity.
        decrement: bool,
    },
    /// TerminateInstanceInAutoScalingGroup, on a spot interruption warning in a group with a
    /// terminating lifecycle hook: the hook drains the instance.
    TerminateInGroup {
        /// The interrupted instance.
        instance: String,
        /// ShouldDecrementDesiredCapacity.
        decrement: bool,
    },
    /// Tag an interrupted instance `spotswap:detached-at` and `spotswap:detached-from`.
    TagDetached {
        /// The interrupted instance.
        instance: String,
        /// The group it left.
        group: String,
    },
    /// One CreateOrUpdateTags on the group: the pool's cooldown, the interruption list and,
    /// when the burst crosses the threshold, `spotswap:sheltered-until`.
    RecordInterruption {
        /// The interrupted pool.
        pool: Pool,
        /// End of the pool's cooldown; `None` writes none.
        cooldown_until: Option<Timestamp>,
        /// The new `spotswap:interruptions` value.
        interruptions: String,
        /// The new `spotswap:interruption-counts` value.
        counts: String,
        /// End of the shelter, when the group is (or stays) sheltered.
        sheltered_until: Option<Timestamp>,
    },
    /// AssociateAddress with AllowReassociation: an Elastic IP of a `carry-eip` group moves.
    AssociateAddress {
        /// `eipalloc-…`.
        allocation_id: String,
        /// The instance it moves to.
        instance: String,
        /// The instance it was seen on; `None` when free. The adapter re-reads the address
        /// and moves it only while it is still there.
        from: Option<String>,
    },
    /// DetachVolume: a carried volume leaves an instance that stopped, is going, or is past
    /// its terminating hook.
    DetachVolume {
        /// `vol-…`.
        volume: String,
        /// The instance it leaves.
        instance: String,
    },
    /// AttachVolume: a detached carried volume goes to an instance of its group in its AZ.
    AttachVolume {
        /// `vol-…`.
        volume: String,
        /// The instance.
        instance: String,
        /// Device name, as recorded on the volume.
        device: String,
    },
    /// CreateTags on an Elastic IP or a volume: a carry record (`spotswap:carry-eip-group`,
    /// `spotswap:carry-device`).
    TagCarried {
        /// `eipalloc-…` or `vol-…`.
        resource: String,
        /// The record's key.
        key: String,
        /// Its value.
        value: String,
    },
    /// A carried volume nobody can take (`VolumeStranded`): logged, nothing is called.
    Stranded {
        /// `vol-…`.
        volume: String,
        /// Why it stays where it is.
        why: String,
    },
    /// Nothing to do for this event, ever; the reason says why (a duplicate, an unmanaged
    /// group, …).
    Ignore,
    /// Nothing to do yet; the reason says why.
    Wait,
}

impl ActionKind {
    /// The short name the logs print in `action`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Launch(_) => "launch",
            Self::RaiseMax { .. } => "raise-max",
            Self::Attach { .. } => "attach",
            Self::MarkAttached { .. } => "mark-attached",
            Self::Retire { .. } => "retire",
            Self::TerminateLaunch { .. } => "terminate-launch",
            Self::RestoreMax { .. } => "restore-max",
            Self::CreateTemplate { .. } => "create-template",
            Self::DeleteTemplate { .. } => "delete-template",
            Self::SetDistribution { .. } => "set-distribution",
            Self::Terminate { .. } => "terminate",
            Self::ClearRecords { .. } => "clear-records",
            Self::MarkPools { .. } => "mark-pools",
            Self::Detach { .. } => "detach",
            Self::TerminateInGroup { .. } => "terminate-in-group",
            Self::TagDetached { .. } => "tag-detached",
            Self::RecordInterruption { .. } => "record-interruption",
            Self::AssociateAddress { .. } => "associate-address",
            Self::DetachVolume { .. } => "detach-volume",
            Self::AttachVolume { .. } => "attach-volume",
            Self::TagCarried { .. } => "tag-carried",
            Self::Stranded { .. } => "stranded",
            Self::Ignore => "ignore",
            Self::Wait => "wait",
        }
    }

    /// True when executing it changes something in AWS.
    pub fn is_mutating(&self) -> bool {
        !matches!(self, Self::Wait | Self::Ignore | Self::Stranded { .. })
    }
}

/// One decision: an action, its reason, and the fields every log line carries.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Action {
    /// What to do.
    pub kind: ActionKind,
    /// Why.
    pub reason: Reason,
    /// The group.
    pub group: String,
    /// The instance acted on (for a launch: the one being replaced).
    pub instance: Option<String>,
    /// The pool concerned: for a launch, the cheapest candidate.
    pub pool: Option<Pool>,
    /// Spot price of `pool`, USD/hour.
    pub spot_price: Option<f64>,
    /// On-demand price of the original type, USD/hour.
    pub on_demand_price: Option<f64>,
    /// The Reserved Instances or Savings Plan a decision was about (`CommitmentCovered`,
    /// `CommitmentUnused`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commitment: Option<String>,
}

impl Action {
    /// An action on `group` with no instance or pool yet.
    pub fn new(kind: ActionKind, reason: Reason, group: &str) -> Self {
        Self {
            kind,
            reason,
            group: group.to_string(),
            instance: None,
            pool: None,
            spot_price: None,
            on_demand_price: None,
            commitment: None,
        }
    }

    /// With the instance concerned.
    pub fn instance(mut self, id: &str) -> Self {
        self.instance = Some(id.to_string());
        self
    }

    /// With the pool concerned.
    pub fn pool(mut self, pool: Pool) -> Self {
        self.pool = Some(pool);
        self
    }

    /// With the commitment the decision was about.
    pub fn commitment(mut self, id: impl Into<String>) -> Self {
        self.commitment = Some(id.into());
        self
    }

    /// With prices.
    pub fn prices(mut self, spot: Option<f64>, on_demand: Option<f64>) -> Self {
        self.spot_price = spot;
        self.on_demand_price = on_demand;
        self
    }
}

/// A group the cycle passed over, with the reason.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Skip {
    /// The group.
    pub group: String,
    /// Why.
    pub reason: Reason,
    /// Detail for a human, e.g. the tag and value at fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}
