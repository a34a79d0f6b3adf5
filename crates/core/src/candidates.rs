//! Which spot pools may replace an instance: compatibility, globs, price, cooldown and the
//! diversification cap. Ranked cheapest first.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use crate::action::Candidate;
use crate::model::{Instance, InstanceTypeSpec, Market, Pool};
use crate::policy::Policy;
use crate::records::GroupRecords;
use crate::time::Timestamp;

/// Most overrides passed to one CreateFleet call.
pub const MAX_OVERRIDES: usize = 10;

/// True when `candidate` can run what `original` runs: same architecture, and vCPU, memory,
/// GPU and (if the original had any) instance store at least the original's.
pub fn compatible(original: &InstanceTypeSpec, architecture: &str, candidate: &InstanceTypeSpec) -> bool {
    candidate.architectures.iter().any(|a| a == architecture)
        && candidate.vcpus >= original.vcpus
        && candidate.memory_mib >= original.memory_mib
        && candidate.gpus >= original.gpus
        && (original.instance_store_gb == 0 || candidate.instance_store_gb >= original.instance_store_gb)
}

/// Spot instances of one group per pool, counting launches in flight.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolCounts {
    counts: BTreeMap<Pool, u32>,
    total: u32,
}

impl PoolCounts {
    /// Count one more spot instance in `pool`.
    pub fn add(&mut self, pool: Pool) {
        *self.counts.entry(pool).or_default() += 1;
        self.total += 1;
    }

    /// Spot instances in `pool`.
    pub fn in_pool(&self, pool: &Pool) -> u32 {
        self.counts.get(pool).copied().unwrap_or(0)
    }

    /// Spot instances in all pools.
    pub fn total(&self) -> u32 {
        self.total
    }
}

/// The most spot instances one pool may hold: `max-pool-percent` of the spot count the group
/// is heading for, rounded up, and never less than one.
pub fn pool_limit(max_pool_percent: u32, target_spot: u32) -> u32 {
    (u64::from(target_spot) * u64::from(max_pool_percent))
        .div_ceil(100)
        .max(1) as u32
}

/// What a candidate search needs besides the instance.
#[derive(Debug, Clone, Copy)]
pub struct SearchContext<'a> {
    /// The region's market.
    pub market: &'a Market,
    /// The group's policy.
    pub policy: &'a Policy,
    /// The group's records.
    pub records: &'a GroupRecords,
    /// Spot per pool in the group.
    pub counts: &'a PoolCounts,
    /// The spot count the group is heading for, for the cap.
    pub target_spot: u32,
    /// Now.
    pub now: Timestamp,
    /// The group's ranked pools, shared by its searches; `None` ranks afresh.
    pub ranked: Option<&'a RankedPools>,
}

/// Ranked pools per original (type, AZ, architecture) for one group's plan: everything of a
/// search except the avoided pool and the diversification cap, which change between the
/// group's launches. A group replacing many instances of one type ranks the region's pools
/// (thousands at AWS's 900-odd types) once, not once per instance.
#[derive(Debug, Default)]
pub struct RankedPools(RefCell<BTreeMap<RankKey, Rc<Vec<Candidate>>>>);

/// An original's instance type, AZ and architecture.
type RankKey = (String, String, Option<String>);

/// Candidate pools to replace `original` in its own AZ, cheapest first, at most
/// [`MAX_OVERRIDES`]. `avoid` excludes a pool (the at-risk pool of a rebalance swap).
///
/// A candidate's spot price must not exceed the original type's on-demand price. When that
/// price is unknown, only the original type is allowed: spot never costs more than
/// on-demand for the same type.
pub fn candidates(
    original: &Instance,
    architecture: Option<&str>,
    ctx: SearchContext<'_>,
    avoid: Option<&Pool>,
) -> Vec<Candidate> {
    let ranked = match ctx.ranked {
        Some(cache) => {
            let key = (
                original.instance_type.clone(),
                original.az.clone(),
                architecture.map(str::to_string),
            );
            let hit = cache.0.borrow().get(&key).cloned();
            match hit {
                Some(r) => r,
                None => {
                    let r = Rc::new(rank(original, architecture, ctx));
                    cache.0.borrow_mut().insert(key, r.clone());
                    r
                }
            }
        }
        None => Rc::new(rank(original, architecture, ctx)),
    };
    let limit = pool_limit(ctx.policy.max_pool_percent, ctx.target_spot);
    ranked
        .iter()
        .filter(|c| Some(&c.pool) != avoid)
        .filter(|c| ctx.counts.in_pool(&c.pool) < limit)
        .take(MAX_OVERRIDES)
        .cloned()
        .collect()
}

