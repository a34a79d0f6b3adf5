//! Planner benchmarks: how long the pure decisions of one rebalancer cycle and one reaper
//! pass take on a large region.
//!
//! The fixture is a synthetic region of managed groups of 20 instances each, in three AZs,
//! built once per size outside the measured closure:
//!
//! - on-demand members of one type per group (`m5.large`, `m6i.large`, `m5d.large`,
//!   `c5.large`, `m5a.large`) and spot members of compatible types;
//! - a quarter of the groups with a swap waiting to be attached (one launch ready, one stuck
//!   pending past the orphan age, MaxSize at desired), a quarter with two attached launches
//!   (one past its grace period, one inside it, `spotswap:max-raised-from` set), a quarter
//!   with an interrupted instance we detached, a live pool cooldown and an expired
//!   no-capacity record;
//! - a market of eleven types with specs, on-demand prices and a spot price per pool.
//!
//! Measured, each on 2,000 and 20,000 instances (100 and 1,000 groups):
//!
//! - `plan_cycle`: `plan_cycle` on the whole region snapshot;
//! - `plan_reap/ours`: `plan_reap` over every group, with only the instances carrying our
//!   tags, as the reaper's adapter reads them;
//! - `plan_reap/all`: `plan_reap` handed every instance of the region (the untagged ones are
//!   ignored by contract, but still walked and copied).
//!
//! Before anything is measured the fixture is checked (instance count; Launch, Attach,
//! Retire, RaiseMax and reaper terminations present), so a broken fixture fails loudly
//! instead of benchmarking an empty plan.
//!
//! Run:
//!
//! ```text
//! cargo bench -p spotswap-core --bench planner
//! cargo bench -p spotswap-core --bench planner -- --warm-up-time 1 --measurement-time 3
//! cargo bench -p spotswap-core --bench planner -- plan_cycle   # one group only
//! ```

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput};
use spotswap_core::records::{cooldown_key, no_capacity_key};
use spotswap_core::tags::InstanceTags;
use spotswap_core::testkit::{instance, market_of, member, Fleet, Offer, AZS, GRACE_SECS, NOW};
use spotswap_core::{
    plan_cycle, plan_reap, tags, ActionKind, GroupPlan, GroupSnapshot, Instance, InstanceState, LaunchSource,
    LaunchTemplateRef, Lifecycle, Market, Pool, RegionSnapshot, Settings,
};

/// Instances per group.
const GROUP_SIZE: usize = 20;
/// Group counts benchmarked: 2,000 and 20,000 instances.
const GROUP_COUNTS: [usize; 2] = [100, 1_000];
/// The reaper's orphan age, minutes.
const ORPHAN_MINUTES: u32 = 20;
/// On-demand types, one per group in turn.
const ON_DEMAND_TYPES: [&str; 5] = ["m5.large", "m6i.large", "m5d.large", "c5.large", "m5a.large"];

// ---------------------------------------------------------------------------------------------
// fixture
// ---------------------------------------------------------------------------------------------

/// Eleven types in three AZs: specs, on-demand prices, and a spot price per pool that differs
/// a little between AZs.
fn market() -> Market {
    // (type, architecture, vCPU, GiB, instance store GB, on-demand, spot)
    let offers: [Offer; 11] = [
        ("m5.large", "x86_64", 2, 8, 0, 0.096, 0.040),
        ("m5a.large", "x86_64", 2, 8, 0, 0.086, 0.035),
        ("m6i.large", "x86_64", 2, 8, 0, 0.096, 0.038),
        ("m6a.large", "x86_64", 2, 8, 0, 0.0864, 0.036),
        ("m5d.large", "x86_64", 2, 8, 75, 0.113, 0.045),
        ("m5ad.large", "x86_64", 2, 8, 75, 0.103, 0.041),
        ("c5.large", "x86_64", 2, 4, 0, 0.085, 0.030),
        ("c5a.large", "x86_64", 2, 4, 0, 0.077, 0.028),
        ("r5.large", "x86_64", 2, 16, 0, 0.126, 0.050),
        ("m5.xlarge", "x86_64", 4, 16, 0, 0.192, 0.080),
        ("m6g.large", "arm64", 2, 8, 0, 0.077, 0.020),
    ];
    let az_factor = [1.0, 1.04, 0.97];
    let mut m = market_of(&offers, &AZS);
    for (pool, price) in m.spot_prices.iter_mut() {
        let n = AZS.iter().position(|az| *az == pool.az).expect("one of AZS");
        *price *= az_factor[n];
    }
    m
}

