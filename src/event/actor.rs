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
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
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

/// A user name from `/etc/passwd`.
pub fn user_name(uid: u32) -> Option<String> {
    let text = std::fs::read_to_string("/etc/passwd").ok()?;
    text.lines().find_map(|l| {
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
    fn proc_probe_finds_our_own_uid() {
        assert!(proc_uid("self").is_some());
    }
}
