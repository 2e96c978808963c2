//! A small blocking client for the MLflow tracking server's REST API (`/api/2.0/mlflow`)
//! and its artifact proxy (`/api/2.0/mlflow-artifacts`). It encodes what the server
//! needs rather than what JSON would suggest: parameters always as strings, NaN and
//! infinities as the strings "NaN"/"Infinity"/"-Infinity", batches within the server's
//! limits; it retries with backoff on transport errors, 429, 5xx and the server's
//! "QueuePool limit" 400 (how an overloaded MLflow says so).

use crate::error::{Error, Result};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

/// log-batch limits of the server.
pub const MAX_METRICS: usize = 1000;
pub const MAX_PARAMS: usize = 100;
pub const MAX_TAGS: usize = 100;
/// Longest parameter value the server keeps (it truncates silently beyond).
pub const MAX_PARAM_VALUE: usize = 6000;
/// Longest tag value the server keeps.
pub const MAX_TAG_VALUE: usize = 8000;

/// One metric point.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    pub key: String,
    pub value: f64,
    /// Milliseconds since the Unix epoch.
    pub timestamp: i64,
    pub step: i64,
}

/// A run on the server.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteRun {
    pub run_id: String,
    pub run_name: String,
    pub experiment_id: String,
    pub status: String,
    /// `mlflow-artifacts:/<exp>/<run>/artifacts` when the server proxies artifacts.
    pub artifact_uri: String,
    pub start_time: Option<i64>,
    pub end_time: Option<i64>,
    pub deleted: bool,
    pub tags: BTreeMap<String, String>,
    pub params: BTreeMap<String, String>,
    /// Latest value of each metric.
    pub metrics: BTreeMap<String, f64>,
}

/// A connection to one tracking server.
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    agent: ureq::Agent,
    attempts: u32,
}

/// Why one HTTP exchange failed.
enum Failure {
    /// Worth trying again (transport error, 429, 5xx, pool exhausted).
    Transient(String),
    /// The server answered and meant it.
    Refused {
        status: u16,
        code: String,
        message: String,
    },
}

