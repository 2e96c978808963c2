//! Atomic output: everything pcam writes goes to a temporary name in the target's
//! folder and is renamed into place only when complete, so a crash or an error
//! never leaves a half-written file under the final name.

use crate::error::{Error, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

/// A temporary path beside `target`; removed on drop unless committed.
pub struct TempPath {
    tmp: PathBuf,
    target: PathBuf,
    committed: bool,
}

impl TempPath {
    /// Reserves `<dir>/.<name>.<pid>.tmp` for writing `target`.
    pub fn for_target(target: &Path) -> Self {
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "out".into());
        let tmp = target.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
        Self {
            tmp,
            target: target.to_path_buf(),
            committed: false,
        }
    }

    /// Where to write.
    pub fn path(&self) -> &Path {
        &self.tmp
    }

    /// Renames the finished temporary file onto the target.
    pub fn commit(mut self) -> Result<()> {
        std::fs::rename(&self.tmp, &self.target)
            .map_err(|e| Error::io(&self.target, "renaming finished file into place", e))?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Writes `bytes` to `path` atomically (temporary file, fsync, rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = TempPath::for_target(path);
    let mut f =
        std::fs::File::create(tmp.path()).map_err(|e| Error::io(path, "creating file", e))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| Error::io(path, "writing file", e))?;
    drop(f);
    tmp.commit()
}

/// Lower-case hex SHA-256 of a byte slice.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex(&Sha256::digest(bytes))
}

/// Lower-case hex SHA-256 of a file's contents, streamed.
pub fn sha256_file(path: &Path) -> Result<String> {
    use sha2::{Digest, Sha256};
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, "opening file", e))?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h).map_err(|e| Error::io(path, "reading file", e))?;
    Ok(hex(&h.finalize()))
}

/// What the file system says of a file: while all of it is unchanged, its contents are
/// taken to be unchanged. The change time (ctime) is set by the kernel on every write
/// and cannot be set back by a user, unlike the modification time.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Fingerprint {
    path: PathBuf,
    device: u64,
    inode: u64,
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

impl Fingerprint {
    #[cfg(unix)]
    fn of(path: &Path) -> Option<Fingerprint> {
        use std::os::unix::fs::MetadataExt;
        let path = std::fs::canonicalize(path).ok()?;
        let m = std::fs::metadata(&path).ok()?;
        let ns = |s: i64, n: i64| i128::from(s) * 1_000_000_000 + i128::from(n);
        Some(Fingerprint {
            device: m.dev(),
            inode: m.ino(),
            size: m.size(),
            mtime_ns: ns(m.mtime(), m.mtime_nsec()),
            ctime_ns: ns(m.ctime(), m.ctime_nsec()),
            path,
        })
    }

    #[cfg(not(unix))]
    fn of(_: &Path) -> Option<Fingerprint> {
        None
    }
}

/// An entry of the fingerprint cache.
#[derive(serde::Serialize, serde::Deserialize)]
struct CachedHash {
    fingerprint: Fingerprint,
    sha256: String,
}

/// A file changed less than this long before its hash was taken is not cached: file
/// times come from a coarse clock, so a write right after the read could leave them
/// unchanged (git's "racy" entries); a write after this margin cannot.
const RACY_NS: i128 = 2_000_000_000;

/// [`sha256_file`] through a cache in `cache` keyed by the file's path, device, inode,
/// size, modification and change times: when none of them changed since pcam last hashed
/// the file, the recorded hash is returned without reading it. Returns the hash and
/// whether it came from the cache. The cache is only an optimisation: an unreadable or
/// unwritable cache means the file is read.
pub fn sha256_file_cached(path: &Path, cache: &Path) -> Result<(String, bool)> {
    hash_through_cache(path, cache, RACY_NS)
}

