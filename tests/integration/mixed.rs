//! Mixed-instances groups against moto, behind the proxy that keeps the group's
//! MixedInstancesPolicy through UpdateAutoScalingGroup as AWS does (moto drops it).

use std::collections::BTreeSet;

use aws_sdk_autoscaling::types::{
    InstancesDistribution, LaunchTemplate, LaunchTemplateOverrides,
    LaunchTemplateSpecification as AsgTemplateSpec, MixedInstancesPolicy, Tag as AsgTag,
};
use spotswap_aws::{rebalance, Config, CycleOptions, CycleReport, Outcome};
use spotswap_core::Timestamp;
use spotswap_tests::fleet::{sample_price_file, Env};
use spotswap_tests::proxy::Proxy;

/// The policy's instance types.
pub(crate) const POLICY_TYPES: [&str; 2] = ["m5.large", "m5d.large"];

fn config() -> Config {
    Config {
        price_file: Some(sample_price_file()),
        ..Config::default()
    }
}

/// A proxy that keeps mixed instances policies and answers DescribeInstanceRefreshes as AWS
/// does, and a region behind it.
pub(crate) async fn mixed_env() -> (Proxy, Env) {
    let proxy = Proxy::from_env().await.expect("proxy");
    proxy.set_keep_mixed_policies(true);
    proxy.set_answer_instance_refreshes(true);
    let env = Env::at(&proxy.url()).await;
    (proxy, env)
}

pub(crate) async fn cycle_at(env: &Env, now: Timestamp) -> CycleReport {
    let opts = CycleOptions {
        now: Some(now),
        ..CycleOptions::default()
    };
    rebalance(&env.aws(), &config(), opts).await.expect("cycle")
}

/// A managed group of `desired` (= MaxSize, so every attach needs a raise) whose policy
/// allows [`POLICY_TYPES`] and keeps `base` on-demand, none above it; in one subnet.
pub(crate) async fn mixed_group(env: &Env, name: &str, desired: i32, base: i32, tags: &[(&str, &str)]) {
    let types: Vec<(&str, Option<u32>)> = POLICY_TYPES.iter().map(|t| (*t, None)).collect();
    mixed_group_of(env, name, desired, base, tags, &types).await;
}

/// [`mixed_group`] whose policy's overrides are `types`, each with its `WeightedCapacity`
/// when given (desired, MaxSize and `base` are then in units); the template launches m5.large.
pub(crate) async fn mixed_group_of(
    env: &Env,
    name: &str,
    desired: i32,
    base: i32,
    tags: &[(&str, &str)],
    types: &[(&str, Option<u32>)],
) {
    let overrides = types
        .iter()
        .map(|(t, weight)| {
            LaunchTemplateOverrides::builder()
                .instance_type(*t)
                .set_weighted_capacity(weight.map(|w| w.to_string()))
                .build()
        })
        .collect();
    mixed_group_with(env, name, desired, base, tags, overrides).await;
}

/// [`mixed_group`] whose policy's overrides are `overrides`; the template launches m5.large.
pub(crate) async fn mixed_group_with(
    env: &Env,
    name: &str,
    desired: i32,
    base: i32,
    tags: &[(&str, &str)],
    overrides: Vec<LaunchTemplateOverrides>,
) {
    let lt = env.launch_template(&format!("{name}-lt"), "m5.large").await;
    let subnet = env.subnets().await.remove(0).0;
    let group_tags = [("spotswap:enabled", "true")]
        .iter()
        .chain(tags)
        .map(|(k, v)| {
            AsgTag::builder()
                .resource_id(name)
                .resource_type("auto-scaling-group")
                .key(*k)
                .value(*v)
                .propagate_at_launch(false)
                .build()
        })
        .collect();
    env.asg
        .create_auto_scaling_group()
        .auto_scaling_group_name(name)
        .mixed_instances_policy(
            MixedInstancesPolicy::builder()
                .launch_template(
                    LaunchTemplate::builder()
                        .launch_template_specification(
                            AsgTemplateSpec::builder()
                                .launch_template_id(lt)
                                .version("$Latest")
                                .build(),
                        )
                        .set_overrides(Some(overrides))
                        .build(),
                )
                .instances_distribution(
                    InstancesDistribution::builder()
                        .on_demand_base_capacity(base)
                        .on_demand_percentage_above_base_capacity(0)
                        .build(),
                )
                .build(),
        )
        .min_size(0)
        .max_size(desired)
        .desired_capacity(desired)
        .vpc_zone_identifier(subnet)
        .set_tags(Some(group_tags))
        .send()
        .await
        .expect("create mixed group");
    // moto stores a create-time grace period of 0 as 300; this update does not repeat the
    // policy, as an owner's would not, and the proxy keeps it as AWS does.
    env.asg
        .update_auto_scaling_group()
        .auto_scaling_group_name(name)
        .health_check_grace_period(0)
        .send()
        .await
        .expect("set grace period");
}

