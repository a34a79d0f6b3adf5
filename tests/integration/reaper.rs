//! The orphan reaper against moto: every kind of stray planted next to look-alikes, then
//! `spotswap reap` (the CLI binary) and the Lambda binary through the runtime API.
//!
//! DESIGN.md §8 invariants 4 (untagged and unmanaged get no mutating call) and 5 (after one
//! pass past the orphan age, nothing of ours runs outside a group, MaxSize is back).

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use aws_sdk_ec2::types::{InstanceType, ResourceType, Tag, TagSpecification};
use spotswap_aws::workflow::now;
use spotswap_core::records::{cooldown_key, no_capacity_key};
use spotswap_core::{tags, Pool};
use spotswap_tests::fleet::{Env, GroupSpec, GroupState, InstanceState};
use spotswap_tests::lambda::{workspace_bin, LambdaWatch};

/// Run an instance outside any group, with `tags`, in the region's first subnet.
pub(super) async fn plant(env: &Env, tags: &[(&str, String)]) -> String {
    let subnet = env.subnets().await.remove(0).0;
    let tag_list: Vec<Tag> = tags
        .iter()
        .map(|(k, v)| Tag::builder().key(*k).value(v).build())
        .collect();
    let mut req = env
        .ec2
        .run_instances()
        .image_id("ami-12c6146b")
        .instance_type(InstanceType::M5Large)
        .min_count(1)
        .max_count(1)
        .subnet_id(subnet);
    if !tag_list.is_empty() {
        req = req.tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Instance)
                .set_tags(Some(tag_list))
                .build(),
        );
    }
    let resp = req.send().await.expect("run instance");
    resp.instances()[0].instance_id().unwrap().to_string()
}

/// Our launch for `group` replacing `replaces`, launched `minutes` ago.
pub(super) fn launch_tags(group: &str, replaces: &str, minutes: i64) -> Vec<(&'static str, String)> {
    vec![
        (tags::GROUP, group.to_string()),
        (tags::REPLACES, replaces.to_string()),
        (tags::LAUNCHED_AT, now().plus_minutes(-minutes).to_rfc3339()),
    ]
}

pub(super) fn detached_tags(group: &str, minutes: i64) -> Vec<(&'static str, String)> {
    vec![
        (tags::DETACHED_AT, now().plus_minutes(-minutes).to_rfc3339()),
        (tags::DETACHED_FROM, group.to_string()),
    ]
}

async fn attach(env: &Env, group: &str, instance: &str) {
    env.asg
        .attach_instances()
        .auto_scaling_group_name(group)
        .instance_ids(instance)
        .send()
        .await
        .expect("attach");
}

/// Names of the mutating operations in a report's `api_calls` (`TerminateInstances`, …).
fn mutating_ops(report: &serde_json::Value) -> Vec<String> {
    report["api_calls"]
        .as_object()
        .expect("api_calls")
        .keys()
        .map(|op| op.rsplit(':').next().unwrap_or(op))
        .filter(|name| !(name.starts_with("Describe") || name.starts_with("Get") || name.starts_with("List")))
        .map(str::to_string)
        .collect()
}

