//! The EventBridge events the interruption handler acts on: parsing, dispatch on
//! `detail-type`, and the screening both kinds share.
//!
//! Karpenter's shape: one small module per event kind, each a pure function from a parsed event
//! plus a small snapshot to actions with reasons. The adapter reads the snapshot, this module
//! decides, the adapter executes.
//!
//! # Layout
//!
//! - this module: [`parse_event`] / [`parse_value`] → [`ParsedEvent`], the [`EventSnapshot`] an
//!   event is decided on, and [`screen`]: the no-ops both kinds share (unknown instance,
//!   duplicate delivery, unmanaged group, bad tags, not InService).
//! - [`spot_warning`]: `EC2 Spot Instance Interruption Warning`.
//! - [`rebalance`]: `EC2 Instance Rebalance Recommendation`.
//! - [`health`]: `AWS Health Event`, EC2 scheduled changes (retirement, scheduled stop, reboot,
//!   maintenance).

pub mod health;
pub mod rebalance;
pub mod spot_warning;

use std::collections::BTreeMap;
use std::fmt;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::action::{Action, ActionKind, Reason};
use crate::error::EventError;
use crate::model::{GroupSnapshot, Instance, InstanceState, MemberState, Pool};
use crate::plan::{policy_for, Settings};
use crate::policy::Policy;
use crate::tags;

pub use health::{decide_scheduled, HealthDetail, AWS_HEALTH_EVENT};
pub use rebalance::{decide_rebalance, RebalanceDetail};
pub use spot_warning::{decide_records, decide_spot_warning, InstanceAction, SpotInterruptionDetail};

/// `detail-type` of a spot interruption warning.
pub const SPOT_WARNING: &str = "EC2 Spot Instance Interruption Warning";
/// `detail-type` of a rebalance recommendation.
pub const REBALANCE_RECOMMENDATION: &str = "EC2 Instance Rebalance Recommendation";

/// An EC2 instance id as events carry it: `i-` and 8 or 17 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct InstanceId(String);

impl InstanceId {
    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for InstanceId {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        let ok = s.strip_prefix("i-").is_some_and(|hex| {
            (hex.len() == 8 || hex.len() == 17)
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        });
        if ok {
            Ok(Self(s))
        } else {
            Err(format!(
                "{s:?} is not an EC2 instance id (i- and 8 or 17 hex digits)"
            ))
        }
    }
}

impl From<InstanceId> for String {
    fn from(id: InstanceId) -> Self {
        id.0
    }
}

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An event, parsed and dispatched on its `detail-type`.
#[derive(Debug, Clone, PartialEq)]
pub enum ParsedEvent {
    /// `EC2 Spot Instance Interruption Warning`.
    SpotWarning(EventBridgeEvent<SpotInterruptionDetail>),
    /// `EC2 Instance Rebalance Recommendation`.
    Rebalance(EventBridgeEvent<RebalanceDetail>),
    /// `AWS Health Event` (any service and category: [`HealthDetail::is_ec2_scheduled_change`]
    /// tells the ones acted on).
    Health(EventBridgeEvent<HealthDetail>),
    /// A well-formed EventBridge event of another detail-type: ignored, with a log line.
    Other(String),
}

impl ParsedEvent {
    /// The event's `detail-type`.
    pub fn detail_type(&self) -> &str {
        match self {
            Self::SpotWarning(_) => SPOT_WARNING,
            Self::Rebalance(_) => REBALANCE_RECOMMENDATION,
            Self::Health(_) => AWS_HEALTH_EVENT,
            Self::Other(t) => t,
        }
    }

    /// The event's `id`, when it has one.
    pub fn id(&self) -> Option<&str> {
        match self {
            Self::SpotWarning(e) => e.id.as_deref(),
            Self::Rebalance(e) => e.id.as_deref(),
            Self::Health(e) => e.id.as_deref(),
            Self::Other(_) => None,
        }
    }

