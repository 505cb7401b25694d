//! `get`/`set`: every setting validated before it is stored; invalid values and unknown keys are
//! refused without changing anything; stored values win over the environment.

use crate::util::{assert_dokku_error, TestEnv};

#[test]
fn set_validates_and_get_reads_back() {
    let env = TestEnv::new();
    assert_eq!(env.ok(&["get", "retention_days"]), "0\n", "the default");
    assert_eq!(
        env.ok(&["set", "strict_mode", "true"]),
        "strict_mode=true\n"
    );
    assert_eq!(env.ok(&["get", "strict_mode"]), "true\n");
    assert_eq!(
        env.ok(&["set", "deploy_metadata_max_bytes", "2048"]),
        "deploy_metadata_max_bytes=2048\n"
    );
    assert_eq!(
        env.ok(&["set", "retention_days", "90"]),
        "retention_days=90\n"
    );
    let stored = std::fs::read(env.data.join("settings.json")).unwrap();
    for (args, needle) in [
        (&["set", "strict_mode", "maybe"][..], "strict_mode"),
        (&["set", "retention_days", "-1"], "retention_days"),
        (&["set", "segment_max_bytes", "12"], "segment_max_bytes"),
        (&["set", "durability", "sometimes"], "durability"),
        (&["set", "hook_timeout_ms", "x"], "hook_timeout_ms"),
        (
            &["set", "no_such_key", "1"],
            "config key not set: no_such_key",
        ),
        (
            &["get", "nonexistent_key"],
            "config key not set: nonexistent_key",
        ),
        (&["set"], "KEY"),
    ] {
        assert_dokku_error(&env.run(args), needle);
    }
    assert_eq!(
        std::fs::read(env.data.join("settings.json")).unwrap(),
        stored
    );
    // Stored values win over the environment; an empty value goes back to it.
    let env2 = env.env("DOKKU_AUDIT_RETENTION_DAYS", "30");
    assert_eq!(env2.ok(&["get", "retention_days"]), "90\n");
    assert_eq!(env2.ok(&["set", "retention_days", ""]), "retention_days=\n");
    assert_eq!(env2.ok(&["get", "retention_days"]), "30\n");
}
