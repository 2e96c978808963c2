//! Figures: a plotters chart drawn into an RGB bitmap with the embedded DejaVu Sans font
//! (so text renders the same on every machine), encoded once as PNG. The same bytes are
//! shown inline in evcxr and saved as `assets/<name>.png`.

use super::derived::Values;
use super::{check_name, evcxr_emit, write_asset, Assets};
use crate::error::{Error, Result};
use plotters::coord::Shift;
use plotters::prelude::{BitMapBackend, DrawingArea, IntoDrawingArea};
use std::path::PathBuf;

/// DejaVu Sans, embedded (licence beside it in `src/report/fonts/`).
static FONT: &[u8] = include_bytes!("fonts/DejaVuSans.ttf");

/// Registers the embedded font under the family names charts use; idempotent.
fn ensure_fonts() -> Result<()> {
    static DONE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let ok = *DONE.get_or_init(|| {
        ["sans-serif", "serif", "monospace"].iter().all(|family| {
            [
                plotters::style::FontStyle::Normal,
                plotters::style::FontStyle::Bold,
            ]
            .into_iter()
            .all(|style| plotters::style::register_font(family, style, FONT).is_ok())
        })
    });
    if ok {
        Ok(())
    } else {
        Err(Error::failed(
            "loading the embedded font",
            "not a usable TrueType font",
        ))
    }
}

/// A rendered chart, and the numbers it was drawn from (recorded by the chart builders
/// in [`super::charts`] and the domain figures, e.g. [`crate::eval::figures`] and
/// [`crate::search::report`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    pub name: String,
    pub width: u32,
    pub height: u32,
    png: Vec<u8>,
    numbers: Values,
}

/// What a drawing closure returns.
pub type DrawResult = std::result::Result<(), Box<dyn std::error::Error>>;

