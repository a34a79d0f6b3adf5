use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;

const NOW: Timestamp = Timestamp::from_unix(1_800_000_000);
const YEAR: i64 = 365 * 86_400;

fn usage(id: &str, t: &str, az: &str) -> Usage {
    Usage {
        instance_id: id.into(),
        instance_type: t.into(),
        az: az.into(),
        platform: LINUX_UNIX.into(),
        tenancy: DEFAULT_TENANCY.into(),
    }
}

fn ri(id: &str, t: &str, az: Option<&str>, count: u32) -> ReservedInstances {
    ReservedInstances {
        id: id.into(),
        instance_type: t.into(),
        az: az.map(str::to_string),
        count,
        platform: LINUX_UNIX.into(),
        tenancy: DEFAULT_TENANCY.into(),
        start: NOW.plus_secs(-YEAR),
        end: NOW.plus_secs(YEAR),
    }
}

fn sp(id: &str, kind: PlanKind, commitment: u64, rates: &[(&str, u64)]) -> SavingsPlan {
    SavingsPlan {
        id: id.into(),
        kind,
        commitment_micros: commitment,
        start: NOW.plus_secs(-YEAR),
        end: NOW.plus_secs(YEAR),
        rates: rates
            .iter()
            .map(|(t, r)| PlanRate {
                instance_type: t.to_string(),
                platform: LINUX_UNIX.into(),
                tenancy: DEFAULT_TENANCY.into(),
                rate_micros: *r,
            })
            .collect(),
    }
}

fn od() -> BTreeMap<String, u64> {
    [("m5.large", 96_000), ("m5.xlarge", 192_000), ("c5.large", 85_000)]
        .into_iter()
        .map(|(t, p)| (t.to_string(), p))
        .collect()
}

fn run(c: &Commitments, u: &[Usage]) -> Coverage {
    cover(c, u, &od(), &Normalizer::new([]), NOW)
}

#[test]
fn the_factor_table_is_exact_in_quarter_units() {
    let n = Normalizer::new(["m5.24xlarge", "m5.large"]);
    assert_eq!(n.units("t3.nano"), Some(1));
    assert_eq!(n.units("t3.micro"), Some(2));
    assert_eq!(n.units("t3.small"), Some(4));
    assert_eq!(n.units("m5.large"), Some(16));
    assert_eq!(n.units("m5.xlarge"), Some(32));
    assert_eq!(
        n.units("m5.16xlarge"),
        Some(512),
        "16xlarge = 128 normalized units"
    );
    // metal is the family's largest size the region offers; unknown without one
    assert_eq!(n.units("m5.metal"), Some(768));
    assert_eq!(n.units("c5.metal"), None);
    assert_eq!(n.units("m5.huge"), None);
    assert_eq!(n.units("m5.0xlarge"), None);
}

#[test]
fn a_zonal_ri_covers_its_type_in_its_az_only() {
    // GIVEN a zonal m5.large RI in us-east-1a, and m5.large in 1b and 1a
    let c = Commitments {
        reserved: vec![ri("ri-z", "m5.large", Some("us-east-1a"), 1)],
        ..Default::default()
    };
    let cov = run(
        &c,
        &[
            usage("i-b", "m5.large", "us-east-1b"),
            usage("i-a", "m5.large", "us-east-1a"),
        ],
    );
    // THEN it covers the one in 1a, whole
    assert_eq!(cov.instances.keys().collect::<Vec<_>>(), vec!["i-a"]);
    assert_eq!(cov.instances["i-a"].reserved_units, 16);
    assert_eq!(cov.unused_units(), 0);
    // AND a zonal RI is not size-flexible: an m5.xlarge in its AZ is not covered
    let cov = run(&c, &[usage("i-x", "m5.xlarge", "us-east-1a")]);
    assert!(cov.instances.is_empty());
    assert_eq!(cov.unused_units(), 16);
}

#[test]
fn a_regional_ri_is_size_flexible_in_any_az() {
    // GIVEN a regional m5.xlarge RI and two m5.large in two AZs
    let c = Commitments {
        reserved: vec![ri("ri-r", "m5.xlarge", None, 1)],
        ..Default::default()
    };
    let cov = run(
        &c,
        &[
            usage("i-1", "m5.large", "us-east-1a"),
            usage("i-2", "m5.large", "us-east-1b"),
        ],
    );
    // THEN it covers both, wholly, and nothing is left unused
    assert_eq!(cov.instances["i-1"].reserved_units, 16);
    assert_eq!(cov.instances["i-2"].reserved_units, 16);
    assert_eq!(cov.unused_units(), 0);
    // AND an m5.large RI covers half of an m5.xlarge
    let c = Commitments {
        reserved: vec![ri("ri-l", "m5.large", None, 1)],
        ..Default::default()
    };
    let cov = run(&c, &[usage("i-x", "m5.xlarge", "us-east-1a")]);
    assert_eq!(cov.instances["i-x"].reserved_units, 16);
    assert_eq!(cov.instances["i-x"].size, 32);
}

