//! `doctor`: deep checks of a data directory. Prints every `ok: …` line, then every `issue: …`
//! line (reference §10.4's shape), each issue naming what fixes it, and exits 1 if there is any
//! issue. Read-only: it never takes a lock and never writes, so it runs on a damaged or
//! read-only data directory too.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::{CliError, Context};
use crate::event::correlate::CorrelationState;
use crate::index::{high_water_mark, EventIndex};
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
            ctx.settings.store_options().unwrap_or_default(),
            Ownership::from_env(),
        );
        check_permissions(data, &mut r);
        let format_ok = check_format(&store, &mut r);
        if format_ok {
            check_segments(&store, &mut r);
            check_index(ctx, &store, &mut r);
        }
        check_state(ctx, &mut r);
        check_interrupted(&store, &mut r);
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

/// Directories group-writable and setgid with nothing for others; files with nothing for others
/// where others could reach them; owner and group the runtime user's.
fn check_permissions(data: &Path, r: &mut Report) {
    let user = std::env::var("DOKKU_AUDIT_RUNTIME_USER")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "dokku".into());
    let group = std::env::var("DOKKU_AUDIT_RUNTIME_GROUP")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| user.clone());
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

/// Every CRC, id order, trailer and the chain (`verify`), and the segment count.
fn check_segments(store: &Store, r: &mut Report) {
    let report = match store.verify() {
        Ok(v) => v,
        Err(e) => {
            r.issue(format!(
                "segments cannot be read: {e} (run: dokku audit:verify)"
            ));
            return;
        }
    };
    match store.listing() {
        Ok(l) => {
            let sealed = l.segments.iter().filter(|s| !s.is_plain()).count();
            let copies = l
                .segments
                .iter()
                .filter(|s| s.sealed.is_some() && s.plain.is_some())
                .count();
            r.ok(format!(
                "segments: {} ({sealed} sealed, {copies} plain copies in their grace period)",
                l.segments.len()
            ));
        }
        Err(e) => r.issue(format!("segments directory cannot be listed: {e}")),
    }
    if report.ok() {
        r.ok(format!(
            "every checksum, id and the hash chain verify: {} events, last id {}, chain head {}",
            report.events, report.last_id, report.chain_head
        ));
    }
    if let Some(t) = &report.torn_tail {
        r.ok(format!(
            "torn final line of the active segment at {} ignored: {} (the next append repairs it)",
            t.pos, t.kind
        ));
    }
    let lines = report
        .problems
        .iter()
        .map(|p| {
            format!(
                "{}: {} (run: dokku audit:verify; restore a good copy with dokku audit:restore <backup>)",
                p.pos, p.message
            )
        })
        .collect();
    r.issues_capped(lines, "integrity problem(s)");
}

/// The index opens with the expected schema and is not ahead of the segments; its lag is fine.
fn check_index(ctx: &Context, store: &Store, r: &mut Report) {
    let index = match EventIndex::open_existing(&ctx.data_dir) {
        Ok(Some(i)) => i,
        Ok(None) => {
            r.ok("no search index yet (the next query builds it)");
            return;
        }
        Err(e) => {
            r.issue(format!(
                "search index cannot be opened: {e} (run: dokku audit:reindex)"
            ));
            return;
        }
    };
    if let Err(e) = index.index.load_metas() {
        r.issue(format!(
            "search index metadata cannot be read: {e} (run: dokku audit:reindex)"
        ));
        return;
    }
    // Every file the committed segments need is there (checked without opening a reader,
    // which would create tantivy's lock file: doctor writes nothing).
    match index.index.searchable_segment_metas() {
        Ok(metas) => {
            use tantivy::index::SegmentComponent;
            let mut missing = Vec::new();
            for m in &metas {
                let mut parts = vec![
                    SegmentComponent::Postings,
                    SegmentComponent::Terms,
                    SegmentComponent::Store,
                    SegmentComponent::FastFields,
                ];
                if m.has_deletes() {
                    parts.push(SegmentComponent::Delete);
                }
                for c in parts {
                    let p = m.relative_path(c);
                    if !index.dir().join(&p).exists() {
                        missing.push(p.display().to_string());
                    }
                }
            }
            if let Some(first) = missing.first() {
                r.issue(format!(
                    "search index is missing {} file(s), e.g. index/{first} (run: dokku audit:reindex)",
                    missing.len()
                ));
                return;
            }
        }
        Err(e) => {
            r.issue(format!(
                "search index cannot be read: {e} (run: dokku audit:reindex)"
            ));
            return;
        }
    }
    let mark = high_water_mark(&index.index);
    let segments = index.segment_count();
    let last = match store.last_id() {
        Ok(l) => l,
        Err(e) => {
            r.issue(format!(
                "cannot compare the index with the segments: {e} (run: dokku audit:verify)"
            ));
            return;
        }
    };
    if mark.hwm > last {
        r.issue(format!(
            "search index is ahead of the segments: it has events up to id {}, the segments end at {last} (run: dokku audit:reindex)",
            mark.hwm
        ));
        return;
    }
    let lag = last - mark.hwm;
    if lag == 0 {
        r.ok(format!(
            "search index opens, schema ok, up to date ({segments} index segments)"
        ));
    } else {
        r.ok(format!(
            "search index opens, schema ok, {lag} event(s) behind the segments (the next query catches up; {segments} index segments)"
        ));
    }
}

