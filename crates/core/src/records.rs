//! State we keep in group tags: pool cooldowns, no-capacity marks, shelter, recent interruptions.
//!
//! State lives in AWS, never in memory, so a fresh process (the next cycle, another Lambda)
//! sees what the last one decided. One tag per pool keeps concurrent writers from
//! overwriting each other's pools.

use std::collections::BTreeMap;

use crate::model::Pool;
use crate::tags;
use crate::time::Timestamp;

/// How long a pool that reported no spot capacity is avoided, like Karpenter's
/// insufficient-capacity cache.
pub const NO_CAPACITY_MINUTES: i64 = 5;

/// The records found on one group.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupRecords {
    /// Pool → cooldown end, after an interruption.
    pub cooldowns: BTreeMap<Pool, Timestamp>,
    /// Pool → end of the no-capacity mark.
    pub no_capacity: BTreeMap<Pool, Timestamp>,
    /// `spotswap:sheltered-until`.
    pub sheltered_until: Option<Timestamp>,
    /// Recent interruptions: instance id → when (the newest few).
    pub interruptions: BTreeMap<String, Timestamp>,
    /// Interruptions per 10-minute window (unix seconds / 600 → count).
    pub interruption_counts: BTreeMap<i64, u32>,
    /// Record tags whose value could not be read: cleared by the reaper.
    pub unreadable: Vec<String>,
}

/// Why a pool is not used now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolBlock {
    /// Cooling down after an interruption.
    Cooldown(Timestamp),
    /// Recently had no spot capacity.
    NoCapacity(Timestamp),
}

impl GroupRecords {
    /// Read the records from a group's tags.
    pub fn from_tags(group_tags: &BTreeMap<String, String>) -> Self {
        let mut out = Self::default();
        for (key, value) in group_tags {
            let pool_map = if let Some(rest) = key.strip_prefix(tags::COOLDOWN_PREFIX) {
                Some((rest, &mut out.cooldowns))
            } else if let Some(rest) = key.strip_prefix(tags::NO_CAPACITY_PREFIX) {
                Some((rest, &mut out.no_capacity))
            } else {
                None
            };
            if let Some((rest, map)) = pool_map {
                match (Pool::parse(rest), Timestamp::parse_rfc3339(value)) {
                    (Some(pool), Some(until)) => {
                        map.insert(pool, until);
                    }
                    _ => out.unreadable.push(key.clone()),
                }
            } else if key == tags::SHELTERED_UNTIL {
                match Timestamp::parse_rfc3339(value) {
                    Some(t) => out.sheltered_until = Some(t),
                    None => out.unreadable.push(key.clone()),
                }
            } else if key == tags::INTERRUPTIONS {
                out.interruptions = parse_interruptions(value);
            } else if key == tags::INTERRUPTION_COUNTS {
                match parse_counts(value) {
                    Some(c) => out.interruption_counts = c,
                    None => out.unreadable.push(key.clone()),
                }
            }
        }
        out
    }

    /// Whether `pool` is blocked at `now`, and until when.
    pub fn pool_block(&self, pool: &Pool, now: Timestamp) -> Option<PoolBlock> {
        if let Some(&until) = self.cooldowns.get(pool).filter(|&&u| u > now) {
            return Some(PoolBlock::Cooldown(until));
        }
        self.no_capacity
            .get(pool)
            .filter(|&&u| u > now)
            .map(|&u| PoolBlock::NoCapacity(u))
    }

    /// True while the group is sheltered on on-demand.
    pub fn sheltered(&self, now: Timestamp) -> bool {
        self.sheltered_until.is_some_and(|u| u > now)
    }

    /// Interruptions in the hour before `now`: the per-window counts, or the listed entries
    /// when they say more (a record written before the counts existed).
    pub fn interruptions_last_hour(&self, now: Timestamp) -> usize {
        let listed = self
            .interruptions
            .values()
            .filter(|&&t| now.secs_since(t) < 3600 && now.secs_since(t) >= -300)
            .count();
        let counted: u32 = self
            .interruption_counts
            .iter()
            .filter(|(w, _)| window_recent(**w, now))
            .map(|(_, n)| n)
            .sum();
        listed.max(counted as usize)
    }

