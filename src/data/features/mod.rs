//! Hand-made tile features, from one u8 tile: colour statistics, tissue fraction, stain
//! (optical density), the small high-contrast artefact test, the content hash and the
//! perceptual hashes ([`TileFacts`]), and the logistic regression scored on them
//! ([`Logistic`]). The audit, slicing and the feature baseline all read tiles through
//! these. Everything kept per tile is a few hundred bytes, so a split is measured in
//! bounded memory while its pixels stream past. Depends on `data`'s layout constants and
//! `error` only.

mod logistic;
pub mod phash;

use crate::data::{CHANNELS, TILE};
pub use logistic::Logistic;
use phash::Hashes;

/// A pixel counts as tissue when its optical density (summed over RGB) exceeds this.
pub const TISSUE_OD: f32 = 0.45;
/// Near-black: every channel at most this. Near-white: every channel at least
/// [`WHITE`]. Stained tissue is neither, so black-next-to-white pairs mark artefacts.
pub const BLACK: u8 = 30;
pub const WHITE: u8 = 225;

/// What the audit keeps of one tile.
#[derive(Debug, Clone)]
pub struct TileFacts {
    /// First 16 bytes of the SHA-256 of the u8 pixels.
    pub content: [u8; 16],
    pub hashes: Hashes,
    /// AC energy of the low-frequency DCT relative to its DC (flatness).
    pub ac_energy: f32,
    /// Mean and standard deviation of each channel (0..255).
    pub mean: [f32; 3],
    pub std: [f32; 3],
    /// Fraction of pixels that are tissue (optical density above [`TISSUE_OD`]).
    pub tissue: f32,
    /// Mean optical density of the centre 32×32 and of the whole tile.
    pub od_centre: f32,
    pub od_mean: f32,
    /// Fraction of dark (nucleus-like) pixels in the centre 32×32.
    pub dark_centre: f32,
    /// Adjacent near-black/near-white pixel pairs and their bounding box
    /// (row0, col0, row1, col1), if any.
    pub extreme_pairs: u32,
    pub extreme_box: Option<(u8, u8, u8, u8)>,
    /// 16×16 luma thumbnail (6×6 block means), to confirm near-duplicate candidates.
    pub thumb: [u8; THUMB * THUMB],
}

/// Side of the thumbnail.
pub const THUMB: usize = 16;

/// Largest Pearson correlation between thumbnail `a` in any of its eight orientations
/// and thumbnail `b`.
pub fn thumb_correlation(a: &[u8; THUMB * THUMB], b: &[u8; THUMB * THUMB]) -> f64 {
    let stats = |v: &mut dyn Iterator<Item = f64>| {
        let x: Vec<f64> = v.collect();
        let m = x.iter().sum::<f64>() / x.len() as f64;
        let sd = (x.iter().map(|v| (v - m).powi(2)).sum::<f64>())
            .sqrt()
            .max(1e-9);
        (x, m, sd)
    };
    let (bx, bm, bsd) = stats(&mut b.iter().map(|&v| v as f64));
    let n = THUMB - 1;
    let mut best = f64::MIN;
    for t in 0..8 {
        let (transpose, hflip, vflip) = (t & 4 != 0, t & 1 != 0, t & 2 != 0);
        let mut it = (0..THUMB * THUMB).map(|k| {
            let (mut r, mut c) = (k / THUMB, k % THUMB);
            if transpose {
                std::mem::swap(&mut r, &mut c);
            }
            if hflip {
                c = n - c;
            }
            if vflip {
                r = n - r;
            }
            a[r * THUMB + c] as f64
        });
        let (ax, am, asd) = stats(&mut it);
        let cov: f64 = ax.iter().zip(&bx).map(|(x, y)| (x - am) * (y - bm)).sum();
        best = best.max(cov / (asd * bsd));
    }
    best
}

fn od_table() -> &'static [f32; 256] {
    static T: std::sync::OnceLock<[f32; 256]> = std::sync::OnceLock::new();
    T.get_or_init(|| {
        let mut t = [0f32; 256];
        for (v, o) in t.iter_mut().enumerate() {
            *o = -((v as f32 + 1.0) / 256.0).ln();
        }
        t
    })
}

