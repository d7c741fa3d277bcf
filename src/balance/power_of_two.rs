//! Power of two choices: two random backends, the less loaded one wins.

use std::cmp::Ordering;

use super::rng::Rng;
use super::{BackendId, BackendLoad, Strategy, cmp_load, weight, weighted_draw};
use crate::time::Tick;

/// Draws two distinct eligible backends at random and picks the one with
/// fewer requests in flight per unit of weight.
///
/// The first candidate is drawn with probability proportional to weight
/// among the eligible backends, the second the same way among the others.
/// Loads are compared exactly as `in_flight_a × weight_b` against
/// `in_flight_b × weight_a`. Ties go to the first candidate, itself a
/// weighted random draw, so with equal loads the shares follow the weights.
/// With a single eligible backend it is picked without a comparison.
///
/// Compared with least connections, two random choices avoid sending every
/// new request to the same momentarily idlest backend (herding) while still
/// keeping loads close (Mitzenmacher, "The Power of Two Choices").
#[derive(Debug, Clone)]
pub struct PowerOfTwoChoices {
    rng: Rng,
}

impl PowerOfTwoChoices {
    /// A power-of-two-choices strategy whose generator is seeded with `seed`.
    pub fn new(seed: u64) -> PowerOfTwoChoices {
        PowerOfTwoChoices {
            rng: Rng::new(seed),
        }
    }
}

impl Strategy for PowerOfTwoChoices {
    fn pick(
        &mut self,
        backends: &[BackendLoad],
        avoid: Option<BackendId>,
        _now: Tick,
    ) -> Option<BackendId> {
        let a = weighted_draw(&mut self.rng, backends, avoid, None, weight)?;
        let Some(b) = weighted_draw(&mut self.rng, backends, avoid, Some(a), weight) else {
            return Some(a);
        };
        match cmp_load(&backends[b], &backends[a]) {
            Ordering::Less => Some(b),
            Ordering::Equal | Ordering::Greater => Some(a),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{
        assert_near, counts, loads, seq, simulated_load, weighted, with_flight,
    };
    use super::*;

    #[test]
    fn exact_sequence_for_a_seed() {
        let mut s = PowerOfTwoChoices::new(0x5EED);
        assert_eq!(
            seq(&mut s, &loads("uuu"), None, 12),
            [0, 1, 0, 0, 2, 1, 0, 2, 2, 0, 2, 2].map(Some)
        );
        let mut s = PowerOfTwoChoices::new(0x5EED);
        assert_eq!(
            seq(&mut s, &with_flight("uuuu", &[3, 1, 0, 2]), None, 12),
            [1, 2, 2, 1, 3, 2, 1, 2, 3, 1, 1, 1].map(Some)
        );
    }

    #[test]
    fn prefers_fewer_in_flight() {
        let mut s = PowerOfTwoChoices::new(9);
        // With two backends the two candidates are always both.
        assert_eq!(
            seq(&mut s, &with_flight("uu", &[3, 1]), None, 50),
            [Some(1); 50]
        );
        assert_eq!(
            seq(&mut s, &with_flight("uu", &[0, 1]), None, 50),
            [Some(0); 50]
        );
        // The most loaded backend always loses; the idlest wins whenever it
        // is drawn, which is half the time with four backends (3 of 6 pairs).
        let c = counts(&mut s, &with_flight("uuuu", &[3, 1, 0, 2]), None, 3000);
        assert_eq!(c[0], 0, "{c:?}");
        // Pairs: {2,x} ×3 → 2; {1,0}, {1,3} → 1; {3,0} → 3.
        assert_near(&c, &[0, 1000, 1500, 500], 90);
    }

    #[test]
    fn load_is_per_unit_of_weight() {
        let mut s = PowerOfTwoChoices::new(9);
        // 4/2 < 3/1; 6/2 = 3/1 ties and goes to the first drawn.
        let mut b = weighted(&[1, 2]);
        b[0].in_flight = 3;
        b[1].in_flight = 4;
        assert_eq!(seq(&mut s, &b, None, 20), [Some(1); 20]);
        b[1].in_flight = 6;
        let c = counts(&mut s, &b, None, 3000);
        // The first draw is weighted: 1/3 and 2/3.
        assert_near(&c, &[1000, 2000], 90);
    }

    #[test]
    fn shares_match_weights_with_equal_in_flight() {
        let mut s = PowerOfTwoChoices::new(0x5EED);
        let c = counts(&mut s, &weighted(&[1, 2, 3]), None, 3000);
        assert_near(&c, &[500, 1000, 1500], 75);
    }

    #[test]
    fn simulated_load_shares_match_weights() {
        // Each round backend i finishes up to `weight_i` requests (its
        // capacity), then six new requests arrive.
        let mut s = PowerOfTwoChoices::new(0x5EED);
        let c = simulated_load(&mut s, &[1, 2, 3]);
        assert_near(&c, &[500, 1000, 1500], 30);
    }

    #[test]
    fn same_seed_same_picks() {
        let b = with_flight("uuuuu", &[1, 0, 1, 2, 0]);
        let mut a = PowerOfTwoChoices::new(3);
        let mut a2 = PowerOfTwoChoices::new(3);
        let sa = seq(&mut a, &b, None, 50);
        assert_eq!(sa, seq(&mut a2, &b, None, 50));
        let mut c = PowerOfTwoChoices::new(4);
        assert_ne!(sa, seq(&mut c, &b, None, 50));
    }

    #[test]
    fn skips_backends_out_of_rotation() {
        let mut s = PowerOfTwoChoices::new(1);
        // The idle backends are down.
        let c = counts(&mut s, &with_flight("dudu", &[0, 5, 0, 7]), None, 3000);
        assert_eq!(c, [0, 3000, 0, 0]);
        assert_eq!(seq(&mut s, &loads("ddud"), None, 20), [Some(2); 20]);
    }

    #[test]
    fn empty_or_all_down_is_none() {
        let mut s = PowerOfTwoChoices::new(1);
        assert_eq!(s.pick(&[], None, Tick(0)), None);
        assert_eq!(s.pick(&loads("ddd"), None, Tick(0)), None);
        assert_eq!(s.pick(&loads("dud"), None, Tick(0)), Some(1));
    }

    #[test]
    fn avoid_is_honored() {
        let mut s = PowerOfTwoChoices::new(2);
        // The idlest backend is the one being retried away from.
        let c = counts(&mut s, &with_flight("uuu", &[4, 0, 4]), Some(1), 3000);
        assert_eq!(c[1], 0, "{c:?}");
        assert_near(&c, &[1500, 0, 1500], 100);
        assert_eq!(s.pick(&loads("udd"), Some(0), Tick(0)), None);
        assert_eq!(
            s.pick(&with_flight("uud", &[9, 0, 0]), Some(1), Tick(0)),
            Some(0)
        );
    }
}
