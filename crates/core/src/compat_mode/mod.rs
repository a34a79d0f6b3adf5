//! Compatibility modes (`SPOTSWAP_COMPAT`): another tool's group tags read as aliases of
//! spotswap's, so its users can switch without re-tagging first.
//!
//! The aliases translate into the same inputs spotswap's own tags give: spotswap tag values
//! parsed by [`Policy::from_tags`], the one tag parser, plus a [`crate::policy::FloorRule`]
//! where the other tool counted the floor its own way. spotswap's own tags win when both are
//! present.
//!
//! # Layout
//!
//! - [`autospotting`]: AutoSpotting's opt-in filter and `autospotting_*` tags, translated.
//! - [`cron`]: AutoSpotting's `autospotting_cron_*` schedule, as a `spotswap:schedule` window.
//! - [`activity`]: whether AutoSpotting still acts on a group (`AutoSpottingActive`), and its
//!   orphans.

pub mod activity;
pub mod autospotting;
pub mod cron;

use std::collections::BTreeMap;

use crate::error::ConfigError;
use crate::policy::{Mode, Policy};
use crate::tags;

pub use autospotting::{AutoSpottingCompat, IgnoredTag, Translation};

/// A group's policy under `SPOTSWAP_COMPAT=autospotting`: `None` when the group is not managed
/// (by `spotswap:enabled` when it carries it, else by AutoSpotting's filter), or the first bad
/// value, of spotswap's tags or of the aliases.
pub fn policy_for(
    group_tags: &BTreeMap<String, String>,
    mode: Mode,
    defaults: &Policy,
    compat: &AutoSpottingCompat,
) -> Result<Option<Policy>, ConfigError> {
    if !compat.is_managed(group_tags, mode)? {
        return Ok(None);
    }
    let t = autospotting::translate(group_tags)?;
    Ok(Some(apply(group_tags, defaults, &t)?))
}

/// The policy from the group's own tags over the translated ones, over `defaults`.
pub fn apply(
    group_tags: &BTreeMap<String, String>,
    defaults: &Policy,
    t: &Translation,
) -> Result<Policy, ConfigError> {
    let mut effective = group_tags.clone();
    for (k, v) in &t.spotswap_tags {
        effective.entry(k.clone()).or_insert_with(|| v.clone());
    }
    let mut policy = Policy::from_tags(&effective, defaults)?;
    let own_floor =
        group_tags.contains_key(tags::ON_DEMAND_BASE) || group_tags.contains_key(tags::ON_DEMAND_PERCENT);
    if let (false, Some(rule)) = (own_floor, t.floor) {
        policy.floor_rule = rule;
    }
    if t.same_type_only && !group_tags.contains_key(tags::ALLOWED_TYPES) {
        policy.same_type_only = true;
    }
    Ok(policy)
}

#[cfg(test)]
mod tests;
