//! Actor attribution (reference §5): the local actor of maintenance commands, and the actor label
//! shown in the ACTOR column. Local identity is probed from the environment, `/etc/passwd` and
//! `/proc` (never by spawning `ps` or `id`), and every probe has a `DOKKU_AUDIT_*` test override.

use serde_json::{Map, Value};

use crate::record::ActorStamp;

/// The local identity probes (reference §5.1), each `None` when not found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocalIdentity {
    /// `SUDO_USER` (or its override).
    pub sudo_user: Option<String>,
    /// `LOGNAME`/`USER` or the process-tree user (or the override).
    pub local_user: Option<String>,
    /// Where `local_user` came from: `LOCAL_USER` or `PROCESS_TREE_USER`.
    pub local_source: Option<&'static str>,
    /// The effective user's name.
    pub effective_user: Option<String>,
    /// The first ancestor process owned by a meaningful user.
    pub process_tree_user: Option<String>,
}

/// Reads an override: `Some(value)` when the variable is set (even empty), `None` when unset.
fn override_var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.filter(|v| !v.is_empty())
}

/// A user name that says who a person is: not empty, `root` or `dokku`.
pub fn is_meaningful(name: &str) -> bool {
    !name.is_empty() && name != "root" && name != "dokku"
}

impl LocalIdentity {
    /// Probes the local identity.
    pub fn probe() -> LocalIdentity {
        let sudo_user = non_empty(
            override_var("DOKKU_AUDIT_SUDO_USER").or_else(|| std::env::var("SUDO_USER").ok()),
        );
        let process_tree_user = match override_var("DOKKU_AUDIT_PROCESS_TREE_USER") {
            Some(v) => non_empty(Some(v)),
            None => process_tree_user(),
        };
        let (local_user, local_source) = match override_var("DOKKU_AUDIT_LOCAL_USER") {
            Some(v) if !v.is_empty() => (Some(v), Some("LOCAL_USER")),
            Some(_) => (
                process_tree_user.clone(),
                process_tree_user.as_ref().map(|_| "PROCESS_TREE_USER"),
            ),
            None => match non_empty(std::env::var("LOGNAME").ok())
                .or_else(|| non_empty(std::env::var("USER").ok()))
            {
                Some(u) => (Some(u), Some("LOCAL_USER")),
                None => (
                    process_tree_user.clone(),
                    process_tree_user.as_ref().map(|_| "PROCESS_TREE_USER"),
                ),
            },
        };
        let effective_user = match override_var("DOKKU_AUDIT_EFFECTIVE_USER") {
            Some(v) => non_empty(Some(v)),
            None => proc_uid("self")
                .and_then(user_name)
                .or_else(|| non_empty(std::env::var("USER").ok())),
        };
        LocalIdentity {
            sudo_user,
            local_user,
            local_source,
            effective_user,
            process_tree_user,
        }
    }

    /// Whether a sudo user is known (the override, else `SUDO_USER`), without probing the rest.
    pub fn has_sudo_user() -> bool {
        override_var("DOKKU_AUDIT_SUDO_USER")
            .or_else(|| std::env::var("SUDO_USER").ok())
            .is_some_and(|v| !v.is_empty())
    }

    /// The "safe local actor" of maintenance commands (reference §5.1): sudo user, else local
    /// user, else effective user, else Dokku itself.
    pub fn actor(&self) -> ActorStamp {
        let (name, source) = if let Some(s) = &self.sudo_user {
            (Some(s.clone()), Some("SUDO_USER"))
        } else if let Some(l) = &self.local_user {
            (Some(l.clone()), self.local_source)
        } else if let Some(e) = &self.effective_user {
            (Some(e.clone()), Some("EFFECTIVE_USER"))
        } else {
            (None, None)
        };
        let mut meta = Map::new();
        if let Some(s) = source {
            meta.insert("actor_source".into(), Value::from(s));
        }
        for (k, v) in [
            ("sudo_user", &self.sudo_user),
            ("local_user", &self.local_user),
            ("effective_user", &self.effective_user),
            ("process_tree_user", &self.process_tree_user),
        ] {
            if let Some(v) = v {
                meta.insert(k.into(), Value::from(v.clone()));
            }
        }
        let actor_type = if name.is_some() { "user" } else { "system" };
        let label = actor_label(actor_type, name.as_deref(), &meta);
        ActorStamp {
            actor_type: actor_type.into(),
            actor_name: name,
            actor_label: label,
            meta,
        }
    }
}

