//! The event record: the one JSON object that segments, the index, exports and every JSON output
//! carry (interface.md §5).
//!
//! This is the bottom layer of the crate. The store, the index, event building and output all
//! use [`Event`]; it depends on nothing of ours except the timestamp helpers, so no arrow runs
//! back up from the store.
//!
//! Field order is part of the contract: serde serialises struct fields in declaration order, and
//! `meta` keeps its key order (serde_json `preserve_order`), so what is written is what comes back.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::timefmt;

/// One audit event, exactly as interface.md §5 defines it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// Unique, strictly increasing, assigned at append, never reused.
    pub id: u64,
    /// When it happened, `YYYY-MM-DDTHH:MM:SSZ`.
    pub ts: String,
    /// The app, or null for host-level events.
    pub app: Option<String>,
    /// `deploy`, `app`, `config`, `domains`, `ports`, `certs`, `command`, `maintenance`.
    pub category: String,
    /// Per category (`finish`, `receive`, `create`, `set`, …).
    pub action: String,
    /// `success`, `error`, `failed`, …
    pub status: String,
    /// `source_deploy`, `release_only`, `config_change`, …
    pub classification: Option<String>,
    /// The trigger or command that produced it.
    pub source_trigger: String,
    /// Deploy source (`git-push`, `git-sync`, `docker-image`, …).
    pub source_type: Option<String>,
    /// Deployed image.
    pub image_tag: Option<String>,
    /// Deployed revision.
    pub rev: Option<String>,
    /// `user` or `system`.
    pub actor_type: String,
    /// The identity within that type.
    pub actor_name: Option<String>,
    /// `ssh-key:<name>`, `ssh-user:<u>`, `sudo-user:<u>`, `unix-user:<u>` or `dokku-system`.
    pub actor_label: String,
    /// Ties the events of one operation together.
    pub correlation_id: Option<String>,
    /// One human sentence.
    pub message: String,
    /// Event-specific detail; never a secret value.
    pub meta: Map<String, Value>,
    /// When it was written.
    pub created_at: String,
}

/// An event object as it may arrive from outside: `id` and `created_at` optional, integrity
/// fields of raw segment lines tolerated (and dropped), anything else unknown refused.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireEvent {
    id: Option<u64>,
    ts: String,
    app: Option<String>,
    category: String,
    action: String,
    status: String,
    classification: Option<String>,
    source_trigger: String,
    source_type: Option<String>,
    image_tag: Option<String>,
    rev: Option<String>,
    actor_type: String,
    actor_name: Option<String>,
    actor_label: String,
    correlation_id: Option<String>,
    message: String,
    meta: Map<String, Value>,
    created_at: Option<String>,
    #[serde(rename = "v")]
    _v: Option<serde::de::IgnoredAny>,
    #[serde(rename = "chain")]
    _chain: Option<serde::de::IgnoredAny>,
    #[serde(rename = "crc")]
    _crc: Option<serde::de::IgnoredAny>,
}

