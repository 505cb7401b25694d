//! Filesystem helpers for everything under the data directory: the writer lock, durable
//! renames, and the ownership and modes every created file and directory gets (group `dokku`,
//! setgid dirs, no world access), because triggers run both as `dokku` and as `root` and both
//! must keep writing.
//!
//! The data directory is writable by group `dokku`, so every name in it may have been planted
//! by a group member. These helpers are the one place that opens, creates, renames and removes
//! files there, and none of them follows a symlink in any component of the path (`openat2` with
//! `RESOLVE_NO_SYMLINKS`; renames and removals act on a descriptor of the parent directory
//! opened that way). New files are created `O_CREAT|O_EXCL`, temporary ones under an
//! unpredictable name, and modes and owners are set on descriptors, never on paths. The data
//! directory's own path is resolved once by the caller (`resolve_data_dir`), so a symlink an
//! administrator put above it is allowed while one planted below it is not. `privilege`
//! removes most of the danger for root first; these rules are the second wall.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

mod error;
pub use error::{FsError, Result};

mod lock;
mod nofollow;

pub use lock::WriterLock;
pub use nofollow::{
    clear_symlinks, hard_link, metadata, open_dir, open_read, open_write, read, read_to_string,
    remove_dir, remove_dir_all, remove_file, rename,
};
use nofollow::{open_path, parent_of};

/// Mode of directories the store creates: rwx for owner and group, setgid, nothing for others.
pub const DIR_MODE: u32 = 0o2770;
/// Mode of files the store creates.
pub const FILE_MODE: u32 = 0o660;

/// Who should own created files: resolved from `DOKKU_AUDIT_RUNTIME_USER`/`_GROUP` (default
/// `dokku`) by reading `/etc/passwd` and `/etc/group`. `None` when the names do not exist (a
/// developer machine): then files keep the creating user.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ownership {
    /// Owner uid.
    pub uid: Option<u32>,
    /// Owner gid.
    pub gid: Option<u32>,
}

impl Ownership {
    /// The runtime owner from the environment and the account files, resolved once per process
    /// (the privilege switch, the hook and the store all ask; the account files are read once).
    pub fn from_env() -> Ownership {
        static RESOLVED: std::sync::OnceLock<Ownership> = std::sync::OnceLock::new();
        *RESOLVED.get_or_init(|| {
            let (user, group) = runtime_names();
            Ownership {
                uid: lookup_id("/etc/passwd", &user),
                gid: lookup_id("/etc/group", &group),
            }
        })
    }

    /// Applies the mode and, when the file is root's (only root can give files away), the
    /// ownership to an open file or directory.
    pub fn apply_fd(&self, fd: impl AsFd, mode: u32, path: &Path) -> Result<()> {
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode))
            .map_err(|e| FsError::io("chmod", path)(e.into()))?;
        let st = rustix::fs::fstat(&fd).map_err(|e| FsError::io("stat", path)(e.into()))?;
        if st.st_uid == 0 && (self.uid.is_some() || self.gid.is_some()) {
            self.chown_fd(&fd, path)?;
        }
        Ok(())
    }

    /// Gives an open file or directory to the runtime owner.
    fn chown_fd(&self, fd: impl AsFd, path: &Path) -> Result<()> {
        rustix::fs::fchown(
            &fd,
            self.uid.map(rustix::fs::Uid::from_raw),
            self.gid.map(rustix::fs::Gid::from_raw),
        )
        .map_err(|e| FsError::io("chown", path)(e.into()))
    }

    /// [`Ownership::apply_fd`] on a path, opened without following symlinks.
    pub fn apply(&self, path: &Path, mode: u32) -> Result<()> {
        let fd = open_path(path, OFlags::RDONLY, 0).map_err(FsError::io("open", path))?;
        self.apply_fd(&fd, mode, path)
    }
}

/// The runtime user and group names: `DOKKU_AUDIT_RUNTIME_USER` (default `dokku`) and
/// `DOKKU_AUDIT_RUNTIME_GROUP` (default: the user's name).
pub fn runtime_names() -> (String, String) {
    let user = std::env::var("DOKKU_AUDIT_RUNTIME_USER")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "dokku".into());
    let group = std::env::var("DOKKU_AUDIT_RUNTIME_GROUP")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| user.clone());
    (user, group)
}

fn lookup_id(file: &str, name: &str) -> Option<u32> {
    let text = fs::read_to_string(file).ok()?;
    text.lines().find_map(|line| {
        let mut parts = line.split(':');
        (parts.next()? == name).then_some(())?;
        parts.nth(1)?.parse().ok()
    })
}

