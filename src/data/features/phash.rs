//! A perceptual hash for near-duplicate tiles, robust to flips, 90° rotations, brightness,
//! contrast and colour shifts, mild noise, translations of a few pixels and a crop-and-resize
//! of a few percent. Luma is averaged over 3×3 blocks to a 32×32 image; the hash of a
//! 28×28 crop of it is one bit per low-frequency DCT-II coefficient (the 8×8 block
//! without DC) above the block's median. Each tile keeps the hashes of its central crop
//! in all eight orientations (a flip or transpose only permutes and negates DCT
//! coefficients, so they come from one transform) and of its nine crops shifted by
//! −1, 0, +1 block (3 pixels) on each axis: a copy translated by up to 4 pixels matches
//! one of them within a pixel. Candidate pairs are found by multi-index hashing (4 tables
//! keyed by 16 interleaved bits each, probed at Hamming distance ≤ 1, which finds every pair within
//! distance 7 without comparing all pairs) and confirmed on the 32×32 luma thumbnails by
//! a correlation over orientations and shifts ([`thumb_correlation`]).

use crate::data::{CHANNELS, TILE};

/// Side of the averaged luma image (3×3-pixel blocks).
pub const SMALL: usize = 32;
/// Side of the hashed crop, and its margin in the small image.
const CROP: usize = 28;
const MARGIN: usize = (SMALL - CROP) / 2;
/// Side of the low-frequency block hashed.
const LOW: usize = 8;
/// Largest distance the index is guaranteed to find (4 slices × (1 + 1) − 1).
pub const MAX_DISTANCE: u32 = 7;
/// The audit's default thresholds, fixed on pcam's own rendered tiles (see the tests):
/// hash distance at most this …
pub const DEFAULT_DISTANCE: u32 = 6;
/// … and a confirming thumbnail correlation of at least this.
pub const DEFAULT_MIN_CORRELATION: f64 = 0.90;

/// Zoom factors of the indexed crops: as stored, and zoomed in by 4.5% (a copy cropped
/// by 3–6% and resized back matches the latter).
pub const ZOOMS: [f32; 2] = [1.0, 0.955];
/// Indexed crops per tile: 9 shifts × 2 zooms.
pub const VARIANTS: usize = 18;

/// The hashes of a tile: its central crop in eight orientations (index 0: as stored),
/// and, as stored, its crops shifted by (dr, dc) ∈ {−1, 0, 1}² blocks and zoomed by each
/// of [`ZOOMS`] (index 9z + 3(dr+1) + (dc+1); index 4 is the central crop).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hashes {
    pub oriented: [u64; 8],
    pub shifted: [u64; VARIANTS],
}

/// The 32×32 luma thumbnail a tile's hashes and confirmation read.
pub type Thumb = [u8; SMALL * SMALL];

/// DCT-II basis for CROP points, first LOW frequencies: `BASIS[u][x]`.
fn basis() -> &'static [[f32; CROP]; LOW] {
    static B: std::sync::OnceLock<[[f32; CROP]; LOW]> = std::sync::OnceLock::new();
    B.get_or_init(|| {
        let mut b = [[0f32; CROP]; LOW];
        for (u, row) in b.iter_mut().enumerate() {
            for (x, v) in row.iter_mut().enumerate() {
                *v =
                    (std::f64::consts::PI / CROP as f64 * (x as f64 + 0.5) * u as f64).cos() as f32;
            }
        }
        b
    })
}

/// Where crop coordinate `y` (0..CROP) samples the small image along one axis, for zoom
/// `z` and a shift of `off` blocks: about the image's centre.
fn sample_at(y: usize, z: f32, off: f32) -> f32 {
    (SMALL as f32 - 1.0) / 2.0 + (y as f32 - (CROP as f32 - 1.0) / 2.0) * z + off
}

