//! Chaos: randomized, seeded fault schedules over a realistic moto fleet (issue 6).
//!
//! One schedule, from its seed alone:
//!
//! - a fresh region behind its own fault and market proxy: a managed group (desired 2 or 3,
//!   MaxSize at desired or one above, a floor of 0%, 50% or a base of 1, one or two swaps per
//!   cycle, in half the schedules one member already a converged spot instance) and an
//!   unmanaged group, spot prices per pool, sometimes pools without capacity;
//! - five steps, each one of: a rebalancer cycle, two cycles at once, a spot interruption
//!   warning (then the interruption itself: EC2 terminates or stops the instance once it has
//!   left the group), a rebalance recommendation, an event delivered three times or three
//!   times at once, a reaper pass (now, or with the clock past the orphan age). Each step runs
//!   under random faults from the proxy (throttles, 500, 503, a dropped connection after a
//!   mutating call went through) and may be killed after any mutating call (a
//!   [`MutationBudget`]);
//! - then the settle: faults off, fresh cycles until quiet, a reaper pass past the orphan age.
//!
//! The proxy boots a group's replacements in AWS's 90 s, on its own clock, which moves 30 s
//! after every step (moto lists them InService at once, hiding the dip an interruption makes).
//!
//! After every step: DESIGN.md §8 invariants 1 (InService never below the desired capacity
//! the schedule began with, less the replacements still booting for instances that an
//! interruption warning took: what AWS itself takes), 2 (every retire's replacement was InService before the step), 4
//! (the unmanaged group is untouched and never named in an executed action). After each
//! fault-free reaper pass past the orphan age, and after the settle: 5 (nothing of ours outside
//! a group, no detached instance alive, MaxSize back with no record) and 6 (no extra launch:
//! one live launch per replaced instance, the group at its desired capacity).
//!
//! A violation prints the seed, the steps and a replay command. `make chaos` runs 1,000
//! schedules; `make test` runs the fixed-seed slice and every seed that once found a bug.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use spotswap_aws::cache::MarketCache;
use spotswap_aws::workflow::now;
use spotswap_aws::{
    handle_event, reap, rebalance, Config, CycleOptions, EventOptions, MutationBudget, Outcome,
};
use spotswap_core::{tags, ActionKind};
use spotswap_tests::fleet::{
    moto_endpoint, moto_endpoints, sample_price_file, warm_container, Env, GroupSpec, GroupState,
    InstanceState,
};
use spotswap_tests::proxy::{reset_moto, Fault, FaultKind, Proxy, DEFAULT_BOOT_DELAY};

/// Seeds that once found a bug; each stays as a regression test in `make test`.
///
/// - 1: a spot replacement interrupted after its attach but before its original's retire was
///   detached without decrement, leaving desired one above the user's for good (fixed in
///   `decide_spot_warning`: `ReplacementInterrupted`).
/// - 27: the mirror: a swap's original interrupted while its replacement was already attached
///   (fixed in `decide_spot_warning`: `OriginalAlreadyReplaced`; the handler now reads our
///   launches replacing the instance with the group).
/// - 117: two cycles at once attached the same launch twice. AWS refuses an instance that is
///   already a member; moto attached it again (desired +2, a duplicate member), so the proxy
///   now answers AttachInstances as AWS does.
/// - 59: a kill between the record of a further MaxSize raise (`max-raised-to`) and the raise
///   itself left MaxSize below the recorded `to`; the next raise took that for the owner's
///   change and recorded it as the original, so MaxSize ended one above where it began. Inside
///   `from..=to`, MaxSize is now ours.
const REGRESSION_SEEDS: &[u64] = &[1, 27, 59, 117];

/// Schedules on one moto server between two resets in `make chaos`.
const RESET_EVERY: usize = 60;

/// Schedules in the `make test` slice (seeds 1..=N).
const SLICE: u64 = 12;

/// How far the proxy's clock moves after each step: a replacement boots over three steps.
const STEP_TIME: std::time::Duration = std::time::Duration::from_secs(30);

