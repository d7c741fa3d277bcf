//! Reloads read the configuration file off the event loop, once for every
//! worker.
//!
//! Reading and validating a file is quick, but resolving host names in
//! `servers` can wait seconds on a slow or dead resolver. So a reload runs
//! [`crate::config::load`] on a short-lived thread and hands the result
//! back through a channel and a [`mio::Waker`]; the loop goes on serving
//! meanwhile and applies the result in a later turn.
//!
//! With `workers = N`, every worker receives `SIGHUP` and asks for a read,
//! naming how many `SIGHUP`s the process has had (`signals::hangups`); the
//! first request for a count starts the read, the others find it covered,
//! and the one result goes to all workers. Any worker can start it, so a
//! worker that has exited does not take reloads with it. Reading the file
//! once per worker could give two workers two configurations: the file may
//! be rewritten between two reads, and a host name may resolve differently.
//!
//! The hub also settles what the workers then apply: `--listen` in place of
//! the file's `listen`, and, with several workers, a check that a new
//! listen address is free ([`ReloadHub::new`]), which no worker can make by
//! itself.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, MutexGuard};

use mio::{Registry, Token, Waker};

use crate::config::{Config, ConfigError};

/// The outcome of one background read.
pub type Loaded = Result<Config, ConfigError>;

/// What reads a file (`crate::config::load`, or a stand-in in tests).
type ReadFn = fn(&Path) -> Loaded;

/// Which of a worker's two listeners an address is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// The client listener, `listen`.
    Listen,
    /// The admin listener, `admin_listen`.
    Admin,
}

impl Role {
    /// The configuration key.
    fn key(self) -> &'static str {
        match self {
            Role::Listen => "listen",
            Role::Admin => "admin_listen",
        }
    }
}

/// One worker, as the hub sees it.
#[derive(Debug)]
struct Subscriber {
    /// Where each result goes, and what wakes the worker's loop.
    tx: Sender<Loaded>,
    waker: Arc<Waker>,
    /// The addresses its listeners are bound to or configured with, and
    /// those it is about to bind.
    listening: Vec<(Role, SocketAddr)>,
}

/// Shared by every worker's [`Loader`].
#[derive(Debug)]
struct Hub {
    read: ReadFn,
    /// Workers in the process: with more than one, each binds its
    /// listeners with `SO_REUSEPORT`.
    workers: usize,
    /// `--listen`, which reloads keep in place of the file's `listen`.
    listen_override: Option<SocketAddr>,
    /// One per worker.
    subscribers: Vec<Subscriber>,
    /// A read is under way.
    reading: bool,
    /// The latest request count a read (under way or done) answers.
    covered: u64,
    /// Another reload was asked for while one was under way: the file may
    /// have changed after it was read, so it is read once more, answering
    /// requests up to this count.
    again: Option<(PathBuf, u64)>,
}

/// The reload machinery shared by the workers of one process; hand out
/// one loader per worker (`Reactor::set_config_path` subscribes).
#[derive(Debug, Clone)]
pub struct ReloadHub(Arc<Mutex<Hub>>);

impl ReloadHub {
    /// The hub of a process with `workers` workers, started with
    /// `--listen listen_override` if that is `Some`.
    ///
    /// With several workers, each binds a new listen or admin address by
    /// itself with `SO_REUSEPORT`, and that bind also succeeds beside
    /// another process's `SO_REUSEPORT` socket, taking part of its
    /// connections. So a read that names an address none of the workers
    /// holds for that listener checks once, before any worker gets the
    /// result, that nothing listens there (as start-up does), and the
    /// reload is refused if something does.
    pub fn new(workers: usize, listen_override: Option<SocketAddr>) -> ReloadHub {
        ReloadHub::with_reader(crate::config::load, workers, listen_override)
    }

    fn with_reader(read: ReadFn, workers: usize, listen_override: Option<SocketAddr>) -> ReloadHub {
        ReloadHub(Arc::new(Mutex::new(Hub {
            read,
            workers,
            listen_override,
            subscribers: Vec::new(),
            reading: false,
            covered: 0,
            again: None,
        })))
    }

