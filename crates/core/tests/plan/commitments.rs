//! Commitments in the plan: covered on-demand instances kept (`CommitmentCovered`), spot
//! filled back under an unused commitment (`CommitmentUnused`), `strict` while unknown.

use spotswap_core::commitments::{Commitments, PlanKind, PlanRate, ReservedInstances, SavingsPlan};
use spotswap_core::Timestamp;

use super::*;

fn ri(id: &str, t: &str, az: Option<&str>, count: u32) -> ReservedInstances {
    ReservedInstances {
        id: id.into(),
        instance_type: t.into(),
        az: az.map(str::to_string),
        count,
        platform: "Linux/UNIX".into(),
        tenancy: "default".into(),
        start: Timestamp::from_unix(0),
        end: NOW.plus_secs(86_400),
    }
}

fn with_ris(f: Fleet, ris: Vec<ReservedInstances>) -> Fleet {
    f.commitments(Some(Commitments {
        reserved: ris,
        savings_plans: vec![],
    }))
}

fn waits_of(plan: &GroupPlan, reason: Reason) -> Vec<(&str, Option<&str>)> {
    plan.actions
        .iter()
        .filter(|a| a.kind == ActionKind::Wait && a.reason == reason)
        .map(|a| (a.instance.as_deref().unwrap_or(""), a.commitment.as_deref()))
        .collect()
}

#[test]
fn a_covered_on_demand_instance_is_not_swapped_and_the_next_one_is() {
    // GIVEN three on-demand m5.large and a zonal RI covering the one in A
    let fleet = with_ris(on_demand_fleet(3), vec![ri("ri-a", "m5.large", Some(A), 1)])
        .tag(spotswap_core::tags::REPLACE_PER_CYCLE, "3");
    // WHEN the rebalancer plans
    let plan = fleet.plan();
    // THEN the one in A waits, naming the RI, and the other two are swapped
    assert_eq!(
        waits_of(&plan, Reason::CommitmentCovered),
        vec![("i-od00", Some("ri-a"))]
    );
    let mut swapped = launched_for(&plan);
    swapped.sort();
    assert_eq!(swapped, vec!["i-od01", "i-od02"]);
}

#[test]
fn units_another_instance_would_take_over_do_not_hold_a_swap() {
    // GIVEN two on-demand m5.large and a regional RI for one, with one swap a cycle
    let fleet = with_ris(on_demand_fleet(2), vec![ri("ri-r", "m5.large", None, 1)]);
    // WHEN the rebalancer plans
    let plan = fleet.clone().plan();
    // THEN one is swapped: the other inherits the RI
    assert_eq!(launched_for(&plan).len(), 1, "{:?}", plan.actions);
    // AND with the swap in flight, the instance left is held (its original is leaving)
    let original = launched_for(&plan)[0].to_string();
    let in_flight = fleet.launch("i-l1", &original, Stage::Booting);
    let plan = in_flight.plan();
    assert!(launched_for(&plan).is_empty(), "{:?}", plan.actions);
    assert_eq!(
        waits_of(&plan, Reason::CommitmentCovered).len(),
        1,
        "{:?}",
        plan.actions
    );
}

#[test]
fn unmanaged_usage_takes_the_units_first() {
    // GIVEN an RI for one m5.large, already used by an unmanaged instance of the region
    let fleet = with_ris(on_demand_fleet(1), vec![ri("ri-r", "m5.large", None, 1)]).unmanaged(
        "i-aaaa-unmanaged",
        "m5.large",
        A,
    );
    // THEN the group's on-demand instance is swapped
    assert_eq!(launched_for(&fleet.plan()), vec!["i-od00"]);
}

#[test]
fn fill_launches_on_demand_for_spot_under_an_unused_ri_within_replace_per_cycle() {
    // GIVEN three spot m5.large, an RI for two, the group tagged fill, one swap a cycle
    let fleet = Fleet::new()
        .spot("i-s1", "m5.large", A)
        .spot("i-s2", "m5.large", B)
        .spot("i-s3", "m5.large", C)
        .desired(3)
        .tag(spotswap_core::tags::COMMITMENTS, "fill");
    let fleet = with_ris(fleet, vec![ri("ri-fill", "m5.large", None, 2)]);
    // WHEN the rebalancer plans
    let plan = fleet.clone().plan();
    // THEN one on-demand launch replaces a spot member, naming the RI
    let launches: Vec<_> = plan
        .actions
        .iter()
        .filter(|a| matches!(a.kind, ActionKind::Launch(_)))
        .collect();
    assert_eq!(launches.len(), 1, "{:?}", plan.actions);
    assert_eq!(launches[0].reason, Reason::CommitmentUnused);
    assert_eq!(launches[0].commitment.as_deref(), Some("ri-fill"));
    let ActionKind::Launch(spec) = &launches[0].kind else {
        unreachable!()
    };
    assert_eq!(spec.purchase, spotswap_core::Purchase::OnDemand);
    // AND under keep, nothing is launched
    let keep = fleet.tag(spotswap_core::tags::COMMITMENTS, "keep");
    assert!(launched_for(&keep.plan()).is_empty());
}

