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
/// When new swaps may start: day and hour ranges in a named time zone (FIXED; grammar in
/// [`crate::window`]).
pub const SCHEDULE: &str = "spotswap:schedule";
/// No new swaps until this RFC 3339 time (FIXED). Written by `spotswap pause`.
pub const PAUSED_UNTIL: &str = "spotswap:paused-until";
/// `true`: members launched from another version of the group's launch template are replaced
/// gradually through the safe swap (FIXED).
pub const REPLACE_OUTDATED: &str = "spotswap:replace-outdated";
/// `bypass`: swap by attach even though attached instances skip launching lifecycle hooks.
pub const LAUNCH_HOOKS: &str = "spotswap:launch-hooks";
/// `true`: each Elastic IP of an instance the group loses moves to its replacement (FIXED).
pub const CARRY_EIP: &str = "spotswap:carry-eip";
/// A tag key on the group's data volumes (value: the group's name); those volumes move to the
/// replacement at the same device name (FIXED).
pub const CARRY_VOLUMES: &str = "spotswap:carry-volumes";
/// On Elastic IPs, written by spotswap: the `carry-eip` group the address was first seen
/// serving. A free address with this record is associated again with an instance of the group.
pub const CARRY_EIP_GROUP: &str = "spotswap:carry-eip-group";
/// On carried volumes, written by spotswap while attached: the device name (`/dev/sdf`) the
/// volume is attached at again once detached (DescribeVolumes forgets it on detach).
pub const CARRY_DEVICE: &str = "spotswap:carry-device";
/// `keep` (default) | `fill` | `strict`: how a group treats the account's Reserved Instances
/// and Savings Plans (FIXED).
pub const COMMITMENTS: &str = "spotswap:commitments";
/// On groups, set by users under `SPOTSWAP_COMPAT=autospotting`: `true` makes spotswap act on
/// the group even while AutoSpotting still does (no `AutoSpottingActive` hold).
pub const IGNORE_AUTOSPOTTING: &str = "spotswap:ignore-autospotting";

/// On instances we launch: the group they were launched for.
pub const GROUP: &str = "spotswap:group";
/// On instances we launch: the on-demand instance they replace.
pub const REPLACES: &str = "spotswap:replaces";
/// On instances we launch in a batch (one CreateFleet for several originals of one group): the
/// originals, space-separated, in the order the launches are paired with them (FIXED; at most
/// [`crate::batch::MAX_BATCH`]). A batch launch has no `spotswap:replaces` of its own until the
/// Attach stage writes it; until then its original is derived ([`crate::batch::pair`]).
pub const BATCH: &str = "spotswap:batch";
/// On instances we launch: the instance type of the on-demand instance the swap replaced (the
/// first one, through a chain of swaps): the savings are counted against its price.
pub const REPLACES_TYPE: &str = "spotswap:replaces-type";
/// On instances we launch: when (RFC 3339).
pub const LAUNCHED_AT: &str = "spotswap:launched-at";
/// On instances we launch: when we attached them to the group (RFC 3339).
/// The health-check grace period is counted from here.
pub const ATTACHED_AT: &str = "spotswap:attached-at";
/// On a swap's original: the launch about to be (or already) attached in its place, written
/// just before the attach. An interruption warning for the original reads it with the
/// instance itself: is its replacement already serving (`OriginalAlreadyReplaced`)?
pub const REPLACED_BY: &str = "spotswap:replaced-by";
/// On instances we detach on interruption (RFC 3339).
pub const DETACHED_AT: &str = "spotswap:detached-at";
/// On instances we detach on interruption: the group they left.
pub const DETACHED_FROM: &str = "spotswap:detached-from";

/// On launch templates spotswap makes from a launch configuration: the configuration's name
/// (FIXED).
pub const FROM_LAUNCH_CONFIGURATION: &str = "spotswap:from-launch-configuration";

