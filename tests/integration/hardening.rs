//! Issue 15, hardening: the safety controls hold as AWS behaves, where moto is blind. Each
//! test here failed before its fix.

use spotswap_aws::{rebalance, Config, CycleOptions, CycleReport, Outcome};
use spotswap_core::{ActionKind, Timestamp};
use spotswap_tests::fleet::{sample_price_file, Env, GroupSpec};
use spotswap_tests::proxy::Proxy;

fn config() -> Config {
    Config {
        price_file: Some(sample_price_file()),
        ..Config::default()
    }
}

async fn cycle_at(env: &Env, now: Timestamp) -> CycleReport {
    let opts = CycleOptions {
        now: Some(now),
        ..CycleOptions::default()
    };
    rebalance(&env.aws(), &config(), opts).await.expect("cycle")
}

/// The launched instance of the cycle's one launch.
fn launched(report: &CycleReport) -> Option<String> {
    report.actions.iter().find_map(|a| match (&a.kind, &a.outcome) {
        (ActionKind::Launch(_), Outcome::Done(Some(id))) => Some(id.clone()),
        _ => None,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relaunch_minutes_later_is_a_new_request_with_a_token_of_its_own() {
    // GIVEN a managed group of one on-demand instance, behind a proxy that honours CreateFleet's
    // ClientToken as EC2 does (moto ignores it)
    let proxy = Proxy::from_env().await.expect("proxy");
    proxy.set_client_tokens(true);
    let env = Env::at(&proxy.url()).await;
    env.group(&GroupSpec::managed("token-web", 1)).await;
    // the start of a 10-minute bucket, so both cycles fall in the same one
    let now = Timestamp::from_unix(spotswap_aws::workflow::now().unix().div_euclid(600) * 600);

    // WHEN a cycle launches a replacement, the launch dies before its attach (terminated
    // outside spotswap), and a cycle 30 s later launches again for the same original
    let first = launched(&cycle_at(&env, now).await).expect("the first cycle launches");
    env.ec2
        .terminate_instances()
        .instance_ids(&first)
        .send()
        .await
        .expect("terminate");
    let report = cycle_at(&env, now.plus_secs(30)).await;

    // THEN the second launch is a request of its own, launched: not refused as
    // IdempotentParameterMismatch for reusing the first one's token with another launched-at
    let second = launched(&report);
    assert!(
        second.as_ref().is_some_and(|id| *id != first),
        "{:#?}",
        report.actions
    );
}
