//! Whether a candidate instance type can run what an original instance runs. One rule per
//! [`Incompatibility`], all in one function, [`compatible`], which the candidate search (and
//! anything else that picks replacement types, such as a mixed-instances group's overrides)
//! calls.
//!
//! The rules, checked in this order (the first that fails is the answer):
//!
//! 1. `ArchitectureMismatch`: the candidate supports the architecture the original runs.
//! 2. `TooFewVcpus`, `TooLittleMemory`: default vCPUs and memory at least the original's.
//! 3. `GpuMismatch`: when the original has GPUs, the same manufacturer and model, with count
//!    and total GPU memory at least the original's.
//! 4. `InstanceStoreTooSmall`: when the original has instance store, at least as much.
//! 5. `EnaRequired`: when the original needs ENA (its type requires it, or its image has ENA
//!    enabled), the candidate supports ENA. `EnaNotEnabled`: a candidate that requires ENA is
//!    refused when the original's image is known to have ENA disabled (EC2 would not launch it).
//! 6. `NvmeRequired`: when the original's type attaches EBS as NVMe only (`required`), the
//!    candidate supports NVMe: the image's device names and drivers are NVMe ones.
//! 7. `BootModeUnsupported`: the candidate supports the boot mode the image needs: the AMI's
//!    `legacy-bios` or `uefi` (either one for `uefi-preferred`); without an AMI boot mode, the
//!    mode the instance booted in (`CurrentInstanceBootMode`); when neither is known (moto),
//!    every boot mode the original's type supports.
//! 8. `BurstableNotAllowed`: a burstable type (`BurstablePerformanceSupported`, the `t*`
//!    families) replaces only a burstable original, unless a `spotswap:allowed-types` glob
//!    matches it.
//! 9. `EbsBandwidthTooLow`: EBS baseline and maximum bandwidth at least the original's.
//!
//! A value DescribeInstanceTypes did not report is "nothing" on both sides: an original with
//! no reported ENA needs none, and a candidate with no reported ENA offers none.

use serde::Serialize;

use crate::model::{AmiBootMode, BootMode, ImageNeeds, InstanceTypeSpec, Support};
use crate::policy::TypeGlobs;

/// Why a candidate type cannot replace an original: one code per rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Incompatibility {
    /// The candidate does not support the architecture the original runs.
    ArchitectureMismatch,
    /// Fewer default vCPUs than the original.
    TooFewVcpus,
    /// Less memory than the original.
    TooLittleMemory,
    /// Not the original's GPU manufacturer and model, or fewer GPUs, or less GPU memory.
    GpuMismatch,
    /// Less instance store than the original has.
    InstanceStoreTooSmall,
    /// The original needs ENA and the candidate does not support it.
    EnaRequired,
    /// The candidate requires ENA and the original's image has it disabled.
    EnaNotEnabled,
    /// The original's type requires NVMe for EBS and the candidate does not support it.
    NvmeRequired,
    /// The candidate does not support the boot mode the original's image needs.
    BootModeUnsupported,
    /// A burstable candidate for a non-burstable original, not allowed by glob.
    BurstableNotAllowed,
    /// EBS baseline or maximum bandwidth below the original's.
    EbsBandwidthTooLow,
}

impl Incompatibility {
    /// Every rule, in the order they are checked.
    pub const ALL: [Incompatibility; 11] = [
        Self::ArchitectureMismatch,
        Self::TooFewVcpus,
        Self::TooLittleMemory,
        Self::GpuMismatch,
        Self::InstanceStoreTooSmall,
        Self::EnaRequired,
        Self::EnaNotEnabled,
        Self::NvmeRequired,
        Self::BootModeUnsupported,
        Self::BurstableNotAllowed,
        Self::EbsBandwidthTooLow,
    ];

    /// The stable PascalCase code.
    pub fn code(self) -> &'static str {
        match self {
            Self::ArchitectureMismatch => "ArchitectureMismatch",
            Self::TooFewVcpus => "TooFewVcpus",
            Self::TooLittleMemory => "TooLittleMemory",
            Self::GpuMismatch => "GpuMismatch",
            Self::InstanceStoreTooSmall => "InstanceStoreTooSmall",
            Self::EnaRequired => "EnaRequired",
            Self::EnaNotEnabled => "EnaNotEnabled",
            Self::NvmeRequired => "NvmeRequired",
            Self::BootModeUnsupported => "BootModeUnsupported",
            Self::BurstableNotAllowed => "BurstableNotAllowed",
            Self::EbsBandwidthTooLow => "EbsBandwidthTooLow",
        }
    }
}

