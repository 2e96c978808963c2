//! Search figures: the metric against each hyperparameter (one panel per parameter), and
//! a parallel-coordinates view of every trial, coloured by its score.

use super::{value_text, Outcome, Row};
use crate::error::Result;
use crate::report::charts::PALETTE;
use crate::report::Figure;
use plotters::prelude::*;
use serde_json::Value;

/// How one parameter is placed on an axis.
struct Axis {
    key: String,
    /// Numeric values use their value (log10 when `log`); others their category index.
    categories: Vec<String>,
    log: bool,
    lo: f64,
    hi: f64,
    /// Smallest and largest value on the axis (axis units), for tick labels.
    data: (f64, f64),
}

impl Axis {
    fn of(key: &str, rows: &[Row]) -> Axis {
        let vals: Vec<&Value> = rows.iter().filter_map(|r| r.values.get(key)).collect();
        let nums: Vec<f64> = vals.iter().filter_map(|v| v.as_f64()).collect();
        if !vals.is_empty() && nums.len() == vals.len() {
            let lo = nums.iter().cloned().fold(f64::INFINITY, f64::min);
            let hi = nums.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let log = lo > 0.0 && hi / lo >= 20.0;
            let (lo, hi) = if log {
                (lo.log10(), hi.log10())
            } else {
                (lo, hi)
            };
            let pad = if hi > lo { (hi - lo) * 0.08 } else { 0.5 };
            return Axis {
                key: key.into(),
                categories: vec![],
                log,
                lo: lo - pad,
                hi: hi + pad,
                data: (lo, hi),
            };
        }
        let mut categories: Vec<String> = vals.iter().map(|v| value_text(v)).collect();
        categories.sort();
        categories.dedup();
        if rows.iter().any(|r| !r.values.contains_key(key)) {
            categories.push("-".into());
        }
        let n = categories.len() as f64;
        Axis {
            key: key.into(),
            categories,
            log: false,
            lo: -0.5,
            hi: n - 0.5,
            data: (0.0, n - 1.0),
        }
    }

    fn pos(&self, row: &Row) -> f64 {
        let v = row.values.get(&self.key);
        if self.categories.is_empty() {
            let x = v.and_then(Value::as_f64).unwrap_or(f64::NAN);
            return if self.log { x.log10() } else { x };
        }
        let t = v.map(value_text).unwrap_or_else(|| "-".into());
        self.categories.iter().position(|c| *c == t).unwrap_or(0) as f64
    }

    fn label(&self, x: f64) -> String {
        if self.categories.is_empty() {
            let v = if self.log { 10f64.powf(x) } else { x };
            return crate::report::table::fmt_float(v);
        }
        let i = x.round();
        if (x - i).abs() < 1e-6 && i >= 0.0 {
            self.categories.get(i as usize).cloned().unwrap_or_default()
        } else {
            String::new()
        }
    }
}

/// Colour of a trial: its halving rung, or one colour.
fn rung_color(r: &Row) -> RGBColor {
    PALETTE[r.rung % PALETTE.len()]
}

/// Records what a search figure was drawn from: each scored trial's metric and its
/// position on every parameter's axis, in trial order (not rank order).
fn with_trials(f: Figure, rows: &[Row], keys: &[String]) -> Figure {
    // in trial order: a near-tie may swap two ranks on another CPU
    let mut rows = rows.to_vec();
    rows.sort_by_key(|r| r.trial);
    let rows = &rows[..];
    let f = f
        .with_text("trial", rows.iter().map(|r| r.trial.to_string()))
        .with_numbers("score", rows.iter().map(|r| r.score.unwrap_or(f64::NAN)));
    keys.iter().fold(f, |f, k| {
        let ax = Axis::of(k, rows);
        f.with_numbers(k.as_str(), rows.iter().map(|r| ax.pos(r)))
    })
}

/// The search metric against each parameter, one panel per parameter.
pub fn metric_vs_params(name: &str, out: &Outcome, keys: &[String], title: &str) -> Result<Figure> {
    let rows: Vec<&Row> = out.rows.iter().filter(|r| r.score.is_some()).collect();
    let owned: Vec<Row> = rows.iter().map(|r| (*r).clone()).collect();
    let scores: Vec<f64> = rows.iter().filter_map(|r| r.score).collect();
    let (ylo, yhi) = scores
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &y| {
            (a.min(y), b.max(y))
        });
    let pad = if yhi > ylo { (yhi - ylo) * 0.1 } else { 0.01 };
    let cols = keys.len().clamp(1, 3);
    let nrows = keys.len().div_ceil(cols).max(1);
    Figure::draw(name, (420 * cols as u32, 330 * nrows as u32 + 40), |area| {
        let (top, body) = area.split_vertically(40);
        top.titled(
            title,
            (
                "sans-serif",
                crate::report::charts::title_size(&top, title, 20),
            ),
        )?;
        let panels = body.split_evenly((nrows, cols));
        for (key, panel) in keys.iter().zip(panels.iter()) {
            let ax = Axis::of(key, &owned);
            let mut chart = ChartBuilder::on(panel)
                .margin(10)
                .x_label_area_size(40)
                .y_label_area_size(55)
                .build_cartesian_2d(ax.lo..ax.hi, (ylo - pad)..(yhi + pad))?;
            let n_labels = if ax.categories.is_empty() {
                5
            } else {
                ax.categories.len()
            };
            chart
                .configure_mesh()
                .x_labels(n_labels)
                .x_label_formatter(&|x| ax.label(*x))
                .x_desc(if ax.log {
                    format!("{key} (log)")
                } else {
                    key.clone()
                })
                .y_desc(out.metric)
                .label_style(("sans-serif", 13))
                .draw()?;
            chart.draw_series(owned.iter().map(|r| {
                Circle::new(
                    (ax.pos(r), r.score.unwrap_or(f64::NAN)),
                    5,
                    rung_color(r).filled(),
                )
            }))?;
            if let Some(best) = owned.first() {
                chart.draw_series(std::iter::once(Circle::new(
                    (ax.pos(best), best.score.unwrap_or(f64::NAN)),
                    9,
                    BLACK.stroke_width(2),
                )))?;
            }
        }
        Ok(())
    })
    .map(|f| with_trials(f, &owned, keys))
}

