//! Renders one synthetic H&E tile. Stain densities (haematoxylin H, eosin E) are
//! painted as fields — stroma texture, fat holes, nuclei — and turned into RGB with the
//! Beer–Lambert law and per-slide stain vectors, so colour varies by slide the way it
//! does between real scanners and labs. Tumour nuclei are larger, darker, crowded and
//! irregular; a tile is positive iff a tumour nucleus reaches the centre 32×32, and
//! some negatives carry tumour only in the outer ring.

use super::super::{CHANNELS, TILE, TILE_BYTES};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// The centre region that decides the label: pixels [32, 64) on both axes.
pub const CENTRE: std::ops::Range<f32> = 32.0..64.0;

/// Scanner/stain appearance of one slide.
#[derive(Debug, Clone)]
pub struct Slide {
    pub name: String,
    /// Whether the slide contains tumour (only tumour slides give positive tiles).
    pub tumour: bool,
    h_od: [f32; 3],
    e_od: [f32; 3],
    background: [f32; 3],
    eosin: f32,
}

impl Slide {
    /// Draws a slide's stain parameters.
    pub fn draw(name: String, tumour: bool, rng: &mut ChaCha8Rng) -> Slide {
        // Ruifrok–Johnston optical-density vectors, jittered per slide.
        let jitter = |v: [f32; 3], rng: &mut ChaCha8Rng, a: f32| {
            let s: f32 = rng.random_range(0.75..1.25);
            [
                (v[0] + rng.random_range(-a..a)).max(0.02) * s,
                (v[1] + rng.random_range(-a..a)).max(0.02) * s,
                (v[2] + rng.random_range(-a..a)).max(0.02) * s,
            ]
        };
        let h_od = jitter([0.65, 0.70, 0.29], rng, 0.08);
        let e_od = jitter([0.07, 0.99, 0.11], rng, 0.06);
        let b: f32 = rng.random_range(228.0..250.0);
        let background = [
            b + rng.random_range(-4.0..6.0),
            b - rng.random_range(4.0..14.0),
            b + rng.random_range(-3.0..5.0),
        ];
        Slide {
            name,
            tumour,
            h_od,
            e_od,
            background,
            eosin: rng.random_range(0.35..0.75),
        }
    }
}

/// What kind of tile to draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Tumour reaching the centre 32×32.
    Positive,
    /// Tumour only in the outer ring: negative by the PCAM rule.
    RingTumour,
    /// No tumour.
    Normal,
}

impl Kind {
    /// The first draw of a tile's stream, so it can be known without rendering.
    pub fn draw(rng: &mut ChaCha8Rng) -> Kind {
        let u: f32 = rng.random();
        if u < 0.5 {
            Kind::Positive
        } else if u < 0.68 {
            Kind::RingTumour
        } else {
            Kind::Normal
        }
    }
}

/// Ground truth of a rendered tile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Truth {
    /// PCAM label: a tumour nucleus reaches the centre 32×32.
    pub centre_tumour: bool,
    /// Any tumour anywhere in the tile.
    pub tumour: bool,
}

struct Nucleus {
    x: f32,
    y: f32,
    r: f32,
    aspect: f32,
    angle: f32,
    dark: f32,
    /// Radial harmonics that make tumour nuclei irregular.
    wobble: [f32; 4],
    nucleolus: bool,
}

impl Nucleus {
    fn reach(&self) -> f32 {
        self.r * self.aspect.max(1.0) * (1.0 + self.wobble[0].abs() + self.wobble[2].abs()) + 1.0
    }

    /// Whether any pixel of the nucleus can fall in the centre region.
    fn touches_centre(&self) -> bool {
        let k = self.reach();
        self.x + k > CENTRE.start
            && self.x - k < CENTRE.end
            && self.y + k > CENTRE.start
            && self.y - k < CENTRE.end
    }

    /// Whether the nucleus centre lies in the centre region (used for positives).
    fn centre_in_centre(&self) -> bool {
        CENTRE.contains(&self.x) && CENTRE.contains(&self.y)
    }
}

