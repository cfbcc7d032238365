//! Single instance: an exclusive `flock` on `<socket>.lock`, held for the daemon's lifetime.
//!
//! The kernel drops the lock when the process dies (even by SIGKILL), so a lock that can be
//! taken means no daemon owns the socket, and a socket file left behind is stale and replaced.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The held lock. [`InstanceLock::release`] removes the lock file (and the socket).
pub struct InstanceLock {
    _file: File,
    path: PathBuf,
}

/// `<socket>.lock`.
pub fn lock_path(socket: &Path) -> PathBuf {
    let mut s = socket.as_os_str().to_owned();
    s.push(".lock");
    PathBuf::from(s)
}

/// Take the lock for `socket`, or say which daemon holds it.
pub fn acquire(socket: &Path) -> anyhow::Result<InstanceLock> {
    let path = lock_path(socket);
    for _ in 0..5 {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(|e| anyhow::anyhow!("cannot open lock file {}: {e}", path.display()))?;
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
                let pid = std::fs::read_to_string(&path).unwrap_or_default();
                let pid = pid.trim();
                let who = if pid.is_empty() {
                    String::new()
                } else {
                    format!(" (pid {pid})")
                };
                anyhow::bail!(
                    "another q3tts daemon{who} is already serving {}; `q3tts stop` ends it, or \
                     pass --socket PATH to run a second one",
                    socket.display()
                );
            }
            anyhow::bail!("cannot lock {}: {err}", path.display());
        }
        // The previous owner may have removed the file between our open and our lock: then we
        // hold a lock on a deleted file. Check that the path still names what we locked.
        let ours = file.metadata()?;
        match std::fs::metadata(&path) {
            Ok(m) if m.ino() == ours.ino() && m.dev() == ours.dev() => {
                file.set_len(0)?;
                let _ = writeln!(file, "{}", std::process::id());
                return Ok(InstanceLock { _file: file, path });
            }
            _ => continue,
        }
    }
    anyhow::bail!(
        "could not take the lock {} (it kept changing)",
        path.display()
    )
}

impl InstanceLock {
    /// Remove the lock file while still holding the lock (the process is about to exit).
    pub fn release(self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_is_refused_and_released_lock_is_free() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("s.sock");
        let a = acquire(&sock).unwrap();
        let err = acquire(&sock).err().unwrap().to_string();
        assert!(err.contains("already serving"), "{err}");
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        a.release();
        assert!(!lock_path(&sock).exists());
        let b = acquire(&sock).unwrap();
        b.release();
    }
}
