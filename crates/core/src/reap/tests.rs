//! Tests of the reaper.

use super::*;
use crate::model::{Lifecycle, Pool};
use crate::records::{cooldown_key, no_capacity_key};
use crate::testkit::{self, Fleet};
use crate::Mode;
use proptest::prelude::*;

use crate::testkit::NOW;
const AGE: u32 = 20;

/// Our spot m5.large in us-east-1a, launched by EC2 10 hours ago, with `tags`.
fn instance(id: &str, tags: &[(&str, String)]) -> Instance {
    Instance {
        launch_time: NOW.plus_minutes(-600),
        tags: tags.iter().map(|(k, v)| (k.to_string(), v.clone())).collect(),
        ..testkit::instance(id, "m5.large", "us-east-1a", Lifecycle::Spot)
    }
}

/// Our launch for `group` replacing `replaces`, `minutes` ago.
fn launch(id: &str, group: &str, replaces: &str, minutes: i64) -> Instance {
    instance(
        id,
        &[
            (tags::GROUP, group.to_string()),
            (tags::REPLACES, replaces.to_string()),
            (tags::LAUNCHED_AT, NOW.plus_minutes(-minutes).to_rfc3339()),
        ],
    )
}

fn detached(id: &str, minutes: i64, state: InstanceState) -> Instance {
    Instance {
        state,
        ..instance(
            id,
            &[
                (tags::DETACHED_AT, NOW.plus_minutes(-minutes).to_rfc3339()),
                (tags::DETACHED_FROM, "web".to_string()),
            ],
        )
    }
}

/// A managed group with `members` InService, desired = their count.
fn group(name: &str, members: &[&str], max: u32, tags: &[(&str, String)]) -> GroupSnapshot {
    let mut fleet = Fleet::new()
        .named(name)
        .max(max)
        .desired(members.len() as u32)
        .grace(0);
    for m in members {
        fleet = fleet.listed(m);
    }
    for (k, v) in tags {
        fleet = fleet.tag(k, v);
    }
    fleet.group
}

fn unmanaged(mut g: GroupSnapshot) -> GroupSnapshot {
    g.tags.remove(tags::ENABLED);
    g
}

fn by_id(list: Vec<Instance>) -> BTreeMap<String, Instance> {
    list.into_iter().map(|i| (i.id.clone(), i)).collect()
}

fn reap(groups: &[GroupSnapshot], instances: Vec<Instance>) -> ReapPlan {
    plan_reap(groups, &by_id(instances), &Settings::default(), NOW, AGE)
}

/// (action name, reason, instance) of every decision.
fn decisions(plan: &ReapPlan) -> Vec<(&'static str, Reason, Option<String>)> {
    plan.actions
        .iter()
        .map(|a| (a.kind.name(), a.reason, a.instance.clone()))
        .collect()
}

fn terminated(plan: &ReapPlan) -> Vec<&str> {
    plan.terminations().collect()
}

#[test]
fn orphan_past_the_age_is_terminated_and_a_young_one_waits() {
    // GIVEN two launches of ours whose original left the group: one 30 minutes old, one 5
    let groups = [group("web", &["i-od"], 1, &[])];
    let instances = vec![
        launch("i-old", "web", "i-gone", 30),
        launch("i-young", "web", "i-gone2", 5),
    ];
    // WHEN the reaper plans with a 20-minute orphan age
    let plan = reap(&groups, instances);
    // THEN the old one is terminated as Orphaned and the young one is left to a swap
    assert_eq!(
        decisions(&plan),
        vec![
            ("terminate", Reason::Orphaned, Some("i-old".to_string())),
            ("wait", Reason::WaitingForOrphanAge, Some("i-young".to_string())),
        ]
    );
    assert_eq!(plan.actions[0].group, "web");
    assert_eq!(plan.actions[0].pool, Some(Pool::new("m5.large", "us-east-1a")));
}

