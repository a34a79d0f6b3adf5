//! What happened to an action once the adapter tried it, typed end to end: the reason a step
//! was not attempted is a [`Reason`], and a failure keeps the AWS error code and its
//! [`ErrorKind`], so no caller reads AWS again (or parses a message) to learn what went wrong.

use std::fmt;

use serde::Serialize;

use crate::action::Reason;
use crate::model::Pool;

/// What kind of failure an AWS error is, from its code. The executor and the workflows decide
/// on the kind, never on the code's spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    /// The request rate was exceeded (`RequestLimitExceeded`, `Throttling`, …): try later.
    Throttle,
    /// No capacity for the request (`InsufficientInstanceCapacity`, …).
    Capacity,
    /// An account limit (`MaxSpotInstanceCountExceeded`, `VcpuLimitExceeded`, …): more
    /// requests fail the same way until the limit is raised or usage falls.
    Quota,
    /// The request is not valid as sent (`ValidationError`, `InvalidParameterValue`, …).
    Validation,
    /// Someone else changed the resource first: the step is already done, or no longer wanted.
    LostRace,
    /// The role may not do this (`AccessDenied`, `UnauthorizedOperation`, …).
    AccessDenied,
    /// The resource does not exist (`InvalidInstanceID.NotFound`, …).
    NotFound,
    /// A server-side or network failure that a later attempt may not meet.
    Transient,
    /// Anything else.
    Other,
}

/// Error codes meaning "no capacity for this request".
pub const CAPACITY_CODES: [&str; 4] = [
    "InsufficientInstanceCapacity",
    "InsufficientCapacity",
    "UnfulfillableCapacity",
    "SpotMaxPriceTooLow",
];

/// Error codes of account limits.
pub const QUOTA_CODES: [&str; 5] = [
    "MaxSpotInstanceCountExceeded",
    "VcpuLimitExceeded",
    "InstanceLimitExceeded",
    "MaxSpotFleetRequestCountExceeded",
    "LimitExceeded",
];

const THROTTLE_CODES: [&str; 7] = [
    "RequestLimitExceeded",
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestThrottled",
    "SlowDown",
];

const ACCESS_CODES: [&str; 6] = [
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "UnauthorizedException",
    "AuthFailure",
    "InvalidClientTokenId",
];

const TRANSIENT_CODES: [&str; 6] = [
    "InternalError",
    "InternalFailure",
    "ServiceUnavailable",
    "Unavailable",
    "ServerInternal",
    "RequestTimeout",
];

impl ErrorKind {
    /// The kind of an AWS error code; `None` (no code: a network error or an HTTP status
    /// without a body) is transient.
    pub fn of_code(code: Option<&str>) -> ErrorKind {
        let Some(code) = code else {
            return ErrorKind::Transient;
        };
        if THROTTLE_CODES.contains(&code) {
            ErrorKind::Throttle
        } else if CAPACITY_CODES.contains(&code) {
            ErrorKind::Capacity
        } else if QUOTA_CODES.contains(&code) {
            ErrorKind::Quota
        } else if ACCESS_CODES.contains(&code) {
            ErrorKind::AccessDenied
        } else if TRANSIENT_CODES.contains(&code) {
            ErrorKind::Transient
        } else if code.ends_with(".NotFound") || code.ends_with("NotFound") {
            ErrorKind::NotFound
        } else if code.starts_with("Invalid") || code == "ValidationError" || code == "MissingParameter" {
            ErrorKind::Validation
        } else if matches!(
            code,
            "IdempotentParameterMismatch" | "ResourceInUse" | "VolumeInUse"
        ) {
            ErrorKind::LostRace
        } else {
            ErrorKind::Other
        }
    }

    /// The kebab-case name the logs print.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Throttle => "throttle",
            ErrorKind::Capacity => "capacity",
            ErrorKind::Quota => "quota",
            ErrorKind::Validation => "validation",
            ErrorKind::LostRace => "lost-race",
            ErrorKind::AccessDenied => "access-denied",
            ErrorKind::NotFound => "not-found",
            ErrorKind::Transient => "transient",
            ErrorKind::Other => "other",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A failed AWS call, as the adapter saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// `service:Operation`.
    pub operation: String,
    /// The service's error code, when it sent one.
    pub code: Option<String>,
    /// What kind of failure it is.
    pub kind: ErrorKind,
    /// A one-line message.
    pub message: String,
}

impl Failure {
    /// A failure of `operation` with `code`, its kind read from the code.
    pub fn new(operation: &str, code: Option<&str>, message: impl Into<String>) -> Self {
        Self {
            operation: operation.to_string(),
            code: code.map(str::to_string),
            kind: ErrorKind::of_code(code),
            message: message.into(),
        }
    }

