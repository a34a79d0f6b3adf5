//! Every AWS operation each function's code calls is granted to that function's role in
//! template.yaml: the complement of the least-privilege check in `template_iam.rs`.
//!
//! "Operations the code calls" come from the code, two ways, so neither can drift:
//! - **observed**: each function's own workflow (`rebalance`, `handle_event`, `reap`: what its
//!   Lambda handler runs) is driven on moto through the paths that reach its calls (a swap to
//!   completion with a MaxSize raise and an event published; spot warnings with and without a
//!   terminating hook and a rebalance recommendation; a reaper pass over an orphan, a detached
//!   instance, a raised MaxSize and a template of an unused launch configuration; a
//!   launch-configuration group's swap), each in a cold container of its own (a cache shared with
//!   other tests would hide the calls that fill it), and the adapter's own call counter (an SDK interceptor:
//!   every call the function sent, failed ones included) names the operations. Each must be
//!   granted to the function's role.
//! - **declared**: every operation named in `crates/aws/src/port.rs` (the one list of the
//!   operations the adapter can send) must have been observed by some function, so a new call
//!   cannot arrive without a scenario here that proves its grant.

use std::collections::{BTreeMap, BTreeSet};

use spotswap_aws::cache::MarketCache;
use spotswap_aws::workflow::now;
use spotswap_aws::{handle_event, reap, rebalance, Aws, Config, CycleOptions, EventOptions};
use spotswap_core::tags;
use spotswap_tests::fleet::{sample_price_file, Env, GroupSpec};
use spotswap_tests::iam::{function_grants, grants_cover};
use spotswap_tests::lambda::workspace_root;
use spotswap_tests::proxy::{PlanSpec, Proxy};

use super::interruption::{group_with_spot, warning};
use super::reaper::{detached_tags, launch_tags, plant};

const TEMPLATE: &str = include_str!("../../template.yaml");
const PORT: &str = include_str!("../../crates/aws/src/port.rs");

/// IAM's spelling of a call counter key (the SDK names EventBridge `eventbridge`).
fn iam_name(key: &str) -> String {
    match key.split_once(':') {
        Some(("eventbridge", op)) => format!("events:{op}"),
        _ => key.to_owned(),
    }
}

