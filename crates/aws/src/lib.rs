//! spotswap-aws: the only spotswap code that talks to AWS.
//!
//! It reads a region into `spotswap-core` data, asks the core what to do, applies the actions
//! idempotently, and reports: one JSON log line per decision, EMF metrics, and our own
//! EventBridge events.
//!
//! # Layout
//!
//! - [`clients`]: the SDK clients, built once, with a per-operation call counter.
//! - [`config`]: the typed configuration, read once from the environment.
//! - [`snapshot`]: batched, paginated reads into plain data.
//! - [`execute`]: the idempotent executor and its mutation budget.
//! - [`workflow`]: the rebalancer's cycle.
//! - [`reaper`]: the orphan reaper's pass.
//! - [`interruption`]: the interruption handler: spot warnings and rebalance recommendations.
//! - [`lambda`]: the Lambda handlers behind each thin `main.rs`.
//! - [`report`]: decision log lines, EMF metrics, our events and the summary.
//! - [`throttle`]: client-side token buckets per API class (`SPOTSWAP_API_RATES`).

pub mod cache;
pub mod clients;
pub mod config;
mod error;
pub mod execute;
pub mod interruption;
pub mod lambda;
mod prices;
pub mod reaper;
pub mod report;
pub mod snapshot;
pub mod throttle;
pub mod workflow;

pub use clients::Aws;
pub use config::Config;
pub use error::AdapterError;
pub use execute::{Executor, MutationBudget, Outcome};
pub use interruption::{handle_event, EventOptions, EventReport};
pub use reaper::reap;
pub use report::CycleReport;
pub use throttle::{ApiLimiter, ApiRates};
pub use workflow::{rebalance, CycleOptions};
