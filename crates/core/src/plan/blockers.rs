//! Group blockers: the one rule for "this group cannot be swapped now", shared by the
//! rebalancer's cycle ([`crate::plan::plan_group`]) and the rebalance-recommendation handler
//! ([`crate::events::rebalance::triage`]).

use crate::action::Reason;
use crate::model::{GroupSnapshot, LaunchSource, LaunchTemplateRef};
use crate::policy::Policy;

/// Why a group cannot be swapped now: the reason, and detail for a human (the launch
/// configuration's name, the group's status).
pub type Blocker = (Reason, Option<String>);

/// The group's launch template (for a mixed instances policy, the policy's) when nothing
/// blocks a swap of it, else the first blocker.
///
/// Checked in this order, the first that applies wins: a launch configuration that was not
/// read or that a template cannot express (`LaunchConfigurationNotSupported`, the detail names
/// the configuration and the field; otherwise the template made from it,
/// [`crate::launch_config::template_for`]), a mixed
/// instances policy whose attribute-based types were not read
/// (`InstanceRequirementsUnresolved`) or that spotswap cannot swap
/// (`MixedInstancesPolicyNotSupported`: not read, bad weights, capacity in vCPUs or MiB;
/// [`crate::mixed::MixedPolicy::unsupported`]), no launch template
/// (`NoLaunchTemplate`), a warm pool (`WarmPoolNotSupported`), a `Status` (`GroupUpdating`,
/// detail the status: the group is being deleted), an instance refresh in progress
/// (`InstanceRefreshInProgress`).
///
/// A CloudFormation stack update does not show in the group's `Status`: it is
/// [`stack_updating`], which holds only new swaps.
pub fn swappable_template(group: &GroupSnapshot) -> Result<&LaunchTemplateRef, Blocker> {
    let template = match &group.launch_source {
        LaunchSource::Template(t) => t,
        LaunchSource::LaunchConfiguration(lc) => crate::launch_config::template_for(group, lc)?,
        LaunchSource::MixedInstances => match &group.mixed {
            Some(m) => {
                if let Some(why) = m.unresolved() {
                    return Err((Reason::InstanceRequirementsUnresolved, Some(why)));
                }
                match m.unsupported() {
                    None => &m.launch_template,
                    Some(why) => return Err((Reason::MixedInstancesPolicyNotSupported, Some(why))),
                }
            }
            None => return Err((Reason::MixedInstancesPolicyNotSupported, None)),
        },
        LaunchSource::Unknown => return Err((Reason::NoLaunchTemplate, None)),
    };
    if group.has_warm_pool {
        return Err((
            Reason::WarmPoolNotSupported,
            Some("warm pool: AWS supports warm pools only for groups without spot".to_string()),
        ));
    }
    if let Some(status) = &group.status {
        return Err((Reason::GroupUpdating, Some(status.clone())));
    }
    // An instance refresh replaces instances itself: a swap would race it.
    if group.instance_refresh_in_progress == Some(true) {
        return Err((Reason::InstanceRefreshInProgress, None));
    }
    Ok(template)
}

/// The group's CloudFormation stack (tag `aws:cloudformation:stack-name`) is in a
/// `*_IN_PROGRESS` state (`CREATE_`, `UPDATE_`, `UPDATE_COMPLETE_CLEANUP_`, `ROLLBACK_`,
/// `DELETE_`, `IMPORT_`, …): `StackUpdating`, detail `stack <name> <status>`. The stack may
/// replace or resize the group under a swap, so no new swap starts; swaps in flight still
/// advance. `None` when the status was not read or is settled.
pub fn stack_updating(group: &GroupSnapshot) -> Option<Blocker> {
    let status = group.stack_status.as_deref()?;
    if !status.ends_with("_IN_PROGRESS") {
        return None;
    }
    let stack = group.tag(crate::tags::AWS_CFN_STACK_NAME).unwrap_or("?");
    Some((Reason::StackUpdating, Some(format!("stack {stack} {status}"))))
}

