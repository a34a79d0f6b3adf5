//! Bad input (DESIGN.md §8, invariant 7): a table-driven corpus of malformed and hostile
//! events, bad tag values, groups in odd states, unreadable reaper records and CLI
//! invocations. Every case ends in a named error, or in a skip, no-op or wait whose reason
//! names the thing at fault (the tag key and value, the instance id, the detail-type), and the
//! fault proxy in front of moto counts zero mutating calls.
//!
//! # Layout
//!
//! One file per table, each with the test that runs it:
//! - [`events`]: raw events through `handle_event`, one proxy count per case.
//! - [`groups`]: bad tag values and groups in odd states, one group per case in one region,
//!   one `rebalance` cycle for all of them, then a check per case; and a check that every
//!   setting tag has rows in the table.
//! - [`reaper`]: unreadable records on groups and instances, one `reap` pass.
//! - [`cli`]: `spotswap handle-event` on files of `tests/bad-input/` and generated input.
//!
//! This file holds what they share: [`Failures`], the constants and fleet helpers.
//!
//! Cases are checked one by one and failures collected, so a failing run lists every failing
//! case by name.

mod cli;
mod events;
mod groups;
mod reaper;

use aws_sdk_ec2::types::{InstanceType, ResourceType, Tag, TagSpecification};
use spotswap_aws::{Config, Outcome};
use spotswap_core::tags;
use spotswap_tests::fleet::{sample_price_file, Env, GroupSpec};

const SPOT_WARNING: &str = "EC2 Spot Instance Interruption Warning";
const REBALANCE: &str = "EC2 Instance Rebalance Recommendation";
const AMI: &str = "ami-12c6146b";
const FIVE_MB: usize = 5 << 20;

/// The adapter's configuration: the sample price file, no event bus.
fn config() -> Config {
    Config {
        price_file: Some(sample_price_file()),
        event_bus: String::new(),
        ..Config::default()
    }
}

/// Failed checks, by case; the test fails once, at the end, listing them all.
#[derive(Default)]
struct Failures(Vec<String>);

impl Failures {
    fn check(&mut self, case: &str, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            self.0.push(format!("[{case}] {}", what()));
        }
    }

    fn assert_none(self, cases: usize) {
        assert!(
            self.0.is_empty(),
            "{} failed check(s) over {cases} cases:\n{}",
            self.0.len(),
            self.0.join("\n")
        );
    }
}

/// What an outcome says beyond its kind: the detail-type, the bad tag, the reason not done.
fn outcome_detail(o: &Outcome) -> String {
    match o {
        Outcome::Done(None) | Outcome::DryRun => String::new(),
        other => other.detail(),
    }
}

/// The first 300 characters of `s` on one line, for failure messages.
fn one_line(s: &str) -> String {
    let short: String = s.chars().take(300).collect();
    short.replace('\n', "\\n")
}

/// An on-demand instance in no group, with `tags`.
async fn standalone(env: &Env, tags: &[(&str, &str)]) -> String {
    let subnet = env.subnets().await.remove(0).0;
    let mut req = env
        .ec2
        .run_instances()
        .image_id(AMI)
        .instance_type(InstanceType::M5Large)
        .min_count(1)
        .max_count(1)
        .subnet_id(subnet);
    if !tags.is_empty() {
        let mut spec = TagSpecification::builder().resource_type(ResourceType::Instance);
        for (k, v) in tags {
            spec = spec.tags(Tag::builder().key(*k).value(*v).build());
        }
        req = req.tag_specifications(spec.build());
    }
    let resp = req.send().await.expect("run instance");
    resp.instances()[0].instance_id().unwrap().to_string()
}

/// `spec` with `spotswap:enabled` set to `value` instead of `true`.
fn with_enabled(mut spec: GroupSpec, value: &str) -> GroupSpec {
    spec.tags.retain(|(k, _)| k != tags::ENABLED);
    spec.tag(tags::ENABLED, value)
}
