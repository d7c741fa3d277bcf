//! Counters, gauges and response-time histograms of one reactor.
//!
//! [`Metrics`] belongs to one event loop: plain integers, no atomics, no
//! locks. Every `on_*` method is O(1) and allocates nothing; the per-backend
//! storage is sized once by [`Metrics::new`] (and again only by
//! [`Metrics::remap_backends`], on a configuration reload).
//!
//! Besides the lifetime counters exported to Prometheus, each backend keeps
//! a ring of per-second slots covering the last [`RATE_WINDOW_SECS`]
//! seconds, from which the status page reads request and error rates and
//! recent p50/p99 response times. The clock is never read here: the reactor
//! passes the current [`Tick`] to [`Metrics::set_now`] once per turn, and
//! the readers take `now` as an argument.

use std::time::Duration;

use super::BackendView;
use crate::balance::BackendId;
use crate::http::head::HeadError;
use crate::proxy::health::FailureKind;
use crate::time::Tick;

/// Upper bounds (inclusive, in seconds) of the finite response-time
/// buckets; a last `+Inf` bucket catches the rest.
pub const BUCKET_BOUNDS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The same bounds in nanoseconds, for exact bucket selection.
const BOUND_NANOS: [u64; 13] = [
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
];

/// Number of histogram buckets, `+Inf` included.
pub const BUCKETS: usize = BUCKET_BOUNDS.len() + 1;

/// The `le` label of each bucket, as written in the Prometheus exposition.
pub const LE_LABELS: [&str; BUCKETS] = [
    "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5",
    "10", "+Inf",
];

/// Seconds covered by the request/error rates and recent quantiles.
pub const RATE_WINDOW_SECS: u64 = 10;

/// Slots in the per-second ring: the window plus the partly expired second.
const SLOTS: usize = RATE_WINDOW_SECS as usize + 1;

/// Labels of the response status classes, in index order. Statuses outside
/// 100–599 (the parser accepts up to 999) are counted as `"other"`.
pub const STATUS_CLASSES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "other"];

/// Index into [`STATUS_CLASSES`] of a status code.
pub fn status_class(status: u16) -> usize {
    match status {
        100..=599 => usize::from(status / 100) - 1,
        _ => 5,
    }
}

/// Every [`FailureKind`], in label order.
pub const FAILURE_KINDS: [FailureKind; 7] = [
    FailureKind::ConnectRefused,
    FailureKind::ConnectTimeout,
    FailureKind::WriteTimeout,
    FailureKind::ReadTimeout,
    FailureKind::BadStatus,
    FailureKind::Reset,
    FailureKind::NoResponse,
];

/// The metric label of a [`FailureKind`] (`connect_refused`, ...).
pub fn failure_label(kind: FailureKind) -> &'static str {
    match kind {
        FailureKind::ConnectRefused => "connect_refused",
        FailureKind::ConnectTimeout => "connect_timeout",
        FailureKind::WriteTimeout => "write_timeout",
        FailureKind::ReadTimeout => "read_timeout",
        FailureKind::BadStatus => "bad_status",
        FailureKind::Reset => "reset",
        FailureKind::NoResponse => "no_response",
    }
}

fn failure_index(kind: FailureKind) -> usize {
    match kind {
        FailureKind::ConnectRefused => 0,
        FailureKind::ConnectTimeout => 1,
        FailureKind::WriteTimeout => 2,
        FailureKind::ReadTimeout => 3,
        FailureKind::BadStatus => 4,
        FailureKind::Reset => 5,
        FailureKind::NoResponse => 6,
    }
}

/// Why ekilibri rejected a client request itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ParseErrorKind {
    /// Malformed request head (400).
    BadRequest,
    /// Request line too long (414).
    UriTooLong,
    /// Header section too large or too many fields (431).
    HeadersTooLarge,
    /// Unsupported HTTP version (505).
    Version,
    /// Method not forwarded (501).
    NotImplemented,
    /// The head (or body) did not arrive in time (408).
    Timeout,
    /// Malformed request body, e.g. bad chunked framing (400).
    BadBody,
}

