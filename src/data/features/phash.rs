//! A perceptual hash for near-duplicate tiles, robust to flips, 90° rotations, brightness
//! and mild noise: luma averaged down to 32×32, a 2-D DCT-II, and one bit per
//! low-frequency coefficient (the 8×8 block without DC) above the block's median. A
//! flip or transpose of the image only permutes and negates DCT coefficients, so the
//! hashes of all eight orientations come from one transform. Candidate pairs are found
//! by multi-index hashing: 4 tables keyed by 16-bit slices, probed at Hamming distance
//! ≤ 1, which finds every pair within distance 7 without comparing all pairs.

use crate::data::{CHANNELS, TILE};

/// Side of the averaged luma image.
const SMALL: usize = 32;
/// Side of the low-frequency block hashed.
const LOW: usize = 8;
/// Largest distance the index is guaranteed to find (4 slices × (1 + 1) − 1).
pub const MAX_DISTANCE: u32 = 7;

/// The hashes of a tile in its eight orientations (index 0: as stored).
pub type Hashes = [u64; 8];

/// DCT-II basis for SMALL points, first LOW frequencies: `BASIS[u][x]`.
fn basis() -> &'static [[f32; SMALL]; LOW] {
    static B: std::sync::OnceLock<[[f32; SMALL]; LOW]> = std::sync::OnceLock::new();
    B.get_or_init(|| {
        let mut b = [[0f32; SMALL]; LOW];
        for (u, row) in b.iter_mut().enumerate() {
            for (x, v) in row.iter_mut().enumerate() {
                *v = (std::f64::consts::PI / SMALL as f64 * (x as f64 + 0.5) * u as f64).cos()
                    as f32;
            }
        }
        b
    })
}

/// Low-frequency DCT coefficients `c[u][v]` (u: vertical, v: horizontal) of a u8 tile.
pub fn low_dct(tile: &[u8]) -> [[f32; LOW]; LOW] {
    let f = TILE / SMALL;
    let mut small = [[0f32; SMALL]; SMALL];
    for (r, row) in small.iter_mut().enumerate() {
        for (c, out) in row.iter_mut().enumerate() {
            let mut s = 0u32;
            for dr in 0..f {
                for dc in 0..f {
                    let p = ((r * f + dr) * TILE + c * f + dc) * CHANNELS;
                    // Integer luma (ITU-R BT.601 weights ×1000).
                    s += 299 * tile[p] as u32 + 587 * tile[p + 1] as u32 + 114 * tile[p + 2] as u32;
                }
            }
            *out = s as f32 / (1000 * f * f) as f32;
        }
    }
    let b = basis();
    // Rows first: t[y][v] = Σx small[y][x]·b[v][x]; then columns.
    let mut t = [[0f32; LOW]; SMALL];
    for y in 0..SMALL {
        for v in 0..LOW {
            t[y][v] = (0..SMALL).map(|x| small[y][x] * b[v][x]).sum();
        }
    }
    let mut c = [[0f32; LOW]; LOW];
    for u in 0..LOW {
        for v in 0..LOW {
            c[u][v] = (0..SMALL).map(|y| t[y][v] * b[u][y]).sum();
        }
    }
    c
}

/// Energy of the AC coefficients relative to the mean luma: near 0 for flat tiles,
/// whose hashes are noise and must not be compared.
pub fn ac_energy(c: &[[f32; LOW]; LOW]) -> f32 {
    let dc = c[0][0].abs().max(1e-3);
    let ac: f32 = (0..LOW * LOW)
        .skip(1)
        .map(|k| c[k / LOW][k % LOW].powi(2))
        .sum();
    ac.sqrt() / dc
}

/// The hashes of the eight orientations of the tile with coefficients `c`.
pub fn hashes(c: &[[f32; LOW]; LOW]) -> Hashes {
    let mut out = [0u64; 8];
    for (t, h) in out.iter_mut().enumerate() {
        let (transpose, hflip, vflip) = (t & 4 != 0, t & 1 != 0, t & 2 != 0);
        let mut vals = [0f32; LOW * LOW - 1];
        for k in 1..LOW * LOW {
            let (u, v) = (k / LOW, k % LOW);
            // Orientation t maps coefficient (u, v) of the original to this position.
            let (su, sv) = if transpose { (v, u) } else { (u, v) };
            let mut x = c[su][sv];
            // A horizontal flip negates odd horizontal frequencies, a vertical flip odd
            // vertical ones (of the original's axes).
            if hflip && sv % 2 == 1 {
                x = -x;
            }
            if vflip && su % 2 == 1 {
                x = -x;
            }
            vals[k - 1] = x;
        }
        let mut sorted = vals;
        sorted.sort_by(f32::total_cmp);
        let median = sorted[sorted.len() / 2];
        *h = vals
            .iter()
            .enumerate()
            .fold(0u64, |acc, (k, &x)| acc | (((x > median) as u64) << k));
    }
    out
}

/// Hashes of a u8 tile and its AC energy.
pub fn of_tile(tile: &[u8]) -> (Hashes, f32) {
    let c = low_dct(tile);
    (hashes(&c), ac_energy(&c))
}

/// Smallest Hamming distance between `a` in any orientation and `b` as stored.
pub fn distance(a: &Hashes, b: &Hashes) -> u32 {
    a.iter()
        .map(|h| (h ^ b[0]).count_ones())
        .min()
        .unwrap_or(64)
}

