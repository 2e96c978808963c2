//! The input pipeline. A split is read once through chunk-aligned blocks into memory
//! (uint8, under the `data.invalid` policy); each epoch's order comes from the `order`
//! stream (optionally class-balanced, like the course's weighted sampler); training
//! tiles get seeded augmentation (flips, 90° rotations, mild colour jitter) from the
//! `augment` stream keyed by (epoch, tile); normalisation statistics are computed on the
//! train split only. Batches are assembled in a background thread, strictly in order,
//! so their content never depends on thread timing.

use super::hdf5::{OpenOptions, PixelStats, Split};
use super::plan::InvalidPolicy;
use super::{SplitName, CHANNELS, TILE, TILE_BYTES};
use crate::error::{Error, Result};
use crate::seed::Seeds;
use rand::seq::SliceRandom;
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;

/// A split held in memory as uint8 tiles.
#[derive(Debug, Clone)]
pub struct Tiles {
    /// (n, 96, 96, 3) uint8, channels-last.
    pub pixels: Vec<u8>,
    /// Labels, 0 or 1 (all 0 for unlabelled tiles, see [`Tiles::unlabelled`]).
    pub labels: Vec<u8>,
    /// The provided split whose file each tile comes from (`None` for other inputs).
    pub file_split: Vec<Option<SplitName>>,
    /// Index of each kept tile in its file.
    pub file_index: Vec<usize>,
    pub stats: PixelStats,
}

impl Tiles {
    /// Reads split `split` of `dir` under `policy`, block by block, leaving out the file
    /// indices in `skip` (sorted; from a clean index).
    pub fn load(
        dir: &Path,
        split: SplitName,
        policy: InvalidPolicy,
        skip: &[usize],
        opts: &OpenOptions,
    ) -> Result<Tiles> {
        let mut t = Tiles::unlabelled(Vec::new(), Vec::new());
        let mut stats = PixelStats::default();
        visit(
            dir,
            split,
            None,
            policy,
            skip,
            opts,
            &mut stats,
            &mut t.pusher(),
        )?;
        t.stats = stats;
        Ok(t)
    }

    /// A sink for [`visit`] that appends each tile.
    pub(super) fn pusher(&mut self) -> impl FnMut(SplitName, usize, u8, &[u8]) + '_ {
        move |source, i, label, px| {
            self.pixels.extend_from_slice(px);
            self.labels.push(label);
            self.file_split.push(Some(source));
            self.file_index.push(i);
        }
    }

    /// Tiles without labels (prediction inputs): `pixels` is (n, 96, 96, 3) u8 and
    /// `file_index` says where each tile came from.
    pub fn unlabelled(pixels: Vec<u8>, file_index: Vec<usize>) -> Tiles {
        debug_assert_eq!(pixels.len(), file_index.len() * TILE_BYTES);
        Tiles {
            labels: vec![0; file_index.len()],
            file_split: vec![None; file_index.len()],
            pixels,
            file_index,
            stats: PixelStats::default(),
        }
    }

    /// Tiles held.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when no tile was kept.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    fn tile(&self, i: usize) -> &[u8] {
        &self.pixels[i * TILE_BYTES..(i + 1) * TILE_BYTES]
    }
}

/// Receives `(source split, file index, label, tile pixels)` for each tile streamed.
pub type TileSink<'a> = dyn FnMut(SplitName, usize, u8, &[u8]) + 'a;

