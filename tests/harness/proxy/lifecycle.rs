//! Instances leaving and joining a group as AWS paces it, where moto is instant. Each part is
//! off until a test turns it on:
//!
//! - **Boot delay** ([`super::Proxy::set_boot_delay`]): when an instance leaves a group without
//!   a decrement (DetachInstances, TerminateInstanceInAutoScalingGroup), moto lists the group's
//!   replacement InService in the same answer; on AWS it boots first. Until the delay has
//!   passed on the proxy's clock ([`super::Proxy::advance_clock`]) the replacement is
//!   `Pending` in DescribeAutoScalingGroups and DescribeAutoScalingInstances and `pending` in
//!   DescribeInstances, and AttachInstances and DetachInstances judge it as `Pending`.
//! - **Terminating lifecycle hooks** ([`super::Proxy::set_lifecycle_hooks`]): moto terminates
//!   at once and has no CompleteLifecycleAction. Here TerminateInstanceInAutoScalingGroup of a
//!   member of a group with an `autoscaling:EC2_INSTANCE_TERMINATING` hook takes it out of the
//!   group's capacity at once (desired decremented when asked, else a replacement launched, as
//!   AWS does) and holds it, still listed, in `Terminating:Wait` until CompleteLifecycleAction
//!   names it or the hook's `HeartbeatTimeout` passes on the proxy's clock; then EC2
//!   terminates it. Underneath, moto detaches it (so its capacity is counted as AWS counts it),
//!   and the proxy lists it in the group until the end.
//! - **Suspended `Launch`** ([`super::Proxy::set_suspended_processes`]): moto launches whatever
//!   is suspended. Here, with `Launch` suspended, an instance leaving without a decrement gets
//!   no replacement: desired stays, capacity drops, and ResumeProcesses launches the missing
//!   ones ("When you resume the Launch process, Amazon EC2 Auto Scaling immediately replaces
//!   any instances that it terminated during the time that Launch was suspended"). Underneath,
//!   moto decrements, and the proxy adds the replacements owed back to `DesiredCapacity`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use hyper::body::Bytes;
use hyper::header::{self, HeaderValue};
use hyper::http::request::Parts;
use hyper::StatusCode;

use super::call::{percent_encode, Call, Form};
use super::errors;
use super::upstream::{ask_upstream, forward, replace_tag_text, tag_text, xml_response};
use super::xml::{append_to_list, between, blocks, map_blocks};
use super::{Reply, State};

/// AWS's usual time from a replacement's launch to InService, when a scenario sets none.
pub const DEFAULT_BOOT_DELAY: Duration = Duration::from_secs(90);

/// A group's replacement still booting: listed `Pending` until the boot delay has passed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Booting {
    /// The replacement.
    pub instance: String,
    /// The instance whose leaving made the group launch it (empty for a launch owed while
    /// `Launch` was suspended).
    pub replaces: String,
}

struct Boot {
    region: String,
    group: String,
    replaces: String,
    visible_at: Instant,
}

struct Held {
    region: String,
    group: String,
    /// The instance's DescribeAutoScalingInstances `<member>` content, in `Terminating:Wait`.
    member: String,
    deadline: Instant,
    /// An EC2-scoped Authorization header, for the termination at the end.
    ec2_auth: String,
}

/// The emulation's switches and what it tracks.
#[derive(Default)]
pub(super) struct Life {
    pub(super) boot_delay: Option<Duration>,
    pub(super) hooks: bool,
    pub(super) suspended: bool,
    booting: BTreeMap<String, Boot>,
    held: BTreeMap<String, Held>,
    /// Replacements not launched while `Launch` was suspended, per (region, group).
    owed: BTreeMap<(String, String), u32>,
}

impl Life {
    fn on(&self) -> bool {
        self.boot_delay.is_some() || self.hooks || self.suspended
    }

    fn is_booting(&self, id: &str, now: Instant) -> bool {
        self.booting.get(id).is_some_and(|b| now < b.visible_at)
    }

    pub(super) fn owed(&self, region: &str, group: &str) -> u32 {
        self.owed
            .get(&(region.to_owned(), group.to_owned()))
            .copied()
            .unwrap_or(0)
    }

    pub(super) fn booting_in(&self, region: Option<&str>, group: &str, now: Instant) -> Vec<Booting> {
        self.booting
            .iter()
            .filter(|(_, b)| b.group == group && region.is_none_or(|r| r == b.region) && now < b.visible_at)
            .map(|(id, b)| Booting {
                instance: id.clone(),
                replaces: b.replaces.clone(),
            })
            .collect()
    }
}

