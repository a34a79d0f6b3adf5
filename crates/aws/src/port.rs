//! The port: the one typed boundary between the workflows and AWS.
//!
//! Every call the snapshot, the executor, the interruption handler and the publisher make goes
//! through [`Port`], in `spotswap-core` data: no SDK type crosses it. The adapter turns
//! snapshots into data and actions into calls; what to do is decided in the core.
//!
//! Two implementations: [`crate::sdk_port::SdkPort`], the SDK clients (what every binary
//! runs), and, behind `cfg(test)` or the `fake` feature, [`crate::fake::FakePort`], an
//! in-memory region for unit tests of the executor and the workflows without moto.
//!
//! A port call only makes the call. Pacing (`SPOTSWAP_API_RATES`) is [`crate::Aws::paced`],
//! done before each call and each page; the call counter is the port's own (an SDK
//! interceptor in the SDK port, so retries count).

use std::future::Future;
use std::pin::Pin;

use spotswap_core::events::Membership;
use spotswap_core::model::ScheduledEvent;
use spotswap_core::{
    GroupSnapshot, Instance, InstanceTypeSpec, LaunchSpec, LaunchTemplateRef, Pool, Timestamp,
};

use crate::AdapterError;

/// The future of one port call. Boxed so that [`Port`] is object-safe; lazy, like the SDK's
/// `send()`: nothing is sent before it is polled, so pacing can come first.
pub type PortFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, AdapterError>> + Send + 'a>>;

/// One page of a paginated read, and the token of the next (`None` on the last page).
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// This page's items.
    pub items: Vec<T>,
    /// The `NextToken` to ask for the next page with.
    pub next: Option<String>,
}

/// Which groups a DescribeAutoScalingGroups asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupQuery {
    /// Every group of the region.
    All,
    /// Groups carrying the tag key (any value).
    TagKey(String),
    /// The named groups.
    Names(Vec<String>),
}

/// Which instances a DescribeInstances asks for. Every query but [`InstanceQuery::AnyState`]
/// is of live instances only (pending, running, stopping, stopped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstanceQuery {
    /// Every live instance of the region.
    Live,
    /// The named live instances.
    Ids(Vec<String>),
    /// Live instances with tag `key` (any value when `values` is empty, else one of them: at
    /// most 200, EC2's limit of values per filter).
    Tagged {
        /// The tag key.
        key: String,
        /// Accepted values; empty for any.
        values: Vec<String>,
    },
}

/// A GetInstanceTypesFromInstanceRequirements question: an override's requirements, and
/// the architectures and virtualization types to ask for (both required by the API).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequirementsQuery {
    /// The override's `InstanceRequirements`.
    pub requirements: spotswap_core::mixed::InstanceRequirements,
    /// `ArchitectureTypes`.
    pub architectures: Vec<String>,
    /// `VirtualizationTypes`.
    pub virtualization: Vec<String>,
}

/// One spot price of the history.
#[derive(Debug, Clone, PartialEq)]
pub struct SpotPrice {
    /// Type × AZ.
    pub pool: Pool,
    /// USD per hour.
    pub price: f64,
    /// When the price took effect.
    pub at: Timestamp,
}

/// One instant CreateFleet for one spot instance, from a [`LaunchSpec`]: the group's launch
/// template with one override per candidate type, all in the original's subnet.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetRequest {
    /// Idempotency token.
    pub client_token: String,
    /// The group's own launch template and version.
    pub launch_template: LaunchTemplateRef,
    /// `(instance type, subnet)` per override, cheapest first.
    pub overrides: Vec<(String, String)>,
    /// Tags of the new instance.
    pub tags: Vec<(String, String)>,
    /// Spot (price-capacity-optimized over the overrides), or on-demand (the floor).
    pub purchase: spotswap_core::Purchase,
    /// Instances asked for: 1, or a batch's originals ([`spotswap_core::batch`]).
    pub count: u32,
}

impl FleetRequest {
    /// The request for `spec`.
    pub fn from_spec(spec: &LaunchSpec) -> Self {
        Self {
            client_token: spec.client_token.clone(),
            launch_template: spec.launch_template.clone(),
            overrides: spec
                .candidates
                .iter()
                .map(|c| (c.pool.instance_type.clone(), spec.subnet_id.clone()))
                .collect(),
            tags: spec.tags.clone(),
            purchase: spec.purchase,
            count: 1,
        }
    }

    /// The one request of a batch.
    pub fn from_batch(batch: &spotswap_core::batch::FleetBatch) -> Self {
        Self {
            count: batch.count() as u32,
            ..Self::from_spec(&batch.spec)
        }
    }
}

