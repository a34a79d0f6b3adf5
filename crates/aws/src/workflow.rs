//! The rebalancer's cycle: snapshot → plan → preflight → execute → report.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use spotswap_core::commitments::Ledger;
use spotswap_core::plan::{policy_for, review_group, CandidateReview};
use spotswap_core::{
    plan::blockers::stack_updating, plan::cap_launches, plan_cycle_in, tags, ActionKind, GroupPlan,
    GroupSnapshot, Instance, Outcome, Reason, RegionSnapshot, Scope, Settings, Timestamp,
};
use tokio::sync::Semaphore;
use tracing::{info, warn};

use crate::execute::{Executor, LaunchGuard, MutationBudget};
use crate::report::{Correlation, CycleReport, GroupSummary, Recorder, Timings};
use crate::snapshot::{has_launching_hook, instance_refresh_in_progress, stack_status};
use crate::{snapshot, AdapterError, Aws, Config};

/// Per-invocation options.
#[derive(Debug, Clone, Default)]
pub struct CycleOptions {
    /// Decide and log, change nothing.
    pub dry_run: bool,
    /// Stop starting new swaps when less than `reserve` is left before this instant.
    pub deadline: Option<Instant>,
    /// Time kept back before the deadline; [`RESERVE`] when `None`.
    pub reserve: Option<Duration>,
    /// At most this many mutating calls.
    pub budget: Option<MutationBudget>,
    /// The time to act at; now when `None`.
    pub now: Option<Timestamp>,
    /// A scheduled cycle, or an EC2 state change that only advances swaps in flight.
    pub scope: Scope,
    /// Explain each new swap's candidate search in the report ([`CycleReport::rejections`]):
    /// `spotswap plan`. Costs no AWS call; off by default, as the Lambda needs none of it.
    pub explain: bool,
    /// The ids on every decision line; a fresh cycle id when `None`.
    pub correlation: Option<Correlation>,
}

/// Time kept back at the end of a Lambda invocation: no new swap starts inside it.
pub const RESERVE: Duration = Duration::from_secs(15);

/// The current time.
pub fn now() -> Timestamp {
    Timestamp::from_unix(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0),
    )
}

