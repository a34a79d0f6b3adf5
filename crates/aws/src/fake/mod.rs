//! [`FakePort`]: an in-memory region behind the [`Port`], for unit tests of the executor and
//! the workflows without moto. Compiled for this crate's tests and with the `fake` feature.
//!
//! Groups and instances are plain `spotswap-core` data ([`FakeRegion`]), served with AWS's
//! semantics for the calls spotswap makes:
//!
//! - AttachInstances is refused past MaxSize, for an instance already in a group, and for one
//!   not running; DetachInstances is refused for a non-member; both move `DesiredCapacity`;
//! - CreateFleet launches the instances asked for (at most [`FakeRegion::fleet_fill`]) into the
//!   first override whose pool is not marked out of capacity ([`FakeRegion::no_capacity`]),
//!   answers `InsufficientInstanceCapacity` per override when all are (and for a short fill),
//!   `MaxSpotInstanceCountExceeded` when [`FakeRegion::spot_quota_reached`], and the same
//!   instances again for a client token it saw;
//! - TerminateInstances and TerminateInstanceInAutoScalingGroup end an instance at once (AWS
//!   takes a while) and take it out of its group;
//! - paginated reads serve pages of [`FakeRegion::page_size`] items, so multi-page paths run;
//! - [`FakeRegion::failures`] makes every call of an operation fail with an error code.
//!
//! What it does not do: an Auto Scaling group never launches or replaces instances by itself,
//! and nothing happens with time; a test moves the world between cycles through
//! [`FakePort::edit`].
//!
//! Every call is counted per `service:Operation` into the [`CallCounter`] that
//! [`crate::Aws::fake`] reads, as the SDK port's interceptor counts.

use std::sync::Mutex;

use serde_json::json;
use spotswap_core::events::Membership;
use spotswap_core::model::{LaunchTemplateRef, ScheduledEvent};
use spotswap_core::{
    GroupSnapshot, Instance, InstanceState, InstanceTypeSpec, Member, MemberState, Pool, Timestamp,
};

use crate::clients::CallCounter;
use crate::port::{
    op, EventEntry, FleetAnswer, FleetRequest, GroupQuery, InstanceQuery, Page, Port, PortFuture,
    RequirementsQuery, SpotPrice,
};
use crate::AdapterError;

mod carry;
mod diag;
mod fleet;
mod launch_config;
mod region;
mod requirements;

use region::page;
pub use region::FakeRegion;

/// The in-memory port. See the module documentation.
#[derive(Debug)]
pub struct FakePort {
    state: Mutex<FakeRegion>,
    calls: CallCounter,
    region: String,
}

fn aws_error(operation: &'static str, code: &str, message: &str) -> AdapterError {
    AdapterError::Aws {
        operation,
        code: Some(code.to_string()),
        message: format!("{code}: {message}"),
        source: message.to_string().into(),
    }
}

fn validation(operation: &'static str, message: impl Into<String>) -> AdapterError {
    aws_error(operation, "ValidationError", &message.into())
}

impl FakePort {
    /// An empty region named `region`.
    pub fn new(region: &str) -> Self {
        Self::with(region, FakeRegion::default())
    }

    /// A port serving `state`.
    pub fn with(region: &str, state: FakeRegion) -> Self {
        Self {
            state: Mutex::new(state),
            calls: CallCounter::default(),
            region: region.to_string(),
        }
    }

    /// Change the region (between cycles: the world moving on).
    pub fn edit<R>(&self, f: impl FnOnce(&mut FakeRegion) -> R) -> R {
        f(&mut self.state.lock().expect("fake region lock"))
    }

    /// A copy of the region as it is now.
    pub fn state(&self) -> FakeRegion {
        self.state.lock().expect("fake region lock").clone()
    }

    /// The counter every call is counted in.
    pub fn calls(&self) -> &CallCounter {
        &self.calls
    }

