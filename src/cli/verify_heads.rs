//! `verify --heads FILE`: this host's chain values against the ones a collector received
//! (segments-format.md §5.5). Each recorded head of this host (its `host_id`) is one of:
//! matched (the store holds that id with that chain value), a mismatch (it holds the id with
//! another value: rewritten after it was shipped), not held but removed by a prune, retention or
//! restore this store recorded, or missing (not held and no recorded removal explains it).

use std::collections::BTreeSet;

use super::fleet_heads::{read_heads, HeadRecord};
use super::{CliError, Context};
use crate::store::fleet::HeldChains;
use crate::store::Store;

/// How one recorded head compares with the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeadOutcome {
    /// Same id, same chain value.
    Matched,
    /// The store holds the id with another chain value.
    Mismatch {
        /// The store's value.
        local: String,
    },
    /// Not held; the store's maintenance event `by` recorded removing it.
    Removed {
        /// The maintenance event.
        by: u64,
        /// Its action: `prune` (prune or retention) or `restore`.
        action: &'static str,
        /// The removal's chain anchor carries this head's value as the `prev` of a gap, so
        /// the removed line had the value the collector received.
        anchored: bool,
    },
    /// Not held, and no recorded removal covers it (deleted by hand, or events removed from
    /// the end of the store).
    Missing {
        /// The store's newest id.
        last_id: u64,
    },
}

impl HeadOutcome {
    /// Whether this outcome fails `verify`.
    pub fn is_failure(&self) -> bool {
        matches!(
            self,
            HeadOutcome::Mismatch { .. } | HeadOutcome::Missing { .. }
        )
    }

    /// The word for the JSON report.
    pub fn word(&self) -> &'static str {
        match self {
            HeadOutcome::Matched => "matched",
            HeadOutcome::Mismatch { .. } => "mismatch",
            HeadOutcome::Removed { .. } => "not_held",
            HeadOutcome::Missing { .. } => "missing",
        }
    }

    /// One sentence for the text report.
    pub fn describe(&self, h: &HeadRecord) -> String {
        match self {
            HeadOutcome::Matched => format!("head id {}: matches", h.id),
            HeadOutcome::Mismatch { local } => format!(
                "head id {}: chain mismatch: the collector received {}, the store has {local} (history rewritten after it was shipped)",
                h.id, h.chain
            ),
            HeadOutcome::Removed {
                by,
                action,
                anchored,
            } => format!(
                "head id {}: not held: {} (maintenance event {by}){}",
                h.id,
                if *action == "restore" {
                    "replaced by a restore"
                } else {
                    "removed by prune/retention"
                },
                if *anchored { "; its chain anchor carries the received value" } else { "" }
            ),
            HeadOutcome::Missing { last_id } if h.id > *last_id => format!(
                "head id {}: missing: the store ends at id {last_id} (events removed from its end)",
                h.id
            ),
            HeadOutcome::Missing { .. } => format!(
                "head id {}: missing: not in the store, and no prune or retention recorded removing it",
                h.id
            ),
        }
    }
}

/// The heads check of one `verify` run.
#[derive(Debug, Clone)]
pub struct HeadsReport {
    /// The heads file.
    pub file: String,
    /// This host's id.
    pub host_id: String,
    /// Each head of this host, oldest first, with its outcome.
    pub checked: Vec<(HeadRecord, HeadOutcome)>,
}

impl HeadsReport {
    /// Heads that fail `verify`.
    pub fn failures(&self) -> impl Iterator<Item = &(HeadRecord, HeadOutcome)> {
        self.checked.iter().filter(|(_, o)| o.is_failure())
    }

    /// Count of heads with this outcome word.
    pub fn count(&self, word: &str) -> usize {
        self.checked
            .iter()
            .filter(|(_, o)| o.word() == word)
            .count()
    }
}

/// Compares this host's heads in `file` with `store`. A file without any head of this host is
/// a usage error: a check that compares nothing must not pass.
pub fn check(ctx: &Context, store: &Store, file: &str) -> Result<HeadsReport, CliError> {
    let host = crate::event::host::HostIdentity::from_settings(&ctx.settings)?;
    if host.id.is_empty() {
        return Err(CliError::Usage(
            "verify --heads: this host has no host id (no /etc/machine-id; set one with `dokku audit:set host_id <32 hex>`)".into(),
        ));
    }
    let mut mine: Vec<HeadRecord> = read_heads(file)?
        .into_iter()
        .filter(|h| h.host_id == host.id)
        .collect();
    if mine.is_empty() {
        return Err(CliError::Usage(format!(
            "verify --heads: {file} has no head of this host (host_id {})",
            host.id
        )));
    }
    mine.sort_by_key(|h| h.id);
    mine.dedup_by_key(|h| h.id);
    let ids: BTreeSet<u64> = mine.iter().map(|h| h.id).collect();
    let held = store.held_chains(&ids, &host.id)?;
    let checked = mine
        .into_iter()
        .map(|h| {
            let o = outcome(&held, &h);
            (h, o)
        })
        .collect();
    Ok(HeadsReport {
        file: file.to_string(),
        host_id: host.id,
        checked,
    })
}

fn outcome(held: &HeldChains, h: &HeadRecord) -> HeadOutcome {
    match held.chains.get(&h.id) {
        Some(local) if *local == h.chain => HeadOutcome::Matched,
        Some(local) => HeadOutcome::Mismatch {
            local: local.clone(),
        },
        None => match held.removal_of(h.id) {
            Some(r) => HeadOutcome::Removed {
                by: r.event_id,
                action: r.action,
                anchored: r.anchor_prevs.contains(&h.chain),
            },
            None => HeadOutcome::Missing {
                last_id: held.last_id,
            },
        },
    }
}
