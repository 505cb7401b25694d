//! No event dropped under load (issue 15): 8 writers × 200 `post-config-update` calls through
//! `plugin/`, with the default hook budget (`hook_timeout_ms` 500) and not in strict mode (a
//! trigger that gives up only warns — exactly how an event used to be lost), while every core
//! is kept busy by CPU hogs. Every one of the 1,600 events must be in the trail, once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::util;

const WRITERS: usize = 8;
const CALLS: usize = 200;

fn plugin(trigger: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("plugin")
        .join(trigger)
}

/// Busy loops, two per core, killed on drop.
struct Hogs(Vec<Child>);

impl Hogs {
    fn start() -> Hogs {
        let n = std::thread::available_parallelism().map_or(2, |n| n.get()) * 2;
        Hogs(
            (0..n)
                .map(|_| {
                    Command::new("sh")
                        .args(["-c", "while :; do :; done"])
                        .stdin(Stdio::null())
                        .spawn()
                        .expect("start a CPU hog")
                })
                .collect(),
        )
    }
}

impl Drop for Hogs {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn config_update(data: &Path, app: &str, key: &str) -> (bool, String) {
    let mut c = Command::new(plugin("post-config-update"));
    util::scrub_env(&mut c);
    let out = c
        .args([app, "set", key])
        .env("DOKKU_AUDIT_BIN", util::bin())
        .env("DOKKU_AUDIT_DATA_DIR", data)
        .env("DOKKU_AUDIT_RUNTIME_USER", "dokku-audit-test-nobody")
        .env("DOKKU_AUDIT_SUDO_USER", "")
        .env("DOKKU_AUDIT_LOCAL_USER", "")
        .env("DOKKU_AUDIT_EFFECTIVE_USER", "")
        .env("DOKKU_AUDIT_PROCESS_TREE_USER", "")
        .env("DOKKU_AUDIT_SEGMENT_MAX_BYTES", "65536")
        .stdin(Stdio::null())
        .output()
        .expect("run trigger");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn eight_writers_under_cpu_hogs_lose_nothing() {
    // The hogs would make a test of another file running next to this one miss its deadlines:
    // run alone (tests/util/mod.rs, `Gate`).
    let _alone = util::exclusive();
    let env = util::TestEnv::new();
    env.ok(&["migrate"]);
    let hogs = Hogs::start();
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let data = env.data.clone();
            std::thread::spawn(move || {
                let mut warnings = Vec::new();
                for i in 0..CALLS {
                    let (ok, err) = config_update(&data, &format!("app{w}"), &format!("K{w}_{i}"));
                    assert!(ok, "a trigger failed: {err}");
                    if !err.is_empty() {
                        warnings.push(err);
                    }
                }
                warnings
            })
        })
        .collect();
    let warnings: Vec<String> = writers
        .into_iter()
        .flat_map(|h| h.join().expect("writer thread"))
        .collect();
    drop(hogs);
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for ev in env.export_events() {
        if ev["source_trigger"] == "post-config-update" {
            let msg = ev["message"].as_str().unwrap_or("").to_string();
            let key = ev["meta"]["keys"]
                .as_array()
                .and_then(|k| k.first())
                .and_then(|k| k.as_str())
                .map(str::to_string)
                .unwrap_or(msg);
            *seen.entry(key).or_default() += 1;
        }
    }
    let missing: Vec<String> = (0..WRITERS)
        .flat_map(|w| (0..CALLS).map(move |i| format!("K{w}_{i}")))
        .filter(|k| !seen.contains_key(k))
        .collect();
    let doubled: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        missing.is_empty() && doubled.is_empty(),
        "{} of {} events lost ({:?}…), {} recorded twice; warnings: {:?}",
        missing.len(),
        WRITERS * CALLS,
        missing.iter().take(5).collect::<Vec<_>>(),
        doubled.len(),
        warnings.iter().take(5).collect::<Vec<_>>()
    );
    let out = env.run(&["verify"]);
    assert!(out.status.success(), "verify: {}", util::stderr(&out));
}
