//! `checkpoint` and `restore` (CRIU), as runc has them: a dumped container
//! is gone and a restored one goes on where it stopped, in its cgroups,
//! with exec working; `--leave-running`, `--pre-dump` with
//! `--parent-path`, open files and a unix socket pair, a terminal through
//! `--console-socket`, a failing restore leaving nothing, and `features`.
//!
//! Needs a CRIU that passes `criu check` (`CRIU=/path`, else `criu` on
//! PATH, else /usr/local/sbin/criu, where integration/criu/install.sh puts
//! it); it is passed to the runtime with `--criu`. Without one every test
//! fails, naming the reason. The socket pair test builds
//! helpers/sockpair_counter.c with `cc -static`.
//!
//! The containers' stdio are pipes held by the test, as containerd's: CRIU
//! cannot dump a container whose stdin is the host's /dev/null (a file on
//! a mount outside the container), and restore hands new pipes in for the
//! old ones.

use spec_tests::*;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Bound on checkpoint and restore (CRIU freezes, dumps and rebuilds).
const CRIU_TIMEOUT: Duration = Duration::from_secs(60);
const WAIT: Duration = Duration::from_secs(10);
const MIB: i64 = 1 << 20;

fn is_runc() -> bool {
    let r = runtime();
    Path::new(&r).file_name().is_some_and(|n| n.to_string_lossy().starts_with("runc"))
}

/// The CRIU binary for `--criu`, checked once with `criu check`.
fn criu() -> &'static str {
    static CRIU: OnceLock<String> = OnceLock::new();
    CRIU.get_or_init(|| {
        let path = match std::env::var("CRIU") {
            Ok(p) if !p.is_empty() => p,
            _ => std::env::var_os("PATH")
                .and_then(|p| std::env::split_paths(&p).map(|d| d.join("criu")).find(|p| p.is_file()))
                .or_else(|| Some(PathBuf::from("/usr/local/sbin/criu")).filter(|p| p.is_file()))
                .unwrap_or_else(|| {
                    panic!(
                        "no CRIU: none in PATH nor /usr/local/sbin/criu; checkpoint/restore cannot be tested. \
                         Install it with `bash integration/criu/install.sh` (as root) or set CRIU=/path/to/criu"
                    )
                })
                .to_string_lossy()
                .into_owned(),
        };
        let o = host(&path, &["check"]);
        assert!(
            o.success(),
            "`{path} check` fails, so this CRIU cannot checkpoint on this host (integration/criu/install.sh \
             builds one that works): {o}"
        );
        path
    })
}

/// The runtime's arguments with `--criu` in front (a global flag for both).
fn with_criu<'a>(args: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["--criu", criu()];
    v.extend_from_slice(args);
    v
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

// ---------- running the runtime with pipes as stdio ----------

fn pipe() -> (File, File) {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two fds we then own.
    let r = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(r, 0, "pipe2: {}", std::io::Error::last_os_error());
    unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) }
}

/// The test's ends of a container's stdio pipes. Held open while the
/// container runs (the writer of a closed pipe would get SIGPIPE).
struct Pipes {
    _stdin: File,
    _stdout: File,
    _stderr: File,
}