#[test]
fn strict_holds_new_swaps_while_commitments_are_unknown_and_keep_does_not() {
    let fleet = on_demand_fleet(2).commitments(None);
    // GIVEN unknown commitments: keep swaps as without them
    assert_eq!(launched_for(&fleet.clone().plan()).len(), 1);
    // AND strict starts nothing, skipped with CommitmentsUnknown
    let plan = fleet.tag(spotswap_core::tags::COMMITMENTS, "strict").plan();
    assert!(launched_for(&plan).is_empty());
    assert_eq!(skip_reason(&plan), Some(Reason::CommitmentsUnknown));
}

#[test]
fn a_covered_swap_is_not_counted_as_saving() {
    // GIVEN a spot member that replaced an m5.large, and a Savings Plan with room for it
    let fleet = Fleet::new().spot("i-s1", "m5.large", A).desired(1);
    let plain = fleet.clone().plan().census.hourly_savings;
    assert!(plain > 0.0);
    let sp = SavingsPlan {
        id: "sp-1".into(),
        kind: PlanKind::Compute,
        commitment_micros: 1_000_000,
        start: Timestamp::from_unix(0),
        end: NOW.plus_secs(86_400),
        rates: vec![PlanRate {
            instance_type: "m5.large".into(),
            platform: "Linux/UNIX".into(),
            tenancy: "default".into(),
            rate_micros: 50_000,
        }],
    };
    let covered = fleet.commitments(Some(Commitments {
        reserved: vec![],
        savings_plans: vec![sp],
    }));
    // THEN the swap saves nothing: the plan would have paid for the on-demand original
    assert_eq!(covered.plan().census.hourly_savings, 0.0);
}

/// On-demand `i-od0` (A) and `i-od1` (B), both launched from version 6 of the group's template
/// while it launches 7 today, tagged `spotswap:replace-outdated=true`, floor 0, two swaps a cycle.
fn outdated_pair() -> Fleet {
    let mut f = on_demand_fleet(2)
        .tag(spotswap_core::tags::REPLACE_OUTDATED, "true")
        .tag(spotswap_core::tags::REPLACE_PER_CYCLE, "2")
        .with_group(|g| g.template_version_now = Some("7".into()));
    let id = match &f.group.launch_source {
        LaunchSource::Template(t) => t.id.clone().unwrap_or_default(),
        _ => unreachable!(),
    };
    for inst in f.instances.values_mut() {
        inst.tags.insert(tags::AWS_LT_ID.into(), id.clone());
        inst.tags.insert(tags::AWS_LT_VERSION.into(), "6".into());
    }
    f
}

/// Each member replaced for `reason`, with its replacement's purchase option and the
/// commitment named.
fn replaced_for(plan: &GroupPlan, reason: Reason) -> Vec<(&str, spotswap_core::Purchase, Option<&str>)> {
    plan.actions
        .iter()
        .filter(|a| a.reason == reason)
        .filter_map(|a| match &a.kind {
            ActionKind::Launch(s) => Some((s.replaces.as_str(), s.purchase, a.commitment.as_deref())),
            _ => None,
        })
        .collect()
}

/// Each rolled-out member (`OutdatedTemplate`).
fn rolled(plan: &GroupPlan) -> Vec<(&str, spotswap_core::Purchase, Option<&str>)> {
    replaced_for(plan, Reason::OutdatedTemplate)
}

