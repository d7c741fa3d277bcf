//! Round robin: smooth weighted round robin over the backends in rotation.

use super::{BackendId, BackendLoad, Strategy, eligible, weight};
use crate::time::Tick;

/// Smooth weighted round robin, nginx's algorithm.
///
/// Each backend has a current weight, initially 0. On every pick each
/// eligible backend's current weight grows by its weight, the eligible
/// backend with the largest current weight wins (the first in configured
/// order on ties) and its current weight drops by the total weight of the
/// eligible backends. Over any window of `total` consecutive picks with a
/// stable set, each backend gets exactly its weight in picks, interleaved
/// rather than in runs: weights 5, 1, 1 give `0, 0, 1, 0, 2, 0, 0`.
///
/// With equal weights this is plain round robin in configured order
/// (`0, 1, 2, 0, 1, 2`), and backends out of rotation (or avoided) are
/// skipped and keep their current weight: `[up, down, up]` gives
/// `0, 2, 0, 2`. The current weights always sum to zero, so they stay
/// bounded.
#[derive(Debug, Clone, Default)]
pub struct RoundRobin {
    /// Current weight per backend, by [`BackendId`].
    current: Vec<i64>,
}

impl RoundRobin {
    /// A round robin for `n_backends` backends, starting at backend 0.
    ///
    /// A longer slice later is still handled: the state grows once to the
    /// longest slice seen (never in steady state, where the proxy always
    /// passes all `n_backends`).
    pub fn new(n_backends: usize) -> RoundRobin {
        RoundRobin {
            current: vec![0; n_backends],
        }
    }
}

