//! The fault and market proxy, driven through the real SDK clients against moto.
//!
//! Every test starts its own proxy. moto is shared with other test files, so these tests keep
//! to their own regions (`ap-southeast-2`, `ca-central-1`) and unique resource names.

mod lifecycle;
mod metrics;
mod requirements;
mod volumes;
pub(crate) mod wipeout;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_ec2::config::Credentials;
use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ec2::types::{
    DefaultTargetCapacityType, Filter, FleetLaunchTemplateConfigRequest, FleetLaunchTemplateOverridesRequest,
    FleetLaunchTemplateSpecificationRequest, FleetType, InstanceLifecycle, InstanceType, Placement,
    RequestLaunchTemplateData, ResourceType, Tag, TagSpecification, TargetCapacitySpecificationRequest,
};
use spotswap_aws::ApiRates;
use spotswap_tests::proxy::{Fault, FaultKind, Proxy};

const SYDNEY: &str = "ap-southeast-2";
const CANADA: &str = "ca-central-1";
const TEST_TAG: &str = "spotswap-proxy-test";

async fn proxy() -> Proxy {
    Proxy::from_env()
        .await
        .expect("proxy starts (run under scripts/with-moto.sh)")
}

async fn sdk_config(proxy: &Proxy, region: &'static str, retry: RetryConfig) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region))
        .endpoint_url(proxy.url())
        .credentials_provider(Credentials::new(
            "AKIDPROXYTEST",
            "secret",
            None,
            None,
            "proxy-tests",
        ))
        .retry_config(retry)
        .load()
        .await
}

async fn ec2(proxy: &Proxy, region: &'static str) -> aws_sdk_ec2::Client {
    aws_sdk_ec2::Client::new(&sdk_config(proxy, region, RetryConfig::standard()).await)
}

/// For tests that must see the first answer, not the SDK's retried one.
async fn ec2_no_retry(proxy: &Proxy, region: &'static str) -> aws_sdk_ec2::Client {
    aws_sdk_ec2::Client::new(&sdk_config(proxy, region, RetryConfig::disabled()).await)
}

async fn autoscaling(proxy: &Proxy, region: &'static str) -> aws_sdk_autoscaling::Client {
    aws_sdk_autoscaling::Client::new(&sdk_config(proxy, region, RetryConfig::standard()).await)
}

fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    format!("{prefix}-{nanos}-{}", N.fetch_add(1, Ordering::Relaxed))
}

fn calls(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, n)| (k.to_string(), *n)).collect()
}

/// The default subnet of each AZ, sorted by AZ.
async fn default_subnets(ec2: &aws_sdk_ec2::Client) -> Vec<(String, String)> {
    let out = ec2
        .describe_subnets()
        .filters(Filter::builder().name("default-for-az").values("true").build())
        .send()
        .await
        .expect("describe subnets");
    let mut subnets: Vec<(String, String)> = out
        .subnets()
        .iter()
        .map(|s| {
            (
                s.availability_zone().unwrap().to_owned(),
                s.subnet_id().unwrap().to_owned(),
            )
        })
        .collect();
    subnets.sort();
    assert!(subnets.len() >= 2, "moto has a default subnet per AZ");
    subnets
}

async fn launch_template(ec2: &aws_sdk_ec2::Client) -> String {
    let name = unique("proxy-lt");
    ec2.create_launch_template()
        .launch_template_name(&name)
        .launch_template_data(
            RequestLaunchTemplateData::builder()
                .image_id("ami-12c6146b")
                .build(),
        )
        .send()
        .await
        .expect("create launch template");
    name
}

async fn instant_spot_fleet(
    ec2: &aws_sdk_ec2::Client,
    template: &str,
    overrides: Vec<FleetLaunchTemplateOverridesRequest>,
    run: &str,
) -> aws_sdk_ec2::operation::create_fleet::CreateFleetOutput {
    ec2.create_fleet()
        .r#type(FleetType::Instant)
        .launch_template_configs(
            FleetLaunchTemplateConfigRequest::builder()
                .launch_template_specification(
                    FleetLaunchTemplateSpecificationRequest::builder()
                        .launch_template_name(template)
                        .version("$Latest")
                        .build(),
                )
                .set_overrides(Some(overrides))
                .build(),
        )
        .target_capacity_specification(
            TargetCapacitySpecificationRequest::builder()
                .total_target_capacity(1)
                .default_target_capacity_type(DefaultTargetCapacityType::Spot)
                .build(),
        )
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Instance)
                .tags(Tag::builder().key(TEST_TAG).value(run).build())
                .build(),
        )
        .send()
        .await
        .expect("CreateFleet instant answers 200 even without capacity")
}

