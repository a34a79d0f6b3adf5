//! Attribute-based instance type selection: a mixed-instances override's `InstanceRequirements`
//! as plain data, and the types EC2 resolved for them.
//!
//! The adapter reads the Auto Scaling `InstanceRequirements` field by field into
//! [`InstanceRequirements`] and asks EC2's `GetInstanceTypesFromInstanceRequirements` with the
//! same fields; the answer is [`AttributeBased::resolved`]. Those types are the override's
//! instance types: spotswap's globs narrow them like any other ([`super::effective_policy`]).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// A `{Min, Max}` range of a requirement; either end may be open. Counts (vCPUs, MiB,
/// Mbps, …) are whole numbers; GiB and Gbps ranges may be fractional.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Range {
    /// `Min`, when set.
    pub min: Option<f64>,
    /// `Max`, when set.
    pub max: Option<f64>,
}

// Ranges are read from AWS's answers, never NaN: equality is total on them.
impl Eq for Range {}

/// Every field Auto Scaling's `InstanceRequirements` and EC2's `InstanceRequirementsRequest`
/// share, as AWS writes them (enumerations as their AWS strings).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceRequirements {
    /// `VCpuCount` (required by both APIs).
    pub vcpu_count: Range,
    /// `MemoryMiB` (required by both APIs).
    pub memory_mib: Range,
    /// `CpuManufacturers` (`intel`, `amd`, `amazon-web-services`, `apple`).
    pub cpu_manufacturers: Vec<String>,
    /// `MemoryGiBPerVCpu`.
    pub memory_gib_per_vcpu: Option<Range>,
    /// `ExcludedInstanceTypes` (types or `*` patterns).
    pub excluded_instance_types: Vec<String>,
    /// `InstanceGenerations` (`current`, `previous`).
    pub instance_generations: Vec<String>,
    /// `SpotMaxPricePercentageOverLowestPrice`.
    pub spot_max_price_percentage_over_lowest_price: Option<i32>,
    /// `MaxSpotPriceAsPercentageOfOptimalOnDemandPrice`.
    pub max_spot_price_as_percentage_of_optimal_on_demand_price: Option<i32>,
    /// `OnDemandMaxPricePercentageOverLowestPrice`.
    pub on_demand_max_price_percentage_over_lowest_price: Option<i32>,
    /// `BareMetal` (`included`, `excluded`, `required`).
    pub bare_metal: Option<String>,
    /// `BurstablePerformance` (`included`, `excluded`, `required`).
    pub burstable_performance: Option<String>,
    /// `RequireHibernateSupport`.
    pub require_hibernate_support: Option<bool>,
    /// `NetworkInterfaceCount`.
    pub network_interface_count: Option<Range>,
    /// `LocalStorage` (`included`, `excluded`, `required`).
    pub local_storage: Option<String>,
    /// `LocalStorageTypes` (`hdd`, `ssd`).
    pub local_storage_types: Vec<String>,
    /// `TotalLocalStorageGB`.
    pub total_local_storage_gb: Option<Range>,
    /// `BaselineEbsBandwidthMbps`.
    pub baseline_ebs_bandwidth_mbps: Option<Range>,
    /// `AcceleratorTypes` (`gpu`, `fpga`, `inference`).
    pub accelerator_types: Vec<String>,
    /// `AcceleratorCount`.
    pub accelerator_count: Option<Range>,
    /// `AcceleratorManufacturers`.
    pub accelerator_manufacturers: Vec<String>,
    /// `AcceleratorNames`.
    pub accelerator_names: Vec<String>,
    /// `AcceleratorTotalMemoryMiB`.
    pub accelerator_total_memory_mib: Option<Range>,
    /// `NetworkBandwidthGbps`.
    pub network_bandwidth_gbps: Option<Range>,
    /// `AllowedInstanceTypes` (types or `*` patterns).
    pub allowed_instance_types: Vec<String>,
    /// `BaselinePerformanceFactors.Cpu.References[].InstanceFamily`.
    pub baseline_cpu_families: Vec<String>,
}

/// An override's `InstanceRequirements` and the instance types EC2 resolved for them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttributeBased {
    /// The requirements, as the group's policy gives them.
    pub requirements: InstanceRequirements,
    /// `GetInstanceTypesFromInstanceRequirements`'s answer (every page); `None` until read,
    /// `Err` with what failed when the read did.
    pub resolved: Option<Result<BTreeSet<String>, String>>,
}

impl AttributeBased {
    /// The resolved types; none while unresolved.
    pub fn types(&self) -> impl Iterator<Item = &String> {
        self.resolved.iter().flat_map(|r| r.iter()).flatten()
    }

    /// Why the types are not known, for the skip's detail; `None` once resolved.
    pub fn unresolved(&self) -> Option<String> {
        match &self.resolved {
            Some(Ok(_)) => None,
            None => Some("the instance types of its InstanceRequirements were not read".to_string()),
            Some(Err(e)) => Some(format!(
                "GetInstanceTypesFromInstanceRequirements failed for its InstanceRequirements: {e}"
            )),
        }
    }
}
