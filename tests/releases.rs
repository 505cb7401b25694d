//! Release numbers (issue 17), black box through `plugin/`: every successful deploy of an app
//! is `meta.release` N, numbered per app from 1 when it is recorded; failed deploys take none;
//! the numbers never change and never repeat — not after `releases.json` or `state/` is lost,
//! not after retention or prune removed the releases, not after a restore of an older backup,
//! not after the app is destroyed and created again.

use serde_json::Value;

use crate::util;

struct Host {
    env: util::TestEnv,
    pid: std::cell::Cell<u32>,
}

impl Host {
    fn new() -> Host {
        Host {
            env: util::TestEnv::new(),
            pid: std::cell::Cell::new(5000),
        }
    }

    /// Runs a trigger the way Dokku does, as one `dokku` command (its own DOKKU_PID), at `now`.
    fn trigger(&self, now: &str, name: &str, args: &[&str]) {
        let out = util::plugin_trigger(
            name,
            args,
            &self.env.data,
            &self.env.tmp.path().join("home"),
            &self.pid.get().to_string(),
            now,
        )
        .output()
        .unwrap();
        assert!(out.status.success(), "{name}: {}", util::stderr(&out));
    }

    fn next_command(&self) {
        self.pid.set(self.pid.get() + 1);
    }

    /// A git push: the source arrives, the deploy finishes.
    fn push(&self, now: &str, app: &str, rev: &str) {
        self.next_command();
        self.trigger(now, "receive-app", &[app, rev]);
        self.trigger(
            now,
            "post-deploy",
            &[app, "5000", "", &format!("dokku/{app}:latest")],
        );
    }

    /// A restart or config change: a release-only deploy.
    fn redeploy(&self, now: &str, app: &str) {
        self.next_command();
        self.trigger(
            now,
            "post-deploy",
            &[app, "5000", "", &format!("dokku/{app}:latest")],
        );
    }

    /// A build that exits 1.
    fn fail(&self, now: &str, app: &str) {
        self.next_command();
        let pid = self.pid.get().to_string();
        self.trigger(now, "builds-record-start", &[app, "b1", &pid, "git-hook"]);
        self.trigger(now, "builds-record-finalize", &[app, "b1", "1"]);
    }

