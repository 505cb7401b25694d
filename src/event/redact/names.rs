//! Which names say "secret", and which flags and programs take one. Generous on purpose: a name
//! that merely looks sensitive loses its value, an auditor still sees the name.

/// Parts of a flag, `K=V` key or property name that make its value a secret (ASCII
/// case-insensitive substring match). `pass` covers password, passwd, passphrase; `key` covers
/// api-key, apikey, private_key, access_key; `auth` covers oauth, authorization.
const SENSITIVE_PARTS: &[&str] = &[
    "pass",
    "pwd",
    "secret",
    "token",
    "key",
    "cred",
    "auth",
    "private",
    "bearer",
    "session",
    "cookie",
    "salt",
    "signature",
    "dsn",
    "jwt",
    "webhook",
];

/// Whether a name (without leading dashes) says its value is a secret. Runs on every flag and
/// `K=V` of every command line: one lower-casing pass into a stack buffer, then a scan that only
/// compares where a part's first letter is.
pub fn is_sensitive(name: &str) -> bool {
    let mut buf = [0u8; 96];
    let heap;
    let lower: &[u8] = if name.len() <= buf.len() {
        for (d, s) in buf.iter_mut().zip(name.bytes()) {
            *d = s.to_ascii_lowercase();
        }
        &buf[..name.len()]
    } else {
        heap = name.to_ascii_lowercase().into_bytes();
        &heap
    };
    (0..lower.len()).any(|i| {
        let rest = &lower[i..];
        matches!(
            rest[0],
            b'p' | b's' | b't' | b'k' | b'c' | b'a' | b'b' | b'd' | b'j' | b'w'
        ) && SENSITIVE_PARTS
            .iter()
            .any(|p| rest.starts_with(p.as_bytes()))
    })
}

/// Flags with a sensitive name that take no value (`registry:login --password-stdin`,
/// `--no-auth`, `redis-cli --askpass`): the next word is not their value.
pub fn is_boolean_flag(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.ends_with("-stdin")
        || n.starts_with("no-")
        || n.starts_with("skip-")
        || n.starts_with("without-")
        || n.starts_with("insecure")
        || n == "askpass"
}

/// Whether a flag (`--password`, `-password`, `--config-options`) takes a secret value.
pub fn is_secret_flag(flag: &str) -> bool {
    let bare = flag.trim_start_matches('-');
    is_opaque_flag(flag) || (is_sensitive(bare) && !is_boolean_flag(bare))
}

/// Flags whose value is `K=V` (the value of `K` is redacted, `K` kept): docker's `-e`/`--env`,
/// `--build-arg`, pack's `--build-env`/`--env`.
pub fn is_env_flag(flag: &str) -> bool {
    matches!(
        flag,
        "-e" | "--env" | "--build-arg" | "--build-env" | "--set-env" | "--env-var"
    )
}

/// Flags whose value is `K=V;K2=V2` (datastore plugins' `--custom-env`).
pub fn is_custom_env_flag(flag: &str) -> bool {
    flag == "--custom-env"
}

/// Flags whose whole value is redacted: server options may hold passwords
/// (`--config-options "--requirepass X"`).
pub fn is_opaque_flag(flag: &str) -> bool {
    matches!(flag, "--config-options" | "--querystring")
}

/// Programs whose own flags carry passwords.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    /// `sh -c SCRIPT`: the script is a command line.
    Shell,
    /// `mysql -pPASSWORD` (attached only: `-p X` prompts and X is the database).
    Mysql,
    /// `redis-cli -a PASSWORD`.
    Redis,
    /// `mongosh -p PASSWORD`, `sshpass -p PASSWORD`.
    DashP,
    /// `curl -u USER:PASSWORD`.
    Curl,
    /// `rabbitmqctl add_user USER PASSWORD`.
    Rabbit,
    /// `htpasswd -b FILE USER PASSWORD`.
    Htpasswd,
}

/// The tool a command word names (its basename), if any.
pub fn tool(word: &str) -> Option<Tool> {
    let base = word.rsplit('/').next().unwrap_or(word);
    Some(match base {
        "sh" | "bash" | "dash" | "zsh" | "ash" | "ksh" | "busybox" => Tool::Shell,
        "mysql" | "mysqldump" | "mysqladmin" | "mysqlimport" | "mysqlshow" | "mysqlcheck"
        | "mysqlpump" | "mysqlsh" | "mariadb" | "mariadb-dump" | "mariadb-admin"
        | "mariadb-import" | "mariadb-check" => Tool::Mysql,
        "redis-cli" | "valkey-cli" | "keydb-cli" => Tool::Redis,
        "mongo" | "mongosh" | "mongodump" | "mongorestore" | "mongoexport" | "mongoimport"
        | "mongostat" | "mongotop" | "mongofiles" | "sshpass" => Tool::DashP,
        "curl" => Tool::Curl,
        "rabbitmqctl" => Tool::Rabbit,
        "htpasswd" => Tool::Htpasswd,
        _ => return None,
    })
}

/// Whether `key` is a plausible `K=V` key (`PGPASSWORD`, `spring.datasource.password`).
pub fn is_key(key: &str) -> bool {
    let mut b = key.bytes();
    b.next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for n in [
            "password",
            "DB_PASS",
            "MYSQL_PWD",
            "api-key",
            "APIKEY",
            "client_secret",
            "GITHUB_TOKEN",
            "Authorization",
            "private_key",
            "aws_session_token",
            "SENTRY_DSN",
        ] {
            assert!(is_sensitive(n), "{n}");
        }
        for n in ["image-version", "memory", "RAILS_ENV", "app", "label", "u"] {
            assert!(!is_sensitive(n), "{n}");
        }
        // The first-letter filter of `is_sensitive` knows every part.
        for p in SENSITIVE_PARTS {
            assert!(is_sensitive(p), "{p}");
            assert!(is_sensitive(&format!("X_{}_Y", p.to_uppercase())), "{p}");
        }
        assert!(is_sensitive(&format!("{}token", "a".repeat(200))));
        assert!(is_boolean_flag("password-stdin"));
        assert!(!is_boolean_flag("password"));
        assert_eq!(tool("/usr/bin/mysql"), Some(Tool::Mysql));
        assert_eq!(tool("ls"), None);
        assert!(is_key("spring.datasource.password") && is_key("_X1"));
        assert!(!is_key("-e X") && !is_key("") && !is_key("1A"));
    }
}
