//! The AutoSpotting translation, filter, activity hold and orphans.

use std::collections::BTreeMap;

use super::activity::{self, orphans};
use super::autospotting::*;
use super::*;
use crate::model::{InstanceState, Lifecycle};
use crate::plan::{plan_cycle, Settings};
use crate::policy::FloorRule;
use crate::testkit::{instance, Fleet, Tagged, A, B, C, GROUP, NOW};
use crate::{ActionKind, Reason};

fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn compat_settings() -> Settings {
    Settings {
        compat: Some(AutoSpottingCompat::default()),
        ..Settings::default()
    }
}

#[test]
fn floor_is_autospottings_larger_of_number_and_rounded_percentage() {
    // AutoSpotting: max(number, floor(instances × pct / 100 + 0.5)), never above the group
    assert_eq!(floor(10, 2, 25.0), 3, "2.5 rounds half up to 3, above the number");
    assert_eq!(
        floor(10, 2, 24.0),
        2,
        "2.4 rounds to 2; the number 2 is the larger"
    );
    assert_eq!(floor(10, 0, 24.0), 2, "spotswap would round 2.4 up to 3");
    assert_eq!(floor(10, 4, 25.0), 4, "the number wins when larger");
    assert_eq!(floor(3, 5, 0.0), 3, "never above desired");
    assert_eq!(floor(4, 0, 12.5), 1, "0.5 rounds up");
    assert_eq!(floor(3, 0, 16.0), 0, "0.48 rounds down");
    assert_eq!(floor(0, 3, 50.0), 0);
    assert_eq!(floor(7, 0, 100.0), 7);
}

#[test]
fn aliases_translate_into_spotswap_tags_and_autospottings_floor() {
    // GIVEN a group tagged only AutoSpotting's way, with a space-separated type list
    let t = translate(&tags(&[
        (SPOT_ENABLED, "true"),
        (MIN_ON_DEMAND_NUMBER, "1"),
        (MIN_ON_DEMAND_PERCENTAGE, "12.5"),
        (ALLOWED_INSTANCE_TYPES, "m5.large  c5.*,m5.large, "),
    ]))
    .unwrap();
    // THEN the spotswap tags express it, never below AutoSpotting's floor
    assert_eq!(t.spotswap_tags["spotswap:on-demand-base"], "1");
    assert_eq!(t.spotswap_tags["spotswap:on-demand-percent"], "13");
    assert_eq!(t.spotswap_tags["spotswap:allowed-types"], "m5.large,c5.*");
    assert_eq!(
        t.floor,
        Some(FloorRule::AutoSpotting {
            number: 1,
            percent: 12.5
        })
    );
    // AND each difference is named on its own line
    assert!(t.differences.iter().any(|d| d.contains("rounds half up")));
    assert!(t.differences.iter().any(|d| d.contains("fraction")));
    assert!(t.differences.iter().any(|d| d.contains("larger of the number")));
    assert!(t.found.contains_key(SPOT_ENABLED));
}

#[test]
fn spotswap_tags_express_a_floor_never_below_autospottings() {
    for desired in 0..60u32 {
        for number in 0..8u32 {
            for pct in [0.0, 10.0, 12.5, 25.0, 33.3, 50.0, 99.9, 100.0] {
                let as_floor = floor(desired, number, pct);
                let ours = crate::policy::required_on_demand(desired, number, pct.ceil() as u32);
                assert!(ours >= as_floor, "{desired} {number} {pct}: {ours} < {as_floor}");
            }
        }
    }
}

