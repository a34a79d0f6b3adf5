use super::*;
use crate::testkit::{instance, Fleet};

fn line(
    ts: &str,
    action: &str,
    reason: &str,
    instance: &str,
    outcome: &str,
    detail: &str,
    cycle: &str,
) -> String {
    serde_json::json!({
        "timestamp": ts, "level": "INFO", "message": "decision", "action": action,
        "reason": reason, "group": "web", "instance": instance, "pool": "m5.large/us-east-1a",
        "outcome": outcome, "detail": detail, "cycle_id": cycle, "request_id": "",
    })
    .to_string()
}

fn sources() -> Sources {
    let mut replacement = instance("i-new", "m5.large", "us-east-1a", Lifecycle::Spot);
    replacement.tags.insert(tags::GROUP.into(), "web".into());
    replacement.tags.insert(tags::REPLACES.into(), "i-old".into());
    let raw = [
        // Out of order on purpose: a later cycle's line first.
        line(
            "2026-12-01T14:02:05.5Z",
            "detach",
            "SpotInterruptionWarning",
            "i-new",
            "Done",
            "",
            "ev-2",
        ),
        line(
            "2026-12-01T13:00:01.2Z",
            "launch",
            "OnDemandAboveFloor",
            "i-old",
            "Done",
            "i-new",
            "c-1",
        ),
        line(
            "2026-12-01T13:05:00Z",
            "retire",
            "ReplacementInService",
            "i-old",
            "Done",
            "",
            "c-2",
        ),
        line(
            "2026-12-01T13:00:01.9Z",
            "launch",
            "OnDemandAboveFloor",
            "i-other",
            "Done",
            "i-x",
            "c-1",
        ),
    ];
    Sources {
        instance: Some(replacement),
        lines: raw
            .iter()
            .filter_map(|l| LogLine::parse(l, None, "file"))
            .collect(),
        activities: vec![Activity {
            group: "web".into(),
            description: "Launching a new EC2 instance: i-new".into(),
            cause: "an instance was started in response to a difference between desired and actual capacity"
                .into(),
            status: "Successful".into(),
            status_message: String::new(),
            start: Timestamp::parse_rfc3339("2026-12-01T14:02:30Z"),
        }],
        log_args: vec!["--log-file".into(), "run.log".into()],
        ..Sources::default()
    }
}

#[test]
fn lambda_and_cli_lines_parse_and_other_lines_do_not() {
    // GIVEN a Lambda JSON line (fields nested, no time), a CLI line, and lines that are not ours
    let lambda = r#"{"level":"INFO","fields":{"message":"decision","action":"detach","reason":"SpotInterruptionWarning","group":"web","instance":"i-1","cycle_id":"ev-9","request_id":"req-1"},"span":{"requestId":"req-1"}}"#;
    let l = LogLine::parse(lambda, Some(1_000), "/aws/lambda/x").unwrap();
    // THEN the fields are read from `fields`, and CloudWatch's time is used
    assert_eq!(
        (l.action.as_str(), l.cycle_id.as_str(), l.request_id.as_str()),
        ("detach", "ev-9", "req-1")
    );
    assert_eq!(l.at_ms, Some(1_000));
    let cli = line(
        "2026-12-01T13:00:01.25Z",
        "launch",
        "OnDemandAboveFloor",
        "i-1",
        "Done",
        "i-2",
        "c-1",
    );
    let c = LogLine::parse(&cli, Some(5), "f").unwrap();
    assert_eq!(c.at_ms, Some(parse_ms("2026-12-01T13:00:01.25Z").unwrap()));
    assert!(c.mentions("i-2") && c.mentions("i-1") && !c.mentions("i-3"));
    for not_ours in ["", "not json", r#"{"message":"cycle finished"}"#, "[1]"] {
        assert!(LogLine::parse(not_ours, None, "f").is_none(), "{not_ours}");
    }
}

#[test]
fn an_instance_story_is_its_decisions_and_activities_in_time_order() {
    // GIVEN a replacement launched for i-old, then warned, then relaunched by its group
    let e = explain_instance("i-new", &sources()).unwrap();
    // THEN its group and the instance it replaced are named, and the timeline is in order
    assert_eq!(e.group.as_deref(), Some("web"));
    assert_eq!(e.related, vec!["i-old".to_string()]);
    let reasons: Vec<&str> = e.timeline.iter().map(|t| t.reason.as_str()).collect();
    assert_eq!(
        reasons,
        ["OnDemandAboveFloor", "SpotInterruptionWarning", "Successful"]
    );
    assert_eq!(e.cycles, vec!["c-1".to_string(), "ev-2".to_string()]);
    assert!(
        e.summary.contains("2 decision(s)") && e.summary.contains("SpotInterruptionWarning"),
        "{}",
        e.summary
    );
    assert_eq!(
        e.state.get("spotswap:replaces").map(String::as_str),
        Some("i-old")
    );
    // the original's story names its replacement and leaves the other swap out
    let old = explain_instance("i-old", &sources()).unwrap();
    assert_eq!(old.related, vec!["i-new".to_string()]);
    assert_eq!(old.timeline.len(), 2);
    assert!(old.summary.contains("no longer knows it"));
}

