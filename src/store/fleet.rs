//! The chain seen from outside the host (segments-format.md §5.5): checking a line a collector
//! received (`fleet-heads`), and the local chain values of given ids with the removals the
//! store recorded (`verify --heads`). The line codec stays here, in the store, like every other
//! use of it.

use std::collections::{BTreeSet, HashMap};
use std::ops::ControlFlow;

use super::line::{check_line, memfind, LineError};
use super::{Result, ScanItem, Store};

/// A shipped line that passed its integrity check (§4.2), with what the collector needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShippedLine {
    /// The event id.
    pub id: u64,
    /// The stored chain value, 32 lower-case hex digits.
    pub chain: String,
    /// The event `ts` (as the host's clock said).
    pub ts: String,
    /// `meta.host_id`, if the event has one (§7.9).
    pub host_id: Option<String>,
    /// `meta.host_name`, if the event has one.
    pub host_name: Option<String>,
}

/// Why a shipped line is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShippedLineError {
    /// The line fails its integrity check (torn or changed in transit, or not an audit line).
    #[error("{0}")]
    Integrity(#[from] LineError),
    /// The CRC matches but the event part is not a JSON object.
    #[error("event is not valid JSON: {0}")]
    Json(String),
}

/// Checks one shipped line (without its `\n`) like every reader checks a segment line, and
/// reads the host members from its JSON.
pub fn parse_shipped(line: &[u8]) -> std::result::Result<ShippedLine, ShippedLineError> {
    let checked = check_line(line)?;
    let host: HostMembers = serde_json::from_slice(&checked.event_json())
        .map_err(|e| ShippedLineError::Json(e.to_string()))?;
    let meta = host.meta.unwrap_or_default();
    Ok(ShippedLine {
        id: checked.id,
        chain: checked.chain.to_hex(),
        ts: checked.ts().unwrap_or_default().to_string(),
        host_id: meta.host_id,
        host_name: meta.host_name,
    })
}

/// The only members a collector needs from an event (§7.9): deserialising just these skips
/// building the rest of the event, which is most of the cost over a large received file.
#[derive(serde::Deserialize)]
struct HostMembers {
    #[serde(default)]
    meta: Option<HostMeta>,
}

#[derive(serde::Deserialize, Default)]
struct HostMeta {
    #[serde(default)]
    host_id: Option<String>,
    #[serde(default)]
    host_name: Option<String>,
}

/// A removal the store recorded in a maintenance event: `prune` (prune or retention, §7.6) or
/// `restore` (the replaced history after the backup's last id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRemoval {
    /// The id of the maintenance event.
    pub event_id: u64,
    /// Its action: `prune` or `restore`.
    pub action: &'static str,
    /// Smallest id removed.
    pub min_id: u64,
    /// Largest id removed.
    pub max_id: u64,
    /// The chain values of deleted lines before each gap (`prev` of every anchor, §5.3).
    pub anchor_prevs: Vec<String>,
}

/// What the store holds for a set of ids.
#[derive(Debug, Clone, Default)]
pub struct HeldChains {
    /// Chain value (hex) of each asked-for id the store holds as a valid line.
    pub chains: HashMap<u64, String>,
    /// Every removal recorded by this store's own maintenance events.
    pub removals: Vec<RecordedRemoval>,
    /// The id of the newest valid line (0 for an empty store).
    pub last_id: u64,
}

impl HeldChains {
    /// The recorded removal whose id range covers `id`, if any.
    pub fn removal_of(&self, id: u64) -> Option<&RecordedRemoval> {
        self.removals
            .iter()
            .find(|r| r.min_id <= id && id <= r.max_id)
    }
}

impl Store {
    /// The chain values of `ids` and the removals recorded anywhere in the store, in one scan
    /// (a maintenance event comes after what it removed, so the whole store is read). Damaged
    /// lines are skipped, as every reader does: an id held only by a damaged line is not held.
    /// `host_id` is this host's: only its own restore events count.
    pub fn held_chains(&self, ids: &BTreeSet<u64>, host_id: &str) -> Result<HeldChains> {
        let mut out = HeldChains::default();
        self.scan(&mut |item| {
            if let ScanItem::Line { line, .. } = item {
                if ids.contains(&line.id) {
                    out.chains.insert(line.id, line.chain.to_hex());
                }
                out.last_id = out.last_id.max(line.id);
                if let Some(r) = recorded_removal(line.id, line.event_open, host_id) {
                    out.removals.push(r);
                }
            }
            ControlFlow::Continue(())
        })?;
        Ok(out)
    }
}

