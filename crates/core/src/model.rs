//! Plain data the adapter reads from AWS and hands to the planner.
//!
//! Nothing here knows about SDK types: the adapter converts, the core decides.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::tags;
use crate::time::Timestamp;

mod boot;
pub use boot::{AmiBootMode, BootMode, BootModes, ImageNeeds, Support};

/// How an instance is billed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Lifecycle {
    /// On-demand (EC2 reports no `InstanceLifecycle`).
    OnDemand,
    /// Spot (`InstanceLifecycle = spot`).
    Spot,
}

/// EC2 instance state, as far as decisions care.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InstanceState {
    /// Launching.
    Pending,
    /// Running.
    Running,
    /// Stopping or stopped.
    Stopped,
    /// Shutting down or terminated: gone for every purpose here.
    Gone,
}

/// A spot capacity pool: one instance type in one availability zone.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Pool {
    /// Instance type, e.g. `m5.large`.
    pub instance_type: String,
    /// Availability zone, e.g. `us-east-1a`.
    pub az: String,
}

impl Pool {
    /// A pool of `instance_type` in `az`.
    pub fn new(instance_type: impl Into<String>, az: impl Into<String>) -> Self {
        Self {
            instance_type: instance_type.into(),
            az: az.into(),
        }
    }

    /// Parse the `<type>/<az>` form used in logs and tag keys.
    pub fn parse(s: &str) -> Option<Self> {
        let (t, az) = s.split_once('/')?;
        (!t.is_empty() && !az.is_empty()).then(|| Self::new(t, az))
    }
}

impl fmt::Display for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.instance_type, self.az)
    }
}

/// An EC2 instance as `DescribeInstances` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Instance {
    /// Instance id.
    pub id: String,
    /// Instance type.
    pub instance_type: String,
    /// Availability zone.
    pub az: String,
    /// Subnet, if in a VPC.
    pub subnet_id: Option<String>,
    /// Spot or on-demand.
    pub lifecycle: Lifecycle,
    /// Coarse state.
    pub state: InstanceState,
    /// When EC2 launched it.
    pub launch_time: Timestamp,
    /// Status checks: `Some(true)` when both pass, `None` when not read.
    pub status_ok: Option<bool>,
    /// `DisableApiTermination`, when it was read.
    pub termination_protected: Option<bool>,
    /// The instance's `spotswap:` tags and `aws:autoscaling:groupName` (the adapter reads no
    /// others).
    pub tags: crate::tags::InstanceTags,
    /// CPU architecture the instance runs (`x86_64`, `arm64`), from its AMI.
    pub architecture: Option<String>,
    /// What its image needs of a replacement's type (boot mode, ENA).
    #[serde(default)]
    pub image: ImageNeeds,
    /// How EC2 bills it, as far as commitments care: platform and tenancy.
    #[serde(default)]
    pub billing: Billing,
}

/// An instance's platform (`PlatformDetails`, e.g. `Linux/UNIX`) and tenancy
/// (`Placement.Tenancy`: `default`, `dedicated`, `host`); `None` when not reported, read as
/// Linux/UNIX on shared hardware.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Billing {
    /// `PlatformDetails`.
    pub platform: Option<String>,
    /// `Placement.Tenancy`.
    pub tenancy: Option<String>,
}

impl Instance {
    /// The pool this instance runs in.
    pub fn pool(&self) -> Pool {
        Pool::new(&self.instance_type, &self.az)
    }

