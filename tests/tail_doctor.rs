//! Black-box tests of `tail` (newest events; `--follow` streams appends made by other processes,
//! across rotation, exactly once, never a torn line) and `doctor` (ok lines, then issue lines
//! naming their fix; exit 1 on any issue).

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use crate::util::{self, assert_dokku_error, demo_jsonl, stdout, TestEnv};

/// A `tail --follow` child and the lines it prints; killed when dropped.
struct Follow {
    child: Child,
    lines: Receiver<String>,
}

impl Follow {
    fn start(env: &TestEnv, args: &[&str]) -> Follow {
        let mut all = vec!["tail", "--follow"];
        all.extend_from_slice(args);
        let mut child = env
            .command(&all)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn tail --follow");
        let out = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Follow { child, lines: rx }
    }

    /// The next line, waiting at most `wait`.
    fn next(&self, wait: Duration) -> Option<String> {
        self.lines.recv_timeout(wait).ok()
    }

    /// Every line that arrives within `quiet` of the previous one.
    fn drain(&self, quiet: Duration) -> Vec<String> {
        let mut v = Vec::new();
        while let Some(l) = self.next(quiet) {
            v.push(l);
        }
        v
    }

    /// Event ids of lines until one with id `last` arrives (or `wait` passes).
    fn ids_until(&self, last: u64, wait: Duration) -> Vec<u64> {
        let deadline = Instant::now() + wait;
        let mut ids = Vec::new();
        while let Some(l) = self.next(deadline.saturating_duration_since(Instant::now())) {
            let id = id_of(&l);
            ids.push(id);
            if id == last {
                break;
            }
        }
        ids
    }
}

impl Drop for Follow {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn id_of(line: &str) -> u64 {
    let v: serde_json::Value = serde_json::from_str(line).expect("tail prints JSON lines");
    v["id"].as_u64().expect("an id")
}

/// Appends one event from another process, the way Dokku does: a trigger.
fn trigger(env: &TestEnv, app: &str, now: &str) {
    let out = env
        .command(&["hook", "post-create", app])
        .env("DOKKU_AUDIT_NOW", now)
        .stdin(Stdio::null())
        .output()
        .expect("run hook");
    assert!(out.status.success(), "hook failed: {}", util::stderr(&out));
}

fn export_ids(env: &TestEnv) -> Vec<u64> {
    env.export_events()
        .iter()
        .map(|e| e["id"].as_u64().unwrap())
        .collect()
}

fn import(env: &TestEnv, count: usize, days: u32) {
    let path = env.file("in.jsonl", &demo_jsonl(count, days));
    env.ok(&["import", path.to_str().unwrap()]);
}

#[test]
fn tail_prints_the_newest_events_oldest_first_as_jsonl_and_table() {
    let env = TestEnv::new();
    import(&env, 40, 3);
    assert!(
        env.segment_files(".jsonl.zst").len() >= 2,
        "daily rotation sealed segments"
    );
    let export = env.ok(&["export", "--format", "jsonl"]);
    let all: Vec<&str> = export.lines().collect();
    assert_eq!(all.len(), 41);

    // Default: the last 10, byte for byte what export prints, oldest first.
    let out = env.ok(&["tail"]);
    assert_eq!(out.lines().collect::<Vec<_>>(), all[31..].to_vec());
    // More than the newest segment holds: older segments are read too.
    let out = env.ok(&["tail", "--lines", "25"]);
    assert_eq!(out.lines().collect::<Vec<_>>(), all[16..].to_vec());
    let out = env.ok(&["tail", "-n", "1000"]);
    assert_eq!(out.lines().count(), 41);
    assert_eq!(env.ok(&["tail", "--lines", "0"]), "");

    // Table: the recent columns, aligned, ids ascending.
    let table = env.ok(&["tail", "--format", "table", "--lines", "3"]);
    let rows: Vec<&str> = table.lines().collect();
    assert_eq!(rows.len(), 4, "{table}");
    let header: Vec<&str> = rows[0].split_whitespace().collect();
    assert_eq!(
        header,
        [
            "ID",
            "TIME",
            "APP",
            "ACTOR",
            "CATEGORY",
            "ACTION",
            "CLASSIFICATION",
            "STATUS",
            "MESSAGE"
        ]
    );
    let ids: Vec<&str> = rows[1..]
        .iter()
        .map(|r| r.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(ids, ["39", "40", "41"]);
    assert!(rows[3].contains("maintenance") && rows[3].contains("import"));
    assert!(rows.iter().all(|r| !r.ends_with(' ')));
    // Columns line up: every row's TIME starts where the header's does.
    let time_col = rows[0].find("TIME").unwrap();
    assert!(rows[1..].iter().all(|r| r[time_col..].starts_with("2026-")));

    // An empty table is the header alone.
    let empty = TestEnv::new();
    empty.ok(&["migrate"]);
    let t = empty.ok(&["tail", "--format", "table"]);
    let lines: Vec<&str> = t.lines().collect();
    assert!(lines.len() <= 2 && lines[0].starts_with("ID  TIME"), "{t}");
}

#[test]
fn tail_rejects_bad_flags_dokku_style_and_needs_a_data_dir() {
    let env = TestEnv::new();
    import(&env, 3, 0);
    assert_dokku_error(&env.run(&["tail", "--format", "csv"]), "csv");
    assert_dokku_error(&env.run(&["tail", "--lines", "many"]), "many");
    assert_dokku_error(&env.run(&["tail", "--lines"]), "lines");
    assert_dokku_error(&env.run(&["tail", "--bogus"]), "bogus");
    let none = TestEnv::new();
    assert_dokku_error(&none.run(&["tail"]), "does not exist");
}

/// Every path in the data directory with its size, mtime and mode.
fn tree(env: &TestEnv) -> String {
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "cd '{}' && find . -printf '%p %s %T@ %m\\n' | sort",
            env.data.display()
        ))
        .output()
        .unwrap();
    assert!(out.status.success());
    stdout(&out)
}

