//! Connection and exchange state. No socket calls are made here except
//! through the stream each connection owns, and only by the reactor.

use std::net::SocketAddr;
use std::time::Duration;

use mio::net::TcpStream;

use super::health::FailureKind;
use super::io::Readiness;
use crate::balance::BackendId;
use crate::buf::Buf;
use crate::http::body::BodyRelay;
use crate::http::head::{HeadScan, RequestHead, ResponseHead};
use crate::time::Tick;
use crate::time::wheel::TimerId;

/// An armed wheel entry for a connection: its tick and id.
pub(super) type Armed = Option<(Tick, TimerId)>;

/// Why an exchange failed; decides the status sent (if nothing was sent
/// yet) and whether the backend is blamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ProxyError {
    /// No backend in rotation.
    NoBackend,
    /// The backend connection could not be established.
    Connect(FailureKind),
    /// The backend closed or reset before a complete response.
    UpstreamClosed,
    /// Writing the request made no progress within `write_timeout`.
    WriteTimeout,
    /// No backend bytes within `read_timeout`.
    ReadTimeout,
    /// The backend sent something that is not a valid response.
    BadResponse,
    /// A valid response the client cannot receive (a transfer coding other
    /// than chunked for an HTTP/1.0 client): 502, not the backend's fault.
    Undeliverable,
    /// The client's request body was malformed.
    BadRequestBody,
    /// The client stalled in the middle of its request body.
    ClientTimeout,
    /// A tunnel (after a `101`) had no traffic either way within
    /// `keepalive_timeout`: it ends, nobody's fault.
    TunnelIdle,
    /// No backend connection could be opened for a reason of this host's
    /// (out of file descriptors, memory or local ports): 503, and the
    /// backend is not blamed.
    NoResources,
}

impl ProxyError {
    pub(super) fn status(self) -> u16 {
        match self {
            ProxyError::Connect(FailureKind::ConnectTimeout)
            | ProxyError::WriteTimeout
            | ProxyError::ReadTimeout => 504,
            ProxyError::BadRequestBody => 400,
            ProxyError::ClientTimeout => 408,
            ProxyError::NoResources => 503,
            _ => 502,
        }
    }

    pub(super) fn describe(self) -> &'static str {
        match self {
            ProxyError::NoBackend => "no backend in rotation",
            ProxyError::Connect(k) => k.describe(),
            ProxyError::UpstreamClosed => "connection closed before a complete response",
            ProxyError::WriteTimeout => "write timeout",
            ProxyError::ReadTimeout => "read timeout",
            ProxyError::BadResponse => "invalid response",
            ProxyError::Undeliverable => {
                "response uses a transfer coding an HTTP/1.0 client cannot receive"
            }
            ProxyError::BadRequestBody => "invalid request body",
            ProxyError::ClientTimeout => "client stalled in its request body",
            ProxyError::TunnelIdle => "tunnel idle",
            ProxyError::NoResources => {
                "cannot open a backend connection: this host is out of descriptors, memory or ports"
            }
        }
    }
}

/// Life cycle of a client connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ClientPhase {
    /// Reading requests and relaying responses.
    Open,
    /// No more requests: flush what is queued, then half-close.
    Closing,
    /// Half-closed; reading and dropping until the client closes too, so
    /// that unread input does not turn the close into a reset that could
    /// destroy the last response (lingering close).
    Lingering(Tick),
}

/// Where the response of an exchange is.
#[derive(Debug)]
pub(super) enum ResponsePhase {
    /// Waiting for (the rest of) a response head.
    Head(HeadScan),
    /// Relaying the body.
    Body(ResponseHead, BodyRelay),
    /// The whole response is queued for the client.
    Done(ResponseHead),
    /// After a `101 Switching Protocols`: a two-way byte tunnel. Each flag
    /// says that direction has ended (EOF read and everything forwarded).
    Tunnel {
        /// Client to backend ended.
        up_done: bool,
        /// Backend to client ended.
        down_done: bool,
    },
}

/// One request/response in flight between a client and a backend.
#[derive(Debug)]
pub(super) struct Exchange {
    pub backend: BackendId,
    pub req: RequestHead,
    pub req_body: BodyRelay,
    /// Bytes of the request head still held in the client buffer, so that a
    /// bodiless request can be sent again on a fresh connection if a pooled
    /// one turns out dead. Zero once the response started.
    pub head_held: usize,
    pub resp: ResponsePhase,
    /// Some response byte was queued for the client (a 1xx included): the
    /// backend provably got the request.
    pub resp_started: bool,
    /// The final response's head was queued for the client. Until then a
    /// failure can still be answered with a complete 502/504, after any
    /// 1xx already relayed.
    pub final_started: bool,
    /// A `100 Continue` was relayed: the client sends its body.
    pub continue_sent: bool,
    /// Interim (1xx) responses received so far.
    pub interim: u16,
    /// Backends tried so far, the current one last.
    pub tried: Tried,
    /// When the exchange started (for the response time), at full precision.
    pub started_at: Duration,
    /// The response time was reported to the strategy.
    pub observed: bool,
    /// The whole request was written to the backend, and when.
    pub sent_at: Option<Tick>,
    /// When the request head was complete (for the access log's total time).
    pub first_at: Duration,
    /// Response time of the backend that answered.
    pub upstream_time: Option<Duration>,
    /// Response body bytes relayed (set when the response is done; in a
    /// tunnel, the bytes relayed to the client so far).
    pub resp_bytes: u64,
    /// Since when the rest of the request body is read and dropped here
    /// (the backend went away after a complete keep-alive answer). From
    /// then on the backend no longer counts this exchange as in flight.
    pub discard_since: Option<Tick>,
    /// What the access log needs of the request (filled only when it is on;
    /// its buffer is kept across the exchanges that reuse this box).
    pub log: super::access::Captured,
}