/// On groups: the MaxSize before we raised it for an attach.
pub const MAX_RAISED_FROM: &str = "spotswap:max-raised-from";
/// On groups: the MaxSize we raised it to. MaxSize is restored only while it is still exactly
/// this: a different value is the owner's (a user, CloudFormation, Terraform), and is kept.
pub const MAX_RAISED_TO: &str = "spotswap:max-raised-to";
/// On groups: a mixed-instances group's own `OnDemandPercentageAboveBaseCapacity` while
/// spotswap holds it at 100 (sheltered: its launches go on-demand), as
/// `on-demand-percent=<n>`. Restored exactly when the shelter ends.
pub const DISTRIBUTION_RAISED_FROM: &str = "spotswap:distribution-raised-from";
/// On groups: no spot launches until this time (RFC 3339).
pub const SHELTERED_UNTIL: &str = "spotswap:sheltered-until";
/// On groups, prefix of one tag per pool: `spotswap:cooldown:<type>/<az>` = until (RFC 3339).
pub const COOLDOWN_PREFIX: &str = "spotswap:cooldown:";
/// On groups, prefix of one tag per pool that recently had no spot capacity:
/// `spotswap:no-capacity:<type>/<az>` = until (RFC 3339).
pub const NO_CAPACITY_PREFIX: &str = "spotswap:no-capacity:";
/// On groups: recent interruptions, `<instance-id>@<unix seconds>` separated by spaces; the
/// newest [`crate::records::MAX_INTERRUPTION_ENTRIES`] only (dedupe and lost-write detection).
pub const INTERRUPTIONS: &str = "spotswap:interruptions";
/// On groups: interruptions counted per 10-minute window over the last hour,
/// `<unix seconds / 600>:<count>` separated by spaces. Fits one tag value at any group size.
pub const INTERRUPTION_COUNTS: &str = "spotswap:interruption-counts";

/// Set by EC2 Auto Scaling on its members.
pub const AWS_ASG_NAME: &str = "aws:autoscaling:groupName";
/// Set by CloudFormation on resources of a stack.
pub const AWS_CFN_STACK_NAME: &str = "aws:cloudformation:stack-name";
/// The launch template an instance was launched from, set by EC2.
pub const AWS_LT_ID: &str = "aws:ec2launchtemplate:id";
/// The launch template version an instance was launched from, set by EC2.
pub const AWS_LT_VERSION: &str = "aws:ec2launchtemplate:version";

/// Keys an instance carries often enough to be held as one byte instead of a copy each
/// ([`InstanceTags`]); at most 31 (the codes are the control characters 1 to 31).
const INSTANCE_KEYS: [&str; 14] = [
    AWS_ASG_NAME,
    AWS_LT_ID,
    AWS_LT_VERSION,
    GROUP,
    REPLACES,
    REPLACES_TYPE,
    LAUNCHED_AT,
    ATTACHED_AT,
    REPLACED_BY,
    DETACHED_AT,
    DETACHED_FROM,
    crate::compat_mode::autospotting::LAUNCHED_BY,
    crate::compat_mode::autospotting::LAUNCHED_FOR,
    BATCH,
];

/// The one-character codes of [`INSTANCE_KEYS`], in the same order.
const KEY_CODES: [&str; 14] = [
    "\u{1}", "\u{2}", "\u{3}", "\u{4}", "\u{5}", "\u{6}", "\u{7}", "\u{8}", "\u{9}", "\u{a}", "\u{b}",
    "\u{c}", "\u{d}", "\u{e}",
];

/// Separates keys and values in [`InstanceTags`]: EC2 tag keys and values cannot hold it.
const SEP: char = '\0';

/// An instance's tags: a handful each (the adapter keeps only `spotswap:` keys, the group name
/// and the launch template's), packed into one allocation, `key\0value\0` per tag in key
/// order, with the schema's keys held as a one-byte code ([`INSTANCE_KEYS`]). A vector of
/// pairs cost 48 bytes a tag plus two allocations; this is the bytes of the values and about 2
/// a tag more, about 34 MB less at 100,000 instances (issue 22). Reads scan the few tags;
/// writes (the simulator, tests) rebuild it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct InstanceTags(Box<str>);

fn decode(k: &str) -> &str {
    match k.as_bytes() {
        [c] if (1..=INSTANCE_KEYS.len()).contains(&(*c as usize)) => INSTANCE_KEYS[*c as usize - 1],
        _ => k,
    }
}

fn encode(key: &str) -> &str {
    INSTANCE_KEYS
        .iter()
        .position(|k| *k == key)
        .map_or(key, |i| KEY_CODES[i])
}

impl InstanceTags {
    /// No tags.
    pub fn new() -> Self {
        Self::default()
    }

    /// Packs `kv`; of two values of one key, the later wins. A NUL in a key or value (which
    /// EC2 does not allow) is dropped.
    fn pack(mut kv: Vec<(String, String)>) -> Self {
        // Stable: of equal keys, the later stays after.
        kv.sort_by(|a, b| a.0.cmp(&b.0));
        let mut s = String::with_capacity(kv.iter().map(|(k, v)| encode(k).len() + v.len() + 2).sum());
        for (i, (k, v)) in kv.iter().enumerate() {
            if kv.get(i + 1).is_some_and(|next| next.0 == *k) {
                continue;
            }
            for part in [encode(k), v.as_str()] {
                if part.contains(SEP) {
                    s.extend(part.chars().filter(|c| *c != SEP));
                } else {
                    s.push_str(part);
                }
                s.push(SEP);
            }
        }
        Self(s.into_boxed_str())
    }