/// Bilinear value noise on a `g`×`g` grid, sampled at every pixel.
fn value_noise(rng: &mut ChaCha8Rng, g: usize, out: &mut [f32]) {
    let grid: Vec<f32> = (0..g * g).map(|_| rng.random::<f32>()).collect();
    let scale = (g - 1) as f32 / (TILE - 1) as f32;
    for y in 0..TILE {
        let fy = y as f32 * scale;
        let y0 = (fy as usize).min(g - 2);
        let ty = fy - y0 as f32;
        for x in 0..TILE {
            let fx = x as f32 * scale;
            let x0 = (fx as usize).min(g - 2);
            let tx = fx - x0 as f32;
            let a = grid[y0 * g + x0] * (1.0 - tx) + grid[y0 * g + x0 + 1] * tx;
            let b = grid[(y0 + 1) * g + x0] * (1.0 - tx) + grid[(y0 + 1) * g + x0 + 1] * tx;
            out[y * TILE + x] += a * (1.0 - ty) + b * ty;
        }
    }
}

fn paint_nucleus(n: &Nucleus, h: &mut [f32], e: &mut [f32], rng: &mut ChaCha8Rng) {
    let k = n.reach();
    let (x0, x1) = (
        (n.x - k).floor().max(0.0) as usize,
        ((n.x + k).ceil() as usize).min(TILE),
    );
    let (y0, y1) = (
        (n.y - k).floor().max(0.0) as usize,
        ((n.y + k).ceil() as usize).min(TILE),
    );
    let (s, c) = n.angle.sin_cos();
    let irregular = n.wobble.iter().any(|w| *w != 0.0);
    for py in y0..y1 {
        for px in x0..x1 {
            let dx = px as f32 + 0.5 - n.x;
            let dy = py as f32 + 0.5 - n.y;
            let u = (dx * c + dy * s) / (n.r * n.aspect);
            let v = (-dx * s + dy * c) / n.r;
            let mut d = (u * u + v * v).sqrt();
            if irregular {
                let t = v.atan2(u);
                d /= 1.0
                    + n.wobble[0] * (2.0 * t + n.wobble[1]).cos()
                    + n.wobble[2] * (3.0 * t + n.wobble[3]).cos();
            }
            if d < 1.15 {
                // Soft edge over the last ~15% of the radius, speckled chromatin inside.
                let edge = ((1.15 - d) / 0.3).min(1.0);
                let grain = 0.8 + 0.4 * rng.random::<f32>();
                let mut val = n.dark * edge * grain;
                if n.nucleolus && d < 0.28 {
                    val *= 1.35;
                }
                let i = py * TILE + px;
                if val > h[i] {
                    h[i] = val;
                }
                e[i] *= 0.6;
            }
        }
    }
}

