//! Errors of the AWS adapter. The source is kept, so callers can tell a throttle from a
//! missing permission.

use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use thiserror::Error;

/// Boxed source error of an SDK call.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What can go wrong talking to AWS or reading configuration.
#[derive(Debug, Error)]
pub enum AdapterError {
    /// An AWS API call failed.
    #[error("{operation} failed: {message}")]
    Aws {
        /// `service:Operation`.
        operation: &'static str,
        /// The service's error code, when it sent one (`RequestLimitExceeded`, …).
        code: Option<String>,
        /// A one-line message.
        message: String,
        /// The SDK error.
        #[source]
        source: BoxError,
    },
    /// Configuration from the environment is invalid.
    #[error(transparent)]
    Config(#[from] spotswap_core::ConfigError),
    /// `SPOTSWAP_PRICE_FILE` cannot be read.
    #[error("price file {path}: {problem}")]
    PriceFile {
        /// The path.
        path: String,
        /// What went wrong.
        problem: String,
    },
    /// The invocation's mutating-call budget is spent; nothing more is changed.
    #[error("mutating-call budget exhausted")]
    BudgetExhausted,
    /// An answer or request that cannot be used as it is.
    #[error("{0}")]
    Invalid(String),
    /// CreateFleet answered without an instance, for a reason other than capacity.
    #[error("{failure}")]
    Fleet {
        /// The failure, with the fleet's error code and kind.
        failure: spotswap_core::Failure,
    },
    /// An event could not be used.
    #[error(transparent)]
    Event(#[from] spotswap_core::EventError),
}

impl AdapterError {
    /// Wrap an SDK error, keeping its code and source.
    pub(crate) fn aws<E>(
        operation: &'static str,
        err: aws_smithy_runtime_api::client::result::SdkError<E, aws_smithy_runtime_api::http::Response>,
    ) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let code = err.code().map(str::to_string);
        let message = match (&code, err.message(), err.raw_response()) {
            (Some(c), Some(m), _) => format!("{c}: {m}"),
            (Some(c), None, _) => c.clone(),
            (None, _, Some(raw)) => format!("HTTP {} without an error code", raw.status().as_u16()),
            _ => aws_smithy_types::error::display::DisplayErrorContext(&err).to_string(),
        };
        Self::Aws {
            operation,
            code,
            message,
            source: Box::new(err),
        }
    }

    /// The error as the core's typed [`Failure`]: operation, code and kind. Errors of our own
    /// (configuration, an unusable answer) are of kind `Other`.
    pub fn failure(&self) -> spotswap_core::Failure {
        match self {
            Self::Aws {
                operation,
                code,
                message,
                ..
            } => spotswap_core::Failure::new(operation, code.as_deref(), message.clone()),
            Self::Fleet { failure } => failure.clone(),
            other => spotswap_core::Failure::new("spotswap", None, other.to_string())
                .kind(spotswap_core::ErrorKind::Other),
        }
    }

    /// The service error code, if any.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Aws { code, .. } => code.as_deref(),
            _ => None,
        }
    }
}
