//! `tcp_floor`: the cheapest user-space forwarder one can write on this
//! kernel, used by `bench/proxy/proxy_bench.sh floor` to measure what any
//! epoll-based HTTP/1.1 proxy must spend per request.
//!
//! It does what a pooling proxy does with the syscalls, and nothing else:
//! each read from a client is one request, sent to an idle keep-alive
//! connection to the next backend (round robin; a new one is opened when
//! none is idle); each read from that backend is the whole response, sent
//! back to the client, and the backend connection goes back to the idle
//! pool. No parsing, no rewriting, no timers, no health checks. Per
//! keep-alive request that is one read and one write on each side plus a
//! share of `epoll_wait`, the four syscalls a real proxy makes, with almost
//! no user-space work, so its CPU per request is the kernel's floor.
//!
//! `Connection: close` requests (the `close` profiles) are handled as a
//! proxy does: the backend connection is kept (the field is overwritten
//! with `Connection: keep ` before it is sent), the client's is closed after
//! the response (whose `Connection: keep-alive` becomes `Connection: close`
//! with padding). So a `close` request costs an accept, the four syscalls,
//! and a close: the floor for that profile too.
//!
//! It is a measuring instrument, not a proxy: it assumes a read returns a
//! whole request or a whole response (true for wrk's GETs and the tiny
//! responses of the benchmark's backends, with no pipelining), and it drops
//! a connection on any error.
//!
//! Usage: `tcp_floor LISTEN BACKEND...` (e.g. `127.0.0.1:8080 127.0.0.1:9001`).
//!
//! With `FLOOR_SPIN_NS=N` in the environment it burns N ns of CPU per event
//! after each batch, before it waits again: a slower proxy with the same
//! syscalls. `bench/batching.sh` uses it to show how the number of
//! `epoll_wait` calls per request falls as a proxy's CPU per request rises
//! (`docs/performance.md`, "Syscalls per request and CPU per request").

use std::io::{self, Read, Write};
use std::net::SocketAddr;

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Registry, Token};
use slab::Slab;

const LISTENER: Token = Token(usize::MAX);
const BUF: usize = 16 * 1024;

const CLOSE_REQ: &[u8] = b"Connection: close\r\n";
const KEEP_REQ: &[u8] = b"Connection: keep \r\n";
const KEEP_RESP: &[u8] = b"Connection: keep-alive\r\n";
const CLOSE_RESP: &[u8] = b"Connection: close     \r\n";

struct Conn {
    sock: TcpStream,
    /// Client: the backend connection serving its request. Backend: the
    /// client it answers.
    peer: Option<usize>,
    /// Backend connections: the index of their backend (for the idle pool).
    backend: Option<usize>,
    /// Client: close after this response.
    close: bool,
    /// Bytes waiting for the socket to become writable.
    out: Vec<u8>,
    /// Something was written; `TCP_NODELAY` goes on before the next write,
    /// as ekilibri does (a first write is never delayed by Nagle), so a
    /// `close` request does not pay the `setsockopt`.
    written: bool,
    nodelay: bool,
}

/// Overwrites `from` with `to` (same length) where it first occurs.
fn replace(data: &mut [u8], from: &[u8], to: &[u8]) -> bool {
    match data.windows(from.len()).position(|w| w == from) {
        Some(i) => {
            data[i..i + to.len()].copy_from_slice(to);
            true
        }
        None => false,
    }
}