#[test]
fn a_live_swap_launch_younger_than_the_age_is_never_reaped() {
    // GIVEN a launch 19 minutes old whose original is still InService (a swap in flight)
    let groups = [group("web", &["i-od"], 1, &[])];
    // WHEN the reaper plans
    let plan = reap(&groups, vec![launch("i-new", "web", "i-od", 19)]);
    // THEN nothing is terminated
    assert!(terminated(&plan).is_empty());
    // AND at exactly the orphan age it is an orphan: the age is the bound on Launch → Attach
    let plan = reap(&groups, vec![launch("i-new", "web", "i-od", 20)]);
    assert_eq!(terminated(&plan), vec!["i-new"]);
}

#[test]
fn without_launched_at_the_launch_time_counts() {
    // GIVEN our instance without spotswap:launched-at, launched by EC2 10 hours ago
    let inst = instance("i-x", &[(tags::GROUP, "web".to_string())]);
    // WHEN the reaper plans
    let plan = reap(&[], vec![inst.clone()]);
    // THEN it is an orphan
    assert_eq!(terminated(&plan), vec!["i-x"]);
    // AND one launched a minute ago is not
    let fresh = Instance {
        launch_time: NOW.plus_minutes(-1),
        ..inst
    };
    assert!(terminated(&reap(&[], vec![fresh])).is_empty());
}

#[test]
fn members_and_untagged_instances_are_never_touched() {
    // GIVEN old tagged instances that are members of a managed and of an unmanaged group,
    // a detached-at instance re-attached to a group, and an old untagged instance
    let groups = [
        group("web", &["i-ours-in-web"], 1, &[]),
        unmanaged(group("batch", &["i-ours-in-batch", "i-det-in-batch"], 2, &[])),
    ];
    let instances = vec![
        launch("i-ours-in-web", "web", "i-gone", 600),
        launch("i-ours-in-batch", "web", "i-gone2", 600),
        detached("i-det-in-batch", 600, InstanceState::Running),
        instance("i-untagged", &[("Name", "web".to_string())]),
    ];
    // WHEN the reaper plans
    let plan = reap(&groups, instances);
    // THEN it decides nothing at all about them
    assert!(plan.actions.is_empty(), "{:?}", plan.actions);
}

#[test]
fn detached_instances_still_alive_after_ten_minutes_are_terminated() {
    // GIVEN detached interrupted instances: stopped 15 minutes ago, running 11 minutes ago,
    // detached 5 minutes ago, and one already shutting down
    let instances = vec![
        detached("i-stopped", 15, InstanceState::Stopped),
        detached("i-running", 11, InstanceState::Running),
        detached("i-fresh", 5, InstanceState::Running),
        detached("i-gone", 15, InstanceState::Gone),
    ];
    // WHEN the reaper plans
    let plan = reap(&[], instances);
    // THEN the two past 10 minutes are terminated, the fresh one waits, the gone one is left
    assert_eq!(
        decisions(&plan),
        vec![
            (
                "wait",
                Reason::WaitingForDetachedGrace,
                Some("i-fresh".to_string())
            ),
            (
                "terminate",
                Reason::DetachedStillAlive,
                Some("i-running".to_string())
            ),
            (
                "terminate",
                Reason::DetachedStillAlive,
                Some("i-stopped".to_string())
            ),
        ]
    );
    assert!(plan.actions.iter().all(|a| a.group == "web"));
}

#[test]
fn the_detach_time_governs_our_own_interrupted_launch() {
    // GIVEN a spot instance we launched 10 hours ago, detached on interruption 2 minutes ago
    let mut inst = launch("i-ours", "web", "i-od", 600);
    inst.tags
        .insert(tags::DETACHED_AT.to_string(), NOW.plus_minutes(-2).to_rfc3339());
    // WHEN the reaper plans
    let plan = reap(&[], vec![inst.clone()]);
    // THEN it gets its 10 minutes, not the orphan rule
    assert_eq!(
        decisions(&plan),
        vec![(
            "wait",
            Reason::WaitingForDetachedGrace,
            Some("i-ours".to_string())
        )]
    );
    // AND a detach time that cannot be read is not acted on
    inst.tags
        .insert(tags::DETACHED_AT.to_string(), "yesterday".to_string());
    assert!(terminated(&reap(&[], vec![inst])).is_empty());
}