fn read_available(f: &mut File) -> String {
    // SAFETY: fcntl on an fd we own.
    unsafe {
        let fl = libc::fcntl(f.as_raw_fd(), libc::F_GETFL);
        libc::fcntl(f.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK);
    }
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = f.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The runtime with `args` and stdin, stdout and stderr on fresh pipes,
/// which a detached container keeps (the runtime's own output is what is
/// in them when it exits).
fn rt_piped(c: &Container, args: &[&str]) -> (Output, Pipes) {
    let (in_r, in_w) = pipe();
    let (mut out_r, out_w) = pipe();
    let (mut err_r, err_w) = pipe();
    let mut cmd = c.command(args);
    let cmdline = format!("{cmd:?}").replace('"', "");
    cmd.stdin(Stdio::from(in_r)).stdout(Stdio::from(out_w)).stderr(Stdio::from(err_w));
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawning {cmdline}: {e}"));
    drop(cmd);
    let end = Instant::now() + CRIU_TIMEOUT;
    let mut timed_out = false;
    let st = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > end {
            timed_out = true;
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    use std::os::unix::process::ExitStatusExt;
    let o = Output {
        cmdline,
        status: st.code(),
        signal: st.signal(),
        stdout: read_available(&mut out_r),
        stderr: read_available(&mut err_r),
        timed_out,
    };
    (o, Pipes { _stdin: in_w, _stdout: out_r, _stderr: err_r })
}

/// `run -d` with pipes as stdio; asserts it is running.
#[track_caller]
fn run_detached(c: &Container) -> Pipes {
    c.write_config();
    let (o, p) = rt_piped(c, &["run", "-d", "--bundle", s(&c.bundle), &c.id]);
    assert!(o.success(), "run -d failed: {o}");
    c.assert_status("running");
    p
}

/// `checkpoint [extra] --image-path IMG ID`.
fn checkpoint(c: &Container, img: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["checkpoint", "--image-path", s(img)];
    args.extend_from_slice(extra);
    args.push(&c.id);
    exec(c.command(&with_criu(&args)), CRIU_TIMEOUT)
}

#[track_caller]
fn checkpoint_ok(c: &Container, img: &Path, extra: &[&str]) {
    let o = checkpoint(c, img, extra);
    assert!(o.success(), "checkpoint {extra:?} failed: {o}\n--- dump log tail ---\n{}", log_tail(img, "dump.log"));
}

/// `restore -d [extra] --image-path IMG --bundle B ID` with pipes as stdio.
fn restore(c: &Container, img: &Path, extra: &[&str]) -> (Output, Pipes) {
    let mut args = vec!["restore", "-d", "--image-path", s(img), "--bundle", s(&c.bundle)];
    args.extend_from_slice(extra);
    args.push(&c.id);
    rt_piped(c, &with_criu(&args))
}

#[track_caller]
fn restore_ok(c: &Container, img: &Path, extra: &[&str]) -> Pipes {
    c.write_config();
    let (o, p) = restore(c, img, extra);
    assert!(o.success(), "restore failed: {o}\n--- restore log tail ---\n{}", log_tail(img, "restore.log"));
    c.assert_status("running");
    p
}

/// The last lines of CRIU's log in an image dir (for failure messages).
fn log_tail(dir: &Path, name: &str) -> String {
    let text = std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| format!("({name}: {e})"));
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(25)..].join("\n")
}

// ---------- counters ----------

/// The script of a counter appending 1, 2, 3 ... to `file` every 100 ms.
fn counter_script(file: &str) -> String {
    format!("i=0; while :; do i=$((i+1)); echo $i >> {file}; sleep 0.1; done")
}

/// The complete lines of a counter file as numbers.
#[track_caller]
fn values(p: &Path) -> Vec<u64> {
    let text = std::fs::read_to_string(p).unwrap_or_default();
    let complete = match text.rfind('\n') {
        Some(i) => &text[..i],
        None => "",
    };
    complete
        .lines()
        .map(|l| l.trim().parse().unwrap_or_else(|_| panic!("{}: not a number: {l:?} in {text:?}", p.display())))
        .collect()
}

fn last(p: &Path) -> u64 {
    values(p).last().copied().unwrap_or(0)
}

