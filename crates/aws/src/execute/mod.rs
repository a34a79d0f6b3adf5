//! Apply planned actions, idempotently. Each step is safe to repeat and safe to stop after:
//! the state it leaves is in tags, and the next cycle's plan picks up from there.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;

use spotswap_core::fleet::{judge_fleet, FleetError, FleetVerdict};
use spotswap_core::records::{
    max_raised_tags, no_capacity_tags, no_capacity_tags_until, record_interruption_tags, swap_tags,
};
use spotswap_core::{
    tags, Action, ActionKind, Failure, Instance, LaunchSpec, Outcome, Pool, Reason, Timestamp,
};

use crate::port::{op, FleetAnswer, FleetRequest};
use crate::{AdapterError, Aws};

mod batch;
mod guard;

use batch::fleet_answer;

pub(crate) use guard::LaunchGuard;

/// A most-mutating-calls limit for one invocation: a blast-radius guard, and the hook the crash
/// tests use to stop a cycle after any chosen mutating call.
#[derive(Debug, Clone)]
pub struct MutationBudget(Arc<AtomicI64>);

impl MutationBudget {
    /// At most `n` mutating calls.
    pub fn new(n: u64) -> Self {
        Self(Arc::new(AtomicI64::new(n.min(i64::MAX as u64) as i64)))
    }

    fn spend(&self) -> Result<(), AdapterError> {
        if self.0.fetch_sub(1, Ordering::SeqCst) > 0 {
            Ok(())
        } else {
            Err(AdapterError::BudgetExhausted)
        }
    }
}

/// Applies actions for one invocation.
#[derive(Debug, Clone)]
pub struct Executor {
    aws: Aws,
    now: Timestamp,
    dry_run: bool,
    budget: Option<MutationBudget>,
    launches_until: Option<std::time::Instant>,
    guard: Option<LaunchGuard>,
    /// Set once a launch hit an account limit: the limit is region-wide, so no later launch of
    /// the invocation is tried.
    quota_hit: Arc<AtomicBool>,
    /// The pool each launch of this invocation actually got, by instance id: CreateFleet's
    /// answer (or the launch found already made), which may be any of the overrides, not the
    /// first one the plan named.
    launched: Arc<std::sync::Mutex<BTreeMap<String, Pool>>>,
}

impl Executor {
    /// An executor at `now`. With `dry_run`, no mutating call is made.
    pub fn new(aws: &Aws, now: Timestamp, dry_run: bool, budget: Option<MutationBudget>) -> Self {
        Self {
            aws: aws.clone(),
            now,
            dry_run,
            budget,
            launches_until: None,
            guard: None,
            quota_hit: Arc::default(),
            launched: Arc::default(),
        }
    }

    /// `a` as it happened: a launch's pool and spot price are those of the pool CreateFleet
    /// actually launched into (from its answer), not the plan's first override. Any other
    /// action, or a launch that launched nothing, is returned as planned.
    pub fn as_launched(&self, a: &Action, outcome: &Outcome) -> Action {
        let (ActionKind::Launch(spec), Outcome::Done(Some(id)) | Outcome::AlreadyDone(id)) =
            (&a.kind, outcome)
        else {
            return a.clone();
        };
        let Some(pool) = self.launched_pool(id) else {
            return a.clone();
        };
        let mut actual = a.clone();
        actual.spot_price = spec
            .candidates
            .iter()
            .find(|c| c.pool == pool)
            .map(|c| c.spot_price)
            .or(a.spot_price.filter(|_| a.pool.as_ref() == Some(&pool)));
        actual.pool = Some(pool);
        actual
    }

    fn launched_pool(&self, id: &str) -> Option<Pool> {
        self.launched
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }

    fn remember_launch(&self, id: &str, pool: Pool) {
        self.launched
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.to_string(), pool);
    }

    /// The cycle's batched look-up of our launches ([`LaunchGuard`]). A launch whose original
    /// it does not cover (or every launch, without one) reads its own.
    pub(crate) fn launch_guard(mut self, guard: Option<LaunchGuard>) -> Self {
        self.guard = guard;
        self
    }

    /// Start no new swap (Launch) after `until`; swaps in flight still advance.
    pub(crate) fn launches_until(mut self, until: Option<std::time::Instant>) -> Self {
        self.launches_until = until;
        self
    }

    /// Spend one mutating call of the budget (before each mutating call).
    pub(crate) fn spend_one(&self) -> Result<(), AdapterError> {
        self.spend()
    }

    fn spend(&self) -> Result<(), AdapterError> {
        match &self.budget {
            Some(b) => b.spend(),
            None => Ok(()),
        }
    }

    /// No new swap may start any more: the time for launches is up.
    pub(crate) fn launches_over(&self) -> bool {
        self.launches_until
            .is_some_and(|t| std::time::Instant::now() >= t)
    }

    /// Run one group's actions in order. A failure stops the rest of that group's actions:
    /// later steps build on earlier ones.
    ///
    /// A run of launches that send the same request goes out as one CreateFleet, and a run of
    /// attaches shares one AttachInstances ([`spotswap_core::batch::runs`]).
    pub async fn run_group(&self, actions: &[Action]) -> Vec<Outcome> {
        let mut out: Vec<Option<Outcome>> = vec![None; actions.len()];
        let mut stop: Option<Reason> = None;
        for run in spotswap_core::batch::runs(actions) {
            let batch: Vec<&Action> = run.iter().map(|i| &actions[*i]).collect();
            let outcomes = match &batch[0].kind {
                ActionKind::Launch(_) if batch.len() > 1 => self.launch_run(&batch, &mut stop).await,
                ActionKind::Attach { .. } if batch.len() > 1 => self.attach_run(&batch, &mut stop).await,
                _ => vec![self.run_one(batch[0], &mut stop).await],
            };
            for (i, o) in run.into_iter().zip(outcomes) {
                out[i] = Some(o);
            }
        }
        filled(out)
    }

    /// Run one action; `stop` is the reason later steps of the same group are not attempted,
    /// once one failed or the budget ran out.
    pub(crate) async fn run_one(&self, a: &Action, stop: &mut Option<Reason>) -> Outcome {
        if let Some(held) = self.held(a, stop) {
            return held;
        }
        match self.apply(a).await {
            Ok(o) => o,
            Err(e) => stopped(e, stop),
        }
    }

    /// The outcome of `a` when it is not to be applied: nothing to change, an earlier step of
    /// the group stopped it, a dry run, or (a launch) the time is up or the account's spot
    /// quota was hit.
    fn held(&self, a: &Action, stop: &Option<Reason>) -> Option<Outcome> {
        if !a.kind.is_mutating() {
            return Some(Outcome::Done(None));
        }
        if let Some(why) = stop {
            return Some(Outcome::NotAttempted(*why));
        }
        if self.dry_run {
            return Some(Outcome::DryRun);
        }
        if matches!(a.kind, ActionKind::Launch(_)) && self.launches_over() {
            // Checked before each launch, not once per group: the token bucket paces
            // launches, so a group with many may reach the deadline halfway through.
            return Some(Outcome::NotAttempted(Reason::OutOfTime));
        }
        if matches!(a.kind, ActionKind::Launch(_)) && self.quota_hit.load(Ordering::SeqCst) {
            return Some(Outcome::NotAttempted(Reason::SpotQuotaExceeded));
        }
        None
    }

    async fn apply(&self, a: &Action) -> Result<Outcome, AdapterError> {
        let group = a.group.as_str();
        if let Some(done) = crate::carry::apply(self, &a.kind).await {
            return done;
        }
        match &a.kind {
            ActionKind::Launch(spec) => self.launch(group, spec).await,
            ActionKind::RaiseMax { from, to } => {
                // The record first: a stop between the two calls leaves a record of a MaxSize
                // that was never raised, which the restore step clears harmlessly. The other
                // order could leave a raised MaxSize nobody knows about.
                self.set_group_tags(group, &max_raised_tags(*from, *to)).await?;
                self.update_max(group, *to).await?;
                Ok(Outcome::Done(None))
            }
            ActionKind::Attach {
                instance,
                replaces,
                batched,
            } => {
                self.tag_pair(instance, replaces, *batched).await?;
                self.spend()?;
                let ids = [instance.clone()];
                self.aws
                    .paced(op::ATTACH, self.aws.port().attach_instances(group, &ids))
                    .await?;
                Ok(Outcome::Done(None))
            }
            ActionKind::MarkAttached { instance } => {
                self.tag_instance(instance, tags::ATTACHED_AT, &self.now.to_rfc3339())
                    .await?;
                Ok(Outcome::Done(None))
            }
            ActionKind::Retire { instance, .. } => {
                self.spend()?;
                self.aws
                    .paced(
                        op::TERMINATE_IN_GROUP,
                        self.aws.port().terminate_in_group(instance, true),
                    )
                    .await?;
                Ok(Outcome::Done(None))
            }
            ActionKind::TerminateLaunch { instance } => {
                self.terminate_ours(instance).await?;
                Ok(Outcome::Done(None))
            }
            ActionKind::SetDistribution {
                on_demand_percent,
                record,
                sheltered_until,
                ..
            } => {
                let key = tags::DISTRIBUTION_RAISED_FROM.to_string();
                // The record (and the cooldown's shelter) first, as for MaxSize: a stop between
                // the calls leaves a record of a raise not made, which the next cycle makes
                // (or restores harmlessly).
                if let Some(owners) = record {
                    let mut kv = vec![(key.clone(), spotswap_core::mixed::raised_from_value(*owners))];
                    if let Some(until) = sheltered_until {
                        kv.push((tags::SHELTERED_UNTIL.to_string(), until.to_rfc3339()));
                    }
                    self.set_group_tags(group, &kv).await?;
                }
                self.spend()?;
                self.aws
                    .paced(
                        op::UPDATE_GROUP,
                        self.aws
                            .port()
                            .update_on_demand_percent(group, *on_demand_percent),
                    )
                    .await?;
                if record.is_none() {
                    self.delete_group_tags(group, &[key]).await?;
                }
                Ok(Outcome::Done(None))
            }
            ActionKind::CreateTemplate {
                template_name,
                config,
            } => {
                self.spend()?;
                crate::launch_config::create(&self.aws, template_name, config).await
            }
            ActionKind::DeleteTemplate { template_id, .. } => {
                self.spend()?;
                crate::launch_config::delete(&self.aws, template_id).await
            }
            ActionKind::RestoreMax { to } => {
                self.update_max(group, *to).await?;
                self.delete_group_tags(
                    group,
                    &[tags::MAX_RAISED_FROM.to_string(), tags::MAX_RAISED_TO.to_string()],
                )
                .await?;
                Ok(Outcome::Done(None))
            }
            ActionKind::Detach { instance, decrement } => {
                self.spend()?;
                let ids = [instance.clone()];
                let activities = self
                    .aws
                    .paced(
                        op::DETACH,
                        self.aws.port().detach_instances(group, &ids, *decrement),
                    )
                    .await?;
                // No activity: the instance had already left the group (a concurrent delivery
                // detached it first). AWS answers that case with a ValidationError instead,
                // which the interruption workflow resolves by reading the instance again.
                if activities == 0 {
                    return Ok(Outcome::AlreadyDone(format!("{instance} is not in {group}")));
                }
                Ok(Outcome::Done(None))
            }
            ActionKind::TerminateInGroup { instance, decrement } => {
                self.spend()?;
                self.aws
                    .paced(
                        op::TERMINATE_IN_GROUP,
                        self.aws.port().terminate_in_group(instance, *decrement),
                    )
                    .await?;
                Ok(Outcome::Done(None))
            }
            ActionKind::TagDetached {
                instance,
                group: from,
            } => {
                self.spend()?;
                let ids = [instance.clone()];
                let kv = [
                    (tags::DETACHED_AT.to_string(), self.now.to_rfc3339()),
                    (tags::DETACHED_FROM.to_string(), from.clone()),
                ];
                self.aws
                    .paced(op::CREATE_TAGS, self.aws.port().tag_instances(&ids, &kv))
                    .await?;
                Ok(Outcome::Done(None))
            }
            ActionKind::RecordInterruption {
                pool,
                cooldown_until,
                interruptions,
                counts,
                sheltered_until,
            } => {
                let kv =
                    record_interruption_tags(pool, *cooldown_until, interruptions, counts, *sheltered_until);
                self.set_group_tags(group, &kv).await?;
                Ok(Outcome::Done(None))
            }
            ActionKind::Terminate { instance } => {
                self.terminate_ours(instance).await?;
                Ok(Outcome::Done(None))
            }
            ActionKind::MarkPools { pools, until } => {
                self.set_group_tags(group, &no_capacity_tags_until(pools, *until))
                    .await?;
                Ok(Outcome::Done(None))
            }
            ActionKind::ClearRecords { keys } => {
                self.delete_group_tags(group, keys).await?;
                Ok(Outcome::Done(None))
            }
            ActionKind::Ignore | ActionKind::Wait | ActionKind::Stranded { .. } => Ok(Outcome::Done(None)),
            // made by crate::carry::apply above
            ActionKind::AssociateAddress { .. }
            | ActionKind::DetachVolume { .. }
            | ActionKind::AttachVolume { .. }
            | ActionKind::TagCarried { .. } => Ok(Outcome::Done(None)),
        }
    }

    /// One CreateTags before the attach, on both instances (CreateTags writes the same tags on
    /// every resource it names): the original names its replacement, so that an interruption
    /// warning for it learns from the instance alone whether the replacement serves
    /// (`OriginalAlreadyReplaced`), and the launch gets the time its grace period counts from;
    /// a batch pair also gets its `spotswap:replaces`. A stop after the tag and before the
    /// attach leaves a name that is no member and a time nobody reads (the launch is not a
    /// member): the next attach writes them again. On the launch, `replaced-by` names itself,
    /// and on the original, `attached-at` is not read (docs/design.md).
    async fn tag_pair(&self, instance: &str, replaces: &str, batched: bool) -> Result<(), AdapterError> {
        self.spend()?;
        let pair = [replaces.to_string(), instance.to_string()];
        let kv = swap_tags(instance, batched.then_some(replaces), self.now);
        self.aws
            .paced(op::CREATE_TAGS, self.aws.port().tag_instances(&pair, &kv))
            .await
    }

    /// Our live launch replacing `original` already, if any: in the cycle's batched read when
    /// there is one, else read on its own (an original the guard did not ask about: a group
    /// re-planned after its preflight). A client token only dedupes retries within its window;
    /// the tags catch a concurrent or repeated cycle.
    async fn existing_launch(&self, group: &str, original: &str) -> Result<Option<Instance>, AdapterError> {
        let batched = match &self.guard {
            Some(guard) => guard.launches_replacing(original).await,
            None => None,
        };
        let existing: Vec<Instance> = match batched {
            Some(found) => found,
            None => crate::snapshot::launches_replacing(&self.aws, &[original.to_string()])
                .await?
                .remove(original)
                .unwrap_or_default(),
        };
        // A detached (interrupted) launch is dying: it does not count as the replacement.
        let found = existing.into_iter().find(|i| i.is_live_launch_for(group));
        if let Some(i) = &found {
            self.remember_launch(&i.id, i.pool());
        }
        Ok(found)
    }

    /// CreateFleet instant with the group's own launch template, unless a launch replacing the
    /// original exists already ([`Self::existing_launch`]).
    async fn launch(&self, group: &str, spec: &LaunchSpec) -> Result<Outcome, AdapterError> {
        if let Some(found) = self.existing_launch(group, &spec.replaces).await? {
            return Ok(Outcome::AlreadyDone(found.id));
        }
        self.fresh_launch(group, spec).await
    }

    /// CreateFleet for `spec`, with no look-up first.
    async fn fresh_launch(&self, group: &str, spec: &LaunchSpec) -> Result<Outcome, AdapterError> {
        self.spend()?;
        let answer = self.create_fleet(&FleetRequest::from_spec(spec)).await?;
        let (launched, errors) = fleet_answer(spec, answer);
        let verdict = judge_fleet(spec, launched.into_iter().next(), &errors);
        self.settle(group, spec, verdict, &errors, true).await
    }

    /// What a fleet's verdict means for one launch: its instance, a fallback (the pools marked
    /// first, with `mark`: a batch marks them once), or the error.
    async fn settle(
        &self,
        group: &str,
        spec: &LaunchSpec,
        verdict: FleetVerdict,
        errors: &[FleetError],
        mark: bool,
    ) -> Result<Outcome, AdapterError> {
        match verdict {
            FleetVerdict::Launched { instance, pool } => {
                if let Some(pool) = pool {
                    self.remember_launch(&instance, pool);
                }
                Ok(Outcome::Done(Some(instance)))
            }
            FleetVerdict::NoCapacity { mark: pools } => {
                if mark {
                    self.set_group_tags(group, &no_capacity_tags(&pools, self.now))
                        .await?;
                }
                Ok(Outcome::Fallback(
                    spec.candidates
                        .iter()
                        .map(|c| c.pool.clone())
                        .collect::<Vec<Pool>>(),
                ))
            }
            FleetVerdict::Quota { code, message } => {
                self.quota_hit.store(true, Ordering::SeqCst);
                Err(AdapterError::Fleet {
                    failure: Failure::new("ec2:CreateFleet", Some(&code), message),
                })
            }
            FleetVerdict::Failed { message } => {
                let code = errors.iter().find_map(|e| e.code.as_deref());
                Err(AdapterError::Fleet {
                    failure: Failure::new("ec2:CreateFleet", code, message),
                })
            }
        }
    }

    async fn create_fleet(&self, req: &FleetRequest) -> Result<FleetAnswer, AdapterError> {
        self.aws
            .paced(op::CREATE_FLEET, self.aws.port().create_fleet(req))
            .await
    }

    async fn update_max(&self, group: &str, max: u32) -> Result<(), AdapterError> {
        self.spend()?;
        self.aws
            .paced(op::UPDATE_GROUP, self.aws.port().update_max_size(group, max))
            .await
    }

    /// Write group tags (not propagated).
    pub(crate) async fn set_group_tags(
        &self,
        group: &str,
        kv: &[(String, String)],
    ) -> Result<(), AdapterError> {
        if kv.is_empty() {
            return Ok(());
        }
        self.spend()?;
        self.aws
            .paced(op::CREATE_GROUP_TAGS, self.aws.port().put_group_tags(group, kv))
            .await
    }

    /// Remove group tags.
    pub(crate) async fn delete_group_tags(&self, group: &str, keys: &[String]) -> Result<(), AdapterError> {
        if keys.is_empty() {
            return Ok(());
        }
        self.spend()?;
        self.aws
            .paced(
                op::DELETE_GROUP_TAGS,
                self.aws.port().delete_group_tags(group, keys),
            )
            .await
    }

    /// Tag one instance.
    pub(crate) async fn tag_instance(
        &self,
        instance: &str,
        key: &str,
        value: &str,
    ) -> Result<(), AdapterError> {
        self.spend()?;
        let ids = [instance.to_string()];
        let kv = [(key.to_string(), value.to_string())];
        self.aws
            .paced(op::CREATE_TAGS, self.aws.port().tag_instances(&ids, &kv))
            .await
    }

    /// TerminateInstances on one of our instances outside any group.
    pub(crate) async fn terminate_ours(&self, instance: &str) -> Result<(), AdapterError> {
        self.spend()?;
        let ids = [instance.to_string()];
        self.aws
            .paced(op::TERMINATE, self.aws.port().terminate_instances(&ids))
            .await
    }

    /// The clients this executor acts through.
    pub(crate) fn aws(&self) -> &Aws {
        &self.aws
    }

    /// The time this executor acts at.
    pub(crate) fn now(&self) -> Timestamp {
        self.now
    }
}

/// The outcomes of a run, each set (one never set was not attempted).
fn filled(out: Vec<Option<Outcome>>) -> Vec<Outcome> {
    let held = Outcome::NotAttempted(Reason::EarlierStepFailed);
    out.into_iter()
        .map(|o| o.unwrap_or_else(|| held.clone()))
        .collect()
}

/// The outcome of a step that failed with `e`, and the reason the group's later steps stop.
fn stopped(e: AdapterError, stop: &mut Option<Reason>) -> Outcome {
    match e {
        AdapterError::BudgetExhausted => {
            *stop = Some(Reason::MutationBudgetExhausted);
            Outcome::NotAttempted(Reason::MutationBudgetExhausted)
        }
        e => {
            *stop = Some(Reason::EarlierStepFailed);
            Outcome::Failed(e.failure())
        }
    }
}