// ---------------------------------------------------------------- the seeded RNG

/// SplitMix64: small, fast, and the same on every machine.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed ^ 0x5DEE_CE66_D1CE_4E5B)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

// ---------------------------------------------------------------- one schedule

const TYPES: [&str; 4] = ["m5.large", "m5a.large", "m6i.large", "m5d.large"];

/// Operations a fault may hit: every mutating call the functions make, and the reads they
/// depend on.
const FAULT_OPS: [&str; 14] = [
    "ec2:CreateFleet",
    "ec2:CreateTags",
    "ec2:TerminateInstances",
    "ec2:DescribeInstances",
    "ec2:DescribeSpotPriceHistory",
    "autoscaling:AttachInstances",
    "autoscaling:DetachInstances",
    "autoscaling:TerminateInstanceInAutoScalingGroup",
    "autoscaling:UpdateAutoScalingGroup",
    "autoscaling:CreateOrUpdateTags",
    "autoscaling:DeleteTags",
    "autoscaling:DescribeAutoScalingGroups",
    "autoscaling:DescribeAutoScalingInstances",
    "events:PutEvents",
];

#[derive(Debug, Clone, Copy)]
enum Step {
    Cycle,
    TwoCycles,
    Warning,
    Recommendation,
    Redelivery,
    Reap { past_orphan_age: bool },
}

impl Step {
    fn draw(rng: &mut Rng) -> Self {
        match rng.below(100) {
            0..=29 => Self::Cycle,
            30..=39 => Self::TwoCycles,
            40..=57 => Self::Warning,
            58..=67 => Self::Recommendation,
            68..=77 => Self::Redelivery,
            _ => Self::Reap {
                past_orphan_age: rng.chance(50),
            },
        }
    }
}

/// What a schedule saw; `violations` empty when every invariant held.
#[derive(Default)]
struct Outcomes {
    steps: Vec<String>,
    violations: Vec<String>,
    killed: u32,
    faults: u32,
    swaps_completed: u32,
    /// Steps that ended with a warned instance's replacement still booting: the capacity dip
    /// invariant 1 was checked across.
    booting_seen: u32,
    /// Calls and wall time per operation at the proxy, harness reads included.
    profile: BTreeMap<String, (u64, f64)>,
}

/// What the harness saw of the region: both groups from one DescribeAutoScalingGroups and the
/// live instances from one DescribeInstances. The view after a step is the view before the
/// next, so each step costs the harness two reads.
#[derive(Clone)]
struct View {
    managed: GroupState,
    unmanaged: GroupState,
    live: BTreeMap<String, InstanceState>,
}

struct Schedule {
    seed: u64,
    rng: Rng,
    env: Env,
    proxy: Proxy,
    /// One warm container for the schedule's functions: on-demand prices fetched once.
    cache: MarketCache,
    subnets: Vec<(String, String)>,
    view: View,
    managed: String,
    unmanaged: String,
    desired: usize,
    max: i32,
    unmanaged_before: GroupState,
    config: Config,
    kill_after: Option<u64>,
    last_faults: u64,
    /// Instances an interruption warning was delivered for: AWS takes them, whatever we do.
    warned: BTreeSet<String>,
    clock: Instant,
    out: Outcomes,
}

