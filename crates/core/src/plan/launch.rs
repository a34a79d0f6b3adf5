//! The launch spec of a replacement: the group's own template, the original's subnet, the
//! candidate pools, the idempotency token and the tags that make the launch a swap's.

use crate::action::{Action, ActionKind, Candidate, LaunchSpec, Purchase, Reason};
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
    let mut found: Vec<Candidate> = candidates(original, original.architecture.as_deref(), ctx, avoid);
    // In a weighted group a replacement counts what its original counts: a lighter one would
    // leave the group below its desired units, a heavier one would raise desired by the
    // difference at the attach (more capacity than its owner asked for, which Auto Scaling's
    // own scale-in would then take back).
    if let Some(m) = group.mixed.as_ref().filter(|m| m.weighted()) {
        let units = group.units_of(original);
        found.retain(|c| m.weight_of(&c.pool.instance_type).unwrap_or(1) == units);
    }
    // A mixed-instances override may name its own template: one CreateFleet uses one, the
    // cheapest candidate's, with only the candidates launched from it.
    let template = match (&group.mixed, found.first()) {
        (Some(m), Some(c)) => {
            let chosen = crate::mixed::template_for(m, &c.pool.instance_type);
            found.retain(|c| crate::mixed::template_for(m, &c.pool.instance_type) == chosen);
            chosen
        }
        _ => template,
    };
    let Some(cheapest) = found.first().cloned() else {
        return Err(Action::new(ActionKind::Wait, Reason::NoEligiblePool, &group.name)
            .instance(&original.id)
            .pool(original.pool())
            .prices(None, od_price));
    };
    let mut spec = LaunchSpec {
        replaces: original.id.clone(),
        subnet_id,
        launch_template: template.clone(),
        candidates: found,
        client_token: String::new(),
        tags: launch_tags(group, original, ctx.now),
        purchase: Purchase::Spot,
    };
    spec.client_token = client_token(&spec);
    Ok(Action::new(ActionKind::Launch(spec), reason, &group.name)
        .instance(&original.id)
        .pool(cheapest.pool)
        .prices(Some(cheapest.spot_price), od_price))
}

/// CreateFleet's idempotency token, as EC2 defines one: a function of the whole request. The
/// same request (an SDK retry, or a cycle repeated in the same second) gets the same token and
/// EC2 answers it with the first fleet; a request that differs in anything (another second's
/// `spotswap:launched-at`, another set of pools) gets another token, where reusing one would
/// fail with `IdempotentParameterMismatch`. A concurrent or later cycle is deduped by the
/// look-up of our launches tagged `spotswap:replaces` before it, not by the token.
///
/// FNV-1a over the request's fields, each length-prefixed so no two requests share a byte
/// string; `client_token` itself is not hashed. At most 64 characters, as CreateFleet allows.
pub fn client_token(spec: &LaunchSpec) -> String {
    let mut token = format!("spotswap-{}-{:016x}", spec.replaces, request_hash(spec));
    token.truncate(64);
    token
}

/// A batch's token ([`crate::batch::FleetBatch`]): the same hash of the whole request, whose
/// `replaces` is the list of originals (too long, and spaced, for the token itself).
pub fn batch_token(spec: &LaunchSpec) -> String {
    format!("spotswap-batch-{:016x}", request_hash(spec))
}

fn request_hash(spec: &LaunchSpec) -> u64 {
    let mut h = Fnv::default();
    h.field(&spec.replaces);
    h.field(&spec.subnet_id);
    h.field(spec.launch_template.id.as_deref().unwrap_or(""));
    h.field(spec.launch_template.name.as_deref().unwrap_or(""));
    h.field(&spec.launch_template.version);
    for c in &spec.candidates {
        h.field(&c.pool.instance_type);
        h.field(&c.pool.az);
    }
    for (k, v) in &spec.tags {
        h.field(k);
        h.field(v);
    }
    h.field(match spec.purchase {
        Purchase::Spot => "spot",
        Purchase::OnDemand => "on-demand",
    });
    h.0
}

/// 64-bit FNV-1a: small, stable across builds and platforms (std's hasher is neither).
pub(crate) struct Fnv(pub(crate) u64);

impl Default for Fnv {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    fn bytes(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }

    pub(crate) fn field(&mut self, s: &str) {
        self.bytes(&(s.len() as u64).to_le_bytes());
        self.bytes(s.as_bytes());
    }
}

/// Our tags plus the group's propagate-at-launch tags (not `aws:` or `spotswap:` ones), at
/// most 50 as EC2 allows. `spotswap:replaces-type` carries the type of the on-demand instance
/// the chain of swaps began with, so the savings are counted against what it cost.
pub fn launch_tags(group: &GroupSnapshot, original: &Instance, now: Timestamp) -> Vec<(String, String)> {
    let replaced_type = original
        .tag(tags::REPLACES_TYPE)
        .unwrap_or(&original.instance_type)
        .to_string();
    let mut out = vec![
        (tags::GROUP.to_string(), group.name.clone()),
        (tags::REPLACES.to_string(), original.id.clone()),
        (tags::REPLACES_TYPE.to_string(), replaced_type),
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

/// An on-demand Launch of `original`'s own type in its subnet, from the group's own launch
/// template: the risk floor's restoration (`BelowRiskFloor`), or a Wait saying why there is
/// none (no subnet).
#[allow(clippy::result_large_err)]
pub fn on_demand_launch_for(
    group: &GroupSnapshot,
    template: &crate::model::LaunchTemplateRef,
    original: &Instance,
    on_demand_price: Option<f64>,
    now: Timestamp,
) -> Result<Action, Action> {
    let Some(subnet_id) = original.subnet_id.clone() else {
        return Err(Action::new(ActionKind::Wait, Reason::NoSubnet, &group.name).instance(&original.id));
    };
    let pool = original.pool();
    let template = match &group.mixed {
        Some(m) => crate::mixed::template_for(m, &original.instance_type),
        None => template,
    };
    let mut spec = LaunchSpec {
        replaces: original.id.clone(),
        subnet_id,
        launch_template: template.clone(),
        candidates: vec![Candidate {
            pool: pool.clone(),
            spot_price: on_demand_price.unwrap_or_default(),
        }],
        client_token: String::new(),
        tags: launch_tags(group, original, now),
        purchase: Purchase::OnDemand,
    };
    spec.client_token = client_token(&spec);
    Ok(
        Action::new(ActionKind::Launch(spec), Reason::BelowRiskFloor, &group.name)
            .instance(&original.id)
            .pool(pool)
            .prices(None, on_demand_price),
    )
}
