//! Weighted mixed-instances groups count desired capacity in units, as AWS does: moto counts
//! instances in AttachInstances and in a decrement, and units only when it sets desired.
//!
//! On AWS, a group whose policy gives its types `WeightedCapacity` keeps DesiredCapacity (and
//! MinSize, MaxSize) in those units: an attached instance adds its weight, a terminated one
//! with `ShouldDecrementDesiredCapacity` takes its weight off. moto's AttachInstances sets
//! desired to the number of members (a group of 3 instances at 6 units drops to 4 units after
//! one attach), and its decrement takes one off and then launches or terminates instances to
//! match the result in units (of the first override's weight): a swap's retire would end an
//! instance of the group. With [`super::Proxy::set_keep_mixed_policies`] on (the proxy knows
//! the group's policy), the proxy puts desired where AWS would: after an attach, desired
//! before the call plus the units attached; before a retire with a decrement, desired minus
//! the instance's units plus one, so that moto's own decrement of one lands on AWS's value.
//! Groups without weights are untouched.

use std::collections::BTreeMap;

use hyper::body::Bytes;
use hyper::header::HeaderValue;
use hyper::http::request::Parts;

use super::call::{percent_encode, Call};
use super::upstream::{ask_upstream, bad_gateway, forward, tag_text, EC2_API_VERSION};
use super::xml::{between, blocks};
use super::{Reply, State};

const OVERRIDES: &str = "MixedInstancesPolicy.LaunchTemplate.Overrides.member.";

/// The weights of the policy last sent for `group`, type → units; `None` when it has none.
pub(super) fn weights(state: &State, region: &str, group: &str) -> Option<BTreeMap<String, u32>> {
    let policies = state.mixed_policies();
    let fields = policies.get(&(region.to_owned(), group.to_owned()))?;
    let mut by_member: BTreeMap<&str, (Option<&str>, Option<u32>)> = BTreeMap::new();
    for (k, v) in fields {
        let Some((n, field)) = k.strip_prefix(OVERRIDES).and_then(|rest| rest.split_once('.')) else {
            continue;
        };
        let entry = by_member.entry(n).or_default();
        match field {
            "InstanceType" => entry.0 = Some(v.as_str()),
            "WeightedCapacity" => entry.1 = v.trim().parse().ok(),
            _ => {}
        }
    }
    let weights: BTreeMap<String, u32> = by_member
        .into_values()
        .filter_map(|(t, w)| Some((t?.to_owned(), w?)))
        .collect();
    (!weights.is_empty()).then_some(weights)
}

/// The group's DesiredCapacity and the instance types of `ids` among its members, as moto
/// lists them.
pub(super) async fn desired_and_types(
    state: &State,
    auth: Option<&HeaderValue>,
    group: &str,
    ids: &[String],
) -> Result<(u32, Vec<String>), String> {
    let (desired, xml) = group_xml(state, auth, group).await?;
    let members = between(&xml, "Instances").unwrap_or_default();
    let types = blocks(members, "member")
        .into_iter()
        .filter(|m| tag_text(m, "InstanceId").is_some_and(|id| ids.iter().any(|i| i == id)))
        .filter_map(|m| tag_text(m, "InstanceType").map(str::to_owned))
        .collect();
    Ok((desired, types))
}

/// The group's DesiredCapacity in moto, and moto's whole DescribeAutoScalingGroups answer.
pub(super) async fn group_xml(
    state: &State,
    auth: Option<&HeaderValue>,
    group: &str,
) -> Result<(u32, String), String> {
    let query = format!(
        "Action=DescribeAutoScalingGroups&Version=2011-01-01&AutoScalingGroupNames.member.1={}",
        percent_encode(group)
    );
    let xml = ask_upstream(state, auth, query).await?;
    let desired = tag_text(&xml, "DesiredCapacity")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("no DesiredCapacity for {group}"))?;
    Ok((desired, xml))
}

