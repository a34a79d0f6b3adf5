//! A spot wipe-out of a mixed-instances group, as AWS has it: moto launches a MIP group's
//! instances on-demand whatever the market, and answers DescribeScalingActivities with an
//! empty list.
//!
//! With [`super::Proxy::set_keep_mixed_policies`] on (the proxy knows each group's policy), a
//! MIP group's own launch **needs spot** while its `OnDemandPercentageAboveBaseCapacity` is
//! below 100 (AWS's default, when unset, is 100), and **cannot get it** while every pool of
//! its policy's override types in its AZs is out of capacity
//! ([`super::Proxy::set_no_capacity`]). Then, as on AWS:
//! - an `ec2:TerminateInstances` of its members (an interruption) leaves the group below its
//!   desired capacity: the proxy takes them out of the group in moto with a decrement first
//!   (moto would relaunch them at once, on-demand), remembers the instances owed, and answers
//!   DescribeAutoScalingGroups with AWS's DesiredCapacity (moto's plus those owed);
//! - each relaunch attempt fails: a `Failed` scaling activity whose StatusMessage is AWS's
//!   ("Could not launch Spot Instances. InsufficientInstanceCapacity - There is no Spot
//!   capacity available that matches your request."), recorded at the interruption and again
//!   on a DescribeScalingActivities at least [`RETRY_SECS`] after the last (AWS retries), and
//!   served in AWS's XML;
//! - once the group's launches need no spot (the distribution raised to 100) or its pools have
//!   capacity again, the next DescribeAutoScalingGroups finds AWS's launches made: moto's
//!   desired goes back up, so moto launches what is owed, and a `Successful` activity is
//!   recorded.
//!
//! Not modelled: weighted groups (owed instances count one unit each), the on-demand base
//! (any percent below 100 needs spot), and termination through the group.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hyper::body::Bytes;
use hyper::header::{HeaderValue, AUTHORIZATION};
use hyper::http::request::Parts;
use hyper::{Response, StatusCode};

use super::call::{percent_encode, Call};
use super::upstream::{
    ask_upstream, bad_gateway, forward, replace_tag_text, tag_text, xml_escape, xml_response,
};
use super::weights::{group_xml, set_desired};
use super::xml::{between, blocks, map_blocks};
use super::{Reply, State};

/// How long after a failed relaunch attempt AWS tries again (and fails again).
pub(super) const RETRY_SECS: u64 = 60;
const PERCENT: &str = "MixedInstancesPolicy.InstancesDistribution.OnDemandPercentageAboveBaseCapacity";
const OVERRIDES: &str = "MixedInstancesPolicy.LaunchTemplate.Overrides.member.";
const ASG_XMLNS: &str = "http://autoscaling.amazonaws.com/doc/2011-01-01/";
/// AWS's words for a spot launch that found no capacity.
pub(super) const NO_SPOT: &str = "Could not launch Spot Instances. InsufficientInstanceCapacity - There is no Spot capacity available that matches your request. Launching EC2 instance failed.";

/// One scaling activity the proxy records.
#[derive(Debug, Clone)]
struct Activity {
    id: String,
    status: &'static str,
    description: String,
    cause: String,
    message: String,
    start: SystemTime,
}

/// What the proxy keeps per (region, group).
#[derive(Debug, Default)]
pub(super) struct Outages {
    /// Instances AWS owes the group: its desired capacity above what moto holds.
    owed: HashMap<(String, String), u32>,
    /// The group's activities, oldest first.
    activities: HashMap<(String, String), Vec<Activity>>,
}

impl Outages {
    fn record(
        &mut self,
        at: SystemTime,
        key: &(String, String),
        status: &'static str,
        message: &str,
        desired: u32,
    ) {
        let list = self.activities.entry(key.clone()).or_default();
        let n = list.len() + 1;
        let now = at;
        list.push(Activity {
            id: format!("proxy-activity-{}-{n}", key.1),
            status,
            description: if status == "Failed" {
                format!("Launching a new EC2 instance.  Status Reason: {message}")
            } else {
                "Launching a new EC2 instance".to_owned()
            },
            cause: format!(
                "At {} an instance was started in response to a difference between desired and actual capacity, increasing the capacity to {desired}.",
                rfc3339(now)
            ),
            message: message.to_owned(),
            start: now,
        });
    }
}

/// The proxy's wall clock: the system's plus [`super::Proxy::advance_clock`]'s skips, so
/// activities line up with a test's simulated cycle times.
fn wall_now(state: &State) -> SystemTime {
    SystemTime::now() + *state.clock.lock().unwrap_or_else(|e| e.into_inner())
}

fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    spotswap_core::Timestamp::from_unix(secs).to_rfc3339()
}

