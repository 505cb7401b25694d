//! Runtime settings: one table of keys, each resolved from `<data dir>/settings.json` (written by
//! `set`), then its environment variable, then the built-in default (reference §4.1 order).
//! Values are validated when read, so a bad value is a clear error, never a silent default.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// One known setting.
#[derive(Debug, Clone, Copy)]
pub struct Key {
    /// The name used by `get`/`set`.
    pub name: &'static str,
    /// Its environment variable.
    pub env: &'static str,
    /// The built-in default.
    pub default: &'static str,
    /// What it controls.
    pub help: &'static str,
}

/// Every setting this build knows: the reference's keys (kept for parity) and the store's own.
pub const KEYS: &[Key] = &[
    Key {
        name: "busy_timeout_ms",
        env: "DOKKU_AUDIT_BUSY_TIMEOUT_MS",
        default: "5000",
        help: "how long commands wait for the writer lock",
    },
    Key {
        name: "pending_stale_threshold_seconds",
        env: "DOKKU_AUDIT_PENDING_STALE_THRESHOLD_SECONDS",
        default: "86400",
        help: "age after which correlation state is stale",
    },
    Key {
        name: "command_match_window_seconds",
        env: "DOKKU_AUDIT_COMMAND_MATCH_WINDOW_SECONDS",
        default: "120",
        help: "fallback correlation window without DOKKU_PID",
    },
    Key {
        name: "strict_mode",
        env: "DOKKU_AUDIT_STRICT_MODE",
        default: "false",
        help: "triggers fail when they cannot record",
    },
    Key {
        name: "deploy_metadata_max_bytes",
        env: "DOKKU_AUDIT_DEPLOY_METADATA_MAX_BYTES",
        default: "1024",
        help: "truncation of deploy metadata",
    },
    Key {
        name: "pending_deploy_expiry_seconds",
        env: "DOKKU_AUDIT_PENDING_DEPLOY_EXPIRY_SECONDS",
        default: "21600",
        help:
            "a deploy not finished after this long no longer makes the next deploy a source deploy",
    },
    Key {
        name: "hook_timeout_ms",
        env: "DOKKU_AUDIT_HOOK_TIMEOUT_MS",
        default: "500",
        help: "how long a trigger waits for locks before giving up (with a warning)",
    },
    Key {
        name: "retention_days",
        env: "DOKKU_AUDIT_RETENTION_DAYS",
        default: "0",
        help:
            "delete sealed segments older than this many days when a segment is sealed (0: never)",
    },
    Key {
        name: "segment_max_bytes",
        env: "DOKKU_AUDIT_SEGMENT_MAX_BYTES",
        default: "16777216",
        help: "seal the active segment at this size",
    },
    Key {
        name: "segment_rotate_daily",
        env: "DOKKU_AUDIT_SEGMENT_ROTATE_DAILY",
        default: "true",
        help: "seal the active segment when the UTC day changes",
    },
    Key {
        name: "durability",
        env: "DOKKU_AUDIT_DURABILITY",
        default: "always",
        help: "always: fsync every append; relaxed: leave it to the OS",
    },
    Key {
        name: "seal_grace_seconds",
        env: "DOKKU_AUDIT_SEAL_GRACE_SECONDS",
        default: "3600",
        help: "keep the plain copy of a sealed segment this long for log shippers",
    },
    Key {
        name: "host_name",
        env: "DOKKU_AUDIT_HOST_NAME",
        default: "",
        help: "host name stamped on every event recorded here (empty: the kernel's hostname)",
    },
    Key {
        name: "host_id",
        env: "DOKKU_AUDIT_HOST_ID",
        default: "",
        help: "32 hex digits stamped on every event recorded here (empty: hashed /etc/machine-id)",
    },
    Key {
        name: "seal_zstd_level",
        env: "DOKKU_AUDIT_SEAL_ZSTD_LEVEL",
        default: "7",
        help: "zstd level used when sealing",
    },
];

/// The store's settings, validated (see the keys above for what each controls).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreSettings {
    /// `segment_max_bytes`.
    pub segment_max_bytes: u64,
    /// `segment_rotate_daily`.
    pub rotate_daily: bool,
    /// `durability` is `relaxed` (else `always`).
    pub durability_relaxed: bool,
    /// `seal_grace_seconds`.
    pub seal_grace: Duration,
    /// `seal_zstd_level`.
    pub zstd_level: i32,
    /// `busy_timeout_ms`: how long a writer waits for the lock.
    pub busy_timeout: Duration,
    /// `retention_days`.
    pub retention_days: u64,
}

/// A setting could not be read or has an invalid value.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The settings file is unreadable or not a JSON object of strings.
    #[error("cannot read settings file {path}: {detail}")]
    File {
        /// The file.
        path: String,
        /// Why.
        detail: String,
    },
    /// A value does not parse.
    #[error("invalid value for {key}: {value:?} ({expected})")]
    Invalid {
        /// The key.
        key: &'static str,
        /// The value.
        value: String,
        /// What was expected.
        expected: &'static str,
    },
}

