//! The event loop: accept, dispatch readiness, drive the connection state
//! machines, fire timers, close what finished.

use std::io;
use std::net::{IpAddr, Shutdown, SocketAddr};
use std::time::Duration;

use log::{debug, error, info, warn};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

use super::conn::{
    Armed, BackendConn, BackendPhase, ClientConn, ClientPhase, Exchange, Nagle, ProxyError,
    ResponsePhase, Tried,
};
use super::health::{FailureKind, Health, Transition};
use super::io::{IoOutcome, Readiness, discard, read_into, write_from};
use super::probe::{self, Probe, ProbePhase};
use super::reload::{ReloadHub, Role};
use super::retry_budget::RetryBudget;
use super::signals::{Signal, SignalPipe};
use crate::balance::{self, BackendId, BackendLoad, Strategy};
use crate::buf::{BUF_SIZE, Buf, BufPool, FreeList, LARGE_BUF_SIZE, WIDE_BUF_SIZE, fmt_u64};
use crate::config::Config;
use crate::http::body::{BodyError, BodyRelay};
use crate::http::canned;
use crate::http::head::{
    self, ForwardInfo, HeadError, HeadScan, RequestContext, check_partial_request, rewrite_request,
    rewrite_response, rewrite_response_if_complete,
};
use crate::http::{Framing, Method};
use crate::time::date::DateCache;
use crate::time::wheel::{TimerId, Wheel};
use crate::time::{Clock, MonotonicClock, Tick};

/// Token of the client listener.
const LISTENER: Token = Token(1 << 62);
/// Token of the signal pipe.
const SIGNALS: Token = Token(1 << 61);
/// Token of the admin listener.
const ADMIN: Token = Token(1 << 60);
/// Token of the waker that reports a configuration file read off the loop.
const RELOADED: Token = Token(1 << 59);
/// The admin listener's `Server` field, by which `ekilibri --check` knows
/// it is talking to an ekilibri.
pub const ADMIN_SERVER: &str = concat!("ekilibri/", env!("CARGO_PKG_VERSION"));
/// Largest admin request head read.
const ADMIN_MAX_HEAD: usize = 8 * 1024;
/// Admin connections one worker serves at once; more are closed at accept.
const MAX_ADMIN_CONNECTIONS: usize = 16;
/// Timer key bit: the key is a backend index whose probe is due.
const PROBE_TIMER: u64 = 1 << 63;
/// Health probes one backend may have in flight at once.
const MAX_PROBES_IN_FLIGHT: u8 = 4;
/// Timer key: accepting resumes after a pause (EMFILE).
const ACCEPT_TIMER: u64 = 1 << 62;
/// Failed accepts in a row (other than for want of resources) after which
/// accepting pauses like for a shortage, instead of spinning.
const MAX_ACCEPT_FAILURES: u32 = 64;
/// Timer key: the drain's `shutdown_timeout` is over (the loop wakes up
/// to stop even when no connection has a deadline that early).
const SHUTDOWN_TIMER: u64 = (1 << 62) | 1;
/// How long accepting pauses when the process is out of descriptors.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// How long a closing client connection is drained before it is closed.
const LINGER: Duration = Duration::from_secs(2);
/// Interim (1xx) responses a backend may send before its final one; one
/// more is a bad response (502). HAProxy and nginx relay a handful at most
/// (`100`, `102`, `103`); a backend sending `102 Processing` every few
/// seconds stays well within it.
const MAX_INTERIM: u16 = 100;
/// How long, in all, the rest of a request body is read and dropped after
/// the backend went away from a complete keep-alive answer (nginx's
/// `lingering_time`); then the connection closes.
const DISCARD_TIME: Duration = Duration::from_secs(30);
/// Rounds of work one connection gets per turn before others go first.
const DRIVE_BUDGET: usize = 32;
/// Bytes one connection may read in a turn before others go first: a
/// large transfer moves in steps of this size, interleaved with the other
/// connections' work, instead of running for a whole body in one turn.
const DRIVE_BYTES: u64 = 128 * 1024;
/// Idle connections above `pool_size` are kept this long for reuse, so a
/// burst of concurrent requests does not open and close a connection per
/// request; below `pool_size` they are kept for `keepalive_timeout`.
const EXCESS_IDLE: Duration = Duration::from_secs(1);
/// Idle connections kept per backend at most, whatever the load.
const MAX_IDLE_PER_BACKEND: usize = 1024;
/// Idle buffers kept for reuse (16 KiB each) at least; more while more
/// connections are open (see [`Reactor::size_pools`]).
const MAX_IDLE_BUFFERS: usize = 1024;
/// Idle buffers (and spare exchanges) a trim always leaves: 1 MiB of
/// buffers, enough for a small burst to find them ready.
const KEEP_IDLE_BUFFERS: usize = 64;
/// How often the pools free what no request needed meanwhile.
const POOL_TRIM_INTERVAL: Duration = Duration::from_secs(1);
/// Finished exchanges kept for reuse.
const MAX_IDLE_EXCHANGES: usize = 1024;
/// Readiness events fetched per poll.
const EVENTS_CAPACITY: usize = 1024;

/// A failure to start or run the reactor.
#[derive(Debug)]
pub enum ReactorError {
    /// The listener could not be bound.
    Bind(SocketAddr, io::Error),
    /// The poller failed.
    Poll(io::Error),
    /// The access log (this path, or `stdout`) could not be opened.
    AccessLog(String, io::Error),
}

impl ReactorError {
    /// The exit status for this failure: 2 when the configuration cannot be
    /// put in place (an address that cannot be bound, an access log that
    /// cannot be opened: the operator must change the file or free the
    /// port), 1 when the system failed (the poller).
    pub fn exit_code(&self) -> u8 {
        match self {
            ReactorError::Bind(..) | ReactorError::AccessLog(..) => 2,
            ReactorError::Poll(_) => 1,
        }
    }
}

impl std::fmt::Display for ReactorError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReactorError::Bind(addr, e) => write!(f, "cannot listen on {addr}: {e}"),
            ReactorError::Poll(e) => write!(f, "poll failed: {e}"),
            ReactorError::AccessLog(dest, e) => {
                write!(f, "cannot open the access log {dest}: {e}")
            }
        }
    }
}

impl std::error::Error for ReactorError {}

/// Everything in the slab. Variants are stored inline: boxing would cost an
/// allocation per connection to save a few hundred bytes per slot.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
enum Entry {
    Client(ClientConn),
    Backend(BackendConn),
    Probe(Probe),
    Admin(AdminConn),
}

/// A connection to the admin listener: one request, one response, close.
#[derive(Debug)]
struct AdminConn {
    sock: TcpStream,
    generation: u32,
    rd: Readiness,
    input: Vec<u8>,
    output: Vec<u8>,
    written: usize,
    since: Tick,
    timer: Armed,
}

impl Entry {
    fn generation(&self) -> u32 {
        match self {
            Entry::Client(c) => c.generation,
            Entry::Backend(b) => b.generation,
            Entry::Probe(p) => p.generation,
            Entry::Admin(a) => a.generation,
        }
    }
    fn timer_mut(&mut self) -> &mut Armed {
        match self {
            Entry::Client(c) => &mut c.timer,
            Entry::Backend(b) => &mut b.timer,
            Entry::Probe(p) => &mut p.timer,
            Entry::Admin(a) => &mut a.timer,
        }
    }
}

/// One configured backend.
#[derive(Debug)]
struct Backend {
    addr: SocketAddr,
    /// Relative share of requests, from the configuration (1..=1000).
    weight: u32,
    /// `addr` as text, the `Host` of requests that came without one.
    host: String,
    health: Health,
    /// Idle connections, most recently used last.
    pool: Vec<usize>,
    in_flight: u32,
    /// Probes in flight (a new one starts every `health_check_interval`,
    /// even while an earlier one waits for its timeout).
    probes: u8,
    /// The deadline and id of this backend's probe timer, while one is in
    /// the wheel. A removed backend's timer lapses when it next fires; a
    /// backend re-added before that keeps it instead of getting a second
    /// one. A reload that shortens `health_check_interval` moves it earlier.
    probe_timer: Option<(Tick, TimerId)>,
    /// Dropped from the configuration by a reload: never picked again; its
    /// in-flight requests finish and its connections close.
    removed: bool,
}

impl Backend {
    fn new(s: &crate::config::Server, cfg: &Config) -> Backend {
        Backend {
            addr: s.addr,
            weight: s.weight,
            host: s.addr.to_string(),
            health: Health::new(cfg.max_fails, cfg.fail_window),
            pool: Vec::with_capacity(cfg.pool_size),
            in_flight: 0,
            probes: 0,
            probe_timer: None,
            removed: false,
        }
    }
}

/// What a retry sends to the next backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Carry {
    /// The failed connection never connected: its output buffer (head and
    /// any body bytes) was never written and moves over as it is.
    Unsent,
    /// A pooled connection died before answering a bodiless request: the
    /// head is rewritten from the client buffer. (The keep-alive race: it
    /// costs no retry budget, and may go to the same backend.)
    Head,
    /// A new connection was closed before answering a bodiless idempotent
    /// request: the head is rewritten for another backend.
    Resend,
}

/// What one round of work on a client connection ended with.
#[derive(Debug)]
enum Step {
    /// Nothing more can be done until the next event.
    Idle,
    /// Something moved; go round again.
    Progress,
    /// A complete request head of this length is at the front of the buffer.
    NewRequest(usize),
    /// The request head was rejected.
    Reject(HeadError),
    /// The exchange failed.
    Fail(ProxyError),
    /// The exchange is complete.
    Done,
    /// The pooled connection was dead: send the request again.
    Retry,
    /// A new backend connection closed before any response byte.
    NoResponse,
    /// Close the client connection now.
    Close,
}

/// What a timer that fired asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Due {
    ClientHeader,
    ClientBody,
    ClientIdle,
    ClientSend,
    ClientLinger,
    Backend(ProxyError),
    /// A tunnel (after a `101`) with no traffic either way.
    TunnelIdle,
    PoolIdle,
    Probe(FailureKind),
    AdminIdle,
}

/// The reactor: owns the poller, the listener, every connection, the timer
/// wheel and the backends' health.
pub struct Reactor {
    poll: Poll,
    /// The client listener; closed (None) once a shutdown starts.
    listener: Option<TcpListener>,
    local_addr: SocketAddr,
    cfg: Config,
    clock: MonotonicClock,
    now: Tick,
    /// `now` at full precision (for response times).
    precise: Duration,
    wheel: Wheel,
    conns: Slab<Entry>,
    backends: Vec<Backend>,
    loads: Vec<BackendLoad>,
    strategy: Box<dyn Strategy>,
    /// Client connections with work to do this turn.
    dirty: Vec<usize>,
    /// The other of the two lists `drive_dirty` alternates between, so
    /// that connections marked while a batch runs need no new list.
    dirty_spare: Vec<usize>,
    /// Bytes read from clients and backends so far: a connection's turn
    /// ends once it has moved [`DRIVE_BYTES`].
    bytes_read: u64,
    /// Slab keys to remove at the end of the turn.
    closing: Vec<usize>,
    /// Rewritten request head, before a backend connection is chosen.
    scratch: Buf,
    /// Caps retries to a share of the traffic.
    budget: RetryBudget,
    /// Buffer storage lent to connections while bytes are in flight.
    bufs: BufPool,
    /// Recycled exchange boxes: a client holds its exchange boxed (so an
    /// idle connection stays small) and the boxes are reused.
    #[allow(clippy::vec_box)]
    spare_exchanges: FreeList<Box<Exchange>>,
    /// When the pools next free what they did not need (`size_pools`).
    next_trim: Tick,
    /// How often that is (`POOL_TRIM_INTERVAL` unless set otherwise).
    trim_interval: Duration,
    next_gen: u32,
    /// Admin connections open.
    admins: usize,
    clients: usize,
    accept_paused: bool,
    accept_pending: bool,
    /// This worker's share of the process's descriptor limit.
    fd_budget: usize,
    /// When accepting last stopped because connections came near
    /// `fd_budget` (logged at most once a minute).
    fd_warned: Option<Tick>,
    /// When the last "max_connections reached" warning was logged.
    max_warned: Option<Tick>,
    /// Signals delivered into the loop (when enabled).
    signals: Option<SignalPipe>,
    /// The access log, when configured.
    access: Option<super::access::AccessSink>,
    /// The admin listener, when configured.
    admin: Option<TcpListener>,
    /// An admin accept failed for want of descriptors or memory: accept
    /// again when the accept timer fires.
    admin_retry: bool,
    /// Counters and histograms for `/metrics` and `/status`.
    metrics: crate::ops::Metrics,
    /// `Date` for responses, formatted once a second.
    date: DateCache,
    /// The file SIGHUP reloads.
    config_path: Option<std::path::PathBuf>,
    /// Reads that file off the loop, for every worker.
    loader: Option<super::reload::Loader>,
    /// Seeds strategies built on reload.
    seed: u64,
    /// Graceful shutdown under way: no more accepts, no more keep-alive,
    /// force-close at this deadline.
    draining: Option<Tick>,
    /// Stop now (second SIGTERM, or the drain finished).
    stopped: bool,
}

impl Reactor {
    /// Binds the listener and sets up the backends; nothing slow happens
    /// before the listener accepts.
    pub fn new(cfg: Config) -> Result<Reactor, ReactorError> {
        let listener = super::listen::bind(cfg.listen, cfg.workers > 1)
            .map_err(|e| ReactorError::Bind(cfg.listen, e))?;
        Reactor::with_listener(cfg, listener)
    }

    /// Sets up a reactor around an already bound, non-blocking listener
    /// (each worker binds its own with `SO_REUSEPORT`).
    pub fn with_listener(
        cfg: Config,
        listener: std::net::TcpListener,
    ) -> Result<Reactor, ReactorError> {
        let poll = Poll::new().map_err(ReactorError::Poll)?;
        listener
            .set_nonblocking(true)
            .map_err(|e| ReactorError::Bind(cfg.listen, e))?;
        let mut listener = TcpListener::from_std(listener);
        let local_addr = listener
            .local_addr()
            .map_err(|e| ReactorError::Bind(cfg.listen, e))?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)
            .map_err(ReactorError::Poll)?;
        let clock = MonotonicClock::new();
        let now = clock.now();
        let mut wheel = Wheel::new(now);
        let mut backends: Vec<Backend> =
            cfg.servers.iter().map(|s| Backend::new(s, &cfg)).collect();
        for (i, b) in backends.iter_mut().enumerate() {
            let due = now.after(cfg.health_check_interval);
            b.probe_timer = Some((due, wheel.insert(due, PROBE_TIMER | i as u64)));
        }
        let seed = u64::from(std::process::id()) ^ 0x9E37_79B9_7F4A_7C15;
        let n_backends = backends.len();
        let access = super::access::AccessSink::open(&cfg.access_log, cfg.access_log_format)
            .map_err(|e| ReactorError::AccessLog(cfg.access_log.to_string(), e))?;
        let admin = match cfg.admin_listen {
            Some(addr) => {
                let std_listener = super::listen::bind(addr, cfg.workers > 1)
                    .map_err(|e| ReactorError::Bind(addr, e))?;
                let mut l = TcpListener::from_std(std_listener);
                poll.registry()
                    .register(&mut l, ADMIN, Interest::READABLE)
                    .map_err(ReactorError::Poll)?;
                Some(l)
            }
            None => None,
        };
        let budget = RetryBudget::new(cfg.retry_budget_percent, cfg.retry_budget_min_per_sec);
        Ok(Reactor {
            budget,
            bufs: BufPool::new(MAX_IDLE_BUFFERS),
            spare_exchanges: FreeList::new(MAX_IDLE_EXCHANGES),
            next_trim: now,
            trim_interval: POOL_TRIM_INTERVAL,
            poll,
            listener: Some(listener),
            local_addr,
            loads: vec![BackendLoad::default(); backends.len()],
            strategy: balance::from_kind(cfg.strategy, seed, backends.len()),
            backends,
            cfg,
            clock,
            now,
            precise: Duration::ZERO,
            wheel,
            conns: Slab::with_capacity(1024),
            dirty: Vec::with_capacity(256),
            dirty_spare: Vec::with_capacity(256),
            bytes_read: 0,
            closing: Vec::with_capacity(256),
            scratch: Buf::with_capacity(LARGE_BUF_SIZE),
            next_gen: 1,
            admins: 0,
            clients: 0,
            accept_paused: false,
            accept_pending: false,
            fd_budget: usize::MAX,
            fd_warned: None,
            max_warned: None,
            signals: None,
            access,
            admin,
            admin_retry: false,
            metrics: crate::ops::Metrics::new(n_backends),
            date: DateCache::default(),
            config_path: None,
            loader: None,
            seed,
            draining: None,
            stopped: false,
        })
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Sets how often idle pooled memory (buffers, exchange boxes) that no
    /// connection needed since the last trim is freed; 1 s by default.
    /// Tests that count allocations lengthen it: a test thread that the
    /// machine stalls for a second would otherwise see the pool freed and
    /// filled again, as it should be after a second of idleness.
    pub fn set_trim_interval(&mut self, every: Duration) {
        self.trim_interval = every;
        self.next_trim = self.now.after(every);
    }

