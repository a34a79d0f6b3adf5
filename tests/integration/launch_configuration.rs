//! Launch-configuration groups: swapped from a launch template spotswap makes from the
//! configuration (`spotswap:from-launch-configuration`), which boots what the configuration
//! boots; made once under concurrent cycles and crashes; deleted by the reaper once no group
//! uses the configuration. Through the proxy (it answers DescribeInstanceRefreshes, which moto
//! lacks), on moto.

use aws_sdk_autoscaling::types::{
    BlockDeviceMapping, Ebs, InstanceMetadataEndpointState, InstanceMetadataHttpTokensState,
    InstanceMetadataOptions, InstanceMonitoring, Tag as AsgTag,
};
use aws_sdk_ec2::types::Filter;
use spotswap_aws::cache::MarketCache;
use spotswap_aws::{handle_event, reap, rebalance, Config, CycleOptions, EventOptions, MutationBudget};
use spotswap_core::launch_config::template_name;
use spotswap_core::{tags, ActionKind, Outcome, Reason};
use spotswap_tests::fleet::{sample_price_file, Env};
use spotswap_tests::proxy::Proxy;

use super::interruption::warning;

const AMI: &str = "ami-12c6146b";
/// `#!/bin/sh\necho lc`, base64: what the API takes and gives.
const USER_DATA: &str = "IyEvYmluL3NoCmVjaG8gbGM=";

fn config() -> Config {
    Config {
        price_file: Some(sample_price_file()),
        event_bus: "default".into(),
        ..Config::default()
    }
}

async fn env() -> (Proxy, Env) {
    let proxy = Proxy::from_env().await.expect("proxy");
    proxy.set_answer_instance_refreshes(true);
    let env = Env::at(&proxy.url()).await;
    (proxy, env)
}

/// A managed group of `desired` on-demand m5.large instances launched from a launch
/// configuration `<name>-lc` that sets every field a replacement must keep. Returns the
/// configuration's name and its security group.
pub(super) async fn lc_group(env: &Env, name: &str, desired: i32) -> (String, String) {
    let lc = format!("{name}-lc");
    let sg = env
        .ec2
        .create_security_group()
        .group_name(format!("{name}-sg"))
        .description("lc test")
        .send()
        .await
        .expect("create security group")
        .group_id()
        .unwrap_or_default()
        .to_string();
    env.ec2
        .create_key_pair()
        .key_name(format!("{name}-key"))
        .send()
        .await
        .expect("create key pair");
    env.asg
        .create_launch_configuration()
        .launch_configuration_name(&lc)
        .image_id(AMI)
        .instance_type("m5.large")
        .key_name(format!("{name}-key"))
        .security_groups(&sg)
        .user_data(USER_DATA)
        .iam_instance_profile(format!("{name}-profile"))
        .block_device_mappings(
            BlockDeviceMapping::builder()
                .device_name("/dev/xvdb")
                .ebs(
                    Ebs::builder()
                        .volume_size(20)
                        .volume_type("gp3")
                        .delete_on_termination(true)
                        .build(),
                )
                .build(),
        )
        .metadata_options(
            InstanceMetadataOptions::builder()
                .http_tokens(InstanceMetadataHttpTokensState::Required)
                .http_put_response_hop_limit(2)
                .http_endpoint(InstanceMetadataEndpointState::Enabled)
                .build(),
        )
        .ebs_optimized(true)
        .instance_monitoring(InstanceMonitoring::builder().enabled(true).build())
        .associate_public_ip_address(true)
        .send()
        .await
        .expect("create launch configuration");
    let subnet = env.subnets().await[0].0.clone();
    env.asg
        .create_auto_scaling_group()
        .auto_scaling_group_name(name)
        .launch_configuration_name(&lc)
        .min_size(0)
        .max_size(desired)
        .desired_capacity(desired)
        .vpc_zone_identifier(subnet)
        .tags(
            AsgTag::builder()
                .resource_id(name)
                .resource_type("auto-scaling-group")
                .key(tags::ENABLED)
                .value("true")
                .propagate_at_launch(false)
                .build(),
        )
        .send()
        .await
        .expect("create launch configuration group");
    env.asg
        .update_auto_scaling_group()
        .auto_scaling_group_name(name)
        .health_check_grace_period(0)
        .send()
        .await
        .expect("set grace period");
    (lc, sg)
}

