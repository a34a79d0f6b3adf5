//! `spotswap migrate --from autospotting`: the thin wrapper over [`spotswap_aws::migrate`],
//! and its table and markdown renderings. Exit 0 when it ran, 1 when AWS could not be read,
//! 2 for bad arguments.

use std::fmt::Write as _;
use std::process::ExitCode;

use clap::ValueEnum;
use spotswap_aws::migrate::{migrate, GroupMigration, MigrateOptions, MigrateReport, Orphan, OrphanAction};
use spotswap_aws::{Aws, Config};

/// The tool migrated from.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub(crate) enum From {
    /// AutoSpotting.
    Autospotting,
}

/// Output format.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub(crate) enum Format {
    /// Aligned text.
    Table,
    /// The report as JSON.
    Json,
    /// Markdown, for a change ticket.
    Markdown,
}

/// `spotswap migrate` arguments.
#[derive(clap::Args, Debug)]
#[command(after_help = "Example:\n  spotswap migrate --from autospotting --output markdown")]
pub(crate) struct Args {
    /// The tool whose tags to translate.
    #[arg(long, value_enum)]
    from: From,
    /// Write the spotswap tags (CreateOrUpdateTags, only tags the group lacks), and with
    /// --reap-autospotting-orphans terminate the orphans. Without it: zero mutating calls.
    #[arg(long)]
    apply: bool,
    /// Also terminate AutoSpotting's orphans older than --orphan-min-age (with --apply; a dry
    /// run without it).
    #[arg(long)]
    reap_autospotting_orphans: bool,
    /// Minutes an orphan must have run before it is reaped.
    #[arg(long, value_name = "MINUTES", default_value_t = spotswap_aws::migrate::ORPHAN_MIN_MINUTES)]
    orphan_min_age: u32,
    /// table, json or markdown.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    output: Format,
}

/// Run the migration and print the report.
pub(crate) async fn main(aws: &Aws, config: &Config, args: &Args) -> ExitCode {
    let From::Autospotting = args.from;
    let opts = MigrateOptions {
        apply: args.apply,
        reap_orphans: args.reap_autospotting_orphans,
        orphan_min_minutes: args.orphan_min_age,
        now: None,
    };
    match migrate(aws, config, &opts).await {
        Ok(report) => {
            let text = match args.output {
                Format::Json => match serde_json::to_string_pretty(&report) {
                    Ok(s) => s + "\n",
                    Err(e) => {
                        eprintln!("spotswap: cannot write JSON: {e}");
                        return ExitCode::from(1);
                    }
                },
                Format::Table => render(&report, false),
                Format::Markdown => render(&report, true),
            };
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("spotswap: migrate could not run: {e}");
            ExitCode::from(1)
        }
    }
}

