//! Bad input (DESIGN.md §8, invariant 7): a table-driven corpus of malformed and hostile
//! events, bad tag values, groups in odd states, unreadable reaper records and CLI
//! invocations. Every case ends in a named error, or in a skip, no-op or wait whose reason
//! names the thing at fault (the tag key and value, the instance id, the detail-type), and the
//! fault proxy in front of moto counts zero mutating calls.
//!
//! # Layout
//!
//! - [`event_cases`]: raw events through `handle_event`, one proxy count per case.
//! - [`tag_cases`] and [`odd_state_cases`]: one group per case in one region, one `rebalance`
//!   cycle for all of them, then a check per case.
//! - [`reaper_cases`]: unreadable records on groups and instances, one `reap` pass.
//! - [`cli_cases`]: `spotswap handle-event` on files of `tests/bad-input/` and generated input.
//! - [`corpus_has_at_least_50_cases`]: counts the tables.
//!
//! Cases are checked one by one and failures collected, so a failing run lists every failing
//! case by name.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use aws_sdk_autoscaling::types::{
    InstancesDistribution, LaunchTemplate, LaunchTemplateOverrides,
    LaunchTemplateSpecification as AsgTemplateSpec, MixedInstancesPolicy, Tag as AsgTag,
};
use aws_sdk_ec2::types::{AttributeBooleanValue, InstanceType, ResourceType, Tag, TagSpecification};
use spotswap_aws::report::ActionReport;
use spotswap_aws::{
    handle_event, reap, rebalance, AdapterError, Config, CycleOptions, CycleReport, EventOptions, Outcome,
};
use spotswap_core::policy::SETTING_TAGS;
use spotswap_core::{tags, ActionKind, EventError};
use spotswap_tests::fleet::{sample_price_file, Env, GroupSpec};
use spotswap_tests::lambda::{workspace_bin, workspace_root};
use spotswap_tests::proxy::Proxy;

const SPOT_WARNING: &str = "EC2 Spot Instance Interruption Warning";
const REBALANCE: &str = "EC2 Instance Rebalance Recommendation";
/// A well-formed instance id no test launches.
const UNKNOWN_ID: &str = "i-0fedcba9876543210";
const AMI: &str = "ami-12c6146b";
const FIVE_MB: usize = 5 << 20;

fn config() -> Config {
    Config {
        price_file: Some(sample_price_file()),
        event_bus: String::new(),
        ..Config::default()
    }
}

/// Failed checks, by case; the test fails once, at the end, listing them all.
#[derive(Default)]
struct Failures(Vec<String>);

impl Failures {
    fn check(&mut self, case: &str, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            self.0.push(format!("[{case}] {}", what()));
        }
    }

    fn assert_none(self, cases: usize) {
        assert!(
            self.0.is_empty(),
            "{} failed check(s) over {cases} cases:\n{}",
            self.0.len(),
            self.0.join("\n")
        );
    }
}

/// What an outcome says beyond its kind: the detail-type, the bad tag, the reason not done.
fn outcome_detail(o: &Outcome) -> String {
    match o {
        Outcome::Done(None) | Outcome::DryRun => String::new(),
        other => other.detail(),
    }
}

fn one_line(s: &str) -> String {
    let short: String = s.chars().take(300).collect();
    short.replace('\n', "\\n")
}

