//! The rebalancer's planner, proved through spotswap-core's public API only.
//!
//! Every test builds a small fleet with [`Fleet`] and plans one cycle through `plan_cycle`,
//! the entry point the Lambda and the CLI use. Then it checks the plan. The proptest section
//! generates random groups, with swaps in every stage, and checks the invariants of
//! DESIGN.md §8 on every plan.
//!
//! # Layout
//!
//! - fixtures: plan helpers; the market, the [`Fleet`] builder (group + instances) and [`Stage`]
//!   come from `spotswap_core::testkit`;
//! - choice: which on-demand instances a cycle swaps;
//! - launch spec: what a `Launch` asks CreateFleet for;
//! - stage machine: Launch → Attach → Retire, MaxSize, duplicates;
//! - group skips: groups passed over, and why;
//! - pools: cooldown, no-capacity and the diversification cap;
//! - properties.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use proptest::sample::Index;
use spotswap_core::plan::client_token;
use spotswap_core::policy::is_managed;
use spotswap_core::records::{cooldown_key, no_capacity_key};
use spotswap_core::testkit::{template, Fleet, Stage, A, AZS, B, C, GRACE_SECS, GROUP, NOW};
use spotswap_core::{
    tags, ActionKind, GroupPlan, Instance, InstanceState, LaunchSource, LaunchSpec, Lifecycle, Member,
    MemberState, Mode, Policy, Pool, Reason, Timestamp,
};

// ---------------------------------------------------------------------------------------------
// fixtures
// ---------------------------------------------------------------------------------------------

/// The pools that may replace an on-demand m5.large, cheapest first: c5.large has less memory,
/// m6g.large is arm64.
const M5_CANDIDATES: [&str; 4] = ["m5a.large", "m6i.large", "m5.large", "r5.large"];

/// The Launch specs of a plan, in order.
fn launches(plan: &GroupPlan) -> Vec<&LaunchSpec> {
    plan.actions
        .iter()
        .filter_map(|a| match &a.kind {
            ActionKind::Launch(spec) => Some(spec),
            _ => None,
        })
        .collect()
}

/// The instances a plan launches replacements for, in order.
fn launched_for(plan: &GroupPlan) -> Vec<&str> {
    launches(plan).iter().map(|s| s.replaces.as_str()).collect()
}

/// Each action as (name, reason, instance): what the log line would say.
fn steps(plan: &GroupPlan) -> Vec<(&'static str, Reason, Option<&str>)> {
    plan.actions
        .iter()
        .map(|a| (a.kind.name(), a.reason, a.instance.as_deref()))
        .collect()
}

fn kinds(plan: &GroupPlan) -> Vec<&ActionKind> {
    plan.actions.iter().map(|a| &a.kind).collect()
}

fn skip_reason(plan: &GroupPlan) -> Option<Reason> {
    plan.skip.as_ref().map(|s| s.reason)
}

fn candidate_types(spec: &LaunchSpec) -> Vec<&str> {
    spec.candidates
        .iter()
        .map(|c| c.pool.instance_type.as_str())
        .collect()
}

/// A fleet of `n` on-demand m5.large spread over the three AZs, at capacity.
fn on_demand_fleet(n: u32) -> Fleet {
    (0..n)
        .fold(Fleet::new(), |f, i| {
            f.on_demand(&format!("i-od{i:02}"), AZS[i as usize % 3])
        })
        .desired(n)
}

// ---------------------------------------------------------------------------------------------
// choice
// ---------------------------------------------------------------------------------------------

#[test]
fn only_in_service_on_demand_instances_are_swapped() {
    // GIVEN two InService on-demand instances, an InService spot one, and an on-demand one
    //   the group still lists as Pending, with a floor of 0 and room for 10 swaps a cycle
    let fleet = Fleet::new()
        .on_demand("i-od1", A)
        .on_demand("i-od2", B)
        .spot("i-spot", "m6i.large", C)
        .on_demand("i-pending", A)
        .edit_member("i-pending", |m| m.state = MemberState::Pending)
        .desired(3)
        .tag(tags::REPLACE_PER_CYCLE, "10");
    // WHEN the rebalancer plans a cycle
    let plan = fleet.plan();
    // THEN it starts swaps for exactly the two InService on-demand instances
    let mut got = launched_for(&plan);
    got.sort();
    assert_eq!(got, vec!["i-od1", "i-od2"]);
    // AND every start is for an instance above the floor
    assert!(plan
        .actions
        .iter()
        .all(|a| a.reason == Reason::OnDemandAboveFloor));
    assert_eq!(plan.skip, None);
}

#[test]
fn replace_per_cycle_caps_the_starts() {
    for (rpc, want) in [(None, 1), (Some("1"), 1), (Some("3"), 3), (Some("100"), 6)] {
        // GIVEN six on-demand instances, a floor of 0, and replace-per-cycle `rpc`
        let mut fleet = on_demand_fleet(6);
        if let Some(rpc) = rpc {
            fleet = fleet.tag(tags::REPLACE_PER_CYCLE, rpc);
        }
        // WHEN the rebalancer plans a cycle
        let plan = fleet.plan();
        // THEN it starts at most `rpc` swaps (the default is 1), and never more than there are
        assert_eq!(launches(&plan).len(), want, "replace-per-cycle {rpc:?}");
    }
}

#[test]
fn the_az_with_most_on_demand_goes_first_then_the_oldest() {
    // GIVEN three on-demand in us-east-1b, two in us-east-1a and the oldest of all alone in
    //   us-east-1c; ages in hours
    let aged = |f: Fleet, id: &str, az: &str, hours: i64| {
        f.on_demand(id, az)
            .edit_instance(id, |i| i.launch_time = NOW.plus_minutes(-60 * hours))
    };
    let mut fleet = Fleet::new();
    for (id, az, hours) in [
        ("i-a-young", A, 5),
        ("i-a-old", A, 50),
        ("i-b-young", B, 1),
        ("i-b-mid", B, 10),
        ("i-b-old", B, 20),
        ("i-c-ancient", C, 500),
    ] {
        fleet = aged(fleet, id, az, hours);
    }
    let fleet = fleet.desired(6).tag(tags::REPLACE_PER_CYCLE, "4");
    // WHEN the rebalancer plans a cycle with room for four swaps
    let plan = fleet.plan();
    // THEN it drains us-east-1b oldest first, then the oldest of us-east-1a; us-east-1c waits
    assert_eq!(
        launched_for(&plan),
        vec!["i-b-old", "i-b-mid", "i-b-young", "i-a-old"]
    );
}

#[test]
fn protected_unhealthy_and_not_running_instances_are_skipped() {
    // GIVEN on-demand instances that are: plain; protected from scale-in; protected from
    //   termination; unhealthy; stopping while still listed InService; in Standby
    let fleet = Fleet::new()
        .on_demand("i-plain", A)
        .on_demand("i-scale-in-protected", A)
        .edit_member("i-scale-in-protected", |m| m.protected_from_scale_in = true)
        .on_demand("i-termination-protected", A)
        .edit_instance("i-termination-protected", |i| {
            i.termination_protected = Some(true)
        })
        .on_demand("i-unhealthy", B)
        .edit_member("i-unhealthy", |m| m.healthy = false)
        .on_demand("i-stopping", B)
        .edit_instance("i-stopping", |i| i.state = InstanceState::Stopped)
        .on_demand("i-standby", C)
        .edit_member("i-standby", |m| m.state = MemberState::Standby)
        .desired(5)
        .tag(tags::REPLACE_PER_CYCLE, "10");
    // WHEN the rebalancer plans a cycle with room for ten swaps
    let plan = fleet.plan();
    // THEN only the plain one is swapped
    assert_eq!(launched_for(&plan), vec!["i-plain"]);
}

