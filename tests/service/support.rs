//! A real `modelguard serve` process on a loopback port, tokens for three principals, and a
//! small HTTP client (ureq for ordinary requests, a raw socket for malformed ones).

use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const ADMIN: &str = "mg_test_admin_0123456789abcdef0123456789abcdef";
pub const ALICE: &str = "mg_test_alice_0123456789abcdef0123456789abcdef";
pub const BOB: &str = "mg_test_bob_0123456789abcdef0123456789abcdef01";

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn sha256(b: &[u8]) -> String {
    hex(&Sha256::digest(b))
}

/// The tokens file: only hashes, as `modelguard token` writes them.
pub fn write_tokens(path: &Path) {
    let entry = |name: &str, role: &str, token: &str| {
        format!(
            "[[token]]\nname = \"{name}\"\nrole = \"{role}\"\nsha256 = \"{}\"\n",
            sha256(token.as_bytes())
        )
    };
    let text = entry("admin", "admin", ADMIN)
        + &entry("alice", "submit", ALICE)
        + &entry("bob", "submit", BOB);
    std::fs::write(path, text).unwrap();
}

pub struct Server {
    child: Child,
    pub base: String,
    pub addr: String,
    pub data: PathBuf,
    logs: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// Start `modelguard serve` on `data` (created if needed) with JSON logs and `extra` flags.
    pub fn start(data: &Path, extra: &[&str]) -> Server {
        std::fs::create_dir_all(data).unwrap();
        let tokens = data.with_extension("tokens.toml");
        if !tokens.exists() {
            write_tokens(&tokens);
        }
        let mut child = Command::new(env!("CARGO_BIN_EXE_modelguard"))
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--log-format",
                "json",
                "--data-dir",
            ])
            .arg(data)
            .arg("--tokens")
            .arg(&tokens)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start modelguard serve");
        let stderr = child.stderr.take().unwrap();
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    let _ = tx.send(rest.trim().to_string());
                }
                sink.lock().unwrap().push(line);
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(a) => a,
            Err(_) => {
                let _ = child.kill();
                panic!("the server did not start: {:?}", logs.lock().unwrap());
            }
        };
        Server {
            child,
            base: format!("http://{addr}"),
            addr,
            data: data.to_path_buf(),
            logs,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `kill -9`: no chance to clean up.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The JSON log lines so far.
    pub fn logs(&self) -> Vec<serde_json::Value> {
        self.logs
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(600)))
        .build()
        .into()
}

pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "{} is not JSON ({e}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The `type` of an RFC 9457 problem answer (and its content type is checked).
    pub fn problem(&self) -> String {
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "status {}",
            self.status
        );
        self.json()["type"].as_str().unwrap().to_string()
    }
}

fn reply(mut r: ureq::http::Response<ureq::Body>) -> Reply {
    let headers = r
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let body = r
        .body_mut()
        .with_config()
        .limit(u64::MAX)
        .read_to_vec()
        .unwrap();
    Reply {
        status: r.status().as_u16(),
        headers,
        body,
    }
}

pub fn get(agent: &ureq::Agent, url: &str, token: Option<&str>) -> Reply {
    let mut req = agent.get(url);
    if let Some(t) = token {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    reply(req.call().expect("GET"))
}

pub fn delete(agent: &ureq::Agent, url: &str, token: &str) -> Reply {
    reply(
        agent
            .delete(url)
            .header("Authorization", format!("Bearer {token}"))
            .call()
            .expect("DELETE"),
    )
}

/// One part of a multipart form.
pub enum Part<'a> {
    File(&'a str, &'a [u8]),
    Text(&'a str),
}

pub fn multipart(parts: &[(&str, Part<'_>)]) -> (String, Vec<u8>) {
    let boundary = "----modelguard-test-boundary-7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    for (name, part) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match part {
            Part::File(file_name, data) => {
                body.extend_from_slice(
                    format!(
                        "Content-Disposition: form-data; name=\"{name}\"; filename=\"{file_name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                    )
                    .as_bytes(),
                );
                body.extend_from_slice(data);
            }
            Part::Text(value) => {
                body.extend_from_slice(
                    format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}")
                        .as_bytes(),
                );
            }
        }
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

pub fn post_form(
    agent: &ureq::Agent,
    server: &Server,
    token: &str,
    parts: &[(&str, Part<'_>)],
) -> Reply {
    let (content_type, body) = multipart(parts);
    reply(
        agent
            .post(server.url("/v1/jobs"))
            .header("Authorization", format!("Bearer {token}"))
            .header("Content-Type", content_type)
            // As well-behaved clients do: an early refusal (401, 413, 429) arrives before the body is sent.
            .header("Expect", "100-continue")
            .send(&body[..])
            .expect("POST"),
    )
}

/// Upload one file; the 202 answer.
pub fn submit(agent: &ureq::Agent, server: &Server, token: &str, name: &str, data: &[u8]) -> Reply {
    post_form(agent, server, token, &[("file", Part::File(name, data))])
}

/// Poll a job until it is converted, refused or failed.
pub fn wait_terminal(
    agent: &ureq::Agent,
    server: &Server,
    token: &str,
    id: &str,
    limit: Duration,
) -> serde_json::Value {
    let start = Instant::now();
    loop {
        let r = get(agent, &server.url(&format!("/v1/jobs/{id}")), Some(token));
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let job = r.json();
        if matches!(
            job["state"].as_str(),
            Some("converted" | "refused" | "failed")
        ) {
            return job;
        }
        assert!(
            start.elapsed() < limit,
            "job {id} did not end in {limit:?}: {job}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Send raw bytes and read the whole answer (the connection is closed by `Connection: close`).
pub fn raw(addr: &str, request: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

/// Peak resident memory of a process (VmHWM), in KiB.
pub fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}