async fn instances_tagged(ec2: &aws_sdk_ec2::Client, run: &str) -> Vec<aws_sdk_ec2::types::Instance> {
    ec2.describe_instances()
        .filters(
            Filter::builder()
                .name(format!("tag:{TEST_TAG}"))
                .values(run)
                .build(),
        )
        .send()
        .await
        .expect("describe instances")
        .reservations()
        .iter()
        .flat_map(|r| r.instances().to_vec())
        .collect()
}

fn override_in_subnet(ty: &str, subnet: &str) -> FleetLaunchTemplateOverridesRequest {
    FleetLaunchTemplateOverridesRequest::builder()
        .instance_type(InstanceType::from(ty))
        .subnet_id(subnet)
        .build()
}

#[tokio::test]
async fn scenario_spot_prices_come_back_per_pool() {
    // GIVEN prices for two m5.large pools and a default for every other pool
    let proxy = proxy().await;
    let ec2 = ec2(&proxy, SYDNEY).await;
    proxy.set_spot_price("m5.large", "ap-southeast-2a", 0.042);
    proxy.set_spot_price("m5.large", "ap-southeast-2b", 0.051);
    proxy.set_default_spot_price(Some(0.09));

    // WHEN the spot price history is read through the proxy
    let prices =
        |out: aws_sdk_ec2::operation::describe_spot_price_history::DescribeSpotPriceHistoryOutput| {
            out.spot_price_history()
                .iter()
                .map(|p| {
                    (
                        format!(
                            "{}/{}",
                            p.instance_type().unwrap().as_str(),
                            p.availability_zone().unwrap()
                        ),
                        p.spot_price().unwrap().to_owned(),
                    )
                })
                .collect::<BTreeMap<_, _>>()
        };
    let history = |ec2: aws_sdk_ec2::Client| async move {
        ec2.describe_spot_price_history()
            .instance_types(InstanceType::M5Large)
            .instance_types(InstanceType::C5Large)
            .send()
            .await
            .expect("describe spot price history")
    };
    let with_default = prices(history(ec2.clone()).await);

    // THEN each pool has its scenario price, and the rest the default
    assert_eq!(with_default["m5.large/ap-southeast-2a"], "0.042");
    assert_eq!(with_default["m5.large/ap-southeast-2b"], "0.051");
    assert_eq!(with_default["m5.large/ap-southeast-2c"], "0.09");
    assert_eq!(with_default["c5.large/ap-southeast-2a"], "0.09");

    // AND without a default, unpriced pools keep moto's constant
    proxy.set_default_spot_price(None);
    let without_default = prices(history(ec2).await);
    assert_eq!(without_default["m5.large/ap-southeast-2a"], "0.042");
    assert_eq!(without_default["c5.large/ap-southeast-2a"], "0.00001");
    assert_eq!(proxy.calls(), calls(&[("ec2:DescribeSpotPriceHistory", 2)]));
    assert_eq!(proxy.mutating_calls(), 0);
}

#[tokio::test]
async fn fleet_with_every_pool_out_of_capacity_reports_errors_and_launches_nothing() {
    // GIVEN m5.large has no capacity in the first two AZs, one named by subnet, one by AZ
    let proxy = proxy().await;
    let ec2 = ec2(&proxy, CANADA).await;
    let subnets = default_subnets(&ec2).await;
    let ((az1, subnet1), (az2, _)) = (&subnets[0], &subnets[1]);
    proxy.set_no_capacity("m5.large", az1, true);
    proxy.set_no_capacity("m5.large", az2, true);
    let template = launch_template(&ec2).await;
    let run = unique("all-ice");
    proxy.reset_calls();

    // WHEN an instant spot fleet asks for exactly those pools
    let overrides = vec![
        override_in_subnet("m5.large", subnet1),
        FleetLaunchTemplateOverridesRequest::builder()
            .instance_type(InstanceType::M5Large)
            .availability_zone(az2)
            .build(),
    ];
    let fleet = instant_spot_fleet(&ec2, &template, overrides, &run).await;

    // THEN the SDK parses no instances and one InsufficientInstanceCapacity per pool
    assert!(fleet.instances().is_empty(), "{fleet:?}");
    assert!(fleet.fleet_id().unwrap().starts_with("fleet-"));
    let errors = fleet.errors();
    assert_eq!(errors.len(), 2, "{errors:?}");
    for e in errors {
        assert_eq!(e.error_code(), Some("InsufficientInstanceCapacity"));
        assert_eq!(e.lifecycle(), Some(&InstanceLifecycle::Spot));
        assert!(!e.error_message().unwrap_or_default().is_empty());
        let lt = e.launch_template_and_overrides().unwrap();
        assert_eq!(
            lt.launch_template_specification().unwrap().launch_template_name(),
            Some(template.as_str())
        );
        assert_eq!(
            lt.overrides().unwrap().instance_type(),
            Some(&InstanceType::M5Large)
        );
    }
    assert_eq!(
        errors[0]
            .launch_template_and_overrides()
            .unwrap()
            .overrides()
            .unwrap()
            .subnet_id(),
        Some(subnet1.as_str())
    );
    assert_eq!(
        errors[1]
            .launch_template_and_overrides()
            .unwrap()
            .overrides()
            .unwrap()
            .availability_zone(),
        Some(az2.as_str())
    );

    // AND moto never saw the launch
    assert!(instances_tagged(&ec2, &run).await.is_empty());
    assert_eq!(proxy.call_count("ec2:CreateFleet"), 1);
}

