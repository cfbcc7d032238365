//! The download progress bar: bytes, rate and ETA on a terminal, nothing otherwise.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// One bar for all the bytes of one model download; inert when disabled.
pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    /// A bar over `total` bytes, drawn on stderr only when `wanted` and stderr is a terminal.
    pub fn new(wanted: bool, total: u64, title: &str) -> Progress {
        if !wanted || !std::io::stderr().is_terminal() {
            return Progress { bar: None };
        }
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template(
            "{prefix} {wide_msg}\n{bar:40} {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_prefix(title.to_string());
        Progress { bar: Some(bar) }
    }

    /// A progress that never draws.
    pub fn hidden() -> Progress {
        Progress { bar: None }
    }

    /// Names the file being downloaded.
    pub fn file(&self, name: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(name.to_string());
        }
    }

    /// `n` more bytes arrived.
    pub fn inc(&self, n: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(n);
        }
    }

    /// `n` bytes already counted were thrown away (the server restarted a file).
    pub fn rewind(&self, n: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(bar.position().saturating_sub(n));
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}
