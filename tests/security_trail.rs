//! Issue 13, findings 4 and 5, black box.
//!
//! 4. What changes the trail leaves a trace: every command that changes the settings, the store
//!    or access to it records a `maintenance` event naming who did it and what changed
//!    (`set`/unset with the old and new value, the API token's creation and rotation without
//!    the token), through the binary and through the plugin's shims; a change whose event cannot
//!    be written stands, with a warning.
//! 5. `import-sqlite` reads a hostile `audit.db` without running anything: a view named
//!    `events` is refused by the table check, and a file swapped after that check (the race an
//!    attacker with write access to the directory can win) is read in sqlite3's safe mode, where
//!    `edit()` — which runs a command even with `-readonly` — is refused.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::util::{self, TestEnv};
use serde_json::Value;

fn plugin(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("plugin")
        .join(rel)
}

/// An environment whose maintenance commands are run by `sudo-user:alice`, with the durability
/// default (the harness's `relaxed` would otherwise be the "old" value of `durability`).
fn alice() -> TestEnv {
    TestEnv::new()
        .env("DOKKU_AUDIT_SUDO_USER", "alice")
        .env("DOKKU_AUDIT_DURABILITY", "")
}

fn maintenance(env: &TestEnv, action: &str) -> Vec<Value> {
    env.export_events()
        .into_iter()
        .filter(|e| e["category"] == "maintenance" && e["action"] == action)
        .collect()
}

fn assert_alice(ev: &Value) {
    assert_eq!(ev["actor_type"], "user", "{ev}");
    assert_eq!(ev["actor_name"], "alice", "{ev}");
    assert_eq!(ev["actor_label"], "sudo-user:alice", "{ev}");
    assert_eq!(ev["meta"]["actor_source"], "SUDO_USER", "{ev}");
    assert!(ev["app"].is_null(), "{ev}");
    assert_eq!(ev["status"], "success", "{ev}");
}

/// Runs `plugin/subcommands/<name> audit:<name> args…` the way Dokku does.
fn shim(env: &TestEnv, name: &str, args: &[&str]) -> std::process::Output {
    let mut c = Command::new(plugin(&format!("subcommands/{name}")));
    c.arg(format!("audit:{name}")).args(args);
    util::scrub_env(&mut c);
    c.env("DOKKU_AUDIT_BIN", util::bin())
        .env("DOKKU_AUDIT_DATA_DIR", &env.data)
        .env("DOKKU_AUDIT_NOW", "2026-04-08T20:00:00Z")
        .env("DOKKU_AUDIT_LOCAL_USER", "")
        .env("DOKKU_AUDIT_EFFECTIVE_USER", "")
        .env("DOKKU_AUDIT_PROCESS_TREE_USER", "")
        .env("DOKKU_AUDIT_SUDO_USER", "alice")
        .env("DOKKU_AUDIT_DURABILITY", "");
    c.stdin(Stdio::null()).output().unwrap()
}

