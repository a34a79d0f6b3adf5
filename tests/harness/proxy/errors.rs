//! Error bodies in the shape each protocol's SDK deserializer expects.

use hyper::body::Bytes;
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::{Response, StatusCode};

use super::call::{Call, Protocol};
use super::upstream::{xml_escape, xml_response};
use super::{Reply, State};

pub(super) fn throttle(state: &State, call: &Call) -> Reply {
    match call.protocol {
        // EC2 throttles with a 503, unlike the Query services' 400.
        Protocol::Ec2 => ec2(
            state,
            StatusCode::SERVICE_UNAVAILABLE,
            "RequestLimitExceeded",
            "Request limit exceeded.",
        ),
        Protocol::Query => query(
            state,
            StatusCode::BAD_REQUEST,
            "Sender",
            "Throttling",
            "Rate exceeded",
        ),
        Protocol::Json => json(StatusCode::BAD_REQUEST, "ThrottlingException", "Rate exceeded"),
        Protocol::Cbor => super::metrics::error(StatusCode::BAD_REQUEST, "Throttling", "Rate exceeded"),
    }
}

pub(super) fn internal(state: &State, call: &Call) -> Reply {
    let status = StatusCode::INTERNAL_SERVER_ERROR;
    match call.protocol {
        Protocol::Ec2 => ec2(state, status, "InternalError", "An internal error has occurred."),
        Protocol::Query => query(state, status, "Receiver", "InternalFailure", "Internal failure."),
        Protocol::Json => json(status, "InternalFailure", "Internal failure."),
        Protocol::Cbor => super::metrics::error(status, "InternalFailure", "Internal failure."),
    }
}

pub(super) fn unavailable(state: &State, call: &Call) -> Reply {
    let status = StatusCode::SERVICE_UNAVAILABLE;
    let message = "The server is overloaded and can't handle the request.";
    match call.protocol {
        Protocol::Ec2 => ec2(state, status, "Unavailable", message),
        Protocol::Query => query(state, status, "Receiver", "ServiceUnavailable", message),
        Protocol::Json => json(status, "ServiceUnavailable", message),
        Protocol::Cbor => super::metrics::error(status, "ServiceUnavailable", message),
    }
}

pub(super) fn ec2(state: &State, status: StatusCode, code: &str, message: &str) -> Reply {
    xml_response(
        status,
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{code}</Code>\
             <Message>{}</Message></Error></Errors><RequestID>{}</RequestID></Response>",
            xml_escape(message),
            state.request_id()
        ),
    )
}

/// A Query-protocol `ValidationError` (400), as Auto Scaling answers an invalid request.
pub(super) fn validation(state: &State, message: &str) -> Reply {
    query(
        state,
        StatusCode::BAD_REQUEST,
        "Sender",
        "ValidationError",
        message,
    )
}

fn query(state: &State, status: StatusCode, kind: &str, code: &str, message: &str) -> Reply {
    xml_response(
        status,
        format!(
            "<ErrorResponse><Error><Type>{kind}</Type><Code>{code}</Code><Message>{}</Message>\
             </Error><RequestId>{}</RequestId></ErrorResponse>",
            xml_escape(message),
            state.request_id()
        ),
    )
}

fn json(status: StatusCode, code: &str, message: &str) -> Reply {
    let body = format!(r#"{{"__type":"{code}","message":"{message}"}}"#);
    let mut response = Response::new(Bytes::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-amz-json-1.0"),
    );
    if let Ok(code) = HeaderValue::from_str(code) {
        headers.insert(HeaderName::from_static("x-amzn-errortype"), code);
    }
    response
}
