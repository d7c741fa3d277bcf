//! Socket reads and writes against a [`Buf`], with errno sorted into a
//! small enum. Generic over `Read`/`Write` so a TLS stream or a simulated
//! socket can stand in for TCP.

use std::io::{self, Read, Write};

use crate::buf::Buf;

/// Readiness remembered in user space: the event bits epoll reported and
/// that have not yet been used up (edge-triggered: no new edge comes until
/// the socket returned `WouldBlock`).
#[derive(Debug, Default, Clone, Copy)]
pub struct Readiness {
    /// The socket may have bytes (or EOF) to read.
    pub readable: bool,
    /// The socket may accept bytes.
    pub writable: bool,
    /// The peer closed its sending side (read returned 0).
    pub read_eof: bool,
    /// epoll reported the peer's FIN: read until 0 instead of trusting a
    /// short read to mean "drained".
    pub hup: bool,
}

/// What a read or write pass ended on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoOutcome {
    /// Nothing more to do right now (drained, or buffer full/empty).
    Ok,
    /// The peer closed its sending side.
    Eof,
    /// The connection failed (reset, broken pipe, refused, ...).
    Error(io::ErrorKind),
}

/// Reads into `buf` until it is full or the socket would block. Returns the
/// outcome and the number of bytes read.
pub fn read_into<S: Read>(sock: &mut S, buf: &mut Buf, rd: &mut Readiness) -> (IoOutcome, usize) {
    let mut total = 0;
    loop {
        if !rd.readable {
            return (IoOutcome::Ok, total);
        }
        let spare = buf.spare_mut();
        if spare.is_empty() {
            // Still readable: no new edge will come, so the flag stays set.
            return (IoOutcome::Ok, total);
        }
        let want = spare.len();
        match sock.read(spare) {
            Ok(0) => {
                rd.readable = false;
                rd.read_eof = true;
                return (IoOutcome::Eof, total);
            }
            Ok(n) => {
                buf.commit(n);
                total += n;
                if n < want && !rd.hup {
                    // A short read drained the socket (epoll(7)): skip the
                    // read that would only return WouldBlock.
                    rd.readable = false;
                    return (IoOutcome::Ok, total);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                rd.readable = false;
                return (IoOutcome::Ok, total);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                rd.readable = false;
                return (IoOutcome::Error(e.kind()), total);
            }
        }
    }
}

/// Writes from `buf` until it is empty or the socket would block. Returns
/// the outcome and the number of bytes written.
pub fn write_from<S: Write>(sock: &mut S, buf: &mut Buf, rd: &mut Readiness) -> (IoOutcome, usize) {
    let mut total = 0;
    while rd.writable && !buf.is_empty() {
        match sock.write(buf.data()) {
            Ok(0) => return (IoOutcome::Error(io::ErrorKind::WriteZero), total),
            Ok(n) => {
                let short = n < buf.len();
                buf.consume(n);
                total += n;
                if short {
                    // The send buffer is full; wait for the next edge.
                    rd.writable = false;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => rd.writable = false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (IoOutcome::Error(e.kind()), total),
        }
    }
    (IoOutcome::Ok, total)
}

/// Reads and drops whatever the socket has (lingering close).
pub fn discard<S: Read>(sock: &mut S, rd: &mut Readiness) -> IoOutcome {
    let mut sink = [0u8; 4096];
    while rd.readable {
        match sock.read(&mut sink) {
            Ok(0) => {
                rd.readable = false;
                rd.read_eof = true;
                return IoOutcome::Eof;
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => rd.readable = false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return IoOutcome::Error(e.kind()),
        }
    }
    IoOutcome::Ok
}