/// Run one rebalancer cycle over the region.
pub async fn rebalance(aws: &Aws, config: &Config, opts: CycleOptions) -> Result<CycleReport, AdapterError> {
    let started = Instant::now();
    let now = opts.now.unwrap_or_else(now);
    let dry_run = opts.dry_run || config.dry_run;
    let snap = snapshot::take(aws, &config.settings, config.price_file.as_deref(), now).await?;
    crate::migrate::warn_ignored_tags(&snap.groups, &config.settings);
    let mut timings = Timings {
        read_ms: Timings::since(started),
        ..Timings::default()
    };
    let phase = Instant::now();
    let plans = plan_cycle_in(&snap, &config.settings, opts.scope);
    timings.plan_ms = Timings::since(phase);

    let reserve = opts.reserve.unwrap_or(RESERVE);
    let launches_until = opts.deadline.map(|d| d.checked_sub(reserve).unwrap_or(started));
    let guard = if dry_run { None } else { launch_guard(aws, &plans) };
    let prefetch = guard.as_ref().map(LaunchGuard::prefetch);
    let executor = Executor::new(aws, now, dry_run, opts.budget.clone())
        .launches_until(launches_until)
        .launch_guard(guard);
    let phase = Instant::now();
    let ledger = Arc::new(CycleLedger::new(&snap, &plans));
    let snap = Arc::new(snap);
    let acted = act_all(&executor, config, &snap, &ledger, plans).await;
    if let Some(task) = prefetch {
        task.abort();
    }
    timings.execute_ms = Timings::since(phase);
    let (plans, outcomes): (Vec<GroupPlan>, Vec<Vec<Outcome>>) = acted.into_iter().unzip();
    let rejections = if opts.explain {
        review_all(&snap, &config.settings, &plans)
    } else {
        Vec::new()
    };

    let mut recorder = Recorder::new(opts.correlation.clone().unwrap_or_default());
    let mut groups = Vec::new();
    for (plan, outcomes) in plans.iter().zip(outcomes) {
        if let Some(s) = &plan.skip {
            recorder.skip(s);
        }
        // A sheltered group, or one with a bad tag, still advances its swaps in flight: those
        // steps are reported. Only a sheltered group's counts are the group's own.
        for (action, outcome) in plan.actions.iter().zip(outcomes) {
            let mut action = executor.as_launched(action, &outcome);
            enrich_prices(&snap, &mut action);
            recorder.record(&action, outcome);
        }
        if plan.skip.as_ref().is_some_and(|s| s.reason != Reason::Sheltered) {
            continue;
        }
        recorder.census(&plan.group, &plan.census);
        let carried = snap
            .groups
            .iter()
            .find(|g| g.name == plan.group)
            .and_then(|g| spotswap_core::carry::view(g, &snap.instances, &plan.actions))
            .filter(|v| !v.is_empty());
        groups.push(GroupSummary {
            group: plan.group.clone(),
            census: plan.census,
            carried,
        });
    }
    recorder.publish(aws, &config.event_bus, dry_run).await;
    let mut report = CycleReport::from_recorder(recorder, dry_run);
    report.groups = groups;
    report.rejections = rejections;
    report.price_source = Some(snap.market.price_source);
    report.commitments = ledger.summary();
    report.timings = timings;
    report.api_calls = aws.api_calls();
    report.timings.total_ms = Timings::since(started);
    info!(
        groups = report.groups.len(),
        read_ms = report.timings.read_ms,
        plan_ms = report.timings.plan_ms,
        execute_ms = report.timings.execute_ms,
        total_ms = report.timings.total_ms,
        actions = report.actions.len(),
        skipped = report.skipped.len(),
        mutating_calls = report.mutating_calls(),
        dry_run,
        cycle_id = %report.correlation.cycle_id,
        request_id = report.correlation.request_id.as_deref().unwrap_or(""),
        "cycle finished"
    );
    Ok(report)
}

/// Why each new swap's search turned candidate types down, for every group that planned one.
fn review_all(snap: &RegionSnapshot, settings: &Settings, plans: &[GroupPlan]) -> Vec<CandidateReview> {
    plans
        .iter()
        .filter_map(|plan| {
            let group = snap.groups.iter().find(|g| g.name == plan.group)?;
            let policy = policy_for(group, settings).ok()??;
            Some(review_group(
                group,
                &snap.instances,
                &snap.market,
                &policy,
                snap.now,
                &plan.actions,
            ))
        })
        .flatten()
        .collect()
}

/// Fill in the prices a stage action lacks (the planner's stage machine does not need them).
fn enrich_prices(snap: &RegionSnapshot, a: &mut spotswap_core::Action) {
    if a.spot_price.is_none() {
        a.spot_price = a.pool.as_ref().and_then(|p| snap.market.spot_price(p));
    }
    if a.on_demand_price.is_none() {
        let original = match &a.kind {
            ActionKind::Retire { instance, .. } => Some(instance),
            ActionKind::Attach { replaces, .. } => Some(replaces),
            _ => None,
        };
        a.on_demand_price = original
            .and_then(|id| snap.instances.get(id))
            .and_then(|i| snap.market.on_demand_price(&i.instance_type));
    }
}