#[test]
fn a_rollout_keeps_a_covered_on_demand_member_on_demand() {
    use spotswap_core::Purchase::{OnDemand, Spot};
    // GIVEN two outdated on-demand members above a floor of 0: without commitments both are
    //   rolled onto spot, as the ordinary swap would have made them
    assert_eq!(
        rolled(&outdated_pair().plan()),
        vec![("i-od00", Spot, None), ("i-od01", Spot, None)]
    );
    // WHEN a zonal RI covers the one in A
    let plan = with_ris(outdated_pair(), vec![ri("ri-a", "m5.large", Some(A), 1)]).plan();
    // THEN its replacement stays on-demand (of its type, in its AZ), naming the RI; the other
    //   goes to spot
    assert_eq!(
        rolled(&plan),
        vec![("i-od00", OnDemand, Some("ri-a")), ("i-od01", Spot, None)]
    );
    let spec = launches(&plan)[0];
    assert_eq!(candidate_types(spec), vec!["m5.large"]);
    assert_eq!(spec.candidates[0].pool.az, A);
    // AND no new swap to spot starts for it behind the rollout's back
    assert!(
        waits_of(&plan, Reason::CommitmentCovered).is_empty(),
        "{:?}",
        plan.actions
    );
}

#[test]
fn a_rollout_goes_to_spot_where_another_member_takes_the_coverage_over() {
    use spotswap_core::Purchase::{OnDemand, Spot};
    // GIVEN a regional RI for one m5.large under two outdated on-demand members
    let plan = with_ris(outdated_pair(), vec![ri("ri-r", "m5.large", None, 1)]).plan();
    // THEN the first goes to spot (the second inherits the RI) and the second, now the only
    //   one the RI covers, stays on-demand: the RI is never left unused
    assert_eq!(
        rolled(&plan),
        vec![("i-od00", Spot, None), ("i-od01", OnDemand, Some("ri-r"))]
    );
}

#[test]
fn a_floor_restore_takes_units_the_next_group_cannot_fill_again() {
    // GIVEN an unused zonal RI for one m5.large in C; group `a` below its floor of one
    //   on-demand with a spot m5.large in C, and group `b` tagged fill with another, planned after
    let a = Fleet::new()
        .named("a")
        .spot("i-a-s1", "m5.large", C)
        .desired(1)
        .tag(tags::ON_DEMAND_BASE, "1");
    let b = Fleet::new()
        .named("b")
        .spot("i-b-s1", "m5.large", C)
        .desired(1)
        .tag(tags::COMMITMENTS, "fill");
    let a = with_ris(a, vec![ri("ri-c", "m5.large", Some(C), 1)]);
    let mut snap = a.snapshot();
    snap.groups.push(b.group.clone());
    snap.instances.extend(b.instances.clone());
    // WHEN the rebalancer plans both
    let plans = plan_cycle(&snap, &a.settings());
    // THEN a restores its floor on-demand (using the RI), and b fills nothing: the unit is taken
    let od: Vec<(&str, Reason)> = plans
        .iter()
        .flat_map(|p| p.actions.iter())
        .filter(
            |x| matches!(&x.kind, ActionKind::Launch(s) if s.purchase == spotswap_core::Purchase::OnDemand),
        )
        .map(|x| (x.group.as_str(), x.reason))
        .collect();
    assert_eq!(od, vec![("a", Reason::BelowRiskFloor)], "{plans:?}");
}

#[test]
fn a_covered_on_demand_member_scheduled_for_retirement_is_replaced_on_demand() {
    use spotswap_core::Purchase::{OnDemand, Spot};
    // GIVEN two on-demand members above a floor of 0, both scheduled for retirement by EC2:
    //   without commitments both are replaced by spot
    let retiring = || {
        on_demand_fleet(2)
            .tag(spotswap_core::tags::REPLACE_PER_CYCLE, "2")
            .scheduled("i-od00", "instance-retirement", NOW.plus_secs(86_400))
            .scheduled("i-od01", "instance-retirement", NOW.plus_secs(86_400))
    };
    assert_eq!(
        replaced_for(&retiring().plan(), Reason::ScheduledChange),
        vec![("i-od00", Spot, None), ("i-od01", Spot, None)]
    );
    // WHEN a zonal RI covers the one in A
    let plan = with_ris(retiring(), vec![ri("ri-a", "m5.large", Some(A), 1)]).plan();
    // THEN its replacement is on-demand, naming the RI, so the RI stays used; the other goes to
    //   spot
    assert_eq!(
        replaced_for(&plan, Reason::ScheduledChange),
        vec![("i-od00", OnDemand, Some("ri-a")), ("i-od01", Spot, None)]
    );
}
