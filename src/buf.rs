//! Fixed-capacity byte buffers.
//!
//! A [`Buf`] is allocated once with a fixed capacity and never grows on the
//! hot path: bytes are appended at the tail, consumed from the head, and the
//! live region is moved to the front (compacted) when the tail reaches the
//! end. Memory per connection is therefore bounded by the buffer capacity,
//! whatever the size of the bodies flowing through it.

/// Default capacity of a connection buffer.
pub const BUF_SIZE: usize = 16 * 1024;

/// Capacity a buffer may be grown to, once, to hold an oversized message
/// head (request line + header section up to the configured limits).
pub const LARGE_BUF_SIZE: usize = 48 * 1024;

/// Capacity a buffer is widened to while a large body streams through it
/// ([`BufPool::widen_pair`]): a quarter of the reads and writes, and segments
/// of up to 64 KiB, for a few more kilobytes held while bytes are in flight.
pub const WIDE_BUF_SIZE: usize = 64 * 1024;

/// A wide buffer holds as much as this many narrow ones.
const WIDE_RATIO: usize = WIDE_BUF_SIZE / BUF_SIZE;

/// Most buffers a pool lends wide at once (64 MiB): beyond that, bodies
/// stream through narrow buffers, so that many slow or stalled transfers
/// cannot make widening multiply the memory they hold.
pub const MAX_WIDE_LENT: usize = 1024;

/// A fixed-capacity FIFO byte buffer.
#[derive(Debug)]
pub struct Buf {
    data: Box<[u8]>,
    head: usize,
    tail: usize,
}

impl Buf {
    /// A new empty buffer of `cap` bytes.
    pub fn with_capacity(cap: usize) -> Buf {
        Buf {
            data: vec![0; cap].into_boxed_slice(),
            head: 0,
            tail: 0,
        }
    }

    /// A buffer without storage (capacity 0); it allocates nothing. Idle
    /// connections hold these and take real storage from a [`BufPool`] only
    /// while bytes are in flight.
    pub fn empty() -> Buf {
        Buf {
            data: Box::default(),
            head: 0,
            tail: 0,
        }
    }

    /// Bytes held.
    pub fn len(&self) -> usize {
        self.tail - self.head
    }

    /// True when no bytes are held.
    pub fn is_empty(&self) -> bool {
        self.head == self.tail
    }

    /// Total capacity.
    pub fn capacity(&self) -> usize {
        self.data.len()
    }

    /// Free space (after a compaction, if one is needed).
    pub fn space(&self) -> usize {
        self.data.len() - self.len()
    }

    /// True when no byte more fits.
    pub fn is_full(&self) -> bool {
        self.space() == 0
    }

    /// The bytes held.
    pub fn data(&self) -> &[u8] {
        &self.data[self.head..self.tail]
    }

    /// Drops `n` bytes from the front.
    pub fn consume(&mut self, n: usize) {
        debug_assert!(n <= self.len());
        self.head += n;
        if self.head == self.tail {
            self.head = 0;
            self.tail = 0;
        }
    }

    /// Drops the bytes after the first `len` (the last ones put).
    pub fn truncate(&mut self, len: usize) {
        if len < self.len() {
            self.tail = self.head + len;
        }
    }

    /// Empties the buffer.
    pub fn clear(&mut self) {
        self.head = 0;
        self.tail = 0;
    }

    /// The free region at the tail, compacting first if the tail is at the
    /// end but there is room at the front. Follow with [`Buf::commit`].
    pub fn spare_mut(&mut self) -> &mut [u8] {
        if self.head > 0 && self.tail == self.data.len() {
            self.compact();
        }
        &mut self.data[self.tail..]
    }

    /// Marks `n` bytes written into [`Buf::spare_mut`] as held.
    pub fn commit(&mut self, n: usize) {
        debug_assert!(self.tail + n <= self.data.len());
        self.tail += n;
    }

