//! The proxy's GetInstanceTypesFromInstanceRequirements (moto lacks it): the types of moto's
//! own DescribeInstanceTypes that meet the requirements, in pages, and AWS's refusal of a
//! request without a required parameter.

use std::collections::BTreeSet;

use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_sdk_ec2::types::{
    ArchitectureType, BurstablePerformance, InstanceRequirementsRequest, MemoryMiBRequest,
    VCpuCountRangeRequest, VirtualizationType,
};
use spotswap_tests::fleet::Env;
use spotswap_tests::proxy::Proxy;

fn requirements(
    vcpus: (i32, i32),
    mib: (i32, i32),
) -> aws_sdk_ec2::types::builders::InstanceRequirementsRequestBuilder {
    InstanceRequirementsRequest::builder()
        .v_cpu_count(VCpuCountRangeRequest::builder().min(vcpus.0).max(vcpus.1).build())
        .memory_mib(MemoryMiBRequest::builder().min(mib.0).max(mib.1).build())
}

/// Every page of the answer.
async fn resolve(env: &Env, archs: &[&str], r: InstanceRequirementsRequest) -> (BTreeSet<String>, usize) {
    let (mut out, mut pages, mut token) = (BTreeSet::new(), 0, None);
    loop {
        let page = env
            .ec2
            .get_instance_types_from_instance_requirements()
            .set_architecture_types(Some(archs.iter().map(|a| ArchitectureType::from(*a)).collect()))
            .virtualization_types(VirtualizationType::Hvm)
            .instance_requirements(r.clone())
            .set_next_token(token)
            .send()
            .await
            .expect("types from requirements");
        pages += 1;
        out.extend(
            page.instance_types()
                .iter()
                .filter_map(|t| t.instance_type())
                .map(str::to_owned),
        );
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            return (out, pages);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn types_from_requirements_are_moto_types_that_meet_them_in_pages() {
    let proxy = Proxy::from_env().await.expect("proxy");
    let env = Env::at(&proxy.url()).await;
    // GIVEN requirements of exactly 2 vCPUs and 8 GiB, x86_64, no m5d.* and no burstable type
    let r = requirements((2, 2), (8192, 8192))
        .excluded_instance_types("m5d.*")
        .burstable_performance(BurstablePerformance::Excluded)
        .build();
    let (types, pages) = resolve(&env, &["x86_64"], r).await;
    // THEN the answer holds m5.large and m6i.large, in more than one page
    assert!(
        types.contains("m5.large") && types.contains("m6i.large"),
        "{types:?}"
    );
    assert!(pages > 1, "{pages} page(s) for {} types", types.len());
    // AND nothing excluded, burstable or of another architecture
    assert!(
        !types.iter().any(|t| t.starts_with("m5d.") || t.starts_with("t3")),
        "{types:?}"
    );
    assert!(!types.contains("m6g.large"), "arm64");
    // AND every type has exactly 2 vCPUs and 8 GiB, as moto describes it
    let described = env
        .ec2
        .describe_instance_types()
        .set_instance_types(Some(types.iter().map(|t| t.as_str().into()).collect()))
        .send()
        .await
        .expect("describe types");
    assert_eq!(described.instance_types().len(), types.len());
    for t in described.instance_types() {
        assert_eq!(t.v_cpu_info().and_then(|v| v.default_v_cpus()), Some(2));
        assert_eq!(t.memory_info().and_then(|m| m.size_in_mib()), Some(8192));
    }
    // AND arm64 alone gives Graviton types, burstable ones included by default
    let (arm, _) = resolve(&env, &["arm64"], requirements((2, 2), (4096, 8192)).build()).await;
    assert!(arm.contains("m6g.large") && arm.contains("t4g.large"), "{arm:?}");
    assert!(!arm.contains("m5.large"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn types_from_requirements_without_architectures_are_refused() {
    let proxy = Proxy::from_env().await.expect("proxy");
    let env = Env::at(&proxy.url()).await;
    let err = env
        .ec2
        .get_instance_types_from_instance_requirements()
        .virtualization_types(VirtualizationType::Hvm)
        .instance_requirements(requirements((2, 2), (8192, 8192)).build())
        .send()
        .await
        .expect_err("ArchitectureTypes is required");
    assert_eq!(err.code(), Some("MissingParameter"), "{err:?}");
}