#[test]
fn max_size_is_restored_when_no_swap_is_in_flight() {
    // GIVEN a group left at MaxSize 2 with spotswap:max-raised-from=1 and no launch of ours
    let groups = [group(
        "web",
        &["i-spot"],
        2,
        &[(tags::MAX_RAISED_FROM, "1".to_string())],
    )];
    // WHEN the reaper plans
    let plan = reap(&groups, vec![]);
    // THEN MaxSize goes back to 1 (the executor also removes the tag)
    assert_eq!(plan.actions.len(), 1);
    assert_eq!(plan.actions[0].kind, ActionKind::RestoreMax { to: 1 });
    assert_eq!(plan.actions[0].reason, Reason::NoSwapInFlight);
}

#[test]
fn max_size_stays_raised_while_a_swap_is_in_flight() {
    // GIVEN a raised group whose launch was attached and waits for the original's retire,
    // and another whose young unattached launch waits for the next cycle's attach
    let attached = Instance {
        tags: {
            let mut t = launch("i-new", "web", "i-od", 3).tags;
            t.insert(tags::ATTACHED_AT.to_string(), NOW.plus_minutes(-1).to_rfc3339());
            t
        },
        ..launch("i-new", "web", "i-od", 3)
    };
    let raised = [(tags::MAX_RAISED_FROM, "1".to_string())];
    let groups = [
        group("web", &["i-od", "i-new"], 2, &raised),
        group("api", &["i-od2"], 2, &raised),
    ];
    // WHEN the reaper plans
    let plan = reap(&groups, vec![attached, launch("i-new2", "api", "i-od2", 3)]);
    // THEN neither MaxSize is restored, and each wait names the swap
    assert_eq!(
        decisions(&plan),
        vec![
            ("wait", Reason::WaitingForOrphanAge, Some("i-new2".to_string())),
            ("wait", Reason::SwapInFlight, Some("i-od".to_string())),
            ("wait", Reason::SwapInFlight, Some("i-od2".to_string())),
        ]
    );
}

#[test]
fn a_reaped_launch_does_not_hold_max_size_up() {
    // GIVEN a raised group whose swap launched 30 minutes ago and never got attached
    let groups = [group(
        "web",
        &["i-od"],
        2,
        &[(tags::MAX_RAISED_FROM, "1".to_string())],
    )];
    // WHEN the reaper plans
    let plan = reap(&groups, vec![launch("i-stale", "web", "i-od", 30)])
        .actions
        .into_iter()
        .map(|a| a.kind)
        .collect::<Vec<_>>();
    // THEN in one pass the launch is terminated and then MaxSize restored
    assert_eq!(
        plan,
        vec![
            ActionKind::Terminate {
                instance: "i-stale".to_string()
            },
            ActionKind::RestoreMax { to: 1 },
        ]
    );
}

#[test]
fn max_size_waits_while_desired_is_above_the_original() {
    // GIVEN a group scaled out to 3 while MaxSize was raised from 2
    let groups = [group(
        "web",
        &["a", "b", "c"],
        3,
        &[(tags::MAX_RAISED_FROM, "2".to_string())],
    )];
    // WHEN the reaper plans
    let plan = reap(&groups, vec![]);
    // THEN it waits, rather than cut the group below its desired capacity
    assert_eq!(
        decisions(&plan),
        vec![("wait", Reason::DesiredAboveOriginalMax, None)]
    );
    // AND an unreadable record is not acted on
    let bad = [group(
        "web",
        &["a"],
        3,
        &[(tags::MAX_RAISED_FROM, "lots".to_string())],
    )];
    assert_eq!(
        decisions(&reap(&bad, vec![])),
        vec![("wait", Reason::InvalidConfig, None)]
    );
}

