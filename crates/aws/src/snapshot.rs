//! Read a region into plain `core` data, in batched, paginated reads.
//!
//! Per cycle: `ceil(G/100)` DescribeAutoScalingGroups, `ceil(N/1000)` DescribeInstances, the
//! spot price pages, and DescribeInstanceStatus only for our launches not yet attached.
//! Specs and on-demand prices come from the warm-container cache.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_autoscaling::types::AutoScalingGroup;
use aws_sdk_ec2::types::{Filter, InstanceLifecycleType, InstanceStateName};
use spotswap_core::{
    policy::Mode, tags, GroupSnapshot, Instance, InstanceState, InstanceTypeSpec, LaunchSource,
    LaunchTemplateRef, Lifecycle, Market, Member, MemberState, Pool, RegionSnapshot, Settings, Timestamp,
};
use tracing::{debug, info};

use crate::cache::{Cached, SPECS_TTL};
use crate::throttle::Paced;
use crate::{prices, AdapterError, Aws};

/// Pages of the largest size each API allows.
const ASG_PAGE: i32 = 100;
const EC2_PAGE: i32 = 1000;
/// EC2's most values in one filter.
pub(crate) const FILTER_VALUES: usize = 200;

/// Take a snapshot of the region: candidate groups, their instances and ours, and the market.
pub async fn take(
    aws: &Aws,
    settings: &Settings,
    price_file: Option<&str>,
    now: Timestamp,
) -> Result<RegionSnapshot, AdapterError> {
    let (groups, mut instances, specs, od) = tokio::try_join!(
        describe_groups(aws, settings.mode),
        describe_instances(aws, &[]),
        instance_types(aws),
        async { Ok(prices::on_demand_prices(aws, price_file).await) },
    )?;
    // Spot prices only where managed groups run: a fraction of the region's pools.
    let azs: BTreeSet<String> = groups
        .iter()
        .flat_map(|g| g.availability_zones.iter().cloned())
        .collect();
    let spot_prices = spot_prices(aws, now, &azs).await?;
    let members: BTreeSet<&str> = groups
        .iter()
        .flat_map(|g| g.members.iter().map(|m| m.id.as_str()))
        .collect();
    instances.retain(|id, i| {
        members.contains(id.as_str()) || i.launched_for().is_some() || i.tag(tags::DETACHED_AT).is_some()
    });

    // Status checks matter only for our launches waiting to be attached.
    let waiting: Vec<String> = instances
        .values()
        .filter(|i| {
            i.launched_for().is_some()
                && i.state == InstanceState::Running
                && !members.contains(i.id.as_str())
        })
        .map(|i| i.id.clone())
        .collect();
    for (id, ok) in instance_status(aws, &waiting).await? {
        if let Some(i) = instances.get_mut(&id) {
            i.status_ok = Some(ok);
        }
    }
    info!(
        groups = groups.len(),
        instances = instances.len(),
        spot_pools = spot_prices.len(),
        instance_types = specs.len(),
        price_source = ?od.source,
        "snapshot taken"
    );
    Ok(RegionSnapshot {
        now,
        groups,
        instances,
        market: Market {
            types: specs,
            spot_prices,
            on_demand_prices: od.by_type,
            price_source: od.source,
        },
    })
}

/// Candidate groups: those carrying a `spotswap:enabled` tag in opt-in mode, all groups in
/// opt-out mode.
///
/// The opt-in filter is on the key, not on the value `true`: a group tagged `yes` or `TRUE`
/// must reach [`spotswap_core::policy::is_managed`] and be reported as `InvalidConfig`, not be
/// passed over without a word.
pub async fn describe_groups(aws: &Aws, mode: Mode) -> Result<Vec<GroupSnapshot>, AdapterError> {
    let mut req = aws.asg.describe_auto_scaling_groups().max_records(ASG_PAGE);
    if mode == Mode::OptIn {
        req = req.filters(
            aws_sdk_autoscaling::types::Filter::builder()
                .name("tag-key")
                .values(tags::ENABLED)
                .build(),
        );
    }
    let mut out = Vec::new();
    let mut pages = req.into_paginator().send();
    loop {
        aws.limiter.acquire("autoscaling:DescribeAutoScalingGroups").await;
        let Some(page) = pages.next().await else {
            break;
        };
        let page = page.map_err(|e| AdapterError::aws("autoscaling:DescribeAutoScalingGroups", e))?;
        out.extend(page.auto_scaling_groups().iter().map(group_from_sdk));
    }
    Ok(out)
}

