//! The cycle's running view of commitments for the planner, and the `commitments` section of
//! `spotswap plan`.
//!
//! Coverage is region-wide: an unmanaged on-demand instance consumes an RI as much as a
//! managed one. The ledger is built once per cycle from the whole region's usage; as groups
//! are planned in turn, each swap it allows is recorded (an on-demand instance leaving, one
//! arriving), so two groups never both count on the same unused units.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::coverage::{cover, Coverage};
use super::{dollars, family, micros, Commitments, Normalizer, PlanKind, Usage, QUARTER};
use crate::action::{ActionKind, Purchase};
use crate::model::{Instance, Lifecycle, RegionSnapshot};
use crate::plan::GroupPlan;
use crate::time::Timestamp;

/// The id a planned on-demand launch replacing `spot` is counted under until it exists.
fn planned_id(spot: &str) -> String {
    format!("planned:{spot}")
}

/// The commitments of the region and their coverage, with the cycle's planned changes.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    /// `None`: the commitments could not be read this cycle (`CommitmentsUnknown`).
    state: Option<State>,
    unknown: bool,
}

#[derive(Debug, Clone)]
struct State {
    commitments: Commitments,
    usage: Vec<Usage>,
    on_demand: BTreeMap<String, u64>,
    norm: Normalizer,
    now: Timestamp,
    /// Coverage of the region as it runs, before any plan.
    before: Coverage,
    /// Coverage with the swaps in flight and the cycle's planned removals and additions.
    current: Coverage,
    removed: BTreeSet<String>,
    added: Vec<Usage>,
}

impl State {
    fn cover(&self, removed: &BTreeSet<String>, added: &[Usage]) -> Coverage {
        let usage: Vec<Usage> = self
            .usage
            .iter()
            .filter(|u| !removed.contains(&u.instance_id))
            .chain(added.iter())
            .cloned()
            .collect();
        cover(&self.commitments, &usage, &self.on_demand, &self.norm, self.now)
    }

    /// True when `u` could use a commitment that sits unused (a cheap test before covering).
    fn could_fill(&self, u: &Usage) -> bool {
        let fam = family(&u.instance_type);
        let ri = self
            .current
            .reserved
            .iter()
            .any(|r| r.used_units < r.owned_units && r.family == fam);
        let sp = self.current.plans.iter().any(|p| {
            p.used_micros < p.commitment_micros
                && self
                    .commitments
                    .savings_plans
                    .iter()
                    .find(|s| s.id == p.id)
                    .is_some_and(|s| s.rates.iter().any(|r| r.instance_type == u.instance_type))
        });
        ri || sp
    }
}

impl Ledger {
    /// No commitments, and known to be none: nothing is held or filled.
    pub fn none() -> Self {
        Self::default()
    }

    /// The commitments could not be read: nothing is held or filled, and groups tagged
    /// `spotswap:commitments=strict` start no swap.
    pub fn unknown() -> Self {
        Self {
            state: None,
            unknown: true,
        }
    }

    /// The snapshot's commitments over the region's running on-demand usage.
    pub fn new(snapshot: &RegionSnapshot) -> Self {
        let Some(commitments) = snapshot.commitments.as_ref() else {
            return Self::unknown();
        };
        if commitments.is_empty() {
            return Self::none();
        }
        let on_demand: BTreeMap<String, u64> = snapshot
            .market
            .on_demand_prices
            .iter()
            .filter_map(|(t, p)| Some((t.clone(), micros(*p)?)))
            .collect();
        let norm = Normalizer::new(
            snapshot
                .market
                .types
                .keys()
                .map(String::as_str)
                .chain(snapshot.usage.iter().map(|u| u.instance_type.as_str()))
                .chain(commitments.reserved.iter().map(|r| r.instance_type.as_str())),
        );
        let before = cover(commitments, &snapshot.usage, &on_demand, &norm, snapshot.now);
        // The on-demand originals of swaps to spot in flight are leaving: their units are not
        // theirs to keep, or a later cycle would swap the instance that inherits them too.
        let removed: BTreeSet<String> = snapshot
            .instances
            .values()
            .filter(|l| l.lifecycle == Lifecycle::Spot && l.is_alive() && !l.is_detached())
            .filter_map(|l| Some((l.launched_for()?, l.replaces()?)))
            .filter(|(_, o)| {
                snapshot
                    .instances
                    .get(*o)
                    .is_some_and(|o| o.lifecycle == Lifecycle::OnDemand)
            })
            .map(|(_, o)| o.to_string())
            .collect();
        let mut state = State {
            commitments: commitments.clone(),
            usage: snapshot.usage.clone(),
            on_demand,
            norm,
            now: snapshot.now,
            current: before.clone(),
            before,
            removed,
            added: Vec::new(),
        };
        if !state.removed.is_empty() {
            state.current = state.cover(&state.removed, &state.added);
        }
        Self {
            state: Some(state),
            unknown: false,
        }
    }

