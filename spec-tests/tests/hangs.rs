//! Nothing waits forever: no command holds a container's lock while it
//! waits on a container process, every lock wait is bounded and names the
//! holder, and `delete --force` always gets through. Every runtime call
//! here is bounded by the harness's timeout, so a regression fails instead
//! of hanging the suite.

use spec_tests::*;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

fn running(c: &Container) {
    c.create_ok();
    c.start_ok();
    c.assert_status("running");
}

/// `exec --ignore-paused` into a paused container waits for its process,
/// which stays frozen until `resume`: `resume` must get through (husk used
/// to deadlock here: the exec held the lock), the exec then completes, and
/// `delete --force` works.
#[test]
fn exec_ignore_paused_then_resume_does_not_deadlock() {
    let c = Container::new(&["sleep", "60"]);
    running(&c);
    assert!(c.rt(&["pause", &c.id]).success());
    c.assert_status("paused");
    std::thread::scope(|s| {
        let exec = s.spawn(|| c.rt(&["exec", "--ignore-paused", &c.id, "echo", "thawed"]));
        std::thread::sleep(Duration::from_millis(500));
        let t = Instant::now();
        let o = c.rt(&["resume", &c.id]);
        assert!(o.success(), "resume while an exec waits on a frozen process: {o}");
        assert!(t.elapsed() < Duration::from_secs(4), "resume took {:?}", t.elapsed());
        let o = exec.join().unwrap();
        assert!(o.success() && o.stdout.contains("thawed"), "the exec must finish once resumed: {o}");
    });
    let o = c.delete_force();
    assert!(o.success(), "{o}");
}

/// Holds an exclusive flock on a container's state directory, as a stuck
/// husk would.
struct HeldLock(std::fs::File);

impl HeldLock {
    fn on(c: &Container) -> HeldLock {
        let f = std::fs::File::open(c.root.join(&c.id)).unwrap();
        // SAFETY: flock on a file we own.
        assert_eq!(unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) }, 0);
        HeldLock(f)
    }
}

#[test]
#[ignore = "husk's own locking: runc does not lock the state directory"]
fn a_stuck_lock_holder_is_named_and_delete_force_gets_through() {
    let c = Container::new(&["sleep", "60"]);
    running(&c);
    let pid = c.pid();
    let held = HeldLock::on(&c);
    let t = Instant::now();
    let o = c.rt(&["pause", &c.id]);
    assert!(!o.timed_out && !o.success(), "pause under a held lock must fail, not wait forever: {o}");
    assert!(t.elapsed() < Duration::from_secs(10), "the lock wait took {:?}", t.elapsed());
    let me = format!("pid {}", std::process::id());
    assert!(o.stderr.contains(&me), "the error must name the lock holder ({me}): {o}");
    let t = Instant::now();
    let o = c.delete_force();
    assert!(o.success(), "delete --force must get through a held lock: {o}");
    assert!(t.elapsed() < Duration::from_secs(10), "delete --force took {:?}", t.elapsed());
    drop(held);
    assert!(!c.root.join(&c.id).exists(), "delete --force left the state directory");
    let end = Instant::now() + Duration::from_secs(5);
    while std::path::Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < end {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if stat.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z') {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    assert!(stat.is_empty() || stat.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'), "the container process lives on");
}

/// Runs `update` with `stdin` as its standard input; None if it did not
/// return within 10 s (then it is killed).
fn update_with_stdin(c: &Container, args: &[&str], stdin: std::process::Stdio, feed: Option<&str>) -> Option<std::process::ExitStatus> {
    let mut a = vec!["update"];
    a.extend_from_slice(args);
    a.push(&c.id);
    let mut cmd = c.command(&a);
    cmd.stdin(stdin).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let mut keep_open = None;
    if let Some(mut w) = child.stdin.take() {
        if let Some(text) = feed {
            std::io::Write::write_all(&mut w, text.as_bytes()).unwrap();
        } else {
            // A pipe that stays open and empty, as a caller's terminal-less stdin.
            keep_open = Some(w);
        }
    }
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            drop(keep_open);
            return Some(st);
        }
        if Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `update` returns in every case runc's does: no flags (stdin /dev/null,
/// or a pipe that never closes), `-r FILE`, `-r -` with the resources on
/// stdin.
#[test]
fn update_always_returns() {
    use std::process::Stdio;
    let c = Container::new(&["sleep", "60"]);
    running(&c);
    let res = c.dir.join("resources.json");
    std::fs::write(&res, r#"{"pids": {"limit": 50}}"#).unwrap();
    let res = res.to_str().unwrap().to_string();
    let cases: [(&str, &[&str], Stdio, Option<&str>); 4] = [
        ("no flags, stdin /dev/null", &[], Stdio::null(), None),
        ("no flags, stdin an open pipe", &[], Stdio::piped(), None),
        ("-r FILE", &["-r", &res], Stdio::null(), None),
        ("-r - with JSON on stdin", &["-r", "-"], Stdio::piped(), Some(r#"{"pids": {"limit": 60}}"#)),
    ];
    for (what, args, stdin, feed) in cases {
        let st = update_with_stdin(&c, args, stdin, feed);
        assert!(st.is_some(), "update ({what}) did not return within 10 s");
        assert!(st.unwrap().success(), "update ({what}) failed");
    }
    assert!(c.delete_force().success());
}