impl Schedule {
    async fn set_up(seed: u64, moto: &str) -> Self {
        let mut rng = Rng::new(seed);
        let proxy = Proxy::start(moto).await.expect("proxy");
        proxy.set_boot_delay(Some(DEFAULT_BOOT_DELAY));
        let env = Env::at(&proxy.url()).await;
        let subnets = env.subnets().await;

        // the market: every candidate pool priced, below the m5.large on-demand price
        proxy.set_market_only(true);
        for (_, az) in &subnets {
            for ty in TYPES {
                let price = 0.02 + rng.below(50) as f64 / 1000.0;
                proxy.set_spot_price(ty, az, price);
            }
        }
        // drawn here, applied once the groups stand (a converged spot member is launched first)
        let no_capacity_az = rng.chance(25).then(|| rng.pick(&subnets).1.clone());
        let no_capacity_anywhere = rng.chance(10);

        let desired = 2 + rng.below(2) as i32;
        let max = desired + rng.below(2) as i32;
        let mut spec = GroupSpec {
            max,
            ..GroupSpec::managed(&format!("chaos-{seed}"), desired)
        };
        match rng.below(3) {
            0 => {}
            1 => spec = spec.tag("spotswap:on-demand-percent", "50"),
            _ => spec = spec.tag("spotswap:on-demand-base", "1"),
        }
        if rng.chance(50) {
            spec = spec.tag("spotswap:replace-per-cycle", "2");
        }
        if rng.chance(30) {
            spec = spec.tag("spotswap:on-rebalance", "ignore");
        }
        // Some schedules swap in batches (issue 22): every member in one subnet, no pool cap,
        // all due at once, so the launches share one CreateFleet and the attaches one call.
        // Drawn from an RNG of its own, so the main sequence stays as it was.
        if !REGRESSION_SEEDS.contains(&seed) && Rng::new(seed ^ 0xBA7C_4ED0).chance(40) {
            spec.subnets = 1;
            spec = spec
                .tag("spotswap:max-pool-percent", "100")
                .tag("spotswap:replace-per-cycle", "3");
        }
        let managed = env.group(&spec).await;
        let unmanaged = env
            .group(&GroupSpec::managed(&format!("chaos-{seed}-other"), 1).unmanaged())
            .await;
        // Half the schedules begin with one converged spot member (a swap completed long ago),
        // so warnings meet the detach whose replacement boots. Drawn from a second RNG: the
        // main one's sequence stays as it was. The regression seeds keep the schedules they
        // found their bugs with.
        if !REGRESSION_SEEDS.contains(&seed) && Rng::new(seed ^ 0xB007_DE1A).chance(50) {
            let od = env.group_state(&managed).await.in_service()[0].clone();
            env.asg
                .detach_instances()
                .auto_scaling_group_name(&managed)
                .instance_ids(&od)
                .should_decrement_desired_capacity(true)
                .send()
                .await
                .expect("detach an on-demand member");
            let _ = env.ec2.terminate_instances().instance_ids(&od).send().await;
            super::interruption::spot_member(&env, &managed).await;
        }
        if let Some(az) = &no_capacity_az {
            proxy.set_no_capacity("*", az, true);
        }
        if no_capacity_anywhere {
            proxy.set_no_capacity("*", "*", true);
        }
        let [managed_state, unmanaged_before]: [GroupState; 2] = env
            .group_states(&[&managed, &unmanaged])
            .await
            .try_into()
            .unwrap_or_else(|_| panic!("two groups"));
        let view = View {
            managed: managed_state,
            unmanaged: unmanaged_before.clone(),
            live: env.live_instances().await,
        };
        let config = Config {
            price_file: Some(sample_price_file()),
            event_bus: if rng.chance(30) {
                "default".into()
            } else {
                String::new()
            },
            ..Config::default()
        };
        Self {
            seed,
            rng,
            env,
            proxy,
            cache: warm_container(),
            subnets,
            view,
            managed,
            unmanaged,
            desired: desired as usize,
            max,
            unmanaged_before,
            config,
            kill_after: None,
            last_faults: 0,
            warned: BTreeSet::new(),
            clock: Instant::now(),
            out: Outcomes::default(),
        }
    }

    /// Random faults for one step, and whether it is killed after some mutating call.
    fn arm(&mut self) -> Option<MutationBudget> {
        self.proxy.set_seed(self.rng.next());
        let n = self.rng.below(3);
        self.last_faults = n;
        for _ in 0..n {
            let op = *self.rng.pick(&FAULT_OPS);
            let kind = match self.rng.below(4) {
                0 => FaultKind::Throttle,
                1 => FaultKind::Http500,
                2 => FaultKind::Http503,
                _ => FaultKind::DropAfterForward,
            };
            let fault = match self.rng.below(3) {
                0 => Fault::once(op, kind),
                1 => Fault::once(op, kind).times(1 + self.rng.below(4) as u32),
                _ => Fault::always(op, kind).with_probability(0.3),
            };
            self.out.faults += 1;
            self.proxy.add_fault(fault);
        }
        self.kill_after = self.rng.chance(30).then(|| self.rng.below(6));
        self.out.killed += u32::from(self.kill_after.is_some());
        self.kill_after.map(MutationBudget::new)
    }

