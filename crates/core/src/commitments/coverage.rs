//! EC2's billing order, as one pure function: which running on-demand usage each commitment
//! covers this hour.
//!
//! 1. Zonal RIs: the exact type in the exact AZ, same platform and tenancy, whole instances.
//! 2. Regional RIs: for Linux/UNIX on shared tenancy, size-flexible within the family through
//!    the normalization factors, smallest instances first (an instance may be covered in
//!    part); otherwise the exact type, in any AZ, whole instances.
//! 3. Savings Plans, EC2 Instance plans before Compute plans, each applied to the uncovered
//!    usage at its own rates, highest discount first, until its commitment is spent.
//!
//! The answer depends on the inputs as sets, not lists: they are put in a canonical order
//! first, so two snapshots that list the same instances differently cover them the same way.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{family, Commitments, Normalizer, PlanKind, Usage};
use crate::time::Timestamp;

/// What one RI purchase covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReservedUse {
    /// `ReservedInstancesId`.
    pub id: String,
    /// The family of its type.
    pub family: String,
    /// Units it owns: count × the type's factor in quarter-units, or the count of instances
    /// for a type outside the factor table.
    pub owned_units: u64,
    /// Units of running usage it covers.
    pub used_units: u64,
}

/// What one Savings Plan covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlanUse {
    /// `savingsPlanId`.
    pub id: String,
    /// Commitment, micro-dollars per hour.
    pub commitment_micros: u64,
    /// Commitment spent on running usage, micro-dollars per hour.
    pub used_micros: u64,
}

/// How one instance is covered.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct InstanceCover {
    /// Its size: the factor in quarter-units (1 for a type outside the table).
    pub size: u64,
    /// Of `size`, the units RIs cover.
    pub reserved_units: u64,
    /// Commitment spent on it by Savings Plans, micro-dollars per hour.
    pub plan_micros: u64,
    /// Of `size`, the units no commitment covers: billed on-demand.
    pub uncovered: u64,
    /// The commitments covering it (RI ids, then plan ids), in the order they were applied.
    pub by: Vec<String>,
}

/// Every commitment's use and every covered instance.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Coverage {
    /// Per RI purchase, by id.
    pub reserved: Vec<ReservedUse>,
    /// Per Savings Plan, by id.
    pub plans: Vec<PlanUse>,
    /// Instances with any coverage, by id.
    pub instances: BTreeMap<String, InstanceCover>,
}

impl Coverage {
    /// RI units owned and not covering anything.
    pub fn unused_units(&self) -> u64 {
        self.reserved.iter().map(|r| r.owned_units - r.used_units).sum()
    }

    /// Savings Plan commitment not spent, micro-dollars per hour.
    pub fn unused_micros(&self) -> u64 {
        self.plans
            .iter()
            .map(|p| p.commitment_micros - p.used_micros)
            .sum()
    }

    /// RI units covering running usage.
    pub fn used_units(&self) -> u64 {
        self.reserved.iter().map(|r| r.used_units).sum()
    }
}

/// One instance being covered.
struct Slot<'a> {
    u: &'a Usage,
    /// Factor in quarter-units; `None` outside the table (then the instance counts as 1).
    size: Option<u64>,
    /// Units not yet covered.
    left: u64,
    cover: InstanceCover,
}

impl Slot<'_> {
    fn full(&self) -> u64 {
        self.size.unwrap_or(1)
    }

    fn untouched(&self) -> bool {
        self.left == self.full()
    }

    fn take(&mut self, units: u64, by: &str) {
        self.left -= units;
        self.cover.reserved_units += units;
        if self.cover.by.last().is_none_or(|b| b != by) {
            self.cover.by.push(by.to_string());
        }
    }
}

