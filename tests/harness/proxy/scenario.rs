//! The scenario: prices, pools without capacity, faults and the seeded RNG.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use super::call::Call;

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

    pub(super) fn matches(&self, call: &Call) -> bool {
        match &self.operation {
            None => true,
            Some(op) if op.contains(':') => *op == call.key(),
            Some(op) => *op == call.operation,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) struct Pool {
    pub(super) instance_type: String,
    pub(super) az: String,
}

impl Pool {
    pub(super) fn new(instance_type: &str, az: &str) -> Pool {
        Pool {
            instance_type: instance_type.to_owned(),
            az: az.to_owned(),
        }
    }
}

#[derive(Default)]
pub(super) struct Scenario {
    pub(super) market_only: bool,
    /// [`super::Proxy::set_answer_instance_refreshes`].
    pub(super) answer_refreshes: bool,
    /// [`super::Proxy::set_control_paths`].
    pub(super) control_paths: bool,
    /// [`super::Proxy::set_client_tokens`].
    pub(super) client_tokens: bool,
    /// [`super::Proxy::set_keep_mixed_policies`].
    pub(super) keep_mixed_policies: bool,
    /// [`super::Proxy::set_status_checks`], by instance id or `"*"`.
    pub(super) status_checks: HashMap<String, super::StatusChecks>,
    /// [`super::Proxy::set_scheduled_event`]: instance id → (event code, not before).
    pub(super) scheduled: HashMap<String, (String, String)>,
    /// [`super::Proxy::set_stack_status`], by stack name.
    pub(super) stack_status: HashMap<String, String>,
    /// [`super::Proxy::set_image`], by instance id or `"*"`.
    pub(super) images: HashMap<String, super::ImageFacts>,
    pub(super) prices: HashMap<Pool, f64>,
    pub(super) default_price: Option<f64>,
    pub(super) no_capacity: HashSet<Pool>,
    /// [`super::Proxy::set_fleet_fill`].
    pub(super) fleet_fill: Option<u32>,
    pub(super) faults: Vec<Fault>,
    pub(super) rng: XorShift,
    /// [`super::Proxy::set_commitments`] and [`super::Proxy::set_commitments_denied`].
    pub(super) commitments: super::commitments::Book,
    /// CloudWatch's datapoints, for GetMetricData (`metrics`).
    pub(super) metrics: super::metrics::Store,
}

impl Scenario {
    pub(super) fn answers_refreshes(&self) -> bool {
        self.market_only || self.answer_refreshes
    }

    pub(super) fn price(&self, instance_type: &str, az: &str) -> Option<f64> {
        self.prices
            .get(&Pool::new(instance_type, az))
            .copied()
            .or(self.default_price)
    }

    pub(super) fn is_ice(&self, instance_type: Option<&str>, az: Option<&str>) -> bool {
        let hit = |pattern: &str, value: Option<&str>| pattern == "*" || Some(pattern) == value;
        self.no_capacity
            .iter()
            .any(|p| hit(&p.instance_type, instance_type) && hit(&p.az, az))
    }

    pub(super) fn pick_fault(&mut self, call: &Call) -> Option<FaultKind> {
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
pub(super) struct XorShift(u64);

impl XorShift {
    pub(super) fn seeded(seed: u64) -> XorShift {
        // splitmix64 spreads nearby seeds apart and never yields the all-zero dead state.
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        XorShift((z ^ (z >> 31)) | 1)
    }

    pub(super) fn next_f64(&mut self) -> f64 {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::call::{Form, Protocol};

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