/// Act on every group with something to do, at most `max_concurrency` at once: each group's
/// preflight reads, then its actions. Results in plan order.
///
/// As many groups again as act at once do their preflight reads ahead, then wait for a slot:
/// a group whose slot frees starts acting at once. Without that, groups acting together ran
/// out of launches together and the next ones all read before any launched, leaving the launch
/// bucket idle for seconds at a time (500 of 543 affordable launches in a 600-swap cycle).
///
/// A group's task is spawned only then, and a group with no action gets none: each task holds
/// the SDK's call futures (kilobytes each), so spawning one per group up front held 17 MB at
/// 1,000 idle groups.
async fn act_all(
    executor: &Executor,
    config: &Config,
    snap: &Arc<RegionSnapshot>,
    ledger: &Arc<CycleLedger>,
    plans: Vec<GroupPlan>,
) -> Vec<(GroupPlan, Vec<Outcome>)> {
    let limit = config.max_concurrency.max(1);
    let acting = Arc::new(Semaphore::new(limit));
    let stacks = Arc::new(Stacks::default());
    let mut set = tokio::task::JoinSet::new();
    let mut out: Vec<Option<(GroupPlan, Vec<Outcome>)>> = Vec::with_capacity(plans.len());
    let mut queue = plans.into_iter().enumerate();
    loop {
        while set.len() < 2 * limit {
            let Some((idx, plan)) = queue.next() else {
                break;
            };
            out.push(None);
            if plan.actions.is_empty() {
                out[idx] = Some((plan, Vec::new()));
                continue;
            }
            let executor = executor.clone();
            let settings = config.settings.clone();
            let snap = snap.clone();
            let ledger = ledger.clone();
            let acting = acting.clone();
            let stacks = stacks.clone();
            set.spawn(async move {
                let plan = preflight(&executor, &settings, &snap, &ledger, &stacks, plan).await;
                let _slot = acting.acquire_owned().await;
                let outcomes = executor.run_group(&plan.actions).await;
                (idx, plan, outcomes)
            });
        }
        let Some(res) = set.join_next().await else {
            break;
        };
        if let Ok((idx, plan, outcomes)) = res {
            out[idx] = Some((plan, outcomes));
        }
    }
    out.into_iter().flatten().collect()
}

/// The CloudFormation stack statuses of one cycle: each distinct stack is asked about once,
/// however many groups share it and however many of their tasks ask at once.
#[derive(Debug, Default)]
struct Stacks(std::sync::Mutex<BTreeMap<String, Arc<tokio::sync::OnceCell<Option<String>>>>>);

impl Stacks {
    /// `StackStatus` of `stack`; `None` when it cannot be read. A stack that does not exist
    /// (deleted, or a tag copied by hand) or cannot be read (a fault, a missing permission) is
    /// taken as not updating, with one WARN line per stack per cycle: not knowing must not stop
    /// every swap, as with an unknown instance refresh.
    async fn status(&self, aws: &Aws, group: &str, stack: &str) -> Option<String> {
        let cell = {
            let mut cells = self.0.lock().unwrap_or_else(|e| e.into_inner());
            cells.entry(stack.to_string()).or_default().clone()
        };
        cell.get_or_init(|| async {
            match stack_status(aws, stack).await {
                Ok(Some(status)) => Some(status),
                Ok(None) => {
                    warn!(reason = "StackNotFound", group, stack, "the group's stack does not exist; taken as not updating");
                    None
                }
                Err(e) => {
                    warn!(reason = "StackStatusUnknown", group, stack, error = %e, "stack status unknown; taken as not updating");
                    None
                }
            }
        })
        .await
        .clone()
    }
}

