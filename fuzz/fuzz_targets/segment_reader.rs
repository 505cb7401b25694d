//! The segment reader: see `src/segment_reader.rs` for the properties checked.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| dokku_audit_fuzz::segment_reader(data));
