//! `GetInstanceTypesFromInstanceRequirements`, which moto lacks, answered as AWS does from
//! moto's own DescribeInstanceTypes data.
//!
//! The requirements modelled: `VCpuCount` and `MemoryMiB` ranges (both required, as
//! `ArchitectureTypes` and `VirtualizationTypes` are: a request without one is refused with
//! `MissingParameter`), the architecture and virtualization types asked for,
//! `ExcludedInstanceTypes` and `AllowedInstanceTypes` (names or `*` patterns) and
//! `BurstablePerformance` (`included` by default, `excluded`, `required`). Other fields are
//! accepted and not applied: the tests do not set them. The answer comes in pages of
//! [`PAGE`] with a `nextToken`, as AWS pages it.

use hyper::header;
use hyper::StatusCode;

use super::call::{percent_decode, Call};
use super::errors;
use super::upstream::{ask_upstream, bad_gateway, xml_escape, xml_response, EC2_API_VERSION};
use super::xml::{between, blocks};
use super::{Reply, State};

/// Types per page.
pub(super) const PAGE: usize = 10;

const REQ: &str = "InstanceRequirements.";

pub(super) fn handles(call: &Call) -> bool {
    call.service == "ec2" && call.operation == "GetInstanceTypesFromInstanceRequirements"
}

/// One instance type as moto describes it.
struct Described {
    name: String,
    vcpus: f64,
    memory_mib: f64,
    architectures: Vec<String>,
    virtualization: Vec<String>,
    burstable: bool,
}

fn items(xml: &str, list: &str) -> Vec<String> {
    between(xml, list)
        .map(|l| blocks(l, "item").into_iter().map(str::to_owned).collect())
        .unwrap_or_default()
}

fn described(item: &str) -> Option<Described> {
    let number =
        |outer: &str, inner: &str| -> Option<f64> { between(between(item, outer)?, inner)?.parse().ok() };
    Some(Described {
        name: between(item, "instanceType")?.to_owned(),
        vcpus: number("vCpuInfo", "defaultVCpus")?,
        memory_mib: number("memoryInfo", "sizeInMiB")?,
        architectures: items(item, "supportedArchitectures"),
        virtualization: items(item, "supportedVirtualizationTypes"),
        burstable: between(item, "burstablePerformanceSupported") == Some("true"),
    })
}

/// The values of a list parameter `prefix.1`, `prefix.2`, …
fn list(call: &Call, prefix: &str) -> Vec<String> {
    let p = format!("{prefix}.");
    call.form
        .0
        .iter()
        .filter(|(k, _)| k.strip_prefix(&p).is_some_and(|n| n.parse::<u32>().is_ok()))
        .map(|(_, v)| percent_decode(v))
        .collect()
}

fn number(call: &Call, key: &str) -> Option<f64> {
    call.form.get(&format!("{REQ}{key}"))?.parse().ok()
}

fn matches(patterns: &[String], name: &str) -> bool {
    patterns.iter().any(|p| match p.split_once('*') {
        Some((head, tail)) => name.starts_with(head) && name.ends_with(tail),
        None => p == name,
    })
}

pub(super) async fn answer(state: &State, call: &Call, parts: &hyper::http::request::Parts) -> Reply {
    let archs = list(call, "ArchitectureType");
    let virts = list(call, "VirtualizationType");
    let (vcpu_min, mem_min) = (number(call, "VCpuCount.Min"), number(call, "MemoryMiB.Min"));
    for (missing, name) in [
        (archs.is_empty(), "ArchitectureTypes"),
        (virts.is_empty(), "VirtualizationTypes"),
        (vcpu_min.is_none(), "InstanceRequirements.VCpuCount.Min"),
        (mem_min.is_none(), "InstanceRequirements.MemoryMiB.Min"),
    ] {
        if missing {
            let message = format!("The request must contain the parameter {name}");
            return errors::ec2(state, StatusCode::BAD_REQUEST, "MissingParameter", &message);
        }
    }
    let auth = parts.headers.get(header::AUTHORIZATION);
    let body = format!("Action=DescribeInstanceTypes&Version={EC2_API_VERSION}");
    let xml = match ask_upstream(state, auth, body).await {
        Ok(x) => x,
        Err(e) => return bad_gateway(e),
    };
    let excluded = list(call, &format!("{REQ}ExcludedInstanceType"));
    let allowed = list(call, &format!("{REQ}AllowedInstanceType"));
    let burstable = call.form.get(&format!("{REQ}BurstablePerformance"));
    let within =
        |v: f64, min: Option<f64>, max: Option<f64>| min.is_none_or(|m| v >= m) && max.is_none_or(|m| v <= m);
    let mut names: Vec<String> = items(&xml, "instanceTypeSet")
        .iter()
        .filter_map(|i| described(i))
        .filter(|t| within(t.vcpus, vcpu_min, number(call, "VCpuCount.Max")))
        .filter(|t| within(t.memory_mib, mem_min, number(call, "MemoryMiB.Max")))
        .filter(|t| t.architectures.iter().any(|a| archs.contains(a)))
        .filter(|t| t.virtualization.is_empty() || t.virtualization.iter().any(|v| virts.contains(v)))
        .filter(|t| !matches(&excluded, &t.name))
        .filter(|t| allowed.is_empty() || matches(&allowed, &t.name))
        .filter(|t| match burstable.as_deref() {
            Some("excluded") => !t.burstable,
            Some("required") => t.burstable,
            _ => true,
        })
        .map(|t| t.name)
        .collect();
    names.sort();
    let start: usize = call
        .form
        .get("NextToken")
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    let end = (start + PAGE).min(names.len());
    let page: String = names
        .get(start..end)
        .unwrap_or_default()
        .iter()
        .map(|n| format!("<item><instanceType>{}</instanceType></item>", xml_escape(n)))
        .collect();
    let next = if end < names.len() {
        format!("<nextToken>{end}</nextToken>")
    } else {
        String::new()
    };
    xml_response(
        StatusCode::OK,
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<GetInstanceTypesFromInstanceRequirementsResponse \
             xmlns=\"http://ec2.amazonaws.com/doc/{EC2_API_VERSION}/\"><requestId>{}</requestId>\
             <instanceTypeSet>{page}</instanceTypeSet>{next}</GetInstanceTypesFromInstanceRequirementsResponse>",
            state.request_id()
        ),
    )
}
