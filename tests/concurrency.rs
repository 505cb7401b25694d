//! Concurrency through the plugin: 8 writers × 200 events, each event recorded by a Dokku
//! trigger script (`plugin/<trigger>` → `plugin/hook` → the binary), on distinct apps and on one
//! shared app. Every writer runs real deploy sequences — `receive-app`, `deploy-source-set`,
//! `post-deploy` under one `DOKKU_PID` (a source deploy), then a `post-deploy` under another
//! (a release-only restart) and a `post-config-update` — so the correlation state is contended
//! as hard as the segments. Nothing may be lost, ids must be unique and contiguous, the chain
//! must verify, and every deploy must be classified and correlated with its own receive.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::util;
use serde_json::Value;

const WRITERS: u64 = 8;
/// Iterations per writer; each records 4 events (receive, source deploy, release, config).
const ROUNDS: u64 = 50;

fn plugin(trigger: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("plugin")
        .join(trigger)
}

fn trigger(data: &Path, name: &str, args: &[&str], pid: u64) {
    let mut c = Command::new(plugin(name));
    util::scrub_env(&mut c);
    let out = c
        .args(args)
        .env("DOKKU_AUDIT_BIN", util::bin())
        .env("DOKKU_AUDIT_DATA_DIR", data)
        .env("DOKKU_PID", pid.to_string())
        .env("DOKKU_AUDIT_SUDO_USER", "")
        .env("DOKKU_AUDIT_LOCAL_USER", "")
        .env("DOKKU_AUDIT_EFFECTIVE_USER", "")
        .env("DOKKU_AUDIT_PROCESS_TREE_USER", "")
        // Strict: a trigger that could not record fails the test instead of warning.
        .env("DOKKU_AUDIT_STRICT_MODE", "true")
        .env("DOKKU_AUDIT_HOOK_TIMEOUT_MS", "10000")
        // Small segments, so rotation and sealing race with the appends too.
        .env("DOKKU_AUDIT_SEGMENT_MAX_BYTES", "65536")
        .stdin(Stdio::null())
        .output()
        .expect("run trigger");
    assert!(
        out.status.success() && out.stdout.is_empty(),
        "{name} {args:?}: {:?} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The app writer `w` deploys.
fn app_of(shared: bool, w: u64) -> String {
    if shared {
        "shared".into()
    } else {
        format!("app-w{w}")
    }
}

fn run_writers(data: &Path, shared: bool) {
    let threads: Vec<_> = (0..WRITERS)
        .map(|w| {
            let data = data.to_path_buf();
            std::thread::spawn(move || {
                let app = app_of(shared, w);
                for i in 0..ROUNDS {
                    // Each `dokku` command is a live process while its triggers run, as on a
                    // real host (DOKKU_PID is the pid of the `dokku` shell): capture keeps the
                    // pending deploys of running commands apart and drops those of exited ones.
                    let mut commands: Vec<std::process::Child> = (0..3)
                        .map(|_| Command::new("sleep").arg("600").spawn().expect("sleep"))
                        .collect();
                    let (pid, release_pid, config_pid) = (
                        commands[0].id() as u64,
                        commands[1].id() as u64,
                        commands[2].id() as u64,
                    );
                    let rev = format!("rev-w{w}-{i}");
                    trigger(&data, "receive-app", &[&app, &rev], pid);
                    let meta = format!("branch=w{w}-{i}");
                    trigger(&data, "deploy-source-set", &[&app, "git-push", &meta], pid);
                    let image = format!("dokku/{app}:w{w}-{i}-source");
                    trigger(
                        &data,
                        "post-deploy",
                        &[&app, "5000", "172.17.0.2", &image],
                        pid,
                    );
                    let image = format!("dokku/{app}:w{w}-{i}-release");
                    trigger(
                        &data,
                        "post-deploy",
                        &[&app, "5000", "172.17.0.2", &image],
                        release_pid,
                    );
                    let key = format!("KEY_W{w}_{i}");
                    trigger(
                        &data,
                        "post-config-update",
                        &[&app, "set", &key],
                        config_pid,
                    );
                    for c in &mut commands {
                        let _ = c.kill();
                        let _ = c.wait();
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("writer thread");
    }
}

fn export(data: &Path) -> Vec<Value> {
    let out = Command::new(util::bin())
        .args(["export", "--format", "jsonl"])
        .env("DOKKU_AUDIT_DATA_DIR", data)
        .output()
        .expect("export");
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn check(data: &Path, shared: bool) {
    let verify = Command::new(util::bin())
        .arg("verify")
        .env("DOKKU_AUDIT_DATA_DIR", data)
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "verify: {}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    let events = export(data);
    let total = WRITERS * ROUNDS * 4;
    assert_eq!(events.len() as u64, total, "events lost or added");
    let ids: Vec<u64> = events.iter().map(|e| e["id"].as_u64().unwrap()).collect();
    assert_eq!(
        ids,
        (1..=total).collect::<Vec<u64>>(),
        "ids not 1..={total}"
    );

    // Per writer and iteration: what was recorded, keyed by the image tag / rev it carries.
    let mut receives: BTreeMap<String, &Value> = BTreeMap::new();
    let mut finishes: BTreeMap<String, &Value> = BTreeMap::new();
    let mut configs: BTreeSet<String> = BTreeSet::new();
    for e in &events {
        match (e["category"].as_str(), e["action"].as_str()) {
            (Some("deploy"), Some("receive")) => {
                assert_eq!(e["classification"], "source_received");
                receives.insert(e["rev"].as_str().unwrap().to_string(), e);
            }
            (Some("deploy"), Some("finish")) => {
                finishes.insert(e["image_tag"].as_str().unwrap().to_string(), e);
            }
            (Some("config"), Some("set")) => {
                assert_eq!(e["classification"], "config_change");
                let keys = e["meta"].to_string();
                configs.insert(keys);
            }
            other => panic!("unexpected event {other:?}: {e}"),
        }
    }
    assert_eq!(receives.len() as u64, WRITERS * ROUNDS);
    assert_eq!(finishes.len() as u64, WRITERS * ROUNDS * 2);
    assert_eq!(configs.len() as u64, WRITERS * ROUNDS);
    for w in 0..WRITERS {
        let app = app_of(shared, w);
        for i in 0..ROUNDS {
            let rev = format!("rev-w{w}-{i}");
            let recv = receives[&rev];
            assert_eq!(recv["app"], app.as_str());
            // The source deploy carries its own receive's rev and correlation, never another
            // writer's, even when eight deploys of one app run at once.
            let src = finishes[&format!("dokku/{app}:w{w}-{i}-source")];
            assert_eq!(src["classification"], "source_deploy", "{src}");
            assert_eq!(src["rev"], rev.as_str(), "{src}");
            assert_eq!(src["source_type"], "git-push", "{src}");
            assert_eq!(src["correlation_id"], recv["correlation_id"], "{src}");
            assert!(src["correlation_id"].is_string());
            // A post-deploy under another DOKKU_PID is a release-only restart.
            let rel = finishes[&format!("dokku/{app}:w{w}-{i}-release")];
            assert_eq!(rel["classification"], "release_only", "{rel}");
            assert_eq!(rel["rev"], Value::Null, "{rel}");
            assert!(src["id"].as_u64() > recv["id"].as_u64());
        }
    }
    // No deploy left pending: every receive was matched by its own finish.
    let status = Command::new(util::bin())
        .args(["status"])
        .env("DOKKU_AUDIT_DATA_DIR", data)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&status.stdout);
    let pending = text
        .lines()
        .find(|l| l.to_lowercase().contains("pending deploy"))
        .unwrap_or_else(|| panic!("status has no pending deploy line: {text}"));
    assert!(pending.trim_end().ends_with(" 0"), "{pending}");
}

#[test]
fn eight_writers_on_distinct_apps() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    run_writers(&data, false);
    check(&data, false);
}

#[test]
fn eight_writers_on_one_shared_app() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    run_writers(&data, true);
    check(&data, true);
}
