//! Issue 15, hardening: the safety controls hold as AWS behaves, where moto is blind. Each
//! test here failed before its fix.

use spotswap_aws::{rebalance, Config, CycleOptions, CycleReport, Outcome};
use spotswap_core::{ActionKind, Timestamp};
use spotswap_tests::fleet::{sample_price_file, Env, GroupSpec};
use spotswap_tests::proxy::Proxy;

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

/// Set one group tag, as its owner would.
async fn set_group_tag(env: &Env, group: &str, key: &str, value: &str) {
    env.asg
        .create_or_update_tags()
        .tags(
            aws_sdk_autoscaling::types::Tag::builder()
                .resource_id(group)
                .resource_type("auto-scaling-group")
                .key(key)
                .value(value)
                .propagate_at_launch(false)
                .build(),
        )
        .send()
        .await
        .expect("tag");
}

/// The launched instance of the cycle's one launch.
fn launched(report: &CycleReport) -> Option<String> {
    report.actions.iter().find_map(|a| match (&a.kind, &a.outcome) {
        (ActionKind::Launch(_), Outcome::Done(Some(id))) => Some(id.clone()),
        _ => None,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relaunch_minutes_later_is_a_new_request_with_a_token_of_its_own() {
    // GIVEN a managed group of one on-demand instance, behind a proxy that honours CreateFleet's
    // ClientToken as EC2 does (moto ignores it)
    let proxy = Proxy::from_env().await.expect("proxy");
    proxy.set_client_tokens(true);
    let env = Env::at(&proxy.url()).await;
    env.group(&GroupSpec::managed("token-web", 1)).await;
    // the start of a 10-minute bucket, so both cycles fall in the same one
    let now = Timestamp::from_unix(spotswap_aws::workflow::now().unix().div_euclid(600) * 600);

    // WHEN a cycle launches a replacement, the launch dies before its attach (terminated
    // outside spotswap), and a cycle 30 s later launches again for the same original
    let first = launched(&cycle_at(&env, now).await).expect("the first cycle launches");
    env.ec2
        .terminate_instances()
        .instance_ids(&first)
        .send()
        .await
        .expect("terminate");
    let report = cycle_at(&env, now.plus_secs(30)).await;

    // THEN the second launch is a request of its own, launched: not refused as
    // IdempotentParameterMismatch for reusing the first one's token with another launched-at
    let second = launched(&report);
    assert!(
        second.as_ref().is_some_and(|id| *id != first),
        "{:#?}",
        report.actions
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_size_set_by_its_owner_during_a_swap_is_kept() {
    // GIVEN a managed group at MaxSize (desired 1 = max 1): the swap must raise MaxSize
    let env = Env::new().await;
    env.group(&GroupSpec::managed("owner-web", 1)).await;
    let start = spotswap_aws::workflow::now();
    let mut owner_changed = false;
    // WHEN the swap runs, and its owner sets MaxSize to 5 once spotswap has raised it
    for step in 0..8 {
        cycle_at(&env, start.plus_secs(60 * step)).await;
        let g = env.group_state("owner-web").await;
        if !owner_changed && g.max > 1 {
            env.asg
                .update_auto_scaling_group()
                .auto_scaling_group_name("owner-web")
                .max_size(5)
                .send()
                .await
                .expect("the owner's update");
            owner_changed = true;
        }
    }
    // THEN the swap completed, the owner's MaxSize stands, and no record of ours is left
    let g = env.group_state("owner-web").await;
    assert!(owner_changed, "spotswap never raised MaxSize: {g:?}");
    assert_eq!(env.mix("owner-web").await, (0, 1), "swapped to spot");
    assert_eq!(g.max, 5, "the owner's MaxSize was overwritten: {g:?}");
    assert!(
        !g.tags.keys().any(|k| k.starts_with("spotswap:max-raised")),
        "{:?}",
        g.tags
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_tag_does_not_freeze_a_swap_in_flight() {
    // GIVEN a managed group at MaxSize, whose swap has attached its replacement (desired and
    // MaxSize raised by one)
    let env = Env::new().await;
    env.group(&GroupSpec::managed("typo-web", 1)).await;
    let start = spotswap_aws::workflow::now();
    let mut step = 0;
    while env.group_state("typo-web").await.desired < 2 {
        assert!(step < 6, "the replacement was never attached");
        cycle_at(&env, start.plus_secs(60 * step)).await;
        step += 1;
    }
    // WHEN a typo lands in one of its tags, and the cycles go on
    set_group_tag(&env, "typo-web", "spotswap:on-demand-percent", "abc").await;
    let mut last = None;
    for more in 0..4 {
        last = Some(cycle_at(&env, start.plus_secs(60 * (step + more))).await);
    }
    // THEN the swap still finishes: the original is retired and desired and MaxSize come back
    let g = env.group_state("typo-web").await;
    assert_eq!((g.desired, g.max), (1, 1), "{g:?}");
    assert_eq!(env.mix("typo-web").await, (0, 1));
    // AND every cycle still says the group is misconfigured, naming the tag and the value
    let last = last.expect("cycles ran");
    let skip = last
        .skipped
        .iter()
        .find(|s| s.group == "typo-web")
        .expect("skipped");
    assert_eq!(skip.reason, spotswap_core::Reason::InvalidConfig);
    let detail = skip.detail.clone().unwrap_or_default();
    assert!(
        detail.contains("spotswap:on-demand-percent") && detail.contains("abc"),
        "{detail}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_launch_that_fails_its_status_checks_marks_its_pool_instead_of_churning() {
    // GIVEN a managed group of one on-demand instance, behind a proxy whose status checks for
    // every instance fail (moto's always pass)
    let proxy = Proxy::from_env().await.expect("proxy");
    proxy.set_status_checks("*", Some(spotswap_tests::proxy::StatusChecks::Impaired));
    let env = Env::at(&proxy.url()).await;
    env.group(&GroupSpec::managed("impaired-web", 1)).await;
    let start = spotswap_aws::workflow::now();
    let first = launched(&cycle_at(&env, start).await).expect("a launch");

    // WHEN cycles run past the time a launch has to pass its checks
    let report = cycle_at(&env, start.plus_minutes(11)).await;

    // THEN the launch is ended and its pool marked, so the next swap goes elsewhere
    let ended = report
        .actions
        .iter()
        .find(|a| matches!(&a.kind, ActionKind::TerminateLaunch { instance } if *instance == first))
        .unwrap_or_else(|| panic!("{:#?}", report.actions));
    assert_eq!(ended.reason, spotswap_core::Reason::StatusChecksFailed);
    let pool = ended.pool.clone().expect("the launch's pool");
    let g = env.group_state("impaired-web").await;
    assert!(
        g.tags.contains_key(&format!("spotswap:no-capacity:{pool}")),
        "{pool} not marked: {:?}",
        g.tags
    );
    let next = cycle_at(&env, start.plus_minutes(12)).await;
    for a in next
        .actions
        .iter()
        .filter(|a| matches!(a.kind, ActionKind::Launch(_)))
    {
        assert!(!a.candidates().contains(&&pool), "{pool} offered again: {a:?}");
    }
    // AND the group kept its capacity throughout
    assert_eq!(g.in_service().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interruption_in_a_misconfigured_group_still_gets_its_replacement() {
    // GIVEN a managed group with a spot member and a typo in one of its tags
    let env = Env::new().await;
    let spec = GroupSpec::managed("typo-int", 2).tag("spotswap:cooldown-minutes", "soon");
    let (group, spot) = super::interruption::group_with_spot(&env, spec, 1).await;
    let before = env.group_state(&group).await;

    // WHEN its spot instance gets the interruption warning
    let report = spotswap_aws::handle_event(
        &env.aws(),
        &config(),
        &super::interruption::warning(&spot[0]),
        spotswap_aws::EventOptions::default(),
    )
    .await
    .expect("handled");

    // THEN the replacement still gets going (safety, not configuration): the instance leaves
    // the group without a decrement, so the group launches its replacement
    assert!(report.acted(), "{:#?}", report.decisions);
    let after = env.group_state(&group).await;
    assert!(!after.members.contains_key(&spot[0]));
    assert_eq!(after.desired, before.desired);
    // AND the bad tag is named, as an error, in the report
    let skip = report.skipped.first().expect("the bad tag is reported");
    assert_eq!(skip.reason, spotswap_core::Reason::InvalidConfig);
    assert!(skip
        .detail
        .as_deref()
        .unwrap_or("")
        .contains("spotswap:cooldown-minutes"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_whose_owner_suspended_terminate_gets_no_new_swap() {
    // GIVEN a managed group of on-demand instances whose owner suspended Terminate
    let env = Env::new().await;
    env.group(&GroupSpec::managed("frozen-web", 2)).await;
    env.asg
        .suspend_processes()
        .auto_scaling_group_name("frozen-web")
        .scaling_processes("Terminate")
        .send()
        .await
        .expect("suspend");
    // WHEN a cycle runs
    let report = cycle_at(&env, spotswap_aws::workflow::now()).await;
    // THEN no swap starts (it could never retire its original), and the skip names the process
    let skip = report
        .skipped
        .iter()
        .find(|s| s.group == "frozen-web")
        .unwrap_or_else(|| panic!("not skipped: {:#?}", report.actions));
    assert_eq!(skip.reason, spotswap_core::Reason::ProcessesSuspended);
    assert!(
        skip.detail.as_deref().unwrap_or("").contains("Terminate"),
        "{skip:?}"
    );
    assert!(
        !report.api_calls.contains_key("ec2:CreateFleet"),
        "{:?}",
        report.api_calls
    );
    assert_eq!(report.mutating_calls(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_risk_floor_comes_back_after_it_is_raised() {
    // GIVEN a managed group of 2 swapped to spot (floor 0)
    let env = Env::new().await;
    env.group(&GroupSpec::managed("floor-web", 2)).await;
    let start = spotswap_aws::workflow::now();
    let mut step = 0;
    while env.mix("floor-web").await != (0, 2) {
        assert!(
            step < 12,
            "never converged to spot: {:?}",
            env.mix("floor-web").await
        );
        cycle_at(&env, start.plus_secs(60 * step)).await;
        step += 1;
    }
    // WHEN its owner raises the floor to one on-demand instance, and the cycles go on
    set_group_tag(&env, "floor-web", "spotswap:on-demand-base", "1").await;
    let mut reasons = Vec::new();
    for more in 0..8 {
        let report = cycle_at(&env, start.plus_secs(60 * (step + more))).await;
        reasons.extend(report.actions.iter().map(|a| a.reason));
        // never below desired, even while it is restored
        let g = env.group_state("floor-web").await;
        assert!(
            g.in_service().len() >= 2,
            "InService {} < 2",
            g.in_service().len()
        );
    }
    // THEN it is back at its floor, through the same stages, with desired where it was
    assert_eq!(env.mix("floor-web").await, (1, 1), "{reasons:?}");
    assert!(
        reasons.contains(&spotswap_core::Reason::BelowRiskFloor),
        "{reasons:?}"
    );
    let g = env.group_state("floor-web").await;
    assert_eq!((g.desired, g.max), (2, 2));
}

/// `spotswap rebalance` against `endpoint`; (report, decision log lines).
fn cli_rebalance(env: &Env, endpoint: &str) -> (serde_json::Value, Vec<serde_json::Value>) {
    let out = std::process::Command::new(spotswap_tests::lambda::workspace_bin("spotswap"))
        .args(["rebalance", "--output", "json"])
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_REGION", env.region())
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("SPOTSWAP_PRICE_FILE", sample_price_file())
        .env("SPOTSWAP_EVENT_BUS", "")
        .env("RUST_LOG", "info")
        .output()
        .expect("run spotswap (make test builds it)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "spotswap rebalance failed: {stderr}");
    let report = serde_json::from_slice(&out.stdout).expect("JSON report");
    let lines = stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| l["fields"]["message"] == "decision" || l["message"] == "decision")
        .collect();
    (report, lines)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_launch_line_names_the_pool_create_fleet_used_not_the_first_override() {
    // GIVEN a managed group of one on-demand instance, and a market whose cheapest pool (the
    // launch's first override) has no spot capacity
    let proxy = Proxy::from_env().await.expect("proxy");
    let env = Env::at(&proxy.url()).await;
    env.group(&GroupSpec::managed("actual-web", 1)).await;
    proxy.set_default_spot_price(Some(0.02));
    let planned = rebalance(
        &env.aws(),
        &Config {
            dry_run: true,
            ..config()
        },
        CycleOptions::default(),
    )
    .await
    .expect("plan");
    let first = planned
        .actions
        .iter()
        .find_map(|a| match &a.kind {
            ActionKind::Launch(spec) if spec.candidates.len() > 1 => Some(spec.candidates[0].pool.clone()),
            _ => None,
        })
        .expect("a launch with more than one override");
    proxy.set_spot_price(&first.instance_type, &first.az, 0.01);
    proxy.set_no_capacity(&first.instance_type, &first.az, true);

    // WHEN a cycle launches (through the CLI, whose log lines are the Lambda's)
    let (report, lines) = cli_rebalance(&env, &proxy.url());

    // THEN a launch was made, into another type than the first override's (every override
    // names the original's subnet, so the AZ is the same)
    let ours = env.live_instances().await;
    let (_, actual) = ours
        .iter()
        .find(|(_, i)| i.tags.get("spotswap:group").map(String::as_str) == Some("actual-web"))
        .expect("our launch runs");
    assert_ne!(
        actual.instance_type, first.instance_type,
        "the first override had no capacity"
    );
    let actual_pool = format!("{}/{}", actual.instance_type, first.az);
    // AND its decision line names the pool EC2 launched into and that pool's price
    let fields = |l: &serde_json::Value| -> serde_json::Value {
        if l["fields"].is_object() {
            l["fields"].clone()
        } else {
            l.clone()
        }
    };
    let line = lines
        .iter()
        .map(fields)
        .find(|f| f["action"] == "launch" && f["outcome"] == "done")
        .unwrap_or_else(|| panic!("a launch decision line: {lines:#?}"));
    assert_eq!(line["pool"], actual_pool.as_str(), "{line}");
    // AND so does the report the CLI prints
    let reported = report["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .find(|a| a["action"] == "launch" && a["outcome"] == "done")
        .expect("the launch in the report");
    assert_eq!(reported["pool"], actual_pool.as_str(), "{reported}");
    assert_eq!(line["spot_price"], 0.02, "{line}");
}
