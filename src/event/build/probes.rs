//! What a trigger may need that costs a file read, probed at most once and only when needed.

use std::cell::OnceCell;

use crate::event::actor::LocalIdentity;
use crate::hook::HookEnv;

/// Things a trigger may need that cost a file read: probed at most once, only when needed.
#[derive(Default)]
pub struct Probes {
    local: OnceCell<LocalIdentity>,
    hostname: OnceCell<String>,
    dokku_version: OnceCell<Option<String>>,
}

impl Probes {
    pub(super) fn local(&self) -> &LocalIdentity {
        self.local.get_or_init(LocalIdentity::probe)
    }

    /// Whether the `dokku` command with this `DOKKU_PID` is still running (`/proc/<pid>`).
    /// A PID that is not a number counts as gone. A reused PID only keeps a stale pending
    /// deploy until it expires; it never lends it to another operation.
    pub(super) fn process_alive(&self, pid: &str) -> bool {
        pid.parse::<u32>()
            .is_ok_and(|p| p > 0 && std::path::Path::new(&format!("/proc/{p}")).exists())
    }

    pub(super) fn hostname(&self) -> &str {
        self.hostname.get_or_init(|| {
            std::env::var("DOKKU_AUDIT_HOSTNAME")
                .ok()
                .filter(|h| !h.is_empty())
                .or_else(|| {
                    std::fs::read_to_string("/proc/sys/kernel/hostname")
                        .ok()
                        .map(|h| h.trim().to_string())
                })
                .unwrap_or_default()
        })
    }

    /// `DOKKU_AUDIT_DOKKU_VERSION`, else Dokku's version file; never a nested `dokku` call.
    pub(super) fn dokku_version(&self, env: &HookEnv) -> Option<&str> {
        self.dokku_version
            .get_or_init(|| {
                let valid = |v: &str| {
                    let mut parts = v.split('.');
                    (0..3).all(|_| {
                        parts
                            .next()
                            .is_some_and(|p| p.chars().take_while(char::is_ascii_digit).count() > 0)
                    })
                };
                if let Ok(v) = std::env::var("DOKKU_AUDIT_DOKKU_VERSION") {
                    return Some(v).filter(|v| !v.is_empty());
                }
                [
                    format!("{}/STABLE_VERSION", env.dokku_lib_root),
                    format!("{}/VERSION", env.dokku_root),
                ]
                .iter()
                .filter_map(|p| std::fs::read_to_string(p).ok())
                .map(|t| {
                    let first = t.lines().next().unwrap_or("").trim();
                    first
                        .rsplit(' ')
                        .next()
                        .unwrap_or("")
                        .trim_start_matches('v')
                        .to_string()
                })
                .find(|v| valid(v))
            })
            .as_deref()
    }
}
