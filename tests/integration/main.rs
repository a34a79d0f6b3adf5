mod chaos;
mod crash;
mod events_out;
mod interruption;
mod proxy;
mod reaper;
mod rebalancer;
mod template_iam;