#[test]
fn floors_give_the_right_number_of_starts() {
    // (desired, base, percent, expected starts) with room for 100 swaps, all on-demand
    let cases = [
        (4, None, None, 4),            // floor 0: everything goes
        (4, None, Some("0"), 4),       // 0% explicitly
        (4, None, Some("50"), 2),      // 50% of 4 stays on-demand
        (3, None, Some("50"), 1),      // ceil(1.5) = 2 stays
        (5, Some("2"), None, 3),       // a base of 2 stays
        (6, Some("2"), Some("50"), 2), // 2 + ceil(4 × 50%) = 4 stays
        (2, Some("2"), None, 0),       // the base covers the whole group
        (1, Some("2"), None, 0),       // a base above desired keeps everything
        (4, None, Some("100"), 0),     // 100%: all on-demand
    ];
    for (desired, base, pct, want) in cases {
        // GIVEN `desired` on-demand instances and the floor tags
        let mut fleet = on_demand_fleet(desired).tag(tags::REPLACE_PER_CYCLE, "100");
        if let Some(base) = base {
            fleet = fleet.tag(tags::ON_DEMAND_BASE, base);
        }
        if let Some(pct) = pct {
            fleet = fleet.tag(tags::ON_DEMAND_PERCENT, pct);
        }
        // WHEN the rebalancer plans a cycle
        let plan = fleet.plan();
        // THEN exactly `want` swaps start, and the census shows the floor it used
        assert_eq!(
            launches(&plan).len() as u32,
            want,
            "desired {desired}, base {base:?}, percent {pct:?}"
        );
        assert_eq!(plan.census.floor, desired - want);
        assert_eq!(plan.census.on_demand, desired);
    }
}

#[test]
fn a_converged_group_waits_at_the_risk_floor() {
    // GIVEN 2 on-demand and 2 spot with a 50% floor: on-demand == floor
    let fleet = Fleet::new()
        .on_demand("i-od1", A)
        .on_demand("i-od2", B)
        .spot("i-s1", "m5a.large", A)
        .spot("i-s2", "m6i.large", B)
        .desired(4)
        .tag(tags::ON_DEMAND_PERCENT, "50")
        .tag(tags::REPLACE_PER_CYCLE, "5");
    // WHEN the rebalancer plans a cycle
    let plan = fleet.plan();
    // THEN it starts nothing and says why
    assert_eq!(steps(&plan), vec![("wait", Reason::AtRiskFloor, None)]);
    assert_eq!(
        (plan.census.floor, plan.census.on_demand, plan.census.spot),
        (2, 2, 2)
    );
}

#[test]
fn a_group_below_capacity_starts_nothing() {
    // GIVEN desired 4 but only 3 InService (the fourth is still Pending)
    let fleet = on_demand_fleet(4)
        .edit_member("i-od03", |m| m.state = MemberState::Pending)
        .tag(tags::REPLACE_PER_CYCLE, "10");
    // WHEN the rebalancer plans a cycle
    let plan = fleet.plan();
    // THEN no swap starts: retiring later could drop capacity
    assert_eq!(steps(&plan), vec![("wait", Reason::GroupBelowCapacity, None)]);
}

#[test]
fn desired_zero_starts_nothing() {
    // GIVEN an empty group, and a group scaled to 0 whose last instance is still InService
    let empty = Fleet::new().desired(0);
    let draining = Fleet::new().on_demand("i-last", A).desired(0);
    for fleet in [empty, draining] {
        // WHEN the rebalancer plans a cycle
        let plan = fleet.plan();
        // THEN it does nothing at all
        assert!(plan.actions.is_empty(), "{:?}", plan.actions);
        assert_eq!(plan.skip, None);
    }
}

#[test]
fn replace_per_cycle_zero_starts_nothing() {
    // GIVEN four on-demand instances and replace-per-cycle 0 (swaps paused)
    let fleet = on_demand_fleet(4).tag(tags::REPLACE_PER_CYCLE, "0");
    // WHEN the rebalancer plans a cycle
    let plan = fleet.plan();
    // THEN nothing starts
    assert!(plan.actions.is_empty(), "{:?}", plan.actions);
}

// ---------------------------------------------------------------------------------------------
// launch spec
// ---------------------------------------------------------------------------------------------

#[test]
fn a_launch_uses_the_groups_template_and_the_originals_subnet() {
    // GIVEN one on-demand m5.large in its own subnet of us-east-1a
    let fleet = Fleet::new()
        .on_demand("i-od1", A)
        .edit_instance("i-od1", |i| i.subnet_id = Some("subnet-0aaa1".into()))
        .desired(1);
    // WHEN the rebalancer plans a cycle
    let plan = fleet.plan();
    let specs = launches(&plan);
    assert_eq!(specs.len(), 1);
    let spec = specs[0];
    // THEN the group's own launch template and version go to CreateFleet untouched
    assert_eq!(spec.launch_template, template());
    // AND the replacement lands in the original's subnet
    assert_eq!(spec.subnet_id, "subnet-0aaa1");
    assert_eq!(spec.replaces, "i-od1");
    // AND the candidates are the compatible pools of its AZ, cheapest first
    assert_eq!(candidate_types(spec), M5_CANDIDATES.to_vec());
    assert!(spec.candidates.iter().all(|c| c.pool.az == A));
    assert!(spec
        .candidates
        .windows(2)
        .all(|w| w[0].spot_price <= w[1].spot_price));
    // AND the log line names the original, the cheapest pool and both prices
    let action = &plan.actions[0];
    assert_eq!(action.reason, Reason::OnDemandAboveFloor);
    assert_eq!(action.instance.as_deref(), Some("i-od1"));
    assert_eq!(action.pool, Some(Pool::new("m5a.large", A)));
    assert_eq!(action.spot_price, Some(0.035));
    assert_eq!(action.on_demand_price, Some(0.096));
}

#[test]
fn a_launch_carries_our_tags_and_the_propagated_ones() {
    // GIVEN a group whose propagate-at-launch tags include AWS's and our own keys
    let fleet = Fleet::new().on_demand("i-od1", A).desired(1).with_group(|g| {
        for (k, v) in [
            ("Name", "web"),
            ("team", "sre"),
            ("aws:cloudformation:stack-name", "web-stack"),
            ("spotswap:enabled", "true"),
        ] {
            g.propagated_tags.insert(k.into(), v.into());
        }
    });
    // WHEN the rebalancer plans a cycle
    let plan = fleet.plan();
    // THEN the launch carries our three tags, then the group's own, and no aws:/spotswap: copy
    let tags: Vec<(&str, &str)> = launches(&plan)[0]
        .tags
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        tags,
        vec![
            (tags::GROUP, GROUP),
            (tags::REPLACES, "i-od1"),
            (tags::LAUNCHED_AT, "2026-01-01T12:00:00Z"),
            ("Name", "web"),
            ("team", "sre"),
        ]
    );
}

#[test]
fn the_client_token_is_stable_within_a_ten_minute_bucket() {
    // GIVEN the same one-instance group planned at several times
    let token_at = |now: Timestamp, id: &str| {
        let plan = Fleet::new().on_demand(id, A).desired(1).at(now).plan();
        launches(&plan)[0].client_token.clone()
    };
    let first = token_at(NOW, "i-od1");
    // THEN the same instance in the same 10-minute bucket gets the same token (a retry dedupes)
    assert_eq!(token_at(NOW.plus_secs(599), "i-od1"), first);
    // AND the next bucket, or another instance, gets a fresh one
    assert_ne!(token_at(NOW.plus_secs(600), "i-od1"), first);
    assert_ne!(token_at(NOW, "i-od2"), first);
    // AND it is the documented function of the two, short enough for CreateFleet (64)
    assert_eq!(first, client_token("i-od1", NOW));
    assert!(first.len() <= 64);
}

// ---------------------------------------------------------------------------------------------
// stage machine
// ---------------------------------------------------------------------------------------------

/// One on-demand original (`i-od1`) with our launch `i-l1` at `stage`, plus a second
/// on-demand instance `i-od2`; desired is the InService count.
fn swap_at(stage: Stage) -> Fleet {
    let f = Fleet::new()
        .on_demand("i-od1", A)
        .on_demand("i-od2", B)
        .launch("i-l1", "i-od1", stage);
    let in_service = f
        .group
        .members
        .iter()
        .filter(|m| m.state == MemberState::InService)
        .count() as u32;
    f.desired(in_service)
}

