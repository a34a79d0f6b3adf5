//! Realistic fleets in moto, one region per test.
//!
//! moto keeps state per region and a reset is global, and a rebalancer cycle reads a whole
//! region. So each test leases a region of its own; a lease wipes what an earlier test left
//! there (groups, instances, launch templates) through the ordinary APIs.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, OnceLock};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_autoscaling::types::Tag as AsgTag;
use aws_sdk_ec2::types::{
    Filter, LaunchTemplateHttpTokensState, LaunchTemplateInstanceMetadataOptionsRequest,
    RequestLaunchTemplateData,
};
use spotswap_aws::cache::MarketCache;
use spotswap_aws::Aws;

/// Regions handed to tests. `ap-southeast-2` and `ca-central-1` are kept for the proxy's own
/// tests.
pub const REGIONS: [&str; 14] = [
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-central-1",
    "eu-north-1",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-south-1",
    "ap-southeast-1",
    "sa-east-1",
];

fn leased() -> &'static Mutex<BTreeSet<&'static str>> {
    static L: OnceLock<Mutex<BTreeSet<&'static str>>> = OnceLock::new();
    L.get_or_init(|| Mutex::new(BTreeSet::new()))
}

/// A region held by one test until dropped.
#[derive(Debug)]
pub struct RegionLease(&'static str);

impl RegionLease {
    /// Wait for a free region and take it.
    pub async fn acquire() -> Self {
        loop {
            {
                let mut l = leased().lock().unwrap();
                if let Some(r) = REGIONS.iter().find(|r| !l.contains(*r)) {
                    l.insert(r);
                    return Self(r);
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }

    /// The region.
    pub fn region(&self) -> &'static str {
        self.0
    }
}

impl Drop for RegionLease {
    fn drop(&mut self) {
        if let Ok(mut l) = leased().lock() {
            l.remove(self.0);
        }
    }
}

/// The moto endpoint from `AWS_ENDPOINT_URL`, as `scripts/with-moto.sh` sets it.
pub fn moto_endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL").expect(
        "AWS_ENDPOINT_URL is not set: run integration tests through `make test` or scripts/with-moto.sh",
    )
}

/// SDK configuration for `region` at `endpoint`, with dummy credentials.
pub async fn sdk_config(region: &str, endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region.to_string()))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_ec2::config::Credentials::new(
            "testing", "testing", None, None, "tests",
        ))
        .load()
        .await
}

/// A group to create.
#[derive(Debug, Clone)]
pub struct GroupSpec {
    /// Group name.
    pub name: String,
    /// Desired capacity.
    pub desired: i32,
    /// Max size.
    pub max: i32,
    /// Instance type in the launch template.
    pub instance_type: String,
    /// Group tags (not propagated), e.g. `spotswap:enabled=true`.
    pub tags: Vec<(String, String)>,
    /// Tags propagated at launch.
    pub propagated: Vec<(String, String)>,
    /// Subnets: the first `n` of the region's default subnets.
    pub subnets: usize,
    /// HealthCheckGracePeriod.
    pub grace_secs: i32,
}

impl GroupSpec {
    /// A managed group of `desired` m5.large on-demand instances over three subnets.
    pub fn managed(name: &str, desired: i32) -> Self {
        Self {
            name: name.to_string(),
            desired,
            max: desired,
            instance_type: "m5.large".to_string(),
            tags: vec![("spotswap:enabled".to_string(), "true".to_string())],
            propagated: vec![("team".to_string(), "platform".to_string())],
            subnets: 3,
            grace_secs: 0,
        }
    }

    /// Add a group tag.
    pub fn tag(mut self, k: &str, v: &str) -> Self {
        self.tags.push((k.to_string(), v.to_string()));
        self
    }

    /// No spotswap tags at all.
    pub fn unmanaged(mut self) -> Self {
        self.tags.retain(|(k, _)| !k.starts_with("spotswap:"));
        self
    }
}

