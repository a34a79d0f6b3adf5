//! The least-privilege check of `template.yaml` (DESIGN.md §10), run by `make test`.
//!
//! It reads the template with `serde_yaml` (CloudFormation short tags such as `!Sub` arrive as
//! `Value::Tagged`; long forms such as `{"Fn::Sub": ...}` are understood too), evaluates the
//! intrinsic functions once per combination of the parameters that the template's `Conditions`
//! depend on, and walks every policy document:
//! - inline `Policies` of `AWS::IAM::Role`, and `AWS::IAM::Policy` / `AWS::IAM::ManagedPolicy`;
//! - a SAM resource's `Policies`: inline documents, and the SAM policy templates listed in
//!   [`sam_policy_template`] (any other template, and any managed policy, is a finding: the
//!   checker cannot see what it grants);
//! - resource policies of SQS queues, SNS topics and S3 buckets.
//!
//! An action is *read-only* when its name starts with `Describe`, `Get` or `List` and it is not in
//! `spotswap_core::ops::SENSITIVE_READS`. A wildcard action is read-only only as `…:Describe*` (`ec2:Get*` would
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
//!   positive condition on `spotswap:group` or `spotswap:detached-at`), `create-tags`
//!   (`ec2:CreateAction`, or a tag-present condition plus `aws:TagKeys` limited to `spotswap:`
//!   keys), `asg-untagged` (Auto Scaling mutations need `spotswap:enabled` = `true`, or, in
//!   opt-out mode, != `false`; tag writes also limit `aws:TagKeys` and never `spotswap:enabled`),
//!   `pass-role` (only to EC2, only named roles), `service-linked-role` (only
//!   `spot.amazonaws.com`), `iam-mutation` (no other IAM mutation).
//! - `managed-policy`, `sam-policy-template`: what cannot be read cannot pass.
//! - `function-role`: each function has its own role from this template; `trust`: roles trust
//!   only Lambda.
//! - `parameter-wildcard`: a parameter used in a policy resource must not accept `*`.
//!
//! # Layout
//! - [`check_template`] / [`check_value`]: parse, enumerate scenarios, collect findings.
//! - `Scope`: one scenario's parameter values and conditions; `resolve` evaluates intrinsics.
//! - `Checker`: the rules above, per statement, plus the per-role `launch-inputs` pairing.
//! - the tests: the real template passes, and each planted bad statement is reported.

use regex_lite::Regex;
use serde_yaml::{Mapping, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

const TEMPLATE: &str = include_str!("../../template.yaml");

/// Resource types a RunInstances/CreateFleet request uses or creates alongside the instance.
const LAUNCH_INPUT_TYPES: &[&str] = &[
    "capacity-reservation",
    "fleet",
    "image",
    "key-pair",
    "launch-template",
    "network-interface",
    "placement-group",
    "security-group",
    "snapshot",
    "spot-instances-request",
    "subnet",
    "volume",
];

/// Words inside ARN resource parts that are syntax, not names (`autoScalingGroupName/*`).
const ARN_KEYWORDS: &[&str] = &["autoscalinggroupname", "launchconfigurationname"];

/// Instance tags that mark an instance as ours (DESIGN.md §3).
const OUR_INSTANCE_TAGS: &[&str] = &["spotswap:group", "spotswap:detached-at"];

const PSEUDO: &[(&str, &str)] = &[
    ("AWS::Partition", "aws"),
    ("AWS::Region", "us-east-1"),
    ("AWS::AccountId", "123456789012"),
    ("AWS::URLSuffix", "amazonaws.com"),
    ("AWS::StackName", "spotswap"),
    (
        "AWS::StackId",
        "arn:aws:cloudformation:us-east-1:123456789012:stack/spotswap/1",
    ),
    ("AWS::NotificationARNs", ""),
];

/// One problem in the template.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Finding {
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
pub(crate) struct Report {
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
pub(crate) fn check_template(src: &str) -> Result<Report, serde_yaml::Error> {
    Ok(check_value(&serde_yaml::from_str(src)?))
}

/// Check a parsed template.
pub(crate) fn check_value(t: &Value) -> Report {
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

// ------------------------------------------------------------------------------------------------
// Intrinsic functions
// ------------------------------------------------------------------------------------------------

/// The intrinsic function a value calls, if any: `(name, argument)`, e.g. `("Fn::Sub", …)`.
fn intrinsic(v: &Value) -> Option<(String, &Value)> {
    match v {
        Value::Tagged(t) => {
            let tag = t.tag.to_string();
            let tag = tag.trim_start_matches('!');
            let name = if tag == "Ref" || tag == "Condition" {
                tag.to_string()
            } else {
                format!("Fn::{tag}")
            };
            Some((name, &t.value))
        }
        Value::Mapping(m) if m.len() == 1 => {
            let (k, arg) = m.iter().next()?;
            let k = k.as_str()?;
            (k == "Ref" || k.starts_with("Fn::")).then(|| (k.to_string(), arg))
        }
        _ => None,
    }
}

fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        // An unquoted `Null:` condition operator parses as a YAML null.
        Value::Null => "Null".to_string(),
        other => serde_yaml::to_string(other)
            .unwrap_or_default()
            .trim()
            .to_string(),
    }
}

/// One scenario: parameter values and the conditions they give.
struct Scope<'a> {
    template: &'a Value,
    params: BTreeMap<String, Value>,
    conditions: BTreeMap<String, bool>,
}

