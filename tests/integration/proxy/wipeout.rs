//! The proxy's spot wipe-out of a mixed-instances group (see the harness's `proxy::wipeout`):
//! moto launches such groups on-demand whatever the market and keeps no scaling activities;
//! the proxy makes the group's spot launches fail as AWS's do.

use aws_sdk_autoscaling::types::{InstancesDistribution, MixedInstancesPolicy};
use spotswap_tests::fleet::Env;
use spotswap_tests::proxy::Proxy;

use crate::mixed::{mixed_group, on_demand_percent, POLICY_TYPES};

/// Every pool of the policy's types in the region's AZs out of capacity (or back).
pub(crate) async fn wipe_out(proxy: &Proxy, env: &Env, on: bool) {
    for (_, az) in env.subnets().await {
        for t in POLICY_TYPES {
            proxy.set_no_capacity(t, &az, on);
        }
    }
}

/// `(status, message)` of the group's scaling activities, newest first.
pub(crate) async fn activities(env: &Env, name: &str) -> Vec<(String, String)> {
    let r = env
        .asg
        .describe_scaling_activities()
        .auto_scaling_group_name(name)
        .send()
        .await
        .expect("describe activities");
    r.activities()
        .iter()
        .map(|a| {
            (
                a.status_code().map(|s| s.as_str().to_owned()).unwrap_or_default(),
                a.status_message().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// Terminate instances through EC2, as a spot interruption does.
pub(crate) async fn interrupt(env: &Env, ids: &[String]) {
    env.ec2
        .terminate_instances()
        .set_instance_ids(Some(ids.to_vec()))
        .send()
        .await
        .expect("terminate");
}

pub(crate) async fn set_percent(env: &Env, name: &str, percent: i32) {
    env.asg
        .update_auto_scaling_group()
        .auto_scaling_group_name(name)
        .mixed_instances_policy(
            MixedInstancesPolicy::builder()
                .instances_distribution(
                    InstancesDistribution::builder()
                        .on_demand_percentage_above_base_capacity(percent)
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("update distribution");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wiped_out_mixed_group_fails_its_spot_launches_until_its_distribution_says_on_demand() {
    // GIVEN the proxy keeping mixed instances policies, and a MIP group of 2 whose owner wants
    //   all spot (0% above a base of 0); moto launched its 2 instances
    let proxy = Proxy::from_env().await.expect("proxy");
    proxy.set_keep_mixed_policies(true);
    let env = Env::at(&proxy.url()).await;
    let name = "proxy-wipeout";
    mixed_group(&env, name, 2, 0, &[]).await;
    let before = env.group_state(name).await;
    assert_eq!(before.in_service().len(), 2);
    assert!(activities(&env, name).await.is_empty(), "no activity yet");

    // WHEN every pool of its policy loses spot capacity and one instance is interrupted
    wipe_out(&proxy, &env, true).await;
    interrupt(&env, &before.in_service()[..1]).await;

    // THEN, as on AWS, the group stays at desired 2 with 1 InService: its relaunch failed
    //   for spot capacity, in AWS's words
    let s = env.group_state(name).await;
    assert_eq!((s.desired, s.in_service().len()), (2, 1), "{s:?}");
    let acts = activities(&env, name).await;
    assert_eq!(acts[0].0, "Failed", "{acts:?}");
    assert!(
        acts[0].1.contains("InsufficientInstanceCapacity") && acts[0].1.contains("no Spot capacity"),
        "{acts:?}"
    );
    assert!(spotswap_core::mixed::spot_capacity_failure(
        &acts[0].0, &acts[0].1
    ));
    // AND an update that keeps the distribution (MaxSize) launches nothing
    env.asg
        .update_auto_scaling_group()
        .auto_scaling_group_name(name)
        .max_size(3)
        .send()
        .await
        .expect("update max");
    let s = env.group_state(name).await;
    assert_eq!((s.desired, s.in_service().len()), (2, 1), "{s:?}");

    // WHEN the distribution says on-demand (100% above base)
    set_percent(&env, name, 100).await;
    // THEN the group's own launch succeeds on-demand: back at desired, the policy kept
    let s = env.group_state(name).await;
    assert_eq!((s.desired, s.in_service().len()), (2, 2), "{s:?}");
    assert_eq!(env.mix(name).await, (2, 0));
    assert_eq!(on_demand_percent(&env, name).await, Some(100));
    assert_eq!(activities(&env, name).await[0].0, "Successful");

    // AND with spot capacity back and the owner's 0% again, an interruption is relaunched at
    //   once (moto's own relaunch: the market has capacity)
    wipe_out(&proxy, &env, false).await;
    set_percent(&env, name, 0).await;
    let ids = env.group_state(name).await.in_service();
    interrupt(&env, &ids[..1]).await;
    let s = env.group_state(name).await;
    assert_eq!((s.desired, s.in_service().len()), (2, 2), "{s:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wiped_out_group_is_relaunched_when_the_market_comes_back() {
    // GIVEN a wiped-out MIP group of 2 down to 1 InService
    let proxy = Proxy::from_env().await.expect("proxy");
    proxy.set_keep_mixed_policies(true);
    let env = Env::at(&proxy.url()).await;
    let name = "proxy-wipeout-back";
    mixed_group(&env, name, 2, 0, &[]).await;
    wipe_out(&proxy, &env, true).await;
    let ids = env.group_state(name).await.in_service();
    interrupt(&env, &ids[..1]).await;
    assert_eq!(env.group_state(name).await.in_service().len(), 1);
    // WHEN one pool of its policy has capacity again
    let (_, az) = env.subnets().await.remove(0);
    proxy.set_no_capacity(POLICY_TYPES[1], &az, false);
    // THEN AWS's retry succeeds: the group is back at desired
    let s = env.group_state(name).await;
    assert_eq!((s.desired, s.in_service().len()), (2, 2), "{s:?}");
    assert_eq!(activities(&env, name).await[0].0, "Successful");
}
