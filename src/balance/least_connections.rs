//! Least connections: the backend with the fewest requests in flight per
//! unit of weight.

use std::cmp::Ordering;

use super::{BackendId, BackendLoad, Strategy, cmp_load, eligible};
use crate::time::Tick;

/// Picks the eligible backend with the lowest `in_flight / weight`.
///
/// Loads are compared exactly as `in_flight_a × weight_b` against
/// `in_flight_b × weight_a`, without floats; with equal weights this is
/// plain fewest-in-flight. Ties are broken by rotation: among the backends
/// sharing the minimum, the first one at or after the backend following the
/// last pick (in configured order, wrapping around) wins, so equally loaded
/// backends take turns.
#[derive(Debug, Clone, Default)]
pub struct LeastConnections {
    /// Where the tie-breaking search starts.
    next: usize,
}

impl LeastConnections {
    /// A least-connections strategy whose first tie goes to backend 0.
    pub fn new() -> LeastConnections {
        LeastConnections { next: 0 }
    }
}

impl Strategy for LeastConnections {
    fn pick(
        &mut self,
        backends: &[BackendLoad],
        avoid: Option<BackendId>,
        _now: Tick,
    ) -> Option<BackendId> {
        let n = backends.len();
        let start = self.next % n.max(1);
        let mut best: Option<BackendId> = None;
        for i in 0..n {
            let id = (start + i) % n;
            let b = &backends[id];
            if !eligible(id, b, avoid) {
                continue;
            }
            // Strictly lighter: the first tied backend in rotation order stays.
            if best.is_none_or(|best| cmp_load(b, &backends[best]) == Ordering::Less) {
                best = Some(id);
            }
        }
        let id = best?;
        self.next = (id + 1) % n;
        Some(id)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{loads, seq, simulated_load, weighted, with_flight};
    use super::*;

    fn pick(
        s: &mut LeastConnections,
        b: &[BackendLoad],
        avoid: Option<BackendId>,
    ) -> Option<BackendId> {
        s.pick(b, avoid, Tick(0))
    }

    #[test]
    fn prefers_fewest_in_flight() {
        let mut s = LeastConnections::new();
        assert_eq!(pick(&mut s, &with_flight("uuu", &[5, 2, 9]), None), Some(1));
        assert_eq!(pick(&mut s, &with_flight("uuu", &[0, 2, 9]), None), Some(0));
        assert_eq!(pick(&mut s, &with_flight("uuu", &[3, 3, 1]), None), Some(2));
        // Repeatedly, as long as it stays lowest.
        for _ in 0..5 {
            assert_eq!(pick(&mut s, &with_flight("uuu", &[4, 1, 4]), None), Some(1));
        }
    }

    #[test]
    fn rotates_among_ties() {
        let mut s = LeastConnections::new();
        let b = with_flight("uuuu", &[1, 3, 1, 1]);
        assert_eq!(seq(&mut s, &b, None, 6), [0, 2, 3, 0, 2, 3].map(Some));
        // The cursor carries over: after 0 and 2, equal loads continue at 3.
        assert_eq!(pick(&mut s, &b, None), Some(0));
        assert_eq!(pick(&mut s, &b, None), Some(2));
        assert_eq!(
            seq(&mut s, &loads("uuuu"), None, 5),
            [3, 0, 1, 2, 3].map(Some)
        );
    }

    #[test]
    fn simulated_load_spreads_evenly() {
        // Each pick adds a request; all backends stay within one of each other.
        let mut s = LeastConnections::new();
        let mut b = loads("uuu");
        let mut picks = Vec::new();
        for _ in 0..6 {
            let id = pick(&mut s, &b, None).unwrap();
            b[id].in_flight += 1;
            picks.push(id);
        }
        assert_eq!(picks, vec![0, 1, 2, 0, 1, 2]);
        // Backend 1 finishes two requests: it gets the next two.
        b[1].in_flight -= 2;
        assert_eq!(pick(&mut s, &b, None), Some(1));
        b[1].in_flight += 1;
        assert_eq!(pick(&mut s, &b, None), Some(1));
    }

    #[test]
    fn load_is_per_unit_of_weight() {
        let mut s = LeastConnections::new();
        // 4/2 = 2 < 3/1.
        let mut b = weighted(&[1, 2]);
        b[0].in_flight = 3;
        b[1].in_flight = 4;
        assert_eq!(pick(&mut s, &b, None), Some(1));
        // 6/2 = 3 ties 3/1: rotation decides (the cursor is past 1, so 0).
        b[1].in_flight = 6;
        assert_eq!(pick(&mut s, &b, None), Some(0));
        assert_eq!(pick(&mut s, &b, None), Some(1));
        // 7/2 > 3/1.
        b[1].in_flight = 7;
        assert_eq!(pick(&mut s, &b, None), Some(0));
        // Weight 0 counts as 1.
        let mut b = weighted(&[0, 1]);
        b[0].in_flight = 1;
        assert_eq!(pick(&mut s, &b, None), Some(1));
    }

    #[test]
    fn exact_sequence_with_weights() {
        // Requests pile up (none finish): each pick goes to the lowest
        // in_flight/weight, ties by rotation.
        let mut s = LeastConnections::new();
        let mut b = weighted(&[1, 2, 3]);
        let mut picks = Vec::new();
        for _ in 0..12 {
            let id = pick(&mut s, &b, None).unwrap();
            b[id].in_flight += 1;
            picks.push(id);
        }
        assert_eq!(picks, vec![0, 1, 2, 2, 1, 2, 0, 1, 2, 2, 1, 2]);
    }

    #[test]
    fn simulated_load_shares_match_weights() {
        // Requests accumulate: in-flight stays proportional to weight.
        let mut s = LeastConnections::new();
        let mut b = weighted(&[1, 2, 3]);
        let mut c = [0usize; 3];
        for _ in 0..3000 {
            let id = pick(&mut s, &b, None).unwrap();
            b[id].in_flight += 1;
            c[id] += 1;
        }
        assert_eq!(c, [500, 1000, 1500]);
        // A steady state: per round backend i finishes up to `weight_i`
        // requests (its capacity), then six new requests arrive.
        let mut s = LeastConnections::new();
        assert_eq!(simulated_load(&mut s, &[1, 2, 3]), [500, 1000, 1500]);
    }

    #[test]
    fn skips_backends_out_of_rotation() {
        let mut s = LeastConnections::new();
        // The idle backend is down.
        assert_eq!(pick(&mut s, &with_flight("duu", &[0, 4, 3]), None), Some(2));
        assert_eq!(pick(&mut s, &with_flight("dud", &[0, 9, 0]), None), Some(1));
    }

    #[test]
    fn empty_or_all_down_is_none() {
        let mut s = LeastConnections::new();
        assert_eq!(pick(&mut s, &[], None), None);
        assert_eq!(pick(&mut s, &loads("ddd"), None), None);
        assert_eq!(pick(&mut s, &loads("udd"), None), Some(0));
    }

    #[test]
    fn avoid_is_honored() {
        let mut s = LeastConnections::new();
        // The least loaded backend is avoided: the next least loaded wins.
        assert_eq!(
            pick(&mut s, &with_flight("uuu", &[5, 0, 2]), Some(1)),
            Some(2)
        );
        assert_eq!(
            pick(&mut s, &with_flight("uuu", &[5, 0, 2]), Some(2)),
            Some(1)
        );
        assert_eq!(
            pick(&mut s, &with_flight("udu", &[0, 0, 0]), Some(2)),
            Some(0)
        );
        assert_eq!(pick(&mut s, &loads("dud"), Some(1)), None);
    }

    #[test]
    fn other_slice_lengths_do_not_panic() {
        let mut s = LeastConnections::new();
        assert_eq!(
            seq(&mut s, &loads("uuuuu"), None, 4),
            [0, 1, 2, 3].map(Some)
        );
        assert_eq!(pick(&mut s, &loads("uu"), None), Some(0));
    }
}
