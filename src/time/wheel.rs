//! A hashed timer wheel, driven entirely by the [`Tick`]s it is given.
//!
//! The wheel has [`SLOTS`] slots of [`SLOT_MS`] milliseconds each, so one
//! rotation covers `SLOTS * SLOT_MS` ms (4096 ms, about 4 s). A timer lives in
//! the slot its deadline hashes to; a deadline more than one rotation ahead
//! simply stays in its slot and is skipped until it is due. Every timer keeps
//! its exact millisecond deadline, so a timer never fires early and the slot
//! width only affects how much work a scan does, never precision.
//!
//! Bookkeeping:
//!
//! * timers are entries of a [`Slab`]; a [`TimerId`] carries the slab index
//!   plus a generation, so a stale id (timer already fired or cancelled, slab
//!   slot reused) cancels nothing;
//! * each slot is a `Vec` of slab indices and every entry remembers its
//!   position there, so cancelling is O(1) (`swap_remove`);
//! * an occupancy bitmap (one bit per slot, scanned a `u64` word at a time
//!   with `trailing_zeros`) finds the next non-empty slot quickly;
//! * each slot keeps a lower bound of the deadlines it holds, so a slot full
//!   of far-future timers is not rescanned on every [`Wheel::expire`], and
//!   [`Wheel::next_deadline`] is usually exact.
//!
//! [`Wheel::expire`] visits at most every slot once whatever the jump in
//! time, so its cost is bounded by [`SLOTS`] plus the entries in the slots
//! that may hold a due timer. Once the slot vectors, the slab and the
//! caller's output vector have grown to their working size, `insert`,
//! `cancel` and `expire` do not allocate.

use slab::Slab;

use super::Tick;

/// Number of slots in the wheel (a multiple of 64, for the bitmap).
pub const SLOTS: usize = 512;

/// Width of one slot, in milliseconds.
pub const SLOT_MS: u64 = 8;

/// Words in the occupancy bitmap.
const WORDS: usize = SLOTS / 64;

const _: () = assert!(SLOTS.is_multiple_of(64) && SLOTS > 0 && SLOT_MS > 0);

/// No deadline: the `slot_min` of an empty slot.
const NEVER: Tick = Tick(u64::MAX);

/// Handle to a timer returned by [`Wheel::insert`], used to cancel it.
///
/// Ids are never reused: once the timer has fired or been cancelled, the id
/// is stale and [`Wheel::cancel`] ignores it, even if the wheel's storage
/// slot has been reused by a newer timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimerId {
    index: usize,
    generation: u64,
}

/// One pending timer.
#[derive(Debug)]
struct Entry {
    /// The exact deadline given to `insert`.
    deadline: Tick,
    /// The caller's key, pushed by `expire`.
    key: u64,
    /// Insertion counter: identifies the id and orders equal deadlines.
    generation: u64,
    /// Slot holding this entry.
    slot: usize,
    /// Position of this entry in `slots[slot]`.
    pos: usize,
}

/// A hashed timer wheel mapping deadlines to `u64` keys.
///
/// The wheel never reads the clock: callers pass the current [`Tick`] to
/// [`Wheel::new`] and [`Wheel::expire`].
#[derive(Debug)]
pub struct Wheel {
    /// All pending timers.
    entries: Slab<Entry>,
    /// Slab indices of the timers hashed to each slot.
    slots: Box<[Vec<usize>]>,
    /// Per slot, a lower bound of the deadlines it holds ([`NEVER`] if empty).
    slot_min: Box<[Tick]>,
    /// Bit `s` is set iff `slots[s]` is non-empty.
    occupied: [u64; WORDS],
    /// Time of the last `expire` (or creation): every timer with a deadline
    /// at or before it has fired, except ones inserted since with a past
    /// deadline, which are placed in the slot of `elapsed`.
    elapsed: Tick,
    /// Generation of the next inserted timer.
    next_generation: u64,
    /// Scratch for `expire`: `(deadline, generation, key)` of fired timers.
    fired: Vec<(Tick, u64, u64)>,
}

