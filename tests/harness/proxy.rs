//! A fault and market proxy between the AWS SDK and moto server (DESIGN.md §11).
//!
//! moto answers every spot price with a constant, always has capacity and never throttles.
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
//! - [`Proxy`]: the server, its scenario setters and its call counters.
//! - `Call`: which service, region and operation a request is, read from the SigV4 scope and
//!   the `Action` form field or `X-Amz-Target` header.
//! - `Scenario`: prices, pools without capacity, faults and the seeded RNG.
//! - market handlers: `DescribeSpotPriceHistory`, `CreateFleet` and `RunInstances` rewriting.
//! - `errors`: service error bodies in each protocol's shape.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::http::request::Parts;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

const EC2_API_VERSION: &str = "2016-11-15";
const EC2_XMLNS: &str = "http://ec2.amazonaws.com/doc/2016-11-15/";
const ICE: &str = "InsufficientInstanceCapacity";

/// A running proxy. Dropping it stops the server and closes its connections.
pub struct Proxy {
    addr: SocketAddr,
    state: Arc<State>,
    server: JoinHandle<()>,
}

/// One injected failure, matched against each request that reaches the proxy.
#[derive(Clone, Debug, PartialEq)]
pub struct Fault {
    /// `"CreateFleet"` matches that operation in any service, `"ec2:CreateFleet"` only in EC2;
    /// `None` matches every call.
    pub operation: Option<String>,
    /// What the client experiences.
    pub kind: FaultKind,
    /// Chance that a matching call is hit, drawn from the seeded RNG when below 1.0.
    pub probability: f64,
    /// How many more calls this fault may hit; `None` is unlimited.
    pub remaining: Option<u32>,
}

/// The failure a [`Fault`] injects.
#[derive(Clone, Debug, PartialEq)]
pub enum FaultKind {
    /// The service's own throttling error: EC2 `RequestLimitExceeded` (503), Query services
    /// `Throttling` (400), JSON services `ThrottlingException` (400).
    Throttle,
    /// A plain internal error (EC2 `InternalError`, others `InternalFailure`).
    Http500,
    /// A plain unavailable error (EC2 `Unavailable`, others `ServiceUnavailable`).
    Http503,
    /// Sleep, then forward as usual.
    Delay(Duration),
    /// Forward, wait for moto to finish the call, then close the connection without answering:
    /// the call happened but the client sees a connection error.
    DropAfterForward,
}

impl Fault {
    /// A fault that hits every matching call.
    pub fn always(operation: &str, kind: FaultKind) -> Fault {
        Fault {
            operation: Some(operation.to_owned()),
            kind,
            probability: 1.0,
            remaining: None,
        }
    }

    /// A fault that hits the next matching call only.
    pub fn once(operation: &str, kind: FaultKind) -> Fault {
        Fault::always(operation, kind).times(1)
    }

    /// Limits the fault to `n` hits.
    pub fn times(mut self, n: u32) -> Fault {
        self.remaining = Some(n);
        self
    }

    /// Hits a matching call with probability `p`, decided by the proxy's seeded RNG.
    pub fn with_probability(mut self, p: f64) -> Fault {
        self.probability = p;
        self
    }

    fn matches(&self, call: &Call) -> bool {
        match &self.operation {
            None => true,
            Some(op) if op.contains(':') => *op == call.key(),
            Some(op) => *op == call.operation,
        }
    }
}

