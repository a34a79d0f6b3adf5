//! Choosing the originals of new swaps: InService on-demand members above the risk floor that
//! may be replaced, those of the AZ holding the most on-demand first, then the oldest.

use std::collections::{BTreeMap, BTreeSet};

use super::index::Launches;
use crate::action::Reason;
use crate::model::{GroupSnapshot, Instance, InstanceState, Lifecycle, Member, MemberState};

/// The group's serving members (InService or Pending) that EC2 shows, with their instances.
pub(crate) fn serving<'g, 'i>(
    group: &'g GroupSnapshot,
    instances: &'i BTreeMap<String, Instance>,
) -> Vec<(&'g Member, &'i Instance)> {
    group
        .members
        .iter()
        .filter(|m| m.state == MemberState::InService || m.state == MemberState::Pending)
        .filter_map(|m| instances.get(&m.id).map(|i| (m, i)))
        .collect()
}

/// The originals new swaps may start for, in the order to try them.
#[derive(Debug)]
pub(crate) struct Originals<'i> {
    /// Eligible on-demand instances, best first.
    pub eligible: Vec<&'i Instance>,
    /// How many swaps may start: the on-demand above the floor, at most `replace-per-cycle`.
    pub to_start: u32,
    /// The on-demand units above the floor: a swap of an original of more units must not
    /// start ([`GroupSnapshot::units`]; without weights, the same as the count).
    pub units_above_floor: u32,
}

/// The originals to replace this cycle, or, when none may be, the reason of the Wait saying
/// why (`None` when there is nothing to say).
///
/// On-demand members whose swap is in flight count as leaving: the floor is kept over those
/// that stay. An eligible original is healthy, not protected from scale-in or from termination,
/// running, and not already being replaced. At the floor, the Wait is `AtRiskFloor`, given when
/// the group has on-demand members and none of them is being swapped; above it with every
/// candidate protected, `InstanceProtected`, or the group would look stuck with nothing in the
/// log.
pub(crate) fn choose_originals<'i>(
    snapshot: &GroupSnapshot,
    serving: &[(&Member, &'i Instance)],
    in_flight: &BTreeSet<&str>,
    launches: &Launches<'_>,
    floor: u32,
    replace_per_cycle: u32,
) -> Result<Originals<'i>, Option<Reason>> {
    let group = snapshot.name.as_str();
    let on_demand: Vec<&(&Member, &Instance)> = serving
        .iter()
        .filter(|(m, i)| m.state == MemberState::InService && i.lifecycle == Lifecycle::OnDemand)
        .collect();
    let od_in_flight = on_demand
        .iter()
        .filter(|(m, _)| in_flight.contains(m.id.as_str()))
        .count() as u32;
    // Counted in capacity units: the floor is.
    let od_staying: u32 = on_demand
        .iter()
        .filter(|(m, _)| !in_flight.contains(m.id.as_str()))
        .map(|(_, i)| snapshot.units_of(i))
        .sum();
    let available = od_staying.saturating_sub(floor);
    if available == 0 {
        return Err((od_in_flight == 0 && !on_demand.is_empty()).then_some(Reason::AtRiskFloor));
    }
    let to_start = available.min(replace_per_cycle);

    // Prefer AZs holding the most on-demand, then the oldest instances.
    let eligible = replaceable(group, serving, in_flight, launches, Lifecycle::OnDemand);
    if eligible.is_empty() {
        let protected = on_demand.iter().any(|(m, i)| {
            !in_flight.contains(m.id.as_str())
                && (m.protected_from_scale_in || i.termination_protected == Some(true))
        });
        return Err(protected.then_some(Reason::InstanceProtected));
    }
    Ok(Originals {
        eligible,
        to_start,
        units_above_floor: available,
    })
}

/// How many on-demand units the group lacks for its floor: InService on-demand members not
/// being replaced, plus on-demand launches on their way (`od_arriving`, in units), against
/// `floor` (without weights, instances).
pub(crate) fn floor_deficit(
    group: &GroupSnapshot,
    serving: &[(&Member, &Instance)],
    replacing: &BTreeSet<&str>,
    od_arriving: u32,
    floor: u32,
) -> u32 {
    let staying = serving
        .iter()
        .filter(|(m, i)| {
            m.state == MemberState::InService
                && i.lifecycle == Lifecycle::OnDemand
                && !replacing.contains(m.id.as_str())
        })
        .map(|(_, i)| group.units_of(i))
        .sum::<u32>();
    floor.saturating_sub(staying + od_arriving)
}

/// Members of `lifecycle` that a swap may replace, in the order to try them: InService,
/// healthy, not protected from scale-in or termination, running, not already being replaced;
/// of the AZ holding the most of them first, then the oldest.
pub(crate) fn replaceable<'i>(
    group: &str,
    serving: &[(&Member, &'i Instance)],
    replacing: &BTreeSet<&str>,
    launches: &Launches<'_>,
    lifecycle: Lifecycle,
) -> Vec<&'i Instance> {
    let mut per_az: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, i) in serving
        .iter()
        .filter(|(m, i)| m.state == MemberState::InService && i.lifecycle == lifecycle)
    {
        *per_az.entry(i.az.as_str()).or_default() += 1;
    }
    let mut out: Vec<&Instance> = serving
        .iter()
        .filter(|(m, i)| {
            m.state == MemberState::InService
                && i.lifecycle == lifecycle
                && m.healthy
                && !m.protected_from_scale_in
                && i.termination_protected != Some(true)
                && i.state == InstanceState::Running
                && !replacing.contains(m.id.as_str())
                && !launches.contains_key(m.id.as_str())
                // another group's launch attached here is not ours to replace
                && i.launched_for().is_none_or(|g| g == group)
        })
        .map(|(_, i)| *i)
        .collect();
    out.sort_by(|a, b| {
        per_az[b.az.as_str()]
            .cmp(&per_az[a.az.as_str()])
            .then(a.launch_time.cmp(&b.launch_time))
            .then(a.id.cmp(&b.id))
    });
    out
}