#[test]
fn expired_records_are_cleared_and_live_ones_kept() {
    // GIVEN a group with an expired cooldown, an expired no-capacity mark, an expired
    // shelter, a live cooldown and an unreadable record
    let a = Pool::new("m5.large", "us-east-1a");
    let b = Pool::new("c5.large", "us-east-1b");
    let past = NOW.plus_minutes(-1).to_rfc3339();
    let tags_ = [
        (tags::SHELTERED_UNTIL, past.clone()),
        ("spotswap:cooldown:junk", "soon".to_string()),
    ];
    let mut g = group("web", &["i-1"], 1, &tags_);
    g.tags.insert(cooldown_key(&a), past.clone());
    g.tags.insert(no_capacity_key(&a), past);
    g.tags.insert(cooldown_key(&b), NOW.plus_minutes(30).to_rfc3339());
    // WHEN the reaper plans
    let plan = reap(&[g], vec![]);
    // THEN one action clears exactly the expired and unreadable ones
    let mut keys = match &plan.actions[..] {
        [Action {
            kind: ActionKind::ClearRecords { keys },
            reason: Reason::RecordExpired,
            ..
        }] => keys.clone(),
        other => panic!("unexpected plan {other:?}"),
    };
    keys.sort();
    assert_eq!(
        keys,
        vec![
            "spotswap:cooldown:junk".to_string(),
            cooldown_key(&a),
            no_capacity_key(&a),
            tags::SHELTERED_UNTIL.to_string(),
        ]
    );
}

#[test]
fn groups_not_managed_or_misconfigured_get_no_group_action() {
    // GIVEN stale records on an unmanaged group, on a group with a bad tag, and on a group
    // being deleted
    let stale = [
        (tags::MAX_RAISED_FROM, "1".to_string()),
        (tags::SHELTERED_UNTIL, NOW.plus_minutes(-5).to_rfc3339()),
    ];
    let mut bad = group("bad", &["b"], 2, &stale);
    bad.tags
        .insert(tags::ON_DEMAND_PERCENT.to_string(), "150".to_string());
    let mut deleting = group("deleting", &["c"], 2, &stale);
    deleting.status = Some("Delete in progress".to_string());
    let groups = [unmanaged(group("mine-not", &["a"], 2, &stale)), bad, deleting];
    // WHEN the reaper plans
    let plan = reap(&groups, vec![]);
    // THEN no action, and each group is listed as skipped with its reason
    assert!(plan.actions.is_empty());
    let reasons: Vec<_> = plan
        .skipped
        .iter()
        .map(|s| (s.group.as_str(), s.reason))
        .collect();
    assert_eq!(
        reasons,
        vec![
            ("mine-not", Reason::NotManaged),
            ("bad", Reason::InvalidConfig),
            ("deleting", Reason::GroupUpdating),
        ]
    );
    assert!(plan.skipped[1].detail.as_deref().unwrap().contains("150"));
    // AND in opt-out mode the untagged group is managed, so its records are cleaned
    let settings = Settings {
        mode: Mode::OptOut,
        ..Settings::default()
    };
    let plan = plan_reap(&groups[..1], &BTreeMap::new(), &settings, NOW, AGE);
    assert_eq!(plan.actions.len(), 2);
}

#[test]
fn groups_without_our_records_are_not_mentioned() {
    // GIVEN a managed group with only a live cooldown, and one with no records
    let mut g = group("web", &["i-1"], 1, &[]);
    g.tags.insert(
        cooldown_key(&Pool::new("m5.large", "us-east-1a")),
        NOW.plus_minutes(5).to_rfc3339(),
    );
    // WHEN the reaper plans
    let plan = reap(&[g, unmanaged(group("other", &["i-2"], 1, &[]))], vec![]);
    // THEN it decides nothing and skips nothing
    assert_eq!(plan, ReapPlan::default());
}

fn arb_instance() -> impl Strategy<Value = (Instance, bool)> {
    (
        0u8..4,
        0i64..60,
        prop_oneof![
            Just(InstanceState::Pending),
            Just(InstanceState::Running),
            Just(InstanceState::Stopped),
            Just(InstanceState::Gone)
        ],
        any::<bool>(),
    )
        .prop_map(|(kind, minutes, state, is_member)| {
            let ago = NOW.plus_minutes(-minutes).to_rfc3339();
            let tags: Vec<(&str, String)> = match kind {
                0 => vec![("Name", "web".to_string())],
                1 => vec![(tags::GROUP, "web".to_string()), (tags::LAUNCHED_AT, ago)],
                2 => vec![(tags::DETACHED_AT, ago)],
                _ => vec![(tags::GROUP, "web".to_string()), (tags::DETACHED_AT, ago)],
            };
            (
                Instance {
                    state,
                    ..instance("i", &tags)
                },
                is_member,
            )
        })
}

