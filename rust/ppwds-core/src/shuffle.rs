//! Seedable shuffle buffers with webdataset's fill/yield behaviour.
//!
//! The buffer takes items one at a time and hands back an item once it holds
//! at least `initial` of them; while it is below `bufsize` it takes two items
//! for every one it gives out, so it fills up quickly and then stays at
//! `bufsize`. At the end of the input, [`ShuffleBuffer::pop`] drains it.
//! The output only depends on the seed and the input sequence (not on how the
//! input is cut into batches), and the buffer never holds more than
//! `max(bufsize, 1)` items.

/// One step of SplitMix64: advances `state` and returns a well-mixed word.
///
/// Used to expand seeds; consecutive states give independent-looking outputs.
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A small, fast generator (xoshiro256++) seeded through SplitMix64.
///
/// Not cryptographic; meant for reproducible data order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// A generator whose whole output is fixed by `seed`.
    pub fn new(seed: u64) -> Self {
        let mut st = seed;
        let mut s = [0u64; 4];
        for w in &mut s {
            *w = splitmix64(&mut st);
        }
        // SplitMix64 cannot produce four zero words in a row, but stay safe.
        if s == [0; 4] {
            s[0] = 1;
        }
        Rng { s }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// A uniform integer in `0..n` (unbiased; Lemire's multiply-and-reject).
    ///
    /// `n == 0` and `n == 1` return 0 without drawing.
    pub fn below(&mut self, n: u64) -> u64 {
        if n <= 1 {
            return 0;
        }
        let mut m = u128::from(self.next_u64()) * u128::from(n);
        if (m as u64) < n {
            let threshold = n.wrapping_neg() % n;
            while (m as u64) < threshold {
                m = u128::from(self.next_u64()) * u128::from(n);
            }
        }
        (m >> 64) as u64
    }
}

/// A bounded shuffle buffer, generic over the item type.
#[derive(Debug, Clone)]
pub struct ShuffleBuffer<T> {
    buf: Vec<T>,
    bufsize: usize,
    initial: usize,
    // True after the first item of a two-item fill step has been taken.
    half: bool,
    rng: Rng,
}

impl<T> ShuffleBuffer<T> {
    /// A buffer of `bufsize` items that starts yielding once it holds `initial`
    /// (clamped to `bufsize`), with its order fixed by `seed`.
    pub fn new(bufsize: usize, initial: usize, seed: u64) -> Self {
        ShuffleBuffer::with_rng(bufsize, initial, Rng::new(seed))
    }

    /// Like [`ShuffleBuffer::new`] with an explicit generator.
    pub fn with_rng(bufsize: usize, initial: usize, rng: Rng) -> Self {
        ShuffleBuffer {
            // Grown on demand: a huge `bufsize` on a short stream costs nothing.
            buf: Vec::with_capacity(bufsize.clamp(1, 1024)),
            bufsize,
            initial: initial.min(bufsize),
            half: false,
            rng,
        }
    }

    /// Number of buffered items.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// True when nothing is buffered.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The configured capacity.
    pub fn bufsize(&self) -> usize {
        self.bufsize
    }

    /// The fill level at which items start coming out.
    pub fn initial(&self) -> usize {
        self.initial
    }

    /// Adds one input item; returns an item when one is ready to go out.
    pub fn push(&mut self, item: T) -> Option<T> {
        self.buf.push(item);
        if !self.half && self.buf.len() < self.bufsize {
            // First half of a fill step: wait for a second item before yielding.
            self.half = true;
            return None;
        }
        self.half = false;
        if self.buf.len() >= self.initial {
            Some(self.take())
        } else {
            None
        }
    }

    /// Adds every item of `items`, appending the ready ones to `out`.
    pub fn push_many<I: IntoIterator<Item = T>>(&mut self, items: I, out: &mut Vec<T>) {
        for item in items {
            if let Some(x) = self.push(item) {
                out.push(x);
            }
        }
    }

    /// Removes one random item (used to drain the buffer at the end of input).
    pub fn pop(&mut self) -> Option<T> {
        self.half = false;
        if self.buf.is_empty() {
            None
        } else {
            Some(self.take())
        }
    }

    /// Drains every buffered item in random order.
    pub fn drain_all(&mut self, out: &mut Vec<T>) {
        out.reserve(self.buf.len());
        while let Some(x) = self.pop() {
            out.push(x);
        }
    }

    /// Visits the buffered items (e.g. for a garbage collector), in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.buf.iter()
    }

    /// Drops every buffered item without producing output.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.half = false;
    }

    fn take(&mut self) -> T {
        let k = self.rng.below(self.buf.len() as u64) as usize;
        // Moves the last item into slot k, as webdataset's `pick` does.
        self.buf.swap_remove(k)
    }
}

