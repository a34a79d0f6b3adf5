//! The rules of the module docs, applied to each policy document a resource holds.

use serde_yaml::Value;
use std::collections::BTreeSet;

use super::rules::{
    condition_entries, covers, has_wildcard, is_conditioned, is_read_only, is_wildcard_resource,
    limits_tag_keys, parse_arn, requires_managed_group, requires_tag, tag_condition_keys,
};
use super::sam::sam_policy_template;
use super::scope::{as_text, Scope};
use super::{Finding, Report};

/// Resource types a RunInstances/CreateFleet request uses or creates alongside the instance.
pub(super) const LAUNCH_INPUT_TYPES: &[&str] = &[
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

/// Instance tags that mark an instance as ours (DESIGN.md §3).
pub(super) const OUR_INSTANCE_TAGS: &[&str] = &["spotswap:group", "spotswap:detached-at"];
/// The tag AutoSpotting puts on its launches: `migrate --reap-autospotting-orphans` terminates
/// only instances carrying it (`true`, exactly).
pub(super) const AUTOSPOTTING_LAUNCH_TAG: &str = "launched-by-autospotting";

pub(super) struct Checker<'s, 'r> {
    scope: &'s Scope<'s>,
    label: &'s str,
    report: &'r mut Report,
    /// Holders with an unconditioned launch-inputs statement, and where it is.
    launch_inputs: Vec<(String, String)>,
    /// Holders that allow RunInstances on `instance` only with our request tag.
    gated_instance_launch: BTreeSet<String>,
}

impl<'s, 'r> Checker<'s, 'r> {
    pub(super) fn new(scope: &'s Scope<'s>, label: &'s str, report: &'r mut Report) -> Self {
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

    pub(super) fn resource(&mut self, id: &str, r: &Value, template: &Value) {
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
            let autospotting = tag_condition_keys(
                &["ec2:resourcetag/", "aws:resourcetag/"],
                &[AUTOSPOTTING_LAUNCH_TAG],
            );
            let autospotting_orphan = entries.iter().any(|(op, key, values)| {
                autospotting.contains(key) && op == "StringEquals" && values == &["true"]
            });
            if !requires_tag(&entries, &keys) && !autospotting_orphan {
                self.find(
                    at,
                    "terminate-untagged",
                    "ec2:TerminateInstances must require spotswap:group or spotswap:detached-at (or launched-by-autospotting=true)",
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
            // A template made from a launch configuration, tagged as it is created, our key only.
            let at_template_creation = entries.iter().any(|(op, key, values)| {
                key == "ec2:createaction" && op == "StringEquals" && values == &["CreateLaunchTemplate"]
            }) && limits_tag_keys(&entries);
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
            // Stateful groups' records: only the two carry keys, only on volumes and Elastic IPs
            // (neither can be scoped by a tag the record has not written yet).
            let carry_records = !resources.is_empty()
                && resources
                    .iter()
                    .all(|r| parse_arn(r).is_some_and(|a| a.rtype == "volume" || a.rtype == "elastic-ip"))
                && entries.iter().any(|(op, key, values)| {
                    key == "aws:tagkeys"
                        && op == "ForAllValues:StringEquals"
                        && !values.is_empty()
                        && values
                            .iter()
                            .all(|v| v == "spotswap:carry-device" || v == "spotswap:carry-eip-group")
                });
            if !at_launch && !at_template_creation && !on_members && !on_interrupted_spot && !carry_records {
                self.find(at, "create-tags", "ec2:CreateTags must be at launch (ec2:CreateAction) or spotswap: keys on our, group or spot instances");
            }
        }
        // Launch templates: created only with our tag, deleted only when they carry it.
        let from_lc = ["spotswap:from-launch-configuration"];
        if any("ec2:CreateLaunchTemplate")
            && !requires_tag(&entries, &tag_condition_keys(&["aws:requesttag/"], &from_lc))
        {
            self.find(
                at,
                "template-untagged",
                "ec2:CreateLaunchTemplate must require aws:RequestTag/spotswap:from-launch-configuration",
            );
        }
        if any("ec2:DeleteLaunchTemplate")
            && !requires_tag(
                &entries,
                &tag_condition_keys(&["ec2:resourcetag/", "aws:resourcetag/"], &from_lc),
            )
        {
            self.find(
                at,
                "template-untagged",
                "ec2:DeleteLaunchTemplate must require ec2:ResourceTag/spotswap:from-launch-configuration",
            );
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
    pub(super) fn finish(&mut self) {
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

pub(super) fn statements(doc: &Value) -> Vec<Value> {
    match doc.get("Statement") {
        Some(Value::Sequence(s)) => s.clone(),
        Some(one @ Value::Mapping(_)) => vec![one.clone()],
        _ => vec![],
    }
}

pub(super) fn string_list(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Sequence(items)) => items.iter().map(as_text).collect(),
        Some(one) => vec![as_text(one)],
        None => vec![],
    }
}
