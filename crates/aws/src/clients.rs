//! [`Aws`]: the port to AWS, built once per process, with its pacing, its per-operation call
//! counter and the warm-container cache.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

use crate::cache::MarketCache;
use crate::port::{Page, Port, PortFuture};
use crate::sdk_port::SdkPort;
use crate::throttle::{ApiLimiter, ApiRates};
use crate::AdapterError;

/// Most calls kept in the ordered log: one invocation makes a few dozen.
const CALL_LOG_MAX: usize = 1000;

/// Counts every attempt sent, per `service:Operation`, and keeps the first
/// [`CALL_LOG_MAX`] in the order they were sent. Retries count: they are calls.
#[derive(Debug, Default, Clone)]
pub struct CallCounter {
    counts: Arc<Mutex<BTreeMap<String, u64>>>,
    log: Arc<Mutex<Vec<String>>>,
}

impl CallCounter {
    /// A snapshot of the counts.
    pub fn counts(&self) -> BTreeMap<String, u64> {
        self.counts.lock().map(|m| m.clone()).unwrap_or_default()
    }

    /// The calls in the order they were sent (how many came before a given one).
    pub fn log(&self) -> Vec<String> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Forget all counts and the log.
    pub fn reset(&self) {
        if let Ok(mut m) = self.counts.lock() {
            m.clear();
        }
        if let Ok(mut l) = self.log.lock() {
            l.clear();
        }
    }

    /// Count one call of `key` (`service:Operation`).
    pub(crate) fn add(&self, key: String) {
        if let Ok(mut l) = self.log.lock() {
            if l.len() < CALL_LOG_MAX {
                l.push(key.clone());
            }
        }
        if let Ok(mut m) = self.counts.lock() {
            *m.entry(key).or_default() += 1;
        }
    }
}

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "spotswap-call-counter"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        if let Some(meta) = cfg.load::<Metadata>() {
            // IAM's spelling: `autoscaling:`, not the SDK's "Auto Scaling".
            let service = match meta.service().to_ascii_lowercase().replace(' ', "") {
                s if s == "cloudwatchlogs" => "logs".to_string(),
                s => s,
            };
            self.add(format!("{service}:{}", meta.name()));
        }
        Ok(())
    }
}

/// The port to AWS, its pacing, its call counter and the warm-container cache. Cheap to
/// clone; clones share all four.
#[derive(Debug, Clone)]
pub struct Aws {
    port: Arc<dyn Port>,
    pub(crate) calls: CallCounter,
    pub(crate) cache: MarketCache,
    pub(crate) limiter: ApiLimiter,
    region: String,
}

impl Aws {
    /// Load the standard AWS configuration (environment, profile, `AWS_ENDPOINT_URL`, …),
    /// with an optional region override.
    pub async fn from_env(region: Option<String>) -> Self {
        Self::from_env_profile(region, None).await
    }

    /// [`Aws::from_env`] with a named profile of the shared config and credentials files
    /// (`--profile`), as the AWS CLI's `--profile` does.
    pub async fn from_env_profile(region: Option<String>, profile: Option<String>) -> Self {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(p) = profile {
            loader = loader.profile_name(p);
        }
        if let Some(r) = region {
            loader = loader.region(Region::new(r));
        }
        Self::from_conf(&loader.load().await)
    }

    /// The SDK port ([`SdkPort`]), every client built from one `SdkConfig`.
    pub fn from_conf(conf: &SdkConfig) -> Self {
        let calls = CallCounter::default();
        let port = SdkPort::new(conf, &calls);
        let region = conf.region().map(|r| r.to_string()).unwrap_or_default();
        Self::with_port(Arc::new(port), calls, region)
    }

    /// Any port: `calls` must be the counter the port counts its calls into, for
    /// [`Aws::api_calls`].
    pub fn with_port(port: Arc<dyn Port>, calls: CallCounter, region: impl Into<String>) -> Self {
        Self {
            port,
            calls,
            cache: MarketCache::default(),
            limiter: ApiLimiter::default(),
            region: region.into(),
        }
    }

    /// An adapter on an in-memory region ([`crate::fake::FakePort`]), for tests.
    #[cfg(any(test, feature = "fake"))]
    pub fn fake(fake: Arc<crate::fake::FakePort>) -> Self {
        let calls = fake.calls().clone();
        let region = fake.region().to_string();
        Self::with_port(fake, calls, region)
    }

    /// The port, for a call made through [`Aws::paced`].
    pub(crate) fn port(&self) -> &dyn Port {
        &*self.port
    }

    /// Take a token for `operation`, then make the call: `aws.paced(op::CREATE_TAGS,
    /// aws.port().tag_instances(..))`. Port futures are lazy, so nothing is sent before the
    /// token is taken.
    pub(crate) async fn paced<T>(
        &self,
        operation: &'static str,
        call: PortFuture<'_, T>,
    ) -> Result<T, AdapterError> {
        self.limiter.acquire(operation).await;
        call.await
    }

    /// Read every page: `page(token)` is one call, paced as `operation`, asked again with each
    /// `NextToken` until a page comes without one. Stops, as the SDK's paginators do, on an
    /// empty token or one equal to the last (a service that repeats it would loop forever).
    pub(crate) async fn each_page<'a, T>(
        &self,
        operation: &'static str,
        mut page: impl FnMut(Option<String>) -> PortFuture<'a, Page<T>>,
        mut each: impl FnMut(T),
    ) -> Result<(), AdapterError> {
        let mut token: Option<String> = None;
        loop {
            self.limiter.acquire(operation).await;
            let p = page(token.clone()).await?;
            p.items.into_iter().for_each(&mut each);
            match p.next {
                Some(next) if !next.is_empty() && token.as_deref() != Some(next.as_str()) => {
                    token = Some(next)
                }
                _ => return Ok(()),
            }
        }
    }

    /// Use `cache` as the warm-container cache: several clients in one process (the CLI's
    /// future multi-region runs, the test suite) then fetch instance-type specs once.
    pub fn with_cache(mut self, cache: MarketCache) -> Self {
        self.cache = cache;
        self
    }

    /// Pace calls at `rates` (`SPOTSWAP_API_RATES`) instead of the defaults.
    pub fn with_api_rates(mut self, rates: ApiRates) -> Self {
        self.limiter = ApiLimiter::new(rates);
        self
    }

    /// The client-side rates in force.
    pub fn api_rates(&self) -> ApiRates {
        self.limiter.rates()
    }

    /// The region the clients talk to.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// API calls made so far, per `service:Operation`.
    pub fn api_calls(&self) -> BTreeMap<String, u64> {
        self.calls.counts()
    }

    /// API calls made so far, in the order they were sent.
    pub fn api_call_log(&self) -> Vec<String> {
        self.calls.log()
    }

    /// Forget the call counts (at the start of each invocation).
    pub fn reset_api_calls(&self) {
        self.calls.reset();
    }
}
