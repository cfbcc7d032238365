//! Downloading one file into `blobs/<etag>`: written to `blobs/<etag>.incomplete`, resumed with
//! `Range` after an interruption (in this run or the next), checked (size, and sha256 for LFS
//! files) and only then renamed into place. A file that fails the check is deleted.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::cache::RepoCache;
use crate::error::{Error, Result};
use crate::http::{header, FileMeta, Remote};
use crate::progress::Progress;

/// Requests made for one file before giving up (the partial file stays for the next run).
const MAX_ATTEMPTS: u32 = 5;

enum Fail {
    /// The connection broke or the server had a passing problem: try again from where we are.
    Retry(String),
    Fatal(Error),
}

/// Makes sure `blobs/<meta.etag>` holds the verified content of `path`.
pub fn fetch_blob(remote: &Remote, cache: &RepoCache, path: &str, meta: &FileMeta, progress: &Progress) -> Result<()> {
    let blob = cache.blob(&meta.etag);
    if blob.is_file() {
        return Ok(());
    }
    let part = cache.incomplete(&meta.etag);
    let dir = part.parent().unwrap_or(cache.root()).to_path_buf();
    fs::create_dir_all(&dir).map_err(|e| Error::io("cannot create", &dir, e))?;
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&part)
        .map_err(|e| Error::io("cannot write", &part, e))?;
    let mut have = file.metadata().map_err(|e| Error::io("cannot read", &part, e))?.len();
    if have > meta.size {
        truncate(&file, &part)?;
        have = 0;
    }
    let mut hasher = meta.lfs.then(Sha256::new);
    if let Some(h) = hasher.as_mut() {
        hash_prefix(&part, have, h)?;
    }
    progress.file(path);
    progress.inc(have);

    let mut attempts = 0;
    while have < meta.size {
        attempts += 1;
        let before = have;
        let outcome = transfer(remote, path, meta, &part, &mut file, &mut have, &mut hasher, progress);
        let reason = match outcome {
            Ok(()) if have >= meta.size => break,
            Ok(()) => "the connection closed early".to_string(),
            Err(Fail::Retry(reason)) => reason,
            Err(Fail::Fatal(e)) => return Err(e),
        };
        if attempts >= MAX_ATTEMPTS {
            return Err(Error::Interrupted {
                file: path.to_string(),
                got: have,
                size: meta.size,
                detail: reason,
                partial: part,
            });
        }
        if have == before {
            std::thread::sleep(Duration::from_millis(250 * u64::from(attempts)));
        }
    }
    file.sync_all().map_err(|e| Error::io("cannot write", &part, e))?;
    drop(file);
    verify(path, meta, &part, have, hasher)?;
    fs::rename(&part, &blob).map_err(|e| Error::io("cannot move into place", &blob, e))
}

/// One request: appends what arrives to the partial file.
fn transfer(
    remote: &Remote,
    path: &str,
    meta: &FileMeta,
    part: &Path,
    file: &mut File,
    have: &mut u64,
    hasher: &mut Option<Sha256>,
    progress: &Progress,
) -> std::result::Result<(), Fail> {
    let resp = remote.get_from(&meta.url, *have).map_err(|u| Fail::Retry(u.0))?;
    let status = resp.status().as_u16();
    match status {
        206 => {
            let range = header(resp.headers(), "content-range").unwrap_or("");
            if !range.starts_with(&format!("bytes {}-", *have)) {
                return Err(Fail::Retry(format!("the server sent the wrong range ({range:?})")));
            }
        }
        200 => {
            if *have > 0 {
                // The server ignored the Range header: start over.
                truncate(file, part).map_err(Fail::Fatal)?;
                progress.rewind(*have);
                *have = 0;
                if hasher.is_some() {
                    *hasher = Some(Sha256::new());
                }
            }
        }
        416 => {
            truncate(file, part).map_err(Fail::Fatal)?;
            progress.rewind(*have);
            *have = 0;
            if hasher.is_some() {
                *hasher = Some(Sha256::new());
            }
            return Err(Fail::Retry("the server refused to resume".to_string()));
        }
        s if s >= 500 || s == 429 => return Err(Fail::Retry(format!("HTTP {s}"))),
        s => {
            return Err(Fail::Fatal(Error::Http {
                url: meta.url.clone(),
                status: s,
                detail: header(resp.headers(), "x-error-message").map(str::to_string),
            }))
        }
    }
    let mut reader = resp.into_body().into_reader();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Fail::Retry(e.to_string())),
        };
        let chunk = &buf[..n];
        if *have + n as u64 > meta.size {
            let _ = fs::remove_file(part);
            return Err(Fail::Fatal(Error::Corrupt {
                file: path.to_string(),
                check: "size",
                expected: meta.size.to_string(),
                actual: format!("more than {}", meta.size),
            }));
        }
        file.write_all(chunk).map_err(|e| Fail::Fatal(Error::io("cannot write", part, e)))?;
        if let Some(h) = hasher.as_mut() {
            h.update(chunk);
        }
        *have += n as u64;
        progress.inc(n as u64);
    }
}

/// Checks size and (for LFS files) sha256; deletes the partial file when either is wrong.
fn verify(path: &str, meta: &FileMeta, part: &Path, have: u64, hasher: Option<Sha256>) -> Result<()> {
    let failure = if have != meta.size {
        Some(("size", meta.size.to_string(), have.to_string()))
    } else if let Some(h) = hasher {
        let actual = hex(&h.finalize());
        (!actual.eq_ignore_ascii_case(&meta.etag)).then(|| ("sha256", meta.etag.clone(), actual))
    } else {
        None
    };
    match failure {
        None => Ok(()),
        Some((check, expected, actual)) => {
            let _ = fs::remove_file(part);
            Err(Error::Corrupt {
                file: path.to_string(),
                check,
                expected,
                actual,
            })
        }
    }
}

fn hash_prefix(part: &Path, len: u64, hasher: &mut Sha256) -> Result<()> {
    if len == 0 {
        return Ok(());
    }
    let f = File::open(part).map_err(|e| Error::io("cannot read", part, e))?;
    let mut reader = f.take(len);
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = reader.read(&mut buf).map_err(|e| Error::io("cannot read", part, e))?;
        if n == 0 {
            return Ok(());
        }
        hasher.update(&buf[..n]);
    }
}

fn truncate(file: &File, part: &Path) -> Result<()> {
    file.set_len(0).map_err(|e| Error::io("cannot write", part, e))
}

/// Lowercase hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