impl Wheel {
    /// An empty wheel whose clock starts at `now`.
    pub fn new(now: Tick) -> Wheel {
        Wheel {
            entries: Slab::new(),
            slots: (0..SLOTS).map(|_| Vec::new()).collect(),
            slot_min: vec![NEVER; SLOTS].into_boxed_slice(),
            occupied: [0; WORDS],
            elapsed: now,
            next_generation: 0,
            fired: Vec::new(),
        }
    }

    /// Schedules `key` to be returned by the first [`Wheel::expire`] whose
    /// `now` is at or after `deadline`. A deadline already in the past fires
    /// at the next `expire`.
    pub fn insert(&mut self, deadline: Tick, key: u64) -> TimerId {
        // Past deadlines go to the current slot, which the next expire scans.
        let slot = slot_of(deadline.max(self.elapsed));
        let generation = self.next_generation;
        self.next_generation += 1;
        let list = &mut self.slots[slot];
        let pos = list.len();
        let index = self.entries.insert(Entry {
            deadline,
            key,
            generation,
            slot,
            pos,
        });
        list.push(index);
        if deadline < self.slot_min[slot] {
            self.slot_min[slot] = deadline;
        }
        self.occupied[slot / 64] |= 1 << (slot % 64);
        TimerId { index, generation }
    }

    /// Cancels a pending timer. Returns `false`, doing nothing, if `id` has
    /// already fired or been cancelled.
    pub fn cancel(&mut self, id: TimerId) -> bool {
        match self.entries.get(id.index) {
            Some(e) if e.generation == id.generation => {}
            _ => return false,
        }
        let entry = self.entries.remove(id.index);
        let list = &mut self.slots[entry.slot];
        list.swap_remove(entry.pos);
        if let Some(&moved) = list.get(entry.pos) {
            self.entries[moved].pos = entry.pos;
        }
        if list.is_empty() {
            self.slot_min[entry.slot] = NEVER;
            self.occupied[entry.slot / 64] &= !(1 << (entry.slot % 64));
        }
        // Otherwise `slot_min` stays a (possibly loose) lower bound; the
        // next scan of the slot tightens it.
        true
    }

    /// Removes every timer whose deadline is at or before `now` and pushes
    /// their keys onto `out`, in deadline order (insertion order among equal
    /// deadlines). Timers due later are left alone.
    ///
    /// `now` earlier than a previous `now` is treated as that previous value.
    /// However far `now` has moved, each slot is visited at most once.
    pub fn expire(&mut self, now: Tick, out: &mut Vec<u64>) {
        let now = now.max(self.elapsed);
        let first = self.elapsed.0 / SLOT_MS;
        let last = now.0 / SLOT_MS;
        // Slots whose time range intersects [elapsed, now]; all of them once
        // `now` is a rotation or more ahead.
        let span = usize::try_from(last - first)
            .map_or(SLOTS, |d| d.saturating_add(1))
            .min(SLOTS);
        let start = slot_of(self.elapsed);

        let Wheel {
            entries,
            slots,
            slot_min,
            occupied,
            fired,
            ..
        } = self;
        let mut offset = 0;
        while offset < span {
            let from = (start + offset) % SLOTS;
            let Some(slot) = next_occupied(occupied, from) else {
                break;
            };
            let distance = (slot + SLOTS - from) % SLOTS;
            if offset + distance >= span {
                break;
            }
            offset += distance + 1;
            if slot_min[slot] > now {
                continue;
            }
            let list = &mut slots[slot];
            let mut min = NEVER;
            let mut i = 0;
            while i < list.len() {
                let index = list[i];
                let deadline = entries[index].deadline;
                if deadline <= now {
                    let entry = entries.remove(index);
                    fired.push((entry.deadline, entry.generation, entry.key));
                    list.swap_remove(i);
                    if let Some(&moved) = list.get(i) {
                        entries[moved].pos = i;
                    }
                } else {
                    min = min.min(deadline);
                    i += 1;
                }
            }
            slot_min[slot] = min;
            if list.is_empty() {
                occupied[slot / 64] &= !(1 << (slot % 64));
            }
        }
        self.elapsed = now;

        self.fired
            .sort_unstable_by_key(|&(deadline, generation, _)| (deadline, generation));
        out.extend(self.fired.iter().map(|&(_, _, key)| key));
        self.fired.clear();
    }