    fn disarm(&self) {
        self.proxy.clear_faults();
    }

    async fn look(&self) -> View {
        let names = [self.managed.as_str(), self.unmanaged.as_str()];
        let (groups, live) = tokio::join!(self.env.group_states(&names), self.env.live_instances());
        let [managed, unmanaged]: [GroupState; 2] =
            groups.try_into().unwrap_or_else(|_| panic!("two groups"));
        View {
            managed,
            unmanaged,
            live,
        }
    }

    fn note(&mut self, step: String) {
        let ms = self.clock.elapsed().as_millis();
        self.clock = Instant::now();
        self.out.steps.push(format!("{step} ({ms} ms)"));
    }

    fn violation(&mut self, what: String) {
        let step = self.out.steps.len();
        self.out.violations.push(format!("step {step}: {what}"));
    }

    async fn cycle(&self, budget: Option<MutationBudget>) -> Option<spotswap_aws::CycleReport> {
        let opts = CycleOptions {
            budget,
            ..CycleOptions::default()
        };
        rebalance(&self.env.aws_in(&self.cache), &self.config, opts)
            .await
            .ok()
    }

    async fn reaper(&self, budget: Option<MutationBudget>, past: bool) -> Option<spotswap_aws::CycleReport> {
        let opts = CycleOptions {
            budget,
            now: past.then(|| now().plus_minutes(31)),
            ..CycleOptions::default()
        };
        reap(&self.env.aws_in(&self.cache), &self.config, opts).await.ok()
    }

    async fn event(&self, raw: &str, budget: Option<MutationBudget>) -> Option<spotswap_aws::EventReport> {
        let opts = EventOptions {
            budget,
            ..EventOptions::default()
        };
        handle_event(&self.env.aws_in(&self.cache), &self.config, raw, opts)
            .await
            .ok()
    }

    /// A member of the managed group, spot when `spot`, as last seen.
    fn member(&mut self, spot: bool) -> Option<String> {
        let ids: Vec<String> = self
            .view
            .managed
            .in_service()
            .into_iter()
            .filter(|id| self.view.live.get(id).is_some_and(|i| i.spot == spot))
            .collect();
        (!ids.is_empty()).then(|| self.rng.pick(&ids).clone())
    }

    fn event_json(&mut self, detail_type: &str, instance: &str) -> String {
        let detail = if detail_type == "EC2 Spot Instance Interruption Warning" {
            let action = *self.rng.pick(&["terminate", "stop", "hibernate"]);
            serde_json::json!({"instance-id": instance, "instance-action": action})
        } else {
            serde_json::json!({"instance-id": instance})
        };
        serde_json::json!({
            "version": "0",
            "id": format!("chaos-{}-{}", self.seed, self.rng.next()),
            "detail-type": detail_type,
            "source": "aws.ec2",
            "account": "123456789012",
            "time": now().to_rfc3339(),
            "region": self.env.region(),
            "resources": [format!("arn:aws:ec2:{}:123456789012:instance/{instance}", self.env.region())],
            "detail": detail,
        })
        .to_string()
    }

    /// EC2 carries out an interruption once the instance has left the group (as it would two
    /// minutes after the warning). One still in the group was not handled (a killed or failed
    /// invocation): the warning then stays a false alarm, so the capacity check keeps
    /// measuring what we did, not what EC2 did.
    async fn interrupt(&mut self, instance: &str) {
        let g = self.env.group_state(&self.managed).await;
        if g.members.contains_key(instance) {
            return;
        }
        if self.rng.chance(70) {
            let _ = self
                .env
                .ec2
                .terminate_instances()
                .instance_ids(instance)
                .send()
                .await;
        } else {
            let _ = self.env.ec2.stop_instances().instance_ids(instance).send().await;
        }
    }

