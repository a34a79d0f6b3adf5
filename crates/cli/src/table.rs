//! The human-readable table: one row per intended action, then skips and a summary.

use std::fmt::Write;

use spotswap_aws::{CycleReport, Outcome};
use spotswap_core::{ActionKind, Reason};

fn price(p: Option<f64>) -> String {
    p.map(|p| format!("{p:.4}")).unwrap_or_else(|| "-".into())
}

fn outcome(o: &Outcome) -> String {
    match o {
        Outcome::Done(Some(id)) => format!("done {id}"),
        Outcome::Done(None) => "done".into(),
        Outcome::DryRun => "planned".into(),
        Outcome::AlreadyDone(d) => format!("already-done {d}"),
        Outcome::Fallback(_) => "fallback".into(),
        Outcome::NotAttempted(r) => format!("not-attempted ({r})"),
        Outcome::Failed(f) => format!("FAILED: {f}"),
    }
}

/// `12 TooLittleMemory, 3 ArchitectureMismatch`: how many types each reason turned down, most
/// first (the JSON output names each type).
fn rejected_counts(rejected: &[spotswap_core::candidates::Rejected]) -> String {
    let mut counts: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for x in rejected {
        *counts.entry(x.reason.code()).or_default() += 1;
    }
    let mut counts: Vec<(&str, usize)> = counts.into_iter().collect();
    counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    if counts.is_empty() {
        return "no type turned down".into();
    }
    counts
        .iter()
        .map(|(code, n)| format!("{n} {code}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Render a report as aligned text.
pub(crate) fn render(r: &CycleReport) -> String {
    let mut rows: Vec<[String; 8]> = vec![[
        "GROUP".into(),
        "ACTION".into(),
        "INSTANCE".into(),
        "POOL".into(),
        "SPOT $/h".into(),
        "OD $/h".into(),
        "REASON".into(),
        "OUTCOME".into(),
    ]];
    for a in &r.actions {
        let outcome = match &a.outcome {
            Outcome::Done(None) if a.kind == ActionKind::Wait => String::new(),
            o => outcome(o),
        };
        rows.push([
            a.group.clone(),
            a.kind.name().to_string(),
            a.instance.clone().unwrap_or_else(|| "-".into()),
            a.pool.as_ref().map_or_else(|| "-".into(), ToString::to_string),
            price(a.spot_price),
            price(a.on_demand_price),
            a.reason.to_string(),
            outcome,
        ]);
    }
    let mut widths = [0usize; 8];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let line: Vec<String> = row.iter().zip(widths).map(|(c, w)| format!("{c:<w$}")).collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
    if r.actions.is_empty() {
        let _ = writeln!(out, "(no actions)");
    }
    for s in &r.skipped {
        let _ = writeln!(
            out,
            "skipped  {}  {}{}",
            s.group,
            s.reason,
            s.detail.as_ref().map(|d| format!("  ({d})")).unwrap_or_default()
        );
    }
    for review in &r.rejections {
        let _ = writeln!(
            out,
            "rejected {}  {} ({}/{}): {}",
            review.group,
            review.instance,
            review.instance_type,
            review.az,
            rejected_counts(&review.rejected)
        );
    }
    for g in &r.groups {
        let _ = writeln!(
            out,
            "group    {}  desired={} floor={} on-demand={} spot={} savings=${:.4}/h",
            g.group,
            g.census.desired,
            g.census.floor,
            g.census.on_demand,
            g.census.spot,
            g.census.hourly_savings
        );
        if let Some(c) = &g.carried {
            carried(&mut out, &g.group, c);
        }
    }
    if let Some(c) = &r.commitments {
        commitments(&mut out, c);
    }
    let _ = writeln!(
        out,
        "{} actions, {} swaps waiting, {} mutating API calls{}",
        r.actions.iter().filter(|a| a.kind != ActionKind::Wait).count(),
        r.actions
            .iter()
            .filter(|a| a.kind == ActionKind::Wait && a.reason != Reason::AtRiskFloor)
            .count(),
        r.mutating_calls(),
        if r.dry_run { " (dry run)" } else { "" }
    );
    out
}

/// A stateful group's carried resources: where each is, and where the plan moves it.
fn carried(out: &mut String, group: &str, c: &spotswap_core::carry::CarriedView) {
    let on = |i: &Option<String>| i.clone().unwrap_or_else(|| "none".into());
    let moves = |now: &Option<String>, after: &Option<String>| {
        if now == after {
            String::new()
        } else {
            format!(" -> {}", on(after))
        }
    };
    for a in &c.addresses {
        let _ = writeln!(
            out,
            "carried  {group}  eip {} ({})  on {}{}",
            a.public_ip,
            a.allocation_id,
            on(&a.instance),
            moves(&a.instance, &a.after)
        );
    }
    for v in &c.volumes {
        let _ = writeln!(
            out,
            "carried  {group}  volume {} {} {} {}  on {}{}{}",
            v.volume,
            v.az,
            v.device.as_deref().unwrap_or("-"),
            v.state.name(),
            on(&v.instance),
            moves(&v.instance, &v.after),
            v.stranded
                .as_ref()
                .map(|w| format!("  VolumeStranded ({w})"))
                .unwrap_or_default()
        );
    }
}

/// The `commitments` section: RI units per family and Savings Plan dollars, now and after.
fn commitments(out: &mut String, c: &spotswap_core::commitments::Summary) {
    if c.unknown {
        let _ = writeln!(
            out,
            "commitments  unknown (CommitmentsUnknown): planned as without them"
        );
        return;
    }
    for f in &c.families {
        let _ = writeln!(
            out,
            "commitments  RI {}  owned={} used={} unused={}  after plan: used={} unused={}",
            f.family, f.owned, f.used_now, f.unused_now, f.used_after, f.unused_after
        );
    }
    for p in &c.savings_plans {
        let _ = writeln!(
            out,
            "commitments  SP {} ({})  ${:.4}/h  used=${:.4}/h  after plan: used=${:.4}/h",
            p.id, p.kind, p.commitment_per_hour, p.used_now_per_hour, p.used_after_per_hour
        );
    }
}

/// `handle-event --output table`: the event, then one line per decision.
pub(crate) fn event(r: &spotswap_aws::EventReport) -> String {
    let mut out = format!(
        "{} {} (event {}){}\n",
        r.detail_type,
        r.instance.as_deref().unwrap_or("-"),
        r.correlation.cycle_id,
        if r.dry_run { ", dry run" } else { "" }
    );
    for d in &r.decisions {
        let _ = writeln!(
            out,
            "  {:<20} {:<28} {:<20} {:<24} {}",
            d.kind.name(),
            d.reason.code(),
            d.instance.as_deref().unwrap_or("-"),
            d.pool
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_else(|| "-".into()),
            outcome(&d.outcome)
        );
    }
    out
}
