//! A fault and market proxy between the AWS SDK and moto server (DESIGN.md §11).
//!
//! moto answers every spot price with a constant, always has capacity and never throttles.
//! Every emulation here is off until a test turns it on.
//! Tests that need a market, capacity shortages or a misbehaving AWS start a [`Proxy`] in
//! front of moto and point their SDK clients at [`Proxy::url`]:
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use spotswap_tests::proxy::{Fault, FaultKind, Proxy};
//! let proxy = Proxy::start(&std::env::var("AWS_ENDPOINT_URL").unwrap()).await?;
//! proxy.set_spot_price("m5.large", "ap-southeast-2a", 0.042);
//! proxy.set_no_capacity("c5.large", "ap-southeast-2b", true);
//! proxy.add_fault(Fault::once("ec2:CreateFleet", FaultKind::Throttle));
//! // build clients with `.endpoint_url(proxy.url())`, run, then inspect `proxy.calls()`
//! # Ok(()) }
//! ```
//!
//! # Layout
//!
//! - [`Proxy`] (here): the server, its scenario setters and its call counters.
//! - `call`: which service, region and operation a request is, read from the SigV4 scope and
//!   the `Action` form field or `X-Amz-Target` header; Query forms.
//! - `scenario`: [`Fault`]s, prices, pools without capacity and the seeded RNG.
//! - `market`: `DescribeSpotPriceHistory`, `CreateFleet` and `RunInstances` rewriting.
//! - `membership`: `AttachInstances` and `DetachInstances` with AWS's rules.
//! - `metrics`: CloudWatch `GetMetricData` in rpcv2Cbor, from datapoints a test puts
//!   ([`Proxy::put_metric`]).
//! - `volumes`: `AttachVolume` with AWS's rules (`VolumeInUse`, a device in use).
//! - `mixed`: `UpdateAutoScalingGroup` keeps the group's `MixedInstancesPolicy`.
//! - `weights`: a weighted mixed-instances group's desired capacity in units through
//!   AttachInstances and a retire's decrement.
//! - `wipeout`: a mixed-instances group's spot launches failing while its pools have no
//!   capacity: desired unmet, failed scaling activities (DescribeScalingActivities), which
//!   moto lacks; its launches succeed on-demand once its distribution says 100.
//! - `requirements`: `GetInstanceTypesFromInstanceRequirements`, which moto lacks, from moto's
//!   DescribeInstanceTypes data, in pages.
//! - `rates`: EC2's request-rate limits, one token bucket per API class ([`Proxy::set_rates`]).
//! - `control`: `GET /_counts` and `POST /_reset` for a reader in another process, and the
//!   load (busy time, calls in flight).
//! - `tokens`: CreateFleet's `ClientToken` idempotency ([`Proxy::set_client_tokens`]).
//! - `status`: status checks that stay `initializing` or fail ([`Proxy::set_status_checks`]).
//! - `scheduled`: EC2's scheduled events, which moto lacks ([`Proxy::set_scheduled_event`]).
//! - `lifecycle`: a replacement's boot delay, terminating lifecycle hooks and a suspended
//!   `Launch` ([`Proxy::set_boot_delay`], [`Proxy::set_lifecycle_hooks`],
//!   [`Proxy::set_suspended_processes`]), on the proxy's clock ([`Proxy::advance_clock`]).
//! - `stacks`: CloudFormation stacks mid-update ([`Proxy::set_stack_status`]).
//! - `images`: what DescribeInstances tells of an instance's image: boot modes and ENA
//!   ([`Proxy::set_image`]).
//! - `commitments`: Reserved Instances and Savings Plans, which moto lacks
//!   ([`Proxy::set_commitments`], [`Proxy::set_commitments_denied`]).
//! - `upstream`: forwarding to moto, the proxy's own questions to it, XML helpers.
//! - `errors`: service error bodies in each protocol's shape.
//! - `xml`: nested Query-protocol lists, read and rewritten.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use spotswap_aws::ApiRates;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

mod call;
mod commitments;
mod control;
mod errors;
mod images;
mod lifecycle;
mod market;
mod membership;
mod metrics;
mod mixed;
mod rates;
mod requirements;
mod scenario;
mod scheduled;
mod stacks;
mod status;
mod tokens;
mod upstream;
mod volumes;
mod weights;
mod wipeout;
mod xml;

