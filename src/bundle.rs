//! Offline handover: `pcam bundle` packs a finished run into one `.tar.gz` that predicts on
//! a machine with no repository, no Python and no network. The archive holds one folder:
//!
//! ```text
//! pcam-bundle-<run>/
//!   pcam            wrapper: puts lib/ first on the loader path, runs bin/pcam
//!   bin/pcam        this binary
//!   lib/            every shared library the loader resolves for it (libtorch, CUDA
//!                   runtime libraries libtorch links, HDF5 and its dependencies), by soname,
//!                   except the OS's C/C++ runtime (glibc, libstdc++, libgcc_s)
//!   run/            config.yaml, config.sha256, manifest.json, metrics.json,
//!                   threshold.json, checkpoints/{best,last}.ckpt (those that exist)
//!   README.md       offline use; BUNDLE.json what was packed and what the host must have
//!   LIBRARIES.tsv   soname, bytes, SHA-256 and where each library came from
//!   check.sh        verifies SHA256SUMS and that every library resolves inside the bundle
//!   SHA256SUMS      `sha256sum -c` list of every other file
//! ```
//!
//! Entries are sorted and carry mtime 0 and owner 0, so the archive depends only on what
//! it holds. The library list comes from `ldd` on the binary. A leaf over `run`.

use crate::error::{Error, Result};
use crate::fsutil::TempPath;
use crate::progress::Progress;
use crate::run::RunDir;
use serde::Serialize;
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Sonames of the OS's C/C++ runtime: the host provides these, the bundle never ships them
/// (a copied glibc cannot be mixed with the host's loader).
pub const OS_RUNTIME: &[&str] = &[
    "linux-vdso.so.1",
    "ld-linux-x86-64.so.2",
    "ld-linux-aarch64.so.1",
    "libc.so.6",
    "libm.so.6",
    "libdl.so.2",
    "libpthread.so.0",
    "librt.so.1",
    "libutil.so.1",
    "libresolv.so.2",
    "libstdc++.so.6",
    "libgcc_s.so.1",
];

/// Run files that travel with the bundle (those that exist); the checkpoints come apart.
const RUN_FILES: &[&str] = &[
    "config.yaml",
    "config.sha256",
    "manifest.json",
    "metrics.json",
    "threshold.json",
];

/// One shared library the binary needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Library {
    pub soname: String,
    /// Where the loader found it on this machine.
    pub origin: PathBuf,
}

/// Parses `ldd` output into the libraries to ship (OS runtime left out). A library the
/// loader cannot find is an error naming it.
pub fn parse_ldd(binary: &Path, text: &str) -> Result<Vec<Library>> {
    let mut libs = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let mut parts = line.split_whitespace();
        let Some(first) = parts.next() else { continue };
        let soname = Path::new(first)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| first.to_string());
        if OS_RUNTIME.contains(&soname.as_str()) || line.starts_with("statically linked") {
            continue;
        }
        if line.contains("=> not found") {
            return Err(Error::bad_file(
                binary,
                format!("the loader cannot find {soname} (run from the repository, after `source scripts/env.sh`)"),
            ));
        }
        match (parts.next(), parts.next()) {
            (Some("=>"), Some(p)) if p.starts_with('/') => libs.push(Library {
                soname,
                origin: PathBuf::from(p),
            }),
            _ => {
                return Err(Error::bad_file(
                    binary,
                    format!("cannot read this ldd line: `{line}`"),
                ))
            }
        }
    }
    libs.sort_by(|a, b| a.soname.cmp(&b.soname));
    libs.dedup_by(|a, b| a.soname == b.soname);
    Ok(libs)
}

