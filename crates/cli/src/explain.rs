//! `spotswap explain <instance-id | group-name>`: the story of an instance or a group, from
//! our tags, the group's scaling activities, and our decision lines (a local file of JSON log
//! lines, or CloudWatch Logs). Reads only. Exit 0 when explained, 2 for bad input (an unknown
//! instance, a group that does not exist, an unparsable `--since`, an unreadable file), 1 when
//! AWS could not be read.

use std::process::ExitCode;

use spotswap_aws::explain::{explain, ExplainRequest};
use spotswap_aws::{AdapterError, Aws, Config};
use spotswap_core::explain::render;

use crate::{duration, one_line, Output};

/// `spotswap explain` arguments.
#[derive(clap::Args, Debug)]
#[command(after_help = "Example:\n  spotswap explain i-0abc123 --stack spotswap --output markdown")]
pub(crate) struct Args {
    /// An instance id (`i-…`) or an Auto Scaling group name.
    subject: String,
    /// A file of JSON log lines (the CLI's own stderr with RUST_LOG=info); repeatable.
    #[arg(long, value_name = "PATH")]
    log_file: Vec<String>,
    /// A CloudWatch Logs log group to read with FilterLogEvents (each function's
    /// `/aws/lambda/<name>`); repeatable.
    #[arg(long, value_name = "NAME")]
    log_group: Vec<String>,
    /// spotswap's CloudFormation stack (`sam deploy --stack-name`): read its functions' log
    /// groups, found with ListStackResources; repeatable (one per region's stack).
    #[arg(long, value_name = "STACK")]
    stack: Vec<String>,
    /// How far back to read the log groups: `24h`, `90m`, `7 days`.
    #[arg(long, default_value = "24h", value_name = "DURATION")]
    since: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Table)]
    output: Output,
}

/// The parts that need no AWS: `--since` and the files. Bad input is one line, before any call.
pub(crate) fn request(args: &Args) -> Result<ExplainRequest, String> {
    let now = spotswap_aws::workflow::now();
    let since = duration::ago(&args.since, "--since", now)?;
    let log_files = read_log_files(&args.log_file)?;
    if args.subject.trim().is_empty() {
        return Err("explain: expected an instance id or a group name".into());
    }
    Ok(ExplainRequest {
        subject: args.subject.clone(),
        log_groups: args.log_group.clone(),
        stacks: args.stack.clone(),
        log_files,
        since,
        now,
    })
}

/// `--log-file` paths read: `(path, content)`; an unreadable one is bad input naming it.
pub(crate) fn read_log_files(paths: &[String]) -> Result<Vec<(String, String)>, String> {
    paths
        .iter()
        .map(|path| {
            std::fs::read_to_string(path)
                .map(|content| (path.clone(), content))
                .map_err(|e| format!("--log-file {path}: {e}"))
        })
        .collect()
}

/// Print `value` as `output` asks; exit 1 only when JSON cannot be written.
pub(crate) fn print_as<T: serde::Serialize>(
    output: Output,
    value: &T,
    table: impl Fn(&T) -> String,
    markdown: impl Fn(&T) -> String,
) -> ExitCode {
    let text = match output {
        Output::Json => match serde_json::to_string_pretty(value) {
            Ok(s) => s + "\n",
            Err(e) => {
                eprintln!("spotswap: cannot write JSON: {e}");
                return ExitCode::from(1);
            }
        },
        Output::Table => table(value),
        Output::Markdown => markdown(value),
    };
    print!("{text}");
    ExitCode::SUCCESS
}

/// Run `spotswap explain`.
pub(crate) async fn main(aws: &Aws, config: &Config, args: &Args, req: ExplainRequest) -> ExitCode {
    match explain(aws, config, &req).await {
        Ok(e) => print_as(args.output, &e, render::table, render::markdown),
        Err(AdapterError::Invalid(e)) => {
            eprintln!("spotswap: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!(
                "spotswap: explain could not read AWS: {}",
                one_line(&e.to_string())
            );
            ExitCode::from(1)
        }
    }
}