impl Client {
    /// A client for `uri` (`http://host:port`, no trailing path). `attempts` ≥ 1 bounds the
    /// retries of each request (backoff 0.25 s, doubling).
    pub fn new(uri: &str, attempts: u32) -> Result<Client> {
        let base = uri.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(Error::tracking(
                uri,
                "not an http(s) URI (pcam logs to an MLflow tracking server over REST)",
            ));
        }
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(3)))
            .timeout_global(Some(Duration::from_secs(300)))
            .build()
            .into();
        Ok(Client {
            base,
            agent,
            attempts: attempts.max(1),
        })
    }

    /// The server's base URI.
    pub fn uri(&self) -> &str {
        &self.base
    }

    /// One request with retries; returns the response body on 2xx.
    fn call(
        &self,
        what: &str,
        send: &dyn Fn() -> std::result::Result<(u16, Vec<u8>), String>,
    ) -> Result<Vec<u8>> {
        let mut wait = Duration::from_millis(250);
        let mut last = String::new();
        for attempt in 1..=self.attempts {
            let failure = match send() {
                Ok((status, body)) if (200..300).contains(&status) => return Ok(body),
                Ok((status, body)) => classify(status, &body),
                Err(e) => Failure::Transient(e),
            };
            match failure {
                Failure::Refused {
                    status,
                    code,
                    message,
                } => {
                    return Err(Error::tracking(
                        &self.base,
                        format!("{what}: HTTP {status} {code}: {message}"),
                    ))
                }
                Failure::Transient(m) => last = m,
            }
            if attempt < self.attempts {
                std::thread::sleep(wait);
                wait *= 2;
            }
        }
        Err(Error::tracking(
            &self.base,
            format!("{what}: {last} (after {} attempts)", self.attempts),
        ))
    }

    fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<Value> {
        let url = format!("{}/api/2.0/mlflow/{path}", self.base);
        let body = self.call(&format!("GET {path}"), &|| {
            let mut r = self.agent.get(&url);
            for (k, v) in query {
                r = r.query(*k, *v);
            }
            read(r.call())
        })?;
        parse(&self.base, path, &body)
    }

    fn post(&self, path: &str, payload: &Value) -> Result<Value> {
        let url = format!("{}/api/2.0/mlflow/{path}", self.base);
        let text = payload.to_string();
        let body = self.call(&format!("POST {path}"), &|| {
            read(
                self.agent
                    .post(&url)
                    .header("Content-Type", "application/json")
                    .send(text.as_bytes()),
            )
        })?;
        parse(&self.base, path, &body)
    }

    /// Checks the server answers `/health`.
    pub fn health(&self) -> Result<()> {
        let url = format!("{}/health", self.base);
        self.call("GET /health", &|| read(self.agent.get(&url).call()))
            .map(|_| ())
    }

    /// The id of experiment `name`, created when missing.
    pub fn experiment_id(&self, name: &str) -> Result<String> {
        for _ in 0..2 {
            match self.get("experiments/get-by-name", &[("experiment_name", name)]) {
                Ok(v) => {
                    let e = &v["experiment"];
                    if e["lifecycle_stage"].as_str() == Some("deleted") {
                        return Err(Error::tracking(
                            &self.base,
                            format!("experiment `{name}` is deleted on the server; restore it or log to another name"),
                        ));
                    }
                    return str_field(&self.base, e, "experiment_id");
                }
                Err(e) if is_code(&e, "RESOURCE_DOES_NOT_EXIST") => {}
                Err(e) => return Err(e),
            }
            match self.post("experiments/create", &json!({ "name": name })) {
                Ok(v) => return str_field(&self.base, &v, "experiment_id"),
                // Created meanwhile by another process: look it up again.
                Err(e) if is_code(&e, "RESOURCE_ALREADY_EXISTS") => {}
                Err(e) => return Err(e),
            }
        }
        Err(Error::tracking(
            &self.base,
            format!("experiment `{name}` could not be found or created"),
        ))
    }

    /// Creates a run with `tags` (`mlflow.runName` is set from `name`).
    pub fn create_run(
        &self,
        experiment_id: &str,
        name: &str,
        start_ms: i64,
        tags: &[(String, String)],
    ) -> Result<RemoteRun> {
        let tags: Vec<Value> = tags
            .iter()
            .take(MAX_TAGS)
            .map(|(k, v)| json!({ "key": k, "value": clip(v, MAX_TAG_VALUE) }))
            .collect();
        let v = self.post(
            "runs/create",
            &json!({ "experiment_id": experiment_id, "run_name": name,
                     "start_time": start_ms, "tags": tags }),
        )?;
        remote_run(&self.base, &v["run"])
    }

    /// The run `run_id`, or `None` when the server has no such run.
    pub fn get_run(&self, run_id: &str) -> Result<Option<RemoteRun>> {
        match self.get("runs/get", &[("run_id", run_id)]) {
            Ok(v) => remote_run(&self.base, &v["run"]).map(Some),
            Err(e) if is_code(&e, "RESOURCE_DOES_NOT_EXIST") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Runs of an experiment, newest first, optionally filtered (MLflow search syntax).
    pub fn search_runs(&self, experiment_id: &str, filter: &str) -> Result<Vec<RemoteRun>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut q = json!({ "experiment_ids": [experiment_id], "filter": filter,
                                "max_results": 1000, "order_by": ["attributes.start_time DESC"] });
            if let Some(t) = &token {
                q["page_token"] = json!(t);
            }
            let v = self.post("runs/search", &q)?;
            for r in v["runs"].as_array().into_iter().flatten() {
                out.push(remote_run(&self.base, r)?);
            }
            token = v["next_page_token"].as_str().map(str::to_string);
            if token.is_none() {
                return Ok(out);
            }
        }
    }

    /// Logs parameters, tags and metrics, split into batches within the server's limits.
    /// Parameter and tag values are sent as strings, clipped to what the server keeps.
    pub fn log_batch(
        &self,
        run_id: &str,
        params: &[(String, String)],
        tags: &[(String, String)],
        metrics: &[Metric],
    ) -> Result<()> {
        // Parameters and tags: key/value pairs, values clipped to the server's limit.
        let pairs = |chunk: &[(String, String)], max: usize| -> Vec<Value> {
            chunk
                .iter()
                .map(|(k, v)| json!({ "key": k, "value": clip(v, max) }))
                .collect()
        };
        for chunk in params.chunks(MAX_PARAMS) {
            let p = pairs(chunk, MAX_PARAM_VALUE);
            self.post("runs/log-batch", &json!({ "run_id": run_id, "params": p }))?;
        }
        for chunk in tags.chunks(MAX_TAGS) {
            let t = pairs(chunk, MAX_TAG_VALUE);
            self.post("runs/log-batch", &json!({ "run_id": run_id, "tags": t }))?;
        }
        for chunk in metrics.chunks(MAX_METRICS) {
            let m: Vec<Value> = chunk
                .iter()
                .map(|m| {
                    json!({ "key": m.key, "value": metric_value(m.value),
                                 "timestamp": m.timestamp, "step": m.step })
                })
                .collect();
            self.post("runs/log-batch", &json!({ "run_id": run_id, "metrics": m }))?;
        }
        Ok(())
    }

    /// Sets a run's status (RUNNING, FINISHED, FAILED, KILLED) and end time.
    pub fn update_run(&self, run_id: &str, status: &str, end_ms: Option<i64>) -> Result<()> {
        let mut q = json!({ "run_id": run_id, "status": status });
        if let Some(t) = end_ms {
            q["end_time"] = json!(t);
        }
        self.post("runs/update", &q).map(|_| ())
    }

    /// Full history of one metric: (step, timestamp, value), in server order.
    pub fn metric_history(&self, run_id: &str, key: &str) -> Result<Vec<(i64, i64, f64)>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut q = vec![
                ("run_id", run_id),
                ("metric_key", key),
                ("max_results", "25000"),
            ];
            if let Some(t) = token.as_deref() {
                q.push(("page_token", t));
            }
            let v = self.get("metrics/get-history", &q)?;
            for m in v["metrics"].as_array().into_iter().flatten() {
                out.push((
                    m["step"].as_i64().unwrap_or(0),
                    m["timestamp"].as_i64().unwrap_or(0),
                    number(&m["value"]),
                ));
            }
            token = v["next_page_token"].as_str().map(str::to_string);
            if token.is_none() {
                return Ok(out);
            }
        }
    }

    /// The proxied artifact URL of `rel` under a run's `artifact_uri`.
    fn artifact_url(&self, artifact_uri: &str, rel: &str) -> Result<String> {
        let root = artifact_uri.strip_prefix("mlflow-artifacts:").ok_or_else(|| {
            Error::tracking(
                &self.base,
                format!("the server stores artifacts at `{artifact_uri}`, which pcam cannot write; start it with artifact proxying (mlflow server --artifacts-destination DIR)"),
            )
        })?;
        let root = root.trim_start_matches('/');
        let rel: Vec<String> = rel.split('/').map(encode_segment).collect();
        Ok(format!(
            "{}/api/2.0/mlflow-artifacts/artifacts/{root}/{}",
            self.base,
            rel.join("/")
        ))
    }

    /// Uploads `bytes` as artifact `rel` (a `/`-separated path) of the run.
    pub fn put_artifact(&self, artifact_uri: &str, rel: &str, bytes: &[u8]) -> Result<()> {
        let url = self.artifact_url(artifact_uri, rel)?;
        self.call(&format!("PUT artifact {rel}"), &|| {
            read(self.agent.put(&url).send(bytes))
        })
        .map(|_| ())
    }

    /// Downloads artifact `rel` of the run.
    pub fn get_artifact(&self, artifact_uri: &str, rel: &str) -> Result<Vec<u8>> {
        let url = self.artifact_url(artifact_uri, rel)?;
        self.call(&format!("GET artifact {rel}"), &|| {
            read(self.agent.get(&url).call())
        })
    }

    /// Every artifact file of a run (relative paths, sorted), walking folders.
    pub fn list_artifacts(&self, run_id: &str) -> Result<Vec<(String, u64)>> {
        let mut out = Vec::new();
        let mut todo = vec![String::new()];
        while let Some(dir) = todo.pop() {
            let v = self.get("artifacts/list", &[("run_id", run_id), ("path", &dir)])?;
            for f in v["files"].as_array().into_iter().flatten() {
                let path = f["path"].as_str().unwrap_or_default().to_string();
                if f["is_dir"].as_bool() == Some(true) {
                    todo.push(path);
                } else {
                    let size = f["file_size"]
                        .as_u64()
                        .or_else(|| f["file_size"].as_str().and_then(|s| s.parse().ok()))
                        .unwrap_or(0);
                    out.push((path, size));
                }
            }
        }
        out.sort();
        Ok(out)
    }
}

