//! A plain UTC timestamp, with RFC 3339 in and out.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Seconds since the Unix epoch, UTC. Plain data, so plans stay pure and testable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// From seconds since the epoch.
    pub const fn from_unix(secs: i64) -> Self {
        Self(secs)
    }

    /// Seconds since the epoch.
    pub const fn unix(self) -> i64 {
        self.0
    }

    /// Parse an RFC 3339 timestamp such as `2026-01-01T00:00:00Z`.
    pub fn parse_rfc3339(s: &str) -> Option<Self> {
        OffsetDateTime::parse(s.trim(), &Rfc3339)
            .ok()
            .map(|t| Self(t.unix_timestamp()))
    }

    /// Format as RFC 3339 in UTC, to the second.
    pub fn to_rfc3339(self) -> String {
        OffsetDateTime::from_unix_timestamp(self.0)
            .ok()
            .and_then(|t| t.format(&Rfc3339).ok())
            .unwrap_or_else(|| self.0.to_string())
    }

    /// This time plus `minutes`.
    pub const fn plus_minutes(self, minutes: i64) -> Self {
        Self(self.0 + minutes * 60)
    }

    /// This time plus `secs`.
    pub const fn plus_secs(self, secs: i64) -> Self {
        Self(self.0 + secs)
    }

    /// Seconds from `earlier` to `self` (negative if `earlier` is later).
    pub const fn secs_since(self, earlier: Timestamp) -> i64 {
        self.0 - earlier.0
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips() {
        // GIVEN AWS's sample event time
        let t = Timestamp::parse_rfc3339("2026-01-01T00:00:00Z").expect("parses");
        // THEN it is the right instant and formats back unchanged
        assert_eq!(t.unix(), 1_767_225_600);
        assert_eq!(t.to_rfc3339(), "2026-01-01T00:00:00Z");
        assert_eq!(t.plus_minutes(90).to_rfc3339(), "2026-01-01T01:30:00Z");
    }

    #[test]
    fn garbage_is_not_a_time() {
        assert_eq!(Timestamp::parse_rfc3339("yesterday"), None);
        assert_eq!(Timestamp::parse_rfc3339(""), None);
    }
}
