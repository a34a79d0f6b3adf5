//! Issue 18: Reserved Instances and Savings Plans are used, never wasted.
//!
//! moto has no commitments (DescribeReservedInstances raises NotImplementedError, and there is
//! no Savings Plans API), so the proxy serves them in AWS's wire formats
//! (`Proxy::set_commitments`): EC2 Query XML for the RIs, REST-JSON for Savings Plans.

use std::collections::BTreeMap;

use spotswap_aws::{reap, rebalance, Config, CycleOptions, CycleReport, Outcome};
use spotswap_core::{ActionKind, Reason};
use spotswap_tests::fleet::{sample_price_file, Env, GroupSpec};
use spotswap_tests::proxy::{PlanSpec, Proxy, ReservedSpec};

fn config() -> Config {
    Config {
        price_file: Some(sample_price_file()),
        ..Config::default()
    }
}

async fn cycle(env: &Env) -> CycleReport {
    rebalance(&env.aws(), &config(), CycleOptions::default())
        .await
        .expect("cycle")
}

/// The AZ of each live instance of the region.
async fn azs(env: &Env) -> BTreeMap<String, String> {
    let resp = env.ec2.describe_instances().send().await.expect("describe");
    resp.reservations()
        .iter()
        .flat_map(|r| r.instances())
        .filter(|i| {
            i.state()
                .and_then(|s| s.name())
                .is_some_and(|n| n.as_str() == "running")
        })
        .filter_map(|i| {
            Some((
                i.instance_id()?.to_string(),
                i.placement()?.availability_zone()?.to_string(),
            ))
        })
        .collect()
}

/// Cycles until one changes nothing, checking invariants 1 (never below desired), 2 (an
/// original retired only once its replacement is InService) and 4 (the unmanaged group is
/// untouched) after each; the reports, in order.
async fn converge(env: &Env, group: &str, desired: usize, unmanaged: Option<&str>) -> Vec<CycleReport> {
    let untouched = match unmanaged {
        Some(u) => Some(env.group_state(u).await),
        None => None,
    };
    let mut reports = Vec::new();
    for _ in 0..16 {
        let before = env.group_state(group).await;
        let report = cycle(env).await;
        eprintln!("{}", serde_json::to_string(&report).unwrap());
        let after = env.group_state(group).await;
        assert!(after.in_service().len() >= desired, "invariant 1: {after:?}");
        let live = env.live_instances().await;
        for a in &report.actions {
            assert!(!matches!(a.outcome, Outcome::Failed(_)), "{a:?}");
            if matches!(a.kind, ActionKind::Retire { .. }) && a.outcome == Outcome::Done(None) {
                let retired = a.instance.as_deref().unwrap();
                let replacement = live
                    .iter()
                    .find(|(_, i)| i.tags.get("spotswap:replaces").map(String::as_str) == Some(retired))
                    .map(|(id, _)| id.clone())
                    .expect("a retired instance has a replacement");
                assert_eq!(
                    before.members.get(&replacement).map(String::as_str),
                    Some("InService"),
                    "invariant 2"
                );
            }
        }
        if let (Some(u), Some(state)) = (unmanaged, &untouched) {
            assert_eq!(&env.group_state(u).await, state, "invariant 4");
            assert!(report.actions.iter().all(|a| a.group != u), "invariant 4");
        }
        let done = report.mutating_calls() == 0;
        reports.push(report);
        if done {
            return reports;
        }
    }
    panic!("no convergence in 16 cycles");
}

