//! Test harness for spotswap: moto fleets, the fault and market proxy.

pub mod fleet;
pub mod lambda;
pub mod proxy;
