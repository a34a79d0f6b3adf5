//! Issue 19, operations: swap windows and pause switches, against moto through the real SDK and
//! the real CLI binary.

use std::process::Command;

use spotswap_aws::{rebalance, Config, CycleOptions, CycleReport};
use spotswap_core::{ActionKind, Reason, Timestamp};
use spotswap_tests::fleet::{sample_price_file, Env, GroupSpec};
use spotswap_tests::lambda::workspace_bin;

fn config() -> Config {
    Config {
        price_file: Some(sample_price_file()),
        ..Config::default()
    }
}

async fn cycle(env: &Env, config: &Config, now: Option<Timestamp>) -> (CycleReport, Vec<String>) {
    let aws = env.aws();
    let opts = CycleOptions {
        now,
        ..CycleOptions::default()
    };
    let report = rebalance(&aws, config, opts).await.expect("cycle");
    let mutating = report
        .api_calls
        .keys()
        .filter(|op| spotswap_core::ops::is_mutating(op))
        .cloned()
        .collect();
    (report, mutating)
}

fn launches(report: &CycleReport) -> usize {
    report
        .actions
        .iter()
        .filter(|a| matches!(a.kind, ActionKind::Launch(_)))
        .count()
}

fn skip_of<'r>(report: &'r CycleReport, group: &str) -> Option<&'r spotswap_core::Skip> {
    report.skipped.iter().find(|s| s.group == group)
}