impl Scope<'_> {
    fn resources(&self) -> Option<&Mapping> {
        self.template.get("Resources").and_then(Value::as_mapping)
    }

    fn is_resource(&self, id: &str) -> bool {
        self.resources().is_some_and(|r| r.contains_key(id))
    }

    /// Evaluate every intrinsic in `v`. `Ok(None)` is `AWS::NoValue`.
    fn resolve(&self, v: &Value) -> Result<Option<Value>, String> {
        if let Some((name, arg)) = intrinsic(v) {
            return self.call(&name, arg);
        }
        match v {
            Value::Sequence(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    out.extend(self.resolve(item)?);
                }
                Ok(Some(Value::Sequence(out)))
            }
            Value::Mapping(m) => {
                let mut out = Mapping::new();
                for (k, val) in m {
                    if let Some(r) = self.resolve(val)? {
                        out.insert(Value::String(as_text(k)), r);
                    }
                }
                Ok(Some(Value::Mapping(out)))
            }
            Value::Tagged(t) => Err(format!("unknown tag {}", t.tag)),
            other => Ok(Some(other.clone())),
        }
    }

    fn resolve_str(&self, v: &Value) -> Result<String, String> {
        match self.resolve(v)? {
            Some(Value::Sequence(_)) | Some(Value::Mapping(_)) => {
                Err(format!("expected a string, got {v:?}"))
            }
            Some(s) => Ok(as_text(&s)),
            None => Err("AWS::NoValue where a string is needed".into()),
        }
    }

    fn resolve_list(&self, v: &Value) -> Result<Vec<String>, String> {
        match self.resolve(v)? {
            Some(Value::Sequence(items)) => Ok(items.iter().map(as_text).collect()),
            _ => Err(format!("expected a list, got {v:?}")),
        }
    }

    fn args<'v>(arg: &'v Value, n: usize, name: &str) -> Result<&'v [Value], String> {
        match arg.as_sequence() {
            Some(s) if s.len() == n => Ok(s),
            _ => Err(format!("{name} takes {n} arguments")),
        }
    }

    fn reference(&self, name: &str) -> Result<Option<Value>, String> {
        if name == "AWS::NoValue" {
            return Ok(None);
        }
        if let Some((_, v)) = PSEUDO.iter().find(|(k, _)| *k == name) {
            return Ok(Some(Value::String((*v).into())));
        }
        if let Some(v) = self.params.get(name) {
            return Ok(Some(v.clone()));
        }
        if self.is_resource(name) {
            return Ok(Some(Value::String(format!("REF.{name}"))));
        }
        Err(format!("Ref to unknown {name}"))
    }

    fn call(&self, name: &str, arg: &Value) -> Result<Option<Value>, String> {
        let s = |x: String| Ok(Some(Value::String(x)));
        match name {
            "Ref" => self.reference(&as_text(arg)),
            "Fn::GetAtt" => match arg {
                Value::String(x) => s(format!("GETATT.{x}")),
                Value::Sequence(p) => s(format!(
                    "GETATT.{}",
                    p.iter().map(as_text).collect::<Vec<_>>().join(".")
                )),
                _ => Err("bad Fn::GetAtt".into()),
            },
            "Fn::Sub" => {
                let (text, vars) = match arg {
                    Value::Sequence(p) if p.len() == 2 => {
                        (as_text(&p[0]), p[1].as_mapping().cloned().unwrap_or_default())
                    }
                    other => (as_text(other), Mapping::new()),
                };
                s(self.substitute(&text, &vars)?)
            }
            "Fn::Join" => {
                let a = Self::args(arg, 2, name)?;
                s(self.resolve_list(&a[1])?.join(&self.resolve_str(&a[0])?))
            }
            "Fn::Split" => {
                let a = Self::args(arg, 2, name)?;
                let (delimiter, text) = (self.resolve_str(&a[0])?, self.resolve_str(&a[1])?);
                let parts = text.split(delimiter.as_str()).map(|p| Value::String(p.into()));
                Ok(Some(Value::Sequence(parts.collect())))
            }
            "Fn::Select" => {
                let a = Self::args(arg, 2, name)?;
                let i: usize = self
                    .resolve_str(&a[0])?
                    .parse()
                    .map_err(|_| "bad Fn::Select index")?;
                let list = self.resolve_list(&a[1])?;
                list.get(i)
                    .cloned()
                    .map_or_else(|| Err(format!("Fn::Select index {i} out of range")), s)
            }
            "Fn::If" => {
                let a = Self::args(arg, 3, name)?;
                let cond = as_text(&a[0]);
                match self.conditions.get(&cond) {
                    Some(true) => self.resolve(&a[1]),
                    Some(false) => self.resolve(&a[2]),
                    None => Err(format!("Fn::If on unknown condition {cond}")),
                }
            }
            "Fn::FindInMap" => {
                let a = Self::args(arg, 3, name)?;
                let keys = [
                    self.resolve_str(&a[0])?,
                    self.resolve_str(&a[1])?,
                    self.resolve_str(&a[2])?,
                ];
                let v = self
                    .template
                    .get("Mappings")
                    .and_then(|m| m.get(&keys[0]))
                    .and_then(|m| m.get(&keys[1]))
                    .and_then(|m| m.get(&keys[2]));
                v.map(|v| Some(v.clone()))
                    .ok_or_else(|| format!("Fn::FindInMap {keys:?} not found"))
            }
            other => Err(format!("{other} cannot be evaluated here")),
        }
    }

    /// `Fn::Sub`: `${Var}` from `vars`, pseudo parameters, parameters, `${Res.Attr}`, `${Res}`.
    fn substitute(&self, text: &str, vars: &Mapping) -> Result<String, String> {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let end = rest[start..].find('}').ok_or("unclosed ${ in Fn::Sub")? + start;
            let var = &rest[start + 2..end];
            if let Some(literal) = var.strip_prefix('!') {
                out.push_str("${");
                out.push_str(literal);
                out.push('}');
            } else if let Some(v) = vars.get(var) {
                out.push_str(&self.resolve_str(v)?);
            } else if var.contains('.') && !var.starts_with("AWS::") {
                out.push_str(&format!("GETATT.{var}"));
            } else {
                match self.reference(var)? {
                    Some(Value::Sequence(_)) => return Err(format!("list parameter {var} inside Fn::Sub")),
                    Some(v) => out.push_str(&as_text(&v)),
                    None => return Err("AWS::NoValue inside Fn::Sub".into()),
                }
            }
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    fn condition(&self, v: &Value, defs: &Mapping, depth: usize) -> Result<bool, String> {
        if depth > 32 {
            return Err("conditions nest too deep".into());
        }
        let (name, arg) = intrinsic(v)
            .or_else(|| v.get("Condition").map(|c| ("Condition".to_string(), c)))
            .ok_or_else(|| format!("not a condition: {v:?}"))?;
        let list = |n| Self::args(arg, n, &name);
        match name.as_str() {
            "Condition" => {
                let target = as_text(arg);
                let def = defs
                    .get(&target)
                    .ok_or_else(|| format!("unknown condition {target}"))?;
                self.condition(def, defs, depth + 1)
            }
            "Fn::Equals" => {
                let a = list(2)?;
                Ok(self.resolve(&a[0])? == self.resolve(&a[1])?)
            }
            "Fn::Not" => Ok(!self.condition(&list(1)?[0], defs, depth + 1)?),
            "Fn::And" | "Fn::Or" => {
                let items = arg.as_sequence().ok_or("Fn::And/Fn::Or take a list")?;
                let mut values = Vec::with_capacity(items.len());
                for c in items {
                    values.push(self.condition(c, defs, depth + 1)?);
                }
                Ok(if name == "Fn::And" {
                    values.iter().all(|b| *b)
                } else {
                    values.iter().any(|b| *b)
                })
            }
            other => Err(format!("{other} is not a condition function")),
        }
    }
}

/// Parameter names that `v` refers to (`Ref`, and variables of `Fn::Sub`).
fn parameter_refs(v: &Value, params: &Mapping, out: &mut BTreeSet<String>) {
    if let Some((name, arg)) = intrinsic(v) {
        match name.as_str() {
            "Ref" => {
                let target = as_text(arg);
                if params.contains_key(target.as_str()) {
                    out.insert(target);
                }
            }
            "Fn::Sub" => {
                let (text, vars) = match arg {
                    Value::Sequence(p) if p.len() == 2 => (as_text(&p[0]), Some(&p[1])),
                    other => (as_text(other), None),
                };
                for piece in text.split("${").skip(1) {
                    let var = piece.split('}').next().unwrap_or_default();
                    if params.contains_key(var) && vars.and_then(|m| m.get(var)).is_none() {
                        out.insert(var.to_string());
                    }
                }
                if let Some(vars) = vars {
                    parameter_refs(vars, params, out);
                }
            }
            _ => parameter_refs(arg, params, out),
        }
        return;
    }
    match v {
        Value::Sequence(items) => items.iter().for_each(|i| parameter_refs(i, params, out)),
        Value::Mapping(m) => m.values().for_each(|i| parameter_refs(i, params, out)),
        _ => {}
    }
}

