//! The executor and the workflows on the in-memory region ([`crate::fake::FakePort`]): their
//! behaviour without moto, in milliseconds. The same paths run against moto in `tests/`.

use std::sync::Arc;

use spotswap_core::testkit::{Fleet, Stage, A, B, NOW};
use spotswap_core::{ActionKind, ErrorKind, InstanceState, Outcome, Reason, Timestamp};

use crate::fake::{FakePort, FakeRegion};
use crate::{reap, rebalance, snapshot, Aws, Config, CycleOptions, CycleReport, Executor};

/// A region holding every fleet's group and instances, and the first fleet's market.
fn region(fleets: &[Fleet]) -> (Arc<FakePort>, Aws) {
    let mut r = FakeRegion {
        clock: NOW,
        ..FakeRegion::default()
    };
    for f in fleets {
        r.groups.insert(f.group.name.clone(), f.group.clone());
        r.instances.extend(f.instances.clone());
        r.market = f.market.clone();
    }
    let fake = Arc::new(FakePort::with("us-east-1", r));
    (fake.clone(), Aws::fake(fake))
}

fn at(now: Timestamp) -> CycleOptions {
    CycleOptions {
        now: Some(now),
        ..CycleOptions::default()
    }
}

fn outcomes(report: &CycleReport, f: impl Fn(&ActionKind) -> bool) -> Vec<Outcome> {
    report
        .actions
        .iter()
        .filter(|a| f(&a.kind))
        .map(|a| a.outcome.clone())
        .collect()
}

fn done(report: &CycleReport, f: impl Fn(&ActionKind) -> bool) -> usize {
    outcomes(report, f)
        .iter()
        .filter(|o| matches!(o, Outcome::Done(_)))
        .count()
}

#[tokio::test]
async fn a_cycle_swaps_an_on_demand_instance_over_cycles_without_losing_capacity() {
    // GIVEN a managed group of two on-demand instances, desired 2
    let fleet = Fleet::new()
        .desired(2)
        .on_demand("i-od1", A)
        .on_demand("i-od2", B);
    let (fake, aws) = region(&[fleet]);
    let (mut launched, mut attached, mut retired) = (0, 0, 0);
    // WHEN cycles run ten minutes apart
    for cycle in 0..12 {
        let now = NOW.plus_minutes(10 * cycle);
        fake.edit(|r| r.clock = now);
        let report = rebalance(&aws, &Config::default(), at(now)).await.unwrap();
        launched += done(&report, |k| matches!(k, ActionKind::Launch(_)));
        attached += done(&report, |k| matches!(k, ActionKind::Attach { .. }));
        retired += done(&report, |k| matches!(k, ActionKind::Retire { .. }));
        // THEN no cycle leaves fewer instances in service than desired
        let r = fake.state();
        let g = &r.groups["web"];
        assert!(r.in_service("web") >= g.desired as usize, "cycle {cycle}: {g:?}");
        assert!(g.desired >= 2, "cycle {cycle}: desired {}", g.desired);
    }
    // AND the swap went through Launch → Attach → Retire
    assert!(
        launched >= 1 && attached >= 1 && retired >= 1,
        "{launched} {attached} {retired}"
    );
    let r = fake.state();
    let members: Vec<_> = r.groups["web"]
        .members
        .iter()
        .map(|m| &r.instances[&m.id])
        .collect();
    assert!(
        members
            .iter()
            .any(|i| i.lifecycle == spotswap_core::Lifecycle::Spot),
        "a spot member serves: {members:?}"
    );
    assert_eq!(r.groups["web"].members.len(), 2);
    let gone = ["i-od1", "i-od2"]
        .iter()
        .filter(|id| r.instances[**id].state == InstanceState::Gone)
        .count();
    assert_eq!(gone, retired, "each retire ended one original");
    assert!(aws.api_calls()["ec2:CreateFleet"] >= 1);
}

