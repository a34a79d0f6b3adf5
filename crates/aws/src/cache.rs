//! Instance-type specs, on-demand prices and the account's commitments, cached per warm
//! container.
//!
//! Specs come live from DescribeInstanceTypes (never compiled in) and change rarely;
//! on-demand prices change a few times a year. Both are kept for hours, so a warm Lambda pays
//! for them once.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use spotswap_core::{InstanceTypeSpec, PriceSource};
use tokio::sync::Mutex;

/// How long specs are kept.
pub(crate) const SPECS_TTL: Duration = Duration::from_secs(6 * 3600);
/// How long prices from the Price List API are kept.
pub(crate) const PRICES_TTL: Duration = Duration::from_secs(24 * 3600);
/// How long Reserved Instances and Savings Plans are kept: purchases and expiries are rare, and
/// the core ignores a commitment past its end whatever the cache holds.
pub(crate) const COMMITMENTS_TTL: Duration = Duration::from_secs(3600);
/// How long to wait before asking an unreachable Price List API again.
pub(crate) const PRICES_RETRY: Duration = Duration::from_secs(15 * 60);

#[derive(Debug)]
pub(crate) struct Cached<T> {
    pub(crate) at: Instant,
    pub(crate) value: T,
}

impl<T> Cached<T> {
    pub(crate) fn fresh(&self, ttl: Duration) -> bool {
        self.at.elapsed() < ttl
    }
}

/// On-demand prices and where they came from.
#[derive(Debug, Clone)]
pub(crate) struct Prices {
    pub(crate) by_type: BTreeMap<String, f64>,
    pub(crate) source: PriceSource,
}

/// One cached value, shared by clones.
pub(crate) type Slot<T> = Arc<Mutex<Option<Cached<T>>>>;

/// The warm-container cache. Cheap to clone; clones share it.
#[derive(Debug, Clone, Default)]
pub struct MarketCache {
    pub(crate) specs: Slot<BTreeMap<String, InstanceTypeSpec>>,
    pub(crate) prices: Slot<Prices>,
    pub(crate) commitments: Slot<spotswap_core::commitments::Commitments>,
    /// The types EC2 resolved per attribute-based requirements (by the question asked),
    /// kept as long as specs.
    pub(crate) requirement_types: Arc<Mutex<BTreeMap<String, Cached<BTreeSet<String>>>>>,
}

impl MarketCache {
    /// A cache sharing this one's instance-type specs, with on-demand prices (they depend on
    /// the price file, which may differ), commitments (another account's) and the types of
    /// attribute-based requirements (another account's offerings) of its own.
    pub fn sharing_specs(&self) -> Self {
        Self {
            specs: self.specs.clone(),
            prices: Slot::default(),
            commitments: Slot::default(),
            requirement_types: Default::default(),
        }
    }
}
