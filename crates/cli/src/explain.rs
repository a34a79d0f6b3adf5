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
#[command(
    after_help = "Example:\n  spotswap explain i-0abc123 --log-group /aws/lambda/spotswap-rebalancer --output markdown"
)]
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
    let mut log_files = Vec::new();
    for path in &args.log_file {
        let content = std::fs::read_to_string(path).map_err(|e| format!("--log-file {path}: {e}"))?;
        log_files.push((path.clone(), content));
    }
    if args.subject.trim().is_empty() {
        return Err("explain: expected an instance id or a group name".into());
    }
    Ok(ExplainRequest {
        subject: args.subject.clone(),
        log_groups: args.log_group.clone(),
        log_files,
        since,
        now,
    })
}

/// Run `spotswap explain`.
pub(crate) async fn main(aws: &Aws, config: &Config, args: &Args, req: ExplainRequest) -> ExitCode {
    match explain(aws, config, &req).await {
        Ok(e) => {
            let text = match args.output {
                Output::Json => match serde_json::to_string_pretty(&e) {
                    Ok(s) => s + "\n",
                    Err(err) => {
                        eprintln!("spotswap: cannot write JSON: {err}");
                        return ExitCode::from(1);
                    }
                },
                Output::Table => render::table(&e),
                Output::Markdown => render::markdown(&e),
            };
            print!("{text}");
            ExitCode::SUCCESS
        }
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