    /// Runs the loop until a graceful shutdown completes (or the poller
    /// fails).
    pub fn run(&mut self) -> Result<(), ReactorError> {
        self.run_while(|| true)
    }

    /// Runs turns of the loop while `go()` says so (checked once per turn;
    /// a turn waits at most until the next timer, 500 ms by default with
    /// health probes) and no shutdown has completed. For tests and
    /// embedding.
    pub fn run_while(&mut self, mut go: impl FnMut() -> bool) -> Result<(), ReactorError> {
        let mut events = Events::with_capacity(EVENTS_CAPACITY);
        let mut expired = Vec::with_capacity(256);
        while !self.stopped && go() {
            self.turn(&mut events, &mut expired)?;
            if let Some(deadline) = self.draining {
                if self.clients == 0 {
                    info!("shutdown complete");
                    self.stopped = true;
                } else if self.now >= deadline {
                    warn!("shutdown timeout: closing {} connections", self.clients);
                    self.stopped = true;
                }
            }
        }
        Ok(())
    }

    /// Delivers SIGHUP, SIGTERM, SIGINT, SIGQUIT, SIGUSR1 and SIGUSR2 into
    /// this loop through a self-pipe: SIGTERM, SIGINT and SIGQUIT start a
    /// graceful shutdown (a second one stops at once).
    pub fn enable_signals(&mut self) -> io::Result<()> {
        let pipe = SignalPipe::new()?;
        self.poll.registry().register(
            &mut mio::unix::SourceFd(&pipe.fd()),
            SIGNALS,
            Interest::READABLE,
        )?;
        self.signals = Some(pipe);
        Ok(())
    }

    /// This worker's share of the process's file descriptor limit: it stops
    /// accepting while its connections come within a reserve of it (kept
    /// for its clients' backend connections and its probes), instead of
    /// running out. Unlimited unless set.
    pub fn set_descriptor_budget(&mut self, budget: usize) {
        self.fd_budget = budget;
    }

    /// Whether another client may be accepted: below `max_connections` and
    /// clear of the descriptor reserve.
    fn can_accept(&mut self) -> bool {
        if self.clients >= self.cfg.max_connections {
            if warn_due(&mut self.max_warned, self.now) {
                warn!(
                    "max_connections ({}) clients open on this worker: further clients wait in \
                     the listen backlog until some close",
                    self.cfg.max_connections
                );
            }
            return false;
        }
        let reserve = super::fds::reserve(
            self.fd_budget,
            self.backends.len(),
            usize::from(MAX_PROBES_IN_FLIGHT),
        );
        let attached: usize = self.backends.iter().map(|b| b.in_flight as usize).sum();
        let unattached = self.clients.saturating_sub(attached);
        let limited =
            !super::fds::room_for_a_client(self.conns.len(), unattached, reserve, self.fd_budget);
        if limited && warn_due(&mut self.fd_warned, self.now) {
            warn!(
                "{} connections open, near this worker's share ({}) of the descriptor limit: \
                 new clients wait until some close (raise ulimit -n / LimitNOFILE)",
                self.conns.len(),
                self.fd_budget
            );
        }
        !limited
    }

    /// The address the admin listener is bound to, if any.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The listen and admin addresses as configured, for a worker that was
    /// started on the addresses another worker had bound (port 0 resolved):
    /// a reload compares the file with what it says, not with the port it
    /// resolved to, so an unchanged file changes nothing.
    pub fn set_configured_addresses(&mut self, listen: SocketAddr, admin: Option<SocketAddr>) {
        self.cfg.listen = listen;
        self.cfg.admin_listen = admin;
    }

    /// The configuration file that SIGHUP re-reads. Every worker of a
    /// process subscribes to the same `hub`, so that one read of the file
    /// reaches them all (with `--listen` in place of the file's `listen`,
    /// if the hub was made with it).
    pub fn set_config_path(
        &mut self,
        path: std::path::PathBuf,
        hub: &ReloadHub,
    ) -> std::io::Result<()> {
        self.loader = Some(hub.subscribe(self.poll.registry(), RELOADED)?);
        self.config_path = Some(path);
        self.tell_listening(None);
        Ok(())
    }

    /// Tells the reload hub the addresses this worker's listeners hold,
    /// and those of `next`, which it is about to bind: the hub checks that
    /// an address is free only when no worker holds it (see
    /// [`ReloadHub::new`]).
    fn tell_listening(&mut self, next: Option<&Config>) {
        let mut held = vec![
            (Role::Listen, self.cfg.listen),
            (Role::Listen, self.local_addr),
        ];
        held.extend(self.cfg.admin_listen.map(|a| (Role::Admin, a)));
        held.extend(self.admin_addr().map(|a| (Role::Admin, a)));
        if let Some(next) = next {
            held.push((Role::Listen, next.listen));
            held.extend(next.admin_listen.map(|a| (Role::Admin, a)));
        }
        if let Some(loader) = &mut self.loader {
            loader.listening(held);
        }
    }

    /// SIGHUP: re-reads and validates the configuration file, on a helper
    /// thread so that a slow resolver for host names in `servers` does not
    /// stall traffic; a later turn of the loop applies the result
    /// (`finish_reload`, on the loader's waker). A reload asked for while
    /// one is under way reads the file once more after it. With several
    /// workers the first request for a `SIGHUP` starts the read, and every
    /// worker applies its result.
    pub fn reload(&mut self) {
        let (Some(path), Some(loader)) = (self.config_path.clone(), self.loader.as_mut()) else {
            warn!("SIGHUP: no configuration file to reload");
            return;
        };
        if let Err(e) = loader.request(path, super::signals::hangups().max(1)) {
            self.reload_failed(&format!("cannot start the reload: {e}"));
        }
    }

    /// Applies the file a reload read, if it has finished. On error the
    /// running configuration stays and one line says why; on success new
    /// backends, weights, strategy, timeouts, health settings and the
    /// listen address apply without dropping a connection: a new listener
    /// is bound before the old one closes, in-flight requests finish, and
    /// removed backends take no new request and their connections drain.
    fn finish_reload(&mut self) {
        while let Some(result) = self.loader.as_mut().and_then(|l| l.take()) {
            let applied = match result {
                Ok(new) => self.apply(new),
                Err(e) => Err(e.to_string()),
            };
            match applied {
                Ok(summary) => {
                    self.metrics.on_reload(true);
                    info!("configuration reloaded: {summary}");
                }
                Err(e) => self.reload_failed(&e),
            }
            self.tell_listening(None);
        }
    }

    fn reload_failed(&mut self, why: &str) {
        self.metrics.on_reload(false);
        error!("reload failed, keeping the running configuration: {why}");
    }

    /// Applies a validated configuration; returns what changed.
    fn apply(&mut self, mut new: Config) -> Result<String, String> {
        let mut changes = Vec::new();
        if new.workers != self.cfg.workers {
            changes.push(format!(
                "workers stays {} until a restart",
                self.cfg.workers
            ));
            new.workers = self.cfg.workers;
        }
        // First everything that can fail (sockets, the log file), so that a
        // failed reload changes nothing; then the changes, which cannot fail.
        // Workers after the first bind the port the first one got at
        // start-up; on a reload each worker applies the file by itself, and
        // port 0 would give each its own port.
        for (key, addr, old) in [
            ("listen", Some(new.listen), Some(self.cfg.listen)),
            ("admin_listen", new.admin_listen, self.cfg.admin_listen),
        ] {
            if let Some(addr) = addr
                && addr.port() == 0
                && Some(addr) != old
                && new.workers > 1
            {
                return Err(format!(
                    "{key} = {addr}: port 0 cannot be applied by a reload with workers = {} (each \
                     worker would get a port of its own); name a port, or restart",
                    new.workers
                ));
            }
        }
        if new.listen != self.cfg.listen && self.draining.is_some() {
            changes.push(format!("listen stays {} (shutting down)", self.local_addr));
            new.listen = self.cfg.listen;
        }
        self.tell_listening(Some(&new));
        let listener = if new.listen != self.cfg.listen {
            Some(prepare_listener(new.listen, new.workers > 1)?)
        } else {
            None
        };
        let access = if (&new.access_log, new.access_log_format)
            != (&self.cfg.access_log, self.cfg.access_log_format)
        {
            let sink = super::access::AccessSink::open(&new.access_log, new.access_log_format)
                .map_err(|e| format!("cannot open the access log {}: {e}", new.access_log))?;
            Some(sink)
        } else {
            None
        };
        let admin = if new.admin_listen != self.cfg.admin_listen {
            match new.admin_listen {
                Some(addr) => Some(Some(
                    prepare_listener(addr, new.workers > 1).map_err(|e| format!("{e} (admin)"))?,
                )),
                None => Some(None),
            }
        } else {
            None
        };
        if let Some(listener) = listener {
            let addr = listener.local_addr().unwrap_or(new.listen);
            match self.swap_in(Some(listener), LISTENER) {
                Ok(()) => {
                    self.local_addr = addr;
                    self.accept_pending = true;
                    changes.push(format!("listening on {}", self.local_addr));
                }
                Err(e) => {
                    error!(
                        "cannot listen on {}: {e}; staying on {}",
                        new.listen, self.cfg.listen
                    );
                    new.listen = self.cfg.listen;
                }
            }
        }
        // Backends: kept ones keep their health and pools, new ones start in
        // rotation, removed ones drain.
        let mut added = Vec::new();
        for s in &new.servers {
            match self
                .backends
                .iter()
                .position(|b| b.addr == s.addr && !b.removed)
            {
                Some(i) => {
                    let b = &mut self.backends[i];
                    if b.weight != s.weight {
                        changes.push(format!("{} weight {} -> {}", s.addr, b.weight, s.weight));
                        b.weight = s.weight;
                    }
                    b.health.set_limits(new.max_fails, new.fail_window);
                    self.update_health(i);
                }
                None => {
                    // A backend removed earlier comes back under its old id
                    // (one series per address in /metrics), with fresh health.
                    let i = match self.backends.iter().position(|b| b.addr == s.addr) {
                        Some(i) => {
                            // Its connections, requests and probes still in
                            // flight stay counted; only health starts over.
                            let old =
                                std::mem::replace(&mut self.backends[i], Backend::new(s, &new));
                            let b = &mut self.backends[i];
                            b.pool = old.pool;
                            b.in_flight = old.in_flight;
                            b.probes = old.probes;
                            b.probe_timer = old.probe_timer;
                            i
                        }
                        None => {
                            self.backends.push(Backend::new(s, &new));
                            self.backends.len() - 1
                        }
                    };
                    if self.backends[i].probe_timer.is_none() {
                        self.schedule_probe(i, new.health_check_interval);
                    }
                    added.push(s.addr.to_string());
                }
            }
        }
        let mut removed = Vec::new();
        let mut close = Vec::new();
        for b in self.backends.iter_mut().filter(|b| !b.removed) {
            if !new.servers.iter().any(|s| s.addr == b.addr) {
                b.removed = true;
                close.append(&mut b.pool);
                removed.push(b.addr.to_string());
            }
        }
        for bk in close {
            self.close_entry(bk);
        }
        if !added.is_empty() {
            changes.push(format!("backends added [{}]", added.join(", ")));
        }
        if !removed.is_empty() {
            changes.push(format!("backends removed [{}]", removed.join(", ")));
        }
        self.loads
            .resize(self.backends.len(), BackendLoad::default());
        if self.metrics.backend_count() < self.backends.len() {
            let old = self.metrics.backend_count();
            let ids: Vec<Option<BackendId>> = (0..self.backends.len())
                .map(|i| (i < old).then_some(i))
                .collect();
            self.metrics.remap_backends(&ids);
        }
        if new.strategy != self.cfg.strategy {
            changes.push(format!(
                "strategy {:?} -> {:?}",
                self.cfg.strategy, new.strategy
            ));
            self.strategy = balance::from_kind(new.strategy, self.seed, self.backends.len());
        }
        if (new.retry_budget_percent, new.retry_budget_min_per_sec)
            != (
                self.cfg.retry_budget_percent,
                self.cfg.retry_budget_min_per_sec,
            )
        {
            self.budget = RetryBudget::new(new.retry_budget_percent, new.retry_budget_min_per_sec);
        }
        if let Some(sink) = access {
            if let Some(old) = &mut self.access {
                old.flush();
            }
            self.access = sink;
            changes.push("access log reopened".into());
        }
        if let Some(listener) = admin {
            match self.swap_in(listener, ADMIN) {
                Ok(()) => match self.admin_addr() {
                    Some(addr) => changes.push(format!("admin listening on {addr}")),
                    None => changes.push("admin listener closed".into()),
                },
                Err(e) => {
                    let name = |a: Option<SocketAddr>| a.map_or("off".into(), |a| a.to_string());
                    error!(
                        "cannot listen on {} (admin): {e}; staying on {}",
                        name(new.admin_listen),
                        name(self.cfg.admin_listen)
                    );
                    new.admin_listen = self.cfg.admin_listen;
                }
            }
        }
        let settings_changed = {
            let mut a = self.cfg.clone();
            let mut b = new.clone();
            a.servers.clear();
            b.servers.clear();
            // Reported above, each in its own words.
            a.listen = b.listen;
            a.strategy = b.strategy;
            a.admin_listen = b.admin_listen;
            a.access_log = b.access_log.clone();
            a.access_log_format = b.access_log_format;
            a != b
        };
        if settings_changed {
            changes.push("settings updated".into());
        }
        // A shorter interval applies now, not after a probe scheduled at the
        // old one (which could be hours away); a longer one from the next.
        let soonest = self.now.after(new.health_check_interval);
        for i in 0..self.backends.len() {
            if let Some((due, id)) = self.backends[i].probe_timer
                && due > soonest
                && !self.backends[i].removed
            {
                self.wheel.cancel(id);
                self.schedule_probe(i, new.health_check_interval);
            }
        }
        self.cfg = new;
        Ok(if changes.is_empty() {
            "no change".into()
        } else {
            changes.join("; ")
        })
    }

