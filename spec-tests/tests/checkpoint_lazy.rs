//! Lazy migration, as runc's tests/integration/checkpoint.bats
//! ("checkpoint --lazy-pages and restore"): `checkpoint --lazy-pages
//! --page-server 0.0.0.0:PORT --status-fd 3` dumps everything but the
//! memory and stays to serve the pages, saying so with one byte on fd 3;
//! `criu lazy-pages --page-server` then connects to it and `restore
//! --lazy-pages` under a new id (the checkpointing runtime still holds the
//! old container) rebuilds the container, its memory faulted in through
//! userfaultfd from the daemon. The counter goes on from where it stopped,
//! the checkpoint exits 0 once the pages are pulled, the original container
//! is gone and the restored one is managed (exec, delete).
//!
//! Runs for RUNTIME=husk and RUNTIME=runc (Debian's 1.1.5 passes too).
//! Needs a CRIU that passes `criu check --feature uffd-noncoop` (found as
//! in checkpoint.rs: CRIU=/path, criu on PATH, /usr/local/sbin/criu).
//!
//! fs.pipe-max-size: CRIU's lazy page server (4.1, and upstream still)
//! sizes a pipe to 4 MiB with F_SETPIPE_SZ and ignores the failure, which
//! it is above fs.pipe-max-size (default 1 MiB) without CAP_SYS_RESOURCE,
//! as in a container that withholds it: the first page request then fails
//! (`page-pipe: splice: -1: Bad file descriptor` in dump.log), the
//! checkpoint fails and the restoring CRIU hangs, with runc as with husk.
//! On such a host the test raises fs.pipe-max-size to 4 MiB for its
//! duration (under a lock, so parallel suites do not restore it under each
//! other) and puts the old value back.

use spec_tests::*;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Bound on checkpoint, restore and the lazy transfer.
const CRIU_TIMEOUT: Duration = Duration::from_secs(60);
const WAIT: Duration = Duration::from_secs(10);
/// The pipe CRIU's lazy page server wants (PIPE_MAX_SIZE pages, rounded up).
const LAZY_PIPE: u64 = 4 << 20;

fn is_runc() -> bool {
    Path::new(&runtime()).file_name().is_some_and(|n| n.to_string_lossy().starts_with("runc"))
}

/// The CRIU binary, checked for lazy-pages support.
fn criu() -> String {
    let path = match std::env::var("CRIU") {
        Ok(p) if !p.is_empty() => p,
        _ => std::env::var_os("PATH")
            .and_then(|p| std::env::split_paths(&p).map(|d| d.join("criu")).find(|p| p.is_file()))
            .or_else(|| Some(PathBuf::from("/usr/local/sbin/criu")).filter(|p| p.is_file()))
            .unwrap_or_else(|| {
                panic!(
                    "no CRIU: none in PATH nor /usr/local/sbin/criu. Install it with \
                     `bash integration/criu/install.sh` (as root) or set CRIU=/path/to/criu"
                )
            })
            .to_string_lossy()
            .into_owned(),
    };
    let o = host(&path, &["check", "--feature", "uffd-noncoop"]);
    assert!(o.success(), "`{path} check --feature uffd-noncoop` fails: no lazy pages with this CRIU or kernel: {o}");
    path
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn has_sys_resource() -> bool {
    let st = std::fs::read_to_string("/proc/self/status").unwrap();
    let eff = st.lines().find_map(|l| l.strip_prefix("CapEff:")).map(|v| u64::from_str_radix(v.trim(), 16).unwrap()).unwrap();
    eff & (1 << 24) != 0 // CAP_SYS_RESOURCE
}

/// Holds an exclusive lock across test processes and, when CRIU's lazy
/// page server could not size its pipe, fs.pipe-max-size raised to 4 MiB;
/// the old value is put back on drop.
struct PipeMaxSize {
    _lock: File,
    old: Option<String>,
}

const PIPE_MAX: &str = "/proc/sys/fs/pipe-max-size";

impl PipeMaxSize {
    fn ensure() -> PipeMaxSize {
        let lock = File::create("/run/husk-spec-tests-lazy-pages.lock").unwrap();
        // SAFETY: flock on an fd we own; blocks until the other suite is done.
        assert_eq!(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) }, 0, "flock: {}", std::io::Error::last_os_error());
        let cur = std::fs::read_to_string(PIPE_MAX).unwrap();
        let mut old = None;
        if !has_sys_resource() && cur.trim().parse::<u64>().unwrap() < LAZY_PIPE {
            std::fs::write(PIPE_MAX, LAZY_PIPE.to_string()).unwrap_or_else(|e| {
                panic!(
                    "no CAP_SYS_RESOURCE and fs.pipe-max-size is {}: CRIU's lazy page server cannot size its pipe \
                     (its page requests would fail: page-pipe: splice: Bad file descriptor), and raising \
                     {PIPE_MAX} to {LAZY_PIPE} failed: {e}",
                    cur.trim()
                )
            });
            old = Some(cur);
        }
        PipeMaxSize { _lock: lock, old }
    }
}

