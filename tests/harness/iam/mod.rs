//! The least-privilege check of `template.yaml` (DESIGN.md §10), run by `make test`.
//!
//! It reads the template with `serde_yaml` (CloudFormation short tags such as `!Sub` arrive as
//! `Value::Tagged`; long forms such as `{"Fn::Sub": ...}` are understood too), evaluates the
//! intrinsic functions once per combination of the parameters that the template's `Conditions`
//! depend on, and walks every policy document:
//! - inline `Policies` of `AWS::IAM::Role`, and `AWS::IAM::Policy` / `AWS::IAM::ManagedPolicy`;
//! - a SAM resource's `Policies`: inline documents, and the SAM policy templates listed in
//!   `sam::sam_policy_template` (any other template, and any managed policy, is a finding: the
//!   checker cannot see what it grants);
//! - resource policies of SQS queues, SNS topics and S3 buckets.
//!
//! An action is *read-only* when `spotswap_core::ops::is_read` says so (the one classification
//! of AWS operations: `Describe`, `Get`, `List` or `Search`, not a sensitive read such as
//! `ec2:GetPasswordData`). A wildcard action is read-only only as `…:Describe*` (`ec2:Get*` would
//! include `ec2:GetPasswordData`). Everything else is *mutating*.
//!
//! A resource is a *wildcard* when it is `*`, not an ARN, or an ARN whose resource id is only `*`
//! (`arn:aws:ec2:*:*:instance/*`, and also `arn:…:123456789012:instance/*`: every instance of the
//! account is not a specific resource).
//!
//! # Rules
//! - `action-all`: no `*` or `service:*` action, whatever the condition.
//! - `not-action`: no `NotAction`/`NotResource` in an `Allow`.
//! - `mutation-on-wildcard`: a mutating action on a wildcard resource needs a `Condition` in every
//!   parameter combination. One exception, `launch-inputs`: `ec2:RunInstances`/`ec2:CreateFleet`
//!   on the resource types a launch only uses or creates alongside the instance (subnet, image,
//!   launch template, …) may go unconditioned, because RunInstances authorizes every resource of a
//!   request and the same role must allow the `instance` itself only with our
//!   `aws:RequestTag/spotswap:group` (`launch-untagged`).
//! - DESIGN.md §10, whatever the resource: `terminate-untagged` (TerminateInstances needs a
//!   positive condition on `spotswap:group` or `spotswap:detached-at`, or, for AutoSpotting's
//!   orphans, `launched-by-autospotting` = `true`), `create-tags`
//!   (`ec2:CreateAction`, or a tag-present condition plus `aws:TagKeys` limited to `spotswap:`
//!   keys), `asg-untagged` (Auto Scaling mutations need `spotswap:enabled` = `true`, or, in
//!   opt-out mode, != `false`, or under `Compat=autospotting` the same of AutoSpotting's
//!   `spot-enabled`; tag writes also limit `aws:TagKeys` and never `spotswap:enabled`, except on
//!   groups AutoSpotting manages: `spotswap migrate --apply` enrolling them),
//!   `pass-role` (only to EC2, only named roles), `service-linked-role` (only
//!   `spot.amazonaws.com`), `iam-mutation` (no other IAM mutation).
//! - `managed-policy`, `sam-policy-template`: what cannot be read cannot pass.
//! - `function-role`: each function has its own role from this template; `trust`: roles trust
//!   only Lambda.
//! - `parameter-wildcard`: a parameter used in a policy resource must not accept `*`.
//!
//! # Layout
//! - here: [`check_template`] / [`check_value`]: parse, enumerate scenarios, collect findings
//!   into a [`Report`] of [`Finding`]s.
//! - `scope`: `Scope`, one scenario's parameter values and conditions; `resolve` evaluates
//!   intrinsics; `scenarios` enumerates the parameter combinations.
//! - `rules`: how actions, resources (ARNs) and conditions are read.
//! - `checker`: `Checker`, the rules above, per statement, plus the per-role `launch-inputs`
//!   pairing.
//! - `sam`: the SAM policy templates the checker understands.
//! - `template`: the checks of the template as a whole (`function-role`,
//!   `parameter-wildcard`).
//! - `grants`: the complement: [`function_grants`], the actions each function's role is
//!   allowed, for the test that every operation a function calls is granted to it.
//!
//! The tests are in `tests/integration/template_iam.rs`: the real template passes, and each
//! planted bad statement is reported.

mod checker;
mod grants;
mod rules;
mod sam;
mod scope;
mod template;

use serde_yaml::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use checker::Checker;
use scope::{as_text, scenarios};
use template::{check_function_roles, check_policy_parameters};

pub use grants::{function_grants, grants_cover};
pub use rules::{is_read_only, is_wildcard_resource};

/// One problem in the template.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Finding {
    /// Where: logical id, policy and statement (`Sid`, or its index).
    pub at: String,
    /// The rule, a stable kebab-case code (see the module docs).
    pub rule: &'static str,
    /// What is wrong.
    pub detail: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: [{}] {}", self.at, self.rule, self.detail)
    }
}

/// What a check found, and how much it looked at (so a check that reads nothing cannot pass).
#[derive(Debug, Default)]
pub struct Report {
    /// Findings, each with the first parameter combination it showed up in.
    pub findings: BTreeMap<Finding, String>,
    /// Allow statements checked, summed over scenarios.
    pub statements: usize,
    /// Roles and other policy holders seen.
    pub holders: BTreeSet<String>,
    /// Parameter combinations evaluated.
    pub scenarios: usize,
}

impl Report {
    /// True when some finding has this rule.
    pub fn has(&self, rule: &str) -> bool {
        self.findings.keys().any(|f| f.rule == rule)
    }

    /// Findings as text, one a line, for assertion messages.
    pub fn render(&self) -> String {
        self.findings
            .iter()
            .map(|(f, when)| format!("{f}\n    (with {when})\n"))
            .collect()
    }
}

/// Parse and check template text.
pub fn check_template(src: &str) -> Result<Report, serde_yaml::Error> {
    Ok(check_value(&serde_yaml::from_str(src)?))
}

/// Check a parsed template.
pub fn check_value(t: &Value) -> Report {
    let mut report = Report::default();
    let resources = t
        .get("Resources")
        .and_then(Value::as_mapping)
        .cloned()
        .unwrap_or_default();
    check_function_roles(t, &resources, &mut report);
    check_policy_parameters(t, &resources, &mut report);
    for (label, scope) in scenarios(t) {
        report.scenarios += 1;
        let mut checker = Checker::new(&scope, &label, &mut report);
        for (id, r) in &resources {
            let id = as_text(id);
            if let Some(cond) = r.get("Condition").and_then(Value::as_str) {
                if !scope.conditions.get(cond).copied().unwrap_or(true) {
                    continue;
                }
            }
            checker.resource(&id, r, t);
        }
        checker.finish();
    }
    report
}
