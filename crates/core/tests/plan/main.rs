#![allow(clippy::unwrap_used)] // test helpers unwrap: a panic is the failure report
//! The rebalancer's planner, proved through spotswap-core's public API only.
//!
//! Every test builds a small fleet with [`Fleet`] and plans one cycle through `plan_cycle`,
//! the entry point the Lambda and the CLI use. Then it checks the plan. The proptest section
//! generates random groups, with swaps in every stage, and checks the invariants of
//! DESIGN.md §8 on every plan.
//!
//! # Layout
//!
//! - this file: the fixtures (plan helpers; the market, the [`Fleet`] builder and [`Stage`]
//!   come from `spotswap_core::testkit`);
//! - `choice.rs`: which on-demand instances a cycle swaps;
//! - `commitments.rs`: Reserved Instances and Savings Plans in the plan;
//! - `launch_spec.rs`: what a `Launch` asks CreateFleet for;
//! - `stage_machine.rs`: Launch → Attach → Retire, MaxSize, duplicates;
//! - `group_skips.rs`: groups passed over, and why;
//! - `pools.rs`: cooldown, no-capacity and the diversification cap;
//! - `review.rs`: why candidate types were turned down (the plan's review);
//! - `properties.rs`: generated groups and a converging fleet; `properties/check.rs`: the
//!   invariants every plan keeps.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use proptest::sample::Index;
use spotswap_core::plan::client_token;
use spotswap_core::policy::is_managed;
use spotswap_core::records::{cooldown_key, no_capacity_key};
use spotswap_core::testkit::{template, Fleet, Stage, A, AZS, B, C, GRACE_SECS, GROUP, NOW};
use spotswap_core::{
    plan_cycle, tags, ActionKind, GroupPlan, Instance, InstanceState, LaunchSource, LaunchSpec, Lifecycle,
    Member, MemberState, Mode, Policy, Pool, Reason, Settings, Timestamp,
};

mod choice;
mod commitments;
mod group_skips;
mod launch_spec;
mod mixed;
mod pools;
mod properties;
mod review;
mod stage_machine;

// ---------------------------------------------------------------------------------------------
// fixtures
// ---------------------------------------------------------------------------------------------

/// The pools that may replace an on-demand m5.large, cheapest first: c5.large has less memory,
/// m6g.large is arm64.
const M5_CANDIDATES: [&str; 4] = ["m5a.large", "m6i.large", "m5.large", "r5.large"];

/// The Launch specs of a plan, in order.
fn launches(plan: &GroupPlan) -> Vec<&LaunchSpec> {
    plan.actions
        .iter()
        .filter_map(|a| match &a.kind {
            ActionKind::Launch(spec) => Some(spec),
            _ => None,
        })
        .collect()
}

/// The instances a plan launches replacements for, in order.
fn launched_for(plan: &GroupPlan) -> Vec<&str> {
    launches(plan).iter().map(|s| s.replaces.as_str()).collect()
}

/// Each action as (name, reason, instance): what the log line would say.
fn steps(plan: &GroupPlan) -> Vec<(&'static str, Reason, Option<&str>)> {
    plan.actions
        .iter()
        .map(|a| (a.kind.name(), a.reason, a.instance.as_deref()))
        .collect()
}

fn kinds(plan: &GroupPlan) -> Vec<&ActionKind> {
    plan.actions.iter().map(|a| &a.kind).collect()
}

fn skip_reason(plan: &GroupPlan) -> Option<Reason> {
    plan.skip.as_ref().map(|s| s.reason)
}

fn candidate_types(spec: &LaunchSpec) -> Vec<&str> {
    spec.candidates
        .iter()
        .map(|c| c.pool.instance_type.as_str())
        .collect()
}

/// A fleet of `n` on-demand m5.large spread over the three AZs, at capacity.
fn on_demand_fleet(n: u32) -> Fleet {
    (0..n)
        .fold(Fleet::new(), |f, i| {
            f.on_demand(&format!("i-od{i:02}"), AZS[i as usize % 3])
        })
        .desired(n)
}

/// One on-demand original (`i-od1`) with our launch `i-l1` at `stage`, plus a second
/// on-demand instance `i-od2`; desired is the InService count.
fn swap_at(stage: Stage) -> Fleet {
    let f = Fleet::new()
        .on_demand("i-od1", A)
        .on_demand("i-od2", B)
        .launch("i-l1", "i-od1", stage);
    let in_service = f
        .group
        .members
        .iter()
        .filter(|m| m.state == MemberState::InService)
        .count() as u32;
    f.desired(in_service)
}
