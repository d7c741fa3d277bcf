//! Latency aware: power of two choices by peak-EWMA response time × load.

use std::time::Duration;

use super::rng::Rng;
use super::{BackendId, BackendLoad, Strategy, eligible, weight, weighted_draw};
use crate::time::Tick;

/// Decay time constant of the response-time estimate, in seconds.
/// Finagle and Linkerd default to 10 s; with a peak EWMA that long, one
/// jittery sample (a few ms of CPU queueing) inflates a fast backend's
/// estimate for seconds, and times its in-flight count it rivals a really
/// slow backend, which then gets traffic again. Measured with
/// `bench/balancing.sh` (+20 ms backend, paced): p99 17.7 ms at 10 s,
/// 12.5 ms at 1 s, 1.2 ms at 0.3 s. The cost: a slow backend is re-tried
/// about once per second (each estimate forgets in a few tenths of a
/// second), a larger share when traffic is light.
const TAU_SECS: f64 = 0.3;

/// Cost assumed when no backend in rotation has been observed yet, in
/// seconds. Its value is irrelevant: it only ever competes with itself.
const UNKNOWN_COST: f64 = 0.001;

/// Floor of a cost in a score, in seconds (1 µs), so that in-flight counts
/// still separate backends whose estimates are zero or decayed to nearly
/// zero.
const MIN_COST: f64 = 0.000_001;

/// Peak-EWMA response time of one backend.
#[derive(Debug, Clone, Copy, Default)]
struct PeakEwma {
    /// The estimate at `stamp`, in seconds.
    cost: f64,
    /// When `cost` was last updated.
    stamp: Tick,
    /// Whether any response time has been observed.
    observed: bool,
}

impl PeakEwma {
    /// The estimate at `now`: it decays toward zero while nothing is
    /// observed (as Finagle reads it, by observing a zero).
    fn at(&self, now: Tick) -> f64 {
        self.cost * decay(self.stamp.until(now))
    }

    /// Folds in a response time `rtt` observed at `now`.
    fn observe(&mut self, rtt: f64, now: Tick) {
        let w = decay(self.stamp.until(now));
        let current = self.cost * w;
        self.cost = if rtt > current {
            // Peak: a slower response counts in full, at once.
            rtt
        } else {
            // `cost × w + rtt × (1 - w)`: the older the estimate, the more
            // the new sample counts.
            current + rtt * (1.0 - w)
        };
        // A clock that went backwards counts as no time passing.
        self.stamp = self.stamp.max(now);
        self.observed = true;
    }
}

/// The weight `exp(-elapsed / tau)` of an estimate `elapsed` old.
fn decay(elapsed: Duration) -> f64 {
    (-elapsed.as_secs_f64() / TAU_SECS).exp()
}

/// Power of two choices scored by peak-EWMA response time, as Finagle's and
/// Linkerd's `PeakEwma` balancers do.
///
/// Each backend keeps a response-time estimate fed by [`Strategy::observe`]:
/// a sample above the current estimate replaces it at once (peak), a lower
/// one is blended in as `ewma × w + rtt × (1 - w)` with
/// `w = exp(-elapsed / TAU_SECS)` (0.3 s), `elapsed` being the time since the last
/// sample. Between samples the estimate decays toward zero with the same
/// time constant, so a backend that stopped getting traffic because it was
/// slow is eventually tried again.
///
/// A pick draws two distinct eligible backends at random, in proportion to
/// their weights, and takes the one with the lower score
/// `ewma × (in_flight / weight + 1)`; ties go to the first candidate. With
/// a single eligible backend it is picked without a comparison.
///
/// Weight enters twice. Through the draw, a heavier backend is a candidate
/// more often, so idle, equally fast backends share traffic in proportion
/// to their weights. Through the in-flight count, a heavier backend is
/// meant to hold more requests at once: equally fast backends under load
/// hold (and so serve) requests in proportion to their weights. With only
/// two backends both are always drawn, and this is all the weights do.
/// Dividing the whole score by the weight instead would starve the
/// lightest backend whenever nothing is in flight (it would lose every
/// comparison), and its estimate could then never be refreshed.
///
/// A backend never observed is scored with the mean estimate of the
/// observed backends in rotation: neutral, so a new or restarted backend is
/// neither starved (it beats every slower-than-average backend and wins on
/// in-flight count against equal ones) nor flooded (a zero cost would win
/// every comparison until its first response arrives). With no estimate at
/// all every backend costs the same, and the strategy is power of two
/// choices on `(in_flight + 1) / weight`.
///
/// Per-backend state is a vector sized at construction; it grows only in
/// [`Strategy::observe`] for an id beyond it, and a pick treats backends
/// beyond it as never observed, so picks never allocate.
#[derive(Debug, Clone)]
pub struct LatencyAware {
    rng: Rng,
    /// Estimates by [`BackendId`].
    ewma: Vec<PeakEwma>,
}

