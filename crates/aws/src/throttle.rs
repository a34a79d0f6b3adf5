//! Client-side token buckets, one per API class, so a cycle paces itself at EC2's published
//! request rates instead of running into `RequestLimitExceeded` and leaning on retries.
//!
//! EC2 throttles per account and region with token buckets: a bucket holds up to `burst`
//! tokens, refills at `per_sec`, and each request takes one. Every call the adapter makes
//! first takes a token from its class's bucket here, waiting when the bucket is empty. The
//! defaults are the refill rates EC2 documents for its default buckets (RunInstances and
//! CreateFleet 2/s, other mutating actions 5/s, Describe actions 20/s) with small bursts, so
//! spotswap leaves room in the shared account buckets for everything else the account runs.
//! Auto Scaling publishes no rates; its classes use conservative ones. Accounts with raised
//! limits set `SPOTSWAP_API_RATES` (`class=rate/burst`, comma-separated).
//!
//! What this does not cover: the SDK's own retries of a throttled or failed attempt take no
//! token (they are rare, back off exponentially, and are bounded by the SDK's retry quota).

use std::fmt;
use std::sync::Arc;

use serde::Serialize;
use spotswap_core::ConfigError;
use tokio::sync::Mutex;
use tokio::time::{sleep, Duration, Instant};

use spotswap_core::ops::Bucket as ApiClass;

/// One bucket's refill rate and size.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Rate {
    /// Tokens added per second.
    pub per_sec: f64,
    /// Most tokens held.
    pub burst: f64,
}

/// The rate of every class. Serialized as its `SPOTSWAP_API_RATES` spelling.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ApiRates([Rate; 5]);

impl Serialize for ApiRates {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl Default for ApiRates {
    fn default() -> Self {
        let r = |per_sec, burst| Rate { per_sec, burst };
        // Order of ApiClass::ALL.
        Self([
            r(2.0, 5.0),
            r(5.0, 50.0),
            r(20.0, 100.0),
            r(10.0, 20.0),
            r(20.0, 40.0),
        ])
    }
}

impl ApiRates {
    /// The rate of `class`.
    pub fn get(&self, class: ApiClass) -> Rate {
        self.0[class as usize]
    }

    /// Parse `SPOTSWAP_API_RATES`: `class=rate/burst` pairs, comma-separated, over the defaults
    /// (`launch=4/10,ec2-mutating=10/100`). Rates and bursts must be positive.
    pub fn parse(key: &str, value: &str) -> Result<Self, ConfigError> {
        let mut rates = Self::default();
        let bad = |problem: String| ConfigError::InvalidValue {
            key: key.into(),
            value: value.into(),
            problem,
        };
        for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (name, spec) = item
                .split_once('=')
                .ok_or_else(|| bad(format!("`{item}`: expected class=rate/burst")))?;
            let class = ApiClass::from_name(name.trim()).ok_or_else(|| {
                let names: Vec<&str> = ApiClass::ALL.iter().map(|c| c.name()).collect();
                bad(format!(
                    "unknown class `{}` (one of {})",
                    name.trim(),
                    names.join(", ")
                ))
            })?;
            let (per_sec, burst) = spec
                .split_once('/')
                .ok_or_else(|| bad(format!("`{item}`: expected class=rate/burst")))?;
            let num = |s: &str| s.trim().parse::<f64>().ok().filter(|x| x.is_finite() && *x > 0.0);
            let (Some(per_sec), Some(burst)) = (num(per_sec), num(burst)) else {
                return Err(bad(format!("`{item}`: rate and burst must be positive numbers")));
            };
            if burst < 1.0 {
                return Err(bad(format!("`{item}`: burst must be at least 1")));
            }
            rates.0[class as usize] = Rate { per_sec, burst };
        }
        Ok(rates)
    }
}

impl fmt::Display for ApiRates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = ApiClass::ALL
            .iter()
            .map(|c| {
                let r = self.get(*c);
                format!("{}={}/{}", c.name(), r.per_sec, r.burst)
            })
            .collect();
        f.write_str(&parts.join(","))
    }
}

#[derive(Debug)]
struct Bucket {
    rate: Rate,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    /// Take a token, or say how long until one is there.
    fn take(&mut self, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate.per_sec).min(self.rate.burst);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / self.rate.per_sec))
        }
    }
}

/// The buckets of one process (shared by every clone of [`crate::Aws`]).
#[derive(Debug, Clone)]
pub(crate) struct ApiLimiter {
    buckets: Arc<[Mutex<Bucket>; 5]>,
    rates: ApiRates,
}