#[tokio::test]
async fn partially_out_of_capacity_fleet_launches_in_a_remaining_pool() {
    // GIVEN m5.large has no capacity in the first AZ
    let proxy = proxy().await;
    let ec2 = ec2(&proxy, SYDNEY).await;
    let subnets = default_subnets(&ec2).await;
    let ((az1, subnet1), (az2, subnet2)) = (&subnets[0], &subnets[1]);
    proxy.set_no_capacity("m5.large", az1, true);
    let template = launch_template(&ec2).await;
    let run = unique("part-ice");

    // WHEN an instant spot fleet offers that pool and c5.large in the second AZ
    let overrides = vec![
        override_in_subnet("m5.large", subnet1),
        override_in_subnet("c5.large", subnet2),
    ];
    let fleet = instant_spot_fleet(&ec2, &template, overrides, &run).await;

    // THEN it launches c5.large in the second AZ and reports the first pool as an error
    let launched = fleet.instances();
    assert_eq!(launched.len(), 1, "{fleet:?}");
    assert_eq!(launched[0].instance_type(), Some(&InstanceType::C5Large));
    let errors = fleet.errors();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].error_code(), Some("InsufficientInstanceCapacity"));
    let failed = errors[0]
        .launch_template_and_overrides()
        .unwrap()
        .overrides()
        .unwrap();
    assert_eq!(failed.instance_type(), Some(&InstanceType::M5Large));
    assert_eq!(failed.subnet_id(), Some(subnet1.as_str()));

    // AND moto agrees on where the instance is
    let instances = instances_tagged(&ec2, &run).await;
    assert_eq!(instances.len(), 1);
    assert_eq!(instances[0].instance_type(), Some(&InstanceType::C5Large));
    assert_eq!(
        instances[0].placement().unwrap().availability_zone(),
        Some(az2.as_str())
    );
}

#[tokio::test]
async fn run_instances_in_a_pool_out_of_capacity_fails_like_aws() {
    // GIVEN t3.micro has no capacity in the first AZ
    let proxy = proxy().await;
    let ec2 = ec2_no_retry(&proxy, CANADA).await;
    let subnets = default_subnets(&ec2).await;
    let ((az1, _), (az2, _)) = (&subnets[0], &subnets[1]);
    proxy.set_no_capacity("t3.micro", az1, true);
    let run = |az: String| {
        ec2.run_instances()
            .image_id("ami-12c6146b")
            .instance_type(InstanceType::T3Micro)
            .placement(Placement::builder().availability_zone(az).build())
            .min_count(1)
            .max_count(1)
            .send()
    };

    // WHEN RunInstances targets that pool
    let err = run(az1.clone()).await.expect_err("no capacity");

    // THEN it fails with HTTP 500 and InsufficientInstanceCapacity, as AWS does
    assert_eq!(err.code(), Some("InsufficientInstanceCapacity"), "{err:?}");
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(500));

    // AND the same type in another AZ still launches
    let ok = run(az2.clone()).await.expect("capacity in the second AZ");
    let id = ok.instances()[0].instance_id().unwrap().to_owned();
    assert_eq!(proxy.call_count("ec2:RunInstances"), 2);
    ec2.terminate_instances()
        .instance_ids(id)
        .send()
        .await
        .expect("clean up");
}