    /// The earliest pending deadline, or `None` if no timer is pending.
    ///
    /// The answer is never later than the true earliest deadline; after
    /// cancellations it may be earlier (a stale lower bound), in which case an
    /// `expire` at that time fires nothing and tightens the bound. It may be
    /// in the past, meaning a timer is already due.
    pub fn next_deadline(&self) -> Option<Tick> {
        if self.entries.is_empty() {
            return None;
        }
        let first = self.elapsed.0 / SLOT_MS;
        let start = slot_of(self.elapsed);
        let mut best = NEVER;
        let mut offset = 0;
        while offset < SLOTS {
            let from = (start + offset) % SLOTS;
            let Some(slot) = next_occupied(&self.occupied, from) else {
                break;
            };
            let distance = (slot + SLOTS - from) % SLOTS;
            if offset + distance >= SLOTS {
                break;
            }
            offset += distance;
            // Every deadline in this slot (bar past ones, which only the
            // first slot holds) is at or after the slot's start in the
            // current rotation, so no later slot can beat `best` once that
            // start reaches it.
            let slot_start = Tick((first + offset as u64).saturating_mul(SLOT_MS));
            if offset > 0 && slot_start >= best {
                break;
            }
            best = best.min(self.slot_min[slot]);
            offset += 1;
        }
        Some(best)
    }

