//! Tests of the spot interruption warning.

use std::collections::BTreeMap;

use super::*;
use crate::events::tests::{WARNING, WARNING_HIBERNATE, WARNING_STOP};
use crate::events::{parse_event, Membership, ParsedEvent};
use crate::model::{Instance, InstanceState, Lifecycle, Member, MemberState};
use crate::policy::Mode;
use crate::records::cooldown_key;
use crate::tags;
use crate::testkit::{member, Fleet};

/// The interruption record: cooldowns, bursts and shelters.
mod records;
/// Swaps whose replacement already serves, read from the original's own tag.
mod replaced;
use records::{record, recorded};

const ID: &str = "i-1234567890abcdef0";
const NOW: Timestamp = Timestamp::from_unix(1_767_225_600);

fn detail(raw: &str) -> SpotInterruptionDetail {
    match parse_event(raw).unwrap() {
        ParsedEvent::SpotWarning(e) => e.detail,
        other => panic!("{other:?}"),
    }
}

/// Group web with ID its one InService member, desired 4, and exactly `tags_`: not
/// managed unless they say so.
pub(crate) fn group(tags_: &[(&str, &str)]) -> GroupSnapshot {
    let mut fleet = Fleet::new()
        .untag(tags::ENABLED)
        .max(4)
        .desired(4)
        .grace(0)
        .listed(ID)
        .with_group(|g| g.instance_refresh_in_progress = None);
    for (k, v) in tags_ {
        fleet = fleet.tag(k, v);
    }
    fleet.group
}

fn snapshot(state: MemberState, lifecycle_state: &str, g: GroupSnapshot) -> EventSnapshot {
    EventSnapshot {
        membership: Some(Membership {
            instance: ID.into(),
            group: g.name.clone(),
            pool: Pool::new("m5.large", "us-east-1a"),
            state,
            lifecycle_state: lifecycle_state.into(),
        }),
        ec2: None,
        replaced_by: Vec::new(),
        group: Some(g),
    }
}

fn managed() -> GroupSnapshot {
    group(&[(tags::ENABLED, "true")])
}

fn kinds(actions: &[Action]) -> Vec<(&'static str, Reason)> {
    actions.iter().map(|a| (a.kind.name(), a.reason)).collect()
}

#[test]
fn without_a_hook_the_instance_is_detached_keeping_desired() {
    // GIVEN an InService spot instance of a managed group with no terminating hook
    let snap = snapshot(MemberState::InService, "InService", managed());
    // WHEN the warning arrives
    let actions = decide_spot_warning(&detail(WARNING), &snap, &Settings::default(), NOW);
    // THEN it is detached without decrementing desired, then tagged, all in its pool
    assert_eq!(
        actions[0].kind,
        ActionKind::Detach {
            instance: ID.into(),
            decrement: false
        }
    );
    assert_eq!(
        actions[1].kind,
        ActionKind::TagDetached {
            instance: ID.into(),
            group: "web".into()
        }
    );
    assert!(actions.iter().all(|a| a.reason == Reason::SpotInterruptionWarning
        && a.pool == Some(Pool::new("m5.large", "us-east-1a"))
        && a.instance.as_deref() == Some(ID)));
}

#[test]
fn a_mixed_instances_member_gets_its_replacement_first_too_weighted_or_not() {
    use crate::mixed::{MixedOverride, MixedPolicy};
    for weight in [None, Some("2")] {
        // GIVEN an InService spot member of a managed mixed-instances group (weighted, or not)
        let mut g = managed();
        g.launch_source = crate::model::LaunchSource::MixedInstances;
        g.mixed = Some(MixedPolicy {
            launch_template: crate::testkit::template(),
            overrides: vec![MixedOverride {
                instance_type: Some("m5.large".into()),
                weighted_capacity: weight.map(str::to_string),
                launch_template: None,
                instance_requirements: None,
            }],
            on_demand_base: Some(0),
            on_demand_percent: Some(0),
            desired_capacity_type: None,
        });
        let snap = snapshot(MemberState::InService, "InService", g);
        // WHEN the warning arrives
        let actions = decide_spot_warning(&detail(WARNING), &snap, &Settings::default(), NOW);
        // THEN the replacement is requested first, as for any group: detached keeping desired,
        //   so the group launches its replacement by its own policy (its units, when weighted)
        assert_eq!(
            actions[0].kind,
            ActionKind::Detach {
                instance: ID.into(),
                decrement: false
            },
            "{weight:?}"
        );
        assert_eq!(actions[0].reason, Reason::SpotInterruptionWarning);
    }
}

