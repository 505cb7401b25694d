//! Which host an event was recorded on: `meta.host_name` and `meta.host_id`, stamped on every
//! event this binary records (hook, `report-deploy-status`, maintenance, `import-sqlite`, demo),
//! so a collector holding many hosts' trails can tell them apart and deduplicate on
//! (host id, event id). Events brought in by `import` keep what they carry.
//!
//! The id is derived from `/etc/machine-id` the way systemd asks applications to
//! (`sd_id128_get_machine_app_specific`: never publish the raw machine id, derive an
//! application-specific one): SHA-256 over a fixed label and the machine id, first 128 bits, so
//! it is stable across reboots and reinstalls of dokku-audit and says nothing about the machine
//! id itself. Cloned machines share a machine id: `host_id` (a setting) overrides it.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::settings::{Settings, SettingsError};

/// The meta key of the host's name.
pub const HOST_NAME_KEY: &str = "host_name";
/// The meta key of the host's id.
pub const HOST_ID_KEY: &str = "host_id";

/// Where the machine id is read from, in order (the second is the D-Bus copy older systems
/// have instead).
const MACHINE_ID_FILES: [&str; 2] = ["/etc/machine-id", "/var/lib/dbus/machine-id"];

/// The label mixed into the hash, so this id differs from any other application's.
const LABEL: &[u8] = b"dokku-audit host id v1\0";

/// The host identity stamped on events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostIdentity {
    /// The host's name (`host_name` setting, else the kernel's hostname); empty if unknown.
    pub name: String,
    /// 32 lower-case hex digits (`host_id` setting, else hashed machine id); empty if unknown.
    pub id: String,
}

impl HostIdentity {
    /// The identity from the settings, else from the machine. A `host_id` that is not 32
    /// hex digits is a settings error.
    pub fn from_settings(settings: &Settings) -> Result<HostIdentity, SettingsError> {
        let name = settings.raw("host_name").trim().to_string();
        let id = settings.raw("host_id").trim().to_ascii_lowercase();
        if !id.is_empty() && !is_host_id(&id) {
            return Err(SettingsError::Invalid {
                key: "host_id",
                value: id,
                expected: "32 hex digits",
            });
        }
        Ok(HostIdentity {
            name: if name.is_empty() {
                kernel_hostname()
            } else {
                name
            },
            id: if id.is_empty() { machine_host_id() } else { id },
        })
    }

    /// Like [`HostIdentity::from_settings`], but a bad setting leaves the id to the machine:
    /// recording an event never fails for this.
    pub fn for_recording(settings: &Settings) -> HostIdentity {
        HostIdentity::from_settings(settings).unwrap_or_else(|_| HostIdentity {
            name: kernel_hostname(),
            id: machine_host_id(),
        })
    }

    /// Adds `host_name` and `host_id` to `meta` (each only if known), replacing nothing an
    /// event already says.
    pub fn stamp(&self, meta: &mut Map<String, Value>) {
        for (key, value) in [(HOST_NAME_KEY, &self.name), (HOST_ID_KEY, &self.id)] {
            if !value.is_empty() && !meta.contains_key(key) {
                meta.insert(key.into(), Value::from(value.as_str()));
            }
        }
    }
}

fn is_host_id(s: &str) -> bool {
    s.len() == 32
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn kernel_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

/// The host id derived from the first readable machine id file; empty if there is none.
fn machine_host_id() -> String {
    MACHINE_ID_FILES
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|t| t.trim().to_string())
        .find(|t| !t.is_empty())
        .map(|t| host_id_of(&t))
        .unwrap_or_default()
}

/// SHA-256 of the label and the machine id, first 16 bytes in hex.
pub fn host_id_of(machine_id: &str) -> String {
    let digest = Sha256::new()
        .chain_update(LABEL)
        .chain_update(machine_id.as_bytes())
        .finalize();
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_id_is_a_labelled_hash_of_the_machine_id() {
        let id = host_id_of("0123456789abcdef0123456789abcdef");
        assert!(is_host_id(&id), "{id}");
        assert_ne!(id, "0123456789abcdef0123456789abcdef");
        assert_eq!(id, host_id_of("0123456789abcdef0123456789abcdef"));
        assert_ne!(id, host_id_of("0123456789abcdef0123456789abcdee"));
    }

    #[test]
    fn stamping_never_replaces_what_an_event_says() {
        let host = HostIdentity {
            name: "web-1".into(),
            id: "00112233445566778899aabbccddeeff".into(),
        };
        let mut meta = Map::new();
        meta.insert("host_name".into(), Value::from("imported"));
        host.stamp(&mut meta);
        assert_eq!(meta["host_name"], "imported");
        assert_eq!(meta["host_id"], "00112233445566778899aabbccddeeff");
        let mut empty = Map::new();
        HostIdentity::default().stamp(&mut empty);
        assert!(empty.is_empty());
    }

    #[test]
    fn a_host_id_setting_must_be_32_hex_digits() {
        assert!(is_host_id("00112233445566778899aabbccddeeff"));
        assert!(!is_host_id("00112233445566778899aabbccddeef"));
        assert!(!is_host_id("00112233445566778899aabbccddeefg"));
    }
}
