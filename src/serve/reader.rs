//! The server's one long-lived index reader (issue 18): opening the index and catching it up on
//! every request cost more than answering it, and every append made the next request wait
//! for a commit. Here one searcher is shared by every request until the store moves on.
//!
//! - A request takes the current [`Snapshot`] (a searcher and the mark it is exactly at) and
//!   checks the store's head with two `stat`s ([`Store::head_unchanged`]). Unchanged: the page
//!   and its total come from the searcher alone. Changed: the events after the mark (the tail)
//!   are read from the segments and merged, so an appended event is in the very next answer,
//!   and the catch-up thread is woken.
//! - One catch-up thread, and only it, indexes new events (one commit for however many arrived
//!   meanwhile), reloads the reader and publishes the next snapshot. Requests never wait for
//!   it, except the first ones, for the initial open.
//! - The index is derived data: when its directory disappears (or it turns out damaged or
//!   foreign) the thread rebuilds it as any query would ([`EventIndex::open_for_query`]), while
//!   requests keep using the snapshot they have (its files stay readable once unlinked) plus
//!   the tail. With no usable index at all the segments answer alone.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use tantivy::{IndexReader, ReloadPolicy, Searcher};

use crate::index::{high_water_mark, EventIndex, IndexError, Mark};
use crate::query::list::{self, Indexed, ListQuery, Page, Tail, View};
use crate::store::{HeadStamp, Store};

/// How often the catch-up thread looks without being woken: the index directory removed while
/// nothing is appended, another process's commit to pick up, a failed open to retry.
pub const IDLE_CHECK: Duration = Duration::from_secs(2);

/// Shortest time between two catch-ups (each a tantivy commit): under a burst of appends the
/// index lags at most about this much behind the store, the tail covers the lag.
pub const CATCH_UP_INTERVAL: Duration = Duration::from_millis(500);

/// Why a page could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum ReaderError {
    /// The query failed: the user's fault when [`IndexError::is_user_error`], else the server's.
    #[error(transparent)]
    Query(#[from] IndexError),
    /// The index could not be opened (the server's side; retried in the background).
    #[error("{0}")]
    Unusable(Arc<IndexError>),
}

impl ReaderError {
    /// The client's fault (a 400), not the server's.
    pub fn is_user_error(&self) -> bool {
        matches!(self, ReaderError::Query(e) if e.is_user_error())
    }
}

/// An open searcher, the mark it holds exactly, and the head of the store it was caught up to.
pub struct Snapshot {
    index: Arc<EventIndex>,
    reader: IndexReader,
    searcher: Searcher,
    mark: Mark,
    /// `None`: not known to hold every event of the store (another process was writing the
    /// index, or it cannot be written): every request reads the tail.
    head: Option<HeadStamp>,
    /// The index's part of pages already answered on this searcher, by query and depth: it
    /// cannot change while the searcher lives, and a dashboard asks the same few pages over
    /// and over (each client polling its view). Dropped with the snapshot.
    memo: Mutex<HashMap<String, Arc<Indexed>>>,
    computing: Mutex<()>,
}

/// Index answers a snapshot keeps at most (then it starts over: a cheap bound, no LRU needed
/// for a map that a reload empties anyway).
pub const MEMO_ENTRIES: usize = 1024;

impl Snapshot {
    fn indexed(&self, q: &ListQuery, limit: usize) -> Result<Arc<Indexed>, IndexError> {
        let mut keyed = q.clone();
        keyed.limit = limit;
        let key = format!("{keyed:?}");
        if let Some(hit) = self.memo.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return Ok(hit);
        }
        // One query at a time on a fresh snapshot: the requests that all miss together right
        // after a reload wait for one answer instead of each running the same query.
        let _one = self.computing.lock();
        if let Some(hit) = self.memo.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return Ok(hit);
        }
        let view = View {
            index: &self.index,
            searcher: &self.searcher,
            mark: self.mark,
        };
        let answer = Arc::new(list::indexed_page(&view, q, limit)?);
        if let Ok(mut m) = self.memo.lock() {
            if m.len() >= MEMO_ENTRIES {
                m.clear();
            }
            m.insert(key, Arc::clone(&answer));
        }
        Ok(answer)
    }
}

#[derive(Clone)]
enum State {
    Starting,
    Ready(Arc<Snapshot>),
    /// No index can be used (a read-only data dir without one): the segments answer.
    NoIndex,
    Failed(Arc<IndexError>),
}

/// The reader and its catch-up thread's mailbox, shared by the workers.
pub struct LiveIndex {
    data_dir: std::path::PathBuf,
    state: Mutex<State>,
    started: Condvar,
    kicked: Mutex<bool>,
    wake: Condvar,
    tail: Mutex<Option<SharedTail>>,
}

