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

pub enum Forked {
    Parent { pid: i32, into_cgroup: bool },
    Child,
}

/// Fork with `flags` (CLONE_NEW*). With `cgroup`, the child is born in that
/// cgroup v2 directory; where the kernel refuses that, it is born without it
/// and `into_cgroup` is false so the caller moves it.
pub fn fork(flags: u64, cgroup: Option<RawFd>) -> nix::Result<Forked> {
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
    let mut args = CloneArgs {
        flags,
        exit_signal: libc::SIGCHLD as u64,
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
