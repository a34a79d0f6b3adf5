//! Mixed-instances groups: the group's own `MixedInstancesPolicy` read into spotswap's terms.
//!
//! - **Candidates** come from the policy and never from outside it: its `Overrides` instance
//!   types, and for an attribute-based override (`InstanceRequirements`) the types EC2
//!   resolves for its requirements ([`AttributeBased`], read by the adapter with
//!   `GetInstanceTypesFromInstanceRequirements`), narrowed further by spotswap's
//!   allowed/denied globs ([`effective_policy`] sets [`Policy::group_types`]). A launch uses the launch template of its cheapest candidate's
//!   override (an override may name its own), with only the candidates of that template
//!   ([`template_for`]).
//! - **The floor**: spotswap's `spotswap:on-demand-base` / `spotswap:on-demand-percent` tags on
//!   the group govern when either is present; otherwise the group's own `InstancesDistribution`
//!   (`OnDemandBaseCapacity`, default 0, and `OnDemandPercentageAboveBaseCapacity`, default 100,
//!   AWS's defaults) is the floor. The stack-wide environment defaults never override the
//!   group's own distribution: it is the more specific setting.
//! - **The fallback AWS lacks** ([`distribution_step`]): while the group cannot get spot
//!   ([`cannot_get_spot`]: sheltered, a scaling activity failed for spot capacity in the last
//!   [`SPOT_FAILURE_MINUTES`], or desired unmet while every spot pool of the group is marked),
//!   its `OnDemandPercentageAboveBaseCapacity` is raised to 100, so the group's own launches
//!   go on-demand; the owner's value is recorded first in `spotswap:distribution-raised-from`,
//!   with a shelter of the group's cooldown. When the shelter ends and the group can get spot
//!   again, it is restored exactly, and the floor (taken from the recorded value meanwhile)
//!   lets the swaps convert the extra on-demand back to spot.
//! - **Weighted capacity** (`WeightedCapacity` on the overrides): desired, MaxSize, the floor
//!   and invariant 1 are counted in capacity units. [`crate::GroupSnapshot::units`] is the one
//!   rule for an instance's units; a replacement weighs what its original weighs.
//! - An attribute-based group whose types could not be read is skipped
//!   (`InstanceRequirementsUnresolved`, [`MixedPolicy::unresolved`]): no swap on unknown
//!   candidates.
//! - Not supported, so such groups keep `MixedInstancesPolicyNotSupported` with a detail:
//!   a `DesiredCapacityType` other than `units` (desired counted in vCPUs or MiB), a
//!   `WeightedCapacity` that is not a whole number from 1 to 999 (AWS accepts no other), and
//!   requirements that match no instance type.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::model::{GroupSnapshot, LaunchTemplateRef};
use crate::policy::Policy;
use crate::tags;

mod fallback;
mod requirements;

pub use fallback::{
    cannot_get_spot, distribution_step, raised_from, raised_from_value, spot_capacity_failure, NoSpot,
    SPOT_FAILURE_MINUTES,
};
pub use requirements::{AttributeBased, InstanceRequirements, Range};

/// What `OnDemandPercentageAboveBaseCapacity` spotswap sets while a group cannot get spot.
pub const RAISED_PERCENT: u32 = 100;

/// One `Overrides` entry of a mixed instances policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MixedOverride {
    /// `InstanceType`, when the override names one.
    pub instance_type: Option<String>,
    /// `WeightedCapacity`, as AWS writes it (a whole number as text), when set.
    pub weighted_capacity: Option<String>,
    /// The override's own `LaunchTemplateSpecification`, when it names one.
    pub launch_template: Option<LaunchTemplateRef>,
    /// The override's `InstanceRequirements` (attribute-based instance type selection) and
    /// the types EC2 resolved for them, when it gives requirements.
    pub instance_requirements: Option<AttributeBased>,
}

impl MixedOverride {
    /// `WeightedCapacity` as a number of units, when it is one AWS accepts (1 to 999).
    pub fn weight(&self) -> Option<u32> {
        self.weighted_capacity
            .as_deref()
            .and_then(|w| w.trim().parse::<u32>().ok())
            .filter(|w| (1..=999).contains(w))
    }
}

/// A group's `MixedInstancesPolicy`, as far as decisions care.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MixedPolicy {
    /// The policy's `LaunchTemplate.LaunchTemplateSpecification`.
    pub launch_template: LaunchTemplateRef,
    /// `LaunchTemplate.Overrides`.
    pub overrides: Vec<MixedOverride>,
    /// `InstancesDistribution.OnDemandBaseCapacity`; AWS's default is 0.
    pub on_demand_base: Option<u32>,
    /// `InstancesDistribution.OnDemandPercentageAboveBaseCapacity`; AWS's default is 100.
    pub on_demand_percent: Option<u32>,
    /// The group's `DesiredCapacityType` (`units`, `vcpu`, `memory-mib`); AWS's default is
    /// `units`.
    pub desired_capacity_type: Option<String>,
}

