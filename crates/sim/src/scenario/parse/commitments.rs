//! The optional `commitments` key: Reserved Instances and Savings Plans, each error naming its
//! field (`commitments.savings_plans[0].discount: …`).
//!
//! ```yaml
//! commitments:
//!   reserved_instances:
//!     - {type: m5.large, az: us-east-1a, count: 2, hourly_price: 0.060}   # zonal
//!     - {type: m5.xlarge, count: 1, hourly_price: 0.120}                  # regional
//!   savings_plans:
//!     - {kind: Compute, commitment: 0.05, discount: 0.28}
//!     - {kind: EC2Instance, family: m5, commitment: 0.10, rates: {m5.large: 0.062}}
//! ```

use std::collections::BTreeMap;

use serde_json::Value;
use spotswap_core::commitments::{
    family, micros, platform, tenancy, Commitments, PlanKind, PlanRate, ReservedInstances, SavingsPlan,
    DEFAULT_TENANCY, LINUX_UNIX,
};
use spotswap_core::Timestamp;

use super::{list, need_number, need_text, number, obj, text, whole, Obj};
use crate::scenario::{CommitmentsSpec, Scenario, ScenarioError, START};

/// Active a year before the start and for ten years after: the whole run, whatever its length.
const BEFORE: i64 = 365 * 86_400;
const AFTER: i64 = 10 * 365 * 86_400;

/// An error about `{f}.{key}`.
fn bad<T>(f: &str, key: &str, message: impl Into<String>) -> Result<T, ScenarioError> {
    Err(ScenarioError::new(format!("{f}.{key}"), message))
}

fn keys_known(o: &Obj, known: &[&str], field: &str) -> Result<(), ScenarioError> {
    match o.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(ScenarioError::new(
            format!("{field}.{k}"),
            format!("unknown key (expected one of {})", known.join(", ")),
        )),
        None => Ok(()),
    }
}

pub(super) fn commitments(s: &Scenario, v: &Value) -> Result<CommitmentsSpec, ScenarioError> {
    let field = "commitments";
    let o = obj(v, field)?;
    keys_known(o, &["reserved_instances", "savings_plans"], field)?;
    let mut out = CommitmentsSpec {
        commitments: Commitments::default(),
        reserved_fees: BTreeMap::new(),
    };
    let start = Timestamp::from_unix(START.unix() - BEFORE);
    let end = Timestamp::from_unix(START.unix() + AFTER);
    let ris = list(o, "reserved_instances", &format!("{field}.reserved_instances"))?;
    for (i, r) in ris.iter().enumerate() {
        let f = format!("{field}.reserved_instances[{i}]");
        let (ri, fee) = reserved(s, r, &f, i, start, end)?;
        if out.reserved_fees.insert(ri.id.clone(), fee).is_some() {
            return bad(&f, "id", format!("{:?} is listed twice", ri.id));
        }
        out.commitments.reserved.push(ri);
    }
    let sps = list(o, "savings_plans", &format!("{field}.savings_plans"))?;
    for (i, p) in sps.iter().enumerate() {
        let f = format!("{field}.savings_plans[{i}]");
        let plan = savings_plan(s, p, &f, i, start, end)?;
        if out.commitments.savings_plans.iter().any(|q| q.id == plan.id) {
            return bad(&f, "id", format!("{:?} is listed twice", plan.id));
        }
        out.commitments.savings_plans.push(plan);
    }
    Ok(out)
}

fn reserved(
    s: &Scenario,
    v: &Value,
    f: &str,
    i: usize,
    start: Timestamp,
    end: Timestamp,
) -> Result<(ReservedInstances, f64), ScenarioError> {
    let o = obj(v, f)?;
    keys_known(
        o,
        &["id", "type", "az", "count", "hourly_price", "platform", "tenancy"],
        f,
    )?;
    let instance_type = need_text(o, "type", &format!("{f}.type"))?;
    if !instance_type.contains('.') {
        return bad(
            f,
            "type",
            format!("{instance_type:?} is not an instance type (family.size)"),
        );
    }
    let az = text(o, "az", &format!("{f}.az"))?;
    if let Some(az) = az
        .as_ref()
        .filter(|az| !s.pools.iter().any(|p| p.pool.az == **az))
    {
        return bad(
            f,
            "az",
            format!("no pool in {az:?} (leave az out for a regional RI)"),
        );
    }
    let count = match whole(o, "count", &format!("{f}.count"))? {
        None => return bad(f, "count", "required"),
        Some(0) => return bad(f, "count", "must be at least 1"),
        Some(n) => n,
    };
    let price = need_number(o, "hourly_price", &format!("{f}.hourly_price"))?;
    let tenancy =
        tenancy(&text(o, "tenancy", &format!("{f}.tenancy"))?.unwrap_or_else(|| DEFAULT_TENANCY.into()));
    if !["default", "dedicated", "host"].contains(&tenancy.as_str()) {
        return bad(
            f,
            "tenancy",
            format!("unknown tenancy {tenancy:?} (expected default, dedicated or host)"),
        );
    }
    let id = text(o, "id", &format!("{f}.id"))?.unwrap_or_else(|| format!("ri-{i}"));
    let ri = ReservedInstances {
        id,
        instance_type,
        az,
        count,
        platform: platform(
            &text(o, "platform", &format!("{f}.platform"))?.unwrap_or_else(|| LINUX_UNIX.into()),
        ),
        tenancy,
        start,
        end,
    };
    Ok((ri, price * f64::from(count)))
}

