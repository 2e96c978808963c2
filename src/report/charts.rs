//! Chart builders shared by notebooks and the CLI.

use super::Figure;
use crate::error::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

/// The largest font size ≤ `size` (down to 10) at which `title` fits the area's width with
/// a margin, so a long title shrinks instead of being clipped at the edges.
pub fn title_size<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    size: u32,
) -> u32 {
    title_size_within(area, title, size, area.dim_in_pixel().0)
}

/// [`title_size`] for a title centred over `width` pixels of the area (a chart whose
/// margins leave room beside it for a legend).
fn title_size_within<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    size: u32,
    width: u32,
) -> u32 {
    let room = width.saturating_sub(32);
    (10..=size.max(10))
        .rev()
        .find(|&s| {
            area.estimate_text_size(title, &("sans-serif", s).into_text_style(area))
                .is_ok_and(|(w, _)| w <= room)
        })
        .unwrap_or(10)
}

/// The corner of the plot where a legend box of `legend_px` (width, height) covers no point
/// of `series` (each segment sampled, so sparse lines count too), trying upper right, upper
/// left, lower right, lower left in that order; `None` when every corner would hide data.
fn legend_corner(
    series: &[Vec<(f64, f64)>],
    (x0, x1): (f64, f64),
    (y0, y1): (f64, f64),
    legend_px: (f64, f64),
    plot_px: (f64, f64),
) -> Option<SeriesLabelPosition> {
    // the box, as shares of the plot, with a margin around it
    let w = ((legend_px.0 + 24.0) / plot_px.0.max(1.0)).min(0.9);
    let h = ((legend_px.1 + 24.0) / plot_px.1.max(1.0)).min(0.9);
    let frac = |v: f64, a: f64, b: f64| if b > a { (v - a) / (b - a) } else { 0.5 };
    let corners = [
        (
            SeriesLabelPosition::UpperRight,
            1.0 - w..=1.0,
            1.0 - h..=1.0,
        ),
        (SeriesLabelPosition::UpperLeft, 0.0..=w, 1.0 - h..=1.0),
        (SeriesLabelPosition::LowerRight, 1.0 - w..=1.0, 0.0..=h),
        (SeriesLabelPosition::LowerLeft, 0.0..=w, 0.0..=h),
    ];
    for (pos, xs, ys) in corners {
        let mut hits = 0;
        for s in series {
            for pair in s.windows(2).chain(s.get(..1).filter(|_| s.len() == 1)) {
                let (a, b) = (pair[0], *pair.last().unwrap_or(&pair[0]));
                for k in 0..=16 {
                    let t = k as f64 / 16.0;
                    let (x, y) = (a.0 + t * (b.0 - a.0), a.1 + t * (b.1 - a.1));
                    let (fx, fy) = (frac(x, x0, x1), frac(y, y0, y1));
                    if xs.contains(&fx) && ys.contains(&fy) {
                        hits += 1;
                    }
                }
            }
        }
        if hits == 0 {
            return Some(pos);
        }
    }
    None
}

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
            .caption(title, ("sans-serif", title_size(area, title, 20)))
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
    .map(|f| {
        series.iter().enumerate().fold(f, |f, (i, s)| {
            f.with_numbers(format!("series {i}"), s.values.iter().copied())
        })
    })
}

/// One line of a line chart.
#[derive(Debug, Clone)]
pub struct Line {
    pub label: String,
    pub points: Vec<(f64, f64)>,
    pub color: RGBColor,
}

