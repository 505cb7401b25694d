//! The word-level pass every stored command line goes through: flags whose name says secret,
//! `K=V` pairs, the value flags of docker (`-e`, `--build-arg`) and of the datastore plugins
//! (`-p`, `-r`, `-c`, `-C`), client passwords of database tools (`mysql -pX`, `redis-cli -a X`),
//! and command lines inside an argument (`bash -c '…'`, `"-e 'K=a b'"`), which are split as a
//! shell would and redacted the same way. Hand-written scanning, no regex: this runs on every
//! trigger.

use std::borrow::Cow;

use super::names::{self, Tool};
use super::REDACTED;

/// How deep command lines nest inside arguments before the rest is redacted whole.
const MAX_DEPTH: u8 = 4;

/// What kind of command line the words are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Dokku arguments: a `K=V` is redacted when its key says secret.
    Plain,
    /// A command that runs (`run`, `enter`, a shell script): every `K=V` is an assignment and
    /// its value is redacted.
    Command,
}

/// The pass's settings.
#[derive(Debug, Clone, Copy)]
pub struct Ctx {
    /// Plain or command words.
    pub mode: Mode,
    /// A datastore plugin's `:create`/`:clone`/`:upgrade`: `-p`, `-r`, `-c`, `-C` take secrets.
    pub service: bool,
    /// Nesting depth.
    pub depth: u8,
}

/// What the next word is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    Nothing,
    /// A secret: redacted whole.
    Secret,
    /// `K=V`: the value is redacted.
    EnvPair,
    /// `K=V;K2=V2`.
    CustomEnv,
    /// A shell script.
    Script,
    /// `user:password`.
    UserPass,
}

/// Shell operators: they end a word and are kept as they are.
fn is_operator(c: u8) -> bool {
    matches!(c, b';' | b'&' | b'|' | b'<' | b'>' | b'(' | b')')
}

/// Byte ranges of the shell words of `text`: quotes group, a backslash escapes the next
/// character, an unclosed quote runs to the end, operators (`;`, `&&`, `|`, …) separate.
pub fn split_words(text: &str) -> Vec<(usize, usize)> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i].is_ascii_whitespace() || is_operator(b[i])) {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let start = i;
        let mut quote: Option<u8> = None;
        while i < b.len() {
            let c = b[i];
            match quote {
                Some(q) if c == q => quote = None,
                Some(b'"') if c == b'\\' => i += 1,
                Some(_) => {}
                None if c.is_ascii_whitespace() || is_operator(c) => break,
                None if c == b'\'' || c == b'"' => quote = Some(c),
                None if c == b'\\' => i += 1,
                None => {}
            }
            i += 1;
        }
        // A backslash before a multi-byte character leaves `i` inside it; the word then runs
        // on to ASCII whitespace or the end, both character boundaries.
        out.push((start, i.min(b.len())));
    }
    out
}

/// A word without its quotes and backslashes, as the program it is passed to sees it.
pub fn unquote(w: &str) -> Cow<'_, str> {
    if !w.contains(['\'', '"', '\\']) {
        return Cow::Borrowed(w);
    }
    let mut out = String::with_capacity(w.len());
    let mut quote: Option<char> = None;
    let mut chars = w.chars();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) if c == q => quote = None,
            Some('"') | None if c == '\\' => out.extend(chars.next()),
            Some(_) => out.push(c),
            None if c == '\'' || c == '"' => quote = Some(c),
            None => out.push(c),
        }
    }
    Cow::Owned(out)
}

fn secret(u: &str) -> Option<String> {
    (u != REDACTED).then(|| REDACTED.to_string())
}

/// `K=V` → `K=[REDACTED]` (a bare `K` passes the caller's value through: kept).
fn env_pair(u: &str) -> Option<String> {
    let (k, v) = u.split_once('=')?;
    (!v.is_empty() && v != REDACTED).then(|| format!("{k}={REDACTED}"))
}

/// `K=V;K2=V2` → `K=[REDACTED];K2=[REDACTED]`; a part without `=` (a value holding `;`) too.
fn custom_env(u: &str) -> Option<String> {
    let out: Vec<String> = u
        .split(';')
        .map(|part| match part.split_once('=') {
            _ if part.is_empty() => String::new(),
            Some((k, _)) => format!("{k}={REDACTED}"),
            None => REDACTED.to_string(),
        })
        .collect();
    let out = out.join(";");
    (out != u).then_some(out)
}

