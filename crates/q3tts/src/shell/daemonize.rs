//! `serve --daemon`: detach (fork, setsid, fork), send stdin to /dev/null and stdout/stderr to
//! the log file, and let the original process return only once the daemon's socket accepts —
//! or print the daemon's error and exit 1 if it fails before listening.
//!
//! Must run before any thread is started (fork copies only the calling thread).

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::path::{Path, PathBuf};

/// The default log file: `$XDG_STATE_HOME/q3tts/daemon.log` (`~/.local/state/q3tts/...`).
pub fn default_log_path() -> PathBuf {
    let base = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| "/tmp".into());
            home.join(".local/state")
        });
    base.join("q3tts").join("daemon.log")
}

/// In the daemon: the pipe on which to report "ready" or an error to the waiting parent.
pub struct Notifier(Option<File>);

impl Notifier {
    pub fn ready(&mut self) {
        if let Some(mut f) = self.0.take() {
            let _ = f.write_all(b"ok\n");
        }
    }
    pub fn failed(&mut self, message: &str) {
        if let Some(mut f) = self.0.take() {
            let _ = f.write_all(format!("error: {message}\n").as_bytes());
        }
    }
}

/// Detach. Returns in the daemon process (with its notifier); the original process waits for
/// the daemon's word and exits here.
pub fn detach(log: &Path) -> anyhow::Result<Notifier> {
    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir).map_err(|e| {
            anyhow::anyhow!("cannot create the log directory {}: {e}", dir.display())
        })?;
    }
    let log_file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| anyhow::anyhow!("cannot open the log file {}: {e}", log.display()))?;
    let mut fds = [0; 2];
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        anyhow::bail!("pipe: {}", std::io::Error::last_os_error());
    }
    let (read_end, write_end) = unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) };
    match unsafe { libc::fork() } {
        -1 => anyhow::bail!("fork: {}", std::io::Error::last_os_error()),
        0 => {}
        _child => {
            drop(write_end);
            wait_for_daemon(read_end, log);
        }
    }
    // First child: new session, then fork again so the daemon is not a session leader.
    drop(read_end);
    unsafe { libc::setsid() };
    match unsafe { libc::fork() } {
        -1 => unsafe { libc::_exit(1) },
        0 => {}
        _ => unsafe { libc::_exit(0) },
    }
    let devnull = File::open("/dev/null")?;
    unsafe {
        libc::dup2(devnull.as_raw_fd(), 0);
        libc::dup2(log_file.as_raw_fd(), 1);
        libc::dup2(log_file.as_raw_fd(), 2);
    }
    let _ = std::env::set_current_dir("/");
    Ok(Notifier(Some(write_end)))
}

/// A notifier that reports nowhere (foreground `serve`).
pub fn foreground() -> Notifier {
    Notifier(None)
}

fn wait_for_daemon(mut pipe: File, log: &Path) -> ! {
    let mut word = String::new();
    let _ = pipe.read_to_string(&mut word);
    // Reap the first child (it exits right after the second fork).
    unsafe {
        let mut status = 0;
        libc::wait(&mut status);
    }
    let word = word.trim();
    if word == "ok" {
        eprintln!("q3tts daemon started; log: {}", log.display());
        std::process::exit(0);
    }
    match word.strip_prefix("error: ") {
        Some(msg) => eprintln!("q3tts: {msg}"),
        None => eprintln!(
            "q3tts: the daemon exited before it was listening; see {}",
            log.display()
        ),
    }
    std::process::exit(1);
}
