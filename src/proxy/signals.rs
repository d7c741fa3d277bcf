//! Signals delivered into the event loop through a self-pipe: the handler
//! only writes the signal number to a non-blocking pipe (async-signal-safe),
//! and the pipe's read end is one more source in the poller. No thread.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Mutex;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};

/// Most reactors (workers) that can listen for signals.
const MAX_PIPES: usize = 64;

/// Write ends of the pipes, one per reactor; -1 = free slot.
static PIPES: [AtomicI32; MAX_PIPES] = [const { AtomicI32::new(-1) }; MAX_PIPES];
/// SIGHUPs received so far. Every worker gets each signal; a reload request
/// names the count it answers, so that the workers' requests for one
/// `SIGHUP` make one read of the file (see `reload::ReloadHub`).
static HANGUPS: AtomicU64 = AtomicU64::new(0);

/// The number of `SIGHUP`s received so far.
pub fn hangups() -> u64 {
    HANGUPS.load(Ordering::SeqCst)
}

/// Serialises installation (not the handler, which only reads atomics).
static INSTALL: Mutex<bool> = Mutex::new(false);

/// Every signal with a handler.
const HANDLED: [libc::c_int; 6] = [
    libc::SIGHUP,
    libc::SIGTERM,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
];

/// Signals whose default action (ending the process) would be wrong at any
/// time: they are held back during start-up, see [`defer_during_startup`].
const DEFERRED: [libc::c_int; 3] = [libc::SIGHUP, libc::SIGUSR1, libc::SIGUSR2];

/// Blocks SIGHUP, SIGUSR1 and SIGUSR2 in the calling thread (and the
/// threads it starts from now on), so that one arriving before the handlers
/// are installed, while the configuration is read and host names resolve,
/// waits instead of killing the process. Call first thing in `main`, then
/// [`release_deferred`] once every reactor has its [`SignalPipe`]: a signal
/// that arrived meanwhile is delivered then. Stop signals are not held:
/// during start-up there is nothing to drain.
pub fn defer_during_startup() -> io::Result<()> {
    set_mask(libc::SIG_BLOCK)
}

/// Unblocks what [`defer_during_startup`] blocked, in the calling thread;
/// pending signals are delivered to the installed handlers at once.
pub fn release_deferred() -> io::Result<()> {
    set_mask(libc::SIG_UNBLOCK)
}

fn set_mask(how: libc::c_int) -> io::Result<()> {
    // SAFETY: a sigset_t initialised by sigemptyset, filled by sigaddset
    // and passed to pthread_sigmask with no old-set pointer.
    let rc = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&raw mut set);
        for sig in DEFERRED {
            libc::sigaddset(&raw mut set, sig);
        }
        libc::pthread_sigmask(how, &raw const set, std::ptr::null_mut())
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(rc))
    }
}

/// A signal the reactor acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGHUP: reload the configuration.
    Reload,
    /// SIGTERM, SIGINT or SIGQUIT (nginx's graceful stop): stop gracefully
    /// (a second one: stop now).
    Terminate,
    /// SIGUSR1: reopen log files.
    ReopenLogs,
    /// SIGUSR2 (nginx's binary upgrade, HAProxy's master reload): ignored
    /// with a warning rather than letting it kill the process.
    Unsupported,
}

impl Signal {
    fn from_number(n: u8) -> Option<Signal> {
        match i32::from(n) {
            libc::SIGHUP => Some(Signal::Reload),
            libc::SIGTERM | libc::SIGINT | libc::SIGQUIT => Some(Signal::Terminate),
            libc::SIGUSR1 => Some(Signal::ReopenLogs),
            libc::SIGUSR2 => Some(Signal::Unsupported),
            _ => None,
        }
    }
}

extern "C" fn on_signal(sig: libc::c_int) {
    if sig == libc::SIGHUP {
        // Counted before any worker is woken, so every worker that sees
        // this signal reads a count that includes it (a lock-free atomic:
        // async-signal-safe).
        HANGUPS.fetch_add(1, Ordering::SeqCst);
    }
    let byte = sig as u8;
    for slot in &PIPES {
        let fd = slot.load(Ordering::Relaxed);
        if fd >= 0 {
            // SAFETY: write(2) is async-signal-safe; a full pipe just drops
            // the byte (the reader already has one pending).
            unsafe { libc::write(fd, (&raw const byte).cast(), 1) };
        }
    }
}

