fn main() {
    eprintln!("q3tts: under construction");
    std::process::exit(2);
}
