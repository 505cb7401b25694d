//! Filesystem helpers for the store: the writer lock, durable renames, and the ownership and
//! modes every created file and directory gets (group `dokku`, setgid dirs, no world access),
//! because triggers run both as `dokku` and as `root` and both must keep writing.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, Instant};

use fs4::fs_std::FileExt;

use super::error::{Result, StoreError};

/// Mode of directories the store creates: rwx for owner and group, setgid, nothing for others.
pub const DIR_MODE: u32 = 0o2770;
/// Mode of files the store creates.
pub const FILE_MODE: u32 = 0o660;

/// Who should own created files: resolved from `DOKKU_AUDIT_RUNTIME_USER`/`_GROUP` (default
/// `dokku`) by reading `/etc/passwd` and `/etc/group`. `None` when we are not root or the names do
/// not exist (a developer machine): then files keep the creating user.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ownership {
    /// Owner uid.
    pub uid: Option<u32>,
    /// Owner gid.
    pub gid: Option<u32>,
}

impl Ownership {
    /// Resolves the runtime owner from the environment and the account files.
    pub fn from_env() -> Ownership {
        let user = std::env::var("DOKKU_AUDIT_RUNTIME_USER")
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "dokku".into());
        let group = std::env::var("DOKKU_AUDIT_RUNTIME_GROUP")
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| user.clone());
        Ownership {
            uid: lookup_id("/etc/passwd", &user),
            gid: lookup_id("/etc/group", &group),
        }
    }

    /// Applies modes and, when running as root, ownership to a path the store just created.
    pub fn apply(&self, path: &Path, mode: u32) -> Result<()> {
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
            .map_err(StoreError::io("chmod", path))?;
        let meta = fs::metadata(path).map_err(StoreError::io("stat", path))?;
        // Only root can give files away; everyone else keeps what the setgid directory gives.
        if meta.uid() == 0 && (self.uid.is_some() || self.gid.is_some()) {
            std::os::unix::fs::chown(path, self.uid, self.gid)
                .map_err(StoreError::io("chown", path))?;
        }
        Ok(())
    }
}

fn lookup_id(file: &str, name: &str) -> Option<u32> {
    let text = fs::read_to_string(file).ok()?;
    text.lines().find_map(|line| {
        let mut parts = line.split(':');
        (parts.next()? == name).then_some(())?;
        parts.nth(1)?.parse().ok()
    })
}

/// Creates a directory (and parents) with the store's mode and ownership; no-op if it exists.
pub fn ensure_dir(path: &Path, owner: &Ownership) -> Result<()> {
    if path.is_dir() {
        return Ok(());
    }
    if let Some(parent) = path.parent() {
        if !parent.as_os_str().is_empty() && !parent.exists() {
            fs::create_dir_all(parent).map_err(|source| dir_error(parent, source))?;
        }
    }
    match fs::create_dir(path) {
        Ok(()) => owner.apply(path, DIR_MODE),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(dir_error(path, source)),
    }
}

fn dir_error(path: &Path, source: std::io::Error) -> StoreError {
    if is_permission_or_rofs(&source) {
        StoreError::NotWritable {
            path: path.to_path_buf(),
            source,
        }
    } else {
        StoreError::io("create directory", path)(source)
    }
}

/// True for "permission denied" and "read-only filesystem".
pub fn is_permission_or_rofs(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::PermissionDenied || e.raw_os_error() == Some(30)
}

/// Opens (creating if needed) a file for appending with the store's mode.
pub fn open_create(path: &Path, owner: &Ownership, read: bool) -> Result<File> {
    let existed = path.exists();
    let file = OpenOptions::new()
        .read(read)
        .append(true)
        .create(true)
        .mode(FILE_MODE)
        .open(path)
        .map_err(|source| {
            if is_permission_or_rofs(&source) {
                StoreError::NotWritable {
                    path: path.to_path_buf(),
                    source,
                }
            } else {
                StoreError::io("open", path)(source)
            }
        })?;
    if !existed {
        owner.apply(path, FILE_MODE)?;
    }
    Ok(file)
}

/// fsyncs a directory so a rename or a new entry in it survives a crash.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(StoreError::io("fsync directory", dir))
}

/// Writes `bytes` to `path` atomically: temp file in the same directory, fsync, rename, fsync
/// the directory. Readers see the old content or the new, never a mix.
pub fn atomic_write(path: &Path, bytes: &[u8], owner: &Ownership) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        std::process::id()
    ));
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(FILE_MODE)
        .open(&tmp)
        .map_err(StoreError::io("create", &tmp))?;
    f.write_all(bytes).map_err(StoreError::io("write", &tmp))?;
    f.sync_all().map_err(StoreError::io("fsync", &tmp))?;
    owner.apply(&tmp, FILE_MODE)?;
    fs::rename(&tmp, path).map_err(StoreError::io("rename", path))?;
    sync_dir(dir)
}

/// The exclusive writer lock (`<data dir>/LOCK`), released on drop. Readers never take it.
pub struct WriterLock {
    file: File,
}

impl WriterLock {
    /// Takes the lock, polling with a short back-off until `timeout` has passed. A hook gets a
    /// budget of well under a second; maintenance commands wait longer.
    pub fn acquire(path: &Path, owner: &Ownership, timeout: Duration) -> Result<WriterLock> {
        let file = open_create(path, owner, false)?;
        let start = Instant::now();
        let mut pause = Duration::from_micros(200);
        loop {
            match FileExt::try_lock_exclusive(&file) {
                Ok(true) => return Ok(WriterLock { file }),
                Ok(false) => {}
                Err(e) => return Err(StoreError::io("lock", path)(e)),
            }
            if start.elapsed() >= timeout {
                return Err(StoreError::LockBusy {
                    path: path.to_path_buf(),
                    waited_ms: start.elapsed().as_millis(),
                });
            }
            std::thread::sleep(pause.min(timeout.saturating_sub(start.elapsed())));
            pause = (pause * 2).min(Duration::from_millis(10));
        }
    }
}

impl Drop for WriterLock {
    fn drop(&mut self) {
        // Closing the descriptor releases the lock anyway; unlocking first is just explicit.
        let _ = FileExt::unlock(&self.file);
    }
}
