use crate::action::{ActionKind, Purchase, Reason};
use crate::tags;
use crate::testkit::{Fleet, Stage, AZS, NOW};
use crate::GroupPlan;

fn launches(plan: &GroupPlan) -> Vec<(&str, Reason, Purchase)> {
    plan.actions
        .iter()
        .filter_map(|a| match &a.kind {
            ActionKind::Launch(s) => Some((s.replaces.as_str(), a.reason, s.purchase)),
            _ => None,
        })
        .collect()
}

/// Two spot members and one on-demand at the default floor of 0... with base 1: the on-demand
/// one is needed.
fn fleet() -> Fleet {
    Fleet::new()
        .on_demand("i-od1", AZS[0])
        .spot("i-s1", "m5.large", AZS[1])
        .spot("i-s2", "m5.large", AZS[2])
        .desired(3)
        .tag(tags::ON_DEMAND_BASE, "1")
}

#[test]
fn a_scheduled_spot_instance_gets_a_spot_replacement_whatever_the_window() {
    // GIVEN EC2 schedules i-s1's retirement, and the group is outside its window and paused
    let f = fleet()
        .scheduled("i-s1", "instance-retirement", NOW.plus_minutes(60 * 24))
        .tag(tags::SCHEDULE, "Sat 00:00-00:01 UTC")
        .tag(tags::PAUSED_UNTIL, "2026-02-01T00:00:00Z");
    let plan = f.plan();
    // THEN i-s1 gets a spot replacement (ScheduledChange), and nothing else starts
    assert_eq!(
        launches(&plan),
        vec![("i-s1", Reason::ScheduledChange, Purchase::Spot)]
    );
    assert_eq!(plan.skip.as_ref().map(|s| s.reason), Some(Reason::Paused));
    // AND without the event, nothing at all starts
    assert!(launches(&fleet().tag(tags::PAUSED_UNTIL, "2026-02-01T00:00:00Z").plan()).is_empty());
}

#[test]
fn a_scheduled_on_demand_instance_the_floor_needs_is_replaced_on_demand() {
    let plan = fleet()
        .scheduled("i-od1", "instance-stop", NOW.plus_minutes(600))
        .plan();
    assert_eq!(
        launches(&plan),
        vec![("i-od1", Reason::ScheduledChange, Purchase::OnDemand)]
    );
}

#[test]
fn a_due_instance_already_being_replaced_protected_or_in_a_quiet_group_gets_nothing_more() {
    let due = |f: Fleet| f.scheduled("i-od1", "instance-retirement", NOW.plus_minutes(600));
    // a launch of ours already replaces it
    let f = due(fleet().launch("i-l1", "i-od1", Stage::Booting));
    assert!(
        launches(&f.plan()).iter().all(|(r, _, _)| *r != "i-od1"),
        "{:?}",
        f.plan().actions
    );
    // protected from scale-in
    let f = due(fleet().edit_member("i-od1", |m| m.protected_from_scale_in = true));
    assert!(launches(&f.plan()).is_empty());
    // replace-per-cycle 0 starts nothing, due or not
    let f = due(fleet().tag(tags::REPLACE_PER_CYCLE, "0"));
    assert!(launches(&f.plan()).is_empty());
    // a process a swap needs is suspended
    let f = due(fleet()).with_group(|g| g.suspended_processes = vec!["Terminate".into()]);
    assert!(launches(&f.plan()).is_empty());
}

#[test]
fn the_end_of_max_instance_lifetime_is_due_within_the_margin() {
    // GIVEN a group whose MaxInstanceLifetime ends the members (launched a day before NOW) half
    //   an hour from now: due, within the hour's margin
    let lifetime = |secs: u32| move |g: &mut crate::GroupSnapshot| g.max_instance_lifetime_secs = Some(secs);
    let plan = fleet().with_group(lifetime(24 * 3600 + 1800)).plan();
    let got = launches(&plan);
    assert_eq!(got.len(), 3, "{got:?}");
    assert!(
        got.iter().all(|(_, r, _)| *r == Reason::MaxInstanceLifetime),
        "{got:?}"
    );
    // the on-demand one the floor needs is replaced on-demand
    assert!(got.contains(&("i-od1", Reason::MaxInstanceLifetime, Purchase::OnDemand)));
    // AND a lifetime ending two hours from now is not due yet
    let later = fleet().with_group(lifetime(26 * 3600)).plan();
    assert!(launches(&later).is_empty(), "{:?}", later.actions);
}

#[test]
fn a_due_original_is_not_also_chosen_for_a_regular_swap() {
    // GIVEN an on-demand instance above the floor with a scheduled reboot, the only one
    let f = Fleet::new()
        .on_demand("i-od1", AZS[0])
        .spot("i-s1", "m5.large", AZS[1])
        .desired(2)
        .tag(tags::REPLACE_PER_CYCLE, "5")
        .scheduled("i-od1", "system-reboot", NOW.plus_minutes(600));
    // THEN one launch replaces it, the due one, not two
    assert_eq!(
        launches(&f.plan()),
        vec![("i-od1", Reason::ScheduledChange, Purchase::Spot)]
    );
}