/// A test's region in moto, with clients.
pub struct Env {
    /// The lease; dropped with the env.
    pub lease: RegionLease,
    /// The SDK config, pointing at moto (or a proxy in front of it).
    pub conf: SdkConfig,
    /// EC2.
    pub ec2: aws_sdk_ec2::Client,
    /// Auto Scaling.
    pub asg: aws_sdk_autoscaling::Client,
    /// The endpoint in use.
    pub endpoint: String,
    /// The region's default subnets, asked once: they never change.
    subnets: tokio::sync::OnceCell<Vec<(String, String)>>,
}

/// One group as Auto Scaling shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupState {
    /// DesiredCapacity.
    pub desired: i32,
    /// MaxSize.
    pub max: i32,
    /// Members: id → lifecycle state.
    pub members: BTreeMap<String, String>,
    /// Group tags.
    pub tags: BTreeMap<String, String>,
}

impl GroupState {
    /// InService members.
    pub fn in_service(&self) -> Vec<String> {
        self.members
            .iter()
            .filter(|(_, s)| *s == "InService")
            .map(|(i, _)| i.clone())
            .collect()
    }
}

/// An instance as EC2 shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceState {
    /// Spot (`true`) or on-demand.
    pub spot: bool,
    /// State name.
    pub state: String,
    /// Type.
    pub instance_type: String,
    /// Tags.
    pub tags: BTreeMap<String, String>,
}

impl Env {
    /// Lease a region on the moto of `AWS_ENDPOINT_URL` and wipe it.
    pub async fn new() -> Self {
        Self::at(&moto_endpoint()).await
    }

    /// Lease a region and talk to it through `endpoint` (moto or a proxy in front of it).
    pub async fn at(endpoint: &str) -> Self {
        let lease = RegionLease::acquire().await;
        let conf = sdk_config(lease.region(), endpoint).await;
        let env = Self {
            ec2: aws_sdk_ec2::Client::new(&conf),
            asg: aws_sdk_autoscaling::Client::new(&conf),
            conf,
            lease,
            endpoint: endpoint.to_string(),
            subnets: tokio::sync::OnceCell::new(),
        };
        env.wipe().await;
        env
    }

    /// The region.
    pub fn region(&self) -> &str {
        self.lease.region()
    }

    /// A fresh adapter on this region: fresh call counts and on-demand prices, but the
    /// instance-type specs of one warm container shared by the whole test process. moto serves
    /// the same 1,395 types in every region and takes seconds to list them.
    pub fn aws(&self) -> Aws {
        self.aws_in(&warm_container())
    }

    /// An adapter on this region with `cache` as its warm-container cache: several
    /// invocations that share one (a warm Lambda container) fetch on-demand prices once.
    pub fn aws_in(&self, cache: &MarketCache) -> Aws {
        Aws::from_conf(&self.conf).with_cache(cache.clone())
    }

    /// Delete every group, instance and launch template of the region.
    pub async fn wipe(&self) {
        // Every page: a test may leave more groups than one page holds (the bad-input corpus
        // makes ~55), and a leftover managed group would join the next test's cycles.
        let mut names = Vec::new();
        let mut pages = self.asg.describe_auto_scaling_groups().into_paginator().send();
        while let Some(page) = pages.next().await {
            for g in page.expect("describe groups").auto_scaling_groups() {
                names.push(g.auto_scaling_group_name().unwrap_or_default().to_string());
            }
        }
        for name in names {
            let _ = self
                .asg
                .delete_auto_scaling_group()
                .auto_scaling_group_name(name)
                .force_delete(true)
                .send()
                .await;
        }
        let ids: Vec<String> = self.live_instances().await.into_keys().collect();
        for chunk in ids.chunks(500) {
            let _ = self
                .ec2
                .terminate_instances()
                .set_instance_ids(Some(chunk.to_vec()))
                .send()
                .await;
        }
        let lts = self
            .ec2
            .describe_launch_templates()
            .send()
            .await
            .expect("describe launch templates");
        for lt in lts.launch_templates() {
            let _ = self
                .ec2
                .delete_launch_template()
                .set_launch_template_id(lt.launch_template_id().map(str::to_string))
                .send()
                .await;
        }
    }

