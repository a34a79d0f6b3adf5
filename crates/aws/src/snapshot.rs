//! Read a region into plain `core` data, in batched, paginated reads.
//!
//! Per cycle: `ceil(G/100)` DescribeAutoScalingGroups, `ceil(N/1000)` DescribeInstances, the
//! spot price pages, and DescribeInstanceStatus only for our launches not yet attached.
//! Specs and on-demand prices come from the warm-container cache, and so do the types of
//! attribute-based mixed-instances groups ([`crate::requirements`]).

use std::collections::{BTreeMap, BTreeSet};

use spotswap_core::compat_mode::activity::launched_by_autospotting;
use spotswap_core::events::Membership;
use spotswap_core::model::ScheduledEvent;
use spotswap_core::{
    policy::Mode, tags, GroupSnapshot, Instance, InstanceState, InstanceTypeSpec, Market, Pool,
    RegionSnapshot, Settings, Timestamp,
};
use tracing::{debug, info, warn};

use crate::cache::{Cached, SPECS_TTL};
use crate::port::{op, GroupQuery, InstanceQuery};
use crate::{prices, AdapterError, Aws};

/// The lifecycle transition of a terminating hook.
const TERMINATING: &str = "autoscaling:EC2_INSTANCE_TERMINATING";
/// The lifecycle transition of a launching hook.
const LAUNCHING: &str = "autoscaling:EC2_INSTANCE_LAUNCHING";
/// Most ids in one DescribeInstanceStatus.
const STATUS_IDS: usize = 100;
/// EC2's most values in one filter.
pub(crate) const FILTER_VALUES: usize = 200;

/// Take a snapshot of the region: candidate groups, their instances and ours, and the market.
pub async fn take(
    aws: &Aws,
    settings: &Settings,
    price_file: Option<&str>,
    now: Timestamp,
) -> Result<RegionSnapshot, AdapterError> {
    // Under SPOTSWAP_COMPAT a group may be managed by AutoSpotting's filter tags, which are not
    // spotswap's: every group is read, as in opt-out mode.
    let group_mode = if settings.compat.is_some() {
        Mode::OptOut
    } else {
        settings.mode
    };
    let (mut groups, mut instances, specs, od, commitments) = tokio::try_join!(
        describe_groups(aws, group_mode),
        describe_instances(aws, &[]),
        instance_types(aws),
        async { Ok(prices::on_demand_prices(aws, price_file).await) },
        async { Ok(crate::commitments::read(aws).await) },
    )?;
    // Every running on-demand instance of the region, ours or not: what commitments cover.
    let usage = spotswap_core::commitments::usage_of(instances.values()).collect();
    crate::requirements::resolve(aws, &mut groups).await;
    resolve_template_versions(aws, settings, &mut groups).await;
    crate::launch_config::resolve(aws, &mut groups).await;
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
    // AutoSpotting's launches, members or not, are its evidence of activity (`AutoSpottingActive`).
    let compat = settings.compat.is_some();
    instances.retain(|id, i| {
        members.contains(id.as_str())
            || i.launched_for().is_some()
            || i.tag(tags::DETACHED_AT).is_some()
            || (compat && launched_by_autospotting(i))
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
    // Scheduled events only for members of candidate groups. Unreadable is not fatal: the
    // AWS Health event still starts the same replacement.
    let scheduled = match scheduled_events(aws).await {
        Ok(mut s) => {
            s.retain(|id, _| members.contains(id.as_str()));
            s
        }
        Err(e) => {
            warn!(reason = "ScheduledEventsUnknown", error = %e, "scheduled events unknown; proceeding");
            BTreeMap::new()
        }
    };
    // Stateful groups: their Elastic IPs and data volumes, and the instances holding them.
    crate::carry::read_carried(aws, settings, &mut groups, &mut instances).await;
    read_spot_failures(aws, &mut groups, &instances).await;

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
        scheduled,
        commitments,
        usage,
    })
}

