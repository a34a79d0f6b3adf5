//! The rebalancer's cycle: snapshot → plan → preflight → execute → report.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use spotswap_core::metrics::GroupMetrics;
use spotswap_core::{
    plan::policy_for, plan_cycle, plan_group, ActionKind, GroupPlan, RegionSnapshot, Timestamp,
};
use tokio::sync::Semaphore;
use tracing::{info, warn};

use crate::execute::{Executor, MutationBudget, Outcome};
use crate::report::{log_skip, publish, ActionReport, CycleReport, GroupSummary, Notification, Timings};
use crate::snapshot::{instance_refresh_in_progress, termination_protected};
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
    let mut snap = snapshot::take(aws, &config.settings, config.price_file.as_deref(), now).await?;
    let mut timings = Timings {
        read_ms: Timings::since(started),
        ..Timings::default()
    };
    let phase = Instant::now();
    let mut plans = plan_cycle(&snap, &config.settings);
    timings.plan_ms = Timings::since(phase);
    let phase = Instant::now();
    preflight(aws, config, &mut snap, &mut plans).await;
    timings.preflight_ms = Timings::since(phase);

    let reserve = opts.reserve.unwrap_or(RESERVE);
    let launches_until = opts.deadline.map(|d| d.checked_sub(reserve).unwrap_or(started));
    let known = if dry_run {
        None
    } else {
        known_launches(aws, &plans).await
    };
    let executor = Executor::new(aws, now, dry_run, opts.budget.clone())
        .launches_until(launches_until)
        .known_launches(known);
    let phase = Instant::now();
    let outcomes = execute_all(&executor, &plans, config.max_concurrency).await;
    timings.execute_ms = Timings::since(phase);

    let mut report = CycleReport {
        dry_run,
        actions: Vec::new(),
        skipped: Vec::new(),
        groups: Vec::new(),
        api_calls: BTreeMap::new(),
        price_source: Some(snap.market.price_source),
        timings,
        metrics: Vec::new(),
    };
    let mut notes = Vec::new();
    for (plan, outcomes) in plans.iter().zip(outcomes) {
        if let Some(s) = &plan.skip {
            log_skip(s);
            report.skipped.push(s.clone());
        }
        if plan
            .skip
            .as_ref()
            .is_some_and(|s| s.reason != spotswap_core::Reason::Sheltered)
        {
            continue;
        }
        let mut m = GroupMetrics {
            on_demand_count: Some(plan.census.on_demand),
            spot_count: Some(plan.census.spot),
            estimated_hourly_savings: Some(plan.census.hourly_savings),
            ..GroupMetrics::new(&plan.group)
        };
        for (action, outcome) in plan.actions.iter().zip(outcomes) {
            let mut action = action.clone();
            enrich_prices(&snap, &mut action);
            let r = ActionReport::new(&action, outcome);
            r.log();
            match (&action.kind, &r.outcome) {
                (ActionKind::Launch(_), Outcome::Done(_)) => m.swaps_started += 1,
                (ActionKind::Launch(_), Outcome::Fallback(_)) => m.fallbacks += 1,
                (ActionKind::Retire { .. }, Outcome::Done(_)) if r.reason == "ReplacementInService" => {
                    m.swaps_completed += 1
                }
                _ => {}
            }
            let (instances, pools) = match &action.kind {
                ActionKind::Retire {
                    instance,
                    replacement,
                } => (
                    vec![instance.clone(), replacement.clone()],
                    r.pool.iter().cloned().collect(),
                ),
                _ => (r.instance.iter().cloned().collect(), r.candidates.clone()),
            };
            if let Some(n) = Notification::for_action(&r, instances, pools) {
                notes.push(n);
            }
            report.actions.push(r);
        }
        report.groups.push(GroupSummary {
            group: plan.group.clone(),
            census: plan.census,
        });
        report.metrics.push(m);
    }
    if !dry_run {
        publish(aws, &config.event_bus, &notes).await;
    }
    report.api_calls = aws.api_calls();
    report.timings.total_ms = Timings::since(started);
    info!(
        groups = report.groups.len(),
        read_ms = report.timings.read_ms,
        plan_ms = report.timings.plan_ms,
        preflight_ms = report.timings.preflight_ms,
        execute_ms = report.timings.execute_ms,
        total_ms = report.timings.total_ms,
        actions = report.actions.len(),
        skipped = report.skipped.len(),
        mutating_calls = report.mutating_calls(),
        dry_run,
        "cycle finished"
    );
    Ok(report)
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

