//! Small artefacts that stained tissue cannot make, found without knowing their shape
//! (the backdoor trigger of a poisoned copy, a pen mark, a stamp). Three pixel-level
//! tests mark candidate pixels, then 8-connected regions of marked pixels are measured:
//!
//! - **implausible colour**: haematoxylin and eosin absorb green most (or, for dense
//!   haematoxylin, red and green), so in a stained pixel green is the darkest channel or
//!   close to it, red and blue stay within the stains' ratios, and no pixel is black in
//!   every channel (blue is hardly absorbed). Greens, cyans, yellows, oranges, pure reds,
//!   pure blues and black break one of these rules, and so does any fully saturated
//!   colour (one channel near 0, another near 255: no dye leaves one band untouched
//!   while absorbing another completely);
//! - **black next to white**: adjacent near-black / near-white pixels (checkerboards,
//!   stripes);
//! - **flat stamps**: a region of exactly one colour — a filled axis-aligned rectangle of
//!   at least 3×3, or any shape of at least 20 pixels — whose every neighbouring pixel
//!   differs from it: a stamp with sharp edges. Flat spots of rendered background
//!   continue into pixels of their own colour (or stay small).
//!
//! Marked pixels at most 2 apart form one region, so a dashed or striped mark is one.
//!
//! The rules were fixed on pcam's own synthetic tiles (one candidate, a flat background
//! spot, in 6,000 clean rendered tiles; margins stated at each constant) and are scored on tiles from an
//! independent generator (`tests/independent/`), which they were not fitted to.

use crate::data::{CHANNELS, TILE};
use serde::Serialize;

/// Near-black: every channel at most this (no stained pixel is this dark in blue).
pub const BLACK: u8 = 30;
/// Near-white: every channel at least this.
pub const WHITE: u8 = 225;
/// A pixel is coloured when its largest and smallest channel differ by this much …
const CHROMA: i32 = 60;
/// … and then implausible when green exceeds the smaller of red and blue by this much
/// (rendered stains: at most 6).
const GREEN_ABOVE: i32 = 30;
/// Implausible when red exceeds blue by this much (rendered stains: at most 26) …
const RED_ABOVE_BLUE: i32 = 100;
/// … or blue exceeds red by this much (rendered stains: at most 103).
const BLUE_ABOVE_RED: i32 = 130;
/// Implausible when the largest and smallest channel differ by this much: no stain
/// leaves one band untouched while absorbing another completely (rendered stains: at
/// most 155).
const SATURATED: i32 = 200;
/// Smallest side of a flat rectangle.
const FLAT_MIN_SIDE: usize = 3;
/// A flat region of another shape (a disc, a thick line) counts from this many pixels
/// (enclosed flat spots of rendered tissue: at most 16 pixels in 3,000 tiles).
const FLAT_MIN_ENCLOSED: usize = 20;
/// Every pixel around a flat region differs from its colour by at least this much in
/// some channel.
const FLAT_EDGE: i32 = 3;
/// Regions whose box is larger than this on a side are not kept as candidates.
pub const MAX_CANDIDATE_SIDE: usize = 32;

/// What marked an artefact's pixels (bits).
pub const CAUSE_COLOUR: u8 = 1;
pub const CAUSE_BLACK_WHITE: u8 = 2;
pub const CAUSE_FLAT_STAMP: u8 = 4;

/// The largest candidate region of a tile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Artefact {
    /// Bounding box, inclusive: row0, col0, row1, col1.
    pub bbox: [u8; 4],
    /// Marked pixels in the region.
    pub pixels: u16,
    /// [`CAUSE_COLOUR`] | [`CAUSE_BLACK_WHITE`] | [`CAUSE_FLAT_STAMP`].
    pub causes: u8,
    /// FNV-1a hash of the region's pixels (the box's RGB values): the same stamp in many
    /// tiles has the same hash.
    pub stamp: u64,
}

impl Artefact {
    /// Height and width of the box.
    pub fn size(&self) -> (usize, usize) {
        (
            (self.bbox[2] - self.bbox[0]) as usize + 1,
            (self.bbox[3] - self.bbox[1]) as usize + 1,
        )
    }

    /// The causes as words.
    pub fn cause_names(&self) -> Vec<&'static str> {
        [
            (CAUSE_COLOUR, "implausible colour"),
            (CAUSE_BLACK_WHITE, "black next to white"),
            (CAUSE_FLAT_STAMP, "flat stamp"),
        ]
        .into_iter()
        .filter(|(b, _)| self.causes & b != 0)
        .map(|(_, n)| n)
        .collect()
    }
}

