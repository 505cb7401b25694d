//! Crash tests: processes appending through the real binary are killed with SIGKILL — at random
//! moments by a controller, and at named crash points (`DOKKU_AUDIT_CRASH_AT`, see
//! `src/crashpoint.rs`) inside the short windows random kills rarely hit: mid-write, before and
//! after fsync, rotation, sealing, torn-tail repair, prune and vacuum (before and after their
//! journal), backup and restore. Afterwards every event whose append was acknowledged (exit 0
//! in strict mode) is present exactly once, no event is present twice, ids are unique and
//! increasing, `verify` passes, and the next append repairs or finishes whatever was cut short.
//!
//! `CRASH_ROUNDS` (default 8) and `CRASH_ROUND_MS` (default 1500) scale the random-kill test;
//! `tests/RELIABILITY.md` has the figures and the commands that reproduce them.

use std::collections::{BTreeMap, HashMap};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::util;
use serde_json::Value;

/// A data directory and the environment every process of a test shares.
struct Store {
    _tmp: tempfile::TempDir,
    data: PathBuf,
}

impl Store {
    fn new() -> Store {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data = tmp.path().join("data");
        Store { _tmp: tmp, data }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(util::bin());
        c.args(args);
        util::scrub_env(&mut c);
        c.env("DOKKU_AUDIT_DATA_DIR", &self.data)
            .env("DOKKU_AUDIT_NOW", "2026-04-08T20:00:00Z")
            .env("DOKKU_AUDIT_SUDO_USER", "")
            .env("DOKKU_AUDIT_LOCAL_USER", "")
            .env("DOKKU_AUDIT_EFFECTIVE_USER", "")
            .env("DOKKU_AUDIT_PROCESS_TREE_USER", "")
            // Acknowledged means recorded: a trigger that could not record exits 1.
            .env("DOKKU_AUDIT_STRICT_MODE", "true")
            .env("DOKKU_AUDIT_HOOK_TIMEOUT_MS", "5000")
            // Small segments: rotation and sealing happen every few dozen events.
            .env("DOKKU_AUDIT_SEGMENT_MAX_BYTES", "4096")
            .env("DOKKU_AUDIT_SEAL_GRACE_SECONDS", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run dokku-audit")
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "{args:?} failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// An app-create event whose app name is `marker`; `Some(exit status)`.
    fn create_app(&self, marker: &str) -> Output {
        self.run(&["hook", "post-create", marker])
    }

    /// A domains event, mixed in with the app events: what the prunes in these tests delete
    /// (so sealed segments are rewritten, some to start at a later id, not only deleted whole).
    fn junk(&self, n: u64) -> Output {
        self.command(&[
            "hook",
            "post-domains-update",
            "junk",
            "add",
            &format!("j{n}.example"),
        ])
        .output()
        .expect("run junk")
    }

    /// Prune of every domains event (they are all older than a day, twelve days later).
    fn prune_junk(&self) -> Command {
        let mut c = self.command(&[
            "prune",
            "--category",
            "domains",
            "--older-than",
            "1",
            "--yes",
        ]);
        c.env("DOKKU_AUDIT_NOW", "2026-04-20T20:00:00Z");
        c
    }

    fn events(&self) -> Vec<Value> {
        let out = self.ok(&["export", "--format", "jsonl"]);
        out.lines()
            .map(|l| serde_json::from_str(l).expect("export line is JSON"))
            .collect()
    }

    /// Verify must pass; returns its output.
    fn verify_ok(&self) -> String {
        let o = self.run(&["verify"]);
        assert!(
            o.status.success(),
            "verify failed:\n{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }
}

fn killed(o: &Output) -> bool {
    o.status.signal() == Some(libc::SIGKILL)
}

/// Checks the promises after a crash and one recovering append: every acknowledged marker
/// exactly once, no marker twice, ids unique and increasing, `verify` green. Returns the events.
fn check_store(store: &Store, acked: &[String]) -> Vec<Value> {
    let o = store.create_app("after-crash");
    assert!(
        o.status.success(),
        "the append after the crash failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    store.verify_ok();
    let events = store.events();
    let mut seen: HashMap<String, u64> = HashMap::new();
    let mut last_id = 0;
    for e in &events {
        let id = e["id"].as_u64().expect("id");
        assert!(id > last_id, "ids not increasing: {id} after {last_id}");
        last_id = id;
        if e["action"] == "create" && e["category"] == "app" {
            *seen
                .entry(e["app"].as_str().unwrap_or("").to_string())
                .or_default() += 1;
        }
    }
    for (marker, n) in &seen {
        assert!(
            *n <= 1 || marker == "after-crash",
            "{marker} recorded {n} times"
        );
    }
    for m in acked {
        assert_eq!(seen.get(m), Some(&1), "acknowledged event {m} lost");
    }
    events
}

/// The index (what `recent` answers from) must agree with the segments (what `export` reads)
/// after a crash: no event it lost, none it kept after the segments dropped it.
fn index_agrees_with_segments(store: &Store) {
    let ids = |out: String| -> Vec<u64> {
        let mut v: Vec<u64> = out
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).expect("JSON line")["id"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        v.sort_unstable();
        v
    };
    let indexed = ids(store.ok(&["recent", "--limit", "1000000", "--format", "jsonl"]));
    let stored = ids(store.ok(&["export", "--format", "jsonl"]));
    assert_eq!(indexed, stored, "index and segments disagree");
}

/// A store with sealed segments, old junk mixed into them (for prune to rewrite) and an active
/// segment; returns the acknowledged markers.
fn seeded(store: &Store, prefix: &str, n: u64) -> Vec<String> {
    let mut acked = Vec::new();
    for i in 0..n {
        let m = format!("{prefix}-{i}");
        let o = store.create_app(&m);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        acked.push(m);
        if i % 4 == 0 {
            assert!(store.junk(i).status.success());
        }
    }
    acked
}

fn count_maintenance(events: &[Value], action: &str) -> usize {
    events
        .iter()
        .filter(|e| e["category"] == "maintenance" && e["action"] == action)
        .count()
}

fn junk_left(events: &[Value]) -> usize {
    events.iter().filter(|e| e["category"] == "domains").count()
}

/// Runs `cmd` with the crash point armed, repeating with fresh markers until the process is
/// killed (some points are only reached once a segment fills up). Returns the markers that
/// were acknowledged on the way.
fn run_until_killed(store: &Store, point: &str, limit: u32) -> Vec<String> {
    let mut acked = Vec::new();
    for i in 0..limit {
        let m = format!("{point}-{i}");
        let o = store
            .command(&["hook", "post-create", &m])
            .env("DOKKU_AUDIT_CRASH_AT", point)
            .output()
            .expect("run");
        if killed(&o) {
            return acked;
        }
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        acked.push(m);
    }
    panic!("crash point {point} never reached in {limit} appends");
}

#[test]
fn append_crash_points_lose_nothing_acknowledged() {
    for point in [
        "append.partial_write",
        "append.before_fsync",
        "append.after_fsync",
        "rotate.before_seal",
        "seal.before_rename",
        "seal.after_rename",
    ] {
        let store = Store::new();
        let mut acked = seeded(&store, "seed", 30);
        acked.extend(run_until_killed(&store, point, 200));
        let events = check_store(&store, &acked);
        if point == "append.partial_write" {
            // Half a line was left: the next append cut it off, kept it, and said so.
            assert_eq!(count_maintenance(&events, "repair"), 1, "{point}");
            let q = std::fs::read_dir(store.data.join("quarantine"))
                .unwrap()
                .count();
            assert_eq!(q, 1, "the torn bytes are kept in quarantine/");
        }
    }
}

#[test]
fn crash_during_torn_tail_repair_recovers() {
    let store = Store::new();
    let mut acked = seeded(&store, "seed", 10);
    acked.extend(run_until_killed(&store, "append.partial_write", 5));
    acked.extend(run_until_killed(&store, "repair.after_truncate", 5));
    let events = check_store(&store, &acked);
    // The torn bytes were cut and kept before the crash; the interrupted repair is not
    // recorded twice and nothing else was removed.
    assert!(count_maintenance(&events, "repair") <= 1);
    assert!(store.data.join("quarantine").read_dir().unwrap().count() >= 1);
}

#[test]
fn prune_and_vacuum_crash_points_complete_or_leave_the_store_untouched() {
    for point in [
        "compact.after_record",
        "compact.after_journal",
        "compact.after_first_rename",
        "compact.before_journal_removal",
    ] {
        // Prune: junk is mixed into sealed segments, so segments are rewritten (some starting
        // at a later id than the file they replace) and some deleted whole.
        let store = Store::new();
        let acked = seeded(&store, "seed", 60);
        // An index caught up before the prune, so the crash can leave it behind the segments.
        index_agrees_with_segments(&store);
        let o = store
            .prune_junk()
            .env("DOKKU_AUDIT_CRASH_AT", point)
            .output()
            .unwrap();
        assert!(killed(&o), "prune did not reach {point}: {o:?}");
        // Readers see one consistent state even before a writer finishes the work.
        store.verify_ok();
        if point != "compact.after_record" {
            let doctor = store.run(&["doctor"]);
            let text = String::from_utf8_lossy(&doctor.stdout);
            assert!(
                text.contains("interrupted prune/vacuum is pending"),
                "{text}"
            );
        }
        let events = check_store(&store, &acked);
        index_agrees_with_segments(&store);
        if point == "compact.after_record" {
            // Crashed before the journal: nothing was changed; running it again does it.
            assert!(junk_left(&events) > 0);
            assert!(store.prune_junk().output().unwrap().status.success());
            let events = check_store(&store, &acked);
            assert_eq!(junk_left(&events), 0);
        } else {
            // The journal was durable: the next writer finished the prune and said so.
            assert_eq!(junk_left(&events), 0, "{point}: prune not completed");
            assert_eq!(count_maintenance(&events, "recover"), 1, "{point}");
        }
        assert!(!store.data.join("compact.journal").exists());

        // Vacuum: merging small sealed segments.
        let store = Store::new();
        let acked = seeded(&store, "seed", 60);
        let o = store
            .command(&["vacuum"])
            .env("DOKKU_AUDIT_SEGMENT_MAX_BYTES", "65536")
            .env("DOKKU_AUDIT_CRASH_AT", point)
            .output()
            .unwrap();
        assert!(killed(&o), "vacuum did not reach {point}: {o:?}");
        store.verify_ok();
        index_agrees_with_segments(&store);
        let before = store.events().len();
        check_store(&store, &acked);
        // The next append adds itself and, when it finished the merge, a `recover` event.
        let recovered = usize::from(point != "compact.after_record");
        assert_eq!(store.events().len(), before + 1 + recovered, "{point}");
    }
}

#[test]
fn backup_and_restore_crash_points_keep_the_live_history() {
    // A backup killed before it is complete leaves no backup behind, and the next one works.
    let store = Store::new();
    let acked = seeded(&store, "seed", 20);
    let dest = store.data.join("backups/b1");
    let o = store
        .command(&["backup", "--output", dest.to_str().unwrap()])
        .env("DOKKU_AUDIT_CRASH_AT", "backup.before_rename")
        .output()
        .unwrap();
    assert!(killed(&o));
    assert!(
        !dest.exists(),
        "a half-made backup must not look like a backup"
    );
    store.ok(&["backup", "--output", dest.to_str().unwrap()]);
    check_store(&store, &acked);

    // A restore killed between moving the live segments aside and moving the restored ones in
    // is rolled back by the next writer: the live history, including what came after the
    // backup, is all there.
    let mut acked = acked;
    acked.extend(seeded(&store, "late", 10));
    let o = store
        .command(&["restore", dest.to_str().unwrap(), "--yes"])
        .env("DOKKU_AUDIT_CRASH_AT", "restore.after_move_aside")
        .output()
        .unwrap();
    assert!(killed(&o), "restore did not reach its crash point: {o:?}");
    assert!(!store.data.join("segments").exists());
    // doctor says what happened; vacuum (which removes leftovers) must not take the live
    // history moved aside for a leftover: it moves it back first.
    let doctor = store.run(&["doctor"]);
    let text = String::from_utf8_lossy(&doctor.stdout);
    assert!(text.contains("interrupted restore"), "{text}");
    store.ok(&["vacuum"]);
    let events = check_store(&store, &acked);
    assert_eq!(count_maintenance(&events, "recover"), 1);
    // And a restore that is not interrupted still works afterwards.
    store.ok(&["restore", dest.to_str().unwrap(), "--yes"]);
    store.verify_ok();
}

/// What the random-kill rounds counted.
#[derive(Default, Debug)]
struct Tally {
    rounds: u64,
    kills: AtomicU64,
    killed_writers: AtomicU64,
    killed_maintenance: AtomicU64,
    acked: AtomicU64,
    refused: AtomicU64,
    maintenance_runs: AtomicU64,
}

/// Running children, by pid, for the controller to pick from.
type Running = Arc<Mutex<BTreeMap<u32, &'static str>>>;

fn spawn_tracked(mut cmd: Command, running: &Running, kind: &'static str) -> (u32, Child) {
    let child = cmd.spawn().expect("spawn");
    let pid = child.id();
    running.lock().unwrap().insert(pid, kind);
    (pid, child)
}

fn wait_tracked(pid: u32, child: Child, running: &Running) -> Output {
    let out = child.wait_with_output().expect("wait");
    running.lock().unwrap().remove(&pid);
    out
}

/// A small xorshift, so a failing round can be replayed with `CRASH_SEED`.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn random_kill_rounds_lose_nothing_acknowledged() {
    let rounds = env_num("CRASH_ROUNDS", 8);
    let round_ms = env_num("CRASH_ROUND_MS", 1500);
    let seed = env_num("CRASH_SEED", 0x5eed_1234_abcd_0001);
    let store = Arc::new(Store::new());
    let tally = Arc::new(Tally {
        rounds,
        ..Tally::default()
    });
    let acked_all: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    for round in 0..rounds {
        let running: Running = Arc::new(Mutex::new(BTreeMap::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        // Writers: each event a process; the marker is acknowledged only on exit 0.
        for w in 0..4 {
            let (store, running, stop, tally, acked_all) = (
                store.clone(),
                running.clone(),
                stop.clone(),
                tally.clone(),
                acked_all.clone(),
            );
            threads.push(std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::SeqCst) {
                    let marker = format!("r{round}-w{w}-e{n}");
                    n += 1;
                    let cmd = store.command(&["hook", "post-create", &marker]);
                    let (pid, child) = spawn_tracked(cmd, &running, "writer");
                    let out = wait_tracked(pid, child, &running);
                    if out.status.success() {
                        tally.acked.fetch_add(1, Ordering::SeqCst);
                        acked_all.lock().unwrap().push(marker);
                    } else if killed(&out) {
                        tally.killed_writers.fetch_add(1, Ordering::SeqCst);
                    } else {
                        // Strict mode: could not record (e.g. the lock stayed busy). Allowed,
                        // never a panic.
                        let err = String::from_utf8_lossy(&out.stderr);
                        assert!(!err.contains("panicked"), "{err}");
                        tally.refused.fetch_add(1, Ordering::SeqCst);
                    }
                }
            }));
        }
        // Junk for prune to delete, every few ms, and now and then an event of another day,
        // which rotates the active segment.
        {
            let (store, running, stop) = (store.clone(), running.clone(), stop.clone());
            threads.push(std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::SeqCst) {
                    let mut cmd = store.command(&[
                        "hook",
                        "post-domains-update",
                        "junk",
                        "add",
                        &format!("j{round}-{n}.example"),
                    ]);
                    if n % 10 == 9 {
                        cmd.env("DOKKU_AUDIT_NOW", "2026-01-15T10:00:00Z");
                    }
                    n += 1;
                    let (pid, child) = spawn_tracked(cmd, &running, "writer");
                    wait_tracked(pid, child, &running);
                    std::thread::sleep(Duration::from_millis(15));
                }
            }));
        }
        // Maintenance: prune, vacuum, backup, in turn, all of them fair game for the killer.
        {
            let (store, running, stop, tally) =
                (store.clone(), running.clone(), stop.clone(), tally.clone());
            threads.push(std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    let cmd = match n % 3 {
                        0 => store.prune_junk(),
                        1 => {
                            let mut c = store.command(&["vacuum"]);
                            c.env("DOKKU_AUDIT_SEGMENT_MAX_BYTES", "65536");
                            c
                        }
                        _ => {
                            let dest = store.data.join(format!("backups/r{round}-{n}"));
                            store.command(&["backup", "--output", dest.to_str().unwrap()])
                        }
                    };
                    n += 1;
                    let (pid, child) = spawn_tracked(cmd, &running, "maintenance");
                    let out = wait_tracked(pid, child, &running);
                    tally.maintenance_runs.fetch_add(1, Ordering::SeqCst);
                    if killed(&out) {
                        tally.killed_maintenance.fetch_add(1, Ordering::SeqCst);
                    } else {
                        let err = String::from_utf8_lossy(&out.stderr);
                        assert!(!err.contains("panicked"), "{err}");
                    }
                    std::thread::sleep(Duration::from_millis(30));
                }
            }));
        }
        // The controller: kill -9 a random running process every 2–25 ms.
        let mut rng = Rng(seed ^ (round + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let deadline = Instant::now() + Duration::from_millis(round_ms);
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2 + rng.below(24)));
            let victims: Vec<u32> = running.lock().unwrap().keys().copied().collect();
            if victims.is_empty() {
                continue;
            }
            let pid = victims[rng.below(victims.len() as u64) as usize];
            // SAFETY: kill(2) on a child we spawned and have not reaped (it is removed from
            // `running` only after wait returns).
            #[allow(unsafe_code)]
            let r = unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            if r == 0 {
                tally.kills.fetch_add(1, Ordering::SeqCst);
            }
        }
        stop.store(true, Ordering::SeqCst);
        for t in threads {
            t.join().expect("worker thread");
        }
        // After every round: the next append repairs, verify passes, nothing acknowledged lost.
        let acked = acked_all.lock().unwrap().clone();
        check_store(&store, &acked);
    }
    let acked = acked_all.lock().unwrap().len();
    let events = store.events();
    let found = events
        .iter()
        .filter(|e| e["category"] == "app" && e["action"] == "create")
        .count();
    println!(
        "crash: {} rounds in {:.1} s, {} kill -9 sent ({} writers and {} maintenance runs died), \
         {} events acknowledged, all found exactly once ({} app events in the store incl. \
         unacknowledged ones that made it), {} appends refused in strict mode, {} maintenance \
         runs, {} repairs, {} recoveries, verify ok",
        tally.rounds,
        started.elapsed().as_secs_f64(),
        tally.kills.load(Ordering::SeqCst),
        tally.killed_writers.load(Ordering::SeqCst),
        tally.killed_maintenance.load(Ordering::SeqCst),
        acked,
        found,
        tally.refused.load(Ordering::SeqCst),
        tally.maintenance_runs.load(Ordering::SeqCst),
        count_maintenance(&events, "repair"),
        count_maintenance(&events, "recover"),
    );
    assert!(
        tally.kills.load(Ordering::SeqCst) > 0,
        "the controller never killed anything"
    );
    assert!(acked > 0);
}