    /// A tag value.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags.get(key)
    }

    /// The group we launched this instance for, if we did.
    pub fn launched_for(&self) -> Option<&str> {
        self.tag(tags::GROUP)
    }

    /// The instance this one replaces, if we launched it as a replacement. A value naming the
    /// instance itself names nothing: a batch swap's Attach stage writes the pair's
    /// `spotswap:replaces` on both of its instances ([`crate::records::swap_tags`]).
    pub fn replaces(&self) -> Option<&str> {
        self.tag(tags::REPLACES).filter(|r| *r != self.id)
    }

    /// `spotswap:launched-at`, falling back to EC2's launch time.
    pub fn launched_at(&self) -> Timestamp {
        self.tag(tags::LAUNCHED_AT)
            .and_then(Timestamp::parse_rfc3339)
            .unwrap_or(self.launch_time)
    }

    /// `spotswap:attached-at`, if we attached it.
    pub fn attached_at(&self) -> Option<Timestamp> {
        self.tag(tags::ATTACHED_AT).and_then(Timestamp::parse_rfc3339)
    }

    /// Alive for our purposes: not shutting down or terminated.
    pub fn is_alive(&self) -> bool {
        self.state != InstanceState::Gone
    }

    /// True when we launched it, for any group (`spotswap:group` is set).
    pub fn is_our_launch(&self) -> bool {
        self.launched_for().is_some()
    }

    /// True when we launched it for `group` (`spotswap:group` == `group`), alive or not.
    pub fn is_launch_for(&self, group: &str) -> bool {
        self.launched_for() == Some(group)
    }

    /// True when the interruption handler detached it (`spotswap:detached-at` is set): it is
    /// dying, and the reaper ends it if it lingers.
    pub fn is_detached(&self) -> bool {
        self.tag(tags::DETACHED_AT).is_some()
    }

    /// Our live launch for `group`: launched for it, alive, and not detached on interruption.
    ///
    /// The one notion of "our launch" that may steer a swap of the group: a detached launch
    /// must never be attached again, nor count as the replacement of anything.
    pub fn is_live_launch_for(&self, group: &str) -> bool {
        self.is_launch_for(group) && self.is_alive() && !self.is_detached()
    }
}

/// An Auto Scaling lifecycle state, as far as decisions care.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MemberState {
    /// `Pending`, `Pending:Wait`, `Pending:Proceed`.
    Pending,
    /// `InService`.
    InService,
    /// `Standby` and its transitions.
    Standby,
    /// `Terminating*`, `Terminated`, `Detaching`, `Detached`, warm-pool states and anything else.
    Leaving,
}

impl MemberState {
    /// Map the Auto Scaling API's lifecycle-state string.
    pub fn from_api(s: &str) -> Self {
        match s {
            "InService" => Self::InService,
            s if s.starts_with("Pending") => Self::Pending,
            s if s.starts_with("Standby") || s.starts_with("EnteringStandby") => Self::Standby,
            _ => Self::Leaving,
        }
    }
}

/// One instance as the group lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Member {
    /// Instance id.
    pub id: String,
    /// Group lifecycle state.
    pub state: MemberState,
    /// `HealthStatus == Healthy`.
    pub healthy: bool,
    /// Protected from scale-in.
    pub protected_from_scale_in: bool,
    /// `WeightedCapacity` as the group lists it for this instance (a weighted mixed-instances
    /// group), when reported: the units it counts toward desired capacity. AWS keeps an
    /// instance's weight even after its type leaves the policy's overrides.
    #[serde(default)]
    pub weight: Option<u32>,
}

/// The group's launch template and version, used as-is for replacements.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaunchTemplateRef {
    /// `lt-…` id, when known.
    pub id: Option<String>,
    /// Name, when known.
    pub name: Option<String>,
    /// Version: a number, `$Latest` or `$Default`.
    pub version: String,
}

/// How the group launches instances.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LaunchSource {
    /// A launch template: supported.
    Template(LaunchTemplateRef),
    /// A launch configuration, by name: launched from the template spotswap makes from it
    /// ([`GroupSnapshot::from_launch_config`], [`crate::launch_config`]).
    LaunchConfiguration(String),
    /// A mixed instances policy: the policy itself is [`GroupSnapshot::mixed`].
    MixedInstances,
    /// Nothing we recognise.
    Unknown,
}