#[test]
fn an_allowed_list_turns_off_the_disallowed_one_as_in_autospotting() {
    let t = translate(&tags(&[
        (ALLOWED_INSTANCE_TYPES, "m5.*"),
        (DISALLOWED_INSTANCE_TYPES, "m5.metal"),
    ]))
    .unwrap();
    assert!(!t.spotswap_tags.contains_key("spotswap:denied-types"));
    assert!(t.ignored.iter().any(|i| i.tag == DISALLOWED_INSTANCE_TYPES));
    // alone, the disallowed list applies
    let t = translate(&tags(&[(DISALLOWED_INSTANCE_TYPES, "t2.* t3.*")])).unwrap();
    assert_eq!(t.spotswap_tags["spotswap:denied-types"], "t2.*,t3.*");
    // `current` keeps to the original's own type
    let t = translate(&tags(&[(ALLOWED_INSTANCE_TYPES, "current")])).unwrap();
    assert!(t.same_type_only && !t.spotswap_tags.contains_key("spotswap:allowed-types"));
    let p = apply(
        &tags(&[(ALLOWED_INSTANCE_TYPES, "current")]),
        &Policy::default(),
        &t,
    )
    .unwrap();
    assert!(p.may_replace("m5.large", "m5.large"));
    assert!(!p.may_replace("m5.large", "m5a.large"));
}

#[test]
fn malformed_alias_values_name_the_alias_and_the_value() {
    let cases = [
        (MIN_ON_DEMAND_NUMBER, "abc"),
        (MIN_ON_DEMAND_NUMBER, "-1"),
        (MIN_ON_DEMAND_NUMBER, "1.5"),
        (MIN_ON_DEMAND_PERCENTAGE, "150"),
        (MIN_ON_DEMAND_PERCENTAGE, "-5"),
        (MIN_ON_DEMAND_PERCENTAGE, "NaN"),
        (MIN_ON_DEMAND_PERCENTAGE, "half"),
        (ALLOWED_INSTANCE_TYPES, " , "),
        (ALLOWED_INSTANCE_TYPES, "m5.[large"),
        (DISALLOWED_INSTANCE_TYPES, "m5.large;rm"),
        (DISALLOWED_INSTANCE_TYPES, "current"),
        (crate::tags::IGNORE_AUTOSPOTTING, "yes"),
    ];
    for (key, value) in cases {
        let group = tags(&[(SPOT_ENABLED, "true"), (key, value)]);
        let err = translate(&group).unwrap_err();
        assert_eq!((err.key(), err.value()), (key, value), "{key}={value}");
        // AND the cycle skips the group with InvalidConfig naming it, launching nothing
        let fleet = Fleet::new()
            .untag(crate::tags::ENABLED)
            .tag(SPOT_ENABLED, "true")
            .tag(key, value)
            .on_demand("i-1", A)
            .desired(1);
        let plan = plan_cycle(&fleet.snapshot(), &compat_settings()).remove(0);
        let skip = plan.skip.expect("skipped");
        assert_eq!(skip.reason, Reason::InvalidConfig);
        assert!(skip.detail.unwrap().contains(key));
        assert!(plan.actions.iter().all(|a| !a.kind.is_mutating()));
    }
}

#[test]
fn knobs_with_no_meaning_here_are_reported_one_each() {
    let pairs: Vec<(&str, &str)> = IGNORED_TAGS.iter().map(|(k, _)| (*k, "x")).collect();
    let t = translate(&tags(&pairs)).unwrap();
    assert_eq!(t.ignored.len(), IGNORED_TAGS.len());
    assert!(t.spotswap_tags.is_empty() && t.floor.is_none());
}

/// The policy of a group AutoSpotting's default filter selects.
fn managed_policy(group: &BTreeMap<String, String>) -> Policy {
    policy_for(
        group,
        Mode::OptIn,
        &Policy::default(),
        &AutoSpottingCompat::default(),
    )
    .unwrap()
    .expect("managed")
}

