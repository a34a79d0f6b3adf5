//! Which spot pools may replace an instance: compatibility ([`crate::compat`]), globs, price,
//! cooldown and the diversification cap. Ranked cheapest first; [`rejections`] says why each
//! other pool was turned down.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use serde::Serialize;

use crate::action::Candidate;
pub use crate::compat::{compatible, Incompatibility, Original};
use crate::model::{ImageNeeds, Instance, Market, Pool};
use crate::policy::Policy;
use crate::records::{GroupRecords, PoolBlock};
use crate::time::Timestamp;

/// Most overrides passed to one CreateFleet call.
pub const MAX_OVERRIDES: usize = 10;

/// Why the search turned a pool down: a rule of [`compatible`], or an exclusion of the group's
/// policy, the price, its records or the diversification cap. Serialized as its code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rejection {
    /// The type cannot run what the original runs.
    Incompatible(Incompatibility),
    /// The group's mixed instances policy does not list the type.
    NotInGroupPolicy,
    /// `spotswap:allowed-types` is set and matches no glob.
    NotInAllowedTypes,
    /// A `spotswap:denied-types` glob matches.
    InDeniedTypes,
    /// The original's on-demand price is unknown: only its own type may replace it.
    OnDemandPriceUnknown,
    /// DescribeInstanceTypes did not describe the type (or the original's): only the
    /// original's own type may replace it.
    SpecUnknown,
    /// The pool's spot price is above the original type's on-demand price.
    SpotAboveOnDemand,
    /// The pool is in cooldown after an interruption.
    PoolInCooldown,
    /// The pool recently had no capacity.
    PoolNoCapacity,
    /// The pool already holds `max-pool-percent` of the group's spot.
    PoolAtCap,
    /// The pool is the one a rebalance swap leaves.
    AvoidedPool,
}

impl Rejection {
    /// Every exclusion besides the compatibility rules (see [`Incompatibility::ALL`]).
    pub const EXCLUSIONS: [Rejection; 10] = [
        Self::NotInGroupPolicy,
        Self::NotInAllowedTypes,
        Self::InDeniedTypes,
        Self::OnDemandPriceUnknown,
        Self::SpecUnknown,
        Self::SpotAboveOnDemand,
        Self::PoolInCooldown,
        Self::PoolNoCapacity,
        Self::PoolAtCap,
        Self::AvoidedPool,
    ];

    /// The stable PascalCase code.
    pub fn code(self) -> &'static str {
        match self {
            Self::Incompatible(i) => i.code(),
            Self::NotInGroupPolicy => "NotInGroupPolicy",
            Self::NotInAllowedTypes => "NotInAllowedTypes",
            Self::InDeniedTypes => "InDeniedTypes",
            Self::OnDemandPriceUnknown => "OnDemandPriceUnknown",
            Self::SpecUnknown => "SpecUnknown",
            Self::SpotAboveOnDemand => "SpotAboveOnDemand",
            Self::PoolInCooldown => "PoolInCooldown",
            Self::PoolNoCapacity => "PoolNoCapacity",
            Self::PoolAtCap => "PoolAtCap",
            Self::AvoidedPool => "AvoidedPool",
        }
    }
}

impl Serialize for Rejection {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

/// One candidate type turned down for an original, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejected {
    /// The candidate type (its pool is in the original's AZ).
    pub instance_type: String,
    /// The first rule or exclusion it failed.
    pub reason: Rejection,
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

/// Ranked pools per original (type, AZ, architecture, image needs) for one group's plan: everything of a
/// search except the avoided pool and the diversification cap, which change between the
/// group's launches. A group replacing many instances of one type ranks the region's pools
/// (thousands at AWS's 900-odd types) once, not once per instance.
#[derive(Debug, Default)]
pub struct RankedPools(RefCell<BTreeMap<RankKey, Rc<Vec<Candidate>>>>);

/// An original's instance type, AZ, architecture and image needs: everything of the
/// original a ranking reads.
type RankKey = (String, String, Option<String>, ImageNeeds);

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
                original.image,
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

/// The checks of one search that do not change between a group's launches: the policy's
/// globs, compatibility with the original, the price, and the group's pool records. Built
/// once per ranking, then asked of every pool; allocation-free.
struct Screen<'a> {
    market: &'a Market,
    policy: &'a Policy,
    records: &'a GroupRecords,
    now: Timestamp,
    original_type: &'a str,
    od_price: Option<f64>,
    /// `None` when the original's spec or architecture is unknown.
    original: Option<Original<'a>>,
}

impl<'a> Screen<'a> {
    fn new(original: &'a Instance, architecture: Option<&'a str>, ctx: &SearchContext<'a>) -> Self {
        let market = ctx.market;
        let spec = market.types.get(&original.instance_type);
        let arch = architecture.or_else(|| spec.and_then(|s| s.architectures.first().map(String::as_str)));
        Self {
            market,
            policy: ctx.policy,
            records: ctx.records,
            now: ctx.now,
            original_type: &original.instance_type,
            od_price: market.on_demand_price(&original.instance_type),
            original: match (spec, arch) {
                (Some(spec), Some(arch)) => Some(Original::new(spec, arch).with_image(original.image)),
                _ => None,
            },
        }
    }

