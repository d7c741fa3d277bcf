//! Backend health: passive failure counting and the result of the latest
//! active probe, decided against the current time.
//!
//! A backend leaves rotation when `max_fails` failures fall within the last
//! `fail_window`. It comes back once fewer than `max_fails` failures remain
//! in the window *and* its latest probe succeeded. The state is evaluated
//! when a backend is picked, so a recovered backend is back exactly when its
//! oldest counted failure leaves the window, not at the next probe.

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
    /// Probe answered with a status other than 200, or garbage.
    BadStatus,
    /// The probe connection failed after it was established.
    Reset,
}

impl FailureKind {
    /// Short description for log lines.
    pub fn describe(self) -> &'static str {
        match self {
            FailureKind::ConnectRefused => "connect refused",
            FailureKind::ConnectTimeout => "connect timeout",
            FailureKind::WriteTimeout => "write timeout",
            FailureKind::ReadTimeout => "read timeout",
            FailureKind::BadStatus => "health check answered other than 200",
            FailureKind::Reset => "connection reset",
        }
    }
}

/// Health of one backend.
#[derive(Debug)]
pub struct Health {
    max_fails: usize,
    window: Duration,
    /// Times of the latest failures, oldest first, at most `max_fails`.
    failures: VecDeque<Tick>,
    last_probe_ok: bool,
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
            last_probe_ok: true,
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
    }

    /// Records the result of an active probe.
    pub fn record_probe(&mut self, now: Tick, result: Result<(), FailureKind>) {
        match result {
            Ok(()) => self.last_probe_ok = true,
            Err(kind) => {
                self.last_probe_ok = false;
                self.record_failure(now, kind);
            }
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
        let count = self.failures_in_window(now);
        if self.in_rotation && count >= self.max_fails {
            self.in_rotation = false;
            Some(Transition::Out)
        } else if !self.in_rotation && count < self.max_fails && self.last_probe_ok {
            self.in_rotation = true;
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
    fn out_after_max_fails_and_back_after_window() {
        let mut h = Health::new(3, Duration::from_secs(10));
        for t in [0, 100, 200] {
            assert_eq!(h.update(Tick(t)), None);
            h.record_probe(Tick(t), Err(FailureKind::ConnectRefused));
        }
        assert_eq!(h.update(Tick(300)), Some(Transition::Out));
        h.record_probe(Tick(400), Ok(()));
        // Still three failures within 10 s of t=9_999.
        assert_eq!(h.update(Tick(9_999)), None);
        // The first failure left the window: two remain, probe ok → back in.
        assert_eq!(h.update(Tick(10_000)), Some(Transition::In));
        assert!(h.in_rotation());
    }

    #[test]
    fn stays_out_while_latest_probe_fails() {
        let mut h = Health::new(1, Duration::from_secs(1));
        h.record_probe(Tick(0), Err(FailureKind::BadStatus));
        assert_eq!(h.update(Tick(0)), Some(Transition::Out));
        assert_eq!(h.update(Tick(5_000)), None);
        h.record_probe(Tick(5_000), Ok(()));
        assert_eq!(h.update(Tick(5_000)), Some(Transition::In));
    }
}
