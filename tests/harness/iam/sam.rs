//! SAM policy templates, expanded to the documents they stand for.

use serde_yaml::{Mapping, Value};

/// The SAM policy templates the checker understands, expanded as SAM's policy_templates.json
/// defines them (with `Fn::Sub`, so parameters go through the same evaluation). `None` for any
/// other name: an unknown template is a finding, never a pass.
pub(super) fn sam_policy_template(name: &str, params: &Value) -> Option<Value> {
    let (actions, resource, param): (&[&str], &str, Option<&str>) = match name {
        "SQSSendMessagePolicy" => (
            &["sqs:SendMessage*"],
            "arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:${p}",
            Some("QueueName"),
        ),
        "SQSPollerPolicy" => (
            &[
                "sqs:ChangeMessageVisibility",
                "sqs:ChangeMessageVisibilityBatch",
                "sqs:DeleteMessage",
                "sqs:DeleteMessageBatch",
                "sqs:GetQueueAttributes",
                "sqs:ReceiveMessage",
            ],
            "arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:${p}",
            Some("QueueName"),
        ),
        "SNSPublishMessagePolicy" => (
            &["sns:Publish"],
            "arn:${AWS::Partition}:sns:${AWS::Region}:${AWS::AccountId}:${p}",
            Some("TopicName"),
        ),
        "EventBridgePutEventsPolicy" => (
            &["events:PutEvents"],
            "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/${p}",
            Some("EventBusName"),
        ),
        "LambdaInvokePolicy" => (
            &["lambda:InvokeFunction"],
            "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:${p}*",
            Some("FunctionName"),
        ),
        "AWSSecretsManagerGetSecretValuePolicy" => {
            (&["secretsmanager:GetSecretValue"], "${p}", Some("SecretArn"))
        }
        "CloudWatchPutMetricPolicy" => (&["cloudwatch:PutMetricData"], "*", None),
        "EC2DescribePolicy" => (&["ec2:DescribeRegions", "ec2:DescribeInstances"], "*", None),
        _ => return None,
    };
    let resource = match param {
        None => Value::String(resource.into()),
        Some(p) => {
            let value = params.get(p)?.clone();
            let mut vars = Mapping::new();
            vars.insert("p".into(), value);
            let mut sub = Mapping::new();
            sub.insert(
                "Fn::Sub".into(),
                Value::Sequence(vec![resource.into(), Value::Mapping(vars)]),
            );
            Value::Mapping(sub)
        }
    };
    let mut st = Mapping::new();
    st.insert("Effect".into(), "Allow".into());
    st.insert(
        "Action".into(),
        Value::Sequence(actions.iter().map(|a| Value::String((*a).into())).collect()),
    );
    st.insert("Resource".into(), resource);
    let mut doc = Mapping::new();
    doc.insert("Statement".into(), Value::Sequence(vec![Value::Mapping(st)]));
    Some(Value::Mapping(doc))
}
