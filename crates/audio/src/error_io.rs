//! Turning I/O failures on a path into errors that say what went wrong and what to do.

use std::io;
use std::path::Path;

use crate::Error;

/// ENOSPC on Linux and macOS.
const ENOSPC: i32 = 28;
/// EPIPE on Linux and macOS.
const EPIPE: i32 = 32;

/// A human reason for an I/O error on `path` (opening or writing it).
pub fn reason(path: &Path, err: &io::Error) -> String {
    if err.raw_os_error() == Some(ENOSPC) || err.kind() == io::ErrorKind::StorageFull {
        return "disk full (no space left on device); free some space or write elsewhere".into();
    }
    if err.raw_os_error() == Some(EPIPE) || err.kind() == io::ErrorKind::BrokenPipe {
        return "broken pipe (the program reading the audio exited)".into();
    }
    match err.kind() {
        io::ErrorKind::PermissionDenied => {
            "permission denied: cannot write here; choose a writable path".into()
        }
        io::ErrorKind::IsADirectory => format!(
            "is a directory; give a file name such as {}",
            path.join("out.wav").display()
        ),
        io::ErrorKind::NotFound => match path.parent().filter(|p| !p.as_os_str().is_empty()) {
            Some(parent) if !parent.exists() => format!(
                "directory {} does not exist; create it first",
                parent.display()
            ),
            _ => "no such file or directory".into(),
        },
        io::ErrorKind::ReadOnlyFilesystem => "read-only file system; write elsewhere".into(),
        _ => err.to_string(),
    }
}

/// An [`Error::File`] for `path` from an I/O error.
pub fn file_error(path: &Path, err: &io::Error) -> Error {
    Error::File {
        path: path.display().to_string(),
        reason: reason(path, err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_name_the_cause() {
        let p = Path::new("/nonexistent-dir-q3tts/x.wav");
        let e = io::Error::from(io::ErrorKind::NotFound);
        assert!(reason(p, &e).contains("/nonexistent-dir-q3tts does not exist"));
        let e = io::Error::from_raw_os_error(ENOSPC);
        assert!(reason(p, &e).starts_with("disk full"));
        let e = io::Error::from(io::ErrorKind::PermissionDenied);
        assert!(reason(p, &e).starts_with("permission denied"));
        let msg = file_error(p, &e).to_string();
        assert!(
            msg.starts_with("/nonexistent-dir-q3tts/x.wav: permission denied"),
            "{msg}"
        );
    }
}