    /// True when the commitments could not be read.
    pub fn is_unknown(&self) -> bool {
        self.unknown
    }

    /// True when some commitment sits unused with the cycle's plans so far.
    pub fn has_unused(&self) -> bool {
        self.state
            .as_ref()
            .is_some_and(|s| s.current.unused_units() > 0 || s.current.unused_micros() > 0)
    }

    /// The commitment that removing the on-demand instance `id` would leave (partly) unused,
    /// with the cycle's plans so far; `None` when its removal wastes nothing.
    pub fn wasted_by_removing(&self, id: &str) -> Option<String> {
        let s = self.state.as_ref()?;
        let covered = s.current.instances.get(id)?;
        let mut removed = s.removed.clone();
        removed.insert(id.to_string());
        let after = s.cover(&removed, &s.added);
        let wastes = after.unused_units() > s.current.unused_units()
            || after.unused_micros() > s.current.unused_micros();
        wastes.then(|| covered.by.first().cloned()).flatten()
    }

    /// Record that the on-demand instance `id` leaves (a swap to spot starts for it).
    pub fn remove(&mut self, id: &str) {
        if let Some(s) = self.state.as_mut() {
            if s.removed.insert(id.to_string()) {
                s.current = s.cover(&s.removed, &s.added);
            }
        }
    }

    /// The commitment an on-demand instance of `spot`'s type in its AZ (the launch that
    /// replaces it) would use where it now sits unused; `None` when it would use nothing
    /// unused.
    pub fn filled_by_replacing(&self, spot: &Instance) -> Option<String> {
        self.filled_by_adding(Usage {
            instance_id: planned_id(&spot.id),
            ..Usage::of(spot)
        })
    }

    /// The commitment the on-demand usage `u` would use where it now sits unused; `None`
    /// when it would use nothing unused.
    pub fn filled_by_adding(&self, u: Usage) -> Option<String> {
        let s = self.state.as_ref()?;
        if !s.could_fill(&u) {
            return None;
        }
        let id = u.instance_id.clone();
        let mut added = s.added.clone();
        added.push(u);
        let after = s.cover(&s.removed, &added);
        let fills = after.unused_units() < s.current.unused_units()
            || after.unused_micros() < s.current.unused_micros();
        if !fills {
            return None;
        }
        after.instances.get(&id)?.by.first().cloned()
    }

    /// Record the on-demand usage `u` arriving (a hypothetical one, for the savings estimate).
    pub fn add(&mut self, u: Usage) {
        if let Some(s) = self.state.as_mut() {
            if s.added.iter().all(|a| a.instance_id != u.instance_id) {
                s.added.push(u);
                s.current = s.cover(&s.removed, &s.added);
            }
        }
    }

    /// Record an on-demand launch replacing `spot`.
    pub fn add_replacing(&mut self, spot: &Instance) {
        self.add(Usage {
            instance_id: planned_id(&spot.id),
            ..Usage::of(spot)
        });
    }

    /// The `commitments` section: now, and after the cycle's plans so far.
    pub fn summary(&self) -> Option<Summary> {
        if self.unknown {
            return Some(Summary {
                unknown: true,
                ..Summary::default()
            });
        }
        let s = self.state.as_ref()?;
        Some(Summary::of(&s.commitments, &s.before, &s.current))
    }

    /// The ledger after `plans`: each new swap of an on-demand original to spot removes it,
    /// each on-demand launch replacing spot adds one, as the planner recorded them.
    pub fn after_plans(mut self, snapshot: &RegionSnapshot, plans: &[GroupPlan]) -> Self {
        for (purchase, original) in moves(snapshot, plans) {
            match (purchase, original.lifecycle) {
                (Purchase::Spot, Lifecycle::OnDemand) => self.remove(&original.id),
                (Purchase::OnDemand, Lifecycle::Spot) => self.add_replacing(original),
                _ => {}
            }
        }
        self
    }