/// Wait until the counter in `p` reaches `n`; its last value.
#[track_caller]
fn wait_counter(p: &Path, n: u64, what: &str) -> u64 {
    let end = Instant::now() + WAIT;
    loop {
        let v = last(p);
        if v >= n {
            return v;
        }
        if Instant::now() > end {
            panic!("{what}: the counter in {} never reached {n} (last {v})", p.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The values are first, first+1, first+2 ... (no restart, no gap, no repeat).
#[track_caller]
fn assert_consecutive(v: &[u64], first: u64, what: &str) {
    assert!(!v.is_empty(), "{what}: no values");
    for (i, x) in v.iter().enumerate() {
        assert_eq!(*x, first + i as u64, "{what}: value #{i} is {x}, expected {}; all: {v:?}", first + i as u64);
    }
}

/// The counter stays at its value for a while (nothing runs it).
#[track_caller]
fn assert_stopped(p: &Path, what: &str) -> u64 {
    let v = last(p);
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(last(p), v, "{what}: the counter in {} still moves", p.display());
    v
}

fn alive(pid: i64) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'),
        Err(_) => false,
    }
}

/// A counter container writing to `/c/log` in a bind of the test's dir
/// `c`; the log's host path.
fn counter_container() -> (Container, PathBuf) {
    let mut c = Container::sh(&counter_script("/c/log"));
    let d = c.scratch("c");
    c.spec.bind(&d, "/c", &[]);
    (c, d.join("log"))
}

// ---------- what a container leaves ----------

fn v2_only() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

fn cg_file(c: &Container, name: &str) -> Option<String> {
    c.cgroup_dirs()
        .into_iter()
        .map(|d| d.join(name))
        .find(|p| p.exists())
        .and_then(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.trim().to_string())
}

/// Nothing of `c` is left: no state, not listed, no cgroup dir, no mount
/// under its state root or naming its id.
#[track_caller]
fn assert_nothing_left(c: &Container, what: &str) {
    let st = c.state_out();
    assert!(!st.success(), "{what}: state still succeeds: {st}");
    assert!(!c.listed(), "{what}: still listed");
    assert!(!c.root.join(&c.id).exists(), "{what}: state dir {} left", c.root.join(&c.id).display());
    assert_eq!(c.cgroup_dirs(), Vec::<PathBuf>::new(), "{what}: cgroup dirs left");
    assert_eq!(host_mounts_under(&c.root), Vec::<String>::new(), "{what}: mounts left under the state root");
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let leaked: Vec<&str> = mi.lines().filter(|l| l.contains(&c.id)).collect();
    assert!(leaked.is_empty(), "{what}: mounts naming {} left: {leaked:#?}", c.id);
}

/// Detaches, on drop, whatever a runtime left mounted on the host under a
/// state root (CRIU's root bind at restore), also when the test failed.
/// Declared after its container, so it runs before the container's
/// `delete --force` and directory removal.
struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        umount_under(&self.0);
    }
}

/// `delete --force` of a running container leaves nothing.
#[track_caller]
fn delete_leaves_nothing(c: &Container) {
    let pid = c.pid();
    let o = c.delete_force();
    assert!(o.success(), "delete --force: {o}");
    let end = Instant::now() + WAIT;
    while alive(pid) && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!alive(pid), "pid {pid} still alive after delete --force");
    assert_nothing_left(c, "after delete --force");
}

/// Exec reaches the restored container's namespaces: its hostname, its
/// pid 1 (the counter shell) and its bind mount.
#[track_caller]
fn assert_exec_works(c: &Container, log: &Path) {
    let o = c.rt(&["exec", &c.id, "sh", "-c", "hostname; cat /proc/1/cmdline | tr '\\0' ' '; echo; tail -n 1 /c/log"]);
    let out = o.ok();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.first().copied(), Some(HOSTNAME), "exec: hostname: {o}");
    assert!(lines.get(1).is_some_and(|l| l.contains("while :")), "exec: pid 1 is not the counter: {o}");
    let seen: u64 = lines.get(2).and_then(|l| l.trim().parse().ok()).unwrap_or_else(|| panic!("exec: no counter: {o}"));
    assert!(seen > 0 && seen <= last(log) + 1, "exec saw counter {seen}, the host {}", last(log));
}

// ---------- 1. checkpoint, restore ----------