impl Serialize for Incompatibility {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

/// What a replacement must match: the original's type, the architecture it runs, and what
/// its image needs.
#[derive(Debug, Clone, Copy)]
pub struct Original<'a> {
    /// The original's instance type.
    pub spec: &'a InstanceTypeSpec,
    /// The architecture the original runs (its AMI's).
    pub architecture: &'a str,
    /// Boot mode and ENA of its image, as DescribeInstances reports them.
    pub image: ImageNeeds,
}

impl<'a> Original<'a> {
    /// An original of type `spec` running `architecture`, its image's needs unknown.
    pub fn new(spec: &'a InstanceTypeSpec, architecture: &'a str) -> Self {
        Self {
            spec,
            architecture,
            image: ImageNeeds::default(),
        }
    }

    /// The same, with what its image needs.
    pub fn with_image(self, image: ImageNeeds) -> Self {
        Self { image, ..self }
    }

    fn needs_ena(&self) -> bool {
        self.spec.ena == Support::Required || self.image.ena_enabled == Some(true)
    }

    /// True when `candidate` offers the boot mode the image needs (rule 7).
    fn boots_on(&self, candidate: &InstanceTypeSpec) -> bool {
        let modes = candidate.boot_modes;
        match (self.image.ami_boot_mode, self.image.current_boot_mode) {
            (Some(AmiBootMode::LegacyBios), _) => modes.has(BootMode::LegacyBios),
            (Some(AmiBootMode::Uefi), _) => modes.has(BootMode::Uefi),
            (Some(AmiBootMode::UefiPreferred), _) => !modes.is_empty(),
            (None, Some(current)) => modes.has(current),
            (None, None) => modes.covers(self.spec.boot_modes),
        }
    }
}

/// `Ok` when `candidate` can run what `original` runs; otherwise the first rule it fails, in
/// the order of the module's list. `allowed` is the group's `spotswap:allowed-types`: a
/// burstable candidate it matches may replace a non-burstable original.
///
/// Cheap and allocation-free: the candidate search calls it for every pool of an AZ.
pub fn compatible(
    original: &Original<'_>,
    candidate: &InstanceTypeSpec,
    allowed: &TypeGlobs,
) -> Result<(), Incompatibility> {
    use Incompatibility as I;
    let orig = original.spec;
    if !candidate.architectures.iter().any(|a| a == original.architecture) {
        return Err(I::ArchitectureMismatch);
    }
    if candidate.vcpus < orig.vcpus {
        return Err(I::TooFewVcpus);
    }
    if candidate.memory_mib < orig.memory_mib {
        return Err(I::TooLittleMemory);
    }
    if orig.gpus > 0
        && (candidate.gpus < orig.gpus
            || candidate.gpu_model != orig.gpu_model
            || candidate.gpu_memory_mib < orig.gpu_memory_mib)
    {
        return Err(I::GpuMismatch);
    }
    if orig.instance_store_gb > 0 && candidate.instance_store_gb < orig.instance_store_gb {
        return Err(I::InstanceStoreTooSmall);
    }
    if original.needs_ena() && !candidate.ena.is_available() {
        return Err(I::EnaRequired);
    }
    if candidate.ena == Support::Required && original.image.ena_enabled == Some(false) {
        return Err(I::EnaNotEnabled);
    }
    if orig.nvme == Support::Required && !candidate.nvme.is_available() {
        return Err(I::NvmeRequired);
    }
    if !original.boots_on(candidate) {
        return Err(I::BootModeUnsupported);
    }
    if candidate.burstable && !orig.burstable && !allowed.matches(&candidate.name) {
        return Err(I::BurstableNotAllowed);
    }
    if candidate.ebs_baseline_mbps < orig.ebs_baseline_mbps
        || candidate.ebs_maximum_mbps < orig.ebs_maximum_mbps
    {
        return Err(I::EbsBandwidthTooLow);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