impl Proxy {
    /// Starts a proxy on a free loopback port in front of `upstream`, a moto base URL such as
    /// the value of `AWS_ENDPOINT_URL`. Must be called inside a Tokio runtime.
    pub async fn start(upstream: &str) -> std::io::Result<Proxy> {
        let upstream = upstream.trim_end_matches('/');
        if !upstream.starts_with("http://") {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("upstream must be a plain http:// URL, got {upstream:?}"),
            ));
        }
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            upstream: upstream.to_owned(),
            client: Client::builder(TokioExecutor::new()).build_http(),
            scenario: Mutex::new(Scenario::default()),
            calls: Mutex::new(BTreeMap::new()),
            busy: Mutex::new(BTreeMap::new()),
            subnet_azs: Mutex::new(HashMap::new()),
            ids: AtomicU64::new(1),
            membership: tokio::sync::Mutex::new(()),
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

    /// Forgets all counted calls and their times.
    pub fn reset_calls(&self) {
        self.state.calls().clear();
        self.state.busy().clear();
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
    ids: AtomicU64,
    /// Serializes AttachInstances and DetachInstances: membership check and change as one
    /// step, as in AWS.
    membership: tokio::sync::Mutex<()>,
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

    fn next_id(&self) -> u64 {
        self.ids.fetch_add(1, Ordering::Relaxed)
    }

    fn request_id(&self) -> String {
        format!("0000prox-0000-4000-8000-{:012x}", self.next_id())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Pool {
    instance_type: String,
    az: String,
}

impl Pool {
    fn new(instance_type: &str, az: &str) -> Pool {
        Pool {
            instance_type: instance_type.to_owned(),
            az: az.to_owned(),
        }
    }
}

#[derive(Default)]
struct Scenario {
    market_only: bool,
    prices: HashMap<Pool, f64>,
    default_price: Option<f64>,
    no_capacity: HashSet<Pool>,
    faults: Vec<Fault>,
    rng: XorShift,
}

impl Scenario {
    fn price(&self, instance_type: &str, az: &str) -> Option<f64> {
        self.prices
            .get(&Pool::new(instance_type, az))
            .copied()
            .or(self.default_price)
    }

    fn is_ice(&self, instance_type: Option<&str>, az: Option<&str>) -> bool {
        let hit = |pattern: &str, value: Option<&str>| pattern == "*" || Some(pattern) == value;
        self.no_capacity
            .iter()
            .any(|p| hit(&p.instance_type, instance_type) && hit(&p.az, az))
    }

    fn pick_fault(&mut self, call: &Call) -> Option<FaultKind> {
        let mut picked = None;
        for (i, fault) in self.faults.iter_mut().enumerate() {
            if !fault.matches(call) || fault.remaining == Some(0) {
                continue;
            }
            // Only draw for real coin flips, so certain faults never shift a random schedule.
            let hit = match fault.probability {
                p if p >= 1.0 => true,
                p if p <= 0.0 => false,
                p => self.rng.next_f64() < p,
            };
            if hit {
                if let Some(n) = &mut fault.remaining {
                    *n -= 1;
                }
                picked = Some((i, fault.kind.clone()));
                break;
            }
        }
        let (i, kind) = picked?;
        if self.faults[i].remaining == Some(0) {
            self.faults.remove(i);
        }
        Some(kind)
    }
}

/// xorshift64*: enough randomness for fault schedules, and no dependency.
struct XorShift(u64);

impl XorShift {
    fn seeded(seed: u64) -> XorShift {
        // splitmix64 spreads nearby seeds apart and never yields the all-zero dead state.
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        XorShift((z ^ (z >> 31)) | 1)
    }

    fn next_f64(&mut self) -> f64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }
}

impl Default for XorShift {
    fn default() -> Self {
        XorShift::seeded(0)
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Protocol {
    /// EC2's own query dialect, with `<Response><Errors>` errors.
    Ec2,
    /// awsQuery (Auto Scaling), with `<ErrorResponse>` errors.
    Query,
    /// awsJson (EventBridge, SQS, Pricing), selected by `X-Amz-Target`.
    Json,
}

/// What a request is, as far as counting, faults and the market care.
struct Call {
    service: String,
    region: String,
    operation: String,
    protocol: Protocol,
    /// The form body of Query protocols; empty for JSON.
    form: Form,
}

impl Call {
    fn identify(parts: &Parts, body: &[u8]) -> Call {
        // SigV4: "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/ec2/aws4_request, ..."
        let scope: Vec<&str> = header_str(&parts.headers, header::AUTHORIZATION)
            .and_then(|auth| auth.split("Credential=").nth(1))
            .and_then(|c| c.split([',', ' ']).next())
            .map(|c| c.split('/').collect())
            .unwrap_or_default();
        let (region, service) = match scope.as_slice() {
            [_, _, region, service, ..] => (region.to_string(), service.to_string()),
            _ => (String::new(), "unknown".to_owned()),
        };
        if let Some(target) = header_str(&parts.headers, "x-amz-target") {
            let operation = target.rsplit('.').next().unwrap_or(target).to_owned();
            return Call {
                service,
                region,
                operation,
                protocol: Protocol::Json,
                form: Form::default(),
            };
        }
        let mut form = Form::parse(body);
        if form.get("Action").is_none() {
            if let Some(query) = parts.uri.query() {
                form = Form::parse(query.as_bytes());
            }
        }
        let operation = form.get("Action").unwrap_or_else(|| "Unknown".to_owned());
        let protocol = if service == "ec2" {
            Protocol::Ec2
        } else {
            Protocol::Query
        };
        Call {
            service,
            region,
            operation,
            protocol,
            form,
        }
    }

    fn key(&self) -> String {
        format!("{}:{}", self.service, self.operation)
    }
}

fn header_str<K: header::AsHeaderName>(headers: &HeaderMap, name: K) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// A form body as ordered pairs. Values stay percent-encoded so untouched fields are forwarded
/// byte for byte; keys of AWS Query requests are plain ASCII paths.
#[derive(Clone, Default)]
struct Form(Vec<(String, String)>);

impl Form {
    fn parse(body: &[u8]) -> Form {
        let body = String::from_utf8_lossy(body);
        Form(
            body.split('&')
                .filter(|pair| !pair.is_empty())
                .map(|pair| {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    (percent_decode(k), v.to_owned())
                })
                .collect(),
        )
    }

    fn get(&self, key: &str) -> Option<String> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| percent_decode(v))
    }

    fn encode(&self) -> Bytes {
        let pairs: Vec<String> = self.0.iter().map(|(k, v)| format!("{k}={v}")).collect();
        Bytes::from(pairs.join("&"))
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
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
    let call = Call::identify(&parts, &body);
    *state.calls().entry(call.key()).or_default() += 1;

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

    let started = std::time::Instant::now();
    let response = match (call.service.as_str(), call.operation.as_str()) {
        ("ec2", "DescribeSpotPriceHistory") if state.scenario().market_only => {
            let xml = scenario_spot_prices(&state.scenario().prices);
            xml_response(StatusCode::OK, xml)
        }
        ("autoscaling", "DescribeInstanceRefreshes") if state.scenario().market_only => xml_response(
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
        ("ec2", "CreateFleet") => create_fleet(&state, &call, &parts, body).await,
        ("autoscaling", "DetachInstances") => detach_instances(&state, &call, &parts, body).await,
        ("autoscaling", "AttachInstances") => attach_instances(&state, &call, &parts, body).await,
        ("ec2", "RunInstances") => run_instances(&state, &call, &parts, body).await,
        _ => forward(&state, &parts, body).await,
    };
    *state.busy().entry(call.key()).or_default() += started.elapsed();

    if fault == Some(FaultKind::DropAfterForward) {
        return Err(DropConnection);
    }
    Ok(response.map(Full::new))
}

const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
];

/// Sends the request on to moto and reads the whole answer, since the market rewrites bodies.
async fn forward(state: &State, parts: &Parts, body: Bytes) -> Reply {
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut req = Request::builder()
        .method(parts.method.clone())
        .uri(format!("{}{}", state.upstream, path));
    for (name, value) in &parts.headers {
        // Length is recomputed from the (possibly rewritten) body.
        if !HOP_BY_HOP.contains(&name.as_str()) && name != header::CONTENT_LENGTH {
            req = req.header(name, value);
        }
    }
    let req = match req.body(Full::new(body)) {
        Ok(req) => req,
        Err(e) => return bad_gateway(format!("building upstream request: {e}")),
    };
    let response = match state.client.request(req).await {
        Ok(response) => response,
        Err(e) => return bad_gateway(format!("upstream {}: {e}", state.upstream)),
    };
    let (mut parts, body) = response.into_parts();
    let body = match body.collect().await {
        Ok(body) => body.to_bytes(),
        Err(e) => return bad_gateway(format!("reading upstream body: {e}")),
    };
    for name in HOP_BY_HOP.iter().chain(&["content-length", "x-amz-crc32"]) {
        parts.headers.remove(*name);
    }
    Response::from_parts(parts, body)
}

fn bad_gateway(message: String) -> Reply {
    let mut response = Response::new(Bytes::from(message));
    *response.status_mut() = StatusCode::BAD_GATEWAY;
    response
}

fn xml_response(status: StatusCode, xml: String) -> Reply {
    let mut response = Response::new(Bytes::from(xml));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/xml"));
    response
}

/// Replaces moto's constant `<spotPrice>` in each pool that has a scenario price.
fn rewrite_spot_prices(state: &State, response: Reply) -> Reply {
    if response.status() != StatusCode::OK {
        return response;
    }
    let (parts, body) = response.into_parts();
    let scenario = state.scenario();
    let xml = with_spot_prices(&String::from_utf8_lossy(&body), |ty, az| scenario.price(ty, az));
    Response::from_parts(parts, Bytes::from(xml))
}

/// A whole `DescribeSpotPriceHistory` answer from the scenario's prices, stamped now.
fn scenario_spot_prices(prices: &HashMap<Pool, f64>) -> String {
    let now = spotswap_core::Timestamp::from_unix(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64),
    )
    .to_rfc3339();
    let mut pools: Vec<_> = prices.iter().collect();
    pools.sort_by(|a, b| a.0.cmp(b.0));
    let items: String = pools
        .into_iter()
        .map(|(pool, price)| {
            format!(
                "<item><instanceType>{}</instanceType><productDescription>Linux/UNIX</productDescription>\
                 <spotPrice>{price}</spotPrice><timestamp>{now}</timestamp>\
                 <availabilityZone>{}</availabilityZone></item>",
                xml_escape(&pool.instance_type),
                xml_escape(&pool.az)
            )
        })
        .collect();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<DescribeSpotPriceHistoryResponse xmlns=\"{EC2_XMLNS}\">\
         <requestId>proxy-market</requestId><spotPriceHistorySet>{items}</spotPriceHistorySet>\
         </DescribeSpotPriceHistoryResponse>"
    )
}

