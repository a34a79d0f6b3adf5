//! AttachInstances and DetachInstances with AWS's membership rules, which moto lacks.

use hyper::body::Bytes;
use hyper::header;
use hyper::http::request::Parts;

use super::call::{percent_encode, Call};
use super::errors;
use super::lifecycle;
use super::upstream::{ask_upstream, bad_gateway, forward, tag_text};
use super::{weights, Reply, State};

/// One instance of an Auto Scaling membership call (`InstanceIds.member.N`) and where moto's
/// DescribeAutoScalingInstances places it: `(group, lifecycle state)`, `None` in no group.
pub(super) type Placement = (String, Option<(String, String)>);

/// The instances named by an AttachInstances or DetachInstances call, each with its placement.
pub(super) async fn placements(state: &State, call: &Call, parts: &Parts) -> Result<Vec<Placement>, String> {
    let ids: Vec<String> = (1..=20)
        .map_while(|n| call.form.get(&format!("InstanceIds.member.{n}")))
        .collect();
    let mut query = String::from("Action=DescribeAutoScalingInstances&Version=2011-01-01");
    for (n, id) in ids.iter().enumerate() {
        query.push_str(&format!("&InstanceIds.member.{}={}", n + 1, percent_encode(id)));
    }
    let xml = ask_upstream(state, parts.headers.get(header::AUTHORIZATION), query).await?;
    Ok(ids
        .into_iter()
        .map(|id| {
            let placed = xml
                .split("<member>")
                .find(|m| tag_text(m, "InstanceId") == Some(id.as_str()))
                .and_then(|m| {
                    let group = tag_text(m, "AutoScalingGroupName")?.to_string();
                    Some((
                        group,
                        tag_text(m, "LifecycleState").unwrap_or_default().to_string(),
                    ))
                })
                .or_else(|| lifecycle::held_group(state, &id).map(|g| (g, String::new())));
            // What the group says of it on AWS: still booting, or held by a hook.
            let placed = placed.map(|(g, s)| match lifecycle::state_of(state, &id) {
                Some(emulated) => (g, emulated.to_owned()),
                None => (g, s),
            });
            (id, placed)
        })
        .collect())
}

/// DetachInstances as AWS does it: every instance must be InService or Standby in the named
/// group, or the call is a `ValidationError` that changes nothing. moto detaches what it finds
/// and decrements desired by the number of ids asked for, found or not: two concurrent
/// detaches of one instance with `ShouldDecrementDesiredCapacity` would take two off.
pub(super) async fn detach_instances(state: &State, call: &Call, parts: &Parts, body: Bytes) -> Reply {
    let _one_at_a_time = state.membership.lock().await;
    let group = call.form.get("AutoScalingGroupName").unwrap_or_default();
    let placements = match placements(state, call, parts).await {
        Ok(p) => p,
        Err(e) => return bad_gateway(e),
    };
    for (id, placed) in &placements {
        let detachable = placed
            .as_ref()
            .is_some_and(|(g, s)| *g == group && matches!(s.as_str(), "InService" | "Standby"));
        if !detachable {
            return errors::validation(
                state,
                &format!("The instance {id} is not part of Auto Scaling group {group} or is not InService or Standby."),
            );
        }
    }
    let decrement = call.form.get("ShouldDecrementDesiredCapacity").as_deref() == Some("true");
    let ids: Vec<String> = placements.into_iter().map(|(id, _)| id).collect();
    lifecycle::leave(state, parts, body, &group, &call.region, &ids, decrement).await
}

/// AttachInstances as AWS does it: an instance already in a group, or a desired capacity that
/// would pass MaxSize, is a `ValidationError` that changes nothing. moto attaches an instance
/// twice (desired +2, a duplicate member) and ignores MaxSize.
pub(super) async fn attach_instances(state: &State, call: &Call, parts: &Parts, body: Bytes) -> Reply {
    let _one_at_a_time = state.membership.lock().await;
    let group = call.form.get("AutoScalingGroupName").unwrap_or_default();
    let placements = match placements(state, call, parts).await {
        Ok(p) => p,
        Err(e) => return bad_gateway(e),
    };
    for (id, placed) in &placements {
        if let Some((other, _)) = placed {
            return errors::validation(
                state,
                &format!("The instance {id} is already part of Auto Scaling group {other}."),
            );
        }
    }
    let query = format!(
        "Action=DescribeAutoScalingGroups&Version=2011-01-01&AutoScalingGroupNames.member.1={}",
        percent_encode(&group)
    );
    let xml = match ask_upstream(state, parts.headers.get(header::AUTHORIZATION), query).await {
        Ok(xml) => xml,
        Err(e) => return bad_gateway(e),
    };
    let number = |tag: &str| tag_text(&xml, tag).and_then(|v| v.parse::<usize>().ok());
    let ids: Vec<String> = placements.iter().map(|(id, _)| id.clone()).collect();
    // A weighted group counts what is attached in units (weights.rs).
    let weights = weights::weights(state, &call.region, &group);
    let adding = match &weights {
        Some(w) => match weights::instance_types(state, parts.headers.get(header::AUTHORIZATION), &ids).await
        {
            Ok(types) => weights::units(w, &types) as usize,
            Err(e) => return bad_gateway(e),
        },
        None => placements.len(),
    };
    if let (Some(min), Some(max), Some(moto_desired)) =
        (number("MinSize"), number("MaxSize"), number("DesiredCapacity"))
    {
        // Replacements owed while `Launch` is suspended count, as they do in AWS's desired.
        let desired = moto_desired + state.life().owed(&call.region, &group) as usize;
        if desired + adding > max {
            return errors::validation(
                state,
                &format!(
                    "AutoScalingGroup {group} has min-size={min}, max-size={max}, and desired-size={desired}. \
                     To attach {} instance(s), please update the AutoScalingGroup sizes appropriately.",
                    placements.len()
                ),
            );
        }
        if weights.is_some() {
            let reply = forward(state, parts, body).await;
            if reply.status() == hyper::StatusCode::OK {
                let to = (moto_desired + adding) as u32;
                let auth = parts.headers.get(header::AUTHORIZATION);
                if let Err(e) = weights::set_desired(state, auth, &call.region, &group, to).await {
                    return bad_gateway(e);
                }
            }
            return reply;
        }
    }
    forward(state, parts, body).await
}
