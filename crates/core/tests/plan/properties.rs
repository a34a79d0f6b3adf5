//! Generated groups, with swaps in every stage: the invariants of DESIGN.md §8 on every plan,
//! and a converging fleet cycle after cycle.

mod check;

use super::*;
use check::check_plan;

/// One generated member of the group.
#[derive(Debug, Clone)]
struct GenMember {
    spot: bool,
    state: MemberState,
    healthy: bool,
    protected: bool,
    termination_protected: Option<bool>,
    instance_state: InstanceState,
    az: usize,
    spot_type: usize,
    age_min: i64,
}

/// One generated launch of ours, in any stage.
#[derive(Debug, Clone)]
struct GenLaunch {
    /// Which member it replaces (when there is one and `ghost` is false).
    target: Index,
    /// It replaces an instance that is in no group.
    ghost: bool,
    /// Its `spotswap:group` names another group: never ours to act on.
    foreign: bool,
    instance_state: InstanceState,
    status_ok: Option<bool>,
    /// Its group listing, if attached.
    member: Option<(MemberState, bool)>,
    attached_secs_ago: Option<i64>,
}

/// One generated group, with the settings of its cycle.
#[derive(Debug, Clone)]
struct GenGroup {
    /// DesiredCapacity; `None`: the InService count (a group at capacity, the common case).
    desired: Option<u32>,
    /// MaxSize above desired.
    extra_max: u32,
    grace: u32,
    mode: Mode,
    tags: Vec<(String, String)>,
    members: Vec<GenMember>,
    launches: Vec<GenLaunch>,
    /// Sort keys that shuffle the member list and the instance insertion order.
    shuffle: Vec<u32>,
}

const SPOT_TYPES: [&str; 4] = ["m5a.large", "m6i.large", "m5.large", "r5.large"];

fn member_state() -> impl Strategy<Value = MemberState> {
    prop_oneof![
        6 => Just(MemberState::InService),
        1 => Just(MemberState::Pending),
        1 => Just(MemberState::Standby),
        1 => Just(MemberState::Leaving),
    ]
}

fn instance_state() -> impl Strategy<Value = InstanceState> {
    prop_oneof![
        6 => Just(InstanceState::Running),
        1 => Just(InstanceState::Pending),
        1 => Just(InstanceState::Stopped),
        1 => Just(InstanceState::Gone),
    ]
}

prop_compose! {
    fn gen_member()(
        spot in prop::bool::weighted(0.3),
        state in member_state(),
        healthy in prop::bool::weighted(0.85),
        protected in prop::bool::weighted(0.1),
        termination_protected in prop::option::of(prop::bool::weighted(0.1)),
        instance_state in prop_oneof![8 => Just(InstanceState::Running), 1 => Just(InstanceState::Stopped)],
        az in 0usize..3,
        spot_type in 0usize..SPOT_TYPES.len(),
        age_min in 0i64..10_000,
    ) -> GenMember {
        GenMember { spot, state, healthy, protected, termination_protected, instance_state, az, spot_type, age_min }
    }
}

prop_compose! {
    fn gen_launch()(
        target in any::<Index>(),
        ghost in prop::bool::weighted(0.1),
        foreign in prop::bool::weighted(0.1),
        instance_state in instance_state(),
        status_ok in prop::option::of(any::<bool>()),
        member in prop::option::weighted(0.5, (member_state(), prop::bool::weighted(0.8))),
        attached_secs_ago in prop::option::weighted(0.8, 0i64..1200),
    ) -> GenLaunch {
        GenLaunch { target, ghost, foreign, instance_state, status_ok, member, attached_secs_ago }
    }
}

/// A tag value: usually absent or valid, sometimes bad.
fn tag_value(
    valid: impl Strategy<Value = String> + 'static,
    bad: &'static str,
) -> BoxedStrategy<Option<String>> {
    prop_oneof![
        10 => Just(None),
        20 => valid.prop_map(Some),
        1 => Just(Some(bad.to_string())),
    ]
    .boxed()
}

fn gen_tags() -> impl Strategy<Value = Vec<(String, String)>> {
    (
        prop_oneof![
            30 => Just(Some("true".to_string())),
            2 => Just(Some("false".to_string())),
            2 => Just(None),
            1 => Just(Some("yes".to_string())),
        ],
        tag_value((0u32..=100).prop_map(|n| n.to_string()), "150"),
        tag_value((0u32..=4).prop_map(|n| n.to_string()), "-1"),
        tag_value((0u32..=5).prop_map(|n| n.to_string()), "abc"),
        tag_value((1u32..=100).prop_map(|n| n.to_string()), "0"),
        prop::option::weighted(0.2, -60i64..60),
        prop::option::weighted(0.2, 0u32..=14),
        prop::option::weighted(0.3, (0usize..SPOT_TYPES.len(), 0usize..3, -30i64..30)),
    )
        .prop_map(|(enabled, pct, base, rpc, pool_pct, shelter, raised, record)| {
            let mut t = Vec::new();
            let mut put = |k: &str, v: Option<String>| {
                if let Some(v) = v {
                    t.push((k.to_string(), v));
                }
            };
            put(tags::ENABLED, enabled);
            put(tags::ON_DEMAND_PERCENT, pct);
            put(tags::ON_DEMAND_BASE, base);
            put(tags::REPLACE_PER_CYCLE, rpc);
            put(tags::MAX_POOL_PERCENT, pool_pct);
            put(
                tags::SHELTERED_UNTIL,
                shelter.map(|m| NOW.plus_minutes(m).to_rfc3339()),
            );
            put(tags::MAX_RAISED_FROM, raised.map(|n| n.to_string()));
            if let Some((ty, az, m)) = record {
                put(
                    &cooldown_key(&Pool::new(SPOT_TYPES[ty], AZS[az])),
                    Some(NOW.plus_minutes(m).to_rfc3339()),
                );
            }
            t
        })
}

