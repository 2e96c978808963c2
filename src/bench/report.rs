//! Benchmark figures and tables from `pcam bench throughput` result files: images/s
//! against batch size (one line per device and model, inference and training side by
//! side, the compute-only bound dashed), and each stage's share of the time per image.

use super::throughput::{Mode, Report};
use crate::error::{Error, Result};
use crate::report::charts::PALETTE;
use crate::report::{Figure, Table};
use plotters::prelude::*;
use std::path::{Path, PathBuf};

/// Every `pcam bench throughput` result file in `dir` (sorted by name), read.
pub fn read_reports(dir: &Path) -> Result<Vec<(PathBuf, Report)>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, "listing", e))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.extension().is_some_and(|x| x == "json")
                && p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("throughput-"))
        })
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| Report::read(&p).map(|r| (p, r)))
        .collect()
}

/// Images/s against batch size (log–log): one panel per mode, one colour per (report,
/// model); the whole pipeline solid with dots, the compute-only bound dashed.
pub fn throughput_vs_batch(name: &str, reports: &[Report], title: &str) -> Result<Figure> {
    let modes = [Mode::Inference, Mode::Train];
    let rows = || reports.iter().flat_map(|r| r.rows.iter());
    let xs: Vec<f64> = rows().map(|r| r.batch_size as f64).collect();
    let ys: Vec<f64> = rows()
        .flat_map(|r| [r.images_per_second, r.compute_only_images_per_second])
        .filter(|y| y.is_finite() && *y > 0.0)
        .collect();
    let (x0, x1) = bounds(&xs, (1.0, 2.0));
    let (y0, y1) = bounds(&ys, (1.0, 10.0));
    Figure::draw(name, (1200, 520), |area| {
        let (top, body) = area.split_vertically(36);
        top.titled(
            title,
            (
                "sans-serif",
                crate::report::charts::title_size(&top, title, 20),
            ),
        )?;
        for (mode, panel) in modes.iter().zip(body.split_evenly((1, 2)).iter()) {
            let mut chart = ChartBuilder::on(panel)
                .caption(mode.as_str(), ("sans-serif", 16))
                .margin(10)
                .x_label_area_size(40)
                .y_label_area_size(70)
                .build_cartesian_2d(
                    (x0 * 0.8..x1 * 1.25).log_scale(),
                    (y0 * 0.7..y1 * 1.4).log_scale(),
                )?;
            chart
                .configure_mesh()
                .x_desc("batch size")
                .y_desc("images / s")
                .x_label_formatter(&|x| format!("{}", x.round()))
                .y_label_formatter(&|y| format!("{y:.0}"))
                .label_style(("sans-serif", 13))
                .draw()?;
            let mut k = 0;
            for r in reports {
                for m in model_names(r) {
                    let color = PALETTE[k % PALETTE.len()];
                    k += 1;
                    let mut pts: Vec<(f64, f64, f64)> = r
                        .rows
                        .iter()
                        .filter(|x| x.model == m && x.mode == *mode)
                        .map(|x| {
                            (
                                x.batch_size as f64,
                                x.images_per_second,
                                x.compute_only_images_per_second,
                            )
                        })
                        .collect();
                    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
                    if pts.is_empty() {
                        continue;
                    }
                    chart
                        .draw_series(LineSeries::new(
                            pts.iter().map(|p| (p.0, p.1)),
                            color.stroke_width(2),
                        ))?
                        .label(format!("{m} · {}", r.label()))
                        .legend(move |(x, y)| {
                            PathElement::new([(x, y), (x + 16, y)], color.stroke_width(2))
                        });
                    chart.draw_series(
                        pts.iter()
                            .map(|p| Circle::new((p.0, p.1), 3, color.filled())),
                    )?;
                    chart.draw_series(DashedLineSeries::new(
                        pts.iter().map(|p| (p.0, p.2)),
                        5,
                        4,
                        color.mix(0.6).stroke_width(1),
                    ))?;
                }
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::LowerRight)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK.mix(0.3))
                .label_font(("sans-serif", 12))
                .draw()?;
        }
        Ok(())
    })
}

