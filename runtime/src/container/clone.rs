//! Forking the container process with its namespaces in one system call.
//!
//! clone3 is used like fork (no new stack: the child continues on a copy of
//! ours), which lets the child run ordinary Rust setup code and then execve
//! the user program directly: husk is never re-executed, so its binary is
//! never mapped into a container process after exec.

use std::os::fd::RawFd;

#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("clone: {0}")]
    Clone(nix::Error),
    #[error("{0}")]
    Prepare(String),
}

/// Fork the container process with `flags`, after `enter` has set up the
/// namespaces the child is to be born in (joins by path, a time namespace
/// with offsets). Whatever `enter` returns is a guard that undoes it: it is
/// dropped in the parent right after the fork and kept (leaked) in the child.
///
/// Forking with a raw clone3 skips libc's fork handling, so in a
/// multi-threaded caller (the shim) the child could inherit a malloc lock
/// held by another thread and deadlock. There, a single-threaded
/// intermediate is forked with libc's fork first; it enters the namespaces
/// (setns of a mount namespace is refused to threaded processes anyway) and
/// clones the container process with CLONE_PARENT, so that it is still the
/// caller's child, then reports its pid and exits.
///
/// `one_way`: `enter` cannot be undone (it joins a user namespace, after
/// which the caller's capabilities are gone), so it always runs in the
/// intermediate.
pub fn spawn<G, E: std::fmt::Display>(
    flags: u64,
    cgroup: Option<RawFd>,
    one_way: bool,
    enter: impl FnOnce() -> Result<G, E>,
) -> Result<Forked, SpawnError> {
    // Born non-dumpable: no window in which a container process could open
    // the child's /proc entries (see sealed_exe).
    let _ = nix::sys::prctl::set_dumpable(false);
    if !one_way && !multi_threaded() {
        let guard = enter().map_err(|e| SpawnError::Prepare(e.to_string()))?;
        let forked = fork(flags, cgroup).map_err(SpawnError::Clone)?;
        if let Forked::Child = forked {
            std::mem::forget(guard);
        }
        return Ok(forked);
    }
    let (rx, tx) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(SpawnError::Clone)?;
    // SAFETY: libc's fork (with its atfork handlers, which cover the husk
    // binary's dlmalloc) keeps malloc consistent in the child; the child
    // (single-threaded) only enters namespaces, clones and exits, or becomes
    // the container process via the clone.
    match unsafe { nix::unistd::fork() }.map_err(SpawnError::Clone)? {
        nix::unistd::ForkResult::Child => {
            drop(rx);
            let res = enter()
                .map_err(|e| e.to_string())
                .and_then(|g| fork(flags | libc::CLONE_PARENT as u64, cgroup).map(|f| (g, f)).map_err(|e| format!("clone: {e}")));
            let report = match res {
                Ok((g, Forked::Child)) => {
                    std::mem::forget(g);
                    drop(tx);
                    return Ok(Forked::Child);
                }
                Ok((_, Forked::Parent { pid, into_cgroup })) => format!("{pid} {}", into_cgroup as u8),
                Err(e) => format!("E{e}"),
            };
            let _ = nix::unistd::write(&tx, report.as_bytes());
            // SAFETY: the intermediate leaves without running destructors or
            // atexit handlers that belong to the caller.
            unsafe { libc::_exit(0) }
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(tx);
            let mut buf = Vec::new();
            let _ = std::io::Read::read_to_end(&mut std::fs::File::from(rx), &mut buf);
            let _ = nix::sys::wait::waitpid(child, None);
            let text = String::from_utf8_lossy(&buf);
            if let Some(e) = text.strip_prefix('E') {
                return Err(SpawnError::Prepare(e.to_string()));
            }
            let mut it = text.split(' ');
            match (it.next().and_then(|p| p.parse().ok()), it.next()) {
                (Some(pid), Some(into)) => Ok(Forked::Parent { pid, into_cgroup: into == "1" }),
                _ => Err(SpawnError::Prepare("the intermediate process died before cloning".into())),
            }
        }
    }
}

/// More than one thread in this process? (/proc/self/task has one entry per
/// thread.)
fn multi_threaded() -> bool {
    std::fs::read_dir("/proc/self/task").map(|d| d.take(2).count() > 1).unwrap_or(true)
}

pub enum Forked {
    Parent { pid: i32, into_cgroup: bool },
    Child,
}