    /// The instance the event is about (a Health event's first affected entity).
    pub fn instance_id(&self) -> Option<&str> {
        match self {
            Self::SpotWarning(e) => Some(e.detail.instance_id.as_str()),
            Self::Rebalance(e) => Some(e.detail.instance_id.as_str()),
            Self::Health(e) => e
                .detail
                .affected_entities
                .first()
                .map(|a| a.entity_value.as_str()),
            Self::Other(_) => None,
        }
    }
}

/// Parse an event from its JSON text.
///
/// Not JSON, or not an EventBridge envelope (`detail-type`, `source`, `detail`) →
/// [`EventError::NotAnEvent`]. One of our two kinds whose detail lacks a field or has one of the
/// wrong type → [`EventError::MalformedDetail`]. Any other detail-type → [`ParsedEvent::Other`].
pub fn parse_event(raw: &str) -> Result<ParsedEvent, EventError> {
    let value: Value = serde_json::from_str(raw).map_err(EventError::NotAnEvent)?;
    parse_value(value)
}

/// Parse an event already read as JSON (what the Lambda runtime hands over).
pub fn parse_value(value: Value) -> Result<ParsedEvent, EventError> {
    // serde reads a struct from an array of its fields in order too: without these checks
    // `"detail":["i-…","terminate"]` would be a spot warning.
    if !value.is_object() {
        return Err(EventError::NotAnEvent(not_an_object(
            &value,
            "an EventBridge event object",
        )));
    }
    let envelope: EventBridgeEvent<Value> =
        serde_json::from_value(value.clone()).map_err(EventError::NotAnEvent)?;
    let malformed = |source| EventError::MalformedDetail {
        detail_type: envelope.detail_type.clone(),
        source,
    };
    if matches!(
        envelope.detail_type.as_str(),
        SPOT_WARNING | REBALANCE_RECOMMENDATION | AWS_HEALTH_EVENT
    ) && !envelope.detail.is_object()
    {
        return Err(malformed(not_an_object(&envelope.detail, "a detail object")));
    }
    match envelope.detail_type.as_str() {
        SPOT_WARNING => serde_json::from_value(value)
            .map(ParsedEvent::SpotWarning)
            .map_err(malformed),
        REBALANCE_RECOMMENDATION => serde_json::from_value(value)
            .map(ParsedEvent::Rebalance)
            .map_err(malformed),
        AWS_HEALTH_EVENT => serde_json::from_value(value)
            .map(ParsedEvent::Health)
            .map_err(malformed),
        _ => Ok(ParsedEvent::Other(envelope.detail_type)),
    }
}

/// serde's "invalid type" error for a JSON value that should have been an object.
fn not_an_object(value: &Value, expected: &'static str) -> serde_json::Error {
    use serde::de::{Error, Unexpected};
    let unexpected = match value {
        Value::Null => Unexpected::Unit,
        Value::Bool(b) => Unexpected::Bool(*b),
        Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => Unexpected::Unsigned(u),
            (_, Some(i), _) => Unexpected::Signed(i),
            (_, _, Some(f)) => Unexpected::Float(f),
            _ => Unexpected::Other("number"),
        },
        Value::String(s) => Unexpected::Str(s),
        Value::Array(_) => Unexpected::Seq,
        Value::Object(_) => Unexpected::Map,
    };
    serde_json::Error::invalid_type(unexpected, &expected)
}

/// The instance as its group lists it (`DescribeAutoScalingInstances`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Membership {
    /// Instance id.
    pub instance: String,
    /// The group that lists it.
    pub group: String,
    /// Its pool (type × AZ).
    pub pool: Pool,
    /// Group lifecycle state.
    pub state: MemberState,
    /// The lifecycle state as the API spells it (`Detaching`, `Terminating:Wait`, …), for logs.
    pub lifecycle_state: String,
}

/// What one event is decided on: read per event, no more than the decision needs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventSnapshot {
    /// The instance as its group lists it; `None` when no group does.
    pub membership: Option<Membership>,
    /// EC2's view of the instance, read only when no group lists it: it tells a duplicate
    /// delivery (tagged `spotswap:detached-at`, or gone) from an instance we never knew.
    pub ec2: Option<Instance>,
    /// The group of `membership`, with `has_terminating_hook` read for a spot warning.
    pub group: Option<GroupSnapshot>,
    /// Our live launches tagged `spotswap:replaces` = the instance: a swap of it in flight.
    /// Read for a spot warning, with the group.
    pub replaced_by: Vec<Instance>,
}