#[test]
fn cron_tags_become_a_schedule_window_and_spotswaps_own_schedule_wins() {
    let group = tags(&[
        (SPOT_ENABLED, "true"),
        (CRON_TAGS[0], "9-18 1-5"),
        (CRON_TAGS[1], "Europe/Dublin"),
        (CRON_TAGS[2], "off"),
    ]);
    let t = translate(&group).unwrap();
    assert!(t.ignored.is_empty());
    let s = &t.spotswap_tags["spotswap:schedule"];
    assert!(s.contains("Sat,Sun 00:00-24:00 Europe/Dublin"), "{s}");
    assert!(t.differences.iter().any(|d| d.contains(s.as_str())));
    let p = managed_policy(&group);
    // Thursday 10:00 in Dublin (UTC+1 in June) is inside AutoSpotting's hours: with state off,
    // no new swaps.
    let thursday_ten = crate::time::Timestamp::parse_rfc3339("2026-06-04T09:00:00Z").unwrap();
    assert!(p.window.closed(thursday_ten).is_some());
    assert!(p.window.closed(thursday_ten.plus_secs(10 * 3600)).is_none());
    let mut own = group.clone();
    own.insert("spotswap:schedule".into(), "Mon-Sun 00:00-24:00 UTC".into());
    let p = managed_policy(&own);
    assert!(p.window.closed(thursday_ten).is_none());
    let mut bad = group;
    bad.insert(CRON_TAGS[0].into(), "9-18 8".into());
    let err = translate(&bad).unwrap_err();
    assert_eq!(err.key(), CRON_TAGS[0]);
}

#[test]
fn spotswaps_own_tags_win_over_the_aliases() {
    let group = tags(&[
        (SPOT_ENABLED, "true"),
        (MIN_ON_DEMAND_NUMBER, "1"),
        (ALLOWED_INSTANCE_TYPES, "c5.large"),
        ("spotswap:on-demand-base", "3"),
        ("spotswap:allowed-types", "m5.*"),
    ]);
    let p = policy_for(
        &group,
        Mode::OptIn,
        &Policy::default(),
        &AutoSpottingCompat::default(),
    )
    .unwrap()
    .unwrap();
    assert_eq!(p.floor_rule, FloorRule::Aws);
    assert_eq!(p.on_demand_base, 3);
    assert_eq!(p.allowed_types.as_strs(), vec!["m5.*"]);
    // AND without spotswap's floor tags, AutoSpotting's floor rule applies
    let group = tags(&[(SPOT_ENABLED, "true"), (MIN_ON_DEMAND_PERCENTAGE, "25")]);
    let p = policy_for(
        &group,
        Mode::OptIn,
        &Policy::default(),
        &AutoSpottingCompat::default(),
    )
    .unwrap()
    .unwrap();
    assert_eq!(p.required_on_demand(10), 3, "round(2.5) = 3");
    assert_eq!(
        p.required_on_demand(9),
        2,
        "round(2.25) = 2, where spotswap's would be 3"
    );
}

