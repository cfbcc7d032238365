//! Talking to the hub over HTTP (ureq, rustls): the revision's file list, a file's metadata from
//! `HEAD /{repo}/resolve/{rev}/{path}`, and ranged `GET`s of the content.

use std::time::Duration;

use serde::Deserialize;
use ureq::config::RedirectAuthHeaders;
use ureq::http::{HeaderMap, StatusCode};
use ureq::Agent;

use crate::error::{Error, Result};

/// A revision's commit and file list, from `GET /api/models/{repo}/revision/{rev}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoInfo {
    pub sha: String,
    pub files: Vec<String>,
}

/// What `HEAD /{repo}/resolve/{rev}/{path}` says about one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMeta {
    /// `X-Linked-Etag` for LFS files (their sha256), else `ETag`; quotes and `W/` removed.
    pub etag: String,
    /// `X-Linked-Size`, else `Content-Length`.
    pub size: u64,
    /// True when the hub sent `X-Linked-Etag` (the etag is then the content's sha256).
    pub lfs: bool,
    /// Where the content is: the redirect target for LFS files, else the resolve URL.
    pub url: String,
}

/// Why a request failed before any HTTP answer (connection refused, DNS, timeout, TLS).
#[derive(Debug, Clone)]
pub struct Unreachable(pub String);

/// The client for one endpoint.
pub struct Remote {
    agent: Agent,
    endpoint: String,
    token: Option<String>,
}

#[derive(Deserialize)]
struct ApiRevision {
    sha: String,
    #[serde(default)]
    siblings: Vec<Sibling>,
}

#[derive(Deserialize)]
struct Sibling {
    rfilename: String,
}

/// Outcome of a request: an HTTP answer, or no answer at all.
pub type Answer = std::result::Result<ureq::http::Response<ureq::Body>, Unreachable>;

impl Remote {
    pub fn new(endpoint: &str, token: Option<String>) -> Remote {
        let agent: Agent = Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .max_redirects_will_error(false)
            .redirect_auth_headers(RedirectAuthHeaders::SameHost)
            .user_agent(concat!("q3tts/", env!("CARGO_PKG_VERSION")))
            .timeout_connect(Some(Duration::from_secs(10)))
            .timeout_recv_response(Some(Duration::from_secs(30)))
            .timeout_per_read(Some(Duration::from_secs(60)))
            .build()
            .into();
        Remote {
            agent,
            endpoint: endpoint.trim_end_matches('/').to_string(),
            token,
        }
    }

    /// `GET {endpoint}/api/models/{repo}/revision/{rev}`.
    pub fn repo_info(
        &self,
        repo: &str,
        revision: &str,
    ) -> Result<std::result::Result<RepoInfo, Unreachable>> {
        let url = format!(
            "{}/api/models/{repo}/revision/{}",
            self.endpoint,
            encode(revision, false)
        );
        // A renamed repository answers with a redirect to its new name: follow it.
        let req = self
            .agent
            .get(&url)
            .config()
            .max_redirects(5)
            .max_redirects_will_error(true)
            .build();
        let mut resp = match self.send(req, &url) {
            Ok(r) => r,
            Err(u) => return Ok(Err(u)),
        };
        let status = resp.status();
        if !status.is_success() {
            let what = format!("model {repo} at revision {revision}");
            return Err(status_error(
                status,
                resp.headers(),
                &url,
                &what,
                repo,
                &self.endpoint,
            ));
        }
        let body = resp
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_vec()
            .map_err(|e| Error::Protocol {
                url: url.clone(),
                reason: format!("cannot read the file list: {e}"),
            })?;
        let api: ApiRevision = serde_json::from_slice(&body).map_err(|e| Error::Protocol {
            url: url.clone(),
            reason: format!("the file list is not the JSON the hub sends: {e}"),
        })?;
        if !crate::spec::is_commit_sha(&api.sha) {
            return Err(Error::Protocol {
                url,
                reason: format!("`sha` is not a commit sha: {:?}", api.sha),
            });
        }
        Ok(Ok(RepoInfo {
            sha: api.sha,
            files: api.siblings.into_iter().map(|s| s.rfilename).collect(),
        }))
    }

