//! Which service, region and operation a request is, read from the SigV4 scope and the
//! `Action` form field or `X-Amz-Target` header; and the Query protocol's forms.

use hyper::body::Bytes;
use hyper::header::{self, HeaderMap};
use hyper::http::request::Parts;

#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Protocol {
    /// EC2's own query dialect, with `<Response><Errors>` errors.
    Ec2,
    /// awsQuery (Auto Scaling), with `<ErrorResponse>` errors.
    Query,
    /// awsJson (EventBridge, SQS, Pricing), selected by `X-Amz-Target`.
    Json,
    /// rpcv2Cbor (CloudWatch): `POST /service/<service>/operation/<operation>`, CBOR bodies.
    Cbor,
}

/// What a request is, as far as counting, faults and the market care.
pub(super) struct Call {
    pub(super) service: String,
    pub(super) region: String,
    pub(super) operation: String,
    pub(super) protocol: Protocol,
    /// The form body of Query protocols; empty for JSON.
    pub(super) form: Form,
}

impl Call {
    pub(super) fn identify(parts: &Parts, body: &[u8]) -> Call {
        // SigV4: "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/ec2/aws4_request, ..."
        let scope: Vec<&str> = header_str(&parts.headers, header::AUTHORIZATION)
            .and_then(|auth| auth.split("Credential=").nth(1))
            .and_then(|c| c.split([',', ' ']).next())
            .map(|c| c.split('/').collect())
            .unwrap_or_default();
        let (region, service) = match scope.as_slice() {
            [_, _, region, service, ..] => (region.to_string(), service.to_string()),
            _ => (String::new(), "unknown".to_owned()),
        };
        if let Some(target) = header_str(&parts.headers, "x-amz-target") {
            let operation = target.rsplit('.').next().unwrap_or(target).to_owned();
            return Call {
                service,
                region,
                operation,
                protocol: Protocol::Json,
                form: Form::default(),
            };
        }
        // rpcv2Cbor (CloudWatch): the operation is the path's last segment.
        if let Some((_, operation)) = parts.uri.path().split_once("/operation/") {
            return Call {
                operation: operation.trim_matches('/').to_owned(),
                service,
                region,
                protocol: Protocol::Cbor,
                form: Form::default(),
            };
        }
        // REST-JSON (Savings Plans): the operation is the path, `POST /DescribeSavingsPlans`.
        if service == "savingsplans" {
            return Call {
                operation: parts.uri.path().trim_matches('/').to_owned(),
                service,
                region,
                protocol: Protocol::Json,
                form: Form::default(),
            };
        }
        let mut form = Form::parse(body);
        if form.get("Action").is_none() {
            if let Some(query) = parts.uri.query() {
                form = Form::parse(query.as_bytes());
            }
        }
        let operation = form.get("Action").unwrap_or_else(|| "Unknown".to_owned());
        let protocol = if service == "ec2" {
            Protocol::Ec2
        } else {
            Protocol::Query
        };
        Call {
            service,
            region,
            operation,
            protocol,
            form,
        }
    }

    pub(super) fn key(&self) -> String {
        format!("{}:{}", self.service, self.operation)
    }
}

pub(super) fn header_str<K: header::AsHeaderName>(headers: &HeaderMap, name: K) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// A form body as ordered pairs. Values stay percent-encoded so untouched fields are forwarded
/// byte for byte; keys of AWS Query requests are plain ASCII paths.
#[derive(Clone, Default)]
pub(super) struct Form(pub(super) Vec<(String, String)>);

impl Form {
    pub(super) fn parse(body: &[u8]) -> Form {
        let body = String::from_utf8_lossy(body);
        Form(
            body.split('&')
                .filter(|pair| !pair.is_empty())
                .map(|pair| {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    (percent_decode(k), v.to_owned())
                })
                .collect(),
        )
    }

    pub(super) fn get(&self, key: &str) -> Option<String> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| percent_decode(v))
    }

    pub(super) fn encode(&self) -> Bytes {
        let pairs: Vec<String> = self.0.iter().map(|(k, v)| format!("{k}={v}")).collect();
        Bytes::from(pairs.join("&"))
    }
}

pub(super) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(super) fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            b => format!("%{b:02X}"),
        })
        .collect()
}

/// Splits `"3.Rest"` into `(3, "Rest")`.
pub(super) fn split_index(s: &str) -> Option<(u32, &str)> {
    let (n, rest) = s.split_once('.')?;
    Some((n.parse().ok()?, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding_handles_plus_escapes_and_stray_percents() {
        assert_eq!(percent_decode("a+b%2Fc%3d%"), "a b/c=%");
        assert_eq!(percent_decode(&percent_encode("x y/ü")), "x y/ü");
    }
}
