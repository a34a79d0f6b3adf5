//! Which on-demand instances a cycle swaps.

use super::*;

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

#[test]
fn a_state_change_only_advances_swaps_in_flight() {
    // GIVEN a swap ready to attach, and another on-demand instance above the floor
    let fleet = swap_at(Stage::Ready);
    // WHEN an EC2 state change (our own launch's, say) invokes the rebalancer
    let plan = spotswap_core::plan_cycle_in(
        &fleet.snapshot(),
        &fleet.settings(),
        spotswap_core::Scope::AdvanceOnly,
    )
    .remove(0);
    // THEN the swap in flight advances, and no new swap starts: replace-per-cycle is per
    // schedule period, not per event
    assert!(kinds(&plan)
        .iter()
        .any(|k| matches!(k, ActionKind::Attach { .. })));
    assert!(launches(&plan).is_empty(), "{:?}", plan.actions);
    // AND the scheduled cycle of the same fleet would start one
    assert!(!launches(&fleet.plan()).is_empty());
}

#[test]
fn the_region_wide_cap_counts_swaps_already_in_flight() {
    // GIVEN three on-demand instances above the floor, room for 3 swaps a cycle, one swap
    // already in flight, and SPOTSWAP_MAX_SWAPS_IN_FLIGHT=2
    let fleet = Fleet::new()
        .on_demand("i-od1", A)
        .on_demand("i-od2", B)
        .on_demand("i-od3", C)
        .on_demand("i-od4", A)
        .launch("i-l1", "i-od4", Stage::Booting)
        .desired(4)
        .tag(tags::REPLACE_PER_CYCLE, "3");
    let mut settings = fleet.settings();
    settings.max_swaps_in_flight = Some(2);
    // WHEN the rebalancer plans a cycle
    let plan = spotswap_core::plan_cycle(&fleet.snapshot(), &settings).remove(0);
    // THEN one swap starts (2 − 1 in flight), and the others wait with the reason
    assert_eq!(launches(&plan).len(), 1, "{:?}", plan.actions);
    let waiting = plan
        .actions
        .iter()
        .filter(|a| a.reason == Reason::MaxSwapsInFlight && a.kind == ActionKind::Wait)
        .count();
    assert_eq!(waiting, 2, "{:?}", plan.actions);
    // AND without a cap all three start
    assert_eq!(launches(&fleet.plan()).len(), 3);
}

#[test]
fn a_group_below_its_floor_gets_on_demand_back_through_the_same_stages() {
    // GIVEN three spot instances and no on-demand, and a floor raised to 2 on-demand
    let fleet = Fleet::new()
        .spot("i-s1", "m5a.large", A)
        .spot("i-s2", "m5a.large", A)
        .spot("i-s3", "m6i.large", B)
        .desired(3)
        .tag(tags::ON_DEMAND_BASE, "2");
    // WHEN the rebalancer plans a cycle
    let plan = fleet.plan();
    // THEN it launches one on-demand replacement (replace-per-cycle 1) of a spot instance, in
    // the AZ holding the most spot, of that instance's own type, from the group's template
    let specs = launches(&plan);
    assert_eq!(specs.len(), 1, "{:?}", plan.actions);
    assert_eq!(plan.actions[0].reason, Reason::BelowRiskFloor);
    assert_eq!(specs[0].purchase, spotswap_core::Purchase::OnDemand);
    assert_eq!(specs[0].launch_template, spotswap_core::testkit::template());
    let replaced = &fleet.instances[&specs[0].replaces];
    assert_eq!(replaced.lifecycle, Lifecycle::Spot);
    assert_eq!(replaced.az, A);
    assert_eq!(specs[0].candidates[0].pool, replaced.pool());
    // AND with room for more a cycle, the whole deficit starts at once
    let plan = fleet.clone().tag(tags::REPLACE_PER_CYCLE, "5").plan();
    assert_eq!(launches(&plan).len(), 2);
    // AND AtRiskFloor is not what a group below its floor is told
    assert!(!plan.actions.iter().any(|a| a.reason == Reason::AtRiskFloor));
}

#[test]
fn below_the_floor_with_a_swap_in_flight_waits_for_it() {
    // GIVEN a swap to spot in flight, and the floor raised above what is left
    let plan = swap_at(Stage::Booting).tag(tags::ON_DEMAND_BASE, "2").plan();
    // THEN no restoration starts until the swap settles, and the wait says why
    assert!(!launches(&plan)
        .iter()
        .any(|s| s.purchase == spotswap_core::Purchase::OnDemand));
    assert!(plan
        .actions
        .iter()
        .any(|a| a.kind == ActionKind::Wait && a.reason == Reason::BelowRiskFloor));
}