/// One Auto Scaling group as read in one snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupSnapshot {
    /// Group name.
    pub name: String,
    /// MinSize.
    pub min_size: u32,
    /// MaxSize.
    pub max_size: u32,
    /// DesiredCapacity.
    pub desired: u32,
    /// HealthCheckGracePeriod in seconds.
    pub health_check_grace_secs: u32,
    /// Launch template, configuration or mixed policy.
    pub launch_source: LaunchSource,
    /// Subnets of `VPCZoneIdentifier`.
    pub subnets: Vec<String>,
    /// The group's availability zones.
    pub availability_zones: Vec<String>,
    /// Group tags, key to value.
    pub tags: BTreeMap<String, String>,
    /// Tags with `PropagateAtLaunch = true`, copied onto our launches.
    pub propagated_tags: BTreeMap<String, String>,
    /// Members as the group lists them.
    pub members: Vec<Member>,
    /// `Status` of the group (e.g. `Delete in progress`), if any.
    pub status: Option<String>,
    /// An instance refresh is running. `None` when not read.
    pub instance_refresh_in_progress: Option<bool>,
    /// The group has a lifecycle hook on `autoscaling:EC2_INSTANCE_TERMINATING`.
    /// `None` when not read.
    pub has_terminating_hook: Option<bool>,
    /// The group has a lifecycle hook on `autoscaling:EC2_INSTANCE_LAUNCHING`. `None` when not
    /// read (the rebalancer reads it before a group's first launch of a cycle).
    #[serde(default)]
    pub has_launching_hook: Option<bool>,
    /// The group has a warm pool (`WarmPoolConfiguration` in DescribeAutoScalingGroups).
    #[serde(default)]
    pub has_warm_pool: bool,
    /// The group's `MixedInstancesPolicy` (with `launch_source` `MixedInstances`), read from
    /// DescribeAutoScalingGroups.
    #[serde(default)]
    pub mixed: Option<crate::mixed::MixedPolicy>,
    /// Auto Scaling processes suspended on the group (`Launch`, `Terminate`,
    /// `AddToLoadBalancer`, …), as `DescribeAutoScalingGroups` lists them.
    #[serde(default)]
    pub suspended_processes: Vec<String>,
    /// `MaxInstanceLifetime` in seconds, when the group sets one: Auto Scaling replaces an
    /// instance of that age itself.
    pub max_instance_lifetime_secs: Option<u32>,
    /// The version number the group's launch template launches today (`$Latest` and
    /// `$Default` resolved), read only for groups tagged `spotswap:replace-outdated=true`.
    pub template_version_now: Option<String>,
    /// `StackStatus` of the group's CloudFormation stack (group tag
    /// `aws:cloudformation:stack-name`), e.g. `UPDATE_IN_PROGRESS`. `None` when not read, or
    /// when the stack could not be read (it does not exist, or access was denied).
    #[serde(default)]
    pub stack_status: Option<String>,
    /// For a launch-configuration group: the configuration and the template made from it.
    /// `None` when not read.
    #[serde(default)]
    pub from_launch_config: Option<crate::launch_config::FromLaunchConfig>,
    /// The Elastic IPs and data volumes of a stateful group (`spotswap:carry-eip`,
    /// `spotswap:carry-volumes`), read only for such groups; `None` when not read.
    #[serde(default)]
    pub carried: Option<crate::carry::Carried>,
    /// For a mixed-instances group below its desired capacity: when its newest scaling
    /// activity that failed for spot capacity started (DescribeScalingActivities,
    /// [`crate::mixed::spot_capacity_failure`]). `None` when there is none or it was not read.
    #[serde(default)]
    pub spot_failed_at: Option<crate::time::Timestamp>,
}