pub use commitments::{PlanSpec, ReservedSpec};
pub use images::ImageFacts;
pub use lifecycle::{Booting, DEFAULT_BOOT_DELAY};
pub use scenario::{Fault, FaultKind};
pub use status::StatusChecks;

use call::Call;
use control::{InFlight, Load};
use market::{rewrite_spot_prices, run_instances, scenario_spot_prices};
use membership::{attach_instances, detach_instances};
use rates::Limiter;
use scenario::{Pool, Scenario, XorShift};
use tokens::{idempotent_create_fleet, Tokens};
use upstream::{forward, xml_response};

/// A running proxy. Dropping it stops the server and closes its connections.
pub struct Proxy {
    addr: SocketAddr,
    state: Arc<State>,
    server: JoinHandle<()>,
}

impl Proxy {
    /// Starts a proxy on a free loopback port in front of `upstream`, a moto base URL such as
    /// the value of `AWS_ENDPOINT_URL`. Must be called inside a Tokio runtime.
    pub async fn start(upstream: &str) -> std::io::Result<Proxy> {
        Proxy::bind(upstream, SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await
    }

    /// [`Proxy::start`] on `addr` (port 0 picks a free one): for `spotswap-proxy`, whose
    /// caller chooses the port.
    pub async fn bind(upstream: &str, addr: SocketAddr) -> std::io::Result<Proxy> {
        let upstream = upstream.trim_end_matches('/');
        if !upstream.starts_with("http://") {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("upstream must be a plain http:// URL, got {upstream:?}"),
            ));
        }
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            upstream: upstream.to_owned(),
            client: Client::builder(TokioExecutor::new()).build_http(),
            scenario: Mutex::new(Scenario::default()),
            calls: Mutex::new(BTreeMap::new()),
            busy: Mutex::new(BTreeMap::new()),
            limiter: Mutex::new(None),
            throttles: Mutex::new(BTreeMap::new()),
            load: Mutex::new(Load::default()),
            fleet_tokens: tokio::sync::Mutex::new(Tokens::new()),
            status_seen: Mutex::new(HashMap::new()),
            subnet_azs: Mutex::new(HashMap::new()),
            ids: AtomicU64::new(1),
            membership: tokio::sync::Mutex::new(()),
            volumes: tokio::sync::Mutex::new(()),
            life: Mutex::new(lifecycle::Life::default()),
            clock: Mutex::new(Duration::ZERO),
            mixed_policies: Mutex::new(HashMap::new()),
            outages: Mutex::new(wipeout::Outages::default()),
        });
        let server = tokio::spawn(serve(listener, state.clone()));
        Ok(Proxy { addr, state, server })
    }

    /// Starts a proxy in front of the moto server named by `AWS_ENDPOINT_URL`.
    pub async fn from_env() -> std::io::Result<Proxy> {
        let upstream = std::env::var("AWS_ENDPOINT_URL").map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "AWS_ENDPOINT_URL is not set; run under scripts/with-moto.sh",
            )
        })?;
        Proxy::start(&upstream).await
    }

    /// The base URL to give the SDK as its endpoint.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Answers `DescribeSpotPriceHistory` with `price` for this pool.
    pub fn set_spot_price(&self, instance_type: &str, az: &str, price: f64) {
        self.state
            .scenario()
            .prices
            .insert(Pool::new(instance_type, az), price);
    }

    /// Answer `DescribeSpotPriceHistory` from the scenario alone, one Linux/UNIX record per
    /// pool given to [`Proxy::set_spot_price`], without asking moto (which lists every type of
    /// the region and takes ~0.4 s); and answer `DescribeInstanceRefreshes`, which moto does not
    /// implement (a 500 the SDK retries with back-off), as AWS does for a group that never had
    /// one: an empty list. For tests that run thousands of cycles.
    pub fn set_market_only(&self, on: bool) {
        self.state.scenario().market_only = on;
    }

    /// The price for pools without their own; `None` leaves them at moto's constant.
    pub fn set_default_spot_price(&self, price: Option<f64>) {
        self.state.scenario().default_price = price;
    }

    /// Marks a pool as out of capacity (or back in). `"*"` as the instance type or AZ matches
    /// any, which also covers requests that name no AZ or no instance type.
    pub fn set_no_capacity(&self, instance_type: &str, az: &str, on: bool) {
        let pool = Pool::new(instance_type, az);
        let mut scenario = self.state.scenario();
        if on {
            scenario.no_capacity.insert(pool);
        } else {
            scenario.no_capacity.remove(&pool);
        }
    }

    /// At most `n` instances per CreateFleet `instant` (`None`: as many as asked): a fleet
    /// asking more launches `n` and answers an `InsufficientInstanceCapacity` error item for
    /// the rest, as AWS does when the pools are short of capacity for a whole request (moto
    /// always fills a fleet).
    pub fn set_fleet_fill(&self, n: Option<u32>) {
        self.state.scenario().fleet_fill = n;
    }

    /// Adds a fault. Faults are tried in the order added; the first one that hits wins.
    pub fn add_fault(&self, fault: Fault) {
        self.state.scenario().faults.push(fault);
    }

    /// Faults not yet spent.
    pub fn pending_faults(&self) -> usize {
        self.state.scenario().faults.len()
    }

    /// Removes every fault.
    pub fn clear_faults(&self) {
        self.state.scenario().faults.clear();
    }

    /// Restarts the RNG behind probabilistic faults, so a schedule replays exactly when the
    /// calls arrive in the same order.
    pub fn set_seed(&self, seed: u64) {
        self.state.scenario().rng = XorShift::seeded(seed);
    }

    /// Calls that reached the proxy, faulted or not, keyed `"service:Operation"`.
    pub fn calls(&self) -> BTreeMap<String, u64> {
        self.state.calls().clone()
    }

    /// Count for one `"service:Operation"` key.
    pub fn call_count(&self, key: &str) -> u64 {
        self.state.calls().get(key).copied().unwrap_or(0)
    }

    /// Calls that change something ([`spotswap_core::ops::is_mutating`]).
    pub fn mutating_calls(&self) -> u64 {
        self.state
            .calls()
            .iter()
            .filter(|(key, _)| spotswap_core::ops::is_mutating(key))
            .map(|(_, n)| n)
            .sum()
    }

    /// Wall time spent answering each `"service:Operation"`, faulted calls excluded: where a
    /// run's time goes, for `make chaos` and `make bench`.
    pub fn busy(&self) -> BTreeMap<String, Duration> {
        self.state.busy().clone()
    }

    /// Wall time with at least one call being answered (moto, or the market's rewriting):
    /// moto is one single-threaded process, so a figure close to a run's wall time means moto
    /// set the pace.
    pub fn upstream_busy(&self) -> Duration {
        self.state.load().busy(Instant::now())
    }

    /// The most calls being answered at once.
    pub fn max_in_flight(&self) -> u32 {
        self.state.load().max_in_flight()
    }

    /// Forgets all counted calls and throttles, their times and the load; not the buckets.
    pub fn reset_calls(&self) {
        self.state.reset_counters();
    }

    /// Enforces EC2's request-rate limits (see `rates`): one token bucket per
    /// [`spotswap_core::ops::Bucket`], at `rates` with every refill rate and burst multiplied
    /// by `scale` (time compression: T seconds at the real rates take T/`scale` here), each
    /// starting full. A call that finds its bucket empty is answered with the service's
    /// throttling error (EC2 `RequestLimitExceeded`, Query services `Throttling`) without
    /// being forwarded, and counted in [`Proxy::calls`] and [`Proxy::throttles`]. Off until
    /// called; calling again refills every bucket.
    ///
    /// # Panics
    ///
    /// When `scale` is not a positive number.
    pub fn set_rates(&self, rates: &ApiRates, scale: f64) {
        assert!(
            scale.is_finite() && scale > 0.0,
            "scale must be positive, got {scale}"
        );
        *self.state.limiter() = Some(Limiter::new(rates, scale, Instant::now()));
    }

    /// Stops throttling (the default).
    pub fn clear_rates(&self) {
        *self.state.limiter() = None;
    }

    /// Calls refused by the buckets of [`Proxy::set_rates`], keyed `"service:Operation"`;
    /// a subset of [`Proxy::calls`]. Throttles injected by a [`Fault`] are not counted here.
    pub fn throttles(&self) -> BTreeMap<String, u64> {
        self.state.throttles().clone()
    }

    /// Answers `DescribeInstanceRefreshes` (not implemented by moto: a 500 the SDK retries with
    /// back-off) as AWS does for a group that never had a refresh: an empty list. The call is
    /// counted and charged to its bucket like any other. [`Proxy::set_market_only`] does this too.
    pub fn set_answer_instance_refreshes(&self, on: bool) {
        self.state.scenario().answer_refreshes = on;
    }

    /// Keeps a group's `MixedInstancesPolicy` through an `UpdateAutoScalingGroup` that does not
    /// repeat it, as AWS does (moto drops it): see `mixed`. Groups must be created through the
    /// proxy after this is turned on. Off by default.
    pub fn set_keep_mixed_policies(&self, on: bool) {
        self.state.scenario().keep_mixed_policies = on;
    }

    /// Honours CreateFleet's `ClientToken` as EC2 does and moto does not (see `tokens`): a
    /// request repeating a token with the same parameters gets the first request's answer and
    /// launches nothing; with different parameters it is `IdempotentParameterMismatch`. Off by
    /// default.
    pub fn set_client_tokens(&self, on: bool) {
        self.state.scenario().client_tokens = on;
    }

    /// Makes DescribeInstances report `instance`'s image facts (`"*"`: every instance without
    /// facts of its own): the AMI's boot mode, the boot mode it booted in and ENA, which AWS
    /// reports and moto leaves out. `None` removes them. Off by default.
    pub fn set_image(&self, instance: &str, facts: Option<ImageFacts>) {
        let mut scenario = self.state.scenario();
        match facts {
            Some(f) => scenario.images.insert(instance.to_owned(), f),
            None => scenario.images.remove(instance),
        };
    }

    /// Makes DescribeInstanceStatus report `instance`'s status checks (`"*"`: every instance
    /// without a rule of its own) as `checks` says instead of moto's immediate `ok`; `None`
    /// removes the rule. Off by default.
    pub fn set_status_checks(&self, instance: &str, checks: Option<StatusChecks>) {
        let mut scenario = self.state.scenario();
        match checks {
            Some(c) => scenario.status_checks.insert(instance.to_owned(), c),
            None => scenario.status_checks.remove(instance),
        };
    }

    /// Makes DescribeInstanceStatus filtered on `event.code` report `instance` with a scheduled
    /// event `code` (`instance-retirement`, …) not before `not_before` (RFC 3339), as AWS does;
    /// `None` removes it. moto has no scheduled events.
    pub fn set_scheduled_event(&self, instance: &str, event: Option<(&str, &str)>) {
        let mut scenario = self.state.scenario();
        match event {
            Some((code, not_before)) => {
                scenario
                    .scheduled
                    .insert(instance.to_owned(), (code.to_owned(), not_before.to_owned()));
            }
            None => {
                scenario.scheduled.remove(instance);
            }
        }
    }

    /// Makes a group's replacement for an instance that left it without a decrement
    /// (DetachInstances, TerminateInstanceInAutoScalingGroup) `Pending` for `delay` on the
    /// proxy's clock, as AWS boots it, where moto lists it InService at once (see `lifecycle`);
    /// [`DEFAULT_BOOT_DELAY`] is AWS's usual. `None` (the default): moto's instant replacement.
    pub fn set_boot_delay(&self, delay: Option<Duration>) {
        self.state.life().boot_delay = delay;
    }

    /// The group's replacements still booting on the proxy's clock ([`Proxy::set_boot_delay`]).
    pub fn booting(&self, group: &str) -> Vec<Booting> {
        let now = self.state.now();
        self.state.life().booting_in(None, group, now)
    }

    /// Honours terminating lifecycle hooks as AWS does and moto does not (see `lifecycle`):
    /// TerminateInstanceInAutoScalingGroup holds the instance in `Terminating:Wait` until
    /// CompleteLifecycleAction or the hook's heartbeat timeout on the proxy's clock. Off by
    /// default.
    pub fn set_lifecycle_hooks(&self, on: bool) {
        self.state.life().hooks = on;
    }

    /// Honours a suspended `Launch` as AWS does and moto does not (see `lifecycle`): an
    /// instance leaving without a decrement gets no replacement until ResumeProcesses. Off by
    /// default.
    pub fn set_suspended_processes(&self, on: bool) {
        self.state.life().suspended = on;
    }

    /// Moves the proxy's clock forward: boot delays, heartbeat timeouts and status checks that
    /// stay `initializing` are measured on it, and a wiped-out group's scaling activities are
    /// stamped with it, so a test skips minutes without waiting them.
    pub fn advance_clock(&self, by: Duration) {
        *self.state.clock.lock().unwrap_or_else(|e| e.into_inner()) += by;
    }

    /// Makes DescribeStacks of `stack` answer `status` (e.g. `UPDATE_IN_PROGRESS`) instead of
    /// moto's, which has completed every create and update by the time it answers; `None`
    /// removes the rule. Off by default.
    pub fn set_stack_status(&self, stack: &str, status: Option<&str>) {
        let mut scenario = self.state.scenario();
        match status {
            Some(s) => scenario.stack_status.insert(stack.to_owned(), s.to_owned()),
            None => scenario.stack_status.remove(stack),
        };
    }

    /// Serves the account's Reserved Instances (EC2 `DescribeReservedInstances`) and Savings
    /// Plans (`DescribeSavingsPlans`, `DescribeSavingsPlanRates`) from these lists, in AWS's
    /// wire formats; moto has neither (see `commitments`). Until called, both answer empty,
    /// as AWS does for an account without commitments.
    pub fn set_commitments(&self, reserved: Vec<ReservedSpec>, plans: Vec<PlanSpec>) {
        let mut scenario = self.state.scenario();
        scenario.commitments.reserved = reserved;
        scenario.commitments.plans = plans;
    }

    /// Answers every commitments read with AWS's access-denied error (a role without the
    /// read-only grants), or serves them again.
    pub fn set_commitments_denied(&self, on: bool) {
        self.state.scenario().commitments.denied = on;
    }

    /// Stores a CloudWatch datapoint of `namespace`/`metric` with `dimensions` in `region` at
    /// epoch second `at`, as CloudWatch would have it from an EMF line; GetMetricData serves
    /// it (moto cannot: the SDK speaks rpcv2Cbor to CloudWatch; see `metrics`).
    pub fn put_metric(
        &self,
        region: &str,
        namespace: &str,
        metric: &str,
        dimensions: &[(&str, &str)],
        at: i64,
        value: f64,
    ) {
        let mut dimensions: Vec<(String, String)> = dimensions
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        dimensions.sort();
        self.state.scenario().metrics.points.push(metrics::Datapoint {
            region: region.to_owned(),
            namespace: namespace.to_owned(),
            metric: metric.to_owned(),
            dimensions,
            at,
            value,
        });
    }

    /// GetMetricData pages of at most `n` datapoints (CloudWatch's own limit is 100,800).
    pub fn set_metric_page_size(&self, n: Option<usize>) {
        self.state.scenario().metrics.page_size = n;
    }

    /// Serves `GET /_counts` (calls, throttles, classes, load and buckets as JSON) and
    /// `POST /_reset` ([`Proxy::reset_calls`]) to a reader in another process, such as the
    /// bench; see `control`. Off by default: a test reads the counters directly.
    pub fn set_control_paths(&self, on: bool) {
        self.state.scenario().control_paths = on;
    }
}