    /// Default subnets with their AZs, sorted by AZ.
    pub async fn subnets(&self) -> Vec<(String, String)> {
        self.subnets.get_or_init(|| self.ask_subnets()).await.clone()
    }

    async fn ask_subnets(&self) -> Vec<(String, String)> {
        let resp = self
            .ec2
            .describe_subnets()
            .send()
            .await
            .expect("describe subnets");
        let mut out: Vec<(String, String)> = resp
            .subnets()
            .iter()
            .map(|s| {
                (
                    s.subnet_id().unwrap_or_default().to_string(),
                    s.availability_zone().unwrap_or_default().to_string(),
                )
            })
            .collect();
        out.sort_by(|a, b| a.1.cmp(&b.1));
        out
    }

    /// A launch template with IMDSv2 required.
    pub async fn launch_template(&self, name: &str, instance_type: &str) -> String {
        let resp = self
            .ec2
            .create_launch_template()
            .launch_template_name(name)
            .launch_template_data(
                RequestLaunchTemplateData::builder()
                    .image_id("ami-12c6146b")
                    .instance_type(instance_type.into())
                    .metadata_options(
                        LaunchTemplateInstanceMetadataOptionsRequest::builder()
                            .http_tokens(LaunchTemplateHttpTokensState::Required)
                            .build(),
                    )
                    .build(),
            )
            .send()
            .await
            .expect("create launch template");
        resp.launch_template()
            .and_then(|l| l.launch_template_id())
            .unwrap_or_default()
            .to_string()
    }

    /// Create a group with its own launch template; returns the group name.
    pub async fn group(&self, spec: &GroupSpec) -> String {
        let lt = self
            .launch_template(&format!("{}-lt", spec.name), &spec.instance_type)
            .await;
        let subnets: Vec<String> = self
            .subnets()
            .await
            .into_iter()
            .take(spec.subnets.max(1))
            .map(|s| s.0)
            .collect();
        let tag = |k: &str, v: &str, p: bool| {
            AsgTag::builder()
                .resource_id(&spec.name)
                .resource_type("auto-scaling-group")
                .key(k)
                .value(v)
                .propagate_at_launch(p)
                .build()
        };
        let mut tags: Vec<AsgTag> = spec.tags.iter().map(|(k, v)| tag(k, v, false)).collect();
        tags.extend(spec.propagated.iter().map(|(k, v)| tag(k, v, true)));
        self.asg
            .create_auto_scaling_group()
            .auto_scaling_group_name(&spec.name)
            .launch_template(
                aws_sdk_autoscaling::types::LaunchTemplateSpecification::builder()
                    .launch_template_id(lt)
                    .version("$Latest")
                    .build(),
            )
            .min_size(0)
            .max_size(spec.max)
            .desired_capacity(spec.desired)
            .health_check_grace_period(spec.grace_secs)
            .vpc_zone_identifier(subnets.join(","))
            .set_tags(Some(tags))
            .send()
            .await
            .expect("create group");
        // moto's CreateAutoScalingGroup stores a grace period of 0 as 300 (AWS keeps 0);
        // its UpdateAutoScalingGroup keeps the value as given.
        self.asg
            .update_auto_scaling_group()
            .auto_scaling_group_name(&spec.name)
            .health_check_grace_period(spec.grace_secs)
            .send()
            .await
            .expect("set grace period");
        spec.name.clone()
    }

    /// Protect one member from scale-in.
    pub async fn protect(&self, group: &str, instance: &str) {
        self.asg
            .set_instance_protection()
            .auto_scaling_group_name(group)
            .instance_ids(instance)
            .protected_from_scale_in(true)
            .send()
            .await
            .expect("set instance protection");
    }

    /// A group's state.
    pub async fn group_state(&self, name: &str) -> GroupState {
        self.group_states(&[name]).await.remove(0)
    }