/// Spot types a group running `on_demand_type` already holds, in turn.
fn spot_types(on_demand_type: &str) -> &'static [&'static str] {
    match on_demand_type {
        "m5d.large" => &["m5ad.large", "m5d.large"],
        "c5.large" => &["c5a.large", "c5.large", "m5a.large"],
        _ => &["m5a.large", "m6a.large", "m6i.large", "m5.large"],
    }
}

/// The cheapest spot type our swap would pick for `on_demand_type`: what our launches run.
fn launch_type(on_demand_type: &str) -> &'static str {
    match on_demand_type {
        "m5d.large" => "m5ad.large",
        "c5.large" => "c5a.large",
        _ => "m5a.large",
    }
}

fn string_map(pairs: &[(&str, String)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

/// The region under construction.
struct Region {
    groups: Vec<GroupSnapshot>,
    instances: BTreeMap<String, Instance>,
    next_id: u64,
}

impl Region {
    fn new_id(&mut self) -> String {
        self.next_id += 1;
        format!("i-{:017x}", 0x0abc_0000_0000_0000u64 + self.next_id)
    }

    /// An InService, healthy member of `group`, with the tags EC2 Auto Scaling gives it.
    fn member(
        &mut self,
        group: &mut GroupSnapshot,
        ty: &str,
        az: &str,
        lifecycle: Lifecycle,
        age_min: i64,
    ) -> String {
        let id = self.new_id();
        let mut t: InstanceTags = group.propagated_tags.clone().into_iter().collect();
        t.insert(tags::AWS_ASG_NAME.to_string(), group.name.clone());
        self.instances.insert(
            id.clone(),
            Instance {
                launch_time: NOW.plus_minutes(-age_min),
                status_ok: Some(true),
                termination_protected: Some(false),
                tags: t,
                ..instance(&id, ty, az, lifecycle)
            },
        );
        group.members.push(member(&id));
        id
    }

    /// Our spot launch for `group` replacing `replaces`, in its AZ. `attached_secs_ago` makes
    /// it an InService member with `spotswap:attached-at`; otherwise it is outside the group.
    #[allow(clippy::too_many_arguments)]
    fn launch(
        &mut self,
        group: &mut GroupSnapshot,
        replaces: &str,
        ty: &str,
        state: InstanceState,
        status_ok: Option<bool>,
        launched_min_ago: i64,
        attached_secs_ago: Option<i64>,
    ) -> String {
        let id = self.new_id();
        let az = self.instances[replaces].az.clone();
        let mut t: InstanceTags = group.propagated_tags.clone().into_iter().collect();
        t.insert(tags::GROUP.to_string(), group.name.clone());
        t.insert(tags::REPLACES.to_string(), replaces.to_string());
        t.insert(
            tags::LAUNCHED_AT.to_string(),
            NOW.plus_minutes(-launched_min_ago).to_rfc3339(),
        );
        if let Some(secs) = attached_secs_ago {
            t.insert(tags::ATTACHED_AT.to_string(), NOW.plus_secs(-secs).to_rfc3339());
            t.insert(tags::AWS_ASG_NAME.to_string(), group.name.clone());
            group.members.push(member(&id));
        }
        self.instances.insert(
            id.clone(),
            Instance {
                state,
                launch_time: NOW.plus_minutes(-launched_min_ago),
                status_ok,
                termination_protected: Some(false),
                tags: t,
                ..instance(&id, ty, &az, Lifecycle::Spot)
            },
        );
        id
    }

    /// A spot instance the interruption handler detached from `group` `minutes_ago`, still
    /// running (a `stop`/`hibernate` interruption).
    fn detached(&mut self, group: &GroupSnapshot, ty: &str, az: &str, minutes_ago: i64) -> String {
        let id = self.new_id();
        let mut t: InstanceTags = group.propagated_tags.clone().into_iter().collect();
        t.insert(
            tags::DETACHED_AT.to_string(),
            NOW.plus_minutes(-minutes_ago).to_rfc3339(),
        );
        t.insert(tags::DETACHED_FROM.to_string(), group.name.clone());
        self.instances.insert(
            id.clone(),
            Instance {
                launch_time: NOW.plus_minutes(-600),
                status_ok: Some(true),
                termination_protected: Some(false),
                tags: t,
                ..instance(&id, ty, az, Lifecycle::Spot)
            },
        );
        id
    }
}

/// An empty managed group `g` with a launch template and propagate-at-launch tags.
fn empty_group(g: usize) -> GroupSnapshot {
    let name = format!("svc-{g:04}-asg");
    let propagated = string_map(&[
        ("Name", format!("svc-{g:04}")),
        ("team", format!("team-{}", g % 17)),
        ("env", "prod".to_string()),
        (tags::AWS_CFN_STACK_NAME, format!("stack-svc-{g:04}")),
    ]);
    let mut group_tags = propagated.clone();
    group_tags.insert(tags::ENABLED.to_string(), "true".to_string());
    // a spread of policies: bases, percentages, caps and swap rates
    if g % 5 == 1 {
        group_tags.insert(tags::ON_DEMAND_BASE.to_string(), "2".to_string());
    }
    if g % 3 == 2 {
        group_tags.insert(tags::MAX_POOL_PERCENT.to_string(), "40".to_string());
    }
    group_tags.insert(tags::REPLACE_PER_CYCLE.to_string(), (1 + g % 3).to_string());
    Fleet::new()
        .named(&name)
        .max(GROUP_SIZE as u32)
        .grace(GRACE_SECS)
        .with_group(|group| {
            group.min_size = 2;
            group.launch_source = LaunchSource::Template(LaunchTemplateRef {
                id: Some(format!("lt-{g:017x}")),
                name: Some(format!("svc-{g:04}")),
                version: "$Latest".into(),
            });
            group.tags = group_tags;
            group.propagated_tags = propagated;
            group.has_terminating_hook = Some(g % 2 == 1);
        })
        .group
}

/// A region of `groups` managed groups of [`GROUP_SIZE`] instances each.
fn region(groups: usize) -> RegionSnapshot {
    let mut r = Region {
        groups: Vec::with_capacity(groups),
        instances: BTreeMap::new(),
        next_id: 0,
    };
    for g in 0..groups {
        let mut group = empty_group(g);
        let od_type = ON_DEMAND_TYPES[g % ON_DEMAND_TYPES.len()];
        let spot = spot_types(od_type);
        let az = |slot: usize| AZS[(g + slot) % AZS.len()];
        // Slots the swaps of this group's kind use; every other slot is a plain member.
        let (plain, kind) = match g % 4 {
            0 => (GROUP_SIZE, 0),
            1 => (GROUP_SIZE - 2, 1),
            2 => (GROUP_SIZE - 2, 2),
            _ => (GROUP_SIZE - 1, 3),
        };
        let spot_count = 2 + g % 7;
        let mut on_demand = Vec::new();
        for slot in 0..plain {
            let age = 60 * 24 * (1 + (g * 7 + slot * 13) % 90) as i64;
            if slot < spot_count {
                let ty = spot[slot % spot.len()];
                r.member(&mut group, ty, az(slot), Lifecycle::Spot, age);
            } else {
                on_demand.push(r.member(&mut group, od_type, az(slot), Lifecycle::OnDemand, age));
            }
        }
        let lt = launch_type(od_type);
        match kind {
            // A swap ready to attach (MaxSize at desired: RaiseMax), and one launch stuck
            // pending past the orphan age.
            1 => {
                let (a, b) = (on_demand[0].clone(), on_demand[1].clone());
                r.launch(&mut group, &a, lt, InstanceState::Running, Some(true), 8, None);
                r.launch(&mut group, &b, lt, InstanceState::Pending, None, 45, None);
                group.max_size = plain as u32;
            }
            // Two attached launches: one past its grace period (Retire), one inside it.
            2 => {
                let (a, b) = (on_demand[0].clone(), on_demand[1].clone());
                r.launch(
                    &mut group,
                    &a,
                    lt,
                    InstanceState::Running,
                    Some(true),
                    30,
                    Some(1_200),
                );
                r.launch(
                    &mut group,
                    &b,
                    lt,
                    InstanceState::Running,
                    Some(true),
                    12,
                    Some(60),
                );
                group.max_size = GROUP_SIZE as u32;
                group
                    .tags
                    .insert(tags::MAX_RAISED_FROM.to_string(), (GROUP_SIZE - 2).to_string());
            }
            // A spot instance interrupted 15 minutes ago and detached, still running; its
            // pool cools down; a no-capacity mark expired; 25% stays on-demand.
            3 => {
                let pool = Pool::new(spot[0], az(0));
                r.detached(&group, &pool.instance_type, &pool.az, 15);
                group
                    .tags
                    .insert(cooldown_key(&pool), NOW.plus_minutes(45).to_rfc3339());
                group.tags.insert(
                    no_capacity_key(&Pool::new(spot[0], az(1))),
                    NOW.plus_minutes(-10).to_rfc3339(),
                );
                group
                    .tags
                    .insert(tags::ON_DEMAND_PERCENT.to_string(), "25".to_string());
            }
            _ => {}
        }
        group.desired = group.in_service().count() as u32;
        r.groups.push(group);
    }
    RegionSnapshot {
        now: NOW,
        groups: r.groups,
        instances: r.instances,
        market: market(),
        scheduled: Default::default(),
        commitments: Some(Default::default()),
        usage: Vec::new(),
    }
}

/// The instances the reaper's adapter reads: ours and the detached ones.
fn ours(instances: &BTreeMap<String, Instance>) -> BTreeMap<String, Instance> {
    instances
        .iter()
        .filter(|(_, i)| i.tag(tags::GROUP).is_some() || i.tag(tags::DETACHED_AT).is_some())
        .map(|(id, i)| (id.clone(), i.clone()))
        .collect()
}

fn count(plans: &[GroupPlan], f: impl Fn(&ActionKind) -> bool) -> usize {
    plans
        .iter()
        .flat_map(|p| &p.actions)
        .filter(|a| f(&a.kind))
        .count()
}

/// Fail before measuring if the fixture does not exercise the planner.
fn check(snapshot: &RegionSnapshot, groups: usize, settings: &Settings) {
    assert_eq!(snapshot.groups.len(), groups);
    assert_eq!(snapshot.instances.len(), groups * GROUP_SIZE, "instance count");
    let plans = plan_cycle(snapshot, settings);
    assert_eq!(plans.len(), groups);
    assert!(plans.iter().all(|p| p.skip.is_none()), "every group is planned");
    let launches = count(&plans, |k| matches!(k, ActionKind::Launch(_)));
    let attaches = count(&plans, |k| matches!(k, ActionKind::Attach { .. }));
    let retires = count(&plans, |k| matches!(k, ActionKind::Retire { .. }));
    let raises = count(&plans, |k| matches!(k, ActionKind::RaiseMax { .. }));
    assert!(launches >= groups / 2, "launches: {launches}");
    assert!(
        attaches >= groups / 4 && retires >= groups / 4,
        "attaches {attaches}, retires {retires}"
    );
    assert!(raises >= groups / 4, "raises: {raises}");

    let reap = plan_reap(
        &snapshot.groups,
        &ours(&snapshot.instances),
        settings,
        snapshot.now,
        ORPHAN_MINUTES,
    );
    let terminated = reap.terminations().count();
    assert!(terminated >= groups / 2, "reaper terminations: {terminated}");
    let all = plan_reap(
        &snapshot.groups,
        &snapshot.instances,
        settings,
        snapshot.now,
        ORPHAN_MINUTES,
    );
    assert_eq!(all, reap, "untagged instances change nothing");
}

// ---------------------------------------------------------------------------------------------
// benchmarks
// ---------------------------------------------------------------------------------------------

fn planner(c: &mut Criterion) {
    let settings = Settings::default();
    let regions: Vec<(usize, RegionSnapshot)> = GROUP_COUNTS
        .iter()
        .map(|&groups| {
            let snapshot = region(groups);
            check(&snapshot, groups, &settings);
            (groups * GROUP_SIZE, snapshot)
        })
        .collect();

    let mut cycle = c.benchmark_group("plan_cycle");
    cycle.sampling_mode(SamplingMode::Flat).sample_size(10);
    for (n, snapshot) in &regions {
        cycle.throughput(Throughput::Elements(*n as u64));
        cycle.bench_with_input(BenchmarkId::new("instances", n), snapshot, |b, s| {
            b.iter(|| plan_cycle(black_box(s), black_box(&settings)))
        });
    }
    cycle.finish();

    let mut reap = c.benchmark_group("plan_reap");
    reap.sampling_mode(SamplingMode::Flat).sample_size(10);
    for (n, snapshot) in &regions {
        let tagged = ours(&snapshot.instances);
        reap.throughput(Throughput::Elements(*n as u64));
        for (label, instances) in [("ours", &tagged), ("all", &snapshot.instances)] {
            reap.bench_with_input(BenchmarkId::new(label, n), instances, |b, i| {
                b.iter(|| {
                    plan_reap(
                        black_box(&snapshot.groups),
                        black_box(i),
                        black_box(&settings),
                        snapshot.now,
                        ORPHAN_MINUTES,
                    )
                })
            });
        }
    }
    reap.finish();
}

criterion_group!(benches, planner);
criterion_main!(benches);
