//! `doctor`: deep checks of a data directory. Prints every `ok: …` line, then every `issue: …`
//! line (reference §10.4's shape), each issue naming what fixes it, and exits 1 if there is any
//! issue. Read-only: it never takes a lock and never writes, so it runs on a damaged or
//! read-only data directory too.
//!
//! This file holds the report, the order of checks and the data-directory, format and settings
//! checks; `store_checks.rs` the segments, index, state, interrupted-work and leftover checks;
//! `host.rs` permissions, free space and the filesystem type.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

mod host;
mod store_checks;

use host::*;
use store_checks::*;

use super::{CliError, Context};
use crate::store::{Ownership, Store, StoreError, FORMAT_VERSION};

/// Below this many free bytes on the data directory's filesystem, doctor reports an issue.
const MIN_FREE_BYTES: u64 = 100 * 1024 * 1024;
/// Below this share of free space, doctor reports an issue.
const MIN_FREE_PERCENT: u64 = 5;
/// Most lines of one kind printed (the rest are summarised).
const MAX_LINES_PER_CHECK: usize = 20;
/// Most entries the permission walk looks at (a backup-heavy directory stays fast).
const MAX_WALK: usize = 200_000;
/// Filesystems on which advisory locks (flock) are not reliable.
const REMOTE_FS: &[&str] = &[
    "nfs",
    "nfs4",
    "cifs",
    "smb3",
    "smbfs",
    "ncpfs",
    "afs",
    "9p",
    "ceph",
    "glusterfs",
    "fuse.sshfs",
    "fuse.glusterfs",
    "fuse.s3fs",
    "fuse.rclone",
];

/// `ok` and `issue` lines, printed ok first.
#[derive(Default)]
struct Report {
    ok: Vec<String>,
    issues: Vec<String>,
}

impl Report {
    fn ok(&mut self, s: impl Into<String>) {
        self.ok.push(one_line(s.into()));
    }

    fn issue(&mut self, s: impl Into<String>) {
        self.issues.push(one_line(s.into()));
    }

    /// Issues of one kind, at most [`MAX_LINES_PER_CHECK`] of them, then a count of the rest.
    fn issues_capped(&mut self, lines: Vec<String>, what: &str) {
        let n = lines.len();
        for l in lines.into_iter().take(MAX_LINES_PER_CHECK) {
            self.issue(l);
        }
        if n > MAX_LINES_PER_CHECK {
            self.issue(format!(
                "{} more {what} not listed (run: dokku audit:doctor after fixing the ones above)",
                n - MAX_LINES_PER_CHECK
            ));
        }
    }
}

/// Every check is one line: control characters (newlines in an OS or tantivy message, escape
/// sequences in a file name) become spaces.
fn one_line(s: String) -> String {
    if s.chars().any(char::is_control) {
        s.chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect()
    } else {
        s
    }
}

/// Runs `doctor`.
pub fn run(ctx: &Context) -> Result<(), CliError> {
    let mut r = Report::default();
    let data = &ctx.data_dir;
    check_data_dir(ctx, &mut r);
    if data.is_dir() {
        // Settings are checked below; a bad one must not stop the other checks.
        let store = Store::new(
            data,
            crate::store::StoreOptions::from_settings(&ctx.settings).unwrap_or_default(),
            ctx.owner,
        );
        check_permissions(data, &mut r);
        let format_ok = check_format(&store, &mut r);
        if format_ok {
            check_segments(&store, &mut r);
            check_index(ctx, &store, &mut r);
        }
        check_state(ctx, &mut r);
        check_interrupted(&store, &mut r);
        check_spool(&store, &mut r);
        check_leftovers(&store, &mut r);
        check_free_space(data, &mut r);
        check_filesystem(data, &mut r);
    }
    check_settings(ctx, &mut r);

    let mut out = String::new();
    for l in &r.ok {
        out.push_str(&format!("ok: {l}\n"));
    }
    for l in &r.issues {
        out.push_str(&format!("issue: {l}\n"));
    }
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(out.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(CliError::output("stdout"))?;
    if r.issues.is_empty() {
        Ok(())
    } else {
        Err(CliError::Reported(format!(
            "doctor found {} issue(s)",
            r.issues.len()
        )))
    }
}

/// The path as shown: relative to the data directory when inside it.
fn rel(data: &Path, p: &Path) -> String {
    match p.strip_prefix(data) {
        Ok(r) if !r.as_os_str().is_empty() => r.display().to_string(),
        _ => p.display().to_string(),
    }
}

fn check_data_dir(ctx: &Context, r: &mut Report) {
    let data = &ctx.data_dir;
    match std::fs::metadata(data) {
        Ok(m) if m.is_dir() => r.ok(format!("data directory exists: {}", data.display())),
        Ok(_) => r.issue(format!(
            "data directory is not a directory: {} (move it away, then run: dokku audit:migrate)",
            data.display()
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => r.issue(format!(
            "data directory does not exist: {} (run: dokku audit:migrate)",
            data.display()
        )),
        Err(e) => r.issue(format!(
            "data directory is not accessible: {}: {e} (run doctor as root or as the dokku user)",
            data.display()
        )),
    }
}

/// `FORMAT` present and of a version this build reads. False when the rest of the store checks
/// would misread the data.
fn check_format(store: &Store, r: &mut Report) -> bool {
    match store.read_format() {
        Ok(Some(v)) => {
            r.ok(format!(
                "format version {v} (this build reads up to {FORMAT_VERSION})"
            ));
            true
        }
        Ok(None) => {
            r.issue("FORMAT marker is missing (run: dokku audit:migrate)");
            true
        }
        Err(e @ StoreError::NewerFormat { .. }) => {
            r.issue(format!("{e}"));
            false
        }
        Err(e) => {
            r.issue(format!("{e} (run: dokku audit:migrate)"));
            false
        }
    }
}

fn check_settings(ctx: &Context, r: &mut Report) {
    match ctx.settings.validate() {
        Ok(()) => r.ok("settings are valid"),
        Err(crate::settings::SettingsError::Invalid { key, value, .. }) => r.issue(format!(
            "invalid setting {key}={value:?} (run: dokku audit:set {key} <value>)"
        )),
        Err(e) => r.issue(format!("{e} (run: dokku audit:set <key> <value>)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_escapes() {
        assert_eq!(unescape_mount("/mnt/a\\040b"), "/mnt/a b");
        assert_eq!(unescape_mount("/plain"), "/plain");
        assert_eq!(unescape_mount("/x\\"), "/x\\");
        assert_eq!(unescape_mount("/x\\04"), "/x\\04");
    }
}