    fn lock(&self) -> MutexGuard<'_, Hub> {
        // A panic while holding the lock leaves plain data behind.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A worker's end: results are reported on `registry` as `token`.
    pub(crate) fn subscribe(&self, registry: &Registry, token: Token) -> io::Result<Loader> {
        let waker = Arc::new(Waker::new(registry, token)?);
        let (tx, rx) = mpsc::channel();
        let mut hub = self.lock();
        hub.subscribers.push(Subscriber {
            tx,
            waker,
            listening: Vec::new(),
        });
        Ok(Loader {
            hub: self.clone(),
            rx,
            index: hub.subscribers.len() - 1,
        })
    }

    /// Asks for a read of `path` answering request `seq` (the number of
    /// `SIGHUP`s seen): nothing if a read started for `seq` or later
    /// already; if one for an earlier count is under way, another follows
    /// it (several requests meanwhile make one read); else one starts.
    fn request(&self, path: PathBuf, seq: u64) -> io::Result<()> {
        let mut hub = self.lock();
        if seq <= hub.covered {
            return Ok(());
        }
        if hub.reading {
            // Said once per signal (every worker asks with the same `seq`),
            // so that a read that never ends (a file on a hung network
            // mount) shows in the log.
            if hub.again.as_ref().is_none_or(|(_, s)| *s < seq) {
                log::info!(
                    "SIGHUP received; the previous reload is still reading its file, {} is read again after it",
                    path.display()
                );
            }
            let later = hub.again.as_ref().map_or(seq, |(_, s)| seq.max(*s));
            hub.again = Some((path, later));
            return Ok(());
        }
        log::info!("SIGHUP received, reloading {}", path.display());
        hub.reading = true;
        let before = std::mem::replace(&mut hub.covered, seq);
        let read = hub.read;
        drop(hub);
        let reader = Reader {
            hub: self.clone(),
            path: path.clone(),
            done: false,
        };
        let spawned = std::thread::Builder::new()
            .name("reload".into())
            .spawn(move || reader.run(read));
        if let Err(e) = spawned {
            // Nothing read: a later request for the same count may try.
            let mut hub = self.lock();
            hub.reading = false;
            hub.covered = before;
            return Err(e);
        }
        Ok(())
    }
}

/// The reading thread's state. A read that panics is a failed read
/// ([`read_caught`]); if the thread still ends without a result, dropping
/// this tells every worker and lets later reloads run.
struct Reader {
    hub: ReloadHub,
    path: PathBuf,
    done: bool,
}

impl Reader {
    fn run(mut self, read: ReadFn) {
        loop {
            let loaded = read_caught(read, &self.path);
            let mut hub = self.hub.lock();
            let loaded = loaded.and_then(|cfg| hub.settle(cfg, &self.path));
            broadcast(&hub, &loaded);
            match hub.again.take() {
                Some((next, seq)) => {
                    self.path = next;
                    hub.covered = hub.covered.max(seq);
                }
                None => {
                    hub.reading = false;
                    self.done = true;
                    return;
                }
            }
        }
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut hub = self.hub.lock();
        hub.reading = false;
        hub.again = None;
        let lost = Err(ConfigError::file(
            &self.path,
            "the reload thread ended without a result",
        ));
        broadcast(&hub, &lost);
    }
}

/// `read(path)`, with a panic turned into an error: that reload is
/// refused (every worker logs why), and one asked for meanwhile still reads
/// after it. (The panic itself is on stderr, from the panic hook.)
fn read_caught(read: ReadFn, path: &Path) -> Loaded {
    std::panic::catch_unwind(|| read(path)).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("no message");
        Err(ConfigError::file(
            path,
            format!("reading the file panicked: {what}"),
        ))
    })
}