/// Lines over a shared x axis, optionally with a log-scaled y axis, with a legend.
pub fn lines(
    name: &str,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Line],
    log_y: bool,
) -> Result<Figure> {
    let pts = || series.iter().flat_map(|s| s.points.iter().copied());
    let (x0, x1) = pts().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), (x, _)| {
        (a.min(x), b.max(x))
    });
    let ys = pts()
        .map(|(_, y)| y)
        .filter(|y| y.is_finite() && (!log_y || *y > 0.0));
    let (y0, y1) = ys.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), y| {
        (a.min(y), b.max(y))
    });
    let (x0, x1) = if x0 < x1 { (x0, x1) } else { (0.0, 1.0) };
    let (y0, y1) = if y0 < y1 {
        (y0, y1)
    } else {
        (y0.min(0.0), y0.max(0.0) + 1.0)
    };
    let (ylo, yhi) = if log_y {
        (y0 * 0.9, y1 * 1.1)
    } else {
        let pad = (y1 - y0) * 0.05;
        (y0 - pad, y1 + pad)
    };
    // the legend goes where it hides the fewest points (in log space on a log axis)
    let ty = |y: f64| {
        if log_y {
            y.max(f64::MIN_POSITIVE).ln()
        } else {
            y
        }
    };
    let shapes: Vec<Vec<(f64, f64)>> = series
        .iter()
        .map(|s| s.points.iter().map(|&(x, y)| (x, ty(y))).collect())
        .collect();
    // Legend entries are a 16 px line, a gap and the label at 13 pt (about 7 px a character).
    let label_chars = series
        .iter()
        .map(|s| s.label.chars().count())
        .max()
        .unwrap_or(0);
    let legend_px = (
        label_chars as f64 * 7.0 + 40.0,
        series.len() as f64 * 18.0 + 12.0,
    );
    let (width, height) = (900u32, 480u32);
    let plot_px = (
        width as f64 - 24.0 - 80.0,
        height as f64 - 24.0 - 40.0 - 30.0,
    );
    let corner = legend_corner(&shapes, (x0, x1), (ty(ylo), ty(yhi)), legend_px, plot_px);
    // Where every corner would hide data, the legend goes to the right of the plot.
    let outside = if corner.is_none() {
        legend_px.0 as u32 + 8
    } else {
        0
    };
    Figure::draw(name, (width, height), |area| {
        let mut b = ChartBuilder::on(area);
        // the caption is centred over what the margins leave (the legend column excluded)
        let caption = if outside == 0 {
            title_size(area, title, 20)
        } else {
            title_size_within(area, title, 20, width - 24 - outside)
        };
        b.caption(title, ("sans-serif", caption))
            .margin(12)
            .margin_right(12 + outside)
            .x_label_area_size(40)
            .y_label_area_size(80);
        // a log axis labels its ticks with three significant digits (0.7, not 0.7000000000000001)
        let short = |y: &f64| short_tick(*y);
        macro_rules! finish {
            ($chart:expr $(, $y_fmt:expr)?) => {{
                let mut chart = $chart;
                let mut mesh = chart.configure_mesh();
                mesh.x_desc(x_label)
                    .y_desc(y_label)
                    .label_style(("sans-serif", 14));
                $( mesh.y_label_formatter($y_fmt); )?
                mesh.draw()?;
                for s in series {
                    let color = s.color;
                    chart
                        .draw_series(LineSeries::new(
                            s.points.iter().copied(),
                            color.stroke_width(2),
                        ))?
                        .label(s.label.as_str())
                        .legend(move |(x, y)| {
                            PathElement::new([(x, y), (x + 16, y)], color.stroke_width(2))
                        });
                }
                match corner {
                    Some(c) => chart
                        .configure_series_labels()
                        .position(c)
                        .background_style(WHITE.mix(0.85))
                        .border_style(BLACK.mix(0.3))
                        .label_font(("sans-serif", 13))
                        .draw()?,
                    None => {
                        let x = (width - outside) as i32;
                        for (i, s) in series.iter().enumerate() {
                            let y = 60 + 18 * i as i32;
                            area.draw(&PathElement::new(
                                [(x, y), (x + 16, y)],
                                s.color.stroke_width(2),
                            ))?;
                            area.draw(&Text::new(
                                s.label.as_str(),
                                (x + 22, y - 7),
                                ("sans-serif", 13).into_font(),
                            ))?;
                        }
                    }
                }
            }};
        }
        if log_y {
            finish!(
                b.build_cartesian_2d(x0..x1, (ylo..yhi).log_scale())?,
                &short
            );
        } else {
            finish!(b.build_cartesian_2d(x0..x1, ylo..yhi)?);
        }
        Ok(())
    })
    .map(|f| {
        // Keyed by position: labels may carry numbers (`model (ECE 0.0123)`).
        series.iter().enumerate().fold(f, |f, (i, s)| {
            f.with_numbers(format!("line {i} x"), s.points.iter().map(|p| p.0))
                .with_numbers(format!("line {i} y"), s.points.iter().map(|p| p.1))
        })
    })
}

