//! Lambda handlers: the glue between a `LambdaEvent` and a workflow, shared by the thin
//! `main.rs` of each function.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_runtime::LambdaEvent;
use serde_json::{json, Value};
use tracing::info;

use crate::{rebalance, AdapterError, Aws, Config, CycleOptions};

/// Log the effective configuration once, at cold start.
pub fn log_config(config: &Config) {
    info!(config = %serde_json::to_string(config).unwrap_or_default(), "configuration");
}

/// The invocation's deadline as an `Instant`.
fn deadline(ctx: &lambda_runtime::Context) -> Option<Instant> {
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_millis() as u64;
    let left = ctx.deadline.saturating_sub(now_ms);
    Some(Instant::now() + Duration::from_millis(left))
}

fn millis_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The rebalancer: one cycle per event. The event's content does not matter: a schedule and a
/// state change both mean "look again".
pub async fn rebalancer(
    aws: &Aws,
    config: &Config,
    event: LambdaEvent<EventBridgeEvent<Value>>,
) -> Result<Value, AdapterError> {
    aws.reset_api_calls();
    info!(detail_type = %event.payload.detail_type, id = ?event.payload.id, "invoked");
    let opts = CycleOptions {
        deadline: deadline(&event.context),
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

impl From<AdapterError> for lambda_runtime::Diagnostic {
    fn from(e: AdapterError) -> Self {
        let error_type = match &e {
            AdapterError::Aws { operation, .. } => format!("Aws({operation})"),
            AdapterError::Config(_) => "InvalidConfig".into(),
            AdapterError::PriceFile { .. } => "PriceFile".into(),
            AdapterError::BudgetExhausted => "BudgetExhausted".into(),
            AdapterError::Invalid(_) => "Invalid".into(),
            AdapterError::Event(_) => "InvalidEvent".into(),
        };
        lambda_runtime::Diagnostic {
            error_type,
            error_message: e.to_string(),
        }
    }
}
