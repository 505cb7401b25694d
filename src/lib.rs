//! dokku-audit: a durable, queryable, tamper-evident audit trail for Dokku hosts.
//!
//! The data flows top to bottom, one module per concern (the README's "Layout of the code"):
//!
//! ```text
//! Dokku trigger ──argv+env──▶ plugin/<trigger> ──exec──▶ dokku-audit hook <trigger> …
//!   privilege  a root process becomes the runtime user before touching the data directory
//!   layout, safefs  every name in the data directory; the only way to open, create or remove one
//!   hook       what Dokku passed, typed (trigger args, environment, the user-auth command line)
//!   event      who did it (actor, the command per DOKKU_PID), redaction, correlation → record
//!   state      what one trigger leaves for the next (under its own lock)
//!   store      lock, chain, one write, fsync; rotation, sealing, spool, maintenance
//!                                                                        → segments/*.jsonl[.zst]
//!   index      the derived tantivy index, caught up from the segments
//!   query      export scans; list queries over the index plus the unindexed tail → events
//!   output     jsonl / json / csv / tables                                  → stdout or a file
//!   cli, serve the commands and the HTTP API over all of the above
//! ```
//!
//! [`record`] is the bottom layer that every other module uses; only [`store`] opens segment
//! files; [`layout`] names every path of the data directory, and every file there is opened
//! through [`safefs`] (no symlink followed).

#![warn(missing_docs)]

pub mod record;
pub mod timefmt;

pub mod clock;
pub mod crashpoint;
pub mod layout;
pub mod privilege;
pub mod safefs;
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
