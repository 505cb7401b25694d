//! Format compatibility: the checked-in v1 data directory (sealed segments, an active segment
//! ending in a torn line, as a crash leaves it) must be read by every future version with the
//! same result. The fixture is written once by the ignored generator below and never changed.

mod util;

use std::path::{Path, PathBuf};

use util::{demo_jsonl, stdout, TestEnv};

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/segments/v1")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

#[test]
fn v1_fixture_is_still_read_the_same_way() {
    let fixture = fixture_dir();
    let env = TestEnv::new();
    copy_dir(&fixture.join("data"), &env.data);
    assert!(
        !env.segment_files(".jsonl.zst").is_empty(),
        "fixture has sealed segments"
    );
    assert!(
        env.active_segment().is_some(),
        "fixture has an active segment"
    );

    let export = env.ok(&["export", "--format", "jsonl"]);
    let expected = std::fs::read_to_string(fixture.join("expected-export.jsonl")).unwrap();
    assert_eq!(export, expected, "export of the v1 fixture changed");

    let verify = env.run(&["verify"]);
    assert!(verify.status.success(), "{}", stdout(&verify));
    let expected = std::fs::read_to_string(fixture.join("expected-verify.txt")).unwrap();
    assert_eq!(
        stdout(&verify),
        expected,
        "verify of the v1 fixture changed"
    );
}

#[test]
fn v1_fixture_accepts_appends_after_repairing_its_torn_tail() {
    let env = TestEnv::new();
    copy_dir(&fixture_dir().join("data"), &env.data);
    let one = env.file("one.jsonl", &demo_jsonl(1, 0));
    env.ok(&["import", one.to_str().unwrap()]);
    let events = env.export_events();
    assert!(events.iter().any(|e| e["action"] == "repair"));
    assert!(env.run(&["verify"]).status.success());
}

/// Writes the fixture if it does not exist. Run once with
/// `cargo test --test compat -- --ignored`; never regenerate an existing version.
#[test]
#[ignore]
fn write_v1_fixture_if_missing() {
    let dir = fixture_dir();
    if dir.join("data").exists() {
        return;
    }
    let env = TestEnv::new().env("DOKKU_AUDIT_SEGMENT_MAX_BYTES", "16384");
    let input = env.file("in.jsonl", &demo_jsonl(80, 3));
    env.ok(&["import", input.to_str().unwrap()]);
    for p in env.segment_files(".jsonl") {
        if Path::new(&format!("{}.zst", p.display())).exists() {
            std::fs::remove_file(p).unwrap();
        }
    }
    let _ = std::fs::remove_file(env.data.join("LOCK"));
    let active = env.active_segment().unwrap();
    let mut bytes = std::fs::read(&active).unwrap();
    bytes.extend_from_slice(br#"{"id":999,"ts":"2026-04-08T20:00:01Z","app":"torn-by-a-cra"#);
    std::fs::write(&active, bytes).unwrap();
    copy_dir(&env.data, &dir.join("data"));
    std::fs::write(
        dir.join("expected-export.jsonl"),
        env.ok(&["export", "--format", "jsonl"]),
    )
    .unwrap();
    std::fs::write(dir.join("expected-verify.txt"), env.ok(&["verify"])).unwrap();
}
