//! DescribeInstanceTypes entries into [`InstanceTypeSpec`], and what an instance's image needs
//! of a type from its DescribeInstances entry: the inputs of the compatibility rules
//! (`spotswap_core::compat`).

use aws_sdk_ec2::types::{Instance, InstanceTypeInfo};
use spotswap_core::{AmiBootMode, BootMode, BootModes, ImageNeeds, InstanceTypeSpec, Support};

/// One DescribeInstanceTypes entry; `None` without a type name.
pub(super) fn spec_from_sdk(t: &InstanceTypeInfo) -> Option<InstanceTypeSpec> {
    let count = |n: Option<i32>| n.unwrap_or(0).max(0) as u32;
    let gpus = t.gpu_info().map(|g| g.gpus()).unwrap_or_default();
    let gpu_model = (!gpus.is_empty()).then(|| {
        gpus.iter()
            .map(|d| {
                format!(
                    "{} {}",
                    d.manufacturer().unwrap_or_default(),
                    d.name().unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
            .join("+")
    });
    let ebs = t.ebs_info();
    let optimized = ebs.and_then(|e| e.ebs_optimized_info());
    let mut boot_modes = BootModes::default();
    for m in t.supported_boot_modes() {
        if let Some(m) = BootMode::from_api(m.as_str()) {
            boot_modes.add(m);
        }
    }
    Some(InstanceTypeSpec {
        name: t.instance_type()?.as_str().to_string(),
        architectures: t
            .processor_info()
            .map(|p| {
                p.supported_architectures()
                    .iter()
                    .map(|a| a.as_str().to_string())
                    .collect()
            })
            .unwrap_or_default(),
        vcpus: count(t.v_cpu_info().and_then(|v| v.default_v_cpus())),
        memory_mib: t.memory_info().and_then(|m| m.size_in_mib()).unwrap_or(0).max(0) as u64,
        gpus: gpus.iter().map(|d| count(d.count())).sum(),
        instance_store_gb: t
            .instance_storage_info()
            .and_then(|s| s.total_size_in_gb())
            .unwrap_or(0)
            .max(0) as u64,
        gpu_model,
        gpu_memory_mib: u64::from(count(t.gpu_info().and_then(|g| g.total_gpu_memory_in_mib()))),
        ebs_baseline_mbps: count(optimized.and_then(|o| o.baseline_bandwidth_in_mbps())),
        ebs_maximum_mbps: count(optimized.and_then(|o| o.maximum_bandwidth_in_mbps())),
        ena: t
            .network_info()
            .and_then(|n| n.ena_support())
            .map_or(Support::Unknown, |s| Support::from_api(s.as_str())),
        nvme: ebs
            .and_then(|e| e.nvme_support())
            .map_or(Support::Unknown, |s| Support::from_api(s.as_str())),
        boot_modes,
        burstable: t.burstable_performance_supported().unwrap_or(false),
    })
}

/// What the instance's image needs, from fields DescribeInstances returns anyway: no
/// DescribeImages call (the image may be deregistered or in another account).
pub(super) fn image_needs(i: &Instance) -> ImageNeeds {
    ImageNeeds {
        ami_boot_mode: i.boot_mode().and_then(|m| AmiBootMode::from_api(m.as_str())),
        current_boot_mode: i
            .current_instance_boot_mode()
            .and_then(|m| BootMode::from_api(m.as_str())),
        ena_enabled: i.ena_support(),
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_ec2::types::{
        BootModeType, BootModeValues, EbsInfo, EbsNvmeSupport, EbsOptimizedInfo, EnaSupport, GpuDeviceInfo,
        GpuDeviceMemoryInfo, GpuInfo, InstanceBootModeValues, InstanceType, NetworkInfo,
    };

    use super::*;

    #[test]
    fn a_g4dn_entry_gives_every_field_the_rules_read() {
        // GIVEN a g4dn.xlarge as DescribeInstanceTypes answers
        let t = InstanceTypeInfo::builder()
            .instance_type(InstanceType::G4dnXlarge)
            .burstable_performance_supported(false)
            .supported_boot_modes(BootModeType::LegacyBios)
            .supported_boot_modes(BootModeType::Uefi)
            .ebs_info(
                EbsInfo::builder()
                    .nvme_support(EbsNvmeSupport::Required)
                    .ebs_optimized_info(
                        EbsOptimizedInfo::builder()
                            .baseline_bandwidth_in_mbps(950)
                            .maximum_bandwidth_in_mbps(3500)
                            .build(),
                    )
                    .build(),
            )
            .network_info(NetworkInfo::builder().ena_support(EnaSupport::Required).build())
            .gpu_info(
                GpuInfo::builder()
                    .gpus(
                        GpuDeviceInfo::builder()
                            .manufacturer("NVIDIA")
                            .name("T4")
                            .count(1)
                            .memory_info(GpuDeviceMemoryInfo::builder().size_in_mib(16_384).build())
                            .build(),
                    )
                    .total_gpu_memory_in_mib(16_384)
                    .build(),
            )
            .build();
        // THEN the spec carries them
        let s = spec_from_sdk(&t).unwrap();
        assert_eq!(s.name, "g4dn.xlarge");
        assert_eq!(
            (s.gpus, s.gpu_model.as_deref(), s.gpu_memory_mib),
            (1, Some("NVIDIA T4"), 16_384)
        );
        assert_eq!((s.ebs_baseline_mbps, s.ebs_maximum_mbps), (950, 3500));
        assert_eq!((s.ena, s.nvme), (Support::Required, Support::Required));
        assert!(s.boot_modes.legacy_bios && s.boot_modes.uefi);
        assert!(!s.burstable);
    }

    #[test]
    fn an_entry_without_the_optional_parts_reads_as_unknown() {
        let t = InstanceTypeInfo::builder()
            .instance_type(InstanceType::T3Large)
            .burstable_performance_supported(true)
            .build();
        let s = spec_from_sdk(&t).unwrap();
        assert_eq!((s.ena, s.nvme), (Support::Unknown, Support::Unknown));
        assert!(s.boot_modes.is_empty() && s.gpu_model.is_none() && s.burstable);
        assert_eq!((s.ebs_baseline_mbps, s.ebs_maximum_mbps), (0, 0));
    }

    #[test]
    fn an_instance_tells_its_images_boot_mode_and_ena() {
        let i = Instance::builder()
            .boot_mode(BootModeValues::UefiPreferred)
            .current_instance_boot_mode(InstanceBootModeValues::Uefi)
            .ena_support(true)
            .build();
        assert_eq!(
            image_needs(&i),
            ImageNeeds {
                ami_boot_mode: Some(AmiBootMode::UefiPreferred),
                current_boot_mode: Some(BootMode::Uefi),
                ena_enabled: Some(true),
            }
        );
        assert_eq!(image_needs(&Instance::builder().build()), ImageNeeds::default());
    }
}
