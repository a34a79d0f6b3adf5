//! Every setting tag with bad values, and groups in odd states, in one region under one
//! rebalancer cycle: each group is skipped, waits or is quiet with its reason, and nothing is
//! changed.

use std::collections::BTreeMap;

use aws_sdk_autoscaling::types::{
    InstancesDistribution, LaunchTemplate, LaunchTemplateOverrides,
    LaunchTemplateSpecification as AsgTemplateSpec, MixedInstancesPolicy, Tag as AsgTag,
};
use spotswap_aws::report::ActionReport;
use spotswap_aws::{rebalance, CycleOptions, CycleReport, Outcome};
use spotswap_core::policy::SETTING_TAGS;
use spotswap_core::tags;
use spotswap_tests::fleet::{Env, GroupSpec};
use spotswap_tests::proxy::Proxy;

use super::{config, with_enabled, Failures, AMI};

/// How a group of a case is built.
#[derive(Debug, Clone)]
enum Shape {
    /// As `Env::group` builds it.
    Plain,
    /// Every member protected from scale-in.
    ScaleInProtected,
    /// A mixed instances policy instead of a launch template.
    MixedInstances,
    /// A launch configuration, with a setting a template cannot express.
    LaunchConfiguration(LcOdd),
}

/// A launch configuration setting a launch template cannot express (moto keeps these two; it
/// drops `PlacementTenancy`, so `host` tenancy is proven in the core's tests).
#[derive(Debug, Clone, Copy)]
enum LcOdd {
    ClassicLink,
    SpotPrice,
}