/// Fork with `flags` (CLONE_NEW*). With `cgroup`, the child is born in that
/// cgroup v2 directory; where the kernel refuses that, it is born without it
/// and `into_cgroup` is false so the caller moves it.
fn fork(flags: u64, cgroup: Option<RawFd>) -> nix::Result<Forked> {
    if let Some(fd) = cgroup {
        match clone3(flags | CLONE_INTO_CGROUP, fd as u64) {
            Ok(f) => return Ok(mark(f, true)),
            Err(nix::Error::ENOSYS) => return legacy_clone(flags),
            Err(_) => {}
        }
    }
    match clone3(flags, 0) {
        Err(nix::Error::ENOSYS) => legacy_clone(flags),
        other => other.map(|f| mark(f, false)),
    }
}

fn mark(f: Forked, into: bool) -> Forked {
    match f {
        Forked::Parent { pid, .. } => Forked::Parent { pid, into_cgroup: into },
        c => c,
    }
}

fn clone3(flags: u64, cgroup: u64) -> nix::Result<Forked> {
    // With CLONE_PARENT the child inherits our own exit signal; clone3
    // refuses an explicit one.
    let exit_signal = if flags & libc::CLONE_PARENT as u64 != 0 { 0 } else { libc::SIGCHLD as u64 };
    let mut args = CloneArgs {
        flags,
        exit_signal,
        cgroup,
        ..Default::default()
    };
    // SAFETY: clone3 without a stack behaves like fork: the child resumes
    // here on a copy-on-write copy of our memory. husk is single-threaded at
    // this point, so no lock can be held by a thread that does not exist in
    // the child.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    result(r, false)
}

fn legacy_clone(flags: u64) -> nix::Result<Forked> {
    // SAFETY: as for clone3: a NULL stack gives fork semantics.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone,
            flags | libc::SIGCHLD as u64,
            std::ptr::null::<libc::c_void>(),
            std::ptr::null::<libc::c_void>(),
            std::ptr::null::<libc::c_void>(),
            0,
        )
    };
    result(r, false)
}

fn result(r: libc::c_long, into: bool) -> nix::Result<Forked> {
    match r {
        -1 => Err(nix::Error::last()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent {
            pid: pid as i32,
            into_cgroup: into,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test harness runs tests on threads: this takes the
    /// multi-threaded path, and the process must still be our own child.
    #[test]
    fn spawned_process_is_our_child_even_from_a_threaded_process() {
        let _keep_threaded = std::thread::spawn(|| std::thread::sleep(std::time::Duration::from_millis(500)));
        assert!(multi_threaded());
        match spawn(0, None, false, || Ok::<(), String>(())).unwrap() {
            // SAFETY: leave the forked test process without unwinding.
            Forked::Child => unsafe { libc::_exit(7) },
            Forked::Parent { pid, into_cgroup } => {
                assert!(!into_cgroup);
                let st = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None).unwrap();
                assert_eq!(st, nix::sys::wait::WaitStatus::Exited(nix::unistd::Pid::from_raw(pid), 7));
            }
        }
    }

    #[test]
    fn enter_errors_reach_the_caller() {
        let _keep_threaded = std::thread::spawn(|| std::thread::sleep(std::time::Duration::from_millis(500)));
        let r = spawn(0, None, false, || Err::<(), _>("no such namespace"));
        assert!(matches!(r, Err(SpawnError::Prepare(ref e)) if e.contains("no such namespace")));
    }

    /// A one-way `enter` runs in the intermediate even in a single-threaded
    /// caller: the child (a copy of whoever ran `enter`) sees another pid.
    #[test]
    fn one_way_enter_never_runs_in_the_caller() {
        let caller = std::process::id();
        let ran_in = std::cell::Cell::new(0);
        match spawn(0, None, true, || Ok::<(), String>(ran_in.set(std::process::id()))).unwrap() {
            // SAFETY: leave the forked test process without unwinding.
            Forked::Child => unsafe { libc::_exit(if ran_in.get() != caller && ran_in.get() != 0 { 7 } else { 8 }) },
            Forked::Parent { pid, .. } => {
                let st = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None).unwrap();
                assert_eq!(st, nix::sys::wait::WaitStatus::Exited(nix::unistd::Pid::from_raw(pid), 7));
                assert_eq!(ran_in.get(), 0, "enter ran in the caller");
            }
        }
    }
}