/// The header re-scoped to `service` (moto routes by the signing scope, which it does not check).
fn scoped(auth: Option<&HeaderValue>, service: &str) -> Option<HeaderValue> {
    let a = auth?.to_str().ok()?;
    let scoped = ["/ec2/aws4_request", "/autoscaling/aws4_request"]
        .iter()
        .fold(a.to_owned(), |a, s| {
            a.replace(s, &format!("/{service}/aws4_request"))
        });
    HeaderValue::from_str(&scoped).ok()
}

/// The group's override types and whether its launches need spot, from its kept policy;
/// `None` for a group without a mixed instances policy.
fn policy_of(state: &State, key: &(String, String)) -> Option<(Vec<String>, bool)> {
    let policies = state.mixed_policies();
    let fields = policies.get(key)?;
    let types: Vec<String> = fields
        .iter()
        .filter(|(k, _)| k.starts_with(OVERRIDES) && k.ends_with(".InstanceType"))
        .map(|(_, v)| v.clone())
        .collect();
    if types.is_empty() {
        return None;
    }
    let percent = fields
        .iter()
        .find(|(k, _)| k == PERCENT)
        .and_then(|(_, v)| v.trim().parse::<u32>().ok())
        .unwrap_or(100);
    Some((types, percent < 100))
}

/// moto's DesiredCapacity and AvailabilityZones of `group`.
async fn moto_group(
    state: &State,
    auth: Option<&HeaderValue>,
    group: &str,
) -> Result<(u32, Vec<String>), String> {
    let (desired, xml) = group_xml(state, auth, group).await?;
    let azs = between(&xml, "AvailabilityZones")
        .map(|l| blocks(l, "member").into_iter().map(str::to_owned).collect())
        .unwrap_or_default();
    Ok((desired, azs))
}

/// True when the group's own launches now fail: they need spot and every pool is out.
fn launches_fail(state: &State, key: &(String, String), azs: &[String]) -> bool {
    let Some((types, needs_spot)) = policy_of(state, key) else {
        return false;
    };
    let scenario = state.scenario();
    needs_spot
        && !azs.is_empty()
        && types
            .iter()
            .all(|t| azs.iter().all(|az| scenario.is_ice(Some(t), Some(az))))
}

/// True when this call may concern a wiped-out group.
pub(super) fn handles(state: &State, call: &Call) -> bool {
    if !state.scenario().keep_mixed_policies {
        return false;
    }
    match (call.service.as_str(), call.operation.as_str()) {
        ("ec2", "TerminateInstances") => !state.scenario().no_capacity.is_empty(),
        ("autoscaling", "DescribeScalingActivities") => call.form.get("AutoScalingGroupName").is_some(),
        ("autoscaling", "DescribeAutoScalingGroups") => !state.outages().owed.is_empty(),
        _ => false,
    }
}

pub(super) async fn answer(state: &State, call: &Call, parts: &Parts, body: Bytes) -> Reply {
    let result = match call.operation.as_str() {
        "TerminateInstances" => terminate(state, call, parts, body).await,
        "DescribeScalingActivities" => activities(state, call, parts).await,
        _ => describe_groups(state, call, parts, body).await,
    };
    result.unwrap_or_else(bad_gateway)
}

/// TerminateInstances: members of a group whose launches fail leave it with a decrement
/// first, so moto does not relaunch them; AWS owes the group their capacity.
async fn terminate(state: &State, call: &Call, parts: &Parts, body: Bytes) -> Result<Reply, String> {
    let ids: Vec<String> = call
        .form
        .0
        .iter()
        .filter(|(k, _)| k.starts_with("InstanceId."))
        .map(|(_, v)| v.clone())
        .collect();
    let asg = scoped(parts.headers.get(AUTHORIZATION), "autoscaling");
    let _one_at_a_time = state.membership.lock().await;
    let mut query = "Action=DescribeAutoScalingInstances&Version=2011-01-01".to_owned();
    for (n, id) in ids.iter().enumerate() {
        query.push_str(&format!("&InstanceIds.member.{}={}", n + 1, percent_encode(id)));
    }
    let xml = ask_upstream(state, asg.as_ref(), query).await?;
    let mut by_group: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for m in between(&xml, "AutoScalingInstances").map_or(Vec::new(), |l| blocks(l, "member")) {
        if let (Some(id), Some(g)) = (tag_text(m, "InstanceId"), tag_text(m, "AutoScalingGroupName")) {
            by_group.entry(g.to_owned()).or_default().push(id.to_owned());
        }
    }
    for (group, members) in by_group {
        let key = (call.region.clone(), group.clone());
        if policy_of(state, &key).is_none() {
            continue;
        }
        let (desired, azs) = moto_group(state, asg.as_ref(), &group).await?;
        if !launches_fail(state, &key, &azs) {
            continue;
        }
        let mut detach = format!(
            "Action=DetachInstances&Version=2011-01-01&AutoScalingGroupName={}&ShouldDecrementDesiredCapacity=true",
            percent_encode(&group)
        );
        for (n, id) in members.iter().enumerate() {
            detach.push_str(&format!("&InstanceIds.member.{}={}", n + 1, percent_encode(id)));
        }
        ask_upstream(state, asg.as_ref(), detach).await?;
        let mut outages = state.outages();
        let owed = outages.owed.entry(key.clone()).or_default();
        *owed += members.len() as u32;
        outages.record(wall_now(state), &key, "Failed", NO_SPOT, desired);
    }
    Ok(forward(state, parts, body).await)
}

