//! Attribute-based instance type selection: Auto Scaling's `InstanceRequirements` read into
//! core data, sent back as EC2's `InstanceRequirementsRequest` field by field, and
//! GetInstanceTypesFromInstanceRequirements.

use aws_sdk_autoscaling::types as asg;
use aws_sdk_ec2::types as ec2;
use spotswap_core::mixed::{InstanceRequirements, Range};

use super::err;
use crate::port::{op, Page, RequirementsQuery};
use crate::AdapterError;

/// One `{Min, Max}` of Auto Scaling's into a [`Range`].
macro_rules! range {
    ($r:expr) => {
        $r.map(|r| Range {
            min: r.min().map(f64::from),
            max: r.max().map(f64::from),
        })
    };
}

/// One [`Range`] into an EC2 `{Min, Max}` builder of whole numbers.
macro_rules! whole {
    ($builder:expr, $r:expr) => {
        $r.map(|r| {
            $builder
                .set_min(r.min.map(|v| v as i32))
                .set_max(r.max.map(|v| v as i32))
                .build()
        })
    };
}

/// One [`Range`] into an EC2 `{Min, Max}` builder of fractions.
macro_rules! fraction {
    ($builder:expr, $r:expr) => {
        $r.map(|r| $builder.set_min(r.min).set_max(r.max).build())
    };
}

fn strings<T: AsRef<str>>(v: &[T]) -> Vec<String> {
    v.iter().map(|s| s.as_ref().to_string()).collect()
}

fn enums<T: for<'a> From<&'a str>>(v: &[String]) -> Option<Vec<T>> {
    (!v.is_empty()).then(|| v.iter().map(|s| T::from(s.as_str())).collect())
}

fn list(v: &[String]) -> Option<Vec<String>> {
    (!v.is_empty()).then(|| v.to_vec())
}