#[test]
fn with_a_terminating_hook_the_group_terminates_it_so_the_hook_drains_it() {
    let mut g = managed();
    g.has_terminating_hook = Some(true);
    let snap = snapshot(MemberState::InService, "InService", g);
    let actions = decide_spot_warning(&detail(WARNING), &snap, &Settings::default(), NOW);
    assert_eq!(
        actions[0].kind,
        ActionKind::TerminateInGroup {
            instance: ID.into(),
            decrement: false
        }
    );
    assert_eq!(actions[1].kind.name(), "tag-detached");
}

#[test]
fn stop_and_hibernate_are_handled_like_terminate() {
    let snap = snapshot(MemberState::InService, "InService", managed());
    let terminate = decide_spot_warning(&detail(WARNING), &snap, &Settings::default(), NOW);
    for raw in [WARNING_STOP, WARNING_HIBERNATE] {
        assert_eq!(
            decide_spot_warning(&detail(raw), &snap, &Settings::default(), NOW),
            terminate
        );
    }
}

#[test]
fn duplicates_unknown_and_unmanaged_are_single_no_ops() {
    let d = detail(WARNING);
    let settings = Settings::default();
    let ec2 = |tags_: &[(&str, &str)], state| Instance {
        subnet_id: None,
        state,
        launch_time: NOW,
        tags: tags_
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        architecture: None,
        ..crate::testkit::instance(ID, "m5.large", "us-east-1a", Lifecycle::Spot)
    };
    let cases: Vec<(EventSnapshot, Reason)> = vec![
        // detached by an earlier delivery: no group lists it, our tag is on it
        (
            EventSnapshot {
                ec2: Some(ec2(
                    &[
                        (tags::DETACHED_AT, "2026-01-01T00:00:00Z"),
                        (tags::DETACHED_FROM, "web"),
                    ],
                    InstanceState::Running,
                )),
                ..EventSnapshot::default()
            },
            Reason::AlreadyHandled,
        ),
        // already terminated
        (
            EventSnapshot {
                ec2: Some(ec2(&[], InstanceState::Gone)),
                ..EventSnapshot::default()
            },
            Reason::AlreadyHandled,
        ),
        // never heard of
        (EventSnapshot::default(), Reason::UnknownInstance),
        // running outside any group, untagged
        (
            EventSnapshot {
                ec2: Some(ec2(&[], InstanceState::Running)),
                ..EventSnapshot::default()
            },
            Reason::UnknownInstance,
        ),
        // mid-detach or terminating (a concurrent delivery, or the hook at work)
        (
            snapshot(MemberState::Leaving, "Detaching", managed()),
            Reason::AlreadyHandled,
        ),
        (
            snapshot(MemberState::Leaving, "Terminating:Wait", managed()),
            Reason::AlreadyHandled,
        ),
        (
            snapshot(MemberState::Standby, "Standby", managed()),
            Reason::NotInService,
        ),
        (
            snapshot(MemberState::Pending, "Pending", managed()),
            Reason::NotInService,
        ),
        // unmanaged, even when leaving
        (
            snapshot(MemberState::InService, "InService", group(&[])),
            Reason::NotManaged,
        ),
        (
            snapshot(MemberState::Leaving, "Detaching", group(&[])),
            Reason::NotManaged,
        ),
        // a bad spotswap:enabled: the group may not be ours at all
        (
            snapshot(
                MemberState::InService,
                "InService",
                group(&[(tags::ENABLED, "yes")]),
            ),
            Reason::InvalidConfig,
        ),
    ];
    for (snap, reason) in cases {
        let actions = decide_spot_warning(&d, &snap, &settings, NOW);
        assert_eq!(kinds(&actions), vec![("ignore", reason)], "{snap:?}");
        assert!(!actions[0].kind.is_mutating());
    }
    // a bad setting value does not stop the replacement (safety, not configuration): it is
    // handled with the stack's defaults
    let bad = snapshot(
        MemberState::InService,
        "InService",
        group(&[(tags::ENABLED, "true"), (tags::COOLDOWN_MINUTES, "soon")]),
    );
    assert_eq!(
        kinds(&decide_spot_warning(&d, &bad, &settings, NOW)),
        vec![
            ("detach", Reason::SpotInterruptionWarning),
            ("tag-detached", Reason::SpotInterruptionWarning)
        ]
    );
    // the duplicate names the group it was detached from
    let dup = EventSnapshot {
        ec2: Some(ec2(
            &[
                (tags::DETACHED_AT, "2026-01-01T00:00:00Z"),
                (tags::DETACHED_FROM, "web"),
            ],
            InstanceState::Running,
        )),
        ..EventSnapshot::default()
    };
    assert_eq!(decide_spot_warning(&d, &dup, &settings, NOW)[0].group, "web");
    // opt-out mode manages the untagged group
    let opt_out = Settings {
        mode: Mode::OptOut,
        ..Settings::default()
    };
    let snap = snapshot(MemberState::InService, "InService", group(&[]));
    assert_eq!(
        decide_spot_warning(&d, &snap, &opt_out, NOW)[0].kind.name(),
        "detach"
    );
}