/// Our templates made from `lc`: `(id, name)`.
async fn templates_of(env: &Env, lc: &str) -> Vec<(String, String)> {
    env.ec2
        .describe_launch_templates()
        .filters(
            Filter::builder()
                .name(format!("tag:{}", tags::FROM_LAUNCH_CONFIGURATION))
                .values(lc)
                .build(),
        )
        .send()
        .await
        .expect("describe launch templates")
        .launch_templates()
        .iter()
        .map(|t| {
            (
                t.launch_template_id().unwrap_or_default().to_string(),
                t.launch_template_name().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// An instance's image and user data (DescribeInstanceAttribute), what moto copies onto both an
/// LC launch and a fleet launch from a template.
async fn boots(env: &Env, id: &str) -> (String, Option<String>) {
    let r = env
        .ec2
        .describe_instances()
        .instance_ids(id)
        .send()
        .await
        .expect("describe instance");
    let image = r.reservations()[0].instances()[0]
        .image_id()
        .unwrap_or_default()
        .to_string();
    let user_data = env
        .ec2
        .describe_instance_attribute()
        .instance_id(id)
        .attribute(aws_sdk_ec2::types::InstanceAttributeName::UserData)
        .send()
        .await
        .expect("describe instance attribute")
        .user_data()
        .and_then(|u| u.value())
        .map(str::to_string);
    (image, user_data)
}

/// Cycles until one changes nothing (at most 8), each in the same warm container.
async fn converge(env: &Env, cache: &MarketCache) {
    for _ in 0..8 {
        let aws = env.aws_in(cache);
        let cycle = rebalance(&aws, &config(), CycleOptions::default())
            .await
            .expect("cycle");
        if cycle.mutating_calls() == 0 {
            return;
        }
    }
    panic!("no convergence in 8 cycles");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_lc_group_is_swapped_from_a_template_that_boots_what_its_configuration_boots() {
    // GIVEN a managed group of one on-demand instance launched from a launch configuration
    //   with key, security group, profile, user data, a volume, IMDSv2, EBS optimisation,
    //   monitoring and a public IP
    let (_proxy, env) = env().await;
    let (lc, sg) = lc_group(&env, "lc-swap", 1).await;
    let original = env.group_state("lc-swap").await.in_service()[0].clone();
    let original_boots = boots(&env, &original).await;
    let cache = MarketCache::default();

    // WHEN the rebalancer runs to convergence
    converge(&env, &cache).await;

    // THEN the group is all spot, at its desired capacity
    assert_eq!(env.mix("lc-swap").await, (0, 1));
    let replacement = env.group_state("lc-swap").await.in_service()[0].clone();
    assert_ne!(replacement, original);
    // AND exactly one template was made from the configuration, under its derived name
    let made = templates_of(&env, &lc).await;
    assert_eq!(made.len(), 1, "{made:?}");
    assert_eq!(made[0].1, template_name(&lc));
    // AND it holds what the configuration boots, field by field
    let data = env
        .ec2
        .describe_launch_template_versions()
        .launch_template_id(&made[0].0)
        .versions("1")
        .send()
        .await
        .expect("describe template versions")
        .launch_template_versions()[0]
        .launch_template_data()
        .cloned()
        .expect("template data");
    assert_eq!(data.image_id(), Some(AMI));
    assert_eq!(data.key_name(), Some("lc-swap-key"));
    assert_eq!(data.user_data(), Some(USER_DATA));
    assert_eq!(
        data.iam_instance_profile().and_then(|p| p.name()),
        Some("lc-swap-profile")
    );
    assert_eq!(data.ebs_optimized(), Some(true));
    assert_eq!(data.monitoring().and_then(|m| m.enabled()), Some(true));
    let md = data.metadata_options().expect("metadata options");
    assert_eq!(md.http_tokens().map(|t| t.as_str()), Some("required"));
    assert_eq!(md.http_put_response_hop_limit(), Some(2));
    let bd = &data.block_device_mappings()[0];
    assert_eq!(bd.device_name(), Some("/dev/xvdb"));
    let ebs = bd.ebs().expect("ebs");
    assert_eq!(
        (
            ebs.volume_size(),
            ebs.volume_type().map(|t| t.as_str()),
            ebs.delete_on_termination()
        ),
        (Some(20), Some("gp3"), Some(true))
    );
    // a public IP is asked on the primary interface, with the security groups there (EC2
    // refuses both on the instance and on an interface); the subnet comes from the fleet
    let ni = &data.network_interfaces()[0];
    assert_eq!(ni.device_index(), Some(0));
    assert_eq!(ni.associate_public_ip_address(), Some(true));
    assert_eq!(ni.groups(), std::slice::from_ref(&sg));
    assert!(data.security_group_ids().is_empty());
    // AND the replacement boots the same image and user data as the LC's own launch (what
    //   moto copies onto instances; see docs/design.md §11 for the rest)
    assert_eq!(boots(&env, &replacement).await, original_boots);
    assert_eq!(original_boots.1.as_deref(), Some(USER_DATA));

    // WHEN a spot warning arrives for the replacement
    let aws = env.aws_in(&cache);
    let report = handle_event(&aws, &config(), &warning(&replacement), EventOptions::default())
        .await
        .expect("event handled");
    // THEN replacement capacity is requested from the group (its LC launches it)
    assert!(
        report
            .decisions
            .iter()
            .any(|d| matches!(d.kind, ActionKind::Detach { decrement: false, .. }) && d.outcome.succeeded()),
        "{:?}",
        report.decisions
    );
    let after = env.group_state("lc-swap").await;
    assert_eq!(after.desired, 1);

    // WHEN the reaper runs while the group still uses the configuration
    let pass = reap(&env.aws_in(&cache), &config(), CycleOptions::default())
        .await
        .expect("reaper pass");
    // THEN the template stays
    assert!(!pass
        .actions
        .iter()
        .any(|a| a.reason == Reason::LaunchConfigurationUnused));
    assert_eq!(templates_of(&env, &lc).await.len(), 1);

    // WHEN the group is gone and the reaper runs
    env.asg
        .delete_auto_scaling_group()
        .auto_scaling_group_name("lc-swap")
        .force_delete(true)
        .send()
        .await
        .expect("delete group");
    let pass = reap(&env.aws_in(&cache), &config(), CycleOptions::default())
        .await
        .expect("reaper pass");
    // THEN the template made from its configuration is deleted
    assert!(pass
        .actions
        .iter()
        .any(|a| a.reason == Reason::LaunchConfigurationUnused && a.outcome == Outcome::Done(None)));
    assert!(templates_of(&env, &lc).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_template_is_made_once_through_a_crash_and_concurrent_cycles() {
    let (_proxy, env) = env().await;
    // GIVEN an LC group, and a cycle stopped right after CreateLaunchTemplate (its first
    //   mutating call), before the launch
    let (lc, _) = lc_group(&env, "lc-crash", 1).await;
    let cache = MarketCache::default();
    let stopped = rebalance(
        &env.aws_in(&cache),
        &config(),
        CycleOptions {
            budget: Some(MutationBudget::new(1)),
            ..CycleOptions::default()
        },
    )
    .await
    .expect("cycle");
    assert!(stopped
        .actions
        .iter()
        .any(|a| a.reason == Reason::TemplateFromLaunchConfiguration && a.outcome == Outcome::Done(None)));
    assert!(!stopped.api_calls.contains_key("ec2:CreateFleet"));
    assert_eq!(templates_of(&env, &lc).await.len(), 1);
    // WHEN a fresh process runs the next cycle
    let aws = env.aws_in(&cache);
    let next = rebalance(&aws, &config(), CycleOptions::default())
        .await
        .expect("cycle");
    // THEN it launches from the template found, and creates none
    assert!(
        !next.api_calls.contains_key("ec2:CreateLaunchTemplate"),
        "{:?}",
        next.api_calls
    );
    let made = templates_of(&env, &lc).await[0].0.clone();
    assert!(
        next.actions
            .iter()
            .any(|a| matches!(&a.kind, ActionKind::Launch(s)
            if s.launch_template.id.as_deref() == Some(made.as_str()))),
        "{:?}",
        next.actions
    );
    converge(&env, &cache).await;
    assert_eq!(env.mix("lc-crash").await, (0, 1));

    // GIVEN another LC group WHEN two cycles run at once, three times over
    let (lc2, _) = lc_group(&env, "lc-twice", 1).await;
    for _ in 0..3 {
        let (a, b, conf) = (env.aws_in(&cache), env.aws_in(&cache), config());
        let (x, y) = tokio::join!(
            rebalance(&a, &conf, CycleOptions::default()),
            rebalance(&b, &conf, CycleOptions::default())
        );
        let (x, y) = (x.expect("cycle"), y.expect("cycle"));
        // THEN no template creation failed: the loser of a race finds it already there, ours
        for r in [&x, &y] {
            assert!(
                !r.actions
                    .iter()
                    .any(|a| a.reason == Reason::TemplateFromLaunchConfiguration
                        && !matches!(a.outcome, Outcome::Done(_) | Outcome::AlreadyDone(_))),
                "{:?}",
                r.actions
            );
        }
    }
    // AND there is one template, and the group converges to spot at its desired capacity
    assert_eq!(templates_of(&env, &lc2).await.len(), 1);
    converge(&env, &cache).await;
    assert_eq!(env.mix("lc-twice").await, (0, 1));
    let group = env.group_state("lc-twice").await;
    assert_eq!((group.desired, group.max), (1, 1));
}