#[tokio::test]
async fn one_throttle_is_retried_by_the_sdk_and_the_call_succeeds() {
    // GIVEN the next EC2 and Auto Scaling describe calls are throttled once each
    let proxy = proxy().await;
    let ec2 = ec2(&proxy, SYDNEY).await;
    let asg = autoscaling(&proxy, SYDNEY).await;
    proxy.add_fault(Fault::once("ec2:DescribeAvailabilityZones", FaultKind::Throttle));
    proxy.add_fault(Fault::once(
        "autoscaling:DescribeAutoScalingGroups",
        FaultKind::Throttle,
    ));

    // WHEN they are called with the SDK's standard retry
    let zones = ec2.describe_availability_zones().send().await;
    let groups = asg.describe_auto_scaling_groups().send().await;

    // THEN both succeed, after two arrivals each
    assert!(!zones
        .expect("retried past the throttle")
        .availability_zones()
        .is_empty());
    groups.expect("retried past the throttle");
    assert_eq!(
        proxy.calls(),
        calls(&[
            ("autoscaling:DescribeAutoScalingGroups", 2),
            ("ec2:DescribeAvailabilityZones", 2),
        ])
    );
}

#[tokio::test]
async fn persistent_throttle_surfaces_as_the_services_throttling_error() {
    // GIVEN every EC2 and Auto Scaling call is throttled
    let proxy = proxy().await;
    let ec2 = ec2(&proxy, SYDNEY).await;
    let asg = autoscaling(&proxy, SYDNEY).await;
    proxy.add_fault(Fault {
        operation: None,
        kind: FaultKind::Throttle,
        probability: 1.0,
        remaining: None,
    });

    // WHEN each is called with the SDK's standard retry
    let (zones, groups) = tokio::join!(
        ec2.describe_availability_zones().send(),
        asg.describe_auto_scaling_groups().send()
    );

    // THEN EC2 gives RequestLimitExceeded on a 503 and Auto Scaling Throttling on a 400,
    // after the standard three attempts
    let err = zones.expect_err("throttled");
    assert_eq!(err.code(), Some("RequestLimitExceeded"), "{err:?}");
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(503));
    let err = groups.expect_err("throttled");
    assert_eq!(err.code(), Some("Throttling"), "{err:?}");
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(400));
    assert_eq!(
        proxy.calls(),
        calls(&[
            ("autoscaling:DescribeAutoScalingGroups", 3),
            ("ec2:DescribeAvailabilityZones", 3),
        ])
    );
}

#[tokio::test]
async fn dropped_create_tags_happened_although_the_client_saw_an_error() {
    // GIVEN a security group, and a proxy that drops the connection after each CreateTags
    let proxy = proxy().await;
    let ec2_once = ec2_no_retry(&proxy, CANADA).await;
    let group = ec2_once
        .create_security_group()
        .group_name(unique("proxy-sg"))
        .description("proxy test")
        .send()
        .await
        .expect("create security group")
        .group_id()
        .unwrap()
        .to_owned();
    proxy.add_fault(Fault::always("ec2:CreateTags", FaultKind::DropAfterForward));

    // WHEN the client tags it
    let err = ec2_once
        .create_tags()
        .resources(&group)
        .tags(Tag::builder().key("dropped").value("yes").build())
        .send()
        .await
        .expect_err("the connection was dropped");

    // THEN the client saw a connection failure, yet moto holds the tag
    assert!(matches!(err, SdkError::DispatchFailure(_)), "{err:?}");
    let tags = |ec2: aws_sdk_ec2::Client, group: String| async move {
        ec2.describe_tags()
            .filters(Filter::builder().name("resource-id").values(group).build())
            .send()
            .await
            .expect("describe tags")
            .tags()
            .iter()
            .map(|t| (t.key().unwrap().to_owned(), t.value().unwrap().to_owned()))
            .collect::<BTreeMap<_, _>>()
    };
    assert_eq!(tags(ec2_once.clone(), group.clone()).await["dropped"], "yes");
    assert_eq!(proxy.call_count("ec2:CreateTags"), 1);

    // AND with standard retry the SDK replays a once-dropped call, which then succeeds
    proxy.clear_faults();
    proxy.add_fault(Fault::once("ec2:CreateTags", FaultKind::DropAfterForward));
    ec2(&proxy, CANADA)
        .await
        .create_tags()
        .resources(&group)
        .tags(Tag::builder().key("replayed").value("yes").build())
        .send()
        .await
        .expect("retried after the drop");
    assert_eq!(tags(ec2_once, group).await["replayed"], "yes");
    assert_eq!(proxy.call_count("ec2:CreateTags"), 3);
}