impl LatencyAware {
    /// A latency-aware strategy for `n_backends` backends whose generator is
    /// seeded with `seed`.
    pub fn new(seed: u64, n_backends: usize) -> LatencyAware {
        LatencyAware {
            rng: Rng::new(seed),
            ewma: vec![PeakEwma::default(); n_backends],
        }
    }

    /// The response-time estimate of `backend` at `now`, decayed; None if
    /// it was never observed.
    pub fn cost(&self, backend: BackendId, now: Tick) -> Option<Duration> {
        let e = self.ewma.get(backend).filter(|e| e.observed)?;
        Duration::try_from_secs_f64(e.at(now)).ok()
    }

    /// The estimate used to score backend `id` at `now`, in seconds.
    fn score_cost(&self, id: BackendId, backends: &[BackendLoad], now: Tick) -> f64 {
        match self.ewma.get(id) {
            Some(e) if e.observed => e.at(now),
            _ => self.mean_cost(backends, now),
        }
    }

    /// The mean estimate of the observed backends in rotation at `now`, or
    /// [`UNKNOWN_COST`] if there are none.
    fn mean_cost(&self, backends: &[BackendLoad], now: Tick) -> f64 {
        let (sum, count) = backends
            .iter()
            .zip(&self.ewma)
            .filter(|(b, e)| b.in_rotation && e.observed)
            .fold((0.0, 0u32), |(sum, count), (_, e)| {
                (sum + e.at(now), count + 1)
            });
        if count == 0 {
            UNKNOWN_COST
        } else {
            sum / f64::from(count)
        }
    }

    /// The score of backend `id`: lower is better.
    fn score(&self, id: BackendId, backends: &[BackendLoad], now: Tick) -> f64 {
        let b = &backends[id];
        let cost = self.score_cost(id, backends, now).max(MIN_COST);
        // Weights are u32, exact in f64.
        cost * (f64::from(b.in_flight) / weight(b) as f64 + 1.0)
    }
}

impl Strategy for LatencyAware {
    fn pick(
        &mut self,
        backends: &[BackendLoad],
        avoid: Option<BackendId>,
        now: Tick,
    ) -> Option<BackendId> {
        let a = weighted_draw(&mut self.rng, backends, avoid, None, weight)?;
        let Some(b) = weighted_draw(&mut self.rng, backends, avoid, Some(a), weight) else {
            return Some(a);
        };
        debug_assert!(eligible(a, &backends[a], avoid) && eligible(b, &backends[b], avoid));
        if self.score(b, backends, now) < self.score(a, backends, now) {
            Some(b)
        } else {
            Some(a)
        }
    }