fn px(tile: &[u8], r: usize, c: usize) -> [i32; 3] {
    let o = (r * TILE + c) * CHANNELS;
    [tile[o] as i32, tile[o + 1] as i32, tile[o + 2] as i32]
}

/// Whether a pixel's colour is one that haematoxylin and eosin cannot produce.
pub fn implausible_colour([r, g, b]: [i32; 3]) -> bool {
    let (max, min) = (r.max(g).max(b), r.min(g).min(b));
    near_black([r, g, b])
        || (max - min >= CHROMA && g >= r.min(b) + GREEN_ABOVE)
        || r - b >= RED_ABOVE_BLUE
        || b - r >= BLUE_ABOVE_RED
        || max - min >= SATURATED
}

fn near_black(p: [i32; 3]) -> bool {
    p.iter().all(|&v| v <= BLACK as i32)
}

fn near_white(p: [i32; 3]) -> bool {
    p.iter().all(|&v| v >= WHITE as i32)
}

const N: usize = TILE * TILE;

/// Regions of `mask` whose pixels are at most `reach` apart on each axis (1: 8-connected;
/// 2: a one-pixel gap does not split a dashed or striped mark) and `joins` each other:
/// calls `f(pixels)` with each region's pixel indices.
fn regions(
    mask: &[bool],
    reach: isize,
    joins: &dyn Fn(usize, usize) -> bool,
    seen: &mut [bool],
    f: &mut dyn FnMut(&[usize]),
) {
    let mut stack: Vec<usize> = Vec::new();
    let mut region: Vec<usize> = Vec::new();
    for start in 0..N {
        if !mask[start] || seen[start] {
            continue;
        }
        region.clear();
        seen[start] = true;
        stack.push(start);
        while let Some(k) = stack.pop() {
            region.push(k);
            let (r, c) = ((k / TILE) as isize, (k % TILE) as isize);
            for dr in -reach..=reach {
                for dc in -reach..=reach {
                    let (nr, nc) = (r + dr, c + dc);
                    if (0..TILE as isize).contains(&nr) && (0..TILE as isize).contains(&nc) {
                        let n = nr as usize * TILE + nc as usize;
                        if mask[n] && !seen[n] && joins(k, n) {
                            seen[n] = true;
                            stack.push(n);
                        }
                    }
                }
            }
        }
        f(&region);
    }
}

fn bbox(region: &[usize]) -> [usize; 4] {
    region.iter().fold([TILE, TILE, 0, 0], |b, &k| {
        let (r, c) = (k / TILE, k % TILE);
        [b[0].min(r), b[1].min(c), b[2].max(r), b[3].max(c)]
    })
}

/// Whether the flat region `region` (one colour) is stamped: a filled rectangle of at
/// least [`FLAT_MIN_SIDE`] on each side, or any shape of at least [`FLAT_MIN_ENCLOSED`]
/// pixels, whose every neighbouring pixel (8 directions) differs from its colour (its own
/// pixels are the flat ones of its colour).
fn stamped(tile: &[u8], region: &[usize], flat: &[bool]) -> bool {
    let [r0, c0, r1, c1] = bbox(region);
    let (h, w) = (r1 - r0 + 1, c1 - c0 + 1);
    let rectangle = h >= FLAT_MIN_SIDE && w >= FLAT_MIN_SIDE && region.len() == h * w;
    if !rectangle && region.len() < FLAT_MIN_ENCLOSED {
        return false;
    }
    let colour = px(tile, region[0] / TILE, region[0] % TILE);
    region.iter().all(|&k| {
        let (r, c) = ((k / TILE) as isize, (k % TILE) as isize);
        (-1..=1isize).all(|dr| {
            (-1..=1isize).all(|dc| {
                let (nr, nc) = (r + dr, c + dc);
                if !(0..TILE as isize).contains(&nr) || !(0..TILE as isize).contains(&nc) {
                    return true;
                }
                let n = nr as usize * TILE + nc as usize;
                let p = px(tile, nr as usize, nc as usize);
                (flat[n] && p == colour) || (0..3).any(|ch| (p[ch] - colour[ch]).abs() >= FLAT_EDGE)
            })
        })
    })
}

