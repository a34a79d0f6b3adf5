//! Reading a scenario's JSON value field by field, each error naming its field.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use spotswap_core::{InstanceTypeSpec, Pool, Timestamp};

use super::*;

mod commitments;

type Obj = Map<String, Value>;

fn obj<'a>(v: &'a Value, field: &str) -> Result<&'a Obj, ScenarioError> {
    v.as_object()
        .ok_or_else(|| ScenarioError::new(field, "expected a mapping"))
}

fn list<'a>(o: &'a Obj, key: &str, field: &str) -> Result<&'a [Value], ScenarioError> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(_) => Err(ScenarioError::new(field, "expected a list")),
    }
}

fn text(o: &Obj, key: &str, field: &str) -> Result<Option<String>, ScenarioError> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
        Some(_) => Err(ScenarioError::new(field, "expected a non-empty string")),
    }
}

fn need_text(o: &Obj, key: &str, field: &str) -> Result<String, ScenarioError> {
    text(o, key, field)?.ok_or_else(|| ScenarioError::new(field, "required"))
}

/// A number ≥ 0 (JSON number, or a string holding one, as AWS prints prices).
fn number(o: &Obj, key: &str, field: &str) -> Result<Option<f64>, ScenarioError> {
    let n = match o.get(key) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
        Some(_) => None,
    };
    match n {
        Some(n) if n.is_finite() && n >= 0.0 => Ok(Some(n)),
        Some(n) if n.is_finite() => Err(ScenarioError::new(
            field,
            format!("must not be negative, got {n}"),
        )),
        _ => Err(ScenarioError::new(field, "expected a number")),
    }
}

fn need_number(o: &Obj, key: &str, field: &str) -> Result<f64, ScenarioError> {
    number(o, key, field)?.ok_or_else(|| ScenarioError::new(field, "required"))
}

fn whole(o: &Obj, key: &str, field: &str) -> Result<Option<u32>, ScenarioError> {
    match number(o, key, field)? {
        None => Ok(None),
        Some(n) if n.fract() == 0.0 && n <= f64::from(u32::MAX) => Ok(Some(n as u32)),
        Some(n) => Err(ScenarioError::new(
            field,
            format!("expected a whole number, got {n}"),
        )),
    }
}

