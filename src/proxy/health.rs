//! Backend health: passive failure counting and the result of the latest
//! active probe, decided against the current time.
//!
//! A backend leaves rotation when `max_fails` failures fall within the last
//! `fail_window`. It comes back after [`RISE`] consecutive successful probes
//! (as HAProxy's `rise 2`): a recovered backend serves again within about
//! two probe intervals, whatever `fail_window` is, while one that alternates
//! success and failure stays out. Coming back forgets the failures counted
//! so far, so the backend starts again with a full `max_fails` allowance.

use std::collections::VecDeque;
use std::time::Duration;

use crate::time::Tick;

/// What went wrong, for logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// Connection refused or reset while connecting.
    ConnectRefused,
    /// No connection within `connection_timeout`.
    ConnectTimeout,
    /// Probe write did not finish within `write_timeout`.
    WriteTimeout,
    /// Probe answer did not come within `read_timeout`.
    ReadTimeout,
    /// Probe answered with a status outside 2xx and 3xx, or garbage.
    BadStatus,
    /// The probe connection failed after it was established.
    Reset,
    /// A proxied request's new connection was closed or reset before any
    /// byte of a response.
    NoResponse,
}

impl FailureKind {
    /// Short description for log lines.
    pub fn describe(self) -> &'static str {
        match self {
            FailureKind::ConnectRefused => "connect refused",
            FailureKind::ConnectTimeout => "connect timeout",
            FailureKind::WriteTimeout => "write timeout",
            FailureKind::ReadTimeout => "read timeout",
            FailureKind::BadStatus => "health check answered other than 2xx or 3xx",
            FailureKind::Reset => "connection reset",
            FailureKind::NoResponse => "closed without a response",
        }
    }
}

/// Consecutive successful probes that bring a backend back into rotation.
pub const RISE: u32 = 2;

/// Health of one backend.
#[derive(Debug)]
pub struct Health {
    max_fails: usize,
    window: Duration,
    /// Times of the latest failures, oldest first, at most `max_fails`.
    failures: VecDeque<Tick>,
    /// Successful probes since the latest failure of any kind.
    passes: u32,
    in_rotation: bool,
    last_failure: Option<FailureKind>,
    /// When the backend last came back into rotation (slow start).
    back_since: Option<Tick>,
}

/// A change of rotation state, to be logged once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// The backend left rotation.
    Out,
    /// The backend came back.
    In,
}

impl Health {
    /// A backend in rotation with no failures.
    pub fn new(max_fails: u32, window: Duration) -> Health {
        let max_fails = max_fails.max(1) as usize;
        Health {
            max_fails,
            window,
            failures: VecDeque::with_capacity(max_fails),
            passes: 0,
            in_rotation: true,
            last_failure: None,
            back_since: None,
        }
    }

    /// Changes `max_fails` and the window (on reload); failures recorded so
    /// far still count.
    pub fn set_limits(&mut self, max_fails: u32, window: Duration) {
        self.max_fails = max_fails.max(1) as usize;
        self.window = window;
        while self.failures.len() > self.max_fails {
            self.failures.pop_front();
        }
    }

    /// Records a failure at `now`.
    pub fn record_failure(&mut self, now: Tick, kind: FailureKind) {
        if self.failures.len() == self.max_fails {
            self.failures.pop_front();
        }
        self.failures.push_back(now);
        self.last_failure = Some(kind);
        self.passes = 0;
    }

    /// Records the result of an active probe.
    pub fn record_probe(&mut self, now: Tick, result: Result<(), FailureKind>) {
        match result {
            Ok(()) => self.passes = self.passes.saturating_add(1),
            Err(kind) => self.record_failure(now, kind),
        }
    }

    /// Failures within the window ending at `now`.
    pub fn failures_in_window(&self, now: Tick) -> usize {
        let window_ms = u64::try_from(self.window.as_millis()).unwrap_or(u64::MAX);
        self.failures
            .iter()
            .filter(|t| now.0.saturating_sub(t.0) < window_ms)
            .count()
    }