impl MixedPolicy {
    /// Why spotswap cannot swap this policy's group yet, for the skip's detail; `None` when it
    /// can.
    pub fn unsupported(&self) -> Option<String> {
        if let Some(t) = self.desired_capacity_type.as_deref().filter(|t| *t != "units") {
            return Some(format!(
                "DesiredCapacityType {t}: desired is counted in {t}, spotswap counts instances or WeightedCapacity units"
            ));
        }
        if self
            .overrides
            .iter()
            .any(|o| o.instance_requirements.is_some() && o.weighted_capacity.is_some())
        {
            return Some(
                "mixed instances policy with WeightedCapacity on InstanceRequirements: the weight of each resolved type is unknown"
                    .to_string(),
            );
        }
        if let Some(o) = self
            .overrides
            .iter()
            .find(|o| o.weighted_capacity.is_some() && o.weight().is_none())
        {
            return Some(format!(
                "mixed instances policy with WeightedCapacity {:?} for {}: expected a whole number from 1 to 999",
                o.weighted_capacity.as_deref().unwrap_or_default(),
                o.instance_type.as_deref().unwrap_or("an override")
            ));
        }
        if self.types().is_empty() {
            if self.attribute_based() {
                return Some(
                    "mixed instances policy whose InstanceRequirements match no instance type".to_string(),
                );
            }
            return Some("mixed instances policy without instance types".to_string());
        }
        None
    }

    /// True when an override gives `InstanceRequirements`.
    pub fn attribute_based(&self) -> bool {
        self.overrides.iter().any(|o| o.instance_requirements.is_some())
    }

    /// Why the types of an attribute-based override are not known, for the skip's detail
    /// (`InstanceRequirementsUnresolved`); `None` when every override's types are known.
    pub fn unresolved(&self) -> Option<String> {
        self.overrides
            .iter()
            .filter_map(|o| o.instance_requirements.as_ref())
            .find_map(AttributeBased::unresolved)
    }

    /// The `WeightedCapacity` of the override of `instance_type`, when the policy names the
    /// type with a weight.
    pub fn weight_of(&self, instance_type: &str) -> Option<u32> {
        self.overrides
            .iter()
            .find(|o| o.instance_type.as_deref() == Some(instance_type))
            .and_then(MixedOverride::weight)
    }

    /// True when an override carries a weight other than 1: desired, the floor and invariant 1
    /// count capacity units, not instances.
    pub fn weighted(&self) -> bool {
        self.overrides.iter().any(|o| o.weight().is_some_and(|w| w != 1))
    }

    /// The instance types the policy may launch: the overrides' own, and those EC2 resolved
    /// for the attribute-based ones.
    pub fn types(&self) -> BTreeSet<String> {
        self.overrides
            .iter()
            .flat_map(MixedOverride::types)
            .cloned()
            .collect()
    }
}

impl MixedOverride {
    /// The types this override gives: its `InstanceType`, or those resolved for its
    /// requirements.
    pub fn types(&self) -> impl Iterator<Item = &String> {
        self.instance_type
            .iter()
            .chain(self.instance_requirements.iter().flat_map(AttributeBased::types))
    }
}

/// The launch template to launch `instance_type` from: that of the first override giving the
/// type (named, or resolved from its requirements) when it names its own, else the policy's.
pub fn template_for<'a>(mixed: &'a MixedPolicy, instance_type: &str) -> &'a LaunchTemplateRef {
    mixed
        .overrides
        .iter()
        .find(|o| o.types().any(|t| t == instance_type))
        .and_then(|o| o.launch_template.as_ref())
        .unwrap_or(&mixed.launch_template)
}