/// The stage shares of the time per image, one horizontal stacked bar per (model, mode)
/// at each of `batches`, labelled with the whole pipeline's µs per image.
pub fn stage_breakdown(
    name: &str,
    report: &Report,
    batches: &[usize],
    title: &str,
) -> Result<Figure> {
    let mut bars = vec![];
    for mode in [Mode::Inference, Mode::Train] {
        for r in report
            .rows
            .iter()
            .filter(|r| r.mode == mode && batches.contains(&r.batch_size))
        {
            let stages = r.stages.named(mode);
            let total: f64 = stages.iter().map(|s| s.1).sum();
            bars.push((
                format!("{} {} b={}", r.model, mode.as_str(), r.batch_size),
                stages,
                total,
            ));
        }
    }
    let names = [
        "HDF5 read + decode",
        "batch assembly",
        "host→device",
        "forward",
        "backward",
        "optimiser step",
        "device→host",
    ];
    let color = |s: &str| {
        let i = names.iter().position(|n| *n == s).unwrap_or(0);
        [
            RGBColor(86, 180, 233),
            RGBColor(0, 158, 115),
            RGBColor(240, 228, 66),
            RGBColor(0, 114, 178),
            RGBColor(213, 94, 0),
            RGBColor(204, 121, 167),
            RGBColor(153, 153, 153),
        ][i]
    };
    let n = bars.len().max(1);
    Figure::draw(name, (1000, 90 + 34 * n as u32 + 60), |area| {
        let (top, body) = area.split_vertically(36);
        top.titled(
            title,
            (
                "sans-serif",
                crate::report::charts::title_size(&top, title, 18),
            ),
        )?;
        // x from -55 to 135: bar labels on the left, the legend on the right, the bars
        // (shares, 0-100 %) in between.
        let mut chart = ChartBuilder::on(&body)
            .margin(10)
            .x_label_area_size(36)
            .build_cartesian_2d(-55.0..135.0, 0.0..(n as f64))?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .disable_y_axis()
            .x_desc("share of the time per image (%)")
            .x_label_formatter(&|x| {
                if (0.0..=100.0).contains(x) {
                    format!("{x:.0}")
                } else {
                    String::new()
                }
            })
            .label_style(("sans-serif", 12))
            .draw()?;
        let mut legend_done: Vec<&str> = vec![];
        for (i, (label, stages, total)) in bars.iter().enumerate() {
            let y = n as f64 - i as f64 - 1.0;
            let mut x = 0.0;
            for (s, v) in stages {
                let w = if *total > 0.0 { 100.0 * v / total } else { 0.0 };
                let c = color(s);
                let series = chart.draw_series(std::iter::once(Rectangle::new(
                    [(x, y + 0.15), (x + w, y + 0.85)],
                    c.filled(),
                )))?;
                if !legend_done.contains(s) && w > 0.0 {
                    legend_done.push(s);
                    series.label(*s).legend(move |(x, y)| {
                        Rectangle::new([(x, y - 5), (x + 12, y + 5)], c.filled())
                    });
                }
                x += w;
            }
            chart.draw_series(std::iter::once(Text::new(
                format!("{label} · {:.0} µs/img", total * 1e6),
                (-54.0, y + 0.65),
                ("sans-serif", 12).into_font().color(&BLACK),
            )))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK.mix(0.3))
            .label_font(("sans-serif", 12))
            .draw()?;
        Ok(())
    })
}