    /// Puts `fresh` in place of the listener `token` names (the main
    /// listener or the admin one), or closes that listener for `None`. A new
    /// listener is registered before the old one is closed, so there is no
    /// instant without one; if it cannot be registered, the old one stays.
    fn swap_in(&mut self, fresh: Option<TcpListener>, token: Token) -> io::Result<()> {
        let registry = self.poll.registry();
        let mut fresh = fresh;
        if let Some(l) = &mut fresh {
            registry.register(l, token, Interest::READABLE)?;
        }
        let slot = if token == ADMIN {
            &mut self.admin
        } else {
            &mut self.listener
        };
        if let Some(mut old) = std::mem::replace(slot, fresh) {
            let _ = registry.deregister(&mut old);
        }
        Ok(())
    }

    /// Starts a graceful shutdown: stop accepting, answer what is in flight
    /// with `Connection: close`, close idle connections, and stop when none
    /// are left or `shutdown_timeout` has passed. A second call stops now.
    pub fn shutdown(&mut self) {
        if self.draining.is_some() {
            warn!(
                "second stop signal: exiting now with {} connections open",
                self.clients
            );
            self.stopped = true;
            return;
        }
        let deadline = self.now.after(self.cfg.shutdown_timeout);
        self.draining = Some(deadline);
        self.wheel.insert(deadline, SHUTDOWN_TIMER);
        if let Some(mut l) = self.listener.take() {
            // Closed, not just deregistered: new clients are refused at
            // once instead of waiting in a backlog nobody accepts from.
            let _ = self.poll.registry().deregister(&mut l);
        }
        self.accept_pending = false;
        info!(
            "shutting down: finishing {} connections (at most {:?})",
            self.clients, self.cfg.shutdown_timeout
        );
        let idle: Vec<usize> = self
            .conns
            .iter()
            .filter_map(|(k, e)| match e {
                Entry::Client(c) if c.ex.is_none() && c.outbuf.is_empty() && c.generation != 0 => {
                    Some(k)
                }
                _ => None,
            })
            .collect();
        for ck in idle {
            self.close_client(ck);
        }
        let busy: Vec<usize> = self
            .conns
            .iter()
            .filter_map(|(k, e)| matches!(e, Entry::Client(c) if c.generation != 0).then_some(k))
            .collect();
        for ck in busy {
            if let Some(Entry::Client(c)) = self.conns.get_mut(ck)
                && c.ex.is_none()
            {
                c.phase = ClientPhase::Closing;
            }
            self.mark_dirty(ck);
        }
    }