    /// `HEAD {endpoint}/{repo}/resolve/{rev}/{path}`, following only same-host redirects that are
    /// not LFS redirects (a renamed repository), like huggingface_hub.
    pub fn file_meta(
        &self,
        repo: &str,
        revision: &str,
        path: &str,
    ) -> Result<std::result::Result<FileMeta, Unreachable>> {
        let mut url = format!(
            "{}/{repo}/resolve/{}/{}",
            self.endpoint,
            encode(revision, false),
            encode(path, true)
        );
        for _ in 0..5 {
            let req = self.agent.head(&url).header("Accept-Encoding", "identity");
            let resp = match self.send(req, &url) {
                Ok(r) => r,
                Err(u) => return Ok(Err(u)),
            };
            let status = resp.status();
            let headers = resp.headers();
            let location = header(headers, "location").map(|l| join_url(&url, l));
            if status.is_redirection() {
                let location = location.ok_or_else(|| Error::Protocol {
                    url: url.clone(),
                    reason: format!("HTTP {} without a Location", status.as_u16()),
                })?;
                if header(headers, "x-linked-etag").is_none() && same_host(&url, &location) {
                    url = location;
                    continue;
                }
                return meta_from(headers, &url, location).map(Ok);
            }
            if status.is_success() {
                return meta_from(headers, &url, url.clone()).map(Ok);
            }
            let what = format!("{path} in {repo} at revision {revision}");
            return Err(status_error(
                status,
                headers,
                &url,
                &what,
                repo,
                &self.endpoint,
            ));
        }
        Err(Error::Protocol {
            url,
            reason: "too many redirects".to_string(),
        })
    }

    /// `GET url` with `Range: bytes={start}-` when `start > 0`, following redirects. The token is
    /// sent only to the endpoint's own host (LFS content URLs on a CDN are pre-signed).
    pub fn get_from(&self, url: &str, start: u64) -> Answer {
        let mut req = self
            .agent
            .get(url)
            .header("Accept-Encoding", "identity")
            .config()
            .max_redirects(10)
            .max_redirects_will_error(true)
            .build();
        if start > 0 {
            req = req.header("Range", format!("bytes={start}-"));
        }
        self.send(req, url)
    }

    fn send(
        &self,
        mut req: ureq::RequestBuilder<ureq::typestate::WithoutBody>,
        url: &str,
    ) -> Answer {
        if let Some(token) = &self.token {
            if same_host(url, &self.endpoint) {
                req = req.header("Authorization", format!("Bearer {token}"));
            }
        }
        req.call().map_err(|e| Unreachable(describe(&e)))
    }
}

fn meta_from(headers: &HeaderMap, url: &str, content_url: String) -> Result<FileMeta> {
    let linked = header(headers, "x-linked-etag");
    let etag = linked
        .or_else(|| header(headers, "etag"))
        .map(normalize_etag)
        .filter(|e| !e.is_empty())
        .ok_or_else(|| Error::Protocol {
            url: url.to_string(),
            reason: "no ETag header".to_string(),
        })?;
    if !etag
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(Error::Protocol {
            url: url.to_string(),
            reason: format!("ETag {etag:?} cannot name a cache file"),
        });
    }
    let size = header(headers, "x-linked-size")
        .or_else(|| header(headers, "content-length"))
        .and_then(|s| s.trim().parse::<u64>().ok())
        .ok_or_else(|| Error::Protocol {
            url: url.to_string(),
            reason: "no file size (X-Linked-Size or Content-Length)".to_string(),
        })?;
    Ok(FileMeta {
        etag,
        size,
        lfs: linked.is_some(),
        url: content_url,
    })
}