/// An event that passed [`screen`]: the instance is InService in a managed group.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    /// The group.
    pub group: &'a GroupSnapshot,
    /// Its policy.
    pub policy: Policy,
    /// The instance's membership.
    pub membership: &'a Membership,
}

/// A no-op decision: logged, never executed.
pub(crate) fn ignore(reason: Reason, group: &str, instance: &str, pool: Option<&Pool>) -> Action {
    let a = Action::new(ActionKind::Ignore, reason, group).instance(instance);
    match pool {
        Some(p) => a.pool(p.clone()),
        None => a,
    }
}

/// What both kinds check first. `Err` is the no-op and its reason:
///
/// - no group lists the instance: `AlreadyHandled` when EC2 shows it tagged
///   `spotswap:detached-at` or gone (a duplicate or late delivery), else `UnknownInstance`;
/// - the group is not managed: `NotManaged`; has a bad tag: `InvalidConfig` (with
///   [`BadConfig::Defaults`], only a bad `spotswap:enabled`; other bad values fall back to the
///   stack's defaults);
/// - the instance is leaving the group (`Detaching`, `Terminating*`): `AlreadyHandled`;
///   pending or in standby: `NotInService`.
///
/// The group is screened before the instance's state, so an unmanaged group's instance is
/// always reported `NotManaged`, whatever state it is in.
// Both variants are small next to the work done on them; boxing buys nothing here.
#[allow(clippy::result_large_err)]
pub fn screen<'a>(
    instance: &str,
    snap: &'a EventSnapshot,
    settings: &Settings,
    bad_config: BadConfig,
) -> Result<Target<'a>, Action> {
    let Some(membership) = snap.membership.as_ref() else {
        return Err(match &snap.ec2 {
            Some(i) if i.tag(tags::DETACHED_AT).is_some() => ignore(
                Reason::AlreadyHandled,
                i.tag(tags::DETACHED_FROM).unwrap_or_default(),
                instance,
                Some(&i.pool()),
            ),
            Some(i) if i.state == InstanceState::Gone => {
                ignore(Reason::AlreadyHandled, "", instance, Some(&i.pool()))
            }
            Some(i) => ignore(Reason::UnknownInstance, "", instance, Some(&i.pool())),
            None => ignore(Reason::UnknownInstance, "", instance, None),
        });
    };
    let pool = Some(&membership.pool);
    let Some(group) = snap.group.as_ref().filter(|g| g.name == membership.group) else {
        // Listed a moment ago, gone now: the group is being deleted.
        return Err(ignore(Reason::UnknownInstance, &membership.group, instance, pool));
    };
    let policy = match policy_for(group, settings) {
        Ok(Some(p)) => p,
        Ok(None) => return Err(ignore(Reason::NotManaged, &group.name, instance, pool)),
        Err(e) if bad_config == BadConfig::Defaults && e.key() != tags::ENABLED => settings.defaults.clone(),
        Err(_) => return Err(ignore(Reason::InvalidConfig, &group.name, instance, pool)),
    };
    match membership.state {
        MemberState::InService => Ok(Target {
            group,
            policy,
            membership,
        }),
        MemberState::Leaving => Err(ignore(Reason::AlreadyHandled, &group.name, instance, pool)),
        MemberState::Pending | MemberState::Standby => {
            Err(ignore(Reason::NotInService, &group.name, instance, pool))
        }
    }
}

