//! EC2's request-rate limits in front of moto: one token bucket per API class.
//!
//! moto never throttles, so a client's pacing cannot be seen against it. EC2 limits calls
//! per account and region with token buckets per class
//! (<https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-throttling.html>); Auto Scaling
//! has its own, unpublished ones. A call is charged to the bucket
//! [`spotswap_core::ops::Bucket::of`] names, the one classification the client's own pacing
//! uses too; a call whose bucket is empty gets the service's throttling error, unforwarded.
//! Services without a bucket (EventBridge, Pricing, ...) pass unlimited.
//!
//! # Time compression
//!
//! `scale` K multiplies every refill rate AND every burst. A workload that calls K times as
//! fast against buckets K times as large meets the same throttle/no-throttle decisions as the
//! real workload against the real buckets, in 1/K of the wall time. A scaled burst is floored
//! at one token, so a tiny K (to provoke throttles) still lets a call through now and then.

use std::time::Instant;

use spotswap_aws::{ApiRates, Rate};
use spotswap_core::ops::Bucket;

/// A continuously refilled bucket: holds at most `burst` tokens, gains `per_sec` a second,
/// starts full. No waiting and no queueing: an empty bucket refuses, and the client's retry
/// strategy decides what happens next, as with AWS.
#[derive(Debug, Clone)]
pub(super) struct TokenBucket {
    rate: Rate,
    tokens: f64,
    at: Instant,
}

impl TokenBucket {
    /// A full bucket at `now`.
    pub(super) fn full(rate: Rate, now: Instant) -> TokenBucket {
        TokenBucket {
            rate,
            tokens: rate.burst,
            at: now,
        }
    }

    /// Takes one token at `now` if there is one; `false` means throttle. A `now` before the
    /// last call (concurrent callers read the clock before taking the lock) refills nothing.
    pub(super) fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate.per_sec).min(self.rate.burst);
        self.at = self.at.max(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The buckets of one proxy, all scaled by one factor.
#[derive(Debug, Clone)]
pub(super) struct Limiter {
    scale: f64,
    /// Indexed by `Bucket as usize`, the order of [`Bucket::ALL`] (as in [`ApiRates`]).
    buckets: [TokenBucket; Bucket::ALL.len()],
}

impl Limiter {
    /// Full buckets at `rates` × `scale` (`scale` > 0).
    pub(super) fn new(rates: &ApiRates, scale: f64, now: Instant) -> Limiter {
        let buckets = Bucket::ALL.map(|b| {
            let r = rates.get(b);
            let scaled = Rate {
                per_sec: r.per_sec * scale,
                burst: (r.burst * scale).max(1.0),
            };
            TokenBucket::full(scaled, now)
        });
        Limiter { scale, buckets }
    }

    /// Charges `operation` (`service:Operation`) at `now`; `false` means throttle it.
    pub(super) fn admit(&mut self, operation: &str, now: Instant) -> bool {
        match Bucket::of(operation) {
            Some(bucket) => self.buckets[bucket as usize].take(now),
            None => true,
        }
    }

    /// The scale factor.
    pub(super) fn scale(&self) -> f64 {
        self.scale
    }

    /// The scaled rate of `bucket`.
    pub(super) fn rate(&self, bucket: Bucket) -> Rate {
        self.buckets[bucket as usize].rate
    }

    /// The scaled rates in `SPOTSWAP_API_RATES` spelling, for a client that paces itself
    /// against these buckets.
    pub(super) fn api_rates(&self) -> String {
        Bucket::ALL
            .iter()
            .map(|b| {
                let r = self.rate(*b);
                format!("{}={}/{}", b.name(), r.per_sec, r.burst)
            })
            .collect::<Vec<_>>()
            .join(",")
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_bucket_lets_its_burst_through_then_refills_at_its_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::full(
            Rate {
                per_sec: 2.0,
                burst: 5.0,
            },
            t0,
        );
        let burst = (0..8).filter(|_| b.take(t0)).count();
        assert_eq!(burst, 5, "a full bucket admits its burst at one instant");
        // 2/s: one token every 500 ms, not before.
        assert!(!b.take(t0 + ms(499)));
        assert!(b.take(t0 + ms(500)));
        assert!(!b.take(t0 + ms(500)));
        // A long idle refills to the burst, no further.
        let later = t0 + Duration::from_secs(3600);
        assert_eq!((0..8).filter(|_| b.take(later)).count(), 5);
    }

    #[test]
    fn a_clock_read_before_the_last_call_refills_nothing() {
        let t0 = Instant::now();
        let rate = Rate {
            per_sec: 1.0,
            burst: 1.0,
        };
        let mut b = TokenBucket::full(rate, t0 + ms(1000));
        assert!(b.take(t0 + ms(1000)));
        assert!(!b.take(t0), "an earlier instant must not count as elapsed time");
        assert!(!b.take(t0 + ms(1500)));
        assert!(b.take(t0 + ms(2000)));
    }

    #[test]
    fn scale_multiplies_rate_and_burst_and_floors_the_burst_at_one() {
        let t0 = Instant::now();
        let defaults = ApiRates::default();
        let fast = Limiter::new(&defaults, 4.0, t0);
        let launch = defaults.get(Bucket::Launch);
        assert_eq!(fast.rate(Bucket::Launch).per_sec, launch.per_sec * 4.0);
        assert_eq!(fast.rate(Bucket::Launch).burst, launch.burst * 4.0);

        let slow = Limiter::new(&defaults, 0.01, t0);
        assert_eq!(slow.rate(Bucket::Launch).burst, 1.0);
        assert!(
            slow.api_rates().starts_with("launch=0.02/1,"),
            "{}",
            slow.api_rates()
        );
    }

    #[test]
    fn each_operation_is_charged_to_its_own_bucket_and_unpaced_services_pass() {
        let t0 = Instant::now();
        let rates = ApiRates::parse("test", "launch=1/2,ec2-describe=1/3").unwrap();
        let mut l = Limiter::new(&rates, 1.0, t0);
        let admitted = |l: &mut Limiter, op: &str, n: usize| (0..n).filter(|_| l.admit(op, t0)).count();
        assert_eq!(admitted(&mut l, "ec2:CreateFleet", 4), 2);
        assert_eq!(
            admitted(&mut l, "ec2:RunInstances", 1),
            0,
            "RunInstances shares the launch bucket"
        );
        assert_eq!(admitted(&mut l, "ec2:DescribeInstances", 5), 3);
        assert_eq!(
            admitted(&mut l, "ec2:CreateTags", 3),
            3,
            "ec2-mutating is a bucket of its own"
        );
        assert_eq!(admitted(&mut l, "events:PutEvents", 500), 500);
        assert_eq!(admitted(&mut l, "pricing:GetProducts", 500), 500);
    }
}
