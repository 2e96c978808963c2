//! `.h5.gz` support: PCAM is distributed gzipped, and HDF5 cannot read through gzip.
//! A gzipped file is decompressed once into a cache folder (atomically, with a progress
//! bar) and reused while the source's size and modification time are unchanged.

use crate::error::{Error, Result};
use crate::fsutil::TempPath;
use crate::progress::Progress;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// `file.h5` → `file.h5.gz`.
pub fn gz_path(h5: &Path) -> PathBuf {
    let mut s = h5.as_os_str().to_owned();
    s.push(".gz");
    PathBuf::from(s)
}

/// Returns a readable `.h5` path for `h5`: the file itself if present, else its `.h5.gz`
/// decompressed into `cache`. Errors name the `.h5` path when neither exists.
pub fn resolve(h5: &Path, cache: &Path, progress: Progress) -> Result<PathBuf> {
    if h5.exists() {
        return Ok(h5.to_path_buf());
    }
    let gz = gz_path(h5);
    if !gz.exists() {
        return Err(Error::NotFound {
            path: h5.to_path_buf(),
        });
    }
    decompress_cached(&gz, cache, progress)
}

/// Decompresses `gz` into `cache` unless an up-to-date copy is there already.
pub fn decompress_cached(gz: &Path, cache: &Path, progress: Progress) -> Result<PathBuf> {
    let meta = std::fs::metadata(gz).map_err(|e| Error::io(gz, "reading metadata", e))?;
    let stamp = format!(
        "{} {} {}\n",
        std::fs::canonicalize(gz)
            .unwrap_or_else(|_| gz.to_path_buf())
            .display(),
        meta.len(),
        meta.modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    );
    let key = &crate::fsutil::sha256_hex(stamp.as_bytes())[..16];
    let stem = gz
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(".gz"))
        .ok_or_else(|| Error::bad_file(gz, "expected a name ending in .h5.gz"))?;
    std::fs::create_dir_all(cache).map_err(|e| Error::io(cache, "creating cache folder", e))?;
    let out = cache.join(format!("{key}-{stem}"));
    if out.exists() {
        return Ok(out);
    }
    let f = std::fs::File::open(gz).map_err(|e| Error::io(gz, "opening", e))?;
    let bar = progress.bytes(meta.len(), format!("gunzip {stem}"));
    let mut dec = flate2::read::GzDecoder::new(bar.wrap_read(std::io::BufReader::new(f)));
    let tmp = TempPath::for_target(&out);
    let mut w = std::io::BufWriter::new(
        std::fs::File::create(tmp.path()).map_err(|e| Error::io(&out, "creating", e))?,
    );
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = dec
            .read(&mut buf)
            .map_err(|e| Error::bad_file(gz, format!("not a valid gzip stream: {e}")))?;
        if n == 0 {
            break;
        }
        w.write_all(&buf[..n])
            .map_err(|e| Error::io(&out, "writing decompressed file", e))?;
    }
    w.flush()
        .map_err(|e| Error::io(&out, "writing decompressed file", e))?;
    drop(w);
    bar.finish_and_clear();
    tmp.commit()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decompresses_once_and_reuses_the_copy() {
        let d = tempfile::tempdir().unwrap();
        let gz = d.path().join("a_x.h5.gz");
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(b"payload").unwrap();
        std::fs::write(&gz, e.finish().unwrap()).unwrap();
        let cache = d.path().join("cache");
        let p = resolve(&d.path().join("a_x.h5"), &cache, Progress { quiet: true }).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"payload");
        let again = resolve(&d.path().join("a_x.h5"), &cache, Progress { quiet: true }).unwrap();
        assert_eq!(p, again);
        assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 1);
    }

    #[test]
    fn corrupt_gzip_is_a_clear_error_and_leaves_nothing() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("b_x.h5.gz"), b"\x1f\x8bnot really").unwrap();
        let cache = d.path().join("cache");
        let e = resolve(&d.path().join("b_x.h5"), &cache, Progress { quiet: true }).unwrap_err();
        assert!(e.to_string().contains("not a valid gzip stream"), "{e}");
        assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 0);
    }
}
