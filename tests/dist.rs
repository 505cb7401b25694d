//! `make dist`: the tarball installs the way `dokku plugin:install <url>.tar.gz --name audit`
//! does it (unpacked into `plugins/available/audit`), its `install` trigger runs, and a trigger
//! and a subcommand work from the unpacked copy with the bundled binary — no `DOKKU_AUDIT_BIN`,
//! no `dokku-audit` on `PATH`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util;

fn run(dir: &Path, script: &str, args: &[&str], data: &Path) -> std::process::Output {
    let mut c = Command::new(dir.join(script));
    c.args(args);
    util::scrub_env(&mut c);
    c.env("PATH", "/usr/bin:/bin")
        .env("DOKKU_AUDIT_DATA_DIR", data)
        .env("DOKKU_AUDIT_NOW", "2026-04-08T20:00:00Z")
        .env("DOKKU_AUDIT_SUDO_USER", "")
        .env("DOKKU_AUDIT_LOCAL_USER", "")
        .env("DOKKU_AUDIT_EFFECTIVE_USER", "")
        .env("DOKKU_AUDIT_PROCESS_TREE_USER", "")
        .env("DOKKU_AUDIT_DURABILITY", "relaxed");
    c.output().expect("run script")
}

fn ok(dir: &Path, script: &str, args: &[&str], data: &Path) -> String {
    let out = run(dir, script, args, data);
    assert!(out.status.success(), "{script}: {}", util::stderr(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn tarball_installs_and_runs_as_a_dokku_plugin() {
    let tmp = tempfile::tempdir().unwrap();
    let dist = tmp.path().join("dist");
    let make = Command::new("make")
        .arg("-C")
        .arg(env!("CARGO_MANIFEST_DIR"))
        .arg("dist")
        .arg(format!("BIN={}", util::bin().display()))
        .arg(format!("DIST={}", dist.display()))
        .output()
        .expect("make");
    assert!(make.status.success(), "{}", util::stderr(&make));
    let tarball: PathBuf = std::fs::read_dir(&dist)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".tar.gz"))
        .expect("a tarball");
    let name = tarball.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with(&format!("dokku-audit-{}-", env!("CARGO_PKG_VERSION"))),
        "{name}"
    );
    // What plugn does for a tarball: unpack into plugins/available/<name>.
    let plugin = tmp.path().join("plugins/available/audit");
    std::fs::create_dir_all(&plugin).unwrap();
    let tar = Command::new("tar")
        .arg("xzf")
        .arg(&tarball)
        .arg("-C")
        .arg(&plugin)
        .status()
        .unwrap();
    assert!(tar.success());
    for f in [
        "plugin.toml",
        "commands",
        "hook",
        "install",
        "bin/dokku-audit",
    ] {
        assert!(plugin.join(f).is_file(), "{f} at the tarball's root");
    }
    assert!(
        std::fs::symlink_metadata(plugin.join("post-deploy"))
            .unwrap()
            .file_type()
            .is_symlink(),
        "triggers stay symlinks to the dispatcher"
    );
    for f in [
        "contrib/completions/dokku-audit.bash",
        "contrib/completions/_dokku-audit",
        "contrib/completions/dokku-audit.fish",
        "contrib/man/dokku-audit.1",
    ] {
        let text = std::fs::read_to_string(plugin.join(f)).unwrap();
        assert!(text.contains("dokku-audit"), "{f}");
    }
    assert!(
        std::fs::read_to_string(plugin.join("contrib/man/dokku-audit.1"))
            .unwrap()
            .contains("last\\-deploys")
    );

    let data = tmp.path().join("data");
    // An old SQLite plugin's database in the data dir is noticed.
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("audit.db"), b"").unwrap();
    let first = ok(&plugin, "install", &[], &data);
    assert!(first.contains("dokku-audit: initialized"), "{first}");
    assert!(first.contains("audit:import-sqlite"), "{first}");
    std::fs::remove_file(data.join("audit.db")).unwrap();
    assert_eq!(
        ok(&plugin, "install", &[], &data),
        "",
        "install is idempotent"
    );
    assert!(ok(&plugin, "dependencies", &[], &data).contains("dependencies ok"));

    // A trigger pair and a subcommand from the unpacked copy, with the bundled binary.
    assert_eq!(
        ok(
            &plugin,
            "user-auth",
            &["dokku", "alice", "config:set", "myapp", "A=secret"],
            &data
        ),
        ""
    );
    assert_eq!(
        ok(&plugin, "post-config-update", &["myapp", "set", "A"], &data),
        ""
    );
    let recent = ok(&plugin, "subcommands/recent", &["audit:recent"], &data);
    assert!(recent.contains("ssh-key:alice"), "{recent}");
    assert!(recent.contains("config keys set: A"), "{recent}");
    let help = ok(&plugin, "commands", &["help"], &data);
    assert!(help.contains("dokku audit:last-deploys"));
    assert!(ok(&plugin, "uninstall", &["audit"], &data).contains("preserved audit data"));
    assert_eq!(ok(&plugin, "uninstall", &["postgres"], &data), "");
    assert!(data.join("segments").is_dir(), "uninstall keeps the data");
}
