//! Test environment for black-box tests: a temporary data directory, the built binary, a
//! scrubbed environment and a fixed clock, so every run sees the same world.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The built binary.
pub fn bin() -> PathBuf {
    // DOKKU_AUDIT_TEST_BIN runs the black-box tests against another build (e.g. the previous
    // release, to show a security test fails there).
    match std::env::var_os("DOKKU_AUDIT_TEST_BIN").filter(|v| !v.is_empty()) {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_BIN_EXE_dokku-audit")),
    }
}

/// Removes from `c` everything of this machine's environment that the hook reads as identity
/// or configuration (`DOKKU_*`, `SSH_*`, `SUDO_*`, sshcommand's `NAME` and `FINGERPRINT`), and
/// pins "no runtime user" (src/privilege.rs) whatever accounts this machine has. The one scrub
/// every black-box test uses; a test that wants a runtime user sets it afterwards.
pub fn scrub_env(c: &mut Command) {
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("DOKKU_")
            || k.starts_with("SSH_")
            || k.starts_with("SUDO_")
            || k == "NAME"
            || k == "FINGERPRINT"
        {
            c.env_remove(&k);
        }
    }
    c.env("DOKKU_AUDIT_RUNTIME_USER", "dokku-audit-test-nobody");
}

/// A temp dir with a data directory inside it.
pub struct TestEnv {
    pub tmp: tempfile::TempDir,
    pub data: PathBuf,
    pub extra_env: Vec<(String, String)>,
}

impl TestEnv {
    pub fn new() -> TestEnv {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data = tmp.path().join("data");
        TestEnv {
            tmp,
            data,
            extra_env: Vec::new(),
        }
    }

    pub fn env(mut self, k: &str, v: &str) -> TestEnv {
        self.extra_env.push((k.into(), v.into()));
        self
    }

    pub fn segments_dir(&self) -> PathBuf {
        self.data.join("segments")
    }

    /// A command for the binary with a clean environment.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.args(args);
        scrub_env(&mut c);
        c.env("DOKKU_AUDIT_DATA_DIR", &self.data)
            .env("DOKKU_AUDIT_NOW", "2026-04-08T20:00:00Z")
            .env("DOKKU_AUDIT_SUDO_USER", "")
            .env("DOKKU_AUDIT_LOCAL_USER", "")
            .env("DOKKU_AUDIT_EFFECTIVE_USER", "")
            .env("DOKKU_AUDIT_PROCESS_TREE_USER", "")
            .env("DOKKU_AUDIT_DURABILITY", "relaxed");
        for (k, v) in &self.extra_env {
            c.env(k, v);
        }
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args)
            .stdin(Stdio::null())
            .output()
            .expect("run binary")
    }

    pub fn run_stdin(&self, args: &[&str], input: &[u8]) -> Output {
        use std::io::Write;
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        child.stdin.take().unwrap().write_all(input).unwrap();
        child.wait_with_output().unwrap()
    }

    /// Runs and asserts success, returning stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "{args:?} failed: {}", stderr(&out));
        String::from_utf8(out.stdout).expect("utf8 stdout")
    }

    /// Writes `text` to a file in the temp dir and returns its path.
    pub fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.tmp.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    /// Segment files with a suffix, sorted.
    pub fn segment_files(&self, suffix: &str) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(self.segments_dir())
            .map(|rd| rd.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default();
        v.retain(|p| p.to_string_lossy().ends_with(suffix));
        v.sort();
        v
    }

    /// The active segment: the newest `.jsonl` without a sealed twin.
    pub fn active_segment(&self) -> Option<PathBuf> {
        self.segment_files(".jsonl")
            .into_iter()
            .rev()
            .find(|p| !Path::new(&format!("{}.zst", p.display())).exists())
    }

    /// Exported events as JSON values.
    pub fn export_events(&self) -> Vec<serde_json::Value> {
        self.ok(&["export", "--format", "jsonl"])
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_str(l).expect("export line is JSON"))
            .collect()
    }
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `count` realistic events as JSONL (ids 0: import assigns them).
pub fn demo_jsonl(count: usize, days: u32) -> Vec<u8> {
    let end = dokku_audit::timefmt::parse_canonical("2026-04-08T19:00:00Z").unwrap();
    let mut out = Vec::new();
    for e in dokku_audit::demo::history(count, days, end, 7) {
        out.extend_from_slice(&e.to_json_bytes());
        out.push(b'\n');
    }
    out
}

/// Asserts a Dokku-style one-line error.
pub fn assert_dokku_error(o: &Output, needle: &str) {
    assert_eq!(o.status.code(), Some(1), "exit code; stderr: {}", stderr(o));
    let err = stderr(o);
    assert!(err.starts_with(" !     "), "not Dokku style: {err:?}");
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "more than one line: {err:?}"
    );
    assert!(err.contains(needle), "{err:?} does not mention {needle:?}");
    assert!(!err.contains("panicked"), "{err}");
}

/// Every file under `dir`, with its content as a reader sees it: a zstd frame (a sealed
/// segment) decompressed. What every "no secret on disk" test searches — segments, index,
/// state, spool, quarantine, backups alike.
pub fn files_as_read(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(bytes) = std::fs::read(&p) {
                let bytes = match bytes.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
                    true => zstd::stream::decode_all(&bytes[..]).unwrap_or(bytes),
                    false => bytes,
                };
                out.push((p, bytes));
            }
        }
    }
    out.sort();
    out
}

/// `needle` (non-empty) occurs in `hay`.
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}
