//! Launch → Attach → Retire, MaxSize, duplicates.

use super::*;

/// The actions of a plan that concern the swap of `i-od1`.
fn swap_steps(plan: &GroupPlan) -> Vec<(&'static str, Reason, Option<&str>)> {
    steps(plan)
        .into_iter()
        .filter(|(_, r, _)| *r != Reason::OnDemandAboveFloor && *r != Reason::AtRiskFloor)
        .collect()
}

#[test]
fn a_pending_launch_waits_for_launch() {
    // GIVEN our launch for i-od1 is still pending
    let plan = swap_at(Stage::Pending).plan();
    // THEN the swap waits, and no second launch starts for i-od1
    assert_eq!(
        swap_steps(&plan),
        vec![("wait", Reason::WaitingForLaunch, Some("i-l1"))]
    );
    assert!(!launched_for(&plan).contains(&"i-od1"));
}

#[test]
fn a_running_launch_without_status_checks_waits() {
    // GIVEN our launch runs but its status checks have not passed
    let plan = swap_at(Stage::Booting).plan();
    // THEN the swap waits for them
    assert_eq!(
        swap_steps(&plan),
        vec![("wait", Reason::WaitingForStatusChecks, Some("i-l1"))]
    );
}

#[test]
fn a_launch_that_never_passes_its_status_checks_ends_and_marks_its_pool() {
    // GIVEN our launch has run for 11 minutes without passing its status checks
    let launched = NOW.plus_minutes(-11).to_rfc3339();
    let plan = swap_at(Stage::Booting)
        .edit_instance("i-l1", |i| {
            i.tags.insert(tags::LAUNCHED_AT.to_string(), launched.clone());
        })
        .plan();
    // THEN its pool is marked first, then the launch is ended: the next swap goes elsewhere
    // instead of into the same pool every time the reaper ends it
    assert_eq!(
        swap_steps(&plan)[..2],
        [
            ("mark-pools", Reason::StatusChecksFailed, Some("i-l1")),
            ("terminate-launch", Reason::StatusChecksFailed, Some("i-l1")),
        ]
    );
    let ActionKind::MarkPools { pools, until } = &plan.actions[0].kind else {
        panic!("{:?}", plan.actions)
    };
    assert_eq!(pools, &vec![plan.actions[0].pool.clone().unwrap()]);
    assert!(*until > NOW.plus_minutes(30));
    // AND the next cycle, with the mark in place, offers that pool to no launch
    let marked = pools[0].clone();
    let next = Fleet::new()
        .on_demand("i-od1", A)
        .on_demand("i-od2", B)
        .desired(2)
        .tag(&no_capacity_key(&marked), &until.to_rfc3339())
        .plan();
    assert!(launches(&next)
        .iter()
        .all(|l| l.candidates.iter().all(|c| c.pool != marked)));
}

#[test]
fn a_ready_launch_is_attached() {
    // GIVEN our launch runs with both status checks passing, and MaxSize has room
    let plan = swap_at(Stage::Ready).plan();
    // THEN it is attached in place of i-od1, with no MaxSize change
    assert_eq!(
        swap_steps(&plan),
        vec![("attach", Reason::ReplacementReady, Some("i-l1"))]
    );
    assert!(kinds(&plan).contains(&&ActionKind::Attach {
        instance: "i-l1".into(),
        replaces: "i-od1".into(),
        batched: false,
    }));
}

#[test]
fn max_size_is_raised_first_when_the_attaches_would_not_fit() {
    // GIVEN two ready launches, desired 2 and MaxSize 3: 2 + 2 attaches > 3
    let fleet = Fleet::new()
        .on_demand("i-od1", A)
        .on_demand("i-od2", B)
        .launch("i-l1", "i-od1", Stage::Ready)
        .launch("i-l2", "i-od2", Stage::Ready)
        .desired(2)
        .max(3);
    // WHEN the rebalancer plans a cycle
    let plan = fleet.plan();
    // THEN MaxSize goes from 3 to 4 before both attaches
    assert_eq!(
        kinds(&plan),
        vec![
            &ActionKind::RaiseMax { from: 3, to: 4 },
            &ActionKind::Attach {
                instance: "i-l1".into(),
                replaces: "i-od1".into(),
                batched: false,
            },
            &ActionKind::Attach {
                instance: "i-l2".into(),
                replaces: "i-od2".into(),
                batched: false,
            },
        ]
    );
    assert_eq!(plan.actions[0].reason, Reason::MaxSizeAtDesired);

    // GIVEN instead desired == MaxSize == 2 with one ready launch
    let plan = swap_at(Stage::Ready).max(2).plan();
    // THEN MaxSize goes up by one, then the attach
    assert_eq!(
        swap_steps(&plan),
        vec![
            ("raise-max", Reason::MaxSizeAtDesired, None),
            ("attach", Reason::ReplacementReady, Some("i-l1")),
        ]
    );
    assert_eq!(plan.actions[0].kind, ActionKind::RaiseMax { from: 2, to: 3 });
}