prop_compose! {
    fn gen_group()(
        desired in prop::option::weighted(0.5, 0u32..=12),
        extra_max in 0u32..=3,
        grace in prop_oneof![Just(0u32), Just(300u32), 0u32..900],
        mode in prop_oneof![Just(Mode::OptIn), Just(Mode::OptOut)],
        tags in gen_tags(),
        members in prop::collection::vec(gen_member(), 0..=14),
        launches in prop::collection::vec(gen_launch(), 0..=5),
        shuffle in prop::collection::vec(any::<u32>(), 24),
    ) -> GenGroup {
        GenGroup { desired, extra_max, grace, mode, tags, members, launches, shuffle }
    }
}

impl GenGroup {
    /// The fleet, with members listed and instances inserted in an order set by `order`.
    fn fleet_in_order(&self, order: &[u32]) -> Fleet {
        let mut fleet = Fleet::new()
            .untag(tags::ENABLED)
            .mode(self.mode)
            .with_group(|g| g.health_check_grace_secs = self.grace);
        for (k, v) in &self.tags {
            fleet = fleet.tag(k, v);
        }
        let member_ids: Vec<String> = (0..self.members.len()).map(|i| format!("i-m{i:02}")).collect();
        for (m, id) in self.members.iter().zip(&member_ids) {
            let (ty, lifecycle) = if m.spot {
                (SPOT_TYPES[m.spot_type], Lifecycle::Spot)
            } else {
                ("m5.large", Lifecycle::OnDemand)
            };
            fleet = fleet
                .member(id, ty, AZS[m.az], lifecycle)
                .edit_member(id, |x| {
                    x.state = m.state;
                    x.healthy = m.healthy;
                    x.protected_from_scale_in = m.protected;
                })
                .edit_instance(id, |i| {
                    i.state = m.instance_state;
                    i.termination_protected = m.termination_protected;
                    i.launch_time = NOW.plus_minutes(-m.age_min);
                });
        }
        for (n, l) in self.launches.iter().enumerate() {
            let replaces = if l.ghost || member_ids.is_empty() {
                format!("i-ghost{n}")
            } else {
                member_ids[l.target.index(member_ids.len())].clone()
            };
            let group = if l.foreign { "other" } else { GROUP };
            fleet = fleet.raw_launch(
                &format!("i-l{n}"),
                group,
                &replaces,
                l.instance_state,
                l.status_ok,
                l.member,
                l.member.and(l.attached_secs_ago),
            );
        }
        let in_service = fleet
            .group
            .members
            .iter()
            .filter(|m| m.state == MemberState::InService)
            .count() as u32;
        let desired = self.desired.unwrap_or(in_service);
        fleet = fleet.desired(desired).max(desired + self.extra_max);
        // shuffle the member list, and re-insert the instances in the same shuffled order
        let key = |i: usize| order.get(i % order.len().max(1)).copied().unwrap_or(0);
        let mut members: Vec<(u32, usize, Member)> = fleet
            .group
            .members
            .drain(..)
            .enumerate()
            .map(|(i, m)| (key(i), i, m))
            .collect();
        members.sort_by_key(|(k, i, _)| (*k, *i));
        fleet.group.members = members.into_iter().map(|(_, _, m)| m).collect();
        let mut instances: Vec<(u32, usize, Instance)> = std::mem::take(&mut fleet.instances)
            .into_values()
            .enumerate()
            .map(|(i, inst)| (key(i), i, inst))
            .collect();
        instances.sort_by_key(|(k, i, _)| (*k, *i));
        fleet.instances = instances.into_iter().map(|(_, _, i)| (i.id.clone(), i)).collect();
        fleet
    }

