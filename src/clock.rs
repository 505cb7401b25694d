//! "Now": the system clock, or the fixed instant in `DOKKU_AUDIT_NOW` (tests and demos). Nothing
//! else in the crate reads the clock for event times.

use chrono::{DateTime, Utc};

use crate::timefmt;

/// A source of the current instant.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    fixed: Option<DateTime<Utc>>,
}

/// `DOKKU_AUDIT_NOW` is set but is not an RFC 3339 instant.
#[derive(Debug, thiserror::Error)]
#[error("DOKKU_AUDIT_NOW is not an RFC 3339 UTC instant: {0:?}")]
pub struct ClockError(pub String);

impl Clock {
    /// The system clock unless `DOKKU_AUDIT_NOW` is set (and non-empty).
    pub fn from_env() -> Result<Clock, ClockError> {
        match std::env::var("DOKKU_AUDIT_NOW") {
            Ok(s) if !s.is_empty() => chrono::DateTime::parse_from_rfc3339(&s)
                .map(|t| Clock::fixed(t.with_timezone(&Utc)))
                .map_err(|_| ClockError(s)),
            _ => Ok(Clock::system()),
        }
    }

    /// The system clock.
    pub fn system() -> Clock {
        Clock { fixed: None }
    }

    /// Always `t`.
    pub fn fixed(t: DateTime<Utc>) -> Clock {
        Clock { fixed: Some(t) }
    }

    /// The current instant.
    pub fn now(&self) -> DateTime<Utc> {
        self.fixed.unwrap_or_else(Utc::now)
    }

    /// The current instant as an event timestamp.
    pub fn now_ts(&self) -> String {
        timefmt::format_utc(self.now())
    }
}
