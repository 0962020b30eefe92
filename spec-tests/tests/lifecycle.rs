//! runtime.md lifecycle, state and operations; runc-compatible CLI
//! (run -d, --keep, --pid-file, --preserve-fds, list); bad input; console.

use spec_tests::*;
use std::path::PathBuf;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

fn sleeper() -> Container {
    Container::new(&["sleep", "60"])
}

fn created(c: &Container) {
    c.create_ok();
    c.assert_status("created");
}

fn running(c: &Container) {
    created(c);
    c.start_ok();
    c.assert_status("running");
}

fn alive(pid: i64) -> bool {
    // A zombie is not alive.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'),
        Err(_) => false,
    }
}

fn wait_gone(pid: i64) -> bool {
    for _ in 0..500 {
        if !alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Container writing a marker into a bind-mounted host dir, then sleeping.
fn marker_container() -> (Container, PathBuf) {
    let mut c = Container::sh("touch /m/started; exec sleep 60");
    let d = c.scratch("marker");
    c.spec.bind(&d, "/m", &[]);
    (c, d.join("started"))
}

// ---------- create / start / state ----------

#[test]
fn create_state_is_created() {
    let c = sleeper();
    c.create_ok();
    assert_eq!(c.status().as_deref(), Some("created"));
}

#[test]
fn create_state_has_positive_pid_that_exists() {
    let c = sleeper();
    created(&c);
    let pid = c.pid();
    assert!(pid > 0);
    assert!(alive(pid), "pid {pid} of created container does not exist");
}

#[test]
fn create_does_not_run_user_program() {
    let (c, marker) = marker_container();
    created(&c);
    std::thread::sleep(Duration::from_millis(300));
    assert!(!marker.exists(), "user program ran before start");
    // Not exec'd yet: the process runs the runtime (or husk's exec
    // trampoline, whose arguments name the program), not the program.
    use std::os::unix::fs::MetadataExt;
    let exe = std::fs::metadata(format!("/proc/{}/exe", c.pid())).unwrap();
    let sh = std::fs::metadata(c.rootfs().join("bin/sh")).unwrap();
    assert!((exe.dev(), exe.ino()) != (sh.dev(), sh.ino()), "already exec'd the user program");
}

#[test]
fn start_runs_user_program() {
    let (c, marker) = marker_container();
    created(&c);
    c.start_ok();
    for _ in 0..500 {
        if marker.exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("user program did not run after start");
}

#[test]
fn start_state_is_running() {
    let c = sleeper();
    running(&c);
}

#[test]
fn start_keeps_pid_and_execs_program() {
    let c = sleeper();
    created(&c);
    let pid = c.pid();
    c.start_ok();
    c.assert_status("running");
    assert_eq!(c.pid(), pid);
    let mut cmd = String::new();
    for _ in 0..100 {
        cmd = String::from_utf8_lossy(&std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default()).replace('\0', " ");
        if cmd.starts_with("sleep 60") {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("pid {pid} runs {cmd:?}, not the user program");
}

#[test]
fn process_exit_state_is_stopped() {
    let c = Container::new(&["true"]);
    created(&c);
    c.start_ok();
    c.assert_status("stopped");
}

#[test]
fn start_twice_fails() {
    let c = sleeper();
    running(&c);
    c.start().assert_failed_with_message();
    assert_eq!(c.status().as_deref(), Some("running"));
}

#[test]
fn start_stopped_container_fails() {
    let c = Container::new(&["true"]);
    created(&c);
    c.start_ok();
    c.assert_status("stopped");
    c.start().assert_failed_with_message();
}

#[test]
fn state_json_fields() {
    let mut c = sleeper();
    c.spec.set("/annotations", json!({"org.example.key": "value-1", "another": "2"}));
    created(&c);
    let s = c.state().unwrap();
    assert!(s["ociVersion"].is_string(), "{s}");
    assert_eq!(s["id"], c.id.as_str());
    assert_eq!(s["status"], "created");
    assert!(s["pid"].as_i64().unwrap() > 0);
}

#[test]
fn state_bundle_is_absolute_bundle_path() {
    let c = sleeper();
    created(&c);
    let s = c.state().unwrap();
    let b = s["bundle"].as_str().expect("bundle missing");
    assert!(b.starts_with('/'), "bundle not absolute: {b}");
    assert_eq!(std::fs::canonicalize(b).unwrap(), std::fs::canonicalize(&c.bundle).unwrap());
}

#[test]
fn state_annotations_from_config() {
    let mut c = sleeper();
    c.spec.set("/annotations", json!({"org.example.key": "value-1", "another": "2"}));
    created(&c);
    let s = c.state().unwrap();
    assert_eq!(s["annotations"]["org.example.key"], "value-1", "{s}");
    assert_eq!(s["annotations"]["another"], "2", "{s}");
}

#[test]
fn state_running_pid_is_in_container_pid_ns() {
    let c = sleeper();
    running(&c);
    let pid = c.pid();
    let ns = std::fs::read_link(format!("/proc/{pid}/ns/pid")).unwrap();
    assert_ne!(ns.to_string_lossy(), host_ns("pid"));
}

#[test]
fn state_of_stopped_container_status() {
    let c = Container::new(&["true"]);
    created(&c);
    c.start_ok();
    c.assert_status("stopped");
    assert_eq!(c.state().unwrap()["id"], c.id.as_str());
}

// ---------- kill ----------

macro_rules! kill_forms {
    ($($name:ident: $sig:expr,)*) => {$(
        #[test]
        fn $name() {
            let c = sleeper();
            running(&c);
            let pid = c.pid();
            let o = c.kill($sig);
            assert!(o.success(), "{o}");
            c.assert_status("stopped");
            assert!(wait_gone(pid));
        }
    )*};
}

kill_forms! {
    kill_sigkill_name: "SIGKILL",
    kill_kill_name: "KILL",
    kill_signal_number_9: "9",
}

#[test]
fn kill_sigterm_with_handler() {
    let c = Container::sh("trap 'exit 0' TERM; while :; do sleep 0.1; done");
    running(&c);
    assert!(c.kill("TERM").success());
    c.assert_status("stopped");
}

#[test]
fn kill_created_container() {
    let c = sleeper();
    created(&c);
    assert!(c.kill("KILL").success());
    c.assert_status("stopped");
}

#[test]
fn kill_stopped_container_fails() {
    let c = Container::new(&["true"]);
    created(&c);
    c.start_ok();
    c.assert_status("stopped");
    c.kill("KILL").assert_failed_with_message();
}

#[test]
fn kill_invalid_signal_fails() {
    let c = sleeper();
    running(&c);
    c.kill("SIGNOTASIGNAL").assert_failed_with_message();
    assert_eq!(c.status().as_deref(), Some("running"));
}

#[test]
fn kill_unknown_container_fails() {
    let c = sleeper();
    c.kill("KILL").assert_failed_with_message();
}

// ---------- delete ----------

#[test]
fn delete_stopped_removes_state() {
    let c = Container::new(&["true"]);
    created(&c);
    c.start_ok();
    c.assert_status("stopped");
    assert!(c.delete().success());
    c.state_out().assert_failed_with_message();
    assert!(!c.listed());
}

#[test]
fn delete_removes_cgroup() {
    let c = Container::new(&["true"]);
    created(&c);
    assert!(!c.cgroup_dirs().is_empty(), "no cgroup created for {}", c.cgroups_path);
    c.start_ok();
    c.assert_status("stopped");
    assert!(c.delete().success());
    assert!(c.cgroup_dirs().is_empty(), "cgroup left behind: {:?}", c.cgroup_dirs());
}

#[test]
fn delete_running_without_force_fails() {
    let c = sleeper();
    running(&c);
    c.delete().assert_failed_with_message();
    assert_eq!(c.status().as_deref(), Some("running"));
    assert!(alive(c.pid()));
}

#[test]
#[ignore = "runc (and husk, for runc compatibility: containerd deletes never-started tasks without --force) deletes a `created` container without --force; runtime.md says deleting a non-stopped container MUST fail"]
fn delete_created_without_force_fails() {
    let c = sleeper();
    created(&c);
    c.delete().assert_failed_with_message();
    assert_eq!(c.status().as_deref(), Some("created"));
}

#[test]
fn delete_force_running() {
    let c = sleeper();
    running(&c);
    let pid = c.pid();
    assert!(c.delete_force().success());
    assert!(c.state().is_none());
    assert!(wait_gone(pid), "process survived delete --force");
    assert!(c.cgroup_dirs().is_empty(), "cgroup left behind");
}

#[test]
fn delete_force_created() {
    let c = sleeper();
    created(&c);
    let pid = c.pid();
    assert!(c.delete_force().success());
    assert!(c.state().is_none());
    assert!(wait_gone(pid));
    assert!(c.cgroup_dirs().is_empty());
}

#[test]
fn delete_removes_state_dir_entry() {
    let c = Container::new(&["true"]);
    created(&c);
    c.start_ok();
    c.assert_status("stopped");
    assert!(c.delete().success());
    let left: Vec<_> = std::fs::read_dir(&c.root).map(|r| r.flatten().map(|e| e.file_name()).collect()).unwrap_or_default();
    assert!(left.iter().all(|n| n.to_string_lossy() != c.id), "state dir left: {left:?}");
}

#[test]
fn delete_unknown_container_fails() {
    sleeper().delete().assert_failed_with_message();
}

#[test]
fn delete_twice_fails() {
    let c = Container::new(&["true"]);
    created(&c);
    c.start_ok();
    c.assert_status("stopped");
    assert!(c.delete().success());
    c.delete().assert_failed_with_message();
}

#[test]
fn state_after_delete_fails() {
    let c = sleeper();
    running(&c);
    assert!(c.delete_force().success());
    let o = c.state_out();
    o.assert_failed_with_message();
}

// ---------- list ----------

#[test]
fn list_table_shows_container() {
    let c = sleeper();
    running(&c);
    let o = c.rt(&["list"]);
    let line = o.ok().lines().find(|l| l.split_whitespace().next() == Some(&c.id)).map(str::to_string);
    let line = line.unwrap_or_else(|| panic!("{} not listed:\n{o}", c.id));
    assert!(line.contains("running"), "{line}");
}

#[test]
fn list_json_shows_container() {
    let c = sleeper();
    running(&c);
    let o = c.rt(&["list", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(o.ok()).unwrap();
    let arr = v.as_array().expect("json list is an array");
    let me = arr.iter().find(|e| e["id"] == c.id.as_str()).expect("not in json list");
    assert_eq!(me["status"], "running");
}

#[test]
fn list_quiet_prints_ids_only() {
    let c = sleeper();
    let mut c2 = sleeper();
    c2.root = c.root.clone();
    running(&c);
    running(&c2);
    let o = c.rt(&["list", "-q"]);
    let mut ids: Vec<&str> = o.ok().lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    ids.sort();
    let mut want = vec![c.id.as_str(), c2.id.as_str()];
    want.sort();
    assert_eq!(ids, want);
}

#[test]
fn list_empty_root() {
    let c = sleeper();
    let o = c.rt(&["list", "-q"]);
    assert_eq!(o.ok().trim(), "");
}

// ---------- bad input ----------

fn assert_no_state(c: &Container) {
    assert!(c.state().is_none(), "failed create left state");
    assert!(!c.listed(), "failed create left {} in list", c.id);
}

#[test]
fn create_missing_config_fails() {
    let c = sleeper();
    c.no_autowrite();
    c.create().assert_failed_with_message();
    assert_no_state(&c);
}

#[test]
fn create_invalid_json_fails() {
    let c = sleeper();
    c.write_raw_config("{ this is not json");
    c.create().assert_failed_with_message();
    assert_no_state(&c);
}

#[test]
fn create_missing_rootfs_fails() {
    let mut c = sleeper();
    c.spec.set("/root/path", json!("no-such-rootfs"));
    c.create().assert_failed_with_message();
    assert_no_state(&c);
}

#[test]
fn create_missing_program_fails() {
    let c = Container::new(&["/bin/no-such-program"]);
    let o = c.create();
    if o.success() {
        // Some runtimes only notice at start; then start must fail.
        c.start().assert_failed_with_message();
    } else {
        o.assert_failed_with_message();
        assert_no_state(&c);
    }
}

#[test]
fn run_missing_program_fails() {
    let c = Container::new(&["no-such-program-in-path"]);
    let o = c.run();
    o.assert_failed_with_message();
}

#[test]
fn create_duplicate_id_fails() {
    let c = sleeper();
    created(&c);
    let pid = c.pid();
    c.create().assert_failed_with_message();
    assert_eq!(c.status().as_deref(), Some("created"));
    assert_eq!(c.pid(), pid);
}

#[test]
fn create_missing_process_args_fails() {
    let mut c = sleeper();
    c.spec.set("/process/args", json!([]));
    let o = c.create();
    if o.success() {
        c.start().assert_failed_with_message();
    } else {
        o.assert_failed_with_message();
        assert_no_state(&c);
    }
}

#[test]
fn create_non_string_oci_version_fails() {
    // ociVersion must be SemVer; garbage should be rejected.
    let mut c = sleeper();
    c.spec.set("/ociVersion", json!(42));
    c.create().assert_failed_with_message();
    assert_no_state(&c);
}

#[test]
fn state_unknown_id_fails() {
    sleeper().state_out().assert_failed_with_message();
}

#[test]
fn start_unknown_id_fails() {
    sleeper().start().assert_failed_with_message();
}

#[test]
fn create_failure_cleans_cgroup() {
    let mut c = sleeper();
    c.spec.set("/root/path", json!("no-such-rootfs"));
    c.create().assert_failed_with_message();
    assert!(c.cgroup_dirs().is_empty(), "failed create left cgroup");
}

// ---------- run ----------

#[test]
fn run_foreground_output_and_cleanup() {
    let c = Container::sh("echo out; echo err >&2");
    let o = c.run();
    assert_eq!(o.ok(), "out\n");
    assert_eq!(o.stderr, "err\n");
    assert!(c.state().is_none(), "run without --keep left the container");
    assert!(c.cgroup_dirs().is_empty(), "run left cgroup {:?}", c.cgroup_dirs());
}

#[test]
fn run_detach_is_running() {
    let c = sleeper();
    let o = c.run_with(&["--detach"]);
    assert!(o.success(), "{o}");
    c.assert_status("running");
    assert!(alive(c.pid()));
}

#[test]
fn run_keep_leaves_stopped_container() {
    let c = Container::new(&["true"]);
    let o = c.run_with(&["--keep"]);
    assert!(o.success(), "{o}");
    assert_eq!(c.status().as_deref(), Some("stopped"));
    assert!(c.delete().success());
    assert!(c.state().is_none());
}

#[test]
fn run_pid_file() {
    let c = sleeper();
    let pf = c.dir.join("pidfile");
    let o = c.run_with(&["--detach", "--pid-file", pf.to_str().unwrap()]);
    assert!(o.success(), "{o}");
    let pid: i64 = std::fs::read_to_string(&pf).unwrap().trim().parse().unwrap();
    assert_eq!(pid, c.pid());
}

#[test]
fn create_pid_file() {
    let c = sleeper();
    let pf = c.dir.join("pidfile");
    let o = c.create_with(&["--pid-file", pf.to_str().unwrap()]);
    assert!(o.success(), "{o}");
    let pid: i64 = std::fs::read_to_string(&pf).unwrap().trim().parse().unwrap();
    assert_eq!(pid, c.pid());
}

/// Run with an extra fd 3 (a file containing `content`) in the runtime.
fn run_with_fd3(c: &Container, extra: &[&str], content: &str) -> Output {
    c.write_config();
    let b = c.bundle.to_str().unwrap().to_string();
    let mut args = vec!["run", "--bundle", &b];
    args.extend_from_slice(extra);
    args.push(&c.id);
    c.rt_with_fd3(&args, content)
}

#[test]
fn run_preserve_fds_passes_fd() {
    let c = Container::sh("cat <&3");
    let o = run_with_fd3(&c, &["--preserve-fds", "1"], "preserved-fd-ok\n");
    assert_eq!(o.ok(), "preserved-fd-ok\n");
}

#[test]
fn run_without_preserve_fds_closes_extra_fd() {
    let c = Container::sh("if [ -e /proc/self/fd/3 ]; then cat <&3; else echo closed; fi");
    let o = run_with_fd3(&c, &[], "leaked\n");
    assert_eq!(o.ok().trim(), "closed");
}

/// fds of `ls -l /proc/self/fd` other than the directory ls itself opened.
fn container_fds(o: &str) -> Vec<String> {
    o.lines()
        .filter(|l| l.starts_with('l'))
        .filter_map(|l| {
            let (lhs, target) = l.split_once(" -> ")?;
            let fd = lhs.split_whitespace().last()?.to_string();
            (!target.ends_with("/fd")).then_some(fd)
        })
        .collect()
}

#[test]
fn no_extra_fds_leak_into_container() {
    let c = Container::new(&["ls", "-l", "/proc/self/fd"]);
    let o = c.run();
    assert_eq!(container_fds(o.ok()), ["0", "1", "2"], "{o}");
}

#[test]
fn no_extra_fds_with_preserve_fds() {
    let c = Container::new(&["ls", "-l", "/proc/self/fd"]);
    let o = run_with_fd3(&c, &["--preserve-fds", "1"], "x");
    assert_eq!(container_fds(o.ok()), ["0", "1", "2", "3"], "{o}");
}

// ---------- terminal ----------

fn console_run(script: &str) -> String {
    console_run_as(script, 0)
}

fn console_run_as(script: &str, uid: u32) -> String {
    console_run_with(script, |s| {
        s.set("/process/user/uid", json!(uid));
    })
}

fn console_run_with(script: &str, tweak: impl FnOnce(&mut Spec)) -> String {
    let mut c = Container::sh(script);
    c.spec.set("/process/terminal", json!(true));
    tweak(&mut c.spec);
    let sock = c.dir.join("console.sock");
    let l = console::console_listener(&sock);
    std::thread::scope(|s| {
        let h = s.spawn(|| console::recv_pty_master(&l, Duration::from_secs(15)));
        let o = c.create_with(&["--console-socket", sock.to_str().unwrap()]);
        assert!(o.success(), "{o}");
        let mut master = h.join().unwrap().expect("no pty master received");
        c.start_ok();
        let out = console::read_pty(&mut master, Duration::from_secs(10));
        c.assert_status("stopped");
        out
    })
}

#[test]
fn terminal_stdin_is_pty() {
    let out = console_run("tty");
    assert!(out.trim().starts_with("/dev/pts/"), "{out:?}");
}

#[test]
fn terminal_isatty_all_stdio() {
    let out = console_run("test -t 0 && test -t 1 && test -t 2 && echo all-ttys");
    assert!(out.contains("all-ttys"), "{out:?}");
}

#[test]
fn terminal_with_a_read_only_dev() {
    // /dev/console's mount point is made before /dev turns read-only.
    let out = console_run_with("test -c /dev/console && echo console-ok; touch /dev/x 2>/dev/null || echo dev-ro", |s| {
        s.set("/mounts/1/options", json!(["nosuid", "strictatime", "mode=755", "size=65536k", "ro"]));
    });
    assert!(out.contains("console-ok") && out.contains("dev-ro"), "{out:?}");
}

#[test]
fn terminal_dev_console_exists() {
    let out = console_run("test -c /dev/console && echo console-ok");
    assert!(out.contains("console-ok"), "{out:?}");
}

/// The process owns its terminal: the pty's peer belongs to its uid, mode
/// 0620 (runc chowns it).
#[test]
fn terminal_belongs_to_the_process_user() {
    let out = console_run_as("stat -c '%u %a' $(tty)", 1000);
    assert_eq!(out.trim(), "1000 620", "{out:?}");
}

#[test]
fn terminal_output_reaches_master() {
    let out = console_run("echo hello-from-pty");
    assert!(out.contains("hello-from-pty"), "{out:?}");
}

/// A terminal relayed by the runtime itself (`run` in the foreground, `exec
/// -t`, no console socket): the caller gets the process's bytes exactly,
/// "\n" and not the pty's "\r\n" (runc clears ONLCR).
#[test]
#[ignore = "runc 1.1.5 needs a controlling terminal (/dev/tty) of its own for this, which the suite has not"]
fn foreground_terminal_output_is_byte_for_byte() {
    let mut c = Container::sh("printf 'a\\nb\\n'");
    c.spec.set("/process/terminal", json!(true));
    let o = c.run();
    assert!(o.success(), "{o}");
    assert_eq!(o.stdout, "a\nb\n", "{o}");

    let mut c = Container::new(&["sleep", "60"]);
    c.spec.set("/process/terminal", json!(false));
    running(&c);
    let o = c.rt(&["exec", "-t", &c.id, "printf", "c\\nd\\n"]);
    assert!(o.success(), "{o}");
    assert_eq!(o.stdout, "c\nd\n", "{o}");
    assert!(c.delete_force().success());
}

#[test]
fn terminal_false_stdio_not_tty() {
    let c = Container::sh("test -t 1 && echo tty || echo notty");
    assert_eq!(c.run().ok().trim(), "notty");
}

#[test]
fn terminal_without_console_socket_for_create_fails() {
    let mut c = sleeper();
    c.spec.set("/process/terminal", json!(true));
    c.create().assert_failed_with_message();
    assert_no_state(&c);
}

#[test]
fn container_leaves_no_processes_after_delete() {
    let c = Container::sh("sleep 60 & sleep 60 & exec sleep 60");
    running(&c);
    let pid = c.pid();
    std::thread::sleep(Duration::from_millis(200));
    let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    assert!(c.delete_force().success());
    for ch in children.split_whitespace() {
        assert!(wait_gone(ch.parse().unwrap()), "child {ch} survived");
    }
    assert!(wait_gone(pid));
    let _ = WAIT;
}

/// `--preserve-fds 3` with fd 4 closed: fds 3 and 5 are passed, 4 is
/// skipped (as in runc) and stays a hole, never one of the runtime's own
/// files.
#[test]
#[ignore = "runc 1.1.5 lets one of its own fds (/sys/fs/cgroup) take the closed fd's number and passes it to the container"]
fn preserve_fds_skips_closed_fds_without_filling_them() {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let c = Container::new(&["ls", "-l", "/proc/self/fd"]);
    c.write_config();
    let p = c.dir.join("fd.txt");
    std::fs::write(&p, "x").unwrap();
    let f = std::fs::File::open(&p).unwrap();
    let raw = f.as_raw_fd();
    let b = c.bundle.to_str().unwrap().to_string();
    let mut cmd = c.command(&["run", "--bundle", &b, "--preserve-fds", "3", &c.id]);
    // SAFETY: only dup2/close between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            // Move the file above the range first: it may be 3, 4 or 5.
            let high = libc::fcntl(raw, libc::F_DUPFD, 100);
            for fd in [3, 5] {
                if high < 0 || libc::dup2(high, fd) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            libc::close(4);
            libc::close(high);
            Ok(())
        });
    }
    let o = exec(cmd, TIMEOUT);
    drop(f);
    assert_eq!(container_fds(o.ok()), ["0", "1", "2", "3", "5"], "{o}");
}
