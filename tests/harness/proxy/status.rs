//! Status checks as a launch meets them on AWS, where moto reports every instance `ok` from
//! the moment it exists: checks that stay `initializing` for a while, or fail. Rewrites the
//! `instanceStatus` and `systemStatus` of the instances [`super::Proxy::set_status_checks`]
//! names in moto's DescribeInstanceStatus answer; the rest of the answer is moto's.

use std::time::Duration;

use hyper::body::Bytes;
use hyper::{Response, StatusCode};

use super::upstream::tag_text;
use super::{Reply, State};

/// What DescribeInstanceStatus says of an instance's two status checks (system and instance).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusChecks {
    /// `initializing` until this long after the proxy first answered for the instance (AWS
    /// takes minutes after launch), then moto's own answer (`ok`).
    Initializing(Duration),
    /// `impaired`, the reachability check `failed`, for good.
    Impaired,
}

/// The scenario's rule for `instance`: its own, else the `"*"` one.
pub(super) fn rule(state: &State, instance: &str) -> Option<StatusChecks> {
    let scenario = state.scenario();
    scenario
        .status_checks
        .get(instance)
        .or_else(|| scenario.status_checks.get("*"))
        .copied()
}

/// moto's answer with the scenario's status checks in place of its `ok`s.
pub(super) fn rewrite(state: &State, response: Reply) -> Reply {
    if response.status() != StatusCode::OK {
        return response;
    }
    let (parts, body) = response.into_parts();
    let now = state.now();
    let xml = with_status_checks(&String::from_utf8_lossy(&body), |id| {
        let checks = rule(state, id)?;
        // First sighting, recorded whatever the rule, so a rule set later counts from it.
        let first = *state.status_seen().entry(id.to_owned()).or_insert(now);
        match checks {
            StatusChecks::Initializing(d) if now.saturating_duration_since(first) < d => Some("initializing"),
            StatusChecks::Initializing(_) => None,
            StatusChecks::Impaired => Some("impaired"),
        }
    });
    Response::from_parts(parts, Bytes::from(xml))
}

/// Rewrites each top-level `<item>` of `<instanceStatusSet>` for which `summary(instance id)`
/// names a status (`initializing` or `impaired`).
fn with_status_checks(xml: &str, mut summary: impl FnMut(&str) -> Option<&'static str>) -> String {
    let (Some(set), Some(end)) = (xml.find("<instanceStatusSet>"), xml.find("</instanceStatusSet>")) else {
        return xml.to_owned();
    };
    let start = set + "<instanceStatusSet>".len();
    let mut out = String::with_capacity(xml.len());
    out.push_str(&xml[..start]);
    for item in top_level_items(&xml[start..end]) {
        let id = tag_text(item, "instanceId").unwrap_or_default();
        match summary(id) {
            Some(status) => {
                let detail = if status == "impaired" {
                    "failed"
                } else {
                    "initializing"
                };
                let check = format!(
                    "<details><item><name>reachability</name><status>{detail}</status></item></details>\
                     <status>{status}</status>"
                );
                let item = replace_block(item, "instanceStatus", &check);
                out.push_str(&replace_block(&item, "systemStatus", &check));
            }
            None => out.push_str(item),
        }
    }
    out.push_str(&xml[end..]);
    out
}

/// The `<item>…</item>` children of a list, nested items (the checks' details) kept inside.
fn top_level_items(list: &str) -> Vec<&str> {
    let mut items = Vec::new();
    let (mut depth, mut at, mut begin) = (0usize, 0usize, 0usize);
    while at < list.len() {
        let rest = &list[at..];
        if rest.starts_with("<item>") {
            if depth == 0 {
                begin = at;
            }
            depth += 1;
            at += "<item>".len();
        } else if rest.starts_with("</item>") {
            depth = depth.saturating_sub(1);
            at += "</item>".len();
            if depth == 0 {
                items.push(&list[begin..at]);
            }
        } else {
            at += rest.chars().next().map_or(1, char::len_utf8);
        }
    }
    items
}

/// `<tag>…</tag>` with its content replaced; unchanged when absent.
fn replace_block(xml: &str, tag: &str, content: &str) -> String {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    match (xml.find(&open), xml.find(&close)) {
        (Some(s), Some(e)) if s < e => format!("{}{open}{content}{}", &xml[..s], &xml[e..]),
        _ => xml.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOTO: &str = "<DescribeInstanceStatusResponse><instanceStatusSet>\
        <item><availabilityZone>a</availabilityZone><instanceId>i-1</instanceId>\
        <instanceStatus><details><item><name>reachability</name><status>passed</status></item>\
        </details><status>ok</status></instanceStatus><systemStatus><details><item>\
        <name>reachability</name><status>passed</status></item></details><status>ok</status>\
        </systemStatus></item>\
        <item><availabilityZone>a</availabilityZone><instanceId>i-2</instanceId>\
        <instanceStatus><status>ok</status></instanceStatus><systemStatus><status>ok</status>\
        </systemStatus></item></instanceStatusSet><requestId>r</requestId>\
        </DescribeInstanceStatusResponse>";

    #[test]
    fn only_the_named_instances_checks_are_rewritten_both_of_them() {
        let out = with_status_checks(MOTO, |id| (id == "i-1").then_some("impaired"));
        let items = top_level_items(&out);
        assert_eq!(items.len(), 2, "{out}");
        assert_eq!(
            items[0].matches("<status>impaired</status>").count(),
            2,
            "{}",
            items[0]
        );
        assert_eq!(items[0].matches("<status>failed</status>").count(), 2);
        assert!(!items[0].contains("<status>ok</status>"));
        assert_eq!(items[1].matches("<status>ok</status>").count(), 2, "{}", items[1]);
        assert!(out.ends_with("<requestId>r</requestId></DescribeInstanceStatusResponse>"));
    }

    #[test]
    fn nested_detail_items_stay_inside_their_instance() {
        let items = top_level_items(MOTO.split("<instanceStatusSet>").nth(1).unwrap());
        assert_eq!(items.len(), 2);
        assert_eq!(tag_text(items[0], "instanceId"), Some("i-1"));
        assert_eq!(tag_text(items[1], "instanceId"), Some("i-2"));
    }
}