/// Cover `usage` with `commitments` at `now`, in EC2's billing order. `on_demand_micros`
/// (on-demand price per type) ranks Savings Plan discounts; a type without one ranks last.
pub fn cover(
    commitments: &Commitments,
    usage: &[Usage],
    on_demand_micros: &BTreeMap<String, u64>,
    norm: &Normalizer,
    now: Timestamp,
) -> Coverage {
    let mut sorted: Vec<&Usage> = usage.iter().collect();
    sorted.sort();
    sorted.dedup_by(|a, b| a.instance_id == b.instance_id);
    let mut slots: Vec<Slot<'_>> = sorted
        .into_iter()
        .map(|u| {
            let size = norm.units(&u.instance_type);
            Slot {
                u,
                size,
                left: size.unwrap_or(1),
                cover: InstanceCover {
                    size: size.unwrap_or(1),
                    ..InstanceCover::default()
                },
            }
        })
        .collect();

    let mut ris: Vec<_> = commitments
        .reserved
        .iter()
        .filter(|r| r.start <= now && now < r.end && r.count > 0)
        .collect();
    ris.sort_by(|a, b| a.id.cmp(&b.id));
    let mut reserved = Vec::new();
    let flexible = |r: &super::ReservedInstances| {
        r.az.is_none()
            && r.platform == super::LINUX_UNIX
            && r.tenancy == super::DEFAULT_TENANCY
            && norm.units(&r.instance_type).is_some()
    };

    // 1. zonal, then 2a. regional of an exact type: whole instances.
    for zonal in [true, false] {
        for r in ris.iter().filter(|r| r.az.is_some() == zonal && !flexible(r)) {
            let mut left = r.count;
            for s in slots.iter_mut() {
                if left == 0 {
                    break;
                }
                if s.untouched()
                    && s.u.instance_type == r.instance_type
                    && r.az.as_ref().is_none_or(|az| *az == s.u.az)
                    && s.u.platform == r.platform
                    && s.u.tenancy == r.tenancy
                {
                    let all = s.left;
                    s.take(all, &r.id);
                    left -= 1;
                }
            }
            let unit = norm.units(&r.instance_type).unwrap_or(1);
            reserved.push(ReservedUse {
                id: r.id.clone(),
                family: family(&r.instance_type).to_string(),
                owned_units: u64::from(r.count) * unit,
                used_units: u64::from(r.count - left) * unit,
            });
        }
    }

    // 2b. regional, size-flexible: the family's units pooled, smallest instances first.
    let mut by_family: BTreeMap<&str, Vec<(&super::ReservedInstances, u64)>> = BTreeMap::new();
    for r in ris.iter().copied().filter(|r| flexible(r)) {
        let units = u64::from(r.count) * norm.units(&r.instance_type).unwrap_or(0);
        by_family
            .entry(family(&r.instance_type))
            .or_default()
            .push((r, units));
    }
    for (fam, pool) in &mut by_family {
        let mut order: Vec<usize> = (0..slots.len())
            .filter(|&i| {
                let s = &slots[i];
                s.left > 0 && s.size.is_some() && s.u.size_flexible() && family(&s.u.instance_type) == *fam
            })
            .collect();
        order.sort_by_key(|&i| (slots[i].size, i));
        let mut ri = 0;
        for i in order {
            while slots[i].left > 0 && ri < pool.len() {
                let (r, left) = &mut pool[ri];
                let take = slots[i].left.min(*left);
                slots[i].take(take, &r.id);
                *left -= take;
                if *left == 0 {
                    ri += 1;
                }
            }
        }
        for (r, left) in pool.iter() {
            let owned = u64::from(r.count) * norm.units(&r.instance_type).unwrap_or(0);
            reserved.push(ReservedUse {
                id: r.id.clone(),
                family: fam.to_string(),
                owned_units: owned,
                used_units: owned - left,
            });
        }
    }
    reserved.sort_by(|a, b| a.id.cmp(&b.id));

    // 3. Savings Plans: EC2 Instance plans first, then Compute; each highest discount first.
    let mut plans: Vec<_> = commitments
        .savings_plans
        .iter()
        .filter(|p| p.start <= now && now < p.end)
        .collect();
    plans.sort_by(|a, b| {
        let key = |p: &super::SavingsPlan| matches!(p.kind, PlanKind::Compute);
        key(a).cmp(&key(b)).then(a.id.cmp(&b.id))
    });
    let mut plan_uses = Vec::new();
    for p in plans {
        let rates: BTreeMap<(&str, &str, &str), u64> = p
            .rates
            .iter()
            .map(|r| {
                (
                    (r.instance_type.as_str(), r.platform.as_str(), r.tenancy.as_str()),
                    r.rate_micros,
                )
            })
            .collect();
        let mut eligible: Vec<(u64, usize, u64)> = slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.left > 0)
            .filter(|(_, s)| match &p.kind {
                PlanKind::Compute => true,
                PlanKind::Ec2Instance { family: f } => family(&s.u.instance_type) == f,
            })
            .filter_map(|(i, s)| {
                let rate = *rates.get(&(
                    s.u.instance_type.as_str(),
                    s.u.platform.as_str(),
                    s.u.tenancy.as_str(),
                ))?;
                // Discount in parts per million of the on-demand price; unknown ranks last.
                let discount = on_demand_micros
                    .get(&s.u.instance_type)
                    .filter(|od| **od > rate)
                    .map_or(0, |od| (od - rate) * 1_000_000 / od);
                Some((discount, i, rate))
            })
            .collect();
        eligible.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let mut remaining = p.commitment_micros;
        for (_, i, rate) in eligible {
            if remaining == 0 {
                break;
            }
            let s = &mut slots[i];
            let full = s.full();
            let cost = (rate * s.left).div_ceil(full);
            let spent = if cost <= remaining {
                s.left = 0;
                cost
            } else {
                // The rest of the commitment covers part of the instance's hour.
                let units = (remaining * full).checked_div(rate).unwrap_or(s.left);
                s.left -= units.min(s.left);
                remaining
            };
            remaining -= spent;
            s.cover.plan_micros += spent;
            s.cover.by.push(p.id.clone());
        }
        plan_uses.push(super::coverage::PlanUse {
            id: p.id.clone(),
            commitment_micros: p.commitment_micros,
            used_micros: p.commitment_micros - remaining,
        });
    }
    plan_uses.sort_by(|a, b| a.id.cmp(&b.id));

    Coverage {
        reserved,
        plans: plan_uses,
        instances: slots
            .into_iter()
            .filter(|s| !s.cover.by.is_empty())
            .map(|s| {
                let mut c = s.cover;
                c.uncovered = s.left;
                (s.u.instance_id.clone(), c)
            })
            .collect(),
    }
}