/// Which of `n` describe calls failed under a 50% HTTP 503 fault with this seed.
async fn failure_pattern(seed: u64, n: usize) -> Vec<bool> {
    let proxy = proxy().await;
    proxy.set_seed(seed);
    proxy.add_fault(Fault::always("DescribeAvailabilityZones", FaultKind::Http503).with_probability(0.5));
    let ec2 = ec2_no_retry(&proxy, SYDNEY).await;
    let mut failed = Vec::with_capacity(n);
    for _ in 0..n {
        match ec2.describe_availability_zones().send().await {
            Ok(_) => failed.push(false),
            Err(err) => {
                assert_eq!(err.code(), Some("Unavailable"), "{err:?}");
                failed.push(true);
            }
        }
    }
    assert_eq!(proxy.call_count("ec2:DescribeAvailabilityZones"), n as u64);
    failed
}

#[tokio::test]
async fn random_faults_replay_exactly_with_the_same_seed() {
    // GIVEN / WHEN the same 50% fault schedule runs twice with seed 7, and once with seed 8
    let first = failure_pattern(7, 24).await;
    let replay = failure_pattern(7, 24).await;
    let other = failure_pattern(8, 24).await;

    // THEN the seed fixes which calls fail, and the faults really are mixed
    assert_eq!(first, replay);
    assert_ne!(first, other);
    assert!(first.contains(&true) && first.contains(&false), "{first:?}");
}

#[tokio::test]
async fn delay_fault_slows_the_call_and_then_forwards_it() {
    // GIVEN one 300 ms delay on DescribeAvailabilityZones
    let proxy = proxy().await;
    let ec2 = ec2_no_retry(&proxy, SYDNEY).await;
    proxy.add_fault(Fault::once(
        "DescribeAvailabilityZones",
        FaultKind::Delay(Duration::from_millis(300)),
    ));

    // WHEN it is called twice
    let started = Instant::now();
    ec2.describe_availability_zones()
        .send()
        .await
        .expect("delayed, not failed");
    let delayed = started.elapsed();
    let spent = proxy.pending_faults();
    ec2.describe_availability_zones().send().await.expect("plain");

    // THEN the first waited at least the delay and was still answered; the fault was spent by
    // it, so nothing could delay the second (no upper bound on time: moto's speed varies)
    assert!(delayed >= Duration::from_millis(300), "{delayed:?}");
    assert_eq!(spent, 0, "the one-shot delay is spent");
    assert_eq!(proxy.call_count("ec2:DescribeAvailabilityZones"), 2);
}

