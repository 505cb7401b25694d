//! Every integration test, in one test binary. Each file under `tests/` used to be its own
//! binary, and every one of them linked the whole crate (with tantivy) again: ~30 links per
//! build and as many copies of the crate in `target/`. Now each file is a module here, so
//! `cargo test --test tests backup::` runs what `cargo test --test backup` ran.
//!
//! All tests share one process: whatever is process-wide (the environment, the working
//! directory, umask, signal dispositions) is left alone by every test — commands get their
//! environment through `Command::env` — and a test that loads the whole machine on purpose
//! takes `util::exclusive()`.

mod util;

mod backup;
mod capture_changes;
mod capture_parity;
mod capture_posture;
mod clickhouse;
mod codec_props;
mod compat;
mod concurrency;
mod corruption;
mod crash;
mod dist;
mod fleet;
mod format;
mod host_identity;
mod hostile_input;
mod import_sqlite;
mod load;
mod maintenance;
mod page;
mod prune;
mod queries;
mod redact_props;
mod releases;
mod releases_view;
mod replay;
mod resource_faults;
mod security;
mod security_redact;
mod security_serve;
mod security_trail;
mod serve;
mod serve_reader;
mod settings;
mod shipper;
mod store_cli;
mod tail_doctor;