/// The tail after a mark as of a head of the store.
struct SharedTail {
    mark: Mark,
    head: HeadStamp,
    /// When `head` was taken (before the read).
    stamped: Instant,
    tail: Arc<Tail>,
}

impl LiveIndex {
    /// Nothing open yet: [`LiveIndex::run_catch_up`] opens it.
    pub fn new(data_dir: &std::path::Path) -> LiveIndex {
        LiveIndex {
            data_dir: data_dir.to_path_buf(),
            state: Mutex::new(State::Starting),
            started: Condvar::new(),
            kicked: Mutex::new(false),
            wake: Condvar::new(),
            tail: Mutex::new(None),
        }
    }

    fn current(&self) -> State {
        let Ok(mut g) = self.state.lock() else {
            return State::NoIndex;
        };
        while matches!(*g, State::Starting) {
            g = match self.started.wait(g) {
                Ok(g) => g,
                Err(_) => return State::NoIndex,
            };
        }
        g.clone()
    }

    fn publish(&self, next: State) {
        if let Ok(mut g) = self.state.lock() {
            *g = next;
        }
        self.started.notify_all();
    }

    /// After the catch-up thread panicked: requests still waiting for the first snapshot are
    /// answered from the segments until a snapshot is published.
    pub fn after_panic(&self) {
        let starting = self
            .state
            .lock()
            .map(|g| matches!(*g, State::Starting))
            .unwrap_or(false);
        if starting {
            self.publish(State::NoIndex);
        }
    }

    /// Asks the catch-up thread for a round (returns at once).
    fn kick(&self) {
        if let Ok(mut k) = self.kicked.lock() {
            *k = true;
        }
        self.wake.notify_one();
    }

    /// Rows `offset..offset + count` of `q`'s newest-first answer and the total, from the
    /// current snapshot and, when the store moved on since, the tail.
    pub fn page(
        &self,
        store: &Store,
        q: &ListQuery,
        offset: usize,
        count: usize,
    ) -> Result<Page, ReaderError> {
        match self.current() {
            State::Ready(s) => {
                let fresh = s.head.as_ref().is_some_and(|h| store.head_unchanged(h));
                if !fresh {
                    self.kick();
                }
                // The query is checked where it is built (on a memo miss; a hit was checked).
                let limit = offset.saturating_add(count).max(1);
                let page = s.indexed(q, limit).and_then(|indexed| {
                    let tail = if fresh {
                        None
                    } else {
                        Some(self.tail(store, &s)?)
                    };
                    let indexed = Indexed::clone(&indexed);
                    list::finish_page(indexed, tail.as_deref(), q, offset, count)
                });
                if matches!(&page, Err(e) if !e.is_user_error()) {
                    self.kick();
                }
                Ok(page?)
            }
            State::NoIndex | State::Starting => {
                Ok(list::page_of(store, None, q, offset, count, true)?)
            }
            State::Failed(e) => {
                // A bad query is the client's 400 whatever state the index is in.
                list::check_query(q)?;
                Err(ReaderError::Unusable(e))
            }
        }
    }

    /// The events after the snapshot's mark, read and indexed in memory once per head of the
    /// store and shared: between an append and the catch-up that indexes it every request
    /// needs the same tail. Built under the lock, and a request that waited for it takes a
    /// tail whose head was stamped after the request began (it holds everything appended
    /// before): a burst of appends costs one read per wave of waiting requests, not one each.
    fn tail(&self, store: &Store, s: &Snapshot) -> Result<Arc<Tail>, IndexError> {
        let began = Instant::now();
        let Ok(mut cached) = self.tail.lock() else {
            return Ok(Arc::new(Tail::read(store, s.mark)?));
        };
        if let Some(c) = cached.as_ref().filter(|c| c.mark == s.mark) {
            if c.stamped >= began {
                return Ok(Arc::clone(&c.tail));
            }
        }
        // The stamp before the read: the tail holds at least what the stamp saw (maybe more,
        // which is then read again with the next stamp: never less).
        let base = cached
            .as_ref()
            .filter(|c| c.mark == s.mark)
            .map(|c| &c.head)
            .or(s.head.as_ref());
        let stamped = Instant::now();
        let now = match base {
            Some(b) => store.head_stamp_after(b),
            None => store.head_stamp(),
        };
        let Ok(now) = now else {
            return Ok(Arc::new(Tail::read(store, s.mark)?));
        };
        let mut previous = None;
        if let Some(c) = cached.as_mut().filter(|c| c.mark == s.mark) {
            if c.head == now {
                c.stamped = stamped;
                return Ok(Arc::clone(&c.tail));
            }
            previous = Some(Arc::clone(&c.tail));
        }
        // Only what was appended since the last read, when there was one after this mark.
        let tail = Arc::new(match previous {
            Some(p) => p.extend(store)?,
            None => Tail::read(store, s.mark)?,
        });
        *cached = Some(SharedTail {
            mark: s.mark,
            head: now,
            stamped,
            tail: Arc::clone(&tail),
        });
        Ok(tail)
    }