/// Why no attach-based swap may start in `group`: a launching lifecycle hook, which AWS does
/// not run for attached instances, unless the owner tagged `spotswap:launch-hooks=bypass`.
/// `None` also when the hooks were not read (`has_launching_hook: None`): the rebalancer's
/// preflight and the rebalance handler read them before any launch.
pub fn launch_hook_blocker(group: &GroupSnapshot, policy: &Policy) -> Option<Blocker> {
    (group.has_launching_hook == Some(true) && policy.launch_hooks.matter()).then(|| {
        (
            Reason::LaunchHookWouldNotRun,
            Some("launching lifecycle hook; attached instances skip it (tag spotswap:launch-hooks=bypass to swap anyway)".to_string()),
        )
    })
}

/// A step of a swap that a suspended Auto Scaling process can stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SwapStep {
    /// Starting a new swap: every later step must be possible, or the launch would wait.
    Start,
    /// AttachInstances: the group's `Launch` (an attach is a launch into the group) and
    /// `AddToLoadBalancer` (the new instance must join the load balancers).
    Attach,
    /// TerminateInstanceInAutoScalingGroup: `Terminate`.
    Retire,
}

/// The processes each step needs running: the stage-by-process table (docs/design.md).
pub fn processes_needed(step: SwapStep) -> &'static [&'static str] {
    match step {
        SwapStep::Start => &["Launch", "Terminate", "AddToLoadBalancer"],
        SwapStep::Attach => &["Launch", "AddToLoadBalancer"],
        SwapStep::Retire => &["Terminate"],
    }
}

/// The processes `step` needs that are suspended on `group` (empty: the step may run).
pub fn suspended_for(group: &GroupSnapshot, step: SwapStep) -> Vec<&'static str> {
    processes_needed(step)
        .iter()
        .copied()
        .filter(|p| group.suspended_processes.iter().any(|s| s == p))
        .collect()
}

