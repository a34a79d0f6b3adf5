//! spotswap-core: the pure decisions of spotswap.
//!
//! Plain data in, actions with reasons out. No SDK types, no async, no I/O: the adapter
//! (`spotswap-aws`) reads AWS into [`model`] types, calls a planner here, and executes the
//! [`Action`]s it gets back.
//!
//! # Layout
//!
//! - [`model`]: snapshots of groups, instances and the market.
//! - [`policy`]: the tag schema parsed into a [`Policy`], and the risk floor.
//! - [`records`]: cooldown, no-capacity and shelter records kept in group tags.
//! - [`commitments`]: Reserved Instances and Savings Plans: EC2's billing order, and what a
//!   plan does to their coverage.
//! - [`candidates`]: diversified, price-ranked spot pools, and why others were turned down.
//! - [`carry`]: stateful groups: Elastic IPs and data volumes moved to the replacement, and
//!   the retire gate that waits for them.
//! - [`compat`]: whether a type can replace another: one rule per [`compat::Incompatibility`].
//! - [`compat_mode`]: `SPOTSWAP_COMPAT=autospotting`: AutoSpotting's filter and tags as
//!   aliases, its floor rule, whether it still acts on a group, and its orphans.
//! - [`plan`]: the rebalancer's cycle: the Launch → Attach → Retire stage machine.
//! - [`events`]: the interruption handler's events: parsing, and one decision module per kind.
//! - [`reap`]: the orphan reaper's pass: strays terminated, MaxSize restored, records cleared;
//!   [`ReapGate`], the one ordering rule while the pass runs.
//! - [`action`]: actions and skips.
//! - [`reason`]: every reason code, and where it is decided.
//! - [`explain`]: `spotswap explain`: decision lines, scaling activities and tags joined into
//!   the story of an instance or a group.
//! - [`fleet`]: CreateFleet's answer judged: launched, no capacity (pools to mark), quota,
//!   failed.
//! - [`launch_config`]: launch-configuration groups: the launch template made from the
//!   configuration, and when the reaper deletes it.
//! - [`metrics`]: CloudWatch EMF lines.
//! - [`outcome`]: what happened to an action: done, fallback, not attempted (a reason), failed
//!   (the AWS error code and its kind).
//! - [`ops`]: AWS operations by class (read, mutating, launch) and token bucket.
//! - [`tags`]: the FIXED tag names.
//! - `testkit` (feature `testkit`, and the core's own tests): fixture builders for tests and
//!   benches.
//! - [`time`]: UTC timestamps, RFC 3339 in and out.
//! - [`window`]: swap windows (`spotswap:schedule`) and pauses: when new swaps may start.

pub mod action;
pub mod batch;
pub mod candidates;
pub mod carry;
pub mod commitments;
pub mod compat;
pub mod compat_mode;
mod error;
pub mod events;
pub mod explain;
pub mod fleet;
pub mod launch_config;
pub mod metrics;
pub mod mixed;
pub mod model;
pub mod ops;
pub mod outcome;
pub mod plan;
pub mod policy;
pub mod reap;
pub mod reason;
pub mod records;
pub mod tags;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
pub mod time;
pub mod window;

pub use action::{Action, ActionKind, Candidate, LaunchSpec, Purchase, Reason, Skip};
pub use error::{ConfigError, EventError};
pub use fleet::{judge_fleet, FleetError, FleetVerdict};
pub use model::{
    AmiBootMode, Billing, BootMode, BootModes, GroupSnapshot, ImageNeeds, Instance, InstanceState,
    InstanceTypeSpec, LaunchSource, LaunchTemplateRef, Lifecycle, Market, Member, MemberState, Pool,
    PriceSource, RegionSnapshot, Support,
};
pub use outcome::{ErrorKind, Failure, Outcome};
pub use plan::{plan_cycle, plan_cycle_in, plan_group, Census, GroupPlan, Scope, Settings};
pub use policy::{Mode, OnRebalance, Policy};
pub use reap::{plan_reap, ReapGate, ReapPlan};
pub use time::Timestamp;