/// The original a proactive swap (a rebalance recommendation, an AWS Health scheduled change)
/// replaces, or the no-op saying why not, checked in this order: gone (`AlreadyHandled`),
/// refused by `refuse` (the event kind's own rule: `NotSpot` for a rebalance recommendation),
/// termination-protected (`InstanceProtected`: the Retire stage could not end it), or already
/// replaced by a live launch of ours (`AlreadyHandled`: a duplicate or concurrent delivery).
///
/// Alive, detached or not, as this check has always been: `is_live_launch_for` would also drop
/// a detached launch, letting a fresh swap start for an instance whose replacement was
/// interrupted.
// Both variants are small next to the work done on them, as for `screen`.
#[allow(clippy::result_large_err)]
pub(crate) fn proactive_original<'i>(
    group: &GroupSnapshot,
    id: &str,
    pool: &Pool,
    instances: &'i BTreeMap<String, Instance>,
    refuse: impl Fn(&Instance) -> Option<Reason>,
) -> Result<&'i Instance, Action> {
    let noop = |reason, pool: &Pool| ignore(reason, &group.name, id, Some(pool));
    let Some(original) = instances.get(id).filter(|i| i.is_alive()) else {
        return Err(noop(Reason::AlreadyHandled, pool));
    };
    if let Some(reason) = refuse(original) {
        return Err(noop(reason, pool));
    }
    if original.termination_protected == Some(true) {
        return Err(noop(Reason::InstanceProtected, pool));
    }
    let ours = |i: &&Instance| i.is_launch_for(&group.name) && i.is_alive();
    if let Some(launch) = instances.values().filter(ours).find(|i| i.replaces() == Some(id)) {
        return Err(noop(Reason::AlreadyHandled, &launch.pool()));
    }
    Ok(original)
}

/// What a group's bad tag value means for an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadConfig {
    /// A no-op (`InvalidConfig`): what the event would start is configuration (a rebalance
    /// recommendation's new swap).
    Ignore,
    /// Go on with the stack's defaults: what the event asks is safety (an interruption's
    /// replacement). A bad `spotswap:enabled` is still a no-op: the group may not be ours.
    Defaults,
}

/// The policy an interruption is handled with: the group's, or the stack's defaults when a tag
/// value is bad (the replacement is safety, not configuration). `None` when the group is not
/// managed, or its `spotswap:enabled` is bad.
pub fn warning_policy(group: &GroupSnapshot, settings: &Settings) -> Option<Policy> {
    match policy_for(group, settings) {
        Ok(p) => p,
        Err(e) if e.key() != tags::ENABLED => Some(settings.defaults.clone()),
        Err(_) => None,
    }
}

