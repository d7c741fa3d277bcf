//! Random: a uniformly chosen backend in rotation.

use super::rng::Rng;
use super::{BackendId, BackendLoad, Strategy, eligible};

/// Picks uniformly at random among the eligible backends, from a seeded
/// [`Rng`], so a given seed always gives the same sequence of picks.
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
    fn pick(&mut self, backends: &[BackendLoad], avoid: Option<BackendId>) -> Option<BackendId> {
        let count = backends
            .iter()
            .enumerate()
            .filter(|&(id, b)| eligible(id, b, avoid))
            .count();
        if count == 0 {
            return None;
        }
        // The `nth` eligible backend; `nth < count`, so the cast is lossless.
        let nth = self.rng.below(count as u64) as usize;
        backends
            .iter()
            .enumerate()
            .filter(|&(id, b)| eligible(id, b, avoid))
            .nth(nth)
            .map(|(id, _)| id)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::loads;
    use super::*;

    fn counts(s: &mut Random, b: &[BackendLoad], avoid: Option<BackendId>, k: usize) -> Vec<usize> {
        let mut c = vec![0; b.len()];
        for _ in 0..k {
            c[s.pick(b, avoid).unwrap()] += 1;
        }
        c
    }

    #[test]
    fn roughly_even_over_3000_picks() {
        let mut s = Random::new(0x5EED);
        let c = counts(&mut s, &loads("uuu"), None, 3000);
        for &n in &c {
            assert!((900..=1100).contains(&n), "{c:?}");
        }
    }

    #[test]
    fn same_seed_same_picks() {
        let b = loads("uuuuu");
        let mut a = Random::new(3);
        let mut b2 = Random::new(3);
        let sa: Vec<_> = (0..50).map(|_| a.pick(&b, None)).collect();
        let sb: Vec<_> = (0..50).map(|_| b2.pick(&b, None)).collect();
        assert_eq!(sa, sb);
        let mut c = Random::new(4);
        let sc: Vec<_> = (0..50).map(|_| c.pick(&b, None)).collect();
        assert_ne!(sa, sc);
    }

    #[test]
    fn skips_backends_out_of_rotation() {
        let mut s = Random::new(1);
        let c = counts(&mut s, &loads("udud"), None, 3000);
        assert_eq!(c[1] + c[3], 0, "{c:?}");
        assert!((1350..=1650).contains(&c[0]), "{c:?}");
        for _ in 0..20 {
            assert_eq!(s.pick(&loads("ddud"), None), Some(2));
        }
    }

    #[test]
    fn empty_or_all_down_is_none() {
        let mut s = Random::new(1);
        assert_eq!(s.pick(&[], None), None);
        assert_eq!(s.pick(&loads("ddd"), None), None);
    }

    #[test]
    fn avoid_is_honored() {
        let mut s = Random::new(2);
        let c = counts(&mut s, &loads("uuu"), Some(1), 3000);
        assert_eq!(c[1], 0, "{c:?}");
        assert!((1350..=1650).contains(&c[0]), "{c:?}");
        assert_eq!(s.pick(&loads("udd"), Some(0)), None);
        assert_eq!(s.pick(&loads("uud"), Some(0)), Some(1));
    }
}
