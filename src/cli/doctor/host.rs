//! Host-level checks: permissions and ownership, free space, the filesystem type.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use super::*;

/// Directories group-writable and setgid with nothing for others; files with nothing for others
/// where others could reach them; owner and group the runtime user's.
pub(super) fn check_permissions(data: &Path, r: &mut Report) {
    let (user, group) = crate::safefs::runtime_names();
    let owner = Ownership::from_env();
    let fix_mode = format!(
        "run: chmod -R o-rwx {0} && find {0} -type d -exec chmod 2770 {{}} +",
        data.display()
    );
    let fix_owner = format!("run: chown -R {user}:{group} {}", data.display());

    let mut dirs = 0usize;
    let mut files = 0usize;
    let mut closed_world_bits = 0usize;
    let mut mode_issues = Vec::new();
    let mut owner_issues = Vec::new();
    let mut unreadable = Vec::new();
    // (path, others can reach it: every directory from the data directory down is o+x).
    let mut stack: Vec<(PathBuf, bool)> = vec![(data.to_path_buf(), true)];
    let mut seen = 0usize;
    while let Some((path, reachable)) = stack.pop() {
        seen += 1;
        if seen > MAX_WALK {
            break;
        }
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                unreadable.push(format!("{}: {e}", rel(data, &path)));
                continue;
            }
        };
        let mode = meta.permissions().mode() & 0o7777;
        if let Some(uid) = owner.uid {
            if meta.uid() != uid || owner.gid.is_some_and(|g| meta.gid() != g) {
                owner_issues.push(format!(
                    "{} is owned by uid {} gid {}, expected {user}:{group} ({fix_owner})",
                    rel(data, &path),
                    meta.uid(),
                    meta.gid()
                ));
            }
        }
        if meta.is_dir() {
            dirs += 1;
            if mode & 0o007 != 0 {
                mode_issues.push(format!(
                    "directory {} is accessible to others (mode {mode:04o}, expected 2770) ({fix_mode})",
                    rel(data, &path)
                ));
            } else if mode & 0o070 != 0o070 || mode & 0o2000 == 0 {
                mode_issues.push(format!(
                    "directory {} has mode {mode:04o}, expected 2770 (group-writable, setgid) ({fix_mode})",
                    rel(data, &path)
                ));
            }
            let reach_below = reachable && mode & 0o001 != 0;
            match std::fs::read_dir(&path) {
                Ok(entries) => {
                    for entry in entries.flatten() {
                        stack.push((entry.path(), reach_below));
                    }
                }
                Err(e) => unreadable.push(format!("{}: {e}", rel(data, &path))),
            }
        } else {
            files += 1;
            if mode & 0o002 != 0 {
                mode_issues.push(format!(
                    "file {} is writable by others (mode {mode:04o}, expected 0660) ({fix_mode})",
                    rel(data, &path)
                ));
            } else if mode & 0o007 != 0 {
                if reachable {
                    mode_issues.push(format!(
                        "file {} is accessible to others (mode {mode:04o}, expected 0660) ({fix_mode})",
                        rel(data, &path)
                    ));
                } else {
                    closed_world_bits += 1;
                }
            }
        }
    }
    if mode_issues.is_empty() {
        let mut line = format!(
            "permissions: nothing accessible to others ({dirs} directories, {files} files checked"
        );
        if closed_world_bits > 0 {
            line.push_str(&format!(
                "; {closed_world_bits} file(s) have bits for others but sit in closed directories"
            ));
        }
        line.push(')');
        r.ok(line);
    } else {
        r.issues_capped(mode_issues, "permission issue(s)");
    }
    if !unreadable.is_empty() {
        r.issues_capped(
            unreadable
                .into_iter()
                .map(|u| format!("cannot read {u} (run doctor as root or as the dokku user)"))
                .collect(),
            "unreadable path(s)",
        );
    }
    match owner.uid {
        None => r.ok(format!(
            "runtime user {user} does not exist on this host: owner check skipped"
        )),
        Some(_) if owner_issues.is_empty() => {
            r.ok(format!("everything is owned by {user}:{group}"))
        }
        Some(_) => r.issues_capped(owner_issues, "ownership issue(s)"),
    }
}

pub(super) fn human_bytes(n: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    if n >= 1024 * MIB {
        format!("{:.1} GiB", n as f64 / (1024 * MIB) as f64)
    } else {
        format!("{} MiB", n / MIB)
    }
}

pub(super) fn check_free_space(data: &Path, r: &mut Report) {
    let (avail, total) = match (fs4::available_space(data), fs4::total_space(data)) {
        (Ok(a), Ok(t)) => (a, t),
        (Err(e), _) | (_, Err(e)) => {
            r.issue(format!(
                "free space of {} cannot be determined: {e} (check with: df -h {})",
                data.display(),
                data.display()
            ));
            return;
        }
    };
    let percent = avail.saturating_mul(100).checked_div(total).unwrap_or(100);
    let text = format!(
        "free space: {} of {} ({percent}%)",
        human_bytes(avail),
        human_bytes(total)
    );
    if avail < MIN_FREE_BYTES || percent < MIN_FREE_PERCENT {
        r.issue(format!(
            "{text} is below {} or {MIN_FREE_PERCENT}% (free some space, or run: dokku audit:prune --older-than DAYS --yes)",
            human_bytes(MIN_FREE_BYTES)
        ));
    } else {
        r.ok(text);
    }
}

/// Decodes the octal escapes of /proc/mounts (`\040` is a space).
pub(super) fn unescape_mount(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let oct = b
            .get(i + 1..i + 4)
            .filter(|o| o.iter().all(|c| (b'0'..=b'7').contains(c)));
        match oct {
            Some(o) if b[i] == b'\\' => {
                let v = o.iter().fold(0u32, |acc, c| acc * 8 + u32::from(c - b'0'));
                out.push(u8::try_from(v).unwrap_or(b'?'));
                i += 4;
            }
            _ => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The filesystem type of the data directory, from the longest matching mount point.
pub(super) fn check_filesystem(data: &Path, r: &mut Report) {
    let real = match std::fs::canonicalize(data) {
        Ok(p) => p,
        Err(e) => {
            r.issue(format!(
                "cannot resolve {}: {e} (check the path and its permissions)",
                data.display()
            ));
            return;
        }
    };
    let mounts = match std::fs::read_to_string("/proc/mounts") {
        Ok(m) => m,
        Err(_) => {
            r.ok("filesystem type unknown (/proc/mounts unreadable)");
            return;
        }
    };
    let mut best: BTreeMap<usize, (String, String)> = BTreeMap::new();
    for line in mounts.lines() {
        let mut parts = line.split(' ');
        let (Some(_dev), Some(mnt), Some(fstype)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let mnt = unescape_mount(mnt);
        if real.starts_with(&mnt) {
            // Later mounts on the same point hide earlier ones: keep the last.
            best.insert(mnt.len(), (mnt, fstype.to_string()));
        }
    }
    let Some((_, (mnt, fstype))) = best.into_iter().next_back() else {
        r.ok("filesystem type unknown (no mount point found)");
        return;
    };
    let remote = REMOTE_FS.contains(&fstype.as_str())
        || fstype.starts_with("nfs")
        || fstype.starts_with("fuse.sshfs");
    if remote {
        r.issue(format!(
            "data directory is on a {fstype} filesystem ({mnt}): advisory locks are unreliable there (move it to a local filesystem and set DOKKU_AUDIT_DATA_DIR)"
        ));
    } else {
        r.ok(format!("filesystem: {fstype} at {mnt} (local)"));
    }
}