#[test]
fn a_raise_keeps_the_recorded_original_max() {
    // GIVEN MaxSize already raised from 2 to 3 by an earlier swap, and desired 3 at MaxSize
    let fleet = Fleet::new()
        .on_demand("i-od1", A)
        .on_demand("i-od2", B)
        .spot("i-done", "m5a.large", C)
        .launch("i-l2", "i-od2", Stage::Ready)
        .desired(3)
        .max(3)
        .tag(tags::MAX_RAISED_FROM, "2");
    // WHEN another attach needs room
    let plan = fleet.plan();
    // THEN `from` is still the original 2, not the raised 3
    assert_eq!(plan.actions[0].kind, ActionKind::RaiseMax { from: 2, to: 4 });
}

#[test]
fn an_attached_launch_without_its_attach_tag_is_marked() {
    // GIVEN our launch is InService in the group but the attached-at tag was never written
    let plan = swap_at(Stage::Unmarked).plan();
    // THEN the tag is written (the grace period counts from it), and nothing is retired
    assert_eq!(
        swap_steps(&plan),
        vec![("mark-attached", Reason::AttachedAtMissing, Some("i-l1"))]
    );
}

#[test]
fn an_attached_launch_not_yet_in_service_waits() {
    // GIVEN our launch is attached but still Pending in the group
    let plan = swap_at(Stage::AttachedPending).plan();
    // THEN the swap waits for InService
    assert!(swap_steps(&plan).contains(&("wait", Reason::WaitingForInService, Some("i-l1"))));
    assert!(!kinds(&plan)
        .iter()
        .any(|k| matches!(k, ActionKind::Retire { .. })));
}

#[test]
fn the_original_is_retired_only_after_the_grace_period() {
    // GIVEN our launch attached and InService for less than the grace period
    let plan = swap_at(Stage::Attached {
        secs_ago: i64::from(GRACE_SECS) - 1,
    })
    .plan();
    // THEN the swap waits for the grace period
    assert_eq!(
        swap_steps(&plan),
        vec![("wait", Reason::WaitingForGracePeriod, Some("i-l1"))]
    );

    // GIVEN the grace period has just passed
    let plan = swap_at(Stage::Attached {
        secs_ago: i64::from(GRACE_SECS),
    })
    .plan();
    // THEN the original is retired, naming its InService replacement
    assert_eq!(
        swap_steps(&plan),
        vec![("retire", Reason::ReplacementInService, Some("i-od1"))]
    );
    assert!(kinds(&plan).contains(&&ActionKind::Retire {
        instance: "i-od1".into(),
        replacement: "i-l1".into()
    }));
}

#[test]
fn nothing_is_retired_while_the_group_is_below_capacity() {
    // GIVEN a swap past its grace period, but i-od2 has dropped out of service
    let fleet =
        swap_at(Stage::Attached { secs_ago: 3600 }).edit_member("i-od2", |m| m.state = MemberState::Pending);
    // WHEN the rebalancer plans a cycle
    let plan = fleet.plan();
    // THEN the swap waits: retiring now would take InService below desired
    assert!(swap_steps(&plan).contains(&("wait", Reason::GroupBelowCapacity, Some("i-l1"))));
    assert!(!kinds(&plan)
        .iter()
        .any(|k| matches!(k, ActionKind::Retire { .. })));
}

#[test]
fn a_launch_whose_original_left_before_the_attach_is_ended() {
    // GIVEN our ready launch, and its original was scaled in (gone, or leaving the group)
    let gone = swap_at(Stage::Ready).remove("i-od1").desired(1);
    let leaving = swap_at(Stage::Ready)
        .edit_member("i-od1", |m| m.state = MemberState::Leaving)
        .desired(1);
    for fleet in [gone, leaving] {
        // WHEN the rebalancer plans a cycle
        let plan = fleet.plan();
        // THEN the launch is not attached but ended
        assert_eq!(
            swap_steps(&plan),
            vec![("terminate-launch", Reason::ReplacedInstanceGone, Some("i-l1"))]
        );
        assert!(kinds(&plan).contains(&&ActionKind::TerminateLaunch {
            instance: "i-l1".into()
        }));
    }
}