/// Named groups, for the event handler.
pub async fn describe_named_groups(aws: &Aws, names: &[String]) -> Result<Vec<GroupSnapshot>, AdapterError> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    let mut pages = aws
        .asg
        .describe_auto_scaling_groups()
        .set_auto_scaling_group_names(Some(names.to_vec()))
        .max_records(ASG_PAGE)
        .into_paginator()
        .send();
    loop {
        aws.limiter.acquire("autoscaling:DescribeAutoScalingGroups").await;
        let Some(page) = pages.next().await else {
            break;
        };
        let page = page.map_err(|e| AdapterError::aws("autoscaling:DescribeAutoScalingGroups", e))?;
        out.extend(page.auto_scaling_groups().iter().map(group_from_sdk));
    }
    Ok(out)
}

pub(crate) fn group_from_sdk(g: &AutoScalingGroup) -> GroupSnapshot {
    let launch_source = if g.mixed_instances_policy().is_some() {
        LaunchSource::MixedInstances
    } else if let Some(lt) = g.launch_template() {
        LaunchSource::Template(LaunchTemplateRef {
            id: lt.launch_template_id().map(str::to_string),
            name: lt.launch_template_name().map(str::to_string),
            version: lt.version().unwrap_or("$Default").to_string(),
        })
    } else if let Some(lc) = g.launch_configuration_name() {
        LaunchSource::LaunchConfiguration(lc.to_string())
    } else {
        LaunchSource::Unknown
    };
    let mut tags = BTreeMap::new();
    let mut propagated = BTreeMap::new();
    for t in g.tags() {
        if let (Some(k), Some(v)) = (t.key(), t.value()) {
            tags.insert(k.to_string(), v.to_string());
            if t.propagate_at_launch() == Some(true) {
                propagated.insert(k.to_string(), v.to_string());
            }
        }
    }
    let members = g
        .instances()
        .iter()
        .filter_map(|i| {
            Some(Member {
                id: i.instance_id()?.to_string(),
                state: MemberState::from_api(i.lifecycle_state().map(|s| s.as_str()).unwrap_or("")),
                healthy: i.health_status() == Some("Healthy"),
                protected_from_scale_in: i.protected_from_scale_in().unwrap_or(false),
            })
        })
        .collect();
    GroupSnapshot {
        name: g.auto_scaling_group_name().unwrap_or_default().to_string(),
        min_size: g.min_size().unwrap_or(0).max(0) as u32,
        max_size: g.max_size().unwrap_or(0).max(0) as u32,
        desired: g.desired_capacity().unwrap_or(0).max(0) as u32,
        health_check_grace_secs: g.health_check_grace_period().unwrap_or(0).max(0) as u32,
        launch_source,
        availability_zones: g.availability_zones().to_vec(),
        subnets: g
            .vpc_zone_identifier()
            .map(|s| {
                s.split(',')
                    .map(|x| x.trim().to_string())
                    .filter(|x| !x.is_empty())
                    .collect()
            })
            .unwrap_or_default(),
        tags,
        propagated_tags: propagated,
        members,
        status: g.status().map(str::to_string),
        instance_refresh_in_progress: None,
        has_terminating_hook: None,
    }
}

/// Every live instance of the region (`ids` empty), or the named ones.
pub async fn describe_instances(
    aws: &Aws,
    ids: &[String],
) -> Result<BTreeMap<String, Instance>, AdapterError> {
    let mut req = aws.ec2.describe_instances().filters(
        Filter::builder()
            .name("instance-state-name")
            .values("pending")
            .values("running")
            .values("stopping")
            .values("stopped")
            .build(),
    );
    if ids.is_empty() {
        req = req.max_results(EC2_PAGE);
    } else {
        req = req.set_instance_ids(Some(ids.to_vec()));
    }
    collect_instances(aws, req).await
}

/// Live instances carrying tag `key` (with one of `values`, when any is given: at most 200,
/// EC2's limit of values per filter).
pub async fn describe_tagged_instances(
    aws: &Aws,
    key: &str,
    values: &[&str],
) -> Result<BTreeMap<String, Instance>, AdapterError> {
    let tag_filter = if values.is_empty() {
        Filter::builder().name("tag-key").values(key).build()
    } else {
        Filter::builder()
            .name(format!("tag:{key}"))
            .set_values(Some(values.iter().map(|v| v.to_string()).collect()))
            .build()
    };
    let req = aws
        .ec2
        .describe_instances()
        .filters(tag_filter)
        .filters(
            Filter::builder()
                .name("instance-state-name")
                .values("pending")
                .values("running")
                .values("stopping")
                .values("stopped")
                .build(),
        )
        .max_results(EC2_PAGE);
    collect_instances(aws, req).await
}