impl ParseErrorKind {
    /// Every kind, in label order.
    pub const ALL: [ParseErrorKind; 7] = [
        ParseErrorKind::BadRequest,
        ParseErrorKind::UriTooLong,
        ParseErrorKind::HeadersTooLarge,
        ParseErrorKind::Version,
        ParseErrorKind::NotImplemented,
        ParseErrorKind::Timeout,
        ParseErrorKind::BadBody,
    ];

    /// The metric label (`bad_request`, `uri_too_long`, ...).
    pub fn label(self) -> &'static str {
        match self {
            ParseErrorKind::BadRequest => "bad_request",
            ParseErrorKind::UriTooLong => "uri_too_long",
            ParseErrorKind::HeadersTooLarge => "headers_too_large",
            ParseErrorKind::Version => "version",
            ParseErrorKind::NotImplemented => "not_implemented",
            ParseErrorKind::Timeout => "timeout",
            ParseErrorKind::BadBody => "bad_body",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl From<HeadError> for ParseErrorKind {
    fn from(e: HeadError) -> Self {
        match e {
            HeadError::Malformed(_) | HeadError::Undeliverable => ParseErrorKind::BadRequest,
            HeadError::UriTooLong => ParseErrorKind::UriTooLong,
            HeadError::HeadersTooLarge => ParseErrorKind::HeadersTooLarge,
            HeadError::Version => ParseErrorKind::Version,
            HeadError::NotImplemented => ParseErrorKind::NotImplemented,
        }
    }
}

/// Estimates the `q`-quantile (0 ≤ q ≤ 1) of a bucketed distribution, in
/// seconds, the way Prometheus' `histogram_quantile` does: find the bucket
/// holding rank `q × total` and interpolate linearly between its bounds
/// (the first bucket starts at 0). A rank in the `+Inf` bucket gives the
/// highest finite bound. `None` when the histogram is empty.
pub fn quantile(counts: &[f64; BUCKETS], q: f64) -> Option<f64> {
    let total: f64 = counts.iter().sum();
    if total <= 0.0 || q.is_nan() {
        return None;
    }
    let rank = q.clamp(0.0, 1.0) * total;
    let mut below = 0.0;
    for (i, &c) in counts.iter().enumerate() {
        if c > 0.0 && below + c >= rank {
            if i == BUCKETS - 1 {
                return Some(BUCKET_BOUNDS[BUCKETS - 2]);
            }
            let lower = if i == 0 { 0.0 } else { BUCKET_BOUNDS[i - 1] };
            let upper = BUCKET_BOUNDS[i];
            let within = ((rank - below) / c).clamp(0.0, 1.0);
            return Some(lower + (upper - lower) * within);
        }
        below += c;
    }
    // Only reachable through rounding: the rank is past the last count.
    Some(BUCKET_BOUNDS[BUCKETS - 2])
}

/// Index of the bucket a response time falls into.
fn bucket_of(d: Duration) -> usize {
    let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
    BOUND_NANOS
        .iter()
        .position(|&b| nanos <= b)
        .unwrap_or(BUCKETS - 1)
}

/// A cumulative response-time histogram with fixed [`BUCKET_BOUNDS`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Histogram {
    /// Observations per bucket (not cumulative).
    counts: [u64; BUCKETS],
    /// Sum of all observations, in microseconds.
    sum_micros: u64,
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&mut self, d: Duration) {
        self.counts[bucket_of(d)] += 1;
        let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros = self.sum_micros.saturating_add(micros);
    }

    /// Number of observations.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Sum of the observations in whole microseconds (each observation is
    /// truncated to the microsecond).
    pub fn sum_micros(&self) -> u64 {
        self.sum_micros
    }

    /// Observations per bucket, not cumulative, `+Inf` last.
    pub fn counts(&self) -> &[u64; BUCKETS] {
        &self.counts
    }

    /// Quantile estimate over every observation, in seconds (see
    /// [`quantile`]).
    pub fn quantile(&self, q: f64) -> Option<f64> {
        quantile(&self.counts.map(|c| c as f64), q)
    }
}

/// One second of recent activity of a backend.
#[derive(Debug, Clone, Copy)]
struct Slot {
    /// The second (`Tick / 1000`) counted here; `u64::MAX` when unused.
    sec: u64,
    requests: u32,
    errors: u32,
    buckets: [u32; BUCKETS],
}

impl Slot {
    const EMPTY: Slot = Slot {
        sec: u64::MAX,
        requests: 0,
        errors: 0,
        buckets: [0; BUCKETS],
    };
}

