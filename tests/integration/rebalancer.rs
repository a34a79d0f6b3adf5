//! The rebalancer against moto: convergence with DESIGN.md §8 invariants 1–4 checked after
//! every cycle, a zero-mutation `plan`, and the Lambda binary through the runtime API.

use spotswap_core::{ActionKind, Reason};
use std::collections::BTreeMap;

use spotswap_aws::{rebalance, Config, CycleOptions, CycleReport, Outcome};
use spotswap_core::policy::required_on_demand;
use spotswap_tests::fleet::{sample_price_file, Env, GroupSpec, GroupState};
use spotswap_tests::lambda::{workspace_bin, LambdaWatch};

fn config() -> Config {
    Config {
        price_file: Some(sample_price_file()),
        ..Config::default()
    }
}

struct Managed {
    name: String,
    desired: i32,
    max: i32,
    floor: u32,
}

/// Check invariants 1, 2 and 4 around one cycle.
async fn check_cycle(
    env: &Env,
    managed: &[Managed],
    unmanaged: &(String, GroupState),
    before: &BTreeMap<String, GroupState>,
    report: &CycleReport,
) {
    let live = env.live_instances().await;
    for g in managed {
        let after = env.group_state(&g.name).await;
        // 1. never below the desired capacity the swap began with
        assert!(
            after.in_service().len() as i32 >= g.desired,
            "invariant 1: {} has {} InService, desired was {}",
            g.name,
            after.in_service().len(),
            g.desired
        );
    }
    for a in &report.actions {
        assert!(
            !matches!(a.outcome, Outcome::Failed(_)),
            "no action may fail against moto: {a:?}"
        );
        if matches!(a.kind, ActionKind::Retire { .. }) && a.outcome == Outcome::Done(None) {
            // 2. the original goes only after its replacement was InService in the group
            let g = &before[&a.group];
            let retired = a.instance.as_deref().unwrap();
            let replacement = live
                .iter()
                .find(|(_, i)| i.tags.get("spotswap:replaces").map(String::as_str) == Some(retired))
                .map(|(id, _)| id.clone())
                .expect("a retired instance has a replacement");
            assert_eq!(
                g.members.get(&replacement).map(String::as_str),
                Some("InService"),
                "invariant 2: {retired} retired before {replacement} was InService"
            );
            assert!(
                !live.get(retired).is_some_and(|i| i.spot),
                "only on-demand instances are retired"
            );
        }
    }
    // 4. the unmanaged group is untouched and never named in a decision
    assert_eq!(
        &env.group_state(&unmanaged.0).await,
        &unmanaged.1,
        "invariant 4: unmanaged group changed"
    );
    assert!(
        report.actions.iter().all(|a| a.group != unmanaged.0),
        "invariant 4"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_converges_to_spot_above_each_floor() {
    // GIVEN a region with three managed groups (0% floor at max size, 50% floor, base 2 with a
    // scale-in-protected instance) and an unmanaged group, all on IMDSv2 launch templates
    let env = Env::new().await;
    let specs = [
        (GroupSpec::managed("web", 4), 0u32),
        (
            GroupSpec {
                max: 6,
                ..GroupSpec::managed("api", 4)
            }
            .tag("spotswap:on-demand-percent", "50"),
            0,
        ),
        (
            GroupSpec {
                max: 5,
                ..GroupSpec::managed("workers", 4)
            }
            .tag("spotswap:on-demand-base", "2")
            .tag("spotswap:replace-per-cycle", "2"),
            0,
        ),
    ];
    let mut managed = Vec::new();
    for (spec, _) in &specs {
        env.group(spec).await;
        let base: u32 = spec
            .tags
            .iter()
            .find(|(k, _)| k == "spotswap:on-demand-base")
            .map_or(0, |(_, v)| v.parse().unwrap());
        let pct: u32 = spec
            .tags
            .iter()
            .find(|(k, _)| k == "spotswap:on-demand-percent")
            .map_or(0, |(_, v)| v.parse().unwrap());
        managed.push(Managed {
            name: spec.name.clone(),
            desired: spec.desired,
            max: spec.max,
            floor: required_on_demand(spec.desired as u32, base, pct),
        });
    }
    let protected = env.group_state("workers").await.in_service()[0].clone();
    env.protect("workers", &protected).await;
    env.group(&GroupSpec::managed("legacy", 2).unmanaged()).await;
    let unmanaged = ("legacy".to_string(), env.group_state("legacy").await);

    // WHEN rebalancer cycles run until one makes no change
    let aws = env.aws();
    let mut converged = false;
    let mut started = 0;
    for _cycle in 0..20 {
        let mut before = BTreeMap::new();
        for g in &managed {
            before.insert(g.name.clone(), env.group_state(&g.name).await);
        }
        aws.reset_api_calls();
        let report = rebalance(&aws, &config(), CycleOptions::default())
            .await
            .expect("cycle runs");
        // shown when the test fails
        eprintln!("cycle {_cycle}: {}", serde_json::to_string(&report).unwrap());
        started += report
            .actions
            .iter()
            .filter(|a| {
                matches!(a.kind, ActionKind::Launch(_)) && matches!(a.outcome, Outcome::Done(Some(_)))
            })
            .count();
        // THEN after every cycle, invariants 1, 2 and 4 hold
        check_cycle(&env, &managed, &unmanaged, &before, &report).await;
        // converged: nothing done, nothing waiting but groups at their floor
        if report.mutating_calls() == 0
            && report
                .actions
                .iter()
                .all(|a| matches!(a.kind, ActionKind::Wait) && a.reason == Reason::AtRiskFloor)
        {
            converged = true;
            break;
        }
    }
    assert!(converged, "the fleet converges within 20 cycles");

    // AND 3. on-demand stays at the floor and the rest is spot; MaxSize is back; nothing of
    // ours runs outside a group; launches carry our tags and the group's propagated tags
    let live = env.live_instances().await;
    let mut members = std::collections::BTreeSet::new();
    for g in &managed {
        let state = env.group_state(&g.name).await;
        let (od, spot) = env.mix(&g.name).await;
        assert_eq!(od as u32, g.floor, "{}: on-demand at the floor", g.name);
        assert_eq!((od + spot) as i32, g.desired, "{}: capacity unchanged", g.name);
        assert_eq!(state.desired, g.desired, "{}: desired unchanged", g.name);
        assert_eq!(state.max, g.max, "{}: MaxSize restored", g.name);
        assert!(
            !state.tags.contains_key("spotswap:max-raised-from"),
            "{}: no raise left recorded",
            g.name
        );
        members.extend(state.members.keys().cloned());
        for id in state.in_service() {
            let i = &live[&id];
            if i.spot {
                assert_eq!(i.tags.get("spotswap:group"), Some(&g.name));
                assert!(
                    i.tags.contains_key("spotswap:replaces") && i.tags.contains_key("spotswap:launched-at")
                );
                assert_eq!(
                    i.tags.get("team").map(String::as_str),
                    Some("platform"),
                    "propagated tag copied"
                );
            }
        }
    }
    assert!(
        env.group_state("workers").await.members.contains_key(&protected),
        "the protected instance stays"
    );
    for (id, i) in &live {
        if i.tags.contains_key("spotswap:group") {
            assert!(members.contains(id), "our instance {id} runs outside any group");
        }
    }
    let expected_swaps: u32 = managed.iter().map(|g| g.desired as u32 - g.floor).sum();
    assert_eq!(started as u32, expected_swaps, "one launch per swap, no extras");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_makes_zero_mutating_calls_and_lists_bad_groups() {
    // GIVEN a managed group, a group with a bad tag value, and the CLI
    let env = Env::new().await;
    env.group(&GroupSpec::managed("plan-web", 3)).await;
    env.group(&GroupSpec::managed("plan-bad", 2).tag("spotswap:on-demand-percent", "150"))
        .await;
    let before = (env.group_state("plan-web").await, env.live_instances().await);

    // WHEN `spotswap plan --output json` runs against the region
    let out = std::process::Command::new(workspace_bin("spotswap"))
        .args(["plan", "--output", "json", "--region", env.region()])
        .env("AWS_ENDPOINT_URL", &env.endpoint)
        .env("SPOTSWAP_PRICE_FILE", sample_price_file())
        .output()
        .expect("run spotswap");
    assert!(
        out.status.success(),
        "exit 0 even with a bad tag: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON output");

    // THEN it plans a launch, makes no mutating call, and names the bad group, tag and value
    let actions = v["actions"].as_array().unwrap();
    assert!(actions
        .iter()
        .any(|a| a["action"] == "launch" && a["group"] == "plan-web" && a["reason"] == "OnDemandAboveFloor"));
    for a in actions {
        for key in ["action", "reason", "group", "instance", "pool"] {
            assert!(a.get(key).is_some(), "{key} missing in {a}");
        }
    }
    let calls = v["api_calls"].as_object().unwrap();
    assert!(calls.contains_key("ec2:DescribeInstances"));
    for (op, _) in calls {
        let name = op.rsplit(':').next().unwrap();
        assert!(
            name.starts_with("Describe") || name.starts_with("Get") || name.starts_with("List"),
            "plan made a mutating call: {op}"
        );
    }
    let skipped = v["skipped"].as_array().unwrap();
    let bad = skipped
        .iter()
        .find(|s| s["group"] == "plan-bad")
        .expect("bad group listed");
    assert_eq!(bad["reason"], "InvalidConfig");
    assert!(
        bad["detail"]
            .as_str()
            .unwrap()
            .contains("spotswap:on-demand-percent")
            && bad["detail"].as_str().unwrap().contains("150")
    );
    // AND nothing changed
    assert_eq!(
        (env.group_state("plan-web").await, env.live_instances().await),
        before
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cycle_that_cannot_reach_aws_exits_1() {
    // GIVEN an endpoint where nothing listens
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // WHEN the CLI runs a plan
    let out = std::process::Command::new(workspace_bin("spotswap"))
        .args(["plan", "--region", "us-east-1"])
        .env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}"))
        .env("AWS_MAX_ATTEMPTS", "1")
        .output()
        .expect("run spotswap");
    // THEN it says so and exits 1
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("could not run"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebalancer_lambda_runs_through_the_runtime_api() {
    // GIVEN a managed group and the rebalancer served by `cargo lambda watch` on loopback
    let env = Env::new().await;
    env.group(&GroupSpec::managed("lambda-web", 2)).await;
    let price_file = sample_price_file();
    let watch = LambdaWatch::start(
        "rebalancer",
        &[
            ("AWS_ENDPOINT_URL", &env.endpoint),
            ("AWS_REGION", env.region()),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("SPOTSWAP_PRICE_FILE", &price_file),
        ],
    );
    // WHEN an EC2 state change is invoked first (the optional trigger, which fires for our own
    // launches too)
    let answer = watch.invoke("rebalancer-state-change.json").expect("invoke");
    // THEN it only advances swaps in flight: with none, it starts none and changes nothing
    assert_eq!(answer["mutating_calls"], 0, "{answer}\n{}", watch.log());
    // WHEN the scheduled event is invoked
    let answer = watch.invoke("rebalancer-scheduled.json").expect("invoke");
    // THEN the function ran a cycle that launched a spot replacement
    assert_eq!(answer["dry_run"], false, "{answer}");
    assert!(
        answer["mutating_calls"].as_u64().unwrap() >= 1,
        "{answer}\n{}",
        watch.log()
    );
    let ours: Vec<_> = env
        .live_instances()
        .await
        .into_iter()
        .filter(|(_, i)| i.spot && i.tags.get("spotswap:group").map(String::as_str) == Some("lambda-web"))
        .collect();
    assert_eq!(ours.len(), 1, "one spot launch for the group");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_time_for_launches_no_launch_and_no_preflight_read() {
    // GIVEN a managed group with swaps to start, and an invocation whose time for new swaps is
    // already up
    let env = Env::new().await;
    env.group(&GroupSpec::managed("late-web", 3)).await;
    let before = (env.group_state("late-web").await, env.live_instances().await);
    let opts = CycleOptions {
        deadline: Some(std::time::Instant::now()),
        reserve: Some(std::time::Duration::ZERO),
        ..CycleOptions::default()
    };

    // WHEN a cycle runs
    let report = rebalance(&env.aws(), &config(), opts).await.expect("cycle");

    // THEN its launches are NotAttempted for want of time, without the preflight reads they
    // would have needed (a few hundred of those ran busy invocations into the Lambda timeout)
    let launches: Vec<_> = report
        .actions
        .iter()
        .filter(|a| matches!(a.kind, ActionKind::Launch(_)) && a.group == "late-web")
        .collect();
    assert!(!launches.is_empty(), "a launch is planned: {:?}", report.actions);
    for a in &launches {
        assert_eq!(a.outcome, Outcome::NotAttempted(Reason::OutOfTime), "{a:?}");
    }
    for op in [
        "ec2:DescribeInstanceAttribute",
        "autoscaling:DescribeInstanceRefreshes",
        "autoscaling:DescribeLifecycleHooks",
        "ec2:CreateFleet",
    ] {
        assert!(
            !report.api_calls.contains_key(op),
            "{op} called: {:?}",
            report.api_calls
        );
    }
    assert_eq!(report.mutating_calls(), 0, "{:?}", report.api_calls);
    // AND nothing changed
    assert_eq!(
        (env.group_state("late-web").await, env.live_instances().await),
        before
    );
}
