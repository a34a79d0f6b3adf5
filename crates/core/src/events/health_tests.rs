use std::collections::BTreeMap;

use super::*;
use crate::action::{ActionKind, Purchase};
use crate::candidates::tests::market;
use crate::events::tests::HEALTH;
use crate::events::{parse_event, Membership, ParsedEvent};
use crate::model::{Lifecycle, MemberState, Pool};
use crate::tags;
use crate::testkit::{instance, Fleet};

const ID: &str = "i-1234567890abcdef0";
const NOW: Timestamp = Timestamp::from_unix(1_767_225_600);
const A: &str = "us-east-1a";

fn detail() -> (HealthDetail, Vec<String>) {
    match parse_event(HEALTH).unwrap() {
        ParsedEvent::Health(e) => (e.detail, e.resources.unwrap_or_default()),
        other => panic!("{other:?}"),
    }
}

/// A managed group of desired 3: ID (of `lifecycle`), one more spot and one on-demand m5.large
/// in us-east-1a.
fn fleet(lifecycle: Lifecycle, tags_: &[(&str, &str)]) -> (EventSnapshot, BTreeMap<String, Instance>) {
    let mut fleet = Fleet::new().max(3).desired(3).grace(0).market(market());
    for (id, lc) in [
        (ID, lifecycle),
        ("i-bbbbbbbbbbbbbbbbb", Lifecycle::Spot),
        ("i-ccccccccccccccccc", Lifecycle::OnDemand),
    ] {
        fleet = fleet.instance(instance(id, "m5.large", A, lc)).listed(id);
    }
    for (k, v) in tags_ {
        fleet = fleet.tag(k, v);
    }
    let Fleet { group, instances, .. } = fleet;
    let snap = EventSnapshot {
        membership: Some(Membership {
            instance: ID.into(),
            group: "web".into(),
            pool: Pool::new("m5.large", A),
            state: MemberState::InService,
            lifecycle_state: "InService".into(),
        }),
        ec2: None,
        replaced_by: Vec::new(),
        group: Some(group),
    };
    (snap, instances)
}

fn decide(snap: &EventSnapshot, instances: &BTreeMap<String, Instance>) -> Vec<Action> {
    decide_scheduled(ID, snap, instances, &market(), &Settings::default(), NOW)
}

