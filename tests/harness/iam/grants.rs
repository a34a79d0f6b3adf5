//! What each function's role is allowed to call: the complement of the least-privilege rules.
//! Collects, per `AWS::Serverless::Function`, the actions of every `Allow` statement that
//! reaches its role (the role's inline `Policies`, and each `AWS::IAM::Policy` or
//! `AWS::IAM::ManagedPolicy` naming the role in `Roles`), whatever their resources and
//! conditions: whether the grant is scoped tightly enough is the checker's business.

use std::collections::{BTreeMap, BTreeSet};

use serde_yaml::Value;

use super::checker::{statements, string_list};
use super::rules::covers;
use super::scope::{as_text, intrinsic};

/// The action patterns granted to each function (by logical id) through its role.
pub fn function_grants(t: &Value) -> BTreeMap<String, BTreeSet<String>> {
    let Some(resources) = t.get("Resources").and_then(Value::as_mapping) else {
        return BTreeMap::new();
    };
    let mut by_role: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut allow = |role: String, doc: &Value| {
        let actions = by_role.entry(role).or_default();
        for st in statements(doc) {
            if st.get("Effect").map(as_text).as_deref() == Some("Allow") {
                actions.extend(string_list(st.get("Action")));
            }
        }
    };
    for (id, r) in resources {
        let props = &r["Properties"];
        match r.get("Type").and_then(Value::as_str) {
            Some("AWS::IAM::Role") => {
                for p in props["Policies"].as_sequence().into_iter().flatten() {
                    allow(as_text(id), &p["PolicyDocument"]);
                }
            }
            Some("AWS::IAM::Policy" | "AWS::IAM::ManagedPolicy") => {
                for role in props["Roles"].as_sequence().into_iter().flatten() {
                    if let Some((name, arg)) = intrinsic(role) {
                        if name == "Ref" {
                            allow(as_text(arg), &props["PolicyDocument"]);
                        }
                    }
                }
            }
            _ => {}
        }
    }
    resources
        .iter()
        .filter(|(_, r)| r.get("Type").and_then(Value::as_str) == Some("AWS::Serverless::Function"))
        .filter_map(|(id, r)| {
            let (name, arg) = intrinsic(&r["Properties"]["Role"])?;
            let role = match name.as_str() {
                "Fn::GetAtt" => as_text(arg).split('.').next()?.to_owned(),
                "Ref" => as_text(arg),
                _ => return None,
            };
            Some((as_text(id), by_role.get(&role).cloned().unwrap_or_default()))
        })
        .collect()
}

/// Whether one of `grants` covers `operation` (`service:Operation`, IAM's spelling), as IAM
/// matches actions: case-insensitively, `*` and `?` as wildcards.
pub fn grants_cover(grants: &BTreeSet<String>, operation: &str) -> bool {
    let op = operation.to_ascii_lowercase();
    grants.iter().any(|g| covers(&g.to_ascii_lowercase(), &op))
}
