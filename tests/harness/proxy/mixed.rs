//! `UpdateAutoScalingGroup` keeps a group's `MixedInstancesPolicy`, as AWS does: moto drops
//! the policy when an update does not repeat it ([`super::Proxy::set_keep_mixed_policies`]).
//!
//! The proxy remembers the `MixedInstancesPolicy.*` fields of each CreateAutoScalingGroup or
//! UpdateAutoScalingGroup it forwards, and adds them to an update that sends none: what moto
//! then stores is what AWS keeps. Production code never resends the policy.

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
        if !sent.is_empty() || call.operation == "CreateAutoScalingGroup" {
            // The owner set (or, creating a group without one, cleared) the policy.
            policies.insert(key, sent);
            Vec::new()
        } else {
            policies.get(&key).cloned().unwrap_or_default()
        }
    };
    if kept.is_empty() {
        return forward(state, parts, body).await;
    }
    let mut form = Form(call.form.0.clone());
    form.0.extend(kept);
    forward(state, parts, form.encode()).await
}
