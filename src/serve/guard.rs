//! Who may talk to the server.
//!
//! - **Host** (DNS rebinding): a page on `http://rebind.example:8787`, whose name an attacker
//!   points at 127.0.0.1, is same-origin with the server in the browser's eyes; only the `Host`
//!   header tells the two apart. A request is answered only when its `Host` names this server:
//!   a loopback name (`localhost`, `127.x.x.x`, `[::1]`), the address it was bound to or the
//!   connection arrived on, or a name given with `--allow-host` (a reverse proxy's); any port.
//!   Anything else is a 421. An HTTP/1.1 request without `Host` is a 400 (RFC 9112 §3.2); an
//!   HTTP/1.0 one is taken as meant for this server.
//! - **Origin**: an `/api/` request that carries an `Origin` other than the server's own (an
//!   allowed host as above, and for a loopback or literal host, the server's port) is a 403,
//!   whatever the method. Browsers send no `Origin` on the page's own GETs; they send one on
//!   every cross-origin `fetch`.
//! - **Per-peer cap**: [`Peers`] counts the open connections of each client address and of the
//!   whole server; the acceptor refuses one over either cap at once (503), before any thread is
//!   spent on it.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};

use super::http::{HttpError, Request};

/// Which `Host` and `Origin` values name this server.
#[derive(Debug, Clone)]
pub struct HostPolicy {
    /// `--allow-host` names, lower case.
    allowed: Vec<String>,
    /// The address given to `--listen`.
    listen: SocketAddr,
}

/// A `--allow-host` value, checked and lower-cased: a DNS name (letters, digits, `-`, `.`, `_`),
/// an IPv4 address or a bracketed IPv6 address, without a port.
pub fn normalize_allowed(name: &str) -> Result<String, String> {
    let lower = name.trim().trim_end_matches('.').to_ascii_lowercase();
    let ok = if let Some(inner) = lower.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        inner.parse::<Ipv6Addr>().is_ok()
    } else {
        !lower.is_empty()
            && lower.len() <= 253
            && lower
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
    };
    if ok {
        Ok(lower)
    } else {
        Err(format!(
            "--allow-host takes a host name or address without a port, not {name:?}"
        ))
    }
}

/// A `host[:port]` split in two; `None` when it is not one.
fn split_host_port(s: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if s.starts_with('[') {
        let end = s.find(']')?;
        let (h, rest) = s.split_at(end + 1);
        match rest {
            "" => (h, None),
            _ => (h, Some(rest.strip_prefix(':')?)),
        }
    } else {
        match s.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    let port = match port {
        None => None,
        Some(p) if !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => {
            Some(p.parse().ok()?)
        }
        Some(_) => return None,
    };
    (!host.is_empty()).then_some((host, port))
}

/// The address a host literal spells (`127.0.0.1`, `[::1]`), if it is one.
fn literal(host: &str) -> Option<IpAddr> {
    match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6.parse::<Ipv6Addr>().ok().map(IpAddr::V6),
        None => host.parse::<Ipv4Addr>().ok().map(IpAddr::V4),
    }
}

/// How a host matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Match {
    /// A loopback name or address, or this server's address: same machine, so same port.
    Local,
    /// A `--allow-host` name: a proxy in front, any port.
    Allowed,
}

impl HostPolicy {
    /// The policy for a server listening on `listen` with these `--allow-host` names (already
    /// checked by [`normalize_allowed`]).
    pub fn new(listen: SocketAddr, allowed: &[String]) -> HostPolicy {
        HostPolicy {
            allowed: allowed.to_vec(),
            listen,
        }
    }

    fn classify(&self, host: &str, local: Option<IpAddr>) -> Option<Match> {
        let lower = host.to_ascii_lowercase();
        let name = lower.strip_suffix('.').unwrap_or(&lower);
        if self.allowed.iter().any(|a| a == name) {
            return Some(Match::Allowed);
        }
        if name == "localhost" {
            return Some(Match::Local);
        }
        let ip = literal(name)?;
        let ip = canonical(ip);
        let bound = Some(canonical(self.listen.ip())).filter(|b| !b.is_unspecified());
        let here = ip.is_loopback() || Some(ip) == bound || Some(ip) == local.map(canonical);
        here.then_some(Match::Local)
    }

    /// Whether a `Host` value names this server (`local`: the address the connection arrived
    /// on).
    pub fn host_allowed(&self, value: &str, local: Option<IpAddr>) -> bool {
        split_host_port(value).is_some_and(|(host, _)| self.classify(host, local).is_some())
    }

    /// Whether an `Origin` value is this server's own: `http(s)://` an allowed host, and for a
    /// loopback or literal host the port the connection arrived on.
    pub fn origin_allowed(&self, value: &str, local: Option<SocketAddr>) -> bool {
        let Some((scheme, rest)) = value.split_once("://") else {
            return false;
        };
        let default_port = match scheme.to_ascii_lowercase().as_str() {
            "http" => 80,
            "https" => 443,
            _ => return false,
        };
        let Some((host, port)) = split_host_port(rest) else {
            return false;
        };
        match self.classify(host, local.map(|a| a.ip())) {
            Some(Match::Allowed) => true,
            Some(Match::Local) => local.is_some_and(|a| port.unwrap_or(default_port) == a.port()),
            None => false,
        }
    }