#[test]
fn a_replacement_interrupted_while_its_original_serves_leaves_with_the_decrement() {
    use crate::testkit::instance;
    // GIVEN our spot launch L, attached (desired raised to 2), replacing on-demand O which
    // still serves: the swap's retire has not run (found by chaos seed 1)
    let mut g = managed();
    g.desired = 2;
    let o = "i-0000000000000000a";
    g.members.push(member(o));
    let mut l = instance(ID, "m5a.large", "us-east-1a", Lifecycle::Spot);
    for (k, v) in [
        (tags::GROUP, "web"),
        (tags::REPLACES, o),
        (tags::ATTACHED_AT, "2026-01-01T00:00:00Z"),
    ] {
        l.tags.insert(k.into(), v.into());
    }
    let mut snap = snapshot(MemberState::InService, "InService", g.clone());
    snap.ec2 = Some(l.clone());
    // WHEN L gets the warning
    let actions = decide_spot_warning(&detail(WARNING), &snap, &Settings::default(), NOW);
    // THEN it leaves with the decrement the retire would have made, so desired goes back
    assert_eq!(
        actions[0].kind,
        ActionKind::Detach {
            instance: ID.into(),
            decrement: true
        }
    );
    assert_eq!(actions[0].reason, Reason::ReplacementInterrupted);
    // AND once O is leaving (the retire ran and gave the decrement back), L is a plain
    // member again: replaced without decrement
    g.members[1].state = MemberState::Leaving;
    snap.group = Some(g.clone());
    let actions = decide_spot_warning(&detail(WARNING), &snap, &Settings::default(), NOW);
    assert_eq!(
        actions[0].kind,
        ActionKind::Detach {
            instance: ID.into(),
            decrement: false
        }
    );
    // AND a member launched by the group itself (no tags of ours) never decrements
    snap.ec2 = Some(instance(ID, "m5a.large", "us-east-1a", Lifecycle::Spot));
    g.members[1].state = MemberState::InService;
    snap.group = Some(g);
    let actions = decide_spot_warning(&detail(WARNING), &snap, &Settings::default(), NOW);
    assert_eq!(actions[0].reason, Reason::SpotInterruptionWarning);
}

#[test]
fn an_original_interrupted_while_its_replacement_serves_leaves_with_the_decrement() {
    use crate::testkit::instance;
    // GIVEN spot O (ID) being swapped: our launch L replacing it is attached (desired raised
    // to 2) and O's retire has not run (found by chaos seed 27)
    let mut g = managed();
    g.desired = 2;
    let l_id = "i-0000000000000000b";
    g.members.push(member(l_id));
    let mut l = instance(l_id, "m5a.large", "us-east-1b", Lifecycle::Spot);
    for (k, v) in [(tags::GROUP, "web"), (tags::REPLACES, ID)] {
        l.tags.insert(k.into(), v.into());
    }
    let mut snap = snapshot(MemberState::InService, "InService", g.clone());
    snap.replaced_by = vec![l.clone()];
    // WHEN O gets the warning
    let actions = decide_spot_warning(&detail(WARNING), &snap, &Settings::default(), NOW);
    // THEN it leaves with the decrement its retire would have made: L serves in its place
    assert_eq!(
        actions[0].kind,
        ActionKind::Detach {
            instance: ID.into(),
            decrement: true
        }
    );
    assert_eq!(actions[0].reason, Reason::OriginalAlreadyReplaced);
    // AND while L is not attached yet (launched, not a member), O is replaced as usual: the
    // rebalancer ends L once O is gone
    let mut unattached = g.clone();
    unattached.members.retain(|m| m.id != l_id);
    unattached.desired = 1;
    snap.group = Some(unattached);
    let actions = decide_spot_warning(&detail(WARNING), &snap, &Settings::default(), NOW);
    assert_eq!(actions[0].reason, Reason::SpotInterruptionWarning);
    // AND a launch of another group naming O never decrements this one
    let mut foreign = l;
    foreign.tags.insert(tags::GROUP.into(), "api".into());
    snap.group = Some(g);
    snap.replaced_by = vec![foreign];
    let actions = decide_spot_warning(&detail(WARNING), &snap, &Settings::default(), NOW);
    assert_eq!(
        actions[0].kind,
        ActionKind::Detach {
            instance: ID.into(),
            decrement: false
        }
    );
}

