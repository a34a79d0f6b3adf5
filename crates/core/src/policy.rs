//! The tag schema (DESIGN.md §3) parsed into a typed [`Policy`], and the risk floor.
//!
//! A bad value is never replaced by a default: it is a [`ConfigError`] naming the tag and the
//! value, and the caller skips the group.

use std::collections::BTreeMap;
use std::str::FromStr;

use glob::Pattern;
use serde::Serialize;

use crate::error::ConfigError;
use crate::tags;
use crate::window::Window;

/// Whether groups opt in (`spotswap:enabled=true`) or out (`spotswap:enabled=false`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Only groups tagged `spotswap:enabled=true` are managed.
    #[default]
    OptIn,
    /// Every group is managed unless tagged `spotswap:enabled=false`.
    OptOut,
}

impl FromStr for Mode {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "opt-in" => Ok(Self::OptIn),
            "opt-out" => Ok(Self::OptOut),
            _ => Err(ConfigError::invalid(
                "SPOTSWAP_MODE",
                s,
                "expected opt-in or opt-out",
            )),
        }
    }
}

/// What to do on a rebalance recommendation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnRebalance {
    /// Start a proactive swap into another pool.
    Replace,
    /// Log and do nothing.
    Ignore,
}

/// What a group's launching lifecycle hooks (`autoscaling:EC2_INSTANCE_LAUNCHING`) mean for an
/// attach-based swap: AWS runs no lifecycle hook for an instance that is attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LaunchHooks {
    /// No attach-based swap in a group with a launching hook (`LaunchHookWouldNotRun`).
    #[default]
    Respect,
    /// `spotswap:launch-hooks=bypass`: the owner accepts that attached instances skip the hook.
    Bypass,
}

impl LaunchHooks {
    /// Whether the group's launching hooks can block a swap, and so are worth reading.
    pub fn matter(self) -> bool {
        self == LaunchHooks::Respect
    }
}

/// How a group treats the account's Reserved Instances and Savings Plans
/// (`spotswap:commitments`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CommitmentMode {
    /// Never swap an on-demand instance whose removal would leave a commitment unused
    /// (`CommitmentCovered`).
    #[default]
    Keep,
    /// `keep`, and convert spot back to on-demand where a commitment sits unused
    /// (`CommitmentUnused`).
    Fill,
    /// `keep`, and no new swap while the commitments cannot be read (`CommitmentsUnknown`).
    Strict,
}

/// A comma-separated list of instance-type globs.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TypeGlobs(Vec<Pattern>);

impl TypeGlobs {
    /// Parse `m5.*,m6i.*,c5.large`. Empty items, invalid globs and duplicates are errors.
    pub fn parse(key: &str, value: &str) -> Result<Self, ConfigError> {
        let mut out: Vec<Pattern> = Vec::new();
        for raw in value.split(',') {
            let item = raw.trim();
            if item.is_empty() {
                return Err(ConfigError::invalid(key, value, "empty glob in list"));
            }
            if !item
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-*?[]!".contains(c))
            {
                return Err(ConfigError::invalid(
                    key,
                    value,
                    format!("glob {item:?} has a character no instance type has"),
                ));
            }
            let pattern = Pattern::new(item)
                .map_err(|e| ConfigError::invalid(key, value, format!("invalid glob {item:?}: {}", e.msg)))?;
            if out.iter().any(|p| p.as_str() == item) {
                return Err(ConfigError::invalid(
                    key,
                    value,
                    format!("duplicate glob {item:?}"),
                ));
            }
            out.push(pattern);
        }
        Ok(Self(out))
    }

    /// True when no glob was given.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// True when any glob matches `instance_type`.
    pub fn matches(&self, instance_type: &str) -> bool {
        self.0.iter().any(|p| p.matches(instance_type))
    }

    /// The globs as written.
    pub fn as_strs(&self) -> Vec<&str> {
        self.0.iter().map(Pattern::as_str).collect()
    }
}

impl Serialize for TypeGlobs {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.as_strs().serialize(s)
    }
}