/// What is known about one backend.
#[derive(Debug, Clone)]
pub struct BackendStats {
    requests: u64,
    responses: [u64; STATUS_CLASSES.len()],
    failures: [u64; FAILURE_KINDS.len()],
    retries: u64,
    in_flight: u32,
    in_rotation: bool,
    went_out: u64,
    came_in: u64,
    latency: Histogram,
    ring: [Slot; SLOTS],
}

impl Default for BackendStats {
    fn default() -> Self {
        BackendStats {
            requests: 0,
            responses: [0; STATUS_CLASSES.len()],
            failures: [0; FAILURE_KINDS.len()],
            retries: 0,
            in_flight: 0,
            in_rotation: true,
            went_out: 0,
            came_in: 0,
            latency: Histogram::default(),
            ring: [Slot::EMPTY; SLOTS],
        }
    }
}

impl BackendStats {
    fn slot(&mut self, sec: u64) -> &mut Slot {
        let slot = &mut self.ring[(sec % SLOTS as u64) as usize];
        if slot.sec != sec {
            *slot = Slot::EMPTY;
            slot.sec = sec;
        }
        slot
    }

    /// Requests sent to the backend (retries included).
    pub fn requests(&self) -> u64 {
        self.requests
    }

    /// Responses received in status class `class` (an index into
    /// [`STATUS_CLASSES`]).
    pub fn responses(&self, class: usize) -> u64 {
        self.responses.get(class).copied().unwrap_or(0)
    }

    /// Failures of `kind`.
    pub fn failures(&self, kind: FailureKind) -> u64 {
        self.failures[failure_index(kind)]
    }

    /// Failures of every kind.
    pub fn failures_total(&self) -> u64 {
        self.failures.iter().sum()
    }

    /// Retries caused by this backend failing.
    pub fn retries(&self) -> u64 {
        self.retries
    }

    /// Requests in flight, as last set by [`Metrics::set_in_flight`].
    pub fn in_flight(&self) -> u32 {
        self.in_flight
    }

    /// In rotation, as last reported by [`Metrics::on_transition`]
    /// (backends start in rotation).
    pub fn in_rotation(&self) -> bool {
        self.in_rotation
    }

    /// Times the backend left rotation.
    pub fn went_out(&self) -> u64 {
        self.went_out
    }

    /// Times the backend came back into rotation.
    pub fn came_in(&self) -> u64 {
        self.came_in
    }

    /// Response times over the whole life of the process.
    pub fn latency(&self) -> &Histogram {
        &self.latency
    }

    /// Calls `f(weight, slot)` for every slot inside the window ending at
    /// `now`: slots of the last [`RATE_WINDOW_SECS`] − 1 whole seconds and
    /// the current one count fully, the slot of the second that is partly
    /// out of the window counts for the part still inside (a sliding-window
    /// approximation). Returns the length of the window in seconds (shorter
    /// than [`RATE_WINDOW_SECS`] during the first seconds, at least 1).
    fn window(&self, now: Tick, mut f: impl FnMut(f64, &Slot)) -> f64 {
        let cur = now.0 / 1000;
        let frac = (now.0 % 1000) as f64 / 1000.0;
        for slot in &self.ring {
            if slot.sec == u64::MAX || slot.sec > cur {
                continue;
            }
            let age = cur - slot.sec;
            if age < RATE_WINDOW_SECS {
                f(1.0, slot);
            } else if age == RATE_WINDOW_SECS && frac < 1.0 {
                f(1.0 - frac, slot);
            }
        }
        (now.0 as f64 / 1000.0).clamp(1.0, RATE_WINDOW_SECS as f64)
    }

    /// Requests per second over the last [`RATE_WINDOW_SECS`] seconds.
    pub fn request_rate(&self, now: Tick) -> f64 {
        let mut n = 0.0;
        let secs = self.window(now, |w, s| n += w * f64::from(s.requests));
        n / secs
    }

    /// Errors per second over the last [`RATE_WINDOW_SECS`] seconds. An
    /// error is a 5xx response or a failure ([`Metrics::on_failure`]).
    pub fn error_rate(&self, now: Tick) -> f64 {
        let mut n = 0.0;
        let secs = self.window(now, |w, s| n += w * f64::from(s.errors));
        n / secs
    }