    async fn run_step(&mut self, step: Step) -> Vec<spotswap_aws::report::ActionReport> {
        let before = self.view.clone();
        // the event's instance is chosen before the faults are armed: the harness's own reads
        // must not be faulted
        let event = match step {
            Step::Warning | Step::Recommendation | Step::Redelivery => {
                let warning = !matches!(step, Step::Recommendation) && self.rng.chance(70);
                let kind = if warning {
                    "EC2 Spot Instance Interruption Warning"
                } else {
                    "EC2 Instance Rebalance Recommendation"
                };
                match self.member(true) {
                    Some(instance) => Some((warning, kind, instance)),
                    None => {
                        self.note(format!("{step:?}: no spot member yet, nothing delivered"));
                        return Vec::new();
                    }
                }
            }
            _ => None,
        };
        let budget = self.arm();
        let mut actions = Vec::new();
        let mut label = format!(
            "{step:?} faults={} kill_after={:?}",
            self.proxy.pending_faults(),
            self.kill_after
        );
        match (step, event) {
            (Step::Cycle, _) => {
                if let Some(r) = self.cycle(budget).await {
                    actions.extend(r.actions);
                }
            }
            (Step::TwoCycles, _) => {
                let (a, b) = tokio::join!(self.cycle(budget.clone()), self.cycle(budget));
                actions.extend(a.into_iter().chain(b).flat_map(|r| r.actions));
            }
            (Step::Reap { past_orphan_age }, _) => {
                if let Some(r) = self.reaper(budget, past_orphan_age).await {
                    actions.extend(r.actions);
                }
            }
            (_, Some((warning, kind, instance))) => {
                if warning {
                    self.warned.insert(instance.clone());
                }
                let raw = self.event_json(kind, &instance);
                label = format!("{label} {kind} {instance}");
                if matches!(step, Step::Redelivery) {
                    if self.rng.chance(50) {
                        label.push_str(" x3 in a row");
                        for _ in 0..3 {
                            if let Some(r) = self.event(&raw, budget.clone()).await {
                                actions.extend(r.decisions);
                            }
                        }
                    } else {
                        label.push_str(" x3 at once");
                        let (a, b, c) = tokio::join!(
                            self.event(&raw, budget.clone()),
                            self.event(&raw, budget.clone()),
                            self.event(&raw, budget.clone())
                        );
                        actions.extend([a, b, c].into_iter().flatten().flat_map(|r| r.decisions));
                    }
                } else if let Some(r) = self.event(&raw, budget).await {
                    actions.extend(r.decisions);
                }
                self.disarm();
                if warning {
                    self.interrupt(&instance).await;
                }
            }
            (_, None) => unreachable!("events have an instance"),
        }
        self.disarm();
        self.note(format!("{label} -> {}", decisions(&actions)));
        self.check_step(&before, &actions).await;
        actions
    }