/// What the cycle must report for the group.
#[derive(Debug, Clone)]
enum GroupExpect {
    /// In `skipped` with this reason, its detail holding each needle; no action.
    Skip(&'static str, Vec<String>),
    /// One `wait` action with this reason; not skipped.
    Wait(&'static str),
    /// Nothing to do: in the summary with desired 0, no action, not skipped.
    Quiet,
}

struct GroupCase {
    name: String,
    spec: GroupSpec,
    shape: Shape,
    expect: GroupExpect,
}

/// Every tag of DESIGN.md §3 with bad values: each skips its group as `InvalidConfig`, the
/// detail naming the tag and the value.
fn tag_cases() -> Vec<GroupCase> {
    use tags::*;
    let bad: &[(&str, &str, &str)] = &[
        (ENABLED, "yes", "not a boolean"),
        (ENABLED, "TRUE", "upper case"),
        (ENABLED, " true", "leading space"),
        (ENABLED, "", "empty"),
        (ENABLED, "1", "a number"),
        (ON_DEMAND_BASE, "abc", "not a number"),
        (ON_DEMAND_BASE, "-1", "negative"),
        (ON_DEMAND_BASE, "100001", "out of range"),
        (ON_DEMAND_BASE, "4294967296", "beyond u32"),
        (ON_DEMAND_BASE, "1.5", "fractional"),
        (ON_DEMAND_BASE, "", "empty"),
        (ON_DEMAND_PERCENT, "abc", "not a number"),
        (ON_DEMAND_PERCENT, "150", "out of range"),
        (ON_DEMAND_PERCENT, "-10", "negative"),
        (ON_DEMAND_PERCENT, "50%", "with a percent sign"),
        (ON_DEMAND_PERCENT, "12.5", "fractional"),
        (ON_DEMAND_PERCENT, "５０", "full-width digits"),
        (ALLOWED_TYPES, "", "empty"),
        (ALLOWED_TYPES, "m5.*,", "empty glob at the end"),
        (ALLOWED_TYPES, " , ", "only empty globs"),
        (ALLOWED_TYPES, "m5.[large", "invalid glob"),
        (ALLOWED_TYPES, "m5.*,m5.*", "duplicate glob"),
        (ALLOWED_TYPES, "m5.large c5.large", "space-separated"),
        (ALLOWED_TYPES, "m5.large;c5.large", "semicolon-separated"),
        (DENIED_TYPES, "", "empty"),
        (DENIED_TYPES, "m5.[", "invalid glob"),
        (DENIED_TYPES, "c5.*,,m5.*", "empty glob in the middle"),
        (DENIED_TYPES, "t3.micro, t3.micro", "duplicate glob"),
        (MAX_POOL_PERCENT, "0", "below range"),
        (MAX_POOL_PERCENT, "101", "above range"),
        (MAX_POOL_PERCENT, "half", "not a number"),
        (REPLACE_PER_CYCLE, "lots", "not a number"),
        (REPLACE_PER_CYCLE, "-1", "negative"),
        (REPLACE_PER_CYCLE, "1001", "out of range"),
        (ON_REBALANCE, "maybe", "bad enum"),
        (ON_REBALANCE, "Replace", "enum in the wrong case"),
        (ON_REBALANCE, "", "empty enum"),
        (COOLDOWN_MINUTES, "1.5", "fractional"),
        (COOLDOWN_MINUTES, "10081", "out of range"),
        (COOLDOWN_MINUTES, "-5", "negative"),
        (COOLDOWN_MINUTES, "60m", "with a unit"),
        (SHELTER_PERCENT, "101", "out of range"),
        (SHELTER_PERCENT, "ten", "not a number"),
        (SHELTER_PERCENT, "-1", "negative"),
        (LAUNCH_HOOKS, "Bypass", "enum in the wrong case"),
        (LAUNCH_HOOKS, "respect", "not the one value"),
        (LAUNCH_HOOKS, "", "empty enum"),
        (COMMITMENTS, "Fill", "enum in the wrong case"),
        (COMMITMENTS, "ignore", "not one of keep, fill, strict"),
        (COMMITMENTS, "", "empty enum"),
        (REPLACE_OUTDATED, "yes", "not a boolean"),
        (REPLACE_OUTDATED, "TRUE", "boolean in the wrong case"),
        (SCHEDULE, "Mon-Fri 9-5", "hours without minutes, no zone"),
        (SCHEDULE, "Mon-Fri 08:00-18:00 Mars/Olympus", "unknown time zone"),
        (SCHEDULE, "Funday 08:00-18:00 UTC", "not a day"),
        (PAUSED_UNTIL, "tomorrow", "not a time"),
        (PAUSED_UNTIL, "2026-13-01T00:00:00Z", "no such month"),
        (CARRY_EIP, "yes", "not a boolean"),
        (CARRY_EIP, "True", "boolean in the wrong case"),
        (CARRY_EIP, " true", "leading space"),
        (CARRY_VOLUMES, "", "empty tag key"),
        (CARRY_VOLUMES, "aws:data", "a key reserved by AWS"),
        (CARRY_VOLUMES, "spotswap:group", "one of spotswap's own keys"),
        (CARRY_VOLUMES, " data", "leading space"),
    ];
    bad.iter()
        .enumerate()
        .map(|(i, (key, value, why))| {
            let group = format!("tag-{i:02}");
            let spec = GroupSpec {
                subnets: 1,
                ..GroupSpec::managed(&group, 1)
            };
            let spec = if *key == ENABLED {
                with_enabled(spec, value)
            } else {
                spec.tag(key, value)
            };
            GroupCase {
                name: format!("{key}={value:?} ({why})"),
                spec,
                shape: Shape::Plain,
                expect: GroupExpect::Skip("InvalidConfig", vec![key.to_string(), format!("{value:?}")]),
            }
        })
        .collect()
}

/// Groups in states that leave nothing to do, each with its reason.
fn odd_state_cases() -> Vec<GroupCase> {
    let case = |name: &str, spec: GroupSpec, shape: Shape, expect: GroupExpect| GroupCase {
        name: name.to_string(),
        spec,
        shape,
        expect,
    };
    let managed = |name: &str, desired: i32, max: i32| GroupSpec {
        max,
        subnets: 1,
        ..GroupSpec::managed(name, desired)
    };
    vec![
        case(
            "desired 0",
            managed("odd-desired-0", 0, 2),
            Shape::Plain,
            GroupExpect::Quiet,
        ),
        case(
            "max 0",
            managed("odd-max-0", 0, 0),
            Shape::Plain,
            GroupExpect::Quiet,
        ),
        case(
            "every instance protected from scale-in",
            managed("odd-scale-in-protected", 2, 2),
            Shape::ScaleInProtected,
            GroupExpect::Wait("InstanceProtected"),
        ),
        case(
            "on-demand-percent 100: the floor is the whole group",
            managed("odd-floor-100", 2, 2).tag(tags::ON_DEMAND_PERCENT, "100"),
            Shape::Plain,
            GroupExpect::Wait("AtRiskFloor"),
        ),
        case(
            "on-demand-base above desired",
            managed("odd-base-above", 2, 2).tag(tags::ON_DEMAND_BASE, "5"),
            Shape::Plain,
            GroupExpect::Wait("AtRiskFloor"),
        ),
        case(
            "mixed instances policy at 100% on-demand: its own floor keeps it all",
            managed("odd-mixed", 1, 1),
            Shape::MixedInstances,
            GroupExpect::Wait("AtRiskFloor"),
        ),
        case(
            "launch configuration with ClassicLink, which a launch template cannot express",
            managed("odd-launch-config", 1, 1),
            Shape::LaunchConfiguration(LcOdd::ClassicLink),
            GroupExpect::Skip(
                "LaunchConfigurationNotSupported",
                vec!["odd-launch-config-lc".into(), "ClassicLinkVPCId".into()],
            ),
        ),
        case(
            "launch configuration that launches spot itself",
            managed("odd-lc-spot", 1, 1),
            Shape::LaunchConfiguration(LcOdd::SpotPrice),
            GroupExpect::Skip(
                "LaunchConfigurationNotSupported",
                vec!["odd-lc-spot-lc".into(), "SpotPrice".into()],
            ),
        ),
        case(
            "sheltered until 2099",
            managed("odd-sheltered", 1, 1).tag(tags::SHELTERED_UNTIL, "2099-01-01T00:00:00Z"),
            Shape::Plain,
            GroupExpect::Skip("Sheltered", vec!["2099-01-01".into()]),
        ),
        case(
            "spotswap:enabled=false in opt-in mode",
            with_enabled(managed("odd-disabled", 1, 1), "false"),
            Shape::Plain,
            GroupExpect::Skip("NotManaged", vec![]),
        ),
    ]
}

fn asg_tags(spec: &GroupSpec) -> Vec<AsgTag> {
    spec.tags
        .iter()
        .map(|(k, v)| {
            AsgTag::builder()
                .resource_id(&spec.name)
                .resource_type("auto-scaling-group")
                .key(k)
                .value(v)
                .propagate_at_launch(false)
                .build()
        })
        .collect()
}

impl GroupCase {
    async fn create(&self, env: &Env) {
        let spec = &self.spec;
        let subnet = env.subnets().await.remove(0).0;
        match self.shape {
            Shape::Plain | Shape::ScaleInProtected => {
                env.group(spec).await;
            }
            Shape::MixedInstances => {
                let lt = env
                    .launch_template(&format!("{}-lt", spec.name), &spec.instance_type)
                    .await;
                env.asg
                    .create_auto_scaling_group()
                    .auto_scaling_group_name(&spec.name)
                    .mixed_instances_policy(
                        MixedInstancesPolicy::builder()
                            .launch_template(
                                LaunchTemplate::builder()
                                    .launch_template_specification(
                                        AsgTemplateSpec::builder()
                                            .launch_template_id(lt)
                                            .version("$Latest")
                                            .build(),
                                    )
                                    .overrides(
                                        LaunchTemplateOverrides::builder()
                                            .instance_type(&spec.instance_type)
                                            .build(),
                                    )
                                    .build(),
                            )
                            .instances_distribution(
                                InstancesDistribution::builder()
                                    .on_demand_percentage_above_base_capacity(100)
                                    .build(),
                            )
                            .build(),
                    )
                    .min_size(0)
                    .max_size(spec.max)
                    .desired_capacity(spec.desired)
                    .vpc_zone_identifier(subnet)
                    .set_tags(Some(asg_tags(spec)))
                    .send()
                    .await
                    .expect("create mixed instances group");
            }
            Shape::LaunchConfiguration(odd) => {
                let lc = format!("{}-lc", spec.name);
                let req = env
                    .asg
                    .create_launch_configuration()
                    .launch_configuration_name(&lc)
                    .image_id(AMI)
                    .instance_type(&spec.instance_type);
                let req = match odd {
                    LcOdd::ClassicLink => req.classic_link_vpc_id("vpc-0classic"),
                    LcOdd::SpotPrice => req.spot_price("0.05"),
                };
                req.send().await.expect("create launch configuration");
                env.asg
                    .create_auto_scaling_group()
                    .auto_scaling_group_name(&spec.name)
                    .launch_configuration_name(lc)
                    .min_size(0)
                    .max_size(spec.max)
                    .desired_capacity(spec.desired)
                    .vpc_zone_identifier(subnet)
                    .set_tags(Some(asg_tags(spec)))
                    .send()
                    .await
                    .expect("create launch configuration group");
            }
        }
        let members = env.group_state(&spec.name).await.in_service();
        if matches!(self.shape, Shape::ScaleInProtected) {
            for id in &members {
                env.protect(&spec.name, id).await;
            }
        }
    }
}

/// Check one group against its case in a cycle's report.
fn check_group(failures: &mut Failures, case: &GroupCase, report: &CycleReport) {
    let (name, group) = (case.name.as_str(), case.spec.name.as_str());
    let skip = report.skipped.iter().find(|s| s.group == group);
    let actions: Vec<&ActionReport> = report.actions.iter().filter(|a| a.group == group).collect();
    let steps: Vec<(&str, &str)> = actions.iter().map(|a| (a.kind.name(), a.reason.code())).collect();
    match &case.expect {
        GroupExpect::Skip(reason, needles) => {
            let got = skip.map(|s| s.reason.code());
            failures.check(name, got == Some(*reason), || {
                format!("{group} skipped as {got:?}, expected {reason}")
            });
            let detail = skip.and_then(|s| s.detail.clone()).unwrap_or_default();
            for n in needles {
                failures.check(name, detail.contains(n.as_str()), || {
                    format!("{group} skip detail lacks {n:?}: {detail:?}")
                });
            }
            failures.check(name, actions.is_empty(), || {
                format!("{group} skipped but has actions {steps:?}")
            });
        }
        GroupExpect::Wait(reason) => {
            failures.check(name, skip.is_none(), || format!("{group} skipped: {skip:?}"));
            failures.check(name, steps == vec![("wait", *reason)], || {
                format!("{group} actions {steps:?}, expected one wait {reason}")
            });
        }
        GroupExpect::Quiet => {
            failures.check(name, skip.is_none(), || format!("{group} skipped: {skip:?}"));
            failures.check(name, actions.is_empty(), || format!("{group} actions {steps:?}"));
            let summary = report.groups.iter().find(|g| g.group == group);
            failures.check(
                name,
                summary.is_some_and(|g| g.census.desired == 0 && g.census.on_demand == 0),
                || format!("{group} summary {summary:?}, expected desired 0"),
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tags_and_odd_groups_are_skipped_or_wait_with_zero_mutating_calls() {
    // GIVEN one region behind the fault proxy with one group per case: each tag of the schema
    //   with a bad value on an otherwise swappable group of one on-demand instance, and groups
    //   in odd states
    let proxy = Proxy::from_env().await.expect("proxy");
    let env = Env::at(&proxy.url()).await;
    let cases: Vec<GroupCase> = tag_cases().into_iter().chain(odd_state_cases()).collect();
    for c in &cases {
        c.create(&env).await;
    }
    let mut before = BTreeMap::new();
    for c in &cases {
        before.insert(c.spec.name.clone(), env.group_state(&c.spec.name).await);
    }
    let live_before = env.live_instances().await;

    // WHEN one rebalancer cycle runs over the region
    proxy.reset_calls();
    let aws = env.aws();
    let report = rebalance(&aws, &config(), CycleOptions::default()).await;
    let (calls, mutating) = (proxy.calls(), proxy.mutating_calls());
    let report = report.expect("the cycle runs");
    eprintln!("{}", serde_json::to_string(&report).unwrap());

    // THEN not one mutating call reached AWS
    let mut failures = Failures::default();
    failures.check("cycle", mutating == 0, || format!("mutating calls: {calls:?}"));
    failures.check("cycle", report.mutating_calls() == 0, || {
        format!("adapter counted mutating calls: {:?}", report.api_calls)
    });
    // AND each group is skipped, waits or is quiet as its case says, and is unchanged
    for c in &cases {
        check_group(&mut failures, c, &report);
        let now = env.group_state(&c.spec.name).await;
        let was = &before[&c.spec.name];
        failures.check(&c.name, &now == was, || {
            format!("group changed: {was:?} -> {now:?}")
        });
    }
    failures.check("region", env.live_instances().await == live_before, || {
        "instances changed".into()
    });
    failures.assert_none(cases.len());

    // AND, as a control, a valid group next to them is planned a launch (dry run: still no
    //   mutating call), so the groups above were stopped by their input, not by the region
    let control = GroupSpec {
        subnets: 1,
        ..GroupSpec::managed("control", 1)
    };
    env.group(&control).await;
    proxy.reset_calls();
    let opts = CycleOptions {
        dry_run: true,
        ..CycleOptions::default()
    };
    let report = rebalance(&env.aws(), &config(), opts).await.expect("dry run");
    assert_eq!(proxy.mutating_calls(), 0, "{:?}", proxy.calls());
    assert!(
        report.actions.iter().any(|a| a.group == "control"
            && matches!(a.kind, spotswap_core::ActionKind::Launch(_))
            && a.outcome == Outcome::DryRun),
        "{:?}",
        report.actions
    );
    assert_eq!(
        report
            .skipped
            .iter()
            .filter(|s| s.reason.code() == "InvalidConfig")
            .count(),
        tag_cases().len()
    );
}

#[test]
fn every_setting_tag_has_bad_values() {
    // GIVEN the setting tags the policy reads (spotswap_core::policy::SETTING_TAGS) and
    //   spotswap:enabled
    // THEN the tag table gives each at least two bad values, so a tag added to the schema
    //   without rows here fails
    let tagged: Vec<String> = tag_cases().into_iter().map(|c| c.name).collect();
    for key in SETTING_TAGS.iter().chain([&tags::ENABLED]) {
        assert!(
            tagged
                .iter()
                .filter(|n| n.starts_with(&format!("{key}=")))
                .count()
                >= 2,
            "{key} needs bad values"
        );
    }
}
