//! The CLI-only diagnostic reads of the fake region.

use super::FakePort;
use crate::port::{Page, PortFuture};

/// The fake region keeps no scaling activities, no logs, no metrics and no stack resources: the
/// reads answer empty pages.
impl crate::port::DiagnosticReads for FakePort {
    fn scaling_activities<'a>(
        &'a self,
        _group: &'a str,
        _token: Option<String>,
    ) -> PortFuture<'a, Page<spotswap_core::explain::Activity>> {
        self.call(crate::port::op::DESCRIBE_ACTIVITIES, |_| {
            Ok(Page {
                items: Vec::new(),
                next: None,
            })
        })
    }

    fn log_events<'a>(
        &'a self,
        _log_group: &'a str,
        _start_ms: i64,
        _token: Option<String>,
    ) -> PortFuture<'a, Page<crate::port::LogEvent>> {
        self.call(crate::port::cli_op::FILTER_LOG_EVENTS, |_| {
            Ok(Page {
                items: Vec::new(),
                next: None,
            })
        })
    }

    fn savings_series<'a>(
        &'a self,
        _groups: &'a [String],
        _start: spotswap_core::Timestamp,
        _end: spotswap_core::Timestamp,
        _period_secs: u32,
        _token: Option<String>,
    ) -> PortFuture<'a, Page<crate::port::GroupSeries>> {
        self.call(crate::port::cli_op::GET_METRIC_DATA, |_| {
            Ok(Page {
                items: Vec::new(),
                next: None,
            })
        })
    }

    fn stack_log_groups<'a>(
        &'a self,
        stack: &'a str,
        _token: Option<String>,
    ) -> PortFuture<'a, Option<Page<String>>> {
        self.call(crate::port::cli_op::LIST_STACK_RESOURCES, move |s| {
            Ok(s.stacks.contains_key(stack).then(|| Page {
                items: Vec::new(),
                next: None,
            }))
        })
    }
}