// ---------------------------------------------------------------------------------------------
// events
// ---------------------------------------------------------------------------------------------

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
            include_str!("../bad-input/truncated.json"),
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
            include_str!("../bad-input/sqs-event.json"),
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
            include_str!("../bad-input/instance-id-number.json"),
            malformed(SPOT_WARNING, &["invalid type: integer `1234567890`"]),
        ),
        ev(
            "instance-action explode",
            include_str!("../bad-input/instance-action-explode.json"),
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
            include_str!("../../events/interruption-malformed.json"),
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
            include_str!("../bad-input/rebalance-without-instance-id.json"),
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
            include_str!("../../events/interruption-other-detail-type.json"),
            ignored(&["EC2 Instance State-change Notification"]),
        ),
        ev(
            "scheduled event",
            include_str!("../../events/rebalancer-scheduled.json"),
            ignored(&["Scheduled Event"]),
        ),
        ev(
            "CloudTrail API call",
            include_str!("../bad-input/cloudtrail-api-call.json"),
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
        ev(
            "spot warning, group has on-demand-percent=abc",
            warning("@bad-pct@"),
            noop(
                "InvalidConfig",
                "ev-bad-pct",
                Some("@bad-pct@"),
                &["spotswap:on-demand-percent", r#""abc""#],
            ),
        ),
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

/// An on-demand instance in no group, with `tags`.
async fn standalone(env: &Env, tags: &[(&str, &str)]) -> String {
    let subnet = env.subnets().await.remove(0).0;
    let mut req = env
        .ec2
        .run_instances()
        .image_id(AMI)
        .instance_type(InstanceType::M5Large)
        .min_count(1)
        .max_count(1)
        .subnet_id(subnet);
    if !tags.is_empty() {
        let mut spec = TagSpecification::builder().resource_type(ResourceType::Instance);
        for (k, v) in tags {
            spec = spec.tags(Tag::builder().key(*k).value(*v).build());
        }
        req = req.tag_specifications(spec.build());
    }
    let resp = req.send().await.expect("run instance");
    resp.instances()[0].instance_id().unwrap().to_string()
}

fn with_enabled(mut spec: GroupSpec, value: &str) -> GroupSpec {
    spec.tags.retain(|(k, _)| k != tags::ENABLED);
    spec.tag(tags::ENABLED, value)
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
                    let text = outcome_detail(&d.outcome);
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

// ---------------------------------------------------------------------------------------------
// tags and odd groups: one region, one rebalancer cycle
// ---------------------------------------------------------------------------------------------

/// How a group of a case is built.
#[derive(Debug, Clone)]
enum Shape {
    /// As `Env::group` builds it.
    Plain,
    /// Every member protected from scale-in.
    ScaleInProtected,
    /// Every member protected from termination (`DisableApiTermination`).
    TerminationProtected,
    /// A mixed instances policy instead of a launch template.
    MixedInstances,
    /// A launch configuration instead of a launch template.
    LaunchConfiguration,
}

/// What the cycle must report for the group.
#[derive(Debug, Clone)]
enum GroupExpect {
    /// In `skipped` with this reason, its detail holding each needle; no action.
    Skip(&'static str, Vec<String>),
    /// One `wait` action with this reason; not skipped.
    Wait(&'static str),
    /// Nothing to do: in the summary with desired 0, no action, not skipped.
    Quiet,
}

struct GroupCase {
    name: String,
    spec: GroupSpec,
    shape: Shape,
    expect: GroupExpect,
}

/// Every tag of DESIGN.md §3 with bad values: each skips its group as `InvalidConfig`, the
/// detail naming the tag and the value.
fn tag_cases() -> Vec<GroupCase> {
    use tags::*;
    let bad: &[(&str, &str, &str)] = &[
        (ENABLED, "yes", "not a boolean"),
        (ENABLED, "TRUE", "upper case"),
        (ENABLED, " true", "leading space"),
        (ENABLED, "", "empty"),
        (ENABLED, "1", "a number"),
        (ON_DEMAND_BASE, "abc", "not a number"),
        (ON_DEMAND_BASE, "-1", "negative"),
        (ON_DEMAND_BASE, "100001", "out of range"),
        (ON_DEMAND_BASE, "4294967296", "beyond u32"),
        (ON_DEMAND_BASE, "1.5", "fractional"),
        (ON_DEMAND_BASE, "", "empty"),
        (ON_DEMAND_PERCENT, "abc", "not a number"),
        (ON_DEMAND_PERCENT, "150", "out of range"),
        (ON_DEMAND_PERCENT, "-10", "negative"),
        (ON_DEMAND_PERCENT, "50%", "with a percent sign"),
        (ON_DEMAND_PERCENT, "12.5", "fractional"),
        (ON_DEMAND_PERCENT, "５０", "full-width digits"),
        (ALLOWED_TYPES, "", "empty"),
        (ALLOWED_TYPES, "m5.*,", "empty glob at the end"),
        (ALLOWED_TYPES, " , ", "only empty globs"),
        (ALLOWED_TYPES, "m5.[large", "invalid glob"),
        (ALLOWED_TYPES, "m5.*,m5.*", "duplicate glob"),
        (ALLOWED_TYPES, "m5.large c5.large", "space-separated"),
        (ALLOWED_TYPES, "m5.large;c5.large", "semicolon-separated"),
        (DENIED_TYPES, "", "empty"),
        (DENIED_TYPES, "m5.[", "invalid glob"),
        (DENIED_TYPES, "c5.*,,m5.*", "empty glob in the middle"),
        (DENIED_TYPES, "t3.micro, t3.micro", "duplicate glob"),
        (MAX_POOL_PERCENT, "0", "below range"),
        (MAX_POOL_PERCENT, "101", "above range"),
        (MAX_POOL_PERCENT, "half", "not a number"),
        (REPLACE_PER_CYCLE, "lots", "not a number"),
        (REPLACE_PER_CYCLE, "-1", "negative"),
        (REPLACE_PER_CYCLE, "1001", "out of range"),
        (ON_REBALANCE, "maybe", "bad enum"),
        (ON_REBALANCE, "Replace", "enum in the wrong case"),
        (ON_REBALANCE, "", "empty enum"),
        (COOLDOWN_MINUTES, "1.5", "fractional"),
        (COOLDOWN_MINUTES, "10081", "out of range"),
        (COOLDOWN_MINUTES, "-5", "negative"),
        (COOLDOWN_MINUTES, "60m", "with a unit"),
        (SHELTER_PERCENT, "101", "out of range"),
        (SHELTER_PERCENT, "ten", "not a number"),
        (SHELTER_PERCENT, "-1", "negative"),
    ];
    bad.iter()
        .enumerate()
        .map(|(i, (key, value, why))| {
            let group = format!("tag-{i:02}");
            let spec = GroupSpec {
                subnets: 1,
                ..GroupSpec::managed(&group, 1)
            };
            let spec = if *key == ENABLED {
                with_enabled(spec, value)
            } else {
                spec.tag(key, value)
            };
            GroupCase {
                name: format!("{key}={value:?} ({why})"),
                spec,
                shape: Shape::Plain,
                expect: GroupExpect::Skip("InvalidConfig", vec![key.to_string(), format!("{value:?}")]),
            }
        })
        .collect()
}

/// Groups in states that leave nothing to do, each with its reason.
fn odd_state_cases() -> Vec<GroupCase> {
    let case = |name: &str, spec: GroupSpec, shape: Shape, expect: GroupExpect| GroupCase {
        name: name.to_string(),
        spec,
        shape,
        expect,
    };
    let managed = |name: &str, desired: i32, max: i32| GroupSpec {
        max,
        subnets: 1,
        ..GroupSpec::managed(name, desired)
    };
    vec![
        case(
            "desired 0",
            managed("odd-desired-0", 0, 2),
            Shape::Plain,
            GroupExpect::Quiet,
        ),
        case(
            "max 0",
            managed("odd-max-0", 0, 0),
            Shape::Plain,
            GroupExpect::Quiet,
        ),
        case(
            "every instance protected from scale-in",
            managed("odd-scale-in-protected", 2, 2),
            Shape::ScaleInProtected,
            GroupExpect::Wait("InstanceProtected"),
        ),
        case(
            "every instance protected from termination",
            managed("odd-termination-protected", 2, 2),
            Shape::TerminationProtected,
            GroupExpect::Wait("InstanceProtected"),
        ),
        case(
            "on-demand-percent 100: the floor is the whole group",
            managed("odd-floor-100", 2, 2).tag(tags::ON_DEMAND_PERCENT, "100"),
            Shape::Plain,
            GroupExpect::Wait("AtRiskFloor"),
        ),
        case(
            "on-demand-base above desired",
            managed("odd-base-above", 2, 2).tag(tags::ON_DEMAND_BASE, "5"),
            Shape::Plain,
            GroupExpect::Wait("AtRiskFloor"),
        ),
        case(
            "mixed instances policy",
            managed("odd-mixed", 1, 1),
            Shape::MixedInstances,
            GroupExpect::Skip("MixedInstancesPolicyNotSupported", vec![]),
        ),
        case(
            "launch configuration",
            managed("odd-launch-config", 1, 1),
            Shape::LaunchConfiguration,
            GroupExpect::Skip(
                "LaunchConfigurationNotSupported",
                vec!["odd-launch-config-lc".into()],
            ),
        ),
        case(
            "sheltered until 2099",
            managed("odd-sheltered", 1, 1).tag(tags::SHELTERED_UNTIL, "2099-01-01T00:00:00Z"),
            Shape::Plain,
            GroupExpect::Skip("Sheltered", vec!["2099-01-01".into()]),
        ),
        case(
            "spotswap:enabled=false in opt-in mode",
            with_enabled(managed("odd-disabled", 1, 1), "false"),
            Shape::Plain,
            GroupExpect::Skip("NotManaged", vec![]),
        ),
    ]
}

fn asg_tags(spec: &GroupSpec) -> Vec<AsgTag> {
    spec.tags
        .iter()
        .map(|(k, v)| {
            AsgTag::builder()
                .resource_id(&spec.name)
                .resource_type("auto-scaling-group")
                .key(k)
                .value(v)
                .propagate_at_launch(false)
                .build()
        })
        .collect()
}

impl GroupCase {
    async fn create(&self, env: &Env) {
        let spec = &self.spec;
        let subnet = env.subnets().await.remove(0).0;
        match self.shape {
            Shape::Plain | Shape::ScaleInProtected | Shape::TerminationProtected => {
                env.group(spec).await;
            }
            Shape::MixedInstances => {
                let lt = env
                    .launch_template(&format!("{}-lt", spec.name), &spec.instance_type)
                    .await;
                env.asg
                    .create_auto_scaling_group()
                    .auto_scaling_group_name(&spec.name)
                    .mixed_instances_policy(
                        MixedInstancesPolicy::builder()
                            .launch_template(
                                LaunchTemplate::builder()
                                    .launch_template_specification(
                                        AsgTemplateSpec::builder()
                                            .launch_template_id(lt)
                                            .version("$Latest")
                                            .build(),
                                    )
                                    .overrides(
                                        LaunchTemplateOverrides::builder()
                                            .instance_type(&spec.instance_type)
                                            .build(),
                                    )
                                    .build(),
                            )
                            .instances_distribution(
                                InstancesDistribution::builder()
                                    .on_demand_percentage_above_base_capacity(100)
                                    .build(),
                            )
                            .build(),
                    )
                    .min_size(0)
                    .max_size(spec.max)
                    .desired_capacity(spec.desired)
                    .vpc_zone_identifier(subnet)
                    .set_tags(Some(asg_tags(spec)))
                    .send()
                    .await
                    .expect("create mixed instances group");
            }
            Shape::LaunchConfiguration => {
                let lc = format!("{}-lc", spec.name);
                env.asg
                    .create_launch_configuration()
                    .launch_configuration_name(&lc)
                    .image_id(AMI)
                    .instance_type(&spec.instance_type)
                    .send()
                    .await
                    .expect("create launch configuration");
                env.asg
                    .create_auto_scaling_group()
                    .auto_scaling_group_name(&spec.name)
                    .launch_configuration_name(lc)
                    .min_size(0)
                    .max_size(spec.max)
                    .desired_capacity(spec.desired)
                    .vpc_zone_identifier(subnet)
                    .set_tags(Some(asg_tags(spec)))
                    .send()
                    .await
                    .expect("create launch configuration group");
            }
        }
        let members = env.group_state(&spec.name).await.in_service();
        match self.shape {
            Shape::ScaleInProtected => {
                for id in &members {
                    env.protect(&spec.name, id).await;
                }
            }
            Shape::TerminationProtected => {
                for id in &members {
                    set_termination_protection(env, id, true).await;
                }
            }
            _ => {}
        }
    }
}

async fn set_termination_protection(env: &Env, id: &str, on: bool) {
    env.ec2
        .modify_instance_attribute()
        .instance_id(id)
        .disable_api_termination(AttributeBooleanValue::builder().value(on).build())
        .send()
        .await
        .expect("set termination protection");
}

/// Check one group against its case in a cycle's report.
fn check_group(failures: &mut Failures, case: &GroupCase, report: &CycleReport) {
    let (name, group) = (case.name.as_str(), case.spec.name.as_str());
    let skip = report.skipped.iter().find(|s| s.group == group);
    let actions: Vec<&ActionReport> = report.actions.iter().filter(|a| a.group == group).collect();
    let steps: Vec<(&str, &str)> = actions.iter().map(|a| (a.kind.name(), a.reason.code())).collect();
    match &case.expect {
        GroupExpect::Skip(reason, needles) => {
            let got = skip.map(|s| s.reason.code());
            failures.check(name, got == Some(*reason), || {
                format!("{group} skipped as {got:?}, expected {reason}")
            });
            let detail = skip.and_then(|s| s.detail.clone()).unwrap_or_default();
            for n in needles {
                failures.check(name, detail.contains(n.as_str()), || {
                    format!("{group} skip detail lacks {n:?}: {detail:?}")
                });
            }
            failures.check(name, actions.is_empty(), || {
                format!("{group} skipped but has actions {steps:?}")
            });
        }
        GroupExpect::Wait(reason) => {
            failures.check(name, skip.is_none(), || format!("{group} skipped: {skip:?}"));
            failures.check(name, steps == vec![("wait", *reason)], || {
                format!("{group} actions {steps:?}, expected one wait {reason}")
            });
        }
        GroupExpect::Quiet => {
            failures.check(name, skip.is_none(), || format!("{group} skipped: {skip:?}"));
            failures.check(name, actions.is_empty(), || format!("{group} actions {steps:?}"));
            let summary = report.groups.iter().find(|g| g.group == group);
            failures.check(
                name,
                summary.is_some_and(|g| g.census.desired == 0 && g.census.on_demand == 0),
                || format!("{group} summary {summary:?}, expected desired 0"),
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tags_and_odd_groups_are_skipped_or_wait_with_zero_mutating_calls() {
    // GIVEN one region behind the fault proxy with one group per case: each tag of the schema
    //   with a bad value on an otherwise swappable group of one on-demand instance, and groups
    //   in odd states
    let proxy = Proxy::from_env().await.expect("proxy");
    let env = Env::at(&proxy.url()).await;
    let cases: Vec<GroupCase> = tag_cases().into_iter().chain(odd_state_cases()).collect();
    for c in &cases {
        c.create(&env).await;
    }
    let mut before = BTreeMap::new();
    for c in &cases {
        before.insert(c.spec.name.clone(), env.group_state(&c.spec.name).await);
    }
    let live_before = env.live_instances().await;

    // WHEN one rebalancer cycle runs over the region
    proxy.reset_calls();
    let aws = env.aws();
    let report = rebalance(&aws, &config(), CycleOptions::default()).await;
    let (calls, mutating) = (proxy.calls(), proxy.mutating_calls());
    // (terminate-protected instances would survive every later wipe of this region)
    for c in cases
        .iter()
        .filter(|c| matches!(c.shape, Shape::TerminationProtected))
    {
        for id in before[&c.spec.name].members.keys() {
            set_termination_protection(&env, id, false).await;
        }
    }
    let report = report.expect("the cycle runs");
    eprintln!("{}", serde_json::to_string(&report).unwrap());

    // THEN not one mutating call reached AWS
    let mut failures = Failures::default();
    failures.check("cycle", mutating == 0, || format!("mutating calls: {calls:?}"));
    failures.check("cycle", report.mutating_calls() == 0, || {
        format!("adapter counted mutating calls: {:?}", report.api_calls)
    });
    // AND each group is skipped, waits or is quiet as its case says, and is unchanged
    for c in &cases {
        check_group(&mut failures, c, &report);
        let now = env.group_state(&c.spec.name).await;
        let was = &before[&c.spec.name];
        failures.check(&c.name, &now == was, || {
            format!("group changed: {was:?} -> {now:?}")
        });
    }
    failures.check("region", env.live_instances().await == live_before, || {
        "instances changed".into()
    });
    failures.assert_none(cases.len());

    // AND, as a control, a valid group next to them is planned a launch (dry run: still no
    //   mutating call), so the groups above were stopped by their input, not by the region
    let control = GroupSpec {
        subnets: 1,
        ..GroupSpec::managed("control", 1)
    };
    env.group(&control).await;
    proxy.reset_calls();
    let opts = CycleOptions {
        dry_run: true,
        ..CycleOptions::default()
    };
    let report = rebalance(&env.aws(), &config(), opts).await.expect("dry run");
    assert_eq!(proxy.mutating_calls(), 0, "{:?}", proxy.calls());
    assert!(
        report.actions.iter().any(|a| a.group == "control"
            && matches!(a.kind, ActionKind::Launch(_))
            && a.outcome == Outcome::DryRun),
        "{:?}",
        report.actions
    );
    assert_eq!(
        report
            .skipped
            .iter()
            .filter(|s| s.reason.code() == "InvalidConfig")
            .count(),
        tag_cases().len()
    );
}

// ---------------------------------------------------------------------------------------------
// the reaper
// ---------------------------------------------------------------------------------------------

/// What the reaper is given.
#[derive(Debug, Clone)]
enum ReapInput {
    /// A group (desired 0) with these tags over `spotswap:enabled=true`.
    Group(GroupSpec),
    /// An instance in no group with these tags.
    Instance(Vec<(&'static str, &'static str)>),
}

/// What the pass must report.
#[derive(Debug, Clone)]
enum ReapExpect {
    /// The group in `skipped` with this reason, its detail holding each needle; no action.
    Skip(&'static str, Vec<String>),
    /// One `wait` with this reason, about this group, or about the case's instance.
    Wait(&'static str, &'static str),
}

struct ReapCase {
    name: &'static str,
    input: ReapInput,
    expect: ReapExpect,
}

fn reaper_cases() -> Vec<ReapCase> {
    let group = |name: &str, pairs: &[(&str, &str)]| {
        let mut spec = GroupSpec {
            max: 1,
            subnets: 1,
            ..GroupSpec::managed(name, 0)
        };
        for (k, v) in pairs {
            spec = if *k == tags::ENABLED {
                with_enabled(spec, v)
            } else {
                spec.tag(k, v)
            };
        }
        ReapInput::Group(spec)
    };
    vec![
        ReapCase {
            name: "max-raised-from=abc",
            input: group("r-raised-abc", &[(tags::MAX_RAISED_FROM, "abc")]),
            expect: ReapExpect::Wait("InvalidConfig", "r-raised-abc"),
        },
        ReapCase {
            name: "max-raised-from=-1",
            input: group("r-raised-negative", &[(tags::MAX_RAISED_FROM, "-1")]),
            expect: ReapExpect::Wait("InvalidConfig", "r-raised-negative"),
        },
        ReapCase {
            name: "max-raised-from on a group with on-demand-base=-1",
            input: group(
                "r-bad-policy",
                &[(tags::MAX_RAISED_FROM, "1"), (tags::ON_DEMAND_BASE, "-1")],
            ),
            expect: ReapExpect::Skip(
                "InvalidConfig",
                vec![tags::ON_DEMAND_BASE.into(), r#""-1""#.into()],
            ),
        },
        ReapCase {
            name: "expired cooldown on a group with spotswap:enabled=maybe",
            input: group(
                "r-bad-enabled",
                &[
                    (tags::ENABLED, "maybe"),
                    ("spotswap:cooldown:m5.large/us-east-1a", "2020-01-01T00:00:00Z"),
                ],
            ),
            expect: ReapExpect::Skip("InvalidConfig", vec![tags::ENABLED.into(), r#""maybe""#.into()]),
        },
        ReapCase {
            name: "max-raised-from on a group with spotswap:enabled=false",
            input: group(
                "r-disabled",
                &[(tags::ENABLED, "false"), (tags::MAX_RAISED_FROM, "1")],
            ),
            expect: ReapExpect::Skip("NotManaged", vec![]),
        },
        ReapCase {
            name: "detached-at=yesterday",
            input: ReapInput::Instance(vec![
                (tags::DETACHED_AT, "yesterday"),
                (tags::DETACHED_FROM, "r-gone"),
            ]),
            expect: ReapExpect::Wait("InvalidConfig", "r-gone"),
        },
        ReapCase {
            name: "detached-at empty",
            input: ReapInput::Instance(vec![(tags::DETACHED_AT, ""), (tags::DETACHED_FROM, "r-gone")]),
            expect: ReapExpect::Wait("InvalidConfig", "r-gone"),
        },
        ReapCase {
            name: "our launch with launched-at=soon, young by EC2's clock",
            input: ReapInput::Instance(vec![
                (tags::GROUP, "r-gone"),
                (tags::REPLACES, "i-0123456789abcdef0"),
                (tags::LAUNCHED_AT, "soon"),
            ]),
            expect: ReapExpect::Wait("WaitingForOrphanAge", "r-gone"),
        },
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reaper_leaves_unreadable_records_alone_with_a_reason() {
    // GIVEN a region behind the fault proxy with groups and instances carrying records the
    //   reaper cannot read, or on groups it must not touch
    let proxy = Proxy::from_env().await.expect("proxy");
    let env = Env::at(&proxy.url()).await;
    let cases = reaper_cases();
    let mut instance_of = BTreeMap::new();
    for c in &cases {
        match &c.input {
            ReapInput::Group(spec) => {
                env.group(spec).await;
            }
            ReapInput::Instance(tags) => {
                instance_of.insert(c.name, standalone(&env, tags).await);
            }
        }
    }
    let live_before = env.live_instances().await;

    // WHEN one reaper pass runs
    proxy.reset_calls();
    let report = reap(&env.aws(), &config(), CycleOptions::default())
        .await
        .expect("the pass runs");
    eprintln!("{}", serde_json::to_string(&report).unwrap());

    // THEN not one mutating call reached AWS
    let mut failures = Failures::default();
    failures.check("pass", proxy.mutating_calls() == 0, || {
        format!("mutating calls: {:?}", proxy.calls())
    });
    // AND each case is skipped or waits, naming its group or instance
    for c in &cases {
        let name = c.name;
        match (&c.expect, &c.input) {
            (ReapExpect::Skip(reason, needles), ReapInput::Group(spec)) => {
                let skip = report.skipped.iter().find(|s| s.group == spec.name);
                let got = skip.map(|s| s.reason.code());
                failures.check(name, got == Some(*reason), || {
                    format!("skipped as {got:?}, expected {reason}")
                });
                let detail = skip.and_then(|s| s.detail.clone()).unwrap_or_default();
                for n in needles {
                    failures.check(name, detail.contains(n.as_str()), || {
                        format!("detail lacks {n:?}: {detail:?}")
                    });
                }
                failures.check(name, report.actions.iter().all(|a| a.group != spec.name), || {
                    "a skipped group has actions".into()
                });
            }
            (ReapExpect::Wait(reason, group), input) => {
                let instance = instance_of.get(name).cloned();
                let mine: Vec<&ActionReport> = report
                    .actions
                    .iter()
                    .filter(|a| match (&instance, input) {
                        (Some(id), _) => a.instance.as_deref() == Some(id.as_str()),
                        (None, ReapInput::Group(spec)) => a.group == spec.name,
                        (None, ReapInput::Instance(_)) => false,
                    })
                    .collect();
                let steps: Vec<(&str, &str, &str)> = mine
                    .iter()
                    .map(|a| (a.kind.name(), a.reason.code(), a.group.as_str()))
                    .collect();
                failures.check(name, steps == vec![("wait", *reason, *group)], || {
                    format!("decisions {steps:?}, expected one wait {reason} for {group}")
                });
            }
            (expect, _) => failures.check(name, false, || format!("case cannot expect {expect:?}")),
        }
    }
    failures.check("region", env.live_instances().await == live_before, || {
        "instances changed".into()
    });
    failures.assert_none(cases.len());
}

// ---------------------------------------------------------------------------------------------
// the CLI
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum CliInput {
    /// A path relative to the workspace root.
    File(&'static str),
    /// Bytes written to a scratch file first.
    Bytes(Vec<u8>),
    /// Text on standard input (`handle-event -`).
    Stdin(String),
}

#[derive(Debug, Clone)]
enum CliExpect {
    /// Exit 2, one line on stderr holding each needle, no AWS call at all.
    Invalid(&'static [&'static str]),
    /// Exit 0, one decision with this reason, reads only.
    Ignored(&'static str),
}

struct CliCase {
    name: &'static str,
    input: CliInput,
    expect: CliExpect,
}

fn cli_cases() -> Vec<CliCase> {
    let case = |name, input, expect| CliCase { name, input, expect };
    vec![
        case(
            "truncated file",
            CliInput::File("tests/bad-input/truncated.json"),
            CliExpect::Invalid(&["invalid event", "EOF while parsing"]),
        ),
        case(
            "instance-action explode",
            CliInput::File("tests/bad-input/instance-action-explode.json"),
            CliExpect::Invalid(&["invalid event", "explode", SPOT_WARNING]),
        ),
        case(
            "instance-id is a number",
            CliInput::File("tests/bad-input/instance-id-number.json"),
            CliExpect::Invalid(&["invalid event", "invalid type: integer"]),
        ),
        case(
            "empty file",
            CliInput::File("tests/bad-input/empty.json"),
            CliExpect::Invalid(&["invalid event", "EOF while parsing"]),
        ),
        case(
            "an SQS event",
            CliInput::File("tests/bad-input/sqs-event.json"),
            CliExpect::Invalid(&["not an EventBridge event", "missing field"]),
        ),
        case(
            "rebalance recommendation without instance-id",
            CliInput::File("tests/bad-input/rebalance-without-instance-id.json"),
            CliExpect::Invalid(&["invalid event", "instance-id", REBALANCE]),
        ),
        case(
            "a file that is not UTF-8",
            CliInput::Bytes(b"{\"detail-type\": \"\xff\xfe\"}".to_vec()),
            CliExpect::Invalid(&["cannot read"]),
        ),
        case(
            "a directory",
            CliInput::File("tests/bad-input"),
            CliExpect::Invalid(&["cannot read", "tests/bad-input"]),
        ),
        case(
            "5 MB that is not JSON on stdin",
            CliInput::Stdin("x".repeat(FIVE_MB)),
            CliExpect::Invalid(&["invalid event", "expected value"]),
        ),
        case(
            "a truncated event on stdin",
            CliInput::Stdin(r#"{"detail-type":"EC2 Spot Instance Interr"#.into()),
            CliExpect::Invalid(&["invalid event", "EOF while parsing"]),
        ),
        case(
            "CloudTrail API call",
            CliInput::File("tests/bad-input/cloudtrail-api-call.json"),
            CliExpect::Ignored("IgnoredDetailType"),
        ),
        case(
            "spot warning for an instance that does not exist",
            CliInput::File("tests/bad-input/spot-warning-unknown-instance.json"),
            CliExpect::Ignored("UnknownInstance"),
        ),
    ]
}

/// A scratch file under the target directory.
fn scratch(name: &str, content: &[u8]) -> PathBuf {
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
        .join("tmp")
        .join("bad-input");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path
}

fn run_cli(env: &Env, endpoint: &str, file: &str, stdin: Option<&str>) -> Output {
    let mut child = Command::new(workspace_bin("spotswap"))
        .args(["handle-event", file])
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_REGION", env.region())
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("SPOTSWAP_PRICE_FILE", sample_price_file())
        .env("SPOTSWAP_EVENT_BUS", "")
        .env_remove("RUST_LOG")
        .current_dir(workspace_root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run spotswap");
    let input = child.stdin.take().unwrap();
    let text = stdin.map(str::to_string);
    // write from a thread: the child may answer before it has read everything
    let writer = std::thread::spawn(move || {
        let mut input = input;
        if let Some(t) = text {
            use std::io::Write;
            let _ = input.write_all(t.as_bytes());
        }
    });
    let out = child.wait_with_output().expect("spotswap ends");
    writer.join().unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_exits_2_with_one_line_for_invalid_events_and_0_for_ignored_ones() {
    // GIVEN a region behind the fault proxy and the `spotswap` binary pointed at it
    let proxy = Proxy::from_env().await.expect("proxy");
    let env = Env::at(&proxy.url()).await;
    let cases = cli_cases();
    let mut failures = Failures::default();
    for (i, c) in cases.iter().enumerate() {
        let name = c.name;
        // WHEN `spotswap handle-event` is given the input
        let (file, stdin) = match &c.input {
            CliInput::File(path) => (path.to_string(), None),
            CliInput::Bytes(bytes) => (
                scratch(&format!("case-{i}.json"), bytes)
                    .to_string_lossy()
                    .into_owned(),
                None,
            ),
            CliInput::Stdin(text) => ("-".to_string(), Some(text.as_str())),
        };
        proxy.reset_calls();
        let out = run_cli(&env, &proxy.url(), &file, stdin);
        let calls = proxy.calls();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();

        // THEN no mutating call reached AWS
        failures.check(name, proxy.mutating_calls() == 0, || {
            format!("mutating calls: {calls:?}")
        });
        match &c.expect {
            // AND an invalid event exits 2 with one line on stderr, before any call
            CliExpect::Invalid(needles) => {
                failures.check(name, out.status.code() == Some(2), || {
                    format!("exit {:?}: {}", out.status.code(), one_line(&stderr))
                });
                let lines: Vec<&str> = stderr.lines().collect();
                failures.check(
                    name,
                    lines.len() == 1 && lines[0].starts_with("spotswap: ") && lines[0].len() < 1000,
                    || format!("stderr is not one short line: {}", one_line(&stderr)),
                );
                for n in *needles {
                    failures.check(name, stderr.contains(n), || {
                        format!("stderr lacks {n:?}: {}", one_line(&stderr))
                    });
                }
                failures.check(name, calls.is_empty(), || format!("calls: {calls:?}"));
            }
            // AND an ignored event exits 0 and prints the decision with its reason
            CliExpect::Ignored(reason) => {
                failures.check(name, out.status.success(), || {
                    format!("exit {:?}: {}", out.status.code(), one_line(&stderr))
                });
                let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
                let reasons: Vec<&str> = printed["decisions"]
                    .as_array()
                    .map(|d| d.iter().filter_map(|d| d["reason"].as_str()).collect())
                    .unwrap_or_default();
                failures.check(name, reasons == vec![*reason], || {
                    format!("decisions {reasons:?}, expected {reason}")
                });
            }
        }
    }
    failures.assert_none(cases.len());
}

// ---------------------------------------------------------------------------------------------
// the corpus itself
// ---------------------------------------------------------------------------------------------

#[test]
fn corpus_has_at_least_50_cases() {
    // GIVEN every table of the corpus
    let counts = [
        ("events", event_cases().len()),
        ("bad tags", tag_cases().len()),
        ("odd group states", odd_state_cases().len()),
        ("reaper records", reaper_cases().len()),
        ("CLI", cli_cases().len()),
    ];
    let total: usize = counts.iter().map(|(_, n)| n).sum();
    eprintln!("bad-input corpus: {counts:?}, {total} cases");
    // THEN there are at least 50 cases
    assert!(total >= 50, "{counts:?}");
    // AND every tag of the schema is given bad values, and every case has its own name
    let tagged: Vec<String> = tag_cases().iter().map(|c| c.name.clone()).collect();
    for key in SETTING_TAGS.iter().chain([&tags::ENABLED]) {
        assert!(
            tagged
                .iter()
                .filter(|n| n.starts_with(&format!("{key}=")))
                .count()
                >= 2,
            "{key} needs bad values"
        );
    }
    let mut names: Vec<String> = event_cases().iter().map(|c| c.name.to_string()).collect();
    names.extend(tagged);
    names.extend(odd_state_cases().into_iter().map(|c| c.name));
    names.extend(reaper_cases().iter().map(|c| c.name.to_string()));
    names.extend(cli_cases().iter().map(|c| format!("cli: {}", c.name)));
    let unique: std::collections::BTreeSet<&String> = names.iter().collect();
    assert_eq!(unique.len(), names.len(), "duplicate case names");
}
