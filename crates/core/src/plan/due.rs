//! Replacements that are due whatever the windows say: an instance EC2 has scheduled for
//! retirement, a stop, a reboot or maintenance (`ScheduledChange`), and one whose group's
//! `MaxInstanceLifetime` is about to end it (`MaxInstanceLifetime`).
//!
//! The rebalancer starts these from its own reads (DescribeInstanceStatus, the group's
//! lifetime), so nothing depends on an AWS Health event being delivered; the Health handler
//! ([`crate::events::health`]) starts the same replacement, through [`forced_replacement`], when
//! the event does arrive. Whoever comes first launches; the other sees the launch in flight.

use std::collections::{BTreeMap, BTreeSet};

use crate::action::{Action, ActionKind, Purchase, Reason};
use crate::candidates::{PoolCounts, SearchContext};
use crate::model::{
    GroupSnapshot, Instance, InstanceState, LaunchTemplateRef, Lifecycle, Market, MemberState, ScheduledEvent,
};
use crate::plan::launch::{launch_for, on_demand_launch_for};
use crate::plan::Launches;
use crate::policy::Policy;
use crate::records::GroupRecords;
use crate::time::Timestamp;

/// How long before `MaxInstanceLifetime` ends an instance its swap starts: long enough for a
/// swap (launch, status checks, attach, grace, retire) to finish first, so Auto Scaling's own
/// lifetime replacement never races it.
pub const LIFETIME_MARGIN_SECS: i64 = 3_600;

/// Why `inst` is due for replacement now: a scheduled event of EC2 (`ScheduledChange`), or the
/// end of the group's `MaxInstanceLifetime` within [`LIFETIME_MARGIN_SECS`]
/// (`MaxInstanceLifetime`).
pub fn due(
    group: &GroupSnapshot,
    inst: &Instance,
    scheduled: Option<&ScheduledEvent>,
    now: Timestamp,
) -> Option<Reason> {
    if scheduled.is_some() {
        return Some(Reason::ScheduledChange);
    }
    let lifetime = i64::from(group.max_instance_lifetime_secs?);
    let ends = inst.launch_time.plus_secs(lifetime);
    (now.plus_secs(LIFETIME_MARGIN_SECS) >= ends).then_some(Reason::MaxInstanceLifetime)
}

/// The replacement of an instance that is going away whatever we do: spot in any pool (its
/// host or its age is the problem, not its pool), or on-demand of its own type in its own AZ
/// when the floor needs it (an on-demand instance with on-demand at or below the floor), when
/// a commitment covers it (`commitment`: the RI or plan its removal would leave unused; the
/// replacement then takes the coverage over, `CommitmentCovered`'s rule), the group is
/// sheltered, or no spot pool qualifies: capacity comes first. `instances` holds the group's
/// members (and may hold more).
#[allow(clippy::result_large_err, clippy::too_many_arguments)]
pub fn forced_replacement(
    group: &GroupSnapshot,
    template: &LaunchTemplateRef,
    policy: &Policy,
    records: &GroupRecords,
    instances: &BTreeMap<String, Instance>,
    original: &Instance,
    market: &Market,
    now: Timestamp,
    reason: Reason,
    commitment: Option<String>,
) -> Result<Action, Action> {
    let serving = |lc: Lifecycle| {
        group
            .members
            .iter()
            .filter(|m| matches!(m.state, MemberState::InService | MemberState::Pending))
            .filter_map(|m| instances.get(&m.id))
            .filter(move |i| i.lifecycle == lc)
    };
    // In capacity units, as the floor is: a spot replacement of an on-demand original takes
    // its units off the on-demand count.
    let on_demand: u32 = serving(Lifecycle::OnDemand).map(|i| group.units_of(i)).sum();
    let floor = policy.required_on_demand(group.desired);
    let commitment = commitment.filter(|_| original.lifecycle == Lifecycle::OnDemand);
    let needs_on_demand = records.sheltered(now)
        || commitment.is_some()
        || (original.lifecycle == Lifecycle::OnDemand && on_demand < floor + group.units_of(original));
    let od_price = market.on_demand_price(&original.instance_type);
    let on_demand_launch = || {
        on_demand_launch_for(group, template, original, od_price, now).map(|mut a| {
            a.reason = reason;
            a.commitment = commitment.clone();
            a
        })
    };
    if needs_on_demand {
        return on_demand_launch();
    }
    let mut counts = PoolCounts::default();
    for i in serving(Lifecycle::Spot) {
        counts.add(i.pool());
    }
    let ctx = SearchContext {
        market,
        policy,
        records,
        counts: &counts,
        target_spot: (counts.total() + u32::from(original.lifecycle == Lifecycle::OnDemand)).max(1),
        now,
        ranked: None,
    };
    launch_for(group, template, original, ctx, None, reason).or_else(|_| on_demand_launch())
}

/// What [`due_launches`] reads of the group's plan.
pub(crate) struct DueInputs<'a> {
    pub(crate) group: &'a GroupSnapshot,
    pub(crate) template: &'a LaunchTemplateRef,
    pub(crate) policy: &'a Policy,
    pub(crate) records: &'a GroupRecords,
    pub(crate) instances: &'a BTreeMap<String, Instance>,
    pub(crate) launches: &'a Launches<'a>,
    pub(crate) market: &'a Market,
    pub(crate) scheduled: &'a BTreeMap<String, ScheduledEvent>,
    pub(crate) now: Timestamp,
}

/// A forced replacement for each InService member that is [`due`], running, not protected
/// (from scale-in or termination) and not already being replaced (`replacing`, or a launch of
/// ours for it). Its Wait when none can be launched (`NoSubnet`). The ids acted on are added to
/// `replacing`, so the cycle's other swaps leave them alone. An on-demand member a commitment
/// covers is replaced on-demand; one replaced by spot leaves the `ledger`, so the cycle's later
/// swaps see the coverage it frees.
pub(crate) fn due_launches<'a>(
    inputs: &DueInputs<'a>,
    replacing: &mut BTreeSet<&'a str>,
    ledger: &mut crate::commitments::Ledger,
) -> Vec<Action> {
    let g = inputs.group;
    let mut out = Vec::new();
    for m in g.members.iter().filter(|m| m.state == MemberState::InService) {
        let Some(inst) = inputs.instances.get(&m.id) else {
            continue;
        };
        if replacing.contains(m.id.as_str())
            || inputs.launches.contains_key(m.id.as_str())
            || m.protected_from_scale_in
            || inst.termination_protected == Some(true)
            || inst.state != InstanceState::Running
        {
            continue;
        }
        let Some(reason) = due(g, inst, inputs.scheduled.get(&m.id), inputs.now) else {
            continue;
        };
        let od = inst.lifecycle == Lifecycle::OnDemand;
        let commitment = od.then(|| ledger.wasted_by_removing(&inst.id)).flatten();
        let action = forced_replacement(
            g,
            inputs.template,
            inputs.policy,
            inputs.records,
            inputs.instances,
            inst,
            inputs.market,
            inputs.now,
            reason,
            commitment,
        )
        .unwrap_or_else(|wait| wait);
        let to_spot = matches!(&action.kind, ActionKind::Launch(spec) if spec.purchase == Purchase::Spot);
        if od && to_spot {
            ledger.remove(&inst.id);
        }
        replacing.insert(m.id.as_str());
        out.push(action);
    }
    out
}

#[cfg(test)]
#[path = "due_tests.rs"]
mod tests;
