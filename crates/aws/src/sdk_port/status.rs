//! DescribeInstanceStatus (status checks of our launches; EC2's scheduled events, filtered on
//! `event.code`, where AWS answers only instances with an event of those codes) and the version
//! a launch template launches today.

use aws_sdk_ec2::types::Filter;
use spotswap_core::model::{LaunchTemplateRef, ScheduledEvent};
use spotswap_core::Timestamp;

use super::{err, EC2_PAGE};
use crate::port::{op, Page};
use crate::AdapterError;

/// The event codes that end or interrupt an instance.
pub(super) const CODES: [&str; 5] = [
    "instance-retirement",
    "instance-stop",
    "instance-reboot",
    "system-reboot",
    "system-maintenance",
];

/// One page of the instances with a scheduled event still to come: `(id, the earliest such
/// event)`. Events EC2 reports as `[Completed]` or `[Canceled]` are left out, as AWS documents
/// that they stay listed for a while after.
pub(super) async fn scheduled(
    ec2: &aws_sdk_ec2::Client,
    token: Option<String>,
) -> Result<Page<(String, ScheduledEvent)>, AdapterError> {
    let resp = ec2
        .describe_instance_status()
        .filters(
            Filter::builder()
                .name("event.code")
                .set_values(Some(CODES.map(String::from).to_vec()))
                .build(),
        )
        .set_next_token(token)
        .max_results(EC2_PAGE)
        .send()
        .await
        .map_err(err(op::DESCRIBE_INSTANCE_STATUS))?;
    let items = resp
        .instance_statuses()
        .iter()
        .filter_map(|s| {
            let id = s.instance_id()?;
            let event = s
                .events()
                .iter()
                .filter(|e| {
                    let d = e.description().unwrap_or_default();
                    !(d.starts_with("[Completed]") || d.starts_with("[Canceled]"))
                })
                .filter_map(|e| {
                    Some(ScheduledEvent {
                        code: e.code()?.as_str().to_string(),
                        not_before: e.not_before().map(|t| Timestamp::from_unix(t.secs())),
                    })
                })
                .min_by_key(|e| e.not_before)?;
            Some((id.to_string(), event))
        })
        .collect();
    Ok(Page {
        items,
        next: resp.next_token().map(str::to_string),
    })
}

/// `(id, both status checks ok)` of at most 100 instances.
pub(super) async fn checks(
    ec2: &aws_sdk_ec2::Client,
    ids: &[String],
) -> Result<Vec<(String, bool)>, AdapterError> {
    let resp = ec2
        .describe_instance_status()
        .set_instance_ids(Some(ids.to_vec()))
        .send()
        .await
        .map_err(err(op::DESCRIBE_INSTANCE_STATUS))?;
    let ok = |x: Option<&aws_sdk_ec2::types::InstanceStatusSummary>| {
        x.and_then(|x| x.status()).is_some_and(|s| s.as_str() == "ok")
    };
    Ok(resp
        .instance_statuses()
        .iter()
        .filter_map(|s| {
            let id = s.instance_id()?;
            Some((id.to_string(), ok(s.instance_status()) && ok(s.system_status())))
        })
        .collect())
}

/// The version number `template` launches today: its own when numeric, else `$Latest` or
/// `$Default` resolved by DescribeLaunchTemplateVersions. `None` when EC2 lists no such version.
pub(super) async fn template_version(
    ec2: &aws_sdk_ec2::Client,
    template: &LaunchTemplateRef,
) -> Result<Option<String>, AdapterError> {
    if template.version.bytes().all(|b| b.is_ascii_digit()) && !template.version.is_empty() {
        return Ok(Some(template.version.clone()));
    }
    let resp = ec2
        .describe_launch_template_versions()
        .set_launch_template_id(template.id.clone())
        .set_launch_template_name(if template.id.is_some() {
            None
        } else {
            template.name.clone()
        })
        .versions(template.version.clone())
        .send()
        .await
        .map_err(err(op::DESCRIBE_TEMPLATE_VERSIONS))?;
    Ok(resp
        .launch_template_versions()
        .first()
        .and_then(|v| v.version_number())
        .map(|n| n.to_string()))
}
