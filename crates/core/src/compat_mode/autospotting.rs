//! AutoSpotting's configuration, translated: its opt-in filter, and its `autospotting_*` group
//! tags read as aliases of spotswap's (`SPOTSWAP_COMPAT=autospotting`).
//!
//! The translation follows what AutoSpotting's code does, not what its names suggest:
//! - the floor is `max(number, round(instances × percentage / 100))`, rounding half up
//!   (`floor(x + 0.5)`), and the larger of the two wins;
//! - type lists are separated by spaces or commas, empty items dropped, each item a glob;
//!   `current` alone means "only the original's own type";
//! - a disallowed list is not applied when an allowed list is set.
//!
//! Where AutoSpotting silently ignored a bad value, spotswap does not: it is a
//! [`ConfigError`] naming the alias tag and the value, like any tag of its own.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::ConfigError;
use crate::policy::{FloorRule, Mode, TypeGlobs};
use crate::tags;

use super::cron::{self, CronWindow};

/// AutoSpotting's default opt-in tag (`FILTER_BY_TAGS` in opt-in mode).
pub const SPOT_ENABLED: &str = "spot-enabled";
/// On-demand instances kept, as a number.
pub const MIN_ON_DEMAND_NUMBER: &str = "autospotting_min_on_demand_number";
/// On-demand instances kept, as a percentage of the group's instances.
pub const MIN_ON_DEMAND_PERCENTAGE: &str = "autospotting_min_on_demand_percentage";
/// Allowed instance types: globs, separated by spaces or commas; or `current`.
pub const ALLOWED_INSTANCE_TYPES: &str = "autospotting_allowed_instance_types";
/// Disallowed instance types: globs, separated by spaces or commas.
pub const DISALLOWED_INSTANCE_TYPES: &str = "autospotting_disallowed_instance_types";
/// AutoSpotting's schedule tags: they map to a `spotswap:schedule` window ([`super::cron`]).
pub const CRON_TAGS: [&str; 3] = [cron::CRON_SCHEDULE, cron::CRON_TIMEZONE, cron::CRON_STATE];
/// On instances AutoSpotting launched: `true`.
pub const LAUNCHED_BY: &str = "launched-by-autospotting";
/// On instances AutoSpotting launched: the group it launched them for.
pub const LAUNCHED_FOR: &str = "launched-for-asg";

/// AutoSpotting knobs with no meaning in spotswap, and why each is ignored.
pub const IGNORED_TAGS: [(&str, &str); 7] = [
    (
        "autospotting_bidding_policy",
        "spotswap places no bid: CreateFleet pays the spot market price, and a candidate whose spot price exceeds the original's on-demand price is never launched",
    ),
    (
        "autospotting_spot_price_buffer_percentage",
        "spotswap places no bid, so there is no buffer above the spot price",
    ),
    (
        "autospotting_on_demand_price_multiplier",
        "spotswap caps a candidate's spot price at the original type's on-demand price itself, unmultiplied",
    ),
    (
        "autospotting_spot_allocation_strategy",
        "spotswap always launches with price-capacity-optimized",
    ),
    (
        "autospotting_gp2_conversion_threshold",
        "spotswap launches from the group's own launch template unchanged and converts no volumes",
    ),
    (
        "autospotting_patch_beanstalk_userdata",
        "spotswap launches from the group's own launch template unchanged and patches no user data",
    ),
    (
        "patch_beanstalk_userdata",
        "spotswap launches from the group's own launch template unchanged and patches no user data",
    ),
];

/// Why a disallowed list next to an allowed list is not applied.
pub const DISALLOWED_WITH_ALLOWED_WHY: &str =
    "AutoSpotting does not apply its disallowed list when an allowed list is set, so neither does the translation";

/// The minutes AutoSpotting must have been quiet on a group before spotswap acts on it by
/// default: three of AutoSpotting's default 30-minute runs.
pub const QUIET_MINUTES: u32 = 90;

/// `SPOTSWAP_COMPAT=autospotting`: how AutoSpotting's filter is read, and its quiet period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AutoSpottingCompat {
    /// AutoSpotting's `TAG_FILTERING_MODE` (`SPOTSWAP_AUTOSPOTTING_TAG_FILTERING_MODE`):
    /// opt-in (default) manages groups carrying every filter tag, opt-out every other group.
    pub filter_mode: Mode,
    /// AutoSpotting's `FILTER_BY_TAGS` (`SPOTSWAP_AUTOSPOTTING_FILTER_BY_TAGS`):
    /// `spot-enabled=true` in opt-in mode, `spot-enabled=false` in opt-out mode.
    pub filter: Vec<(String, String)>,
    /// `SPOTSWAP_AUTOSPOTTING_QUIET_MINUTES`, default [`QUIET_MINUTES`]: no new swap in a group
    /// AutoSpotting launched for more recently than this.
    pub quiet_minutes: u32,
}