pub(super) fn from_value(v: &Value, base: &Path) -> Result<Scenario, ScenarioError> {
    let root = obj(v, "scenario")?;
    let name = need_text(root, "name", "name")?;
    let hours = need_number(root, "hours", "hours")?;
    if hours <= 0.0 {
        return Err(ScenarioError::new("hours", "must be positive"));
    }
    let step_seconds = whole(root, "step_seconds", "step_seconds")?.unwrap_or(60);
    if step_seconds == 0 {
        return Err(ScenarioError::new("step_seconds", "must be positive"));
    }
    let seed = number(root, "seed", "seed")?.unwrap_or(1.0) as u64;
    let minutes = |key: &str, default: u32| -> Result<u32, ScenarioError> {
        match whole(root, key, key)? {
            Some(0) => Err(ScenarioError::new(key, "must be positive")),
            Some(n) => Ok(n),
            None => Ok(default),
        }
    };
    let mut s = Scenario {
        name,
        hours,
        step_seconds,
        seed,
        boot_seconds: whole(root, "boot_seconds", "boot_seconds")?.unwrap_or(90),
        interruption_rate_per_hour: number(root, "interruption_rate_per_hour", "interruption_rate_per_hour")?
            .unwrap_or(0.0),
        rebalancer_minutes: minutes("rebalancer_minutes", 5)?,
        reaper_minutes: minutes("reaper_minutes", 10)?,
        orphan_minutes: minutes("orphan_minutes", 20)?,
        pools: Vec::new(),
        groups: Vec::new(),
        events: Vec::new(),
        commitments: CommitmentsSpec::default(),
    };
    if s.interruption_rate_per_hour > 60.0 {
        return Err(ScenarioError::new(
            "interruption_rate_per_hour",
            "must be at most 60",
        ));
    }
    for (i, p) in list(root, "pools", "pools")?.iter().enumerate() {
        let pool = pool_spec(p, &format!("pools[{i}]"))?;
        if s.pools.iter().any(|q| q.pool == pool.pool) {
            return Err(ScenarioError::new(
                format!("pools[{i}]"),
                format!("{} is listed twice", pool.pool),
            ));
        }
        s.pools.push(pool);
    }
    if s.pools.is_empty() {
        return Err(ScenarioError::new("pools", "at least one pool is required"));
    }
    for (i, g) in list(root, "groups", "groups")?.iter().enumerate() {
        let group = group_spec(&s, g, &format!("groups[{i}]"))?;
        if s.groups.iter().any(|h| h.name == group.name) {
            return Err(ScenarioError::new(format!("groups[{i}].name"), "listed twice"));
        }
        s.groups.push(group);
    }
    if s.groups.is_empty() {
        return Err(ScenarioError::new("groups", "at least one group is required"));
    }
    if let Some(c) = root.get("commitments").filter(|c| !c.is_null()) {
        s.commitments = commitments::commitments(&s, c)?;
    }
    let mut events = Vec::new();
    for (i, e) in list(root, "events", "events")?.iter().enumerate() {
        events.extend(event(&s, e, &format!("events[{i}]"))?);
    }
    if let Some(file) = text(root, "prices_from", "prices_from")? {
        events.extend(price_history(&s, &base.join(&file), &file)?);
    }
    events.sort_by_key(|e: &Event| e.at_secs);
    // Each group's MaxSize defaults to the largest desired the scenario asks of it.
    for (gi, g) in s.groups.iter_mut().enumerate() {
        if g.max_size == u32::MAX {
            let peak = events
                .iter()
                .filter_map(|e| match e.kind {
                    EventKind::Desired { group, desired } if group == gi => Some(desired),
                    _ => None,
                })
                .fold(g.desired, u32::max);
            g.max_size = peak.max(g.min_size);
        }
    }
    s.events = events;
    Ok(s)
}

fn pool_spec(v: &Value, field: &str) -> Result<PoolSpec, ScenarioError> {
    let o = obj(v, field)?;
    let t = need_text(o, "type", &format!("{field}.type"))?;
    let az = need_text(o, "az", &format!("{field}.az"))?;
    let spot_price = need_number(o, "spot_price", &format!("{field}.spot_price"))?;
    let on_demand_price = need_number(o, "on_demand_price", &format!("{field}.on_demand_price"))?;
    let capacity = whole(o, "capacity", &format!("{field}.capacity"))?;
    let mut spec = specs::builtin(&t).unwrap_or(InstanceTypeSpec {
        name: t.clone(),
        architectures: vec!["x86_64".into()],
        vcpus: 0,
        memory_mib: 0,
        gpus: 0,
        instance_store_gb: 0,
        ..InstanceTypeSpec::default()
    });
    if let Some(n) = whole(o, "vcpus", &format!("{field}.vcpus"))? {
        spec.vcpus = n;
    }
    if let Some(n) = whole(o, "memory_mib", &format!("{field}.memory_mib"))? {
        spec.memory_mib = u64::from(n);
    }
    if let Some(n) = whole(o, "gpus", &format!("{field}.gpus"))? {
        spec.gpus = n;
    }
    if let Some(n) = whole(o, "instance_store_gb", &format!("{field}.instance_store_gb"))? {
        spec.instance_store_gb = u64::from(n);
    }
    if let Some(a) = text(o, "arch", &format!("{field}.arch"))? {
        spec.architectures = vec![a];
    }
    if spec.vcpus == 0 || spec.memory_mib == 0 {
        return Err(ScenarioError::new(
            format!("{field}.type"),
            format!("{t:?} is not in the built-in table: give vcpus and memory_mib"),
        ));
    }
    Ok(PoolSpec {
        pool: Pool::new(t, az),
        spot_price,
        on_demand_price,
        capacity,
        spec,
    })
}