    fn fleet(&self) -> Fleet {
        self.fleet_in_order(&[])
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn every_plan_keeps_the_invariants(gen in gen_group()) {
        let fleet = gen.fleet();
        let plan = fleet.plan();
        check_plan(&fleet, &plan)?;
    }

    #[test]
    fn planning_is_deterministic(gen in gen_group()) {
        // (e) same input, same plan; and the order AWS lists members or instances in is moot
        let fleet = gen.fleet();
        let plan = fleet.plan();
        prop_assert_eq!(&fleet.plan(), &plan);
        let shuffled = gen.fleet_in_order(&gen.shuffle);
        prop_assert_eq!(&shuffled.plan(), &plan);
        let reversed: Vec<u32> = (0..24u32).rev().collect();
        prop_assert_eq!(&gen.fleet_in_order(&reversed).plan(), &plan);
    }

    #[test]
    fn a_converging_fleet_keeps_the_invariants_every_cycle(
        n in 1u32..=8,
        pct in prop_oneof![Just(0u32), Just(50u32), 0u32..=100],
        base in 0u32..=3,
        rpc in 1u32..=4,
    ) {
        // GIVEN an all-on-demand group; WHEN cycles run and an ideal executor applies each
        // plan (launches become ready, attach, turn InService, the grace passes)
        // THEN every plan keeps the invariants, and the group converges to the floor
        let mut fleet = on_demand_fleet(n)
            .max(n)
            .tag(tags::ON_DEMAND_PERCENT, &pct.to_string())
            .tag(tags::ON_DEMAND_BASE, &base.to_string())
            .tag(tags::REPLACE_PER_CYCLE, &rpc.to_string())
            .tag(tags::MAX_POOL_PERCENT, "100")
            .with_group(|g| g.health_check_grace_secs = 0);
        let floor = spotswap_core::policy::required_on_demand(n, base, pct);
        let mut converged = false;
        for cycle in 0..40 {
            let plan = fleet.plan();
            check_plan(&fleet, &plan)?;
            let in_service = fleet.group.members.iter().filter(|m| m.state == MemberState::InService).count();
            prop_assert!(in_service as u32 >= n, "cycle {}: InService {} < {}", cycle, in_service, n);
            if plan.actions.iter().all(|a| a.reason == Reason::AtRiskFloor) {
                converged = true;
                break;
            }
            fleet = apply(fleet, &plan);
        }
        prop_assert!(converged);
        prop_assert_eq!(fleet.plan().census.on_demand, floor);
        prop_assert_eq!(fleet.group.desired, n);
        prop_assert_eq!(fleet.group.max_size, n);
    }
}

/// An ideal executor: applies a plan to the fleet the way AWS would, then lets five minutes
/// pass: pending launches run and pass their checks, Pending members go InService.
fn apply(mut fleet: Fleet, plan: &GroupPlan) -> Fleet {
    let now = fleet.now;
    for a in &plan.actions {
        match &a.kind {
            ActionKind::Launch(spec) => {
                // unique per cycle and original, never reused after a retire
                let id = format!("i-sw{}-{}", fleet.now.secs_since(NOW) / 60, spec.replaces);
                let mut f = fleet.raw_launch(
                    &id,
                    GROUP,
                    &spec.replaces,
                    InstanceState::Pending,
                    None,
                    None,
                    None,
                );
                let launched = f.instances.get_mut(&id).unwrap();
                launched.instance_type = spec.candidates[0].pool.instance_type.clone();
                if spec.purchase == spotswap_core::Purchase::OnDemand {
                    launched.lifecycle = Lifecycle::OnDemand;
                }
                fleet = f;
            }
            ActionKind::RaiseMax { from, to } => {
                fleet.group.max_size = *to;
                fleet
                    .group
                    .tags
                    .insert(tags::MAX_RAISED_FROM.into(), from.to_string());
            }
            ActionKind::Attach { instance, .. } => {
                assert!(
                    fleet.group.desired < fleet.group.max_size,
                    "attach beyond MaxSize"
                );
                fleet.group.desired += 1;
                fleet.group.members.push(Member {
                    id: instance.clone(),
                    state: MemberState::Pending,
                    healthy: true,
                    protected_from_scale_in: false,
                    weight: None,
                });
                fleet
                    .instances
                    .get_mut(instance)
                    .unwrap()
                    .tags
                    .insert(tags::ATTACHED_AT.into(), now.to_rfc3339());
            }
            ActionKind::MarkAttached { instance } => {
                fleet
                    .instances
                    .get_mut(instance)
                    .unwrap()
                    .tags
                    .insert(tags::ATTACHED_AT.into(), now.to_rfc3339());
            }
            ActionKind::Retire { instance, .. } => {
                fleet.group.desired -= 1;
                fleet.group.members.retain(|m| &m.id != instance);
                fleet.instances.remove(instance);
            }
            ActionKind::TerminateLaunch { instance } => {
                fleet.instances.remove(instance);
            }
            ActionKind::RestoreMax { to } => {
                fleet.group.max_size = *to;
                fleet.group.tags.remove(tags::MAX_RAISED_FROM);
            }
            ActionKind::Wait => {}
            other => panic!("the rebalancer planned a non-rebalancer action: {other:?}"),
        }
    }
    for i in fleet.instances.values_mut() {
        if i.tag(tags::GROUP).is_some() && i.state == InstanceState::Pending {
            i.state = InstanceState::Running;
            i.status_ok = Some(true);
        }
    }
    for m in &mut fleet.group.members {
        if m.state == MemberState::Pending {
            m.state = MemberState::InService;
        }
    }
    fleet.now = fleet.now.plus_minutes(5);
    fleet
}
