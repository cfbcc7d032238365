//! The accept loop and the connections. The main thread accepts; each connection gets its own
//! thread, so a client that sends half a frame and waits delays nobody else (and is cut off
//! after a read deadline). Control requests are answered here at once; `generate` requests go
//! to the queue, and the connection thread forwards the worker's events and reply, watching
//! for the client hanging up (which cancels its utterance).

use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use q3tts_audio::Backend;
use q3tts_engine::CancelToken;
use serde_json::json;

use super::lock::{self, InstanceLock};
use super::queue::{Job, Msg, Queue};
use super::state::Shared;
use super::{log, peer, signals, worker};
use crate::handler::Limits;
use crate::protocol::{self, error_reply, Action, FrameError, Request};

/// How long a client may take to send its request.
const READ_DEADLINE: Duration = Duration::from_secs(10);

/// Everything `serve` needs.
pub struct ServeConfig {
    pub socket: PathBuf,
    pub model_spec: String,
    pub handler_path: PathBuf,
    pub log_path: Option<PathBuf>,
    pub queue: usize,
    pub limits: Limits,
    /// Cancel a request that makes no new audio for this long ([`super::watchdog`]).
    pub progress_timeout: Duration,
    pub backend: Backend,
    pub load: crate::model::LoadConfig,
}

/// Run the daemon until SIGTERM/SIGINT or a `shutdown` request. `ready` is called once the
/// socket accepts (daemon mode tells the waiting parent).
pub fn run(cfg: ServeConfig, ready: impl FnOnce()) -> anyhow::Result<()> {
    let shutdown = Arc::new(AtomicBool::new(false));
    signals::on_terminate(shutdown.clone()).context("cannot install signal handlers")?;
    let lock = lock::acquire(&cfg.socket)?;
    let loaded = match crate::model::load(&cfg.model_spec, &cfg.load) {
        Ok(l) => l,
        Err(e) => {
            lock.release();
            return Err(e);
        }
    };
    log::model_loaded(&loaded.model.info().size, loaded.seconds);
    let listener = match bind(&cfg.socket) {
        Ok(l) => l,
        Err(e) => {
            lock.release();
            return Err(e);
        }
    };
    log::listening(&cfg.socket);
    let shared = Arc::new(Shared {
        started: Instant::now(),
        info: loaded.model.info().clone(),
        model_spec: cfg.model_spec.clone(),
        socket: cfg.socket.clone(),
        handler_path: cfg.handler_path.clone(),
        log_path: cfg.log_path.clone(),
        queue: Queue::new(cfg.queue),
        served: AtomicU64::new(0),
        next_id: AtomicU64::new(1),
        current: Mutex::new(None),
        last_reload: Mutex::new(None),
        handler_builtin: AtomicBool::new(!cfg.handler_path.exists()),
        shutdown,
    });
    let worker = {
        let shared = shared.clone();
        let model = loaded.model.clone();
        let (limits, backend) = (cfg.limits.clone(), cfg.backend);
        std::thread::Builder::new()
            .name("worker".into())
            .spawn(move || worker::run(shared, model, limits, backend))?
    };
    super::watchdog::spawn(shared.clone(), cfg.progress_timeout)?;
    ready();
    let connections = Arc::new(AtomicUsize::new(0));
    accept_loop(&listener, &shared, &connections);
    shut_down(listener, &cfg.socket, &shared, worker, &connections, lock);
    Ok(())
}

/// Bind the socket with mode 0600 (a stale socket file is replaced: we hold the lock).
fn bind(socket: &Path) -> anyhow::Result<UnixListener> {
    if let Some(dir) = socket.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the socket's directory {}", dir.display()))?;
    }
    match std::fs::remove_file(socket) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => anyhow::bail!("cannot remove the stale socket {}: {e}", socket.display()),
    }
    let old = unsafe { libc::umask(0o177) };
    let bound = UnixListener::bind(socket);
    unsafe { libc::umask(old) };
    let listener = bound.with_context(|| format!("cannot listen on {}", socket.display()))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600))?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