/// How the risk floor is counted.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
#[serde(rename_all = "kebab-case", tag = "rule")]
pub enum FloorRule {
    /// spotswap's own (DESIGN.md §3): `base + ceil(above base × percent)`, AWS's rounding.
    #[default]
    Aws,
    /// AutoSpotting's, for a group configured only by its alias tags under
    /// `SPOTSWAP_COMPAT=autospotting` ([`crate::compat_mode`]): `max(number, round(desired ×
    /// percent / 100))`, rounding half up, never above desired.
    AutoSpotting {
        /// `autospotting_min_on_demand_number`.
        number: u32,
        /// `autospotting_min_on_demand_percentage`, 0–100, fractions allowed.
        percent: f64,
    },
}

/// One group's effective configuration: tags over environment defaults over built-in defaults.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Policy {
    /// `spotswap:on-demand-base`.
    pub on_demand_base: u32,
    /// `spotswap:on-demand-percent`, 0–100.
    pub on_demand_percent: u32,
    /// `spotswap:allowed-types`; empty means any compatible type.
    pub allowed_types: TypeGlobs,
    /// `spotswap:denied-types`; always applies.
    pub denied_types: TypeGlobs,
    /// `spotswap:max-pool-percent`, 1–100.
    pub max_pool_percent: u32,
    /// `spotswap:replace-per-cycle`; 0 pauses new swaps.
    pub replace_per_cycle: u32,
    /// `spotswap:on-rebalance`.
    pub on_rebalance: OnRebalance,
    /// `spotswap:cooldown-minutes`.
    pub cooldown_minutes: u32,
    /// `spotswap:shelter-percent`, 0–100.
    pub shelter_percent: u32,
    /// `spotswap:replace-outdated`: replace members of another template version.
    pub replace_outdated: bool,
    /// `spotswap:schedule` and `spotswap:paused-until`, and `SPOTSWAP_PAUSED`: when new swaps
    /// may start.
    pub window: Window,
    /// `spotswap:launch-hooks`.
    pub launch_hooks: LaunchHooks,
    /// `spotswap:commitments`.
    pub commitments: CommitmentMode,
    /// The instance types the group's own mixed instances policy may launch; `None` for a
    /// group without one. Not a tag: set by [`crate::mixed::effective_policy`].
    pub group_types: Option<std::collections::BTreeSet<String>>,
    /// The rule the floor is counted by: spotswap's, unless a compatibility mode translated
    /// another tool's floor ([`crate::compat_mode`]).
    pub floor_rule: FloorRule,
    /// Only the original's own instance type may replace it (AutoSpotting's
    /// `autospotting_allowed_instance_types=current`).
    pub same_type_only: bool,
    /// `spotswap:carry-eip`: Elastic IPs follow the replacement ([`crate::carry`]).
    pub carry_eip: bool,
    /// `spotswap:carry-volumes`: the tag key of the group's data volumes, which follow the
    /// replacement ([`crate::carry`]).
    pub carry_volumes: Option<String>,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            on_demand_base: 0,
            on_demand_percent: 0,
            allowed_types: TypeGlobs::default(),
            denied_types: TypeGlobs::default(),
            max_pool_percent: 50,
            replace_per_cycle: 1,
            on_rebalance: OnRebalance::Replace,
            cooldown_minutes: 60,
            shelter_percent: 10,
            replace_outdated: false,
            window: Window::default(),
            launch_hooks: LaunchHooks::Respect,
            commitments: CommitmentMode::Keep,
            group_types: None,
            floor_rule: FloorRule::Aws,
            same_type_only: false,
            carry_eip: false,
            carry_volumes: None,
        }
    }
}

/// The tags of the schema that carry settings, in the order they are checked.
pub const SETTING_TAGS: [&str; 14] = [
    tags::ON_DEMAND_BASE,
    tags::ON_DEMAND_PERCENT,
    tags::ALLOWED_TYPES,
    tags::DENIED_TYPES,
    tags::MAX_POOL_PERCENT,
    tags::REPLACE_PER_CYCLE,
    tags::ON_REBALANCE,
    tags::COOLDOWN_MINUTES,
    tags::SHELTER_PERCENT,
    tags::REPLACE_OUTDATED,
    tags::LAUNCH_HOOKS,
    tags::CARRY_EIP,
    tags::CARRY_VOLUMES,
    tags::COMMITMENTS,
];

