//! The invariants every plan keeps.

use super::*;

/// DESIGN.md §8 invariants, checked on one plan of one generated group.
pub(super) fn check_plan(fleet: &Fleet, plan: &GroupPlan) -> Result<(), TestCaseError> {
    let g = &fleet.group;
    let instances = &fleet.instances;
    let member = |id: &str| g.members.iter().find(|m| m.id == id);

    // (f) an unmanaged group, or one whose `spotswap:enabled` is bad, gets no mutating action;
    // one with another bad tag starts no swap (its swaps in flight may still advance)
    let policy = match is_managed(&g.tags, fleet.mode) {
        Ok(true) => Policy::from_tags(&g.tags, &Policy::default()),
        Ok(false) => {
            prop_assert_eq!(skip_reason(plan), Some(Reason::NotManaged));
            prop_assert!(!plan.actions.iter().any(|a| a.kind.is_mutating()));
            return Ok(());
        }
        Err(_) => {
            prop_assert_eq!(skip_reason(plan), Some(Reason::InvalidConfig));
            prop_assert!(!plan.actions.iter().any(|a| a.kind.is_mutating()));
            return Ok(());
        }
    };
    let policy = match policy {
        Ok(p) => p,
        Err(_) => {
            prop_assert_eq!(skip_reason(plan), Some(Reason::InvalidConfig));
            prop_assert!(!plan
                .actions
                .iter()
                .any(|a| matches!(a.kind, ActionKind::Launch(_))));
            return Ok(());
        }
    };

    let in_service = g
        .members
        .iter()
        .filter(|m| m.state == MemberState::InService)
        .count() as u32;
    let od_in_service: Vec<&Member> = g
        .members
        .iter()
        .filter(|m| m.state == MemberState::InService)
        .filter(|m| {
            instances
                .get(&m.id)
                .is_some_and(|i| i.lifecycle == Lifecycle::OnDemand)
        })
        .collect();
    // the floor, from DESIGN.md §3's formula, not from the crate
    let above = u64::from(g.desired.saturating_sub(policy.on_demand_base));
    let floor = (u64::from(policy.on_demand_base)
        + (above * u64::from(policy.on_demand_percent)).div_ceil(100))
    .min(u64::from(g.desired)) as u32;

    let ours = |i: &&Instance| i.tag(tags::GROUP) == Some(GROUP) && i.state != InstanceState::Gone;
    let ended: BTreeSet<&str> = plan
        .actions
        .iter()
        .filter_map(|a| match &a.kind {
            ActionKind::TerminateLaunch { instance } => Some(instance.as_str()),
            _ => None,
        })
        .collect();
    let retired: Vec<(&str, &str)> = plan
        .actions
        .iter()
        .filter_map(|a| match &a.kind {
            ActionKind::Retire {
                instance,
                replacement,
            } => Some((instance.as_str(), replacement.as_str())),
            _ => None,
        })
        .collect();
    let launched: Vec<&str> = launched_for(plan);

    // (a) a Retire only ever leaves an InService, healthy replacement, with the group at capacity
    for (instance, replacement) in &retired {
        let r = member(replacement);
        prop_assert!(
            r.is_some_and(|r| r.state == MemberState::InService && r.healthy),
            "retire {} for {} which is {:?}",
            instance,
            replacement,
            r
        );
        prop_assert!(
            in_service >= g.desired,
            "retire with {} InService < desired {}",
            in_service,
            g.desired
        );
        prop_assert!(member(instance).is_some(), "retire of non-member {}", instance);
        prop_assert!(instance != replacement);
    }
    // each instance is retired at most once
    let retired_set: BTreeSet<&str> = retired.iter().map(|(i, _)| *i).collect();
    prop_assert_eq!(retired_set.len(), retired.len());

    // (b) new launches never take on-demand below the floor, counting swaps in flight: an
    //     InService on-demand original with a live launch of ours that is neither ended by
    //     this plan nor leaving the group
    let in_flight = od_in_service
        .iter()
        .filter(|m| {
            instances.values().filter(ours).any(|l| {
                l.replaces() == Some(m.id.as_str())
                    && !ended.contains(l.id.as_str())
                    && member(&l.id).is_none_or(|lm| lm.state != MemberState::Leaving)
            })
        })
        .count() as u32;
    // on-demand launches restore the floor; only spot launches can take on-demand below it
    let spot_launches = plan
        .actions
        .iter()
        .filter(|a| matches!(&a.kind, ActionKind::Launch(s) if s.purchase == spotswap_core::Purchase::Spot))
        .count() as u32;
    let od_launches = launched.len() as u32 - spot_launches;
    prop_assert!(
        od_launches == 0 || od_in_service.len() as u32 - in_flight < floor,
        "on-demand launches {} with {} on-demand staying at floor {}",
        od_launches,
        od_in_service.len() as u32 - in_flight,
        floor
    );
    prop_assert!(
        spot_launches == 0 || od_launches == 0,
        "both directions in one plan"
    );
    let n_launches = launched.len() as u32;
    prop_assert!(
        spot_launches == 0 || od_in_service.len() as u32 >= in_flight + spot_launches + floor,
        "od {} in flight {} launches {} floor {}",
        od_in_service.len(),
        in_flight,
        n_launches,
        floor
    );

    // (c) launches ≤ replace-per-cycle
    prop_assert!(n_launches <= policy.replace_per_cycle);

    // (d) no instance is both launched for and retired, and none is launched for twice
    let launched_set: BTreeSet<&str> = launched.iter().copied().collect();
    prop_assert_eq!(launched_set.len(), launched.len());
    prop_assert!(launched_set.is_disjoint(&retired_set));

    // every launch is for an eligible instance, with no live launch of ours already: an
    // on-demand original for a spot launch, a spot one for an on-demand launch (the floor)
    let replaced_lifecycle = if od_launches > 0 {
        Lifecycle::Spot
    } else {
        Lifecycle::OnDemand
    };
    for id in &launched {
        let m = member(id).unwrap();
        let i = &instances[*id];
        prop_assert!(m.state == MemberState::InService && m.healthy && !m.protected_from_scale_in);
        prop_assert!(i.lifecycle == replaced_lifecycle && i.state == InstanceState::Running);
        prop_assert!(i.termination_protected != Some(true));
        prop_assert!(!instances.values().filter(ours).any(|l| l.replaces() == Some(*id)));
    }
    if n_launches > 0 {
        prop_assert!(in_service >= g.desired);
        prop_assert!(skip_reason(plan).is_none());
    }

    // (g) only our own launches, outside the group, are attached or terminated directly:
    //     TerminateInstances on a member would drop capacity without decrementing desired
    for a in &plan.actions {
        let target = match &a.kind {
            ActionKind::TerminateLaunch { instance } | ActionKind::MarkAttached { instance } => instance,
            ActionKind::Attach { instance, .. } => instance,
            _ => continue,
        };
        let i = instances.get(target.as_str());
        prop_assert!(
            i.is_some_and(|i| i.tag(tags::GROUP) == Some(GROUP)),
            "{:?} on an instance not ours",
            a
        );
        if let ActionKind::TerminateLaunch { .. } | ActionKind::Attach { .. } = &a.kind {
            prop_assert!(member(target).is_none(), "{:?} on a member", a);
        }
        if let ActionKind::Attach { replaces, .. } = &a.kind {
            let i = i.unwrap();
            prop_assert!(i.state == InstanceState::Running && i.status_ok == Some(true));
            prop_assert!(member(replaces).is_some_and(|m| m.state != MemberState::Leaving));
        }
    }
    // MaxSize is raised before any attach that would not fit
    let attaches = plan
        .actions
        .iter()
        .filter(|a| matches!(a.kind, ActionKind::Attach { .. }))
        .count() as u32;
    if g.desired + attaches > g.max_size {
        let raised = plan
            .actions
            .iter()
            .position(|a| matches!(a.kind, ActionKind::RaiseMax { .. }));
        let first_attach = plan
            .actions
            .iter()
            .position(|a| matches!(a.kind, ActionKind::Attach { .. }));
        prop_assert!(raised < first_attach && raised.is_some());
        if let Some(ActionKind::RaiseMax { to, .. }) = raised.map(|i| &plan.actions[i].kind) {
            prop_assert!(*to >= g.desired + attaches);
        }
    }

    // MaxSize is restored only with no swap left in flight and desired within the original
    if let Some(to) = plan.actions.iter().find_map(|a| match a.kind {
        ActionKind::RestoreMax { to } => Some(to),
        _ => None,
    }) {
        prop_assert_eq!(
            Some(to.to_string()),
            g.tags.get(tags::MAX_RAISED_FROM).map(|v| v.trim().to_string())
        );
        prop_assert!(g.desired <= to);
        prop_assert!(attaches == 0);
        let live = |m: Option<&Member>| m.is_some_and(|m| m.state != MemberState::Leaving);
        let swap_in_flight = instances.values().filter(ours).any(|l| {
            !ended.contains(l.id.as_str())
                && member(&l.id).is_none_or(|lm| lm.state != MemberState::Leaving)
                && live(l.replaces().and_then(&member))
        });
        prop_assert!(!swap_in_flight, "RestoreMax with a swap in flight");
    }

    // nothing touches an instance of another group's launch
    for a in &plan.actions {
        if let Some(id) = a.instance.as_deref() {
            let foreign = instances
                .get(id)
                .is_some_and(|i| i.tag(tags::GROUP).is_some_and(|g| g != GROUP));
            prop_assert!(!foreign, "{:?} touches a foreign launch", a);
        }
    }
    Ok(())
}
