//! Lambda: the orphan reaper, on a schedule. Terminates our strays, restores MaxSize and clears
//! expired records. The workflow lives in `spotswap-aws`; this file only wires it up.

// The served future nests the SDK's request futures deeply; its layout needs more than the
// default recursion limit of 128.
#![recursion_limit = "256"]

// One thread: the work is waiting on AWS, a 128 MB Lambda has a fraction of a vCPU, and one
// malloc arena instead of one per worker keeps peak RSS down.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    spotswap_aws::lambda::serve(spotswap_aws::lambda::orphan_reaper).await
}