#[test]
fn spooled_events_are_appended_once_even_if_the_drain_is_killed() {
    use fs4::fs_std::FileExt;
    let store = Store::new();
    let mut acked = seeded(&store, "seed", 5);
    // A maintenance operation holds the writer lock for longer than the trigger budget: the
    // trigger spools its event durably and exits 0 (strict mode: it counts as recorded).
    let lock = std::fs::File::open(store.data.join("LOCK")).unwrap();
    assert!(FileExt::try_lock_exclusive(&lock).unwrap());
    for m in ["spooled-1", "spooled-2"] {
        let o = store
            .command(&["hook", "post-create", m])
            .env("DOKKU_AUDIT_HOOK_TIMEOUT_MS", "200")
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        acked.push(m.to_string());
    }
    FileExt::unlock(&lock).unwrap();
    // The next writer drains the spool, and dies after the drained events are durable but
    // before the spool files are deleted.
    let o = store
        .command(&["hook", "post-create", "drainer"])
        .env("DOKKU_AUDIT_CRASH_AT", "spool.before_remove")
        .output()
        .unwrap();
    assert!(killed(&o), "the drain did not reach its crash point: {o:?}");
    assert_eq!(
        std::fs::read_dir(store.data.join("spool")).unwrap().count(),
        2
    );
    // The writer after it finds the spooled events already stored: each exactly once.
    let events = check_store(&store, &acked);
    assert_eq!(
        std::fs::read_dir(store.data.join("spool")).unwrap().count(),
        0
    );
    let order: Vec<&str> = events
        .iter()
        .filter_map(|e| e["app"].as_str())
        .filter(|a| a.starts_with("spooled") || *a == "drainer")
        .collect();
    assert_eq!(order, ["spooled-1", "spooled-2", "drainer"]);
    assert!(events
        .iter()
        .filter(|e| e["app"] == "spooled-1")
        .all(|e| e["meta"]["spooled_from"].is_string()));
}