/// Before launching in a group, read what the snapshot could not afford to read for every
/// group: whether an instance refresh runs, and each chosen original's termination protection.
/// Re-plan the group when either changes the picture.
///
/// The reads of all acting groups run concurrently (`max_concurrency` groups at once, paced by
/// the token buckets): at 1,000 acting groups, one at a time would spend the cycle waiting on
/// round trips.
async fn preflight(aws: &Aws, config: &Config, snap: &mut RegionSnapshot, plans: &mut [GroupPlan]) {
    for _round in 0..3 {
        // What each acting group still needs to know.
        let mut wanted: Vec<(usize, Option<String>, Vec<String>)> = Vec::new();
        for (pi, plan) in plans.iter().enumerate() {
            let Some(group) = snap.groups.iter().find(|g| g.name == plan.group) else {
                continue;
            };
            let ids: Vec<String> = plan
                .actions
                .iter()
                .filter(|a| matches!(a.kind, ActionKind::Launch(_)))
                .filter_map(|a| a.instance.clone())
                .filter(|id| {
                    snap.instances
                        .get(id)
                        .is_some_and(|i| i.termination_protected.is_none())
                })
                .collect();
            let refresh = group
                .instance_refresh_in_progress
                .is_none()
                .then(|| plan.group.clone());
            if (refresh.is_some() && has_launch(plan)) || !ids.is_empty() {
                wanted.push((pi, refresh, ids));
            }
        }
        if wanted.is_empty() {
            return;
        }
        let sem = Arc::new(Semaphore::new(config.max_concurrency.max(1)));
        let mut set = tokio::task::JoinSet::new();
        for (pi, refresh, ids) in wanted {
            let aws = aws.clone();
            let sem = sem.clone();
            set.spawn(async move {
                let _permit = sem.acquire_owned().await;
                let refresh = match refresh {
                    Some(group) => Some(match instance_refresh_in_progress(&aws, &group).await {
                        Ok(v) => v,
                        Err(e) => {
                            // AWS answers this for every group; a failure here is a fault or a
                            // missing permission. Not knowing must not stop every swap, so it
                            // is logged and treated as "no refresh".
                            warn!(reason = "InstanceRefreshUnknown", group = %group, error = %e, "instance refresh state unknown; proceeding");
                            false
                        }
                    }),
                    None => None,
                };
                let mut protected = Vec::with_capacity(ids.len());
                for id in ids {
                    let p = match termination_protected(&aws, &id).await {
                        Ok(p) => p,
                        Err(e) => {
                            // Unknown protection: do not touch this instance this cycle.
                            warn!(reason = "TerminationProtectionUnknown", instance = %id, error = %e, "skipping instance");
                            true
                        }
                    };
                    protected.push((id, p));
                }
                (pi, refresh, protected)
            });
        }
        let mut changed_plans = Vec::new();
        while let Some(Ok((pi, refresh, protected))) = set.join_next().await {
            let mut changed = false;
            if let Some(gi) = snap.groups.iter().position(|g| g.name == plans[pi].group) {
                if let Some(found) = refresh {
                    snap.groups[gi].instance_refresh_in_progress = Some(found);
                    changed |= found;
                }
            }
            for (id, p) in protected {
                if let Some(inst) = snap.instances.get_mut(&id) {
                    inst.termination_protected = Some(p);
                    changed |= p;
                }
            }
            if changed {
                changed_plans.push(pi);
            }
        }
        if changed_plans.is_empty() {
            return;
        }
        for pi in changed_plans {
            let Some(group) = snap.groups.iter().find(|g| g.name == plans[pi].group) else {
                continue;
            };
            if let Ok(Some(policy)) = policy_for(group, &config.settings) {
                plans[pi] = plan_group(group, &snap.instances, &snap.market, &policy, snap.now);
            }
        }
    }
}

/// One batched read, just before executing, of our launches replacing any original this cycle
/// is about to replace: a cycle that ran since the snapshot may have launched one. `None` (each
/// launch then reads its own) when there is nothing to launch or the read fails.
async fn known_launches(
    aws: &Aws,
    plans: &[GroupPlan],
) -> Option<BTreeMap<String, Vec<spotswap_core::Instance>>> {
    let originals: Vec<String> = plans
        .iter()
        .flat_map(|p| &p.actions)
        .filter(|a| matches!(a.kind, ActionKind::Launch(_)))
        .filter_map(|a| a.instance.clone())
        .collect();
    if originals.is_empty() {
        return None;
    }
    match snapshot::launches_replacing(aws, &originals).await {
        Ok(known) => Some(known),
        Err(e) => {
            warn!(reason = "LaunchLookupFailed", error = %e, "batched launch look-up failed; each launch reads its own");
            None
        }
    }
}

fn has_launch(plan: &GroupPlan) -> bool {
    plan.actions
        .iter()
        .any(|a| matches!(a.kind, ActionKind::Launch(_)))
}

/// Execute every group's actions, a bounded number of groups at once.
async fn execute_all(executor: &Executor, plans: &[GroupPlan], concurrency: usize) -> Vec<Vec<Outcome>> {
    let sem = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut set = tokio::task::JoinSet::new();
    for (idx, plan) in plans.iter().enumerate() {
        let actions = plan.actions.clone();
        let executor = executor.clone();
        let sem = sem.clone();
        set.spawn(async move {
            let _permit = sem.acquire_owned().await;
            (idx, executor.run_group(&actions).await)
        });
    }
    let mut out = vec![Vec::new(); plans.len()];
    while let Some(res) = set.join_next().await {
        if let Ok((idx, outcomes)) = res {
            out[idx] = outcomes;
        }
    }
    out
}