    /// Makes at least `n` bytes contiguous at the tail if the capacity
    /// allows; returns whether it does.
    pub fn reserve_contiguous(&mut self, n: usize) -> bool {
        if self.data.len() - self.tail >= n {
            return true;
        }
        if self.space() >= n {
            self.compact();
            return true;
        }
        false
    }

    /// Appends all of `bytes`; the caller must have checked the space.
    #[inline(always)]
    pub fn put(&mut self, bytes: &[u8]) {
        if self.data.len() - self.tail < bytes.len() {
            self.make_room(bytes.len());
        }
        self.data[self.tail..self.tail + bytes.len()].copy_from_slice(bytes);
        self.tail += bytes.len();
    }

    #[cold]
    fn make_room(&mut self, n: usize) {
        let ok = self.reserve_contiguous(n);
        assert!(ok, "Buf::put without space");
    }

    /// Appends as much of `bytes` as fits; returns how much was appended.
    pub fn put_some(&mut self, bytes: &[u8]) -> usize {
        let n = bytes.len().min(self.space());
        self.put(&bytes[..n]);
        n
    }

    /// Appends the decimal form of `v`.
    pub fn put_u64(&mut self, v: u64) {
        let mut tmp = [0u8; 20];
        let n = fmt_u64(v, &mut tmp);
        self.put(&tmp[20 - n..]);
    }

    /// Replaces the storage with a larger one of `cap` bytes, keeping the
    /// bytes held. Only for oversized heads; never called per request.
    pub fn grow_to(&mut self, cap: usize) {
        if cap <= self.data.len() {
            return;
        }
        self.move_to(vec![0; cap].into_boxed_slice());
    }

    /// Moves the bytes held into `data` (at least as large) and makes it
    /// the storage; returns the old storage.
    fn move_to(&mut self, mut data: Box<[u8]>) -> Box<[u8]> {
        let len = self.len();
        data[..len].copy_from_slice(self.data());
        self.head = 0;
        self.tail = len;
        std::mem::replace(&mut self.data, data)
    }

    fn compact(&mut self) {
        self.data.copy_within(self.head..self.tail, 0);
        self.tail -= self.head;
        self.head = 0;
    }
}

/// A free list that keeps what the recent load needed: at most `max`
/// items, and [`FreeList::trim`] frees the ones that stayed unused since
/// the last trim. A wave of concurrent requests thus reuses what the last
/// wave left, while a burst long over does not pin its memory.
#[derive(Debug)]
pub struct FreeList<T> {
    items: Vec<T>,
    max: usize,
    /// The fewest items held since the last trim: that many were not used.
    low: usize,
}

impl<T> FreeList<T> {
    /// An empty list that holds at most `max` items.
    pub fn new(max: usize) -> FreeList<T> {
        FreeList {
            items: Vec::with_capacity(max),
            max,
            low: 0,
        }
    }

    /// An item, if one is held.
    pub fn pop(&mut self) -> Option<T> {
        let item = self.items.pop();
        self.low = self.low.min(self.items.len());
        item
    }

    /// Keeps `item` for reuse, or drops it if the list is full.
    pub fn push(&mut self, item: T) {
        if self.items.len() < self.max {
            self.items.push(item);
        }
    }

    /// Items held.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether no item is held.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Holds at most `max` items from now on, dropping the excess at once.
    pub fn set_max(&mut self, max: usize) {
        self.max = max;
        self.items.truncate(max);
        self.low = self.low.min(self.items.len());
    }

    /// Drops the items that none of the pops since the last trim needed,
    /// keeping at least `keep` of them; returns how many were dropped.
    pub fn trim(&mut self, keep: usize) -> usize {
        let unused = self.low.min(self.items.len()).saturating_sub(keep);
        self.items.truncate(self.items.len() - unused);
        self.low = self.items.len();
        unused
    }
}

