#![allow(clippy::unwrap_used)] // test helpers unwrap: a panic is the failure report
//! `spotswap simulate` end to end: JSON out, and bad input exits 2 with one line naming the field.

use std::process::Command;

fn spotswap(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_spotswap"))
        .args(args)
        .env_remove("AWS_REGION")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn scenario(name: &str) -> String {
    format!("{}/../../sim/scenarios/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn json_output_has_the_fixed_keys_and_needs_no_aws() {
    let (code, out, err) = spotswap(&[
        "simulate",
        "--scenario",
        &scenario("single-pool-wipe.yaml"),
        "--policies",
        "spotswap,on-demand",
        "--output",
        "json",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["scenario"], "single-pool-wipe");
    assert_eq!(v["policies"][0]["policy"], "spotswap");
    assert_eq!(v["policies"][1]["savings_percent"], 0.0);
}

#[test]
fn bad_input_exits_2_with_one_line_naming_the_field() {
    let dir = std::env::temp_dir().join(format!("spotswap-sim-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.yaml");
    std::fs::write(
        &bad,
        "name: x\nhours: 1\npools: [{type: m5.large, az: a, spot_price: 0.03, on_demand_price: 0.096}]\n\
         groups: [{name: g, instance_type: m5.large, azs: [a], desired: 1}]\n\
         events: [{at_minute: 1, kind: meteor}]\n",
    )
    .unwrap();
    let bad_commitments = dir.join("bad-commitments.yaml");
    std::fs::write(
        &bad_commitments,
        "name: x\nhours: 1\npools: [{type: m5.large, az: a, spot_price: 0.03, on_demand_price: 0.096}]\n\
         groups: [{name: g, instance_type: m5.large, azs: [a], desired: 1}]\n\
         commitments: {savings_plans: [{kind: Compute, commitment: 0.05, discount: 2}]}\n",
    )
    .unwrap();
    let good = scenario("calm-week.yaml");
    let bad = bad.to_string_lossy().into_owned();
    let bad_commitments = bad_commitments.to_string_lossy().into_owned();
    for (args, field) in [
        (vec!["simulate", "--scenario", bad.as_str()], "events[0].kind"),
        (
            vec!["simulate", "--scenario", bad_commitments.as_str()],
            "commitments.savings_plans[0].discount",
        ),
        (
            vec!["simulate", "--scenario", good.as_str(), "--policies", "karpenter"],
            "policies",
        ),
        (
            vec!["simulate", "--scenario", good.as_str(), "--output", "xml"],
            "output",
        ),
    ] {
        let (code, out, err) = spotswap(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(out.is_empty());
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with(&format!("spotswap: {field}: ")), "{err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
