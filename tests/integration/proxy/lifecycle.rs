//! The proxy's group lifecycle as AWS paces it (`tests/harness/proxy/lifecycle.rs`): a
//! replacement's boot delay, a terminating hook's `Terminating:Wait`, and a suspended `Launch`.
//! moto does none of these; each test fails against moto alone.

use std::time::Duration;

use aws_sdk_autoscaling::error::ProvideErrorMetadata;
use spotswap_tests::fleet::{Env, GroupSpec};
use spotswap_tests::proxy::{Booting, Proxy, DEFAULT_BOOT_DELAY};

async fn proxied() -> (Proxy, Env) {
    let proxy = Proxy::from_env().await.expect("proxy");
    let env = Env::at(&proxy.url()).await;
    (proxy, env)
}

/// (id, EC2 state name) of one instance, whatever its state.
async fn ec2_state(env: &Env, id: &str) -> String {
    let r = env
        .ec2
        .describe_instances()
        .instance_ids(id)
        .send()
        .await
        .expect("describe instances");
    r.reservations()
        .iter()
        .flat_map(|r| r.instances())
        .find_map(|i| i.state().and_then(|s| s.name()).map(|n| n.as_str().to_owned()))
        .unwrap_or_default()
}

/// What DescribeAutoScalingInstances says of `id`: (group, lifecycle state).
async fn asg_instance(env: &Env, id: &str) -> Option<(String, String)> {
    let r = env
        .asg
        .describe_auto_scaling_instances()
        .instance_ids(id)
        .send()
        .await
        .expect("describe auto scaling instances");
    r.auto_scaling_instances().first().map(|i| {
        (
            i.auto_scaling_group_name().unwrap_or_default().to_owned(),
            i.lifecycle_state().unwrap_or_default().to_owned(),
        )
    })
}

