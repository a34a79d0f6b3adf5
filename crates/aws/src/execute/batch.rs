//! A group's runs of launches as one CreateFleet, and of attaches as one AttachInstances
//! ([`spotswap_core::batch`]): the calls a swap costs, and the swaps EC2's launch bucket
//! allows a cycle, go from one per swap to one per run (issue 22).

use spotswap_core::batch::{assign, FleetBatch, MAX_ATTACH};
use spotswap_core::fleet::{judge_fleet, FleetError};
use spotswap_core::Pool;
use spotswap_core::{Action, ActionKind, LaunchSpec, Outcome, Reason};

use super::{filled, stopped, Executor};
use crate::port::{op, FleetAnswer, FleetRequest};

impl Executor {
    /// A run of launches sending the same request: each original a launch already replaces is
    /// done; the rest go out as one CreateFleet of as many instances (one left: a launch of its
    /// own), paired with the originals by the rule every reader derives them by.
    pub(super) async fn launch_run(&self, run: &[&Action], stop: &mut Option<Reason>) -> Vec<Outcome> {
        let mut out: Vec<Option<Outcome>> = vec![None; run.len()];
        let mut pending: Vec<(usize, &LaunchSpec)> = Vec::new();
        for (i, a) in run.iter().enumerate() {
            if let Some(held) = self.held(a, stop) {
                out[i] = Some(held);
                continue;
            }
            let ActionKind::Launch(spec) = &a.kind else {
                out[i] = Some(self.run_one(a, stop).await);
                continue;
            };
            match self.existing_launch(&a.group, &spec.replaces).await {
                Ok(Some(found)) => out[i] = Some(Outcome::AlreadyDone(found.id)),
                Ok(None) => pending.push((i, spec)),
                Err(e) => out[i] = Some(stopped(e, stop)),
            }
        }
        if stop.is_some() {
            for (i, _) in pending.drain(..) {
                out[i] = Some(Outcome::NotAttempted(stop.unwrap_or(Reason::EarlierStepFailed)));
            }
        }
        match pending.as_slice() {
            [] => {}
            [(i, spec)] => {
                out[*i] = Some(match self.fresh_launch(&run[0].group, spec).await {
                    Ok(o) => o,
                    Err(e) => stopped(e, stop),
                })
            }
            _ => {
                let group = run[0].group.as_str();
                let specs: Vec<&LaunchSpec> = pending.iter().map(|(_, s)| *s).collect();
                for (i, o) in pending
                    .iter()
                    .map(|(i, _)| *i)
                    .zip(self.fleet_of(group, &specs, stop).await)
                {
                    out[i] = Some(o);
                }
            }
        }
        filled(out)
    }

    /// One CreateFleet for `specs` (two or more, one request apart from the original).
    async fn fleet_of(&self, group: &str, specs: &[&LaunchSpec], stop: &mut Option<Reason>) -> Vec<Outcome> {
        let Some(batch) = FleetBatch::of(specs) else {
            return Vec::new();
        };
        let answer = match self.spend() {
            Ok(()) => self.create_fleet(&FleetRequest::from_batch(&batch)).await,
            Err(e) => Err(e),
        };
        let answer = match answer {
            Ok(a) => a,
            Err(e) => {
                let first = stopped(e, stop);
                return specs.iter().map(|_| first.clone()).collect();
            }
        };
        let (launched, errors) = fleet_answer(&batch.spec, answer);
        let ids: Vec<String> = launched.iter().map(|(id, _)| id.clone()).collect();
        let mut marked = false;
        let mut out = Vec::with_capacity(specs.len());
        for (spec, (_, id)) in specs.iter().zip(assign(&batch.originals, &ids)) {
            let launch = id.and_then(|id| launched.iter().find(|(l, _)| l == id)).cloned();
            // An original the fleet launched nothing for is judged as a launch of its own
            // that launched nothing, from the same errors: a later cycle plans it again.
            let verdict = judge_fleet(spec, launch, &errors);
            let first_mark =
                !marked && matches!(verdict, spotswap_core::fleet::FleetVerdict::NoCapacity { .. });
            marked |= first_mark;
            out.push(
                match self.settle(group, spec, verdict, &errors, first_mark).await {
                    Ok(o) => o,
                    Err(e) => stopped(e, stop),
                },
            );
        }
        out
    }

    /// A run of attaches: each pair's CreateTags, then one AttachInstances of every launch
    /// tagged (at most [`MAX_ATTACH`]). AWS attaches all or none; when the shared call fails,
    /// each is attached on its own, so one launch that cannot be attached holds back no other.
    pub(super) async fn attach_run(&self, run: &[&Action], stop: &mut Option<Reason>) -> Vec<Outcome> {
        let mut out: Vec<Option<Outcome>> = vec![None; run.len()];
        let mut tagged: Vec<(usize, String)> = Vec::new();
        for (i, a) in run.iter().enumerate() {
            if let Some(held) = self.held(a, stop) {
                out[i] = Some(held);
                continue;
            }
            let ActionKind::Attach {
                instance,
                replaces,
                batched,
            } = &a.kind
            else {
                out[i] = Some(self.run_one(a, stop).await);
                continue;
            };
            match self.tag_pair(instance, replaces, *batched).await {
                Ok(()) => tagged.push((i, instance.clone())),
                Err(e) => out[i] = Some(stopped(e, stop)),
            }
        }
        let group = run[0].group.as_str();
        for chunk in tagged.chunks(MAX_ATTACH) {
            let ids: Vec<String> = chunk.iter().map(|(_, id)| id.clone()).collect();
            match self.attach_ids(group, &ids).await {
                Ok(()) => {
                    for (i, _) in chunk {
                        out[*i] = Some(Outcome::Done(None));
                    }
                }
                Err(e) if chunk.len() == 1 || matches!(e, crate::AdapterError::BudgetExhausted) => {
                    let o = stopped(e, stop);
                    for (i, _) in chunk {
                        out[*i] = Some(o.clone());
                    }
                }
                Err(_) => {
                    for (i, id) in chunk {
                        out[*i] = Some(match self.attach_ids(group, std::slice::from_ref(id)).await {
                            Ok(()) => Outcome::Done(None),
                            Err(e) => stopped(e, stop),
                        });
                    }
                }
            }
        }
        filled(out)
    }

    /// One AttachInstances of `ids`, spending one call of the budget.
    async fn attach_ids(&self, group: &str, ids: &[String]) -> Result<(), crate::AdapterError> {
        self.spend()?;
        self.aws
            .paced(op::ATTACH, self.aws.port().attach_instances(group, ids))
            .await
    }
}

/// CreateFleet's answer in the core's terms: each launched instance with the pool of its
/// override (its type, in the original's AZ: every override names the original's subnet), and
/// the errors with theirs.
pub(super) fn fleet_answer(
    spec: &LaunchSpec,
    answer: FleetAnswer,
) -> (Vec<(String, Option<Pool>)>, Vec<FleetError>) {
    let pool_of = |ty: Option<&str>| {
        let ty = ty?;
        spec.candidates
            .iter()
            .find(|c| c.pool.instance_type == ty)
            .map(|c| c.pool.clone())
    };
    let launched = answer
        .launched
        .iter()
        .map(|(id, ty)| (id.clone(), pool_of(ty.as_deref())))
        .collect();
    let errors = answer
        .errors
        .into_iter()
        .map(|e| FleetError {
            pool: pool_of(e.instance_type.as_deref()),
            code: e.code,
            message: e.message,
        })
        .collect();
    (launched, errors)
}
