//! Compatibility from moto's DescribeInstanceTypes, which serves AWS's own type data (EBS
//! bandwidth, ENA, NVMe, boot modes, burstable, GPUs): `spotswap plan --output json` names,
//! for each swap it would start, every rejected candidate type and why. What DescribeInstances
//! tells of an instance's image (boot mode, ENA), which moto leaves out, comes from the proxy
//! as AWS reports it.

use std::collections::BTreeMap;

use serde_json::Value;
use spotswap_tests::fleet::{moto_endpoint, sample_price_file, Env, GroupSpec};
use spotswap_tests::lambda::workspace_bin;
use spotswap_tests::proxy::{ImageFacts, Proxy};

/// `spotswap plan --output json` against `env`'s region, with the sample on-demand prices.
pub(crate) fn plan_json(env: &Env) -> Value {
    plan_json_priced(env, &sample_price_file())
}

/// `spotswap plan --output json` against `env`'s region, on-demand prices from `prices`.
fn plan_json_priced(env: &Env, prices: &str) -> Value {
    let out = std::process::Command::new(workspace_bin("spotswap"))
        .args(["plan", "--output", "json", "--region", env.region()])
        .env("AWS_ENDPOINT_URL", &env.endpoint)
        .env("SPOTSWAP_PRICE_FILE", prices)
        .output()
        .expect("run spotswap");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("JSON output")
}

/// The rejected types of `group`'s one review of an m5.large: type → reason code.
fn rejected(plan: &Value, group: &str) -> BTreeMap<String, String> {
    rejected_of(plan, group, "m5.large")
}

/// The rejected types of `group`'s one review, of an original of `instance_type`.
fn rejected_of(plan: &Value, group: &str, instance_type: &str) -> BTreeMap<String, String> {
    let reviews: Vec<&Value> = plan["rejections"]
        .as_array()
        .expect("rejections listed")
        .iter()
        .filter(|r| r["group"] == group)
        .collect();
    assert_eq!(reviews.len(), 1, "one swap planned in {group}: {reviews:?}");
    let r = reviews[0];
    assert_eq!(r["instance_type"], instance_type);
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
    assert_eq!(
        burst.get("t3.large").map(String::as_str),
        Some("EbsBandwidthTooLow")
    );
    assert_eq!(
        burst.get("c5.large").map(String::as_str),
        Some("NotInAllowedTypes")
    );
    assert_eq!(
        burst.get("m5a.large").map(String::as_str),
        Some("EbsBandwidthTooLow")
    );
    assert_eq!(
        burst.get("t3.medium").map(String::as_str),
        Some("TooLittleMemory")
    );
}

/// A price file with `m4.large` (the sample has none): an m4 original may take other types.
fn m4_price_file() -> String {
    let path = std::env::temp_dir().join(format!("spotswap-compat-prices-{}.json", std::process::id()));
    std::fs::write(&path, r#"{"*": {"m4.large": 0.10, "m5.large": 0.096}}"#).expect("write prices");
    path.to_string_lossy().into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_reports_an_instances_image_as_aws_does() {
    // GIVEN a group's instance seen through the proxy, which names its image facts
    let proxy = Proxy::start(&moto_endpoint()).await.expect("proxy");
    let env = Env::at(&proxy.url()).await;
    let group = env.group(&GroupSpec::managed("compat-facts", 1)).await;
    let id = env.group_state(&group).await.in_service()[0].clone();
    let describe = || async {
        let out = env
            .ec2
            .describe_instances()
            .instance_ids(&id)
            .send()
            .await
            .expect("describe instances");
        out.reservations()[0].instances()[0].clone()
    };
    // THEN moto alone reports none of them
    let bare = describe().await;
    assert!(bare.boot_mode().is_none() && bare.current_instance_boot_mode().is_none());
    assert!(bare.ena_support().is_none());
    // AND with facts set, DescribeInstances carries them, as AWS's does
    proxy.set_image(
        &id,
        Some(ImageFacts {
            boot_mode: Some("uefi-preferred"),
            current_boot_mode: Some("uefi"),
            ena_support: Some(true),
        }),
    );
    let i = describe().await;
    assert_eq!(i.boot_mode().map(|m| m.as_str()), Some("uefi-preferred"));
    assert_eq!(i.current_instance_boot_mode().map(|m| m.as_str()), Some("uefi"));
    assert_eq!(i.ena_support(), Some(true));
    assert_eq!(i.instance_id(), Some(id.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_without_ena_keeps_a_xen_instance_off_nitro_types() {
    // GIVEN a managed group of one m4.large (Xen: no ENA, no NVMe, legacy BIOS), seen
    //   through the proxy
    let proxy = Proxy::start(&moto_endpoint()).await.expect("proxy");
    let env = Env::at(&proxy.url()).await;
    let spec = GroupSpec {
        instance_type: "m4.large".into(),
        ..GroupSpec::managed("compat-xen", 1)
    };
    env.group(&spec).await;
    let prices = m4_price_file();

    // WHEN planned with the image unknown (moto's answer)
    let plan = plan_json_priced(&env, &prices);
    // THEN the Nitro m5.large may replace it: nothing says the image cannot run there
    let unknown = rejected_of(&plan, "compat-xen", "m4.large");
    assert!(!unknown.contains_key("m5.large"), "{:?}", unknown.get("m5.large"));

    // WHEN DescribeInstances reports, as AWS would, an image without ENA, booted on BIOS
    proxy.set_image(
        "*",
        Some(ImageFacts {
            boot_mode: Some("legacy-bios"),
            current_boot_mode: Some("legacy-bios"),
            ena_support: Some(false),
        }),
    );
    let plan = plan_json_priced(&env, &prices);
    // THEN types that require ENA are turned down (EC2 would refuse to launch them), and a
    // Xen type of the same family is not
    let known = rejected_of(&plan, "compat-xen", "m4.large");
    for ty in ["m5.large", "m6i.large", "c5.xlarge"] {
        assert_eq!(known.get(ty).map(String::as_str), Some("EnaNotEnabled"), "{ty}");
    }
    assert!(!known.contains_key("m4.xlarge"), "{:?}", known.get("m4.xlarge"));
    assert_eq!(
        known.get("t2.large").map(String::as_str),
        Some("BurstableNotAllowed")
    );
    let _ = std::fs::remove_file(&prices);
}