#[tokio::test]
async fn a_launch_found_already_made_is_already_done_without_create_fleet() {
    // GIVEN a plan made before a concurrent cycle launched the replacement
    let fleet = Fleet::new()
        .desired(2)
        .on_demand("i-od1", A)
        .on_demand("i-od2", B);
    let plan = fleet.plan();
    let (launch_idx, original) = plan
        .actions
        .iter()
        .enumerate()
        .find_map(|(i, a)| matches!(a.kind, ActionKind::Launch(_)).then(|| (i, a.instance.clone().unwrap())))
        .expect("a launch is planned");
    let (_fake, aws) = region(&[fleet.launch("i-already", &original, Stage::Pending)]);
    // WHEN the executor runs the plan
    let out = Executor::new(&aws, NOW, false, None)
        .run_group(&plan.actions)
        .await;
    // THEN the launch is AlreadyDone with the launch found, and no CreateFleet was sent
    assert_eq!(out[launch_idx], Outcome::AlreadyDone("i-already".into()));
    assert_eq!(aws.api_calls().get("ec2:CreateFleet"), None);
}

#[tokio::test]
async fn no_capacity_anywhere_is_a_fallback_that_marks_every_pool() {
    let fleet = Fleet::new()
        .desired(2)
        .on_demand("i-od1", A)
        .on_demand("i-od2", B);
    let (fake, aws) = region(&[fleet]);
    fake.edit(|r| r.no_capacity = r.market.spot_prices.keys().cloned().collect());
    let report = rebalance(&aws, &Config::default(), at(NOW)).await.unwrap();
    let launches = outcomes(&report, |k| matches!(k, ActionKind::Launch(_)));
    let Some(Outcome::Fallback(tried)) = launches.first() else {
        panic!("{launches:?}");
    };
    assert!(!tried.is_empty());
    // THEN each pool tried is marked on the group, and nothing was launched
    let r = fake.state();
    for pool in tried {
        let key = spotswap_core::records::no_capacity_key(pool);
        assert!(
            r.groups["web"].tags.contains_key(&key),
            "{key} in {:?}",
            r.groups["web"].tags
        );
    }
    assert!(r.instances.values().all(|i| i.launched_for().is_none()));
    assert_eq!(report.api_calls["autoscaling:CreateOrUpdateTags"], 1);
}

#[tokio::test]
async fn a_spot_quota_fails_the_launch_and_stops_the_cycles_other_launches() {
    // GIVEN two groups to swap, acted on one after the other
    let web = Fleet::new()
        .desired(2)
        .on_demand("i-web1", A)
        .on_demand("i-web2", B);
    let api = Fleet::new()
        .named("api")
        .desired(2)
        .on_demand("i-api1", A)
        .on_demand("i-api2", B);
    let (fake, aws) = region(&[web, api]);
    fake.edit(|r| r.spot_quota_reached = true);
    let config = Config {
        max_concurrency: 1,
        ..Config::default()
    };
    let report = rebalance(&aws, &config, at(NOW)).await.unwrap();
    let mut launches = outcomes(&report, |k| matches!(k, ActionKind::Launch(_)));
    launches.sort_by_key(|o| format!("{o:?}"));
    // THEN one launch failed on the quota, the other was not attempted, and one CreateFleet
    // was sent
    let [Outcome::Failed(f), Outcome::NotAttempted(why)] = launches.as_slice() else {
        panic!("{launches:?}");
    };
    assert_eq!(f.kind, ErrorKind::Quota, "{f:?}");
    assert_eq!(*why, Reason::SpotQuotaExceeded);
    assert_eq!(report.api_calls["ec2:CreateFleet"], 1);
}

