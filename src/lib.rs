//! dokku-audit: a durable, queryable, tamper-evident audit trail for Dokku hosts.
//!
//! The data flows top to bottom, one module per concern:
//!
//! ```text
//! Dokku trigger ──argv+env──▶ plugin/<trigger> ──exec──▶ dokku-audit hook <trigger> …
//!   hook       what Dokku passed, typed (trigger args, environment, the user-auth command line)
//!   event      who did it (actor attribution), redaction, correlation      → record::Event
//!   store      lock, chain, one write, fsync; rotation and sealing          → segments/*.jsonl[.zst]
//!   query      scan (and, later, the index) with filters                    → events
//!   output     jsonl / json / csv / tables                                  → stdout or a file
//! ```
//!
//! [`record`] is the bottom layer that every other module uses; only [`store`] opens segment
//! files.

#![warn(missing_docs)]

pub mod record;
pub mod timefmt;

pub mod clock;
pub mod crashpoint;
pub mod privilege;
pub mod settings;

pub mod hook;

pub mod event;
pub mod state;
pub mod store;

pub mod index;
pub mod query;

pub mod output;

pub mod cli;
pub mod demo;
pub mod serve;
