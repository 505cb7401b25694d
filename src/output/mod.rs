//! Output formatting: how events are written for people and programs. Nothing here reads the
//! store; callers hand over events (or their canonical JSON bytes) and a writer.

pub mod changes;
pub mod csv;
pub mod list;
pub mod releases;
pub mod table;

use std::io::{self, Write};

use crate::record::Event;

/// Formats of `export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// One event object per line.
    Jsonl,
    /// `{"plugin":"dokku-audit","exported_at":…,"events":[…]}` on one line (reference §10.11).
    Json,
    /// RFC 4180 with a header row, injection-safe.
    Csv,
}

impl std::str::FromStr for ExportFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "jsonl" => Ok(ExportFormat::Jsonl),
            "json" => Ok(ExportFormat::Json),
            "csv" => Ok(ExportFormat::Csv),
            other => Err(format!("unsupported format: {other}")),
        }
    }
}

/// Writes an export stream event by event.
pub struct ExportWriter<W: Write> {
    out: W,
    format: ExportFormat,
    count: u64,
}

impl<W: Write> ExportWriter<W> {
    /// Starts an export (writes the JSON prefix or the CSV header).
    pub fn start(mut out: W, format: ExportFormat, exported_at: &str) -> io::Result<Self> {
        match format {
            ExportFormat::Json => write!(
                out,
                "{{\"plugin\":\"dokku-audit\",\"exported_at\":\"{exported_at}\",\"events\":["
            )?,
            ExportFormat::Csv => csv::write_header(&mut out)?,
            ExportFormat::Jsonl => {}
        }
        Ok(ExportWriter {
            out,
            format,
            count: 0,
        })
    }

    /// Writes one event given as canonical JSON without its closing `}`.
    pub fn event_open(&mut self, event_open: &[u8]) -> io::Result<()> {
        match self.format {
            ExportFormat::Jsonl => {
                self.out.write_all(event_open)?;
                self.out.write_all(b"}\n")?;
            }
            ExportFormat::Json => {
                if self.count > 0 {
                    self.out.write_all(b",")?;
                }
                self.out.write_all(event_open)?;
                self.out.write_all(b"}")?;
            }
            ExportFormat::Csv => {
                let mut json = event_open.to_vec();
                json.push(b'}');
                let ev: Event = serde_json::from_slice(&json).map_err(io::Error::other)?;
                csv::write_row(&mut self.out, &ev)?;
            }
        }
        self.count += 1;
        Ok(())
    }

    /// Ends the stream and returns the writer. An empty export is empty for JSONL (zero
    /// lines, zero bytes), the wrapper with `"events":[]` for JSON, the header row for CSV
    /// (docs/decisions.md).
    pub fn finish(mut self) -> io::Result<W> {
        if self.format == ExportFormat::Json {
            self.out.write_all(b"]}\n")?;
        }
        self.out.flush()?;
        Ok(self.out)
    }
}
