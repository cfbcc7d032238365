//! Change detection for the handler and every module it imports, and the module resolver that
//! records them.
//!
//! A [`Stamp`] is what a file looked like when it was read: device, inode, size, nanosecond
//! mtime and ctime, and — when the file was modified very recently, where two edits could share
//! a timestamp — a hash of its content. [`Stamp::unchanged`] costs one `stat` for a settled file
//! (microseconds), so the daemon checks on every request. This catches an atomic rename that
//! keeps the mtime (new inode), and two same-size edits within one timestamp tick (hash).
//!
//! [`TrackingResolver`] resolves `import "utils" as u;` relative to the importing file's
//! directory, compiles each module once per resolver, and records a stamp for every file it
//! looked at (also missing or broken ones, so that creating or fixing them is noticed). On any
//! change the runtime installs a fresh resolver, which drops every compiled module.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hasher};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, SystemTime};

use rhai::{Engine, EvalAltResult, Module, ModuleResolver, Position, Scope, Shared};

/// A file younger than this is also hashed: timestamps may not tell two edits apart.
const RECENT: Duration = Duration::from_secs(2);

#[derive(Clone, Debug, PartialEq, Eq)]
struct Meta {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

/// What a file looked like when it was read (or that it was missing).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stamp {
    meta: Option<Meta>,
    hash: Option<u64>,
}

impl Stamp {
    /// Stamp `path` as it is now. Take the stamp *before* reading the file: an edit in between
    /// then shows up as a change on the next check.
    pub fn take(path: &Path) -> Stamp {
        let meta = meta(path);
        let hash = match &meta {
            Some(m) if is_recent(m) => hash_file(path),
            _ => None,
        };
        Stamp { meta, hash }
    }

    /// Whether `path` still looks like this stamp. Settles the stamp (drops its hash) once the
    /// file is old enough that any later edit must change its mtime.
    pub fn unchanged(&mut self, path: &Path) -> bool {
        let now = meta(path);
        if now != self.meta {
            return false;
        }
        let Some(h) = self.hash else { return true };
        if hash_file(path) != Some(h) {
            return false;
        }
        if let Some(m) = &now {
            if !is_recent(m) {
                self.hash = None;
            }
        }
        true
    }

    pub fn exists(&self) -> bool {
        self.meta.is_some()
    }
}

fn meta(path: &Path) -> Option<Meta> {
    let m = std::fs::metadata(path).ok()?;
    Some(Meta {
        dev: m.dev(),
        ino: m.ino(),
        size: m.size(),
        mtime: (m.mtime(), m.mtime_nsec()),
        ctime: (m.ctime(), m.ctime_nsec()),
    })
}

fn is_recent(m: &Meta) -> bool {
    let mtime = SystemTime::UNIX_EPOCH
        + Duration::new(
            m.mtime.0.max(0) as u64,
            m.mtime.1.clamp(0, 999_999_999) as u32,
        );
    let ctime = SystemTime::UNIX_EPOCH
        + Duration::new(
            m.ctime.0.max(0) as u64,
            m.ctime.1.clamp(0, 999_999_999) as u32,
        );
    let newest = mtime.max(ctime);
    // A timestamp in the future is treated as recent too.
    SystemTime::now()
        .duration_since(newest)
        .map_or(true, |age| age < RECENT)
}

fn hash_file(path: &Path) -> Option<u64> {
    let bytes = std::fs::read(path).ok()?;
    let mut h = DefaultHasher::new();
    h.write(&bytes);
    Some(h.finish())
}

/// One file the handler depends on.
#[derive(Clone, Debug)]
pub struct Dep {
    /// The name it was imported by (`utils`), or empty for the handler itself.
    pub name: String,
    pub path: PathBuf,
    pub stamp: Stamp,
}

/// The files a compiled handler depends on.
#[derive(Clone, Debug, Default)]
pub struct Deps(Rc<RefCell<Vec<Dep>>>);

impl Deps {
    pub fn record(&self, name: &str, path: &Path, stamp: Stamp) {
        let mut v = self.0.borrow_mut();
        if !v.iter().any(|d| d.path == path) {
            v.push(Dep {
                name: name.to_string(),
                path: path.to_path_buf(),
                stamp,
            });
        }
    }

    /// True when every recorded file is as it was.
    pub fn unchanged(&self) -> bool {
        self.0
            .borrow_mut()
            .iter_mut()
            .all(|d| d.stamp.unchanged(&d.path))
    }

    /// The file a module name was resolved to, for error messages.
    pub fn path_of(&self, name: &str) -> Option<PathBuf> {
        self.0
            .borrow()
            .iter()
            .find(|d| d.name == name)
            .map(|d| d.path.clone())
    }

    pub fn paths(&self) -> Vec<PathBuf> {
        self.0.borrow().iter().map(|d| d.path.clone()).collect()
    }
}

/// Where `import "name"` from a file in `dir` is looked for.
pub fn module_path(dir: &Path, name: &str) -> PathBuf {
    let mut p = dir.join(name);
    if p.extension().is_none() {
        p.set_extension("rhai");
    }
    p
}

