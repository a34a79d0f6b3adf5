//! What an invocation did: one JSON log line per decision, EMF metrics, our own EventBridge
//! events, and a summary for the CLI.

use std::collections::BTreeMap;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use serde_json::json;
use spotswap_core::metrics::GroupMetrics;
use spotswap_core::plan::CandidateReview;
use spotswap_core::{Action, ActionKind, Census, ErrorKind, Outcome, Pool, PriceSource, Reason, Skip};
use tracing::{error, info, warn};

use crate::Aws;

/// One action and what became of it, typed: the kind and the reason become strings only where
/// a log line, JSON or a table is written.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionReport {
    /// What was to be done.
    pub kind: ActionKind,
    /// Why: the plan's reason, or what the outcome showed (a launch that found no capacity
    /// reports `NoSpotCapacity`; one that hit an account limit `SpotQuotaExceeded`).
    pub reason: Reason,
    /// The group.
    pub group: String,
    /// The instance acted on.
    pub instance: Option<String>,
    /// The pool.
    pub pool: Option<Pool>,
    /// Spot price of the pool, USD/hour.
    pub spot_price: Option<f64>,
    /// On-demand price of the original type, USD/hour.
    pub on_demand_price: Option<f64>,
    /// The commitment the decision was about, if any.
    pub commitment: Option<String>,
    /// What happened.
    pub outcome: Outcome,
}

impl ActionReport {
    /// Build from an action and its outcome.
    pub fn new(a: &Action, outcome: Outcome) -> Self {
        let reason = match &outcome {
            Outcome::Fallback(_) => Reason::NoSpotCapacity,
            Outcome::Failed(f) if f.kind == ErrorKind::Quota && matches!(a.kind, ActionKind::Launch(_)) => {
                Reason::SpotQuotaExceeded
            }
            _ => a.reason,
        };
        Self {
            kind: a.kind.clone(),
            reason,
            group: a.group.clone(),
            instance: a.instance.clone(),
            pool: a.pool.clone(),
            spot_price: a.spot_price,
            on_demand_price: a.on_demand_price,
            commitment: a.commitment.clone(),
            outcome,
        }
    }

    /// The action as it was planned, with the reason this report gives.
    pub fn action(&self) -> Action {
        Action {
            kind: self.kind.clone(),
            reason: self.reason,
            group: self.group.clone(),
            instance: self.instance.clone(),
            pool: self.pool.clone(),
            spot_price: self.spot_price,
            on_demand_price: self.on_demand_price,
            commitment: self.commitment.clone(),
        }
    }

    /// For a launch: every pool offered, cheapest first.
    pub fn candidates(&self) -> Vec<&Pool> {
        match &self.kind {
            ActionKind::Launch(spec) => spec.candidates.iter().map(|c| &c.pool).collect(),
            _ => Vec::new(),
        }
    }

    /// True when the action changed something, or would have in a dry run.
    pub fn succeeded(&self) -> bool {
        self.kind.is_mutating() && self.outcome.succeeded()
    }

    /// The one JSON log line of this decision, with the invocation's correlation ids.
    pub fn log(&self, ids: &Correlation) {
        let instance = self.instance.as_deref().unwrap_or("");
        let pool = self.pool.as_ref().map(ToString::to_string).unwrap_or_default();
        let candidates = join(self.candidates());
        let outcome = self.outcome.name();
        let detail = self.outcome.detail();
        let commitment = self.commitment.as_deref().unwrap_or("");
        let (error_code, error_kind) = match &self.outcome {
            Outcome::Failed(f) => (f.code.as_deref().unwrap_or(""), f.kind.name()),
            _ => ("", ""),
        };
        macro_rules! line {
            ($lvl:ident) => {
                $lvl!(
                    action = self.kind.name(),
                    reason = self.reason.code(),
                    group = %self.group,
                    instance,
                    pool = %pool,
                    spot_price = self.spot_price,
                    on_demand_price = self.on_demand_price,
                    outcome,
                    detail = %detail,
                    error_code,
                    error_kind,
                    candidates = %candidates,
                    commitment,
                    cycle_id = %ids.cycle_id,
                    request_id = ids.request_id.as_deref().unwrap_or(""),
                    "decision"
                )
            };
        }
        match &self.outcome {
            Outcome::Failed(_) => line!(error),
            Outcome::Fallback(_) | Outcome::NotAttempted(_) => line!(warn),
            _ => line!(info),
        }
    }
}

