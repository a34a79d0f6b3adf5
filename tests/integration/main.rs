mod proxy;
mod rebalancer;
mod template_iam;