fn accept_loop(listener: &UnixListener, shared: &Arc<Shared>, connections: &Arc<AtomicUsize>) {
    while !shared.is_shutting_down() {
        let mut pfd = libc::pollfd {
            fd: listener.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        unsafe { libc::poll(&mut pfd, 1, 100) };
        loop {
            match listener.accept() {
                Ok((stream, _)) => {
                    let shared = shared.clone();
                    let count = connections.clone();
                    count.fetch_add(1, Ordering::SeqCst);
                    let spawned =
                        std::thread::Builder::new()
                            .name("conn".into())
                            .spawn(move || {
                                connection(stream, &shared);
                                count.fetch_sub(1, Ordering::SeqCst);
                            });
                    if spawned.is_err() {
                        connections.fetch_sub(1, Ordering::SeqCst);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
    }
}

fn shut_down(
    listener: UnixListener,
    socket: &Path,
    shared: &Arc<Shared>,
    worker: std::thread::JoinHandle<()>,
    connections: &Arc<AtomicUsize>,
    lock: InstanceLock,
) {
    drop(listener);
    let _ = std::fs::remove_file(socket);
    shared.cancel_current();
    for job in shared.queue.close() {
        job.cancel.cancel();
        let mut r = error_reply("the daemon is shutting down");
        r["cancelled"] = true.into();
        job.send_final(Msg::Json(r));
    }
    // The worker stops within a frame of cancellation; do not wait forever on a stuck sink.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !worker.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    while connections.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    lock.release();
    log::shutdown();
}

/// Send a final reply to a client whose request may not have been read in full, then close
/// gently: closing with unread bytes would reset the connection and lose the reply.
fn reply_and_close(mut stream: UnixStream, reply: &serde_json::Value) {
    let _ = protocol::write_json(&mut stream, reply);
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let mut buf = [0u8; 64 * 1024];
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(1) {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
}

/// One connection: check the peer, read one request, answer it.
fn connection(mut stream: UnixStream, shared: &Arc<Shared>) {
    let _ = stream.set_nonblocking(false);
    match peer::peer_uid(&stream) {
        Ok(uid) if uid == peer::my_uid() => {}
        Ok(uid) => {
            log::refused(&format!(
                "connection from uid {uid} (this daemon serves uid {})",
                peer::my_uid()
            ));
            let msg = format!(
                "refused: this daemon serves uid {} only, you are uid {uid}",
                peer::my_uid()
            );
            reply_and_close(stream, &error_reply(msg));
            return;
        }
        Err(e) => {
            log::refused(&format!("connection whose uid could not be read: {e}"));
            return;
        }
    }
    let _ = stream.set_read_timeout(Some(READ_DEADLINE));
    let payload = match protocol::read_frame(&mut stream) {
        Ok(p) => p,
        Err(FrameError::Closed) => return,
        Err(FrameError::TimedOut) => {
            log::deadline(&format!(
                "a client sent no complete request within {}s",
                READ_DEADLINE.as_secs()
            ));
            reply_and_close(stream, &error_reply("timed out reading the request"));
            return;
        }
        Err(e) => {
            log::reload_error(&format!("bad request frame: {e}"));
            reply_and_close(stream, &error_reply(format!("bad request frame: {e}")));
            return;
        }
    };
    let _ = stream.set_read_timeout(None);
    let req = match protocol::parse_request(&payload) {
        Ok(r) => r,
        Err(msg) => {
            log::reload_error(&format!("bad request: {msg}"));
            let _ = protocol::write_json(&mut stream, &error_reply(msg));
            return;
        }
    };
    let reply = match req.action {
        Action::Status => shared.status(),
        Action::Stop => stop(shared, req.all),
        Action::Shutdown => {
            shared.shutdown.store(true, Ordering::SeqCst);
            json!({"status": "ok", "message": "shutting down"})
        }
        Action::Generate => return generate(stream, shared, req),
    };
    let _ = protocol::write_json(&mut stream, &reply);
}

fn stop(shared: &Shared, all: bool) -> serde_json::Value {
    let cancelled = shared.cancel_current();
    let mut dropped = 0;
    if all {
        for job in shared.queue.drain() {
            job.cancel.cancel();
            log::cancel(job.request.text.as_deref().unwrap_or(""), 0.0);
            let mut r = error_reply("cancelled");
            r["cancelled"] = true.into();
            job.send_final(Msg::Json(r));
            dropped += 1;
        }
    }
    json!({"status": "ok", "cancelled": cancelled, "dropped": dropped})
}

/// Whether the client asked for a model this daemon does not serve.
fn model_mismatch(shared: &Shared, wanted: &str) -> Option<String> {
    if wanted == shared.model_spec {
        return None;
    }
    let wanted_path = Path::new(wanted);
    if wanted_path.exists() {
        let a = std::fs::canonicalize(wanted_path).ok();
        let b = std::fs::canonicalize(&shared.info.path).ok();
        if a.is_some() && a == b {
            return None;
        }
    }
    Some(format!(
        "this daemon serves the model {} ({}), not {wanted}; stop it (`q3tts stop`) and start \
         `q3tts serve --model {wanted}`, or drop --model",
        shared.model_spec,
        shared.info.path.display()
    ))
}

fn generate(mut stream: UnixStream, shared: &Arc<Shared>, req: Request) {
    if let Some(wanted) = &req.model {
        if let Some(msg) = model_mismatch(shared, wanted) {
            log::reload_error(&msg);
            let _ = protocol::write_json(&mut stream, &error_reply(msg));
            return;
        }
    }
    let text = req.text.clone().unwrap_or_default();
    let wait = req.wait;
    let (tx, rx) = sync_channel::<Msg>(16);
    let cancel = CancelToken::new();
    let job = Job {
        id: shared.next_id.fetch_add(1, Ordering::SeqCst),
        request: req,
        cancel: cancel.clone(),
        reply: if wait { Some(tx) } else { None },
        queued_at: Instant::now(),
    };
    let position = match shared.queue.push(job) {
        Ok(p) => p,
        Err(_) => {
            let (msg, busy) = if shared.is_shutting_down() {
                ("the daemon is shutting down".to_string(), false)
            } else {
                log::busy(&text, shared.queue.capacity());
                (
                    format!(
                        "busy: {} requests are already waiting",
                        shared.queue.capacity()
                    ),
                    true,
                )
            };
            let mut r = error_reply(msg);
            r["busy"] = busy.into();
            let _ = protocol::write_json(&mut stream, &r);
            return;
        }
    };
    if !wait {
        let _ = protocol::write_json(
            &mut stream,
            &json!({"status": "ok", "queued": true, "position": position}),
        );
        return;
    }
    let _ = protocol::write_json(
        &mut stream,
        &json!({"event": "queued", "position": position}),
    );
    forward(stream, rx, cancel, &text);
}

/// Forward the worker's messages to the client until the final reply; a client that hangs up
/// cancels its utterance (queued or in progress).
fn forward(
    mut stream: UnixStream,
    rx: std::sync::mpsc::Receiver<Msg>,
    cancel: CancelToken,
    text: &str,
) {
    loop {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(Msg::Json(v)) => {
                let last = v.get("status").is_some();
                if protocol::write_json(&mut stream, &v).is_err() {
                    hung_up(&cancel, text);
                    return;
                }
                if last {
                    return;
                }
            }
            Ok(Msg::Audio(bytes)) => {
                if protocol::write_frame(&mut stream, &bytes).is_err() {
                    hung_up(&cancel, text);
                    return;
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                if peer_gone(&mut stream) {
                    hung_up(&cancel, text);
                    return;
                }
            }
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

fn hung_up(cancel: &CancelToken, text: &str) {
    if !cancel.is_cancelled() {
        cancel.cancel();
        log::line(&format!("[cancel] {} (client hung up)", log::quote(text)));
    }
}

/// True when the client closed its end (bytes it sends after the request are discarded).
fn peer_gone(stream: &mut UnixStream) -> bool {
    let mut pfd = libc::pollfd {
        fd: stream.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let n = unsafe { libc::poll(&mut pfd, 1, 0) };
    if n <= 0 {
        return false;
    }
    if pfd.revents & (libc::POLLHUP | libc::POLLERR) != 0 {
        return true;
    }
    if pfd.revents & libc::POLLIN != 0 {
        let mut buf = [0u8; 4096];
        let _ = stream.set_nonblocking(true);
        let r = stream.read(&mut buf);
        let _ = stream.set_nonblocking(false);
        return matches!(r, Ok(0));
    }
    false
}