#[tokio::test]
async fn the_snapshot_reads_every_page() {
    let mut fleet = Fleet::new().desired(5);
    for (i, az) in [A, B, A, B, A].iter().enumerate() {
        fleet = fleet.on_demand(&format!("i-od{i}"), az);
    }
    let pools = fleet.market.spot_prices.len();
    let types = fleet.market.types.len();
    let (fake, aws) = region(&[fleet.clone(), Fleet::new().named("api")]);
    fake.edit(|r| r.page_size = 2);
    let snap = snapshot::take(&aws, &fleet.settings(), None, NOW).await.unwrap();
    assert_eq!(snap.groups.len(), 2);
    assert_eq!(snap.instances.len(), 5);
    assert_eq!(snap.market.types.len(), types);
    assert_eq!(snap.market.spot_prices.len(), pools);
    assert_eq!(snap.market.on_demand_prices.len(), types);
    assert_eq!(snap.market.price_source, spotswap_core::PriceSource::PriceListApi);
    let calls = aws.api_calls();
    let pages = |n: usize| n.div_ceil(2) as u64;
    assert_eq!(calls["autoscaling:DescribeAutoScalingGroups"], 1);
    assert_eq!(calls["ec2:DescribeInstances"], pages(5));
    assert_eq!(calls["ec2:DescribeInstanceTypes"], pages(types));
    assert_eq!(calls["ec2:DescribeSpotPriceHistory"], pages(pools));
    assert_eq!(calls["pricing:GetProducts"], pages(types));
}

#[tokio::test]
async fn a_dry_run_makes_no_mutating_call() {
    let fleet = Fleet::new()
        .desired(2)
        .on_demand("i-od1", A)
        .on_demand("i-od2", B);
    let (fake, aws) = region(&[fleet.launch("i-orphan", "i-gone", Stage::Ready)]);
    let before = fake.state();
    let config = Config {
        dry_run: true,
        ..Config::default()
    };
    let report = rebalance(&aws, &config, at(NOW)).await.unwrap();
    assert!(
        report.actions.iter().any(|a| a.outcome == Outcome::DryRun),
        "{:?}",
        report.actions
    );
    let reaped = reap(&aws, &config, at(NOW.plus_minutes(120))).await.unwrap();
    assert!(reaped.actions.iter().any(|a| a.outcome == Outcome::DryRun));
    assert_eq!(
        crate::report::mutating_calls(&aws.api_calls()),
        0,
        "{:?}",
        aws.api_calls()
    );
    let after = fake.state();
    assert_eq!(after.groups, before.groups);
    assert_eq!(after.instances, before.instances);
}

#[tokio::test]
async fn the_reaper_terminates_an_orphan() {
    // GIVEN one of our launches whose original is gone, never attached, two hours old
    let fleet = Fleet::new().desired(1).on_demand("i-od1", A);
    let (fake, aws) = region(&[fleet.launch("i-orphan", "i-gone", Stage::Ready)]);
    let report = reap(&aws, &Config::default(), at(NOW.plus_minutes(120)))
        .await
        .unwrap();
    let terminated = outcomes(&report, |k| matches!(k, ActionKind::Terminate { .. }));
    assert_eq!(terminated, vec![Outcome::Done(None)], "{:?}", report.actions);
    let r = fake.state();
    assert_eq!(r.instances["i-orphan"].state, InstanceState::Gone);
    assert_eq!(
        r.instances["i-od1"].state,
        InstanceState::Running,
        "members are never reaped"
    );
    assert_eq!(aws.api_calls()["ec2:TerminateInstances"], 1);
}

#[tokio::test]
async fn the_fake_refuses_what_aws_refuses() {
    let fleet = Fleet::new().desired(1).max(1).on_demand("i-od1", A);
    let (_fake, aws) = region(&[fleet.launch("i-new", "i-od1", Stage::Ready)]);
    let port = aws.port();
    let err = port.attach_instances("web", &["i-new".into()]).await.unwrap_err();
    assert!(err.to_string().contains("above max"), "{err}");
    let err = port.attach_instances("web", &["i-od1".into()]).await.unwrap_err();
    assert!(err.to_string().contains("already part"), "{err}");
    let err = port
        .detach_instances("web", &["i-new".into()], true)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("ValidationError"));
    assert_eq!(
        port.detach_instances("web", &["i-od1".into()], true)
            .await
            .unwrap(),
        1
    );
    assert_eq!(aws.api_calls()["autoscaling:AttachInstances"], 2);
    assert_eq!(aws.api_calls()["autoscaling:DetachInstances"], 2);
}

