//! `spotswap migrate --from autospotting`: what spotswap makes of each group's AutoSpotting
//! tags, the spotswap tags that express them (written with `--apply`), and AutoSpotting's
//! orphans (terminated with `--reap-autospotting-orphans --apply`).
//!
//! The translation is the core's ([`spotswap_core::compat`]); this module only reads, and
//! with `apply` writes. Without `apply` it makes zero mutating calls. With `apply` it writes
//! only spotswap tags the group does not carry yet (CreateOrUpdateTags), so a second run
//! changes nothing, and a spotswap tag the owner already set is kept: spotswap's own tags win.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use spotswap_core::compat_mode::autospotting::{
    self, AutoSpottingCompat, IgnoredTag, LAUNCHED_BY, LAUNCHED_FOR,
};
use spotswap_core::compat_mode::{activity, apply as apply_translation};
use spotswap_core::policy::{FloorRule, Mode};
use spotswap_core::{tags, GroupSnapshot, Instance, InstanceState, Policy, Timestamp};
use tracing::{info, warn};

use crate::port::op;
use crate::snapshot::{describe_groups, describe_instances, describe_tagged_instances};
use crate::workflow::now as wall_clock;
use crate::{prices, AdapterError, Aws, Config};

/// Default age, in minutes, below which an AutoSpotting orphan is not reaped: one it launched a
/// moment ago may still be attached by a last AutoSpotting run.
pub const ORPHAN_MIN_MINUTES: u32 = 60;

/// What one `migrate` run may do.
#[derive(Debug, Clone)]
pub struct MigrateOptions {
    /// Write the spotswap tags (and, with `reap_orphans`, terminate the orphans).
    pub apply: bool,
    /// `--reap-autospotting-orphans`: orphans older than `orphan_min_minutes` are terminated
    /// with `apply`, and listed as `would-terminate` without it.
    pub reap_orphans: bool,
    /// The age threshold of reaping, in minutes.
    pub orphan_min_minutes: u32,
    /// The time to act at; now when `None`.
    pub now: Option<Timestamp>,
}

impl Default for MigrateOptions {
    fn default() -> Self {
        Self {
            apply: false,
            reap_orphans: false,
            orphan_min_minutes: ORPHAN_MIN_MINUTES,
            now: None,
        }
    }
}

/// One group: its AutoSpotting configuration and what it becomes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupMigration {
    /// Group name.
    pub group: String,
    /// Whether AutoSpotting's filter selects the group.
    pub autospotting_manages: bool,
    /// DesiredCapacity now: the floors below are for it.
    pub desired: u32,
    /// AutoSpotting's tags found.
    pub autospotting: BTreeMap<String, String>,
    /// The spotswap tags that express them (with `spotswap:enabled=true` for a group
    /// AutoSpotting manages).
    pub spotswap: BTreeMap<String, String>,
    /// The floor AutoSpotting keeps at `desired`.
    pub floor_autospotting: Option<u32>,
    /// The floor spotswap keeps at `desired` with the spotswap tags (the group's own over the
    /// translated ones).
    pub floor_spotswap: Option<u32>,
    /// Every difference in behaviour, one line each.
    pub differences: Vec<String>,
    /// AutoSpotting tags with no meaning here, and why.
    pub ignored: Vec<IgnoredTag>,
    /// Spotswap tags the group already carries with another value: kept, they win.
    pub kept: BTreeMap<String, String>,
    /// The tags written (with `apply`) or to write (without).
    pub changes: BTreeMap<String, String>,
    /// A malformed alias or spotswap tag: nothing is written for the group.
    pub error: Option<String>,
}

/// What happens to one orphan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OrphanAction {
    /// Listed only (no `--reap-autospotting-orphans`).
    Listed,
    /// Younger than the threshold: kept.
    TooYoung,
    /// Would be terminated (dry run: no `--apply`).
    WouldTerminate,
    /// Terminated.
    Terminated,
    /// No longer an orphan, or no longer tagged, when checked again before terminating: kept.
    Changed,
    /// TerminateInstances failed: the error.
    Failed(String),
}

/// One of AutoSpotting's orphans.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Orphan {
    /// Instance id.
    pub instance: String,
    /// Instance type.
    pub instance_type: String,
    /// `running` or `stopped`.
    pub state: &'static str,
    /// `launched-for-asg`, when tagged.
    pub launched_for: Option<String>,
    /// EC2's launch time.
    pub launched_at: String,
    /// Minutes since the launch.
    pub age_minutes: i64,
    /// The type's on-demand price, USD/hour, when known.
    pub on_demand_hourly: Option<f64>,
    /// What happened to it.
    pub action: OrphanAction,
}

