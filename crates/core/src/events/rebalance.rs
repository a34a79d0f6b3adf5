//! `EC2 Instance Rebalance Recommendation`: with `spotswap:on-rebalance=replace`, start a
//! proactive swap of the at-risk spot instance into a different pool.
//!
//! The swap is the rebalancer's own: this module only decides the Launch (through
//! [`launch_for`], with the at-risk pool avoided) and the launch is tagged
//! `spotswap:replaces=<at-risk instance>`. The rebalancer's stage machine then attaches the
//! launch and retires the at-risk instance, exactly as for an on-demand original.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{ignore, screen, BadConfig, EventSnapshot, InstanceId, Target};
use crate::action::{Action, Reason};
use crate::candidates::{PoolCounts, SearchContext};
use crate::model::{Instance, Lifecycle, Market, MemberState};
use crate::plan::blockers::{group_blocker, launch_hook_blocker, stack_updating, swappable_template};
use crate::plan::{launch_for, Settings};
use crate::policy::OnRebalance;
use crate::records::GroupRecords;
use crate::time::Timestamp;

/// `detail` of `EC2 Instance Rebalance Recommendation`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct RebalanceDetail {
    /// The instance at elevated risk of interruption.
    pub instance_id: InstanceId,
}

/// The checks that need only the instance's membership and its group, so the adapter reads the
/// fleet and the market only when a swap may follow. `Err` is the no-op and its reason:
/// everything [`screen`] rejects, then `on-rebalance=ignore` (`RebalanceIgnored`), a sheltered
/// group (`Sheltered`: a sheltered group starts no spot launch), a group the rebalancer would
/// skip ([`group_blocker`], the rebalancer's own rule: launch configuration, mixed instances
/// policy, no template, updating, instance refresh), a CloudFormation stack mid-update once its
/// status is read (`StackUpdating`, [`stack_updating`]), a launching lifecycle hook that an
/// attach would skip (`LaunchHookWouldNotRun`, once the adapter has read the hooks), and an
/// instance protected from scale-in (`InstanceProtected`, as the rebalancer leaves those).
// Both variants are small next to the work done on them; boxing buys nothing here.
#[allow(clippy::result_large_err)]
pub fn triage<'a>(
    detail: &RebalanceDetail,
    snap: &'a EventSnapshot,
    settings: &Settings,
    now: Timestamp,
) -> Result<Target<'a>, Action> {
    let id = detail.instance_id.as_str();
    let target = screen(id, snap, settings, BadConfig::Ignore)?;
    let group = target.group;
    let noop = |reason| Err(ignore(reason, &group.name, id, Some(&target.membership.pool)));
    if target.policy.on_rebalance == OnRebalance::Ignore {
        return noop(Reason::RebalanceIgnored);
    }
    if GroupRecords::from_tags(&group.tags).sheltered(now) {
        return noop(Reason::Sheltered);
    }
    if let Some((reason, _)) = group_blocker(group).or_else(|| stack_updating(group)) {
        return noop(reason);
    }
    if let Some((reason, _)) = launch_hook_blocker(group, &target.policy) {
        return noop(reason);
    }
    if group.member(id).is_some_and(|m| m.protected_from_scale_in) {
        return noop(Reason::InstanceProtected);
    }
    Ok(target)
}

