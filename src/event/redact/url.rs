//! Secrets inside longer text: URL userinfo (`scheme://user:password@host`, also when the
//! password holds `#`, `?`, `/`, `@` or a space) and `name=value` / `"name": "value"` pairs
//! whose name says secret (query strings, connection strings, JSON, HTTP headers).

use super::names::is_sensitive;
use super::REDACTED;

fn is_scheme_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'.' | b'-')
}

/// `host[:port]`: a well-formed host (a name or `[v6]`) and, if any, a numeric port.
fn split_host(authority: &str) -> (&str, Option<&str>) {
    if authority.starts_with('[') {
        return match authority.find(']') {
            Some(i) => {
                let rest = &authority[i + 1..];
                (&authority[..=i], rest.strip_prefix(':'))
            }
            None => (authority, None),
        };
    }
    match authority.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (authority, None),
    }
}

fn is_host(host: &str) -> bool {
    if host.starts_with('[') {
        return host.ends_with(']') && host.len() > 2;
    }
    !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'%'))
}

/// The word (up to whitespace) a URL sits in, with its last `@`: computed once per word, so a
/// word holding many `://` is scanned once (linear on hostile input).
struct Word {
    end: usize,
    last_at: Option<usize>,
}

/// Where the userinfo of the URL whose authority starts at `text[start..]` ends (the `@`, or
/// the end of the authority when it is `user:password` without a host), if it has one.
/// `next_at` is the first `@` at or after `start` in the whole text.
fn userinfo_end(text: &str, start: usize, w: &Word, next_at: Option<usize>) -> Option<usize> {
    let word = &text[start..w.end];
    let authority = &word[..word.find(['/', '?', '#']).unwrap_or(word.len())];
    if authority.is_empty() || authority == REDACTED {
        return None;
    }
    let last_at = w.last_at.filter(|&p| p >= start);
    if authority.contains('@') {
        // The userinfo runs to the last `@` before the host: a password may hold `@`, `/`, `#`
        // — or a space (`user:p@ss w0rd@db/app`): a bare dotless label ending the word is no
        // host when the next word holds an `@`.
        let p = last_at?;
        let host = &text[p + 1..w.end];
        let bare = host.is_empty() || (is_host(host) && !host.contains('.') && host != "localhost");
        if &text[start..p] == REDACTED {
            return Some(p);
        }
        let next = text[w.end..].trim_start();
        let next_start = text.len() - next.len();
        let next_word = &next[..next.find(char::is_whitespace).unwrap_or(next.len())];
        return match next_word.rfind('@') {
            Some(q) if bare && w.end < text.len() => Some(next_start + q),
            _ => Some(p),
        };
    }
    let (host, port) = split_host(authority);
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if is_host(host) && port_ok {
        // A host — unless it is a dotless label (a bare token, `tok#x@github.com`) and the
        // last `@` of the word is followed by a dotted host.
        let dotless = !host.contains('.') && !host.starts_with('[') && host != "localhost";
        return last_at.filter(|&p| {
            let after = &text[p + 1..w.end];
            let h = &after[..after.find(['/', '?', '#', ':']).unwrap_or(after.len())];
            dotless && h.contains('.') && is_host(h)
        });
    }
    // Not a host: `user:password` whose password holds `#`, `?`, `/` or `@`, or a space (then
    // the `@` is in a later word). When in doubt, redact the authority.
    if last_at.is_some() {
        return last_at;
    }
    if authority.contains(':') {
        return Some(next_at.unwrap_or(start + authority.len()));
    }
    None
}

/// `https://user:token@host/…` → `https://[REDACTED]@host/…`, for every URL in `text`.
/// Returns `None` when nothing changed.
pub fn redact_url_credentials(text: &str) -> Option<String> {
    if !text.contains("://") {
        return None;
    }
    let b = text.as_bytes();
    let mut out = String::new();
    let mut copied = 0;
    let mut from = 0;
    let mut word = Word {
        end: 0,
        last_at: None,
    };
    let mut next_at: Option<usize> = None;
    let mut at_searched = 0;
    while let Some(rel) = text[from..].find("://") {
        let sep = from + rel;
        let start = sep + 3;
        from = start;
        if sep == 0 || !is_scheme_byte(b[sep - 1]) {
            continue;
        }
        if start > word.end {
            let end = text[start..]
                .find(char::is_whitespace)
                .map_or(text.len(), |p| start + p);
            word = Word {
                end,
                last_at: text[start..end].rfind('@').map(|p| start + p),
            };
        }
        if next_at.is_none_or(|p| p < start) && at_searched <= start {
            next_at = text[start..].find('@').map(|p| start + p);
            at_searched = next_at.map_or(text.len() + 1, |p| p + 1);
        }
        if let Some(end) = userinfo_end(text, start, &word, next_at.filter(|&p| p >= start)) {
            if end > start && &text[start..end] != REDACTED {
                out.push_str(&text[copied..start]);
                out.push_str(REDACTED);
                copied = end;
                from = end;
            }
        }
    }
    if copied == 0 {
        return None;
    }
    out.push_str(&text[copied..]);
    Some(out)
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')
}

/// What may precede a name for it to count as one (start, space, quote, query/JSON syntax,
/// a `--flag=` before it).
fn is_boundary(b: u8) -> bool {
    b.is_ascii_whitespace()
        || matches!(
            b,
            b'"' | b'\'' | b'?' | b'&' | b';' | b',' | b'{' | b'(' | b'[' | b'='
        )
}