/// Free lists of [`BUF_SIZE`] and [`WIDE_BUF_SIZE`] buffers, so that
/// connections hold storage only while bytes are in flight and
/// steady-state traffic allocates nothing.
#[derive(Debug)]
pub struct BufPool {
    free: FreeList<Box<[u8]>>,
    wide: FreeList<Box<[u8]>>,
    /// Wide buffers lent and not reclaimed (at least as many as are held:
    /// one dropped with its connection still counts until
    /// [`BufPool::recount_wide`]).
    wide_lent: usize,
}

impl BufPool {
    /// A pool keeping at most `max_free` idle buffers of each size (more
    /// are freed).
    pub fn new(max_free: usize) -> BufPool {
        BufPool {
            free: FreeList::new(max_free),
            wide: FreeList::new(max_free),
            wide_lent: 0,
        }
    }

    /// A buffer with storage.
    pub fn take(&mut self) -> Buf {
        let mut b = Buf::empty();
        self.fill(&mut b);
        b
    }

    /// Gives `buf` storage if it has none.
    pub fn fill(&mut self, buf: &mut Buf) {
        if buf.data.is_empty() {
            buf.data = self
                .free
                .pop()
                .unwrap_or_else(|| vec![0; BUF_SIZE].into_boxed_slice());
            buf.head = 0;
            buf.tail = 0;
        }
    }

    /// Gives both `a` and `b` [`WIDE_BUF_SIZE`] storage, keeping the bytes
    /// they hold; their narrower storage goes back to the pool. Nothing
    /// changes if that would lend more than [`MAX_WIDE_LENT`] wide buffers.
    /// For a body streaming through: the reactor widens the source and the
    /// destination of an exchange whose reads fill them while more of the
    /// body is due and the destination keeps up.
    pub fn widen_pair(&mut self, a: &mut Buf, b: &mut Buf) {
        let needed =
            usize::from(a.capacity() < WIDE_BUF_SIZE) + usize::from(b.capacity() < WIDE_BUF_SIZE);
        if self.wide_lent + needed > MAX_WIDE_LENT {
            return;
        }
        self.widen(a);
        self.widen(b);
    }

    fn widen(&mut self, buf: &mut Buf) {
        if buf.data.len() >= WIDE_BUF_SIZE {
            return;
        }
        self.wide_lent += 1;
        let data = self
            .wide
            .pop()
            .unwrap_or_else(|| vec![0; WIDE_BUF_SIZE].into_boxed_slice());
        let old = buf.move_to(data);
        if old.len() == BUF_SIZE {
            self.free.push(old);
        }
    }

    /// Takes the storage of `buf` back if it holds no bytes (a buffer that
    /// grew for an oversized head is freed instead). A widened buffer
    /// returns to its own list: the next exchange starts narrow.
    pub fn reclaim(&mut self, buf: &mut Buf) {
        if !buf.is_empty() || buf.data.is_empty() {
            return;
        }
        let data = std::mem::take(&mut buf.data);
        buf.head = 0;
        buf.tail = 0;
        match data.len() {
            BUF_SIZE => self.free.push(data),
            WIDE_BUF_SIZE => {
                self.wide.push(data);
                self.wide_lent = self.wide_lent.saturating_sub(1);
            }
            _ => {}
        }
    }

    /// Wide buffers lent and not reclaimed.
    pub fn wide_lent(&self) -> usize {
        self.wide_lent
    }

    /// Sets the count of wide buffers lent to `held`, what the connections
    /// hold: a wide buffer dropped without [`BufPool::reclaim`] (a closed
    /// connection's, say) then no longer counts against the limit.
    pub fn recount_wide(&mut self, held: usize) {
        self.wide_lent = held;
    }

    /// Idle buffers held, of both sizes.
    pub fn idle(&self) -> usize {
        self.free.len() + self.wide.len()
    }

    /// Keeps at most `max_free` idle buffers of each size from now on,
    /// freeing the excess at once.
    pub fn set_max_free(&mut self, max_free: usize) {
        self.free.set_max(max_free);
        self.wide.set_max(max_free);
    }

