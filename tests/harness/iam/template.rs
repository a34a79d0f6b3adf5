//! Checks of the template as a whole, not of one statement: each function's role, and the
//! parameters that end up in policy resources.

use regex_lite::Regex;
use serde_yaml::{Mapping, Value};
use std::collections::{BTreeMap, BTreeSet};

use super::scope::{as_text, intrinsic, parameter_refs};
use super::{Finding, Report};

/// Each function has a role of its own, an `AWS::IAM::Role` of this template.
pub(super) fn check_function_roles(t: &Value, resources: &Mapping, report: &mut Report) {
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
pub(super) fn check_policy_parameters(t: &Value, resources: &Mapping, report: &mut Report) {
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
