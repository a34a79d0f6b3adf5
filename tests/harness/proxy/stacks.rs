//! CloudFormation stacks as AWS shows them mid-operation. moto runs a stack's create or update
//! to completion inside the call, so its DescribeStacks never shows a `*_IN_PROGRESS` status;
//! on AWS an update takes minutes, and a group of the stack is changed under it meanwhile.
//! [`super::Proxy::set_stack_status`] makes DescribeStacks of the named stack answer a status
//! of the scenario's; the rest of the answer is moto's.

use hyper::body::Bytes;
use hyper::{Response, StatusCode};

use super::call::Call;
use super::upstream::{replace_tag_text, xml_escape};
use super::{Reply, State};

/// moto's DescribeStacks answer with the scenario's status for the stack asked about.
pub(super) fn rewrite(state: &State, call: &Call, response: Reply) -> Reply {
    let Some(status) = call
        .form
        .get("StackName")
        .and_then(|name| state.scenario().stack_status.get(&name).cloned())
    else {
        return response;
    };
    if response.status() != StatusCode::OK {
        return response;
    }
    let (parts, body) = response.into_parts();
    let xml = replace_tag_text(
        &String::from_utf8_lossy(&body),
        "StackStatus",
        &xml_escape(&status),
    );
    Response::from_parts(parts, Bytes::from(xml))
}