#[test]
fn a_swap_whose_original_left_after_the_attach_is_done() {
    // GIVEN our launch attached and InService, and the original since left the group
    let fleet = swap_at(Stage::Attached { secs_ago: 3600 })
        .remove("i-od1")
        .desired(2);
    // WHEN the rebalancer plans a cycle
    let plan = fleet.plan();
    // THEN nothing is done to the launch: it is a regular member now
    assert!(
        plan.actions
            .iter()
            .all(|a| a.instance.as_deref() != Some("i-l1") && a.instance.as_deref() != Some("i-od1")),
        "{:?}",
        plan.actions
    );
}

#[test]
fn a_stopped_launch_is_ended() {
    // GIVEN our launch stopped before it was attached
    let plan = swap_at(Stage::Stopped).tag(tags::REPLACE_PER_CYCLE, "5").plan();
    // THEN it is ended as a failed launch
    assert_eq!(
        swap_steps(&plan),
        vec![("terminate-launch", Reason::LaunchFailed, Some("i-l1"))]
    );
    // AND no new launch replaces i-od1 while the failed one is still alive
    assert_eq!(launched_for(&plan), vec!["i-od2"]);
}

#[test]
fn of_two_launches_for_one_original_the_lowest_id_is_kept() {
    // GIVEN two ready launches replacing i-od1 (a retried CreateFleet), added in either order
    let ab = swap_at(Stage::Ready).launch("i-l2", "i-od1", Stage::Ready);
    let ba = Fleet::new()
        .on_demand("i-od2", B)
        .on_demand("i-od1", A)
        .launch("i-l2", "i-od1", Stage::Ready)
        .launch("i-l1", "i-od1", Stage::Ready)
        .desired(2);
    for fleet in [ab, ba] {
        // WHEN the rebalancer plans a cycle
        let plan = fleet.plan();
        // THEN i-l1 is attached and i-l2 is ended as a duplicate
        assert_eq!(
            swap_steps(&plan),
            vec![
                ("terminate-launch", Reason::DuplicateLaunch, Some("i-l2")),
                ("attach", Reason::ReplacementReady, Some("i-l1")),
            ]
        );
        assert_eq!(
            plan.actions
                .iter()
                .filter(|a| matches!(a.kind, ActionKind::Attach { .. }))
                .count(),
            1
        );
    }
}

#[test]
fn an_attached_duplicate_is_retired_only_once_the_kept_one_is_in_service_and_healthy() {
    // GIVEN two launches for i-od1 both attached (two concurrent cycles), past the grace
    //   period; the kept one (lowest id) is InService but unhealthy
    let sick = Fleet::new()
        .on_demand("i-od1", A)
        .on_demand("i-od2", B)
        .launch("i-l1", "i-od1", Stage::AttachedUnhealthy { secs_ago: 3600 })
        .launch("i-l2", "i-od1", Stage::Attached { secs_ago: 3600 })
        .desired(4);
    // WHEN the rebalancer plans a cycle
    let plan = sick.plan();
    // THEN the healthy duplicate is not retired in favour of the sick one, nor the original
    assert!(
        !kinds(&plan)
            .iter()
            .any(|k| matches!(k, ActionKind::Retire { .. })),
        "{:?}",
        plan.actions
    );
    assert!(steps(&plan).contains(&("wait", Reason::DuplicateLaunch, Some("i-l2"))));

    // GIVEN the kept one is healthy too
    let plan = sick.edit_member("i-l1", |m| m.healthy = true).plan();
    // THEN the duplicate is retired in favour of the kept one, and the original too
    assert!(kinds(&plan).contains(&&ActionKind::Retire {
        instance: "i-l2".into(),
        replacement: "i-l1".into()
    }));
    assert!(kinds(&plan).contains(&&ActionKind::Retire {
        instance: "i-od1".into(),
        replacement: "i-l1".into()
    }));
}