impl Drop for PipeMaxSize {
    fn drop(&mut self) {
        if let Some(v) = &self.old {
            let _ = std::fs::write(PIPE_MAX, v.trim());
        }
    }
}

/// A TCP port free right now (the kernel's pick), unique to this run.
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    l.local_addr().unwrap().port()
}

/// On drop (also when the test failed): kills the processes the test left
/// running (the checkpointing runtime and its CRIU, `criu lazy-pages`), by
/// pid, and detaches what CRIU left mounted under the test's directories
/// (its `.criu.cgyard.*` cgroup yard, a restore's root bind), before the
/// containers' own cleanup removes them.
struct Cleanup {
    children: Vec<Child>,
    dirs: Vec<PathBuf>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for c in &mut self.children {
            if c.try_wait().ok().flatten().is_none() {
                // With its CRIU, which outlives a killed runtime (a
                // checkpointing CRIU killed leaves the container running,
                // which delete --force then removes).
                kill_tree(c);
            }
        }
        for d in &self.dirs {
            umount_under(d);
        }
    }
}

/// The runtime with `--root`, `--log FILE` and `args`, stdio /dev/null (as a
/// detached container's: CRIU reopens the container's own /dev/null);
/// bounded by `timeout`; the runtime's log in the output.
fn rt_null(c: &Container, log: &Path, args: &[&str], timeout: Duration) -> Output {
    let mut cmd = Command::new(&c.runtime);
    cmd.arg("--root").arg(&c.root).arg("--log").arg(log).args(args);
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    let cmdline = format!("{cmd:?}").replace('"', "");
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawning {cmdline}: {e}"));
    let (st, timed_out) = wait_bounded(&mut child, timeout);
    use std::os::unix::process::ExitStatusExt;
    Output {
        cmdline,
        status: st.code(),
        signal: st.signal(),
        stdout: String::new(),
        stderr: std::fs::read_to_string(log).unwrap_or_default(),
        timed_out,
    }
}

/// Wait for `child` at most `timeout`, killing it then.
fn wait_bounded(child: &mut Child, timeout: Duration) -> (std::process::ExitStatus, bool) {
    let end = Instant::now() + timeout;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return (st, false);
        }
        if Instant::now() > end {
            kill_tree(child);
            return (child.wait().unwrap(), true);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// SIGKILL `child` and every process below it (the runtime's CRIU, which
/// a stuck lazy restore leaves waiting forever), children first; reaped.
fn kill_tree(child: &mut Child) {
    fn below(pid: i32, out: &mut Vec<i32>) {
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Some(p) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else { continue };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else { continue };
            let ppid = stat.rsplit(')').next().and_then(|r| r.split_whitespace().nth(1)).and_then(|x| x.parse::<i32>().ok());
            if ppid == Some(pid) {
                below(p, out);
                out.push(p);
            }
        }
    }
    let mut pids = Vec::new();
    below(child.id() as i32, &mut pids);
    for p in pids {
        // SAFETY: kill(2) on pids found below our own child just now.
        unsafe { libc::kill(p, libc::SIGKILL) };
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn pipe() -> (File, File) {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two fds we then own.
    let r = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(r, 0, "pipe2: {}", std::io::Error::last_os_error());
    unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) }
}