fn waits(report: &CycleReport, reason: Reason) -> Vec<&spotswap_aws::report::ActionReport> {
    report
        .actions
        .iter()
        .filter(|a| a.kind == ActionKind::Wait && a.reason == reason)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_serves_commitments_as_aws_does() {
    // GIVEN an active RI, a retired one and a Savings Plan in the scenario
    let proxy = Proxy::from_env().await.expect("proxy");
    let env = Env::at(&proxy.url()).await;
    let mut retired = ReservedSpec::active("ri-old", "m5.large", None, 2);
    retired.state = "retired".into();
    proxy.set_commitments(
        vec![
            ReservedSpec::active("ri-1", "m5.large", Some("us-east-1a"), 3),
            retired,
        ],
        vec![PlanSpec::active(
            "sp-1",
            Some("m5"),
            env.region(),
            "0.100",
            &[("m5.large", "0.06")],
        )],
    );
    // WHEN the SDK asks for the active RIs
    let resp = env
        .ec2
        .describe_reserved_instances()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("state")
                .values("active")
                .build(),
        )
        .send()
        .await
        .expect("DescribeReservedInstances");
    // THEN only the active one comes back, every field read by the SDK
    let ris = resp.reserved_instances();
    assert_eq!(ris.len(), 1, "{ris:?}");
    assert_eq!(ris[0].reserved_instances_id(), Some("ri-1"));
    assert_eq!(ris[0].instance_count(), Some(3));
    assert_eq!(ris[0].availability_zone(), Some("us-east-1a"));
    assert_eq!(ris[0].scope().map(|s| s.as_str()), Some("Availability Zone"));
    assert_eq!(
        ris[0].product_description().map(|p| p.as_str()),
        Some("Linux/UNIX (Amazon VPC)")
    );
    assert!(ris[0].end().is_some());
    // AND the Savings Plans client reads the plan and its rates
    let sp = aws_sdk_savingsplans::Client::new(&env.conf);
    let plans = sp
        .describe_savings_plans()
        .states(aws_sdk_savingsplans::types::SavingsPlanState::Active)
        .send()
        .await
        .expect("DescribeSavingsPlans");
    assert_eq!(plans.savings_plans().len(), 1);
    assert_eq!(plans.savings_plans()[0].commitment(), Some("0.100"));
    assert_eq!(plans.savings_plans()[0].ec2_instance_family(), Some("m5"));
    let rates = sp
        .describe_savings_plan_rates()
        .savings_plan_id("sp-1")
        .send()
        .await
        .expect("DescribeSavingsPlanRates");
    assert_eq!(rates.search_results().len(), 1);
    assert_eq!(rates.search_results()[0].rate(), Some("0.06"));
    assert_eq!(proxy.call_count("savingsplans:DescribeSavingsPlans"), 1);
    // AND denied, each answers AWS's access-denied error
    proxy.set_commitments_denied(true);
    let err = env
        .ec2
        .describe_reserved_instances()
        .send()
        .await
        .expect_err("denied");
    assert_eq!(
        aws_sdk_ec2::error::ProvideErrorMetadata::code(&err),
        Some("UnauthorizedOperation")
    );
    let err = sp.describe_savings_plans().send().await.expect_err("denied");
    assert_eq!(
        aws_sdk_savingsplans::error::ProvideErrorMetadata::code(&err),
        Some("AccessDeniedException")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zonal_ri_covers_its_az_a_regional_one_any_and_covered_instances_stay() {
    // GIVEN a group of 3 on-demand m5.large (moto puts them in one AZ), a regional m5.large RI,
    // a zonal one in the instances' AZ and a zonal one in another AZ
    let proxy = Proxy::from_env().await.expect("proxy");
    let env = Env::at(&proxy.url()).await;
    env.group(&GroupSpec::managed("ri-web", 3).tag("spotswap:replace-per-cycle", "3"))
        .await;
    let azs = azs(&env).await;
    let az = azs.values().next().expect("an instance").clone();
    let other = env
        .subnets()
        .await
        .into_iter()
        .map(|(_, a)| a)
        .find(|a| *a != az)
        .expect("a second AZ");
    proxy.set_commitments(
        vec![
            ReservedSpec::active("ri-regional", "m5.large", None, 1),
            ReservedSpec::active("ri-zonal", "m5.large", Some(&az), 1),
            ReservedSpec::active("ri-elsewhere", "m5.large", Some(&other), 1),
        ],
        vec![],
    );

    // WHEN cycles run to convergence
    let reports = converge(&env, "ri-web", 3, None).await;

    // THEN exactly one instance was swapped: the two covered ones stay on-demand
    assert_eq!(env.mix("ri-web").await, (2, 1));
    // AND each covered one is a CommitmentCovered wait naming its commitment
    let last = reports.last().unwrap();
    let mut named: Vec<&str> = waits(last, Reason::CommitmentCovered)
        .iter()
        .filter_map(|a| a.commitment.as_deref())
        .collect();
    named.sort();
    assert_eq!(named, vec!["ri-regional", "ri-zonal"], "{:?}", last.actions);
    // AND the plan's commitments section shows the zonal RI of the other AZ unused
    let c = last.commitments.as_ref().expect("commitments section");
    let m5 = c.families.iter().find(|f| f.family == "m5").expect("m5");
    assert_eq!((m5.owned, m5.used_now, m5.unused_now), (12.0, 8.0, 4.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_xlarge_ri_covers_two_large_and_unmanaged_usage_comes_first() {
    // GIVEN an unmanaged group of one on-demand m5.large, a managed group of 3 m5.large, and
    // a regional m5.xlarge RI (8 units: two m5.large)
    let proxy = Proxy::from_env().await.expect("proxy");
    let env = Env::at(&proxy.url()).await;
    env.group(&GroupSpec::managed("flex-legacy", 1).unmanaged()).await;
    env.group(&GroupSpec::managed("flex-web", 3).tag("spotswap:replace-per-cycle", "3"))
        .await;
    proxy.set_commitments(vec![ReservedSpec::active("ri-xl", "m5.xlarge", None, 1)], vec![]);

    // WHEN cycles run to convergence
    converge(&env, "flex-web", 3, Some("flex-legacy")).await;

    // THEN the RI's two m5.large are the unmanaged one and one managed one: two managed
    // instances are swapped, one stays on-demand
    assert_eq!(env.mix("flex-web").await, (1, 2));
    assert_eq!(env.mix("flex-legacy").await, (1, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_ri_covers_nothing() {
    // GIVEN a group of 2 on-demand m5.large, an RI whose end has passed though EC2 still
    // lists it as active, and a retired one
    let proxy = Proxy::from_env().await.expect("proxy");
    let env = Env::at(&proxy.url()).await;
    env.group(&GroupSpec::managed("exp-web", 2).tag("spotswap:replace-per-cycle", "2"))
        .await;
    let mut ended = ReservedSpec::active("ri-ended", "m5.large", None, 2);
    ended.end = "2025-06-01T00:00:00.000Z".into();
    let mut retired = ReservedSpec::active("ri-retired", "m5.large", None, 2);
    retired.state = "retired".into();
    proxy.set_commitments(vec![ended, retired], vec![]);

    // WHEN cycles run to convergence
    let reports = converge(&env, "exp-web", 2, None).await;

    // THEN both are swapped, and no decision was held by a commitment
    assert_eq!(env.mix("exp-web").await, (0, 2));
    assert!(reports
        .iter()
        .all(|r| waits(r, Reason::CommitmentCovered).is_empty()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_savings_plan_at_eighty_percent_keeps_what_it_covers() {
    // GIVEN a group of 2 on-demand m5.large and a $0.10/h Compute plan whose m5.large rate is
    // $0.04/h: the two use $0.08/h, 80%
    let proxy = Proxy::from_env().await.expect("proxy");
    let env = Env::at(&proxy.url()).await;
    env.group(&GroupSpec::managed("sp-web", 2).tag("spotswap:replace-per-cycle", "2"))
        .await;
    proxy.set_commitments(
        vec![],
        vec![PlanSpec::active(
            "sp-80",
            None,
            env.region(),
            "0.100",
            &[("m5.large", "0.04")],
        )],
    );

    // WHEN a cycle runs
    let report = cycle(&env).await;

    // THEN neither is swapped: each removal would leave more of the commitment unused
    assert_eq!(report.mutating_calls(), 0, "{:?}", report.actions);
    let held = waits(&report, Reason::CommitmentCovered);
    assert_eq!(held.len(), 2, "{:?}", report.actions);
    assert!(held.iter().all(|a| a.commitment.as_deref() == Some("sp-80")));
    // AND the section shows $0.08 of $0.10 used, unchanged by the plan
    let c = report.commitments.as_ref().expect("commitments section");
    let p = &c.savings_plans[0];
    assert_eq!(
        (p.commitment_per_hour, p.used_now_per_hour, p.used_after_per_hour),
        (0.1, 0.08, 0.08)
    );
    assert!((c.unused_per_hour() - 0.02).abs() < 1e-9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fill_converges_back_to_on_demand_with_the_invariants() {
    // GIVEN a group of 3 that has converged to spot, and an unmanaged group
    let proxy = Proxy::from_env().await.expect("proxy");
    let env = Env::at(&proxy.url()).await;
    env.group(&GroupSpec::managed("fill-legacy", 1).unmanaged()).await;
    env.group(&GroupSpec::managed("fill-web", 3).tag("spotswap:replace-per-cycle", "3"))
        .await;
    converge(&env, "fill-web", 3, Some("fill-legacy")).await;
    assert_eq!(env.mix("fill-web").await, (0, 3));

    // WHEN the account buys a regional RI for three m5.large (one taken by the unmanaged
    // instance), the group is tagged fill with one swap a cycle, and cycles run
    proxy.set_commitments(vec![ReservedSpec::active("ri-fill", "m5.large", None, 3)], vec![]);
    env.asg
        .create_or_update_tags()
        .tags(tag("fill-web", "spotswap:commitments", "fill"))
        .tags(tag("fill-web", "spotswap:replace-per-cycle", "1"))
        .send()
        .await
        .expect("tag");
    let reports = converge(&env, "fill-web", 3, Some("fill-legacy")).await;

    // THEN the group converges to two on-demand under the RI and one spot, one launch a
    // cycle, each a CommitmentUnused launch naming the RI
    assert_eq!(env.mix("fill-web").await, (2, 1));
    let fills: Vec<_> = reports
        .iter()
        .flat_map(|r| r.actions.iter())
        .filter(|a| matches!(a.kind, ActionKind::Launch(_)) && matches!(a.outcome, Outcome::Done(Some(_))))
        .collect();
    assert_eq!(
        fills.len(),
        2,
        "one on-demand launch per unused m5.large of the RI"
    );
    assert!(fills
        .iter()
        .all(|a| a.reason == Reason::CommitmentUnused && a.commitment.as_deref() == Some("ri-fill")));
    for r in &reports {
        assert!(
            r.actions
                .iter()
                .filter(|a| matches!(a.kind, ActionKind::Launch(_)))
                .count()
                <= 1
        );
    }
    let c = reports.last().unwrap().commitments.as_ref().unwrap();
    assert_eq!(c.families[0].unused_now, 0.0);

    // AND 6: the converged cycle delivered three times, two at once, changes nothing
    let (a, b) = tokio::join!(cycle(&env), cycle(&env));
    let c3 = cycle(&env).await;
    for r in [&a, &b, &c3] {
        assert_eq!(r.mutating_calls(), 0, "{:?}", r.actions);
    }
    // AND 5: a reaper pass past the orphan age finds nothing of ours outside a group, and
    // MaxSize is back
    let later = spotswap_aws::workflow::now().plus_minutes(60);
    reap(
        &env.aws(),
        &config(),
        CycleOptions {
            now: Some(later),
            ..CycleOptions::default()
        },
    )
    .await
    .expect("reap");
    let state = env.group_state("fill-web").await;
    assert_eq!(state.max, 3, "MaxSize restored");
    let live = env.live_instances().await;
    for (id, i) in &live {
        if i.tags.contains_key("spotswap:group") {
            assert!(state.members.contains_key(id), "{id} runs outside the group");
        }
    }
}

fn tag(group: &str, k: &str, v: &str) -> aws_sdk_autoscaling::types::Tag {
    aws_sdk_autoscaling::types::Tag::builder()
        .resource_id(group)
        .resource_type("auto-scaling-group")
        .key(k)
        .value(v)
        .propagate_at_launch(false)
        .build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_commitments_let_swaps_proceed_except_in_strict_groups() {
    // GIVEN a group under keep and one under strict, each with an on-demand instance, and a
    // role that may not read commitments
    let proxy = Proxy::from_env().await.expect("proxy");
    let env = Env::at(&proxy.url()).await;
    env.group(&GroupSpec::managed("unk-keep", 1)).await;
    env.group(&GroupSpec::managed("unk-strict", 1).tag("spotswap:commitments", "strict"))
        .await;
    proxy.set_commitments(
        vec![ReservedSpec::active("ri-hidden", "m5.large", None, 5)],
        vec![],
    );
    proxy.set_commitments_denied(true);

    // WHEN a cycle runs
    let report = cycle(&env).await;

    // THEN the keep group swaps as without commitments, the strict one starts nothing and is
    // skipped with CommitmentsUnknown, and the section says unknown
    let launched = |g: &str| {
        report
            .actions
            .iter()
            .filter(|a| a.group == g && matches!(a.kind, ActionKind::Launch(_)))
            .count()
    };
    assert_eq!(launched("unk-keep"), 1, "{:?}", report.actions);
    assert_eq!(launched("unk-strict"), 0, "{:?}", report.actions);
    let skip = report.skipped.iter().find(|s| s.group == "unk-strict");
    assert_eq!(skip.map(|s| s.reason), Some(Reason::CommitmentsUnknown));
    assert!(report.commitments.as_ref().is_some_and(|c| c.unknown));
    // AND once they can be read again (the account has none), the strict group swaps
    proxy.set_commitments_denied(false);
    proxy.set_commitments(vec![], vec![]);
    let report = cycle(&env).await;
    assert!(report
        .skipped
        .iter()
        .all(|s| s.reason != Reason::CommitmentsUnknown));
    assert_eq!(
        report
            .actions
            .iter()
            .filter(|a| a.group == "unk-strict" && matches!(a.kind, ActionKind::Launch(_)))
            .count(),
        1,
        "{:?}",
        report.actions
    );
}
