//! Spot-aware rollouts (`spotswap:replace-outdated=true`, FIXED): members launched from another
//! launch template, or another version of the group's, are replaced with today's version
//! through the same Launch → Attach → Retire stages (`OutdatedTemplate`), as Instance Refresh
//! would, but keeping spot and the risk floor in the picture. A replacement keeps its original's
//! purchase option: a spot member gets spot, an on-demand member gets on-demand where the floor
//! needs it or where the ledger says its commitment coverage would otherwise go unused (the
//! replacement, of its own type in its AZ, takes the coverage over), and spot where the ordinary
//! swap would have made it spot anyway. These swaps come out of `replace-per-cycle` first, and
//! wait for windows and pauses like any new swap.

use std::collections::BTreeSet;

use crate::action::{Action, Reason};
use crate::candidates::{PoolCounts, SearchContext};
use crate::commitments::Ledger;
use crate::model::{
    GroupSnapshot, Instance, InstanceState, LaunchTemplateRef, Lifecycle, Market, Member, MemberState,
};
use crate::plan::launch::{launch_for, on_demand_launch_for};
use crate::plan::Launches;
use crate::policy::Policy;
use crate::records::GroupRecords;
use crate::tags;
use crate::time::Timestamp;

/// True when `inst` was launched from another template than `template`, or another version
/// than `version_now`. An instance EC2 did not tag with its template (attached from elsewhere)
/// is not judged.
pub fn is_outdated(inst: &Instance, template: &LaunchTemplateRef, version_now: &str) -> bool {
    let Some(version) = inst.tag(tags::AWS_LT_VERSION) else {
        return false;
    };
    let other_template =
        matches!((inst.tag(tags::AWS_LT_ID), template.id.as_deref()), (Some(a), Some(b)) if a != b);
    other_template || version != version_now
}

/// The template `inst` is judged against: in a mixed-instances group the template of its
/// type's override when the override names one, else the group's. `None` when that is an
/// override's own template: only the version the group's template launches today is read, so
/// a member of another template cannot be judged (and must not be taken for outdated merely
/// for coming from its override's template).
fn judged_against<'a>(r: &Rollout<'a>, inst: &Instance) -> Option<&'a LaunchTemplateRef> {
    let Some(mixed) = &r.group.mixed else {
        return Some(r.template);
    };
    let own = crate::mixed::template_for(mixed, &inst.instance_type);
    (own == r.template).then_some(r.template)
}

/// What [`outdated_launches`] reads.
pub(crate) struct Rollout<'a> {
    pub(crate) group: &'a GroupSnapshot,
    pub(crate) template: &'a LaunchTemplateRef,
    pub(crate) policy: &'a Policy,
    pub(crate) records: &'a GroupRecords,
    pub(crate) market: &'a Market,
    pub(crate) launches: &'a Launches<'a>,
    /// The group's spot per pool, swaps in flight included.
    pub(crate) counts: &'a PoolCounts,
    pub(crate) floor: u32,
    pub(crate) now: Timestamp,
}