proptest! {
    #[test]
    fn only_our_instances_outside_groups_are_ever_terminated(
        list in proptest::collection::vec(arb_instance(), 0..12),
    ) {
        // GIVEN any mix of tagged, untagged, member and non-member instances
        let mut instances = BTreeMap::new();
        let mut members = Vec::new();
        for (n, (mut inst, is_member)) in list.into_iter().enumerate() {
            inst.id = format!("i-{n:02}");
            if is_member {
                members.push(inst.id.clone());
            }
            instances.insert(inst.id.clone(), inst);
        }
        let ids: Vec<&str> = members.iter().map(String::as_str).collect();
        let groups = [group("web", &ids, 20, &[])];
        // WHEN the reaper plans
        let plan = plan_reap(&groups, &instances, &Settings::default(), NOW, AGE);
        // THEN every termination is of a live non-member carrying our tags, past its age
        for id in plan.terminations() {
            let i = &instances[id];
            prop_assert!(!members.contains(&i.id));
            prop_assert!(i.is_alive());
            match i.tag(tags::DETACHED_AT).and_then(Timestamp::parse_rfc3339) {
                Some(at) => prop_assert!(NOW.secs_since(at) > DETACHED_GRACE_MINUTES * 60),
                None => {
                    prop_assert!(i.launched_for().is_some());
                    prop_assert!(NOW.secs_since(i.launched_at()) >= i64::from(AGE) * 60);
                }
            }
        }
        // AND the plan is a function of its input
        prop_assert_eq!(plan.clone(), plan_reap(&groups, &instances, &Settings::default(), NOW, AGE));
    }
}

#[test]
fn the_restore_waits_while_an_orphan_of_its_group_is_left() {
    // GIVEN a pass that terminates orphans of web and api, then restores both MaxSizes
    let groups = [
        group("web", &["i-od"], 2, &[(tags::MAX_RAISED_FROM, "1".to_string())]),
        group("api", &["i-od2"], 2, &[(tags::MAX_RAISED_FROM, "1".to_string())]),
    ];
    let plan = reap(
        &groups,
        vec![
            launch("i-web", "web", "i-gone", 30),
            launch("i-api", "api", "i-gone2", 30),
        ],
    );
    let mut gate = ReapGate::default();
    // WHEN web's terminate fails and api's succeeds
    let mut blocked = Vec::new();
    for action in &plan.actions {
        let verdict = gate.blocks(action);
        blocked.push((action.kind.name(), action.group.as_str(), verdict));
        if verdict.is_none() {
            gate.note(action, action.group == "api");
        }
    }
    // THEN only web's restore is held back, as an earlier step that failed
    assert_eq!(
        blocked,
        vec![
            ("terminate", "api", None),
            ("terminate", "web", None),
            ("restore-max", "web", Some(Reason::EarlierStepFailed)),
            ("restore-max", "api", None),
        ]
    );
}

#[test]
fn only_an_orphan_left_holds_the_restore_back() {
    let restore = Action::new(ActionKind::RestoreMax { to: 1 }, Reason::NoSwapInFlight, "web");
    let terminate = |reason| {
        Action::new(
            ActionKind::Terminate {
                instance: "i-x".to_string(),
            },
            reason,
            "web",
        )
    };
    // GIVEN a detached instance whose terminate failed, and an orphan terminated
    let mut gate = ReapGate::default();
    gate.note(&terminate(Reason::DetachedStillAlive), false);
    gate.note(&terminate(Reason::Orphaned), true);
    // THEN the restore may run: neither leaves one of the group's launches behind
    assert_eq!(gate.blocks(&restore), None);
    // AND an orphan not terminated holds it back, but nothing else of the group
    gate.note(&terminate(Reason::Orphaned), false);
    assert_eq!(gate.blocks(&restore), Some(Reason::EarlierStepFailed));
    assert_eq!(gate.blocks(&terminate(Reason::Orphaned)), None);
    let other = Action::new(ActionKind::RestoreMax { to: 1 }, Reason::NoSwapInFlight, "api");
    assert_eq!(gate.blocks(&other), None);
}
