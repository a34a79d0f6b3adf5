//! Fixture builders for tests and benches: one place that knows how to build a group, its
//! instances and the market, so a change of the model changes one builder, not five.
//!
//! Compiled for the core's own unit tests, and for anyone else with the `testkit` feature
//! (`spotswap-core = { features = ["testkit"] }`): the core's integration tests and benches
//! use it that way, and so may the adapter's. Never enabled in a release build.
//!
//! - [`Fleet`]: one group, its instances and the market, built step by step, planned with
//!   [`Fleet::plan`] as the Lambda would;
//! - [`instance`], [`member`], [`template`], [`subnet`]: the parts, for tests that need only one;
//! - [`market`], [`market_of`], [`spec`]: instance-type specs and prices.
//!
//! Everything is deterministic: fixed ids, fixed times ([`NOW`], [`MIDNIGHT`]), fixed prices.

use std::collections::BTreeMap;

use crate::model::{
    GroupSnapshot, Instance, InstanceState, InstanceTypeSpec, LaunchSource, LaunchTemplateRef, Lifecycle,
    Market, Member, MemberState, Pool, PriceSource, RegionSnapshot, ScheduledEvent,
};
use crate::plan::{plan_cycle, GroupPlan, Settings};
use crate::policy::{Mode, Policy};
use crate::tags;
use crate::time::Timestamp;

/// The group a [`Fleet`] builds unless renamed.
pub const GROUP: &str = "web";
/// The first availability zone.
pub const A: &str = "us-east-1a";
/// The second availability zone.
pub const B: &str = "us-east-1b";
/// The third availability zone.
pub const C: &str = "us-east-1c";
/// The availability zones of a [`Fleet`]'s group and of [`market`].
pub const AZS: [&str; 3] = [A, B, C];
/// 2026-01-01T12:00:00Z: a [`Fleet`]'s clock, and the start of a 10-minute client-token bucket.
pub const NOW: Timestamp = Timestamp::from_unix(1_767_268_800);
/// 2026-01-01T00:00:00Z: when [`instance`] was launched.
pub const MIDNIGHT: Timestamp = Timestamp::from_unix(1_767_225_600);
/// A [`Fleet`]'s health-check grace period, seconds.
pub const GRACE_SECS: u32 = 300;

/// One instance type on offer: (type, architecture, vCPU, GiB of memory, GB of instance store,
/// on-demand USD/hour, spot USD/hour).
pub type Offer = (&'static str, &'static str, u32, u64, u64, f64, f64);

/// The six types of [`market`]. The pools that may replace an on-demand `m5.large`, cheapest
/// first, are `m5a.large`, `m6i.large`, `m5.large`, `r5.large`: `c5.large` has less memory,
/// `m6g.large` is arm64.
pub const OFFERS: [Offer; 6] = [
    ("m5.large", "x86_64", 2, 8, 0, 0.096, 0.040),
    ("m5a.large", "x86_64", 2, 8, 0, 0.086, 0.035),
    ("m6i.large", "x86_64", 2, 8, 0, 0.096, 0.038),
    ("r5.large", "x86_64", 2, 16, 0, 0.126, 0.050),
    ("c5.large", "x86_64", 2, 4, 0, 0.085, 0.030),
    ("m6g.large", "arm64", 2, 8, 0, 0.077, 0.020),
];

/// A type's specs: one architecture, no GPU, EBS only.
pub fn spec(name: &str, architecture: &str, vcpus: u32, memory_gib: u64) -> InstanceTypeSpec {
    InstanceTypeSpec {
        name: name.into(),
        architectures: vec![architecture.into()],
        vcpus,
        memory_mib: memory_gib * 1024,
        gpus: 0,
        instance_store_gb: 0,
        ..InstanceTypeSpec::default()
    }
}