/// For each mixed-instances group below its desired capacity, when its newest scaling
/// activity that failed for spot capacity started (`spot_failed_at`): one
/// DescribeScalingActivities page (the newest 100) per such group, never per instance. A
/// group at its desired capacity needs no launch, so it is not read. Unreadable leaves it
/// unknown, with one WARN: the other signs of "cannot get spot" still count.
async fn read_spot_failures(aws: &Aws, groups: &mut [GroupSnapshot], instances: &BTreeMap<String, Instance>) {
    for g in groups.iter_mut() {
        if g.mixed.is_none() || g.in_service_units(instances) >= g.desired {
            continue;
        }
        let page = aws
            .paced(
                op::DESCRIBE_ACTIVITIES,
                aws.port().scaling_activities(&g.name, None),
            )
            .await;
        match page {
            Ok(page) => {
                g.spot_failed_at = page
                    .items
                    .iter()
                    .filter(|a| {
                        let message = format!("{} {}", a.status_message, a.description);
                        spotswap_core::mixed::spot_capacity_failure(&a.status, &message)
                    })
                    .filter_map(|a| a.start)
                    .max();
            }
            Err(e) => {
                warn!(reason = "ScalingActivitiesUnknown", group = %g.name, error = %e, "scaling activities unknown; proceeding");
            }
        }
    }
}

/// The version each group tagged `spotswap:replace-outdated=true` (or defaulting to it) launches
/// today, one DescribeLaunchTemplateVersions per such group with a `$Latest` or `$Default`
/// template. Unreadable leaves it unknown (no rollout this cycle), with one WARN.
async fn resolve_template_versions(aws: &Aws, settings: &Settings, groups: &mut [GroupSnapshot]) {
    for g in groups.iter_mut() {
        let wanted = match g.tags.get(tags::REPLACE_OUTDATED).map(String::as_str) {
            Some(v) => v == "true",
            None => settings.defaults.replace_outdated,
        };
        let spotswap_core::LaunchSource::Template(t) = &g.launch_source else {
            continue;
        };
        if !wanted {
            continue;
        }
        match aws
            .paced(op::DESCRIBE_TEMPLATE_VERSIONS, aws.port().template_version(t))
            .await
        {
            Ok(v) => g.template_version_now = v,
            Err(e) => {
                warn!(reason = "TemplateVersionUnknown", group = %g.name, error = %e, "template version unknown; no rollout this cycle")
            }
        }
    }
}

/// Every instance of the region with a scheduled event still to come.
async fn scheduled_events(aws: &Aws) -> Result<BTreeMap<String, ScheduledEvent>, AdapterError> {
    let mut out = BTreeMap::new();
    aws.each_page(
        op::DESCRIBE_INSTANCE_STATUS,
        |t| aws.port().scheduled_events(t),
        |(id, e)| {
            out.insert(id, e);
        },
    )
    .await?;
    Ok(out)
}

/// Candidate groups: those carrying a `spotswap:enabled` tag in opt-in mode, all groups in
/// opt-out mode.
///
/// The opt-in filter is on the key, not on the value `true`: a group tagged `yes` or `TRUE`
/// must reach [`spotswap_core::policy::is_managed`] and be reported as `InvalidConfig`, not be
/// passed over without a word.
pub(crate) async fn describe_groups(aws: &Aws, mode: Mode) -> Result<Vec<GroupSnapshot>, AdapterError> {
    let q = match mode {
        Mode::OptIn => GroupQuery::TagKey(tags::ENABLED.to_string()),
        Mode::OptOut => GroupQuery::All,
    };
    groups(aws, &q).await
}

/// Named groups, for the event handler, the types of their attribute-based overrides
/// resolved ([`crate::requirements`]).
pub(crate) async fn describe_named_groups(
    aws: &Aws,
    names: &[String],
) -> Result<Vec<GroupSnapshot>, AdapterError> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = groups(aws, &GroupQuery::Names(names.to_vec())).await?;
    crate::requirements::resolve(aws, &mut out).await;
    Ok(out)
}

async fn groups(aws: &Aws, q: &GroupQuery) -> Result<Vec<GroupSnapshot>, AdapterError> {
    let mut out = Vec::new();
    aws.each_page(
        op::DESCRIBE_GROUPS,
        |t| aws.port().describe_groups(q, t),
        |g| out.push(g),
    )
    .await?;
    out.shrink_to_fit();
    Ok(out)
}

