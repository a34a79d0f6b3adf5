//! The market: spot prices, and capacity shortages in CreateFleet and RunInstances.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use hyper::body::Bytes;
use hyper::header;
use hyper::http::request::Parts;
use hyper::{Response, StatusCode};

use super::call::{percent_decode, split_index, Call, Form};
use super::errors;
use super::scenario::Pool;
use super::upstream::{forward, replace_tag_text, subnet_azs, tag_text, xml_escape, xml_response};
use super::{Reply, State};

pub(super) const EC2_XMLNS: &str = "http://ec2.amazonaws.com/doc/2016-11-15/";
pub(super) const ICE: &str = "InsufficientInstanceCapacity";

/// Replaces moto's constant `<spotPrice>` in each pool that has a scenario price.
pub(super) fn rewrite_spot_prices(state: &State, response: Reply) -> Reply {
    if response.status() != StatusCode::OK {
        return response;
    }
    let (parts, body) = response.into_parts();
    let scenario = state.scenario();
    let xml = with_spot_prices(&String::from_utf8_lossy(&body), |ty, az| scenario.price(ty, az));
    Response::from_parts(parts, Bytes::from(xml))
}

/// A whole `DescribeSpotPriceHistory` answer from the scenario's prices, stamped now.
pub(super) fn scenario_spot_prices(prices: &HashMap<Pool, f64>) -> String {
    let now = spotswap_core::Timestamp::from_unix(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64),
    )
    .to_rfc3339();
    let mut pools: Vec<_> = prices.iter().collect();
    pools.sort_by(|a, b| a.0.cmp(b.0));
    let items: String = pools
        .into_iter()
        .map(|(pool, price)| {
            format!(
                "<item><instanceType>{}</instanceType><productDescription>Linux/UNIX</productDescription>\
                 <spotPrice>{price}</spotPrice><timestamp>{now}</timestamp>\
                 <availabilityZone>{}</availabilityZone></item>",
                xml_escape(&pool.instance_type),
                xml_escape(&pool.az)
            )
        })
        .collect();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<DescribeSpotPriceHistoryResponse xmlns=\"{EC2_XMLNS}\">\
         <requestId>proxy-market</requestId><spotPriceHistorySet>{items}</spotPriceHistorySet>\
         </DescribeSpotPriceHistoryResponse>"
    )
}

pub(super) fn with_spot_prices(xml: &str, price: impl Fn(&str, &str) -> Option<f64>) -> String {
    // History items are flat, so each <item>…</item> is one price record.
    let mut out = String::with_capacity(xml.len());
    let mut rest = xml;
    while let Some(start) = rest.find("<item>") {
        let Some(len) = rest[start..].find("</item>") else {
            break;
        };
        let item = &rest[start..start + len];
        out.push_str(&rest[..start]);
        let price = tag_text(item, "instanceType")
            .zip(tag_text(item, "availabilityZone"))
            .and_then(|(ty, az)| price(ty, az));
        match price {
            Some(price) => out.push_str(&replace_tag_text(item, "spotPrice", &price.to_string())),
            None => out.push_str(item),
        }
        rest = &rest[start + len..];
    }
    out.push_str(rest);
    out
}

const CONFIGS: &str = "LaunchTemplateConfigs.";

/// One `LaunchTemplateConfigs.N.Overrides.M` entry of a CreateFleet request.
struct Override {
    config: u32,
    index: u32,
    /// Scalar fields only (`InstanceType`, `SubnetId`, ...), decoded, in request order.
    fields: Vec<(String, String)>,
    az: Option<String>,
}