fn with_spot_prices(xml: &str, price: impl Fn(&str, &str) -> Option<f64>) -> String {
    // History items are flat, so each <item>…</item> is one price record.
    let mut out = String::with_capacity(xml.len());
    let mut rest = xml;
    while let Some(start) = rest.find("<item>") {
        let Some(len) = rest[start..].find("</item>") else {
            break;
        };
        let item = &rest[start..start + len];
        out.push_str(&rest[..start]);
        let price = tag_text(item, "instanceType")
            .zip(tag_text(item, "availabilityZone"))
            .and_then(|(ty, az)| price(ty, az));
        match price {
            Some(price) => out.push_str(&replace_tag_text(item, "spotPrice", &price.to_string())),
            None => out.push_str(item),
        }
        rest = &rest[start + len..];
    }
    out.push_str(rest);
    out
}

fn tag_text<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let len = xml[start..].find(&format!("</{tag}>"))?;
    Some(&xml[start..start + len])
}

fn replace_tag_text(xml: &str, tag: &str, text: &str) -> String {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    match (xml.find(&open), xml.find(&close)) {
        (Some(start), Some(end)) if start < end => {
            format!("{}{open}{text}{}", &xml[..start], &xml[end..])
        }
        _ => xml.to_owned(),
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// One instance of an Auto Scaling membership call (`InstanceIds.member.N`) and where moto's
/// DescribeAutoScalingInstances places it: `(group, lifecycle state)`, `None` in no group.
type Placement = (String, Option<(String, String)>);

/// The instances named by an AttachInstances or DetachInstances call, each with its placement.
async fn placements(state: &State, call: &Call, parts: &Parts) -> Result<Vec<Placement>, String> {
    let ids: Vec<String> = (1..=20)
        .map_while(|n| call.form.get(&format!("InstanceIds.member.{n}")))
        .collect();
    let mut query = String::from("Action=DescribeAutoScalingInstances&Version=2011-01-01");
    for (n, id) in ids.iter().enumerate() {
        query.push_str(&format!("&InstanceIds.member.{}={}", n + 1, percent_encode(id)));
    }
    let xml = ask_upstream(state, parts.headers.get(header::AUTHORIZATION), query).await?;
    Ok(ids
        .into_iter()
        .map(|id| {
            let placed = xml
                .split("<member>")
                .find(|m| tag_text(m, "InstanceId") == Some(id.as_str()))
                .and_then(|m| {
                    let group = tag_text(m, "AutoScalingGroupName")?.to_string();
                    Some((
                        group,
                        tag_text(m, "LifecycleState").unwrap_or_default().to_string(),
                    ))
                });
            (id, placed)
        })
        .collect())
}

/// DetachInstances as AWS does it: every instance must be InService or Standby in the named
/// group, or the call is a `ValidationError` that changes nothing. moto detaches what it finds
/// and decrements desired by the number of ids asked for, found or not: two concurrent
/// detaches of one instance with `ShouldDecrementDesiredCapacity` would take two off.
async fn detach_instances(state: &State, call: &Call, parts: &Parts, body: Bytes) -> Reply {
    let _one_at_a_time = state.membership.lock().await;
    let group = call.form.get("AutoScalingGroupName").unwrap_or_default();
    let placements = match placements(state, call, parts).await {
        Ok(p) => p,
        Err(e) => return bad_gateway(e),
    };
    for (id, placed) in &placements {
        let detachable = placed
            .as_ref()
            .is_some_and(|(g, s)| *g == group && matches!(s.as_str(), "InService" | "Standby"));
        if !detachable {
            return errors::validation(
                state,
                &format!("The instance {id} is not part of Auto Scaling group {group} or is not InService or Standby."),
            );
        }
    }
    forward(state, parts, body).await
}

/// AttachInstances as AWS does it: an instance already in a group, or a desired capacity that
/// would pass MaxSize, is a `ValidationError` that changes nothing. moto attaches an instance
/// twice (desired +2, a duplicate member) and ignores MaxSize.
async fn attach_instances(state: &State, call: &Call, parts: &Parts, body: Bytes) -> Reply {
    let _one_at_a_time = state.membership.lock().await;
    let group = call.form.get("AutoScalingGroupName").unwrap_or_default();
    let placements = match placements(state, call, parts).await {
        Ok(p) => p,
        Err(e) => return bad_gateway(e),
    };
    for (id, placed) in &placements {
        if let Some((other, _)) = placed {
            return errors::validation(
                state,
                &format!("The instance {id} is already part of Auto Scaling group {other}."),
            );
        }
    }
    let query = format!(
        "Action=DescribeAutoScalingGroups&Version=2011-01-01&AutoScalingGroupNames.member.1={}",
        percent_encode(&group)
    );
    let xml = match ask_upstream(state, parts.headers.get(header::AUTHORIZATION), query).await {
        Ok(xml) => xml,
        Err(e) => return bad_gateway(e),
    };
    let number = |tag: &str| tag_text(&xml, tag).and_then(|v| v.parse::<usize>().ok());
    if let (Some(min), Some(max), Some(desired)) =
        (number("MinSize"), number("MaxSize"), number("DesiredCapacity"))
    {
        if desired + placements.len() > max {
            return errors::validation(
                state,
                &format!(
                    "AutoScalingGroup {group} has min-size={min}, max-size={max}, and desired-size={desired}. \
                     To attach {} instance(s), please update the AutoScalingGroup sizes appropriately.",
                    placements.len()
                ),
            );
        }
    }
    forward(state, parts, body).await
}

/// Asks moto a Query-protocol question of the proxy's own (`form` is the whole body) and
/// returns the answer's text when it is a 200. moto picks the region from the SigV4 scope and
/// ignores the signature, so the client's own Authorization header serves.
async fn ask_upstream(state: &State, auth: Option<&HeaderValue>, form: String) -> Result<String, String> {
    let mut req = Request::builder()
        .method(Method::POST)
        .uri(format!("{}/", state.upstream))
        .header(
            header::CONTENT_TYPE,
            "application/x-www-form-urlencoded; charset=utf-8",
        );
    if let Some(auth) = auth {
        req = req.header(header::AUTHORIZATION, auth);
    }
    let req = req
        .body(Full::new(Bytes::from(form)))
        .map_err(|e| format!("building upstream request: {e}"))?;
    let response = state
        .client
        .request(req)
        .await
        .map_err(|e| format!("upstream {}: {e}", state.upstream))?;
    if response.status() != StatusCode::OK {
        return Err(format!(
            "upstream {} answered {}",
            state.upstream,
            response.status()
        ));
    }
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("reading upstream body: {e}"))?;
    Ok(String::from_utf8_lossy(&body.to_bytes()).into_owned())
}

/// Finds the AZ of each subnet by asking moto, so a pool named by subnet can be judged.
async fn subnet_azs(
    state: &State,
    region: &str,
    auth: Option<&HeaderValue>,
    subnets: impl IntoIterator<Item = String>,
) -> HashMap<String, String> {
    let mut found = HashMap::new();
    for subnet in subnets {
        let key = (region.to_owned(), subnet.clone());
        let cached = state
            .subnet_azs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .cloned();
        if let Some(az) = cached {
            found.insert(subnet, az);
            continue;
        }
        let body = format!(
            "Action=DescribeSubnets&Version={EC2_API_VERSION}&SubnetId.1={}",
            percent_encode(&subnet)
        );
        let Ok(xml) = ask_upstream(state, auth, body).await else {
            continue;
        };
        if let Some(az) = tag_text(&xml, "availabilityZone") {
            state
                .subnet_azs
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(key, az.to_owned());
            found.insert(subnet, az.to_owned());
        }
    }
    found
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            b => format!("%{b:02X}"),
        })
        .collect()
}

