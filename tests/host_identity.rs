//! Which host an event was recorded on (issue 18): `meta.host_name` and `meta.host_id` on every
//! event the binary records — through the plugin, by maintenance commands — from the settings
//! or the machine (`/etc/machine-id`, hashed the way docs/capture.md gives, checked here with
//! stock `sha256sum`), while `import` keeps what the imported lines say.

use std::process::Command;

use serde_json::Value;

use crate::util;

const ID_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

fn trigger(env: &util::TestEnv, extra: &[(&str, &str)], pid: &str) {
    let mut c = util::plugin_trigger(
        "post-config-update",
        &["myapp", "set", "FOO"],
        &env.data,
        &env.tmp.path().join("home"),
        pid,
        "2026-04-08T20:00:00Z",
    );
    for (k, v) in extra {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    assert!(out.status.success(), "{}", util::stderr(&out));
    assert!(util::stderr(&out).is_empty(), "{}", util::stderr(&out));
}

fn host_of(e: &Value) -> (Option<&str>, Option<&str>) {
    (
        e["meta"]["host_name"].as_str(),
        e["meta"]["host_id"].as_str(),
    )
}

/// The id the docs promise for this machine, computed with coreutils.
fn machine_host_id() -> Option<String> {
    let path = ["/etc/machine-id", "/var/lib/dbus/machine-id"]
        .into_iter()
        .find(|p| std::fs::read_to_string(p).is_ok_and(|t| !t.trim().is_empty()))?;
    let out = Command::new("sh")
        .arg("-c")
        .arg(r#"printf 'dokku-audit host id v1\000%s' "$(tr -d ' \n' < "$1")" | sha256sum | cut -c1-32"#)
        .arg("sh")
        .arg(path)
        .output()
        .unwrap();
    Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[test]
fn every_recorded_event_says_which_host_and_imports_keep_theirs() {
    let env = util::TestEnv::new();
    // From the machine: the kernel's hostname and the hashed machine id.
    trigger(&env, &[], "100");
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string();
    let events = env.export_events();
    let (name, id) = host_of(events.last().unwrap());
    assert_eq!(name, Some(hostname.as_str()));
    assert_eq!(id.map(str::to_string), machine_host_id());
    // From the environment, then from the settings (which win), on trigger and maintenance
    // events alike.
    trigger(
        &env,
        &[
            ("DOKKU_AUDIT_HOST_NAME", "web-1"),
            ("DOKKU_AUDIT_HOST_ID", ID_A),
        ],
        "101",
    );
    assert_eq!(
        host_of(env.export_events().last().unwrap()),
        (Some("web-1"), Some(ID_A))
    );
    env.ok(&["set", "host_name", "web-2"]);
    env.ok(&["set", "host_id", "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"]);
    trigger(&env, &[("DOKKU_AUDIT_HOST_NAME", "web-1")], "102");
    env.ok(&["set", "retention_days", "0"]);
    let events = env.export_events();
    let n = events.len();
    let bb = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    assert_eq!(events[n - 2]["category"], "config");
    assert_eq!(host_of(&events[n - 2]), (Some("web-2"), Some(bb)));
    assert_eq!(events[n - 1]["category"], "maintenance");
    assert_eq!(host_of(&events[n - 1]), (Some("web-2"), Some(bb)));
    assert!(events.iter().all(|e| host_of(e).1.is_some()), "{events:#?}");
    // A host id that is not 32 hex digits is refused by `set`, and never breaks a trigger.
    util::assert_dokku_error(&env.run(&["set", "host_id", "abc"]), "32 hex digits");
    env.ok(&["set", "host_id", ""]);
    trigger(&env, &[("DOKKU_AUDIT_HOST_ID", "not-an-id")], "103");
    assert_eq!(
        host_of(env.export_events().last().unwrap())
            .1
            .map(str::to_string),
        machine_host_id()
    );
    // `import` keeps what the lines say, including saying nothing.
    let other = util::TestEnv::new();
    let with = r#"{"ts":"2026-04-08T20:00:00Z","app":"a","category":"app","action":"create","status":"success","classification":null,"source_trigger":"post-create","source_type":null,"image_tag":null,"rev":null,"actor_type":"system","actor_name":null,"actor_label":"dokku-system","correlation_id":null,"message":"created","meta":{"host_name":"far","host_id":"cccccccccccccccccccccccccccccccc"}}"#;
    let without = with.replace(
        r#"{"host_name":"far","host_id":"cccccccccccccccccccccccccccccccc"}"#,
        "{}",
    );
    let path = other.file("in.jsonl", format!("{with}\n{without}\n").as_bytes());
    other.ok(&["import", path.to_str().unwrap()]);
    let imported: Vec<Value> = other
        .export_events()
        .into_iter()
        .filter(|e| e["category"] == "app")
        .collect();
    assert_eq!(
        host_of(&imported[0]),
        (Some("far"), Some("cccccccccccccccccccccccccccccccc"))
    );
    assert_eq!(host_of(&imported[1]), (None, None));
}
