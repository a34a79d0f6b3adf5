//! The scenario file: JSON or YAML, checked field by field into plain data. Every error names
//! the field at fault (`events[2].kind: unknown kind "x"`), so the CLI prints one line.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde_json::Value;
use spotswap_core::commitments::Commitments;
use spotswap_core::{InstanceTypeSpec, Pool, Timestamp};

use crate::specs;

mod parse;

/// A scenario file that cannot be used: the field at fault and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioError {
    /// The field, e.g. `events[2].pools[0]`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl ScenarioError {
    /// An error about `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for ScenarioError {}

/// One spot pool and its type's on-demand price.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolSpec {
    /// Type × AZ.
    pub pool: Pool,
    /// Spot price at the start, USD/hour.
    pub spot_price: f64,
    /// On-demand price of the type, USD/hour.
    pub on_demand_price: f64,
    /// Most spot instances the pool holds at once (all groups together); `None`: unlimited.
    pub capacity: Option<u32>,
    /// The type's spec.
    pub spec: InstanceTypeSpec,
}

/// One Auto Scaling group.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupSpec {
    /// Group name.
    pub name: String,
    /// The launch template's instance type.
    pub instance_type: String,
    /// Its AZs (one subnet each).
    pub azs: Vec<String>,
    /// DesiredCapacity at the start.
    pub desired: u32,
    /// MinSize.
    pub min_size: u32,
    /// MaxSize (default: the largest desired the scenario asks for).
    pub max_size: u32,
    /// HealthCheckGracePeriod, seconds.
    pub health_check_grace_secs: u32,
    /// Group tags (`spotswap:…`).
    pub tags: BTreeMap<String, String>,
}

/// What happens at an event.
#[derive(Debug, Clone, PartialEq)]
pub enum EventKind {
    /// Spot capacity in these pools (indices into `pools`) is lost for `secs`: every spot
    /// instance there gets the 2-minute warning and no spot launch lands there.
    CapacityLost {
        /// Indices into the scenario's pools.
        pools: Vec<usize>,
        /// How long, in seconds.
        secs: i64,
    },
    /// A rebalance recommendation to every spot instance in these pools.
    Rebalance {
        /// Indices into the scenario's pools.
        pools: Vec<usize>,
    },
    /// The pool's spot price changes.
    Price {
        /// Index into the scenario's pools.
        pool: usize,
        /// The new spot price, USD/hour.
        spot_price: f64,
    },
    /// A group's desired capacity changes.
    Desired {
        /// Index into the scenario's groups.
        group: usize,
        /// The new desired capacity.
        desired: u32,
    },
    /// Every instance in the AZ is lost at once, without warning, and nothing launches there
    /// for `secs`.
    AzOutage {
        /// The availability zone.
        az: String,
        /// How long, in seconds.
        secs: i64,
    },
}

/// The account's commitments in the simulated region (the optional `commitments` key): what
/// the core reads, as the adapter reads them from AWS, and what they cost.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CommitmentsSpec {
    /// Reserved Instances and Savings Plans (with their rates), active for the whole run.
    pub commitments: Commitments,
    /// Each RI purchase's fee, USD per hour for all its instances, by `ReservedInstancesId`.
    pub reserved_fees: BTreeMap<String, f64>,
}

impl CommitmentsSpec {
    /// What the commitments cost every hour, used or not: the RIs' fees and the Savings
    /// Plans' commitments, USD.
    pub fn fees_per_hour(&self) -> f64 {
        self.reserved_fees.values().sum::<f64>()
            + self
                .commitments
                .savings_plans
                .iter()
                .map(|p| spotswap_core::commitments::dollars(p.commitment_micros))
                .sum::<f64>()
    }
}

/// An event at a time.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Seconds after the start.
    pub at_secs: i64,
    /// What happens.
    pub kind: EventKind,
}

/// A checked scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// Name.
    pub name: String,
    /// Simulated duration, hours.
    pub hours: f64,
    /// Step, seconds.
    pub step_seconds: u32,
    /// RNG seed.
    pub seed: u64,
    /// Launch → InService, seconds.
    pub boot_seconds: u32,
    /// Background interruptions per spot instance per hour.
    pub interruption_rate_per_hour: f64,
    /// Rebalancer schedule, minutes (default 5, the template's `rate(5 minutes)`).
    pub rebalancer_minutes: u32,
    /// Reaper schedule, minutes (default 10).
    pub reaper_minutes: u32,
    /// `SPOTSWAP_ORPHAN_MINUTES` (default 20).
    pub orphan_minutes: u32,
    /// Pools.
    pub pools: Vec<PoolSpec>,
    /// Groups.
    pub groups: Vec<GroupSpec>,
    /// Events, in time order (file order among equal times).
    pub events: Vec<Event>,
    /// Reserved Instances and Savings Plans (none by default).
    pub commitments: CommitmentsSpec,
}

/// The simulated clock starts here: 2026-01-05T00:00:00Z, a Monday.
pub const START: Timestamp = Timestamp::from_unix(1_767_571_200);

impl Scenario {
    /// Read and check a scenario file. `prices_from` is relative to the file's folder.
    pub fn load(path: &Path) -> Result<Self, ScenarioError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ScenarioError::new("scenario", format!("cannot read {}: {e}", path.display())))?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Self::parse(&text, &base)
    }

    /// Check a scenario from its text (JSON, or else YAML).
    pub fn parse(text: &str, base: &Path) -> Result<Self, ScenarioError> {
        let value: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(json_err) => {
                if text.trim_start().starts_with('{') {
                    return Err(ScenarioError::new(
                        "scenario",
                        format!("not valid JSON: {json_err}"),
                    ));
                }
                serde_yaml_ng::from_str(text)
                    .map_err(|e| ScenarioError::new("scenario", format!("not valid YAML: {e}")))?
            }
        };
        parse::from_value(&value, base)
    }

    /// Number of steps.
    pub fn steps(&self) -> u64 {
        ((self.hours * 3600.0) / f64::from(self.step_seconds)).ceil() as u64
    }

    /// Indices of the pools matching a `type/az` glob (`*` matches any run of characters).
    pub fn matching(&self, pattern: &str) -> Vec<usize> {
        let (t, az) = pattern.split_once('/').unwrap_or((pattern, "*"));
        (0..self.pools.len())
            .filter(|&i| glob(t, &self.pools[i].pool.instance_type) && glob(az, &self.pools[i].pool.az))
            .collect()
    }
}

/// Shell-style glob match (`*`, `?`, `[…]`), as the `glob` crate reads it; an invalid pattern
/// matches nothing (and so is reported as a pattern that matches no pool).
pub fn glob(pattern: &str, s: &str) -> bool {
    glob::Pattern::new(pattern).is_ok_and(|p| p.matches(s))
}
