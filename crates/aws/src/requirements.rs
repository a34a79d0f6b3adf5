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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use spotswap_core::mixed::{AttributeBased, InstanceRequirements, MixedOverride, MixedPolicy, Range};
    use spotswap_core::testkit::{Fleet, NOW};
    use spotswap_core::{LaunchSource, LaunchTemplateRef};

    use crate::fake::{FakePort, FakeRegion};
    use crate::{snapshot, Aws};

    /// A group `name` whose one override asks for `vcpus` vCPUs.
    fn attribute_group(name: &str, vcpus: f64) -> Fleet {
        Fleet::new().named(name).with_group(|g| {
            g.launch_source = LaunchSource::MixedInstances;
            g.mixed = Some(MixedPolicy {
                launch_template: LaunchTemplateRef {
                    id: Some("lt-1".into()),
                    name: None,
                    version: "$Latest".into(),
                },
                overrides: vec![MixedOverride {
                    instance_type: None,
                    weighted_capacity: None,
                    launch_template: None,
                    instance_requirements: Some(AttributeBased {
                        requirements: InstanceRequirements {
                            vcpu_count: Range {
                                min: Some(vcpus),
                                max: Some(vcpus),
                            },
                            ..Default::default()
                        },
                        resolved: None,
                    }),
                }],
                on_demand_base: Some(0),
                on_demand_percent: Some(0),
                desired_capacity_type: None,
            });
        })
    }

    #[tokio::test]
    async fn types_are_read_every_page_once_per_distinct_requirements_per_warm_container() {
        // GIVEN two groups asking for 2 vCPUs and one for 4, in a region paging by 2
        let fleets = [
            attribute_group("a", 2.0),
            attribute_group("b", 2.0),
            attribute_group("c", 4.0),
        ];
        let mut r = FakeRegion {
            clock: NOW,
            page_size: 2,
            ..FakeRegion::default()
        };
        for f in &fleets {
            r.groups.insert(f.group.name.clone(), f.group.clone());
            r.market = f.market.clone();
        }
        let want = |v: u32| -> std::collections::BTreeSet<String> {
            r.market
                .types
                .values()
                .filter(|t| t.vcpus == v)
                .map(|t| t.name.clone())
                .collect()
        };
        let (two, four) = (want(2), want(4));
        assert!(two.len() > 2, "more than one page: {two:?}");
        let fake = Arc::new(FakePort::with("us-east-1", r));
        let aws = Aws::fake(fake.clone());
        // WHEN a snapshot is taken
        let snap = snapshot::take(&aws, &fleets[0].settings(), None, NOW)
            .await
            .unwrap();
        // THEN each override's types are those EC2 resolves, every page read
        let types = |g: &str| {
            snap.groups
                .iter()
                .find(|x| x.name == g)
                .unwrap()
                .mixed
                .as_ref()
                .unwrap()
                .types()
        };
        assert_eq!(
            (types("a"), types("b"), types("c")),
            (two.clone(), two.clone(), four.clone())
        );
        // AND one question per distinct requirements: the 2-vCPU pages once, the 4-vCPU once
        let pages = |n: usize| n.div_ceil(2).max(1) as u64;
        let op = "ec2:GetInstanceTypesFromInstanceRequirements";
        assert_eq!(aws.api_calls()[op], pages(two.len()) + pages(four.len()));
        // AND a second snapshot in the same warm container asks nothing
        snapshot::take(&aws, &fleets[0].settings(), None, NOW)
            .await
            .unwrap();
        assert_eq!(aws.api_calls()[op], pages(two.len()) + pages(four.len()));
        // AND a failed read leaves the types unknown with the error, in a cold container
        fake.edit(|r| {
            r.failures.insert(op.to_string(), "InternalError".to_string());
        });
        let cold = Aws::fake(fake.clone());
        let snap = snapshot::take(&cold, &fleets[0].settings(), None, NOW)
            .await
            .unwrap();
        let a = snap.groups.iter().find(|x| x.name == "a").unwrap();
        let why = a.mixed.as_ref().unwrap().unresolved().expect("unresolved");
        assert!(why.contains("InternalError"), "{why}");
    }
}