#[test]
fn checkpoint_stops_the_container_and_restore_continues_it_in_its_cgroups() {
    let (mut c, log) = counter_container();
    let _u = Unmount(c.root.clone());
    c.spec.set("/linux/resources/memory", json!({"limit": 64 * MIB}));
    c.spec.set("/linux/resources/pids", json!({"limit": 77}));
    let img = c.scratch("img");
    let _p = run_detached(&c);
    let pid = c.pid();
    wait_counter(&log, 5, "before the checkpoint");

    checkpoint_ok(&c, &img, &[]);
    // The container is gone: process, state, list entry and cgroups.
    assert!(!alive(pid), "pid {pid} still alive after checkpoint");
    assert_nothing_left(&c, "after checkpoint");
    let stopped = assert_stopped(&log, "after checkpoint");
    assert_consecutive(&values(&log), 1, "before restore");

    let _p2 = restore_ok(&c, &img, &[]);
    let rpid = c.pid();
    assert!(alive(rpid), "restored pid {rpid} not alive");
    // It goes on from where it stopped: 1, 2, ... stopped, stopped+1, ...
    wait_counter(&log, stopped + 5, "after restore");
    assert_consecutive(&values(&log), 1, "across the checkpoint");
    let st = c.state().unwrap();
    assert_eq!(st["id"], json!(c.id), "{st}");
    assert_eq!(st["bundle"].as_str(), Some(s(&c.bundle)), "{st}");

    // The same limits, the restored process in the container's cgroups.
    if v2_only() {
        assert_eq!(cg_file(&c, "memory.max").as_deref(), Some(&*(64 * MIB).to_string()));
        assert_eq!(cg_file(&c, "pids.max").as_deref(), Some("77"));
    } else {
        let mem = Path::new("/sys/fs/cgroup/memory").join(c.cgroups_path.trim_start_matches('/'));
        let pids = Path::new("/sys/fs/cgroup/pids").join(c.cgroups_path.trim_start_matches('/'));
        let read = |p: PathBuf| std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert_eq!(read(mem.join("memory.limit_in_bytes")).trim(), (64 * MIB).to_string());
        assert_eq!(read(pids.join("pids.max")).trim(), "77");
    }
    let cg = std::fs::read_to_string(format!("/proc/{rpid}/cgroup")).unwrap();
    let mut checked = 0;
    for line in cg.lines() {
        let ctrl = line.split(':').nth(1).unwrap_or("");
        let wanted = ctrl.is_empty() && v2_only() || ctrl.split(',').any(|c| c == "memory" || c == "pids");
        if wanted {
            assert!(line.ends_with(&c.cgroups_path), "restored pid {rpid} not in {}: {cg}", c.cgroups_path);
            checked += 1;
        }
    }
    assert!(checked >= 1 + (!v2_only()) as usize, "no memory/pids line in /proc/{rpid}/cgroup: {cg}");
    assert!(!c.cgroup_dirs().is_empty(), "the restored container has no cgroup dirs");
    for d in c.cgroup_dirs() {
        let procs = std::fs::read_to_string(d.join("cgroup.procs")).unwrap_or_default();
        assert!(
            procs.lines().any(|l| l.trim() == rpid.to_string()),
            "restored pid {rpid} not in {}/cgroup.procs: {procs:?}",
            d.display()
        );
    }

    assert_exec_works(&c, &log);
    delete_leaves_nothing(&c);
    assert_stopped(&log, "after delete");
}

// ---------- 2. --leave-running ----------

#[test]
fn leave_running_keeps_the_container_and_a_copy_restores_from_the_checkpoint() {
    let (c, log) = counter_container();
    let _u = Unmount(c.root.clone());
    let img = c.scratch("img");
    let _p = run_detached(&c);
    let pid = c.pid();
    wait_counter(&log, 5, "before the checkpoint");

    let before = last(&log);
    checkpoint_ok(&c, &img, &["--leave-running"]);
    let after = last(&log);
    assert_eq!(c.status().as_deref(), Some("running"), "--leave-running: {:?}", c.state());
    assert_eq!(c.pid(), pid, "--leave-running changed the pid");
    assert!(alive(pid));
    wait_counter(&log, after + 3, "the original after checkpoint --leave-running");

    // A copy: another bundle, id, state root, cgroup and bind source.
    let (copy, copy_log) = counter_container();
    let _u2 = Unmount(copy.root.clone());
    assert_ne!(copy_log, log);
    let _p2 = restore_ok(&copy, &img, &[]);
    let cv = values(&wait_for_file(&copy_log));
    let first = cv[0];
    assert!(
        before < first && first <= after + 1,
        "the copy's first value {first} is not the next after the checkpointed one (between {before} and {after})"
    );
    wait_counter(&copy_log, first + 3, "the copy");
    assert_consecutive(&values(&copy_log), first, "the copy");
    // Both run, each its own.
    let o = last(&log);
    wait_counter(&log, o + 2, "the original beside the copy");
    assert_consecutive(&values(&log), 1, "the original");
    assert_ne!(copy.pid(), c.pid());
    assert!(!copy.cgroup_dirs().is_empty(), "the copy has no cgroup");

    delete_leaves_nothing(&copy);
    assert!(alive(pid), "deleting the copy killed the original");
    delete_leaves_nothing(&c);
}

/// Wait for `p` to hold a complete line.
#[track_caller]
fn wait_for_file(p: &Path) -> PathBuf {
    let end = Instant::now() + WAIT;
    while values(p).is_empty() {
        assert!(Instant::now() < end, "{} never got a line", p.display());
        std::thread::sleep(Duration::from_millis(50));
    }
    p.to_path_buf()
}

