//! The diagnostics reads on the SDK clients: DescribeScalingActivities, FilterLogEvents,
//! GetMetricData and ListStackResources.

use spotswap_core::explain::Activity;
use spotswap_core::Timestamp;

use super::{err, SdkPort};
use crate::port::{DiagnosticReads, LogEvent, Page, PortFuture};

impl DiagnosticReads for SdkPort {
    fn scaling_activities<'a>(
        &'a self,
        group: &'a str,
        token: Option<String>,
    ) -> PortFuture<'a, Page<Activity>> {
        Box::pin(async move {
            let resp = self
                .asg
                .describe_scaling_activities()
                .auto_scaling_group_name(group)
                .max_records(100)
                .set_next_token(token)
                .send()
                .await
                .map_err(err(crate::port::op::DESCRIBE_ACTIVITIES))?;
            let items = resp
                .activities()
                .iter()
                .map(|a| Activity {
                    group: a.auto_scaling_group_name().unwrap_or(group).to_string(),
                    description: a.description().unwrap_or("").to_string(),
                    cause: a.cause().unwrap_or("").to_string(),
                    status_message: a.status_message().unwrap_or("").to_string(),
                    status: a
                        .status_code()
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_default(),
                    start: a.start_time().map(|t| Timestamp::from_unix(t.secs())),
                })
                .collect();
            Ok(Page {
                items,
                next: resp.next_token().map(str::to_string),
            })
        })
    }

    fn log_events<'a>(
        &'a self,
        log_group: &'a str,
        start_ms: i64,
        token: Option<String>,
    ) -> PortFuture<'a, Page<LogEvent>> {
        Box::pin(async move {
            let resp = self
                .logs
                .filter_log_events()
                .log_group_name(log_group)
                .start_time(start_ms)
                .set_next_token(token)
                .send()
                .await
                .map_err(err(crate::port::cli_op::FILTER_LOG_EVENTS))?;
            let items = resp
                .events()
                .iter()
                .map(|e| LogEvent {
                    timestamp_ms: e.timestamp(),
                    message: e.message().unwrap_or("").to_string(),
                    stream: e.log_stream_name().unwrap_or("").to_string(),
                })
                .collect();
            Ok(Page {
                items,
                next: resp.next_token().map(str::to_string),
            })
        })
    }

    fn savings_series<'a>(
        &'a self,
        groups: &'a [String],
        start: Timestamp,
        end: Timestamp,
        period_secs: u32,
        token: Option<String>,
    ) -> PortFuture<'a, Page<crate::port::GroupSeries>> {
        Box::pin(savings_series(
            &self.cloudwatch,
            groups,
            start,
            end,
            period_secs,
            token,
        ))
    }

    fn stack_log_groups<'a>(
        &'a self,
        stack: &'a str,
        token: Option<String>,
    ) -> PortFuture<'a, Option<Page<String>>> {
        Box::pin(async move {
            let resp = match self
                .cloudformation
                .list_stack_resources()
                .stack_name(stack)
                .set_next_token(token)
                .send()
                .await
            {
                Ok(r) => r,
                Err(e) if super::cloudformation::no_such_stack(&e) => return Ok(None),
                Err(e) => return Err(err(crate::port::cli_op::LIST_STACK_RESOURCES)(e)),
            };
            let items = resp
                .stack_resource_summaries()
                .iter()
                .filter(|r| r.resource_type() == Some("AWS::Logs::LogGroup"))
                .filter_map(|r| r.physical_resource_id().map(str::to_string))
                .collect();
            Ok(Some(Page {
                items,
                next: resp.next_token().map(str::to_string),
            }))
        })
    }
}

/// The CloudWatch client (`spotswap report`'s GetMetricData only), counting into `calls`.
pub(super) fn cloudwatch(
    conf: &aws_config::SdkConfig,
    calls: &crate::clients::CallCounter,
) -> aws_sdk_cloudwatch::Client {
    aws_sdk_cloudwatch::Client::from_conf(
        aws_sdk_cloudwatch::config::Builder::from(conf)
            .interceptor(calls.clone())
            .build(),
    )
}

/// GetMetricData of `EstimatedHourlySavings` per group: query `g<N>` is `groups[N]`.
pub(super) async fn savings_series(
    cw: &aws_sdk_cloudwatch::Client,
    groups: &[String],
    start: Timestamp,
    end: Timestamp,
    period_secs: u32,
    token: Option<String>,
) -> Result<Page<crate::port::GroupSeries>, crate::AdapterError> {
    use aws_sdk_cloudwatch::primitives::DateTime;
    use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat};
    let queries = groups
        .iter()
        .enumerate()
        .map(|(n, g)| {
            MetricDataQuery::builder()
                .id(format!("g{n}"))
                .metric_stat(
                    MetricStat::builder()
                        .metric(
                            Metric::builder()
                                .namespace(spotswap_core::metrics::NAMESPACE)
                                .metric_name("EstimatedHourlySavings")
                                .dimensions(
                                    Dimension::builder().name("AutoScalingGroupName").value(g).build(),
                                )
                                .build(),
                        )
                        .period(i32::try_from(period_secs).unwrap_or(i32::MAX))
                        .stat("Average")
                        .build(),
                )
                .return_data(true)
                .build()
        })
        .collect();
    let resp = cw
        .get_metric_data()
        .set_metric_data_queries(Some(queries))
        .start_time(DateTime::from_secs(start.unix()))
        .end_time(DateTime::from_secs(end.unix()))
        .set_next_token(token)
        .send()
        .await
        .map_err(err(crate::port::cli_op::GET_METRIC_DATA))?;
    let items = resp
        .metric_data_results()
        .iter()
        .filter_map(|r| {
            let n: usize = r.id()?.strip_prefix('g')?.parse().ok()?;
            let points = r
                .timestamps()
                .iter()
                .zip(r.values())
                .map(|(t, v)| (Timestamp::from_unix(t.secs()), *v))
                .collect();
            Some((groups.get(n)?.clone(), points))
        })
        .collect();
    Ok(Page {
        items,
        next: resp.next_token().map(str::to_string),
    })
}
