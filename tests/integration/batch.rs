//! Batched swaps against moto, through the proxy (issue 22): a group's launches that send the
//! same request go out as one CreateFleet, its attaches as one AttachInstances, and every
//! invariant still holds at every call boundary, under repeated and concurrent delivery, and
//! when a fleet launches fewer instances than it asked for.

use std::collections::{BTreeMap, BTreeSet};

use spotswap_aws::workflow::now;
use spotswap_aws::{CycleOptions, CycleReport, MutationBudget, Outcome};
use spotswap_core::{tags, Reason};
use spotswap_tests::fleet::{Env, GroupSpec};
use spotswap_tests::proxy::Proxy;

use super::crash::{cycle, reaper_pass};

const DESIRED: usize = 3;

/// Three on-demand m5.large in one subnet, all due at once, desired == max: one batch of three.
fn batch_group(name: &str) -> GroupSpec {
    let mut spec = GroupSpec::managed(name, DESIRED as i32)
        .tag(tags::ON_DEMAND_BASE, "0")
        .tag(tags::REPLACE_PER_CYCLE, "3")
        .tag(tags::MAX_POOL_PERCENT, "100");
    spec.subnets = 1;
    spec
}

fn calls(reports: &[CycleReport], op: &str) -> u64 {
    reports
        .iter()
        .map(|r| r.api_calls.get(op).copied().unwrap_or(0))
        .sum()
}

async fn assert_capacity(env: &Env, group: &str, when: &str) {
    super::crash::assert_capacity(env, group, DESIRED, when).await;
}

async fn converge(env: &Env, group: &str) -> Vec<CycleReport> {
    super::crash::converge(env, group, DESIRED).await
}

/// Our instances alive: id → (a member of `group`, its `spotswap:replaces` as EC2 shows it).
async fn ours(env: &Env, group: &str) -> BTreeMap<String, (bool, Option<String>)> {
    super::crash::ours_with(env, group, |t| t.get(tags::REPLACES).cloned()).await
}

