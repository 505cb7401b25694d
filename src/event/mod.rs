//! Building events: who did it (actor attribution), what may be stored (redaction), and how the
//! triggers of one operation find each other (correlation). Functions over what the hook layer
//! parsed; the store only receives the finished [`crate::record::Event`].

pub mod actor;
pub mod build;
pub mod command;
pub mod correlate;
pub mod host;
pub mod identity;
pub mod procfs;
pub mod redact;
