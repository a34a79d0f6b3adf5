//! The launch spec of a replacement: the group's own template, the original's subnet, the
//! candidate pools, the idempotency token and the tags that make the launch a swap's.

use crate::action::{Action, ActionKind, Candidate, LaunchSpec, Reason};
use crate::candidates::{candidates, SearchContext};
use crate::model::{GroupSnapshot, Instance};
use crate::tags;
use crate::time::Timestamp;

/// A Launch action replacing `original`, or a Wait saying why there is none.
/// Shared by the rebalancer and the rebalance-recommendation handler.
// Both variants are an `Action`: boxing the error would make it no smaller than the success.
#[allow(clippy::result_large_err)]
pub fn launch_for(
    group: &GroupSnapshot,
    template: &crate::model::LaunchTemplateRef,
    original: &Instance,
    ctx: SearchContext<'_>,
    avoid: Option<&crate::model::Pool>,
    reason: Reason,
) -> Result<Action, Action> {
    let od_price = ctx.market.on_demand_price(&original.instance_type);
    let Some(subnet_id) = original.subnet_id.clone() else {
        return Err(Action::new(ActionKind::Wait, Reason::NoSubnet, &group.name).instance(&original.id));
    };
    let found: Vec<Candidate> = candidates(original, original.architecture.as_deref(), ctx, avoid);
    let Some(cheapest) = found.first().cloned() else {
        return Err(Action::new(ActionKind::Wait, Reason::NoEligiblePool, &group.name)
            .instance(&original.id)
            .pool(original.pool())
            .prices(None, od_price));
    };
    let spec = LaunchSpec {
        replaces: original.id.clone(),
        subnet_id,
        launch_template: template.clone(),
        candidates: found,
        client_token: client_token(&original.id, ctx.now),
        tags: launch_tags(group, &original.id, ctx.now),
    };
    Ok(Action::new(ActionKind::Launch(spec), reason, &group.name)
        .instance(&original.id)
        .pool(cheapest.pool)
        .prices(Some(cheapest.spot_price), od_price))
}

/// CreateFleet's idempotency token: the same instance in the same 10-minute bucket gives the
/// same token, so concurrent or retried cycles dedupe at EC2, and a later retry after a
/// failed launch gets a fresh one.
pub fn client_token(replaces: &str, now: Timestamp) -> String {
    format!("spotswap-{replaces}-{}", now.unix().div_euclid(600))
}

/// Our tags plus the group's propagate-at-launch tags (not `aws:` or `spotswap:` ones), at
/// most 50 as EC2 allows.
pub fn launch_tags(group: &GroupSnapshot, replaces: &str, now: Timestamp) -> Vec<(String, String)> {
    let mut out = vec![
        (tags::GROUP.to_string(), group.name.clone()),
        (tags::REPLACES.to_string(), replaces.to_string()),
        (tags::LAUNCHED_AT.to_string(), now.to_rfc3339()),
    ];
    out.extend(
        group
            .propagated_tags
            .iter()
            .filter(|(k, _)| !k.starts_with("aws:") && !k.starts_with("spotswap:"))
            .map(|(k, v)| (k.clone(), v.clone())),
    );
    out.truncate(50);
    out
}