#[test]
fn tail_is_a_pure_reader() {
    let env = TestEnv::new();
    import(&env, 20, 2);
    let before = tree(&env);
    env.ok(&["tail", "-n", "5"]);
    env.ok(&["tail", "--format", "table"]);
    let f = Follow::start(&env, &["-n", "2"]);
    assert_eq!(f.drain(Duration::from_millis(500)).len(), 2);
    drop(f);
    assert_eq!(before, tree(&env), "tail changed the data directory");
}

/// Sends a signal to a child (`STOP`/`CONT`).
fn signal(child: &Child, sig: &str) {
    let ok = std::process::Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(child.id().to_string())
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{sig}");
}

/// Follows while other processes append, rotating by size and by UTC day. With `pause`, the
/// follower is stopped during the appends, so it resumes behind several rotations.
fn follow_across_rotation(env: &TestEnv, pause: bool) {
    trigger(env, "first", "2026-04-08T20:00:00Z");
    trigger(env, "second", "2026-04-08T20:00:01Z");
    let f = Follow::start(env, &[]);
    // The two existing events come first (the sync point: the follower is running).
    let start = f.ids_until(2, Duration::from_secs(5));
    assert_eq!(start, [1, 2]);

    // One append by another process shows within a second.
    trigger(env, "third", "2026-04-08T20:00:02Z");
    let t = Instant::now();
    let line = f.next(Duration::from_secs(1)).expect("event within 1 s");
    assert!(t.elapsed() < Duration::from_secs(1));
    assert_eq!(id_of(&line), 3);
    assert!(line.contains("\"app\":\"third\""), "{line}");

    // Many appends: 4096-byte segments rotate every few events; then a new UTC day.
    if pause {
        signal(&f.child, "STOP");
    }
    for i in 0..30 {
        trigger(env, &format!("app{i}"), "2026-04-08T21:00:00Z");
    }
    for i in 0..5 {
        trigger(env, &format!("next-day{i}"), "2026-04-09T08:00:00Z");
    }
    if pause {
        signal(&f.child, "CONT");
    }
    let ids = export_ids(env);
    let last = *ids.last().unwrap();
    let got = f.ids_until(last, Duration::from_secs(10));
    let mut seen = start;
    seen.push(3);
    seen.extend(got);
    assert_eq!(seen, ids, "every event exactly once, in id order");
    assert!(
        env.segment_files(".jsonl.zst").len() >= 4,
        "the appends rotated several times: {:?}",
        env.segment_files(".jsonl.zst")
    );
    // Nothing more is printed.
    assert_eq!(f.drain(Duration::from_millis(400)), Vec::<String>::new());
}

