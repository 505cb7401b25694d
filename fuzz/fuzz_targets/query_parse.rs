//! The time and search-query parsers: see `src/query_parse.rs` for the properties checked.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| dokku_audit_fuzz::query_parse(data));