/// Why an event object was refused (import, or a segment line whose JSON is not an event).
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RecordError {
    /// Not JSON, or not an event object.
    #[error("not a valid event object: {0}")]
    Json(String),
    /// A timestamp field is not `YYYY-MM-DDTHH:MM:SSZ`.
    #[error("field `{field}` is not a UTC timestamp (YYYY-MM-DDTHH:MM:SSZ): {value:?}")]
    BadTimestamp {
        /// The field name.
        field: &'static str,
        /// What it held.
        value: String,
    },
    /// A required text field is empty.
    #[error("field `{0}` must not be empty")]
    Empty(&'static str),
}

impl Event {
    /// Checks the invariants every stored event must satisfy. The store calls this before an
    /// append, so a bad record is refused before any byte reaches a segment.
    pub fn validate(&self) -> Result<(), RecordError> {
        for (field, value) in [("ts", &self.ts), ("created_at", &self.created_at)] {
            if !timefmt::is_canonical_utc(value) {
                return Err(RecordError::BadTimestamp {
                    field,
                    value: value.clone(),
                });
            }
        }
        for (field, value) in [
            ("category", &self.category),
            ("action", &self.action),
            ("status", &self.status),
            ("source_trigger", &self.source_trigger),
            ("actor_type", &self.actor_type),
            ("actor_label", &self.actor_label),
        ] {
            if value.is_empty() {
                return Err(RecordError::Empty(field));
            }
        }
        Ok(())
    }

    /// Parses one event object from JSON text (an export line, or an import line). Integrity
    /// fields of raw segment lines are accepted and dropped; any other unknown field is an error,
    /// so nothing is silently lost on import. A missing `created_at` defaults to `ts`, and a
    /// missing `id` to 0 (import assigns new ids anyway).
    pub fn from_json_text(text: &str) -> Result<Event, RecordError> {
        // Straight into a struct (no intermediate `Value`): this is the hot loop of `import`.
        let w: WireEvent =
            serde_json::from_str(text).map_err(|e| RecordError::Json(e.to_string()))?;
        let event = Event {
            id: w.id.unwrap_or(0),
            created_at: w.created_at.unwrap_or_else(|| w.ts.clone()),
            ts: w.ts,
            app: w.app,
            category: w.category,
            action: w.action,
            status: w.status,
            classification: w.classification,
            source_trigger: w.source_trigger,
            source_type: w.source_type,
            image_tag: w.image_tag,
            rev: w.rev,
            actor_type: w.actor_type,
            actor_name: w.actor_name,
            actor_label: w.actor_label,
            correlation_id: w.correlation_id,
            message: w.message,
            meta: w.meta,
        };
        event.validate()?;
        Ok(event)
    }

    /// The canonical JSON text of this event: compact, fields in contract order. This exact byte
    /// string is what a segment line starts with and what the chain hashes.
    pub fn to_json_bytes(&self) -> Vec<u8> {
        // Serialising a struct of strings, integers and a JSON map cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The UTC day (`YYYY-MM-DD`) of `ts`, used for daily rotation.
    pub fn day(&self) -> &str {
        self.ts.get(..10).unwrap_or(&self.ts)
    }
}

/// The actor part of an event (`actor_type`, `actor_name`, `actor_label`) plus the identity keys
/// that go into `meta`. Event building computes it; the store stamps it on the maintenance events
/// it writes itself (torn-tail repair).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ActorStamp {
    /// `user` or `system`.
    pub actor_type: String,
    /// The identity, if any.
    pub actor_name: Option<String>,
    /// The label (interface.md §5).
    pub actor_label: String,
    /// Identity keys merged into the event's `meta` (`actor_source`, `sudo_user`, …).
    pub meta: Map<String, Value>,
}

impl ActorStamp {
    /// Dokku itself, no person.
    pub fn system() -> ActorStamp {
        ActorStamp {
            actor_type: "system".into(),
            actor_name: None,
            actor_label: "dokku-system".into(),
            meta: Map::new(),
        }
    }
}

impl Event {
    /// A `maintenance` event (reference §3.2: classification `maintenance_<action>`, app null),
    /// with the actor's identity keys merged after the event's own `meta` keys.
    pub fn maintenance(
        action: &str,
        message: String,
        mut meta: Map<String, Value>,
        ts: &str,
        source_trigger: &str,
        actor: &ActorStamp,
    ) -> Event {
        for (k, v) in &actor.meta {
            if !v.is_null() {
                meta.insert(k.clone(), v.clone());
            }
        }
        Event {
            id: 0,
            ts: ts.to_string(),
            app: None,
            category: "maintenance".into(),
            action: action.to_string(),
            status: "success".into(),
            classification: Some(format!("maintenance_{}", action.replace('-', "_"))),
            source_trigger: source_trigger.to_string(),
            source_type: None,
            image_tag: None,
            rev: None,
            actor_type: actor.actor_type.clone(),
            actor_name: actor.actor_name.clone(),
            actor_label: actor.actor_label.clone(),
            correlation_id: None,
            message,
            meta,
            created_at: ts.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Event {
        Event {
            id: 7,
            ts: "2026-04-08T20:00:00Z".into(),
            app: Some("myapp".into()),
            category: "deploy".into(),
            action: "finish".into(),
            status: "success".into(),
            classification: Some("source_deploy".into()),
            source_trigger: "post-deploy".into(),
            source_type: Some("git-push".into()),
            image_tag: Some("dokku/myapp:latest".into()),
            rev: Some("0123456789abcdef".into()),
            actor_type: "user".into(),
            actor_name: Some("alice".into()),
            actor_label: "ssh-key:alice".into(),
            correlation_id: Some("aud_1775678400000_0a1b2c3d".into()),
            message: "source deploy finished".into(),
            meta: serde_json::from_str(r#"{"z":1,"a":{"nested":[1,2]},"m":null}"#).unwrap(),
            created_at: "2026-04-08T20:00:00Z".into(),
        }
    }

    #[test]
    fn field_order_is_the_contract_order() {
        let text = String::from_utf8(sample().to_json_bytes()).unwrap();
        let keys: Vec<&str> = [
            "id",
            "ts",
            "app",
            "category",
            "action",
            "status",
            "classification",
            "source_trigger",
            "source_type",
            "image_tag",
            "rev",
            "actor_type",
            "actor_name",
            "actor_label",
            "correlation_id",
            "message",
            "meta",
            "created_at",
        ]
        .to_vec();
        let mut last = 0;
        for k in keys {
            let pos = text.find(&format!("\"{k}\":")).unwrap();
            assert!(pos >= last, "{k} out of order in {text}");
            last = pos;
        }
        // meta keeps insertion order, not sorted order
        assert!(text.contains(r#""meta":{"z":1,"a":{"nested":[1,2]},"m":null}"#));
    }

    #[test]
    fn round_trips_and_drops_integrity_fields() {
        let e = sample();
        let mut text = String::from_utf8(e.to_json_bytes()).unwrap();
        text.pop();
        text.push_str(r#","v":1,"chain":"00","crc":"0"}"#);
        assert_eq!(Event::from_json_text(&text).unwrap(), e);
    }

    #[test]
    fn unknown_fields_and_bad_times_are_refused() {
        assert!(matches!(
            Event::from_json_text(r#"{"ts":"x"}"#),
            Err(RecordError::Json(_))
        ));
        let mut e = sample();
        e.ts = "2026-04-08 20:00:00".into();
        let text = String::from_utf8(e.to_json_bytes()).unwrap();
        assert!(matches!(
            Event::from_json_text(&text),
            Err(RecordError::BadTimestamp { field: "ts", .. })
        ));
        let text = String::from_utf8(sample().to_json_bytes())
            .unwrap()
            .replace("\"created_at\"", "\"extra\":1,\"created_at\"");
        assert!(Event::from_json_text(&text).is_err());
    }

    #[test]
    fn defaults_for_missing_id_and_created_at() {
        let e = Event::from_json_text(
            r#"{"ts":"2026-01-02T03:04:05Z","app":null,"category":"app","action":"create","status":"success","classification":"app_create","source_trigger":"post-create","source_type":null,"image_tag":null,"rev":null,"actor_type":"system","actor_name":null,"actor_label":"dokku-system","correlation_id":null,"message":"app created","meta":{}}"#,
        )
        .unwrap();
        assert_eq!(e.id, 0);
        assert_eq!(e.created_at, "2026-01-02T03:04:05Z");
    }
}