/// Correlation state entries older than `pending_stale_threshold_seconds`, by "now" (which
/// honours `DOKKU_AUDIT_NOW`).
fn check_state(ctx: &Context, r: &mut Report) {
    let path = crate::state::state_dir(&ctx.data_dir).join("correlation.json");
    let state: CorrelationState = match std::fs::read(&path) {
        // No state file: no operation in progress.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => CorrelationState::default(),
        Err(e) => {
            r.issue(format!(
                "correlation state {} cannot be read: {e} (run doctor as root or as the dokku user)",
                rel(&ctx.data_dir, &path)
            ));
            return;
        }
        Ok(bytes) => match serde_json::from_slice(&bytes) {
            Ok(s) => s,
            Err(e) => {
                r.issue(format!(
                    "correlation state {} does not parse ({e}); triggers treat it as empty (run: dokku audit:vacuum)",
                    rel(&ctx.data_dir, &path)
                ));
                return;
            }
        },
    };
    let threshold = ctx
        .settings
        .int("pending_stale_threshold_seconds", 0, 365 * 86_400)
        .unwrap_or(86_400) as i64;
    let cut = ctx.clock.now().timestamp() - threshold;
    let counts: [(&str, usize); 6] = [
        (
            "pending deploy",
            state
                .deploys
                .values()
                .filter(|d| d.first_seen < cut)
                .count(),
        ),
        (
            "pending command context",
            state.commands.iter().filter(|c| c.at < cut).count(),
        ),
        (
            "pending runtime event",
            state.runs.iter().filter(|c| c.at < cut).count(),
        ),
        (
            "pending event actor context",
            state.contexts.iter().filter(|c| c.at < cut).count(),
        ),
        (
            "pending build",
            state.builds.iter().filter(|c| c.at < cut).count(),
        ),
        (
            "pending rename",
            state.renames.iter().filter(|c| c.at < cut).count(),
        ),
    ];
    for (what, n) in counts {
        if n == 0 {
            r.ok(format!("no stale {what} entries"));
        } else {
            r.issue(format!(
                "stale {what} entries detected: {n}, older than {threshold} s (run: dokku audit:vacuum)"
            ));
        }
    }
}

/// Is the process that owns a `…tmp-<pid>` name still running (work in progress, not a
/// leftover)?
fn pid_alive(name: &str) -> bool {
    let digits: String = name
        .rsplit(['-', '.'])
        .next()
        .unwrap_or("")
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    match digits.parse::<u32>() {
        Ok(pid) if pid > 0 => Path::new("/proc").join(pid.to_string()).exists(),
        _ => false,
    }
}

