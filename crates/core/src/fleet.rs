//! CreateFleet's answer, judged: the adapter hands over what the call returned (the instance
//! launched, if any, and the errors), the core says what it means. The rule lives here once, so
//! no adapter decides on an error code's spelling.

use serde::Serialize;

use crate::action::LaunchSpec;
use crate::model::Pool;
use crate::outcome::ErrorKind;

/// One entry of CreateFleet's `Errors`, as the adapter read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FleetError {
    /// `ErrorCode`, when sent.
    pub code: Option<String>,
    /// `ErrorMessage` (empty when none was sent).
    pub message: String,
    /// The pool of the override the error is about (its instance type in the original's AZ),
    /// when the error names one.
    pub pool: Option<Pool>,
}

/// What one CreateFleet call amounts to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "kebab-case")]
pub enum FleetVerdict {
    /// An instance was launched: the swap has started.
    Launched {
        /// The new instance.
        instance: String,
        /// Its pool, when the answer says.
        pool: Option<Pool>,
    },
    /// No spot capacity in the pools tried: the on-demand instance stays, and `mark` gets a
    /// no-capacity record ([`crate::records::no_capacity_tags`]).
    NoCapacity {
        /// The offered pools to mark, cheapest first.
        mark: Vec<Pool>,
    },
    /// An account limit: not a capacity shortage, so no pool is marked; further launches this
    /// cycle would fail the same way.
    Quota {
        /// The first quota error's code.
        code: String,
        /// Its message.
        message: String,
    },
    /// Anything else: a failure of the launch.
    Failed {
        /// `CreateFleet launched nothing`, then the errors as `code: message` pairs.
        message: String,
    },
}