    /// Errors per request over the last [`RATE_WINDOW_SECS`] seconds,
    /// at most 1; `None` without requests in the window.
    pub fn error_ratio(&self, now: Tick) -> Option<f64> {
        let (mut req, mut err) = (0.0, 0.0);
        self.window(now, |w, s| {
            req += w * f64::from(s.requests);
            err += w * f64::from(s.errors);
        });
        (req > 0.0).then(|| (err / req).min(1.0))
    }

    /// The `q`-quantile of the response times of the last
    /// [`RATE_WINDOW_SECS`] seconds, in seconds; `None` without responses
    /// in the window.
    pub fn recent_quantile(&self, now: Tick, q: f64) -> Option<f64> {
        let mut counts = [0.0; BUCKETS];
        self.window(now, |w, s| {
            for (c, &n) in counts.iter_mut().zip(&s.buckets) {
                *c += w * f64::from(n);
            }
        });
        quantile(&counts, q)
    }
}

/// All counters of one reactor. See the module documentation.
///
/// Methods taking a [`BackendId`] ignore an id outside `0..backend_count()`
/// (a debug build asserts instead).
#[derive(Debug, Clone)]
pub struct Metrics {
    backends: Vec<BackendStats>,
    /// The current second (`Tick / 1000`), from [`Metrics::set_now`].
    now_sec: u64,
    accepted: u64,
    open: u64,
    bytes_in: u64,
    bytes_out: u64,
    parse_errors: [u64; ParseErrorKind::ALL.len()],
    reloads_ok: u64,
    reloads_failed: u64,
    log_dropped: u64,
}

impl Metrics {
    /// Metrics for `backends` backends (ids `0..backends`), all in
    /// rotation, every counter at zero, the clock at tick 0.
    pub fn new(backends: usize) -> Metrics {
        Metrics {
            backends: vec![BackendStats::default(); backends],
            now_sec: 0,
            accepted: 0,
            open: 0,
            bytes_in: 0,
            bytes_out: 0,
            parse_errors: [0; ParseErrorKind::ALL.len()],
            reloads_ok: 0,
            reloads_failed: 0,
            log_dropped: 0,
        }
    }

    /// Sets the current time; the per-second rates count events in the
    /// second of the latest `now`. Call once per turn of the loop.
    pub fn set_now(&mut self, now: Tick) {
        self.now_sec = now.0 / 1000;
    }

    /// Number of backends.
    pub fn backend_count(&self) -> usize {
        self.backends.len()
    }

    /// The stats of backend `id`, if it exists.
    pub fn backend(&self, id: BackendId) -> Option<&BackendStats> {
        self.backends.get(id)
    }

    /// A [`BackendView`] built from the gauges kept here
    /// ([`Metrics::set_in_flight`], [`Metrics::on_transition`]), for
    /// callers that do not have the state at hand. `None` for an unknown id.
    pub fn view(
        &self,
        id: BackendId,
        addr: std::net::SocketAddr,
        weight: u32,
    ) -> Option<BackendView> {
        self.backends.get(id).map(|b| BackendView {
            addr,
            in_rotation: b.in_rotation,
            in_flight: b.in_flight,
            weight,
        })
    }

    /// Rebuilds the per-backend storage after a reload: new backend `i`
    /// keeps the stats of old backend `old_ids[i]` when it is `Some` (the
    /// same address survived the reload), and starts fresh otherwise.
    /// Allocates; not for the hot path.
    pub fn remap_backends(&mut self, old_ids: &[Option<BackendId>]) {
        let fresh = old_ids
            .iter()
            .map(|old| {
                old.and_then(|id| self.backends.get(id).cloned())
                    .unwrap_or_default()
            })
            .collect();
        self.backends = fresh;
    }

    fn stats(&mut self, id: BackendId) -> Option<&mut BackendStats> {
        debug_assert!(id < self.backends.len(), "unknown backend {id}");
        self.backends.get_mut(id)
    }

    /// A client connection was accepted.
    pub fn on_accept(&mut self) {
        self.accepted += 1;
        self.open += 1;
    }

    /// A client connection was closed.
    pub fn on_close(&mut self) {
        self.open = self.open.saturating_sub(1);
    }