/// Every combination of the parameters that `Conditions` depend on, each with a label.
fn scenarios(t: &Value) -> Vec<(String, Scope<'_>)> {
    let params = t
        .get("Parameters")
        .and_then(Value::as_mapping)
        .cloned()
        .unwrap_or_default();
    let defs = t
        .get("Conditions")
        .and_then(Value::as_mapping)
        .cloned()
        .unwrap_or_default();
    let is_list = |p: &Value| {
        p.get("Type")
            .and_then(Value::as_str)
            .is_some_and(|ty| ty.contains("List"))
    };
    let value_of = |p: &Value, raw: String| {
        if is_list(p) {
            Value::Sequence(raw.split(',').map(|x| Value::String(x.trim().into())).collect())
        } else {
            Value::String(raw)
        }
    };
    let mut base = BTreeMap::new();
    for (name, p) in &params {
        let default = p.get("Default").map(as_text).unwrap_or_else(|| "example".into());
        base.insert(as_text(name), value_of(p, default));
    }
    let mut deciding = BTreeSet::new();
    parameter_refs(&Value::Mapping(defs.clone()), &params, &mut deciding);
    // Each deciding parameter takes its allowed values, or its default and one other value.
    let mut combos: Vec<Vec<(String, String)>> = vec![vec![]];
    for name in &deciding {
        let p = &params[name.as_str()];
        let choices: Vec<String> = match p.get("AllowedValues").and_then(Value::as_sequence) {
            Some(allowed) => allowed.iter().map(as_text).collect(),
            None => {
                let default = p.get("Default").map(as_text).unwrap_or_default();
                let other = if default.is_empty() {
                    "example".to_string()
                } else {
                    String::new()
                };
                vec![default, other]
            }
        };
        combos = combos
            .iter()
            .flat_map(|c| {
                choices.iter().map(move |v| {
                    let mut c = c.clone();
                    c.push((name.clone(), v.clone()));
                    c
                })
            })
            .collect();
    }
    combos
        .into_iter()
        .map(|combo| {
            let mut values = base.clone();
            for (name, raw) in &combo {
                values.insert(name.clone(), value_of(&params[name.as_str()], raw.clone()));
            }
            let mut scope = Scope {
                template: t,
                params: values,
                conditions: BTreeMap::new(),
            };
            let mut conditions = BTreeMap::new();
            for (name, def) in &defs {
                // A condition that cannot be evaluated counts as true: more is checked, not less.
                conditions.insert(as_text(name), scope.condition(def, &defs, 0).unwrap_or(true));
            }
            scope.conditions = conditions;
            let label = combo
                .iter()
                .map(|(k, v)| format!("{k}={v:?}"))
                .collect::<Vec<_>>()
                .join(", ");
            (
                if label.is_empty() {
                    "defaults".into()
                } else {
                    label
                },
                scope,
            )
        })
        .collect()
}

// ------------------------------------------------------------------------------------------------
// Actions, resources, conditions
// ------------------------------------------------------------------------------------------------

