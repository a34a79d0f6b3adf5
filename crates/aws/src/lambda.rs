//! Lambda handlers: the glue between a `LambdaEvent` and a workflow, shared by the thin
//! `main.rs` of each function.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::{json, Value};
use spotswap_core::ActionKind;
use tracing::info;

use crate::report::Correlation;
use crate::{rebalance, AdapterError, Aws, Config, CycleOptions};

/// What each function's `main` does: at cold start, tune the allocator, initialise tracing
/// (Lambda's JSON log format), read the configuration once (a bad value fails the start with
/// its name), build the SDK clients once and log the effective configuration; then serve
/// invocations with `handler`.
pub async fn serve<A, F, Fut>(handler: F) -> Result<(), lambda_runtime::Error>
where
    A: for<'de> serde::Deserialize<'de>,
    F: Fn(Aws, Arc<Config>, LambdaEvent<A>) -> Fut,
    Fut: Future<Output = Result<Value, AdapterError>>,
{
    crate::tune_allocator();
    lambda_runtime::tracing::init_default_subscriber();
    let config = Arc::new(Config::from_env()?);
    let aws = Aws::from_env(None).await.with_api_rates(config.api_rates);
    log_config(&config);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<A>| {
        handler(aws.clone(), config.clone(), event)
    }))
    .await
}

/// Log the effective configuration once, at cold start.
pub fn log_config(config: &Config) {
    info!(config = %serde_json::to_string(config).unwrap_or_default(), "configuration");
}

/// The invocation's deadline as an `Instant`.
///
/// Lambda sends it as epoch milliseconds. A value that is not a plausible epoch time (more than a
/// day in the past: local emulators such as `cargo lambda watch --only-lambda-apis` send a
/// relative `600000`) is no deadline at all, logged as `DeadlineUnknown`; treating it as expired
/// would make every cycle start nothing.
fn deadline(ctx: &lambda_runtime::Context) -> Option<Instant> {
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_millis() as u64;
    if ctx.deadline < now_ms.saturating_sub(86_400_000) {
        tracing::warn!(
            reason = "DeadlineUnknown",
            deadline_ms = ctx.deadline,
            "the invocation deadline is not an epoch time; running without one"
        );
        return None;
    }
    let left = ctx.deadline.saturating_sub(now_ms);
    Some(Instant::now() + Duration::from_millis(left))
}

fn millis_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// `detail-type` of the optional trigger that advances swaps as soon as our launch runs.
pub const STATE_CHANGE: &str = "EC2 Instance State-change Notification";

/// The rebalancer: one cycle per event. The event's content does not matter: a schedule and a
/// state change both mean "look again".
pub async fn rebalancer(
    aws: Aws,
    config: Arc<Config>,
    event: LambdaEvent<EventBridgeEvent<Value>>,
) -> Result<Value, AdapterError> {
    let (aws, config) = (&aws, &*config);
    aws.reset_api_calls();
    let deadline = deadline(&event.context);
    let correlation = Correlation::for_event(event.payload.id.as_deref(), Some(&event.context.request_id));
    info!(
        detail_type = %event.payload.detail_type,
        id = ?event.payload.id,
        cycle_id = %correlation.cycle_id,
        request_id = %event.context.request_id,
        remaining_ms = deadline.map(|d| d.saturating_duration_since(Instant::now()).as_millis() as u64),
        "invoked"
    );
    // A state change (our own launches included) only advances swaps in flight:
    // `replace-per-cycle` is per schedule period, not per event.
    let scope = if event.payload.detail_type == STATE_CHANGE {
        spotswap_core::Scope::AdvanceOnly
    } else {
        spotswap_core::Scope::Full
    };
    let opts = CycleOptions {
        deadline,
        scope,
        correlation: Some(correlation),
        ..CycleOptions::default()
    };
    let report = rebalance(aws, config, opts).await?;
    report.print_emf(millis_now());
    Ok(json!({
        "actions": report.actions.len(),
        "skipped": report.skipped.len(),
        "mutating_calls": report.mutating_calls(),
        "dry_run": report.dry_run,
    }))
}

/// The interruption handler: one spot warning or rebalance recommendation per invocation.
/// The payload is taken as plain JSON so that a malformed event is our clear `InvalidEvent`
/// error, not the runtime's deserialization failure.
pub async fn interruption_handler(
    aws: Aws,
    config: Arc<Config>,
    event: LambdaEvent<Value>,
) -> Result<Value, AdapterError> {
    let (aws, config) = (&aws, &*config);
    aws.reset_api_calls();
    let report = crate::interruption::handle_value(
        aws,
        config,
        event.payload,
        crate::interruption::EventOptions {
            request_id: Some(event.context.request_id.clone()),
            ..crate::interruption::EventOptions::default()
        },
    )
    .await?;
    report.print_emf(millis_now());
    Ok(report.summary())
}

/// The orphan reaper: one pass per event (a schedule tick; the content does not matter).
pub async fn orphan_reaper(
    aws: Aws,
    config: Arc<Config>,
    event: LambdaEvent<EventBridgeEvent<Value>>,
) -> Result<Value, AdapterError> {
    let (aws, config) = (&aws, &*config);
    aws.reset_api_calls();
    let correlation = Correlation::for_event(event.payload.id.as_deref(), Some(&event.context.request_id));
    info!(
        detail_type = %event.payload.detail_type,
        id = ?event.payload.id,
        cycle_id = %correlation.cycle_id,
        request_id = %event.context.request_id,
        "invoked"
    );
    let opts = CycleOptions {
        correlation: Some(correlation),
        ..CycleOptions::default()
    };
    let report = crate::reap(aws, config, opts).await?;
    report.print_emf(millis_now());
    Ok(json!({
        "actions": report.actions.len(),
        "terminated": report.count_done(|k| matches!(k, ActionKind::Terminate { .. })),
        "max_restored": report.count_done(|k| matches!(k, ActionKind::RestoreMax { .. })),
        "records_cleared": report.count_done(|k| matches!(k, ActionKind::ClearRecords { .. })),
        "skipped": report.skipped.len(),
        "mutating_calls": report.mutating_calls(),
        "dry_run": report.dry_run,
    }))
}

impl From<AdapterError> for lambda_runtime::Diagnostic {
    fn from(e: AdapterError) -> Self {
        let error_type = match &e {
            AdapterError::Aws { operation, .. } => format!("Aws({operation})"),
            AdapterError::Config(_) => "InvalidConfig".into(),
            AdapterError::PriceFile { .. } => "PriceFile".into(),
            AdapterError::BudgetExhausted => "BudgetExhausted".into(),
            AdapterError::Invalid(_) => "Invalid".into(),
            AdapterError::Fleet { .. } => "Fleet".into(),
            AdapterError::Event(_) => "InvalidEvent".into(),
        };
        lambda_runtime::Diagnostic {
            error_type,
            error_message: e.to_string(),
        }
    }
}
