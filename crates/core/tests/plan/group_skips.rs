//! Groups passed over, and why.

use super::*;

#[test]
fn unsupported_or_busy_groups_are_skipped_without_mutations() {
    let cases: Vec<(Fleet, Reason, Option<&str>)> = vec![
        (
            on_demand_fleet(2)
                .with_group(|g| g.launch_source = LaunchSource::LaunchConfiguration("web-lc".into())),
            Reason::LaunchConfigurationNotSupported,
            Some("web-lc"),
        ),
        (
            on_demand_fleet(2).with_group(|g| g.launch_source = LaunchSource::MixedInstances),
            Reason::MixedInstancesPolicyNotSupported,
            None,
        ),
        (
            on_demand_fleet(2).with_group(|g| g.status = Some("Delete in progress".into())),
            Reason::GroupUpdating,
            Some("Delete in progress"),
        ),
        (
            on_demand_fleet(2).with_group(|g| g.instance_refresh_in_progress = Some(true)),
            Reason::InstanceRefreshInProgress,
            None,
        ),
    ];
    for (fleet, reason, detail) in cases {
        // GIVEN a group AWS or its owner is busy with, or that we do not support, with a
        //   ready launch of ours that could otherwise be attached
        let fleet = fleet.launch("i-l1", "i-od00", Stage::Ready);
        // WHEN the rebalancer plans a cycle
        let plan = fleet.plan();
        // THEN the group is skipped with the reason, and gets no action at all
        assert_eq!(skip_reason(&plan), Some(reason));
        assert!(plan.actions.is_empty(), "{reason}: {:?}", plan.actions);
        if let Some(detail) = detail {
            assert!(plan
                .skip
                .as_ref()
                .unwrap()
                .detail
                .as_deref()
                .unwrap()
                .contains(detail));
        }
    }
}

#[test]
fn a_sheltered_group_advances_swaps_in_flight_but_starts_none() {
    // GIVEN a group sheltered for another hour, with one ready launch and one more on-demand
    let fleet = swap_at(Stage::Ready)
        .tag(tags::SHELTERED_UNTIL, "2026-01-01T13:00:00Z")
        .tag(tags::REPLACE_PER_CYCLE, "5");
    // WHEN the rebalancer plans a cycle
    let plan = fleet.plan();
    // THEN the launch in flight is attached, no new swap starts, and the skip says Sheltered
    assert_eq!(
        steps(&plan),
        vec![("attach", Reason::ReplacementReady, Some("i-l1"))]
    );
    assert_eq!(skip_reason(&plan), Some(Reason::Sheltered));

    // GIVEN the shelter has expired
    let plan = fleet.tag(tags::SHELTERED_UNTIL, "2026-01-01T11:59:59Z").plan();
    // THEN swaps start again
    assert_eq!(launched_for(&plan), vec!["i-od2"]);
    assert_eq!(plan.skip, None);
}

#[test]
fn a_bad_tag_skips_the_group_naming_the_tag_and_value() {
    for (tag, value) in [
        (tags::ON_DEMAND_PERCENT, "abc"),
        (tags::ON_DEMAND_PERCENT, "150"),
        (tags::ON_DEMAND_BASE, "-1"),
        (tags::REPLACE_PER_CYCLE, "lots"),
        (tags::ALLOWED_TYPES, "m5.*,"),
        (tags::SCHEDULE, "Mon-Fri 08:00-18:00"),
        (tags::SCHEDULE, "Mon-Fri 08:00-18:00 Mars/Olympus"),
        (tags::PAUSED_UNTIL, "next week"),
        (tags::ENABLED, "yes"),
    ] {
        // GIVEN a group with a bad value, a swap in flight ready to attach, and an on-demand
        // instance above the floor that could otherwise start a swap
        let fleet = swap_at(Stage::Ready).tag(tag, value);
        // WHEN the rebalancer plans a cycle
        let plan = fleet.plan();
        // THEN it is skipped as InvalidConfig, the detail names the tag and the value
        assert_eq!(skip_reason(&plan), Some(Reason::InvalidConfig), "{tag}={value}");
        let detail = plan.skip.as_ref().unwrap().detail.clone().unwrap();
        assert!(
            detail.contains(tag) && detail.contains(value),
            "{tag}={value}: {detail}"
        );
        // AND no new swap starts
        assert!(launches(&plan).is_empty(), "{tag}={value}: {:?}", plan.actions);
        if tag == tags::ENABLED {
            // AND a group that may not be ours at all is not touched
            assert!(plan.actions.is_empty(), "{tag}={value}: {:?}", plan.actions);
        } else {
            // AND the swap already launched still advances: a typo must not leave desired and
            // MaxSize raised (safety, not configuration)
            assert!(
                kinds(&plan)
                    .iter()
                    .any(|k| matches!(k, ActionKind::Attach { .. })),
                "{tag}={value}: {:?}",
                plan.actions
            );
        }
    }
}