/// The whole run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MigrateReport {
    /// Whether `--apply` was given.
    pub applied: bool,
    /// Groups AutoSpotting manages or that carry its tags.
    pub groups: Vec<GroupMigration>,
    /// AutoSpotting's orphans.
    pub orphans: Vec<Orphan>,
    /// AWS calls made, per operation.
    pub api_calls: BTreeMap<String, u64>,
    /// Mutating calls among them.
    pub mutating_calls: u64,
}

/// Run `migrate --from autospotting`. AutoSpotting's filter is `config`'s
/// `SPOTSWAP_COMPAT=autospotting` settings, or AutoSpotting's defaults.
pub async fn migrate(
    aws: &Aws,
    config: &Config,
    opts: &MigrateOptions,
) -> Result<MigrateReport, AdapterError> {
    let now = opts.now.unwrap_or_else(wall_clock);
    let compat = config.settings.compat.clone().unwrap_or_default();
    // Instances first, groups second: an orphan AutoSpotting attaches between the two reads
    // shows up as a member, never as an orphan.
    let tagged = describe_tagged_instances(aws, LAUNCHED_BY, &["true"]).await?;
    let groups = describe_groups(aws, Mode::OptOut).await?;
    let mut out = Vec::new();
    for g in &groups {
        let Some(mut m) = group_migration(g, &compat, &config.settings.defaults) else {
            continue;
        };
        if opts.apply && m.error.is_none() && !m.changes.is_empty() {
            let kv: Vec<(String, String)> = m.changes.clone().into_iter().collect();
            aws.paced(op::CREATE_GROUP_TAGS, aws.port().put_group_tags(&g.name, &kv))
                .await?;
            info!(group = %g.name, tags = ?m.changes, "migrate: spotswap tags written");
        }
        if m.error.is_some() {
            m.changes.clear();
        }
        out.push(m);
    }

    let prices = if tagged.is_empty() {
        BTreeMap::new()
    } else {
        prices::on_demand_prices(aws, config.price_file.as_deref())
            .await
            .by_type
    };
    let mut orphans: Vec<Orphan> = activity::orphans(tagged.values(), &groups)
        .into_iter()
        .map(|i| orphan(i, now, &prices))
        .collect();
    if opts.reap_orphans {
        reap_orphans(aws, &mut orphans, opts).await?;
    }
    let api_calls = aws.api_calls();
    Ok(MigrateReport {
        applied: opts.apply,
        groups: out,
        orphans,
        mutating_calls: crate::report::mutating_calls(&api_calls),
        api_calls,
    })
}

