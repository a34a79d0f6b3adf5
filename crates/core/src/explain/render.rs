//! An [`Explanation`] as a table for a terminal, or as a ticket-ready markdown report: a
//! summary sentence, where things stand, the timeline, the evidence lines, and the commands
//! that reproduce them.

use std::fmt::Write;

use super::Explanation;

/// Plain text columns for a terminal.
pub fn table(e: &Explanation) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", e.summary);
    for (k, v) in &e.state {
        let _ = writeln!(out, "  {k}: {v}");
    }
    if !e.related.is_empty() {
        let _ = writeln!(out, "  related: {}", e.related.join(", "));
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:<20}  {:<16}  {:<28}  {:<22}  WHAT",
        "WHEN", "SOURCE", "REASON", "CYCLE"
    );
    for t in &e.timeline {
        let _ = writeln!(
            out,
            "{:<20}  {:<16}  {:<28}  {:<22}  {}",
            t.when(),
            t.source.name(),
            t.reason,
            short(&t.cycle_id, 22),
            t.what
        );
    }
    out
}

fn short(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let head: String = s.chars().take(n - 1).collect();
        format!("{head}…")
    }
}

/// Markdown for a support ticket.
pub fn markdown(e: &Explanation) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "## spotswap explain: {} `{}`\n", e.kind, e.subject);
    let _ = writeln!(out, "{}\n", e.summary);
    if !e.state.is_empty() {
        let _ = writeln!(out, "### Now\n\n| | |\n| --- | --- |");
        for (k, v) in &e.state {
            let _ = writeln!(out, "| {} | `{}` |", cell(k), cell(v));
        }
        let _ = writeln!(out);
    }
    if !e.related.is_empty() {
        let _ = writeln!(out, "Related instances: {}\n", e.related.join(", "));
    }
    let _ = writeln!(
        out,
        "### Timeline\n\n| When (UTC) | Source | Reason | What | Cycle |\n| --- | --- | --- | --- | --- |"
    );
    for t in &e.timeline {
        let _ = writeln!(
            out,
            "| {} | {} | `{}` | {} | `{}` |",
            t.when(),
            t.source.name(),
            cell(&t.reason),
            cell(&t.what),
            cell(&t.cycle_id)
        );
    }
    let _ = writeln!(out, "\n### Evidence\n\n```");
    for t in &e.timeline {
        let _ = writeln!(out, "{}", t.evidence.replace("```", "'''"));
    }
    let _ = writeln!(out, "```\n\n### Reproduce\n\n```sh");
    for c in &e.commands {
        let _ = writeln!(out, "{c}");
    }
    let _ = writeln!(out, "```");
    out
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}