    /// Record tags that have expired (or cannot be read) at `now`: what the reaper removes.
    pub fn expired_keys(&self, now: Timestamp) -> Vec<String> {
        let mut keys: Vec<String> = self
            .cooldowns
            .iter()
            .filter(|(_, &u)| u <= now)
            .map(|(p, _)| cooldown_key(p))
            .chain(
                self.no_capacity
                    .iter()
                    .filter(|(_, &u)| u <= now)
                    .map(|(p, _)| no_capacity_key(p)),
            )
            .collect();
        if self.sheltered_until.is_some_and(|u| u <= now) {
            keys.push(tags::SHELTERED_UNTIL.to_string());
        }
        if !self.interruptions.is_empty() && self.interruptions_last_hour(now) == 0 {
            keys.push(tags::INTERRUPTIONS.to_string());
        }
        if !self.interruption_counts.is_empty()
            && !self.interruption_counts.keys().any(|w| window_recent(*w, now))
        {
            keys.push(tags::INTERRUPTION_COUNTS.to_string());
        }
        keys.extend(self.unreadable.iter().cloned());
        keys
    }
}

/// The tag key of a pool's cooldown record.
pub fn cooldown_key(pool: &Pool) -> String {
    format!("{}{pool}", tags::COOLDOWN_PREFIX)
}

/// The tag key of a pool's no-capacity record.
pub fn no_capacity_key(pool: &Pool) -> String {
    format!("{}{pool}", tags::NO_CAPACITY_PREFIX)
}

/// The no-capacity records for `pools`, marked at `now`: each pool's [`no_capacity_key`] with
/// the end of the mark, `now` + [`NO_CAPACITY_MINUTES`], in RFC 3339.
pub fn no_capacity_tags(pools: &[Pool], now: Timestamp) -> Vec<(String, String)> {
    no_capacity_tags_until(pools, now.plus_minutes(NO_CAPACITY_MINUTES))
}

/// The no-capacity records for `pools`, until `until`.
pub fn no_capacity_tags_until(pools: &[Pool], until: Timestamp) -> Vec<(String, String)> {
    let until = until.to_rfc3339();
    pools
        .iter()
        .map(|p| (no_capacity_key(p), until.clone()))
        .collect()
}

/// Most interruption entries kept: a tag value holds at most 256 characters.
pub const MAX_INTERRUPTION_ENTRIES: usize = 8;

fn parse_interruptions(value: &str) -> BTreeMap<String, Timestamp> {
    value
        .split_whitespace()
        .filter_map(|entry| {
            let (id, secs) = entry.split_once('@')?;
            Some((id.to_string(), Timestamp::from_unix(secs.parse().ok()?)))
        })
        .collect()
}