/// Writes `data` after anything already waiting; keeps what would block.
/// Returns false on an error.
fn send(c: &mut Conn, data: &[u8]) -> bool {
    if c.written && !c.nodelay {
        let _ = c.sock.set_nodelay(true);
        c.nodelay = true;
    }
    c.written = true;
    if c.out.is_empty() {
        match (&c.sock).write(data) {
            Ok(n) if n == data.len() => return true,
            Ok(n) => c.out.extend_from_slice(&data[n..]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => c.out.extend_from_slice(data),
            Err(e) if e.kind() == io::ErrorKind::NotConnected => c.out.extend_from_slice(data),
            Err(_) => return false,
        }
        true
    } else {
        c.out.extend_from_slice(data);
        flush(c)
    }
}

/// Writes what is waiting. Returns false on an error.
fn flush(c: &mut Conn) -> bool {
    while !c.out.is_empty() {
        match (&c.sock).write(&c.out) {
            Ok(n) => {
                c.out.drain(..n);
            }
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock
                    || e.kind() == io::ErrorKind::NotConnected =>
            {
                return true;
            }
            Err(_) => return false,
        }
    }
    true
}

struct Floor {
    conns: Slab<Conn>,
    backends: Vec<SocketAddr>,
    idle: Vec<Vec<usize>>,
    next: usize,
    buf: Box<[u8]>,
}

impl Floor {
    fn register(&mut self, registry: &Registry, conn: Conn) -> io::Result<usize> {
        let entry = self.conns.vacant_entry();
        let key = entry.key();
        let c = entry.insert(conn);
        registry.register(
            &mut c.sock,
            Token(key),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        Ok(key)
    }

    /// Closes `key` and, if it is in the middle of an exchange, its peer.
    fn drop_conn(&mut self, key: usize) {
        // Closing the socket takes it out of the epoll set: no
        // `epoll_ctl(DEL)`, as in ekilibri.
        if let Some(c) = self.conns.try_remove(key) {
            if let Some(b) = c.backend {
                self.idle[b].retain(|&k| k != key);
            }
            if let Some(peer) = c.peer {
                self.drop_conn(peer);
            }
        }
    }

    /// An idle connection to the next backend, or a new one.
    fn backend_conn(&mut self, registry: &Registry) -> Option<usize> {
        let b = self.next % self.backends.len();
        self.next += 1;
        if let Some(key) = self.idle[b].pop() {
            return Some(key);
        }
        let sock = TcpStream::connect(self.backends[b]).ok()?;
        let conn = Conn {
            sock,
            peer: None,
            backend: Some(b),
            close: false,
            out: Vec::new(),
            written: false,
            nodelay: false,
        };
        self.register(registry, conn).ok()
    }

    fn on_client_readable(&mut self, registry: &Registry, key: usize) {
        loop {
            let n = match (&self.conns[key].sock).read(&mut self.buf) {
                Ok(n) if n > 0 => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                _ => return self.drop_conn(key),
            };
            let mut data = std::mem::take(&mut self.buf);
            let close = replace(&mut data[..n], CLOSE_REQ, KEEP_REQ);
            let ok = self.forward_request(registry, key, &data[..n], close);
            self.buf = data;
            if !ok || n < BUF {
                return;
            }
        }
    }

    fn forward_request(
        &mut self,
        registry: &Registry,
        key: usize,
        data: &[u8],
        close: bool,
    ) -> bool {
        let backend = match self.conns[key].peer {
            Some(b) => b,
            None => match self.backend_conn(registry) {
                Some(b) => b,
                None => {
                    self.drop_conn(key);
                    return false;
                }
            },
        };
        let client = &mut self.conns[key];
        client.peer = Some(backend);
        client.close |= close;
        let b = &mut self.conns[backend];
        b.peer = Some(key);
        if !send(b, data) {
            self.drop_conn(backend);
            return false;
        }
        true
    }

    fn on_backend_readable(&mut self, key: usize) {
        loop {
            let n = match (&self.conns[key].sock).read(&mut self.buf) {
                Ok(n) if n > 0 => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                _ => return self.drop_conn(key),
            };
            let Some(client) = self.conns[key].peer else {
                return self.drop_conn(key); // unexpected bytes
            };
            let mut data = std::mem::take(&mut self.buf);
            let close = self.conns[client].close;
            if close {
                replace(&mut data[..n], KEEP_RESP, CLOSE_RESP);
            }
            let c = &mut self.conns[client];
            let sent = send(c, &data[..n]);
            self.buf = data;
            // The response is whole: the backend connection is free again.
            self.conns[client].peer = None;
            self.conns[key].peer = None;
            let b = self.conns[key].backend.expect("a backend connection");
            self.idle[b].push(key);
            if !sent || (close && self.conns[client].out.is_empty()) {
                self.drop_conn(client);
            }
            if n < BUF {
                return;
            }
        }
    }

    fn on_writable(&mut self, key: usize) {
        let c = &mut self.conns[key];
        if !flush(c) || (c.backend.is_none() && c.close && c.peer.is_none() && c.out.is_empty()) {
            self.drop_conn(key);
        }
    }
}

/// Burns `ns` nanoseconds of CPU without a syscall (`Instant` reads the
/// vDSO clock).
fn spin(ns: u64) {
    let start = std::time::Instant::now();
    while start.elapsed().as_nanos() < u128::from(ns) {
        std::hint::spin_loop();
    }
}

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let parse = |s: &String| -> io::Result<SocketAddr> {
        s.parse()
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("bad address {s}")))
    };
    if args.len() < 2 {
        eprintln!("usage: tcp_floor LISTEN BACKEND...");
        std::process::exit(2);
    }
    let mut listener = TcpListener::bind(parse(&args[0])?)?;
    let backends = args[1..]
        .iter()
        .map(parse)
        .collect::<io::Result<Vec<_>>>()?;
    let mut poll = Poll::new()?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let mut floor = Floor {
        conns: Slab::new(),
        idle: vec![Vec::new(); backends.len()],
        backends,
        next: 0,
        buf: vec![0; BUF].into_boxed_slice(),
    };
    let spin_ns: u64 = std::env::var("FLOOR_SPIN_NS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut events = Events::with_capacity(1024);
    loop {
        poll.poll(&mut events, None)?;
        if spin_ns > 0 {
            spin(spin_ns * events.iter().count() as u64);
        }
        let registry = poll.registry();
        for ev in events.iter() {
            if ev.token() == LISTENER {
                while let Ok((client, _)) = listener.accept() {
                    let conn = Conn {
                        sock: client,
                        peer: None,
                        backend: None,
                        close: false,
                        out: Vec::new(),
                        written: false,
                        nodelay: false,
                    };
                    floor.register(registry, conn)?;
                }
                continue;
            }
            let key = ev.token().0;
            if !floor.conns.contains(key) {
                continue;
            }
            if ev.is_writable() {
                floor.on_writable(key);
                if !floor.conns.contains(key) {
                    continue;
                }
            }
            if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                if floor.conns[key].backend.is_some() {
                    floor.on_backend_readable(key);
                } else {
                    floor.on_client_readable(registry, key);
                }
            }
        }
    }
}