    fn observe(&mut self, backend: BackendId, rtt: Duration, now: Tick) {
        if backend >= self.ewma.len() {
            self.ewma.resize(backend + 1, PeakEwma::default());
        }
        self.ewma[backend].observe(rtt.as_secs_f64(), now);
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{
        assert_near, counts, loads, seq, simulated_load, weighted, with_flight,
    };
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// The tests were written for a 10 s decay constant: `secs(n)` is the
    /// instant n/10 of a decay constant after the start, whatever
    /// [`TAU_SECS`] is, so the expected values (e^-0.1, e^-1, e^-6) hold.
    fn secs(n: u64) -> Tick {
        scaled(n * 1000)
    }

    /// `ms` milliseconds on the 10 s time scale of the tests.
    fn scaled(ms: u64) -> Tick {
        Tick(ms * (TAU_SECS * 1000.0) as u64 / 10_000)
    }

    /// Asserts `d` is within 1 µs of `expected_ms` milliseconds.
    fn assert_ms(d: Option<Duration>, expected_ms: f64) {
        let got = d.expect("observed").as_secs_f64() * 1000.0;
        assert!(
            (got - expected_ms).abs() < 0.001,
            "{got} ms vs {expected_ms} ms"
        );
    }

    /// Backend 1 slow (100 ms), 0 and 2 fast (1 ms), observed at `now`.
    fn slow_middle(now: Tick) -> LatencyAware {
        let mut s = LatencyAware::new(0x5EED, 3);
        s.observe(0, ms(1), now);
        s.observe(1, ms(100), now);
        s.observe(2, ms(1), now);
        s
    }

    /// Picks `k` at `now` in bursts of `burst` concurrent requests: each
    /// pick adds one in flight, and after each burst all of them finish.
    fn bursts(
        s: &mut LatencyAware,
        b: &mut [BackendLoad],
        now: Tick,
        burst: usize,
        k: usize,
    ) -> Vec<usize> {
        let mut c = vec![0; b.len()];
        for i in 0..k {
            if i % burst == 0 {
                b.iter_mut().for_each(|b| b.in_flight = 0);
            }
            let id = s.pick(b, None, now).unwrap();
            b[id].in_flight += 1;
            c[id] += 1;
        }
        c
    }

    #[test]
    fn exact_sequence_for_a_seed() {
        let mut s = slow_middle(Tick(0));
        assert_eq!(
            seq(&mut s, &loads("uuu"), None, 12),
            [0, 0, 0, 0, 2, 0, 0, 2, 2, 0, 2, 2].map(Some)
        );
        // Nothing observed: power of two choices on in-flight.
        let mut s = LatencyAware::new(0x5EED, 4);
        assert_eq!(
            seq(&mut s, &with_flight("uuuu", &[3, 1, 0, 2]), None, 12),
            [1, 2, 2, 1, 3, 2, 1, 2, 3, 1, 1, 1].map(Some)
        );
    }

    #[test]
    fn peak_then_ewma() {
        let mut s = LatencyAware::new(1, 1);
        assert_eq!(s.cost(0, Tick(0)), None);
        s.observe(0, ms(1), Tick(0));
        assert_ms(s.cost(0, Tick(0)), 1.0);
        // A slower sample counts in full at once.
        s.observe(0, ms(100), Tick(0));
        assert_ms(s.cost(0, Tick(0)), 100.0);
        // A faster one a second later is blended in with w = e^-0.1.
        s.observe(0, ms(1), secs(1));
        let w = (-0.1f64).exp();
        assert_ms(s.cost(0, secs(1)), 100.0 * w + 1.0 * (1.0 - w));
        // A faster one at the same instant changes nothing (w = 1).
        s.observe(0, ms(1), secs(1));
        assert_ms(s.cost(0, secs(1)), 100.0 * w + 1.0 * (1.0 - w));
        // Unobserved, the estimate decays toward zero: one tau, 1/e.
        let at_1 = 100.0 * w + 1.0 - w;
        assert_ms(s.cost(0, secs(11)), at_1 * (-1.0f64).exp());
        // The peak test is against the decayed estimate.
        s.observe(0, ms(40), secs(11));
        assert_ms(s.cost(0, secs(11)), 40.0);
    }

    #[test]
    fn slow_backend_is_avoided() {
        let mut s = slow_middle(Tick(0));
        // Idle: the slow backend loses every comparison.
        let c = counts(&mut s, &loads("uuu"), None, 3000);
        assert_eq!(c[1], 0, "{c:?}");
        // Under load that never drains it gets a request only once the fast
        // ones have ~100 times as many in flight.
        let mut b = loads("uuu");
        let c = bursts(&mut s, &mut b, secs(1), 3000, 3000);
        assert!(c[1] < 3000 / 20, "{c:?}");
        assert!(c[1] > 0, "{c:?}");
        // Bursts of 30 concurrent requests never reach that.
        let c = bursts(&mut s, &mut b, secs(1), 30, 3000);
        assert_eq!(c[1], 0, "{c:?}");
    }

    #[test]
    fn fast_samples_bring_a_recovered_backend_back() {
        let mut s = slow_middle(Tick(0));
        let mut b = loads("uuu");
        // It recovers: from now on every backend answers in 1 ms.
        for t in 1..=10 {
            for id in 0..3 {
                s.observe(id, ms(1), secs(t));
            }
        }
        // After 10 s the slow peak still weighs 100 × e^-1 ≈ 37 ms.
        let c = bursts(&mut s, &mut b, secs(10), 30, 3000);
        assert!(c[1] < 3000 / 20, "{c:?}");
        for t in 11..=60 {
            for id in 0..3 {
                s.observe(id, ms(1), secs(t));
            }
        }
        // After 60 s, 100 × e^-6 + 1 ≈ 1.25 ms: close to the others.
        assert_ms(
            s.cost(1, secs(60)),
            100.0 * (-6.0f64).exp() + 1.0 - (-6.0f64).exp(),
        );
        let c = bursts(&mut s, &mut b, secs(60), 30, 3000);
        assert!(c[1] > 3000 / 5, "{c:?}");
    }

    #[test]
    fn time_brings_an_unpicked_backend_back() {
        // The slow backend gets no traffic, so no samples; the fast ones
        // keep answering in 1 ms.
        let mut s = slow_middle(Tick(0));
        let mut b = loads("uuu");
        let sample_until = |s: &mut LatencyAware, from: u64, to: u64| {
            for t in (from..=to).step_by(100) {
                s.observe(0, ms(1), scaled(t));
                s.observe(2, ms(1), scaled(t));
            }
        };
        sample_until(&mut s, 100, 10_000);
        // At 10 s it is still at 100 × e^-1 ≈ 37 ms: avoided.
        assert_ms(s.cost(1, secs(10)), 100.0 * (-1.0f64).exp());
        let c = bursts(&mut s, &mut b, secs(10), 30, 3000);
        assert_eq!(c[1], 0, "{c:?}");
        sample_until(&mut s, 10_100, 60_000);
        // At 60 s its estimate has decayed to ~0.25 ms, under the others'
        // 1 ms: idle, it wins every comparison it is drawn into (2 of 3
        // pairs).
        assert_ms(s.cost(1, secs(60)), 100.0 * (-6.0f64).exp());
        let mut c = [0; 3];
        for _ in 0..3000 {
            c[s.pick(&b, None, secs(60)).unwrap()] += 1;
        }
        assert_near(&c, &[500, 2000, 500], 90);
        // Under load it shares again, with more for its lower cost.
        let c = bursts(&mut s, &mut b, secs(60), 30, 3000);
        assert!(c[1] > 3000 / 3, "{c:?}");
    }

    #[test]
    fn unobserved_backend_gets_the_mean_cost() {
        let mut s = LatencyAware::new(7, 4);
        s.observe(0, ms(1), Tick(0));
        s.observe(1, ms(2), Tick(0));
        s.observe(2, ms(3), Tick(0));
        // 3 costs 2 ms: it beats 2, ties with 1 (first drawn wins), loses to
        // 0. Of the 6 pairs: {3,2} → 3, {3,1} → half each.
        let c = counts(&mut s, &loads("uuuu"), None, 3000);
        assert_near(&c, &[1500, 750, 0, 750], 100);
        // A backend beyond the state is unobserved too, and a down
        // backend's estimate is left out of the mean: 4 costs 1.5 ms, the
        // mean of 0 and 1. Pairs: {0,1} → 0, {0,4} → 0, {1,4} → 4.
        let c = counts(&mut s, &loads("uuddu"), None, 3000);
        assert_near(&c, &[2000, 0, 0, 0, 1000], 90);
        assert_eq!(c[1] + c[2] + c[3], 0, "{c:?}");
    }

    #[test]
    fn nothing_observed_is_power_of_two_choices() {
        let mut s = LatencyAware::new(9, 4);
        let c = counts(&mut s, &with_flight("uuuu", &[3, 1, 0, 2]), None, 3000);
        assert_near(&c, &[0, 1000, 1500, 500], 90);
    }

    #[test]
    fn in_flight_multiplies_the_cost() {
        let mut s = LatencyAware::new(9, 2);
        s.observe(0, ms(10), Tick(0));
        s.observe(1, ms(30), Tick(0));
        // 10 × (2 + 1) = 30 < 30 × (0 + 1) is false: a tie, first drawn.
        // 10 × (3 + 1) = 40 > 30: backend 1.
        assert_eq!(
            seq(&mut s, &with_flight("uu", &[3, 0]), None, 20),
            [Some(1); 20]
        );
        assert_eq!(
            seq(&mut s, &with_flight("uu", &[1, 0]), None, 20),
            [Some(0); 20]
        );
        // Zero estimates: the floor keeps in-flight counts meaningful.
        let mut s = LatencyAware::new(9, 2);
        s.observe(0, Duration::ZERO, Tick(0));
        s.observe(1, Duration::ZERO, Tick(0));
        assert_eq!(
            seq(&mut s, &with_flight("uu", &[0, 1]), None, 20),
            [Some(0); 20]
        );
    }

    #[test]
    fn weight_sets_the_draw() {
        let mut s = LatencyAware::new(0x5EED, 3);
        for id in 0..3 {
            s.observe(id, ms(5), Tick(0));
        }
        // Idle and equally fast: ties go to the first candidate, drawn by
        // weight, so shares follow the weights and nobody starves.
        let c = counts(&mut s, &weighted(&[1, 2, 3]), None, 3000);
        assert_near(&c, &[500, 1000, 1500], 90);
        // Under load every backend still takes a share, the heavier more.
        let c = simulated_load(&mut s, &[1, 2, 3]);
        assert!(c[0] > 300 && c[0] < c[1] && c[1] < c[2], "{c:?}");
    }

    /// Two backends are both drawn on every pick, so under load the
    /// weights act through the score alone. Equally fast backends (each
    /// request takes as long, so a backend serves in proportion to what it
    /// holds) must share as 1:3.
    #[test]
    fn weights_hold_under_load_with_two_backends() {
        let mut s = LatencyAware::new(0x5EED, 2);
        for id in 0..2 {
            s.observe(id, ms(5), Tick(0));
        }
        let mut b = weighted(&[1, 3]);
        let mut c = [0usize; 2];
        for _ in 0..2000 {
            for x in b.iter_mut() {
                x.in_flight /= 2;
            }
            for _ in 0..8 {
                let id = s.pick(&b, None, Tick(0)).expect("a pick");
                b[id].in_flight += 1;
                c[id] += 1;
            }
        }
        let share = c[1] as f64 / (c[0] + c[1]) as f64;
        assert!((0.68..0.82).contains(&share), "{c:?}");
    }

    #[test]
    fn skips_backends_out_of_rotation() {
        let mut s = slow_middle(Tick(0));
        // Only the slow backend is up.
        assert_eq!(seq(&mut s, &loads("dud"), None, 20), [Some(1); 20]);
        let c = counts(&mut s, &loads("duu"), None, 3000);
        assert_eq!(c, [0, 0, 3000]);
    }

    #[test]
    fn empty_or_all_down_is_none() {
        let mut s = slow_middle(Tick(0));
        assert_eq!(s.pick(&[], None, Tick(0)), None);
        assert_eq!(s.pick(&loads("ddd"), None, Tick(0)), None);
        assert_eq!(s.pick(&loads("udd"), None, Tick(0)), Some(0));
    }

    #[test]
    fn avoid_is_honored() {
        let mut s = slow_middle(Tick(0));
        // Retrying away from a fast backend: the other fast one, always.
        assert_eq!(seq(&mut s, &loads("uuu"), Some(0), 50), [Some(2); 50]);
        // Only the slow one is left: it is still used.
        assert_eq!(seq(&mut s, &loads("uud"), Some(0), 20), [Some(1); 20]);
        assert_eq!(s.pick(&loads("udd"), Some(0), Tick(0)), None);
    }

    #[test]
    fn state_grows_only_in_observe_and_clocks_may_stall() {
        let mut s = LatencyAware::new(1, 0);
        assert_eq!(
            s.pick(&loads("uu"), None, Tick(5)).map(|id| id < 2),
            Some(true)
        );
        s.observe(4, ms(3), Tick(10));
        assert_ms(s.cost(4, Tick(10)), 3.0);
        assert_eq!(s.cost(3, Tick(10)), None);
        assert_eq!(s.cost(99, Tick(10)), None);
        // A sample "before" the last one counts as simultaneous.
        s.observe(4, ms(1), Tick(0));
        assert_ms(s.cost(4, Tick(0)), 3.0);
        assert_ms(s.cost(4, Tick(5)), 3.0);
    }
}