/// The interruptions tag value after adding `instance` at `now`: entries older than an hour
/// are dropped, a duplicate instance keeps its first time, and the newest entries that fit
/// in a tag value are kept.
pub fn interruptions_with(existing: &BTreeMap<String, Timestamp>, instance: &str, now: Timestamp) -> String {
    let mut all: Vec<(String, Timestamp)> = existing
        .iter()
        .filter(|(_, &t)| now.secs_since(t) < 3600)
        .map(|(i, &t)| (i.clone(), t))
        .collect();
    if !all.iter().any(|(i, _)| i == instance) {
        all.push((instance.to_string(), now));
    }
    all.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    all.truncate(MAX_INTERRUPTION_ENTRIES);
    all.iter()
        .map(|(i, t)| format!("{i}@{}", t.unix()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Seconds in one interruption-count window.
pub const COUNT_WINDOW_SECS: i64 = 600;

/// The window `t` falls in.
fn window_of(t: Timestamp) -> i64 {
    t.unix().div_euclid(COUNT_WINDOW_SECS)
}

/// True when window `w` overlaps the hour before `now` (six windows, the current one included).
fn window_recent(w: i64, now: Timestamp) -> bool {
    let current = window_of(now);
    w <= current && w > current - 3600 / COUNT_WINDOW_SECS
}

fn parse_counts(value: &str) -> Option<BTreeMap<i64, u32>> {
    value
        .split_whitespace()
        .map(|e| {
            let (w, n) = e.split_once(':')?;
            Some((w.parse().ok()?, n.parse().ok()?))
        })
        .collect()
}

/// The `spotswap:interruption-counts` value after one more interruption at `now` (`added`
/// false for a duplicate delivery, which changes no count): windows older than an hour are
/// dropped, so the value stays a few dozen characters whatever the group's size.
pub fn interruption_counts_with(existing: &BTreeMap<i64, u32>, added: bool, now: Timestamp) -> String {
    let mut counts: BTreeMap<i64, u32> = existing
        .iter()
        .filter(|(w, _)| window_recent(**w, now))
        .map(|(w, n)| (*w, *n))
        .collect();
    if added {
        *counts.entry(window_of(now)).or_default() += 1;
    }
    counts
        .iter()
        .map(|(w, n)| format!("{w}:{n}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// True when `spotswap:interruptions` in `group_tags` lists `instance`, whatever its time: how
/// a writer checks, after a settle, that a concurrent writer did not drop its entry.
pub fn interruption_listed(group_tags: &BTreeMap<String, String>, instance: &str) -> bool {
    group_tags.get(tags::INTERRUPTIONS).is_some_and(|v| {
        v.split_whitespace()
            .any(|e| e.split('@').next() == Some(instance))
    })
}

/// The group tags `ActionKind::RecordInterruption` writes, in one CreateOrUpdateTags:
/// `spotswap:interruptions` = `interruptions`, `spotswap:interruption-counts` = `counts`, then the pool's [`cooldown_key`] when
/// `cooldown_until` is set, then `spotswap:sheltered-until` when `sheltered_until` is set; times
/// in RFC 3339.
pub fn record_interruption_tags(
    pool: &Pool,
    cooldown_until: Option<Timestamp>,
    interruptions: &str,
    counts: &str,
    sheltered_until: Option<Timestamp>,
) -> Vec<(String, String)> {
    let mut kv = vec![
        (tags::INTERRUPTIONS.to_string(), interruptions.to_string()),
        (tags::INTERRUPTION_COUNTS.to_string(), counts.to_string()),
    ];
    if let Some(until) = cooldown_until {
        kv.push((cooldown_key(pool), until.to_rfc3339()));
    }
    if let Some(until) = sheltered_until {
        kv.push((tags::SHELTERED_UNTIL.to_string(), until.to_rfc3339()));
    }
    kv
}

/// The record of a MaxSize raised from `from` to `to` (`spotswap:max-raised-from`,
/// `spotswap:max-raised-to`), written before the raise so a stop between the two calls never
/// leaves a raised MaxSize nobody knows about.
pub fn max_raised_tags(from: u32, to: u32) -> Vec<(String, String)> {
    vec![
        (tags::MAX_RAISED_FROM.to_string(), from.to_string()),
        (tags::MAX_RAISED_TO.to_string(), to.to_string()),
    ]
}

/// The tags the Attach stage writes just before `AttachInstances`, in one CreateTags on both
/// the swap's original and its `launch` (CreateTags writes the same tags on every resource it
/// names): `spotswap:replaced-by=<launch>` (what an interruption warning for the original reads)
/// and `spotswap:attached-at=<now>` (what the launch's grace period counts from). On the launch,
/// `replaced-by` names the launch itself, and is read as naming no replacement; on the original,
/// `attached-at` is not read.
///
/// A batch launch's pair (`anchor`: its original, derived until now, [`crate::batch`]) also
/// gets `spotswap:replaces=<original>`, so the pair stands whatever becomes of the batch's
/// other launches; on the original it names the original itself, which names nothing.
pub fn swap_tags(launch: &str, anchor: Option<&str>, now: Timestamp) -> Vec<(String, String)> {
    let mut kv = vec![
        (tags::REPLACED_BY.to_string(), launch.to_string()),
        (tags::ATTACHED_AT.to_string(), now.to_rfc3339()),
    ];
    if let Some(original) = anchor {
        kv.push((tags::REPLACES.to_string(), original.to_string()));
    }
    kv
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        Timestamp::parse_rfc3339(s).unwrap()
    }

    #[test]
    fn records_round_trip_through_tags() {
        // GIVEN a group with a live cooldown, an expired no-capacity mark and a bad record
        let pool = Pool::new("m5.large", "us-east-1a");
        let mut g = BTreeMap::new();
        g.insert(cooldown_key(&pool), "2026-01-01T01:00:00Z".to_string());
        g.insert(
            no_capacity_key(&Pool::new("c5.large", "us-east-1b")),
            "2026-01-01T00:00:00Z".to_string(),
        );
        g.insert(format!("{}junk", tags::COOLDOWN_PREFIX), "soon".to_string());
        g.insert(
            tags::SHELTERED_UNTIL.to_string(),
            "2026-01-01T00:30:00Z".to_string(),
        );
        let r = GroupRecords::from_tags(&g);
        let now = t("2026-01-01T00:10:00Z");
        // THEN the cooldown blocks its pool, the expired mark does not
        assert_eq!(
            r.pool_block(&pool, now),
            Some(PoolBlock::Cooldown(t("2026-01-01T01:00:00Z")))
        );
        assert_eq!(r.pool_block(&Pool::new("c5.large", "us-east-1b"), now), None);
        assert!(r.sheltered(now));
        // AND the reaper would clear the expired and the unreadable records, and nothing else
        assert_eq!(
            r.expired_keys(now),
            vec![
                "spotswap:no-capacity:c5.large/us-east-1b".to_string(),
                "spotswap:cooldown:junk".to_string()
            ]
        );
    }

    #[test]
    fn no_capacity_tags_mark_each_pool_for_five_minutes() {
        // GIVEN two pools with no capacity at noon
        let now = t("2026-01-01T12:00:00Z");
        let pools = [
            Pool::new("m5.large", "us-east-1a"),
            Pool::new("m6i.large", "us-east-1a"),
        ];
        // WHEN their records are written
        let kv = no_capacity_tags(&pools, now);
        // THEN each pool's key holds the end of the mark
        assert_eq!(
            kv,
            vec![
                (
                    "spotswap:no-capacity:m5.large/us-east-1a".to_string(),
                    "2026-01-01T12:05:00Z".to_string()
                ),
                (
                    "spotswap:no-capacity:m6i.large/us-east-1a".to_string(),
                    "2026-01-01T12:05:00Z".to_string()
                ),
            ]
        );
        // AND the records read back block the pools until then
        let r = GroupRecords::from_tags(&kv.into_iter().collect());
        assert_eq!(
            r.pool_block(&pools[1], now),
            Some(PoolBlock::NoCapacity(t("2026-01-01T12:05:00Z")))
        );
        assert_eq!(r.pool_block(&pools[1], now.plus_minutes(5)), None);
    }

    #[test]
    fn interruption_list_dedupes_and_ages_out() {
        // GIVEN one interruption 2 hours ago and one 10 minutes ago
        let now = t("2026-01-01T02:00:00Z");
        let mut existing = BTreeMap::new();
        existing.insert("i-old".to_string(), now.plus_minutes(-120));
        existing.insert("i-a".to_string(), now.plus_minutes(-10));
        // WHEN i-b is added, and i-a is delivered again
        let v = interruptions_with(&existing, "i-b", now);
        let again = interruptions_with(&parse_interruptions(&v), "i-a", now);
        // THEN the old entry is gone and the duplicate is not counted twice
        assert_eq!(v, again);
        let parsed = parse_interruptions(&again);
        assert_eq!(parsed.len(), 2);
        assert!(!parsed.contains_key("i-old"));
        assert!(v.len() <= 256);
    }

    #[test]
    fn an_interruption_is_listed_by_its_instance_id_alone() {
        // GIVEN an interruption list with two entries, one of them with an unreadable time
        let mut g = BTreeMap::new();
        g.insert(
            tags::INTERRUPTIONS.to_string(),
            "i-aaa@1767225600 i-bbb@soon".to_string(),
        );
        // THEN both are listed, a prefix of an id is not, nor is anything without the tag
        assert!(interruption_listed(&g, "i-aaa"));
        assert!(interruption_listed(&g, "i-bbb"));
        assert!(!interruption_listed(&g, "i-a"));
        assert!(!interruption_listed(&BTreeMap::new(), "i-aaa"));
    }

    #[test]
    fn an_interruption_record_writes_the_list_then_the_cooldown_then_the_shelter() {
        let pool = Pool::new("m5.large", "us-east-1a");
        let cooldown = t("2026-01-01T01:00:00Z");
        let shelter = t("2026-01-01T02:00:00Z");
        // GIVEN a record with both times set
        let kv = record_interruption_tags(
            &pool,
            Some(cooldown),
            "i-aaa@1767225600",
            "2945376:1",
            Some(shelter),
        );
        // THEN all four tags are written, in that order
        assert_eq!(
            kv,
            vec![
                (tags::INTERRUPTIONS.to_string(), "i-aaa@1767225600".to_string()),
                (tags::INTERRUPTION_COUNTS.to_string(), "2945376:1".to_string()),
                (
                    "spotswap:cooldown:m5.large/us-east-1a".to_string(),
                    "2026-01-01T01:00:00Z".to_string()
                ),
                (
                    tags::SHELTERED_UNTIL.to_string(),
                    "2026-01-01T02:00:00Z".to_string()
                ),
            ]
        );
        // AND with neither time, only the list and the counts
        assert_eq!(
            record_interruption_tags(&pool, None, "i-aaa@1", "0:1", None),
            vec![
                (tags::INTERRUPTIONS.to_string(), "i-aaa@1".to_string()),
                (tags::INTERRUPTION_COUNTS.to_string(), "0:1".to_string())
            ]
        );
        // AND what it writes reads back as the same records
        let r = GroupRecords::from_tags(&kv.into_iter().collect());
        assert_eq!(r.cooldowns.get(&pool), Some(&cooldown));
        assert_eq!(r.sheltered_until, Some(shelter));
    }

    #[test]
    fn counts_per_window_age_out_and_a_duplicate_adds_nothing() {
        let now = t("2026-01-01T02:00:00Z");
        // GIVEN counts in a window 70 minutes ago and one 10 minutes ago
        let old = (now.unix() - 70 * 60).div_euclid(COUNT_WINDOW_SECS);
        let recent = (now.unix() - 10 * 60).div_euclid(COUNT_WINDOW_SECS);
        let existing = BTreeMap::from([(old, 5), (recent, 3)]);
        // WHEN one more interruption is counted, and a duplicate delivery is not
        let v = interruption_counts_with(&existing, true, now);
        let dup = interruption_counts_with(&parse_counts(&v).unwrap(), false, now);
        // THEN the old window is gone, the new one holds 1, and the duplicate changed nothing
        assert_eq!(v, dup);
        let parsed = parse_counts(&v).unwrap();
        assert!(!parsed.contains_key(&old));
        assert_eq!(parsed.values().sum::<u32>(), 4);
        let mut tags_ = BTreeMap::new();
        tags_.insert(tags::INTERRUPTION_COUNTS.to_string(), v);
        assert_eq!(GroupRecords::from_tags(&tags_).interruptions_last_hour(now), 4);
        // AND an unreadable value is left to the reaper
        tags_.insert(tags::INTERRUPTION_COUNTS.to_string(), "x:y".into());
        assert_eq!(
            GroupRecords::from_tags(&tags_).unreadable,
            vec![tags::INTERRUPTION_COUNTS.to_string()]
        );
    }

    #[test]
    fn the_max_raised_record_holds_the_original_max_and_the_raise() {
        let kv = max_raised_tags(3, 5);
        assert_eq!(
            kv,
            vec![
                ("spotswap:max-raised-from".to_string(), "3".to_string()),
                ("spotswap:max-raised-to".to_string(), "5".to_string())
            ]
        );
    }
}
