//! The interruption handler against moto: spot warnings (with and without a terminating
//! lifecycle hook), duplicate and concurrent deliveries, a burst that shelters a group, the
//! cooldown and the no-capacity fallback seen by the next rebalancer cycle, the rebalance
//! recommendation swap, bad input, the CLI and the Lambda runtime API.
//!
//! moto differs from AWS here (DESIGN.md §11), and the tests avoid depending on it:
//! - moto launches the group's replacement the moment an instance is detached; AWS does so
//!   within seconds. Tests assert the replacement exists, not when.
//! - moto ignores lifecycle hooks when terminating (the instance is gone at once, where AWS
//!   holds it in `Terminating:Wait` until the hook completes) and has no
//!   CompleteLifecycleAction. The hook test checks the call made and the capacity kept.
//! - moto answers a second DetachInstances of a detached instance with no activity; AWS
//!   answers a ValidationError. The handler treats both as "a concurrent delivery won".
//! - moto removes `aws:autoscaling:groupName` from a detached instance, hence our own
//!   `spotswap:detached-from`.

use spotswap_core::{ActionKind, Reason};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use aws_sdk_ec2::types::{
    InstanceMarketOptionsRequest, LaunchTemplateSpecification, MarketType, ResourceType, Tag,
    TagSpecification,
};
use spotswap_aws::{handle_event, rebalance, Aws, Config, CycleOptions, EventOptions, EventReport, Outcome};
use spotswap_tests::fleet::{sample_price_file, Env, GroupSpec};
use spotswap_tests::lambda::{workspace_bin, workspace_root, LambdaWatch};
use spotswap_tests::proxy::Proxy;

/// The instance id in AWS's sample events.
const SAMPLE_ID: &str = "i-1234567890abcdef0";

fn config() -> Config {
    Config {
        price_file: Some(sample_price_file()),
        // Publishing is proven in events_out.rs; the shelter test turns it back on to see it sent.
        event_bus: String::new(),
        ..Config::default()
    }
}

fn event_file(name: &str) -> String {
    std::fs::read_to_string(workspace_root().join("events").join(name)).expect("event file")
}

/// An event file from `events/`, about `instance` instead of AWS's sample instance.
fn event_for(name: &str, instance: &str) -> String {
    event_file(name).replace(SAMPLE_ID, instance)
}

pub(super) fn warning(instance: &str) -> String {
    event_for("interruption-spot-warning.json", instance)
}

async fn handle(aws: &Aws, raw: &str) -> EventReport {
    handle_event(aws, &config(), raw, EventOptions::default())
        .await
        .expect("event handled")
}

/// Most AWS calls the handler may send for a spot warning before it asks for replacement
/// capacity: the reads that decide the replacement, in at most two round trips (DESIGN.md §5).
const MAX_CALLS_BEFORE_REPLACEMENT: usize = 3;

/// Reads that decide how a warned instance is replaced: the instance (its group, its market),
/// the group (managed, in service) and the group's lifecycle hooks (detach, or terminate
/// through the group).
const DECIDING_READS: [&str; 3] = [
    "ec2:DescribeInstances",
    "autoscaling:DescribeAutoScalingGroups",
    "autoscaling:DescribeLifecycleHooks",
];

/// The handler asked for replacement capacity with `replacement`, within
/// [`MAX_CALLS_BEFORE_REPLACEMENT`] calls, all of them reads, and after each of the
/// [`DECIDING_READS`]. Bounds, not the exact sequence: the reads may come in any order.
fn assert_replacement_after_deciding_reads(report: &EventReport, log: &[String], replacement: &str) {
    let n = report
        .calls_before_replacement
        .unwrap_or_else(|| panic!("no replacement requested: {log:?}"));
    assert!(
        n <= MAX_CALLS_BEFORE_REPLACEMENT,
        "{n} calls before the replacement request: {log:?}"
    );
    assert_eq!(log.get(n).map(String::as_str), Some(replacement), "{log:?}");
    let before = &log[..n];
    assert!(
        before.iter().all(|op| spotswap_core::ops::is_read(op)),
        "a mutating call before the replacement request: {log:?}"
    );
    for read in DECIDING_READS {
        assert!(
            before.iter().any(|op| op == read),
            "replacement requested before {read}: {log:?}"
        );
    }
}