    /// The region's name.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// Count the call, fail it if told to, else run `f` on the region.
    fn call<'a, T: Send + 'a>(
        &'a self,
        operation: &'static str,
        f: impl FnOnce(&mut FakeRegion) -> Result<T, AdapterError> + Send + 'a,
    ) -> PortFuture<'a, T> {
        Box::pin(async move {
            self.calls.add(operation.to_string());
            let mut s = self.state.lock().expect("fake region lock");
            if let Some(code) = s.failures.get(operation) {
                return Err(aws_error(operation, code, "injected by the fake"));
            }
            f(&mut s)
        })
    }
}

impl Port for FakePort {
    fn describe_groups<'a>(
        &'a self,
        q: &'a GroupQuery,
        token: Option<String>,
    ) -> PortFuture<'a, Page<GroupSnapshot>> {
        self.call(op::DESCRIBE_GROUPS, move |s| {
            let all: Vec<GroupSnapshot> = s
                .groups
                .values()
                .filter(|g| match q {
                    GroupQuery::All => true,
                    GroupQuery::TagKey(k) => g.tags.contains_key(k),
                    GroupQuery::Names(names) => names.contains(&g.name),
                })
                .map(|g| GroupSnapshot {
                    instance_refresh_in_progress: None,
                    has_terminating_hook: None,
                    has_launching_hook: None,
                    has_warm_pool: false,
                    ..g.clone()
                })
                .collect();
            Ok(page(&all, token, s.page_size))
        })
    }

    fn describe_instances<'a>(
        &'a self,
        q: &'a InstanceQuery,
        token: Option<String>,
    ) -> PortFuture<'a, Page<Instance>> {
        self.call(op::DESCRIBE_INSTANCES, move |s| {
            let all: Vec<Instance> =
                s.instances
                    .values()
                    .filter(|i| i.state != InstanceState::Gone)
                    .filter(|i| match q {
                        InstanceQuery::Live => true,
                        InstanceQuery::Ids(ids) => ids.contains(&i.id),
                        InstanceQuery::Tagged { key, values } => i.tags.get(key).is_some_and(|v| {
                            values.is_empty() || values.iter().any(|x| filter_matches(x, v))
                        }),
                    })
                    .map(|i| s.shown(i))
                    .collect();
            // Asked by id, EC2 answers in one page.
            let size = match q {
                InstanceQuery::Ids(_) => usize::MAX,
                _ => s.page_size,
            };
            Ok(page(&all, token, size))
        })
    }

    fn instance_status<'a>(&'a self, ids: &'a [String]) -> PortFuture<'a, Vec<(String, bool)>> {
        self.call(op::DESCRIBE_INSTANCE_STATUS, move |s| {
            Ok(ids
                .iter()
                .filter_map(|id| s.live(id))
                .filter(|i| i.state == InstanceState::Running)
                .map(|i| (i.id.clone(), i.status_ok.unwrap_or(true)))
                .collect())
        })
    }

    fn scheduled_events(&self, token: Option<String>) -> PortFuture<'_, Page<(String, ScheduledEvent)>> {
        self.call(op::DESCRIBE_INSTANCE_STATUS, move |s| {
            let all: Vec<(String, ScheduledEvent)> = s
                .scheduled
                .iter()
                .filter(|(id, _)| s.live(id).is_some())
                .map(|(id, e)| (id.clone(), e.clone()))
                .collect();
            Ok(page(&all, token, s.page_size))
        })
    }

    fn template_version<'a>(&'a self, template: &'a LaunchTemplateRef) -> PortFuture<'a, Option<String>> {
        self.call(op::DESCRIBE_TEMPLATE_VERSIONS, move |_| {
            Ok(Some(template.version.clone()).filter(|v| v.bytes().all(|b| b.is_ascii_digit())))
        })
    }

    fn spot_prices<'a>(
        &'a self,
        azs: &'a [String],
        since: Timestamp,
        token: Option<String>,
    ) -> PortFuture<'a, Page<SpotPrice>> {
        self.call(op::DESCRIBE_SPOT_PRICES, move |s| {
            let all: Vec<SpotPrice> = s
                .market
                .spot_prices
                .iter()
                .filter(|(p, _)| azs.contains(&p.az))
                .map(|(pool, price)| SpotPrice {
                    pool: pool.clone(),
                    price: *price,
                    at: since,
                })
                .collect();
            Ok(page(&all, token, s.page_size))
        })
    }

    fn instance_types(&self, token: Option<String>) -> PortFuture<'_, Page<InstanceTypeSpec>> {
        self.call(op::DESCRIBE_INSTANCE_TYPES, move |s| {
            let all: Vec<InstanceTypeSpec> = s.market.types.values().cloned().collect();
            Ok(page(&all, token, s.page_size))
        })
    }

    fn types_for_requirements<'a>(
        &'a self,
        q: &'a RequirementsQuery,
        token: Option<String>,
    ) -> PortFuture<'a, Page<String>> {
        self.call(op::GET_TYPES_FROM_REQUIREMENTS, move |s| {
            Ok(page(&requirements::matching(s, q), token, s.page_size))
        })
    }

    fn instance_refresh_in_progress<'a>(&'a self, group: &'a str) -> PortFuture<'a, bool> {
        self.call(op::DESCRIBE_REFRESHES, move |s| Ok(s.refreshing.contains(group)))
    }

    fn stack_status<'a>(&'a self, stack: &'a str) -> PortFuture<'a, Option<String>> {
        self.call(op::DESCRIBE_STACKS, move |s| Ok(s.stacks.get(stack).cloned()))
    }

    fn reserved_instances(&self) -> PortFuture<'_, Vec<spotswap_core::commitments::ReservedInstances>> {
        self.call(op::DESCRIBE_RESERVED, |s| Ok(s.commitments.reserved.clone()))
    }

    fn savings_plans(&self, token: Option<String>) -> PortFuture<'_, Page<crate::port::PlanHeader>> {
        self.call(op::DESCRIBE_SAVINGS_PLANS, move |s| {
            Ok(page(&s.plan_headers(), token, s.page_size))
        })
    }

    fn savings_plan_rates<'a>(
        &'a self,
        plan: &'a str,
        _region: &'a str,
        token: Option<String>,
    ) -> PortFuture<'a, Page<spotswap_core::commitments::PlanRate>> {
        self.call(op::DESCRIBE_SAVINGS_PLAN_RATES, move |s| {
            Ok(page(&s.plan_rates(plan), token, s.page_size))
        })
    }

    fn lifecycle_hooks<'a>(&'a self, group: &'a str) -> PortFuture<'a, Vec<String>> {
        self.call(op::DESCRIBE_HOOKS, move |s| {
            Ok(s.hooks.get(group).cloned().unwrap_or_default())
        })
    }

    fn membership<'a>(&'a self, id: &'a str) -> PortFuture<'a, Option<Membership>> {
        self.call(op::DESCRIBE_ASG_INSTANCES, move |s| {
            let Some(g) = s.group_of(id) else {
                return Ok(None);
            };
            let m = g.members.iter().find(|m| m.id == id).expect("group_of lists it");
            let pool = s
                .instances
                .get(id)
                .map(Instance::pool)
                .unwrap_or_else(|| Pool::new("", ""));
            Ok(Some(Membership {
                instance: id.to_string(),
                group: g.name.clone(),
                pool,
                state: m.state,
                lifecycle_state: format!("{:?}", m.state),
            }))
        })
    }

    fn instance_any_state<'a>(&'a self, id: &'a str) -> PortFuture<'a, Option<Instance>> {
        self.call(op::DESCRIBE_INSTANCES, move |s| {
            Ok(s.instances.get(id).map(|i| s.shown(i)))
        })
    }

    fn price_products<'a>(
        &'a self,
        _filters: &'a [(&'a str, &'a str)],
        token: Option<String>,
    ) -> PortFuture<'a, Page<String>> {
        self.call(op::GET_PRODUCTS, move |s| {
            // Products in GetProducts' shape, trimmed to what is read.
            let all: Vec<String> = s
                .market
                .on_demand_prices
                .iter()
                .map(|(ty, price)| {
                    json!({
                        "product": {"attributes": {"instanceType": ty}},
                        "terms": {"OnDemand": {"T": {"priceDimensions": {"D": {
                            "unit": "Hrs", "pricePerUnit": {"USD": price.to_string()}
                        }}}}}
                    })
                    .to_string()
                })
                .collect();
            Ok(page(&all, token, s.page_size))
        })
    }

    fn create_fleet<'a>(&'a self, req: &'a FleetRequest) -> PortFuture<'a, FleetAnswer> {
        self.call(op::CREATE_FLEET, move |s| Ok(s.create_fleet(req)))
    }

    fn attach_instances<'a>(&'a self, group: &'a str, ids: &'a [String]) -> PortFuture<'a, ()> {
        self.call(op::ATTACH, move |s| {
            for id in ids {
                if s.live(id).is_none_or(|i| i.state != InstanceState::Running) {
                    return Err(validation(op::ATTACH, format!("Instance {id} is not in a running state")));
                }
                if let Some(g) = s.group_of(id) {
                    return Err(validation(
                        op::ATTACH,
                        format!("The instance {id} is already part of the Auto Scaling group {}", g.name),
                    ));
                }
            }
            let g = s
                .groups
                .get_mut(group)
                .ok_or_else(|| validation(op::ATTACH, format!("AutoScalingGroup name not found - {group}")))?;
            let desired = g.desired as usize + ids.len();
            if desired > g.max_size as usize {
                return Err(validation(
                    op::ATTACH,
                    format!("New SetDesiredCapacity value {desired} is above max value {} for the AutoScalingGroup.", g.max_size),
                ));
            }
            g.desired = desired as u32;
            g.members.extend(ids.iter().map(|id| Member {
                id: id.clone(),
                state: MemberState::InService,
                healthy: true,
                protected_from_scale_in: false,
                weight: None,
            }));
            Ok(())
        })
    }

    fn detach_instances<'a>(
        &'a self,
        group: &'a str,
        ids: &'a [String],
        decrement: bool,
    ) -> PortFuture<'a, usize> {
        self.call(op::DETACH, move |s| {
            let g = s.groups.get_mut(group).ok_or_else(|| {
                validation(op::DETACH, format!("AutoScalingGroup name not found - {group}"))
            })?;
            if let Some(id) = ids.iter().find(|id| !g.members.iter().any(|m| &m.id == *id)) {
                return Err(validation(
                    op::DETACH,
                    format!("The instance {id} is not part of Auto Scaling group {group}."),
                ));
            }
            g.members.retain(|m| !ids.contains(&m.id));
            if decrement {
                g.desired = g.desired.saturating_sub(ids.len() as u32);
            }
            Ok(ids.len())
        })
    }

    fn terminate_in_group<'a>(&'a self, id: &'a str, decrement: bool) -> PortFuture<'a, ()> {
        self.call(op::TERMINATE_IN_GROUP, move |s| {
            let Some(name) = s.group_of(id).map(|g| g.name.clone()) else {
                return Err(validation(
                    op::TERMINATE_IN_GROUP,
                    format!("Instance Id not found - {id}"),
                ));
            };
            s.end(id);
            if decrement {
                if let Some(g) = s.groups.get_mut(&name) {
                    g.desired = g.desired.saturating_sub(1);
                }
            }
            Ok(())
        })
    }

    fn update_max_size<'a>(&'a self, group: &'a str, max: u32) -> PortFuture<'a, ()> {
        self.call(op::UPDATE_GROUP, move |s| {
            let g = s.groups.get_mut(group).ok_or_else(|| {
                validation(
                    op::UPDATE_GROUP,
                    format!("AutoScalingGroup name not found - {group}"),
                )
            })?;
            if max < g.min_size {
                return Err(validation(op::UPDATE_GROUP, "MaxSize below MinSize"));
            }
            g.max_size = max;
            g.desired = g.desired.min(max);
            Ok(())
        })
    }

    fn update_on_demand_percent<'a>(&'a self, group: &'a str, percent: u32) -> PortFuture<'a, ()> {
        self.call(op::UPDATE_GROUP, move |s| {
            let g = s.groups.get_mut(group).ok_or_else(|| {
                validation(
                    op::UPDATE_GROUP,
                    format!("AutoScalingGroup name not found - {group}"),
                )
            })?;
            let m = g
                .mixed
                .as_mut()
                .ok_or_else(|| validation(op::UPDATE_GROUP, "no mixed instances policy"))?;
            m.on_demand_percent = Some(percent);
            Ok(())
        })
    }

    fn put_group_tags<'a>(&'a self, group: &'a str, kv: &'a [(String, String)]) -> PortFuture<'a, ()> {
        self.call(op::CREATE_GROUP_TAGS, move |s| {
            let g = s.groups.get_mut(group).ok_or_else(|| {
                validation(
                    op::CREATE_GROUP_TAGS,
                    format!("AutoScalingGroup name not found - {group}"),
                )
            })?;
            g.tags.extend(kv.iter().cloned());
            Ok(())
        })
    }

    fn delete_group_tags<'a>(&'a self, group: &'a str, keys: &'a [String]) -> PortFuture<'a, ()> {
        self.call(op::DELETE_GROUP_TAGS, move |s| {
            let g = s.groups.get_mut(group).ok_or_else(|| {
                validation(
                    op::DELETE_GROUP_TAGS,
                    format!("AutoScalingGroup name not found - {group}"),
                )
            })?;
            for k in keys {
                g.tags.remove(k);
                g.propagated_tags.remove(k);
            }
            Ok(())
        })
    }

    fn tag_instances<'a>(&'a self, ids: &'a [String], kv: &'a [(String, String)]) -> PortFuture<'a, ()> {
        self.call(op::CREATE_TAGS, move |s| {
            if let Some(id) = ids.iter().find(|id| !s.instances.contains_key(*id)) {
                return Err(aws_error(op::CREATE_TAGS, "InvalidInstanceID.NotFound", id));
            }
            for id in ids {
                if let Some(i) = s.instances.get_mut(id) {
                    i.tags.extend(kv.iter().cloned());
                }
            }
            Ok(())
        })
    }

    fn terminate_instances<'a>(&'a self, ids: &'a [String]) -> PortFuture<'a, ()> {
        self.call(op::TERMINATE, move |s| {
            if let Some(id) = ids.iter().find(|id| !s.instances.contains_key(*id)) {
                return Err(aws_error(op::TERMINATE, "InvalidInstanceID.NotFound", id));
            }
            if let Some(id) = ids
                .iter()
                .find(|id| s.instances[*id].termination_protected == Some(true))
            {
                return Err(aws_error(
                    op::TERMINATE,
                    "OperationNotPermitted",
                    &format!("The instance '{id}' may not be terminated"),
                ));
            }
            for id in ids {
                s.end(id);
            }
            Ok(())
        })
    }

    fn put_events<'a>(&'a self, entries: &'a [EventEntry]) -> PortFuture<'a, usize> {
        self.call(op::PUT_EVENTS, move |s| {
            s.events.extend(entries.iter().cloned());
            Ok(0)
        })
    }
}

/// An EC2 filter value against a tag value: `*` and `?` are wildcards, as EC2 reads them.
fn filter_matches(filter: &str, value: &str) -> bool {
    if !filter.contains(['*', '?']) {
        return filter == value;
    }
    glob::Pattern::new(filter).is_ok_and(|p| p.matches(value))
}
