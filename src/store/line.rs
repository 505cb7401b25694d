//! One segment line ↔ bytes: the integrity tail (`v`, `chain`, `crc`) that follows the event
//! object, its CRC-32 and the hash chain. `segments-format.md` §3–§5 is the normative text; the
//! constants here are that text in code, and `tests/format.rs` recomputes its worked examples.
//!
//! A line is
//!
//! ```text
//! <event JSON without its closing '}'>,"v":1,"chain":"<32 hex>","crc":"<8 hex>"}\n
//! ```
//!
//! The tail has a fixed length, so integrity is checked without a JSON parser: that keeps a full
//! scan at memory speed and lets a reader find the event bytes by slicing.

use sha2::{Digest, Sha256};

/// The format version this build writes, and the newest it reads.
pub const FORMAT_VERSION: u32 = 1;

/// Bytes of the chain value stored on each line (128 bits; segments-format.md §5 says why).
pub const CHAIN_BYTES: usize = 16;

const TAIL_V: &[u8] = b",\"v\":1,\"chain\":\"";
const TAIL_CRC: &[u8] = b"\",\"crc\":\"";
const TAIL_END: &[u8] = b"\"}";

/// Length of the integrity tail, from the `,` before `"v"` to the final `}` (no newline).
pub const TAIL_LEN: usize = TAIL_V.len() + CHAIN_BYTES * 2 + TAIL_CRC.len() + 8 + TAIL_END.len();

/// Bytes at the end of a line (without newline) that the CRC does not cover: `,"crc":"…"}`.
const CRC_SUFFIX_LEN: usize = TAIL_CRC.len() - 1 + 8 + TAIL_END.len();

/// A chain value: the first 128 bits of a SHA-256.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ChainHash(pub [u8; CHAIN_BYTES]);

impl ChainHash {
    /// The value before the first event of a store: sixteen zero bytes.
    pub const GENESIS: ChainHash = ChainHash([0; CHAIN_BYTES]);

    /// The chain value of an event: `SHA-256(prev ‖ event_json)[..16]`, where `event_json` is the
    /// canonical event object exactly as it stands on the line (with its closing `}`).
    pub fn next(prev: &ChainHash, event_json_open: &[u8]) -> ChainHash {
        let mut h = Sha256::new();
        h.update(prev.0);
        h.update(event_json_open);
        h.update(b"}");
        let digest = h.finalize();
        let mut out = [0u8; CHAIN_BYTES];
        out.copy_from_slice(&digest[..CHAIN_BYTES]);
        ChainHash(out)
    }

    /// Lower-case hex, as stored on the line.
    pub fn to_hex(&self) -> String {
        let mut s = String::with_capacity(CHAIN_BYTES * 2);
        for b in self.0 {
            s.push(HEX[(b >> 4) as usize] as char);
            s.push(HEX[(b & 15) as usize] as char);
        }
        s
    }

    /// Parses lower-case hex of exactly the right length.
    pub fn from_hex(s: &[u8]) -> Option<ChainHash> {
        if s.len() != CHAIN_BYTES * 2 {
            return None;
        }
        let mut out = [0u8; CHAIN_BYTES];
        for (i, pair) in s.chunks_exact(2).enumerate() {
            out[i] = (hex_val(pair[0])? << 4) | hex_val(pair[1])?;
        }
        Some(ChainHash(out))
    }
}

impl std::fmt::Debug for ChainHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ChainHash({})", self.to_hex())
    }
}

impl std::fmt::Display for ChainHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

/// Appends one complete line (with `\n`) for `event_json` to `out` and returns its chain value.
/// `event_json` must be a compact JSON object (it ends with `}`); the store only passes
/// [`crate::record::Event::to_json_bytes`] output.
pub fn encode_line(event_json: &[u8], prev: &ChainHash, out: &mut Vec<u8>) -> ChainHash {
    debug_assert_eq!(event_json.last(), Some(&b'}'));
    let open = &event_json[..event_json.len().saturating_sub(1)];
    let chain = ChainHash::next(prev, open);
    let start = out.len();
    out.extend_from_slice(open);
    out.extend_from_slice(TAIL_V);
    out.extend_from_slice(chain.to_hex().as_bytes());
    out.push(b'"');
    let crc = crc32fast::hash(&out[start..]);
    out.extend_from_slice(&TAIL_CRC[1..]);
    out.extend_from_slice(format!("{crc:08x}").as_bytes());
    out.extend_from_slice(TAIL_END);
    out.push(b'\n');
    chain
}

/// A line whose integrity tail and CRC check out. Borrowed from the segment bytes.
#[derive(Debug, Clone, Copy)]
pub struct CheckedLine<'a> {
    /// The event object without its closing `}`: append `}` to get the canonical event JSON.
    pub event_open: &'a [u8],
    /// The stored chain value.
    pub chain: ChainHash,
    /// The whole line as stored (without its `\n`): what compaction copies unchanged.
    pub raw: &'a [u8],
    /// The event id from the `{"id":N,` prefix (checked by [`check_line`]).
    pub id: u64,
}

