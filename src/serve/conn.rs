//! One connection, from the accepted socket to its close.
//!
//! Each admitted connection gets a small thread of its own (256 KiB of stack) that reads request
//! heads — each head must be complete within [`HEAD_DEADLINE`] (or `--head-timeout`) of when the server started waiting
//! for it, however the bytes trickle in — checks `Host`/`Origin`, and only then hands the parsed
//! request to the worker pool, waits for the answer and writes it. So a slow or idle client holds
//! a connection thread (capped per client address and in all, see [`super::guard::Peers`]), never
//! a worker: the `--threads` workers only ever run handlers on complete requests.

use std::io::{BufReader, Read};
use std::net::TcpStream;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::guard::Admitted;
use super::http::{self, HttpError, ReadOutcome, Request, Response};
use super::{api, Shared, WRITE_TIMEOUT};

/// How long one request head may take to arrive in full by default (`--head-timeout`), counted
/// from when the server starts waiting for it (the accept, or the end of the previous response on a kept-alive connection).
/// A head still incomplete then is answered 408 and the connection closed; a connection that
/// sent nothing of a next request by then is closed silently.
pub const HEAD_DEADLINE: Duration = Duration::from_secs(5);

/// Stack of a connection thread: it parses heads and writes responses; handlers run on the
/// workers, streams on threads of their own.
pub const CONNECTION_STACK: usize = 256 * 1024;

/// A failure on the server's side while serving a connection (not the client's doing): logged,
/// answered 5xx.
#[derive(Debug, thiserror::Error)]
pub enum Fault {
    /// Every worker is busy and the queue is full.
    #[error("server busy: try again")]
    Busy,
    /// The worker pool is gone (the server is stopping).
    #[error("no worker to answer the request")]
    NoWorker,
    /// A handler panicked (a bug).
    #[error("the handler failed")]
    Panicked,
}

impl Fault {
    /// The response for it.
    pub fn response(&self) -> Response {
        let status = match self {
            Fault::Busy | Fault::NoWorker => 503,
            Fault::Panicked => 500,
        };
        if !matches!(self, Fault::Busy) {
            eprintln!("dokku-audit serve: error: {self}");
        }
        HttpError::new(status, self.to_string()).response()
    }
}

/// A request for a worker, and where its answer goes.
pub struct Job {
    req: Request,
    reply: SyncSender<Result<Response, Fault>>,
}

/// The workers' side of the pool.
pub type JobQueue = Arc<Mutex<Receiver<Job>>>;

/// Runs handlers for complete requests until the queue is closed.
pub fn worker(shared: &Shared, rx: &JobQueue) {
    loop {
        let job = match rx.lock() {
            Ok(guard) => match guard.recv() {
                Ok(j) => j,
                Err(_) => return,
            },
            Err(_) => return,
        };
        // A bug in a handler must not take a worker away from the pool.
        let answer = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            api::route(shared, &job.req).unwrap_or_else(|e| e.response())
        }))
        .map_err(|_| Fault::Panicked);
        let _ = job.reply.send(answer);
    }
}

/// The read half of a connection with one deadline for a whole request head: every read waits
/// at most until the deadline, and none starts after it.
struct Deadline {
    stream: TcpStream,
    until: Instant,
}

impl Read for Deadline {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        self.stream.set_read_timeout(Some(left))?;
        self.stream.read(buf)
    }
}

/// Serves the requests of one connection (on its own thread; `admitted` keeps it counted).
pub fn serve(shared: &Arc<Shared>, jobs: &SyncSender<Job>, conn: TcpStream, admitted: Admitted) {
    let _ = conn.set_write_timeout(Some(WRITE_TIMEOUT));
    let _ = conn.set_nodelay(true);
    let local = conn.local_addr().ok();
    let Ok(read_half) = conn.try_clone() else {
        return;
    };
    let mut reader = BufReader::with_capacity(
        4096,
        Deadline {
            stream: read_half,
            until: Instant::now() + shared.head_deadline,
        },
    );
    let mut writer = conn;
    loop {
        reader.get_mut().until = Instant::now() + shared.head_deadline;
        let req = match http::read_request(&mut reader) {
            ReadOutcome::Closed => return,
            ReadOutcome::Bad(e) => return refuse(&mut writer, &e),
            ReadOutcome::Request(r) => r,
        };
        if let Err(e) = shared.hosts.check(&req, local) {
            return refuse(&mut writer, &e);
        }
        if req.path == "/api/events/stream" {
            // A stream is counted by the stream cap, not the per-peer one.
            drop(admitted);
            return super::start_stream(shared, &req, writer);
        }
        let keep_alive = req.keep_alive && !shared.stopping();
        let head_only = req.method == "HEAD";
        let resp = match dispatch(jobs, req) {
            Ok(r) => r,
            Err(f) => {
                let _ = http::write_response(&mut writer, &f.response(), false, false);
                return;
            }
        };
        if http::write_response(&mut writer, &resp, head_only, keep_alive).is_err() || !keep_alive {
            return;
        }
    }
}

/// Answers an error and closes: nothing after a refused head is read as a request. What the
/// client still sends is read and dropped for a moment first (at most 64 KiB, 1 s), so that
/// closing with unread bytes does not reset the connection before the client has the answer.
fn refuse(writer: &mut TcpStream, e: &HttpError) {
    if http::write_response(writer, &e.response(), false, false).is_err() {
        return;
    }
    let _ = writer.shutdown(std::net::Shutdown::Write);
    let until = Instant::now() + Duration::from_secs(1);
    let mut sink = [0u8; 4096];
    let mut drained = 0;
    while drained < 64 * 1024 {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() || writer.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match writer.read(&mut sink) {
            Ok(0) | Err(_) => return,
            Ok(n) => drained += n,
        }
    }
}

/// Runs a request on a worker and waits for its answer.
fn dispatch(jobs: &SyncSender<Job>, req: Request) -> Result<Response, Fault> {
    let (reply, answer) = sync_channel(1);
    match jobs.try_send(Job { req, reply }) {
        Ok(()) => {}
        Err(TrySendError::Full(_)) => return Err(Fault::Busy),
        Err(TrySendError::Disconnected(_)) => return Err(Fault::NoWorker),
    }
    answer.recv().map_err(|_| Fault::NoWorker)?
}

/// Refuses a connection the acceptor will not serve (a cap is reached): a 503 without reading
/// anything, then close. The socket is fresh, so the small write does not block.
pub fn turn_away(mut conn: TcpStream, why: &str) {
    let _ = conn.set_write_timeout(Some(Duration::from_millis(200)));
    let busy = HttpError::new(503, why);
    let _ = http::write_response(&mut conn, &busy.response(), false, false);
    let _ = conn.shutdown(std::net::Shutdown::Write);
}