/// One axis of a crop's DCT as weights on the small image's pixels: the DCT basis
/// composed with linear interpolation at [`sample_at`]. Index: [zoom][shift + 1].
type Axis = [[f32; SMALL]; LOW];
fn axes() -> &'static [[Axis; 3]; 2] {
    static A: std::sync::OnceLock<[[Axis; 3]; 2]> = std::sync::OnceLock::new();
    A.get_or_init(|| {
        let b = basis();
        let mut out = [[[[0f32; SMALL]; LOW]; 3]; 2];
        for (zi, &z) in ZOOMS.iter().enumerate() {
            for (oi, off) in [-1.0f32, 0.0, 1.0].into_iter().enumerate() {
                let w = &mut out[zi][oi];
                for (row, bu) in w.iter_mut().zip(b) {
                    for (y, &weight) in bu.iter().enumerate() {
                        let p = sample_at(y, z, off).clamp(0.0, (SMALL - 1) as f32);
                        let (lo, f) = (p.floor() as usize, p - p.floor());
                        row[lo] += weight * (1.0 - f);
                        if f > 0.0 {
                            row[(lo + 1).min(SMALL - 1)] += weight * f;
                        }
                    }
                }
            }
        }
        out
    })
}

/// Luma of a u8 tile averaged over 3×3 blocks (ITU-R BT.601 weights), unrounded.
fn small_luma(tile: &[u8]) -> [[f32; SMALL]; SMALL] {
    let f = TILE / SMALL;
    let mut small = [[0f32; SMALL]; SMALL];
    for (r, row) in small.iter_mut().enumerate() {
        for (c, out) in row.iter_mut().enumerate() {
            let mut s = 0u32;
            for dr in 0..f {
                for dc in 0..f {
                    let p = ((r * f + dr) * TILE + c * f + dc) * CHANNELS;
                    s += 299 * tile[p] as u32 + 587 * tile[p + 1] as u32 + 114 * tile[p + 2] as u32;
                }
            }
            *out = s as f32 / (1000 * f * f) as f32;
        }
    }
    small
}

/// Rows of the small image through one column axis: `t[y][v] = Σx small[y][x]·w[v][x]`.
fn row_pass(small: &[[f32; SMALL]; SMALL], w: &Axis) -> [[f32; LOW]; SMALL] {
    let mut t = [[0f32; LOW]; SMALL];
    for (ty, row) in t.iter_mut().zip(small) {
        for (v, out) in ty.iter_mut().enumerate() {
            *out = row.iter().zip(&w[v]).map(|(a, b)| a * b).sum();
        }
    }
    t
}

