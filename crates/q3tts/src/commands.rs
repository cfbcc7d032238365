//! One function per command: parse, dispatch, and turn errors into exit codes
//! (0 ok, 1 daemon/handler error, 2 usage).

use std::path::{Path, PathBuf};

use clap::{CommandFactory, Parser};
use serde_json::Value;

use crate::cli::{Cli, Command, Common, ServeArgs};
use crate::client::{self, UsageError, EXIT_FAILED, EXIT_OK, EXIT_USAGE};
use crate::handler::{Limits, Runtime, DEFAULT_HANDLER};
use crate::model::{self, LoadConfig};
use crate::protocol::Action;
use crate::shell::{daemonize, log, server};

pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_USAGE } else { EXIT_OK };
            let _ = e.print();
            return code;
        }
    };
    if let Some(n) = cli.common.threads {
        if n == 0 {
            eprintln!("q3tts: --threads must be at least 1");
            return EXIT_USAGE;
        }
        // Read by candle's CPU kernels and rayon when they first start.
        std::env::set_var("RAYON_NUM_THREADS", n.to_string());
    } else if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        // candle works out its default (the physical cores) again on every matmul, reading
        // /proc/cpuinfo each time (about 900 times per second of generation); work it out once.
        let n = candle_core::utils::get_num_threads();
        std::env::set_var("RAYON_NUM_THREADS", n.to_string());
    }
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        // candle runs elementwise ops of 64 K values and more on a pool of its own, whose
        // workers spin for a while after each op on the cores our kernels (rayon) are using, and
        // which the decoder stage would share with generation. With one thread candle runs them
        // on the calling thread, so each stage uses the threads the session gave it. 0.6B
        // prefill, 41 positions, 2 cores, alternating: bf16 210/223 ms against 248/269, int8
        // 215/221 against 239/246.
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
    let result = match &cli.command {
        None => say(&cli),
        Some(Command::Serve(args)) => serve(args, &cli.common),
        Some(Command::Status) => status(&cli.common),
        Some(Command::Stop) => control(&cli.common, Action::Shutdown, false),
        Some(Command::Cancel { all }) => control(&cli.common, Action::Stop, *all),
        Some(Command::Init { dir, force }) => init(dir.as_deref(), *force),
        Some(Command::Check) => check(&cli.common),
        Some(Command::Completions { shell }) => {
            clap_complete::generate(*shell, &mut Cli::command(), "q3tts", &mut std::io::stdout());
            Ok(EXIT_OK)
        }
        Some(Command::Pull { repo }) => pull(repo.as_deref()),
        Some(Command::Models) => models(),
        Some(Command::Stress(args)) => crate::stress::run(args, &cli.common.socket_path()),
        Some(Command::Bench(args)) => crate::bench::run(args, &cli.common),
        Some(Command::BenchReload(args)) => {
            let spec = model::spec_or_default(cli.common.model.as_deref());
            crate::bench_reload::run(args, &spec).map(|_| EXIT_OK)
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("q3tts: {e:#}");
            if e.downcast_ref::<UsageError>().is_some() {
                EXIT_USAGE
            } else {
                EXIT_FAILED
            }
        }
    }
}

fn load_config(common: &Common) -> anyhow::Result<LoadConfig> {
    Ok(model::parse_dtype(&common.dtype).map_err(|e| UsageError(e.to_string()))?)
}

fn say(cli: &Cli) -> anyhow::Result<i32> {
    let req = client::build_request(&cli.say, &cli.common)?;
    let socket = cli.common.socket_path();
    let mut stdout_audio = client::StdoutAudio::new(cli.say.format.as_deref())?;
    if let Some(mut stream) = client::connect(&socket)? {
        let reply = client::exchange(&mut stream, &req, |ev| stdout_audio.handle(ev))?;
        return Ok(client::report(&reply));
    }
    if cli.say.no_wait {
        return Err(UsageError("--no-wait needs a running daemon".into()).into());
    }
    let spec = model::spec_or_default(cli.common.model.as_deref());
    eprintln!(
        "q3tts: no daemon on {}; running in-process (loading {spec})",
        log::tilde(&socket)
    );
    let reply = crate::inline::run(
        &req,
        &spec,
        &load_config(&cli.common)?,
        &cli.common.handler_path(),
    )?;
    Ok(client::report(&reply))
}

