//! Random: a backend in rotation drawn with probability proportional to its
//! weight.

use super::rng::Rng;
use super::{BackendId, BackendLoad, Strategy, weight, weighted_draw};
use crate::time::Tick;

/// Picks at random among the eligible backends, each with probability
/// proportional to its weight (uniform when all weights are equal), from a
/// seeded [`Rng`], so a given seed always gives the same sequence of picks.
///
/// One pick draws `r` uniformly below the total eligible weight and walks
/// the eligible backends in configured order, subtracting weights until `r`
/// falls inside one.
#[derive(Debug, Clone)]
pub struct Random {
    rng: Rng,
}

impl Random {
    /// A random strategy whose generator is seeded with `seed`.
    pub fn new(seed: u64) -> Random {
        Random {
            rng: Rng::new(seed),
        }
    }
}

impl Strategy for Random {
    fn pick(
        &mut self,
        backends: &[BackendLoad],
        avoid: Option<BackendId>,
        _now: Tick,
    ) -> Option<BackendId> {
        weighted_draw(&mut self.rng, backends, avoid, None, weight)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{assert_near, counts, loads, seq, weighted};
    use super::*;

    #[test]
    fn exact_sequence_for_a_seed() {
        let mut s = Random::new(0x5EED);
        assert_eq!(
            seq(&mut s, &loads("uuu"), None, 12),
            [0, 0, 1, 1, 0, 1, 0, 0, 2, 0, 1, 1].map(Some)
        );
        let mut s = Random::new(0x5EED);
        assert_eq!(
            seq(&mut s, &weighted(&[1, 2, 3]), None, 12),
            [0, 1, 1, 1, 0, 1, 0, 0, 2, 1, 1, 1].map(Some)
        );
    }

    #[test]
    fn roughly_even_over_3000_picks() {
        let mut s = Random::new(0x5EED);
        let c = counts(&mut s, &loads("uuu"), None, 3000);
        assert_near(&c, &[1000, 1000, 1000], 100);
    }

    #[test]
    fn shares_match_weights() {
        let mut s = Random::new(0x5EED);
        let c = counts(&mut s, &weighted(&[1, 2, 3]), None, 3000);
        assert_near(&c, &[500, 1000, 1500], 75);
        // Weights among the backends left after avoid and down ones.
        let mut b = weighted(&[1, 2, 3, 4]);
        b[0].in_rotation = false;
        let c = counts(&mut s, &b, Some(2), 3000);
        assert_near(&c, &[0, 1000, 0, 2000], 75);
        assert_eq!(c[0] + c[2], 0);
    }

    #[test]
    fn same_seed_same_picks() {
        let b = loads("uuuuu");
        let mut a = Random::new(3);
        let mut b2 = Random::new(3);
        let sa = seq(&mut a, &b, None, 50);
        assert_eq!(sa, seq(&mut b2, &b, None, 50));
        let mut c = Random::new(4);
        assert_ne!(sa, seq(&mut c, &b, None, 50));
    }

    #[test]
    fn skips_backends_out_of_rotation() {
        let mut s = Random::new(1);
        let c = counts(&mut s, &loads("udud"), None, 3000);
        assert_eq!(c[1] + c[3], 0, "{c:?}");
        assert!((1350..=1650).contains(&c[0]), "{c:?}");
        assert_eq!(seq(&mut s, &loads("ddud"), None, 20), [Some(2); 20]);
    }

    #[test]
    fn empty_or_all_down_is_none() {
        let mut s = Random::new(1);
        assert_eq!(s.pick(&[], None, Tick(0)), None);
        assert_eq!(s.pick(&loads("ddd"), None, Tick(0)), None);
    }

    #[test]
    fn avoid_is_honored() {
        let mut s = Random::new(2);
        let c = counts(&mut s, &loads("uuu"), Some(1), 3000);
        assert_eq!(c[1], 0, "{c:?}");
        assert!((1350..=1650).contains(&c[0]), "{c:?}");
        assert_eq!(s.pick(&loads("udd"), Some(0), Tick(0)), None);
        assert_eq!(s.pick(&loads("uud"), Some(0), Tick(0)), Some(1));
    }
}
