//! Issue 13, finding 1: a `dokku` group member cannot make a root-run command write, create,
//! truncate or chown a file outside the data directory by planting names in it.
//!
//! Each reproduction runs as root (CI runs as root), with a throwaway runtime user and group and
//! a throwaway group member, "mallory", created here (`useradd`), who plants symlinks with
//! `setpriv`. The victim files stand in for `/etc/target` and a root-owned 0600 file: a
//! directory only root can enter, so mallory cannot touch them herself. Every scenario runs
//! twice: with the runtime user present (the root process switches to it before touching the
//! data directory: src/privilege.rs) and with no runtime user (the process stays root and only
//! the no-symlink, exclusive-create rules of `safefs` stand in the way).
//!
//! Without root (a developer machine), the tests say SKIPPED and pass.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use crate::util;

const GROUP: &str = "dkaudit-sec";
const RUNTIME: &str = "dkaudit-rt";
const MALLORY: &str = "dkaudit-mal";
const SECRET: &[u8] = b"ROOT SECRET: must never change\n";

fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Creates the throwaway accounts once per test process. `false`: not possible here.
fn accounts() -> bool {
    static READY: OnceLock<bool> = OnceLock::new();
    *READY.get_or_init(|| {
        if !is_root() {
            return false;
        }
        let run = |args: &[&str]| {
            Command::new(args[0])
                .args(&args[1..])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        let exists = |user: &str| run(&["id", user]);
        if !run(&["getent", "group", GROUP]) {
            run(&["groupadd", GROUP]);
        }
        for user in [RUNTIME, MALLORY] {
            if !exists(user) {
                run(&[
                    "useradd",
                    "-M",
                    "-N",
                    "-g",
                    GROUP,
                    "-s",
                    "/bin/sh",
                    "-d",
                    "/nonexistent",
                    user,
                ]);
            }
        }
        exists(RUNTIME) && exists(MALLORY)
    })
}

/// How the root process is set up.
#[derive(Debug, Clone, Copy)]
enum Mode {
    /// The runtime user exists: root switches to it.
    Switches,
    /// No runtime user (only the group): root stays root.
    StaysRoot,
}

struct World {
    env: util::TestEnv,
    mode: Mode,
    /// A root-only directory (0700) holding the victims.
    vault: PathBuf,
}

impl World {
    fn new(mode: Mode) -> Option<World> {
        if !accounts() {
            println!("SKIPPED: needs root and useradd");
            return None;
        }
        let user = match mode {
            Mode::Switches => RUNTIME,
            Mode::StaysRoot => "dkaudit-no-such-user",
        };
        let env = util::TestEnv::new()
            .env("DOKKU_AUDIT_RUNTIME_USER", user)
            .env("DOKKU_AUDIT_RUNTIME_GROUP", GROUP);
        // Everyone may traverse the temp dir (the runtime user and mallory must reach `data`).
        std::fs::set_permissions(env.tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let vault = env.tmp.path().join("vault");
        std::fs::create_dir(&vault).unwrap();
        std::fs::set_permissions(&vault, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::write(vault.join("secret"), SECRET).unwrap();
        std::fs::set_permissions(vault.join("secret"), std::fs::Permissions::from_mode(0o600))
            .unwrap();
        let w = World { env, mode, vault };
        let out = w.root(&["plugin-lifecycle", "install"]);
        assert!(out.status.success(), "install: {}", util::stderr(&out));
        let meta = std::fs::metadata(&w.env.data).unwrap();
        assert_eq!(meta.mode() & 0o7777, 0o2770, "data dir mode");
        Some(w)
    }

    /// Runs the binary as root.
    fn root(&self, args: &[&str]) -> Output {
        self.env.run(args)
    }

    /// Runs a plugin trigger script as root.
    fn root_trigger(&self, trigger: &str, args: &[&str]) -> Output {
        let plugin = Path::new(env!("CARGO_MANIFEST_DIR")).join("plugin");
        let mut c = self.env.command(&[]);
        c.env("DOKKU_AUDIT_BIN", util::bin())
            .env("DOKKU_PID", "4242")
            .env("SUDO_USER", "root");
        let mut cmd = Command::new(plugin.join(trigger));
        cmd.args(args);
        for (k, v) in c.get_envs() {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        cmd.stdin(Stdio::null()).output().expect("run trigger")
    }

    /// Runs a shell snippet as mallory (group member only) in the data directory.
    fn mallory(&self, script: &str) {
        let out = Command::new("setpriv")
            .args([
                &format!("--reuid={MALLORY}"),
                &format!("--regid={GROUP}"),
                "--clear-groups",
                "sh",
                "-c",
                script,
            ])
            .current_dir(&self.env.data)
            .output()
            .expect("setpriv");
        assert!(
            out.status.success(),
            "mallory's script failed ({script}): {}",
            util::stderr(&out)
        );
    }

    fn target(&self) -> PathBuf {
        self.vault.join("target")
    }

    fn secret(&self) -> PathBuf {
        self.vault.join("secret")
    }

    /// Plants `<prefix><pid><suffix>` symlinks to `to` for the next 3,000 pids, owned by
    /// mallory. Made in this process (`symlink` + `lchown`) rather than by a loop of `ln`
    /// processes, which would use up the very pids being predicted.
    fn plant_for_pids(&self, dir: &str, prefix: &str, suffix: &str, to: &Path) {
        let ids = |flag: &str| -> u32 {
            let out = Command::new("id").args([flag, MALLORY]).output().unwrap();
            String::from_utf8(out.stdout)
                .unwrap()
                .trim()
                .parse()
                .unwrap()
        };
        let (uid, gid) = (ids("-u"), ids("-g"));
        let last: u32 = std::fs::read_to_string("/proc/sys/kernel/ns_last_pid")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(1);
        let dir = self.env.data.join(dir);
        for pid in last + 1..=last + 3000 {
            let link = dir.join(format!("{prefix}{pid}{suffix}"));
            std::os::unix::fs::symlink(to, &link).unwrap();
            std::os::unix::fs::lchown(&link, Some(uid), Some(gid)).unwrap();
        }
    }

    /// The victims are as root left them: no target file, the secret unchanged and root's.
    fn assert_unharmed(&self, what: &str) {
        assert!(
            std::fs::symlink_metadata(self.target()).is_err(),
            "{what} ({:?}): a root-run command created {}",
            self.mode,
            self.target().display()
        );
        let meta = std::fs::metadata(self.secret()).unwrap();
        assert_eq!(
            std::fs::read(self.secret()).unwrap(),
            SECRET,
            "{what} ({:?}): the root-owned file was overwritten",
            self.mode
        );
        assert_eq!(
            (meta.uid(), meta.gid(), meta.mode() & 0o7777),
            (0, 0, 0o600),
            "{what} ({:?}): the root-owned file was given away",
            self.mode
        );
    }

    /// Whatever happened, the data directory still works for the next honest writer once the
    /// planted names are gone.
    fn assert_store_still_works(&self) {
        self.mallory("find . -type l -exec rm -f {} +");
        let out = self.root(&["verify"]);
        assert!(out.status.success(), "verify: {}", util::stderr(&out));
    }
}

fn both(f: impl Fn(World)) {
    for mode in [Mode::Switches, Mode::StaysRoot] {
        if let Some(w) = World::new(mode) {
            f(w);
        }
    }
}

#[test]
fn a_planted_writer_lock_symlink_creates_nothing() {
    both(|w| {
        w.mallory(&format!(
            "rm -f LOCK && ln -s {} LOCK",
            w.target().display()
        ));
        let out = w.root(&["plugin-lifecycle", "update"]);
        assert!(!util::stderr(&out).contains("panicked"));
        w.assert_unharmed("LOCK → target, then `plugin-lifecycle update`");
        w.assert_store_still_works();
    });
}

#[test]
fn a_planted_state_lock_symlink_creates_nothing_and_user_auth_still_allows() {
    both(|w| {
        w.mallory(&format!(
            "mkdir -p state && rm -f state/LOCK && ln -s {} state/LOCK",
            w.target().display()
        ));
        let out = w.root_trigger(
            "user-auth",
            &["dokku", "default", "config:set", "myapp", "A=1"],
        );
        assert_eq!(out.status.code(), Some(0), "user-auth never denies");
        w.assert_unharmed("state/LOCK → target, then a root user-auth");
        w.assert_store_still_works();
    });
}

#[test]
fn planted_settings_temp_names_cannot_redirect_a_root_set() {
    both(|w| {
        w.plant_for_pids(".", ".settings.json.tmp-", "", &w.secret());
        let out = w.root(&["set", "retention_days", "401"]);
        assert!(out.status.success(), "set: {}", util::stderr(&out));
        w.assert_unharmed("planted .settings.json.tmp-<pid>, then `set`");
        assert!(w
            .root(&["get", "retention_days"])
            .stdout
            .starts_with(b"401"));
        w.assert_store_still_works();
    });
}

#[test]
fn planted_state_temp_names_cannot_redirect_a_root_user_auth() {
    both(|w| {
        w.mallory("mkdir -p state");
        w.plant_for_pids("state", "correlation.json.tmp-", "", &w.secret());
        let out = w.root_trigger(
            "user-auth",
            &["dokku", "default", "config:set", "myapp", "A=1"],
        );
        assert_eq!(out.status.code(), Some(0));
        w.assert_unharmed("planted state/correlation.json.tmp-<pid>, then user-auth");
        w.assert_store_still_works();
    });
}

#[test]
fn an_active_segment_replaced_by_a_symlink_is_not_appended_through() {
    both(|w| {
        let seg = w.env.active_segment().expect("install wrote a segment");
        let name = seg.file_name().unwrap().to_string_lossy().into_owned();
        w.mallory(&format!(
            "cd segments && rm -f {name} && ln -s {} {name}",
            w.secret().display()
        ));
        let out = w.root(&["plugin-lifecycle", "update"]);
        assert!(!util::stderr(&out).contains("panicked"));
        w.assert_unharmed("active segment → root file, then an append");
        // The symlink was refused, not treated as a segment.
        let meta = std::fs::symlink_metadata(&seg).unwrap();
        assert!(meta.file_type().is_symlink());
    });
}

#[test]
fn planted_export_temp_names_cannot_redirect_a_root_export() {
    both(|w| {
        w.plant_for_pids(".", ".export.jsonl.tmp-", "", &w.secret());
        let dest = w.env.data.join("export.jsonl");
        let out = w.root(&["export", "--output", dest.to_str().unwrap()]);
        assert!(out.status.success(), "export: {}", util::stderr(&out));
        w.assert_unharmed("planted .export.jsonl.tmp-<pid>, then export --output");
        assert!(std::fs::read_to_string(&dest)
            .unwrap()
            .contains("\"migrate\""));
    });
}

#[test]
fn a_planted_output_symlink_inside_the_data_dir_is_replaced_not_followed() {
    both(|w| {
        w.mallory(&format!("ln -s {} export.jsonl", w.secret().display()));
        let dest = w.env.data.join("export.jsonl");
        let out = w.root(&["export", "--output", dest.to_str().unwrap()]);
        assert!(out.status.success(), "export: {}", util::stderr(&out));
        w.assert_unharmed("export.jsonl → root file, then export --output");
        assert!(std::fs::symlink_metadata(&dest).unwrap().is_file());
    });
}

#[test]
fn a_planted_state_directory_symlink_is_not_followed() {
    both(|w| {
        // `state` itself replaced by a symlink to a root-only directory.
        w.mallory(&format!(
            "rm -rf state && ln -s {} state",
            w.vault.display()
        ));
        let out = w.root_trigger(
            "user-auth",
            &["dokku", "default", "config:set", "myapp", "A=1"],
        );
        assert_eq!(out.status.code(), Some(0));
        let names: Vec<_> = std::fs::read_dir(&w.vault)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            names,
            vec![std::ffi::OsString::from("secret")],
            "{:?}",
            w.mode
        );
        w.assert_unharmed("state → root dir, then user-auth");
    });
}

#[test]
fn root_export_outside_the_data_dir_still_writes_where_root_asked() {
    both(|w| {
        // The operator's own root-only directory: the switch must not take this away.
        let dest = w.vault.join("out.jsonl");
        let out = w.root(&["export", "--output", dest.to_str().unwrap()]);
        assert!(out.status.success(), "export: {}", util::stderr(&out));
        let meta = std::fs::metadata(&dest).unwrap();
        assert_eq!(meta.uid(), 0, "written as the operator (root)");
        std::fs::remove_file(&dest).unwrap();
        w.assert_unharmed("export to a root-only path");
    });
}

#[test]
fn a_switched_root_process_writes_as_the_runtime_user() {
    let Some(w) = World::new(Mode::Switches) else {
        return;
    };
    let out = w.root(&["set", "retention_days", "30"]);
    assert!(out.status.success(), "{}", util::stderr(&out));
    let uid_of = |p: &Path| std::fs::metadata(p).unwrap().uid();
    let rt_uid: u32 = String::from_utf8(
        Command::new("id")
            .args(["-u", RUNTIME])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .parse()
    .unwrap();
    assert_eq!(uid_of(&w.env.data), rt_uid, "data dir owner");
    assert_eq!(uid_of(&w.env.data.join("settings.json")), rt_uid);
    for seg in w.env.segment_files(".jsonl") {
        assert_eq!(uid_of(&seg), rt_uid, "{}", seg.display());
    }
}

#[test]
fn install_secures_an_existing_world_readable_data_dir() {
    both(|w| {
        std::fs::set_permissions(&w.env.data, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::chown(&w.env.data, Some(0), Some(0)).unwrap();
        let out = w.root(&["plugin-lifecycle", "install"]);
        assert!(out.status.success(), "{}", util::stderr(&out));
        let meta = std::fs::metadata(&w.env.data).unwrap();
        assert_eq!(meta.mode() & 0o7777, 0o2770, "{:?}", w.mode);
        let gid: u32 = String::from_utf8(
            Command::new("getent")
                .args(["group", GROUP])
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap()
        .split(':')
        .nth(2)
        .unwrap()
        .parse()
        .unwrap();
        assert_eq!(meta.gid(), gid, "{:?}", w.mode);
    });
}

#[test]
fn planted_symlinks_in_the_index_are_not_followed_by_a_root_query() {
    both(|w| {
        assert!(w.root(&["recent"]).status.success());
        assert!(w.env.data.join("index/meta.json").exists());
        w.mallory(&format!(
            "cd index && for f in .tantivy-writer.lock .tantivy-meta.lock; do rm -f $f; ln -s {} $f; done",
            w.target().display()
        ));
        // New events make the query catch the index up: tantivy takes its writer lock.
        assert!(w.root(&["set", "retention_days", "12"]).status.success());
        let out = w.root(&["search", "--query", "retention"]);
        assert!(out.status.success(), "search: {}", util::stderr(&out));
        w.assert_unharmed("index lock files → target, then a root search");
    });
}