/// The backends an exchange was sent to, so a retry never goes to the same
/// backend twice. Fixed capacity: one first try plus at most ten retries.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Tried {
    ids: [u16; 11],
    len: u8,
}

impl Tried {
    /// Number of tries so far.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Records a try of `backend`.
    pub fn push(&mut self, backend: BackendId) {
        if usize::from(self.len) < self.ids.len() {
            self.ids[usize::from(self.len)] = backend as u16;
            self.len += 1;
        }
    }

    /// The backend tried last (the first one if none was recorded).
    pub fn last(&self) -> BackendId {
        usize::from(self.ids[usize::from(self.len.max(1)) - 1])
    }

    /// `backend` was tried already.
    pub fn contains(&self, backend: BackendId) -> bool {
        self.ids[..usize::from(self.len)].contains(&(backend as u16))
    }
}

/// A client connection.
#[derive(Debug)]
pub(super) struct ClientConn {
    pub sock: TcpStream,
    pub generation: u32,
    pub peer: SocketAddr,
    pub rd: Readiness,
    pub inbuf: Buf,
    pub outbuf: Buf,
    pub scan: HeadScan,
    pub phase: ClientPhase,
    /// Paired backend connection (slab key), while an exchange runs.
    pub backend: Option<usize>,
    /// The exchange in flight, boxed so an idle connection stays small
    /// (boxes are recycled by the reactor, not allocated per request).
    pub ex: Option<Box<Exchange>>,
    /// When the first byte of the head being read arrived.
    pub head_since: Option<Tick>,
    /// When the connection last became idle between requests.
    pub idle_since: Tick,
    /// Last time bytes came from the client.
    pub last_in: Tick,
    /// Last time bytes were written to the client.
    pub last_out: Tick,
    pub timer: Armed,
    pub dirty: bool,
    /// The last exchange ended with its request read in full: closing
    /// needs no lingering if nothing else arrived.
    pub clean_close: bool,
    /// The response was cut (its backend failed) and the client could not
    /// tell from its framing (close-delimited: an HTTP/1.0 client, or a
    /// body without a length): the connection ends with a reset, not a
    /// FIN that would read as the end of a complete body.
    pub reset_on_close: bool,
    pub nagle: Nagle,
}

/// Nagle's algorithm on a client socket, switched off lazily, as nginx
/// does: a connection that is written once and closed (`Connection:
/// close`) never pays the `setsockopt`.
///
/// Linux applies Minshall's variant: a short segment is held back only
/// while an earlier *short* segment is unacknowledged. The first write on
/// a connection can therefore never be delayed, whatever its size; the
/// second could (a small write behind the first write's short tail, waiting
/// for a delayed ACK), so `TCP_NODELAY` is set just before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Nagle {
    /// Nothing written yet.
    Unwritten,
    /// One write done; `TCP_NODELAY` goes on before the next.
    Written,
    /// `TCP_NODELAY` is set.
    Off,
}

/// State of a backend connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BackendPhase {
    /// Non-blocking connect in progress.
    Connecting,
    /// Established.
    Ready,
}

/// A connection to a backend: in use by one client exchange, or idle in
/// its backend's pool.
#[derive(Debug)]
pub(super) struct BackendConn {
    pub sock: TcpStream,
    pub generation: u32,
    pub backend: BackendId,
    pub rd: Readiness,
    pub inbuf: Buf,
    pub outbuf: Buf,
    pub phase: BackendPhase,
    /// The client this connection serves; `None` while idle in the pool.
    pub client: Option<usize>,
    /// Taken from the pool (it served an earlier request).
    pub reused: bool,
    /// Any byte came from the backend during the current exchange.
    pub got_bytes: bool,
    /// A write to the backend failed: it stopped reading (typically after
    /// answering early, e.g. a 413 to a large upload, and closing). Nothing
    /// more is sent; what it sent before is still read and relayed.
    pub send_failed: bool,
    /// The backend reset the connection after bytes still to relay: the
    /// end of input is abortive, and a close-delimited body that ends
    /// there is incomplete.
    pub reset: bool,
    /// Its sending side was shut: the client stopped sending the request
    /// body after the response began. Never pooled (the body is short).
    pub write_shut: bool,
    /// When the connect started or the connection went idle.
    pub since: Tick,
    pub last_in: Tick,
    pub last_out: Tick,
    pub timer: Armed,
}