/// Renders one tile of `kind` on `slide` into `out` (96×96×3 u8) and returns its truth.
pub fn render(kind: Kind, slide: &Slide, rng: &mut ChaCha8Rng, out: &mut [u8]) -> Truth {
    debug_assert_eq!(out.len(), TILE_BYTES);
    let n = TILE * TILE;
    let mut e = vec![0.0f32; n];
    let mut h = vec![0.0f32; n];

    // Stroma: two octaves of value noise, shaped into fibrous pink.
    value_noise(rng, 5, &mut e);
    let mut fine = vec![0.0f32; n];
    value_noise(rng, 13, &mut fine);
    let tissue_edge: f32 = rng.random_range(-0.6..0.25);
    for i in 0..n {
        let s = 0.55 * e[i] + 0.45 * fine[i] + tissue_edge;
        e[i] = slide.eosin * (0.25 + 0.9 * s.clamp(0.0, 1.0));
    }

    // Fat holes: empty white ellipses with a thin eosin membrane.
    let holes = rng.random_range(0..3);
    for _ in 0..holes {
        let (cx, cy): (f32, f32) = (rng.random_range(0.0..96.0), rng.random_range(0.0..96.0));
        let (rx, ry): (f32, f32) = (rng.random_range(6.0..18.0), rng.random_range(6.0..18.0));
        for y in span(cy, ry) {
            for x in span(cx, rx) {
                let d = ((x as f32 - cx) / rx).powi(2) + ((y as f32 - cy) / ry).powi(2);
                if d < 1.0 {
                    e[y * TILE + x] = if d > 0.85 { slide.eosin * 0.9 } else { 0.0 };
                }
            }
        }
    }

    // Tumour cluster placement.
    let tumour_cluster = match kind {
        Kind::Normal => None,
        // Anywhere in the tile: a cluster centred near an edge reaches the centre with only
        // a few cells (the forced nucleus below), which makes hard positives.
        Kind::Positive => Some((
            rng.random_range(10.0..86.0f32),
            rng.random_range(10.0..86.0f32),
            rng.random_range(10.0..28.0f32),
        )),
        Kind::RingTumour => {
            // A corner or edge band well away from the centre region.
            let side = rng.random_range(0..4);
            let along: f32 = rng.random_range(0.0..96.0);
            let depth: f32 = rng.random_range(2.0..10.0);
            let (x, y) = match side {
                0 => (along, depth),
                1 => (along, 95.0 - depth),
                2 => (depth, along),
                _ => (95.0 - depth, along),
            };
            // depth + radius < 32 keeps the whole cluster, cytoplasm included, out of the centre.
            Some((x, y, rng.random_range(10.0..18.0f32)))
        }
    };

    // Lymphocytes and stromal nuclei: small, round, evenly dark; fewer inside tumour.
    // Some tiles also hold a lymphoid aggregate — a crowded, dark patch of small normal
    // nuclei that may sit in the centre: dark is not the same as tumour.
    let aggregate = (rng.random::<f32>() < 0.35).then(|| {
        (
            rng.random_range(16.0..80.0f32),
            rng.random_range(16.0..80.0f32),
            rng.random_range(10.0..22.0f32),
        )
    });
    let scattered = rng.random_range(25..75);
    let crowded = if aggregate.is_some() {
        rng.random_range(60..130)
    } else {
        0
    };
    for k in 0..scattered + crowded {
        let (x, y): (f32, f32) = match aggregate {
            Some((ax, ay, ar)) if k >= scattered => {
                let a: f32 = rng.random_range(0.0..std::f32::consts::TAU);
                let rr = ar * rng.random::<f32>().sqrt();
                (ax + rr * a.cos(), ay + rr * a.sin())
            }
            _ => (rng.random_range(0.0..96.0), rng.random_range(0.0..96.0)),
        };
        if let Some((cx, cy, r)) = tumour_cluster {
            if (x - cx).powi(2) + (y - cy).powi(2) < r * r && rng.random::<f32>() < 0.8 {
                continue;
            }
        }
        let nuc = Nucleus {
            x,
            y,
            r: rng.random_range(1.8..3.2),
            aspect: rng.random_range(0.85..1.25),
            angle: rng.random_range(0.0..std::f32::consts::PI),
            dark: rng.random_range(0.9..1.5),
            wobble: [0.0; 4],
            nucleolus: false,
        };
        paint_nucleus(&nuc, &mut h, &mut e, rng);
    }

    let mut truth = Truth {
        centre_tumour: false,
        tumour: false,
    };
    if let Some((cx, cy, r)) = tumour_cluster {
        let count = rng.random_range(14..34);
        let mut placed = Vec::with_capacity(count + 1);
        for _ in 0..count {
            let a: f32 = rng.random_range(0.0..std::f32::consts::TAU);
            let rr = r * rng.random::<f32>().sqrt();
            placed.push(tumour_nucleus(cx + rr * a.cos(), cy + rr * a.sin(), rng));
        }
        if kind == Kind::Positive && !placed.iter().any(|n| n.centre_in_centre()) {
            let (x, y) = (rng.random_range(36.0..60.0), rng.random_range(36.0..60.0));
            placed.push(tumour_nucleus(x, y, rng));
        }
        for nuc in &placed {
            let inside = nuc.x > -4.0 && nuc.x < 100.0 && nuc.y > -4.0 && nuc.y < 100.0;
            if !inside || (kind == Kind::RingTumour && nuc.touches_centre()) {
                continue;
            }
            paint_nucleus(nuc, &mut h, &mut e, rng);
            truth.tumour = true;
            truth.centre_tumour |= nuc.touches_centre();
        }
        // Tumour cytoplasm is denser and more purple than stroma.
        for y in span(cy, r) {
            for x in span(cx, r) {
                let d2 = (x as f32 - cx).powi(2) + (y as f32 - cy).powi(2);
                if d2 < r * r {
                    let i = y * TILE + x;
                    h[i] += 0.12;
                    e[i] = e[i].max(slide.eosin * 0.8);
                }
            }
        }
    }

    // Beer–Lambert: intensity = background · exp(−(H·h_od + E·e_od)), plus sensor noise.
    let lut = exp_lut();
    let mut noise = [0u8; 64];
    for (i, px) in out.chunks_exact_mut(CHANNELS).enumerate() {
        if i % 64 == 0 {
            rng.fill(&mut noise[..]);
        }
        let nz = (noise[i % 64] as f32 - 127.5) * (0.05 / 127.5);
        for (ch, p) in px.iter_mut().enumerate() {
            let od = h[i] * slide.h_od[ch] + e[i] * slide.e_od[ch] + nz;
            let k = ((od * LUT_SCALE) as usize).min(LUT_LEN - 1);
            *p = (slide.background[ch] * lut[k]).clamp(0.0, 255.0) as u8;
        }
    }
    truth
}