impl<'a> CheckedLine<'a> {
    /// The event id, read from the fixed `{"id":N,` prefix without a JSON parser. Always
    /// `Some` for a line that passed [`check_line`].
    pub fn id(&self) -> Option<u64> {
        Some(self.id)
    }

    /// The event `ts`, read from the fixed `"ts":"…"` second field.
    pub fn ts(&self) -> Option<&'a str> {
        let at = memfind(self.event_open, b",\"ts\":\"")? + 7;
        let s = self
            .event_open
            .get(at..at + crate::timefmt::CANONICAL_LEN)?;
        std::str::from_utf8(s).ok()
    }

    /// The JSON of the `app` member (a string or `null`), read at its fixed place (third, before
    /// `category`). A `,"` cannot occur inside a JSON string (its quote would be escaped), so
    /// the first `,"category":"` after it ends the value.
    pub fn app_json(&self) -> Option<&'a [u8]> {
        let start = memfind(self.event_open, b",\"app\":")? + 7;
        let rest = &self.event_open[start..];
        Some(&rest[..memfind(rest, b",\"category\":\"")?])
    }

    /// The `category` member, read at its fixed place (fourth; a word without escapes).
    pub fn category(&self) -> Option<&'a str> {
        let start = memfind(self.event_open, b",\"category\":\"")? + 13;
        let rest = &self.event_open[start..];
        std::str::from_utf8(&rest[..rest.iter().position(|&c| c == b'"')?]).ok()
    }

    /// The chain value this line must have if `prev` is the value before it.
    pub fn expected_chain(&self, prev: &ChainHash) -> ChainHash {
        ChainHash::next(prev, self.event_open)
    }

    /// The canonical event JSON (with its closing `}`).
    pub fn event_json(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.event_open.len() + 1);
        v.extend_from_slice(self.event_open);
        v.push(b'}');
        v
    }
}

/// Why a line failed its integrity check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    /// The line does not end with a well-formed integrity tail.
    #[error("missing or malformed integrity fields")]
    Malformed,
    /// The line says it is of a format version this build does not know.
    #[error("format version {0} is newer than this dokku-audit understands ({FORMAT_VERSION})")]
    NewerVersion(u32),
    /// The stored CRC does not match the bytes.
    #[error("checksum mismatch (stored {stored:08x}, computed {computed:08x})")]
    Crc {
        /// CRC on the line.
        stored: u32,
        /// CRC of the bytes.
        computed: u32,
    },
    /// The CRC matches but the event part does not start with `{"id":N,` where N is an id
    /// (1 ..= u64::MAX, no leading zero): the store cannot place the line (§4.2 check 5).
    #[error("no event id: the event does not start with {{\"id\":<1..18446744073709551615>,")]
    NoId,
}

/// Checks one line (without its `\n`): the tail's shape, the version and the CRC.
pub fn check_line(line: &[u8]) -> Result<CheckedLine<'_>, LineError> {
    if line.len() < TAIL_LEN + 2 || line.first() != Some(&b'{') {
        return Err(version_hint(line));
    }
    let tail_at = line.len() - TAIL_LEN;
    let tail = &line[tail_at..];
    let chain_at = TAIL_V.len();
    let crc_at = chain_at + CHAIN_BYTES * 2 + TAIL_CRC.len();
    if &tail[..chain_at] != TAIL_V
        || &tail[chain_at + CHAIN_BYTES * 2..crc_at] != TAIL_CRC
        || &tail[crc_at + 8..] != TAIL_END
    {
        return Err(version_hint(line));
    }
    let chain = ChainHash::from_hex(&tail[chain_at..chain_at + CHAIN_BYTES * 2])
        .ok_or(LineError::Malformed)?;
    let stored = parse_crc(&tail[crc_at..crc_at + 8]).ok_or(LineError::Malformed)?;
    let computed = crc32fast::hash(&line[..line.len() - CRC_SUFFIX_LEN]);
    if stored != computed {
        return Err(LineError::Crc { stored, computed });
    }
    let event_open = &line[..tail_at];
    let id = parse_id(event_open).ok_or(LineError::NoId)?;
    Ok(CheckedLine {
        raw: line,
        event_open,
        chain,
        id,
    })
}

/// The id of an event part: `{"id":` then 1 to 20 decimal digits without a leading zero whose
/// value fits in a u64 and is not 0, then `,`.
pub fn parse_id(event_open: &[u8]) -> Option<u64> {
    let rest = event_open.strip_prefix(b"{\"id\":")?;
    let end = rest.iter().position(|c| !c.is_ascii_digit())?;
    if end == 0 || end > 20 || rest[0] == b'0' || rest[end] != b',' {
        return None;
    }
    std::str::from_utf8(&rest[..end]).ok()?.parse().ok()
}