#[tokio::test]
async fn calls_are_counted_per_service_and_operation() {
    // GIVEN clients of four services through one proxy
    let proxy = proxy().await;
    let config = sdk_config(&proxy, CANADA, RetryConfig::standard()).await;
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let asg = aws_sdk_autoscaling::Client::new(&config);
    let sqs = aws_sdk_sqs::Client::new(&config);
    let events = aws_sdk_eventbridge::Client::new(&config);

    // WHEN each makes its calls, one of them mutating
    ec2.describe_availability_zones().send().await.unwrap();
    ec2.describe_availability_zones().send().await.unwrap();
    ec2.create_security_group()
        .group_name(unique("proxy-count"))
        .description("proxy test")
        .send()
        .await
        .unwrap();
    asg.describe_auto_scaling_groups().send().await.unwrap();
    sqs.list_queues().send().await.unwrap();
    events.list_rules().send().await.unwrap();

    // THEN Query (Action=) and JSON (X-Amz-Target) calls are keyed by their SigV4 service
    assert_eq!(
        proxy.calls(),
        calls(&[
            ("autoscaling:DescribeAutoScalingGroups", 1),
            ("ec2:CreateSecurityGroup", 1),
            ("ec2:DescribeAvailabilityZones", 2),
            ("events:ListRules", 1),
            ("sqs:ListQueues", 1),
        ])
    );
    assert_eq!(proxy.mutating_calls(), 1);

    // AND a reset starts over
    proxy.reset_calls();
    assert!(proxy.calls().is_empty());
    assert_eq!(proxy.mutating_calls(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attach_instances_is_refused_as_aws_refuses_it() {
    use spotswap_tests::fleet::{Env, GroupSpec};
    // GIVEN two groups behind the proxy (web at desired 1 = max 1, api at desired 1 = max 2)
    // and one instance in no group
    let proxy = proxy().await;
    let env = Env::at(&proxy.url()).await;
    let web = env
        .group(&GroupSpec {
            max: 1,
            ..GroupSpec::managed("attach-web", 1)
        })
        .await;
    let api = env
        .group(&GroupSpec {
            max: 2,
            ..GroupSpec::managed("attach-api", 1)
        })
        .await;
    let member = env.group_state(&web).await.in_service()[0].clone();
    let free = env
        .ec2
        .run_instances()
        .image_id("ami-12c6146b")
        .instance_type(InstanceType::M5Large)
        .min_count(1)
        .max_count(1)
        .send()
        .await
        .expect("run instance")
        .instances()[0]
        .instance_id()
        .unwrap()
        .to_string();
    let attach = |group: &str, id: &str| {
        env.asg
            .attach_instances()
            .auto_scaling_group_name(group)
            .instance_ids(id)
            .send()
    };
    let refused = |r: Result<_, SdkError<_, _>>| match r {
        Err(e) => aws_sdk_autoscaling::error::ProvideErrorMetadata::code(&e)
            .map(str::to_string)
            .unwrap_or_default(),
        Ok(_) => "accepted".into(),
    };

    // WHEN a member is attached again, to its own group or another
    // THEN both are a ValidationError and change nothing (moto would add it twice)
    assert_eq!(refused(attach(&web, &member).await), "ValidationError");
    assert_eq!(refused(attach(&api, &member).await), "ValidationError");
    // AND attaching past MaxSize is refused (moto does not enforce it)
    assert_eq!(refused(attach(&web, &free).await), "ValidationError");
    let web_state = env.group_state(&web).await;
    assert_eq!((web_state.desired, web_state.members.len()), (1, 1));
    // AND a free instance within MaxSize is attached, desired going up by one
    assert_eq!(refused(attach(&api, &free).await), "accepted");
    let api_state = env.group_state(&api).await;
    assert_eq!(api_state.desired, 2);
    assert!(api_state.members.contains_key(&free));
}

#[tokio::test]
async fn a_burst_past_its_bucket_is_throttled_with_the_services_error_and_counted() {
    // GIVEN EC2 reads may burst 3 and Auto Scaling reads 1, refilling too slowly to matter
    // within the test (one token per 1,000 s), and clients that do not retry
    let proxy = proxy().await;
    let rates = ApiRates::parse("test", "ec2-describe=0.001/3,asg-describe=0.001/1").expect("rates");
    proxy.set_rates(&rates, 1.0);
    let ec2 = ec2_no_retry(&proxy, SYDNEY).await;
    let asg = aws_sdk_autoscaling::Client::new(&sdk_config(&proxy, SYDNEY, RetryConfig::disabled()).await);

    // WHEN six EC2 reads and two Auto Scaling reads go out back to back
    let mut ec2_codes = Vec::new();
    for _ in 0..6 {
        let out = ec2.describe_availability_zones().send().await;
        ec2_codes.push(out.err().and_then(|e| e.code().map(str::to_owned)));
    }
    let first = asg.describe_auto_scaling_groups().send().await;
    let second = asg.describe_auto_scaling_groups().send().await;
    // AND a call of a bucket not yet drawn on (ec2-mutating, at spotswap's defaults)
    let tagged = ec2
        .create_tags()
        .resources("vpc-00000000")
        .tags(Tag::builder().key(TEST_TAG).value("x").build())
        .send()
        .await;

    // THEN the burst passes and every call past it gets EC2's own throttling error, on a 503
    let throttled = Some("RequestLimitExceeded".to_owned());
    assert_eq!(
        ec2_codes,
        vec![None, None, None, throttled.clone(), throttled.clone(), throttled]
    );
    // AND Auto Scaling answers a Query service's Throttling, on a 400
    assert!(first.is_ok(), "{first:?}");
    let err = second.expect_err("throttled");
    assert_eq!(err.code(), Some("Throttling"), "{err:?}");
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(400));
    // AND the other bucket was not charged for them (moto answers the made-up VPC itself)
    let tag_code = tagged.err().and_then(|e| e.code().map(str::to_owned));
    assert_ne!(tag_code.as_deref(), Some("RequestLimitExceeded"));
    // AND each throttle is counted as a call and as a throttle
    assert_eq!(
        proxy.calls(),
        calls(&[
            ("autoscaling:DescribeAutoScalingGroups", 2),
            ("ec2:CreateTags", 1),
            ("ec2:DescribeAvailabilityZones", 6),
        ])
    );
    assert_eq!(
        proxy.throttles(),
        calls(&[
            ("autoscaling:DescribeAutoScalingGroups", 1),
            ("ec2:DescribeAvailabilityZones", 3),
        ])
    );

    // WHEN the buckets are cleared THEN the next read is served again
    proxy.clear_rates();
    ec2.describe_availability_zones()
        .send()
        .await
        .expect("unthrottled");
}

/// An instant spot fleet of `capacity` in `subnet`, with `token` as its ClientToken.
async fn fleet_with_token(
    ec2: &aws_sdk_ec2::Client,
    template: &str,
    subnet: &str,
    capacity: i32,
    token: &str,
    run: &str,
) -> Result<aws_sdk_ec2::operation::create_fleet::CreateFleetOutput, String> {
    ec2.create_fleet()
        .client_token(token)
        .r#type(FleetType::Instant)
        .launch_template_configs(
            FleetLaunchTemplateConfigRequest::builder()
                .launch_template_specification(
                    FleetLaunchTemplateSpecificationRequest::builder()
                        .launch_template_name(template)
                        .version("$Latest")
                        .build(),
                )
                .overrides(override_in_subnet("m5.large", subnet))
                .build(),
        )
        .target_capacity_specification(
            TargetCapacitySpecificationRequest::builder()
                .total_target_capacity(capacity)
                .default_target_capacity_type(DefaultTargetCapacityType::Spot)
                .build(),
        )
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Instance)
                .tags(Tag::builder().key(TEST_TAG).value(run).build())
                .build(),
        )
        .send()
        .await
        .map_err(|e| e.code().unwrap_or("no code").to_owned())
}