    /// Invariants 1, 2 and 4, after every step; the view after it becomes the current one.
    async fn check_step(&mut self, before: &View, actions: &[spotswap_aws::report::ActionReport]) {
        self.view = self.look().await;
        let g = self.view.managed.clone();
        // What AWS itself takes: a warned instance's replacement still booting.
        let booting: Vec<String> = self
            .proxy
            .booting(&self.managed)
            .into_iter()
            .filter(|b| self.warned.contains(&b.replaces))
            .map(|b| b.instance)
            .collect();
        self.out.booting_seen += u32::from(!booting.is_empty());
        if g.in_service().len() + booting.len() < self.desired {
            self.violation(format!(
                "invariant 1: {} has {} InService ({} booting for interrupted instances: {booting:?}), began with desired {}: {:?}",
                self.managed,
                g.in_service().len(),
                booting.len(),
                self.desired,
                g.members
            ));
        }
        for a in actions {
            if matches!(a.kind, ActionKind::Retire { .. }) && matches!(a.outcome, Outcome::Done(_)) {
                self.out.swaps_completed += 1;
                let retired = a.instance.clone().unwrap_or_default();
                // (a batch swap's original names itself once anchored: not its own replacement)
                let replaced_in_service = before.live.iter().any(|(id, i)| {
                    *id != retired
                        && i.tags.get(tags::REPLACES) == Some(&retired)
                        && before.managed.members.get(id).map(String::as_str) == Some("InService")
                });
                if !replaced_in_service {
                    self.violation(format!(
                        "invariant 2: {retired} retired without an InService replacement before the step"
                    ));
                }
            }
            if a.group == self.unmanaged
                && !matches!(a.outcome, Outcome::NotAttempted(_))
                && !matches!(a.kind, ActionKind::Wait)
                && !matches!(a.kind, ActionKind::Ignore)
            {
                self.violation(format!(
                    "invariant 4: executed {} on unmanaged {}",
                    a.kind.name(),
                    a.group
                ));
            }
        }
        let u = &self.view.unmanaged;
        if *u != self.unmanaged_before {
            self.violation(format!(
                "invariant 4: unmanaged {} changed: {:?} -> {u:?}",
                self.unmanaged, self.unmanaged_before
            ));
        }
    }

    /// Invariant 5 (and the no-extra-launch half of 6), after a fault-free reaper pass past the
    /// orphan age. `settled` adds MaxSize and the group's size (no swap can be in flight).
    fn check_clean(&mut self, settled: bool) {
        let live = self.view.live.clone();
        let g = self.view.managed.clone();
        let members: BTreeSet<String> = g
            .members
            .keys()
            .chain(self.unmanaged_before.members.keys())
            .cloned()
            .collect();
        for (id, i) in &live {
            if i.tags.contains_key(tags::GROUP) && !members.contains(id) {
                self.violation(format!(
                    "invariant 5: ours outside a group after the reaper: {id} {:?}",
                    i.tags
                ));
            }
            if i.tags.contains_key(tags::DETACHED_AT) && !members.contains(id) {
                self.violation(format!(
                    "invariant 5: detached {id} ({}) alive after the reaper",
                    i.state
                ));
            }
        }
        let mut per_original: BTreeMap<&String, Vec<&String>> = BTreeMap::new();
        for (id, i) in &live {
            if let Some(r) = i.tags.get(tags::REPLACES).filter(|r| *r != id) {
                if g.members.contains_key(r) {
                    per_original.entry(r).or_default().push(id);
                }
            }
        }
        for (original, launches) in per_original {
            if launches.len() > 1 {
                self.violation(format!(
                    "invariant 6: {} live launches replace {original}: {launches:?}",
                    launches.len()
                ));
            }
        }
        if settled {
            if g.max != self.max || g.tags.contains_key(tags::MAX_RAISED_FROM) {
                self.violation(format!(
                    "invariant 5: MaxSize {} (record {:?}), began at {}",
                    g.max,
                    g.tags.get(tags::MAX_RAISED_FROM),
                    self.max
                ));
            }
            if g.desired as usize != self.desired || g.members.len() != self.desired {
                self.violation(format!(
                    "invariant 6: desired {} with {} members, began at {}: {:?}",
                    g.desired,
                    g.members.len(),
                    self.desired,
                    g.members
                ));
            }
        }
    }

