//! Issue 20, diagnostics: `spotswap explain` against moto, through the real CLI binary. A swap
//! and an interruption are seeded by the CLI itself, its decision lines are written to a
//! CloudWatch Logs log group (moto implements PutLogEvents and FilterLogEvents), and explain
//! must tell the story from them, in order.

use std::process::Command;

use spotswap_tests::fleet::{sample_price_file, Env, GroupSpec};
use spotswap_tests::lambda::{workspace_bin, workspace_root};
use spotswap_tests::proxy::Proxy;

/// `spotswap <args>` against `endpoint`, every decision logged: (exit code, stdout, stderr).
fn cli_at(endpoint: &str, region: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(workspace_bin("spotswap"))
        .args(args)
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_REGION", region)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("SPOTSWAP_PRICE_FILE", sample_price_file())
        .env("SPOTSWAP_EVENT_BUS", "")
        .env("RUST_LOG", "info")
        .output()
        .expect("run spotswap (make test builds it)");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn cli(env: &Env, args: &[&str]) -> (i32, String, String) {
    cli_at(&env.endpoint, env.region(), args)
}

fn decisions(stderr: &str) -> Vec<serde_json::Value> {
    stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| l["message"] == "decision")
        .collect()
}

/// A swap launched for one of `group`'s on-demand instances, then a spot interruption warning
/// for the replacement: (original, replacement, the CLI's log lines of both, in order).
async fn seed(env: &Env, group: &str) -> (String, String, Vec<String>) {
    env.group(&GroupSpec::managed(group, 2)).await;
    let (code, out, err) = cli(env, &["rebalance", "--output", "json"]);
    assert_eq!(code, 0, "{err}");
    let report: serde_json::Value = serde_json::from_str(&out).expect("JSON report");
    let launch = report["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .find(|a| a["action"] == "launch" && a["outcome"] == "done")
        .unwrap_or_else(|| panic!("a launch: {report}"))
        .clone();
    let original = launch["instance"].as_str().expect("original").to_string();
    let replacement = launch["detail"].as_str().expect("new instance").to_string();
    // every decision line of the cycle carries the report's cycle id
    let cycle = report["cycle_id"].as_str().expect("cycle_id").to_string();
    assert!(cycle.starts_with("c-"), "{cycle}");
    let lines = decisions(&err);
    assert!(!lines.is_empty());
    assert!(lines.iter().all(|l| l["cycle_id"] == cycle.as_str()), "{err}");
    let mut log: Vec<String> = err.lines().map(str::to_string).collect();
    // the next cycle attaches the replacement (moto runs it at once)
    let (code, out, err) = cli(env, &["rebalance", "--output", "json"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(r#""action": "attach""#), "{out}");
    log.extend(err.lines().map(str::to_string));

    let event = std::fs::read_to_string(workspace_root().join("events/interruption-spot-warning.json"))
        .expect("event file")
        .replace("i-1234567890abcdef0", &replacement);
    let path = std::env::temp_dir().join(format!("diag-warning-{replacement}.json"));
    std::fs::write(&path, event).expect("write event");
    let (code, out, err) = cli(env, &["handle-event", path.to_str().expect("utf-8")]);
    assert_eq!(code, 0, "{err}");
    let answer: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    let event_id = answer["event_id"].as_str().expect("event id").to_string();
    assert_eq!(answer["cycle_id"], event_id.as_str());
    assert!(
        decisions(&err).iter().all(|l| l["cycle_id"] == event_id.as_str()),
        "{err}"
    );
    log.extend(err.lines().map(str::to_string));
    (original, replacement, log)
}

/// Write `lines` to a new log group, each at its own `timestamp` (CloudWatch wants them in
/// order within a call).
async fn to_log_group(env: &Env, name: &str, lines: &[String]) {
    let logs = aws_sdk_cloudwatchlogs::Client::new(&env.conf);
    logs.create_log_group()
        .log_group_name(name)
        .send()
        .await
        .expect("log group");
    to_existing_log_group(env, name, lines).await;
}

/// Write `lines` to the log group `name`, which exists.
async fn to_existing_log_group(env: &Env, name: &str, lines: &[String]) {
    let logs = aws_sdk_cloudwatchlogs::Client::new(&env.conf);
    logs.create_log_stream()
        .log_group_name(name)
        .log_stream_name("cli")
        .send()
        .await
        .expect("log stream");
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    let events: Vec<_> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                .timestamp(now_ms - 1000 + i as i64)
                .message(l)
                .build()
                .expect("event")
        })
        .collect();
    logs.put_log_events()
        .log_group_name(name)
        .log_stream_name("cli")
        .set_log_events(Some(events))
        .send()
        .await
        .expect("put log events");
}

fn reasons_of(e: &serde_json::Value, source: &str) -> Vec<String> {
    e["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .filter(|t| t["source"] == source)
        .map(|t| t["reason"].as_str().unwrap_or("").to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_reconstructs_a_swap_and_an_interruption_in_order() {
    // GIVEN a swap launched by the CLI and a spot warning for its replacement, the CLI's log
    // lines written to a log group and to a file
    let env = Env::new().await;
    let group = "diag-web";
    let (original, replacement, log) = seed(&env, group).await;
    let log_group = format!("/spotswap/diag/{}", env.region());
    to_log_group(&env, &log_group, &log).await;
    let file = std::env::temp_dir().join(format!("diag-{replacement}.log"));
    std::fs::write(&file, log.join("\n")).expect("log file");

    // WHEN explain is asked about the replacement, from the log group and from the file
    let (code, out, err) = cli(
        &env,
        &[
            "explain",
            &replacement,
            "--log-group",
            &log_group,
            "--output",
            "json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let e: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    // THEN it names the group and the instance it replaced
    assert_eq!(e["group"], group);
    assert_eq!(e["related"][0], original.as_str(), "{e:#}");
    // and the timeline is the launch, the attach, then the warning's decisions: three
    // invocations, in the order they ran
    let reasons = reasons_of(&e, "decision");
    assert_eq!(reasons[..2], ["OnDemandAboveFloor", "ReplacementReady"], "{e:#}");
    assert!(
        reasons[2..].contains(&"ReplacementInterrupted".to_string()),
        "{e:#}"
    );
    let cycles: Vec<&str> = e["cycles"]
        .as_array()
        .expect("cycles")
        .iter()
        .filter_map(|c| c.as_str())
        .collect();
    assert_eq!(cycles.len(), 3, "{e:#}");
    assert!(
        cycles[0].starts_with("c-") && cycles[1].starts_with("c-"),
        "{cycles:?}"
    );
    let by_cycle: Vec<&str> = e["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .filter_map(|t| t["cycle_id"].as_str())
        .collect();
    assert!(by_cycle[2..].iter().all(|c| *c == cycles[2]), "{by_cycle:?}");
    let times: Vec<i64> = e["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .filter_map(|t| t["at_ms"].as_i64())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    // the same story from the file
    let (code, out, err) = cli(
        &env,
        &[
            "explain",
            &replacement,
            "--log-file",
            file.to_str().expect("utf-8"),
            "--output",
            "json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let f: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(reasons_of(&f, "decision"), reasons);
    assert_eq!(f["cycles"], e["cycles"]);
    // and the markdown is a ticket: summary, timeline, evidence, commands
    let (code, md, err) = cli(
        &env,
        &[
            "explain",
            &replacement,
            "--log-group",
            &log_group,
            "--output",
            "markdown",
        ],
    );
    assert_eq!(code, 0, "{err}");
    for part in [
        "### Timeline",
        "### Evidence",
        "### Reproduce",
        "OnDemandAboveFloor",
    ] {
        assert!(md.contains(part), "{part}: {md}");
    }
    assert!(md.contains(&format!("spotswap explain {replacement} --log-group {log_group}")));

    // WHEN explain is asked about the group
    let (code, out, err) = cli(
        &env,
        &["explain", group, "--log-group", &log_group, "--output", "json"],
    );
    assert_eq!(code, 0, "{err}");
    let g: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    // THEN its floor and management are shown, with every decision about it
    assert_eq!(g["state"]["managed"], "managed", "{g:#}");
    assert_eq!(g["state"]["floor (on-demand)"], "0", "{g:#}");
    let group_reasons = reasons_of(&g, "decision");
    for r in &reasons {
        assert!(group_reasons.contains(r), "{r}: {g:#}");
    }

    // WHEN the report is asked for the same window
    let (code, out, err) = cli(&env, &["report", "--log-group", &log_group, "--output", "json"]);
    assert_eq!(code, 0, "{err}");
    let r: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    // THEN its totals are the decisions' own: the interruptions recorded, no fallback
    let ours: Vec<serde_json::Value> = decisions(&log.join("\n"))
        .into_iter()
        .filter(|l| l["group"] == group)
        .collect();
    let recorded = ours
        .iter()
        .filter(|l| l["action"] == "record-interruption" && l["outcome"] == "done")
        .count();
    assert!(recorded >= 1, "{ours:?}");
    assert_eq!(r["total"]["interruptions"], recorded, "{r:#}");
    assert_eq!(r["total"]["fallbacks"], 0, "{r:#}");
    let web = r["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .find(|g| g["group"] == group)
        .unwrap_or_else(|| panic!("{r:#}"));
    assert_eq!(web["interruptions"], recorded);
    let top: u64 = web["top_reasons"]
        .as_array()
        .expect("top")
        .iter()
        .map(|p| p[1].as_u64().unwrap_or(0))
        .sum();
    assert!(top as usize <= ours.len() && top > 0, "{web:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_and_report_find_the_functions_log_groups_from_the_stack() {
    // GIVEN a swap, and a spotswap stack whose rebalancer log group holds its decision lines
    // (the template's log groups, /aws/lambda/<stack>/<function>)
    let env = Env::new().await;
    let group = "diag-stack";
    let (_original, replacement, log) = seed(&env, group).await;
    let stack = format!("spotswap-{}", env.region());
    let body = serde_json::json!({
        "Resources": {
            "RebalancerLogGroup": {"Type": "AWS::Logs::LogGroup",
                "Properties": {"LogGroupName": format!("/aws/lambda/{stack}/rebalancer")}},
            "OrphanReaperLogGroup": {"Type": "AWS::Logs::LogGroup",
                "Properties": {"LogGroupName": format!("/aws/lambda/{stack}/orphan-reaper")}}
        }
    });
    aws_sdk_cloudformation::Client::new(&env.conf)
        .create_stack()
        .stack_name(&stack)
        .template_body(body.to_string())
        .send()
        .await
        .expect("create stack");
    to_existing_log_group(&env, &format!("/aws/lambda/{stack}/rebalancer"), &log).await;

    // WHEN explain is asked about the replacement with only --stack
    let (code, out, err) = cli(
        &env,
        &["explain", &replacement, "--stack", &stack, "--output", "json"],
    );
    // THEN the stack's log groups were read: the swap's decisions are in the timeline
    assert_eq!(code, 0, "{err}");
    let e: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    let reasons = reasons_of(&e, "decision");
    assert_eq!(reasons[..2], ["OnDemandAboveFloor", "ReplacementReady"], "{e:#}");
    // and the ticket's commands reproduce it the same way
    let (code, md, err) = cli(
        &env,
        &["explain", &replacement, "--stack", &stack, "--output", "markdown"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        md.contains(&format!("spotswap explain {replacement} --stack {stack}")),
        "{md}"
    );
    // and report counts the same decisions from the stack
    let (code, out, err) = cli(&env, &["report", "--stack", &stack, "--output", "json"]);
    assert_eq!(code, 0, "{err}");
    let r: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    let counted: u64 = r["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .find(|g| g["group"] == group)
        .unwrap_or_else(|| panic!("{r:#}"))["top_reasons"]
        .as_array()
        .expect("top")
        .iter()
        .map(|p| p[1].as_u64().unwrap_or(0))
        .sum();
    assert!(counted > 0, "{r:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_bad_input_is_one_line_exit_2_and_no_mutation() {
    // GIVEN a region with one managed group, seen through the counting proxy
    let env = Env::new().await;
    env.group(&GroupSpec::managed("diag-bad", 1)).await;
    let proxy = Proxy::start(&env.endpoint).await.expect("proxy");
    let url = proxy.url();
    let cases: [(&[&str], &str); 7] = [
        (&["report", "--since", "yesterday"], "--since \"yesterday\""),
        (
            &["explain", "i-0000000000000beef"],
            "instance i-0000000000000beef",
        ),
        (&["explain", "no-such-group"], "group no-such-group"),
        (&["explain", "diag-bad", "--since", "soon"], "--since \"soon\""),
        (
            &["explain", "diag-bad", "--log-file", "/nonexistent/x.log"],
            "--log-file /nonexistent/x.log",
        ),
        (
            &["explain", "diag-bad", "--stack", "no-such-stack"],
            "stack no-such-stack",
        ),
        (&["report", "--stack", "no-such-stack"], "stack no-such-stack"),
    ];
    for (args, needle) in cases {
        // WHEN explain is given bad input
        let (code, out, err) = cli_at(&url, env.region(), args);
        // THEN one clear line naming it, exit 2, nothing on stdout
        let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("spotswap:")).collect();
        assert_eq!(code, 2, "{args:?}: {err}");
        assert_eq!(lines.len(), 1, "{args:?}: {err}");
        assert!(lines[0].contains(needle), "{args:?}: {err}");
        assert!(out.is_empty(), "{out}");
    }
    // and not one mutating call was made
    assert_eq!(proxy.mutating_calls(), 0, "{:?}", proxy.calls());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_stdout_ends_the_cli_quietly() {
    use std::os::unix::process::ExitStatusExt;
    // GIVEN a group whose plan prints a table, and a stdout already closed (`| head` done)
    let env = Env::new().await;
    env.group(&GroupSpec::managed("diag-pipe", 2)).await;
    for args in [&["plan"][..], &["explain", "diag-pipe"][..], &["report"][..]] {
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        // WHEN the CLI writes its result
        let out = Command::new(workspace_bin("spotswap"))
            .args(args)
            .env("AWS_ENDPOINT_URL", &env.endpoint)
            .env("AWS_REGION", env.region())
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("SPOTSWAP_PRICE_FILE", sample_price_file())
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .expect("run spotswap");
        // THEN it ends as `cat` would, by SIGPIPE, with nothing on stderr
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.signal(), Some(13), "{args:?}: {:?} {err}", out.status);
        assert!(!err.contains("panicked") && !err.contains("Broken pipe"), "{err}");
    }
}

#[test]
fn every_subcommand_has_help_with_an_example() {
    for sub in [
        "rebalance",
        "plan",
        "reap",
        "handle-event",
        "pause",
        "resume",
        "explain",
        "report",
        "simulate",
    ] {
        let out = Command::new(workspace_bin("spotswap"))
            .args([sub, "--help"])
            .output()
            .expect("run spotswap");
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{sub}");
        assert!(
            help.contains("Example:") && help.contains(&format!("spotswap {sub}")),
            "{sub}: {help}"
        );
        assert!(
            help.contains("--profile") && help.contains("--region"),
            "{sub}: {help}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_takes_the_savings_from_the_metric_where_cloudwatch_has_it() {
    // GIVEN two managed groups behind the proxy (which serves CloudWatch's GetMetricData, as
    // moto cannot), and an hour of 5-minute EstimatedHourlySavings at 0.50 $/h for one of them
    let proxy = Proxy::from_env().await.expect("proxy");
    let env = Env::at(&proxy.url()).await;
    env.group(&GroupSpec::managed("diag-metric", 1)).await;
    env.group(&GroupSpec::managed("diag-nometric", 1)).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    for k in 0..12 {
        proxy.put_metric(
            env.region(),
            "Spotswap",
            "EstimatedHourlySavings",
            &[("AutoScalingGroupName", "diag-metric")],
            now - 3600 + k * 300,
            0.50,
        );
    }

    // WHEN the report of the last day is asked for
    let (code, out, err) = cli_at(
        &proxy.url(),
        env.region(),
        &["report", "--since", "24h", "--output", "json"],
    );
    assert_eq!(code, 0, "{err}");
    let r: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    let group = |name: &str| {
        r["groups"]
            .as_array()
            .and_then(|gs| gs.iter().find(|g| g["group"] == name))
            .cloned()
            .unwrap_or_else(|| panic!("{name} missing: {r:#}"))
    };
    // THEN the group with the metric saved its hour at 0.50 $/h, by the metric
    let with = group("diag-metric");
    assert_eq!(with["savings_source"], "metric", "{with:#}");
    let saved = with["savings_in_window"].as_f64().expect("number");
    assert!((saved - 0.50).abs() < 1e-6, "{with:#}");
    // AND the other is estimated from launch times (none of ours runs: 0), and the total
    // says it is mixed
    let without = group("diag-nometric");
    assert_eq!(without["savings_source"], "launch-times", "{without:#}");
    assert_eq!(without["savings_in_window"].as_f64(), Some(0.0));
    assert_eq!(r["total"]["savings_source"], "mixed", "{r:#}");
    // AND one GetMetricData asked for both groups
    assert_eq!(proxy.call_count("monitoring:GetMetricData"), 1);
}
