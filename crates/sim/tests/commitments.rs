#![allow(clippy::unwrap_used)] // test and example code: a panic is the report
//! Commitments in the simulator: billed as AWS bills them (fees paid used or not, covered
//! usage free, the rest on-demand), and the real core planning with them.

use std::path::Path;

use spotswap_sim::{run, PolicyName, Scenario};

fn two(commitments: &str, tags: &str) -> Scenario {
    let text = format!(
        r#"
name: two-instances
hours: 10
boot_seconds: 0
pools:
  - {{type: m5.large, az: us-east-1a, spot_price: 0.03, on_demand_price: 0.096}}
groups:
  - {{name: pair, instance_type: m5.large, azs: [us-east-1a], desired: 2, tags: {{{tags}}}}}
commitments: {commitments}
"#
    );
    Scenario::parse(&text, Path::new(".")).unwrap()
}

#[test]
fn an_ri_and_a_savings_plan_cost_what_a_hand_computes_to_the_cent() {
    // GIVEN two m5.large for 10 hours (0.096 $/h on-demand, 0.03 $/h spot) and a regional RI
    //   for one at an effective 0.06 $/h
    let ri = "{reserved_instances: [{type: m5.large, count: 1, hourly_price: 0.06}]}";
    let r = run(&two(ri, ""), &[PolicyName::OnDemand, PolicyName::SingleType]).to_json();
    let p = &r["policies"];
    // THEN on-demand: the RI's fee covers one, the other pays on-demand: 10 × (0.06 + 0.096)
    assert_eq!(p[0]["cost"], 1.56);
    assert_eq!(p[0]["commitment_unused"], 0.0);
    // AND spot for both pays the idle RI on top: 10 × (2 × 0.03 + 0.06)
    assert_eq!(p[1]["cost"], 1.2);
    assert_eq!(p[1]["commitment_unused"], 0.6);
    // AND the baseline stays the desired capacity on-demand: 2 × 0.096 × 10
    assert_eq!(p[0]["on_demand_cost"], 1.92);

    // GIVEN also a Compute Savings Plan of 0.024 $/h at a rate of 0.048 $/h for m5.large
    let both = "{reserved_instances: [{type: m5.large, count: 1, hourly_price: 0.06}],
                 savings_plans: [{kind: Compute, commitment: 0.024, rates: {m5.large: 0.048}}]}";
    let r = run(&two(both, ""), &[PolicyName::OnDemand]).to_json();
    // THEN the plan covers half of the second instance's hour, the other half pays on-demand:
    //   10 × (0.06 + 0.024 + 0.096 / 2)
    assert_eq!(r["policies"][0]["cost"], 1.32);
    assert_eq!(r["policies"][0]["commitment_unused"], 0.0);

    // GIVEN a plan big enough for the whole instance THEN 10 × (0.06 + 0.06), 0.012 $/h unused
    let big = "{reserved_instances: [{type: m5.large, count: 1, hourly_price: 0.06}],
                savings_plans: [{kind: EC2Instance, family: m5, commitment: 0.06, discount: 0.5}]}";
    let r = run(&two(big, ""), &[PolicyName::OnDemand]).to_json();
    assert_eq!(r["policies"][0]["cost"], 1.2);
    assert_eq!(r["policies"][0]["commitment_unused"], 0.12);
}

