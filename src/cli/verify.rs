//! `verify [--format table|json] [--heads FILE]`: every CRC, id order, trailers and the chain;
//! with `--heads`, also this host's chain values against a collector's heads file
//! (src/cli/verify_heads.rs).

use clap::Args as ClapArgs;

use super::{CliError, Context};

/// Arguments of `verify`.
#[derive(Debug, ClapArgs)]
pub struct VerifyArgs {
    /// table (default) or json.
    #[arg(long, default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
    /// A heads file from `fleet-heads` on the collector: check this host's recorded chain values.
    #[arg(long, value_name = "FILE")]
    pub heads: Option<String>,
}

/// Runs `verify`: prints the report; exit 1 (via `CliError::Reported`) on any failure.
pub fn run(ctx: &Context, args: VerifyArgs) -> Result<(), CliError> {
    let store = ctx.store()?;
    let report = store.verify()?;
    let heads = match &args.heads {
        Some(file) => Some(super::verify_heads::check(ctx, &store, file)?),
        None => None,
    };
    let heads_ok = heads.as_ref().is_none_or(|h| h.failures().next().is_none());
    let ok = report.ok() && heads_ok;
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
        let mut v = serde_json::json!({
            "ok": ok,
            "segments": report.segments,
            "events": report.events,
            "last_id": report.last_id,
            "chain_head": report.chain_head,
            "torn_tail": torn,
            "problems": problems,
        });
        if let Some(h) = &heads {
            v["heads"] = heads_json(h);
        }
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
        if let Some(h) = &heads {
            heads_text(h, &mut out);
        }
        out.push_str(if ok {
            "verify: ok\n"
        } else {
            "verify: FAILED\n"
        });
    }
    print!("{out}");
    if ok {
        Ok(())
    } else if report.ok() {
        let h = heads
            .as_ref()
            .map(|h| (h.failures().count(), h.failures().next()));
        let (n, first) = h.unwrap_or((0, None));
        Err(CliError::Reported(format!(
            "verify failed: {n} head(s) of this host in the heads file do not match the store, first: {}",
            first.map(|(r, o)| o.describe(r)).unwrap_or_default()
        )))
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

/// The heads part of the text report (segments-format.md §5.5): a count line, then a notice
/// per head not held because of a recorded removal, an issue per failing head.
fn heads_text(h: &super::verify_heads::HeadsReport, out: &mut String) {
    out.push_str(&format!(
        "heads: {} of host {} from {}: {} matched, {} not held (removed), {} mismatched, {} missing\n",
        h.checked.len(),
        h.host_id,
        h.file,
        h.count("matched"),
        h.count("not_held"),
        h.count("mismatch"),
        h.count("missing")
    ));
    for (r, o) in &h.checked {
        match o.word() {
            "matched" => {}
            "not_held" => out.push_str(&format!("notice: {}\n", o.describe(r))),
            _ => out.push_str(&format!("issue: {}\n", o.describe(r))),
        }
    }
}

fn heads_json(h: &super::verify_heads::HeadsReport) -> serde_json::Value {
    let list: Vec<serde_json::Value> = h
        .checked
        .iter()
        .map(|(r, o)| {
            let mut v = serde_json::json!({"id": r.id, "chain": r.chain, "result": o.word(), "message": o.describe(r)});
            if let super::verify_heads::HeadOutcome::Mismatch { local } = o {
                v["local_chain"] = local.clone().into();
            }
            v
        })
        .collect();
    serde_json::json!({"file": h.file, "host_id": h.host_id, "checked": list})
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
