//! Path operations under the data directory that never follow a symlink: every open goes
//! through `openat2(RESOLVE_NO_SYMLINKS)`, and renames, removals and links act on a descriptor of
//! the parent directory opened that way.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, Mode, OFlags, ResolveFlags, CWD};
use rustix::io::Errno;

/// Opens `path` with `flags`, refusing a symlink in any component. Every open under the data
/// directory goes through here.
pub(super) fn open_path(path: &Path, flags: OFlags, mode: u32) -> io::Result<OwnedFd> {
    let flags = flags | OFlags::CLOEXEC | OFlags::NOFOLLOW;
    let mode = Mode::from_raw_mode(mode);
    let how = ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
    let opened = match rustix::fs::openat2(CWD, path, flags, mode, how) {
        // Kernels before 5.6 (or a seccomp filter) lack openat2: O_NOFOLLOW still guards the
        // last component, `privilege` guards the rest.
        Err(Errno::NOSYS) | Err(Errno::PERM) => rustix::fs::openat(CWD, path, flags, mode),
        other => other,
    };
    opened.map_err(|e| refused(path, e))
}

/// ELOOP from `NO_SYMLINKS`/`O_NOFOLLOW` says "a symlink was in the way": say it plainly.
fn refused(path: &Path, e: Errno) -> io::Error {
    if e == Errno::LOOP {
        io::Error::other(format!(
            "{} is a symbolic link or lies under one (refused: nothing under the data directory is followed through a symlink)",
            path.display()
        ))
    } else {
        e.into()
    }
}

/// Opens a file for reading without following symlinks.
pub fn open_read(path: impl AsRef<Path>) -> io::Result<File> {
    let path = path.as_ref();
    open_path(path, OFlags::RDONLY, 0).map(File::from)
}

/// Opens an existing file for writing (appending when `append`) without following symlinks.
pub fn open_write(path: &Path, append: bool) -> io::Result<File> {
    let mut flags = OFlags::RDWR;
    if append {
        flags |= OFlags::APPEND;
    }
    open_path(path, flags, 0).map(File::from)
}

/// Reads a whole file without following symlinks.
pub fn read(path: impl AsRef<Path>) -> io::Result<Vec<u8>> {
    let path = path.as_ref();
    let mut f = open_read(path)?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf)?;
    Ok(buf)
}

/// Reads a whole UTF-8 file without following symlinks.
pub fn read_to_string(path: impl AsRef<Path>) -> io::Result<String> {
    let path = path.as_ref();
    String::from_utf8(read(path)?).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// The metadata of `path` itself, without following symlinks: through an `O_PATH` descriptor,
/// so nothing is read and a directory or a file we may not read can still be looked at.
pub fn metadata(path: impl AsRef<Path>) -> io::Result<fs::Metadata> {
    let fd = open_path(path.as_ref(), OFlags::PATH, 0)?;
    File::from(fd).metadata()
}

/// Opens a directory without following symlinks.
pub fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    open_path(path, OFlags::RDONLY | OFlags::DIRECTORY, 0)
}

/// The parent directory (opened without following symlinks) and the last component of `path`.
pub(super) fn parent_of(path: &Path) -> io::Result<(OwnedFd, &OsStr)> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    Ok((open_dir(parent)?, name))
}

/// Renames within the data directory; neither path's directories are followed through symlinks
/// (a symlink at `to` itself is replaced, as `rename` always does).
pub fn rename(from: impl AsRef<Path>, to: impl AsRef<Path>) -> io::Result<()> {
    let (from, to) = (from.as_ref(), to.as_ref());
    let (a, an) = parent_of(from)?;
    let (b, bn) = parent_of(to)?;
    rustix::fs::renameat(&a, an, &b, bn).map_err(|e| refused(from, e))
}

/// Removes a file (or a symlink: never what it points to).
pub fn remove_file(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref();
    let (dir, name) = parent_of(path)?;
    rustix::fs::unlinkat(&dir, name, AtFlags::empty()).map_err(Into::into)
}

/// Removes an empty directory.
pub fn remove_dir(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref();
    let (dir, name) = parent_of(path)?;
    rustix::fs::unlinkat(&dir, name, AtFlags::REMOVEDIR).map_err(Into::into)
}

/// Removes a directory tree (a symlink in its place is removed, never followed). The parent is
/// opened without following symlinks and named through its descriptor, and std's
/// `remove_dir_all` never follows symlinks below that.
pub fn remove_dir_all(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref();
    let (dir, name) = parent_of(path)?;
    let via_fd = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd())).join(name);
    if Path::new("/proc/self/fd").is_dir() {
        fs::remove_dir_all(via_fd)
    } else {
        fs::remove_dir_all(path)
    }
}

/// For a directory whose files another library opens by path (tantivy's index): refuses the
/// directory itself if it is a symlink and removes every symlink inside it, so the library
/// finds none to follow. (A symlink planted in the instant after this remains possible; the
/// switch away from root in `privilege` is what covers that window.)
pub fn clear_symlinks(dir: &Path) -> io::Result<()> {
    let fd = open_dir(dir)?;
    let listed = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
    let entries = fs::read_dir(&listed).or_else(|_| fs::read_dir(dir))?;
    for e in entries.flatten() {
        if e.file_type().is_ok_and(|t| t.is_symlink()) {
            rustix::fs::unlinkat(&fd, e.file_name().as_os_str(), AtFlags::empty())?;
        }
    }
    Ok(())
}

/// A hard link `dst` → `src`'s inode (neither followed through symlinks).
pub fn hard_link(src: impl AsRef<Path>, dst: impl AsRef<Path>) -> io::Result<()> {
    let (src, dst) = (src.as_ref(), dst.as_ref());
    let (a, an) = parent_of(src)?;
    let (b, bn) = parent_of(dst)?;
    rustix::fs::linkat(&a, an, &b, bn, AtFlags::empty()).map_err(Into::into)
}