    /// The catch-up thread: opens the index, then catches up whenever woken (or every
    /// [`IDLE_CHECK`]) until `stopping` says so.
    pub fn run_catch_up(&self, store: &Store, stopping: &dyn Fn() -> bool) {
        while !stopping() {
            if let Some(next) = self.refresh(store) {
                self.publish(next);
                // At most one commit per interval however fast triggers append: requests
                // read the (shared) tail meanwhile, so nothing is less visible for it.
                std::thread::sleep(CATCH_UP_INTERVAL);
            }
            let Ok(mut k) = self.kicked.lock() else {
                return;
            };
            if !*k {
                k = match self.wake.wait_timeout(k, IDLE_CHECK) {
                    Ok((k, _)) => k,
                    Err(_) => return,
                };
            }
            *k = false;
        }
    }

    /// One round: the next state, or `None` to keep the current one.
    fn refresh(&self, store: &Store) -> Option<State> {
        match self.state.lock().ok().map(|g| g.clone()) {
            Some(State::Ready(s)) if s.index.is_present() => self.advance(store, &s),
            _ => Some(self.open(store)),
        }
    }

    fn advance(&self, store: &Store, s: &Snapshot) -> Option<State> {
        if s.head.as_ref().is_some_and(|h| store.head_unchanged(h)) {
            return None;
        }
        // The stamp before the catch-up: everything up to it gets indexed.
        let head = store.head_stamp().ok();
        match s.index.catch_up(store, &mut |_| {}) {
            Ok(_) => Some(snapshot(&s.index, Some(s.reader.clone()), head)),
            // Another process holds the writer, or the index cannot be written here: read
            // what is committed, and let requests read the tail.
            Err(IndexError::Busy(_)) => Some(snapshot(&s.index, Some(s.reader.clone()), None)),
            Err(e) if e.is_read_only() => Some(snapshot(&s.index, Some(s.reader.clone()), None)),
            // Damaged or another store's: rebuilt as any query would.
            Err(IndexError::Tantivy { .. } | IndexError::Mismatch { .. }) => Some(self.open(store)),
            Err(e) => {
                // The segments could not be read: keep answering from what we have.
                eprintln!("dokku-audit serve: index catch-up: {e}");
                None
            }
        }
    }

    fn open(&self, store: &Store) -> State {
        let head = store.head_stamp().ok();
        match EventIndex::open_for_query(&self.data_dir, store) {
            Ok(None) => State::NoIndex,
            Ok(Some(index)) => {
                // `open_for_query` does not say whether it caught up (another writer, a
                // read-only dir): a second catch-up, with nothing left to do, does.
                let head = match index.catch_up(store, &mut |_| {}) {
                    Ok(_) => head,
                    Err(_) => None,
                };
                snapshot(&Arc::new(index), None, head)
            }
            Err(e) if e.is_read_only() => State::NoIndex,
            Err(e) => {
                eprintln!("dokku-audit serve: error: {e}");
                State::Failed(Arc::new(e))
            }
        }
    }
}

/// A snapshot at the index's last commit: the mark read before and after reloading must agree,
/// else a commit landed in between and the reader may hold more than the mark says (which
/// would count the tail twice); tried again a few times.
fn snapshot(
    index: &Arc<EventIndex>,
    reader: Option<IndexReader>,
    head: Option<HeadStamp>,
) -> State {
    let reader = match reader {
        Some(r) => r,
        None => match index
            .index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
        {
            Ok(r) => r,
            Err(e) => return failed(index.fault()(e)),
        },
    };
    let mut last = None;
    for _ in 0..5 {
        let before = high_water_mark(&index.index);
        if let Err(e) = reader.reload() {
            return failed(index.fault()(e));
        }
        let searcher = reader.searcher();
        let exact = high_water_mark(&index.index) == before;
        last = Some((searcher, before));
        if exact {
            break;
        }
    }
    let Some((searcher, mark)) = last else {
        return State::NoIndex;
    };
    State::Ready(Arc::new(Snapshot {
        index: Arc::clone(index),
        reader,
        searcher,
        mark,
        head,
        memo: Mutex::new(HashMap::new()),
        computing: Mutex::new(()),
    }))
}

fn failed(e: IndexError) -> State {
    if e.is_read_only() {
        // No reader on a read-only data dir (tantivy's lock file): the segments answer.
        return State::NoIndex;
    }
    eprintln!("dokku-audit serve: error: {e}");
    State::Failed(Arc::new(e))
}
