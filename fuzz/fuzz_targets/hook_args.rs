//! The hook argument parsers: see `src/hook_args.rs` for the properties checked.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| dokku_audit_fuzz::hook_args(data));
