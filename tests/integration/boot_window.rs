//! The group lifecycle as AWS paces it, where moto is instant: invariant 1 across the window AWS
//! takes to boot an interrupted instance's replacement, and a retire through a terminating hook.
//!
//! moto lists the group's replacement InService in the same answer as the detach, so against
//! moto alone the capacity dip of an interruption never shows, and neither does what a swap
//! in flight does during it. The proxy boots replacements in AWS's 90 s
//! ([`Proxy::set_boot_delay`]), on a clock the test moves.

use std::time::Duration;

use spotswap_aws::{handle_event, rebalance, Config, CycleOptions, EventOptions, Outcome};
use spotswap_core::{ActionKind, Reason};
use spotswap_tests::fleet::{sample_price_file, Env, GroupSpec};
use spotswap_tests::proxy::{Proxy, DEFAULT_BOOT_DELAY};

use super::interruption::{group_with_spot, warning};

fn config() -> Config {
    Config {
        price_file: Some(sample_price_file()),
        event_bus: String::new(),
        ..Config::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swap_waits_out_an_interrupted_replacements_boot_and_capacity_holds_throughout() {
    // GIVEN a group of one on-demand and one converged spot instance (desired 2), behind a
    // proxy that boots replacements in 90 s
    let proxy = Proxy::from_env().await.expect("proxy");
    proxy.set_boot_delay(Some(DEFAULT_BOOT_DELAY));
    let env = Env::at(&proxy.url()).await;
    let (group, spot) = group_with_spot(&env, GroupSpec::managed("boot-window", 1), 1).await;
    let interrupted = spot[0].clone();
    let desired = env.group_state(&group).await.desired as usize;
    assert_eq!(desired, 2);
    let original = env
        .group_state(&group)
        .await
        .in_service()
        .into_iter()
        .find(|id| *id != interrupted)
        .expect("the on-demand member");
    // InService plus what AWS itself is still booting for the interrupted instance.
    let capacity = |g: &spotswap_tests::fleet::GroupState| {
        let booting = proxy
            .booting(&group)
            .into_iter()
            .filter(|b| b.replaces == interrupted)
            .count();
        g.in_service().len() + booting
    };

    // AND a swap of the on-demand instance in flight, its replacement attached
    let mut attached = false;
    for _ in 0..4 {
        let cycle = rebalance(&env.aws(), &config(), CycleOptions::default())
            .await
            .expect("cycle");
        attached |= cycle
            .actions
            .iter()
            .any(|a| matches!(a.kind, ActionKind::Attach { .. }) && matches!(a.outcome, Outcome::Done(_)));
        if attached {
            break;
        }
    }
    assert!(attached, "the swap reached its attach");
    assert!(env.group_state(&group).await.members.contains_key(&original));

    // WHEN the spot instance gets its interruption warning
    let report = handle_event(
        &env.aws(),
        &config(),
        &warning(&interrupted),
        EventOptions::default(),
    )
    .await
    .expect("warning handled");
    assert!(
        report
            .decisions
            .iter()
            .any(|d| matches!(d.kind, ActionKind::Detach { .. }) && matches!(d.outcome, Outcome::Done(_))),
        "{:#?}",
        report.decisions
    );
    let booting = proxy.booting(&group);
    assert_eq!(booting.len(), 1, "the group's replacement boots: {booting:?}");

    // THEN across the boot window, cycles hold the retire (the group is below its desired
    // capacity) and capacity never drops below desired less what AWS is booting
    for _ in 0..3 {
        let cycle = rebalance(&env.aws(), &config(), CycleOptions::default())
            .await
            .expect("cycle");
        let retired = cycle.actions.iter().any(|a| {
            matches!(a.kind, ActionKind::Retire { .. }) && !matches!(a.outcome, Outcome::NotAttempted(_))
        });
        assert!(!retired, "a retire into the dip: {:#?}", cycle.actions);
        assert!(
            cycle
                .actions
                .iter()
                .any(|a| a.reason == Reason::GroupBelowCapacity),
            "{:#?}",
            cycle.actions
        );
        let g = env.group_state(&group).await;
        assert!(g.members.contains_key(&original), "{:?}", g.members);
        assert!(
            capacity(&g) >= desired,
            "invariant 1: {:?} {:?}",
            g.members,
            proxy.booting(&group)
        );
        proxy.advance_clock(Duration::from_secs(30));
    }

    // WHEN the replacement has booted
    assert!(proxy.booting(&group).is_empty());
    // THEN the swap finishes: the on-demand instance is retired, capacity held at every cycle
    let mut retired = false;
    for _ in 0..6 {
        let cycle = rebalance(&env.aws(), &config(), CycleOptions::default())
            .await
            .expect("cycle");
        let g = env.group_state(&group).await;
        assert!(g.in_service().len() >= desired, "invariant 1: {:?}", g.members);
        retired |= !g.members.contains_key(&original);
        if retired && cycle.mutating_calls() == 0 {
            break;
        }
    }
    assert!(retired, "the swap completed once the replacement booted");
    let g = env.group_state(&group).await;
    assert_eq!(g.desired as usize, desired);
    assert!(!g.tags.contains_key("spotswap:max-raised-from"), "{:?}", g.tags);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retire_through_a_terminating_hook_settles_while_the_instance_waits() {
    // GIVEN a group of one on-demand instance at MaxSize with a terminating hook (heartbeat
    // 600 s), behind a proxy that holds hooked terminations in Terminating:Wait as AWS does
    let proxy = Proxy::from_env().await.expect("proxy");
    proxy.set_lifecycle_hooks(true);
    let env = Env::at(&proxy.url()).await;
    let group = env.group(&GroupSpec::managed("hook-retire", 1)).await;
    env.asg
        .put_lifecycle_hook()
        .lifecycle_hook_name("drain")
        .auto_scaling_group_name(&group)
        .lifecycle_transition("autoscaling:EC2_INSTANCE_TERMINATING")
        .heartbeat_timeout(600)
        .send()
        .await
        .expect("put lifecycle hook");
    let original = env.group_state(&group).await.in_service()[0].clone();

    // WHEN rebalancer cycles run until one is quiet
    let mut quiet = false;
    for _ in 0..8 {
        let cycle = rebalance(&env.aws(), &config(), CycleOptions::default())
            .await
            .expect("cycle");
        assert!(
            cycle
                .actions
                .iter()
                .all(|a| !matches!(a.outcome, Outcome::Failed(_))),
            "{:#?}",
            cycle.actions
        );
        assert!(
            !env.group_state(&group).await.in_service().is_empty(),
            "invariant 1"
        );
        if cycle.mutating_calls() == 0 {
            quiet = true;
            break;
        }
    }
    // THEN the swap settled while the original still waits on its hook: it is listed in
    // Terminating:Wait and running, the spot replacement is InService, and desired and MaxSize
    // are back with no record left
    assert!(quiet, "the swap settles while the hook holds the original");
    let g = env.group_state(&group).await;
    assert_eq!(
        g.members.get(&original).map(String::as_str),
        Some("Terminating:Wait"),
        "{:?}",
        g.members
    );
    assert_eq!(env.mix(&group).await, (0, 1));
    assert_eq!((g.desired, g.max), (1, 1));
    assert!(!g.tags.contains_key("spotswap:max-raised-from"), "{:?}", g.tags);
    assert_eq!(env.live_instances().await[&original].state, "running");

    // WHEN the heartbeat timeout passes, THEN EC2 terminates it and the next cycle is quiet
    proxy.advance_clock(Duration::from_secs(601));
    let g = env.group_state(&group).await;
    assert!(!g.members.contains_key(&original), "{:?}", g.members);
    assert!(!env.live_instances().await.contains_key(&original));
    let cycle = rebalance(&env.aws(), &config(), CycleOptions::default())
        .await
        .expect("cycle");
    assert_eq!(cycle.mutating_calls(), 0, "{:#?}", cycle.actions);
}
