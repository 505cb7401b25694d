//! The plugin's posture, black box through `plugin/`: the layout Dokku needs, and that no
//! trigger ever breaks or stalls a Dokku operation — with an unwritable data dir, a corrupt
//! store, held locks or a full disk, every trigger exits 0 within a second and prints nothing on
//! stdout (non-zero only in strict mode, and never for `user-auth`), and nothing already stored
//! is damaged.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::util;
use dokku_audit::hook::Trigger;

fn plugin(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("plugin")
        .join(name)
}

/// One call of every trigger, in a shape that records something (or updates state).
fn every_trigger() -> Vec<(&'static str, Vec<&'static str>)> {
    vec![
        ("user-auth", vec!["dokku", "alice", "ps:stop", "myapp"]),
        ("post-create", vec!["myapp"]),
        ("app-create", vec!["myapp"]),
        ("post-delete", vec!["myapp", "latest"]),
        ("app-destroy", vec!["myapp"]),
        ("post-app-rename-setup", vec!["old", "new"]),
        ("post-app-rename", vec!["old", "new"]),
        ("post-app-clone-setup", vec!["old", "new"]),
        ("post-app-clone", vec!["old", "new"]),
        ("receive-app", vec!["myapp", "abc123"]),
        ("post-extract", vec!["myapp", "/tmp/work", "abc123"]),
        ("deploy-source-set", vec!["myapp", "git-push", "abc123"]),
        ("post-deploy", vec!["myapp", "", "", "latest"]),
        (
            "builds-record-start",
            vec!["myapp", "b1", "123", "git-hook"],
        ),
        ("builds-record-finalize", vec!["myapp", "b1", "1"]),
        ("post-config-update", vec!["myapp", "set", "A"]),
        ("post-domains-update", vec!["myapp", "add", "x.example"]),
        ("post-proxy-ports-update", vec!["myapp", "add"]),
        ("post-certs-update", vec!["myapp"]),
        ("post-certs-remove", vec!["myapp"]),
        (
            "scheduler-run",
            vec!["docker-local", "myapp", "1", "A=1", "--", "ls"],
        ),
        (
            "scheduler-enter",
            vec!["docker-local", "myapp", "web", "--"],
        ),
        (
            "scheduler-post-run",
            vec!["docker-local", "myapp", "cid", "0"],
        ),
        ("report", vec!["myapp"]),
    ]
}

fn base_command(program: &Path, data: &Path) -> Command {
    let mut c = Command::new(program);
    util::scrub_env(&mut c);
    c.env("DOKKU_AUDIT_BIN", util::bin())
        .env("DOKKU_AUDIT_DATA_DIR", data)
        .env("DOKKU_AUDIT_NOW", "2026-04-08T20:00:00Z")
        .env("DOKKU_AUDIT_SUDO_USER", "")
        .env("DOKKU_AUDIT_LOCAL_USER", "")
        .env("DOKKU_AUDIT_EFFECTIVE_USER", "")
        .env("DOKKU_AUDIT_PROCESS_TREE_USER", "")
        .env("DOKKU_AUDIT_DURABILITY", "relaxed")
        .stdin(Stdio::null());
    c
}

fn trigger(data: &Path, name: &str, args: &[&str], env: &[(&str, &str)]) -> (Output, Duration) {
    let mut c = base_command(&plugin(name), data);
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    let start = Instant::now();
    let out = c.output().expect("run trigger");
    (out, start.elapsed())
}

/// Runs every trigger against `data` and checks the posture. `strict` sets strict mode;
/// `expect_failure` says the environment makes recording impossible.
fn check_posture(data: &Path, strict: bool, expect_failure: bool, env: &[(&str, &str)]) {
    check_posture_with(data, strict, Some(expect_failure), env)
}

