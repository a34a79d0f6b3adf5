//! Errors of the pure core.

use thiserror::Error;

/// A configuration value that cannot be used. Names the tag (or variable) and the value.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    /// A tag or environment variable whose value is not acceptable.
    #[error("invalid value {value:?} for {key}: {problem}")]
    InvalidValue {
        /// The tag key or environment variable name.
        key: String,
        /// The value as found.
        value: String,
        /// What is wrong with it.
        problem: String,
    },
}

impl ConfigError {
    pub(crate) fn invalid(key: &str, value: &str, problem: impl Into<String>) -> Self {
        Self::InvalidValue {
            key: key.to_string(),
            value: value.to_string(),
            problem: problem.into(),
        }
    }

    /// The tag or variable at fault.
    pub fn key(&self) -> &str {
        match self {
            Self::InvalidValue { key, .. } => key,
        }
    }

    /// What is wrong with the value.
    pub fn problem(&self) -> &str {
        match self {
            Self::InvalidValue { problem, .. } => problem,
        }
    }

    /// The offending value.
    pub fn value(&self) -> &str {
        match self {
            Self::InvalidValue { value, .. } => value,
        }
    }
}

/// An event that is not one we can act on.
#[derive(Debug, Error)]
pub enum EventError {
    /// Not a JSON EventBridge envelope at all.
    #[error("not an EventBridge event: {0}")]
    NotAnEvent(#[source] serde_json::Error),
    /// One of our detail-types, with a detail that does not fit its shape.
    #[error("malformed {detail_type:?} detail: {source}")]
    MalformedDetail {
        /// The event's detail-type.
        detail_type: String,
        /// What serde found wrong.
        #[source]
        source: serde_json::Error,
    },
}
