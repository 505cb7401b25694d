//! The releases view (issue 17), black box: a realistic history replayed through `plugin/` the
//! way real Dokku 0.38 calls the triggers (tests/fixtures/real-dokku/: a git push, config:set,
//! ps:restart, ps:scale, a failed push, git:from-image, a push of an older revision), then
//! `releases`, `releases:info` (table and JSON) and the HTTP API: numbers, descriptions,
//! rollbacks and the redeploy command — unchanged after vacuum, backup/restore, losing
//! `state/` and `releases.json`, and a new index.

use serde_json::Value;

use crate::util;

const REV_A: &str = "aaaaaaa1111111111111111111111111111111111";
const REV_B: &str = "bbbbbbb2222222222222222222222222222222222";
const REV_C: &str = "ccccccc3333333333333333333333333333333333";
const REV_IMG: &str = "ddddddd4444444444444444444444444444444444";

struct Host {
    env: util::TestEnv,
    pid: std::cell::Cell<u32>,
}

impl Host {
    fn new() -> Host {
        let env = util::TestEnv::new();
        std::fs::create_dir_all(env.tmp.path().join("home/web")).unwrap();
        Host {
            env,
            pid: std::cell::Cell::new(7000),
        }
    }

    /// One trigger of the current `dokku` command (its DOKKU_PID), as user `ssh` (`alice`:
    /// an SSH key; empty: root on the host).
    fn trigger(&self, now: &str, ssh: &str, name: &str, args: &[&str]) {
        let mut c = util::plugin_trigger(
            name,
            args,
            &self.env.data,
            &self.env.tmp.path().join("home"),
            &self.pid.get().to_string(),
            now,
        );
        // What Dokku exports to every trigger: over SSH, sshcommand's identity; for root on
        // the host, `SSH_USER=root`, `NAME=default` and (Dokku re-runs itself through sudo)
        // `SUDO_USER=root` (tests/fixtures/real-dokku/traces).
        if ssh.is_empty() {
            c.env("SSH_USER", "root")
                .env("NAME", "default")
                .env("SUDO_USER", "root");
        } else {
            c.env("SSH_USER", "dokku")
                .env("NAME", ssh)
                .env("SSH_NAME", ssh)
                .env(
                    "FINGERPRINT",
                    "SHA256:ZP7aBxEny3vCGws+5W8rAa/oMS5QJQfAQ+mfgiPy8pI",
                )
                .env("SSH_CONNECTION", "127.0.0.1 45678 127.0.0.1 22");
        }
        let out = c.output().unwrap();
        assert!(out.status.success(), "{name}: {}", util::stderr(&out));
    }

    fn command(&self) -> String {
        self.pid.set(self.pid.get() + 1);
        self.pid.get().to_string()
    }

    /// `git push` as alice (the trigger order of tests/fixtures/real-dokku/git-push.jsonl).
    fn push(&self, now: &str, rev: &str, exit: &str) {
        let pid = self.command();
        let t = |name: &str, args: &[&str]| self.trigger(now, "alice", name, args);
        t(
            "user-auth",
            &["dokku", "alice", "git-receive-pack", "'web'"],
        );
        t("user-auth", &["dokku", "alice", "git-hook", "web"]);
        t(
            "builds-record-start",
            &["web", &format!("b{pid}"), &pid, "git-hook"],
        );
        t("post-config-update", &["web", "set", "GIT_REV"]);
        t("post-extract", &["web", "/tmp/build", rev]);
        if exit == "0" {
            t("post-deploy", &["web", "", "", "latest"]);
        }
        t("builds-record-finalize", &["web", &format!("b{pid}"), exit]);
        if exit == "0" {
            t("deploy-source-set", &["web", "git-push", rev]);
        }
    }

    /// A `dokku <sub> web args…` by root that ends in a release-only deploy.
    fn dokku(&self, now: &str, sub: &str, args: &[&str]) {
        self.command();
        let t = |name: &str, a: &[&str]| self.trigger(now, "", name, a);
        let mut ua = vec!["root", "default", sub, "web"];
        ua.extend_from_slice(args);
        t("user-auth", &ua);
        if sub == "config:set" {
            let keys: Vec<&str> = args.iter().filter_map(|a| a.split('=').next()).collect();
            let mut pc = vec!["web", "set"];
            pc.extend(keys);
            t("post-config-update", &pc);
        }
        t("post-deploy", &["web", "", "", "latest"]);
    }