// ---------- 3. --pre-dump, --parent-path ----------

/// Can CRIU track memory changes here (soft-dirty bits)? A pre-dump needs
/// it; kernels built without CONFIG_MEM_SOFT_DIRTY say "Dirty tracking is
/// OFF".
fn dirty_tracking() -> bool {
    host(criu(), &["check", "--feature", "mem_dirty_track"]).success()
}

/// With memory tracking: a pre-dump leaves the container running, and a
/// dump with `--parent-path ../PRE` (relative to the image path, as runc
/// documents) builds on it and restores. Without it (this kernel): the
/// pre-dump fails, says why, and leaves the container running and
/// checkpointable. (A full dump cannot stand in as the parent: CRIU wants
/// a pre-dump's inventory, "Pid-reuse detection failed: no parent
/// inventory".)
#[test]
fn pre_dump_then_dump_with_parent_path_restores() {
    let (c, log) = counter_container();
    let _u = Unmount(c.root.clone());
    let pre = c.scratch("pre");
    let img = c.scratch("img");
    let _p = run_detached(&c);
    let pid = c.pid();
    wait_counter(&log, 3, "before the pre-dump");

    let tracking = dirty_tracking();
    let o = checkpoint(&c, &pre, &["--pre-dump"]);
    if tracking {
        assert!(o.success(), "checkpoint --pre-dump failed: {o}\n--- log tail ---\n{}", log_tail(&pre, "pre-dump.log"));
    } else {
        o.assert_failed_with_message();
    }
    // Either way the container runs on, unfrozen.
    assert_eq!(c.status().as_deref(), Some("running"), "after --pre-dump: {:?}", c.state());
    assert_eq!(c.pid(), pid);
    let v = last(&log);
    wait_counter(&log, v + 3, "after the pre-dump");

    if tracking {
        let pages = std::fs::read_dir(&pre).unwrap().flatten().any(|e| e.file_name().to_string_lossy().starts_with("pages-"));
        assert!(pages, "the pre-dump wrote no pages-*.img");
        checkpoint_ok(&c, &img, &["--parent-path", "../pre"]);
        assert_eq!(
            std::fs::read_link(img.join("parent")).ok(),
            Some(PathBuf::from("../pre")),
            "CRIU did not link the parent image"
        );
    } else {
        checkpoint_ok(&c, &img, &[]);
    }
    assert!(!alive(pid));
    assert_nothing_left(&c, "after the dump");
    let stopped = assert_stopped(&log, "after the dump");

    let _p2 = restore_ok(&c, &img, &[]);
    wait_counter(&log, stopped + 5, "after restore");
    assert_consecutive(&values(&log), 1, "across pre-dump, dump and restore");
    delete_leaves_nothing(&c);

    if !tracking {
        // The message names the cause. runc 1.1.5 asks CRIU first (a
        // feature check): "CRIU is missing features"; husk quotes the last
        // error of CRIU's log: "Tracking memory is not available".
        let err = o.stderr.to_lowercase();
        assert!(
            ["missing features", "tracking", "dirty"].iter().any(|w| err.contains(w)),
            "the failed pre-dump does not say memory tracking is missing: {o}"
        );
    }
}

// ---------- 4. open files and a socket pair ----------

/// helpers/sockpair_counter.c, built static once per test process.
fn sockpair_helper() -> &'static Path {
    static HELPER: OnceLock<PathBuf> = OnceLock::new();
    HELPER.get_or_init(|| {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("helpers/sockpair_counter.c");
        let out = base_dir().join("sockpair_counter");
        let o = host("cc", &["-static", "-O2", "-o", s(&out), s(&src)]);
        assert!(o.success(), "building {} (cc and a static libc are needed): {o}", src.display());
        out
    })
}

/// The socket pair counter's value (its file holds one line, rewritten).
#[track_caller]
fn sock_value(p: &Path) -> u64 {
    let t = std::fs::read_to_string(p).unwrap_or_default();
    let t = t.trim();
    assert!(!t.starts_with("ERROR"), "the socket pair helper failed: {t}");
    t.parse().unwrap_or(0)
}