fn join<T: ToString>(items: impl IntoIterator<Item = T>) -> String {
    items
        .into_iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// The FIXED JSON keys: `action`, `reason`, `group`, `instance`, `pool`, `spot_price`,
/// `on_demand_price`, `outcome`, `detail`, and `candidates` for a launch.
impl Serialize for ActionReport {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("action", self.kind.name())?;
        m.serialize_entry("reason", self.reason.code())?;
        m.serialize_entry("group", &self.group)?;
        m.serialize_entry("instance", &self.instance)?;
        m.serialize_entry("pool", &self.pool.as_ref().map(ToString::to_string))?;
        m.serialize_entry("spot_price", &self.spot_price)?;
        m.serialize_entry("on_demand_price", &self.on_demand_price)?;
        m.serialize_entry("outcome", self.outcome.name())?;
        match &self.outcome {
            Outcome::Done(None) | Outcome::DryRun => {}
            Outcome::Done(Some(id)) => m.serialize_entry("detail", id)?,
            Outcome::AlreadyDone(d) => m.serialize_entry("detail", d)?,
            Outcome::Fallback(pools) => m.serialize_entry("detail", &join(pools))?,
            Outcome::NotAttempted(r) => m.serialize_entry("detail", r.code())?,
            Outcome::Failed(f) => m.serialize_entry("detail", f)?,
        }
        if let Some(c) = &self.commitment {
            m.serialize_entry("commitment", c)?;
        }
        let candidates = self.candidates();
        if !candidates.is_empty() {
            m.serialize_entry(
                "candidates",
                &candidates.iter().map(ToString::to_string).collect::<Vec<_>>(),
            )?;
        }
        m.end()
    }
}

/// Log a group passed over: one line with the reason and the invocation's correlation ids.
pub fn log_skip(s: &Skip, ids: &Correlation) {
    let detail = s.detail.as_deref().unwrap_or("");
    let (cycle_id, request_id) = (ids.cycle_id.as_str(), ids.request_id.as_deref().unwrap_or(""));
    if s.reason == Reason::InvalidConfig {
        error!(action = "skip", reason = s.reason.code(), group = %s.group, detail, cycle_id, request_id, "group skipped");
    } else {
        info!(action = "skip", reason = s.reason.code(), group = %s.group, detail, cycle_id, request_id, "group skipped");
    }
}

/// Which invocation a decision belongs to: every decision line carries these, so the lines of
/// one cycle or one event can be joined (`spotswap explain` does).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Correlation {
    /// The EventBridge event's `id` for an event or a scheduled invocation; otherwise an id
    /// made for the cycle (`c-<unix ms, hex>-<random, hex>`).
    pub cycle_id: String,
    /// The Lambda invocation's request id (`None` outside Lambda).
    pub request_id: Option<String>,
}

impl Correlation {
    /// A fresh id for a cycle that has no event of its own (the CLI's runs).
    pub fn new_cycle() -> Self {
        use std::hash::{BuildHasher, Hasher};
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        // std's per-process random hash keys: unique enough to tell cycles apart, no new crate.
        let random = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        Self {
            cycle_id: format!("c-{ms:x}-{random:016x}"),
            request_id: None,
        }
    }

    /// The ids of an event (its `id`; a fresh cycle id when it has none) and, in Lambda, the
    /// invocation's request id.
    pub fn for_event(event_id: Option<&str>, request_id: Option<&str>) -> Self {
        let mut c = match event_id.filter(|id| !id.is_empty()) {
            Some(id) => Self {
                cycle_id: id.to_string(),
                request_id: None,
            },
            None => Self::new_cycle(),
        };
        c.request_id = request_id.filter(|r| !r.is_empty()).map(str::to_string);
        c
    }
}

impl Default for Correlation {
    fn default() -> Self {
        Self::new_cycle()
    }
}

/// The one reporting path of every function: each decision is recorded once, which logs its
/// line, counts it into its group's metrics and picks the event users hear about.
#[derive(Debug, Clone, Default)]
pub struct Recorder {
    /// Every decision, in order.
    pub actions: Vec<ActionReport>,
    /// Groups passed over.
    pub skipped: Vec<Skip>,
    /// The invocation's ids, on every line this recorder logs.
    pub correlation: Correlation,
    metrics: BTreeMap<String, GroupMetrics>,
    notes: Vec<Notification>,
}

impl Recorder {
    /// A recorder whose lines carry `correlation`.
    pub fn new(correlation: Correlation) -> Self {
        Self {
            correlation,
            ..Self::default()
        }
    }

    /// Record one action and its outcome.
    pub fn record(&mut self, action: &Action, outcome: Outcome) -> &ActionReport {
        let r = ActionReport::new(action, outcome);
        r.log(&self.correlation);
        self.metrics
            .entry(r.group.clone())
            .or_insert_with(|| GroupMetrics::new(&r.group))
            .count(&r.action(), &r.outcome);
        if let Some(mut n) = Notification::for_report(&r) {
            // The invocation's ids, so an event joins its decision lines in `spotswap explain`.
            n.detail["cycle_id"] = json!(self.correlation.cycle_id);
            n.detail["request_id"] = json!(self.correlation.request_id);
            self.notes.push(n);
        }
        self.actions.push(r);
        self.actions.last().expect("just pushed")
    }