/// One entry of CreateFleet's `Errors`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetAnswerError {
    /// `ErrorCode`, when sent.
    pub code: Option<String>,
    /// `ErrorMessage`, empty when none was sent.
    pub message: String,
    /// The instance type of the override the error is about, when it names one.
    pub instance_type: Option<String>,
}

/// CreateFleet's answer: the launched instances (id, type), if any, and the errors.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FleetAnswer {
    /// The instances launched: `(id, instance type)`, in the answer's order.
    pub launched: Vec<(String, Option<String>)>,
    /// Per-override errors.
    pub errors: Vec<FleetAnswerError>,
}

/// One of our events for PutEvents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventEntry {
    /// `Source`.
    pub source: String,
    /// `DetailType`.
    pub detail_type: String,
    /// `Detail`, JSON text.
    pub detail: String,
    /// `EventBusName`.
    pub bus: String,
}

/// Operation names, as IAM and the call counter spell them; the pacing class is derived from
/// them ([`spotswap_core::ops`]).
pub(crate) mod op {
    pub(crate) const DESCRIBE_GROUPS: &str = "autoscaling:DescribeAutoScalingGroups";
    pub(crate) const DESCRIBE_INSTANCES: &str = "ec2:DescribeInstances";
    pub(crate) const DESCRIBE_INSTANCE_STATUS: &str = "ec2:DescribeInstanceStatus";
    pub(crate) const DESCRIBE_TEMPLATE_VERSIONS: &str = "ec2:DescribeLaunchTemplateVersions";
    pub(crate) const DESCRIBE_SPOT_PRICES: &str = "ec2:DescribeSpotPriceHistory";
    pub(crate) const DESCRIBE_INSTANCE_TYPES: &str = "ec2:DescribeInstanceTypes";
    pub(crate) const GET_TYPES_FROM_REQUIREMENTS: &str = "ec2:GetInstanceTypesFromInstanceRequirements";
    pub(crate) const DESCRIBE_REFRESHES: &str = "autoscaling:DescribeInstanceRefreshes";
    pub(crate) const DESCRIBE_HOOKS: &str = "autoscaling:DescribeLifecycleHooks";
    pub(crate) const DESCRIBE_ASG_INSTANCES: &str = "autoscaling:DescribeAutoScalingInstances";
    pub(crate) const GET_PRODUCTS: &str = "pricing:GetProducts";
    pub(crate) const CREATE_FLEET: &str = "ec2:CreateFleet";
    pub(crate) const ATTACH: &str = "autoscaling:AttachInstances";
    pub(crate) const DETACH: &str = "autoscaling:DetachInstances";
    pub(crate) const TERMINATE_IN_GROUP: &str = "autoscaling:TerminateInstanceInAutoScalingGroup";
    pub(crate) const UPDATE_GROUP: &str = "autoscaling:UpdateAutoScalingGroup";
    pub(crate) const CREATE_GROUP_TAGS: &str = "autoscaling:CreateOrUpdateTags";
    pub(crate) const DELETE_GROUP_TAGS: &str = "autoscaling:DeleteTags";
    pub(crate) const CREATE_TAGS: &str = "ec2:CreateTags";
    pub(crate) const TERMINATE: &str = "ec2:TerminateInstances";
    pub(crate) const PUT_EVENTS: &str = "events:PutEvents";
    pub(crate) const DESCRIBE_STACKS: &str = "cloudformation:DescribeStacks";
    pub(crate) const DESCRIBE_LAUNCH_CONFIGS: &str = "autoscaling:DescribeLaunchConfigurations";
    pub(crate) const DESCRIBE_TEMPLATES: &str = "ec2:DescribeLaunchTemplates";
    pub(crate) const CREATE_TEMPLATE: &str = "ec2:CreateLaunchTemplate";
    pub(crate) const DELETE_TEMPLATE: &str = "ec2:DeleteLaunchTemplate";
    pub(crate) const DESCRIBE_ADDRESSES: &str = "ec2:DescribeAddresses";
    pub(crate) const DESCRIBE_VOLUMES: &str = "ec2:DescribeVolumes";
    pub(crate) const ASSOCIATE_ADDRESS: &str = "ec2:AssociateAddress";
    pub(crate) const ATTACH_VOLUME: &str = "ec2:AttachVolume";
    pub(crate) const DETACH_VOLUME: &str = "ec2:DetachVolume";
    pub(crate) const DESCRIBE_RESERVED: &str = "ec2:DescribeReservedInstances";
    pub(crate) const DESCRIBE_SAVINGS_PLANS: &str = "savingsplans:DescribeSavingsPlans";
    pub(crate) const DESCRIBE_SAVINGS_PLAN_RATES: &str = "savingsplans:DescribeSavingsPlanRates";
    /// The rebalancer reads a mixed-instances group's activities while it is below desired
    /// (its spot launches may have failed); the CLI's `explain` reads them too.
    pub(crate) const DESCRIBE_ACTIVITIES: &str = "autoscaling:DescribeScalingActivities";
}