    /// Faults off, capacity back: fresh cycles until one is quiet, then a reaper pass past the
    /// orphan age, then the end-state checks.
    async fn settle(&mut self) {
        // every replacement has booted by now
        self.proxy.advance_clock(DEFAULT_BOOT_DELAY);
        self.proxy.set_no_capacity("*", "*", false);
        for (_, az) in &self.subnets {
            self.proxy.set_no_capacity("*", az, false);
        }
        let mut quiet = false;
        for _ in 0..8 {
            let before = self.view.clone();
            let Some(r) = self.cycle(None).await else {
                self.violation("settle: a fault-free cycle failed".into());
                return;
            };
            self.note(format!("settle cycle -> {}", decisions(&r.actions)));
            self.check_step(&before, &r.actions).await;
            if r.mutating_calls() == 0 {
                quiet = true;
                break;
            }
        }
        if !quiet {
            self.violation("settle: no quiet cycle in 8".into());
        }
        if self.reaper(None, true).await.is_none() {
            self.violation("settle: a fault-free reaper pass failed".into());
        }
        self.note("settle reaper past the orphan age".into());
        // the pass may have ended a launch and restored MaxSize: one more quiet cycle to finish
        let _ = self.cycle(None).await;
        let _ = self.reaper(None, true).await;
        self.view = self.look().await;
        self.check_clean(true);
    }
}

/// The decisions of a step, one `action reason instance outcome` each, for the replay print.
fn decisions(actions: &[spotswap_aws::report::ActionReport]) -> String {
    let d: Vec<String> = actions
        .iter()
        .filter(|a| !matches!(a.kind, ActionKind::Wait))
        .map(|a| {
            format!(
                "{} {} {} {}",
                a.kind.name(),
                a.reason,
                a.instance.as_deref().unwrap_or(&a.group),
                serde_json::to_value(&a.outcome).map_or_else(|_| "?".into(), |v| v.to_string())
            )
        })
        .collect();
    format!("[{}]", d.join("; "))
}

async fn run_schedule(seed: u64, moto: &str) -> Outcomes {
    let mut s = Schedule::set_up(seed, moto).await;
    for _ in 0..5 {
        let step = Step::draw(&mut s.rng);
        s.run_step(step).await;
        s.proxy.advance_clock(STEP_TIME);
        let clean = s.kill_after.is_none() && s.last_faults == 0;
        if clean
            && matches!(
                step,
                Step::Reap {
                    past_orphan_age: true
                }
            )
        {
            s.check_clean(false);
        }
    }
    s.settle().await;
    let busy = s.proxy.busy();
    for (op, n) in s.proxy.calls() {
        let secs = busy.get(&op).map_or(0.0, |d| d.as_secs_f64());
        s.out.profile.insert(op, (n, secs));
    }
    s.out
}

/// A moto server and the gate that lets it be reset between schedules.
struct Server {
    url: String,
    /// Held shared by each schedule on the server, exclusively by a reset.
    gate: tokio::sync::RwLock<()>,
    /// Schedules finished on the server since its last reset.
    since_reset: AtomicUsize,
}