impl Default for AutoSpottingCompat {
    fn default() -> Self {
        Self {
            filter_mode: Mode::OptIn,
            filter: vec![(SPOT_ENABLED.to_string(), "true".to_string())],
            quiet_minutes: QUIET_MINUTES,
        }
    }
}

impl AutoSpottingCompat {
    /// `Some` when `SPOTSWAP_COMPAT=autospotting`, read with its variables; `None` when
    /// `SPOTSWAP_COMPAT` is unset or empty. Any other value is an error.
    pub fn from_env(lookup: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, ConfigError> {
        match lookup("SPOTSWAP_COMPAT").as_deref().map(str::trim) {
            None | Some("") => return Ok(None),
            Some("autospotting") => {}
            Some(other) => {
                return Err(ConfigError::invalid(
                    "SPOTSWAP_COMPAT",
                    other,
                    "expected autospotting, or empty for none",
                ))
            }
        }
        let mut c = Self::default();
        if let Some(v) = lookup("SPOTSWAP_AUTOSPOTTING_TAG_FILTERING_MODE").filter(|v| !v.trim().is_empty()) {
            c.filter_mode = match v.trim() {
                "opt-in" => Mode::OptIn,
                "opt-out" => Mode::OptOut,
                _ => {
                    return Err(ConfigError::invalid(
                        "SPOTSWAP_AUTOSPOTTING_TAG_FILTERING_MODE",
                        &v,
                        "expected opt-in or opt-out",
                    ))
                }
            };
            if c.filter_mode == Mode::OptOut {
                c.filter = vec![(SPOT_ENABLED.to_string(), "false".to_string())];
            }
        }
        if let Some(v) = lookup("SPOTSWAP_AUTOSPOTTING_FILTER_BY_TAGS").filter(|v| !v.trim().is_empty()) {
            c.filter = parse_filter("SPOTSWAP_AUTOSPOTTING_FILTER_BY_TAGS", &v)?;
        }
        if let Some(v) = lookup("SPOTSWAP_AUTOSPOTTING_QUIET_MINUTES").filter(|v| !v.trim().is_empty()) {
            c.quiet_minutes = v.trim().parse().map_err(|_| {
                ConfigError::invalid(
                    "SPOTSWAP_AUTOSPOTTING_QUIET_MINUTES",
                    &v,
                    "expected a whole number of minutes",
                )
            })?;
        }
        Ok(Some(c))
    }

    /// True when the group carries every tag of the filter, exactly.
    pub fn filter_matches(&self, group_tags: &BTreeMap<String, String>) -> bool {
        self.filter
            .iter()
            .all(|(k, v)| group_tags.get(k).is_some_and(|gv| gv == v))
    }

    /// Whether the group is managed: by `spotswap:enabled` when the group carries it
    /// (spotswap's own tag wins, read by [`crate::policy::is_managed`]), else by AutoSpotting's
    /// filter in its own mode.
    pub fn is_managed(&self, group_tags: &BTreeMap<String, String>, mode: Mode) -> Result<bool, ConfigError> {
        if group_tags.contains_key(tags::ENABLED) {
            return crate::policy::is_managed(group_tags, mode);
        }
        Ok(self.filter_matches(group_tags) == (self.filter_mode == Mode::OptIn))
    }
}

/// AutoSpotting's `FILTER_BY_TAGS`: `key=value` pairs separated by commas, whitespace removed.
/// An item without `=` or with an empty key is an error (AutoSpotting skipped it silently).
pub fn parse_filter(key: &str, value: &str) -> Result<Vec<(String, String)>, ConfigError> {
    let compact: String = value.chars().filter(|c| !c.is_whitespace()).collect();
    let mut out = Vec::new();
    for item in compact.split(',') {
        match item.split_once('=') {
            Some((k, v)) if !k.is_empty() => out.push((k.to_string(), v.to_string())),
            _ => {
                return Err(ConfigError::invalid(
                    key,
                    value,
                    format!("filter item {item:?} is not key=value"),
                ))
            }
        }
    }
    Ok(out)
}

/// AutoSpotting's floor for `desired`: `max(number, floor(desired × percent / 100 + 0.5))`,
/// never above desired. The arithmetic is AutoSpotting's own (IEEE doubles, half up).
pub fn floor(desired: u32, number: u32, percent: f64) -> u32 {
    let by_percent = if percent > 0.0 {
        (f64::from(desired) * percent / 100.0 + 0.5).floor().max(0.0) as u32
    } else {
        0
    };
    number.max(by_percent).min(desired)
}

/// One tag of AutoSpotting's that spotswap does not apply: one WARN line each.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IgnoredTag {
    /// The tag key.
    pub tag: String,
    /// Its value.
    pub value: String,
    /// Why it is ignored.
    pub why: &'static str,
}