/// Our live launches replacing any of `originals`, by the original they replace (every
/// original asked about has an entry, empty when nothing replaces it): one read per 200
/// originals, for a whole cycle's launches at once.
pub async fn launches_replacing(
    aws: &Aws,
    originals: &[String],
) -> Result<BTreeMap<String, Vec<Instance>>, AdapterError> {
    let mut out: BTreeMap<String, Vec<Instance>> =
        originals.iter().map(|o| (o.clone(), Vec::new())).collect();
    for chunk in originals.chunks(FILTER_VALUES) {
        let values: Vec<&str> = chunk.iter().map(String::as_str).collect();
        for inst in describe_tagged_instances(aws, tags::REPLACES, &values)
            .await?
            .into_values()
        {
            if let Some(replaces) = inst.replaces() {
                out.entry(replaces.to_string()).or_default().push(inst);
            }
        }
    }
    Ok(out)
}

async fn collect_instances(
    aws: &Aws,
    req: aws_sdk_ec2::operation::describe_instances::builders::DescribeInstancesFluentBuilder,
) -> Result<BTreeMap<String, Instance>, AdapterError> {
    let mut out = BTreeMap::new();
    let mut pages = req.into_paginator().send();
    loop {
        aws.limiter.acquire("ec2:DescribeInstances").await;
        let Some(page) = pages.next().await else {
            break;
        };
        let page = page.map_err(|e| AdapterError::aws("ec2:DescribeInstances", e))?;
        for r in page.reservations() {
            for i in r.instances() {
                if let Some(inst) = instance_from_sdk(i) {
                    out.insert(inst.id.clone(), inst);
                }
            }
        }
    }
    Ok(out)
}

pub(crate) fn instance_from_sdk(i: &aws_sdk_ec2::types::Instance) -> Option<Instance> {
    let state = match i.state().and_then(|s| s.name()) {
        Some(InstanceStateName::Pending) => InstanceState::Pending,
        Some(InstanceStateName::Running) => InstanceState::Running,
        Some(InstanceStateName::Stopping) | Some(InstanceStateName::Stopped) => InstanceState::Stopped,
        _ => InstanceState::Gone,
    };
    Some(Instance {
        id: i.instance_id()?.to_string(),
        instance_type: i
            .instance_type()
            .map(|t| t.as_str().to_string())
            .unwrap_or_default(),
        az: i
            .placement()
            .and_then(|p| p.availability_zone())
            .unwrap_or_default()
            .to_string(),
        subnet_id: i.subnet_id().map(str::to_string),
        lifecycle: match i.instance_lifecycle() {
            Some(InstanceLifecycleType::Spot) => Lifecycle::Spot,
            _ => Lifecycle::OnDemand,
        },
        state,
        launch_time: Timestamp::from_unix(i.launch_time().map(|t| t.secs()).unwrap_or(0)),
        status_ok: None,
        termination_protected: None,
        // Only the tags a decision reads, ours and Auto Scaling's group name: a fleet's cost
        // allocation tags would otherwise be most of the snapshot's memory at 20,000 instances.
        tags: i
            .tags()
            .iter()
            .filter(|t| {
                t.key()
                    .is_some_and(|k| k.starts_with(tags::PREFIX) || k == tags::AWS_ASG_NAME)
            })
            .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or_default().to_string())))
            .collect(),
        architecture: i.architecture().map(|a| a.as_str().to_string()),
    })
}

/// Status checks of `ids`: `true` when instance and system status are both `ok`.
async fn instance_status(aws: &Aws, ids: &[String]) -> Result<Vec<(String, bool)>, AdapterError> {
    let mut out = Vec::new();
    for chunk in ids.chunks(100) {
        let resp = aws
            .ec2
            .describe_instance_status()
            .set_instance_ids(Some(chunk.to_vec()))
            .send()
            .paced(aws, "ec2:DescribeInstanceStatus")
            .await?;
        for s in resp.instance_statuses() {
            let ok = |x: Option<&aws_sdk_ec2::types::InstanceStatusSummary>| {
                x.and_then(|x| x.status())
                    .map(|s| s.as_str() == "ok")
                    .unwrap_or(false)
            };
            if let Some(id) = s.instance_id() {
                out.push((id.to_string(), ok(s.instance_status()) && ok(s.system_status())));
            }
        }
    }
    Ok(out)
}