/// As [`check_posture`]; `None` means each trigger may or may not manage to record (a full
/// disk still has room in the last page of a file), but must say so when it did not.
fn check_posture_with(
    data: &Path,
    strict: bool,
    expect_failure: Option<bool>,
    env: &[(&str, &str)],
) {
    let mut env = env.to_vec();
    if strict {
        env.push(("DOKKU_AUDIT_STRICT_MODE", "true"));
    }
    for (name, args) in every_trigger() {
        let (out, took) = trigger(data, name, &args, &env);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            took < Duration::from_secs(1),
            "{name} took {took:?} (stderr: {stderr})"
        );
        assert!(!stderr.contains("panicked"), "{name} panicked: {stderr}");
        if name == "report" {
            assert!(out.status.success(), "report: {stderr}");
            continue;
        }
        assert!(
            out.stdout.is_empty(),
            "{name} wrote to stdout: {:?}",
            String::from_utf8_lossy(&out.stdout)
        );
        let code = out.status.code();
        let expect_failure = expect_failure.unwrap_or(stderr.contains("failed to record"));
        if expect_failure && strict && name != "user-auth" {
            assert_eq!(code, Some(1), "{name} in strict mode: {stderr}");
        } else {
            assert_eq!(code, Some(0), "{name}: {stderr}");
        }
        if !expect_failure {
            // Either silent, or (full disk) the event landed but the state file could not.
            // Or both locks busy: the event went to the spool, built from a state snapshot.
            assert!(
                stderr.is_empty()
                    || stderr.contains("recorded, but")
                    || stderr.contains("spooled (the store was busy)"),
                "{name}: {stderr}"
            );
        }
        if expect_failure {
            assert!(
                stderr.contains(&format!("failed to record {name}")),
                "{name}: warning must name the trigger: {stderr:?}"
            );
            assert_eq!(stderr.trim_end().lines().count(), 1, "{name}: {stderr:?}");
        }
    }
}

/// Commands of the binary that are not `dokku audit:*` commands: a demo in a temp dir, the
/// packaging generators, and what the triggers run.
const NOT_DOKKU_COMMANDS: &[&str] = &["demo", "completions", "man", "help"];