    /// Frees the idle buffers no connection took since the last trim,
    /// keeping at least `keep` narrow ones and a quarter as many wide ones
    /// (the same memory); returns how many narrow buffers' worth of memory
    /// was freed.
    pub fn trim(&mut self, keep: usize) -> usize {
        self.free.trim(keep) + WIDE_RATIO * self.wide.trim(keep / WIDE_RATIO)
    }

    /// Whether more idle buffers are held than [`BufPool::trim`] with
    /// `keep` would keep (of either size).
    pub fn holds_more_than(&self, keep: usize) -> bool {
        self.free.len() > keep || self.wide.len() > keep / WIDE_RATIO
    }
}

/// Writes `v` in decimal right-aligned into `out`; returns the digit count.
pub fn fmt_u64(mut v: u64, out: &mut [u8; 20]) -> usize {
    let mut i = 20;
    loop {
        i -= 1;
        out[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    20 - i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trim_frees_what_went_unused_since_the_last_one() {
        let mut pool = BufPool::new(100);
        let mut held: Vec<Buf> = (0..50).map(|_| pool.take()).collect();
        for b in &mut held {
            pool.reclaim(b);
        }
        assert_eq!(pool.idle(), 50);
        // A wave that needed 30 of them: 20 stayed unused, and go but for
        // the 5 to keep.
        pool.trim(0);
        let mut wave: Vec<Buf> = (0..30).map(|_| pool.take()).collect();
        for b in &mut wave {
            pool.reclaim(b);
        }
        pool.trim(5);
        assert_eq!(pool.idle(), 35);
        // Nothing needed since: all but `keep` go.
        pool.trim(5);
        assert_eq!(pool.idle(), 5);
        pool.trim(5);
        assert_eq!(pool.idle(), 5);
    }

    #[test]
    fn fifo_and_compaction() {
        let mut b = Buf::with_capacity(8);
        b.put(b"abcdef");
        b.consume(4);
        assert_eq!(b.data(), b"ef");
        assert_eq!(b.space(), 6);
        assert!(b.reserve_contiguous(6));
        b.put(b"ghijkl");
        assert_eq!(b.data(), b"efghijkl");
        assert!(b.is_full());
        assert_eq!(b.put_some(b"x"), 0);
        b.consume(8);
        assert!(b.is_empty());
        assert_eq!(b.spare_mut().len(), 8);
    }

    #[test]
    fn spare_compacts_when_tail_at_end() {
        let mut b = Buf::with_capacity(4);
        b.put(b"abcd");
        b.consume(3);
        assert_eq!(b.spare_mut().len(), 3);
        b.spare_mut()[..1].copy_from_slice(b"e");
        b.commit(1);
        assert_eq!(b.data(), b"de");
    }

    #[test]
    fn pool_lends_and_reclaims_storage() {
        let mut pool = BufPool::new(1);
        let mut a = Buf::empty();
        assert_eq!(a.capacity(), 0);
        assert!(a.spare_mut().is_empty());
        pool.fill(&mut a);
        assert_eq!(a.capacity(), BUF_SIZE);
        a.put(b"x");
        pool.reclaim(&mut a); // holds a byte: kept
        assert_eq!(a.capacity(), BUF_SIZE);
        a.consume(1);
        pool.reclaim(&mut a);
        assert_eq!((a.capacity(), pool.idle()), (0, 1));
        let mut b = Buf::empty();
        pool.fill(&mut b);
        assert_eq!((b.capacity(), pool.idle()), (BUF_SIZE, 0));
        let mut big = Buf::with_capacity(LARGE_BUF_SIZE);
        pool.reclaim(&mut big);
        assert_eq!((big.capacity(), pool.idle()), (0, 0));
        // A larger limit keeps more; a smaller one frees the excess.
        pool.set_max_free(3);
        let mut bufs: Vec<Buf> = (0..3).map(|_| pool.take()).collect();
        for b in &mut bufs {
            pool.reclaim(b);
        }
        assert_eq!(pool.idle(), 3);
        pool.set_max_free(1);
        assert_eq!(pool.idle(), 1);
    }

    #[test]
    fn widening_keeps_the_bytes_and_the_next_exchange_starts_narrow() {
        let mut pool = BufPool::new(4);
        let mut a = pool.take();
        let mut spare = Buf::empty();
        a.put(b"abcdef");
        a.consume(2);
        pool.widen_pair(&mut a, &mut spare);
        assert_eq!((a.capacity(), a.data()), (WIDE_BUF_SIZE, &b"cdef"[..]));
        assert_eq!(a.space(), WIDE_BUF_SIZE - 4);
        assert_eq!((spare.capacity(), pool.wide_lent()), (WIDE_BUF_SIZE, 2));
        pool.reclaim(&mut spare);
        // The narrow storage went back to the pool; widening twice is a
        // no-op.
        assert_eq!((pool.idle(), pool.wide_lent()), (2, 1));
        pool.widen_pair(&mut a, &mut spare);
        assert_eq!(
            (a.capacity(), pool.idle(), pool.wide_lent()),
            (WIDE_BUF_SIZE, 1, 2)
        );
        pool.reclaim(&mut spare);
        a.consume(4);
        pool.reclaim(&mut a);
        assert_eq!((pool.idle(), pool.wide_lent()), (3, 0));
        // fill hands out narrow storage; widening reuses the wide one.
        let mut b = Buf::empty();
        pool.fill(&mut b);
        assert_eq!(b.capacity(), BUF_SIZE);
        pool.widen_pair(&mut b, &mut spare);
        assert_eq!((b.capacity(), pool.idle()), (WIDE_BUF_SIZE, 1));
        pool.reclaim(&mut spare);
        b.put(b"x");
        b.consume(1);
        pool.reclaim(&mut b);
        // Both lists were used since the last trim: nothing is freed. Then
        // nothing took them: both go, the wide one as four narrow ones.
        assert!(pool.holds_more_than(4) && !pool.holds_more_than(8));
        assert_eq!(pool.trim(0), 0);
        assert_eq!(pool.trim(0), 1 + 2 * 4);
        assert_eq!(pool.idle(), 0);
        assert!(!pool.holds_more_than(0));
    }

    #[test]
    fn no_more_than_max_wide_lent_buffers_are_wide_at_once() {
        let mut pool = BufPool::new(4);
        let mut held = Vec::new();
        for _ in 0..MAX_WIDE_LENT / 2 {
            let (mut a, mut b) = (Buf::empty(), Buf::empty());
            pool.widen_pair(&mut a, &mut b);
            held.extend([a, b]);
        }
        assert_eq!(pool.wide_lent(), MAX_WIDE_LENT);
        assert!(held.iter().all(|b| b.capacity() == WIDE_BUF_SIZE));
        // The limit is reached: neither buffer of another pair widens.
        let (mut x, mut y) = (pool.take(), pool.take());
        pool.widen_pair(&mut x, &mut y);
        assert_eq!((x.capacity(), y.capacity()), (BUF_SIZE, BUF_SIZE));
        // Dropped without being reclaimed: counted until the recount.
        held.truncate(10);
        pool.widen_pair(&mut x, &mut y);
        assert_eq!(x.capacity(), BUF_SIZE);
        pool.recount_wide(held.len());
        pool.widen_pair(&mut x, &mut y);
        assert_eq!((x.capacity(), y.capacity()), (WIDE_BUF_SIZE, WIDE_BUF_SIZE));
        assert_eq!(pool.wide_lent(), 12);
    }

    #[test]
    fn numbers_and_growth() {
        let mut b = Buf::with_capacity(32);
        b.put_u64(0);
        b.put(b" ");
        b.put_u64(18_446_744_073_709_551_615);
        assert_eq!(b.data(), b"0 18446744073709551615");
        b.consume(2);
        b.grow_to(64);
        assert_eq!(b.capacity(), 64);
        assert_eq!(b.data(), b"18446744073709551615");
    }
}