/// Whether the call is one this module answers or rewrites, with the emulation on.
pub(super) fn handles(state: &State, call: &Call) -> bool {
    if !state.life().on() {
        return false;
    }
    matches!(
        (call.service.as_str(), call.operation.as_str()),
        ("autoscaling", "DescribeAutoScalingGroups")
            | ("autoscaling", "DescribeAutoScalingInstances")
            | ("autoscaling", "TerminateInstanceInAutoScalingGroup")
            | ("autoscaling", "CompleteLifecycleAction")
            | ("autoscaling", "ResumeProcesses")
            | ("autoscaling", "UpdateAutoScalingGroup")
            | ("ec2", "DescribeInstances")
    )
}

/// Answers a call [`handles`] accepted.
pub(super) async fn answer(state: &State, call: &Call, parts: &Parts, body: Bytes) -> Reply {
    expire(state).await;
    match call.operation.as_str() {
        "DescribeAutoScalingGroups" => {
            let reply = forward(state, parts, body).await;
            rewrite(reply, |xml| rewrite_groups(state, &call.region, xml))
        }
        "DescribeAutoScalingInstances" => {
            let reply = forward(state, parts, body).await;
            rewrite(reply, |xml| rewrite_asg_instances(state, call, xml))
        }
        "DescribeInstances" => {
            let reply = forward(state, parts, body).await;
            rewrite(reply, |xml| rewrite_ec2_instances(state, xml))
        }
        "TerminateInstanceInAutoScalingGroup" => terminate_in_group(state, call, parts, body).await,
        "CompleteLifecycleAction" => complete(state, call, parts, body).await,
        "ResumeProcesses" => resume(state, call, parts, body).await,
        "UpdateAutoScalingGroup" => {
            let reply = forward(state, parts, body).await;
            if reply.status() == StatusCode::OK && call.form.get("DesiredCapacity").is_some() {
                // A desired capacity set outright replaces whatever was owed.
                let group = call.form.get("AutoScalingGroupName").unwrap_or_default();
                state.life().owed.remove(&(call.region.clone(), group));
            }
            reply
        }
        _ => forward(state, parts, body).await,
    }
}

/// The lifecycle state the group gives `id` now: `Pending` while booting, `Terminating:Wait`
/// while held; `None` when moto's own answer stands.
pub(super) fn state_of(state: &State, id: &str) -> Option<&'static str> {
    let now = state.now();
    let life = state.life();
    if life.is_booting(id, now) {
        Some("Pending")
    } else if life.held.contains_key(id) {
        Some("Terminating:Wait")
    } else {
        None
    }
}

/// The group of an instance held in `Terminating:Wait`.
pub(super) fn held_group(state: &State, id: &str) -> Option<String> {
    state.life().held.get(id).map(|h| h.group.clone())
}

/// An instance leaving `group` through the forwarded `body` (DetachInstances, or
/// TerminateInstanceInAutoScalingGroup without a hook), with the boot delay and a suspended
/// `Launch` applied.
pub(super) async fn leave(
    state: &State,
    parts: &Parts,
    body: Bytes,
    group: &str,
    region: &str,
    departing: &[String],
    decrement: bool,
) -> Reply {
    let (boot_delay, suspended) = {
        let life = state.life();
        (life.boot_delay, life.suspended)
    };
    if decrement || (boot_delay.is_none() && !suspended) {
        return forward(state, parts, body).await;
    }
    let auth = parts.headers.get(header::AUTHORIZATION);
    let Ok(before) = group_view(state, auth, group).await else {
        return forward(state, parts, body).await;
    };
    if suspended && before.launch_suspended {
        let mut form = Form::parse(&body);
        form.0.retain(|(k, _)| k != "ShouldDecrementDesiredCapacity");
        form.0
            .push(("ShouldDecrementDesiredCapacity".to_owned(), "true".to_owned()));
        let reply = forward(state, parts, form.encode()).await;
        if reply.status() == StatusCode::OK {
            *state
                .life()
                .owed
                .entry((region.to_owned(), group.to_owned()))
                .or_default() += departing.len() as u32;
        }
        return reply;
    }
    let reply = forward(state, parts, body).await;
    if reply.status() == StatusCode::OK {
        if let Ok(after) = group_view(state, auth, group).await {
            note_replacements(state, region, group, &before.members, &after.members, departing);
        }
    }
    reply
}

