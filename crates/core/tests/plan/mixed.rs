//! Mixed-instances groups: candidates from the group's own policy, the floor from its
//! distribution unless spotswap's tags are set.

use super::*;
use spotswap_core::mixed::{AttributeBased, MixedOverride, MixedPolicy};

fn lt(id: &str) -> spotswap_core::LaunchTemplateRef {
    spotswap_core::LaunchTemplateRef {
        id: Some(id.into()),
        name: None,
        version: "3".into(),
    }
}

fn over(t: &str, template: Option<&str>) -> MixedOverride {
    MixedOverride {
        instance_type: Some(t.into()),
        weighted_capacity: None,
        launch_template: template.map(lt),
        instance_requirements: None,
    }
}

/// Three on-demand m5.large in a group whose policy allows m5.large and m6i.large (the latter
/// from its own template `lt-intel`), keeping `base` on-demand and `pct` % above it.
fn mixed_fleet(base: Option<u32>, pct: Option<u32>) -> Fleet {
    on_demand_fleet(3)
        .tag(tags::REPLACE_PER_CYCLE, "5")
        .with_group(|g| {
            g.launch_source = LaunchSource::MixedInstances;
            g.mixed = Some(MixedPolicy {
                launch_template: lt("lt-main"),
                overrides: vec![over("m5.large", None), over("m6i.large", Some("lt-intel"))],
                on_demand_base: base,
                on_demand_percent: pct,
                desired_capacity_type: None,
            });
        })
}

#[test]
fn candidates_come_from_the_policy_and_launch_from_their_overrides_template() {
    // GIVEN a mixed-instances group keeping 1 on-demand, in a market where m5a.large (not in
    //   the policy) is the cheapest compatible pool and m6i.large the next
    let plan = mixed_fleet(Some(1), Some(0)).plan();
    // THEN two swaps start: the distribution's floor of 1 stays on-demand
    assert_eq!(launched_for(&plan).len(), 2, "{:?}", steps(&plan));
    assert_eq!(plan.census.floor, 1);
    for spec in launches(&plan) {
        // AND no candidate is outside the policy
        let types: Vec<&str> = spec
            .candidates
            .iter()
            .map(|c| c.pool.instance_type.as_str())
            .collect();
        assert!(
            types.iter().all(|t| ["m5.large", "m6i.large"].contains(t)),
            "{types:?}"
        );
        // AND the cheapest, m6i.large, launches from its override's own template, with only
        //   the candidates of that template
        assert_eq!(types, vec!["m6i.large"]);
        assert_eq!(spec.launch_template.id.as_deref(), Some("lt-intel"));
    }
}

#[test]
fn spotswap_floor_tags_govern_over_the_distribution() {
    // GIVEN the same group tagged spotswap:on-demand-base=0
    let plan = mixed_fleet(Some(1), Some(0))
        .tag(tags::ON_DEMAND_BASE, "0")
        .plan();
    // THEN spotswap's floor (0) governs: all three are swapped
    assert_eq!(launched_for(&plan).len(), 3);
    assert_eq!(plan.census.floor, 0);
}

#[test]
fn a_distribution_left_at_aws_defaults_keeps_everything_on_demand() {
    // GIVEN a policy with no InstancesDistribution values: AWS launches 100% on-demand
    let plan = mixed_fleet(None, None).plan();
    // THEN spotswap swaps nothing: the owner asked for no spot
    assert!(launched_for(&plan).is_empty());
    assert_eq!(plan.census.floor, 3);
    assert_eq!(steps(&plan), vec![("wait", Reason::AtRiskFloor, None)]);
}

#[test]
fn the_same_template_is_used_when_the_cheapest_override_has_none() {
    // GIVEN m6i.large is dear, so m5.large (the policy's own template) is the cheapest
    let mut fleet = mixed_fleet(Some(0), Some(0));
    for az in AZS {
        fleet.market.spot_prices.insert(Pool::new("m6i.large", az), 0.09);
    }
    let plan = fleet.plan();
    // THEN the launches use the policy's template, with m5.large only
    let specs = launches(&plan);
    assert_eq!(specs.len(), 3);
    for spec in specs {
        assert_eq!(spec.launch_template.id.as_deref(), Some("lt-main"));
        assert!(spec.candidates.iter().all(|c| c.pool.instance_type == "m5.large"));
    }
}

