//! `UpdateAutoScalingGroup` keeps a group's `MixedInstancesPolicy`, as AWS does: moto drops
//! the policy when an update does not repeat it ([`super::Proxy::set_keep_mixed_policies`]).
//!
//! The proxy remembers the `MixedInstancesPolicy.*` fields of each CreateAutoScalingGroup or
//! UpdateAutoScalingGroup it forwards, and adds those an update does not send: what moto then
//! stores is what AWS keeps (an update of the distribution alone keeps the launch template and
//! overrides). Production code never resends the policy.

use hyper::body::Bytes;
use hyper::http::request::Parts;

use super::call::{Call, Form};
use super::upstream::forward;
use super::{Reply, State};

const PREFIX: &str = "MixedInstancesPolicy.";

/// The `MixedInstancesPolicy.*` form fields last sent for each (region, group).
pub(super) type Policies = std::collections::HashMap<(String, String), Vec<(String, String)>>;

/// CreateAutoScalingGroup or UpdateAutoScalingGroup, with the group's policy kept.
pub(super) async fn group_write(state: &State, call: &Call, parts: &Parts, body: Bytes) -> Reply {
    if !state.scenario().keep_mixed_policies {
        return forward(state, parts, body).await;
    }
    let Some(group) = call.form.get("AutoScalingGroupName") else {
        return forward(state, parts, body).await;
    };
    let key = (call.region.clone(), group);
    let sent: Vec<(String, String)> = call
        .form
        .0
        .iter()
        .filter(|(k, _)| k.starts_with(PREFIX))
        .cloned()
        .collect();
    let kept = {
        let mut policies = state.mixed_policies();
        if call.operation == "CreateAutoScalingGroup" {
            policies.insert(key, sent);
            Vec::new()
        } else {
            // An update changes only the fields it sends (AWS keeps the others, as for a
            // partial InstancesDistribution): the remembered fields it does not send are
            // added, and what it sends replaces what was remembered.
            let old = policies.get(&key).cloned().unwrap_or_default();
            let mut merged: Vec<(String, String)> = old
                .into_iter()
                .filter(|(k, _)| !sent.iter().any(|(s, _)| s == k))
                .collect();
            let missing = merged.clone();
            merged.extend(sent);
            policies.insert(key, merged);
            missing
        }
    };
    if kept.is_empty() {
        return forward(state, parts, body).await;
    }
    let mut form = Form(call.form.0.clone());
    form.0.extend(kept);
    forward(state, parts, form.encode()).await
}
