//! Cooldown, no-capacity and the diversification cap.

use super::*;

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

#[test]
fn savings_count_against_the_instance_replaced_not_the_replacements_type() {
    // GIVEN an r5.large spot instance of ours (16 GiB) that replaced an on-demand m5.large (8)
    let market = spotswap_core::testkit::market();
    let spot_price = market.spot_price(&Pool::new("r5.large", A)).unwrap();
    let od = |t: &str| market.on_demand_price(t).unwrap();
    let fleet = Fleet::new()
        .spot("i-s1", "r5.large", A)
        .desired(1)
        .edit_instance("i-s1", |i| {
            i.tags
                .insert(tags::REPLACES_TYPE.to_string(), "m5.large".to_string());
        });
    // WHEN the cycle counts the group
    let census = fleet.plan().census;
    // THEN the saving is what the m5.large cost on-demand less the spot price, not the
    // larger type's on-demand price
    assert!(
        (census.hourly_savings - (od("m5.large") - spot_price).max(0.0)).abs() < 1e-12,
        "{census:?}"
    );
    assert!(od("r5.large") - spot_price > census.hourly_savings + 1e-9);
    // AND a spot instance that replaced nothing of ours counts against its own type
    let own = Fleet::new().spot("i-s2", "r5.large", A).desired(1).plan().census;
    assert!((own.hourly_savings - (od("r5.large") - spot_price)).abs() < 1e-12);
}
