//! Durations on the command line (`--for 2h`, `--since 24h`), in jiff's friendly format:
//! `2h`, `90m`, `1h30m`, `3 days`.

use spotswap_core::Timestamp;

/// A positive duration of at most 366 days, in whole seconds rounded up. `flag` names the
/// option in the error.
pub(crate) fn parse(value: &str, flag: &str) -> Result<i64, String> {
    let bad = |why: &str| format!("{flag} {value:?}: {why}");
    let d: jiff::SignedDuration = value
        .parse()
        .or_else(|_| {
            value.parse::<jiff::Span>().map_err(|_| ()).and_then(|s| {
                s.to_duration(jiff::SpanRelativeTo::days_are_24_hours())
                    .map_err(|_| ())
            })
        })
        .map_err(|_| bad("expected a duration such as 2h, 90m or 1h30m"))?;
    if d <= jiff::SignedDuration::ZERO || d > jiff::SignedDuration::from_hours(366 * 24) {
        return Err(bad("expected more than zero and at most 366 days"));
    }
    Ok(d.as_secs() + i64::from(d.subsec_nanos() > 0))
}

/// `now - DURATION`.
pub(crate) fn ago(value: &str, flag: &str, now: Timestamp) -> Result<Timestamp, String> {
    Ok(Timestamp::from_unix(now.unix() - parse(value, flag)?))
}
