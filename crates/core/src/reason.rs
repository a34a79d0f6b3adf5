//! Why: the stable PascalCase reason codes every decision carries, in one place.

use std::fmt;

use serde::Serialize;

/// Why: a stable PascalCase code, the one the logs print.
///
/// Each variant's doc ends with where it is decided: one place, or the few that share the rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Reason {
    // -- swap stages
    /// An on-demand instance above the risk floor: launch a spot replacement.
    ///
    /// Decided in [`crate::plan`] (the cycle's new swaps, from [`crate::plan::originals`]).
    OnDemandAboveFloor,
    /// The group's on-demand count is below its risk floor (a scale-in took on-demand
    /// instances, or the floor was raised): an on-demand instance is launched from the group's
    /// own template to replace a spot one, through the same Launch → Attach → Retire stages.
    /// Decided in [`crate::plan`] (`restore_floor`).
    BelowRiskFloor,
    /// An AWS Health scheduled change (retirement, scheduled stop, reboot or maintenance) of the
    /// instance: launch its replacement ahead of the change's start, spot, or on-demand where
    /// the floor needs it, the group is sheltered, or no spot pool qualifies.
    ///
    /// Decided in [`crate::events::health`] (the event) and [`crate::plan::due`] (the
    /// rebalancer's own pickup from DescribeInstanceStatus).
    ScheduledChange,
    /// The group's `MaxInstanceLifetime` ends the instance within the hour: launch its
    /// replacement first, so Auto Scaling's own lifetime replacement does not race a swap or
    /// take capacity away.
    ///
    /// Decided in [`crate::plan::due`].
    MaxInstanceLifetime,
    /// `spotswap:replace-outdated=true` and the member was launched from another version of
    /// the group's launch template: replace it with one of today's version, keeping its purchase
    /// option (spot, or on-demand where the floor needs it), within `replace-per-cycle`, windows
    /// and pauses.
    ///
    /// Decided in [`crate::plan::outdated`].
    OutdatedTemplate,
    /// A rebalance recommendation: move the at-risk spot instance to another pool.
    ///
    /// Decided in [`crate::events::rebalance`].
    RebalanceRecommendation,
    /// The replacement runs and passed its status checks: attach it.
    ///
    /// Decided in [`crate::plan::stages`].
    ReplacementReady,
    /// desired == max: raise MaxSize so the attach fits.
    ///
    /// Decided in [`crate::plan::stages`].
    MaxSizeAtDesired,
    /// The replacement is InService past the grace period: retire the original.
    ///
    /// Decided in [`crate::plan::stages`].
    ReplacementInService,
    /// The `spotswap:attached-at` tag is missing (a crash between attach and tag): write it.
    ///
    /// Decided in [`crate::plan::stages`].
    AttachedAtMissing,
    /// No swap left in flight: restore MaxSize.
    ///
    /// Decided in [`crate::plan::stages`] ([`crate::plan::max_restore`], for the cycle and the
    /// reaper).
    NoSwapInFlight,
    /// More than one live launch replaces the same instance: keep one, end the rest.
    ///
    /// Decided in [`crate::plan::stages`].
    DuplicateLaunch,
    /// The instance being replaced left the group before the attach: end the launch.
    ///
    /// Decided in [`crate::plan::stages`].
    ReplacedInstanceGone,
    /// Our launch stopped or never came up: end it.
    ///
    /// Decided in [`crate::plan::stages`].
    LaunchFailed,
    /// Our launch never passed its status checks within `STATUS_CHECK_MINUTES`: its pool is
    /// marked as without capacity and the launch ended, so the next swap goes elsewhere.
    /// Decided in [`crate::plan::stages`].
    StatusChecksFailed,
    // -- waits
    /// The replacement is still pending.
    ///
    /// Decided in [`crate::plan::stages`].
    WaitingForLaunch,
    /// The replacement runs but its status checks have not passed.
    ///
    /// Decided in [`crate::plan::stages`].
    WaitingForStatusChecks,
    /// The replacement is attached but not yet InService and healthy.
    ///
    /// Decided in [`crate::plan::stages`].
    WaitingForInService,
    /// The replacement is InService; the health-check grace period has not passed.
    ///
    /// Decided in [`crate::plan::stages`].
    WaitingForGracePeriod,
    /// Not every desired instance is InService: retiring now would drop capacity.
    ///
    /// Decided in [`crate::plan::stages`] (no retire) and [`crate::plan`] (no new swap).
    GroupBelowCapacity,
    /// MaxSize cannot be restored while desired is above the original MaxSize.
    ///
    /// Decided in [`crate::plan::stages`] ([`crate::plan::max_restore`], for the cycle and the
    /// reaper).
    DesiredAboveOriginalMax,
    /// MaxSize is outside what spotswap could have left it at (`max-raised-from` to
    /// `max-raised-to`): its owner (a user, CloudFormation, Terraform) changed it meanwhile, so
    /// the record is dropped and MaxSize is left as they set it. Decided in
    /// [`crate::plan::stages`] (`max_restore`).
    MaxSizeChangedByOwner,
    // -- nothing to do / could not
    /// On-demand count is at the risk floor: nothing to swap.
    ///
    /// Decided in [`crate::plan::originals`].
    AtRiskFloor,
    /// No pool passes the compatibility, price, cooldown and diversification rules.
    ///
    /// Decided in [`crate::plan::launch`] ([`crate::plan::launch_for`], for the cycle and the
    /// rebalance handler).
    NoEligiblePool,
    /// CreateFleet found no spot capacity in any candidate pool: the on-demand instance stays.
    ///
    /// Decided by the adapter from [`crate::fleet::judge_fleet`]'s `NoCapacity`.
    NoSpotCapacity,
    /// The instance has no subnet to launch into.
    ///
    /// Decided in [`crate::plan::launch`].
    NoSubnet,
    // -- group skips
    /// A tag has a value that cannot be used.
    ///
    /// Decided in [`crate::plan`] ([`crate::plan::policy_for`]), [`crate::events::screen`] and
    /// [`crate::reap`] (an unreadable `spotswap:max-raised-from` or `spotswap:detached-at`).
    InvalidConfig,
    /// The group is not managed by spotswap.
    ///
    /// Decided in [`crate::plan`] ([`crate::plan::policy_for`]), [`crate::events::screen`] and
    /// [`crate::reap`].
    NotManaged,
    /// The group's launch configuration was not read, or has a setting a launch template
    /// cannot express (EC2-Classic ClassicLink, `PlacementTenancy` `host`, a `SpotPrice`): the
    /// detail names the configuration and the field.
    ///
    /// Decided in [`crate::launch_config`] (through [`crate::plan::blockers`]).
    LaunchConfigurationNotSupported,
    /// A launch-configuration group's first launch needs the template made from its
    /// configuration: it is created first (CreateLaunchTemplate, tagged
    /// `spotswap:from-launch-configuration`).
    ///
    /// Decided in [`crate::launch_config`].
    TemplateFromLaunchConfiguration,
    /// No group uses the launch configuration a template of ours was made from: the reaper
    /// deletes the template.
    ///
    /// Decided in [`crate::launch_config`] ([`crate::launch_config::reap_templates`]).
    LaunchConfigurationUnused,
    /// The group uses a mixed instances policy.
    ///
    /// Decided in [`crate::plan::blockers`].
    MixedInstancesPolicyNotSupported,
    /// The group's mixed instances policy selects instance types by attributes
    /// (`InstanceRequirements`) and the types EC2 resolves for them could not be read this
    /// cycle (`GetInstanceTypesFromInstanceRequirements` failed): no swap on unknown
    /// candidates. The detail says what failed.
    ///
    /// Decided in [`crate::plan::blockers`].
    InstanceRequirementsUnresolved,
    /// The group has no launch template we can use.
    ///
    /// Decided in [`crate::plan::blockers`].
    NoLaunchTemplate,
    /// The group has a warm pool. AWS supports warm pools only for groups that launch no spot
    /// (PutWarmPool refuses a group whose launch template requests spot or that has a mixed
    /// instances policy), and a warm pool's size follows MaxSize − desired, so the MaxSize a
    /// swap raises for its attach would have AWS prepare one more warm instance. The group is
    /// not swapped; its warm-pool instances are never touched.
    ///
    /// Decided in [`crate::plan::blockers`].
    WarmPoolNotSupported,
    /// An instance refresh is in progress.
    ///
    /// Decided in [`crate::plan::blockers`].
    InstanceRefreshInProgress,
    /// Auto Scaling processes a step needs are suspended on the group: no new swap starts, an
    /// attach waits while `Launch` or `AddToLoadBalancer` is suspended, a retire while
    /// `Terminate` is. The skip's detail names the processes. Decided in
    /// [`crate::plan::blockers`] (the stage-by-process table) and [`crate::plan::stages`].
    ProcessesSuspended,
    /// The group has a `Status`: it is being deleted. (Its CloudFormation stack's updates are
    /// [`Reason::StackUpdating`]: the group's own `Status` does not show them.)
    ///
    /// Decided in [`crate::plan::blockers`] and, for its records, [`crate::reap`].
    GroupUpdating,
    /// The group's CloudFormation stack (group tag `aws:cloudformation:stack-name`) is in a
    /// `*_IN_PROGRESS` state: no new swap starts (a stack update may replace or resize the
    /// group under it); swaps in flight still advance. The skip's detail names the stack and
    /// its status. Decided in [`crate::plan::blockers`], from the status the adapter's
    /// preflight reads (DescribeStacks, once per stack per cycle).
    StackUpdating,
    /// The group is sheltered on on-demand after an interruption burst.
    ///
    /// Decided in [`crate::plan`] (the start gate) and [`crate::events::rebalance::triage`].
    Sheltered,
    /// An `AWS Health Event` that is not an EC2 scheduled change (another service, an issue, an
    /// account notification): nothing to do.
    ///
    /// Decided in [`crate::events::health`] (the adapter's dispatch).
    NotScheduledChange,
    /// New swaps are paused: `SPOTSWAP_PAUSED=true` for the whole stack, or the group's
    /// `spotswap:paused-until` is in the future. Swaps in flight still finish; interruption
    /// handling and the reaper do not pause.
    ///
    /// Decided in [`crate::plan`] (the start gate, from [`crate::window`]).
    Paused,
    /// The on-demand instance is covered by a Reserved Instance or Savings Plan, and its
    /// removal would leave committed units or dollars unused: it is not swapped (the log line
    /// names the commitment).
    ///
    /// Decided in [`crate::plan`] (new swaps, from [`crate::commitments::Ledger`]).
    CommitmentCovered,
    /// `spotswap:commitments=fill` and a Reserved Instance or Savings Plan sits unused: an
    /// on-demand instance replaces a spot one through the safe stages, within
    /// `replace-per-cycle` (the log line names the commitment).
    ///
    /// Decided in [`crate::plan`] (`plan::toward_on_demand`).
    CommitmentUnused,
    /// The commitments could not be read (AccessDenied, throttled, unavailable): swaps proceed
    /// as without commitments, except in groups tagged `spotswap:commitments=strict`, which
    /// start none.
    ///
    /// Decided in the adapter's snapshot (the WARN line) and [`crate::plan`] (the strict hold).
    CommitmentsUnknown,
    /// Outside the group's `spotswap:schedule`: no new swap starts until the window opens (the
    /// detail gives the next opening). Swaps in flight still finish; interruption handling
    /// never waits for a window.
    ///
    /// Decided in [`crate::plan`] (the start gate, from [`crate::window`]).
    OutsideSchedule,
    /// The group has a launching lifecycle hook (`autoscaling:EC2_INSTANCE_LAUNCHING`), which
    /// AWS does not run for attached instances, and no `spotswap:launch-hooks=bypass`: no
    /// attach-based swap starts (swaps already in flight still finish).
    ///
    /// Decided in [`crate::plan::blockers`] (for the cycle's start gate and
    /// [`crate::events::rebalance::triage`]).
    LaunchHookWouldNotRun,
    /// A sheltered mixed-instances group cannot get spot, and AWS would keep trying spot: its
    /// `OnDemandPercentageAboveBaseCapacity` is raised to 100 so its own launches go on-demand,
    /// the owner's value recorded in `spotswap:distribution-raised-from`.
    ///
    /// Decided in [`crate::mixed::distribution_step`].
    DistributionRaised,
    /// The shelter is over: the owner's `OnDemandPercentageAboveBaseCapacity` is restored
    /// exactly, and the record removed; swaps convert the extra on-demand back to spot.
    ///
    /// Decided in [`crate::mixed::distribution_step`].
    DistributionRestored,
    /// The group's `OnDemandPercentageAboveBaseCapacity` is neither what spotswap set nor what
    /// it recorded: the owner changed it. Their value is kept and the record dropped.
    ///
    /// Decided in [`crate::mixed::distribution_step`].
    DistributionChangedByOwner,
    /// The time for launches ran out before this step: no new swap starts in the reserve
    /// before the invocation's deadline.
    ///
    /// Decided by the adapter, against the invocation's deadline.
    OutOfTime,
    /// An earlier step of the same group failed: later steps build on it.
    ///
    /// Decided by the adapter's executor, and for the reaper in [`crate::reap::ReapGate`].
    EarlierStepFailed,
    /// The invocation's mutating-call budget is spent.
    ///
    /// Decided by the adapter's executor, against its budget.
    MutationBudgetExhausted,
    /// CreateFleet hit an account limit (`MaxSpotInstanceCountExceeded`, `VcpuLimitExceeded`):
    /// not a capacity shortage, so no pool is marked; no further launch is tried this cycle.
    ///
    /// Decided by the adapter from [`crate::fleet::judge_fleet`]'s `Quota`.
    SpotQuotaExceeded,
    /// The region already has `SPOTSWAP_MAX_SWAPS_IN_FLIGHT` swaps in flight: this one starts in
    /// a later cycle. Decided in [`crate::plan`] (`plan_cycle_in`).
    MaxSwapsInFlight,
    /// AutoSpotting still acts on the group (`SPOTSWAP_COMPAT=autospotting`): an instance
    /// tagged `launched-by-autospotting` was launched for it within the quiet period. No new
    /// swap starts until AutoSpotting has been quiet that long, or the group carries
    /// `spotswap:ignore-autospotting=true`. Decided in [`crate::compat_mode::activity`].
    AutoSpottingActive,
    // -- stateful groups (issue 21): Elastic IPs and data volumes carried to replacements
    /// A carried resource's record written: `spotswap:carry-eip-group` on an Elastic IP first
    /// seen on an instance of a `spotswap:carry-eip=true` group, or `spotswap:carry-device` on
    /// a carried volume (the device name it must come back at once detached).
    ///
    /// Decided in [`crate::carry`].
    CarryRecorded,
    /// An Elastic IP of the group moved (AssociateAddress, AllowReassociation) to an instance
    /// of the group that has none: a swap's InService replacement before the original is
    /// retired, or a running member once its holder is leaving or the address is free.
    ///
    /// Decided in [`crate::carry`].
    AddressCarried,
    /// A carried volume detached from an instance that is stopping, stopped, shutting down,
    /// terminated, or retired past its terminating lifecycle hook (`Terminating:Proceed`).
    ///
    /// Decided in [`crate::carry`].
    VolumeReleased,
    /// A detached carried volume attached to an instance of its group in its AZ that lacks a
    /// carried volume at its device name.
    ///
    /// Decided in [`crate::carry`].
    VolumeCarried,
    /// (FIXED) A carried volume is detached and no instance of its group can take it: none in
    /// its AZ lacks it, or its device name was never recorded.
    ///
    /// Decided in [`crate::carry`].
    VolumeStranded,
    /// The retire of a swap's original waits for its Elastic IP to move to the replacement
    /// (or, with the carry tags unreadable, for them to be fixed): a stage gate.
    ///
    /// Decided in [`crate::carry::gate_retires`].
    WaitingForCarry,
    // -- interruption handling (issue 3) and reaping (issue 4) share this enum
    /// A spot interruption warning: replacement requested.
    ///
    /// Decided in [`crate::events::spot_warning`].
    SpotInterruptionWarning,
    /// Interruptions reached the shelter threshold.
    ///
    /// Decided in [`crate::events::spot_warning::decide_records`].
    InterruptionBurst,
    /// A pool is put in cooldown after an interruption.
    ///
    /// Decided in [`crate::events::spot_warning::decide_records`].
    PoolInterrupted,
    /// The event is for an instance we know nothing about.
    ///
    /// Decided in [`crate::events::screen`].
    UnknownInstance,
    /// The event is for an instance already detached, leaving or gone.
    ///
    /// Decided in [`crate::events::screen`] and [`crate::events::rebalance`].
    AlreadyHandled,
    /// `spotswap:on-rebalance=ignore`.
    ///
    /// Decided in [`crate::events::rebalance`].
    RebalanceIgnored,
    /// The event's detail-type is not one this function acts on.
    ///
    /// Decided by the adapter's interruption handler, for a [`crate::events::ParsedEvent::Other`].
    IgnoredDetailType,
    /// Our instance outside any group, past the orphan age.
    ///
    /// Decided in [`crate::reap`].
    Orphaned,
    /// A detached interrupted instance still alive past its grace.
    ///
    /// Decided in [`crate::reap`].
    DetachedStillAlive,
    /// A cooldown, capacity or shelter record has expired.
    ///
    /// Decided in [`crate::reap`] (from [`crate::records::GroupRecords::expired_keys`]).
    RecordExpired,
    /// Our instance outside any group, younger than the orphan age: a swap may still attach it.
    ///
    /// Decided in [`crate::reap`].
    WaitingForOrphanAge,
    /// A detached interrupted instance within its 10 minutes: it may still drain or stop.
    ///
    /// Decided in [`crate::reap`].
    WaitingForDetachedGrace,
    /// A swap of the group is in flight: MaxSize stays raised.
    ///
    /// Decided in [`crate::reap`] (from [`crate::plan::swaps_in_flight`]).
    SwapInFlight,
    /// The instance is pending or in standby: not serving, so not the handler's to replace.
    ///
    /// Decided in [`crate::events::screen`].
    NotInService,
    /// The instance is on-demand: a rebalance recommendation swaps only spot instances.
    ///
    /// Decided in [`crate::events::rebalance`].
    NotSpot,
    /// The instance is protected from scale-in or from termination: it is not swapped.
    ///
    /// Decided in [`crate::plan::originals`] and [`crate::events::rebalance`].
    InstanceProtected,
    /// An interrupted instance was a swap's replacement whose original still serves: our attach
    /// had raised desired by one, so it leaves with the decrement the retire would have made.
    ///
    /// Decided in [`crate::events::spot_warning`].
    ReplacementInterrupted,
    /// An interrupted instance was a swap's original whose replacement is already attached:
    /// the attach raised desired by one, so it leaves with the decrement its retire would have
    /// made, and the replacement serves in its place.
    ///
    /// Decided in [`crate::events::spot_warning`].
    OriginalAlreadyReplaced,
}