impl TileFacts {
    /// Measures a (96, 96, 3) u8 tile.
    pub fn of(tile: &[u8]) -> TileFacts {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(tile);
        let mut content = [0u8; 16];
        content.copy_from_slice(&digest[..16]);
        let (hashes, ac_energy) = phash::of_tile(tile);
        let od = od_table();
        let mut sum = [0f64; 3];
        let mut sq = [0f64; 3];
        let (mut tissue, mut od_all, mut od_c, mut dark_c) = (0u32, 0f64, 0f64, 0u32);
        let black = |p: &[u8]| p.iter().all(|&v| v <= BLACK);
        let white = |p: &[u8]| p.iter().all(|&v| v >= WHITE);
        let mut pairs = 0u32;
        let mut bbox = (u8::MAX, u8::MAX, 0u8, 0u8);
        let centre = 32..64;
        for r in 0..TILE {
            for c in 0..TILE {
                let o = (r * TILE + c) * CHANNELS;
                let p = &tile[o..o + CHANNELS];
                let mut d = 0f32;
                for ch in 0..CHANNELS {
                    let v = p[ch] as f64;
                    sum[ch] += v;
                    sq[ch] += v * v;
                    d += od[p[ch] as usize];
                }
                tissue += (d > TISSUE_OD) as u32;
                od_all += d as f64;
                if centre.contains(&r) && centre.contains(&c) {
                    od_c += d as f64;
                    dark_c += (d > 1.5) as u32;
                }
                // Right and down neighbours.
                for (nr, nc) in [(r, c + 1), (r + 1, c)] {
                    if nr < TILE && nc < TILE {
                        let q = &tile[(nr * TILE + nc) * CHANNELS..][..CHANNELS];
                        if (black(p) && white(q)) || (white(p) && black(q)) {
                            pairs += 1;
                            bbox.0 = bbox.0.min(r as u8);
                            bbox.1 = bbox.1.min(c as u8);
                            bbox.2 = bbox.2.max(nr as u8);
                            bbox.3 = bbox.3.max(nc as u8);
                        }
                    }
                }
            }
        }
        let f = TILE / THUMB;
        let mut thumb = [0u8; THUMB * THUMB];
        for (k, out) in thumb.iter_mut().enumerate() {
            let (r0, c0) = (k / THUMB * f, k % THUMB * f);
            let mut acc = 0u32;
            for r in r0..r0 + f {
                for c in c0..c0 + f {
                    let o = (r * TILE + c) * CHANNELS;
                    acc +=
                        299 * tile[o] as u32 + 587 * tile[o + 1] as u32 + 114 * tile[o + 2] as u32;
                }
            }
            *out = (acc as f32 / (1000 * f * f) as f32).round() as u8;
        }
        let n = (TILE * TILE) as f64;
        let mut mean = [0f32; 3];
        let mut std = [0f32; 3];
        for ch in 0..CHANNELS {
            let m = sum[ch] / n;
            mean[ch] = m as f32;
            std[ch] = (sq[ch] / n - m * m).max(0.0).sqrt() as f32;
        }
        TileFacts {
            content,
            hashes,
            ac_energy,
            mean,
            std,
            tissue: tissue as f32 / n as f32,
            od_centre: (od_c / 1024.0) as f32,
            od_mean: (od_all / n) as f32,
            dark_centre: dark_c as f32 / 1024.0,
            extreme_pairs: pairs,
            extreme_box: (pairs > 0).then_some(bbox),
            thumb,
        }
    }

    /// Mean over channels.
    pub fn brightness(&self) -> f32 {
        self.mean.iter().sum::<f32>() / 3.0
    }

    /// Features for the cheap label-noise model.
    pub fn features(&self) -> Vec<f64> {
        let mut v: Vec<f64> = self
            .mean
            .iter()
            .chain(&self.std)
            .map(|&x| x as f64)
            .collect();
        v.extend([
            self.tissue as f64,
            self.od_mean as f64,
            self.od_centre as f64,
            self.dark_centre as f64,
            self.ac_energy as f64,
        ]);
        v
    }
}
