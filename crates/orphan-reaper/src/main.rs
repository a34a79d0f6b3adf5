//! Lambda: the orphan reaper, on a schedule. Terminates our strays, restores MaxSize and clears
//! expired records. The workflow lives in `spotswap-aws`; this file only wires it up.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use spotswap_aws::{lambda, Aws, Config};

// One thread: the work is waiting on AWS, a 128 MB Lambda has a fraction of a vCPU, and one
// malloc arena instead of one per worker keeps peak RSS down (72 -> 54 MiB at 20,000 instances).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    spotswap_aws::tune_allocator();
    lambda_runtime::tracing::init_default_subscriber();
    let config = Config::from_env()?;
    let aws = Aws::from_env(None).await.with_api_rates(config.api_rates);
    lambda::log_config(&config);
    run(service_fn(
        |event: LambdaEvent<EventBridgeEvent<serde_json::Value>>| lambda::orphan_reaper(&aws, &config, event),
    ))
    .await
}

#[cfg(test)]
mod tests {
    use aws_lambda_events::eventbridge::EventBridgeEvent;

    #[test]
    fn scheduled_event_parses() {
        // GIVEN the sample schedule tick of the reaper's rule
        let raw = include_str!("../../../events/reaper-scheduled.json");
        // WHEN the runtime deserializes it as the handler's payload
        let event: EventBridgeEvent<serde_json::Value> = serde_json::from_str(raw).expect("parses");
        // THEN it is AWS's Scheduled Event shape (DESIGN.md §7)
        assert_eq!(event.detail_type, "Scheduled Event");
        assert_eq!(event.source, "aws.events");
        assert_eq!(event.detail, serde_json::json!({}));
    }
}