#[test]
fn the_filter_follows_autospottings_modes_and_spotswaps_tag_wins() {
    let c = AutoSpottingCompat::default();
    assert!(c
        .is_managed(&tags(&[(SPOT_ENABLED, "true")]), Mode::OptIn)
        .unwrap());
    assert!(!c
        .is_managed(&tags(&[(SPOT_ENABLED, "True")]), Mode::OptIn)
        .unwrap());
    assert!(!c.is_managed(&tags(&[]), Mode::OptIn).unwrap());
    assert!(!c
        .is_managed(
            &tags(&[(SPOT_ENABLED, "true"), (crate::tags::ENABLED, "false")]),
            Mode::OptIn
        )
        .unwrap());
    assert!(c
        .is_managed(&tags(&[(crate::tags::ENABLED, "true")]), Mode::OptIn)
        .unwrap());
    // opt-out: every group but those matching spot-enabled=false
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
    };
    let out = AutoSpottingCompat::from_env(env(&[
        ("SPOTSWAP_COMPAT", "autospotting"),
        ("SPOTSWAP_AUTOSPOTTING_TAG_FILTERING_MODE", "opt-out"),
    ]))
    .unwrap()
    .unwrap();
    assert!(out.is_managed(&tags(&[]), Mode::OptIn).unwrap());
    assert!(!out
        .is_managed(&tags(&[(SPOT_ENABLED, "false")]), Mode::OptIn)
        .unwrap());
    // a custom filter: every pair must match
    let custom = AutoSpottingCompat::from_env(env(&[
        ("SPOTSWAP_COMPAT", "autospotting"),
        (
            "SPOTSWAP_AUTOSPOTTING_FILTER_BY_TAGS",
            "spot-enabled=true, env = prod",
        ),
    ]))
    .unwrap()
    .unwrap();
    assert!(!custom
        .is_managed(&tags(&[(SPOT_ENABLED, "true")]), Mode::OptIn)
        .unwrap());
    assert!(custom
        .is_managed(&tags(&[(SPOT_ENABLED, "true"), ("env", "prod")]), Mode::OptIn)
        .unwrap());
    // bad settings are errors naming the variable
    for (k, v) in [
        ("SPOTSWAP_COMPAT", "spotinst"),
        ("SPOTSWAP_AUTOSPOTTING_TAG_FILTERING_MODE", "maybe"),
        ("SPOTSWAP_AUTOSPOTTING_FILTER_BY_TAGS", "spot-enabled"),
        ("SPOTSWAP_AUTOSPOTTING_QUIET_MINUTES", "soon"),
    ] {
        let lookup = |n: &str| match n {
            "SPOTSWAP_COMPAT" if k != "SPOTSWAP_COMPAT" => Some("autospotting".to_string()),
            n if n == k => Some(v.to_string()),
            _ => None,
        };
        assert_eq!(AutoSpottingCompat::from_env(lookup).unwrap_err().key(), k);
    }
    assert_eq!(AutoSpottingCompat::from_env(|_| None).unwrap(), None);
}

/// A group tagged only AutoSpotting's way, 4 on-demand members, floor max(1, round(50% × 4)) = 2.
fn autospotting_fleet() -> Fleet {
    Fleet::new()
        .untag(crate::tags::ENABLED)
        .tag(SPOT_ENABLED, "true")
        .tag(MIN_ON_DEMAND_NUMBER, "1")
        .tag(MIN_ON_DEMAND_PERCENTAGE, "50")
        .tag(crate::tags::REPLACE_PER_CYCLE, "5")
        .on_demand("i-1", A)
        .on_demand("i-2", B)
        .on_demand("i-3", C)
        .on_demand("i-4", A)
        .desired(4)
}

fn launches(plan: &crate::GroupPlan) -> usize {
    plan.actions
        .iter()
        .filter(|a| matches!(a.kind, ActionKind::Launch(_)))
        .count()
}

#[test]
fn a_group_tagged_only_autospottings_way_swaps_down_to_autospottings_floor() {
    let fleet = autospotting_fleet();
    // WITHOUT compatibility mode the group is not spotswap's
    assert_eq!(fleet.plan().skip.unwrap().reason, Reason::NotManaged);
    // WITH it, exactly the instances above AutoSpotting's floor are swapped
    let plan = plan_cycle(&fleet.snapshot(), &compat_settings()).remove(0);
    assert!(plan.skip.is_none(), "{:?}", plan.skip);
    assert_eq!(plan.census.floor, 2);
    assert_eq!(launches(&plan), 2);
}

