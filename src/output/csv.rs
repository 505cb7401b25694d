//! CSV export (interface.md §5): RFC 4180 (CRLF rows, fields quoted when they hold a comma,
//! quote, CR or LF; quotes doubled), a header of the event fields with `meta` as a JSON string,
//! null as an empty field, and cells that a spreadsheet would run as a formula prefixed with `'`.

use std::io::{self, Write};

use crate::record::Event;

/// The header row: every event field in contract order.
pub const HEADER: [&str; 18] = [
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
];

/// Writes the header row.
pub fn write_header(out: &mut dyn Write) -> io::Result<()> {
    out.write_all(HEADER.join(",").as_bytes())?;
    out.write_all(b"\r\n")
}

/// Writes one event as a row.
pub fn write_row(out: &mut dyn Write, e: &Event) -> io::Result<()> {
    let meta = serde_json::to_string(&e.meta).map_err(io::Error::other)?;
    let id = e.id.to_string();
    let cells: [Option<&str>; 18] = [
        Some(&id),
        Some(&e.ts),
        e.app.as_deref(),
        Some(&e.category),
        Some(&e.action),
        Some(&e.status),
        e.classification.as_deref(),
        Some(&e.source_trigger),
        e.source_type.as_deref(),
        e.image_tag.as_deref(),
        e.rev.as_deref(),
        Some(&e.actor_type),
        e.actor_name.as_deref(),
        Some(&e.actor_label),
        e.correlation_id.as_deref(),
        Some(&e.message),
        Some(&meta),
        Some(&e.created_at),
    ];
    for (i, cell) in cells.iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        if let Some(c) = cell {
            write_cell(out, c)?;
        }
    }
    out.write_all(b"\r\n")
}

/// Characters that make a spreadsheet treat a cell as a formula (OWASP CSV injection).
fn is_formula_start(c: char) -> bool {
    matches!(c, '=' | '+' | '-' | '@' | '\t' | '\r')
}

/// Writes one cell: an empty string is `""` (null is written by the caller as nothing).
pub fn write_cell(out: &mut dyn Write, value: &str) -> io::Result<()> {
    let guarded;
    let v = if value.starts_with(is_formula_start) {
        guarded = format!("'{value}");
        guarded.as_str()
    } else {
        value
    };
    if v.is_empty() || v.contains([',', '"', '\r', '\n']) {
        out.write_all(b"\"")?;
        out.write_all(v.replace('"', "\"\"").as_bytes())?;
        out.write_all(b"\"")
    } else {
        out.write_all(v.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(s: &str) -> String {
        let mut v = Vec::new();
        write_cell(&mut v, s).unwrap();
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn quoting_and_injection() {
        assert_eq!(cell("plain"), "plain");
        assert_eq!(cell(""), "\"\"");
        assert_eq!(cell("a,b"), "\"a,b\"");
        assert_eq!(cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(cell("line\nbreak"), "\"line\nbreak\"");
        assert_eq!(cell("=SUM(A1)"), "'=SUM(A1)");
        assert_eq!(cell("+1"), "'+1");
        assert_eq!(cell("-x"), "'-x");
        assert_eq!(cell("@cmd"), "'@cmd");
        assert_eq!(cell("=a,b"), "\"'=a,b\"");
    }
}