    /// Number of pending timers.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no timer is pending.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The slot that time `t` hashes to.
fn slot_of(t: Tick) -> usize {
    // The remainder is below SLOTS, so the cast is lossless.
    ((t.0 / SLOT_MS) % SLOTS as u64) as usize
}

/// The first occupied slot at or after `from`, wrapping around.
fn next_occupied(bits: &[u64; WORDS], from: usize) -> Option<usize> {
    let word = from / 64;
    let high = !0u64 << (from % 64);
    let w = bits[word] & high;
    if w != 0 {
        return Some(word * 64 + w.trailing_zeros() as usize);
    }
    for step in 1..=WORDS {
        let i = (word + step) % WORDS;
        // The last step revisits the starting word's bits below `from`.
        let w = if step == WORDS {
            bits[i] & !high
        } else {
            bits[i]
        };
        if w != 0 {
            return Some(i * 64 + w.trailing_zeros() as usize);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROTATION: u64 = SLOTS as u64 * SLOT_MS;

    /// A tiny xorshift64 PRNG for reproducible tests.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    fn expire(w: &mut Wheel, now: u64) -> Vec<u64> {
        let mut out = Vec::new();
        w.expire(Tick(now), &mut out);
        out
    }

    /// Sum of capacities of everything the wheel allocates.
    fn capacity(w: &Wheel) -> usize {
        w.entries.capacity()
            + w.fired.capacity()
            + w.slots.iter().map(|s| s.capacity()).sum::<usize>()
    }

    #[test]
    fn empty_wheel() {
        let mut w = Wheel::new(Tick(0));
        assert!(w.is_empty());
        assert_eq!(w.len(), 0);
        assert_eq!(w.next_deadline(), None);
        assert!(expire(&mut w, 1_000_000).is_empty());
    }

    #[test]
    fn fires_in_deadline_order_and_never_early() {
        let mut w = Wheel::new(Tick(0));
        w.insert(Tick(30), 3);
        w.insert(Tick(10), 1);
        w.insert(Tick(20), 2);
        w.insert(Tick(10), 11); // same deadline: after key 1
        w.insert(Tick(11), 12); // same slot as 10, one ms later
        assert_eq!(w.len(), 5);
        assert!(expire(&mut w, 9).is_empty());
        assert_eq!(expire(&mut w, 10), vec![1, 11]);
        assert_eq!(expire(&mut w, 10), Vec::<u64>::new());
        assert_eq!(expire(&mut w, 11), vec![12]);
        assert_eq!(expire(&mut w, 29), vec![2]);
        assert_eq!(expire(&mut w, 100), vec![3]);
        assert!(w.is_empty());
    }

    #[test]
    fn one_expire_returns_everything_due_sorted() {
        let mut w = Wheel::new(Tick(0));
        for (i, d) in [500u64, 3, 4000, 17, 250, 4095, 8].iter().enumerate() {
            w.insert(Tick(*d), i as u64);
        }
        assert_eq!(expire(&mut w, 4095), vec![1, 6, 3, 4, 0, 2, 5]);
    }

    #[test]
    fn past_deadline_fires_at_next_expire() {
        let mut w = Wheel::new(Tick(1000));
        w.insert(Tick(5), 1);
        w.insert(Tick(1000), 2);
        assert_eq!(w.next_deadline(), Some(Tick(5)));
        assert_eq!(expire(&mut w, 1000), vec![1, 2]);

        assert!(expire(&mut w, 2000).is_empty());
        w.insert(Tick(1500), 3);
        // Even an expire at the same (or an older) time fires it.
        assert_eq!(expire(&mut w, 1999), vec![3]);
    }

    #[test]
    fn cancel() {
        let mut w = Wheel::new(Tick(0));
        let a = w.insert(Tick(10), 1);
        let b = w.insert(Tick(10), 2);
        let c = w.insert(Tick(10), 3);
        assert!(w.cancel(b));
        assert!(!w.cancel(b), "second cancel is a no-op");
        assert_eq!(w.len(), 2);
        assert_eq!(expire(&mut w, 10), vec![1, 3]);
        assert!(!w.cancel(a), "fired timer cannot be cancelled");
        assert!(!w.cancel(c));
        assert!(w.is_empty());
        assert_eq!(w.next_deadline(), None);
    }

    #[test]
    fn cancel_stale_id_after_slab_reuse() {
        let mut w = Wheel::new(Tick(0));
        let old = w.insert(Tick(10), 1);
        assert!(w.cancel(old));
        let new = w.insert(Tick(20), 2);
        assert_eq!(old.index, new.index, "slab slot reused");
        assert_ne!(old, new);
        assert!(!w.cancel(old));
        assert_eq!(w.len(), 1);

        // Same after the old timer fired rather than being cancelled.
        let fired = w.insert(Tick(5), 3);
        assert_eq!(expire(&mut w, 5), vec![3]);
        let reuse = w.insert(Tick(30), 4);
        assert_eq!(fired.index, reuse.index);
        assert!(!w.cancel(fired));
        assert_eq!(expire(&mut w, 100), vec![2, 4]);
    }

    #[test]
    fn cancel_keeps_other_positions_valid() {
        let mut w = Wheel::new(Tick(0));
        let ids: Vec<_> = (0..10).map(|k| w.insert(Tick(3), k)).collect();
        for &i in &[0usize, 9, 4, 5] {
            assert!(w.cancel(ids[i]));
        }
        assert!(w.cancel(ids[1]));
        assert_eq!(expire(&mut w, 3), vec![2, 3, 6, 7, 8]);
    }

    #[test]
    fn far_future_timers_wait_for_their_rotation() {
        let mut w = Wheel::new(Tick(0));
        // Same slot as deadline 100, 1, 2 and 5 rotations later.
        w.insert(Tick(100 + 5 * ROTATION), 5);
        w.insert(Tick(100), 0);
        w.insert(Tick(100 + ROTATION), 1);
        w.insert(Tick(100 + 2 * ROTATION), 2);
        assert_eq!(expire(&mut w, 100), vec![0]);
        assert_eq!(w.next_deadline(), Some(Tick(100 + ROTATION)));
        // Walking time in small steps past many slots fires nothing early.
        let mut t = 100;
        let mut got = Vec::new();
        while t < 100 + 6 * ROTATION {
            t += 7;
            let fired = expire(&mut w, t);
            for &k in &fired {
                assert!(t >= 100 + k * ROTATION);
                assert!(t < 100 + k * ROTATION + 7);
            }
            got.extend(fired);
        }
        assert_eq!(got, vec![1, 2, 5]);
    }

    #[test]
    fn wrap_around() {
        // Start near the end of a rotation so deadlines wrap to low slots.
        let start = 3 * ROTATION - 20;
        let mut w = Wheel::new(Tick(start));
        w.insert(Tick(start + 10), 1);
        w.insert(Tick(start + 30), 2); // next rotation, slot 1
        w.insert(Tick(start + 25), 3); // next rotation, slot 0
        assert_eq!(slot_of(Tick(start + 30)), 1);
        assert_eq!(slot_of(Tick(start + 25)), 0);
        assert_eq!(w.next_deadline(), Some(Tick(start + 10)));
        assert_eq!(expire(&mut w, start + 10), vec![1]);
        assert_eq!(w.next_deadline(), Some(Tick(start + 25)));
        assert!(expire(&mut w, start + 24).is_empty());
        assert_eq!(expire(&mut w, start + 40), vec![3, 2]);
    }

    #[test]
    fn time_jump_fires_everything_once() {
        let mut w = Wheel::new(Tick(0));
        for k in 0..1000u64 {
            w.insert(Tick(k * 37), k);
        }
        let out = expire(&mut w, 1_000 * 37 + 10 * ROTATION);
        assert_eq!(out, (0..1000).collect::<Vec<_>>());
        assert!(w.is_empty());
    }

    #[test]
    fn huge_time_jump_is_cheap() {
        let mut w = Wheel::new(Tick(0));
        w.insert(Tick(u64::MAX / 2), 1);
        w.insert(Tick(u64::MAX - 1), 2);
        w.insert(Tick(10), 3);
        // A loop per ms or per slot tick would never finish.
        assert_eq!(expire(&mut w, u64::MAX / 2), vec![3, 1]);
        assert_eq!(w.next_deadline(), Some(Tick(u64::MAX - 1)));
        assert_eq!(expire(&mut w, u64::MAX), vec![2]);
        w.insert(Tick(u64::MAX), 4);
        assert_eq!(w.next_deadline(), Some(Tick(u64::MAX)));
        assert_eq!(expire(&mut w, u64::MAX), vec![4]);
    }

    #[test]
    fn next_deadline_is_exact_without_cancels() {
        let mut w = Wheel::new(Tick(0));
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        let mut min = u64::MAX;
        for k in 0..2000 {
            let d = rng.below(20 * ROTATION);
            min = min.min(d);
            w.insert(Tick(d), k);
            assert_eq!(w.next_deadline(), Some(Tick(min)));
        }
    }

    #[test]
    fn next_deadline_with_far_timer_only() {
        let mut w = Wheel::new(Tick(0));
        w.insert(Tick(3 * ROTATION + 5), 1);
        w.insert(Tick(7 * ROTATION + 2), 2);
        assert_eq!(w.next_deadline(), Some(Tick(3 * ROTATION + 5)));
    }

    #[test]
    fn next_deadline_after_cancel_is_a_lower_bound() {
        let mut w = Wheel::new(Tick(0));
        let a = w.insert(Tick(100), 1);
        w.insert(Tick(103), 2);
        w.insert(Tick(900), 3);
        w.cancel(a);
        let nd = w.next_deadline().unwrap();
        assert!(nd <= Tick(103));
        assert!(expire(&mut w, 102).is_empty());
        // The scan tightened the bound.
        assert_eq!(w.next_deadline(), Some(Tick(103)));
        let id = w.insert(Tick(600), 9);
        assert!(w.cancel(id));
        assert_eq!(
            w.next_deadline(),
            Some(Tick(103)),
            "emptied slot is forgotten"
        );
    }

    #[test]
    fn steady_state_does_not_allocate() {
        let mut w = Wheel::new(Tick(0));
        let mut out = Vec::with_capacity(1024);
        let mut ids = Vec::with_capacity(1024);
        let mut now = 0;
        let round = |w: &mut Wheel, out: &mut Vec<u64>, ids: &mut Vec<TimerId>, now: &mut u64| {
            for k in 0..200 {
                // A fixed spread of deadlines, so every round looks alike.
                ids.push(w.insert(Tick(*now + (k * 41) % (2 * ROTATION)), k));
            }
            for id in ids.drain(..).step_by(2) {
                w.cancel(id);
            }
            *now += ROTATION / 2;
            out.clear();
            w.expire(Tick(*now), out);
        };
        for _ in 0..200 {
            round(&mut w, &mut out, &mut ids, &mut now);
        }
        let warmed = capacity(&w);
        for _ in 0..200 {
            round(&mut w, &mut out, &mut ids, &mut now);
            assert_eq!(capacity(&w), warmed);
        }
    }

    /// 100k random timers, with cancels and irregular steps (including
    /// multi-rotation jumps), checked against a brute-force model.
    #[test]
    fn random_against_model() {
        let mut rng = XorShift(0xDEAD_BEEF_CAFE_F00D);
        let mut now = 12_345u64;
        let mut w = Wheel::new(Tick(now));
        // Model: (deadline, key), key = insertion number.
        let mut model: Vec<(u64, u64)> = Vec::new();
        let mut ids: Vec<(TimerId, u64)> = Vec::new();
        let mut fired_total = 0u64;
        let mut cancelled = 0u64;
        let mut out = Vec::new();
        let mut key = 0u64;
        while key < 100_000 {
            for _ in 0..rng.below(50) {
                let deadline = match rng.below(10) {
                    0 => now.saturating_sub(rng.below(100)), // past or now
                    1 => now + rng.below(10 * ROTATION),     // far future
                    _ => now + rng.below(ROTATION),
                };
                let id = w.insert(Tick(deadline), key);
                model.push((deadline, key));
                ids.push((id, key));
                key += 1;
            }
            for _ in 0..rng.below(5) {
                if ids.is_empty() {
                    break;
                }
                let (id, k) = ids.swap_remove(rng.below(ids.len() as u64) as usize);
                let pending = model.iter().position(|&(_, mk)| mk == k);
                assert_eq!(w.cancel(id), pending.is_some());
                if let Some(p) = pending {
                    model.swap_remove(p);
                    cancelled += 1;
                }
                assert!(!w.cancel(id));
            }
            assert_eq!(w.len(), model.len());
            let true_min = model.iter().map(|&(d, _)| d).min();
            match (w.next_deadline(), true_min) {
                (None, None) => {}
                (Some(nd), Some(m)) => assert!(nd.0 <= m, "next_deadline {nd:?} > {m}"),
                other => panic!("next_deadline mismatch {other:?}"),
            }
            now += match rng.below(100) {
                0 => rng.below(20 * ROTATION),
                1..=9 => rng.below(ROTATION),
                _ => rng.below(40),
            };
            out.clear();
            w.expire(Tick(now), &mut out);
            let mut due: Vec<(u64, u64)> =
                model.iter().copied().filter(|&(d, _)| d <= now).collect();
            due.sort_unstable();
            model.retain(|&(d, _)| d > now);
            let expected: Vec<u64> = due.iter().map(|&(_, k)| k).collect();
            assert_eq!(out, expected, "at now={now}");
            fired_total += out.len() as u64;
        }
        now += 11 * ROTATION;
        out.clear();
        w.expire(Tick(now), &mut out);
        fired_total += out.len() as u64;
        assert!(w.is_empty());
        assert_eq!(fired_total + cancelled, key);
    }
}