/// Decide on a rebalance recommendation: a Launch into another pool, or a no-op with its reason.
///
/// `instances` holds the group's members and our launches for the group, as EC2 shows them;
/// `market` the group's AZs. Beyond [`triage`]: the instance must still run, be spot
/// (`NotSpot`) and not be termination-protected (the Retire stage could not end it); a live
/// launch already replacing it makes this a duplicate (`AlreadyHandled`). The pool cap counts
/// the group's spot members and its launches in flight, as the rebalancer does. When no other
/// pool qualifies, the answer is a Wait with `NoEligiblePool` and the instance stays.
pub fn decide_rebalance(
    detail: &RebalanceDetail,
    snap: &EventSnapshot,
    instances: &BTreeMap<String, Instance>,
    market: &Market,
    settings: &Settings,
    now: Timestamp,
) -> Vec<Action> {
    let id = detail.instance_id.as_str();
    let target = match triage(detail, snap, settings, now) {
        Ok(t) => t,
        Err(noop) => return vec![noop],
    };
    let group = target.group;
    let pool = &target.membership.pool;
    let Ok(template) = swappable_template(group) else {
        unreachable!("triage passes only groups nothing blocks");
    };
    let not_spot = |i: &Instance| (i.lifecycle != Lifecycle::Spot).then_some(Reason::NotSpot);
    let original = match super::proactive_original(group, id, pool, instances, not_spot) {
        Ok(i) => i,
        Err(noop) => return vec![noop],
    };
    let ours = |i: &&Instance| i.is_launch_for(&group.name) && i.is_alive();

    let mut counts = PoolCounts::default();
    for m in group
        .members
        .iter()
        .filter(|m| matches!(m.state, MemberState::InService | MemberState::Pending))
    {
        if let Some(i) = instances.get(&m.id).filter(|i| i.lifecycle == Lifecycle::Spot) {
            counts.add(i.pool());
        }
    }
    for launch in instances
        .values()
        .filter(ours)
        .filter(|i| i.replaces().is_some() && group.member(&i.id).is_none())
    {
        counts.add(launch.pool());
    }
    let records = GroupRecords::from_tags(&group.tags);
    let policy = crate::mixed::effective_policy(group, &target.policy);
    let ctx = SearchContext {
        market,
        policy: &policy,
        records: &records,
        counts: &counts,
        // The swap moves a spot instance, it does not add one.
        target_spot: counts.total().max(1),
        now,
        ranked: None,
    };
    match launch_for(
        group,
        template,
        original,
        ctx,
        Some(&original.pool()),
        Reason::RebalanceRecommendation,
    ) {
        Ok(launch) => {
            let mut actions = vec![launch];
            crate::launch_config::ensure_template(group, &mut actions);
            actions
        }
        Err(wait) => vec![wait],
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::action::ActionKind;
    use crate::candidates::tests::market;
    use crate::events::tests::REBALANCE;
    use crate::events::{parse_event, Membership, ParsedEvent};
    use crate::model::{GroupSnapshot, Pool};
    use crate::records::{cooldown_key, no_capacity_key};
    use crate::tags;
    use crate::testkit::{instance, Fleet};

    const ID: &str = "i-1234567890abcdef0";
    const NOW: Timestamp = Timestamp::from_unix(1_767_225_600);
    const A: &str = "us-east-1a";

    fn detail() -> RebalanceDetail {
        match parse_event(REBALANCE).unwrap() {
            ParsedEvent::Rebalance(e) => e.detail,
            other => panic!("{other:?}"),
        }
    }

    /// A managed group of one on-demand and two spot m5.large in us-east-1a; ID is spot.
    fn fleet(tags_: &[(&str, &str)]) -> (EventSnapshot, BTreeMap<String, Instance>) {
        let mut fleet = Fleet::new().max(3).desired(3).grace(0).market(market());
        for (id, lc) in [
            (ID, Lifecycle::Spot),
            ("i-bbbbbbbbbbbbbbbbb", Lifecycle::Spot),
            ("i-ccccccccccccccccc", Lifecycle::OnDemand),
        ] {
            fleet = fleet.instance(instance(id, "m5.large", A, lc)).listed(id);
        }
        for (k, v) in tags_ {
            fleet = fleet.tag(k, v);
        }
        let Fleet { group, instances, .. } = fleet;
        let snap = EventSnapshot {
            membership: Some(Membership {
                instance: ID.into(),
                group: "web".into(),
                pool: Pool::new("m5.large", A),
                state: MemberState::InService,
                lifecycle_state: "InService".into(),
            }),
            ec2: None,
            replaced_by: Vec::new(),
            group: Some(group),
        };
        (snap, instances)
    }

    fn decide(snap: &EventSnapshot, instances: &BTreeMap<String, Instance>) -> Vec<Action> {
        decide_rebalance(&detail(), snap, instances, &market(), &Settings::default(), NOW)
    }

    fn reasons(actions: &[Action]) -> Vec<(&'static str, Reason)> {
        actions.iter().map(|a| (a.kind.name(), a.reason)).collect()
    }

    #[test]
    fn replace_launches_into_another_pool_tagged_as_replacing_the_at_risk_instance() {
        // GIVEN an at-risk spot m5.large in us-east-1a of a managed group (on-rebalance=replace)
        let (snap, instances) = fleet(&[]);
        // WHEN the recommendation is decided
        let actions = decide(&snap, &instances);
        // THEN one Launch starts a swap, for the at-risk instance, never into its own pool
        assert_eq!(
            reasons(&actions),
            vec![("launch", Reason::RebalanceRecommendation)]
        );
        let ActionKind::Launch(spec) = &actions[0].kind else {
            unreachable!()
        };
        assert_eq!(spec.replaces, ID);
        let at_risk = Pool::new("m5.large", A);
        assert!(!spec.candidates.is_empty());
        assert!(spec
            .candidates
            .iter()
            .all(|c| c.pool != at_risk && c.pool.az == A));
        assert!(spec.tags.contains(&(tags::REPLACES.to_string(), ID.to_string())));
        assert_eq!(actions[0].pool.as_ref(), Some(&spec.candidates[0].pool));
    }

    #[test]
    fn cooldown_and_no_capacity_pools_are_avoided_too() {
        // GIVEN the cheapest other pools cooling down or short of capacity
        let until = NOW.plus_minutes(30).to_rfc3339();
        let m5a = cooldown_key(&Pool::new("m5a.large", A));
        let m6i = no_capacity_key(&Pool::new("m6i.large", A));
        let (snap, instances) = fleet(&[(&m5a, &until), (&m6i, &until)]);
        // THEN neither is offered
        let ActionKind::Launch(spec) = &decide(&snap, &instances)[0].kind else {
            panic!()
        };
        let offered: Vec<&str> = spec
            .candidates
            .iter()
            .map(|c| c.pool.instance_type.as_str())
            .collect();
        assert!(
            !offered.contains(&"m5a.large") && !offered.contains(&"m6i.large"),
            "{offered:?}"
        );
        assert!(!offered.contains(&"m5.large"));
    }

    #[test]
    fn ignore_sheltered_and_skipped_groups_are_no_ops() {
        let until = NOW.plus_minutes(30).to_rfc3339();
        let cases: Vec<(Vec<(&str, &str)>, Reason)> = vec![
            (vec![(tags::ON_REBALANCE, "ignore")], Reason::RebalanceIgnored),
            (vec![(tags::SHELTERED_UNTIL, &until)], Reason::Sheltered),
            (vec![(tags::MAX_POOL_PERCENT, "x")], Reason::InvalidConfig),
            (vec![(tags::ENABLED, "false")], Reason::NotManaged),
        ];
        for (t, reason) in cases {
            let (snap, instances) = fleet(&t);
            assert_eq!(
                reasons(&decide(&snap, &instances)),
                vec![("ignore", reason)],
                "{t:?}"
            );
        }
        let (mut snap, instances) = fleet(&[]);
        snap.group.as_mut().unwrap().instance_refresh_in_progress = Some(true);
        assert_eq!(
            reasons(&decide(&snap, &instances)),
            vec![("ignore", Reason::InstanceRefreshInProgress)]
        );
        let (mut snap, instances) = fleet(&[]);
        snap.group.as_mut().unwrap().members[0].protected_from_scale_in = true;
        assert_eq!(
            reasons(&decide(&snap, &instances)),
            vec![("ignore", Reason::InstanceProtected)]
        );
    }

    #[test]
    fn a_swap_already_started_or_an_instance_gone_is_a_duplicate() {
        // GIVEN a live launch of ours already replacing the at-risk instance
        let (snap, mut instances) = fleet(&[]);
        let mut launch = instance("i-ddddddddddddddddd", "m5a.large", A, Lifecycle::Spot);
        launch.tags.insert(tags::GROUP.into(), "web".into());
        launch.tags.insert(tags::REPLACES.into(), ID.into());
        instances.insert(launch.id.clone(), launch);
        assert_eq!(
            reasons(&decide(&snap, &instances)),
            vec![("ignore", Reason::AlreadyHandled)]
        );
        // AND an instance EC2 no longer shows is gone
        let (snap, mut instances) = fleet(&[]);
        instances.remove(ID);
        assert_eq!(
            reasons(&decide(&snap, &instances)),
            vec![("ignore", Reason::AlreadyHandled)]
        );
    }

    #[test]
    fn on_demand_and_termination_protected_instances_are_left_alone() {
        let (snap, mut instances) = fleet(&[]);
        instances.get_mut(ID).unwrap().lifecycle = Lifecycle::OnDemand;
        assert_eq!(
            reasons(&decide(&snap, &instances)),
            vec![("ignore", Reason::NotSpot)]
        );
        let (snap, mut instances) = fleet(&[]);
        instances.get_mut(ID).unwrap().termination_protected = Some(true);
        assert_eq!(
            reasons(&decide(&snap, &instances)),
            vec![("ignore", Reason::InstanceProtected)]
        );
    }

    #[test]
    fn no_other_pool_means_the_instance_stays() {
        // GIVEN only m5.large is allowed: the at-risk pool is the only one in its AZ
        let (snap, instances) = fleet(&[(tags::ALLOWED_TYPES, "m5.large")]);
        // THEN a Wait says why, and nothing launches
        assert_eq!(
            reasons(&decide(&snap, &instances)),
            vec![("wait", Reason::NoEligiblePool)]
        );
    }

    #[test]
    fn a_group_the_rebalancer_skips_is_a_no_op_for_the_same_reason() {
        use crate::model::LaunchSource;
        use crate::plan::plan_group;
        use crate::policy::Policy;
        let blocked: Vec<fn(&mut GroupSnapshot)> = vec![
            |g| g.launch_source = LaunchSource::LaunchConfiguration("old-lc".into()),
            |g| g.launch_source = LaunchSource::MixedInstances,
            |g| g.launch_source = LaunchSource::Unknown,
            |g| g.status = Some("Delete in progress".into()),
            |g| g.instance_refresh_in_progress = Some(true),
            |g| g.has_warm_pool = true,
        ];
        for block in blocked {
            // GIVEN a group one blocker keeps from being swapped
            let (mut snap, instances) = fleet(&[]);
            block(snap.group.as_mut().unwrap());
            let group = snap.group.clone().unwrap();
            // WHEN a recommendation arrives, and the rebalancer plans the group
            let actions = decide(&snap, &instances);
            let plan = plan_group(
                &group,
                &instances,
                &market(),
                &Policy::default(),
                &Default::default(),
                NOW,
            );
            // THEN both pass it over, for the one reason the blocker rule gives
            let reason = group_blocker(&group).expect("blocked").0;
            assert_eq!(reasons(&actions), vec![("ignore", reason)]);
            assert_eq!(plan.skip.map(|s| s.reason), Some(reason));
        }
    }

    #[test]
    fn a_stack_mid_update_holds_a_proactive_swap_as_it_holds_the_rebalancers() {
        // GIVEN a group whose CloudFormation stack is being updated
        let (mut snap, instances) = fleet(&[(crate::tags::AWS_CFN_STACK_NAME, "shop")]);
        snap.group.as_mut().unwrap().stack_status = Some("UPDATE_IN_PROGRESS".into());
        // WHEN a recommendation arrives THEN no swap starts, for the rebalancer's reason
        assert_eq!(
            reasons(&decide(&snap, &instances)),
            vec![("ignore", Reason::StackUpdating)]
        );
        // AND once the update is complete, the swap starts
        snap.group.as_mut().unwrap().stack_status = Some("UPDATE_COMPLETE".into());
        assert!(decide(&snap, &instances)
            .iter()
            .any(|a| matches!(a.kind, ActionKind::Launch(_))));
    }

    #[test]
    fn a_launching_hook_is_a_no_op_unless_bypassed() {
        // GIVEN a group with a launching lifecycle hook, read by the adapter
        let (mut snap, instances) = fleet(&[]);
        snap.group.as_mut().unwrap().has_launching_hook = Some(true);
        // THEN a recommendation starts no attach-based swap, for the rebalancer's reason
        assert_eq!(
            reasons(&decide(&snap, &instances)),
            vec![("ignore", Reason::LaunchHookWouldNotRun)]
        );
        // AND with spotswap:launch-hooks=bypass it swaps as any group
        let (mut snap, instances) = fleet(&[(tags::LAUNCH_HOOKS, "bypass")]);
        snap.group.as_mut().unwrap().has_launching_hook = Some(true);
        assert_eq!(reasons(&decide(&snap, &instances))[0].0, "launch");
    }
}