/// Poll `f` for reading at most `timeout`; then read once.
fn read_within(f: &mut File, timeout: Duration) -> Option<Vec<u8>> {
    let mut pfd = libc::pollfd { fd: f.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    // SAFETY: one pollfd we own.
    let n = unsafe { libc::poll(&mut pfd, 1, timeout.as_millis() as i32) };
    if n <= 0 {
        return None;
    }
    let mut buf = [0u8; 16];
    let got = f.read(&mut buf).ok()?;
    Some(buf[..got].to_vec())
}

/// The counter's values (complete lines).
fn values(p: &Path) -> Vec<u64> {
    let text = std::fs::read_to_string(p).unwrap_or_default();
    let complete = match text.rfind('\n') {
        Some(i) => &text[..i],
        None => "",
    };
    complete.lines().map(|l| l.trim().parse().unwrap_or_else(|_| panic!("not a number: {l:?} in {text:?}"))).collect()
}

fn last(p: &Path) -> u64 {
    values(p).last().copied().unwrap_or(0)
}

#[track_caller]
fn wait_counter(p: &Path, n: u64, what: &str) -> u64 {
    let end = Instant::now() + WAIT;
    loop {
        let v = last(p);
        if v >= n {
            return v;
        }
        assert!(Instant::now() < end, "{what}: the counter in {} never reached {n} (last {v})", p.display());
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn alive(pid: i64) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'),
        Err(_) => false,
    }
}

fn log_tail(p: &Path) -> String {
    let text = std::fs::read_to_string(p).unwrap_or_else(|e| format!("({}: {e})", p.display()));
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(25)..].join("\n")
}