/// Every pool that may replace `original`, cheapest first, before the avoided pool and the cap.
fn rank(original: &Instance, architecture: Option<&str>, ctx: SearchContext<'_>) -> Vec<Candidate> {
    let market = ctx.market;
    let od_price = market.on_demand_price(&original.instance_type);
    let original_spec = market.types.get(&original.instance_type);
    let arch = architecture
        .map(str::to_string)
        .or_else(|| original_spec.and_then(|s| s.architectures.first().cloned()));

    let mut out: Vec<Candidate> = market
        .spot_prices
        .iter()
        .filter(|(pool, _)| pool.az == original.az)
        .filter(|(pool, _)| {
            ctx.policy
                .may_replace(&original.instance_type, &pool.instance_type)
        })
        .filter(|(pool, _)| match (od_price, original_spec, arch.as_deref()) {
            (Some(_), Some(orig), Some(arch)) => market
                .types
                .get(&pool.instance_type)
                .is_some_and(|cand| compatible(orig, arch, cand)),
            _ => pool.instance_type == original.instance_type,
        })
        .filter(|(_, &price)| od_price.is_none_or(|od| price <= od))
        .filter(|(pool, _)| ctx.records.pool_block(pool, ctx.now).is_none())
        .map(|(pool, &spot_price)| Candidate {
            pool: pool.clone(),
            spot_price,
        })
        .collect();
    // Cheapest first; at equal prices, a type whose on-demand price is known (its savings can
    // be shown), then the least over-provisioned one.
    let size = |c: &Candidate| {
        let spec = market
            .types
            .get(&c.pool.instance_type)
            .map(|t| (t.vcpus, t.memory_mib, t.gpus))
            .unwrap_or((u32::MAX, u64::MAX, u32::MAX));
        (market.on_demand_price(&c.pool.instance_type).is_none(), spec)
    };
    out.sort_by(|a, b| {
        a.spot_price
            .total_cmp(&b.spot_price)
            .then_with(|| size(a).cmp(&size(b)))
            .then_with(|| a.pool.cmp(&b.pool))
    });
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::Lifecycle;
    use crate::policy::TypeGlobs;
    use crate::records::cooldown_key;
    use crate::testkit::{instance, market_of, spec, A, B, OFFERS};

    /// A market of x86 and arm types in two AZs, with on-demand prices for all: the testkit's
    /// six types and m5.xlarge.
    pub(crate) fn market() -> Market {
        let mut offers = OFFERS.to_vec();
        offers.push(("m5.xlarge", "x86_64", 4, 16, 0, 0.192, 0.080));
        market_of(&offers, &[A, B])
    }

    fn ctx<'a>(m: &'a Market, p: &'a Policy, r: &'a GroupRecords, c: &'a PoolCounts) -> SearchContext<'a> {
        SearchContext {
            market: m,
            policy: p,
            records: r,
            counts: c,
            target_spot: 4,
            now: Timestamp::from_unix(1_767_225_600),
            ranked: None,
        }
    }

    fn types(c: &[Candidate]) -> Vec<&str> {
        c.iter().map(|c| c.pool.instance_type.as_str()).collect()
    }

    #[test]
    fn compatible_types_only_ranked_by_spot_price() {
        // GIVEN an on-demand m5.large in us-east-1a
        let m = market();
        let (p, r, c) = (Policy::default(), GroupRecords::default(), PoolCounts::default());
        let orig = instance("i-1", "m5.large", "us-east-1a", Lifecycle::OnDemand);
        // WHEN candidates are ranked
        let got = candidates(&orig, Some("x86_64"), ctx(&m, &p, &r, &c), None);
        // THEN arm64 (m6g) and smaller memory (c5) are out; bigger ones are in; cheapest first
        assert_eq!(
            types(&got),
            vec!["m5a.large", "m6i.large", "m5.large", "r5.large", "m5.xlarge"]
        );
        // AND all are in the original's AZ
        assert!(got.iter().all(|c| c.pool.az == "us-east-1a"));
    }

    #[test]
    fn spot_dearer_than_original_on_demand_is_excluded() {
        // GIVEN m5.xlarge spot costs more than m5.large on-demand
        let mut m = market();
        m.spot_prices.insert(Pool::new("m5.xlarge", "us-east-1a"), 0.10);
        let (p, r, c) = (Policy::default(), GroupRecords::default(), PoolCounts::default());
        let orig = instance("i-1", "m5.large", "us-east-1a", Lifecycle::OnDemand);
        // THEN it is not a candidate
        let got = candidates(&orig, Some("x86_64"), ctx(&m, &p, &r, &c), None);
        assert!(!types(&got).contains(&"m5.xlarge"));
    }

    #[test]
    fn unknown_on_demand_price_allows_only_the_same_type() {
        // GIVEN no on-demand price for m5.large
        let mut m = market();
        m.on_demand_prices.remove("m5.large");
        let (p, r, c) = (Policy::default(), GroupRecords::default(), PoolCounts::default());
        let orig = instance("i-1", "m5.large", "us-east-1a", Lifecycle::OnDemand);
        // THEN the only candidate is m5.large itself
        let got = candidates(&orig, Some("x86_64"), ctx(&m, &p, &r, &c), None);
        assert_eq!(types(&got), vec!["m5.large"]);
    }

    #[test]
    fn globs_cooldown_cap_and_avoid_exclude_pools() {
        // GIVEN allowed m5*, denied m5a.*, m6i in cooldown, and m5.large already at the cap
        let m = market();
        let p = Policy {
            allowed_types: TypeGlobs::parse("t", "m5*,m6i.*,r5.*").unwrap(),
            denied_types: TypeGlobs::parse("t", "m5a.*").unwrap(),
            ..Policy::default()
        };
        let mut tags = BTreeMap::new();
        tags.insert(
            cooldown_key(&Pool::new("m6i.large", "us-east-1a")),
            "2026-01-01T01:00:00Z".to_string(),
        );
        let r = GroupRecords::from_tags(&tags);
        let mut c = PoolCounts::default();
        c.add(Pool::new("m5.large", "us-east-1a"));
        c.add(Pool::new("m5.large", "us-east-1a"));
        let orig = instance("i-1", "m5.large", "us-east-1a", Lifecycle::OnDemand);
        // WHEN candidates are ranked, avoiding r5.large/us-east-1a
        let avoid = Pool::new("r5.large", "us-east-1a");
        let got = candidates(&orig, Some("x86_64"), ctx(&m, &p, &r, &c), Some(&avoid));
        // THEN only m5.xlarge is left
        assert_eq!(types(&got), vec!["m5.xlarge"]);
    }

    #[test]
    fn a_groups_shared_ranking_still_applies_the_cap_and_the_avoided_pool_per_search() {
        // GIVEN one group's searches sharing a ranking, and the uncached searches to match
        let m = market();
        let p = Policy::default();
        let r = GroupRecords::default();
        let orig = instance("i-1", "m5.large", "us-east-1a", Lifecycle::OnDemand);
        let ranked = RankedPools::default();
        let mut c = PoolCounts::default();
        let search = |c: &PoolCounts, avoid: Option<&Pool>, cached: bool| {
            let ctx = SearchContext {
                ranked: cached.then_some(&ranked),
                ..ctx(&m, &p, &r, c)
            };
            candidates(&orig, Some("x86_64"), ctx, avoid)
        };
        let first = search(&c, None, true);
        assert_eq!(first, search(&c, None, false));
        // WHEN the cheapest pool fills up to the cap (2 of target 4 at 50 %) and a later
        // search avoids the next one
        c.add(first[0].pool.clone());
        c.add(first[0].pool.clone());
        let avoid = first[1].pool.clone();
        let later = search(&c, Some(&avoid), true);
        // THEN the shared ranking answers as a fresh search does: without either pool
        assert_eq!(later, search(&c, Some(&avoid), false));
        assert!(!later.iter().any(|x| x.pool == first[0].pool || x.pool == avoid));
        assert_eq!(later.len(), first.len() - 2);
        assert_eq!(ranked.0.borrow().len(), 1);
    }

    #[test]
    fn pool_limit_rounds_up_and_is_at_least_one() {
        assert_eq!(pool_limit(50, 4), 2);
        assert_eq!(pool_limit(50, 3), 2);
        assert_eq!(pool_limit(50, 1), 1);
        assert_eq!(pool_limit(10, 3), 1);
        assert_eq!(pool_limit(100, 7), 7);
    }

    #[test]
    fn gpu_and_instance_store_must_be_met() {
        let mut orig = spec("g4dn.xlarge", "x86_64", 4, 16);
        orig.gpus = 1;
        orig.instance_store_gb = 125;
        let mut no_gpu = spec("m5d.xlarge", "x86_64", 4, 16);
        no_gpu.instance_store_gb = 150;
        let mut small_disk = spec("g4dn.x", "x86_64", 4, 16);
        small_disk.gpus = 1;
        small_disk.instance_store_gb = 100;
        let mut ok = small_disk.clone();
        ok.instance_store_gb = 225;
        assert!(!compatible(&orig, "x86_64", &no_gpu));
        assert!(!compatible(&orig, "x86_64", &small_disk));
        assert!(compatible(&orig, "x86_64", &ok));
        assert!(!compatible(&orig, "arm64", &ok));
    }
}
