//! `serve`: a read-only HTTP API and web page over the store (issue 8).
//!
//! A small HTTP/1.1 server on `std::net`, without an async runtime or an HTTP crate. One thread
//! accepts connections and admits each one only under two caps, connections per client address
//! and in all (past either it answers 503 at once and closes, spending no thread on it); every
//! admitted connection gets a small thread of its own that reads its request heads (one deadline
//! for a whole head) and checks `Host`/`Origin`; only complete, checked requests reach the fixed
//! pool of `--threads` workers, through a bounded queue (full: 503). So slow clients cannot
//! starve the handlers. Server-sent event streams get a thread each, outside the pool, up to a
//! cap. Nothing here is reachable from the trigger path: `hook` never parses the command line
//! that would select `serve`.
//!
//! - [`http`]: request parsing, response writing
//! - [`conn`]: one connection: head deadline, checks, hand-off to the workers
//! - [`guard`]: the Host/Origin rules (DNS rebinding) and the per-peer cap
//! - [`api`]: routes, parameters → [`crate::query::list::ListQuery`]
//! - [`facets`]: `/api/facets` and `/api/activity` (counts over the index)
//! - [`stream`]: `GET /api/events/stream`
//! - [`token`]: the bearer token file
//! - [`cache`]: decoded sealed segments for the events of a page
//! - [`reader`]: the one long-lived index reader and its catch-up thread

pub mod api;
pub mod cache;
pub mod conn;
pub mod facets;
pub mod guard;
pub mod http;
pub mod reader;
pub mod releases;
pub mod stream;
pub mod token;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::sync_channel;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{HttpError, Request, Response};

use crate::clock::Clock;
use crate::store::{Ownership, Store, StoreOptions};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A non-loopback address without token authentication.
    #[error(
        "refusing to listen on {0} without a token: only loopback addresses may use --no-auth"
    )]
    NoAuthOnPublicAddress(SocketAddr),
    /// Binding failed.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The token file could not be read or written.
    #[error("token: {0}")]
    Token(String),
    /// The store cannot be read.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// Starting a thread failed.
    #[error("cannot start a thread: {0}")]
    Thread(std::io::Error),
}

/// How to serve.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Where to listen.
    pub listen: SocketAddr,
    /// Serve the API without a token (loopback addresses only).
    pub no_auth: bool,
    /// Worker threads for requests.
    pub threads: usize,
    /// Connections waiting for a worker before new ones get a 503.
    pub queue: usize,
    /// Concurrent event streams.
    pub max_streams: usize,
    /// Open connections from one client address (event streams not counted).
    pub max_per_peer: usize,
    /// Open connections in all (event streams not counted).
    pub max_connections: usize,
    /// How long one request head may take to arrive in full (also the keep-alive idle time).
    pub head_deadline: Duration,
    /// Host names besides the loopback ones and the bound address that requests may carry in
    /// `Host` (a reverse proxy's), checked with [`guard::normalize_allowed`].
    pub allow_hosts: Vec<String>,
}

impl ServeOptions {
    /// Defaults for an address.
    pub fn new(listen: SocketAddr) -> ServeOptions {
        ServeOptions {
            listen,
            no_auth: false,
            threads: 16,
            queue: 256,
            max_streams: 64,
            max_per_peer: 32,
            max_connections: 1024,
            head_deadline: conn::HEAD_DEADLINE,
            allow_hosts: Vec::new(),
        }
    }
}

/// How long a response write may block.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// What every handler shares.
pub struct Shared {
    /// The data directory.
    pub data_dir: PathBuf,
    store_options: StoreOptions,
    /// "Now", for relative times.
    pub clock: Clock,
    auth: bool,
    hosts: guard::HostPolicy,
    streams: AtomicUsize,
    max_streams: usize,
    head_deadline: Duration,
    stop: AtomicBool,
    /// Decoded sealed segments, for the events of a page.
    pub cache: cache::SegmentCache,
    /// The index reader every request shares.
    pub index: reader::LiveIndex,
}

impl Shared {
    /// The store (a cheap handle: paths and options).
    pub fn store(&self) -> Store {
        Store::new(
            &self.data_dir,
            self.store_options.clone(),
            Ownership::from_env(),
        )
    }

    /// Checks the bearer token (the Authorization header; never a cookie: a browser would send
    /// one to every other port of the host too).
    pub fn authorize(&self, req: &Request) -> Result<(), HttpError> {
        if !self.auth {
            return Ok(());
        }
        let Some(given) = token::presented(req.header("authorization")) else {
            return Err(HttpError::new(
                401,
                "missing bearer token (Authorization: Bearer <token from the serve-token file>)",
            ));
        };
        let expected = match token::read(&self.data_dir) {
            Ok(Some(t)) => t,
            Ok(None) => return Err(HttpError::new(503, "no token file: restart serve")),
            Err(e) => return Err(HttpError::new(503, e.to_string())),
        };
        if token::constant_time_eq(given.as_bytes(), expected.as_bytes()) {
            Ok(())
        } else {
            Err(HttpError::new(401, "wrong bearer token"))
        }
    }

    /// A 500 for a failure of the server's side (logged on stderr).
    pub fn internal(&self, message: &str) -> HttpError {
        eprintln!("dokku-audit serve: error: {message}");
        HttpError::new(500, format!("internal error: {message}"))
    }