/// Multi-index over the stored-orientation hashes of many tiles.
pub struct Index {
    tables: Vec<Vec<Vec<u32>>>,
}

impl Index {
    /// Indexes `hashes[i][0]` for every `i` in `members`.
    pub fn new(hashes: &[Hashes], members: &[u32]) -> Index {
        let mut tables = vec![vec![Vec::new(); 1 << 16]; 4];
        for &i in members {
            let h = hashes[i as usize][0];
            for (s, table) in tables.iter_mut().enumerate() {
                table[((h >> (16 * s)) & 0xffff) as usize].push(i);
            }
        }
        Index { tables }
    }

    /// Members within `max` (≤ [`MAX_DISTANCE`]) of tile `q` in some orientation, with
    /// their distance; `q` itself excluded. Sorted by member.
    pub fn near(&self, hashes: &[Hashes], q: u32, max: u32) -> Vec<(u32, u32)> {
        debug_assert!(max <= MAX_DISTANCE);
        let mut found: Vec<(u32, u32)> = Vec::new();
        let qh = &hashes[q as usize];
        for h in qh {
            for (s, table) in self.tables.iter().enumerate() {
                let key = ((h >> (16 * s)) & 0xffff) as u16;
                for flip in 0..=16u32 {
                    let k = if flip == 16 { key } else { key ^ (1 << flip) };
                    for &m in &table[k as usize] {
                        if m != q {
                            let d = distance(qh, &hashes[m as usize]);
                            if d <= max {
                                found.push((m, d));
                            }
                        }
                    }
                }
            }
        }
        found.sort_unstable();
        found.dedup_by_key(|p| p.0);
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::TILE_BYTES;

    fn tile(seed: u64) -> Vec<u8> {
        // Smooth blobs plus texture: something with structure at several scales.
        let mut v = vec![0u8; TILE_BYTES];
        for r in 0..TILE {
            for c in 0..TILE {
                let (x, y) = (c as f32 / 9.0, r as f32 / 13.0);
                let s = seed as f32;
                let val = 128.0
                    + 60.0 * (x + s).sin() * (y * 0.7 + s * 1.3).cos()
                    + 30.0 * ((x * 2.3 + y * 1.1 + s * 0.7).sin());
                for ch in 0..CHANNELS {
                    v[(r * TILE + c) * CHANNELS + ch] =
                        (val - 20.0 * ch as f32).clamp(0.0, 255.0) as u8;
                }
            }
        }
        v
    }

    fn transform(t: &[u8], rot: usize, flip: bool) -> Vec<u8> {
        let mut out = vec![0u8; TILE_BYTES];
        let n = TILE - 1;
        for r in 0..TILE {
            for c in 0..TILE {
                let (r1, c1) = if flip { (r, n - c) } else { (r, c) };
                let (sr, sc) = match rot {
                    0 => (r1, c1),
                    1 => (c1, n - r1),
                    2 => (n - r1, n - c1),
                    _ => (n - c1, r1),
                };
                let (o, s) = ((r * TILE + c) * CHANNELS, (sr * TILE + sc) * CHANNELS);
                out[o..o + CHANNELS].copy_from_slice(&t[s..s + CHANNELS]);
            }
        }
        out
    }

    #[test]
    fn every_orientation_matches_exactly_and_other_tiles_do_not() {
        let a = tile(1);
        let (ha, _) = of_tile(&a);
        for rot in 0..4 {
            for flip in [false, true] {
                let (hb, _) = of_tile(&transform(&a, rot, flip));
                assert_eq!(distance(&ha, &hb), 0, "rot {rot} flip {flip}");
            }
        }
        let (hc, _) = of_tile(&tile(7));
        assert!(
            distance(&ha, &hc) > MAX_DISTANCE * 2,
            "{}",
            distance(&ha, &hc)
        );
    }

    #[test]
    fn brightness_and_mild_noise_move_few_bits() {
        let a = tile(3);
        let mut b = a.clone();
        for (k, v) in b.iter_mut().enumerate() {
            let noise = (k * 2654435761 % 7) as i32 - 3;
            *v = (*v as i32 + 4 + noise).clamp(0, 255) as u8;
        }
        let (ha, _) = of_tile(&a);
        let (hb, _) = of_tile(&transform(&b, 1, true));
        assert!(distance(&ha, &hb) <= 4, "{}", distance(&ha, &hb));
    }

    #[test]
    fn the_index_finds_every_pair_within_the_guaranteed_distance() {
        // Random hashes plus planted neighbours at distances 0..=7.
        let mut hs: Vec<Hashes> = Vec::new();
        let mut x = 0x9e3779b97f4a7c15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..2000 {
            let h = next();
            hs.push([h, next(), next(), next(), next(), next(), next(), next()]);
        }
        for d in 0..=MAX_DISTANCE {
            let base = hs[d as usize][0];
            let mut h = base;
            for bit in 0..d {
                h ^= 1 << (bit * 9 % 64);
            }
            hs.push([h, 0, 0, 0, 0, 0, 0, 0]);
        }
        let members: Vec<u32> = (0..hs.len() as u32).collect();
        let idx = Index::new(&hs, &members);
        for d in 0..=MAX_DISTANCE {
            let q = 2000 + d;
            let near = idx.near(&hs, q, MAX_DISTANCE);
            assert!(near.contains(&(d, d)), "distance {d}: {near:?}");
        }
    }
}
