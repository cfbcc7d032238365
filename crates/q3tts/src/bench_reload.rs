//! `q3tts bench-reload`: figures for the handler loop, printed (no assertions):
//! the per-request change check with an unchanged handler, the recompile after an edit,
//! save → first audio chunk through a daemon, and the client round trip for `status`.
//! Starts its own daemon on a temporary socket with the given model.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clap::Args;

use crate::handler::{Limits, Runtime};
use crate::protocol::{Action, Request};

#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// Iterations per figure.
    #[arg(long, default_value_t = 200)]
    pub iterations: usize,
}

const HANDLER: &str = r#"
import "utils" as u;
fn handle(model, request) {
    let out = open_output(request.output);
    let s = model.generate(u::clean(request.text), #{ max_new_tokens: 3, greedy: true });
    for chunk in s { out.write(chunk); }
    out.finish()
}
"#;
const UTILS: &str = "fn clean(t) { t.trim(); t }\n";

pub fn run(args: &BenchArgs, model: &str) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("q3tts-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let handler = dir.join("handlers.rhai");
    std::fs::write(&handler, HANDLER)?;
    std::fs::write(dir.join("utils.rhai"), UTILS)?;
    let n = args.iterations.max(1);

    // 1. Change check with nothing changed (two files: handler + imported module), first
    //    while the files are fresh (content hashed too), then once they have settled (stat only).
    let mut rt = Runtime::new(handler.clone(), Limits::default());
    rt.check().map_err(|e| anyhow::anyhow!(e.message))?;
    let check = |rt: &mut Runtime| -> anyhow::Result<f64> {
        let t = Instant::now();
        for _ in 0..n {
            rt.refresh().map_err(|e| anyhow::anyhow!(e.message))?;
        }
        Ok(t.elapsed().as_secs_f64() * 1e6 / n as f64)
    };
    let fresh_us = check(&mut rt)?;
    std::thread::sleep(Duration::from_millis(2200));
    let unchanged_us = check(&mut rt)?;

    // 2. Recompile after an edit (handler text changes every time).
    let mut total = Duration::ZERO;
    for i in 0..n.min(100) {
        std::fs::write(&handler, format!("{HANDLER}\n// edit {i}\n"))?;
        let t = Instant::now();
        rt.refresh().map_err(|e| anyhow::anyhow!(e.message))?;
        total += t.elapsed();
    }
    let edit_ms = total.as_secs_f64() * 1e3 / n.min(100) as f64;

    // 3. A daemon: status round trip and save → first audio chunk.
    let socket = dir.join("bench.sock");
    let exe = std::env::current_exe()?;
    let mut daemon = Command::new(&exe)
        .args(["serve", "--model", model, "--socket"])
        .arg(&socket)
        .arg("--handlers")
        .arg(&handler)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let start = Instant::now();
    while crate::client::connect(&socket)?.is_none() {
        if start.elapsed() > Duration::from_secs(120) {
            let _ = daemon.kill();
            anyhow::bail!("the daemon did not start");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let t = Instant::now();
    for _ in 0..n {
        crate::client::control(&socket, Action::Status, false)?;
    }
    let status_us = t.elapsed().as_secs_f64() * 1e6 / n as f64;

    let mut first_chunk = Vec::new();
    for i in 0..10 {
        std::fs::write(&handler, format!("{HANDLER}\n// save {i}\n"))?;
        let saved = Instant::now();
        let mut stream = crate::client::connect(&socket)?.ok_or_else(|| anyhow::anyhow!("gone"))?;
        let mut req = Request::new(Action::Generate);
        req.text = Some("Hello, world.".into());
        req.output = Some("-".into());
        let mut first: Option<Duration> = None;
        crate::client::exchange(&mut stream, &req, |ev| {
            if matches!(ev, crate::client::AudioEvent::Samples(_)) && first.is_none() {
                first = Some(saved.elapsed());
            }
            Ok(())
        })?;
        if let Some(f) = first {
            first_chunk.push(f.as_secs_f64() * 1e3);
        }
    }
    let _ = crate::client::control(&socket, Action::Shutdown, false);
    let _ = daemon.wait();
    let _ = std::fs::remove_dir_all(&dir);
    first_chunk.sort_by(f64::total_cmp);
    println!("reload check, unchanged handler + 1 module: {unchanged_us:.1} µs/request (settled files: stat only)");
    println!("reload check, files saved < 2 s ago:        {fresh_us:.1} µs/request (stat + content hash)");
    println!("recompile after an edit:                    {edit_ms:.3} ms");
    println!("status round trip (connect, send, reply):   {status_us:.0} µs");
    if !first_chunk.is_empty() {
        println!(
            "save -> first audio chunk ({model}): min {:.1} ms, median {:.1} ms",
            first_chunk[0],
            first_chunk[first_chunk.len() / 2]
        );
    }
    Ok(())
}
