//! Our live launches, indexed once per pass by group and by the instance each replaces.

use std::collections::BTreeMap;

use crate::model::Instance;

/// Our live launches of one group, by the instance each replaces.
pub type Launches<'a> = BTreeMap<&'a str, Vec<&'a Instance>>;

/// Our live launches of every group, indexed once per pass: by group, then by the instance
/// each replaces.
///
/// A launch the interruption handler detached is dying: it must never be attached again, nor
/// steer a swap, so it is left out. The reaper ends it.
#[derive(Debug, Default)]
pub struct LaunchIndex<'a> {
    by_group: BTreeMap<&'a str, Launches<'a>>,
    none: Launches<'a>,
}

impl<'a> LaunchIndex<'a> {
    /// Index `instances` (any superset of our launches; others are skipped).
    pub fn new(instances: impl IntoIterator<Item = &'a Instance>) -> Self {
        let mut by_group: BTreeMap<&str, Launches<'a>> = BTreeMap::new();
        for inst in instances {
            let (Some(group), Some(replaces)) = (inst.launched_for(), inst.replaces()) else {
                continue;
            };
            if inst.is_live_launch_for(group) {
                by_group
                    .entry(group)
                    .or_default()
                    .entry(replaces)
                    .or_default()
                    .push(inst);
            }
        }
        Self {
            by_group,
            none: Launches::new(),
        }
    }

    /// The launches of `group` (empty when it has none).
    pub fn of(&self, group: &str) -> &Launches<'a> {
        self.by_group.get(group).unwrap_or(&self.none)
    }
}