/// Auto Scaling's `InstanceRequirements`, every field kept.
pub(super) fn from_asg(r: &asg::InstanceRequirements) -> InstanceRequirements {
    InstanceRequirements {
        vcpu_count: range!(r.v_cpu_count()).unwrap_or_default(),
        memory_mib: range!(r.memory_mib()).unwrap_or_default(),
        cpu_manufacturers: strings(r.cpu_manufacturers()),
        memory_gib_per_vcpu: range!(r.memory_gib_per_v_cpu()),
        excluded_instance_types: strings(r.excluded_instance_types()),
        instance_generations: strings(r.instance_generations()),
        spot_max_price_percentage_over_lowest_price: r.spot_max_price_percentage_over_lowest_price(),
        max_spot_price_as_percentage_of_optimal_on_demand_price: r
            .max_spot_price_as_percentage_of_optimal_on_demand_price(),
        on_demand_max_price_percentage_over_lowest_price: r
            .on_demand_max_price_percentage_over_lowest_price(),
        bare_metal: r.bare_metal().map(|v| v.as_str().to_string()),
        burstable_performance: r.burstable_performance().map(|v| v.as_str().to_string()),
        require_hibernate_support: r.require_hibernate_support(),
        network_interface_count: range!(r.network_interface_count()),
        local_storage: r.local_storage().map(|v| v.as_str().to_string()),
        local_storage_types: strings(r.local_storage_types()),
        total_local_storage_gb: range!(r.total_local_storage_gb()),
        baseline_ebs_bandwidth_mbps: range!(r.baseline_ebs_bandwidth_mbps()),
        accelerator_types: strings(r.accelerator_types()),
        accelerator_count: range!(r.accelerator_count()),
        accelerator_manufacturers: strings(r.accelerator_manufacturers()),
        accelerator_names: strings(r.accelerator_names()),
        accelerator_total_memory_mib: range!(r.accelerator_total_memory_mib()),
        network_bandwidth_gbps: range!(r.network_bandwidth_gbps()),
        allowed_instance_types: strings(r.allowed_instance_types()),
        baseline_cpu_families: r
            .baseline_performance_factors()
            .and_then(|f| f.cpu())
            .map(|c| {
                c.references()
                    .iter()
                    .filter_map(|x| x.instance_family())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// The same requirements as EC2's `InstanceRequirementsRequest`.
pub(super) fn to_ec2(r: &InstanceRequirements) -> ec2::InstanceRequirementsRequest {
    let vcpu = ec2::VCpuCountRangeRequest::builder()
        .min(r.vcpu_count.min.unwrap_or(0.0) as i32)
        .set_max(r.vcpu_count.max.map(|v| v as i32))
        .build();
    let memory = ec2::MemoryMiBRequest::builder()
        .min(r.memory_mib.min.unwrap_or(0.0) as i32)
        .set_max(r.memory_mib.max.map(|v| v as i32))
        .build();
    let baseline = (!r.baseline_cpu_families.is_empty()).then(|| {
        let refs = r
            .baseline_cpu_families
            .iter()
            .map(|f| {
                ec2::PerformanceFactorReferenceRequest::builder()
                    .instance_family(f)
                    .build()
            })
            .collect();
        ec2::BaselinePerformanceFactorsRequest::builder()
            .cpu(
                ec2::CpuPerformanceFactorRequest::builder()
                    .set_references(Some(refs))
                    .build(),
            )
            .build()
    });
    ec2::InstanceRequirementsRequest::builder()
        .v_cpu_count(vcpu)
        .memory_mib(memory)
        .set_cpu_manufacturers(enums(&r.cpu_manufacturers))
        .set_memory_gib_per_v_cpu(fraction!(
            ec2::MemoryGiBPerVCpuRequest::builder(),
            r.memory_gib_per_vcpu
        ))
        .set_excluded_instance_types(list(&r.excluded_instance_types))
        .set_instance_generations(enums(&r.instance_generations))
        .set_spot_max_price_percentage_over_lowest_price(r.spot_max_price_percentage_over_lowest_price)
        .set_max_spot_price_as_percentage_of_optimal_on_demand_price(
            r.max_spot_price_as_percentage_of_optimal_on_demand_price,
        )
        .set_on_demand_max_price_percentage_over_lowest_price(
            r.on_demand_max_price_percentage_over_lowest_price,
        )
        .set_bare_metal(r.bare_metal.as_deref().map(ec2::BareMetal::from))
        .set_burstable_performance(
            r.burstable_performance
                .as_deref()
                .map(ec2::BurstablePerformance::from),
        )
        .set_require_hibernate_support(r.require_hibernate_support)
        .set_network_interface_count(whole!(
            ec2::NetworkInterfaceCountRequest::builder(),
            r.network_interface_count
        ))
        .set_local_storage(r.local_storage.as_deref().map(ec2::LocalStorage::from))
        .set_local_storage_types(enums(&r.local_storage_types))
        .set_total_local_storage_gb(fraction!(
            ec2::TotalLocalStorageGbRequest::builder(),
            r.total_local_storage_gb
        ))
        .set_baseline_ebs_bandwidth_mbps(whole!(
            ec2::BaselineEbsBandwidthMbpsRequest::builder(),
            r.baseline_ebs_bandwidth_mbps
        ))
        .set_accelerator_types(enums(&r.accelerator_types))
        .set_accelerator_count(whole!(
            ec2::AcceleratorCountRequest::builder(),
            r.accelerator_count
        ))
        .set_accelerator_manufacturers(enums(&r.accelerator_manufacturers))
        .set_accelerator_names(enums(&r.accelerator_names))
        .set_accelerator_total_memory_mib(whole!(
            ec2::AcceleratorTotalMemoryMiBRequest::builder(),
            r.accelerator_total_memory_mib
        ))
        .set_network_bandwidth_gbps(fraction!(
            ec2::NetworkBandwidthGbpsRequest::builder(),
            r.network_bandwidth_gbps
        ))
        .set_allowed_instance_types(list(&r.allowed_instance_types))
        .set_baseline_performance_factors(baseline)
        .build()
}

/// One page of GetInstanceTypesFromInstanceRequirements.
pub(super) async fn types_for(
    client: &aws_sdk_ec2::Client,
    q: &RequirementsQuery,
    token: Option<String>,
) -> Result<Page<String>, AdapterError> {
    let page = client
        .get_instance_types_from_instance_requirements()
        .set_architecture_types(enums(&q.architectures))
        .set_virtualization_types(enums(&q.virtualization))
        .instance_requirements(to_ec2(&q.requirements))
        .set_next_token(token)
        .send()
        .await
        .map_err(err(op::GET_TYPES_FROM_REQUIREMENTS))?;
    Ok(Page {
        items: page
            .instance_types()
            .iter()
            .filter_map(|t| t.instance_type())
            .map(str::to_string)
            .collect(),
        next: page.next_token().map(str::to_string),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shared_field_goes_from_auto_scaling_to_ec2() {
        // GIVEN Auto Scaling requirements with every field set
        let r = asg::InstanceRequirements::builder()
            .v_cpu_count(asg::VCpuCountRequest::builder().min(2).max(8).build())
            .memory_mib(asg::MemoryMiBRequest::builder().min(4096).build())
            .cpu_manufacturers(asg::CpuManufacturer::Intel)
            .memory_gib_per_v_cpu(asg::MemoryGiBPerVCpuRequest::builder().min(0.5).max(8.0).build())
            .excluded_instance_types("m5d.*")
            .instance_generations(asg::InstanceGeneration::Current)
            .spot_max_price_percentage_over_lowest_price(50)
            .on_demand_max_price_percentage_over_lowest_price(20)
            .bare_metal(asg::BareMetal::Excluded)
            .burstable_performance(asg::BurstablePerformance::Required)
            .require_hibernate_support(true)
            .network_interface_count(asg::NetworkInterfaceCountRequest::builder().min(1).max(4).build())
            .local_storage(asg::LocalStorage::Required)
            .local_storage_types(asg::LocalStorageType::Ssd)
            .total_local_storage_gb(asg::TotalLocalStorageGbRequest::builder().min(10.5).build())
            .baseline_ebs_bandwidth_mbps(asg::BaselineEbsBandwidthMbpsRequest::builder().max(10000).build())
            .accelerator_types(asg::AcceleratorType::Gpu)
            .accelerator_count(asg::AcceleratorCountRequest::builder().min(1).max(2).build())
            .accelerator_manufacturers(asg::AcceleratorManufacturer::Nvidia)
            .accelerator_names(asg::AcceleratorName::T4)
            .accelerator_total_memory_mib(asg::AcceleratorTotalMemoryMiBRequest::builder().min(1024).build())
            .network_bandwidth_gbps(
                asg::NetworkBandwidthGbpsRequest::builder()
                    .min(0.5)
                    .max(25.0)
                    .build(),
            )
            .baseline_performance_factors(
                asg::BaselinePerformanceFactorsRequest::builder()
                    .cpu(
                        asg::CpuPerformanceFactorRequest::builder()
                            .references(
                                asg::PerformanceFactorReferenceRequest::builder()
                                    .instance_family("c6i")
                                    .build(),
                            )
                            .build(),
                    )
                    .build(),
            )
            .build();
        // WHEN read into core data and sent as EC2's request
        let e = to_ec2(&from_asg(&r));
        // THEN each field is the same
        let vcpu = e.v_cpu_count().unwrap();
        assert_eq!((vcpu.min(), vcpu.max()), (Some(2), Some(8)));
        let mem = e.memory_mib().unwrap();
        assert_eq!((mem.min(), mem.max()), (Some(4096), None));
        assert_eq!(e.cpu_manufacturers(), [ec2::CpuManufacturer::Intel]);
        let per = e.memory_gib_per_v_cpu().unwrap();
        assert_eq!((per.min(), per.max()), (Some(0.5), Some(8.0)));
        assert_eq!(e.excluded_instance_types(), ["m5d.*"]);
        assert_eq!(e.instance_generations(), [ec2::InstanceGeneration::Current]);
        assert_eq!(e.spot_max_price_percentage_over_lowest_price(), Some(50));
        assert_eq!(e.on_demand_max_price_percentage_over_lowest_price(), Some(20));
        assert_eq!(e.bare_metal(), Some(&ec2::BareMetal::Excluded));
        assert_eq!(
            e.burstable_performance(),
            Some(&ec2::BurstablePerformance::Required)
        );
        assert_eq!(e.require_hibernate_support(), Some(true));
        let nic = e.network_interface_count().unwrap();
        assert_eq!((nic.min(), nic.max()), (Some(1), Some(4)));
        assert_eq!(e.local_storage(), Some(&ec2::LocalStorage::Required));
        assert_eq!(e.local_storage_types(), [ec2::LocalStorageType::Ssd]);
        assert_eq!(e.total_local_storage_gb().unwrap().min(), Some(10.5));
        let ebs = e.baseline_ebs_bandwidth_mbps().unwrap();
        assert_eq!((ebs.min(), ebs.max()), (None, Some(10000)));
        assert_eq!(e.accelerator_types(), [ec2::AcceleratorType::Gpu]);
        let acc = e.accelerator_count().unwrap();
        assert_eq!((acc.min(), acc.max()), (Some(1), Some(2)));
        assert_eq!(
            e.accelerator_manufacturers(),
            [ec2::AcceleratorManufacturer::Nvidia]
        );
        assert_eq!(e.accelerator_names(), [ec2::AcceleratorName::T4]);
        assert_eq!(e.accelerator_total_memory_mib().unwrap().min(), Some(1024));
        let net = e.network_bandwidth_gbps().unwrap();
        assert_eq!((net.min(), net.max()), (Some(0.5), Some(25.0)));
        let refs = e
            .baseline_performance_factors()
            .unwrap()
            .cpu()
            .unwrap()
            .references();
        assert_eq!(refs[0].instance_family(), Some("c6i"));
        // AND fields left out stay out (max price as % of optimal on-demand, allowed types)
        assert_eq!(e.max_spot_price_as_percentage_of_optimal_on_demand_price(), None);
        assert!(e.allowed_instance_types().is_empty());
        let r = asg::InstanceRequirements::builder()
            .max_spot_price_as_percentage_of_optimal_on_demand_price(70)
            .allowed_instance_types("m5.*")
            .build();
        let e = to_ec2(&from_asg(&r));
        assert_eq!(
            e.max_spot_price_as_percentage_of_optimal_on_demand_price(),
            Some(70)
        );
        assert_eq!(e.allowed_instance_types(), ["m5.*"]);
        assert_eq!(
            e.v_cpu_count().unwrap().min(),
            Some(0),
            "a required minimum is sent"
        );
    }
}