    /// One turn of the loop: poll, dispatch, drive, fire timers, close.
    fn turn(&mut self, events: &mut Events, expired: &mut Vec<u64>) -> Result<(), ReactorError> {
        let timeout = if self.dirty.is_empty() {
            let mut next = self.wheel.next_deadline();
            if self.trim_pending() {
                next = Some(next.map_or(self.next_trim, |d| d.min(self.next_trim)));
            }
            next.map(|d| self.now.until(d).max(Duration::from_millis(1)))
        } else {
            Some(Duration::ZERO)
        };
        match self.poll.poll(events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                // A signal cut the wait short (always so after SIGSTOP and
                // SIGCONT) before readiness was collected. Collect it now,
                // without waiting: after a long stop the timers below are
                // due, and must not judge a backend whose answer has been
                // waiting in its socket.
                match self.poll.poll(events, Some(Duration::ZERO)) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
                    Err(e) => return Err(ReactorError::Poll(e)),
                }
            }
            Err(e) => return Err(ReactorError::Poll(e)),
        }
        self.now = self.clock.now();
        self.precise = self.clock.elapsed();
        self.date.refresh(self.precise, || self.clock.wall());
        self.metrics.set_now(self.now);
        for ev in events.iter() {
            let token = ev.token();
            if token == LISTENER {
                self.accept_pending = self.draining.is_none();
                continue;
            }
            if token == SIGNALS {
                self.on_signals();
                continue;
            }
            if token == ADMIN {
                self.accept_admin();
                continue;
            }
            if token == RELOADED {
                self.finish_reload();
                continue;
            }
            let key = token.0 & 0xFFFF_FFFF;
            let generation = (token.0 >> 32) as u32;
            let readable = ev.is_readable() || ev.is_read_closed() || ev.is_error();
            let writable = ev.is_writable() || ev.is_write_closed() || ev.is_error();
            let Some(entry) = self.conns.get_mut(key) else {
                continue;
            };
            if entry.generation() != generation {
                continue;
            }
            let rd = match entry {
                Entry::Client(c) => &mut c.rd,
                Entry::Backend(b) => &mut b.rd,
                Entry::Probe(p) => &mut p.rd,
                Entry::Admin(a) => &mut a.rd,
            };
            rd.readable |= readable;
            rd.writable |= writable;
            rd.hup |= ev.is_read_closed() || ev.is_error();
            match entry {
                Entry::Client(_) => self.mark_dirty(key),
                Entry::Backend(b) => match b.client {
                    Some(ck) => self.mark_dirty(ck),
                    None => self.drive_idle_backend(key),
                },
                Entry::Probe(_) => self.drive_probe(key),
                Entry::Admin(_) => self.drive_admin(key),
            }
        }
        if self.accept_pending && !self.accept_paused {
            self.accept();
        }
        self.drive_dirty();
        self.fire_timers(expired);
        self.drive_dirty();
        self.reap();
        self.size_pools();
        if let Some(a) = &mut self.access {
            let dropped = a.flush();
            if dropped > 0 {
                self.metrics.on_log_dropped(dropped);
            }
        }
        Ok(())
    }

    /// Whether the pools hold more than a trim keeps: then the loop wakes
    /// for the trim even when nothing else is due.
    fn trim_pending(&self) -> bool {
        self.bufs.holds_more_than(KEEP_IDLE_BUFFERS)
            || self.spare_exchanges.len() > KEEP_IDLE_BUFFERS
    }

    /// Lets the buffer pool keep as many idle buffers as the open
    /// connections could hold at once (two each), so that waves of
    /// concurrent requests reuse buffers instead of freeing and allocating
    /// them again; when connections close, the excess is freed. Once every
    /// `POOL_TRIM_INTERVAL`, buffers and exchanges that no request needed
    /// meanwhile are freed, so that connections left idle after a burst
    /// cost their slots and not the burst's buffers.
    fn size_pools(&mut self) {
        self.bufs
            .set_max_free((2 * self.conns.len()).max(MAX_IDLE_BUFFERS));
        self.spare_exchanges
            .set_max(MAX_IDLE_EXCHANGES.max(self.conns.len()));
        if self.now >= self.next_trim {
            let held = self
                .conns
                .iter()
                .map(|(_, e)| match e {
                    Entry::Client(c) => wide_count(&c.inbuf, &c.outbuf),
                    Entry::Backend(b) => wide_count(&b.inbuf, &b.outbuf),
                    Entry::Probe(_) | Entry::Admin(_) => 0,
                })
                .sum();
            self.bufs.recount_wide(held);
            let freed = self.bufs.trim(KEEP_IDLE_BUFFERS);
            self.spare_exchanges.trim(KEEP_IDLE_BUFFERS);
            self.next_trim = self.now.after(self.trim_interval);
            if freed >= KEEP_IDLE_BUFFERS {
                release_freed_memory();
            }
        }
    }

    fn on_signals(&mut self) {
        // Counted, not listed: a burst of one signal must not crowd out
        // another (300 SIGUSR1 used to hide the SIGTERM after them). A
        // second stop signal stops at once, so stops count up to two.
        let (mut stops, mut reload, mut reopen, mut unsupported) = (0u8, false, false, false);
        if let Some(pipe) = &self.signals {
            pipe.drain(|s| match s {
                Signal::Terminate => stops = stops.saturating_add(1).min(2),
                Signal::Reload => reload = true,
                Signal::ReopenLogs => reopen = true,
                Signal::Unsupported => unsupported = true,
            });
        }
        if reopen && let Some(a) = &mut self.access {
            a.reopen();
        }
        if unsupported {
            warn!("SIGUSR2 ignored: ekilibri has no binary upgrade; send SIGHUP to reload");
        }
        if reload {
            self.reload();
        }
        for _ in 0..stops {
            self.shutdown();
        }
    }

    /// An accept failed in a way that retrying at once would repeat: the
    /// accept timer tries again after `ACCEPT_BACKOFF` (the listeners are
    /// edge-triggered, so nothing else would).
    fn accept_after_backoff(&mut self, what: &str, e: &io::Error) {
        warn!("{what}: {e}; retrying in {ACCEPT_BACKOFF:?}");
        self.wheel
            .insert(self.now.after(ACCEPT_BACKOFF), ACCEPT_TIMER);
    }

    fn accept_admin(&mut self) {
        let mut failures = 0;
        loop {
            let Some(listener) = &self.admin else { return };
            let (mut sock, _) = match listener.accept() {
                Ok(c) => c,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if is_local_shortage(&e) || failures >= MAX_ACCEPT_FAILURES => {
                    // The edge is spent: nothing wakes the listener again
                    // until another scraper connects, so retry on a timer.
                    self.admin_retry = true;
                    return self.accept_after_backoff("admin accept", &e);
                }
                Err(e) => {
                    // One connection's trouble (reset before it was taken).
                    debug!("admin accept: {e}");
                    failures += 1;
                    continue;
                }
            };
            if self.admins >= MAX_ADMIN_CONNECTIONS {
                // A scraper that holds connections must not use up the
                // descriptors clients and backends need: closed at once.
                debug!("admin connection refused: {MAX_ADMIN_CONNECTIONS} open");
                continue;
            }
            let Ok((key, generation)) = self.register(&mut sock) else {
                continue;
            };
            self.admins += 1;
            let since = self.now;
            self.insert_at(
                key,
                Entry::Admin(AdminConn {
                    sock,
                    generation,
                    rd: Readiness::default(),
                    input: Vec::with_capacity(1024),
                    output: Vec::new(),
                    written: 0,
                    since,
                    timer: None,
                }),
            );
            self.rearm(key);
        }
    }

    /// Reads one admin request, renders the answer, writes it, closes.
    fn drive_admin(&mut self, key: usize) {
        let Some(Entry::Admin(a)) = self.conns.get_mut(key) else {
            return;
        };
        if a.output.is_empty() {
            let mut chunk = [0u8; 2048];
            while a.rd.readable && a.input.len() < ADMIN_MAX_HEAD {
                match std::io::Read::read(&mut a.sock, &mut chunk) {
                    Ok(0) => {
                        a.rd.readable = false;
                        a.rd.read_eof = true;
                    }
                    Ok(n) => a.input.extend_from_slice(&chunk[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => a.rd.readable = false,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => return self.close_entry(key),
                }
            }
            let Some(end) = a.input.windows(4).position(|w| w == b"\r\n\r\n") else {
                if a.rd.read_eof || a.input.len() >= ADMIN_MAX_HEAD {
                    self.close_entry(key);
                }
                return;
            };
            let head = std::mem::take(&mut a.input);
            let response = self.admin_response(&head[..end + 4]);
            if let Some(Entry::Admin(a)) = self.conns.get_mut(key) {
                a.output = response;
            }
        }
        let Some(Entry::Admin(a)) = self.conns.get_mut(key) else {
            return;
        };
        while a.rd.writable && a.written < a.output.len() {
            match std::io::Write::write(&mut a.sock, &a.output[a.written..]) {
                Ok(n) => a.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => a.rd.writable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return self.close_entry(key),
            }
        }
        if a.written == a.output.len() {
            let _ = a.sock.shutdown(Shutdown::Write);
            self.close_entry(key);
        }
    }

    /// The complete HTTP response for one admin request line.
    fn admin_response(&self, head: &[u8]) -> Vec<u8> {
        // The same parser as for proxied requests; anything it refuses
        // (or a head with more fields than a scraper sends) is a 400.
        let mut fields = [httparse::EMPTY_HEADER; 64];
        let mut req = httparse::Request::new(&mut fields);
        let well_formed = matches!(req.parse(head), Ok(httparse::Status::Complete(_)));
        let method = req.method.unwrap_or("").as_bytes();
        let target = req.path.unwrap_or("").as_bytes();
        let path = target.split(|&b| b == b'?').next().unwrap_or(b"");
        let mut body = Vec::new();
        let views = self.backend_views();
        let (status, content_type) = match (method, path) {
            _ if !well_formed => {
                body.extend_from_slice(b"bad request\n");
                ("400 Bad Request", "text/plain")
            }
            (b"GET" | b"HEAD", b"/metrics") => {
                crate::ops::prometheus::render(&self.metrics, &views, &mut body);
                ("200 OK", crate::ops::prometheus::CONTENT_TYPE)
            }
            (b"GET" | b"HEAD", b"/status.json") => {
                crate::ops::status::render_json(&self.metrics, &views, self.now, &mut body);
                ("200 OK", crate::ops::status::CONTENT_TYPE_JSON)
            }
            (b"GET" | b"HEAD", b"/config") => {
                body.extend_from_slice(crate::config::describe::render(&self.cfg).as_bytes());
                ("200 OK", "text/plain; charset=utf-8")
            }
            (b"GET" | b"HEAD", b"/status" | b"/") => {
                crate::ops::status::render_html(&self.metrics, &views, self.now, &mut body);
                ("200 OK", crate::ops::status::CONTENT_TYPE_HTML)
            }
            (b"GET" | b"HEAD", _) => {
                body.extend_from_slice(
                    b"not found: try /metrics, /status, /status.json or /config\n",
                );
                ("404 Not Found", "text/plain")
            }
            _ => {
                body.extend_from_slice(b"method not allowed\n");
                ("405 Method Not Allowed", "text/plain")
            }
        };
        // RFC 9110 §15.5.6: a 405 lists the methods the target takes.
        let allow = if status.starts_with("405") {
            "Allow: GET, HEAD\r\n"
        } else {
            ""
        };
        let mut out = format!(
            "HTTP/1.1 {status}\r\nServer: {ADMIN_SERVER}\r\nDate: {}\r\n{allow}Content-Type: {content_type}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
            String::from_utf8_lossy(self.date.text()),
            body.len()
        )
        .into_bytes();
        if method != b"HEAD" {
            out.extend_from_slice(&body);
        }
        out
    }

    /// What the admin pages show of each backend, by `BackendId`.
    fn backend_views(&self) -> Vec<crate::ops::BackendView> {
        self.backends
            .iter()
            .map(|b| crate::ops::BackendView {
                addr: b.addr,
                in_rotation: b.health.in_rotation() && !b.removed,
                in_flight: b.in_flight,
                weight: b.weight,
            })
            .collect()
    }

    fn mark_dirty(&mut self, ck: usize) {
        if let Some(Entry::Client(c)) = self.conns.get_mut(ck)
            && !c.dirty
        {
            c.dirty = true;
            self.dirty.push(ck);
        }
    }

    fn drive_dirty(&mut self) {
        let spare = std::mem::take(&mut self.dirty_spare);
        let mut batch = std::mem::replace(&mut self.dirty, spare);
        for &ck in &batch {
            if let Some(Entry::Client(c)) = self.conns.get_mut(ck) {
                c.dirty = false;
                self.drive(ck);
            }
        }
        batch.clear();
        self.dirty_spare = batch;
    }

    fn token(key: usize, generation: u32) -> Token {
        Token(key | ((generation as usize) << 32))
    }

    /// Registers `sock` (readable and writable, edge-triggered) under the
    /// next free slab key and a new generation. The caller inserts its entry
    /// right away, so the entry lands at that key.
    fn register(&mut self, sock: &mut TcpStream) -> io::Result<(usize, u32)> {
        let generation = self.take_gen();
        let key = self.conns.vacant_key();
        self.poll.registry().register(
            sock,
            Self::token(key, generation),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        Ok((key, generation))
    }

    /// Stores `entry` at the key [`Reactor::register`] returned.
    fn insert_at(&mut self, key: usize, entry: Entry) {
        let at = self.conns.insert(entry);
        debug_assert_eq!(at, key);
    }

    fn take_gen(&mut self) -> u32 {
        let g = self.next_gen;
        self.next_gen = next_generation(g);
        g
    }

    // ------------------------------------------------------------ accept

    fn accept(&mut self) {
        let mut failures = 0;
        while self.can_accept() {
            let Some(listener) = &self.listener else {
                self.accept_pending = false;
                return;
            };
            match listener.accept() {
                Ok((sock, peer)) => self.admit(sock, peer),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.accept_pending = false;
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if is_local_shortage(&e) || failures >= MAX_ACCEPT_FAILURES => {
                    // Descriptors or kernel memory short, or an error that
                    // keeps coming: retrying at once would only spin.
                    self.accept_paused = true;
                    return self.accept_after_backoff("accept", &e);
                }
                Err(e) => {
                    // One connection's trouble (e.g. reset before it was
                    // taken): the next one may be fine.
                    debug!("accept: {e}");
                    failures += 1;
                }
            }
        }
        // At the connection limit: accept again once a client closes (no
        // new edge will come for connections already queued).
        self.accept_pending = true;
    }

    fn admit(&mut self, mut sock: TcpStream, peer: SocketAddr) {
        let (key, generation) = match self.register(&mut sock) {
            Ok(k) => k,
            Err(e) => {
                warn!("register client {peer}: {e}");
                return;
            }
        };
        let now = self.now;
        self.insert_at(
            key,
            Entry::Client(ClientConn {
                sock,
                generation,
                peer,
                rd: Readiness::default(),
                inbuf: Buf::empty(),
                outbuf: Buf::empty(),
                scan: HeadScan::default(),
                phase: ClientPhase::Open,
                backend: None,
                ex: None,
                head_since: None,
                idle_since: now,
                last_in: now,
                last_out: now,
                timer: None,
                dirty: false,
                clean_close: false,
                reset_on_close: false,
                nagle: Nagle::Unwritten,
            }),
        );
        self.clients += 1;
        self.metrics.on_accept();
        self.rearm(key);
    }

    // ------------------------------------------------------------ client driving

    /// Runs a client connection (and its backend connection) until nothing
    /// more can be done, or its budget for this turn is used.
    fn drive(&mut self, ck: usize) {
        let start = self.bytes_read;
        for _ in 0..DRIVE_BUDGET {
            let step = self.step(ck);
            match step {
                Step::Idle => {
                    self.reclaim_idle(ck);
                    self.rearm(ck);
                    return;
                }
                Step::Progress if self.bytes_read - start >= DRIVE_BYTES => break,
                Step::Progress => {}
                Step::NewRequest(len) => self.start_exchange(ck, len),
                Step::Reject(e) => self.reject(ck, e),
                Step::Fail(e) => self.fail_exchange(ck, e),
                Step::Done => self.finish_exchange(ck),
                Step::Retry => {
                    if !self.retry(ck, Carry::Head) {
                        self.fail_exchange(ck, ProxyError::UpstreamClosed);
                    }
                }
                Step::NoResponse => self.no_response(ck),
                Step::Close => {
                    self.close_client(ck);
                    return;
                }
            }
        }
        // Budget used while still busy: continue next turn, after others.
        self.mark_dirty(ck);
        self.rearm(ck);
    }

    /// Gives the buffers of a client between requests back to the pool.
    fn reclaim_idle(&mut self, ck: usize) {
        if let Some(Entry::Client(c)) = self.conns.get_mut(ck)
            && c.ex.is_none()
        {
            self.bufs.reclaim(&mut c.inbuf);
            self.bufs.reclaim(&mut c.outbuf);
        }
    }

    /// One round of work on a client connection.
    fn step(&mut self, ck: usize) -> Step {
        let now = self.now;
        let bk = match self.conns.get(ck) {
            Some(Entry::Client(c)) => c.backend,
            _ => return Step::Idle,
        };
        let (c, mut b) = match bk.and_then(|bk| self.conns.get2_mut(ck, bk)) {
            Some((Entry::Client(c), Entry::Backend(b))) => (c, Some(b)),
            _ => match self.conns.get_mut(ck) {
                Some(Entry::Client(c)) => (c, None),
                _ => return Step::Idle,
            },
        };
        let mut progress = false;

        if let ClientPhase::Lingering(_) = c.phase {
            return match discard(&mut c.sock, &mut c.rd) {
                IoOutcome::Ok => Step::Idle,
                _ => Step::Close,
            };
        }

        // 1. Client bytes in.
        if c.phase == ClientPhase::Open && c.rd.readable {
            self.bufs.fill(&mut c.inbuf);
        }
        // A read that fills a buffer: more may be waiting. While a large
        // body streams and its destination keeps up (its socket took all
        // it was given), the source and destination buffers widen to
        // 64 KiB: a quarter of the reads and writes, and larger segments
        // (`BufPool::widen_pair`, which also caps how many are wide). They
        // go back to the pool when the connection is idle.
        let mut client_filled = false;
        if c.phase == ClientPhase::Open && c.rd.readable && c.inbuf.space() > 0 {
            let (outcome, n) = read_into(&mut c.sock, &mut c.inbuf, &mut c.rd);
            if n > 0 {
                progress = true;
                c.last_in = now;
                self.bytes_read += n as u64;
                self.metrics.on_bytes(n as u64, 0);
                client_filled = c.inbuf.is_full();
            }
            if let IoOutcome::Error(_) = outcome {
                return Step::Close;
            }
        }

        // 2. Between exchanges: look for the next request head, once the
        // client has taken the last response (a pipelining client that does
        // not read must not pile up answers ekilibri makes itself, such as
        // 502s, in its buffer; what it sends waits in the socket).
        if c.ex.is_none() && c.phase == ClientPhase::Open && c.outbuf.is_empty() {
            if c.scan.is_fresh() {
                // Empty lines before a request are ignored (RFC 9112 §2.2),
                // any number of them, as nginx does; they do not start the
                // header timer (a client may send one after a body). A lone
                // CR waits for what follows it.
                c.inbuf.consume(head::leading_empty_lines(c.inbuf.data()));
                if c.inbuf.data() == b"\r" && !c.rd.read_eof {
                    return Step::Idle;
                }
            }
            if !c.inbuf.is_empty() {
                c.head_since.get_or_insert(now);
                match c.scan.find_end(c.inbuf.data()) {
                    Some(len) => return Step::NewRequest(len),
                    None => {
                        if let Err(e) = check_partial_request(c.inbuf.data()) {
                            return Step::Reject(e);
                        }
                        if c.inbuf.is_full() {
                            if c.inbuf.capacity() < LARGE_BUF_SIZE {
                                c.inbuf.grow_to(LARGE_BUF_SIZE);
                                return Step::Progress;
                            }
                            return Step::Reject(HeadError::HeadersTooLarge);
                        }
                    }
                }
            }
            if c.rd.read_eof {
                // The client is done (a partial head is dropped).
                c.phase = ClientPhase::Closing;
                return Step::Progress;
            }
        }

        // 3. The exchange: request towards the backend, response back.
        if let (Some(ex), Some(b)) = (c.ex.as_mut(), b.as_deref_mut()) {
            let mut backend_filled = false;
            if b.phase == BackendPhase::Connecting && (b.rd.writable || b.rd.readable) {
                match connect_result(&b.sock) {
                    Ok(true) => {
                        b.phase = BackendPhase::Ready;
                        b.last_out = now;
                        b.last_in = now;
                        progress = true;
                    }
                    Ok(false) => {
                        b.rd.writable = false;
                        b.rd.readable = false;
                    }
                    Err(_) => return Step::Fail(ProxyError::Connect(FailureKind::ConnectRefused)),
                }
            }
            if ex.head_held == 0 && !b.send_failed {
                match ex.req_body.pump(&mut c.inbuf, &mut b.outbuf) {
                    Ok(p) => progress |= p,
                    Err(_) => return Step::Fail(ProxyError::BadRequestBody),
                }
                if c.rd.read_eof && !ex.req_body.input_done() && c.inbuf.is_empty() {
                    // The client went away in the middle of its body. Once
                    // the final response has started (an early 413, say)
                    // the client may only have stopped sending (a
                    // half-close): the response is relayed to its end,
                    // then the connection closes, the backend one unpooled.
                    // The backend is told no more body comes, so one that
                    // still reads it (an echo) can end its answer.
                    if !ex.final_started {
                        return Step::Close;
                    }
                    if matches!(ex.resp, ResponsePhase::Done(_)) {
                        // All of the answer is relayed (or queued): the
                        // exchange ends, and the connection closes once
                        // the client has it (the body is unfinished).
                        return Step::Done;
                    }
                    if b.outbuf.is_empty() && !b.write_shut {
                        let _ = b.sock.shutdown(Shutdown::Write);
                        b.write_shut = true;
                        // The rest of the answer is due from now.
                        b.last_out = now;
                    }
                }
            } else if ex.head_held == 0 && discards_rest(ex, b) {
                // The backend went away after an answer that promised the
                // client its connection: the rest of the body is read and
                // dropped here, so that the promise holds. The backend
                // no longer has the exchange in flight (`LeastConnections`).
                if ex.discard_since.is_none() {
                    ex.discard_since = Some(now);
                    self.backends[ex.backend].in_flight -= 1;
                }
                match ex.req_body.pump(&mut c.inbuf, &mut b.outbuf) {
                    Ok(p) => progress |= p,
                    Err(_) => return Step::Fail(ProxyError::BadRequestBody),
                }
                b.outbuf.clear();
                if c.rd.read_eof && !ex.req_body.input_done() && c.inbuf.is_empty() {
                    return Step::Done;
                }
            }
            if b.phase == BackendPhase::Ready {
                if b.rd.writable && !b.outbuf.is_empty() && !b.send_failed {
                    let (outcome, n) = write_from(&mut b.sock, &mut b.outbuf, &mut b.rd);
                    if n > 0 {
                        progress = true;
                        b.last_out = now;
                    }
                    if let IoOutcome::Error(_) = outcome {
                        // The backend stopped reading, perhaps after a
                        // complete early answer that is still in the
                        // socket (a reset does not destroy it): read
                        // before judging. The request is not sent further.
                        b.send_failed = true;
                        b.outbuf.clear();
                        b.rd.readable = true;
                        progress = true;
                    }
                }
                if ex.sent_at.is_none() && ex.req_body.is_done() && b.outbuf.is_empty() {
                    ex.sent_at = Some(now);
                }
                if b.rd.readable && b.inbuf.space() > 0 {
                    let (outcome, n) = read_into(&mut b.sock, &mut b.inbuf, &mut b.rd);
                    if n > 0 {
                        progress = true;
                        b.got_bytes = true;
                        b.last_in = now;
                        self.bytes_read += n as u64;
                        backend_filled = b.inbuf.is_full();
                    }
                    if let IoOutcome::Error(_) = outcome {
                        if !b.inbuf.is_empty() {
                            // A reset after bytes that are still to relay:
                            // relay them; the end-of-input checks below
                            // judge whether the response was complete (a
                            // close-delimited body cannot be: its end was
                            // lost, not sent).
                            b.rd.read_eof = true;
                            b.rd.readable = false;
                            b.reset = true;
                        } else if owes_body_after_keep_alive_answer(ex) {
                            // A reset after an answer that promised the
                            // client its connection: the rest of the body
                            // is dropped here (`discards_rest`), as after
                            // a failed write.
                            b.send_failed = true;
                            b.outbuf.clear();
                            b.rd.read_eof = true;
                            b.rd.readable = false;
                            progress = true;
                        } else if ex.resp_started {
                            return Step::Fail(ProxyError::UpstreamClosed);
                        } else {
                            return upstream_broken(ex, b);
                        }
                    }
                }
                // After a failed write nothing more comes once the socket
                // is drained (the backend reset the connection).
                if b.send_failed
                    && !b.rd.readable
                    && !b.rd.read_eof
                    && b.inbuf.is_empty()
                    && !matches!(ex.resp, ResponsePhase::Done(_))
                {
                    return upstream_broken(ex, b);
                }
            }
            let draining = self.draining.is_some();
            match relay_response(&mut c.inbuf, &mut c.outbuf, ex, b, draining, &self.date) {
                Ok(p) => progress |= p,
                Err(e) => return Step::Fail(e),
            }
            let tunnel = matches!(ex.resp, ResponsePhase::Tunnel { .. });
            let up = tunnel
                || (ex.head_held == 0
                    && !b.send_failed
                    && ex.req_body.expects_more_than(BUF_SIZE as u64));
            if client_filled && up && b.rd.writable {
                self.bufs.widen_pair(&mut c.inbuf, &mut b.outbuf);
            }
            let down = tunnel
                || matches!(&ex.resp, ResponsePhase::Body(_, relay)
                    if relay.expects_more_than(BUF_SIZE as u64));
            if backend_filled && down && c.rd.writable {
                self.bufs.widen_pair(&mut b.inbuf, &mut c.outbuf);
            }
            if !ex.observed && !matches!(ex.resp, ResponsePhase::Head(_)) {
                ex.observed = true;
                let status = match &ex.resp {
                    ResponsePhase::Body(h, _) | ResponsePhase::Done(h) => h.status,
                    _ => 101,
                };
                let rtt = self.precise.saturating_sub(ex.started_at);
                ex.upstream_time = Some(rtt);
                self.metrics.on_response(ex.backend, status, rtt);
                self.strategy
                    .observe(ex.backend, self.precise.saturating_sub(ex.started_at), now);
            }
            if let ResponsePhase::Tunnel { up_done, down_done } = &mut ex.resp {
                progress |= relay_tunnel(
                    (&mut c.inbuf, &mut c.outbuf, &c.sock, &c.rd),
                    b,
                    (up_done, down_done),
                    &mut ex.resp_bytes,
                );
                if *up_done && *down_done {
                    return Step::Close;
                }
            } else if b.rd.read_eof && !matches!(ex.resp, ResponsePhase::Done(_)) {
                match &mut ex.resp {
                    // Judge the EOF once the waiting head is parsed.
                    ResponsePhase::Head(_) if waits_for_client(&b.inbuf, &c.outbuf) => {}
                    ResponsePhase::Head(_) => {
                        if !b.got_bytes && !ex.resp_started {
                            return upstream_broken(ex, b);
                        }
                        return Step::Fail(ProxyError::UpstreamClosed);
                    }
                    ResponsePhase::Body(_, relay) => {
                        if b.reset {
                            relay.on_reset();
                        } else if relay.on_eof().is_err() {
                            return Step::Fail(ProxyError::UpstreamClosed);
                        }
                        match relay_response(
                            &mut c.inbuf,
                            &mut c.outbuf,
                            ex,
                            b,
                            self.draining.is_some(),
                            &self.date,
                        ) {
                            Ok(p) => progress |= p,
                            Err(e) => return Step::Fail(e),
                        }
                    }
                    ResponsePhase::Done(_) | ResponsePhase::Tunnel { .. } => {}
                }
            }
        }

        // 4. Client bytes out.
        if c.rd.writable && !c.outbuf.is_empty() {
            if c.nagle == Nagle::Written {
                let _ = c.sock.set_nodelay(true);
                c.nagle = Nagle::Off;
            }
            let (outcome, n) = write_from(&mut c.sock, &mut c.outbuf, &mut c.rd);
            if n > 0 {
                if c.nagle == Nagle::Unwritten {
                    c.nagle = Nagle::Written;
                }
                progress = true;
                c.last_out = now;
                self.metrics.on_bytes(0, n as u64);
            }
            if let IoOutcome::Error(_) = outcome {
                return Step::Close;
            }
        }

        // 5. Transitions.
        if let Some(ex) = &c.ex
            && let ResponsePhase::Done(head) = &ex.resp
        {
            // A response that ends before the request body: if it told
            // the client the connection stays open (a success from a
            // backend that keeps its connection, after a relayed 100
            // Continue if one was asked for), the client sends the rest of
            // the body, which is forwarded before the connection carries
            // on; otherwise the exchange ends here and the connection
            // closes, as the response said.
            let body_follows = head.client_keep_alive;
            let body_missing = !ex.req_body.is_done();
            // (Not while shutting down: the connection closes anyway.)
            let discarding =
                self.draining.is_none() && b.as_ref().is_some_and(|b| discards_rest(ex, b));
            let request_over =
                ex.sent_at.is_some() || (b.as_ref().is_none_or(|b| b.send_failed) && !discarding);
            if request_over || (body_missing && !body_follows) {
                return Step::Done;
            }
        }
        if c.phase == ClientPhase::Closing && c.ex.is_none() && c.outbuf.is_empty() {
            if c.reset_on_close {
                // Everything relayed is written; `close_client` resets the
                // connection (dropping what the kernel has not sent yet), so
                // the client knows the body it has is not all there is.
                return Step::Close;
            }
            // Nothing unread and the last request was read in full: a plain
            // close sends FIN. Otherwise half-close and drain what the client
            // still sends, so that the close does not turn into a reset that
            // destroys the response (lingering close).
            if c.rd.read_eof || (c.clean_close && c.inbuf.is_empty() && !c.rd.readable) {
                return Step::Close;
            }
            let _ = c.sock.shutdown(Shutdown::Write);
            c.phase = ClientPhase::Lingering(now.after(LINGER));
            return Step::Progress;
        }
        if progress { Step::Progress } else { Step::Idle }
    }

    // ------------------------------------------------------------ exchanges

    fn start_exchange(&mut self, ck: usize, len: usize) {
        let Some(Entry::Client(c)) = self.conns.get_mut(ck) else {
            return;
        };
        c.scan.reset();
        // `head_since` stays until the head is answered or forwarded: the
        // access log's `total_time` of an answer given here runs from it.
        c.clean_close = false;
        let forwarded = self.cfg.forwarded_headers;
        let head = &c.inbuf.data()[..len];
        let req = match rewrite_into(&mut self.scratch, head, c.peer, "", forwarded) {
            Ok(req) => req,
            Err(e) => return self.reject(ck, e),
        };
        // A backend is picked only for a request that goes to one (not for
        // a rejected one, nor one answered here: round robin moves on only
        // when a backend gets a request).
        let picked = if req.final_hop {
            None
        } else {
            // (Only such requests count towards the retry budget.)
            self.budget.on_request(self.now);
            self.pick(&Tried::default())
        };
        let Some(Entry::Client(c)) = self.conns.get_mut(ck) else {
            return;
        };
        if req.default_host
            && let Some(b) = picked
        {
            // An HTTP/1.0 request without Host: it names the backend.
            let host = self.backends[b].host.as_str();
            let head = &c.inbuf.data()[..len];
            if let Err(e) = rewrite_into(&mut self.scratch, head, c.peer, host, forwarded) {
                return self.reject(ck, e);
            }
        }
        if req.final_hop {
            // TRACE or OPTIONS with Max-Forwards: 0, answered here; a body
            // (if any) is never read.
            let keep = req.keep_alive && req.framing == Framing::None && self.draining.is_none();
            log_own(&mut self.access, c, &c.inbuf.data()[..len], 200, self.now);
            c.head_since = None;
            self.bufs.fill(&mut c.outbuf);
            canned::final_hop(
                req.method == Method::Trace,
                &c.inbuf.data()[..len],
                canned::Persistence::of(keep, req.version),
                self.date.text(),
                &mut c.outbuf,
            );
            c.inbuf.consume(len);
            if !keep {
                c.phase = ClientPhase::Closing;
            }
            return;
        }
        let Some(backend) = picked else {
            // Answer without a backend; the body (if any) is never read.
            let keep = req.keep_alive && req.framing == Framing::None;
            log_own(&mut self.access, c, &c.inbuf.data()[..len], 502, self.now);
            c.head_since = None;
            c.inbuf.consume(len);
            let connection = canned::Persistence::of(keep, req.version);
            let head_only = req.method == Method::Head;
            queue_error(c, &mut self.bufs, (502, head_only), connection, &self.date);
            warn!("request refused: {}", ProxyError::NoBackend.describe());
            return;
        };
        c.head_since = None;
        let head_held = if req.framing == Framing::None { len } else { 0 };
        let mut tried = Tried::default();
        tried.push(backend);
        self.bufs.fill(&mut c.outbuf);
        let ex = Exchange {
            backend,
            req,
            req_body: BodyRelay::new(req.framing, req_out_coding(req.framing))
                .dropping(req.hop_names),
            head_held,
            resp: ResponsePhase::Head(HeadScan::default()),
            resp_started: false,
            final_started: false,
            continue_sent: false,
            interim: 0,
            tried,
            started_at: self.precise,
            observed: false,
            sent_at: None,
            first_at: self.precise,
            upstream_time: None,
            resp_bytes: 0,
            discard_since: None,
            log: Default::default(),
        };
        let mut boxed = match self.spare_exchanges.pop() {
            Some(mut boxed) => {
                let log = std::mem::take(&mut boxed.log);
                *boxed = ex;
                boxed.log = log;
                boxed
            }
            None => Box::new(ex),
        };
        if self.access.is_some() {
            boxed.log.capture(&c.inbuf.data()[..len]);
        }
        if head_held == 0 {
            c.inbuf.consume(len);
        }
        c.ex = Some(boxed);
        self.backends[backend].in_flight += 1;
        self.metrics.on_request(backend);
        let mut head = std::mem::replace(&mut self.scratch, Buf::with_capacity(0));
        let attached = self.attach(ck, backend, &mut head, true, false);
        self.scratch = head;
        if let Err(e) = attached {
            self.fail_exchange(ck, e);
        }
    }

    /// Binds a backend connection for `backend` (pooled if allowed) to the
    /// exchange of `ck` and hands it `out`, the bytes to send: swapped in
    /// (`swap`, for a buffer that belonged to a failed connection) or copied.
    fn attach(
        &mut self,
        ck: usize,
        backend: BackendId,
        out: &mut Buf,
        pooled: bool,
        swap: bool,
    ) -> Result<(), ProxyError> {
        let bk = self.acquire(backend, ck, pooled)?;
        let Some((Entry::Client(c), Entry::Backend(b))) = self.conns.get2_mut(ck, bk) else {
            return Ok(());
        };
        if swap {
            std::mem::swap(&mut b.outbuf, out);
        } else {
            if !b.outbuf.reserve_contiguous(out.len()) {
                b.outbuf.grow_to(out.len());
            }
            b.outbuf.put(out.data());
        }
        c.backend = Some(bk);
        Ok(())
    }

    /// A backend connection for `backend`, from its pool if `pooled`, else
    /// a fresh one, bound to client `ck`.
    fn acquire(
        &mut self,
        backend: BackendId,
        ck: usize,
        pooled: bool,
    ) -> Result<usize, ProxyError> {
        while pooled && let Some(bk) = self.backends[backend].pool.pop() {
            if let Some(Entry::Backend(b)) = self.conns.get_mut(bk)
                && b.generation != 0
                && b.backend == backend
                && !b.rd.read_eof
                && b.client.is_none()
            {
                self.bufs.fill(&mut b.inbuf);
                self.bufs.fill(&mut b.outbuf);
                b.client = Some(ck);
                b.reused = true;
                b.got_bytes = false;
                b.send_failed = false;
                b.last_in = self.now;
                b.last_out = self.now;
                return Ok(bk);
            }
        }
        let addr = self.backends[backend].addr;
        // A failure of this host's (no descriptor, memory or local port) is
        // not the backend's: no failure is recorded against it.
        let failed = |what: &str, e: io::Error| {
            warn!("backend {addr}: {what}: {e}");
            if is_local_shortage(&e) {
                ProxyError::NoResources
            } else {
                ProxyError::Connect(FailureKind::ConnectRefused)
            }
        };
        let mut sock = TcpStream::connect(addr).map_err(|e| failed("connect", e))?;
        let _ = sock.set_nodelay(true);
        let (bk, generation) = self
            .register(&mut sock)
            .map_err(|e| failed("register", e))?;
        let (inbuf, outbuf, now) = (self.bufs.take(), self.bufs.take(), self.now);
        self.insert_at(
            bk,
            Entry::Backend(BackendConn {
                sock,
                generation,
                backend,
                rd: Readiness::default(),
                inbuf,
                outbuf,
                phase: BackendPhase::Connecting,
                client: Some(ck),
                reused: false,
                got_bytes: false,
                send_failed: false,
                reset: false,
                write_shut: false,
                since: now,
                last_in: now,
                last_out: now,
                timer: None,
            }),
        );
        Ok(bk)
    }

    /// Picks a backend in rotation. Backends already `tried` by the
    /// exchange are not eligible. Health is read as it stands: it changes
    /// only when a failure or a probe result is recorded, or limits change
    /// on reload, and each of those re-evaluates it (`update_health`).
    fn pick(&mut self, tried: &Tried) -> Option<BackendId> {
        let slow_start = self.cfg.slow_start;
        for (i, b) in self.backends.iter().enumerate() {
            self.loads[i] = BackendLoad {
                in_rotation: b.health.in_rotation() && !b.removed && !tried.contains(i),
                in_flight: b.in_flight,
                weight: effective_weight(b.weight, b.health.back_since(), slow_start, self.now),
            };
        }
        self.strategy.pick(&self.loads, None, self.now)
    }

    fn record_failure(&mut self, backend: BackendId, kind: FailureKind) {
        let b = &mut self.backends[backend];
        warn!("backend {}: {}", b.addr, kind.describe());
        self.metrics.on_failure(backend, kind);
        b.health.record_failure(self.now, kind);
        self.update_health(backend);
    }

    /// Re-evaluates the health of `backend` after a failure, a probe result
    /// or new limits; logs and counts a transition.
    fn update_health(&mut self, backend: BackendId) {
        let b = &mut self.backends[backend];
        if let Some(t) = b.health.update(self.now) {
            log_transition(b, t, self.now);
            self.metrics.on_transition(backend, t == Transition::Out);
        }
    }

    /// Ends the exchange of `ck`, releasing its backend connection.
    fn finish_exchange(&mut self, ck: usize) {
        let Some(Entry::Client(c)) = self.conns.get_mut(ck) else {
            return;
        };
        let Some(ex) = c.ex.take() else { return };
        let bk = c.backend.take();
        if ex.head_held > 0 {
            c.inbuf.consume(ex.head_held);
        }
        let head = match &ex.resp {
            ResponsePhase::Done(h) => *h,
            _ => unreachable!("finish_exchange before the response is done"),
        };
        let body_done = ex.req_body.is_done();
        c.clean_close = body_done;
        if !(head.client_keep_alive && body_done) || self.draining.is_some() {
            c.phase = ClientPhase::Closing;
        }
        c.idle_since = self.now;
        end_in_flight(&mut self.backends, &ex);
        let addr = self.backends[ex.backend].addr;
        log_exchange(
            &mut self.access,
            c.peer,
            &ex,
            addr,
            (head.status, ex.resp_bytes),
            self.precise,
        );
        self.recycle(ex);
        if let Some(bk) = bk {
            let reuse = head.backend_reusable && body_done;
            self.release_backend(bk, reuse);
        }
    }

    /// Keeps a finished exchange's box for the next request.
    fn recycle(&mut self, ex: Box<Exchange>) {
        // As many as there may be exchanges at once (one per client): the
        // list's limit follows the open connections (`size_pools`).
        self.spare_exchanges.push(ex);
    }

    /// Returns a backend connection to its pool if it can carry another
    /// request (idle connections beyond `pool_size` only linger for
    /// [`EXCESS_IDLE`]); closes it otherwise.
    fn release_backend(&mut self, bk: usize, reusable: bool) {
        let Some(Entry::Backend(b)) = self.conns.get_mut(bk) else {
            return;
        };
        b.client = None;
        // (Still `readable`: the last read filled the buffer, so the
        // backend may have sent more than the response; not reused.)
        let clean = b.phase == BackendPhase::Ready
            && b.inbuf.is_empty()
            && b.outbuf.is_empty()
            && !b.send_failed
            && !b.rd.readable
            && !b.rd.read_eof
            && !b.rd.hup;
        let removed = self.backends[b.backend].removed;
        let pool = &mut self.backends[b.backend].pool;
        if reusable && clean && !removed && pool.len() < MAX_IDLE_PER_BACKEND {
            b.since = self.now;
            self.bufs.reclaim(&mut b.inbuf);
            self.bufs.reclaim(&mut b.outbuf);
            pool.push(bk);
            self.rearm(bk);
        } else {
            self.close_entry(bk);
        }
    }

    /// Sends an error for a failed exchange (or closes the client if the
    /// response had started) and drops the backend connection. A connect
    /// failure is counted against the backend and retried elsewhere first.
    fn fail_exchange(&mut self, ck: usize, err: ProxyError) {
        if let ProxyError::Connect(kind) = err {
            let backend = match self.conns.get(ck) {
                Some(Entry::Client(ClientConn { ex: Some(ex), .. })) => ex.backend,
                _ => return,
            };
            self.record_failure(backend, kind);
            if self.retry(ck, Carry::Unsent) {
                return;
            }
        }
        let Some(Entry::Client(c)) = self.conns.get_mut(ck) else {
            return;
        };
        let Some(ex) = c.ex.take() else { return };
        let bk = c.backend.take();
        let addr = self.backends[ex.backend].addr;
        if ex.final_started {
            c.phase = ClientPhase::Closing;
            c.reset_on_close = matches!(&ex.resp, ResponsePhase::Body(h, _)
                if h.out == head::OutCoding::Identity && !matches!(h.framing, Framing::Length(_)));
        } else {
            if ex.head_held > 0 {
                c.inbuf.consume(ex.head_held);
            }
            let keep = ex.req.keep_alive
                && self.draining.is_none()
                && ex.req_body.input_done()
                && !matches!(err, ProxyError::BadRequestBody | ProxyError::ClientTimeout);
            let connection = canned::Persistence::of(keep, ex.req.version);
            let head_only = ex.req.method == Method::Head;
            let status = (err.status(), head_only);
            queue_error(c, &mut self.bufs, status, connection, &self.date);
        }
        c.idle_since = self.now;
        end_in_flight(&mut self.backends, &ex);
        // A response cut off in its body is logged as status 0, with the
        // body bytes the client did get; before a response head, with the
        // error's status.
        let (status, bytes) = relayed(&ex);
        let status = match ex.resp {
            ResponsePhase::Body(..) => 0,
            _ => status.unwrap_or(err.status()),
        };
        log_exchange(
            &mut self.access,
            c.peer,
            &ex,
            addr,
            (status, bytes),
            self.precise,
        );
        self.recycle(ex);
        if let Some(bk) = bk {
            self.close_entry(bk);
        }
        match err {
            // Logged where the connection was attempted.
            ProxyError::Connect(_) | ProxyError::NoResources => {}
            ProxyError::BadRequestBody => {
                self.metrics
                    .on_parse_error(crate::ops::ParseErrorKind::BadBody);
                debug!("client: {}", err.describe())
            }
            ProxyError::ClientTimeout => {
                self.metrics
                    .on_parse_error(crate::ops::ParseErrorKind::Timeout);
                debug!("client: {}", err.describe())
            }
            ProxyError::TunnelIdle => debug!("backend {addr}: {}", err.describe()),
            _ => warn!("backend {addr}: {}", err.describe()),
        }
    }

    /// A new backend connection was closed or reset before any byte of a
    /// response: a failure of the backend (passive health, as nginx counts
    /// it). A bodiless idempotent request is sent to another backend
    /// (RFC 9110 §9.2.2); anything else gets a 502.
    fn no_response(&mut self, ck: usize) {
        let Some(Entry::Client(ClientConn { ex: Some(ex), .. })) = self.conns.get(ck) else {
            return;
        };
        let (backend, resend) = (
            ex.backend,
            ex.head_held > 0 && ex.req.method.is_idempotent(),
        );
        self.record_failure(backend, FailureKind::NoResponse);
        if !(resend && self.retry(ck, Carry::Resend)) {
            self.fail_exchange(ck, ProxyError::UpstreamClosed);
        }
    }

    /// Sends the request of `ck` again, on a backend not tried yet, when it
    /// provably never reached the one it was sent to, or when it is
    /// bodiless and idempotent and got no response at all (`Resend`),
    /// within the retry limit and budget. Returns whether a retry is under
    /// way.
    fn retry(&mut self, ck: usize, carry: Carry) -> bool {
        let (tried, head_held, default_host) = match self.conns.get(ck) {
            Some(Entry::Client(ClientConn { ex: Some(ex), .. })) if !ex.resp_started => {
                (ex.tried, ex.head_held, ex.req.default_host)
            }
            _ => return false,
        };
        let old_attached =
            matches!(self.conns.get(ck), Some(Entry::Client(c)) if c.backend.is_some());
        if !old_attached && head_held == 0 {
            // The head was consumed and no buffer holds it any more.
            return false;
        }
        if tried.len() > self.cfg.retries as usize {
            return false;
        }
        let next = match self.pick(&tried) {
            Some(b) => b,
            // A pooled connection that was found closed says nothing about
            // the backend: with no other backend, try it on a fresh one.
            None if carry == Carry::Head && tried.len() == 1 => tried.last(),
            None => return false,
        };
        // A pooled connection found closed is the keep-alive race, not a
        // sign of a failing backend: retrying it costs the budget nothing
        // (it is still bounded by `retries`).
        if carry != Carry::Head && !self.budget.try_retry(self.now) {
            debug!("retry budget exhausted");
            return false;
        }
        let Some(Entry::Client(c)) = self.conns.get_mut(ck) else {
            return false;
        };
        let Some(ex) = c.ex.as_mut() else {
            return false;
        };
        let old_backend = ex.backend;
        ex.backend = next;
        ex.tried.push(next);
        ex.sent_at = None;
        ex.started_at = self.precise;
        let old = c.backend.take();
        // What to send: the untouched bytes of a connection that never
        // connected, or the request head again for a dead pooled one.
        let mut out = match (carry, old) {
            (Carry::Unsent, Some(old)) => match self.conns.get_mut(old) {
                Some(Entry::Backend(b)) => std::mem::replace(&mut b.outbuf, Buf::with_capacity(0)),
                _ => Buf::with_capacity(0),
            },
            _ => Buf::with_capacity(0),
        };
        // (A head written with the old backend's address as its Host, an
        // HTTP/1.0 request without one, gets the new one's in the carried
        // bytes.)
        let mut retargeted = false;
        if default_host && carry == Carry::Unsent && old.is_some() {
            let (from, to) = (&self.backends[old_backend].host, &self.backends[next].host);
            self.scratch.clear();
            if head::retarget_default_host(out.data(), from, to, &mut self.scratch) {
                out.clear();
                self.bufs.reclaim(&mut out);
                out = std::mem::replace(&mut self.scratch, Buf::with_capacity(0));
                retargeted = true;
            }
        }
        if carry != Carry::Unsent || old.is_none() {
            let Some(Entry::Client(c)) = self.conns.get(ck) else {
                return false;
            };
            let head = &c.inbuf.data()[..head_held];
            let host = &self.backends[next].host;
            let forwarded = self.cfg.forwarded_headers;
            if rewrite_into(&mut self.scratch, head, c.peer, host, forwarded).is_err() {
                return false;
            }
            out = std::mem::replace(&mut self.scratch, Buf::with_capacity(0));
        }
        if let Some(old) = old {
            self.close_entry(old);
        }
        self.backends[old_backend].in_flight -= 1;
        self.backends[next].in_flight += 1;
        self.metrics.on_retry(old_backend);
        self.metrics.on_request(next);
        debug!(
            "retrying on backend {} after backend {}",
            self.backends[next].addr, self.backends[old_backend].addr
        );
        let pooled = carry != Carry::Head;
        let swap = carry == Carry::Unsent && old.is_some() && !retargeted;
        let attached = self.attach(ck, next, &mut out, pooled, swap);
        out.clear();
        if self.scratch.capacity() == 0 {
            self.scratch = out;
        } else {
            self.bufs.reclaim(&mut out);
        }
        if let Err(e) = attached {
            self.fail_exchange(ck, e);
        }
        true
    }

    /// Answers a rejected request head and closes after it.
    fn reject(&mut self, ck: usize, e: HeadError) {
        if let Some(Entry::Client(c)) = self.conns.get_mut(ck) {
            debug!("client {}: rejected request: {e:?}", c.peer);
            self.metrics
                .on_parse_error(crate::ops::ParseErrorKind::from(e));
            log_own(&mut self.access, c, c.inbuf.data(), e.status(), self.now);
            // (A rejected HEAD request gets no body either.)
            let head_only = asks_head(c.inbuf.data());
            c.inbuf.clear();
            queue_error(
                c,
                &mut self.bufs,
                (e.status(), head_only),
                canned::Persistence::Close,
                &self.date,
            );
        }
    }

    // ------------------------------------------------------------ idle backends

    /// An event on a pooled connection: the backend closed it, or sent
    /// bytes nobody asked for. Either way it cannot be reused.
    fn drive_idle_backend(&mut self, bk: usize) {
        let Some(Entry::Backend(b)) = self.conns.get_mut(bk) else {
            return;
        };
        if b.client.is_some() || !(b.rd.readable || b.rd.hup) {
            return;
        }
        // An idle connection holds no buffer: a few bytes on the stack tell
        // EOF, unsolicited bytes and errors apart from a spurious wake-up.
        let mut probe = [0u8; 64];
        let dead = loop {
            match std::io::Read::read(&mut b.sock, &mut probe) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                _ => break true,
            }
        };
        b.rd.readable = false;
        if dead {
            let backend = b.backend;
            self.backends[backend].pool.retain(|&k| k != bk);
            self.close_entry(bk);
        }
    }

    // ------------------------------------------------------------ probes

    fn start_probe(&mut self, backend: BackendId) {
        // A probe starts every interval: one that hangs until its timeout
        // does not delay the next, so a hanging backend is noticed after
        // one timeout plus `max_fails - 1` intervals. At most
        // MAX_PROBES_IN_FLIGHT connections per backend, whatever the
        // timeouts.
        if self.backends[backend].probes >= MAX_PROBES_IN_FLIGHT {
            return;
        }
        let addr = self.backends[backend].addr;
        let opened = TcpStream::connect(addr)
            .and_then(|mut sock| self.register(&mut sock).map(|k| (sock, k)));
        let (sock, (key, generation)) = match opened {
            Ok(o) => o,
            // This host's shortage says nothing of the backend: no verdict.
            Err(e) if is_local_shortage(&e) => {
                warn!("backend {addr}: health check skipped: {e}");
                return;
            }
            Err(_) => return self.probe_result(backend, Err(FailureKind::ConnectRefused)),
        };
        let out = probe::request(&self.cfg.health_check_path, addr);
        let since = self.now;
        self.insert_at(
            key,
            Entry::Probe(Probe {
                sock,
                generation,
                backend,
                rd: Readiness::default(),
                phase: ProbePhase::Connecting,
                out,
                input: Buf::with_capacity(probe::FIRST_READ),
                since,
                timer: None,
            }),
        );
        self.backends[backend].probes += 1;
        self.rearm(key);
    }

    fn drive_probe(&mut self, key: usize) {
        let now = self.now;
        let Some(Entry::Probe(p)) = self.conns.get_mut(key) else {
            return;
        };
        let result = loop {
            match p.phase {
                ProbePhase::Connecting => match connect_result(&p.sock) {
                    Ok(true) => {
                        p.phase = ProbePhase::Sending;
                        p.since = now;
                    }
                    Ok(false) => {
                        p.rd.readable = false;
                        p.rd.writable = false;
                        break None;
                    }
                    Err(_) => break Some(Err(FailureKind::ConnectRefused)),
                },
                ProbePhase::Sending => {
                    let (outcome, _) = write_from(&mut p.sock, &mut p.out, &mut p.rd);
                    if outcome != IoOutcome::Ok {
                        break Some(Err(FailureKind::Reset));
                    }
                    if !p.out.is_empty() {
                        break None;
                    }
                    p.phase = ProbePhase::Receiving;
                    p.since = now;
                }
                ProbePhase::Receiving => {
                    let (outcome, _) = read_into(&mut p.sock, &mut p.input, &mut p.rd);
                    if let IoOutcome::Error(_) = outcome {
                        // A whole head that came before the reset is
                        // judged all the same (a server that closes with
                        // the request unread resets the connection).
                        break Some(if p.input.is_empty() {
                            Err(FailureKind::Reset)
                        } else {
                            probe::verdict(p.input.data(), true).unwrap_or(Err(FailureKind::Reset))
                        });
                    }
                    let verdict = probe::verdict(p.input.data(), p.rd.read_eof);
                    if verdict.is_none()
                        && p.input.is_full()
                        && p.input.capacity() < probe::MAX_HEAD
                    {
                        // A head as large as a proxied one may be.
                        p.input.grow_to(probe::MAX_HEAD);
                        continue;
                    }
                    break verdict;
                }
            }
        };
        match result {
            Some(r) => {
                let backend = p.backend;
                self.end_probe(key, backend, r);
            }
            None => self.rearm(key),
        }
    }

    /// Closes the probe at `key` and records its result.
    fn end_probe(&mut self, key: usize, backend: BackendId, r: Result<(), FailureKind>) {
        self.close_entry(key);
        let b = &mut self.backends[backend];
        b.probes = b.probes.saturating_sub(1);
        self.probe_result(backend, r);
    }

    fn probe_result(&mut self, backend: BackendId, r: Result<(), FailureKind>) {
        let b = &mut self.backends[backend];
        if let Err(kind) = r {
            debug!(
                "backend {}: health check failed: {}",
                b.addr,
                kind.describe()
            );
            self.metrics.on_failure(backend, kind);
        }
        b.health.record_probe(self.now, r);
        self.update_health(backend);
    }

    // ------------------------------------------------------------ timers

    /// When the entry at `key` next needs attention, and why.
    fn deadline(&self, key: usize) -> Option<(Tick, Due)> {
        let cfg = &self.cfg;
        match self.conns.get(key)? {
            Entry::Client(c) => match c.phase {
                ClientPhase::Lingering(until) => Some((until, Due::ClientLinger)),
                _ if !c.outbuf.is_empty() => {
                    let due = c.last_out.after(cfg.keepalive_timeout);
                    Some((discard_limit(c, due), Due::ClientSend))
                }
                // Waiting for more of the request body: the client may not
                // stall longer than it may take over a head (slow POST).
                // (Not while the client rightly waits for a 100 Continue.)
                // (Nor once the client has stopped sending for good after
                // the final response began: the backend's timer runs then.)
                _ if c.ex.as_ref().is_some_and(|ex| {
                    ex.head_held == 0
                        && !ex.req_body.input_done()
                        && c.inbuf.is_empty()
                        && !awaits_continue(ex)
                        && !(c.rd.read_eof && ex.final_started)
                }) =>
                {
                    // From the last byte either way: a client that waited
                    // for a 100 Continue gets the full time after it. A
                    // body that is only dropped (the backend went away)
                    // gets `DISCARD_TIME` in all, as nginx's
                    // `lingering_time`.
                    let last = c.last_in.max(c.last_out);
                    let stall = last.after(cfg.client_header_timeout);
                    Some((discard_limit(c, stall), Due::ClientBody))
                }
                _ if c.ex.is_some() => None,
                _ => match c.head_since {
                    Some(t) => Some((t.after(cfg.client_header_timeout), Due::ClientHeader)),
                    None => Some((c.idle_since.after(cfg.keepalive_timeout), Due::ClientIdle)),
                },
            },
            Entry::Backend(b) => {
                let Some(ck) = b.client else {
                    let excess = self.backends[b.backend].pool.len() > cfg.pool_size;
                    let keep = if excess {
                        EXCESS_IDLE
                    } else {
                        cfg.keepalive_timeout
                    };
                    return Some((b.since.after(keep), Due::PoolIdle));
                };
                if b.phase == BackendPhase::Connecting {
                    let e = ProxyError::Connect(FailureKind::ConnectTimeout);
                    return Some((b.since.after(cfg.connection_timeout), Due::Backend(e)));
                }
                let Some(Entry::Client(c)) = self.conns.get(ck) else {
                    return None;
                };
                let ex = c.ex.as_ref()?;
                if let ResponsePhase::Tunnel { .. } = ex.resp {
                    // Traffic on either side counts (a slow reader on one
                    // side holds the other side's bytes back).
                    let last = b.last_in.max(b.last_out).max(c.last_in).max(c.last_out);
                    return Some((last.after(cfg.keepalive_timeout), Due::TunnelIdle));
                }
                // Not while the client holds the response back: backend
                // bytes wait for room in the client's buffer (for a head,
                // or a chunk's framing), so the relay does not read, and a
                // backend that answers while it reads the request (an echo)
                // stops reading too. That is the client's doing, which
                // `keepalive_timeout` on its output covers.
                if c.outbuf.is_full() || waits_for_client(&b.inbuf, &c.outbuf) {
                    return None;
                }
                if !b.outbuf.is_empty() {
                    // (Also after a complete early response, while the
                    // body still goes to the backend.) A backend that
                    // answers as it reads (an echo) stopped reading while
                    // the client held its answer back: the time counts from
                    // when the client took bytes again.
                    return Some((
                        b.last_out.max(c.last_out).after(cfg.write_timeout),
                        Due::Backend(ProxyError::WriteTimeout),
                    ));
                }
                if matches!(ex.resp, ResponsePhase::Done(_)) {
                    return None;
                }
                let sent = match ex.sent_at {
                    Some(t) => t,
                    // Nothing more will be sent (the backend refused more,
                    // or the client stopped its body and the backend was
                    // told): the rest of the answer is due.
                    None if b.send_failed || b.write_shut => b.last_out,
                    // The head is sent and the client waits for a 100
                    // before its body: a backend that waits for the body
                    // instead would hold both forever. A client may send
                    // the body anyway after a while (RFC 9110 §10.1.1,
                    // curl after 1 s), so the backend gets as long as a
                    // client gets for a head; then 504.
                    None if awaits_continue(ex) => {
                        return Some((
                            b.last_out.after(cfg.client_header_timeout),
                            Due::Backend(ProxyError::ReadTimeout),
                        ));
                    }
                    None => return None,
                };
                // Reading resumes when the client takes bytes again: the
                // backend's silence counts from then at the earliest.
                let from = sent.max(b.last_in).max(c.last_out);
                Some((
                    from.after(cfg.read_timeout),
                    Due::Backend(ProxyError::ReadTimeout),
                ))
            }
            Entry::Probe(p) => {
                let (t, kind) = match p.phase {
                    ProbePhase::Connecting => (cfg.connection_timeout, FailureKind::ConnectTimeout),
                    ProbePhase::Sending => (cfg.write_timeout, FailureKind::WriteTimeout),
                    ProbePhase::Receiving => (cfg.read_timeout, FailureKind::ReadTimeout),
                };
                Some((p.since.after(t), Due::Probe(kind)))
            }
            Entry::Admin(a) => Some((a.since.after(cfg.client_header_timeout), Due::AdminIdle)),
        }
    }

    /// Makes sure the wheel holds an entry no later than the entry's
    /// deadline. A later deadline keeps the earlier wheel entry, which
    /// re-arms when it fires (no cancel/insert churn on progress).
    fn rearm(&mut self, key: usize) {
        let deadline = self.deadline(key).map(|(t, _)| t);
        // A client's backend has deadlines of its own.
        let backend_key = match self.conns.get(key) {
            Some(Entry::Client(c)) => c.backend,
            _ => None,
        };
        self.arm(key, deadline);
        if let Some(bk) = backend_key {
            let d = self.deadline(bk).map(|(t, _)| t);
            self.arm(bk, d);
        }
    }

    fn arm(&mut self, key: usize, deadline: Option<Tick>) {
        let Some(deadline) = deadline else { return };
        let Some(entry) = self.conns.get_mut(key) else {
            return;
        };
        let generation = entry.generation();
        let timer = entry.timer_mut();
        match *timer {
            Some((at, _)) if at <= deadline => {}
            Some((_, id)) => {
                self.wheel.cancel(id);
                let id = self
                    .wheel
                    .insert(deadline, key as u64 | (u64::from(generation) << 32));
                *timer = Some((deadline, id));
            }
            None => {
                let id = self
                    .wheel
                    .insert(deadline, key as u64 | (u64::from(generation) << 32));
                *timer = Some((deadline, id));
            }
        }
    }

    /// Puts backend `i`'s next probe `interval` from now.
    fn schedule_probe(&mut self, i: usize, interval: Duration) {
        let due = self.now.after(interval);
        let id = self.wheel.insert(due, PROBE_TIMER | i as u64);
        self.backends[i].probe_timer = Some((due, id));
    }

    fn fire_timers(&mut self, expired: &mut Vec<u64>) {
        expired.clear();
        self.wheel.expire(self.now, expired);
        for &k in expired.iter() {
            if k & PROBE_TIMER != 0 {
                let backend = (k & !PROBE_TIMER) as usize;
                self.backends[backend].probe_timer = None;
                if self.backends[backend].removed {
                    continue;
                }
                self.schedule_probe(backend, self.cfg.health_check_interval);
                self.start_probe(backend);
                continue;
            }
            if k == SHUTDOWN_TIMER {
                continue; // `run_while` sees the deadline has passed
            }
            if k == ACCEPT_TIMER {
                self.accept_paused = false;
                self.accept();
                if std::mem::take(&mut self.admin_retry) {
                    self.accept_admin();
                }
                continue;
            }
            let key = (k & 0xFFFF_FFFF) as usize;
            let generation = (k >> 32) as u32;
            match self.conns.get_mut(key) {
                Some(e) if e.generation() == generation => *e.timer_mut() = None,
                _ => continue,
            }
            match self.deadline(key) {
                Some((t, due)) if t <= self.now => self.on_due(key, due),
                Some((t, _)) => self.arm(key, Some(t)),
                None => {}
            }
        }
    }

    /// Before a write timer fails a connection: whether a write now moves
    /// bytes after all. Edge-triggered readiness reports a socket writable
    /// again only once about a third of its send buffer is free, which a
    /// slow but steady reader (a backend taking an upload at 500 KB/s, a
    /// client on a slow link) may take longer than the timeout to free,
    /// while a write would go through. Returns whether the timer is over
    /// (the write moved bytes, or the connection is gone).
    fn write_moves(&mut self, key: usize) -> bool {
        let ck = match self.conns.get(key) {
            Some(Entry::Client(_)) => key,
            Some(Entry::Backend(BackendConn {
                client: Some(ck), ..
            })) => *ck,
            _ => return false,
        };
        // Both sides: a tunnel writes either way.
        let Some(Entry::Client(c)) = self.conns.get_mut(ck) else {
            return false;
        };
        c.rd.writable = true;
        if let Some(bk) = c.backend
            && let Some(Entry::Backend(b)) = self.conns.get_mut(bk)
        {
            b.rd.writable = true;
        }
        self.drive(ck);
        match self.deadline(key) {
            Some((t, due)) if t <= self.now && writes_stalled(&due) => false,
            Some((t, _)) => {
                self.arm(key, Some(t));
                true
            }
            None => true,
        }
    }

    fn on_due(&mut self, key: usize, due: Due) {
        if writes_stalled(&due) && self.write_moves(key) {
            return;
        }
        match due {
            Due::ClientHeader => {
                self.metrics
                    .on_parse_error(crate::ops::ParseErrorKind::Timeout);
                if let Some(Entry::Client(c)) = self.conns.get_mut(key) {
                    debug!("client {}: header timeout", c.peer);
                    log_own(&mut self.access, c, c.inbuf.data(), 408, self.now);
                    let head_only = asks_head(c.inbuf.data());
                    c.inbuf.clear();
                    queue_error(
                        c,
                        &mut self.bufs,
                        (408, head_only),
                        canned::Persistence::Close,
                        &self.date,
                    );
                    self.drive(key);
                }
            }
            Due::ClientBody => {
                self.fail_exchange(key, ProxyError::ClientTimeout);
                self.drive(key);
            }
            Due::ClientIdle | Due::ClientSend | Due::ClientLinger => self.close_client(key),
            Due::AdminIdle => self.close_entry(key),
            Due::PoolIdle => {
                if let Some(Entry::Backend(b)) = self.conns.get(key) {
                    let backend = b.backend;
                    self.backends[backend].pool.retain(|&k| k != key);
                    self.close_entry(key);
                }
            }
            Due::Backend(_) | Due::TunnelIdle => {
                let err = match due {
                    Due::Backend(err) => err,
                    _ => ProxyError::TunnelIdle,
                };
                if let Some(Entry::Backend(b)) = self.conns.get(key)
                    && let Some(ck) = b.client
                {
                    self.fail_exchange(ck, err);
                    self.drive(ck);
                }
            }
            Due::Probe(kind) => {
                if let Some(Entry::Probe(p)) = self.conns.get(key) {
                    let backend = p.backend;
                    self.end_probe(key, backend, Err(kind));
                }
            }
        }
    }

    // ------------------------------------------------------------ closing

    fn close_client(&mut self, ck: usize) {
        let Some(Entry::Client(c)) = self.conns.get_mut(ck) else {
            return;
        };
        if c.reset_on_close {
            // Also when the client stopped reading the cut body (its send
            // timeout): a plain close would end it with a FIN.
            set_linger_zero(&c.sock);
        }
        let ex = c.ex.take();
        let bk = c.backend.take();
        if let Some(ex) = ex {
            end_in_flight(&mut self.backends, &ex);
            // The client went away (or stopped reading past a timeout)
            // before its exchange ended: nginx's 499 if no response had
            // started for it, else the response's status with the body
            // bytes relayed so far.
            let (status, bytes) = relayed(&ex);
            let status = status.unwrap_or(CLIENT_CLOSED);
            let addr = self.backends[ex.backend].addr;
            log_exchange(
                &mut self.access,
                c.peer,
                &ex,
                addr,
                (status, bytes),
                self.precise,
            );
            self.recycle(ex);
        } else if c.phase == ClientPhase::Open {
            // A head cut short by the client's close or reset: nginx logs
            // it as a 400 (none is sent).
            log_own(&mut self.access, c, c.inbuf.data(), 400, self.now);
        }
        if let Some(bk) = bk {
            self.close_entry(bk);
        }
        self.close_entry(ck);
    }

    /// Deregisters now; the slab entry (and socket) goes at the end of the
    /// turn, so later events in this batch cannot hit a reused key.
    /// Marks an entry closed; the slab entry (and socket) goes at the end
    /// of the turn, so later events in this batch cannot hit a reused key.
    /// No `epoll_ctl(DEL)`: closing a descriptor nobody else shares removes
    /// it from the epoll set (epoll(7)), and stale events of this batch are
    /// filtered by the generation.
    fn close_entry(&mut self, key: usize) {
        let Some(entry) = self.conns.get_mut(key) else {
            return;
        };
        let generation = match entry {
            Entry::Client(c) => &mut c.generation,
            Entry::Backend(b) => {
                b.client = None;
                &mut b.generation
            }
            Entry::Probe(p) => &mut p.generation,
            Entry::Admin(a) => &mut a.generation,
        };
        if *generation == 0 {
            return;
        }
        *generation = 0;
        if let Entry::Admin(_) = entry {
            self.admins -= 1;
        }
        if let Some((_, id)) = entry.timer_mut().take() {
            self.wheel.cancel(id);
        }
        self.closing.push(key);
    }

    fn reap(&mut self) {
        for key in self.closing.drain(..) {
            let (mut inbuf, mut outbuf) = match self.conns.remove(key) {
                Entry::Client(c) => {
                    self.clients -= 1;
                    self.metrics.on_close();
                    (c.inbuf, c.outbuf)
                }
                Entry::Backend(b) => (b.inbuf, b.outbuf),
                Entry::Probe(_) | Entry::Admin(_) => continue,
            };
            inbuf.clear();
            outbuf.clear();
            self.bufs.reclaim(&mut inbuf);
            self.bufs.reclaim(&mut outbuf);
        }
        if self.accept_pending && !self.accept_paused && self.can_accept() {
            self.accept();
        }
    }
}

/// Weights are scaled by this so that slow start can ramp a weight of 1.
const WEIGHT_SCALE: u32 = 100;

/// A backend's weight as the strategy sees it: scaled, and during slow
/// start ramped linearly from 1 to the full weight.
fn effective_weight(weight: u32, back_since: Option<Tick>, slow_start: Duration, now: Tick) -> u32 {
    let full = weight.max(1) * WEIGHT_SCALE;
    let ramp = u64::try_from(slow_start.as_millis()).unwrap_or(u64::MAX);
    match back_since {
        Some(t) if ramp > 0 && now.0.saturating_sub(t.0) < ramp => {
            let w = u64::from(full) * now.0.saturating_sub(t.0) / ramp;
            (w as u32).max(1)
        }
        _ => full,
    }
}

/// Why a response head was refused.
fn response_error(e: head::HeadError) -> ProxyError {
    match e {
        head::HeadError::Undeliverable => ProxyError::Undeliverable,
        _ => ProxyError::BadResponse,
    }
}

/// Request bodies are forwarded in the framing they came in.
fn req_out_coding(framing: Framing) -> head::OutCoding {
    match framing {
        Framing::Chunked => head::OutCoding::Chunked,
        _ => head::OutCoding::Identity,
    }
}

/// Binds `addr` for a reload, beside the running listener. (The same port
/// on another address, `127.0.0.1:P` to `0.0.0.0:P`, cannot be bound beside
/// it: such a reload fails and changes nothing, rather than closing the
/// running listener first and perhaps failing after.)
fn prepare_listener(addr: SocketAddr, reuse_port: bool) -> Result<TcpListener, String> {
    super::listen::bind(addr, reuse_port)
        .map(TcpListener::from_std)
        .map_err(|e| format!("cannot listen on {addr}: {e}"))
}

/// Largest connection generation: a token or timer key is `key |
/// generation << 32`, and bits 59 and up name the listeners, the signal
/// pipe, the reload waker and the timer kinds, so a generation must never
/// reach them (after 2^31 connections one did, and its timer was taken for
/// a probe).
const MAX_GENERATION: u32 = (1 << 27) - 1;

/// The generation after `g`: 1 to [`MAX_GENERATION`], then 1 again (0 marks
/// an entry without a registered socket).
fn next_generation(g: u32) -> u32 {
    if g >= MAX_GENERATION { 1 } else { g + 1 }
}

/// Backend bytes wait in its buffer until the client has taken what is
/// queued for it. For an exchange in its `Head` phase: one response head at
/// a time, the next one (after a 1xx, or after the previous response) is
/// parsed only once the client has taken the bytes before it, so that a
/// flood of interim responses to a client that does not read stays in the
/// socket buffers (backpressure) instead of growing the client's buffer;
/// meanwhile the backend's EOF is judged only once the head is parsed. In
/// any phase (body bytes the relay has no room for yet, e.g. for a chunk's
/// framing): the backend's read and write deadlines are off.
fn waits_for_client(backend_in: &Buf, client_out: &Buf) -> bool {
    !backend_in.is_empty() && !client_out.is_empty()
}

/// The client sent `Expect: 100-continue` and holds its body back until a
/// response comes (a client that sends the body anyway no longer waits).
fn awaits_continue(ex: &Exchange) -> bool {
    ex.req.expect_continue && !ex.resp_started && ex.req_body.moved() == 0
}

/// Parses response heads and relays response bodies from the backend's
/// buffer into the client's.
fn relay_response(
    client_in: &mut Buf,
    client_out: &mut Buf,
    ex: &mut Exchange,
    b: &mut BackendConn,
    draining: bool,
    date: &DateCache,
) -> Result<bool, ProxyError> {
    let mut progress = false;
    loop {
        match &mut ex.resp {
            ResponsePhase::Head(scan) => {
                if b.inbuf.is_empty() || waits_for_client(&b.inbuf, client_out) {
                    return Ok(progress);
                }
                let ctx = RequestContext {
                    head_request: ex.req.method == Method::Head,
                    client_version: ex.req.version,
                    // A final answer before the body the client holds back
                    // for a 100 (e.g. 417): the body never comes, so close.
                    client_keep_alive: ex.req.keep_alive
                        && !draining
                        && (!ex.req.expect_continue
                            || ex.continue_sent
                            || ex.req_body.input_done()),
                    upgrade: ex.req.upgrade,
                    body_pending: !ex.req_body.input_done(),
                    date: Some(*date.text()),
                };
                let before = client_out.len();
                // A head that arrived whole (the usual case) is parsed at
                // once; one that trickles in is scanned for its end as it
                // grows and parsed when complete.
                // (Not when it starts with a blank line: the parser would
                // skip any number of them, the incremental scan sees the
                // first as the end of an empty head, which is refused.)
                let whole = if scan.is_fresh() && !matches!(b.inbuf.data()[0], b'\r' | b'\n') {
                    rewrite_response_if_complete(b.inbuf.data(), &ctx, client_out)
                        .map_err(response_error)?
                } else {
                    None
                };
                let head = match whole {
                    Some(head) => head,
                    None => {
                        let Some(len) = scan.find_end(b.inbuf.data()) else {
                            if b.inbuf.is_full() {
                                if b.inbuf.capacity() < LARGE_BUF_SIZE {
                                    b.inbuf.grow_to(LARGE_BUF_SIZE);
                                    return Ok(true);
                                }
                                return Err(ProxyError::BadResponse);
                            }
                            return Ok(progress);
                        };
                        rewrite_response(&b.inbuf.data()[..len], &ctx, client_out)
                            .map_err(response_error)?
                    }
                };
                let len = head.len;
                b.inbuf.consume(len);
                progress = true;
                ex.resp_started |= client_out.len() > before;
                if ex.head_held > 0 {
                    client_in.consume(ex.head_held);
                    ex.head_held = 0;
                }
                if head.status == 101 {
                    ex.resp_started = true;
                    ex.final_started = true;
                    ex.resp = ResponsePhase::Tunnel {
                        up_done: false,
                        down_done: false,
                    };
                    return Ok(true);
                }
                if (100..200).contains(&head.status) {
                    // Each interim response restarts the backend's read
                    // timer: without a limit, a backend that sends them
                    // and never a final response would hold the request
                    // for good.
                    ex.interim += 1;
                    if ex.interim > MAX_INTERIM {
                        // (Not relayed: it was queued above.)
                        client_out.truncate(before);
                        return Err(ProxyError::BadResponse);
                    }
                    ex.continue_sent |= head.status == 100 && client_out.len() > before;
                    ex.resp = ResponsePhase::Head(HeadScan::default());
                    continue;
                }
                ex.resp_started = true;
                ex.final_started = true;
                let relay = BodyRelay::new(head.framing, head.out)
                    .dropping(head.hop_names)
                    .from_backend();
                ex.resp = if relay.is_done() {
                    ResponsePhase::Done(head)
                } else {
                    ResponsePhase::Body(head, relay)
                };
            }
            ResponsePhase::Body(head, relay) => {
                let p = relay.pump(&mut b.inbuf, client_out).map_err(|e| match e {
                    BodyError::Truncated => ProxyError::UpstreamClosed,
                    BodyError::Chunked(_) => ProxyError::BadResponse,
                })?;
                progress |= p;
                if relay.is_done() {
                    ex.resp_bytes = relay.moved();
                    ex.resp = ResponsePhase::Done(*head);
                }
                return Ok(progress);
            }
            ResponsePhase::Done(_) | ResponsePhase::Tunnel { .. } => return Ok(progress),
        }
    }
}

/// Whether the (perhaps incomplete) request head in `input` is a `HEAD`
/// request, whose answer has no body even when ekilibri makes it.
fn asks_head(input: &[u8]) -> bool {
    input[head::leading_empty_lines(input)..].starts_with(b"HEAD ")
}

/// `due`, or the end of `DISCARD_TIME` if that comes first while the rest
/// of a request body is dropped (whether the client is sending it or
/// still taking its answer).
fn discard_limit(c: &ClientConn, due: Tick) -> Tick {
    match c.ex.as_ref().and_then(|ex| ex.discard_since) {
        Some(t) => due.min(t.after(DISCARD_TIME)),
        None => due,
    }
}

/// Timers that say no byte moved to a peer that should take them: worth one
/// more write before they fail (see `Reactor::write_moves`).
fn writes_stalled(due: &Due) -> bool {
    matches!(
        due,
        Due::ClientSend | Due::Backend(ProxyError::WriteTimeout) | Due::TunnelIdle
    )
}

/// The backend of an ending exchange no longer has it in flight (unless
/// that ended already, when the rest of the body began to be dropped).
fn end_in_flight(backends: &mut [Backend], ex: &Exchange) {
    if ex.discard_since.is_none() {
        backends[ex.backend].in_flight -= 1;
    }
}

/// Whether the rest of the request body is read and dropped: the backend
/// stopped taking it (a failed write: it closed or reset), after a
/// complete answer that told the client its connection stays open.
fn discards_rest(ex: &Exchange, b: &BackendConn) -> bool {
    b.send_failed && owes_body_after_keep_alive_answer(ex)
}

/// The whole answer is in, it told the client its connection stays, and
/// the client still owes part of the request body.
fn owes_body_after_keep_alive_answer(ex: &Exchange) -> bool {
    !ex.req_body.is_done() && matches!(ex.resp, ResponsePhase::Done(head) if head.client_keep_alive)
}

/// How many of a connection's two buffers are wide.
fn wide_count(inbuf: &Buf, outbuf: &Buf) -> usize {
    usize::from(inbuf.capacity() == WIDE_BUF_SIZE) + usize::from(outbuf.capacity() == WIDE_BUF_SIZE)
}

/// Moves tunnel bytes both ways and propagates each side's EOF as a
/// half-close once everything before it was forwarded.
fn relay_tunnel(
    client: (&mut Buf, &mut Buf, &TcpStream, &Readiness),
    b: &mut BackendConn,
    (up_done, down_done): (&mut bool, &mut bool),
    down_bytes: &mut u64,
) -> bool {
    let (cin, cout, csock, crd) = client;
    let mut progress = false;
    if !cin.is_empty() {
        let n = b.outbuf.put_some(cin.data());
        cin.consume(n);
        progress |= n > 0;
    }
    if !b.inbuf.is_empty() {
        let n = cout.put_some(b.inbuf.data());
        b.inbuf.consume(n);
        *down_bytes += n as u64;
        progress |= n > 0;
    }
    if !*up_done && crd.read_eof && cin.is_empty() && b.outbuf.is_empty() {
        let _ = b.sock.shutdown(Shutdown::Write);
        *up_done = true;
        progress = true;
    }
    if !*down_done && b.rd.read_eof && b.inbuf.is_empty() && cout.is_empty() {
        let _ = csock.shutdown(Shutdown::Write);
        *down_done = true;
        progress = true;
    }
    progress
}

/// The backend connection broke. Before any response byte: a pooled
/// connection that the backend had closed (the keep-alive race) gets a
/// retry for a bodiless idempotent request; a new one is the backend's
/// failure ([`Step::NoResponse`]). Anything else is a 502.
fn upstream_broken(ex: &Exchange, b: &BackendConn) -> Step {
    if b.got_bytes {
        Step::Fail(ProxyError::UpstreamClosed)
    } else if !b.reused {
        Step::NoResponse
    } else if ex.head_held > 0 && ex.req.method.is_idempotent() {
        Step::Retry
    } else {
        Step::Fail(ProxyError::UpstreamClosed)
    }
}

/// Queues an error response for the client; without keep-alive the
/// connection closes after it.
fn queue_error(
    c: &mut ClientConn,
    bufs: &mut BufPool,
    (status, head_only): (u16, bool),
    connection: canned::Persistence,
    date: &DateCache,
) {
    bufs.fill(&mut c.outbuf);
    c.clean_close = false;
    canned::error(status, connection, head_only, date.text(), &mut c.outbuf);
    if connection == canned::Persistence::Close {
        c.phase = ClientPhase::Closing;
    }
}

/// The access log's status for a request whose client went away before a
/// response started (nginx's `499 Client Closed Request`); never sent.
const CLIENT_CLOSED: u16 = 499;

/// What the client got of `ex` so far: the response's status (`None`
/// before a response head; 101 for a tunnel) and the body bytes relayed
/// (in a tunnel, the bytes relayed to the client after the 101).
fn relayed(ex: &Exchange) -> (Option<u16>, u64) {
    match &ex.resp {
        ResponsePhase::Head(_) => (None, 0),
        ResponsePhase::Body(h, relay) => (Some(h.status), relay.moved()),
        ResponsePhase::Done(h) => (Some(h.status), ex.resp_bytes),
        ResponsePhase::Tunnel { .. } => (Some(101), ex.resp_bytes),
    }
}

/// Logs the end of exchange `ex` of client `peer`, served by `backend`,
/// with the `(status, bytes)` the client got; `now` is the loop's precise
/// time.
fn log_exchange(
    access: &mut Option<super::access::AccessSink>,
    peer: SocketAddr,
    ex: &Exchange,
    backend: SocketAddr,
    (status, bytes): (u16, u64),
    now: Duration,
) {
    if let Some(a) = access {
        let o = super::access::Outcome {
            client: peer,
            status,
            bytes,
            backend: Some(backend),
            upstream_time: ex.upstream_time,
            total_time: now.saturating_sub(ex.first_at),
        };
        a.record(&ex.log, &o);
    }
}

/// Logs an answer ekilibri gave `c` itself, with no backend
/// ([`super::access::AccessSink::record_own`]), unless nothing arrived.
fn log_own(
    access: &mut Option<super::access::AccessSink>,
    c: &ClientConn,
    head: &[u8],
    status: u16,
    now: Tick,
) {
    // A connection that sent nothing made no request (nginx logs none).
    if let Some(a) = access.as_mut().filter(|_| !head.is_empty()) {
        let total = c.head_since.map_or(Duration::ZERO, |t| t.until(now));
        a.record_own(c.peer, head, status, total);
    }
}

/// Whether a warning last logged at `*last` may be logged again at `now`
/// (at most once a minute); if so, records `now`.
fn warn_due(last: &mut Option<Tick>, now: Tick) -> bool {
    if last.is_some_and(|t| now < t.after(Duration::from_secs(60))) {
        return false;
    }
    *last = Some(now);
    true
}

/// `SO_LINGER` with a zero timeout: closing the socket sends a reset and
/// drops whatever it still holds unsent. Best effort: on failure the close
/// is a plain one.
fn set_linger_zero(sock: &TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket descriptor, and a `linger` of the size given.
    unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&raw const linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

/// The outcome of a non-blocking connect: `Ok(true)` established,
/// `Ok(false)` still in progress.
fn connect_result(sock: &TcpStream) -> io::Result<bool> {
    if let Some(e) = sock.take_error()? {
        return Err(e);
    }
    match sock.peer_addr() {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
        Err(e) => Err(e),
    }
}

/// Hands memory the allocator holds free back to the system. glibc keeps
/// freed blocks below the top of its heap for reuse, so the buffers of a
/// burst, once freed, would stay in the RSS for good; at most once per
/// `POOL_TRIM_INTERVAL`, after a trim that freed at least 1 MiB.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory of the allocator.
    unsafe {
        libc::malloc_trim(0);
    }
}

fn is_fd_exhaustion(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}

/// An error opening a socket that says this host is short of something
/// (descriptors, kernel memory, local ports), not that the peer failed.
fn is_local_shortage(e: &io::Error) -> bool {
    is_fd_exhaustion(e)
        || matches!(
            e.raw_os_error(),
            Some(libc::ENOBUFS | libc::ENOMEM | libc::EADDRNOTAVAIL | libc::ENOSPC)
        )
}

fn log_transition(b: &Backend, t: Transition, now: Tick) {
    match t {
        Transition::Out => {
            let last = b.health.last_failure().map_or("unknown", |k| k.describe());
            warn!(
                "backend {} out of rotation: {} failures in {}s (last: {last})",
                b.addr,
                b.health.failures_in_window(now),
                b.health.window().as_secs()
            );
        }
        Transition::In => info!("backend {} back in rotation", b.addr),
    }
}

/// Rewrites a complete request head for the backend into `scratch`
/// (cleared first), with the client's address for `X-Forwarded-For`.
fn rewrite_into(
    scratch: &mut Buf,
    head: &[u8],
    peer: SocketAddr,
    default_host: &str,
    forwarded: bool,
) -> Result<head::RequestHead, HeadError> {
    let mut ip_text = IpText::default();
    let info = ForwardInfo {
        client_ip: ip_text.format(peer),
        default_host,
        forwarded,
    };
    scratch.clear();
    rewrite_request(head, &info, scratch)
}

/// A client address formatted without allocating.
struct IpText {
    buf: [u8; 64],
}

impl Default for IpText {
    fn default() -> Self {
        IpText { buf: [0; 64] }
    }
}

impl IpText {
    fn format(&mut self, addr: SocketAddr) -> &[u8] {
        let n = match addr.ip() {
            IpAddr::V4(v4) => {
                // Dotted quad by hand: `fmt` costs ten times as much, on
                // every request.
                let mut n = 0;
                for (i, octet) in v4.octets().into_iter().enumerate() {
                    if i > 0 {
                        self.buf[n] = b'.';
                        n += 1;
                    }
                    let mut digits = [0u8; 20];
                    let len = fmt_u64(u64::from(octet), &mut digits);
                    self.buf[n..n + len].copy_from_slice(&digits[20 - len..]);
                    n += len;
                }
                n
            }
            ip @ IpAddr::V6(_) => {
                use std::io::Write;
                let mut cursor = io::Cursor::new(&mut self.buf[..]);
                let _ = write!(cursor, "{ip}");
                cursor.position() as usize
            }
        };
        &self.buf[..n]
    }
}

#[cfg(test)]
mod size_tests {
    /// An idle keep-alive client costs its slab slot and nothing else (its
    /// buffers and exchange are pooled), so the slot size is the idle
    /// memory per connection.
    #[test]
    fn idle_connection_slot_stays_small() {
        assert!(std::mem::size_of::<super::Entry>() <= 256);
    }
}

#[cfg(test)]
mod ip_text_tests {
    use super::IpText;
    use std::net::SocketAddr;

    #[test]
    fn formats_like_display() {
        for a in [
            "0.0.0.0:1",
            "255.255.255.255:80",
            "10.0.12.1:8080",
            "127.0.0.1:1",
            "192.168.100.9:2",
            "[::1]:80",
            "[2001:db8::8a2e:370:7334]:443",
            "[::ffff:1.2.3.4]:9",
        ] {
            let addr: SocketAddr = a.parse().unwrap();
            assert_eq!(
                IpText::default().format(addr),
                addr.ip().to_string().as_bytes()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generations_never_reach_the_reserved_bits() {
        // Tokens and timer keys of the listeners, signals, waker and timer
        // kinds all live in bits 59 and up.
        let reserved: u64 = !0 << 59;
        for special in [LISTENER.0, SIGNALS.0, ADMIN.0, RELOADED.0] {
            assert_ne!(special as u64 & reserved, 0);
        }
        for special in [PROBE_TIMER, ACCEPT_TIMER, SHUTDOWN_TIMER] {
            assert_ne!(special & reserved, 0);
        }
        let top = Reactor::token(u32::MAX as usize, MAX_GENERATION).0 as u64;
        assert_eq!(top & reserved, 0);
        assert_eq!(next_generation(MAX_GENERATION), 1);
        assert_eq!(next_generation(u32::MAX), 1);
        assert_eq!(next_generation(1), 2);
    }
}
