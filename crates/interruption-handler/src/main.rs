//! Lambda: the interruption handler, on `EC2 Spot Instance Interruption Warning` and
//! `EC2 Instance Rebalance Recommendation`. The workflow lives in `spotswap-aws`; this file
//! only wires it up.

// The handler's future nests the SDK's request futures deeply (each call paced by a token
// bucket adds a level); computing its layout needs more than the default 128.
#![recursion_limit = "256"]

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
    run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        lambda::interruption_handler(&aws, &config, event)
    }))
    .await
}