/// Status and body of a response, or the transport error as text.
fn read(
    r: std::result::Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> std::result::Result<(u16, Vec<u8>), String> {
    let mut resp = r.map_err(|e| crate::error::one_line(&e.to_string()))?;
    let status = resp.status().as_u16();
    let body = resp
        .body_mut()
        .with_config()
        .limit(u64::MAX)
        .read_to_vec()
        .map_err(|e| crate::error::one_line(&e.to_string()))?;
    Ok((status, body))
}

fn classify(status: u16, body: &[u8]) -> Failure {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let code = v["error_code"].as_str().unwrap_or("").to_string();
    let message = v["message"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned());
    if status == 429 || status >= 500 || message.contains("QueuePool limit") {
        Failure::Transient(format!("HTTP {status} {code}: {message}"))
    } else {
        Failure::Refused {
            status,
            code,
            message,
        }
    }
}

fn parse(base: &str, path: &str, body: &[u8]) -> Result<Value> {
    if body.is_empty() {
        return Ok(Value::Object(Default::default()));
    }
    serde_json::from_slice(body)
        .map_err(|e| Error::tracking(base, format!("{path}: answer is not JSON: {e}")))
}

fn is_code(e: &Error, code: &str) -> bool {
    matches!(e, Error::Tracking { msg, .. } if msg.contains(code))
}

fn str_field(base: &str, v: &Value, key: &str) -> Result<String> {
    v[key]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| Error::tracking(base, format!("answer lacks `{key}`")))
}

