//! Stateful groups (issue 21) against moto: Elastic IPs (`spotswap:carry-eip=true`) and data
//! volumes (`spotswap:carry-volumes=<key>`) follow the replacement.
//!
//! Each invariant of the issue has its test:
//! - a carried volume is never attached to two instances, nor detached from a serving one:
//!   `a_swap_moves_the_eip_before_the_retire_and_the_volume_after_it` (checked after every
//!   cycle);
//! - after one reaper pass no carried volume is left detached while its group has an instance in
//!   its AZ that lacks it (attached, or `VolumeStranded`):
//!   `one_reaper_pass_attaches_free_volumes_or_says_they_are_stranded`;
//! - an Elastic IP is never left unassociated after a swap completes or a reaper pass: both of
//!   the above;
//! - duplicate or concurrent runs move nothing twice: `three_concurrent_passes_move_each_resource_once`;
//! - a crash between any two calls is safe: `a_crash_after_any_mutating_call_of_a_stateful_swap_recovers`.

use std::collections::BTreeMap;

use spotswap_aws::workflow::now;
use spotswap_aws::{reap, rebalance, Config, CycleOptions, CycleReport, MutationBudget, Outcome};
use spotswap_core::{tags, ActionKind, Reason};
use spotswap_tests::fleet::{sample_price_file, Env, GroupSpec};
use spotswap_tests::proxy::Proxy;

pub(crate) const KEY: &str = "data-volume";
pub(crate) const DEVICE: &str = "/dev/sdf";

fn config() -> Config {
    Config {
        price_file: Some(sample_price_file()),
        event_bus: String::new(),
        ..Config::default()
    }
}

fn print_decisions(what: &str, r: &CycleReport) {
    let d: Vec<String> = r
        .actions
        .iter()
        .map(|a| format!("{} {} {:?} {:?}", a.kind.name(), a.reason, a.instance, a.outcome))
        .collect();
    println!("{what}: {d:?}");
}

/// The AZ of each live instance.
async fn azs(env: &Env) -> BTreeMap<String, String> {
    // Every page: other tests share the region, and DescribeInstances pages.
    let mut out = BTreeMap::new();
    let mut pages = env.ec2.describe_instances().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.expect("describe instances");
        for i in page.reservations().iter().flat_map(|r| r.instances()) {
            if let (Some(id), Some(az)) = (i.instance_id(), i.placement().and_then(|p| p.availability_zone()))
            {
                out.insert(id.to_string(), az.to_string());
            }
        }
    }
    out
}

/// An Elastic IP, associated with `instance` when given; its allocation id.
pub(crate) async fn eip(env: &Env, instance: Option<&str>) -> String {
    let alloc = env
        .ec2
        .allocate_address()
        .domain(aws_sdk_ec2::types::DomainType::Vpc)
        .send()
        .await
        .expect("allocate address")
        .allocation_id()
        .expect("allocation id")
        .to_string();
    if let Some(i) = instance {
        env.ec2
            .associate_address()
            .allocation_id(&alloc)
            .instance_id(i)
            .send()
            .await
            .expect("associate");
    }
    alloc
}

/// A data volume of `group` in `az`, attached to `instance` at [`DEVICE`] when given.
pub(crate) async fn volume(
    env: &Env,
    group: &str,
    az: &str,
    instance: Option<&str>,
    extra: &[(&str, &str)],
) -> String {
    let mut tags_ = vec![aws_sdk_ec2::types::Tag::builder().key(KEY).value(group).build()];
    for (k, v) in extra {
        tags_.push(aws_sdk_ec2::types::Tag::builder().key(*k).value(*v).build());
    }
    let id = env
        .ec2
        .create_volume()
        .availability_zone(az)
        .size(1)
        .tag_specifications(
            aws_sdk_ec2::types::TagSpecification::builder()
                .resource_type(aws_sdk_ec2::types::ResourceType::Volume)
                .set_tags(Some(tags_))
                .build(),
        )
        .send()
        .await
        .expect("create volume")
        .volume_id()
        .expect("volume id")
        .to_string();
    if let Some(i) = instance {
        env.ec2
            .attach_volume()
            .volume_id(&id)
            .instance_id(i)
            .device(DEVICE)
            .send()
            .await
            .expect("attach volume");
    }
    id
}

