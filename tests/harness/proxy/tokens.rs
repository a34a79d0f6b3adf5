//! CreateFleet's `ClientToken` as EC2 defines it
//! (<https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-idempotency.html>), which moto
//! ignores (every call launches). A request that repeats a token with the same parameters
//! completes no more than once: it is answered with the first request's answer (the same
//! fleet and instances) and launches nothing; the same token with different parameters is
//! `IdempotentParameterMismatch`. Off unless [`super::Proxy::set_client_tokens`] is on.

use std::collections::HashMap;

use hyper::body::Bytes;
use hyper::http::request::Parts;
use hyper::{Response, StatusCode};

use super::call::Call;
use super::errors;
use super::market::create_fleet;
use super::{Reply, State};

/// What the first request with a token asked and was answered, per (region, token).
pub(super) type Tokens = HashMap<(String, String), (Vec<(String, String)>, Reply)>;

/// CreateFleet with `ClientToken` honoured (the SDK fills one in when the caller does not,
/// and its retries of one call repeat it).
pub(super) async fn idempotent_create_fleet(state: &State, call: &Call, parts: &Parts, body: Bytes) -> Reply {
    let token = call.form.get("ClientToken");
    let Some(token) = token.filter(|_| state.scenario().client_tokens) else {
        return create_fleet(state, call, parts, body).await;
    };
    // Held across the launch: a second request with the token waits for the first's answer,
    // as AWS never runs one token twice.
    let mut tokens = state.fleet_tokens.lock().await;
    let key = (call.region.clone(), token);
    let params = parameters(&call.form.0);
    if let Some((first, answer)) = tokens.get(&key) {
        if *first == params {
            return clone_reply(answer);
        }
        return errors::ec2(
            state,
            StatusCode::BAD_REQUEST,
            "IdempotentParameterMismatch",
            &format!(
                "The client token {} was used with different parameters in an earlier request.",
                key.1
            ),
        );
    }
    let answer = create_fleet(state, call, parts, body).await;
    // An error created no fleet: the token stays free, and a retry runs afresh.
    if answer.status() == StatusCode::OK {
        tokens.insert(key, (params, clone_reply(&answer)));
    }
    answer
}

/// The request's parameters as AWS compares them: every field but the token, in a fixed order.
fn parameters(form: &[(String, String)]) -> Vec<(String, String)> {
    let mut params: Vec<(String, String)> =
        form.iter().filter(|(k, _)| k != "ClientToken").cloned().collect();
    params.sort();
    params
}

fn clone_reply(reply: &Reply) -> Reply {
    let mut out = Response::new(reply.body().clone());
    *out.status_mut() = reply.status();
    *out.headers_mut() = reply.headers().clone();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_ignore_the_token_and_field_order() {
        let a = [
            ("Type".to_owned(), "instant".to_owned()),
            ("ClientToken".to_owned(), "t-1".to_owned()),
            (
                "TargetCapacitySpecification.TotalTargetCapacity".to_owned(),
                "1".to_owned(),
            ),
        ];
        let mut b = a.clone();
        b.reverse();
        b[1].1 = "t-2".to_owned();
        assert_eq!(parameters(&a), parameters(&b));
        let mut c = a.clone();
        c[2].1 = "2".to_owned();
        assert_ne!(parameters(&a), parameters(&c));
    }
}
