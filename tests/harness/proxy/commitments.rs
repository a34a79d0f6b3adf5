//! The account's commitments as AWS serves them, which moto cannot: its
//! `DescribeReservedInstances` raises NotImplementedError and it has no Savings Plans API.
//!
//! - EC2 `DescribeReservedInstances` (Query protocol, XML `reservedInstancesSet`), honouring the
//!   `state` filter as EC2 does;
//! - Savings Plans (REST-JSON, `POST /DescribeSavingsPlans` and `POST
//!   /DescribeSavingsPlanRates`), honouring `states` and the rates' `region` filter.
//!
//! Served from [`super::Proxy::set_commitments`]: with none set, as AWS answers an account
//! without commitments (empty lists). [`super::Proxy::set_commitments_denied`] answers each
//! with AWS's access-denied error instead (EC2 `UnauthorizedOperation`, Savings Plans
//! `AccessDeniedException`), as for a role without the grants.

use hyper::body::Bytes;
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::{Response, StatusCode};
use serde_json::{json, Value};

use super::call::{split_index, Call};
use super::errors;
use super::upstream::{xml_escape, xml_response};
use super::{Reply, State};

/// One Reserved Instances purchase of the scenario.
#[derive(Clone, Debug)]
pub struct ReservedSpec {
    /// `ReservedInstancesId`.
    pub id: String,
    /// Instance type.
    pub instance_type: String,
    /// `Some(az)`: a zonal RI; `None`: regional.
    pub az: Option<String>,
    /// `InstanceCount`.
    pub count: u32,
    /// `ProductDescription`, e.g. `Linux/UNIX (Amazon VPC)`.
    pub product: String,
    /// `InstanceTenancy`.
    pub tenancy: String,
    /// `Start`, RFC 3339.
    pub start: String,
    /// `End`, RFC 3339.
    pub end: String,
    /// `State`: `active`, `retired`, `payment-pending`, …
    pub state: String,
}

impl ReservedSpec {
    /// An active Linux/UNIX RI on shared tenancy from 2025 to 2030 (zonal with `az`).
    pub fn active(id: &str, instance_type: &str, az: Option<&str>, count: u32) -> Self {
        Self {
            id: id.into(),
            instance_type: instance_type.into(),
            az: az.map(str::to_string),
            count,
            product: "Linux/UNIX (Amazon VPC)".into(),
            tenancy: "default".into(),
            start: "2025-01-01T00:00:00.000Z".into(),
            end: "2030-01-01T00:00:00.000Z".into(),
            state: "active".into(),
        }
    }
}

/// One Savings Plan of the scenario, with its EC2 rates.
#[derive(Clone, Debug)]
pub struct PlanSpec {
    /// `savingsPlanId`.
    pub id: String,
    /// `Some(family)`: an EC2 Instance plan; `None`: Compute.
    pub family: Option<String>,
    /// `region` (EC2 Instance plans) and the region of every rate.
    pub region: String,
    /// `commitment`, USD per hour as AWS writes it (`"0.100"`).
    pub commitment: String,
    /// `state`.
    pub state: String,
    /// `(instance type, rate in USD per hour)`, Linux/UNIX on shared tenancy.
    pub rates: Vec<(String, String)>,
}

impl PlanSpec {
    /// An active plan from 2025 to 2030.
    pub fn active(
        id: &str,
        family: Option<&str>,
        region: &str,
        commitment: &str,
        rates: &[(&str, &str)],
    ) -> Self {
        Self {
            id: id.into(),
            family: family.map(str::to_string),
            region: region.into(),
            commitment: commitment.into(),
            state: "active".into(),
            rates: rates
                .iter()
                .map(|(t, r)| (t.to_string(), r.to_string()))
                .collect(),
        }
    }
}

/// The scenario's commitments.
#[derive(Clone, Debug, Default)]
pub(super) struct Book {
    pub(super) reserved: Vec<ReservedSpec>,
    pub(super) plans: Vec<PlanSpec>,
    pub(super) denied: bool,
}

/// Whether the proxy answers `call` itself.
pub(super) fn handles(call: &Call) -> bool {
    matches!(
        (call.service.as_str(), call.operation.as_str()),
        ("ec2", "DescribeReservedInstances")
            | (
                "savingsplans",
                "DescribeSavingsPlans" | "DescribeSavingsPlanRates"
            )
    )
}

pub(super) fn answer(state: &State, call: &Call, body: &[u8]) -> Reply {
    let book = state.scenario().commitments.clone();
    if book.denied {
        return denied(state, call);
    }
    match call.operation.as_str() {
        "DescribeReservedInstances" => reserved(state, call, &book),
        "DescribeSavingsPlans" => plans(&book, body),
        _ => rates(&book, body),
    }
}

fn denied(state: &State, call: &Call) -> Reply {
    if call.service == "ec2" {
        return errors::ec2(
            state,
            StatusCode::FORBIDDEN,
            "UnauthorizedOperation",
            "You are not authorized to perform this operation.",
        );
    }
    json_reply(
        StatusCode::FORBIDDEN,
        json!({"message": "User is not authorized to perform: savingsplans:DescribeSavingsPlans"}),
        Some("AccessDeniedException"),
    )
}

