//! One master seed → named, independent RNG streams. Every random decision in pcam
//! draws from `Seeds::stream(name, index)`; nothing uses `thread_rng` or the clock.
//! A stream's key is SHA-256(master seed, name) and its ChaCha stream id is the index,
//! so streams are independent of each other and of the order they are created in,
//! and work split across threads (tile `i`, epoch `e`) gets the same numbers anywhere.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};

/// The master seed and the derivation of named streams from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seeds {
    master: u64,
}

impl Seeds {
    /// Wraps a master seed.
    pub fn new(master: u64) -> Self {
        Self { master }
    }

    /// The master seed.
    pub fn master(&self) -> u64 {
        self.master
    }

    /// The RNG for stream `name`, sub-stream `index` (tile number, epoch, slide…).
    pub fn stream(&self, name: &str, index: u64) -> ChaCha8Rng {
        let mut h = Sha256::new();
        h.update(b"pcam-seed-v1\0");
        h.update(self.master.to_le_bytes());
        h.update(name.as_bytes());
        let key: [u8; 32] = h.finalize().into();
        let mut rng = ChaCha8Rng::from_seed(key);
        rng.set_stream(index);
        rng
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    fn first(mut r: ChaCha8Rng) -> [u64; 4] {
        [r.random(), r.random(), r.random(), r.random()]
    }

    #[test]
    fn same_name_and_index_give_the_same_numbers() {
        let s = Seeds::new(7);
        assert_eq!(first(s.stream("init", 3)), first(s.stream("init", 3)));
    }

    #[test]
    fn names_indices_and_masters_separate_streams() {
        let s = Seeds::new(7);
        let base = first(s.stream("init", 3));
        assert_ne!(base, first(s.stream("order", 3)));
        assert_ne!(base, first(s.stream("init", 4)));
        assert_ne!(base, first(Seeds::new(8).stream("init", 3)));
    }

    #[test]
    fn streams_are_pinned_across_releases() {
        // A change here silently changes every synthetic dataset and split: bump the
        // derivation tag instead of editing this value.
        let v: u64 = Seeds::new(42).stream("synth/tile/train", 0).random();
        assert_eq!(v, PINNED);
    }
    const PINNED: u64 = 6_762_246_145_220_475_766;
}
