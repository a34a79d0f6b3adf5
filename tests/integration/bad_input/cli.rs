//! `spotswap handle-event` on the files of `tests/bad-input/`, on bytes that are not UTF-8 and
//! on standard input: invalid events exit 2 with one line on stderr, ignored ones exit 0.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use spotswap_tests::fleet::{sample_price_file, Env};
use spotswap_tests::lambda::{workspace_bin, workspace_root};
use spotswap_tests::proxy::Proxy;

use super::{one_line, Failures, FIVE_MB, REBALANCE, SPOT_WARNING};

#[derive(Debug, Clone)]
enum CliInput {
    /// A path relative to the workspace root.
    File(&'static str),
    /// Bytes written to a scratch file first.
    Bytes(Vec<u8>),
    /// Text on standard input (`handle-event -`).
    Stdin(String),
}

#[derive(Debug, Clone)]
enum CliExpect {
    /// Exit 2, one line on stderr holding each needle, no AWS call at all.
    Invalid(&'static [&'static str]),
    /// Exit 0, one decision with this reason, reads only.
    Ignored(&'static str),
}

struct CliCase {
    name: &'static str,
    input: CliInput,
    expect: CliExpect,
}

fn cli_cases() -> Vec<CliCase> {
    let case = |name, input, expect| CliCase { name, input, expect };
    vec![
        case(
            "truncated file",
            CliInput::File("tests/bad-input/truncated.json"),
            CliExpect::Invalid(&["invalid event", "EOF while parsing"]),
        ),
        case(
            "instance-action explode",
            CliInput::File("tests/bad-input/instance-action-explode.json"),
            CliExpect::Invalid(&["invalid event", "explode", SPOT_WARNING]),
        ),
        case(
            "instance-id is a number",
            CliInput::File("tests/bad-input/instance-id-number.json"),
            CliExpect::Invalid(&["invalid event", "invalid type: integer"]),
        ),
        case(
            "empty file",
            CliInput::File("tests/bad-input/empty.json"),
            CliExpect::Invalid(&["invalid event", "EOF while parsing"]),
        ),
        case(
            "an SQS event",
            CliInput::File("tests/bad-input/sqs-event.json"),
            CliExpect::Invalid(&["not an EventBridge event", "missing field"]),
        ),
        case(
            "rebalance recommendation without instance-id",
            CliInput::File("tests/bad-input/rebalance-without-instance-id.json"),
            CliExpect::Invalid(&["invalid event", "instance-id", REBALANCE]),
        ),
        case(
            "a file that is not UTF-8",
            CliInput::Bytes(b"{\"detail-type\": \"\xff\xfe\"}".to_vec()),
            CliExpect::Invalid(&["cannot read"]),
        ),
        case(
            "a directory",
            CliInput::File("tests/bad-input"),
            CliExpect::Invalid(&["cannot read", "tests/bad-input"]),
        ),
        case(
            "5 MB that is not JSON on stdin",
            CliInput::Stdin("x".repeat(FIVE_MB)),
            CliExpect::Invalid(&["invalid event", "expected value"]),
        ),
        case(
            "a truncated event on stdin",
            CliInput::Stdin(r#"{"detail-type":"EC2 Spot Instance Interr"#.into()),
            CliExpect::Invalid(&["invalid event", "EOF while parsing"]),
        ),
        case(
            "CloudTrail API call",
            CliInput::File("tests/bad-input/cloudtrail-api-call.json"),
            CliExpect::Ignored("IgnoredDetailType"),
        ),
        case(
            "spot warning for an instance that does not exist",
            CliInput::File("tests/bad-input/spot-warning-unknown-instance.json"),
            CliExpect::Ignored("UnknownInstance"),
        ),
    ]
}

/// A scratch file under the target directory.
fn scratch(name: &str, content: &[u8]) -> PathBuf {
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
        .join("tmp")
        .join("bad-input");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path
}

fn run_cli(env: &Env, endpoint: &str, file: &str, stdin: Option<&str>) -> Output {
    let mut child = Command::new(workspace_bin("spotswap"))
        .args(["handle-event", file])
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_REGION", env.region())
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("SPOTSWAP_PRICE_FILE", sample_price_file())
        .env("SPOTSWAP_EVENT_BUS", "")
        .env_remove("RUST_LOG")
        .current_dir(workspace_root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run spotswap");
    let input = child.stdin.take().unwrap();
    let text = stdin.map(str::to_string);
    // write from a thread: the child may answer before it has read everything
    let writer = std::thread::spawn(move || {
        let mut input = input;
        if let Some(t) = text {
            use std::io::Write;
            let _ = input.write_all(t.as_bytes());
        }
    });
    let out = child.wait_with_output().expect("spotswap ends");
    writer.join().unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_exits_2_with_one_line_for_invalid_events_and_0_for_ignored_ones() {
    // GIVEN a region behind the fault proxy and the `spotswap` binary pointed at it
    let proxy = Proxy::from_env().await.expect("proxy");
    let env = Env::at(&proxy.url()).await;
    let cases = cli_cases();
    let mut failures = Failures::default();
    for (i, c) in cases.iter().enumerate() {
        let name = c.name;
        // WHEN `spotswap handle-event` is given the input
        let (file, stdin) = match &c.input {
            CliInput::File(path) => (path.to_string(), None),
            CliInput::Bytes(bytes) => (
                scratch(&format!("case-{i}.json"), bytes)
                    .to_string_lossy()
                    .into_owned(),
                None,
            ),
            CliInput::Stdin(text) => ("-".to_string(), Some(text.as_str())),
        };
        proxy.reset_calls();
        let out = run_cli(&env, &proxy.url(), &file, stdin);
        let calls = proxy.calls();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();

        // THEN no mutating call reached AWS
        failures.check(name, proxy.mutating_calls() == 0, || {
            format!("mutating calls: {calls:?}")
        });
        match &c.expect {
            // AND an invalid event exits 2 with one line on stderr, before any call
            CliExpect::Invalid(needles) => {
                failures.check(name, out.status.code() == Some(2), || {
                    format!("exit {:?}: {}", out.status.code(), one_line(&stderr))
                });
                let lines: Vec<&str> = stderr.lines().collect();
                failures.check(
                    name,
                    lines.len() == 1 && lines[0].starts_with("spotswap: ") && lines[0].len() < 1000,
                    || format!("stderr is not one short line: {}", one_line(&stderr)),
                );
                for n in *needles {
                    failures.check(name, stderr.contains(n), || {
                        format!("stderr lacks {n:?}: {}", one_line(&stderr))
                    });
                }
                failures.check(name, calls.is_empty(), || format!("calls: {calls:?}"));
            }
            // AND an ignored event exits 0 and prints the decision with its reason
            CliExpect::Ignored(reason) => {
                failures.check(name, out.status.success(), || {
                    format!("exit {:?}: {}", out.status.code(), one_line(&stderr))
                });
                let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
                let reasons: Vec<&str> = printed["decisions"]
                    .as_array()
                    .map(|d| d.iter().filter_map(|d| d["reason"].as_str()).collect())
                    .unwrap_or_default();
                failures.check(name, reasons == vec![*reason], || {
                    format!("decisions {reasons:?}, expected {reason}")
                });
            }
        }
    }
    failures.assert_none(cases.len());
}
