//! Resource faults, black box: a read-only data directory (queries still answer, from the index
//! plus an in-memory tail, writing nothing; triggers exit 0 fast) and permission denied on
//! `segments/`, `index/` and `LOCK` (triggers exit 0 within a second, strict mode exits 1 except
//! for `user-auth`, stored data byte-identical afterwards). Full disks and held locks are in
//! `capture_posture.rs`.
//!
//! Tests usually run as root here, where `chmod` stops nothing: a read-only bind mount is used
//! for the read-only case, and permissions are enforced by running the binary without
//! CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH (`setpriv --bounding-set`). When neither works the test
//! says so and skips.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::util;

fn plugin(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("plugin")
        .join(name)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// How to run a program so that file permissions apply: directly when not root, else through
/// `setpriv` without the capabilities that let root ignore them. `None`: impossible here.
fn unprivileged_prefix() -> Option<Vec<String>> {
    if !is_root() {
        return Some(vec![]);
    }
    let prefix: Vec<String> = [
        "setpriv",
        "--bounding-set=-dac_override,-dac_read_search,-fowner",
        "--",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // Probe: a directory with mode 000 must be unreadable that way.
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("d");
    std::fs::create_dir(&d).unwrap();
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o000)).unwrap();
    let ok = Command::new(&prefix[0])
        .args(&prefix[1..])
        .arg("ls")
        .arg(&d)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.code() == Some(2))
        .unwrap_or(false);
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700)).unwrap();
    ok.then_some(prefix)
}

/// Runs `program args` (the binary or a plugin shim) with the test environment, behind
/// `prefix`.
fn run_with(
    env: &util::TestEnv,
    prefix: &[String],
    program: &Path,
    args: &[&str],
    extra: &[(&str, &str)],
) -> (Output, Duration) {
    let base = env.command(&[]);
    let mut c = match prefix.first() {
        Some(p) => {
            let mut c = Command::new(p);
            c.args(&prefix[1..]).arg(program);
            c
        }
        None => Command::new(program),
    };
    c.args(args);
    util::scrub_env(&mut c);
    for (k, v) in base.get_envs() {
        if let Some(v) = v {
            c.env(k, v);
        }
    }
    c.env("DOKKU_AUDIT_BIN", util::bin());
    for (k, v) in extra {
        c.env(k, v);
    }
    let start = Instant::now();
    let out = c.stdin(Stdio::null()).output().expect("run");
    (out, start.elapsed())
}

/// Triggers that append (or must at least try to), with arguments.
fn triggers() -> Vec<(&'static str, Vec<&'static str>)> {
    vec![
        (
            "user-auth",
            vec!["dokku", "alice", "config:set", "myapp", "A=1"],
        ),
        ("post-config-update", vec!["myapp", "set", "A"]),
        ("post-create", vec!["newapp"]),
        ("receive-app", vec!["myapp", "abc123"]),
        ("post-deploy", vec!["myapp", "", "", "latest"]),
        ("post-domains-update", vec!["myapp", "add", "x.example"]),
        (
            "scheduler-post-run",
            vec!["docker-local", "myapp", "cid", "0"],
        ),
    ]
}

/// Every file under `dir` with its bytes (directories as empty entries).
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut m = BTreeMap::new();
    fn walk(d: &Path, m: &mut BTreeMap<PathBuf, Vec<u8>>) {
        if let Ok(rd) = std::fs::read_dir(d) {
            for e in rd.flatten() {
                let p = e.path();
                if e.file_type().unwrap().is_dir() {
                    m.insert(p.clone(), Vec::new());
                    walk(&p, m);
                } else {
                    m.insert(p.clone(), std::fs::read(&p).unwrap_or_default());
                }
            }
        }
    }
    walk(dir, &mut m);
    m
}

/// A store with history, an index that lags behind (so queries need a catch-up), state.
fn populated(with_index: bool) -> util::TestEnv {
    let env = util::TestEnv::new().env("DOKKU_AUDIT_SEGMENT_MAX_BYTES", "16384");
    let p = env.file("in.jsonl", &util::demo_jsonl(300, 3));
    env.ok(&["import", p.to_str().unwrap()]);
    if with_index {
        env.ok(&["reindex"]);
    }
    for (name, args) in triggers() {
        let (out, _) = run_with(&env, &[], &plugin(name), &args, &[]);
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "{name}: {}",
            util::stderr(&out)
        );
    }
    env
}

/// A read-only bind mount of `dir` onto itself, undone on drop.
struct ReadOnlyMount {
    dir: PathBuf,
}