#[test]
fn set_and_unset_record_who_changed_what() {
    let env = alice();
    env.ok(&["migrate"]);
    assert_eq!(
        env.ok(&["set", "retention_days", "1"]),
        "retention_days=1\n"
    );
    env.ok(&["set", "durability", "relaxed"]);
    // A refused value changes nothing and records nothing.
    assert!(!env.run(&["set", "retention_days", "-1"]).status.success());
    // Through the plugin: `dokku audit:set …`, and an empty value (back to the default).
    let o = shim(&env, "set", &["seal_zstd_level", "9"]);
    assert!(o.status.success(), "{}", util::stderr(&o));
    let o = shim(&env, "set", &["retention_days"]);
    assert!(o.status.success(), "{}", util::stderr(&o));

    let sets = maintenance(&env, "set");
    let got: Vec<(String, String, String, String)> = sets
        .iter()
        .map(|e| {
            assert_alice(e);
            assert_eq!(e["classification"], "maintenance_set");
            (
                e["meta"]["setting"].as_str().unwrap().to_string(),
                e["meta"]["old"].as_str().unwrap().to_string(),
                e["meta"]["new"].as_str().unwrap().to_string(),
                e["message"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let row = |k: &str, o: &str, n: &str| {
        (
            k.to_string(),
            o.to_string(),
            n.to_string(),
            format!("setting {k} changed from {o} to {n}"),
        )
    };
    assert_eq!(
        got,
        vec![
            row("retention_days", "0", "1"),
            row("durability", "always", "relaxed"),
            row("seal_zstd_level", "7", "9"),
        ]
    );
    let unsets = maintenance(&env, "unset");
    assert_eq!(unsets.len(), 1, "{unsets:?}");
    let u = &unsets[0];
    assert_alice(u);
    assert_eq!(u["classification"], "maintenance_unset");
    assert_eq!(u["meta"]["setting"], "retention_days");
    assert_eq!(u["meta"]["old"], "1");
    assert_eq!(u["meta"]["new"], "0");
    assert!(
        u["message"]
            .as_str()
            .unwrap()
            .starts_with("setting retention_days unset: changed from 1 to 0"),
        "{u}"
    );
    assert!(env.ok(&["verify"]).contains("ok"));
}

#[test]
fn a_change_stands_with_a_warning_when_the_trail_cannot_record_it() {
    let env = alice();
    env.ok(&["migrate"]);
    // The store cannot be appended to: `segments` is a file.
    std::fs::remove_dir_all(env.segments_dir()).unwrap();
    std::fs::write(env.segments_dir(), b"not a directory").unwrap();
    let out = env.run(&["set", "retention_days", "5"]);
    assert!(out.status.success(), "{}", util::stderr(&out));
    assert_eq!(util::stdout(&out), "retention_days=5\n");
    let err = util::stderr(&out);
    assert!(
        err.starts_with(" !     warning: setting retention_days changed from 0 to 5")
            && err.contains("could not record")
            && err.contains("the change stands"),
        "{err:?}"
    );
    assert_eq!(env.ok(&["get", "retention_days"]), "5\n");
    let out = env.run(&["serve", "--rotate-token"]);
    assert!(out.status.success(), "{}", util::stderr(&out));
    assert!(
        util::stderr(&out).contains(" !     warning: serve API token rotated"),
        "{}",
        util::stderr(&out)
    );
}

fn assert_nowhere(env: &TestEnv, secret: &str) {
    // Every file (sealed segments decompressed) except the token file itself.
    let files: Vec<_> = util::files_as_read(&env.data)
        .into_iter()
        .filter(|(p, _)| p.file_name().is_some_and(|n| n != "serve-token"))
        .collect();
    assert!(
        files.iter().any(|(p, _)| p.starts_with(env.segments_dir())),
        "no segment to search"
    );
    for (p, bytes) in &files {
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "the token is in {}",
            p.display()
        );
    }
}

#[test]
fn token_rotation_is_recorded_without_the_token() {
    let env = alice();
    env.ok(&["migrate"]);
    let first = env.ok(&["serve", "--rotate-token"]).trim().to_string();
    // The next day: the first day's segment is sealed (zstd) by this append.
    let second = env
        .command(&["serve", "--rotate-token"])
        .env("DOKKU_AUDIT_NOW", "2026-04-09T09:00:00Z")
        .output()
        .unwrap();
    assert!(second.status.success(), "{}", util::stderr(&second));
    let second = util::stdout(&second).trim().to_string();
    assert_eq!((first.len(), second.len()), (64, 64));
    assert_ne!(first, second);
    assert!(!env.segment_files(".zst").is_empty(), "a sealed segment");

    let evs = maintenance(&env, "rotate-token");
    assert_eq!(evs.len(), 2, "{evs:?}");
    let token_file = env.data.join("serve-token").display().to_string();
    for (ev, replaced) in evs.iter().zip([false, true]) {
        assert_alice(ev);
        assert_eq!(ev["classification"], "maintenance_rotate_token");
        assert_eq!(ev["meta"]["action"], "rotate-token");
        assert_eq!(ev["meta"]["token_file"], token_file.as_str());
        assert_eq!(ev["meta"]["replaced"], replaced);
        assert_eq!(
            ev["message"],
            format!("serve API token rotated in {token_file}")
        );
    }
    // Queries build the index: it must not hold a token either.
    env.ok(&["search", "--query", "token"]);
    assert_nowhere(&env, &first);
    assert_nowhere(&env, &second);
    assert!(env.ok(&["verify"]).contains("ok"));
}

#[test]
fn first_serve_records_the_token_it_creates() {
    use std::io::BufRead;
    let env = alice();
    env.ok(&["migrate"]);
    let serve_once = || {
        let mut child = env
            .command(&["serve", "--listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(line.starts_with("serving http://127.0.0.1:"), "{line:?}");
        let _ = child.kill();
        let _ = child.wait();
    };
    serve_once();
    let token = std::fs::read_to_string(env.data.join("serve-token")).unwrap();
    let token = token.trim();
    // A second start uses the same token: nothing new to record.
    serve_once();
    let evs = maintenance(&env, "create-token");
    assert_eq!(evs.len(), 1, "{evs:?}");
    assert_alice(&evs[0]);
    assert_eq!(evs[0]["meta"]["action"], "create-token");
    assert_eq!(evs[0]["meta"]["replaced"], false);
    assert_nowhere(&env, token);
}

fn have_sqlite() -> bool {
    Command::new("sqlite3").arg("-version").output().is_ok()
}

fn sqlite_exec(db: &Path, sql: &str) {
    let ok = Command::new("sqlite3").arg(db).arg(sql).status().unwrap();
    assert!(ok.success(), "{sql}");
}

/// The real `sqlite3` on PATH.
fn real_sqlite3() -> PathBuf {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|d| d.join("sqlite3"))
        .find(|p| p.is_file())
        .expect("sqlite3 on PATH")
}

/// Every maintenance command of the documented list (docs/operations.md, "What leaves a
/// trace") records its event as the command's actor.
#[test]
fn every_command_that_changes_something_leaves_a_trace() {
    let env = alice();
    env.ok(&["migrate"]);
    let import = env.file("in.jsonl", &util::demo_jsonl(20, 30));
    env.ok(&["import", import.to_str().unwrap()]);
    env.ok(&["set", "retention_days", "400"]);
    env.ok(&["serve", "--rotate-token"]);
    env.ok(&["prune", "--older-than", "10", "--yes"]);
    env.ok(&["vacuum"]);
    let backup = env.ok(&["backup"]);
    let backup = backup.lines().last().unwrap().to_string();
    env.ok(&["restore", &backup, "--yes"]);
    env.ok(&["prune-backups", "--older-than", "0", "--yes"]);
    env.ok(&["plugin-lifecycle", "update"]);
    let mut want = vec![
        "migrate",
        "import",
        "set",
        "rotate-token",
        "prune",
        "vacuum",
        "restore",
        "prune-backups",
        "migrate",
    ];
    if have_sqlite() {
        let db = env.tmp.path().join("audit.db");
        sqlite_exec(
            &db,
            "PRAGMA application_id = 1145132356; CREATE TABLE events (id INTEGER PRIMARY KEY, \
             ts TEXT, app TEXT, category TEXT, action TEXT, status TEXT, classification TEXT, \
             source_trigger TEXT, source_type TEXT, image_tag TEXT, rev TEXT, actor_type TEXT, \
             actor_name TEXT, correlation_id TEXT, message TEXT, meta_json TEXT, created_at TEXT); \
             INSERT INTO events (ts, category, action, source_trigger, meta_json, created_at) \
             VALUES ('2026-03-01T00:00:00Z', 'app', 'create', 'post-create', '{}', \
             '2026-03-01T00:00:00Z');",
        );
        env.ok(&["import-sqlite", db.to_str().unwrap()]);
        want.push("import");
    }
    let got: Vec<Value> = env
        .export_events()
        .into_iter()
        .filter(|e| e["category"] == "maintenance")
        .collect();
    // The backup event went with the history the restore replaced.
    let actions: Vec<&str> = got.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, want, "{got:?}");
    for ev in &got {
        assert_alice(ev);
    }
}

#[test]
fn a_hostile_audit_db_never_runs_a_command() {
    let safe = Command::new("sqlite3").args(["-safe", "-version"]).output();
    if !safe.is_ok_and(|o| o.status.success()) {
        // import-sqlite refuses such a tool ("needs 3.37 or newer"): nothing to attack.
        eprintln!("SKIPPED: no sqlite3 with -safe (3.37+) installed");
        return;
    }
    let env = TestEnv::new();
    let marker = env.tmp.path().join("pwned");
    // `edit(text, editor)` runs `editor <tempfile>` through the shell, even with -readonly.
    let hostile = env.tmp.path().join("hostile.db");
    sqlite_exec(
        &hostile,
        &format!(
            "PRAGMA application_id = 1145132356; CREATE VIEW events AS SELECT \
             1 AS id, edit('x', 'touch {m}; true') AS ts, 'app' AS category, 'create' AS action, \
             'success' AS status, NULL AS app, NULL AS classification, 'x' AS source_trigger, \
             NULL AS source_type, NULL AS image_tag, NULL AS rev, 'system' AS actor_type, \
             NULL AS actor_name, NULL AS correlation_id, 'm' AS message, '{{}}' AS meta_json, \
             '2026-03-01T00:00:00Z' AS created_at;",
            m = marker.display()
        ),
    );
    // The view really does run it when read without safe mode.
    let probe = Command::new("sqlite3")
        .arg("-readonly")
        .arg(&hostile)
        .arg("SELECT count(*) FROM events;")
        .output()
        .unwrap();
    assert!(probe.status.success());
    assert!(marker.exists(), "the hostile view did not run edit()");
    std::fs::remove_file(&marker).unwrap();

    // 1. As it is: refused by the table check, before `events` is ever read.
    let out = env.run(&["import-sqlite", hostile.to_str().unwrap()]);
    util::assert_dokku_error(&out, "it has no events table");
    assert!(!marker.exists(), "edit() ran");

    // 2. Swapped in after the checks: a harmless database with a real `events` table passes
    // them, then an attacker replaces the file before its rows are read. A `sqlite3` wrapper
    // first on PATH makes that race deterministic; it runs the real tool with the binary's
    // own options.
    let db = env.tmp.path().join("audit.db");
    sqlite_exec(
        &db,
        "PRAGMA application_id = 1145132356; CREATE TABLE events (id INTEGER PRIMARY KEY, \
         ts TEXT);",
    );
    let bin = env.tmp.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let wrapper = bin.join("sqlite3");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nfor a in \"$@\"; do last=\"$a\"; done\ncase \"$last\" in\n  \
             *'FROM events'*) cp '{h}' '{d}' ;;\nesac\nexec '{real}' \"$@\"\n",
            h = hostile.display(),
            d = db.display(),
            real = real_sqlite3().display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = env
        .command(&["import-sqlite", db.to_str().unwrap()])
        .env("PATH", path)
        .output()
        .unwrap();
    assert!(!marker.exists(), "edit() ran: sqlite3 was not in safe mode");
    util::assert_dokku_error(&out, "safe mode");
    assert!(!env.data.join("segments").exists(), "nothing appended");
}