impl Strategy for RoundRobin {
    fn pick(
        &mut self,
        backends: &[BackendLoad],
        avoid: Option<BackendId>,
        _now: Tick,
    ) -> Option<BackendId> {
        if self.current.len() < backends.len() {
            self.current.resize(backends.len(), 0);
        }
        let mut total: i64 = 0;
        let mut best: Option<BackendId> = None;
        for (id, b) in backends.iter().enumerate() {
            if !eligible(id, b, avoid) {
                continue;
            }
            // A u32 weight: many backends fit in i64 without overflow.
            let w = weight(b) as i64;
            self.current[id] += w;
            total += w;
            if best.is_none_or(|best| self.current[id] > self.current[best]) {
                best = Some(id);
            }
        }
        let id = best?;
        self.current[id] -= total;
        Some(id)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{counts, loads, seq, weighted};
    use super::*;

    #[test]
    fn rotates_in_configured_order() {
        let mut s = RoundRobin::new(3);
        let b = loads("uuu");
        assert_eq!(seq(&mut s, &b, None, 7), [0, 1, 2, 0, 1, 2, 0].map(Some));
    }

    #[test]
    fn skips_backends_out_of_rotation() {
        let mut s = RoundRobin::new(3);
        assert_eq!(
            seq(&mut s, &loads("udu"), None, 5),
            [0, 2, 0, 2, 0].map(Some)
        );
        let mut s = RoundRobin::new(4);
        assert_eq!(seq(&mut s, &loads("ddud"), None, 3), [2, 2, 2].map(Some));
    }

    #[test]
    fn smooth_weighted_sequence() {
        // nginx's documented example: weights 5, 1, 1.
        let mut s = RoundRobin::new(3);
        assert_eq!(
            seq(&mut s, &weighted(&[5, 1, 1]), None, 14),
            [0, 0, 1, 0, 2, 0, 0, 0, 0, 1, 0, 2, 0, 0].map(Some)
        );
        let mut s = RoundRobin::new(3);
        assert_eq!(
            seq(&mut s, &weighted(&[1, 2, 3]), None, 12),
            [2, 1, 0, 2, 1, 2, 2, 1, 0, 2, 1, 2].map(Some)
        );
    }

    #[test]
    fn shares_match_weights_exactly() {
        let mut s = RoundRobin::new(3);
        assert_eq!(
            counts(&mut s, &weighted(&[1, 2, 3]), None, 3000),
            [500, 1000, 1500]
        );
        // Every window of 6 picks holds each backend exactly weight times.
        let picks = seq(&mut s, &weighted(&[1, 2, 3]), None, 600);
        for window in picks.chunks(6) {
            let mut c = [0; 3];
            for id in window {
                c[id.unwrap()] += 1;
            }
            assert_eq!(c, [1, 2, 3]);
        }
        // A down backend's share goes to the others, still by weight.
        let mut b = weighted(&[1, 2, 3, 4]);
        b[2].in_rotation = false;
        let mut s = RoundRobin::new(4);
        assert_eq!(counts(&mut s, &b, None, 3500), [500, 1000, 0, 2000]);
    }

    #[test]
    fn weight_zero_counts_as_one() {
        let mut s = RoundRobin::new(2);
        assert_eq!(
            seq(&mut s, &weighted(&[0, 1]), None, 4),
            [0, 1, 0, 1].map(Some)
        );
    }

    #[test]
    fn set_changes_keep_current_weights() {
        let mut s = RoundRobin::new(4);
        let all = loads("uuuu");
        assert_eq!(seq(&mut s, &all, None, 2), [0, 1].map(Some));
        // 2 leaves rotation with its credit frozen; 3, which had built up
        // credit too, goes twice before 0 and 1 catch up.
        assert_eq!(seq(&mut s, &loads("uudu"), None, 3), [3, 3, 0].map(Some));
        // 2 is back with its credit and goes first.
        assert_eq!(seq(&mut s, &all, None, 5), [2, 1, 3, 0, 2].map(Some));
        // Whatever happened, the shares over a stable set are even again.
        let c = counts(&mut s, &all, None, 400);
        assert!(c.iter().all(|&n| (99..=101).contains(&n)), "{c:?}");
    }

    #[test]
    fn empty_or_all_down_is_none() {
        let mut s = RoundRobin::new(3);
        assert_eq!(s.pick(&[], None, Tick(0)), None);
        assert_eq!(s.pick(&loads("ddd"), None, Tick(0)), None);
        // And it recovers afterwards.
        assert_eq!(s.pick(&loads("dud"), None, Tick(0)), Some(1));
    }

    #[test]
    fn avoid_is_honored() {
        let mut s = RoundRobin::new(3);
        let b = loads("uuu");
        let t = Tick(0);
        assert_eq!(s.pick(&b, Some(0), t), Some(1));
        assert_eq!(s.pick(&b, Some(2), t), Some(0));
        assert_eq!(s.pick(&b, Some(1), t), Some(2));
        assert_eq!(s.pick(&b, None, t), Some(0));
        assert_eq!(s.pick(&loads("udd"), Some(0), t), None);
        assert_eq!(s.pick(&loads("u"), Some(0), t), None);
        // Avoiding a backend that is out of range or down changes nothing.
        let mut s = RoundRobin::new(3);
        assert_eq!(seq(&mut s, &loads("udu"), Some(9), 2), [0, 2].map(Some));
        assert_eq!(seq(&mut s, &loads("udu"), Some(1), 2), [0, 2].map(Some));
        // Avoiding the heaviest backend on a retry: the next in line goes.
        let mut s = RoundRobin::new(3);
        assert_eq!(s.pick(&weighted(&[1, 1, 5]), Some(2), t), Some(0));
        assert_eq!(s.pick(&weighted(&[1, 1, 5]), None, t), Some(2));
    }

    #[test]
    fn other_slice_lengths_do_not_panic() {
        let mut s = RoundRobin::new(2);
        assert_eq!(
            seq(&mut s, &loads("uuuuu"), None, 5),
            [0, 1, 2, 3, 4].map(Some)
        );
        assert_eq!(seq(&mut s, &loads("uu"), None, 2), [0, 1].map(Some));
        let mut s = RoundRobin::new(0);
        assert_eq!(s.pick(&loads("u"), None, Tick(0)), Some(0));
    }
}