/// Streams the tiles of file split `split` (only `keep`, sorted, when given) minus `skip`.
#[allow(clippy::too_many_arguments)]
pub(super) fn visit(
    dir: &Path,
    split: SplitName,
    keep: Option<&[usize]>,
    policy: InvalidPolicy,
    skip: &[usize],
    opts: &OpenOptions,
    stats: &mut PixelStats,
    f: &mut TileSink<'_>,
) -> Result<()> {
    let s = Split::open_dir(dir, split, opts)?;
    if let Some(&bad) = keep.and_then(|k| k.iter().find(|&&i| i >= s.len())) {
        return Err(Error::bad_file(
            &s.files.x,
            format!(
                "split manifest names tile {bad}, but the file has {} tiles",
                s.len()
            ),
        ));
    }
    let bar = opts
        .progress
        .bar(s.len() as u64, format!("load {split}"), "tiles");
    for range in s.block_ranges() {
        if let Some(k) = keep {
            // Skip blocks holding no wanted tile.
            let lo = k.partition_point(|&i| i < range.start);
            if lo == k.len() || k[lo] >= range.end {
                bar.inc(range.len() as u64);
                continue;
            }
        }
        let b = s.read_block(range.clone(), policy)?;
        for (j, &i) in b.indices.iter().enumerate() {
            if skip.binary_search(&i).is_ok() || keep.is_some_and(|k| k.binary_search(&i).is_err())
            {
                continue;
            }
            f(
                split,
                i,
                b.labels[j],
                &b.pixels[j * TILE_BYTES..(j + 1) * TILE_BYTES],
            );
        }
        stats.merge(&b.stats);
        bar.inc(range.len() as u64);
    }
    bar.finish_and_clear();
    Ok(())
}

/// Per-channel mean and standard deviation of pixel/255, from the train split only;
/// stored with the model so evaluation and prediction normalise the same way.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NormStats {
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl NormStats {
    /// Exact statistics over every pixel of `train`.
    pub fn of(train: &Tiles) -> NormStats {
        let mut acc = NormAccumulator::default();
        acc.add(&train.pixels);
        acc.finish()
    }
}

/// [`NormStats`] accumulated over pixels arriving in order (bit-identical to
/// [`NormStats::of`] over the same pixels), so they can be recomputed while streaming.
#[derive(Debug, Clone, Default)]
pub struct NormAccumulator {
    sum: [f64; 3],
    sq: [f64; 3],
    pixels: u64,
}

impl NormAccumulator {
    /// Adds (…, 3) u8 pixels.
    pub fn add(&mut self, pixels: &[u8]) {
        for px in pixels.chunks_exact(CHANNELS) {
            for (c, &p) in px.iter().enumerate() {
                let v = p as f64 / 255.0;
                self.sum[c] += v;
                self.sq[c] += v * v;
            }
        }
        self.pixels += (pixels.len() / CHANNELS) as u64;
    }

    /// The statistics of everything added.
    pub fn finish(&self) -> NormStats {
        let n = self.pixels.max(1) as f64;
        let mut s = NormStats {
            mean: [0.0; 3],
            std: [1.0; 3],
        };
        for c in 0..CHANNELS {
            let m = self.sum[c] / n;
            s.mean[c] = m as f32;
            s.std[c] = ((self.sq[c] / n - m * m).max(1e-12)).sqrt() as f32;
        }
        s
    }
}

/// The order of tile indices for one epoch. Balanced: `n` draws with replacement, each
/// class equally likely (the course's weighted sampler); otherwise a permutation.
pub fn epoch_order(seeds: &Seeds, epoch: usize, labels: &[u8], balanced: bool) -> Vec<usize> {
    let mut rng = seeds.stream("order", epoch as u64);
    let n = labels.len();
    if !balanced {
        let mut v: Vec<usize> = (0..n).collect();
        v.shuffle(&mut rng);
        return v;
    }
    let (pos, neg): (Vec<usize>, Vec<usize>) = (0..n).partition(|&i| labels[i] == 1);
    if pos.is_empty() || neg.is_empty() {
        return (0..n).map(|_| rng.random_range(0..n)).collect();
    }
    (0..n)
        .map(|_| {
            let class = if rng.random::<bool>() { &pos } else { &neg };
            class[rng.random_range(0..class.len())]
        })
        .collect()
}

/// Augmentation drawn for one tile in one epoch.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Aug {
    rot90: u8,
    hflip: bool,
    gain: [f32; 3],
}

impl Aug {
    const NONE: Aug = Aug {
        rot90: 0,
        hflip: false,
        gain: [1.0; 3],
    };

    fn draw(seeds: &Seeds, epoch: usize, tile: usize) -> Aug {
        let mut rng = seeds.stream("augment", ((epoch as u64) << 32) | tile as u64);
        let brightness: f32 = rng.random_range(0.9..1.1);
        Aug {
            rot90: rng.random_range(0..4),
            hflip: rng.random(),
            gain: [
                brightness * rng.random_range(0.95..1.05f32),
                brightness * rng.random_range(0.95..1.05f32),
                brightness * rng.random_range(0.95..1.05f32),
            ],
        }
    }