/// The `state` filter's values, if the request has one.
fn state_filter(call: &Call) -> Option<Vec<String>> {
    let n = call.form.0.iter().find_map(|(k, v)| {
        let rest = k.strip_prefix("Filter.")?;
        let (n, field) = split_index(rest)?;
        (field == "Name" && v == "state").then_some(n)
    })?;
    let prefix = format!("Filter.{n}.Value.");
    Some(
        call.form
            .0
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix))
            .map(|(_, v)| super::call::percent_decode(v))
            .collect(),
    )
}

fn reserved(state: &State, call: &Call, book: &Book) -> Reply {
    let states = state_filter(call);
    let mut items = String::new();
    for r in book
        .reserved
        .iter()
        .filter(|r| states.as_ref().is_none_or(|s| s.contains(&r.state)))
    {
        let (scope, az) = match &r.az {
            Some(az) => (
                "Availability Zone",
                format!("<availabilityZone>{}</availabilityZone>", xml_escape(az)),
            ),
            None => ("Region", String::new()),
        };
        items.push_str(&format!(
            "<item><reservedInstancesId>{id}</reservedInstancesId><instanceType>{t}</instanceType>{az}\
             <start>{start}</start><end>{end}</end><duration>157680000</duration>\
             <fixedPrice>0.0</fixedPrice><usagePrice>0.0</usagePrice><instanceCount>{n}</instanceCount>\
             <productDescription>{p}</productDescription><state>{s}</state>\
             <instanceTenancy>{ten}</instanceTenancy><currencyCode>USD</currencyCode>\
             <offeringType>No Upfront</offeringType><recurringCharges/><offeringClass>standard</offeringClass>\
             <scope>{scope}</scope></item>",
            id = xml_escape(&r.id),
            t = xml_escape(&r.instance_type),
            start = r.start,
            end = r.end,
            n = r.count,
            p = xml_escape(&r.product),
            s = xml_escape(&r.state),
            ten = xml_escape(&r.tenancy),
        ));
    }
    xml_response(
        StatusCode::OK,
        format!(
            "<DescribeReservedInstancesResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">\
             <requestId>{}</requestId><reservedInstancesSet>{items}</reservedInstancesSet>\
             </DescribeReservedInstancesResponse>",
            state.request_id()
        ),
    )
}

fn plans(book: &Book, body: &[u8]) -> Reply {
    let req: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let states: Option<Vec<&str>> = req["states"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect());
    let items: Vec<Value> = book
        .plans
        .iter()
        .filter(|p| states.as_ref().is_none_or(|s| s.contains(&p.state.as_str())))
        .map(|p| {
            let mut v = json!({
                "savingsPlanId": p.id,
                "savingsPlanArn": format!("arn:aws:savingsplans::123456789012:savingsplan/{}", p.id),
                "offeringId": format!("offering-{}", p.id),
                "description": "",
                "start": "2025-01-01T00:00:00.000Z",
                "end": "2030-01-01T00:00:00.000Z",
                "state": p.state,
                "savingsPlanType": if p.family.is_some() { "EC2Instance" } else { "Compute" },
                "paymentOption": "No Upfront",
                "productTypes": ["EC2"],
                "currency": "USD",
                "commitment": p.commitment,
                "termDurationInSeconds": 157_680_000,
            });
            if let Some(f) = &p.family {
                v["ec2InstanceFamily"] = json!(f);
                v["region"] = json!(p.region);
            }
            v
        })
        .collect();
    json_reply(StatusCode::OK, json!({"savingsPlans": items}), None)
}

fn rates(book: &Book, body: &[u8]) -> Reply {
    let req: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let id = req["savingsPlanId"].as_str().unwrap_or_default();
    let region: Option<&str> = req["filters"].as_array().and_then(|fs| {
        fs.iter()
            .find(|f| f["name"] == "region")
            .and_then(|f| f["values"][0].as_str())
    });
    let mut results = Vec::new();
    for p in book.plans.iter().filter(|p| p.id == id) {
        if region.is_some_and(|r| r != p.region) {
            continue;
        }
        for (t, rate) in &p.rates {
            results.push(json!({
                "rate": rate,
                "currency": "USD",
                "unit": "Hrs",
                "productType": "EC2",
                "serviceCode": "AmazonEC2",
                "usageType": format!("BoxUsage:{t}"),
                "operation": "RunInstances",
                "properties": [
                    {"name": "region", "value": p.region},
                    {"name": "instanceType", "value": t},
                    {"name": "instanceFamily", "value": t.split('.').next().unwrap_or_default()},
                    {"name": "productDescription", "value": "Linux/UNIX"},
                    {"name": "tenancy", "value": "shared"},
                ],
            }));
        }
    }
    json_reply(
        StatusCode::OK,
        json!({"savingsPlanId": id, "searchResults": results}),
        None,
    )
}

fn json_reply(status: StatusCode, body: Value, error_type: Option<&str>) -> Reply {
    let mut response = Response::new(Bytes::from(body.to_string()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(code) = error_type.and_then(|c| HeaderValue::from_str(c).ok()) {
        headers.insert(HeaderName::from_static("x-amzn-errortype"), code);
    }
    response
}