/// The operations only the CLI's `explain` and `report` send, with the operator's credentials:
/// no function calls them, so no function role grants them (the IAM coverage test reads `op`).
pub(crate) mod cli_op {
    pub(crate) const FILTER_LOG_EVENTS: &str = "logs:FilterLogEvents";
    pub(crate) const LIST_STACK_RESOURCES: &str = "cloudformation:ListStackResources";
    pub(crate) const GET_METRIC_DATA: &str = "cloudwatch:GetMetricData";
}

/// One Savings Plan as DescribeSavingsPlans lists it, before its rates are read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanHeader {
    /// `savingsPlanId`.
    pub id: String,
    /// `ec2InstanceFamily` of an EC2 Instance plan; `None` for a Compute plan.
    pub family: Option<String>,
    /// `region` of an EC2 Instance plan.
    pub region: Option<String>,
    /// `commitment`, micro-dollars per hour.
    pub commitment_micros: u64,
    /// `start`.
    pub start: Timestamp,
    /// `end`.
    pub end: Timestamp,
}

/// One log event of FilterLogEvents.
#[derive(Debug, Clone, PartialEq)]
pub struct LogEvent {
    /// When CloudWatch stamped it, epoch milliseconds.
    pub timestamp_ms: Option<i64>,
    /// The line.
    pub message: String,
    /// Its log stream.
    pub stream: String,
}

/// One group's metric series from GetMetricData: the group and its `(period start, value)`s.
pub type GroupSeries = (String, Vec<(Timestamp, f64)>);

/// GetMetricData takes at most 500 queries a call.
pub const METRIC_QUERIES_PER_CALL: usize = 500;

/// The diagnostic reads of `spotswap explain` and `spotswap report` (the operator's
/// credentials). No function is granted FilterLogEvents, GetMetricData or ListStackResources;
/// the rebalancer also reads DescribeScalingActivities, for a mixed-instances group below its
/// desired capacity ([`crate::snapshot`]). A supertrait of [`Port`], so its implementations live beside
/// the diagnostics code.
pub trait DiagnosticReads {
    /// One page of DescribeScalingActivities of `group`, newest first.
    fn scaling_activities<'a>(
        &'a self,
        group: &'a str,
        token: Option<String>,
    ) -> PortFuture<'a, Page<spotswap_core::explain::Activity>>;
    /// One page of FilterLogEvents of `log_group` from `start_ms` on.
    fn log_events<'a>(
        &'a self,
        log_group: &'a str,
        start_ms: i64,
        token: Option<String>,
    ) -> PortFuture<'a, Page<LogEvent>>;
    /// One page of GetMetricData: for each of `groups` (at most
    /// [`METRIC_QUERIES_PER_CALL`]), our `EstimatedHourlySavings` averaged per `period_secs`
    /// from `start` to `end`. A group may come back on several pages.
    fn savings_series<'a>(
        &'a self,
        groups: &'a [String],
        start: Timestamp,
        end: Timestamp,
        period_secs: u32,
        token: Option<String>,
    ) -> PortFuture<'a, Page<crate::port::GroupSeries>>;
    /// One page of ListStackResources of `stack`: the physical ids of its `AWS::Logs::LogGroup`
    /// resources (where its functions log). `None` when the stack does not exist.
    fn stack_log_groups<'a>(
        &'a self,
        stack: &'a str,
        token: Option<String>,
    ) -> PortFuture<'a, Option<Page<String>>>;
}

/// What CreateLaunchTemplate answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateCreated {
    /// Created: its `lt-…` id.
    Created(String),
    /// A template of that name exists already (`InvalidLaunchTemplateName.AlreadyExistsException`).
    AlreadyExists,
}