    fn owned(&self) -> Vec<(String, String)> {
        self.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// Whether `key` is set.
    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Set `key`, returning its previous value.
    pub fn insert(&mut self, key: String, value: String) -> Option<String> {
        let old = self.get(&key).map(str::to_string);
        let mut kv = self.owned();
        kv.push((key, value));
        *self = Self::pack(kv);
        old
    }

    /// Remove `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<String> {
        let old = self.get(key).map(str::to_string)?;
        let kv = self.owned().into_iter().filter(|(k, _)| k != key).collect();
        *self = Self::pack(kv);
        Some(old)
    }

    /// The tags, by key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        let mut parts = self.0.split(SEP);
        std::iter::from_fn(move || {
            let k = parts.next()?;
            let v = parts.next()?;
            Some((decode(k), v))
        })
    }

    /// The keys, in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.iter().map(|(k, _)| k)
    }

    /// How many tags.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// No tags at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for InstanceTags {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for InstanceTags {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Self::pack(iter.into_iter().map(|(k, v)| (k.into(), v.into())).collect())
    }
}

impl<K: Into<String>, V: Into<String>> Extend<(K, V)> for InstanceTags {
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        let mut kv = self.owned();
        kv.extend(iter.into_iter().map(|(k, v)| (k.into(), v.into())));
        *self = Self::pack(kv);
    }
}

impl std::ops::Index<&str> for InstanceTags {
    type Output = str;
    fn index(&self, key: &str) -> &str {
        self.get(key).unwrap_or_else(|| panic!("no tag {key:?}"))
    }
}

impl serde::Serialize for InstanceTags {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

impl<'de> serde::Deserialize<'de> for InstanceTags {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = std::collections::BTreeMap::<String, String>::deserialize(d)?;
        Ok(map.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_tags_behave_as_a_sorted_map() {
        let mut t: InstanceTags = [(REPLACES, "i-1"), (GROUP, "web"), ("spotswap:x", "1")]
            .into_iter()
            .collect();
        assert_eq!(t.keys().collect::<Vec<_>>(), [GROUP, REPLACES, "spotswap:x"]);
        assert_eq!(t.get(GROUP), Some("web"));
        assert_eq!(t.insert(GROUP.into(), "api".into()), Some("web".to_string()));
        assert_eq!(t.insert(ATTACHED_AT.into(), "now".into()), None);
        assert_eq!(
            t.keys().collect::<Vec<_>>(),
            [ATTACHED_AT, GROUP, REPLACES, "spotswap:x"]
        );
        assert_eq!(t.remove(REPLACES), Some("i-1".to_string()));
        assert!(!t.contains_key(REPLACES));
        assert_eq!(t.len(), 3);
        assert_eq!(&t[GROUP], "api");
    }

    #[test]
    fn instance_tags_hold_the_schema_keys_as_one_byte_and_copy_the_rest() {
        let t: InstanceTags = [(GROUP.to_string(), "web"), ("team".to_string(), "a")]
            .into_iter()
            .collect();
        // one byte for spotswap:group, four for team, the values' four, a separator each
        assert_eq!(t.0.len(), 1 + 4 + 4 + 4);
        assert_eq!(t.iter().collect::<Vec<_>>(), [(GROUP, "web"), ("team", "a")]);
        // every schema key has its own code, and a code decodes to its key
        for (k, c) in INSTANCE_KEYS.iter().zip(KEY_CODES) {
            assert_eq!((encode(k), decode(c)), (c, *k));
        }
        // a later value of one key wins, and a NUL (which EC2 does not allow) is dropped
        let t: InstanceTags = [(GROUP, "a"), (GROUP, "b\0c")].into_iter().collect();
        assert_eq!(t.get(GROUP), Some("bc"));
        assert_eq!(t.len(), 1);
        assert!(InstanceTags::new().is_empty() && InstanceTags::new().get(GROUP).is_none());
    }

    #[test]
    fn instance_tags_serialize_as_a_map() {
        let t: InstanceTags = [(GROUP, "web"), (AWS_ASG_NAME, "web")].into_iter().collect();
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(
            json,
            r#"{"aws:autoscaling:groupName":"web","spotswap:group":"web"}"#
        );
        let back: InstanceTags = serde_json::from_str(&json).unwrap();
        assert_eq!(back, t);
    }
}
