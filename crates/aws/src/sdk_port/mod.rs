//! [`SdkPort`]: the [`Port`] on the AWS SDK clients. Requests are built and answers read here
//! and nowhere else; every SDK type stays in this module.

use aws_config::{Region, SdkConfig};
use aws_sdk_ec2::types::{
    Filter, FleetLaunchTemplateConfigRequest, FleetLaunchTemplateOverridesRequest,
    FleetLaunchTemplateSpecificationRequest, FleetType, InstanceType, ResourceType, Tag, TagSpecification,
};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::http::Response;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use spotswap_core::events::Membership;
use spotswap_core::model::{LaunchTemplateRef, ScheduledEvent};
use spotswap_core::{GroupSnapshot, Instance, InstanceTypeSpec, MemberState, Pool, Timestamp};

use crate::clients::CallCounter;
use crate::port::{
    op, EventEntry, FleetAnswer, FleetAnswerError, FleetRequest, GroupQuery, InstanceQuery, Page, Port,
    PortFuture, RequirementsQuery, SpotPrice,
};
use crate::AdapterError;

mod carry;
mod cloudformation;
mod commitments;
mod convert;
mod diag;
mod groups;
mod launch_config;
mod requirements;
mod specs;
mod status;

use convert::{group_from_sdk, instance_from_sdk};
use specs::spec_from_sdk;

/// Pages of the largest size each API allows.
const ASG_PAGE: i32 = 100;
const EC2_PAGE: i32 = 1000;
/// The states of a live instance.
const LIVE: [&str; 4] = ["pending", "running", "stopping", "stopped"];

/// The SDK clients, each with the call counter as an interceptor (retries count: they are
/// calls).
#[derive(Debug, Clone)]
pub(crate) struct SdkPort {
    ec2: aws_sdk_ec2::Client,
    asg: aws_sdk_autoscaling::Client,
    events: aws_sdk_eventbridge::Client,
    pricing: aws_sdk_pricing::Client,
    cloudformation: aws_sdk_cloudformation::Client,
    logs: aws_sdk_cloudwatchlogs::Client,
    cloudwatch: aws_sdk_cloudwatch::Client,
    savingsplans: aws_sdk_savingsplans::Client,
}

impl SdkPort {
    /// Every client from one `SdkConfig`, counting into `calls`.
    pub(crate) fn new(conf: &SdkConfig, calls: &CallCounter) -> Self {
        let ec2 = aws_sdk_ec2::config::Builder::from(conf)
            .interceptor(calls.clone())
            .build();
        let asg = aws_sdk_autoscaling::config::Builder::from(conf)
            .interceptor(calls.clone())
            .build();
        let events = aws_sdk_eventbridge::config::Builder::from(conf)
            .interceptor(calls.clone())
            .build();
        // The Price List API is served from a few regions only; us-east-1 answers for all.
        // One attempt: prices are cached and have a fallback, a slow retry loop helps nobody.
        let pricing = aws_sdk_pricing::config::Builder::from(conf)
            .region(Region::new("us-east-1"))
            .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(1))
            .interceptor(calls.clone())
            .build();
        Self {
            ec2: aws_sdk_ec2::Client::from_conf(ec2),
            asg: aws_sdk_autoscaling::Client::from_conf(asg),
            events: aws_sdk_eventbridge::Client::from_conf(events),
            pricing: aws_sdk_pricing::Client::from_conf(pricing),
            cloudformation: cloudformation::client(conf, calls),
            savingsplans: commitments::client(conf, calls),
            cloudwatch: diag::cloudwatch(conf, calls),
            logs: aws_sdk_cloudwatchlogs::Client::from_conf(
                aws_sdk_cloudwatchlogs::config::Builder::from(conf)
                    .interceptor(calls.clone())
                    .build(),
            ),
        }
    }
}

/// Name the operation in an SDK error.
fn err<E>(operation: &'static str) -> impl FnOnce(SdkError<E, Response>) -> AdapterError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    move |e| AdapterError::aws(operation, e)
}

