//! Per-request state shared by the runtime, its progress callback and the native functions:
//! the cancellation token, the script clock (script time only: native calls are subtracted),
//! the memory count, the host that opens outputs, and the sinks a script opened.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use q3tts_audio::{Format, Sink, SinkSummary};
use q3tts_engine::CancelToken;

use super::memory;

/// Opens the outputs a script asks for. The daemon and the in-process path differ here only.
pub trait Host {
    /// The speakers (the daemon keeps one device open across requests).
    fn speakers(&mut self, sample_rate: u32) -> Result<Box<dyn Sink>, String>;
    /// `"-"`: audio back to the client (daemon) or standard output (in-process).
    fn stream(&mut self, sample_rate: u32, format: Option<Format>)
        -> Result<Box<dyn Sink>, String>;
}

/// Limits on script work (not on native work such as synthesis).
#[derive(Clone, Debug)]
pub struct Limits {
    /// Wall-clock time spent in script code, native calls excluded.
    pub script_time: Duration,
    pub max_operations: u64,
    /// Net bytes a script may allocate (native calls excluded).
    pub memory_bytes: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            script_time: Duration::from_secs(2),
            max_operations: 200_000_000,
            memory_bytes: 512 << 20,
        }
    }
}

/// Why the progress callback stopped a script.
pub const STOP_DEADLINE: &str = "q3tts:deadline";
pub const STOP_CANCELLED: &str = "q3tts:cancelled";
pub const STOP_MEMORY: &str = "q3tts:memory";

/// An output a script opened, shared between the script value and the request's bookkeeping.
pub type SharedSink = Rc<RefCell<OpenSink>>;

pub struct OpenSink {
    pub sink: Option<Box<dyn Sink>>,
    pub name: String,
    pub summary: Option<SinkSummary>,
}

/// The state of the request in progress (reset for every request).
pub struct Ctx {
    pub cancel: RefCell<CancelToken>,
    started: Cell<Instant>,
    native: Cell<Duration>,
    pub limits: RefCell<Limits>,
    pub host: RefCell<Option<Box<dyn Host>>>,
    pub sinks: RefCell<Vec<SharedSink>>,
    /// The speakers sink `play()` writes to, opened on first use.
    pub speakers: RefCell<Option<SharedSink>>,
    /// The directory relative paths in scripts are resolved against.
    pub base_dir: RefCell<std::path::PathBuf>,
    /// Whether a "-" stream was opened already (at most one per request).
    pub stream_opened: Cell<bool>,
}

impl Ctx {
    pub fn new(limits: Limits) -> Rc<Ctx> {
        Rc::new(Ctx {
            cancel: RefCell::new(CancelToken::new()),
            started: Cell::new(Instant::now()),
            native: Cell::new(Duration::ZERO),
            limits: RefCell::new(limits),
            host: RefCell::new(None),
            sinks: RefCell::new(Vec::new()),
            speakers: RefCell::new(None),
            base_dir: RefCell::new(std::path::PathBuf::from("/")),
            stream_opened: Cell::new(false),
        })
    }

    /// Begin a request.
    pub fn begin(&self, cancel: CancelToken, host: Box<dyn Host>) {
        *self.cancel.borrow_mut() = cancel;
        *self.host.borrow_mut() = Some(host);
        self.sinks.borrow_mut().clear();
        *self.speakers.borrow_mut() = None;
        self.stream_opened.set(false);
        self.native.set(Duration::ZERO);
        self.started.set(Instant::now());
    }

    /// End a request: finish (on success) or cancel (on error) every sink still open.
    /// Returns the first finishing error.
    pub fn end(&self, ok: bool) -> Result<(), String> {
        let _n = self.native_call();
        let mut first = Ok(());
        for s in self.sinks.borrow_mut().drain(..) {
            let mut s = s.borrow_mut();
            if let Some(mut sink) = s.sink.take() {
                if ok {
                    match sink.finish() {
                        Ok(sum) => s.summary = Some(sum),
                        Err(e) if first.is_ok() => first = Err(format!("{}: {e}", s.name)),
                        Err(_) => {}
                    }
                } else {
                    sink.cancel();
                }
            }
        }
        *self.speakers.borrow_mut() = None;
        *self.host.borrow_mut() = None;
        first
    }

    /// Script time used so far (wall clock minus native calls).
    pub fn script_time(&self) -> Duration {
        self.started
            .get()
            .elapsed()
            .saturating_sub(self.native.get())
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancel.borrow().is_cancelled()
    }

    /// Called by Rhai on every operation: returns a stop token when a limit is hit.
    pub fn progress(&self) -> Option<&'static str> {
        if self.is_cancelled() {
            return Some(STOP_CANCELLED);
        }
        let limits = self.limits.borrow();
        if memory::is_counting() && memory::net_bytes() > limits.memory_bytes {
            return Some(STOP_MEMORY);
        }
        if self.script_time() > limits.script_time {
            return Some(STOP_DEADLINE);
        }
        None
    }

    /// Mark a native call: its time is not script time and its allocations are not counted.
    pub fn native_call(&self) -> NativeGuard<'_> {
        NativeGuard {
            ctx: self,
            start: Instant::now(),
            was_counting: memory::pause(),
        }
    }
}

/// See [`Ctx::native_call`].
pub struct NativeGuard<'a> {
    ctx: &'a Ctx,
    start: Instant,
    was_counting: bool,
}

impl Drop for NativeGuard<'_> {
    fn drop(&mut self) {
        self.ctx
            .native
            .set(self.ctx.native.get() + self.start.elapsed());
        if self.was_counting {
            memory::resume();
        }
    }
}
