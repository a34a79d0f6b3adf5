//! Compatibility from moto's DescribeInstanceTypes, which serves AWS's own type data (EBS
//! bandwidth, ENA, NVMe, boot modes, burstable, GPUs): `spotswap plan --output json` names,
//! for each swap it would start, every rejected candidate type and why.

use std::collections::BTreeMap;

use serde_json::Value;
use spotswap_tests::fleet::{sample_price_file, Env, GroupSpec};
use spotswap_tests::lambda::workspace_bin;

/// `spotswap plan --output json` against `env`'s region.
fn plan_json(env: &Env) -> Value {
    let out = std::process::Command::new(workspace_bin("spotswap"))
        .args(["plan", "--output", "json", "--region", env.region()])
        .env("AWS_ENDPOINT_URL", &env.endpoint)
        .env("SPOTSWAP_PRICE_FILE", sample_price_file())
        .output()
        .expect("run spotswap");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("JSON output")
}

/// The rejected types of `group`'s one review: type → reason code.
fn rejected(plan: &Value, group: &str) -> BTreeMap<String, String> {
    let reviews: Vec<&Value> = plan["rejections"]
        .as_array()
        .expect("rejections listed")
        .iter()
        .filter(|r| r["group"] == group)
        .collect();
    assert_eq!(reviews.len(), 1, "one swap planned in {group}: {reviews:?}");
    let r = reviews[0];
    assert_eq!(r["instance_type"], "m5.large");
    assert!(r["instance"].as_str().unwrap().starts_with("i-"));
    assert!(r["az"].as_str().is_some_and(|az| !az.is_empty()));
    r["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["instance_type"].as_str().unwrap().to_string(),
                x["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn launch_candidates(plan: &Value, group: &str) -> Vec<String> {
    plan["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["group"] == group && a["action"] == "launch")
        .unwrap_or_else(|| panic!("{group} launches"))["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().split('/').next().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_names_each_rejected_candidate_type_and_why() {
    // GIVEN a managed group of one on-demand m5.large, and one allowing t3.* by glob
    let env = Env::new().await;
    env.group(&GroupSpec::managed("compat-web", 1)).await;
    env.group(&GroupSpec::managed("compat-burst", 1).tag("spotswap:allowed-types", "m5*,m6i.*,t3.*"))
        .await;

    // WHEN `spotswap plan --output json` runs
    let plan = plan_json(&env);

    // THEN each group's swap is explained, type by type, from AWS's type data
    let web = rejected(&plan, "compat-web");
    for (ty, reason) in [
        ("m6g.large", "ArchitectureMismatch"),
        ("c5.large", "TooLittleMemory"),
        ("m5.medium", ""), // not a type: absent
        ("m4.large", "EnaRequired"),
        ("t3.large", "BurstableNotAllowed"),
        ("t3a.xlarge", "BurstableNotAllowed"),
        ("m5a.large", "EbsBandwidthTooLow"),
        ("g4dn.xlarge", "EbsBandwidthTooLow"),
    ] {
        assert_eq!(web.get(ty).map(String::as_str).unwrap_or(""), reason, "{ty}");
    }
    // AND the types that meet m5.large are not rejected, and the launch offers only those
    for ty in ["m5.large", "m6i.large", "m5d.large", "r5.large", "m5.xlarge"] {
        assert!(!web.contains_key(ty), "{ty} rejected: {:?}", web.get(ty));
    }
    let offered = launch_candidates(&plan, "compat-web");
    assert!(!offered.is_empty());
    assert!(offered.iter().all(|t| !web.contains_key(t)), "{offered:?}");

    // AND a glob naming t3.* lifts the burstable rule: t3.large now meets the next rule and
    // fails it (no burstable type has m5.large's EBS bandwidth); types outside the globs are
    // named so
    let burst = rejected(&plan, "compat-burst");
    assert_eq!(burst.get("t3.large").map(String::as_str), Some("EbsBandwidthTooLow"));
    assert_eq!(burst.get("c5.large").map(String::as_str), Some("NotInAllowedTypes"));
    assert_eq!(burst.get("m5a.large").map(String::as_str), Some("EbsBandwidthTooLow"));
    assert_eq!(burst.get("t3.medium").map(String::as_str), Some("TooLittleMemory"));
}
