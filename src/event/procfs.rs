//! The few `/proc` reads attribution needs: a process's parent, real uid, name and argv, and
//! whether it still exists. Never `ps`.
//!
//! `DOKKU_AUDIT_PROC_ROOT` (test-only) points these reads at a fake tree of `<pid>/status` and
//! `<pid>/cmdline` files (tests/replay.rs builds one from the real-Dokku traces); unset, the
//! root is `/proc` and behaviour is unchanged. The override changes only what the hook
//! *believes* about processes, never where it writes; anyone who can set a hook's environment
//! can already set `SUDO_USER`/`NAME` directly.

use std::path::PathBuf;

/// `/proc`, or the test override.
pub fn root() -> PathBuf {
    std::env::var_os("DOKKU_AUDIT_PROC_ROOT")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/proc"))
}

/// One process, as far as attribution cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proc {
    /// Its pid.
    pub pid: u32,
    /// Its parent's pid (0 when unknown).
    pub ppid: u32,
    /// Its real uid: for a `sudo` process, the uid of whoever ran sudo.
    pub uid: u32,
    /// `Name:` of the status file (the command, at most 15 bytes).
    pub name: String,
    /// Its argv (NUL-separated in `/proc/<pid>/cmdline`).
    pub argv: Vec<String>,
}

impl Proc {
    /// Whether this process is `sudo` (by name, or `argv[0]`'s base name).
    pub fn is_sudo(&self) -> bool {
        self.name == "sudo"
            || self
                .argv
                .first()
                .is_some_and(|a| a.rsplit('/').next() == Some("sudo"))
    }
}

/// Reads one process; `None` when it does not exist or cannot be read.
pub fn read(pid: u32) -> Option<Proc> {
    let dir = root().join(pid.to_string());
    let status = std::fs::read_to_string(dir.join("status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
    };
    let ppid = field("PPid:").and_then(|v| v.parse().ok()).unwrap_or(0);
    let uid = field("Uid:")?.split_whitespace().next()?.parse().ok()?;
    let name = field("Name:").unwrap_or("").to_string();
    let argv = std::fs::read(dir.join("cmdline"))
        .map(|b| {
            b.split(|c| *c == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let mut argv = argv;
    while argv.last().is_some_and(String::is_empty) {
        argv.pop();
    }
    Some(Proc {
        pid,
        ppid,
        uid,
        name,
        argv,
    })
}

/// Whether a process with this pid exists. A pid that is not a positive number does not.
pub fn alive(pid: &str) -> bool {
    pid.parse::<u32>()
        .is_ok_and(|p| p > 0 && root().join(p.to_string()).exists())
}

/// The process and its ancestors, at most `max` of them, stopping at pid 1.
pub fn chain(from: u32, max: usize) -> Vec<Proc> {
    let mut out = Vec::new();
    let mut pid = from;
    while pid > 1 && out.len() < max {
        let Some(p) = read(pid) else { break };
        pid = p.ppid;
        out.push(p);
    }
    out
}

/// `/etc/passwd`, or the test override `DOKKU_AUDIT_PASSWD`.
pub fn passwd_path() -> PathBuf {
    std::env::var_os("DOKKU_AUDIT_PASSWD")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/etc/passwd"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_our_own_process() {
        let me = read(std::process::id()).expect("own /proc entry");
        assert_eq!(me.pid, std::process::id());
        assert!(me.ppid > 0);
        assert!(!me.argv.is_empty());
        assert!(alive(&std::process::id().to_string()));
        assert!(!alive("0"));
        assert!(!alive("x"));
        assert!(!chain(std::process::id(), 16).is_empty());
    }
}