fn note_replacements(
    state: &State,
    region: &str,
    group: &str,
    before: &BTreeSet<String>,
    after: &BTreeSet<String>,
    departing: &[String],
) {
    let Some(delay) = state.life().boot_delay else {
        return;
    };
    let visible_at = state.now() + delay;

    let mut life = state.life();
    let mut departed = departing.iter();
    for id in after.difference(before) {
        life.booting.insert(
            id.clone(),
            Boot {
                region: region.to_owned(),
                group: group.to_owned(),
                replaces: departed.next().cloned().unwrap_or_default(),
                visible_at,
            },
        );
    }
}

/// What the proxy needs of one group from moto.
struct GroupView {
    members: BTreeSet<String>,
    desired: u32,
    launch_suspended: bool,
}

async fn group_view(state: &State, auth: Option<&HeaderValue>, group: &str) -> Result<GroupView, String> {
    let query = format!(
        "Action=DescribeAutoScalingGroups&Version=2011-01-01&AutoScalingGroupNames.member.1={}",
        percent_encode(group)
    );
    let xml = ask_upstream(state, auth, query).await?;
    let instances = between(&xml, "Instances").unwrap_or_default();
    let members = blocks(instances, "member")
        .into_iter()
        .filter_map(|m| tag_text(m, "InstanceId").map(str::to_owned))
        .collect();
    let desired = tag_text(&xml, "DesiredCapacity")
        .and_then(|d| d.parse().ok())
        .ok_or_else(|| format!("no group {group}"))?;
    let suspended = between(&xml, "SuspendedProcesses").unwrap_or_default();
    Ok(GroupView {
        members,
        desired,
        launch_suspended: suspended.contains("<ProcessName>Launch</ProcessName>"),
    })
}

/// TerminateInstanceInAutoScalingGroup: held in `Terminating:Wait` when the group has a
/// terminating hook and hooks are honoured, else [`leave`].
async fn terminate_in_group(state: &State, call: &Call, parts: &Parts, body: Bytes) -> Reply {
    let id = call.form.get("InstanceId").unwrap_or_default();
    let decrement = call.form.get("ShouldDecrementDesiredCapacity").as_deref() == Some("true");
    let auth = parts.headers.get(header::AUTHORIZATION);
    let _one_at_a_time = state.membership.lock().await;
    let query = format!(
        "Action=DescribeAutoScalingInstances&Version=2011-01-01&InstanceIds.member.1={}",
        percent_encode(&id)
    );
    let member = match ask_upstream(state, auth, query).await {
        Ok(xml) => blocks(
            between(&xml, "AutoScalingInstances").unwrap_or_default(),
            "member",
        )
        .into_iter()
        .find(|m| tag_text(m, "InstanceId") == Some(id.as_str()))
        .map(str::to_owned),
        Err(_) => None,
    };
    let Some(member) = member else {
        // Not in a group (or held already): moto's own answer.
        return forward(state, parts, body).await;
    };
    let group = tag_text(&member, "AutoScalingGroupName")
        .unwrap_or_default()
        .to_owned();
    let timeout = if state.life().hooks {
        terminating_hook_timeout(state, auth, &group).await
    } else {
        None
    };
    let departing = [id.clone()];
    let Some(timeout) = timeout else {
        return leave(state, parts, body, &group, &call.region, &departing, decrement).await;
    };
    let detach = format!(
        "Action=DetachInstances&Version=2011-01-01&AutoScalingGroupName={}&InstanceIds.member.1={}&ShouldDecrementDesiredCapacity={decrement}",
        percent_encode(&group),
        percent_encode(&id)
    );
    let reply = leave(
        state,
        parts,
        Bytes::from(detach),
        &group,
        &call.region,
        &departing,
        decrement,
    )
    .await;
    if reply.status() != StatusCode::OK {
        return reply;
    }
    let ec2_auth = auth
        .and_then(|a| a.to_str().ok())
        .unwrap_or_default()
        .replace("/autoscaling/", "/ec2/");
    state.life().held.insert(
        id.clone(),
        Held {
            region: call.region.clone(),
            group: group.clone(),
            member: replace_tag_text(&member, "LifecycleState", "Terminating:Wait"),
            deadline: state.now() + timeout,
            ec2_auth,
        },
    );
    xml_response(
        StatusCode::OK,
        format!(
            "<TerminateInstanceInAutoScalingGroupResponse xmlns=\"http://autoscaling.amazonaws.com/doc/2011-01-01/\">\
             <TerminateInstanceInAutoScalingGroupResult><Activity><ActivityId>{}</ActivityId>\
             <AutoScalingGroupName>{group}</AutoScalingGroupName><Description>Terminating EC2 instance: {id}</Description>\
             <Cause>instance {id} was taken out of service in response to a user request.</Cause>\
             <StatusCode>InProgress</StatusCode><Progress>0</Progress></Activity>\
             </TerminateInstanceInAutoScalingGroupResult><ResponseMetadata><RequestId>{}</RequestId>\
             </ResponseMetadata></TerminateInstanceInAutoScalingGroupResponse>",
            state.request_id(),
            state.request_id()
        ),
    )
}

