//! Who touches the data directory.
//!
//! Dokku runs some triggers as root and operators run `dokku audit:*` as root, while the data
//! directory is writable by group `dokku`. A root process working in a directory that others can
//! write can be steered by names they plant (a symlink where `LOCK` was, a file under a
//! temporary name it is about to use). Rather than defend every file operation against that one
//! by one, a root process stops being root before it touches the data directory: [`enter`],
//! called once at the start of `main`, switches the process to the runtime user and group
//! (`DOKKU_AUDIT_RUNTIME_USER`/`_GROUP`, default `dokku`), whose rights are exactly what a
//! `dokku` group member could get anyway. The file helpers in `safefs` still refuse
//! symlinks and plantable names, for the processes that run as `dokku` or cannot switch.
//!
//! The switch keeps root as the *saved* user id, so one narrow scope can act for the operator
//! again: [`as_invoker`] runs a closure with the original identity, and only the code that
//! writes or reads a path the operator named outside the data directory (`export --output
//! /root/x.jsonl`, `import /root/y.jsonl`, `restore /srv/backup`) uses it. Identities are
//! per thread at the system-call level (glibc hides that; rustix does not), so the switch is
//! made while `main` is still the only thread — threads started later inherit it — and
//! [`as_invoker`] changes only the calling thread.
//!
//! When the runtime user does not exist (a developer machine, a container without `dokku`),
//! there is nobody to switch to: the process stays root and relies on the file helpers alone.
//! `DOKKU_AUDIT_RUNTIME_USER=root` asks for that explicitly.

use std::sync::OnceLock;

use rustix::process::{Gid, Uid};

use crate::safefs::Ownership;

/// The identity the process runs under after [`enter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identity {
    /// Not started as root: nothing to switch.
    Unprivileged,
    /// Started as root and switched to the runtime user (uid, gid).
    Switched {
        /// The runtime user's uid.
        uid: u32,
        /// The runtime group's gid.
        gid: u32,
    },
    /// Started as root and stayed root: the runtime user does not exist (or is root).
    Root,
}

/// Why the switch failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot switch from root to the runtime user (uid {uid}, gid {gid}) before touching the data directory: {source}")]
pub struct SwitchError {
    uid: u32,
    gid: u32,
    source: std::io::Error,
}

static IDENTITY: OnceLock<Identity> = OnceLock::new();
static INVOKER_GROUPS: OnceLock<Vec<Gid>> = OnceLock::new();

/// Switches a root process to the runtime user; a no-op for everyone else and on later calls.
/// Call it while the process has one thread.
pub fn enter() -> Result<Identity, SwitchError> {
    if let Some(id) = IDENTITY.get() {
        return Ok(*id);
    }
    let id = switch(Ownership::from_env())?;
    Ok(*IDENTITY.get_or_init(|| id))
}

/// The identity chosen by [`enter`] (`Unprivileged` when it was never called).
pub fn current() -> Identity {
    IDENTITY.get().copied().unwrap_or(Identity::Unprivileged)
}

fn switch(owner: Ownership) -> Result<Identity, SwitchError> {
    if !rustix::process::geteuid().is_root() {
        return Ok(Identity::Unprivileged);
    }
    let (Some(uid), Some(gid)) = (owner.uid, owner.gid) else {
        return Ok(Identity::Root);
    };
    if uid == 0 {
        return Ok(Identity::Root);
    }
    let fail = |source: std::io::Error| SwitchError { uid, gid, source };
    let groups = rustix::process::getgroups().map_err(|e| fail(e.into()))?;
    let _ = INVOKER_GROUPS.set(groups);
    // SAFETY-free: rustix wraps the raw calls. Groups first (needs CAP_SETGID), then the gid,
    // the uid last (after it, the capabilities are gone). Saved ids stay 0 for `as_invoker`.
    let (u, g) = (Uid::from_raw(uid), Gid::from_raw(gid));
    rustix::thread::set_thread_groups(&[g]).map_err(|e| fail(e.into()))?;
    rustix::thread::set_thread_res_gid(g, g, None).map_err(|e| fail(e.into()))?;
    rustix::thread::set_thread_res_uid(u, u, None).map_err(|e| fail(e.into()))?;
    Ok(Identity::Switched { uid, gid })
}

/// Runs `f` as the identity the process started with (root), on this thread only, then switches
/// back. Only for paths the operator named outside the data directory; a no-op wrapper when
/// the process never switched.
pub fn as_invoker<T>(f: impl FnOnce() -> T) -> std::io::Result<T> {
    let Identity::Switched { uid, gid } = current() else {
        return Ok(f());
    };
    let root_u = Uid::from_raw(0);
    let root_g = Gid::from_raw(0);
    rustix::thread::set_thread_res_uid(None, root_u, None)?;
    let restored = (|| -> std::io::Result<()> {
        let groups = INVOKER_GROUPS.get().cloned().unwrap_or_default();
        rustix::thread::set_thread_groups(&groups)?;
        rustix::thread::set_thread_res_gid(None, root_g, None)?;
        Ok(())
    })();
    let out = restored.map(|()| f());
    // Back to the runtime user whatever happened; failing that, stopping is the only safe move.
    let (u, g) = (Uid::from_raw(uid), Gid::from_raw(gid));
    let back = rustix::thread::set_thread_groups(&[g])
        .and_then(|()| rustix::thread::set_thread_res_gid(None, g, None))
        .and_then(|()| rustix::thread::set_thread_res_uid(None, u, None));
    if let Err(e) = back {
        eprintln!(" !     cannot switch back to the runtime user: {e}");
        std::process::exit(1);
    }
    out
}

/// True when `path` lies inside `data_dir` (after resolving what exists of both): such a path is
/// only ever touched as the runtime user, even when the operator named it.
pub fn is_inside(path: &std::path::Path, data_dir: &std::path::Path) -> bool {
    let abs = |p: &std::path::Path| -> std::path::PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            std::env::current_dir().unwrap_or_default().join(p)
        }
    };
    let resolve = |p: &std::path::Path| crate::safefs::resolve_data_dir(&abs(p));
    resolve(path).starts_with(resolve(data_dir))
}
