//! The account's Reserved Instances and Savings Plans, read once per warm container (kept for
//! [`COMMITMENTS_TTL`]) like the instance-type specs.
//!
//! Failing to read them never fails a cycle: AccessDenied (a role without the grants),
//! throttling or an outage gives one WARN line, reason `CommitmentsUnknown`, and the cycle
//! plans as without commitments, except in groups tagged `spotswap:commitments=strict`.

use spotswap_core::commitments::{Commitments, PlanKind, SavingsPlan};
use tracing::{debug, warn};

use crate::cache::{Cached, COMMITMENTS_TTL};
use crate::port::op;
use crate::{AdapterError, Aws};

/// The commitments, from the cache or AWS; `None` when they could not be read.
pub(crate) async fn read(aws: &Aws) -> Option<Commitments> {
    let mut slot = aws.cache.commitments.lock().await;
    if let Some(c) = slot.as_ref().filter(|c| c.fresh(COMMITMENTS_TTL)) {
        return Some(c.value.clone());
    }
    match fetch(aws).await {
        Ok(c) => {
            debug!(
                reserved = c.reserved.len(),
                savings_plans = c.savings_plans.len(),
                "commitments read"
            );
            *slot = Some(Cached {
                at: std::time::Instant::now(),
                value: c.clone(),
            });
            Some(c)
        }
        Err(e) => {
            warn!(
                reason = "CommitmentsUnknown",
                error = %e,
                error_code = e.code().unwrap_or(""),
                "commitments unknown; proceeding without them (groups tagged spotswap:commitments=strict start no swap)"
            );
            None
        }
    }
}

async fn fetch(aws: &Aws) -> Result<Commitments, AdapterError> {
    let reserved = aws
        .paced(op::DESCRIBE_RESERVED, aws.port().reserved_instances())
        .await?;
    let mut headers = Vec::new();
    aws.each_page(
        op::DESCRIBE_SAVINGS_PLANS,
        |t| aws.port().savings_plans(t),
        |h| headers.push(h),
    )
    .await?;
    let region = aws.region();
    let mut savings_plans = Vec::new();
    // An EC2 Instance plan of another region covers nothing here.
    for h in headers
        .into_iter()
        .filter(|h| h.family.is_none() || h.region.as_deref().is_none_or(|r| r == region))
    {
        let mut rates = Vec::new();
        aws.each_page(
            op::DESCRIBE_SAVINGS_PLAN_RATES,
            |t| aws.port().savings_plan_rates(&h.id, region, t),
            |r| rates.push(r),
        )
        .await?;
        rates.sort();
        savings_plans.push(SavingsPlan {
            kind: match h.family {
                Some(family) => PlanKind::Ec2Instance { family },
                None => PlanKind::Compute,
            },
            id: h.id,
            commitment_micros: h.commitment_micros,
            start: h.start,
            end: h.end,
            rates,
        });
    }
    Ok(Commitments {
        reserved,
        savings_plans,
    })
}
