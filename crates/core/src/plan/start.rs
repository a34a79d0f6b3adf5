//! The launches of the swaps a group starts: each chosen original in turn, unless its weight
//! would take the group's on-demand below the floor or its removal would leave a commitment
//! unused, until `replace-per-cycle` have started; each launch's pool counts toward the next.

use super::launch::launch_for;
use super::originals;
use crate::action::{Action, ActionKind, Reason};
use crate::candidates::{PoolCounts, RankedPools, SearchContext};
use crate::commitments::Ledger;
use crate::model::{GroupSnapshot, LaunchTemplateRef, Market};
use crate::policy::Policy;
use crate::records::GroupRecords;
use crate::time::Timestamp;

/// What starting a group's swaps reads, besides the originals and the pool counts.
pub(super) struct GroupInputs<'a> {
    pub(super) group: &'a GroupSnapshot,
    pub(super) template: &'a LaunchTemplateRef,
    pub(super) market: &'a Market,
    pub(super) policy: &'a Policy,
    pub(super) records: &'a GroupRecords,
    /// The risk floor: the spot count the group heads for is at least desired − floor.
    pub(super) floor: u32,
    pub(super) now: Timestamp,
}

/// A Launch for each chosen original in turn until `to_start` have started, or the Wait
/// saying why an original has none. Each launch's pool counts toward the cap of the next.
pub(super) fn start_swaps(
    inputs: &GroupInputs<'_>,
    chosen: originals::Originals<'_>,
    mut counts: PoolCounts,
    ledger: &mut Ledger,
) -> Vec<Action> {
    let mut actions = Vec::new();
    let target_spot = (counts.total() + 1).max(inputs.group.desired - inputs.floor);
    let ranked = RankedPools::default();
    let mut started = 0;
    let mut units_left = chosen.units_above_floor;
    let mut too_heavy = false;
    for original in chosen.eligible {
        if started == chosen.to_start {
            break;
        }
        // A weighted original heavier than the on-demand units above the floor stays: its
        // swap would take the group's on-demand below the floor.
        let units = inputs.group.units_of(original);
        if units > units_left {
            too_heavy = true;
            continue;
        }
        if let Some(c) = ledger.wasted_by_removing(&original.id) {
            let wait = Action::new(ActionKind::Wait, Reason::CommitmentCovered, &inputs.group.name);
            actions.push(wait.instance(&original.id).pool(original.pool()).commitment(c));
            continue;
        }
        let ctx = SearchContext {
            market: inputs.market,
            policy: inputs.policy,
            records: inputs.records,
            counts: &counts,
            target_spot,
            now: inputs.now,
            ranked: Some(&ranked),
        };
        match launch_for(
            inputs.group,
            inputs.template,
            original,
            ctx,
            None,
            Reason::OnDemandAboveFloor,
        ) {
            Ok(action) => {
                ledger.remove(&original.id);
                if let Some(pool) = &action.pool {
                    counts.add(pool.clone());
                }
                actions.push(action);
                started += 1;
                units_left -= units;
            }
            Err(wait) => actions.push(wait),
        }
    }
    if started == 0 && too_heavy {
        // Every on-demand original weighs more than the units above the floor: at the floor.
        actions.push(Action::new(
            ActionKind::Wait,
            Reason::AtRiskFloor,
            &inputs.group.name,
        ));
    }
    actions
}
