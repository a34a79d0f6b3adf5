//! Crash safety and idempotency of the swap, against moto.
//!
//! A whole swap on a group at desired == max makes exactly eight mutating calls, over four
//! cycles:
//!
//! | # | call                                              | cycle | stops after it: test          |
//! |---|---------------------------------------------------|-------|-------------------------------|
//! | 0 | (none)                                            | 1     | `crash_before_the_launch`     |
//! | 1 | CreateFleet (Launch)                              | 1     | `crash_after_the_launch`      |
//! | 2 | CreateOrUpdateTags `max-raised-from`              | 2     | `crash_after_the_max_record`  |
//! | 3 | UpdateAutoScalingGroup MaxSize+1                  | 2     | `crash_after_the_max_raise`   |
//! | 4 | CreateTags `replaced-by` + `attached-at`, on both | 2     | `crash_after_the_swap_tags`   |
//! | 5 | AttachInstances                                   | 2     | `crash_after_the_attach`      |
//! | 6 | TerminateInstanceInAutoScalingGroup               | 3     | `crash_after_the_retire`      |
//! | 7 | UpdateAutoScalingGroup MaxSize restored           | 4     | `crash_after_the_max_restore` |
//! | 8 | DeleteTags `max-raised-from`                      | 4     | `no_crash_the_swap_completes` |
//!
//! Each test stops the rebalancer after call k with a [`MutationBudget`] shared by the cycles
//! of the "crashed process", checks that the crash happened exactly there, then recovers two
//! ways, each with fresh processes (a fresh `env.aws()`): fresh cycles then a reaper pass, and
//! a reaper pass first (clock past the orphan age) then cycles and a second pass. After every
//! cycle and pass the group keeps its desired capacity InService; at the end the swap is
//! complete, MaxSize is the original with no record, and nothing of ours runs outside a group.

use std::collections::{BTreeMap, BTreeSet};

use spotswap_aws::snapshot;
use spotswap_aws::workflow::now;
use spotswap_aws::{reap, rebalance, Config, CycleOptions, CycleReport, Executor, MutationBudget, Outcome};
use spotswap_core::{plan_cycle, tags, ActionKind, Reason};
use spotswap_tests::fleet::{sample_price_file, Env, GroupSpec};

pub(super) fn config() -> Config {
    Config {
        price_file: Some(sample_price_file()),
        // Publishing is proven in events_out.rs; here it would only add calls to the counts.
        event_bus: String::new(),
        ..Config::default()
    }
}

/// One rebalancer cycle in a fresh process. Its decisions are printed: a failing test shows
/// them.
pub(super) async fn cycle(env: &Env, opts: CycleOptions) -> CycleReport {
    let r = rebalance(&env.aws(), &config(), opts).await.expect("cycle runs");
    print_decisions("cycle", &r);
    r
}

fn print_decisions(what: &str, r: &CycleReport) {
    let d: Vec<String> = r
        .actions
        .iter()
        .map(|a| format!("{} {} {:?} {:?}", a.kind.name(), a.reason, a.instance, a.outcome))
        .collect();
    println!("{what}: {d:?}");
}

/// One reaper pass in a fresh process, with the clock past the orphan age.
pub(super) async fn reaper_pass(env: &Env) -> CycleReport {
    let opts = CycleOptions {
        now: Some(now().plus_minutes(30)),
        ..CycleOptions::default()
    };
    let r = reap(&env.aws(), &config(), opts).await.expect("reaper pass runs");
    print_decisions("reaper", &r);
    r
}

fn crashed(report: &CycleReport) -> bool {
    report
        .actions
        .iter()
        .any(|a| a.outcome == Outcome::NotAttempted(Reason::MutationBudgetExhausted))
}

fn count(report: &CycleReport, op: &str) -> u64 {
    report.api_calls.get(op).copied().unwrap_or(0)
}

/// Our launches alive: id → (member of `group`, has `spotswap:attached-at`).
async fn our_launches(env: &Env, group: &str) -> BTreeMap<String, (bool, bool)> {
    ours_with(env, group, |t| t.contains_key(tags::ATTACHED_AT)).await
}