#[test]
fn every_command_has_a_shim_and_a_help_line_and_nothing_more() {
    use clap::CommandFactory;
    let binary: std::collections::BTreeSet<String> = dokku_audit::cli::Args::command()
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .filter(|n| !NOT_DOKKU_COMMANDS.contains(&n.as_str()) && n != "plugin-lifecycle")
        .collect();
    let shims: std::collections::BTreeSet<String> = std::fs::read_dir(plugin("subcommands"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "default" && n != "help")
        .collect();
    assert_eq!(shims, binary, "plugin/subcommands vs the binary's commands");
    let out = Command::new(plugin("commands"))
        .arg("help")
        .output()
        .unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    let listed: std::collections::BTreeSet<String> = help
        .lines()
        .filter_map(|l| l.trim().strip_prefix("dokku audit:"))
        .map(|rest| rest.split_whitespace().next().unwrap_or("").to_string())
        .filter(|n| n != "help")
        .collect();
    assert_eq!(
        listed, binary,
        "`dokku audit:help` vs the binary's commands"
    );
}

#[test]
fn plugin_layout_has_every_trigger_and_command() {
    for t in Trigger::ALL {
        let p = plugin(t.name());
        let meta = std::fs::metadata(&p).unwrap_or_else(|_| panic!("plugin/{} missing", t.name()));
        use std::os::unix::fs::PermissionsExt;
        assert!(
            meta.permissions().mode() & 0o111 != 0,
            "{p:?} not executable"
        );
    }
    for cmd in [
        "default",
        "help",
        "status",
        "doctor",
        "migrate",
        "last-deploys",
        "timeline",
        "recent",
        "show",
        "search",
        "export",
        "import",
        "backup",
        "restore",
        "vacuum",
        "prune",
        "prune-backups",
        "verify",
        "reindex",
        "tail",
        "get",
        "set",
        "report-deploy-status",
        "serve",
    ] {
        assert!(
            plugin(&format!("subcommands/{cmd}")).is_file(),
            "subcommands/{cmd} missing"
        );
    }
    for f in [
        "plugin.toml",
        "commands",
        "install",
        "update",
        "uninstall",
        "dependencies",
    ] {
        assert!(plugin(f).is_file(), "{f} missing");
    }
    let toml = std::fs::read_to_string(plugin("plugin.toml")).unwrap();
    assert!(
        toml.contains("[plugin.config]"),
        "plugn needs [plugin.config]"
    );
    // `dokku help` runs every file *or directory* named `commands` in the plugin tree.
    let found = Command::new("find")
        .arg(plugin(""))
        .args(["-name", "commands"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&found.stdout).lines().count(), 1);
}

#[test]
fn commands_falls_through_silently_without_starting_the_binary() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    for argv in [
        &["config:get", "x"][..],
        &["git-receive-pack", "'app'"],
        &[],
    ] {
        let out = base_command(&plugin("commands"), &data)
            .args(argv)
            .env("DOKKU_AUDIT_BIN", "/nonexistent/dokku-audit")
            .env("DOKKU_NOT_IMPLEMENTED_EXIT", "10")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(10), "{argv:?}");
        assert!(out.stdout.is_empty() && out.stderr.is_empty(), "{argv:?}");
    }
    let out = base_command(&plugin("commands"), &data)
        .arg("config")
        .env_remove("DOKKU_NOT_IMPLEMENTED_EXIT")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(10));
    for (arg, needle) in [
        ("help", "dokku audit:status"),
        ("audit:help", "dokku audit:doctor"),
    ] {
        let out = base_command(&plugin("commands"), &data)
            .arg(arg)
            .env("DOKKU_AUDIT_BIN", "/nonexistent/dokku-audit")
            .output()
            .unwrap();
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains(needle), "{text}");
        for cmd in [
            "last-deploys",
            "timeline",
            "export",
            "verify",
            "tail",
            "get",
            "set",
            "serve",
        ] {
            assert!(
                text.contains(&format!("dokku audit:{cmd}")),
                "{cmd} not in help"
            );
        }
    }
    assert!(!data.exists(), "commands must not touch the data dir");
}

#[test]
fn user_auth_never_reads_stdin() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut child = base_command(&plugin("user-auth"), &data)
        .args(["dokku", "alice", "git-receive-pack", "'myapp'"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // The pipe stays open: a trigger that read stdin would hang here, as a git push would.
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success());
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(5), "user-auth hung");
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(child.stdin.take());
}

#[test]
fn missing_binary_warns_and_exits_zero() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    for name in ["user-auth", "post-deploy"] {
        let out = base_command(&plugin(name), &data)
            .args(["myapp"])
            .env("DOKKU_AUDIT_BIN", "/nonexistent/dokku-audit")
            .env("PATH", "/usr/bin:/bin")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0));
        assert!(out.stdout.is_empty());
        assert!(String::from_utf8_lossy(&out.stderr).contains("binary not found"));
    }
}

#[test]
fn healthy_store_every_trigger_succeeds_silently() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    check_posture(&data, true, false, &[]);
    let env = util::TestEnv {
        data: data.clone(),
        tmp,
        extra_env: vec![],
    };
    let events = env.export_events();
    assert!(events.len() >= 15, "{} events", events.len());
    assert!(env.run(&["verify"]).status.success());
}

#[test]
fn unwritable_data_dir_never_breaks_dokku() {
    // Under a regular file: unwritable even for root (tests may run as root, where chmod
    // does not stop writes).
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let data = file.join("data");
    check_posture(&data, false, true, &[]);
    check_posture(&data, true, true, &[]);
    check_posture(&data, false, true, &[("DOKKU_AUDIT_STRICT_MODE", "maybe")]);
}