/// The actions of a plan that concern the swap of `i-od1`.
fn swap_steps(plan: &GroupPlan) -> Vec<(&'static str, Reason, Option<&str>)> {
    steps(plan)
        .into_iter()
        .filter(|(_, r, _)| *r != Reason::OnDemandAboveFloor && *r != Reason::AtRiskFloor)
        .collect()
}

#[test]
fn a_pending_launch_waits_for_launch() {
    // GIVEN our launch for i-od1 is still pending
    let plan = swap_at(Stage::Pending).plan();
    // THEN the swap waits, and no second launch starts for i-od1
    assert_eq!(
        swap_steps(&plan),
        vec![("wait", Reason::WaitingForLaunch, Some("i-l1"))]
    );
    assert!(!launched_for(&plan).contains(&"i-od1"));
}

#[test]
fn a_running_launch_without_status_checks_waits() {
    // GIVEN our launch runs but its status checks have not passed
    let plan = swap_at(Stage::Booting).plan();
    // THEN the swap waits for them
    assert_eq!(
        swap_steps(&plan),
        vec![("wait", Reason::WaitingForStatusChecks, Some("i-l1"))]
    );
}

#[test]
fn a_ready_launch_is_attached() {
    // GIVEN our launch runs with both status checks passing, and MaxSize has room
    let plan = swap_at(Stage::Ready).plan();
    // THEN it is attached in place of i-od1, with no MaxSize change
    assert_eq!(
        swap_steps(&plan),
        vec![("attach", Reason::ReplacementReady, Some("i-l1"))]
    );
    assert!(kinds(&plan).contains(&&ActionKind::Attach {
        instance: "i-l1".into(),
        replaces: "i-od1".into()
    }));
}

#[test]
fn max_size_is_raised_first_when_the_attaches_would_not_fit() {
    // GIVEN two ready launches, desired 2 and MaxSize 3: 2 + 2 attaches > 3
    let fleet = Fleet::new()
        .on_demand("i-od1", A)
        .on_demand("i-od2", B)
        .launch("i-l1", "i-od1", Stage::Ready)
        .launch("i-l2", "i-od2", Stage::Ready)
        .desired(2)
        .max(3);
    // WHEN the rebalancer plans a cycle
    let plan = fleet.plan();
    // THEN MaxSize goes from 3 to 4 before both attaches
    assert_eq!(
        kinds(&plan),
        vec![
            &ActionKind::RaiseMax { from: 3, to: 4 },
            &ActionKind::Attach {
                instance: "i-l1".into(),
                replaces: "i-od1".into()
            },
            &ActionKind::Attach {
                instance: "i-l2".into(),
                replaces: "i-od2".into()
            },
        ]
    );
    assert_eq!(plan.actions[0].reason, Reason::MaxSizeAtDesired);

    // GIVEN instead desired == MaxSize == 2 with one ready launch
    let plan = swap_at(Stage::Ready).max(2).plan();
    // THEN MaxSize goes up by one, then the attach
    assert_eq!(
        swap_steps(&plan),
        vec![
            ("raise-max", Reason::MaxSizeAtDesired, None),
            ("attach", Reason::ReplacementReady, Some("i-l1")),
        ]
    );
    assert_eq!(plan.actions[0].kind, ActionKind::RaiseMax { from: 2, to: 3 });
}

#[test]
fn a_raise_keeps_the_recorded_original_max() {
    // GIVEN MaxSize already raised from 2 to 3 by an earlier swap, and desired 3 at MaxSize
    let fleet = Fleet::new()
        .on_demand("i-od1", A)
        .on_demand("i-od2", B)
        .spot("i-done", "m5a.large", C)
        .launch("i-l2", "i-od2", Stage::Ready)
        .desired(3)
        .max(3)
        .tag(tags::MAX_RAISED_FROM, "2");
    // WHEN another attach needs room
    let plan = fleet.plan();
    // THEN `from` is still the original 2, not the raised 3
    assert_eq!(plan.actions[0].kind, ActionKind::RaiseMax { from: 2, to: 4 });
}

#[test]
fn an_attached_launch_without_its_attach_tag_is_marked() {
    // GIVEN our launch is InService in the group but the attached-at tag was never written
    let plan = swap_at(Stage::Unmarked).plan();
    // THEN the tag is written (the grace period counts from it), and nothing is retired
    assert_eq!(
        swap_steps(&plan),
        vec![("mark-attached", Reason::AttachedAtMissing, Some("i-l1"))]
    );
}

#[test]
fn an_attached_launch_not_yet_in_service_waits() {
    // GIVEN our launch is attached but still Pending in the group
    let plan = swap_at(Stage::AttachedPending).plan();
    // THEN the swap waits for InService
    assert!(swap_steps(&plan).contains(&("wait", Reason::WaitingForInService, Some("i-l1"))));
    assert!(!kinds(&plan)
        .iter()
        .any(|k| matches!(k, ActionKind::Retire { .. })));
}

#[test]
fn the_original_is_retired_only_after_the_grace_period() {
    // GIVEN our launch attached and InService for less than the grace period
    let plan = swap_at(Stage::Attached {
        secs_ago: i64::from(GRACE_SECS) - 1,
    })
    .plan();
    // THEN the swap waits for the grace period
    assert_eq!(
        swap_steps(&plan),
        vec![("wait", Reason::WaitingForGracePeriod, Some("i-l1"))]
    );

    // GIVEN the grace period has just passed
    let plan = swap_at(Stage::Attached {
        secs_ago: i64::from(GRACE_SECS),
    })
    .plan();
    // THEN the original is retired, naming its InService replacement
    assert_eq!(
        swap_steps(&plan),
        vec![("retire", Reason::ReplacementInService, Some("i-od1"))]
    );
    assert!(kinds(&plan).contains(&&ActionKind::Retire {
        instance: "i-od1".into(),
        replacement: "i-l1".into()
    }));
}

#[test]
fn nothing_is_retired_while_the_group_is_below_capacity() {
    // GIVEN a swap past its grace period, but i-od2 has dropped out of service
    let fleet =
        swap_at(Stage::Attached { secs_ago: 3600 }).edit_member("i-od2", |m| m.state = MemberState::Pending);
    // WHEN the rebalancer plans a cycle
    let plan = fleet.plan();
    // THEN the swap waits: retiring now would take InService below desired
    assert!(swap_steps(&plan).contains(&("wait", Reason::GroupBelowCapacity, Some("i-l1"))));
    assert!(!kinds(&plan)
        .iter()
        .any(|k| matches!(k, ActionKind::Retire { .. })));
}

#[test]
fn a_launch_whose_original_left_before_the_attach_is_ended() {
    // GIVEN our ready launch, and its original was scaled in (gone, or leaving the group)
    let gone = swap_at(Stage::Ready).remove("i-od1").desired(1);
    let leaving = swap_at(Stage::Ready)
        .edit_member("i-od1", |m| m.state = MemberState::Leaving)
        .desired(1);
    for fleet in [gone, leaving] {
        // WHEN the rebalancer plans a cycle
        let plan = fleet.plan();
        // THEN the launch is not attached but ended
        assert_eq!(
            swap_steps(&plan),
            vec![("terminate-launch", Reason::ReplacedInstanceGone, Some("i-l1"))]
        );
        assert!(kinds(&plan).contains(&&ActionKind::TerminateLaunch {
            instance: "i-l1".into()
        }));
    }
}

#[test]
fn a_swap_whose_original_left_after_the_attach_is_done() {
    // GIVEN our launch attached and InService, and the original since left the group
    let fleet = swap_at(Stage::Attached { secs_ago: 3600 })
        .remove("i-od1")
        .desired(2);
    // WHEN the rebalancer plans a cycle
    let plan = fleet.plan();
    // THEN nothing is done to the launch: it is a regular member now
    assert!(
        plan.actions
            .iter()
            .all(|a| a.instance.as_deref() != Some("i-l1") && a.instance.as_deref() != Some("i-od1")),
        "{:?}",
        plan.actions
    );
}