/// `*` and `?` glob match, ASCII case-insensitive (IAM action names are).
fn glob(pattern: &str, text: &str) -> bool {
    fn go(p: &[u8], t: &[u8]) -> bool {
        match (p.first(), t.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], t) || (!t.is_empty() && go(p, &t[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &t[1..]),
            (Some(a), Some(b)) if a.eq_ignore_ascii_case(b) => go(&p[1..], &t[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), text.as_bytes())
}

fn has_wildcard(s: &str) -> bool {
    s.contains('*') || s.contains('?')
}

/// [`spotswap_core::ops::is_read`]. A wildcard is read-only only as `Describe…*`.
fn is_read_only(action: &str) -> bool {
    let lower = action.to_ascii_lowercase();
    let name = lower.split_once(':').map_or("", |(_, n)| n);
    if has_wildcard(name) {
        return name.starts_with("describe");
    }
    spotswap_core::ops::is_read(action)
}

/// Whether an allowed action pattern covers `target` (`ec2:TerminateInstances`, `ec2:Terminate*`).
fn covers(action: &str, target: &str) -> bool {
    glob(action, target)
}

/// A parsed ARN.
struct Arn {
    service: String,
    region: String,
    rtype: String,
    /// The resource id is only wildcards: any resource of the type.
    any_id: bool,
}

fn parse_arn(s: &str) -> Option<Arn> {
    let parts: Vec<&str> = s.splitn(6, ':').collect();
    if parts.len() != 6 || parts[0] != "arn" {
        return None;
    }
    let resource = parts[5];
    let mut segments: Vec<&str> = resource.split(['/', ':']).collect();
    let rtype = if segments.len() > 1 {
        segments.remove(0).to_string()
    } else {
        String::new()
    };
    let names: Vec<&str> = segments
        .into_iter()
        .filter(|s| !ARN_KEYWORDS.contains(&s.to_ascii_lowercase().as_str()))
        .collect();
    let any_id =
        names.iter().any(|s| !s.is_empty()) && names.iter().all(|s| s.chars().all(|c| c == '*' || c == '?'));
    Some(Arn {
        service: parts[2].to_string(),
        region: parts[3].to_string(),
        rtype,
        any_id,
    })
}

/// `*`, a non-ARN, or an ARN naming any resource of its type. Template resources are specific.
fn is_wildcard_resource(s: &str) -> bool {
    if s.starts_with("REF.") || s.starts_with("GETATT.") {
        return false;
    }
    parse_arn(s).is_none_or(|a| a.any_id)
}

/// A condition as `(operator, key, values)`, keys lower-cased.
fn condition_entries(cond: Option<&Value>) -> Vec<(String, String, Vec<String>)> {
    let mut out = Vec::new();
    for (op, keys) in cond.and_then(Value::as_mapping).into_iter().flatten() {
        for (key, values) in keys.as_mapping().into_iter().flatten() {
            let values = match values {
                Value::Sequence(v) => v.iter().map(as_text).collect(),
                v => vec![as_text(v)],
            };
            out.push((as_text(op), as_text(key).to_ascii_lowercase(), values));
        }
    }
    out
}

/// A non-empty condition, every operator with at least one key.
fn is_conditioned(cond: Option<&Value>) -> bool {
    match cond.and_then(Value::as_mapping) {
        Some(m) if !m.is_empty() => m
            .values()
            .all(|keys| keys.as_mapping().is_some_and(|k| !k.is_empty())),
        _ => false,
    }
}

/// The condition requires one of `tag_keys` (full condition keys, lower case) to be present.
fn requires_tag(entries: &[(String, String, Vec<String>)], tag_keys: &[String]) -> bool {
    entries.iter().any(|(op, key, values)| {
        tag_keys.contains(key)
            && match op.as_str() {
                "Null" => values == &["false"],
                "StringEquals" | "StringLike" | "StringEqualsIgnoreCase" => !values.is_empty(),
                _ => false,
            }
    })
}

fn tag_condition_keys(prefixes: &[&str], tags: &[&str]) -> Vec<String> {
    prefixes
        .iter()
        .flat_map(|p| tags.iter().map(move |t| format!("{p}{t}")))
        .collect()
}

/// `aws:TagKeys` limited (ForAllValues) to `spotswap:` keys, never `spotswap:enabled`.
fn limits_tag_keys(entries: &[(String, String, Vec<String>)]) -> bool {
    entries.iter().any(|(op, key, values)| {
        key == "aws:tagkeys"
            && matches!(
                op.as_str(),
                "ForAllValues:StringEquals" | "ForAllValues:StringLike"
            )
            && !values.is_empty()
            && values
                .iter()
                .all(|v| v.starts_with("spotswap:") && !glob(v, "spotswap:enabled"))
    })
}

/// Auto Scaling: only groups that `spotswap:enabled` puts under management.
fn requires_managed_group(entries: &[(String, String, Vec<String>)]) -> bool {
    let keys = tag_condition_keys(
        &["autoscaling:resourcetag/", "aws:resourcetag/"],
        &["spotswap:enabled"],
    );
    entries.iter().any(|(op, key, values)| {
        keys.contains(key)
            && match op.as_str() {
                "StringEquals" | "StringEqualsIgnoreCase" | "StringLike" => values == &["true"],
                // Opt-out mode: every group not tagged false. A missing tag satisfies a negated
                // operator, which is the point.
                "StringNotEquals" | "StringNotEqualsIgnoreCase" => values == &["false"],
                _ => false,
            }
    })
}

// ------------------------------------------------------------------------------------------------
// The checker
// ------------------------------------------------------------------------------------------------

struct Checker<'s, 'r> {
    scope: &'s Scope<'s>,
    label: &'s str,
    report: &'r mut Report,
    /// Holders with an unconditioned launch-inputs statement, and where it is.
    launch_inputs: Vec<(String, String)>,
    /// Holders that allow RunInstances on `instance` only with our request tag.
    gated_instance_launch: BTreeSet<String>,
}

impl<'s, 'r> Checker<'s, 'r> {
    fn new(scope: &'s Scope<'s>, label: &'s str, report: &'r mut Report) -> Self {
        Self {
            scope,
            label,
            report,
            launch_inputs: Vec::new(),
            gated_instance_launch: BTreeSet::new(),
        }
    }

    fn find(&mut self, at: &str, rule: &'static str, detail: impl Into<String>) {
        let finding = Finding {
            at: at.to_string(),
            rule,
            detail: detail.into(),
        };
        self.report
            .findings
            .entry(finding)
            .or_insert_with(|| self.label.to_string());
    }

    fn resolve(&mut self, at: &str, v: &Value) -> Option<Value> {
        match self.scope.resolve(v) {
            Ok(r) => r,
            Err(e) => {
                self.find(at, "unresolvable", e);
                None
            }
        }
    }

    fn resource(&mut self, id: &str, r: &Value, template: &Value) {
        let ty = r.get("Type").and_then(Value::as_str).unwrap_or_default();
        let props = r.get("Properties").cloned().unwrap_or(Value::Null);
        match ty {
            "AWS::IAM::Role" => {
                self.report.holders.insert(id.to_string());
                if let Some(trust) = props.get("AssumeRolePolicyDocument") {
                    self.trust(id, trust);
                }
                if let Some(arns) = props.get("ManagedPolicyArns").and_then(|v| self.resolve(id, v)) {
                    if arns.as_sequence().is_none_or(|s| !s.is_empty()) {
                        self.find(
                            id,
                            "managed-policy",
                            "ManagedPolicyArns cannot be checked; use inline policies",
                        );
                    }
                }
                let Some(policies) = props.get("Policies").and_then(|p| self.resolve(id, p)) else {
                    return;
                };
                for (i, p) in policies.as_sequence().into_iter().flatten().enumerate() {
                    let name = p.get("PolicyName").map_or_else(|| format!("#{i}"), as_text);
                    if let Some(doc) = p.get("PolicyDocument") {
                        self.document(&format!("{id}/{name}"), &[id.to_string()], doc);
                    }
                }
            }
            "AWS::IAM::Policy" | "AWS::IAM::ManagedPolicy" => {
                let mut holders = Vec::new();
                for key in ["Roles", "Users", "Groups"] {
                    let Some(list) = props.get(key).and_then(|v| self.resolve(id, v)) else {
                        continue;
                    };
                    for h in list.as_sequence().into_iter().flatten() {
                        let h = as_text(h);
                        holders.push(h.strip_prefix("REF.").unwrap_or(&h).to_string());
                    }
                }
                if holders.is_empty() {
                    holders.push(id.to_string());
                }
                if let Some(doc) = props.get("PolicyDocument").and_then(|d| self.resolve(id, d)) {
                    self.document(id, &holders, &doc);
                }
            }
            "AWS::SQS::QueuePolicy" | "AWS::SNS::TopicPolicy" | "AWS::S3::BucketPolicy" => {
                self.report.holders.insert(id.to_string());
                if let Some(doc) = props.get("PolicyDocument").and_then(|d| self.resolve(id, d)) {
                    self.document(id, &[id.to_string()], &doc);
                }
            }
            t if t.starts_with("AWS::Serverless::") => {
                let global = template
                    .get("Globals")
                    .and_then(|g| g.get("Function"))
                    .and_then(|f| f.get("Policies"));
                for (where_, policies) in [("Globals", global), (id, props.get("Policies"))] {
                    if let Some(p) = policies {
                        self.report.holders.insert(id.to_string());
                        self.sam_policies(&format!("{where_}/Policies"), id, p);
                    }
                }
            }
            _ => {}
        }
    }

    /// A SAM `Policies` property: a managed policy name, a document, a policy template, or a list.
    fn sam_policies(&mut self, at: &str, holder: &str, policies: &Value) {
        let Some(policies) = self.resolve(at, policies) else {
            return;
        };
        let items = match policies {
            Value::Sequence(items) => items,
            one => vec![one],
        };
        for (i, item) in items.iter().enumerate() {
            let at = format!("{at}/#{i}");
            match item {
                Value::String(name) => self.find(
                    &at,
                    "managed-policy",
                    format!("managed policy {name} cannot be checked"),
                ),
                Value::Mapping(m) if m.contains_key("Statement") => {
                    self.document(&at, &[holder.to_string()], item)
                }
                Value::Mapping(m) if m.len() == 1 => {
                    let (name, params) = m
                        .iter()
                        .next()
                        .map(|(k, v)| (as_text(k), v.clone()))
                        .unwrap_or_default();
                    match sam_policy_template(&name, &params) {
                        Some(doc) => match self.resolve(&at, &doc) {
                            Some(doc) => self.document(&format!("{at}/{name}"), &[holder.to_string()], &doc),
                            None => self.find(
                                &at,
                                "sam-policy-template",
                                format!("{name}: parameters unresolvable"),
                            ),
                        },
                        None => self.find(
                            &at,
                            "sam-policy-template",
                            format!("SAM policy template {name} is not one the checker understands"),
                        ),
                    }
                }
                other => self.find(&at, "sam-policy-template", format!("unreadable policy {other:?}")),
            }
        }
    }

    fn trust(&mut self, id: &str, doc: &Value) {
        let Some(doc) = self.resolve(id, doc) else { return };
        for st in statements(&doc) {
            if st.get("Effect").and_then(Value::as_str) != Some("Allow") {
                continue;
            }
            let services: Vec<String> = match st.get("Principal").and_then(|p| p.get("Service")) {
                Some(Value::Sequence(s)) => s.iter().map(as_text).collect(),
                Some(v) => vec![as_text(v)],
                None => vec![],
            };
            let only_lambda = !services.is_empty()
                && services.iter().all(|s| s == "lambda.amazonaws.com")
                && st
                    .get("Principal")
                    .and_then(Value::as_mapping)
                    .is_some_and(|p| p.len() == 1);
            if !only_lambda {
                self.find(
                    id,
                    "trust",
                    "a function role must trust only lambda.amazonaws.com",
                );
            }
        }
    }

    fn document(&mut self, at: &str, holders: &[String], doc: &Value) {
        for h in holders {
            self.report.holders.insert(h.clone());
        }
        for (i, st) in statements(doc).iter().enumerate() {
            let sid = st.get("Sid").map_or_else(|| format!("#{i}"), as_text);
            self.statement(&format!("{at}/{sid}"), holders, st);
        }
    }

    fn statement(&mut self, at: &str, holders: &[String], st: &Value) {
        match st.get("Effect").and_then(Value::as_str) {
            Some("Deny") => return,
            Some("Allow") => {}
            other => {
                return self.find(
                    at,
                    "effect",
                    format!("Effect must be Allow or Deny, not {other:?}"),
                )
            }
        }
        self.report.statements += 1;
        if st.get("NotAction").is_some() || st.get("NotResource").is_some() {
            self.find(
                at,
                "not-action",
                "NotAction/NotResource in an Allow grants everything else",
            );
        }
        let actions = string_list(st.get("Action"));
        let resources = string_list(st.get("Resource"));
        let cond = st.get("Condition");
        let conditioned = is_conditioned(cond);
        let entries = condition_entries(cond);
        if resources.is_empty() && st.get("Principal").is_none() {
            self.find(at, "no-resource", "an identity statement needs a Resource");
        }
        let wildcard: Vec<&String> = resources.iter().filter(|r| is_wildcard_resource(r)).collect();

        for a in &actions {
            if a == "*" || a.ends_with(":*") {
                self.find(at, "action-all", format!("action {a} grants every action"));
            }
        }
        let mutating: Vec<&String> = actions.iter().filter(|a| !is_read_only(a)).collect();
        if !mutating.is_empty() && !wildcard.is_empty() && !conditioned {
            if self.launch_inputs_exempt(&actions, &resources) {
                for h in holders {
                    self.launch_inputs.push((h.clone(), at.to_string()));
                }
            } else {
                self.find(
                    at,
                    "mutation-on-wildcard",
                    format!("{mutating:?} on {wildcard:?} without a Condition"),
                );
            }
        }

        let any = |target: &str| actions.iter().any(|a| covers(a, target));
        if any("ec2:TerminateInstances") {
            let keys = tag_condition_keys(&["ec2:resourcetag/", "aws:resourcetag/"], OUR_INSTANCE_TAGS);
            if !requires_tag(&entries, &keys) {
                self.find(
                    at,
                    "terminate-untagged",
                    "ec2:TerminateInstances must require spotswap:group or spotswap:detached-at",
                );
            }
        }
        if any("ec2:CreateTags") {
            let at_launch = entries.iter().any(|(op, key, values)| {
                key == "ec2:createaction"
                    && op == "StringEquals"
                    && !values.is_empty()
                    && values.iter().all(|v| v == "CreateFleet" || v == "RunInstances")
            });
            let member_keys = tag_condition_keys(
                &["ec2:resourcetag/", "aws:resourcetag/"],
                &["spotswap:group", "aws:autoscaling:groupname"],
            );
            let on_members = requires_tag(&entries, &member_keys) && limits_tag_keys(&entries);
            // An instance just detached on interruption has lost aws:autoscaling:groupName: it
            // is scoped as spot, with our keys only.
            let on_interrupted_spot = entries.iter().any(|(op, key, values)| {
                key == "ec2:instancemarkettype" && op == "StringEquals" && values.iter().all(|v| v == "spot")
            }) && limits_tag_keys(&entries);
            if !at_launch && !on_members && !on_interrupted_spot {
                self.find(at, "create-tags", "ec2:CreateTags must be at launch (ec2:CreateAction) or spotswap: keys on our, group or spot instances");
            }
        }
        let launches = ["ec2:RunInstances", "ec2:CreateFleet"].iter().any(|t| any(t));
        let on_instances = resources.iter().any(|r| {
            r == "*" || parse_arn(r).is_some_and(|a| a.rtype == "instance" || a.rtype.contains('*'))
        });
        if launches && on_instances {
            let keys = tag_condition_keys(&["aws:requesttag/"], &["spotswap:group"]);
            if requires_tag(&entries, &keys) {
                self.gated_instance_launch.extend(holders.iter().cloned());
            } else {
                self.find(
                    at,
                    "launch-untagged",
                    "launching an instance must require aws:RequestTag/spotswap:group",
                );
            }
        }
        if mutating
            .iter()
            .any(|a| a.to_ascii_lowercase().starts_with("autoscaling:"))
        {
            if !requires_managed_group(&entries) {
                self.find(at, "asg-untagged", "Auto Scaling mutations must require spotswap:enabled (true, or not false in opt-out mode)");
            }
            if (any("autoscaling:CreateOrUpdateTags") || any("autoscaling:DeleteTags"))
                && !limits_tag_keys(&entries)
            {
                self.find(
                    at,
                    "asg-untagged",
                    "group tag writes must limit aws:TagKeys to spotswap: record keys",
                );
            }
        }
        for a in mutating
            .iter()
            .filter(|a| a.to_ascii_lowercase().starts_with("iam:"))
        {
            if covers(a, "iam:PassRole") {
                let to_ec2 = entries.iter().any(|(op, key, values)| {
                    key == "iam:passedtoservice"
                        && op == "StringEquals"
                        && !values.is_empty()
                        && values
                            .iter()
                            .all(|v| v == "ec2.amazonaws.com" || v == "ec2.amazonaws.com.cn")
                });
                if !to_ec2 || !wildcard.is_empty() || resources.is_empty() {
                    self.find(
                        at,
                        "pass-role",
                        "iam:PassRole only for named roles, only to ec2.amazonaws.com",
                    );
                }
            } else if covers(a, "iam:CreateServiceLinkedRole") {
                let spot = entries.iter().any(|(op, key, values)| {
                    key == "iam:awsservicename" && op == "StringEquals" && values == &["spot.amazonaws.com"]
                });
                if !spot {
                    self.find(
                        at,
                        "service-linked-role",
                        "iam:CreateServiceLinkedRole only for spot.amazonaws.com",
                    );
                }
            } else {
                self.find(
                    at,
                    "iam-mutation",
                    format!("{a} is not an IAM action spotswap needs"),
                );
            }
        }
    }

    /// RunInstances/CreateFleet on launch inputs of this region and account only.
    fn launch_inputs_exempt(&self, actions: &[String], resources: &[String]) -> bool {
        let launch_only = actions.iter().all(|a| {
            let a = a.to_ascii_lowercase();
            a == "ec2:runinstances" || a == "ec2:createfleet"
        });
        launch_only
            && !resources.is_empty()
            && resources.iter().all(|r| {
                parse_arn(r).is_some_and(|a| {
                    a.service == "ec2"
                        && !has_wildcard(&a.region)
                        && !a.region.is_empty()
                        && LAUNCH_INPUT_TYPES.contains(&a.rtype.as_str())
                })
            })
    }

    /// Launch inputs are only safe next to a tag-gated instance statement for the same role.
    fn finish(&mut self) {
        for (holder, at) in std::mem::take(&mut self.launch_inputs) {
            if !self.gated_instance_launch.contains(&holder) {
                self.find(
                    &at,
                    "launch-inputs",
                    format!("{holder} allows launch inputs but no tag-gated RunInstances on instance/*"),
                );
            }
        }
    }
}

fn statements(doc: &Value) -> Vec<Value> {
    match doc.get("Statement") {
        Some(Value::Sequence(s)) => s.clone(),
        Some(one @ Value::Mapping(_)) => vec![one.clone()],
        _ => vec![],
    }
}

fn string_list(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Sequence(items)) => items.iter().map(as_text).collect(),
        Some(one) => vec![as_text(one)],
        None => vec![],
    }
}

