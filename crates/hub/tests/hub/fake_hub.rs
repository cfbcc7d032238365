//! A loopback HTTP server that answers like the Hugging Face hub for the requests q3tts-hub makes:
//! the revision file list, HEAD/GET on resolve URLs (302 with a relative Location for LFS files),
//! ranged content, a request log, and injected faults (cut connections, corrupted bytes).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

/// One file of a served repository.
#[derive(Clone)]
pub struct Served {
    pub bytes: Arc<Vec<u8>>,
    pub lfs: bool,
    /// The blob name the cache must use: sha256 for LFS files, a git-like oid otherwise.
    pub etag: String,
    /// What `ETag` says for LFS files (the git oid of the pointer, here of the content).
    pub oid: String,
}

#[derive(Clone)]
pub struct Repo {
    pub sha: String,
    pub files: BTreeMap<String, Served>,
}

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub range: Option<String>,
    pub auth: Option<String>,
}

/// Faults applied to content GETs of one repo path.
#[derive(Default, Clone)]
pub struct Faults {
    /// (path, bytes to send before closing, how many responses to cut)
    pub cut: Option<(String, usize, usize)>,
    /// Serve this path with one byte flipped.
    pub corrupt: Option<String>,
    /// Answer ranged GETs with the whole file (200), as some servers do.
    pub ignore_range: bool,
}

#[derive(Default)]
struct State {
    repos: BTreeMap<String, Repo>,
    /// Old repo id -> new one: answered with a 307 to the new name, as the hub does.
    renamed: BTreeMap<String, String>,
    log: Vec<Seen>,
    faults: Faults,
    /// Content bytes actually written per repo path.
    served_bytes: BTreeMap<String, u64>,
}

pub struct FakeHub {
    pub url: String,
    state: Arc<Mutex<State>>,
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A 40-hex oid for a non-LFS file (the real hub sends the git blob sha1; any stable id will do).
fn oid(bytes: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(format!("blob {}\0", bytes.len()));
    h.update(bytes);
    h.finalize()
        .iter()
        .take(20)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Reads every file under `dir` (relative '/'-separated paths).
pub fn read_tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

impl Repo {
    /// A repo serving `files`; `*.safetensors` and `*.bin` are LFS, like on the hub.
    pub fn new(sha: &str, files: BTreeMap<String, Vec<u8>>) -> Repo {
        let files = files
            .into_iter()
            .map(|(path, bytes)| {
                let lfs = path.ends_with(".safetensors") || path.ends_with(".bin");
                let git_oid = oid(&bytes);
                let etag = if lfs {
                    sha256_hex(&bytes)
                } else {
                    git_oid.clone()
                };
                let bytes = Arc::new(bytes);
                let served = Served {
                    bytes,
                    lfs,
                    etag,
                    oid: git_oid,
                };
                (path, served)
            })
            .collect();
        Repo {
            sha: sha.to_string(),
            files,
        }
    }
}

impl FakeHub {
    pub fn start() -> FakeHub {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State::default()));
        let st = state.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let st = st.clone();
                std::thread::spawn(move || handle(conn, &st));
            }
        });
        FakeHub { url, state }
    }

    pub fn add_repo(&self, id: &str, repo: Repo) {
        self.state
            .lock()
            .unwrap()
            .repos
            .insert(id.to_string(), repo);
    }

    pub fn rename(&self, old: &str, new: &str) {
        let mut st = self.state.lock().unwrap();
        st.renamed.insert(old.to_string(), new.to_string());
    }

    pub fn repo(&self, id: &str) -> Repo {
        self.state.lock().unwrap().repos[id].clone()
    }

    pub fn set_faults(&self, faults: Faults) {
        self.state.lock().unwrap().faults = faults;
    }

    pub fn log(&self) -> Vec<Seen> {
        self.state.lock().unwrap().log.clone()
    }

    pub fn requests(&self) -> usize {
        self.state.lock().unwrap().log.len()
    }

    /// Content bytes served so far for a repo path (GET bodies only).
    pub fn served_bytes(&self, path: &str) -> u64 {
        self.state
            .lock()
            .unwrap()
            .served_bytes
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    pub fn reset_counters(&self) {
        let mut s = self.state.lock().unwrap();
        s.log.clear();
        s.served_bytes.clear();
    }
}

