//! File and stream sinks, each format decoded by an independent Debian tool.

use std::path::Path;
use std::process::Command;

use q3tts_audio::{open_file, write_sink, Format};

use crate::util::*;

const RATE: u32 = 24000;
/// One generation step of the model: 80 ms at 24 kHz.
const CHUNK: usize = 1920;

/// Writes `signal` to `path` in model-sized chunks; returns the summary's sample count.
fn write_file(path: &Path, format: Option<Format>, rate: u32, signal: &[i16]) -> u64 {
    let mut sink = open_file(path, format, rate).unwrap();
    for chunk in i16_to_f32(signal).chunks(CHUNK) {
        sink.write(chunk).unwrap();
    }
    let summary = sink.finish().unwrap();
    assert_eq!(summary.sample_rate, rate);
    summary.samples
}

#[test]
fn wav_is_bit_exact_and_valid_while_growing() {
    if !require("wav_is_bit_exact_and_valid_while_growing", &["sox", "soxi"]) {
        return;
    }
    let dir = TempDir::new("wav");
    let path = dir.join("out.wav");
    let signal = speechy(RATE, 1.0);
    let mut sink = open_file(&path, None, RATE).unwrap();
    let chunks: Vec<Vec<f32>> = i16_to_f32(&signal)
        .chunks(CHUNK)
        .map(<[f32]>::to_vec)
        .collect();
    // Midway, the file on disk (as a crash would leave it) is a complete WAV of what was written.
    for c in &chunks[..5] {
        sink.write(c).unwrap();
    }
    let snapshot = dir.join("crash.wav");
    std::fs::copy(&path, &snapshot).unwrap();
    let raw = run(Command::new("sox")
        .arg(&snapshot)
        .args(["-t", "raw", "-e", "signed", "-b", "16", "-"]));
    assert_eq!(s16le_to_i16(&raw), signal[..5 * CHUNK].to_vec());
    for c in &chunks[5..] {
        sink.write(c).unwrap();
    }
    assert_eq!(sink.finish().unwrap().samples, signal.len() as u64);

    let raw = run(Command::new("sox")
        .arg(&path)
        .args(["-t", "raw", "-e", "signed", "-b", "16", "-"]));
    assert_eq!(s16le_to_i16(&raw), signal, "WAV must decode bit-exact");
    let rate = run(Command::new("soxi").arg("-r").arg(&path));
    assert_eq!(String::from_utf8_lossy(&rate).trim(), "24000");
    let count = run(Command::new("soxi").arg("-s").arg(&path));
    assert_eq!(
        String::from_utf8_lossy(&count).trim(),
        signal.len().to_string()
    );
}

#[test]
fn flac_is_lossless_and_verifies() {
    if !require("flac_is_lossless_and_verifies", &["flac", "metaflac"]) {
        return;
    }
    let dir = TempDir::new("flac");
    let path = dir.join("out.flac");
    // 1.3 s: several full 4096-sample blocks and a short last one.
    let signal = speechy(RATE, 1.3);
    write_file(&path, None, RATE, &signal);
    // `flac -t` decodes and checks the MD5 stored in STREAMINFO.
    run(Command::new("flac").args(["-t", "-s"]).arg(&path));
    let raw = run(Command::new("flac")
        .args([
            "-d",
            "-c",
            "-s",
            "--force-raw-format",
            "--endian=little",
            "--sign=signed",
        ])
        .arg(&path));
    assert_eq!(s16le_to_i16(&raw), signal, "FLAC must decode bit-exact");
    let info = run(Command::new("metaflac")
        .args([
            "--show-sample-rate",
            "--show-total-samples",
            "--show-channels",
        ])
        .arg(&path));
    let info = String::from_utf8_lossy(&info);
    let lines: Vec<&str> = info.lines().collect();
    assert_eq!(lines, vec!["24000", &signal.len().to_string(), "1"]);
}

#[test]
fn pcm_is_raw_s16le() {
    if !require("pcm_is_raw_s16le", &["sox"]) {
        return;
    }
    let dir = TempDir::new("pcm");
    let path = dir.join("out.pcm");
    let signal = speechy(RATE, 0.5);
    write_file(&path, None, RATE, &signal);
    let wav = dir.join("from-pcm.wav");
    run(Command::new("sox")
        .args([
            "-t", "raw", "-r", "24000", "-e", "signed", "-b", "16", "-c", "1", "-L",
        ])
        .arg(&path)
        .arg(&wav));
    let (rate, ch, decoded) = parse_wav(&std::fs::read(&wav).unwrap());
    assert_eq!((rate, ch), (24000, 1));
    assert_eq!(decoded, signal);
}

/// Aligns `decoded` to `source` and returns (lag, correlation).
fn aligned(source: &[f32], decoded: &[f32]) -> (isize, f32) {
    best_lag(source, decoded, 2400)
}