fn savings_plan(
    s: &Scenario,
    v: &Value,
    f: &str,
    i: usize,
    start: Timestamp,
    end: Timestamp,
) -> Result<SavingsPlan, ScenarioError> {
    let o = obj(v, f)?;
    keys_known(o, &["id", "kind", "family", "commitment", "discount", "rates"], f)?;
    let kind = need_text(o, "kind", &format!("{f}.kind"))?;
    let fam = text(o, "family", &format!("{f}.family"))?;
    let kind = match (kind.as_str(), fam) {
        ("Compute", None) => PlanKind::Compute,
        ("Compute", Some(_)) => {
            return bad(
                f,
                "family",
                "a Compute plan covers every family: leave family out",
            )
        }
        ("EC2Instance", Some(family)) => PlanKind::Ec2Instance { family },
        ("EC2Instance", None) => return bad(f, "family", "required for an EC2Instance plan (e.g. m5)"),
        (other, _) => {
            return bad(
                f,
                "kind",
                format!("unknown kind {other:?} (expected Compute or EC2Instance)"),
            )
        }
    };
    let commitment = need_number(o, "commitment", &format!("{f}.commitment"))?;
    let commitment_micros = micros(commitment)
        .filter(|m| *m > 0)
        .ok_or_else(|| ScenarioError::new(format!("{f}.commitment"), "must be positive (USD per hour)"))?;
    let covers = |t: &str| match &kind {
        PlanKind::Compute => true,
        PlanKind::Ec2Instance { family: f } => family(t) == f,
    };
    // The on-demand price of every type the scenario's pools offer, once.
    let types: BTreeMap<&str, f64> = s
        .pools
        .iter()
        .map(|p| (p.pool.instance_type.as_str(), p.on_demand_price))
        .collect();
    let rate = |instance_type: &str, dollars: f64| PlanRate {
        instance_type: instance_type.to_string(),
        platform: LINUX_UNIX.into(),
        tenancy: DEFAULT_TENANCY.into(),
        rate_micros: micros(dollars).unwrap_or(0),
    };
    let discount = number(o, "discount", &format!("{f}.discount"))?;
    let rates = match (discount, o.get("rates").filter(|r| !r.is_null())) {
        (Some(_), Some(_)) => return bad(f, "rates", "give either discount or rates, not both"),
        (None, None) => {
            return bad(
                f,
                "discount",
                "required: a discount off on-demand (0.28), or rates per type",
            )
        }
        (Some(d), None) => {
            if !(d > 0.0 && d < 1.0) {
                return bad(f, "discount", format!("must be above 0 and below 1, got {d}"));
            }
            types
                .iter()
                .filter(|(t, _)| covers(t))
                .map(|(t, od)| rate(t, od * (1.0 - d)))
                .collect()
        }
        (None, Some(r)) => {
            let rf = format!("{f}.rates");
            let mut out = Vec::new();
            let listed = obj(r, &rf)?;
            for t in listed.keys() {
                let tf = format!("{rf}.{t}");
                if !types.contains_key(t.as_str()) {
                    return Err(ScenarioError::new(tf, format!("no pool of type {t:?}")));
                }
                if !covers(t) {
                    return Err(ScenarioError::new(tf, "not of the plan's family"));
                }
                let dollars = need_number(listed, t, &tf)?;
                if dollars <= 0.0 {
                    return Err(ScenarioError::new(tf, "must be positive (USD per hour)"));
                }
                out.push(rate(t, dollars));
            }
            if out.is_empty() {
                return Err(ScenarioError::new(rf, "at least one rate is required"));
            }
            out
        }
    };
    Ok(SavingsPlan {
        id: text(o, "id", &format!("{f}.id"))?.unwrap_or_else(|| format!("sp-{i}")),
        kind,
        commitment_micros,
        start,
        end,
        rates,
    })
}
