//! The in-process path: with no daemon, load the model, run the same handler once, exit.
//! Ctrl-C cancels the utterance.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use q3tts_audio::{Backend, Format, Sink, Speakers};
use q3tts_engine::CancelToken;
use serde_json::Value;

use crate::handler::{ErrorKind, Host, Limits, Runtime};
use crate::model::{self, LoadConfig};
use crate::protocol::{error_reply, handler_request, Request};

struct InlineHost;

impl Host for InlineHost {
    fn speakers(&mut self, sample_rate: u32) -> Result<Box<dyn Sink>, String> {
        Speakers::open(Backend::Auto, sample_rate)
            .map(|s| Box::new(s) as Box<dyn Sink>)
            .map_err(|e| e.to_string())
    }
    fn stream(
        &mut self,
        sample_rate: u32,
        format: Option<Format>,
    ) -> Result<Box<dyn Sink>, String> {
        q3tts_audio::stdout_sink(format.unwrap_or(Format::Wav), sample_rate)
            .map_err(|e| e.to_string())
    }
}

/// Run one request in this process; returns the reply (as the daemon would send it).
pub fn run(req: &Request, spec: &str, load: &LoadConfig, handler: &Path) -> anyhow::Result<Value> {
    let loaded = model::load(spec, load)?;
    let cancel = CancelToken::new();
    let interrupted = Arc::new(AtomicBool::new(false));
    let _ = crate::shell::signals::on_terminate(interrupted.clone());
    {
        let (cancel, interrupted) = (cancel.clone(), interrupted.clone());
        std::thread::spawn(move || loop {
            if interrupted.load(Ordering::SeqCst) {
                cancel.cancel();
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        });
    }
    let mut rt = Runtime::new(handler.to_path_buf(), Limits::default());
    let result = rt.handle(
        Some(&loaded.model),
        handler_request(req),
        cancel,
        Box::new(InlineHost),
    );
    Ok(match result {
        Ok(out) => {
            let mut reply = out.reply;
            reply.insert("status".into(), "ok".into());
            Value::Object(reply)
        }
        Err(e) if e.kind == ErrorKind::Cancelled => error_reply("cancelled"),
        Err(e) => error_reply(e.message),
    })
}