/// Resets every region of the moto server at `upstream` (`POST /moto-api/reset`). moto keeps
/// terminated instances for good, so a long run (`make chaos`) resets between batches of
/// schedules, when none is using the server.
pub async fn reset_moto(upstream: &str) -> Result<(), String> {
    let client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let req = Request::builder()
        .method(Method::POST)
        .uri(format!("{upstream}/moto-api/reset"))
        .body(Full::new(Bytes::new()))
        .map_err(|e| e.to_string())?;
    let response = client
        .request(req)
        .await
        .map_err(|e| format!("{upstream}: {e}"))?;
    match response.status() {
        StatusCode::OK => Ok(()),
        other => Err(format!("{upstream}/moto-api/reset answered {other}")),
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Proxy")
            .field("url", &self.url())
            .field("upstream", &self.state.upstream)
            .finish()
    }
}

/// Responses are built whole: the market rewrites bodies, and they are small.
type Reply = Response<Bytes>;

struct State {
    upstream: String,
    client: Client<HttpConnector, Full<Bytes>>,
    scenario: Mutex<Scenario>,
    calls: Mutex<BTreeMap<String, u64>>,
    /// Wall time spent answering each operation (moto's time, plus the market's rewriting).
    busy: Mutex<BTreeMap<String, Duration>>,
    /// Keyed by (region, subnet id); subnets never move, so one lookup per subnet is enough.
    subnet_azs: Mutex<HashMap<(String, String), String>>,
    /// The token buckets of [`Proxy::set_rates`]; `None`: no throttling.
    limiter: Mutex<Option<Limiter>>,
    throttles: Mutex<BTreeMap<String, u64>>,
    load: Mutex<Load>,
    /// CreateFleet answers by client token, for [`Proxy::set_client_tokens`].
    fleet_tokens: tokio::sync::Mutex<Tokens>,
    /// When each instance's status checks were first answered for, for
    /// [`StatusChecks::Initializing`].
    status_seen: Mutex<HashMap<String, Instant>>,
    ids: AtomicU64,
    /// Serializes AttachInstances and DetachInstances: membership check and change as one
    /// step, as in AWS.
    membership: tokio::sync::Mutex<()>,
    /// Serializes AttachVolume: the volume's check and its attach as one step (`volumes`).
    volumes: tokio::sync::Mutex<()>,
    /// Boot delays, held terminations and replacements owed (`lifecycle`).
    life: Mutex<lifecycle::Life>,
    /// How far [`Proxy::advance_clock`] has moved the proxy's clock past the wall clock.
    clock: Mutex<Duration>,
    /// `MixedInstancesPolicy.*` fields by (region, group), for
    /// [`Proxy::set_keep_mixed_policies`].
    mixed_policies: Mutex<mixed::Policies>,
    /// Instances owed to wiped-out mixed-instances groups, and their activities (`wipeout`).
    outages: Mutex<wipeout::Outages>,
}

