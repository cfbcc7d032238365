//! Every class of handler error gives an error reply naming what and where, a `[reload] error:`
//! log line, and leaves the daemon serving: the next good request equals a clean run.

use serde_json::json;

use crate::common::*;

struct Case {
    name: &'static str,
    handler: &'static str,
    module: Option<&'static str>,
    expect: &'static [&'static str],
}

const CASES: &[Case] = &[
    Case {
        name: "syntax",
        handler: "fn handle(model, request) {\n    let x = 1 +;\n}\n",
        module: None,
        expect: &["handlers.rhai:2:16", "syntax error"],
    },
    Case {
        name: "runtime with call chain",
        handler: "fn speak(m) { m.no_such_thing(1) }\nfn handle(model, request) {\n  speak(model)\n}\n",
        module: None,
        expect: &["Function not found: no_such_thing", "in speak() called at", "handlers.rhai:3:3"],
    },
    Case {
        name: "missing import",
        handler: "import \"voices\" as v;\nfn handle(model, request) { v::x() }\n",
        module: None,
        expect: &["module 'voices' not found", "voices.rhai"],
    },
    Case {
        name: "broken import",
        handler: "import \"voices\" as v;\nfn handle(model, request) { v::x() }\n",
        module: Some("fn x() {\n  let = 3;\n}\n"),
        expect: &["in module 'voices'", "voices.rhai:2:", "syntax error"],
    },
    Case {
        name: "runtime error inside a module",
        handler: "import \"voices\" as v;\nfn handle(model, request) { v::x() }\n",
        module: Some("fn x() {\n  undefined_fn()\n}\n"),
        expect: &["undefined_fn", "voices.rhai:2:3"],
    },
    Case {
        name: "infinite loop",
        handler: "fn handle(model, request) { loop { } }\n",
        module: None,
        expect: &["script time limit"],
    },
    Case {
        name: "runaway recursion",
        handler: "fn f(n) { f(n + 1) }\nfn handle(model, request) { f(0) }\n",
        module: None,
        expect: &["runaway recursion"],
    },
    Case {
        name: "huge string",
        handler: "fn handle(model, request) { let s = \"xy\"; loop { s += s; } }\n",
        module: None,
        expect: &["too large"],
    },
    Case {
        name: "huge array",
        handler: "fn handle(model, request) { let a = []; a.pad(2000000000, 0); #{} }\n",
        module: None,
        expect: &["too large"],
    },
    Case {
        name: "map grown by index assignment",
        handler: "fn handle(model, request) { let m = #{}; let i = 0; loop { m[`k${i}`] = i; i += 1; } }\n",
        module: None,
        expect: &["limit"],
    },
    Case {
        name: "native size bound",
        handler: "fn handle(model, request) { silence(1e12) }\n",
        module: None,
        expect: &["silence: seconds must be between 0 and 600"],
    },
    Case {
        name: "panic in a native function",
        handler: "fn handle(model, request) { debug_panic(\"boom\") }\n",
        module: None,
        expect: &["panicked", "boom"],
    },
    Case {
        name: "bad generate option",
        handler: "fn handle(model, request) { model.generate(request.text, #{ max_new_tokens: -5 }) }\n",
        module: None,
        expect: &["max_new_tokens", "between"],
    },
];

#[test]
fn each_error_class_is_reported_and_the_daemon_serves_on() {
    let s = Scratch::new();
    let init = q3tts(
        &["init", s.dir.path().to_str().unwrap()],
        &s.socket(),
        &s.handler(),
    );
    assert!(init.status.success(), "{}", stderr(&init));
    let good = std::fs::read_to_string(s.handler()).unwrap();
    let d = Daemon::start(&s, &["--script-time-limit", "0.5"]);
    let clean_out = s.path("clean.wav");
    let say = |out: &std::path::Path| {
        generate(
            "Hello, world.",
            json!({"speaker": "ryan", "language": "english", "output": out.to_str().unwrap(),
                   "options": {"greedy": true, "max_new_tokens": 12}}),
        )
    };
    let r = request(&d.socket, say(&clean_out));
    assert_eq!(r["status"], "ok", "{r}");
    let clean = read_audio(&clean_out);

    for (i, case) in CASES.iter().enumerate() {
        s.write("handlers.rhai", case.handler);
        match case.module {
            Some(m) => s.write("voices.rhai", m),
            None => {
                let _ = std::fs::remove_file(s.path("voices.rhai"));
            }
        }
        let r = request(&d.socket, generate("boom", json!({})));
        assert_eq!(r["status"], "error", "{}: {r}", case.name);
        let msg = r["message"].as_str().unwrap();
        for needle in case.expect {
            assert!(
                msg.contains(needle),
                "{}: {msg:?} lacks {needle:?}",
                case.name
            );
        }
        let log = d.wait_log(&format!("[reload] error: {}", msg.lines().next().unwrap()));
        assert!(!log.contains('\u{7}'));

        s.write("handlers.rhai", &good);
        let out = s.path(&format!("after{i}.wav"));
        let r = request(&d.socket, say(&out));
        assert_eq!(r["status"], "ok", "after {}: {r}", case.name);
        assert_eq!(read_audio(&out), clean, "after {}", case.name);
    }
}