impl Hub {
    /// What the workers are to apply, read from `path`: `cfg` with
    /// `--listen` in place of its `listen`; refused if, with several
    /// workers, a listen or admin address that no worker holds for that
    /// listener is in use (see [`ReloadHub::new`]). Runs under the lock,
    /// as [`Loader::listening`] does, so a worker's bind cannot come
    /// between the check and its report.
    fn settle(&self, mut cfg: Config, path: &Path) -> Loaded {
        if let Some(addr) = self.listen_override {
            cfg.listen = addr;
        }
        if self.workers < 2 {
            return Ok(cfg);
        }
        let wanted = std::iter::once((Role::Listen, cfg.listen))
            .chain(cfg.admin_listen.map(|a| (Role::Admin, a)));
        for (role, addr) in wanted {
            let held = self
                .subscribers
                .iter()
                .any(|s| s.listening.contains(&(role, addr)));
            if held {
                continue;
            }
            let other = match role {
                Role::Listen => Role::Admin,
                Role::Admin => Role::Listen,
            };
            if self
                .subscribers
                .iter()
                .any(|s| s.listening.contains(&(other, addr)))
            {
                // Both listeners would share the port for a moment, and
                // connections could land on the wrong one.
                return Err(ConfigError::key(
                    path,
                    role.key(),
                    format!(
                        "cannot listen on {addr}: it is this process's {} address; with \
                         workers = {} a listener moves onto the other's address in two \
                         reloads (first move the other elsewhere)",
                        other.key(),
                        self.workers
                    ),
                ));
            }
            if let Err(e) = super::listen::ensure_free(addr) {
                return Err(ConfigError::key(
                    path,
                    role.key(),
                    format!(
                        "cannot listen on {addr}: {e}; another socket listens there, and with \
                         workers = {} the workers would bind beside it (SO_REUSEPORT) and take \
                         part of its connections",
                        self.workers
                    ),
                ));
            }
        }
        Ok(cfg)
    }
}

fn broadcast(hub: &Hub, loaded: &Loaded) {
    for s in &hub.subscribers {
        // A worker that has stopped no longer listens; the others still do.
        if s.tx.send(loaded.clone()).is_ok() {
            let _ = s.waker.wake();
        }
    }
}

/// One worker's end of the [`ReloadHub`].
#[derive(Debug)]
pub struct Loader {
    hub: ReloadHub,
    rx: Receiver<Loaded>,
    /// This worker's place in the hub's subscribers.
    index: usize,
}

impl Loader {
    /// `SIGHUP` number `seq` arrived: reads `path` unless another
    /// worker's request for it did already (every worker gets the result).
    pub fn request(&mut self, path: PathBuf, seq: u64) -> io::Result<()> {
        self.hub.request(path, seq)
    }

    /// Tells the hub which addresses this worker's listeners hold, and
    /// which it is about to bind: call before binding (so that a read
    /// checked meanwhile does not take its own socket for another
    /// process's), and again once the reload is applied or refused.
    pub(crate) fn listening(&mut self, addrs: Vec<(Role, SocketAddr)>) {
        self.hub.lock().subscribers[self.index].listening = addrs;
    }