/// The latest Linux spot price per pool.
pub(crate) async fn spot_prices(
    aws: &Aws,
    now: Timestamp,
    azs: &BTreeSet<String>,
) -> Result<BTreeMap<Pool, f64>, AdapterError> {
    let mut latest: BTreeMap<Pool, (i64, f64)> = BTreeMap::new();
    if azs.is_empty() {
        return Ok(BTreeMap::new());
    }
    let mut pages = aws
        .ec2
        .describe_spot_price_history()
        .filters(
            Filter::builder()
                .name("availability-zone")
                .set_values(Some(azs.iter().cloned().collect()))
                .build(),
        )
        .start_time(aws_smithy_types::DateTime::from_secs(now.unix()))
        .product_descriptions("Linux/UNIX")
        .product_descriptions("Linux/UNIX (Amazon VPC)")
        .max_results(EC2_PAGE)
        .into_paginator()
        .send();
    loop {
        aws.limiter.acquire("ec2:DescribeSpotPriceHistory").await;
        let Some(page) = pages.next().await else {
            break;
        };
        let page = page.map_err(|e| AdapterError::aws("ec2:DescribeSpotPriceHistory", e))?;
        for p in page.spot_price_history() {
            let (Some(az), Some(ty), Some(price)) = (
                p.availability_zone(),
                p.instance_type(),
                p.spot_price().and_then(|s| s.parse::<f64>().ok()),
            ) else {
                continue;
            };
            let at = p.timestamp().map(|t| t.secs()).unwrap_or(0);
            let pool = Pool::new(ty.as_str(), az);
            if latest.get(&pool).is_none_or(|(t, _)| at >= *t) {
                latest.insert(pool, (at, price));
            }
        }
    }
    Ok(latest.into_iter().map(|(k, (_, p))| (k, p)).collect())
}

/// Instance-type specs, from the warm-container cache or DescribeInstanceTypes.
pub(crate) async fn instance_types(aws: &Aws) -> Result<BTreeMap<String, InstanceTypeSpec>, AdapterError> {
    let mut slot = aws.cache.specs.lock().await;
    if let Some(c) = slot.as_ref().filter(|c| c.fresh(SPECS_TTL)) {
        return Ok(c.value.clone());
    }
    let mut out = BTreeMap::new();
    let mut pages = aws
        .ec2
        .describe_instance_types()
        .max_results(100)
        .into_paginator()
        .send();
    loop {
        aws.limiter.acquire("ec2:DescribeInstanceTypes").await;
        let Some(page) = pages.next().await else {
            break;
        };
        let page = page.map_err(|e| AdapterError::aws("ec2:DescribeInstanceTypes", e))?;
        for t in page.instance_types() {
            let Some(name) = t.instance_type().map(|x| x.as_str().to_string()) else {
                continue;
            };
            let spec = InstanceTypeSpec {
                name: name.clone(),
                architectures: t
                    .processor_info()
                    .map(|p| {
                        p.supported_architectures()
                            .iter()
                            .map(|a| a.as_str().to_string())
                            .collect()
                    })
                    .unwrap_or_default(),
                vcpus: t
                    .v_cpu_info()
                    .and_then(|v| v.default_v_cpus())
                    .unwrap_or(0)
                    .max(0) as u32,
                memory_mib: t.memory_info().and_then(|m| m.size_in_mib()).unwrap_or(0).max(0) as u64,
                gpus: t
                    .gpu_info()
                    .map(|g| {
                        g.gpus()
                            .iter()
                            .map(|d| d.count().unwrap_or(0).max(0) as u32)
                            .sum()
                    })
                    .unwrap_or(0),
                instance_store_gb: t
                    .instance_storage_info()
                    .and_then(|s| s.total_size_in_gb())
                    .unwrap_or(0)
                    .max(0) as u64,
            };
            out.insert(name, spec);
        }
    }
    debug!(types = out.len(), "instance types fetched");
    *slot = Some(Cached {
        at: std::time::Instant::now(),
        value: out.clone(),
    });
    Ok(out)
}

/// Whether an instance refresh is running: `None` when it cannot be told.
pub(crate) async fn instance_refresh_in_progress(aws: &Aws, group: &str) -> Result<bool, AdapterError> {
    let resp = aws
        .asg
        .describe_instance_refreshes()
        .auto_scaling_group_name(group)
        .max_records(10)
        .send()
        .paced(aws, "autoscaling:DescribeInstanceRefreshes")
        .await?;
    Ok(resp.instance_refreshes().iter().any(|r| {
        matches!(
            r.status().map(|s| s.as_str()),
            Some("Pending")
                | Some("InProgress")
                | Some("Cancelling")
                | Some("RollbackInProgress")
                | Some("Baking")
        )
    }))
}

/// `DisableApiTermination` of one instance.
pub(crate) async fn termination_protected(aws: &Aws, id: &str) -> Result<bool, AdapterError> {
    let resp = aws
        .ec2
        .describe_instance_attribute()
        .instance_id(id)
        .attribute(aws_sdk_ec2::types::InstanceAttributeName::DisableApiTermination)
        .send()
        .paced(aws, "ec2:DescribeInstanceAttribute")
        .await?;
    Ok(resp
        .disable_api_termination()
        .and_then(|b| b.value())
        .unwrap_or(false))
}
