//! Commitments in the simulated bill, charged as AWS charges them: an RI's fee and a Savings
//! Plan's commitment are paid every hour whether anything runs under them or not; on-demand
//! usage they cover costs nothing more; what they leave uncovered pays the on-demand price.
//!
//! Which usage they cover is the core's own `commitments::cover` (EC2's billing order: zonal
//! RIs, regional RIs size-flexible, then Savings Plans at their rates), over every alive
//! on-demand instance of the simulated region. An instance covered in part (size flexibility,
//! a plan's commitment running out) pays on-demand for the part left, to the quarter-unit.

use std::collections::BTreeMap;

use spotswap_core::commitments::{cover, dollars, micros, Normalizer, Usage, DEFAULT_TENANCY, LINUX_UNIX};
use spotswap_core::Lifecycle;

use crate::scenario::{CommitmentsSpec, Scenario};
use crate::world::World;

/// One step's on-demand bill under the commitments, USD per hour.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bill {
    /// The commitments' fees plus the on-demand usage they leave uncovered.
    pub on_demand: f64,
    /// The part of the fees that covered nothing: RI units and plan commitment unused.
    pub unused: f64,
}

/// The scenario's commitments, ready to bill each step.
#[derive(Debug, Clone)]
pub struct Billing {
    spec: CommitmentsSpec,
    norm: Normalizer,
    on_demand_micros: BTreeMap<String, u64>,
    fees: f64,
}

impl Billing {
    /// `None` when the scenario has no commitments: on-demand is billed per instance.
    pub fn new(scenario: &Scenario) -> Option<Self> {
        let spec = &scenario.commitments;
        if spec.commitments.is_empty() {
            return None;
        }
        let norm = Normalizer::new(
            scenario
                .pools
                .iter()
                .map(|p| p.pool.instance_type.as_str())
                .chain(spec.commitments.reserved.iter().map(|r| r.instance_type.as_str())),
        );
        let on_demand_micros = scenario
            .pools
            .iter()
            .filter_map(|p| Some((p.pool.instance_type.clone(), micros(p.on_demand_price)?)))
            .collect();
        Some(Self {
            fees: spec.fees_per_hour(),
            spec: spec.clone(),
            norm,
            on_demand_micros,
        })
    }

    /// The on-demand bill of the world as it runs now.
    pub fn bill(&self, world: &World) -> Bill {
        let on_demand: Vec<_> = world
            .instances
            .values()
            .filter(|i| i.alive && i.lifecycle == Lifecycle::OnDemand)
            .collect();
        let usage: Vec<Usage> = on_demand
            .iter()
            .map(|i| {
                let pool = &world.pools[i.pool].spec.pool;
                Usage {
                    instance_id: i.id.clone(),
                    instance_type: pool.instance_type.clone(),
                    az: pool.az.clone(),
                    platform: LINUX_UNIX.into(),
                    tenancy: DEFAULT_TENANCY.into(),
                }
            })
            .collect();
        let c = cover(
            &self.spec.commitments,
            &usage,
            &self.on_demand_micros,
            &self.norm,
            world.timestamp(),
        );
        let mut bill = Bill {
            on_demand: self.fees,
            unused: 0.0,
        };
        for i in on_demand {
            let price = world.pools[i.pool].spec.on_demand_price;
            bill.on_demand += match c.instances.get(&i.id) {
                Some(ic) => price * ic.uncovered as f64 / ic.size.max(1) as f64,
                None => price,
            };
        }
        for r in c.reserved.iter().filter(|r| r.owned_units > 0) {
            let fee = self.spec.reserved_fees.get(&r.id).copied().unwrap_or(0.0);
            bill.unused += fee * (r.owned_units - r.used_units) as f64 / r.owned_units as f64;
        }
        bill.unused += dollars(c.unused_micros());
        bill
    }
}