/// A market of `offers`, each with its spot price in every one of `azs`, prices from a file.
pub fn market_of(offers: &[Offer], azs: &[&str]) -> Market {
    let mut m = Market {
        types: BTreeMap::new(),
        spot_prices: BTreeMap::new(),
        on_demand_prices: BTreeMap::new(),
        price_source: PriceSource::PriceFile,
    };
    for &(name, arch, vcpus, gib, store, od, spot) in offers {
        m.types.insert(
            name.to_string(),
            InstanceTypeSpec {
                instance_store_gb: store,
                ..spec(name, arch, vcpus, gib)
            },
        );
        m.on_demand_prices.insert(name.to_string(), od);
        for az in azs {
            m.spot_prices.insert(Pool::new(name, *az), spot);
        }
    }
    m
}

/// [`OFFERS`] in the three [`AZS`].
pub fn market() -> Market {
    market_of(&OFFERS, &AZS)
}

/// The launch template of a [`Fleet`]'s group.
pub fn template() -> LaunchTemplateRef {
    LaunchTemplateRef {
        id: Some("lt-0123456789abcdef0".into()),
        name: Some("web-imdsv2".into()),
        version: "7".into(),
    }
}

/// The subnet of `az`: `subnet-<az>`.
pub fn subnet(az: &str) -> String {
    format!("subnet-{az}")
}

/// A running x86_64 instance in `subnet-<az>`, launched at [`MIDNIGHT`], with no tags, and
/// neither status checks nor termination protection read.
pub fn instance(id: &str, instance_type: &str, az: &str, lifecycle: Lifecycle) -> Instance {
    Instance {
        id: id.into(),
        instance_type: instance_type.into(),
        az: az.into(),
        subnet_id: Some(subnet(az)),
        lifecycle,
        state: InstanceState::Running,
        launch_time: MIDNIGHT,
        status_ok: None,
        termination_protected: None,
        tags: Default::default(),
        architecture: Some("x86_64".into()),
        image: Default::default(),
        billing: Default::default(),
    }
}

/// Tagging in a chain: `instance(..).tagged(tags::GROUP, "web")`.
pub trait Tagged: Sized {
    /// With tag `key` = `value`.
    fn tagged(self, key: &str, value: &str) -> Self;
}

impl Tagged for Instance {
    fn tagged(mut self, key: &str, value: &str) -> Self {
        self.tags.insert(key.to_string(), value.to_string());
        self
    }
}

/// A member InService, healthy and not protected from scale-in.
pub fn member(id: &str) -> Member {
    Member {
        id: id.into(),
        state: MemberState::InService,
        healthy: true,
        protected_from_scale_in: false,
        weight: None,
    }
}

/// Where one of our launches stands, as a snapshot would show it ([`Fleet::launch`]).
#[derive(Debug, Clone, Copy)]
pub enum Stage {
    /// CreateFleet returned; EC2 says pending.
    Pending,
    /// Running; status checks not passed yet.
    Booting,
    /// Running with both status checks passing; not attached.
    Ready,
    /// Stopped before it was attached.
    Stopped,
    /// Attached; the group still lists it as Pending.
    AttachedPending,
    /// Attached and InService, but `spotswap:attached-at` was never written.
    Unmarked,
    /// Attached, InService and healthy; attached `secs_ago` seconds ago.
    Attached {
        /// Seconds since the attach.
        secs_ago: i64,
    },
    /// Attached and InService but unhealthy; attached `secs_ago` seconds ago.
    AttachedUnhealthy {
        /// Seconds since the attach.
        secs_ago: i64,
    },
}

/// One group, its instances and the market: a snapshot under construction.
#[derive(Debug, Clone)]
pub struct Fleet {
    /// The group.
    pub group: GroupSnapshot,
    /// Its members' instances and our launches, by id.
    pub instances: BTreeMap<String, Instance>,
    /// The market.
    pub market: Market,
    /// The snapshot's time.
    pub now: Timestamp,
    /// Opt-in or opt-out.
    pub mode: Mode,
    /// EC2's scheduled events, by instance.
    pub scheduled: BTreeMap<String, ScheduledEvent>,
    /// The account's commitments (none by default); `None`: they could not be read.
    pub commitments: Option<crate::commitments::Commitments>,
    /// On-demand usage of the region outside the group (unmanaged instances).
    pub unmanaged_usage: Vec<crate::commitments::Usage>,
}