/// Splits `"3.Rest"` into `(3, "Rest")`.
fn split_index(s: &str) -> Option<(u32, &str)> {
    let (n, rest) = s.split_once('.')?;
    Some((n.parse().ok()?, rest))
}

const CONFIGS: &str = "LaunchTemplateConfigs.";

/// One `LaunchTemplateConfigs.N.Overrides.M` entry of a CreateFleet request.
struct Override {
    config: u32,
    index: u32,
    /// Scalar fields only (`InstanceType`, `SubnetId`, ...), decoded, in request order.
    fields: Vec<(String, String)>,
    az: Option<String>,
}

impl Override {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn fleet_overrides(form: &Form) -> Vec<Override> {
    let mut overrides: BTreeMap<(u32, u32), Vec<(String, String)>> = BTreeMap::new();
    for (key, value) in &form.0 {
        let Some((config, rest)) = key.strip_prefix(CONFIGS).and_then(split_index) else {
            continue;
        };
        let Some((index, field)) = rest.strip_prefix("Overrides.").and_then(split_index) else {
            continue;
        };
        let entry = overrides.entry((config, index)).or_default();
        if !field.contains('.') {
            entry.push((field.to_owned(), percent_decode(value)));
        }
    }
    overrides
        .into_iter()
        .map(|((config, index), fields)| Override {
            config,
            index,
            fields,
            az: None,
        })
        .collect()
}

/// Drops the removed overrides, and configs left without any, then renumbers both from 1 as
/// the Query protocol requires.
fn without_overrides(form: &Form, removed: &[Override], kept: &[Override]) -> Form {
    let removed: HashSet<(u32, u32)> = removed.iter().map(|o| (o.config, o.index)).collect();
    let emptied: HashSet<u32> = removed
        .iter()
        .map(|&(c, _)| c)
        .filter(|c| !kept.iter().any(|o| o.config == *c))
        .collect();
    // Configs without overrides of their own stay: nothing in them was judged.
    let configs: Vec<u32> = form
        .0
        .iter()
        .filter_map(|(k, _)| k.strip_prefix(CONFIGS).and_then(split_index))
        .map(|(c, _)| c)
        .filter(|c| !emptied.contains(c))
        .collect::<BTreeSet<u32>>()
        .into_iter()
        .collect();
    let config_number = |c: u32| configs.iter().position(|&k| k == c).map(|i| i + 1);
    let override_number = |c: u32, m: u32| {
        kept.iter()
            .filter(|o| o.config == c)
            .position(|o| o.index == m)
            .map(|i| i + 1)
    };
    let mut out = Vec::with_capacity(form.0.len());
    for (key, value) in &form.0 {
        let Some((config, rest)) = key.strip_prefix(CONFIGS).and_then(split_index) else {
            out.push((key.clone(), value.clone()));
            continue;
        };
        let Some(new_config) = config_number(config) else {
            // Every override of this config was out of capacity; keeping the config would let
            // moto launch the template's defaults.
            continue;
        };
        let key = match rest.strip_prefix("Overrides.").and_then(split_index) {
            Some((m, _)) if removed.contains(&(config, m)) => continue,
            Some((m, field)) => match override_number(config, m) {
                Some(new_m) => format!("{CONFIGS}{new_config}.Overrides.{new_m}.{field}"),
                None => continue,
            },
            None => format!("{CONFIGS}{new_config}.{rest}"),
        };
        out.push((key, value.clone()));
    }
    Form(out)
}

fn fleet_error_items(form: &Form, removed: &[Override], lifecycle: &str) -> String {
    let mut xml = String::new();
    for o in removed {
        let spec_prefix = format!("{CONFIGS}{}.LaunchTemplateSpecification.", o.config);
        let mut spec = String::new();
        for (key, value) in &form.0 {
            if let Some(field) = key.strip_prefix(&spec_prefix) {
                if !field.contains('.') {
                    push_element(&mut spec, field, &percent_decode(value));
                }
            }
        }
        let mut overrides = String::new();
        for (field, value) in &o.fields {
            push_element(&mut overrides, field, value);
        }
        let ty = o.field("InstanceType").unwrap_or("the requested");
        let az = o.az.as_deref().unwrap_or("the requested Availability Zone");
        let message = if lifecycle == "spot" {
            "There is no Spot capacity available that matches your request.".to_owned()
        } else {
            format!("We currently do not have sufficient {ty} capacity in {az}.")
        };
        xml.push_str(&format!(
            "<item><launchTemplateAndOverrides><launchTemplateSpecification>{spec}\
             </launchTemplateSpecification><overrides>{overrides}</overrides>\
             </launchTemplateAndOverrides><lifecycle>{lifecycle}</lifecycle>\
             <errorCode>{ICE}</errorCode><errorMessage>{}</errorMessage></item>",
            xml_escape(&message)
        ));
    }
    xml
}

/// `InstanceType` → `<instanceType>`: EC2 responses use the request field names, camel-cased.
fn push_element(xml: &mut String, field: &str, value: &str) {
    let mut chars = field.chars();
    let Some(first) = chars.next() else { return };
    let name = format!("{}{}", first.to_ascii_lowercase(), chars.as_str());
    xml.push_str(&format!("<{name}>{}</{name}>", xml_escape(value)));
}

/// CreateFleet `instant` reports capacity shortages per pool inside the response's `errorSet`
/// rather than failing, so out-of-capacity overrides are removed before moto sees them and
/// reported as errors afterwards.
async fn create_fleet(state: &State, call: &Call, parts: &Parts, body: Bytes) -> Reply {
    let form = &call.form;
    if form.get("Type").as_deref() != Some("instant") || state.scenario().no_capacity.is_empty() {
        return forward(state, parts, body).await;
    }
    let mut overrides = fleet_overrides(form);
    let subnets: HashSet<String> = overrides
        .iter()
        .filter(|o| o.field("AvailabilityZone").is_none())
        .filter_map(|o| o.field("SubnetId").map(str::to_owned))
        .collect();
    let subnet_az = subnet_azs(
        state,
        &call.region,
        parts.headers.get(header::AUTHORIZATION),
        subnets,
    )
    .await;
    for o in &mut overrides {
        o.az = o
            .field("AvailabilityZone")
            .map(str::to_owned)
            .or_else(|| o.field("SubnetId").and_then(|s| subnet_az.get(s).cloned()));
    }
    let (removed, kept): (Vec<Override>, Vec<Override>) = {
        let scenario = state.scenario();
        overrides
            .into_iter()
            .partition(|o| scenario.is_ice(o.field("InstanceType"), o.az.as_deref()))
    };
    if removed.is_empty() {
        return forward(state, parts, body).await;
    }
    let lifecycle = match form
        .get("TargetCapacitySpecification.DefaultTargetCapacityType")
        .as_deref()
    {
        Some("on-demand") => "on-demand",
        _ => "spot",
    };
    let errors = fleet_error_items(form, &removed, lifecycle);
    let remaining = without_overrides(form, &removed, &kept);

    if !remaining.0.iter().any(|(k, _)| k.starts_with(CONFIGS)) {
        // Nothing left to launch: answer as AWS does, a fleet with errors and no instances.
        let fleet_id = format!("fleet-0000prox-0000-4000-8000-{:012x}", state.next_id());
        return xml_response(
            StatusCode::OK,
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CreateFleetResponse xmlns=\"{EC2_XMLNS}\">\
                 <requestId>{}</requestId><fleetId>{fleet_id}</fleetId><errorSet>{errors}</errorSet>\
                 <fleetInstanceSet/></CreateFleetResponse>",
                state.request_id()
            ),
        );
    }