/// The SAM policy templates the checker understands, expanded as SAM's policy_templates.json
/// defines them (with `Fn::Sub`, so parameters go through the same evaluation). `None` for any
/// other name: an unknown template is a finding, never a pass.
fn sam_policy_template(name: &str, params: &Value) -> Option<Value> {
    let (actions, resource, param): (&[&str], &str, Option<&str>) = match name {
        "SQSSendMessagePolicy" => (
            &["sqs:SendMessage*"],
            "arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:${p}",
            Some("QueueName"),
        ),
        "SQSPollerPolicy" => (
            &[
                "sqs:ChangeMessageVisibility",
                "sqs:ChangeMessageVisibilityBatch",
                "sqs:DeleteMessage",
                "sqs:DeleteMessageBatch",
                "sqs:GetQueueAttributes",
                "sqs:ReceiveMessage",
            ],
            "arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:${p}",
            Some("QueueName"),
        ),
        "SNSPublishMessagePolicy" => (
            &["sns:Publish"],
            "arn:${AWS::Partition}:sns:${AWS::Region}:${AWS::AccountId}:${p}",
            Some("TopicName"),
        ),
        "EventBridgePutEventsPolicy" => (
            &["events:PutEvents"],
            "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/${p}",
            Some("EventBusName"),
        ),
        "LambdaInvokePolicy" => (
            &["lambda:InvokeFunction"],
            "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:${p}*",
            Some("FunctionName"),
        ),
        "AWSSecretsManagerGetSecretValuePolicy" => {
            (&["secretsmanager:GetSecretValue"], "${p}", Some("SecretArn"))
        }
        "CloudWatchPutMetricPolicy" => (&["cloudwatch:PutMetricData"], "*", None),
        "EC2DescribePolicy" => (&["ec2:DescribeRegions", "ec2:DescribeInstances"], "*", None),
        _ => return None,
    };
    let resource = match param {
        None => Value::String(resource.into()),
        Some(p) => {
            let value = params.get(p)?.clone();
            let mut vars = Mapping::new();
            vars.insert("p".into(), value);
            let mut sub = Mapping::new();
            sub.insert(
                "Fn::Sub".into(),
                Value::Sequence(vec![resource.into(), Value::Mapping(vars)]),
            );
            Value::Mapping(sub)
        }
    };
    let mut st = Mapping::new();
    st.insert("Effect".into(), "Allow".into());
    st.insert(
        "Action".into(),
        Value::Sequence(actions.iter().map(|a| Value::String((*a).into())).collect()),
    );
    st.insert("Resource".into(), resource);
    let mut doc = Mapping::new();
    doc.insert("Statement".into(), Value::Sequence(vec![Value::Mapping(st)]));
    Some(Value::Mapping(doc))
}

