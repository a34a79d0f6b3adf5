//! The data a [`super::FakePort`] serves.

use std::collections::{BTreeMap, BTreeSet};

use spotswap_core::{tags, GroupSnapshot, Instance, InstanceState, Market, MemberState, Pool, Timestamp};

use crate::port::{EventEntry, Page};

/// The region a [`FakePort`] serves. Every field is the test's to set.
#[derive(Debug, Clone)]
pub struct FakeRegion {
    /// Groups by name. Members are listed here; their instances are in `instances`.
    pub groups: BTreeMap<String, GroupSnapshot>,
    /// Every instance EC2 knows, terminated ones included (state `Gone`).
    /// `status_ok` is what DescribeInstanceStatus answers (`None` counts as ok);
    /// `termination_protected` is `DisableApiTermination` (`None` counts as false).
    pub instances: BTreeMap<String, Instance>,
    /// Instance types, spot prices (served as of the time asked) and on-demand prices (served
    /// as Price List products).
    pub market: Market,
    /// Pools CreateFleet finds without capacity.
    pub no_capacity: BTreeSet<Pool>,
    /// CreateFleet answers `MaxSpotInstanceCountExceeded`.
    pub spot_quota_reached: bool,
    /// Items per page of a paginated read.
    pub page_size: usize,
    /// Groups with an instance refresh running.
    pub refreshing: BTreeSet<String>,
    /// EC2's scheduled events, by instance.
    pub scheduled: BTreeMap<String, spotswap_core::model::ScheduledEvent>,
    /// CloudFormation stacks: name to `StackStatus`.
    pub stacks: BTreeMap<String, String>,
    /// Lifecycle hook transitions per group.
    pub hooks: BTreeMap<String, Vec<String>>,
    /// Operations (`ec2:CreateTags`) that fail, with the error code they fail with.
    pub failures: BTreeMap<String, String>,
    /// Launch time of the instances CreateFleet launches.
    pub clock: Timestamp,
    /// Events published, in order.
    pub events: Vec<EventEntry>,
    /// CreateFleet client tokens seen, and the instances each launched.
    pub fleet_tokens: BTreeMap<String, Vec<String>>,
    /// Most instances one CreateFleet launches (a pool short of capacity for a whole batch):
    /// the rest of the request is answered with `InsufficientInstanceCapacity`.
    pub fleet_fill: Option<usize>,
    /// Instances CreateFleet launched so far (their ids count up).
    pub launched: u64,
    /// Launch configurations by name.
    pub launch_configs: BTreeMap<String, spotswap_core::launch_config::LaunchConfig>,
    /// Launch templates by name: their id and `spotswap:from-launch-configuration` value.
    pub templates: BTreeMap<String, (String, Option<String>)>,
    /// Elastic IPs.
    pub addresses: Vec<spotswap_core::carry::Address>,
    /// EBS volumes with the tags the test gave them (key, value).
    pub volumes: Vec<(spotswap_core::carry::Volume, Vec<(String, String)>)>,
    /// Reserved Instances (all served as active) and Savings Plans with their rates.
    pub commitments: spotswap_core::commitments::Commitments,
}

impl Default for FakeRegion {
    fn default() -> Self {
        Self {
            groups: BTreeMap::new(),
            instances: BTreeMap::new(),
            market: Market {
                types: BTreeMap::new(),
                spot_prices: BTreeMap::new(),
                on_demand_prices: BTreeMap::new(),
                price_source: spotswap_core::PriceSource::None,
            },
            no_capacity: BTreeSet::new(),
            spot_quota_reached: false,
            page_size: 100,
            commitments: Default::default(),
            refreshing: BTreeSet::new(),
            scheduled: BTreeMap::new(),
            stacks: BTreeMap::new(),
            hooks: BTreeMap::new(),
            failures: BTreeMap::new(),
            clock: Timestamp::from_unix(0),
            events: Vec::new(),
            fleet_tokens: BTreeMap::new(),
            fleet_fill: None,
            launched: 0,
            launch_configs: BTreeMap::new(),
            templates: BTreeMap::new(),
            addresses: Vec::new(),
            volumes: Vec::new(),
        }
    }
}

impl FakeRegion {
    /// The group listing `id`, if any.
    pub fn group_of(&self, id: &str) -> Option<&GroupSnapshot> {
        self.groups
            .values()
            .find(|g| g.members.iter().any(|m| m.id == id))
    }

    /// Members of `group` InService.
    pub fn in_service(&self, group: &str) -> usize {
        self.groups.get(group).map_or(0, |g| {
            g.members
                .iter()
                .filter(|m| m.state == MemberState::InService)
                .count()
        })
    }

    pub(super) fn live(&self, id: &str) -> Option<&Instance> {
        self.instances.get(id).filter(|i| i.state != InstanceState::Gone)
    }

    /// The instance as DescribeInstances shows it: `aws:autoscaling:groupName` on members, as
    /// Auto Scaling tags them, and neither status checks nor protection (other calls).
    pub(super) fn shown(&self, i: &Instance) -> Instance {
        let mut i = Instance {
            status_ok: None,
            termination_protected: None,
            ..i.clone()
        };
        if let Some(g) = self.group_of(&i.id) {
            i.tags.insert(tags::AWS_ASG_NAME.to_string(), g.name.clone());
        }
        i
    }

    pub(super) fn end(&mut self, id: &str) {
        if let Some(i) = self.instances.get_mut(id) {
            i.state = InstanceState::Gone;
        }
        for g in self.groups.values_mut() {
            g.members.retain(|m| m.id != id);
        }
    }
}

impl FakeRegion {
    /// The Savings Plans as DescribeSavingsPlans lists them.
    pub(crate) fn plan_headers(&self) -> Vec<crate::port::PlanHeader> {
        use spotswap_core::commitments::PlanKind;
        self.commitments
            .savings_plans
            .iter()
            .map(|p| crate::port::PlanHeader {
                id: p.id.clone(),
                family: match &p.kind {
                    PlanKind::Compute => None,
                    PlanKind::Ec2Instance { family } => Some(family.clone()),
                },
                region: None,
                commitment_micros: p.commitment_micros,
                start: p.start,
                end: p.end,
            })
            .collect()
    }

    /// One plan's rates.
    pub(crate) fn plan_rates(&self, plan: &str) -> Vec<spotswap_core::commitments::PlanRate> {
        self.commitments
            .savings_plans
            .iter()
            .filter(|p| p.id == plan)
            .flat_map(|p| p.rates.iter().cloned())
            .collect()
    }
}

/// `items` from `token` (an offset), `size` of them, and the next token.
pub(super) fn page<T: Clone>(items: &[T], token: Option<String>, size: usize) -> Page<T> {
    let start = token.and_then(|t| t.parse::<usize>().ok()).unwrap_or(0);
    let end = (start + size.max(1)).min(items.len());
    Page {
        items: items.get(start..end).unwrap_or_default().to_vec(),
        next: (end < items.len()).then(|| end.to_string()),
    }
}
