//! Why each candidate type was turned down for the originals a group's plan tried to replace:
//! what `spotswap plan --output json` shows beside the actions. Pure, and off the planner's
//! path: the adapter asks for it only when an operator wants the explanation.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::action::{Action, ActionKind, Purchase, Reason};
use crate::candidates::{rejections, PoolCounts, Rejected, SearchContext};
use crate::model::{GroupSnapshot, Instance, Lifecycle, Market};
use crate::policy::Policy;
use crate::records::GroupRecords;
use crate::time::Timestamp;

use super::{originals, stages, LaunchIndex};

/// The candidate types one original's search turned down, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CandidateReview {
    /// The group.
    pub group: String,
    /// The on-demand instance to replace.
    pub instance: String,
    /// Its type.
    pub instance_type: String,
    /// Its AZ: every candidate pool is in it.
    pub az: String,
    /// Each turned-down type of the AZ's spot pools, by type name, with the first rule or
    /// exclusion it failed.
    pub rejected: Vec<Rejected>,
}

/// A review of each new swap `actions` (the group's plan) tried to start: a spot Launch
/// (`OnDemandAboveFloor`), a Wait for want of a pool (`NoEligiblePool`), or a launch held by
/// the region's cap (`MaxSwapsInFlight`). The searches see what the planner's saw: the same
/// pool counts, each launch's pool counted toward the cap of the next.
pub fn review_group(
    group: &GroupSnapshot,
    instances: &BTreeMap<String, Instance>,
    market: &Market,
    policy: &Policy,
    now: Timestamp,
    actions: &[Action],
) -> Vec<CandidateReview> {
    let starts: Vec<(&Action, &Instance)> = actions
        .iter()
        .filter(|a| is_new_swap(a))
        .filter_map(|a| Some((a, instances.get(a.instance.as_deref()?)?)))
        .collect();
    if starts.is_empty() {
        return Vec::new();
    }
    let index = LaunchIndex::new(instances.values());
    let launches = index.of(&group.name);
    let in_service = group.in_service_units(instances);
    let mut counts: PoolCounts = stages::advance_all(group, launches, in_service, now).counts;
    for (_, inst) in originals::serving(group, instances) {
        if inst.lifecycle == Lifecycle::Spot {
            counts.add(inst.pool());
        }
    }
    let floor = policy.required_on_demand(group.desired);
    let target_spot = (counts.total() + 1).max(group.desired.saturating_sub(floor));
    let records = GroupRecords::from_tags(&group.tags);
    let mut out = Vec::with_capacity(starts.len());
    for (action, original) in starts {
        let ctx = SearchContext {
            market,
            policy,
            records: &records,
            counts: &counts,
            target_spot,
            now,
            ranked: None,
        };
        out.push(CandidateReview {
            group: group.name.clone(),
            instance: original.id.clone(),
            instance_type: original.instance_type.clone(),
            az: original.az.clone(),
            rejected: rejections(original, original.architecture.as_deref(), ctx, None),
        });
        if action.reason != Reason::NoEligiblePool {
            if let Some(pool) = &action.pool {
                counts.add(pool.clone());
            }
        }
    }
    out
}

fn is_new_swap(a: &Action) -> bool {
    match (&a.kind, a.reason) {
        (ActionKind::Launch(spec), Reason::OnDemandAboveFloor) => spec.purchase == Purchase::Spot,
        (ActionKind::Wait, Reason::NoEligiblePool | Reason::MaxSwapsInFlight) => a.instance.is_some(),
        _ => false,
    }
}
