//! `spotswap report [--since 24h]`: per managed group and in total, on-demand and spot now,
//! the floor, savings per hour now and over the window, interruptions, fallbacks, shelters,
//! the interruption rate against the 10%/hour alarm, the top reasons. Reads only. Exit 0 when
//! reported, 2 for bad input, 1 when AWS could not be read.

use std::process::ExitCode;

use spotswap_aws::explain::{report, ReportRequest};
use spotswap_aws::{Aws, Config};
use spotswap_core::explain::report::{markdown, table};

use crate::{duration, one_line, Output};

/// `spotswap report` arguments.
#[derive(clap::Args, Debug)]
#[command(after_help = "Example:\n  spotswap report --since 7d --stack spotswap --output markdown")]
pub(crate) struct Args {
    /// The window: `24h`, `90m`, `7 days`.
    #[arg(long, default_value = "24h", value_name = "DURATION")]
    since: String,
    /// A file of JSON log lines (the CLI's own stderr with RUST_LOG=info); repeatable.
    #[arg(long, value_name = "PATH")]
    log_file: Vec<String>,
    /// A CloudWatch Logs log group to read with FilterLogEvents; repeatable.
    #[arg(long, value_name = "NAME")]
    log_group: Vec<String>,
    /// spotswap's CloudFormation stack: read its functions' log groups (ListStackResources);
    /// repeatable.
    #[arg(long, value_name = "STACK")]
    stack: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Markdown)]
    output: Output,
}

/// The parts that need no AWS. Bad input is one line, before any call.
pub(crate) fn request(args: &Args) -> Result<ReportRequest, String> {
    let now = spotswap_aws::workflow::now();
    let since = duration::ago(&args.since, "--since", now)?;
    let log_files = crate::explain::read_log_files(&args.log_file)?;
    Ok(ReportRequest {
        log_groups: args.log_group.clone(),
        stacks: args.stack.clone(),
        log_files,
        since,
        now,
    })
}

/// Run `spotswap report`.
pub(crate) async fn main(aws: &Aws, config: &Config, args: &Args, req: ReportRequest) -> ExitCode {
    match report(aws, config, &req).await {
        Ok(r) => crate::explain::print_as(args.output, &r, table, markdown),
        Err(spotswap_aws::AdapterError::Invalid(e)) => {
            eprintln!("spotswap: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!(
                "spotswap: report could not read AWS: {}",
                one_line(&e.to_string())
            );
            ExitCode::from(1)
        }
    }
}
