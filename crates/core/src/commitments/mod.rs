//! Commitments: Reserved Instances and Savings Plans, the usage they cover, and what a plan
//! does to that coverage.
//!
//! A commitment is paid for whether anything runs under it or not. Swapping an on-demand
//! instance an RI covers for spot adds the spot price to a bill that already paid for the RI;
//! spot that could run on-demand under an unused RI costs money for nothing. The planner asks
//! this module two questions: would removing this instance leave committed capacity unused
//! (`CommitmentCovered`), and would adding an on-demand instance of this type use capacity
//! that sits unused (`CommitmentUnused`).
//!
//! Units are exact: normalized units are counted in quarter-units ([`QUARTER`] = 1 small),
//! so `nano` (0.25) is 1, and dollars in micro-dollars per hour. Nothing here is floating.
//!
//! # Layout
//!
//! - this module: the model ([`Commitments`], [`ReservedInstances`], [`SavingsPlan`],
//!   [`Usage`]) and the normalization factors ([`Normalizer`]).
//! - [`coverage`]: EC2's billing order as one pure function, [`coverage::cover`].
//! - [`ledger`]: the cycle's running view for the planner, and the `commitments` section of
//!   `spotswap plan` ([`ledger::Summary`]).

pub mod coverage;
pub mod ledger;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::{Instance, InstanceState, Lifecycle};
use crate::time::Timestamp;

pub use coverage::{cover, Coverage};
pub use ledger::{Ledger, Summary};

/// Normalized units per `small`: the factor table in quarter-units (`nano` = 0.25 = 1).
pub const QUARTER: u64 = 4;

/// The Linux/UNIX platform, as EC2 spells it (`PlatformDetails`, an RI's `ProductDescription`
/// without ` (Amazon VPC)`). Size flexibility applies only to it.
pub const LINUX_UNIX: &str = "Linux/UNIX";
/// Shared-hardware tenancy; size flexibility applies only to it.
pub const DEFAULT_TENANCY: &str = "default";

/// What the account has committed to in this region, as read this cycle.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commitments {
    /// Reserved Instances (the adapter asks for `state=active`).
    pub reserved: Vec<ReservedInstances>,
    /// Savings Plans (state `active`), with their rates for this region.
    pub savings_plans: Vec<SavingsPlan>,
}

impl Commitments {
    /// True when there is nothing to cover with.
    pub fn is_empty(&self) -> bool {
        self.reserved.is_empty() && self.savings_plans.is_empty()
    }
}

/// One Reserved Instances purchase (`DescribeReservedInstances`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReservedInstances {
    /// `ReservedInstancesId`.
    pub id: String,
    /// `InstanceType`.
    pub instance_type: String,
    /// The AZ of a zonal RI (`Scope = Availability Zone`); `None` for a regional one.
    pub az: Option<String>,
    /// `InstanceCount`.
    pub count: u32,
    /// `ProductDescription`, normalized by [`platform`] (`Linux/UNIX`, `Windows`, …).
    pub platform: String,
    /// `InstanceTenancy`: `default`, `dedicated` or `host`.
    pub tenancy: String,
    /// `Start`.
    pub start: Timestamp,
    /// `End`: past it the RI covers nothing, whatever its state still says.
    pub end: Timestamp,
}

/// Which usage a Savings Plan applies to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "type")]
pub enum PlanKind {
    /// A Compute Savings Plan: any family, any region (the adapter keeps this region's rates).
    Compute,
    /// An EC2 Instance Savings Plan: one family in one region (the adapter keeps only those of
    /// this region).
    Ec2Instance {
        /// The instance family, e.g. `m5`.
        family: String,
    },
}

/// One Savings Plan (`DescribeSavingsPlans`) with its EC2 rates in this region
/// (`DescribeSavingsPlanRates`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavingsPlan {
    /// `savingsPlanId`.
    pub id: String,
    /// Compute or EC2 Instance.
    pub kind: PlanKind,
    /// `commitment`, micro-dollars per hour.
    pub commitment_micros: u64,
    /// `start`.
    pub start: Timestamp,
    /// `end`.
    pub end: Timestamp,
    /// The plan's rate per instance-hour of a type, platform and tenancy, micro-dollars.
    pub rates: Vec<PlanRate>,
}

/// One Savings Plan rate of EC2 usage.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PlanRate {
    /// `instanceType` property.
    pub instance_type: String,
    /// `productDescription` property, normalized by [`platform`].
    pub platform: String,
    /// `tenancy` property (`shared` is [`DEFAULT_TENANCY`]).
    pub tenancy: String,
    /// `rate`, micro-dollars per hour.
    pub rate_micros: u64,
}