fn fleet_instance_ids(fleet: &aws_sdk_ec2::operation::create_fleet::CreateFleetOutput) -> Vec<String> {
    let mut ids: Vec<String> = fleet
        .instances()
        .iter()
        .flat_map(|i| i.instance_ids().to_vec())
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn a_repeated_fleet_client_token_launches_once_and_a_changed_request_is_refused() {
    // GIVEN the proxy honours CreateFleet's ClientToken, and a fleet of one was launched with it
    let proxy = proxy().await;
    proxy.set_client_tokens(true);
    let ec2 = ec2_no_retry(&proxy, CANADA).await;
    let subnets = default_subnets(&ec2).await;
    let subnet = &subnets[0].1;
    let template = launch_template(&ec2).await;
    let run = unique("token");
    let token = unique("tok");
    let first = fleet_with_token(&ec2, &template, subnet, 1, &token, &run)
        .await
        .expect("first fleet");
    let first_ids = fleet_instance_ids(&first);
    assert_eq!(first_ids.len(), 1, "{first:?}");

    // WHEN the same request is sent again with the same token
    let again = fleet_with_token(&ec2, &template, subnet, 1, &token, &run)
        .await
        .expect("repeat is answered");

    // THEN it is the first fleet, with the first fleet's instance, and nothing new runs
    assert_eq!(again.fleet_id(), first.fleet_id());
    assert_eq!(fleet_instance_ids(&again), first_ids);
    assert_eq!(instances_tagged(&ec2, &run).await.len(), 1);

    // WHEN the token comes with different parameters THEN EC2's mismatch error, no launch
    let changed = fleet_with_token(&ec2, &template, subnet, 2, &token, &run).await;
    assert_eq!(changed.err().as_deref(), Some("IdempotentParameterMismatch"));
    assert_eq!(instances_tagged(&ec2, &run).await.len(), 1);

    // AND a new token launches anew
    let other = fleet_with_token(&ec2, &template, subnet, 1, &unique("tok"), &run)
        .await
        .expect("new token");
    assert_ne!(other.fleet_id(), first.fleet_id());
    assert_eq!(instances_tagged(&ec2, &run).await.len(), 2);
    assert_eq!(proxy.call_count("ec2:CreateFleet"), 4);
}

#[tokio::test]
async fn status_checks_stay_initializing_or_fail_as_the_scenario_says() {
    use aws_sdk_ec2::types::SummaryStatus;
    use spotswap_tests::proxy::StatusChecks;

    // GIVEN three running instances, whose checks moto reports ok at once
    let proxy = proxy().await;
    let ec2 = ec2(&proxy, CANADA).await;
    let run = unique("status");
    let launched = ec2
        .run_instances()
        .image_id("ami-12c6146b")
        .instance_type(InstanceType::M5Large)
        .min_count(3)
        .max_count(3)
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Instance)
                .tags(Tag::builder().key(TEST_TAG).value(&run).build())
                .build(),
        )
        .send()
        .await
        .expect("run instances");
    let ids: Vec<String> = launched
        .instances()
        .iter()
        .filter_map(|i| i.instance_id().map(str::to_owned))
        .collect();
    assert_eq!(ids.len(), 3);
    let statuses = |ec2: aws_sdk_ec2::Client, ids: Vec<String>| async move {
        let out = ec2
            .describe_instance_status()
            .set_instance_ids(Some(ids.clone()))
            .send()
            .await
            .expect("describe instance status");
        ids.iter()
            .map(|id| {
                let s = out
                    .instance_statuses()
                    .iter()
                    .find(|s| s.instance_id() == Some(id.as_str()))
                    .expect("every instance answered");
                let summary = |x: Option<&aws_sdk_ec2::types::InstanceStatusSummary>| {
                    x.and_then(|x| x.status()).cloned()
                };
                (summary(s.system_status()), summary(s.instance_status()))
            })
            .collect::<Vec<_>>()
    };
    let ok = (Some(SummaryStatus::Ok), Some(SummaryStatus::Ok));
    assert_eq!(statuses(ec2.clone(), ids.clone()).await, vec![ok.clone(); 3]);

    // WHEN the first initializes for an hour, the second fails, the third's hold has passed
    proxy.set_status_checks(
        &ids[0],
        Some(StatusChecks::Initializing(Duration::from_secs(3600))),
    );
    proxy.set_status_checks(&ids[1], Some(StatusChecks::Impaired));
    proxy.set_status_checks(&ids[2], Some(StatusChecks::Initializing(Duration::ZERO)));

    // THEN DescribeInstanceStatus says so, for both checks of each
    let initializing = (
        Some(SummaryStatus::Initializing),
        Some(SummaryStatus::Initializing),
    );
    let impaired = (Some(SummaryStatus::Impaired), Some(SummaryStatus::Impaired));
    assert_eq!(
        statuses(ec2.clone(), ids.clone()).await,
        vec![initializing, impaired, ok.clone()]
    );

    // AND without the rules moto's answer is back
    for id in &ids {
        proxy.set_status_checks(id, None);
    }
    assert_eq!(statuses(ec2, ids).await, vec![ok; 3]);
}