/// Before launching in a group, read what the snapshot could not afford to read for every
/// group: its CloudFormation stack's status (once per stack per cycle), whether an instance
/// refresh runs, whether a launching lifecycle hook would be skipped by the attach, and each
/// chosen original's termination protection. Re-plan the group when any of them changes the
/// picture, against the cycle's commitments ledger ([`CycleLedger`]).
///
/// Runs inside the group's own task, so one group's reads overlap other groups' launches: at
/// 600 acting groups a separate preflight phase held every launch back by about 25 s of
/// Describe calls at EC2's rates.
async fn preflight(
    executor: &Executor,
    settings: &Settings,
    snap: &RegionSnapshot,
    ledger: &CycleLedger,
    stacks: &Stacks,
    mut plan: GroupPlan,
) -> GroupPlan {
    // Past the time for launches, the reads are for nothing (every launch will be
    // NotAttempted), and a few hundred of them at 20 a second would run the invocation past
    // its reserve into the Lambda timeout.
    if executor.launches_over() {
        return plan;
    }
    let aws = executor.aws();
    let Some(shared) = snap.groups.iter().find(|g| g.name == plan.group) else {
        return plan;
    };
    // Copies of the group and its instances, made on the first change (rare: a refresh running
    // or a launching hook), so the common case shares the snapshot.
    let mut local: Option<(GroupSnapshot, BTreeMap<String, Instance>)> = None;
    // The launches the cycle allotted this group under the region-wide cap: a re-plan never
    // starts more (it may pick other originals, never more of them).
    let allotted = plan.launches();
    // The stack first: a stack mid-update holds every new swap, so nothing else is read.
    if let Some(stack) = shared
        .tag(tags::AWS_CFN_STACK_NAME)
        .filter(|_| shared.stack_status.is_none() && has_launch(&plan))
    {
        if let Some(status) = stacks.status(aws, &plan.group, stack).await {
            let mut group = shared.clone();
            group.stack_status = Some(status);
            if stack_updating(&group).is_some() {
                let (copy, instances) = local.insert(group_copy(&group, &snap.instances));
                if let Ok(Some(policy)) = policy_for(copy, settings) {
                    plan = ledger.replan(snap, &plan, |l| replan(copy, instances, snap, &policy, l));
                }
            }
        }
    }
    // The group's own facts (instance refresh, launching hooks), each read once per group and
    // cycle, only before a launch. EC2 termination protection is not read: see docs/design.md.
    'reads: {
        let group = local.as_ref().map_or(shared, |(g, _)| g);
        let refresh_unknown = group.instance_refresh_in_progress.is_none() && has_launch(&plan);
        // Read once per group and cycle, and only before a launch: most groups launch nothing.
        // A group tagged `spotswap:launch-hooks=bypass` swaps whatever its hooks are, so its
        // read would be for nothing.
        let hooks_unknown =
            group.has_launching_hook.is_none() && has_launch(&plan) && !bypasses_hooks(group, settings);
        if !refresh_unknown && !hooks_unknown {
            break 'reads;
        }
        // Both group reads at once: the preflight holds the group's launches back.
        let (refresh, launch_hook) = tokio::join!(
            async {
                if !refresh_unknown {
                    return None;
                }
                Some(match instance_refresh_in_progress(aws, &plan.group).await {
                    Ok(v) => v,
                    Err(e) => {
                        // AWS answers this for every group; a failure here is a fault or a
                        // missing permission. Not knowing must not stop every swap, so it is
                        // logged and treated as "no refresh".
                        warn!(reason = "InstanceRefreshUnknown", group = %plan.group, error = %e, "instance refresh state unknown; proceeding");
                        false
                    }
                })
            },
            async {
                if hooks_unknown {
                    Some(has_launching_hook(aws, &plan.group).await)
                } else {
                    None
                }
            },
        );
        // Nothing found: the plan stands, and no copy is needed (only a re-plan reads them).
        if refresh != Some(true) && launch_hook != Some(true) {
            break 'reads;
        }
        let (group, instances) = local.get_or_insert_with(|| group_copy(shared, &snap.instances));
        if let Some(found) = launch_hook {
            group.has_launching_hook = Some(found);
        }
        if let Some(found) = refresh {
            group.instance_refresh_in_progress = Some(found);
        }
        if let Ok(Some(policy)) = policy_for(group, settings) {
            plan = ledger.replan(snap, &plan, |l| {
                let mut plan = replan(group, instances, snap, &policy, l);
                if settings.max_swaps_in_flight.is_some() {
                    cap_launches(std::slice::from_mut(&mut plan), allotted);
                }
                plan
            });
        }
    }
    plan
}