/// Cycles from `start`, a minute apart, until each of `groups` of `desired` (= MaxSize) has
/// its `(on-demand, spot)` mix, desired and MaxSize back: no action fails, no group is
/// skipped, and none is ever below `desired` (invariant 1). The number of the last cycle.
pub(crate) async fn converge(
    env: &Env,
    groups: &[(&str, (usize, usize))],
    desired: i32,
    start: Timestamp,
) -> i64 {
    let mut step = 0;
    loop {
        let report = cycle_at(env, start.plus_secs(60 * step)).await;
        for a in &report.actions {
            assert!(!matches!(a.outcome, Outcome::Failed(_)), "{a:?}");
        }
        let mut done = true;
        for (g, mix) in groups {
            assert!(
                !report.skipped.iter().any(|s| s.group == *g),
                "{:?}",
                report.skipped
            );
            let s = env.group_state(g).await;
            assert!(s.in_service().len() as i32 >= desired, "{g} below desired");
            done &= env.mix(g).await == *mix && s.desired == desired && s.max == desired;
        }
        if done {
            return step;
        }
        step += 1;
        assert!(step < 16, "not converged: {:?}", report.actions);
    }
}

/// The group's policy's override types as Auto Scaling lists them; empty when it has none.
pub(crate) async fn policy_types(env: &Env, name: &str) -> BTreeSet<String> {
    let r = env
        .asg
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(name)
        .send()
        .await
        .expect("describe group");
    r.auto_scaling_groups()[0]
        .mixed_instances_policy()
        .and_then(|p| p.launch_template())
        .map(|lt| {
            lt.overrides()
                .iter()
                .filter_map(|o| o.instance_type().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_groups_converge_within_their_policy_and_stay_put() {
    // GIVEN a proxy that keeps mixed instances policies as AWS does, a market whose cheapest
    //   pool (m6i.large) is outside the groups' policy, and two mixed-instances groups of 3
    //   at MaxSize (moto launches them on-demand): one keeping 1 on-demand by its
    //   InstancesDistribution, one also tagged spotswap:on-demand-base=0
    let (proxy, env) = mixed_env().await;
    for (_, az) in env.subnets().await {
        proxy.set_spot_price("m6i.large", &az, 0.010);
        proxy.set_spot_price("m5d.large", &az, 0.030);
        proxy.set_spot_price("m5.large", &az, 0.035);
    }
    mixed_group(&env, "mip-dist", 3, 1, &[]).await;
    mixed_group(&env, "mip-tagged", 3, 1, &[("spotswap:on-demand-base", "0")]).await;
    let want: BTreeSet<String> = POLICY_TYPES.iter().map(|t| t.to_string()).collect();
    assert_eq!(
        policy_types(&env, "mip-dist").await,
        want,
        "the policy survives the update"
    );

    // WHEN the rebalancer runs until both are converged
    let start = spotswap_aws::workflow::now();
    let groups = [("mip-dist", (1, 2)), ("mip-tagged", (0, 3))];
    let step = converge(&env, &groups, 3, start).await;

    // THEN each group's floor is kept: the distribution's, and where tagged, spotswap's
    // AND every spot instance is of a type the policy allows (never m6i.large)
    let live = env.live_instances().await;
    for (g, _) in groups {
        for id in env.group_state(g).await.in_service() {
            let i = &live[&id];
            assert!(
                POLICY_TYPES.contains(&i.instance_type.as_str()),
                "{g}: {}",
                i.instance_type
            );
        }
        // AND the policy and MaxSize are the owner's again, with no record left
        assert_eq!(policy_types(&env, g).await, want, "{g} kept its policy");
        let s = env.group_state(g).await;
        assert_eq!(s.max, 3);
        assert!(!s.tags.contains_key("spotswap:max-raised-from"), "{:?}", s.tags);
    }

    // AND the end state is stable: 10 further cycles change nothing
    let settled = (
        env.group_state("mip-dist").await,
        env.group_state("mip-tagged").await,
        env.live_instances().await,
    );
    for more in 1..=10 {
        let report = cycle_at(&env, start.plus_secs(60 * (step + more))).await;
        assert_eq!(report.mutating_calls(), 0, "{:?}", report.actions);
    }
    assert_eq!(
        (
            env.group_state("mip-dist").await,
            env.group_state("mip-tagged").await,
            env.live_instances().await,
        ),
        settled
    );
}

/// The group's `OnDemandPercentageAboveBaseCapacity` as Auto Scaling lists it.
pub(crate) async fn on_demand_percent(env: &Env, name: &str) -> Option<i32> {
    let r = env
        .asg
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(name)
        .send()
        .await
        .expect("describe group");
    r.auto_scaling_groups()[0]
        .mixed_instances_policy()
        .and_then(|p| p.instances_distribution())
        .and_then(|d| d.on_demand_percentage_above_base_capacity())
}

pub(crate) fn done_with(report: &CycleReport, reason: spotswap_core::Reason) -> usize {
    report
        .actions
        .iter()
        .filter(|a| a.reason == reason && a.outcome == Outcome::Done(None))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sheltered_mixed_group_launches_on_demand_and_gets_its_distribution_back_exactly() {
    // GIVEN a mixed-instances group of 2 whose owner wants all spot (base 0, 0% above), behind
    //   the proxy that keeps its policy as AWS does, sheltered for an hour by an interruption
    //   burst (the tag the interruption handler writes)
    let (proxy, env) = mixed_env().await;
    for (_, az) in env.subnets().await {
        proxy.set_spot_price("m5d.large", &az, 0.030);
    }
    let name = "mip-shelter";
    mixed_group(&env, name, 2, 0, &[]).await;
    let start = spotswap_aws::workflow::now();
    env.asg
        .create_or_update_tags()
        .tags(
            AsgTag::builder()
                .resource_id(name)
                .resource_type("auto-scaling-group")
                .key("spotswap:sheltered-until")
                .value(start.plus_secs(3600).to_rfc3339())
                .propagate_at_launch(false)
                .build(),
        )
        .send()
        .await
        .expect("shelter");
    let want: BTreeSet<String> = POLICY_TYPES.iter().map(|t| t.to_string()).collect();

    // WHEN a cycle runs during the shelter
    let report = cycle_at(&env, start.plus_secs(60)).await;
    // THEN the group's own launches are made on-demand: 100% above base, the owner's 0
    //   recorded, the rest of the policy kept
    assert_eq!(
        done_with(&report, spotswap_core::Reason::DistributionRaised),
        1,
        "{:?}",
        report.actions
    );
    assert_eq!(on_demand_percent(&env, name).await, Some(100));
    let tags = env.group_state(name).await.tags;
    assert_eq!(
        tags.get("spotswap:distribution-raised-from").map(String::as_str),
        Some("on-demand-percent=0")
    );
    assert_eq!(policy_types(&env, name).await, want);
    // AND a second cycle in the shelter changes nothing (no raise again, no swap)
    let again = cycle_at(&env, start.plus_secs(120)).await;
    assert_eq!(again.mutating_calls(), 0, "{:?}", again.actions);

    // WHEN the shelter is over
    let over = start.plus_secs(3600 + 60);
    let report = cycle_at(&env, over).await;
    // THEN exactly the owner's value comes back, and the record goes
    assert_eq!(
        done_with(&report, spotswap_core::Reason::DistributionRestored),
        1,
        "{:?}",
        report.actions
    );
    assert_eq!(on_demand_percent(&env, name).await, Some(0));
    assert!(!env
        .group_state(name)
        .await
        .tags
        .contains_key("spotswap:distribution-raised-from"));
    assert_eq!(policy_types(&env, name).await, want);
    // AND the swaps convert the on-demand capacity back to spot, within the policy
    let mut step = 1;
    while env.mix(name).await != (0, 2) || env.group_state(name).await.desired != 2 {
        assert!(step < 12, "not converged");
        let r = cycle_at(&env, over.plus_secs(60 * step)).await;
        assert_eq!(done_with(&r, spotswap_core::Reason::DistributionRaised), 0);
        assert!(env.group_state(name).await.in_service().len() >= 2, "invariant 1");
        step += 1;
    }
}

/// The units of a group's InService members: each type's weight in `weights`, else 1.
async fn in_service_units(env: &Env, name: &str, weights: &[(&str, Option<u32>)]) -> u32 {
    let live = env.live_instances().await;
    env.group_state(name)
        .await
        .in_service()
        .iter()
        .map(|id| {
            let t = live.get(id).map(|i| i.instance_type.as_str()).unwrap_or_default();
            weights
                .iter()
                .find(|(w, _)| *w == t)
                .and_then(|(_, w)| *w)
                .unwrap_or(1)
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_weighted_mixed_group_is_swapped_unit_for_unit_and_never_below_its_desired_units() {
    // GIVEN a proxy that keeps mixed instances policies and counts a weighted group's desired
    //   capacity in units as AWS does (moto counts instances in an attach and a decrement),
    //   and a weighted group of 6 units at MaxSize keeping 2 units on-demand: m5.large and
    //   m5d.large weigh 2, m6i.large weighs 1 and is the cheapest pool. moto launches 3
    //   on-demand m5.large (6 units)
    let (proxy, env) = mixed_env().await;
    for (_, az) in env.subnets().await {
        proxy.set_spot_price("m6i.large", &az, 0.005);
        proxy.set_spot_price("m5d.large", &az, 0.030);
        proxy.set_spot_price("m5.large", &az, 0.035);
    }
    let name = "mip-weighted";
    let weights = [
        ("m5.large", Some(2)),
        ("m5d.large", Some(2)),
        ("m6i.large", Some(1)),
    ];
    mixed_group_of(&env, name, 6, 2, &[], &weights).await;
    assert_eq!(
        env.group_state(name).await.in_service().len(),
        3,
        "3 instances of 2 units"
    );
    assert_eq!(in_service_units(&env, name, &weights).await, 6);

    // WHEN the rebalancer runs until the group is converged
    let start = spotswap_aws::workflow::now();
    let mut step = 0;
    loop {
        let report = cycle_at(&env, start.plus_secs(60 * step)).await;
        for a in &report.actions {
            assert!(!matches!(a.outcome, Outcome::Failed(_)), "{a:?}");
        }
        // THEN invariant 1 in units: never below the 6 units desired when the swaps began
        assert!(
            in_service_units(&env, name, &weights).await >= 6,
            "below desired units"
        );
        let s = env.group_state(name).await;
        if env.mix(name).await == (1, 2) && s.desired == 6 && s.max == 6 {
            break;
        }
        step += 1;
        assert!(step < 16, "not converged: {:?}", report.actions);
    }

    // AND the floor of 2 units is one on-demand instance; every spot replacement weighs what
    //   its original weighed (never the cheaper, lighter m6i.large)
    let live = env.live_instances().await;
    for id in env.group_state(name).await.in_service() {
        let t = live[&id].instance_type.as_str();
        assert!(["m5.large", "m5d.large"].contains(&t), "{t}");
    }
    assert_eq!(in_service_units(&env, name, &weights).await, 6);
    assert!(!env
        .group_state(name)
        .await
        .tags
        .contains_key("spotswap:max-raised-from"));

    // AND the end state is stable: 10 further cycles make no mutating call
    for more in 1..=10 {
        let report = cycle_at(&env, start.plus_secs(60 * (step + more))).await;
        assert_eq!(report.mutating_calls(), 0, "{:?}", report.actions);
    }
}
