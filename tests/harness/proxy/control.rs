//! What a process outside the test (the bench, through `spotswap-proxy`) reads and resets
//! over HTTP: `GET /_counts` and `POST /_reset`, served only when
//! [`super::Proxy::set_control_paths`] is on, and never forwarded or counted.
//!
//! `/_counts` answers
//!
//! ```json
//! {"calls": {"ec2:CreateFleet": 3, ...}, "throttled": {"ec2:CreateFleet": 1},
//!  "class": {"ec2:CreateFleet": "launch", ...}, "bucket": {"ec2:CreateFleet": "launch", ...},
//!  "upstream_ms": {...}, "upstream_busy_ms": 812.5, "upstream_max_in_flight": 4,
//!  "scale": 4.0, "classes": {"launch": {"rate": 8.0, "burst": 20.0}, ...},
//!  "api_rates": "launch=8/20,..."}
//! ```
//!
//! `calls` counts every request that arrived, throttled ones included (an SDK retry is a
//! call); `throttled` is the subset answered with a throttle by the buckets; `class` and
//! `bucket` are [`spotswap_core::ops`]'s judgement of each operation (`read`, `mutating`,
//! `launch`; a bucket name or `unlimited`), so a reader need not classify operations itself;
//! `upstream_ms` the time each operation spent being answered (moto plus the market's
//! rewriting; concurrent calls overlap); `upstream_busy_ms` the wall time with at least one
//! call being answered (close to a run's wall time: moto, single-threaded, is the
//! bottleneck); `scale`, `classes` and `api_rates` the buckets (absent when off), the last in
//! `SPOTSWAP_API_RATES` spelling for a client that paces itself against them.
//! `/_reset` zeroes every counter, not the buckets.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use hyper::body::Bytes;
use hyper::header::{self, HeaderValue};
use hyper::http::request::Parts;
use hyper::{Method, Response, StatusCode};
use serde_json::{json, Map, Value};
use spotswap_core::ops::{self, Bucket};

use super::{Reply, State};

/// Wall time with at least one call being answered, and the most calls at once.
#[derive(Debug, Default)]
pub(super) struct Load {
    in_flight: u32,
    max_in_flight: u32,
    busy: Duration,
    since: Option<Instant>,
}

impl Load {
    pub(super) fn begin(&mut self, now: Instant) {
        if self.in_flight == 0 {
            self.since = Some(now);
        }
        self.in_flight += 1;
        self.max_in_flight = self.max_in_flight.max(self.in_flight);
    }

    pub(super) fn end(&mut self, now: Instant) {
        self.in_flight = self.in_flight.saturating_sub(1);
        if self.in_flight == 0 {
            if let Some(since) = self.since.take() {
                self.busy += now.saturating_duration_since(since);
            }
        }
    }

    /// Busy time up to `now`, the current stretch included.
    pub(super) fn busy(&self, now: Instant) -> Duration {
        self.busy
            + self
                .since
                .map_or(Duration::ZERO, |s| now.saturating_duration_since(s))
    }

    pub(super) fn max_in_flight(&self) -> u32 {
        self.max_in_flight
    }

    /// Forgets the past; calls in flight stay counted, from `now`.
    pub(super) fn reset(&mut self, now: Instant) {
        self.busy = Duration::ZERO;
        self.since = (self.in_flight > 0).then_some(now);
        self.max_in_flight = self.in_flight;
    }
}

/// Ends a call's stretch of [`Load`] however its handler ends (a client that hangs up drops
/// the handler midway).
pub(super) struct InFlight<'a>(pub(super) &'a State);

impl<'a> InFlight<'a> {
    pub(super) fn begin(state: &'a State) -> InFlight<'a> {
        state.load().begin(Instant::now());
        InFlight(state)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.load().end(Instant::now());
    }
}

/// The answer to a control path, or `None` when `parts` is not one (or they are off).
pub(super) fn answer(state: &State, parts: &Parts) -> Option<Reply> {
    if !state.scenario().control_paths {
        return None;
    }
    match (&parts.method, parts.uri.path()) {
        (&Method::GET, "/_counts") => Some(json_reply(counts(state))),
        (&Method::POST, "/_reset") => {
            state.reset_counters();
            Some(json_reply(json!({"reset": true})))
        }
        _ => None,
    }
}

fn counts(state: &State) -> Value {
    let calls = state.calls().clone();
    let class: Map<String, Value> = calls
        .keys()
        .map(|op| (op.clone(), json!(ops::class(op))))
        .collect();
    let bucket: Map<String, Value> = calls
        .keys()
        .map(|op| {
            let name = Bucket::of(op).map_or("unlimited", Bucket::name);
            (op.clone(), json!(name))
        })
        .collect();
    let upstream_ms: BTreeMap<String, f64> = state
        .busy()
        .iter()
        .map(|(op, d)| (op.clone(), round1(d.as_secs_f64() * 1e3)))
        .collect();
    let (busy, max_in_flight) = {
        let load = state.load();
        (load.busy(Instant::now()), load.max_in_flight())
    };
    let mut out = json!({
        "calls": calls,
        "throttled": state.throttles().clone(),
        "class": class,
        "bucket": bucket,
        "upstream_ms": upstream_ms,
        "upstream_busy_ms": round1(busy.as_secs_f64() * 1e3),
        "upstream_max_in_flight": max_in_flight,
    });
    if let Some(limiter) = state.limiter().as_ref() {
        let classes: Map<String, Value> = Bucket::ALL
            .iter()
            .map(|b| {
                let r = limiter.rate(*b);
                (b.name().to_owned(), json!({"rate": r.per_sec, "burst": r.burst}))
            })
            .collect();
        out["scale"] = json!(limiter.scale());
        out["classes"] = Value::Object(classes);
        out["api_rates"] = json!(limiter.api_rates());
    }
    out
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn json_reply(value: Value) -> Reply {
    let mut response = Response::new(Bytes::from(value.to_string()));
    *response.status_mut() = StatusCode::OK;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_time_counts_overlapping_calls_once_and_survives_a_reset_midway() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let mut load = Load::default();
        load.begin(at(0));
        load.begin(at(100));
        load.end(at(300));
        load.end(at(400));
        load.begin(at(1000));
        assert_eq!(load.busy(at(1050)), Duration::from_millis(450));
        assert_eq!(load.max_in_flight(), 2);
        load.reset(at(1100));
        load.end(at(1200));
        assert_eq!(load.busy(at(5000)), Duration::from_millis(100));
        assert_eq!(load.max_in_flight(), 1, "the call in flight at the reset");
    }
}
