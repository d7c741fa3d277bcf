//! The retry budget: retries may be at most a percentage of the requests
//! seen over the last ten seconds, plus a small floor per second, so that a
//! total outage cannot turn every request into several (a retry storm).
//! This is Finagle's `RetryBudget` shape.

use crate::time::Tick;

/// Seconds of history the budget looks at.
pub const WINDOW_SECS: u64 = 10;

/// Requests and retries counted per second over the last [`WINDOW_SECS`].
#[derive(Debug, Clone)]
pub struct RetryBudget {
    percent: u64,
    min_per_sec: u64,
    /// `(second, requests, retries)` per slot; a slot whose second is not
    /// within the window counts as empty.
    slots: [(u64, u64, u64); WINDOW_SECS as usize],
}

impl RetryBudget {
    /// A budget allowing `percent` % of requests plus `min_per_sec` per second.
    pub fn new(percent: u32, min_per_sec: u32) -> RetryBudget {
        RetryBudget {
            percent: u64::from(percent),
            min_per_sec: u64::from(min_per_sec),
            slots: [(u64::MAX, 0, 0); WINDOW_SECS as usize],
        }
    }

    fn slot(&mut self, now: Tick) -> &mut (u64, u64, u64) {
        let sec = now.0 / 1000;
        let slot = &mut self.slots[(sec % WINDOW_SECS) as usize];
        if slot.0 != sec {
            *slot = (sec, 0, 0);
        }
        slot
    }

    fn totals(&self, now: Tick) -> (u64, u64) {
        let sec = now.0 / 1000;
        self.slots
            .iter()
            .filter(|s| s.0 != u64::MAX && s.0 <= sec && sec - s.0 < WINDOW_SECS)
            .fold((0, 0), |(rq, rt), s| (rq + s.1, rt + s.2))
    }

    /// Counts a new request.
    pub fn on_request(&mut self, now: Tick) {
        self.slot(now).1 += 1;
    }

    /// Takes one retry from the budget if it allows one.
    pub fn try_retry(&mut self, now: Tick) -> bool {
        let (requests, retries) = self.totals(now);
        let allowed = self.min_per_sec * WINDOW_SECS + requests * self.percent / 100;
        if retries < allowed {
            self.slot(now).2 += 1;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floor_then_percentage() {
        let mut b = RetryBudget::new(20, 3);
        let now = Tick(5_000);
        // No requests: the floor alone, 3/s over 10 s.
        let floor = (0..100).filter(|_| b.try_retry(now)).count();
        assert_eq!(floor, 30);
        for _ in 0..100 {
            b.on_request(now);
        }
        // 20 % of 100 requests on top of the floor already used.
        assert_eq!((0..100).filter(|_| b.try_retry(now)).count(), 20);
    }

    #[test]
    fn old_seconds_leave_the_window() {
        let mut b = RetryBudget::new(0, 1);
        assert_eq!((0..20).filter(|_| b.try_retry(Tick(0))).count(), 10);
        assert!(!b.try_retry(Tick(9_999)));
        // Second 0 left the window: its ten retries no longer count.
        assert_eq!((0..20).filter(|_| b.try_retry(Tick(10_000))).count(), 10);
    }

    #[test]
    fn zero_budget_allows_nothing() {
        let mut b = RetryBudget::new(0, 0);
        b.on_request(Tick(1));
        assert!(!b.try_retry(Tick(1)));
    }
}