/// `GET`s or `POST`s `url` and returns the body as JSON.
async fn control(method: hyper::Method, url: &str) -> serde_json::Value {
    use http_body_util::{BodyExt, Full};
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<hyper::body::Bytes>>();
    let req = hyper::Request::builder()
        .method(method)
        .uri(url)
        .body(Full::default())
        .expect("request");
    let response = client.request(req).await.expect("control path answers");
    assert_eq!(response.status(), hyper::StatusCode::OK);
    let body = response.into_body().collect().await.expect("body").to_bytes();
    serde_json::from_slice(&body).expect("JSON")
}

#[tokio::test]
async fn the_bench_binary_throttles_and_reports_on_its_control_paths() {
    use tokio::io::AsyncBufReadExt;

    // GIVEN spotswap-proxy in front of moto with EC2 reads at a burst of 2, refilling too
    // slowly to matter, at scale 1
    let upstream = std::env::var("AWS_ENDPOINT_URL").expect("run under scripts/with-moto.sh");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_spotswap-proxy"))
        .args([
            "--upstream",
            &upstream,
            "--port",
            "0",
            "--rates",
            "ec2-describe=0.001/2",
        ])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spotswap-proxy starts");
    let mut line = String::new();
    tokio::io::BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .await
        .expect("listening line");
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"))
        .to_owned();
    let config = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(CANADA))
        .endpoint_url(&url)
        .credentials_provider(Credentials::new("AKIDBIN", "secret", None, None, "bin"))
        .retry_config(RetryConfig::disabled())
        .load()
        .await;
    let ec2 = aws_sdk_ec2::Client::new(&config);

    // WHEN three EC2 reads go out
    let mut codes = Vec::new();
    for _ in 0..3 {
        let out = ec2.describe_availability_zones().send().await;
        codes.push(out.err().and_then(|e| e.code().map(str::to_owned)));
    }

    // THEN the third is throttled, and /_counts says so in the shape bench/swaps.py reads
    assert_eq!(codes, vec![None, None, Some("RequestLimitExceeded".to_owned())]);
    let counts = control(hyper::Method::GET, &format!("{url}/_counts")).await;
    let op = "ec2:DescribeAvailabilityZones";
    assert_eq!(counts["calls"][op], 3, "{counts}");
    assert_eq!(counts["throttled"][op], 1, "{counts}");
    assert_eq!(counts["class"][op], "read");
    assert_eq!(counts["bucket"][op], "ec2-describe");
    assert_eq!(counts["classes"]["ec2-describe"]["burst"], 2.0);
    assert_eq!(counts["scale"], 1.0);
    let rates = counts["api_rates"].as_str().expect("api_rates");
    assert!(rates.contains("ec2-describe=0.001/2"), "{rates}");
    assert!(
        ApiRates::parse("SPOTSWAP_API_RATES", rates).is_ok(),
        "the CLI must accept {rates}"
    );

    // AND /_reset zeroes the counters, and is not itself counted
    control(hyper::Method::POST, &format!("{url}/_reset")).await;
    let counts = control(hyper::Method::GET, &format!("{url}/_counts")).await;
    assert_eq!(counts["calls"], serde_json::json!({}), "{counts}");
    assert_eq!(counts["throttled"], serde_json::json!({}));
    child.kill().await.expect("stopped");
}