    /// The same failure, of another kind (a workflow that learned more, e.g. a lost race).
    pub fn kind(mut self, kind: ErrorKind) -> Self {
        self.kind = kind;
        self
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed ({}): {}", self.operation, self.kind, self.message)
    }
}

/// What happened to one action.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "outcome", content = "detail")]
pub enum Outcome {
    /// Done. For a launch, the new instance id.
    Done(Option<String>),
    /// Not done: dry run.
    DryRun,
    /// Not needed any more (e.g. a launch found already made by a concurrent run).
    AlreadyDone(String),
    /// No spot capacity in any candidate pool: the on-demand instance stays. The pools tried.
    Fallback(Vec<Pool>),
    /// Not attempted, and why: an earlier step of the same group failed
    /// ([`Reason::EarlierStepFailed`]), the budget ran out, the time for launches is up, …
    NotAttempted(Reason),
    /// Failed, with the AWS error.
    Failed(Failure),
}

impl Outcome {
    /// The kebab-case name the logs print in `outcome`.
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::Done(_) => "done",
            Outcome::DryRun => "dry-run",
            Outcome::AlreadyDone(_) => "already-done",
            Outcome::Fallback(_) => "fallback",
            Outcome::NotAttempted(_) => "not-attempted",
            Outcome::Failed(_) => "failed",
        }
    }

    /// Done, or (dry run) would have been.
    pub fn succeeded(&self) -> bool {
        matches!(self, Outcome::Done(_) | Outcome::DryRun)
    }

    /// The detail the log line carries: the launched id, the pools, the reason, the error.
    pub fn detail(&self) -> String {
        match self {
            Outcome::Done(id) => id.clone().unwrap_or_default(),
            Outcome::DryRun => String::new(),
            Outcome::AlreadyDone(d) => d.clone(),
            Outcome::Fallback(pools) => pools
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(","),
            Outcome::NotAttempted(r) => r.code().to_string(),
            Outcome::Failed(f) => f.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_fall_into_their_kinds() {
        assert_eq!(
            ErrorKind::of_code(Some("RequestLimitExceeded")),
            ErrorKind::Throttle
        );
        assert_eq!(ErrorKind::of_code(Some("Throttling")), ErrorKind::Throttle);
        assert_eq!(
            ErrorKind::of_code(Some("InsufficientInstanceCapacity")),
            ErrorKind::Capacity
        );
        // A quota is not a capacity shortage: marking pools would not help.
        assert_eq!(
            ErrorKind::of_code(Some("MaxSpotInstanceCountExceeded")),
            ErrorKind::Quota
        );
        assert_eq!(ErrorKind::of_code(Some("ValidationError")), ErrorKind::Validation);
        assert_eq!(
            ErrorKind::of_code(Some("InvalidParameterValue")),
            ErrorKind::Validation
        );
        assert_eq!(
            ErrorKind::of_code(Some("InvalidInstanceID.NotFound")),
            ErrorKind::NotFound
        );
        assert_eq!(
            ErrorKind::of_code(Some("UnauthorizedOperation")),
            ErrorKind::AccessDenied
        );
        assert_eq!(ErrorKind::of_code(Some("InternalError")), ErrorKind::Transient);
        assert_eq!(ErrorKind::of_code(None), ErrorKind::Transient);
        assert_eq!(
            ErrorKind::of_code(Some("IdempotentParameterMismatch")),
            ErrorKind::LostRace
        );
        assert_eq!(ErrorKind::of_code(Some("Whatever")), ErrorKind::Other);
    }

    #[test]
    fn outcomes_serialize_with_their_detail() {
        let o = Outcome::NotAttempted(Reason::OutOfTime);
        assert_eq!(
            serde_json::to_value(&o).unwrap(),
            serde_json::json!({"outcome": "not-attempted", "detail": "OutOfTime"})
        );
        let f = Outcome::Failed(Failure::new(
            "ec2:CreateTags",
            Some("Throttling"),
            "Rate exceeded",
        ));
        let v = serde_json::to_value(&f).unwrap();
        assert_eq!(v["detail"]["kind"], "throttle");
        assert_eq!(v["detail"]["code"], "Throttling");
        assert_eq!(f.detail(), "ec2:CreateTags failed (throttle): Rate exceeded");
        assert_eq!(
            Outcome::Fallback(vec![Pool::new("m5.large", "a")]).detail(),
            "m5.large/a"
        );
    }
}
