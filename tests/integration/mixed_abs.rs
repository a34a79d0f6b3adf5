//! Attribute-based mixed-instances groups (`InstanceRequirements` overrides) against moto,
//! behind the proxy that answers GetInstanceTypesFromInstanceRequirements from moto's own
//! type data (moto lacks it) and keeps the group's policy through updates as AWS does.

use std::collections::BTreeSet;

use aws_sdk_autoscaling::types::{
    BurstablePerformance, InstanceRequirements, LaunchTemplateOverrides, MemoryMiBRequest, VCpuCountRequest,
};
use spotswap_aws::{handle_event, EventOptions};
use spotswap_core::Reason;
use spotswap_tests::fleet::{sample_price_file, Env};
use spotswap_tests::proxy::{Fault, FaultKind};

use crate::interruption::{decisions, warning};
use crate::mixed::{converge, cycle_at, mixed_env, mixed_group_with};

const OP: &str = "GetInstanceTypesFromInstanceRequirements";

/// One override of exactly `vcpus` vCPUs and 8 GiB, no m5d.* and no burstable type.
pub(crate) fn requirements(vcpus: i32) -> Vec<LaunchTemplateOverrides> {
    let r = InstanceRequirements::builder()
        .v_cpu_count(VCpuCountRequest::builder().min(vcpus).max(vcpus).build())
        .memory_mib(MemoryMiBRequest::builder().min(8192).max(8192).build())
        .excluded_instance_types("m5d.*")
        .burstable_performance(BurstablePerformance::Excluded)
        .build();
    vec![LaunchTemplateOverrides::builder()
        .instance_requirements(r)
        .build()]
}

/// True when moto describes `t` with 2 vCPUs and 8 GiB, not burstable.
async fn meets(env: &Env, t: &str) -> bool {
    let d = env
        .ec2
        .describe_instance_types()
        .instance_types(t.into())
        .send()
        .await
        .expect("describe type");
    d.instance_types().first().is_some_and(|i| {
        i.v_cpu_info().and_then(|v| v.default_v_cpus()) == Some(2)
            && i.memory_info().and_then(|m| m.size_in_mib()) == Some(8192)
            && i.burstable_performance_supported() != Some(true)
    })
}

/// Types a spotswap rule or the requirements keep out.
fn kept_out(t: &str) -> bool {
    t.starts_with("m6i.") || t.starts_with("m5d.") || t.starts_with("t3")
}