/// Each function has a role of its own, an `AWS::IAM::Role` of this template.
fn check_function_roles(t: &Value, resources: &Mapping, report: &mut Report) {
    let mut find = |at: &str, detail: String| {
        let f = Finding {
            at: at.to_string(),
            rule: "function-role",
            detail,
        };
        report.findings.entry(f).or_insert_with(|| "any".into());
    };
    if t.get("Globals")
        .and_then(|g| g.get("Function"))
        .and_then(|f| f.get("Role"))
        .is_some()
    {
        find("Globals", "a Role in Globals is shared by every function".into());
    }
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for (id, r) in resources {
        let id = as_text(id);
        if r.get("Type").and_then(Value::as_str) != Some("AWS::Serverless::Function") {
            continue;
        }
        let role = r.get("Properties").and_then(|p| p.get("Role"));
        let target = role
            .and_then(intrinsic)
            .and_then(|(name, arg)| match (name.as_str(), arg) {
                ("Fn::GetAtt", Value::String(s)) => s.strip_suffix(".Arn").map(str::to_string),
                ("Fn::GetAtt", Value::Sequence(p)) if p.len() == 2 && as_text(&p[1]) == "Arn" => {
                    Some(as_text(&p[0]))
                }
                _ => None,
            });
        let Some(target) = target else {
            find(&id, "needs `Role: !GetAtt <its own AWS::IAM::Role>.Arn`".into());
            continue;
        };
        if resources
            .get(target.as_str())
            .and_then(|r| r.get("Type"))
            .and_then(Value::as_str)
            != Some("AWS::IAM::Role")
        {
            find(
                &id,
                format!("Role {target} is not an AWS::IAM::Role of this template"),
            );
        }
        if let Some(other) = seen.insert(target.clone(), id.clone()) {
            find(&id, format!("shares role {target} with {other}"));
        }
    }
}