#[test]
fn spotswap_keeps_the_covered_instances_and_swaps_the_rest() {
    // GIVEN a managed pair and a zonal RI for one of them
    let ri = "{reserved_instances: [{type: m5.large, az: us-east-1a, count: 1, hourly_price: 0.06}]}";
    let s = two(ri, r#""spotswap:enabled": "true""#);
    let r = run(&s, &[PolicyName::Spotswap, PolicyName::Autospotting]);
    let (ours, autospotting) = (&r.policies[0], &r.policies[1]);
    // THEN spotswap never leaves the RI unused, and swaps only the uncovered instance
    assert_eq!(ours.commitment_unused, 0.0);
    assert_eq!(ours.swaps, 1);
    assert!(ours.violations.is_empty(), "{:?}", ours.violations);
    // AND autospotting, swapping both, pays the idle RI and more in all
    assert!(autospotting.commitment_unused > 0.0);
    assert!(
        ours.cost < autospotting.cost,
        "{} vs {}",
        ours.cost,
        autospotting.cost
    );
}

#[test]
fn the_shipped_scenario_shows_the_money_effect_and_fill_takes_idle_units_back() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sim/scenarios");
    let s = Scenario::load(&dir.join("commitments.yaml")).unwrap();
    let r = run(&s, &PolicyName::ALL);
    let ours = &r.policies[0];
    assert!(ours.violations.is_empty(), "{:?}", ours.violations);
    // THEN every policy that swaps or runs spot without regard to the commitments leaves more
    //   of them idle, and spends more, than spotswap
    for p in &r.policies[1..4] {
        assert!(p.commitment_unused > ours.commitment_unused, "{}", p.policy);
        assert!(p.cost > ours.cost, "{}: {} vs {}", p.policy, p.cost, ours.cost);
    }
    // AND without fill (keep), the units web's scale-in frees stay idle longer
    let mut keep = s.clone();
    keep.groups[1].tags.remove("spotswap:commitments");
    let k = &run(&keep, &[PolicyName::Spotswap]).policies[0];
    assert!(
        k.commitment_unused > ours.commitment_unused,
        "{} vs {}",
        k.commitment_unused,
        ours.commitment_unused
    );
    // AND before the scale-in (the first 8 hours), spotswap leaves nothing idle
    let mut before = s.clone();
    before.hours = 8.0;
    before.events.clear();
    let b = &run(&before, &[PolicyName::Spotswap]).policies[0];
    assert_eq!(b.commitment_unused, 0.0);
}

#[test]
fn bad_commitments_name_their_field() {
    for (commitments, field) in [
        ("[1, 2]", "commitments: "),
        ("{reserved: []}", "commitments.reserved: "),
        (
            "{reserved_instances: [{type: m5.large, count: 0, hourly_price: 0.06}]}",
            "commitments.reserved_instances[0].count: ",
        ),
        (
            "{reserved_instances: [{type: m5.large, count: 1}]}",
            "commitments.reserved_instances[0].hourly_price: ",
        ),
        (
            "{reserved_instances: [{type: m5.large, az: eu-west-1a, count: 1, hourly_price: 0.06}]}",
            "commitments.reserved_instances[0].az: ",
        ),
        (
            "{reserved_instances: [{type: m5.large, count: 1, hourly_price: 0.06, tenancy: cloud}]}",
            "commitments.reserved_instances[0].tenancy: ",
        ),
        (
            "{savings_plans: [{kind: Reserved, commitment: 1, discount: 0.2}]}",
            "commitments.savings_plans[0].kind: ",
        ),
        (
            "{savings_plans: [{kind: EC2Instance, commitment: 1, discount: 0.2}]}",
            "commitments.savings_plans[0].family: ",
        ),
        (
            "{savings_plans: [{kind: Compute, commitment: 0, discount: 0.2}]}",
            "commitments.savings_plans[0].commitment: ",
        ),
        (
            "{savings_plans: [{kind: Compute, commitment: 1, discount: 1.5}]}",
            "commitments.savings_plans[0].discount: ",
        ),
        (
            "{savings_plans: [{kind: Compute, commitment: 1}]}",
            "commitments.savings_plans[0].discount: ",
        ),
        (
            "{savings_plans: [{kind: Compute, commitment: 1, rates: {c5.large: 0.05}}]}",
            "commitments.savings_plans[0].rates.c5.large: ",
        ),
    ] {
        let text = format!(
            "name: x\nhours: 1\npools: [{{type: m5.large, az: a, spot_price: 0.03, on_demand_price: 0.096}}]\n\
             groups: [{{name: g, instance_type: m5.large, azs: [a], desired: 1}}]\ncommitments: {commitments}\n"
        );
        let e = Scenario::parse(&text, Path::new(".")).unwrap_err().to_string();
        assert!(e.starts_with(field), "{commitments}: {e}");
        assert!(!e.contains('\n'), "{e}");
    }
}
