//! `fleet-heads [--every N] [--output PATH] [FILE…]`: on a collector, the chain heads of every
//! host from the lines it received (segments-format.md §5.5). A host's root can rewrite its
//! own history consistently (plain `verify` accepts it); the heads file, kept off the hosts,
//! lets `verify --heads` on the host catch that.
//!
//! Reads shipped lines (files, or stdin without a file or with `-`), checks each like a reader
//! checks a segment line, groups them by `meta.host_id` and writes one JSON line per kept
//! (host, id): the newest id seen, and with `--every N` also the newest id of every block of N
//! ids, so an older part of the history can still be checked after the newest event was pruned.
//! A writer gives each event the id after the head (segments-format.md §7.2), so ids of a host
//! missing between the smallest and the greatest received were lost in transit (or are still on
//! the way): each such gap is a warning.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};

use clap::Args as ClapArgs;
use serde::{Deserialize, Serialize};

use super::{CliError, Context};
use crate::store::fleet::{parse_shipped, ShippedLine};

/// Arguments of `fleet-heads`.
#[derive(Debug, ClapArgs)]
pub struct FleetHeadsArgs {
    /// Also keep the newest id of every block of N ids per host (0: only the newest id).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub every: u64,
    /// Write the heads file here (replaced atomically) instead of stdout.
    #[arg(long, value_name = "PATH")]
    pub output: Option<String>,
    /// Shipped JSONL files (the collector's output); none or `-` reads stdin.
    #[arg(value_name = "FILE")]
    pub files: Vec<String>,
}

/// One line of a heads file: "the collector received event `id` of host `host_id` with this
/// chain value".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeadRecord {
    /// `meta.host_id` of the event.
    pub host_id: String,
    /// `meta.host_name` of the event (informative; the id is the key).
    #[serde(default)]
    pub host_name: String,
    /// The event id.
    pub id: u64,
    /// Its chain value, 32 lower-case hex digits.
    pub chain: String,
    /// Its `ts` (the host's clock; informative).
    #[serde(default)]
    pub ts: String,
}

/// What reading the shipped lines found besides the heads.
#[derive(Debug, Default)]
struct Tally {
    lines: u64,
    skipped: u64,
    no_host: u64,
    /// (host, id, first chain seen, other chain seen): the same event shipped with two values.
    conflicts: Vec<(String, u64, String, String)>,
    /// Ids received per host, as runs `first → last`.
    received: BTreeMap<String, Runs>,
}

/// A set of ids as maximal runs of consecutive ids (first → last): a host's ids arrive mostly
/// in order, so this stays a handful of entries however many events there are.
#[derive(Debug, Default)]
struct Runs(BTreeMap<u64, u64>);

impl Runs {
    fn insert(&mut self, id: u64) {
        let before = self.0.range(..=id).next_back().map(|(&a, &b)| (a, b));
        if before.is_some_and(|(_, last)| id <= last) {
            return;
        }
        let after = id
            .checked_add(1)
            .and_then(|n| self.0.get(&n).map(|&last| (n, last)));
        let joins_before = before.filter(|&(_, last)| last.checked_add(1) == Some(id));
        match (joins_before, after) {
            (Some((first, _)), Some((next, last))) => {
                self.0.remove(&next);
                self.0.insert(first, last);
            }
            (Some((first, _)), None) => {
                self.0.insert(first, id);
            }
            (None, Some((next, last))) => {
                self.0.remove(&next);
                self.0.insert(id, last);
            }
            (None, None) => {
                self.0.insert(id, id);
            }
        }
    }

    /// The holes between the runs, as (first missing, last missing).
    fn gaps(&self) -> Vec<(u64, u64)> {
        let runs: Vec<(u64, u64)> = self.0.iter().map(|(&a, &b)| (a, b)).collect();
        runs.windows(2).map(|w| (w[0].1 + 1, w[1].0 - 1)).collect()
    }
}

/// Heads per host: id → record, for the newest id and each block's newest.
type Heads = BTreeMap<String, BTreeMap<u64, HeadRecord>>;

