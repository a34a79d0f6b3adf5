//! The on-demand direction: an on-demand instance launched from the group's own template to
//! replace a spot member, through the same Launch → Attach → Retire stages. One path for both
//! reasons to go that way: the risk floor (`BelowRiskFloor`) and a commitment that sits unused
//! under `spotswap:commitments=fill` (`CommitmentUnused`).
//!
//! Also the group's [`Census`], whose savings figure leaves out what a commitment would have
//! covered.

use std::collections::{BTreeMap, BTreeSet};

use super::index::Launches;
use super::{launch, originals, Census};
use crate::action::{Action, ActionKind, Reason};
use crate::commitments::{Ledger, Usage};
use crate::model::{GroupSnapshot, Instance, LaunchTemplateRef, Lifecycle, Market, Member};
use crate::policy::Policy;
use crate::tags;
use crate::time::Timestamp;

/// What a move toward on-demand reads of the group's plan.
pub(crate) struct Toward<'a> {
    pub(crate) group: &'a GroupSnapshot,
    pub(crate) template: &'a LaunchTemplateRef,
    pub(crate) market: &'a Market,
    pub(crate) serving: &'a [(&'a Member, &'a Instance)],
    pub(crate) replacing: &'a BTreeSet<&'a str>,
    pub(crate) launches: &'a Launches<'a>,
    pub(crate) now: Timestamp,
}

/// On-demand launches replacing spot members, at most `n`: of the AZ holding the most spot
/// first, then the oldest, each one `accept` takes (`Some(commitment)`, the commitment the
/// decision is about, if any); each a Launch with `reason`. With no spot member that may be
/// replaced (protected, unhealthy, in flight), a Wait with `reason` when `wait_if_none`.
pub(crate) fn replace_spot(
    t: &Toward<'_>,
    n: u32,
    reason: Reason,
    wait_if_none: bool,
    mut accept: impl FnMut(&Instance) -> Option<Option<String>>,
) -> Vec<Action> {
    let spot: Vec<&Instance> =
        originals::replaceable(&t.group.name, t.serving, t.replacing, t.launches, Lifecycle::Spot);
    if spot.is_empty() {
        return if wait_if_none {
            vec![Action::new(ActionKind::Wait, reason, &t.group.name)]
        } else {
            Vec::new()
        };
    }
    let mut out = Vec::new();
    for i in spot {
        if out.len() == n as usize {
            break;
        }
        let Some(commitment) = accept(i) else { continue };
        let od = t.market.on_demand_price(&i.instance_type);
        let mut a = match launch::on_demand_launch_for(t.group, t.template, i, od, t.now) {
            Ok(a) | Err(a) => a,
        };
        if matches!(a.kind, ActionKind::Launch(_)) {
            a.reason = reason;
        }
        a.commitment = commitment;
        out.push(a);
    }
    out
}

/// `spotswap:commitments=fill`: on-demand launches replacing spot members whose own type would
/// use a commitment that sits unused, at most `n`, each recorded in the ledger so the next
/// (in this group or another) sees the units taken.
pub(crate) fn fill(t: &Toward<'_>, n: u32, ledger: &mut Ledger) -> Vec<Action> {
    if !ledger.has_unused() {
        return Vec::new();
    }
    replace_spot(t, n, Reason::CommitmentUnused, false, |i| {
        let c = ledger.filled_by_replacing(i)?;
        ledger.add_replacing(i);
        Some(Some(c))
    })
}

/// The group's counts. The savings figure is Σ (on-demand price of the instance replaced −
/// spot price) over spot members with both prices known, except where the on-demand original
/// would have run under a commitment that now sits unused: that swap saved nothing.
pub(crate) fn census(
    group: &GroupSnapshot,
    instances: &BTreeMap<String, Instance>,
    market: &Market,
    policy: &Policy,
    ledger: &Ledger,
) -> Census {
    let mut c = Census {
        desired: group.desired,
        floor: policy.required_on_demand(group.desired),
        ..Census::default()
    };
    // A scratch copy only while something sits unused: each covered original takes its units.
    let mut scratch = ledger.has_unused().then(|| ledger.clone());
    // Summed in id order: f64 addition is not associative, and AWS lists members in no fixed
    // order, so the same group must not give a savings figure that differs in the last digit.
    let mut members: Vec<&Member> = group.in_service().collect();
    members.sort_by(|a, b| a.id.cmp(&b.id));
    for m in members {
        let Some(i) = instances.get(&m.id) else { continue };
        match i.lifecycle {
            Lifecycle::OnDemand => c.on_demand += 1,
            Lifecycle::Spot => {
                c.spot += 1;
                // Against the instance it replaced: a larger replacement type saves what the
                // on-demand original cost, not what its own type would cost on-demand.
                let replaced = i.tag(tags::REPLACES_TYPE).unwrap_or(&i.instance_type);
                if let Some(l) = scratch.as_mut() {
                    let u = Usage {
                        instance_id: format!("census:{}", i.id),
                        instance_type: replaced.to_string(),
                        ..Usage::of(i)
                    };
                    if l.filled_by_adding(u.clone()).is_some() {
                        l.add(u);
                        continue;
                    }
                }
                if let (Some(od), Some(spot)) =
                    (market.on_demand_price(replaced), market.spot_price(&i.pool()))
                {
                    c.hourly_savings += (od - spot).max(0.0);
                }
            }
        }
    }
    c
}