/// `policy` for a group with a mixed instances policy: candidates only of the policy's types,
/// and the floor from its `InstancesDistribution` unless the group carries spotswap's own
/// floor tags. For any other group, `policy` unchanged.
pub fn effective_policy(group: &GroupSnapshot, policy: &Policy) -> Policy {
    let Some(mixed) = &group.mixed else {
        return policy.clone();
    };
    let mut out = policy.clone();
    out.group_types = Some(mixed.types());
    let tagged =
        group.tags.contains_key(tags::ON_DEMAND_BASE) || group.tags.contains_key(tags::ON_DEMAND_PERCENT);
    if !tagged {
        out.on_demand_base = mixed.on_demand_base.unwrap_or(0);
        // While spotswap holds the distribution raised, the owner's value is the floor.
        let owners = raised_from(group).ok().flatten();
        out.on_demand_percent = owners.unwrap_or(mixed.on_demand_percent.unwrap_or(100)).min(100);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::Fleet;

    fn lt(id: &str) -> LaunchTemplateRef {
        LaunchTemplateRef {
            id: Some(id.into()),
            name: None,
            version: "$Latest".into(),
        }
    }

    fn over(t: &str) -> MixedOverride {
        MixedOverride {
            instance_type: Some(t.into()),
            weighted_capacity: None,
            launch_template: None,
            instance_requirements: None,
        }
    }

    pub(crate) fn policy(base: Option<u32>, pct: Option<u32>) -> MixedPolicy {
        MixedPolicy {
            launch_template: lt("lt-main"),
            overrides: vec![
                over("m5.large"),
                MixedOverride {
                    launch_template: Some(lt("lt-amd")),
                    ..over("m5a.large")
                },
            ],
            on_demand_base: base,
            on_demand_percent: pct,
            desired_capacity_type: None,
        }
    }

    pub(crate) fn group(mixed: MixedPolicy, tags: &[(&str, &str)]) -> GroupSnapshot {
        let mut fleet = Fleet::new();
        for (k, v) in tags {
            fleet = fleet.tag(k, v);
        }
        let mut g = fleet.group;
        g.mixed = Some(mixed);
        g
    }

    #[test]
    fn the_groups_distribution_is_the_floor_unless_spotswap_tags_say_otherwise() {
        // GIVEN a policy keeping 1 on-demand and 25% above it, and no spotswap floor tags
        let g = group(policy(Some(1), Some(25)), &[]);
        // THEN the distribution is the floor, and only the policy's types are candidates
        let p = effective_policy(&g, &Policy::default());
        assert_eq!((p.on_demand_base, p.on_demand_percent), (1, 25));
        assert!(p.type_allowed("m5a.large") && p.type_allowed("m5.large"));
        assert!(!p.type_allowed("m6i.large"), "a type outside the policy");
        // AND AWS's defaults apply to what the distribution leaves out (100% on-demand)
        let p = effective_policy(&group(policy(None, None), &[]), &Policy::default());
        assert_eq!((p.on_demand_base, p.on_demand_percent), (0, 100));
        // AND with either spotswap floor tag, spotswap's floor governs (the tag over defaults)
        let tagged = group(policy(Some(1), Some(25)), &[(tags::ON_DEMAND_BASE, "0")]);
        let p = Policy::from_tags(&tagged.tags, &Policy::default()).unwrap();
        let p = effective_policy(&tagged, &p);
        assert_eq!((p.on_demand_base, p.on_demand_percent), (0, 0));
        // AND spotswap's globs still narrow the policy's types
        let globbed = group(policy(Some(0), Some(0)), &[(tags::DENIED_TYPES, "m5a.*")]);
        let p = Policy::from_tags(&globbed.tags, &Policy::default()).unwrap();
        assert!(!effective_policy(&globbed, &p).type_allowed("m5a.large"));
    }

    #[test]
    fn an_override_may_name_its_own_template() {
        let m = policy(None, None);
        assert_eq!(template_for(&m, "m5a.large").id.as_deref(), Some("lt-amd"));
        assert_eq!(template_for(&m, "m5.large").id.as_deref(), Some("lt-main"));
        assert_eq!(template_for(&m, "c5.large").id.as_deref(), Some("lt-main"));
    }

    #[test]
    fn weights_are_read_per_type_and_bad_ones_are_not_supported() {
        assert_eq!(policy(None, None).unsupported(), None);
        let mut m = policy(None, None);
        m.overrides[0].weighted_capacity = Some("1".into());
        assert_eq!(m.unsupported(), None);
        assert!(!m.weighted(), "a weight of 1 is no weight");
        m.overrides[1].weighted_capacity = Some(" 2 ".into());
        assert_eq!(m.unsupported(), None, "weights are supported");
        assert!(m.weighted());
        assert_eq!(m.weight_of("m5.large"), Some(1));
        assert_eq!(m.weight_of("m5a.large"), Some(2));
        assert_eq!(m.weight_of("c5.large"), None, "not in the policy");
        for bad in ["0", "1000", "-1", "two", ""] {
            m.overrides[1].weighted_capacity = Some(bad.into());
            assert!(m.unsupported().unwrap().contains("WeightedCapacity"), "{bad:?}");
        }
        let mut m = policy(None, None);
        m.overrides.clear();
        assert!(m.unsupported().is_some());
        // an attribute-based override with a weight: which units each resolved type has is
        // not known
        let mut m = policy(None, None);
        m.overrides.push(MixedOverride {
            instance_type: None,
            weighted_capacity: Some("2".into()),
            instance_requirements: Some(AttributeBased {
                resolved: Some(Ok(["c5.large".to_string()].into())),
                ..Default::default()
            }),
            ..over("x")
        });
        assert!(m
            .unsupported()
            .unwrap()
            .contains("WeightedCapacity on InstanceRequirements"));
        m.overrides[2].weighted_capacity = None;
        assert_eq!(m.unsupported(), None);
        assert_eq!(template_for(&m, "c5.large").id.as_deref(), Some("lt-main"));
        assert!(m.types().contains("c5.large"));
    }
}
