//! Runs the fuzz target bodies on stable Rust, on pseudo-random inputs shaped to reach the
//! interesting paths (valid lines, lightly damaged lines, mixed segments), not only on noise.
//! No coverage feedback: this is a smoke run, the real campaigns are `cargo +nightly fuzz run`.
//!
//! `SMOKE_INPUTS` sets the number of inputs per target (default 2000); `SMOKE_SEED` the seed.

use dokku_audit::store::line::{encode_line, ChainHash};

/// xorshift64*: deterministic, dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn bytes_upto(&mut self, max: usize) -> Vec<u8> {
        let n = self.below(max);
        self.bytes(n)
    }

    fn texty_upto(&mut self, max: usize) -> Vec<u8> {
        let n = self.below(max);
        self.texty(n)
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }

    /// Bytes biased towards what JSON and the tail are made of.
    fn texty(&mut self, n: usize) -> Vec<u8> {
        const ALPHABET: &[u8] = b"{}\",:\\\n0123456789abcdefv \x00\x7f\xc3\xa9";
        (0..n)
            .map(|_| match self.below(4) {
                0 => self.next() as u8,
                _ => ALPHABET[self.below(ALPHABET.len())],
            })
            .collect()
    }
}

fn inputs() -> usize {
    std::env::var("SMOKE_INPUTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000)
}

fn rng() -> Rng {
    let seed = std::env::var("SMOKE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5EED_D0CC_A0D1_0007_u64);
    Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
}

/// A valid line (without `\n`) for an event with random strings.
fn valid_line(rng: &mut Rng) -> Vec<u8> {
    let text = String::from_utf8_lossy(&rng.texty_upto(80)).into_owned();
    let json = serde_json::to_vec(&serde_json::json!({
        "id": rng.next() >> rng.below(64), "ts": "2026-04-08T20:00:00Z", "message": text
    }))
    .expect("serialise");
    let prev = ChainHash(rng.bytes(16).try_into().expect("16 bytes"));
    let mut out = Vec::new();
    encode_line(&json, &prev, &mut out);
    out.pop();
    out
}

fn mutate(rng: &mut Rng, v: &mut Vec<u8>) {
    for _ in 0..1 + rng.below(3) {
        match rng.below(4) {
            0 if !v.is_empty() => {
                let at = rng.below(v.len());
                v[at] ^= 1 << rng.below(8);
            }
            1 if !v.is_empty() => {
                let at = rng.below(v.len());
                v.truncate(at);
            }
            2 => {
                let at = rng.below(v.len() + 1);
                let extra = rng.texty_upto(8);
                let extra = if extra.is_empty() {
                    b"}".to_vec()
                } else {
                    extra
                };
                v.splice(at..at, extra);
            }
            _ => {
                let at = rng.below(v.len() + 1);
                v.insert(at, b'\n');
            }
        }
    }
}

#[test]
fn line_decode_smoke() {
    let mut rng = rng();
    let n = inputs();
    let mut accepted = 0;
    for _ in 0..n {
        let data = match rng.below(5) {
            0 => rng.bytes_upto(300),
            1 => rng.texty_upto(300),
            2 => {
                // newer-version hint and near-miss shapes
                let mut v = format!(r#"{{"id":1,"v":{},"chain":"x"}}"#, rng.below(5)).into_bytes();
                mutate(&mut rng, &mut v);
                v
            }
            3 => {
                let mut v = valid_line(&mut rng);
                mutate(&mut rng, &mut v);
                v
            }
            _ => valid_line(&mut rng),
        };
        if dokku_audit::store::line::check_line(&data).is_ok() {
            accepted += 1;
        }
        dokku_audit_fuzz::line_decode(&data);
    }
    eprintln!("line_decode: {n} inputs, {accepted} accepted by check_line");
    assert!(accepted > 0 || n < 10, "the Ok path was never reached");
}

#[test]
fn segment_reader_smoke() {
    let mut rng = rng();
    let n = inputs();
    let mut noise = 0;
    for _ in 0..n {
        let mut data = rng.bytes(7); // flags, chunk, split (2), corrupt_at (2), mask
        let events = rng.texty_upto(200);
        data[2..4].copy_from_slice(&(events.len() as u16).to_le_bytes());
        data.extend_from_slice(&events);
        // The "garbage": a mix of valid, damaged, empty and torn lines, or plain noise.
        match rng.below(3) {
            0 => data.extend(rng.bytes_upto(200)),
            _ => {
                for _ in 0..rng.below(5) {
                    let mut l = match rng.below(4) {
                        0 => Vec::new(),
                        1 => rng.texty_upto(40),
                        _ => valid_line(&mut rng),
                    };
                    if rng.below(3) == 0 {
                        mutate(&mut rng, &mut l);
                    }
                    data.extend_from_slice(&l);
                    data.push(b'\n');
                }
                if rng.below(2) == 0 {
                    let l = valid_line(&mut rng);
                    let cut = rng.below(l.len() + 1);
                    data.extend_from_slice(&l[..cut]);
                }
            }
        }
        dokku_audit_fuzz::segment_reader(&data);
        // And the raw noise as a whole input.
        if rng.below(8) == 0 {
            noise += 1;
            dokku_audit_fuzz::segment_reader(&rng.bytes_upto(64));
        }
    }
    eprintln!("segment_reader: {n} shaped inputs and {noise} noise inputs");
}

/// Argument words biased towards what the parsers look for.
fn arg_word(rng: &mut Rng) -> Vec<u8> {
    const WORDS: &[&str] = &[
        "",
        "myapp",
        "--app",
        "--app=",
        "--app=x",
        "--global",
        "--trace",
        "--label",
        "--",
        "-e",
        "--env",
        "--env=K=V",
        "-eK=V",
        "K=V",
        "SECRET=hunter2",
        "=x",
        "0",
        "1",
        "2",
        "run",
        "run:detached",
        "enter",
        "--container-id",
        "--container-id=abc",
        "config:set",
        "config:set-global",
        "config:unset",
        "letsencrypt:set",
        "registry:login",
        "git:auth",
        "git:sync",
        "--build",
        "docker-options:add",
        "-e A=1 -e B=2",
        "git-receive-pack '/home/dokku/../a/myapp.git'",
        "git-hook",
        "/home/dokku/myapp.git",
        "'myapp'",
        "https://user:tok@host/x",
        "ssh://u:p@h:22#r",
        "apps:rename",
        "resource:limit",
        "../../etc/passwd",
        "a\nb",
        "set",
    ];
    match rng.below(6) {
        0 => rng.bytes_upto(12),
        1 => rng.texty_upto(12),
        _ => WORDS[rng.below(WORDS.len())].as_bytes().to_vec(),
    }
}

#[test]
fn hook_args_smoke() {
    let mut rng = rng();
    let n = inputs();
    for i in 0..n {
        // The 1 MiB argument (low flag bits 001001) on a few inputs only: it dominates the run
        // time.
        let flags = if i % 200 == 0 {
            0b1100_1001
        } else {
            rng.next() as u8 & !1
        };
        let mut data = vec![flags];
        let count = rng.below(10);
        for j in 0..count {
            if j > 0 {
                data.push(0);
            }
            data.extend(arg_word(&mut rng));
        }
        if rng.below(6) == 0 {
            mutate(&mut rng, &mut data);
        }
        if i % 200 == 0 {
            dokku_audit_fuzz::hook_args::hook_args_sized(&data, 1 << 20);
        } else {
            dokku_audit_fuzz::hook_args(&data);
        }
    }
    dokku_audit_fuzz::hook_args(&[]);
    dokku_audit_fuzz::hook_args(&[1]);
    eprintln!("hook_args: {n} inputs");
}

fn time_word(rng: &mut Rng) -> String {
    let n = rng.next() % 100_000;
    match rng.below(8) {
        0 => format!(
            "{n}{}",
            ["s", "m", "h", "d", "w", "y", "é", ""][rng.below(8)]
        ),
        1 => format!(
            "{:04}-{:02}-{:02}",
            rng.below(10_000),
            rng.below(14),
            rng.below(33)
        ),
        2 => format!(
            " {:04}-{:02}-{:02}T{:02}:{:02}:{:02}{} ",
            rng.below(10_000),
            rng.below(14),
            rng.below(33),
            rng.below(26),
            rng.below(62),
            rng.below(62),
            ["Z", "+01:00", "-23:59", ".5Z", "", "+24:00"][rng.below(6)]
        ),
        3 => format!("{}d", u64::MAX >> rng.below(64)),
        _ => String::from_utf8_lossy(&rng.texty_upto(12)).into_owned(),
    }
}

fn query_word(rng: &mut Rng) -> String {
    const WORDS: &[&str] = &[
        "deploy",
        "AND",
        "OR",
        "NOT",
        "(",
        ")",
        "\"",
        ":",
        "text:",
        "message:x",
        "*",
        "?",
        "[",
        "]",
        "TO",
        "{",
        "}",
        "-",
        "+",
        "^2",
        "~",
        "IN",
        "\\",
        "ts:>5",
        "app:myapp",
        "é",
        " ",
    ];
    (0..rng.below(8))
        .map(|_| match rng.below(4) {
            0 => String::from_utf8_lossy(&rng.texty_upto(6)).into_owned(),
            _ => WORDS[rng.below(WORDS.len())].to_string(),
        })
        .collect::<Vec<_>>()
        .join(if rng.below(2) == 0 { " " } else { "" })
}

#[test]
fn query_parse_smoke() {
    let mut rng = rng();
    let n = inputs();
    for _ in 0..n {
        let mut data = rng.bytes(8);
        // Two timestamp-shaped strings: mostly plausible digits.
        for _ in 0..28 {
            data.push(match rng.below(8) {
                0 => rng.next() as u8,
                _ => rng.below(10) as u8,
            });
        }
        data.push(rng.next() as u8);
        let parts = [
            time_word(&mut rng),
            query_word(&mut rng),
            query_word(&mut rng),
            query_word(&mut rng),
            query_word(&mut rng),
        ];
        data.extend(parts.join("\0").into_bytes());
        if rng.below(8) == 0 {
            mutate(&mut rng, &mut data);
        }
        dokku_audit_fuzz::query_parse(&data);
    }
    dokku_audit_fuzz::query_parse(&[]);
    eprintln!("query_parse: {n} inputs");
}

/// A request head from pieces: request lines, header lines (Host and Origin spellings, framing
/// headers, broken lines), line ends, and now and then noise or a second request behind it.
fn http_piece(rng: &mut Rng) -> Vec<u8> {
    const PIECES: &[&str] = &[
        "GET /api/events?app=a%20b&q=x+y HTTP/1.1",
        "HEAD /api/events/stream HTTP/1.0",
        "GET / HTTP/1.1",
        "POST / HTTP/1.1",
        "GET http://x/ HTTP/1.1",
        "GET /%zz HTTP/1.1",
        "GET / HTTP/2.0",
        "Host: localhost",
        "Host: localhost:8787",
        "Host: LOCALHOST.",
        "Host: 127.0.0.1:8787",
        "Host: 127.1",
        "Host: [::1]:8787",
        "Host: [::ffff:127.0.0.1]",
        "Host: [0:0:0:0:0:0:0:1]",
        "Host: 192.0.2.10",
        "Host: audit.example.com:443",
        "Host: rebind.test:8787",
        "Host: localhost.evil",
        "Host: user@localhost",
        "Host: localhost:99999",
        "Host: [::1",
        "Origin: http://127.0.0.1:8787",
        "Origin: http://localhost:3000",
        "Origin: https://audit.example.com",
        "Origin: null",
        "Content-Length: 0",
        "Content-Length: 38",
        "Content-Length: 00",
        "Content-Length: +0",
        "Content-Length: 0, 0",
        "Transfer-Encoding: chunked",
        "Connection: close",
        "Connection: keep-alive",
        "X-A: b",
        "bad header",
        " folded: x",
        "",
    ];
    match rng.below(10) {
        0 => rng.texty_upto(12),
        _ => PIECES[rng.below(PIECES.len())].as_bytes().to_vec(),
    }
}

#[test]
fn http_head_smoke() {
    let mut rng = rng();
    let n = inputs();
    for _ in 0..n {
        let mut data = vec![rng.next() as u8];
        for _ in 0..rng.below(10) {
            data.extend_from_slice(&http_piece(&mut rng));
            data.extend_from_slice(match rng.below(8) {
                0 => b"\n",
                1 => b"",
                _ => b"\r\n",
            });
        }
        if rng.below(2) == 0 {
            data.extend_from_slice(b"\r\n");
        }
        if rng.below(4) == 0 {
            data.extend_from_slice(b"GET /api/events HTTP/1.1\r\nHost: xy\r\n\r\n");
        }
        if rng.below(8) == 0 {
            mutate(&mut rng, &mut data);
        }
        dokku_audit_fuzz::http_head(&data);
    }
}
