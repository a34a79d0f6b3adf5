//! A total spot wipe-out of a mixed-instances group, against moto behind the proxy that makes
//! the group's own spot launches fail as AWS's do (`proxy::wipeout`): the on-demand fallback
//! AWS lacks brings the group back to desired within two cycles, and after the market returns
//! and the cooldown, the owner's distribution comes back exactly and spot returns by safe swaps.

use std::collections::BTreeSet;

use spotswap_aws::{CycleReport, Outcome};
use spotswap_core::Reason;
use spotswap_tests::fleet::{Env, GroupSpec};

use crate::mixed::{cycle_at, done_with, mixed_env, mixed_group, on_demand_percent, POLICY_TYPES};
use crate::proxy::wipeout::{interrupt, wipe_out};

const NAME: &str = "mip-wipeout";
const DESIRED: usize = 3;

/// What one cycle must keep (DESIGN.md §8), given the group's InService before it:
/// 1 and 2: the cycle takes no InService instance away while the group is short, and never
///   leaves it below its desired capacity once it was there (an on-demand instance goes only
///   after its replacement is InService); desired never below the owner's;
/// 3: every member is of a type the policy allows;
/// 4: the unmanaged group is untouched; 7: no action failed.
async fn check(
    env: &Env,
    report: &CycleReport,
    before: usize,
    unmanaged: &spotswap_tests::fleet::GroupState,
) {
    for a in &report.actions {
        assert!(!matches!(a.outcome, Outcome::Failed(_)), "{a:?}");
    }
    let s = env.group_state(NAME).await;
    let now = s.in_service().len();
    // An attach adds to desired until its retire takes it off again.
    assert!(s.desired >= DESIRED as i32, "desired below the owner's: {s:?}");
    assert!(
        now >= before.min(DESIRED),
        "invariant 1/2: InService {before} -> {now}: {:?}",
        report.actions
    );
    let live = env.live_instances().await;
    for id in s.in_service() {
        let t = &live[&id].instance_type;
        assert!(
            POLICY_TYPES.contains(&t.as_str()),
            "a type outside the policy: {t}"
        );
    }
    assert_eq!(
        &env.group_state("mip-wipeout-unmanaged").await,
        unmanaged,
        "invariant 4"
    );
}