/// The removal a maintenance line records. A `prune` counts only when it carries
/// `chain_anchors`: `import` renames that member (§5.3), so a prune recorded by another store
/// and imported here can never explain an id missing from this one. A `restore` counts only
/// when it carries this host's `host_id` (an imported one keeps its own host's, §7.9); it
/// replaced every id after its `backup_last_id` and before itself.
fn recorded_removal(id: u64, event_open: &[u8], host_id: &str) -> Option<RecordedRemoval> {
    let is = |action: &[u8]| memfind(event_open, action).is_some();
    let action = if is(b"\"category\":\"maintenance\",\"action\":\"prune\"") {
        memfind(event_open, b"\"chain_anchors\"")?;
        "prune"
    } else if is(b"\"category\":\"maintenance\",\"action\":\"restore\"") {
        "restore"
    } else {
        return None;
    };
    let mut json = event_open.to_vec();
    json.push(b'}');
    let v: serde_json::Value = serde_json::from_slice(&json).ok()?;
    let meta = &v["meta"];
    if action == "restore" {
        if meta[crate::event::host::HOST_ID_KEY].as_str() != Some(host_id) {
            return None;
        }
        return Some(RecordedRemoval {
            event_id: id,
            action,
            min_id: meta["backup_last_id"].as_u64()?.checked_add(1)?,
            max_id: id.checked_sub(1)?,
            anchor_prevs: Vec::new(),
        });
    }
    let anchors = meta["chain_anchors"].as_array()?;
    Some(RecordedRemoval {
        event_id: id,
        action,
        min_id: meta["min_id"].as_u64()?,
        max_id: meta["max_id"].as_u64()?,
        anchor_prevs: anchors
            .iter()
            .filter_map(|a| a["prev"].as_str().map(str::to_string))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::line::{encode_line, ChainHash};

    #[test]
    fn a_shipped_line_gives_its_host_and_chain_and_a_changed_one_is_refused() {
        let mut line = Vec::new();
        let ev = br#"{"id":7,"ts":"2026-04-08T20:00:00Z","meta":{"host_name":"web1","host_id":"0123456789abcdef0123456789abcdef"}}"#;
        let chain = encode_line(ev, &ChainHash::GENESIS, &mut line);
        let line = &line[..line.len() - 1];
        let s = parse_shipped(line).unwrap();
        assert_eq!(s.id, 7);
        assert_eq!(s.chain, chain.to_hex());
        assert_eq!(s.host_name.as_deref(), Some("web1"));
        assert_eq!(
            s.host_id.as_deref(),
            Some("0123456789abcdef0123456789abcdef")
        );
        let mut changed = line.to_vec();
        changed[30] = b'X';
        assert!(matches!(
            parse_shipped(&changed),
            Err(ShippedLineError::Integrity(_))
        ));
    }

    #[test]
    fn only_a_prune_with_its_own_anchors_records_a_removal() {
        let own = br#"{"id":9,"ts":"x","app":null,"category":"maintenance","action":"prune","meta":{"deleted_count":3,"min_id":2,"max_id":4,"chain_anchors":[{"id":5,"prev":"ab"}]}"#;
        let r = recorded_removal(9, own, "h").unwrap();
        assert_eq!(
            (r.min_id, r.max_id, r.anchor_prevs),
            (2, 4, vec!["ab".into()])
        );
        let imported = br#"{"id":9,"ts":"x","app":null,"category":"maintenance","action":"prune","meta":{"min_id":2,"max_id":4,"imported_chain_anchors":[]}"#;
        assert!(recorded_removal(9, imported, "h").is_none());
    }

    #[test]
    fn only_this_hosts_restore_records_the_ids_it_replaced() {
        let restore = br#"{"id":20,"ts":"x","app":null,"category":"maintenance","action":"restore","meta":{"backup_last_id":12,"host_id":"h"}"#;
        let r = recorded_removal(20, restore, "h").unwrap();
        assert_eq!((r.action, r.min_id, r.max_id), ("restore", 13, 19));
        assert!(recorded_removal(20, restore, "other").is_none());
    }
}
