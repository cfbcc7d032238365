//! The worker: the only owner of the model and the handler runtime. Pops `generate` jobs in
//! order, checks the handler for changes, runs `handle(model, request)`, and sends the reply.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use q3tts_audio::Backend;
use q3tts_engine::Model;
use serde_json::{json, Value};

use super::log;
use super::outputs::{DaemonHost, SharedSpeakers};
use super::queue::{Job, Msg};
use super::state::{Current, Shared};
use crate::handler::{ErrorKind, Limits, Runtime};
use crate::protocol::{error_reply, handler_request};

/// Serve jobs until the queue closes.
pub fn run(shared: Arc<Shared>, model: Model, limits: Limits, backend: Backend) {
    // A panic inside a native function is caught and answered as an error; log it as one line.
    std::panic::set_hook(Box::new(|info| log::line(&format!("[panic] {info}"))));
    let mut rt = Runtime::new(shared.handler_path.clone(), limits);
    let speakers: SharedSpeakers = Arc::new(Mutex::new(None));
    while let Some(job) = shared.queue.pop() {
        serve(&shared, &model, &mut rt, &speakers, backend, job);
    }
}

fn serve(
    shared: &Shared,
    model: &Model,
    rt: &mut Runtime,
    speakers: &SharedSpeakers,
    backend: Backend,
    job: Job,
) {
    let text = job.request.text.clone().unwrap_or_default();
    if job.cancel.is_cancelled() {
        log::cancel(&text, job.queued_at.elapsed().as_secs_f64());
        job.send_final(Msg::Json(cancelled_reply()));
        return;
    }
    let start = Instant::now();
    *shared.current.lock().unwrap() = Some(Current {
        id: job.id,
        text: text.clone(),
        cancel: job.cancel.clone(),
    });
    let served = shared.served.fetch_add(1, Ordering::SeqCst) + 1;
    job.send(Msg::Json(json!({"event": "started", "served": served})));

    let reply = run_handler(
        shared, model, rt, speakers, backend, &job, &text, start, served,
    );
    *shared.current.lock().unwrap() = None;
    job.send_final(Msg::Json(reply));
}

#[allow(clippy::too_many_arguments)]
fn run_handler(
    shared: &Shared,
    model: &Model,
    rt: &mut Runtime,
    speakers: &SharedSpeakers,
    backend: Backend,
    job: &Job,
    text: &str,
    start: Instant,
    served: u64,
) -> Value {
    let t = Instant::now();
    let refreshed = rt.refresh();
    if let Ok(true) = refreshed {
        let path = log::tilde(rt.path());
        log::recompiled(&path, rt.using_builtin, t.elapsed().as_secs_f64() * 1e3);
        *shared.last_reload.lock().unwrap() = rt.last_reload;
        shared
            .handler_builtin
            .store(rt.using_builtin, Ordering::SeqCst);
    }
    let stream_open = Arc::new(AtomicBool::new(false));
    let result = refreshed.and_then(|_| {
        let host = DaemonHost {
            speakers: speakers.clone(),
            backend,
            reply: job.reply.clone(),
            cancel: job.cancel.clone(),
            stream_open: stream_open.clone(),
        };
        rt.handle(
            Some(model),
            handler_request(&job.request),
            job.cancel.clone(),
            Box::new(host),
        )
    });
    if stream_open.load(Ordering::SeqCst) {
        // The handler failed with the audio stream open: end it so the reply can be read.
        job.send_final(Msg::Audio(Vec::new()));
    }
    let secs = start.elapsed().as_secs_f64();
    match result {
        Ok(out) => {
            log::reload_ok(text, &log::destination(job.request.output.as_deref()), secs);
            let mut reply = out.reply;
            for note in reply
                .get("notes")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(n) = note.as_str() {
                    log::line(&format!("note: {n}"));
                }
            }
            reply.insert("status".into(), "ok".into());
            reply.insert("served".into(), served.into());
            Value::Object(reply)
        }
        Err(_) if super::watchdog::expired(job.id) => {
            log::reload_error(&super::watchdog::message());
            let mut r = error_reply(super::watchdog::message());
            r["served"] = served.into();
            r["kind"] = "deadline".into();
            r
        }
        Err(e) if e.kind == ErrorKind::Cancelled || job.cancel.is_cancelled() => {
            log::cancel(text, secs);
            cancelled_reply()
        }
        Err(e) => {
            if e.kind == ErrorKind::Deadline {
                log::deadline(&format!("{} (script time limit)", log::quote(text)));
            }
            log::reload_error(&e.message);
            let mut r = error_reply(e.message);
            r["served"] = served.into();
            r["kind"] = format!("{:?}", e.kind).to_lowercase().into();
            r
        }
    }
}

fn cancelled_reply() -> Value {
    let mut r = error_reply("cancelled");
    r["cancelled"] = true.into();
    r
}