/// Settings as resolved for one data directory.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    stored: BTreeMap<String, String>,
}

/// The settings file inside the data directory.
pub const SETTINGS_FILE: &str = crate::layout::SETTINGS;

impl Settings {
    /// Loads `<data dir>/settings.json` (absent = nothing stored).
    pub fn load(data_dir: &Path) -> Result<Settings, SettingsError> {
        let path = data_dir.join(SETTINGS_FILE);
        let text = match crate::safefs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Settings::default()),
            Err(e) => {
                return Err(SettingsError::File {
                    path: path.display().to_string(),
                    detail: e.to_string(),
                })
            }
        };
        let stored = serde_json::from_str(&text).map_err(|e| SettingsError::File {
            path: path.display().to_string(),
            detail: e.to_string(),
        })?;
        Ok(Settings { stored })
    }

    /// The raw value of a key: stored (non-empty), else the environment (if set), else default.
    pub fn raw(&self, key: &'static str) -> String {
        let spec = KEYS.iter().find(|k| k.name == key);
        if let Some(v) = self.stored.get(key).filter(|v| !v.is_empty()) {
            return v.clone();
        }
        if let Some(spec) = spec {
            if let Ok(v) = std::env::var(spec.env) {
                if !v.is_empty() {
                    return v;
                }
            }
            return spec.default.to_string();
        }
        String::new()
    }

    /// An integer setting within `min..=max`.
    pub fn int(&self, key: &'static str, min: u64, max: u64) -> Result<u64, SettingsError> {
        let v = self.raw(key);
        match v.trim().parse::<u64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(SettingsError::Invalid {
                key,
                value: v,
                expected: "an integer in range",
            }),
        }
    }

    /// Boolean: `1|true|yes|on` (any case) are true; `0|false|no|off` false; others invalid.
    pub fn bool(&self, key: &'static str) -> Result<bool, SettingsError> {
        let v = self.raw(key);
        match v.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(true),
            "0" | "false" | "no" | "off" | "" => Ok(false),
            _ => Err(SettingsError::Invalid {
                key,
                value: v,
                expected: "true or false",
            }),
        }
    }

    /// Sets (or, with an empty value, removes) a stored value; nothing is written until
    /// [`Settings::save`].
    pub fn store(&mut self, key: &str, value: &str) {
        if value.is_empty() {
            self.stored.remove(key);
        } else {
            self.stored.insert(key.to_string(), value.to_string());
        }
    }

    /// Parses every setting the way its reader will: the first invalid one is the error.
    pub fn validate(&self) -> Result<(), SettingsError> {
        self.store_settings()?;
        self.bool("strict_mode")?;
        self.int("command_match_window_seconds", 0, 30 * 86_400)?;
        self.int("pending_stale_threshold_seconds", 0, 365 * 86_400)?;
        self.int("pending_deploy_expiry_seconds", 0, 365 * 86_400)?;
        self.int("hook_timeout_ms", 0, 60_000)?;
        self.int("deploy_metadata_max_bytes", 0, 1 << 20)?;
        crate::event::host::HostIdentity::from_settings(self)?;
        Ok(())
    }

    /// Writes the stored values to `<data dir>/settings.json` (atomically).
    pub fn save(&self, data_dir: &Path) -> Result<(), SettingsError> {
        let owner = crate::safefs::Ownership::from_env();
        let path = data_dir.join(SETTINGS_FILE);
        let fail = |e: crate::safefs::FsError| SettingsError::File {
            path: path.display().to_string(),
            detail: e.to_string(),
        };
        crate::safefs::ensure_dir(data_dir, &owner).map_err(fail)?;
        let mut bytes = serde_json::to_vec_pretty(&self.stored).unwrap_or_default();
        bytes.push(b'\n');
        crate::safefs::atomic_write(&path, &bytes, &owner).map_err(fail)
    }

    /// The store's keys, parsed and range-checked (the store turns them into its options:
    /// `StoreOptions::from_settings`).
    pub fn store_settings(&self) -> Result<StoreSettings, SettingsError> {
        let relaxed = match self.raw("durability").trim() {
            "always" => false,
            "relaxed" => true,
            other => {
                return Err(SettingsError::Invalid {
                    key: "durability",
                    value: other.to_string(),
                    expected: "always or relaxed",
                })
            }
        };
        Ok(StoreSettings {
            segment_max_bytes: self.int("segment_max_bytes", 4096, 1 << 40)?,
            rotate_daily: self.bool("segment_rotate_daily")?,
            durability_relaxed: relaxed,
            seal_grace: Duration::from_secs(self.int("seal_grace_seconds", 0, 30 * 86_400)?),
            zstd_level: self.int("seal_zstd_level", 1, 19)? as i32,
            busy_timeout: Duration::from_millis(self.int("busy_timeout_ms", 0, 3_600_000)?),
            retention_days: self.int("retention_days", 0, 100_000)?,
        })
    }
}