    /// Source pixel (row, col) for output pixel (r, c).
    #[cfg(test)]
    fn source(&self, r: usize, c: usize) -> (usize, usize) {
        let n = TILE - 1;
        let (r, c) = if self.hflip { (r, n - c) } else { (r, c) };
        match self.rot90 {
            0 => (r, c),
            1 => (c, n - r),
            2 => (n - r, n - c),
            _ => (n - c, r),
        }
    }

    /// The same map as an affine function of (r, c) on the source pixel index:
    /// `origin + r * dr + c * dc` (the flip and rotation fixed once per tile, so the
    /// pixel loop has no branches).
    fn strides(&self) -> (isize, isize, isize) {
        let n = (TILE - 1) as isize;
        let w = TILE as isize;
        // (row, col) of the source as (constant, coefficient of r, coefficient of c).
        let (fc0, fcc) = if self.hflip { (n, -1) } else { (0, 1) };
        // After the flip: r' = r, c' = fc0 + fcc * c.
        let ((r0, rr, rc), (c0, cr, cc)) = match self.rot90 {
            0 => ((0, 1, 0), (fc0, 0, fcc)),
            1 => ((fc0, 0, fcc), (n, -1, 0)),
            2 => ((n, -1, 0), (n - fc0, 0, -fcc)),
            _ => ((n - fc0, 0, -fcc), (0, 1, 0)),
        };
        (r0 * w + c0, rr * w + cr, rc * w + cc)
    }
}

/// A batch ready for the model: normalised (B, 3, 96, 96) f32 and labels.
#[derive(Debug, Clone)]
pub struct HostBatch {
    pub x: Vec<f32>,
    pub y: Vec<f32>,
    /// Indices into the split's tiles.
    pub tiles: Vec<usize>,
}

impl HostBatch {
    /// Moves the batch into tensors on `device`.
    pub fn to_tensors(&self, device: tch::Device) -> (tch::Tensor, tch::Tensor) {
        let b = self.y.len() as i64;
        let x = tch::Tensor::from_slice(&self.x)
            .view([b, CHANNELS as i64, TILE as i64, TILE as i64])
            .to_device(device);
        let y = tch::Tensor::from_slice(&self.y).to_device(device);
        (x, y)
    }
}

/// Builds one batch from `idx`, augmenting with `augment = Some((seeds, epoch))`.
pub fn make_batch(
    tiles: &Tiles,
    idx: &[usize],
    norm: &NormStats,
    augment: Option<(&Seeds, usize)>,
) -> HostBatch {
    let mut x = vec![0f32; idx.len() * CHANNELS * TILE * TILE];
    assemble_into(tiles, idx, norm, augment, &mut x);
    HostBatch {
        x,
        y: idx.iter().map(|&i| tiles.labels[i] as f32).collect(),
        tiles: idx.to_vec(),
    }
}

/// [`make_batch`] straight into a new (B, 3, 96, 96) float tensor on the CPU: the same
/// values, without the host vector, its zero fill and the copy into the tensor (what
/// the background loader of training builds).
pub fn make_tensor_batch(
    tiles: &Tiles,
    idx: &[usize],
    norm: &NormStats,
    augment: Option<(&Seeds, usize)>,
) -> TensorBatch {
    let b = idx.len();
    let x = tch::Tensor::empty(
        [b as i64, CHANNELS as i64, TILE as i64, TILE as i64],
        (tch::Kind::Float, tch::Device::Cpu),
    );
    let n = b * CHANNELS * TILE * TILE;
    if n > 0 {
        // SAFETY: `x` was just created as a contiguous float32 CPU tensor of n elements
        // and nothing else refers to it until this function returns it; the slice is
        // dropped before then.
        let out = unsafe { std::slice::from_raw_parts_mut(x.data_ptr() as *mut f32, n) };
        assemble_into(tiles, idx, norm, augment, out);
    }
    let y: Vec<f32> = idx.iter().map(|&i| tiles.labels[i] as f32).collect();
    TensorBatch {
        x,
        y: tch::Tensor::from_slice(&y),
        tiles: idx.to_vec(),
    }
}