/// `SPOTSWAP_PAUSED=true` (FIXED): no new swaps in any group of the stack.
pub const PAUSED_ENV: &str = "SPOTSWAP_PAUSED";

/// The environment variable that gives a tag's global default: `spotswap:on-demand-base`
/// becomes `SPOTSWAP_ON_DEMAND_BASE`.
pub fn env_name(tag: &str) -> String {
    tag.replace([':', '-'], "_").to_ascii_uppercase()
}

fn boolean(key: &str, value: &str) -> Result<bool, ConfigError> {
    match value.trim() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(ConfigError::invalid(key, value, "expected true or false")),
    }
}

fn number(key: &str, value: &str, min: u32, max: u32) -> Result<u32, ConfigError> {
    let n: u32 = value.trim().parse().map_err(|_| {
        ConfigError::invalid(key, value, format!("expected a whole number from {min} to {max}"))
    })?;
    if n < min || n > max {
        return Err(ConfigError::invalid(
            key,
            value,
            format!("out of range: expected {min} to {max}"),
        ));
    }
    Ok(n)
}

impl Policy {
    /// Apply one setting by its tag key. Unknown keys are ignored.
    fn set(&mut self, key: &str, display_key: &str, value: &str) -> Result<(), ConfigError> {
        match key {
            tags::ON_DEMAND_BASE => self.on_demand_base = number(display_key, value, 0, 100_000)?,
            tags::ON_DEMAND_PERCENT => self.on_demand_percent = number(display_key, value, 0, 100)?,
            tags::ALLOWED_TYPES => self.allowed_types = TypeGlobs::parse(display_key, value)?,
            tags::DENIED_TYPES => self.denied_types = TypeGlobs::parse(display_key, value)?,
            tags::MAX_POOL_PERCENT => self.max_pool_percent = number(display_key, value, 1, 100)?,
            tags::REPLACE_PER_CYCLE => self.replace_per_cycle = number(display_key, value, 0, 1000)?,
            tags::COOLDOWN_MINUTES => self.cooldown_minutes = number(display_key, value, 0, 10_080)?,
            tags::SHELTER_PERCENT => self.shelter_percent = number(display_key, value, 0, 100)?,
            tags::REPLACE_OUTDATED => self.replace_outdated = boolean(display_key, value)?,
            // Exactly `true`/`false`: a resource moved on a guess is a resource moved twice.
            tags::CARRY_EIP => {
                self.carry_eip = match value {
                    "true" => true,
                    "false" => false,
                    _ => return Err(ConfigError::invalid(display_key, value, "expected true or false")),
                }
            }
            tags::CARRY_VOLUMES => {
                self.carry_volumes = Some(crate::carry::volume_tag_key(display_key, value)?)
            }
            tags::ON_REBALANCE => {
                self.on_rebalance = match value.trim() {
                    "replace" => OnRebalance::Replace,
                    "ignore" => OnRebalance::Ignore,
                    _ => {
                        return Err(ConfigError::invalid(
                            display_key,
                            value,
                            "expected replace or ignore",
                        ))
                    }
                }
            }
            tags::LAUNCH_HOOKS => {
                // Only the one FIXED value: anything else is a typo, and guessing "respect"
                // would silently stop the swaps the owner asked for.
                self.launch_hooks = match value {
                    "bypass" => LaunchHooks::Bypass,
                    _ => return Err(ConfigError::invalid(display_key, value, "expected bypass")),
                }
            }
            tags::COMMITMENTS => {
                // Exactly the three FIXED values: a typo must not quietly mean `keep`.
                self.commitments = match value {
                    "keep" => CommitmentMode::Keep,
                    "fill" => CommitmentMode::Fill,
                    "strict" => CommitmentMode::Strict,
                    _ => {
                        return Err(ConfigError::invalid(
                            display_key,
                            value,
                            "expected keep, fill or strict",
                        ))
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Global defaults from environment variables named after the tags
    /// (`SPOTSWAP_ON_DEMAND_PERCENT`, …). `lookup` returns a variable's value.
    pub fn from_env(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut policy = Self::default();
        for tag in SETTING_TAGS {
            let name = env_name(tag);
            if let Some(value) = lookup(&name) {
                policy.set(tag, &name, &value)?;
            }
        }
        policy.window.stack_paused = match lookup(PAUSED_ENV).as_deref() {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => return Err(ConfigError::invalid(PAUSED_ENV, other, "expected true or false")),
        };
        Ok(policy)
    }

    /// This group's policy: its tags over `defaults`. The first bad value is the error.
    pub fn from_tags(group_tags: &BTreeMap<String, String>, defaults: &Policy) -> Result<Self, ConfigError> {
        let mut policy = defaults.clone();
        for tag in SETTING_TAGS {
            if let Some(value) = group_tags.get(tag) {
                policy.set(tag, tag, value)?;
            }
        }
        policy.window = Window {
            stack_paused: defaults.window.stack_paused,
            ..Window::from_tags(group_tags)?
        };
        Ok(policy)
    }

    /// The risk floor for `desired`: how many instances must stay on-demand.
    pub fn required_on_demand(&self, desired: u32) -> u32 {
        match self.floor_rule {
            FloorRule::Aws => required_on_demand(desired, self.on_demand_base, self.on_demand_percent),
            FloorRule::AutoSpotting { number, percent } => {
                crate::compat_mode::autospotting::floor(desired, number, percent)
            }
        }
    }

    /// True when `instance_type` passes the allowed and denied globs, and is one of the group's
    /// own mixed-instances types when it has a policy.
    pub fn type_allowed(&self, instance_type: &str) -> bool {
        self.group_types
            .as_ref()
            .is_none_or(|t| t.contains(instance_type))
            && (self.allowed_types.is_empty() || self.allowed_types.matches(instance_type))
            && !self.denied_types.matches(instance_type)
    }

    /// True when `candidate` may replace an instance of type `original`: the globs, and
    /// [`Policy::same_type_only`].
    pub fn may_replace(&self, original: &str, candidate: &str) -> bool {
        self.type_allowed(candidate) && (!self.same_type_only || original == candidate)
    }
}

/// `min(desired, base + ceil(max(desired - base, 0) × percent / 100))`: AWS's rounding, in
/// favour of on-demand.
pub fn required_on_demand(desired: u32, base: u32, percent: u32) -> u32 {
    let above = u64::from(desired.saturating_sub(base));
    let pct = u64::from(percent.min(100));
    let extra = (above * pct).div_ceil(100);
    let total = u64::from(base) + extra;
    total.min(u64::from(desired)) as u32
}

/// Whether a group is managed, from its `spotswap:enabled` tag and the mode.
/// A value other than exactly `true`/`false` is a configuration error. No trimming: the IAM
/// conditions of the template match `true` exactly, so a group we called managed for ` true`
/// would get launches it could never have attached.
pub fn is_managed(group_tags: &BTreeMap<String, String>, mode: Mode) -> Result<bool, ConfigError> {
    match (group_tags.get(tags::ENABLED).map(String::as_str), mode) {
        (Some("true"), _) => Ok(true),
        (Some("false"), _) => Ok(false),
        (None, Mode::OptIn) => Ok(false),
        (None, Mode::OptOut) => Ok(true),
        (Some(other), _) => Err(ConfigError::invalid(
            tags::ENABLED,
            other,
            "expected true or false",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn untagged_group_gets_the_documented_defaults() {
        // GIVEN a group with no setting tags
        // WHEN its policy is parsed
        let p = Policy::from_tags(&tags(&[]), &Policy::default()).unwrap();
        // THEN every default of DESIGN.md §3 applies
        assert_eq!(p.on_demand_base, 0);
        assert_eq!(p.on_demand_percent, 0);
        assert!(p.allowed_types.is_empty());
        assert_eq!(p.max_pool_percent, 50);
        assert_eq!(p.replace_per_cycle, 1);
        assert_eq!(p.on_rebalance, OnRebalance::Replace);
        assert_eq!(p.cooldown_minutes, 60);
        assert_eq!(p.shelter_percent, 10);
        assert_eq!(p.launch_hooks, LaunchHooks::Respect);
    }

    #[test]
    fn commitments_takes_keep_fill_or_strict() {
        // GIVEN no tag, THEN keep
        assert_eq!(
            Policy::from_tags(&tags(&[]), &Policy::default())
                .unwrap()
                .commitments,
            CommitmentMode::Keep
        );
        // GIVEN each FIXED value THEN it is read
        for (v, m) in [
            ("keep", CommitmentMode::Keep),
            ("fill", CommitmentMode::Fill),
            ("strict", CommitmentMode::Strict),
        ] {
            let p = Policy::from_tags(&tags(&[(tags::COMMITMENTS, v)]), &Policy::default()).unwrap();
            assert_eq!(p.commitments, m);
        }
        // AND anything else is a configuration error naming the tag
        for bad in ["", "Fill", "true", " keep", "fill,strict"] {
            let err = Policy::from_tags(&tags(&[(tags::COMMITMENTS, bad)]), &Policy::default()).unwrap_err();
            assert_eq!(err.key(), tags::COMMITMENTS, "{bad:?}");
        }
    }

    #[test]
    fn launch_hooks_takes_only_bypass() {
        // GIVEN spotswap:launch-hooks=bypass
        let p = Policy::from_tags(&tags(&[(tags::LAUNCH_HOOKS, "bypass")]), &Policy::default()).unwrap();
        // THEN the owner's acceptance is read
        assert_eq!(p.launch_hooks, LaunchHooks::Bypass);
        // AND any other value is a configuration error naming the tag and the value
        for bad in ["", "Bypass", "respect", " bypass", "true"] {
            let err = Policy::from_tags(&tags(&[(tags::LAUNCH_HOOKS, bad)]), &Policy::default()).unwrap_err();
            assert_eq!(err.key(), tags::LAUNCH_HOOKS, "{bad:?}");
        }
    }

    #[test]
    fn every_tag_is_read() {
        // GIVEN a group that sets every tag
        let t = tags(&[
            (tags::ON_DEMAND_BASE, "2"),
            (tags::ON_DEMAND_PERCENT, "25"),
            (tags::ALLOWED_TYPES, "m5.*, c5.large"),
            (tags::DENIED_TYPES, "m5.metal"),
            (tags::MAX_POOL_PERCENT, "40"),
            (tags::REPLACE_PER_CYCLE, "3"),
            (tags::ON_REBALANCE, "ignore"),
            (tags::COOLDOWN_MINUTES, "15"),
            (tags::SHELTER_PERCENT, "20"),
        ]);
        // WHEN parsed
        let p = Policy::from_tags(&t, &Policy::default()).unwrap();
        // THEN each value lands in its field
        assert_eq!((p.on_demand_base, p.on_demand_percent), (2, 25));
        assert_eq!(p.allowed_types.as_strs(), vec!["m5.*", "c5.large"]);
        assert_eq!((p.max_pool_percent, p.replace_per_cycle), (40, 3));
        assert_eq!(p.on_rebalance, OnRebalance::Ignore);
        assert_eq!((p.cooldown_minutes, p.shelter_percent), (15, 20));
        // AND the denied list applies even to an allowed type
        assert!(p.type_allowed("m5.large"));
        assert!(!p.type_allowed("m5.metal"));
        assert!(!p.type_allowed("r5.large"));
    }

    #[test]
    fn bad_values_name_the_tag_and_the_value() {
        // GIVEN each kind of bad value DESIGN.md §3 names
        let cases = [
            (tags::ON_DEMAND_PERCENT, "abc"),
            (tags::ON_DEMAND_PERCENT, "150"),
            (tags::ON_DEMAND_BASE, "-1"),
            (tags::ALLOWED_TYPES, ""),
            (tags::ALLOWED_TYPES, "m5.*,"),
            (tags::DENIED_TYPES, "m5.[large"),
            (tags::ALLOWED_TYPES, "m5.*,m5.*"),
            (tags::MAX_POOL_PERCENT, "0"),
            (tags::ON_REBALANCE, "maybe"),
            (tags::COOLDOWN_MINUTES, "1.5"),
            (tags::SHELTER_PERCENT, "101"),
        ];
        for (tag, value) in cases {
            // WHEN the policy is parsed
            let err = Policy::from_tags(&tags(&[(tag, value)]), &Policy::default()).unwrap_err();
            // THEN the error names exactly that tag and value
            assert_eq!(err.key(), tag, "{tag}={value}");
            assert_eq!(err.value(), value);
            assert!(err.to_string().contains(tag));
        }
    }

    #[test]
    fn environment_defaults_are_overridden_by_tags() {
        // GIVEN a global default of 50% on-demand from the environment
        let defaults =
            Policy::from_env(|k| (k == "SPOTSWAP_ON_DEMAND_PERCENT").then(|| "50".into())).unwrap();
        // WHEN one group says 10% and another says nothing
        let tagged = Policy::from_tags(&tags(&[(tags::ON_DEMAND_PERCENT, "10")]), &defaults).unwrap();
        let plain = Policy::from_tags(&tags(&[]), &defaults).unwrap();
        // THEN the tag wins and the default fills in
        assert_eq!(tagged.on_demand_percent, 10);
        assert_eq!(plain.on_demand_percent, 50);
        // AND a bad environment value names the variable
        let err = Policy::from_env(|k| (k == "SPOTSWAP_MAX_POOL_PERCENT").then(|| "x".into())).unwrap_err();
        assert_eq!(err.key(), "SPOTSWAP_MAX_POOL_PERCENT");
    }

    #[test]
    fn floor_uses_aws_rounding_in_favour_of_on_demand() {
        // GIVEN the examples of AWS's OnDemandPercentageAboveBaseCapacity
        assert_eq!(required_on_demand(10, 0, 0), 0);
        assert_eq!(required_on_demand(10, 0, 50), 5);
        assert_eq!(required_on_demand(3, 0, 50), 2, "1.5 rounds up");
        assert_eq!(required_on_demand(5, 2, 50), 4, "2 + ceil(1.5)");
        assert_eq!(required_on_demand(1, 2, 0), 1, "never more than desired");
        assert_eq!(required_on_demand(0, 2, 100), 0);
        assert_eq!(required_on_demand(7, 0, 100), 7);
    }

    #[test]
    fn managed_follows_the_mode() {
        assert!(is_managed(&tags(&[(tags::ENABLED, "true")]), Mode::OptIn).unwrap());
        assert!(!is_managed(&tags(&[]), Mode::OptIn).unwrap());
        assert!(is_managed(&tags(&[]), Mode::OptOut).unwrap());
        assert!(!is_managed(&tags(&[(tags::ENABLED, "false")]), Mode::OptOut).unwrap());
        assert_eq!(
            is_managed(&tags(&[(tags::ENABLED, "yes")]), Mode::OptOut)
                .unwrap_err()
                .key(),
            tags::ENABLED
        );
        // exactly `true`, as the template's IAM conditions require
        for value in [" true", "TRUE", "true\n"] {
            assert!(
                is_managed(&tags(&[(tags::ENABLED, value)]), Mode::OptIn).is_err(),
                "{value:?}"
            );
        }
    }

    proptest! {
        #[test]
        fn floor_is_bounded_and_monotonic(desired in 0u32..10_000, base in 0u32..10_000, pct in 0u32..=100) {
            let floor = required_on_demand(desired, base, pct);
            // never more than desired, never less than the base (when capacity allows)
            prop_assert!(floor <= desired);
            prop_assert!(floor >= base.min(desired));
            // the percentage above the base is met, rounding up
            let above = desired.saturating_sub(base) as u64;
            if desired > base {
                prop_assert!((floor - base) as u64 * 100 >= above * pct as u64);
                prop_assert!(((floor - base) as u64).saturating_sub(1) * 100 < above * pct as u64 || floor == base);
            }
            // more capacity never lowers the floor
            prop_assert!(required_on_demand(desired + 1, base, pct) >= floor);
        }
    }
}