#[test]
fn max_size_belongs_to_its_owner() {
    // GIVEN MaxSize raised from 2 to 3 for a swap now done
    let raised = |max: u32| {
        Fleet::new()
            .on_demand("i-od2", B)
            .spot("i-l1", "m5a.large", A)
            .desired(2)
            .max(max)
            .tag(tags::MAX_RAISED_FROM, "2")
            .tag(tags::MAX_RAISED_TO, "3")
            .tag(tags::ON_DEMAND_BASE, "1")
    };
    // WHEN MaxSize is still what spotswap raised it to
    // THEN it is restored
    assert_eq!(raised(3).plan().actions[0].kind, ActionKind::RestoreMax { to: 2 });
    // WHEN its owner set it to 10 meanwhile (a user, CloudFormation, Terraform)
    let plan = raised(10).plan();
    // THEN their value stays: the record is dropped, MaxSize is not written
    assert_eq!(
        steps(&plan)[0],
        ("clear-records", Reason::MaxSizeChangedByOwner, None)
    );
    assert_eq!(
        plan.actions[0].kind,
        ActionKind::ClearRecords {
            keys: vec![tags::MAX_RAISED_FROM.to_string(), tags::MAX_RAISED_TO.to_string()]
        }
    );
    assert!(!kinds(&plan)
        .iter()
        .any(|k| matches!(k, ActionKind::RestoreMax { .. } | ActionKind::RaiseMax { .. })));

    // GIVEN a swap ready to attach while the owner's MaxSize (2) sits below our recorded
    // original (3)
    let raise_of = |fleet: Fleet| {
        kinds(&fleet.plan())
            .into_iter()
            .find_map(|k| match k {
                ActionKind::RaiseMax { from, to } => Some((*from, *to)),
                _ => None,
            })
            .expect("a raise")
    };
    let owners = swap_at(Stage::Ready)
        .max(2)
        .tag(tags::MAX_RAISED_FROM, "3")
        .tag(tags::MAX_RAISED_TO, "4");
    // THEN the raise records the owner's value as the one to come back to
    assert_eq!(raise_of(owners).0, 2);

    // GIVEN instead a stop between our record of a further raise (to 4) and the raise itself:
    // MaxSize (2) is inside what we could have left it at (1 to 4)
    let stopped = swap_at(Stage::Ready)
        .max(2)
        .tag(tags::MAX_RAISED_FROM, "1")
        .tag(tags::MAX_RAISED_TO, "4");
    // THEN it is still ours: the original (1) is kept, and restored in the end (chaos seed 59)
    assert_eq!(raise_of(stopped).0, 1);
}

#[test]
fn max_size_is_restored_only_when_nothing_is_in_flight() {
    // GIVEN MaxSize raised from 2 to 3, the swap done (i-od1 retired), desired back at 2
    let done = Fleet::new()
        .on_demand("i-od2", B)
        .spot("i-l1", "m5a.large", A)
        .desired(2)
        .max(3)
        .tag(tags::MAX_RAISED_FROM, "2")
        .tag(tags::ON_DEMAND_BASE, "1");
    // WHEN the rebalancer plans a cycle
    let plan = done.plan();
    // THEN MaxSize goes back to 2
    assert_eq!(
        steps(&plan),
        vec![
            ("restore-max", Reason::NoSwapInFlight, None),
            ("wait", Reason::AtRiskFloor, None)
        ]
    );
    assert_eq!(plan.actions[0].kind, ActionKind::RestoreMax { to: 2 });

    // GIVEN a swap still in flight
    let plan = swap_at(Stage::Attached { secs_ago: 10 })
        .max(3)
        .tag(tags::MAX_RAISED_FROM, "2")
        .plan();
    // THEN MaxSize stays raised
    assert!(!kinds(&plan)
        .iter()
        .any(|k| matches!(k, ActionKind::RestoreMax { .. })));

    // GIVEN nothing in flight but desired (3) above the recorded original (2)
    let plan = done.clone().spot("i-s2", "m6i.large", C).desired(3).plan();
    // THEN MaxSize stays, and the plan says why
    assert!(!kinds(&plan)
        .iter()
        .any(|k| matches!(k, ActionKind::RestoreMax { .. })));
    assert!(steps(&plan).contains(&("wait", Reason::DesiredAboveOriginalMax, None)));
}

#[test]
fn a_swap_in_flight_is_never_started_twice() {
    for stage in [
        Stage::Pending,
        Stage::Booting,
        Stage::Ready,
        Stage::AttachedPending,
        Stage::Unmarked,
        Stage::Attached { secs_ago: 10 },
        Stage::Attached { secs_ago: 3600 },
    ] {
        // GIVEN i-od1 has our launch at `stage`, and room for 10 swaps with a floor of 0
        let plan = swap_at(stage).tag(tags::REPLACE_PER_CYCLE, "10").plan();
        // WHEN the rebalancer plans a cycle
        // THEN no second launch starts for i-od1; i-od2 may start
        assert!(
            !launched_for(&plan).contains(&"i-od1"),
            "{stage:?}: {:?}",
            plan.actions
        );
    }
}