/// Writes the normalised (and augmented) tiles `idx` into `x`, (B, 3, 96, 96) in order;
/// every element of `x` is written.
fn assemble_into(
    tiles: &Tiles,
    idx: &[usize],
    norm: &NormStats,
    augment: Option<(&Seeds, usize)>,
    x: &mut [f32],
) {
    let plane = TILE * TILE;
    for (k, &i) in idx.iter().enumerate() {
        let aug = match augment {
            Some((seeds, epoch)) => Aug::draw(seeds, epoch, i),
            None => Aug::NONE,
        };
        // The normalised value of each of the 256 levels, per channel: the same arithmetic
        // as per pixel, done once per tile.
        let mut lut = [[0f32; 256]; CHANNELS];
        for (ch, table) in lut.iter_mut().enumerate() {
            for (v, out) in table.iter_mut().enumerate() {
                let g = (v as f32 / 255.0 * aug.gain[ch]).min(1.0);
                *out = (g - norm.mean[ch]) / norm.std[ch];
            }
        }
        let src = tiles.tile(i);
        let (out_r, rest) = x[k * CHANNELS * plane..(k + 1) * CHANNELS * plane].split_at_mut(plane);
        let (out_g, out_b) = rest.split_at_mut(plane);
        let (origin, dr, dc) = aug.strides();
        for r in 0..TILE {
            let row = origin + r as isize * dr;
            let o = r * TILE;
            for c in 0..TILE {
                let p = (row + c as isize * dc) as usize * CHANNELS;
                out_r[o + c] = lut[0][src[p] as usize];
                out_g[o + c] = lut[1][src[p + 1] as usize];
                out_b[o + c] = lut[2][src[p + 2] as usize];
            }
        }
    }
}

/// A batch as CPU tensors, made in the background thread so the training thread only
/// computes.
pub struct TensorBatch {
    /// (B, 3, 96, 96) f32, normalised.
    pub x: tch::Tensor,
    /// (B) f32 labels.
    pub y: tch::Tensor,
    /// Indices into the split's tiles.
    pub tiles: Vec<usize>,
}

impl TensorBatch {
    /// The batch on `device` (no copy on the CPU).
    pub fn to_device(&self, device: tch::Device) -> (tch::Tensor, tch::Tensor) {
        (self.x.to_device(device), self.y.to_device(device))
    }
}

/// Reads the blocks `ranges` in order in a background thread (idle scheduling class), up
/// to `depth` blocks ahead of the consumer, so reading and decoding overlap computing. The
/// first error is delivered and ends the reading, as does dropping the receiver.
pub fn read_ahead<I, F>(
    ranges: I,
    depth: usize,
    mut read: F,
) -> (
    Receiver<crate::error::Result<crate::data::hdf5::Block>>,
    std::thread::JoinHandle<()>,
)
where
    I: IntoIterator<Item = std::ops::Range<usize>> + Send + 'static,
    F: FnMut(std::ops::Range<usize>) -> crate::error::Result<crate::data::hdf5::Block>
        + Send
        + 'static,
{
    let (tx, rx) = sync_channel(depth);
    let reader = std::thread::spawn(move || {
        crate::runtime::background_priority();
        for r in ranges {
            let b = read(r);
            let stop = b.is_err();
            if tx.send(b).is_err() || stop {
                return;
            }
        }
    });
    (rx, reader)
}