    /// Several groups' states, in the order named, from one call.
    pub async fn group_states(&self, names: &[&str]) -> Vec<GroupState> {
        let resp = self
            .asg
            .describe_auto_scaling_groups()
            .set_auto_scaling_group_names(Some(names.iter().map(|n| n.to_string()).collect()))
            .send()
            .await
            .expect("describe groups");
        names
            .iter()
            .map(|name| {
                let g = resp
                    .auto_scaling_groups()
                    .iter()
                    .find(|g| g.auto_scaling_group_name() == Some(*name))
                    .unwrap_or_else(|| panic!("group {name} exists"));
                GroupState {
                    desired: g.desired_capacity().unwrap_or(0),
                    max: g.max_size().unwrap_or(0),
                    members: g
                        .instances()
                        .iter()
                        .map(|i| {
                            (
                                i.instance_id().unwrap_or_default().to_string(),
                                i.lifecycle_state()
                                    .map(|s| s.as_str().to_string())
                                    .unwrap_or_default(),
                            )
                        })
                        .collect(),
                    tags: g
                        .tags()
                        .iter()
                        .map(|t| {
                            (
                                t.key().unwrap_or_default().to_string(),
                                t.value().unwrap_or_default().to_string(),
                            )
                        })
                        .collect(),
                }
            })
            .collect()
    }

    /// Every non-terminated instance of the region.
    pub async fn live_instances(&self) -> BTreeMap<String, InstanceState> {
        let mut out = BTreeMap::new();
        let mut pages = self
            .ec2
            .describe_instances()
            .filters(
                Filter::builder()
                    .name("instance-state-name")
                    .values("pending")
                    .values("running")
                    .values("stopping")
                    .values("stopped")
                    .build(),
            )
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            for r in page.expect("describe instances").reservations() {
                for i in r.instances() {
                    out.insert(
                        i.instance_id().unwrap_or_default().to_string(),
                        InstanceState {
                            spot: i
                                .instance_lifecycle()
                                .map(|l| l.as_str() == "spot")
                                .unwrap_or(false),
                            state: i
                                .state()
                                .and_then(|s| s.name())
                                .map(|n| n.as_str().to_string())
                                .unwrap_or_default(),
                            instance_type: i
                                .instance_type()
                                .map(|t| t.as_str().to_string())
                                .unwrap_or_default(),
                            tags: i
                                .tags()
                                .iter()
                                .map(|t| {
                                    (
                                        t.key().unwrap_or_default().to_string(),
                                        t.value().unwrap_or_default().to_string(),
                                    )
                                })
                                .collect(),
                        },
                    );
                }
            }
        }
        out
    }

    /// (on-demand, spot) InService members of a group.
    pub async fn mix(&self, group: &str) -> (usize, usize) {
        let g = self.group_state(group).await;
        let all = self.live_instances().await;
        let spot = g
            .in_service()
            .iter()
            .filter(|i| all.get(*i).is_some_and(|s| s.spot))
            .count();
        (g.in_service().len() - spot, spot)
    }
}

/// Every moto server `scripts/with-moto.sh` started (`SPOTSWAP_MOTO_URLS`), else the one of
/// `AWS_ENDPOINT_URL`.
pub fn moto_endpoints() -> Vec<String> {
    std::env::var("SPOTSWAP_MOTO_URLS")
        .ok()
        .map(|v| {
            v.split(',')
                .filter(|u| !u.is_empty())
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| vec![moto_endpoint()])
}

/// A fresh warm-container cache that shares the process's instance-type specs: moto serves
/// the same 1,395 types in every region and takes seconds to list them.
pub fn warm_container() -> MarketCache {
    static SPECS: OnceLock<MarketCache> = OnceLock::new();
    SPECS.get_or_init(Default::default).sharing_specs()
}

/// The sample price file shipped with the repo, for tests that need on-demand prices.
pub fn sample_price_file() -> String {
    format!("{}/../prices/sample-on-demand.json", env!("CARGO_MANIFEST_DIR"))
}
