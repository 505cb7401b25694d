//! The data directory's layout: every name in it, the names of temporary files and staging
//! directories, and the rule that says which of them are leftovers of interrupted work.
//!
//! ```text
//! <data dir>/FORMAT            format marker ("dokku-audit segments 1")
//! <data dir>/LOCK              writer lock; readers never take it
//! <data dir>/segments/         *.jsonl (active, plain) and *.jsonl.zst (sealed); names: store::segment
//! <data dir>/quarantine/       bytes cut off by torn-tail repairs, kept as evidence
//! <data dir>/compact.journal   a compaction's pending renames (only between two steps)
//! <data dir>/spool/            events a busy store could not take yet
//! <data dir>/state/            correlation.json, its LOCK, open-commands (hooks only)
//! <data dir>/index/            the derived tantivy index (and its mark file)
//! <data dir>/backups/          `backup` directories (default destination)
//! <data dir>/settings.json     stored settings
//! <data dir>/serve-token       the API's bearer token (0600)
//! <data dir>/releases.json     last release number per app (derived: store::releases)
//! ```
//!
//! Work that may be interrupted uses names that end in the pid of the process doing it, so
//! `doctor` and `vacuum` can tell work in progress from a leftover ([`owner_pid`]):
//! temporary files `.<name>.tmp-<random>-<pid>` ([`temp_name`]) anywhere, and the staging
//! directories `compact-<pid>`, `index.tmp-<pid>`, `index.old-<pid>`, `segments.restore-<pid>`,
//! `segments.old-<pid>` in the data directory. [`Layout::leftover_dirs`] and [`is_ours`] are the
//! one rule both commands apply. The seal's temporary file in `segments/` is named by
//! `store::segment`, the owner of segment names.

use std::path::{Path, PathBuf};

/// The format marker file.
pub const FORMAT: &str = "FORMAT";
/// The writer lock (in the data directory, and the state's in `state/`).
pub const LOCK: &str = "LOCK";
/// The segment directory.
pub const SEGMENTS: &str = "segments";
/// Where torn-tail repairs keep the bytes they cut off.
pub const QUARANTINE: &str = "quarantine";
/// The compaction journal.
pub const COMPACT_JOURNAL: &str = "compact.journal";
/// Events spooled while the store was busy.
pub const SPOOL: &str = "spool";
/// The hooks' correlation state directory.
pub const STATE: &str = "state";
/// The correlation state file inside [`STATE`].
pub const CORRELATION: &str = "correlation.json";
/// The marker inside [`STATE`] present while the state holds `dokku` commands in flight.
pub const OPEN_COMMANDS: &str = "open-commands";
/// The index directory.
pub const INDEX: &str = "index";
/// The default backup destination.
pub const BACKUPS: &str = "backups";
/// The stored settings.
pub const SETTINGS: &str = "settings.json";
/// The API's bearer token.
pub const SERVE_TOKEN: &str = "serve-token";
/// The writer's last release number per app (derived from the events: `store::releases`).
pub const RELEASES: &str = "releases.json";

/// Prefix of the marker (followed by the pid) a prune or vacuum leaves while the index may not
/// match the segments; one whose process is gone makes the next query rebuild the index.
pub const INDEX_STALE_PREFIX: &str = "index.stale-";

/// Prefix of the live `segments/` moved aside by a restore (followed by the pid): one found
/// with an empty `segments/` is an interrupted restore, rolled back by the next writer.
pub const RESTORE_ASIDE_PREFIX: &str = "segments.old-";

/// Prefixes of the staging directories of interrupted work, each followed by the pid; and of
/// the state's temporary file as versions before random temporary names wrote it (a host
/// upgraded after a crash may still have one).
const STAGING_PREFIXES: [&str; 6] = [
    "compact-",
    "index.tmp-",
    "index.old-",
    "segments.restore-",
    RESTORE_ASIDE_PREFIX,
    "correlation.json.tmp-",
];

/// Every path of one data directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// The data directory.
    pub root: PathBuf,
    /// `segments/`.
    pub segments: PathBuf,
    /// `LOCK`.
    pub lock: PathBuf,
    /// `FORMAT`.
    pub format: PathBuf,
    /// `quarantine/`.
    pub quarantine: PathBuf,
    /// `compact.journal`.
    pub compact_journal: PathBuf,
    /// `spool/`.
    pub spool: PathBuf,
    /// `state/`.
    pub state: PathBuf,
    /// `state/LOCK`.
    pub state_lock: PathBuf,
    /// `state/correlation.json`.
    pub correlation: PathBuf,
    /// `state/open-commands`.
    pub open_commands: PathBuf,
    /// `index/`.
    pub index: PathBuf,
    /// `backups/`.
    pub backups: PathBuf,
    /// `settings.json`.
    pub settings: PathBuf,
    /// `serve-token`.
    pub serve_token: PathBuf,
    /// `releases.json`.
    pub releases: PathBuf,
}