/// The operations `port.rs` names (`"service:Operation"` constants of its `op` module).
fn declared_operations() -> BTreeSet<String> {
    let op_module = PORT
        .split("pub(crate) mod op {")
        .nth(1)
        .and_then(|rest| rest.split("\n}").next())
        .expect("port.rs has an `op` module");
    let re = regex_lite::Regex::new(r#"const [A-Z_]+: &str = "([a-z0-9-]+:[A-Za-z]+)";"#).expect("regex");
    re.captures_iter(op_module).map(|c| c[1].to_owned()).collect()
}

#[derive(Default)]
struct Observed(BTreeMap<&'static str, BTreeSet<String>>);

impl Observed {
    fn add(&mut self, function: &'static str, aws: &Aws) {
        self.0
            .entry(function)
            .or_default()
            .extend(aws.api_calls().keys().map(|k| iam_name(k)));
    }
}

fn config(price_file: bool) -> Config {
    Config {
        price_file: price_file.then(sample_price_file),
        event_bus: "default".into(),
        ..Config::default()
    }
}

fn event_for(name: &str, instance: &str) -> String {
    std::fs::read_to_string(workspace_root().join("events").join(name))
        .expect("event file")
        .replace("i-1234567890abcdef0", instance)
}

/// The rebalancer: a swap to completion in a group at MaxSize (raise, attach, retire, restore,
/// publish), the first cycle without a price file (the Price List API), in a group tagged
/// `spotswap:replace-outdated=true`.
async fn rebalancer(env: &Env, seen: &mut Observed) {
    // replace-outdated: the template's version today is read (DescribeLaunchTemplateVersions)
    // and a CloudFormation stack tag: the stack's status is read before a launch (DescribeStacks)
    let group = env
        .group(
            &GroupSpec::managed("iam-rebalancer", 1)
                .tag("spotswap:replace-outdated", "true")
                .tag("aws:cloudformation:stack-name", "iam-stack"),
        )
        .await;
    // a launch-configuration group: its configuration and our templates are read
    // (DescribeLaunchConfigurations, DescribeLaunchTemplates), its template made
    // (CreateLaunchTemplate, tagged at creation)
    super::launch_configuration::lc_group(env, "iam-lc", 1).await;
    let container = MarketCache::default();
    let aws = env.aws_in(&container);
    let _ = rebalance(&aws, &config(false), CycleOptions::default()).await;
    seen.add("RebalancerFunction", &aws);
    for _ in 0..8 {
        let aws = env.aws_in(&container);
        let cycle = rebalance(&aws, &config(true), CycleOptions::default())
            .await
            .expect("cycle");
        seen.add("RebalancerFunction", &aws);
        if cycle.mutating_calls() == 0 {
            break;
        }
    }
    assert_eq!(env.mix(&group).await, (0, 1), "the swap completed");
    assert_eq!(env.mix("iam-lc").await, (0, 1), "the LC group's swap completed");
}

/// The rebalancer's on-demand fallback: a mixed-instances group whose spot pools are wiped out
/// (the proxy makes its spot launches fail as AWS's do) loses an instance; the cycle reads the
/// group's scaling activities (DescribeScalingActivities) and raises its distribution.
async fn mixed_fallback(env: &Env, proxy: &Proxy, seen: &mut Observed) {
    let name = "iam-mixed";
    super::mixed::mixed_group(env, name, 1, 0, &[]).await;
    super::proxy::wipeout::wipe_out(proxy, env, true).await;
    let ids = env.group_state(name).await.in_service();
    super::proxy::wipeout::interrupt(env, &ids).await;
    let aws = env.aws_in(&MarketCache::default());
    rebalance(&aws, &config(true), CycleOptions::default())
        .await
        .expect("cycle");
    seen.add("RebalancerFunction", &aws);
    super::proxy::wipeout::wipe_out(proxy, env, false).await;
    assert_eq!(
        super::mixed::on_demand_percent(env, name).await,
        Some(100),
        "the fallback raised the distribution"
    );
}

/// An attribute-based mixed-instances group: the rebalancer asks EC2 for the types of its
/// requirements (GetInstanceTypesFromInstanceRequirements). Its globs allow none of them, so
/// nothing is launched for it.
async fn attribute_based(env: &Env, seen: &mut Observed) {
    let name = "iam-abs";
    super::mixed::mixed_group_with(
        env,
        name,
        1,
        0,
        &[("spotswap:allowed-types", "u-*")],
        super::mixed_abs::requirements(2),
    )
    .await;
    let aws = env.aws_in(&MarketCache::default());
    rebalance(&aws, &config(true), CycleOptions::default())
        .await
        .expect("cycle");
    seen.add("RebalancerFunction", &aws);
    assert_eq!(env.mix(name).await, (1, 0), "nothing launched for it");
}

/// The interruption handler: a warning for a converged spot member (detach), one in a group
/// with a terminating hook (terminate through the group), a rebalance recommendation (launch).
async fn interruption_handler(env: &Env, seen: &mut Observed) {
    let (_, spot) = group_with_spot(env, GroupSpec::managed("iam-interrupt", 1), 2).await;
    let (hooked, hooked_spot) = group_with_spot(env, GroupSpec::managed("iam-hooked", 1), 1).await;
    env.asg
        .put_lifecycle_hook()
        .lifecycle_hook_name("drain")
        .auto_scaling_group_name(&hooked)
        .lifecycle_transition("autoscaling:EC2_INSTANCE_TERMINATING")
        .send()
        .await
        .expect("put lifecycle hook");
    let container = MarketCache::default();
    for raw in [
        warning(&spot[0]),
        warning(&hooked_spot[0]),
        event_for("interruption-rebalance-recommendation.json", &spot[1]),
    ] {
        let aws = env.aws_in(&container);
        handle_event(&aws, &config(true), &raw, EventOptions::default())
            .await
            .expect("event handled");
        seen.add("InterruptionHandlerFunction", &aws);
    }
}

/// The reaper: an orphan of ours, a detached instance past its grace, a MaxSize left raised.
async fn orphan_reaper(env: &Env, seen: &mut Observed) {
    let group = env
        .group(&GroupSpec {
            max: 2,
            ..GroupSpec::managed("iam-reaper", 1)
                .tag(tags::MAX_RAISED_FROM, "1")
                .tag(tags::MAX_RAISED_TO, "2")
        })
        .await;
    plant(env, &launch_tags(&group, "i-0000gone", 30)).await;
    plant(env, &detached_tags(&group, 15)).await;
    // a template made from a launch configuration no group uses: deleted (DeleteLaunchTemplate)
    env.ec2
        .create_launch_template()
        .launch_template_name("spotswap-lc-iam-gone")
        .launch_template_data(
            aws_sdk_ec2::types::RequestLaunchTemplateData::builder()
                .image_id("ami-12c6146b")
                .build(),
        )
        .tag_specifications(
            aws_sdk_ec2::types::TagSpecification::builder()
                .resource_type(aws_sdk_ec2::types::ResourceType::LaunchTemplate)
                .tags(
                    aws_sdk_ec2::types::Tag::builder()
                        .key(tags::FROM_LAUNCH_CONFIGURATION)
                        .value("iam-gone-lc")
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("plant a template");
    let aws = env.aws_in(&MarketCache::default());
    let opts = CycleOptions {
        now: Some(now().plus_minutes(31)),
        ..CycleOptions::default()
    };
    reap(&aws, &config(true), opts).await.expect("reaper pass");
    seen.add("OrphanReaperFunction", &aws);
}

/// Stateful groups, in a reaper pass: a free Elastic IP recorded for the group (associated), a
/// free volume with its device recorded (attached), and a volume on a stopped member (detached).
async fn stateful_reaper(env: &Env, seen: &mut Observed) {
    let (group, members, az) = super::stateful::carry_group(env, "iam-stateful", 2).await;
    let alloc = super::stateful::eip(env, None).await;
    super::stateful::record_address(env, &alloc, &group).await;
    super::stateful::volume(
        env,
        &group,
        &az,
        None,
        &[(tags::CARRY_DEVICE, super::stateful::DEVICE)],
    )
    .await;
    super::stateful::volume(
        env,
        &group,
        &az,
        Some(&members[1]),
        &[(tags::CARRY_DEVICE, "/dev/sdg")],
    )
    .await;
    env.ec2
        .stop_instances()
        .instance_ids(&members[1])
        .send()
        .await
        .expect("stop");
    let aws = env.aws_in(&MarketCache::default());
    reap(&aws, &config(true), CycleOptions::default())
        .await
        .expect("reaper pass");
    seen.add("OrphanReaperFunction", &aws);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_each_function_calls_is_granted_to_its_role() {
    // GIVEN each function's workflow driven through the paths that reach its calls (through a
    // proxy that answers DescribeInstanceRefreshes, which moto lacks, as AWS does)
    // and serves commitments, which moto lacks: a Savings Plan whose rates are read (for a type
    // none of the scenarios runs, so it holds no swap)
    // and keeps mixed instances policies, as AWS does
    let proxy = Proxy::from_env().await.expect("proxy");
    proxy.set_answer_instance_refreshes(true);
    proxy.set_keep_mixed_policies(true);
    let env = Env::at(&proxy.url()).await;
    proxy.set_commitments(
        vec![],
        vec![PlanSpec::active(
            "sp-iam",
            None,
            env.region(),
            "0.010",
            &[("c5.24xlarge", "1.5")],
        )],
    );
    let mut seen = Observed::default();
    rebalancer(&env, &mut seen).await;
    mixed_fallback(&env, &proxy, &mut seen).await;
    attribute_based(&env, &mut seen).await;
    interruption_handler(&env, &mut seen).await;
    orphan_reaper(&env, &mut seen).await;
    stateful_reaper(&env, &mut seen).await;

    // WHEN the template's grants are read per function
    let t: serde_yaml::Value = serde_yaml::from_str(TEMPLATE).expect("template.yaml parses");
    let grants = function_grants(&t);

    // THEN every operation a function called is granted to its role
    let mut missing = Vec::new();
    for (function, ops) in &seen.0 {
        assert!(
            ops.iter().any(|op| spotswap_core::ops::is_mutating(op)),
            "{function} made no mutating call: the scenario reached nothing ({ops:?})"
        );
        let granted = grants
            .get(*function)
            .unwrap_or_else(|| panic!("template.yaml has no {function} with a role"));
        missing.extend(
            ops.iter()
                .filter(|op| !grants_cover(granted, op))
                .map(|op| format!("{function} calls {op}, not granted to its role")),
        );
    }
    assert!(missing.is_empty(), "{missing:#?}");

    // AND every operation port.rs can send was observed, so each has its grant proven above
    let all: BTreeSet<&String> = seen.0.values().flatten().collect();
    let unproven: Vec<String> = declared_operations()
        .into_iter()
        .filter(|op| !all.contains(op))
        .collect();
    assert!(
        unproven.is_empty(),
        "operations in port.rs that no scenario here called (add one): {unproven:?}\nobserved: {:#?}",
        seen.0
    );
}

#[test]
fn a_grant_taken_away_is_missed_and_port_operations_are_read() {
    // GIVEN the template without the rebalancer's PutEvents statement
    let mut t: serde_yaml::Value = serde_yaml::from_str(TEMPLATE).expect("template.yaml parses");
    let before = function_grants(&t);
    assert!(grants_cover(&before["RebalancerFunction"], "events:PutEvents"));
    let policies = t["Resources"]["RebalancerRole"]["Properties"]["Policies"]
        .as_sequence_mut()
        .expect("inline policies");
    for p in policies.iter_mut() {
        if let Some(st) = p["PolicyDocument"]["Statement"].as_sequence_mut() {
            st.retain(|s| s["Action"].as_str() != Some("events:PutEvents"));
        }
    }
    // THEN the rebalancer is no longer granted it, and the reaper's own grant is untouched
    let after = function_grants(&t);
    assert!(!grants_cover(&after["RebalancerFunction"], "events:PutEvents"));
    assert!(grants_cover(&after["OrphanReaperFunction"], "events:PutEvents"));
    // AND grants shared through AWS::IAM::Policy reach both roles named in it
    assert!(grants_cover(
        &after["InterruptionHandlerFunction"],
        "ec2:CreateFleet"
    ));
    assert!(!grants_cover(&after["OrphanReaperFunction"], "ec2:CreateFleet"));
    // AND port.rs's operations are read, mutations and reads alike
    let declared = declared_operations();
    assert!(
        declared.contains("ec2:CreateFleet") && declared.contains("autoscaling:DescribeAutoScalingGroups")
    );
    assert!(declared.len() >= 20, "{declared:?}");
}
