//! The line codec: see `src/line_decode.rs` for the properties checked.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| dokku_audit_fuzz::line_decode(data));