#[test]
fn the_rebalancer_never_reattaches_a_launch_detached_on_interruption() {
    use crate::candidates::tests::market;
    use crate::plan::plan_group;
    use crate::testkit::instance;
    // GIVEN a swap in flight: our spot launch L, attached, replacing on-demand O, and then
    // interrupted and detached by the handler (tagged detached-at, no longer a member)
    let mut g = managed();
    let o = instance(
        "i-0000000000000000a",
        "m5.large",
        "us-east-1a",
        Lifecycle::OnDemand,
    );
    let mut l = instance("i-0000000000000000b", "m5a.large", "us-east-1a", Lifecycle::Spot);
    for (k, v) in [
        (tags::GROUP, "web"),
        (tags::REPLACES, o.id.as_str()),
        (tags::ATTACHED_AT, "2026-01-01T00:00:00Z"),
        (tags::DETACHED_AT, "2026-01-01T00:01:00Z"),
    ] {
        l.tags.insert(k.into(), v.into());
    }
    l.status_ok = Some(true);
    g.members = vec![Member {
        id: o.id.clone(),
        state: MemberState::InService,
        healthy: true,
        protected_from_scale_in: false,
        weight: None,
    }];
    g.desired = 1;
    let instances: BTreeMap<String, Instance> = [(o.id.clone(), o.clone()), (l.id.clone(), l.clone())].into();
    // WHEN the rebalancer plans the group, with L's pool in cooldown
    let mut m = market();
    m.spot_prices.retain(|p, _| p.az == "us-east-1a");
    g.tags.insert(
        crate::records::cooldown_key(&l.pool()),
        NOW.plus_minutes(60).to_rfc3339(),
    );
    let plan = plan_group(
        &g,
        &instances,
        &m,
        &Policy::default(),
        &Default::default(),
        NOW.plus_minutes(2),
    );
    // THEN L is neither attached nor steering anything: O gets a fresh swap, elsewhere
    assert!(
        plan.actions
            .iter()
            .all(|a| a.instance.as_deref() != Some(l.id.as_str())
                && !matches!(a.kind, ActionKind::Attach { .. })),
        "{:#?}",
        plan.actions
    );
    let launch = plan
        .actions
        .iter()
        .find_map(|a| match &a.kind {
            ActionKind::Launch(spec) => Some(spec),
            _ => None,
        })
        .expect("a new swap for O");
    assert_eq!(launch.replaces, o.id);
    assert!(launch.candidates.iter().all(|c| c.pool != l.pool()));
}

#[test]
fn zero_cooldown_minutes_writes_no_cooldown_and_no_shelter() {
    let p = Policy {
        cooldown_minutes: 0,
        ..Policy::default()
    };
    let list = format!("i-aaaaaaaaaaaaaaaaa@{}", NOW.plus_minutes(-1).unix());
    let g = group(&[(tags::ENABLED, "true"), (tags::INTERRUPTIONS, &list)]);
    let (cooldown, list, shelter) = recorded(&record(&g, ID, 2, &p));
    assert_eq!((cooldown, shelter), (None, None));
    assert_eq!(list.split(' ').count(), 2);
}

#[test]
fn a_group_of_200_spot_instances_is_sheltered_at_10_percent() {
    // GIVEN a managed group of 200 spot instances at the default shelter-percent (10)
    let mut g = group(&[(tags::ENABLED, "true")]);
    let pool = Pool::new("m5.large", "us-east-1a");
    let policy = Policy::default();
    assert_eq!(policy.shelter_percent, 10);
    for n in 1..=20i64 {
        // WHEN its n-th interruption of the hour is recorded (and delivered twice)
        let id = format!("i-{n:017x}");
        let at = NOW.plus_secs(n * 90);
        let action = decide_records(&id, &g, &pool, 200, &policy, at);
        let ActionKind::RecordInterruption {
            interruptions,
            counts,
            sheltered_until,
            cooldown_until,
            ..
        } = &action.kind
        else {
            panic!("{action:?}")
        };
        // THEN every record fits one tag value (256 characters), whatever the group's size
        assert!(
            interruptions.len() <= 256 && counts.len() <= 256,
            "{interruptions} / {counts}"
        );
        // AND the group is sheltered exactly when 20 (10 % of 200) have come in the hour
        assert_eq!(sheltered_until.is_some(), n == 20, "after {n}: {counts}");
        if n == 20 {
            assert_eq!(action.reason, Reason::InterruptionBurst);
        }
        for (k, v) in crate::records::record_interruption_tags(
            &pool,
            *cooldown_until,
            interruptions,
            counts,
            *sheltered_until,
        ) {
            g.tags.insert(k, v);
        }
        // AND a duplicate delivery counts nothing more
        let again = decide_records(&id, &g, &pool, 200, &policy, at);
        let ActionKind::RecordInterruption { counts: dup, .. } = &again.kind else {
            panic!("{again:?}")
        };
        assert_eq!(dup, counts, "a duplicate was counted");
    }
}
