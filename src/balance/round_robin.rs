//! Round robin: each backend in rotation in turn, in configured order.

use super::{BackendId, BackendLoad, Strategy, eligible};

/// Rotates through the backends in rotation in configured order.
///
/// The cursor is the backend after the last pick; a pick takes the first
/// eligible backend at or after it, wrapping around. Backends out of rotation
/// are skipped, so with `[up, down, up]` the picks are `0, 2, 0, 2, ...`, and
/// the cursor survives backends entering and leaving rotation.
#[derive(Debug, Clone, Default)]
pub struct RoundRobin {
    /// Where the next search starts.
    next: usize,
}

impl RoundRobin {
    /// A round robin starting at backend 0.
    pub fn new() -> RoundRobin {
        RoundRobin { next: 0 }
    }
}

impl Strategy for RoundRobin {
    fn pick(&mut self, backends: &[BackendLoad], avoid: Option<BackendId>) -> Option<BackendId> {
        let n = backends.len();
        let start = self.next % n.max(1);
        let id = (0..n)
            .map(|i| (start + i) % n)
            .find(|&id| eligible(id, &backends[id], avoid))?;
        self.next = (id + 1) % n;
        Some(id)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::loads;
    use super::*;

    fn picks(
        s: &mut RoundRobin,
        b: &[BackendLoad],
        avoid: Option<BackendId>,
        k: usize,
    ) -> Vec<Option<BackendId>> {
        (0..k).map(|_| s.pick(b, avoid)).collect()
    }

    #[test]
    fn rotates_in_configured_order() {
        let mut s = RoundRobin::new();
        let b = loads("uuu");
        assert_eq!(picks(&mut s, &b, None, 7), [0, 1, 2, 0, 1, 2, 0].map(Some));
    }

    #[test]
    fn skips_backends_out_of_rotation() {
        let mut s = RoundRobin::new();
        assert_eq!(
            picks(&mut s, &loads("udu"), None, 5),
            [0, 2, 0, 2, 0].map(Some)
        );
        let mut s = RoundRobin::new();
        assert_eq!(picks(&mut s, &loads("ddud"), None, 3), [2, 2, 2].map(Some));
    }

    #[test]
    fn cursor_survives_changes_in_the_set() {
        let mut s = RoundRobin::new();
        let all = loads("uuuu");
        assert_eq!(picks(&mut s, &all, None, 2), [0, 1].map(Some));
        // 2 leaves rotation: the turn passes to 3, not back to 0.
        assert_eq!(picks(&mut s, &loads("uudu"), None, 3), [3, 0, 1].map(Some));
        // 2 is back and it is its turn.
        assert_eq!(picks(&mut s, &all, None, 3), [2, 3, 0].map(Some));
    }

    #[test]
    fn empty_or_all_down_is_none() {
        let mut s = RoundRobin::new();
        assert_eq!(s.pick(&[], None), None);
        assert_eq!(s.pick(&loads("ddd"), None), None);
        // And it recovers afterwards.
        assert_eq!(s.pick(&loads("dud"), None), Some(1));
    }

    #[test]
    fn avoid_is_honored() {
        let mut s = RoundRobin::new();
        let b = loads("uuu");
        assert_eq!(s.pick(&b, Some(0)), Some(1));
        assert_eq!(s.pick(&b, Some(2)), Some(0));
        assert_eq!(s.pick(&b, Some(1)), Some(2));
        assert_eq!(s.pick(&b, None), Some(0));
        assert_eq!(s.pick(&loads("udd"), Some(0)), None);
        assert_eq!(s.pick(&loads("u"), Some(0)), None);
        // Avoiding a backend that is out of range or down changes nothing.
        assert_eq!(s.pick(&loads("udu"), Some(9)), Some(2));
        assert_eq!(s.pick(&loads("udu"), Some(1)), Some(0));
    }

    #[test]
    fn shrinking_slice_does_not_panic() {
        let mut s = RoundRobin::new();
        assert_eq!(
            picks(&mut s, &loads("uuuuu"), None, 4),
            [0, 1, 2, 3].map(Some)
        );
        assert_eq!(s.pick(&loads("uu"), None), Some(0));
    }
}