/// A JSON report's `calls_before_replacement` is set and within the bound.
fn replacement_within_bound(report: &serde_json::Value) -> bool {
    report["calls_before_replacement"]
        .as_u64()
        .is_some_and(|n| n <= MAX_CALLS_BEFORE_REPLACEMENT as u64)
}

/// (action, reason, outcome) of every decision.
pub(super) fn decisions(r: &EventReport) -> Vec<(&'static str, &'static str, &'static str)> {
    r.decisions
        .iter()
        .map(|d| (d.kind.name(), d.reason.code(), d.outcome.name()))
        .collect()
}

/// Launch a spot instance from the group's own template in its first subnet, tagged as one of
/// our completed swaps (replacing an instance long gone), and attach it: what a converged
/// group's spot members look like.
pub(super) async fn spot_member(env: &Env, group: &str) -> String {
    static RETIRED: AtomicU32 = AtomicU32::new(0);
    let replaced = format!("i-{:08x}", RETIRED.fetch_add(1, Ordering::Relaxed));
    let subnet = env.subnets().await.remove(0).0;
    let tag = |k: &str, v: &str| Tag::builder().key(k).value(v).build();
    let resp = env
        .ec2
        .run_instances()
        .launch_template(
            LaunchTemplateSpecification::builder()
                .launch_template_name(format!("{group}-lt"))
                .version("$Latest")
                .build(),
        )
        .min_count(1)
        .max_count(1)
        .subnet_id(subnet)
        .instance_market_options(
            InstanceMarketOptionsRequest::builder()
                .market_type(MarketType::Spot)
                .build(),
        )
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Instance)
                .tags(tag("spotswap:group", group))
                .tags(tag("spotswap:replaces", &replaced))
                .build(),
        )
        .send()
        .await
        .expect("run a spot instance");
    let id = resp.instances()[0].instance_id().unwrap().to_string();
    env.asg
        .attach_instances()
        .auto_scaling_group_name(group)
        .instance_ids(&id)
        .send()
        .await
        .expect("attach the spot instance");
    id
}

/// A managed group of `on_demand` on-demand instances plus `spot` attached spot members, all
/// in one subnet; MaxSize = the total.
pub(super) async fn group_with_spot(env: &Env, spec: GroupSpec, spot: usize) -> (String, Vec<String>) {
    let spec = GroupSpec {
        max: spec.desired + spot as i32,
        subnets: 1,
        ..spec
    };
    let name = env.group(&spec).await;
    let mut ids = Vec::new();
    for _ in 0..spot {
        ids.push(spot_member(env, &name).await);
    }
    (name, ids)
}

async fn terminating_hook(env: &Env, group: &str) {
    env.asg
        .put_lifecycle_hook()
        .auto_scaling_group_name(group)
        .lifecycle_hook_name("drain")
        .lifecycle_transition("autoscaling:EC2_INSTANCE_TERMINATING")
        .heartbeat_timeout(300)
        .default_result("CONTINUE")
        .send()
        .await
        .expect("put lifecycle hook");
}

/// The pool of an instance as `<type>/<az>`.
async fn pool_of(env: &Env, id: &str) -> String {
    let r = env
        .ec2
        .describe_instances()
        .instance_ids(id)
        .send()
        .await
        .unwrap();
    let i = &r.reservations()[0].instances()[0];
    format!(
        "{}/{}",
        i.instance_type().unwrap().as_str(),
        i.placement().unwrap().availability_zone().unwrap()
    )
}