impl GroupSnapshot {
    /// A group tag value.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags.get(key).map(String::as_str)
    }

    /// The member with this id.
    pub fn member(&self, id: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.id == id)
    }

    /// Members that are InService.
    pub fn in_service(&self) -> impl Iterator<Item = &Member> {
        self.members.iter().filter(|m| m.state == MemberState::InService)
    }

    /// The capacity units instance `id` of type `instance_type` counts toward desired capacity
    /// (and the floor): the one rule for every count against desired. The weight the group
    /// lists for its member when it lists one, else the `WeightedCapacity` of the policy's
    /// override of that type, else 1. A group without weights counts every instance as 1.
    pub fn units(&self, id: &str, instance_type: &str) -> u32 {
        self.member(id)
            .and_then(|m| m.weight)
            .or_else(|| self.mixed.as_ref().and_then(|m| m.weight_of(instance_type)))
            .unwrap_or(1)
    }

    /// [`GroupSnapshot::units`] of `inst`.
    pub fn units_of(&self, inst: &Instance) -> u32 {
        self.units(&inst.id, &inst.instance_type)
    }

    /// The units of the InService members: what invariant 1 holds against desired. A member
    /// whose instance the snapshot lacks counts by its listed weight, else 1.
    pub fn in_service_units(&self, instances: &BTreeMap<String, Instance>) -> u32 {
        self.in_service()
            .map(|m| match instances.get(&m.id) {
                Some(i) => self.units_of(i),
                None => m.weight.unwrap_or(1),
            })
            .sum()
    }

    /// True when the group's policy gives its types weights other than 1.
    pub fn weighted(&self) -> bool {
        self.mixed.as_ref().is_some_and(|m| m.weighted())
    }
}

/// What an instance type offers, from `DescribeInstanceTypes`.
///
/// Fields added after the first six default to "unknown" (zero, `Support::Unknown`, no boot
/// modes), which the compatibility rules read as "offers nothing" on a candidate and "needs
/// nothing" on an original: see [`crate::compat`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InstanceTypeSpec {
    /// Instance type name.
    pub name: String,
    /// Supported architectures (`x86_64`, `arm64`, `i386`, …).
    pub architectures: Vec<String>,
    /// Default vCPUs.
    pub vcpus: u32,
    /// Memory in MiB.
    pub memory_mib: u64,
    /// GPU count.
    pub gpus: u32,
    /// Total instance store in GB; 0 when EBS-only.
    pub instance_store_gb: u64,
    /// The GPUs' manufacturer and name (`GpuInfo.Gpus[].Manufacturer` and `Name`, e.g.
    /// `NVIDIA T4`; kinds joined with `+`); `None` without GPUs.
    #[serde(default)]
    pub gpu_model: Option<String>,
    /// Total GPU memory in MiB (`GpuInfo.TotalGpuMemoryInMiB`).
    #[serde(default)]
    pub gpu_memory_mib: u64,
    /// EBS baseline bandwidth in Mbps (`EbsInfo.EbsOptimizedInfo`); 0 when not EBS-optimized.
    #[serde(default)]
    pub ebs_baseline_mbps: u32,
    /// EBS maximum (burst) bandwidth in Mbps; 0 when not EBS-optimized.
    #[serde(default)]
    pub ebs_maximum_mbps: u32,
    /// Elastic Network Adapter (`NetworkInfo.EnaSupport`).
    #[serde(default)]
    pub ena: Support,
    /// NVMe for EBS volumes (`EbsInfo.NvmeSupport`).
    #[serde(default)]
    pub nvme: Support,
    /// `SupportedBootModes`.
    #[serde(default)]
    pub boot_modes: BootModes,
    /// `BurstablePerformanceSupported`: a `t*` type running on CPU credits.
    #[serde(default)]
    pub burstable: bool,
}

/// Where on-demand prices came from, for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PriceSource {
    /// The AWS Price List API.
    PriceListApi,
    /// `SPOTSWAP_PRICE_FILE`.
    PriceFile,
    /// None: only same-type replacements are allowed.
    None,
}