/// The `HeartbeatTimeout` of `group`'s terminating hook, when it has one.
async fn terminating_hook_timeout(
    state: &State,
    auth: Option<&HeaderValue>,
    group: &str,
) -> Option<Duration> {
    let query = format!(
        "Action=DescribeLifecycleHooks&Version=2011-01-01&AutoScalingGroupName={}",
        percent_encode(group)
    );
    let xml = ask_upstream(state, auth, query).await.ok()?;
    blocks(between(&xml, "LifecycleHooks")?, "member")
        .into_iter()
        .find(|h| tag_text(h, "LifecycleTransition") == Some("autoscaling:EC2_INSTANCE_TERMINATING"))
        .map(|h| {
            let secs = tag_text(h, "HeartbeatTimeout")
                .and_then(|t| t.parse().ok())
                .unwrap_or(3600);
            Duration::from_secs(secs)
        })
}

/// CompleteLifecycleAction for an instance held in `Terminating:Wait`: EC2 terminates it now.
async fn complete(state: &State, call: &Call, parts: &Parts, body: Bytes) -> Reply {
    if !state.life().hooks {
        return forward(state, parts, body).await;
    }
    let id = call.form.get("InstanceId").unwrap_or_default();
    let group = call.form.get("AutoScalingGroupName").unwrap_or_default();
    let held = {
        let mut life = state.life();
        let matches = life
            .held
            .get(&id)
            .is_some_and(|h| h.group == group && h.region == call.region);
        if matches {
            life.held.remove(&id)
        } else {
            None
        }
    };
    let Some(held) = held else {
        return errors::validation(
            state,
            &format!("No active Lifecycle Action found with instance ID {id}"),
        );
    };
    terminate_ec2(state, &held, &id).await;
    xml_response(
        StatusCode::OK,
        format!(
            "<CompleteLifecycleActionResponse xmlns=\"http://autoscaling.amazonaws.com/doc/2011-01-01/\">\
             <CompleteLifecycleActionResult/><ResponseMetadata><RequestId>{}</RequestId>\
             </ResponseMetadata></CompleteLifecycleActionResponse>",
            state.request_id()
        ),
    )
}

/// Ends the holds whose heartbeat timeout has passed (the hook's default result applies:
/// for a terminating hook, CONTINUE and ABANDON both terminate).
async fn expire(state: &State) {
    let now = state.now();
    let due: Vec<(String, Held)> = {
        let mut life = state.life();
        let ids: Vec<String> = life
            .held
            .iter()
            .filter(|(_, h)| h.deadline <= now)
            .map(|(id, _)| id.clone())
            .collect();
        ids.into_iter()
            .filter_map(|id| life.held.remove(&id).map(|h| (id, h)))
            .collect()
    };
    for (id, held) in due {
        terminate_ec2(state, &held, &id).await;
    }
}

async fn terminate_ec2(state: &State, held: &Held, id: &str) {
    let auth = HeaderValue::from_str(&held.ec2_auth).ok();
    let query = format!(
        "Action=TerminateInstances&Version={}&InstanceId.1={}",
        super::upstream::EC2_API_VERSION,
        percent_encode(id)
    );
    // A failure leaves the instance to the test's own clean-up; the hold is over either way.
    let _ = ask_upstream(state, auth.as_ref(), query).await;
}