struct Request {
    method: String,
    path: String,
    headers: BTreeMap<String, String>,
}

fn read_request(conn: &TcpStream) -> Option<Request> {
    let mut r = BufReader::new(conn);
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut headers = BTreeMap::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    Some(Request {
        method,
        path,
        headers,
    })
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    /// The body is `body[start..]` (shared, so big files are not copied per request).
    body: Arc<Vec<u8>>,
    start: usize,
    /// Close after this many body bytes (a cut connection).
    cut_after: Option<usize>,
    /// The repo path whose content this is (for the served-bytes counter).
    content_of: Option<String>,
}

impl Response {
    fn new(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Arc::new(Vec::new()),
            start: 0,
            cut_after: None,
            content_of: None,
        }
    }
    fn header(mut self, k: &str, v: impl Into<String>) -> Response {
        self.headers.push((k.to_string(), v.into()));
        self
    }
    fn error(status: u16, code: &str) -> Response {
        Response::new(status)
            .header("X-Error-Code", code)
            .header("X-Error-Message", format!("{code} (fake hub)"))
    }
}

fn handle(mut conn: TcpStream, state: &Mutex<State>) {
    let Some(req) = read_request(&conn) else {
        return;
    };
    let head = req.method == "HEAD";
    let resp = {
        let mut st = state.lock().unwrap();
        st.log.push(Seen {
            method: req.method.clone(),
            path: req.path.clone(),
            range: req.headers.get("range").cloned(),
            auth: req.headers.get("authorization").cloned(),
        });
        route(&mut st, &req)
    };
    let reason = match resp.status {
        200 => "OK",
        206 => "Partial Content",
        302 => "Found",
        307 => "Temporary Redirect",
        404 => "Not Found",
        416 => "Range Not Satisfiable",
        _ => "Other",
    };
    let mut out = format!("HTTP/1.1 {} {reason}\r\nConnection: close\r\n", resp.status);
    let has_len = resp
        .headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-length"));
    for (k, v) in &resp.headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    if !has_len {
        out.push_str(&format!(
            "Content-Length: {}\r\n",
            resp.body.len() - resp.start
        ));
    }
    out.push_str("\r\n");
    if conn.write_all(out.as_bytes()).is_err() || head {
        return;
    }
    let full = &resp.body[resp.start..];
    let body = match resp.cut_after {
        Some(n) => &full[..n.min(full.len())],
        None => full,
    };
    if conn.write_all(body).is_ok() {
        if let Some(path) = &resp.content_of {
            *state
                .lock()
                .unwrap()
                .served_bytes
                .entry(path.clone())
                .or_default() += body.len() as u64;
        }
    }
    let _ = conn.flush();
    let _ = conn.shutdown(Shutdown::Both);
    // Drain so the client sees a clean close rather than a reset on pending input.
    let _ = conn.read(&mut [0u8; 16]);
}

fn route(st: &mut State, req: &Request) -> Response {
    let path = req.path.split('?').next().unwrap_or("");
    for (old, new) in &st.renamed {
        for prefix in ["/api/models/", "/"] {
            if let Some(rest) = path.strip_prefix(&format!("{prefix}{old}/")) {
                return Response::new(307).header("Location", format!("{prefix}{new}/{rest}"));
            }
        }
    }
    if let Some(rest) = path.strip_prefix("/api/models/") {
        return api(st, rest);
    }
    if let Some(etag) = path.strip_prefix("/cdn/") {
        let found = st
            .repos
            .values()
            .flat_map(|r| r.files.iter())
            .find(|(_, f)| f.lfs && f.etag == etag)
            .map(|(p, f)| (p.clone(), f.clone()));
        return match found {
            Some((p, f)) => content(st, req, &p, &f),
            None => Response::error(404, "EntryNotFound"),
        };
    }
    resolve(st, req, path)
}

