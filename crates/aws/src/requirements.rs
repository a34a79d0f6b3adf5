//! The instance types of attribute-based mixed-instances groups: for each override giving
//! `InstanceRequirements`, EC2's GetInstanceTypesFromInstanceRequirements (every page), once
//! per distinct requirements per warm container (kept as long as the type specs).
//!
//! The question names every architecture spotswap swaps (`x86_64`, `arm64`) and `hvm`: both
//! are required by the API, and the group's AMI is not read. A candidate of another
//! architecture than the original's AMI is rejected per original by the compatibility check
//! (`ArchitectureMismatch`), as for every group, so the wider question adds no launch.
//!
//! Only groups spotswap may manage are asked about (not those tagged `spotswap:enabled=false`).
//! A failed read leaves the override's types unknown with what failed, one WARN line
//! (`InstanceRequirementsUnresolved`), and the core skips the group: no swap on unknown
//! candidates.

use std::collections::BTreeSet;

use spotswap_core::policy::{is_managed, Mode};
use spotswap_core::GroupSnapshot;
use tracing::warn;

use crate::cache::{Cached, SPECS_TTL};
use crate::port::{op, RequirementsQuery};
use crate::{AdapterError, Aws};

/// The architectures asked about.
pub(crate) const ARCHITECTURES: [&str; 2] = ["x86_64", "arm64"];
/// The virtualization types asked about: every current instance type is HVM.
pub(crate) const VIRTUALIZATION: [&str; 1] = ["hvm"];

/// Resolve the types of every attribute-based override of `groups`.
pub(crate) async fn resolve(aws: &Aws, groups: &mut [GroupSnapshot]) {
    for g in groups.iter_mut() {
        if !is_managed(&g.tags, Mode::OptOut).unwrap_or(true) {
            continue;
        }
        let name = g.name.clone();
        let Some(mixed) = g.mixed.as_mut() else {
            continue;
        };
        for o in mixed.overrides.iter_mut() {
            let Some(ab) = o.instance_requirements.as_mut() else {
                continue;
            };
            let q = RequirementsQuery {
                requirements: ab.requirements.clone(),
                architectures: ARCHITECTURES.iter().map(|a| a.to_string()).collect(),
                virtualization: VIRTUALIZATION.iter().map(|a| a.to_string()).collect(),
            };
            ab.resolved = Some(types_for(aws, &q).await.map_err(|e| {
                warn!(reason = "InstanceRequirementsUnresolved", group = %name, error = %e, "instance types of InstanceRequirements unknown; group skipped");
                e.to_string()
            }));
        }
    }
}

/// The types matching `q`, from the warm-container cache or every page of the API.
async fn types_for(aws: &Aws, q: &RequirementsQuery) -> Result<BTreeSet<String>, AdapterError> {
    let key = format!("{q:?}");
    if let Some(c) = aws.cache.requirement_types.lock().await.get(&key) {
        if c.fresh(SPECS_TTL) {
            return Ok(c.value.clone());
        }
    }
    let mut out = BTreeSet::new();
    aws.each_page(
        op::GET_TYPES_FROM_REQUIREMENTS,
        |t| aws.port().types_for_requirements(q, t),
        |t| {
            out.insert(t);
        },
    )
    .await?;
    aws.cache.requirement_types.lock().await.insert(
        key,
        Cached {
            at: std::time::Instant::now(),
            value: out.clone(),
        },
    );
    Ok(out)
}