/// `user:password` → `user:[REDACTED]` (a bare user makes the client prompt: kept).
fn user_pass(u: &str) -> Option<String> {
    let (user, p) = u.split_once(':')?;
    (!p.is_empty() && p != REDACTED).then(|| format!("{user}:{REDACTED}"))
}

/// `-pSECRET` → `-p[REDACTED]`.
fn attached(u: &str) -> Option<String> {
    let v = u.get(2..)?;
    (!v.is_empty() && v != REDACTED).then(|| format!("{}{REDACTED}", &u[..2]))
}

/// Redacts the words of `text` (a command line inside an argument), keeping its spacing.
pub fn redact_text(text: &str, ctx: Ctx) -> Option<String> {
    let spans = split_words(text);
    let words: Vec<&str> = spans.iter().map(|&(s, e)| &text[s..e]).collect();
    let reps = redact_words(&words, ctx);
    if reps.iter().all(Option::is_none) {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (&(s, e), r) in spans.iter().zip(reps) {
        if let Some(r) = r {
            out.push_str(&text[last..s]);
            out.push_str(&r);
            last = e;
        }
    }
    out.push_str(&text[last..]);
    Some(out)
}

/// Redacts a list of words (whole arguments, or shell words with their quotes): one
/// replacement per word, `None` where it stays.
pub fn redact_words(words: &[&str], ctx: Ctx) -> Vec<Option<String>> {
    let mut st = State {
        ctx,
        next: Next::Nothing,
        tool: None,
        secret_after: None,
    };
    words.iter().map(|w| st.word(w)).collect()
}

/// A token that opens a quote it does not close (`'DB_PASS=a`, `K='a`): a command line that
/// reached `user-auth` as one argument and was split on spaces.
fn opens_quote(t: &str) -> Option<u8> {
    let b = t.as_bytes();
    let at = match b.first() {
        Some(b'\'' | b'"') => 0,
        _ => t.find('=')? + 1,
    };
    let q = *b.get(at).filter(|q| matches!(q, b'\'' | b'"'))?;
    (!b[at + 1..].contains(&q)).then_some(q)
}

/// Redacts argv tokens in place, one token per token. Tokens split inside quotes are taken as
/// one word; when that word changes, its first token holds the replacement (when that is one
/// plain word such as `K=[REDACTED]`, else `[REDACTED]`) and the others become `[REDACTED]`.
pub fn redact_tokens(tokens: &mut [String], ctx: Ctx) {
    let mut groups = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let mut end = i + 1;
        if let Some(q) = opens_quote(&tokens[i]) {
            while end < tokens.len() && !tokens[end].as_bytes().contains(&q) {
                end += 1;
            }
            end = (end + 1).min(tokens.len());
        }
        groups.push((i, end));
        i = end;
    }
    let reps = {
        let joined: Vec<Cow<str>> = groups
            .iter()
            .map(|&(s, e)| match e - s {
                1 => Cow::Borrowed(tokens[s].as_str()),
                _ => Cow::Owned(tokens[s..e].join(" ")),
            })
            .collect();
        let words: Vec<&str> = joined.iter().map(Cow::as_ref).collect();
        redact_words(&words, ctx)
    };
    for ((s, e), r) in groups.into_iter().zip(reps) {
        if let Some(r) = r {
            // A replacement that is one plain word (`K=[REDACTED]`) reads the same alone;
            // anything else could read differently on a second pass.
            let plain = !r.contains(|c: char| c.is_whitespace() || c == '\'' || c == '"');
            tokens[s] = if e - s == 1 || plain {
                r
            } else {
                REDACTED.to_string()
            };
            for t in &mut tokens[s + 1..e] {
                *t = REDACTED.to_string();
            }
        }
    }
}

struct State {
    ctx: Ctx,
    next: Next,
    tool: Option<Tool>,
    /// Positional words to let pass before the next one is a secret.
    secret_after: Option<u8>,
}

