//! Least connections: the backend with the fewest requests in flight.

use super::{BackendId, BackendLoad, Strategy, eligible};

/// Picks the eligible backend with the fewest requests in flight.
///
/// Ties are broken by rotation: among the backends sharing the minimum, the
/// first one at or after the backend following the last pick (in configured
/// order, wrapping around) wins, so equally loaded backends take turns.
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
    fn pick(&mut self, backends: &[BackendLoad], avoid: Option<BackendId>) -> Option<BackendId> {
        let n = backends.len();
        let start = self.next % n.max(1);
        let mut best: Option<(BackendId, u32)> = None;
        for i in 0..n {
            let id = (start + i) % n;
            let b = &backends[id];
            if !eligible(id, b, avoid) {
                continue;
            }
            // Strictly fewer: the first tied backend in rotation order stays.
            if best.is_none_or(|(_, load)| b.in_flight < load) {
                best = Some((id, b.in_flight));
            }
        }
        let (id, _) = best?;
        self.next = (id + 1) % n;
        Some(id)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::loads;
    use super::*;

    fn with_flight(pattern: &str, flight: &[u32]) -> Vec<BackendLoad> {
        let mut b = loads(pattern);
        for (b, &f) in b.iter_mut().zip(flight) {
            b.in_flight = f;
        }
        b
    }

    #[test]
    fn prefers_fewest_in_flight() {
        let mut s = LeastConnections::new();
        assert_eq!(s.pick(&with_flight("uuu", &[5, 2, 9]), None), Some(1));
        assert_eq!(s.pick(&with_flight("uuu", &[0, 2, 9]), None), Some(0));
        assert_eq!(s.pick(&with_flight("uuu", &[3, 3, 1]), None), Some(2));
        // Repeatedly, as long as it stays lowest.
        for _ in 0..5 {
            assert_eq!(s.pick(&with_flight("uuu", &[4, 1, 4]), None), Some(1));
        }
    }

    #[test]
    fn rotates_among_ties() {
        let mut s = LeastConnections::new();
        let b = with_flight("uuuu", &[1, 3, 1, 1]);
        let seq: Vec<_> = (0..6).map(|_| s.pick(&b, None).unwrap()).collect();
        assert_eq!(seq, vec![0, 2, 3, 0, 2, 3]);
        // The cursor carries over: after 0 and 2, equal loads continue at 3.
        assert_eq!(s.pick(&b, None), Some(0));
        assert_eq!(s.pick(&b, None), Some(2));
        let b = loads("uuuu");
        let seq: Vec<_> = (0..5).map(|_| s.pick(&b, None).unwrap()).collect();
        assert_eq!(seq, vec![3, 0, 1, 2, 3]);
    }

    #[test]
    fn simulated_load_spreads_evenly() {
        // Each pick adds a request; all backends stay within one of each other.
        let mut s = LeastConnections::new();
        let mut b = loads("uuu");
        let mut seq = Vec::new();
        for _ in 0..6 {
            let id = s.pick(&b, None).unwrap();
            b[id].in_flight += 1;
            seq.push(id);
        }
        assert_eq!(seq, vec![0, 1, 2, 0, 1, 2]);
        // Backend 1 finishes two requests: it gets the next two.
        b[1].in_flight -= 2;
        assert_eq!(s.pick(&b, None), Some(1));
        b[1].in_flight += 1;
        assert_eq!(s.pick(&b, None), Some(1));
    }

    #[test]
    fn skips_backends_out_of_rotation() {
        let mut s = LeastConnections::new();
        // The idle backend is down.
        assert_eq!(s.pick(&with_flight("duu", &[0, 4, 3]), None), Some(2));
        assert_eq!(s.pick(&with_flight("dud", &[0, 9, 0]), None), Some(1));
    }

    #[test]
    fn empty_or_all_down_is_none() {
        let mut s = LeastConnections::new();
        assert_eq!(s.pick(&[], None), None);
        assert_eq!(s.pick(&loads("ddd"), None), None);
        assert_eq!(s.pick(&loads("udd"), None), Some(0));
    }

    #[test]
    fn avoid_is_honored() {
        let mut s = LeastConnections::new();
        // The least loaded backend is avoided: the next least loaded wins.
        assert_eq!(s.pick(&with_flight("uuu", &[5, 0, 2]), Some(1)), Some(2));
        assert_eq!(s.pick(&with_flight("uuu", &[5, 0, 2]), Some(2)), Some(1));
        assert_eq!(s.pick(&with_flight("udu", &[0, 0, 0]), Some(2)), Some(0));
        assert_eq!(s.pick(&loads("dud"), Some(1)), None);
    }
}