    /// Bytes read from (`in_`) and written to (`out`) client sockets.
    pub fn on_bytes(&mut self, in_: u64, out: u64) {
        self.bytes_in = self.bytes_in.wrapping_add(in_);
        self.bytes_out = self.bytes_out.wrapping_add(out);
    }

    /// A request (first try or retry) was sent to `backend`.
    pub fn on_request(&mut self, backend: BackendId) {
        let sec = self.now_sec;
        if let Some(b) = self.stats(backend) {
            b.requests += 1;
            b.slot(sec).requests += 1;
        }
    }

    /// `backend` answered with `status` (the final status; 1xx interim
    /// responses need not be reported) after `rtt` (from the request being
    /// sent to the response head, or whatever the caller measures
    /// consistently). A 5xx counts as an error for
    /// [`BackendStats::error_rate`].
    pub fn on_response(&mut self, backend: BackendId, status: u16, rtt: Duration) {
        let sec = self.now_sec;
        if let Some(b) = self.stats(backend) {
            b.responses[status_class(status)] += 1;
            b.latency.observe(rtt);
            let slot = b.slot(sec);
            let i = bucket_of(rtt);
            slot.buckets[i] = slot.buckets[i].saturating_add(1);
            if (500..600).contains(&status) {
                slot.errors = slot.errors.saturating_add(1);
            }
        }
    }

    /// A failure of `backend` (connect, timeout, reset, bad probe); counts
    /// as an error for [`BackendStats::error_rate`].
    pub fn on_failure(&mut self, backend: BackendId, kind: FailureKind) {
        let sec = self.now_sec;
        if let Some(b) = self.stats(backend) {
            b.failures[failure_index(kind)] += 1;
            let slot = b.slot(sec);
            slot.errors = slot.errors.saturating_add(1);
        }
    }

    /// A request that failed on `backend` is retried (on another backend,
    /// which gets its own [`Metrics::on_request`]).
    pub fn on_retry(&mut self, backend: BackendId) {
        if let Some(b) = self.stats(backend) {
            b.retries += 1;
        }
    }

    /// `backend` left (`out == true`) or came back into rotation.
    pub fn on_transition(&mut self, backend: BackendId, out: bool) {
        if let Some(b) = self.stats(backend) {
            if out {
                b.went_out += 1;
            } else {
                b.came_in += 1;
            }
            b.in_rotation = !out;
        }
    }

    /// Sets the in-flight gauge of `backend`.
    pub fn set_in_flight(&mut self, backend: BackendId, n: u32) {
        if let Some(b) = self.stats(backend) {
            b.in_flight = n;
        }
    }

    /// ekilibri rejected a client request itself.
    pub fn on_parse_error(&mut self, kind: ParseErrorKind) {
        self.parse_errors[kind.index()] += 1;
    }

    /// A configuration reload succeeded (`ok`) or was refused.
    pub fn on_reload(&mut self, ok: bool) {
        if ok {
            self.reloads_ok += 1;
        } else {
            self.reloads_failed += 1;
        }
    }

    /// `n` access log lines were dropped (the log buffer was full).
    pub fn on_log_dropped(&mut self, n: u64) {
        self.log_dropped += n;
    }

    /// Client connections accepted.
    pub fn accepted(&self) -> u64 {
        self.accepted
    }

    /// Client connections open.
    pub fn open(&self) -> u64 {
        self.open
    }

    /// Bytes read from clients.
    pub fn bytes_in(&self) -> u64 {
        self.bytes_in
    }

    /// Bytes written to clients.
    pub fn bytes_out(&self) -> u64 {
        self.bytes_out
    }

    /// Requests rejected for `kind`.
    pub fn parse_errors(&self, kind: ParseErrorKind) -> u64 {
        self.parse_errors[kind.index()]
    }

    /// Configuration reloads: `(succeeded, failed)`.
    pub fn reloads(&self) -> (u64, u64) {
        (self.reloads_ok, self.reloads_failed)
    }