fn group_spec(s: &Scenario, v: &Value, field: &str) -> Result<GroupSpec, ScenarioError> {
    let o = obj(v, field)?;
    let name = need_text(o, "name", &format!("{field}.name"))?;
    let instance_type = need_text(o, "instance_type", &format!("{field}.instance_type"))?;
    let azs_field = format!("{field}.azs");
    let mut azs = Vec::new();
    for (i, az) in list(o, "azs", &azs_field)?.iter().enumerate() {
        match az.as_str() {
            Some(a) if s.pools.iter().any(|p| p.pool.instance_type == instance_type && p.pool.az == a) => {
                azs.push(a.to_string())
            }
            Some(a) => {
                return Err(ScenarioError::new(
                    format!("{azs_field}[{i}]"),
                    format!("no pool {instance_type}/{a}: the group's type needs a pool (and its on-demand price) in each AZ"),
                ))
            }
            None => return Err(ScenarioError::new(format!("{azs_field}[{i}]"), "expected a string")),
        }
    }
    if azs.is_empty() {
        return Err(ScenarioError::new(azs_field, "at least one AZ is required"));
    }
    let desired = whole(o, "desired", &format!("{field}.desired"))?
        .ok_or_else(|| ScenarioError::new(format!("{field}.desired"), "required"))?;
    let min_size = whole(o, "min_size", &format!("{field}.min_size"))?.unwrap_or(0);
    let max_size = whole(o, "max_size", &format!("{field}.max_size"))?.unwrap_or(u32::MAX);
    if min_size > desired || desired > max_size {
        return Err(ScenarioError::new(
            format!("{field}.desired"),
            "must be between min_size and max_size",
        ));
    }
    let grace = whole(
        o,
        "health_check_grace_seconds",
        &format!("{field}.health_check_grace_seconds"),
    )?;
    let mut tags = BTreeMap::new();
    if let Some(t) = o.get("tags").filter(|t| !t.is_null()) {
        for (k, v) in obj(t, &format!("{field}.tags"))? {
            let value = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => {
                    return Err(ScenarioError::new(
                        format!("{field}.tags.{k}"),
                        "expected a string",
                    ))
                }
            };
            tags.insert(k.clone(), value);
        }
    }
    Ok(GroupSpec {
        name,
        instance_type,
        azs,
        desired,
        min_size,
        max_size,
        health_check_grace_secs: grace.unwrap_or(60),
        tags,
    })
}

fn pools_of(s: &Scenario, o: &Obj, field: &str) -> Result<Vec<usize>, ScenarioError> {
    let pf = format!("{field}.pools");
    let mut out = Vec::new();
    let items = list(o, "pools", &pf)?;
    if items.is_empty() {
        return Err(ScenarioError::new(pf, "required: a list of type/az patterns"));
    }
    for (i, p) in items.iter().enumerate() {
        let Some(pat) = p.as_str() else {
            return Err(ScenarioError::new(
                format!("{pf}[{i}]"),
                "expected a type/az pattern",
            ));
        };
        let found = s.matching(pat);
        if found.is_empty() {
            return Err(ScenarioError::new(
                format!("{pf}[{i}]"),
                format!("{pat:?} matches no pool"),
            ));
        }
        out.extend(found.into_iter().filter(|f| !out.contains(f)).collect::<Vec<_>>());
    }
    Ok(out)
}

fn secs(minutes: f64) -> i64 {
    (minutes * 60.0).round() as i64
}