#[test]
fn unmanaged_groups_get_no_action_in_either_mode() {
    // GIVEN opt-out mode and a group tagged spotswap:enabled=false
    let opted_out = swap_at(Stage::Ready)
        .mode(Mode::OptOut)
        .tag(tags::ENABLED, "false");
    // AND opt-in mode and a group with no enabled tag
    let untagged = swap_at(Stage::Ready).untag(tags::ENABLED);
    for fleet in [opted_out, untagged] {
        // WHEN the rebalancer plans a cycle
        let plan = fleet.plan();
        // THEN it is not managed and gets no action
        assert_eq!(skip_reason(&plan), Some(Reason::NotManaged));
        assert!(plan.actions.is_empty());
    }
    // AND in opt-out mode an untagged group is managed
    let plan = swap_at(Stage::Ready)
        .mode(Mode::OptOut)
        .untag(tags::ENABLED)
        .plan();
    assert_eq!(plan.skip, None);
    assert!(!plan.actions.is_empty());
}

#[test]
fn suspended_processes_hold_the_steps_that_need_them() {
    let suspend = |fleet: Fleet, processes: &[&str]| {
        fleet.with_group(|g| g.suspended_processes = processes.iter().map(|p| p.to_string()).collect())
    };
    // GIVEN on-demand instances above the floor, and Terminate suspended by the group's owner
    let plan = suspend(Fleet::new().on_demand("i-od1", A).desired(1), &["Terminate"]).plan();
    // THEN no swap starts (it could never retire its original), and the skip names the process
    assert_eq!(skip_reason(&plan), Some(Reason::ProcessesSuspended));
    assert!(plan
        .skip
        .as_ref()
        .unwrap()
        .detail
        .as_deref()
        .unwrap()
        .contains("Terminate"));
    assert!(launches(&plan).is_empty());

    // GIVEN a launch ready to attach while Launch is suspended
    let plan = suspend(swap_at(Stage::Ready), &["Launch"]).plan();
    // THEN the attach waits, and MaxSize is not raised for it
    assert!(plan
        .actions
        .iter()
        .any(|a| a.kind == ActionKind::Wait && a.reason == Reason::ProcessesSuspended));
    assert!(!kinds(&plan)
        .iter()
        .any(|k| matches!(k, ActionKind::Attach { .. } | ActionKind::RaiseMax { .. })));

    // GIVEN a replacement InService past its grace while Terminate is suspended
    let plan = suspend(swap_at(Stage::Attached { secs_ago: 3600 }), &["Terminate"]).plan();
    // THEN the original is not retired
    assert!(!kinds(&plan)
        .iter()
        .any(|k| matches!(k, ActionKind::Retire { .. })));
    assert!(plan
        .actions
        .iter()
        .any(|a| a.reason == Reason::ProcessesSuspended));

    // AND a process no step needs changes nothing
    let plan = suspend(swap_at(Stage::Ready), &["AZRebalance", "ScheduledActions"]).plan();
    assert!(kinds(&plan)
        .iter()
        .any(|k| matches!(k, ActionKind::Attach { .. })));
}

#[test]
fn outside_its_schedule_a_group_finishes_swaps_in_flight_and_says_when_it_opens() {
    // GIVEN Thursday 2026-01-01 12:00 UTC, a window that opens at 13:00, a ready launch in
    //   flight and another on-demand instance that could start a swap
    let fleet = swap_at(Stage::Ready)
        .tag(tags::SCHEDULE, "Mon-Fri 13:00-18:00 UTC")
        .tag(tags::REPLACE_PER_CYCLE, "5");
    // WHEN the rebalancer plans a cycle
    let plan = fleet.plan();
    // THEN the launch in flight is attached, no new swap starts, and the skip names the
    //   schedule and its next opening
    assert_eq!(
        steps(&plan),
        vec![("attach", Reason::ReplacementReady, Some("i-l1"))]
    );
    assert_eq!(skip_reason(&plan), Some(Reason::OutsideSchedule));
    let detail = plan.skip.as_ref().unwrap().detail.clone().unwrap();
    assert!(detail.contains("opens at 2026-01-01T13:00:00Z"), "{detail}");
    assert!(detail.contains("Mon-Fri 13:00-18:00 UTC"), "{detail}");

    // GIVEN the window is open (Dublin is on UTC in January)
    let plan = fleet
        .tag(tags::SCHEDULE, "Mon-Fri 08:00-18:00 Europe/Dublin")
        .plan();
    // THEN swaps start
    assert_eq!(launched_for(&plan), vec!["i-od2"]);
    assert_eq!(plan.skip, None);
}

#[test]
fn a_paused_group_finishes_swaps_in_flight_and_resumes_on_time() {
    // GIVEN a group paused for another hour, with a ready launch and another on-demand
    let fleet = swap_at(Stage::Ready)
        .tag(tags::PAUSED_UNTIL, "2026-01-01T13:00:00Z")
        .tag(tags::REPLACE_PER_CYCLE, "5");
    let plan = fleet.plan();
    // THEN the launch in flight is attached, and no new swap starts: Paused, until when
    assert_eq!(
        steps(&plan),
        vec![("attach", Reason::ReplacementReady, Some("i-l1"))]
    );
    assert_eq!(skip_reason(&plan), Some(Reason::Paused));
    let detail = plan.skip.as_ref().unwrap().detail.clone().unwrap();
    assert!(detail.contains("until 2026-01-01T13:00:00Z"), "{detail}");
    // AND a pause in the past is no pause
    let plan = fleet.tag(tags::PAUSED_UNTIL, "2026-01-01T11:00:00Z").plan();
    assert_eq!(launched_for(&plan), vec!["i-od2"]);
}