/// The largest candidate artefact of a (96, 96, 3) u8 tile, if any pixel is marked.
pub fn find(tile: &[u8]) -> Option<Artefact> {
    let mut cause = vec![0u8; N];
    let mut flat = vec![false; N];
    let mut any = false;
    let row = TILE * CHANNELS;
    for r in 0..TILE {
        for c in 0..TILE {
            let k = r * TILE + c;
            let o = k * CHANNELS;
            let p = &tile[o..o + CHANNELS];
            let v = [p[0] as i32, p[1] as i32, p[2] as i32];
            if implausible_colour(v) {
                cause[k] |= CAUSE_COLOUR;
                any = true;
            }
            // A 2×2 block of one colour (most pixels differ from the right one at once).
            if r + 1 < TILE
                && c + 1 < TILE
                && p == &tile[o + CHANNELS..o + 2 * CHANNELS]
                && p == &tile[o + row..o + row + CHANNELS]
                && p == &tile[o + row + CHANNELS..o + row + 2 * CHANNELS]
            {
                for n in [k, k + 1, k + TILE, k + TILE + 1] {
                    flat[n] = true;
                }
                any = true;
            }
            let (black, white) = (near_black(v), near_white(v));
            if black || white {
                for (nr, nc) in [(r, c + 1), (r + 1, c)] {
                    if nr < TILE && nc < TILE {
                        let q = px(tile, nr, nc);
                        if (black && near_white(q)) || (white && near_black(q)) {
                            cause[k] |= CAUSE_BLACK_WHITE;
                            cause[nr * TILE + nc] |= CAUSE_BLACK_WHITE;
                            any = true;
                        }
                    }
                }
            }
        }
    }
    if !any {
        return None;
    }
    // Flat regions of one colour that are stamped rectangles.
    let mut seen = vec![false; N];
    let mut flat_one_colour = vec![false; N];
    // Flat pixels of one colour form a region: two touching flat patches of different
    // colours (a two-colour stamp) are two.
    let colour_of = |k: usize| px(tile, k / TILE, k % TILE);
    regions(
        &flat,
        1,
        &|a, b| colour_of(a) == colour_of(b),
        &mut seen,
        &mut |piece| {
            if stamped(tile, piece, &flat) {
                for &k in piece {
                    flat_one_colour[k] = true;
                }
            }
        },
    );
    for k in 0..N {
        if flat_one_colour[k] {
            cause[k] |= CAUSE_FLAT_STAMP;
        }
    }
    let marked: Vec<bool> = cause.iter().map(|&c| c != 0).collect();
    let mut seen = vec![false; N];
    let mut best: Option<Artefact> = None;
    regions(&marked, 2, &|_, _| true, &mut seen, &mut |region| {
        let b = bbox(region);
        if b[2] - b[0] + 1 > MAX_CANDIDATE_SIDE || b[3] - b[1] + 1 > MAX_CANDIDATE_SIDE {
            return;
        }
        if best.is_some_and(|a| a.pixels as usize >= region.len()) {
            return;
        }
        let causes = region.iter().fold(0u8, |acc, &k| acc | cause[k]);
        let mut stamp = 0xcbf2_9ce4_8422_2325u64;
        for r in b[0]..=b[2] {
            for c in b[1]..=b[3] {
                for v in px(tile, r, c) {
                    stamp = (stamp ^ v as u64).wrapping_mul(0x0100_0000_01b3);
                }
            }
        }
        best = Some(Artefact {
            bbox: b.map(|v| v as u8),
            pixels: region.len() as u16,
            causes,
            stamp,
        });
    });
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::TILE_BYTES;

    /// pcam's own rendered tiles (the `pcam` variant's train stream).
    fn rendered(i: usize) -> Vec<u8> {
        crate::data::synth::render_tile_for_bench(7, i)
    }

    fn stamp(
        tile: &mut [u8],
        r0: usize,
        c0: usize,
        h: usize,
        w: usize,
        f: impl Fn(usize, usize) -> Option<[u8; 3]>,
    ) {
        for r in r0..r0 + h {
            for c in c0..c0 + w {
                if let Some(v) = f(r - r0, c - c0) {
                    let o = (r * TILE + c) * CHANNELS;
                    tile[o..o + 3].copy_from_slice(&v);
                }
            }
        }
    }

    #[test]
    #[ignore = "slow: the calibration run over 6,000 rendered tiles (make test-slow)"]
    fn rendered_tiles_almost_never_have_a_candidate() {
        // Measured: 1 of 6,000 (a 4×3 flat background spot enclosed by stained pixels).
        let found: Vec<usize> = (0..6000)
            .filter(|&i| find(&rendered(i)).is_some())
            .collect();
        assert!(
            found.len() <= 3,
            "{} of 6,000 rendered tiles: {found:?}",
            found.len()
        );
    }

    #[test]
    fn rendered_tissue_has_no_candidate() {
        // The rules' margins were measured on 6,000 such tiles; 300 keep the test quick.
        for i in 0..300 {
            let t = rendered(i);
            assert_eq!(t.len(), TILE_BYTES);
            assert_eq!(find(&t), None, "rendered tile {i}");
        }
    }

    #[test]
    fn stamps_of_many_shapes_and_colours_are_found_with_their_box() {
        type Shape = Box<dyn Fn(usize, usize) -> Option<[u8; 3]>>;
        let shapes: Vec<(&str, usize, Shape)> = vec![
            ("white square", 3, Box::new(|_, _| Some([255, 255, 255]))),
            ("grey square", 5, Box::new(|_, _| Some([200, 200, 200]))),
            ("green square", 4, Box::new(|_, _| Some([20, 210, 40]))),
            ("black square", 6, Box::new(|_, _| Some([0, 0, 0]))),
            (
                "yellow/blue checker",
                8,
                Box::new(|r, c| {
                    Some(if (r + c) % 2 == 0 {
                        [250, 240, 0]
                    } else {
                        [0, 0, 250]
                    })
                }),
            ),
            (
                "black/white stripes",
                10,
                Box::new(|r, _| {
                    Some(if r % 2 == 0 {
                        [0, 0, 0]
                    } else {
                        [255, 255, 255]
                    })
                }),
            ),
            (
                "cyan plus",
                9,
                Box::new(|r, c| (r == 4 || c == 4).then_some([0, 230, 230])),
            ),
            (
                "magenta ring",
                14,
                Box::new(|r, c| {
                    let d = ((r as f32 - 6.5).powi(2) + (c as f32 - 6.5).powi(2)).sqrt();
                    (5.0..7.0).contains(&d).then_some([255, 0, 255])
                }),
            ),
            (
                "white disc",
                13,
                Box::new(|r, c| {
                    let d = ((r as f32 - 6.0).powi(2) + (c as f32 - 6.0).powi(2)).sqrt();
                    (d < 6.5).then_some([255, 255, 255])
                }),
            ),
            (
                "dashed green lines",
                9,
                Box::new(|r, c| {
                    Some(if r % 2 == 0 && c < 4 {
                        [0, 255, 128]
                    } else if c < 4 {
                        [255, 255, 255]
                    } else {
                        return None;
                    })
                }),
            ),
            (
                "orange ring",
                12,
                Box::new(|r, c| {
                    let d = ((r as f32 - 5.5).powi(2) + (c as f32 - 5.5).powi(2)).sqrt();
                    (4.0..6.0).contains(&d).then_some([255, 140, 0])
                }),
            ),
        ];
        for (k, (name, side, f)) in shapes.iter().enumerate() {
            for (r0, c0) in [(0, 0), (40, 40), (96 - side, 96 - side), (10, 70)] {
                let mut t = rendered(1000 + k);
                stamp(&mut t, r0, c0, *side, *side, f);
                let a = find(&t).unwrap_or_else(|| panic!("{name} at {r0},{c0}: not found"));
                let [br0, bc0, br1, bc1] = a.bbox.map(|v| v as usize);
                assert!(
                    br0 >= r0 && bc0 >= c0 && br1 < r0 + side && bc1 < c0 + side,
                    "{name} at {r0},{c0}: box {:?} outside the stamp",
                    a.bbox
                );
                assert!(a.pixels >= 5, "{name}: {} pixels", a.pixels);
            }
        }
    }

    #[test]
    fn stain_colours_are_plausible_and_others_are_not() {
        for p in [
            [230, 150, 200],
            [90, 40, 140],
            [60, 20, 120],
            [245, 235, 242],
            [203, 10, 179],
            [128, 128, 128],
        ] {
            assert!(!implausible_colour(p), "{p:?}");
        }
        for p in [
            [0, 255, 0],
            [0, 255, 255],
            [255, 255, 0],
            [0, 0, 255],
            [255, 128, 0],
            [255, 0, 0],
            [10, 10, 10],
        ] {
            assert!(implausible_colour(p), "{p:?}");
        }
    }
}
