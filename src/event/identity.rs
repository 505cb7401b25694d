//! Who ran a `dokku` command, from what every trigger of that command can see: the identity
//! Dokku exports (`NAME`/`FINGERPRINT`/`SSH_CONNECTION` from sshcommand, `SSH_USER`,
//! `SUDO_USER`/`SUDO_UID`) and the process chain above `DOKKU_PID` (docs/capture.md, "Actor").
//!
//! The rules, first match wins:
//! 1. **SSH key**: sshcommand's identity is present — `NAME` with `FINGERPRINT` or
//!    `SSH_CONNECTION`/`SSH_CLIENT` → `ssh-key:<NAME>`.
//! 2. **A person through sudo**: walking up from `DOKKU_PID` (else from the hook's parent), the
//!    first process whose real uid is a person (not root, not the Dokku user). Dokku re-runs
//!    itself with `sudo -u dokku`, so `SUDO_USER` says `root` whoever typed `sudo dokku`; the
//!    person's own `sudo` (real uid = hers) is only in the chain → `sudo-user:<name>`
//!    (`unix-user:<name>` when that process is not a sudo).
//! 3. `SUDO_USER` naming a person (chain unreadable, e.g. `hidepid`) → `sudo-user:<name>`.
//! 4. **Root**: `SUDO_USER=root`, `SUDO_UID=0` or `SSH_USER=root` → `unix-user:root`.
//! 5. A key name passed to `user-auth` (`$2`) or `SSH_NAME` other than `default` (sshcommand's
//!    variables not exported) → `ssh-key:<name>`.
//!
//! No rule: `None`, and the caller falls back to the older local-identity rules.

use serde_json::{Map, Value};

use super::actor;
use super::correlate::StoredActor;
use super::procfs;
use crate::hook::HookEnv;

/// How far up the process chain the walk goes.
const MAX_CHAIN: usize = 24;

fn stored(name: &str, source: &str, pairs: &[(&str, Option<&str>)]) -> StoredActor {
    let mut meta = Map::new();
    for (k, v) in pairs {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            meta.insert(k.to_string(), Value::from(v));
        }
    }
    meta.insert("actor_source".into(), Value::from(source));
    StoredActor {
        actor_type: "user".into(),
        actor_name: Some(name.to_string()),
        meta,
    }
}

/// The person found in the process chain: (user name, reached through sudo).
fn chain_person(env: &HookEnv) -> Option<(String, bool)> {
    // Tests that pin the local identity (tests/util) pin this walk off too.
    if std::env::var_os("DOKKU_AUDIT_PROCESS_TREE_USER").is_some() {
        return None;
    }
    let start = env
        .dokku_pid
        .as_deref()
        .and_then(|p| p.parse::<u32>().ok())
        .filter(|p| *p > 1)
        .unwrap_or_else(std::os::unix::process::parent_id);
    procfs::chain(start, MAX_CHAIN).into_iter().find_map(|p| {
        let name = actor::user_name(p.uid)?;
        actor::is_meaningful(&name).then_some((name, p.is_sudo()))
    })
}

/// The actor of the `dokku` command this trigger runs under. `ua_name`: `user-auth`'s `$2`.
pub fn command_actor(env: &HookEnv, ua_name: Option<&str>) -> Option<StoredActor> {
    let key_name = env.ssh_key_name.as_deref().filter(|n| !n.is_empty());
    if let Some(name) = key_name {
        if env.fingerprint.is_some() || env.client_address.is_some() {
            return Some(stored(
                name,
                "SSH_NAME",
                &[
                    ("ssh_user", env.ssh_user.as_deref()),
                    ("ssh_name", Some(name)),
                    ("ssh_key_fingerprint", env.fingerprint.as_deref()),
                    ("client_address", env.client_address.as_deref()),
                ],
            ));
        }
    }
    if let Some((name, via_sudo)) = chain_person(env) {
        return Some(if via_sudo {
            stored(
                &name,
                "SUDO_USER",
                &[
                    ("sudo_user", Some(&name)),
                    ("identity_via", Some("process_chain")),
                ],
            )
        } else {
            stored(
                &name,
                "PROCESS_TREE_USER",
                &[
                    ("process_tree_user", Some(&name)),
                    ("identity_via", Some("process_chain")),
                ],
            )
        });
    }
    if let Some(s) = env.sudo_user.as_deref().filter(|s| actor::is_meaningful(s)) {
        return Some(stored(s, "SUDO_USER", &[("sudo_user", Some(s))]));
    }
    let root = env.sudo_user.as_deref() == Some("root")
        || env.sudo_uid.as_deref() == Some("0")
        || env.ssh_user.as_deref() == Some("root");
    if root {
        return Some(stored(
            "root",
            "LOCAL_USER",
            &[
                ("local_user", Some("root")),
                ("sudo_user", env.sudo_user.as_deref()),
            ],
        ));
    }
    let name = ua_name
        .filter(|n| !n.is_empty())
        .or(env.ssh_name.as_deref())
        .filter(|n| !n.is_empty() && *n != "default");
    name.map(|n| {
        stored(
            n,
            "SSH_NAME",
            &[
                ("ssh_user", env.ssh_user.as_deref()),
                ("ssh_name", Some(n)),
                ("ssh_key_fingerprint", env.fingerprint.as_deref()),
                ("client_address", env.client_address.as_deref()),
            ],
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(a: &StoredActor) -> String {
        actor::actor_label(&a.actor_type, a.actor_name.as_deref(), &a.meta)
    }

    #[test]
    fn ssh_key_needs_sshcommands_identity() {
        let env = HookEnv {
            ssh_key_name: Some("alice".into()),
            fingerprint: Some("SHA256:x".into()),
            ssh_user: Some("dokku".into()),
            ..Default::default()
        };
        assert_eq!(
            label(&command_actor(&env, Some("alice")).unwrap()),
            "ssh-key:alice"
        );
        // Root outside SSH: Dokku passes `root default`, SUDO_USER=root.
        let env = HookEnv {
            ssh_user: Some("root".into()),
            ssh_name: Some("default".into()),
            sudo_user: Some("root".into()),
            sudo_uid: Some("0".into()),
            dokku_pid: Some("1".into()),
            ..Default::default()
        };
        std::env::set_var("DOKKU_AUDIT_PROCESS_TREE_USER", "");
        assert_eq!(
            label(&command_actor(&env, Some("default")).unwrap()),
            "unix-user:root"
        );
        let env = HookEnv {
            sudo_user: Some("carol".into()),
            ..Default::default()
        };
        assert_eq!(
            label(&command_actor(&env, None).unwrap()),
            "sudo-user:carol"
        );
        assert!(command_actor(&HookEnv::default(), Some("default")).is_none());
    }
}
