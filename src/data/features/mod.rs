//! Hand-made tile features, from one u8 tile: colour statistics, tissue fraction, stain
//! (optical density), small artefacts stained tissue cannot make ([`artefact`]), the content hash and the
//! perceptual hashes ([`TileFacts`]), and the logistic regression scored on them
//! ([`Logistic`]). The audit, slicing and the feature baseline all read tiles through
//! these. Everything kept per tile is a few hundred bytes, so a split is measured in
//! bounded memory while its pixels stream past. Depends on `data`'s layout constants and
//! `error` only.

pub mod artefact;
mod logistic;
pub mod phash;

use crate::data::{CHANNELS, TILE};
pub use logistic::Logistic;
use phash::Hashes;

/// A pixel counts as tissue when its optical density (summed over RGB) exceeds this.
pub const TISSUE_OD: f32 = 0.45;
pub use artefact::{Artefact, BLACK, WHITE};

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
    /// The largest small region of pixels stained tissue cannot make, if any
    /// ([`artefact::find`]).
    pub artefact: Option<Artefact>,
    /// 32×32 luma thumbnail (3×3 block means), to confirm near-duplicate candidates.
    pub thumb: phash::Thumb,
}

pub use phash::thumb_correlation;

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
        let (hashes, ac_energy, thumb) = phash::of_tile(tile);
        let od = od_table();
        let mut sum = [0f64; 3];
        let mut sq = [0f64; 3];
        let (mut tissue, mut od_all, mut od_c, mut dark_c) = (0u32, 0f64, 0f64, 0u32);
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
            }
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
            artefact: artefact::find(tile),
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
