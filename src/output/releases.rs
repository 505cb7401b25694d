//! Output of `releases` (a table, a JSON object, JSONL) and `releases:info` (a block of
//! `Label: value` lines, or JSON). Times are the canonical UTC text, or, for people at a
//! terminal, an age such as `3 days ago`.

use chrono::{DateTime, Utc};

use super::table::{clean_cell, render};
use crate::query::releases::{Release, ReleaseInfo};

/// An age in words: `just now`, `5 minutes ago`, `3 days ago`, `2 years ago`.
pub fn ago(now: DateTime<Utc>, ts: &str) -> String {
    let Some(t) = crate::timefmt::parse_canonical(ts) else {
        return ts.to_string();
    };
    let secs = (now - t).num_seconds();
    if secs < 0 {
        return ts.to_string();
    }
    let (n, unit) = match secs {
        0..=59 => return "just now".into(),
        60..=3_599 => (secs / 60, "minute"),
        3_600..=86_399 => (secs / 3_600, "hour"),
        86_400..=2_591_999 => (secs / 86_400, "day"),
        2_592_000..=31_535_999 => (secs / 2_592_000, "month"),
        _ => (secs / 31_536_000, "year"),
    };
    format!("{n} {unit}{} ago", if n == 1 { "" } else { "s" })
}

/// The version cell: `v12`, `v12 *` for the current release, `-` for a failed deploy.
pub fn version_cell(r: &Release) -> String {
    match r.version {
        Some(v) if r.current => format!("v{v} *"),
        Some(v) => format!("v{v}"),
        None => "-".into(),
    }
}

/// `VERSION  DESCRIPTION  ACTOR  TIME`; `now` shows ages instead of times.
pub fn table(releases: &[Release], now: Option<DateTime<Utc>>) -> String {
    let rows: Vec<Vec<String>> = releases
        .iter()
        .map(|r| {
            vec![
                version_cell(r),
                r.description.clone(),
                r.actor.clone(),
                now.map_or_else(|| r.ts.clone(), |n| ago(n, &r.ts)),
            ]
        })
        .collect();
    render(&["VERSION", "DESCRIPTION", "ACTOR", "TIME"], &rows)
}

/// The API's object: `{"app":…,"releases":[…]}`.
pub fn json(app: &str, releases: &[Release]) -> serde_json::Value {
    serde_json::json!({"app": app, "releases": releases})
}

/// One release in detail, as `Label: value` lines under a `=====> APP vN` header.
pub fn info_block(app: &str, i: &ReleaseInfo, now: Option<DateTime<Utc>>) -> String {
    let r = &i.release;
    let title = match r.version {
        Some(v) if r.current => format!("v{v} (current)"),
        Some(v) => format!("v{v}"),
        None => format!("failed deploy {}", r.id),
    };
    let mut lines: Vec<(&str, String)> = vec![
        ("Description", r.description.clone()),
        ("Status", r.status.clone()),
        ("Event", r.id.to_string()),
        (
            "When",
            match now {
                Some(n) => format!("{} ({})", r.ts, ago(n, &r.ts)),
                None => r.ts.clone(),
            },
        ),
        ("By", r.actor.clone()),
    ];
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    lines.push(("Command", opt(&i.command)));
    lines.push(("Classification", opt(&r.classification)));
    lines.push(("Source type", opt(&r.source_type)));
    lines.push(("Revision", opt(&r.rev)));
    lines.push(("Image tag", opt(&r.image_tag)));
    if let Some(n) = r.rollback_to {
        lines.push(("Rollback to", format!("v{n}")));
    }
    if let Some(s) = i.build_seconds {
        lines.push(("Build", format!("{s} s")));
    }
    lines.push(("Config changed", i.config_keys_changed.join(", ")));
    if let Some(d) = &i.domains {
        lines.push(("Domains", d.join(" ")));
    }
    if let Some(p) = &i.ports {
        lines.push(("Ports", p.join(" ")));
    }
    let failed: Vec<String> = i
        .failed_attempts
        .iter()
        .map(|f| format!("{} ({}, event {})", f.description, f.ts, f.id))
        .collect();
    lines.push(("Failed attempts", failed.join("; ")));
    lines.push(("Redeploy with", i.redeploy.command.clone()));
    lines.push(("", i.redeploy.caveat.clone()));
    let width = lines.iter().map(|(l, _)| l.len()).max().unwrap_or(0) + 2;
    let mut out = format!("=====> {} {title}\n", clean_cell(app));
    for (label, value) in lines {
        let label = if label.is_empty() {
            String::new()
        } else {
            format!("{label}:")
        };
        let line = format!("{label:<width$}{}", clean_cell(&value));
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages() {
        let now = crate::timefmt::parse_canonical("2026-04-08T20:00:00Z").unwrap();
        assert_eq!(ago(now, "2026-04-08T19:59:30Z"), "just now");
        assert_eq!(ago(now, "2026-04-08T19:59:00Z"), "1 minute ago");
        assert_eq!(ago(now, "2026-04-05T19:00:00Z"), "3 days ago");
        assert_eq!(ago(now, "2024-04-05T19:00:00Z"), "2 years ago");
        assert_eq!(ago(now, "2026-04-09T19:00:00Z"), "2026-04-09T19:00:00Z");
    }
}