/// The data directory's path with the symlinks an administrator may have put above it resolved
/// (a missing directory: its nearest existing ancestor resolved, the rest appended), so the
/// helpers below can refuse every symlink beneath it.
pub fn resolve_data_dir(path: &Path) -> PathBuf {
    let mut existing = path.to_path_buf();
    let mut rest = Vec::new();
    loop {
        if let Ok(real) = existing.canonicalize() {
            return rest
                .iter()
                .rev()
                .fold(real, |acc: PathBuf, part| acc.join(part));
        }
        match (existing.file_name(), existing.parent()) {
            (Some(name), Some(parent)) if !parent.as_os_str().is_empty() => {
                rest.push(name.to_os_string());
                existing = parent.to_path_buf();
            }
            _ => return path.to_path_buf(),
        }
    }
}

/// Creates a new file (`O_CREAT|O_EXCL`: an existing name or symlink is an error, never
/// followed or truncated) with the store's mode and ownership.
pub fn create_new(path: &Path, owner: &Ownership) -> Result<File> {
    create_new_with_mode(path, owner, FILE_MODE)
}

/// [`create_new`] with another mode (the server token's 0600): the file is created with it, so
/// it is never readable by more than the mode allows, not even for an instant.
pub fn create_new_with_mode(path: &Path, owner: &Ownership, mode: u32) -> Result<File> {
    let fd = open_path(path, OFlags::RDWR | OFlags::CREATE | OFlags::EXCL, mode)
        .map_err(|source| open_error(path, source))?;
    owner.apply_fd(&fd, mode, path)?;
    Ok(File::from(fd))
}

/// Creates `path` exclusively, first removing whatever is there (a leftover of a crash, or a
/// name someone planted: removed, never followed). For fixed temp names (the sealer's
/// `<id>.jsonl.zst.tmp`) used under the writer lock, where an existing entry is never live.
pub fn create_replacing(path: &Path, owner: &Ownership) -> Result<File> {
    for _ in 0..3 {
        match create_new(path, owner) {
            Err(FsError::Io { ref source, .. })
                if source.kind() == io::ErrorKind::AlreadyExists =>
            {
                remove_file(path).map_err(FsError::io("remove", path))?;
            }
            other => return other,
        }
    }
    create_new(path, owner)
}

/// Creates a temporary file beside `target` (see [`crate::layout::temp_name`]), `O_CREAT|O_EXCL`.
pub fn create_temp(target: &Path, owner: &Ownership) -> Result<(File, PathBuf)> {
    create_temp_with_mode(target, owner, FILE_MODE)
}

/// [`create_temp`] with another mode.
pub fn create_temp_with_mode(
    target: &Path,
    owner: &Ownership,
    mode: u32,
) -> Result<(File, PathBuf)> {
    let dir = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let base = target
        .file_name()
        .map(|n| String::from_utf8_lossy(n.as_bytes()).into_owned())
        .unwrap_or_else(|| "file".into());
    let tmp = dir.join(crate::layout::temp_name(&base));
    let file = create_new_with_mode(&tmp, owner, mode)?;
    Ok((file, tmp))
}

/// Creates a directory (and parents) with the store's mode and ownership; no-op if it exists.
/// An existing symlink in its place is an error, not a directory.
pub fn ensure_dir(path: &Path, owner: &Ownership) -> Result<()> {
    if open_dir(path).is_ok() {
        return Ok(());
    }
    if let Some(parent) = path.parent() {
        if !parent.as_os_str().is_empty() && fs::symlink_metadata(parent).is_err() {
            fs::create_dir_all(parent).map_err(|source| dir_error(parent, source))?;
        }
    }
    create_dir(path, owner)
}

/// Creates one directory (an existing one is fine) and gives it the store's mode and owner.
pub fn create_dir(path: &Path, owner: &Ownership) -> Result<()> {
    let (parent, name) = parent_of(path).map_err(|source| dir_error(path, source))?;
    match rustix::fs::mkdirat(&parent, name, Mode::from_raw_mode(DIR_MODE)) {
        Ok(()) => {
            let fd = open_dir(path).map_err(FsError::io("open directory", path))?;
            owner.apply_fd(&fd, DIR_MODE, path)
        }
        Err(Errno::EXIST) => open_dir(path)
            .map(drop)
            .map_err(FsError::io("open directory", path)),
        Err(e) => Err(dir_error(path, e.into())),
    }
}