/// Judge CreateFleet's answer to `spec`.
///
/// - A launched instance wins, whatever errors came with it (other overrides may have failed).
/// - Else, when every error is of kind [`ErrorKind::Capacity`]: [`FleetVerdict::NoCapacity`],
///   marking the offered pools that the errors name, or every offered pool when no error
///   names one of them (the fleet tried them all).
/// - Else, when any error is of kind [`ErrorKind::Quota`]: [`FleetVerdict::Quota`] with the
///   first one.
/// - Else [`FleetVerdict::Failed`]: no errors at all (`CreateFleet launched nothing`), or errors
///   of other kinds, listed as `code: message` (`?` for a missing code), `; `-separated.
pub fn judge_fleet(
    spec: &LaunchSpec,
    launched: Option<(String, Option<Pool>)>,
    errors: &[FleetError],
) -> FleetVerdict {
    if let Some((instance, pool)) = launched {
        return FleetVerdict::Launched { instance, pool };
    }
    let kind = |e: &FleetError| ErrorKind::of_code(e.code.as_deref());
    // An on-demand launch (restoring the floor) without capacity is a failure to retry, not a
    // spot pool to mark: the on-demand market is not what the marks steer.
    let spot = spec.purchase == crate::action::Purchase::Spot;
    if spot && !errors.is_empty() && errors.iter().all(|e| kind(e) == ErrorKind::Capacity) {
        let offered = spec.candidates.iter().map(|c| &c.pool);
        let named: Vec<Pool> = offered
            .clone()
            .filter(|p| errors.iter().any(|e| e.pool.as_ref() == Some(*p)))
            .cloned()
            .collect();
        let mark = if named.is_empty() {
            offered.cloned().collect()
        } else {
            named
        };
        return FleetVerdict::NoCapacity { mark };
    }
    if let Some(quota) = errors.iter().find(|e| kind(e) == ErrorKind::Quota) {
        return FleetVerdict::Quota {
            code: quota.code.clone().unwrap_or_default(),
            message: quota.message.clone(),
        };
    }
    let mut message = "CreateFleet launched nothing".to_string();
    if !errors.is_empty() {
        let pairs: Vec<String> = errors
            .iter()
            .map(|e| format!("{}: {}", e.code.as_deref().unwrap_or("?"), e.message))
            .collect();
        message = format!("{message}: {}", pairs.join("; "));
    }
    FleetVerdict::Failed { message }
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_on_demand_launch_without_capacity_fails_and_marks_nothing() {
        let mut spec = spec();
        spec.purchase = crate::action::Purchase::OnDemand;
        let errors = [FleetError {
            code: Some("InsufficientInstanceCapacity".into()),
            message: "none".into(),
            pool: None,
        }];
        assert!(matches!(
            judge_fleet(&spec, None, &errors),
            FleetVerdict::Failed { .. }
        ));
    }

    use super::*;
    use crate::action::Candidate;
    use crate::model::LaunchTemplateRef;

    const A: &str = "us-east-1a";

    fn spec() -> LaunchSpec {
        LaunchSpec {
            purchase: crate::action::Purchase::Spot,
            replaces: "i-od".into(),
            subnet_id: "subnet-a".into(),
            launch_template: LaunchTemplateRef {
                id: Some("lt-1".into()),
                name: None,
                version: "$Latest".into(),
            },
            candidates: ["m5a.large", "m6i.large", "m5.large"]
                .iter()
                .enumerate()
                .map(|(n, t)| Candidate {
                    pool: Pool::new(*t, A),
                    spot_price: 0.03 + n as f64 / 100.0,
                })
                .collect(),
            client_token: "spotswap-i-od-1".into(),
            tags: vec![],
        }
    }

    fn error(code: &str, message: &str, instance_type: Option<&str>) -> FleetError {
        FleetError {
            code: Some(code.into()),
            message: message.into(),
            pool: instance_type.map(|t| Pool::new(t, A)),
        }
    }

    #[test]
    fn a_launched_instance_wins_over_errors() {
        // GIVEN an instance launched in m6i.large while m5a.large had no capacity
        let errors = [error("InsufficientInstanceCapacity", "none", Some("m5a.large"))];
        let launched = Some(("i-new".to_string(), Some(Pool::new("m6i.large", A))));
        // WHEN the answer is judged
        let verdict = judge_fleet(&spec(), launched, &errors);
        // THEN the swap has started, in the pool the answer gave
        assert_eq!(
            verdict,
            FleetVerdict::Launched {
                instance: "i-new".into(),
                pool: Some(Pool::new("m6i.large", A)),
            }
        );
    }

    #[test]
    fn capacity_errors_naming_pools_mark_those_pools() {
        // GIVEN capacity errors for two of the three offered pools
        let errors = [
            error("InsufficientInstanceCapacity", "no m5.large", Some("m5.large")),
            error("UnfulfillableCapacity", "no m5a.large", Some("m5a.large")),
        ];
        // WHEN judged
        let verdict = judge_fleet(&spec(), None, &errors);
        // THEN exactly those two are marked, in the offer's order (cheapest first)
        assert_eq!(
            verdict,
            FleetVerdict::NoCapacity {
                mark: vec![Pool::new("m5a.large", A), Pool::new("m5.large", A)],
            }
        );
    }

    #[test]
    fn capacity_errors_naming_no_offered_pool_mark_every_offered_pool() {
        // GIVEN capacity errors that name no pool, and one naming a pool not offered
        for errors in [
            vec![error("InsufficientInstanceCapacity", "none", None)],
            vec![error("InsufficientCapacity", "none", Some("c5.large"))],
        ] {
            // WHEN judged
            let verdict = judge_fleet(&spec(), None, &errors);
            // THEN every offered pool is marked: the fleet tried them all
            let all: Vec<Pool> = spec().candidates.into_iter().map(|c| c.pool).collect();
            assert_eq!(verdict, FleetVerdict::NoCapacity { mark: all }, "{errors:?}");
        }
    }

    #[test]
    fn a_quota_error_is_not_a_capacity_shortage() {
        // GIVEN a capacity error and a spot-instance-count limit
        let errors = [
            error("InsufficientInstanceCapacity", "none", Some("m5.large")),
            error("MaxSpotInstanceCountExceeded", "limit of 20", None),
        ];
        // WHEN judged
        let verdict = judge_fleet(&spec(), None, &errors);
        // THEN it is the quota, and no pool is marked
        assert_eq!(
            verdict,
            FleetVerdict::Quota {
                code: "MaxSpotInstanceCountExceeded".into(),
                message: "limit of 20".into(),
            }
        );
    }

    #[test]
    fn other_errors_fail_listing_code_and_message() {
        // GIVEN a validation error next to a capacity one, and one without a code
        let errors = [
            error("InvalidLaunchTemplateId.NotFound", "lt-1 is gone", None),
            error("InsufficientInstanceCapacity", "none", Some("m5.large")),
            FleetError {
                code: None,
                message: "reset".into(),
                pool: None,
            },
        ];
        // WHEN judged
        let verdict = judge_fleet(&spec(), None, &errors);
        // THEN it failed, and the message carries every error
        assert_eq!(
            verdict,
            FleetVerdict::Failed {
                message: "CreateFleet launched nothing: InvalidLaunchTemplateId.NotFound: lt-1 is gone; \
                          InsufficientInstanceCapacity: none; ?: reset"
                    .into(),
            }
        );
    }

    #[test]
    fn nothing_launched_and_no_error_is_a_failure() {
        assert_eq!(
            judge_fleet(&spec(), None, &[]),
            FleetVerdict::Failed {
                message: "CreateFleet launched nothing".into(),
            }
        );
    }
}
