//! The account's commitments: DescribeReservedInstances (EC2) and, from the Savings Plans
//! service, DescribeSavingsPlans and DescribeSavingsPlanRates. Read-only, and the only calls
//! to the Savings Plans service spotswap makes.

use aws_config::SdkConfig;
use aws_sdk_ec2::types::Filter;
use aws_sdk_savingsplans::types::{
    SavingsPlanRateFilter, SavingsPlanRateFilterName, SavingsPlanRatePropertyKey, SavingsPlanState,
    SavingsPlanType,
};
use spotswap_core::commitments::{micros, platform, tenancy, PlanRate, ReservedInstances};
use spotswap_core::Timestamp;

use super::err;
use crate::clients::CallCounter;
use crate::port::{op, Page, PlanHeader};
use crate::AdapterError;

/// Most plans, and most rates, in one page.
const PAGE: i32 = 1000;

/// One attempt: commitments are cached once read and have a fallback (plan without them),
/// so a retry loop with back-off on a throttle or an outage would only slow the cycle.
fn one_attempt() -> aws_config::retry::RetryConfig {
    aws_config::retry::RetryConfig::standard().with_max_attempts(1)
}

/// The Savings Plans client, counting into `calls` like every other.
pub(super) fn client(conf: &SdkConfig, calls: &CallCounter) -> aws_sdk_savingsplans::Client {
    let conf = aws_sdk_savingsplans::config::Builder::from(conf)
        .retry_config(one_attempt())
        .interceptor(calls.clone())
        .build();
    aws_sdk_savingsplans::Client::from_conf(conf)
}

fn time(t: Option<&aws_smithy_types::DateTime>) -> Timestamp {
    Timestamp::from_unix(t.map_or(0, |t| t.secs()))
}

/// Active Reserved Instances of the region (DescribeReservedInstances is not paginated).
pub(super) async fn reserved_instances(
    ec2: &aws_sdk_ec2::Client,
) -> Result<Vec<ReservedInstances>, AdapterError> {
    let resp = ec2
        .describe_reserved_instances()
        .filters(Filter::builder().name("state").values("active").build())
        .customize()
        .config_override(aws_sdk_ec2::config::Builder::default().retry_config(one_attempt()))
        .send()
        .await
        .map_err(err(op::DESCRIBE_RESERVED))?;
    Ok(resp
        .reserved_instances()
        .iter()
        .filter_map(|r| {
            let zonal = r.scope().is_some_and(|s| s.as_str() == "Availability Zone");
            Some(ReservedInstances {
                id: r.reserved_instances_id()?.to_string(),
                instance_type: r.instance_type()?.as_str().to_string(),
                az: zonal.then(|| r.availability_zone().map(str::to_string)).flatten(),
                count: u32::try_from(r.instance_count().unwrap_or(0)).unwrap_or(0),
                platform: platform(r.product_description().map_or("", |p| p.as_str())),
                tenancy: tenancy(r.instance_tenancy().map_or("", |t| t.as_str())),
                start: time(r.start()),
                end: time(r.end()),
            })
        })
        .collect())
}

/// One page of the account's active Savings Plans.
pub(super) async fn savings_plans(
    sp: &aws_sdk_savingsplans::Client,
    token: Option<String>,
) -> Result<Page<PlanHeader>, AdapterError> {
    let resp = sp
        .describe_savings_plans()
        .states(SavingsPlanState::Active)
        .max_results(PAGE)
        .set_next_token(token)
        .send()
        .await
        .map_err(err(op::DESCRIBE_SAVINGS_PLANS))?;
    let stamp = |s: Option<&str>| {
        s.and_then(Timestamp::parse_rfc3339)
            .unwrap_or(Timestamp::from_unix(0))
    };
    let items = resp
        .savings_plans()
        .iter()
        .filter_map(|p| {
            let ec2_instance = match p.savings_plan_type()? {
                SavingsPlanType::Compute => false,
                SavingsPlanType::Ec2Instance => true,
                // SageMaker and Database plans cover no EC2 usage.
                _ => return None,
            };
            Some(PlanHeader {
                id: p.savings_plan_id()?.to_string(),
                family: ec2_instance.then(|| p.ec2_instance_family().unwrap_or_default().to_string()),
                region: p.region().map(str::to_string),
                commitment_micros: micros(p.commitment()?.trim().parse().ok()?)?,
                start: stamp(p.start()),
                end: stamp(p.end()),
            })
        })
        .collect();
    Ok(Page {
        items,
        next: resp.next_token().map(str::to_string),
    })
}

/// One page of a plan's EC2 rates in `region`, per instance-hour.
pub(super) async fn rates(
    sp: &aws_sdk_savingsplans::Client,
    plan: &str,
    region: &str,
    token: Option<String>,
) -> Result<Page<PlanRate>, AdapterError> {
    let filter = |name: SavingsPlanRateFilterName, value: &str| {
        SavingsPlanRateFilter::builder().name(name).values(value).build()
    };
    let resp = sp
        .describe_savings_plan_rates()
        .savings_plan_id(plan)
        .filters(filter(SavingsPlanRateFilterName::Region, region))
        .filters(filter(SavingsPlanRateFilterName::ProductType, "EC2"))
        .max_results(PAGE)
        .set_next_token(token)
        .send()
        .await
        .map_err(err(op::DESCRIBE_SAVINGS_PLAN_RATES))?;
    let items = resp
        .search_results()
        .iter()
        .filter(|r| r.unit().is_some_and(|u| u.as_str() == "Hrs"))
        .filter_map(|r| {
            let prop = |k: SavingsPlanRatePropertyKey| {
                r.properties()
                    .iter()
                    .find(|p| p.name() == Some(&k))
                    .and_then(|p| p.value())
            };
            Some(PlanRate {
                instance_type: prop(SavingsPlanRatePropertyKey::InstanceType)?.to_string(),
                platform: platform(prop(SavingsPlanRatePropertyKey::ProductDescription)?),
                tenancy: tenancy(prop(SavingsPlanRatePropertyKey::Tenancy).unwrap_or("shared")),
                rate_micros: micros(r.rate()?.trim().parse().ok()?)?,
            })
        })
        .collect();
    Ok(Page {
        items,
        next: resp.next_token().map(str::to_string),
    })
}