#[track_caller]
fn wait_sock(p: &Path, n: u64, what: &str) -> u64 {
    let end = Instant::now() + WAIT;
    loop {
        let v = sock_value(p);
        if v >= n {
            return v;
        }
        assert!(Instant::now() < end, "{what}: the socket pair counter never reached {n} (at {v})");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn open_files_and_a_unix_socket_pair_survive_checkpoint_and_restore() {
    let helper = sockpair_helper();
    // fd 3 stays open on /c/f (truncated once, not O_APPEND): after restore
    // its offset must be where it was, or lines are overwritten or holes
    // appear. The helper keeps /c/sock open and talks over a socketpair.
    let mut c = Container::sh(
        "/h/sockpair_counter /c/sock & exec 3>/c/f; i=0; while :; do i=$((i+1)); echo $i >&3; sleep 0.1; done",
    );
    let _u = Unmount(c.root.clone());
    let d = c.scratch("c");
    let h = c.scratch("h");
    std::fs::copy(helper, h.join("sockpair_counter")).unwrap();
    c.spec.bind(&d, "/c", &[]).bind(&h, "/h", &["ro"]);
    let (f, sock) = (d.join("f"), d.join("sock"));
    let img = c.scratch("img");
    let _p = run_detached(&c);
    wait_counter(&f, 5, "before the checkpoint");
    wait_sock(&sock, 3, "before the checkpoint");

    checkpoint_ok(&c, &img, &[]);
    let stopped = assert_stopped(&f, "after checkpoint");
    let sock_stopped = sock_value(&sock);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(sock_value(&sock), sock_stopped, "the socket pair counter still moves after checkpoint");
    let size = std::fs::metadata(&f).unwrap().len();

    let _p2 = restore_ok(&c, &img, &[]);
    wait_counter(&f, stopped + 5, "the open file after restore");
    wait_sock(&sock, sock_stopped + 5, "the socket pair after restore");
    let text = std::fs::read(&f).unwrap();
    assert!(!text.contains(&0), "a hole in {} (the fd's offset was lost)", f.display());
    assert!(text.len() as u64 > size);
    assert_consecutive(&values(&f), 1, "the open file across the checkpoint");
    // Restored: the shell with fd 3 on /c/f, and the helper's two processes.
    let o = c.rt(&["exec", &c.id, "sh", "-c", "ls -l /proc/1/fd/3; ls -l /proc/[0-9]*/exe 2>/dev/null | grep -c sockpair_counter"]);
    let out = o.ok();
    assert!(out.lines().next().is_some_and(|l| l.ends_with("/c/f")), "pid 1's fd 3 is not /c/f: {o}");
    assert_eq!(out.lines().nth(1).map(str::trim), Some("2"), "not two socket pair processes: {o}");
    delete_leaves_nothing(&c);
}

// ---------- 5. a terminal ----------

/// Read the pty master until `done` holds for what was read, or a timeout.
fn read_until(master: &mut File, timeout: Duration, done: impl Fn(&str) -> bool) -> String {
    let end = Instant::now() + timeout;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while !done(&String::from_utf8_lossy(&out)) {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let mut pfd = libc::pollfd { fd: master.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one pollfd on our fd.
        if unsafe { libc::poll(&mut pfd, 1, left.as_millis().min(1000) as i32) } <= 0 {
            continue;
        }
        match master.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The numbers of complete `tick N` lines in a terminal's output.
fn ticks(out: &str) -> Vec<u64> {
    let complete = &out[..out.rfind('\n').unwrap_or(0)];
    complete.lines().filter_map(|l| l.trim().strip_prefix("tick ")?.trim().parse().ok()).collect()
}

#[test]
fn terminal_container_restores_with_a_new_console_socket() {
    // The ticker in the background, the reader in the foreground (an
    // asynchronous list's stdin would be /dev/null).
    let mut c = Container::sh(
        "(i=0; while :; do i=$((i+1)); echo tick $i; sleep 0.1; done) & while read l; do echo \"got:$l\"; done",
    );
    let _u = Unmount(c.root.clone());
    c.spec.set("/process/terminal", json!(true));
    let img = c.scratch("img");
    let sock = c.dir.join("console.sock");
    let l = console::console_listener(&sock);
    c.write_config();
    let mut master = std::thread::scope(|t| {
        let h = t.spawn(|| console::recv_pty_master(&l, Duration::from_secs(20)));
        let o = c.rt(&["run", "-d", "--console-socket", s(&sock), "--bundle", s(&c.bundle), &c.id]);
        assert!(o.success(), "run -d with a terminal: {o}");
        h.join().unwrap().expect("no pty master from run")
    });
    c.assert_status("running");
    let out = read_until(&mut master, WAIT, |o| ticks(o).last().is_some_and(|n| *n >= 5));
    let before = *ticks(&out).last().unwrap_or_else(|| panic!("no ticks on the terminal: {out:?}"));

    checkpoint_ok(&c, &img, &[]);
    assert_nothing_left(&c, "after checkpoint");
    // What the process wrote before the dump and we did not read yet.
    let rest = read_until(&mut master, Duration::from_millis(300), |_| false);
    let before = ticks(&rest).last().copied().unwrap_or(before).max(before);
    drop(master);

    let sock2 = c.dir.join("console2.sock");
    let l2 = console::console_listener(&sock2);
    let mut master = std::thread::scope(|t| {
        let h = t.spawn(|| console::recv_pty_master(&l2, Duration::from_secs(30)));
        let (o, _p) = restore(&c, &img, &["--console-socket", s(&sock2)]);
        assert!(o.success(), "restore --console-socket: {o}\n--- restore log tail ---\n{}", log_tail(&img, "restore.log"));
        h.join().unwrap().expect("no pty master from restore")
    });
    c.assert_status("running");
    let out = read_until(&mut master, WAIT, |o| ticks(o).len() >= 5);
    let t = ticks(&out);
    assert!(t.len() >= 5, "the restored container prints no ticks on the new terminal: {out:?}");
    // The counter goes on (a restart would print tick 1 again).
    assert!(t[0] > before, "ticks after restore {t:?} do not continue from {before}");
    assert_consecutive(&t, t[0], "ticks after restore");

    // Input on the new master reaches the restored reader.
    master.write_all(b"hello-after-restore\n").unwrap();
    let out = read_until(&mut master, WAIT, |o| o.contains("got:hello-after-restore"));
    assert!(out.contains("got:hello-after-restore"), "input did not reach the restored process: {out:?}");
    delete_leaves_nothing(&c);
}

// ---------- the host's /dev/null as stdio ----------

/// The runtime with stdin, stdout and stderr on the host's /dev/null (as
/// `run -d </dev/null >/dev/null 2>&1`); only the exit status tells.
fn rt_devnull(c: &Container, args: &[&str]) -> Output {
    let mut cmd = c.command(&with_criu(args));
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    let cmdline = format!("{cmd:?}").replace('"', "");
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawning {cmdline}: {e}"));
    let end = Instant::now() + CRIU_TIMEOUT;
    let mut timed_out = false;
    let st = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > end {
            timed_out = true;
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Output { cmdline, status: st.code(), timed_out, stderr: "(stderr was /dev/null)".into(), ..Default::default() }
}

/// A container whose stdio is the host's /dev/null (a file on a mount CRIU
/// cannot see from the container) is checkpointed and restored: the
/// runtime reopens /dev/null from the container's /dev after pivot_root
/// (runc's reOpenDevNull), and descriptors.json records "/dev/null".
#[test]
fn a_container_with_dev_null_stdio_checkpoints_and_restores() {
    let (c, log) = counter_container();
    let _u = Unmount(c.root.clone());
    let img = c.scratch("img");
    c.write_config();
    let o = rt_devnull(&c, &["run", "-d", "--bundle", s(&c.bundle), &c.id]);
    assert!(o.success(), "run -d: {o}");
    c.assert_status("running");
    wait_counter(&log, 3, "before the checkpoint");

    checkpoint_ok(&c, &img, &[]);
    let desc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(img.join("descriptors.json")).unwrap()).unwrap();
    assert_eq!(desc, json!(["/dev/null", "/dev/null", "/dev/null"]));
    let stopped = assert_stopped(&log, "after checkpoint");

    let o = rt_devnull(&c, &["restore", "-d", "--image-path", s(&img), "--bundle", s(&c.bundle), &c.id]);
    assert!(o.success(), "restore: {o}\n--- restore log tail ---\n{}", log_tail(&img, "restore.log"));
    c.assert_status("running");
    wait_counter(&log, stopped + 3, "after restore");
    assert_consecutive(&values(&log), 1, "across the checkpoint");
    let null = std::fs::read_link(format!("/proc/{}/fd/0", c.pid())).unwrap();
    assert_eq!(null, PathBuf::from("/dev/null"), "the restored stdin");
    delete_leaves_nothing(&c);
}

// ---------- an image made by runc, restored by husk ----------

/// husk (HUSK=, default the workspace's release build) and runc (RUNC=,
/// default `runc` on PATH), whichever RUNTIME is.
fn husk_and_runc() -> (String, String) {
    let husk = std::env::var("HUSK").unwrap_or_else(|_| {
        format!("{}/../target/{}-unknown-linux-musl/release/husk", env!("CARGO_MANIFEST_DIR"), std::env::consts::ARCH)
    });
    let runc = std::env::var("RUNC").unwrap_or_else(|_| "runc".to_string());
    for (name, what) in [(&husk, "husk (make build, or HUSK=)"), (&runc, "runc (RUNC=)")] {
        let o = host(name, &["--version"]);
        assert!(o.success(), "the cross check needs {what}: {o}");
    }
    (husk, runc)
}

/// A container checkpointed by runc goes on under husk (switching an
/// engine's runtime keeps its checkpoints). The other way does not work on
/// a hybrid cgroup host: husk also mounts the cgroup2 hierarchy at
/// /sys/fs/cgroup/unified, an external mount runc 1.1.5 does not know at
/// restore (CRIU: "No mapping for ... mountpoint").
#[test]
fn an_image_checkpointed_by_runc_restores_under_husk() {
    let (husk, runc) = husk_and_runc();
    let (mut c, log) = counter_container();
    let _u = Unmount(c.root.clone());
    let img = c.scratch("img");
    c.runtime = runc;
    let _p = run_detached(&c);
    wait_counter(&log, 3, "under runc");
    checkpoint_ok(&c, &img, &[]);
    assert_nothing_left(&c, "after runc's checkpoint");
    let stopped = assert_stopped(&log, "after runc's checkpoint");

    c.runtime = husk;
    let _p2 = restore_ok(&c, &img, &[]);
    wait_counter(&log, stopped + 3, "under husk");
    assert_consecutive(&values(&log), 1, "from runc to husk");
    assert_exec_works(&c, &log);
    delete_leaves_nothing(&c);
}

// ---------- 6. a failing restore ----------

#[test]
fn restore_from_a_missing_image_fails_and_leaves_nothing() {
    let (c, _log) = counter_container();
    let _u = Unmount(c.root.clone());
    c.write_config();
    let missing = c.dir.join("no-such-image");
    let (o, _p) = restore(&c, &missing, &[]);
    o.assert_failed_with_message();
    let err = o.stderr.to_lowercase();
    assert!(
        err.contains("no-such-image") || err.contains("no such file"),
        "the message does not say what is missing: {o}"
    );
    assert_nothing_left(&c, "after the failed restore");
    if is_runc() {
        // runc 1.1.5 makes the image path first (MkdirAll, mode 0600, as for
        // checkpoint) and then fails on "open .../descriptors.json".
        assert!(missing.is_dir(), "runc 1.1.5 no longer makes the image dir");
        assert_eq!(std::fs::read_dir(&missing).unwrap().count(), 0, "runc left files in the image dir");
    } else {
        // husk checks the image before making anything.
        assert!(!missing.exists(), "husk made the missing image dir");
    }
}

// ---------- 7. features ----------

const CHECKPOINT_ANNOTATION: &str = "org.opencontainers.runc.checkpoint.enabled";

fn features_with(criu: &str) -> serde_json::Value {
    let o = exec(
        {
            let mut cmd = std::process::Command::new(runtime());
            cmd.args(["--criu", criu, "features"]);
            cmd
        },
        TIMEOUT,
    );
    serde_json::from_str(o.ok()).unwrap_or_else(|e| panic!("features is not JSON ({e}): {o}"))
}

#[test]
fn features_reports_checkpoint_support_only_with_a_working_criu() {
    let f = features_with(criu());
    assert_eq!(f["annotations"][CHECKPOINT_ANNOTATION], json!("true"), "with a working CRIU: {f}");
    let f = features_with("/nonexistent/criu");
    if is_runc() {
        // runc 1.1.5 reports checkpoint support unconditionally (it never
        // runs CRIU for `features`).
        assert_eq!(f["annotations"][CHECKPOINT_ANNOTATION], json!("true"), "{f}");
    } else {
        assert!(f["annotations"].get(CHECKPOINT_ANNOTATION).is_none(), "without CRIU husk still reports checkpoint support: {f}");
    }
}