#[test]
fn a_stopped_launch_is_ended() {
    // GIVEN our launch stopped before it was attached
    let plan = swap_at(Stage::Stopped).tag(tags::REPLACE_PER_CYCLE, "5").plan();
    // THEN it is ended as a failed launch
    assert_eq!(
        swap_steps(&plan),
        vec![("terminate-launch", Reason::LaunchFailed, Some("i-l1"))]
    );
    // AND no new launch replaces i-od1 while the failed one is still alive
    assert_eq!(launched_for(&plan), vec!["i-od2"]);
}

#[test]
fn of_two_launches_for_one_original_the_lowest_id_is_kept() {
    // GIVEN two ready launches replacing i-od1 (a retried CreateFleet), added in either order
    let ab = swap_at(Stage::Ready).launch("i-l2", "i-od1", Stage::Ready);
    let ba = Fleet::new()
        .on_demand("i-od2", B)
        .on_demand("i-od1", A)
        .launch("i-l2", "i-od1", Stage::Ready)
        .launch("i-l1", "i-od1", Stage::Ready)
        .desired(2);
    for fleet in [ab, ba] {
        // WHEN the rebalancer plans a cycle
        let plan = fleet.plan();
        // THEN i-l1 is attached and i-l2 is ended as a duplicate
        assert_eq!(
            swap_steps(&plan),
            vec![
                ("terminate-launch", Reason::DuplicateLaunch, Some("i-l2")),
                ("attach", Reason::ReplacementReady, Some("i-l1")),
            ]
        );
        assert_eq!(
            plan.actions
                .iter()
                .filter(|a| matches!(a.kind, ActionKind::Attach { .. }))
                .count(),
            1
        );
    }
}

#[test]
fn an_attached_duplicate_is_retired_only_once_the_kept_one_is_in_service_and_healthy() {
    // GIVEN two launches for i-od1 both attached (two concurrent cycles), past the grace
    //   period; the kept one (lowest id) is InService but unhealthy
    let sick = Fleet::new()
        .on_demand("i-od1", A)
        .on_demand("i-od2", B)
        .launch("i-l1", "i-od1", Stage::AttachedUnhealthy { secs_ago: 3600 })
        .launch("i-l2", "i-od1", Stage::Attached { secs_ago: 3600 })
        .desired(4);
    // WHEN the rebalancer plans a cycle
    let plan = sick.plan();
    // THEN the healthy duplicate is not retired in favour of the sick one, nor the original
    assert!(
        !kinds(&plan)
            .iter()
            .any(|k| matches!(k, ActionKind::Retire { .. })),
        "{:?}",
        plan.actions
    );
    assert!(steps(&plan).contains(&("wait", Reason::DuplicateLaunch, Some("i-l2"))));

    // GIVEN the kept one is healthy too
    let plan = sick.edit_member("i-l1", |m| m.healthy = true).plan();
    // THEN the duplicate is retired in favour of the kept one, and the original too
    assert!(kinds(&plan).contains(&&ActionKind::Retire {
        instance: "i-l2".into(),
        replacement: "i-l1".into()
    }));
    assert!(kinds(&plan).contains(&&ActionKind::Retire {
        instance: "i-od1".into(),
        replacement: "i-l1".into()
    }));
}

#[test]
fn max_size_is_restored_only_when_nothing_is_in_flight() {
    // GIVEN MaxSize raised from 2 to 3, the swap done (i-od1 retired), desired back at 2
    let done = Fleet::new()
        .on_demand("i-od2", B)
        .spot("i-l1", "m5a.large", A)
        .desired(2)
        .max(3)
        .tag(tags::MAX_RAISED_FROM, "2")
        .tag(tags::ON_DEMAND_BASE, "1");
    // WHEN the rebalancer plans a cycle
    let plan = done.plan();
    // THEN MaxSize goes back to 2
    assert_eq!(
        steps(&plan),
        vec![
            ("restore-max", Reason::NoSwapInFlight, None),
            ("wait", Reason::AtRiskFloor, None)
        ]
    );
    assert_eq!(plan.actions[0].kind, ActionKind::RestoreMax { to: 2 });

    // GIVEN a swap still in flight
    let plan = swap_at(Stage::Attached { secs_ago: 10 })
        .max(3)
        .tag(tags::MAX_RAISED_FROM, "2")
        .plan();
    // THEN MaxSize stays raised
    assert!(!kinds(&plan)
        .iter()
        .any(|k| matches!(k, ActionKind::RestoreMax { .. })));

    // GIVEN nothing in flight but desired (3) above the recorded original (2)
    let plan = done.clone().spot("i-s2", "m6i.large", C).desired(3).plan();
    // THEN MaxSize stays, and the plan says why
    assert!(!kinds(&plan)
        .iter()
        .any(|k| matches!(k, ActionKind::RestoreMax { .. })));
    assert!(steps(&plan).contains(&("wait", Reason::DesiredAboveOriginalMax, None)));
}

#[test]
fn a_swap_in_flight_is_never_started_twice() {
    for stage in [
        Stage::Pending,
        Stage::Booting,
        Stage::Ready,
        Stage::AttachedPending,
        Stage::Unmarked,
        Stage::Attached { secs_ago: 10 },
        Stage::Attached { secs_ago: 3600 },
    ] {
        // GIVEN i-od1 has our launch at `stage`, and room for 10 swaps with a floor of 0
        let plan = swap_at(stage).tag(tags::REPLACE_PER_CYCLE, "10").plan();
        // WHEN the rebalancer plans a cycle
        // THEN no second launch starts for i-od1; i-od2 may start
        assert!(
            !launched_for(&plan).contains(&"i-od1"),
            "{stage:?}: {:?}",
            plan.actions
        );
    }
}

// ---------------------------------------------------------------------------------------------
// group skips
// ---------------------------------------------------------------------------------------------

#[test]
fn unsupported_or_busy_groups_are_skipped_without_mutations() {
    let cases: Vec<(Fleet, Reason, Option<&str>)> = vec![
        (
            on_demand_fleet(2)
                .with_group(|g| g.launch_source = LaunchSource::LaunchConfiguration("web-lc".into())),
            Reason::LaunchConfigurationNotSupported,
            Some("web-lc"),
        ),
        (
            on_demand_fleet(2).with_group(|g| g.launch_source = LaunchSource::MixedInstances),
            Reason::MixedInstancesPolicyNotSupported,
            None,
        ),
        (
            on_demand_fleet(2).with_group(|g| g.status = Some("Delete in progress".into())),
            Reason::GroupUpdating,
            Some("Delete in progress"),
        ),
        (
            on_demand_fleet(2).with_group(|g| g.instance_refresh_in_progress = Some(true)),
            Reason::InstanceRefreshInProgress,
            None,
        ),
    ];
    for (fleet, reason, detail) in cases {
        // GIVEN a group AWS or its owner is busy with, or that we do not support, with a
        //   ready launch of ours that could otherwise be attached
        let fleet = fleet.launch("i-l1", "i-od00", Stage::Ready);
        // WHEN the rebalancer plans a cycle
        let plan = fleet.plan();
        // THEN the group is skipped with the reason, and gets no action at all
        assert_eq!(skip_reason(&plan), Some(reason));
        assert!(plan.actions.is_empty(), "{reason}: {:?}", plan.actions);
        if let Some(detail) = detail {
            assert!(plan
                .skip
                .as_ref()
                .unwrap()
                .detail
                .as_deref()
                .unwrap()
                .contains(detail));
        }
    }
}

