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
            serde_json::json!({"segment": d.pos.segment, "line": d.pos.line, "message": d.kind.to_string()})
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
            out.push_str(&format!("issue: {}: {}\n", p.pos, p.message));
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
            first.pos,
            first.message
        )))
    }
}
