//! Downloading one file into `blobs/<etag>`: written to `blobs/<etag>.incomplete`, resumed with
//! `Range` after an interruption (in this run or the next), checked (size, and sha256 for LFS
//! files) and only then renamed into place. A file that fails the check is deleted.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
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
    Fatal(Box<Error>),
}

impl From<Error> for Fail {
    fn from(e: Error) -> Fail {
        Fail::Fatal(Box::new(e))
    }
}

/// A download in progress: the partial file, how much of it we have, and its running hash.
struct Partial<'a> {
    path: &'a str,
    meta: &'a FileMeta,
    part: PathBuf,
    file: File,
    have: u64,
    hasher: Option<Sha256>,
    progress: &'a Progress,
}

/// Makes sure `blobs/<meta.etag>` holds the verified content of `path`.
pub fn fetch_blob(
    remote: &Remote,
    cache: &RepoCache,
    path: &str,
    meta: &FileMeta,
    progress: &Progress,
) -> Result<()> {
    let blob = cache.blob(&meta.etag);
    if blob.is_file() {
        return Ok(());
    }
    let _lock = lock(cache, &meta.etag)?;
    if blob.is_file() {
        // Another process finished it while we waited for the lock.
        return Ok(());
    }
    let mut partial = Partial::open(cache, path, meta, progress)?;
    let mut attempts = 0;
    while partial.have < meta.size {
        attempts += 1;
        let before = partial.have;
        let reason = match partial.request(remote) {
            Ok(()) if partial.have >= meta.size => break,
            Ok(()) => "the connection closed early".to_string(),
            Err(Fail::Retry(reason)) => reason,
            Err(Fail::Fatal(e)) => return Err(*e),
        };
        if attempts >= MAX_ATTEMPTS {
            return Err(Error::Interrupted {
                file: path.to_string(),
                got: partial.have,
                size: meta.size,
                detail: reason,
                partial: partial.part,
            });
        }
        if partial.have == before {
            std::thread::sleep(Duration::from_millis(250 * u64::from(attempts)));
        }
    }
    let part = partial.finish()?;
    fs::rename(&part, &blob).map_err(|e| Error::io("cannot move into place", &blob, e))
}

impl<'a> Partial<'a> {
    /// Opens (or creates) `blobs/<etag>.incomplete` and hashes what it already holds.
    fn open(
        cache: &RepoCache,
        path: &'a str,
        meta: &'a FileMeta,
        progress: &'a Progress,
    ) -> Result<Partial<'a>> {
        let part = cache.incomplete(&meta.etag);
        let dir = part.parent().unwrap_or(cache.root()).to_path_buf();
        fs::create_dir_all(&dir).map_err(|e| Error::io("cannot create", &dir, e))?;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&part)
            .map_err(|e| Error::io("cannot write", &part, e))?;
        let have = file
            .metadata()
            .map_err(|e| Error::io("cannot read", &part, e))?
            .len();
        let mut partial = Partial {
            path,
            meta,
            part,
            file,
            have,
            hasher: meta.lfs.then(Sha256::new),
            progress,
        };
        if have > meta.size {
            partial.restart()?;
        }
        if let Some(h) = partial.hasher.as_mut() {
            hash_prefix(&partial.part, partial.have, h)?;
        }
        progress.file(path);
        progress.inc(partial.have);
        Ok(partial)
    }

    /// Throws away what we have and starts the file from byte 0.
    fn restart(&mut self) -> Result<()> {
        self.file
            .set_len(0)
            .map_err(|e| Error::io("cannot write", &self.part, e))?;
        self.progress.rewind(self.have);
        self.have = 0;
        if self.hasher.is_some() {
            self.hasher = Some(Sha256::new());
        }
        Ok(())
    }

    /// One request from byte `have` on: appends what arrives.
    fn request(&mut self, remote: &Remote) -> std::result::Result<(), Fail> {
        let resp = remote
            .get_from(&self.meta.url, self.have)
            .map_err(|u| Fail::Retry(u.0))?;
        match resp.status().as_u16() {
            206 => {
                let range = header(resp.headers(), "content-range").unwrap_or("");
                if !range.starts_with(&format!("bytes {}-", self.have)) {
                    return Err(Fail::Retry(format!(
                        "the server sent the wrong range ({range:?})"
                    )));
                }
            }
            // The server ignored the Range header: it sends the whole file.
            200 if self.have > 0 => self.restart()?,
            200 => {}
            416 => {
                self.restart()?;
                return Err(Fail::Retry("the server refused to resume".to_string()));
            }
            s if s >= 500 || s == 429 => return Err(Fail::Retry(format!("HTTP {s}"))),
            s => {
                return Err(Error::Http {
                    url: self.meta.url.clone(),
                    status: s,
                    detail: header(resp.headers(), "x-error-message").map(str::to_string),
                }
                .into())
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
            self.append(&buf[..n])?;
        }
    }

    fn append(&mut self, chunk: &[u8]) -> Result<()> {
        let n = chunk.len() as u64;
        if self.have + n > self.meta.size {
            let _ = fs::remove_file(&self.part);
            return Err(Error::Corrupt {
                file: self.path.to_string(),
                check: "size",
                expected: self.meta.size.to_string(),
                actual: format!("more than {}", self.meta.size),
            });
        }
        self.file
            .write_all(chunk)
            .map_err(|e| Error::io("cannot write", &self.part, e))?;
        if let Some(h) = self.hasher.as_mut() {
            h.update(chunk);
        }
        self.have += n;
        self.progress.inc(n);
        Ok(())
    }

    /// Flushes to disk and checks size and (for LFS files) sha256; deletes the partial file when
    /// either is wrong. Returns the verified partial file's path.
    fn finish(self) -> Result<PathBuf> {
        self.file
            .sync_all()
            .map_err(|e| Error::io("cannot write", &self.part, e))?;
        drop(self.file);
        let failure = if self.have != self.meta.size {
            Some(("size", self.meta.size.to_string(), self.have.to_string()))
        } else if let Some(h) = self.hasher {
            let actual = hex(&h.finalize());
            (!actual.eq_ignore_ascii_case(&self.meta.etag))
                .then(|| ("sha256", self.meta.etag.clone(), actual))
        } else {
            None
        };
        match failure {
            None => Ok(self.part),
            Some((check, expected, actual)) => {
                let _ = fs::remove_file(&self.part);
                Err(Error::Corrupt {
                    file: self.path.to_string(),
                    check,
                    expected,
                    actual,
                })
            }
        }
    }
}

/// Takes the exclusive lock huggingface_hub also takes for this blob (waits for another
/// process, or Python, downloading the same file). Released when the returned file is dropped.
fn lock(cache: &RepoCache, etag: &str) -> Result<File> {
    let path = cache.lock_path(etag);
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|e| Error::io("cannot create", dir, e))?;
    }
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io("cannot create", &path, e))?;
    fs4::fs_std::FileExt::lock_exclusive(&file).map_err(|e| Error::io("cannot lock", &path, e))?;
    Ok(file)
}

fn hash_prefix(part: &Path, len: u64, hasher: &mut Sha256) -> Result<()> {
    if len == 0 {
        return Ok(());
    }
    let f = File::open(part).map_err(|e| Error::io("cannot read", part, e))?;
    let mut reader = f.take(len);
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = reader
            .read(&mut buf)
            .map_err(|e| Error::io("cannot read", part, e))?;
        if n == 0 {
            return Ok(());
        }
        hasher.update(&buf[..n]);
    }
}

/// Lowercase hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