impl Override {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn fleet_overrides(form: &Form) -> Vec<Override> {
    let mut overrides: BTreeMap<(u32, u32), Vec<(String, String)>> = BTreeMap::new();
    for (key, value) in &form.0 {
        let Some((config, rest)) = key.strip_prefix(CONFIGS).and_then(split_index) else {
            continue;
        };
        let Some((index, field)) = rest.strip_prefix("Overrides.").and_then(split_index) else {
            continue;
        };
        let entry = overrides.entry((config, index)).or_default();
        if !field.contains('.') {
            entry.push((field.to_owned(), percent_decode(value)));
        }
    }
    overrides
        .into_iter()
        .map(|((config, index), fields)| Override {
            config,
            index,
            fields,
            az: None,
        })
        .collect()
}

/// Drops the removed overrides, and configs left without any, then renumbers both from 1 as
/// the Query protocol requires.
fn without_overrides(form: &Form, removed: &[Override], kept: &[Override]) -> Form {
    let removed: HashSet<(u32, u32)> = removed.iter().map(|o| (o.config, o.index)).collect();
    let emptied: HashSet<u32> = removed
        .iter()
        .map(|&(c, _)| c)
        .filter(|c| !kept.iter().any(|o| o.config == *c))
        .collect();
    // Configs without overrides of their own stay: nothing in them was judged.
    let configs: Vec<u32> = form
        .0
        .iter()
        .filter_map(|(k, _)| k.strip_prefix(CONFIGS).and_then(split_index))
        .map(|(c, _)| c)
        .filter(|c| !emptied.contains(c))
        .collect::<BTreeSet<u32>>()
        .into_iter()
        .collect();
    let config_number = |c: u32| configs.iter().position(|&k| k == c).map(|i| i + 1);
    let override_number = |c: u32, m: u32| {
        kept.iter()
            .filter(|o| o.config == c)
            .position(|o| o.index == m)
            .map(|i| i + 1)
    };
    let mut out = Vec::with_capacity(form.0.len());
    for (key, value) in &form.0 {
        let Some((config, rest)) = key.strip_prefix(CONFIGS).and_then(split_index) else {
            out.push((key.clone(), value.clone()));
            continue;
        };
        let Some(new_config) = config_number(config) else {
            // Every override of this config was out of capacity; keeping the config would let
            // moto launch the template's defaults.
            continue;
        };
        let key = match rest.strip_prefix("Overrides.").and_then(split_index) {
            Some((m, _)) if removed.contains(&(config, m)) => continue,
            Some((m, field)) => match override_number(config, m) {
                Some(new_m) => format!("{CONFIGS}{new_config}.Overrides.{new_m}.{field}"),
                None => continue,
            },
            None => format!("{CONFIGS}{new_config}.{rest}"),
        };
        out.push((key, value.clone()));
    }
    Form(out)
}

fn fleet_error_items(form: &Form, removed: &[Override], lifecycle: &str) -> String {
    let mut xml = String::new();
    for o in removed {
        let spec_prefix = format!("{CONFIGS}{}.LaunchTemplateSpecification.", o.config);
        let mut spec = String::new();
        for (key, value) in &form.0 {
            if let Some(field) = key.strip_prefix(&spec_prefix) {
                if !field.contains('.') {
                    push_element(&mut spec, field, &percent_decode(value));
                }
            }
        }
        let mut overrides = String::new();
        for (field, value) in &o.fields {
            push_element(&mut overrides, field, value);
        }
        let ty = o.field("InstanceType").unwrap_or("the requested");
        let az = o.az.as_deref().unwrap_or("the requested Availability Zone");
        let message = if lifecycle == "spot" {
            "There is no Spot capacity available that matches your request.".to_owned()
        } else {
            format!("We currently do not have sufficient {ty} capacity in {az}.")
        };
        xml.push_str(&format!(
            "<item><launchTemplateAndOverrides><launchTemplateSpecification>{spec}\
             </launchTemplateSpecification><overrides>{overrides}</overrides>\
             </launchTemplateAndOverrides><lifecycle>{lifecycle}</lifecycle>\
             <errorCode>{ICE}</errorCode><errorMessage>{}</errorMessage></item>",
            xml_escape(&message)
        ));
    }
    xml
}

/// `InstanceType` → `<instanceType>`: EC2 responses use the request field names, camel-cased.
fn push_element(xml: &mut String, field: &str, value: &str) {
    let mut chars = field.chars();
    let Some(first) = chars.next() else { return };
    let name = format!("{}{}", first.to_ascii_lowercase(), chars.as_str());
    xml.push_str(&format!("<{name}>{}</{name}>", xml_escape(value)));
}

/// CreateFleet `instant` reports capacity shortages per pool inside the response's `errorSet`
/// rather than failing, so out-of-capacity overrides are removed before moto sees them and
/// reported as errors afterwards.
pub(super) async fn create_fleet(state: &State, call: &Call, parts: &Parts, body: Bytes) -> Reply {
    if call.form.get("Type").as_deref() != Some("instant") {
        return forward(state, parts, body).await;
    }
    let lifecycle = match call
        .form
        .get("TargetCapacitySpecification.DefaultTargetCapacityType")
        .as_deref()
    {
        Some("on-demand") => "on-demand",
        _ => "spot",
    };
    // A fleet asking more than the scenario's fill gets the fill, and an error item for the
    // rest, as AWS answers a pool short of capacity for the whole request.
    let (form, body, shortfall) = match short_of(state, &call.form) {
        Some(form) => {
            let first: Vec<Override> = fleet_overrides(&call.form).into_iter().take(1).collect();
            let body = form.encode();
            (form, body, fleet_error_items(&call.form, &first, lifecycle))
        }
        None => (call.form.clone(), body, String::new()),
    };
    if state.scenario().no_capacity.is_empty() {
        let response = forward(state, parts, body).await;
        return with_errors(response, &shortfall);
    }
    let form = &form;
    let mut overrides = fleet_overrides(form);
    let subnets: HashSet<String> = overrides
        .iter()
        .filter(|o| o.field("AvailabilityZone").is_none())
        .filter_map(|o| o.field("SubnetId").map(str::to_owned))
        .collect();
    let subnet_az = subnet_azs(
        state,
        &call.region,
        parts.headers.get(header::AUTHORIZATION),
        subnets,
    )
    .await;
    for o in &mut overrides {
        o.az = o
            .field("AvailabilityZone")
            .map(str::to_owned)
            .or_else(|| o.field("SubnetId").and_then(|s| subnet_az.get(s).cloned()));
    }
    let (removed, kept): (Vec<Override>, Vec<Override>) = {
        let scenario = state.scenario();
        overrides
            .into_iter()
            .partition(|o| scenario.is_ice(o.field("InstanceType"), o.az.as_deref()))
    };
    if removed.is_empty() {
        let response = forward(state, parts, body).await;
        return with_errors(response, &shortfall);
    }
    let errors = fleet_error_items(form, &removed, lifecycle) + &shortfall;
    let remaining = without_overrides(form, &removed, &kept);

    if !remaining.0.iter().any(|(k, _)| k.starts_with(CONFIGS)) {
        // Nothing left to launch: answer as AWS does, a fleet with errors and no instances.
        let fleet_id = format!("fleet-0000prox-0000-4000-8000-{:012x}", state.next_id());
        return xml_response(
            StatusCode::OK,
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CreateFleetResponse xmlns=\"{EC2_XMLNS}\">\
                 <requestId>{}</requestId><fleetId>{fleet_id}</fleetId><errorSet>{errors}</errorSet>\
                 <fleetInstanceSet/></CreateFleetResponse>",
                state.request_id()
            ),
        );
    }
    let response = forward(state, parts, remaining.encode()).await;
    with_errors(response, &errors)
}

