//! Operating ekilibri: metrics, the status page and access logs.
//!
//! Everything here is pure: no socket, no file, no clock. The reactor owns
//! one [`Metrics`] and one [`LogBuffer`], reports events to them as they
//! happen, passes the current time in, and asks for bytes to send:
//!
//! - [`metrics`]: counters, gauges and response-time histograms per backend
//!   and for the whole reactor, plus short-window rates for the status page;
//! - [`prometheus`]: the Prometheus text exposition (format 0.0.4);
//! - [`status`]: the status page, as JSON and as a self-contained HTML page;
//! - [`access_log`]: access log lines (common, combined, JSON) and the
//!   bounded buffer they wait in until a non-blocking write takes them.
//!
//! See `docs/operations.md` for what an operator sees.

use std::net::SocketAddr;

pub mod access_log;
mod escape;
pub mod metrics;
pub mod prometheus;
pub mod status;

pub use access_log::{AccessRecord, LogBuffer, LogFormat};
pub use metrics::{Metrics, ParseErrorKind};

/// What the renderers show of one backend besides its counters: the state
/// at the time of rendering. `backends[i]` describes backend id `i`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackendView {
    /// The backend's address (the `backend` label).
    pub addr: SocketAddr,
    /// Whether it may receive requests.
    pub in_rotation: bool,
    /// Requests in flight to it.
    pub in_flight: u32,
    /// Its configured weight.
    pub weight: u32,
}

#[cfg(test)]
pub(crate) mod testutil;
