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

extern "C" {
    fn pcam_set_deterministic(on: i32);
    fn pcam_deterministic_enabled() -> i32;
}

/// The libtorch settings a run pins, recorded in its manifest.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TorchPins {
    /// Seed given to `tch::manual_seed` (derived from the master seed's `torch` stream).
    pub torch_seed: i64,
    pub threads: usize,
    /// Deterministic algorithms on, and (on CUDA) IEEE float32 rather than TF32 in
    /// convolutions and matrix products, so CPU and CUDA evaluations of one checkpoint agree.
    pub deterministic_algorithms: bool,
    pub cudnn_benchmark: bool,
    /// libgomp's wait policy in this process (`PASSIVE` for the CLI's training
    /// commands, see [`crate::runtime::passive_openmp`]); speed only, never results.
    pub omp_wait_policy: Option<String>,
}

impl Seeds {
    /// Seeds libtorch's global generator (used only for weight initialisation), pins the
    /// intra-op thread count, turns deterministic algorithms on (with IEEE float32 on
    /// CUDA: no TF32) and cuDNN benchmarking off. Every other random decision in pcam comes from [`Seeds::stream`].
    pub fn apply_to_torch(&self, threads: usize) -> TorchPins {
        use rand::Rng;
        let torch_seed = (self.stream("torch", 0).random::<u64>() >> 1) as i64;
        tch::manual_seed(torch_seed);
        if tch::Cuda::is_available() {
            tch::Cuda::manual_seed_all(torch_seed as u64);
        }
        tch::set_num_threads(threads as i32);
        tch::Cuda::cudnn_set_benchmark(false);
        crate::runtime::tune_allocator();
        // SAFETY: plain C functions of our shim; they only flip libtorch's global flags.
        let on = unsafe {
            pcam_set_deterministic(1);
            pcam_deterministic_enabled() == 1
        };
        TorchPins {
            torch_seed,
            threads,
            deterministic_algorithms: on,
            cudnn_benchmark: false,
            omp_wait_policy: std::env::var("OMP_WAIT_POLICY").ok(),
        }
    }
}

/// Serialises tests that touch libtorch's process-wide state (generator, threads). Every
/// unit test that seeds or draws from the global generator, or builds a model (which draws
/// its initial weights from it), holds it.
#[cfg(test)]
pub(crate) fn torch_test_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
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

    #[test]
    fn torch_is_pinned_and_deterministic_mode_is_on() {
        let _g = torch_test_lock();
        let pins = Seeds::new(5).apply_to_torch(1);
        assert!(pins.deterministic_algorithms);
        assert_eq!(tch::get_num_threads(), 1);
        let a = tch::Tensor::randn([4], (tch::Kind::Float, tch::Device::Cpu));
        Seeds::new(5).apply_to_torch(1);
        let b = tch::Tensor::randn([4], (tch::Kind::Float, tch::Device::Cpu));
        assert!(a.equal(&b));
    }
}
