//! Single tiles as PNG files: the PNG input of `pcam predict`, and `pcam data
//! export-png`, which writes tiles of a split as PNGs (so a user can try the PNG path on
//! known tiles). Decoding accepts 8- or 16-bit RGB, RGBA (alpha dropped) and palette
//! images of 96×96; anything else is refused with the reason.

use super::hdf5::{OpenOptions, Split};
use super::{SplitName, TILE, TILE_BYTES};
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// Reads one 96×96 RGB tile from a PNG file: (96, 96, 3) u8, channels-last.
pub fn read(path: &Path) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, "reading", e))?;
    let mut dec = png::Decoder::new(std::io::Cursor::new(bytes));
    dec.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let bad = |e: png::DecodingError| Error::bad_file(path, format!("not a readable PNG: {e}"));
    let mut reader = dec.read_info().map_err(bad)?;
    let (w, h) = {
        let info = reader.info();
        (info.width as usize, info.height as usize)
    };
    if (w, h) != (TILE, TILE) {
        return Err(Error::bad_file(
            path,
            format!("image is {w}x{h}, PCAM tiles are {TILE}x{TILE}"),
        ));
    }
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| Error::bad_file(path, "PNG too large"))?;
    let mut buf = vec![0u8; size];
    let out = reader.next_frame(&mut buf).map_err(bad)?;
    buf.truncate(out.buffer_size());
    let channels = match out.color_type {
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        png::ColorType::Grayscale | png::ColorType::GrayscaleAlpha => {
            return Err(Error::bad_file(
                path,
                "grayscale PNG: PCAM tiles are RGB (convert it to RGB first if that is intended)",
            ))
        }
        other => {
            return Err(Error::bad_file(
                path,
                format!("unsupported PNG colour type {other:?}"),
            ))
        }
    };
    if buf.len() != TILE * TILE * channels {
        return Err(Error::bad_file(
            path,
            "PNG pixel data has an unexpected size",
        ));
    }
    Ok(if channels == 3 {
        buf
    } else {
        buf.chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect()
    })
}

/// Encodes an RGB image (`rgb` is `height` rows of `width` pixels, 3 bytes each) as PNG.
pub fn encode(rgb: &[u8], width: u32, height: u32) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let err = |e: png::EncodingError| Error::failed("encoding PNG", e);
    let mut enc = png::Encoder::new(&mut out, width, height);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    enc.set_compression(png::Compression::High);
    let mut w = enc.write_header().map_err(err)?;
    w.write_image_data(rgb).map_err(err)?;
    w.finish().map_err(err)?;
    Ok(out)
}

/// Tiles laid out in columns as an RGB image, with its width and height: `columns[c]`
/// holds the (96, 96, 3) tiles of column `c`, top to bottom, with 4 px white gaps.
pub fn grid_rgb(columns: &[Vec<&[u8]>]) -> (Vec<u8>, usize, usize) {
    const GAP: usize = 4;
    let cols = columns.len().max(1);
    let rows = columns.iter().map(Vec::len).max().unwrap_or(1).max(1);
    let (w, h) = (
        cols * TILE + (cols - 1) * GAP,
        rows * TILE + (rows - 1) * GAP,
    );
    let mut img = vec![255u8; w * h * 3];
    for (c, col) in columns.iter().enumerate() {
        for (r, tile) in col.iter().enumerate() {
            for y in 0..TILE {
                let dst = ((r * (TILE + GAP) + y) * w + c * (TILE + GAP)) * 3;
                img[dst..dst + TILE * 3].copy_from_slice(&tile[y * TILE * 3..(y + 1) * TILE * 3]);
            }
        }
    }
    (img, w, h)
}

/// Writes tiles `indices` of split `split` in `dir` to `out/<split>_<index>.png`
/// (pixels under the `clip` policy, as `pcam predict` would read them) and returns the paths.
pub fn export(
    dir: &Path,
    split: SplitName,
    indices: &[usize],
    out: &Path,
    opts: &OpenOptions,
) -> Result<Vec<PathBuf>> {
    let s = Split::open_dir(dir, split, opts)?;
    if let Some(&bad) = indices.iter().find(|&&i| i >= s.len()) {
        return Err(Error::Usage(format!(
            "tile index {bad} is out of range: split {split} has {} tiles",
            s.len()
        )));
    }
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, "creating folder", e))?;
    let mut paths = Vec::with_capacity(indices.len());
    for &i in indices {
        let px = s.read_tile(i)?;
        let png = encode(&px[..TILE_BYTES], TILE as u32, TILE as u32)?;
        let p = out.join(format!("{split}_{i}.png"));
        crate::fsutil::write_atomic(&p, &png)?;
        paths.push(p);
    }
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rgb_tiles_round_trip_and_other_images_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let tile: Vec<u8> = (0..TILE_BYTES).map(|i| (i * 13 % 251) as u8).collect();
        let p = dir.path().join("t.png");
        std::fs::write(&p, encode(&tile, 96, 96).unwrap()).unwrap();
        assert_eq!(read(&p).unwrap(), tile);

        let small = dir.path().join("small.png");
        std::fs::write(&small, encode(&tile[..64 * 64 * 3], 64, 64).unwrap()).unwrap();
        let e = read(&small).unwrap_err().to_string();
        assert!(e.contains("64x64"), "{e}");

        let junk = dir.path().join("junk.png");
        std::fs::write(&junk, b"not a png").unwrap();
        let e = read(&junk).unwrap_err().to_string();
        assert!(e.contains("not a readable PNG"), "{e}");
    }
}
