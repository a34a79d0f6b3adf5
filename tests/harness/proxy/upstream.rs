//! Talking to moto: forwarding a request, asking questions of the proxy's own, and the XML
//! helpers the answers are read and written with.

use std::collections::HashMap;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::{self, HeaderValue};
use hyper::http::request::Parts;
use hyper::{Method, Request, Response, StatusCode};

use super::call::percent_encode;
use super::{Reply, State};

pub(super) const EC2_API_VERSION: &str = "2016-11-15";

pub(super) const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
];

/// Sends the request on to moto and reads the whole answer, since the market rewrites bodies.
pub(super) async fn forward(state: &State, parts: &Parts, body: Bytes) -> Reply {
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut req = Request::builder()
        .method(parts.method.clone())
        .uri(format!("{}{}", state.upstream, path));
    for (name, value) in &parts.headers {
        // Length is recomputed from the (possibly rewritten) body.
        if !HOP_BY_HOP.contains(&name.as_str()) && name != header::CONTENT_LENGTH {
            req = req.header(name, value);
        }
    }
    let req = match req.body(Full::new(body)) {
        Ok(req) => req,
        Err(e) => return bad_gateway(format!("building upstream request: {e}")),
    };
    let response = match state.client.request(req).await {
        Ok(response) => response,
        Err(e) => return bad_gateway(format!("upstream {}: {e}", state.upstream)),
    };
    let (mut parts, body) = response.into_parts();
    let body = match body.collect().await {
        Ok(body) => body.to_bytes(),
        Err(e) => return bad_gateway(format!("reading upstream body: {e}")),
    };
    for name in HOP_BY_HOP.iter().chain(&["content-length", "x-amz-crc32"]) {
        parts.headers.remove(*name);
    }
    Response::from_parts(parts, body)
}

pub(super) fn bad_gateway(message: String) -> Reply {
    let mut response = Response::new(Bytes::from(message));
    *response.status_mut() = StatusCode::BAD_GATEWAY;
    response
}

pub(super) fn xml_response(status: StatusCode, xml: String) -> Reply {
    let mut response = Response::new(Bytes::from(xml));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/xml"));
    response
}

/// Asks moto a Query-protocol question of the proxy's own (`form` is the whole body) and
/// returns the answer's text when it is a 200. moto picks the region from the SigV4 scope and
/// ignores the signature, so the client's own Authorization header serves.
pub(super) async fn ask_upstream(
    state: &State,
    auth: Option<&HeaderValue>,
    form: String,
) -> Result<String, String> {
    let mut req = Request::builder()
        .method(Method::POST)
        .uri(format!("{}/", state.upstream))
        .header(
            header::CONTENT_TYPE,
            "application/x-www-form-urlencoded; charset=utf-8",
        );
    if let Some(auth) = auth {
        req = req.header(header::AUTHORIZATION, auth);
    }
    let req = req
        .body(Full::new(Bytes::from(form)))
        .map_err(|e| format!("building upstream request: {e}"))?;
    let response = state
        .client
        .request(req)
        .await
        .map_err(|e| format!("upstream {}: {e}", state.upstream))?;
    if response.status() != StatusCode::OK {
        return Err(format!(
            "upstream {} answered {}",
            state.upstream,
            response.status()
        ));
    }
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("reading upstream body: {e}"))?;
    Ok(String::from_utf8_lossy(&body.to_bytes()).into_owned())
}

/// Finds the AZ of each subnet by asking moto, so a pool named by subnet can be judged.
pub(super) async fn subnet_azs(
    state: &State,
    region: &str,
    auth: Option<&HeaderValue>,
    subnets: impl IntoIterator<Item = String>,
) -> HashMap<String, String> {
    let mut found = HashMap::new();
    for subnet in subnets {
        let key = (region.to_owned(), subnet.clone());
        let cached = state
            .subnet_azs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .cloned();
        if let Some(az) = cached {
            found.insert(subnet, az);
            continue;
        }
        let body = format!(
            "Action=DescribeSubnets&Version={EC2_API_VERSION}&SubnetId.1={}",
            percent_encode(&subnet)
        );
        let Ok(xml) = ask_upstream(state, auth, body).await else {
            continue;
        };
        if let Some(az) = tag_text(&xml, "availabilityZone") {
            state
                .subnet_azs
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(key, az.to_owned());
            found.insert(subnet, az.to_owned());
        }
    }
    found
}

pub(super) fn tag_text<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let len = xml[start..].find(&format!("</{tag}>"))?;
    Some(&xml[start..start + len])
}

pub(super) fn replace_tag_text(xml: &str, tag: &str, text: &str) -> String {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    match (xml.find(&open), xml.find(&close)) {
        (Some(start), Some(end)) if start < end => {
            format!("{}{open}{text}{}", &xml[..start], &xml[end..])
        }
        _ => xml.to_owned(),
    }
}

pub(super) fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}
