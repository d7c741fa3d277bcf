//! Time for the reactor: millisecond ticks and the timer wheel.
//!
//! Nothing here reads the system clock except [`MonotonicClock`], so the
//! wheel can be driven by a simulated clock in tests.

use std::time::{Duration, Instant};

pub mod date;
pub mod wheel;

/// Milliseconds since the reactor started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Tick(pub u64);

impl Tick {
    /// `self + d`, with `d` rounded up to whole milliseconds.
    pub fn after(self, d: Duration) -> Tick {
        let ms = d.as_nanos().div_ceil(1_000_000);
        Tick(self.0.saturating_add(u64::try_from(ms).unwrap_or(u64::MAX)))
    }
    /// Time from `self` until `later` (zero if `later` is not later).
    pub fn until(self, later: Tick) -> Duration {
        Duration::from_millis(later.0.saturating_sub(self.0))
    }
}

/// A source of the current time.
pub trait Clock {
    /// The current tick.
    fn now(&self) -> Tick;
    /// Time since the clock started, at full precision (response times of
    /// sub-millisecond backends need more than a [`Tick`]).
    fn elapsed(&self) -> std::time::Duration;
    /// The wall-clock time, for `Date` fields (read about once a second).
    fn wall(&self) -> std::time::SystemTime;
}

/// The real monotonic clock, counting from its creation.
#[derive(Debug, Clone, Copy)]
pub struct MonotonicClock {
    start: Instant,
}

impl MonotonicClock {
    /// A clock whose tick 0 is now.
    pub fn new() -> Self {
        MonotonicClock {
            start: Instant::now(),
        }
    }
}

impl Default for MonotonicClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for MonotonicClock {
    fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    fn now(&self) -> Tick {
        Tick(u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX))
    }

    fn wall(&self) -> std::time::SystemTime {
        std::time::SystemTime::now()
    }
}