#[test]
fn corrupt_store_never_breaks_dokku_and_stays_untouched() {
    let env = util::TestEnv::new();
    let events = util::demo_jsonl(50, 2);
    let path = env.file("in.jsonl", &events);
    env.ok(&["import", path.to_str().unwrap()]);
    // A data dir whose format marker is from a newer (or broken) release.
    std::fs::write(env.data.join("FORMAT"), b"dokku-audit segments 99\n").unwrap();
    let before = snapshot(&env.data.join("segments"));
    for (name, args) in every_trigger() {
        if matches!(
            name,
            "post-extract"
                | "builds-record-start"
                | "post-app-rename-setup"
                | "post-app-clone-setup"
                | "deploy-source-set"
        ) {
            continue; // state only: nothing to append, nothing to fail
        }
        let (out, took) = trigger(&env.data, name, &args, &[]);
        assert!(took < Duration::from_secs(1));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{name}: {stderr}");
        if name != "report" {
            assert!(out.stdout.is_empty(), "{name}");
            assert!(
                stderr.contains("failed to record") && stderr.contains("newer"),
                "{name}: {stderr}"
            );
        }
    }
    assert_eq!(
        before,
        snapshot(&env.data.join("segments")),
        "segments changed"
    );
}

fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut v: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    v.sort();
    v
}

#[test]
fn held_locks_cost_under_a_second() {
    use fs4::fs_std::FileExt;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    // Create the layout, then hold both locks as a stuck writer would.
    let (out, _) = trigger(&data, "post-create", &["first"], &[]);
    assert!(out.status.success());
    let state_lock = std::fs::File::open(data.join("state/LOCK")).unwrap();
    let store_lock = std::fs::File::open(data.join("LOCK")).unwrap();
    assert!(FileExt::try_lock_exclusive(&state_lock).unwrap());
    assert!(FileExt::try_lock_exclusive(&store_lock).unwrap());
    // Both locks held: nothing is lost — each trigger builds its events from a snapshot of the
    // state and spools them (issue 15), strict mode included, within the budget.
    check_posture(&data, false, false, &[]);
    check_posture(&data, true, false, &[]);
    let spooled = std::fs::read_dir(data.join("spool")).unwrap().count();
    assert!(spooled > 0, "nothing was spooled");
    // Only the state lock released: the store lock still held. The event goes to the spool,
    // durably, so even strict mode counts it as recorded; the next writer appends it.
    FileExt::unlock(&state_lock).unwrap();
    let (out, took) = trigger(
        &data,
        "post-create",
        &["second"],
        &[("DOKKU_AUDIT_STRICT_MODE", "true")],
    );
    assert!(
        out.status.success() && out.stderr.is_empty() && took < Duration::from_secs(1),
        "{out:?} {took:?}"
    );
    assert_eq!(
        std::fs::read_dir(data.join("spool")).unwrap().count(),
        spooled + 1
    );
    FileExt::unlock(&store_lock).unwrap();
    let (out, _) = trigger(&data, "post-create", &["third"], &[]);
    assert!(out.status.success() && out.stderr.is_empty());
    assert_eq!(std::fs::read_dir(data.join("spool")).unwrap().count(), 0);
    let env = util::TestEnv {
        data,
        tmp,
        extra_env: vec![],
    };
    let apps: Vec<String> = env
        .export_events()
        .iter()
        .map(|e| e["app"].as_str().unwrap_or("").to_string())
        .collect();
    // The first event, then what was spooled in order, the second, and the third.
    assert_eq!(apps.first().map(String::as_str), Some("first"));
    assert!(
        apps.ends_with(&["second".to_string(), "third".to_string()]),
        "{apps:?}"
    );
    assert!(
        apps.len() >= 3 + spooled,
        "{} events for {spooled} spool files",
        apps.len()
    );
    // Events built while the state lock was held elsewhere (both locks held: from a snapshot)
    // say so; `first`, `second` (state lock free) and `third` were built under it.
    let events = env.export_events();
    let marked = |e: &serde_json::Value| e["meta"]["correlation_state"].as_str().is_some();
    let n = events.len();
    assert!(
        events[1..n - 2].iter().all(marked),
        "an event built from a state snapshot is not marked"
    );
    assert!(
        ![&events[0], &events[n - 2], &events[n - 1]]
            .into_iter()
            .any(marked),
        "an event built under the state lock is marked"
    );
}

