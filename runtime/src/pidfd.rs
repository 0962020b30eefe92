//! Process file descriptors: a handle on a process that cannot be confused
//! by pid reuse, and a way to wait for its exit without polling in a loop.

use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// A pidfd for `pid`, or None if the process is gone (or the kernel has no
/// pidfd_open).
pub fn open(pid: i32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    // SAFETY: the fd was just created for us and is ours alone.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Send a pidfd of `pid` over a connected unix socket, as runc does for
/// `--pidfd-socket` (the fd, with "pidfd" as the message).
pub fn send(sock: &OwnedFd, pid: i32) -> nix::Result<()> {
    let fd = open(pid).ok_or(nix::Error::ESRCH)?;
    crate::fdpass::send(sock, b"pidfd", std::os::fd::AsRawFd::as_raw_fd(&fd))
}

/// Wait up to `timeout` for the process to exit (becoming a zombie counts).
/// Ok(false) on timeout; interrupted waits resume with the time left.
pub fn wait_exit(fd: &OwnedFd, timeout: Duration) -> nix::Result<bool> {
    let mut fds = [nix::poll::PollFd::new(fd.as_fd(), nix::poll::PollFlags::POLLIN)];
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let left = nix::poll::PollTimeout::try_from(left.as_millis().min(i32::MAX as u128) as i32)
            .unwrap_or(nix::poll::PollTimeout::MAX);
        match nix::poll::poll(&mut fds, left) {
            Ok(n) => return Ok(n > 0),
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_for_exit_and_times_out() {
        let mut child = std::process::Command::new("sleep").arg("0.2").spawn().unwrap();
        let fd = open(child.id() as i32).unwrap();
        assert!(!wait_exit(&fd, Duration::from_millis(10)).unwrap());
        assert!(wait_exit(&fd, Duration::from_secs(5)).unwrap());
        child.wait().unwrap();
        assert!(open(i32::MAX).is_none());
    }
}