/// The end of every run: every original replaced exactly once by a spot launch of ours serving
/// in the group, MaxSize the original without a record, nothing of ours outside the group.
async fn assert_settled(env: &Env, group: &str, originals: &BTreeSet<String>) {
    let g = env.group_state(group).await;
    assert_eq!(g.max, DESIRED as i32, "MaxSize is the original");
    assert!(
        !g.tags.contains_key(tags::MAX_RAISED_FROM),
        "no max-raised-from left"
    );
    assert_eq!(env.mix(group).await, (0, DESIRED), "all spot");
    let ours = ours(env, group).await;
    assert!(
        ours.values().all(|(member, _)| *member),
        "ours outside the group: {ours:?}"
    );
    assert_eq!(ours.len(), DESIRED, "one launch per original: {ours:?}");
    // each launch names the original it replaced (anchored by the attach), each a different one
    let replaced: BTreeSet<String> = ours.values().filter_map(|(_, r)| r.clone()).collect();
    assert_eq!(
        &replaced, originals,
        "the launches replaced exactly the originals"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_swaps_through_one_fleet_and_one_attach() {
    // GIVEN three on-demand members due for a swap, sending the same launch request
    let proxy = Proxy::from_env().await.expect("proxy");
    let env = Env::at(&proxy.url()).await;
    let group = env.group(&batch_group("batch-one")).await;
    let originals: BTreeSet<String> = env.group_state(&group).await.in_service().into_iter().collect();
    // WHEN the rebalancer runs until quiet
    let reports = converge(&env, &group).await;
    // THEN one CreateFleet launched all three, tagged with the batch, not per original
    assert_eq!(calls(&reports, "ec2:CreateFleet"), 1);
    let first = &reports[0];
    let launched: Vec<&str> = first
        .actions
        .iter()
        .filter_map(|a| match &a.outcome {
            Outcome::Done(Some(id)) => Some(id.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(launched.len(), DESIRED, "{:?}", first.actions);
    // AND one AttachInstances attached them, after one CreateTags per pair
    assert_eq!(calls(&reports, "autoscaling:AttachInstances"), 1);
    assert_eq!(calls(&reports, "ec2:CreateTags"), DESIRED as u64);
    assert_settled(&env, &group, &originals).await;
    // AND the launches carry the batch list naming the three originals
    let live = env.live_instances().await;
    for id in &launched {
        let list = &live[*id].tags[tags::BATCH];
        let named: BTreeSet<String> = list.split(' ').map(str::to_string).collect();
        assert_eq!(named, originals);
    }
    // AND a swap's own calls are under 3 (one fleet and one attach shared by three, then a
    // CreateTags and a retire each), and the group's MaxSize bookkeeping (record, raise,
    // restore, clear) is four calls for the three together
    let own: u64 = ["ec2:CreateFleet", "ec2:CreateTags", "autoscaling:AttachInstances"]
        .iter()
        .chain(&["autoscaling:TerminateInstanceInAutoScalingGroup"])
        .map(|op| calls(&reports, op))
        .sum();
    assert!(
        own < 3 * DESIRED as u64,
        "{own} calls of the swaps' own for {DESIRED} swaps"
    );
    let mutating: u64 = reports.iter().map(CycleReport::mutating_calls).sum();
    assert!(
        mutating <= own + 4,
        "{mutating} mutating calls, {own} of the swaps' own"
    );
}

/// The reference run's mutating calls, counted (not assumed).
async fn reference_calls() -> u64 {
    let proxy = Proxy::from_env().await.expect("proxy");
    let env = Env::at(&proxy.url()).await;
    let group = env.group(&batch_group("batch-ref")).await;
    converge(&env, &group)
        .await
        .iter()
        .map(CycleReport::mutating_calls)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_any_mutating_call_of_a_batch_recovers() {
    let total = reference_calls().await;
    assert!(total >= 8, "a batch of three makes {total} mutating calls");
    for k in 0..total {
        // GIVEN a process that stops after mutating call k
        let proxy = Proxy::from_env().await.expect("proxy");
        let env = Env::at(&proxy.url()).await;
        let group = env.group(&batch_group(&format!("batch-crash-{k}"))).await;
        let originals: BTreeSet<String> = env.group_state(&group).await.in_service().into_iter().collect();
        let budget = MutationBudget::new(k);
        let mut stopped = false;
        for n in 0..6 {
            let opts = CycleOptions {
                budget: Some(budget.clone()),
                ..CycleOptions::default()
            };
            let r = cycle(&env, opts).await;
            assert_capacity(&env, &group, &format!("crashing cycle {n} (k = {k})")).await;
            if r.actions
                .iter()
                .any(|a| a.outcome == Outcome::NotAttempted(Reason::MutationBudgetExhausted))
            {
                stopped = true;
                break;
            }
        }
        assert!(stopped, "the process stopped after call {k}");
        // nothing is ever attached twice: each original has at most one launch in the group
        let attached: Vec<Option<String>> = ours(&env, &group)
            .await
            .into_values()
            .filter(|(member, _)| *member)
            .map(|(_, r)| r)
            .collect();
        let distinct: BTreeSet<&Option<String>> = attached.iter().collect();
        assert_eq!(distinct.len(), attached.len(), "after call {k}: {attached:?}");
        // WHEN fresh processes recover: every other crash point with a reaper pass first
        if k % 2 == 1 {
            reaper_pass(&env).await;
            assert_capacity(&env, &group, &format!("reaper pass (k = {k})")).await;
        }
        converge(&env, &group).await;
        let pass = reaper_pass(&env).await;
        assert_eq!(
            pass.mutating_calls(),
            0,
            "after call {k}: nothing left for the reaper"
        );
        // THEN the swaps completed, once each
        assert_settled(&env, &group, &originals).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_delivered_three_times_and_twice_at_once_launches_once() {
    for concurrent in [false, true] {
        // GIVEN the batch group
        let proxy = Proxy::from_env().await.expect("proxy");
        let env = Env::at(&proxy.url()).await;
        let group = env.group(&batch_group(&format!("batch-rep-{concurrent}"))).await;
        let originals: BTreeSet<String> = env.group_state(&group).await.in_service().into_iter().collect();
        // WHEN every cycle is delivered three times at one instant, or twice at once
        let mut reports = Vec::new();
        for round in 0..10 {
            let at = Some(now());
            let opts = || CycleOptions {
                now: at,
                ..CycleOptions::default()
            };
            let got = if concurrent {
                let (a, b) = tokio::join!(cycle(&env, opts()), cycle(&env, opts()));
                vec![a, b]
            } else {
                vec![
                    cycle(&env, opts()).await,
                    cycle(&env, opts()).await,
                    cycle(&env, opts()).await,
                ]
            };
            assert_capacity(&env, &group, &format!("round {round}")).await;
            let quiet = got.iter().all(|r| r.mutating_calls() == 0);
            reports.extend(got);
            if quiet {
                break;
            }
        }
        reaper_pass(&env).await;
        // THEN one fleet was launched when repeated; at once, a raced second fleet is ended
        let fleets = calls(&reports, "ec2:CreateFleet");
        if concurrent {
            assert!(fleets <= 2, "{fleets} fleets");
        } else {
            assert_eq!(fleets, 1, "no extra CreateFleet");
        }
        assert_settled(&env, &group, &originals).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_that_launches_fewer_than_asked_leaves_nothing_orphaned_or_attached_twice() {
    // GIVEN pools with capacity for only two instances per fleet
    let proxy = Proxy::from_env().await.expect("proxy");
    proxy.set_fleet_fill(Some(2));
    let env = Env::at(&proxy.url()).await;
    let group = env.group(&batch_group("batch-partial")).await;
    let originals: BTreeSet<String> = env.group_state(&group).await.in_service().into_iter().collect();
    // WHEN the first cycle asks for three
    let first = cycle(&env, CycleOptions::default()).await;
    // THEN two originals have a launch and the third falls back, its pool marked
    let done = first
        .actions
        .iter()
        .filter(|a| matches!(a.outcome, Outcome::Done(Some(_))))
        .count();
    let fell_back = first
        .actions
        .iter()
        .filter(|a| matches!(a.outcome, Outcome::Fallback(_)))
        .count();
    assert_eq!((done, fell_back), (2, 1), "{:?}", first.actions);
    let group_tags = env.group_state(&group).await.tags;
    assert!(
        group_tags.keys().any(|k| k.starts_with(tags::NO_CAPACITY_PREFIX)),
        "{group_tags:?}"
    );
    // AND only the two launches exist, both unpaired with the third original
    assert_eq!(ours(&env, &group).await.len(), 2);
    // WHEN the rebalancer runs on until quiet (the third goes to another pool, on its own)
    let mut reports = vec![first];
    reports.extend(converge(&env, &group).await);
    reaper_pass(&env).await;
    // THEN every original was replaced exactly once, and nothing of ours is left outside
    assert_settled(&env, &group, &originals).await;
    assert_eq!(calls(&reports, "ec2:CreateFleet"), 2);
}