/// Run `seeds` on `workers` concurrent schedules spread over every moto server; print the
/// closing line and every violation with its replay command. Returns the number of violations.
///
/// `reset_every`: moto keeps every terminated instance, and its reads slow down as a region
/// fills with them, so a long run resets a server after this many schedules on it (the next
/// schedules wait for the ones in flight to end). `None` for runs that share moto with other
/// tests (the `make test` slice).
async fn run_schedules(seeds: Vec<u64>, workers: usize, reset_every: Option<usize>) -> usize {
    let started = Instant::now();
    let seeds = Arc::new(seeds);
    let next = Arc::new(AtomicUsize::new(0));
    let servers: Vec<Arc<Server>> = moto_endpoints()
        .into_iter()
        .map(|url| {
            Arc::new(Server {
                url,
                gate: tokio::sync::RwLock::new(()),
                since_reset: AtomicUsize::new(0),
            })
        })
        .collect();
    let mut tasks = Vec::new();
    for w in 0..workers {
        let (seeds, next) = (seeds.clone(), next.clone());
        let server = servers[w % servers.len()].clone();
        tasks.push(tokio::spawn(async move {
            let mut results = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(&seed) = seeds.get(i) else { break };
                let out = {
                    let _shared = server.gate.read().await;
                    run_schedule(seed, &server.url).await
                };
                let since_reset = server.since_reset.fetch_add(1, Ordering::Relaxed) + 1;
                if reset_every.is_some_and(|n| since_reset == n) {
                    let _alone = server.gate.write().await;
                    reset_moto(&server.url).await.expect("moto reset");
                    server.since_reset.store(0, Ordering::Relaxed);
                }
                if !out.violations.is_empty() {
                    eprintln!("chaos: seed {seed} violated an invariant:");
                    for v in &out.violations {
                        eprintln!("  {v}");
                    }
                    eprintln!("  steps: {:?}", out.steps);
                    eprintln!(
                        "  replay: CHAOS_SEED={seed} scripts/with-moto.sh cargo test --workspace --test integration -- --ignored chaos::replay --nocapture"
                    );
                }
                results.push((seed, out));
            }
            results
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("chaos worker"));
    }
    let violations: usize = all.iter().map(|(_, o)| o.violations.len()).sum();
    let killed: u32 = all.iter().map(|(_, o)| o.killed).sum();
    let faults: u32 = all.iter().map(|(_, o)| o.faults).sum();
    let swaps: u32 = all.iter().map(|(_, o)| o.swaps_completed).sum();
    let booting: u32 = all.iter().map(|(_, o)| o.booting_seen).sum();
    println!(
        "chaos: {} schedules, {violations} invariant violations ({faults} faults armed, {killed} kills, {swaps} swaps completed, {booting} steps across a replacement's boot, {:.0} s)",
        all.len(),
        started.elapsed().as_secs_f64()
    );
    if std::env::var_os("CHAOS_PROFILE").is_some() {
        let mut profile: BTreeMap<&String, (u64, f64)> = BTreeMap::new();
        for (op, (n, secs)) in all.iter().flat_map(|(_, o)| &o.profile) {
            let e = profile.entry(op).or_default();
            e.0 += n;
            e.1 += secs;
        }
        let mut rows: Vec<_> = profile.into_iter().collect();
        rows.sort_by(|a, b| b.1 .1.total_cmp(&a.1 .1));
        println!("chaos profile (calls, seconds answering, per operation):");
        for (op, (n, secs)) in rows {
            println!("  {op:<52} {n:>7} {secs:>9.1}");
        }
    }
    violations
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .map(|v| v.parse().unwrap_or_else(|_| panic!("{name}={v} is not a number")))
        .unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_slice_keeps_the_invariants() {
    // GIVEN the fixed seeds 1..=12 and every seed that once found a bug
    let mut seeds: Vec<u64> = (1..=SLICE).chain(REGRESSION_SEEDS.iter().copied()).collect();
    seeds.sort_unstable();
    seeds.dedup();
    // WHEN each schedule runs
    let violations = run_schedules(seeds, 3, None).await;
    // THEN no invariant was violated after any step
    assert_eq!(violations, 0, "see the seeds and replay commands above");
}

/// `make chaos`: CHAOS_SCHEDULES (default 1,000) seeds from CHAOS_FIRST_SEED (default 1) on
/// CHAOS_WORKERS (default 8) concurrent schedules, spread over every moto server
/// (`make chaos` starts two: one per core).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "make chaos: 1,000 schedules, about 20 minutes"]
async fn full() {
    let n = env_u64("CHAOS_SCHEDULES", 1000);
    let first = env_u64("CHAOS_FIRST_SEED", 1);
    let workers = env_u64("CHAOS_WORKERS", 8) as usize;
    let violations = run_schedules((first..first + n).collect(), workers, Some(RESET_EVERY)).await;
    assert_eq!(violations, 0, "see the seeds and replay commands above");
}

/// Replay one schedule: `CHAOS_SEED=<seed>`, printing its steps and decisions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run with CHAOS_SEED=<seed> to replay one schedule"]
async fn replay() {
    let seed = env_u64("CHAOS_SEED", 1);
    let out = run_schedule(seed, &moto_endpoint()).await;
    for (i, s) in out.steps.iter().enumerate() {
        println!("step {}: {s}", i + 1);
    }
    assert!(out.violations.is_empty(), "{:#?}", out.violations);
}
