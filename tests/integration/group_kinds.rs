//! Groups of every kind (issue 16): a launching lifecycle hook, which an attached instance
//! skips; a warm pool, which AttachInstances refuses.

use spotswap_aws::{rebalance, Config, CycleOptions, CycleReport};
use spotswap_core::{Reason, Timestamp};
use spotswap_tests::fleet::{sample_price_file, Env, GroupSpec};

fn config() -> Config {
    Config {
        price_file: Some(sample_price_file()),
        ..Config::default()
    }
}

async fn cycle_at(env: &Env, now: Timestamp) -> CycleReport {
    let opts = CycleOptions {
        now: Some(now),
        ..CycleOptions::default()
    };
    rebalance(&env.aws(), &config(), opts).await.expect("cycle")
}

async fn hook(env: &Env, group: &str, transition: &str) {
    env.asg
        .put_lifecycle_hook()
        .auto_scaling_group_name(group)
        .lifecycle_hook_name("bootstrap")
        .lifecycle_transition(transition)
        .heartbeat_timeout(300)
        .default_result("CONTINUE")
        .send()
        .await
        .expect("put lifecycle hook");
}

fn skip_of(report: &CycleReport, group: &str) -> Option<Reason> {
    report.skipped.iter().find(|s| s.group == group).map(|s| s.reason)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_launching_hook_gets_no_attach_unless_the_owner_bypasses_it() {
    // GIVEN two managed groups of one on-demand instance, each with a launching lifecycle
    //   hook (added after their instances were InService); one tagged
    //   spotswap:launch-hooks=bypass
    let env = Env::new().await;
    let one_subnet = |name: &str| GroupSpec {
        subnets: 1,
        ..GroupSpec::managed(name, 1)
    };
    env.group(&one_subnet("hooked")).await;
    env.group(&one_subnet("bypassed").tag("spotswap:launch-hooks", "bypass"))
        .await;
    for g in ["hooked", "bypassed"] {
        hook(&env, g, "autoscaling:EC2_INSTANCE_LAUNCHING").await;
    }
    let hooked_before = env.group_state("hooked").await;
    // WHEN the rebalancer runs until the bypassed group is on spot
    let start = spotswap_aws::workflow::now();
    let mut reports = Vec::new();
    for step in 0..6 {
        reports.push(cycle_at(&env, start.plus_secs(60 * step)).await);
        if env.mix("bypassed").await == (0, 1) && env.group_state("bypassed").await.desired == 1 {
            break;
        }
    }
    // THEN the bypassed group swapped as any other
    assert_eq!(env.mix("bypassed").await, (0, 1));
    // AND the hooked group is skipped every cycle with LaunchHookWouldNotRun, naming the tag
    for r in &reports {
        assert_eq!(
            skip_of(r, "hooked"),
            Some(Reason::LaunchHookWouldNotRun),
            "{:?}",
            r.skipped
        );
        assert!(r.actions.iter().all(|a| a.group != "hooked"), "{:?}", r.actions);
    }
    let detail = reports[0]
        .skipped
        .iter()
        .find(|s| s.group == "hooked")
        .and_then(|s| s.detail.clone())
        .unwrap_or_default();
    assert!(detail.contains("spotswap:launch-hooks=bypass"), "{detail}");
    // AND the hooks were read for the hooked group only: a bypass makes the read pointless
    assert_eq!(
        reports[0].api_calls.get("autoscaling:DescribeLifecycleHooks"),
        Some(&1),
        "{:?}",
        reports[0].api_calls
    );
    // AND nothing of the hooked group changed: no launch for it, the same members, desired
    //   and MaxSize
    assert_eq!(env.group_state("hooked").await, hooked_before);
    assert!(env
        .live_instances()
        .await
        .values()
        .all(|i| i.tags.get("spotswap:group").map(String::as_str) != Some("hooked")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_with_a_warm_pool_is_skipped_and_left_alone() {
    // GIVEN a managed group of two on-demand instances with a warm pool (AWS refuses warm
    //   pools on groups that launch spot)
    let env = Env::new().await;
    env.group(&GroupSpec {
        subnets: 1,
        max: 4,
        ..GroupSpec::managed("warm", 2)
    })
    .await;
    env.asg
        .put_warm_pool()
        .auto_scaling_group_name("warm")
        .min_size(1)
        .pool_state(aws_sdk_autoscaling::types::WarmPoolState::Stopped)
        .send()
        .await
        .expect("put warm pool");
    let before = env.group_state("warm").await;
    // WHEN the rebalancer runs three cycles
    let start = spotswap_aws::workflow::now();
    for step in 0..3 {
        let r = cycle_at(&env, start.plus_secs(60 * step)).await;
        // THEN each skips the group with WarmPoolNotSupported, and decides nothing for it
        assert_eq!(
            skip_of(&r, "warm"),
            Some(Reason::WarmPoolNotSupported),
            "{:?}",
            r.skipped
        );
        assert!(r.actions.iter().all(|a| a.group != "warm"), "{:?}", r.actions);
        assert_eq!(r.mutating_calls(), 0, "{:?}", r.api_calls);
    }
    // AND the group is as it was: no launch of ours, the same members, desired and MaxSize
    assert_eq!(env.group_state("warm").await, before);
    assert!(env
        .live_instances()
        .await
        .values()
        .all(|i| !i.tags.contains_key("spotswap:group")));
}
