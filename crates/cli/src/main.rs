//! `spotswap`: the operator CLI. Runs the same workflows as the Lambda functions, from a
//! laptop, so decisions can be seen and explained before anything changes.
//!
//! Region, endpoint and credentials come from the standard AWS environment (`AWS_REGION`,
//! `AWS_ENDPOINT_URL`, `AWS_PROFILE`, …); `--region` and `--profile` override them, as the AWS
//! CLI's do. Every subcommand that prints a result takes `--output table|json|markdown`. No
//! colour is ever written, so `--no-color`/`NO_COLOR` have nothing to turn off.
//!
//! Exit codes, the same for every subcommand (README, "Exit codes"):
//!
//! | code | meaning |
//! | --- | --- |
//! | 0 | the command ran (groups skipped for bad tags and ignored events included) |
//! | 1 | it could not run: AWS unreachable or refusing, a bad environment variable |
//! | 2 | bad input: an argument, a file, an event, an unknown instance or group |
//! | 141 | stdout was closed early (`spotswap plan \| head`): killed quietly by SIGPIPE |

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand, ValueEnum};
use spotswap_aws::workflow::RESERVE;
use spotswap_aws::{
    handle_event, reap, rebalance, AdapterError, Aws, Config, CycleOptions, CycleReport, EventOptions,
};

mod duration;
mod explain;
mod migrate;
mod report;
mod simulate;
mod table;

#[derive(Parser, Debug)]
#[command(
    name = "spotswap",
    version,
    about = "Run EC2 Auto Scaling groups on spot without losing capacity"
)]
struct Cli {
    /// AWS region (default: the standard AWS environment).
    #[arg(long, global = true)]
    region: Option<String>,
    /// A named profile of the shared AWS config and credentials files (default: `AWS_PROFILE`).
    #[arg(long, global = true)]
    profile: Option<String>,
    #[command(subcommand)]
    command: Command,
}