impl ReadOnlyMount {
    fn new(dir: &Path) -> Option<ReadOnlyMount> {
        let bind = Command::new("mount")
            .arg("--bind")
            .arg(dir)
            .arg(dir)
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !bind {
            return None;
        }
        let m = ReadOnlyMount {
            dir: dir.to_path_buf(),
        };
        let ro = Command::new("mount")
            .args(["-o", "remount,bind,ro"])
            .arg(dir)
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        ro.then_some(m)
    }
}

impl Drop for ReadOnlyMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.dir).status();
    }
}

/// Makes `env.data` read-only for the commands run behind the returned prefix; `None` (with the
/// reason printed) when this machine cannot.
enum ReadOnly {
    Mount(#[allow(dead_code)] ReadOnlyMount),
    Chmod(Vec<String>),
}

fn make_read_only(data: &Path) -> Option<ReadOnly> {
    if is_root() {
        if let Some(m) = ReadOnlyMount::new(data) {
            return Some(ReadOnly::Mount(m));
        }
    }
    let prefix = unprivileged_prefix()?;
    let ok = Command::new("chmod")
        .args(["-R", "a-w"])
        .arg(data)
        .status()
        .unwrap()
        .success();
    ok.then_some(ReadOnly::Chmod(prefix))
}

fn events_of(text: &str) -> BTreeMap<u64, serde_json::Value> {
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (v["id"].as_u64().unwrap(), v)
        })
        .collect()
}

fn read_only_case(with_index: bool) {
    let env = populated(with_index);
    let want = env.ok(&["export"]);
    let want_events = events_of(&want);
    let before = snapshot(&env.data);
    let Some(ro) = make_read_only(&env.data) else {
        println!("SKIPPED: cannot make a data dir read-only here (root without mount or setpriv)");
        return;
    };
    let prefix: Vec<String> = match &ro {
        ReadOnly::Mount(_) => vec![],
        ReadOnly::Chmod(p) => p.clone(),
    };
    let bin = util::bin();
    let run = |args: &[&str]| run_with(&env, &prefix, &bin, args, &[]).0;
    // Queries answer, from the segments (and the committed index), writing nothing.
    let out = run(&["export"]);
    assert!(out.status.success(), "export: {}", util::stderr(&out));
    assert_eq!(util::stdout(&out), want);
    let out = run(&["verify"]);
    assert!(out.status.success(), "verify: {}", util::stdout(&out));
    for args in [
        &["recent", "--limit", "100000", "--format", "jsonl"][..],
        &[
            "search", "--query", "deploy", "--limit", "100000", "--format", "jsonl",
        ],
        &["last-deploys", "--limit", "100000", "--format", "jsonl"],
        &[
            "timeline", "myapp", "--limit", "100000", "--format", "jsonl",
        ],
        &["tail", "-n", "5"],
    ] {
        let out = run(args);
        assert!(out.status.success(), "{args:?}: {}", util::stderr(&out));
        let got = events_of(&util::stdout(&out));
        assert!(
            !got.is_empty() || args[0] == "timeline",
            "{args:?}: nothing"
        );
        for (id, v) in &got {
            assert_eq!(Some(v), want_events.get(id), "{args:?}: event {id}");
        }
        if args[0] == "recent" {
            assert_eq!(got.len(), want_events.len(), "recent must see every event");
        }
        // Tables too, and quietly: a read-only dir is not an error.
        assert!(!util::stderr(&out).contains("panicked"));
    }
    let timeline = run(&["timeline", "myapp", "--format", "jsonl"]);
    assert!(
        !events_of(&util::stdout(&timeline)).is_empty(),
        "myapp has events"
    );
    for args in [
        &["recent"][..],
        &["last-deploys"],
        &["status"],
        &["show", "3"],
        &["show", "3", "--format", "json"],
    ] {
        let out = run(args);
        assert!(out.status.success(), "{args:?}: {}", util::stderr(&out));
        assert!(!out.stdout.is_empty(), "{args:?}");
    }
    // Triggers: exit 0 fast, one warning line; strict mode exits 1 (never user-auth).
    for strict in [false, true] {
        let extra: &[(&str, &str)] = if strict {
            &[("DOKKU_AUDIT_STRICT_MODE", "true")]
        } else {
            &[]
        };
        for (name, args) in triggers() {
            let (out, took) = run_with(&env, &prefix, &plugin(name), &args, extra);
            let err = util::stderr(&out);
            assert!(took < Duration::from_secs(1), "{name} took {took:?}");
            assert!(out.stdout.is_empty(), "{name}");
            assert!(!err.contains("panicked"), "{name}: {err}");
            let want = if strict && name != "user-auth" { 1 } else { 0 };
            assert_eq!(
                out.status.code(),
                Some(want),
                "{name} strict={strict}: {err}"
            );
            assert!(err.trim_end().lines().count() <= 1, "{name}: {err}");
        }
    }
    drop(ro);
    if !matches!(prefix.len(), 0) {
        let _ = Command::new("chmod")
            .args(["-R", "u+w,g+w"])
            .arg(&env.data)
            .status();
    }
    assert_eq!(
        snapshot(&env.data).len(),
        before.len(),
        "files appeared or vanished"
    );
    for (p, bytes) in &before {
        if p.starts_with(env.data.join("segments")) && p.is_file() {
            assert_eq!(std::fs::read(p).ok().as_ref(), Some(bytes), "{p:?} changed");
        }
    }
    println!(
        "read-only data dir ({}): queries answered, triggers exit 0 (strict: 1)",
        if with_index {
            "lagging index"
        } else {
            "no index"
        }
    );
}