impl State {
    fn word(&mut self, raw: &str) -> Option<String> {
        let u = unquote(raw);
        let u = u.as_ref();
        let next = std::mem::replace(&mut self.next, Next::Nothing);
        if next != Next::Nothing && (next == Next::Script || !u.starts_with("--")) {
            return self.value(next, raw, u);
        }
        // One flag (`--password=a b`), or an argument holding several (`-e K=V --link db`); a
        // secret flag's value is never split.
        if u.len() > 1 && u.starts_with('-') && u != "--" {
            let flag_name = u.split('=').next().unwrap_or(u);
            let several = flag_name.contains(char::is_whitespace)
                || (u.contains(" -") && !names::is_secret_flag(flag_name));
            if !several {
                return self.flag(u);
            }
        }
        if let Some(n) = self.secret_after {
            self.secret_after = n.checked_sub(1);
            if n == 0 {
                return secret(u);
            }
        }
        if let Some((k, _)) = u.split_once('=') {
            if names::is_key(k)
                && (self.ctx.mode == Mode::Command || names::is_sensitive(k))
                && !u.starts_with("--")
            {
                return env_pair(u);
            }
        }
        // `a;B=x` is two commands in a script; `?a=1&b=2` stays one word.
        let command = self.ctx.mode == Mode::Command;
        if u.contains(char::is_whitespace) || (command && u.contains([';', '|'])) {
            return self.nested(raw, u, self.ctx.mode);
        }
        if matches!(u, "export" | "declare" | "typeset" | "readonly" | "local") {
            self.ctx.mode = Mode::Command;
        }
        if u.eq_ignore_ascii_case("bearer") || u.eq_ignore_ascii_case("basic") {
            self.next = Next::Secret;
        }
        if let Some(t) = names::tool(u) {
            self.tool = Some(t);
        }
        if self.tool == Some(Tool::Rabbit)
            && matches!(u, "add_user" | "change_password" | "authenticate_user")
        {
            self.secret_after = Some(1);
        }
        None
    }

    fn value(&mut self, next: Next, raw: &str, u: &str) -> Option<String> {
        match next {
            Next::Nothing => None,
            Next::Secret => secret(u),
            Next::EnvPair => env_pair(u),
            Next::CustomEnv => custom_env(u),
            Next::UserPass => user_pass(u),
            Next::Script => self.nested(raw, u, Mode::Command),
        }
    }

    /// A command line inside a word.
    fn nested(&self, raw: &str, u: &str, mode: Mode) -> Option<String> {
        if self.ctx.depth >= MAX_DEPTH {
            return secret(u);
        }
        let ctx = Ctx {
            mode,
            service: false,
            depth: self.ctx.depth + 1,
        };
        // One quoted word (`'export K=x'`): its content is the command line. Several words
        // (an argument `-e 'K=a b' --link db`): the argument itself, quotes and all.
        let spans = split_words(raw);
        let one_word = matches!(spans.as_slice(), [(0, e)] if *e == raw.len());
        if !one_word {
            return redact_text(raw, ctx);
        }
        let inner = redact_text(u, ctx)?;
        Some(match raw.as_bytes().first() {
            Some(&q @ (b'\'' | b'"')) => {
                let q = q as char;
                format!("{q}{inner}{q}")
            }
            _ => inner,
        })
    }