fn api(st: &State, rest: &str) -> Response {
    // {org}/{name}/revision/{rev}
    let parts: Vec<&str> = rest.splitn(4, '/').collect();
    if parts.len() != 4 || parts[2] != "revision" {
        return Response::error(404, "RepoNotFound");
    }
    let id = format!("{}/{}", parts[0], parts[1]);
    let Some(repo) = st.repos.get(&id) else {
        return Response::error(404, "RepoNotFound");
    };
    let rev = percent_decode(parts[3]);
    if rev != "main" && rev != repo.sha {
        return Response::error(404, "RevisionNotFound");
    }
    let siblings: Vec<serde_json::Value> = repo
        .files
        .keys()
        .map(|f| serde_json::json!({ "rfilename": f }))
        .collect();
    let body = serde_json::json!({ "id": id, "sha": repo.sha, "siblings": siblings }).to_string();
    let mut r = Response::new(200).header("Content-Type", "application/json");
    r.body = Arc::new(body.into_bytes());
    r
}

fn resolve(st: &mut State, req: &Request, path: &str) -> Response {
    // /{org}/{name}/resolve/{rev}/{file...}
    let parts: Vec<&str> = path.trim_start_matches('/').splitn(5, '/').collect();
    if parts.len() != 5 || parts[2] != "resolve" {
        return Response::error(404, "EntryNotFound");
    }
    let id = format!("{}/{}", parts[0], parts[1]);
    let Some(repo) = st.repos.get(&id) else {
        return Response::error(404, "RepoNotFound");
    };
    let sha = repo.sha.clone();
    let rev = percent_decode(parts[3]);
    if rev != "main" && rev != sha {
        return Response::error(404, "RevisionNotFound");
    }
    let file_path = percent_decode(parts[4]);
    let Some(f) = repo.files.get(&file_path).cloned() else {
        return Response::error(404, "EntryNotFound").header("X-Repo-Commit", sha.as_str());
    };
    if f.lfs {
        return Response::new(302)
            .header("Location", format!("/cdn/{}", f.etag))
            .header("X-Repo-Commit", sha.as_str())
            .header("ETag", format!("\"{}\"", f.oid))
            .header("X-Linked-Etag", format!("\"{}\"", f.etag))
            .header("X-Linked-Size", f.bytes.len().to_string())
            .header("Content-Length", "0");
    }
    let r = content(st, req, &file_path, &f);
    r.header("X-Repo-Commit", sha.as_str())
        .header("ETag", format!("W/\"{}\"", f.etag))
}

/// The file's bytes, honouring `Range: bytes=N-` and the injected faults.
fn content(st: &mut State, req: &Request, path: &str, f: &Served) -> Response {
    let mut bytes = f.bytes.clone();
    let total = bytes.len();
    if req.method == "GET" && st.faults.corrupt.as_deref() == Some(path) {
        let mut bad = (*bytes).clone();
        bad[total / 2] ^= 0x5a;
        bytes = Arc::new(bad);
    }
    let start = req
        .headers
        .get("range")
        .filter(|_| !st.faults.ignore_range)
        .cloned();
    let start = start
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|n| n.parse::<usize>().ok());
    let mut r = match start {
        Some(s) if s >= total => {
            return Response::new(416).header("Content-Range", format!("bytes */{total}"))
        }
        Some(s) => {
            let mut r = Response::new(206)
                .header("Content-Range", format!("bytes {s}-{}/{total}", total - 1));
            r.body = bytes;
            r.start = s;
            r
        }
        None => {
            let mut r = Response::new(200);
            r.body = bytes;
            r
        }
    };
    r = r.header("Accept-Ranges", "bytes");
    if req.method == "GET" {
        r.content_of = Some(path.to_string());
        if let Some((p, n, times)) = st.faults.cut.as_mut() {
            if p == path && *times > 0 {
                *times -= 1;
                r.cut_after = Some(*n);
            }
        }
    }
    r
}