    fn git_from_image(&self, now: &str, image: &str) {
        let pid = self.command();
        let t = |name: &str, a: &[&str]| self.trigger(now, "", name, a);
        t(
            "user-auth",
            &["root", "default", "git:from-image", "web", image],
        );
        t(
            "builds-record-start",
            &["web", &format!("b{pid}"), &pid, "git:from-image"],
        );
        t("post-config-update", &["web", "set", "GIT_REV"]);
        t("post-extract", &["web", "/tmp/build", REV_IMG]);
        t("post-deploy", &["web", "", "", "latest"]);
        t("builds-record-finalize", &["web", &format!("b{pid}"), "0"]);
        t("deploy-source-set", &["web", "docker-image", image]);
    }

    fn releases_json(&self) -> Value {
        let out = self.env.ok(&["releases", "web", "--format", "json"]);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
    }
}

/// The history: v1 push A, v2 config:set, v3 restart, v4 push B, failed push C, v5 scale,
/// v6 push A again (rollback to v1), v7 restart (not a rollback), v8 image.
fn history() -> Host {
    let h = Host::new();
    h.push("2026-04-01T10:00:00Z", REV_A, "0");
    h.dokku(
        "2026-04-01T11:00:00Z",
        "config:set",
        &["FOO=s3cret-value", "BAR=other-s3cret"],
    );
    h.dokku("2026-04-01T12:00:00Z", "ps:restart", &[]);
    h.push("2026-04-01T13:00:00Z", REV_B, "0");
    h.push("2026-04-01T14:00:00Z", REV_C, "1");
    h.dokku("2026-04-01T15:00:00Z", "ps:scale", &["web=2"]);
    h.push("2026-04-01T16:00:00Z", REV_A, "0");
    h.dokku("2026-04-01T17:00:00Z", "ps:restart", &[]);
    h.git_from_image("2026-04-01T18:00:00Z", "repo/name:1.2");
    h
}

/// (version, description, status, current, rollback_to) of one line.
type Line = (Option<u64>, String, String, bool, Option<u64>);

/// The lines, newest first.
fn summary(v: &Value) -> Vec<Line> {
    v["releases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["version"].as_u64(),
                r["description"].as_str().unwrap().to_string(),
                r["status"].as_str().unwrap().to_string(),
                r["current"].as_bool().unwrap(),
                r["rollback_to"].as_u64(),
            )
        })
        .collect()
}

fn expected() -> Vec<Line> {
    let r = |v: Option<u64>, d: &str, s: &str, c: bool, rb: Option<u64>| {
        (v, d.to_string(), s.to_string(), c, rb)
    };
    vec![
        r(Some(8), "Deploy image repo/name:1.2", "success", true, None),
        r(Some(7), "Restart", "success", false, None),
        r(Some(6), "Rollback to v1", "success", false, Some(1)),
        r(Some(5), "Scale web=2", "success", false, None),
        r(
            None,
            "Failed deploy ccccccc (exit 1)",
            "failed",
            false,
            None,
        ),
        r(Some(4), "Deploy bbbbbbb", "success", false, None),
        r(Some(3), "Restart", "success", false, None),
        r(Some(2), "Set FOO, BAR config vars", "success", false, None),
        r(Some(1), "Deploy aaaaaaa", "success", false, None),
    ]
}

