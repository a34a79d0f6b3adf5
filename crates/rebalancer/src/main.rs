//! Lambda: the rebalancer, on a schedule (and optionally on EC2 state changes, to advance
//! swaps sooner). The workflow lives in `spotswap-aws`; this file only wires it up.

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
        |event: LambdaEvent<EventBridgeEvent<serde_json::Value>>| lambda::rebalancer(&aws, &config, event),
    ))
    .await
}