/// ResumeProcesses: the replacements owed while `Launch` was suspended are launched now.
async fn resume(state: &State, call: &Call, parts: &Parts, body: Bytes) -> Reply {
    let reply = forward(state, parts, body).await;
    let group = call.form.get("AutoScalingGroupName").unwrap_or_default();
    let owed = state.life().owed(&call.region, &group);
    if reply.status() != StatusCode::OK || owed == 0 {
        return reply;
    }
    let auth = parts.headers.get(header::AUTHORIZATION);
    let Ok(before) = group_view(state, auth, &group).await else {
        return reply;
    };
    if before.launch_suspended {
        return reply;
    }
    let query = format!(
        "Action=UpdateAutoScalingGroup&Version=2011-01-01&AutoScalingGroupName={}&DesiredCapacity={}",
        percent_encode(&group),
        before.desired + owed
    );
    if ask_upstream(state, auth, query).await.is_ok() {
        state.life().owed.remove(&(call.region.clone(), group.clone()));
        if let Ok(after) = group_view(state, auth, &group).await {
            note_replacements(state, &call.region, &group, &before.members, &after.members, &[]);
        }
    }
    reply
}

fn rewrite(reply: Reply, f: impl FnOnce(&str) -> String) -> Reply {
    if reply.status() != StatusCode::OK {
        return reply;
    }
    let (parts, body) = reply.into_parts();
    let xml = f(&String::from_utf8_lossy(&body));
    hyper::Response::from_parts(parts, Bytes::from(xml))
}

/// Booting members `Pending`, held members listed in `Terminating:Wait`, desired capacity
/// with the replacements owed.
fn rewrite_groups(state: &State, region: &str, xml: &str) -> String {
    let now = state.now();
    let life = state.life();
    map_blocks(xml, "AutoScalingGroups", "member", |group| {
        let name = tag_text(group, "AutoScalingGroupName").unwrap_or_default();
        let mut group = group.to_owned();
        let owed = life.owed(region, name);
        if owed > 0 {
            if let Some(d) = tag_text(&group, "DesiredCapacity").and_then(|d| d.parse::<u32>().ok()) {
                group = replace_tag_text(&group, "DesiredCapacity", &(d + owed).to_string());
            }
        }
        group = map_blocks(&group, "Instances", "member", |m| {
            pending_if_booting(&life, m, now)
        });
        let held: String = life
            .held
            .values()
            .filter(|h| h.group == name && h.region == region)
            .map(|h| {
                let without_group = match (
                    h.member.find("<AutoScalingGroupName>"),
                    h.member.find("</AutoScalingGroupName>"),
                ) {
                    (Some(s), Some(e)) => format!(
                        "{}{}",
                        &h.member[..s],
                        &h.member[e + "</AutoScalingGroupName>".len()..]
                    ),
                    _ => h.member.clone(),
                };
                format!("<member>{without_group}</member>")
            })
            .collect();
        append_to_list(&group, "Instances", &held)
    })
}

fn rewrite_asg_instances(state: &State, call: &Call, xml: &str) -> String {
    let now = state.now();
    let life = state.life();
    let asked: Vec<String> = (1..=50)
        .map_while(|n| call.form.get(&format!("InstanceIds.member.{n}")))
        .collect();
    let xml = map_blocks(xml, "AutoScalingInstances", "member", |m| {
        pending_if_booting(&life, m, now)
    });
    let held: String = life
        .held
        .iter()
        .filter(|(id, h)| h.region == call.region && (asked.is_empty() || asked.contains(id)))
        .map(|(_, h)| format!("<member>{}</member>", h.member))
        .collect();
    append_to_list(&xml, "AutoScalingInstances", &held)
}

fn rewrite_ec2_instances(state: &State, xml: &str) -> String {
    let now = state.now();
    let life = state.life();
    let mut out = xml.to_owned();
    for id in life.booting.keys().filter(|id| life.is_booting(id, now)) {
        let Some(at) = out.find(&format!("<instanceId>{id}</instanceId>")) else {
            continue;
        };
        let running = "<instanceState><code>16</code><name>running</name></instanceState>";
        if let Some(rel) = out[at..].find(running) {
            let s = at + rel;
            out.replace_range(
                s..s + running.len(),
                "<instanceState><code>0</code><name>pending</name></instanceState>",
            );
        }
    }
    out
}

fn pending_if_booting(life: &Life, member: &str, now: Instant) -> String {
    match tag_text(member, "InstanceId") {
        Some(id) if life.is_booting(id, now) => replace_tag_text(member, "LifecycleState", "Pending"),
        _ => member.to_owned(),
    }
}