impl Layout {
    /// The layout of the data directory `root`.
    pub fn new(root: &Path) -> Layout {
        Layout {
            root: root.to_path_buf(),
            segments: root.join(SEGMENTS),
            lock: root.join(LOCK),
            format: root.join(FORMAT),
            quarantine: root.join(QUARANTINE),
            compact_journal: root.join(COMPACT_JOURNAL),
            spool: root.join(SPOOL),
            state: root.join(STATE),
            state_lock: root.join(STATE).join(LOCK),
            correlation: root.join(STATE).join(CORRELATION),
            open_commands: root.join(STATE).join(OPEN_COMMANDS),
            index: root.join(INDEX),
            backups: root.join(BACKUPS),
            settings: root.join(SETTINGS),
            serve_token: root.join(SERVE_TOKEN),
            releases: root.join(RELEASES),
        }
    }

    /// The staging directory of a compaction run by this process.
    pub fn compact_staging(&self) -> PathBuf {
        self.root.join(format!("compact-{}", std::process::id()))
    }

    /// Where this process builds a new index, and where it moves the old one aside.
    pub fn index_rebuild(&self) -> (PathBuf, PathBuf) {
        let pid = std::process::id();
        (
            self.root.join(format!("index.tmp-{pid}")),
            self.root.join(format!("index.old-{pid}")),
        )
    }

    /// Where this process stages a restored history, and where it moves the live one aside.
    pub fn restore_staging(&self) -> (PathBuf, PathBuf) {
        let pid = std::process::id();
        (
            self.root.join(format!("segments.restore-{pid}")),
            self.root.join(format!("{RESTORE_ASIDE_PREFIX}{pid}")),
        )
    }

    /// The directories where interrupted work can leave temporary files or staging
    /// directories (`segments/` has its own rule: `store::segment`).
    pub fn leftover_dirs(&self) -> [&Path; 5] {
        [
            &self.root,
            &self.state,
            &self.spool,
            &self.quarantine,
            &self.backups,
        ]
    }
}

/// A name for a temporary file or directory: `.<base>.tmp-<random>-<pid>`. Nobody can plant it
/// in advance; the pid at the end tells `doctor` and `vacuum` whether its owner still runs.
pub fn temp_name(base: &str) -> String {
    format!(".{base}.tmp-{:016x}-{}", random_u64(), std::process::id())
}

fn random_u64() -> u64 {
    let mut buf = [0u8; 8];
    match rustix::rand::getrandom(&mut buf, rustix::rand::GetRandomFlags::empty()) {
        Ok(8) => u64::from_le_bytes(buf),
        // No getrandom: still unpredictable enough to defeat pre-planting (O_EXCL stops the rest).
        _ => {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            (t.as_nanos() as u64) ^ (u64::from(std::process::id()) << 32)
        }
    }
}

/// Is `name` (in one of [`Layout::leftover_dirs`]) something interrupted work of ours leaves: a
/// staging directory or a temporary file (never a complete file such as a spooled event)?
pub fn is_ours(name: &str) -> bool {
    STAGING_PREFIXES.iter().any(|p| name.starts_with(p))
        || (name.starts_with('.') && name.contains(".tmp-"))
}

/// The pid a temporary or staging name ends in (the process doing that work).
pub fn owner_pid(name: &str) -> Option<u32> {
    name.rsplit('-')
        .next()
        .and_then(|p| p.parse::<u32>().ok())
        .filter(|p| *p > 0)
}

/// Is the work a name belongs to still running (this process, or a live pid)?
pub fn in_progress(name: &str) -> bool {
    owner_pid(name)
        .is_some_and(|p| p == std::process::id() || Path::new("/proc").join(p.to_string()).exists())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_are_ours_and_carry_the_pid() {
        let a = temp_name("settings.json");
        let b = temp_name("settings.json");
        assert_ne!(a, b);
        assert!(a.starts_with(".settings.json.tmp-"));
        assert!(is_ours(&a));
        assert_eq!(owner_pid(&a), Some(std::process::id()));
        assert!(in_progress(&a));
    }

    #[test]
    fn staging_names_are_ours_and_complete_files_are_not() {
        let l = Layout::new(Path::new("/d"));
        let me = std::process::id();
        let (tmp, old) = l.index_rebuild();
        let (staged, aside) = l.restore_staging();
        for p in [l.compact_staging(), tmp, old, staged, aside] {
            let name = p.file_name().unwrap().to_str().unwrap().to_string();
            assert!(is_ours(&name), "{name}");
            assert_eq!(owner_pid(&name), Some(me), "{name}");
        }
        assert!(is_ours("correlation.json.tmp-12"));
        for name in [
            "settings.json",
            "serve-token",
            "000000000001-00001.json",
            "index",
            "tmp-1",
        ] {
            assert!(!is_ours(name), "{name}");
        }
        assert!(!in_progress("index.tmp-"));
        assert!(!in_progress("x.tmp-abc"));
        assert_eq!(owner_pid("index.tmp-0"), None);
    }

    #[test]
    fn every_path_is_below_the_root() {
        let l = Layout::new(Path::new("/d"));
        assert_eq!(l.state_lock, Path::new("/d/state/LOCK"));
        assert_eq!(l.correlation, Path::new("/d/state/correlation.json"));
        for d in l.leftover_dirs() {
            assert!(d.starts_with("/d"));
        }
    }
}
