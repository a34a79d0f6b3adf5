//! CloudWatch Embedded Metric Format lines: namespace `Spotswap`, dimension
//! `AutoScalingGroupName`.

use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::action::{Action, ActionKind, Reason};
use crate::outcome::Outcome;

/// The metric namespace.
pub const NAMESPACE: &str = "Spotswap";

/// One group's metrics for one invocation.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct GroupMetrics {
    /// The group (the dimension value).
    pub group: String,
    /// InService on-demand instances.
    pub on_demand_count: Option<u32>,
    /// InService spot instances.
    pub spot_count: Option<u32>,
    /// Launches that got spot capacity.
    pub swaps_started: u32,
    /// On-demand instances retired after their replacement was InService.
    pub swaps_completed: u32,
    /// Launches that found no spot capacity: the on-demand instance stayed.
    pub fallbacks: u32,
    /// Spot interruption warnings handled.
    pub interruptions: u32,
    /// Σ (on-demand − spot price) over the group's spot instances, USD/hour.
    pub estimated_hourly_savings: Option<f64>,
    /// Instances of ours the reaper terminated outside every group.
    pub orphans_reaped: u32,
    /// Each launch that got capacity: the pool it launched into and that pool's spot price
    /// (USD/hour), as the launch's action carries them. The adapter records a launch with the
    /// pool CreateFleet actually used, which may be any of its overrides. Written as the EMF
    /// properties `LaunchedPools` and `LaunchedSpotPrices` (searchable, not metrics: a pool is
    /// not a dimension).
    pub launched: Vec<(String, Option<f64>)>,
}

impl GroupMetrics {
    /// Metrics of `group`, all zero.
    pub fn new(group: &str) -> Self {
        Self {
            group: group.to_string(),
            ..Self::default()
        }
    }

    /// Count one action and its outcome: the one rule for what each metric counts, shared by
    /// the rebalancer, the interruption handler and the reaper.
    pub fn count(&mut self, action: &Action, outcome: &Outcome) {
        match (&action.kind, outcome) {
            (ActionKind::Launch(_), Outcome::Done(_)) => {
                self.swaps_started += 1;
                if let Some(pool) = &action.pool {
                    self.launched.push((pool.to_string(), action.spot_price));
                }
            }
            (ActionKind::Launch(_), Outcome::Fallback(_)) => self.fallbacks += 1,
            (ActionKind::Retire { .. }, Outcome::Done(_))
                if action.reason == Reason::ReplacementInService =>
            {
                self.swaps_completed += 1
            }
            (ActionKind::Detach { .. } | ActionKind::TerminateInGroup { .. }, Outcome::Done(_)) => {
                self.interruptions += 1
            }
            (ActionKind::Terminate { .. }, Outcome::Done(_)) if action.reason == Reason::Orphaned => {
                self.orphans_reaped += 1
            }
            _ => {}
        }
    }

    /// True when the invocation has something to report for the group.
    pub fn is_empty(&self) -> bool {
        self.on_demand_count.is_none()
            && self.spot_count.is_none()
            && self.estimated_hourly_savings.is_none()
            && self.swaps_started
                + self.swaps_completed
                + self.fallbacks
                + self.interruptions
                + self.orphans_reaped
                == 0
    }

    /// One EMF JSON line at `timestamp_ms`.
    pub fn emf_line(&self, timestamp_ms: i64) -> String {
        let mut values: Vec<(&str, &str, Value)> = vec![
            ("SwapsStarted", "Count", json!(self.swaps_started)),
            ("SwapsCompleted", "Count", json!(self.swaps_completed)),
            ("Fallbacks", "Count", json!(self.fallbacks)),
            ("Interruptions", "Count", json!(self.interruptions)),
        ];
        if self.orphans_reaped > 0 {
            values.push(("OrphansReaped", "Count", json!(self.orphans_reaped)));
        }
        if let Some(v) = self.on_demand_count {
            values.push(("OnDemandCount", "Count", json!(v)));
        }
        if let Some(v) = self.spot_count {
            values.push(("SpotCount", "Count", json!(v)));
        }
        if let Some(v) = self.estimated_hourly_savings {
            values.push((
                "EstimatedHourlySavings",
                "None",
                json!((v * 10_000.0).round() / 10_000.0),
            ));
        }
        let mut root = Map::new();
        root.insert(
            "_aws".into(),
            json!({
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": NAMESPACE,
                    "Dimensions": [["AutoScalingGroupName"]],
                    "Metrics": values.iter().map(|(n, u, _)| json!({"Name": n, "Unit": u})).collect::<Vec<_>>(),
                }],
            }),
        );
        root.insert("AutoScalingGroupName".into(), json!(self.group));
        if !self.launched.is_empty() {
            let (pools, prices): (Vec<_>, Vec<_>) = self.launched.iter().cloned().unzip();
            root.insert("LaunchedPools".into(), json!(pools));
            root.insert("LaunchedSpotPrices".into(), json!(prices));
        }
        for (name, _, v) in values {
            root.insert(name.into(), v);
        }
        Value::Object(root).to_string()
    }
}

