//! Dataset evidence for journal Q2 as tables and a chart: sizes from `data inspect`
//! reports (`pcam report dataset-size`) and split-manifest facts (`pcam data split`);
//! both also used by the Q2 notebooks.

use super::charts::{grouped_bars, Series, PALETTE};
use super::{Figure, Table};
use crate::data::inspect::Report;
use crate::data::split::SplitManifest;
use crate::error::{Error, Result};
use polars::prelude::{Column, DataFrame};

const MB: f64 = 1e6;

/// A label for each report: the folder name (`pcam`, `course`, …).
fn label(r: &Report) -> String {
    r.path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| r.path.display().to_string())
}

/// Caption naming the data's provenance (synthetic or not).
fn provenance(reports: &[Report]) -> String {
    let notes: Vec<String> = reports
        .iter()
        .map(|r| match &r.synthetic {
            Some(s) => format!("{}: {s}", label(r)),
            None => format!("{}: real data (no synthetic.json)", label(r)),
        })
        .collect();
    notes.join("; ")
}

/// One row per split of every report: storage facts and sizes in MB.
pub fn size_table(reports: &[Report]) -> Result<Table> {
    let mut data = Rows::default();
    for r in reports {
        for s in &r.splits {
            let x = &s.x;
            data.dataset.push(label(r));
            data.split.push(
                s.split
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "file".into()),
            );
            data.tiles.push(s.tiles as i64);
            data.dtype.push(x.dtype.to_string());
            data.chunks.push(match &x.chunks {
                Some(c) => format!("{c:?}"),
                None => "contiguous".into(),
            });
            data.filters.push(if x.filters.is_empty() {
                "none".into()
            } else {
                x.filters.join(",")
            });
            data.logical.push(x.logical_bytes as f64 / MB);
            data.disk.push(x.storage_bytes as f64 / MB);
            data.uint8.push(s.uint8_bytes as f64 / MB);
            data.gzip.push(s.gzip_uint8.bytes as f64 / MB);
            data.ratio
                .push(x.storage_bytes as f64 / s.gzip_uint8.bytes.max(1) as f64);
            data.bad.push(s.pixels.bad_tiles as i64);
        }
    }
    let df = DataFrame::new_infer_height(vec![
        Column::new("dataset".into(), data.dataset),
        Column::new("split".into(), data.split),
        Column::new("tiles".into(), data.tiles),
        Column::new("x dtype".into(), data.dtype),
        Column::new("chunks".into(), data.chunks),
        Column::new("filters".into(), data.filters),
        Column::new("logical MB".into(), data.logical),
        Column::new("on disk MB".into(), data.disk),
        Column::new("as uint8 MB".into(), data.uint8),
        Column::new("as gzip uint8 MB".into(), data.gzip),
        Column::new("on disk / gzip uint8".into(), data.ratio),
        Column::new("tiles out of range".into(), data.bad),
    ])
    .map_err(|e| Error::failed("building size table", e))?;
    Ok(Table::new(df).caption(provenance(reports)))
}

#[derive(Default)]
struct Rows {
    dataset: Vec<String>,
    split: Vec<String>,
    tiles: Vec<i64>,
    dtype: Vec<String>,
    chunks: Vec<String>,
    filters: Vec<String>,
    logical: Vec<f64>,
    disk: Vec<f64>,
    uint8: Vec<f64>,
    gzip: Vec<f64>,
    ratio: Vec<f64>,
    bad: Vec<i64>,
}

/// Bars per dataset/split: logical size as stored, bytes on disk, and the same tiles as
/// uint8 and as gzip-compressed uint8.
pub fn size_figure(name: &str, reports: &[Report]) -> Result<Figure> {
    let mut groups = vec![];
    let mut vals: [Vec<f64>; 4] = Default::default();
    for r in reports {
        for s in &r.splits {
            groups.push(format!(
                "{} {}",
                label(r),
                s.split.map(|s| s.to_string()).unwrap_or_default()
            ));
            vals[0].push(s.x.logical_bytes as f64 / MB);
            vals[1].push(s.x.storage_bytes as f64 / MB);
            vals[2].push(s.uint8_bytes as f64 / MB);
            vals[3].push(s.gzip_uint8.bytes as f64 / MB);
        }
    }
    let labels = [
        "logical size as stored",
        "bytes on disk",
        "same tiles as uint8",
        "same tiles as gzip uint8",
    ];
    let series: Vec<Series> = labels
        .iter()
        .zip(vals)
        .zip(PALETTE)
        .map(|((l, values), color)| Series {
            label: l.to_string(),
            values,
            color,
        })
        .collect();
    let synthetic = reports.iter().any(|r| r.synthetic.is_some());
    let title = format!(
        "x file sizes by storage choice{}",
        crate::data::synth::suffix(synthetic)
    );
    grouped_bars(name, &title, "MB", &groups, &series)
}

/// One row per fold of every named split manifest (`pcam data split`, journal Q2):
/// tiles, positive rates and slides on each side, and slides shared across the cut.
pub fn split_table(manifests: &[(String, &SplitManifest)]) -> Result<Table> {
    let mut name: Vec<String> = Vec::new();
    let mut fold: Vec<i64> = Vec::new();
    let mut ints: [Vec<i64>; 5] = Default::default();
    let mut rates: [Vec<f64>; 2] = Default::default();
    for (n, m) in manifests {
        for (k, f) in m.facts.iter().enumerate() {
            name.push(n.clone());
            fold.push(k as i64);
            let row = [
                f.train_tiles,
                f.valid_tiles,
                f.train_slides,
                f.valid_slides,
                f.shared_slides,
            ];
            for (c, v) in ints.iter_mut().zip(row) {
                c.push(v as i64);
            }
            rates[0].push(f.train_positive_rate);
            rates[1].push(f.valid_positive_rate);
        }
    }
    let [train_tiles, valid_tiles, train_slides, valid_slides, shared] = ints;
    let [train_rate, valid_rate] = rates;
    let df = DataFrame::new_infer_height(vec![
        Column::new("manifest".into(), name),
        Column::new("fold".into(), fold),
        Column::new("train tiles".into(), train_tiles),
        Column::new("valid tiles".into(), valid_tiles),
        Column::new("train positive rate".into(), train_rate),
        Column::new("valid positive rate".into(), valid_rate),
        Column::new("train slides".into(), train_slides),
        Column::new("valid slides".into(), valid_slides),
        Column::new("shared slides".into(), shared),
    ])
    .map_err(|e| Error::failed("building the split table", e))?;
    Ok(Table::new(df))
}