    /// The Host and Origin rules of the module documentation for one request.
    pub fn check(&self, req: &Request, local: Option<SocketAddr>) -> Result<(), HttpError> {
        match req.header("host") {
            None if req.http11 => return Err(HttpError::bad("missing Host header")),
            None => {}
            Some(h) if self.host_allowed(h, local.map(|a| a.ip())) => {}
            Some(_) => {
                return Err(HttpError::new(
                    421,
                    "this server does not answer for that Host (see serve --allow-host)",
                ))
            }
        }
        if req.path.starts_with("/api/") {
            if let Some(origin) = req.header("origin") {
                if !self.origin_allowed(origin, local) {
                    return Err(HttpError::new(403, "cross-origin requests are refused"));
                }
            }
        }
        Ok(())
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:127.0.0.1`) as the IPv4 address they are.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// Open connections per client address and in all, with their caps.
#[derive(Debug)]
pub struct Peers {
    per_peer: usize,
    total: usize,
    open: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

/// Why a connection was refused by [`Peers::admit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// This address has its share open already.
    PerPeer,
    /// The server has its cap open already.
    Total,
}

/// One admitted connection; it leaves the counts when dropped.
#[derive(Debug)]
pub struct Admitted {
    peers: Arc<Peers>,
    ip: IpAddr,
}

impl Peers {
    /// Caps: connections per client address, connections in all.
    pub fn new(per_peer: usize, total: usize) -> Peers {
        Peers {
            per_peer: per_peer.max(1),
            total: total.max(1),
            open: Mutex::new((0, HashMap::new())),
        }
    }

    /// Counts a new connection from `ip`, or says which cap it would pass.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Admitted, Refused> {
        let ip = canonical(ip);
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if open.0 >= self.total {
            return Err(Refused::Total);
        }
        let n = open.1.entry(ip).or_insert(0);
        if *n >= self.per_peer {
            return Err(Refused::PerPeer);
        }
        *n += 1;
        open.0 += 1;
        Ok(Admitted {
            peers: Arc::clone(self),
            ip,
        })
    }

    /// Open connections from `ip` (for tests and diagnostics).
    pub fn open_from(&self, ip: IpAddr) -> usize {
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.1.get(&canonical(ip)).copied().unwrap_or(0)
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut open = self
            .peers
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        open.0 = open.0.saturating_sub(1);
        if let Some(n) = open.1.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.1.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allowed: &[&str]) -> HostPolicy {
        let allowed: Vec<String> = allowed.iter().map(|s| s.to_string()).collect();
        HostPolicy::new("127.0.0.1:8787".parse().unwrap(), &allowed)
    }

    #[test]
    fn hosts() {
        let p = policy(&["audit.example.com"]);
        let local = Some("10.1.2.3".parse().unwrap());
        for ok in [
            "localhost",
            "LOCALHOST:8787",
            "localhost.:1",
            "127.0.0.1",
            "127.0.0.1:8787",
            "127.9.8.7:80",
            "[::1]",
            "[::1]:8787",
            "[::ffff:127.0.0.1]:8787",
            "audit.example.com",
            "Audit.Example.COM:443",
            "10.1.2.3:8787",
        ] {
            assert!(p.host_allowed(ok, local), "{ok}");
        }
        for bad in [
            "rebind.test",
            "rebind.test:8787",
            "localhost.evil.com",
            "evil.localhost",
            "127.0.0.1.nip.io",
            "10.1.2.4",
            "[::2]:8787",
            "",
            ":8787",
            "localhost:",
            "localhost:99999",
            "localhost:80:80",
            "[::1",
            "[::1]x",
            "user@localhost",
            "0.0.0.0",
            "127.1",
        ] {
            assert!(!p.host_allowed(bad, local), "{bad}");
        }
    }

    #[test]
    fn origins() {
        let p = policy(&["audit.example.com"]);
        let local = Some("127.0.0.1:8787".parse().unwrap());
        for ok in [
            "http://127.0.0.1:8787",
            "http://localhost:8787",
            "http://[::1]:8787",
            "https://audit.example.com",
            "https://audit.example.com:8443",
        ] {
            assert!(p.origin_allowed(ok, local), "{ok}");
        }
        for bad in [
            "null",
            "http://rebind.test:8787",
            "http://localhost:3000",
            "http://127.0.0.1",
            "ftp://localhost:8787",
            "http://evil.com",
            "",
        ] {
            assert!(!p.origin_allowed(bad, local), "{bad}");
        }
    }

    #[test]
    fn allow_host_values() {
        assert_eq!(
            normalize_allowed("Audit.Example.com.").unwrap(),
            "audit.example.com"
        );
        assert_eq!(normalize_allowed("[::1]").unwrap(), "[::1]");
        for bad in ["", "a.com:443", "*.example.com", "a b", "[zz]", "http://a"] {
            assert!(normalize_allowed(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn peers_are_capped_and_released() {
        let peers = Arc::new(Peers::new(2, 3));
        let a: IpAddr = "127.0.0.2".parse().unwrap();
        let b: IpAddr = "::ffff:127.0.0.3".parse().unwrap();
        let a1 = peers.admit(a).unwrap();
        let _a2 = peers.admit(a).unwrap();
        assert_eq!(peers.admit(a).unwrap_err(), Refused::PerPeer);
        let _b1 = peers.admit(b).unwrap();
        assert_eq!(
            peers.admit("127.0.0.4".parse().unwrap()).unwrap_err(),
            Refused::Total
        );
        drop(a1);
        assert_eq!(peers.open_from(a), 1);
        assert_eq!(peers.open_from("127.0.0.3".parse().unwrap()), 1);
        peers.admit(a).unwrap();
    }
}
