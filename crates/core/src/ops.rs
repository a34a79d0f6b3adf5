//! AWS operations by class: what only reads, what changes something, what launches, and which
//! client-side token bucket paces it. One place, used by the adapter's throttle and call
//! counter, the test proxy's throttling and counts, and the template's IAM test.
//!
//! Operations are named as IAM names them, `service:Operation` (`ec2:CreateFleet`,
//! `autoscaling:AttachInstances`); matching is case-insensitive, as IAM's is.

use std::fmt;

use serde::Serialize;

/// What an operation does, as far as pacing, counting and least privilege care.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OpClass {
    /// Reads only: `Describe*`, `Get*`, `List*`, `Search*` and `logs:FilterLogEvents`, except the
    /// [`SENSITIVE_READS`].
    Read,
    /// Changes something (a sensitive read counts here: it needs a scoped grant).
    Mutating,
    /// Starts instances: `ec2:RunInstances`, `ec2:CreateFleet`. Mutating, with a bucket of its
    /// own.
    Launch,
}

/// Reads that disclose secrets or data: classed as mutating, so that IAM must scope them.
pub const SENSITIVE_READS: [&str; 9] = [
    "ec2:getpassworddata",
    "ec2:getconsoleoutput",
    "ec2:getconsolescreenshot",
    "lambda:getfunction",
    "s3:getobject",
    "secretsmanager:getsecretvalue",
    "ssm:getparameter",
    "ssm:getparameters",
    "ssm:getparametersbypath",
];

/// Operations that launch instances.
const LAUNCHES: [&str; 2] = ["ec2:runinstances", "ec2:createfleet"];

/// Name prefixes of operations that only read.
const READ_PREFIXES: [&str; 4] = ["describe", "get", "list", "search"];

/// Reads whose names carry none of [`READ_PREFIXES`].
const OTHER_READS: [&str; 1] = ["logs:filterlogevents"];

/// The class of `operation` (`service:Operation`). A name without a service is judged by its
/// operation part alone.
pub fn class(operation: &str) -> OpClass {
    let lower = operation.to_ascii_lowercase();
    if LAUNCHES.contains(&lower.as_str()) {
        return OpClass::Launch;
    }
    let name = lower.rsplit(':').next().unwrap_or(&lower);
    let read = READ_PREFIXES.iter().any(|p| name.starts_with(p)) || OTHER_READS.contains(&lower.as_str());
    if read && !SENSITIVE_READS.contains(&lower.as_str()) {
        OpClass::Read
    } else {
        OpClass::Mutating
    }
}

/// True when `operation` changes nothing.
pub fn is_read(operation: &str) -> bool {
    class(operation) == OpClass::Read
}

/// True when `operation` changes something (launches included).
pub fn is_mutating(operation: &str) -> bool {
    !is_read(operation)
}

/// The client-side token buckets (EC2's request-rate classes, and two for Auto Scaling).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Bucket {
    /// `ec2:RunInstances`, `ec2:CreateFleet`.
    Launch,
    /// Every other EC2 action that changes something.
    Ec2Mutating,
    /// EC2 reads.
    Ec2Describe,
    /// Auto Scaling actions that change something.
    AsgMutating,
    /// Auto Scaling reads.
    AsgDescribe,
}

impl Bucket {
    /// Every bucket, in a fixed order.
    pub const ALL: [Bucket; 5] = [
        Bucket::Launch,
        Bucket::Ec2Mutating,
        Bucket::Ec2Describe,
        Bucket::AsgMutating,
        Bucket::AsgDescribe,
    ];

    /// The name used in `SPOTSWAP_API_RATES`.
    pub fn name(self) -> &'static str {
        match self {
            Bucket::Launch => "launch",
            Bucket::Ec2Mutating => "ec2-mutating",
            Bucket::Ec2Describe => "ec2-describe",
            Bucket::AsgMutating => "asg-mutating",
            Bucket::AsgDescribe => "asg-describe",
        }
    }

    /// The bucket named `name` in `SPOTSWAP_API_RATES`.
    pub fn from_name(name: &str) -> Option<Bucket> {
        Bucket::ALL.into_iter().find(|b| b.name() == name)
    }

    /// The bucket that paces `operation`; `None` for services that are not paced (Pricing,
    /// EventBridge and the like: a call or two per invocation).
    pub fn of(operation: &str) -> Option<Bucket> {
        let (service, _) = operation.split_once(':')?;
        let class = class(operation);
        match (service.to_ascii_lowercase().as_str(), class) {
            ("ec2", OpClass::Launch) => Some(Bucket::Launch),
            ("ec2", OpClass::Read) => Some(Bucket::Ec2Describe),
            ("ec2", OpClass::Mutating) => Some(Bucket::Ec2Mutating),
            ("autoscaling", OpClass::Read) => Some(Bucket::AsgDescribe),
            ("autoscaling", _) => Some(Bucket::AsgMutating),
            _ => None,
        }
    }
}

impl fmt::Display for Bucket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_mutations_and_launches_are_told_apart() {
        for op in [
            "ec2:DescribeInstances",
            "autoscaling:DescribeAutoScalingGroups",
            "pricing:GetProducts",
            "autoscaling:GetPredictiveScalingForecast",
            "logs:FilterLogEvents",
            "ec2:GetInstanceTypesFromInstanceRequirements",
            "savingsplans:DescribeSavingsPlans",
            "cloudwatch:ListMetrics",
            "ec2:SearchTransitGatewayRoutes",
        ] {
            assert_eq!(class(op), OpClass::Read, "{op}");
        }
        assert_eq!(class("ec2:CreateFleet"), OpClass::Launch);
        assert_eq!(
            class("EC2:runinstances"),
            OpClass::Launch,
            "case-insensitive, as IAM"
        );
        assert!(is_mutating("ec2:CreateFleet"));
        for op in [
            "ec2:CreateTags",
            "autoscaling:AttachInstances",
            "events:PutEvents",
        ] {
            assert_eq!(class(op), OpClass::Mutating, "{op}");
        }
        // reads that disclose data need a scoped grant
        assert!(is_mutating("ec2:GetPasswordData"));
        assert!(is_mutating("secretsmanager:GetSecretValue"));
    }

    #[test]
    fn each_paced_operation_has_its_bucket() {
        assert_eq!(Bucket::of("ec2:CreateFleet"), Some(Bucket::Launch));
        assert_eq!(Bucket::of("ec2:RunInstances"), Some(Bucket::Launch));
        assert_eq!(Bucket::of("ec2:CreateTags"), Some(Bucket::Ec2Mutating));
        assert_eq!(Bucket::of("ec2:DescribeInstances"), Some(Bucket::Ec2Describe));
        assert_eq!(
            Bucket::of("autoscaling:AttachInstances"),
            Some(Bucket::AsgMutating)
        );
        assert_eq!(
            Bucket::of("autoscaling:DescribeAutoScalingGroups"),
            Some(Bucket::AsgDescribe)
        );
        assert_eq!(Bucket::of("pricing:GetProducts"), None);
        assert_eq!(Bucket::of("events:PutEvents"), None);
        assert_eq!(Bucket::of("nonsense"), None);
        for b in Bucket::ALL {
            assert_eq!(Bucket::from_name(b.name()), Some(b));
        }
    }
}
