//! Tag keys: the FIXED names of DESIGN.md §3, in one place.

/// The prefix of every spotswap tag key.
pub const PREFIX: &str = "spotswap:";
/// Group opt-in (`true`) or, in opt-out mode, opt-out (`false`).
pub const ENABLED: &str = "spotswap:enabled";
/// On-demand instances kept first.
pub const ON_DEMAND_BASE: &str = "spotswap:on-demand-base";
/// Percent of capacity above the base kept on-demand.
pub const ON_DEMAND_PERCENT: &str = "spotswap:on-demand-percent";
/// Comma-separated globs of allowed instance types.
pub const ALLOWED_TYPES: &str = "spotswap:allowed-types";
/// Comma-separated globs of denied instance types.
pub const DENIED_TYPES: &str = "spotswap:denied-types";
/// Most spot instances of the group in one pool, in percent.
pub const MAX_POOL_PERCENT: &str = "spotswap:max-pool-percent";
/// Most swaps started per cycle.
pub const REPLACE_PER_CYCLE: &str = "spotswap:replace-per-cycle";
/// `replace` or `ignore` on a rebalance recommendation.
pub const ON_REBALANCE: &str = "spotswap:on-rebalance";
/// Minutes a pool is avoided after an interruption.
pub const COOLDOWN_MINUTES: &str = "spotswap:cooldown-minutes";
/// Interruption rate (percent of spot count) that shelters the group.
pub const SHELTER_PERCENT: &str = "spotswap:shelter-percent";

/// On instances we launch: the group they were launched for.
pub const GROUP: &str = "spotswap:group";
/// On instances we launch: the on-demand instance they replace.
pub const REPLACES: &str = "spotswap:replaces";
/// On instances we launch: when (RFC 3339).
pub const LAUNCHED_AT: &str = "spotswap:launched-at";
/// On instances we launch: when we attached them to the group (RFC 3339).
/// The health-check grace period is counted from here.
pub const ATTACHED_AT: &str = "spotswap:attached-at";
/// On instances we detach on interruption (RFC 3339).
pub const DETACHED_AT: &str = "spotswap:detached-at";
/// On instances we detach on interruption: the group they left.
pub const DETACHED_FROM: &str = "spotswap:detached-from";

/// On groups: the MaxSize before we raised it for an attach.
pub const MAX_RAISED_FROM: &str = "spotswap:max-raised-from";
/// On groups: no spot launches until this time (RFC 3339).
pub const SHELTERED_UNTIL: &str = "spotswap:sheltered-until";
/// On groups, prefix of one tag per pool: `spotswap:cooldown:<type>/<az>` = until (RFC 3339).
pub const COOLDOWN_PREFIX: &str = "spotswap:cooldown:";
/// On groups, prefix of one tag per pool that recently had no spot capacity:
/// `spotswap:no-capacity:<type>/<az>` = until (RFC 3339).
pub const NO_CAPACITY_PREFIX: &str = "spotswap:no-capacity:";
/// On groups: recent interruptions, `<instance-id>@<unix seconds>` separated by spaces.
pub const INTERRUPTIONS: &str = "spotswap:interruptions";

/// Set by EC2 Auto Scaling on its members.
pub const AWS_ASG_NAME: &str = "aws:autoscaling:groupName";
/// Set by CloudFormation on resources of a stack.
pub const AWS_CFN_STACK_NAME: &str = "aws:cloudformation:stack-name";
