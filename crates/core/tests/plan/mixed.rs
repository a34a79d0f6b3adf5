//! Mixed-instances groups: candidates from the group's own policy, the floor from its
//! distribution unless spotswap's tags are set.

use super::*;
use spotswap_core::mixed::{MixedOverride, MixedPolicy};

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
        instance_requirements: false,
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
fn weighted_and_attribute_based_policies_are_skipped_with_a_detail() {
    for (change, want) in [
        (
            (|m: &mut MixedPolicy| m.overrides[0].weighted_capacity = Some("2".into()))
                as fn(&mut MixedPolicy),
            "WeightedCapacity",
        ),
        (
            |m: &mut MixedPolicy| m.overrides[1].instance_requirements = true,
            "InstanceRequirements",
        ),
    ] {
        // GIVEN a policy spotswap does not swap yet, with a launch of ours ready to attach
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