/// `spotswap plan --output json`: the launch candidates of `group`.
fn plan_candidates(env: &Env, group: &str) -> Vec<String> {
    let plan = crate::compat::plan_json(env);
    plan["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["group"] == group && a["action"] == "launch")
        .flat_map(|a| a["candidates"].as_array().cloned().unwrap_or_default())
        .map(|p| p.as_str().unwrap().split('/').next().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attribute_based_group_converges_to_spot_on_types_meeting_its_requirements_and_globs() {
    // GIVEN an attribute-based group of 3 on-demand m5.large (2 vCPUs, 8 GiB, no m5d.*, no
    //   burstable), none kept on-demand, denying m6i.* by spotswap's glob; the cheapest pools
    //   are m6i.large (denied), m5d.large (excluded) and t3.large (burstable), then m7i.large
    let (proxy, env) = mixed_env().await;
    for (_, az) in env.subnets().await {
        proxy.set_spot_price("t3.large", &az, 0.005);
        proxy.set_spot_price("m6i.large", &az, 0.010);
        proxy.set_spot_price("m5d.large", &az, 0.012);
        proxy.set_spot_price("m7i.large", &az, 0.020);
        proxy.set_spot_price("m5.large", &az, 0.035);
    }
    let name = "abs-web";
    mixed_group_with(
        &env,
        name,
        3,
        0,
        &[("spotswap:denied-types", "m6i.*")],
        requirements(2),
    )
    .await;

    // WHEN `spotswap plan --output json` runs
    let offered = plan_candidates(&env, name);
    // THEN it lists the group's candidates: resolved types the globs allow
    assert!(!offered.is_empty());
    for t in &offered {
        assert!(!kept_out(t) && meets(&env, t).await, "{t} offered");
    }

    // WHEN the rebalancer runs until the group is all spot (never below desired)
    let start = spotswap_aws::workflow::now();
    let step = converge(&env, &[(name, (0, 3))], 3, start).await;

    // THEN every spot instance is of a type meeting the requirements and the globs
    let members: BTreeSet<String> = env.group_state(name).await.in_service().into_iter().collect();
    let live = env.live_instances().await;
    for (id, i) in live.iter().filter(|(id, _)| members.contains(*id)) {
        assert!(
            !kept_out(&i.instance_type) && meets(&env, &i.instance_type).await,
            "{id}: {i:?}"
        );
    }
    // AND further cycles change nothing
    for extra in 0..3 {
        let report = cycle_at(&env, start.plus_secs(60 * (step + 1 + extra))).await;
        assert_eq!(report.mutating_calls(), 0, "{:?}", report.actions);
    }

    // WHEN a spot member gets its interruption warning
    let before = env.group_state(name).await;
    let spot = before.in_service().remove(0);
    let config = spotswap_aws::Config {
        price_file: Some(sample_price_file()),
        event_bus: String::new(),
        ..spotswap_aws::Config::default()
    };
    let aws = env.aws();
    let report = handle_event(&aws, &config, &warning(&spot), EventOptions::default())
        .await
        .expect("event handled");
    assert!(
        aws.api_calls().contains_key(&format!("ec2:{OP}")),
        "{:?}",
        aws.api_calls()
    );
    // THEN the handler reads the group's types too and requests its replacement first, as for
    //   any group: detached without a decrement, desired kept
    assert!(
        decisions(&report).contains(&("detach", "SpotInterruptionWarning", "done")),
        "{:?}",
        decisions(&report)
    );
    let after = env.group_state(name).await;
    assert!(!after.members.contains_key(&spot), "detached");
    assert_eq!(after.desired, before.desired, "desired kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attribute_based_groups_whose_types_are_unknown_or_none_are_skipped_untouched() {
    // GIVEN two attribute-based groups of 2 on-demand: one whose requirements match no type
    //   (1,000 vCPUs with 8 GiB), one fine, and GetInstanceTypesFromInstanceRequirements failing
    let (proxy, env) = mixed_env().await;
    mixed_group_with(&env, "abs-none", 2, 0, &[], requirements(1000)).await;
    mixed_group_with(&env, "abs-fail", 2, 0, &[], requirements(2)).await;
    proxy.add_fault(Fault::always(OP, FaultKind::Http500));

    // WHEN a cycle runs
    let report = cycle_at(&env, spotswap_aws::workflow::now()).await;
    // THEN both are skipped, each naming why, and nothing is changed
    let skip = |g: &str| report.skipped.iter().find(|s| s.group == g).cloned();
    let failed = skip("abs-fail").expect("abs-fail skipped");
    assert_eq!(failed.reason, Reason::InstanceRequirementsUnresolved);
    assert!(failed
        .detail
        .unwrap_or_default()
        .contains("GetInstanceTypesFromInstanceRequirements"));
    assert_eq!(report.mutating_calls(), 0, "{:?}", report.actions);

    // WHEN the read works again
    proxy.clear_faults();
    let report = cycle_at(&env, spotswap_aws::workflow::now()).await;
    // THEN requirements that match no type are not supported, with that detail, and untouched
    let none = report
        .skipped
        .iter()
        .find(|s| s.group == "abs-none")
        .unwrap_or_else(|| panic!("abs-none skipped: {:?} {:?}", report.skipped, report.actions));
    assert_eq!(none.reason, Reason::MixedInstancesPolicyNotSupported);
    assert!(none
        .detail
        .as_deref()
        .unwrap_or_default()
        .contains("match no instance type"));
    assert_eq!(env.mix("abs-none").await, (2, 0));
    // AND the group whose types are known again swaps
    assert!(
        !report.skipped.iter().any(|s| s.group == "abs-fail"),
        "{:?}",
        report.skipped
    );
}