    /// Whether `pool` at `price` may replace the original, before the cap and the avoided pool.
    fn check(&self, pool: &Pool, price: f64) -> Result<(), Rejection> {
        let t = pool.instance_type.as_str();
        if self.policy.group_types.as_ref().is_some_and(|g| !g.contains(t)) {
            return Err(Rejection::NotInGroupPolicy);
        }
        if self.policy.same_type_only && t != self.original_type {
            // AutoSpotting's `autospotting_allowed_instance_types=current`
            return Err(Rejection::NotInAllowedTypes);
        }
        let allowed = &self.policy.allowed_types;
        if !allowed.is_empty() && !allowed.matches(t) {
            return Err(Rejection::NotInAllowedTypes);
        }
        if self.policy.denied_types.matches(t) {
            return Err(Rejection::InDeniedTypes);
        }
        match (self.od_price, &self.original) {
            (Some(_), Some(orig)) => match self.market.types.get(t) {
                Some(cand) => compatible(orig, cand, allowed).map_err(Rejection::Incompatible)?,
                None => return Err(Rejection::SpecUnknown),
            },
            _ if t == self.original_type => {}
            (None, _) => return Err(Rejection::OnDemandPriceUnknown),
            (Some(_), None) => return Err(Rejection::SpecUnknown),
        }
        if self.od_price.is_some_and(|od| price > od) {
            return Err(Rejection::SpotAboveOnDemand);
        }
        match self.records.pool_block(pool, self.now) {
            Some(PoolBlock::Cooldown(_)) => Err(Rejection::PoolInCooldown),
            Some(PoolBlock::NoCapacity(_)) => Err(Rejection::PoolNoCapacity),
            None => Ok(()),
        }
    }
}