#[test]
fn follow_shows_appends_from_other_processes_across_rotation_exactly_once() {
    // Plain copies stay for the grace period: the follower finishes the old plain file.
    let env = TestEnv::new().env("DOKKU_AUDIT_SEGMENT_MAX_BYTES", "4096");
    follow_across_rotation(&env, false);
    assert!(!env.segment_files(".jsonl").is_empty());
}

#[test]
fn follow_reads_sealed_segments_when_plain_copies_are_gone() {
    // No grace period: plain copies are deleted by the next append. The follower is paused
    // while several segments are written, sealed and their plain copies deleted, so it must
    // finish the one it was reading, and read the ones after it, from the sealed files.
    let env = TestEnv::new()
        .env("DOKKU_AUDIT_SEGMENT_MAX_BYTES", "4096")
        .env("DOKKU_AUDIT_SEAL_GRACE_SECONDS", "0");
    follow_across_rotation(&env, true);
    let plain = env.segment_files(".jsonl");
    assert_eq!(
        plain.len(),
        1,
        "only the active segment is plain: {plain:?}"
    );
}

#[test]
fn follow_never_prints_a_torn_line() {
    // Two stores with the same history: `twin` writes the next line, whose bytes are then
    // copied into `env`'s active segment in two pieces, as a slow writer would.
    let env = TestEnv::new();
    let twin = TestEnv::new();
    for e in [&env, &twin] {
        trigger(e, "one", "2026-04-08T20:00:00Z");
        trigger(e, "two", "2026-04-08T20:00:01Z");
    }
    trigger(&twin, "three", "2026-04-08T20:00:02Z");
    let active = env.active_segment().unwrap();
    let mine = std::fs::read(&active).unwrap();
    let theirs = std::fs::read(twin.active_segment().unwrap()).unwrap();
    assert_eq!(&theirs[..mine.len()], &mine[..], "same history, same bytes");
    let next_line = &theirs[mine.len()..];
    assert!(next_line.ends_with(b"\n"));

    let f = Follow::start(&env, &["--lines", "5"]);
    assert_eq!(f.ids_until(2, Duration::from_secs(5)), [1, 2]);
    let append = |bytes: &[u8]| {
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&active)
            .unwrap();
        file.write_all(bytes).unwrap();
    };
    // Half a line: nothing is printed.
    let half = next_line.len() / 2;
    append(&next_line[..half]);
    assert_eq!(f.next(Duration::from_millis(700)), None);
    // The rest of it: printed once, whole.
    append(&next_line[half..]);
    let line = f.next(Duration::from_secs(1)).expect("completed line");
    assert_eq!(id_of(&line), 3);
    assert!(line.contains("\"app\":\"three\""));
    assert!(
        !line.contains("\"crc\""),
        "integrity fields are not printed"
    );

    // Garbage without a newline (a crash leftover): never printed; the next writer cuts it,
    // records the repair, and both events show.
    append(b"{\"id\":4,\"ts\":\"2026-04-08T20:00:03Z\",\"app\":\"garbage");
    assert_eq!(f.next(Duration::from_millis(700)), None);
    trigger(&env, "four", "2026-04-08T20:00:04Z");
    let lines = f.drain(Duration::from_millis(800));
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines.iter().all(|l| !l.contains("garbage")));
    let v: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(v["action"], "repair");
    assert!(lines[1].contains("\"app\":\"four\""));
    assert!(id_of(&lines[0]) > 3 && id_of(&lines[1]) > id_of(&lines[0]));
}

#[test]
fn follow_table_prints_the_header_once_then_rows_as_they_come() {
    let env = TestEnv::new();
    trigger(&env, "one", "2026-04-08T20:00:00Z");
    let f = Follow::start(&env, &["--format", "table"]);
    let header = f.next(Duration::from_secs(5)).unwrap();
    assert_eq!(
        header,
        "ID  TIME  APP  ACTOR  CATEGORY  ACTION  CLASSIFICATION  STATUS  MESSAGE"
    );
    let row = f.next(Duration::from_secs(5)).unwrap();
    assert!(row.starts_with("1  2026-04-08T20:00:00Z  one  "), "{row}");
    trigger(&env, "tw\u{1b}[31mo", "2026-04-08T20:00:01Z");
    let row = f.next(Duration::from_secs(1)).expect("row within 1 s");
    assert!(row.starts_with("2  "), "{row}");
    assert!(
        !row.contains('\u{1b}'),
        "control characters neutralised: {row:?}"
    );
    assert_eq!(f.drain(Duration::from_millis(400)), Vec::<String>::new());
}