/// The request with its capacity cut to the scenario's fill, when it asks for more.
fn short_of(state: &State, form: &Form) -> Option<Form> {
    let fill = state.scenario().fleet_fill?;
    let asked: u32 = form
        .get("TargetCapacitySpecification.TotalTargetCapacity")?
        .parse()
        .ok()?;
    if asked <= fill {
        return None;
    }
    let capacity = [
        "TargetCapacitySpecification.TotalTargetCapacity",
        "TargetCapacitySpecification.SpotTargetCapacity",
        "TargetCapacitySpecification.OnDemandTargetCapacity",
    ];
    let pairs = form
        .0
        .iter()
        .map(|(k, v)| match capacity.contains(&k.as_str()) && v != "0" {
            true => (k.clone(), fill.to_string()),
            false => (k.clone(), v.clone()),
        })
        .collect();
    Some(Form(pairs))
}

/// `errors` (error items) added to a CreateFleet answer's `errorSet`.
fn with_errors(response: Reply, errors: &str) -> Reply {
    if errors.is_empty() || response.status() != StatusCode::OK {
        return response;
    }
    let (parts, body) = response.into_parts();
    let xml = String::from_utf8_lossy(&body).into_owned();
    let xml = if let Some(at) = xml.find("<errorSet>") {
        let at = at + "<errorSet>".len();
        format!("{}{errors}{}", &xml[..at], &xml[at..])
    } else if xml.contains("<errorSet/>") {
        xml.replacen("<errorSet/>", &format!("<errorSet>{errors}</errorSet>"), 1)
    } else if let Some(at) = xml.find("</fleetId>") {
        let at = at + "</fleetId>".len();
        format!("{}<errorSet>{errors}</errorSet>{}", &xml[..at], &xml[at..])
    } else {
        xml.replacen(
            "</CreateFleetResponse>",
            &format!("<errorSet>{errors}</errorSet></CreateFleetResponse>"),
            1,
        )
    };
    Response::from_parts(parts, Bytes::from(xml))
}