/// The libraries `binary` needs, from `ldd`.
pub fn libraries(binary: &Path) -> Result<Vec<Library>> {
    let out = Command::new("ldd").arg(binary).output().map_err(|e| {
        Error::Usage(format!(
            "bundle: cannot run `ldd` (glibc's libc-bin) to list {}'s libraries: {e}",
            binary.display()
        ))
    })?;
    if !out.status.success() {
        return Err(Error::bad_file(
            binary,
            format!(
                "ldd failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        ));
    }
    parse_ldd(binary, &String::from_utf8_lossy(&out.stdout))
}

/// The highest `<prefix><version>` symbol-version tag in `bytes` (e.g. `GLIBC_2.` →
/// `2.34`): what the host's runtime must provide at least. Scans raw bytes, so it is an
/// upper bound over the tags the files mention.
pub fn highest_version_tag(bytes: &[u8], prefix: &str) -> Option<Vec<u32>> {
    let p = prefix.as_bytes();
    let mut best: Option<Vec<u32>> = None;
    let mut i = 0;
    while let Some(off) = find(&bytes[i..], p) {
        let start = i + off + p.len();
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_digit() || bytes[end] == b'.') {
            end += 1;
        }
        let tail = std::str::from_utf8(&bytes[start..end])
            .unwrap_or("")
            .trim_end_matches('.');
        let v: Vec<u32> = tail.split('.').filter_map(|s| s.parse().ok()).collect();
        // the prefix names the major version for GLIBC_2. / GLIBCXX_3.4.
        if !v.is_empty() && best.as_ref().is_none_or(|b| v > *b) {
            best = Some(v);
        }
        i = start;
    }
    best
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = hay[from..].iter().position(|&b| b == needle[0]) {
        let at = from + i;
        if hay[at..].starts_with(needle) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

fn version_string(prefix: &str, v: &Option<Vec<u32>>) -> Option<String> {
    v.as_ref().map(|v| {
        let tail: Vec<String> = v.iter().map(u32::to_string).collect();
        format!("{}{}", prefix, tail.join("."))
    })
}

/// What the host must provide besides the bundle.
#[derive(Debug, Clone, Serialize)]
pub struct HostNeeds {
    pub os: &'static str,
    /// e.g. `GLIBC_2.34`: the highest glibc version tag any shipped file needs.
    pub glibc: Option<String>,
    /// e.g. `GLIBCXX_3.4.30`: the highest libstdc++ version tag.
    pub glibcxx: Option<String>,
    pub runtime_libraries: Vec<&'static str>,
}

/// `BUNDLE.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    pub pcam_version: &'static str,
    pub run: String,
    pub checkpoints: Vec<String>,
    pub threshold: Option<f32>,
    pub data_synthetic: Option<String>,
    pub libraries: usize,
    pub library_bytes: u64,
    pub host_needs: HostNeeds,
    /// Built on (from /etc/os-release).
    pub built_on: Option<String>,
}

/// What `pcam bundle` reports.
#[derive(Debug, Clone, Serialize)]
pub struct BundleReport {
    pub out: PathBuf,
    pub folder: String,
    pub files: usize,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub sha256: String,
    pub manifest: Manifest,
}

impl BundleReport {
    /// What `pcam bundle` prints: files, sizes, hash and what the host must provide.
    pub fn to_text(&self) -> String {
        format!(
            "{}: {} files ({} libraries), {:.0} MiB packed into {:.0} MiB, sha256 {}; needs {}{}\n",
            self.out.display(),
            self.files,
            self.manifest.libraries,
            self.bytes_in as f64 / 1048576.0,
            self.bytes_out as f64 / 1048576.0,
            self.sha256,
            [
                &self.manifest.host_needs.glibc,
                &self.manifest.host_needs.glibcxx
            ]
            .iter()
            .filter_map(|v| v.as_deref())
            .collect::<Vec<_>>()
            .join(" + "),
            if self.manifest.data_synthetic.is_some() {
                " (model trained on SYNTHETIC data)"
            } else {
                ""
            }
        )
    }
}

enum Source {
    File(PathBuf),
    Bytes(Vec<u8>),
}

struct Entry {
    name: String,
    source: Source,
    mode: u32,
    size: u64,
    /// Known already (libraries are hashed while scanned).
    sha256: Option<String>,
}

impl Entry {
    fn file(name: String, path: &Path, mode: u32) -> Result<Entry> {
        let size = std::fs::metadata(path)
            .map_err(|e| Error::io(path, "reading metadata", e))?
            .len();
        Ok(Entry {
            name,
            source: Source::File(path.to_path_buf()),
            mode,
            size,
            sha256: None,
        })
    }

    fn bytes(name: &str, bytes: Vec<u8>, mode: u32) -> Entry {
        Entry {
            name: name.to_string(),
            size: bytes.len() as u64,
            source: Source::Bytes(bytes),
            mode,
            sha256: None,
        }
    }

    fn sha256(&self) -> Result<String> {
        if let Some(h) = &self.sha256 {
            return Ok(h.clone());
        }
        match &self.source {
            Source::File(p) => crate::fsutil::sha256_file(p),
            Source::Bytes(b) => Ok(crate::fsutil::sha256_hex(b)),
        }
    }
}

/// Packs `run` with the pcam `binary` (the CLI passes itself) into `out` (gzip `level`
/// 0–9), atomically.
pub fn bundle(
    run: &RunDir,
    binary: &Path,
    out: &Path,
    level: u32,
    progress: Progress,
) -> Result<BundleReport> {
    if level > 9 {
        return Err(Error::Usage(format!("--level {level}: must be 0..=9")));
    }
    let name = run
        .path
        .canonicalize()
        .map_err(|e| Error::io(&run.path, "resolving run folder", e))?
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "run".into());
    let folder = format!("pcam-bundle-{name}");
    let config = run.config()?;
    if !binary.is_file() {
        return Err(Error::NotFound {
            path: binary.to_path_buf(),
        });
    }

    let mut entries = Vec::new();
    let mut checkpoints = Vec::new();
    for which in ["best", "last"] {
        let p = run.checkpoint(which);
        if p.is_file() {
            // Refuse a checkpoint that will not load here rather than ship it.
            crate::train::checkpoint::load_weights(&p, &config.model.build(tch::Device::Cpu))?;
            entries.push(Entry::file(
                format!("run/checkpoints/{which}.ckpt"),
                &p,
                0o644,
            )?);
            checkpoints.push(which.to_string());
        }
    }
    if checkpoints.is_empty() {
        return Err(Error::bad_file(
            &run.path,
            "no checkpoints/best.ckpt or checkpoints/last.ckpt: train the run first",
        ));
    }
    for f in RUN_FILES {
        let p = run.path.join(f);
        if p.is_file() {
            entries.push(Entry::file(format!("run/{f}"), &p, 0o644)?);
        }
    }

    let libs = libraries(binary)?;
    let (mut glibc, mut glibcxx) = (None, None);
    let mut tsv = String::from("soname\tbytes\tsha256\torigin\n");
    let mut library_bytes = 0;
    let bar = progress.bar(libs.len() as u64 + 1, "bundle: hashing", "files");
    for lib in &libs {
        let mut e = Entry::file(format!("lib/{}", lib.soname), &lib.origin, 0o755)?;
        let mut bytes = Vec::with_capacity(e.size as usize);
        std::fs::File::open(&lib.origin)
            .and_then(|mut f| f.read_to_end(&mut bytes))
            .map_err(|err| Error::io(&lib.origin, "reading library", err))?;
        glibc = glibc.max(highest_version_tag(&bytes, "GLIBC_"));
        glibcxx = glibcxx.max(highest_version_tag(&bytes, "GLIBCXX_"));
        let sha = crate::fsutil::sha256_hex(&bytes);
        tsv.push_str(&format!(
            "{}\t{}\t{}\t{}\n",
            lib.soname,
            e.size,
            sha,
            lib.origin.display()
        ));
        e.sha256 = Some(sha);
        library_bytes += e.size;
        entries.push(e);
        bar.inc(1);
    }
    let bin_bytes = std::fs::read(binary).map_err(|e| Error::io(binary, "reading binary", e))?;
    glibc = glibc.max(highest_version_tag(&bin_bytes, "GLIBC_"));
    glibcxx = glibcxx.max(highest_version_tag(&bin_bytes, "GLIBCXX_"));
    // hashed from the bytes just read, not read a second time for SHA256SUMS
    let mut bin = Entry::file("bin/pcam".into(), binary, 0o755)?;
    bin.sha256 = Some(crate::fsutil::sha256_hex(&bin_bytes));
    entries.push(bin);
    bar.finish_and_clear();

    let threshold = crate::eval::run_threshold(run)
        .ok()
        .filter(|t| t.source != "default")
        .map(|t| t.threshold);
    let data_synthetic = run.data_synthetic(&config.data.dir);
    let manifest = Manifest {
        pcam_version: env!("CARGO_PKG_VERSION"),
        run: name.clone(),
        checkpoints,
        threshold,
        data_synthetic,
        libraries: libs.len(),
        library_bytes,
        host_needs: HostNeeds {
            os: "Linux x86_64",
            glibc: version_string("GLIBC_", &glibc),
            glibcxx: version_string("GLIBCXX_", &glibcxx),
            runtime_libraries: OS_RUNTIME
                .iter()
                .copied()
                .filter(|s| !s.starts_with("linux-vdso") && !s.contains("aarch64"))
                .collect(),
        },
        built_on: os_release(),
    };
    let json = serde_json::to_string_pretty(&manifest)
        .map_err(|e| Error::failed("serialising BUNDLE.json", e))?;
    entries.push(Entry::bytes(
        "BUNDLE.json",
        format!("{json}\n").into_bytes(),
        0o644,
    ));
    entries.push(Entry::bytes("LIBRARIES.tsv", tsv.into_bytes(), 0o644));
    entries.push(Entry::bytes(
        "README.md",
        readme(&manifest).into_bytes(),
        0o644,
    ));
    entries.push(Entry::bytes("pcam", WRAPPER.as_bytes().to_vec(), 0o755));
    entries.push(Entry::bytes("check.sh", CHECK.as_bytes().to_vec(), 0o755));
    entries.sort_by(|a, b| a.name.cmp(&b.name));

    let mut sums = String::new();
    for e in &entries {
        sums.push_str(&format!("{}  {}\n", e.sha256()?, e.name));
    }
    entries.push(Entry::bytes("SHA256SUMS", sums.into_bytes(), 0o644));

    let bytes_in: u64 = entries.iter().map(|e| e.size).sum();
    let tmp = TempPath::for_target(out);
    write_archive(
        &entries,
        &folder,
        tmp.path(),
        out,
        level,
        bytes_in,
        progress,
    )?;
    let bytes_out = std::fs::metadata(tmp.path())
        .map_err(|e| Error::io(out, "reading metadata", e))?
        .len();
    let sha256 = crate::fsutil::sha256_file(tmp.path())?;
    tmp.commit()?;
    Ok(BundleReport {
        out: out.to_path_buf(),
        folder,
        files: entries.len(),
        bytes_in,
        bytes_out,
        sha256,
        manifest,
    })
}

fn write_archive(
    entries: &[Entry],
    folder: &str,
    tmp: &Path,
    out: &Path,
    level: u32,
    total: u64,
    progress: Progress,
) -> Result<()> {
    let io = |e: std::io::Error| Error::io(out, "writing bundle", e);
    let file = std::fs::File::create(tmp).map_err(|e| Error::io(out, "creating file", e))?;
    let gz = flate2::GzBuilder::new().mtime(0).write(
        std::io::BufWriter::new(file),
        flate2::Compression::new(level),
    );
    let mut tar = tar::Builder::new(gz);
    tar.mode(tar::HeaderMode::Deterministic);
    let bar = progress.bytes(total, "bundle: packing");
    let mut dirs = BTreeSet::new();
    for e in entries {
        let path = format!("{folder}/{}", e.name);
        // each parent folder once, before its first file
        for (i, _) in path.match_indices('/') {
            if dirs.insert(path[..i].to_string()) {
                let mut h = header(tar::EntryType::Directory, 0o755, 0);
                tar.append_data(&mut h, format!("{}/", &path[..i]), std::io::empty())
                    .map_err(io)?;
            }
        }
        let mut h = header(tar::EntryType::Regular, e.mode, e.size);
        match &e.source {
            Source::Bytes(b) => tar.append_data(&mut h, &path, b.as_slice()).map_err(io)?,
            Source::File(p) => {
                let f = std::fs::File::open(p).map_err(|err| Error::io(p, "opening file", err))?;
                let reader = bar.wrap_read(f).take(e.size);
                tar.append_data(&mut h, &path, reader).map_err(io)?;
                continue;
            }
        }
        bar.inc(e.size);
    }
    let gz = tar.into_inner().map_err(io)?;
    let mut w = gz.finish().map_err(io)?;
    w.flush().map_err(io)?;
    w.into_inner()
        .map_err(|e| io(e.into_error()))?
        .sync_all()
        .map_err(io)?;
    bar.finish_and_clear();
    Ok(())
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h
}

fn os_release() -> Option<String> {
    let text = std::fs::read_to_string("/etc/os-release").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_string())
}

/// The bundle's entry point: its own libraries first on the loader path.
const WRAPPER: &str = r#"#!/bin/sh
# pcam from this bundle: the loader takes lib/ before anything on the host.
here=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd -P)
LD_LIBRARY_PATH="$here/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
HDF5_USE_FILE_LOCKING=${HDF5_USE_FILE_LOCKING:-FALSE}
export LD_LIBRARY_PATH HDF5_USE_FILE_LOCKING
exec "$here/bin/pcam" "$@"
"#;

