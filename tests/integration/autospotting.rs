//! Switching from AutoSpotting, against moto: `SPOTSWAP_COMPAT=autospotting` converging groups
//! tagged only AutoSpotting's way to AutoSpotting's floors (DESIGN.md §8 invariants 1–5 checked
//! on the way), `spotswap migrate` (zero mutating calls without `--apply`, nothing changed by a
//! second `--apply`), AutoSpotting's orphans (listed; reaped only with the flag; look-alikes
//! never touched), and no new swap in a group AutoSpotting still acts on.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{InstanceType, ResourceType, Tag, TagSpecification};
use spotswap_aws::migrate::{migrate, MigrateOptions, OrphanAction};
use spotswap_aws::workflow::now;
use spotswap_aws::{reap, rebalance, Config, CycleOptions, Outcome};
use spotswap_core::compat_mode::autospotting::{self, AutoSpottingCompat, LAUNCHED_BY, LAUNCHED_FOR};
use spotswap_core::{ActionKind, Reason};
use spotswap_tests::fleet::{sample_price_file, Env, GroupSpec};
use spotswap_tests::lambda::workspace_bin;

fn compat_config() -> Config {
    let mut c = Config {
        price_file: Some(sample_price_file()),
        ..Config::default()
    };
    c.settings.compat = Some(AutoSpottingCompat::default());
    c
}

/// A group tagged only AutoSpotting's way (`spot-enabled=true` and `tags`), `desired`
/// on-demand m5.large, MaxSize = desired.
fn autospotting_group(name: &str, desired: i32, tags: &[(&str, &str)]) -> GroupSpec {
    let mut spec = GroupSpec::managed(name, desired)
        .unmanaged()
        .tag(autospotting::SPOT_ENABLED, "true");
    for (k, v) in tags {
        spec = spec.tag(k, v);
    }
    spec
}

