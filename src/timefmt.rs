//! Time text: the canonical event timestamp (`YYYY-MM-DDTHH:MM:SSZ`) and the time arguments the
//! commands accept (`--since`/`--until`: RFC 3339, a date, or a relative age such as `90m`).

use chrono::{DateTime, NaiveDate, SecondsFormat, TimeZone, Utc};

/// The canonical event timestamp length, `2026-04-08T20:00:00Z`.
pub const CANONICAL_LEN: usize = 20;

/// Formats an instant as an event timestamp (second precision, `Z`).
pub fn format_utc(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Formats nanoseconds since the Unix epoch (a spool file's name) as an event timestamp.
pub fn format_unix_ns(ns: u128) -> Option<String> {
    let secs = i64::try_from(ns / 1_000_000_000).ok()?;
    Some(format_utc(DateTime::from_timestamp(secs, 0)?))
}

/// True when `s` is exactly `YYYY-MM-DDTHH:MM:SSZ` and names a real instant. Lexicographic order
/// of canonical strings is chronological order, which the store and queries rely on.
pub fn is_canonical_utc(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != CANONICAL_LEN {
        return false;
    }
    let shape_ok = b.iter().enumerate().all(|(i, c)| match i {
        4 | 7 => *c == b'-',
        10 => *c == b'T',
        13 | 16 => *c == b':',
        19 => *c == b'Z',
        _ => c.is_ascii_digit(),
    });
    shape_ok && parse_canonical(s).is_some()
}

/// Parses a canonical event timestamp.
pub fn parse_canonical(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Why a time argument was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("invalid time {0:?}: use RFC 3339 (2026-04-08T20:00:00Z), a date (2026-04-08) or an age (90m, 36h, 7d)")]
pub struct TimeArgError(pub String);

/// Parses a `--since`/`--until` value relative to `now`: RFC 3339 with any offset, a date
/// (midnight UTC), or a relative age `<N>s|m|h|d|w` meaning `now - N`.
pub fn parse_time_arg(s: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, TimeArgError> {
    let err = || TimeArgError(s.to_string());
    let s_trim = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s_trim) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(s_trim, "%Y-%m-%d") {
        let midnight = d.and_hms_opt(0, 0, 0).ok_or_else(err)?;
        return Ok(Utc.from_utc_datetime(&midnight));
    }
    // The unit is the last character, not the last byte: `5é` must be an error, not a split
    // inside a UTF-8 sequence (found by the `query_parse` fuzz target).
    let unit_at = s_trim.char_indices().last().map_or(0, |(i, _)| i);
    let (digits, unit) = s_trim.split_at(unit_at);
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return Err(err());
    }
    let n: i64 = digits.parse().map_err(|_| err())?;
    let secs = match unit {
        "s" => Some(n),
        "m" => n.checked_mul(60),
        "h" => n.checked_mul(3600),
        "d" => n.checked_mul(86_400),
        "w" => n.checked_mul(7 * 86_400),
        _ => None,
    }
    .ok_or_else(err)?;
    let delta = chrono::Duration::try_seconds(secs).ok_or_else(err)?;
    now.checked_sub_signed(delta).ok_or_else(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        parse_canonical("2026-04-08T20:00:00Z").unwrap()
    }

    #[test]
    fn canonical_shape() {
        assert!(is_canonical_utc("2026-04-08T20:00:00Z"));
        for bad in [
            "2026-04-08T20:00:00",
            "2026-04-08T20:00:00+00:00",
            "2026-04-08T20:00:00.1Z",
            "2026-13-08T20:00:00Z",
            "2026-02-30T20:00:00Z",
            "",
        ] {
            assert!(!is_canonical_utc(bad), "{bad}");
        }
        assert_eq!(format_utc(now()), "2026-04-08T20:00:00Z");
    }

    #[test]
    fn time_arguments() {
        let p = |s| parse_time_arg(s, now()).map(format_utc);
        assert_eq!(
            p("2026-04-08T21:00:00+01:00").unwrap(),
            "2026-04-08T20:00:00Z"
        );
        assert_eq!(p("2026-04-01").unwrap(), "2026-04-01T00:00:00Z");
        assert_eq!(p("90m").unwrap(), "2026-04-08T18:30:00Z");
        assert_eq!(p("36h").unwrap(), "2026-04-07T08:00:00Z");
        assert_eq!(p("7d").unwrap(), "2026-04-01T20:00:00Z");
        assert_eq!(p("1w").unwrap(), "2026-04-01T20:00:00Z");
        for bad in [
            "",
            "d",
            "-3d",
            "3y",
            "yesterday",
            "2026-04-32",
            "99999999999999999999d",
            "5é",
            "é",
            "12\u{1F600}",
        ] {
            assert!(p(bad).is_err(), "{bad}");
        }
    }
}
