//! CreateFleet `instant` in the fake region: launches, capacity, quota and client tokens.

use spotswap_core::{Instance, InstanceState, Lifecycle, Pool};

use super::FakeRegion;
use crate::port::{FleetAnswer, FleetAnswerError, FleetRequest};

impl FakeRegion {
    /// CreateFleet, as the module documentation says.
    pub(super) fn create_fleet(&mut self, req: &FleetRequest) -> FleetAnswer {
        if let Some(ids) = self.fleet_tokens.get(&req.client_token) {
            let launched = ids
                .iter()
                .map(|id| {
                    (
                        id.clone(),
                        self.instances.get(id).map(|i| i.instance_type.clone()),
                    )
                })
                .collect();
            return FleetAnswer {
                launched,
                errors: Vec::new(),
            };
        }
        let error = |code: &str, ty: &str| FleetAnswerError {
            code: Some(code.to_string()),
            message: format!("{code} for {ty}"),
            instance_type: Some(ty.to_string()),
        };
        if self.spot_quota_reached {
            return FleetAnswer {
                launched: Vec::new(),
                errors: req
                    .overrides
                    .iter()
                    .map(|(ty, _)| error("MaxSpotInstanceCountExceeded", ty))
                    .collect(),
            };
        }
        // The subnet's AZ: `subnet-<az>`, as the core's testkit names them.
        let az_of = |subnet: &str| subnet.strip_prefix("subnet-").unwrap_or(subnet).to_string();
        let mut errors = Vec::new();
        for (ty, subnet) in &req.overrides {
            let pool = Pool::new(ty, az_of(subnet));
            if self.no_capacity.contains(&pool) {
                errors.push(error("InsufficientInstanceCapacity", ty));
                continue;
            }
            let asked = req.count.max(1) as usize;
            let n = self.fleet_fill.map_or(asked, |fill| fill.min(asked));
            if n < asked {
                errors.push(error("InsufficientInstanceCapacity", ty));
            }
            let mut launched = Vec::new();
            for _ in 0..n {
                self.launched += 1;
                let id = format!("i-fa6e{:013x}", self.launched);
                let inst = Instance {
                    id: id.clone(),
                    instance_type: ty.clone(),
                    az: pool.az.clone(),
                    subnet_id: Some(subnet.clone()),
                    lifecycle: match req.purchase {
                        spotswap_core::Purchase::Spot => Lifecycle::Spot,
                        spotswap_core::Purchase::OnDemand => Lifecycle::OnDemand,
                    },
                    state: InstanceState::Running,
                    launch_time: self.clock,
                    status_ok: None,
                    termination_protected: None,
                    tags: req.tags.iter().cloned().collect(),
                    architecture: self
                        .market
                        .types
                        .get(ty)
                        .and_then(|t| t.architectures.first().cloned()),
                    image: Default::default(),
                    billing: Default::default(),
                };
                self.instances.insert(id.clone(), inst);
                launched.push((id, Some(ty.clone())));
            }
            if launched.is_empty() {
                continue;
            }
            let ids = launched.iter().map(|(id, _)| id.clone()).collect();
            self.fleet_tokens.insert(req.client_token.clone(), ids);
            return FleetAnswer { launched, errors };
        }
        FleetAnswer {
            launched: Vec::new(),
            errors,
        }
    }
}