/// The calls for launch-configuration groups ([`spotswap_core::launch_config`]). A supertrait
/// of [`Port`], so its implementations live beside the rest of that code.
pub trait LaunchConfigCalls {
    /// One page of DescribeLaunchConfigurations of at most 50 `names`.
    fn launch_configurations<'a>(
        &'a self,
        names: &'a [String],
        token: Option<String>,
    ) -> PortFuture<'a, Page<spotswap_core::launch_config::LaunchConfig>>;
    /// One page of DescribeLaunchTemplates of the templates tagged
    /// `spotswap:from-launch-configuration`.
    fn lc_templates(
        &self,
        token: Option<String>,
    ) -> PortFuture<'_, Page<spotswap_core::launch_config::LcTemplate>>;
    /// CreateLaunchTemplate `name` holding what `config` boots, tagged
    /// `spotswap:from-launch-configuration=<config name>` at creation.
    fn create_template<'a>(
        &'a self,
        name: &'a str,
        config: &'a spotswap_core::launch_config::LaunchConfig,
    ) -> PortFuture<'a, TemplateCreated>;
    /// DeleteLaunchTemplate by id.
    fn delete_template<'a>(&'a self, id: &'a str) -> PortFuture<'a, ()>;
}

/// Which volumes a DescribeVolumes asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VolumeQuery {
    /// Volumes with tag `key` = one of `values` (at most 200).
    Tagged {
        /// The carry tag key.
        key: String,
        /// Group names.
        values: Vec<String>,
    },
    /// The named volumes (a missing one is simply absent from the answer).
    Ids(Vec<String>),
}

/// The calls of stateful groups ([`spotswap_core::carry`]): Elastic IPs and data volumes. A
/// supertrait of [`Port`], so its implementations live beside the carry code.
pub trait CarryCalls {
    /// DescribeAddresses: every address of the region (EC2 does not paginate it), or the named
    /// allocation ids.
    fn describe_addresses<'a>(
        &'a self,
        ids: &'a [String],
    ) -> PortFuture<'a, Vec<spotswap_core::carry::Address>>;
    /// One page of DescribeVolumes.
    fn describe_volumes<'a>(
        &'a self,
        q: &'a VolumeQuery,
        token: Option<String>,
    ) -> PortFuture<'a, Page<spotswap_core::carry::Volume>>;
    /// AssociateAddress with AllowReassociation.
    fn associate_address<'a>(&'a self, allocation_id: &'a str, instance: &'a str) -> PortFuture<'a, ()>;
    /// AttachVolume.
    fn attach_volume<'a>(&'a self, volume: &'a str, instance: &'a str, device: &'a str)
        -> PortFuture<'a, ()>;
    /// DetachVolume from `instance` (never forced).
    fn detach_volume<'a>(&'a self, volume: &'a str, instance: &'a str) -> PortFuture<'a, ()>;
    /// CreateTags on an address or a volume.
    fn tag_resource<'a>(&'a self, id: &'a str, key: &'a str, value: &'a str) -> PortFuture<'a, ()>;
}

