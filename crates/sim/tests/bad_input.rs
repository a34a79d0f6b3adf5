#![allow(clippy::unwrap_used)] // test and example code: a panic is the report
//! Bad scenario files are an error naming the field, never a panic.

use std::path::Path;

use spotswap_sim::{PolicyName, Scenario};

const GOOD: &str = r#"{"name": "x", "hours": 1,
  "pools": [{"type": "m5.large", "az": "us-east-1a", "spot_price": 0.03, "on_demand_price": 0.096}],
  "groups": [{"name": "g", "instance_type": "m5.large", "azs": ["us-east-1a"], "desired": 1}],
  "events": []}"#;

fn with(path: &[&str], value: serde_json::Value) -> String {
    let mut v: serde_json::Value = serde_json::from_str(GOOD).unwrap();
    let mut at = &mut v;
    for k in &path[..path.len() - 1] {
        at = match k.parse::<usize>() {
            Ok(i) => &mut at[i],
            Err(_) => &mut at[*k],
        };
    }
    at[path[path.len() - 1]] = value;
    v.to_string()
}

fn error(text: &str) -> String {
    Scenario::parse(text, Path::new(".")).unwrap_err().to_string()
}

#[test]
fn the_good_file_loads() {
    Scenario::parse(GOOD, Path::new(".")).unwrap();
}

#[test]
fn negative_hours_name_the_field() {
    let e = error(&with(&["hours"], serde_json::json!(-3)));
    assert!(e.starts_with("hours: "), "{e}");
    assert!(!e.contains('\n'));
}

#[test]
fn an_unknown_event_kind_names_the_field() {
    let e = error(&with(
        &["events"],
        serde_json::json!([{"at_minute": 5, "kind": "meteor"}]),
    ));
    assert!(e.starts_with("events[0].kind: unknown kind \"meteor\""), "{e}");
}

#[test]
fn a_pool_pattern_matching_nothing_names_the_field() {
    let e = error(&with(
        &["events"],
        serde_json::json!([{"at_minute": 5, "kind": "capacity_lost", "pools": ["m5.large/*", "c9.*/*"], "minutes": 5}]),
    ));
    assert!(
        e.starts_with("events[0].pools[1]: \"c9.*/*\" matches no pool"),
        "{e}"
    );
}

#[test]
fn an_unknown_policy_names_the_field() {
    let e = PolicyName::parse_list(Some("spotswap,karpenter"))
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("policies: unknown policy \"karpenter\""), "{e}");
}

#[test]
fn other_bad_values_name_their_fields() {
    for (path, value, field) in [
        (
            vec!["pools", "0", "spot_price"],
            serde_json::json!("cheap"),
            "pools[0].spot_price: ",
        ),
        (
            vec!["pools", "0", "type"],
            serde_json::json!("x9.huge"),
            "pools[0].type: ",
        ),
        (
            vec!["groups", "0", "azs"],
            serde_json::json!(["eu-west-1a"]),
            "groups[0].azs[0]: ",
        ),
        (
            vec!["groups", "0", "desired"],
            serde_json::json!(-1),
            "groups[0].desired: ",
        ),
        (vec!["step_seconds"], serde_json::json!(0), "step_seconds: "),
        (vec!["name"], serde_json::json!(null), "name: "),
    ] {
        let e = error(&with(&path, value));
        assert!(e.starts_with(field), "{e}");
    }
    assert!(error("{not json").starts_with("scenario: "));
    assert!(error("- just\n- a list\n").starts_with("scenario: "));
}

#[test]
fn a_missing_price_history_file_names_prices_from() {
    let e = error(&with(&["prices_from"], serde_json::json!("nowhere.json")));
    assert!(e.starts_with("prices_from: cannot read nowhere.json"), "{e}");
}