/// The group's migration, `None` when AutoSpotting neither manages it nor left tags on it.
pub fn group_migration(
    g: &GroupSnapshot,
    compat: &AutoSpottingCompat,
    defaults: &Policy,
) -> Option<GroupMigration> {
    let manages = compat.filter_matches(&g.tags) == (compat.filter_mode == Mode::OptIn);
    let mut m = GroupMigration {
        group: g.name.clone(),
        autospotting_manages: manages,
        desired: g.desired,
        autospotting: BTreeMap::new(),
        spotswap: BTreeMap::new(),
        floor_autospotting: None,
        floor_spotswap: None,
        differences: Vec::new(),
        ignored: Vec::new(),
        kept: BTreeMap::new(),
        changes: BTreeMap::new(),
        error: None,
    };
    let t = match autospotting::translate(&g.tags) {
        Ok(t) => t,
        Err(e) => {
            let has_tags = g.tags.keys().any(|k| k.starts_with("autospotting_"));
            if !manages && !has_tags {
                return None;
            }
            m.error = Some(e.to_string());
            return Some(m);
        }
    };
    if !manages && t.found.keys().all(|k| k == autospotting::SPOT_ENABLED) {
        return None;
    }
    m.autospotting = t.found.clone();
    m.spotswap = t.spotswap_tags.clone();
    if manages {
        m.spotswap.insert(tags::ENABLED.into(), "true".into());
    }
    m.differences = t.differences.clone();
    m.ignored = t.ignored.clone();
    m.floor_autospotting = Some(match t.floor {
        Some(FloorRule::AutoSpotting { number, percent }) => {
            if number > g.max_size {
                m.differences.push(format!(
                    "{}={number} is above MaxSize {}: AutoSpotting ignored it; spotswap keeps up to that many on-demand",
                    autospotting::MIN_ON_DEMAND_NUMBER,
                    g.max_size
                ));
            }
            let number = if number > g.max_size { 0 } else { number };
            autospotting::floor(g.desired, number, percent)
        }
        _ => 0,
    });
    for (k, v) in &m.spotswap {
        match g.tags.get(k) {
            None => {
                m.changes.insert(k.clone(), v.clone());
            }
            Some(own) if own != v => {
                m.kept.insert(k.clone(), own.clone());
            }
            Some(_) => {}
        }
    }
    // spotswap's floor with the tags as they will be: the group's own over the written ones,
    // read by spotswap's rules alone (no alias floor once spotswap's tags are there).
    let mut after = g.tags.clone();
    for (k, v) in &m.changes {
        after.insert(k.clone(), v.clone());
    }
    let plain = autospotting::Translation::default();
    match apply_translation(&after, defaults, &plain) {
        Ok(p) => m.floor_spotswap = Some(p.required_on_demand(g.desired)),
        Err(e) => m.error = Some(e.to_string()),
    }
    if !m.kept.is_empty() {
        m.differences.push(format!(
            "the group already carries spotswap tags with other values, which win: {}",
            m.kept
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Some(m)
}

fn orphan(i: &Instance, now: Timestamp, prices: &BTreeMap<String, f64>) -> Orphan {
    Orphan {
        instance: i.id.clone(),
        instance_type: i.instance_type.clone(),
        state: if i.state == InstanceState::Running {
            "running"
        } else {
            "stopped"
        },
        launched_for: i.tag(LAUNCHED_FOR).map(str::to_string),
        launched_at: i.launch_time.to_rfc3339(),
        age_minutes: now.secs_since(i.launch_time) / 60,
        on_demand_hourly: prices.get(&i.instance_type).copied(),
        action: OrphanAction::Listed,
    }
}

/// Terminate (with `apply`) or mark (without) the orphans past the threshold. Each is read
/// again first, by id, with every group's members: only an instance still tagged
/// `launched-by-autospotting=true` and still in no group is terminated.
async fn reap_orphans(aws: &Aws, orphans: &mut [Orphan], opts: &MigrateOptions) -> Result<(), AdapterError> {
    let old = i64::from(opts.orphan_min_minutes);
    for o in orphans.iter_mut() {
        o.action = if o.age_minutes >= old {
            OrphanAction::WouldTerminate
        } else {
            OrphanAction::TooYoung
        };
    }
    if !opts.apply {
        return Ok(());
    }
    let ids: Vec<String> = orphans
        .iter()
        .filter(|o| o.action == OrphanAction::WouldTerminate)
        .map(|o| o.instance.clone())
        .collect();
    if ids.is_empty() {
        return Ok(());
    }
    let fresh = describe_instances(aws, &ids).await?;
    let groups = describe_groups(aws, Mode::OptOut).await?;
    let still: BTreeSet<String> = activity::orphans(fresh.values(), &groups)
        .into_iter()
        .map(|i| i.id.clone())
        .collect();
    for o in orphans
        .iter_mut()
        .filter(|o| o.action == OrphanAction::WouldTerminate)
    {
        if !still.contains(&o.instance) {
            o.action = OrphanAction::Changed;
            continue;
        }
        let id = [o.instance.clone()];
        o.action = match aws
            .paced(op::TERMINATE, aws.port().terminate_instances(&id))
            .await
        {
            Ok(()) => {
                info!(instance = %o.instance, reason = "AutoSpottingOrphan", "migrate: AutoSpotting orphan terminated");
                OrphanAction::Terminated
            }
            Err(e) => {
                warn!(instance = %o.instance, error = %e, "migrate: AutoSpotting orphan not terminated");
                OrphanAction::Failed(e.to_string())
            }
        };
    }
    Ok(())
}

/// One WARN line per AutoSpotting tag a managed group carries that spotswap does not apply,
/// naming the group, the tag and why. Under `SPOTSWAP_COMPAT=autospotting` only.
pub fn warn_ignored_tags(groups: &[GroupSnapshot], settings: &spotswap_core::Settings) {
    let Some(compat) = &settings.compat else {
        return;
    };
    for g in groups {
        if !compat.is_managed(&g.tags, settings.mode).unwrap_or(false) {
            continue;
        }
        let Ok(t) = autospotting::translate(&g.tags) else {
            continue;
        };
        for i in &t.ignored {
            warn!(
                group = %g.name,
                tag = %i.tag,
                value = %i.value,
                why = i.why,
                reason = "AutoSpottingTagIgnored",
                "AutoSpotting tag ignored"
            );
        }
    }
}