impl Default for Fleet {
    fn default() -> Self {
        Self::new()
    }
}

impl Fleet {
    /// An empty managed group [`GROUP`] (`spotswap:enabled=true`) with [`template`], subnets
    /// and AZs [`AZS`], default policy, MaxSize 20, desired 0, grace [`GRACE_SECS`], no
    /// instance refresh and no terminating hook; [`market`]; at [`NOW`], opt-in.
    pub fn new() -> Self {
        let mut group_tags = BTreeMap::new();
        group_tags.insert(tags::ENABLED.to_string(), "true".to_string());
        Self {
            group: GroupSnapshot {
                name: GROUP.into(),
                min_size: 0,
                max_size: 20,
                desired: 0,
                health_check_grace_secs: GRACE_SECS,
                launch_source: LaunchSource::Template(template()),
                subnets: AZS.iter().map(|az| subnet(az)).collect(),
                availability_zones: AZS.iter().map(|az| az.to_string()).collect(),
                tags: group_tags,
                propagated_tags: BTreeMap::new(),
                members: Vec::new(),
                status: None,
                instance_refresh_in_progress: Some(false),
                has_terminating_hook: Some(false),
                has_launching_hook: Some(false),
                has_warm_pool: false,
                mixed: None,
                suspended_processes: Vec::new(),
                max_instance_lifetime_secs: None,
                template_version_now: None,
                stack_status: None,
                from_launch_config: None,
                carried: None,
                spot_failed_at: None,
            },
            instances: BTreeMap::new(),
            market: market(),
            now: NOW,
            mode: Mode::OptIn,
            scheduled: BTreeMap::new(),
            commitments: Some(Default::default()),
            unmanaged_usage: Vec::new(),
        }
    }

    /// The account's commitments; `None`: they could not be read.
    pub fn commitments(mut self, c: Option<crate::commitments::Commitments>) -> Self {
        self.commitments = c;
        self
    }

    /// An unmanaged on-demand instance of the region (Linux/UNIX, shared tenancy).
    pub fn unmanaged(mut self, id: &str, instance_type: &str, az: &str) -> Self {
        self.unmanaged_usage.push(crate::commitments::Usage {
            instance_id: id.into(),
            instance_type: instance_type.into(),
            az: az.into(),
            platform: crate::commitments::LINUX_UNIX.into(),
            tenancy: crate::commitments::DEFAULT_TENANCY.into(),
        });
        self
    }

    /// EC2 schedules `code` (`instance-retirement`, …) for instance `id`, not before `not_before`.
    pub fn scheduled(mut self, id: &str, code: &str, not_before: Timestamp) -> Self {
        self.scheduled.insert(
            id.into(),
            ScheduledEvent {
                code: code.into(),
                not_before: Some(not_before),
            },
        );
        self
    }

    /// The group renamed (our launches added later are tagged with the new name).
    pub fn named(mut self, name: &str) -> Self {
        self.group.name = name.into();
        self
    }

    /// DesiredCapacity.
    pub fn desired(mut self, n: u32) -> Self {
        self.group.desired = n;
        self
    }

    /// MaxSize.
    pub fn max(mut self, n: u32) -> Self {
        self.group.max_size = n;
        self
    }

    /// HealthCheckGracePeriod, seconds.
    pub fn grace(mut self, secs: u32) -> Self {
        self.group.health_check_grace_secs = secs;
        self
    }

    /// A group tag.
    pub fn tag(mut self, key: &str, value: &str) -> Self {
        self.group.tags.insert(key.to_string(), value.to_string());
        self
    }

