//! The handler runtime: a Rhai engine with limits, the compiled handler, reload on change, and
//! `handle(model, request)` called with every failure turned into a [`HandlerError`].
//!
//! Limits (set explicitly: Rhai's debug-build defaults are much lower): operations, call depth
//! 64, expression depth 64/32, string/array/map sizes, modules, and in the progress callback a
//! wall-clock limit on *script* time (native calls such as synthesis do not count), the
//! cancellation flag and the memory count ([`super::memory`]). Panics in native functions are
//! caught; the engine is rebuilt after one.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, SystemTime};

use q3tts_engine::{CancelToken, Model};
use rhai::{CallFnOptions, Dynamic, Engine, EvalAltResult, ParseError, Position, Scope, AST};

use super::api::{self, ScriptModel};
use super::context::{Ctx, Host, Limits, STOP_CANCELLED, STOP_DEADLINE, STOP_MEMORY};
use super::memory;
use super::modules::{Deps, Stamp, TrackingResolver};

/// The handler shipped with q3tts, used when the handler file does not exist.
pub const DEFAULT_HANDLER: &str = include_str!("../../handlers/default.rhai");

/// What kind of failure a request met.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    Syntax,
    Module,
    Runtime,
    Limit,
    Deadline,
    Memory,
    Cancelled,
    Panic,
    Output,
}

#[derive(Clone, Debug)]
pub struct HandlerError {
    pub kind: ErrorKind,
    pub message: String,
}

impl std::fmt::Display for HandlerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

fn herr(kind: ErrorKind, message: impl Into<String>) -> HandlerError {
    HandlerError {
        kind,
        message: message.into(),
    }
}

/// What a successful request returned, and whether the handler was recompiled for it.
pub struct Outcome {
    pub reply: serde_json::Map<String, serde_json::Value>,
    #[allow(dead_code)] // the daemon times its own refresh; tests read this
    pub reloaded: bool,
}

struct Compiled {
    ast: AST,
    deps: Deps,
}

/// The handler runtime. Lives on one thread (the worker); not `Send`.
pub struct Runtime {
    engine: Engine,
    ctx: Rc<Ctx>,
    /// The handler file; when it does not exist the built-in default is used.
    path: PathBuf,
    compiled: Option<Compiled>,
    /// When the handler was last (re)compiled.
    pub last_reload: Option<SystemTime>,
    /// Whether the built-in default handler is in use.
    pub using_builtin: bool,
    /// Whether a handler file was ever compiled (after that, its disappearance is an error,
    /// not a silent switch to the built-in handler).
    had_file: bool,
}