/// The region's unused commitments as one EMF line at `timestamp_ms`, with no dimension (a
/// commitment belongs to no group): `CommitmentUnusedUnits` (RI normalized units) and
/// `CommitmentUnusedPerHour` (Savings Plan dollars per hour).
pub fn commitments_emf_line(summary: &crate::commitments::Summary, timestamp_ms: i64) -> String {
    json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [[]],
                "Metrics": [
                    {"Name": "CommitmentUnusedUnits", "Unit": "None"},
                    {"Name": "CommitmentUnusedPerHour", "Unit": "None"},
                ],
            }],
        },
        "CommitmentUnusedUnits": summary.unused_units(),
        "CommitmentUnusedPerHour": (summary.unused_per_hour() * 10_000.0).round() / 10_000.0,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emf_line_declares_every_value_it_carries() {
        // GIVEN a group with counts and savings
        let m = GroupMetrics {
            on_demand_count: Some(2),
            spot_count: Some(3),
            swaps_started: 1,
            estimated_hourly_savings: Some(0.12345),
            ..GroupMetrics::new("web")
        };
        // WHEN it is written as EMF
        let v: Value = serde_json::from_str(&m.emf_line(1_767_225_600_000)).unwrap();
        // THEN the directive names the namespace and dimension, and every metric has a value
        let d = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(d["Namespace"], "Spotswap");
        assert_eq!(d["Dimensions"], json!([["AutoScalingGroupName"]]));
        assert_eq!(v["AutoScalingGroupName"], "web");
        let names: Vec<&str> = d["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap())
            .collect();
        for n in &names {
            assert!(v.get(*n).is_some(), "{n} declared without a value");
        }
        assert!(names.contains(&"OnDemandCount") && names.contains(&"EstimatedHourlySavings"));
        assert_eq!(v["EstimatedHourlySavings"], 0.1235);
        assert!(v.get("LaunchedPools").is_none(), "no launch, no pools");
    }

    #[test]
    fn a_launch_carries_its_pool_and_price_into_the_emf_line() {
        // GIVEN a launch recorded with the pool it launched into
        let mut m = GroupMetrics::new("web");
        let launch = crate::testkit::Fleet::new()
            .desired(1)
            .on_demand("i-od1", crate::testkit::A)
            .plan()
            .actions
            .into_iter()
            .find(|a| matches!(a.kind, ActionKind::Launch(_)))
            .expect("a launch")
            .pool(crate::model::Pool::new("m6i.large", crate::testkit::A));
        let launch = Action {
            spot_price: Some(0.031),
            ..launch
        };
        m.count(&launch, &Outcome::Done(Some("i-new".into())));
        // WHEN it is written as EMF THEN the line names the pool and its price, as properties
        let v: Value = serde_json::from_str(&m.emf_line(0)).unwrap();
        assert_eq!(v["SwapsStarted"], 1);
        assert_eq!(v["LaunchedPools"], json!(["m6i.large/us-east-1a"]));
        assert_eq!(v["LaunchedSpotPrices"], json!([0.031]));
        let declared = v["_aws"]["CloudWatchMetrics"][0]["Metrics"].to_string();
        assert!(
            !declared.contains("Launched"),
            "properties, not metrics: {declared}"
        );
    }
}