/// Entries of `spotswap:interruptions`, by instance.
fn interruptions(tags: &BTreeMap<String, String>) -> Vec<String> {
    tags.get("spotswap:interruptions")
        .map(|v| {
            v.split_whitespace()
                .filter_map(|e| e.split('@').next())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spot_warning_requests_replacement_after_two_round_trips() {
    // GIVEN a managed group of 2 on-demand and 1 spot instance, with no lifecycle hook
    let env = Env::new().await;
    let (group, spot) = group_with_spot(&env, GroupSpec::managed("warn", 2), 1).await;
    let s = &spot[0];
    let pool = pool_of(&env, s).await;
    let before = env.group_state(&group).await;
    assert_eq!(before.in_service().len(), 3);

    // WHEN the spot warning for it is handled
    let aws = env.aws();
    let report = handle(&aws, &warning(s)).await;

    // THEN replacement capacity was requested with DetachInstances within 3 calls, only reads,
    //   after the reads that decide it (the instance, its group, the group's hooks)
    assert_replacement_after_deciding_reads(&report, &aws.api_call_log(), "autoscaling:DetachInstances");
    // AND the instance was detached, tagged, and its pool cooled down; the group kept desired
    // and launched a replacement at once
    assert_eq!(
        decisions(&report),
        vec![
            ("detach", "SpotInterruptionWarning", "done"),
            ("tag-detached", "SpotInterruptionWarning", "done"),
            ("record-interruption", "PoolInterrupted", "done"),
        ]
    );
    assert!(report
        .decisions
        .iter()
        .all(|d| d.pool.as_ref().map(ToString::to_string).as_deref() == Some(pool.as_str())));
    let after = env.group_state(&group).await;
    assert!(!after.members.contains_key(s), "detached");
    assert_eq!(after.desired, before.desired, "desired kept");
    assert_eq!(after.in_service().len(), 3, "the group replaced it");
    let live = env.live_instances().await;
    let detached = &live[s];
    assert_eq!(
        detached.state, "running",
        "detached, not terminated: it drains until EC2 takes it"
    );
    assert!(detached.tags.contains_key("spotswap:detached-at"));
    assert_eq!(detached.tags["spotswap:detached-from"], group);
    let replacement = after
        .members
        .keys()
        .find(|id| !before.members.contains_key(*id))
        .unwrap();
    assert!(
        !live[replacement].spot,
        "the fallback is on-demand, from the group's template"
    );
    assert!(after.tags.contains_key(&format!("spotswap:cooldown:{pool}")));
    assert_eq!(interruptions(&after.tags), vec![s.clone()]);
    assert!(
        !after.tags.contains_key("spotswap:sheltered-until"),
        "one interruption never shelters"
    );
    // AND the metric line counts it
    assert_eq!(report.metrics.len(), 1);
    assert_eq!(report.metrics[0].interruptions, 1);
    assert!(report.metrics[0].emf_line(0).contains("\"Interruptions\":1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spot_warning_with_a_terminating_hook_terminates_through_the_group() {
    // GIVEN a managed group with a terminating lifecycle hook, and a spot member
    let env = Env::new().await;
    let (group, spot) = group_with_spot(&env, GroupSpec::managed("hooked", 2), 1).await;
    terminating_hook(&env, &group).await;
    let s = &spot[0];
    let before = env.group_state(&group).await;

    // WHEN its warning is handled
    let aws = env.aws();
    let report = handle(&aws, &warning(s)).await;

    // THEN the group terminates it without decrementing (so on AWS the hook drains it), within
    //   the same bound, after the same deciding reads
    assert_replacement_after_deciding_reads(
        &report,
        &aws.api_call_log(),
        "autoscaling:TerminateInstanceInAutoScalingGroup",
    );
    assert_eq!(aws.api_calls().get("autoscaling:DetachInstances"), None);
    assert_eq!(
        decisions(&report)[0],
        ("terminate-in-group", "SpotInterruptionWarning", "done")
    );
    let after = env.group_state(&group).await;
    assert_eq!(after.desired, before.desired, "desired kept");
    assert_eq!(after.in_service().len(), 3, "the group replaced it");
    assert!(!after.members.contains_key(s));
    assert_eq!(interruptions(&after.tags), vec![s.clone()]);
    // AND a second delivery finds it gone (moto ends it at once; on AWS it would be in
    // Terminating:Wait): a no-op without a mutating call
    let aws = env.aws();
    let again = handle(&aws, &warning(s)).await;
    assert_eq!(decisions(&again), vec![("ignore", "AlreadyHandled", "done")]);
    assert_eq!(again.mutating_calls(), 0, "{:?}", again.api_calls);
}

/// What a warning leaves behind, comparable across runs: group shape, the interrupted
/// instance's tags, and the records.
async fn end_state(
    env: &Env,
    group: &str,
    s: &str,
    before: &BTreeSet<String>,
) -> (i32, usize, usize, bool, Vec<String>, bool) {
    let g = env.group_state(group).await;
    let live = env.live_instances().await;
    let launched = live.keys().filter(|id| !before.contains(*id)).count();
    (
        g.desired,
        g.in_service().len(),
        launched,
        live[s].tags.contains_key("spotswap:detached-at") && !g.members.contains_key(s),
        interruptions(&g.tags),
        g.tags.keys().any(|k| k.starts_with("spotswap:cooldown:")),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_warning_three_times_or_concurrently_gives_one_detach() {
    let env = Env::new().await;

    // GIVEN a group with a spot member, and its warning delivered 3 times in a row
    let (serial, spot) = group_with_spot(&env, GroupSpec::managed("dup-serial", 2), 1).await;
    let s1 = spot[0].clone();
    let before: BTreeSet<String> = env.live_instances().await.into_keys().collect();
    let mut reports = Vec::new();
    for _ in 0..3 {
        let aws = env.aws();
        reports.push(handle(&aws, &warning(&s1)).await);
    }
    // THEN the first detaches; the others are one-line no-ops with zero mutating calls
    assert_eq!(
        decisions(&reports[0])[0],
        ("detach", "SpotInterruptionWarning", "done")
    );
    for r in &reports[1..] {
        assert_eq!(decisions(r), vec![("ignore", "AlreadyHandled", "done")]);
        assert_eq!(r.mutating_calls(), 0, "{:?}", r.api_calls);
        assert_eq!(
            r.decisions[0].group, serial,
            "the duplicate names the group it left"
        );
    }
    let serial_end = end_state(&env, &serial, &s1, &before).await;
    assert_eq!(serial_end.2, 1, "the group launched exactly one replacement");

    // GIVEN the same shape, and its warning delivered 3 times at once (3 Lambda containers)
    let (concurrent, spot) = group_with_spot(&env, GroupSpec::managed("dup-concurrent", 2), 1).await;
    let s2 = spot[0].clone();
    let before: BTreeSet<String> = env.live_instances().await.into_keys().collect();
    let raw = warning(&s2);
    let runs = (0..3).map(|_| {
        let aws = env.aws();
        let raw = raw.clone();
        tokio::spawn(async move { handle_event(&aws, &config(), &raw, EventOptions::default()).await })
    });
    let mut reports = Vec::new();
    for run in runs {
        reports.push(run.await.expect("joined").expect("handled"));
    }
    // THEN exactly one detach took effect; the others saw it happen (before or during)
    let detached: usize = reports
        .iter()
        .filter(|r| decisions(r).contains(&("detach", "SpotInterruptionWarning", "done")))
        .count();
    assert_eq!(
        detached,
        1,
        "{:#?}",
        reports.iter().map(decisions).collect::<Vec<_>>()
    );
    for r in &reports {
        assert!(
            r.decisions
                .iter()
                .all(|d| !matches!(d.outcome, Outcome::Failed(_))),
            "{:?}",
            decisions(r)
        );
    }
    // AND the end state is the same as after the serial deliveries
    let concurrent_end = end_state(&env, &concurrent, &s2, &before).await;
    assert_eq!(
        (
            concurrent_end.0,
            concurrent_end.1,
            concurrent_end.2,
            concurrent_end.3,
            concurrent_end.5
        ),
        (
            serial_end.0,
            serial_end.1,
            serial_end.2,
            serial_end.3,
            serial_end.5
        )
    );
    assert_eq!(concurrent_end.4, vec![s2.clone()], "listed once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_shelters_the_group_and_the_rebalancer_skips_it() {
    // GIVEN a group of 1 on-demand and 4 spot instances (shelter at the default 10%: 2
    // interruptions in an hour)
    let env = Env::new().await;
    let (group, spot) = group_with_spot(&env, GroupSpec::managed("burst", 1), 4).await;

    // WHEN two of them get warnings at the same moment, each in its own invocation
    let cfg = Config {
        event_bus: "default".into(),
        ..config()
    };
    let runs: Vec<_> = spot[..2]
        .iter()
        .map(|s| {
            let (aws, cfg, raw) = (env.aws(), cfg.clone(), warning(s));
            tokio::spawn(async move {
                let r = handle_event(&aws, &cfg, &raw, EventOptions::default()).await;
                (r, aws.api_calls())
            })
        })
        .collect();
    let mut reports = Vec::new();
    let mut publishes = 0;
    for run in runs {
        let (r, calls) = run.await.unwrap();
        publishes += calls
            .iter()
            .filter(|(op, _)| op.ends_with(":PutEvents"))
            .map(|(_, n)| n)
            .sum::<u64>();
        reports.push(r.expect("handled"));
    }

    // THEN both were detached and both are listed, though they wrote the same tag at once
    for r in &reports {
        assert_eq!(decisions(r)[0], ("detach", "SpotInterruptionWarning", "done"));
    }
    let state = env.group_state(&group).await;
    let listed: BTreeSet<String> = interruptions(&state.tags).into_iter().collect();
    assert_eq!(listed, spot[..2].iter().cloned().collect::<BTreeSet<_>>());
    // AND the group is sheltered for the cooldown, announced as a burst
    let until = spotswap_core::Timestamp::parse_rfc3339(&state.tags["spotswap:sheltered-until"]).unwrap();
    let in_an_hour = spotswap_aws::workflow::now().plus_minutes(60);
    assert!(
        (until.unix() - in_an_hour.unix()).abs() < 120,
        "sheltered for the cooldown"
    );
    assert!(reports
        .iter()
        .any(|r| decisions(r).iter().any(|d| d.1 == "InterruptionBurst")));
    assert!(publishes >= 1, "Spotswap Group Sheltered was published");

    // WHEN the rebalancer runs: the group now has on-demand replacements above its floor
    let (od, _) = env.mix(&group).await;
    assert!(od >= 3);
    let cycle = rebalance(&env.aws(), &config(), CycleOptions::default())
        .await
        .unwrap();
    // THEN it skips the group as Sheltered and launches nothing there
    assert!(
        cycle
            .skipped
            .iter()
            .any(|s| s.group == group && s.reason.code() == "Sheltered"),
        "{:?}",
        cycle.skipped
    );
    assert!(!cycle
        .actions
        .iter()
        .any(|a| a.group == group && matches!(a.kind, ActionKind::Launch(_))));
    assert_eq!(env.mix(&group).await.0, od, "still on-demand");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_rebalancer_cycle_avoids_the_pool_in_cooldown() {
    // GIVEN a group in one AZ with a spot member in the pool the rebalancer ranks first
    // (m5.large: moto prices every pool alike, and the original type sorts first)
    let env = Env::new().await;
    let (group, spot) = group_with_spot(
        &env,
        GroupSpec::managed("cool", 2)
            .tag("spotswap:replace-per-cycle", "5")
            .tag("spotswap:max-pool-percent", "100"),
        1,
    )
    .await;
    let s = &spot[0];
    let cooled = pool_of(&env, s).await;
    assert!(cooled.starts_with("m5.large/"));

    // WHEN its warning is handled, and the rebalancer runs in a fresh process
    handle(&env.aws(), &warning(s)).await;
    let cycle = rebalance(&env.aws(), &config(), CycleOptions::default())
        .await
        .unwrap();

    // THEN it swaps the on-demand instances (the replacement included), never into the pool in
    // cooldown, though that pool would rank first
    let launches: Vec<_> = cycle
        .actions
        .iter()
        .filter(|a| matches!(a.kind, ActionKind::Launch(_)))
        .collect();
    assert_eq!(launches.len(), 3, "{:#?}", cycle.actions);
    for l in &launches {
        assert!(matches!(l.outcome, Outcome::Done(Some(_))), "{l:?}");
        let offered: Vec<String> = l.candidates().iter().map(ToString::to_string).collect();
        assert!(!offered.contains(&cooled), "{cooled} offered: {offered:?}");
        let pool = l.pool.as_ref().map(ToString::to_string).unwrap_or_default();
        assert_ne!(pool, cooled);
        // the original is in the cooled AZ, so the cooldown is what moved it
        assert_eq!(pool.split('/').nth(1), cooled.split('/').nth(1));
    }
    for (id, i) in env.live_instances().await {
        if i.tags.get("spotswap:group") == Some(&group) && i.tags.contains_key("spotswap:launched-at") {
            assert_ne!(
                pool_of(&env, &id).await,
                cooled,
                "{id} launched into the cooled pool"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_spot_capacity_the_replacement_stays_on_demand_and_pools_are_marked() {
    // GIVEN moto behind the market proxy, and an interrupted spot member already replaced by
    // an on-demand instance
    let proxy = Proxy::from_env().await.expect("proxy");
    let env = Env::at(&proxy.url()).await;
    let (group, spot) = group_with_spot(
        &env,
        GroupSpec::managed("ice", 1).tag("spotswap:on-demand-base", "1"),
        1,
    )
    .await;
    handle(&env.aws(), &warning(&spot[0])).await;
    let (od, spot_count) = env.mix(&group).await;
    assert_eq!((od, spot_count), (2, 0));

    // WHEN no pool has spot capacity and the rebalancer tries to convert the replacement
    proxy.set_no_capacity("*", "*", true);
    let cycle = rebalance(&env.aws(), &config(), CycleOptions::default())
        .await
        .unwrap();

    // THEN the on-demand instance stays, the log says NoSpotCapacity, and every pool offered is
    // marked on the group
    let launch = cycle
        .actions
        .iter()
        .find(|a| matches!(a.kind, ActionKind::Launch(_)))
        .expect("a launch was tried");
    assert_eq!(launch.reason, Reason::NoSpotCapacity);
    assert!(matches!(launch.outcome, Outcome::Fallback(_)));
    assert_eq!(env.mix(&group).await, (2, 0), "capacity kept, on-demand");
    let tags = env.group_state(&group).await.tags;
    for pool in launch.candidates() {
        assert!(
            tags.contains_key(&format!("spotswap:no-capacity:{pool}")),
            "{pool} not marked"
        );
    }
    // AND the next cycle offers none of the marked pools again while the marks last
    let marked: BTreeSet<&spotswap_core::Pool> = launch.candidates().into_iter().collect();
    assert!(!marked.is_empty());
    let next = rebalance(&env.aws(), &config(), CycleOptions::default())
        .await
        .unwrap();
    for l in next
        .actions
        .iter()
        .filter(|a| matches!(a.kind, ActionKind::Launch(_)))
    {
        assert!(
            l.candidates().iter().all(|p| !marked.contains(p)),
            "{:?} offered again",
            l.candidates()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebalance_recommendation_swap_completes_through_rebalancer_cycles() {
    // GIVEN a group of 1 on-demand (the floor) and 1 spot instance, at MaxSize
    let env = Env::new().await;
    let (group, spot) = group_with_spot(
        &env,
        GroupSpec::managed("rebal", 1).tag("spotswap:on-demand-base", "1"),
        1,
    )
    .await;
    let s = spot[0].clone();
    let at_risk = pool_of(&env, &s).await;
    let before = env.group_state(&group).await;
    assert_eq!((before.desired, before.max), (2, 2));

    // WHEN its rebalance recommendation is handled
    let aws = env.aws();
    let report = handle(&aws, &event_for("interruption-rebalance-recommendation.json", &s)).await;

    // THEN a spot launch into another pool replaces it
    assert_eq!(
        decisions(&report),
        vec![("launch", "RebalanceRecommendation", "done")]
    );
    let launch = &report.decisions[0];
    let offered: Vec<String> = launch.candidates().iter().map(ToString::to_string).collect();
    assert!(
        !offered.contains(&at_risk) && launch.pool.as_ref().map(ToString::to_string) != Some(at_risk.clone())
    );
    let Outcome::Done(Some(new)) = &launch.outcome else {
        unreachable!()
    };
    let live = env.live_instances().await;
    assert!(live[new].spot);
    assert_eq!(live[new].tags["spotswap:replaces"], s);
    assert_eq!(live[new].tags["spotswap:group"], group);
    // AND the same recommendation again is a no-op
    let again = handle(
        &env.aws(),
        &event_for("interruption-rebalance-recommendation.json", &s),
    )
    .await;
    assert_eq!(decisions(&again), vec![("ignore", "AlreadyHandled", "done")]);
    assert_eq!(again.mutating_calls(), 0);

    // WHEN rebalancer cycles run
    let mut done = false;
    for _ in 0..8 {
        let cycle = rebalance(&env.aws(), &config(), CycleOptions::default())
            .await
            .unwrap();
        assert!(
            cycle
                .actions
                .iter()
                .all(|a| !matches!(a.outcome, Outcome::Failed(_))),
            "{:#?}",
            cycle.actions
        );
        let g = env.group_state(&group).await;
        assert!(g.in_service().len() >= 2, "never below the desired capacity");
        if cycle.mutating_calls() == 0 {
            done = true;
            break;
        }
    }
    // THEN the stage machine attached the launch and retired the at-risk instance
    assert!(done, "the swap settles");
    let after = env.group_state(&group).await;
    assert!(!after.members.contains_key(&s), "at-risk instance retired");
    assert_eq!(after.members.get(new).map(String::as_str), Some("InService"));
    assert_eq!(
        (after.desired, after.max),
        (2, 2),
        "desired and MaxSize as before"
    );
    assert!(!after.tags.contains_key("spotswap:max-raised-from"));
    assert!(
        !env.live_instances().await.contains_key(&s),
        "at-risk instance terminated"
    );
    assert_eq!(env.mix(&group).await, (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_ops_make_no_mutating_call() {
    // GIVEN an unmanaged group, a managed one that ignores rebalance recommendations, and an
    // instance already terminated
    let env = Env::new().await;
    let (legacy, legacy_spot) =
        group_with_spot(&env, GroupSpec::managed("noop-legacy", 1).unmanaged(), 1).await;
    let (calm, calm_spot) = group_with_spot(
        &env,
        GroupSpec::managed("noop-calm", 1).tag("spotswap:on-rebalance", "ignore"),
        1,
    )
    .await;
    let (_, gone) = group_with_spot(&env, GroupSpec::managed("noop-gone", 1), 1).await;
    env.asg
        .detach_instances()
        .auto_scaling_group_name("noop-gone")
        .instance_ids(&gone[0])
        .should_decrement_desired_capacity(true)
        .send()
        .await
        .unwrap();
    env.ec2
        .terminate_instances()
        .instance_ids(&gone[0])
        .send()
        .await
        .unwrap();
    let before = (
        env.group_state(&legacy).await,
        env.group_state(&calm).await,
        env.live_instances().await,
    );

    let cases = [
        (event_file("interruption-spot-warning.json"), "UnknownInstance"),
        (warning(&legacy_spot[0]), "NotManaged"),
        (
            event_for("interruption-rebalance-recommendation.json", &legacy_spot[0]),
            "NotManaged",
        ),
        (
            event_for("interruption-rebalance-recommendation.json", &calm_spot[0]),
            "RebalanceIgnored",
        ),
        (warning(&gone[0]), "AlreadyHandled"),
        (
            event_file("interruption-other-detail-type.json"),
            "IgnoredDetailType",
        ),
    ];
    for (raw, reason) in cases {
        // WHEN each event is handled
        let aws = env.aws();
        let report = handle(&aws, &raw).await;
        // THEN one no-op decision with its reason, and not one mutating call
        assert_eq!(decisions(&report), vec![("ignore", reason, "done")]);
        assert_eq!(report.mutating_calls(), 0, "{reason}: {:?}", report.api_calls);
        assert!(!report.acted());
    }
    let after = (
        env.group_state(&legacy).await,
        env.group_state(&calm).await,
        env.live_instances().await,
    );
    assert_eq!(after, before, "nothing changed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_makes_no_call_and_the_cli_exits_2() {
    let env = Env::new().await;
    let (group, spot) = group_with_spot(&env, GroupSpec::managed("cli", 2), 1).await;

    // GIVEN input that is not an event, or one of our kinds with a bad detail
    let bad = [
        "not json".to_string(),
        "[1,2]".to_string(),
        r#"{"detail-type":"EC2 Spot Instance Interruption Warning","source":"aws.ec2","detail":{"instance-id":"i-1234567890abcdef0","instance-action":"reboot"}}"#.to_string(),
        event_file("interruption-malformed.json"),
    ];
    for raw in &bad {
        // WHEN handled by the library
        let aws = env.aws();
        let err = handle_event(&aws, &config(), raw, EventOptions::default())
            .await
            .unwrap_err();
        // THEN it is an event error, and not one AWS call was made
        assert!(matches!(err, spotswap_aws::AdapterError::Event(_)), "{err}");
        assert!(aws.api_calls().is_empty(), "{:?}", aws.api_calls());
    }

    let cli = |args: &[&str], stdin: Option<&str>| {
        let mut cmd = Command::new(workspace_bin("spotswap"));
        cmd.args(args)
            .env("AWS_ENDPOINT_URL", &env.endpoint)
            .env("AWS_REGION", env.region())
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("SPOTSWAP_PRICE_FILE", sample_price_file())
            .env("SPOTSWAP_EVENT_BUS", "")
            .current_dir(workspace_root())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("run spotswap");
        if let Some(input) = stdin {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        }
        drop(child.stdin.take());
        child.wait_with_output().unwrap()
    };
    let before = (env.group_state(&group).await, env.live_instances().await);
    // THEN the CLI exits 2 with one line on stderr, for a file and for standard input
    for out in [
        cli(&["handle-event", "events/interruption-malformed.json"], None),
        cli(&["handle-event", "-"], Some("{\"detail-type\": ")),
        cli(&["handle-event", "events/no-such-file.json"], None),
    ] {
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("spotswap:")).collect();
        assert_eq!(lines.len(), 1, "{err}");
        assert!(!err.contains("\"level\""), "no log lines for bad input: {err}");
    }
    assert_eq!(
        (env.group_state(&group).await, env.live_instances().await),
        before
    );
    // AND another detail-type, and an unknown instance, exit 0
    for file in [
        "events/interruption-other-detail-type.json",
        "events/interruption-spot-warning.json",
    ] {
        let out = cli(&["handle-event", file], None);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // AND a warning for the group's spot member, from a file, detaches it and the group
    // replaces it at once
    let file = scratch(&format!("cli-{}.json", spot[0]), &warning(&spot[0]));
    let out = cli(&["handle-event", file.to_str().unwrap()], None);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert!(replacement_within_bound(&printed), "{printed}");
    assert_eq!(printed["decisions"][0]["action"], "detach");
    let after = env.group_state(&group).await;
    assert!(!after.members.contains_key(&spot[0]));
    assert_eq!(after.in_service().len(), 3);
}

/// A file under the target directory, for events about instances of this run.
fn scratch(name: &str, content: &str) -> PathBuf {
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
        .join("tmp")
        .join("interruption-events");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interruption_handler_lambda_runs_through_the_runtime_api() {
    // GIVEN a managed group with a spot member, and the handler served by `cargo lambda watch`
    let env = Env::new().await;
    let (group, spot) = group_with_spot(&env, GroupSpec::managed("lambda-int", 2), 1).await;
    let price_file = sample_price_file();
    let watch = LambdaWatch::start(
        "interruption-handler",
        &[
            ("AWS_ENDPOINT_URL", &env.endpoint),
            ("AWS_REGION", env.region()),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("SPOTSWAP_PRICE_FILE", &price_file),
        ],
    );

    // WHEN AWS's sample warning is invoked as it is: its instance is not in this region
    let answer = watch.invoke("interruption-spot-warning.json").expect("invoke");
    // THEN the function answers with a no-op
    assert_eq!(answer["decisions"][0]["reason"], "UnknownInstance", "{answer}");
    assert_eq!(answer["mutating_calls"], 0, "{answer}");

    // WHEN the same file, about the spot member, is invoked
    let file = scratch(&format!("lambda-{}.json", spot[0]), &warning(&spot[0]));
    let answer = watch.invoke(file.to_str().unwrap()).expect("invoke");
    // THEN the function detached it within the bound of calls, and the group replaced it
    assert_eq!(answer["decisions"][0]["action"], "detach", "{answer}");
    assert_eq!(answer["decisions"][0]["outcome"], "done", "{answer}");
    assert!(replacement_within_bound(&answer), "{answer}");
    let after = env.group_state(&group).await;
    assert!(!after.members.contains_key(&spot[0]));
    assert_eq!(after.in_service().len(), 3);

    // AND a malformed event is an invocation error naming the problem
    let err = watch.invoke("interruption-malformed.json").unwrap_err();
    assert!(
        err.contains("InvalidEvent") || err.contains("instance-id"),
        "{err}"
    );
}
