//! The API's bearer token: 32 random bytes as hex in `<data dir>/serve-token` (mode 0600),
//! created on the first start, replaced by `serve --rotate-token`. The server reads the file on
//! every authenticated request (a few microseconds), so a rotation takes effect at once, without
//! a restart. Comparison is in constant time.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::ServeError;

/// The token file's name in the data directory.
pub const FILE_NAME: &str = crate::layout::SERVE_TOKEN;

/// The token file of a data directory.
pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE_NAME)
}

/// A fresh token: 32 bytes from the kernel's CSPRNG, as 64 hex digits.
fn generate() -> Result<String, ServeError> {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| ServeError::Token(format!("/dev/urandom: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Writes a new token (0600, through a temporary file renamed into place) and returns it.
pub fn rotate(data_dir: &Path) -> Result<String, ServeError> {
    use crate::safefs;
    let owner = safefs::Ownership::from_env();
    safefs::ensure_dir(data_dir, &owner)
        .map_err(|e| ServeError::Token(format!("{}: {e}", data_dir.display())))?;
    let token = generate()?;
    let target = path(data_dir);
    let text = format!("{token}\n");
    safefs::write_replace_with_mode(&target, text.as_bytes(), &owner, true, 0o600)
        .map_err(|e| ServeError::Token(e.to_string()))?;
    Ok(token)
}

/// The token in effect, created on the first call when there is none.
pub fn load_or_create(data_dir: &Path) -> Result<String, ServeError> {
    match read(data_dir)? {
        Some(t) => Ok(t),
        None => rotate(data_dir),
    }
}

/// The token in the file (`None` when the file does not exist). A file that is readable by
/// others than its owner is refused: the token would not be a secret.
pub fn read(data_dir: &Path) -> Result<Option<String>, ServeError> {
    use std::os::unix::fs::PermissionsExt;
    let p = path(data_dir);
    let meta = match std::fs::symlink_metadata(&p) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ServeError::Token(format!("{}: {e}", p.display()))),
    };
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(ServeError::Token(format!(
            "{} is readable by others: chmod 600 it, or rotate the token",
            p.display()
        )));
    }
    let text = crate::safefs::read_to_string(&p)
        .map_err(|e| ServeError::Token(format!("{}: {e}", p.display())))?;
    let t = text.trim();
    if t.len() < 32 {
        return Err(ServeError::Token(format!(
            "{} holds no usable token (at least 32 characters): rotate it",
            p.display()
        )));
    }
    Ok(Some(t.to_string()))
}

/// Equality in time that depends only on the lengths, never on where the first difference is.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// The bearer token of an `Authorization` header value. Only the header: a cookie would be sent
/// by the browser to every other port on the same host name as well (cookies ignore ports), so
/// the page keeps the token in the tab and sends the header, its event stream included.
pub fn presented(authorization: Option<&str>) -> Option<&str> {
    let (scheme, rest) = authorization?.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens() {
        let dir = tempfile::tempdir().unwrap();
        let t = load_or_create(dir.path()).unwrap();
        assert_eq!(t.len(), 64);
        assert_eq!(load_or_create(dir.path()).unwrap(), t);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path(dir.path()))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let t2 = rotate(dir.path()).unwrap();
        assert_ne!(t, t2);
        assert_eq!(read(dir.path()).unwrap().unwrap(), t2);
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert_eq!(presented(Some("Bearer xyz")), Some("xyz"));
        assert_eq!(presented(Some("bearer  xyz ")), Some("xyz"));
        assert_eq!(presented(Some("Basic xyz")), None);
        assert_eq!(presented(None), None);
    }
}