/// Optical densities are looked up, not exponentiated: 1/512 steps up to OD 16 change an
/// intensity by at most 0.5 grey levels.
const LUT_SCALE: f32 = 512.0;
const LUT_LEN: usize = 16 * 512;

fn exp_lut() -> &'static [f32; LUT_LEN] {
    static LUT: std::sync::OnceLock<Box<[f32; LUT_LEN]>> = std::sync::OnceLock::new();
    LUT.get_or_init(|| {
        let mut t = Box::new([0.0f32; LUT_LEN]);
        for (k, v) in t.iter_mut().enumerate() {
            *v = (-((k as f32 + 0.5) / LUT_SCALE)).exp();
        }
        t
    })
}

/// Pixel rows or columns within `radius` of `centre`, clipped to the tile.
fn span(centre: f32, radius: f32) -> std::ops::Range<usize> {
    let lo = (centre - radius).floor().max(0.0) as usize;
    let hi = ((centre + radius).ceil() + 1.0).clamp(0.0, TILE as f32) as usize;
    lo.min(hi)..hi
}

fn tumour_nucleus(x: f32, y: f32, rng: &mut ChaCha8Rng) -> Nucleus {
    Nucleus {
        x,
        y,
        r: rng.random_range(3.5..6.0),
        aspect: rng.random_range(0.8..1.5),
        angle: rng.random_range(0.0..std::f32::consts::PI),
        dark: rng.random_range(1.1..1.9),
        wobble: [
            rng.random_range(-0.18..0.18),
            rng.random_range(0.0..std::f32::consts::TAU),
            rng.random_range(-0.12..0.12),
            rng.random_range(0.0..std::f32::consts::TAU),
        ],
        nucleolus: rng.random::<f32>() < 0.7,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seed::Seeds;

    fn tile(kind: Kind, i: u64) -> (Vec<u8>, Truth) {
        let s = Seeds::new(3);
        let slide = Slide::draw("s".into(), true, &mut s.stream("slide", 0));
        let mut out = vec![0u8; TILE_BYTES];
        let t = render(kind, &slide, &mut s.stream("tile", i), &mut out);
        (out, t)
    }

    #[test]
    fn label_follows_the_centre_rule_for_every_kind() {
        for i in 0..40 {
            assert!(tile(Kind::Positive, i).1.centre_tumour);
            let ring = tile(Kind::RingTumour, i).1;
            assert!(!ring.centre_tumour);
            assert!(!tile(Kind::Normal, i).1.tumour);
        }
        assert!((0..40).any(|i| tile(Kind::RingTumour, i).1.tumour));
    }

    #[test]
    fn tiles_look_like_stained_tissue() {
        let (px, _) = tile(Kind::Positive, 1);
        let mean = |c: usize| px.iter().skip(c).step_by(3).map(|&v| v as f64).sum::<f64>() / 9216.0;
        let (r, g, b) = (mean(0), mean(1), mean(2));
        // H&E: green is absorbed most by both stains, so it is the darkest channel.
        assert!(g < r && g < b, "rgb means {r:.0} {g:.0} {b:.0}");
        assert!(px.iter().any(|&v| v < 120) && px.iter().any(|&v| v > 200));
    }

    #[test]
    fn rendering_is_a_pure_function_of_the_stream() {
        assert_eq!(tile(Kind::Positive, 5).0, tile(Kind::Positive, 5).0);
        assert_ne!(tile(Kind::Positive, 5).0, tile(Kind::Positive, 6).0);
    }
}