/// A parameter that ends up in a policy resource must not accept `*`.
fn check_policy_parameters(t: &Value, resources: &Mapping, report: &mut Report) {
    let params = t
        .get("Parameters")
        .and_then(Value::as_mapping)
        .cloned()
        .unwrap_or_default();
    let mut used = BTreeSet::new();
    fn walk(v: &Value, params: &Mapping, used: &mut BTreeSet<String>) {
        match v {
            Value::Mapping(m) => {
                for (k, val) in m {
                    if matches!(k.as_str(), Some("Resource" | "NotResource")) {
                        parameter_refs(val, params, used);
                    }
                    walk(val, params, used);
                }
            }
            Value::Sequence(s) => s.iter().for_each(|i| walk(i, params, used)),
            Value::Tagged(tv) => walk(&tv.value, params, used),
            _ => {}
        }
    }
    for (_, r) in resources {
        let ty = r.get("Type").and_then(Value::as_str).unwrap_or_default();
        let props = r.get("Properties");
        if ty.starts_with("AWS::IAM::") || ty.ends_with("Policy") {
            walk(props.unwrap_or(&Value::Null), &params, &mut used);
        } else if ty.starts_with("AWS::Serverless::") {
            if let Some(p) = props.and_then(|p| p.get("Policies")) {
                parameter_refs(p, &params, &mut used);
            }
        }
    }
    for name in used {
        let p = &params[name.as_str()];
        let accepts_star = match (
            p.get("AllowedValues").and_then(Value::as_sequence),
            p.get("AllowedPattern"),
        ) {
            (Some(values), _) => values.iter().any(|v| as_text(v).contains('*')),
            (None, Some(pattern)) => match Regex::new(&as_text(pattern)) {
                Ok(re) => ["*", "a*", "*a", "a*a", "a/*"].iter().any(|s| re.is_match(s)),
                Err(_) => true,
            },
            (None, None) => true,
        };
        if accepts_star {
            let f = Finding {
                at: format!("Parameters/{name}"),
                rule: "parameter-wildcard",
                detail: "used in a policy resource; needs an AllowedPattern or AllowedValues that reject *"
                    .into(),
            };
            report.findings.entry(f).or_insert_with(|| "any".into());
        }
    }
}

// ------------------------------------------------------------------------------------------------
// Tests: the template passes; the checker catches what it must.
// ------------------------------------------------------------------------------------------------

fn template() -> Value {
    serde_yaml::from_str(TEMPLATE).expect("template.yaml parses as YAML")
}

fn yaml(text: &str) -> Value {
    serde_yaml::from_str(text).expect("test YAML parses")
}

/// The statement list of `Resources.<id>`'s first inline policy (or of its PolicyDocument).
fn statements_of<'t>(t: &'t mut Value, id: &str) -> &'t mut Vec<Value> {
    let props = t["Resources"][id]["Properties"]
        .as_mapping_mut()
        .expect("resource has Properties");
    let doc = if props.contains_key("PolicyDocument") {
        &mut props["PolicyDocument"]
    } else {
        &mut props["Policies"][0]["PolicyDocument"]
    };
    doc["Statement"].as_sequence_mut().expect("Statement is a list")
}

fn plant(id: &str, statement: &str) -> Report {
    let mut t = template();
    statements_of(&mut t, id).push(yaml(statement));
    check_value(&t)
}

fn assert_reports(report: &Report, rule: &str) {
    assert!(
        report.has(rule),
        "expected a `{rule}` finding, got:\n{}",
        report.render()
    );
}

#[test]
fn the_template_grants_no_unscoped_mutation() {
    // GIVEN template.yaml as committed
    // WHEN every policy is checked under every parameter combination that changes it
    let report = check_template(TEMPLATE).expect("template.yaml parses");
    // THEN nothing is reported, and the check did look at the three roles' statements
    assert!(
        report.findings.is_empty(),
        "template.yaml fails the IAM check:\n{}",
        report.render()
    );
    for role in [
        "RebalancerRole",
        "InterruptionHandlerRole",
        "OrphanReaperRole",
        "DeadLetterQueuePolicy",
    ] {
        assert!(
            report.holders.contains(role),
            "{role} was not checked: {:?}",
            report.holders
        );
    }
    assert!(
        report.scenarios >= 2,
        "opt-in and opt-out were not both evaluated"
    );
    assert!(
        report.statements >= 20 * report.scenarios,
        "too few statements checked: {}",
        report.statements
    );
}

#[test]
fn an_unconditioned_terminate_on_star_is_reported() {
    let report = plant(
        "RebalancerRole",
        "{Effect: Allow, Action: ec2:TerminateInstances, Resource: '*'}",
    );
    assert_reports(&report, "mutation-on-wildcard");
    assert_reports(&report, "terminate-untagged");
}

#[test]
fn a_subbed_wildcard_instance_arn_is_reported() {
    // `!Sub` arrives as a YAML tag; the ARN it builds names every instance in every account.
    let report = plant(
        "OrphanReaperRole",
        "{Effect: Allow, Action: [ec2:StopInstances], Resource: !Sub 'arn:${AWS::Partition}:ec2:*:*:instance/*'}",
    );
    assert_reports(&report, "mutation-on-wildcard");
    // The long form of the same intrinsic is read the same way.
    let report = plant(
        "OrphanReaperRole",
        "{Effect: Allow, Action: ec2:RebootInstances, Resource: {'Fn::Sub': 'arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:instance/*'}}",
    );
    assert_reports(&report, "mutation-on-wildcard");
}

#[test]
fn a_terminate_scoped_by_someone_elses_tag_is_reported() {
    let report = plant(
        "OrphanReaperRole",
        "{Effect: Allow, Action: ec2:TerminateInstances, Resource: '*', Condition: {'Null': {'ec2:ResourceTag/team': 'false'}}}",
    );
    assert!(!report.has("mutation-on-wildcard"), "{}", report.render());
    assert_reports(&report, "terminate-untagged");
}

fn plant_sam_policies(policies: &str) -> Report {
    let mut t = template();
    let props = t["Resources"]["OrphanReaperFunction"]["Properties"]
        .as_mapping_mut()
        .expect("function properties");
    props.insert("Policies".into(), yaml(policies));
    check_value(&t)
}

#[test]
fn a_sam_policy_template_granting_mutation_on_star_is_reported() {
    let report = plant_sam_policies("[{EC2DescribePolicy: {}}, {CloudWatchPutMetricPolicy: {}}]");
    assert_reports(&report, "mutation-on-wildcard");
    assert!(
        report
            .findings
            .keys()
            .any(|f| f.at.contains("CloudWatchPutMetricPolicy")),
        "{}",
        report.render()
    );
    // A template scoped to one of our resources is understood and passes.
    let report =
        plant_sam_policies("[{SQSSendMessagePolicy: {QueueName: !GetAtt DeadLetterQueue.QueueName}}]");
    assert!(report.findings.is_empty(), "{}", report.render());
    // The same template on every queue does not.
    let report = plant_sam_policies("[{SQSSendMessagePolicy: {QueueName: '*'}}]");
    assert_reports(&report, "mutation-on-wildcard");
}

#[test]
fn unknown_sam_templates_and_managed_policies_are_reported() {
    assert_reports(
        &plant_sam_policies("[{AmazonEC2FullAccessPolicy: {}}]"),
        "sam-policy-template",
    );
    assert_reports(&plant_sam_policies("AmazonEC2FullAccess"), "managed-policy");
    let mut t = template();
    let role = t["Resources"]["RebalancerRole"]["Properties"]
        .as_mapping_mut()
        .expect("role properties");
    role.insert(
        "ManagedPolicyArns".into(),
        yaml("[arn:aws:iam::aws:policy/AmazonEC2FullAccess]"),
    );
    assert_reports(&check_value(&t), "managed-policy");
}

