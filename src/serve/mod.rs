//! `serve`: a read-only HTTP API and web page over the store (issue 8).
//!
//! A small HTTP/1.1 server on `std::net`, without an async runtime or an HTTP crate: one thread
//! accepts connections and hands them to a fixed pool of worker threads through a bounded queue
//! (when it is full, the connection gets a 503 at once); server-sent event streams get a thread
//! each, outside the pool, up to a cap. Connections are kept alive only while no other
//! connection waits, so a few idle clients cannot starve the pool; every socket has read and
//! write timeouts; request heads are bounded (see [`http`]). Nothing here is reachable from the
//! trigger path: `hook` never parses the command line that would select `serve`.
//!
//! - [`http`]: request parsing, response writing
//! - [`api`]: routes, parameters → [`crate::query::list::ListQuery`]
//! - [`stream`]: `GET /api/events/stream`
//! - [`token`]: the bearer token file
//! - [`cache`]: decoded sealed segments for the events of a page

pub mod api;
pub mod cache;
pub mod http;
pub mod stream;
pub mod token;

use std::io::BufReader;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{HttpError, ReadOutcome, Request, Response};

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
        }
    }
}

/// How long a request head may take to arrive, and how long a kept-alive connection may idle.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);
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
    waiting: AtomicUsize,
    streams: AtomicUsize,
    max_streams: usize,
    stop: AtomicBool,
    /// Decoded sealed segments, for the events of a page.
    pub cache: cache::SegmentCache,
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

    /// Checks the bearer token (Authorization header, or the page's cookie).
    pub fn authorize(&self, req: &Request) -> Result<(), HttpError> {
        if !self.auth {
            return Ok(());
        }
        let Some(given) = token::presented(req.header("authorization"), req.header("cookie"))
        else {
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
            data_dir,
            store_options,
            clock,
            auth: !opts.no_auth,
            waiting: AtomicUsize::new(0),
            streams: AtomicUsize::new(0),
            max_streams: opts.max_streams,
            stop: AtomicBool::new(false),
            cache: cache::SegmentCache::default(),
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
        let (tx, rx) = sync_channel::<TcpStream>(self.opts.queue.max(1));
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..self.opts.threads.max(1) {
            let rx = Arc::clone(&rx);
            let shared = Arc::clone(&self.shared);
            std::thread::Builder::new()
                .name(format!("serve-{i}"))
                .spawn(move || worker(&shared, &rx))
                .map_err(ServeError::Thread)?;
        }
        for conn in self.listener.incoming() {
            let Ok(conn) = conn else {
                // EMFILE and the like: back off a little instead of spinning.
                std::thread::sleep(Duration::from_millis(10));
                continue;
            };
            self.shared.waiting.fetch_add(1, Ordering::SeqCst);
            match tx.try_send(conn) {
                Ok(()) => {}
                Err(TrySendError::Full(mut conn)) | Err(TrySendError::Disconnected(mut conn)) => {
                    self.shared.waiting.fetch_sub(1, Ordering::SeqCst);
                    let _ = conn.set_write_timeout(Some(Duration::from_millis(200)));
                    let busy = HttpError::new(503, "server busy: try again");
                    let _ = http::write_response(&mut conn, &busy.response(), false, false);
                }
            }
        }
        Ok(())
    }
}

fn worker(shared: &Arc<Shared>, rx: &Mutex<Receiver<TcpStream>>) {
    loop {
        let conn = match rx.lock() {
            Ok(guard) => match guard.recv() {
                Ok(c) => c,
                Err(_) => return,
            },
            Err(_) => return,
        };
        shared.waiting.fetch_sub(1, Ordering::SeqCst);
        // A bug in a handler must not take a worker away from the pool.
        let shared2 = Arc::clone(shared);
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            connection(&shared2, conn)
        }));
    }
}

/// Serves the requests of one connection.
fn connection(shared: &Arc<Shared>, conn: TcpStream) {
    let _ = conn.set_read_timeout(Some(READ_TIMEOUT));
    let _ = conn.set_write_timeout(Some(WRITE_TIMEOUT));
    let _ = conn.set_nodelay(true);
    let Ok(read_half) = conn.try_clone() else {
        return;
    };
    let mut reader = BufReader::with_capacity(4096, read_half);
    let mut writer = conn;
    loop {
        let req = match http::read_request(&mut reader) {
            ReadOutcome::Closed => return,
            ReadOutcome::Bad(e) => {
                let _ = http::write_response(&mut writer, &e.response(), false, false);
                return;
            }
            ReadOutcome::Request(r) => r,
        };
        if req.path == "/api/events/stream" {
            start_stream(shared, &req, writer);
            return;
        }
        let resp = match api::route(shared, &req) {
            Ok(r) => r,
            Err(e) => e.response(),
        };
        let keep_alive = req.keep_alive && shared.waiting.load(Ordering::SeqCst) == 0;
        let head_only = req.method == "HEAD";
        if http::write_response(&mut writer, &resp, head_only, keep_alive).is_err() || !keep_alive {
            return;
        }
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
    let after = match stream::start_after(shared, req) {
        Ok(a) => a,
        Err(e) => return fail(&mut conn, e),
    };
    if req.method == "HEAD" {
        let resp = Response::bytes(200, "text/event-stream; charset=utf-8", Vec::new());
        let _ = http::write_response(&mut conn, &resp, true, false);
        return;
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
    let spawned = std::thread::Builder::new()
        .name("serve-stream".into())
        .spawn(move || {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                stream::run(&s, conn, after)
            }));
            s.streams.fetch_sub(1, Ordering::SeqCst);
        });
    if spawned.is_err() {
        shared.streams.fetch_sub(1, Ordering::SeqCst);
    }
}
