//! The SDK clients, built once per process, with a per-operation call counter.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

use crate::cache::MarketCache;
use crate::throttle::{ApiLimiter, ApiRates};

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

    fn add(&self, key: String) {
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
            let service = meta.service().to_ascii_lowercase().replace(' ', "");
            self.add(format!("{service}:{}", meta.name()));
        }
        Ok(())
    }
}

/// The clients spotswap uses, and the warm-container cache. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Aws {
    pub(crate) ec2: aws_sdk_ec2::Client,
    pub(crate) asg: aws_sdk_autoscaling::Client,
    pub(crate) events: aws_sdk_eventbridge::Client,
    pub(crate) pricing: aws_sdk_pricing::Client,
    pub(crate) calls: CallCounter,
    pub(crate) cache: MarketCache,
    pub(crate) limiter: ApiLimiter,
    region: String,
}

impl Aws {
    /// Load the standard AWS configuration (environment, profile, `AWS_ENDPOINT_URL`, …),
    /// with an optional region override.
    pub async fn from_env(region: Option<String>) -> Self {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(r) = region {
            loader = loader.region(Region::new(r));
        }
        Self::from_conf(&loader.load().await)
    }

    /// Build every client from one `SdkConfig`.
    pub fn from_conf(conf: &SdkConfig) -> Self {
        let calls = CallCounter::default();
        let ec2 = aws_sdk_ec2::config::Builder::from(conf)
            .interceptor(calls.clone())
            .build();
        let asg = aws_sdk_autoscaling::config::Builder::from(conf)
            .interceptor(calls.clone())
            .build();
        let events = aws_sdk_eventbridge::config::Builder::from(conf)
            .interceptor(calls.clone())
            .build();
        // The Price List API is served from a few regions only; us-east-1 answers for all.
        // One attempt: prices are cached and have a fallback, a slow retry loop helps nobody.
        let pricing = aws_sdk_pricing::config::Builder::from(conf)
            .region(Region::new("us-east-1"))
            .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(1))
            .interceptor(calls.clone())
            .build();
        Self {
            ec2: aws_sdk_ec2::Client::from_conf(ec2),
            asg: aws_sdk_autoscaling::Client::from_conf(asg),
            events: aws_sdk_eventbridge::Client::from_conf(events),
            pricing: aws_sdk_pricing::Client::from_conf(pricing),
            calls,
            cache: MarketCache::default(),
            limiter: ApiLimiter::default(),
            region: conf.region().map(|r| r.to_string()).unwrap_or_default(),
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
