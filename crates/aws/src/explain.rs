//! `spotswap explain`: fetch the sources of an instance's or a group's story (our tags, the
//! group, its scaling activities, our decision lines from CloudWatch Logs or a local file);
//! the core joins them ([`spotswap_core::explain`]). And `spotswap report`'s reads, the
//! `EstimatedHourlySavings` metric among them. Reads only.

use std::collections::BTreeMap;

use spotswap_core::explain::report::SavingsSeries;
use spotswap_core::explain::{explain_group, explain_instance, Explanation, LogLine, Sources};
use spotswap_core::{tags, Timestamp};

use crate::port::{op, GroupQuery};
use crate::snapshot::{describe_any_state, describe_membership, describe_tagged_instances};
use crate::{AdapterError, Aws, Config};

/// Pages of scaling activities read per group (100 each, newest first).
const ACTIVITY_PAGES: usize = 5;

/// What to explain, and where the decision lines are.
#[derive(Debug, Clone)]
pub struct ExplainRequest {
    /// An instance id (`i-…`) or a group name.
    pub subject: String,
    /// Log groups to read with FilterLogEvents.
    pub log_groups: Vec<String>,
    /// CloudFormation stacks of spotswap whose log groups are read too (ListStackResources).
    pub stacks: Vec<String>,
    /// Local files of JSON log lines: `(name, content)`.
    pub log_files: Vec<(String, String)>,
    /// Read log events from this time on.
    pub since: Timestamp,
    /// The time the group's state is judged at (a pause, a schedule).
    pub now: Timestamp,
}

/// Fetch and explain. An unknown instance or a group that does not exist is
/// [`AdapterError::Invalid`] naming it.
pub async fn explain(aws: &Aws, config: &Config, req: &ExplainRequest) -> Result<Explanation, AdapterError> {
    let mut src = Sources {
        lines: all_lines(aws, &req.log_files, &req.log_groups, &req.stacks, req.since).await?,
        ..Sources::default()
    };
    for (name, _) in &req.log_files {
        src.log_args.extend(["--log-file".to_string(), name.clone()]);
    }
    for g in &req.log_groups {
        src.log_args.extend(["--log-group".to_string(), g.clone()]);
    }
    for st in &req.stacks {
        src.log_args.extend(["--stack".to_string(), st.clone()]);
    }
    let is_instance = req.subject.starts_with("i-");
    let group_name = if is_instance {
        let inst = describe_any_state(aws, &req.subject).await?;
        let from_tags = inst
            .as_ref()
            .and_then(|i| i.launched_for().or(i.tag(tags::AWS_ASG_NAME)).map(str::to_string));
        src.instance = inst;
        match from_tags {
            Some(g) => Some(g),
            None => describe_membership(aws, &req.subject).await?.map(|m| m.group),
        }
        .or_else(|| {
            src.lines
                .iter()
                .find(|l| l.mentions(&req.subject) && !l.group.is_empty())
                .map(|l| l.group.clone())
        })
    } else {
        Some(req.subject.clone())
    };
    if let Some(g) = &group_name {
        src.group = named_group(aws, g).await?;
        if src.group.is_some() {
            src.activities = activities(aws, g).await?;
            src.launches = describe_tagged_instances(aws, tags::GROUP, &[g.as_str()])
                .await?
                .into_values()
                .collect();
        }
    }
    let explained = if is_instance {
        explain_instance(&req.subject, &src)
    } else {
        explain_group(&req.subject, &src, &config.settings, req.now)
    };
    explained.ok_or_else(|| {
        AdapterError::Invalid(if is_instance {
            format!(
                "instance {}: unknown to EC2, to its group and to the logs read",
                req.subject
            )
        } else {
            format!("group {}: no such Auto Scaling group", req.subject)
        })
    })
}

async fn named_group(aws: &Aws, name: &str) -> Result<Option<spotswap_core::GroupSnapshot>, AdapterError> {
    let q = GroupQuery::Names(vec![name.to_string()]);
    let mut found = None;
    aws.each_page(
        op::DESCRIBE_GROUPS,
        |t| aws.port().describe_groups(&q, t),
        |g| {
            if g.name == name {
                found = Some(g);
            }
        },
    )
    .await?;
    Ok(found)
}

async fn activities(aws: &Aws, group: &str) -> Result<Vec<spotswap_core::explain::Activity>, AdapterError> {
    let mut out = Vec::new();
    let mut token = None;
    for _ in 0..ACTIVITY_PAGES {
        aws.limiter.acquire(crate::port::op::DESCRIBE_ACTIVITIES).await;
        let page = aws.port().scaling_activities(group, token).await?;
        out.extend(page.items);
        match page.next {
            Some(n) if !n.is_empty() => token = Some(n),
            _ => break,
        }
    }
    Ok(out)
}

/// The decision lines of the files, then of the log groups (named, and the stacks') since
/// `since`. A stack that does not exist is [`AdapterError::Invalid`] naming it.
async fn all_lines(
    aws: &Aws,
    files: &[(String, String)],
    groups: &[String],
    stacks: &[String],
    since: Timestamp,
) -> Result<Vec<LogLine>, AdapterError> {
    let mut lines = Vec::new();
    for (name, content) in files {
        lines.extend(content.lines().filter_map(|l| LogLine::parse(l, None, name)));
    }
    let mut all: Vec<String> = groups.to_vec();
    for stack in stacks {
        for g in stack_log_groups(aws, stack).await? {
            if !all.contains(&g) {
                all.push(g);
            }
        }
    }
    for g in &all {
        lines.extend(log_lines(aws, g, since).await?);
    }
    Ok(lines)
}