/// Verifies an unpacked bundle; exit code 0 only when everything holds.
const CHECK: &str = r#"#!/bin/sh
# Checks this unpacked bundle: every file against SHA256SUMS, then that the loader
# resolves every library of bin/pcam inside lib/ (or to the host's C/C++ runtime).
set -eu
here=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd -P)
cd "$here"
sha256sum --check --quiet --strict SHA256SUMS || { echo "check: files differ from SHA256SUMS" >&2; exit 1; }
resolved=$(LD_LIBRARY_PATH="$here/lib" ldd bin/pcam)
if echo "$resolved" | grep -q 'not found'; then
  echo "check: libraries not found:" >&2
  echo "$resolved" | grep 'not found' >&2
  exit 1
fi
runtime='^(linux-vdso\.so\.1|ld-linux-x86-64\.so\.2|libc\.so\.6|libm\.so\.6|libdl\.so\.2|libpthread\.so\.0|librt\.so\.1|libutil\.so\.1|libresolv\.so\.2|libstdc\+\+\.so\.6|libgcc_s\.so\.1)$'
outside=$(echo "$resolved" | awk -v lib="$here/lib/" '$2 == "=>" && index($3, lib) != 1 {print $1}' | grep -Ev "$runtime" || true)
if [ -n "$outside" ]; then
  echo "check: resolved outside the bundle: $outside" >&2
  exit 1