#[test]
fn capacity_in_vcpus_empty_requirements_and_bad_weights_are_skipped_with_a_detail() {
    for (change, want) in [
        (
            (|m: &mut MixedPolicy| m.overrides[0].weighted_capacity = Some("0".into()))
                as fn(&mut MixedPolicy),
            "WeightedCapacity",
        ),
        (
            |m: &mut MixedPolicy| m.overrides[0].weighted_capacity = Some("two".into()),
            "WeightedCapacity",
        ),
        (
            |m: &mut MixedPolicy| m.desired_capacity_type = Some("vcpu".into()),
            "DesiredCapacityType vcpu",
        ),
        (
            |m: &mut MixedPolicy| {
                m.overrides = vec![MixedOverride {
                    instance_type: None,
                    instance_requirements: Some(AttributeBased {
                        resolved: Some(Ok(Default::default())),
                        ..Default::default()
                    }),
                    ..over("x", None)
                }]
            },
            "match no instance type",
        ),
    ] {
        // GIVEN a policy spotswap does not swap, with a launch of ours ready to attach
        let fleet = mixed_fleet(Some(0), Some(0))
            .with_group(|g| change(g.mixed.as_mut().unwrap()))
            .launch("i-l1", "i-od00", Stage::Ready);
        let plan = fleet.plan();
        // THEN the group is skipped, the detail says why, and nothing is done
        assert_eq!(skip_reason(&plan), Some(Reason::MixedInstancesPolicyNotSupported));
        assert!(plan.skip.unwrap().detail.unwrap().contains(want));
        assert!(plan.actions.is_empty());
    }
}

// --- weighted capacity: desired, the floor and invariant 1 in units -------------------------

fn weighted(t: &str, w: u32) -> MixedOverride {
    MixedOverride {
        weighted_capacity: Some(w.to_string()),
        ..over(t, None)
    }
}

/// Three on-demand m5.large of weight 2 (6 units, desired 6) in a group whose policy also
/// allows m5a.large (2 units) and m6i.large (1 unit, and the cheapest spot pool), keeping
/// `base` units on-demand and none above it.
fn weighted_fleet(base: u32) -> Fleet {
    let mut fleet = mixed_fleet(Some(base), Some(0))
        .desired(6)
        .max(6)
        .with_group(|g| {
            g.mixed.as_mut().unwrap().overrides = vec![
                weighted("m5.large", 2),
                weighted("m5a.large", 2),
                weighted("m6i.large", 1),
            ];
        });
    for az in AZS {
        fleet.market.spot_prices.insert(Pool::new("m6i.large", az), 0.001);
    }
    fleet
}

#[test]
fn a_weighted_group_counts_its_floor_in_units_and_swaps_only_for_equal_weight() {
    // GIVEN a weighted group of 6 units keeping 2 units on-demand
    let plan = weighted_fleet(2).plan();
    // THEN the floor is 2 units, one instance: two of the three originals are swapped
    assert_eq!(plan.census.floor, 2);
    assert_eq!(launched_for(&plan).len(), 2, "{:?}", steps(&plan));
    // AND each replacement weighs what its original weighs: the lighter m6i.large, although
    //   the cheapest pool, is never a candidate (it would leave the group a unit short)
    for spec in launches(&plan) {
        let types = candidate_types(spec);
        assert!(!types.is_empty());
        assert!(
            types.iter().all(|t| ["m5.large", "m5a.large"].contains(t)),
            "{types:?}"
        );
    }
}

#[test]
fn a_weighted_original_heavier_than_the_units_above_the_floor_stays() {
    // GIVEN the same group keeping 3 units on-demand: 3 of its 6 units are above the floor,
    //   and each original weighs 2
    let plan = weighted_fleet(3).plan();
    // THEN only one swap starts: a second would leave 2 units on-demand, below the floor of 3
    assert_eq!(plan.census.floor, 3);
    assert_eq!(launched_for(&plan).len(), 1, "{:?}", steps(&plan));
    // AND at 5 units kept, none starts, and the log says why
    let plan = weighted_fleet(5).plan();
    assert!(launched_for(&plan).is_empty());
    assert_eq!(steps(&plan), vec![("wait", Reason::AtRiskFloor, None)]);
}

#[test]
fn a_weighted_swap_is_retired_once_the_group_holds_its_desired_units() {
    // GIVEN a weighted group of 6 units whose swap of i-od00 has attached an m5a.large of
    //   weight 2 (desired 8 units while it serves beside its original), past its grace period
    let attached =
        weighted_fleet(2)
            .desired(8)
            .max(8)
            .launch("i-l1", "i-od00", Stage::Attached { secs_ago: 3600 });
    // THEN the original is retired: 8 units serve for 8 desired, although only 4 instances do
    let plan = attached.clone().plan();
    assert!(
        plan.actions
            .iter()
            .any(|a| matches!(&a.kind, ActionKind::Retire { instance, .. } if instance == "i-od00")),
        "{:?}",
        steps(&plan)
    );
    // AND with another original not InService (6 units serve for 8), the retire waits
    let short = attached
        .edit_member("i-od01", |m| m.state = MemberState::Pending)
        .plan();
    assert!(
        short
            .actions
            .iter()
            .any(|a| a.reason == Reason::GroupBelowCapacity),
        "{:?}",
        steps(&short)
    );
    assert!(!short
        .actions
        .iter()
        .any(|a| matches!(a.kind, ActionKind::Retire { .. })));
}

