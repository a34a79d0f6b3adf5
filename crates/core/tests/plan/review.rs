//! Why candidate types were turned down: the review `spotswap plan --output json` shows.

use spotswap_core::candidates::{Incompatibility, Rejection};
use spotswap_core::plan::{review_group, CandidateReview};
use spotswap_core::InstanceTypeSpec;

use super::*;

fn review(fleet: &Fleet, plan: &GroupPlan) -> Vec<CandidateReview> {
    let policy = Policy::from_tags(&fleet.group.tags, &Policy::default()).unwrap();
    review_group(
        &fleet.group,
        &fleet.instances,
        &fleet.market,
        &policy,
        fleet.now,
        &plan.actions,
    )
}

fn reasons(r: &CandidateReview) -> BTreeMap<&str, &str> {
    r.rejected
        .iter()
        .map(|x| (x.instance_type.as_str(), x.reason.code()))
        .collect()
}

#[test]
fn each_type_of_the_az_is_a_candidate_or_has_its_reason() {
    // GIVEN one on-demand m5.large above a floor of 0, and a burstable t3.large on offer
    let mut fleet = Fleet::new().on_demand("i-od1", A).desired(1);
    fleet.market.types.insert(
        "t3.large".into(),
        InstanceTypeSpec {
            burstable: true,
            ..fleet.market.types["m5.large"].clone()
        },
    );
    fleet.market.spot_prices.insert(Pool::new("t3.large", A), 0.001);
    // WHEN the rebalancer plans a cycle and the plan is reviewed
    let plan = fleet.plan();
    let reviews = review(&fleet, &plan);
    // THEN the one launch has one review, of its original
    assert_eq!(reviews.len(), 1);
    let r = &reviews[0];
    assert_eq!(
        (r.instance.as_str(), r.instance_type.as_str(), r.az.as_str()),
        ("i-od1", "m5.large", A)
    );
    // AND each turned-down type has its reason
    let want: BTreeMap<&str, &str> = [
        ("c5.large", "TooLittleMemory"),
        ("m6g.large", "ArchitectureMismatch"),
        ("t3.large", "BurstableNotAllowed"),
    ]
    .into_iter()
    .collect();
    assert_eq!(reasons(r), want);
    // AND together with the launch's candidates they are every pool of the AZ
    let offered: BTreeSet<&str> = candidate_types(launches(&plan)[0]).into_iter().collect();
    let rejected: BTreeSet<&str> = reasons(r).into_keys().collect();
    assert!(offered.is_disjoint(&rejected));
    let all: BTreeSet<&str> = fleet
        .market
        .spot_prices
        .keys()
        .filter(|p| p.az == A)
        .map(|p| p.instance_type.as_str())
        .collect();
    assert_eq!(&offered | &rejected, all);
}

#[test]
fn an_allowed_glob_lets_a_burstable_type_in() {
    // GIVEN the same, with allowed-types naming t3.*
    let mut fleet = Fleet::new()
        .on_demand("i-od1", A)
        .desired(1)
        .tag(tags::ALLOWED_TYPES, "m5.*,t3.*");
    fleet.market.types.insert(
        "t3.large".into(),
        InstanceTypeSpec {
            burstable: true,
            ..fleet.market.types["m5.large"].clone()
        },
    );
    fleet.market.spot_prices.insert(Pool::new("t3.large", A), 0.001);
    // WHEN planned and reviewed
    let plan = fleet.plan();
    let reviews = review(&fleet, &plan);
    // THEN t3.large is the cheapest candidate, and the others are outside the globs
    assert_eq!(candidate_types(launches(&plan)[0])[0], "t3.large");
    assert_eq!(reasons(&reviews[0]).get("m6i.large"), Some(&"NotInAllowedTypes"));
    assert!(!reasons(&reviews[0]).contains_key("t3.large"));
}

#[test]
fn a_swap_without_a_pool_is_reviewed_and_the_cap_is_named() {
    // GIVEN two on-demand in one AZ, two swaps a cycle, one pool per swap at most (50 % of 2),
    //   and only m5.large compatible
    let fleet = Fleet::new()
        .on_demand("i-od1", A)
        .on_demand("i-od2", A)
        .desired(2)
        .tag(tags::REPLACE_PER_CYCLE, "2")
        .tag(tags::ALLOWED_TYPES, "m5.large");
    // WHEN planned and reviewed
    let plan = fleet.plan();
    let reviews = review(&fleet, &plan);
    // THEN the first launches into m5.large; the second has no pool, because of the cap
    assert_eq!(
        steps(&plan).iter().map(|(n, r, _)| (*n, *r)).collect::<Vec<_>>(),
        vec![
            ("launch", Reason::OnDemandAboveFloor),
            ("wait", Reason::NoEligiblePool)
        ]
    );
    assert_eq!(reviews.len(), 2);
    assert!(!reasons(&reviews[0]).contains_key("m5.large"));
    assert_eq!(
        reviews[1]
            .rejected
            .iter()
            .find(|x| x.instance_type == "m5.large")
            .map(|x| x.reason),
        Some(Rejection::PoolAtCap)
    );
    // AND the other types are outside the glob, before any compatibility rule
    assert!(reviews[1]
        .rejected
        .iter()
        .filter(|x| x.instance_type != "m5.large")
        .all(|x| x.reason == Rejection::NotInAllowedTypes));
    assert!(!reviews[1].rejected.iter().any(|x| matches!(
        x.reason,
        Rejection::Incompatible(Incompatibility::TooLittleMemory)
    )));
}

#[test]
fn a_plan_without_new_swaps_has_no_review() {
    let fleet = Fleet::new().spot("i-s1", "m5.large", A).desired(1);
    let plan = fleet.plan();
    assert!(review(&fleet, &plan).is_empty());
}