/// The read end of one reactor's signal pipe.
#[derive(Debug)]
pub struct SignalPipe {
    read: OwnedFd,
    write: OwnedFd,
    slot: usize,
}

impl SignalPipe {
    /// Creates a pipe for one reactor and installs the handlers (once per
    /// process) for SIGHUP, SIGTERM, SIGINT, SIGQUIT, SIGUSR1 and SIGUSR2.
    pub fn new() -> io::Result<SignalPipe> {
        let mut fds = [0 as RawFd; 2];
        // SAFETY: pipe2(2) fills `fds` on success.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: both descriptors are fresh and owned here.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        let mut installed = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
        let slot = PIPES
            .iter()
            .position(|s| {
                s.compare_exchange(-1, write.as_raw_fd(), Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok()
            })
            .ok_or_else(|| io::Error::other("too many signal pipes"))?;
        if !*installed {
            for sig in HANDLED {
                // SAFETY: a zeroed sigaction with a plain handler and an
                // empty mask is valid; SA_RESTART keeps other syscalls going.
                unsafe {
                    let mut sa: libc::sigaction = std::mem::zeroed();
                    sa.sa_sigaction = on_signal as *const () as usize;
                    sa.sa_flags = libc::SA_RESTART;
                    libc::sigemptyset(&raw mut sa.sa_mask);
                    if libc::sigaction(sig, &raw const sa, std::ptr::null_mut()) < 0 {
                        return Err(io::Error::last_os_error());
                    }
                }
            }
            *installed = true;
        }
        Ok(SignalPipe { read, write, slot })
    }

    /// The descriptor to register with the poller.
    pub fn fd(&self) -> RawFd {
        self.read.as_raw_fd()
    }

    /// Signals received since the last call, in order (drains the pipe).
    pub fn drain(&self, mut each: impl FnMut(Signal)) {
        let mut buf = [0u8; 64];
        loop {
            // SAFETY: read(2) into a live buffer of its length.
            let n =
                unsafe { libc::read(self.read.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                // Interrupted by a signal: bytes may remain, and the pipe is
                // edge-triggered, so read on.
                continue;
            }
            if n <= 0 {
                return;
            }
            for &b in &buf[..n as usize] {
                if let Some(s) = Signal::from_number(b) {
                    each(s);
                }
            }
        }
    }
}

impl Drop for SignalPipe {
    fn drop(&mut self) {
        let _ = PIPES[self.slot].compare_exchange(
            self.write.as_raw_fd(),
            -1,
            Ordering::SeqCst,
            Ordering::SeqCst,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The handler writes to every pipe of the process: one test at a time.
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

    #[test]
    fn a_raised_signal_reaches_every_pipe() {
        let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let a = SignalPipe::new().unwrap();
        let b = SignalPipe::new().unwrap();
        // SAFETY: raising a signal whose handler is installed.
        unsafe { libc::raise(libc::SIGUSR1) };
        let mut got = Vec::new();
        a.drain(|s| got.push(s));
        b.drain(|s| got.push(s));
        assert_eq!(got, [Signal::ReopenLogs, Signal::ReopenLogs]);
        a.drain(|_| panic!("drained twice"));
    }

    #[test]
    fn a_deferred_signal_waits_for_release() {
        let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        // A thread of its own: the mask is per thread, and a signal raised
        // with raise(3) is sent to the calling thread.
        std::thread::spawn(|| {
            let pipe = SignalPipe::new().unwrap();
            defer_during_startup().unwrap();
            // SAFETY: raising a signal whose handler is installed.
            unsafe { libc::raise(libc::SIGUSR2) };
            pipe.drain(|s| panic!("{s:?} delivered while deferred"));
            release_deferred().unwrap();
            let mut got = Vec::new();
            pipe.drain(|s| got.push(s));
            assert_eq!(got, [Signal::Unsupported]);
        })
        .join()
        .unwrap();
    }
}
