//! A local MLflow tracking server for one user: low-memory settings (one worker, no job
//! execution, no telemetry), SQLite store and proxied artifacts under one folder,
//! loopback only. `<dir>/server.json` records its PID, port and URL; `stop` signals the
//! server's process group by that PID and waits for it to go.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The record of a started server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerInfo {
    pub pid: u32,
    pub port: u16,
    pub url: String,
    pub dir: PathBuf,
    pub log: PathBuf,
    pub mlflow: PathBuf,
}

const RECORD: &str = "server.json";

/// The `mlflow` executable: `explicit`, else `$PCAM_MLFLOW`, else the active virtual
/// environment's, else the project's `.venv`, else `mlflow` on PATH.
pub fn find_mlflow(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = explicit {
        return if p.is_file() {
            Ok(std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf()))
        } else {
            Err(Error::NotFound {
                path: p.to_path_buf(),
            })
        };
    }
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Ok(p) = std::env::var("PCAM_MLFLOW") {
        candidates.push(p.into());
    }
    if let Ok(v) = std::env::var("VIRTUAL_ENV") {
        candidates.push(Path::new(&v).join("bin/mlflow"));
    }
    candidates.push(PathBuf::from(".venv/bin/mlflow"));
    if let Ok(path) = std::env::var("PATH") {
        candidates.extend(std::env::split_paths(&path).map(|d| d.join("mlflow")));
    }
    candidates
        .into_iter()
        .find(|p| p.is_file())
        // Absolute: the server is started from its own folder.
        .map(|p| std::fs::canonicalize(&p).unwrap_or(p))
        .ok_or_else(|| {
        Error::Usage(
            "no `mlflow` executable found (PCAM_MLFLOW, $VIRTUAL_ENV/bin, .venv/bin, PATH); `make setup` installs it into .venv".into(),
        )
    })
}

/// Whether `pid` is a live (not zombie) process.
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// Whether any live process belongs to process group `pgid`.
fn group_alive(pgid: u32) -> bool {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return alive(pgid);
    };
    rd.flatten().any(|e| {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            return false;
        };
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| {
                let rest = s.rsplit_once(')')?.1.split_whitespace().collect::<Vec<_>>();
                // Fields after the name: state, ppid, pgrp.
                Some(rest.first()? != &"Z" && rest.get(2)?.parse::<u32>().ok()? == pgid)
            })
            .unwrap_or(false)
    })
}

/// The server recorded in `dir`, if it is still running.
pub fn status(dir: &Path) -> Result<Option<ServerInfo>> {
    let p = dir.join(RECORD);
    let text = match std::fs::read_to_string(&p) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(&p, "reading", e)),
    };
    let info: ServerInfo = serde_json::from_str(&text)
        .map_err(|e| Error::bad_file(&p, format!("invalid server record: {e}")))?;
    Ok(alive(info.pid).then_some(info))
}

/// A free loopback port (the OS picks it; a small race with other programs remains).
fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| Error::failed("no free loopback port", e))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| Error::failed("no free loopback port", e))
}

/// Starts a server with its store in `dir` on `port` (0: a free one) and waits until it
/// answers `/health`. Refuses when `dir` already has a running server.
pub fn start(dir: &Path, port: u16, mlflow: Option<&Path>) -> Result<ServerInfo> {
    use std::os::unix::process::CommandExt;
    if let Some(s) = status(dir)? {
        return Err(Error::Usage(format!(
            "{}: a server is already running there (pid {}, {}); stop it first",
            dir.display(),
            s.pid,
            s.url
        )));
    }
    let mlflow = find_mlflow(mlflow)?;
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, "creating folder", e))?;
    let dir = std::fs::canonicalize(dir).map_err(|e| Error::io(dir, "resolving", e))?;
    let port = if port == 0 { free_port()? } else { port };
    let log = dir.join("server.log");
    let out = std::fs::File::create(&log).map_err(|e| Error::io(&log, "creating", e))?;
    let err = out.try_clone().map_err(|e| Error::io(&log, "opening", e))?;
    let url = format!("http://127.0.0.1:{port}");
    let child = std::process::Command::new(&mlflow)
        .args([
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--workers",
            "1",
        ])
        .arg("--backend-store-uri")
        .arg(format!("sqlite:///{}", dir.join("mlflow.db").display()))
        .arg("--artifacts-destination")
        .arg(dir.join("mlartifacts"))
        .env("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
        .env("MLFLOW_DISABLE_TELEMETRY", "true")
        .env("DO_NOT_TRACK", "true")
        .current_dir(&dir)
        .stdin(std::process::Stdio::null())
        .stdout(out)
        .stderr(err)
        // Its own process group: a Ctrl-C in the starting shell does not reach it, and
        // `stop` signals the server with all its workers.
        .process_group(0)
        .spawn()
        .map_err(|e| Error::io(&mlflow, "starting mlflow server", e))?;
    let info = ServerInfo {
        pid: child.id(),
        port,
        url: url.clone(),
        dir: dir.clone(),
        log: log.clone(),
        mlflow,
    };
    let text = serde_json::to_string_pretty(&info)
        .map_err(|e| Error::failed("serialising server record", e))?;
    crate::fsutil::write_atomic(&dir.join(RECORD), format!("{text}\n").as_bytes())?;
    let client = super::Client::new(&url, 1)?;
    let t0 = Instant::now();
    loop {
        if client.health().is_ok() {
            return Ok(info);
        }
        if !alive(info.pid) || t0.elapsed() > Duration::from_secs(120) {
            let tail = std::fs::read_to_string(&log).unwrap_or_default();
            let last = tail
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("(empty log)")
                .to_string();
            let _ = stop(&dir);
            return Err(Error::bad_file(
                &log,
                format!("mlflow server did not come up on {url}: {last}"),
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Stops the server recorded in `dir` (SIGTERM to its process group, SIGKILL after 20 s)
/// and removes the record. Returns its PID, or `None` when none was running.
pub fn stop(dir: &Path) -> Result<Option<u32>> {
    let record = dir.join(RECORD);
    let Some(info) = status(dir)? else {
        let _ = std::fs::remove_file(&record);
        return Ok(None);
    };
    let pgid = info.pid as libc::pid_t;
    // SAFETY: kill(2) with a negative pid signals the process group the server leads.
    unsafe {
        libc::kill(-pgid, libc::SIGTERM);
    }
    let t0 = Instant::now();
    let mut killed = false;
    while group_alive(info.pid) {
        // Reaps the server when this process started it (a notebook kernel); harmless
        // otherwise (ECHILD).
        // SAFETY: waitpid with WNOHANG on a pid; no memory is shared.
        unsafe {
            libc::waitpid(pgid, std::ptr::null_mut(), libc::WNOHANG);
        }
        if !killed && t0.elapsed() > Duration::from_secs(20) {
            // SAFETY: as above.
            unsafe {
                libc::kill(-pgid, libc::SIGKILL);
            }
            killed = true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    std::fs::remove_file(&record).map_err(|e| Error::io(&record, "removing", e))?;
    Ok(Some(info.pid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_record_means_no_server_and_stop_is_a_no_op() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(status(d.path()).unwrap(), None);
        assert_eq!(stop(d.path()).unwrap(), None);
        assert!(alive(std::process::id()));
    }

    #[test]
    fn missing_executable_is_named() {
        let e = find_mlflow(Some(Path::new("/nonexistent/mlflow")))
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nonexistent/mlflow"), "{e}");
    }
}