    /// Record a group passed over.
    pub fn skip(&mut self, s: &Skip) {
        log_skip(s, &self.correlation);
        self.skipped.push(s.clone());
    }

    /// Record a group's counts before the plan ran.
    pub fn census(&mut self, group: &str, census: &Census) {
        let m = self
            .metrics
            .entry(group.to_string())
            .or_insert_with(|| GroupMetrics::new(group));
        m.on_demand_count = Some(census.on_demand);
        m.spot_count = Some(census.spot);
        m.estimated_hourly_savings = Some(census.hourly_savings);
    }

    /// The metrics of every group with something to report, by group name.
    pub fn metrics(&self) -> Vec<GroupMetrics> {
        self.metrics.values().filter(|m| !m.is_empty()).cloned().collect()
    }

    /// Publish our events (not in a dry run: nothing happened).
    pub async fn publish(&self, aws: &Aws, bus: &str, dry_run: bool) {
        if !dry_run {
            publish(aws, bus, &self.notes).await;
        }
    }
}

/// Mutating calls among `api_calls` (per `service:Operation`).
pub fn mutating_calls(api_calls: &BTreeMap<String, u64>) -> u64 {
    api_calls
        .iter()
        .filter(|(op, _)| spotswap_core::ops::is_mutating(op))
        .map(|(_, n)| n)
        .sum()
}

/// Print metrics as EMF lines on stdout, where Lambda's log capture finds them.
pub fn print_emf(metrics: &[GroupMetrics], timestamp_ms: i64) {
    for m in metrics {
        println!("{}", m.emf_line(timestamp_ms));
    }
}

/// A group's counts after planning, for the summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupSummary {
    /// The group.
    pub group: String,
    /// Its counts.
    #[serde(flatten)]
    pub census: Census,
    /// A stateful group's Elastic IPs and data volumes: where each is, and where the plan
    /// moves it (`carried`, FIXED); absent for a group that carries nothing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub carried: Option<spotswap_core::carry::CarriedView>,
}

/// Everything one invocation did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CycleReport {
    /// The invocation's ids, as on its decision lines.
    #[serde(flatten)]
    pub correlation: Correlation,
    /// Dry run: nothing was changed.
    pub dry_run: bool,
    /// Every decision, in order.
    pub actions: Vec<ActionReport>,
    /// Groups passed over.
    pub skipped: Vec<Skip>,
    /// Managed groups and their counts.
    pub groups: Vec<GroupSummary>,
    /// For each new swap the cycle tried to start (`spotswap plan`, [`CycleOptions::explain`]):
    /// every candidate type of the original's AZ that was turned down, and why.
    ///
    /// [`CycleOptions::explain`]: crate::CycleOptions::explain
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rejections: Vec<CandidateReview>,
    /// API calls per `service:Operation`.
    pub api_calls: BTreeMap<String, u64>,
    /// Where on-demand prices came from.
    pub price_source: Option<PriceSource>,
    /// Where the cycle's time went.
    pub timings: Timings,
    /// The account's commitments: RI units and Savings Plan dollars used now and after the
    /// plan (the `commitments` section of `spotswap plan`); `None` when there are none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commitments: Option<spotswap_core::commitments::Summary>,
    /// Metrics per group.
    #[serde(skip)]
    pub metrics: Vec<GroupMetrics>,
}

/// Wall time of each phase of a cycle, milliseconds. Planning is pure computation on one
/// thread, so its wall time is its CPU time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Timings {
    /// Reading the region (groups, instances, prices).
    pub read_ms: f64,
    /// Planning every group.
    pub plan_ms: f64,
    /// Acting on the groups: each acting group's preflight reads (instance refresh,
    /// termination protection) and its actions, groups overlapped, token-bucket waits included.
    pub execute_ms: f64,
    /// The whole cycle.
    pub total_ms: f64,
}

impl Timings {
    /// Milliseconds since `start`.
    pub fn since(start: std::time::Instant) -> f64 {
        start.elapsed().as_secs_f64() * 1e3
    }
}

impl CycleReport {
    /// A report of what `recorder` recorded.
    pub fn from_recorder(recorder: Recorder, dry_run: bool) -> Self {
        Self {
            dry_run,
            correlation: recorder.correlation.clone(),
            metrics: recorder.metrics(),
            actions: recorder.actions,
            skipped: recorder.skipped,
            groups: Vec::new(),
            rejections: Vec::new(),
            api_calls: BTreeMap::new(),
            price_source: None,
            timings: Timings::default(),
            commitments: None,
        }
    }