#[test]
fn follow_exits_quietly_when_its_reader_goes_away() {
    let env = TestEnv::new();
    import(&env, 5, 0);
    // `| head -n 2`: the pipe closes while more is being written.
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "set -o pipefail; '{}' tail --follow | head -n 2",
            util::bin().display()
        ))
        .env("DOKKU_AUDIT_DATA_DIR", &env.data)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", util::stderr(&out));
    assert_eq!(stdout(&out).lines().count(), 2);
    assert_eq!(util::stderr(&out), "");
    // The reader goes away while nothing is being written: tail notices and exits 0.
    let t = Instant::now();
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "set -o pipefail; '{}' tail --follow --lines 0 | (sleep 0.3; true)",
            util::bin().display()
        ))
        .env("DOKKU_AUDIT_DATA_DIR", &env.data)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", util::stderr(&out));
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    assert_eq!(util::stderr(&out), "");
}

// ---------------------------------------------------------------------------------------------
// doctor

/// Runs doctor: (exit code, ok lines, issue lines), checking the shape on the way.
fn doctor(env: &TestEnv) -> (i32, Vec<String>, Vec<String>) {
    doctor_at(env, "2026-04-08T20:00:00Z")
}

fn doctor_at(env: &TestEnv, now: &str) -> (i32, Vec<String>, Vec<String>) {
    let out = env
        .command(&["doctor"])
        .env("DOKKU_AUDIT_NOW", now)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = stdout(&out);
    let mut ok = Vec::new();
    let mut issues = Vec::new();
    for l in text.lines() {
        if let Some(rest) = l.strip_prefix("ok: ") {
            assert!(issues.is_empty(), "ok line after an issue line:\n{text}");
            ok.push(rest.to_string());
        } else if let Some(rest) = l.strip_prefix("issue: ") {
            issues.push(rest.to_string());
        } else {
            panic!("unexpected doctor line {l:?}:\n{text}");
        }
    }
    let code = out.status.code().unwrap_or(-1);
    assert_eq!(code == 0, issues.is_empty(), "exit code vs issues:\n{text}");
    assert!(!util::stderr(&out).contains("panicked"));
    (code, ok, issues)
}

fn healthy_store() -> TestEnv {
    let env = TestEnv::new().env("DOKKU_AUDIT_SEGMENT_MAX_BYTES", "4096");
    import(&env, 60, 2);
    // Build the index.
    env.ok(&["recent", "--limit", "1"]);
    assert!(env.segment_files(".jsonl.zst").len() >= 2);
    env
}

/// A directory as the store makes them (2770), so permissions stay healthy.
fn mkdir_2770(p: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(p).unwrap();
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o2770)).unwrap();
}

fn has_issue(issues: &[String], needles: &[&str]) -> bool {
    issues.iter().any(|i| needles.iter().all(|n| i.contains(n)))
}

#[test]
fn doctor_on_a_healthy_store_prints_only_ok_lines() {
    let env = healthy_store();
    let before = tree(&env);
    let (code, ok, issues) = doctor(&env);
    assert_eq!(code, 0, "{issues:?}");
    assert!(issues.is_empty());
    assert_eq!(before, tree(&env), "doctor changed the data directory");
    let all = ok.join("\n");
    for needle in [
        "data directory exists",
        "permissions: nothing accessible to others",
        "format version 1",
        "segments: ",
        "every checksum, id and the hash chain verify: 61 events",
        "search index opens, schema ok, up to date",
        "no stale pending deploy entries",
        "no leftover temporary files",
        "no foreign files in segments/",
        "free space: ",
        "filesystem: ",
        "settings are valid",
    ] {
        assert!(all.contains(needle), "missing {needle:?} in\n{all}");
    }
    // Index lag is fine: a new event not yet indexed is not an issue.
    trigger(&env, "late", "2026-04-08T20:00:00Z");
    let (code, ok, _) = doctor(&env);
    assert_eq!(code, 0);
    assert!(ok.iter().any(|l| l.contains("1 event(s) behind")), "{ok:?}");
    // A torn tail of the active segment is ok, with a note.
    let active = env.active_segment().unwrap();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(active)
        .unwrap();
    f.write_all(b"{\"id\":99,\"ts\":").unwrap();
    let (code, ok, _) = doctor(&env);
    assert_eq!(code, 0);
    assert!(ok.iter().any(|l| l.contains("torn final line")), "{ok:?}");
}