impl Runtime {
    pub fn new(path: PathBuf, limits: Limits) -> Runtime {
        let ctx = Ctx::new(limits);
        let engine = new_engine(ctx.clone());
        Runtime {
            engine,
            ctx,
            path,
            compiled: None,
            last_reload: None,
            using_builtin: false,
            had_file: false,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    #[cfg(test)]
    pub fn set_limits(&mut self, limits: Limits) {
        *self.ctx.limits.borrow_mut() = limits;
    }

    fn dir(&self) -> PathBuf {
        self.path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
    }

    /// Recompile if the handler or any imported module changed. Returns whether it did.
    pub fn refresh(&mut self) -> Result<bool, HandlerError> {
        if let Some(c) = &self.compiled {
            if c.deps.unchanged() {
                return Ok(false);
            }
        }
        self.compiled = None;
        let deps = Deps::default();
        let stamp = Stamp::take(&self.path);
        let exists = stamp.exists();
        deps.record("", &self.path, stamp);
        if !exists && self.had_file {
            return Err(herr(
                ErrorKind::Runtime,
                format!(
                    "the handler {} is gone (deleted or renamed); put it back, or run `q3tts init` \
                     to write the default handler there",
                    self.path.display()
                ),
            ));
        }
        let (source, name) = if exists {
            let text = std::fs::read_to_string(&self.path).map_err(|e| {
                herr(
                    ErrorKind::Syntax,
                    format!("cannot read {}: {e}", self.path.display()),
                )
            })?;
            (text, self.path.display().to_string())
        } else {
            (
                DEFAULT_HANDLER.to_string(),
                "<built-in default handler>".to_string(),
            )
        };
        self.using_builtin = !exists;
        self.engine
            .set_module_resolver(TrackingResolver::new(self.dir(), deps.clone()));
        let ast = match self.engine.compile(&source) {
            Ok(ast) => ast,
            Err(e) if exists && written_just_now(&self.path) => {
                // An editor may be half-way through saving: wait a moment and read it again.
                std::thread::sleep(Duration::from_millis(30));
                return self.refresh_after_retry(deps, e);
            }
            Err(e) => return Err(syntax_error(&name, &e)),
        };
        self.install(ast, deps, &name);
        Ok(true)
    }

    fn refresh_after_retry(&mut self, deps: Deps, first: ParseError) -> Result<bool, HandlerError> {
        let name = self.path.display().to_string();
        let deps2 = Deps::default();
        deps2.record("", &self.path, Stamp::take(&self.path));
        let _ = deps;
        let text = std::fs::read_to_string(&self.path).unwrap_or_default();
        self.engine
            .set_module_resolver(TrackingResolver::new(self.dir(), deps2.clone()));
        match self.engine.compile(&text) {
            Ok(ast) => {
                self.install(ast, deps2, &name);
                Ok(true)
            }
            Err(e) => {
                let _ = first;
                // Keep the stamp so an unchanged broken file is not recompiled every time.
                Err(syntax_error(&name, &e))
            }
        }
    }

    fn install(&mut self, mut ast: AST, deps: Deps, name: &str) {
        self.had_file |= !self.using_builtin;
        ast.set_source(name);
        self.compiled = Some(Compiled { ast, deps });
        self.last_reload = Some(SystemTime::now());
    }

    /// Compile the handler and resolve its imports without generating (for `q3tts check`).
    /// Returns the files checked.
    pub fn check(&mut self) -> Result<Vec<PathBuf>, HandlerError> {
        self.compiled = None;
        self.refresh()?;
        let c = self
            .compiled
            .as_ref()
            .expect("refresh installs a compiled handler");
        if !c
            .ast
            .iter_functions()
            .any(|f| f.name == "handle" && f.params.len() == 2)
        {
            return Err(herr(
                ErrorKind::Runtime,
                format!(
                    "{}: no `fn handle(model, request)` found",
                    c.ast.source().unwrap_or("")
                ),
            ));
        }
        // Evaluating the top level resolves every import (and runs only top-level code).
        let ast = c.ast.clone();
        let deps = c.deps.clone();
        self.ctx.begin(CancelToken::new(), Box::new(NoOutputs));
        memory::start();
        let r = catch_unwind(AssertUnwindSafe(|| self.engine.run_ast(&ast)));
        memory::stop();
        let _ = self.ctx.end(false);
        match r {
            Ok(Ok(())) => Ok(deps.paths()),
            Ok(Err(e)) => Err(self.describe_failure(&e, &deps)),
            Err(p) => Err(herr(ErrorKind::Panic, panic_message(&p))),
        }
    }

    /// Run `handle(model, request)` for one request.
    pub fn handle(
        &mut self,
        model: Option<&Model>,
        request: serde_json::Value,
        cancel: CancelToken,
        host: Box<dyn Host>,
    ) -> Result<Outcome, HandlerError> {
        let reloaded = self.refresh()?;
        let c = self
            .compiled
            .as_ref()
            .expect("refresh installs a compiled handler");
        let ast = c.ast.clone();
        let deps = c.deps.clone();
        *self.ctx.base_dir.borrow_mut() = self.dir();
        self.ctx.begin(cancel, host);
        let model = model.map_or(Dynamic::UNIT, |m| {
            Dynamic::from(ScriptModel { model: m.clone() })
        });
        let args = (model, api::to_dynamic(&request));
        memory::start();
        let result = catch_unwind(AssertUnwindSafe(|| {
            let mut scope = Scope::new();
            self.engine.call_fn_with_options::<Dynamic>(
                CallFnOptions::new().eval_ast(true).rewind_scope(true),
                &mut scope,
                &ast,
                "handle",
                args,
            )
        }));
        memory::stop();
        let value = match result {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => {
                let _ = self.ctx.end(false);
                if self.ctx.is_cancelled() {
                    return Err(herr(ErrorKind::Cancelled, "cancelled"));
                }
                return Err(self.describe_failure(&e, &deps));
            }
            Err(p) => {
                let _ = self.ctx.end(false);
                // The engine may be mid-way through anything: start afresh.
                self.engine = new_engine(self.ctx.clone());
                self.compiled = None;
                return Err(herr(ErrorKind::Panic, panic_message(&p)));
            }
        };
        if let Err(e) = self.ctx.end(true) {
            return Err(herr(ErrorKind::Output, e));
        }
        let reply = match api::to_json(&value) {
            serde_json::Value::Object(m) => m,
            serde_json::Value::Null => serde_json::Map::new(),
            _ => {
                return Err(herr(
                    ErrorKind::Runtime,
                    format!(
                        "handle() must return a map, it returned a {}",
                        value.type_name()
                    ),
                ))
            }
        };
        Ok(Outcome { reply, reloaded })
    }

    fn describe_failure(&self, e: &EvalAltResult, deps: &Deps) -> HandlerError {
        let limits = self.ctx.limits.borrow().clone();
        let root = root_cause(e);
        let kind = match root {
            EvalAltResult::ErrorTerminated(t, _) => match t.clone().into_string().as_deref() {
                Ok(STOP_DEADLINE) => ErrorKind::Deadline,
                Ok(STOP_MEMORY) => ErrorKind::Memory,
                Ok(STOP_CANCELLED) => ErrorKind::Cancelled,
                _ => ErrorKind::Limit,
            },
            EvalAltResult::ErrorTooManyOperations(_)
            | EvalAltResult::ErrorStackOverflow(_)
            | EvalAltResult::ErrorDataTooLarge(..)
            | EvalAltResult::ErrorTooManyModules(_)
            | EvalAltResult::ErrorTooManyVariables(_) => ErrorKind::Limit,
            EvalAltResult::ErrorParsing(..) if has_module(e) => ErrorKind::Module,
            EvalAltResult::ErrorModuleNotFound(..) => ErrorKind::Module,
            EvalAltResult::ErrorParsing(..) => ErrorKind::Syntax,
            _ => ErrorKind::Runtime,
        };
        if kind == ErrorKind::Cancelled {
            return herr(kind, "cancelled");
        }
        let src = self
            .compiled
            .as_ref()
            .and_then(|c| c.ast.source())
            .unwrap_or("handler");
        let mut message = describe(e, src, deps, &limits, &self.dir());
        if kind == ErrorKind::Deadline {
            message = format!(
                "handler ran past its {:.1}s script time limit (time in native calls such as \
                 synthesis does not count): {message}",
                limits.script_time.as_secs_f64()
            );
        }
        herr(kind, message)
    }
}

/// Outputs for `check`: opening any output is refused.
struct NoOutputs;

impl Host for NoOutputs {
    fn speakers(&mut self, _: u32) -> Result<Box<dyn q3tts_audio::Sink>, String> {
        Err("no outputs while checking".into())
    }
    fn stream(
        &mut self,
        _: u32,
        _: Option<q3tts_audio::Format>,
    ) -> Result<Box<dyn q3tts_audio::Sink>, String> {
        Err("no outputs while checking".into())
    }
}

fn new_engine(ctx: Rc<Ctx>) -> Engine {
    let mut engine = Engine::new();
    engine
        .set_max_call_levels(64)
        .set_max_expr_depths(64, 32)
        .set_max_string_size(16 << 20)
        .set_max_array_size(1 << 20)
        .set_max_map_size(1 << 16)
        .set_max_modules(64)
        .set_max_variables(10_000)
        .set_max_functions(10_000);
    engine.set_max_operations(ctx.limits.borrow().max_operations);
    let c = ctx.clone();
    engine.on_progress(move |_ops| c.progress().map(Dynamic::from));
    engine.on_print(crate::shell::log::script);
    engine.on_debug(|s, _src, _pos| crate::shell::log::script(s));
    api::register(&mut engine, ctx);
    engine
}

fn written_just_now(path: &Path) -> bool {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .is_some_and(|age| age < Duration::from_millis(50))
}

fn syntax_error(name: &str, e: &ParseError) -> HandlerError {
    herr(
        ErrorKind::Syntax,
        format!("{}: syntax error: {}", at(name, e.1), e.0),
    )
}

fn at(src: &str, pos: Position) -> String {
    match (pos.line(), pos.position()) {
        (Some(l), Some(c)) => format!("{src}:{l}:{c}"),
        (Some(l), None) => format!("{src}:{l}"),
        _ => src.to_string(),
    }
}

fn root_cause(e: &EvalAltResult) -> &EvalAltResult {
    match e {
        EvalAltResult::ErrorInFunctionCall(_, _, inner, _)
        | EvalAltResult::ErrorInModule(_, inner, _) => root_cause(inner),
        other => other,
    }
}

fn has_module(e: &EvalAltResult) -> bool {
    match e {
        EvalAltResult::ErrorInModule(..) => true,
        EvalAltResult::ErrorInFunctionCall(_, _, inner, _) => has_module(inner),
        _ => false,
    }
}

/// A one-line message for a script error: what happened, where (path:line:col), and the call
/// chain through functions and modules.
fn describe(e: &EvalAltResult, src: &str, deps: &Deps, limits: &Limits, dir: &Path) -> String {
    match e {
        EvalAltResult::ErrorInFunctionCall(name, fsrc, inner, pos) => {
            let inner_src = if fsrc.is_empty() { src } else { fsrc.as_str() };
            format!(
                "{} (in {name}() called at {})",
                describe(inner, inner_src, deps, limits, dir),
                at(src, *pos)
            )
        }
        EvalAltResult::ErrorInModule(name, inner, pos) => {
            let file = deps
                .path_of(name)
                .unwrap_or_else(|| super::modules::module_path(dir, name));
            let file = file.display().to_string();
            format!(
                "in module '{name}' (imported at {}): {}",
                at(src, *pos),
                describe(inner, &file, deps, limits, dir)
            )
        }
        EvalAltResult::ErrorParsing(p, pos) => format!("{}: syntax error: {p}", at(src, *pos)),
        EvalAltResult::ErrorModuleNotFound(name, pos) => format!(
            "{}: module '{name}' not found (looked for {})",
            at(src, *pos),
            deps.path_of(name)
                .unwrap_or_else(|| super::modules::module_path(dir, name))
                .display()
        ),
        EvalAltResult::ErrorRuntime(d, pos) => {
            let what = if d.is_string() {
                d.to_string()
            } else {
                format!("thrown {d:?}")
            };
            format!("{}: {what}", at(src, *pos))
        }
        EvalAltResult::ErrorTooManyOperations(pos) => format!(
            "{}: handler ran past its operation limit ({})",
            at(src, *pos),
            limits.max_operations
        ),
        EvalAltResult::ErrorStackOverflow(pos) => {
            format!("{}: runaway recursion (call depth over 64)", at(src, *pos))
        }
        EvalAltResult::ErrorTerminated(t, pos) => {
            let why = match t.clone().into_string().as_deref() {
                Ok(STOP_MEMORY) => format!(
                    "handler allocated more than its {} MiB memory limit",
                    limits.memory_bytes >> 20
                ),
                Ok(STOP_DEADLINE) => "stopped".to_string(),
                _ => "terminated".to_string(),
            };
            format!("{}: {why}", at(src, *pos))
        }
        other => {
            let pos = other.position();
            let text = other.to_string();
            let suffix = format!(" ({pos})");
            let plain = text.strip_suffix(&suffix).unwrap_or(&text);
            format!("{}: {plain}", at(src, pos))
        }
    }
}

fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
    let msg = p
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".into());
    format!("a native function panicked: {msg}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    struct NoHost;
    impl Host for NoHost {
        fn speakers(&mut self, _: u32) -> Result<Box<dyn q3tts_audio::Sink>, String> {
            Err("no speakers in tests".into())
        }
        fn stream(
            &mut self,
            _: u32,
            _: Option<q3tts_audio::Format>,
        ) -> Result<Box<dyn q3tts_audio::Sink>, String> {
            Err("no stream in tests".into())
        }
    }

    fn run(rt: &mut Runtime, text: &str) -> Result<Outcome, HandlerError> {
        rt.handle(
            None,
            serde_json::json!({"text": text, "options": {}}),
            CancelToken::new(),
            Box::new(NoHost),
        )
    }

    fn setup(handler: &str) -> (tempfile::TempDir, PathBuf, Runtime) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("handlers.rhai");
        fs::write(&path, handler).unwrap();
        let limits = Limits {
            script_time: Duration::from_millis(300),
            ..Limits::default()
        };
        let rt = Runtime::new(path.clone(), limits);
        (dir, path, rt)
    }

    #[test]
    fn edits_to_handler_and_module_are_picked_up() {
        let (dir, path, mut rt) = setup(
            "import \"utils\" as u;\nfn handle(model, request) { #{ v: u::v(), t: request.text } }",
        );
        fs::write(dir.path().join("utils.rhai"), "fn v() { 1 }").unwrap();
        let out = run(&mut rt, "hi").unwrap();
        assert!(out.reloaded);
        assert_eq!(out.reply["v"], 1);
        assert_eq!(out.reply["t"], "hi");
        assert!(
            !run(&mut rt, "hi").unwrap().reloaded,
            "unchanged files are not recompiled"
        );
        fs::write(dir.path().join("utils.rhai"), "fn v() { 2 }").unwrap();
        let out = run(&mut rt, "hi").unwrap();
        assert!(out.reloaded);
        assert_eq!(out.reply["v"], 2);
        fs::write(
            &path,
            "import \"utils\" as u;\nfn handle(model, request) { #{ v: u::v() * 10 } }",
        )
        .unwrap();
        assert_eq!(run(&mut rt, "hi").unwrap().reply["v"], 20);
    }

    #[test]
    fn error_classes_are_reported_and_the_next_request_works() {
        let good = "fn handle(model, request) { #{ ok: true } }";
        let cases: &[(&str, Option<&str>, ErrorKind, &[&str])] = &[
            (
                "fn handle(model, request) {\n  let x = ;\n}",
                None,
                ErrorKind::Syntax,
                &["handlers.rhai:2:11", "syntax error"],
            ),
            (
                "fn handle(model, request) { nope() }",
                None,
                ErrorKind::Runtime,
                &["Function not found: nope", "handlers.rhai:1:29"],
            ),
            (
                "fn inner() { nope() }\nfn handle(model, request) { inner() }",
                None,
                ErrorKind::Runtime,
                &[
                    "Function not found: nope",
                    "in inner() called at",
                    "handlers.rhai:2:",
                ],
            ),
            (
                "import \"helpers\" as h;\nfn handle(model, request) { h::x() }",
                None,
                ErrorKind::Module,
                &["module 'helpers' not found", "helpers.rhai"],
            ),
            (
                "import \"helpers\" as h;\nfn handle(model, request) { h::x() }",
                Some("fn x( { 1 }"),
                ErrorKind::Module,
                &["in module 'helpers'", "helpers.rhai:1:", "syntax error"],
            ),
            (
                "fn handle(model, request) { loop { } }",
                None,
                ErrorKind::Deadline,
                &["script time limit"],
            ),
            (
                "fn f(n) { f(n + 1) }\nfn handle(model, request) { f(0) }",
                None,
                ErrorKind::Limit,
                &["runaway recursion"],
            ),
            (
                "fn handle(model, request) { let s = \"x\"; loop { s += s; } }",
                None,
                ErrorKind::Limit,
                &["too large"],
            ),
            (
                "fn handle(model, request) { let a = []; a.pad(100000000, 0); a }",
                None,
                ErrorKind::Limit,
                &["too large"],
            ),
            (
                "fn handle(model, request) { silence(1e12) }",
                None,
                ErrorKind::Runtime,
                &["silence: seconds must be"],
            ),
            (
                "fn handle(model, request) { debug_panic(\"boom\") }",
                None,
                ErrorKind::Panic,
                &["panicked", "boom"],
            ),
            (
                "fn handle(model, request) { throw \"custom failure\"; }",
                None,
                ErrorKind::Runtime,
                &["custom failure"],
            ),
            (
                "fn handle(model, request) { 42 }",
                None,
                ErrorKind::Runtime,
                &["must return a map"],
            ),
        ];
        for (handler, module, kind, needles) in cases {
            let (dir, path, mut rt) = setup(handler);
            if let Some(m) = module {
                fs::write(dir.path().join("helpers.rhai"), m).unwrap();
            }
            let e = run(&mut rt, "x")
                .err()
                .unwrap_or_else(|| panic!("{handler} should fail"));
            assert_eq!(e.kind, *kind, "{handler}: {}", e.message);
            for n in *needles {
                assert!(
                    e.message.contains(n),
                    "{handler}: {:?} lacks {n:?}",
                    e.message
                );
            }
            fs::write(&path, good).unwrap();
            assert_eq!(
                run(&mut rt, "x").unwrap().reply["ok"],
                true,
                "after {handler}"
            );
        }
    }

    #[test]
    fn a_map_grown_by_index_assignment_hits_the_memory_limit() {
        let (_dir, _path, mut rt) = setup(
            "fn handle(model, request) { let m = #{}; let i = 0; loop { m[`k${i}`] = \"0123456789abcdef\"; i += 1; } }",
        );
        rt.set_limits(Limits {
            script_time: Duration::from_secs(60),
            memory_bytes: 16 << 20,
            ..Limits::default()
        });
        let e = run(&mut rt, "x").err().unwrap();
        assert_eq!(e.kind, ErrorKind::Memory, "{}", e.message);
        assert!(e.message.contains("16 MiB memory limit"), "{}", e.message);
    }

    #[test]
    fn native_time_does_not_count_as_script_time() {
        // A 0.3 s script limit; the native calls below run until well past it (however fast
        // the machine is), while the script's own share stays small.
        let (_dir, _path, mut rt) = setup(
            "fn handle(model, request) { let big = silence(20); let t = timestamp(); \
             while t.elapsed < 0.6 { let a = gain(big, 0.5); } #{ native_s: t.elapsed } }",
        );
        let out = run(&mut rt, "x").unwrap();
        assert!(
            out.reply["native_s"].as_f64().unwrap() > 0.3,
            "{:?}",
            out.reply
        );
    }

    #[test]
    fn cancellation_stops_a_script() {
        let (_dir, _path, mut rt) = setup("fn handle(model, request) { loop { } }");
        rt.set_limits(Limits {
            script_time: Duration::from_secs(60),
            ..Limits::default()
        });
        let cancel = CancelToken::new();
        let c = cancel.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            c.cancel();
        });
        let e = rt
            .handle(
                None,
                serde_json::json!({"text": "x", "options": {}}),
                cancel,
                Box::new(NoHost),
            )
            .err()
            .unwrap();
        assert_eq!(e.kind, ErrorKind::Cancelled);
    }

    #[test]
    fn builtin_default_is_used_without_a_file_and_compiles() {
        let dir = tempfile::tempdir().unwrap();
        let mut rt = Runtime::new(dir.path().join("none.rhai"), Limits::default());
        rt.check().unwrap();
        assert!(rt.using_builtin);
        // The default handler needs a model: without one it fails at the first model call.
        let e = run(&mut rt, "hello").err().unwrap();
        assert!(
            e.message.contains("no request")
                || e.message.contains("speakers")
                || e.message.contains("generate"),
            "{}",
            e.message
        );
    }
}
