//! Records the reaper cannot read, and groups it must not touch: one pass, each case skipped
//! or waiting with a reason naming its group or instance.

use std::collections::BTreeMap;

use spotswap_aws::report::ActionReport;
use spotswap_aws::{reap, CycleOptions};
use spotswap_core::tags;
use spotswap_tests::fleet::{Env, GroupSpec};
use spotswap_tests::proxy::Proxy;

use super::{config, standalone, with_enabled, Failures};

/// What the reaper is given.
#[derive(Debug, Clone)]
enum ReapInput {
    /// A group (desired 0) with these tags over `spotswap:enabled=true`.
    Group(GroupSpec),
    /// An instance in no group with these tags.
    Instance(Vec<(&'static str, &'static str)>),
}

/// What the pass must report.
#[derive(Debug, Clone)]
enum ReapExpect {
    /// The group in `skipped` with this reason, its detail holding each needle; no action.
    Skip(&'static str, Vec<String>),
    /// One `wait` with this reason, about this group, or about the case's instance.
    Wait(&'static str, &'static str),
}

struct ReapCase {
    name: &'static str,
    input: ReapInput,
    expect: ReapExpect,
}

fn reaper_cases() -> Vec<ReapCase> {
    let group = |name: &str, pairs: &[(&str, &str)]| {
        let mut spec = GroupSpec {
            max: 1,
            subnets: 1,
            ..GroupSpec::managed(name, 0)
        };
        for (k, v) in pairs {
            spec = if *k == tags::ENABLED {
                with_enabled(spec, v)
            } else {
                spec.tag(k, v)
            };
        }
        ReapInput::Group(spec)
    };
    vec![
        ReapCase {
            name: "max-raised-from=abc",
            input: group("r-raised-abc", &[(tags::MAX_RAISED_FROM, "abc")]),
            expect: ReapExpect::Wait("InvalidConfig", "r-raised-abc"),
        },
        ReapCase {
            name: "max-raised-from=-1",
            input: group("r-raised-negative", &[(tags::MAX_RAISED_FROM, "-1")]),
            expect: ReapExpect::Wait("InvalidConfig", "r-raised-negative"),
        },
        ReapCase {
            name: "max-raised-from on a group with on-demand-base=-1",
            input: group(
                "r-bad-policy",
                &[(tags::MAX_RAISED_FROM, "1"), (tags::ON_DEMAND_BASE, "-1")],
            ),
            expect: ReapExpect::Skip(
                "InvalidConfig",
                vec![tags::ON_DEMAND_BASE.into(), r#""-1""#.into()],
            ),
        },
        ReapCase {
            name: "expired cooldown on a group with spotswap:enabled=maybe",
            input: group(
                "r-bad-enabled",
                &[
                    (tags::ENABLED, "maybe"),
                    ("spotswap:cooldown:m5.large/us-east-1a", "2020-01-01T00:00:00Z"),
                ],
            ),
            expect: ReapExpect::Skip("InvalidConfig", vec![tags::ENABLED.into(), r#""maybe""#.into()]),
        },
        ReapCase {
            name: "max-raised-from on a group with spotswap:enabled=false",
            input: group(
                "r-disabled",
                &[(tags::ENABLED, "false"), (tags::MAX_RAISED_FROM, "1")],
            ),
            expect: ReapExpect::Skip("NotManaged", vec![]),
        },
        ReapCase {
            name: "detached-at=yesterday",
            input: ReapInput::Instance(vec![
                (tags::DETACHED_AT, "yesterday"),
                (tags::DETACHED_FROM, "r-gone"),
            ]),
            expect: ReapExpect::Wait("InvalidConfig", "r-gone"),
        },
        ReapCase {
            name: "detached-at empty",
            input: ReapInput::Instance(vec![(tags::DETACHED_AT, ""), (tags::DETACHED_FROM, "r-gone")]),
            expect: ReapExpect::Wait("InvalidConfig", "r-gone"),
        },
        ReapCase {
            name: "our launch with launched-at=soon, young by EC2's clock",
            input: ReapInput::Instance(vec![
                (tags::GROUP, "r-gone"),
                (tags::REPLACES, "i-0123456789abcdef0"),
                (tags::LAUNCHED_AT, "soon"),
            ]),
            expect: ReapExpect::Wait("WaitingForOrphanAge", "r-gone"),
        },
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reaper_leaves_unreadable_records_alone_with_a_reason() {
    // GIVEN a region behind the fault proxy with groups and instances carrying records the
    //   reaper cannot read, or on groups it must not touch
    let proxy = Proxy::from_env().await.expect("proxy");
    let env = Env::at(&proxy.url()).await;
    let cases = reaper_cases();
    let mut instance_of = BTreeMap::new();
    for c in &cases {
        match &c.input {
            ReapInput::Group(spec) => {
                env.group(spec).await;
            }
            ReapInput::Instance(tags) => {
                instance_of.insert(c.name, standalone(&env, tags).await);
            }
        }
    }
    let live_before = env.live_instances().await;

    // WHEN one reaper pass runs
    proxy.reset_calls();
    let report = reap(&env.aws(), &config(), CycleOptions::default())
        .await
        .expect("the pass runs");
    eprintln!("{}", serde_json::to_string(&report).unwrap());

    // THEN not one mutating call reached AWS
    let mut failures = Failures::default();
    failures.check("pass", proxy.mutating_calls() == 0, || {
        format!("mutating calls: {:?}", proxy.calls())
    });
    // AND each case is skipped or waits, naming its group or instance
    for c in &cases {
        let name = c.name;
        match (&c.expect, &c.input) {
            (ReapExpect::Skip(reason, needles), ReapInput::Group(spec)) => {
                let skip = report.skipped.iter().find(|s| s.group == spec.name);
                let got = skip.map(|s| s.reason.code());
                failures.check(name, got == Some(*reason), || {
                    format!("skipped as {got:?}, expected {reason}")
                });
                let detail = skip.and_then(|s| s.detail.clone()).unwrap_or_default();
                for n in needles {
                    failures.check(name, detail.contains(n.as_str()), || {
                        format!("detail lacks {n:?}: {detail:?}")
                    });
                }
                failures.check(name, report.actions.iter().all(|a| a.group != spec.name), || {
                    "a skipped group has actions".into()
                });
            }
            (ReapExpect::Wait(reason, group), input) => {
                let instance = instance_of.get(name).cloned();
                let mine: Vec<&ActionReport> = report
                    .actions
                    .iter()
                    .filter(|a| match (&instance, input) {
                        (Some(id), _) => a.instance.as_deref() == Some(id.as_str()),
                        (None, ReapInput::Group(spec)) => a.group == spec.name,
                        (None, ReapInput::Instance(_)) => false,
                    })
                    .collect();
                let steps: Vec<(&str, &str, &str)> = mine
                    .iter()
                    .map(|a| (a.kind.name(), a.reason.code(), a.group.as_str()))
                    .collect();
                failures.check(name, steps == vec![("wait", *reason, *group)], || {
                    format!("decisions {steps:?}, expected one wait {reason} for {group}")
                });
            }
            (expect, _) => failures.check(name, false, || format!("case cannot expect {expect:?}")),
        }
    }
    failures.check("region", env.live_instances().await == live_before, || {
        "instances changed".into()
    });
    failures.assert_none(cases.len());
}