impl Figure {
    /// Draws a `width`×`height` chart with `draw` on a white background and encodes it.
    pub fn draw<F>(name: &str, (width, height): (u32, u32), draw: F) -> Result<Figure>
    where
        F: FnOnce(&DrawingArea<BitMapBackend<'_>, Shift>) -> DrawResult,
    {
        let rgb = vec![255u8; (width * height * 3) as usize];
        Figure::draw_on(name, rgb, (width, height), draw)
    }

    /// [`Figure::draw`] over an existing RGB image (`width`×`height`, 3 bytes per pixel).
    fn draw_on<F>(
        name: &str,
        mut rgb: Vec<u8>,
        (width, height): (u32, u32),
        draw: F,
    ) -> Result<Figure>
    where
        F: FnOnce(&DrawingArea<BitMapBackend<'_>, Shift>) -> DrawResult,
    {
        check_name(name)?;
        ensure_fonts()?;
        debug_assert_eq!(rgb.len(), (width * height * 3) as usize);
        {
            let area = BitMapBackend::with_buffer(&mut rgb, (width, height)).into_drawing_area();
            draw(&area).map_err(|e| Error::failed(format!("drawing figure {name}"), e))?;
            area.present()
                .map_err(|e| Error::failed(format!("drawing figure {name}"), e))?;
        }
        Ok(Figure {
            name: name.to_string(),
            width,
            height,
            png: crate::data::tile_png::encode(&rgb, width, height)?,
            numbers: Values::new(),
        })
    }

    /// Tiles in a grid under a title: `columns[c]` holds the (96, 96, 3) tiles of column `c`,
    /// top to bottom; `row_labels`, when not empty, name the rows at their left.
    pub fn tile_grid(
        name: &str,
        title: &str,
        row_labels: &[String],
        columns: &[Vec<&[u8]>],
    ) -> Result<Figure> {
        const TITLE: usize = 34;
        const PAD: usize = 8;
        let (grid, gw, gh) = crate::data::tile_png::grid_rgb(columns);
        let label_w = row_labels
            .iter()
            .map(|l| l.chars().count() * 7 + 2 * PAD)
            .max()
            .unwrap_or(0);
        let (w, h) = ((label_w + gw + 2 * PAD).max(360), TITLE + gh + PAD);
        let mut rgb = vec![255u8; w * h * 3];
        for y in 0..gh {
            let dst = ((TITLE + y) * w + label_w + PAD) * 3;
            rgb[dst..dst + gw * 3].copy_from_slice(&grid[y * gw * 3..(y + 1) * gw * 3]);
        }
        let rows = columns.iter().map(Vec::len).max().unwrap_or(0);
        Figure::draw_on(name, rgb, (w as u32, h as u32), |area| {
            use plotters::prelude::*;
            let size = super::charts::title_size(area, title, 17);
            let font = ("sans-serif", size).into_text_style(area);
            let (tw, _) = area.estimate_text_size(title, &font)?;
            let x = (w as i32 - tw as i32).max(0) / 2;
            area.draw(&Text::new(title, (x, 8), font))?;
            let tile = crate::data::TILE + 4;
            for (r, label) in row_labels.iter().enumerate().take(rows) {
                let y = (TITLE + r * tile + crate::data::TILE / 2) as i32 - 7;
                area.draw(&Text::new(
                    label.as_str(),
                    (PAD as i32, y),
                    ("sans-serif", 14).into_font(),
                ))?;
            }
            Ok(())
        })
    }

    /// Wraps a PNG made elsewhere (e.g. the audit's example grids) as a figure.
    pub fn from_png(name: &str, png: Vec<u8>) -> Result<Figure> {
        check_name(name)?;
        let bad = || Error::Usage(format!("figure {name}: not a PNG"));
        if png.len() < 24 || &png[..8] != b"\x89PNG\r\n\x1a\n" {
            return Err(bad());
        }
        let be = |o: usize| u32::from_be_bytes([png[o], png[o + 1], png[o + 2], png[o + 3]]);
        Ok(Figure {
            name: name.to_string(),
            width: be(16),
            height: be(20),
            png,
            numbers: Values::new(),
        })
    }

    /// The PNG bytes.
    pub fn png(&self) -> &[u8] {
        &self.png
    }

    /// Saves `assets/<name>.png` atomically and returns its path.
    pub fn save(&self, assets: &Assets) -> Result<PathBuf> {
        let path = assets.figure_path(&self.name);
        write_asset(&path, &self.png)?;
        Ok(path)
    }

    /// Records the numbers of one series (`key`) the chart was drawn from.
    pub fn with_numbers(
        self,
        key: impl Into<String>,
        values: impl IntoIterator<Item = f64>,
    ) -> Figure {
        self.with_values(
            key.into(),
            values.into_iter().map(super::derived::num).collect(),
        )
    }

    fn with_values(mut self, key: String, values: Vec<serde_json::Value>) -> Figure {
        self.numbers.insert(key, values);
        self
    }

    /// Drops the recorded numbers (before recording others in their place).
    pub(crate) fn without_numbers(mut self) -> Figure {
        self.numbers.clear();
        self
    }

    /// Records values that must match exactly on every CPU (e.g. which tiles are shown).
    pub fn with_text(
        self,
        key: impl Into<String>,
        values: impl IntoIterator<Item = String>,
    ) -> Figure {
        self.with_values(
            key.into(),
            values.into_iter().map(serde_json::Value::String).collect(),
        )
    }

    /// Replaces every recorded number series by the means of consecutive windows of `n`
    /// values (the last one shorter), keyed `<key> (means of n)`: what a cross-CPU check of a
    /// noisy per-step series (a gradient norm per batch) can hold to, where two trajectories
    /// that parted ways give another sample at each step but the same level over an epoch.
    /// Text series are kept as they are.
    pub fn window_means(mut self, n: usize) -> Figure {
        let n = n.max(1);
        let mut out = Values::new();
        for (key, values) in std::mem::take(&mut self.numbers) {
            if values.iter().any(|v| v.is_string()) {
                out.insert(key, values);
                continue;
            }
            let xs: Vec<f64> = values
                .iter()
                .map(|v| v.as_f64().unwrap_or(f64::NAN))
                .collect();
            let means = xs
                .chunks(n)
                .map(|c| super::derived::num(c.iter().sum::<f64>() / c.len() as f64))
                .collect();
            out.insert(format!("{key} (means of {n})"), means);
        }
        self.numbers = out;
        self
    }

    /// The numbers recorded with [`with_numbers`](Figure::with_numbers) and [`with_text`](Figure::with_text).
    pub fn numbers(&self) -> &Values {
        &self.numbers
    }

    /// Saves a training-derived figure: the PNG as [`save`](Figure::save), plus
    /// `<name>.numbers.json` with the numbers it was drawn from and the tolerance `across`
    /// the notebook states for other CPUs (see [`super::derived`]).
    pub fn save_derived(
        &self,
        assets: &Assets,
        across: &super::derived::AcrossCpus,
    ) -> Result<PathBuf> {
        let path = self.save(assets)?;
        super::derived::write_numbers(assets, &path, across, self.numbers.clone())?;
        Ok(path)
    }

    /// evcxr calls this to show the value of a cell: the PNG inline.
    pub fn evcxr_display(&self) {
        evcxr_emit("image/png", &base64(&self.png));
    }
}

/// Standard base64 with padding (what Jupyter expects for image/png).
fn base64(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        s.push(T[(n >> 18) as usize & 63] as char);
        s.push(T[(n >> 12) as usize & 63] as char);
        s.push(if c.len() > 1 {
            T[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        s.push(if c.len() > 2 {
            T[n as usize & 63] as char
        } else {
            '='
        });
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use plotters::prelude::*;

    fn sample() -> Figure {
        Figure::draw("sample", (320, 200), |area| {
            let mut chart = ChartBuilder::on(area)
                .caption("Sample chart", ("sans-serif", 18))
                .margin(8)
                .x_label_area_size(24)
                .y_label_area_size(32)
                .build_cartesian_2d(0.0..1.0, 0.0..1.0)?;
            chart.configure_mesh().draw()?;
            chart.draw_series(LineSeries::new([(0.0, 0.0), (1.0, 1.0)], &RED))?;
            Ok(())
        })
        .unwrap()
    }

    #[test]
    fn rendering_is_deterministic_and_draws_text() {
        let a = sample();
        assert_eq!(a, sample());
        assert_eq!(&a.png()[..8], b"\x89PNG\r\n\x1a\n");
        // A blank 320x200 white PNG is tiny; the caption and axes make it larger.
        let blank = crate::data::tile_png::encode(&vec![255u8; 320 * 200 * 3], 320, 200).unwrap();
        assert!(a.png().len() > blank.len() + 500);
    }

    #[test]
    fn tile_grids_have_a_title_band_and_row_labels() {
        let red: Vec<u8> = [200u8, 0, 0].repeat(crate::data::TILE_BYTES / 3);
        let cols = vec![vec![&red[..], &red[..]]; 4];
        let plain = Figure::tile_grid("g", "a title", &[], &cols).unwrap();
        let labelled =
            Figure::tile_grid("g", "a title", &["row one".into(), "row two".into()], &cols)
                .unwrap();
        // 4 tiles and 3 gaps wide plus margins; 2 tiles, a gap, the title band and a margin high
        assert_eq!(
            (plain.width, plain.height),
            (4 * 96 + 3 * 4 + 16, 34 + 2 * 96 + 4 + 8)
        );
        assert!(
            labelled.width > plain.width,
            "row labels take a band at the left"
        );
        assert_eq!(labelled.height, plain.height);
        let untitled = Figure::tile_grid("g", " ", &[], &cols).unwrap();
        assert_ne!(plain.png(), untitled.png(), "the title is drawn");
    }

    #[test]
    fn window_means_summarise_numbers_and_keep_text() {
        let f = sample()
            .with_numbers("y", [1.0, 3.0, 5.0, 7.0, 9.0])
            .with_text("tiles", ["4".to_string()])
            .window_means(2);
        let num = crate::report::derived::num;
        assert_eq!(
            f.numbers()["y (means of 2)"],
            vec![num(2.0), num(6.0), num(9.0)]
        );
        assert_eq!(
            f.numbers()["tiles"],
            vec![serde_json::Value::String("4".into())]
        );
        assert!(!f.numbers().contains_key("y"));
    }

    #[test]
    fn save_writes_the_same_bytes() {
        let d = tempfile::tempdir().unwrap();
        let f = sample();
        let p = f.save(&Assets::at(d.path())).unwrap();
        assert_eq!(std::fs::read(p).unwrap(), f.png());
    }

    #[test]
    fn base64_matches_the_rfc_vectors() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }
}
