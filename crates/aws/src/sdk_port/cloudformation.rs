//! DescribeStacks: whether a group's CloudFormation stack is mid-operation
//! (`StackUpdating`). The only CloudFormation call the functions make (the CLI also lists a
//! stack's log groups, in `diag`).

use aws_config::SdkConfig;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::clients::CallCounter;
use crate::port::op;
use crate::AdapterError;

/// The CloudFormation client, counting into `calls` like every other.
pub(super) fn client(conf: &SdkConfig, calls: &CallCounter) -> aws_sdk_cloudformation::Client {
    let conf = aws_sdk_cloudformation::config::Builder::from(conf)
        .interceptor(calls.clone())
        .build();
    aws_sdk_cloudformation::Client::from_conf(conf)
}

/// `StackStatus` of `stack` (a name or a stack id); `None` when it does not exist.
///
/// AWS answers a stack that does not exist (or, by name, one deleted) with a `ValidationError`
/// whose message says "does not exist"; any other error is the caller's to judge.
pub(super) async fn stack_status(
    client: &aws_sdk_cloudformation::Client,
    stack: &str,
) -> Result<Option<String>, AdapterError> {
    match client.describe_stacks().stack_name(stack).send().await {
        Ok(resp) => Ok(resp
            .stacks()
            .first()
            .and_then(|s| s.stack_status())
            .map(|s| s.as_str().to_string())),
        Err(e) if no_such_stack(&e) => Ok(None),
        Err(e) => Err(AdapterError::aws(op::DESCRIBE_STACKS, e)),
    }
}

/// AWS's answer for a stack that does not exist: a `ValidationError` saying so.
pub(super) fn no_such_stack(e: &impl ProvideErrorMetadata) -> bool {
    e.code() == Some("ValidationError") && e.message().is_some_and(|m| m.contains("does not exist"))
}
