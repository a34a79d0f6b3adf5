//! The start gate: whether a group's new swaps may start this cycle, and if not, why.

use crate::action::{Reason, Skip};
use crate::model::GroupSnapshot;
use crate::plan::blockers;
use crate::policy::Policy;
use crate::records::GroupRecords;
use crate::time::Timestamp;

/// Why no new swap starts in a group this cycle.
pub(super) enum Hold {
    /// The group is passed over (sheltered); swaps in flight still advanced.
    Skip(Skip),
    /// A Wait says why.
    Wait(Reason),
    /// Nothing to say: nothing is asked of the group.
    Quiet,
}

/// Whether new swaps may start: not in a sheltered group (`Sheltered`), nor one with nothing
/// desired or `replace-per-cycle=0`, nor outside its window or paused (`OutsideSchedule`,
/// `Paused`), nor one whose launching hook would not run (`LaunchHookWouldNotRun`), nor with
/// processes a swap needs suspended (`ProcessesSuspended`), nor while its CloudFormation stack
/// is in progress (`StackUpdating`), nor while not every desired instance is InService
/// (`GroupBelowCapacity`).
pub(super) fn start_gate(
    group: &GroupSnapshot,
    records: &GroupRecords,
    policy: &Policy,
    in_service: u32,
    now: Timestamp,
) -> Result<(), Hold> {
    if records.sheltered(now) {
        return Err(Hold::Skip(Skip {
            group: group.name.clone(),
            reason: Reason::Sheltered,
            detail: records.sheltered_until.map(|t| format!("until {t}")),
        }));
    }
    if group.desired == 0 || policy.replace_per_cycle == 0 {
        return Err(Hold::Quiet);
    }
    if let Some(closed) = policy.window.closed(now) {
        // Both directions wait: a pause or a closed window means no new swap of any kind.
        let reason = match closed {
            crate::window::Closed::Paused(_) => Reason::Paused,
            crate::window::Closed::OutsideSchedule { .. } => Reason::OutsideSchedule,
        };
        return Err(Hold::Skip(Skip {
            group: group.name.clone(),
            reason,
            detail: Some(closed.detail()),
        }));
    }
    if let Some((reason, detail)) = blockers::launch_hook_blocker(group, policy) {
        // Only new swaps: one in flight finishes (its launch exists; unwinding it would
        // leave the group's capacity short for longer).
        return Err(Hold::Skip(Skip {
            group: group.name.clone(),
            reason,
            detail,
        }));
    }
    let suspended = blockers::suspended_for(group, blockers::SwapStep::Start);
    if !suspended.is_empty() {
        // A swap started now could not finish: its attach or its retire would wait.
        return Err(Hold::Skip(Skip {
            group: group.name.clone(),
            reason: Reason::ProcessesSuspended,
            detail: Some(format!("suspended: {}", suspended.join(", "))),
        }));
    }
    if let Some((reason, detail)) = blockers::stack_updating(group) {
        return Err(Hold::Skip(Skip {
            group: group.name.clone(),
            reason,
            detail,
        }));
    }
    if in_service < group.desired {
        return Err(Hold::Wait(Reason::GroupBelowCapacity));
    }
    Ok(())
}