#[test]
fn a_sheltered_group_advances_swaps_in_flight_but_starts_none() {
    // GIVEN a group sheltered for another hour, with one ready launch and one more on-demand
    let fleet = swap_at(Stage::Ready)
        .tag(tags::SHELTERED_UNTIL, "2026-01-01T13:00:00Z")
        .tag(tags::REPLACE_PER_CYCLE, "5");
    // WHEN the rebalancer plans a cycle
    let plan = fleet.plan();
    // THEN the launch in flight is attached, no new swap starts, and the skip says Sheltered
    assert_eq!(
        steps(&plan),
        vec![("attach", Reason::ReplacementReady, Some("i-l1"))]
    );
    assert_eq!(skip_reason(&plan), Some(Reason::Sheltered));

    // GIVEN the shelter has expired
    let plan = fleet.tag(tags::SHELTERED_UNTIL, "2026-01-01T11:59:59Z").plan();
    // THEN swaps start again
    assert_eq!(launched_for(&plan), vec!["i-od2"]);
    assert_eq!(plan.skip, None);
}

#[test]
fn a_bad_tag_skips_the_group_naming_the_tag_and_value() {
    for (tag, value) in [
        (tags::ON_DEMAND_PERCENT, "abc"),
        (tags::ON_DEMAND_PERCENT, "150"),
        (tags::ON_DEMAND_BASE, "-1"),
        (tags::REPLACE_PER_CYCLE, "lots"),
        (tags::ALLOWED_TYPES, "m5.*,"),
        (tags::ENABLED, "yes"),
    ] {
        // GIVEN a group with a bad value and work that could otherwise be done
        let fleet = swap_at(Stage::Ready).tag(tag, value);
        // WHEN the rebalancer plans a cycle
        let plan = fleet.plan();
        // THEN it is skipped as InvalidConfig, the detail names the tag and the value
        assert_eq!(skip_reason(&plan), Some(Reason::InvalidConfig), "{tag}={value}");
        let detail = plan.skip.as_ref().unwrap().detail.clone().unwrap();
        assert!(detail.contains(tag) && detail.contains(value), "{detail}");
        // AND nothing is done to it
        assert!(plan.actions.is_empty(), "{tag}={value}: {:?}", plan.actions);
    }
}

#[test]
fn unmanaged_groups_get_no_action_in_either_mode() {
    // GIVEN opt-out mode and a group tagged spotswap:enabled=false
    let opted_out = swap_at(Stage::Ready)
        .mode(Mode::OptOut)
        .tag(tags::ENABLED, "false");
    // AND opt-in mode and a group with no enabled tag
    let untagged = swap_at(Stage::Ready).untag(tags::ENABLED);
    for fleet in [opted_out, untagged] {
        // WHEN the rebalancer plans a cycle
        let plan = fleet.plan();
        // THEN it is not managed and gets no action
        assert_eq!(skip_reason(&plan), Some(Reason::NotManaged));
        assert!(plan.actions.is_empty());
    }
    // AND in opt-out mode an untagged group is managed
    let plan = swap_at(Stage::Ready)
        .mode(Mode::OptOut)
        .untag(tags::ENABLED)
        .plan();
    assert_eq!(plan.skip, None);
    assert!(!plan.actions.is_empty());
}

// ---------------------------------------------------------------------------------------------
// pools
// ---------------------------------------------------------------------------------------------

#[test]
fn cooldown_and_no_capacity_records_exclude_their_pools() {
    // GIVEN m5a.large/us-east-1a cooling down after an interruption, m6i.large/us-east-1a
    //   marked without capacity, and an expired cooldown on r5.large/us-east-1a
    let fleet = Fleet::new()
        .on_demand("i-od1", A)
        .desired(1)
        .tag(&cooldown_key(&Pool::new("m5a.large", A)), "2026-01-01T12:30:00Z")
        .tag(
            &no_capacity_key(&Pool::new("m6i.large", A)),
            "2026-01-01T12:03:00Z",
        )
        .tag(&cooldown_key(&Pool::new("r5.large", A)), "2026-01-01T11:59:00Z");
    assert!(fleet
        .group
        .tags
        .contains_key("spotswap:cooldown:m5a.large/us-east-1a"));
    // WHEN the rebalancer plans a cycle
    let plan = fleet.plan();
    // THEN the live records exclude their pools, the expired one does not
    assert_eq!(candidate_types(launches(&plan)[0]), vec!["m5.large", "r5.large"]);
    // AND a record for another AZ excludes nothing here
    let plan = Fleet::new()
        .on_demand("i-od1", A)
        .desired(1)
        .tag(&cooldown_key(&Pool::new("m5a.large", B)), "2026-01-01T12:30:00Z")
        .plan();
    assert_eq!(candidate_types(launches(&plan)[0]), M5_CANDIDATES.to_vec());
}

#[test]
fn every_pool_blocked_means_no_launch_and_a_reason() {
    // GIVEN every compatible pool of us-east-1a in cooldown
    let mut fleet = Fleet::new().on_demand("i-od1", A).desired(1);
    for t in M5_CANDIDATES {
        fleet = fleet.tag(&cooldown_key(&Pool::new(t, A)), "2026-01-01T13:00:00Z");
    }
    // WHEN the rebalancer plans a cycle
    let plan = fleet.plan();
    // THEN the on-demand instance stays and the plan says why
    assert_eq!(
        steps(&plan),
        vec![("wait", Reason::NoEligiblePool, Some("i-od1"))]
    );
}

#[test]
fn the_diversification_cap_spreads_launches_within_one_cycle() {
    // GIVEN four on-demand in one AZ, a floor of 0, four swaps a cycle, 25% per pool
    let four_in_a = |pct: &str| {
        (1..=4)
            .fold(Fleet::new(), |f, i| f.on_demand(&format!("i-od{i}"), A))
            .desired(4)
            .tag(tags::REPLACE_PER_CYCLE, "4")
            .tag(tags::MAX_POOL_PERCENT, pct)
    };
    let plan = four_in_a("25").plan();
    // WHEN the rebalancer plans a cycle
    // THEN the four launches head for four different pools, cheapest first
    let pools: Vec<Pool> = plan.actions.iter().filter_map(|a| a.pool.clone()).collect();
    assert_eq!(
        pools,
        M5_CANDIDATES.iter().map(|t| Pool::new(*t, A)).collect::<Vec<_>>()
    );
    // AND each later launch no longer offers the pools the earlier ones took
    let specs = launches(&plan);
    for (i, spec) in specs.iter().enumerate() {
        assert_eq!(candidate_types(spec), M5_CANDIDATES[i..].to_vec());
    }

    // GIVEN 50% per pool instead
    let plan = four_in_a("50").plan();
    // THEN no pool gets more than two of the four
    let mut per_pool: BTreeMap<Pool, u32> = BTreeMap::new();
    for a in &plan.actions {
        *per_pool.entry(a.pool.clone().unwrap()).or_default() += 1;
    }
    assert_eq!(launches(&plan).len(), 4);
    assert!(per_pool.values().all(|&n| n <= 2), "{per_pool:?}");
    assert_eq!(per_pool.len(), 2);
}

#[test]
fn existing_spot_and_launches_in_flight_count_toward_the_cap() {
    // GIVEN 2 spot already in m5a.large/us-east-1a, 50% per pool, 2 on-demand to swap
    let fleet = Fleet::new()
        .spot("i-s1", "m5a.large", A)
        .spot("i-s2", "m5a.large", A)
        .on_demand("i-od1", A)
        .on_demand("i-od2", A)
        .desired(4)
        .tag(tags::REPLACE_PER_CYCLE, "2");
    // WHEN the rebalancer plans a cycle
    let plan = fleet.plan();
    // THEN the full pool is not offered again
    for spec in launches(&plan) {
        assert!(!candidate_types(spec).contains(&"m5a.large"), "{spec:?}");
    }

    // GIVEN one spot in m5a.large/us-east-1a and an unattached launch of ours headed there
    let fleet = Fleet::new()
        .spot("i-s1", "m5a.large", A)
        .on_demand("i-od1", A)
        .on_demand("i-od2", A)
        .on_demand("i-od3", A)
        .launch("i-l1", "i-od1", Stage::Pending)
        .desired(4)
        .tag(tags::REPLACE_PER_CYCLE, "1");
    let plan = fleet.plan();
    // THEN the pool counts as holding two of four: full at 50%
    assert!(!candidate_types(launches(&plan)[0]).contains(&"m5a.large"));
}