    /// Re-evaluates the state at `now`; returns the transition, if any.
    pub fn update(&mut self, now: Tick) -> Option<Transition> {
        if self.in_rotation && self.failures_in_window(now) >= self.max_fails {
            self.in_rotation = false;
            self.passes = 0;
            Some(Transition::Out)
        } else if !self.in_rotation && self.passes >= RISE {
            self.in_rotation = true;
            self.failures.clear();
            self.back_since = Some(now);
            Some(Transition::In)
        } else {
            None
        }
    }

    /// In rotation as of the last [`Health::update`].
    pub fn in_rotation(&self) -> bool {
        self.in_rotation
    }

    /// When the backend last came back into rotation, if it ever left.
    pub fn back_since(&self) -> Option<Tick> {
        self.back_since
    }

    /// The most recent failure's kind.
    pub fn last_failure(&self) -> Option<FailureKind> {
        self.last_failure
    }

    /// The failure window.
    pub fn window(&self) -> Duration {
        self.window
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_after_max_fails_and_back_after_two_successful_probes() {
        let mut h = Health::new(3, Duration::from_secs(60));
        for t in [0, 100, 200] {
            assert_eq!(h.update(Tick(t)), None);
            h.record_probe(Tick(t), Err(FailureKind::ConnectRefused));
        }
        assert_eq!(h.update(Tick(300)), Some(Transition::Out));
        h.record_probe(Tick(400), Ok(()));
        assert_eq!(h.update(Tick(400)), None, "one success is not enough");
        h.record_probe(Tick(500), Ok(()));
        // Well inside the 60 s window: recovery does not wait for it.
        assert_eq!(h.update(Tick(500)), Some(Transition::In));
        assert!(h.in_rotation());
        assert_eq!(h.back_since(), Some(Tick(500)));
    }

    #[test]
    fn coming_back_forgets_the_counted_failures() {
        let mut h = Health::new(2, Duration::from_secs(60));
        h.record_failure(Tick(0), FailureKind::ConnectRefused);
        h.record_failure(Tick(1), FailureKind::ConnectRefused);
        assert_eq!(h.update(Tick(2)), Some(Transition::Out));
        h.record_probe(Tick(3), Ok(()));
        h.record_probe(Tick(4), Ok(()));
        assert_eq!(h.update(Tick(4)), Some(Transition::In));
        // One new failure: the old two are gone, so it stays in.
        h.record_failure(Tick(5), FailureKind::ConnectRefused);
        assert_eq!(h.update(Tick(5)), None);
        assert!(h.in_rotation());
    }

    #[test]
    fn successes_before_leaving_do_not_count() {
        let mut h = Health::new(1, Duration::from_secs(60));
        h.record_probe(Tick(0), Ok(()));
        h.record_probe(Tick(1), Ok(()));
        h.record_failure(Tick(2), FailureKind::ConnectRefused);
        assert_eq!(h.update(Tick(2)), Some(Transition::Out));
        h.record_probe(Tick(3), Ok(()));
        assert_eq!(h.update(Tick(3)), None);
    }

    #[test]
    fn alternating_success_and_failure_stays_out() {
        let mut h = Health::new(1, Duration::from_secs(1));
        h.record_probe(Tick(0), Err(FailureKind::BadStatus));
        assert_eq!(h.update(Tick(0)), Some(Transition::Out));
        for t in 1..20 {
            let r = if t % 2 == 0 {
                Err(FailureKind::BadStatus)
            } else {
                Ok(())
            };
            h.record_probe(Tick(t * 5_000), r);
            assert_eq!(h.update(Tick(t * 5_000)), None, "flapped at probe {t}");
        }
        // A passive failure between two successful probes resets them too.
        h.record_probe(Tick(200_000), Ok(()));
        h.record_failure(Tick(200_001), FailureKind::ConnectTimeout);
        h.record_probe(Tick(200_002), Ok(()));
        assert_eq!(h.update(Tick(200_002)), None);
        h.record_probe(Tick(200_003), Ok(()));
        assert_eq!(h.update(Tick(200_003)), Some(Transition::In));
    }
}