#[test]
fn a_weighted_attach_raises_max_size_by_the_launchs_units() {
    // GIVEN a weighted group at MaxSize (6 units) with a launch of weight 2 ready to attach
    let plan = weighted_fleet(2).launch("i-l1", "i-od00", Stage::Ready).plan();
    // THEN MaxSize is raised by the 2 units the attach adds, not by one instance
    assert!(
        plan.actions
            .iter()
            .any(|a| matches!(a.kind, ActionKind::RaiseMax { from: 6, to: 8 })),
        "{:?}",
        kinds(&plan)
    );
}

#[test]
fn the_group_listed_weight_of_a_member_wins_over_its_types() {
    // GIVEN the weighted group, where Auto Scaling lists i-od00 at 1 unit (a weight it kept
    //   from an earlier policy) and the owner keeps 4 units on-demand (desired 5)
    let plan = weighted_fleet(4)
        .desired(5)
        .edit_member("i-od00", |m| m.weight = Some(1))
        .plan();
    // THEN the 1 unit above the floor lets only i-od00 be swapped, for a 1-unit type
    assert_eq!(launched_for(&plan), vec!["i-od00"], "{:?}", steps(&plan));
    assert_eq!(candidate_types(launches(&plan)[0]), vec!["m6i.large"]);
}

// --- attribute-based overrides: the types EC2 resolved, narrowed by the globs ---------------

/// [`mixed_fleet`] whose one override gives `InstanceRequirements` (with its own template
/// `lt-abs`), resolved as `resolved`.
fn attribute_fleet(resolved: Option<Result<Vec<&str>, &str>>) -> Fleet {
    let resolved = resolved.map(|r| {
        r.map(|ts| ts.into_iter().map(String::from).collect())
            .map_err(String::from)
    });
    mixed_fleet(Some(0), Some(0)).with_group(move |g| {
        let m = g.mixed.as_mut().unwrap();
        m.overrides = vec![MixedOverride {
            instance_type: None,
            instance_requirements: Some(AttributeBased {
                resolved,
                ..Default::default()
            }),
            ..over("x", Some("lt-abs"))
        }];
    })
}

#[test]
fn attribute_based_candidates_are_the_resolved_types_narrowed_by_the_globs() {
    // GIVEN EC2 resolved m5.large, m5a.large and m6i.large for the requirements, and the
    //   group denies m5a.* (the market's cheapest compatible pool)
    let plan = attribute_fleet(Some(Ok(vec!["m5.large", "m5a.large", "m6i.large"])))
        .tag(tags::DENIED_TYPES, "m5a.*")
        .plan();
    // THEN all three are swapped, only to resolved types the globs allow, from the
    //   override's own template
    let specs = launches(&plan);
    assert_eq!(specs.len(), 3, "{:?}", steps(&plan));
    for spec in specs {
        assert!(!spec.candidates.is_empty());
        for c in &spec.candidates {
            assert!(
                ["m5.large", "m6i.large"].contains(&c.pool.instance_type.as_str()),
                "{}",
                c.pool.instance_type
            );
        }
        assert_eq!(spec.launch_template.id.as_deref(), Some("lt-abs"));
    }
    // AND without the glob the resolved m5a.large is a candidate too
    let plan = attribute_fleet(Some(Ok(vec!["m5.large", "m5a.large", "m6i.large"]))).plan();
    assert!(launches(&plan)
        .iter()
        .any(|s| s.candidates.iter().any(|c| c.pool.instance_type == "m5a.large")));
}

#[test]
fn attribute_based_types_not_read_skip_the_group_with_what_failed() {
    for (resolved, want) in [(None, "not read"), (Some(Err("throttled")), "throttled")] {
        // GIVEN an attribute-based group whose types are unknown, with a launch of ours ready
        let fleet = attribute_fleet(resolved).launch("i-l1", "i-od00", Stage::Ready);
        let plan = fleet.plan();
        // THEN it is skipped, the detail says why, and nothing is done
        assert_eq!(skip_reason(&plan), Some(Reason::InstanceRequirementsUnresolved));
        assert!(plan.skip.unwrap().detail.unwrap().contains(want));
        assert!(plan.actions.is_empty());
    }
}
