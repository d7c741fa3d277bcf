//! `tcp_floor`: the cheapest user-space forwarder one can write on this
//! kernel, used by `bench/proxy/proxy_bench.sh floor` to measure what any
//! epoll-based HTTP/1.1 proxy must spend per request.
//!
//! It pairs every client connection with one new backend connection (round
//! robin over the given backends) and copies bytes both ways: no parsing,
//! no rewriting, no timers, no health checks. Per keep-alive request that
//! is one read and one write on each side plus a share of `epoll_wait`,
//! the same four syscalls a real proxy makes, with almost no user-space
//! work, so its CPU per request is the kernel's floor. It is a measuring
//! instrument, not a proxy: it drops a pair on any error.
//!
//! Usage: `tcp_floor LISTEN BACKEND...` (e.g. `127.0.0.1:8080 127.0.0.1:9001`).

use std::io::{self, Read, Write};
use std::net::SocketAddr;

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

const LISTENER: Token = Token(usize::MAX);
const BUF: usize = 16 * 1024;

/// One direction of a pair: bytes read from one socket, not yet written to
/// the other.
struct Pending {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    /// The source socket may still hold data (a read filled the buffer or a
    /// write to the sink was blocked).
    more: bool,
    /// The peer has shut down its side: read until the 0 that says so.
    hup: bool,
    eof: bool,
}

struct Pair {
    sock: [TcpStream; 2],
    dir: [Pending; 2], // dir[0]: client -> backend, dir[1]: backend -> client
}

fn pending() -> Pending {
    Pending {
        buf: vec![0; BUF].into_boxed_slice(),
        start: 0,
        end: 0,
        more: true,
        hup: false,
        eof: false,
    }
}

/// Moves bytes from `sock[d]` to `sock[1 - d]` until one side would block.
/// Returns false when the pair is finished (EOF forwarded or an error).
fn pump(p: &mut Pair, d: usize) -> bool {
    loop {
        let dir = &mut p.dir[d];
        if dir.start < dir.end {
            match (&p.sock[1 - d]).write(&dir.buf[dir.start..dir.end]) {
                Ok(n) => dir.start += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(_) => return false,
            }
            if dir.start < dir.end {
                continue;
            }
        }
        dir.start = 0;
        dir.end = 0;
        if dir.eof {
            return false;
        }
        if !dir.more {
            return true;
        }
        match (&p.sock[d]).read(&mut dir.buf) {
            Ok(0) => dir.eof = true,
            Ok(n) => {
                dir.end = n;
                // A short read drained the socket (edge-triggered epoll):
                // skip the read that would end in EWOULDBLOCK.
                dir.more = n == BUF || dir.hup;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => dir.more = false,
            Err(_) => return false,
        }
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
    let mut pairs: Slab<Pair> = Slab::new();
    let mut events = Events::with_capacity(1024);
    let mut next = 0;
    loop {
        poll.poll(&mut events, None)?;
        for ev in events.iter() {
            if ev.token() == LISTENER {
                while let Ok((client, _)) = listener.accept() {
                    let Ok(backend) = TcpStream::connect(backends[next % backends.len()]) else {
                        continue;
                    };
                    next += 1;
                    let _ = client.set_nodelay(true);
                    let _ = backend.set_nodelay(true);
                    let entry = pairs.vacant_entry();
                    let key = entry.key();
                    let pair = entry.insert(Pair {
                        sock: [client, backend],
                        dir: [pending(), pending()],
                    });
                    let both = Interest::READABLE | Interest::WRITABLE;
                    for side in 0..2 {
                        poll.registry().register(
                            &mut pair.sock[side],
                            Token(key * 2 + side),
                            both,
                        )?;
                    }
                }
                continue;
            }
            let (key, side) = (ev.token().0 / 2, ev.token().0 % 2);
            let Some(pair) = pairs.get_mut(key) else {
                continue;
            };
            if ev.is_readable() || ev.is_read_closed() {
                pair.dir[side].more = true;
            }
            if ev.is_read_closed() || ev.is_error() {
                pair.dir[side].hup = true;
            }
            // Readable: pump this side's direction. Writable: the other
            // direction may have bytes waiting for this socket.
            let alive = pump(pair, side) && pump(pair, 1 - side);
            if !alive {
                let mut pair = pairs.remove(key);
                for s in &mut pair.sock {
                    let _ = poll.registry().deregister(s);
                }
            }
        }
    }
}
