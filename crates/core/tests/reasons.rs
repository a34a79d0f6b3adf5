//! The reason codes are a FIXED interface: every code the core can give is documented in the
//! README's reason-code table (code, meaning, decided in), and the table names no other.

use std::collections::BTreeSet;

use spotswap_core::action::reason_from_code;
use spotswap_core::Reason;

const README: &str = include_str!("../../../README.md");
const REASON_RS: &str = include_str!("../src/reason.rs");

/// The codes of the README's table rows: `| `Code` | meaning | decided in |`.
fn readme_codes() -> Vec<&'static str> {
    README
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split_once("` |"))
        .map(|(code, _)| code)
        // PascalCase identifiers only: other tables (our events' detail-types) have spaces.
        .filter(|c| c.chars().next().is_some_and(|ch| ch.is_ascii_uppercase()))
        .filter(|c| c.chars().all(|ch| ch.is_ascii_alphanumeric()))
        .collect()
}

#[test]
fn every_reason_is_in_the_readme_table_and_only_those() {
    let table: BTreeSet<&str> = readme_codes().into_iter().collect();
    let missing: Vec<&str> = Reason::ALL
        .iter()
        .map(|r| r.code())
        .filter(|c| !table.contains(c))
        .collect();
    assert!(missing.is_empty(), "README lacks rows for {missing:?}");
    let unknown: Vec<&&str> = table.iter().filter(|c| reason_from_code(c).is_none()).collect();
    assert!(
        unknown.is_empty(),
        "README documents codes the core never gives: {unknown:?}"
    );
}

#[test]
fn reason_all_lists_every_variant_once() {
    // The enum's variants as declared: `    Name,` lines inside `pub enum Reason { … }`.
    let body = REASON_RS
        .split_once("pub enum Reason {")
        .and_then(|(_, rest)| rest.split_once("\n}"))
        .map(|(body, _)| body)
        .expect("the Reason enum");
    let declared: Vec<&str> = body
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with("//") && l.ends_with(','))
        .map(|l| l.trim_end_matches(','))
        .collect();
    let listed: Vec<&str> = Reason::ALL.iter().map(|r| r.code()).collect();
    assert_eq!(listed, declared, "Reason::ALL out of step with the enum");
    let unique: BTreeSet<&str> = listed.iter().copied().collect();
    assert_eq!(unique.len(), listed.len());
    for r in Reason::ALL {
        assert_eq!(reason_from_code(r.code()), Some(r));
    }
}