impl Reason {
    /// Every reason, in declaration order: what the README's reason-code table must list.
    pub const ALL: [Reason; 80] = [
        Self::OnDemandAboveFloor,
        Self::BelowRiskFloor,
        Self::ScheduledChange,
        Self::MaxInstanceLifetime,
        Self::OutdatedTemplate,
        Self::RebalanceRecommendation,
        Self::ReplacementReady,
        Self::MaxSizeAtDesired,
        Self::ReplacementInService,
        Self::AttachedAtMissing,
        Self::NoSwapInFlight,
        Self::DuplicateLaunch,
        Self::ReplacedInstanceGone,
        Self::LaunchFailed,
        Self::StatusChecksFailed,
        Self::WaitingForLaunch,
        Self::WaitingForStatusChecks,
        Self::WaitingForInService,
        Self::WaitingForGracePeriod,
        Self::GroupBelowCapacity,
        Self::DesiredAboveOriginalMax,
        Self::MaxSizeChangedByOwner,
        Self::AtRiskFloor,
        Self::NoEligiblePool,
        Self::NoSpotCapacity,
        Self::NoSubnet,
        Self::InvalidConfig,
        Self::NotManaged,
        Self::LaunchConfigurationNotSupported,
        Self::TemplateFromLaunchConfiguration,
        Self::LaunchConfigurationUnused,
        Self::MixedInstancesPolicyNotSupported,
        Self::InstanceRequirementsUnresolved,
        Self::NoLaunchTemplate,
        Self::WarmPoolNotSupported,
        Self::InstanceRefreshInProgress,
        Self::ProcessesSuspended,
        Self::GroupUpdating,
        Self::StackUpdating,
        Self::Sheltered,
        Self::NotScheduledChange,
        Self::Paused,
        Self::CommitmentCovered,
        Self::CommitmentUnused,
        Self::CommitmentsUnknown,
        Self::OutsideSchedule,
        Self::LaunchHookWouldNotRun,
        Self::DistributionRaised,
        Self::DistributionRestored,
        Self::DistributionChangedByOwner,
        Self::OutOfTime,
        Self::EarlierStepFailed,
        Self::MutationBudgetExhausted,
        Self::SpotQuotaExceeded,
        Self::MaxSwapsInFlight,
        Self::AutoSpottingActive,
        Self::CarryRecorded,
        Self::AddressCarried,
        Self::VolumeReleased,
        Self::VolumeCarried,
        Self::VolumeStranded,
        Self::WaitingForCarry,
        Self::SpotInterruptionWarning,
        Self::InterruptionBurst,
        Self::PoolInterrupted,
        Self::UnknownInstance,
        Self::AlreadyHandled,
        Self::RebalanceIgnored,
        Self::IgnoredDetailType,
        Self::Orphaned,
        Self::DetachedStillAlive,
        Self::RecordExpired,
        Self::WaitingForOrphanAge,
        Self::WaitingForDetachedGrace,
        Self::SwapInFlight,
        Self::NotInService,
        Self::NotSpot,
        Self::InstanceProtected,
        Self::ReplacementInterrupted,
        Self::OriginalAlreadyReplaced,
    ];

