//! `pcam predict`: a finished run's model applied to new tiles, from PCAM x files
//! (`.h5`/`.h5.gz`, only `x` is read; streamed block by block) or 96×96 PNG files
//! (a folder means every `*.png` in it, sorted). Each tile gets the probability of
//! tumour and the label at the run's threshold ([`run_threshold`]); the CSV is written
//! atomically and names every input tile, including those the run's `data.invalid`
//! policy drops.

use crate::data::hdf5::Images;
use crate::data::loader::Tiles;
use crate::data::InvalidPolicy;
use crate::data::TILE_BYTES;
use crate::error::{Error, Result};
use crate::eval::{check_threshold, run_threshold, Threshold};
use crate::fsutil::TempPath;
use crate::progress::Progress;
use crate::run::RunDir;
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};

/// One prediction input.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Input {
    /// A PCAM x file.
    Hdf5(PathBuf),
    /// A 96×96 RGB PNG tile.
    Png(PathBuf),
}

/// Classifies the command-line inputs, expanding folders to their PNG files.
fn classify(paths: &[PathBuf]) -> Result<Vec<Input>> {
    // Every input is checked before anything is computed or written.
    if paths.is_empty() {
        return Err(Error::Usage(
            "no inputs: give .h5 files, PNG files or folders of PNGs".into(),
        ));
    }
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut pngs: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|e| Error::io(p, "listing folder", e))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|q| has_ext(q, &[".png"]))
                .collect();
            if pngs.is_empty() {
                return Err(Error::bad_file(p, "folder holds no .png files"));
            }
            pngs.sort();
            out.extend(pngs.into_iter().map(Input::Png));
        } else if !p.exists() {
            return Err(Error::bad_file(p, "input does not exist"));
        } else if has_ext(p, &[".h5", ".hdf5", ".h5.gz"]) {
            out.push(Input::Hdf5(p.clone()));
        } else if has_ext(p, &[".png"]) {
            out.push(Input::Png(p.clone()));
        } else {
            return Err(Error::bad_file(
                p,
                "unsupported input: expected a PCAM x file (.h5, .h5.gz), a .png tile or a folder of PNGs",
            ));
        }
    }
    Ok(out)
}

/// Inputs in command-line order, consecutive PNGs together (they are batched).
enum Group {
    Hdf5(PathBuf),
    Pngs(Vec<PathBuf>),
}

fn groups(inputs: Vec<Input>) -> Vec<Group> {
    let mut out: Vec<Group> = Vec::new();
    for i in inputs {
        match (i, out.last_mut()) {
            (Input::Png(p), Some(Group::Pngs(v))) => v.push(p),
            (Input::Png(p), _) => out.push(Group::Pngs(vec![p])),
            (Input::Hdf5(p), _) => out.push(Group::Hdf5(p)),
        }
    }
    out
}

fn has_ext(p: &Path, exts: &[&str]) -> bool {
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    exts.iter().any(|e| name.ends_with(e))
}

/// What `pcam predict` did.
#[derive(Debug, Clone, Serialize)]
pub struct PredictReport {
    pub run: PathBuf,
    pub checkpoint: String,
    pub threshold: Threshold,
    pub out: PathBuf,
    /// Tiles read (rows in the CSV).
    pub tiles: usize,
    /// Tiles predicted positive.
    pub positives: usize,
    /// Tiles not predicted because the run's `data.invalid` policy drops them.
    pub dropped: usize,
    pub data_synthetic: Option<String>,
}

impl PredictReport {
    /// What `pcam predict` prints.
    pub fn to_text(&self) -> String {
        format!(
            "{}: {} tiles, {} positive at threshold {} ({}), {} dropped{}\n",
            self.out.display(),
            self.tiles,
            self.positives,
            self.threshold.threshold,
            self.threshold.source,
            self.dropped,
            if self.data_synthetic.is_some() {
                " (model trained on SYNTHETIC data)"
            } else {
                ""
            }
        )
    }
}