/// Runs `fleet-heads`.
pub fn run(_ctx: &Context, a: FleetHeadsArgs) -> Result<(), CliError> {
    let mut heads = Heads::new();
    let mut tally = Tally::default();
    let files = if a.files.is_empty() {
        vec!["-".to_string()]
    } else {
        a.files.clone()
    };
    for f in &files {
        read_file(f, a.every, &mut heads, &mut tally)?;
    }
    let mut out = Vec::new();
    for records in heads.values() {
        for r in records.values() {
            // A struct of strings and an integer always serialises.
            out.extend_from_slice(serde_json::to_string(r).unwrap_or_default().as_bytes());
            out.push(b'\n');
        }
    }
    match &a.output {
        None => std::io::stdout()
            .lock()
            .write_all(&out)
            .map_err(CliError::output("stdout"))?,
        Some(path) => write_atomically(path, &out)?,
    }
    let stderr = &mut std::io::stderr().lock();
    if tally.skipped > 0 || tally.no_host > 0 {
        let _ = writeln!(
            stderr,
            "dokku-audit: warning: {} of {} line(s) skipped: {} failed their check, {} carry no meta.host_id",
            tally.skipped + tally.no_host,
            tally.lines,
            tally.skipped,
            tally.no_host
        );
    }
    for (host, runs) in &tally.received {
        for (a, b) in runs.gaps() {
            let _ = writeln!(
                stderr,
                "dokku-audit: warning: host {host}: events {a}..={b} not received (lost in transit, or still on the way; fill them from the host, docs/fleet.md)"
            );
        }
    }
    for (host, id, first, other) in &tally.conflicts {
        let _ = writeln!(
            stderr,
            "issue: host {host} event {id}: shipped with chain {first}, later with {other} (the host's history changed after it was shipped; the first value is kept)"
        );
    }
    match tally.conflicts.first() {
        None => Ok(()),
        Some((host, id, ..)) => Err(CliError::Reported(format!(
            "fleet-heads: {} event(s) were shipped with two different chain values, first: host {host} event {id}",
            tally.conflicts.len()
        ))),
    }
}

fn read_file(path: &str, every: u64, heads: &mut Heads, tally: &mut Tally) -> Result<(), CliError> {
    let io_err = |source| CliError::Io {
        path: path.to_string(),
        source,
    };
    let reader: Box<dyn BufRead> = if path == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        // The operator's file: read with the operator's rights, like `import`.
        let f = crate::privilege::as_invoker(|| std::fs::File::open(path))
            .and_then(|r| r)
            .map_err(io_err)?;
        Box::new(std::io::BufReader::new(f))
    };
    for line in reader.split(b'\n') {
        let line = line.map_err(io_err)?;
        // A collector template may keep the space after the syslog header (docs/fleet.md).
        let line = line.strip_prefix(b" ").unwrap_or(&line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        tally.lines += 1;
        match parse_shipped(line) {
            Err(_) => tally.skipped += 1,
            Ok(ShippedLine { host_id: None, .. }) => tally.no_host += 1,
            Ok(s) => keep(s, every, heads, tally),
        }
    }
    Ok(())
}

/// Keeps `s` if it is its host's newest, or (with `every`) its block's newest — the host's
/// newest is always its block's newest. Records a second chain value for an id already kept
/// (the first one shipped is the one from before any rewrite). Looks only at the entries of
/// `s`'s block, so a large file with many blocks stays linear.
fn keep(s: ShippedLine, every: u64, heads: &mut Heads, tally: &mut Tally) {
    let host = s.host_id.clone().unwrap_or_default();
    tally.received.entry(host.clone()).or_default().insert(s.id);
    let records = heads.entry(host.clone()).or_default();
    if let Some(r) = records.get(&s.id) {
        if r.chain != s.chain {
            tally.conflicts.push((host, s.id, r.chain.clone(), s.chain));
        }
        return;
    }
    // The ids `s` competes with: its block's, or every kept id (only the newest) without blocks.
    let (first, last) = match every {
        0 => (0, u64::MAX),
        n => {
            let first = s.id - s.id % n;
            (first, first.saturating_add(n - 1))
        }
    };
    let rivals: Vec<u64> = records.range(first..=last).map(|(&k, _)| k).collect();
    if rivals.iter().any(|&k| k > s.id) {
        return;
    }
    for k in rivals {
        records.remove(&k);
    }
    records.insert(
        s.id,
        HeadRecord {
            host_id: host,
            host_name: s.host_name.unwrap_or_default(),
            id: s.id,
            chain: s.chain,
            ts: s.ts,
        },
    );
}