    /// Without a group tag (`untag(tags::ENABLED)`: not managed in opt-in mode).
    pub fn untag(mut self, key: &str) -> Self {
        self.group.tags.remove(key);
        self
    }

    /// The snapshot's time.
    pub fn at(mut self, now: Timestamp) -> Self {
        self.now = now;
        self
    }

    /// Opt-in or opt-out.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Another market.
    pub fn market(mut self, market: Market) -> Self {
        self.market = market;
        self
    }

    /// Any change to the group.
    pub fn with_group(mut self, f: impl FnOnce(&mut GroupSnapshot)) -> Self {
        f(&mut self.group);
        self
    }

    /// An InService, healthy member running `instance_type`, launched a day before [`NOW`],
    /// status checks passing, not termination-protected.
    pub fn member(mut self, id: &str, instance_type: &str, az: &str, lifecycle: Lifecycle) -> Self {
        self.instances.insert(
            id.to_string(),
            Instance {
                launch_time: NOW.plus_minutes(-24 * 60),
                status_ok: Some(true),
                termination_protected: Some(false),
                ..instance(id, instance_type, az, lifecycle)
            },
        );
        self.group.members.push(member(id));
        self
    }

    /// An on-demand m5.large member, InService and healthy.
    pub fn on_demand(self, id: &str, az: &str) -> Self {
        self.member(id, "m5.large", az, Lifecycle::OnDemand)
    }

    /// A spot member, InService and healthy.
    pub fn spot(self, id: &str, instance_type: &str, az: &str) -> Self {
        self.member(id, instance_type, az, Lifecycle::Spot)
    }

    /// A member the group lists InService, with no instance in the snapshot (a test of the
    /// group alone, or an instance EC2 does not show).
    pub fn listed(mut self, id: &str) -> Self {
        self.group.members.push(member(id));
        self
    }

    /// An instance as given, a member or not.
    pub fn instance(mut self, inst: Instance) -> Self {
        self.instances.insert(inst.id.clone(), inst);
        self
    }

    /// Change a member.
    pub fn edit_member(mut self, id: &str, f: impl FnOnce(&mut Member)) -> Self {
        let m = self
            .group
            .members
            .iter_mut()
            .find(|m| m.id == id)
            .expect("member exists");
        f(m);
        self
    }

    /// Change an instance.
    pub fn edit_instance(mut self, id: &str, f: impl FnOnce(&mut Instance)) -> Self {
        f(self.instances.get_mut(id).expect("instance exists"));
        self
    }

    /// The original left the group entirely (scale-in, manual termination).
    pub fn remove(mut self, id: &str) -> Self {
        self.group.members.retain(|m| m.id != id);
        self.instances.remove(id);
        self
    }

    /// Our spot m5a.large launched for `replaces`, in its AZ and subnet, at `stage`.
    pub fn launch(self, id: &str, replaces: &str, stage: Stage) -> Self {
        let (state, status_ok, member, attached_secs_ago) = match stage {
            Stage::Pending => (InstanceState::Pending, None, None, None),
            Stage::Booting => (InstanceState::Running, None, None, None),
            Stage::Ready => (InstanceState::Running, Some(true), None, None),
            Stage::Stopped => (InstanceState::Stopped, None, None, None),
            Stage::AttachedPending => (
                InstanceState::Running,
                Some(true),
                Some((MemberState::Pending, true)),
                Some(10),
            ),
            Stage::Unmarked => (
                InstanceState::Running,
                Some(true),
                Some((MemberState::InService, true)),
                None,
            ),
            Stage::Attached { secs_ago } => (
                InstanceState::Running,
                Some(true),
                Some((MemberState::InService, true)),
                Some(secs_ago),
            ),
            Stage::AttachedUnhealthy { secs_ago } => (
                InstanceState::Running,
                Some(true),
                Some((MemberState::InService, false)),
                Some(secs_ago),
            ),
        };
        let group = self.group.name.clone();
        self.raw_launch(id, &group, replaces, state, status_ok, member, attached_secs_ago)
    }

