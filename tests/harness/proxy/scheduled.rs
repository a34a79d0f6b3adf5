//! EC2's scheduled events (retirement, scheduled stop, reboot, maintenance) as
//! DescribeInstanceStatus reports them on AWS. moto has no scheduled events, and ignores the
//! `event.code` filter (it answers every running instance, with no events); AWS answers only
//! the instances with an event of one of the codes asked for. The proxy answers such a request
//! itself from [`super::Proxy::set_scheduled_event`].

use hyper::StatusCode;

use super::call::{split_index, Call};
use super::upstream::xml_response;
use super::{Reply, State};

/// The `event.code` values a DescribeInstanceStatus asks for; `None` when it has no such
/// filter (moto then answers).
pub(super) fn codes_asked(call: &Call) -> Option<Vec<String>> {
    let mut filter_index = None;
    for (k, v) in &call.form.0 {
        if let Some(rest) = k.strip_prefix("Filter.") {
            if let Some((n, "Name")) = split_index(rest) {
                if v == "event.code" {
                    filter_index = Some(n);
                }
            }
        }
    }
    let n = filter_index?;
    let prefix = format!("Filter.{n}.Value.");
    Some(
        call.form
            .0
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix))
            .map(|(_, v)| v.clone())
            .collect(),
    )
}

/// AWS's answer: the scenario's instances whose event code was asked for.
pub(super) fn answer(state: &State, codes: &[String]) -> Reply {
    let scenario = state.scenario();
    let mut items = String::new();
    let mut ids: Vec<&String> = scenario.scheduled.keys().collect();
    ids.sort();
    for id in ids {
        let (code, not_before) = &scenario.scheduled[id];
        if !codes.contains(code) {
            continue;
        }
        items.push_str(&format!(
            "<item><instanceId>{id}</instanceId><instanceState><code>16</code><name>running</name></instanceState>\
             <eventsSet><item><code>{code}</code><description>The instance is running on degraded hardware</description>\
             <notBefore>{not_before}</notBefore></item></eventsSet>\
             <systemStatus><status>ok</status></systemStatus><instanceStatus><status>ok</status></instanceStatus></item>"
        ));
    }
    xml_response(
        StatusCode::OK,
        format!(
            "<DescribeInstanceStatusResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">\
             <requestId>proxy-scheduled</requestId><instanceStatusSet>{items}</instanceStatusSet>\
             </DescribeInstanceStatusResponse>"
        ),
    )
}
