//! What an event changed, as `before → after` pairs: a deploy's revision and image tag, the
//! domains before and after, each config key added, removed or changed (values are never
//! stored, so a config change shows `(set)`/`(unset)`/`(changed)`). `show` prints them as lines;
//! the HTTP API returns them as objects.

use serde_json::{Map, Value};

use crate::record::Event;

/// One change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// What changed (`rev`, `image tag`, `domains`, `config KEY`).
    pub label: String,
    /// The value before (`None`: unknown or none).
    pub before: Option<String>,
    /// The value after.
    pub after: Option<String>,
}

fn meta_str<'a>(meta: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    meta.get(key).and_then(Value::as_str)
}

/// The changes this event can show.
pub fn changes(e: &Event) -> Vec<Change> {
    let m = &e.meta;
    let mut out = Vec::new();
    let pair = |label: &str, before: Option<&str>, after: Option<&str>| {
        (before.is_some() || after.is_some()).then(|| Change {
            label: label.to_string(),
            before: before.map(str::to_string),
            after: after.map(str::to_string),
        })
    };
    if e.category == "deploy" && e.action == "finish" {
        if meta_str(m, "previous_rev").is_some() {
            out.extend(pair("rev", meta_str(m, "previous_rev"), e.rev.as_deref()));
        }
        if meta_str(m, "previous_image_tag").is_some() {
            out.extend(pair(
                "image tag",
                meta_str(m, "previous_image_tag"),
                e.image_tag.as_deref(),
            ));
        }
    }
    let list = |k: &str| {
        m.get(k).and_then(Value::as_array).map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        })
    };
    if m.contains_key("domains_before") || m.contains_key("domains_after") {
        out.extend(pair(
            "domains",
            list("domains_before").as_deref(),
            list("domains_after").as_deref(),
        ));
    }
    if let Some(Value::Object(keys)) = m.get("key_changes") {
        for (k, v) in keys {
            let (before, after) = match v.as_str() {
                Some("added") => ("(unset)", "(set)"),
                Some("removed") => ("(set)", "(unset)"),
                _ => ("(set)", "(changed)"),
            };
            out.push(Change {
                label: format!("config {k}"),
                before: Some(before.into()),
                after: Some(after.into()),
            });
        }
    }
    out
}