async fn terminating_hook(env: &Env, group: &str, timeout_secs: i32) {
    env.asg
        .put_lifecycle_hook()
        .lifecycle_hook_name("drain")
        .auto_scaling_group_name(group)
        .lifecycle_transition("autoscaling:EC2_INSTANCE_TERMINATING")
        .heartbeat_timeout(timeout_secs)
        .send()
        .await
        .expect("put lifecycle hook");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_detached_instances_replacement_is_pending_until_its_boot_delay_has_passed() {
    // GIVEN a group of 2 behind a proxy that boots replacements in AWS's 90 s
    let (proxy, env) = proxied().await;
    proxy.set_boot_delay(Some(DEFAULT_BOOT_DELAY));
    let group = env.group(&GroupSpec::managed("boot-delay", 2)).await;
    let before = env.group_state(&group).await;
    let (gone, kept) = (before.in_service()[0].clone(), before.in_service()[1].clone());

    // WHEN one instance is detached without a decrement
    env.asg
        .detach_instances()
        .auto_scaling_group_name(&group)
        .instance_ids(&gone)
        .should_decrement_desired_capacity(false)
        .send()
        .await
        .expect("detach");

    // THEN the group's replacement exists but is Pending, and EC2 says pending: the dip moto hides
    let g = env.group_state(&group).await;
    assert_eq!(g.desired, 2);
    assert_eq!(g.in_service(), vec![kept.clone()], "{:?}", g.members);
    let booting = proxy.booting(&group);
    assert_eq!(booting.len(), 1, "{booting:?}");
    let Booting {
        instance: new,
        replaces,
    } = booting[0].clone();
    assert_eq!(replaces, gone);
    assert_eq!(g.members.get(&new).map(String::as_str), Some("Pending"));
    assert_eq!(ec2_state(&env, &new).await, "pending");
    assert_eq!(
        asg_instance(&env, &new).await.map(|(_, s)| s),
        Some("Pending".to_owned())
    );
    // AND AWS's rule for a Pending member holds: it cannot be detached yet
    let refused = env
        .asg
        .detach_instances()
        .auto_scaling_group_name(&group)
        .instance_ids(&new)
        .should_decrement_desired_capacity(true)
        .send()
        .await
        .expect_err("a Pending instance is not detachable");
    assert_eq!(refused.code(), Some("ValidationError"), "{refused:?}");

    // WHEN the proxy's clock passes 75 s, THEN it is still booting. The proxy's clock is the
    // wall clock plus the skips, so the margin leaves room for a loaded CI machine's seconds
    proxy.advance_clock(Duration::from_secs(75));
    assert_eq!(env.group_state(&group).await.in_service().len(), 1);
    // WHEN it passes 90 s, THEN it is InService and running, and nothing is booting
    proxy.advance_clock(Duration::from_secs(16));
    let g = env.group_state(&group).await;
    assert_eq!(g.in_service().len(), 2, "{:?}", g.members);
    assert!(g.in_service().contains(&new));
    assert_eq!(ec2_state(&env, &new).await, "running");
    assert!(proxy.booting(&group).is_empty());

    // AND a terminate through the group without a decrement boots its replacement the same way
    env.asg
        .terminate_instance_in_auto_scaling_group()
        .instance_id(&kept)
        .should_decrement_desired_capacity(false)
        .send()
        .await
        .expect("terminate in group");
    let booting = proxy.booting(&group);
    assert_eq!(booting.len(), 1, "{booting:?}");
    assert_eq!(booting[0].replaces, kept);
    assert_eq!(env.group_state(&group).await.in_service(), vec![new]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminating_hook_holds_the_instance_until_completion_or_its_heartbeat_timeout() {
    // GIVEN a group of 3 with a terminating hook (heartbeat 300 s), hooks honoured
    let (proxy, env) = proxied().await;
    proxy.set_lifecycle_hooks(true);
    let group = env.group(&GroupSpec::managed("hook-wait", 3)).await;
    terminating_hook(&env, &group, 300).await;
    let members = env.group_state(&group).await.in_service();
    let (a, b) = (members[0].clone(), members[1].clone());

    // WHEN one is terminated through the group without a decrement
    env.asg
        .terminate_instance_in_auto_scaling_group()
        .instance_id(&a)
        .should_decrement_desired_capacity(false)
        .send()
        .await
        .expect("terminate in group");
    // THEN it stays listed, in Terminating:Wait, and running; the group launched its replacement
    let g = env.group_state(&group).await;
    assert_eq!(
        g.members.get(&a).map(String::as_str),
        Some("Terminating:Wait"),
        "{:?}",
        g.members
    );
    assert_eq!(g.desired, 3);
    assert_eq!(g.in_service().len(), 3, "{:?}", g.members);
    assert_eq!(ec2_state(&env, &a).await, "running");
    assert_eq!(
        asg_instance(&env, &a).await,
        Some((group.clone(), "Terminating:Wait".to_owned()))
    );
    // AND it cannot be attached elsewhere or detached while it waits
    let refused = env
        .asg
        .detach_instances()
        .auto_scaling_group_name(&group)
        .instance_ids(&a)
        .should_decrement_desired_capacity(true)
        .send()
        .await
        .expect_err("a Terminating:Wait instance is not detachable");
    assert_eq!(refused.code(), Some("ValidationError"));

    // WHEN the hook is completed, THEN EC2 terminates it and the group no longer lists it
    env.asg
        .complete_lifecycle_action()
        .lifecycle_hook_name("drain")
        .auto_scaling_group_name(&group)
        .instance_id(&a)
        .lifecycle_action_result("CONTINUE")
        .send()
        .await
        .expect("complete lifecycle action");
    assert!(!env.group_state(&group).await.members.contains_key(&a));
    assert!(matches!(
        ec2_state(&env, &a).await.as_str(),
        "shutting-down" | "terminated"
    ));
    // AND completing it again is refused, as AWS refuses a finished action
    let again = env
        .asg
        .complete_lifecycle_action()
        .lifecycle_hook_name("drain")
        .auto_scaling_group_name(&group)
        .instance_id(&a)
        .lifecycle_action_result("CONTINUE")
        .send()
        .await
        .expect_err("no action in progress");
    assert_eq!(again.code(), Some("ValidationError"));

    // WHEN another is terminated with a decrement and nobody completes the hook
    env.asg
        .terminate_instance_in_auto_scaling_group()
        .instance_id(&b)
        .should_decrement_desired_capacity(true)
        .send()
        .await
        .expect("terminate in group");
    // THEN desired drops at once, and the instance waits until the heartbeat timeout
    let g = env.group_state(&group).await;
    assert_eq!(g.desired, 2);
    assert_eq!(g.members.get(&b).map(String::as_str), Some("Terminating:Wait"));
    // (285 s, not 299 s: the proxy's clock also moves with the wall clock of a loaded machine)
    proxy.advance_clock(Duration::from_secs(285));
    assert!(env.group_state(&group).await.members.contains_key(&b));
    assert_eq!(ec2_state(&env, &b).await, "running");
    proxy.advance_clock(Duration::from_secs(16));
    let g = env.group_state(&group).await;
    assert!(!g.members.contains_key(&b), "{:?}", g.members);
    assert_eq!(g.in_service().len(), 2);
    assert!(matches!(
        ec2_state(&env, &b).await.as_str(),
        "shutting-down" | "terminated"
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_launch_suspended_a_detached_instance_is_replaced_only_on_resume() {
    // GIVEN a group of 2 with Launch suspended, suspensions honoured
    let (proxy, env) = proxied().await;
    proxy.set_suspended_processes(true);
    let group = env.group(&GroupSpec::managed("launch-suspended", 2)).await;
    env.asg
        .suspend_processes()
        .auto_scaling_group_name(&group)
        .scaling_processes("Launch")
        .send()
        .await
        .expect("suspend");
    let gone = env.group_state(&group).await.in_service()[0].clone();

    // WHEN an instance is detached without a decrement
    env.asg
        .detach_instances()
        .auto_scaling_group_name(&group)
        .instance_ids(&gone)
        .should_decrement_desired_capacity(false)
        .send()
        .await
        .expect("detach");
    // THEN desired stays 2 and no replacement is launched
    let g = env.group_state(&group).await;
    assert_eq!(g.desired, 2);
    assert_eq!(g.members.len(), 1, "{:?}", g.members);
    // AND AttachInstances counts the owed replacement against MaxSize (2): desired is full
    let refused = env
        .asg
        .attach_instances()
        .auto_scaling_group_name(&group)
        .instance_ids(&gone)
        .send()
        .await
        .expect_err("desired 2 + 1 passes MaxSize 2");
    assert_eq!(refused.code(), Some("ValidationError"));

    // WHEN Launch is resumed, THEN the group launches the replacement it owes
    env.asg
        .resume_processes()
        .auto_scaling_group_name(&group)
        .send()
        .await
        .expect("resume");
    let g = env.group_state(&group).await;
    assert_eq!(g.desired, 2);
    assert_eq!(g.in_service().len(), 2, "{:?}", g.members);
    assert!(!g.members.contains_key(&gone));
}