fn serve(args: &ServeArgs, common: &Common) -> anyhow::Result<i32> {
    let socket = absolute(&common.socket_path())?;
    let handler = absolute(&common.handler_path())?;
    let spec = model::normalize_spec(&model::spec_or_default(common.model.as_deref()));
    if args.queue == 0 {
        return Err(UsageError("--queue must be at least 1".into()).into());
    }
    if !(args.script_time_limit > 0.0 && args.script_time_limit.is_finite()) {
        return Err(UsageError("--script-time-limit must be a positive number".into()).into());
    }
    if !(args.progress_timeout > 0.0 && args.progress_timeout.is_finite()) {
        return Err(UsageError("--progress-timeout must be a positive number".into()).into());
    }
    let backend = q3tts_audio::Backend::from_name(&args.audio_backend)
        .map_err(|e| UsageError(e.to_string()))?;
    let log_path = args
        .daemon
        .then(|| args.log.clone().unwrap_or_else(daemonize::default_log_path));
    let log_path = log_path.map(|p| absolute(&p)).transpose()?;
    let cfg = server::ServeConfig {
        socket,
        model_spec: spec,
        handler_path: handler,
        log_path: log_path.clone(),
        queue: args.queue,
        limits: Limits {
            script_time: std::time::Duration::from_secs_f64(args.script_time_limit),
            ..Limits::default()
        },
        progress_timeout: std::time::Duration::from_secs_f64(args.progress_timeout),
        backend,
        load: load_config(common)?,
    };
    let mut notifier = match &log_path {
        Some(p) => daemonize::detach(p)?,
        None => daemonize::foreground(),
    };
    match server::run(cfg, || notifier.ready()) {
        Ok(()) => Ok(EXIT_OK),
        Err(e) => {
            notifier.failed(&format!("{e:#}"));
            Err(e)
        }
    }
}

fn absolute(p: &Path) -> anyhow::Result<PathBuf> {
    Ok(if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()?.join(p)
    })
}

fn no_daemon(common: &Common) -> anyhow::Error {
    anyhow::anyhow!(
        "no daemon is listening on {}",
        log::tilde(&common.socket_path())
    )
}

fn status(common: &Common) -> anyhow::Result<i32> {
    let reply = client::control(&common.socket_path(), Action::Status, false)?
        .ok_or_else(|| no_daemon(common))?;
    if reply.get("status").and_then(Value::as_str) != Some("ok") {
        return Ok(client::report(&reply));
    }
    println!("{}", serde_json::to_string_pretty(&reply)?);
    Ok(EXIT_OK)
}

fn control(common: &Common, action: Action, all: bool) -> anyhow::Result<i32> {
    let reply =
        client::control(&common.socket_path(), action, all)?.ok_or_else(|| no_daemon(common))?;
    let code = client::report(&reply);
    if code == EXIT_OK && action == Action::Stop {
        let c = reply
            .get("cancelled")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let d = reply.get("dropped").and_then(Value::as_u64).unwrap_or(0);
        eprintln!(
            "{}",
            if c {
                "cancelled the utterance in progress"
            } else {
                "nothing was playing"
            }
        );
        if all {
            eprintln!("dropped {d} queued request(s)");
        }
    }
    Ok(code)
}

fn init(dir: Option<&Path>, force: bool) -> anyhow::Result<i32> {
    let dir = dir.map_or_else(crate::cli::config_dir, Path::to_path_buf);
    let path = dir.join("handlers.rhai");
    if path.exists() && !force {
        eprintln!(
            "q3tts: {} already exists; pass --force to overwrite it",
            path.display()
        );
        return Ok(EXIT_FAILED);
    }
    std::fs::create_dir_all(&dir)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    std::fs::write(&path, DEFAULT_HANDLER)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    eprintln!("wrote {}", path.display());
    Ok(EXIT_OK)
}

fn check(common: &Common) -> anyhow::Result<i32> {
    let path = common.handler_path();
    let mut rt = Runtime::new(absolute(&path)?, Limits::default());
    match rt.check() {
        Ok(files) => {
            if rt.using_builtin {
                println!(
                    "no handler at {}: the built-in default is used, and it compiles",
                    path.display()
                );
            } else {
                for f in files {
                    println!("ok {}", f.display());
                }
            }
            Ok(EXIT_OK)
        }
        Err(e) => {
            eprintln!("{}", e.message);
            Ok(EXIT_FAILED)
        }
    }
}

fn pull(repo: Option<&str>) -> anyhow::Result<i32> {
    let repo = repo.unwrap_or(q3tts_hub::DEFAULT_MODEL);
    let dir = q3tts_hub::Hub::from_env().pull(repo, true)?;
    println!("{}", dir.display());
    Ok(EXIT_OK)
}

fn models() -> anyhow::Result<i32> {
    let list = q3tts_hub::Hub::from_env().list()?;
    if list.is_empty() {
        eprintln!("no models in the Hugging Face cache; `q3tts pull` downloads the default one");
    }
    for m in list {
        println!(
            "{}\t{}\t{:.1} MB\t{}",
            m.repo,
            m.variant.as_deref().unwrap_or("?"),
            m.size_bytes as f64 / 1e6,
            m.path.display()
        );
    }
    Ok(EXIT_OK)
}