fn parse_crc(hex: &[u8]) -> Option<u32> {
    hex.iter()
        .try_fold(0u32, |acc, c| Some((acc << 4) | hex_val(*c)? as u32))
}

/// A line that is not v1-shaped may be a newer format: report that instead of "malformed", so a
/// newer store is refused with a clear message rather than called corrupt.
fn version_hint(line: &[u8]) -> LineError {
    let Some(at) = memrfind(line, b",\"v\":") else {
        return LineError::Malformed;
    };
    let digits: Vec<u8> = line[at + 5..]
        .iter()
        .take_while(|c| c.is_ascii_digit())
        .copied()
        .collect();
    match std::str::from_utf8(&digits)
        .ok()
        .and_then(|s| s.parse::<u32>().ok())
    {
        Some(v) if v > FORMAT_VERSION => LineError::NewerVersion(v),
        _ => LineError::Malformed,
    }
}

/// Position of the first occurrence of `needle` in `hay`.
pub fn memfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(hay, needle)
}

fn memrfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::rfind(hay, needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENT: &[u8] = br#"{"id":1,"ts":"2026-04-08T20:00:00Z","app":null,"meta":{}}"#;

    #[test]
    fn encode_then_check() {
        let mut out = Vec::new();
        let chain = encode_line(EVENT, &ChainHash::GENESIS, &mut out);
        assert_eq!(out.last(), Some(&b'\n'));
        let line = &out[..out.len() - 1];
        assert_eq!(line.len(), EVENT.len() - 1 + TAIL_LEN);
        let checked = check_line(line).unwrap();
        assert_eq!(checked.chain, chain);
        assert_eq!(checked.event_json(), EVENT);
        assert_eq!(checked.id(), Some(1));
        assert_eq!(checked.ts(), Some("2026-04-08T20:00:00Z"));
        assert_eq!(checked.expected_chain(&ChainHash::GENESIS), chain);
        // the line is valid JSON with the integrity fields at the end
        let v: serde_json::Value = serde_json::from_slice(line).unwrap();
        assert_eq!(v["v"], 1);
        assert_eq!(v["chain"], chain.to_hex());
    }

    #[test]
    fn every_flipped_byte_is_detected() {
        let mut out = Vec::new();
        encode_line(EVENT, &ChainHash::GENESIS, &mut out);
        let line = &out[..out.len() - 1];
        for i in 0..line.len() {
            for bit in 0..8 {
                let mut bad = line.to_vec();
                bad[i] ^= 1 << bit;
                assert!(
                    check_line(&bad).is_err(),
                    "flip at {i} bit {bit} not detected"
                );
            }
        }
    }

    #[test]
    fn truncations_are_detected() {
        let mut out = Vec::new();
        encode_line(EVENT, &ChainHash::GENESIS, &mut out);
        let line = &out[..out.len() - 1];
        for n in 0..line.len() {
            assert!(check_line(&line[..n]).is_err());
        }
    }

    #[test]
    fn newer_version_is_named() {
        let line = br#"{"id":1,"v":2,"chain":"x"}"#;
        assert_eq!(check_line(line).unwrap_err(), LineError::NewerVersion(2));
        assert_eq!(check_line(b"garbage").unwrap_err(), LineError::Malformed);
    }

    /// A line whose CRC matches but whose event part has no `{"id":N,` prefix is invalid
    /// (segments-format.md §4.2 check 5): never served, never a predecessor.
    #[test]
    fn a_line_without_an_id_is_invalid() {
        for ev in [
            &br#"{"ID":3001,"ts":"2026-04-08T20:00:00Z"}"#[..],
            br#"{"id":18446744073709551616,"ts":"2026-04-08T20:00:00Z"}"#,
            br#"{"id":0,"ts":"2026-04-08T20:00:00Z"}"#,
            br#"{"id":007,"ts":"2026-04-08T20:00:00Z"}"#,
            br#"{"id":7}"#,
            b"{x}",
        ] {
            let mut out = Vec::new();
            encode_line(ev, &ChainHash::GENESIS, &mut out);
            let line = &out[..out.len() - 1];
            assert_eq!(
                check_line(line).unwrap_err(),
                LineError::NoId,
                "{}",
                String::from_utf8_lossy(ev)
            );
        }
        let mut out = Vec::new();
        encode_line(
            br#"{"id":18446744073709551615,"ts":"x"}"#,
            &ChainHash::GENESIS,
            &mut out,
        );
        assert_eq!(check_line(&out[..out.len() - 1]).unwrap().id, u64::MAX);
    }

    #[test]
    fn hex_round_trip() {
        let h = ChainHash::next(&ChainHash::GENESIS, b"{");
        assert_eq!(ChainHash::from_hex(h.to_hex().as_bytes()), Some(h));
        assert_eq!(
            ChainHash::from_hex(b"ABCDEF0123456789abcdef0123456789"),
            None
        );
    }
}
