//! The daemon's log: timestamp-free lines on stderr, one per event, in the shape of the original
//! design note:
//!
//! ```text
//! model loaded (0.6B, 4.8s)
//! listening on ~/.q3tts.sock
//! [reload] "hello world" -> speakers (0.34s)
//! [reload] "test" -> out.wav (0.28s)
//! [reload] error: <message>
//! [cancel] "hello world" (0.41s)
//! [busy] "hello world" (queue full: 8 waiting)
//! [deadline] <what ran out of time>
//! shutdown
//! ```
//!
//! Quoted text is escaped (no raw newlines or control characters) and cut at about 40
//! characters.

use std::io::Write;
use std::path::Path;

/// Longest quoted text, in characters, before it is cut with "…".
const QUOTE_CHARS: usize = 40;

/// Write one line to stderr (whole, in one write).
pub fn line(s: &str) {
    let mut out = String::with_capacity(s.len() + 1);
    for c in s.chars() {
        if c == '\n' || c == '\r' {
            out.push_str(if c == '\n' { "\\n" } else { "\\r" });
        } else if c.is_control() {
            out.push_str(&c.escape_default().to_string());
        } else {
            out.push(c);
        }
    }
    out.push('\n');
    let _ = std::io::stderr().lock().write_all(out.as_bytes());
}

/// `"text"`, escaped and cut.
pub fn quote(text: &str) -> String {
    let mut out = String::from("\"");
    for (n, c) in text.trim().chars().enumerate() {
        if n == QUOTE_CHARS {
            out.push('…');
            break;
        }
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&c.escape_default().to_string()),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A path with the home directory shown as `~`.
pub fn tilde(path: &Path) -> String {
    if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        if let Ok(rest) = path.strip_prefix(&home) {
            return format!("~/{}", rest.display());
        }
    }
    path.display().to_string()
}

pub fn model_loaded(size: &str, secs: f64) {
    line(&format!("model loaded ({size}, {secs:.1}s)"));
}

pub fn listening(socket: &Path) {
    line(&format!("listening on {}", tilde(socket)));
}

/// Where a request's audio went, for the log: "speakers", "stdout" or the file name.
pub fn destination(output: Option<&str>) -> String {
    match output {
        None | Some("") => "speakers".into(),
        Some("-") => "stdout".into(),
        Some(p) => Path::new(p)
            .file_name()
            .map_or_else(|| p.to_string(), |f| f.to_string_lossy().into_owned()),
    }
}

pub fn reload_ok(text: &str, dest: &str, secs: f64) {
    line(&format!("[reload] {} -> {dest} ({secs:.2}s)", quote(text)));
}

pub fn reload_error(message: &str) {
    line(&format!("[reload] error: {message}"));
}

pub fn recompiled(path: &str, builtin: bool, ms: f64) {
    if builtin {
        line(&format!(
            "[reload] no handler at {path}: using the built-in default ({ms:.2}ms; `q3tts init` \
             writes a copy to edit)"
        ));
    } else {
        line(&format!("[reload] compiled {path} ({ms:.2}ms)"));
    }
}

pub fn cancel(text: &str, secs: f64) {
    line(&format!("[cancel] {} ({secs:.2}s)", quote(text)));
}

pub fn busy(text: &str, capacity: usize) {
    line(&format!(
        "[busy] {} (queue full: {capacity} waiting)",
        quote(text)
    ));
}

pub fn deadline(what: &str) {
    line(&format!("[deadline] {what}"));
}

pub fn refused(what: &str) {
    line(&format!("[refused] {what}"));
}

pub fn script(s: &str) {
    line(&format!("[script] {s}"));
}

pub fn shutdown() {
    line("shutdown");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_are_escaped_and_cut() {
        assert_eq!(quote("hello world"), "\"hello world\"");
        assert_eq!(quote("a\"b\nc\u{7}"), "\"a\\\"b\\nc\\u{7}\"");
        let long = "x".repeat(100);
        let q = quote(&long);
        assert_eq!(q.chars().count(), 40 + 3);
        assert!(q.ends_with("…\""));
        assert_eq!(destination(Some("/tmp/a/out.wav")), "out.wav");
        assert_eq!(destination(None), "speakers");
        assert_eq!(destination(Some("-")), "stdout");
    }
}