#[test]
fn the_stack_pause_holds_every_group_and_the_floor_restore_too() {
    // GIVEN SPOTSWAP_PAUSED=true
    let defaults = Policy::from_env(|k| (k == "SPOTSWAP_PAUSED").then(|| "true".to_string())).unwrap();
    for fleet in [
        swap_at(Stage::Ready).tag(tags::REPLACE_PER_CYCLE, "5"),
        // a group below its floor, which would otherwise launch on-demand back
        on_demand_fleet(2)
            .spot("i-s1", A, AZS[0])
            .spot("i-s2", A, AZS[1])
            .desired(4)
            .tag(tags::ON_DEMAND_BASE, "4"),
    ] {
        // (without the pause, each would start a swap)
        assert!(!launches(&fleet.plan()).is_empty());
        let settings = Settings {
            defaults: defaults.clone(),
            ..fleet.settings()
        };
        let plan = plan_cycle(&fleet.snapshot(), &settings).remove(0);
        // THEN no new swap of either direction starts, and the skip says Paused by the stack
        assert!(launches(&plan).is_empty(), "{:?}", plan.actions);
        assert_eq!(skip_reason(&plan), Some(Reason::Paused));
        assert!(plan.skip.unwrap().detail.unwrap().contains("SPOTSWAP_PAUSED"));
    }
    // AND a bad value of the variable names it
    let err = Policy::from_env(|k| (k == "SPOTSWAP_PAUSED").then(|| "yes".to_string())).unwrap_err();
    assert_eq!(err.key(), "SPOTSWAP_PAUSED");
}

#[test]
fn a_stack_in_progress_starts_no_swap_but_advances_those_in_flight() {
    let stack = |fleet: Fleet, status: &str| {
        fleet
            .tag(tags::AWS_CFN_STACK_NAME, "web-stack")
            .with_group(|g| g.stack_status = Some(status.to_string()))
    };
    // GIVEN on-demand instances above the floor, in a group whose stack is being updated
    let plan = stack(
        Fleet::new().on_demand("i-od1", A).desired(1),
        "UPDATE_IN_PROGRESS",
    )
    .plan();
    // THEN no swap starts, and the skip names the stack and its status
    assert_eq!(skip_reason(&plan), Some(Reason::StackUpdating));
    assert_eq!(
        plan.skip.as_ref().and_then(|s| s.detail.as_deref()),
        Some("stack web-stack UPDATE_IN_PROGRESS")
    );
    assert!(launches(&plan).is_empty());

    // GIVEN a launch ready to attach in such a group
    let plan = stack(swap_at(Stage::Ready), "UPDATE_ROLLBACK_IN_PROGRESS").plan();
    // THEN the swap in flight still advances: it is safety, not a new swap
    assert!(kinds(&plan)
        .iter()
        .any(|k| matches!(k, ActionKind::Attach { .. })));
    assert!(launches(&plan).is_empty());

    // GIVEN the same group once the update is complete
    let plan = stack(Fleet::new().on_demand("i-od1", A).desired(1), "UPDATE_COMPLETE").plan();
    // THEN its swap starts
    assert_eq!(plan.skip, None);
    assert_eq!(launches(&plan).len(), 1);
}

#[test]
fn a_launching_hook_stops_new_swaps_unless_the_owner_bypasses_it() {
    // GIVEN a group with a launching lifecycle hook, one ready launch of ours and more
    //   on-demand above the floor
    let fleet = swap_at(Stage::Ready)
        .with_group(|g| g.has_launching_hook = Some(true))
        .tag(tags::REPLACE_PER_CYCLE, "5");
    // WHEN the rebalancer plans a cycle
    let plan = fleet.plan();
    // THEN the swap in flight still finishes, no new swap starts, and the skip says why
    assert_eq!(
        steps(&plan),
        vec![("attach", Reason::ReplacementReady, Some("i-l1"))]
    );
    assert_eq!(skip_reason(&plan), Some(Reason::LaunchHookWouldNotRun));

    // GIVEN the owner tags spotswap:launch-hooks=bypass
    let plan = fleet.clone().tag(tags::LAUNCH_HOOKS, "bypass").plan();
    // THEN swaps start again
    assert_eq!(launched_for(&plan), vec!["i-od2"]);
    assert_eq!(plan.skip, None);

    // GIVEN a bad value of the tag
    let plan = fleet.tag(tags::LAUNCH_HOOKS, "yes").plan();
    // THEN it is a configuration error naming the tag, and no new swap starts
    assert_eq!(skip_reason(&plan), Some(Reason::InvalidConfig));
    assert!(launched_for(&plan).is_empty());
}