#[test]
fn the_census_does_not_depend_on_the_order_aws_lists_members_in() {
    // GIVEN three spot members whose savings do not add up exactly in floating point
    let fleet = Fleet::new()
        .spot("i-s1", "m6i.large", A)
        .spot("i-s2", "m6i.large", A)
        .spot("i-s3", "m6i.large", A)
        .spot("i-s4", "m5a.large", B)
        .desired(4);
    let mut reversed = fleet.clone();
    reversed.group.members.reverse();
    // WHEN both orders are planned
    // THEN the plans, savings included, are identical to the last bit
    assert_eq!(fleet.plan(), reversed.plan());
    assert_eq!(
        fleet.plan().census.hourly_savings.to_bits(),
        reversed.plan().census.hourly_savings.to_bits()
    );
}

// ---------------------------------------------------------------------------------------------
// properties
// ---------------------------------------------------------------------------------------------

/// One generated member of the group.
#[derive(Debug, Clone)]
struct GenMember {
    spot: bool,
    state: MemberState,
    healthy: bool,
    protected: bool,
    termination_protected: Option<bool>,
    instance_state: InstanceState,
    az: usize,
    spot_type: usize,
    age_min: i64,
}

/// One generated launch of ours, in any stage.
#[derive(Debug, Clone)]
struct GenLaunch {
    /// Which member it replaces (when there is one and `ghost` is false).
    target: Index,
    /// It replaces an instance that is in no group.
    ghost: bool,
    /// Its `spotswap:group` names another group: never ours to act on.
    foreign: bool,
    instance_state: InstanceState,
    status_ok: Option<bool>,
    /// Its group listing, if attached.
    member: Option<(MemberState, bool)>,
    attached_secs_ago: Option<i64>,
}

/// One generated group, with the settings of its cycle.
#[derive(Debug, Clone)]
struct GenGroup {
    /// DesiredCapacity; `None`: the InService count (a group at capacity, the common case).
    desired: Option<u32>,
    /// MaxSize above desired.
    extra_max: u32,
    grace: u32,
    mode: Mode,
    tags: Vec<(String, String)>,
    members: Vec<GenMember>,
    launches: Vec<GenLaunch>,
    /// Sort keys that shuffle the member list and the instance insertion order.
    shuffle: Vec<u32>,
}

const SPOT_TYPES: [&str; 4] = ["m5a.large", "m6i.large", "m5.large", "r5.large"];

fn member_state() -> impl Strategy<Value = MemberState> {
    prop_oneof![
        6 => Just(MemberState::InService),
        1 => Just(MemberState::Pending),
        1 => Just(MemberState::Standby),
        1 => Just(MemberState::Leaving),
    ]
}

fn instance_state() -> impl Strategy<Value = InstanceState> {
    prop_oneof![
        6 => Just(InstanceState::Running),
        1 => Just(InstanceState::Pending),
        1 => Just(InstanceState::Stopped),
        1 => Just(InstanceState::Gone),
    ]
}

prop_compose! {
    fn gen_member()(
        spot in prop::bool::weighted(0.3),
        state in member_state(),
        healthy in prop::bool::weighted(0.85),
        protected in prop::bool::weighted(0.1),
        termination_protected in prop::option::of(prop::bool::weighted(0.1)),
        instance_state in prop_oneof![8 => Just(InstanceState::Running), 1 => Just(InstanceState::Stopped)],
        az in 0usize..3,
        spot_type in 0usize..SPOT_TYPES.len(),
        age_min in 0i64..10_000,
    ) -> GenMember {
        GenMember { spot, state, healthy, protected, termination_protected, instance_state, az, spot_type, age_min }
    }
}

prop_compose! {
    fn gen_launch()(
        target in any::<Index>(),
        ghost in prop::bool::weighted(0.1),
        foreign in prop::bool::weighted(0.1),
        instance_state in instance_state(),
        status_ok in prop::option::of(any::<bool>()),
        member in prop::option::weighted(0.5, (member_state(), prop::bool::weighted(0.8))),
        attached_secs_ago in prop::option::weighted(0.8, 0i64..1200),
    ) -> GenLaunch {
        GenLaunch { target, ghost, foreign, instance_state, status_ok, member, attached_secs_ago }
    }
}

/// A tag value: usually absent or valid, sometimes bad.
fn tag_value(
    valid: impl Strategy<Value = String> + 'static,
    bad: &'static str,
) -> BoxedStrategy<Option<String>> {
    prop_oneof![
        10 => Just(None),
        20 => valid.prop_map(Some),
        1 => Just(Some(bad.to_string())),
    ]
    .boxed()
}

fn gen_tags() -> impl Strategy<Value = Vec<(String, String)>> {
    (
        prop_oneof![
            30 => Just(Some("true".to_string())),
            2 => Just(Some("false".to_string())),
            2 => Just(None),
            1 => Just(Some("yes".to_string())),
        ],
        tag_value((0u32..=100).prop_map(|n| n.to_string()), "150"),
        tag_value((0u32..=4).prop_map(|n| n.to_string()), "-1"),
        tag_value((0u32..=5).prop_map(|n| n.to_string()), "abc"),
        tag_value((1u32..=100).prop_map(|n| n.to_string()), "0"),
        prop::option::weighted(0.2, -60i64..60),
        prop::option::weighted(0.2, 0u32..=14),
        prop::option::weighted(0.3, (0usize..SPOT_TYPES.len(), 0usize..3, -30i64..30)),
    )
        .prop_map(|(enabled, pct, base, rpc, pool_pct, shelter, raised, record)| {
            let mut t = Vec::new();
            let mut put = |k: &str, v: Option<String>| {
                if let Some(v) = v {
                    t.push((k.to_string(), v));
                }
            };
            put(tags::ENABLED, enabled);
            put(tags::ON_DEMAND_PERCENT, pct);
            put(tags::ON_DEMAND_BASE, base);
            put(tags::REPLACE_PER_CYCLE, rpc);
            put(tags::MAX_POOL_PERCENT, pool_pct);
            put(
                tags::SHELTERED_UNTIL,
                shelter.map(|m| NOW.plus_minutes(m).to_rfc3339()),
            );
            put(tags::MAX_RAISED_FROM, raised.map(|n| n.to_string()));
            if let Some((ty, az, m)) = record {
                put(
                    &cooldown_key(&Pool::new(SPOT_TYPES[ty], AZS[az])),
                    Some(NOW.plus_minutes(m).to_rfc3339()),
                );
            }
            t
        })
}

prop_compose! {
    fn gen_group()(
        desired in prop::option::weighted(0.5, 0u32..=12),
        extra_max in 0u32..=3,
        grace in prop_oneof![Just(0u32), Just(300u32), 0u32..900],
        mode in prop_oneof![Just(Mode::OptIn), Just(Mode::OptOut)],
        tags in gen_tags(),
        members in prop::collection::vec(gen_member(), 0..=14),
        launches in prop::collection::vec(gen_launch(), 0..=5),
        shuffle in prop::collection::vec(any::<u32>(), 24),
    ) -> GenGroup {
        GenGroup { desired, extra_max, grace, mode, tags, members, launches, shuffle }
    }
}