impl State {
    // A panicking test thread must not turn every later call into a poison error.
    fn scenario(&self) -> MutexGuard<'_, Scenario> {
        self.scenario.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn calls(&self) -> MutexGuard<'_, BTreeMap<String, u64>> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn busy(&self) -> MutexGuard<'_, BTreeMap<String, Duration>> {
        self.busy.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn limiter(&self) -> MutexGuard<'_, Option<Limiter>> {
        self.limiter.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn throttles(&self) -> MutexGuard<'_, BTreeMap<String, u64>> {
        self.throttles.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn mixed_policies(&self) -> MutexGuard<'_, mixed::Policies> {
        self.mixed_policies.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn outages(&self) -> MutexGuard<'_, wipeout::Outages> {
        self.outages.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn status_seen(&self) -> MutexGuard<'_, HashMap<String, Instant>> {
        self.status_seen.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn life(&self) -> MutexGuard<'_, lifecycle::Life> {
        self.life.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The proxy's clock: the wall clock plus [`Proxy::advance_clock`]'s skips.
    fn now(&self) -> Instant {
        Instant::now() + *self.clock.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn load(&self) -> MutexGuard<'_, Load> {
        self.load.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn reset_counters(&self) {
        self.calls().clear();
        self.busy().clear();
        self.throttles().clear();
        self.load().reset(Instant::now());
    }

    /// Charges `call` to its bucket; `false`: throttle it.
    fn admit(&self, call: &Call) -> bool {
        match self.limiter().as_mut() {
            Some(limiter) => limiter.admit(&call.key(), Instant::now()),
            None => true,
        }
    }

    fn next_id(&self) -> u64 {
        self.ids.fetch_add(1, Ordering::Relaxed)
    }

    fn request_id(&self) -> String {
        format!("0000prox-0000-4000-8000-{:012x}", self.next_id())
    }
}

/// The error a service returns to make hyper close the connection without a response.
#[derive(Debug)]
struct DropConnection;

impl fmt::Display for DropConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("connection dropped by fault injection")
    }
}