    /// (app, release number or None, status) of every deploy finish, in id order.
    fn finishes(&self) -> Vec<(String, Option<u64>, String)> {
        self.env
            .export_events()
            .into_iter()
            .filter(|e| e["category"] == "deploy" && e["action"] == "finish")
            .map(|e| {
                (
                    e["app"].as_str().unwrap_or_default().to_string(),
                    e["meta"]["release"].as_u64(),
                    e["status"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }

    fn releases_of(&self, app: &str) -> Vec<u64> {
        self.finishes()
            .into_iter()
            .filter(|(a, _, _)| a == app)
            .filter_map(|(_, n, _)| n)
            .collect()
    }
}

#[test]
fn successful_deploys_are_numbered_per_app_and_failures_take_none() {
    let h = Host::new();
    h.push(
        "2026-04-01T10:00:00Z",
        "web",
        "1111111111111111111111111111111111111111",
    );
    h.push(
        "2026-04-01T11:00:00Z",
        "api",
        "2222222222222222222222222222222222222222",
    );
    h.redeploy("2026-04-01T12:00:00Z", "web");
    h.fail("2026-04-01T13:00:00Z", "web");
    h.push(
        "2026-04-01T14:00:00Z",
        "web",
        "3333333333333333333333333333333333333333",
    );
    let f = h.finishes();
    let failed: Vec<_> = f.iter().filter(|(_, _, s)| s != "success").collect();
    assert_eq!(failed.len(), 1, "{f:?}");
    assert_eq!(failed[0].1, None, "a failed deploy takes no number: {f:?}");
    assert_eq!(h.releases_of("web"), vec![1, 2, 3]);
    assert_eq!(h.releases_of("api"), vec![1]);
    // The counters are derived data, kept beside the segments.
    let counters: Value =
        serde_json::from_slice(&std::fs::read(h.env.data.join("releases.json")).unwrap()).unwrap();
    assert_eq!(counters["apps"]["web"], 3);
}

#[test]
fn numbers_continue_after_the_counters_and_the_state_are_lost() {
    let h = Host::new();
    h.push(
        "2026-04-01T10:00:00Z",
        "web",
        "1111111111111111111111111111111111111111",
    );
    h.redeploy("2026-04-01T11:00:00Z", "web");
    std::fs::remove_file(h.env.data.join("releases.json")).unwrap();
    std::fs::remove_dir_all(h.env.data.join("state")).unwrap();
    h.redeploy("2026-04-01T12:00:00Z", "web");
    // A counters file that claims more events than exist (copied from elsewhere) is not trusted.
    std::fs::write(
        h.env.data.join("releases.json"),
        br#"{"through":999999,"apps":{"web":1}}"#,
    )
    .unwrap();
    h.redeploy("2026-04-01T13:00:00Z", "web");
    assert_eq!(h.releases_of("web"), vec![1, 2, 3, 4]);
}

#[test]
fn numbers_stay_taken_after_retention_removed_every_release() {
    let h = Host::new();
    for day in 1..=3 {
        h.push(
            &format!("2026-01-0{day}T10:00:00Z"),
            "web",
            &format!("{day}{day}{day}{day}111111111111111111111111111111111111"),
        );
    }
    assert_eq!(h.releases_of("web"), vec![1, 2, 3]);
    // A change on a later day seals January's segments.
    h.next_command();
    h.trigger(
        "2026-04-01T10:00:00Z",
        "post-config-update",
        &["web", "set", "FOO"],
    );
    // Everything older than 30 days goes (then the counters file too: the worst case).
    let pruned = h
        .env
        .command(&["prune", "--older-than", "30", "--yes"])
        .env("DOKKU_AUDIT_NOW", "2026-04-01T12:00:00Z")
        .output()
        .unwrap();
    assert!(pruned.status.success(), "{}", util::stderr(&pruned));
    assert!(h.releases_of("web").is_empty(), "{:?}", h.finishes());
    std::fs::remove_file(h.env.data.join("releases.json")).unwrap();
    h.redeploy("2026-04-02T10:00:00Z", "web");
    assert_eq!(h.releases_of("web"), vec![4]);
    let kept = h
        .env
        .export_events()
        .into_iter()
        .find(|e| e["meta"]["releases_through"].is_object())
        .expect("the prune record keeps the numbers");
    assert_eq!(kept["meta"]["releases_through"]["web"], 3);
}

#[test]
fn numbers_stay_taken_after_a_restore_of_an_older_backup() {
    let h = Host::new();
    h.push(
        "2026-04-01T10:00:00Z",
        "web",
        "1111111111111111111111111111111111111111",
    );
    let backup = h.env.tmp.path().join("b1");
    h.env.ok(&["backup", "--output", backup.to_str().unwrap()]);
    h.redeploy("2026-04-01T11:00:00Z", "web");
    h.redeploy("2026-04-01T12:00:00Z", "web");
    assert_eq!(h.releases_of("web"), vec![1, 2, 3]);
    h.env.ok(&["restore", backup.to_str().unwrap(), "--yes"]);
    assert_eq!(h.releases_of("web"), vec![1]);
    h.redeploy("2026-04-01T13:00:00Z", "web");
    // v2 and v3 were given in the replaced history: the next is v4.
    assert_eq!(h.releases_of("web"), vec![1, 4]);
}

#[test]
fn numbers_continue_when_an_app_is_destroyed_and_created_again() {
    let h = Host::new();
    h.push(
        "2026-04-01T10:00:00Z",
        "web",
        "1111111111111111111111111111111111111111",
    );
    h.next_command();
    h.trigger("2026-04-01T11:00:00Z", "post-delete", &["web"]);
    h.next_command();
    h.trigger("2026-04-01T12:00:00Z", "post-create", &["web"]);
    h.push(
        "2026-04-01T13:00:00Z",
        "web",
        "2222222222222222222222222222222222222222",
    );
    assert_eq!(h.releases_of("web"), vec![1, 2]);
}

#[test]
fn counters_that_are_behind_with_a_bad_offset_are_caught_up_from_the_segment() {
    let h = Host::new();
    h.push(
        "2026-04-01T10:00:00Z",
        "web",
        "1111111111111111111111111111111111111111",
    );
    let v1 = h
        .env
        .export_events()
        .into_iter()
        .find(|e| e["meta"]["release"] == 1)
        .expect("v1")["id"]
        .as_u64()
        .unwrap();
    h.redeploy("2026-04-01T11:00:00Z", "web");
    // Counters from just after v1 that point past the end of the active segment (a file
    // replaced by hand): v2 is only in the segment, and must still count.
    let active = h.env.active_segment().expect("an active segment");
    let first: u64 = active
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .trim_end_matches(".jsonl")
        .parse()
        .unwrap();
    std::fs::write(
        h.env.data.join("releases.json"),
        format!(
            r#"{{"through":{v1},"apps":{{"web":1}},"resume":{{"segment":{first},"offset":999999999}}}}"#
        ),
    )
    .unwrap();
    h.redeploy("2026-04-01T12:00:00Z", "web");
    assert_eq!(h.releases_of("web"), vec![1, 2, 3]);
}

/// One deploy finish of app `big` as an import line: a push of `rev`, a restart (no revision),
/// an image deploy of `image`, or a failure.
fn deploy_line(i: usize, rev: Option<&str>, image: Option<&str>, failed: bool) -> String {
    deploy_line_by(i, rev, image, failed, None)
}

/// `deploy_line`, caused by a `dokku` command (`(subcommand, command)`).
fn deploy_line_by(
    i: usize,
    rev: Option<&str>,
    image: Option<&str>,
    failed: bool,
    by: Option<(&str, &str)>,
) -> String {
    let ts = format!(
        "2026-0{}-{:02}T{:02}:{:02}:00Z",
        1 + i / 600,
        1 + (i / 24) % 25,
        i % 24,
        i % 60
    );
    let mut meta = serde_json::Map::new();
    if let Some(img) = image {
        meta.insert(
            "triggered_by_command".into(),
            format!("dokku git:from-image big {img}").into(),
        );
        meta.insert("triggered_by_subcommand".into(), "git:from-image".into());
    }
    if let Some((sub, command)) = by {
        meta.insert("triggered_by_command".into(), command.into());
        meta.insert("triggered_by_subcommand".into(), sub.into());
    }
    serde_json::json!({
        "ts": ts, "app": "big", "category": "deploy", "action": "finish",
        "status": if failed { "failed" } else { "success" },
        "classification": if failed { "deploy_failed" } else if rev.is_some() || image.is_some() { "source_deploy" } else { "release_only" },
        "source_trigger": "post-deploy",
        "source_type": if image.is_some() { Some("docker-image") } else if rev.is_some() { Some("git-push") } else { None },
        "image_tag": if failed { None } else { Some("latest") },
        "rev": rev, "actor_type": "system", "actor_name": null, "actor_label": "dokku-system",
        "correlation_id": null, "message": "deploy", "meta": meta,
    })
    .to_string()
}

/// The list of an app with more deploys than one screen is read from its newest rows, with the
/// first release of each revision and image found apart (issue 17's speed target): every limit
/// gives exactly the first rows of the whole list — numbers, descriptions, rollbacks (to
/// releases far older than the rows listed) and the current marker — before and after the
/// index is deleted, and after one more deploy.
#[test]
fn a_short_list_is_the_head_of_the_whole_list() {
    let env = util::TestEnv::new();
    let mut lines = Vec::new();
    for i in 0..400 {
        let rev = format!("{:040x}", if i % 7 == 3 { i % 40 } else { i });
        let line = match i % 10 {
            4 => deploy_line(i, None, None, false),
            6 => deploy_line(i, Some(&rev), None, true),
            8 => deploy_line(i, None, Some(&format!("repo/img:{}", i % 30)), false),
            // Pushes whose description needs the command, and one that does not.
            9 => deploy_line_by(
                i,
                Some(&rev),
                None,
                false,
                Some(("ps:rebuild", "dokku ps:rebuild big")),
            ),
            1 => deploy_line_by(
                i,
                Some(&rev),
                None,
                false,
                Some(("git:sync", "dokku git:sync big https://example.com/big.git")),
            ),
            _ => deploy_line(i, Some(&rev), None, false),
        };
        lines.push(line);
    }
    // A rollback of the newest release to the very first one, then a restart of it.
    lines.push(deploy_line(400, Some(&format!("{:040x}", 0)), None, false));
    lines.push(deploy_line(401, None, None, false));
    let mut input = lines.join("\n");
    input.push('\n');
    let path = env.file("big.jsonl", input.as_bytes());
    env.ok(&["import", path.to_str().unwrap()]);
    let list = |limit: &str| -> Vec<Value> {
        let out = env.ok(&["releases", "big", "--limit", limit, "--format", "json"]);
        let v: Value = serde_json::from_str(&out).unwrap();
        v.as_array()
            .cloned()
            .unwrap_or_else(|| v["releases"].as_array().cloned().unwrap())
    };
    let whole = list("100000");
    assert_eq!(whole.len(), 402);
    assert!(
        whole[1]["description"]
            .as_str()
            .unwrap()
            .contains("Rollback to v1"),
        "{}",
        whole[1]
    );
    assert_eq!(whole[0]["current"], true);
    let described = |d: &str| whole.iter().filter(|r| r["description"] == d).count();
    assert!(
        described("Rebuild") > 10 && described("Restart") == 0,
        "{whole:#?}"
    );
    let rollbacks = whole.iter().filter(|r| !r["rollback_to"].is_null()).count();
    assert!(rollbacks > 30, "{rollbacks} rollbacks");
    for limit in [1usize, 2, 5, 37, 100, 337, 338, 339] {
        assert_eq!(list(&limit.to_string()), whole[..limit], "--limit {limit}");
    }
    // `releases:info vN` reads the rows around release N; `id:N` the whole history: the same.
    let info = |sel: &str| -> Value {
        serde_json::from_str(&env.ok(&["releases:info", "big", sel, "--format", "json"])).unwrap()
    };
    let mut compared = 0;
    for r in whole.iter().filter(|r| r["version"].is_u64()).step_by(9) {
        let v = r["version"].as_u64().unwrap();
        let by_number = info(&format!("v{v}"));
        assert_eq!(by_number, info(&format!("id:{}", r["id"])), "v{v}");
        compared += 1;
    }
    assert!(compared > 30, "{compared}");
    // Without the index (rebuilt by the query), and after one more deploy.
    std::fs::remove_dir_all(env.data.join("index")).unwrap();
    assert_eq!(list("5"), whole[..5]);
    let more = format!(
        "{}\n",
        deploy_line(402, Some(&format!("{:040x}", 13)), None, false)
    );
    let path = env.file("more.jsonl", more.as_bytes());
    env.ok(&["import", path.to_str().unwrap()]);
    let head = list("3");
    assert!(
        head[0]["description"]
            .as_str()
            .unwrap()
            .contains("Rollback to v"),
        "{}",
        head[0]
    );
    assert_eq!(
        head[1..],
        whole[..2]
            .iter()
            .map(|r| {
                let mut r = r.clone();
                r["current"] = false.into();
                r
            })
            .collect::<Vec<_>>()[..]
    );
}