fi
"$here/pcam" --version >/dev/null || { echo "check: bin/pcam does not start on this host" >&2; exit 1; }
echo "check: ok ($(wc -l < SHA256SUMS) files, $(ls lib | wc -l) libraries, $("$here/pcam" --version))"
"#;

fn readme(m: &Manifest) -> String {
    let synthetic = match &m.data_synthetic {
        Some(note) => format!(
            "\n**This model was trained on SYNTHETIC data** ({note}); its probabilities say \
             nothing about real lymph-node tissue.\n"
        ),
        None => String::new(),
    };
    let threshold = match m.threshold {
        Some(t) => format!("the run's stored threshold {t} (`run/threshold.json`)"),
        None => "0.5 (the run has no stored threshold)".into(),
    };
    let needs = [&m.host_needs.glibc, &m.host_needs.glibcxx]
        .iter()
        .filter_map(|v| v.as_deref())
        .collect::<Vec<_>>()
        .join(", ");
    let folder = format!("pcam-bundle-{}", m.run);
    format!(
        r#"# pcam {version} — offline bundle of run `{run}`
{synthetic}
Everything needed to predict with this run on a Linux x86_64 machine without the
repository, Python, an HDF5 installation or network access.

## Check
```sh
tar -xzf ARCHIVE.tar.gz && cd {folder}   # the file pcam bundle wrote
./check.sh          # SHA256SUMS, libraries resolve inside lib/, the binary starts
```

## Predict
```sh
./pcam predict --run run --device cpu --out predictions.csv tiles_x.h5 tile.png pngs/
```
Inputs: PCAM `x` files (`.h5` or `.h5.gz`; only `x` is read), 96×96 RGB PNG tiles, or
folders of them. Output CSV columns: `input,index,probability,label,note`; `label` uses
{threshold} unless `--threshold` is given. `--checkpoint last` uses the last epoch's
weights instead of the best ({checkpoints}).

## What the host must have
- Linux x86_64 with the C/C++ runtime: glibc and libstdc++ new enough for {needs}
  (the highest version tags the shipped files reference), libgcc_s.
- Nothing else for CPU inference. The {libraries} libraries in `lib/` ({mib} MiB; list with
  origins and SHA-256 in `LIBRARIES.tsv`) are those the loader links at start-up.
  GPU inference additionally needs the NVIDIA driver (`libcuda.so.1`) and the cuDNN
  engine libraries libtorch opens on demand, which are not shipped: use `--device cpu`.

## Contents
`pcam` (wrapper: `lib/` first on the loader path), `bin/pcam`, `lib/`, `run/` (resolved
config, manifest, metrics, threshold, checkpoints), `BUNDLE.json`, `LIBRARIES.tsv`,
`check.sh`, `SHA256SUMS`. Built on {built_on}.
"#,
        version = m.pcam_version,
        run = m.run,
        checkpoints = m.checkpoints.join(", "),
        libraries = m.libraries,
        mib = m.library_bytes / (1 << 20),
        built_on = m.built_on.as_deref().unwrap_or("an unknown Linux"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldd_output_keeps_libraries_and_drops_the_os_runtime() {
        let text = "\tlinux-vdso.so.1 (0x00007ffd)\n\
            \tlibtorch_cpu.so => /v/torch/lib/libtorch_cpu.so (0x00007f01)\n\
            \tlibstdc++.so.6 => /lib/x86_64-linux-gnu/libstdc++.so.6 (0x00007f02)\n\
            \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f03)\n\
            \t/lib64/ld-linux-x86-64.so.2 (0x00007f04)\n\
            \tlibc10.so => /v/torch/lib/libc10.so (0x00007f05)\n\
            \tlibc10.so => /v/torch/lib/libc10.so (0x00007f05)\n";
        let libs = parse_ldd(Path::new("pcam"), text).unwrap();
        let names: Vec<&str> = libs.iter().map(|l| l.soname.as_str()).collect();
        assert_eq!(names, ["libc10.so", "libtorch_cpu.so"]);
        assert_eq!(libs[1].origin, Path::new("/v/torch/lib/libtorch_cpu.so"));
    }

    #[test]
    fn a_missing_library_is_named() {
        let e = parse_ldd(Path::new("bin/pcam"), "\tlibtorch_cuda.so => not found\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("bin/pcam: the loader cannot find libtorch_cuda.so"),
            "{e}"
        );
        let e = parse_ldd(Path::new("p"), "\tgarbage line here\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot read this ldd line"), "{e}");
    }

    #[test]
    fn version_tags_compare_numerically() {
        let b =
            b"..GLIBC_2.9\0GLIBC_2.34\0GLIBC_2.2.5\0GLIBCXX_3.4.9\0GLIBCXX_3.4.30\0GLIBC_PRIVATE";
        assert_eq!(highest_version_tag(b, "GLIBC_"), Some(vec![2, 34]));
        assert_eq!(highest_version_tag(b, "GLIBCXX_"), Some(vec![3, 4, 30]));
        assert_eq!(highest_version_tag(b"nothing", "GLIBC_"), None);
        assert_eq!(
            version_string("GLIBC_", &Some(vec![2, 34])).as_deref(),
            Some("GLIBC_2.34")
        );
    }
}