impl GenGroup {
    /// The fleet, with members listed and instances inserted in an order set by `order`.
    fn fleet_in_order(&self, order: &[u32]) -> Fleet {
        let mut fleet = Fleet::new()
            .untag(tags::ENABLED)
            .mode(self.mode)
            .with_group(|g| g.health_check_grace_secs = self.grace);
        for (k, v) in &self.tags {
            fleet = fleet.tag(k, v);
        }
        let member_ids: Vec<String> = (0..self.members.len()).map(|i| format!("i-m{i:02}")).collect();
        for (m, id) in self.members.iter().zip(&member_ids) {
            let (ty, lifecycle) = if m.spot {
                (SPOT_TYPES[m.spot_type], Lifecycle::Spot)
            } else {
                ("m5.large", Lifecycle::OnDemand)
            };
            fleet = fleet
                .member(id, ty, AZS[m.az], lifecycle)
                .edit_member(id, |x| {
                    x.state = m.state;
                    x.healthy = m.healthy;
                    x.protected_from_scale_in = m.protected;
                })
                .edit_instance(id, |i| {
                    i.state = m.instance_state;
                    i.termination_protected = m.termination_protected;
                    i.launch_time = NOW.plus_minutes(-m.age_min);
                });
        }
        for (n, l) in self.launches.iter().enumerate() {
            let replaces = if l.ghost || member_ids.is_empty() {
                format!("i-ghost{n}")
            } else {
                member_ids[l.target.index(member_ids.len())].clone()
            };
            let group = if l.foreign { "other" } else { GROUP };
            fleet = fleet.raw_launch(
                &format!("i-l{n}"),
                group,
                &replaces,
                l.instance_state,
                l.status_ok,
                l.member,
                l.member.and(l.attached_secs_ago),
            );
        }
        let in_service = fleet
            .group
            .members
            .iter()
            .filter(|m| m.state == MemberState::InService)
            .count() as u32;
        let desired = self.desired.unwrap_or(in_service);
        fleet = fleet.desired(desired).max(desired + self.extra_max);
        // shuffle the member list, and re-insert the instances in the same shuffled order
        let key = |i: usize| order.get(i % order.len().max(1)).copied().unwrap_or(0);
        let mut members: Vec<(u32, usize, Member)> = fleet
            .group
            .members
            .drain(..)
            .enumerate()
            .map(|(i, m)| (key(i), i, m))
            .collect();
        members.sort_by_key(|(k, i, _)| (*k, *i));
        fleet.group.members = members.into_iter().map(|(_, _, m)| m).collect();
        let mut instances: Vec<(u32, usize, Instance)> = std::mem::take(&mut fleet.instances)
            .into_values()
            .enumerate()
            .map(|(i, inst)| (key(i), i, inst))
            .collect();
        instances.sort_by_key(|(k, i, _)| (*k, *i));
        fleet.instances = instances.into_iter().map(|(_, _, i)| (i.id.clone(), i)).collect();
        fleet
    }

    fn fleet(&self) -> Fleet {
        self.fleet_in_order(&[])
    }
}