/// How the server wants a metric value: finite numbers as numbers, the rest as strings
/// (a bare NaN would be stored as 0.0, and JSON `null` is refused).
pub fn metric_value(v: f64) -> Value {
    if v.is_nan() {
        json!("NaN")
    } else if v == f64::INFINITY {
        json!("Infinity")
    } else if v == f64::NEG_INFINITY {
        json!("-Infinity")
    } else {
        json!(v)
    }
}

/// A metric value as the server returns it (number or one of the special strings).
fn number(v: &Value) -> f64 {
    match v {
        Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
        Value::String(s) => match s.as_str() {
            "Infinity" => f64::INFINITY,
            "-Infinity" => f64::NEG_INFINITY,
            other => other.parse().unwrap_or(f64::NAN),
        },
        _ => f64::NAN,
    }
}

/// `s` cut to at most `max` bytes on a character boundary.
pub fn clip(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn encode_segment(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn remote_run(base: &str, r: &Value) -> Result<RemoteRun> {
    let info = &r["info"];
    let pairs = |v: &Value| -> BTreeMap<String, String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| {
                Some((
                    p["key"].as_str()?.to_string(),
                    p["value"].as_str()?.to_string(),
                ))
            })
            .collect()
    };
    let metrics = r["data"]["metrics"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| Some((m["key"].as_str()?.to_string(), number(&m["value"]))))
        .collect();
    let time = |k: &str| {
        info[k]
            .as_i64()
            .or_else(|| info[k].as_str().and_then(|s| s.parse().ok()))
    };
    Ok(RemoteRun {
        run_id: str_field(base, info, "run_id")?,
        run_name: info["run_name"].as_str().unwrap_or_default().to_string(),
        experiment_id: info["experiment_id"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        status: info["status"].as_str().unwrap_or_default().to_string(),
        artifact_uri: info["artifact_uri"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        start_time: time("start_time"),
        end_time: time("end_time"),
        deleted: info["lifecycle_stage"].as_str() == Some("deleted"),
        tags: pairs(&r["data"]["tags"]),
        params: pairs(&r["data"]["params"]),
        metrics,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_floats_are_sent_as_the_strings_the_server_understands() {
        assert_eq!(metric_value(f64::NAN), json!("NaN"));
        assert_eq!(metric_value(f64::INFINITY), json!("Infinity"));
        assert_eq!(metric_value(f64::NEG_INFINITY), json!("-Infinity"));
        assert_eq!(metric_value(0.25), json!(0.25));
        for v in [f64::INFINITY, f64::NEG_INFINITY, 1.5e-300] {
            assert_eq!(number(&metric_value(v)), v);
        }
        assert!(number(&metric_value(f64::NAN)).is_nan());
    }

    #[test]
    fn clipping_respects_character_boundaries() {
        assert_eq!(clip("abcdef", 4), "abcd");
        assert_eq!(clip("ab", 4), "ab");
        assert_eq!(clip("aé", 2), "a");
    }

    #[test]
    fn overload_and_server_errors_are_retried_but_refusals_are_not() {
        let pool = br#"{"error_code":"BAD_REQUEST","message":"QueuePool limit of size 5 overflow 10 reached"}"#;
        assert!(matches!(classify(400, pool), Failure::Transient(_)));
        assert!(matches!(classify(503, b"busy"), Failure::Transient(_)));
        assert!(matches!(classify(429, b""), Failure::Transient(_)));
        let bad = br#"{"error_code":"INVALID_PARAMETER_VALUE","message":"Changing param values is not allowed"}"#;
        match classify(400, bad) {
            Failure::Refused { status, code, .. } => {
                assert_eq!((status, code.as_str()), (400, "INVALID_PARAMETER_VALUE"))
            }
            Failure::Transient(m) => panic!("retried a refusal: {m}"),
        }
    }

    #[test]
    fn artifact_paths_are_proxied_and_encoded() {
        let c = Client::new("http://127.0.0.1:5000/", 1).unwrap();
        assert_eq!(
            c.artifact_url("mlflow-artifacts:/1/abc/artifacts", "figures/roc curve.png")
                .unwrap(),
            "http://127.0.0.1:5000/api/2.0/mlflow-artifacts/artifacts/1/abc/artifacts/figures/roc%20curve.png"
        );
        let e = c
            .artifact_url("s3://bucket/1/abc", "x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("artifact proxying"), "{e}");
        assert!(Client::new("file:///tmp/mlruns", 1).is_err());
    }
}
