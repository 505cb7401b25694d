//! `verify [--format table|json]`: every CRC, id order, trailers and the chain.

use clap::Args as ClapArgs;

use super::{CliError, Context};

/// Arguments of `verify`.
#[derive(Debug, ClapArgs)]
pub struct VerifyArgs {
    /// table (default) or json.
    #[arg(long, default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
}

/// Runs `verify`: prints the report; exit 1 (via `CliError::Reported`) on any failure.
pub fn run(ctx: &Context, args: VerifyArgs) -> Result<(), CliError> {
    let store = ctx.store()?;
    let report = store.verify()?;
    let mut out = String::new();
    if args.format == "json" {
        let problems: Vec<serde_json::Value> = report
            .problems
            .iter()
            .map(|p| serde_json::json!({"segment": p.pos.segment, "line": p.pos.line, "offset": p.pos.offset, "message": p.message}))
            .collect();
        let torn = report.torn_tail.as_ref().map(|d| {
            serde_json::json!({"segment": d.pos.segment, "line": d.pos.line, "offset": d.pos.offset, "message": d.kind.to_string()})
        });
        let v = serde_json::json!({
            "ok": report.ok(),
            "segments": report.segments,
            "events": report.events,
            "last_id": report.last_id,
            "chain_head": report.chain_head,
            "torn_tail": torn,
            "problems": problems,
        });
        out.push_str(&v.to_string());
        out.push('\n');
    } else {
        out.push_str(&format!("segments: {}\n", report.segments));
        out.push_str(&format!("events: {}\n", report.events));
        out.push_str(&format!("last id: {}\n", report.last_id));
        out.push_str(&format!("chain head: {}\n", report.chain_head));
        if let Some(d) = &report.torn_tail {
            out.push_str(&format!("notice: {}: {}\n", d.pos, d.kind));
        }
        for p in &report.problems {
            out.push_str(&format!("issue: {}: {}\n", where_(&p.pos), p.message));
        }
        out.push_str(if report.ok() {
            "verify: ok\n"
        } else {
            "verify: FAILED\n"
        });
    }
    print!("{out}");
    if report.ok() {
        Ok(())
    } else {
        let first = &report.problems[0];
        Err(CliError::Reported(format!(
            "verify failed: {} problem(s), first at {}: {}",
            report.problems.len(),
            where_(&first.pos),
            first.message
        )))
    }
}

/// Where a problem is, for the text report (segments-format.md §2): `segment <file> line <n>
/// (byte <offset>)` for a line, `segment <file> (byte <offset>)` for the trailer (after the
/// content's last byte), `segment <file>` for the whole segment, `<file>` for another file.
fn where_(pos: &crate::store::LinePos) -> String {
    let is_segment = pos.segment.ends_with(".jsonl") || pos.segment.ends_with(".jsonl.zst");
    match (pos.line, pos.offset) {
        (0, 0) if is_segment => format!("segment {}", pos.segment),
        (0, 0) => pos.segment.clone(),
        (0, offset) => format!("segment {} (byte {offset})", pos.segment),
        (line, offset) => format!("segment {} line {line} (byte {offset})", pos.segment),
    }
}