/// Why `group` cannot be swapped now, or `None` when it can: [`swappable_template`] without
/// the template.
pub fn group_blocker(group: &GroupSnapshot) -> Option<Blocker> {
    swappable_template(group).err()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::policy::LaunchHooks;

    fn group(launch_source: LaunchSource) -> GroupSnapshot {
        GroupSnapshot {
            name: "web".into(),
            min_size: 0,
            max_size: 1,
            desired: 1,
            health_check_grace_secs: 0,
            launch_source,
            subnets: vec![],
            availability_zones: vec![],
            tags: BTreeMap::new(),
            propagated_tags: BTreeMap::new(),
            members: vec![],
            status: None,
            instance_refresh_in_progress: None,
            has_terminating_hook: None,
            has_launching_hook: None,
            has_warm_pool: false,
            mixed: None,
            suspended_processes: Vec::new(),
            max_instance_lifetime_secs: None,
            template_version_now: None,
            stack_status: None,
            from_launch_config: None,
            carried: None,
            spot_failed_at: None,
        }
    }

    fn template() -> LaunchSource {
        LaunchSource::Template(LaunchTemplateRef {
            id: Some("lt-1".into()),
            name: None,
            version: "$Latest".into(),
        })
    }

    #[test]
    fn a_template_group_at_rest_is_swappable() {
        // GIVEN a launch-template group, no status, no refresh known to run
        let g = group(template());
        // THEN nothing blocks it, and its own template is the one used
        assert_eq!(group_blocker(&g), None);
        assert_eq!(swappable_template(&g).unwrap().id.as_deref(), Some("lt-1"));
    }

    #[test]
    fn each_blocker_has_its_reason_and_detail() {
        let cases = [
            (
                group(LaunchSource::LaunchConfiguration("old-lc".into())),
                (
                    Reason::LaunchConfigurationNotSupported,
                    Some("launch configuration old-lc: not read".to_string()),
                ),
            ),
            (
                group(LaunchSource::MixedInstances),
                (Reason::MixedInstancesPolicyNotSupported, None),
            ),
            (group(LaunchSource::Unknown), (Reason::NoLaunchTemplate, None)),
            (
                GroupSnapshot {
                    has_warm_pool: true,
                    ..group(template())
                },
                (
                    Reason::WarmPoolNotSupported,
                    Some("warm pool: AWS supports warm pools only for groups without spot".to_string()),
                ),
            ),
            (
                GroupSnapshot {
                    status: Some("Delete in progress".into()),
                    ..group(template())
                },
                (Reason::GroupUpdating, Some("Delete in progress".to_string())),
            ),
            (
                GroupSnapshot {
                    instance_refresh_in_progress: Some(true),
                    ..group(template())
                },
                (Reason::InstanceRefreshInProgress, None),
            ),
        ];
        for (g, want) in cases {
            assert_eq!(group_blocker(&g), Some(want), "{:?}", g.launch_source);
        }
    }

    #[test]
    fn only_a_stack_in_progress_holds_new_swaps() {
        let with = |status: &str| {
            let mut g = group(template());
            g.tags
                .insert(crate::tags::AWS_CFN_STACK_NAME.into(), "web-stack".into());
            g.stack_status = Some(status.into());
            g
        };
        for status in [
            "UPDATE_IN_PROGRESS",
            "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS",
            "UPDATE_ROLLBACK_IN_PROGRESS",
            "CREATE_IN_PROGRESS",
            "DELETE_IN_PROGRESS",
            "IMPORT_IN_PROGRESS",
        ] {
            assert_eq!(
                stack_updating(&with(status)),
                Some((Reason::StackUpdating, Some(format!("stack web-stack {status}")))),
            );
        }
        for status in ["UPDATE_COMPLETE", "CREATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE"] {
            assert_eq!(stack_updating(&with(status)), None, "{status}");
        }
        // Not read (no stack tag, or the preflight did not ask): nothing holds it.
        assert_eq!(stack_updating(&group(template())), None);
    }

    #[test]
    fn a_launching_hook_blocks_unless_bypassed() {
        // GIVEN a template group with a launching lifecycle hook
        let g = GroupSnapshot {
            has_launching_hook: Some(true),
            ..group(template())
        };
        // THEN the default policy starts no attach-based swap, naming the way out
        let (reason, detail) = launch_hook_blocker(&g, &Policy::default()).unwrap();
        assert_eq!(reason, Reason::LaunchHookWouldNotRun);
        assert!(detail.unwrap().contains("spotswap:launch-hooks=bypass"));
        // AND with spotswap:launch-hooks=bypass the owner's acceptance lets it swap
        let bypass = Policy {
            launch_hooks: LaunchHooks::Bypass,
            ..Policy::default()
        };
        assert_eq!(launch_hook_blocker(&g, &bypass), None);
        // AND no hook, or hooks not read, blocks nothing
        for known in [Some(false), None] {
            let g = GroupSnapshot {
                has_launching_hook: known,
                ..group(template())
            };
            assert_eq!(launch_hook_blocker(&g, &Policy::default()), None);
        }
    }

    #[test]
    fn the_launch_source_is_reported_before_the_status_and_the_refresh() {
        // GIVEN a launch-configuration group being deleted during an instance refresh
        let g = GroupSnapshot {
            status: Some("Delete in progress".into()),
            instance_refresh_in_progress: Some(true),
            ..group(LaunchSource::MixedInstances)
        };
        // THEN the launch source is the reason given
        assert_eq!(
            group_blocker(&g).map(|b| b.0),
            Some(Reason::MixedInstancesPolicyNotSupported)
        );
        // AND with a template, the status comes before the refresh
        let g = GroupSnapshot {
            launch_source: template(),
            ..g
        };
        assert_eq!(group_blocker(&g).map(|b| b.0), Some(Reason::GroupUpdating));
    }
}