/// Sets the group's DesiredCapacity in moto, repeating the policy (moto would drop it).
pub(super) async fn set_desired(
    state: &State,
    auth: Option<&HeaderValue>,
    region: &str,
    group: &str,
    desired: u32,
) -> Result<(), String> {
    let mut query = format!(
        "Action=UpdateAutoScalingGroup&Version=2011-01-01&AutoScalingGroupName={}&DesiredCapacity={desired}",
        percent_encode(group)
    );
    let fields = state
        .mixed_policies()
        .get(&(region.to_owned(), group.to_owned()))
        .cloned()
        .unwrap_or_default();
    // The kept values are still percent-encoded, as they were sent.
    for (k, v) in fields {
        query.push_str(&format!("&{}={v}", percent_encode(&k)));
    }
    ask_upstream(state, auth, query).await.map(drop)
}

/// The units of instances of `types`: each type's weight, 1 for a type the policy does not
/// weigh.
pub(super) fn units(weights: &BTreeMap<String, u32>, types: &[String]) -> u32 {
    types.iter().map(|t| weights.get(t).copied().unwrap_or(1)).sum()
}

/// The instance types of `ids`, from EC2 (moto routes by the signing scope, which it does not
/// check: an Auto Scaling call's header is re-scoped to EC2).
pub(super) async fn instance_types(
    state: &State,
    auth: Option<&HeaderValue>,
    ids: &[String],
) -> Result<Vec<String>, String> {
    let ec2_auth = auth
        .and_then(|a| a.to_str().ok())
        .map(|a| a.replace("/autoscaling/aws4_request", "/ec2/aws4_request"))
        .and_then(|a| HeaderValue::from_str(&a).ok());
    let mut query = format!("Action=DescribeInstances&Version={EC2_API_VERSION}");
    for (n, id) in ids.iter().enumerate() {
        query.push_str(&format!("&InstanceId.{}={}", n + 1, percent_encode(id)));
    }
    let xml = ask_upstream(state, ec2_auth.as_ref(), query).await?;
    // Every instance of every reservation: only instances carry an `instanceType`.
    Ok(xml
        .split("<instanceType>")
        .skip(1)
        .filter_map(|rest| rest.split_once("</instanceType>").map(|(t, _)| t.to_owned()))
        .collect())
}

/// TerminateInstanceInAutoScalingGroup: with a decrement, in a weighted group, desired first
/// goes to what AWS leaves (its units off) plus the one moto's decrement takes.
pub(super) async fn terminate(state: &State, call: &Call, parts: &Parts, body: Bytes) -> Reply {
    let decrement = call.form.get("ShouldDecrementDesiredCapacity").as_deref() == Some("true");
    if !decrement || !state.scenario().keep_mixed_policies {
        return forward(state, parts, body).await;
    }
    let id = call.form.get("InstanceId").unwrap_or_default();
    let auth = parts.headers.get(hyper::header::AUTHORIZATION);
    let query = format!(
        "Action=DescribeAutoScalingInstances&Version=2011-01-01&InstanceIds.member.1={}",
        percent_encode(&id)
    );
    let group = match ask_upstream(state, auth, query).await {
        Ok(xml) => tag_text(&xml, "AutoScalingGroupName").map(str::to_owned),
        Err(e) => return bad_gateway(e),
    };
    let Some((group, weights)) = group.and_then(|g| weights(state, &call.region, &g).map(|w| (g, w))) else {
        return forward(state, parts, body).await;
    };
    let _one_at_a_time = state.membership.lock().await;
    let (desired, types) = match desired_and_types(state, auth, &group, std::slice::from_ref(&id)).await {
        Ok(found) => found,
        Err(e) => return bad_gateway(e),
    };
    let units = units(&weights, &types);
    if units > 1 {
        let to = (desired + 1).saturating_sub(units);
        if let Err(e) = set_desired(state, auth, &call.region, &group, to).await {
            return bad_gateway(e);
        }
    }
    forward(state, parts, body).await
}