/// [`sha256_file_cached`] with the margin `racy_ns` (tests use 0).
fn hash_through_cache(path: &Path, cache: &Path, racy_ns: i128) -> Result<(String, bool)> {
    let Some(before) = Fingerprint::of(path) else {
        return Ok((sha256_file(path)?, false));
    };
    let entry = cache.join(format!(
        "{}.json",
        sha256_hex(before.path.as_os_str().as_encoded_bytes())
    ));
    let hit = std::fs::read(&entry)
        .ok()
        .and_then(|b| serde_json::from_slice::<CachedHash>(&b).ok())
        .filter(|c| c.fingerprint == before);
    if let Some(c) = hit {
        return Ok((c.sha256, true));
    }
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0);
    let sha256 = sha256_file(path)?;
    let settled = before.ctime_ns.max(before.mtime_ns) + racy_ns <= started;
    if settled && Fingerprint::of(path).as_ref() == Some(&before) {
        let c = CachedHash {
            fingerprint: before,
            sha256: sha256.clone(),
        };
        if let Ok(bytes) = serde_json::to_vec_pretty(&c) {
            let _ = std::fs::create_dir_all(cache).map(|_| write_atomic(&entry, &bytes));
        }
    }
    Ok((sha256, false))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_hashes_are_reused_only_while_the_file_is_unchanged() {
        let d = tempfile::tempdir().unwrap();
        let (f, cache) = (d.path().join("x.h5"), d.path().join("cache"));
        std::fs::write(&f, b"first contents").unwrap();
        let h = sha256_file(&f).unwrap();
        // Changed within the margin (an hour here, so that no machine is too slow for
        // it): read and not cached.
        let hour = 3_600_000_000_000;
        assert_eq!(
            hash_through_cache(&f, &cache, hour).unwrap(),
            (h.clone(), false)
        );
        assert!(
            !cache.exists(),
            "nothing cached for a file changed just now"
        );
        // With no margin: read and cached once, then taken from the cache.
        assert_eq!(
            hash_through_cache(&f, &cache, 0).unwrap(),
            (h.clone(), false)
        );
        assert_eq!(
            hash_through_cache(&f, &cache, 0).unwrap(),
            (h.clone(), true)
        );
        assert_eq!(sha256_file_cached(&f, &cache).unwrap(), (h.clone(), true));
        // Same size, other bytes, the modification time put back: the change time
        // differs (rewritten until the coarse clock moved), so the file is read again.
        let fp = Fingerprint::of(&f).unwrap();
        while Fingerprint::of(&f).unwrap().ctime_ns == fp.ctime_ns {
            std::fs::write(&f, b"second content").unwrap();
        }
        let mtime = std::time::UNIX_EPOCH
            + std::time::Duration::from_nanos(u64::try_from(fp.mtime_ns).unwrap());
        let file = std::fs::File::options().write(true).open(&f).unwrap();
        file.set_modified(mtime).unwrap();
        drop(file);
        let now = Fingerprint::of(&f).unwrap();
        assert_eq!(
            (now.mtime_ns, now.size, now.inode),
            (fp.mtime_ns, fp.size, fp.inode)
        );
        let h2 = sha256_file(&f).unwrap();
        assert_ne!(h, h2);
        assert_eq!(
            hash_through_cache(&f, &cache, 0).unwrap(),
            (h2.clone(), false)
        );
        // A corrupt entry is ignored (and replaced).
        let entry = std::fs::read_dir(&cache)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        std::fs::write(&entry, b"{not json").unwrap();
        assert_eq!(
            hash_through_cache(&f, &cache, 0).unwrap(),
            (h2.clone(), false)
        );
        assert_eq!(hash_through_cache(&f, &cache, 0).unwrap(), (h2, true));
    }

    #[test]
    fn atomic_write_leaves_only_the_target() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.txt");
        write_atomic(&p, b"hello").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"hello");
        let names: Vec<_> = std::fs::read_dir(d.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn uncommitted_temp_is_removed() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("b.bin");
        {
            let t = TempPath::for_target(&p);
            std::fs::write(t.path(), b"partial").unwrap();
        }
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 0);
    }

    #[test]
    fn sha256_of_known_input() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