/// One row per result file: where it ran and the batch-1 inference images/s of each model
/// (the journal's Q8.2 table).
pub fn batch1_table(reports: &[(PathBuf, Report)]) -> Result<Table> {
    let mut cols: Vec<Vec<String>> = vec![vec![]; 6];
    for (path, r) in reports {
        let m = &r.machine;
        let models = model_names(r);
        let ips: Vec<String> = models
            .iter()
            .filter_map(|name| {
                r.row(name, Mode::Inference, 1)
                    .map(|x| format!("{name} {:.0}", x.images_per_second))
            })
            .collect();
        let node = if m.device.starts_with("cuda") {
            format!("GPU ({})", m.device_name)
        } else if m
            .slurm_partition
            .as_deref()
            .is_some_and(|p| p.contains("gpu"))
        {
            format!(
                "CPU only: this test cluster's GPU is a stand-in (CUDA_VISIBLE_DEVICES={}, no CUDA device) — {}",
                m.cuda_visible_devices.as_deref().unwrap_or("unset"),
                m.cpu
            )
        } else {
            format!("CPU only ({})", m.cpu)
        };
        cols[0].push(
            m.slurm_partition
                .clone()
                .unwrap_or_else(|| "(no Slurm)".into()),
        );
        cols[1].push(node);
        cols[2].push(m.threads.to_string());
        cols[3].push(ips.join(" · "));
        cols[4].push(m.slurm_job_id.clone().unwrap_or_else(|| "-".into()));
        cols[5].push(
            path.file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default(),
        );
    }
    let synthetic = reports.iter().any(|(_, r)| r.data_synthetic.is_some());
    Table::from_strings(
        &[
            "Partition",
            "Node type",
            "Threads",
            "Throughput, batch-1 inference (img/s)",
            "Job ID",
            "Result file",
        ],
        cols,
        if synthetic {
            "pcam bench throughput on SYNTHETIC data in the PCAM layout (the speed, not the data, is what is measured)"
        } else {
            "pcam bench throughput"
        },
    )
}

/// The models of a result file, in the order measured.
fn model_names(r: &Report) -> Vec<&str> {
    let mut models: Vec<&str> = r.rows.iter().map(|x| x.model.as_str()).collect();
    models.dedup();
    models
}

fn bounds(v: &[f64], fallback: (f64, f64)) -> (f64, f64) {
    let lo = v.iter().cloned().fold(f64::INFINITY, f64::min);
    let hi = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    if lo.is_finite() && hi > lo {
        (lo, hi)
    } else {
        fallback
    }
}

/// How throughput grows with the batch: per (result file, model, mode), images/s at batch
/// 1, the best batch size and its images/s, the speed-up, and the pipeline's share of the
/// compute-only bound at that batch.
pub fn scaling_table(reports: &[(PathBuf, Report)]) -> Result<Table> {
    let mut cols: Vec<Vec<String>> = vec![vec![]; 7];
    for (_, r) in reports {
        let models = model_names(r);
        for m in models {
            for mode in [Mode::Inference, Mode::Train] {
                let rows: Vec<_> = r
                    .rows
                    .iter()
                    .filter(|x| x.model == m && x.mode == mode)
                    .collect();
                let (Some(one), Some(best)) = (
                    rows.iter().find(|x| x.batch_size == 1),
                    rows.iter()
                        .max_by(|a, b| a.images_per_second.total_cmp(&b.images_per_second)),
                ) else {
                    continue;
                };
                cols[0].push(r.label());
                cols[1].push(format!("{m} {}", mode.as_str()));
                cols[2].push(format!("{:.0}", one.images_per_second));
                cols[3].push(best.batch_size.to_string());
                cols[4].push(format!("{:.0}", best.images_per_second));
                cols[5].push(format!(
                    "{:.1}×",
                    best.images_per_second / one.images_per_second
                ));
                cols[6].push(format!(
                    "{:.0}%",
                    100.0 * best.images_per_second / best.compute_only_images_per_second
                ));
            }
        }
    }
    Table::from_strings(
        &[
            "where",
            "model, mode",
            "img/s at batch 1",
            "best batch",
            "img/s at best batch",
            "speed-up",
            "pipeline / compute-only at best batch",
        ],
        cols,
        "pcam bench throughput, median of the repetitions (SYNTHETIC data in the PCAM layout)",
    )
}

/// The largest stage, its share and the stage shares (µs per image) for each (model,
/// mode) at each of `batches`, from one result file.
pub fn bottleneck_table(report: &Report, batches: &[usize]) -> Result<Table> {
    let mut cols: Vec<Vec<String>> = vec![vec![]; 5];
    for row in report
        .rows
        .iter()
        .filter(|r| batches.contains(&r.batch_size))
    {
        let (stage, share) = row.stages.bottleneck(row.mode);
        cols[0].push(format!("{} {}", row.model, row.mode.as_str()));
        cols[1].push(row.batch_size.to_string());
        cols[2].push(format!("{stage} ({:.0}%)", 100.0 * share));
        cols[3].push(
            row.stages
                .named(row.mode)
                .iter()
                .map(|(n, s)| format!("{n} {:.1}", s * 1e6))
                .collect::<Vec<_>>()
                .join(" · "),
        );
        cols[4].push(format!(
            "{:.0}%",
            100.0 * row.images_per_second / row.compute_only_images_per_second
        ));
    }
    Table::from_strings(
        &[
            "model, mode",
            "batch",
            "largest stage (share)",
            "µs per image by stage (stages run one after another)",
            "pipeline / compute-only",
        ],
        cols,
        &format!(
            "stage breakdown, {} (SYNTHETIC data in the PCAM layout)",
            report.label()
        ),
    )
}

