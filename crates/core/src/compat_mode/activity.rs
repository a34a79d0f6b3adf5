//! Whether AutoSpotting still acts on a group, and AutoSpotting's orphans.
//!
//! Evidence of activity is an instance tagged `launched-by-autospotting=true` and
//! `launched-for-asg=<group>` launched within the quiet period: AutoSpotting launches each
//! replacement itself and attaches it, so a recent launch of its own is a recent action on the
//! group. While there is one, spotswap starts no new swap there (reason `AutoSpottingActive`),
//! unless the group carries `spotswap:ignore-autospotting=true`.

use std::collections::{BTreeMap, BTreeSet};

use crate::action::{Reason, Skip};
use crate::compat_mode::autospotting::{AutoSpottingCompat, LAUNCHED_BY, LAUNCHED_FOR};
use crate::model::{GroupSnapshot, Instance, InstanceState};
use crate::tags;
use crate::time::Timestamp;

/// True when AutoSpotting launched the instance: `launched-by-autospotting=true`, exactly.
pub fn launched_by_autospotting(i: &Instance) -> bool {
    i.tag(LAUNCHED_BY) == Some("true")
}

/// The newest AutoSpotting launch per group it was launched for, alive or not.
pub fn latest_launches<'a>(
    instances: impl IntoIterator<Item = &'a Instance>,
) -> BTreeMap<&'a str, Timestamp> {
    let mut out: BTreeMap<&str, Timestamp> = BTreeMap::new();
    for i in instances.into_iter().filter(|i| launched_by_autospotting(i)) {
        if let Some(group) = i.tag(LAUNCHED_FOR) {
            let at = out.entry(group).or_insert(i.launch_time);
            if i.launch_time > *at {
                *at = i.launch_time;
            }
        }
    }
    out
}

/// The `AutoSpottingActive` skip for `group`, when AutoSpotting launched for it within the
/// quiet period and the group does not carry `spotswap:ignore-autospotting=true`.
pub fn hold(
    group: &GroupSnapshot,
    latest: &BTreeMap<&str, Timestamp>,
    compat: &AutoSpottingCompat,
    now: Timestamp,
) -> Option<Skip> {
    if group.tag(tags::IGNORE_AUTOSPOTTING) == Some("true") {
        return None;
    }
    let at = *latest.get(group.name.as_str())?;
    let quiet_until = at.plus_secs(i64::from(compat.quiet_minutes) * 60);
    (now < quiet_until).then(|| Skip {
        group: group.name.clone(),
        reason: Reason::AutoSpottingActive,
        detail: Some(format!(
            "AutoSpotting launched for the group at {}; spotswap acts once it has been quiet for {} minutes (at {}), or with {}=true",
            at.to_rfc3339(),
            compat.quiet_minutes,
            quiet_until.to_rfc3339(),
            tags::IGNORE_AUTOSPOTTING
        )),
    })
}

/// AutoSpotting's orphans: running or stopped instances tagged `launched-by-autospotting=true`
/// that no group lists as a member, oldest first.
pub fn orphans<'a>(
    instances: impl IntoIterator<Item = &'a Instance>,
    groups: &[GroupSnapshot],
) -> Vec<&'a Instance> {
    let members: BTreeSet<&str> = groups
        .iter()
        .flat_map(|g| g.members.iter().map(|m| m.id.as_str()))
        .collect();
    let mut out: Vec<&Instance> = instances
        .into_iter()
        .filter(|i| launched_by_autospotting(i))
        .filter(|i| matches!(i.state, InstanceState::Running | InstanceState::Stopped))
        .filter(|i| !members.contains(i.id.as_str()))
        .collect();
    out.sort_by(|a, b| a.launch_time.cmp(&b.launch_time).then(a.id.cmp(&b.id)));
    out
}
