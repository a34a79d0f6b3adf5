//! The rejection codes of `spotswap plan`'s `rejections` are a stable interface, like the
//! reason codes: every code the core can give is listed in the README's "Rejection codes"
//! section (one `- \`Code\`: meaning` line each), and the section lists no other.

use std::collections::BTreeSet;

use spotswap_core::candidates::{Incompatibility, Rejection};

const README: &str = include_str!("../../../README.md");

fn readme_codes() -> BTreeSet<&'static str> {
    let section = README
        .split_once("## Rejection codes")
        .and_then(|(_, rest)| rest.split_once("\n## "))
        .map(|(body, _)| body)
        .expect("a Rejection codes section in the README");
    section
        .lines()
        .filter_map(|l| l.strip_prefix("- `"))
        .filter_map(|l| l.split_once("`:"))
        .map(|(code, _)| code)
        .collect()
}

#[test]
fn every_rejection_code_is_in_the_readme_and_only_those() {
    let core: BTreeSet<&str> = Incompatibility::ALL
        .iter()
        .map(|i| i.code())
        .chain(Rejection::EXCLUSIONS.iter().map(|r| r.code()))
        .collect();
    assert_eq!(readme_codes(), core);
}

#[test]
fn a_rejection_serializes_as_its_code() {
    let r = Rejection::Incompatible(Incompatibility::EbsBandwidthTooLow);
    assert_eq!(serde_json::to_string(&r).unwrap(), "\"EbsBandwidthTooLow\"");
    assert_eq!(
        serde_json::to_string(&Rejection::PoolAtCap).unwrap(),
        "\"PoolAtCap\""
    );
}