/// DescribeAutoScalingGroups: owed launches made where they now succeed, then AWS's desired.
async fn describe_groups(state: &State, call: &Call, parts: &Parts, body: Bytes) -> Result<Reply, String> {
    let auth = parts.headers.get(AUTHORIZATION);
    let owed: Vec<((String, String), u32)> = {
        let outages = state.outages();
        outages
            .owed
            .iter()
            .filter(|((region, _), n)| *region == call.region && **n > 0)
            .map(|(k, n)| (k.clone(), *n))
            .collect()
    };
    let mut still: HashMap<String, u32> = HashMap::new();
    {
        let _one_at_a_time = state.membership.lock().await;
        for (key, n) in owed {
            let (desired, azs) = moto_group(state, auth, &key.1).await?;
            if launches_fail(state, &key, &azs) {
                still.insert(key.1.clone(), n);
                continue;
            }
            set_desired(state, auth, &key.0, &key.1, desired + n).await?;
            let mut outages = state.outages();
            outages.owed.remove(&key);
            outages.record(wall_now(state), &key, "Successful", "", desired + n);
        }
    }
    let response = forward(state, parts, body).await;
    if response.status() != StatusCode::OK || still.is_empty() {
        return Ok(response);
    }
    let (head, bytes) = response.into_parts();
    let xml = String::from_utf8_lossy(&bytes).into_owned();
    let xml = map_blocks(&xml, "AutoScalingGroups", "member", |g| {
        let owed = tag_text(g, "AutoScalingGroupName").and_then(|n| still.get(n));
        match (
            owed,
            tag_text(g, "DesiredCapacity").and_then(|d| d.parse::<u32>().ok()),
        ) {
            (Some(n), Some(d)) => replace_tag_text(g, "DesiredCapacity", &(d + n).to_string()),
            _ => g.to_owned(),
        }
    });
    Ok(Response::from_parts(head, Bytes::from(xml)))
}

/// DescribeScalingActivities of one group: the proxy's record, newest first, in AWS's XML;
/// a group still owed whose launches fail gets a new failed attempt every [`RETRY_SECS`].
async fn activities(state: &State, call: &Call, parts: &Parts) -> Result<Reply, String> {
    let group = call.form.get("AutoScalingGroupName").unwrap_or_default();
    let key = (call.region.clone(), group.clone());
    let owed = state.outages().owed.get(&key).copied().unwrap_or(0);
    if owed > 0 {
        let (desired, azs) = moto_group(state, parts.headers.get(AUTHORIZATION), &group).await?;
        let mut outages = state.outages();
        let due = outages
            .activities
            .get(&key)
            .and_then(|l| l.last())
            .is_none_or(|a| {
                let since = wall_now(state).duration_since(a.start).unwrap_or_default();
                since >= Duration::from_secs(RETRY_SECS)
            });
        if due && launches_fail(state, &key, &azs) {
            outages.record(wall_now(state), &key, "Failed", NO_SPOT, desired + owed);
        }
    }
    let list = state.outages().activities.get(&key).cloned().unwrap_or_default();
    let members: String = list
        .iter()
        .rev()
        .take(100)
        .map(|a| {
            let message = if a.message.is_empty() {
                String::new()
            } else {
                format!("<StatusMessage>{}</StatusMessage>", xml_escape(&a.message))
            };
            format!(
                "<member><ActivityId>{}</ActivityId><AutoScalingGroupName>{}</AutoScalingGroupName>\
                 <Description>{}</Description><Cause>{}</Cause><StartTime>{}</StartTime>\
                 <EndTime>{}</EndTime><StatusCode>{}</StatusCode>{message}<Progress>100</Progress>\
                 <Details>{{}}</Details></member>",
                xml_escape(&a.id),
                xml_escape(&group),
                xml_escape(&a.description),
                xml_escape(&a.cause),
                rfc3339(a.start),
                rfc3339(a.start),
                a.status,
            )
        })
        .collect();
    Ok(xml_response(
        StatusCode::OK,
        format!(
            "<DescribeScalingActivitiesResponse xmlns=\"{ASG_XMLNS}\"><DescribeScalingActivitiesResult>\
             <Activities>{members}</Activities></DescribeScalingActivitiesResult><ResponseMetadata>\
             <RequestId>{}</RequestId></ResponseMetadata></DescribeScalingActivitiesResponse>",
            state.request_id()
        ),
    ))
}