/// A tick label with three significant digits and no trailing zeros: `0.7`, `0.05`, `1`, `250`.
fn short_tick(y: f64) -> String {
    if y == 0.0 || !y.is_finite() {
        return format!("{y}");
    }
    let decimals = (2 - y.abs().log10().floor() as i32).max(0) as usize;
    let s = format!("{y:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Horizontal bars with confidence whiskers, one per labelled value (top to bottom), with
/// a vertical reference line (e.g. the global value).
pub fn bars_with_ci(
    name: &str,
    title: &str,
    x_label: &str,
    labels: &[String],
    values: &[f64],
    cis: &[Option<(f64, f64)>],
    reference: Option<(f64, &str)>,
) -> Result<Figure> {
    let n = labels.len().max(1);
    let height = (90 + 26 * n as u32).max(240);
    // The reference line is named under the axis, not in a legend box over the bars.
    let x_desc = match reference {
        Some((_, label)) => format!("{x_label}  (vertical line: {label})"),
        None => x_label.to_string(),
    };
    Figure::draw(name, (900, height), |area| {
        let label_font = ("sans-serif", 12).into_text_style(area);
        let mut label_width = 0;
        for l in labels {
            label_width = label_width.max(area.estimate_text_size(l, &label_font)?.0);
        }
        let label_width = (label_width + 20).min(600);
        let mut chart = ChartBuilder::on(area)
            .caption(title, ("sans-serif", title_size(area, title, 18)))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(label_width)
            .build_cartesian_2d(0.0..1.0f64, -0.5..(n as f64 - 0.5))?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(n)
            .y_label_formatter(&|y| {
                let i = y.round();
                if (y - i).abs() < 1e-6 && i >= 0.0 {
                    labels.get(n - 1 - i as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .x_desc(x_desc.as_str())
            .label_style(("sans-serif", 12))
            .draw()?;
        let y_of = |k: usize| (n - 1 - k) as f64;
        chart.draw_series(values.iter().enumerate().map(|(k, &v)| {
            let y = y_of(k);
            Rectangle::new(
                [(0.0, y - 0.35), (v.clamp(0.0, 1.0), y + 0.35)],
                PALETTE[0].mix(0.75).filled(),
            )
        }))?;
        chart.draw_series(cis.iter().enumerate().filter_map(|(k, ci)| {
            ci.map(|(lo, hi)| {
                let y = y_of(k);
                PathElement::new([(lo, y), (hi, y)], BLACK.stroke_width(2))
            })
        }))?;
        if let Some((x, _)) = reference {
            chart.draw_series(std::iter::once(PathElement::new(
                [(x, -0.5), (x, n as f64 - 0.5)],
                PALETTE[5].stroke_width(2),
            )))?;
        }
        Ok(())
    })
    .map(|f| {
        let ci = |pick: fn((f64, f64)) -> f64| cis.iter().map(move |c| c.map_or(f64::NAN, pick));
        f.with_numbers("value", values.iter().copied())
            .with_numbers("ci low", ci(|c| c.0))
            .with_numbers("ci high", ci(|c| c.1))
            .with_numbers("reference", reference.map(|r| r.0))
    })
}

/// A 2×2 confusion matrix as a heatmap with counts (rows: truth, columns: prediction).
pub fn confusion_heatmap(
    name: &str,
    title: &str,
    tn: u64,
    fp: u64,
    fn_: u64,
    tp: u64,
) -> Result<Figure> {
    let cells = [[tn, fp], [fn_, tp]];
    let max = (tn.max(fp).max(fn_).max(tp)).max(1) as f64;
    Figure::draw(name, (520, 460), |area| {
        // Cells on [0, 2]²; the margins of the coordinate range hold the axis texts.
        let mut chart = ChartBuilder::on(area)
            .caption(title, ("sans-serif", title_size(area, title, 18)))
            .margin(16)
            .build_cartesian_2d(-0.7..2.05f64, -0.35..2.05f64)?;
        for (r, row) in cells.iter().enumerate() {
            for (c, &v) in row.iter().enumerate() {
                let (x0, y0) = (c as f64, 1.0 - r as f64);
                let shade = 0.15 + 0.85 * v as f64 / max;
                chart.draw_series(std::iter::once(Rectangle::new(
                    [(x0 + 0.02, y0 + 0.02), (x0 + 0.98, y0 + 0.98)],
                    PALETTE[0].mix(shade).filled(),
                )))?;
                let color = if shade > 0.55 { WHITE } else { BLACK };
                chart.draw_series(std::iter::once(Text::new(
                    v.to_string(),
                    (x0 + 0.4, y0 + 0.58),
                    ("sans-serif", 22).into_font().color(&color),
                )))?;
            }
        }
        let label = |s: &str, x: f64, y: f64| {
            Text::new(s.to_string(), (x, y), ("sans-serif", 15).into_font())
        };
        chart.draw_series([
            label("predicted 0", 0.25, -0.1),
            label("predicted 1", 1.25, -0.1),
            label("true 0", -0.6, 1.55),
            label("true 1", -0.6, 0.55),
        ])?;
        Ok(())
    })
    .map(|f| f.with_numbers("tn, fp, fn, tp", [tn, fp, fn_, tp].map(|v| v as f64)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_axis_ticks_are_short() {
        let got: Vec<String> = [0.7000000000000001, 1.0, 0.05, 250.0, 0.123456, 12.5]
            .map(short_tick)
            .to_vec();
        assert_eq!(got, ["0.7", "1", "0.05", "250", "0.123", "12.5"]);
    }

    #[test]
    fn line_charts_render_linear_and_log() {
        let s = vec![Line {
            label: "a".into(),
            points: (0..20).map(|i| (i as f64, 1.0 + i as f64)).collect(),
            color: PALETTE[0],
        }];
        let lin = lines("l", "t", "x", "y", &s, false).unwrap();
        let log = lines("l", "t", "x", "y", &s, true).unwrap();
        assert_ne!(lin.png(), log.png());
        assert_eq!(
            lin.numbers()["line 0 y"][19],
            crate::report::derived::num(20.0)
        );
    }

    #[test]
    fn legends_go_where_they_hide_the_fewest_points() {
        let rising: Vec<(f64, f64)> = (0..=10).map(|i| (i as f64, i as f64)).collect();
        let falling: Vec<(f64, f64)> = (0..=10).map(|i| (i as f64, 10.0 - i as f64)).collect();
        let flat_top: Vec<(f64, f64)> = vec![(0.0, 10.0), (10.0, 10.0)];
        // a legend box of a quarter of the plot each way (less its margin)
        let corner = |s: &[Vec<(f64, f64)>]| {
            format!(
                "{:?}",
                legend_corner(s, (0.0, 10.0), (0.0, 10.0), (76.0, 76.0), (400.0, 400.0))
            )
        };
        // a rising line passes through the upper right: the upper left is free
        assert_eq!(corner(std::slice::from_ref(&rising)), "Some(UpperLeft)");
        // a line along the top (sampled between its two points only) rules out both upper
        // corners; with the rising line too, only the lower right is free
        assert_eq!(corner(std::slice::from_ref(&flat_top)), "Some(LowerRight)");
        assert_eq!(corner(&[rising.clone(), flat_top]), "Some(LowerRight)");
        // an X touches every corner: no place inside the plot
        assert_eq!(corner(&[rising, falling]), "None");
        // nothing in the way: upper right, the usual place
        assert_eq!(corner(&[vec![(5.0, 5.0)]]), "Some(UpperRight)");
    }

    #[test]
    fn long_titles_shrink_to_fit_and_short_ones_keep_their_size() {
        crate::report::figure::Figure::draw("t", (300, 100), |area| {
            assert_eq!(title_size(area, "short", 20), 20);
            let long = "a title far too long to fit into three hundred pixels at twenty points";
            let s = title_size(area, long, 20);
            assert!(s < 20, "{s}");
            let w = area
                .estimate_text_size(long, &("sans-serif", s).into_text_style(area))?
                .0;
            assert!(w <= 268 || s == 10, "{w} px at {s} pt");
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn ci_bars_and_heatmaps_render() {
        let f = bars_with_ci(
            "c",
            "t",
            "x",
            &["a".into(), "b".into()],
            &[0.5, 0.9],
            &[Some((0.4, 0.6)), None],
            Some((0.7, "ref")),
        )
        .unwrap();
        assert!(f.png().len() > 1000);
        let h = confusion_heatmap("h", "t", 5, 1, 2, 7).unwrap();
        assert_ne!(
            h.png(),
            confusion_heatmap("h", "t", 1, 5, 7, 2).unwrap().png()
        );
    }

    #[test]
    fn grouped_bars_render() {
        let s = vec![Series {
            label: "a".into(),
            values: vec![1.0, 2.0],
            color: PALETTE[1],
        }];
        let f = grouped_bars("b", "t", "y", &["g1".into(), "g2".into()], &s).unwrap();
        assert!(f.png().len() > 1000);
    }
}