impl std::error::Error for DropConnection {}

async fn serve(listener: TcpListener, state: Arc<State>) {
    // Owning the connection tasks here means aborting this task closes them all.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let state = state.clone();
                connections.spawn(async move {
                    let service = hyper::service::service_fn(move |req| handle(state.clone(), req));
                    // Errors here are clients hanging up or injected drops; nothing to report.
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, DropConnection> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map_err(|_| DropConnection)?.to_bytes();
    if let Some(reply) = control::answer(&state, &parts) {
        return Ok(reply.map(Full::new));
    }
    let call = Call::identify(&parts, &body);
    *state.calls().entry(call.key()).or_default() += 1;

    // The buckets stand at AWS's front door: a throttled call reaches no fault and no moto.
    if !state.admit(&call) {
        *state.throttles().entry(call.key()).or_default() += 1;
        return Ok(errors::throttle(&state, &call).map(Full::new));
    }

    let fault = state.scenario().pick_fault(&call);
    let refused = match &fault {
        Some(FaultKind::Throttle) => Some(errors::throttle(&state, &call)),
        Some(FaultKind::Http500) => Some(errors::internal(&state, &call)),
        Some(FaultKind::Http503) => Some(errors::unavailable(&state, &call)),
        Some(FaultKind::Delay(d)) => {
            tokio::time::sleep(*d).await;
            None
        }
        Some(FaultKind::DropAfterForward) | None => None,
    };
    if let Some(reply) = refused {
        return Ok(reply.map(Full::new));
    }

    let started = Instant::now();
    let in_flight = InFlight::begin(&state);
    let response = match (call.service.as_str(), call.operation.as_str()) {
        _ if lifecycle::handles(&state, &call) => lifecycle::answer(&state, &call, &parts, body).await,
        _ if commitments::handles(&call) => commitments::answer(&state, &call, &body),
        _ if metrics::handles(&call) => metrics::answer(&state, &call, &body),
        _ if requirements::handles(&call) => requirements::answer(&state, &call, &parts).await,
        _ if wipeout::handles(&state, &call) => wipeout::answer(&state, &call, &parts, body).await,
        ("ec2", "DescribeSpotPriceHistory") if state.scenario().market_only => {
            let xml = scenario_spot_prices(&state.scenario().prices);
            xml_response(StatusCode::OK, xml)
        }
        ("autoscaling", "DescribeInstanceRefreshes") if state.scenario().answers_refreshes() => xml_response(
            StatusCode::OK,
            "<DescribeInstanceRefreshesResponse xmlns=\"http://autoscaling.amazonaws.com/doc/2011-01-01/\">\
             <DescribeInstanceRefreshesResult><InstanceRefreshes></InstanceRefreshes>\
             </DescribeInstanceRefreshesResult><ResponseMetadata><RequestId>proxy-refreshes</RequestId>\
             </ResponseMetadata></DescribeInstanceRefreshesResponse>"
                .to_string(),
        ),
        ("ec2", "DescribeSpotPriceHistory") => {
            let response = forward(&state, &parts, body).await;
            rewrite_spot_prices(&state, response)
        }
        ("ec2", "DescribeInstanceStatus") if scheduled::codes_asked(&call).is_some() => {
            scheduled::answer(&state, &scheduled::codes_asked(&call).unwrap_or_default())
        }
        ("ec2", "DescribeInstances") if !state.scenario().images.is_empty() => {
            let response = forward(&state, &parts, body).await;
            images::rewrite(&state, response)
        }
        ("ec2", "DescribeInstanceStatus") if !state.scenario().status_checks.is_empty() => {
            let response = forward(&state, &parts, body).await;
            status::rewrite(&state, response)
        }
        ("cloudformation", "DescribeStacks") => {
            let response = forward(&state, &parts, body).await;
            stacks::rewrite(&state, &call, response)
        }
        ("ec2", "CreateFleet") => idempotent_create_fleet(&state, &call, &parts, body).await,
        ("autoscaling", "DetachInstances") => detach_instances(&state, &call, &parts, body).await,
        ("autoscaling", "AttachInstances") => attach_instances(&state, &call, &parts, body).await,
        ("ec2", "AttachVolume") => volumes::attach_volume(&state, &call, &parts, body).await,
        ("autoscaling", "TerminateInstanceInAutoScalingGroup") => {
            weights::terminate(&state, &call, &parts, body).await
        }
        ("ec2", "RunInstances") => run_instances(&state, &call, &parts, body).await,
        ("autoscaling", "CreateAutoScalingGroup" | "UpdateAutoScalingGroup") => {
            mixed::group_write(&state, &call, &parts, body).await
        }
        _ => forward(&state, &parts, body).await,
    };
    *state.busy().entry(call.key()).or_default() += started.elapsed();
    drop(in_flight);

    if fault == Some(FaultKind::DropAfterForward) {
        return Err(DropConnection);
    }
    Ok(response.map(Full::new))
}