#[test]
fn size_flexibility_is_for_linux_on_shared_tenancy_only() {
    // GIVEN a regional Windows m5.xlarge RI and two Windows m5.large
    let mut r = ri("ri-w", "m5.xlarge", None, 1);
    r.platform = "Windows".into();
    let c = Commitments {
        reserved: vec![r],
        ..Default::default()
    };
    let win = |id: &str, t: &str| Usage {
        platform: "Windows".into(),
        ..usage(id, t, "us-east-1a")
    };
    // THEN it covers only its exact type
    let cov = run(&c, &[win("i-1", "m5.large"), win("i-2", "m5.large")]);
    assert!(cov.instances.is_empty());
    let cov = run(&c, &[win("i-3", "m5.xlarge")]);
    assert_eq!(cov.instances["i-3"].by, vec!["ri-w"]);
    // AND a Linux instance does not use a Windows RI
    let cov = run(&c, &[usage("i-4", "m5.xlarge", "us-east-1a")]);
    assert!(cov.instances.is_empty());
}

#[test]
fn zonal_ris_apply_before_regional_ones() {
    // GIVEN a regional and a zonal RI, each for one m5.large, and one m5.large in the zone
    let c = Commitments {
        reserved: vec![
            ri("ri-a-regional", "m5.large", None, 1),
            ri("ri-b-zonal", "m5.large", Some("us-east-1a"), 1),
        ],
        ..Default::default()
    };
    let cov = run(&c, &[usage("i-1", "m5.large", "us-east-1a")]);
    // THEN the zonal one covers it and the regional one sits unused
    assert_eq!(cov.instances["i-1"].by, vec!["ri-b-zonal"]);
    let regional = cov.reserved.iter().find(|r| r.id == "ri-a-regional").unwrap();
    assert_eq!(regional.used_units, 0);
}

#[test]
fn an_expired_or_future_commitment_covers_nothing() {
    let mut old = ri("ri-old", "m5.large", None, 1);
    old.end = NOW;
    let mut later = ri("ri-later", "m5.large", None, 1);
    later.start = NOW.plus_secs(1);
    let c = Commitments {
        reserved: vec![old, later],
        ..Default::default()
    };
    let cov = run(&c, &[usage("i-1", "m5.large", "us-east-1a")]);
    assert!(cov.instances.is_empty());
    assert!(cov.reserved.is_empty());
}

#[test]
fn a_savings_plan_covers_what_ris_leave_at_its_rates_highest_discount_first() {
    // GIVEN an RI for one m5.large, a Compute plan of $0.10/h, and m5.large ×2 and c5.large
    // (m5.large at 0.06 of 0.096 saves 37.5%; c5.large at 0.06 of 0.085 saves 29%)
    let c = Commitments {
        reserved: vec![ri("ri-1", "m5.large", None, 1)],
        savings_plans: vec![sp(
            "sp-1",
            PlanKind::Compute,
            100_000,
            &[("m5.large", 60_000), ("c5.large", 60_000)],
        )],
    };
    let cov = run(
        &c,
        &[
            usage("i-a", "c5.large", "us-east-1a"),
            usage("i-b", "m5.large", "us-east-1a"),
            usage("i-c", "m5.large", "us-east-1a"),
        ],
    );
    // THEN the RI takes one m5.large, the plan the other first (the higher discount), then
    // the rest of its commitment goes to part of the c5.large
    assert_eq!(cov.instances["i-b"].by, vec!["ri-1"]);
    assert_eq!(cov.instances["i-c"].plan_micros, 60_000);
    assert_eq!(cov.instances["i-a"].plan_micros, 40_000);
    assert_eq!(cov.unused_micros(), 0);
    // AND an EC2 Instance plan of another family takes nothing
    let c = Commitments {
        savings_plans: vec![sp(
            "sp-c5",
            PlanKind::Ec2Instance { family: "c5".into() },
            100_000,
            &[("m5.large", 60_000)],
        )],
        ..Default::default()
    };
    let cov = run(&c, &[usage("i-b", "m5.large", "us-east-1a")]);
    assert_eq!(cov.unused_micros(), 100_000);
}

