#![allow(clippy::unwrap_used)] // test and example code: a panic is the report
//! The shipped scenarios, the invariants of the spotswap policy inside them, and the targets.
//! A fixed-seed slice: every scenario runs in about a second in debug.

use std::path::{Path, PathBuf};

use spotswap_sim::{run, Format, PolicyName, Scenario};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sim/scenarios")
}

fn shipped() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "json")))
        .collect();
    out.sort();
    out
}

fn load(name: &str) -> Scenario {
    Scenario::load(&dir().join(name)).unwrap()
}

#[test]
fn eight_scenarios_are_shipped_and_each_loads() {
    // GIVEN the scenarios folder WHEN each is loaded THEN all load, JSON as-is included
    let files = shipped();
    assert_eq!(files.len(), 8, "{files:?}");
    for f in files {
        Scenario::load(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
    }
}

#[test]
fn the_spotswap_invariants_hold_on_every_step_of_every_shipped_scenario() {
    // GIVEN every shipped scenario WHEN the spotswap policy runs it THEN no invariant is broken:
    // (1) InService ≥ desired − losses being replaced, (2) retire only after the replacement
    // is InService, (4) no action on an unmanaged group, (5) nothing of ours outside a group
    // after a reaper pass past the orphan age, (6) no duplicate launch per original.
    for f in shipped() {
        let s = Scenario::load(&f).unwrap();
        let r = run(&s, &[PolicyName::Spotswap]);
        let p = &r.policies[0];
        assert!(
            p.violations.is_empty(),
            "{}: {:?}",
            s.name,
            &p.violations[..p.violations.len().min(5)]
        );
    }
}

#[test]
fn calm_week_spotswap_saves_at_least_65_percent_with_no_shortfall() {
    let r = run(&load("calm-week.yaml"), &[PolicyName::Spotswap]);
    let p = &r.policies[0];
    assert!(p.savings_percent() >= 65.0, "{}", p.savings_percent());
    assert_eq!(p.shortfall_instance_minutes, 0.0);
    assert_eq!(p.max_shortfall, 0);
}

#[test]
fn seed_000_wipe_spotswap_shortfall_is_at_most_a_tenth_of_aws_native() {
    let r = run(
        &load("seed-000-wipe.json"),
        &[PolicyName::Spotswap, PolicyName::AwsNative],
    );
    let (ours, native) = (&r.policies[0], &r.policies[1]);
    assert!(native.shortfall_instance_minutes > 0.0);
    assert!(
        ours.shortfall_instance_minutes <= native.shortfall_instance_minutes / 10.0,
        "{} vs {}",
        ours.shortfall_instance_minutes,
        native.shortfall_instance_minutes
    );
    assert!(ours.fallbacks > 0, "the wipe is survived on on-demand");
}

#[test]
fn same_seed_gives_byte_identical_json_and_another_seed_other_draws() {
    // GIVEN a scenario with random background interruptions
    let s = load("diurnal.yaml");
    // WHEN it runs twice THEN the JSON is byte for byte the same
    let a = run(&s, &PolicyName::ALL).render(Format::Json);
    let b = run(&s, &PolicyName::ALL).render(Format::Json);
    assert_eq!(a, b);
    // AND with a much higher rate another seed draws other interruptions
    let mut hot = s.clone();
    hot.interruption_rate_per_hour = 0.2;
    let x = run(&hot, &[PolicyName::SingleType]).policies[0].interruptions;
    hot.seed = 99;
    let y = run(&hot, &[PolicyName::SingleType]).policies[0].interruptions;
    assert!(x > 0 && y > 0);
    assert_ne!(a, run(&hot, &PolicyName::ALL).render(Format::Json));
}

const TWO: &str = r#"
name: two-instances
hours: 10
boot_seconds: 0
pools:
  - {type: m5.large, az: us-east-1a, spot_price: 0.03, on_demand_price: 0.096}
groups:
  - {name: pair, instance_type: m5.large, azs: [us-east-1a], desired: 2, tags: {}}
"#;

#[test]
fn a_two_instance_scenario_costs_what_a_hand_computes_to_the_cent() {
    // GIVEN two m5.large for 10 hours, 0.096 $/h on-demand, 0.03 $/h spot
    let s = Scenario::parse(TWO, Path::new(".")).unwrap();
    let r = run(&s, &[PolicyName::OnDemand, PolicyName::SingleType]);
    let json = r.to_json();
    let p = &json["policies"];
    // THEN on-demand: 2 × 0.096 × 10 = 1.92; single-type spot: 2 × 0.03 × 10 = 0.60
    assert_eq!(p[0]["cost"], 1.92);
    assert_eq!(p[0]["on_demand_cost"], 1.92);
    assert_eq!(p[0]["savings_percent"], 0.0);
    assert_eq!(p[1]["cost"], 0.6);
    assert_eq!(p[1]["savings_percent"], 68.8);
    assert_eq!(p[1]["shortfall_instance_minutes"], 0.0);
}

#[test]
fn an_on_demand_only_scenario_gives_no_savings_no_shortfall_and_no_action() {
    // GIVEN a group without spotswap:enabled=true
    let s = Scenario::parse(TWO, Path::new(".")).unwrap();
    // WHEN spotswap and on-demand run it
    let r = run(&s, &[PolicyName::Spotswap, PolicyName::OnDemand]);
    let json = r.to_json();
    for (i, p) in r.policies.iter().enumerate() {
        // THEN nothing is saved, nothing is short, and the core touched nothing (invariant 4)
        let reported = &json["policies"][i];
        assert_eq!(reported["savings_percent"], 0.0, "{}", p.policy);
        assert_eq!(reported["cost"], reported["on_demand_cost"]);
        assert_eq!(p.shortfall_instance_minutes, 0.0);
        assert_eq!(p.swaps, 0);
        assert!(p.violations.is_empty(), "{:?}", p.violations);
    }
}

#[test]
fn every_format_shows_the_same_numbers() {
    let r = run(&load("single-pool-wipe.yaml"), &PolicyName::ALL);
    let json = r.to_json();
    let table = r.render(Format::Table);
    let md = r.render(Format::Markdown);
    for p in json["policies"].as_array().unwrap() {
        let cost = format!("{:.2}", p["cost"].as_f64().unwrap());
        let name = p["policy"].as_str().unwrap();
        assert!(
            table.lines().any(|l| l.starts_with(name) && l.contains(&cost)),
            "{table}"
        );
        assert!(md.contains(&format!("| {name} | {cost} |")), "{md}");
    }
    let keys: Vec<&str> = json["policies"][0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for k in [
        "policy",
        "cost",
        "on_demand_cost",
        "savings_percent",
        "shortfall_instance_minutes",
        "max_shortfall",
        "interruptions",
        "swaps",
        "fallbacks",
        "api_calls",
    ] {
        assert!(keys.contains(&k), "{k}");
    }
}

#[test]
fn the_plot_is_an_svg_with_a_panel_per_policy() {
    let r = run(
        &load("single-pool-wipe.yaml"),
        &[PolicyName::Spotswap, PolicyName::AwsNative],
    );
    let svg = spotswap_sim::plot::svg(&r).unwrap();
    assert!(svg.starts_with("<svg"), "{}", &svg[..80.min(svg.len())]);
    assert!(svg.contains("single-pool-wipe — spotswap"));
    assert!(svg.contains("cumulative cost"));
}