/// Whether the group's owner tagged `spotswap:launch-hooks=bypass`: its launching hooks block
/// nothing ([`spotswap_core::plan::launch_hook_blocker`]), so they need not be read.
fn bypasses_hooks(group: &GroupSnapshot, settings: &Settings) -> bool {
    matches!(policy_for(group, settings), Ok(Some(p)) if !p.launch_hooks.matter())
}

/// A group's plan again, from what the preflight learned, under `ledger`.
fn replan(
    group: &GroupSnapshot,
    instances: &BTreeMap<String, Instance>,
    snap: &RegionSnapshot,
    policy: &spotswap_core::Policy,
    ledger: &mut Ledger,
) -> GroupPlan {
    spotswap_core::plan::plan_group_with(
        group,
        instances,
        &snap.market,
        policy,
        &snap.scheduled,
        snap.now,
        ledger,
    )
}

/// The cycle's commitments ledger, shared by the groups' preflights: the snapshot's
/// commitments with what the cycle planned for every group. A group planned again sees the
/// units and commitment the other groups' plans took, so two groups never both claim the same
/// unused RI units in one cycle; its new plan then takes its old plan's place.
#[derive(Debug)]
struct CycleLedger(std::sync::Mutex<Ledger>);

impl CycleLedger {
    fn new(snap: &RegionSnapshot, plans: &[GroupPlan]) -> Self {
        Self(std::sync::Mutex::new(Ledger::new(snap).after_plans(snap, plans)))
    }

    /// `plan` (the planner, on a scratch copy) against the ledger without `old`, the group's
    /// plan until now; what it returns is recorded in `old`'s place. One re-plan at a time.
    fn replan(
        &self,
        snap: &RegionSnapshot,
        old: &GroupPlan,
        plan: impl FnOnce(&mut Ledger) -> GroupPlan,
    ) -> GroupPlan {
        let mut cycle = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let others = std::mem::take(&mut *cycle).without_plans(snap, std::slice::from_ref(old));
        let new = plan(&mut others.clone());
        *cycle = others.after_plans(snap, std::slice::from_ref(&new));
        new
    }

    /// The `commitments` section of the report: now, and after the cycle's plans.
    fn summary(&self) -> Option<spotswap_core::commitments::Summary> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).summary()
    }
}

/// The group and the instances its plan reads: its members and our launches for it.
fn group_copy(
    group: &GroupSnapshot,
    all: &BTreeMap<String, Instance>,
) -> (GroupSnapshot, BTreeMap<String, Instance>) {
    let mut instances: BTreeMap<String, Instance> = group
        .members
        .iter()
        .filter_map(|m| all.get(&m.id).map(|i| (m.id.clone(), i.clone())))
        .collect();
    for i in all.values().filter(|i| i.is_launch_for(&group.name)) {
        instances.insert(i.id.clone(), i.clone());
    }
    (group.clone(), instances)
}

/// The guard against launching twice for one original: our launches replacing any original
/// this cycle is about to replace, read in batches as the cycle goes (a cycle that ran since
/// the snapshot may have launched one). `None` when there is nothing to launch.
fn launch_guard(aws: &Aws, plans: &[GroupPlan]) -> Option<LaunchGuard> {
    let originals: Vec<String> = plans
        .iter()
        .flat_map(|p| &p.actions)
        .filter(|a| matches!(a.kind, ActionKind::Launch(_)))
        .filter_map(|a| a.instance.clone())
        .collect();
    (!originals.is_empty()).then(|| LaunchGuard::new(aws, originals))
}

fn has_launch(plan: &GroupPlan) -> bool {
    plan.actions
        .iter()
        .any(|a| matches!(a.kind, ActionKind::Launch(_)))
}
