//! Balancing strategies: which backend gets the next request.
//!
//! Every strategy implements [`Strategy`]. The proxy describes the backends
//! as a slice of [`BackendLoad`] in configured order (index = [`BackendId`])
//! and asks for a pick; strategies keep only their own small state (a cursor,
//! a PRNG, per-backend counters sized once) and never allocate per pick.
//! [`from_kind`] builds the strategy named by the configuration.
//!
//! Every strategy honours per-backend weights ([`BackendLoad::weight`]):
//!
//! - [`RoundRobin`]: smooth weighted round robin (nginx's algorithm).
//! - [`Random`]: probability proportional to weight.
//! - [`LeastConnections`]: fewest `in_flight / weight`.
//! - [`PowerOfTwoChoices`]: two weighted random draws, fewer
//!   `in_flight / weight` wins.
//! - [`LatencyAware`]: two weighted random draws, lower
//!   `peak-EWMA × (in_flight + 1) / weight` wins.
//!
//! Rules shared by all of them: a backend out of rotation is never picked,
//! `avoid` is never picked, and an empty or all-ineligible set gives `None`.

use std::cmp::Ordering;
use std::time::Duration;

use crate::config::StrategyKind;
use crate::time::Tick;

mod latency_aware;
mod least_connections;
mod power_of_two;
mod random;
pub mod rng;
mod round_robin;

pub use latency_aware::LatencyAware;
pub use least_connections::LeastConnections;
pub use power_of_two::PowerOfTwoChoices;
pub use random::Random;
pub use round_robin::RoundRobin;

use rng::Rng;

/// Index of a backend in configured order.
pub type BackendId = usize;

/// What a strategy may see of one backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BackendLoad {
    /// Whether the backend may receive requests (healthy, not ejected).
    pub in_rotation: bool,
    /// Requests currently in flight to the backend.
    pub in_flight: u32,
    /// Effective weight: at least 1 when in rotation (the proxy lowers it
    /// during slow start). Strategies treat 0 as 1, so a backend in rotation
    /// is never starved by its weight alone.
    pub weight: u32,
}

/// A balancing strategy.
pub trait Strategy: std::fmt::Debug + Send {
    /// Picks a backend in rotation, never `avoid`; None if there is none.
    ///
    /// `backends` lists every configured backend in configured order; an
    /// index in the slice is its [`BackendId`]. `avoid` is typically the
    /// backend that just failed a request being retried. `now` is the
    /// current time, for strategies whose state decays.
    fn pick(
        &mut self,
        backends: &[BackendLoad],
        avoid: Option<BackendId>,
        now: Tick,
    ) -> Option<BackendId>;

    /// A response head arrived from `backend` `rtt` after the request was
    /// sent (for latency-aware strategies). Default: nothing.
    fn observe(&mut self, backend: BackendId, rtt: Duration, now: Tick) {
        let _ = (backend, rtt, now);
    }
}

/// The strategy for `kind`.
///
/// `seed` seeds the PRNG of the randomised strategies ([`Random`],
/// [`PowerOfTwoChoices`], [`LatencyAware`]); the others ignore it.
/// `n_backends` sizes per-backend state once; every strategy still accepts a
/// slice of another length without panicking.
pub fn from_kind(kind: StrategyKind, seed: u64, n_backends: usize) -> Box<dyn Strategy> {
    match kind {
        StrategyKind::RoundRobin => Box::new(RoundRobin::new(n_backends)),
        StrategyKind::LeastConnections => Box::new(LeastConnections::new()),
        StrategyKind::Random => Box::new(Random::new(seed)),
        StrategyKind::PowerOfTwoChoices => Box::new(PowerOfTwoChoices::new(seed)),
        StrategyKind::LatencyAware => Box::new(LatencyAware::new(seed, n_backends)),
    }
}

/// Whether backend `id` with load `b` may be picked.
fn eligible(id: BackendId, b: &BackendLoad, avoid: Option<BackendId>) -> bool {
    b.in_rotation && avoid != Some(id)
}

/// The weight of `b` as used by the strategies: its weight, at least 1.
fn weight(b: &BackendLoad) -> u64 {
    u64::from(b.weight.max(1))
}

/// Compares `in_flight / weight` of `a` and `b` exactly, without division.
fn cmp_load(a: &BackendLoad, b: &BackendLoad) -> Ordering {
    // u32 × u32 fits in u64.
    (u64::from(a.in_flight) * weight(b)).cmp(&(u64::from(b.in_flight) * weight(a)))
}