/// Our launches alive: id → (member of `group`, `seen` of its tags).
pub(super) async fn ours_with<T>(
    env: &Env,
    group: &str,
    seen: impl Fn(&BTreeMap<String, String>) -> T,
) -> BTreeMap<String, (bool, T)> {
    let members = env.group_state(group).await.members;
    env.live_instances()
        .await
        .into_iter()
        .filter(|(_, i)| i.tags.contains_key(tags::GROUP))
        .map(|(id, i)| {
            let member = members.contains_key(&id);
            (id, (member, seen(&i.tags)))
        })
        .collect()
}

/// DESIGN.md §8.1: never below the desired capacity the swap began with.
pub(super) async fn assert_capacity(env: &Env, group: &str, desired: usize, when: &str) {
    let g = env.group_state(group).await;
    assert!(
        g.in_service().len() >= desired && g.desired as usize >= desired,
        "{when}: {group} has {} InService (desired {}), began with {desired}",
        g.in_service().len(),
        g.desired
    );
}

/// Fresh cycles until one makes no mutating call.
pub(super) async fn converge(env: &Env, group: &str, desired: usize) -> Vec<CycleReport> {
    let mut reports = Vec::new();
    for n in 0..10 {
        let r = cycle(env, CycleOptions::default()).await;
        assert_capacity(env, group, desired, &format!("recovery cycle {n}")).await;
        let quiet = r.mutating_calls() == 0;
        reports.push(r);
        if quiet {
            return reports;
        }
    }
    panic!("{group} did not converge in 10 cycles");
}

/// The end of every recovery: the swap completed, the original MaxSize without a record, and
/// nothing of ours outside the group.
async fn assert_settled(env: &Env, group: &str, original: &str, max: i32) {
    let g = env.group_state(group).await;
    assert_eq!(g.max, max, "MaxSize is the original");
    assert!(
        !g.tags.contains_key(tags::MAX_RAISED_FROM),
        "no max-raised-from left"
    );
    let launches = our_launches(env, group).await;
    assert!(
        launches.values().all(|(member, _)| *member),
        "ours outside the group: {launches:?}"
    );
    // completed: the original is gone, and one spot launch of ours serves in its place
    assert!(
        !g.members.contains_key(original),
        "the original is still in the group"
    );
    assert_eq!(env.mix(group).await, (0, 1));
    assert_eq!(launches.len(), 1);
}

/// Run the swap of a desired == max == 1 group, crashing after mutating call `k`; check the
/// crash point, then recover both ways.
async fn crash_after(k: u64) {
    for reaper_first in [false, true] {
        let env = Env::new().await;
        let group = env
            .group(&GroupSpec::managed(&format!("crash-{k}-{reaper_first}"), 1))
            .await;
        let original = env.group_state(&group).await.in_service()[0].clone();

        // the crashed process: cycles sharing one budget of k mutating calls
        let budget = MutationBudget::new(k);
        let mut stopped = false;
        for n in 0..5 {
            let r = cycle(
                &env,
                CycleOptions {
                    budget: Some(budget.clone()),
                    ..CycleOptions::default()
                },
            )
            .await;
            assert_capacity(&env, &group, 1, &format!("crashing cycle {n}")).await;
            if crashed(&r) {
                stopped = true;
                break;
            }
        }
        assert_eq!(stopped, k < 8, "a swap makes 8 mutating calls");
        assert_crash_point(&env, &group, &original, k).await;

        if reaper_first {
            let pass = reaper_pass(&env).await;
            assert!(
                pass.actions
                    .iter()
                    .all(|a| !matches!(a.outcome, Outcome::Failed(_))),
                "{pass:?}"
            );
            assert_capacity(&env, &group, 1, "reaper pass").await;
            let launches = our_launches(&env, &group).await;
            assert!(
                launches.values().all(|(m, _)| *m),
                "reaper left ours outside: {launches:?}"
            );
            let g = env.group_state(&group).await;
            if (1..=4).contains(&k) {
                // the unattached launch is past the orphan age: the swap is cleanly abandoned
                assert!(launches.is_empty());
                assert!(g.in_service().contains(&original), "original serves on");
                assert_eq!(g.max, 1);
                assert!(!g.tags.contains_key(tags::MAX_RAISED_FROM));
            }
            if k >= 6 {
                // the retire happened: nothing in flight, so the reaper restores MaxSize
                assert_eq!(g.max, 1);
                assert!(!g.tags.contains_key(tags::MAX_RAISED_FROM));
            }
        }
        converge(&env, &group, 1).await;
        let pass = reaper_pass(&env).await;
        assert_eq!(pass.mutating_calls(), 0, "nothing left for the reaper: {pass:?}");
        assert_settled(&env, &group, &original, 1).await;
    }
}

