//! Hot edits: the handler and an imported module, two same-size edits in quick succession, an
//! atomic rename; each picked up on the very next request.

use std::fs;
use std::time::{Duration, SystemTime};

use serde_json::json;

use crate::common::*;

fn version(d: &Daemon) -> serde_json::Value {
    let r = request(&d.socket, generate("v", json!({})));
    assert_eq!(r["status"], "ok", "{r}");
    r["v"].clone()
}

fn handler(v: &str) -> String {
    format!(
        "import \"utils\" as u;\nfn handle(model, request) {{ #{{ v: \"{v}\" + u::tag() }} }}\n"
    )
}

#[test]
fn edits_are_picked_up_on_the_next_request() {
    let s = Scratch::new();
    s.write("handlers.rhai", &handler("a1"));
    s.write("utils.rhai", "fn tag() { \"-x\" }\n");
    let d = Daemon::start(&s, &[]);
    assert_eq!(version(&d), "a1-x");
    assert_eq!(version(&d), "a1-x");

    // Edit the handler.
    s.write("handlers.rhai", &handler("b2"));
    assert_eq!(version(&d), "b2-x");

    // Edit the imported module.
    s.write("utils.rhai", "fn tag() { \"-y\" }\n");
    assert_eq!(version(&d), "b2-y");

    // Two same-size edits in quick succession, the second with the first's mtime.
    s.write("handlers.rhai", &handler("c3"));
    let mtime = fs::metadata(s.handler()).unwrap().modified().unwrap();
    assert_eq!(version(&d), "c3-y");
    s.write("handlers.rhai", &handler("c4"));
    fs::File::options()
        .write(true)
        .open(s.handler())
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    assert_eq!(version(&d), "c4-y");

    // The same for the module.
    s.write("utils.rhai", "fn tag() { \"-1\" }\n");
    let mtime = fs::metadata(s.path("utils.rhai"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(version(&d), "c4-1");
    s.write("utils.rhai", "fn tag() { \"-2\" }\n");
    fs::File::options()
        .write(true)
        .open(s.path("utils.rhai"))
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    assert_eq!(version(&d), "c4-2");

    // An atomic rename that keeps an old mtime (as `cp -p` + `mv` would).
    let old = SystemTime::now() - Duration::from_secs(3600);
    fs::File::options()
        .write(true)
        .open(s.handler())
        .unwrap()
        .set_modified(old)
        .unwrap();
    assert_eq!(version(&d), "c4-2");
    s.write("new.tmp", &handler("d5"));
    fs::File::options()
        .write(true)
        .open(s.path("new.tmp"))
        .unwrap()
        .set_modified(old)
        .unwrap();
    fs::rename(s.path("new.tmp"), s.handler()).unwrap();
    assert_eq!(version(&d), "d5-2");

    let log = d.log();
    assert!(log.contains("[reload] compiled"), "{log}");
    assert!(log.contains("[reload] \"v\" -> speakers ("), "{log}");
}