#[tokio::test]
async fn a_spot_warning_detaches_after_at_most_three_reads_and_records_the_pool() {
    // GIVEN a spot member of a managed group
    let fleet = Fleet::new()
        .desired(3)
        .on_demand("i-od1", A)
        .spot("i-1234567890abcdef0", "m5a.large", A)
        .spot("i-spot2", "m6i.large", B);
    let (fake, aws) = region(&[fleet]);
    // WHEN AWS's sample warning arrives about it
    let raw = include_str!("../../../events/interruption-spot-warning.json");
    let opts = crate::EventOptions {
        now: Some(NOW),
        ..crate::EventOptions::default()
    };
    let report = crate::handle_event(&aws, &Config::default(), raw, opts)
        .await
        .unwrap();
    // THEN it was detached (desired kept: the group replaces it) after at most three reads,
    // tagged,
    // and its pool recorded on the group
    let steps: Vec<(&str, &str)> = report
        .decisions
        .iter()
        .map(|d| (d.kind.name(), d.outcome.name()))
        .collect();
    assert_eq!(
        steps,
        [
            ("detach", "done"),
            ("tag-detached", "done"),
            ("record-interruption", "done")
        ],
        "{:?}",
        report.decisions
    );
    assert!(
        report.calls_before_replacement.is_some_and(|n| n <= 3),
        "{:?} calls: {:?}",
        report.calls_before_replacement,
        aws.api_call_log()
    );
    let r = fake.state();
    assert!(r.group_of("i-1234567890abcdef0").is_none());
    assert_eq!(r.groups["web"].desired, 3);
    assert!(r.instances["i-1234567890abcdef0"]
        .tag(spotswap_core::tags::DETACHED_AT)
        .is_some());
    assert!(r.groups["web"]
        .tags
        .contains_key(spotswap_core::tags::INTERRUPTIONS));
}

#[tokio::test]
async fn a_stack_mid_update_holds_new_swaps_and_each_stack_is_asked_once() {
    // GIVEN two groups of one stack that is being updated, a group of a settled stack and a
    // group whose stack tag names a stack that does not exist, each with a swap to start
    let stack = spotswap_core::tags::AWS_CFN_STACK_NAME;
    let group = |name: &str, stack_name: &str| {
        Fleet::new()
            .named(name)
            .desired(1)
            .tag(stack, stack_name)
            .on_demand(&format!("i-{name}"), A)
    };
    let fleets = [
        group("web", "shop"),
        group("api", "shop"),
        group("batch", "jobs"),
        group("ci", "gone"),
    ];
    let (fake, aws) = region(&fleets);
    fake.edit(|r| {
        r.stacks.insert("shop".into(), "UPDATE_IN_PROGRESS".into());
        r.stacks.insert("jobs".into(), "UPDATE_COMPLETE".into());
    });
    // WHEN a cycle runs
    let report = rebalance(&aws, &Config::default(), at(NOW)).await.unwrap();
    // THEN the stack's groups start no swap, each skipped naming the stack and its status
    for name in ["web", "api"] {
        let skip = report.skipped.iter().find(|s| s.group == name);
        assert_eq!(
            skip.map(|s| s.reason),
            Some(Reason::StackUpdating),
            "{name}: {:?}",
            report.skipped
        );
        assert_eq!(
            skip.and_then(|s| s.detail.as_deref()),
            Some("stack shop UPDATE_IN_PROGRESS")
        );
        assert!(!report
            .actions
            .iter()
            .any(|a| a.group == name && matches!(a.kind, ActionKind::Launch(_))));
    }
    // AND the settled stack's group and the one whose stack does not exist swap
    for name in ["batch", "ci"] {
        assert_eq!(
            done(
                &report,
                |k| matches!(k, ActionKind::Launch(spec) if spec.tags.iter().any(|(k, v)| k == spotswap_core::tags::GROUP && v == name))
            ),
            1,
            "{name}: {:?}",
            report.actions
        );
    }
    // AND each distinct stack was asked about once
    assert_eq!(aws.api_calls()["cloudformation:DescribeStacks"], 3);
    assert_eq!(aws.api_calls()["ec2:CreateFleet"], 2);
}

