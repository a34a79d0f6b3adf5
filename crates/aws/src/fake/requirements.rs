//! GetInstanceTypesFromInstanceRequirements in the fake: the market's types within the vCPU
//! and memory ranges, of an asked architecture, not excluded (exact names or `*` patterns)
//! and, when the requirements allow only some, allowed.

use spotswap_core::mixed::Range;

use super::FakeRegion;
use crate::port::RequirementsQuery;

fn within(r: &Range, v: f64) -> bool {
    r.min.is_none_or(|m| v >= m) && r.max.is_none_or(|m| v <= m)
}

fn matches(patterns: &[String], name: &str) -> bool {
    patterns.iter().any(|p| match p.split_once('*') {
        Some((head, tail)) => name.starts_with(head) && name.ends_with(tail),
        None => p == name,
    })
}

/// The names of the matching types, sorted.
pub(super) fn matching(s: &FakeRegion, q: &RequirementsQuery) -> Vec<String> {
    let r = &q.requirements;
    s.market
        .types
        .values()
        .filter(|t| within(&r.vcpu_count, f64::from(t.vcpus)))
        .filter(|t| within(&r.memory_mib, t.memory_mib as f64))
        .filter(|t| t.architectures.iter().any(|a| q.architectures.contains(a)))
        .filter(|t| !matches(&r.excluded_instance_types, &t.name))
        .filter(|t| r.allowed_instance_types.is_empty() || matches(&r.allowed_instance_types, &t.name))
        .map(|t| t.name.clone())
        .collect()
}