/// A tiny tmpfs, filled up. Needs `mount` (root in a container with CAP_SYS_ADMIN, as CI has).
struct FullDisk {
    dir: PathBuf,
}

impl FullDisk {
    fn new(tmp: &Path) -> Option<FullDisk> {
        let dir = tmp.join("small");
        std::fs::create_dir(&dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=256k", "tmpfs"])
            .arg(&dir)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        ok.then_some(FullDisk { dir })
    }

    fn fill(&self) {
        let _ = Command::new("dd")
            .args(["if=/dev/zero", "bs=4k"])
            .arg(format!("of={}", self.dir.join("filler").display()))
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for FullDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.dir).status();
    }
}

#[test]
fn full_disk_never_breaks_dokku_and_keeps_what_was_stored() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(disk) = FullDisk::new(tmp.path()) else {
        eprintln!("SKIPPED: cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN)");
        return;
    };
    let data = disk.dir.join("data");
    for app in ["a1", "a2", "a3"] {
        let (out, _) = trigger(&data, "post-create", &[app], &[]);
        assert!(out.status.success() && out.stderr.is_empty());
    }
    disk.fill();
    check_posture_with(&data, false, None, &[]);
    check_posture_with(&data, true, None, &[]);
    let env = util::TestEnv::new();
    let out = env
        .command(&["export", "--format", "jsonl"])
        .env("DOKKU_AUDIT_DATA_DIR", &data)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let apps: Vec<&str> = text
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            if v["app"] == "a1" {
                "a1"
            } else if v["app"] == "a2" {
                "a2"
            } else if v["app"] == "a3" {
                "a3"
            } else {
                "other"
            }
        })
        .collect();
    assert_eq!(apps[..3], ["a1", "a2", "a3"], "stored events intact");
    let v = env
        .command(&["verify"])
        .env("DOKKU_AUDIT_DATA_DIR", &data)
        .output()
        .unwrap();
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stdout));
}

#[test]
fn lifecycle_triggers_are_idempotent_and_keep_data() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let run = |name: &str, args: &[&str]| {
        let out = base_command(&plugin(name), &data)
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{name}: {}", util::stderr(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let first = run("install", &[]);
    assert!(first.contains("dokku-audit: initialized"), "{first}");
    assert_eq!(run("install", &[]), "", "install again does nothing");
    assert_eq!(run("dependencies", &[]), "dokku-audit: dependencies ok\n");
    // Another plugin being uninstalled: not ours, nothing to say, exit 0.
    assert_eq!(run("uninstall", &["postgres"]), "");
    for name in ["audit", "dokku-audit"] {
        assert!(run("uninstall", &[name]).contains("preserved audit data at"));
    }
    let update = run("update", &[]);
    assert!(update.contains("update maintenance completed"), "{update}");
    let env = util::TestEnv {
        data: data.clone(),
        tmp,
        extra_env: vec![],
    };
    let events = env.export_events();
    let messages: Vec<&str> = events
        .iter()
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        messages,
        [
            "applied 1 migration(s)",
            "plugin update maintenance completed"
        ]
    );
    assert!(data.join("segments").is_dir() && data.join("backups").is_dir());
    // Both root and dokku write here; nobody else may read (audit data is not public).
    run(
        "user-auth",
        &["dokku", "alice", "config:set", "myapp", "A=1"],
    );
    let found = Command::new("find").arg(&data).output().unwrap();
    use std::os::unix::fs::PermissionsExt;
    for p in String::from_utf8_lossy(&found.stdout).lines() {
        let mode = std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        let want = if Path::new(p).is_dir() { 0o2770 } else { 0o660 };
        assert_eq!(mode, want, "{p}: {mode:o}");
    }
}
