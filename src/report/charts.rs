//! Chart builders shared by notebooks and the CLI.

use super::Figure;
use crate::error::Result;
use plotters::prelude::*;

/// One series of a grouped bar chart.
#[derive(Debug, Clone)]
pub struct Series {
    pub label: String,
    pub values: Vec<f64>,
    pub color: RGBColor,
}

/// Colours for series, in order (colour-blind-safe Okabe–Ito palette).
pub const PALETTE: [RGBColor; 6] = [
    RGBColor(0, 114, 178),
    RGBColor(230, 159, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(213, 94, 0),
];

/// Bars grouped by `groups` (x axis), one bar per series in each group, with a legend.
pub fn grouped_bars(
    name: &str,
    title: &str,
    y_label: &str,
    groups: &[String],
    series: &[Series],
) -> Result<Figure> {
    let max = series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .fold(0.0f64, f64::max)
        .max(1e-12);
    let n = groups.len();
    Figure::draw(name, (900, 480), |area| {
        let mut chart = ChartBuilder::on(area)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(-0.5..(n as f64 - 0.5), 0.0..max * 1.15)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n)
            .x_label_formatter(&|x| {
                let i = x.round();
                if (x - i).abs() < 1e-6 && i >= 0.0 {
                    groups.get(i as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .y_desc(y_label)
            .label_style(("sans-serif", 14))
            .draw()?;
        let width = 0.8 / series.len().max(1) as f64;
        for (k, s) in series.iter().enumerate() {
            let color = s.color;
            let offset = -0.4 + width * k as f64;
            chart
                .draw_series(s.values.iter().enumerate().map(|(g, &v)| {
                    let x0 = g as f64 + offset;
                    Rectangle::new([(x0, 0.0), (x0 + width * 0.92, v)], color.filled())
                }))?
                .label(s.label.as_str())
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 6), (x + 14, y + 6)], color.filled())
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .label_font(("sans-serif", 14))
            .draw()?;
        Ok(())
    })
}