/// Every trial as a line across the parameters' axes and the metric, coloured by rank from
/// light (worst) to dark (best), so one outlier does not wash out the rest; the champion
/// drawn thick.
pub fn parallel_coordinates(
    name: &str,
    out: &Outcome,
    keys: &[String],
    title: &str,
) -> Result<Figure> {
    let rows: Vec<Row> = out
        .rows
        .iter()
        .filter(|r| r.score.is_some())
        .cloned()
        .collect();
    let axes: Vec<Axis> = keys.iter().map(|k| Axis::of(k, &rows)).collect();
    let scores: Vec<f64> = rows.iter().filter_map(|r| r.score).collect();
    let (slo, shi) = scores
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &y| {
            (a.min(y), b.max(y))
        });
    let span = (shi - slo).max(1e-12);
    let n_axes = axes.len() + 1;
    Figure::draw(name, (900, 460), |area| {
        let mut chart = ChartBuilder::on(area)
            .caption(
                title,
                (
                    "sans-serif",
                    crate::report::charts::title_size(area, title, 20),
                ),
            )
            .margin(20)
            .x_label_area_size(30)
            .build_cartesian_2d(-0.3..(n_axes as f64 - 0.7), -0.08..1.08)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .disable_y_axis()
            .x_labels(n_axes)
            .x_label_formatter(&|x| {
                let i = x.round();
                if (x - i).abs() > 1e-6 || i < 0.0 {
                    return String::new();
                }
                let i = i as usize;
                axes.get(i)
                    .map(|a| a.key.clone())
                    .unwrap_or_else(|| out.metric.to_string())
            })
            .label_style(("sans-serif", 14))
            .draw()?;
        let norm = |a: &Axis, r: &Row| (a.pos(r) - a.lo) / (a.hi - a.lo);
        // Worst first, so the best lines are drawn on top.
        let last = rows.len().saturating_sub(1).max(1) as f64;
        for (k, r) in rows.iter().enumerate().rev() {
            let y = (r.score.unwrap_or(slo) - slo) / span;
            let s = 1.0 - k as f64 / last;
            let light = RGBColor(200, 215, 230);
            let dark = PALETTE[5];
            let mix = |a: u8, b: u8| (a as f64 + (b as f64 - a as f64) * s).round() as u8;
            let color = RGBColor(
                mix(light.0, dark.0),
                mix(light.1, dark.1),
                mix(light.2, dark.2),
            );
            let mut pts: Vec<(f64, f64)> = axes
                .iter()
                .enumerate()
                .map(|(i, a)| (i as f64, norm(a, r)))
                .collect();
            pts.push((axes.len() as f64, 0.04 + 0.92 * y));
            let width = if k == 0 { 4 } else { 2 };
            chart.draw_series(std::iter::once(PathElement::new(
                pts,
                color.stroke_width(width),
            )))?;
        }
        // Axis ticks: values at the ends of each parameter axis, metric range on the last.
        let font = ("sans-serif", 12).into_font().color(&BLACK.mix(0.8));
        for (i, a) in axes.iter().enumerate() {
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(i as f64, 0.0), (i as f64, 1.0)],
                BLACK.mix(0.5),
            )))?;
            let ticks: Vec<f64> = if a.categories.is_empty() {
                vec![a.data.0, a.data.1]
            } else {
                (0..a.categories.len()).map(|c| c as f64).collect()
            };
            for t in ticks {
                let y = (t - a.lo) / (a.hi - a.lo);
                chart.draw_series(std::iter::once(Text::new(
                    a.label(t),
                    (i as f64 + 0.03, y),
                    font.clone(),
                )))?;
            }
        }
        let m = axes.len() as f64;
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(m, 0.0), (m, 1.0)],
            BLACK.mix(0.5),
        )))?;
        for (v, y) in [(slo, 0.04), (shi, 0.96)] {
            chart.draw_series(std::iter::once(Text::new(
                format!("{v:.4}"),
                (m + 0.03, y),
                font.clone(),
            )))?;
        }
        Ok(())
    })
    .map(|f| with_trials(f, &rows, keys))
}