#[test]
fn a_plan_at_eighty_percent_utilisation() {
    // GIVEN a $0.10/h plan and one m5.large at its rate of $0.08/h
    let c = Commitments {
        savings_plans: vec![sp("sp-1", PlanKind::Compute, 100_000, &[("m5.large", 80_000)])],
        ..Default::default()
    };
    let cov = run(&c, &[usage("i-1", "m5.large", "us-east-1a")]);
    // THEN 80% is used and $0.02/h sits unused
    assert_eq!(cov.plans[0].used_micros, 80_000);
    assert_eq!(cov.unused_micros(), 20_000);
}

fn arb_usage() -> impl Strategy<Value = Vec<Usage>> {
    let types = prop::sample::select(vec![
        "m5.large",
        "m5.xlarge",
        "m5.2xlarge",
        "m5.small",
        "c5.large",
        "c5.xlarge",
    ]);
    let azs = prop::sample::select(vec!["us-east-1a", "us-east-1b"]);
    let plat = prop::sample::select(vec![LINUX_UNIX, "Windows"]);
    prop::collection::vec((types, azs, plat), 0..12).prop_map(|v| {
        v.into_iter()
            .enumerate()
            .map(|(i, (t, az, p))| Usage {
                platform: p.into(),
                ..usage(&format!("i-{i:02}"), t, az)
            })
            .collect()
    })
}

fn arb_commitments() -> impl Strategy<Value = Commitments> {
    let types = prop::sample::select(vec![
        "m5.large",
        "m5.xlarge",
        "m5.small",
        "c5.large",
        "c5.2xlarge",
    ]);
    let az = prop::option::of(prop::sample::select(vec!["us-east-1a", "us-east-1b"]));
    let ris = prop::collection::vec((types, az, 0u32..4, any::<bool>()), 0..5);
    let sps = prop::collection::vec((0u64..300_000, any::<bool>(), 10_000u64..150_000), 0..3);
    (ris, sps).prop_map(|(ris, sps)| Commitments {
        reserved: ris
            .into_iter()
            .enumerate()
            .map(|(i, (t, az, n, win))| ReservedInstances {
                platform: if win { "Windows".into() } else { LINUX_UNIX.into() },
                ..ri(&format!("ri-{i}"), t, az, n)
            })
            .collect(),
        savings_plans: sps
            .into_iter()
            .enumerate()
            .map(|(i, (c, compute, rate))| {
                let kind = if compute {
                    PlanKind::Compute
                } else {
                    PlanKind::Ec2Instance { family: "m5".into() }
                };
                let rates: Vec<(&str, u64)> = [
                    "m5.large",
                    "m5.xlarge",
                    "m5.2xlarge",
                    "m5.small",
                    "c5.large",
                    "c5.xlarge",
                ]
                .into_iter()
                .map(|t| (t, rate))
                .collect();
                sp(&format!("sp-{i}"), kind, c, &rates)
            })
            .collect(),
    })
}

proptest! {
    #[test]
    fn coverage_never_exceeds_usage_or_commitment(c in arb_commitments(), u in arb_usage()) {
        let cov = run(&c, &u);
        for r in &cov.reserved {
            prop_assert!(r.used_units <= r.owned_units);
        }
        for p in &cov.plans {
            prop_assert!(p.used_micros <= p.commitment_micros);
        }
        let norm = Normalizer::new([]);
        for u in &u {
            if let Some(ic) = cov.instances.get(&u.instance_id) {
                prop_assert!(ic.reserved_units <= norm.units(&u.instance_type).unwrap_or(1));
            }
        }
        // RI units used are exactly the units the instances got from RIs
        let by_instances: u64 = cov.instances.values().map(|i| i.reserved_units).sum();
        prop_assert_eq!(by_instances, cov.used_units());
        let plan_spent: u64 = cov.instances.values().map(|i| i.plan_micros).sum();
        prop_assert_eq!(plan_spent, cov.plans.iter().map(|p| p.used_micros).sum::<u64>());
    }

    #[test]
    fn removing_usage_never_increases_units_used(c in arb_commitments(), u in arb_usage(), k in 0usize..12) {
        prop_assume!(!u.is_empty());
        let k = k % u.len();
        let mut less = u.clone();
        less.remove(k);
        prop_assert!(run(&c, &less).used_units() <= run(&c, &u).used_units());
    }

    #[test]
    fn the_input_order_does_not_matter(c in arb_commitments(), u in arb_usage()) {
        let mut ru = u.clone();
        ru.reverse();
        let mut rc = c.clone();
        rc.reserved.reverse();
        rc.savings_plans.reverse();
        prop_assert_eq!(run(&c, &u), run(&rc, &ru));
    }
}
