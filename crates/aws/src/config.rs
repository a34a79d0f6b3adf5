//! Configuration read once at start-up from the environment into a typed [`Config`].

use serde::Serialize;
use spotswap_core::compat_mode::AutoSpottingCompat;
use spotswap_core::{policy::Mode, ConfigError, Policy, Settings};

use crate::throttle::ApiRates;

/// Everything the workflows read from the environment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Config {
    /// Mode and per-tag defaults.
    pub settings: Settings,
    /// `SPOTSWAP_DRY_RUN=true`: decide and log, change nothing.
    pub dry_run: bool,
    /// `SPOTSWAP_ORPHAN_MINUTES`, default 20.
    pub orphan_minutes: u32,
    /// `SPOTSWAP_EVENT_BUS`, default `default`. Empty disables publishing.
    pub event_bus: String,
    /// `SPOTSWAP_PRICE_FILE`: on-demand prices when the Price List API cannot be reached.
    pub price_file: Option<String>,
    /// `SPOTSWAP_MAX_CONCURRENCY`: groups executed at once, default 8.
    pub max_concurrency: usize,
    /// `SPOTSWAP_API_RATES`: client-side token buckets per API class
    /// (`launch=2/5,ec2-mutating=5/50,…`), over the defaults of [`ApiRates`].
    pub api_rates: ApiRates,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            settings: Settings::default(),
            dry_run: false,
            orphan_minutes: 20,
            event_bus: "default".to_string(),
            price_file: None,
            max_concurrency: 8,
            api_rates: ApiRates::default(),
        }
    }
}

fn parse_bool(key: &str, v: &str) -> Result<bool, ConfigError> {
    match v.trim() {
        "true" | "1" => Ok(true),
        "false" | "0" | "" => Ok(false),
        other => Err(ConfigError::InvalidValue {
            key: key.into(),
            value: other.into(),
            problem: "expected true or false".into(),
        }),
    }
}

fn parse_num<T: std::str::FromStr>(key: &str, v: &str) -> Result<T, ConfigError> {
    v.trim().parse().map_err(|_| ConfigError::InvalidValue {
        key: key.into(),
        value: v.into(),
        problem: "expected a whole number".into(),
    })
}

impl Config {
    /// Read from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Read through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut c = Self::default();
        if let Some(m) = lookup("SPOTSWAP_MODE") {
            c.settings.mode = m.trim().parse::<Mode>()?;
        }
        c.settings.defaults = Policy::from_env(&lookup)?;
        c.settings.compat = AutoSpottingCompat::from_env(&lookup)?;
        if let Some(v) = lookup("SPOTSWAP_DRY_RUN") {
            c.dry_run = parse_bool("SPOTSWAP_DRY_RUN", &v)?;
        }
        if let Some(v) = lookup("SPOTSWAP_ORPHAN_MINUTES") {
            c.orphan_minutes = parse_num("SPOTSWAP_ORPHAN_MINUTES", &v)?;
        }
        if let Some(v) = lookup("SPOTSWAP_EVENT_BUS") {
            c.event_bus = v.trim().to_string();
        }
        c.price_file = lookup("SPOTSWAP_PRICE_FILE").filter(|v| !v.trim().is_empty());
        if let Some(v) = lookup("SPOTSWAP_MAX_CONCURRENCY") {
            c.max_concurrency = parse_num::<usize>("SPOTSWAP_MAX_CONCURRENCY", &v)?.clamp(1, 64);
        }
        if let Some(v) = lookup("SPOTSWAP_MAX_SWAPS_IN_FLIGHT").filter(|v| !v.trim().is_empty()) {
            c.settings.max_swaps_in_flight = Some(parse_num("SPOTSWAP_MAX_SWAPS_IN_FLIGHT", &v)?);
        }
        if let Some(v) = lookup("SPOTSWAP_API_RATES") {
            c.api_rates = ApiRates::parse("SPOTSWAP_API_RATES", &v)?;
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn cfg(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let m: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| m.get(k).cloned())
    }

    #[test]
    fn environment_is_read_into_a_typed_config() {
        let c = cfg(&[
            ("SPOTSWAP_MODE", "opt-out"),
            ("SPOTSWAP_DRY_RUN", "true"),
            ("SPOTSWAP_ORPHAN_MINUTES", "30"),
            ("SPOTSWAP_ON_DEMAND_PERCENT", "25"),
            ("SPOTSWAP_MAX_SWAPS_IN_FLIGHT", "40"),
        ])
        .unwrap();
        assert_eq!(c.settings.max_swaps_in_flight, Some(40));
        assert_eq!(c.settings.mode, Mode::OptOut);
        assert!(c.dry_run);
        assert_eq!(c.orphan_minutes, 30);
        assert_eq!(c.settings.defaults.on_demand_percent, 25);
        assert_eq!(c.event_bus, "default");
    }

    #[test]
    fn compatibility_mode_is_read_with_autospottings_filter() {
        assert_eq!(cfg(&[]).unwrap().settings.compat, None);
        assert_eq!(cfg(&[("SPOTSWAP_COMPAT", "")]).unwrap().settings.compat, None);
        let c = cfg(&[
            ("SPOTSWAP_COMPAT", "autospotting"),
            ("SPOTSWAP_AUTOSPOTTING_QUIET_MINUTES", "30"),
        ])
        .unwrap();
        let compat = c.settings.compat.unwrap();
        assert_eq!(compat.quiet_minutes, 30);
        assert_eq!(compat.filter, [("spot-enabled".to_string(), "true".to_string())]);
        assert_eq!(
            cfg(&[("SPOTSWAP_COMPAT", "autospoting")]).unwrap_err().key(),
            "SPOTSWAP_COMPAT"
        );
    }

    #[test]
    fn bad_values_are_errors_not_defaults() {
        assert_eq!(
            cfg(&[("SPOTSWAP_MODE", "sometimes")]).unwrap_err().key(),
            "SPOTSWAP_MODE"
        );
        assert_eq!(
            cfg(&[("SPOTSWAP_DRY_RUN", "yes")]).unwrap_err().key(),
            "SPOTSWAP_DRY_RUN"
        );
        assert_eq!(
            cfg(&[("SPOTSWAP_ON_DEMAND_BASE", "-2")]).unwrap_err().key(),
            "SPOTSWAP_ON_DEMAND_BASE"
        );
        assert_eq!(
            cfg(&[("SPOTSWAP_MAX_SWAPS_IN_FLIGHT", "many")])
                .unwrap_err()
                .key(),
            "SPOTSWAP_MAX_SWAPS_IN_FLIGHT"
        );
    }
}