/// The group at `mix` (on-demand, spot), with the owner's desired and MaxSize.
async fn settled(env: &Env, mix: (usize, usize)) -> bool {
    let s = env.group_state(NAME).await;
    env.mix(NAME).await == mix && s.desired == DESIRED as i32 && s.max == DESIRED as i32
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_total_spot_wipe_out_falls_back_to_on_demand_within_two_cycles_and_spot_comes_back_after() {
    // GIVEN a mixed-instances group of 3 whose owner wants all spot (base 0, 0% above), behind
    //   the proxy that keeps its policy and models its spot launches as AWS does, an unmanaged
    //   group beside it, and the rebalancer run until the group is all spot
    let (proxy, env) = mixed_env().await;
    for (_, az) in env.subnets().await {
        proxy.set_spot_price("m5d.large", &az, 0.030);
        proxy.set_spot_price("m5.large", &az, 0.035);
    }
    mixed_group(&env, NAME, DESIRED as i32, 0, &[]).await;
    env.group(&GroupSpec::managed("mip-wipeout-unmanaged", 1).unmanaged())
        .await;
    let unmanaged = env.group_state("mip-wipeout-unmanaged").await;
    let start = spotswap_aws::workflow::now();
    let mut t = start;
    let mut step = 0;
    while !settled(&env, (0, DESIRED)).await {
        t = start.plus_secs(60 * step);
        let before = env.group_state(NAME).await.in_service().len();
        let report = cycle_at(&env, t).await;
        check(&env, &report, before, &unmanaged).await;
        step += 1;
        assert!(step < 16, "not converged on spot: {:?}", report.actions);
    }

    // WHEN every spot pool of its policy loses capacity and all its spot instances are
    //   interrupted (terminated, as AWS does; the proxy's clock follows the cycles' so the
    //   failed activities are stamped in the same time)
    let ahead = t.secs_since(spotswap_aws::workflow::now()).max(0) as u64;
    proxy.advance_clock(std::time::Duration::from_secs(ahead + 60));
    wipe_out(&proxy, &env, true).await;
    let spot = env.group_state(NAME).await.in_service();
    interrupt(&env, &spot).await;
    let short = env.group_state(NAME).await;
    assert_eq!(
        (short.desired, short.in_service().len()),
        (DESIRED as i32, 0),
        "AWS does not relaunch: {short:?}"
    );

    // THEN within two rebalancer cycles the group is back at desired, on on-demand: the first
    //   cycle (delivered three times at once: invariant 6) raises the distribution to 100%,
    //   the owner's 0 recorded once, and the group's own launches go on-demand
    let t_raise = t.plus_secs(120);
    let (a, b, c) = tokio::join!(
        cycle_at(&env, t_raise),
        cycle_at(&env, t_raise),
        cycle_at(&env, t_raise)
    );
    let raised: usize = [&a, &b, &c]
        .iter()
        .map(|r| done_with(r, Reason::DistributionRaised))
        .sum();
    assert!(raised >= 1, "{:?}", a.actions);
    check(&env, &a, 0, &unmanaged).await;
    let mut cycles = 1;
    while env.mix(NAME).await != (DESIRED, 0) {
        let before = env.group_state(NAME).await.in_service().len();
        let report = cycle_at(&env, t_raise.plus_secs(60 * cycles)).await;
        check(&env, &report, before, &unmanaged).await;
        cycles += 1;
        assert!(cycles <= 2, "not back at desired on on-demand within two cycles");
    }
    assert_eq!(on_demand_percent(&env, NAME).await, Some(100));
    let s = env.group_state(NAME).await;
    assert_eq!(
        s.tags
            .get("spotswap:distribution-raised-from")
            .map(String::as_str),
        Some("on-demand-percent=0")
    );
    assert!(s.tags.contains_key("spotswap:sheltered-until"), "the cooldown");
    assert_eq!(s.members.len(), DESIRED, "no extra launches: {s:?}");
    let want: BTreeSet<String> = POLICY_TYPES.iter().map(|t| t.to_string()).collect();
    assert_eq!(
        crate::mixed::policy_types(&env, NAME).await,
        want,
        "the policy is kept"
    );

    // WHEN the market comes back: during the cooldown nothing changes
    wipe_out(&proxy, &env, false).await;
    let during = cycle_at(&env, t_raise.plus_secs(30 * 60)).await;
    assert_eq!(during.mutating_calls(), 0, "{:?}", during.actions);

    // THEN after the cooldown exactly the owner's 0% comes back, the record goes, and the
    //   swaps convert the on-demand capacity back to spot, never below desired
    let over = t_raise.plus_secs(61 * 60);
    let report = cycle_at(&env, over).await;
    assert_eq!(
        done_with(&report, Reason::DistributionRestored),
        1,
        "{:?}",
        report.actions
    );
    check(&env, &report, DESIRED, &unmanaged).await;
    assert_eq!(on_demand_percent(&env, NAME).await, Some(0));
    assert!(!env
        .group_state(NAME)
        .await
        .tags
        .contains_key("spotswap:distribution-raised-from"));
    let mut step = 1;
    while !settled(&env, (0, DESIRED)).await {
        let report = cycle_at(&env, over.plus_secs(60 * step)).await;
        assert_eq!(
            done_with(&report, Reason::DistributionRaised),
            0,
            "{:?}",
            report.actions
        );
        check(&env, &report, DESIRED, &unmanaged).await;
        step += 1;
        assert!(step < 16, "spot did not come back: {:?}", report.actions);
    }
    // AND invariant 5: MaxSize is the owner's again, with no record left
    let s = env.group_state(NAME).await;
    assert!(!s.tags.contains_key("spotswap:max-raised-from"), "{:?}", s.tags);
}
