//! "Changes" (before → after), black box through `plugin/` with a fake `DOKKU_ROOT`: config
//! key changes judged by key names only, domains before/after from Dokku's VHOST file, the
//! previous revision and image on a deploy, and `show` printing them as `before → after`.

use crate::util;
use serde_json::Value;

struct Host {
    env: util::TestEnv,
    root: std::path::PathBuf,
}

impl Host {
    fn new() -> Host {
        let env = util::TestEnv::new();
        let root = env.tmp.path().join("home");
        std::fs::create_dir_all(root.join("myapp")).unwrap();
        Host { env, root }
    }

    fn trigger(&self, name: &str, args: &[&str]) {
        let out = util::plugin_trigger(
            name,
            args,
            &self.env.data,
            &self.root,
            "4242",
            "2026-04-08T20:00:00Z",
        )
        .output()
        .unwrap();
        assert!(
            out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
            "{name}: {}",
            util::stderr(&out)
        );
    }

    fn write(&self, rel: &str, text: &str) {
        std::fs::write(self.root.join(rel), text).unwrap();
    }

    fn last(&self) -> Value {
        self.env.export_events().pop().expect("an event")
    }
}

#[test]
fn config_key_changes_use_names_only() {
    let h = Host::new();
    h.write("myapp/ENV", "export A='old-value'\nexport B='x'\n");
    h.trigger(
        "user-auth",
        &["dokku", "alice", "config:set", "myapp", "A=new", "C=3"],
    );
    h.write("myapp/ENV", "export A='new'\nexport B='x'\nexport C='3'\n");
    h.trigger("post-config-update", &["myapp", "set", "C", "A"]);
    let e = h.last();
    assert_eq!(
        e["meta"]["key_changes"],
        serde_json::json!({"C": "added", "A": "changed"})
    );
    h.trigger(
        "user-auth",
        &["dokku", "alice", "config:unset", "myapp", "B", "Z"],
    );
    h.trigger("post-config-update", &["myapp", "unset", "B", "Z"]);
    assert_eq!(
        h.last()["meta"]["key_changes"],
        serde_json::json!({"B": "removed"})
    );
    h.trigger("user-auth", &["dokku", "alice", "config:clear", "myapp"]);
    h.trigger("post-config-update", &["myapp", "clear"]);
    let e = h.last();
    assert_eq!(e["message"], "config cleared");
    assert_eq!(e["action"], "clear");
    assert_eq!(
        e["meta"]["key_changes"],
        serde_json::json!({"A": "removed", "B": "removed", "C": "removed"})
    );
    let show = h.env.ok(&["show", &e["id"].to_string()]);
    assert!(show.contains("config A: (set) → (unset)"), "{show}");
    // Names, never values or hashes of values.
    let all = h.env.ok(&["export"]);
    assert!(!all.contains("old-value") && !all.contains("new\""));
}

#[test]
fn domains_before_and_after_come_from_vhost() {
    let h = Host::new();
    h.write("myapp/VHOST", "a.example\n");
    h.trigger(
        "user-auth",
        &["dokku", "alice", "domains:add", "myapp", "b.example"],
    );
    h.write("myapp/VHOST", "a.example\nb.example\n");
    h.trigger("post-domains-update", &["myapp", "add", "b.example"]);
    let e = h.last();
    assert_eq!(
        e["meta"]["domains_before"],
        serde_json::json!(["a.example"])
    );
    assert_eq!(
        e["meta"]["domains_after"],
        serde_json::json!(["a.example", "b.example"])
    );
    let show = h.env.ok(&["show", &e["id"].to_string()]);
    assert!(
        show.contains("domains: a.example → a.example, b.example"),
        "{show}"
    );
}

#[test]
fn deploy_carries_previous_rev_and_image() {
    let h = Host::new();
    h.trigger("receive-app", &["myapp", "1111111111111111"]);
    h.trigger("post-deploy", &["myapp", "", "", "dokku/myapp:v1"]);
    let first = h.last();
    assert!(first["meta"].get("previous_rev").is_none());
    h.trigger("receive-app", &["myapp", "2222222222222222"]);
    h.trigger("post-deploy", &["myapp", "", "", "dokku/myapp:v2"]);
    let e = h.last();
    assert_eq!(e["classification"], "source_deploy");
    assert_eq!(e["meta"]["previous_rev"], "1111111111111111");
    assert_eq!(e["meta"]["previous_image_tag"], "dokku/myapp:v1");
    let show = h.env.ok(&["show", &e["id"].to_string()]);
    assert!(
        show.contains("rev: 1111111111111111 → 2222222222222222"),
        "{show}"
    );
    assert!(show.contains("image tag: dokku/myapp:v1 → dokku/myapp:v2"));
}
