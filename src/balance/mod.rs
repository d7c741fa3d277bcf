//! Balancing strategies: which backend gets the next request.
//!
//! Every strategy implements [`Strategy`]. The proxy describes the backends
//! as a slice of [`BackendLoad`] in configured order (index = [`BackendId`])
//! and asks for a pick; strategies keep only their own small state (a cursor,
//! a PRNG) and never allocate per pick. [`from_kind`] builds the strategy
//! named by the configuration.

use crate::config::StrategyKind;

mod least_connections;
mod random;
pub mod rng;
mod round_robin;

pub use least_connections::LeastConnections;
pub use random::Random;
pub use round_robin::RoundRobin;

/// Index of a backend in configured order.
pub type BackendId = usize;

/// What a strategy may see of one backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BackendLoad {
    /// Whether the backend may receive requests (healthy, not ejected).
    pub in_rotation: bool,
    /// Requests currently in flight to the backend.
    pub in_flight: u32,
}

/// A balancing strategy.
pub trait Strategy: std::fmt::Debug {
    /// Picks a backend in rotation, never `avoid`; None if there is none.
    ///
    /// `backends` lists every configured backend in configured order; an
    /// index in the slice is its [`BackendId`]. `avoid` is typically the
    /// backend that just failed a request being retried.
    fn pick(&mut self, backends: &[BackendLoad], avoid: Option<BackendId>) -> Option<BackendId>;
}

/// The strategy for `kind`. `seed` seeds the PRNG of [`Random`]; the other
/// strategies are deterministic and ignore it.
pub fn from_kind(kind: StrategyKind, seed: u64) -> Box<dyn Strategy> {
    match kind {
        StrategyKind::RoundRobin => Box::new(RoundRobin::new()),
        StrategyKind::LeastConnections => Box::new(LeastConnections::new()),
        StrategyKind::Random => Box::new(Random::new(seed)),
        // replaced by the balance module's own strategies
        StrategyKind::PowerOfTwoChoices | StrategyKind::LatencyAware => Box::new(Random::new(seed)),
    }
}

/// Whether backend `id` with load `b` may be picked.
fn eligible(id: BackendId, b: &BackendLoad, avoid: Option<BackendId>) -> bool {
    b.in_rotation && avoid != Some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Backends from a string: `u` in rotation, `d` down.
    pub(crate) fn loads(pattern: &str) -> Vec<BackendLoad> {
        pattern
            .chars()
            .map(|c| BackendLoad {
                in_rotation: c == 'u',
                in_flight: 0,
            })
            .collect()
    }

    #[test]
    fn from_kind_builds_each_strategy() {
        let b = loads("uuu");
        for kind in [
            StrategyKind::RoundRobin,
            StrategyKind::LeastConnections,
            StrategyKind::Random,
        ] {
            let mut s = from_kind(kind, 7);
            assert!(!format!("{s:?}").is_empty());
            for _ in 0..10 {
                let id = s.pick(&b, Some(1)).unwrap();
                assert!(id == 0 || id == 2, "{kind:?} picked {id}");
            }
            assert_eq!(s.pick(&[], None), None);
            assert_eq!(s.pick(&loads("ddd"), None), None);
            assert_eq!(s.pick(&loads("dud"), Some(1)), None);
        }
    }

    #[test]
    fn from_kind_round_robin_and_least_connections_start_at_zero() {
        let b = loads("uuu");
        let mut rr = from_kind(StrategyKind::RoundRobin, 1);
        let mut lc = from_kind(StrategyKind::LeastConnections, 1);
        let rr_seq: Vec<_> = (0..4).map(|_| rr.pick(&b, None).unwrap()).collect();
        let lc_seq: Vec<_> = (0..4).map(|_| lc.pick(&b, None).unwrap()).collect();
        assert_eq!(rr_seq, vec![0, 1, 2, 0]);
        assert_eq!(lc_seq, vec![0, 1, 2, 0]);
    }
}
