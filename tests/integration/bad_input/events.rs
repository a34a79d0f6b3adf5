//! Malformed and hostile events, and well-formed ones about instances that are not ours to
//! touch, through `handle_event`: each ends in a named error before any AWS call, or in one
//! `ignore` decision naming what is at fault.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::Tag;
use spotswap_aws::{handle_event, AdapterError, EventOptions};
use spotswap_core::{tags, EventError};
use spotswap_tests::fleet::{Env, GroupSpec};
use spotswap_tests::proxy::Proxy;

use super::{
    config, one_line, outcome_detail, standalone, with_enabled, Failures, FIVE_MB, REBALANCE, SPOT_WARNING,
};

/// A well-formed instance id no test launches.
const UNKNOWN_ID: &str = "i-0fedcba9876543210";

/// A complete EventBridge envelope of `detail_type` around `detail` (raw JSON).
fn envelope(detail_type: &str, detail: &str) -> String {
    format!(
        r#"{{"version":"0","id":"12345678-1234-1234-1234-123456789012","detail-type":"{detail_type}","source":"aws.ec2","account":"123456789012","time":"2026-01-01T00:00:00Z","region":"us-east-2","resources":[],"detail":{detail}}}"#
    )
}

fn warning(id: &str) -> String {
    envelope(
        SPOT_WARNING,
        &format!(r#"{{"instance-id":"{id}","instance-action":"terminate"}}"#),
    )
}

fn recommendation(id: &str) -> String {
    envelope(REBALANCE, &format!(r#"{{"instance-id":"{id}"}}"#))
}

/// What an event must end in.
#[derive(Debug, Clone)]
enum EventExpect {
    /// `EventError::NotAnEvent` before any AWS call; a one-line message holding each needle.
    NotAnEvent(&'static [&'static str]),
    /// `EventError::MalformedDetail` of this detail-type before any AWS call; a one-line
    /// message holding each needle.
    Malformed(&'static str, &'static [&'static str]),
    /// Exactly one `ignore` decision with this reason, about this group and instance (after
    /// placeholders are filled), its detail holding each needle; reads only.
    NoOp {
        reason: &'static str,
        group: &'static str,
        instance: Option<&'static str>,
        detail: &'static [&'static str],
    },
}

struct EventCase {
    name: &'static str,
    /// The raw input; `@name@` is replaced by the id of that instance of the test's fleet.
    raw: String,
    expect: EventExpect,
}

fn ev(name: &'static str, raw: impl Into<String>, expect: EventExpect) -> EventCase {
    EventCase {
        name,
        raw: raw.into(),
        expect,
    }
}

fn not_event(needles: &'static [&'static str]) -> EventExpect {
    EventExpect::NotAnEvent(needles)
}

fn malformed(detail_type: &'static str, needles: &'static [&'static str]) -> EventExpect {
    EventExpect::Malformed(detail_type, needles)
}

fn noop(
    reason: &'static str,
    group: &'static str,
    instance: Option<&'static str>,
    detail: &'static [&'static str],
) -> EventExpect {
    EventExpect::NoOp {
        reason,
        group,
        instance,
        detail,
    }
}

fn ignored(detail_type: &'static [&'static str]) -> EventExpect {
    noop("IgnoredDetailType", "", None, detail_type)
}

/// The event corpus.
fn event_cases() -> Vec<EventCase> {
    let spot_detail = |d: &str| envelope(SPOT_WARNING, d);
    let unknown = Some(UNKNOWN_ID);
    vec![
        // --- not JSON, or not an EventBridge event at all
        ev("empty input", "", not_event(&["EOF while parsing"])),
        ev("whitespace only", " \n\t \n", not_event(&["EOF while parsing"])),
        ev("a lone brace", "{", not_event(&["EOF while parsing"])),
        ev(
            "truncated spot warning",
            include_str!("../../bad-input/truncated.json"),
            not_event(&["EOF while parsing"]),
        ),
        ev(
            "prose, not JSON",
            "instance i-1234567890abcdef0 will be interrupted",
            not_event(&["expected"]),
        ),
        ev("JSON null", "null", not_event(&["invalid type: null"])),
        ev("JSON number", "42", not_event(&["invalid type: integer `42`"])),
        ev("JSON bool", "true", not_event(&["invalid type: boolean"])),
        ev(
            "JSON string",
            format!("{SPOT_WARNING:?}"),
            not_event(&["invalid type: string"]),
        ),
        ev("JSON array", "[]", not_event(&["invalid type: sequence"])),
        ev("empty object", "{}", not_event(&["missing field"])),
        ev(
            "an SQS event, not an EventBridge one",
            include_str!("../../bad-input/sqs-event.json"),
            not_event(&["missing field"]),
        ),
        ev(
            "UTF-8 byte-order mark before the event",
            format!("\u{feff}{}", warning(UNKNOWN_ID)),
            not_event(&["expected value"]),
        ),
        ev(
            "trailing garbage after the event",
            format!("{}}}", warning(UNKNOWN_ID)),
            not_event(&["trailing characters"]),
        ),
        ev(
            "two events concatenated",
            format!("{}\n{}", warning(UNKNOWN_ID), warning(UNKNOWN_ID)),
            not_event(&["trailing characters"]),
        ),
        // --- envelopes with missing fields or wrong types
        ev(
            "detail-type is a number",
            r#"{"detail-type":42,"source":"aws.ec2","detail":{}}"#,
            not_event(&["invalid type: integer `42`"]),
        ),
        ev(
            "no source",
            format!(
                r#"{{"detail-type":"{SPOT_WARNING}","detail":{{"instance-id":"{UNKNOWN_ID}","instance-action":"terminate"}}}}"#
            ),
            not_event(&["missing field `source`"]),
        ),
        ev(
            "no detail",
            format!(r#"{{"detail-type":"{SPOT_WARNING}","source":"aws.ec2"}}"#),
            not_event(&["missing field `detail`"]),
        ),
        ev(
            "time is not a timestamp",
            warning(UNKNOWN_ID).replace("2026-01-01T00:00:00Z", "yesterday"),
            not_event(&["not an EventBridge event"]),
        ),
        ev(
            "resources is a string",
            warning(UNKNOWN_ID).replace(r#""resources":[]"#, r#""resources":"all""#),
            not_event(&["invalid type: string"]),
        ),
        // --- our detail-types with a detail that does not fit
        ev(
            "instance-id is a number",
            include_str!("../../bad-input/instance-id-number.json"),
            malformed(SPOT_WARNING, &["invalid type: integer `1234567890`"]),
        ),
        ev(
            "instance-action explode",
            include_str!("../../bad-input/instance-action-explode.json"),
            malformed(SPOT_WARNING, &["unknown variant `explode`"]),
        ),
        ev(
            "instance-action in the wrong case",
            spot_detail(&format!(
                r#"{{"instance-id":"{UNKNOWN_ID}","instance-action":"Terminate"}}"#
            )),
            malformed(SPOT_WARNING, &["unknown variant `Terminate`"]),
        ),
        ev(
            "instance-action missing",
            spot_detail(&format!(r#"{{"instance-id":"{UNKNOWN_ID}"}}"#)),
            malformed(SPOT_WARNING, &["missing field `instance-action`"]),
        ),
        ev(
            "instance-id missing (events/interruption-malformed.json)",
            include_str!("../../../events/interruption-malformed.json"),
            malformed(SPOT_WARNING, &["missing field `instance-id`"]),
        ),
        ev(
            "instance-id is a name, not an id",
            spot_detail(r#"{"instance-id":"web-1","instance-action":"terminate"}"#),
            malformed(SPOT_WARNING, &[r#""web-1" is not an EC2 instance id"#]),
        ),
        ev(
            "instance-id in upper-case hex",
            spot_detail(r#"{"instance-id":"i-1234567890ABCDEF0","instance-action":"terminate"}"#),
            malformed(
                SPOT_WARNING,
                &[r#""i-1234567890ABCDEF0" is not an EC2 instance id"#],
            ),
        ),
        ev(
            "instance-id empty",
            spot_detail(r#"{"instance-id":"","instance-action":"terminate"}"#),
            malformed(SPOT_WARNING, &[r#""" is not an EC2 instance id"#]),
        ),
        ev(
            "instance-id with a trailing space",
            spot_detail(r#"{"instance-id":"i-1234567890abcdef0 ","instance-action":"terminate"}"#),
            malformed(SPOT_WARNING, &["is not an EC2 instance id"]),
        ),
        ev(
            "instance-id is an ARN",
            spot_detail(
                r#"{"instance-id":"arn:aws:ec2:us-east-2:123456789012:instance/i-1234567890abcdef0","instance-action":"terminate"}"#,
            ),
            malformed(SPOT_WARNING, &["is not an EC2 instance id"]),
        ),
        ev(
            "instance-id null",
            spot_detail(r#"{"instance-id":null,"instance-action":"terminate"}"#),
            malformed(SPOT_WARNING, &["invalid type: null"]),
        ),
        // Regression: serde reads a struct from an array of its fields, so these two were
        // spot warnings for a managed InService instance, and it was detached.
        ev(
            "detail is an array of the fields, about a managed instance",
            spot_detail(r#"["@od@","terminate"]"#),
            malformed(SPOT_WARNING, &["invalid type: sequence", "a detail object"]),
        ),
        ev(
            "the whole event as an array of the fields, about a managed instance",
            format!(
                r#"["0","id","{SPOT_WARNING}","aws.ec2",null,null,null,null,{{"instance-id":"@od@","instance-action":"terminate"}}]"#
            ),
            not_event(&["invalid type: sequence", "an EventBridge event object"]),
        ),
        ev(
            "detail is null",
            spot_detail("null"),
            malformed(SPOT_WARNING, &["invalid type: null"]),
        ),
        ev(
            "detail is a string",
            spot_detail(r#""terminate""#),
            malformed(SPOT_WARNING, &["invalid type: string"]),
        ),
        ev(
            "rebalance recommendation without instance-id",
            include_str!("../../bad-input/rebalance-without-instance-id.json"),
            malformed(REBALANCE, &["missing field `instance-id`"]),
        ),
        ev(
            "rebalance recommendation whose instance-id is an object",
            envelope(REBALANCE, r#"{"instance-id":{"id":"i-1234567890abcdef0"}}"#),
            malformed(REBALANCE, &["invalid type: map"]),
        ),
        // --- huge payloads
        ev(
            "5 MB detail of another detail-type",
            envelope("Bulk Upload", &format!(r#"{{"blob":"{}"}}"#, "x".repeat(FIVE_MB))),
            ignored(&["Bulk Upload"]),
        ),
        ev(
            "5 MB padding in a spot warning for an unknown instance",
            spot_detail(&format!(
                r#"{{"instance-id":"{UNKNOWN_ID}","instance-action":"terminate","padding":"{}"}}"#,
                "x".repeat(FIVE_MB)
            )),
            noop("UnknownInstance", "", unknown, &[]),
        ),
        ev(
            "100k resources in a spot warning for an unknown instance",
            warning(UNKNOWN_ID).replace(
                r#""resources":[]"#,
                &format!(
                    r#""resources":[{}]"#,
                    vec![format!(r#""arn:aws:ec2:us-east-2:123456789012:instance/{UNKNOWN_ID}""#); 100_000]
                        .join(",")
                ),
            ),
            noop("UnknownInstance", "", unknown, &[]),
        ),
        ev(
            "100k-element array",
            format!("[{}0]", "0,".repeat(99_999)),
            not_event(&["invalid type: sequence"]),
        ),
        ev(
            "100k-deep nesting",
            format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)),
            not_event(&["recursion limit exceeded"]),
        ),
        ev(
            "5 MB that is not JSON",
            "x".repeat(FIVE_MB),
            not_event(&["expected value"]),
        ),
        // --- well-formed events of other detail-types: ignored, with the detail-type
        ev(
            "state-change notification",
            include_str!("../../../events/interruption-other-detail-type.json"),
            ignored(&["EC2 Instance State-change Notification"]),
        ),
        ev(
            "scheduled event",
            include_str!("../../../events/rebalancer-scheduled.json"),
            ignored(&["Scheduled Event"]),
        ),
        ev(
            "CloudTrail API call",
            include_str!("../../bad-input/cloudtrail-api-call.json"),
            ignored(&["AWS API Call via CloudTrail"]),
        ),
        ev(
            "our detail-type in lower case",
            envelope(
                "ec2 spot instance interruption warning",
                &format!(r#"{{"instance-id":"{UNKNOWN_ID}","instance-action":"terminate"}}"#),
            ),
            ignored(&["ec2 spot instance interruption warning"]),
        ),
        ev(
            "our detail-type with a trailing space",
            envelope(
                "EC2 Spot Instance Interruption Warning ",
                &format!(r#"{{"instance-id":"{UNKNOWN_ID}","instance-action":"terminate"}}"#),
            ),
            ignored(&["EC2 Spot Instance Interruption Warning "]),
        ),
        ev("empty detail-type", envelope("", "{}"), ignored(&[])),
        // --- instances that do not exist, are not ours, or are already dealt with
        ev(
            "spot warning for an instance that does not exist",
            warning(UNKNOWN_ID),
            noop("UnknownInstance", "", unknown, &[]),
        ),
        ev(
            "rebalance recommendation for an instance that does not exist",
            recommendation(UNKNOWN_ID),
            noop("UnknownInstance", "", unknown, &[]),
        ),
        ev(
            "spot warning for an 8-digit id that does not exist",
            warning("i-0badf00d"),
            noop("UnknownInstance", "", Some("i-0badf00d"), &[]),
        ),
        ev(
            "spot warning for an instance in no group",
            warning("@standalone@"),
            noop("UnknownInstance", "", Some("@standalone@"), &[]),
        ),
        ev(
            "spot warning for an instance of an unmanaged group",
            warning("@legacy@"),
            noop("NotManaged", "ev-legacy", Some("@legacy@"), &[]),
        ),
        ev(
            "rebalance recommendation for an instance of an unmanaged group",
            recommendation("@legacy@"),
            noop("NotManaged", "ev-legacy", Some("@legacy@"), &[]),
        ),
        ev(
            "spot warning for an instance already detached",
            warning("@detached@"),
            noop("AlreadyHandled", "ev-managed", Some("@detached@"), &[]),
        ),
        ev(
            "rebalance recommendation for an instance already detached",
            recommendation("@detached@"),
            noop("AlreadyHandled", "ev-managed", Some("@detached@"), &[]),
        ),
        ev(
            "spot warning for a terminated instance",
            warning("@gone@"),
            noop("AlreadyHandled", "", Some("@gone@"), &[]),
        ),
        ev(
            "spot warning for an instance in standby",
            warning("@standby@"),
            noop("NotInService", "ev-standby", Some("@standby@"), &[]),
        ),
        ev(
            "rebalance recommendation for an on-demand instance",
            recommendation("@od@"),
            noop("NotSpot", "ev-managed", Some("@od@"), &[]),
        ),
        ev(
            "rebalance recommendation for an instance protected from scale-in",
            recommendation("@protected@"),
            noop("InstanceProtected", "ev-protected", Some("@protected@"), &[]),
        ),
        // --- instances of groups with a bad tag: InvalidConfig naming the tag and the value
        // (A spot warning for a group with a bad setting value is no longer bad input: its
        // replacement is safety, and goes ahead with the stack's defaults. See
        // hardening::an_interruption_in_a_misconfigured_group_still_gets_its_replacement.)
        ev(
            "rebalance recommendation, group has on-demand-percent=abc",
            recommendation("@bad-pct@"),
            noop(
                "InvalidConfig",
                "ev-bad-pct",
                Some("@bad-pct@"),
                &["spotswap:on-demand-percent", r#""abc""#],
            ),
        ),
        ev(
            "spot warning, group has spotswap:enabled=yes",
            warning("@bad-enabled@"),
            noop(
                "InvalidConfig",
                "ev-bad-enabled",
                Some("@bad-enabled@"),
                &["spotswap:enabled", r#""yes""#],
            ),
        ),
        ev(
            "rebalance recommendation, group has allowed-types=m5.[",
            recommendation("@bad-glob@"),
            noop(
                "InvalidConfig",
                "ev-bad-glob",
                Some("@bad-glob@"),
                &["spotswap:allowed-types", r#""m5.[""#],
            ),
        ),
    ]
}

fn fill(s: &str, ids: &BTreeMap<&'static str, String>) -> String {
    if !s.contains('@') {
        return s.to_string();
    }
    let mut out = s.to_string();
    for (name, id) in ids {
        out = out.replace(&format!("@{name}@"), id);
    }
    out
}

/// The instances event cases are about: members of unmanaged, misconfigured, standby and
/// protected groups, one detached by an earlier warning, one terminated, one in no group.
async fn event_fleet(env: &Env) -> BTreeMap<&'static str, String> {
    let first = |name: &'static str| async move { env.group_state(name).await.in_service()[0].clone() };
    let mut ids = BTreeMap::new();
    env.group(&GroupSpec::managed("ev-managed", 2)).await;
    env.group(&GroupSpec::managed("ev-legacy", 1).unmanaged()).await;
    env.group(&GroupSpec::managed("ev-bad-pct", 1).tag(tags::ON_DEMAND_PERCENT, "abc"))
        .await;
    env.group(&with_enabled(GroupSpec::managed("ev-bad-enabled", 1), "yes"))
        .await;
    env.group(&GroupSpec::managed("ev-bad-glob", 1).tag(tags::ALLOWED_TYPES, "m5.["))
        .await;
    env.group(&GroupSpec::managed("ev-standby", 1)).await;
    env.group(&GroupSpec::managed("ev-protected", 1)).await;
    ids.insert("legacy", first("ev-legacy").await);
    ids.insert("bad-pct", first("ev-bad-pct").await);
    ids.insert("bad-enabled", first("ev-bad-enabled").await);
    ids.insert("bad-glob", first("ev-bad-glob").await);
    let protected = first("ev-protected").await;
    env.protect("ev-protected", &protected).await;
    ids.insert("protected", protected);

    let standby = first("ev-standby").await;
    env.asg
        .enter_standby()
        .auto_scaling_group_name("ev-standby")
        .instance_ids(&standby)
        .should_decrement_desired_capacity(true)
        .send()
        .await
        .expect("enter standby");
    ids.insert("standby", standby);

    // What the handler leaves after a warning: detached, tagged, the group replacing it.
    let managed = env.group_state("ev-managed").await.in_service();
    let (detached, od) = (managed[0].clone(), managed[1].clone());
    env.asg
        .detach_instances()
        .auto_scaling_group_name("ev-managed")
        .instance_ids(&detached)
        .should_decrement_desired_capacity(true)
        .send()
        .await
        .expect("detach");
    env.ec2
        .create_tags()
        .resources(&detached)
        .tags(
            Tag::builder()
                .key(tags::DETACHED_AT)
                .value("2026-01-01T00:00:00Z")
                .build(),
        )
        .tags(
            Tag::builder()
                .key(tags::DETACHED_FROM)
                .value("ev-managed")
                .build(),
        )
        .send()
        .await
        .expect("tag detached");
    ids.insert("detached", detached);
    ids.insert("od", od);

    ids.insert("standalone", standalone(env, &[]).await);
    let gone = standalone(env, &[]).await;
    env.ec2
        .terminate_instances()
        .instance_ids(&gone)
        .send()
        .await
        .expect("terminate");
    ids.insert("gone", gone);
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_events_are_refused_or_ignored_with_zero_mutating_calls() {
    // GIVEN a region behind the fault proxy with a fleet of odd instances (unmanaged,
    //   misconfigured, standby, protected, detached, terminated, in no group)
    let proxy = Proxy::from_env().await.expect("proxy");
    let env = Env::at(&proxy.url()).await;
    let ids = event_fleet(&env).await;
    let groups = [
        "ev-managed",
        "ev-legacy",
        "ev-bad-pct",
        "ev-bad-enabled",
        "ev-bad-glob",
        "ev-standby",
        "ev-protected",
    ];
    let mut before = Vec::new();
    for g in groups {
        before.push(env.group_state(g).await);
    }
    let live_before = env.live_instances().await;

    let cases = event_cases();
    let mut failures = Failures::default();
    for case in &cases {
        let name = case.name;
        let raw = fill(&case.raw, &ids);
        // WHEN the interruption handler is given the input
        proxy.reset_calls();
        let aws = env.aws();
        let result = handle_event(&aws, &config(), &raw, EventOptions::default()).await;
        let calls = proxy.calls();

        // THEN no mutating call reached AWS
        failures.check(name, proxy.mutating_calls() == 0, || {
            format!("mutating calls: {calls:?}")
        });
        // AND the outcome is the named error or the no-op the case expects
        match (&case.expect, &result) {
            (EventExpect::NotAnEvent(needles), Err(AdapterError::Event(EventError::NotAnEvent(_))))
            | (
                EventExpect::Malformed(_, needles),
                Err(AdapterError::Event(EventError::MalformedDetail { .. })),
            ) => {
                let msg = result.as_ref().unwrap_err().to_string();
                if let (
                    EventExpect::Malformed(want, _),
                    Err(AdapterError::Event(EventError::MalformedDetail { detail_type, .. })),
                ) = (&case.expect, &result)
                {
                    failures.check(name, detail_type == want, || {
                        format!("detail-type {detail_type:?}, expected {want:?}")
                    });
                }
                failures.check(name, !msg.contains('\n') && msg.len() < 1000, || {
                    format!("not one short line: {}", one_line(&msg))
                });
                for n in *needles {
                    failures.check(name, msg.contains(n), || {
                        format!("error lacks {n:?}: {}", one_line(&msg))
                    });
                }
                // refused before any call at all
                failures.check(name, calls.is_empty(), || format!("calls: {calls:?}"));
            }
            (
                EventExpect::NoOp {
                    reason,
                    group,
                    instance,
                    detail,
                },
                Ok(report),
            ) => {
                let got: Vec<(&str, &str)> = report
                    .decisions
                    .iter()
                    .map(|d| (d.kind.name(), d.reason.code()))
                    .collect();
                failures.check(name, got == vec![("ignore", *reason)], || {
                    format!("decisions {got:?}, expected one ignore {reason}")
                });
                if let Some(d) = report.decisions.first() {
                    let (group, instance) = (fill(group, &ids), instance.map(|i| fill(i, &ids)));
                    failures.check(name, d.group == group, || {
                        format!("group {:?}, expected {group:?}", d.group)
                    });
                    failures.check(name, d.instance == instance, || {
                        format!("instance {:?}, expected {instance:?}", d.instance)
                    });
                    // A bad tag is named where the report says why the group was passed over.
                    let skips: Vec<&str> = report
                        .skipped
                        .iter()
                        .filter_map(|s| s.detail.as_deref())
                        .collect();
                    let text = format!("{} {}", outcome_detail(&d.outcome), skips.join(" "));
                    for n in *detail {
                        failures.check(name, text.contains(n), || {
                            format!("detail lacks {n:?}: {}", one_line(&text))
                        });
                    }
                }
                failures.check(name, !report.acted() && report.mutating_calls() == 0, || {
                    format!("acted: {:?}", report.api_calls)
                });
            }
            (want, got) => failures.check(name, false, || {
                let got = match got {
                    Ok(r) => format!("Ok({:?})", r.decisions),
                    Err(e) => format!("Err({})", one_line(&e.to_string())),
                };
                format!("expected {want:?}, got {got}")
            }),
        }
    }

    // AND nothing changed in the region
    for (g, was) in groups.iter().zip(&before) {
        let now = env.group_state(g).await;
        failures.check(g, &now == was, || format!("group changed: {was:?} -> {now:?}"));
    }
    let live_after = env.live_instances().await;
    failures.check("region", live_after == live_before, || "instances changed".into());
    failures.assert_none(cases.len());
}