    let response = forward(state, parts, remaining.encode()).await;
    if response.status() != StatusCode::OK {
        return response;
    }
    let (parts, body) = response.into_parts();
    let xml = String::from_utf8_lossy(&body).into_owned();
    let xml = if let Some(at) = xml.find("<errorSet>") {
        let at = at + "<errorSet>".len();
        format!("{}{errors}{}", &xml[..at], &xml[at..])
    } else if xml.contains("<errorSet/>") {
        xml.replacen("<errorSet/>", &format!("<errorSet>{errors}</errorSet>"), 1)
    } else if let Some(at) = xml.find("</fleetId>") {
        let at = at + "</fleetId>".len();
        format!("{}<errorSet>{errors}</errorSet>{}", &xml[..at], &xml[at..])
    } else {
        xml.replacen(
            "</CreateFleetResponse>",
            &format!("<errorSet>{errors}</errorSet></CreateFleetResponse>"),
            1,
        )
    };
    Response::from_parts(parts, Bytes::from(xml))
}

/// RunInstances into a pool without capacity fails outright, as AWS does: HTTP 500 with
/// `InsufficientInstanceCapacity` (a server error, which the SDK's standard retry retries).
async fn run_instances(state: &State, call: &Call, parts: &Parts, body: Bytes) -> Reply {
    let form = &call.form;
    if state.scenario().no_capacity.is_empty() {
        return forward(state, parts, body).await;
    }
    let instance_type = form.get("InstanceType");
    let mut az = form.get("Placement.AvailabilityZone");
    if az.is_none() {
        if let Some(subnet) = form
            .get("SubnetId")
            .or_else(|| form.get("NetworkInterface.1.SubnetId"))
        {
            let auth = parts.headers.get(header::AUTHORIZATION);
            az = subnet_azs(state, &call.region, auth, [subnet.clone()])
                .await
                .remove(&subnet);
        }
    }
    let ice = state.scenario().is_ice(instance_type.as_deref(), az.as_deref());
    if !ice {
        return forward(state, parts, body).await;
    }
    let ty = instance_type.as_deref().unwrap_or("the requested");
    let message = match az.as_deref() {
        Some(az) => format!(
            "We currently do not have sufficient {ty} capacity in the Availability Zone you \
             requested ({az}). Our system will be working on provisioning additional capacity."
        ),
        None => format!("We currently do not have sufficient {ty} capacity."),
    };
    errors::ec2(state, StatusCode::INTERNAL_SERVER_ERROR, ICE, &message)
}