/// The log groups of spotswap's stack `stack`: its `AWS::Logs::LogGroup` resources, one per
/// function (ListStackResources, every page).
pub async fn stack_log_groups(aws: &Aws, stack: &str) -> Result<Vec<String>, AdapterError> {
    let mut out = Vec::new();
    let mut token = None;
    loop {
        aws.limiter
            .acquire(crate::port::cli_op::LIST_STACK_RESOURCES)
            .await;
        let Some(page) = aws.port().stack_log_groups(stack, token).await? else {
            return Err(AdapterError::Invalid(format!(
                "stack {stack}: no such CloudFormation stack"
            )));
        };
        out.extend(page.items);
        match page.next {
            Some(n) if !n.is_empty() => token = Some(n),
            _ => return Ok(out),
        }
    }
}

/// Every decision line of `log_group` since `since` (FilterLogEvents, every page; the lines
/// are matched to the subject in the core, so no filter pattern is sent).
pub async fn log_lines(aws: &Aws, log_group: &str, since: Timestamp) -> Result<Vec<LogLine>, AdapterError> {
    let mut out = Vec::new();
    aws.each_page(
        crate::port::cli_op::FILTER_LOG_EVENTS,
        |t| aws.port().log_events(log_group, since.unix() * 1000, t),
        |e| {
            let source = format!("{log_group}/{}", e.stream);
            if let Some(l) = LogLine::parse(&e.message, e.timestamp_ms, &source) {
                out.push(l);
            }
        },
    )
    .await?;
    Ok(out)
}

/// The window and the decision lines of `spotswap report`.
#[derive(Debug, Clone)]
pub struct ReportRequest {
    /// Log groups to read with FilterLogEvents.
    pub log_groups: Vec<String>,
    /// CloudFormation stacks of spotswap whose log groups are read too (ListStackResources).
    pub stacks: Vec<String>,
    /// Local files of JSON log lines: `(name, content)`.
    pub log_files: Vec<(String, String)>,
    /// The window's start.
    pub since: Timestamp,
    /// Its end: now.
    pub now: Timestamp,
}

/// `spotswap report`: read the region as a cycle does (no mutation), take each managed group's
/// census from the planner, and count the window's decision lines.
pub async fn report(
    aws: &Aws,
    config: &Config,
    req: &ReportRequest,
) -> Result<spotswap_core::explain::report::Report, AdapterError> {
    let lines = all_lines(aws, &req.log_files, &req.log_groups, &req.stacks, req.since).await?;
    let snap = crate::snapshot::take(aws, &config.settings, config.price_file.as_deref(), req.now).await?;
    let plans = spotswap_core::plan_cycle_in(&snap, &config.settings, spotswap_core::Scope::Full);
    let census: Vec<(String, spotswap_core::Census)> = plans
        .iter()
        .filter(|p| {
            p.skip
                .as_ref()
                .is_none_or(|s| s.reason == spotswap_core::Reason::Sheltered)
        })
        .map(|p| (p.group.clone(), p.census))
        .collect();
    let ours: Vec<spotswap_core::Instance> = snap
        .instances
        .values()
        .filter(|i| i.launched_for().is_some())
        .cloned()
        .collect();
    let names: Vec<String> = census.iter().map(|(g, _)| g.clone()).collect();
    let metric = savings_metric(aws, &names, req.since, req.now).await;
    Ok(spotswap_core::explain::report::build(
        &census, &ours, &lines, &metric, req.since, req.now,
    ))
}

/// Each group's `EstimatedHourlySavings` over the window (GetMetricData, up to 500 groups a
/// call, every page). Unreadable (no grant, no CloudWatch): one WARN line
/// (`SavingsMetricUnavailable`), and the report estimates from launch times.
async fn savings_metric(
    aws: &Aws,
    groups: &[String],
    since: Timestamp,
    now: Timestamp,
) -> BTreeMap<String, SavingsSeries> {
    let period_secs = spotswap_core::explain::report::metric_period(since, now);
    let mut out: BTreeMap<String, SavingsSeries> = BTreeMap::new();
    for chunk in groups.chunks(crate::port::METRIC_QUERIES_PER_CALL) {
        let read = aws
            .each_page(
                crate::port::cli_op::GET_METRIC_DATA,
                |t| aws.port().savings_series(chunk, since, now, period_secs, t),
                |(group, points)| {
                    let s = out.entry(group).or_insert_with(|| SavingsSeries {
                        period_secs,
                        points: Vec::new(),
                    });
                    s.points.extend(points);
                },
            )
            .await;
        if let Err(e) = read {
            tracing::warn!(
                reason = "SavingsMetricUnavailable",
                error = %e,
                "EstimatedHourlySavings unreadable; savings in the window estimated from launch times"
            );
            return BTreeMap::new();
        }
    }
    out
}