#[test]
fn read_only_data_dir_with_a_lagging_index() {
    read_only_case(true);
}

#[test]
fn read_only_data_dir_without_an_index() {
    read_only_case(false);
}

#[test]
fn permission_denied_never_breaks_dokku_or_the_data() {
    let Some(prefix) = unprivileged_prefix() else {
        println!("SKIPPED: root here and setpriv cannot drop CAP_DAC_OVERRIDE");
        return;
    };
    let mut tried = 0;
    for (what, denied) in [
        ("segments dir", "segments"),
        ("index dir", "index"),
        ("lock file", "LOCK"),
        ("state dir", "state"),
    ] {
        let env = populated(true);
        let target = env.data.join(denied);
        let before = snapshot(&env.data.join("segments"));
        let mode = std::fs::metadata(&target).unwrap().permissions().mode();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o000)).unwrap();
        // Triggers.
        for strict in [false, true] {
            let extra: &[(&str, &str)] = if strict {
                &[("DOKKU_AUDIT_STRICT_MODE", "true")]
            } else {
                &[]
            };
            for (name, args) in triggers() {
                tried += 1;
                let (out, took) = run_with(&env, &prefix, &plugin(name), &args, extra);
                let err = util::stderr(&out);
                assert!(
                    took < Duration::from_secs(1),
                    "{what}: {name} took {took:?}"
                );
                assert!(out.stdout.is_empty(), "{what}: {name}");
                assert!(!err.contains("panicked"), "{what}: {name}: {err}");
                let failed = err.contains("failed to record");
                let code = out.status.code();
                if failed && strict && name != "user-auth" {
                    assert_eq!(code, Some(1), "{what}: {name} strict: {err}");
                } else {
                    assert_eq!(code, Some(0), "{what}: {name} strict={strict}: {err}");
                }
                assert!(err.trim_end().lines().count() <= 1, "{what}: {name}: {err}");
                if denied == "index" {
                    // Triggers never touch the index.
                    assert!(err.is_empty(), "{what}: {name}: {err}");
                }
                if denied == "segments" || denied == "LOCK" {
                    assert!(
                        failed || name == "user-auth",
                        "{what}: {name} recorded through a denied {denied}: {err:?}"
                    );
                }
            }
        }
        // Queries: a denied index falls back to the segments; a denied segments dir or lock is
        // a one-line error or a working answer, never a panic.
        for args in [
            &["recent", "--limit", "1000", "--format", "jsonl"][..],
            &["last-deploys"],
            &["export"],
            &["verify"],
            &["status"],
        ] {
            let (out, _) = run_with(&env, &prefix, &util::bin(), args, &[]);
            let err = util::stderr(&out);
            assert!(!err.contains("panicked"), "{what}: {args:?}: {err}");
            if denied == "index" || denied == "LOCK" || denied == "state" {
                assert!(out.status.success(), "{what}: {args:?}: {err}");
            } else if !out.status.success() && args[0] != "verify" {
                assert!(err.starts_with(" !     "), "{what}: {args:?}: {err}");
                assert_eq!(err.trim_end().lines().count(), 1, "{what}: {args:?}: {err}");
            }
        }
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode)).unwrap();
        let after = snapshot(&env.data.join("segments"));
        if denied == "segments" || denied == "LOCK" {
            assert_eq!(before, after, "{what}: stored data changed");
        } else {
            // Writes went on: everything stored before is still there, byte for byte (a sealed
            // segment may have replaced its plain twin).
            for (p, bytes) in &before {
                if let Some(now) = after.get(p) {
                    assert!(now.starts_with(bytes), "{what}: {p:?} changed");
                }
            }
        }
        let v = env.run(&["verify"]);
        assert!(v.status.success(), "{what}: verify: {}", util::stdout(&v));
    }
    println!(
        "permission denied: {tried} trigger runs over 4 denials, all exit 0 (strict: 1) within 1 s"
    );
}