#[test]
fn an_unknown_instance_has_no_story() {
    assert!(explain_instance("i-nobody", &sources()).is_none());
}

#[test]
fn markdown_is_ticket_ready() {
    let md = render::markdown(&explain_instance("i-new", &sources()).unwrap());
    let timeline = md.find("### Timeline").unwrap();
    let evidence = md.find("### Evidence").unwrap();
    let reproduce = md.find("### Reproduce").unwrap();
    assert!(timeline < evidence && evidence < reproduce);
    // each decision line is in the evidence as it was written, and the command reproduces it
    assert!(md.contains(r#""cycle_id":"ev-2""#));
    assert!(md.contains("spotswap explain i-new --log-file run.log"));
    let rows = md.lines().filter(|l| l.starts_with("| 2026-")).count();
    assert_eq!(rows, 3);
    assert!(
        render::table(&explain_instance("i-new", &sources()).unwrap()).contains("SpotInterruptionWarning")
    );
}

#[test]
fn a_group_shows_floor_records_launches_and_why_not_managed() {
    // GIVEN a managed group of 4 with a base of 1, a cooldown record and one launch in flight
    let fleet = Fleet::new()
        .named("web")
        .desired(4)
        .tag(tags::ON_DEMAND_BASE, "1")
        .tag("spotswap:cooldown:m5.large/us-east-1a", "2026-12-01T15:00:00Z");
    let mut src = sources();
    src.group = Some(fleet.group.clone());
    src.launches = vec![src.instance.clone().unwrap()];
    let e = explain_group("web", &src, &fleet.settings(), Timestamp::from_unix(0)).unwrap();
    assert_eq!(e.state["floor (on-demand)"], "1");
    assert_eq!(e.state["managed"], "managed");
    assert!(e.state.contains_key("spotswap:cooldown:m5.large/us-east-1a"));
    assert_eq!(e.related, vec!["i-new (launched, replaces i-old)".to_string()]);
    assert_eq!(
        e.timeline.iter().filter(|t| t.source == Source::Decision).count(),
        4
    );
    // a bad tag is named
    let bad = fleet.clone().tag(tags::ENABLED, "yes");
    src.group = Some(bad.group.clone());
    let e = explain_group("web", &src, &bad.settings(), Timestamp::from_unix(0)).unwrap();
    assert!(
        e.state["managed"].contains("spotswap:enabled"),
        "{}",
        e.state["managed"]
    );
    // a group that does not exist has no story
    assert!(explain_group("nope", &src, &bad.settings(), Timestamp::from_unix(0)).is_none());
}

#[test]
fn our_eventbridge_events_join_the_timeline_as_events_and_report_does_not_count_them_twice() {
    // GIVEN the swap's decisions and its `Spotswap Swap Completed` event as EventBridge
    // delivers it to a target
    let event = serde_json::json!({
        "version": "0", "id": "e-1", "detail-type": "Spotswap Swap Completed",
        "source": "spotswap", "account": "123456789012", "time": "2026-12-01T13:05:01Z",
        "region": "us-east-1", "resources": [],
        "detail": {"group": "web", "instances": ["i-old", "i-new"], "pools": ["m5.large/us-east-1a"],
                   "reason": "ReplacementInService", "cycle_id": "c-2", "request_id": null}
    })
    .to_string();
    let l = LogLine::parse(&event, None, "archive").expect("our event");
    assert!(l.is_event() && l.mentions("i-new") && l.mentions("i-old"));
    assert_eq!((l.group.as_str(), l.cycle_id.as_str()), ("web", "c-2"));
    assert_eq!(l.at_ms, parse_ms("2026-12-01T13:05:01Z"));
    // another source's event is not ours
    let other = event.replace(r#""source":"spotswap""#, r#""source":"aws.ec2""#);
    assert!(LogLine::parse(&other, None, "archive").is_none());
    let mut src = sources();
    src.lines.push(l.clone());
    // THEN the replacement's story shows it as an event, after the retire it announces
    let e = explain_instance("i-new", &src).unwrap();
    let at = e
        .timeline
        .iter()
        .position(|t| t.source == Source::Event)
        .expect("event entry");
    assert!(
        e.timeline[at].what.contains("Spotswap Swap Completed"),
        "{:?}",
        e.timeline[at]
    );
    assert_eq!(e.timeline[at].cycle_id, "c-2");
    // and the report counts the decisions only
    let census = [("web".to_string(), crate::Census::default())];
    let since = Timestamp::parse_rfc3339("2026-12-01T12:00:00Z").unwrap();
    let until = Timestamp::parse_rfc3339("2026-12-01T15:00:00Z").unwrap();
    let without = report::build(&census, &[], &sources().lines, &Default::default(), since, until);
    let with = report::build(&census, &[], &src.lines, &Default::default(), since, until);
    assert_eq!(with.groups[0].top_reasons, without.groups[0].top_reasons);
}