fn launch(mut actions: Vec<Action>) -> crate::action::LaunchSpec {
    assert_eq!(actions.len(), 1, "{actions:?}");
    assert_eq!(actions[0].reason, Reason::ScheduledChange, "{actions:?}");
    match actions.remove(0).kind {
        ActionKind::Launch(spec) => spec,
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_sample_event_parses_with_its_instance_and_start() {
    let (d, resources) = detail();
    assert!(d.is_ec2_scheduled_change());
    assert_eq!(d.event_type_code, "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED");
    assert_eq!(d.start(), Timestamp::parse_rfc3339("2026-01-15T09:00:00Z"));
    // the entity and the resource name the same instance: it is listed once
    let ids: Vec<String> = d.instances(&resources).into_iter().map(String::from).collect();
    assert_eq!(ids, vec![ID.to_string()]);
    // RFC 3339 start times are read too; garbage is no start
    let mut d2 = d.clone();
    d2.start_time = Some("2026-01-15T09:00:00Z".into());
    assert_eq!(d2.start(), d.start());
    d2.start_time = Some("next Thursday".into());
    assert_eq!(d2.start(), None);
    // an entity that is not an instance id is left out
    d2.affected_entities.push(AffectedEntity {
        entity_value: "vol-0123".into(),
    });
    assert_eq!(d2.instances(&[]).len(), 1);
    // another category or service is not acted on
    d2.event_type_category = "issue".into();
    assert!(!d2.is_ec2_scheduled_change());
}

#[test]
fn a_retiring_spot_instance_gets_a_spot_replacement_tagged_as_replacing_it() {
    let (snap, instances) = fleet(Lifecycle::Spot, &[]);
    let spec = launch(decide(&snap, &instances));
    assert_eq!(spec.replaces, ID);
    assert_eq!(spec.purchase, Purchase::Spot);
    assert!(spec.tags.contains(&(tags::REPLACES.to_string(), ID.to_string())));
}

#[test]
fn a_retiring_on_demand_instance_the_floor_needs_is_replaced_on_demand_in_kind() {
    // GIVEN the floor is one on-demand instance and the affected one is the only one... of two:
    //   base 2 makes both on-demand instances needed
    let (snap, instances) = fleet(Lifecycle::OnDemand, &[(tags::ON_DEMAND_BASE, "2")]);
    let spec = launch(decide(&snap, &instances));
    assert_eq!(spec.purchase, Purchase::OnDemand);
    assert_eq!(spec.candidates.len(), 1);
    assert_eq!(spec.candidates[0].pool, Pool::new("m5.large", A));
    // AND above the floor, the replacement is spot
    let (snap, instances) = fleet(Lifecycle::OnDemand, &[]);
    assert_eq!(launch(decide(&snap, &instances)).purchase, Purchase::Spot);
}

#[test]
fn a_sheltered_group_or_one_without_a_spot_pool_still_gets_capacity_on_demand() {
    let until = NOW.plus_minutes(30).to_rfc3339();
    let (snap, instances) = fleet(Lifecycle::Spot, &[(tags::SHELTERED_UNTIL, &until)]);
    assert_eq!(launch(decide(&snap, &instances)).purchase, Purchase::OnDemand);
    // every spot type denied: no spot pool qualifies
    let (snap, instances) = fleet(Lifecycle::Spot, &[(tags::DENIED_TYPES, "*")]);
    assert_eq!(launch(decide(&snap, &instances)).purchase, Purchase::OnDemand);
}

#[test]
fn duplicates_unmanaged_and_protected_instances_are_no_ops() {
    let reasons = |a: Vec<Action>| a.iter().map(|a| (a.kind.name(), a.reason)).collect::<Vec<_>>();
    // a live launch already replacing the instance: a second delivery adds nothing
    let (snap, mut instances) = fleet(Lifecycle::Spot, &[]);
    let mut ours = instance("i-ddddddddddddddddd", "m5a.large", A, Lifecycle::Spot);
    ours.tags.insert(tags::GROUP.into(), "web".into());
    ours.tags.insert(tags::REPLACES.into(), ID.into());
    instances.insert(ours.id.clone(), ours);
    assert_eq!(
        reasons(decide(&snap, &instances)),
        vec![("ignore", Reason::AlreadyHandled)]
    );
    // unmanaged, a bad tag, protected from scale-in, termination protected
    for (t, reason) in [
        ((tags::ENABLED, "false"), Reason::NotManaged),
        ((tags::MAX_POOL_PERCENT, "x"), Reason::InvalidConfig),
    ] {
        let (snap, instances) = fleet(Lifecycle::Spot, &[t]);
        assert_eq!(
            reasons(decide(&snap, &instances)),
            vec![("ignore", reason)],
            "{t:?}"
        );
    }
    let (mut snap, instances) = fleet(Lifecycle::Spot, &[]);
    snap.group.as_mut().unwrap().members[0].protected_from_scale_in = true;
    assert_eq!(
        reasons(decide(&snap, &instances)),
        vec![("ignore", Reason::InstanceProtected)]
    );
    let (snap, mut instances) = fleet(Lifecycle::Spot, &[]);
    instances.get_mut(ID).unwrap().termination_protected = Some(true);
    assert_eq!(
        reasons(decide(&snap, &instances)),
        vec![("ignore", Reason::InstanceProtected)]
    );
    // an instance in no group is unknown
    let snap = EventSnapshot::default();
    assert_eq!(
        reasons(decide(&snap, &instances)),
        vec![("ignore", Reason::UnknownInstance)]
    );
}

#[test]
fn a_paused_group_still_gets_its_replacement() {
    // a pause holds the rebalancer's new swaps, not what the change forces
    let (snap, instances) = fleet(Lifecycle::Spot, &[(tags::PAUSED_UNTIL, "2026-01-02T00:00:00Z")]);
    assert_eq!(launch(decide(&snap, &instances)).replaces, ID);
}
