//! Issue 19, AWS Health scheduled changes: a retiring instance of a managed group, spot or
//! on-demand, gets a proactive swap through the rebalancer's stages, once, however often the
//! event is delivered.

use spotswap_aws::{handle_event, rebalance, Config, CycleOptions, EventOptions, EventReport, Outcome};
use spotswap_core::{ActionKind, Purchase, Reason};
use spotswap_tests::fleet::{sample_price_file, Env, GroupSpec};
use spotswap_tests::lambda::workspace_root;

const SAMPLE_ID: &str = "i-1234567890abcdef0";

fn config() -> Config {
    Config {
        price_file: Some(sample_price_file()),
        event_bus: String::new(),
        ..Config::default()
    }
}

fn health_event(instance: &str) -> String {
    std::fs::read_to_string(workspace_root().join("events/interruption-health-scheduled-change.json"))
        .expect("event file")
        .replace(SAMPLE_ID, instance)
}

async fn handle(env: &Env, raw: &str) -> EventReport {
    handle_event(&env.aws(), &config(), raw, EventOptions::default())
        .await
        .expect("event handled")
}

/// (action, reason) of every decision.
fn decisions(r: &EventReport) -> Vec<(&'static str, Reason)> {
    r.decisions.iter().map(|d| (d.kind.name(), d.reason)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retiring_on_demand_instance_the_floor_needs_is_replaced_once_on_demand_before_it_goes() {
    // GIVEN a group of two on-demand instances, both needed by its floor
    let env = Env::new().await;
    let group = env
        .group(&GroupSpec {
            max: 3,
            subnets: 1,
            ..GroupSpec::managed("hl-web", 2).tag("spotswap:on-demand-base", "2")
        })
        .await;
    let before = env.group_state(&group).await;
    let retiring = before.in_service()[0].clone();
    // WHEN AWS Health schedules its retirement, and the event arrives three times at once
    let raw = health_event(&retiring);
    let (a, b, c) = tokio::join!(handle(&env, &raw), handle(&env, &raw), handle(&env, &raw));
    // THEN at least one delivery launched an on-demand replacement of its own type, tagged as
    //   replacing it; the others launched nothing more than duplicates the stages end
    let launched: Vec<String> = [&a, &b, &c]
        .iter()
        .flat_map(|r| r.decisions.iter())
        .filter_map(|d| match (&d.kind, &d.outcome) {
            (ActionKind::Launch(spec), Outcome::Done(Some(id))) => {
                assert_eq!(spec.purchase, Purchase::OnDemand);
                assert_eq!(d.reason, Reason::ScheduledChange);
                Some(id.clone())
            }
            _ => None,
        })
        .collect();
    assert!(
        !launched.is_empty(),
        "{:?} {:?} {:?}",
        decisions(&a),
        decisions(&b),
        decisions(&c)
    );
    let live = env.live_instances().await;
    for id in &launched {
        assert!(!live[id].spot);
        assert_eq!(live[id].tags["spotswap:replaces"], retiring);
    }
    // AND a later delivery sees the swap under way and changes nothing
    let again = handle(&env, &raw).await;
    assert_eq!(decisions(&again), vec![("ignore", Reason::AlreadyHandled)]);
    assert_eq!(again.mutating_calls(), 0);

    // WHEN rebalancer cycles run
    let mut settled = false;
    for _ in 0..10 {
        let cycle = rebalance(&env.aws(), &config(), CycleOptions::default())
            .await
            .unwrap();
        let g = env.group_state(&group).await;
        assert!(g.in_service().len() >= 2, "never below desired: {g:?}");
        if cycle.mutating_calls() == 0 {
            settled = true;
            break;
        }
    }
    // THEN the retiring instance is retired and terminated, one replacement serves in its place,
    //   the group is still all on-demand at desired and MaxSize as before, and no launch is left
    assert!(settled, "the swap settles");
    let after = env.group_state(&group).await;
    assert!(!after.members.contains_key(&retiring));
    assert_eq!((after.desired, after.max), (before.desired, before.max));
    assert_eq!(after.in_service().len(), 2);
    assert_eq!(env.mix(&group).await, (2, 0), "(on-demand, spot)");
    let live = env.live_instances().await;
    assert!(!live.contains_key(&retiring), "retired instance terminated");
    let serving: Vec<&String> = launched
        .iter()
        .filter(|id| after.members.contains_key(*id))
        .collect();
    assert_eq!(serving.len(), 1, "one replacement serves: {launched:?} {after:?}");
    for id in launched.iter().filter(|id| !after.members.contains_key(*id)) {
        assert!(!live.contains_key(id), "duplicate launch {id} ended");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_health_events_and_unmanaged_instances_are_no_ops() {
    let env = Env::new().await;
    let legacy = env.group(&GroupSpec::managed("hl-legacy", 1).unmanaged()).await;
    let managed = env.group(&GroupSpec::managed("hl-managed", 1)).await;
    let legacy_id = env.group_state(&legacy).await.in_service()[0].clone();
    let managed_id = env.group_state(&managed).await.in_service()[0].clone();
    // GIVEN a scheduled change of an unmanaged group's instance
    let r = handle(&env, &health_event(&legacy_id)).await;
    assert_eq!(decisions(&r), vec![("ignore", Reason::NotManaged)]);
    assert_eq!(r.mutating_calls(), 0);
    // AND a Health event of another category about a managed instance
    let issue = health_event(&managed_id).replace("\"scheduledChange\"", "\"issue\"");
    let r = handle(&env, &issue).await;
    assert_eq!(decisions(&r), vec![("ignore", Reason::NotScheduledChange)]);
    assert_eq!(r.mutating_calls(), 0);
    // AND an instance id EC2 does not know
    let r = handle(&env, &health_event("i-0123456789abcdef0")).await;
    assert_eq!(decisions(&r), vec![("ignore", Reason::UnknownInstance)]);
    assert_eq!(r.mutating_calls(), 0);
    // AND a Health event whose detail is not an object is bad input, before any call
    let bad = r#"{"version":"0","id":"x","detail-type":"AWS Health Event","source":"aws.health","account":"1","time":"2026-01-01T00:00:00Z","region":"us-east-1","resources":[],"detail":"retire"}"#;
    let err = handle_event(&env.aws(), &config(), bad, EventOptions::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("AWS Health Event"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_reports_scheduled_events_as_aws_does_and_moto_cannot() {
    // GIVEN a proxy with a retirement scheduled for one instance
    let proxy = spotswap_tests::proxy::Proxy::from_env().await.expect("proxy");
    let env = Env::at(&proxy.url()).await;
    let group = env.group(&GroupSpec::managed("hl-proxy", 2)).await;
    let ids = env.group_state(&group).await.in_service();
    proxy.set_scheduled_event(&ids[0], Some(("instance-retirement", "2026-01-15T09:00:00Z")));
    let ask = |codes: &[&str]| {
        env.ec2.describe_instance_status().filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("event.code")
                .set_values(Some(codes.iter().map(|c| c.to_string()).collect()))
                .build(),
        )
    };
    // WHEN DescribeInstanceStatus is asked for that event code
    let r = ask(&["instance-retirement", "instance-stop"])
        .send()
        .await
        .unwrap();
    // THEN only the instance with the event is listed, with its code and start
    let listed: Vec<(&str, &str, i64)> = r
        .instance_statuses()
        .iter()
        .flat_map(|s| {
            s.events().iter().map(move |e| {
                (
                    s.instance_id().unwrap(),
                    e.code().unwrap().as_str(),
                    e.not_before().unwrap().secs(),
                )
            })
        })
        .collect();
    assert_eq!(
        listed,
        vec![(ids[0].as_str(), "instance-retirement", 1_768_467_600)]
    );
    assert_eq!(r.instance_statuses().len(), 1);
    // AND another code lists nothing; without the filter moto answers for every instance
    assert!(ask(&["system-reboot"])
        .send()
        .await
        .unwrap()
        .instance_statuses()
        .is_empty());
    let all = env.ec2.describe_instance_status().send().await.unwrap();
    assert!(all.instance_statuses().len() >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rebalancer_picks_up_a_scheduled_retirement_without_the_health_event() {
    // GIVEN a group of two on-demand instances above the floor, one of them scheduled for
    //   retirement, seen only through DescribeInstanceStatus (no Health event delivered)
    let proxy = spotswap_tests::proxy::Proxy::from_env().await.expect("proxy");
    let env = Env::at(&proxy.url()).await;
    let group = env
        .group(&GroupSpec {
            max: 4,
            subnets: 1,
            ..GroupSpec::managed("hl-pickup", 2)
        })
        .await;
    let ids = env.group_state(&group).await.in_service();
    let retiring = ids[0].clone();
    proxy.set_scheduled_event(&retiring, Some(("instance-retirement", "2026-01-15T09:00:00Z")));
    // WHEN a rebalancer cycle runs
    let cycle = rebalance(&env.aws(), &config(), CycleOptions::default())
        .await
        .unwrap();
    // THEN it launches a spot replacement for the retiring instance, reason ScheduledChange
    let scheduled: Vec<_> = cycle
        .actions
        .iter()
        .filter(|a| a.reason == Reason::ScheduledChange)
        .collect();
    assert_eq!(scheduled.len(), 1, "{:#?}", cycle.actions);
    let ActionKind::Launch(spec) = &scheduled[0].kind else {
        panic!("{:?}", scheduled[0].kind)
    };
    assert_eq!(spec.replaces, retiring);
    assert_eq!(spec.purchase, Purchase::Spot);
    assert!(matches!(scheduled[0].outcome, Outcome::Done(Some(_))));
    // AND the Health event arriving later finds the swap under way
    let late = handle(&env, &health_event(&retiring)).await;
    assert_eq!(decisions(&late), vec![("ignore", Reason::AlreadyHandled)]);
    assert_eq!(late.mutating_calls(), 0);
}