/// The state right after call k: proves the stop happened exactly there.
async fn assert_crash_point(env: &Env, group: &str, original: &str, k: u64) {
    let g = env.group_state(group).await;
    let launches: Vec<(bool, bool)> = our_launches(env, group).await.into_values().collect();
    let record = g.tags.get(tags::MAX_RAISED_FROM).map(String::as_str);
    let original_in = g.members.contains_key(original);
    let expected = match k {
        0 => (vec![], None, 1, true),
        1 => (vec![(false, false)], None, 1, true),
        2 => (vec![(false, false)], Some("1"), 1, true),
        3 => (vec![(false, false)], Some("1"), 2, true),
        // the swap's tags, on both instances, before the attach
        4 => (vec![(false, true)], Some("1"), 2, true),
        5 => (vec![(true, true)], Some("1"), 2, true),
        6 => (vec![(true, true)], Some("1"), 2, false),
        7 => (vec![(true, true)], Some("1"), 1, false),
        _ => (vec![(true, true)], None, 1, false),
    };
    assert_eq!(
        (launches, record, g.max, original_in),
        expected,
        "state after mutating call {k}: (our launches (member, attached-at), max-raised-from, MaxSize, original in group)"
    );
    // From call 4 on, the original names its replacement (what an interruption warning for it
    // reads), as long as it lives
    if original_in {
        let named = env
            .live_instances()
            .await
            .get(original)
            .is_some_and(|i| i.tags.contains_key(tags::REPLACED_BY));
        assert_eq!(
            named,
            k >= 4,
            "spotswap:replaced-by on the original after call {k}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_before_the_launch() {
    crash_after(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_after_the_launch() {
    crash_after(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_after_the_max_record() {
    crash_after(2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_after_the_max_raise() {
    crash_after(3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_after_the_swap_tags() {
    crash_after(4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_after_the_attach() {
    crash_after(5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_after_the_retire() {
    crash_after(6).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_after_the_max_restore() {
    crash_after(7).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_crash_the_swap_completes() {
    crash_after(8).await;
}

// ---------------------------------------------------------------------------------------------
// idempotency: the same cycle 3×, and two cycles at once
// ---------------------------------------------------------------------------------------------

/// What a converged fleet looks like, without instance ids.
#[derive(Debug, PartialEq)]
struct EndState {
    desired: i32,
    max: i32,
    /// (on-demand, spot) InService.
    mix: (usize, usize),
    /// Our tags left on the group (other than `spotswap:enabled`).
    records: BTreeSet<String>,
    /// Our instances alive, and how many of them are outside the group.
    ours: usize,
    ours_outside: usize,
}

async fn end_state(env: &Env, group: &str) -> EndState {
    let g = env.group_state(group).await;
    let launches = our_launches(env, group).await;
    EndState {
        desired: g.desired,
        max: g.max,
        mix: env.mix(group).await,
        records: g
            .tags
            .keys()
            .filter(|k| k.starts_with("spotswap:") && *k != tags::ENABLED)
            .cloned()
            .collect(),
        ours: launches.len(),
        ours_outside: launches.values().filter(|(m, _)| !m).count(),
    }
}

/// A group at desired == max == 2: two swaps, each raising MaxSize.
fn idem_group(name: &str) -> GroupSpec {
    GroupSpec::managed(name, 2)
}

/// The reference: single cycles until quiet. (end state, CreateFleet calls)
async fn single_run(name: &str) -> (EndState, u64) {
    let env = Env::new().await;
    let group = env.group(&idem_group(name)).await;
    let reports = converge(&env, &group, 2).await;
    let launches = reports.iter().map(|r| count(r, "ec2:CreateFleet")).sum();
    (end_state(&env, &group).await, launches)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_cycle_three_times_ends_as_one_run() {
    // GIVEN the reference end state of a fleet converged one cycle at a time
    let (reference, reference_launches) = single_run("idem3-ref").await;
    assert_eq!(reference.mix, (0, 2));
    assert_eq!(reference_launches, 2);

    // AND the same fleet in another region
    let env = Env::new().await;
    let group = env.group(&idem_group("idem3")).await;
    // WHEN every cycle is delivered three times in a row, at the same instant
    let mut launches = 0;
    for round in 0..10 {
        let at = now();
        let mut quiet = true;
        for _ in 0..3 {
            let r = cycle(
                &env,
                CycleOptions {
                    now: Some(at),
                    ..CycleOptions::default()
                },
            )
            .await;
            assert_capacity(&env, &group, 2, &format!("round {round}")).await;
            launches += count(&r, "ec2:CreateFleet");
            quiet &= r.mutating_calls() == 0;
        }
        if quiet {
            break;
        }
    }
    // THEN the end state is the single run's, with no extra launch at all
    assert_eq!(end_state(&env, &group).await, reference);
    assert_eq!(launches, reference_launches, "no extra CreateFleet");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_launch_replayed_three_times_launches_once() {
    // GIVEN one plan with a Launch, made from one snapshot
    let env = Env::new().await;
    let group = env.group(&GroupSpec::managed("replay", 1)).await;
    let aws = env.aws();
    let config = config();
    let at = now();
    let snap = snapshot::take(&aws, &config.settings, config.price_file.as_deref(), at)
        .await
        .expect("snapshot");
    let plan = plan_cycle(&snap, &config.settings)
        .into_iter()
        .find(|p| p.group == group)
        .expect("plan for the group");
    let idx = plan
        .actions
        .iter()
        .position(|a| matches!(a.kind, ActionKind::Launch(_)))
        .expect("a launch is planned");
    // WHEN the executor applies that same plan three times (a retried or redelivered cycle that
    // did not see its own launch; moto, unlike AWS, ignores the repeated ClientToken)
    let executor = Executor::new(&aws, at, false, None);
    let mut outcomes = Vec::new();
    for _ in 0..3 {
        outcomes.push(executor.run_group(&plan.actions).await.remove(idx));
    }
    // THEN one instance is launched, and the repeats find it by its spotswap:replaces tag
    let Outcome::Done(Some(id)) = &outcomes[0] else {
        panic!("first launch: {:?}", outcomes[0]);
    };
    assert_eq!(outcomes[1], Outcome::AlreadyDone(id.clone()));
    assert_eq!(outcomes[2], Outcome::AlreadyDone(id.clone()));
    assert_eq!(aws.api_calls().get("ec2:CreateFleet"), Some(&1));
    assert_eq!(our_launches(&env, &group).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_cycles_at_once_end_as_one_run() {
    // GIVEN the reference end state of a fleet converged one cycle at a time
    let (reference, reference_launches) = single_run("idemc-ref").await;

    // AND the same fleet in another region
    let env = Env::new().await;
    let group = env.group(&idem_group("idemc")).await;
    // WHEN every cycle runs twice at once, in two processes, at the same instant
    let mut launches = 0;
    let mut duplicates_ended = BTreeSet::new();
    for round in 0..12 {
        let at = now();
        let opts = CycleOptions {
            now: Some(at),
            ..CycleOptions::default()
        };
        let (a, b) = tokio::join!(cycle(&env, opts.clone()), cycle(&env, opts));
        assert_capacity(&env, &group, 2, &format!("concurrent round {round}")).await;
        for r in [&a, &b] {
            launches += count(r, "ec2:CreateFleet");
            // both processes may end the same duplicate: count instances, not actions
            duplicates_ended.extend(
                r.actions
                    .iter()
                    .filter(|x| x.reason == Reason::DuplicateLaunch && x.outcome == Outcome::Done(None))
                    .filter_map(|x| x.instance.clone()),
            );
        }
        if a.mutating_calls() + b.mutating_calls() == 0 {
            break;
        }
    }
    // THEN the end state is the single run's: every launch beyond one per swap (moto ignores
    // the shared ClientToken, so both processes may launch) was ended by the stage machine
    assert_eq!(end_state(&env, &group).await, reference);
    assert!(launches >= reference_launches);
    assert_eq!(
        launches - reference_launches,
        duplicates_ended.len() as u64,
        "every extra launch was ended as a DuplicateLaunch"
    );
    // AND a reaper pass past the orphan age finds nothing
    assert_eq!(reaper_pass(&env).await.mutating_calls(), 0);
}