/// DESIGN.md §8 invariants, checked on one plan of one generated group.
fn check_plan(fleet: &Fleet, plan: &GroupPlan) -> Result<(), TestCaseError> {
    let g = &fleet.group;
    let instances = &fleet.instances;
    let member = |id: &str| g.members.iter().find(|m| m.id == id);

    // (f) an unmanaged group, or one with a bad tag, gets no mutating action
    let policy = match is_managed(&g.tags, fleet.mode) {
        Ok(true) => Policy::from_tags(&g.tags, &Policy::default()),
        Ok(false) => {
            prop_assert_eq!(skip_reason(plan), Some(Reason::NotManaged));
            prop_assert!(!plan.actions.iter().any(|a| a.kind.is_mutating()));
            return Ok(());
        }
        Err(e) => Err(e),
    };
    let policy = match policy {
        Ok(p) => p,
        Err(_) => {
            prop_assert_eq!(skip_reason(plan), Some(Reason::InvalidConfig));
            prop_assert!(!plan.actions.iter().any(|a| a.kind.is_mutating()));
            return Ok(());
        }
    };

    let in_service = g
        .members
        .iter()
        .filter(|m| m.state == MemberState::InService)
        .count() as u32;
    let od_in_service: Vec<&Member> = g
        .members
        .iter()
        .filter(|m| m.state == MemberState::InService)
        .filter(|m| {
            instances
                .get(&m.id)
                .is_some_and(|i| i.lifecycle == Lifecycle::OnDemand)
        })
        .collect();
    // the floor, from DESIGN.md §3's formula, not from the crate
    let above = u64::from(g.desired.saturating_sub(policy.on_demand_base));
    let floor = (u64::from(policy.on_demand_base)
        + (above * u64::from(policy.on_demand_percent)).div_ceil(100))
    .min(u64::from(g.desired)) as u32;

    let ours = |i: &&Instance| i.tag(tags::GROUP) == Some(GROUP) && i.state != InstanceState::Gone;
    let ended: BTreeSet<&str> = plan
        .actions
        .iter()
        .filter_map(|a| match &a.kind {
            ActionKind::TerminateLaunch { instance } => Some(instance.as_str()),
            _ => None,
        })
        .collect();
    let retired: Vec<(&str, &str)> = plan
        .actions
        .iter()
        .filter_map(|a| match &a.kind {
            ActionKind::Retire {
                instance,
                replacement,
            } => Some((instance.as_str(), replacement.as_str())),
            _ => None,
        })
        .collect();
    let launched: Vec<&str> = launched_for(plan);

    // (a) a Retire only ever leaves an InService, healthy replacement, with the group at capacity
    for (instance, replacement) in &retired {
        let r = member(replacement);
        prop_assert!(
            r.is_some_and(|r| r.state == MemberState::InService && r.healthy),
            "retire {} for {} which is {:?}",
            instance,
            replacement,
            r
        );
        prop_assert!(
            in_service >= g.desired,
            "retire with {} InService < desired {}",
            in_service,
            g.desired
        );
        prop_assert!(member(instance).is_some(), "retire of non-member {}", instance);
        prop_assert!(instance != replacement);
    }
    // each instance is retired at most once
    let retired_set: BTreeSet<&str> = retired.iter().map(|(i, _)| *i).collect();
    prop_assert_eq!(retired_set.len(), retired.len());

    // (b) new launches never take on-demand below the floor, counting swaps in flight: an
    //     InService on-demand original with a live launch of ours that is neither ended by
    //     this plan nor leaving the group
    let in_flight = od_in_service
        .iter()
        .filter(|m| {
            instances.values().filter(ours).any(|l| {
                l.replaces() == Some(m.id.as_str())
                    && !ended.contains(l.id.as_str())
                    && member(&l.id).is_none_or(|lm| lm.state != MemberState::Leaving)
            })
        })
        .count() as u32;
    let n_launches = launched.len() as u32;
    prop_assert!(
        n_launches == 0 || od_in_service.len() as u32 >= in_flight + n_launches + floor,
        "od {} in flight {} launches {} floor {}",
        od_in_service.len(),
        in_flight,
        n_launches,
        floor
    );

    // (c) launches ≤ replace-per-cycle
    prop_assert!(n_launches <= policy.replace_per_cycle);

    // (d) no instance is both launched for and retired, and none is launched for twice
    let launched_set: BTreeSet<&str> = launched.iter().copied().collect();
    prop_assert_eq!(launched_set.len(), launched.len());
    prop_assert!(launched_set.is_disjoint(&retired_set));

    // every launch is for an eligible instance, with no live launch of ours already
    for id in &launched {
        let m = member(id).unwrap();
        let i = &instances[*id];
        prop_assert!(m.state == MemberState::InService && m.healthy && !m.protected_from_scale_in);
        prop_assert!(i.lifecycle == Lifecycle::OnDemand && i.state == InstanceState::Running);
        prop_assert!(i.termination_protected != Some(true));
        prop_assert!(!instances.values().filter(ours).any(|l| l.replaces() == Some(*id)));
    }
    if n_launches > 0 {
        prop_assert!(in_service >= g.desired);
        prop_assert!(skip_reason(plan).is_none());
    }

    // (g) only our own launches, outside the group, are attached or terminated directly:
    //     TerminateInstances on a member would drop capacity without decrementing desired
    for a in &plan.actions {
        let target = match &a.kind {
            ActionKind::TerminateLaunch { instance } | ActionKind::MarkAttached { instance } => instance,
            ActionKind::Attach { instance, .. } => instance,
            _ => continue,
        };
        let i = instances.get(target.as_str());
        prop_assert!(
            i.is_some_and(|i| i.tag(tags::GROUP) == Some(GROUP)),
            "{:?} on an instance not ours",
            a
        );
        if let ActionKind::TerminateLaunch { .. } | ActionKind::Attach { .. } = &a.kind {
            prop_assert!(member(target).is_none(), "{:?} on a member", a);
        }
        if let ActionKind::Attach { replaces, .. } = &a.kind {
            let i = i.unwrap();
            prop_assert!(i.state == InstanceState::Running && i.status_ok == Some(true));
            prop_assert!(member(replaces).is_some_and(|m| m.state != MemberState::Leaving));
        }
    }
    // MaxSize is raised before any attach that would not fit
    let attaches = plan
        .actions
        .iter()
        .filter(|a| matches!(a.kind, ActionKind::Attach { .. }))
        .count() as u32;
    if g.desired + attaches > g.max_size {
        let raised = plan
            .actions
            .iter()
            .position(|a| matches!(a.kind, ActionKind::RaiseMax { .. }));
        let first_attach = plan
            .actions
            .iter()
            .position(|a| matches!(a.kind, ActionKind::Attach { .. }));
        prop_assert!(raised < first_attach && raised.is_some());
        if let Some(ActionKind::RaiseMax { to, .. }) = raised.map(|i| &plan.actions[i].kind) {
            prop_assert!(*to >= g.desired + attaches);
        }
    }

    // MaxSize is restored only with no swap left in flight and desired within the original
    if let Some(to) = plan.actions.iter().find_map(|a| match a.kind {
        ActionKind::RestoreMax { to } => Some(to),
        _ => None,
    }) {
        prop_assert_eq!(
            Some(to.to_string()),
            g.tags.get(tags::MAX_RAISED_FROM).map(|v| v.trim().to_string())
        );
        prop_assert!(g.desired <= to);
        prop_assert!(attaches == 0);
        let live = |m: Option<&Member>| m.is_some_and(|m| m.state != MemberState::Leaving);
        let swap_in_flight = instances.values().filter(ours).any(|l| {
            !ended.contains(l.id.as_str())
                && member(&l.id).is_none_or(|lm| lm.state != MemberState::Leaving)
                && live(l.replaces().and_then(&member))
        });
        prop_assert!(!swap_in_flight, "RestoreMax with a swap in flight");
    }

    // nothing touches an instance of another group's launch
    for a in &plan.actions {
        if let Some(id) = a.instance.as_deref() {
            let foreign = instances
                .get(id)
                .is_some_and(|i| i.tag(tags::GROUP).is_some_and(|g| g != GROUP));
            prop_assert!(!foreign, "{:?} touches a foreign launch", a);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn every_plan_keeps_the_invariants(gen in gen_group()) {
        let fleet = gen.fleet();
        let plan = fleet.plan();
        check_plan(&fleet, &plan)?;
    }

    #[test]
    fn planning_is_deterministic(gen in gen_group()) {
        // (e) same input, same plan; and the order AWS lists members or instances in is moot
        let fleet = gen.fleet();
        let plan = fleet.plan();
        prop_assert_eq!(&fleet.plan(), &plan);
        let shuffled = gen.fleet_in_order(&gen.shuffle);
        prop_assert_eq!(&shuffled.plan(), &plan);
        let reversed: Vec<u32> = (0..24u32).rev().collect();
        prop_assert_eq!(&gen.fleet_in_order(&reversed).plan(), &plan);
    }

    #[test]
    fn a_converging_fleet_keeps_the_invariants_every_cycle(
        n in 1u32..=8,
        pct in prop_oneof![Just(0u32), Just(50u32), 0u32..=100],
        base in 0u32..=3,
        rpc in 1u32..=4,
    ) {
        // GIVEN an all-on-demand group; WHEN cycles run and an ideal executor applies each
        // plan (launches become ready, attach, turn InService, the grace passes)
        // THEN every plan keeps the invariants, and the group converges to the floor
        let mut fleet = on_demand_fleet(n)
            .max(n)
            .tag(tags::ON_DEMAND_PERCENT, &pct.to_string())
            .tag(tags::ON_DEMAND_BASE, &base.to_string())
            .tag(tags::REPLACE_PER_CYCLE, &rpc.to_string())
            .tag(tags::MAX_POOL_PERCENT, "100")
            .with_group(|g| g.health_check_grace_secs = 0);
        let floor = spotswap_core::policy::required_on_demand(n, base, pct);
        let mut converged = false;
        for cycle in 0..40 {
            let plan = fleet.plan();
            check_plan(&fleet, &plan)?;
            let in_service = fleet.group.members.iter().filter(|m| m.state == MemberState::InService).count();
            prop_assert!(in_service as u32 >= n, "cycle {}: InService {} < {}", cycle, in_service, n);
            if plan.actions.iter().all(|a| a.reason == Reason::AtRiskFloor) {
                converged = true;
                break;
            }
            fleet = apply(fleet, &plan);
        }
        prop_assert!(converged);
        prop_assert_eq!(fleet.plan().census.on_demand, floor);
        prop_assert_eq!(fleet.group.desired, n);
        prop_assert_eq!(fleet.group.max_size, n);
    }
}

/// An ideal executor: applies a plan to the fleet the way AWS would, then lets five minutes
/// pass: pending launches run and pass their checks, Pending members go InService.
fn apply(mut fleet: Fleet, plan: &GroupPlan) -> Fleet {
    let now = fleet.now;
    for a in &plan.actions {
        match &a.kind {
            ActionKind::Launch(spec) => {
                // unique per cycle and original, never reused after a retire
                let id = format!("i-sw{}-{}", fleet.now.secs_since(NOW) / 60, spec.replaces);
                let mut f = fleet.raw_launch(
                    &id,
                    GROUP,
                    &spec.replaces,
                    InstanceState::Pending,
                    None,
                    None,
                    None,
                );
                f.instances.get_mut(&id).unwrap().instance_type =
                    spec.candidates[0].pool.instance_type.clone();
                fleet = f;
            }
            ActionKind::RaiseMax { from, to } => {
                fleet.group.max_size = *to;
                fleet
                    .group
                    .tags
                    .insert(tags::MAX_RAISED_FROM.into(), from.to_string());
            }
            ActionKind::Attach { instance, .. } => {
                assert!(
                    fleet.group.desired < fleet.group.max_size,
                    "attach beyond MaxSize"
                );
                fleet.group.desired += 1;
                fleet.group.members.push(Member {
                    id: instance.clone(),
                    state: MemberState::Pending,
                    healthy: true,
                    protected_from_scale_in: false,
                });
                fleet
                    .instances
                    .get_mut(instance)
                    .unwrap()
                    .tags
                    .insert(tags::ATTACHED_AT.into(), now.to_rfc3339());
            }
            ActionKind::MarkAttached { instance } => {
                fleet
                    .instances
                    .get_mut(instance)
                    .unwrap()
                    .tags
                    .insert(tags::ATTACHED_AT.into(), now.to_rfc3339());
            }
            ActionKind::Retire { instance, .. } => {
                fleet.group.desired -= 1;
                fleet.group.members.retain(|m| &m.id != instance);
                fleet.instances.remove(instance);
            }
            ActionKind::TerminateLaunch { instance } => {
                fleet.instances.remove(instance);
            }
            ActionKind::RestoreMax { to } => {
                fleet.group.max_size = *to;
                fleet.group.tags.remove(tags::MAX_RAISED_FROM);
            }
            ActionKind::Wait => {}
            other => panic!("the rebalancer planned a non-rebalancer action: {other:?}"),
        }
    }
    for i in fleet.instances.values_mut() {
        if i.tag(tags::GROUP).is_some() && i.state == InstanceState::Pending {
            i.state = InstanceState::Running;
            i.status_ok = Some(true);
        }
    }
    for m in &mut fleet.group.members {
        if m.state == MemberState::Pending {
            m.state = MemberState::InService;
        }
    }
    fleet.now = fleet.now.plus_minutes(5);
    fleet
}
