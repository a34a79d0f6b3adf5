//! Issue 15 item 5: a group whose CloudFormation stack is mid-operation gets no new swap
//! (`StackUpdating`). moto completes every stack operation inside the call, so the proxy
//! shows the `*_IN_PROGRESS` status AWS shows for minutes (`Proxy::set_stack_status`).

use spotswap_aws::{rebalance, Config, CycleOptions, CycleReport};
use spotswap_core::{ActionKind, Reason};
use spotswap_tests::fleet::{sample_price_file, Env, GroupSpec};
use spotswap_tests::proxy::Proxy;

/// The smallest stack moto accepts: one resource that creates nothing.
const TEMPLATE: &str = r#"{"Resources":{"Handle":{"Type":"AWS::CloudFormation::WaitConditionHandle"}}}"#;

async fn create_stack(env: &Env, name: &str) -> aws_sdk_cloudformation::Client {
    let cfn = aws_sdk_cloudformation::Client::new(&env.conf);
    cfn.create_stack()
        .stack_name(name)
        .template_body(TEMPLATE)
        .send()
        .await
        .expect("create stack");
    cfn
}

async fn status(cfn: &aws_sdk_cloudformation::Client, name: &str) -> String {
    let resp = cfn
        .describe_stacks()
        .stack_name(name)
        .send()
        .await
        .expect("describe stacks");
    resp.stacks()[0]
        .stack_status()
        .map(|s| s.as_str().to_string())
        .unwrap_or_default()
}

async fn cycle(env: &Env) -> CycleReport {
    let config = Config {
        price_file: Some(sample_price_file()),
        ..Config::default()
    };
    rebalance(&env.aws(), &config, CycleOptions::default())
        .await
        .expect("cycle")
}

fn launches(report: &CycleReport, group: &str) -> usize {
    report
        .actions
        .iter()
        .filter(|a| a.group == group && matches!(a.kind, ActionKind::Launch(_)))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_shows_a_stack_in_progress_as_aws_does() {
    // GIVEN two stacks in moto, which has completed both by the time it answers
    let proxy = Proxy::from_env().await.expect("proxy");
    let env = Env::at(&proxy.url()).await;
    let cfn = create_stack(&env, "emul-a").await;
    create_stack(&env, "emul-b").await;
    assert_eq!(status(&cfn, "emul-a").await, "CREATE_COMPLETE");
    // WHEN the scenario puts one of them mid-update
    proxy.set_stack_status("emul-a", Some("UPDATE_IN_PROGRESS"));
    // THEN DescribeStacks shows that status for it, and moto's for the other
    assert_eq!(status(&cfn, "emul-a").await, "UPDATE_IN_PROGRESS");
    assert_eq!(status(&cfn, "emul-b").await, "CREATE_COMPLETE");
    // AND once the rule is removed, moto's answer again
    proxy.set_stack_status("emul-a", None);
    assert_eq!(status(&cfn, "emul-a").await, "CREATE_COMPLETE");
    // AND a stack that does not exist is AWS's ValidationError
    let err = cfn
        .describe_stacks()
        .stack_name("emul-none")
        .send()
        .await
        .expect_err("no such stack");
    let err = aws_sdk_cloudformation::error::ProvideErrorMetadata::code(&err);
    assert_eq!(err, Some("ValidationError"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stack_mid_update_starts_no_swap_until_it_settles() {
    // GIVEN two managed groups of one CloudFormation stack, each with an on-demand instance
    // to swap, and the stack mid-update
    let proxy = Proxy::from_env().await.expect("proxy");
    let env = Env::at(&proxy.url()).await;
    create_stack(&env, "shop").await;
    for name in ["stack-web", "stack-api"] {
        env.group(&GroupSpec::managed(name, 1).tag("aws:cloudformation:stack-name", "shop"))
            .await;
    }
    proxy.set_stack_status("shop", Some("UPDATE_IN_PROGRESS"));
    proxy.reset_calls();

    // WHEN a cycle runs
    let report = cycle(&env).await;

    // THEN neither group starts a swap, each is skipped naming the stack and its status, and
    // the stack was asked about once for both
    for name in ["stack-web", "stack-api"] {
        let skip = report.skipped.iter().find(|s| s.group == name);
        assert_eq!(
            skip.map(|s| s.reason),
            Some(Reason::StackUpdating),
            "{:?}",
            report.skipped
        );
        assert_eq!(
            skip.and_then(|s| s.detail.as_deref()),
            Some("stack shop UPDATE_IN_PROGRESS")
        );
        assert_eq!(launches(&report, name), 0, "{:?}", report.actions);
    }
    assert_eq!(proxy.call_count("ec2:CreateFleet"), 0);
    assert_eq!(proxy.call_count("cloudformation:DescribeStacks"), 1);

    // WHEN the update completes and a cycle runs
    proxy.set_stack_status("shop", Some("UPDATE_COMPLETE"));
    let report = cycle(&env).await;

    // THEN both groups start their swaps
    for name in ["stack-web", "stack-api"] {
        assert_eq!(launches(&report, name), 1, "{name}: {:?}", report.actions);
    }
    assert!(report.skipped.iter().all(|s| s.reason != Reason::StackUpdating));
}