/// Batches of `order`, assembled ahead in a background thread and delivered in order.
pub fn batches(
    tiles: Arc<Tiles>,
    order: Vec<usize>,
    batch_size: usize,
    norm: NormStats,
    augment: Option<(Seeds, usize)>,
) -> Receiver<TensorBatch> {
    let (tx, rx) = sync_channel(2);
    std::thread::spawn(move || {
        crate::runtime::background_priority();
        for idx in order.chunks(batch_size.max(1)) {
            let aug = augment.as_ref().map(|(s, e)| (s, *e));
            if tx.send(make_tensor_batch(&tiles, idx, &norm, aug)).is_err() {
                return;
            }
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiles(n: usize) -> Tiles {
        Tiles {
            file_split: vec![Some(SplitName::Train); n],
            pixels: (0..n * TILE_BYTES).map(|i| (i * 7 % 256) as u8).collect(),
            labels: (0..n).map(|i| (i % 4 == 0) as u8).collect(),
            file_index: (0..n).collect(),
            stats: PixelStats::default(),
        }
    }

    #[test]
    fn orders_are_seeded_per_epoch() {
        let s = Seeds::new(1);
        let l = tiles(40).labels;
        let a = epoch_order(&s, 0, &l, false);
        assert_eq!(a, epoch_order(&s, 0, &l, false));
        assert_ne!(a, epoch_order(&s, 1, &l, false));
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(sorted, (0..40).collect::<Vec<_>>());
    }

    #[test]
    fn balanced_sampling_evens_the_classes() {
        let s = Seeds::new(2);
        let labels: Vec<u8> = (0..1000).map(|i| (i % 10 == 0) as u8).collect();
        let o = epoch_order(&s, 0, &labels, true);
        let pos = o.iter().filter(|&&i| labels[i] == 1).count();
        assert!((400..600).contains(&pos), "{pos} positives of 1000");
    }

    #[test]
    fn rotations_and_flips_are_permutations_of_the_tile() {
        for rot90 in 0..4 {
            for hflip in [false, true] {
                let a = Aug {
                    rot90,
                    hflip,
                    gain: [1.0; 3],
                };
                let mut seen = vec![false; TILE * TILE];
                let (origin, dr, dc) = a.strides();
                for r in 0..TILE {
                    for c in 0..TILE {
                        let (sr, sc) = a.source(r, c);
                        seen[sr * TILE + sc] = true;
                        let affine = origin + r as isize * dr + c as isize * dc;
                        assert_eq!(
                            affine,
                            (sr * TILE + sc) as isize,
                            "rot {rot90} flip {hflip}"
                        );
                    }
                }
                assert!(seen.iter().all(|&v| v));
            }
        }
    }

    #[test]
    fn batches_normalise_and_augment_deterministically() {
        let t = tiles(6);
        let norm = NormStats::of(&t);
        let plain = make_batch(&t, &[0, 1], &norm, None);
        let mean: f32 = plain.x.iter().sum::<f32>() / plain.x.len() as f32;
        assert!(mean.abs() < 0.2, "{mean}");
        let s = Seeds::new(3);
        let a = make_batch(&t, &[0, 1], &norm, Some((&s, 4)));
        assert_eq!(a.x, make_batch(&t, &[0, 1], &norm, Some((&s, 4))).x);
        assert_ne!(a.x, plain.x);
        let threaded: Vec<TensorBatch> = batches(
            Arc::new(t.clone()),
            vec![0, 1, 2, 3, 4],
            2,
            norm,
            Some((s, 4)),
        )
        .iter()
        .collect();
        assert_eq!(threaded.len(), 3);
        assert_eq!(
            Vec::<f32>::try_from(threaded[0].x.flatten(0, -1)).unwrap(),
            a.x
        );
        assert_eq!(threaded[2].tiles, vec![4]);
    }

    #[test]
    fn tensor_batches_hold_the_host_batches_bit_for_bit() {
        let t = tiles(7);
        let norm = NormStats::of(&t);
        let s = Seeds::new(5);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        for aug in [None, Some((&s, 2))] {
            for idx in [&[6usize, 0, 3][..], &[1], &[]] {
                let host = make_batch(&t, idx, &norm, aug);
                let tb = make_tensor_batch(&t, idx, &norm, aug);
                assert_eq!(tb.x.size(), [idx.len() as i64, 3, 96, 96]);
                let x = Vec::<f32>::try_from(tb.x.flatten(0, -1)).unwrap();
                assert_eq!(
                    bits(&x),
                    bits(&host.x),
                    "{idx:?} augmented {}",
                    aug.is_some()
                );
                assert_eq!(Vec::<f32>::try_from(&tb.y).unwrap(), host.y);
                assert_eq!(tb.tiles, host.tiles);
            }
        }
    }
}
