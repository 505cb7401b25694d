//! Output of the list commands (`last-deploys`, `timeline`, `recent`, `search`): the tables of
//! interface.md §5 (two-space columns, `-` for empty, no trailing spaces, control characters
//! neutralised), `--quiet` raw tab-separated rows, a JSON array, or JSONL (reference §11).

use crate::query::list::Row;
use crate::record::Event;

use super::table;

/// Which table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Columns {
    /// `ID TIME APP CLASSIFICATION SOURCE_TYPE REV IMAGE_TAG`.
    Deploys,
    /// `ID TIME CATEGORY ACTION CLASSIFICATION STATUS MESSAGE`.
    Timeline,
    /// `ID TIME APP ACTOR CATEGORY ACTION CLASSIFICATION STATUS MESSAGE`.
    Recent,
}

/// `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListFormat {
    /// Aligned table (default).
    Table,
    /// One JSON array.
    Json,
    /// One JSON object per line.
    Jsonl,
}

impl std::str::FromStr for ListFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "table" => Ok(ListFormat::Table),
            "json" => Ok(ListFormat::Json),
            "jsonl" => Ok(ListFormat::Jsonl),
            other => Err(format!("unsupported format: {other}")),
        }
    }
}

fn opt(v: &Option<String>) -> String {
    v.clone().unwrap_or_default()
}

fn cells(c: Columns, r: &Row) -> Vec<String> {
    let time =
        crate::timefmt::format_utc(chrono::DateTime::from_timestamp(r.ts, 0).unwrap_or_default());
    match c {
        Columns::Deploys => vec![
            r.id.to_string(),
            time,
            opt(&r.app),
            opt(&r.classification),
            opt(&r.source_type),
            r.rev
                .as_deref()
                .map(|v| v.chars().take(12).collect())
                .unwrap_or_default(),
            opt(&r.image_tag),
        ],
        Columns::Timeline => vec![
            r.id.to_string(),
            time,
            r.category.clone(),
            r.action.clone(),
            opt(&r.classification),
            r.status.clone(),
            r.message.clone(),
        ],
        Columns::Recent => vec![
            r.id.to_string(),
            time,
            opt(&r.app),
            r.actor_label.clone(),
            r.category.clone(),
            r.action.clone(),
            opt(&r.classification),
            r.status.clone(),
            r.message.clone(),
        ],
    }
}

/// The cells of one event's row (`tail` and the demo print `recent` rows of events they read
/// whole): the same cells as the list commands.
pub fn event_cells(c: Columns, e: &Event) -> Vec<String> {
    cells(c, &Row::from_event(e))
}

/// The column names of a table.
pub fn header(c: Columns) -> &'static [&'static str] {
    match c {
        Columns::Deploys => &[
            "ID",
            "TIME",
            "APP",
            "CLASSIFICATION",
            "SOURCE_TYPE",
            "REV",
            "IMAGE_TAG",
        ],
        Columns::Timeline => &[
            "ID",
            "TIME",
            "CATEGORY",
            "ACTION",
            "CLASSIFICATION",
            "STATUS",
            "MESSAGE",
        ],
        Columns::Recent => &[
            "ID",
            "TIME",
            "APP",
            "ACTOR",
            "CATEGORY",
            "ACTION",
            "CLASSIFICATION",
            "STATUS",
            "MESSAGE",
        ],
    }
}

/// The table (or, with `quiet`, the raw tab-separated rows).
pub fn render_rows(c: Columns, rows: &[Row], quiet: bool) -> String {
    let data: Vec<Vec<String>> = rows.iter().map(|r| cells(c, r)).collect();
    if quiet {
        if data.is_empty() {
            return "\n".into();
        }
        let mut out = String::new();
        for row in data {
            let line: Vec<String> = row.iter().map(|v| table::clean_cell(v)).collect();
            out.push_str(&line.join("\t"));
            out.push('\n');
        }
        return out;
    }
    table::render(header(c), &data)
}

/// JSON array or JSONL of full events.
pub fn render_events(format: ListFormat, events: &[Event]) -> String {
    let mut out = String::new();
    match format {
        ListFormat::Json => {
            out.push('[');
            for (i, e) in events.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&String::from_utf8_lossy(&e.to_json_bytes()));
            }
            out.push_str("]\n");
        }
        _ => {
            if events.is_empty() {
                out.push('\n');
            }
            for e in events {
                out.push_str(&String::from_utf8_lossy(&e.to_json_bytes()));
                out.push('\n');
            }
        }
    }
    out
}