/// `spotswap reap` against the env's region; (report, decision log lines).
fn cli_reap(env: &Env, extra: &[&str]) -> (serde_json::Value, Vec<serde_json::Value>) {
    let out = Command::new(workspace_bin("spotswap"))
        .arg("reap")
        .args(extra)
        .args(["--output", "json"])
        .env("AWS_ENDPOINT_URL", &env.endpoint)
        .env("AWS_REGION", env.region())
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("SPOTSWAP_ORPHAN_MINUTES", "20")
        // Publishing is proven in events_out.rs; here it would only add calls to the counts.
        .env("SPOTSWAP_EVENT_BUS", "")
        .env("RUST_LOG", "info")
        .output()
        .expect("run spotswap (make test builds it)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "spotswap reap failed: {stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    let lines = stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| l["message"] == "decision")
        .collect();
    (report, lines)
}

struct World {
    live: BTreeMap<String, InstanceState>,
    groups: BTreeMap<String, GroupState>,
}

async fn world(env: &Env, groups: &[&str]) -> World {
    let mut g = BTreeMap::new();
    for name in groups {
        g.insert(name.to_string(), env.group_state(name).await);
    }
    World {
        live: env.live_instances().await,
        groups: g,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reap_takes_exactly_our_strays_and_nothing_else() {
    // GIVEN a managed group with one of our launches attached (a member carrying our tags),
    let env = Env::new().await;
    let web = env
        .group(&GroupSpec {
            max: 2,
            ..GroupSpec::managed("reap-web", 1)
        })
        .await;
    let web_od = env.group_state(&web).await.in_service()[0].clone();
    let member_ours = plant(&env, &launch_tags(&web, "i-0000000000000dead", 600)).await;
    attach(&env, &web, &member_ours).await;
    // an unmanaged group with a stale spotswap:max-raised-from, an expired shelter and one of
    // our tagged instances attached,
    let legacy = env
        .group(
            &GroupSpec {
                max: 3,
                ..GroupSpec::managed("reap-legacy", 1)
            }
            .unmanaged()
            .tag(tags::MAX_RAISED_FROM, "1")
            .tag(tags::SHELTERED_UNTIL, &now().plus_minutes(-30).to_rfc3339()),
        )
        .await;
    let legacy_ours = plant(&env, &launch_tags(&legacy, "i-0000000000000beef", 600)).await;
    attach(&env, &legacy, &legacy_ours).await;
    // a managed group left at MaxSize 2 by a crashed swap (spotswap:max-raised-from=1),
    let stale = env
        .group(
            &GroupSpec {
                max: 2,
                ..GroupSpec::managed("reap-stale", 1)
            }
            .tag(tags::MAX_RAISED_FROM, "1"),
        )
        .await;
    // a managed group with a swap in flight: raised MaxSize and a 5-minute-old launch waiting,
    let busy = env
        .group(
            &GroupSpec {
                max: 2,
                ..GroupSpec::managed("reap-busy", 1)
            }
            .tag(tags::MAX_RAISED_FROM, "1"),
        )
        .await;
    let busy_od = env.group_state(&busy).await.in_service()[0].clone();
    let young = plant(&env, &launch_tags(&busy, &busy_od, 5)).await;
    // a managed group with expired records and one live cooldown,
    let a = Pool::new("m5.large", "us-east-1a");
    let b = Pool::new("c5.large", "us-east-1b");
    let past = now().plus_minutes(-1).to_rfc3339();
    let live_cooldown = now().plus_minutes(45).to_rfc3339();
    let records = env
        .group(
            &GroupSpec::managed("reap-records", 1)
                .tag(&cooldown_key(&a), &past)
                .tag(&no_capacity_key(&b), &past)
                .tag(tags::SHELTERED_UNTIL, &past)
                .tag(&cooldown_key(&b), &live_cooldown),
        )
        .await;
    // and outside every group: an orphan of ours 30 minutes old, detached interrupted instances
    // (running 15 minutes after the detach, stopped 12 minutes after, and one detached 2 minutes
    // ago), and look-alikes: untagged, a `Name` of ours, a near-miss key, and an old instance
    // tagged only with an unrelated `spotswap:replaces`
    let orphan = plant(&env, &launch_tags(&web, "i-0000000000000f00", 30)).await;
    let detached_running = plant(&env, &detached_tags(&web, 15)).await;
    let detached_stopped = plant(&env, &detached_tags(&web, 12)).await;
    env.ec2
        .stop_instances()
        .instance_ids(&detached_stopped)
        .send()
        .await
        .expect("stop");
    let detached_fresh = plant(&env, &detached_tags(&web, 2)).await;
    let untagged = plant(&env, &[]).await;
    let named = plant(&env, &[("Name", tags::GROUP.to_string())]).await;
    let near_miss = plant(
        &env,
        &[("spotswap:groups", web.clone()), ("spotswap-group", web.clone())],
    )
    .await;
    let replaces_only = plant(&env, &[(tags::REPLACES, web_od.clone())]).await;

    let all_groups = [
        web.as_str(),
        legacy.as_str(),
        stale.as_str(),
        busy.as_str(),
        records.as_str(),
    ];
    let before = world(&env, &all_groups).await;
    assert_eq!(before.live[&detached_stopped].state, "stopped");

    // WHEN `spotswap reap --dry-run` runs
    let (dry, _) = cli_reap(&env, &["--dry-run"]);
    // THEN it lists what it would do, with reasons, and makes zero mutating calls
    assert_eq!(dry["dry_run"], true);
    assert_eq!(mutating_ops(&dry), Vec::<String>::new(), "dry run mutated: {dry}");
    let planned: BTreeSet<(String, String, String)> = dry["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["outcome"] == "dry-run")
        .map(|a| {
            (
                a["action"].as_str().unwrap().to_string(),
                a["reason"].as_str().unwrap().to_string(),
                a["instance"]
                    .as_str()
                    .unwrap_or(a["group"].as_str().unwrap())
                    .to_string(),
            )
        })
        .collect();
    let t =
        |action: &str, reason: &str, what: &str| (action.to_string(), reason.to_string(), what.to_string());
    assert_eq!(
        planned,
        BTreeSet::from([
            t("terminate", "Orphaned", &orphan),
            t("terminate", "DetachedStillAlive", &detached_running),
            t("terminate", "DetachedStillAlive", &detached_stopped),
            t("restore-max", "NoSwapInFlight", &stale),
            t("clear-records", "RecordExpired", &records),
        ])
    );
    assert_eq!(
        world(&env, &all_groups).await.live,
        before.live,
        "dry run changed instances"
    );

    // WHEN `spotswap reap` runs
    let (report, lines) = cli_reap(&env, &[]);

    // THEN exactly the orphan and the two detached instances still alive are gone
    let after = world(&env, &all_groups).await;
    let gone: BTreeSet<&String> = before
        .live
        .keys()
        .filter(|id| !after.live.contains_key(*id))
        .collect();
    assert_eq!(
        gone,
        BTreeSet::from([&orphan, &detached_running, &detached_stopped])
    );
    // AND every other instance is exactly as it was: members carrying our tags, the young
    // launch of a swap in flight, the fresh detached one, and the look-alikes
    for id in [
        &member_ours,
        &legacy_ours,
        &young,
        &detached_fresh,
        &untagged,
        &named,
        &near_miss,
        &replaces_only,
        &web_od,
        &busy_od,
    ] {
        assert_eq!(after.live.get(id), before.live.get(id), "{id} was touched");
    }
    // AND the stale group is back to MaxSize 1 without the record
    assert_eq!(after.groups[&stale].max, 1);
    assert!(!after.groups[&stale].tags.contains_key(tags::MAX_RAISED_FROM));
    // AND the expired records are gone, the live cooldown kept, nothing else changed
    let mut expected = before.groups[&records].clone();
    for k in [
        cooldown_key(&a),
        no_capacity_key(&b),
        tags::SHELTERED_UNTIL.to_string(),
    ] {
        expected.tags.remove(&k);
    }
    assert_eq!(after.groups[&records], expected);
    assert_eq!(after.groups[&records].tags[&cooldown_key(&b)], live_cooldown);
    // AND the group with a swap in flight, the managed group and the unmanaged group are untouched
    for g in [&web, &legacy, &busy] {
        assert_eq!(after.groups[g], before.groups[g], "{g} was touched");
    }
    // AND the unmanaged group is named only as skipped, never in a decision
    assert!(report["actions"]
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["group"] != legacy.as_str()));
    assert!(report["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["group"] == legacy.as_str() && s["reason"] == "NotManaged"));
    // AND the waits explain themselves
    let reasons: BTreeMap<String, String> = report["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["action"] == "wait")
        .map(|a| {
            (
                a["instance"]
                    .as_str()
                    .unwrap_or(a["group"].as_str().unwrap())
                    .to_string(),
                a["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(reasons[&young], "WaitingForOrphanAge");
    assert_eq!(reasons[&detached_fresh], "WaitingForDetachedGrace");
    assert_eq!(reasons[&busy_od], "SwapInFlight");
    // AND the only mutating calls are the terminations, the restore and the clean-up
    let mut ops = mutating_ops(&report);
    ops.sort();
    assert_eq!(
        ops,
        vec![
            "DeleteTags".to_string(),
            "TerminateInstances".to_string(),
            "UpdateAutoScalingGroup".to_string(),
        ]
    );
    assert_eq!(report["api_calls"]["ec2:TerminateInstances"], 3);
    // AND there is one JSON log line per decision, with the fields DESIGN.md §9 names
    assert_eq!(lines.len(), report["actions"].as_array().unwrap().len());
    for l in &lines {
        for key in ["action", "reason", "group", "instance", "pool"] {
            assert!(l.get(key).is_some(), "{key} missing in {l}");
        }
    }

    // WHEN it runs again
    let (again, _) = cli_reap(&env, &[]);
    // THEN there is nothing left to do
    assert_eq!(
        mutating_ops(&again),
        Vec::<String>::new(),
        "second pass mutated: {again}"
    );
    assert_eq!(world(&env, &all_groups).await.live, after.live);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reaper_lambda_reaps_through_the_runtime_api() {
    // GIVEN an orphan of ours (launched a minute ago), a member carrying our tags, an untagged
    // instance, and the reaper served by `cargo lambda watch` on loopback with an orphan age of 0
    let env = Env::new().await;
    let web = env
        .group(&GroupSpec {
            max: 2,
            ..GroupSpec::managed("lambda-reap", 1)
        })
        .await;
    let member = plant(&env, &launch_tags(&web, "i-0000000000000dead", 1)).await;
    attach(&env, &web, &member).await;
    let orphan = plant(&env, &launch_tags(&web, "i-0000000000000f00", 1)).await;
    let untagged = plant(&env, &[]).await;
    let watch = LambdaWatch::start(
        "orphan-reaper",
        &[
            ("AWS_ENDPOINT_URL", &env.endpoint),
            ("AWS_REGION", env.region()),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("SPOTSWAP_ORPHAN_MINUTES", "0"),
        ],
    );

    // WHEN the scheduled event is invoked
    let answer = watch.invoke("reaper-scheduled.json").expect("invoke");
    drop(watch);

    // THEN the function reaped exactly the orphan
    assert_eq!(answer["terminated"], 1, "{answer}");
    assert_eq!(answer["dry_run"], false, "{answer}");
    let live = env.live_instances().await;
    assert!(!live.contains_key(&orphan), "orphan still alive");
    assert!(live.contains_key(&member) && live.contains_key(&untagged));
    assert!(env.group_state(&web).await.members.contains_key(&member));
}
