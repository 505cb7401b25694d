//! The exclusive writer lock (`<data dir>/LOCK`, and the state's `state/LOCK`).

use std::fs::File;
use std::path::Path;
use std::time::{Duration, Instant};

use fs4::fs_std::FileExt;

use super::{open_create, FsError, Ownership, Result};

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
                Err(e) => return Err(FsError::io("lock", path)(e)),
            }
            if start.elapsed() >= timeout {
                return Err(FsError::LockBusy {
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
