//! `spotswap simulate`: the thin wrapper over `spotswap-sim`. No AWS: the scenario is the
//! region. Exit 0 when it ran, 2 for bad input (one line naming the field), 1 when the plot
//! or the output cannot be written.

use std::path::PathBuf;
use std::process::ExitCode;

use spotswap_sim::{run, Format, PolicyName, Scenario};

/// `spotswap simulate` arguments.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Example:\n  spotswap simulate --scenario sim/scenarios/calm-week.yaml --output markdown"
)]
pub(crate) struct Args {
    /// The scenario file (JSON or YAML).
    #[arg(long, value_name = "FILE")]
    scenario: PathBuf,
    /// Comma-separated policies (default: all of spotswap, aws-native, autospotting,
    /// single-type, on-demand).
    #[arg(long, value_name = "LIST")]
    policies: Option<String>,
    /// table, json or markdown.
    #[arg(long, default_value = "table")]
    output: String,
    /// Write an SVG of capacity and cost over time here.
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<PathBuf>,
}

/// Run the simulation and print the results.
pub(crate) fn main(args: &Args) -> ExitCode {
    let checked = (|| {
        let format: Format = args.output.parse()?;
        let policies = PolicyName::parse_list(args.policies.as_deref())?;
        let scenario = Scenario::load(&args.scenario)?;
        Ok::<_, spotswap_sim::ScenarioError>((format, policies, scenario))
    })();
    let (format, policies, scenario) = match checked {
        Ok(c) => c,
        Err(e) => {
            eprintln!("spotswap: {e}");
            return ExitCode::from(2);
        }
    };
    let report = run(&scenario, &policies);
    if let Some(path) = &args.plot {
        let written = spotswap_sim::plot::svg(&report)
            .and_then(|svg| std::fs::write(path, svg).map_err(|e| e.to_string()));
        if let Err(e) = written {
            eprintln!("spotswap: plot: cannot write {}: {e}", path.display());
            return ExitCode::from(1);
        }
    }
    print!("{}", report.render(format));
    ExitCode::SUCCESS
}
