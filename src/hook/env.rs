//! The environment Dokku gives every trigger, as far as auditing cares.

/// The environment Dokku gives every trigger, as far as auditing cares.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HookEnv {
    /// `DOKKU_PID`: shared by every trigger of one `dokku` invocation (nested ones included).
    pub dokku_pid: Option<String>,
    /// `DOKKU_BUILD_ID`: ties build and deploy steps together (Dokku ≥ 0.38).
    pub build_id: Option<String>,
    /// `DOKKU_APP_NAME`: a leading `--app APP`, which never reaches `user-auth`'s argv.
    pub app_name: Option<String>,
    /// `FINGERPRINT`: the SSH key fingerprint sshcommand sets.
    pub fingerprint: Option<String>,
    /// The client address: first field of `SSH_CONNECTION`, else of `SSH_CLIENT`.
    pub client_address: Option<String>,
    /// `DOKKU_ROOT` (default `/home/dokku`).
    pub dokku_root: String,
    /// `DOKKU_LIB_ROOT` (default `/var/lib/dokku`).
    pub dokku_lib_root: String,
    /// `NAME`: the key name sshcommand's forced command sets (with `FINGERPRINT`).
    pub ssh_key_name: Option<String>,
    /// `SSH_USER`, which Dokku exports to every trigger (`root` for root, `dokku` over SSH).
    pub ssh_user: Option<String>,
    /// `SSH_NAME` (`default` outside SSH).
    pub ssh_name: Option<String>,
    /// `SUDO_USER` (or the test override `DOKKU_AUDIT_SUDO_USER`).
    pub sudo_user: Option<String>,
    /// `SUDO_UID`.
    pub sudo_uid: Option<String>,
    /// `DOKKU_COMMAND`: the (possibly nested) command this trigger runs under.
    pub dokku_command: Option<String>,
}

fn env_non_empty(name: &str) -> Option<String> {
    std::env::var_os(name)
        .map(|v| v.to_string_lossy().into_owned())
        .filter(|v| !v.is_empty())
}

impl HookEnv {
    /// Reads the process environment.
    pub fn from_process() -> HookEnv {
        let client_address = env_non_empty("SSH_CONNECTION")
            .or_else(|| env_non_empty("SSH_CLIENT"))
            .and_then(|c| c.split_whitespace().next().map(str::to_string));
        HookEnv {
            dokku_pid: env_non_empty("DOKKU_PID"),
            build_id: env_non_empty("DOKKU_BUILD_ID"),
            app_name: env_non_empty("DOKKU_APP_NAME"),
            fingerprint: env_non_empty("FINGERPRINT"),
            client_address,
            dokku_root: env_non_empty("DOKKU_ROOT").unwrap_or_else(|| "/home/dokku".into()),
            dokku_lib_root: env_non_empty("DOKKU_LIB_ROOT")
                .unwrap_or_else(|| "/var/lib/dokku".into()),
            ssh_key_name: env_non_empty("NAME"),
            ssh_user: env_non_empty("SSH_USER"),
            ssh_name: env_non_empty("SSH_NAME"),
            sudo_user: match std::env::var("DOKKU_AUDIT_SUDO_USER") {
                Ok(v) => Some(v).filter(|v| !v.is_empty()),
                Err(_) => env_non_empty("SUDO_USER"),
            },
            sudo_uid: env_non_empty("SUDO_UID"),
            dokku_command: env_non_empty("DOKKU_COMMAND"),
        }
    }
}