/// Low-frequency DCT coefficients `c[u][v]` (u: vertical, v: horizontal) of a crop,
/// from the row pass `t` and the row axis `w`.
fn column_pass(t: &[[f32; LOW]; SMALL], w: &Axis) -> [[f32; LOW]; LOW] {
    let mut c = [[0f32; LOW]; LOW];
    for u in 0..LOW {
        for v in 0..LOW {
            c[u][v] = (0..SMALL).map(|y| t[y][v] * w[u][y]).sum();
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

/// Orientation `t` (bits: 1 horizontal flip, 2 vertical flip, 4 transpose, the transpose
/// applied first) of a square index (r, c) of side `n`.
fn orient(t: usize, r: usize, c: usize, n: usize) -> (usize, usize) {
    let (mut r, mut c) = if t & 4 != 0 { (c, r) } else { (r, c) };
    if t & 1 != 0 {
        c = n - 1 - c;
    }
    if t & 2 != 0 {
        r = n - 1 - r;
    }
    (r, c)
}

/// One bit per AC coefficient above their median, of orientation `t` of coefficients `c`.
fn hash(c: &[[f32; LOW]; LOW], t: usize) -> u64 {
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
    vals.iter()
        .enumerate()
        .fold(0u64, |acc, (k, &x)| acc | (((x > median) as u64) << k))
}

/// Hashes of a u8 tile, its AC energy (of the central crop) and its luma thumbnail.
pub fn of_tile(tile: &[u8]) -> (Hashes, f32, Thumb) {
    let small = small_luma(tile);
    let ax = axes();
    let mut h = Hashes {
        oriented: [0; 8],
        shifted: [0; VARIANTS],
    };
    let mut energy = 0.0;
    for (zi, per_zoom) in ax.iter().enumerate() {
        for (dc, col) in per_zoom.iter().enumerate() {
            let t = row_pass(&small, col);
            for (dr, row) in per_zoom.iter().enumerate() {
                let c = column_pass(&t, row);
                let k = 9 * zi + 3 * dr + dc;
                if k == 4 {
                    for (o, out) in h.oriented.iter_mut().enumerate() {
                        *out = hash(&c, o);
                    }
                    energy = ac_energy(&c);
                }
                h.shifted[k] = hash(&c, 0);
            }
        }
    }
    let mut thumb = [0u8; SMALL * SMALL];
    for (k, v) in thumb.iter_mut().enumerate() {
        *v = small[k / SMALL][k % SMALL].round() as u8;
    }
    (h, energy, thumb)
}

/// Smallest Hamming distance from `x`'s central crop in orientation `t` to a shifted or
/// zoomed crop of `y` as stored.
fn oriented_distance(x: &Hashes, y: &Hashes, t: usize) -> u32 {
    y.shifted
        .iter()
        .map(|s| (x.oriented[t] ^ s).count_ones())
        .min()
        .unwrap_or(64)
}

/// Smallest Hamming distance between `a`'s central crop in any orientation and a shifted
/// or zoomed crop of `b` as stored, or the other way round.
pub fn distance(a: &Hashes, b: &Hashes) -> u32 {
    (0..8)
        .map(|t| oriented_distance(a, b, t).min(oriented_distance(b, a, t)))
        .min()
        .unwrap_or(64)
}

/// Zooms searched when confirming (a copy may be zoomed in or out relative to the other).
const CONFIRM_ZOOMS: [f32; 3] = [1.0, 0.955, 1.0 / 0.955];

/// Bilinear sample positions of one axis: (low index, weight of the next) for each of
/// the crop's CROP coordinates.
fn taps(z: f32, off: f32) -> [(usize, f32); CROP] {
    let mut out = [(0usize, 0f32); CROP];
    for (y, o) in out.iter_mut().enumerate() {
        let p = sample_at(y, z, off).clamp(0.0, (SMALL - 1) as f32 - 1e-3);
        *o = (p.floor() as usize, p - p.floor());
    }
    out
}

/// Pearson correlation of `ax` (a crop, CROP×CROP, centred values, norm `asd`) with
/// thumbnail `b` sampled at zoom `z` and shift (`dr`, `dc`) blocks.
fn correlation_at(ax: &[f64; CROP * CROP], asd: f64, b: &Thumb, z: f32, dr: f32, dc: f32) -> f64 {
    let (rows, cols) = (taps(z, dr), taps(z, dc));
    let n = (CROP * CROP) as f64;
    let (mut sb, mut sbb, mut sab) = (0f64, 0f64, 0f64);
    for (r, &(r0, fr)) in rows.iter().enumerate() {
        let (top, bottom) = (&b[r0 * SMALL..][..SMALL], &b[(r0 + 1) * SMALL..][..SMALL]);
        for (c, &(c0, fc)) in cols.iter().enumerate() {
            let v = (top[c0] as f32 * (1.0 - fc) + top[c0 + 1] as f32 * fc) * (1.0 - fr)
                + (bottom[c0] as f32 * (1.0 - fc) + bottom[c0 + 1] as f32 * fc) * fr;
            let v = v as f64;
            sb += v;
            sbb += v * v;
            sab += ax[r * CROP + c] * v;
        }
    }
    let bsd = (sbb - sb * sb / n).max(0.0).sqrt().max(1e-9);
    sab / (asd * bsd)
}

/// Largest correlation of `a`'s central crop in orientation `t` with `b`, searched around
/// the alignment the hashes matched at (`variant` of `b`'s crops: its zoom and shift):
/// that shift ± 1 block at that zoom, the other zooms at that shift, then refined around
/// the best to a quarter block.
fn aligned_correlation(a: &Thumb, b: &Thumb, t: usize, variant: usize) -> f64 {
    let mut ax = [0f64; CROP * CROP];
    for (k, x) in ax.iter_mut().enumerate() {
        let (r, c) = orient(t, k / CROP, k % CROP, CROP);
        *x = a[(MARGIN + r) * SMALL + MARGIN + c] as f64;
    }
    let am = ax.iter().sum::<f64>() / ax.len() as f64;
    ax.iter_mut().for_each(|v| *v -= am);
    let asd = ax.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-9);
    let z0 = ZOOMS[variant / 9];
    let (r0, c0) = ((variant % 9 / 3) as f32 - 1.0, (variant % 3) as f32 - 1.0);
    let mut best = (f64::MIN, z0, r0, c0);
    let try_at = |best: &mut (f64, f32, f32, f32), z: f32, dr: f32, dc: f32| {
        let r = correlation_at(&ax, asd, b, z, dr, dc);
        if r > best.0 {
            *best = (r, z, dr, dc);
        }
    };
    for dr in [-1.0f32, 0.0, 1.0] {
        for dc in [-1.0f32, 0.0, 1.0] {
            try_at(&mut best, z0, r0 + dr, c0 + dc);
        }
    }
    for z in CONFIRM_ZOOMS.into_iter().filter(|&z| z != z0) {
        try_at(&mut best, z, r0, c0);
    }
    for step in [0.5f32, 0.25] {
        let (_, z, r1, c1) = best;
        for dr in [-step, 0.0, step] {
            for dc in [-step, 0.0, step] {
                if dr != 0.0 || dc != 0.0 {
                    try_at(&mut best, z, r1 + dr, c1 + dc);
                }
            }
        }
    }
    best.0
}

/// The variant of `y`'s crops closest to `x`'s central crop in orientation `t`.
fn closest_variant(x: &Hashes, y: &Hashes, t: usize) -> usize {
    (0..VARIANTS)
        .min_by_key(|&v| (x.oriented[t] ^ y.shifted[v]).count_ones())
        .unwrap_or(4)
}

/// Confirms a candidate pair on its thumbnails: the largest correlation, over the
/// orientations whose hashes brought the pair closest, of one tile's central crop with
/// the other, searched around the alignment the hashes matched at. 1 for a copy up to
/// orientation, brightness and contrast; 0.93 or more for translated or
/// cropped-and-resized copies of rendered tiles.
pub fn thumb_correlation(a: (&Hashes, &Thumb), b: (&Hashes, &Thumb)) -> f64 {
    let mut best = f64::MIN;
    let d = distance(a.0, b.0);
    for t in 0..8 {
        // The inverse orientation too (transpose with one flip: 5 <-> 6).
        let inverse = match t {
            5 => 6,
            6 => 5,
            t => t,
        };
        for (x, y) in [(a, b), (b, a)] {
            if oriented_distance(x.0, y.0, t) == d {
                let v = closest_variant(x.0, y.0, t);
                best = best.max(aligned_correlation(x.1, y.1, t, v));
                if inverse != t {
                    best = best.max(aligned_correlation(x.1, y.1, inverse, v));
                }
            }
        }
    }
    best
}

/// The 16-bit key of hash `h` in table `s`: bits s, s + 4, s + 8, … (interleaved, so
/// every table mixes low and high frequencies and no table's buckets are crowded by the
/// lowest frequencies tiles share).
fn key(h: u64, s: usize) -> u16 {
    (0..16).fold(0u16, |k, j| k | ((((h >> (4 * j + s)) & 1) as u16) << j))
}

/// Multi-index over the shifted and zoomed crops' hashes of many tiles.
pub struct Index {
    /// Per table, per 16-bit key: the indexed hash and its member (the hash inline, so a
    /// probe reads one bucket, not the members' hashes).
    tables: Vec<Vec<Vec<(u64, u32)>>>,
}

impl Index {
    /// Indexes the [`VARIANTS`] `shifted` hashes of every `i` in `members`.
    pub fn new(hashes: &[Hashes], members: &[u32]) -> Index {
        let mut tables = vec![vec![Vec::new(); 1 << 16]; 4];
        for &i in members {
            for &h in &hashes[i as usize].shifted {
                for (s, table) in tables.iter_mut().enumerate() {
                    let bucket = &mut table[key(h, s) as usize];
                    // Neighbouring crops often hash alike: keep one entry per member and hash.
                    if !bucket.iter().rev().take(VARIANTS).any(|&e| e == (h, i)) {
                        bucket.push((h, i));
                    }
                }
            }
        }
        Index { tables }
    }

    /// Members within `max` (≤ [`MAX_DISTANCE`]) of tile `q`'s central crop in some
    /// orientation (against the member's shifted and zoomed crops), with their
    /// [`distance`]; `q` itself excluded. Sorted by member. Every pair within `max` is
    /// found from one of its two tiles.
    pub fn near(&self, hashes: &[Hashes], q: u32, max: u32) -> Vec<(u32, u32)> {
        debug_assert!(max <= MAX_DISTANCE);
        let mut found: Vec<u32> = Vec::new();
        let qh = &hashes[q as usize];
        for h in qh.oriented {
            for (s, table) in self.tables.iter().enumerate() {
                let key = key(h, s);
                for flip in 0..=16u32 {
                    let k = if flip == 16 { key } else { key ^ (1 << flip) };
                    for &(other, m) in &table[k as usize] {
                        if m != q && (h ^ other).count_ones() <= max {
                            found.push(m);
                        }
                    }
                }
            }
        }
        found.sort_unstable();
        found.dedup();
        found
            .into_iter()
            .map(|m| (m, distance(qh, &hashes[m as usize])))
            .collect()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::data::TILE_BYTES;

    /// pcam's own rendered tiles.
    pub(crate) fn rendered(i: usize) -> Vec<u8> {
        crate::data::synth::render_tile_for_bench(7, i)
    }

    /// The copy transforms a near-duplicate check must see through, as pcam's tests
    /// apply them to pcam's own rendered tiles (thresholds are fixed on these).
    pub(crate) fn transformed(t: &[u8], how: &str, k: usize) -> Vec<u8> {
        let at = |r: isize, c: isize, ch: usize| {
            // Reflect at the border.
            let f = |v: isize| {
                let n = TILE as isize;
                let v = if v < 0 { -v - 1 } else { v };
                (if v >= n { 2 * n - v - 1 } else { v }) as usize
            };
            t[(f(r) * TILE + f(c)) * CHANNELS + ch] as f32
        };
        let mut out = vec![0u8; TILE_BYTES];
        for r in 0..TILE {
            for c in 0..TILE {
                for ch in 0..CHANNELS {
                    let (ri, ci) = (r as isize, c as isize);
                    let v = match how {
                        "dihedral" => {
                            let (sr, sc) = orient(1 + k % 7, r, c, TILE);
                            at(sr as isize, sc as isize, ch)
                        }
                        "brightness" => at(ri, ci, ch) + [-25.0, -12.0, 12.0, 25.0][k % 4],
                        "contrast" => {
                            (at(ri, ci, ch) - 170.0) * [0.8, 0.9, 1.1, 1.2][k % 4] + 170.0
                        }
                        "colour" => {
                            at(ri, ci, ch) + [[12.0, -8.0, 5.0], [-15.0, 6.0, 10.0]][k % 2][ch]
                        }
                        "noise" => {
                            // Deterministic pseudo-noise, ±5.
                            let h = ((r * 131 + c * 31 + ch * 7 + k) as u64)
                                .wrapping_mul(0x9e37_79b9_7f4a_7c15);
                            at(ri, ci, ch) + ((h >> 40) % 11) as f32 - 5.0
                        }
                        "shift" => {
                            let (dr, dc) =
                                [(1, 0), (0, 2), (2, 2), (-3, 1), (4, -4), (-2, 3)][k % 6];
                            at(ri - dr, ci - dc, ch)
                        }
                        "crop_resize" => {
                            // Crop s·96 pixels at an offset and resize back (bilinear).
                            let s = [0.97f32, 0.95, 0.94][k % 3];
                            let off = (1.0 - s) * 96.0 * [0.0f32, 0.5, 1.0][k / 3 % 3];
                            let (y, x) = (r as f32 * s + off, c as f32 * s + off);
                            let (y0, x0) = (y.floor(), x.floor());
                            let (fy, fx) = (y - y0, x - x0);
                            let (y0, x0) = (y0 as isize, x0 as isize);
                            at(y0, x0, ch) * (1.0 - fy) * (1.0 - fx)
                                + at(y0, x0 + 1, ch) * (1.0 - fy) * fx
                                + at(y0 + 1, x0, ch) * fy * (1.0 - fx)
                                + at(y0 + 1, x0 + 1, ch) * fy * fx
                        }
                        _ => unreachable!("{how}"),
                    };
                    out[(r * TILE + c) * CHANNELS + ch] = v.round().clamp(0.0, 255.0) as u8;
                }
            }
        }
        out
    }

    pub(crate) const TRANSFORMS: [&str; 7] = [
        "dihedral",
        "brightness",
        "contrast",
        "colour",
        "noise",
        "shift",
        "crop_resize",
    ];

    fn facts(t: &[u8]) -> (Hashes, Thumb) {
        let (h, _, th) = of_tile(t);
        (h, th)
    }

    #[test]
    fn every_orientation_matches_exactly() {
        let a = facts(&rendered(1));
        for k in 0..7 {
            let b = facts(&transformed(&rendered(1), "dihedral", k));
            assert_eq!(distance(&a.0, &b.0), 0, "orientation {}", k + 1);
            let c = thumb_correlation((&a.0, &a.1), (&b.0, &b.1));
            assert!(c > 0.999, "orientation {}: {c}", k + 1);
        }
    }

    #[test]
    fn copies_under_every_transform_pass_both_thresholds_with_margin() {
        // Calibration on pcam's own tiles: 60 tiles per transform gave distances of at
        // most 6 and correlations of at least 0.934 (shift, crop-and-resize; 0.999 for
        // the others).
        for how in TRANSFORMS {
            for i in 0..24 {
                let a = facts(&rendered(i));
                let b = facts(&transformed(&rendered(i), how, i));
                let d = distance(&a.0, &b.0);
                assert!(d <= DEFAULT_DISTANCE, "{how} tile {i}: distance {d}");
                let c = thumb_correlation((&a.0, &a.1), (&b.0, &b.1));
                assert!(
                    c >= DEFAULT_MIN_CORRELATION + 0.02,
                    "{how} tile {i}: correlation {c}"
                );
            }
        }
    }

    #[test]
    fn distinct_rendered_tiles_are_not_confirmed() {
        // Calibration: of 80,000 pairs of distinct rendered tiles one came within distance
        // 6, and the largest correlation of any pair within distance 12 was 0.83.
        let n = 160;
        let f: Vec<(Hashes, Thumb)> = (0..n).map(|i| facts(&rendered(2000 + i))).collect();
        for i in 0..n {
            for j in i + 1..n {
                if distance(&f[i].0, &f[j].0) <= 12 {
                    let c = thumb_correlation((&f[i].0, &f[i].1), (&f[j].0, &f[j].1));
                    assert!(c < DEFAULT_MIN_CORRELATION - 0.03, "tiles {i}, {j}: {c}");
                }
            }
        }
    }

    #[test]
    fn the_index_finds_every_pair_within_the_guaranteed_distance() {
        // Random hashes plus planted neighbours at distances 0..=7 from a shifted or
        // zoomed crop of another tile.
        let mut x = 0x9e3779b97f4a7c15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut hs: Vec<Hashes> = (0..2000)
            .map(|_| Hashes {
                oriented: std::array::from_fn(|_| next()),
                shifted: std::array::from_fn(|_| next()),
            })
            .collect();
        for d in 0..=MAX_DISTANCE {
            let slot = (d as usize * 5) % VARIANTS;
            let mut h = hs[d as usize].shifted[slot];
            for bit in 0..d {
                h ^= 1 << (bit * 9 % 64);
            }
            let mut planted = Hashes {
                oriented: std::array::from_fn(|_| next()),
                shifted: std::array::from_fn(|_| next()),
            };
            planted.oriented[(d as usize) % 8] = h;
            hs.push(planted);
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
