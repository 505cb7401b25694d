//! Test environment for black-box tests: a temporary data directory, the built binary, a
//! scrubbed environment and a fixed clock, so every run sees the same world.

pub mod serve;

use std::cell::{Cell, RefCell};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Condvar, Mutex, MutexGuard};

/// `plugin/<trigger> args…` the way Dokku runs it, for one `dokku` command (`pid` is its
/// DOKKU_PID) at `now`: a scrubbed environment, this data dir and DOKKU_ROOT, the local identity
/// probes off (the caller adds the identity Dokku would export), durability relaxed.
pub fn plugin_trigger(
    name: &str,
    args: &[&str],
    data: &Path,
    dokku_root: &Path,
    pid: &str,
    now: &str,
) -> Command {
    let mut c = Command::new(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("plugin")
            .join(name),
    );
    c.args(args);
    scrub_env(&mut c);
    c.env("DOKKU_AUDIT_BIN", bin())
        .env("DOKKU_AUDIT_DATA_DIR", data)
        .env("DOKKU_ROOT", dokku_root)
        .env("DOKKU_PID", pid)
        .env("DOKKU_AUDIT_NOW", now)
        .env("DOKKU_AUDIT_SUDO_USER", "")
        .env("DOKKU_AUDIT_LOCAL_USER", "")
        .env("DOKKU_AUDIT_EFFECTIVE_USER", "")
        .env("DOKKU_AUDIT_PROCESS_TREE_USER", "")
        .env("DOKKU_AUDIT_DURABILITY", "relaxed");
    c
}

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
    claim();
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

/// Every test runs in one process (tests/tests.rs), two or more at a time, next to tests of
/// other files. A test that loads the whole machine on purpose (tests/load.rs's CPU hogs) would
/// make its neighbour miss a deadline ("exits within a second"), which could not happen while
/// each file was its own binary and the binaries ran one after another. So such a test holds
/// [`exclusive`], and every test that runs the binary holds a shared claim from its first
/// [`scrub_env`] or [`TestEnv::new`] until its thread ends: an exclusive test starts only when no
/// other test holds a claim, and no test takes a claim while it runs.
///
/// Claims belong to libtest's test threads, which carry the test's name. Threads a test spawns
/// are unnamed and take none (their test's claim covers them, and the exclusive test's own
/// helpers must not wait for it); with `--test-threads=1` tests may run on `main`, alone anyway.
struct Gate {
    shared: usize,
    exclusive: bool,
}

static GATE: Mutex<Gate> = Mutex::new(Gate {
    shared: 0,
    exclusive: false,
});
static GATE_TURN: Condvar = Condvar::new();

/// A test thread's shared claim, released when the thread ends.
struct Claim;

impl Drop for Claim {
    fn drop(&mut self) {
        gate().shared -= 1;
        GATE_TURN.notify_all();
    }
}

thread_local! {
    static CLAIM: RefCell<Option<Claim>> = const { RefCell::new(None) };
    /// This thread holds the exclusive claim.
    static EXCLUSIVE_HERE: Cell<bool> = const { Cell::new(false) };
}

fn gate() -> MutexGuard<'static, Gate> {
    // A test that panicked while holding the lock leaves plain counters behind: still valid.
    GATE.lock().unwrap_or_else(|e| e.into_inner())
}

fn is_test_thread() -> bool {
    std::thread::current().name().is_some_and(|n| n != "main")
}

/// Takes this test thread's shared claim, once; see [`Gate`].
fn claim() {
    if !is_test_thread() || EXCLUSIVE_HERE.with(Cell::get) {
        return;
    }
    CLAIM.with(|c| {
        let mut c = c.borrow_mut();
        if c.is_none() {
            let mut g = gate();
            while g.exclusive {
                g = GATE_TURN.wait(g).unwrap_or_else(|e| e.into_inner());
            }
            g.shared += 1;
            *c = Some(Claim);
        }
    });
}

/// The claim of a test that must not share the machine, released on drop.
pub struct Exclusive(());

/// Waits until no other test holds a claim, then keeps every other test from taking one until
/// the returned value drops; see [`Gate`]. Shared claims never wait for a waiting exclusive one
/// (so nothing can deadlock); a test thread that ends always gives the waiter its turn.
pub fn exclusive() -> Exclusive {
    // This thread's own shared claim, if it took one already, must not block it.
    CLAIM.with(|c| c.borrow_mut().take());
    let mut g = gate();
    while g.exclusive || g.shared > 0 {
        g = GATE_TURN.wait(g).unwrap_or_else(|e| e.into_inner());
    }
    g.exclusive = true;
    EXCLUSIVE_HERE.with(|h| h.set(true));
    Exclusive(())
}

impl Drop for Exclusive {
    fn drop(&mut self) {
        EXCLUSIVE_HERE.with(|h| h.set(false));
        gate().exclusive = false;
        GATE_TURN.notify_all();
    }
}

/// A temp dir with a data directory inside it.
pub struct TestEnv {
    pub tmp: tempfile::TempDir,
    pub data: PathBuf,
    pub extra_env: Vec<(String, String)>,
}

impl TestEnv {
    pub fn new() -> TestEnv {
        claim();
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