/// `bench/throughput_vs_pytorch.py`'s result file as a table.
pub fn comparison_table(path: &Path) -> Result<Table> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, "reading", e))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| Error::bad_file(path, format!("not JSON: {e}")))?;
    let rows = v["rows"].as_array().ok_or_else(|| {
        Error::bad_file(
            path,
            "no `rows`: not a bench/throughput_vs_pytorch.py result",
        )
    })?;
    let mut cols: Vec<Vec<String>> = vec![vec![]; 5];
    for r in rows {
        let f = |k: &str| r[k].as_f64().unwrap_or(f64::NAN);
        cols[0].push(r["architecture"].as_str().unwrap_or("?").to_string());
        cols[1].push(format!("{:.0}", f("pcam_images_per_second")));
        cols[2].push(format!("{:.0}", f("pytorch_images_per_second")));
        cols[3].push(format!("{:.2}×", f("ratio")));
        cols[4].push(match r["target"].as_f64() {
            Some(t) => format!(
                "≥ {t}× — {}",
                if r["met"].as_bool() == Some(true) {
                    "met"
                } else {
                    "NOT met"
                }
            ),
            None => "-".into(),
        });
    }
    let caption = format!(
        "batch-1 inference, {} threads, median of {} alternating rounds, {} (torch {}, {}){}",
        v["threads"],
        v["rounds"],
        v["cpu"].as_str().unwrap_or("?"),
        v["torch_version"].as_str().unwrap_or("?"),
        v["data"].as_str().unwrap_or("?"),
        if v["data_synthetic"].is_string() {
            "; SYNTHETIC data"
        } else {
            ""
        }
    );
    Table::from_strings(
        &[
            "model",
            "pcam img/s",
            "PyTorch loop img/s",
            "pcam / PyTorch",
            "target",
        ],
        cols,
        &caption,
    )
}

/// One row of `bench/train_vs_pytorch.py`'s result file.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct TrainComparisonRow {
    pub model: String,
    /// The architecture compared (absent in files written before it was recorded).
    #[serde(default)]
    pub architecture: Option<TrainArchitecture>,
    pub batch_size: usize,
    pub pcam_epoch_images_per_second: f64,
    pub pytorch_epoch_images_per_second: f64,
    pub ratio: f64,
    pub ratio_target: f64,
    pub pcam_compute_only_images_per_second: f64,
    pub pytorch_compute_only_images_per_second: f64,
    pub pcam_pipeline_share: f64,
    pub pipeline_target: f64,
    pub met: bool,
}

/// A row's model as the comparison script describes it.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct TrainArchitecture {
    pub kind: String,
    pub hidden: Vec<usize>,
    pub channels: Vec<usize>,
}

impl TrainComparisonRow {
    /// `mlp [64, 32]`, `cnn [16, 32, 64]`, or the script's name for the model.
    pub fn label(&self) -> String {
        match &self.architecture {
            Some(a) if a.kind == "cnn" => format!("cnn {:?}", a.channels),
            Some(a) => format!("{} {:?}", a.kind, a.hidden),
            None => self.model.clone(),
        }
    }
}

/// `bench/train_vs_pytorch.py`'s result file (`results/bench/train-vs-pytorch.json`).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct TrainComparison {
    pub kind: String,
    pub data_synthetic: Option<String>,
    pub tiles: usize,
    pub threads: usize,
    pub rounds: usize,
    /// Epochs per training run on each side; the best of epochs 2..=`epochs` is kept.
    /// Absent in files written before the field: the second of two epochs.
    #[serde(default)]
    pub epochs: Option<usize>,
    pub cpu: String,
    pub torch_version: String,
    pub rows: Vec<TrainComparisonRow>,
}