#[test]
fn mp3_decodes_with_mpg123() {
    if !require("mp3_decodes_with_mpg123", &["mpg123"]) {
        return;
    }
    let dir = TempDir::new("mp3");
    let signal = speechy(RATE, 1.5);
    let source = i16_to_f32(&signal);
    for (name, format) in [("out.mp3", None), ("forced.bin", Some(Format::Mp3))] {
        let path = dir.join(name);
        write_file(&path, format, RATE, &signal);
        let wav = dir.join(&format!("{name}.wav"));
        let out = Command::new("mpg123")
            .args(["-v", "-w"])
            .arg(&wav)
            .arg(&path)
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "mpg123 failed: {log}");
        assert!(log.contains("Layer 3") || log.contains("L III"), "{log}");
        let (rate, ch, decoded) = parse_wav(&std::fs::read(&wav).unwrap());
        assert_eq!((rate, ch), (24000, 1));
        // The Info/LAME tag gives the decoder the exact delay and padding (gapless).
        let frame = 576;
        assert!(
            decoded.len().abs_diff(signal.len()) <= frame,
            "{} vs {}",
            decoded.len(),
            signal.len()
        );
        let (lag, c) = aligned(&source, &i16_to_f32(&decoded));
        assert!(c >= 0.9, "MP3 correlation {c} at lag {lag}");
        eprintln!(
            "mp3 {name}: {} samples, lag {lag}, correlation {c:.4}",
            decoded.len()
        );
    }
}

#[test]
fn opus_decodes_with_opusdec() {
    if !require("opus_decodes_with_opusdec", &["opusdec", "opusinfo"]) {
        return;
    }
    let dir = TempDir::new("opus");
    // 24 kHz is an Opus rate (coded directly); 22.05 kHz is resampled to 48 kHz first.
    for (rate, name) in [(24000u32, "out.opus"), (22050, "out.ogg")] {
        let signal = speechy(rate, 1.5);
        let source = i16_to_f32(&signal);
        let path = dir.join(name);
        write_file(&path, None, rate, &signal);
        let info = String::from_utf8_lossy(&run(Command::new("opusinfo").arg(&path))).into_owned();
        assert!(
            info.contains(&format!("Original sample rate: {rate} Hz")),
            "{info}"
        );
        assert!(info.contains("Channels: 1"), "{info}");
        let wav = dir.join(&format!("{name}.wav"));
        run(Command::new("opusdec")
            .args(["--quiet", "--rate"])
            .arg(rate.to_string())
            .arg(&path)
            .arg(&wav));
        let (r, ch, decoded) = parse_wav(&std::fs::read(&wav).unwrap());
        assert_eq!((r, ch), (rate, 1));
        // Pre-skip and end trim make the decoded length match the input.
        assert!(
            decoded.len().abs_diff(signal.len()) <= rate as usize / 100,
            "{} vs {}",
            decoded.len(),
            signal.len()
        );
        let (lag, c) = aligned(&source, &i16_to_f32(&decoded));
        assert!(c >= 0.9, "Opus {rate} Hz correlation {c} at lag {lag}");
        eprintln!(
            "opus {rate} Hz: {} samples, lag {lag}, correlation {c:.4}",
            decoded.len()
        );
    }
}

#[test]
fn stream_wav_has_open_ended_sizes_and_decodes() {
    if !require("stream_wav_has_open_ended_sizes_and_decodes", &["sox"]) {
        return;
    }
    let dir = TempDir::new("stream");
    let path = dir.join("piped.wav");
    let signal = speechy(RATE, 0.4);
    let file = std::fs::File::create(&path).unwrap();
    let mut sink = write_sink(Box::new(file), "stdout", Format::Wav, RATE).unwrap();
    assert_eq!(sink.describe(), "stdout");
    for c in i16_to_f32(&signal).chunks(CHUNK) {
        sink.write(c).unwrap();
    }
    sink.finish().unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(&bytes[4..8], &[0xFF; 4], "RIFF size is 'unknown' on a pipe");
    assert_eq!(
        &bytes[40..44],
        &[0xFF; 4],
        "data size is 'unknown' on a pipe"
    );
    let raw = run(Command::new("sox")
        .arg("--ignore-length")
        .arg(&path)
        .args(["-t", "raw", "-e", "signed", "-b", "16", "-"]));
    assert_eq!(s16le_to_i16(&raw), signal);
}

#[test]
fn named_pipe_gets_a_streaming_header() {
    if !require(
        "named_pipe_gets_a_streaming_header",
        &["sox", "mkfifo", "cat"],
    ) {
        return;
    }
    let dir = TempDir::new("fifo");
    let fifo = dir.join("audio.wav");
    run(Command::new("mkfifo").arg(&fifo));
    let copy = dir.join("copy.wav");
    // A reader must be there before the writer can open the pipe.
    let reader = Command::new("cat")
        .arg(&fifo)
        .stdout(std::fs::File::create(&copy).unwrap())
        .spawn()
        .unwrap();
    let signal = speechy(RATE, 0.3);
    write_file(&fifo, None, RATE, &signal);
    assert!(reader.wait_with_output().unwrap().status.success());
    let bytes = std::fs::read(&copy).unwrap();
    assert_eq!(
        &bytes[40..44],
        &[0xFF; 4],
        "a pipe cannot be patched: data size 'unknown'"
    );
    let raw = run(Command::new("sox")
        .arg("--ignore-length")
        .arg(&copy)
        .args(["-t", "raw", "-e", "signed", "-b", "16", "-"]));
    assert_eq!(s16le_to_i16(&raw), signal);
}

