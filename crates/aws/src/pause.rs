//! `spotswap pause` and `spotswap resume`: a group's `spotswap:paused-until` tag, and nothing
//! else. The rebalancer reads the tag ([`spotswap_core::window`]): no new swaps start until the
//! time, swaps in flight finish, interruptions are still handled.

use serde::Serialize;
use spotswap_core::{tags, Timestamp};

use crate::port::op;
use crate::snapshot::describe_named_groups;
use crate::{AdapterError, Aws};

/// What `pause` or `resume` found and changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PauseReport {
    /// The group.
    pub group: String,
    /// `spotswap:paused-until` before the command, as found.
    pub before: Option<String>,
    /// `spotswap:paused-until` after it.
    pub after: Option<String>,
    /// False when the tag already had the value asked for: no call was made.
    pub changed: bool,
}

/// Write `spotswap:paused-until=<until>` on `group` (CreateOrUpdateTags). An unknown group is
/// an error with zero mutating calls.
pub async fn pause(aws: &Aws, group: &str, until: Timestamp) -> Result<PauseReport, AdapterError> {
    let before = current(aws, group).await?;
    let after = until.to_rfc3339();
    let changed = before.as_deref() != Some(after.as_str());
    if changed {
        let kv = [(tags::PAUSED_UNTIL.to_string(), after.clone())];
        aws.paced(op::CREATE_GROUP_TAGS, aws.port().put_group_tags(group, &kv))
            .await?;
    }
    Ok(PauseReport {
        group: group.to_string(),
        before,
        after: Some(after),
        changed,
    })
}

/// Delete `spotswap:paused-until` from `group` (DeleteTags); nothing when it has none. An
/// unknown group is an error with zero mutating calls.
pub async fn resume(aws: &Aws, group: &str) -> Result<PauseReport, AdapterError> {
    let before = current(aws, group).await?;
    let changed = before.is_some();
    if changed {
        let keys = [tags::PAUSED_UNTIL.to_string()];
        aws.paced(op::DELETE_GROUP_TAGS, aws.port().delete_group_tags(group, &keys))
            .await?;
    }
    Ok(PauseReport {
        group: group.to_string(),
        before,
        after: None,
        changed,
    })
}

/// The group's `spotswap:paused-until`, or the error naming an unknown group.
async fn current(aws: &Aws, group: &str) -> Result<Option<String>, AdapterError> {
    let found = describe_named_groups(aws, &[group.to_string()]).await?;
    let g = found.iter().find(|g| g.name == group).ok_or_else(|| {
        AdapterError::Invalid(format!(
            "no Auto Scaling group named {group:?} in {}",
            aws.region()
        ))
    })?;
    Ok(g.tags.get(tags::PAUSED_UNTIL).cloned())
}