#[test]
fn releases_list_numbers_descriptions_and_rollbacks() {
    let h = history();
    let v = h.releases_json();
    assert_eq!(v["app"], "web");
    assert_eq!(summary(&v), expected(), "{v:#}");
    let all = serde_json::to_string(&v).unwrap();
    assert!(!all.contains("s3cret"), "a config value leaked: {all}");
    // Who: alice's pushes over SSH are her key; root's commands on the host are root, never
    // the `default` key name Dokku passes outside SSH.
    let actor = |n: u64| {
        v["releases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["version"] == n)
            .map(|r| r["actor"].as_str().unwrap_or_default().to_string())
    };
    assert_eq!(actor(1).as_deref(), Some("ssh-key:alice"), "{v:#}");
    assert_eq!(actor(2).as_deref(), Some("unix-user:root"), "{v:#}");
    assert_eq!(actor(5).as_deref(), Some("unix-user:root"), "{v:#}");
    // The table: not a terminal, so canonical times; the current release marked.
    let table = h.env.ok(&["releases", "web"]);
    if std::env::var_os("RELEASES_PRINT").is_some() {
        eprintln!("{table}");
        for sel in ["v6", "v5", "v2", "v8"] {
            eprintln!("{}", h.env.ok(&["releases:info", "web", sel]));
        }
    }
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("VERSION"), "{table}");
    assert!(lines[1].starts_with("v8 *"), "{table}");
    assert!(lines[1].ends_with("2026-04-01T18:00:00Z"), "{table}");
    assert!(lines[5].starts_with("- ") && lines[5].contains("Failed deploy ccccccc (exit 1)"));
    assert!(table.contains("Rollback to v1"), "{table}");
    // --limit and --since.
    let two = h
        .env
        .ok(&["releases", "web", "--limit", "2", "--format", "jsonl"]);
    assert_eq!(two.lines().count(), 2);
    let since = h.env.ok(&[
        "releases",
        "web",
        "--since",
        "2026-04-01T15:00:00Z",
        "--format",
        "json",
    ]);
    let since: Value = serde_json::from_str(&since).unwrap();
    assert_eq!(since["releases"].as_array().unwrap().len(), 4);
    // Errors.
    util::assert_dokku_error(&h.env.run(&["releases", "nosuchapp"]), "no releases");
    util::assert_dokku_error(&h.env.run(&["releases"]), "usage");
    util::assert_dokku_error(
        &h.env.run(&["releases:info", "web", "vx"]),
        "invalid release",
    );
    util::assert_dokku_error(
        &h.env.run(&["releases:info", "web", "v99"]),
        "no release v99",
    );
}

#[test]
fn release_info_and_the_way_back() {
    let h = history();
    let info: Value =
        serde_json::from_str(
            &h.env
                .ok(&["releases:info", "web", "v6", "--format", "json"]),
        )
        .unwrap();
    assert_eq!(info["version"], 6);
    assert_eq!(info["rollback_to"], 1);
    assert_eq!(info["rev"], REV_A);
    assert_eq!(
        info["redeploy"]["command"],
        format!("git push --force dokku {REV_A}:refs/heads/main")
    );
    assert!(info["redeploy"]["caveat"]
        .as_str()
        .unwrap()
        .contains("must still exist"));
    // The failed push and the scale came between v4 and v6; v5 is the one before.
    assert_eq!(info["failed_attempts"].as_array().unwrap().len(), 0);
    let v5: Value =
        serde_json::from_str(&h.env.ok(&["releases:info", "web", "5", "--format", "json"]))
            .unwrap();
    // A scale deploys the code already there: going back to it means deploying that code.
    assert_eq!(
        v5["redeploy"]["command"],
        format!("git push --force dokku {REV_B}:refs/heads/main")
    );
    let failed = v5["failed_attempts"].as_array().unwrap();
    assert_eq!(failed.len(), 1, "{v5:#}");
    assert_eq!(failed[0]["description"], "Failed deploy ccccccc (exit 1)");
    assert!(
        v5["command"]
            .as_str()
            .unwrap()
            .ends_with("ps:scale web web=2"),
        "{v5:#}"
    );
    let v2: Value =
        serde_json::from_str(
            &h.env
                .ok(&["releases:info", "web", "v2", "--format", "json"]),
        )
        .unwrap();
    assert_eq!(
        v2["config_keys_changed"],
        serde_json::json!(["BAR", "FOO"]),
        "{v2:#}"
    );
    assert_eq!(v2["event"]["meta"]["release"], 2);
    let v8: Value =
        serde_json::from_str(
            &h.env
                .ok(&["releases:info", "web", "v8", "--format", "json"]),
        )
        .unwrap();
    assert_eq!(
        v8["redeploy"]["command"],
        "dokku git:from-image web repo/name:1.2"
    );
    // By event id, and the readable block.
    let id = v8["id"].as_u64().unwrap();
    let block = h.env.ok(&["releases:info", "web", &format!("id:{id}")]);
    assert!(block.starts_with("=====> web v8 (current)"), "{block}");
    assert!(
        block.contains("dokku git:from-image web repo/name:1.2"),
        "{block}"
    );
    assert!(!h.env.ok(&["export"]).contains("s3cret"));
}