/// Predicts `inputs` with checkpoint `which` of `run` and writes `out` (CSV with columns
/// `input,index,probability,label,note`; `index` is the tile's index in an HDF5 input,
/// empty for a PNG). `threshold` overrides the run's threshold, `device` its `train.device`.
pub fn predict(
    run: &RunDir,
    inputs: &[PathBuf],
    out: &Path,
    which: &str,
    threshold: Option<f32>,
    device: Option<crate::config::DeviceChoice>,
    progress: Progress,
) -> Result<PredictReport> {
    let inputs = classify(inputs)?;
    let threshold = match threshold {
        Some(t) => {
            check_threshold(t).map_err(|m| Error::Usage(format!("--threshold: {m}")))?;
            Threshold {
                threshold: t,
                source: "command line (--threshold)".into(),
            }
        }
        None => run_threshold(run)?,
    };
    let crate::eval::Trained {
        config: c,
        model,
        state,
        device,
    } = crate::eval::Trained::load_on(run, which, device)?;
    let opts = c.data.open_options(progress);
    let batch = c.train.batch_size.max(1);
    // Unlike training, a prediction must not stop at a bad tile: `error` becomes `clip`
    // with a note; `drop` leaves the tile's probability empty.
    let policy = match c.data.invalid {
        InvalidPolicy::Drop => InvalidPolicy::Drop,
        _ => InvalidPolicy::Clip,
    };

    let tmp = TempPath::for_target(out);
    let file = std::fs::File::create(tmp.path()).map_err(|e| Error::io(out, "creating file", e))?;
    let mut w = Sink {
        out,
        w: std::io::BufWriter::new(file),
        threshold: threshold.threshold,
        tiles: 0,
        positives: 0,
        dropped: 0,
    };
    w.line("input,index,probability,label,note")?;
    let predict = |tiles: &Tiles| crate::train::predict(&model, tiles, &state.norm, batch, device);
    for group in groups(inputs) {
        match group {
            Group::Hdf5(path) => {
                let images = Images::open(&path, &opts)?;
                let name = csv_field(&path.display().to_string());
                let bar = progress.bar(
                    images.len() as u64,
                    format!("predict {}", short(&path)),
                    "tiles",
                );
                // A reader thread reads and decodes the next blocks while this one predicts.
                let ranges = images.block_ranges();
                let (blocks, mut done) = (ranges.len(), 0usize);
                let (rx, reader) = crate::data::loader::read_ahead(ranges.clone(), 1, move |r| {
                    images.read_block(r, policy)
                });
                for (range, b) in ranges.into_iter().zip(rx.iter()) {
                    let b = b?;
                    let mut probs =
                        predict(&Tiles::unlabelled(b.pixels, b.indices.clone())).into_iter();
                    // Rows in file order; a dropped tile keeps its row, without a probability.
                    let mut kept = b.indices.iter().peekable();
                    for i in range.clone() {
                        let invalid = b.invalid.binary_search(&i).is_ok();
                        if kept.next_if_eq(&&i).is_some() {
                            let note = if invalid {
                                "invalid pixels clipped to 0..=255"
                            } else {
                                ""
                            };
                            w.row(&name, Some(i), probs.next(), note)?;
                        } else {
                            w.row(
                                &name,
                                Some(i),
                                None,
                                "dropped: NaN or out-of-range pixels (data.invalid = drop)",
                            )?;
                        }
                    }
                    bar.inc(range.len() as u64);
                    done += 1;
                }
                if reader.join().is_err() || done != blocks {
                    return Err(Error::Usage(format!(
                        "{}: the reader thread stopped early",
                        path.display()
                    )));
                }
                bar.finish_and_clear();
            }
            Group::Pngs(paths) => {
                let bar = progress.bar(paths.len() as u64, "predict PNG tiles", "tiles");
                for part in paths.chunks(batch * 16) {
                    let mut pixels = Vec::with_capacity(part.len() * TILE_BYTES);
                    for p in part {
                        pixels.extend(crate::data::tile_png::read(p)?);
                    }
                    let probs = predict(&Tiles::unlabelled(pixels, vec![0; part.len()]));
                    for (p, prob) in part.iter().zip(probs) {
                        w.row(&csv_field(&p.display().to_string()), None, Some(prob), "")?;
                    }
                    bar.inc(part.len() as u64);
                }
                bar.finish_and_clear();
            }
        }
    }
    let (tiles, positives, dropped) = (w.tiles, w.positives, w.dropped);
    let file =
        w.w.into_inner()
            .map_err(|e| Error::io(out, "writing file", e.into_error()))?;
    file.sync_all()
        .map_err(|e| Error::io(out, "writing file", e))?;
    drop(file);
    tmp.commit()?;
    Ok(PredictReport {
        run: run.path.clone(),
        checkpoint: which.to_string(),
        threshold,
        out: out.to_path_buf(),
        tiles,
        positives,
        dropped,
        data_synthetic: run.data_synthetic(&c.data.dir),
    })
}

/// The CSV being written, with running counts.
struct Sink<'a> {
    out: &'a Path,
    w: std::io::BufWriter<std::fs::File>,
    threshold: f32,
    tiles: usize,
    positives: usize,
    dropped: usize,
}

impl Sink<'_> {
    fn line(&mut self, s: &str) -> Result<()> {
        writeln!(self.w, "{s}").map_err(|e| Error::io(self.out, "writing file", e))
    }

    fn row(&mut self, input: &str, index: Option<usize>, p: Option<f32>, note: &str) -> Result<()> {
        let index = index.map(|i| i.to_string()).unwrap_or_default();
        self.tiles += 1;
        let line = match p {
            Some(p) => {
                let label = (p >= self.threshold) as u8;
                self.positives += label as usize;
                format!("{input},{index},{p:e},{label},{note}")
            }
            None => {
                self.dropped += 1;
                format!("{input},{index},,,{note}")
            }
        };
        self.line(&line)
    }
}

fn short(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Quotes a CSV field when it holds a comma, quote or newline.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_are_classified_and_folders_expanded() {
        let d = tempfile::tempdir().unwrap();
        for n in ["b.png", "a.PNG", "notes.txt", "x.h5", "y.h5.gz"] {
            std::fs::write(d.path().join(n), b"").unwrap();
        }
        let got = classify(&[
            d.path().to_path_buf(),
            d.path().join("x.h5"),
            d.path().join("y.h5.gz"),
        ])
        .unwrap();
        assert_eq!(
            got,
            vec![
                Input::Png(d.path().join("a.PNG")),
                Input::Png(d.path().join("b.png")),
                Input::Hdf5(d.path().join("x.h5")),
                Input::Hdf5(d.path().join("y.h5.gz")),
            ]
        );
        let e = classify(&[d.path().join("notes.txt")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("unsupported input"), "{e}");
        let e = classify(&[d.path().join("missing.png")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("does not exist"), "{e}");
        assert!(classify(&[]).is_err());
    }

    #[test]
    fn pngs_are_grouped_in_order_and_fields_quoted() {
        let g = groups(vec![
            Input::Png("a.png".into()),
            Input::Png("b.png".into()),
            Input::Hdf5("x.h5".into()),
            Input::Png("c.png".into()),
        ]);
        let s: Vec<usize> = g
            .iter()
            .map(|g| match g {
                Group::Pngs(v) => v.len(),
                Group::Hdf5(_) => 0,
            })
            .collect();
        assert_eq!(s, [2, 0, 1]);
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert!(check_threshold(1.5).is_err());
    }
}