/// A Launch for each outdated InService member, oldest first, at most `budget`; a Wait where no
/// pool qualifies. The ids acted on join `replacing`; an on-demand member replaced by spot leaves
/// `ledger`. Nothing unless the group is tagged and its version today is known.
pub(crate) fn outdated_launches<'a>(
    r: &Rollout<'_>,
    serving: &[(&'a Member, &'a Instance)],
    replacing: &mut BTreeSet<&'a str>,
    budget: u32,
    ledger: &mut Ledger,
) -> Vec<Action> {
    let (true, Some(now_version)) = (r.policy.replace_outdated, r.group.template_version_now.as_deref())
    else {
        return Vec::new();
    };
    let mut outdated: Vec<&(&Member, &Instance)> = serving
        .iter()
        .filter(|(m, i)| {
            m.state == MemberState::InService
                && m.healthy
                && !m.protected_from_scale_in
                && i.termination_protected != Some(true)
                && i.state == InstanceState::Running
                && !replacing.contains(m.id.as_str())
                && !r.launches.contains_key(m.id.as_str())
                && judged_against(r, i).is_some_and(|t| is_outdated(i, t, now_version))
        })
        .collect();
    outdated.sort_by(|a, b| a.1.launch_time.cmp(&b.1.launch_time).then(a.1.id.cmp(&b.1.id)));
    // In capacity units, as the floor is.
    let mut on_demand: u32 = serving
        .iter()
        .filter(|(m, i)| m.state == MemberState::InService && i.lifecycle == Lifecycle::OnDemand)
        .map(|(_, i)| r.group.units_of(i))
        .sum();
    let mut counts = r.counts.clone();
    let mut out = Vec::new();
    for (m, inst) in outdated.into_iter().take(budget as usize) {
        let units = r.group.units_of(inst);
        let od = inst.lifecycle == Lifecycle::OnDemand;
        // On-demand in kind: for the floor, or for the commitment that covers the original.
        let commitment = od.then(|| ledger.wasted_by_removing(&inst.id)).flatten();
        let in_kind = od && (on_demand < r.floor + units || commitment.is_some());
        let action = if in_kind {
            let od_price = r.market.on_demand_price(&inst.instance_type);
            on_demand_launch_for(r.group, r.template, inst, od_price, r.now).map(|mut a| {
                a.reason = Reason::OutdatedTemplate;
                a.commitment = commitment;
                a
            })
        } else {
            let ctx = SearchContext {
                market: r.market,
                policy: r.policy,
                records: r.records,
                counts: &counts,
                target_spot: r.group.desired.saturating_sub(r.floor).max(1),
                now: r.now,
                ranked: None,
            };
            launch_for(r.group, r.template, inst, ctx, None, Reason::OutdatedTemplate)
        };
        match action {
            Ok(a) => {
                if let Some(p) = a.pool.clone().filter(|_| !in_kind) {
                    counts.add(p);
                }
                // An on-demand member replaced by spot: its on-demand units and its usage go.
                if od && !in_kind {
                    on_demand = on_demand.saturating_sub(units);
                    ledger.remove(&inst.id);
                }
                replacing.insert(m.id.as_str());
                out.push(a);
            }
            Err(wait) => out.push(wait),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::action::{ActionKind, Purchase, Reason};
    use crate::tags;
    use crate::testkit::{Fleet, Stage, Tagged, AZS};
    use crate::GroupPlan;

    fn launched(plan: &GroupPlan) -> Vec<(String, Reason, Purchase)> {
        plan.actions
            .iter()
            .filter_map(|a| match &a.kind {
                ActionKind::Launch(s) => Some((s.replaces.clone(), a.reason, s.purchase)),
                _ => None,
            })
            .collect()
    }

    /// i-s1 (spot, version 6), i-s2 (spot, version 7), i-od1 (on-demand, version 6): today's
    /// version is 7, the floor is one on-demand.
    fn rollout() -> Fleet {
        let f = Fleet::new()
            .on_demand("i-od1", AZS[0])
            .spot("i-s1", "m5.large", AZS[1])
            .spot("i-s2", "m5.large", AZS[2])
            .desired(3)
            .tag(tags::ON_DEMAND_BASE, "1")
            .tag(tags::REPLACE_OUTDATED, "true")
            .with_group(|g| g.template_version_now = Some("7".into()));
        let lt = f.group.clone();
        let id = match &lt.launch_source {
            crate::LaunchSource::Template(t) => t.id.clone().unwrap_or_default(),
            _ => unreachable!(),
        };
        let mut f = f;
        for (i, v) in [("i-s1", "6"), ("i-s2", "7"), ("i-od1", "6")] {
            let inst = f
                .instances
                .remove(i)
                .unwrap()
                .tagged(tags::AWS_LT_ID, &id)
                .tagged(tags::AWS_LT_VERSION, v);
            f.instances.insert(i.into(), inst);
        }
        f
    }

    #[test]
    fn outdated_members_are_replaced_in_kind_within_replace_per_cycle() {
        // GIVEN replace-per-cycle 5
        let plan = rollout().tag(tags::REPLACE_PER_CYCLE, "5").plan();
        // THEN the two outdated members get replacements of their own purchase option: the
        //   on-demand one is the floor; the current one is left alone
        let mut got = launched(&plan);
        got.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            got,
            vec![
                ("i-od1".to_string(), Reason::OutdatedTemplate, Purchase::OnDemand),
                ("i-s1".to_string(), Reason::OutdatedTemplate, Purchase::Spot),
            ]
        );
        // AND with replace-per-cycle 1, one of them this cycle (the oldest, then by id)
        assert_eq!(launched(&rollout().plan()).len(), 1);
    }

    #[test]
    fn without_the_tag_a_known_version_or_outside_the_window_nothing_is_rolled() {
        assert!(launched(&rollout().tag(tags::REPLACE_OUTDATED, "false").plan()).is_empty());
        assert!(launched(&rollout().with_group(|g| g.template_version_now = None).plan()).is_empty());
        let closed = rollout().tag(tags::PAUSED_UNTIL, "2026-02-01T00:00:00Z").plan();
        assert!(launched(&closed).is_empty());
        assert_eq!(closed.skip.map(|s| s.reason), Some(Reason::Paused));
        // a member already being replaced is not rolled twice
        let busy = rollout()
            .tag(tags::REPLACE_PER_CYCLE, "5")
            .launch("i-l1", "i-s1", Stage::Booting)
            .plan();
        assert!(
            launched(&busy).iter().all(|(r, _, _)| r != "i-s1"),
            "{:?}",
            busy.actions
        );
        // a bad value is InvalidConfig
        let bad = rollout().tag(tags::REPLACE_OUTDATED, "yes").plan();
        assert_eq!(bad.skip.map(|s| s.reason), Some(Reason::InvalidConfig));
    }

    #[test]
    fn a_mixed_member_from_its_overrides_own_template_is_not_taken_for_outdated() {
        use crate::mixed::{MixedOverride, MixedPolicy};
        // GIVEN a mixed-instances group whose m5.large override launches from its own template
        //   lt-own, an on-demand m5.large launched from lt-own, and a spot m5a.large of the
        //   policy's template at an old version
        let f = rollout().tag(tags::REPLACE_PER_CYCLE, "5");
        let main = crate::testkit::template();
        let own = crate::LaunchTemplateRef {
            id: Some("lt-own".into()),
            ..main.clone()
        };
        let over = |t: &str, lt: Option<&crate::LaunchTemplateRef>| MixedOverride {
            instance_type: Some(t.into()),
            weighted_capacity: None,
            launch_template: lt.cloned(),
            instance_requirements: None,
        };
        let mut f = f.with_group(|g| {
            g.launch_source = crate::LaunchSource::MixedInstances;
            g.mixed = Some(MixedPolicy {
                launch_template: main.clone(),
                overrides: vec![over("m5.large", Some(&own)), over("m5a.large", None)],
                on_demand_base: None,
                on_demand_percent: None,
                desired_capacity_type: None,
            });
        });
        let od = f
            .instances
            .remove("i-od1")
            .unwrap()
            .tagged(tags::AWS_LT_ID, "lt-own");
        f.instances.insert("i-od1".into(), od);
        let s1 = f.instances.get_mut("i-s1").unwrap();
        s1.instance_type = "m5a.large".into();
        // THEN only the member of the policy's template at an old version is rolled: the one
        //   from its override's template is not judged against the policy's
        let got: Vec<String> = launched(&f.plan()).into_iter().map(|l| l.0).collect();
        assert_eq!(got, vec!["i-s1".to_string()]);
    }
}