#[test]
fn the_view_survives_maintenance_backup_restore_and_lost_derived_data() {
    let h = history();
    let before = h.releases_json();
    let backup = h.env.tmp.path().join("b1");
    h.env.ok(&["backup", "--output", backup.to_str().unwrap()]);
    h.env.ok(&["vacuum"]);
    assert_eq!(h.releases_json(), before, "after vacuum");
    h.env.ok(&["restore", backup.to_str().unwrap(), "--yes"]);
    assert_eq!(
        summary(&h.releases_json()),
        summary(&before),
        "after restore"
    );
    std::fs::remove_dir_all(h.env.data.join("state")).unwrap();
    let _ = std::fs::remove_file(h.env.data.join("releases.json"));
    std::fs::remove_dir_all(h.env.data.join("index")).unwrap();
    assert_eq!(
        summary(&h.releases_json()),
        summary(&before),
        "after losing derived data"
    );
    h.env.ok(&["reindex"]);
    assert_eq!(
        summary(&h.releases_json()),
        summary(&before),
        "after reindex"
    );
    // An export imported into a new data dir keeps the numbers.
    let export = h.env.ok(&["export", "--format", "jsonl"]);
    let other = util::TestEnv::new();
    let file = other.file("in.jsonl", export.as_bytes());
    other.ok(&["import", file.to_str().unwrap()]);
    let out = other.ok(&["releases", "web", "--format", "json"]);
    let moved: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(summary(&moved), summary(&before), "after export and import");
}

#[test]
fn the_api_serves_the_same_releases() {
    let h = history();
    let server = util::serve::start(&h.env, &[]);
    let list = server.ok_json("/api/apps/web/releases");
    assert_eq!(summary(&list), expected());
    let first = &list["releases"][0];
    for k in [
        "version",
        "id",
        "ts",
        "description",
        "actor",
        "status",
        "current",
        "rollback_to",
        "rev",
        "image_tag",
        "source_type",
        "classification",
    ] {
        assert!(first.get(k).is_some(), "{k} missing: {first}");
    }
    let two = server.ok_json("/api/apps/web/releases?limit=2&since=2026-04-01T00:00:00Z");
    assert_eq!(two["releases"].as_array().unwrap().len(), 2);
    let info = server.ok_json("/api/apps/web/releases/v6");
    assert_eq!(info["rollback_to"], 1);
    for k in [
        "command",
        "build_seconds",
        "config_keys_changed",
        "domains",
        "ports",
        "failed_attempts",
        "redeploy",
        "event",
    ] {
        assert!(info.get(k).is_some(), "{k} missing: {info}");
    }
    let id = info["id"].as_u64().unwrap();
    assert_eq!(
        server.ok_json(&format!("/api/apps/web/releases/id:{id}"))["version"],
        6
    );
    assert_eq!(server.ok_json("/api/apps/web/releases/6")["id"], id);
    assert_eq!(server.get("/api/apps/nope/releases").status, 404);
    assert_eq!(server.get("/api/apps/web/releases/v99").status, 404);
    assert_eq!(server.get("/api/apps/web/releases/vx").status, 400);
    assert_eq!(server.get("/api/apps/web/releases?limit=0").status, 400);
    assert_eq!(server.get("/api/apps/web/releases?bogus=1").status, 400);
    // Same auth as the other routes.
    let anon = util::serve::get_with(server.port, "/api/apps/web/releases", &[]);
    assert_eq!(anon.status, 401);
}

/// The old SQLite plugin's deploys become releases as they are imported: numbered per app in
/// time order, failures without a number; the view is the same after a new index.
#[test]
fn an_imported_sqlite_history_has_releases() {
    if !crate::import_sqlite::have_sqlite() {
        eprintln!("SKIPPED: sqlite3 not installed");
        return;
    }
    let env = util::TestEnv::new();
    let db = crate::import_sqlite::build_db(env.tmp.path(), 200);
    env.ok(&["import-sqlite", db.to_str().unwrap()]);
    let list = |env: &util::TestEnv| -> Value {
        serde_json::from_str(&env.ok(&["releases", "api", "--limit", "1000", "--format", "json"]))
            .unwrap()
    };
    let before = list(&env);
    let releases = before["releases"].as_array().unwrap();
    let versions: Vec<u64> = releases
        .iter()
        .filter_map(|r| r["version"].as_u64())
        .collect();
    let n = versions.len() as u64;
    assert!(n >= 5, "{before:#}");
    assert_eq!(versions, (1..=n).rev().collect::<Vec<_>>());
    assert!(releases
        .iter()
        .any(|r| r["status"] == "failed" && r["version"].is_null()));
    assert_eq!(releases[0]["current"], true);
    std::fs::remove_dir_all(env.data.join("index")).unwrap();
    assert_eq!(list(&env), before);
}