    /// The stable PascalCase code.
    pub fn code(self) -> &'static str {
        // Debug of a fieldless enum is its variant name: exactly the PascalCase code.
        // Spelled out so a rename is a visible, reviewed change of a FIXED string.
        match self {
            Self::OnDemandAboveFloor => "OnDemandAboveFloor",
            Self::BelowRiskFloor => "BelowRiskFloor",
            Self::ScheduledChange => "ScheduledChange",
            Self::MaxInstanceLifetime => "MaxInstanceLifetime",
            Self::OutdatedTemplate => "OutdatedTemplate",
            Self::RebalanceRecommendation => "RebalanceRecommendation",
            Self::ReplacementReady => "ReplacementReady",
            Self::MaxSizeAtDesired => "MaxSizeAtDesired",
            Self::ReplacementInService => "ReplacementInService",
            Self::AttachedAtMissing => "AttachedAtMissing",
            Self::NoSwapInFlight => "NoSwapInFlight",
            Self::DuplicateLaunch => "DuplicateLaunch",
            Self::ReplacedInstanceGone => "ReplacedInstanceGone",
            Self::LaunchFailed => "LaunchFailed",
            Self::StatusChecksFailed => "StatusChecksFailed",
            Self::WaitingForLaunch => "WaitingForLaunch",
            Self::WaitingForStatusChecks => "WaitingForStatusChecks",
            Self::WaitingForInService => "WaitingForInService",
            Self::WaitingForGracePeriod => "WaitingForGracePeriod",
            Self::GroupBelowCapacity => "GroupBelowCapacity",
            Self::DesiredAboveOriginalMax => "DesiredAboveOriginalMax",
            Self::MaxSizeChangedByOwner => "MaxSizeChangedByOwner",
            Self::AtRiskFloor => "AtRiskFloor",
            Self::NoEligiblePool => "NoEligiblePool",
            Self::NoSpotCapacity => "NoSpotCapacity",
            Self::NoSubnet => "NoSubnet",
            Self::InvalidConfig => "InvalidConfig",
            Self::NotManaged => "NotManaged",
            Self::LaunchConfigurationNotSupported => "LaunchConfigurationNotSupported",
            Self::TemplateFromLaunchConfiguration => "TemplateFromLaunchConfiguration",
            Self::LaunchConfigurationUnused => "LaunchConfigurationUnused",
            Self::MixedInstancesPolicyNotSupported => "MixedInstancesPolicyNotSupported",
            Self::InstanceRequirementsUnresolved => "InstanceRequirementsUnresolved",
            Self::NoLaunchTemplate => "NoLaunchTemplate",
            Self::WarmPoolNotSupported => "WarmPoolNotSupported",
            Self::InstanceRefreshInProgress => "InstanceRefreshInProgress",
            Self::ProcessesSuspended => "ProcessesSuspended",
            Self::GroupUpdating => "GroupUpdating",
            Self::StackUpdating => "StackUpdating",
            Self::Sheltered => "Sheltered",
            Self::NotScheduledChange => "NotScheduledChange",
            Self::Paused => "Paused",
            Self::CommitmentCovered => "CommitmentCovered",
            Self::CommitmentUnused => "CommitmentUnused",
            Self::CommitmentsUnknown => "CommitmentsUnknown",
            Self::OutsideSchedule => "OutsideSchedule",
            Self::LaunchHookWouldNotRun => "LaunchHookWouldNotRun",
            Self::DistributionRaised => "DistributionRaised",
            Self::DistributionRestored => "DistributionRestored",
            Self::DistributionChangedByOwner => "DistributionChangedByOwner",
            Self::OutOfTime => "OutOfTime",
            Self::EarlierStepFailed => "EarlierStepFailed",
            Self::MutationBudgetExhausted => "MutationBudgetExhausted",
            Self::SpotQuotaExceeded => "SpotQuotaExceeded",
            Self::MaxSwapsInFlight => "MaxSwapsInFlight",
            Self::AutoSpottingActive => "AutoSpottingActive",
            Self::CarryRecorded => "CarryRecorded",
            Self::AddressCarried => "AddressCarried",
            Self::VolumeReleased => "VolumeReleased",
            Self::VolumeCarried => "VolumeCarried",
            Self::VolumeStranded => "VolumeStranded",
            Self::WaitingForCarry => "WaitingForCarry",
            Self::SpotInterruptionWarning => "SpotInterruptionWarning",
            Self::InterruptionBurst => "InterruptionBurst",
            Self::PoolInterrupted => "PoolInterrupted",
            Self::UnknownInstance => "UnknownInstance",
            Self::AlreadyHandled => "AlreadyHandled",
            Self::RebalanceIgnored => "RebalanceIgnored",
            Self::IgnoredDetailType => "IgnoredDetailType",
            Self::Orphaned => "Orphaned",
            Self::DetachedStillAlive => "DetachedStillAlive",
            Self::RecordExpired => "RecordExpired",
            Self::WaitingForOrphanAge => "WaitingForOrphanAge",
            Self::WaitingForDetachedGrace => "WaitingForDetachedGrace",
            Self::SwapInFlight => "SwapInFlight",
            Self::NotInService => "NotInService",
            Self::NotSpot => "NotSpot",
            Self::InstanceProtected => "InstanceProtected",
            Self::ReplacementInterrupted => "ReplacementInterrupted",
            Self::OriginalAlreadyReplaced => "OriginalAlreadyReplaced",
        }
    }
}

/// The reason with this PascalCase code.
pub fn reason_from_code(code: &str) -> Option<Reason> {
    Reason::ALL.into_iter().find(|r| r.code() == code)
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}