/// A random eligible backend other than `skip`, drawn with probability
/// proportional to `weigh` (such as [`weight`]); None if there is none.
///
/// Consumes one draw from `rng` (more only on Lemire rejection) when there
/// is a candidate, none otherwise.
fn weighted_draw(
    rng: &mut Rng,
    backends: &[BackendLoad],
    avoid: Option<BackendId>,
    skip: Option<BackendId>,
    weigh: fn(&BackendLoad) -> u64,
) -> Option<BackendId> {
    let candidates = || {
        backends
            .iter()
            .enumerate()
            .filter(move |&(id, b)| eligible(id, b, avoid) && skip != Some(id))
    };
    let total: u64 = candidates().map(|(_, b)| weigh(b)).sum();
    if total == 0 {
        return None;
    }
    let mut r = rng.below(total);
    for (id, b) in candidates() {
        let w = weigh(b);
        if r < w {
            return Some(id);
        }
        r -= w;
    }
    // `r < total` and the weights sum to `total`.
    unreachable!("weighted draw ran past the total weight")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Backends from a string: `u` in rotation, `d` down; weight 1, idle.
    pub(crate) fn loads(pattern: &str) -> Vec<BackendLoad> {
        pattern
            .chars()
            .map(|c| BackendLoad {
                in_rotation: c == 'u',
                in_flight: 0,
                weight: 1,
            })
            .collect()
    }

    /// All in rotation, idle, with these weights.
    pub(crate) fn weighted(weights: &[u32]) -> Vec<BackendLoad> {
        weights
            .iter()
            .map(|&weight| BackendLoad {
                in_rotation: true,
                in_flight: 0,
                weight,
            })
            .collect()
    }

    /// `pattern` as in [`loads`], with these in-flight counts.
    pub(crate) fn with_flight(pattern: &str, flight: &[u32]) -> Vec<BackendLoad> {
        let mut b = loads(pattern);
        for (b, &f) in b.iter_mut().zip(flight) {
            b.in_flight = f;
        }
        b
    }

    /// How many of `k` picks went to each backend (`now` = 0).
    pub(crate) fn counts(
        s: &mut dyn Strategy,
        b: &[BackendLoad],
        avoid: Option<BackendId>,
        k: usize,
    ) -> Vec<usize> {
        let mut c = vec![0; b.len()];
        for _ in 0..k {
            c[s.pick(b, avoid, Tick(0)).expect("a pick")] += 1;
        }
        c
    }

    /// `k` picks (`now` = 0).
    pub(crate) fn seq(
        s: &mut dyn Strategy,
        b: &[BackendLoad],
        avoid: Option<BackendId>,
        k: usize,
    ) -> Vec<Option<BackendId>> {
        (0..k).map(|_| s.pick(b, avoid, Tick(0))).collect()
    }

    /// Shares under a steady load: each of 500 rounds, backend i finishes
    /// up to `weights[i]` requests (its capacity), then six new requests
    /// arrive and are picked (`now` = 0).
    pub(crate) fn simulated_load(s: &mut dyn Strategy, weights: &[u32]) -> Vec<usize> {
        let mut b = weighted(weights);
        let mut c = vec![0; b.len()];
        for _ in 0..500 {
            for x in b.iter_mut() {
                x.in_flight = x.in_flight.saturating_sub(x.weight);
            }
            for _ in 0..6 {
                let id = s.pick(&b, None, Tick(0)).expect("a pick");
                b[id].in_flight += 1;
                c[id] += 1;
            }
        }
        c
    }

    /// Asserts each count is within `tol` of `expected`.
    pub(crate) fn assert_near(counts: &[usize], expected: &[usize], tol: usize) {
        assert_eq!(counts.len(), expected.len());
        for (&c, &e) in counts.iter().zip(expected) {
            assert!(c.abs_diff(e) <= tol, "{counts:?} vs {expected:?} ± {tol}");
        }
    }

    const ALL: [StrategyKind; 5] = [
        StrategyKind::RoundRobin,
        StrategyKind::LeastConnections,
        StrategyKind::Random,
        StrategyKind::PowerOfTwoChoices,
        StrategyKind::LatencyAware,
    ];

    #[test]
    fn from_kind_builds_each_strategy() {
        let b = loads("uuu");
        for kind in ALL {
            let mut s = from_kind(kind, 7, 3);
            assert!(!format!("{s:?}").is_empty());
            for _ in 0..10 {
                let id = s.pick(&b, Some(1), Tick(0)).unwrap();
                assert!(id == 0 || id == 2, "{kind:?} picked {id}");
            }
            assert_eq!(s.pick(&[], None, Tick(0)), None);
            assert_eq!(s.pick(&loads("ddd"), None, Tick(0)), None);
            assert_eq!(s.pick(&loads("dud"), Some(1), Tick(0)), None);
            assert_eq!(s.pick(&loads("dud"), None, Tick(0)), Some(1));
        }
    }

    #[test]
    fn every_strategy_tolerates_other_slice_lengths() {
        for kind in ALL {
            let mut s = from_kind(kind, 11, 2);
            for (t, n) in [5usize, 1, 0, 7, 2, 3].into_iter().enumerate() {
                let b = loads(&"u".repeat(n));
                let now = Tick(t as u64 * 100);
                for _ in 0..20 {
                    let pick = s.pick(&b, None, now);
                    assert_eq!(pick.is_some(), n > 0, "{kind:?}");
                    assert!(
                        pick.is_none_or(|id| id < n),
                        "{kind:?} picked {pick:?} of {n}"
                    );
                }
                // Observations for ids beyond any slice seen are harmless.
                s.observe(n + 3, Duration::from_millis(5), now);
            }
        }
    }

    #[test]
    fn every_strategy_never_picks_avoid_or_down() {
        for kind in ALL {
            let mut s = from_kind(kind, 5, 5);
            let mut b = loads("uduuu");
            b[3].weight = 4;
            b[4].in_flight = 2;
            s.observe(2, Duration::from_millis(3), Tick(0));
            for i in 0..500u64 {
                let id = s.pick(&b, Some(2), Tick(i)).unwrap();
                assert!(id != 1 && id != 2, "{kind:?} picked {id}");
            }
        }
    }

    #[test]
    fn from_kind_round_robin_and_least_connections_start_at_zero() {
        let b = loads("uuu");
        let mut rr = from_kind(StrategyKind::RoundRobin, 1, 3);
        let mut lc = from_kind(StrategyKind::LeastConnections, 1, 3);
        assert_eq!(seq(&mut *rr, &b, None, 4), [0, 1, 2, 0].map(Some));
        assert_eq!(seq(&mut *lc, &b, None, 4), [0, 1, 2, 0].map(Some));
    }

    #[test]
    fn weighted_draw_is_proportional_and_skips() {
        let mut rng = Rng::new(42);
        let b = weighted(&[1, 2, 3, 0]);
        let mut c = [0usize; 4];
        for _ in 0..7000 {
            c[weighted_draw(&mut rng, &b, None, None, weight).unwrap()] += 1;
        }
        // Weight 0 counts as 1: shares 1:2:3:1 of 7000.
        assert_near(&c, &[1000, 2000, 3000, 1000], 100);
        for _ in 0..100 {
            let id = weighted_draw(&mut rng, &b, Some(2), Some(1), weight).unwrap();
            assert!(id == 0 || id == 3);
        }
        assert_eq!(
            weighted_draw(&mut rng, &b[..1], None, Some(0), weight),
            None
        );
        assert_eq!(
            weighted_draw(&mut rng, &[], None, None, |_: &BackendLoad| 1),
            None
        );
        let mut c = [0usize; 4];
        for _ in 0..4000 {
            c[weighted_draw(&mut rng, &b, None, None, |_: &BackendLoad| 1).unwrap()] += 1;
        }
        assert_near(&c, &[1000, 1000, 1000, 1000], 100);
    }

    #[test]
    fn cmp_load_compares_in_flight_per_weight() {
        let l = |in_flight, weight| BackendLoad {
            in_rotation: true,
            in_flight,
            weight,
        };
        assert_eq!(cmp_load(&l(2, 1), &l(3, 2)), Ordering::Greater);
        assert_eq!(cmp_load(&l(2, 2), &l(3, 3)), Ordering::Equal);
        assert_eq!(cmp_load(&l(0, 1), &l(1, 9)), Ordering::Less);
        assert_eq!(
            cmp_load(&l(u32::MAX, u32::MAX), &l(u32::MAX, 0)),
            Ordering::Less
        );
    }
}