#[test]
fn checkpoint_lazy_pages_and_restore() {
    let criu = criu();
    let _pipe_max = PipeMaxSize::ensure();
    let script = "i=0; while :; do i=$((i+1)); echo $i >> /c/log; sleep 0.1; done";
    let mut c = Container::sh(script);
    let d = c.scratch("c");
    c.spec.bind(&d, "/c", &[]);
    let counter = d.join("log");
    // The restored container: a new id and its own cgroup (the original
    // is still there until its pages are pulled), the same bind, the same
    // state root.
    let mut c2 = Container::sh(script);
    c2.spec.bind(&d, "/c", &[]);
    c2.root = c.root.clone();
    let img = c.scratch("image");
    let work = c.scratch("work");
    let mut cleanup = Cleanup { children: Vec::new(), dirs: vec![c.dir.clone(), c2.dir.clone()] };
    let logs = c.scratch("logs");

    c.write_config();
    let o = rt_null(&c, &logs.join("run.log"), &["run", "-d", "--bundle", s(&c.bundle), &c.id], TIMEOUT);
    assert!(o.success(), "run -d: {o}");
    c.assert_status("running");
    let pid = c.pid();
    wait_counter(&counter, 5, "before the checkpoint");

    // checkpoint --lazy-pages --page-server 0.0.0.0:PORT --status-fd 3,
    // in the background: it stays to serve the pages.
    let port = free_port();
    let (mut status_r, status_w) = pipe();
    let raw = status_w.as_raw_fd();
    let ps = format!("0.0.0.0:{port}");
    let mut cmd = c.command(&[
        "--criu", &criu, "checkpoint", "--lazy-pages", "--page-server", &ps, "--status-fd", "3",
        "--work-path", s(&work), "--image-path", s(&img), &c.id,
    ]);
    cmd.stdin(Stdio::null())
        .stdout(File::create(logs.join("checkpoint.out")).unwrap())
        .stderr(File::create(logs.join("checkpoint.err")).unwrap());
    // SAFETY: only fcntl/dup2 between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let r = if raw == 3 { libc::fcntl(3, libc::F_SETFD, 0) } else { libc::dup2(raw, 3) };
            if r < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cleanup.children.push(cmd.spawn().expect("spawning checkpoint"));
    drop(cmd);
    drop(status_w);
    let cpt_out = || {
        format!(
            "checkpoint stderr: {}\n--- dump.log tail ---\n{}",
            std::fs::read_to_string(logs.join("checkpoint.err")).unwrap_or_default(),
            log_tail(&work.join("dump.log"))
        )
    };

    // One byte, \0, when the dump is done and the page server listens.
    let b = read_within(&mut status_r, CRIU_TIMEOUT);
    assert_eq!(b.as_deref(), Some(&[0u8][..]), "status fd: want one \\0 byte once the dump is ready; {}", cpt_out());
    if !is_runc() {
        // husk writes and closes it (as runc does; runc's CRIU, which
        // inherits the fd, holds it open, so runc's is not checked).
        let eof = read_within(&mut status_r, WAIT);
        assert_eq!(eof.as_deref(), Some(&[][..]), "status fd: no EOF after the byte; {}", cpt_out());
    }
    assert!(img.join("inventory.img").exists(), "no inventory.img in the image; {}", cpt_out());
    let stopped = last(&counter);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(last(&counter), stopped, "the counter still moves after the dump");

    // The lazy-pages daemon, fetching from the checkpoint's page server.
    let port_s = port.to_string();
    let lazy = Command::new(&criu)
        .args(["lazy-pages", "--page-server", "--address", "127.0.0.1", "--port", &port_s, "-D", s(&img)])
        .args(["-o", "lazy-pages.log", "-v4"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(logs.join("lazy-pages.err")).unwrap())
        .spawn()
        .expect("spawning criu lazy-pages");
    cleanup.children.push(lazy);
    // The daemon listens on lazy-pages.socket in the image dir once it has
    // read the images: a restore that connects earlier fails ("uffd:
    // connect to lazy-pages.socket failed"), so wait for it (bounded).
    let sock = img.join("lazy-pages.socket");
    assert!(wait_for(|| sock.exists(), Duration::from_secs(20)), "criu lazy-pages made no {} within 20 s\n--- lazy-pages.log tail ---\n{}", sock.display(), log_tail(&img.join("lazy-pages.log")));

    // restore --lazy-pages under the new id; its work path is the image
    // dir, where the daemon's lazy-pages.socket is (as runc's test).
    c2.write_config();
    let o = rt_null(
        &c2,
        &logs.join("restore.log"),
        &["--criu", &criu, "restore", "-d", "--work-path", s(&img), "--image-path", s(&img), "--lazy-pages", "--bundle", s(&c2.bundle), &c2.id],
        CRIU_TIMEOUT,
    );
    assert!(
        o.success(),
        "restore --lazy-pages: {o}\n--- restore.log tail ---\n{}\n--- lazy-pages.log tail ---\n{}\n{}",
        log_tail(&img.join("restore.log")),
        log_tail(&img.join("lazy-pages.log")),
        cpt_out()
    );
    c2.assert_status("running");

    // The checkpoint exits 0 once every page is pulled, and the daemon too.
    let (st, timed_out) = wait_bounded(&mut cleanup.children[0], CRIU_TIMEOUT);
    assert!(!timed_out && st.success(), "checkpoint: {st:?} (timed out: {timed_out}); {}", cpt_out());
    let (st, timed_out) = wait_bounded(&mut cleanup.children[1], CRIU_TIMEOUT);
    assert!(
        !timed_out && st.success(),
        "criu lazy-pages: {st:?} (timed out: {timed_out})\n--- lazy-pages.log tail ---\n{}",
        log_tail(&img.join("lazy-pages.log"))
    );

    // The counter goes on from where it stopped: 1, 2, 3 ... without a
    // restart, a gap or a repeat.
    wait_counter(&counter, stopped + 5, "after the restore");
    let v = values(&counter);
    for (i, x) in v.iter().enumerate() {
        assert_eq!(*x, i as u64 + 1, "counter value #{i} is {x}; all: {v:?}");
    }

    // The original is gone, its process too.
    let st = c.state_out();
    assert!(!st.success(), "the checkpointed container is still there: {st}");
    assert!(!c.listed(), "the checkpointed container is still listed");
    assert!(wait_for(|| !alive(pid), WAIT), "the checkpointed container's pid {pid} still runs");

    // The restored one is managed: exec into it, then delete it.
    assert!(c2.listed(), "the restored container is not listed");
    let o = c2.rt(&["exec", &c2.id, "sh", "-c", "hostname; cat /proc/1/cmdline | tr '\\0' ' '"]);
    assert!(o.success(), "exec in the restored container: {o}");
    assert!(o.stdout.starts_with(HOSTNAME), "exec: not the container's hostname: {o}");
    assert!(o.stdout.contains("while :"), "exec: pid 1 is not the counter: {o}");
    let pid2 = c2.pid();
    let o = c2.delete_force();
    assert!(o.success(), "delete --force of the restored container: {o}");
    assert!(wait_for(|| !alive(pid2), WAIT), "the restored container's pid {pid2} still runs after delete --force");
    assert!(!c2.state_out().success(), "the restored container is still there after delete --force");
    assert_eq!(c2.cgroup_dirs(), Vec::<PathBuf>::new(), "the restored container's cgroup dirs are left");
    let after = last(&counter);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(last(&counter), after, "the counter still moves after delete");
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let yard: Vec<&str> = mi.lines().filter(|l| l.contains(".criu.cgyard")).filter(|l| l.contains(s(&c.dir))).collect();
    assert!(yard.is_empty(), "CRIU's cgroup yard left mounted: {yard:#?}");
}