fn status_error(
    status: StatusCode,
    headers: &HeaderMap,
    url: &str,
    what: &str,
    repo: &str,
    endpoint: &str,
) -> Error {
    let detail = header(headers, "x-error-message")
        .or_else(|| header(headers, "x-error-code"))
        .map(str::to_string);
    match status.as_u16() {
        404 => Error::NotFound {
            what: what.to_string(),
            endpoint: endpoint.to_string(),
            detail,
        },
        401 | 403 => Error::Denied {
            repo: repo.to_string(),
            endpoint: endpoint.to_string(),
            status: status.as_u16(),
            detail,
        },
        s => Error::Http {
            url: url.to_string(),
            status: s,
            detail,
        },
    }
}

/// A header's value as text, if present and printable.
pub fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Strips the weak marker `W/` and the quotes from an ETag.
pub fn normalize_etag(etag: &str) -> String {
    let e = etag.trim();
    let e = e.strip_prefix("W/").unwrap_or(e);
    e.trim_matches('"').to_string()
}

/// Percent-encodes everything but unreserved characters (and `/` when `keep_slash`).
pub fn encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Resolves a `Location` against the URL it came from (absolute, host-relative or path-relative).
pub fn join_url(base: &str, location: &str) -> String {
    if location.contains("://") {
        return location.to_string();
    }
    let origin_end = base
        .find("://")
        .map(|i| i + 3)
        .and_then(|start| base[start..].find('/').map(|j| start + j))
        .unwrap_or(base.len());
    if let Some(rest) = location.strip_prefix("//") {
        let scheme = base.split("://").next().unwrap_or("https");
        return format!("{scheme}://{rest}");
    }
    if location.starts_with('/') {
        return format!("{}{location}", &base[..origin_end]);
    }
    let path = &base[origin_end..];
    let path = path.split(['?', '#']).next().unwrap_or("");
    let dir = &path[..path.rfind('/').map(|i| i + 1).unwrap_or(0)];
    format!(
        "{}{}{location}",
        &base[..origin_end],
        if dir.is_empty() { "/" } else { dir }
    )
}

fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    rest.split(['/', '?', '#']).next().unwrap_or("")
}

fn same_host(a: &str, b: &str) -> bool {
    host_of(a).eq_ignore_ascii_case(host_of(b))
}

/// A one-line description of a transport error.
fn describe(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Io(io) => {
            let text = io.to_string();
            // "Connection refused (os error 111)" reads better without the errno.
            match text.find(" (os error") {
                Some(i) => text[..i].to_string(),
                None => text,
            }
        }
        ureq::Error::HostNotFound => "host not found".to_string(),
        ureq::Error::ConnectionFailed => "connection failed".to_string(),
        ureq::Error::Timeout(t) => format!("timed out ({t})"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_are_normalized() {
        assert_eq!(normalize_etag("\"abc\""), "abc");
        assert_eq!(normalize_etag("W/\"abc\""), "abc");
        assert_eq!(normalize_etag(" abc "), "abc");
    }

    #[test]
    fn revisions_and_paths_are_encoded() {
        assert_eq!(encode("refs/pr/1", false), "refs%2Fpr%2F1");
        assert_eq!(
            encode("speech_tokenizer/model.safetensors", true),
            "speech_tokenizer/model.safetensors"
        );
        assert_eq!(encode("a b", true), "a%20b");
    }

    #[test]
    fn locations_are_joined() {
        let base = "http://127.0.0.1:8080/o/n/resolve/main/model.safetensors";
        assert_eq!(join_url(base, "/lfs/abc"), "http://127.0.0.1:8080/lfs/abc");
        assert_eq!(
            join_url(base, "https://cdn.example/x?sig=1"),
            "https://cdn.example/x?sig=1"
        );
        assert_eq!(
            join_url(base, "other"),
            "http://127.0.0.1:8080/o/n/resolve/main/other"
        );
        assert_eq!(join_url(base, "//cdn.example/y"), "http://cdn.example/y");
        assert!(same_host(base, "http://127.0.0.1:8080"));
        assert!(!same_host(base, "https://cdn.example/x"));
    }
}