fn kv(map: &std::collections::BTreeMap<String, String>) -> String {
    if map.is_empty() {
        return "-".into();
    }
    map.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn floor(f: Option<u32>) -> String {
    f.map_or_else(|| "-".into(), |n| n.to_string())
}

fn group_text(out: &mut String, g: &GroupMigration, applied: bool, md: bool) {
    let (h, item) = if md { ("### ", "- ") } else { ("", "  ") };
    let _ = writeln!(out, "{h}{}", g.group);
    if md {
        let _ = writeln!(out);
    }
    let _ = writeln!(
        out,
        "{item}AutoSpotting manages it: {}",
        if g.autospotting_manages { "yes" } else { "no" }
    );
    let _ = writeln!(out, "{item}AutoSpotting tags: {}", kv(&g.autospotting));
    if let Some(e) = &g.error {
        let _ = writeln!(out, "{item}ERROR: {e} (nothing is written for this group)");
        return;
    }
    let _ = writeln!(out, "{item}spotswap tags: {}", kv(&g.spotswap));
    let _ = writeln!(
        out,
        "{item}floor at desired {}: AutoSpotting {}, spotswap {}",
        g.desired,
        floor(g.floor_autospotting),
        floor(g.floor_spotswap)
    );
    for d in &g.differences {
        let _ = writeln!(out, "{item}difference: {d}");
    }
    for i in &g.ignored {
        let _ = writeln!(out, "{item}ignored: {}={} ({})", i.tag, i.value, i.why);
    }
    let verb = if applied { "written" } else { "to write (--apply)" };
    let _ = writeln!(out, "{item}{verb}: {}", kv(&g.changes));
    if md {
        let _ = writeln!(out);
    }
}

fn orphan_row(o: &Orphan) -> [String; 7] {
    [
        o.instance.clone(),
        o.instance_type.clone(),
        o.state.to_string(),
        o.launched_for.clone().unwrap_or_else(|| "-".into()),
        format!("{}", o.age_minutes),
        o.on_demand_hourly
            .map_or_else(|| "unknown".into(), |p| format!("{p:.4}")),
        match &o.action {
            OrphanAction::Listed => "listed".into(),
            OrphanAction::TooYoung => "too young".into(),
            OrphanAction::WouldTerminate => "would terminate".into(),
            OrphanAction::Terminated => "terminated".into(),
            OrphanAction::Changed => "kept (changed)".into(),
            OrphanAction::Failed(e) => format!("failed: {e}"),
        },
    ]
}

const ORPHAN_HEAD: [&str; 7] = [
    "instance",
    "type",
    "state",
    "launched-for-asg",
    "age (min)",
    "on-demand $/h",
    "action",
];

/// The report as aligned text (`md = false`) or markdown.
pub(crate) fn render(r: &MigrateReport, md: bool) -> String {
    let mut out = String::new();
    let title = if r.applied {
        "migrate --from autospotting (applied)"
    } else {
        "migrate --from autospotting (dry run: nothing changed)"
    };
    let _ = writeln!(out, "{}{title}", if md { "## " } else { "" });
    let _ = writeln!(out);
    if r.groups.is_empty() {
        let _ = writeln!(out, "No group is managed by AutoSpotting or carries its tags.");
        let _ = writeln!(out);
    }
    for g in &r.groups {
        group_text(&mut out, g, r.applied, md);
    }
    let _ = writeln!(
        out,
        "{}AutoSpotting orphans (launched-by-autospotting=true, in no group): {}",
        if md { "### " } else { "" },
        r.orphans.len()
    );
    if !r.orphans.is_empty() {
        let rows: Vec<[String; 7]> = r.orphans.iter().map(orphan_row).collect();
        if md {
            let _ = writeln!(out);
            let _ = writeln!(out, "| {} |", ORPHAN_HEAD.join(" | "));
            let _ = writeln!(out, "|{}", "---|".repeat(ORPHAN_HEAD.len()));
            for row in &rows {
                let _ = writeln!(out, "| {} |", row.join(" | "));
            }
        } else {
            let mut widths: Vec<usize> = ORPHAN_HEAD.iter().map(|h| h.len()).collect();
            for row in &rows {
                for (w, c) in widths.iter_mut().zip(row) {
                    *w = (*w).max(c.len());
                }
            }
            let line = |cells: Vec<&str>| {
                cells
                    .iter()
                    .zip(&widths)
                    .map(|(c, w)| format!("{c:<w$}"))
                    .collect::<Vec<_>>()
                    .join("  ")
                    .trim_end()
                    .to_string()
            };
            let _ = writeln!(out, "{}", line(ORPHAN_HEAD.to_vec()));
            for row in &rows {
                let _ = writeln!(out, "{}", line(row.iter().map(String::as_str).collect()));
            }
        }
        let total: f64 = r.orphans.iter().filter_map(|o| o.on_demand_hourly).sum();
        let _ = writeln!(out, "\nOn-demand cost of the orphans: {total:.4} USD/hour");
    }
    let _ = writeln!(out, "\nMutating AWS calls: {}", r.mutating_calls);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn report() -> MigrateReport {
        MigrateReport {
            applied: false,
            groups: vec![GroupMigration {
                group: "web".into(),
                autospotting_manages: true,
                desired: 4,
                autospotting: [("autospotting_min_on_demand_number".to_string(), "1".to_string())].into(),
                spotswap: [("spotswap:on-demand-base".to_string(), "1".to_string())].into(),
                floor_autospotting: Some(1),
                floor_spotswap: Some(1),
                differences: vec!["one".into()],
                ignored: Vec::new(),
                kept: BTreeMap::new(),
                changes: [("spotswap:on-demand-base".to_string(), "1".to_string())].into(),
                error: None,
            }],
            orphans: vec![Orphan {
                instance: "i-1".into(),
                instance_type: "m5.large".into(),
                state: "running",
                launched_for: None,
                launched_at: "2026-01-01T00:00:00Z".into(),
                age_minutes: 90,
                on_demand_hourly: Some(0.096),
                action: OrphanAction::WouldTerminate,
            }],
            api_calls: BTreeMap::new(),
            mutating_calls: 0,
        }
    }

    #[test]
    fn table_and_markdown_name_the_floors_differences_and_orphans() {
        for md in [false, true] {
            let text = render(&report(), md);
            assert!(
                text.contains("floor at desired 4: AutoSpotting 1, spotswap 1"),
                "{text}"
            );
            assert!(text.contains("difference: one"));
            assert!(text.contains("to write (--apply): spotswap:on-demand-base=1"));
            assert!(text.contains("i-1") && text.contains("would terminate") && text.contains("0.0960"));
            assert!(text.contains("dry run"));
        }
        assert!(render(&report(), true).contains("| instance | type |"));
    }
}