#[test]
fn doctor_owner_check_uses_the_runtime_user() {
    let env = healthy_store();
    let (_, ok, _) = doctor(&env);
    let missing = TestEnv::new()
        .env("DOKKU_AUDIT_RUNTIME_USER", "no-such-user-here")
        .env("DOKKU_AUDIT_SEGMENT_MAX_BYTES", "4096");
    import(&missing, 3, 0);
    let (code, ok2, _) = doctor(&missing);
    assert_eq!(code, 0);
    assert!(
        ok2.iter()
            .any(|l| l.contains("runtime user no-such-user-here does not exist")),
        "{ok2:?}"
    );
    assert!(!ok.is_empty());
    // Running as root, with root as the runtime user: everything is root's.
    let uid = stdout(&std::process::Command::new("id").arg("-u").output().unwrap());
    if uid.trim() == "0" {
        let env = TestEnv::new().env("DOKKU_AUDIT_RUNTIME_USER", "root");
        import(&env, 3, 0);
        let (code, ok, issues) = doctor(&env);
        assert_eq!(code, 0, "{issues:?}");
        assert!(
            ok.iter().any(|l| l == "everything is owned by root:root"),
            "{ok:?}"
        );
    }
}

#[test]
fn doctor_reports_a_flipped_byte_in_a_sealed_segment() {
    let env = healthy_store();
    let seg = env.segment_files(".jsonl.zst")[0].clone();
    let mut bytes = std::fs::read(&seg).unwrap();
    let mid = bytes.len() / 3;
    bytes[mid] ^= 0x01;
    std::fs::write(&seg, bytes).unwrap();
    let name = seg.file_name().unwrap().to_string_lossy().into_owned();
    let (code, _, issues) = doctor(&env);
    assert_eq!(code, 1);
    assert!(
        has_issue(&issues, &[&name, "(run: dokku audit:verify"]),
        "{issues:?}"
    );
}

#[test]
fn doctor_reports_stale_correlation_state_by_the_configured_clock() {
    let env = healthy_store();
    let at = 1_775_505_600; // 2026-04-06T20:00:00Z
    let state = serde_json::json!({
        "contexts": [{
            "pid": null, "app": "myapp", "kind": "config", "source_subcommand": "config:set",
            "command_text": "dokku config:set myapp FOO=[REDACTED]",
            "actor": {"actor_type": "user", "actor_name": "alice", "meta": {}},
            "at": at
        }],
        "deploys": {"orphan": {
            "pid": null, "correlation_id": "aud_old", "source_type": "git-push", "rev": null,
            "metadata": {}, "first_seen": at, "updated": at
        }}
    });
    mkdir_2770(&env.data.join("state"));
    std::fs::write(
        env.data.join("state/correlation.json"),
        serde_json::to_vec(&state).unwrap(),
    )
    .unwrap();
    // Two days later (DOKKU_AUDIT_NOW): stale.
    let (code, _, issues) = doctor(&env);
    assert_eq!(code, 1);
    for what in ["event actor context", "deploy"] {
        let want = format!(
            "stale pending {what} entries detected: 1, older than 86400 s (run: dokku audit:vacuum)"
        );
        assert!(issues.contains(&want), "{want}: {issues:?}");
    }
    // An hour after they were stored: not stale.
    let (code, ok, issues) = doctor_at(&env, "2026-04-06T21:00:00Z");
    assert_eq!(code, 0, "{issues:?}");
    assert!(ok
        .iter()
        .any(|l| l == "no stale pending event actor context entries"));
}