impl Default for ApiLimiter {
    fn default() -> Self {
        Self::new(ApiRates::default())
    }
}

impl ApiLimiter {
    /// Full buckets at `rates`.
    pub(crate) fn new(rates: ApiRates) -> Self {
        let now = Instant::now();
        let bucket = |c: ApiClass| {
            let rate = rates.get(c);
            Mutex::new(Bucket {
                rate,
                tokens: rate.burst,
                at: now,
            })
        };
        Self {
            buckets: Arc::new(ApiClass::ALL.map(bucket)),
            rates,
        }
    }

    /// The rates in force.
    pub(crate) fn rates(&self) -> ApiRates {
        self.rates
    }

    /// Wait for a token for `operation` (`service:Operation`). Returns at once for services
    /// not paced.
    pub(crate) async fn acquire(&self, operation: &str) {
        let Some(class) = ApiClass::of(operation) else {
            return;
        };
        loop {
            let wait = {
                let mut b = self.buckets[class as usize].lock().await;
                match b.take(Instant::now()) {
                    Ok(()) => return,
                    Err(wait) => wait,
                }
            };
            sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_over_the_defaults_and_bad_values_name_the_key() {
        let r = ApiRates::parse("SPOTSWAP_API_RATES", "launch=8/20, ec2-describe=80/400").unwrap();
        assert_eq!(
            r.get(ApiClass::Launch),
            Rate {
                per_sec: 8.0,
                burst: 20.0
            }
        );
        assert_eq!(
            r.get(ApiClass::Ec2Describe),
            Rate {
                per_sec: 80.0,
                burst: 400.0
            }
        );
        assert_eq!(
            r.get(ApiClass::Ec2Mutating),
            ApiRates::default().get(ApiClass::Ec2Mutating)
        );
        assert_eq!(ApiRates::parse("K", &r.to_string()).unwrap(), r);
        for bad in [
            "launch",
            "launch=2",
            "launch=0/5",
            "launch=2/0.5",
            "fleet=2/5",
            "launch=x/5",
        ] {
            let e = ApiRates::parse("SPOTSWAP_API_RATES", bad).unwrap_err();
            assert_eq!(e.key(), "SPOTSWAP_API_RATES", "{bad}");
        }
    }

    /// The bucket's arithmetic on an explicit clock: no sleeping, no timing.
    #[test]
    fn a_bucket_gives_its_burst_then_one_token_per_refill_interval() {
        let t0 = Instant::now();
        let rate = Rate {
            per_sec: 2.0,
            burst: 5.0,
        };
        let mut b = Bucket {
            rate,
            tokens: rate.burst,
            at: t0,
        };
        for _ in 0..5 {
            assert_eq!(b.take(t0), Ok(()));
        }
        assert_eq!(
            b.take(t0),
            Err(Duration::from_millis(500)),
            "empty: next token in 1/2 s"
        );
        assert!(b.take(t0 + Duration::from_millis(499)).is_err());
        assert_eq!(b.take(t0 + Duration::from_millis(500)), Ok(()));
        // Idle for a minute refills to the burst, never beyond it.
        let later = t0 + Duration::from_secs(60);
        for _ in 0..5 {
            assert_eq!(b.take(later), Ok(()));
        }
        assert!(b.take(later).is_err());
    }

    /// Real time, a lower bound only (a loaded machine can be slower, never faster): eleven
    /// concurrent callers on a bucket of one token at 50/s wait for ten refills.
    #[tokio::test]
    async fn concurrent_callers_share_one_bucket_and_wait_for_it() {
        let limiter = ApiLimiter::new(ApiRates::parse("K", "ec2-mutating=50/1").unwrap());
        let start = Instant::now();
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..11 {
            let l = limiter.clone();
            set.spawn(async move { l.acquire("ec2:CreateTags").await });
        }
        while set.join_next().await.is_some() {}
        assert!(
            start.elapsed() >= Duration::from_millis(190),
            "{:?}",
            start.elapsed()
        );
        // Another class's bucket is full: taking its burst does not wait for a refill.
        let other = ApiLimiter::new(ApiRates::parse("K", "ec2-describe=0.001/3").unwrap());
        for _ in 0..3 {
            tokio::time::timeout(Duration::from_secs(5), other.acquire("ec2:DescribeInstances"))
                .await
                .expect("a full bucket answers at once");
        }
        other.acquire("pricing:GetProducts").await;
    }
}