    fn flag(&mut self, u: &str) -> Option<String> {
        let b = u.as_bytes();
        let long = u.starts_with("--");
        let tool = self.tool;
        // Single-dash forms with the value attached: `-eK=V`, `-pSECRET`, `-CK=V`, `-uU:P`.
        if !long && b.len() > 2 && b[1].is_ascii() {
            let rest = &u[2..];
            match b[1] {
                b'e' if rest.contains('=') => return env_pair(rest).map(|r| format!("-e{r}")),
                b'p' | b'r' | b'c' if self.ctx.service => return attached(u),
                b'C' if self.ctx.service => return custom_env(rest).map(|r| format!("-C{r}")),
                b'p' if matches!(tool, Some(Tool::Mysql | Tool::DashP)) => return attached(u),
                b'a' if tool == Some(Tool::Redis) => return attached(u),
                b'u' if tool == Some(Tool::Curl) => {
                    return user_pass(rest).map(|r| format!("-u{r}"))
                }
                _ => {}
            }
            if b[1..].iter().all(u8::is_ascii_alphabetic)
                && tool == Some(Tool::Shell)
                && u.ends_with('c')
            {
                self.next = Next::Script;
                return None;
            }
        }
        if !long
            && tool == Some(Tool::Htpasswd)
            && b[1..].iter().all(u8::is_ascii_alphabetic)
            && u.contains('b')
        {
            self.secret_after = Some(2);
            return None;
        }
        if let Some((name, value)) = u.split_once('=') {
            if names::is_env_flag(name) {
                return env_pair(value).map(|r| format!("{name}={r}"));
            }
            if names::is_custom_env_flag(name) {
                return custom_env(value).map(|r| format!("{name}={r}"));
            }
            if name == "--user" && tool == Some(Tool::Curl) {
                return user_pass(value).map(|r| format!("{name}={r}"));
            }
            return (names::is_secret_flag(name) && !value.is_empty() && value != REDACTED)
                .then(|| format!("{name}={REDACTED}"));
        }
        let service = self.ctx.service;
        self.next = if names::is_env_flag(u) {
            Next::EnvPair
        } else if names::is_custom_env_flag(u) || (service && u == "-C") {
            Next::CustomEnv
        } else if names::is_opaque_flag(u)
            || (service && matches!(u, "-p" | "-r" | "-c"))
            || (tool == Some(Tool::DashP) && u == "-p")
            || (tool == Some(Tool::Redis) && u == "-a")
        {
            Next::Secret
        } else if tool == Some(Tool::Curl) && matches!(u, "-u" | "--user" | "--proxy-user") {
            Next::UserPass
        } else if tool == Some(Tool::Shell) && u == "-c" {
            Next::Script
        } else if names::is_secret_flag(u) {
            Next::Secret
        } else {
            Next::Nothing
        };
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(t: &str, mode: Mode) -> String {
        let ctx = Ctx {
            mode,
            service: false,
            depth: 0,
        };
        redact_text(t, ctx).unwrap_or_else(|| t.to_string())
    }

    #[test]
    fn splitting_and_unquoting() {
        let t = r#"-e 'A=a b' "x \" y" z\ w 'open"#;
        let words: Vec<&str> = split_words(t).iter().map(|&(s, e)| &t[s..e]).collect();
        assert_eq!(words, [r"-e", "'A=a b'", r#""x \" y""#, r"z\ w", "'open"]);
        assert_eq!(unquote("'A=a b'"), "A=a b");
        assert_eq!(unquote(r#""x \" y""#), r#"x " y"#);
        assert_eq!(unquote("K='a b'c"), "K=a bc");
        assert_eq!(split_words("é\\é x").len(), 2);
    }

    #[test]
    fn words() {
        use Mode::*;
        let cases = [
            (
                "-e 'DB_PASS=a b' --link db",
                Plain,
                "-e DB_PASS=[REDACTED] --link db",
            ),
            (
                "--build-arg NPM_TOKEN=x",
                Plain,
                "--build-arg NPM_TOKEN=[REDACTED]",
            ),
            ("--label a=b PLAIN=1", Plain, "--label a=b PLAIN=1"),
            (
                "API_KEY=x --token y --no-auth z",
                Plain,
                "API_KEY=[REDACTED] --token [REDACTED] --no-auth z",
            ),
            ("export K=x && run", Plain, "export K=[REDACTED] && run"),
            (
                "mysql -uroot -px db",
                Command,
                "mysql -uroot -p[REDACTED] db",
            ),
            ("mysql -p db", Command, "mysql -p db"),
            (
                "redis-cli -a x ping",
                Command,
                "redis-cli -a [REDACTED] ping",
            ),
            (
                "sh -c 'export K=x; mysql -py'",
                Plain,
                "sh -c 'export K=[REDACTED]; mysql -p[REDACTED]'",
            ),
            (
                "curl -u a:b -H 'X: Bearer c'",
                Command,
                "curl -u a:[REDACTED] -H 'X: Bearer [REDACTED]'",
            ),
            (
                "rabbitmqctl add_user bob pw",
                Command,
                "rabbitmqctl add_user bob [REDACTED]",
            ),
            (
                "htpasswd -cb f bob pw",
                Command,
                "htpasswd -cb f bob [REDACTED]",
            ),
            ("ls -la FOO=bar", Command, "ls -la FOO=[REDACTED]"),
        ];
        for (t, mode, want) in cases {
            let got = text(t, mode);
            assert_eq!(got, want, "{t}");
            assert_eq!(text(&got, mode), got, "idempotent: {t}");
        }
    }

    #[test]
    fn service_flags_and_split_tokens() {
        let ctx = Ctx {
            mode: Mode::Plain,
            service: true,
            depth: 0,
        };
        let mut t: Vec<String> = [
            "svc",
            "-p",
            "a",
            "-rb",
            "-C",
            "A=1;B",
            "--password=c",
            "-i",
            "img",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        redact_tokens(&mut t, ctx);
        assert_eq!(
            t,
            [
                "svc",
                "-p",
                "[REDACTED]",
                "-r[REDACTED]",
                "-C",
                "A=[REDACTED];[REDACTED]",
                "--password=[REDACTED]",
                "-i",
                "img"
            ]
        );
        let ctx = Ctx {
            service: false,
            ..ctx
        };
        let mut t: Vec<String> = ["-e", "'DB_PASS=a", "b'", "x"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        redact_tokens(&mut t, ctx);
        assert_eq!(t, ["-e", "DB_PASS=[REDACTED]", "[REDACTED]", "x"]);
    }
}
