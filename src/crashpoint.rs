//! Crash points for the reliability tests: `DOKKU_AUDIT_CRASH_AT=<point>[:<n>]` makes the process
//! kill itself with `SIGKILL` the `n`-th time (default: the first) it reaches `<point>`.
//!
//! Random `kill -9`s from outside rarely land inside the short windows that matter (between
//! the two renames of a restore, between writing a compaction journal and acting on it), so the
//! crash tests (`tests/crash.rs`) aim at them by name. `SIGKILL` rather than `abort` or `exit`:
//! nothing runs afterwards — no destructors, no buffered writes, no lock release other than the
//! kernel's — exactly what an operator's `kill -9` or the OOM killer does.
//!
//! The variable is read once per process; with it unset, [`hit`] costs one load of an
//! initialised `OnceLock`. The points are listed in `tests/RELIABILITY.md`.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

/// The variable that arms a crash point.
pub const ENV: &str = "DOKKU_AUDIT_CRASH_AT";

struct Armed {
    point: String,
    nth: u32,
    seen: AtomicU32,
}

fn armed() -> Option<&'static Armed> {
    static ARMED: OnceLock<Option<Armed>> = OnceLock::new();
    ARMED
        .get_or_init(|| {
            let spec = std::env::var(ENV).ok()?;
            let (point, nth) = match spec.rsplit_once(':') {
                Some((p, n)) => (p.to_string(), n.parse().ok()?),
                None => (spec, 1),
            };
            Some(Armed {
                point,
                nth,
                seen: AtomicU32::new(0),
            })
        })
        .as_ref()
}

/// Whether reaching `point` now would crash (so a caller can do half of its work first, e.g.
/// write part of a line, before calling [`hit`]).
pub fn is_armed(point: &str) -> bool {
    armed().is_some_and(|a| a.point == point && a.seen.load(Ordering::SeqCst) + 1 == a.nth)
}

/// Kills the process if `point` is armed and this is the armed occurrence.
#[allow(unsafe_code)]
pub fn hit(point: &str) {
    let Some(a) = armed() else {
        return;
    };
    if a.point != point {
        return;
    }
    if a.seen.fetch_add(1, Ordering::SeqCst) + 1 == a.nth {
        // SAFETY: plain syscalls on our own pid; SIGKILL cannot be caught, so this never returns.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
        // SIGKILL is delivered before kill(2) returns to a single-threaded caller; with other
        // threads running it may take a moment, and nothing must happen meanwhile.
        loop {
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
    }
}