/// The region's market: specs, spot prices and on-demand prices.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Market {
    /// Instance-type specs by name.
    pub types: BTreeMap<String, InstanceTypeSpec>,
    /// Latest spot price per pool, USD/hour. A pool without a price is not offered.
    pub spot_prices: BTreeMap<Pool, f64>,
    /// On-demand price per type, USD/hour.
    pub on_demand_prices: BTreeMap<String, f64>,
    /// Where `on_demand_prices` came from.
    pub price_source: PriceSource,
}

impl Market {
    /// The spot price of a pool.
    pub fn spot_price(&self, pool: &Pool) -> Option<f64> {
        self.spot_prices.get(pool).copied()
    }

    /// The on-demand price of a type.
    pub fn on_demand_price(&self, instance_type: &str) -> Option<f64> {
        self.on_demand_prices.get(instance_type).copied()
    }
}

/// Everything one cycle knows about the region, read once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegionSnapshot {
    /// When the snapshot was taken.
    pub now: Timestamp,
    /// Candidate groups (managed by tag, or every group in opt-out mode).
    pub groups: Vec<GroupSnapshot>,
    /// Every non-terminated instance that is a member of a candidate group or carries our tags.
    pub instances: BTreeMap<String, Instance>,
    /// Specs and prices.
    pub market: Market,
    /// EC2's scheduled events (retirement, scheduled stop, reboot, maintenance) by instance,
    /// from DescribeInstanceStatus: the rebalancer's own pickup of what AWS Health announces.
    pub scheduled: BTreeMap<String, ScheduledEvent>,
    /// The account's Reserved Instances and Savings Plans in the region; `None` when they
    /// could not be read this cycle (`CommitmentsUnknown`).
    #[serde(default)]
    pub commitments: Option<crate::commitments::Commitments>,
    /// The region's running on-demand instances, managed or not: the usage commitments cover.
    #[serde(default)]
    pub usage: Vec<crate::commitments::Usage>,
}

/// One scheduled event of an instance (DescribeInstanceStatus `Events`), not completed or
/// cancelled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduledEvent {
    /// `instance-retirement`, `instance-stop`, `instance-reboot`, `system-reboot`,
    /// `system-maintenance`.
    pub code: String,
    /// The earliest the event may start.
    pub not_before: Option<Timestamp>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(tags_: &[(&str, &str)], state: InstanceState) -> Instance {
        Instance {
            id: "i-1".into(),
            instance_type: "m5.large".into(),
            az: "us-east-1a".into(),
            subnet_id: None,
            lifecycle: Lifecycle::Spot,
            state,
            launch_time: Timestamp::from_unix(0),
            status_ok: None,
            termination_protected: None,
            tags: tags_
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            architecture: None,
            image: ImageNeeds::default(),
            billing: Billing::default(),
        }
    }

    #[test]
    fn a_live_launch_is_ours_for_the_group_alive_and_not_detached() {
        // GIVEN our running launch for web
        let ours = instance(&[(tags::GROUP, "web")], InstanceState::Running);
        // THEN it is a live launch for web only
        assert!(ours.is_our_launch() && ours.is_launch_for("web"));
        assert!(ours.is_live_launch_for("web"));
        assert!(!ours.is_live_launch_for("api"));
        // AND not once it is gone, or detached on interruption, though it stays ours
        let gone = instance(&[(tags::GROUP, "web")], InstanceState::Gone);
        assert!(!gone.is_live_launch_for("web") && gone.is_launch_for("web"));
        let detached = instance(
            &[(tags::GROUP, "web"), (tags::DETACHED_AT, "2026-01-01T00:00:00Z")],
            InstanceState::Running,
        );
        assert!(detached.is_detached());
        assert!(!detached.is_live_launch_for("web") && detached.is_launch_for("web"));
        // AND an instance without our group tag is no launch of ours
        let theirs = instance(&[], InstanceState::Running);
        assert!(!theirs.is_our_launch() && !theirs.is_live_launch_for("web"));
    }
}
