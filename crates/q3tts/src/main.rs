//! q3tts: Qwen3-TTS text to speech. The daemon keeps the model warm and runs a hot-swapped Rhai
//! handler for every request; the client talks to it over a Unix socket, or runs the handler
//! in-process when no daemon is up. This file only dispatches; see `cli` for the commands.

mod bench;
mod bench_reload;
mod cli;
mod client;
mod commands;
mod handler;
mod inline;
mod model;
mod protocol;
#[cfg(test)]
mod protocol_props;
mod shell;
mod stress;

#[global_allocator]
static ALLOC: handler::memory::CountingAlloc = handler::memory::CountingAlloc;

fn main() {
    let code = commands::main();
    std::process::exit(code);
}