/// `--output`: every subcommand that prints a result takes it.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Output {
    /// Columns for a terminal.
    Table,
    /// JSON on stdout.
    Json,
    /// Markdown, for a ticket or a pull request.
    Markdown,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run one rebalancer cycle (the same workflow the Lambda runs).
    #[command(after_help = "Example:\n  spotswap rebalance --dry-run --output json")]
    Rebalance {
        /// Decide and print, change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Behave as a Lambda invocation with this many seconds to run: start no new swap when
        /// less than a reserve (15 s, or a twentieth of the limit when shorter) is left.
        #[arg(long, value_name = "SECS")]
        time_limit: Option<f64>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
    /// What the next cycle would do: `rebalance --dry-run`, with, for each swap it would
    /// start, every candidate type turned down and why (`rejections` in JSON). Makes zero
    /// mutating calls.
    #[command(after_help = "Example:\n  spotswap plan --region eu-west-1 | head")]
    Plan {
        /// Output format.
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
    /// One orphan-reaper pass (the same workflow the Lambda runs): terminate our instances
    /// outside every group past SPOTSWAP_ORPHAN_MINUTES and detached ones still alive, restore
    /// MaxSize, clear expired records.
    #[command(after_help = "Example:\n  spotswap reap --dry-run")]
    Reap {
        /// Decide and print, change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
    /// Handle one EventBridge event (a spot interruption warning or a rebalance recommendation)
    /// with the interruption handler's code. Prints the report as JSON. Exit 0 when the event
    /// was handled or deliberately ignored, 2 when it is not a valid event.
    #[command(
        after_help = "Example:\n  spotswap handle-event events/interruption-spot-warning.json --dry-run --output table"
    )]
    HandleEvent {
        /// The event's JSON file, or `-` for standard input.
        file: String,
        /// Decide and print, change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Output::Json)]
        output: Output,
    },
    /// Pause new swaps in one group: write `spotswap:paused-until=<now + DURATION>` on it, and
    /// nothing else. Swaps in flight finish; interruptions are still handled.
    #[command(after_help = "Example:\n  spotswap pause web --for 2h")]
    Pause {
        /// The Auto Scaling group.
        group: String,
        /// How long: `2h`, `90m`, `1h30m`, `3 days` (at most 366 days).
        #[arg(long = "for", value_name = "DURATION")]
        duration: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
    /// End a group's pause: delete its `spotswap:paused-until` tag, and nothing else.
    #[command(after_help = "Example:\n  spotswap resume web")]
    Resume {
        /// The Auto Scaling group.
        group: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
    /// The story of an instance or a group: its decisions, its group's scaling activities,
    /// our tags, where it stands now. Reads only.
    Explain(explain::Args),
    /// Savings, interruptions, fallbacks and shelters per managed group and in total, over a
    /// window. Reads only.
    Report(report::Args),
    /// Simulate one region over a scenario file with the real core and compare policies
    /// (no AWS). Exit 2 for a bad scenario, policy or format.
    Simulate(simulate::Args),
    /// Switch from AutoSpotting: per group its configuration, the spotswap tags that express
    /// it, the floor under each tool and every difference; AutoSpotting's orphans with age,
    /// type and on-demand cost. `--apply` writes the spotswap tags (CreateOrUpdateTags only);
    /// without it, zero mutating calls.
    Migrate(migrate::Args),
}

// One thread: the work is waiting on AWS, a 128 MB Lambda has a fraction of a vCPU, and one
// malloc arena instead of one per worker keeps peak RSS down (72 -> 54 MiB at 20,000 instances).
#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    spotswap_aws::tune_allocator();
    quiet_on_closed_stdout();
    let cli = Cli::parse();
    if let Command::Simulate(args) = &cli.command {
        return simulate::main(args);
    }
    init_logging();
    // Bad input is one line and exit 2, before any AWS call.
    let checked = match &cli.command {
        Command::Explain(args) => explain::request(args).map(|r| (Some(r), None)),
        Command::Report(args) => report::request(args).map(|r| (None, Some(r))),
        _ => Ok((None, None)),
    };
    let (explain_req, report_req) = match checked {
        Ok(r) => r,
        Err(e) => {
            eprintln!("spotswap: {e}");
            return ExitCode::from(2);
        }
    };
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("spotswap: {e}");
            return ExitCode::from(1);
        }
    };
    let aws = Aws::from_env_profile(cli.region.clone(), cli.profile.clone())
        .await
        .with_api_rates(config.api_rates);
    match cli.command {
        Command::Rebalance {
            dry_run,
            time_limit,
            output,
        } => {
            let opts = match time_limit.map(limit_options).transpose() {
                Ok(o) => o.unwrap_or_default(),
                Err(e) => {
                    eprintln!("spotswap: {e}");
                    return ExitCode::from(2);
                }
            };
            run_cycle(&aws, &config, CycleOptions { dry_run, ..opts }, output).await
        }
        Command::Plan { output } => {
            let opts = CycleOptions {
                dry_run: true,
                explain: true,
                ..CycleOptions::default()
            };
            run_cycle(&aws, &config, opts, output).await
        }
        Command::Reap { dry_run, output } => run_reap(&aws, &config, dry_run, output).await,
        Command::HandleEvent {
            file,
            dry_run,
            output,
        } => run_handle_event(&aws, &config, &file, dry_run, output).await,
        Command::Pause {
            group,
            duration,
            output,
        } => {
            let until = match pause_until(&duration, std::time::SystemTime::now()) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("spotswap: {e}");
                    return ExitCode::from(2);
                }
            };
            print_pause(spotswap_aws::pause::pause(&aws, &group, until).await, output)
        }
        Command::Resume { group, output } => {
            print_pause(spotswap_aws::pause::resume(&aws, &group).await, output)
        }
        Command::Migrate(args) => migrate::main(&aws, &config, &args).await,
        Command::Explain(args) => match explain_req {
            Some(req) => explain::main(&aws, &config, &args, req).await,
            None => ExitCode::from(1),
        },
        Command::Report(args) => match report_req {
            Some(req) => report::main(&aws, &config, &args, req).await,
            None => ExitCode::from(1),
        },
        Command::Simulate(_) => unreachable!("handled before the AWS set-up"),
    }
}

/// The deadline and reserve of `--time-limit SECS`.
fn limit_options(secs: f64) -> Result<CycleOptions, String> {
    if !(secs.is_finite() && secs > 0.0 && secs <= 86_400.0) {
        return Err(format!(
            "--time-limit {secs}: expected seconds between 0 and 86400"
        ));
    }
    let limit = Duration::from_secs_f64(secs);
    Ok(CycleOptions {
        deadline: Some(Instant::now() + limit),
        reserve: Some(RESERVE.min(limit / 20)),
        ..CycleOptions::default()
    })
}

async fn run_cycle(aws: &Aws, config: &Config, opts: CycleOptions, output: Output) -> ExitCode {
    match rebalance(aws, config, opts).await {
        Ok(report) => {
            print_report(&report, output);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("spotswap: the cycle could not run: {e}");
            ExitCode::from(1)
        }
    }
}

async fn run_reap(aws: &Aws, config: &Config, dry_run: bool, output: Output) -> ExitCode {
    let opts = CycleOptions {
        dry_run,
        ..CycleOptions::default()
    };
    match reap(aws, config, opts).await {
        Ok(report) => {
            print_report(&report, output);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("spotswap: the reaper pass could not run: {e}");
            ExitCode::from(1)
        }
    }
}