/// A group's AutoSpotting configuration and what it is in spotswap's terms.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Translation {
    /// AutoSpotting's tags found on the group (its filter tag, `autospotting_*` and the
    /// Beanstalk tag), key → value.
    pub found: BTreeMap<String, String>,
    /// The spotswap tags that express them: what `spotswap migrate --apply` writes.
    pub spotswap_tags: BTreeMap<String, String>,
    /// AutoSpotting's floor, when its number or percentage tag is set.
    pub floor: Option<FloorRule>,
    /// `autospotting_allowed_instance_types=current`: only the original's own type.
    pub same_type_only: bool,
    /// Tags found and not applied, with why.
    pub ignored: Vec<IgnoredTag>,
    /// Every difference between the two tools' behaviour for this group, one line each.
    pub differences: Vec<String>,
}

fn number(key: &str, value: &str) -> Result<u32, ConfigError> {
    value
        .parse::<u32>()
        .ok()
        .filter(|n| *n <= 100_000)
        .ok_or_else(|| ConfigError::invalid(key, value, "expected a whole number from 0 to 100000"))
}

fn percentage(key: &str, value: &str) -> Result<f64, ConfigError> {
    match value.parse::<f64>() {
        Ok(p) if p.is_finite() && (0.0..=100.0).contains(&p) => Ok(p),
        _ => Err(ConfigError::invalid(
            key,
            value,
            "expected a percentage from 0 to 100",
        )),
    }
}

/// AutoSpotting's type list: items separated by spaces or commas, empty items dropped,
/// duplicates dropped. `None` for `current`. Each item must be a glob spotswap can read.
fn type_list(key: &str, value: &str) -> Result<Option<Vec<String>>, ConfigError> {
    let mut items: Vec<String> = Vec::new();
    for item in value.split([' ', ',']).filter(|i| !i.is_empty()) {
        if !items.iter().any(|i| i == item) {
            items.push(item.to_string());
        }
    }
    if items.is_empty() {
        return Err(ConfigError::invalid(key, value, "empty type list"));
    }
    if items == ["current"] {
        return Ok(None);
    }
    // The glob rules are spotswap's own: one parser for every list.
    TypeGlobs::parse(key, &items.join(","))
        .map_err(|e| ConfigError::invalid(key, value, e.problem().to_string()))?;
    Ok(Some(items))
}