/// Every pool that may replace `original`, cheapest first, before the avoided pool and the cap.
fn rank(original: &Instance, architecture: Option<&str>, ctx: SearchContext<'_>) -> Vec<Candidate> {
    let market = ctx.market;
    let screen = Screen::new(original, architecture, &ctx);
    let mut out: Vec<Candidate> = market
        .spot_prices
        .iter()
        .filter(|(pool, _)| pool.az == original.az)
        .filter(|(pool, &price)| screen.check(pool, price).is_ok())
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

/// Every pool of `original`'s AZ that [`candidates`] turns down, and why, one per type, by
/// type name: what `spotswap plan --output json` shows. The same checks as the search, in the
/// same order, then the avoided pool and the cap. For explaining, not on the planner's path.
pub fn rejections(
    original: &Instance,
    architecture: Option<&str>,
    ctx: SearchContext<'_>,
    avoid: Option<&Pool>,
) -> Vec<Rejected> {
    let screen = Screen::new(original, architecture, &ctx);
    let limit = pool_limit(ctx.policy.max_pool_percent, ctx.target_spot);
    ctx.market
        .spot_prices
        .iter()
        .filter(|(pool, _)| pool.az == original.az)
        .filter_map(|(pool, &price)| {
            let reason = match screen.check(pool, price) {
                Err(r) => r,
                Ok(()) if Some(pool) == avoid => Rejection::AvoidedPool,
                Ok(()) if ctx.counts.in_pool(pool) >= limit => Rejection::PoolAtCap,
                Ok(()) => return None,
            };
            Some(Rejected {
                instance_type: pool.instance_type.clone(),
                reason,
            })
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::InstanceTypeSpec;
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
    fn a_shared_ranking_is_per_image_not_only_per_type() {
        // GIVEN two m5.large originals of one group, the second's image without ENA, and
        // an m4-like type that needs no ENA
        let mut m = market();
        for t in m.types.values_mut() {
            t.ena = crate::model::Support::Required;
        }
        m.types.get_mut("m5.large").unwrap().ena = crate::model::Support::Supported;
        m.types.insert(
            "m4.large".into(),
            InstanceTypeSpec {
                ena: crate::model::Support::Unsupported,
                ..spec("m4.large", "x86_64", 2, 8)
            },
        );
        m.spot_prices.insert(Pool::new("m4.large", "us-east-1a"), 0.039);
        let (p, r, c) = (Policy::default(), GroupRecords::default(), PoolCounts::default());
        let first = instance("i-1", "m5.large", "us-east-1a", Lifecycle::OnDemand);
        let mut second = instance("i-2", "m5.large", "us-east-1a", Lifecycle::OnDemand);
        second.image.ena_enabled = Some(false);
        let ranked = RankedPools::default();
        let search = |o: &Instance| {
            let ctx = SearchContext {
                ranked: Some(&ranked),
                ..ctx(&m, &p, &r, &c)
            };
            candidates(o, Some("x86_64"), ctx, None)
        };
        // WHEN both search with one shared ranking
        let a = search(&first);
        let b = search(&second);
        // THEN the second gets its own: only types that do not require ENA
        assert!(types(&a).contains(&"m6i.large"));
        assert_eq!(types(&b), vec!["m4.large", "m5.large"]);
        assert_eq!(ranked.0.borrow().len(), 2);
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
    fn every_turned_down_pool_has_its_reason_and_the_rest_are_the_candidates() {
        // GIVEN m5.large with allowed m5*, r5*, t3*, denied m5a.*, m5.xlarge dearer than the
        // original on-demand, r5.large in cooldown, m5.large at the cap, and a burstable t3
        let mut m = market();
        m.spot_prices.insert(Pool::new("m5.xlarge", "us-east-1a"), 0.10);
        m.types.insert(
            "t3.large".into(),
            InstanceTypeSpec {
                burstable: true,
                ..spec("t3.large", "x86_64", 2, 8)
            },
        );
        m.types.insert(
            "t2.large".into(),
            InstanceTypeSpec {
                burstable: true,
                ..spec("t2.large", "x86_64", 2, 8)
            },
        );
        m.spot_prices.insert(Pool::new("t3.large", "us-east-1a"), 0.03);
        m.spot_prices.insert(Pool::new("t2.large", "us-east-1a"), 0.03);
        m.spot_prices.insert(Pool::new("m5.unknown", "us-east-1a"), 0.01);
        let p = Policy {
            allowed_types: TypeGlobs::parse("t", "m5*,r5.*,c5.*,t2.*").unwrap(),
            denied_types: TypeGlobs::parse("t", "m5a.*").unwrap(),
            ..Policy::default()
        };
        let mut tags = BTreeMap::new();
        tags.insert(
            cooldown_key(&Pool::new("r5.large", "us-east-1a")),
            "2026-01-01T01:00:00Z".to_string(),
        );
        let r = GroupRecords::from_tags(&tags);
        let mut c = PoolCounts::default();
        c.add(Pool::new("m5.large", "us-east-1a"));
        c.add(Pool::new("m5.large", "us-east-1a"));
        let orig = instance("i-1", "m5.large", "us-east-1a", Lifecycle::OnDemand);
        // WHEN the search runs and explains itself
        let got = candidates(&orig, Some("x86_64"), ctx(&m, &p, &r, &c), None);
        let rejected = rejections(&orig, Some("x86_64"), ctx(&m, &p, &r, &c), None);
        // THEN each turned-down type has the first check it failed
        let reasons: BTreeMap<&str, &str> = rejected
            .iter()
            .map(|x| (x.instance_type.as_str(), x.reason.code()))
            .collect();
        let want: BTreeMap<&str, &str> = [
            ("c5.large", "TooLittleMemory"),
            ("m5.large", "PoolAtCap"),
            ("m5.unknown", "SpecUnknown"),
            ("m5.xlarge", "SpotAboveOnDemand"),
            ("m5a.large", "InDeniedTypes"),
            ("m6g.large", "NotInAllowedTypes"),
            ("m6i.large", "NotInAllowedTypes"),
            ("r5.large", "PoolInCooldown"),
            ("t3.large", "NotInAllowedTypes"),
        ]
        .into_iter()
        .collect();
        assert_eq!(reasons, want);
        // AND the allowed burstable t2 is the one candidate: turned down by nothing
        assert_eq!(types(&got), vec!["t2.large"]);
        // AND the avoided pool is named as such
        let avoid = Pool::new("t2.large", "us-east-1a");
        let rejected = rejections(&orig, Some("x86_64"), ctx(&m, &p, &r, &c), Some(&avoid));
        assert!(rejected
            .iter()
            .any(|x| x.instance_type == "t2.large" && x.reason == Rejection::AvoidedPool));
    }

    #[test]
    fn a_burstable_type_is_no_candidate_for_a_full_performance_original_by_default() {
        // GIVEN a t3.large as cheap as can be, compatible in every other way
        let mut m = market();
        m.types.insert(
            "t3.large".into(),
            InstanceTypeSpec {
                burstable: true,
                ..spec("t3.large", "x86_64", 2, 8)
            },
        );
        m.spot_prices.insert(Pool::new("t3.large", "us-east-1a"), 0.001);
        let (p, r, c) = (Policy::default(), GroupRecords::default(), PoolCounts::default());
        let orig = instance("i-1", "m5.large", "us-east-1a", Lifecycle::OnDemand);
        // THEN it is not offered, and the reason says why
        let got = candidates(&orig, Some("x86_64"), ctx(&m, &p, &r, &c), None);
        assert!(!types(&got).contains(&"t3.large"));
        let rejected = rejections(&orig, Some("x86_64"), ctx(&m, &p, &r, &c), None);
        assert!(rejected.contains(&Rejected {
            instance_type: "t3.large".into(),
            reason: Rejection::Incompatible(Incompatibility::BurstableNotAllowed),
        }));
    }

    #[test]
    fn rejection_codes_are_unique() {
        let codes: std::collections::BTreeSet<&str> = Rejection::EXCLUSIONS
            .iter()
            .map(|r| r.code())
            .chain(Incompatibility::ALL.iter().map(|i| i.code()))
            .collect();
        assert_eq!(
            codes.len(),
            Rejection::EXCLUSIONS.len() + Incompatibility::ALL.len()
        );
    }
}