/// Where an address is: its instance.
async fn address_on(env: &Env, alloc: &str) -> Option<String> {
    let resp = env
        .ec2
        .describe_addresses()
        .allocation_ids(alloc)
        .send()
        .await
        .expect("describe addresses");
    resp.addresses()
        .first()
        .and_then(|a| a.instance_id())
        .filter(|i| !i.is_empty())
        .map(str::to_string)
}

/// A volume's attachments that are not detached: (instance, device).
async fn volume_on(env: &Env, id: &str) -> Vec<(String, String)> {
    let resp = env
        .ec2
        .describe_volumes()
        .volume_ids(id)
        .send()
        .await
        .expect("describe volumes");
    resp.volumes()
        .iter()
        .flat_map(|v| v.attachments())
        .filter(|a| a.state() != Some(&aws_sdk_ec2::types::VolumeAttachmentState::Detached))
        .map(|a| {
            (
                a.instance_id().unwrap_or_default().to_string(),
                a.device().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// A stateful group of `desired` members in one subnet: (group, InService members, their AZ).
pub(crate) async fn carry_group(env: &Env, name: &str, desired: i32) -> (String, Vec<String>, String) {
    let group = env
        .group(
            &GroupSpec {
                subnets: 1,
                ..GroupSpec::managed(name, desired)
            }
            .tag(tags::CARRY_EIP, "true")
            .tag(tags::CARRY_VOLUMES, KEY),
        )
        .await;
    let members = env.group_state(&group).await.in_service();
    let az = azs(env).await[&members[0]].clone();
    (group, members, az)
}

/// Record `alloc` as the group's (`spotswap:carry-eip-group`), as spotswap would have.
pub(crate) async fn record_address(env: &Env, alloc: &str, group: &str) {
    env.ec2
        .create_tags()
        .resources(alloc)
        .tags(
            aws_sdk_ec2::types::Tag::builder()
                .key(tags::CARRY_EIP_GROUP)
                .value(group)
                .build(),
        )
        .send()
        .await
        .expect("tag address");
}

/// A stateful group of one on-demand instance holding an Elastic IP and a data volume:
/// (group, original, allocation id, volume id).
async fn stateful_group(env: &Env, name: &str) -> (String, String, String, String) {
    let (group, members, az) = carry_group(env, name, 1).await;
    let original = members[0].clone();
    let alloc = eip(env, Some(&original)).await;
    let vol = volume(env, &group, &az, Some(&original), &[]).await;
    (group, original, alloc, vol)
}

/// After every run: the volume is on at most one instance, and never left a serving member;
/// the address is on an instance of the group's (original or replacement).
async fn assert_carry_safe(env: &Env, group: &str, original: &str, alloc: &str, vol: &str, when: &str) {
    let g = env.group_state(group).await;
    let on = volume_on(env, vol).await;
    assert!(on.len() <= 1, "{when}: {vol} on {on:?}");
    let original_serves = g.members.get(original).is_some_and(|s| s == "InService");
    if original_serves {
        assert_eq!(
            on,
            vec![(original.to_string(), DEVICE.to_string())],
            "{when}: the volume left a serving original"
        );
    }
    let eip_on = address_on(env, alloc).await;
    assert!(eip_on.is_some(), "{when}: {alloc} is unassociated");
    if !g.members.contains_key(original) {
        // retired: the address was on the replacement before
        assert_ne!(
            eip_on.as_deref(),
            Some(original),
            "{when}: address left on the retired original"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swap_moves_the_eip_before_the_retire_and_the_volume_after_it() {
    // GIVEN a stateful group: one on-demand instance with an Elastic IP and a data volume
    let env = Env::new().await;
    let (group, original, alloc, vol) = stateful_group(&env, "stateful-swap").await;

    // WHEN cycles run until one makes no mutating call
    let mut reasons = Vec::new();
    let mut quiet = false;
    for n in 0..12 {
        let r = rebalance(&env.aws(), &config(), CycleOptions::default())
            .await
            .expect("cycle");
        print_decisions("cycle", &r);
        reasons.extend(r.actions.iter().map(|a| a.reason));
        assert_carry_safe(&env, &group, &original, &alloc, &vol, &format!("cycle {n}")).await;
        if r.mutating_calls() == 0 {
            quiet = true;
            break;
        }
    }
    assert!(quiet, "converged");

    // THEN the swap completed, and the address and the volume are on the replacement, the
    // volume at the same device
    let g = env.group_state(&group).await;
    assert!(!g.members.contains_key(&original), "the original is retired");
    assert_eq!(env.mix(&group).await, (0, 1));
    let replacement = g.in_service()[0].clone();
    assert_eq!(
        address_on(&env, &alloc).await.as_deref(),
        Some(replacement.as_str())
    );
    assert_eq!(
        volume_on(&env, &vol).await,
        vec![(replacement, DEVICE.to_string())]
    );
    // AND the retire waited for the address (the gate held at least once), each move once
    for r in [
        Reason::WaitingForCarry,
        Reason::AddressCarried,
        Reason::VolumeCarried,
    ] {
        assert!(reasons.contains(&r), "{r} missing from {reasons:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_reaper_pass_attaches_free_volumes_or_says_they_are_stranded() {
    // GIVEN a stateful group whose instance has neither its address nor its volume: a free
    // address recorded for the group, a free volume with its device recorded in the member's
    // AZ, one in another AZ, and one never seen attached (no device)
    let env = Env::new().await;
    let (group, members, az) = carry_group(&env, "stateful-reap", 1).await;
    let member = members[0].clone();
    let other_az = if az.ends_with('a') {
        az.replace_suffix('b')
    } else {
        az.replace_suffix('a')
    };
    let alloc = eip(&env, None).await;
    record_address(&env, &alloc, &group).await;
    let free = volume(&env, &group, &az, None, &[(tags::CARRY_DEVICE, DEVICE)]).await;
    let elsewhere = volume(&env, &group, &other_az, None, &[(tags::CARRY_DEVICE, DEVICE)]).await;
    let unrecorded = volume(&env, &group, &az, None, &[]).await;
    // AND a volume of someone else's, free, in the same AZ (not tagged for the group)
    let foreign = env
        .ec2
        .create_volume()
        .availability_zone(&az)
        .size(1)
        .send()
        .await
        .expect("volume")
        .volume_id()
        .unwrap()
        .to_string();

    // WHEN one reaper pass runs
    let pass = reap(&env.aws(), &config(), CycleOptions::default())
        .await
        .expect("pass");
    print_decisions("reaper", &pass);

    // THEN the free volume is on the member at its device, the address too
    assert_eq!(
        volume_on(&env, &free).await,
        vec![(member.clone(), DEVICE.to_string())]
    );
    assert_eq!(address_on(&env, &alloc).await.as_deref(), Some(member.as_str()));
    // AND the other two stay where they are, each reported VolumeStranded
    for v in [&elsewhere, &unrecorded] {
        assert!(volume_on(&env, v).await.is_empty());
        assert!(
            pass.actions.iter().any(|a| a.reason == Reason::VolumeStranded
                && matches!(&a.kind, ActionKind::Stranded { volume, .. } if volume == v)),
            "{v} not reported stranded"
        );
    }
    // AND the stranger's volume is untouched
    assert!(volume_on(&env, &foreign).await.is_empty());
    // AND a second pass moves nothing
    let again = reap(&env.aws(), &config(), CycleOptions::default())
        .await
        .expect("pass");
    print_decisions("reaper again", &again);
    assert_eq!(again.mutating_calls(), 0, "{:?}", again.api_calls);
}

trait AzSuffix {
    fn replace_suffix(&self, c: char) -> String;
}

impl AzSuffix for String {
    fn replace_suffix(&self, c: char) -> String {
        let mut s = self.clone();
        s.pop();
        s.push(c);
        s
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_concurrent_passes_move_each_resource_once() {
    // GIVEN a free recorded address and a free recorded volume of a stateful group, behind the
    // proxy, which refuses a second AttachVolume of one volume as AWS does (moto accepts it)
    let proxy = Proxy::from_env().await.expect("proxy");
    let env = Env::at(&proxy.url()).await;
    let (group, members, az) = carry_group(&env, "stateful-3x", 2).await;
    let alloc = eip(&env, None).await;
    record_address(&env, &alloc, &group).await;
    let vol = volume(&env, &group, &az, None, &[(tags::CARRY_DEVICE, DEVICE)]).await;

    // WHEN three reaper passes run at once (3× delivery), then three cycles at once
    let cfg = config();
    let (x, y, z) = (env.aws(), env.aws(), env.aws());
    let (a, b, c) = tokio::join!(
        reap(&x, &cfg, CycleOptions::default()),
        reap(&y, &cfg, CycleOptions::default()),
        reap(&z, &cfg, CycleOptions::default()),
    );
    let passes = [a.expect("pass"), b.expect("pass"), c.expect("pass")];
    let (x, y, z) = (env.aws(), env.aws(), env.aws());
    let (d, e, f) = tokio::join!(
        rebalance(&x, &cfg, CycleOptions::default()),
        rebalance(&y, &cfg, CycleOptions::default()),
        rebalance(&z, &cfg, CycleOptions::default()),
    );
    let cycles = [d.expect("cycle"), e.expect("cycle"), f.expect("cycle")];

    // THEN the volume is attached once, to one instance; the address is on one instance of
    // the group; and across all six runs at most one attach and one association were made
    let on = volume_on(&env, &vol).await;
    assert_eq!(on.len(), 1, "{on:?}");
    assert!(members.contains(&on[0].0));
    let eip_on = address_on(&env, &alloc).await.expect("associated");
    assert!(members.contains(&eip_on));
    // Every attach and association made went to where the resource is now: no resource went
    // to a second instance.
    let made: Vec<(&str, &str)> = passes
        .iter()
        .chain(cycles.iter())
        .flat_map(|r| r.actions.iter())
        .filter(|a| matches!(a.outcome, Outcome::Done(_)))
        .filter_map(|a| match &a.kind {
            ActionKind::AttachVolume { volume, instance, .. } => Some((volume.as_str(), instance.as_str())),
            ActionKind::AssociateAddress {
                allocation_id,
                instance,
                ..
            } => Some((allocation_id.as_str(), instance.as_str())),
            _ => None,
        })
        .collect();
    assert!(!made.is_empty(), "nothing was moved");
    // AND the volume was attached once: a run that lost the race got AWS's VolumeInUse and
    // took it for done
    assert_eq!(made.iter().filter(|(r, _)| *r == vol).count(), 1, "{made:?}");
    for (resource, to) in &made {
        let now_on = if *resource == vol {
            on[0].0.clone()
        } else {
            eip_on.clone()
        };
        assert_eq!(
            *to, now_on,
            "{resource} was moved to {to}, and is on {now_on}: {made:?}"
        );
    }
    for r in passes.iter().chain(cycles.iter()) {
        print_decisions("run", r);
        assert!(
            r.actions.iter().all(|a| !matches!(a.outcome, Outcome::Failed(_))),
            "a run failed: {:?}",
            r.actions
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_any_mutating_call_of_a_stateful_swap_recovers() {
    // GIVEN the number of mutating calls a whole stateful swap makes
    let total = {
        let env = Env::new().await;
        let _ = stateful_group(&env, "stateful-count").await;
        let mut calls = 0;
        for _ in 0..12 {
            let r = rebalance(&env.aws(), &config(), CycleOptions::default())
                .await
                .expect("cycle");
            if r.mutating_calls() == 0 {
                break;
            }
            calls += r.mutating_calls();
        }
        calls
    };
    assert!(
        total >= 9,
        "a stateful swap makes the swap's calls and the carry's: {total}"
    );
    // WHEN a process stops after mutating call k, for every k, and fresh ones recover
    for k in 0..total {
        let env = Env::new().await;
        let (group, original, alloc, vol) = stateful_group(&env, &format!("stateful-crash-{k}")).await;
        let budget = MutationBudget::new(k);
        for _ in 0..12 {
            let r = rebalance(
                &env.aws(),
                &config(),
                CycleOptions {
                    budget: Some(budget.clone()),
                    ..CycleOptions::default()
                },
            )
            .await
            .expect("cycle");
            assert_carry_safe(&env, &group, &original, &alloc, &vol, &format!("crash {k}")).await;
            if r.actions
                .iter()
                .any(|a| a.outcome == Outcome::NotAttempted(Reason::MutationBudgetExhausted))
            {
                break;
            }
        }
        // a reaper pass, then fresh cycles until quiet
        let opts = CycleOptions {
            now: Some(now().plus_minutes(30)),
            ..CycleOptions::default()
        };
        reap(&env.aws(), &config(), opts).await.expect("pass");
        assert_carry_safe(
            &env,
            &group,
            &original,
            &alloc,
            &vol,
            &format!("crash {k}, reaper"),
        )
        .await;
        let mut quiet = false;
        for n in 0..12 {
            let r = rebalance(&env.aws(), &config(), CycleOptions::default())
                .await
                .expect("cycle");
            assert_carry_safe(
                &env,
                &group,
                &original,
                &alloc,
                &vol,
                &format!("crash {k}, cycle {n}"),
            )
            .await;
            if r.mutating_calls() == 0 {
                quiet = true;
                break;
            }
        }
        assert!(quiet, "crash {k}: converged");
        // THEN the same end state as without a crash
        let g = env.group_state(&group).await;
        let serving = g.in_service();
        assert_eq!(serving.len(), 1, "crash {k}: {g:?}");
        assert_eq!(
            address_on(&env, &alloc).await.as_ref(),
            Some(&serving[0]),
            "crash {k}"
        );
        assert_eq!(
            volume_on(&env, &vol).await,
            vec![(serving[0].clone(), DEVICE.to_string())],
            "crash {k}"
        );
    }
}

/// `spotswap plan` on a stateful group (table and JSON): its carried resources and where they
/// are, before the swap and after it.
fn plan_cli(env: &Env, output: &str) -> String {
    let out = std::process::Command::new(spotswap_tests::lambda::workspace_bin("spotswap"))
        .args(["plan", "--output", output, "--region", env.region()])
        .env("AWS_ENDPOINT_URL", &env.endpoint)
        .env("SPOTSWAP_PRICE_FILE", sample_price_file())
        .output()
        .expect("run spotswap");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn carried_of<'a>(plan: &'a serde_json::Value, group: &str) -> &'a serde_json::Value {
    plan["groups"]
        .as_array()
        .and_then(|gs| gs.iter().find(|g| g["group"] == group))
        .map(|g| &g["carried"])
        .unwrap_or_else(|| panic!("{group} missing from {plan}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_shows_each_carried_resource_and_where_it_is() {
    // GIVEN a stateful group: one on-demand instance with an Elastic IP and a data volume
    let env = Env::new().await;
    let (group, original, alloc, vol) = stateful_group(&env, "stateful-plan").await;

    // WHEN `spotswap plan --output json` runs
    let plan: serde_json::Value = serde_json::from_str(&plan_cli(&env, "json")).expect("JSON");
    // THEN it shows the address and the volume on the original, at the volume's device, and
    // makes no mutating call
    let c = carried_of(&plan, &group);
    assert_eq!(c["addresses"][0]["allocation_id"], alloc.as_str(), "{c}");
    assert_eq!(c["addresses"][0]["instance"], original.as_str(), "{c}");
    assert_eq!(c["volumes"][0]["volume"], vol.as_str(), "{c}");
    assert_eq!(c["volumes"][0]["instance"], original.as_str(), "{c}");
    assert_eq!(c["volumes"][0]["device"], DEVICE, "{c}");
    assert_eq!(c["volumes"][0]["state"], "in-use", "{c}");
    let calls: BTreeMap<String, u64> = serde_json::from_value(plan["api_calls"].clone()).expect("api_calls");
    assert_eq!(
        spotswap_aws::report::mutating_calls(&calls),
        0,
        "plan changed nothing: {calls:?}"
    );
    // AND the table names them too
    let table = plan_cli(&env, "table");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("carried") && l.contains(&alloc) && l.contains(&original)),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("carried") && l.contains(&vol) && l.contains(DEVICE)),
        "{table}"
    );

    // AND once the swap has run, plan shows both on the replacement, and no move planned
    for _ in 0..12 {
        let r = rebalance(&env.aws(), &config(), CycleOptions::default())
            .await
            .expect("cycle");
        if r.mutating_calls() == 0 {
            break;
        }
    }
    let replacement = env.group_state(&group).await.in_service()[0].clone();
    assert_ne!(replacement, original);
    let plan: serde_json::Value = serde_json::from_str(&plan_cli(&env, "json")).expect("JSON");
    let c = carried_of(&plan, &group);
    for (kind, _) in [("addresses", &alloc), ("volumes", &vol)] {
        assert_eq!(c[kind][0]["instance"], replacement.as_str(), "{c}");
        assert_eq!(c[kind][0]["after"], replacement.as_str(), "{c}");
    }
}
