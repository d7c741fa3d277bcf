//! Reloads read the configuration file off the event loop.
//!
//! Reading and validating a file is quick, but resolving host names in
//! `servers` can wait seconds on a slow or dead resolver. So a reload runs
//! [`crate::config::load`] on a short-lived thread and hands the result
//! back through a channel and a [`mio::Waker`]; the loop goes on serving
//! meanwhile and applies the result in a later turn.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, TryRecvError};

use mio::{Registry, Token, Waker};

use crate::config::{Config, ConfigError};

/// The outcome of one background read.
pub type Loaded = Result<Config, ConfigError>;

/// Reads configuration files on a helper thread, one at a time.
#[derive(Debug)]
pub struct Loader {
    waker: Arc<Waker>,
    /// The read under way, if any.
    pending: Option<Receiver<Loaded>>,
    /// Another reload was asked for while one was under way: the file may
    /// have changed after it was read, so it is read once more.
    again: Option<PathBuf>,
}

/// Wakes the loop when the reading thread ends, even if it panicked.
struct WakeOnDrop(Arc<Waker>);

impl Drop for WakeOnDrop {
    fn drop(&mut self) {
        let _ = self.0.wake();
    }
}

impl Loader {
    /// Registers the waker that reports finished reads as `token`
    /// (one per poller).
    pub fn new(registry: &Registry, token: Token) -> io::Result<Loader> {
        Ok(Loader {
            waker: Arc::new(Waker::new(registry, token)?),
            pending: None,
            again: None,
        })
    }

    /// Starts reading `path`. If a read is under way, another one starts
    /// when it finishes (several requests meanwhile make one read).
    pub fn request(&mut self, path: PathBuf) -> io::Result<()> {
        if self.pending.is_some() {
            self.again = Some(path);
            return Ok(());
        }
        let (tx, rx) = mpsc::channel();
        let wake = WakeOnDrop(Arc::clone(&self.waker));
        std::thread::Builder::new()
            .name("reload".into())
            .spawn(move || {
                // Dropped in reverse: the sender goes first, so the loop,
                // once woken, sees the result or a closed channel.
                let _wake = wake;
                let tx = tx;
                let _ = tx.send(crate::config::load(&path));
            })?;
        self.pending = Some(rx);
        Ok(())
    }

    /// Whether a read is under way.
    #[cfg(test)]
    fn busy(&self) -> bool {
        self.pending.is_some()
    }

    /// The finished read, if there is one (call when the waker's token
    /// fires, then [`Loader::resume`]).
    pub fn take(&mut self) -> Option<io::Result<Loaded>> {
        let result = match self.pending.as_ref()?.try_recv() {
            Ok(loaded) => Ok(loaded),
            Err(TryRecvError::Empty) => return None,
            Err(TryRecvError::Disconnected) => {
                Err(io::Error::other("the reload thread ended without a result"))
            }
        };
        self.pending = None;
        Some(result)
    }

    /// Starts the read asked for while the last one was under way, if any.
    pub fn resume(&mut self) -> io::Result<()> {
        match self.again.take() {
            Some(path) if self.pending.is_none() => self.request(path),
            Some(path) => {
                self.again = Some(path);
                Ok(())
            }
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mio::{Events, Poll};
    use std::time::Duration;

    fn wait(poll: &mut Poll, loader: &mut Loader) -> Loaded {
        let mut events = Events::with_capacity(4);
        for _ in 0..500 {
            poll.poll(&mut events, Some(Duration::from_millis(20)))
                .unwrap();
            if let Some(r) = loader.take() {
                loader.resume().unwrap();
                return r.unwrap();
            }
        }
        panic!("no reload result");
    }

    #[test]
    fn a_read_reports_through_the_waker_and_a_second_request_reads_again() {
        let dir = std::env::temp_dir().join(format!("ekilibri-reload-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.toml");
        std::fs::write(&path, "servers = [\"127.0.0.1:9001\"]\n").unwrap();
        let mut poll = Poll::new().unwrap();
        let mut loader = Loader::new(poll.registry(), Token(7)).unwrap();
        assert!(loader.take().is_none());
        loader.request(path.clone()).unwrap();
        // Asked again while the first read may still run: one more read.
        loader.request(path.clone()).unwrap();
        let first = wait(&mut poll, &mut loader).unwrap();
        assert_eq!(first.servers[0].addr.port(), 9001);
        // The second request started a second read as the first finished.
        assert!(loader.busy());
        assert_eq!(wait(&mut poll, &mut loader).unwrap().servers.len(), 1);
        assert!(!loader.busy());
        std::fs::write(&path, "servers = [\"127.0.0.1:9002\"]\n").unwrap();
        loader.request(path.clone()).unwrap();
        let last = wait(&mut poll, &mut loader).unwrap();
        assert_eq!(last.servers[0].addr.port(), 9002);
        assert!(!loader.busy());
        std::fs::write(&path, "servers = [").unwrap();
        loader.request(path.clone()).unwrap();
        assert!(wait(&mut poll, &mut loader).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
