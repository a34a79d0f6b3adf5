//! AttachVolume as AWS does it, which moto does not: a volume that is not `available` (attached
//! to an instance, or on its way on or off) is refused with `VolumeInUse`, and a device name the
//! instance already uses is refused with `InvalidParameterValue`. moto attaches an attached
//! volume again, to a second instance, and accepts a device that is taken. Like the membership
//! rules, this refuses only what AWS refuses, so it is always on.

use hyper::body::Bytes;
use hyper::header;
use hyper::http::request::Parts;
use hyper::StatusCode;

use super::call::{percent_encode, Call};
use super::errors;
use super::upstream::{ask_upstream, bad_gateway, forward, tag_text, EC2_API_VERSION};
use super::{Reply, State};

/// True when a DescribeVolumes answer shows the volume attached, or in a state other than
/// `available` (its own `status`, read with its attachments cut out: an attachment has a
/// `status` of its own).
fn in_use(xml: &str) -> bool {
    let Some(start) = xml.find("<volumeSet>") else {
        return false;
    };
    let mut item = xml[start..].to_string();
    if item.contains("<attachmentSet>") {
        let a = item.find("<attachmentSet>").unwrap_or(0);
        let b = item
            .find("</attachmentSet>")
            .map_or(item.len(), |b| b + "</attachmentSet>".len());
        if item[a..b].contains("<instanceId>") {
            return true;
        }
        item.replace_range(a..b, "");
    }
    tag_text(&item, "status").is_some_and(|s| s != "available")
}

/// The device names of an instance's block devices in a DescribeInstances answer.
fn devices(xml: &str) -> Vec<String> {
    let Some(start) = xml.find("<blockDeviceMapping>") else {
        return Vec::new();
    };
    let section = &xml[start..];
    let section = section
        .find("</blockDeviceMapping>")
        .map_or(section, |end| &section[..end]);
    section
        .split("<item>")
        .filter_map(|item| tag_text(item, "deviceName").map(str::to_string))
        .collect()
}

pub(super) async fn attach_volume(state: &State, call: &Call, parts: &Parts, body: Bytes) -> Reply {
    // One at a time, as AWS decides: the check and the attach are one step.
    let _one_at_a_time = state.volumes.lock().await;
    let volume = call.form.get("VolumeId").unwrap_or_default();
    let instance = call.form.get("InstanceId").unwrap_or_default();
    let device = call.form.get("Device").unwrap_or_default();
    let auth = parts.headers.get(header::AUTHORIZATION);
    let query = format!(
        "Action=DescribeVolumes&Version={EC2_API_VERSION}&VolumeId.1={}",
        percent_encode(&volume)
    );
    let xml = match ask_upstream(state, auth, query).await {
        Ok(xml) => xml,
        // Unknown volume: moto's own answer is AWS's (InvalidVolume.NotFound).
        Err(_) => return forward(state, parts, body).await,
    };
    if in_use(&xml) {
        return errors::ec2(
            state,
            StatusCode::BAD_REQUEST,
            "VolumeInUse",
            &format!("{volume} is already attached to an instance"),
        );
    }
    let query = format!(
        "Action=DescribeInstances&Version={EC2_API_VERSION}&InstanceId.1={}",
        percent_encode(&instance)
    );
    match ask_upstream(state, auth, query).await {
        Ok(xml) if devices(&xml).contains(&device) => {
            return errors::ec2(
                state,
                StatusCode::BAD_REQUEST,
                "InvalidParameterValue",
                &format!(
                    "Invalid value '{device}' for unixDevice. Attachment point {device} is already in use"
                ),
            )
        }
        Ok(_) => {}
        Err(e) if e.contains("answered 400") => {}
        Err(e) => return bad_gateway(e),
    }
    forward(state, parts, body).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_volume_is_in_use_by_its_attachment_or_its_own_status() {
        let attached = "<volumeSet><item><volumeId>vol-1</volumeId><status>in-use</status>\
                        <attachmentSet><item><instanceId>i-1</instanceId><status>attached</status>\
                        </item></attachmentSet></item></volumeSet>";
        assert!(in_use(attached));
        let free = "<volumeSet><item><volumeId>vol-1</volumeId><attachmentSet></attachmentSet>\
                    <status>available</status></item></volumeSet>";
        assert!(!in_use(free));
        let detaching = "<volumeSet><item><attachmentSet></attachmentSet><status>in-use</status>\
                         </item></volumeSet>";
        assert!(in_use(detaching));
    }

    #[test]
    fn an_instances_devices_are_read_from_its_block_device_mapping() {
        let xml = "<instancesSet><item><blockDeviceMapping><item><deviceName>/dev/sda1</deviceName>\
                   <ebs><status>attached</status></ebs></item><item><deviceName>/dev/sdf</deviceName>\
                   </item></blockDeviceMapping></item></instancesSet>";
        assert_eq!(
            devices(xml),
            vec!["/dev/sda1".to_string(), "/dev/sdf".to_string()]
        );
    }
}