/// One running on-demand instance of the region, managed or not: what commitments cover.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Usage {
    /// Instance id.
    pub instance_id: String,
    /// Instance type.
    pub instance_type: String,
    /// Availability zone.
    pub az: String,
    /// `PlatformDetails`, normalized by [`platform`].
    pub platform: String,
    /// `Placement.Tenancy`.
    pub tenancy: String,
}

impl Usage {
    /// The usage of `instance` (its platform and tenancy as EC2 reported them; Linux/UNIX
    /// on shared hardware when it reported none).
    pub fn of(instance: &Instance) -> Self {
        Self {
            instance_id: instance.id.clone(),
            instance_type: instance.instance_type.clone(),
            az: instance.az.clone(),
            platform: platform(instance.billing.platform.as_deref().unwrap_or(LINUX_UNIX)),
            tenancy: tenancy(instance.billing.tenancy.as_deref().unwrap_or(DEFAULT_TENANCY)),
        }
    }

    /// True when a regional RI of its family covers it through normalized units.
    pub fn size_flexible(&self) -> bool {
        self.platform == LINUX_UNIX && self.tenancy == DEFAULT_TENANCY
    }
}

/// The usage of the running (or pending) on-demand instances among `instances`.
pub fn usage_of<'a, I>(instances: I) -> impl Iterator<Item = Usage> + 'a
where
    I: IntoIterator<Item = &'a Instance>,
    I::IntoIter: 'a,
{
    instances
        .into_iter()
        .filter(|i| {
            i.lifecycle == Lifecycle::OnDemand
                && matches!(i.state, InstanceState::Running | InstanceState::Pending)
        })
        .map(Usage::of)
}

/// A platform as commitments and usage compare it: EC2's `PlatformDetails` and an RI's
/// `ProductDescription` agree once ` (Amazon VPC)` is dropped.
pub fn platform(s: &str) -> String {
    s.trim().trim_end_matches(" (Amazon VPC)").to_string()
}

/// A tenancy as commitments and usage compare it: Savings Plans say `shared` for `default`.
pub fn tenancy(s: &str) -> String {
    match s.trim() {
        "" | "shared" => DEFAULT_TENANCY.to_string(),
        t => t.to_string(),
    }
}

/// The family of a type: `m5` of `m5.large`.
pub fn family(instance_type: &str) -> &str {
    instance_type.split_once('.').map_or(instance_type, |(f, _)| f)
}

/// Normalization factors, in quarter-units: nano 1, micro 2, small 4, medium 8, large 16,
/// xlarge 32, `N`xlarge 32·N; `metal` is the largest size of its family among the types the
/// region offers (AWS's rule), unknown when none is known.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Normalizer {
    largest: BTreeMap<String, u64>,
}

impl Normalizer {
    /// Factors for a region offering `types`.
    pub fn new<'a>(types: impl IntoIterator<Item = &'a str>) -> Self {
        let mut largest: BTreeMap<String, u64> = BTreeMap::new();
        for t in types {
            if let Some(u) = size_units(t) {
                let e = largest.entry(family(t).to_string()).or_default();
                *e = (*e).max(u);
            }
        }
        Self { largest }
    }

    /// The factor of `instance_type` in quarter-units; `None` for a size outside the table.
    pub fn units(&self, instance_type: &str) -> Option<u64> {
        match instance_type.split_once('.') {
            Some((f, "metal")) => self.largest.get(f).copied(),
            _ => size_units(instance_type),
        }
    }
}

/// The table's factor of a named size (not `metal`).
fn size_units(instance_type: &str) -> Option<u64> {
    let (_, size) = instance_type.split_once('.')?;
    let small = QUARTER;
    Some(match size {
        "nano" => 1,
        "micro" => 2,
        "small" => small,
        "medium" => 2 * small,
        "large" => 4 * small,
        "xlarge" => 8 * small,
        s => {
            let n: u64 = s.strip_suffix("xlarge")?.parse().ok().filter(|n| *n > 0)?;
            n.checked_mul(8 * small)?
        }
    })
}

/// Dollars per hour as micro-dollars, rounded to the nearest; `None` for a negative or
/// non-finite value.
pub fn micros(dollars: f64) -> Option<u64> {
    (dollars.is_finite() && dollars >= 0.0).then(|| (dollars * 1_000_000.0).round() as u64)
}

/// Micro-dollars as dollars, for reports.
pub fn dollars(micros: u64) -> f64 {
    micros as f64 / 1_000_000.0
}

#[cfg(test)]
mod tests;