#[test]
fn recent_autospotting_activity_holds_new_swaps_until_the_quiet_period_ends() {
    // GIVEN AutoSpotting launched an instance for the group 30 minutes ago
    let theirs = instance("i-as", "m5.large", A, Lifecycle::Spot)
        .tagged(LAUNCHED_BY, "true")
        .tagged(LAUNCHED_FOR, GROUP);
    let mut recent = theirs.clone();
    recent.launch_time = NOW.plus_minutes(-30);
    let fleet = autospotting_fleet().instance(recent);
    // THEN no swap starts, and the skip says why and until when
    let plan = plan_cycle(&fleet.snapshot(), &compat_settings()).remove(0);
    let skip = plan.skip.clone().expect("held");
    assert_eq!(skip.reason, Reason::AutoSpottingActive);
    assert!(skip.detail.unwrap().contains("90 minutes"));
    assert!(plan.actions.iter().all(|a| !a.kind.is_mutating()));
    // AND the override tag lets spotswap act anyway
    let forced = fleet.clone().tag(crate::tags::IGNORE_AUTOSPOTTING, "true");
    let plan = plan_cycle(&forced.snapshot(), &compat_settings()).remove(0);
    assert!(plan.skip.is_none());
    assert_eq!(launches(&plan), 2);
    // AND once AutoSpotting has been quiet for the period, spotswap acts
    let mut old = theirs.clone();
    old.launch_time = NOW.plus_minutes(-91);
    let quiet = autospotting_fleet().instance(old);
    let plan = plan_cycle(&quiet.snapshot(), &compat_settings()).remove(0);
    assert!(plan.skip.is_none());
    // AND a look-alike tag is no evidence
    let mut lookalike = theirs.tagged(LAUNCHED_BY, "yes");
    lookalike.launch_time = NOW.plus_minutes(-1);
    let plan = plan_cycle(
        &autospotting_fleet().instance(lookalike).snapshot(),
        &compat_settings(),
    )
    .remove(0);
    assert!(plan.skip.is_none());
    // AND AutoSpotting's launches for another group do not hold this one
    let latest = activity::latest_launches(quiet.instances.values());
    assert!(activity::hold(&fleet.group, &latest, &AutoSpottingCompat::default(), NOW).is_none());
}

#[test]
fn orphans_are_tagged_exactly_running_or_stopped_and_in_no_group() {
    let fleet = autospotting_fleet();
    let mk = |id: &str| instance(id, "m5.large", A, Lifecycle::Spot);
    let member = mk("i-1").tagged(LAUNCHED_BY, "true");
    let orphan = mk("i-orphan").tagged(LAUNCHED_BY, "true");
    let mut stopped = mk("i-stopped").tagged(LAUNCHED_BY, "true");
    stopped.state = InstanceState::Stopped;
    let mut gone = mk("i-gone").tagged(LAUNCHED_BY, "true");
    gone.state = InstanceState::Gone;
    let lookalikes = [
        mk("i-l1").tagged(LAUNCHED_BY, "TRUE"),
        mk("i-l2").tagged("launched-by-autospotting-x", "true"),
        mk("i-l3").tagged(LAUNCHED_FOR, GROUP),
    ];
    let all: Vec<_> = [member, orphan, stopped, gone]
        .into_iter()
        .chain(lookalikes)
        .collect();
    let found: Vec<&str> = orphans(all.iter(), std::slice::from_ref(&fleet.group))
        .into_iter()
        .map(|i| i.id.as_str())
        .collect();
    assert_eq!(found, ["i-orphan", "i-stopped"]);
}

#[test]
fn the_reaper_never_takes_autospottings_instances_for_ours() {
    // GIVEN an AutoSpotting orphan and an AutoSpotting member, long past the orphan age
    let mut orphan = instance("i-orphan", "m5.large", A, Lifecycle::Spot)
        .tagged(LAUNCHED_BY, "true")
        .tagged(LAUNCHED_FOR, GROUP);
    orphan.launch_time = NOW.plus_minutes(-600);
    let fleet = autospotting_fleet().instance(orphan);
    let mut instances = fleet.instances.clone();
    instances.retain(|_, i| i.tag(LAUNCHED_BY).is_some());
    // WHEN the reaper plans a pass
    let plan = crate::plan_reap(
        std::slice::from_ref(&fleet.group),
        &instances,
        &compat_settings(),
        NOW,
        20,
    );
    // THEN it terminates nothing
    assert!(plan
        .actions
        .iter()
        .all(|a| !matches!(a.kind, ActionKind::Terminate { .. })));
}
