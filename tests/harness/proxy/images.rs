//! What DescribeInstances tells of an instance's image on AWS, and moto leaves out: the AMI's
//! `bootMode`, the `currentInstanceBootMode` the instance booted in, and `enaSupport`. Adds
//! them to moto's answer for the instances [`super::Proxy::set_image`] names; the rest of the
//! answer is moto's.

use hyper::body::Bytes;
use hyper::{Response, StatusCode};

use super::{Reply, State};

/// The image facts of one instance, as AWS's DescribeInstances reports them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ImageFacts {
    /// `bootMode`: `legacy-bios`, `uefi` or `uefi-preferred`; `None` when the AMI names none.
    pub boot_mode: Option<&'static str>,
    /// `currentInstanceBootMode`: `legacy-bios` or `uefi`.
    pub current_boot_mode: Option<&'static str>,
    /// `enaSupport`.
    pub ena_support: Option<bool>,
}

/// The scenario's facts for `instance`: its own, else the `"*"` ones.
fn rule(state: &State, instance: &str) -> Option<ImageFacts> {
    let scenario = state.scenario();
    scenario
        .images
        .get(instance)
        .or_else(|| scenario.images.get("*"))
        .copied()
}

/// moto's answer with the scenario's image facts added to each instance they name.
pub(super) fn rewrite(state: &State, response: Reply) -> Reply {
    if response.status() != StatusCode::OK {
        return response;
    }
    let (parts, body) = response.into_parts();
    let xml = with_image_facts(&String::from_utf8_lossy(&body), |id| rule(state, id));
    Response::from_parts(parts, Bytes::from(xml))
}

/// Adds the facts `facts(instance id)` gives beside each instance's `<instanceId>`: in
/// DescribeInstances the element occurs once per instance, as the instance's own child (no
/// nested structure of an instance has one).
fn with_image_facts(xml: &str, facts: impl Fn(&str) -> Option<ImageFacts>) -> String {
    const OPEN: &str = "<instanceId>";
    const CLOSE: &str = "</instanceId>";
    let mut out = String::with_capacity(xml.len() + 256);
    let mut rest = xml;
    while let Some(start) = rest.find(OPEN) {
        let Some(len) = rest[start..].find(CLOSE) else {
            break;
        };
        let end = start + len + CLOSE.len();
        out.push_str(&rest[..end]);
        let id = &rest[start + OPEN.len()..start + len];
        if let Some(f) = facts(id) {
            if let Some(m) = f.boot_mode {
                out.push_str(&format!("<bootMode>{m}</bootMode>"));
            }
            if let Some(m) = f.current_boot_mode {
                out.push_str(&format!("<currentInstanceBootMode>{m}</currentInstanceBootMode>"));
            }
            if let Some(e) = f.ena_support {
                out.push_str(&format!("<enaSupport>{e}</enaSupport>"));
            }
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_go_beside_the_named_instances_only() {
        let xml =
            "<r><item><instanceId>i-1</instanceId><x/></item><item><instanceId>i-2</instanceId></item></r>";
        let got = with_image_facts(xml, |id| {
            (id == "i-1").then_some(ImageFacts {
                boot_mode: Some("uefi"),
                current_boot_mode: Some("uefi"),
                ena_support: Some(false),
            })
        });
        assert_eq!(
            got,
            "<r><item><instanceId>i-1</instanceId><bootMode>uefi</bootMode>\
             <currentInstanceBootMode>uefi</currentInstanceBootMode><enaSupport>false</enaSupport>\
             <x/></item><item><instanceId>i-2</instanceId></item></r>"
        );
    }
}