    /// Print the metrics as EMF lines on stdout, where Lambda's log capture finds them: one
    /// per group, and the region's unused commitments when they are known.
    pub fn print_emf(&self, timestamp_ms: i64) {
        print_emf(&self.metrics, timestamp_ms);
        if let Some(c) = self.commitments.as_ref().filter(|c| !c.unknown) {
            println!(
                "{}",
                spotswap_core::metrics::commitments_emf_line(c, timestamp_ms)
            );
        }
    }

    /// Mutating calls made, from `api_calls`.
    pub fn mutating_calls(&self) -> u64 {
        mutating_calls(&self.api_calls)
    }

    /// The decisions that succeeded (or would have, in a dry run) with this action kind's name.
    pub fn count_done(&self, matches: impl Fn(&ActionKind) -> bool) -> usize {
        self.actions
            .iter()
            .filter(|a| matches(&a.kind) && a.outcome == Outcome::Done(None))
            .count()
    }
}

/// One of our own events for EventBridge.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notification {
    /// `Spotswap Swap Completed`, …
    pub detail_type: &'static str,
    /// The detail object.
    pub detail: serde_json::Value,
}

/// Detail-type of a completed swap.
pub const SWAP_COMPLETED: &str = "Spotswap Swap Completed";
/// Detail-type of a fallback to on-demand.
pub const FALLBACK: &str = "Spotswap Fallback To On-Demand";
/// Detail-type of a sheltered group.
pub const GROUP_SHELTERED: &str = "Spotswap Group Sheltered";
/// Detail-type of a reaped orphan.
pub const ORPHAN_REAPED: &str = "Spotswap Orphan Reaped";

impl Notification {
    /// The event for a recorded decision, if it is one users hear about.
    pub fn for_report(r: &ActionReport) -> Option<Self> {
        let pools = |p: Vec<&Pool>| p.into_iter().map(ToString::to_string).collect::<Vec<_>>();
        let (detail_type, instances, pools) = match (&r.kind, r.reason, &r.outcome) {
            (ActionKind::Launch(_), _, Outcome::Fallback(tried)) => (
                FALLBACK,
                r.instance.iter().cloned().collect(),
                tried.iter().map(ToString::to_string).collect(),
            ),
            (
                ActionKind::Retire {
                    instance,
                    replacement,
                },
                Reason::ReplacementInService,
                Outcome::Done(_),
            ) => (
                SWAP_COMPLETED,
                vec![instance.clone(), replacement.clone()],
                pools(r.pool.iter().collect()),
            ),
            (ActionKind::Terminate { instance }, _, Outcome::Done(_)) => (
                ORPHAN_REAPED,
                vec![instance.clone()],
                pools(r.pool.iter().collect()),
            ),
            (
                ActionKind::RecordInterruption {
                    pool,
                    sheltered_until,
                    ..
                },
                Reason::InterruptionBurst,
                Outcome::Done(_),
            ) => {
                return Some(Self {
                    detail_type: GROUP_SHELTERED,
                    detail: json!({
                        "group": r.group,
                        "instances": r.instance.iter().collect::<Vec<_>>(),
                        "pools": [pool.to_string()],
                        "reason": r.reason.code(),
                        "sheltered_until": sheltered_until.map(|t| t.to_rfc3339()),
                    }),
                })
            }
            _ => return None,
        };
        Some(Self {
            detail_type,
            detail: json!({
                "group": r.group,
                "instances": instances,
                "pools": pools,
                "reason": r.reason.code(),
                "spot_price": r.spot_price,
                "on_demand_price": r.on_demand_price,
            }),
        })
    }
}

/// Publish our events to EventBridge, 10 to a call. Best-effort: a failure is a WARN line,
/// never an error of the invocation.
pub async fn publish(aws: &Aws, bus: &str, events: &[Notification]) {
    if bus.is_empty() || events.is_empty() {
        return;
    }
    for chunk in events.chunks(10) {
        let entries: Vec<crate::port::EventEntry> = chunk
            .iter()
            .map(|n| crate::port::EventEntry {
                source: "spotswap".to_string(),
                detail_type: n.detail_type.to_string(),
                detail: n.detail.to_string(),
                bus: bus.to_string(),
            })
            .collect();
        match aws
            .paced(crate::port::op::PUT_EVENTS, aws.port().put_events(&entries))
            .await
        {
            Ok(failed) if failed > 0 => {
                warn!(
                    reason = "PublishPartiallyFailed",
                    failed, "some events were not published"
                )
            }
            Ok(_) => {}
            Err(e) => warn!(reason = "PublishFailed", error = %e, "events not published"),
        }
    }
}