/// RunInstances into a pool without capacity fails outright, as AWS does: HTTP 500 with
/// `InsufficientInstanceCapacity` (a server error, which the SDK's standard retry retries).
pub(super) async fn run_instances(state: &State, call: &Call, parts: &Parts, body: Bytes) -> Reply {
    let form = &call.form;
    if state.scenario().no_capacity.is_empty() {
        return forward(state, parts, body).await;
    }
    let instance_type = form.get("InstanceType");
    let mut az = form.get("Placement.AvailabilityZone");
    if az.is_none() {
        if let Some(subnet) = form
            .get("SubnetId")
            .or_else(|| form.get("NetworkInterface.1.SubnetId"))
        {
            let auth = parts.headers.get(header::AUTHORIZATION);
            az = subnet_azs(state, &call.region, auth, [subnet.clone()])
                .await
                .remove(&subnet);
        }
    }
    let ice = state.scenario().is_ice(instance_type.as_deref(), az.as_deref());
    if !ice {
        return forward(state, parts, body).await;
    }
    let ty = instance_type.as_deref().unwrap_or("the requested");
    let message = match az.as_deref() {
        Some(az) => format!(
            "We currently do not have sufficient {ty} capacity in the Availability Zone you \
             requested ({az}). Our system will be working on provisioning additional capacity."
        ),
        None => format!("We currently do not have sufficient {ty} capacity."),
    };
    errors::ec2(state, StatusCode::INTERNAL_SERVER_ERROR, ICE, &message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removing_overrides_drops_emptied_configs_keeps_unjudged_ones_and_renumbers() {
        let form = Form::parse(
            b"Action=CreateFleet&Type=instant\
              &LaunchTemplateConfigs.1.LaunchTemplateSpecification.LaunchTemplateName=a\
              &LaunchTemplateConfigs.1.Overrides.1.InstanceType=m5.large\
              &LaunchTemplateConfigs.2.LaunchTemplateSpecification.LaunchTemplateName=b\
              &LaunchTemplateConfigs.2.Overrides.1.InstanceType=m5.large\
              &LaunchTemplateConfigs.2.Overrides.2.InstanceType=c5.large\
              &LaunchTemplateConfigs.2.Overrides.2.SubnetId=subnet-1\
              &LaunchTemplateConfigs.3.LaunchTemplateSpecification.LaunchTemplateName=c\
              &TargetCapacitySpecification.TotalTargetCapacity=1",
        );
        let (removed, kept): (Vec<_>, Vec<_>) = fleet_overrides(&form)
            .into_iter()
            .partition(|o| o.field("InstanceType") == Some("m5.large"));

        let out = without_overrides(&form, &removed, &kept).encode();

        assert_eq!(
            out,
            "Action=CreateFleet&Type=instant\
             &LaunchTemplateConfigs.1.LaunchTemplateSpecification.LaunchTemplateName=b\
             &LaunchTemplateConfigs.1.Overrides.1.InstanceType=c5.large\
             &LaunchTemplateConfigs.1.Overrides.1.SubnetId=subnet-1\
             &LaunchTemplateConfigs.2.LaunchTemplateSpecification.LaunchTemplateName=c\
             &TargetCapacitySpecification.TotalTargetCapacity=1"
        );
    }

    #[test]
    fn error_items_echo_the_template_and_override() {
        let form = Form::parse(
            b"LaunchTemplateConfigs.1.LaunchTemplateSpecification.LaunchTemplateName=lt%2Da\
              &LaunchTemplateConfigs.1.LaunchTemplateSpecification.Version=%24Latest\
              &LaunchTemplateConfigs.1.Overrides.1.InstanceType=m5.large\
              &LaunchTemplateConfigs.1.Overrides.1.AvailabilityZone=us-east-1a",
        );
        let xml = fleet_error_items(&form, &fleet_overrides(&form), "spot");
        assert!(
            xml.contains(
                "<launchTemplateSpecification><launchTemplateName>lt-a</launchTemplateName>\
             <version>$Latest</version></launchTemplateSpecification>"
            ),
            "{xml}"
        );
        assert!(
            xml.contains(
                "<overrides><instanceType>m5.large</instanceType>\
             <availabilityZone>us-east-1a</availabilityZone></overrides>"
            ),
            "{xml}"
        );
        assert!(xml.contains("<errorCode>InsufficientInstanceCapacity</errorCode>"));
        assert!(xml.contains("<lifecycle>spot</lifecycle>"));
    }

    #[test]
    fn spot_prices_are_replaced_only_for_priced_pools() {
        let xml = "<spotPriceHistorySet>\
            <item><availabilityZone>a1</availabilityZone><instanceType>m5.large</instanceType>\
            <spotPrice>0.00001</spotPrice></item>\
            <item><availabilityZone>a2</availabilityZone><instanceType>m5.large</instanceType>\
            <spotPrice>0.00001</spotPrice></item></spotPriceHistorySet>";
        let out = with_spot_prices(xml, |ty, az| (ty, az).eq(&("m5.large", "a2")).then_some(0.25));
        assert_eq!(out.matches("<spotPrice>0.00001</spotPrice>").count(), 1);
        assert!(out.contains("<instanceType>m5.large</instanceType><spotPrice>0.25</spotPrice>"));
    }
}
