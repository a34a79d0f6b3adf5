//! EC2's scheduled events of the region's instances (DescribeInstanceStatus, filtered on
//! `event.code`): AWS answers only instances with an event of those codes.

use aws_sdk_ec2::types::Filter;
use spotswap_core::model::ScheduledEvent;
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
pub(super) async fn page(
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
