//! One daemon per socket: stale sockets replaced, a second daemon refused, SIGKILL recovered,
//! `--daemon` detaching, and the peer uid check.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::process::Command;

use serde_json::json;

use crate::common::*;

#[test]
fn stale_socket_is_replaced_and_second_daemon_refused() {
    let s = Scratch::new();
    // A socket file nobody listens on.
    drop(UnixListener::bind(s.socket()).unwrap());
    assert!(s.socket().exists());
    let d = Daemon::start(&s, &[]);
    let mode = std::fs::metadata(s.socket()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(
        request(&d.socket, json!({"action": "status"}))["status"],
        "ok"
    );

    let o = Command::new(EXE)
        .args(["serve", "--model"])
        .arg(tiny_model())
        .arg("--socket")
        .arg(s.socket())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("already serving"), "{err}");
    assert!(err.contains(&format!("pid {}", d.child.id())), "{err}");
    // The first one is unharmed.
    assert_eq!(
        request(&d.socket, json!({"action": "status"}))["status"],
        "ok"
    );
}

#[test]
fn serve_again_after_sigkill() {
    let s = Scratch::new();
    let mut d = Daemon::start(&s, &[]);
    d.signal(libc::SIGKILL);
    d.wait_exit();
    assert!(s.socket().exists(), "SIGKILL leaves the socket behind");
    let d2 = Daemon::start(&s, &[]);
    assert_eq!(
        request(&d2.socket, json!({"action": "status"}))["status"],
        "ok"
    );
}

#[test]
fn daemon_mode_returns_once_listening_or_reports_the_failure() {
    let s = Scratch::new();
    let log = s.path("daemon.log");
    let o = Command::new(EXE)
        .args(["serve", "--daemon", "--model"])
        .arg(tiny_model())
        .arg("--socket")
        .arg(s.socket())
        .arg("--handlers")
        .arg(s.handler())
        .arg("--log")
        .arg(&log)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    // Accepting already, with no waiting.
    let st = request(&s.socket(), json!({"action": "status"}));
    assert_eq!(st["status"], "ok");
    assert_eq!(st["log"], log.display().to_string());
    let pid = st["pid"].as_i64().unwrap();
    let text = read_to(&log);
    assert!(
        text.contains("model loaded (") && text.contains("listening on"),
        "{text}"
    );
    let o = q3tts(&["stop"], &s.socket(), &s.handler());
    assert!(o.status.success());
    let start = std::time::Instant::now();
    while unsafe { libc::kill(pid as i32, 0) } == 0 {
        assert!(start.elapsed().as_secs() < 20, "daemon did not exit");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(read_to(&log).trim_end().ends_with("shutdown"));

    // A daemon that fails before listening: the parent prints its error and exits 1.
    let o = Command::new(EXE)
        .args(["serve", "--daemon", "--model"])
        .arg(s.path("no-such-model"))
        .arg("--socket")
        .arg(s.path("x.sock"))
        .arg("--log")
        .arg(s.path("fail.log"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no-such-model"), "{}", stderr(&o));
}

#[test]
fn foreign_uid_is_refused() {
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("foreign uid check not run: the tests are not running as root");
        return;
    }
    let s = Scratch::new();
    let nobody = 65534;
    std::fs::set_permissions(s.dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    // The unprivileged daemon may not be able to reach the checkout or the target directory
    // (a 0700 parent directory), so it runs a copy of the binary and serves a copy of the tiny
    // model, both inside the world-readable scratch directory.
    let model = s.path("model");
    copy_dir(&tiny_model(), &model);
    let exe = s.path("q3tts");
    std::fs::copy(EXE, &exe).unwrap();
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    let d = Daemon::start_model(&s, &exe, &model, &[], |cmd| {
        use std::os::unix::process::CommandExt;
        cmd.env("HOME", s.dir.path());
        unsafe {
            cmd.pre_exec(move || {
                if libc::setgid(nobody) != 0 || libc::setuid(nobody) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    });
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(s.socket()).unwrap().uid(), nobody);
    // Root can connect (it bypasses the 0600 mode), so the peer check itself must refuse.
    let r = request(&d.socket, json!({"action": "status"}));
    assert_eq!(r["status"], "error");
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .contains("serves uid 65534 only, you are uid 0"),
        "{r}"
    );
    d.wait_log("[refused] connection from uid 0");
}

/// Copy a directory tree (regular files only), readable by everyone.
fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o755)).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), &dest).unwrap();
            std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
    }
}
