//! The command line: exit codes, init, check, completions, a model mismatch.

use serde_json::json;

use crate::common::*;

#[test]
fn usage_errors_exit_2() {
    let s = Scratch::new();
    let o = q3tts(&["--no-such-flag"], &s.socket(), &s.handler());
    assert_eq!(o.status.code(), Some(2));
    let o = q3tts(&["-x", "novalue", "hi"], &s.socket(), &s.handler());
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("KEY=VALUE"));
    let o = q3tts(&[], &s.socket(), &s.handler());
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

#[test]
fn init_refuses_to_overwrite_and_check_reports_positions() {
    let s = Scratch::new();
    let dir = s.dir.path().to_str().unwrap();
    assert!(q3tts(&["init", dir], &s.socket(), &s.handler())
        .status
        .success());
    let o = q3tts(&["init", dir], &s.socket(), &s.handler());
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--force"));
    assert!(q3tts(&["init", dir, "--force"], &s.socket(), &s.handler())
        .status
        .success());

    let o = q3tts(&["check"], &s.socket(), &s.handler());
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("handlers.rhai"));

    s.write(
        "handlers.rhai",
        "import \"lib\" as l;\nfn handle(model, request) { l::f() }\n",
    );
    s.write("lib.rhai", "fn f() {\n    1 +\n}\n");
    let o = q3tts(&["check"], &s.socket(), &s.handler());
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.contains("in module 'lib'") && e.contains("lib.rhai:3:1"),
        "{e}"
    );

    s.write("lib.rhai", "fn f() { 1 }\n");
    let o = q3tts(&["check"], &s.socket(), &s.handler());
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("lib.rhai"));
}

#[test]
fn completions_are_printed() {
    let s = Scratch::new();
    let o = q3tts(&["completions", "bash"], &s.socket(), &s.handler());
    assert!(o.status.success());
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("q3tts") && text.contains("serve"));
}

#[test]
fn a_different_model_than_the_daemon_serves_is_an_error() {
    let s = Scratch::new();
    let _d = Daemon::start(&s, &[]);
    let other = repo_root().join("testdata/tiny-base");
    let o = q3tts(
        &["--model", other.to_str().unwrap(), "hi"],
        &s.socket(),
        &s.handler(),
    );
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.contains("this daemon serves the model") && e.contains("tiny-base"),
        "{e}"
    );
    // The same model by a relative-looking path is fine.
    let same = tiny_model();
    let o = q3tts(
        &[
            "--model",
            same.to_str().unwrap(),
            "-o",
            s.path("x.wav").to_str().unwrap(),
            "--max-new-tokens",
            "3",
            "hi",
        ],
        &s.socket(),
        &s.handler(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn in_process_run_says_when_the_0b6_model_drops_an_instruct() {
    let s = Scratch::new();
    let model = repo_root().join("testdata/tiny-0b6-like");
    let out = s.path("n.wav");
    let o = q3tts(
        &[
            "--model",
            model.to_str().unwrap(),
            "-i",
            "speak softly",
            "--max-new-tokens",
            "3",
            "-o",
            out.to_str().unwrap(),
            "Hi there.",
        ],
        &s.socket(),
        &s.handler(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("no daemon on") && e.contains("running in-process"),
        "{e}"
    );
    assert!(e.contains("note: instruct \"speak softly\" ignored"), "{e}");
    assert!(!read_audio(&out).is_empty());
}

#[test]
fn int8_daemon_reports_its_dtype_and_speaks() {
    let s = Scratch::new();
    let d = Daemon::start(&s, &["--dtype", "int8"]);
    let st = request(&d.socket, json!({"action": "status"}));
    assert_eq!(st["dtype"], "int8", "{st}");
    let out = s.path("q8.wav");
    let o = q3tts(
        &["--max-new-tokens", "6", "-o", out.to_str().unwrap(), "Hi."],
        &s.socket(),
        &s.handler(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let wav = read_audio(&out);
    assert!(
        !wav.is_empty() && wav.len().is_multiple_of(1920),
        "{}",
        wav.len()
    );
    assert!(wav.iter().all(|x| x.is_finite()));

    let o = q3tts(&["--dtype", "int4", "serve"], &s.socket(), &s.handler());
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("f32, bf16 or int8"), "{}", stderr(&o));
}