#[tokio::test]
async fn a_preflight_re_plan_sees_the_units_other_groups_took_this_cycle() {
    use spotswap_core::commitments::{Commitments, ReservedInstances};
    use spotswap_core::testkit::C;
    use spotswap_core::Purchase;
    // GIVEN a zonal RI for one m5.large in C that nothing uses, and two groups tagged
    //   spotswap:commitments=fill, each with a spot m5.large in C: `a` plans first and takes
    //   the RI's units back with an on-demand launch; `b` has an uncovered on-demand member to
    //   swap as well
    let fill = |name: &str| {
        Fleet::new()
            .named(name)
            .tag(spotswap_core::tags::COMMITMENTS, "fill")
            .spot(&format!("i-{name}-s1"), "m5.large", C)
    };
    let a = fill("a").desired(1);
    let b = fill("b").on_demand("i-b-od1", A).desired(2);
    let ri = ReservedInstances {
        id: "ri-c".into(),
        instance_type: "m5.large".into(),
        az: Some(C.into()),
        count: 1,
        platform: "Linux/UNIX".into(),
        tenancy: "default".into(),
        start: Timestamp::from_unix(0),
        end: NOW.plus_secs(86_400),
    };
    let (fake, aws) = region(&[a, b]);
    fake.edit(|r| {
        r.commitments = Commitments {
            reserved: vec![ri],
            savings_plans: vec![],
        };
        // AND b has an instance refresh running, which only the preflight reads: b is planned
        // again
        r.refreshing.insert("b".into());
    });
    // WHEN a cycle runs
    let report = rebalance(&aws, &Config::default(), at(NOW)).await.unwrap();
    // THEN the RI's units are claimed once in the region: one on-demand launch, a's; b's
    //   re-plan saw them taken and launched nothing
    let on_demand: Vec<_> = report
        .actions
        .iter()
        .filter(|a| matches!(&a.kind, ActionKind::Launch(s) if s.purchase == Purchase::OnDemand))
        .filter(|a| matches!(a.outcome, Outcome::Done(_)))
        .map(|a| (a.group.as_str(), a.reason))
        .collect();
    assert_eq!(
        on_demand,
        vec![("a", Reason::CommitmentUnused)],
        "{:?}",
        report.actions
    );
    assert!(!report
        .actions
        .iter()
        .any(|a| a.group == "b" && matches!(a.kind, ActionKind::Launch(_))));
    // AND the report's commitments section shows the units used after the plan
    let c = report.commitments.expect("commitments read");
    assert_eq!(c.families[0].unused_now, 4.0); // an m5.large is 4 normalized units
    assert_eq!(c.families[0].unused_after, 0.0);
}

#[tokio::test]
async fn the_preflight_reads_no_termination_protection_and_a_protected_original_is_swapped() {
    // GIVEN a group with an on-demand member and a spot member, both scheduled for retirement
    // by EC2 (so both get a replacement this cycle), the on-demand one with EC2 termination
    // protection (`DisableApiTermination`), which does not stop Auto Scaling from terminating
    // it (docs/design.md, "Termination protection")
    let fleet = Fleet::new()
        .desired(2)
        .tag(spotswap_core::tags::REPLACE_PER_CYCLE, "2")
        .on_demand("i-od1", A)
        .spot("i-s1", "m5.large", B);
    let (fake, aws) = region(&[fleet]);
    fake.edit(|r| {
        for id in ["i-od1", "i-s1"] {
            r.scheduled.insert(
                id.into(),
                spotswap_core::model::ScheduledEvent {
                    code: "instance-retirement".into(),
                    not_before: Some(NOW.plus_secs(86_400)),
                },
            );
        }
        if let Some(i) = r.instances.get_mut("i-od1") {
            i.termination_protected = Some(true);
        }
    });
    // WHEN a cycle runs
    let report = rebalance(&aws, &Config::default(), at(NOW)).await.unwrap();
    // THEN both are replaced, and no instance's protection was read
    let replaced: Vec<_> = report
        .actions
        .iter()
        .filter(|a| matches!(a.kind, ActionKind::Launch(_)) && matches!(a.outcome, Outcome::Done(_)))
        .filter_map(|a| a.instance.clone())
        .collect();
    assert_eq!(replaced.len(), 2, "{:?}", report.actions);
    assert_eq!(
        aws.api_calls().get("ec2:DescribeInstanceAttribute").copied(),
        None,
        "{:?}",
        aws.api_calls()
    );
}