/// Translate a group's AutoSpotting tags. A malformed alias value is the error, naming the
/// alias tag and its value.
pub fn translate(group_tags: &BTreeMap<String, String>) -> Result<Translation, ConfigError> {
    let mut t = Translation::default();
    for (k, v) in group_tags {
        if k == SPOT_ENABLED || k.starts_with("autospotting_") || k == "patch_beanstalk_userdata" {
            t.found.insert(k.clone(), v.clone());
        }
    }
    let number = group_tags
        .get(MIN_ON_DEMAND_NUMBER)
        .map(|v| number(MIN_ON_DEMAND_NUMBER, v))
        .transpose()?;
    let percent = group_tags
        .get(MIN_ON_DEMAND_PERCENTAGE)
        .map(|v| percentage(MIN_ON_DEMAND_PERCENTAGE, v))
        .transpose()?;
    if number.is_some() || percent.is_some() {
        let n = number.unwrap_or(0);
        let p = percent.unwrap_or(0.0);
        t.floor = Some(FloorRule::AutoSpotting {
            number: n,
            percent: p,
        });
        if number.is_some() {
            t.spotswap_tags.insert(tags::ON_DEMAND_BASE.into(), n.to_string());
        }
        if let Some(p) = percent {
            // Whole percent, rounded up: spotswap's floor is then never below AutoSpotting's.
            let whole = p.ceil() as u32;
            t.spotswap_tags
                .insert(tags::ON_DEMAND_PERCENT.into(), whole.to_string());
            if p.fract() != 0.0 {
                t.differences.push(format!(
                    "{MIN_ON_DEMAND_PERCENTAGE}={p} has a fraction; spotswap:on-demand-percent is a whole number, so {whole}"
                ));
            }
            if p > 0.0 {
                t.differences.push(
                    "percentage rounding: AutoSpotting rounds half up (2.4 -> 2, 2.5 -> 3), spotswap rounds up (2.4 -> 3)".into(),
                );
            }
        }
        if number.is_some() && percent.is_some_and(|p| p > 0.0) {
            t.differences.push(
                "number and percentage: AutoSpotting keeps the larger of the number and the percentage of all instances; spotswap keeps the base plus the percentage of the capacity above the base".into(),
            );
        }
        if percent.is_some_and(|p| p > 0.0) {
            t.differences.push(
                "AutoSpotting counts the percentage over the instances in the group at the time; spotswap over the desired capacity".into(),
            );
        }
    }
    let allowed = group_tags
        .get(ALLOWED_INSTANCE_TYPES)
        .map(|v| type_list(ALLOWED_INSTANCE_TYPES, v).map(|l| (v, l)))
        .transpose()?;
    let disallowed = group_tags
        .get(DISALLOWED_INSTANCE_TYPES)
        .map(|v| type_list(DISALLOWED_INSTANCE_TYPES, v).map(|l| (v, l)))
        .transpose()?;
    match &allowed {
        Some((_, Some(list))) => {
            t.spotswap_tags.insert(tags::ALLOWED_TYPES.into(), list.join(","));
        }
        Some((_, None)) => {
            t.same_type_only = true;
            t.differences.push(format!(
                "{ALLOWED_INSTANCE_TYPES}=current: spotswap has no tag for \"the original's own type\"; in compatibility mode it keeps to it, after migrating set spotswap:allowed-types to the group's type"
            ));
        }
        None => {}
    }
    if let Some((v, list)) = &disallowed {
        if allowed.is_some() {
            t.ignored.push(IgnoredTag {
                tag: DISALLOWED_INSTANCE_TYPES.into(),
                value: (*v).clone(),
                why: DISALLOWED_WITH_ALLOWED_WHY,
            });
            t.differences.push(
                "denied types: AutoSpotting ignores its disallowed list when an allowed list is set; spotswap applies spotswap:denied-types even then".into(),
            );
        } else if let Some(list) = list {
            t.spotswap_tags.insert(tags::DENIED_TYPES.into(), list.join(","));
        } else {
            return Err(ConfigError::invalid(
                DISALLOWED_INSTANCE_TYPES,
                v,
                "current is only meaningful in the allowed list",
            ));
        }
    }
    if CRON_TAGS.iter().any(|k| group_tags.contains_key(*k)) {
        let get = |k: &str| group_tags.get(k).map(String::as_str);
        let window = cron::translate(
            get(cron::CRON_SCHEDULE),
            get(cron::CRON_TIMEZONE),
            get(cron::CRON_STATE),
        )?;
        let found = CRON_TAGS
            .iter()
            .filter_map(|k| group_tags.get(*k).map(|v| format!("{k}={v}")))
            .collect::<Vec<_>>()
            .join(" ");
        match window {
            CronWindow::Always => t.differences.push(format!(
                "{found}: AutoSpotting acts at every hour under it, so spotswap needs no spotswap:schedule"
            )),
            CronWindow::Schedule(s) => {
                t.differences.push(format!(
                    "{found}: AutoSpotting acts in an hour only when that hour and the next both match, so `9-18` is 09:00-18:00; spotswap:schedule={s}"
                ));
                t.differences.push(
                    "outside the window spotswap still finishes the swaps in flight and handles interruptions; it only starts no new swap".into(),
                );
                t.spotswap_tags.insert(tags::SCHEDULE.into(), s);
            }
        }
    }
    for (key, why) in IGNORED_TAGS {
        if let Some(v) = group_tags.get(key) {
            t.ignored.push(IgnoredTag {
                tag: key.into(),
                value: v.clone(),
                why,
            });
        }
    }
    if let Some(v) = group_tags.get(tags::IGNORE_AUTOSPOTTING) {
        if v != "true" && v != "false" {
            return Err(ConfigError::invalid(
                tags::IGNORE_AUTOSPOTTING,
                v,
                "expected true or false",
            ));
        }
    }
    Ok(t)
}