/// `spotswap <args>` against the env's region: (exit code, stdout, stderr).
fn cli(env: &Env, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(workspace_bin("spotswap"))
        .args(args)
        .env("AWS_ENDPOINT_URL", &env.endpoint)
        .env("AWS_REGION", env.region())
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .output()
        .expect("run spotswap (make test builds it)");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_holds_new_swaps_until_resume_and_writes_only_its_tag() {
    // GIVEN a managed group of two on-demand instances that would start a swap
    let env = Env::new().await;
    env.group(&GroupSpec::managed("ops-web", 2)).await;
    let before = env.group_state("ops-web").await;
    // WHEN its owner runs `spotswap pause ops-web --for 2h`
    let t0 = spotswap_aws::workflow::now();
    let (code, out, err) = cli(&env, &["pause", "ops-web", "--for", "2h", "--output", "json"]);
    assert_eq!(code, 0, "{err}");
    let report: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(report["changed"], true);
    // THEN the group carries spotswap:paused-until two hours from now, and nothing else changed
    let after = env.group_state("ops-web").await;
    let until = Timestamp::parse_rfc3339(&after.tags["spotswap:paused-until"]).expect("RFC 3339");
    let secs = until.secs_since(t0);
    assert!((7_195..=7_260).contains(&secs), "paused for {secs} s");
    let mut expected = before.clone();
    expected.tags.insert(
        "spotswap:paused-until".into(),
        after.tags["spotswap:paused-until"].clone(),
    );
    assert_eq!(after, expected, "pause writes its tag and nothing else");
    // AND a cycle starts no swap: the group is skipped as Paused, until that time
    let (report, _) = cycle(&env, &config(), None).await;
    assert_eq!(launches(&report), 0, "{:?}", report.actions);
    let skip = skip_of(&report, "ops-web").expect("skipped");
    assert_eq!(skip.reason, Reason::Paused);
    assert!(skip.detail.as_deref().unwrap_or("").contains(&until.to_rfc3339()));
    // AND a cycle after the pause has ended starts a swap again
    let (report, _) = cycle(&env, &config(), Some(until.plus_secs(60))).await;
    assert_eq!(launches(&report), 1, "{:?}", report.skipped);

    // WHEN the owner runs `spotswap resume ops-web`
    let (code, _, err) = cli(&env, &["resume", "ops-web"]);
    assert_eq!(code, 0, "{err}");
    // THEN the tag is gone; a second resume changes nothing
    assert!(!env
        .group_state("ops-web")
        .await
        .tags
        .contains_key("spotswap:paused-until"));
    let (code, out, _) = cli(&env, &["resume", "ops-web", "--output", "json"]);
    assert_eq!(code, 0);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&out).unwrap()["changed"],
        false
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pausing_an_unknown_group_or_for_a_bad_duration_is_bad_input_with_no_mutation() {
    let env = Env::new().await;
    env.group(&GroupSpec::managed("ops-known", 1)).await;
    // GIVEN a group name that does not exist, and a duration that is not one
    for (args, names) in [
        (vec!["pause", "ops-nope", "--for", "2h"], "ops-nope"),
        (vec!["resume", "ops-nope"], "ops-nope"),
        (vec!["pause", "ops-known", "--for", "forever"], "forever"),
    ] {
        let (code, _, err) = cli(&env, &args);
        // THEN exit 2 (bad input), and the error names the thing
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(names), "{args:?}: {err}");
    }
    // AND in-process, an unknown group costs reads only
    let aws = env.aws();
    let err = spotswap_aws::pause::pause(&aws, "ops-nope", Timestamp::from_unix(2_000_000_000))
        .await
        .expect_err("unknown group");
    assert!(err.to_string().contains("ops-nope"));
    assert!(aws
        .api_calls()
        .keys()
        .all(|op| !spotswap_core::ops::is_mutating(op)));
    assert!(!env
        .group_state("ops-known")
        .await
        .tags
        .contains_key("spotswap:paused-until"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outside_its_window_a_group_waits_and_plan_says_when_it_opens() {
    // GIVEN a group whose window is weekdays 08:00-18:00 in Dublin, on a Saturday at noon
    let env = Env::new().await;
    env.group(
        &GroupSpec::managed("ops-window", 2).tag("spotswap:schedule", "Mon-Fri 08:00-18:00 Europe/Dublin"),
    )
    .await;
    let saturday = Timestamp::parse_rfc3339("2026-12-05T12:00:00Z").unwrap();
    let (report, mutating) = cycle(&env, &config(), Some(saturday)).await;
    // THEN no swap starts, and the skip gives the next opening: Monday 08:00 Dublin (UTC+0)
    assert_eq!(launches(&report), 0);
    assert!(mutating.is_empty(), "{mutating:?}");
    let skip = skip_of(&report, "ops-window").expect("skipped");
    assert_eq!(skip.reason, Reason::OutsideSchedule);
    assert!(
        skip.detail
            .as_deref()
            .unwrap_or("")
            .contains("opens at 2026-12-07T08:00:00Z"),
        "{skip:?}"
    );
    // AND on Monday at 09:00 Dublin it starts a swap
    let monday = Timestamp::parse_rfc3339("2026-12-07T09:00:00Z").unwrap();
    let (report, _) = cycle(&env, &config(), Some(monday)).await;
    assert_eq!(launches(&report), 1, "{:?}", report.skipped);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_window_or_pause_value_is_invalid_config_and_the_stack_pause_holds_everything() {
    let env = Env::new().await;
    env.group(&GroupSpec::managed("ops-bad-window", 1).tag("spotswap:schedule", "weekdays 9-5"))
        .await;
    env.group(&GroupSpec::managed("ops-bad-pause", 1).tag("spotswap:paused-until", "after lunch"))
        .await;
    env.group(&GroupSpec::managed("ops-fine", 1)).await;
    let (report, mutating) = cycle(
        &env,
        &Config {
            settings: spotswap_core::Settings {
                defaults: spotswap_core::Policy::from_env(|k| {
                    (k == "SPOTSWAP_PAUSED").then(|| "true".into())
                })
                .unwrap(),
                ..Default::default()
            },
            ..config()
        },
        None,
    )
    .await;
    // THEN the bad values are InvalidConfig naming the tag and the value, the good group is
    //   Paused by the stack, and nothing at all is changed
    for (group, tag, value) in [
        ("ops-bad-window", "spotswap:schedule", "weekdays 9-5"),
        ("ops-bad-pause", "spotswap:paused-until", "after lunch"),
    ] {
        let skip = skip_of(&report, group).expect("skipped");
        assert_eq!(skip.reason, Reason::InvalidConfig, "{group}");
        let detail = skip.detail.clone().unwrap_or_default();
        assert!(detail.contains(tag) && detail.contains(value), "{detail}");
    }
    let fine = skip_of(&report, "ops-fine").expect("skipped");
    assert_eq!(fine.reason, Reason::Paused);
    assert!(fine.detail.as_deref().unwrap_or("").contains("SPOTSWAP_PAUSED"));
    assert_eq!(launches(&report), 0);
    assert!(mutating.is_empty(), "{mutating:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_template_version_rolls_out_through_safe_swaps_keeping_the_floor() {
    // GIVEN a group of two on-demand instances, both its floor, launched from version 1 of its
    //   `$Latest` template, tagged replace-outdated=true
    let env = Env::new().await;
    let group = env
        .group(&GroupSpec {
            max: 3,
            subnets: 1,
            ..GroupSpec::managed("ops-roll", 2)
                .tag("spotswap:on-demand-base", "2")
                .tag("spotswap:replace-outdated", "true")
        })
        .await;
    let before = env.group_state(&group).await;
    let old: Vec<String> = before.in_service();
    let live = env.live_instances().await;
    assert!(old.iter().all(|i| live[i]
        .tags
        .get("aws:ec2launchtemplate:version")
        .map(String::as_str)
        == Some("1")));
    // WHEN its owner publishes version 2
    env.ec2
        .create_launch_template_version()
        .launch_template_name(format!("{group}-lt"))
        .source_version("1")
        .launch_template_data(
            aws_sdk_ec2::types::RequestLaunchTemplateData::builder()
                .image_id("ami-12c6146b")
                .build(),
        )
        .send()
        .await
        .expect("version 2");
    // AND rebalancer cycles run
    let mut reasons = Vec::new();
    let mut settled = false;
    for _ in 0..16 {
        let (cycle, _) = cycle(&env, &config(), None).await;
        reasons.extend(cycle.actions.iter().map(|a| a.reason));
        let g = env.group_state(&group).await;
        assert!(g.in_service().len() >= 2, "never below desired: {g:?}");
        if cycle.mutating_calls() == 0 {
            settled = true;
            break;
        }
    }
    // THEN every member runs version 2, on-demand as the floor says, desired and MaxSize as
    //   before, and the old instances are gone
    assert!(settled, "the rollout settles: {reasons:?}");
    assert!(reasons.contains(&Reason::OutdatedTemplate), "{reasons:?}");
    let after = env.group_state(&group).await;
    assert_eq!((after.desired, after.max), (before.desired, before.max));
    let live = env.live_instances().await;
    let members = after.in_service();
    assert_eq!(members.len(), 2);
    for id in &members {
        // moto's CreateFleet does not tag its instances with aws:ec2launchtemplate:* as EC2
        // does (docs/design.md §11): a replacement is ours, launched from the `$Latest` (now 2)
        // template, and never version 1.
        assert_ne!(
            live[id]
                .tags
                .get("aws:ec2launchtemplate:version")
                .map(String::as_str),
            Some("1"),
            "{id}"
        );
        assert_eq!(
            live[id].tags.get("spotswap:group"),
            Some(&group),
            "{id} is a replacement"
        );
        assert!(!live[id].spot, "{id} on-demand: the floor needs it");
    }
    assert!(
        old.iter().all(|i| !live.contains_key(i)),
        "old instances terminated"
    );
}