#[tokio::test]
async fn a_shared_attach_that_fails_is_retried_one_launch_at_a_time() {
    // GIVEN two ready launches planned for attach, one of which stops before the call
    let fleet = Fleet::new()
        .desired(2)
        .max(4)
        .on_demand("i-od1", A)
        .on_demand("i-od2", A)
        .launch("i-l1", "i-od1", Stage::Ready)
        .launch("i-l2", "i-od2", Stage::Ready);
    let plan = fleet.plan();
    let attaches: Vec<_> = plan
        .actions
        .iter()
        .filter(|a| matches!(a.kind, ActionKind::Attach { .. }))
        .cloned()
        .collect();
    assert_eq!(attaches.len(), 2, "{:?}", plan.actions);
    let (fake, aws) = region(&[fleet]);
    fake.edit(|r| r.instances.get_mut("i-l2").unwrap().state = InstanceState::Stopped);
    // WHEN the executor runs them (a run of two: one shared AttachInstances)
    let out = Executor::new(&aws, NOW, false, None).run_group(&attaches).await;
    // THEN the running launch is attached and only the stopped one fails
    assert_eq!(out[0], Outcome::Done(None), "{out:?}");
    assert!(matches!(out[1], Outcome::Failed(_)), "{out:?}");
    let members: Vec<String> = fake.state().groups["web"]
        .members
        .iter()
        .map(|m| m.id.clone())
        .collect();
    assert!(members.contains(&"i-l1".to_string()) && !members.contains(&"i-l2".to_string()));
    // AND the shared call was tried first, then each on its own
    assert_eq!(aws.api_calls().get("autoscaling:AttachInstances"), Some(&3));
}

#[tokio::test]
async fn a_batch_of_launches_goes_out_as_one_fleet_and_a_short_fill_falls_back_for_the_rest() {
    // GIVEN three originals due in one subnet, and pools short of capacity for three
    let fleet = Fleet::new()
        .desired(3)
        .on_demand("i-0000000000000000a", A)
        .on_demand("i-0000000000000000b", A)
        .on_demand("i-0000000000000000c", A)
        .tag(spotswap_core::tags::ON_DEMAND_BASE, "0")
        .tag(spotswap_core::tags::REPLACE_PER_CYCLE, "3")
        .tag(spotswap_core::tags::MAX_POOL_PERCENT, "100");
    let (fake, aws) = region(&[fleet]);
    fake.edit(|r| r.fleet_fill = Some(2));
    // WHEN a cycle runs
    let report = rebalance(&aws, &Config::default(), at(NOW)).await.unwrap();
    // THEN one CreateFleet asked for three, two originals have a launch and one falls back
    assert_eq!(report.api_calls.get("ec2:CreateFleet"), Some(&1));
    let launches = outcomes(&report, |k| matches!(k, ActionKind::Launch(_)));
    let launched = launches
        .iter()
        .filter(|o| matches!(o, Outcome::Done(Some(_))))
        .count();
    let fell_back = launches
        .iter()
        .filter(|o| matches!(o, Outcome::Fallback(_)))
        .count();
    assert_eq!((launched, fell_back), (2, 1), "{launches:?}");
    // AND the next snapshot derives the same pairs as the executor logged
    let snap = snapshot::take(&aws, &Default::default(), None, NOW)
        .await
        .unwrap();
    for a in report
        .actions
        .iter()
        .filter(|a| matches!(a.kind, ActionKind::Launch(_)))
    {
        if let Outcome::Done(Some(id)) = &a.outcome {
            assert_eq!(snap.instances[id].replaces(), a.instance.as_deref(), "{id}");
        }
    }
}