/// A module resolver that records every file it reads into [`Deps`].
pub struct TrackingResolver {
    base_dir: PathBuf,
    deps: Deps,
    cache: RefCell<HashMap<PathBuf, Shared<Module>>>,
}

impl TrackingResolver {
    pub fn new(base_dir: PathBuf, deps: Deps) -> Self {
        Self {
            base_dir,
            deps,
            cache: RefCell::new(HashMap::new()),
        }
    }
}

impl ModuleResolver for TrackingResolver {
    fn resolve(
        &self,
        engine: &Engine,
        source: Option<&str>,
        name: &str,
        pos: Position,
    ) -> Result<Shared<Module>, Box<EvalAltResult>> {
        let dir = source
            .map(Path::new)
            .and_then(Path::parent)
            .filter(|d| !d.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| self.base_dir.clone());
        let path = module_path(&dir, name);
        if let Some(m) = self.cache.borrow().get(&path) {
            return Ok(m.clone());
        }
        self.deps.record(name, &path, Stamp::take(&path));
        let text = std::fs::read_to_string(&path).map_err(|e| {
            let inner = if e.kind() == std::io::ErrorKind::NotFound {
                EvalAltResult::ErrorModuleNotFound(name.to_string(), pos)
            } else {
                EvalAltResult::ErrorSystem(format!("cannot read {}", path.display()), Box::new(e))
            };
            Box::new(match inner {
                EvalAltResult::ErrorModuleNotFound(..) => inner,
                other => EvalAltResult::ErrorInModule(name.to_string(), other.into(), pos),
            })
        })?;
        let mut ast = engine.compile(&text).map_err(|e| {
            Box::new(EvalAltResult::ErrorInModule(
                name.to_string(),
                e.into(),
                pos,
            ))
        })?;
        ast.set_source(path.to_string_lossy().as_ref());
        let module = Module::eval_ast_as_new(Scope::new(), &ast, engine)
            .map_err(|e| Box::new(EvalAltResult::ErrorInModule(name.to_string(), e, pos)))?;
        let module: Shared<Module> = module.into();
        self.cache.borrow_mut().insert(path, module.clone());
        Ok(module)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn detects_same_size_edits_and_renames() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("h.rhai");
        fs::write(&p, "aaaa").unwrap();
        let mut s = Stamp::take(&p);
        assert!(s.unchanged(&p));
        // Same size, and force the same mtime as before.
        let before = fs::metadata(&p).unwrap().modified().unwrap();
        fs::write(&p, "bbbb").unwrap();
        fs::File::options()
            .write(true)
            .open(&p)
            .unwrap()
            .set_modified(before)
            .unwrap();
        assert!(
            !s.unchanged(&p),
            "same-size edit with the same mtime must be seen"
        );
        // Atomic rename keeping an old mtime.
        let old = SystemTime::now() - Duration::from_secs(3600);
        fs::File::options()
            .write(true)
            .open(&p)
            .unwrap()
            .set_modified(old)
            .unwrap();
        let mut s = Stamp::take(&p);
        assert!(s.unchanged(&p));
        let tmp = dir.path().join("h.tmp");
        fs::write(&tmp, "cccc").unwrap();
        fs::File::options()
            .write(true)
            .open(&tmp)
            .unwrap()
            .set_modified(old)
            .unwrap();
        fs::rename(&tmp, &p).unwrap();
        assert!(!s.unchanged(&p), "rename over the file must be seen");
        // Deleting and re-creating.
        let mut s = Stamp::take(&dir.path().join("missing.rhai"));
        assert!(!s.exists());
        assert!(s.unchanged(&dir.path().join("missing.rhai")));
        fs::write(dir.path().join("missing.rhai"), "x").unwrap();
        assert!(!s.unchanged(&dir.path().join("missing.rhai")));
    }

    #[test]
    fn a_recent_file_is_compared_by_content_when_its_metadata_matches() {
        // Two saves within one timestamp tick leave identical metadata; only the hash tells
        // them apart. Simulate that: a stamp whose metadata is current but whose hash is of
        // the earlier content.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("h.rhai");
        fs::write(&p, "let v = 1;").unwrap();
        let earlier = Stamp::take(&p);
        assert!(earlier.hash.is_some(), "a file written just now is hashed");
        fs::write(&p, "let v = 2;").unwrap();
        let mut s = Stamp {
            meta: meta(&p),
            hash: earlier.hash,
        };
        assert!(
            !s.unchanged(&p),
            "same metadata, different content must count as a change"
        );
        let mut same = Stamp::take(&p);
        assert!(same.unchanged(&p));
    }

    #[test]
    fn settled_files_are_not_hashed() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("old.rhai");
        fs::write(&p, "x").unwrap();
        let old = SystemTime::now() - Duration::from_secs(3600);
        fs::File::options()
            .write(true)
            .open(&p)
            .unwrap()
            .set_modified(old)
            .unwrap();
        // ctime is "now" after set_modified, so the first stamp is hashed; it settles later.
        let s = Stamp::take(&p);
        assert_eq!(s.meta.as_ref().map(|m| m.size), Some(1));
    }
}