    /// The ledger without `plans`: [`Ledger::after_plans`] undone, for a group planned again
    /// (the adapter's preflight) against what the cycle planned for every other group.
    pub fn without_plans(mut self, snapshot: &RegionSnapshot, plans: &[GroupPlan]) -> Self {
        let Some(s) = self.state.as_mut() else {
            return self;
        };
        let mut changed = false;
        for (purchase, original) in moves(snapshot, plans) {
            match (purchase, original.lifecycle) {
                (Purchase::Spot, Lifecycle::OnDemand) => changed |= s.removed.remove(&original.id),
                (Purchase::OnDemand, Lifecycle::Spot) => {
                    let id = planned_id(&original.id);
                    let before = s.added.len();
                    s.added.retain(|a| a.instance_id != id);
                    changed |= s.added.len() != before;
                }
                _ => {}
            }
        }
        if changed {
            s.current = s.cover(&s.removed, &s.added);
        }
        self
    }
}

/// Each launch of `plans` with the original it replaces: the purchase option and the original.
fn moves<'a>(
    snapshot: &'a RegionSnapshot,
    plans: &'a [GroupPlan],
) -> impl Iterator<Item = (Purchase, &'a Instance)> + 'a {
    plans
        .iter()
        .flat_map(|p| p.actions.iter())
        .filter_map(|a| match &a.kind {
            ActionKind::Launch(spec) => Some((spec.purchase, snapshot.instances.get(&spec.replaces)?)),
            _ => None,
        })
}

/// The `commitments` section of `spotswap plan` (table and JSON), and the EMF figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    /// The commitments could not be read (`CommitmentsUnknown`): nothing else is filled in.
    pub unknown: bool,
    /// RI units per family, in AWS's normalized units (small = 1).
    pub families: Vec<FamilyUnits>,
    /// Per Savings Plan, USD per hour.
    pub savings_plans: Vec<PlanDollars>,
}

/// One family's RI units.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FamilyUnits {
    /// The family, e.g. `m5`.
    pub family: String,
    /// Units owned.
    pub owned: f64,
    /// Units covering running usage now.
    pub used_now: f64,
    /// Units owned and unused now.
    pub unused_now: f64,
    /// Units covering usage after the plan.
    pub used_after: f64,
    /// Units unused after the plan.
    pub unused_after: f64,
}

/// One Savings Plan's commitment and use.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanDollars {
    /// `savingsPlanId`.
    pub id: String,
    /// `Compute` or `EC2Instance`.
    pub kind: String,
    /// Commitment, USD per hour.
    pub commitment_per_hour: f64,
    /// Used now, USD per hour.
    pub used_now_per_hour: f64,
    /// Used after the plan, USD per hour.
    pub used_after_per_hour: f64,
}

/// Quarter-units as AWS's normalized units (exact: a multiple of 0.25).
fn normalized(quarters: u64) -> f64 {
    quarters as f64 / QUARTER as f64
}

impl Summary {
    fn of(commitments: &Commitments, now: &Coverage, after: &Coverage) -> Self {
        let mut fams: BTreeMap<&str, (u64, u64, u64)> = BTreeMap::new();
        for r in &now.reserved {
            let e = fams.entry(r.family.as_str()).or_default();
            e.0 += r.owned_units;
            e.1 += r.used_units;
        }
        for r in &after.reserved {
            fams.entry(r.family.as_str()).or_default().2 += r.used_units;
        }
        let families = fams
            .into_iter()
            .map(|(f, (owned, used, used_after))| FamilyUnits {
                family: f.to_string(),
                owned: normalized(owned),
                used_now: normalized(used),
                unused_now: normalized(owned - used),
                used_after: normalized(used_after),
                unused_after: normalized(owned.saturating_sub(used_after)),
            })
            .collect();
        let savings_plans = now
            .plans
            .iter()
            .map(|p| PlanDollars {
                id: p.id.clone(),
                kind: match commitments
                    .savings_plans
                    .iter()
                    .find(|s| s.id == p.id)
                    .map(|s| &s.kind)
                {
                    Some(PlanKind::Ec2Instance { .. }) => "EC2Instance".to_string(),
                    _ => "Compute".to_string(),
                },
                commitment_per_hour: dollars(p.commitment_micros),
                used_now_per_hour: dollars(p.used_micros),
                used_after_per_hour: dollars(
                    after
                        .plans
                        .iter()
                        .find(|a| a.id == p.id)
                        .map_or(0, |a| a.used_micros),
                ),
            })
            .collect();
        Self {
            unknown: false,
            families,
            savings_plans,
        }
    }

    /// RI units unused now, in normalized units (EMF `CommitmentUnusedUnits`).
    pub fn unused_units(&self) -> f64 {
        self.families.iter().map(|f| f.unused_now).sum()
    }

    /// Savings Plan commitment unused now, USD per hour (EMF `CommitmentUnusedPerHour`).
    pub fn unused_per_hour(&self) -> f64 {
        self.savings_plans
            .iter()
            .map(|p| (p.commitment_per_hour - p.used_now_per_hour).max(0.0))
            .sum()
    }
}