/// `name=value` (query strings, `key=value` connection strings) and `"name": "value"` /
/// `Name: value` (JSON, YAML, headers) inside `text`, where `name` says secret: the value
/// becomes `[REDACTED]`. `None` when nothing changed.
pub fn redact_inline_secrets(text: &str) -> Option<String> {
    let b = text.as_bytes();
    let mut out = String::new();
    let mut copied = 0;
    let mut i = 0;
    while i < b.len() {
        let sep = b[i];
        if sep != b'=' && sep != b':' {
            i += 1;
            continue;
        }
        // The name: a run of name bytes before the separator, perhaps inside quotes.
        let mut j = i;
        let quoted = j > 0 && matches!(b[j - 1], b'"' | b'\'');
        if quoted {
            j -= 1;
        }
        let name_end = j;
        while j > 0 && is_name_byte(b[j - 1]) {
            j -= 1;
        }
        let name_start = j;
        if quoted && j > 0 && b[j - 1] == b[name_end] {
            j -= 1;
        }
        let ok_start = j == 0 || is_boundary(b[j - 1]);
        // `name:value` counts only as `"name":…` or `Name: value` (not `host:port`, `a:b`).
        let colon_ok = sep == b'=' || quoted || b.get(i + 1).is_some_and(u8::is_ascii_whitespace);
        if name_start == name_end
            || !ok_start
            || !colon_ok
            || !is_sensitive(&text[name_start..name_end])
        {
            i += 1;
            continue;
        }
        let mut v = i + 1;
        if sep == b':' {
            while v < b.len() && b[v] == b' ' {
                v += 1;
            }
        }
        let quote = b.get(v).copied().filter(|q| matches!(q, b'"' | b'\''));
        if quote.is_some() {
            v += 1;
        }
        let ends: &[u8] = match (quote, sep) {
            (Some(b'"'), _) => b"\"",
            (Some(_), _) => b"'",
            (None, b'=') => b" \t\n&;,})\"'",
            (None, _) => b"\n&;,}\"'",
        };
        let v_end = b[v.min(b.len())..]
            .iter()
            .position(|c| ends.contains(c))
            .map_or(b.len(), |p| v + p);
        let value = text.get(v..v_end).unwrap_or("");
        if value.is_empty() || value == REDACTED {
            i = v_end.max(i + 1);
            continue;
        }
        out.push_str(&text[copied..v]);
        out.push_str(REDACTED);
        copied = v_end;
        i = v_end.max(i + 1);
    }
    if copied == 0 {
        return None;
    }
    out.push_str(&text[copied..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(t: &str) -> String {
        redact_url_credentials(t).unwrap_or_else(|| t.to_string())
    }

    #[test]
    fn userinfo_with_reserved_characters() {
        let r = "https://[REDACTED]@github.com/x";
        for t in [
            "https://user:S8#frag@github.com/x",
            "https://user:p?q@github.com/x",
            "https://user:p/q@github.com/x",
            "https://user:p@q@github.com/x",
            "https://user:p q@github.com/x",
            "https://tok#x@github.com/x",
            "https://user:12#34@github.com/x",
            "https://t@github.com/x",
        ] {
            assert_eq!(url(t), r, "{t}");
            assert_eq!(url(r), r);
        }
        assert_eq!(url("https://u:pw/x"), "https://[REDACTED]/x");
        assert_eq!(
            url("DB=postgres://user:p@ss w0rd@db:5432/app x"),
            "DB=postgres://[REDACTED]@db:5432/app x"
        );
        assert_eq!(
            url("https://u:t@github.com/x.git && mail me@x.com"),
            "https://[REDACTED]@github.com/x.git && mail me@x.com"
        );
        assert_eq!(
            url("redis://:pw@redis:6379/0"),
            "redis://[REDACTED]@redis:6379/0"
        );
        for keep in [
            "https://github.com/x@y",
            "https://medium.com/@user.name/post",
            "postgres://db:5432/app",
            "http://localhost:8080/a@b.c",
            "git@github.com:x/y",
            "file:///tmp/x@y",
            "https://[::1]:443/x",
        ] {
            assert_eq!(redact_url_credentials(keep), None, "{keep}");
        }
    }

    #[test]
    fn inline_pairs() {
        let t = |s: &str| redact_inline_secrets(s).unwrap_or_else(|| s.to_string());
        assert_eq!(
            t("https://h/x?access_token=abc&page=2"),
            "https://h/x?access_token=[REDACTED]&page=2"
        );
        assert_eq!(
            t("host=db password=abc user=x"),
            "host=db password=[REDACTED] user=x"
        );
        assert_eq!(
            t(r#"{"password":"a b","user":"x"}"#),
            r#"{"password":"[REDACTED]","user":"x"}"#
        );
        assert_eq!(t("Authorization: Bearer abc"), "Authorization: [REDACTED]");
        assert_eq!(
            t("User.create!(password: 'x y')"),
            "User.create!(password: '[REDACTED]')"
        );
        for keep in [
            "keycloak:8080",
            "/data/key-store:/keys",
            "a=b",
            "page=2&x=1",
        ] {
            assert_eq!(redact_inline_secrets(keep), None, "{keep}");
        }
    }
}
