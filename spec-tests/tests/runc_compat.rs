//! Observable behaviour that scripts written against runc rely on: exit
//! codes, version output, JSON key order, defaults runc fills in.

use spec_tests::*;
use std::time::Duration;

fn running() -> Container {
    let c = Container::new(&["sleep", "60"]);
    c.create_ok();
    c.start_ok();
    c
}

#[test]
fn kill_with_signal_0_checks_that_the_process_exists() {
    let c = running();
    let o = c.kill("0");
    assert!(o.success(), "{o}");
    c.assert_status("running");
    assert!(c.kill("KILL").success());
    assert!(c.wait_status("stopped", Duration::from_secs(10)));
    assert!(!c.kill("0").success(), "signal 0 to a stopped container must fail");
}

/// runc's exec exits 255 when it fails itself; the process's own exit
/// status passes through unchanged.
#[test]
fn exec_failures_exit_255_and_the_process_status_passes_through() {
    let c = running();
    let cases: [(&str, Vec<&str>); 3] = [
        ("no such container", vec!["exec", "no-such-container-here", "true"]),
        ("command not found", vec!["exec", &c.id, "/no/such/binary"]),
        ("bad user", vec!["exec", "--user", "no-such-user-here", &c.id, "true"]),
    ];
    for (what, args) in cases {
        let o = c.rt(&args);
        assert_eq!(o.status, Some(255), "{what}: {o}");
        assert!(!o.stderr.trim().is_empty(), "{what}: no error message: {o}");
    }
    let o = c.rt(&["exec", &c.id, "sh", "-c", "exit 7"]);
    assert_eq!(o.status, Some(7), "{o}");
}

#[test]
fn version_has_runcs_layout() {
    let mut cmd = std::process::Command::new(runtime());
    cmd.arg("--version");
    let o = exec(cmd, TIMEOUT);
    let lines: Vec<&str> = o.ok().lines().collect();
    assert!(lines.first().is_some_and(|l| l.contains(" version ")), "{o}");
    // One line each, in this order (runc has a "go:" line in between).
    let at = |key: &str| lines.iter().position(|l| l.starts_with(key)).unwrap_or_else(|| panic!("no {key:?} line: {o}"));
    assert!(at("commit: ") < at("spec: ") && at("spec: ") < at("libseccomp: "), "{o}");
}

/// `state` and `list --format json` print the keys in runc's order.
#[test]
fn state_and_list_json_keys_are_in_runcs_order() {
    let c = running();
    let order = ["ociVersion", "id", "pid", "status", "bundle", "rootfs", "created", "owner"];
    let positions = |text: &str| -> Vec<usize> {
        order.iter().map(|k| text.find(&format!("\"{k}\"")).unwrap_or_else(|| panic!("no {k} in {text}"))).collect()
    };
    for text in [c.state_out().ok().to_string(), c.rt(&["list", "--format", "json"]).ok().to_string()] {
        let p = positions(&text);
        assert!(p.windows(2).all(|w| w[0] < w[1]), "keys out of runc's order: {text}");
    }
}