/// Creates the data directory if missing and gives it mode 2770 and the runtime owner even when
/// it already exists (an old 0755 directory would leave the trail world-readable). Run by
/// `install`/`migrate` with the operator's rights: the directory's parent is not the group's,
/// so nothing in its path can have been planted.
pub fn secure_data_dir(path: &Path, owner: &Ownership) -> Result<()> {
    ensure_dir(path, owner)?;
    let fd = open_dir(path).map_err(FsError::io("open directory", path))?;
    let st = rustix::fs::fstat(&fd).map_err(|e| FsError::io("stat", path)(e.into()))?;
    let me = rustix::process::geteuid();
    // Only the owner (or root) may change the mode; anyone else leaves it to `doctor` to report.
    if st.st_mode & 0o7777 != DIR_MODE && (me.is_root() || me.as_raw() == st.st_uid) {
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(DIR_MODE))
            .map_err(|e| FsError::io("chmod", path)(e.into()))?;
    }
    let wrong_owner =
        owner.uid.is_some_and(|u| u != st.st_uid) || owner.gid.is_some_and(|g| g != st.st_gid);
    if wrong_owner && me.is_root() {
        owner.chown_fd(&fd, path)?;
    }
    Ok(())
}

fn dir_error(path: &Path, source: std::io::Error) -> FsError {
    if is_permission_or_rofs(&source) {
        FsError::NotWritable {
            path: path.to_path_buf(),
            source,
        }
    } else {
        FsError::io("create directory", path)(source)
    }
}

fn open_error(path: &Path, source: std::io::Error) -> FsError {
    if is_permission_or_rofs(&source) {
        FsError::NotWritable {
            path: path.to_path_buf(),
            source,
        }
    } else {
        FsError::io("open", path)(source)
    }
}

/// True for "permission denied" and "read-only filesystem".
pub fn is_permission_or_rofs(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::PermissionDenied || e.raw_os_error() == Some(30)
}

/// Opens (creating if needed) a file for appending with the store's mode; never through a
/// symlink. Ownership and mode are set only on a file this call created.
pub fn open_create(path: &Path, owner: &Ownership, read: bool) -> Result<File> {
    let mode = if read { OFlags::RDWR } else { OFlags::WRONLY };
    // Try the existing file first, then an exclusive create: so "created now" is known from
    // the call that created it, not from a racy existence check.
    loop {
        match open_path(path, mode | OFlags::APPEND, 0) {
            Ok(fd) => return Ok(File::from(fd)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(open_error(path, e)),
        }
        match open_path(
            path,
            mode | OFlags::APPEND | OFlags::CREATE | OFlags::EXCL,
            FILE_MODE,
        ) {
            Ok(fd) => {
                owner.apply_fd(&fd, FILE_MODE, path)?;
                return Ok(File::from(fd));
            }
            // Someone created it between the two calls: open theirs.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(open_error(path, e)),
        }
    }
}

/// fsyncs a directory so a rename or a new entry in it survives a crash.
pub fn sync_dir(dir: &Path) -> Result<()> {
    open_dir(dir)
        .map(File::from)
        .and_then(|d| d.sync_all())
        .map_err(FsError::io("fsync directory", dir))
}

/// Writes `bytes` to `path` atomically: an exclusive temp file in the same directory, fsync
/// (when `durable`), rename, fsync the directory. Readers see the old content or the new.
pub fn atomic_write(path: &Path, bytes: &[u8], owner: &Ownership) -> Result<()> {
    write_replace(path, bytes, owner, true)
}

/// [`atomic_write`], with the fsyncs only when `durable`.
pub fn write_replace(path: &Path, bytes: &[u8], owner: &Ownership, durable: bool) -> Result<()> {
    write_replace_with_mode(path, bytes, owner, durable, FILE_MODE)
}

/// [`write_replace`] with another mode.
pub fn write_replace_with_mode(
    path: &Path,
    bytes: &[u8],
    owner: &Ownership,
    durable: bool,
    mode: u32,
) -> Result<()> {
    let (mut f, tmp) = create_temp_with_mode(path, owner, mode)?;
    let written = f
        .write_all(bytes)
        .and_then(|()| if durable { f.sync_all() } else { Ok(()) })
        .map_err(FsError::io("write", &tmp))
        .and_then(|()| rename(&tmp, path).map_err(FsError::io("rename", path)));
    if written.is_err() {
        let _ = remove_file(&tmp);
    }
    written?;
    if durable {
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
        sync_dir(dir.unwrap_or(Path::new(".")))?;
    }
    Ok(())
}
