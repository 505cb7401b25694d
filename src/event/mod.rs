//! Building events: who did it (actor attribution), and (with the capture issue) redaction and
//! correlation. Pure functions over what the hook layer parsed; the store only receives the
//! finished [`crate::record::Event`].

pub mod actor;
