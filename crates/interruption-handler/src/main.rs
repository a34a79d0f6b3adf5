//! Lambda: the interruption handler, on `EC2 Spot Instance Interruption Warning` and
//! `EC2 Instance Rebalance Recommendation`. The workflow lives in `spotswap-aws`; this file
//! only wires it up.

// The handler's future nests the SDK's request futures deeply (each call paced by a token
// bucket adds a level); computing its layout needs more than the default 128.
#![recursion_limit = "256"]

// One thread: the work is waiting on AWS, a 128 MB Lambda has a fraction of a vCPU, and one
// malloc arena instead of one per worker keeps peak RSS down.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    spotswap_aws::lambda::serve(spotswap_aws::lambda::interruption_handler).await
}