/// The calls spotswap makes, in plain data. Object-safe: held as `Arc<dyn Port>` by
/// [`crate::Aws`]. Errors are [`AdapterError::Aws`] named by the operation, with the service's
/// code.
pub trait Port: DiagnosticReads + LaunchConfigCalls + CarryCalls + Send + Sync + std::fmt::Debug {
    // --- reads
    /// One page of DescribeAutoScalingGroups (at most 100 groups).
    fn describe_groups<'a>(
        &'a self,
        q: &'a GroupQuery,
        token: Option<String>,
    ) -> PortFuture<'a, Page<GroupSnapshot>>;
    /// One page of DescribeInstances (at most 1,000 instances when not asked by id).
    fn describe_instances<'a>(
        &'a self,
        q: &'a InstanceQuery,
        token: Option<String>,
    ) -> PortFuture<'a, Page<Instance>>;
    /// DescribeInstanceStatus of at most 100 ids: `(id, instance and system status both ok)`.
    fn instance_status<'a>(&'a self, ids: &'a [String]) -> PortFuture<'a, Vec<(String, bool)>>;
    /// One page of the instances with a scheduled event (retirement, stop, reboot,
    /// maintenance) still to come, each with its earliest.
    fn scheduled_events(&self, token: Option<String>) -> PortFuture<'_, Page<(String, ScheduledEvent)>>;
    /// The version number `template` launches today (`$Latest`, `$Default` resolved).
    fn template_version<'a>(&'a self, template: &'a LaunchTemplateRef) -> PortFuture<'a, Option<String>>;
    /// One page of Linux spot price history in `azs` since `since`.
    fn spot_prices<'a>(
        &'a self,
        azs: &'a [String],
        since: Timestamp,
        token: Option<String>,
    ) -> PortFuture<'a, Page<SpotPrice>>;
    /// One page of DescribeInstanceTypes.
    fn instance_types(&self, token: Option<String>) -> PortFuture<'_, Page<InstanceTypeSpec>>;
    /// One page of GetInstanceTypesFromInstanceRequirements: the instance types matching an
    /// attribute-based override's requirements.
    fn types_for_requirements<'a>(
        &'a self,
        q: &'a RequirementsQuery,
        token: Option<String>,
    ) -> PortFuture<'a, Page<String>>;
    /// Whether an instance refresh of `group` is pending, running, cancelling, rolling back or
    /// baking.
    fn instance_refresh_in_progress<'a>(&'a self, group: &'a str) -> PortFuture<'a, bool>;
    /// `StackStatus` of one CloudFormation stack (DescribeStacks); `None` when the stack does not
    /// exist (AWS answers `ValidationError`, "Stack with id … does not exist").
    fn stack_status<'a>(&'a self, stack: &'a str) -> PortFuture<'a, Option<String>>;
    /// The region's active Reserved Instances (DescribeReservedInstances, `state=active`).
    fn reserved_instances(&self) -> PortFuture<'_, Vec<spotswap_core::commitments::ReservedInstances>>;
    /// One page of the account's active Savings Plans (DescribeSavingsPlans).
    fn savings_plans(&self, token: Option<String>) -> PortFuture<'_, Page<PlanHeader>>;
    /// One page of `plan`'s EC2 rates in `region` (DescribeSavingsPlanRates).
    fn savings_plan_rates<'a>(
        &'a self,
        plan: &'a str,
        region: &'a str,
        token: Option<String>,
    ) -> PortFuture<'a, Page<spotswap_core::commitments::PlanRate>>;
    /// The lifecycle transitions of `group`'s lifecycle hooks.
    fn lifecycle_hooks<'a>(&'a self, group: &'a str) -> PortFuture<'a, Vec<String>>;
    /// The instance as its group lists it (DescribeAutoScalingInstances); `None` when none does.
    fn membership<'a>(&'a self, id: &'a str) -> PortFuture<'a, Option<Membership>>;
    /// One instance in any state, terminated included; `None` when EC2 does not know it.
    fn instance_any_state<'a>(&'a self, id: &'a str) -> PortFuture<'a, Option<Instance>>;
    /// One page of Price List GetProducts for AmazonEC2, matching every `(field, value)`: the
    /// products as JSON documents.
    fn price_products<'a>(
        &'a self,
        filters: &'a [(&'a str, &'a str)],
        token: Option<String>,
    ) -> PortFuture<'a, Page<String>>;

    // --- mutations
    /// CreateFleet, instant, one spot instance.
    fn create_fleet<'a>(&'a self, req: &'a FleetRequest) -> PortFuture<'a, FleetAnswer>;
    /// AttachInstances.
    fn attach_instances<'a>(&'a self, group: &'a str, ids: &'a [String]) -> PortFuture<'a, ()>;
    /// DetachInstances; the number of activities started (0: the instances had already left).
    fn detach_instances<'a>(
        &'a self,
        group: &'a str,
        ids: &'a [String],
        decrement: bool,
    ) -> PortFuture<'a, usize>;
    /// TerminateInstanceInAutoScalingGroup.
    fn terminate_in_group<'a>(&'a self, id: &'a str, decrement: bool) -> PortFuture<'a, ()>;
    /// UpdateAutoScalingGroup of MaxSize only.
    fn update_max_size<'a>(&'a self, group: &'a str, max: u32) -> PortFuture<'a, ()>;
    /// UpdateAutoScalingGroup of a mixed instances policy's
    /// `InstancesDistribution.OnDemandPercentageAboveBaseCapacity` only: AWS keeps the rest of
    /// the policy, so nothing else is sent.
    fn update_on_demand_percent<'a>(&'a self, group: &'a str, percent: u32) -> PortFuture<'a, ()>;
    /// CreateOrUpdateTags on a group, not propagated at launch.
    fn put_group_tags<'a>(&'a self, group: &'a str, kv: &'a [(String, String)]) -> PortFuture<'a, ()>;
    /// DeleteTags on a group.
    fn delete_group_tags<'a>(&'a self, group: &'a str, keys: &'a [String]) -> PortFuture<'a, ()>;
    /// CreateTags on instances.
    fn tag_instances<'a>(&'a self, ids: &'a [String], kv: &'a [(String, String)]) -> PortFuture<'a, ()>;
    /// TerminateInstances.
    fn terminate_instances<'a>(&'a self, ids: &'a [String]) -> PortFuture<'a, ()>;
    /// PutEvents of at most 10 entries; the number of entries that failed.
    fn put_events<'a>(&'a self, entries: &'a [EventEntry]) -> PortFuture<'a, usize>;
}