/// Temporary files and directories left by interrupted seals, reindexes, restores, state and
/// marker writes; foreign files in `segments/`.
/// Work a crash interrupted that the next writer finishes (segments-format.md §8).
fn check_interrupted(store: &Store, r: &mut Report) {
    use crate::store::recover;
    let paths = store.paths();
    let mut found = false;
    match recover::pending_journal(paths) {
        Ok(Some(_)) => {
            found = true;
            r.issue(format!(
                "an interrupted prune/vacuum is pending ({}): readers already see its result; the next write completes it (or run: dokku audit:vacuum)",
                recover::JOURNAL_FILE
            ));
        }
        Ok(None) => {}
        Err(e) => {
            found = true;
            r.issue(format!("{e}"));
        }
    }
    if let Some(old) = recover::interrupted_restore(paths) {
        found = true;
        r.issue(format!(
            "an interrupted restore left the live history in {}: the next write moves it back (or run: dokku audit:vacuum); do not delete it",
            rel(&paths.root, &old)
        ));
    }
    let stale = crate::index::EventIndex::stale_marks(&paths.root);
    if !stale.is_empty() {
        found = true;
        r.issue(format!(
            "the index may be stale after an interrupted prune/vacuum ({}): the next query rebuilds it (or run: dokku audit:reindex)",
            rel(&paths.root, &stale[0])
        ));
    }
    if !found {
        r.ok("no interrupted prune, vacuum or restore");
    }
}

fn check_leftovers(store: &Store, r: &mut Report) {
    let data = &store.paths().root;
    let mut leftovers: Vec<PathBuf> = Vec::new();
    let mut in_progress = 0usize;
    let mut foreign: Vec<PathBuf> = Vec::new();
    match store.listing() {
        Ok(l) => {
            // A seal runs under the writer lock; its temp file is ours only while the writer
            // lives, and its name carries no pid: report it (vacuum removes it under the lock).
            leftovers.extend(l.temp_files);
            foreign.extend(l.foreign_files);
        }
        Err(e) => r.issue(format!("segments directory cannot be listed: {e}")),
    }
    let mut consider = |path: PathBuf, name: &str| {
        if pid_alive(name) {
            in_progress += 1;
        } else {
            leftovers.push(path);
        }
    };
    if let Ok(entries) = std::fs::read_dir(data) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let leftover = [
                "index.tmp-",
                "index.old-",
                "segments.restore-",
                "segments.old-",
            ]
            .iter()
            .any(|p| name.starts_with(p))
                || (name.starts_with('.') && name.contains(".tmp-"));
            let live_history = crate::store::recover::interrupted_restore(store.paths())
                .is_some_and(|p| p == e.path());
            if leftover && !live_history {
                consider(e.path(), &name);
            }
        }
    }
    for sub in ["state", "quarantine", "backups", "spool"] {
        if let Ok(entries) = std::fs::read_dir(data.join(sub)) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.contains(".tmp-") {
                    consider(e.path(), &name);
                }
            }
        }
    }
    leftovers.sort();
    if leftovers.is_empty() {
        let mut line = "no leftover temporary files".to_string();
        if in_progress > 0 {
            line.push_str(&format!(
                " ({in_progress} temporary file(s) of running processes)"
            ));
        }
        r.ok(line);
    } else {
        let lines = leftovers
            .iter()
            .map(|p| {
                format!(
                    "leftover temporary file: {} (run: dokku audit:vacuum)",
                    rel(data, p)
                )
            })
            .collect();
        r.issues_capped(lines, "leftover temporary file(s)");
    }
    foreign.sort();
    if foreign.is_empty() {
        r.ok("no foreign files in segments/");
    } else {
        let lines = foreign
            .iter()
            .map(|p| {
                format!(
                    "foreign file in segments/: {} is not a segment and is ignored by every reader (run: mv {} <somewhere outside the data directory>)",
                    rel(data, p),
                    p.display()
                )
            })
            .collect();
        r.issues_capped(lines, "foreign file(s)");
    }
}

fn human_bytes(n: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    if n >= 1024 * MIB {
        format!("{:.1} GiB", n as f64 / (1024 * MIB) as f64)
    } else {
        format!("{} MiB", n / MIB)
    }
}

fn check_free_space(data: &Path, r: &mut Report) {
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
fn unescape_mount(s: &str) -> String {
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
fn check_filesystem(data: &Path, r: &mut Report) {
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

    #[test]
    fn pids_in_temp_names() {
        let me = std::process::id();
        assert!(pid_alive(&format!("index.tmp-{me}")));
        assert!(pid_alive(&format!("correlation.json.tmp-{me}")));
        assert!(!pid_alive("index.tmp-"));
        assert!(!pid_alive("x.tmp-abc"));
    }
}