#[test]
fn star_actions_are_reported_even_with_a_condition() {
    let report = plant(
        "RebalancerRole",
        "{Effect: Allow, Action: ['ec2:*'], Resource: '*', Condition: {StringEquals: {'aws:RequestedRegion': us-east-1}}}",
    );
    assert_reports(&report, "action-all");
    assert_reports(
        &plant("RebalancerRole", "{Effect: Allow, Action: '*', Resource: '*'}"),
        "action-all",
    );
    // A wildcard that is not Describe* counts as mutating (ec2:Get* includes GetPasswordData).
    assert_reports(
        &plant(
            "RebalancerRole",
            "{Effect: Allow, Action: 'ec2:Get*', Resource: '*'}",
        ),
        "mutation-on-wildcard",
    );
    assert!(plant(
        "RebalancerRole",
        "{Effect: Allow, Action: 'ec2:Describe*', Resource: '*'}"
    )
    .findings
    .is_empty());
}

#[test]
fn a_condition_that_one_branch_of_if_drops_is_reported() {
    // In opt-out mode the condition is gone: the statement is unscoped in that scenario.
    let report = plant(
        "OrphanReaperRole",
        "{Effect: Allow, Action: autoscaling:SuspendProcesses, Resource: '*', Condition: !If [OptOut, !Ref 'AWS::NoValue', {StringEquals: {'autoscaling:ResourceTag/spotswap:enabled': 'true'}}]}",
    );
    assert_reports(&report, "mutation-on-wildcard");
    assert!(
        report.render().contains("Mode=\"opt-out\""),
        "{}",
        report.render()
    );
}

#[test]
fn group_mutations_must_be_scoped_by_the_enabled_tag() {
    let report = plant(
        "OrphanReaperRole",
        "{Effect: Allow, Action: autoscaling:UpdateAutoScalingGroup, Resource: '*', Condition: {StringEquals: {'autoscaling:ResourceTag/team': web}}}",
    );
    assert_reports(&report, "asg-untagged");
    // Tag writes must not be able to flip spotswap:enabled itself.
    let report = plant(
        "OrphanReaperRole",
        "{Effect: Allow, Action: autoscaling:CreateOrUpdateTags, Resource: '*', Condition: {StringEquals: {'autoscaling:ResourceTag/spotswap:enabled': 'true'}, 'ForAllValues:StringLike': {'aws:TagKeys': ['spotswap:*']}}}",
    );
    assert_reports(&report, "asg-untagged");
}

#[test]
fn launches_must_require_our_tag_on_the_instance() {
    let report = plant(
        "RebalancerRole",
        "{Effect: Allow, Action: ec2:RunInstances, Resource: !Sub 'arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:instance/*'}",
    );
    assert_reports(&report, "mutation-on-wildcard");
    assert_reports(&report, "launch-untagged");
    // Launch inputs alone are harmless only next to the tag-gated instance statement.
    let mut t = template();
    statements_of(&mut t, "SwapPolicy")
        .retain(|s| s.get("Sid").and_then(Value::as_str) != Some("LaunchOnlyTaggedInstances"));
    assert_reports(&check_value(&t), "launch-inputs");
}

#[test]
fn pass_role_and_other_iam_mutations_are_reported() {
    let report = plant("RebalancerRole", "{Effect: Allow, Action: iam:PassRole, Resource: !Sub 'arn:${AWS::Partition}:iam::${AWS::AccountId}:role/app'}");
    assert_reports(&report, "pass-role");
    let report = plant(
        "RebalancerRole",
        "{Effect: Allow, Action: iam:CreateServiceLinkedRole, Resource: '*', Condition: {StringLike: {'iam:AWSServiceName': '*'}}}",
    );
    assert_reports(&report, "service-linked-role");
    let report = plant(
        "RebalancerRole",
        "{Effect: Allow, Action: iam:AttachRolePolicy, Resource: 'arn:aws:iam::123456789012:role/x'}",
    );
    assert_reports(&report, "iam-mutation");
}

#[test]
fn create_tags_outside_launch_needs_our_keys() {
    let report = plant(
        "InterruptionHandlerRole",
        "{Effect: Allow, Action: ec2:CreateTags, Resource: '*', Condition: {'Null': {'ec2:ResourceTag/aws:autoscaling:groupName': 'false'}}}",
    );
    assert_reports(&report, "create-tags");
    // spot alone does not do: the keys must be limited too
    let report = plant(
        "InterruptionHandlerRole",
        "{Effect: Allow, Action: ec2:CreateTags, Resource: '*', Condition: {StringEquals: {'ec2:InstanceMarketType': spot}}}",
    );
    assert_reports(&report, "create-tags");
}

#[test]
fn not_action_and_roles_shared_or_missing_are_reported() {
    assert_reports(
        &plant(
            "RebalancerRole",
            "{Effect: Allow, NotAction: iam:*, Resource: '*'}",
        ),
        "not-action",
    );
    for role in [Some("!GetAtt RebalancerRole.Arn"), None] {
        let mut t = template();
        let f = t["Resources"]["OrphanReaperFunction"]["Properties"]
            .as_mapping_mut()
            .expect("function properties");
        match role {
            Some(r) => f.insert("Role".into(), yaml(r)),
            None => f.remove("Role"),
        };
        assert_reports(&check_value(&t), "function-role");
    }
}

#[test]
fn a_parameter_that_accepts_star_in_a_resource_is_reported() {
    let mut t = template();
    let p = t["Parameters"]["EventBusName"]
        .as_mapping_mut()
        .expect("EventBusName parameter");
    p.insert("AllowedPattern".into(), ".+".into());
    assert_reports(&check_value(&t), "parameter-wildcard");
}

#[test]
fn arns_are_classified() {
    assert!(is_wildcard_resource("*"));
    assert!(is_wildcard_resource("arn:aws:ec2:*:*:instance/*"));
    assert!(is_wildcard_resource(
        "arn:aws:ec2:us-east-1:123456789012:instance/*"
    ));
    assert!(is_wildcard_resource(
        "arn:aws:autoscaling:us-east-1:1:autoScalingGroup:*:autoScalingGroupName/*"
    ));
    assert!(!is_wildcard_resource(
        "arn:aws:autoscaling:us-east-1:1:autoScalingGroup:*:autoScalingGroupName/web"
    ));
    assert!(!is_wildcard_resource(
        "arn:aws:logs:us-east-1:1:log-group:/aws/lambda/x:*"
    ));
    assert!(!is_wildcard_resource(
        "arn:aws:events:us-east-1:1:event-bus/default"
    ));
    assert!(!is_wildcard_resource("GETATT.DeadLetterQueue.Arn"));
    assert!(is_wildcard_resource("not-an-arn"));
    assert!(is_read_only("ec2:DescribeInstances") && is_read_only("pricing:GetProducts"));
    assert!(
        !is_read_only("ec2:GetPasswordData") && !is_read_only("ec2:CreateTags") && !is_read_only("ec2:Get*")
    );
}

#[test]
fn a_role_that_trusts_more_than_lambda_is_reported() {
    let mut t = template();
    let trust =
        &mut t["Resources"]["OrphanReaperRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"][0];
    trust["Principal"] = yaml("{AWS: 'arn:aws:iam::111122223333:root'}");
    assert_reports(&check_value(&t), "trust");
}