/// Every live instance of the region (`ids` empty), or the named ones.
pub(crate) async fn describe_instances(
    aws: &Aws,
    ids: &[String],
) -> Result<BTreeMap<String, Instance>, AdapterError> {
    let q = if ids.is_empty() {
        InstanceQuery::Live
    } else {
        InstanceQuery::Ids(ids.to_vec())
    };
    instances(aws, &q).await
}

/// Live instances carrying tag `key` (with one of `values`, when any is given: at most 200,
/// EC2's limit of values per filter).
pub(crate) async fn describe_tagged_instances(
    aws: &Aws,
    key: &str,
    values: &[&str],
) -> Result<BTreeMap<String, Instance>, AdapterError> {
    let q = InstanceQuery::Tagged {
        key: key.to_string(),
        values: values.iter().map(|v| v.to_string()).collect(),
    };
    instances(aws, &q).await
}

async fn instances(aws: &Aws, q: &InstanceQuery) -> Result<BTreeMap<String, Instance>, AdapterError> {
    let mut out = Vec::new();
    aws.each_page(
        op::DESCRIBE_INSTANCES,
        |t| aws.port().describe_instances(q, t),
        |i| out.push((i.id.clone(), i)),
    )
    .await?;
    // Built at once from the whole list, a B-tree's nodes are full; inserted one by one in
    // id order (EC2's), each is left half empty: 15 MB at 100,000 instances (issue 22). Of
    // one id listed twice, the later wins, as with inserts.
    let mut map: BTreeMap<String, Instance> = out.into_iter().collect();
    // Every read holds whole batches (all of a batch's launches carry one `spotswap:batch`
    // value), so each derives the same original for each batch launch.
    spotswap_core::batch::pair(&mut map);
    Ok(map)
}

/// Our live launches replacing any of `originals`, by the original they replace (every
/// original asked about has an entry, empty when nothing replaces it): two reads per 200
/// originals, at once, for a whole cycle's launches: launches tagged `spotswap:replaces`, and
/// batch launches whose `spotswap:batch` names one of them (whole batches, so the pairs
/// derived are every reader's).
pub(crate) async fn launches_replacing(
    aws: &Aws,
    originals: &[String],
) -> Result<BTreeMap<String, Vec<Instance>>, AdapterError> {
    let mut out: BTreeMap<String, Vec<Instance>> =
        originals.iter().map(|o| (o.clone(), Vec::new())).collect();
    for chunk in originals.chunks(FILTER_VALUES) {
        let values: Vec<&str> = chunk.iter().map(String::as_str).collect();
        let wildcards: Vec<String> = chunk.iter().map(|o| format!("*{o}*")).collect();
        let wildcards: Vec<&str> = wildcards.iter().map(String::as_str).collect();
        let (single, batched) = tokio::join!(
            describe_tagged_instances(aws, tags::REPLACES, &values),
            describe_tagged_instances(aws, tags::BATCH, &wildcards),
        );
        let mut found = single?;
        found.extend(batched?);
        for inst in found.into_values() {
            if let Some(list) = out.get_mut(inst.replaces().unwrap_or_default()) {
                list.push(inst);
            }
        }
    }
    Ok(out)
}

/// Status checks of `ids`: `true` when instance and system status are both `ok`.
async fn instance_status(aws: &Aws, ids: &[String]) -> Result<Vec<(String, bool)>, AdapterError> {
    let mut out = Vec::new();
    for chunk in ids.chunks(STATUS_IDS) {
        out.extend(
            aws.paced(op::DESCRIBE_INSTANCE_STATUS, aws.port().instance_status(chunk))
                .await?,
        );
    }
    Ok(out)
}

