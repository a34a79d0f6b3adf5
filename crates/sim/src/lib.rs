//! spotswap-sim: a deterministic, discrete-time simulation of one region.
//!
//! Pure and synchronous like the core: a [`Scenario`] in, a [`Report`] out. The `spotswap`
//! policy is the real `spotswap-core` (the rebalancer's `plan_cycle`, the interruption
//! handler's deciders, the reaper's `plan_reap`), run against a simulated AWS ([`world`]).
//! The other policies are small models of documented behaviour ([`policies`]), so all five
//! can be compared over the same weather.
//!
//! # Layout
//!
//! - [`scenario`]: the scenario file (JSON or YAML), checked field by field.
//! - [`specs`]: the built-in instance-type table.
//! - [`world`]: instances, groups (desired, min/max, attach/detach, scale-in, their own
//!   replacement of lost instances) and the spot market per pool.
//! - [`engine`]: the step loop, the weather and the metrics.
//! - [`commitments`]: Reserved Instances and Savings Plans in the bill, as AWS charges them.
//! - [`asg`]: a group's own work: replacements, launches from its template, scale-in.
//! - [`spotswap`]: the core driven as the Lambdas drive it.
//! - [`views`]: the world read into the core's snapshot types.
//! - [`policies`]: the policy names and the other four policies.
//! - [`report`]: JSON, table and markdown output.
//! - [`plot`]: the SVG.

pub mod asg;
pub mod commitments;
pub mod engine;
pub mod plot;
pub mod policies;
pub mod report;
pub mod scenario;
pub mod specs;
pub mod spotswap;
pub mod views;
pub mod world;

pub use engine::{run_policy, PolicyResult, Sample};
pub use policies::PolicyName;
pub use report::{Format, Report};
pub use scenario::{Scenario, ScenarioError};

/// Run `policies` over `scenario`, each in its own world, in the order given.
pub fn run(scenario: &Scenario, policies: &[PolicyName]) -> Report {
    Report {
        scenario: scenario.name.clone(),
        policies: policies.iter().map(|&p| run_policy(scenario, p)).collect(),
    }
}