/// Shuffles a whole sequence through a buffer (convenience for tests and callers).
pub fn shuffle_iter<T, I: IntoIterator<Item = T>>(
    items: I,
    bufsize: usize,
    initial: usize,
    seed: u64,
) -> Vec<T> {
    let mut sb = ShuffleBuffer::new(bufsize, initial, seed);
    let mut out = Vec::new();
    sb.push_many(items, &mut out);
    sb.drain_all(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_known_values() {
        // Reference outputs of SplitMix64 from state 0.
        let mut s = 0u64;
        assert_eq!(splitmix64(&mut s), 0xE220_A839_7B1D_CDAF);
        assert_eq!(splitmix64(&mut s), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn below_is_in_range_and_covers() {
        let mut r = Rng::new(7);
        let mut seen = [0u32; 7];
        for _ in 0..7000 {
            let v = r.below(7) as usize;
            seen[v] += 1;
        }
        assert!(seen.iter().all(|&c| c > 800), "{seen:?}");
        assert_eq!(r.below(0), 0);
        assert_eq!(r.below(1), 0);
    }

    #[test]
    fn starts_yielding_at_initial() {
        let mut sb = ShuffleBuffer::new(10, 4, 0);
        let mut first_out = None;
        for i in 0..20 {
            if sb.push(i).is_some() && first_out.is_none() {
                first_out = Some(i);
            }
        }
        // Items 0..=3 fill it to 4 on the second step; that step yields.
        assert_eq!(first_out, Some(3));
        assert!(sb.len() <= 10);
    }

    #[test]
    fn zero_bufsize_passes_through() {
        let out = shuffle_iter(0..50, 0, 100, 9);
        assert_eq!(out, (0..50).collect::<Vec<_>>());
    }

    #[test]
    fn bufsize_one_keeps_order() {
        let out = shuffle_iter(0..20, 1, 1, 9);
        assert_eq!(out, (0..20).collect::<Vec<_>>());
    }

    #[test]
    fn actually_shuffles() {
        let out = shuffle_iter(0..1000, 100, 10, 42);
        assert_ne!(out, (0..1000).collect::<Vec<_>>());
        let mut sorted = out.clone();
        sorted.sort();
        assert_eq!(sorted, (0..1000).collect::<Vec<_>>());
    }

    #[test]
    fn clear_empties() {
        let mut sb = ShuffleBuffer::new(10, 5, 1);
        for i in 0..3 {
            sb.push(i);
        }
        assert_eq!(sb.iter().count(), 3);
        sb.clear();
        assert!(sb.is_empty());
        assert_eq!(sb.pop(), None);
    }

    mod props {
        use super::super::*;
        use proptest::prelude::*;

        /// Pushes `items` cut into batches at `cuts`, tracking the largest fill.
        fn run_batched(
            items: &[u32],
            bufsize: usize,
            initial: usize,
            seed: u64,
            cuts: &[usize],
        ) -> (Vec<u32>, usize) {
            let mut sb = ShuffleBuffer::new(bufsize, initial, seed);
            let mut out = Vec::new();
            let mut max_len = 0;
            let mut start = 0;
            let mut bounds: Vec<usize> = cuts.iter().map(|c| c % (items.len() + 1)).collect();
            bounds.push(items.len());
            bounds.sort_unstable();
            for end in bounds {
                for &x in &items[start..end] {
                    if let Some(y) = sb.push(x) {
                        out.push(y);
                    }
                    max_len = max_len.max(sb.len());
                }
                start = end;
            }
            sb.drain_all(&mut out);
            (out, max_len)
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(300))]

            #[test]
            fn output_is_a_permutation(items in prop::collection::vec(any::<u32>(), 0..400),
                                       bufsize in 0usize..64, initial in 0usize..80, seed in any::<u64>()) {
                let mut out = shuffle_iter(items.iter().copied(), bufsize, initial, seed);
                let mut want = items.clone();
                out.sort_unstable();
                want.sort_unstable();
                prop_assert_eq!(out, want);
            }

            #[test]
            fn same_seed_same_order_any_batching(items in prop::collection::vec(any::<u32>(), 0..400),
                                                 bufsize in 0usize..64, initial in 0usize..80, seed in any::<u64>(),
                                                 cuts in prop::collection::vec(any::<usize>(), 0..6)) {
                let whole = shuffle_iter(items.iter().copied(), bufsize, initial, seed);
                let (batched, _) = run_batched(&items, bufsize, initial, seed, &cuts);
                prop_assert_eq!(&whole, &batched);
                prop_assert_eq!(whole, shuffle_iter(items.iter().copied(), bufsize, initial, seed));
            }

            #[test]
            fn memory_is_bounded(items in prop::collection::vec(any::<u32>(), 0..600),
                                 bufsize in 0usize..64, initial in 0usize..80, seed in any::<u64>()) {
                let (_, max_len) = run_batched(&items, bufsize, initial, seed, &[]);
                prop_assert!(max_len <= bufsize.max(1), "max {} > bufsize {}", max_len, bufsize);
            }

            #[test]
            fn output_lags_input_by_at_most_bufsize(items in prop::collection::vec(any::<u32>(), 0..400),
                                                    bufsize in 1usize..64, seed in any::<u64>()) {
                // With initial = bufsize, once full every push yields exactly one item.
                let mut sb = ShuffleBuffer::new(bufsize, bufsize, seed);
                let mut got = 0usize;
                for (i, &x) in items.iter().enumerate() {
                    if sb.push(x).is_some() {
                        got += 1;
                    }
                    prop_assert!(i + 1 - got <= bufsize);
                }
            }
        }
    }
}