/// The latest Linux spot price per pool.
pub(crate) async fn spot_prices(
    aws: &Aws,
    now: Timestamp,
    azs: &BTreeSet<String>,
) -> Result<BTreeMap<Pool, f64>, AdapterError> {
    if azs.is_empty() {
        return Ok(BTreeMap::new());
    }
    let azs: Vec<String> = azs.iter().cloned().collect();
    let mut latest: BTreeMap<Pool, (i64, f64)> = BTreeMap::new();
    aws.each_page(
        op::DESCRIBE_SPOT_PRICES,
        |t| aws.port().spot_prices(&azs, now, t),
        |p| {
            let at = p.at.unix();
            if latest.get(&p.pool).is_none_or(|(t, _)| at >= *t) {
                latest.insert(p.pool, (at, p.price));
            }
        },
    )
    .await?;
    Ok(latest.into_iter().map(|(k, (_, p))| (k, p)).collect())
}

/// Instance-type specs, from the warm-container cache or DescribeInstanceTypes.
pub(crate) async fn instance_types(aws: &Aws) -> Result<BTreeMap<String, InstanceTypeSpec>, AdapterError> {
    let mut slot = aws.cache.specs.lock().await;
    if let Some(c) = slot.as_ref().filter(|c| c.fresh(SPECS_TTL)) {
        return Ok(c.value.clone());
    }
    let mut out = BTreeMap::new();
    aws.each_page(
        op::DESCRIBE_INSTANCE_TYPES,
        |t| aws.port().instance_types(t),
        |spec| {
            out.insert(spec.name.clone(), spec);
        },
    )
    .await?;
    debug!(types = out.len(), "instance types fetched");
    *slot = Some(Cached {
        at: std::time::Instant::now(),
        value: out.clone(),
    });
    Ok(out)
}

/// Whether an instance refresh is running.
pub(crate) async fn instance_refresh_in_progress(aws: &Aws, group: &str) -> Result<bool, AdapterError> {
    aws.paced(
        op::DESCRIBE_REFRESHES,
        aws.port().instance_refresh_in_progress(group),
    )
    .await
}

/// `StackStatus` of one CloudFormation stack; `None` when it does not exist.
pub(crate) async fn stack_status(aws: &Aws, stack: &str) -> Result<Option<String>, AdapterError> {
    aws.paced(op::DESCRIBE_STACKS, aws.port().stack_status(stack))
        .await
}

/// The instance as its group lists it; `None` when no group does.
pub(crate) async fn describe_membership(aws: &Aws, id: &str) -> Result<Option<Membership>, AdapterError> {
    aws.paced(op::DESCRIBE_ASG_INSTANCES, aws.port().membership(id))
        .await
}

/// Whether the group has a lifecycle hook on `autoscaling:EC2_INSTANCE_TERMINATING`.
pub(crate) async fn has_terminating_hook(aws: &Aws, group: &str) -> Result<bool, AdapterError> {
    let hooks = aws
        .paced(op::DESCRIBE_HOOKS, aws.port().lifecycle_hooks(group))
        .await?;
    Ok(hooks.iter().any(|t| t == TERMINATING))
}

/// Whether the group has a lifecycle hook on `autoscaling:EC2_INSTANCE_LAUNCHING`, which AWS
/// does not run for attached instances.
///
/// Not knowing counts as a hook: an attach that skips the owner's bootstrap or registration
/// is the harm this read prevents, and a group tagged `spotswap:launch-hooks=bypass` still
/// swaps. The failure is logged with reason `LifecycleHooksUnknown`.
pub(crate) async fn has_launching_hook(aws: &Aws, group: &str) -> bool {
    match aws
        .paced(op::DESCRIBE_HOOKS, aws.port().lifecycle_hooks(group))
        .await
    {
        Ok(hooks) => hooks.iter().any(|t| t == LAUNCHING),
        Err(e) => {
            tracing::warn!(reason = "LifecycleHooksUnknown", group = %group, error = %e, "launching hooks unknown; no new swap");
            true
        }
    }
}

/// One instance in any state, terminated included; `None` when EC2 does not know it.
pub(crate) async fn describe_any_state(aws: &Aws, id: &str) -> Result<Option<Instance>, AdapterError> {
    aws.paced(op::DESCRIBE_INSTANCES, aws.port().instance_any_state(id))
        .await
}