    /// Access log lines dropped.
    pub fn log_dropped(&self) -> u64 {
        self.log_dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn bucket_bounds_are_inclusive_and_consistent() {
        for (i, (&b, &n)) in BUCKET_BOUNDS.iter().zip(&BOUND_NANOS).enumerate() {
            assert_eq!((b * 1e9).round() as u64, n);
            assert_eq!(LE_LABELS[i].parse::<f64>().unwrap(), b);
            assert_eq!(bucket_of(Duration::from_nanos(n)), i);
            assert_eq!(bucket_of(Duration::from_nanos(n + 1)), i + 1);
        }
        assert_eq!(LE_LABELS[BUCKETS - 1], "+Inf");
        assert_eq!(bucket_of(Duration::ZERO), 0);
        assert_eq!(bucket_of(Duration::from_secs(3600)), BUCKETS - 1);
        assert_eq!(bucket_of(Duration::MAX), BUCKETS - 1);
    }

    #[test]
    fn status_classes() {
        assert_eq!(status_class(100), 0);
        assert_eq!(status_class(204), 1);
        assert_eq!(status_class(399), 2);
        assert_eq!(status_class(404), 3);
        assert_eq!(status_class(599), 4);
        assert_eq!(status_class(600), 5);
        assert_eq!(status_class(999), 5);
        assert_eq!(status_class(0), 5);
    }

    #[test]
    fn labels_and_conversions() {
        let labels: Vec<_> = FAILURE_KINDS.iter().map(|&k| failure_label(k)).collect();
        assert_eq!(
            labels,
            [
                "connect_refused",
                "connect_timeout",
                "write_timeout",
                "read_timeout",
                "bad_status",
                "reset",
                "no_response"
            ]
        );
        for (i, &k) in FAILURE_KINDS.iter().enumerate() {
            assert_eq!(failure_index(k), i);
        }
        for (i, k) in ParseErrorKind::ALL.iter().enumerate() {
            assert_eq!(k.index(), i);
        }
        assert_eq!(
            ParseErrorKind::from(HeadError::Malformed("x")),
            ParseErrorKind::BadRequest
        );
        assert_eq!(
            ParseErrorKind::from(HeadError::UriTooLong),
            ParseErrorKind::UriTooLong
        );
        assert_eq!(
            ParseErrorKind::from(HeadError::HeadersTooLarge),
            ParseErrorKind::HeadersTooLarge
        );
        assert_eq!(
            ParseErrorKind::from(HeadError::Version),
            ParseErrorKind::Version
        );
        assert_eq!(
            ParseErrorKind::from(HeadError::NotImplemented),
            ParseErrorKind::NotImplemented
        );
        assert_eq!(ParseErrorKind::Timeout.label(), "timeout");
    }

    #[test]
    fn histogram_counts_and_sum() {
        let mut h = Histogram::default();
        assert_eq!(h.quantile(0.5), None);
        h.observe(Duration::from_micros(1500));
        h.observe(Duration::from_nanos(999)); // truncated to 0 µs in the sum
        h.observe(Duration::from_secs(20));
        assert_eq!(h.count(), 3);
        assert_eq!(h.sum_micros(), 20_001_500);
        assert_eq!(h.counts()[0], 1);
        assert_eq!(h.counts()[1], 1);
        assert_eq!(h.counts()[BUCKETS - 1], 1);
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn quantile_interpolates_inside_the_bucket() {
        // 10 observations in (0.01, 0.025], 10 in (0.025, 0.05].
        let mut c = [0.0; BUCKETS];
        c[4] = 10.0;
        c[5] = 10.0;
        // Rank 10 of 20: the top of bucket 4.
        assert!(close(quantile(&c, 0.5).unwrap(), 0.025));
        // Rank 5: half-way through bucket 4.
        assert!(close(quantile(&c, 0.25).unwrap(), 0.0175));
        // Rank 19.8: 98 % into bucket 5.
        assert!(close(quantile(&c, 0.99).unwrap(), 0.025 + 0.025 * 0.98));
        assert!(close(quantile(&c, 1.0).unwrap(), 0.05));
        // q = 0: the lower edge of the first non-empty bucket.
        assert!(close(quantile(&c, 0.0).unwrap(), 0.01));
        // Out-of-range q is clamped; NaN gives nothing.
        assert!(close(quantile(&c, 7.0).unwrap(), 0.05));
        assert_eq!(quantile(&c, f64::NAN), None);
    }

    #[test]
    fn quantile_first_and_infinite_buckets() {
        let mut c = [0.0; BUCKETS];
        c[0] = 4.0;
        // The first bucket starts at zero.
        assert!(close(quantile(&c, 0.5).unwrap(), 0.0005));
        let mut c = [0.0; BUCKETS];
        c[BUCKETS - 1] = 1.0;
        assert!(close(quantile(&c, 0.5).unwrap(), 10.0));
        assert_eq!(quantile(&[0.0; BUCKETS], 0.5), None);
    }

    #[test]
    fn histogram_quantile_matches_observations() {
        let mut h = Histogram::default();
        for i in 1..=100u64 {
            h.observe(Duration::from_micros(i * 100)); // 0.1 .. 10 ms
        }
        // 10 in (0, 1ms], 15 in (1, 2.5], 25 in (2.5, 5], 50 in (5, 10].
        assert_eq!(&h.counts()[..4], &[10, 15, 25, 50]);
        // p50 = rank 50 = top of (2.5, 5].
        assert!(close(h.quantile(0.5).unwrap(), 0.005));
        // p99 = rank 99: 49/50 into (5, 10] ms.
        assert!(close(
            h.quantile(0.99).unwrap(),
            0.005 + 0.005 * 49.0 / 50.0
        ));
    }

    #[test]
    fn global_counters() {
        let mut m = Metrics::new(0);
        m.on_accept();
        m.on_accept();
        m.on_close();
        m.on_close();
        m.on_close(); // never below zero
        m.on_accept();
        assert_eq!((m.accepted(), m.open()), (3, 1));
        m.on_bytes(10, 20);
        m.on_bytes(1, 2);
        assert_eq!((m.bytes_in(), m.bytes_out()), (11, 22));
        m.on_parse_error(ParseErrorKind::UriTooLong);
        m.on_parse_error(HeadError::Version.into());
        m.on_parse_error(ParseErrorKind::Version);
        assert_eq!(m.parse_errors(ParseErrorKind::UriTooLong), 1);
        assert_eq!(m.parse_errors(ParseErrorKind::Version), 2);
        assert_eq!(m.parse_errors(ParseErrorKind::Timeout), 0);
        m.on_reload(true);
        m.on_reload(false);
        m.on_reload(false);
        assert_eq!(m.reloads(), (1, 2));
        m.on_log_dropped(3);
        assert_eq!(m.log_dropped(), 3);
    }

    #[test]
    fn backend_counters() {
        let mut m = Metrics::new(2);
        m.on_request(1);
        m.on_request(1);
        m.on_response(1, 200, ms(3));
        m.on_response(1, 503, ms(30));
        m.on_response(1, 101, ms(1));
        m.on_failure(1, FailureKind::ConnectTimeout);
        m.on_failure(1, FailureKind::ConnectTimeout);
        m.on_failure(1, FailureKind::Reset);
        m.on_retry(1);
        m.set_in_flight(1, 7);
        m.on_transition(1, true);
        let b = m.backend(1).unwrap();
        assert_eq!(b.requests(), 2);
        assert_eq!(
            (0..6).map(|c| b.responses(c)).collect::<Vec<_>>(),
            [1, 1, 0, 0, 1, 0]
        );
        assert_eq!(b.responses(99), 0);
        assert_eq!(b.failures(FailureKind::ConnectTimeout), 2);
        assert_eq!(b.failures(FailureKind::Reset), 1);
        assert_eq!(b.failures_total(), 3);
        assert_eq!(b.retries(), 1);
        assert_eq!(b.in_flight(), 7);
        assert!(!b.in_rotation());
        assert_eq!((b.went_out(), b.came_in()), (1, 0));
        assert_eq!(b.latency().count(), 3);
        m.on_transition(1, false);
        assert!(m.backend(1).unwrap().in_rotation());
        assert_eq!(m.backend(1).unwrap().came_in(), 1);
        // Backend 0 untouched.
        assert_eq!(m.backend(0).unwrap().requests(), 0);
        assert!(m.backend(0).unwrap().in_rotation());
        assert!(m.backend(2).is_none());
        let addr = "10.0.0.1:80".parse().unwrap();
        assert_eq!(
            m.view(1, addr, 3),
            Some(BackendView {
                addr,
                in_rotation: true,
                in_flight: 7,
                weight: 3
            })
        );
        assert_eq!(m.view(5, addr, 3), None);
    }

    #[test]
    fn request_and_error_rates_slide() {
        let mut m = Metrics::new(1);
        // 10 requests in each second 0..=19, 2 of them 5xx and 1 failure.
        for sec in 0..20u64 {
            m.set_now(Tick(sec * 1000 + 500));
            for _ in 0..10 {
                m.on_request(0);
            }
            m.on_response(0, 500, ms(1));
            m.on_response(0, 502, ms(1));
            m.on_response(0, 200, ms(1));
            m.on_failure(0, FailureKind::Reset);
        }
        let b = m.backend(0).unwrap();
        // At 19.999 s: seconds 10..=19 in full, second 9 for 0.1 %.
        let now = Tick(19_999);
        assert!((b.request_rate(now) - (100.0 + 10.0 * 0.001) / 10.0).abs() < 1e-9);
        assert!((b.error_rate(now) - (30.0 + 3.0 * 0.001) / 10.0).abs() < 1e-9);
        assert!(close(b.error_ratio(now).unwrap(), 0.3));
        // At 20.5 s: seconds 11..=19 in full (20 is empty), half of 10.
        let now = Tick(20_500);
        assert!(close(b.request_rate(now), 9.5));
        // At 30 s: only second 20 (empty) and 21..=29: nothing.
        let now = Tick(30_000);
        assert!(close(b.request_rate(now), 0.0));
        assert!(close(b.error_rate(now), 0.0));
        assert_eq!(b.error_ratio(now), None);
        assert_eq!(b.recent_quantile(now, 0.5), None);
    }

    #[test]
    fn rate_window_is_shorter_right_after_start() {
        let mut m = Metrics::new(1);
        m.set_now(Tick(1_200));
        for _ in 0..8 {
            m.on_request(0);
        }
        let b = m.backend(0).unwrap();
        // Up for 2 s: 8 requests / 2 s.
        assert!(close(b.request_rate(Tick(2_000)), 4.0));
        // Before one second, the window is one second.
        assert!(close(b.request_rate(Tick(1_999)), 8.0 / 1.999));
        let mut m = Metrics::new(1);
        m.on_request(0);
        assert!(close(m.backend(0).unwrap().request_rate(Tick(300)), 1.0));
    }

    #[test]
    fn ring_slots_are_reused_for_new_seconds() {
        let mut m = Metrics::new(1);
        m.set_now(Tick(3_000));
        m.on_request(0);
        // Second 14 maps to the same slot as second 3 (11 slots).
        m.set_now(Tick(14_000));
        m.on_request(0);
        m.on_request(0);
        let b = m.backend(0).unwrap();
        assert!(close(b.request_rate(Tick(14_000)), 0.2));
        assert_eq!(b.requests(), 3);
        // A query in the past ignores slots from its future.
        assert!(close(b.request_rate(Tick(5_000)), 0.0));
    }

    #[test]
    fn recent_quantiles_forget_old_responses() {
        let mut m = Metrics::new(1);
        m.set_now(Tick(1_000));
        for _ in 0..100 {
            m.on_response(0, 200, Duration::from_secs(3)); // (2.5, 5]
        }
        m.set_now(Tick(20_000));
        for _ in 0..100 {
            m.on_response(0, 200, Duration::from_micros(1_750)); // (1, 2.5] ms
        }
        let b = m.backend(0).unwrap();
        let p50 = b.recent_quantile(Tick(20_100), 0.5).unwrap();
        assert!(close(p50, 0.00175));
        let p99 = b.recent_quantile(Tick(20_100), 0.99).unwrap();
        assert!(close(p99, 0.001 + 0.0015 * 0.99));
        // The lifetime histogram still has the slow ones.
        assert!(close(b.latency().quantile(0.99).unwrap(), 2.5 + 2.5 * 0.98));
    }

    #[test]
    fn remap_keeps_surviving_backends() {
        let mut m = Metrics::new(2);
        m.on_request(0);
        m.on_request(1);
        m.on_request(1);
        m.remap_backends(&[Some(1), None, Some(9)]);
        assert_eq!(m.backend_count(), 3);
        assert_eq!(m.backend(0).unwrap().requests(), 2);
        assert_eq!(m.backend(1).unwrap().requests(), 0);
        assert_eq!(m.backend(2).unwrap().requests(), 0);
    }
}