#[test]
fn stream_mp3_without_tag_still_decodes() {
    if !require("stream_mp3_without_tag_still_decodes", &["mpg123"]) {
        return;
    }
    let dir = TempDir::new("stream-mp3");
    let path = dir.join("piped.mp3");
    let signal = speechy(RATE, 1.0);
    let file = std::fs::File::create(&path).unwrap();
    let mut sink = write_sink(Box::new(file), "stdout", Format::Mp3, RATE).unwrap();
    for c in i16_to_f32(&signal).chunks(CHUNK) {
        sink.write(c).unwrap();
    }
    sink.finish().unwrap();
    let wav = dir.join("piped.wav");
    run(Command::new("mpg123")
        .args(["-q", "-w"])
        .arg(&wav)
        .arg(&path));
    let (_, _, decoded) = parse_wav(&std::fs::read(&wav).unwrap());
    let (lag, c) = best_lag(&i16_to_f32(&signal), &i16_to_f32(&decoded), 2400);
    assert!(c >= 0.9, "correlation {c} at lag {lag}");
}

fn error_of(path: &Path, format: Option<Format>) -> String {
    match open_file(path, format, RATE) {
        Ok(_) => panic!("opening {} should fail", path.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn errors_name_the_path_and_reason() {
    let dir = TempDir::new("errors");
    // A directory.
    let msg = error_of(dir.path(), Some(Format::Wav));
    assert!(
        msg.starts_with(&dir.path().display().to_string()) && msg.contains("is a directory"),
        "{msg}"
    );
    // A missing parent directory.
    let missing = dir.join("no/such/dir/out.wav");
    let msg = error_of(&missing, None);
    assert!(
        msg.contains("out.wav") && msg.contains("does not exist"),
        "{msg}"
    );
    // An unknown extension.
    let msg = error_of(&dir.join("out.aiff"), None);
    assert!(
        msg.contains("out.aiff") && msg.contains("--format"),
        "{msg}"
    );
    // A full disk: /dev/full fails every write with ENOSPC, already on the header.
    for format in Format::ALL {
        let msg = match open_file(Path::new("/dev/full"), Some(format), RATE) {
            Err(e) => e.to_string(),
            Ok(mut sink) => {
                // Raw PCM has no header: the first write fails.
                let e = sink.write(&[0.1; 4800]).unwrap_err();
                e.to_string()
            }
        };
        assert!(msg.starts_with("/dev/full: disk full"), "{format}: {msg}");
    }
}

#[test]
fn unwritable_path_is_permission_denied() {
    // Root may write anywhere in a temp dir, so as root use a sysfs file that nobody may write.
    let dir = TempDir::new("perm");
    let locked = dir.join("locked");
    std::fs::create_dir(&locked).unwrap();
    let mut perms = std::fs::metadata(&locked).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o500);
    std::fs::set_permissions(&locked, perms).unwrap();
    let mut target = locked.join("out.wav");
    if std::fs::File::create(&target).is_ok() {
        let _ = std::fs::remove_file(&target);
        target = "/sys/kernel/notes".into();
        if std::fs::OpenOptions::new()
            .write(true)
            .open(&target)
            .is_ok()
            || !target.exists()
        {
            not_run(
                "unwritable_path_is_permission_denied",
                "running as root with no read-only file to try",
            );
            return;
        }
    }
    let msg = error_of(&target, Some(Format::Wav));
    assert!(
        msg.starts_with(&target.display().to_string()) && msg.contains("permission denied"),
        "{msg}"
    );
}

#[test]
fn empty_files_are_valid() {
    if !require("empty_files_are_valid", &["sox", "flac"]) {
        return;
    }
    let dir = TempDir::new("empty");
    let wav = dir.join("e.wav");
    write_file(&wav, None, RATE, &[]);
    assert_eq!(
        String::from_utf8_lossy(&run(Command::new("soxi").arg("-s").arg(&wav))).trim(),
        "0"
    );
    let flac = dir.join("e.flac");
    write_file(&flac, None, RATE, &[]);
    run(Command::new("flac").args(["-t", "-s"]).arg(&flac));
    if have("opusinfo") {
        let opus = dir.join("e.opus");
        write_file(&opus, None, RATE, &[]);
        run(Command::new("opusinfo").arg(&opus));
    }
    if have("mpg123") {
        let mp3 = dir.join("e.mp3");
        write_file(&mp3, None, RATE, &[]);
        run(Command::new("mpg123").args(["-q", "-t"]).arg(&mp3));
    }
}
