//! `import [--format jsonl] <PATH|->`: append events from another export. Every line is checked
//! before anything is written, so bad input appends nothing; then the whole batch goes in under
//! one lock with one fsync, followed by a `maintenance`/`import` event in the same batch.

use std::io::Read;

use clap::Args as ClapArgs;
use serde_json::{Map, Value};

use super::{CliError, Context};
use crate::record::Event;
use crate::store::{AppendContext, ID_PLACEHOLDER};

/// Arguments of `import`.
#[derive(Debug, ClapArgs)]
pub struct ImportArgs {
    /// Input format (only jsonl).
    #[arg(long, default_value = "jsonl")]
    pub format: String,
    /// File to read, or `-` for standard input.
    #[arg(value_name = "PATH|-")]
    pub path: String,
}

/// Events parsed from the input, re-encoded canonically with the id placeholder.
struct Staged {
    bytes: Vec<u8>,
    spans: Vec<(usize, usize)>,
    first_ts: Option<String>,
    last_ts: Option<String>,
}

/// Runs `import`.
pub fn run(ctx: &Context, args: ImportArgs) -> Result<(), CliError> {
    if args.format != "jsonl" {
        return Err(CliError::Usage(format!(
            "unsupported format: {}",
            args.format
        )));
    }
    let input = read_input(&args.path)?;
    let staged = stage(&input)?;
    let count = staged.spans.len();
    if count == 0 {
        println!("imported events: 0");
        return Ok(());
    }
    let store = ctx.store()?;
    let append = ctx.maintenance_append("manual");
    let marker = marker(
        &append,
        count,
        &args.path,
        staged.first_ts.as_deref(),
        staged.last_ts.as_deref(),
        Map::new(),
        format!("imported {count} event(s)"),
    );
    let mut events = staged
        .spans
        .iter()
        .map(|&(a, b)| &staged.bytes[a..b])
        .chain(std::iter::once(marker.as_slice()));
    let receipt = store.append_raw(&mut events, &append)?;
    println!("imported events: {count}");
    println!(
        "ids: {}..{}",
        receipt.first_id,
        receipt.last_id.saturating_sub(1)
    );
    Ok(())
}

/// The `maintenance`/`import` marker event that closes an import batch (canonical bytes, id
/// placeholder): `imported_count`, `source`, `first_ts`, `last_ts`, then `extra` (which may add
/// keys or override these).
pub(super) fn marker(
    append: &AppendContext,
    count: usize,
    source: &str,
    first_ts: Option<&str>,
    last_ts: Option<&str>,
    extra: Map<String, Value>,
    message: String,
) -> Vec<u8> {
    let mut meta = Map::new();
    meta.insert("imported_count".into(), Value::from(count as u64));
    meta.insert("source".into(), Value::from(source));
    meta.insert("first_ts".into(), Value::from(first_ts));
    meta.insert("last_ts".into(), Value::from(last_ts));
    meta.extend(extra);
    Event::maintenance(
        "import",
        message,
        meta,
        &append.now,
        "manual",
        &append.actor,
    )
    .to_json_bytes()
}

fn read_input(path: &str) -> Result<Vec<u8>, CliError> {
    let mut buf = Vec::new();
    let res = if path == "-" {
        std::io::stdin().lock().read_to_end(&mut buf).map(|_| ())
    } else {
        // The operator's file: read with the operator's rights (root may import /root/x.jsonl).
        crate::privilege::as_invoker(|| {
            std::fs::File::open(path).and_then(|mut f| f.read_to_end(&mut buf).map(|_| ()))
        })
        .and_then(|r| r)
    };
    res.map_err(|source| CliError::Io {
        path: path.to_string(),
        source,
    })?;
    Ok(buf)
}

/// Parses and re-encodes every line, on all cores: the input is split at line boundaries into
/// one chunk per core, and the chunks' results are joined in order. The first bad line (by
/// position) is the error reported.
fn stage(input: &[u8]) -> Result<Staged, CliError> {
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    let chunks = split_lines(input, if input.len() < (1 << 20) { 1 } else { workers });
    let results: Vec<Result<Staged, CliError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = chunks
            .iter()
            .map(|&(first_line, bytes)| scope.spawn(move || stage_chunk(bytes, first_line)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(CliError::Usage("import worker failed".into())))
            })
            .collect()
    });
    let mut staged = Staged {
        bytes: Vec::with_capacity(input.len()),
        spans: Vec::new(),
        first_ts: None,
        last_ts: None,
    };
    for part in results {
        let part = part?;
        let base = staged.bytes.len();
        staged.bytes.extend_from_slice(&part.bytes);
        staged
            .spans
            .extend(part.spans.iter().map(|&(a, b)| (a + base, b + base)));
        if staged.first_ts.is_none() {
            staged.first_ts = part.first_ts;
        }
        if part.last_ts.is_some() {
            staged.last_ts = part.last_ts;
        }
    }
    Ok(staged)
}

/// Splits `input` into about `n` pieces that end at line boundaries, each with the 1-based
/// number of its first line.
fn split_lines(input: &[u8], n: usize) -> Vec<(usize, &[u8])> {
    let mut out = Vec::with_capacity(n);
    let target = input.len() / n.max(1) + 1;
    let (mut start, mut line) = (0usize, 1usize);
    while start < input.len() {
        let mut end = (start + target).min(input.len());
        if let Some(nl) = input[end..].iter().position(|c| *c == b'\n') {
            end += nl + 1;
        } else {
            end = input.len();
        }
        out.push((line, &input[start..end]));
        line += input[start..end].iter().filter(|c| **c == b'\n').count();
        start = end;
    }
    out
}

fn stage_chunk(input: &[u8], first_line: usize) -> Result<Staged, CliError> {
    let mut staged = Staged {
        bytes: Vec::with_capacity(input.len()),
        spans: Vec::new(),
        first_ts: None,
        last_ts: None,
    };
    for (i, raw) in input.split(|c| *c == b'\n').enumerate() {
        let line_no = first_line + i;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let text = std::str::from_utf8(raw).map_err(|_| CliError::ImportLine {
            line: line_no,
            message: "not valid UTF-8".into(),
        })?;
        let mut event = Event::from_json_text(text).map_err(|e| CliError::ImportLine {
            line: line_no,
            message: e.to_string(),
        })?;
        // Chain anchors justify chain restarts in *this* store; one carried in from elsewhere
        // must not, so it is kept under another name.
        if let Some(v) = event.meta.remove("chain_anchors") {
            event.meta.insert("imported_chain_anchors".into(), v);
        }
        event.id = 0;
        let start = staged.bytes.len();
        serde_json::to_writer(&mut staged.bytes, &event).map_err(|e| CliError::ImportLine {
            line: line_no,
            message: e.to_string(),
        })?;
        debug_assert!(staged.bytes[start..].starts_with(ID_PLACEHOLDER));
        staged.spans.push((start, staged.bytes.len()));
        if staged.first_ts.is_none() {
            staged.first_ts = Some(event.ts.clone());
        }
        staged.last_ts = Some(event.ts);
    }
    Ok(staged)
}