fn live_filter() -> Filter {
    Filter::builder()
        .name("instance-state-name")
        .set_values(Some(LIVE.iter().map(|s| s.to_string()).collect()))
        .build()
}

impl Port for SdkPort {
    fn describe_groups<'a>(
        &'a self,
        q: &'a GroupQuery,
        token: Option<String>,
    ) -> PortFuture<'a, Page<GroupSnapshot>> {
        Box::pin(async move {
            let mut req = self
                .asg
                .describe_auto_scaling_groups()
                .max_records(ASG_PAGE)
                .set_next_token(token);
            match q {
                GroupQuery::All => {}
                GroupQuery::TagKey(key) => {
                    req = req.filters(
                        aws_sdk_autoscaling::types::Filter::builder()
                            .name("tag-key")
                            .values(key)
                            .build(),
                    )
                }
                GroupQuery::Names(names) => req = req.set_auto_scaling_group_names(Some(names.clone())),
            }
            let page = req.send().await.map_err(err(op::DESCRIBE_GROUPS))?;
            Ok(Page {
                items: page.auto_scaling_groups().iter().map(group_from_sdk).collect(),
                next: page.next_token().map(str::to_string),
            })
        })
    }

    fn describe_instances<'a>(
        &'a self,
        q: &'a InstanceQuery,
        token: Option<String>,
    ) -> PortFuture<'a, Page<Instance>> {
        Box::pin(async move {
            let req = self.ec2.describe_instances().set_next_token(token);
            // The tag filter first, then the states: the order the requests always had.
            let req = match q {
                InstanceQuery::Live => req.filters(live_filter()).max_results(EC2_PAGE),
                // MaxResults cannot go with InstanceIds.
                InstanceQuery::Ids(ids) => req.filters(live_filter()).set_instance_ids(Some(ids.clone())),
                InstanceQuery::Tagged { key, values } => {
                    let tag = if values.is_empty() {
                        Filter::builder().name("tag-key").values(key).build()
                    } else {
                        Filter::builder()
                            .name(format!("tag:{key}"))
                            .set_values(Some(values.clone()))
                            .build()
                    };
                    req.filters(tag).filters(live_filter()).max_results(EC2_PAGE)
                }
            };
            let page = req.send().await.map_err(err(op::DESCRIBE_INSTANCES))?;
            Ok(Page {
                items: page
                    .reservations()
                    .iter()
                    .flat_map(|r| r.instances())
                    .filter_map(instance_from_sdk)
                    .collect(),
                next: page.next_token().map(str::to_string),
            })
        })
    }

    fn instance_status<'a>(&'a self, ids: &'a [String]) -> PortFuture<'a, Vec<(String, bool)>> {
        Box::pin(status::checks(&self.ec2, ids))
    }

    fn scheduled_events(&self, token: Option<String>) -> PortFuture<'_, Page<(String, ScheduledEvent)>> {
        Box::pin(status::scheduled(&self.ec2, token))
    }

    fn template_version<'a>(&'a self, template: &'a LaunchTemplateRef) -> PortFuture<'a, Option<String>> {
        Box::pin(status::template_version(&self.ec2, template))
    }

    fn spot_prices<'a>(
        &'a self,
        azs: &'a [String],
        since: Timestamp,
        token: Option<String>,
    ) -> PortFuture<'a, Page<SpotPrice>> {
        Box::pin(async move {
            let page = self
                .ec2
                .describe_spot_price_history()
                .filters(
                    Filter::builder()
                        .name("availability-zone")
                        .set_values(Some(azs.to_vec()))
                        .build(),
                )
                .start_time(aws_smithy_types::DateTime::from_secs(since.unix()))
                .product_descriptions("Linux/UNIX")
                .product_descriptions("Linux/UNIX (Amazon VPC)")
                .max_results(EC2_PAGE)
                .set_next_token(token)
                .send()
                .await
                .map_err(err(op::DESCRIBE_SPOT_PRICES))?;
            Ok(Page {
                items: page
                    .spot_price_history()
                    .iter()
                    .filter_map(|p| {
                        Some(SpotPrice {
                            pool: Pool::new(p.instance_type()?.as_str(), p.availability_zone()?),
                            price: p.spot_price()?.parse::<f64>().ok()?,
                            at: Timestamp::from_unix(p.timestamp().map(|t| t.secs()).unwrap_or(0)),
                        })
                    })
                    .collect(),
                next: page.next_token().map(str::to_string),
            })
        })
    }

    fn instance_types(&self, token: Option<String>) -> PortFuture<'_, Page<InstanceTypeSpec>> {
        Box::pin(async move {
            let page = self
                .ec2
                .describe_instance_types()
                .max_results(100)
                .set_next_token(token)
                .send()
                .await
                .map_err(err(op::DESCRIBE_INSTANCE_TYPES))?;
            Ok(Page {
                items: page.instance_types().iter().filter_map(spec_from_sdk).collect(),
                next: page.next_token().map(str::to_string),
            })
        })
    }

    fn types_for_requirements<'a>(
        &'a self,
        q: &'a RequirementsQuery,
        token: Option<String>,
    ) -> PortFuture<'a, Page<String>> {
        Box::pin(requirements::types_for(&self.ec2, q, token))
    }

    fn instance_refresh_in_progress<'a>(&'a self, group: &'a str) -> PortFuture<'a, bool> {
        Box::pin(async move {
            let resp = self
                .asg
                .describe_instance_refreshes()
                .auto_scaling_group_name(group)
                .max_records(10)
                .send()
                .await
                .map_err(err(op::DESCRIBE_REFRESHES))?;
            Ok(resp.instance_refreshes().iter().any(|r| {
                matches!(
                    r.status().map(|s| s.as_str()),
                    Some("Pending" | "InProgress" | "Cancelling" | "RollbackInProgress" | "Baking")
                )
            }))
        })
    }

    fn stack_status<'a>(&'a self, stack: &'a str) -> PortFuture<'a, Option<String>> {
        Box::pin(cloudformation::stack_status(&self.cloudformation, stack))
    }

    fn reserved_instances(&self) -> PortFuture<'_, Vec<spotswap_core::commitments::ReservedInstances>> {
        Box::pin(commitments::reserved_instances(&self.ec2))
    }

    fn savings_plans(&self, token: Option<String>) -> PortFuture<'_, Page<crate::port::PlanHeader>> {
        Box::pin(commitments::savings_plans(&self.savingsplans, token))
    }

    fn savings_plan_rates<'a>(
        &'a self,
        plan: &'a str,
        region: &'a str,
        token: Option<String>,
    ) -> PortFuture<'a, Page<spotswap_core::commitments::PlanRate>> {
        Box::pin(commitments::rates(&self.savingsplans, plan, region, token))
    }

    fn lifecycle_hooks<'a>(&'a self, group: &'a str) -> PortFuture<'a, Vec<String>> {
        Box::pin(async move {
            let resp = self
                .asg
                .describe_lifecycle_hooks()
                .auto_scaling_group_name(group)
                .send()
                .await
                .map_err(err(op::DESCRIBE_HOOKS))?;
            Ok(resp
                .lifecycle_hooks()
                .iter()
                .filter_map(|h| h.lifecycle_transition().map(str::to_string))
                .collect())
        })
    }

    fn membership<'a>(&'a self, id: &'a str) -> PortFuture<'a, Option<Membership>> {
        Box::pin(async move {
            let resp = self
                .asg
                .describe_auto_scaling_instances()
                .instance_ids(id)
                .send()
                .await
                .map_err(err(op::DESCRIBE_ASG_INSTANCES))?;
            Ok(resp
                .auto_scaling_instances()
                .iter()
                .find(|i| i.instance_id() == Some(id))
                .map(|i| {
                    let lifecycle_state = i.lifecycle_state().unwrap_or_default().to_string();
                    Membership {
                        instance: id.to_string(),
                        group: i.auto_scaling_group_name().unwrap_or_default().to_string(),
                        pool: Pool::new(
                            i.instance_type().unwrap_or_default(),
                            i.availability_zone().unwrap_or_default(),
                        ),
                        state: MemberState::from_api(&lifecycle_state),
                        lifecycle_state,
                    }
                }))
        })
    }

    fn instance_any_state<'a>(&'a self, id: &'a str) -> PortFuture<'a, Option<Instance>> {
        Box::pin(async move {
            // A filter rather than `InstanceIds`, so an unknown id is an empty answer, not an
            // error.
            let resp = self
                .ec2
                .describe_instances()
                .filters(Filter::builder().name("instance-id").values(id).build())
                .send()
                .await
                .map_err(err(op::DESCRIBE_INSTANCES))?;
            Ok(resp
                .reservations()
                .iter()
                .flat_map(|r| r.instances())
                .filter_map(instance_from_sdk)
                .find(|i| i.id == id))
        })
    }

    fn price_products<'a>(
        &'a self,
        filters: &'a [(&'a str, &'a str)],
        token: Option<String>,
    ) -> PortFuture<'a, Page<String>> {
        Box::pin(async move {
            use aws_sdk_pricing::types::{Filter, FilterType};
            let filters = filters
                .iter()
                .map(|(field, value)| {
                    Filter::builder()
                        .r#type(FilterType::TermMatch)
                        .field(*field)
                        .value(*value)
                        .build()
                        .map_err(|e| AdapterError::Invalid(format!("price list filter {field}: {e}")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let page = self
                .pricing
                .get_products()
                .service_code("AmazonEC2")
                .format_version("aws_v1")
                .set_filters(Some(filters))
                .max_results(100)
                .set_next_token(token)
                .send()
                .await
                .map_err(err(op::GET_PRODUCTS))?;
            Ok(Page {
                items: page.price_list().to_vec(),
                next: page.next_token().map(str::to_string),
            })
        })
    }

    fn create_fleet<'a>(&'a self, req: &'a FleetRequest) -> PortFuture<'a, FleetAnswer> {
        Box::pin(async move {
            let lt = &req.launch_template;
            let mut spec = FleetLaunchTemplateSpecificationRequest::builder().version(&lt.version);
            spec = match (&lt.id, &lt.name) {
                (Some(id), _) => spec.launch_template_id(id),
                (None, Some(name)) => spec.launch_template_name(name),
                (None, None) => spec,
            };
            let overrides = req
                .overrides
                .iter()
                .map(|(ty, subnet)| {
                    FleetLaunchTemplateOverridesRequest::builder()
                        .instance_type(InstanceType::from(ty.as_str()))
                        .subnet_id(subnet)
                        .build()
                })
                .collect();
            let tags = req
                .tags
                .iter()
                .map(|(k, v)| Tag::builder().key(k).value(v).build())
                .collect();
            let (capacity, spot_options) = convert::fleet_capacity(req.purchase, req.count);
            let resp = self
                .ec2
                .create_fleet()
                .r#type(FleetType::Instant)
                .client_token(&req.client_token)
                .launch_template_configs(
                    FleetLaunchTemplateConfigRequest::builder()
                        .launch_template_specification(spec.build())
                        .set_overrides(Some(overrides))
                        .build(),
                )
                .target_capacity_specification(capacity)
                .set_spot_options(spot_options)
                .tag_specifications(
                    TagSpecification::builder()
                        .resource_type(ResourceType::Instance)
                        .set_tags(Some(tags))
                        .build(),
                )
                .send()
                .await
                .map_err(err(op::CREATE_FLEET))?;
            Ok(FleetAnswer {
                launched: resp
                    .instances()
                    .iter()
                    .flat_map(|i| {
                        let ty = i.instance_type().map(|t| t.as_str().to_string());
                        i.instance_ids().iter().map(move |id| (id.clone(), ty.clone()))
                    })
                    .collect(),
                errors: resp
                    .errors()
                    .iter()
                    .map(|e| FleetAnswerError {
                        code: e.error_code().map(str::to_string),
                        message: e.error_message().unwrap_or_default().to_string(),
                        instance_type: e
                            .launch_template_and_overrides()
                            .and_then(|l| l.overrides())
                            .and_then(|o| o.instance_type())
                            .map(|t| t.as_str().to_string()),
                    })
                    .collect(),
            })
        })
    }

    fn attach_instances<'a>(&'a self, group: &'a str, ids: &'a [String]) -> PortFuture<'a, ()> {
        Box::pin(async move {
            self.asg
                .attach_instances()
                .auto_scaling_group_name(group)
                .set_instance_ids(Some(ids.to_vec()))
                .send()
                .await
                .map_err(err(op::ATTACH))?;
            Ok(())
        })
    }

    fn detach_instances<'a>(
        &'a self,
        group: &'a str,
        ids: &'a [String],
        decrement: bool,
    ) -> PortFuture<'a, usize> {
        Box::pin(async move {
            let resp = self
                .asg
                .detach_instances()
                .auto_scaling_group_name(group)
                .set_instance_ids(Some(ids.to_vec()))
                .should_decrement_desired_capacity(decrement)
                .send()
                .await
                .map_err(err(op::DETACH))?;
            Ok(resp.activities().len())
        })
    }

    fn terminate_in_group<'a>(&'a self, id: &'a str, decrement: bool) -> PortFuture<'a, ()> {
        Box::pin(async move {
            self.asg
                .terminate_instance_in_auto_scaling_group()
                .instance_id(id)
                .should_decrement_desired_capacity(decrement)
                .send()
                .await
                .map_err(err(op::TERMINATE_IN_GROUP))?;
            Ok(())
        })
    }

    fn update_max_size<'a>(&'a self, group: &'a str, max: u32) -> PortFuture<'a, ()> {
        Box::pin(groups::update_max_size(&self.asg, group, max))
    }

    fn update_on_demand_percent<'a>(&'a self, group: &'a str, percent: u32) -> PortFuture<'a, ()> {
        Box::pin(groups::update_on_demand_percent(&self.asg, group, percent))
    }

    fn put_group_tags<'a>(&'a self, group: &'a str, kv: &'a [(String, String)]) -> PortFuture<'a, ()> {
        Box::pin(groups::put_tags(&self.asg, group, kv))
    }

    fn delete_group_tags<'a>(&'a self, group: &'a str, keys: &'a [String]) -> PortFuture<'a, ()> {
        Box::pin(groups::delete_tags(&self.asg, group, keys))
    }

    fn tag_instances<'a>(&'a self, ids: &'a [String], kv: &'a [(String, String)]) -> PortFuture<'a, ()> {
        Box::pin(async move {
            let tags = kv
                .iter()
                .map(|(k, v)| Tag::builder().key(k).value(v).build())
                .collect();
            self.ec2
                .create_tags()
                .set_resources(Some(ids.to_vec()))
                .set_tags(Some(tags))
                .send()
                .await
                .map_err(err(op::CREATE_TAGS))?;
            Ok(())
        })
    }

    fn terminate_instances<'a>(&'a self, ids: &'a [String]) -> PortFuture<'a, ()> {
        Box::pin(async move {
            self.ec2
                .terminate_instances()
                .set_instance_ids(Some(ids.to_vec()))
                .send()
                .await
                .map_err(err(op::TERMINATE))?;
            Ok(())
        })
    }

    fn put_events<'a>(&'a self, entries: &'a [EventEntry]) -> PortFuture<'a, usize> {
        Box::pin(async move {
            let entries = entries
                .iter()
                .map(|e| {
                    aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                        .source(&e.source)
                        .detail_type(&e.detail_type)
                        .detail(&e.detail)
                        .event_bus_name(&e.bus)
                        .build()
                })
                .collect();
            let resp = self
                .events
                .put_events()
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(err(op::PUT_EVENTS))?;
            Ok(resp.failed_entry_count().max(0) as usize)
        })
    }
}