/// Writes `bytes` to `path` through a temporary file and a rename, so a reader (a `verify
/// --heads` fetching it) never sees half a file.
fn write_atomically(path: &str, bytes: &[u8]) -> Result<(), CliError> {
    let tmp = format!("{path}.tmp{}", std::process::id());
    let io_err = |source| CliError::Io {
        path: path.to_string(),
        source,
    };
    crate::privilege::as_invoker(|| {
        std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path))
    })
    .and_then(|r| r)
    .map_err(io_err)
}

/// Reads a heads file, for `verify --heads`.
pub fn read_heads(path: &str) -> Result<Vec<HeadRecord>, CliError> {
    let text = crate::privilege::as_invoker(|| std::fs::read_to_string(path))
        .and_then(|r| r)
        .map_err(|source| CliError::Io {
            path: path.to_string(),
            source,
        })?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let r: HeadRecord = serde_json::from_str(line).map_err(|e| {
            CliError::Usage(format!("{path} line {}: not a heads record: {e}", i + 1))
        })?;
        out.push(r);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(id: u64, chain: &str) -> ShippedLine {
        ShippedLine {
            id,
            chain: chain.into(),
            ts: String::new(),
            host_id: Some("h".into()),
            host_name: None,
        }
    }

    fn kept(heads: &Heads) -> Vec<u64> {
        heads["h"].keys().copied().collect()
    }

    #[test]
    fn the_newest_id_is_kept_whatever_the_arrival_order() {
        let (mut heads, mut t) = (Heads::new(), Tally::default());
        for id in [3, 1, 5, 4, 2] {
            keep(line(id, "c"), 0, &mut heads, &mut t);
        }
        assert_eq!(kept(&heads), vec![5]);
        assert!(t.conflicts.is_empty());
    }

    #[test]
    fn every_block_keeps_its_newest() {
        let (mut heads, mut t) = (Heads::new(), Tally::default());
        for id in [1, 2, 9, 10, 11, 12, 25, 21] {
            keep(line(id, "c"), 10, &mut heads, &mut t);
        }
        assert_eq!(kept(&heads), vec![9, 12, 25]);
    }

    #[test]
    fn ids_in_any_order_are_kept_as_runs_and_holes_are_the_gaps() {
        let mut r = Runs::default();
        for id in [5, 1, 2, 9, 3, 10, 7, 2, 12, 11] {
            r.insert(id);
        }
        assert_eq!(
            r.0.into_iter().collect::<Vec<_>>(),
            vec![(1, 3), (5, 5), (7, 7), (9, 12)]
        );
        let mut r = Runs::default();
        for id in [4, 6, 5, u64::MAX, 1] {
            r.insert(id);
        }
        assert_eq!(r.gaps(), vec![(2, 3), (7, u64::MAX - 1)]);
    }

    #[test]
    fn a_second_chain_value_for_a_kept_id_is_a_conflict_and_the_first_stays() {
        let (mut heads, mut t) = (Heads::new(), Tally::default());
        keep(line(5, "a"), 0, &mut heads, &mut t);
        keep(line(5, "a"), 0, &mut heads, &mut t);
        keep(line(5, "b"), 0, &mut heads, &mut t);
        assert_eq!(heads["h"][&5].chain, "a");
        assert_eq!(t.conflicts.len(), 1);
    }
}
