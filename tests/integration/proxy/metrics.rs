//! The proxy's CloudWatch GetMetricData, through the real `aws-sdk-cloudwatch` client (which
//! speaks rpcv2Cbor; moto 5.2 cannot parse it): the datapoints a test puts come back
//! aggregated per period from StartTime, newest first, across pages.

use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat};
use spotswap_tests::fleet::sdk_config;
use spotswap_tests::proxy::Proxy;

const REGION: &str = "eu-north-1";

fn query(id: &str, group: &str, stat: &str) -> MetricDataQuery {
    MetricDataQuery::builder()
        .id(id)
        .metric_stat(
            MetricStat::builder()
                .metric(
                    Metric::builder()
                        .namespace("Spotswap")
                        .metric_name("EstimatedHourlySavings")
                        .dimensions(
                            Dimension::builder()
                                .name("AutoScalingGroupName")
                                .value(group)
                                .build(),
                        )
                        .build(),
                )
                .period(300)
                .stat(stat)
                .build(),
        )
        .return_data(true)
        .build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_metric_data_answers_in_cbor_per_period_and_across_pages() {
    // GIVEN datapoints of two groups (two per 5-minute period for "a", one off-window), and
    // pages of 3 datapoints
    let proxy = Proxy::from_env().await.expect("proxy");
    let start = 1_800_000_000i64;
    for (n, v) in [
        (0, 1.0),
        (60, 3.0),
        (300, 5.0),
        (600, 7.0),
        (900, 9.0),
        (1200, 11.0),
    ] {
        proxy.put_metric(
            REGION,
            "Spotswap",
            "EstimatedHourlySavings",
            &[("AutoScalingGroupName", "a")],
            start + n,
            v,
        );
    }
    proxy.put_metric(
        REGION,
        "Spotswap",
        "EstimatedHourlySavings",
        &[("AutoScalingGroupName", "b")],
        start + 30,
        2.0,
    );
    proxy.put_metric(
        REGION,
        "Spotswap",
        "EstimatedHourlySavings",
        &[("AutoScalingGroupName", "a")],
        start - 30,
        99.0,
    );
    proxy.set_metric_page_size(Some(3));
    let cw = aws_sdk_cloudwatch::Client::new(&sdk_config(REGION, &proxy.url()).await);

    // WHEN both are asked for, every page
    let mut pages = cw
        .get_metric_data()
        .metric_data_queries(query("qa", "a", "Average"))
        .metric_data_queries(query("qb", "b", "Maximum"))
        .start_time(DateTime::from_secs(start))
        .end_time(DateTime::from_secs(start + 1200))
        .into_paginator()
        .send();
    let mut got: Vec<(String, i64, f64)> = Vec::new();
    let mut calls = 0;
    while let Some(page) = pages.next().await {
        let page = page.expect("GetMetricData through the proxy");
        calls += 1;
        for r in page.metric_data_results() {
            for (t, v) in r.timestamps().iter().zip(r.values()) {
                got.push((r.id().unwrap_or_default().to_string(), t.secs(), *v));
            }
        }
    }
    // THEN "a" is averaged per period from StartTime, newest first, without the point before
    // StartTime nor the one at EndTime; "b" is its own; and it took two pages of 3
    assert_eq!(
        got,
        vec![
            ("qa".to_string(), start + 900, 9.0),
            ("qa".to_string(), start + 600, 7.0),
            ("qa".to_string(), start + 300, 5.0),
            ("qa".to_string(), start, 2.0),
            ("qb".to_string(), start, 2.0),
        ]
    );
    assert_eq!(calls, 2);
    assert_eq!(proxy.call_count("monitoring:GetMetricData"), 2);
}