    /// The next finished read, if there is one (call when the waker's
    /// token fires, until it returns `None`).
    pub fn take(&mut self) -> Option<Loaded> {
        // Disconnected cannot happen: the hub holds the sender.
        self.rx.try_recv().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mio::{Events, Poll};
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::time::Duration;

    fn wait(poll: &mut Poll, loader: &mut Loader) -> Loaded {
        let mut events = Events::with_capacity(4);
        for _ in 0..500 {
            if let Some(r) = loader.take() {
                return r;
            }
            poll.poll(&mut events, Some(Duration::from_millis(20)))
                .unwrap();
        }
        panic!("no reload result");
    }

    /// One worker's poll and loader on `hub`.
    fn one_worker(hub: &ReloadHub) -> (Poll, Loader) {
        let poll = Poll::new().unwrap();
        let loader = hub.subscribe(poll.registry(), Token(7)).unwrap();
        (poll, loader)
    }

    fn busy(loader: &Loader) -> bool {
        loader.hub.lock().reading
    }

    #[test]
    fn a_read_reports_through_the_waker_and_a_second_request_reads_again() {
        let dir = std::env::temp_dir().join(format!("ekilibri-reload-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.toml");
        std::fs::write(&path, "servers = [\"127.0.0.1:9001\"]\n").unwrap();
        let (mut poll, mut loader) = one_worker(&ReloadHub::new(1, None));
        assert!(loader.take().is_none());
        loader.request(path.clone(), 1).unwrap();
        // Asked again while the first read may still run: one more read.
        loader.request(path.clone(), 2).unwrap();
        let first = wait(&mut poll, &mut loader).unwrap();
        assert_eq!(first.servers[0].addr.port(), 9001);
        // The second request makes a second read, whenever the first ended.
        assert_eq!(wait(&mut poll, &mut loader).unwrap().servers.len(), 1);
        std::fs::write(&path, "servers = [\"127.0.0.1:9002\"]\n").unwrap();
        while busy(&loader) {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(loader.take().is_none(), "two requests, two reads");
        // A request for a count already answered reads nothing.
        loader.request(path.clone(), 2).unwrap();
        assert!(!busy(&loader));
        loader.request(path.clone(), 3).unwrap();
        let last = wait(&mut poll, &mut loader).unwrap();
        assert_eq!(last.servers[0].addr.port(), 9002);
        std::fs::write(&path, "servers = [").unwrap();
        loader.request(path.clone(), 4).unwrap();
        assert!(wait(&mut poll, &mut loader).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    static READS: AtomicUsize = AtomicUsize::new(0);

    /// Gives a different configuration on every read, as a file rewritten
    /// between two reads (or a host name resolving anew) would.
    fn counting_read(path: &Path) -> Loaded {
        let n = READS.fetch_add(1, Ordering::SeqCst);
        let toml = format!("servers = [\"127.0.0.1:{}\"]\n", 9100 + n);
        crate::config::parse(path, &toml)
    }

    #[test]
    fn every_worker_applies_the_one_read_a_sighup_started() {
        let hub = ReloadHub::with_reader(counting_read, 1, None);
        let (mut p1, mut p2) = (Poll::new().unwrap(), Poll::new().unwrap());
        let mut leader = hub.subscribe(p1.registry(), Token(7)).unwrap();
        let mut other = hub.subscribe(p2.registry(), Token(7)).unwrap();
        let path = PathBuf::from("workers.toml");
        // Both workers get SIGHUP number 1; the second request reads
        // nothing more.
        other.request(path.clone(), 1).unwrap();
        leader.request(path.clone(), 1).unwrap();
        let a = wait(&mut p1, &mut leader).unwrap();
        let b = wait(&mut p2, &mut other).unwrap();
        assert_eq!(a, b, "both workers got the same configuration");
        assert_eq!(READS.load(Ordering::SeqCst), 1, "the file was read once");
        while busy(&leader) {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(leader.take().is_none() && other.take().is_none());
        // The first worker has gone: the other's request still reads.
        drop(leader);
        other.request(path.clone(), 2).unwrap();
        let c = wait(&mut p2, &mut other).unwrap();
        assert_ne!(c, b, "a second read, with the file changed");
        assert_eq!(READS.load(Ordering::SeqCst), 2);
    }

    fn panicking_read(_: &Path) -> Loaded {
        panic!("reader failed");
    }

    #[test]
    fn a_reader_that_panics_reports_an_error_and_later_reloads_still_run() {
        let (mut poll, mut loader) = one_worker(&ReloadHub::with_reader(panicking_read, 1, None));
        let path = PathBuf::from("gone.toml");
        for seq in 1..=2 {
            loader.request(path.clone(), seq).unwrap();
            let e = wait(&mut poll, &mut loader).unwrap_err();
            assert_eq!(
                e.to_string(),
                "gone.toml: reading the file panicked: reader failed"
            );
        }
    }

    /// Writes `text` to `path` and reloads it as `SIGHUP` number `seq`.
    fn reload_text(
        poll: &mut Poll,
        loader: &mut Loader,
        path: &Path,
        seq: u64,
        text: &str,
    ) -> Loaded {
        std::fs::write(path, text).unwrap();
        loader.request(path.to_path_buf(), seq).unwrap();
        wait(poll, loader)
    }

    #[test]
    fn with_workers_an_address_another_socket_listens_on_is_refused() {
        let dir = std::env::temp_dir().join(format!("ekilibri-settle-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.toml");
        let bind = || crate::proxy::listen::bind("127.0.0.1:0".parse().unwrap(), true).unwrap();
        // Another process's SO_REUSEPORT socket, and a worker's own two.
        let sockets = [bind(), bind(), bind()];
        let [foreign, own, own_admin] = sockets.each_ref().map(|l| l.local_addr().unwrap());
        let text = |listen: SocketAddr, admin: SocketAddr| {
            format!(
                "servers = [\"127.0.0.1:9001\"]\nlisten = \"{listen}\"\nadmin_listen = \"{admin}\"\n"
            )
        };
        let held = vec![(Role::Listen, own), (Role::Admin, own_admin)];

        let (mut poll, mut loader) = one_worker(&ReloadHub::new(2, None));
        loader.listening(held.clone());
        let mut reload = |seq, listen, admin| {
            reload_text(&mut poll, &mut loader, &path, seq, &text(listen, admin))
        };
        let e = reload(1, foreign, own_admin).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("listen"), "{e}");
        assert!(
            e.reason
                .starts_with(&format!("cannot listen on {foreign}: ")),
            "{e}"
        );
        // The workers' own sockets do not count, for the same listener.
        assert_eq!(reload(2, own, own_admin).unwrap().listen, own);
        let e = reload(3, own, foreign).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("admin_listen"), "{e}");
        let e = reload(4, own_admin, own).unwrap_err();
        assert_eq!(
            e.key.as_deref(),
            Some("listen"),
            "an address the workers hold for admin_listen is not theirs for listen: {e}"
        );
        // ... and the reason names it as the process's own, not another
        // socket's.
        assert!(
            e.reason.contains("this process's admin_listen address")
                && !e.reason.contains("another socket"),
            "{e}"
        );

        // One worker binds without SO_REUSEPORT: its bind fails by itself.
        let (mut poll, mut loader) = one_worker(&ReloadHub::new(1, None));
        reload_text(&mut poll, &mut loader, &path, 1, &text(foreign, own_admin)).unwrap();

        // `--listen` replaces the file's listen before the check.
        let (mut poll, mut loader) = one_worker(&ReloadHub::new(2, Some(own)));
        loader.listening(held);
        let cfg = reload_text(&mut poll, &mut loader, &path, 1, &text(foreign, own_admin)).unwrap();
        assert_eq!(cfg.listen, own);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    static RELEASED: AtomicBool = AtomicBool::new(false);
    static PANICKY_READS: AtomicUsize = AtomicUsize::new(0);

    /// The first read waits for `RELEASED`, then panics; later reads succeed.
    fn first_read_panics_when_released(path: &Path) -> Loaded {
        if PANICKY_READS.fetch_add(1, Ordering::SeqCst) == 0 {
            while !RELEASED.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(1));
            }
            panic!("first read failed");
        }
        crate::config::parse(path, "servers = [\"127.0.0.1:9200\"]\n")
    }

    #[test]
    fn a_reload_queued_behind_a_read_that_panics_still_reads() {
        let hub = ReloadHub::with_reader(first_read_panics_when_released, 1, None);
        let (mut poll, mut loader) = one_worker(&hub);
        let path = PathBuf::from("queued.toml");
        loader.request(path.clone(), 1).unwrap();
        // The first read is under way (it waits for RELEASED): a second
        // SIGHUP queues one more read behind it.
        loader.request(path.clone(), 2).unwrap();
        RELEASED.store(true, Ordering::SeqCst);
        assert!(wait(&mut poll, &mut loader).is_err());
        let next = wait(&mut poll, &mut loader).expect("the queued reload read the file");
        assert_eq!(next.servers[0].addr.port(), 9200);
        assert_eq!(PANICKY_READS.load(Ordering::SeqCst), 2);
    }
}
