//! `show <event-id> [--format table|json]`: one event, every field and the whole meta
//! (reference §10.10), plus what changed (`field: before → after`) where the event knows it.

use clap::Args as ClapArgs;
use serde_json::{Map, Value};

use super::{CliError, Context};
use crate::record::Event;

/// Arguments of `show`.
#[derive(Debug, ClapArgs)]
pub struct ShowArgs {
    /// The event id.
    #[arg(value_name = "EVENT_ID")]
    pub id: String,
    /// table (default) or json.
    #[arg(long, default_value = "table")]
    pub format: String,
}

/// Runs `show`.
pub fn run(ctx: &Context, args: ShowArgs) -> Result<(), CliError> {
    let json = match args.format.as_str() {
        "json" => true,
        "table" => false,
        other => return Err(CliError::Usage(format!("unsupported format: {other}"))),
    };
    let id: u64 = args
        .id
        .parse()
        .map_err(|_| CliError::Usage("event id must be numeric".into()))?;
    let store = ctx.store()?;
    let event = store
        .find_event(id)?
        .ok_or_else(|| CliError::Usage(format!("event not found: {id}")))?;
    let text = if json {
        let mut t = String::from_utf8_lossy(&event.to_json_bytes()).into_owned();
        t.push('\n');
        t
    } else {
        render_table(&event)
    };
    use std::io::Write;
    std::io::stdout()
        .write_all(text.as_bytes())
        .map_err(CliError::output("stdout"))
}

fn or_dash(v: Option<&str>) -> String {
    match v {
        Some(s) if !s.is_empty() => crate::output::table::clean_cell(s),
        _ => "-".into(),
    }
}

fn meta_str<'a>(meta: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    meta.get(key).and_then(Value::as_str)
}

/// Sorted keys, recursively, for a stable pretty print.
fn sorted(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), sorted(&m[k])))
                    .collect(),
            )
        }
        Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// The `before → after` lines this event can show.
fn changes(e: &Event) -> Vec<String> {
    crate::output::changes::changes(e)
        .into_iter()
        .map(|c| {
            format!(
                "{}: {} → {}",
                or_dash(Some(&c.label)),
                or_dash(c.before.as_deref()),
                or_dash(c.after.as_deref())
            )
        })
        .collect()
}

/// The table form: `label: value` lines, then `meta_json:` and the meta pretty-printed with
/// sorted keys.
pub fn render_table(e: &Event) -> String {
    let m = &e.meta;
    let mut lines: Vec<(String, String)> = vec![
        ("id".into(), e.id.to_string()),
        ("ts".into(), e.ts.clone()),
        ("app".into(), or_dash(e.app.as_deref())),
        ("actor".into(), or_dash(Some(&e.actor_label))),
        ("category".into(), or_dash(Some(&e.category))),
        ("action".into(), or_dash(Some(&e.action))),
        ("status".into(), or_dash(Some(&e.status))),
        (
            "classification".into(),
            or_dash(e.classification.as_deref()),
        ),
        ("source trigger".into(), or_dash(Some(&e.source_trigger))),
        ("source type".into(), or_dash(e.source_type.as_deref())),
        ("image tag".into(), or_dash(e.image_tag.as_deref())),
        ("rev".into(), or_dash(e.rev.as_deref())),
        ("actor type".into(), or_dash(Some(&e.actor_type))),
        ("actor name".into(), or_dash(e.actor_name.as_deref())),
    ];
    for (label, key) in [
        ("actor source", "actor_source"),
        ("sudo user", "sudo_user"),
        ("local user", "local_user"),
        ("effective user", "effective_user"),
        ("process tree user", "process_tree_user"),
        ("ssh user", "ssh_user"),
        ("ssh name", "ssh_name"),
        ("ssh key fingerprint", "ssh_key_fingerprint"),
        ("client address", "client_address"),
        ("triggered by", "triggered_by_command"),
    ] {
        lines.push((label.into(), or_dash(meta_str(m, key))));
    }
    lines.push((
        "correlation id".into(),
        or_dash(e.correlation_id.as_deref()),
    ));
    lines.push(("message".into(), or_dash(Some(&e.message))));
    lines.push(("created at".into(), e.created_at.clone()));
    let mut out = String::new();
    for (k, v) in lines {
        out.push_str(&format!("{k}: {v}\n"));
    }
    let changes = changes(e);
    if !changes.is_empty() {
        out.push_str("changes:\n");
        for c in changes {
            out.push_str(&format!("  {c}\n"));
        }
    }
    out.push_str("meta_json:\n");
    let pretty = serde_json::to_string_pretty(&sorted(&Value::Object(m.clone())))
        .unwrap_or_else(|_| "{}".into());
    out.push_str(&escape_raw_controls(&pretty));
    out.push('\n');
    out
}

/// serde_json escapes U+0000–U+001F but leaves DEL and the C1 controls (U+0080–U+009F; U+009B
/// is a CSI escape introducer on some terminals) raw: write them as JSON `\uXXXX` escapes, which
/// read back as the same string. Found by tests/hostile_input.rs (a DEL from an app name).
fn escape_raw_controls(json: &str) -> String {
    json.chars()
        .map(|c| {
            if c == '\u{7f}' || ('\u{80}'..='\u{9f}').contains(&c) {
                format!("\\u{:04x}", c as u32)
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_json_carries_no_raw_del_or_c1() {
        let v = serde_json::json!({"k": "a\u{7f}b\u{9b}31mc\u{85}d"});
        let text = escape_raw_controls(&serde_json::to_string_pretty(&v).unwrap());
        assert!(!text
            .chars()
            .any(|c| c == '\u{7f}' || ('\u{80}'..='\u{9f}').contains(&c)));
        let back: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, v);
    }
}