/// The bad tag behind an `InvalidConfig` no-op, for its log line.
pub fn config_error(group: &GroupSnapshot, settings: &Settings) -> Option<crate::ConfigError> {
    policy_for(group, settings).err()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::time::Timestamp;

    pub(crate) const WARNING: &str = include_str!("../../../../events/interruption-spot-warning.json");
    pub(crate) const WARNING_STOP: &str =
        include_str!("../../../../events/interruption-spot-warning-stop.json");
    pub(crate) const WARNING_HIBERNATE: &str =
        include_str!("../../../../events/interruption-spot-warning-hibernate.json");
    pub(crate) const REBALANCE: &str =
        include_str!("../../../../events/interruption-rebalance-recommendation.json");
    pub(crate) const MALFORMED: &str = include_str!("../../../../events/interruption-malformed.json");
    pub(crate) const OTHER: &str = include_str!("../../../../events/interruption-other-detail-type.json");
    pub(crate) const HEALTH: &str =
        include_str!("../../../../events/interruption-health-scheduled-change.json");

    #[test]
    fn spot_warning_files_parse_with_their_action() {
        // GIVEN AWS's documented spot warning, once per instance-action
        for (raw, action) in [
            (WARNING, InstanceAction::Terminate),
            (WARNING_STOP, InstanceAction::Stop),
            (WARNING_HIBERNATE, InstanceAction::Hibernate),
        ] {
            // WHEN parsed
            let ParsedEvent::SpotWarning(e) = parse_event(raw).expect("parses") else {
                panic!("not dispatched as a spot warning");
            };
            // THEN the typed detail and the envelope are read
            assert_eq!(e.detail.instance_id.as_str(), "i-1234567890abcdef0");
            assert_eq!(e.detail.instance_action, action);
            assert_eq!(e.source, "aws.ec2");
            assert_eq!(e.id.as_deref(), Some("12345678-1234-1234-1234-123456789012"));
            assert_eq!(
                e.time.map(|t| Timestamp::from_unix(t.timestamp())),
                Timestamp::parse_rfc3339("2026-01-01T00:00:00Z")
            );
        }
    }

    #[test]
    fn rebalance_file_parses() {
        let ParsedEvent::Rebalance(e) = parse_event(REBALANCE).expect("parses") else {
            panic!("not dispatched as a rebalance recommendation");
        };
        assert_eq!(e.detail.instance_id.as_str(), "i-1234567890abcdef0");
        assert_eq!(e.detail_type, REBALANCE_RECOMMENDATION);
    }

    #[test]
    fn malformed_file_is_a_malformed_detail() {
        // GIVEN a spot warning whose detail lacks instance-id
        let err = parse_event(MALFORMED).unwrap_err();
        // THEN it is one of our kinds with a bad detail, and the message names the field
        match &err {
            EventError::MalformedDetail { detail_type, .. } => assert_eq!(detail_type, SPOT_WARNING),
            other => panic!("expected MalformedDetail, got {other:?}"),
        }
        assert!(err.to_string().contains("instance-id"), "{err}");
        assert!(!err.to_string().contains('\n'));
    }

    #[test]
    fn other_detail_type_file_is_dispatched_as_other() {
        let parsed = parse_event(OTHER).expect("a well-formed event");
        assert_eq!(
            parsed,
            ParsedEvent::Other("EC2 Instance State-change Notification".into())
        );
    }

    #[test]
    fn bad_input_is_told_apart() {
        // Not JSON, not an object, no detail-type: not an event at all.
        for raw in [
            "",
            "not json",
            "[]",
            "42",
            r#"["0","id","EC2 Spot Instance Interruption Warning","aws.ec2",null,null,null,null,{"instance-id":"i-1234567890abcdef0","instance-action":"terminate"}]"#,
            r#"{"detail":{}}"#,
            r#"{"detail-type":"X","source":"y"}"#,
        ] {
            assert!(
                matches!(parse_event(raw), Err(EventError::NotAnEvent(_))),
                "{raw:?} should not be an event"
            );
        }
        // Our kinds with ill-typed or missing fields: malformed details.
        let warning = |detail: &str| {
            format!(r#"{{"detail-type":"{SPOT_WARNING}","source":"aws.ec2","detail":{detail}}}"#)
        };
        for detail in [
            r#"{}"#,
            r#"{"instance-id":"i-1234567890abcdef0"}"#,
            r#"{"instance-id":"i-1234567890abcdef0","instance-action":"reboot"}"#,
            r#"{"instance-id":42,"instance-action":"terminate"}"#,
            r#"{"instance-id":"web-1","instance-action":"terminate"}"#,
            r#"{"instance_id":"i-1234567890abcdef0","instance_action":"terminate"}"#,
            r#""terminate""#,
            r#"["i-1234567890abcdef0","terminate"]"#,
        ] {
            assert!(
                matches!(
                    parse_event(&warning(detail)),
                    Err(EventError::MalformedDetail { .. })
                ),
                "{detail} should be malformed"
            );
        }
        let rebalance = format!(
            r#"{{"detail-type":"{REBALANCE_RECOMMENDATION}","source":"aws.ec2","detail":{{"instance":"i-1234567890abcdef0"}}}}"#
        );
        assert!(matches!(
            parse_event(&rebalance),
            Err(EventError::MalformedDetail { .. })
        ));
        // A scheduled event is well-formed, just not ours.
        let scheduled = r#"{"detail-type":"Scheduled Event","source":"aws.events","detail":{}}"#;
        assert_eq!(
            parse_event(scheduled).unwrap(),
            ParsedEvent::Other("Scheduled Event".into())
        );
    }

    #[test]
    fn instance_ids_old_and_new_are_accepted() {
        assert!(InstanceId::try_from("i-12345678".to_string()).is_ok());
        assert!(InstanceId::try_from("i-1234567890abcdef0".to_string()).is_ok());
        assert!(InstanceId::try_from("i-1234567890ABCDEF0".to_string()).is_err());
        assert!(InstanceId::try_from("i-".to_string()).is_err());
        assert!(InstanceId::try_from("1234567890abcdef0".to_string()).is_err());
    }
}