/// The actor label (reference §5.6); the first matching rule wins.
pub fn actor_label(
    actor_type: &str,
    actor_name: Option<&str>,
    meta: &Map<String, Value>,
) -> String {
    if actor_type == "system" {
        return "dokku-system".into();
    }
    let m = |k: &str| {
        meta.get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let source = m("actor_source").unwrap_or("");
    let rules: [(&[&str], &str, &str); 6] = [
        (&["SUDO_USER"], "sudo_user", "sudo-user:"),
        (&["PROCESS_TREE_USER"], "process_tree_user", "unix-user:"),
        (
            &["LOCAL_USER", "EFFECTIVE_USER"],
            "local_user",
            "unix-user:",
        ),
        (&["EFFECTIVE_USER"], "effective_user", "unix-user:"),
        (&["SSH_NAME"], "ssh_name", "ssh-key:"),
        (&["SSH_USER"], "ssh_user", "ssh-user:"),
    ];
    for (sources, key, prefix) in rules {
        if sources.contains(&source) {
            if let Some(v) = m(key) {
                return format!("{prefix}{v}");
            }
        }
    }
    match actor_name.filter(|s| !s.is_empty()) {
        Some(n) => n.to_string(),
        None if !actor_type.is_empty() => actor_type.to_string(),
        None => "-".into(),
    }
}

/// The uid of a process from `/proc/<pid>/status` (real uid, first field of `Uid:`); for
/// `self` the effective uid (second field).
fn proc_uid(pid: &str) -> Option<u32> {
    let status = std::fs::read_to_string(super::procfs::root().join(pid).join("status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    let mut fields = line.split_whitespace().skip(1);
    let real = fields.next()?;
    let effective = fields.next()?;
    (if pid == "self" { effective } else { real }).parse().ok()
}

fn proc_ppid(pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("PPid:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// `/etc/passwd`, read once per process (the process-tree walk looks up several uids).
fn passwd() -> &'static str {
    static PASSWD: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PASSWD.get_or_init(|| std::fs::read_to_string(super::procfs::passwd_path()).unwrap_or_default())
}

/// A user name from `/etc/passwd`.
pub fn user_name(uid: u32) -> Option<String> {
    passwd().lines().find_map(|l| {
        let mut p = l.split(':');
        let name = p.next()?;
        (p.nth(1)?.parse::<u32>().ok()? == uid).then(|| name.to_string())
    })
}

/// Walks up from our parent, at most 16 levels, to the first process owned by a meaningful user:
/// the human behind `sudo dokku …` after Dokku re-executed itself as `dokku`.
fn process_tree_user() -> Option<String> {
    let mut pid = std::process::id();
    for _ in 0..16 {
        if pid <= 1 {
            break;
        }
        if let Some(name) = proc_uid(&pid.to_string()).and_then(user_name) {
            if is_meaningful(&name) {
                return Some(name);
            }
        }
        pid = proc_ppid(pid)?;
    }
    None
}

/// What `user-auth` knows about the SSH side (reference §5.2, plus fingerprint and client address).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SshIdentity {
    /// `$1`: the OS user (`dokku` over SSH).
    pub ssh_user: String,
    /// `$2`: the key's `NAME` (`default` locally).
    pub ssh_name: String,
    /// The key fingerprint, when known.
    pub fingerprint: Option<String>,
    /// The client address, when known.
    pub client_address: Option<String>,
}

/// The fingerprint of the key named `name`: the `FINGERPRINT=` of the one line of sshcommand's
/// `authorized_keys` whose `NAME="<name>"` (none or several lines: unknown). A file read instead
/// of the reference's `sshcommand list` process.
pub fn fingerprint_from_authorized_keys(dokku_root: &str, name: &str) -> Option<String> {
    let text = std::fs::read_to_string(format!("{dokku_root}/.ssh/authorized_keys")).ok()?;
    // sshcommand writes `NAME=\"alice\"` inside the quoted command; accept it unescaped too.
    let needle = format!("NAME=\"{name}\"");
    let mut found = text
        .lines()
        .filter(|l| l.replace("\\\"", "\"").contains(&needle))
        .filter_map(|l| {
            let start = l.find("FINGERPRINT=")? + "FINGERPRINT=".len();
            let rest = &l[start..];
            let end = rest
                .find(|c: char| c.is_whitespace() || c == '"')
                .unwrap_or(rest.len());
            Some(rest[..end].to_string()).filter(|f| !f.is_empty())
        });
    let first = found.next()?;
    found.next().is_none().then_some(first)
}

/// The actor of a `user-auth` call (reference §5.3): the SSH identity, unless the local identity
/// names a person and the SSH side is low-signal (sudo, `SSH_NAME=default`, or no key name over
/// a `dokku`/empty user). The identity keys of both sides are kept in `meta`.
pub fn user_auth_actor(
    ssh: &SshIdentity,
    local: &LocalIdentity,
) -> (String, Option<String>, Map<String, Value>) {
    let (mut name, mut source) = if !ssh.ssh_name.is_empty() {
        (ssh.ssh_name.clone(), "SSH_NAME")
    } else if !ssh.ssh_user.is_empty() {
        (ssh.ssh_user.clone(), "SSH_USER")
    } else {
        (String::new(), "")
    };
    let local_actor = local.actor();
    let local_name = local_actor.actor_name.clone().unwrap_or_default();
    let local_source = local_actor
        .meta
        .get("actor_source")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let low_signal_ssh = local_source == "SUDO_USER"
        || ssh.ssh_name == "default"
        || (ssh.ssh_name.is_empty() && (ssh.ssh_user.is_empty() || ssh.ssh_user == "dokku"));
    let mut use_local = is_meaningful(&local_name) && low_signal_ssh;
    if !use_local && name.is_empty() && !local_name.is_empty() {
        use_local = true;
    }
    if use_local {
        name = local_name;
        source = if local_source.is_empty() {
            ""
        } else {
            local_source.as_str()
        };
    }
    let source = source.to_string();
    let mut meta = Map::new();
    let fingerprint = if ssh.ssh_name.is_empty() {
        None
    } else {
        ssh.fingerprint.clone()
    };
    for (k, v) in [
        ("ssh_user", Some(ssh.ssh_user.clone())),
        ("ssh_name", Some(ssh.ssh_name.clone())),
        ("ssh_key_fingerprint", fingerprint),
        ("client_address", ssh.client_address.clone()),
    ] {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            meta.insert(k.into(), Value::from(v));
        }
    }
    for (k, v) in &local_actor.meta {
        if k != "actor_source" {
            meta.insert(k.clone(), v.clone());
        }
    }
    if !source.is_empty() {
        meta.insert("actor_source".into(), Value::from(source));
    }
    let actor_type = if name.is_empty() { "system" } else { "user" };
    (
        actor_type.to_string(),
        Some(name).filter(|n| !n.is_empty()),
        meta,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(pairs: &[(&str, &str)]) -> Map<String, Value> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), Value::from(*v)))
            .collect()
    }

    #[test]
    fn labels_follow_reference_rules() {
        assert_eq!(actor_label("system", None, &Map::new()), "dokku-system");
        assert_eq!(
            actor_label(
                "user",
                Some("bob"),
                &meta(&[("actor_source", "SUDO_USER"), ("sudo_user", "bob")])
            ),
            "sudo-user:bob"
        );
        assert_eq!(
            actor_label(
                "user",
                Some("p"),
                &meta(&[
                    ("actor_source", "PROCESS_TREE_USER"),
                    ("process_tree_user", "p")
                ])
            ),
            "unix-user:p"
        );
        assert_eq!(
            actor_label(
                "user",
                Some("r"),
                &meta(&[("actor_source", "EFFECTIVE_USER"), ("effective_user", "r")])
            ),
            "unix-user:r"
        );
        assert_eq!(
            actor_label(
                "user",
                Some("alice"),
                &meta(&[("actor_source", "SSH_NAME"), ("ssh_name", "alice")])
            ),
            "ssh-key:alice"
        );
        assert_eq!(
            actor_label(
                "user",
                Some("dokku"),
                &meta(&[("actor_source", "SSH_USER"), ("ssh_user", "dokku")])
            ),
            "ssh-user:dokku"
        );
        assert_eq!(actor_label("user", Some("x"), &Map::new()), "x");
        assert_eq!(actor_label("user", None, &Map::new()), "user");
        assert_eq!(actor_label("", None, &Map::new()), "-");
    }

    #[test]
    fn sudo_wins_then_local_then_effective() {
        let id = LocalIdentity {
            sudo_user: Some("ubuntu".into()),
            local_user: Some("root".into()),
            local_source: Some("LOCAL_USER"),
            effective_user: Some("root".into()),
            process_tree_user: None,
        };
        let a = id.actor();
        assert_eq!(a.actor_label, "sudo-user:ubuntu");
        assert_eq!(
            serde_json::to_string(&a.meta).unwrap(),
            r#"{"actor_source":"SUDO_USER","sudo_user":"ubuntu","local_user":"root","effective_user":"root"}"#
        );
        let a = LocalIdentity {
            effective_user: Some("root".into()),
            ..Default::default()
        }
        .actor();
        assert_eq!(
            (a.actor_type.as_str(), a.actor_label.as_str()),
            ("user", "unix-user:root")
        );
        let a = LocalIdentity::default().actor();
        assert_eq!(
            (a.actor_type.as_str(), a.actor_label.as_str()),
            ("system", "dokku-system")
        );
    }

    #[test]
    fn user_auth_prefers_ssh_unless_low_signal() {
        let ssh = SshIdentity {
            ssh_user: "dokku".into(),
            ssh_name: "alice".into(),
            fingerprint: Some("SHA256:a".into()),
            client_address: Some("203.0.113.9".into()),
        };
        let (t, n, m) = user_auth_actor(&ssh, &LocalIdentity::default());
        assert_eq!((t.as_str(), n.as_deref()), ("user", Some("alice")));
        assert_eq!(
            serde_json::to_string(&m).unwrap(),
            r#"{"ssh_user":"dokku","ssh_name":"alice","ssh_key_fingerprint":"SHA256:a","client_address":"203.0.113.9","actor_source":"SSH_NAME"}"#
        );
        let local = LocalIdentity {
            local_user: Some("pruvon".into()),
            local_source: Some("PROCESS_TREE_USER"),
            effective_user: Some("root".into()),
            process_tree_user: Some("pruvon".into()),
            ..Default::default()
        };
        let ssh = SshIdentity {
            ssh_user: "dokku".into(),
            ssh_name: "default".into(),
            ..Default::default()
        };
        let (_, n, m) = user_auth_actor(&ssh, &local);
        assert_eq!(n.as_deref(), Some("pruvon"));
        assert_eq!(m["actor_source"], "PROCESS_TREE_USER");
        assert_eq!(m["ssh_name"], "default");
    }

    #[test]
    fn fingerprint_lookup_needs_exactly_one_key() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(".ssh")).unwrap();
        let line = |fp: &str, name: &str| {
            format!("command=\"FINGERPRINT={fp} NAME=\\\"{name}\\\" `cat /home/dokku/.sshcommand` $SSH_ORIGINAL_COMMAND\",no-pty ssh-ed25519 AAAA\n")
        };
        let text = line("SHA256:alice-key", "alice")
            + &line("SHA256:b1", "bob")
            + &line("SHA256:b2", "bob");
        std::fs::write(dir.path().join(".ssh/authorized_keys"), text).unwrap();
        let root = dir.path().to_str().unwrap();
        assert_eq!(
            fingerprint_from_authorized_keys(root, "alice").as_deref(),
            Some("SHA256:alice-key")
        );
        assert_eq!(fingerprint_from_authorized_keys(root, "bob"), None);
        assert_eq!(fingerprint_from_authorized_keys(root, "carol"), None);
    }

    #[test]
    fn proc_probe_finds_our_own_uid() {
        assert!(proc_uid("self").is_some());
    }
}
