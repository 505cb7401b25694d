//! The HTTP request head parser of `serve`: see `src/http_head.rs` for the properties checked.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| dokku_audit_fuzz::http_head(data));