    /// The server is shutting down.
    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

/// A bound server, not yet serving.
pub struct Server {
    listener: TcpListener,
    shared: Arc<Shared>,
    opts: ServeOptions,
}

impl Server {
    /// Checks the options, creates the token file if needed, binds.
    pub fn bind(
        opts: ServeOptions,
        data_dir: PathBuf,
        store_options: StoreOptions,
        clock: Clock,
    ) -> Result<Server, ServeError> {
        if opts.no_auth && !opts.listen.ip().is_loopback() {
            return Err(ServeError::NoAuthOnPublicAddress(opts.listen));
        }
        let shared = Shared {
            store_options,
            clock,
            auth: !opts.no_auth,
            hosts: guard::HostPolicy::new(opts.listen, &opts.allow_hosts),
            streams: AtomicUsize::new(0),
            max_streams: opts.max_streams,
            head_deadline: opts.head_deadline,
            stop: AtomicBool::new(false),
            cache: cache::SegmentCache::default(),
            index: reader::LiveIndex::new(&data_dir),
            data_dir,
        };
        shared.store().check_readable()?;
        if shared.auth {
            token::load_or_create(&shared.data_dir)?;
        }
        let listener = TcpListener::bind(opts.listen).map_err(|source| ServeError::Bind {
            addr: opts.listen,
            source,
        })?;
        Ok(Server {
            listener,
            shared: Arc::new(shared),
            opts,
        })
    }

    /// The address actually bound (port 0 picks one).
    pub fn local_addr(&self) -> Result<SocketAddr, ServeError> {
        self.listener
            .local_addr()
            .map_err(|source| ServeError::Bind {
                addr: self.opts.listen,
                source,
            })
    }

    /// Serves until the process ends.
    pub fn run(self) -> Result<(), ServeError> {
        let catch_up = Arc::clone(&self.shared);
        std::thread::Builder::new()
            .name("serve-index".into())
            .spawn(move || {
                let store = catch_up.store();
                // A panic in the catch-up (a bug, or tantivy's) must not leave requests waiting
                // for a first snapshot nor stop catching up: report it and start over.
                while !catch_up.stopping() {
                    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        catch_up.index.run_catch_up(&store, &|| catch_up.stopping())
                    }));
                    if run.is_ok() {
                        break;
                    }
                    eprintln!("dokku-audit serve: error: the index catch-up failed; retrying");
                    catch_up.index.after_panic();
                    std::thread::sleep(reader::IDLE_CHECK);
                }
            })
            .map_err(ServeError::Thread)?;
        let (jobs, rx) = sync_channel::<conn::Job>(self.opts.queue.max(1));
        let rx: conn::JobQueue = Arc::new(Mutex::new(rx));
        for i in 0..self.opts.threads.max(1) {
            let rx = Arc::clone(&rx);
            let shared = Arc::clone(&self.shared);
            std::thread::Builder::new()
                .name(format!("serve-{i}"))
                .spawn(move || conn::worker(&shared, &rx))
                .map_err(ServeError::Thread)?;
        }
        let peers = Arc::new(guard::Peers::new(
            self.opts.max_per_peer,
            self.opts.max_connections,
        ));
        for accepted in self.listener.incoming() {
            let Ok(stream) = accepted else {
                // EMFILE and the like: back off a little instead of spinning.
                std::thread::sleep(Duration::from_millis(10));
                continue;
            };
            let Ok(peer) = stream.peer_addr() else {
                continue;
            };
            let admitted = match peers.admit(peer.ip()) {
                Ok(a) => a,
                Err(guard::Refused::PerPeer) => {
                    conn::turn_away(stream, "too many connections from your address: try again");
                    continue;
                }
                Err(guard::Refused::Total) => {
                    conn::turn_away(stream, "server busy: try again");
                    continue;
                }
            };
            let shared = Arc::clone(&self.shared);
            let jobs = jobs.clone();
            let spawned = std::thread::Builder::new()
                .name("serve-conn".into())
                .stack_size(conn::CONNECTION_STACK)
                .spawn(move || conn::serve(&shared, &jobs, stream, admitted));
            if let Err(e) = spawned {
                // The socket went with the closure: the client sees a close.
                eprintln!("dokku-audit serve: error: cannot start a connection thread: {e}");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        Ok(())
    }
}

/// Checks a stream request and hands the connection to a thread of its own.
fn start_stream(shared: &Arc<Shared>, req: &Request, mut conn: TcpStream) {
    let fail = |conn: &mut TcpStream, e: HttpError| {
        let _ = http::write_response(conn, &e.response(), false, false);
    };
    if let Err(e) = shared.authorize(req) {
        return fail(&mut conn, e);
    }
    let n = shared.streams.fetch_add(1, Ordering::SeqCst);
    if n >= shared.max_streams {
        shared.streams.fetch_sub(1, Ordering::SeqCst);
        return fail(
            &mut conn,
            HttpError::new(503, "too many event streams open: try again later"),
        );
    }
    let s = Arc::clone(shared);
    let req = req.clone();
    // Where the stream starts is looked up on the stream's thread (it reads the store; the
    // connection thread has a small stack).
    let spawned = std::thread::Builder::new()
        .name("serve-stream".into())
        .spawn(move || {
            let _ =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(
                    || match stream::start_after(&s, &req) {
                        Err(e) => fail(&mut conn, e),
                        Ok(_) if req.method == "HEAD" => {
                            let resp = Response::bytes(
                                200,
                                "text/event-stream; charset=utf-8",
                                Vec::new(),
                            );
                            let _ = http::write_response(&mut conn, &resp, true, false);
                        }
                        Ok(start) => stream::run(&s, conn, start),
                    },
                ));
            s.streams.fetch_sub(1, Ordering::SeqCst);
        });
    if spawned.is_err() {
        shared.streams.fetch_sub(1, Ordering::SeqCst);
    }
}