fn event(s: &Scenario, v: &Value, field: &str) -> Result<Vec<Event>, ScenarioError> {
    let o = obj(v, field)?;
    let at = need_number(o, "at_minute", &format!("{field}.at_minute"))?;
    let at_secs = secs(at);
    let kind = need_text(o, "kind", &format!("{field}.kind"))?;
    let one = |kind| Ok(vec![Event { at_secs, kind }]);
    match kind.as_str() {
        "capacity_lost" => {
            let pools = pools_of(s, o, field)?;
            let minutes = need_number(o, "minutes", &format!("{field}.minutes"))?;
            let mut out = vec![Event {
                at_secs,
                kind: EventKind::CapacityLost {
                    pools: pools.clone(),
                    secs: secs(minutes),
                },
            }];
            if let Some(ahead) = number(
                o,
                "rebalance_minutes_ahead",
                &format!("{field}.rebalance_minutes_ahead"),
            )? {
                out.push(Event {
                    at_secs: (at_secs - secs(ahead)).max(0),
                    kind: EventKind::Rebalance { pools },
                });
            }
            Ok(out)
        }
        "rebalance" => one(EventKind::Rebalance {
            pools: pools_of(s, o, field)?,
        }),
        "price" => {
            let pf = format!("{field}.pool");
            let pat = need_text(o, "pool", &pf)?;
            let spot_price = need_number(o, "spot_price", &format!("{field}.spot_price"))?;
            let found = s.matching(&pat);
            if found.is_empty() {
                return Err(ScenarioError::new(pf, format!("{pat:?} matches no pool")));
            }
            Ok(found
                .into_iter()
                .map(|pool| Event {
                    at_secs,
                    kind: EventKind::Price { pool, spot_price },
                })
                .collect())
        }
        "desired" => {
            let gf = format!("{field}.group");
            let name = need_text(o, "group", &gf)?;
            let group = s
                .groups
                .iter()
                .position(|g| g.name == name)
                .ok_or_else(|| ScenarioError::new(gf, format!("no group {name:?}")))?;
            let desired = whole(o, "desired", &format!("{field}.desired"))?
                .ok_or_else(|| ScenarioError::new(format!("{field}.desired"), "required"))?;
            one(EventKind::Desired { group, desired })
        }
        "az_outage" => {
            let af = format!("{field}.az");
            let az = need_text(o, "az", &af)?;
            if !s.pools.iter().any(|p| p.pool.az == az) {
                return Err(ScenarioError::new(af, format!("no pool in {az:?}")));
            }
            let minutes = need_number(o, "minutes", &format!("{field}.minutes"))?;
            one(EventKind::AzOutage {
                az,
                secs: secs(minutes),
            })
        }
        other => Err(ScenarioError::new(
            format!("{field}.kind"),
            format!(
                "unknown kind {other:?} (expected capacity_lost, rebalance, price, desired or az_outage)"
            ),
        )),
    }
}

/// Price events from `aws ec2 describe-spot-price-history` output. Times are taken relative to
/// the earliest record; records of pools the scenario does not list are skipped.
fn price_history(s: &Scenario, path: &PathBuf, shown: &str) -> Result<Vec<Event>, ScenarioError> {
    let field = "prices_from";
    let raw = std::fs::read_to_string(path)
        .map_err(|e| ScenarioError::new(field, format!("cannot read {shown}: {e}")))?;
    let v: Value = serde_json::from_str(&raw)
        .map_err(|e| ScenarioError::new(field, format!("{shown} is not JSON: {e}")))?;
    let items = v
        .get("SpotPriceHistory")
        .and_then(Value::as_array)
        .ok_or_else(|| ScenarioError::new(field, format!("{shown} has no SpotPriceHistory list")))?;
    let mut records = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let f = format!("{field}: SpotPriceHistory[{i}]");
        let o = obj(item, &f)?;
        let t = need_text(o, "InstanceType", &format!("{f}.InstanceType"))?;
        let az = need_text(o, "AvailabilityZone", &format!("{f}.AvailabilityZone"))?;
        let price = need_number(o, "SpotPrice", &format!("{f}.SpotPrice"))?;
        let ts = need_text(o, "Timestamp", &format!("{f}.Timestamp"))?;
        let ts = Timestamp::parse_rfc3339(&ts)
            .ok_or_else(|| ScenarioError::new(format!("{f}.Timestamp"), "expected an RFC 3339 time"))?;
        if let Some(pool) = s.pools.iter().position(|p| p.pool == Pool::new(&t, &az)) {
            records.push((ts, pool, price));
        }
    }
    let Some(t0) = records.iter().map(|r| r.0).min() else {
        return Ok(Vec::new());
    };
    records.sort_by_key(|r| (r.0, r.1));
    Ok(records
        .into_iter()
        .map(|(ts, pool, spot_price)| Event {
            at_secs: ts.secs_since(t0),
            kind: EventKind::Price { pool, spot_price },
        })
        .collect())
}