/// Run an instance outside any group with `tags`, in the region's first subnet.
async fn plant(env: &Env, tags: &[(&str, &str)]) -> String {
    let subnet = env.subnets().await.remove(0).0;
    let tag_list: Vec<Tag> = tags
        .iter()
        .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
        .collect();
    let resp = env
        .ec2
        .run_instances()
        .image_id("ami-12c6146b")
        .instance_type(InstanceType::M5Large)
        .min_count(1)
        .max_count(1)
        .subnet_id(subnet)
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Instance)
                .set_tags(Some(tag_list))
                .build(),
        )
        .send()
        .await
        .expect("run instance");
    resp.instances()[0].instance_id().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_tagged_only_autospottings_way_converge_to_autospottings_floors() {
    // GIVEN two groups tagged only AutoSpotting's way, with floors where the two tools' rules
    // differ, and an untagged group
    let env = Env::new().await;
    let groups = [
        // max(1, round(50% × 4)) = 2 (spotswap's base 1 + ceil(50% × 3) would be 3)
        (
            autospotting_group(
                "as-web",
                4,
                &[
                    (autospotting::MIN_ON_DEMAND_NUMBER, "1"),
                    (autospotting::MIN_ON_DEMAND_PERCENTAGE, "50"),
                ],
            ),
            2usize,
        ),
        // round(25% × 5) = round(1.25) = 1 (spotswap's ceil would be 2); space-separated types
        (
            autospotting_group(
                "as-api",
                5,
                &[
                    (autospotting::MIN_ON_DEMAND_PERCENTAGE, "25"),
                    (
                        autospotting::ALLOWED_INSTANCE_TYPES,
                        "m5.large m5a.large  m6i.large",
                    ),
                    ("autospotting_bidding_policy", "aggressive"),
                ],
            ),
            1,
        ),
    ];
    for (spec, _) in &groups {
        env.group(&GroupSpec {
            tags: [
                spec.tags.clone(),
                vec![("spotswap:replace-per-cycle".into(), "5".into())],
            ]
            .concat(),
            ..spec.clone()
        })
        .await;
    }
    env.group(&GroupSpec::managed("as-legacy", 2).unmanaged()).await;
    let legacy = env.group_state("as-legacy").await;

    // WHEN rebalancer cycles run in compatibility mode until one makes no change
    let aws = env.aws();
    let config = compat_config();
    let mut converged = false;
    for cycle in 0..20 {
        let before: BTreeMap<String, usize> = {
            let mut m = BTreeMap::new();
            for (spec, _) in &groups {
                m.insert(spec.name.clone(), spec.desired as usize);
            }
            m
        };
        aws.reset_api_calls();
        let report = rebalance(&aws, &config, CycleOptions::default())
            .await
            .expect("cycle runs");
        eprintln!("cycle {cycle}: {}", serde_json::to_string(&report).unwrap());
        // THEN after every cycle: never below desired (1), no failed action, the untagged
        // group untouched (4)
        for (name, desired) in &before {
            let s = env.group_state(name).await;
            assert!(s.in_service().len() >= *desired, "invariant 1: {name}");
        }
        assert!(report
            .actions
            .iter()
            .all(|a| !matches!(a.outcome, Outcome::Failed(_))));
        assert!(
            report.actions.iter().all(|a| a.group != "as-legacy"),
            "invariant 4"
        );
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
    assert!(converged, "converges within 20 cycles");

    // AND on-demand is exactly AutoSpotting's floor, the rest spot, MaxSize back (3)
    for (spec, floor) in &groups {
        let (od, spot) = env.mix(&spec.name).await;
        assert_eq!(od, *floor, "{}: on-demand at AutoSpotting's floor", spec.name);
        assert_eq!(od + spot, spec.desired as usize, "{}: capacity kept", spec.name);
        let s = env.group_state(&spec.name).await;
        assert_eq!(s.max, spec.max, "{}: MaxSize restored", spec.name);
        assert_eq!(s.desired, spec.desired);
    }
    // AND the allowed list was applied: every spot instance of as-api is one of its types
    let live = env.live_instances().await;
    for id in env.group_state("as-api").await.in_service() {
        let t = &live[&id].instance_type;
        assert!(
            ["m5.large", "m5a.large", "m6i.large"].contains(&t.as_str()),
            "as-api runs {t}"
        );
    }
    assert_eq!(env.group_state("as-legacy").await, legacy, "invariant 4");

    // AND one reaper pass leaves nothing of ours outside a group (5)
    let pass = reap(&aws, &config, CycleOptions::default()).await.expect("reap");
    assert_eq!(pass.count_done(|k| matches!(k, ActionKind::Terminate { .. })), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_without_apply_changes_nothing_and_apply_twice_changes_nothing_the_second_time() {
    // GIVEN a group tagged AutoSpotting's way, one with a malformed alias, and one that already
    // sets a spotswap tag of its own
    let env = Env::new().await;
    env.group(&autospotting_group(
        "mig-web",
        4,
        &[
            (autospotting::MIN_ON_DEMAND_NUMBER, "1"),
            (autospotting::MIN_ON_DEMAND_PERCENTAGE, "12.5"),
            (autospotting::DISALLOWED_INSTANCE_TYPES, "t2.* t3.*"),
            ("autospotting_cron_schedule", "9-18 1-5"),
            ("autospotting_cron_timezone", "Europe/Dublin"),
        ],
    ))
    .await;
    env.group(&autospotting_group(
        "mig-bad",
        1,
        &[(autospotting::MIN_ON_DEMAND_PERCENTAGE, "150")],
    ))
    .await;
    env.group(
        &autospotting_group("mig-own", 2, &[(autospotting::MIN_ON_DEMAND_NUMBER, "1")])
            .tag("spotswap:on-demand-base", "2"),
    )
    .await;
    let before = (
        env.group_states(&["mig-web", "mig-bad", "mig-own"]).await,
        env.live_instances().await,
    );

    // WHEN `spotswap migrate --from autospotting --output json` runs (no --apply)
    let out = std::process::Command::new(workspace_bin("spotswap"))
        .args([
            "migrate",
            "--from",
            "autospotting",
            "--output",
            "json",
            "--region",
            env.region(),
        ])
        .env("AWS_ENDPOINT_URL", &env.endpoint)
        .env("SPOTSWAP_PRICE_FILE", sample_price_file())
        .output()
        .expect("run spotswap");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON output");

    // THEN it makes zero mutating calls and changes nothing
    assert_eq!(v["mutating_calls"], 0, "{v}");
    for op in v["api_calls"].as_object().unwrap().keys() {
        let name = op.rsplit(':').next().unwrap();
        assert!(name.starts_with("Describe") || name.starts_with("Get"), "{op}");
    }
    assert_eq!(
        (
            env.group_states(&["mig-web", "mig-bad", "mig-own"]).await,
            env.live_instances().await
        ),
        before
    );
    // AND it shows the configuration, the spotswap tags, both floors and the differences
    let groups = v["groups"].as_array().unwrap();
    let web = groups.iter().find(|g| g["group"] == "mig-web").unwrap();
    assert_eq!(web["spotswap"]["spotswap:on-demand-base"], "1");
    assert_eq!(web["spotswap"]["spotswap:on-demand-percent"], "13");
    assert_eq!(web["spotswap"]["spotswap:denied-types"], "t2.*,t3.*");
    assert_eq!(web["spotswap"]["spotswap:enabled"], "true");
    assert_eq!(web["floor_autospotting"], 1, "max(1, round(0.5)) = 1");
    assert_eq!(web["floor_spotswap"], 2, "1 + ceil(13% of 3) = 2");
    assert!(!web["differences"].as_array().unwrap().is_empty());
    // AutoSpotting's hours 9-18 are inside from 09:00 to 18:00 (an hour counts when the next
    // one matches too), in its zone
    assert_eq!(
        web["spotswap"]["spotswap:schedule"],
        "Mon-Fri 09:00-18:00 Europe/Dublin"
    );
    assert!(web["ignored"].as_array().unwrap().is_empty(), "{web:#}");
    let bad = groups.iter().find(|g| g["group"] == "mig-bad").unwrap();
    assert!(bad["error"]
        .as_str()
        .unwrap()
        .contains(autospotting::MIN_ON_DEMAND_PERCENTAGE));

    // WHEN --apply runs, twice
    let aws = env.aws();
    let config = Config {
        price_file: Some(sample_price_file()),
        ..Config::default()
    };
    let apply = MigrateOptions {
        apply: true,
        ..MigrateOptions::default()
    };
    let first = migrate(&aws, &config, &apply).await.expect("migrate");
    // THEN the first writes the spotswap tags with CreateOrUpdateTags only, and nothing for
    // the malformed group or over the owner's own tag
    let ops: Vec<&String> = first
        .api_calls
        .keys()
        .filter(|op| spotswap_core::ops::is_mutating(op))
        .collect();
    assert_eq!(ops, ["autoscaling:CreateOrUpdateTags"]);
    let web = env.group_state("mig-web").await;
    assert_eq!(web.tags["spotswap:enabled"], "true");
    assert_eq!(web.tags["spotswap:on-demand-percent"], "13");
    assert_eq!(web.tags["spotswap:schedule"], "Mon-Fri 09:00-18:00 Europe/Dublin");
    assert_eq!(env.group_state("mig-bad").await.tags, before.0[1].tags);
    let own = env.group_state("mig-own").await;
    assert_eq!(
        own.tags["spotswap:on-demand-base"], "2",
        "spotswap's own tag wins"
    );
    assert!(first
        .groups
        .iter()
        .find(|g| g.group == "mig-own")
        .unwrap()
        .kept
        .contains_key("spotswap:on-demand-base"));
    // AND the second changes nothing
    let aws = env.aws();
    let after_first = env.group_states(&["mig-web", "mig-bad", "mig-own"]).await;
    let second = migrate(&aws, &config, &apply).await.expect("migrate");
    assert_eq!(second.mutating_calls, 0, "{:?}", second.api_calls);
    assert!(second.groups.iter().all(|g| g.changes.is_empty()));
    assert_eq!(
        env.group_states(&["mig-web", "mig-bad", "mig-own"]).await,
        after_first
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autospotting_orphans_are_listed_and_reaped_only_with_the_flag_and_look_alikes_never() {
    // GIVEN a group with an AutoSpotting-launched member, two AutoSpotting orphans (one
    // stopped), and look-alikes: a different value, a different key, only launched-for-asg
    let env = Env::new().await;
    env.group(&autospotting_group("orph-web", 1, &[])).await;
    let member = env.group_state("orph-web").await.in_service()[0].clone();
    env.ec2
        .create_tags()
        .resources(&member)
        .tags(Tag::builder().key(LAUNCHED_BY).value("true").build())
        .send()
        .await
        .unwrap();
    let orphan = plant(&env, &[(LAUNCHED_BY, "true"), (LAUNCHED_FOR, "orph-web")]).await;
    let stopped = plant(&env, &[(LAUNCHED_BY, "true")]).await;
    env.ec2
        .stop_instances()
        .instance_ids(&stopped)
        .send()
        .await
        .unwrap();
    let lookalikes = [
        plant(&env, &[(LAUNCHED_BY, "True")]).await,
        plant(&env, &[("launched-by-autospotting-x", "true")]).await,
        plant(&env, &[(LAUNCHED_FOR, "orph-web")]).await,
    ];
    let config = Config {
        price_file: Some(sample_price_file()),
        ..Config::default()
    };
    // Two hours on: every planted instance is past the threshold.
    let later = Some(now().plus_minutes(120));

    // WHEN migrate runs without the flag, then with it but without --apply
    for opts in [
        MigrateOptions {
            apply: true,
            now: later,
            ..MigrateOptions::default()
        },
        MigrateOptions {
            reap_orphans: true,
            now: later,
            ..MigrateOptions::default()
        },
    ] {
        let aws = env.aws();
        let r = migrate(&aws, &config, &opts).await.expect("migrate");
        // THEN exactly the two orphans are listed, with age, type and on-demand cost
        let mut ids: Vec<&str> = r.orphans.iter().map(|o| o.instance.as_str()).collect();
        ids.sort_unstable();
        let mut want = vec![orphan.as_str(), stopped.as_str()];
        want.sort_unstable();
        assert_eq!(ids, want);
        for o in &r.orphans {
            assert_eq!(o.instance_type, "m5.large");
            assert!(o.age_minutes >= 119, "{o:?}");
            assert!(o.on_demand_hourly.is_some_and(|p| p > 0.0), "{o:?}");
        }
        // AND nothing is terminated
        assert!(
            !r.api_calls.contains_key("ec2:TerminateInstances"),
            "{:?}",
            r.api_calls
        );
        let expected = if opts.reap_orphans {
            OrphanAction::WouldTerminate
        } else {
            OrphanAction::Listed
        };
        assert!(r.orphans.iter().all(|o| o.action == expected));
    }
    let live = env.live_instances().await;
    assert!(live.contains_key(&orphan) && live.contains_key(&stopped));

    // WHEN the flag and --apply are given, with a threshold the orphans are below
    let aws = env.aws();
    let young = MigrateOptions {
        apply: true,
        reap_orphans: true,
        orphan_min_minutes: 600,
        now: later,
    };
    let r = migrate(&aws, &config, &young).await.expect("migrate");
    assert!(r.orphans.iter().all(|o| o.action == OrphanAction::TooYoung));
    assert!(!r.api_calls.contains_key("ec2:TerminateInstances"));

    // WHEN they are past it
    let aws = env.aws();
    let reap = MigrateOptions {
        orphan_min_minutes: 60,
        ..young
    };
    let r = migrate(&aws, &config, &reap).await.expect("migrate");
    assert!(
        r.orphans.iter().all(|o| o.action == OrphanAction::Terminated),
        "{r:?}"
    );
    // THEN the orphans are gone, and the member and every look-alike still run
    let live = env.live_instances().await;
    for gone in [&orphan, &stopped] {
        assert!(
            live.get(gone)
                .is_none_or(|i| !["pending", "running", "stopping", "stopped"].contains(&i.state.as_str())),
            "orphan {gone} still alive"
        );
    }
    assert_eq!(live[&member].state, "running");
    for l in &lookalikes {
        assert_eq!(live[l].state, "running", "look-alike {l} touched");
    }
    assert!(env.group_state("orph-web").await.members.contains_key(&member));
    // AND spotswap's own reaper never takes AutoSpotting's instances for ours
    let pass = reap_pass(&env, &config).await;
    assert_eq!(pass, 0);
}

async fn reap_pass(env: &Env, config: &Config) -> usize {
    let aws = env.aws();
    let opts = CycleOptions {
        now: Some(now().plus_minutes(600)),
        ..CycleOptions::default()
    };
    let r = reap(&aws, config, opts).await.expect("reap");
    r.count_done(|k| matches!(k, ActionKind::Terminate { .. }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_with_recent_autospotting_activity_is_left_alone() {
    // GIVEN a group tagged AutoSpotting's way, for which AutoSpotting launched an instance just
    // now (not yet attached)
    let env = Env::new().await;
    env.group(&autospotting_group("busy-web", 2, &[])).await;
    let theirs = plant(&env, &[(LAUNCHED_BY, "true"), (LAUNCHED_FOR, "busy-web")]).await;
    let before = (env.group_state("busy-web").await, env.live_instances().await);

    // WHEN a compatibility-mode cycle runs
    let aws = env.aws();
    let report = rebalance(&aws, &compat_config(), CycleOptions::default())
        .await
        .expect("cycle");
    // THEN the group is skipped with AutoSpottingActive and nothing changes
    let skip = report
        .skipped
        .iter()
        .find(|s| s.group == "busy-web")
        .expect("skipped");
    assert_eq!(skip.reason, Reason::AutoSpottingActive);
    assert_eq!(report.mutating_calls(), 0, "{:?}", report.api_calls);
    assert_eq!(
        (env.group_state("busy-web").await, env.live_instances().await),
        before
    );

    // WHEN AutoSpotting has been quiet past the documented period
    let aws = env.aws();
    let opts = CycleOptions {
        now: Some(now().plus_minutes(i64::from(autospotting::QUIET_MINUTES) + 1)),
        ..CycleOptions::default()
    };
    let report = rebalance(&aws, &compat_config(), opts).await.expect("cycle");
    // THEN spotswap swaps, and AutoSpotting's instance is not touched
    assert!(report.skipped.iter().all(|s| s.group != "busy-web"));
    assert!(report
        .actions
        .iter()
        .any(|a| a.group == "busy-web" && matches!(a.kind, ActionKind::Launch(_))));
    assert_eq!(env.live_instances().await[&theirs].state, "running");
}