/// A process.json without `user` runs as uid 0 / gid 0.
#[test]
fn exec_process_file_without_user_runs_as_root() {
    let c = running();
    let p = c.dir.join("process.json");
    std::fs::write(&p, r#"{"args": ["/bin/id", "-u"], "cwd": "/"}"#).unwrap();
    let o = c.rt(&["exec", "--process", p.to_str().unwrap(), &c.id]);
    assert_eq!(o.ok().trim(), "0", "{o}");
}

/// A capability name the runtime does not know (a newer spec) is ignored
/// with a warning, not a failed create.
#[test]
fn unknown_capability_names_are_ignored_with_a_warning() {
    let mut c = Container::sh("echo ran");
    let mut caps = c.spec.0["process"]["capabilities"]["bounding"].as_array().cloned().unwrap_or_default();
    caps.push(json!("CAP_NO_SUCH_CAPABILITY"));
    c.spec.set("/process/capabilities/bounding", json!(caps));
    let o = c.run();
    assert!(o.success() && o.stdout.contains("ran"), "{o}");
    assert!(o.stderr.contains("CAP_NO_SUCH_CAPABILITY"), "the warning must name the capability: {o}");
}

/// HOME comes from the user's /etc/passwd entry when the config has none;
/// a variable given twice keeps its last value, once.
#[test]
fn home_is_filled_in_and_duplicate_variables_keep_the_last_value() {
    let mut c = Container::sh("echo HOME=$HOME; env | grep '^FOO='");
    let env: Vec<serde_json::Value> = c.spec.0["process"]["env"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|e| !e.as_str().unwrap_or("").starts_with("HOME="))
        .chain([json!("FOO=1"), json!("FOO=2")])
        .collect();
    c.spec.set("/process/env", json!(env));
    let out = c.run().ok().to_string();
    assert!(out.lines().any(|l| l == "HOME=/root"), "{out}");
    let foo: Vec<&str> = out.lines().filter(|l| l.starts_with("FOO=")).collect();
    assert_eq!(foo, ["FOO=2"], "{out}");
}

/// Device-cgroup access strings take r, w and m in any order.
#[test]
fn device_access_letters_in_any_order() {
    let mut c = Container::sh("head -c 1 /dev/zero >/dev/null && echo readable");
    c.spec.set(
        "/linux/resources/devices",
        json!([{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "mwr"},
               {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "wr"}]),
    );
    let o = c.run();
    assert!(o.success() && o.stdout.contains("readable"), "{o}");
}

/// `list` under a --root that does not exist is an empty list, exit 0.
#[test]
fn list_with_a_missing_root_is_empty() {
    let c = Container::new(&["true"]);
    let mut cmd = std::process::Command::new(&c.runtime);
    cmd.args(["--root", c.dir.join("no-such-root").to_str().unwrap(), "list", "-q"]);
    let o = exec(cmd, TIMEOUT);
    assert!(o.success() && o.stdout.trim().is_empty(), "{o}");
}

/// The container's processes do not inherit the caller's CPU affinity
/// (`taskset -c 0 runtime run ...`): they get every CPU their cpuset
/// allows (runc 1.2 resets it the same way).
#[test]
#[ignore = "runc 1.1.5 passes the caller's affinity on (runc 1.2 resets it)"]
fn the_callers_cpu_affinity_is_not_inherited() {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert!(cpus >= 2, "this test needs 2 CPUs to tell the affinities apart (have {cpus})");
    let all = format!("0-{}", cpus - 1);
    let pinned = |c: &Container, args: &[&str]| {
        let mut cmd = std::process::Command::new("taskset");
        cmd.args(["-c", "0", &c.runtime, "--root", c.root.to_str().unwrap()]).args(args);
        exec(cmd, TIMEOUT)
    };
    let c = Container::sh("grep Cpus_allowed_list /proc/self/status");
    c.write_config();
    let o = pinned(&c, &["run", "--bundle", c.bundle.to_str().unwrap(), &c.id]);
    assert!(o.ok().contains(&format!("\t{all}")), "run: {o}");
    let c = running();
    let o = pinned(&c, &["exec", &c.id, "grep", "Cpus_allowed_list", "/proc/self/status"]);
    assert!(o.ok().contains(&format!("\t{all}")), "exec: {o}");
}

/// A /proc destination that is a symlink is refused in runc's words,
/// which tools match on.
#[test]
fn proc_on_a_symlink_is_refused_in_runcs_words() {
    let c = Container::private_sh("true");
    let proc_dir = c.rootfs().join("proc");
    std::fs::remove_dir(&proc_dir).unwrap();
    std::os::unix::fs::symlink("/tmp", &proc_dir).unwrap();
    let o = c.run();
    assert!(!o.success(), "{o}");
    // (the log line escapes the quotes around "proc")
    assert!(o.stderr.contains("must be mounted on ordinary directory") && o.stderr.contains("proc"), "{o}");
    assert!(c.state().is_none());
}

// ---------- --pidfd-socket (runc 1.2) ----------

/// The pid a received pidfd refers to, from its fdinfo.
fn pidfd_pid(f: &std::fs::File) -> i64 {
    use std::os::fd::AsRawFd;
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", f.as_raw_fd())).unwrap();
    status_field(&info, "Pid").and_then(|p| p.parse().ok()).unwrap_or_else(|| panic!("not a pidfd:\n{info}"))
}

fn pidfd_kill(f: &std::fs::File) {
    use std::os::fd::AsRawFd;
    // SAFETY: pidfd_send_signal on a pidfd we own.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_send_signal, f.as_raw_fd(), libc::SIGKILL, std::ptr::null::<libc::siginfo_t>(), 0) };
    assert_eq!(r, 0, "pidfd_send_signal: {}", std::io::Error::last_os_error());
}

/// Run the runtime with `before`, `--pidfd-socket S`, `after` and return
/// the fd it sent.
fn with_pidfd_socket(c: &Container, before: &[&str], after: &[&str]) -> std::fs::File {
    let sock = c.dir.join("pidfd.sock");
    let l = console::console_listener(&sock);
    std::thread::scope(|s| {
        let h = s.spawn(|| console::recv_pty_master(&l, Duration::from_secs(15)));
        let mut a = before.to_vec();
        a.extend(["--pidfd-socket", sock.to_str().unwrap()]);
        a.extend(after);
        let o = c.rt(&a);
        assert!(o.success(), "{o}");
        h.join().unwrap().expect("no pidfd received")
    })
}

#[test]
#[ignore = "runc 1.1.5 has no --pidfd-socket (runc 1.2 added it)"]
fn pidfd_socket_gets_the_container_process() {
    let c = Container::new(&["sleep", "60"]);
    c.write_config();
    let b = c.bundle.to_str().unwrap().to_string();
    let fd = with_pidfd_socket(&c, &["create", "--bundle", &b], &[&c.id]);
    assert_eq!(pidfd_pid(&fd), c.pid());
    c.start_ok();
    pidfd_kill(&fd);
    assert!(c.wait_status("stopped", Duration::from_secs(10)));
}

#[test]
#[ignore = "runc 1.1.5 has no --pidfd-socket (runc 1.2 added it)"]
fn pidfd_socket_gets_the_exec_process() {
    let c = running();
    let fd = with_pidfd_socket(&c, &["exec", "-d"], &[&c.id, "sleep", "61"]);
    let pid = pidfd_pid(&fd);
    let cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap();
    assert_eq!(cmdline, "sleep\061\0");
    pidfd_kill(&fd);
    c.assert_status("running");
}

/// A bundle without config.json fails in runc's words.
#[test]
fn missing_config_is_reported_in_runcs_words() {
    let c = Container::new(&["true"]);
    c.no_autowrite();
    let o = c.create();
    assert!(!o.success(), "{o}");
    assert!(o.stderr.contains("JSON specification file config.json not found"), "{o}");
    assert!(c.state().is_none());
}

/// The state errors scripts and engines match on, word for word as runc's.
#[test]
fn state_errors_are_in_runcs_words() {
    let expect = |o: Output, words: &str| {
        assert!(!o.success() && o.stderr.contains(words), "expected {words:?}: {o}");
    };
    let c = running();
    let id = c.id.as_str();
    expect(c.rt(&["state", "no-such-container"]), "container does not exist");
    expect(c.rt(&["exec", "no-such-container", "true"]), "exec failed: container does not exist");
    expect(c.create(), "container with given ID already exists");
    expect(c.rt(&["start", id]), "cannot start an already running container");
    expect(c.rt(&["delete", id]), &format!("cannot delete container {id} that is not stopped: running"));
    expect(c.rt(&["resume", id]), "container not paused");
    expect(c.kill("SIGNOPE"), "unknown signal");
    expect(c.rt(&["exec", id, "no-such-program"]), "executable file not found in $PATH");
    expect(c.rt(&["exec", id, "/no/such/program"]), "stat /no/such/program: no such file or directory");
    assert!(c.kill("KILL").success());
    assert!(c.wait_status("stopped", Duration::from_secs(10)));
    expect(c.rt(&["start", id]), "cannot start a container that has stopped");
    expect(c.kill("TERM"), "container not running");
    expect(c.rt(&["pause", id]), "container not running");
    expect(c.rt(&["exec", id, "true"]), "exec failed: cannot exec in a stopped container");
}