impl TrainComparison {
    /// Reads and checks the kind of the result file at `path`.
    pub fn read(path: &Path) -> Result<TrainComparison> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, "reading", e))?;
        let c: TrainComparison = serde_json::from_str(&text)
            .map_err(|e| Error::bad_file(path, format!("not a train comparison: {e}")))?;
        if c.kind != "pcam-vs-pytorch-train-epoch" {
            return Err(Error::bad_file(
                path,
                format!("kind `{}`, not pcam-vs-pytorch-train-epoch", c.kind),
            ));
        }
        Ok(c)
    }

    /// The comparison as a table: epoch images/s of both sides, their ratio, both
    /// compute-only bounds and pcam's share of its own bound, each against its target.
    pub fn table(&self) -> Result<Table> {
        let mut cols: Vec<Vec<String>> = vec![vec![]; 8];
        let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
        for r in &self.rows {
            cols[0].push(r.label());
            cols[1].push(r.batch_size.to_string());
            cols[2].push(format!("{:.0}", r.pcam_epoch_images_per_second));
            cols[3].push(format!("{:.0}", r.pytorch_epoch_images_per_second));
            cols[4].push(format!(
                "{:.2}× (≥ {}×: {})",
                r.ratio,
                r.ratio_target,
                verdict(r.ratio >= r.ratio_target)
            ));
            cols[5].push(format!("{:.0}", r.pcam_compute_only_images_per_second));
            cols[6].push(format!("{:.0}", r.pytorch_compute_only_images_per_second));
            cols[7].push(format!(
                "{:.0}% (≥ {:.0}%: {})",
                100.0 * r.pcam_pipeline_share,
                100.0 * r.pipeline_target,
                verdict(r.pcam_pipeline_share >= r.pipeline_target)
            ));
        }
        let epochs = match self.epochs {
            Some(e) if e > 2 => {
                format!("best of epochs 2–{e} of each run; compute-only: best of repeats")
            }
            _ => "the second of two".to_string(),
        };
        let caption = format!(
            "training epochs ({epochs}), Adam, {} threads, {} train tiles, median of {} alternating rounds, {} (torch {}){}",
            self.threads,
            self.tiles,
            self.rounds,
            self.cpu,
            self.torch_version,
            if self.data_synthetic.is_some() {
                "; SYNTHETIC data"
            } else {
                ""
            }
        );
        Table::from_strings(
            &[
                "model",
                "batch",
                "pcam epoch img/s",
                "PyTorch epoch img/s",
                "pcam / PyTorch",
                "pcam compute-only img/s",
                "PyTorch compute-only img/s",
                "pcam epoch / its compute-only",
            ],
            cols,
            &caption,
        )
    }
}

#[cfg(test)]
mod train_comparison_tests {
    use super::*;

    #[test]
    fn the_committed_training_comparison_reads_and_renders() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("results/bench/train-vs-pytorch.json");
        let c = TrainComparison::read(&p).unwrap();
        // Three models (MLP [64,32], MLP [512,256], CNN) at two batch sizes, each
        // labelled by its architecture.
        assert_eq!(c.rows.len(), 6);
        let labels: std::collections::BTreeSet<String> = c.rows.iter().map(|r| r.label()).collect();
        let expected = ["cnn [16, 32, 64]", "mlp [512, 256]", "mlp [64, 32]"];
        assert_eq!(
            labels.iter().map(String::as_str).collect::<Vec<_>>(),
            expected
        );
        for r in &c.rows {
            let ratio = r.pcam_epoch_images_per_second / r.pytorch_epoch_images_per_second;
            assert!((ratio - r.ratio).abs() < 1e-9, "{r:?}");
        }
        let md = c.table().unwrap().to_markdown();
        assert!(
            md.contains("SYNTHETIC") && md.contains("pcam / PyTorch"),
            "{md}"
        );
    }

    #[test]
    fn another_result_file_is_refused_in_one_line() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("results/bench/pytorch-comparison.json");
        let e = TrainComparison::read(&p).unwrap_err().to_string();
        assert!(
            e.contains("pytorch-comparison.json") && e.lines().count() == 1,
            "{e}"
        );
    }
}