async fn run_handle_event(aws: &Aws, config: &Config, file: &str, dry_run: bool, output: Output) -> ExitCode {
    let raw = if file == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s).map(|_| s)
    } else {
        std::fs::read_to_string(file)
    };
    let raw = match raw {
        Ok(r) => r,
        Err(e) => {
            eprintln!("spotswap: cannot read {file}: {e}");
            return ExitCode::from(2);
        }
    };
    let opts = EventOptions {
        dry_run,
        ..EventOptions::default()
    };
    match handle_event(aws, config, &raw, opts).await {
        Ok(report) => {
            match output {
                Output::Json => match serde_json::to_string_pretty(&report) {
                    Ok(s) => println!("{s}"),
                    Err(e) => eprintln!("spotswap: cannot write JSON: {e}"),
                },
                Output::Table => print!("{}", table::event(&report)),
                Output::Markdown => print!("```\n{}```\n", table::event(&report)),
            }
            ExitCode::SUCCESS
        }
        Err(AdapterError::Event(e)) => {
            eprintln!("spotswap: invalid event: {}", one_line(&e.to_string()));
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!(
                "spotswap: the event could not be handled: {}",
                one_line(&e.to_string())
            );
            ExitCode::from(1)
        }
    }
}

/// `now + DURATION` for `pause --for DURATION`: a positive duration of at most 366 days, in
/// jiff's friendly format (`2h`, `90m`, `1h30m`, `3 days`), never ending early.
fn pause_until(duration: &str, now: std::time::SystemTime) -> Result<spotswap_core::Timestamp, String> {
    let secs = duration::parse(duration, "--for")?;
    let now = now
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| format!("--for {duration:?}: the clock is before 1970"))?
        .as_secs() as i64;
    Ok(spotswap_core::Timestamp::from_unix(now + secs))
}

fn print_pause(result: Result<spotswap_aws::pause::PauseReport, AdapterError>, output: Output) -> ExitCode {
    match result {
        Ok(r) => {
            match output {
                Output::Json => match serde_json::to_string_pretty(&r) {
                    Ok(s) => println!("{s}"),
                    Err(e) => eprintln!("spotswap: cannot write JSON: {e}"),
                },
                Output::Table | Output::Markdown => {
                    let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "(none)".into());
                    println!(
                        "{}: spotswap:paused-until {} -> {}{}",
                        r.group,
                        show(&r.before),
                        show(&r.after),
                        if r.changed { "" } else { " (unchanged)" }
                    );
                }
            }
            ExitCode::SUCCESS
        }
        Err(AdapterError::Invalid(e)) => {
            eprintln!("spotswap: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("spotswap: {}", one_line(&e.to_string()));
            ExitCode::from(1)
        }
    }
}

pub(crate) fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn print_report(report: &CycleReport, output: Output) {
    match output {
        Output::Json => match serde_json::to_string_pretty(report) {
            Ok(s) => println!("{s}"),
            Err(e) => eprintln!("spotswap: cannot write JSON: {e}"),
        },
        Output::Table => print!("{}", table::render(report)),
        Output::Markdown => print!("```\n{}```\n", table::render(report)),
    }
}

/// A closed stdout (`spotswap plan | head`) ends the process quietly, as it does `cat`, instead
/// of `println!` panicking with "Broken pipe": Rust ignores SIGPIPE by default; this puts the
/// default back.
fn quiet_on_closed_stdout() {
    // SAFETY: setting a signal's disposition to the default, first thing, before any thread.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// JSON log lines on stderr (stdout carries the result). `RUST_LOG` sets the level; default
/// `warn` keeps a terminal readable, `info` shows every decision.
fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::pause_until;

    #[test]
    fn pause_durations_are_friendly_bounded_and_never_end_early() {
        let now = UNIX_EPOCH + Duration::from_secs(1_767_268_800); // 2026-01-01T12:00:00Z
        let until = |d: &str| pause_until(d, now).map(|t| t.to_rfc3339());
        assert_eq!(until("2h").unwrap(), "2026-01-01T14:00:00Z");
        assert_eq!(until("90m").unwrap(), "2026-01-01T13:30:00Z");
        assert_eq!(until("1h30m").unwrap(), "2026-01-01T13:30:00Z");
        assert_eq!(until("3 days").unwrap(), "2026-01-04T12:00:00Z");
        assert_eq!(until("1.5s").unwrap(), "2026-01-01T12:00:02Z");
        for bad in ["", "soon", "0s", "-2h", "400 days"] {
            let err = until(bad).unwrap_err();
            assert!(err.contains("--for") && err.contains(bad), "{bad:?}: {err}");
        }
    }
}