    /// Our launch in any shape: `group` is its `spotswap:group` tag, `member` its group
    /// listing (state, healthy) if attached, `attached_secs_ago` its `spotswap:attached-at`
    /// tag. A spot m5a.large in the AZ of `replaces` (or [`A`]), launched 10 minutes ago.
    #[allow(clippy::too_many_arguments)]
    pub fn raw_launch(
        mut self,
        id: &str,
        group: &str,
        replaces: &str,
        state: InstanceState,
        status_ok: Option<bool>,
        member: Option<(MemberState, bool)>,
        attached_secs_ago: Option<i64>,
    ) -> Self {
        let az = self
            .instances
            .get(replaces)
            .map_or(A.to_string(), |i| i.az.clone());
        let mut inst = Instance {
            state,
            launch_time: self.now.plus_minutes(-10),
            status_ok,
            termination_protected: Some(false),
            ..instance(id, "m5a.large", &az, Lifecycle::Spot)
        }
        .tagged(tags::GROUP, group)
        .tagged(tags::REPLACES, replaces)
        .tagged(tags::LAUNCHED_AT, &self.now.plus_minutes(-10).to_rfc3339());
        if let Some(secs) = attached_secs_ago {
            inst = inst.tagged(tags::ATTACHED_AT, &self.now.plus_secs(-secs).to_rfc3339());
        }
        self.instances.insert(id.to_string(), inst);
        if let Some((state, healthy)) = member {
            self.group.members.push(Member {
                state,
                healthy,
                ..crate::testkit::member(id)
            });
        }
        self
    }

    /// The cycle's settings: the mode, default policy.
    pub fn settings(&self) -> Settings {
        Settings {
            mode: self.mode,
            defaults: Policy::default(),
            max_swaps_in_flight: None,
            compat: None,
        }
    }

    /// The region snapshot of this one group.
    pub fn snapshot(&self) -> RegionSnapshot {
        RegionSnapshot {
            now: self.now,
            groups: vec![self.group.clone()],
            instances: self.instances.clone(),
            market: self.market.clone(),
            scheduled: self.scheduled.clone(),
            commitments: self.commitments.clone(),
            usage: crate::commitments::usage_of(self.instances.values())
                .chain(self.unmanaged_usage.iter().cloned())
                .collect(),
        }
    }

    /// Plan one cycle, as the Lambda would.
    pub fn plan(&self) -> GroupPlan {
        let mut plans = plan_cycle(&self.snapshot(), &self.settings());
        assert_eq!(plans.len(), 1, "one group, one plan");
        plans.remove(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fleet_plans_the_group_it_built() {
        // GIVEN two on-demand members above the default floor, and a launch for one of them
        let fleet = Fleet::new()
            .on_demand("i-od1", A)
            .on_demand("i-od2", B)
            .desired(2)
            .launch("i-new", "i-od1", Stage::Pending);
        // THEN the launch is ours for the group, in its original's AZ
        let launch = &fleet.instances["i-new"];
        assert!(launch.is_live_launch_for(GROUP));
        assert_eq!(launch.replaces(), Some("i-od1"));
        assert_eq!(launch.az, A);
        // AND the plan is the group's, waiting on the launch
        let plan = fleet.plan();
        assert_eq!(plan.group, GROUP);
        assert!(plan
            .actions
            .iter()
            .any(|a| a.reason == crate::Reason::WaitingForLaunch));
    }

    #[test]
    fn a_market_offers_every_type_in_every_az() {
        let m = market();
        assert_eq!(m.types.len(), OFFERS.len());
        assert_eq!(m.spot_prices.len(), OFFERS.len() * AZS.len());
        assert_eq!(m.spot_price(&Pool::new("m5a.large", C)), Some(0.035));
        assert_eq!(m.on_demand_price("r5.large"), Some(0.126));
    }
}