#[test]
fn doctor_reports_leftover_temporary_files() {
    let env = healthy_store();
    let dead = "999999999"; // above any pid_max
    std::fs::write(
        env.segments_dir()
            .join("00000000000000000001.jsonl.zst.tmp"),
        b"partial",
    )
    .unwrap();
    mkdir_2770(&env.data.join(format!("index.tmp-{dead}")));
    mkdir_2770(&env.data.join("state"));
    std::fs::write(
        env.data.join(format!("state/correlation.json.tmp-{dead}")),
        b"{}",
    )
    .unwrap();
    std::fs::write(env.data.join(format!(".FORMAT.tmp-{dead}")), b"x").unwrap();
    let (code, _, issues) = doctor(&env);
    assert_eq!(code, 1);
    for name in [
        "segments/00000000000000000001.jsonl.zst.tmp".to_string(),
        format!("index.tmp-{dead}"),
        format!("state/correlation.json.tmp-{dead}"),
        format!(".FORMAT.tmp-{dead}"),
    ] {
        assert!(
            issues.contains(&format!(
                "leftover temporary file: {name} (run: dokku audit:vacuum)"
            )),
            "{name}: {issues:?}"
        );
    }
    // A temporary file of a running process is work in progress, not a leftover.
    let env = healthy_store();
    mkdir_2770(&env.data.join(format!("index.tmp-{}", std::process::id())));
    let (code, ok, issues) = doctor(&env);
    assert_eq!(code, 0, "{issues:?}");
    assert!(ok.iter().any(|l| l.contains("of running processes")));
}

#[test]
fn doctor_reports_a_foreign_file_in_segments() {
    let env = healthy_store();
    std::fs::write(env.segments_dir().join("notes.txt"), b"hello").unwrap();
    let (code, _, issues) = doctor(&env);
    assert_eq!(code, 1);
    assert!(
        has_issue(
            &issues,
            &["foreign file in segments/: segments/notes.txt", "(run: mv "]
        ),
        "{issues:?}"
    );
}

#[test]
fn doctor_reports_a_broken_index() {
    let env = healthy_store();
    // A file of a committed index segment is gone.
    let store_file = std::fs::read_dir(env.data.join("index"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "store"))
        .expect("an index segment");
    std::fs::remove_file(&store_file).unwrap();
    let (code, _, issues) = doctor(&env);
    assert_eq!(code, 1);
    assert!(
        has_issue(
            &issues,
            &[
                "search index is missing 1 file(s)",
                "(run: dokku audit:reindex)"
            ]
        ),
        "{issues:?}"
    );
    // meta.json is garbage.
    std::fs::write(env.data.join("index/meta.json"), b"{ not json").unwrap();
    let (code, _, issues) = doctor(&env);
    assert_eq!(code, 1);
    assert!(
        has_issue(
            &issues,
            &[
                "search index cannot be opened",
                "(run: dokku audit:reindex)"
            ]
        ),
        "{issues:?}"
    );
    // reindex fixes it.
    env.ok(&["reindex"]);
    assert_eq!(doctor(&env).0, 0);
}

#[test]
fn doctor_reports_permissions_settings_and_a_missing_data_dir() {
    use std::os::unix::fs::PermissionsExt;
    let env = healthy_store();
    std::fs::set_permissions(&env.data, std::fs::Permissions::from_mode(0o2775)).unwrap();
    std::fs::write(
        env.data.join("settings.json"),
        b"{\"seal_zstd_level\": \"99\"}\n",
    )
    .unwrap();
    let (code, _, issues) = doctor(&env);
    assert_eq!(code, 1);
    assert!(
        has_issue(&issues, &["accessible to others", "(run: chmod"]),
        "{issues:?}"
    );
    assert!(
        has_issue(
            &issues,
            &["seal_zstd_level", "(run: dokku audit:set seal_zstd_level"]
        ),
        "{issues:?}"
    );

    let none = TestEnv::new();
    let (code, _, issues) = doctor(&none);
    assert_eq!(code, 1);
    assert!(
        has_issue(
            &issues,
            &[
                "data directory does not exist",
                "(run: dokku audit:migrate)"
            ]
        ),
        "{issues:?}"
    );
    assert!(
        !Path::new(&none.data).exists(),
        "doctor created the data dir"
    );
}
