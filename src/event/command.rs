//! One `dokku` command in flight, keyed by its `DOKKU_PID` (Dokku exports it, unchanged, to every
//! trigger of the command, nested `dokku` calls included): its actor and correlation id, so that
//! every event the command causes — side effects included — carries the same two; and whether it
//! has had any recorded effect yet, so that a command that ends without one (refused, failed
//! before any trigger) is still recorded (docs/capture.md, "One command, one actor, one
//! correlation").

use serde::{Deserialize, Serialize};

use super::correlate::StoredActor;

/// A `dokku` command seen by at least one trigger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DokkuCommand {
    /// `dokku-<DOKKU_PID>-<first sighting, epoch seconds>`.
    pub correlation_id: String,
    /// Who ran it.
    pub actor: StoredActor,
    /// The subcommand (`user-auth`'s, else `DOKKU_COMMAND`).
    pub subcommand: String,
    /// The app, when `user-auth` named one.
    #[serde(default)]
    pub app: Option<String>,
    /// The redacted command line, when `user-auth` saw it and recorded no event of its own
    /// (an event is then owed if the command ends without effect).
    #[serde(default)]
    pub command_text: Option<String>,
    /// The redacted arguments (with `command_text`).
    #[serde(default)]
    pub args: Vec<String>,
    /// First sighting (epoch seconds).
    pub started: i64,
    /// Its start time in clock ticks after boot (`/proc/<pid>/stat` field 22), when readable:
    /// a reused `DOKKU_PID` is a different command.
    #[serde(default)]
    pub start_ticks: Option<u64>,
    /// Its process was visible when first seen: only then does a missing `/proc/<pid>` mean it
    /// has exited (under `hidepid`, or for a made-up pid, it is never declared ended).
    #[serde(default)]
    pub seen_alive: bool,
    /// Events recorded for it so far.
    #[serde(default)]
    pub effects: u32,
}

/// The correlation id of the command with this `DOKKU_PID` first seen at `started`.
pub fn correlation_id(pid: &str, started: i64) -> String {
    format!("dokku-{pid}-{started}")
}

/// `/proc/<pid>/stat` field 22 (start time), if readable.
pub fn start_ticks(pid: &str) -> Option<u64> {
    let text = std::fs::read_to_string(super::procfs::root().join(pid).join("stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_start_time_is_readable() {
        let me = std::process::id().to_string();
        assert!(start_ticks(&me).is_some());
        assert_eq!(start_ticks(&me), start_ticks(&me));
        assert_eq!(correlation_id("42", 7), "dokku-42-7");
    }
}