/// Error bodies in the shape each protocol's SDK deserializer expects.
mod errors {
    use super::*;

    pub(super) fn throttle(state: &State, call: &Call) -> Reply {
        match call.protocol {
            // EC2 throttles with a 503, unlike the Query services' 400.
            Protocol::Ec2 => ec2(
                state,
                StatusCode::SERVICE_UNAVAILABLE,
                "RequestLimitExceeded",
                "Request limit exceeded.",
            ),
            Protocol::Query => query(
                state,
                StatusCode::BAD_REQUEST,
                "Sender",
                "Throttling",
                "Rate exceeded",
            ),
            Protocol::Json => json(StatusCode::BAD_REQUEST, "ThrottlingException", "Rate exceeded"),
        }
    }

    pub(super) fn internal(state: &State, call: &Call) -> Reply {
        let status = StatusCode::INTERNAL_SERVER_ERROR;
        match call.protocol {
            Protocol::Ec2 => ec2(state, status, "InternalError", "An internal error has occurred."),
            Protocol::Query => query(state, status, "Receiver", "InternalFailure", "Internal failure."),
            Protocol::Json => json(status, "InternalFailure", "Internal failure."),
        }
    }

    pub(super) fn unavailable(state: &State, call: &Call) -> Reply {
        let status = StatusCode::SERVICE_UNAVAILABLE;
        let message = "The server is overloaded and can't handle the request.";
        match call.protocol {
            Protocol::Ec2 => ec2(state, status, "Unavailable", message),
            Protocol::Query => query(state, status, "Receiver", "ServiceUnavailable", message),
            Protocol::Json => json(status, "ServiceUnavailable", message),
        }
    }

