//! The bodies of the fuzz targets, as plain functions.
//!
//! `fuzz_targets/*.rs` are one-line `fuzz_target!` wrappers around these, so the same property
//! checks also run on stable Rust from `tests/smoke.rs` (no libFuzzer, no nightly). Every
//! function panics when a property fails; that is what libFuzzer records as a crash.

pub mod hook_args;
pub mod http_head;
pub mod line_decode;
pub mod query_parse;
pub mod segment_reader;

pub use hook_args::hook_args;
pub use http_head::http_head;
pub use line_decode::line_decode;
pub use query_parse::query_parse;
pub use segment_reader::segment_reader;

/// The fixed pieces of a v1 integrity tail, as `segments-format.md` §4 spells them. Kept here
/// rather than imported so that the targets check the library against the spec, not against
/// itself.
pub mod spec {
    /// From the `,` before `"v"` to the opening quote of the chain value.
    pub const TAIL_V: &[u8] = b",\"v\":1,\"chain\":\"";
    /// Between the chain value and the CRC value.
    pub const TAIL_CRC: &[u8] = b"\",\"crc\":\"";
    /// After the CRC value.
    pub const TAIL_END: &[u8] = b"\"}";
    /// Bytes at the end of a line that the CRC does not cover: `,"crc":"xxxxxxxx"}`.
    pub const CRC_SUFFIX_LEN: usize = TAIL_CRC.len() - 1 + 8 + TAIL_END.len();
}

/// A small deterministic byte source over the fuzz input, so one input drives several choices
/// without panicking when it runs out.
#[derive(Debug, Clone)]
pub struct Bytes<'a> {
    data: &'a [u8],
}

impl<'a> Bytes<'a> {
    /// Reads from `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Bytes { data }
    }

    /// The next byte, 0 once the input is used up.
    pub fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((b, rest)) => {
                self.data = rest;
                *b
            }
            None => 0,
        }
    }

    /// A little-endian u16 from the next two bytes.
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    /// Up to `n` bytes.
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        head
    }

    /// Whatever is left.
    pub fn rest(&mut self) -> &'a [u8] {
        self.take(self.data.len())
    }
}
