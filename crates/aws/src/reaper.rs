//! The orphan reaper's pass: read what carries our tags → plan (pure, in the core) → execute →
//! report. The Lambda and `spotswap reap` both run [`reap`].

use spotswap_core::policy::Mode;
use spotswap_core::{plan_reap, tags, ActionKind, Outcome, ReapGate};
use tracing::info;

use crate::execute::Executor;
use crate::report::{CycleReport, Recorder};
use crate::snapshot::{describe_groups, describe_instances, describe_tagged_instances};
use crate::workflow::now as wall_clock;
use crate::{AdapterError, Aws, Config, CycleOptions};

/// Run one reaper pass over the region. `opts.now` moves the clock (tests), `opts.dry_run`
/// decides and reports without a single mutating call, `opts.budget` caps mutating calls.
///
/// Reads: two DescribeInstances filtered by `tag-key` (ours and detached ones), then every
/// group, since membership in any group, managed or not, protects an instance, and,
/// with the instances, the templates made from launch configurations (DescribeLaunchTemplates
/// by `tag-key`).
pub async fn reap(aws: &Aws, config: &Config, opts: CycleOptions) -> Result<CycleReport, AdapterError> {
    let now = opts.now.unwrap_or_else(wall_clock);
    let dry_run = opts.dry_run || config.dry_run;
    // Instances first, groups second: a launch the rebalancer attaches between the two reads
    // shows up as a member, never as an orphan.
    // Templates made from launch configurations before the groups too: one a cycle makes for
    // a group that took up its configuration meanwhile is not seen, so never deleted.
    let (mut instances, detached, templates) = tokio::try_join!(
        describe_tagged_instances(aws, tags::GROUP, &[]),
        describe_tagged_instances(aws, tags::DETACHED_AT, &[]),
        async { Ok(crate::launch_config::templates(aws).await) },
    )?;
    instances.extend(detached);
    let mut groups = describe_groups(aws, Mode::OptOut).await?;
    let mut plan = plan_reap(&groups, &instances, &config.settings, now, config.orphan_minutes);
    match templates {
        Ok(templates) => plan
            .actions
            .extend(spotswap_core::launch_config::reap_templates(&groups, &templates)),
        Err(e) => {
            tracing::warn!(reason = "LaunchTemplatesUnknown", error = %e, "templates from launch configurations unknown; none deleted this pass")
        }
    }
    plan.actions
        .extend(carry_moves(aws, config, &mut groups, &instances).await);
    info!(
        groups = groups.len(),
        tagged_instances = instances.len(),
        orphan_minutes = config.orphan_minutes,
        "reaper snapshot taken"
    );

    let executor = Executor::new(aws, now, dry_run, opts.budget.clone());
    let mut recorder = Recorder::new(opts.correlation.clone().unwrap_or_default());
    for s in &plan.skipped {
        recorder.skip(s);
    }
    // Each action on its own: one instance's termination protection must not keep the other
    // orphans alive. The core's gate holds back what depends on an earlier failure.
    let mut gate = ReapGate::default();
    for action in &plan.actions {
        let outcome = match gate.blocks(action) {
            Some(reason) => Outcome::NotAttempted(reason),
            None => executor.run_one(action, &mut None).await,
        };
        gate.note(action, outcome.succeeded());
        recorder.record(action, outcome);
    }
    recorder.publish(aws, &config.event_bus, dry_run).await;
    let mut report = CycleReport::from_recorder(recorder, dry_run);
    report.api_calls = aws.api_calls();
    info!(
        actions = report.actions.len(),
        terminated = report.count_done(|k| matches!(k, ActionKind::Terminate { .. })),
        skipped = report.skipped.len(),
        mutating_calls = report.mutating_calls(),
        dry_run,
        cycle_id = %report.correlation.cycle_id,
        request_id = report.correlation.request_id.as_deref().unwrap_or(""),
        "reaper pass finished"
    );
    Ok(report)
}

/// The carry moves of every stateful group ([`spotswap_core::carry`]): after one pass, no
/// carried volume is left detached while its group has an instance in its AZ that lacks it
/// (it is attached, or `VolumeStranded` says why not), and no Elastic IP of the group is free
/// while an instance of the group has none. The members' instances are read for it.
async fn carry_moves(
    aws: &Aws,
    config: &Config,
    groups: &mut [spotswap_core::GroupSnapshot],
    ours: &std::collections::BTreeMap<String, spotswap_core::Instance>,
) -> Vec<spotswap_core::Action> {
    let stateful: Vec<usize> = (0..groups.len())
        .filter(|&i| crate::carry::carry_policy(&groups[i], &config.settings).is_some())
        .collect();
    if stateful.is_empty() {
        return Vec::new();
    }
    let ids: Vec<String> = stateful
        .iter()
        .flat_map(|&i| groups[i].members.iter().map(|m| m.id.clone()))
        .filter(|id| !ours.contains_key(id))
        .collect();
    let mut instances = ours.clone();
    for chunk in ids.chunks(crate::snapshot::FILTER_VALUES) {
        match describe_instances(aws, chunk).await {
            Ok(found) => instances.extend(found),
            Err(e) => {
                tracing::warn!(reason = "CarryUnknown", error = %e, "members of stateful groups unreadable; no carry move this pass");
                return Vec::new();
            }
        }
    }
    crate::carry::read_carried(aws, &config.settings, groups, &mut instances).await;
    let mut out = Vec::new();
    for &i in &stateful {
        let g = &groups[i];
        if let (Some(policy), Some(carried)) = (crate::carry::carry_policy(g, &config.settings), &g.carried) {
            out.extend(spotswap_core::carry::plan_carry(g, &policy, &instances, carried));
        }
    }
    out
}