    pub(super) fn ec2(state: &State, status: StatusCode, code: &str, message: &str) -> Reply {
        xml_response(
            status,
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{code}</Code>\
                 <Message>{}</Message></Error></Errors><RequestID>{}</RequestID></Response>",
                xml_escape(message),
                state.request_id()
            ),
        )
    }

    /// A Query-protocol `ValidationError` (400), as Auto Scaling answers an invalid request.
    pub(super) fn validation(state: &State, message: &str) -> Reply {
        query(
            state,
            StatusCode::BAD_REQUEST,
            "Sender",
            "ValidationError",
            message,
        )
    }

    fn query(state: &State, status: StatusCode, kind: &str, code: &str, message: &str) -> Reply {
        xml_response(
            status,
            format!(
                "<ErrorResponse><Error><Type>{kind}</Type><Code>{code}</Code><Message>{}</Message>\
                 </Error><RequestId>{}</RequestId></ErrorResponse>",
                xml_escape(message),
                state.request_id()
            ),
        )
    }

    fn json(status: StatusCode, code: &str, message: &str) -> Reply {
        let body = format!(r#"{{"__type":"{code}","message":"{message}"}}"#);
        let mut response = Response::new(Bytes::from(body));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-amz-json-1.0"),
        );
        if let Ok(code) = HeaderValue::from_str(code) {
            headers.insert(HeaderName::from_static("x-amzn-errortype"), code);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removing_overrides_drops_emptied_configs_keeps_unjudged_ones_and_renumbers() {
        let form = Form::parse(
            b"Action=CreateFleet&Type=instant\
              &LaunchTemplateConfigs.1.LaunchTemplateSpecification.LaunchTemplateName=a\
              &LaunchTemplateConfigs.1.Overrides.1.InstanceType=m5.large\
              &LaunchTemplateConfigs.2.LaunchTemplateSpecification.LaunchTemplateName=b\
              &LaunchTemplateConfigs.2.Overrides.1.InstanceType=m5.large\
              &LaunchTemplateConfigs.2.Overrides.2.InstanceType=c5.large\
              &LaunchTemplateConfigs.2.Overrides.2.SubnetId=subnet-1\
              &LaunchTemplateConfigs.3.LaunchTemplateSpecification.LaunchTemplateName=c\
              &TargetCapacitySpecification.TotalTargetCapacity=1",
        );
        let (removed, kept): (Vec<_>, Vec<_>) = fleet_overrides(&form)
            .into_iter()
            .partition(|o| o.field("InstanceType") == Some("m5.large"));

        let out = without_overrides(&form, &removed, &kept).encode();

        assert_eq!(
            out,
            "Action=CreateFleet&Type=instant\
             &LaunchTemplateConfigs.1.LaunchTemplateSpecification.LaunchTemplateName=b\
             &LaunchTemplateConfigs.1.Overrides.1.InstanceType=c5.large\
             &LaunchTemplateConfigs.1.Overrides.1.SubnetId=subnet-1\
             &LaunchTemplateConfigs.2.LaunchTemplateSpecification.LaunchTemplateName=c\
             &TargetCapacitySpecification.TotalTargetCapacity=1"
        );
    }

    #[test]
    fn error_items_echo_the_template_and_override() {
        let form = Form::parse(
            b"LaunchTemplateConfigs.1.LaunchTemplateSpecification.LaunchTemplateName=lt%2Da\
              &LaunchTemplateConfigs.1.LaunchTemplateSpecification.Version=%24Latest\
              &LaunchTemplateConfigs.1.Overrides.1.InstanceType=m5.large\
              &LaunchTemplateConfigs.1.Overrides.1.AvailabilityZone=us-east-1a",
        );
        let xml = fleet_error_items(&form, &fleet_overrides(&form), "spot");
        assert!(
            xml.contains(
                "<launchTemplateSpecification><launchTemplateName>lt-a</launchTemplateName>\
             <version>$Latest</version></launchTemplateSpecification>"
            ),
            "{xml}"
        );
        assert!(
            xml.contains(
                "<overrides><instanceType>m5.large</instanceType>\
             <availabilityZone>us-east-1a</availabilityZone></overrides>"
            ),
            "{xml}"
        );
        assert!(xml.contains("<errorCode>InsufficientInstanceCapacity</errorCode>"));
        assert!(xml.contains("<lifecycle>spot</lifecycle>"));
    }

    #[test]
    fn spot_prices_are_replaced_only_for_priced_pools() {
        let xml = "<spotPriceHistorySet>\
            <item><availabilityZone>a1</availabilityZone><instanceType>m5.large</instanceType>\
            <spotPrice>0.00001</spotPrice></item>\
            <item><availabilityZone>a2</availabilityZone><instanceType>m5.large</instanceType>\
            <spotPrice>0.00001</spotPrice></item></spotPriceHistorySet>";
        let out = with_spot_prices(xml, |ty, az| (ty, az).eq(&("m5.large", "a2")).then_some(0.25));
        assert_eq!(out.matches("<spotPrice>0.00001</spotPrice>").count(), 1);
        assert!(out.contains("<instanceType>m5.large</instanceType><spotPrice>0.25</spotPrice>"));
    }

    #[test]
    fn percent_decoding_handles_plus_escapes_and_stray_percents() {
        assert_eq!(percent_decode("a+b%2Fc%3d%"), "a b/c=%");
        assert_eq!(percent_decode(&percent_encode("x y/ü")), "x y/ü");
    }

    #[test]
    fn a_seed_fixes_the_fault_schedule_and_spent_faults_disappear() {
        let call = Call {
            service: "ec2".into(),
            region: "us-east-1".into(),
            operation: "CreateTags".into(),
            protocol: Protocol::Ec2,
            form: Form::default(),
        };
        let schedule = |seed| {
            let mut scenario = Scenario {
                rng: XorShift::seeded(seed),
                ..Scenario::default()
            };
            scenario
                .faults
                .push(Fault::always("ec2:CreateTags", FaultKind::Http500).with_probability(0.5));
            (0..32)
                .map(|_| scenario.pick_fault(&call).is_some())
                .collect::<Vec<_>>()
        };
        assert_eq!(schedule(3), schedule(3));
        assert_ne!(schedule(3), schedule(4));

        let mut scenario = Scenario::default();
        scenario
            .faults
            .push(Fault::once("CreateTags", FaultKind::Throttle));
        scenario
            .faults
            .push(Fault::always("autoscaling:CreateTags", FaultKind::Http503));
        assert_eq!(scenario.pick_fault(&call), Some(FaultKind::Throttle));
        assert_eq!(scenario.pick_fault(&call), None);
        assert_eq!(scenario.faults.len(), 1);
    }
}
